#!/usr/bin/env bash
# Start the example tool server with known secrets and drive it over loopback with an
# independent client (Python's hmac, base64 and urllib, no third-party code): healthz,
# signatures made with each of two secrets, tampered and missing signatures, static bearer
# tokens, minting a JWT with Basic credentials (its HS256 signature checked by Python), the
# scope-protected route, and the token endpoint's 400s. Exits non-zero on any mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib.sh

cargo build --quiet --example tool_server
export CALLGUARD_ADDR="127.0.0.1:$(free_port)"
export TOOL_SIGNING_SECRETS="first-secret-0123456789abcdef,second-secret-0123456789abcdef"
export TOOL_BEARER_TOKENS="agent-a=tok_agent_a_0123456789abcdef,agent-b=tok_agent_b_0123456789abcdef"
export TOOL_JWT_SECRET="jwt-secret-for-the-smoke-test-0123456789"
export TOOL_BASIC_USERS="minter:minter-password-0123456789"
export SENDBIRD_API_TOKEN="sendbird-master-api-token-for-the-smoke-0123"
export GITHUB_WEBHOOK_SECRET="github-webhook-secret-for-the-smoke-0123"

# A secret with a trailing newline (as read from a file) is refused at startup, by name.
if TOOL_JWT_SECRET=$'jwt-secret-with-a-newline-0123456789\n' target/debug/examples/tool_server >/dev/null 2>/tmp/callguard-smoke-refused.log; then
  echo "the server started with a secret that ends in a newline" >&2; exit 1
fi
grep -q "TOOL_JWT_SECRET" /tmp/callguard-smoke-refused.log || { echo "the refusal does not name TOOL_JWT_SECRET" >&2; cat /tmp/callguard-smoke-refused.log >&2; exit 1; }

# No body limit at all: a lying Content-Length must still not size an allocation.
export CALLGUARD_BODY_LIMIT=68719476736
export CALLGUARD_HEADER_TIMEOUT=2
export SERVER_LOG=$(mktemp)
server_log=$SERVER_LOG
start_tool_server target/debug/examples/tool_server

python3 - <<'PY'
import base64, hashlib, hmac, json, os, time, urllib.request, urllib.error

base = "http://" + os.environ["CALLGUARD_ADDR"]
secrets = os.environ["TOOL_SIGNING_SECRETS"].split(",")

