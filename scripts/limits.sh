#!/usr/bin/env bash
# Abuse controls through the running example server, driven over loopback by Python's
# urllib: a rate limit per caller (429 with Retry-After, RateLimit-Policy, RateLimit),
# failed-attempt limits (429 with Retry-After, another client unaffected, recovery
# after the window, escalation), X-Forwarded-For believed only from trusted proxies (a
# spoofed leftmost entry does not help), the webhook allow-list, and, on one Redis, two
# replicas sharing their failure counts and 503 once Redis is gone.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib.sh

cargo build --quiet --example tool_server --features redis
binary=target/debug/examples/tool_server

export TOOL_SIGNING_SECRETS="limits-secret-0123456789abcdef"
export TOOL_BEARER_TOKENS="agent=tok_agent_limits_0123456789ab"
export TOOL_JWT_SECRET="jwt-secret-for-the-limits-test-0123456789"
export TOOL_BASIC_USERS="minter:minter-password-0123456789"
export GITHUB_WEBHOOK_SECRET="github-webhook-secret-for-limits-0123"
allowed=$(mktemp)
export CALLGUARD_OTP_OUTBOX=$(mktemp)
printf '# GitHub hooks (test ranges)\n192.0.2.0/24\n\n2001:db8::/32  # v6\n' >"$allowed"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -f "$allowed" "$CALLGUARD_OTP_OUTBOX"
}
trap cleanup EXIT

# start NAME VAR=VALUE...: one server with extra environment, its address in $NAME.
start() {
  local name=$1; shift
  local addr="127.0.0.1:$(free_port)"
  env CALLGUARD_ADDR="$addr" "$@" "$binary" >/dev/null 2>/dev/null &
  pids+=($!)
  CALLGUARD_ADDR="$addr" wait_healthy
  printf -v "$name" '%s' "$addr"
}

start TRUSTING CALLGUARD_FAILURE_LIMIT=3/2 CALLGUARD_TRUSTED_PROXIES=127.0.0.1/32 \
  CALLGUARD_WEBHOOK_ALLOWED_IPS="$allowed"
start DISTRUSTING CALLGUARD_FAILURE_LIMIT=3/60 CALLGUARD_TRUSTED_PROXIES=10.0.0.0/8
start RATED CALLGUARD_RATE_LIMIT=3/60

