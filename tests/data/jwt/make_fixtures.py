#!/usr/bin/env python3
"""Make JWT test fixtures with PyJWT (an implementation independent of this crate).

Run: python3 -m venv .venv && .venv/bin/pip install "pyjwt[crypto]==2.10.1"
     .venv/bin/python tests/data/jwt/make_fixtures.py > tests/data/jwt/pyjwt_fixtures.json

The keys are generated fresh and exist only for these tests. Attack tokens that PyJWT
refuses to make on purpose (an HMAC signature keyed with a public key's PEM) are built by
hand with Python's hmac module."""
import base64
import hashlib
import hmac
import json

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

NOW = 1_800_000_000
EXP = 4_102_444_800  # 2100-01-01
ISS = "pyjwt-issuer"
AUD = "tools"
HS_SECRET = "pyjwt-hs256-secret-0123456789abcdef"


def pem_pair(private_key):
    private = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private, public


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides):
    base = {
        "iss": ISS,
        "aud": AUD,
        "sub": "py-agent",
        "iat": NOW,
        "exp": EXP,
        "jti": "pyjwt-fixture",
        "scope": "tools:call orders:read",
        "conversation": "c-42",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


rsa_private, rsa_public = pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))
ec_private, ec_public = pem_pair(ec.generate_private_key(ec.SECP256R1()))
ed_private, ed_public = pem_pair(ed25519.Ed25519PrivateKey.generate())

valid = {
    "HS256": jwt.encode(claims(), HS_SECRET, algorithm="HS256", headers={"kid": "hs"}),
    "RS256": jwt.encode(claims(), rsa_private, algorithm="RS256", headers={"kid": "rs"}),
    "ES256": jwt.encode(claims(), ec_private, algorithm="ES256", headers={"kid": "es"}),
    "EdDSA": jwt.encode(claims(), ed_private, algorithm="EdDSA", headers={"kid": "ed"}),
}


def hs(payload, headers):
    return jwt.encode(payload, HS_SECRET, algorithm="HS256", headers=headers)


header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rs"}).encode())
payload = b64url(json.dumps(claims()).encode())
confusion_sig = hmac.new(rsa_public.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()

none_header = b64url(json.dumps({"alg": "none", "typ": "JWT", "kid": "hs"}).encode())

attacks = {
    "alg_none": f"{none_header}.{payload}.",
    "hs256_keyed_with_rsa_public_pem": f"{header}.{payload}.{b64url(confusion_sig)}",
    "unknown_kid": hs(claims(), {"kid": "nobody"}),
    "kid_path_traversal": hs(claims(), {"kid": "../../../../etc/passwd"}),
    "kid_sql": hs(claims(), {"kid": "hs' OR '1'='1"}),
    "expired": hs(claims(exp=NOW - 3600), {"kid": "hs"}),
    "not_yet_valid": hs(claims(nbf=NOW + 3600), {"kid": "hs"}),
    "wrong_iss": hs(claims(iss="someone-else"), {"kid": "hs"}),
    "wrong_aud": hs(claims(aud="other-audience"), {"kid": "hs"}),
    "missing_exp": hs(claims(exp=None), {"kid": "hs"}),
    "signed_with_other_secret": jwt.encode(claims(), "another-secret-entirely-0123456789", algorithm="HS256", headers={"kid": "hs"}),
}

json.dump(
    {
        "generator": f"PyJWT {jwt.__version__}",
        "now": NOW,
        "issuer": ISS,
        "audience": AUD,
        "hs256_secret": HS_SECRET,
        "rsa_public_pem": rsa_public,
        "ec_public_pem": ec_public,
        "ed_public_pem": ed_public,
        "valid": valid,
        "attacks": attacks,
    },
    __import__("sys").stdout,
    indent=1,
)
