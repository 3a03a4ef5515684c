#!/usr/bin/env bash
# Start the example tool server with two known secrets and drive it over loopback with an
# independent client (Python's hmac module and urllib): healthz, a signature made with each
# secret, a tampered body and a missing signature. Exits non-zero on any mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --example tool_server
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export CALLGUARD_ADDR="127.0.0.1:$port"
export TOOL_SIGNING_SECRETS="first-secret-0123456789abcdef,second-secret-0123456789abcdef"
log=$(mktemp)
target/debug/examples/tool_server >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log"' EXIT

for _ in $(seq 1 100); do
  curl -fsS "http://$CALLGUARD_ADDR/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

python3 - <<'PY'
import hashlib, hmac, json, os, urllib.request, urllib.error

base = "http://" + os.environ["CALLGUARD_ADDR"]
secrets = os.environ["TOOL_SIGNING_SECRETS"].split(",")

def post(path, body, signature=None):
    request = urllib.request.Request(base + path, data=body, method="POST")
    if signature is not None:
        request.add_header("x-signature", signature)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()

body = b'{"text":"h\xc3\xa9llo","bytes":"\x00\xff"}'
for index, secret in enumerate(secrets, start=1):
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    status, answer = post("/tools/echo", body, signature)
    assert status == 200, (status, answer)
    assert answer["route"] == "/tools/echo", answer
    assert answer["method"] == "signature", answer
    assert answer["key_id"] == f"secret-{index}", answer
    assert answer["body_len"] == len(body), answer
    assert answer["body_sha256"] == hashlib.sha256(body).hexdigest(), answer
    assert "tools:call" in answer["scopes"], answer

signature = hmac.new(secrets[0].encode(), body, hashlib.sha256).hexdigest()
assert post("/tools/echo", body + b" ", signature)[0] == 401
assert post("/tools/echo", body)[0] == 401
assert post("/tools/echo", body, signature.upper())[0] == 200
print("smoke: tool_server answered 6 requests as its contract says")
PY
