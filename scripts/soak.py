#!/usr/bin/env python3
"""Soak test over loopback, bounded in count and time: thousands of concurrent requests
mixing valid, invalid, oversized and slow bodies against the example server (started by
scripts/soak.sh). Afterwards every valid request must have been answered 200 with its exact
body hash, every invalid one 401 or 413, the server's memory back near its baseline, and its
open sockets back to the baseline (no connection or task left behind).

Usage: soak.py PID ADDR [REQUESTS] [CONCURRENCY]"""
import asyncio
import hashlib
import hmac
import json
import os
import random
import sys
import time

PID, ADDR = int(sys.argv[1]), sys.argv[2]
REQUESTS = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
CONCURRENCY = int(sys.argv[4]) if len(sys.argv) > 4 else 100
HOST, PORT = ADDR.split(":")
SECRET = os.environ["TOOL_SIGNING_SECRETS"].split(",")[0].encode()
TOKEN = os.environ["TOOL_BEARER_TOKENS"].split("=", 1)[1]
LIMIT = int(os.environ["CALLGUARD_BODY_LIMIT"])


def rss_kib():
    with open(f"/proc/{PID}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


def open_sockets():
    return sum(1 for fd in os.listdir(f"/proc/{PID}/fd") if os.readlink(f"/proc/{PID}/fd/{fd}").startswith("socket:"))


async def send(headers, chunks, declared=None):
    """One HTTP/1.1 request on its own connection; the body in chunks, with pauses."""
    reader, writer = await asyncio.open_connection(HOST, int(PORT))
    body_len = sum(len(c) for c, _ in chunks) if declared is None else declared
    head = f"POST /tools/soak HTTP/1.1\r\nHost: {ADDR}\r\nContent-Length: {body_len}\r\nConnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode())
    try:
        for chunk, pause in chunks:
            writer.write(chunk)
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)
    except (ConnectionResetError, BrokenPipeError):
        pass  # the server may answer (413) and close before the body is sent
    response = await asyncio.wait_for(reader.read(), timeout=30)
    writer.close()
    status = int(response.split(b" ", 2)[1])
    payload = response.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in response else b""
    return status, payload


def case(kind):
    body = os.urandom(random.randint(0, 8192))
    sign = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    if kind == "valid":
        return {"x-signature": sign}, [(body, 0)], None, 200, body
    if kind == "slow":
        thirds = [body[: len(body) // 3], body[len(body) // 3 : 2 * len(body) // 3], body[2 * len(body) // 3 :]]
        return {"x-signature": sign}, [(part, 0.05) for part in thirds], None, 200, body
    if kind == "invalid":
        return {"x-signature": "00" * 32}, [(body, 0)], None, 401, None
    if kind == "oversized":
        big = os.urandom(LIMIT + 1)
        return {"x-signature": hmac.new(SECRET, big, hashlib.sha256).hexdigest()}, [(big, 0)], None, 413, None
    if kind == "bearer":
        return {"authorization": f"Bearer {TOKEN}"}, [(body, 0)], None, 200, body
    return {"authorization": "Bearer tok_wrong_0123456789abcdef"}, [(body, 0)], None, 401, None


async def worker(queue, results):
    while True:
        try:
            kind = queue.get_nowait()
        except asyncio.QueueEmpty:
            return
        headers, chunks, declared, expected, body = case(kind)
        try:
            status, payload = await send(headers, chunks, declared)
        except Exception as error:  # noqa: BLE001 - every failure is reported
            results.append((kind, False, f"{type(error).__name__}: {error}"))
            continue
        ok = status == expected
        if ok and body is not None:
            answer = json.loads(payload)
            ok = answer["body_sha256"] == hashlib.sha256(body).hexdigest() and answer["body_len"] == len(body)
        results.append((kind, ok, f"status {status}, expected {expected}"))


async def main():
    kinds = ["valid"] * 5 + ["slow", "invalid", "oversized", "bearer", "bad-bearer"]
    # Warm up, then take the baseline.
    warm = asyncio.Queue()
    for _ in range(200):
        warm.put_nowait("valid")
    await asyncio.gather(*(worker(warm, []) for _ in range(20)))
    await asyncio.sleep(0.5)
    baseline_rss, baseline_sockets = rss_kib(), open_sockets()

    queue = asyncio.Queue()
    for _ in range(REQUESTS):
        queue.put_nowait(random.choice(kinds))
    results = []
    started = time.monotonic()
    await asyncio.gather(*(worker(queue, results) for _ in range(CONCURRENCY)))
    elapsed = time.monotonic() - started
    await asyncio.sleep(1.0)
    rss, sockets = rss_kib(), open_sockets()

    failures = [r for r in results if not r[1]]
    for kind, _, detail in failures[:10]:
        print(f"FAIL {kind}: {detail}")
    by_kind = {}
    for kind, ok, _ in results:
        by_kind.setdefault(kind, [0, 0])[0 if ok else 1] += 1
    print(f"soak: {len(results)} requests in {elapsed:.1f}s at concurrency {CONCURRENCY}: "
          + ", ".join(f"{k} {v[0]} ok/{v[1]} bad" for k, v in sorted(by_kind.items())))
    grown = rss - baseline_rss
    print(f"soak: memory {baseline_rss} KiB -> {rss} KiB ({grown:+} KiB); sockets {baseline_sockets} -> {sockets}")
    checks = [
        ("every request answered as expected", not failures and len(results) == REQUESTS),
        ("memory back near its baseline (within 16 MiB)", grown < 16 * 1024),
        ("no connection left open", sockets <= baseline_sockets),
    ]
    passed = sum(1 for _, ok in checks if ok)
    for name, ok in checks:
        print(("ok   " if ok else "FAIL ") + name)
    print(f"soak: {passed} passed, {len(checks) - passed} failed")
    sys.exit(0 if passed == len(checks) else 1)


asyncio.run(main())
