#!/usr/bin/env bash
# Floods the running example server past the capacity of its stores, and stalls its Redis,
# then checks that nothing it must remember was forgotten and no retry was lost:
#   1. DELIVERIES distinct signed Standard Webhooks deliveries against in-memory stores of
#      CAPACITY keys: once full, new deliveries are 503 (never a live key evicted), and a
#      replay of the first, still inside its window, is 401;
#   2. as many token revocations: past capacity a DELETE is 503, and every token whose
#      revocation answered 204 stays refused;
#   3. Redis paused (CLIENT PAUSE WRITE) longer than the store's timeout during a delivery:
#      503, then the platform's retry is accepted once.
# Usage: scripts/flood.sh [DELIVERIES] [CAPACITY]   (CI: the defaults, 300 and 64)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

deliveries=${1:-300}
capacity=${2:-64}
cargo build --quiet --example tool_server --features redis

export TOOL_BASIC_USERS="minter:minter-password-0123456789"
export TOOL_JWT_SECRET="jwt-secret-for-the-flood-test-0123456789"
export STANDARD_WEBHOOK_SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
export CALLGUARD_MEMORY_STORE_KEYS=$capacity
export CALLGUARD_ADDR="127.0.0.1:$(free_port)"
export FLOOD_DELIVERIES=$deliveries
start_tool_server target/debug/examples/tool_server

python3 - <<'PY'
import base64, hashlib, hmac, json, os, time, urllib.error, urllib.request

base = "http://" + os.environ["CALLGUARD_ADDR"]
key = base64.b64decode(os.environ["STANDARD_WEBHOOK_SECRET"].removeprefix("whsec_"))
deliveries = int(os.environ["FLOOD_DELIVERIES"])

def call(method, path, body=b"", headers=()):
    request = urllib.request.Request(base + path, data=body if method != "GET" else None, method=method)
    for name, value in headers:
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()

def delivery(n, body=b'{"type":"flood"}'):
    msg_id, ts = f"msg_flood_{n}", str(int(time.time()))
    tag = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
    return body, [("webhook-id", msg_id), ("webhook-timestamp", ts), ("webhook-signature", f"v1,{tag}")]

first_body, first = delivery(0)
assert call("POST", "/webhooks/standard", first_body, first)[0] == 200
accepted, full = 1, 0
for n in range(1, deliveries):
    status, _ = call("POST", "/webhooks/standard", *delivery(n))
    assert status in (200, 503), status
    accepted += status == 200
    full += status == 503
    assert call("POST", "/webhooks/standard", first_body, first)[0] == 401, f"the first delivery was forgotten after {n}"
assert full > 0, "the store never filled"
print(f"flood: {accepted} deliveries accepted, {full} refused with 503 once full; the first was never forgotten")

user, password = os.environ["TOOL_BASIC_USERS"].split(":", 1)
basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
revoked, refused = [], 0
for n in range(deliveries):
    status, minted = call("POST", "/auth/token", json.dumps({"scopes": ["tools:call"]}).encode(), [("authorization", basic)])
    assert status == 201, (status, minted)
    minted = json.loads(minted)
    status, _ = call("DELETE", "/auth/token/" + minted["jti"], headers=[("authorization", basic)])
    assert status in (204, 503), status
    if status == 204:
        revoked.append(minted["access_token"])
    else:
        refused += 1
assert refused > 0, "the denylist never filled"
for token in revoked:
    assert call("POST", "/tools/echo", b"{}", [("authorization", "Bearer " + token)])[0] == 401, "a revoked token was accepted"
print(f"flood: {len(revoked)} revocations held, {refused} refused with 503 once full; every revoked token stays refused")
PY
kill $server 2>/dev/null || true
wait $server 2>/dev/null || true

# Redis stalled during a delivery.
if ! command -v redis-server >/dev/null; then
  echo "flood: redis-server is not installed; the Redis stall was not checked" >&2
  [ -z "${CALLGUARD_REQUIRE_REDIS:-}" ] || exit 1
  exit 0
fi
redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no >/dev/null &
redis=$!
trap 'kill $server $redis 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
export CALLGUARD_REDIS_URL="redis://127.0.0.1:$redis_port/"
export CALLGUARD_ADDR="127.0.0.1:$(free_port)"
start_tool_server target/debug/examples/tool_server
trap 'kill $server $redis 2>/dev/null || true' EXIT
export REDIS_PORT=$redis_port
python3 - <<'PY'
import base64, hashlib, hmac, os, subprocess, time, urllib.error, urllib.request

base = "http://" + os.environ["CALLGUARD_ADDR"]
key = base64.b64decode(os.environ["STANDARD_WEBHOOK_SECRET"].removeprefix("whsec_"))
body, msg_id, ts = b'{"type":"stalled"}', "msg_during_stall", str(int(time.time()))
tag = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()

def deliver():
    request = urllib.request.Request(base + "/webhooks/standard", data=body, method="POST")
    for name, value in (("webhook-id", msg_id), ("webhook-timestamp", ts), ("webhook-signature", f"v1,{tag}")):
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code

subprocess.run(["redis-cli", "-p", os.environ["REDIS_PORT"], "CLIENT", "PAUSE", "2500", "WRITE"], check=True, capture_output=True)
assert deliver() == 503, "a delivery during the stall"
for _ in range(40):
    time.sleep(0.25)
    status = deliver()
    assert status in (200, 401, 503), status
    if status == 200:
        break
assert status == 200, "the platform's retry was refused after the stall"
assert deliver() == 401, "and accepted once"
print("flood: a delivery answered 503 while Redis stalled was accepted on retry, once")
PY