redis_port=""
if command -v redis-server >/dev/null; then
  redis_port=$(free_port)
  redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no >/dev/null &
  redis_pid=$!
  pids+=($redis_pid)
  for _ in $(seq 1 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  start REPLICA_A CALLGUARD_FAILURE_LIMIT=3/60 CALLGUARD_TRUSTED_PROXIES=127.0.0.1/32 \
    CALLGUARD_REDIS_URL="redis://127.0.0.1:$redis_port/"
  start REPLICA_B CALLGUARD_FAILURE_LIMIT=3/60 CALLGUARD_TRUSTED_PROXIES=127.0.0.1/32 \
    CALLGUARD_REDIS_URL="redis://127.0.0.1:$redis_port/"
  export REPLICA_A REPLICA_B
elif [ -n "${CALLGUARD_REQUIRE_REDIS:-}" ]; then
  echo "limits: redis-server is required here" >&2; exit 1
else
  echo "limits: redis-server is not installed; shared counts were not checked" >&2
fi
export TRUSTING DISTRUSTING RATED

python3 - <<'PY'
import hashlib, hmac, json, os, time, urllib.request, urllib.error

TOKEN = "tok_agent_limits_0123456789ab"
WRONG = "tok_wrong_limits_0123456789ab"

def call(addr, path, token=None, forwarded=None, body=b"{}", headers=()):
    request = urllib.request.Request(f"http://{addr}{path}", data=body, method="POST")
    if token is not None:
        request.add_header("authorization", f"Bearer {token}")
    if forwarded is not None:
        request.add_header("x-forwarded-for", forwarded)
    for name, value in headers:
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.headers

def status(*args, **kwargs):
    return call(*args, **kwargs)[0]

trusting = os.environ["TRUSTING"]
attacker, user = "203.0.113.7", "198.51.100.20"

# A burst of wrong tokens from one client becomes 429, without the credential checked.
for attempt in range(3):
    assert status(trusting, "/tools/echo", WRONG, attacker) == 401, attempt
code, headers = call(trusting, "/tools/echo", TOKEN, attacker)
assert code == 429, code
assert 1 <= int(headers["Retry-After"]) <= 2, headers
# The right token from another client still passes: the account is not locked.
assert status(trusting, "/tools/echo", TOKEN, user) == 200
# A spoofed leftmost entry does not help: the trusted proxy's entry is the client.
assert status(trusting, "/tools/echo", TOKEN, f"{user}, {attacker}") == 429
# The lock ends with the window.
time.sleep(2.2)
assert status(trusting, "/tools/echo", TOKEN, attacker) == 200
print("limits: lockout, another client unaffected, spoofing ignored, recovery: ok")

# The webhook allow-list: outside it 403 before any check; inside, the signature decides.
secret = os.environ["GITHUB_WEBHOOK_SECRET"].encode()
body = b'{"zen":"Keep it logically awesome."}'
signed = [("x-hub-signature-256", "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()),
          ("x-github-event", "ping"), ("x-github-delivery", "d-1")]
assert status(trusting, "/webhooks/github", None, "203.0.113.9", body, signed) == 403
assert status(trusting, "/webhooks/github", None, "192.0.2.5", body, signed) == 200
assert status(trusting, "/webhooks/github", None, "2001:db8::5", body, signed) == 200
assert status(trusting, "/webhooks/github", None, "192.0.2.6", body, [("x-hub-signature-256", "sha256=" + "0" * 64)]) == 401
print("limits: webhook allow-list: ok")

# From a peer that is not a trusted proxy, X-Forwarded-For is the client's own claim and
# is ignored: every failure counts against the peer, whatever it says.
distrusting = os.environ["DISTRUSTING"]
for n in range(3):
    assert status(distrusting, "/tools/echo", WRONG, f"203.0.113.{n + 1}") == 401
assert status(distrusting, "/tools/echo", TOKEN, user) == 429
print("limits: X-Forwarded-For from an untrusted peer ignored: ok")

# A rate limit per accepted caller: the quota at once, then 429 with the IETF fields.
rated = os.environ["RATED"]
for n in range(3):
    assert status(rated, "/tools/echo", TOKEN) == 200, n
code, headers = call(rated, "/tools/echo", TOKEN)
assert code == 429, code
assert headers.get("RateLimit-Policy") == '"callguard";q=3;w=60', headers
assert headers.get("RateLimit", "").startswith('"callguard";r=0;t='), headers
assert 1 <= int(headers.get("Retry-After")) <= 20, headers
print("limits: rate limit with Retry-After and the RateLimit fields: ok")

# One-time codes: Basic credentials, a code through the outbox, each answer the issue names.
import base64
minter = "Basic " + base64.b64encode(b"minter:minter-password-0123456789").decode()
outbox = os.environ["CALLGUARD_OTP_OUTBOX"]

def mfa(addr, path, body):
    request = urllib.request.Request(f"http://{addr}{path}", data=json.dumps(body).encode(), method="POST")
    request.add_header("authorization", minter)
    request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")

def last_code(phone):
    lines = [l.split() for l in open(outbox).read().splitlines()]
    return [code for p, code in lines if p == phone][-1]

assert mfa(rated, "/mfa/send", {"phone": "+15551234567"}) == (202, {"status": "sent", "expires_in": 300})
assert mfa(rated, "/mfa/send", {"phone": "+15551234567"})[0] == 429
code = last_code("+15551234567")
wrong = "000000" if code != "000000" else "000001"
for _ in range(3):
    assert mfa(rated, "/mfa/verify", {"phone": "+15551234567", "code": wrong}) == (401, {"error": "invalid code"})
assert mfa(rated, "/mfa/verify", {"phone": "+15551234567", "code": code})[0] == 429
assert mfa(rated, "/mfa/verify", {"phone": "+15557654321", "code": "123456"}) == (400, {"error": "no code sent"})
assert mfa(rated, "/mfa/send", {"phone": "+15557654321"})[0] == 202
code = last_code("+15557654321")
verified, answer = mfa(rated, "/mfa/verify", {"phone": "+15557654321", "code": code})
assert verified == 200 and answer["verified"] is True, (verified, answer)
claims = json.loads(base64.urlsafe_b64decode(answer["access_token"].split(".")[1] + "=="))
assert claims["sub"] == "+15557654321" and claims["scope"] == "mfa:verified", claims
assert mfa(rated, "/mfa/verify", {"phone": "+15557654321", "code": code}) == (400, {"error": "no code sent"})
print("limits: one-time codes (sent, throttled, wrong, too many, none sent, verified once): ok")

if "REPLICA_A" in os.environ:
    a, b = os.environ["REPLICA_A"], os.environ["REPLICA_B"]
    assert mfa(a, "/mfa/send", {"phone": "+15550009999"})[0] == 202
    assert mfa(b, "/mfa/send", {"phone": "+15550009999"})[0] == 429
    code = last_code("+15550009999")
    assert mfa(b, "/mfa/verify", {"phone": "+15550009999", "code": code})[0] == 200
    assert mfa(a, "/mfa/verify", {"phone": "+15550009999", "code": code}) == (400, {"error": "no code sent"})
    print("limits: two replicas on one Redis share one-time codes: ok")
    assert status(a, "/tools/echo", WRONG, attacker) == 401
    assert status(b, "/tools/echo", WRONG, attacker) == 401
    assert status(a, "/tools/echo", WRONG, attacker) == 401
    assert status(b, "/tools/echo", TOKEN, attacker) == 429
    assert status(a, "/tools/echo", TOKEN, attacker) == 429
    assert status(b, "/tools/echo", TOKEN, user) == 200
    print("limits: two replicas on one Redis share the counts: ok")
PY

if [ -n "$redis_port" ]; then
  kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "authorization: Bearer tok_agent_limits_0123456789ab" \
    -H "x-forwarded-for: 198.51.100.20" "http://$REPLICA_A/tools/echo" --data '{}')
  [ "$code" = 503 ] || { echo "limits: Redis gone answered $code, not 503" >&2; exit 1; }
  echo "limits: Redis gone is 503: ok"
fi
