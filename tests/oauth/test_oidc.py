"""The example server behind callguard against a real authorization server.

node `oidc-provider` (pinned in package.json) issues client_credentials access tokens for
this resource; the running example server must accept them with their scopes and refuse
every token that must not pass. The provider is restarted with a rotated signing key, and
finally stopped, while the server keeps verifying.
"""
import base64, hashlib, hmac, json, os, socket, subprocess, sys, time, urllib.error, urllib.parse, urllib.request

import jwt

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS = os.path.join(HERE, "..", "data", "oauth")
SECRET = "oauth-client-secret-0123456789abcdef"
RESOURCE = "https://tools.example.com"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(url, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


class Provider:
    def __init__(self, port, keys):
        self.port, self.issuer = port, f"http://127.0.0.1:{port}"
        env = dict(os.environ, PORT=str(port), KEYS=keys, CLIENT_SECRET=SECRET)
        self.process = subprocess.Popen(["node", os.path.join(HERE, "provider.mjs")], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.issuer + "/.well-known/openid-configuration")

    def token(self, client="agent", scope="tools:call", resource=RESOURCE):
        body = urllib.parse.urlencode({"grant_type": "client_credentials", "resource": resource, "scope": scope}).encode()
        request = urllib.request.Request(self.issuer + "/token", data=body, method="POST")
        request.add_header("authorization", "Basic " + base64.b64encode(f"{client}:{SECRET}".encode()).decode())
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())["access_token"]

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


def tool_server_env(addr, provider, **extra):
    """The example server's environment for these runs: `provider` as its issuer, on `addr`."""
    env = dict(os.environ, CALLGUARD_ADDR=addr, CALLGUARD_OAUTH_ISSUERS=provider.issuer, CALLGUARD_RESOURCE=RESOURCE,
               TOOL_SIGNING_SECRETS="oauth-signing-secret-0123456789", TOOL_BEARER_TOKENS="static=tok_static_0123456789abcdef",
               TOOL_JWT_SECRET="oauth-jwt-secret-0123456789abcdef", TOOL_BASIC_USERS="minter:oauth-password-0123456789")
    env.update(extra)
    return env


def call(base, token):
    request = urllib.request.Request(base + "/tools/echo", data=b"{}", method="POST")
    request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("www-authenticate")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pem(name):
    with open(os.path.join(KEYS, name), "rb") as f:
        return f.read()


def forged(issuer, key="rsa-a.pem", kid="rsa-a", typ="at+jwt", **claims):
    payload = {"iss": issuer, "aud": RESOURCE, "sub": "agent", "client_id": "agent", "scope": "tools:call",
               "exp": int(time.time()) + 300, "iat": int(time.time()), "jti": "forged"}
    payload.update(claims)
    return jwt.encode(payload, pem(key), algorithm="RS256", headers={"kid": kid, "typ": typ})


def main():
    results = []

    def check(name, condition, detail=""):
        results.append(condition)
        print(("ok   " if condition else "FAIL ") + "oauth: " + name + ("" if condition else f": {detail}"))

    provider = Provider(free_port(), "rsa-a")
    addr = f"127.0.0.1:{free_port()}"
    base = "http://" + addr
    env = tool_server_env(addr, provider, CALLGUARD_INTROSPECTION_URL=provider.issuer + "/token/introspection",
                          CALLGUARD_INTROSPECTION_CLIENT_ID="resource-server", CALLGUARD_INTROSPECTION_CLIENT_SECRET=SECRET)
    server = subprocess.Popen([sys.argv[1]], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(base + "/healthz")
        token = provider.token(scope="tools:call orders:write")
        status, answer = call(base, token)
        check("a client_credentials token is accepted with its scopes",
              status == 200 and answer["method"] == "oauth" and answer["id"] == "agent" and answer["issuer"] == provider.issuer
              and answer["client_id"] == "agent" and answer["scopes"] == ["orders:write", "tools:call"], (status, answer))

        refused = {
            "a token for another audience": provider.token(resource="https://elsewhere.example.com"),
            "an expired token": forged(provider.issuer, exp=int(time.time()) - 120),
            "another issuer's token": forged("http://127.0.0.1:1"),
            "a token signed by a key not in the JWKS": forged(provider.issuer, key="rsa-other.pem"),
            "a typ JWT token": forged(provider.issuer, typ="JWT"),
        }
        header, payload, _ = token.split(".")
        confused_tag = hmac.new(pem("rsa-a.pub.pem"), f"{b64url(json.dumps({'alg': 'HS256', 'typ': 'at+jwt', 'kid': 'rsa-a'}).encode())}.{payload}".encode(), hashlib.sha256).digest()
        refused["a token re-signed with HS256 using the RSA public key"] = (
            f"{b64url(json.dumps({'alg': 'HS256', 'typ': 'at+jwt', 'kid': 'rsa-a'}).encode())}.{payload}.{b64url(confused_tag)}")
        refused["alg none"] = f"{b64url(json.dumps({'alg': 'none', 'typ': 'at+jwt', 'kid': 'rsa-a'}).encode())}.{payload}."
        for name, bad in refused.items():
            status, challenge = call(base, bad)
            check(f"{name} is 401", status == 401 and "Bearer" in (challenge or ""), (status, challenge))

        opaque = provider.token(client="opaque-agent", scope="tools:call")
        status, answer = call(base, opaque)
        check("an opaque token is introspected and accepted",
              status == 200 and answer["method"] == "oauth" and answer["client_id"] == "opaque-agent"
              and answer["scopes"] == ["tools:call"], (status, answer))
        status, _ = call(base, "opaque-token-nobody-issued-0123456789")
        check("an opaque token the provider does not know is 401", status == 401, status)
        status, answer = call(base, "tok_static_0123456789abcdef")
        check("a static token is still a static token", status == 200 and answer["method"] == "bearer", (status, answer))

        # Rotation: the provider now signs with rsa-b and publishes both keys.
        provider.stop()
        provider = Provider(provider.port, "rsa-b,rsa-a")
        rotated = provider.token()
        check("the rotated token names the new kid", json.loads(base64.urlsafe_b64decode(rotated.split(".")[0] + "=="))["kid"] == "rsa-b")
        status, answer = call(base, rotated)
        check("a token with the new kid is accepted on first use", status == 200 and answer["method"] == "oauth", (status, answer))

        # The provider goes away: tokens seen keep working, new ones under cached keys verify.
        unseen = provider.token(scope="tools:call")
        provider.stop()
        status, _ = call(base, rotated)
        check("with the provider stopped, a token already seen still passes", status == 200, status)
        status, _ = call(base, unseen)
        check("with the provider stopped, a new token under a cached key verifies", status == 200, status)
        status, _ = call(base, opaque)
        check("with the provider stopped, an introspected token is served from the cache", status == 200, status)
        status, _ = call(base, "another-opaque-token-0123456789abcdef")
        check("with the provider stopped, a new opaque token is 503, not accepted", status == 503, status)
    finally:
        server.terminate()
        try:
            provider.stop()
        except Exception:
            pass

    # An http:// issuer off loopback is refused at startup, with a clear message.
    refused = subprocess.run([sys.argv[1]], env=dict(env, CALLGUARD_OAUTH_ISSUERS="http://as.example.com"),
                             capture_output=True, timeout=30)
    check("a non-loopback http issuer is refused at startup", refused.returncode != 0 and b"https" in refused.stderr, refused.stderr[-300:])
    passed = sum(results)
    print(f"oauth: {passed} passed, {len(results) - passed} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