def post(path, body, signature=None, authorization=None):
    request = urllib.request.Request(base + path, data=body, method="POST")
    if signature is not None:
        request.add_header("x-signature", signature)
    if authorization is not None:
        request.add_header("authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

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

for name, token in (pair.split("=", 1) for pair in os.environ["TOOL_BEARER_TOKENS"].split(",")):
    status, answer = post("/tools/echo", body, authorization=f"Bearer {token}")
    assert status == 200 and answer["method"] == "bearer" and answer["id"] == name, (status, answer)
    assert answer["scopes"] == ["tools:call"], answer
    assert post("/tools/orders", body, authorization=f"Bearer {token}")[0] == 403
assert post("/tools/echo", body, authorization="Bearer tok_unknown_0123456789abcdef")[0] == 401

user, password = os.environ["TOOL_BASIC_USERS"].split(":", 1)
basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
request = json.dumps({"scopes": ["tools:call", "orders:write"], "ttl": 120}).encode()
status, minted = post("/auth/token", request, authorization=basic)
assert status == 201, (status, minted)
assert minted["token_type"] == "Bearer" and minted["expires_in"] == 120, minted
assert minted["scope"] == "orders:write tools:call", minted
header, payload, signature = minted["access_token"].split(".")
expected = hmac.new(os.environ["TOOL_JWT_SECRET"].encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
assert hmac.compare_digest(b64url_decode(signature), expected), "minted JWT is not HS256 over its segments"
claims = json.loads(b64url_decode(payload))
assert json.loads(b64url_decode(header))["alg"] == "HS256"
assert claims["iss"] == "callguard-example" and claims["aud"] == "tools" and claims["sub"] == user, claims
assert abs(claims["exp"] - 120 - time.time()) < 30, claims

jwt = "Bearer " + minted["access_token"]
status, answer = post("/tools/orders", body, authorization=jwt)
assert status == 200 and answer["method"] == "jwt" and answer["id"] == user, (status, answer)
assert answer["route"] == "/tools/orders" and answer["key_id"], answer
assert post("/tools/orders", body, signature=hmac.new(secrets[0].encode(), body, hashlib.sha256).hexdigest())[0] == 403

for bad in [b'{"scopes":["admin"]}', b'{"ttl":0}', b'{"ttl":3601}', b'not json', b'{"ttl":"5"}']:
    assert post("/auth/token", bad, authorization=basic)[0] == 400, bad
assert post("/auth/token", request, authorization="Basic " + base64.b64encode(b"minter:wrong").decode())[0] == 401
assert post("/auth/token", request)[0] == 401

# A lying Content-Length with no limit: two small frames, then the connection closes. The
# server must neither reserve the declared 64 GiB nor abort.
import socket
host, port = os.environ["CALLGUARD_ADDR"].split(":")
with socket.create_connection((host, int(port)), timeout=10) as s:
    s.sendall(b"POST /tools/echo HTTP/1.1\r\nHost: x\r\nx-signature: " + b"00" * 32 +
              b"\r\nContent-Length: 68719476736\r\n\r\nfirst")
    time.sleep(0.05)
    s.sendall(b"second")
    time.sleep(0.05)
with urllib.request.urlopen(base + "/healthz", timeout=10) as response:
    assert response.status == 200, "the server did not survive a lying Content-Length"

# A signed JWT whose typ has a multi-byte character at the media-type boundary: 401, no panic.
def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
head = b64url(json.dumps({"alg": "HS256", "typ": "aaaaaaaaaaa\u00e9"}).encode())
body_part = b64url(json.dumps({"iss": "callguard-example", "aud": "tools", "sub": "x", "exp": int(time.time()) + 60}).encode())
tag = b64url(hmac.new(os.environ["TOOL_JWT_SECRET"].encode(), f"{head}.{body_part}".encode(), hashlib.sha256).digest())
assert post("/tools/echo", body, authorization=f"Bearer {head}.{body_part}.{tag}")[0] == 401
with urllib.request.urlopen(base + "/healthz", timeout=10) as response:
    assert response.status == 200, "the server did not survive the typ check"

# Delegation: POST /tools/refund needs Sendbird's signature (hex HMAC-SHA256 of the raw body,
# the master API token as the key, as Sendbird's guide computes it) and the user's JWT.
def sendbird(body):
    return hmac.new(os.environ["SENDBIRD_API_TOKEN"].encode(), body, hashlib.sha256).hexdigest()

def refund(body, user_token=None, signature="sendbird"):
    request = urllib.request.Request(base + "/tools/refund", data=body, method="POST")
    if signature == "sendbird":
        request.add_header("x-sendbird-signature", sendbird(body))
    elif signature is not None:
        request.add_header("x-signature", hmac.new(signature.encode(), body, hashlib.sha256).hexdigest())
    if user_token is not None:
        request.add_header("authorization", f"Bearer {user_token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), None
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers.get("www-authenticate")

def user_token(sub, scopes, actor=None):
    request = {"scopes": scopes, "sub": sub}
    if actor is not None:
        request["actor"] = actor
    status, minted = post("/auth/token", json.dumps(request).encode(), authorization=basic)
    assert status == 201 and minted["jti"], (status, minted)
    return minted

alice = user_token("alice", ["refunds:write"])["access_token"]
order = lambda n, user="alice": json.dumps({"user_id": user, "order_id": f"o-{n}", "amount": 12}).encode()
status, answer, _ = refund(order(1), alice)
assert status == 200 and answer["id"] == "alice" and answer["method"] == "jwt", (status, answer)
assert answer["scopes"] == ["refunds:write"], answer
assert answer["actor"] == {"method": "signature", "id": "sendbird", "key_id": "sendbird"}, answer
assert refund(order(2), None)[0] == 401, "no user token"
assert refund(order(2), alice, signature=None)[0] == 401, "no agent signature"
assert refund(order(2, user="mallory"), alice)[0] == 403, "the signed user_id is not the token's"
status, _, challenge = refund(order(2), user_token("alice", ["tools:call"])["access_token"])
assert status == 403 and 'insufficient_scope' in challenge and "refunds:write" in challenge, (status, challenge)
assert refund(order(3), "not-a-valid-user-token")[0] == 401
assert refund(order(3), alice)[0] == 200, "the retry of the same signed delivery with a good token succeeds"
assert refund(order(3), alice)[0] == 401, "the same signed delivery a second time is a replay"
assert refund(order(4), user_token("alice", ["refunds:write"], actor="another-agent")["access_token"])[0] == 403
assert refund(order(5), user_token("alice", ["refunds:write"], actor="sendbird")["access_token"])[0] == 200
# A token bound to one of the tool agents' secrets: only that secret's signature presents it.
bound = user_token("alice", ["refunds:write"], actor="secret-1")["access_token"]
status, answer, _ = refund(order(7), bound, signature=secrets[0])
assert status == 200 and answer["actor"] == {"method": "signature", "id": "secret-1", "key_id": "secret-1"}, (status, answer)
assert refund(order(8), bound, signature=secrets[1])[0] == 403, "another agent's secret"

# Revocation of a minted token: 401 on every route afterwards, cached or not.
minted = user_token("alice", ["refunds:write", "tools:call"])
assert post("/tools/echo", body, authorization="Bearer " + minted["access_token"])[0] == 200
request = urllib.request.Request(base + "/auth/token/" + minted["jti"], method="DELETE")
request.add_header("authorization", basic)
with urllib.request.urlopen(request, timeout=10) as response:
    assert response.status == 204
assert post("/tools/echo", body, authorization="Bearer " + minted["access_token"])[0] == 401
assert refund(order(6), minted["access_token"])[0] == 401

# The platform-asserted user, without a user token: shown, marked as asserted.
asserted = json.dumps({"user_id": "bob", "message": "hi"}).encode()
request = urllib.request.Request(base + "/webhooks/sendbird", data=asserted, method="POST")
request.add_header("x-sendbird-signature", sendbird(asserted))
with urllib.request.urlopen(request, timeout=10) as response:
    answer = json.loads(response.read())
assert answer["on_behalf_of"] == "bob" and answer["id"] == "sendbird" and answer["actor"] is None, answer
status, answer = post("/tools/echo", asserted, hmac.new(secrets[0].encode(), asserted, hashlib.sha256).hexdigest())
assert status == 200 and answer["on_behalf_of"] == "bob", answer

# A GitHub delivery larger than the tool routes' limit would be: GitHub's preset accepts
# what GitHub delivers (up to 25 MB), so a 3 MB push event is not a 413.
large = b'{"ref":"refs/heads/main","padding":"' + b"x" * (3 * 1024 * 1024) + b'"}'
request = urllib.request.Request(base + "/webhooks/github", data=large, method="POST")
request.add_header("x-hub-signature-256", "sha256=" + hmac.new(os.environ["GITHUB_WEBHOOK_SECRET"].encode(), large, hashlib.sha256).hexdigest())
with urllib.request.urlopen(request, timeout=30) as response:
    answer = json.loads(response.read())
    assert response.status == 200 and answer["id"] == "github" and answer["body_len"] == len(large), answer

# A client that never finishes its request head is cut off after CALLGUARD_HEADER_TIMEOUT.
import socket
host, port = os.environ["CALLGUARD_ADDR"].rsplit(":", 1)
slow = socket.create_connection((host, int(port)), timeout=10)
slow.sendall(b"POST /tools/echo HTTP/1.1\r\nHost: x\r\nx-signature: ")
started = time.monotonic()
try:
    answer = slow.recv(1024)
except ConnectionResetError:
    answer = b""
assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer
assert time.monotonic() - started < 9, "the connection was held open past the header timeout"
slow.close()

# Refusals are in the log, named and with the path, and no credential is.
time.sleep(0.2)
log = open(os.environ["SERVER_LOG"]).read()
assert "callguard refused a request" in log and "guard=tools" in log and "path=/tools/echo" in log, log[-2000:]
assert "guard=token-endpoint" in log, log[-2000:]
assert "tok_unknown_0123456789abcdef" not in log and os.environ["TOOL_JWT_SECRET"] not in log and tag not in log
print("smoke: tool_server answered every request as its contract says")
PY

# With an ES256 private key, minted tokens are signed with it and its public key set is
# served at /.well-known/jwks.json (without one, that path is 404: an HMAC secret is never
# published).
curl -s -o /dev/null -w '%{http_code}' "http://$CALLGUARD_ADDR/.well-known/jwks.json" | grep -qx 404
kill $server 2>/dev/null || true
wait $server 2>/dev/null || true
export CALLGUARD_ADDR="127.0.0.1:$(free_port)"
export TOOL_JWT_PRIVATE_KEY_FILE=tests/data/oauth/ec.pem
start_tool_server target/debug/examples/tool_server
python3 - <<'PY'
import base64, json, os, urllib.request

base = "http://" + os.environ["CALLGUARD_ADDR"]
with urllib.request.urlopen(base + "/.well-known/jwks.json", timeout=10) as response:
    assert response.headers["content-type"] == "application/jwk-set+json"
    keys = json.loads(response.read())["keys"]
assert [k["kid"] for k in keys] == ["example-es256"] and keys[0]["alg"] == "ES256" and "d" not in keys[0], keys
user, password = os.environ["TOOL_BASIC_USERS"].split(":", 1)
basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
request = urllib.request.Request(base + "/auth/token", data=json.dumps({"scopes": ["tools:call"]}).encode(), method="POST")
request.add_header("authorization", basic)
with urllib.request.urlopen(request, timeout=10) as response:
    token = json.loads(response.read())["access_token"]
header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
assert header["alg"] == "ES256" and header["kid"] == "example-es256", header
request = urllib.request.Request(base + "/tools/echo", data=b"{}", method="POST")
request.add_header("authorization", "Bearer " + token)
with urllib.request.urlopen(request, timeout=10) as response:
    assert json.loads(response.read())["method"] == "jwt"
print("smoke: minted ES256 tokens verify, and their key set is published")
PY
