"""DPoP (RFC 9449) against a real authorization server and an independent proof maker.

node `oidc-provider` (pinned in package.json, DPoP on by default) issues DPoP-bound
client_credentials tokens (`cnf.jkt`) to a client whose proofs PyJWT makes with an ES256 key
of its own, public key in the header. The example server (built with --features
reqwest,dpop,redis) must accept a token only with a proof by its key, for this request, once:
every broken proof is 401 with a DPoP challenge; a proof used twice is refused, also by a
second replica sharing one Redis; with CALLGUARD_DPOP_NONCE=1 the nonce flow works.
"""
import base64, hashlib, json, os, shutil, subprocess, sys, time, urllib.error, urllib.parse, urllib.request, uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_oidc import Provider, RESOURCE, SECRET, free_port, tool_server_env, wait_for  # noqa: E402


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class ClientKey:
    """A client's DPoP key, its public JWK, and its RFC 7638 thumbprint."""

    def __init__(self, private=None):
        self.private = private or ec.generate_private_key(ec.SECP256R1())
        if isinstance(self.private, rsa.RSAPrivateKey):
            self.alg = "RS256"
            self.jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
            required = {"e": self.jwk["e"], "kty": "RSA", "n": self.jwk["n"]}
        else:
            self.alg = "ES256"
            self.jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key()))
            required = {"crv": self.jwk["crv"], "kty": "EC", "x": self.jwk["x"], "y": self.jwk["y"]}
        canonical = json.dumps(required, separators=(",", ":"), sort_keys=True).encode()
        self.thumbprint = b64url(hashlib.sha256(canonical).digest())

    def proof(self, htm, htu, token=None, nonce=None, header=None, **claims):
        payload = {"jti": str(uuid.uuid4()), "htm": htm, "htu": htu, "iat": int(time.time())}
        if token is not None:
            payload["ath"] = b64url(hashlib.sha256(token.encode()).digest())
        if nonce is not None:
            payload["nonce"] = nonce
        payload.update(claims)
        payload = {name: value for name, value in payload.items() if value is not None}
        headers = {"typ": "dpop+jwt", "jwk": self.jwk}
        headers.update(header or {})
        return jwt.encode(payload, self.private, algorithm=self.alg, headers=headers)


def bound_token(provider, key, scope="tools:call", resource=RESOURCE, client="agent"):
    """A client_credentials token bound to `key`, as RFC 9449 §5 asks for it."""
    url = provider.issuer + "/token"
    body = urllib.parse.urlencode({"grant_type": "client_credentials", "resource": resource, "scope": scope}).encode()
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("authorization", "Basic " + base64.b64encode(f"{client}:{SECRET}".encode()).decode())
    request.add_header("dpop", key.proof("POST", url))
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    return answer["access_token"], answer["token_type"]


def call(base, scheme, token, proof=None, path="/tools/echo"):
    request = urllib.request.Request(base + path, data=b"{}", method="POST")
    request.add_header("authorization", f"{scheme} {token}")
    if proof is not None:
        request.add_header("dpop", proof)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get_all("www-authenticate") or [], error.headers


def server(binary, addr, provider, **extra):
    env = tool_server_env(addr, provider, **dict({"CALLGUARD_PUBLIC_URL": "http://" + addr}, **extra))
    process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(f"http://{addr}/healthz")
    return process


def main():
    binary = sys.argv[1]
    results = []

    def check(name, condition, detail=""):
        condition = bool(condition)
        results.append(condition)
        print(("ok   " if condition else "FAIL ") + "dpop: " + name + ("" if condition else f": {detail}"))

    def dpop_challenge(answer, error):
        return isinstance(answer, list) and any(c.startswith("DPoP ") and f'error="{error}"' in c and "algs=" in c for c in answer)

    provider = Provider(free_port(), "rsa-a")
    processes = []
    redis = None
    try:
        addr = f"127.0.0.1:{free_port()}"
        base = "http://" + addr
        htu = base + "/tools/echo"
        processes.append(server(binary, addr, provider,
                                CALLGUARD_INTROSPECTION_URL=provider.issuer + "/token/introspection",
                                CALLGUARD_INTROSPECTION_CLIENT_ID="resource-server",
                                CALLGUARD_INTROSPECTION_CLIENT_SECRET=SECRET))
        key = ClientKey()
        token, token_type = bound_token(provider, key)
        claims = jwt.decode(token, options={"verify_signature": False})
        check("oidc-provider binds the token to the client's key",
              token_type == "DPoP" and claims.get("cnf", {}).get("jkt") == key.thumbprint, (token_type, claims.get("cnf")))

        status, answer, _ = call(base, "DPoP", token, key.proof("POST", htu, token))
        check("a valid proof is accepted and the answer names the key",
              status == 200 and answer["method"] == "oauth" and answer["jkt"] == key.thumbprint, (status, answer))
        status, answer, _ = call(base, "Bearer", token, key.proof("POST", htu, token))
        check("the bound token presented as Bearer is 401", status == 401
              and any(c.startswith("DPoP ") for c in answer), (status, answer))

        # The server's own token endpoint binds what it mints to the proof it is shown.
        minted = urllib.request.Request(base + "/auth/token", data=b'{"scopes":["tools:call"]}', method="POST")
        minted.add_header("authorization", "Basic " + base64.b64encode(b"minter:oauth-password-0123456789").decode())
        minted.add_header("content-type", "application/json")
        minted.add_header("dpop", key.proof("POST", base + "/auth/token"))
        with urllib.request.urlopen(minted, timeout=10) as response:
            own = json.loads(response.read())
        own_claims = jwt.decode(own["access_token"], options={"verify_signature": False})
        check("/auth/token shown a proof mints a token bound to its key",
              own["token_type"] == "DPoP" and own_claims.get("cnf", {}).get("jkt") == key.thumbprint, (own, own_claims))
        status, answer, _ = call(base, "DPoP", own["access_token"], key.proof("POST", htu, own["access_token"]))
        check("the server's own DPoP-bound token is accepted with a proof of its key",
              status == 200 and answer["method"] == "jwt" and answer["jkt"] == key.thumbprint, (status, answer))
        status, answer, _ = call(base, "Bearer", own["access_token"])
        check("the server's own DPoP-bound token as Bearer is 401", status == 401, (status, answer))
        bad = urllib.request.Request(base + "/auth/token", data=b"{}", method="POST")
        bad.add_header("authorization", "Basic " + base64.b64encode(b"minter:oauth-password-0123456789").decode())
        bad.add_header("dpop", key.proof("GET", base + "/auth/token"))
        try:
            urllib.request.urlopen(bad, timeout=10)
            check("/auth/token refuses a bad proof", False, "accepted")
        except urllib.error.HTTPError as error:
            check("/auth/token refuses a bad proof with 400 invalid_dpop_proof",
                  error.code == 400 and json.loads(error.read())["error"] == "invalid_dpop_proof", error.code)

        # An opaque token, bound as the introspection answer's `cnf` says.
        opaque, opaque_type = bound_token(provider, key, client="opaque-agent")
        status, answer, _ = call(base, "DPoP", opaque, key.proof("POST", htu, opaque))
        check("an introspected DPoP-bound token is accepted with a proof of its key",
              opaque.count(".") == 0 and opaque_type == "DPoP" and status == 200 and answer["jkt"] == key.thumbprint,
              (opaque_type, status, answer))
        status, answer, _ = call(base, "Bearer", opaque)
        check("the introspected DPoP-bound token as Bearer is 401", status == 401, (status, answer))
        status, answer, _ = call(base, "DPoP", opaque, ClientKey().proof("POST", htu, opaque))
        check("the introspected DPoP-bound token with another key's proof is 401",
              status == 401 and dpop_challenge(answer, "invalid_dpop_proof"), (status, answer))

        other = ClientKey()
        rsa_key = ClientKey(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        private_jwk = dict(key.jwk, d=json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.private))["d"])
        now = int(time.time())
        header_b64 = lambda header: b64url(json.dumps(header).encode())
        claims_b64 = b64url(json.dumps({"jti": "x", "htm": "POST", "htu": htu, "iat": now,
                                        "ath": b64url(hashlib.sha256(token.encode()).digest())}).encode())
        hs256 = jwt.encode({"jti": str(uuid.uuid4()), "htm": "POST", "htu": htu, "iat": now,
                            "ath": b64url(hashlib.sha256(token.encode()).digest())},
                           "a-shared-secret-of-32-bytes-long!", algorithm="HS256",
                           headers={"typ": "dpop+jwt", "jwk": {"kty": "oct", "k": b64url(b"a-shared-secret-of-32-bytes-long!")}})
        broken = {
            "no proof": None,
            "wrong htm": key.proof("GET", htu, token),
            "another path": key.proof("POST", base + "/tools/other", token),
            "another host": key.proof("POST", "http://evil.example.com/tools/echo", token),
            "a stale iat": key.proof("POST", htu, token, iat=now - 600),
            "a future iat": key.proof("POST", htu, token, iat=now + 600),
            "no ath": key.proof("POST", htu, None),
            "a wrong ath": key.proof("POST", htu, "another-token"),
            "another key": other.proof("POST", htu, token),
            "another key of another kind": rsa_key.proof("POST", htu, token),
            "typ JWT": key.proof("POST", htu, token, header={"typ": "JWT"}),
            "an HMAC proof": hs256,
            "alg none": f"{header_b64({'typ': 'dpop+jwt', 'alg': 'none', 'jwk': key.jwk})}.{claims_b64}.",
            "a private key in jwk": key.proof("POST", htu, token, header={"jwk": private_jwk}),
        }
        for name, proof in broken.items():
            status, answer, _ = call(base, "DPoP", token, proof)
            check(f"{name}: 401 with a DPoP challenge", status == 401 and dpop_challenge(answer, "invalid_dpop_proof"),
                  (status, answer))

        proof = key.proof("POST", htu, token)
        first, _, _ = call(base, "DPoP", token, proof)
        second, answer, _ = call(base, "DPoP", token, proof)
        check("a proof used twice: the second is 401", first == 200 and second == 401
              and dpop_challenge(answer, "invalid_dpop_proof"), (first, second, answer))

        # Two replicas on one Redis: a proof one accepted, the other refuses.
        if shutil.which("redis-server") is None:
            check("redis-server is installed for the two-replica case", False, "redis-server not found")
        else:
            redis_port = free_port()
            redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.3)
            public = f"127.0.0.1:{free_port()}"
            replicas = []
            for _ in range(2):
                replica = f"127.0.0.1:{free_port()}"
                processes.append(server(binary, replica, provider, CALLGUARD_REDIS_URL=f"redis://127.0.0.1:{redis_port}",
                                        CALLGUARD_PUBLIC_URL="http://" + public))
                replicas.append("http://" + replica)
            proof = key.proof("POST", f"http://{public}/tools/echo", token)
            first, _, _ = call(replicas[0], "DPoP", token, proof)
            second, answer, _ = call(replicas[1], "DPoP", token, proof)
            check("a proof one replica accepted, the other refuses (one Redis)", first == 200 and second == 401,
                  (first, second, answer))

        # Server nonces.
        nonce_addr = f"127.0.0.1:{free_port()}"
        nonce_base = "http://" + nonce_addr
        nonce_htu = nonce_base + "/tools/echo"
        processes.append(server(binary, nonce_addr, provider, CALLGUARD_DPOP_NONCE="1"))
        status, answer, headers = call(nonce_base, "DPoP", token, key.proof("POST", nonce_htu, token))
        nonce = headers.get("dpop-nonce")
        check("without a nonce: 401 use_dpop_nonce and a DPoP-Nonce", status == 401 and nonce
              and dpop_challenge(answer, "use_dpop_nonce"), (status, answer, nonce))
        status, answer, headers = call(nonce_base, "DPoP", token, key.proof("POST", nonce_htu, token, nonce=nonce))
        check("the retry with the nonce is accepted and hands out a fresh one",
              status == 200 and answer["jkt"] == key.thumbprint and headers.get("dpop-nonce"), (status, answer))
        status, answer, _ = call(nonce_base, "DPoP", token, key.proof("POST", nonce_htu, token, nonce="made-up-nonce"))
        check("a made-up nonce is 401", status == 401 and dpop_challenge(answer, "use_dpop_nonce"), (status, answer))
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)
        provider.stop()
    print(f"dpop: {sum(results)}/{len(results)} passed")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
