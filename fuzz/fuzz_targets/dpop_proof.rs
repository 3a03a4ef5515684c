//! The DPoP proof parser and its checks (RFC 9449 §4.3), reached past the signature: the
//! input's first line is the proof's header JSON (given the client key's `jwk` when it names
//! none), the second its claims, and the proof is signed with that key (ES256), so every
//! check after the signature (`typ`, `alg`, `jwk`, `jti`, `htm`, `htu`, `iat`, `ath`,
//! `nonce`, the token's `cnf.jkt`) sees hostile input. The third line, when present, is sent
//! as the `DPoP` header as it is instead; `"ATH"` in the claims stands for the token's `ath`. Nothing may panic, and the answer is 200 or 401.
#![no_main]

mod common;

use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use callguard::clock::FixedClock;
use callguard::dpop::Dpop;
use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier, TokenIssuer, TokenRequest};
use callguard::replay::MemoryReplayStore;
use callguard::{GuardLayer, Scopes, Secret};
use http::Request;
use http_body_util::Full;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

const NOW: i64 = 1_800_000_000;
const EC_PEM: &[u8] = include_bytes!("../../tests/data/oauth/ec.pem");

struct Setup {
    guard: GuardLayer,
    token: String,
    ath: String,
    signing: EncodingKey,
    jwk: serde_json::Value,
}

static SETUP: LazyLock<Setup> = LazyLock::new(|| {
    let secret = Secret::from_utf8("fuzz-jwt-secret-0123456789abcdef").expect("a long key");
    let config = JwtConfig::builder()
        .key(
            "k1",
            JwtKey::hmac(JwtAlgorithm::HS256, &secret).expect("an HMAC key"),
        )
        .clock(FixedClock::at_unix(NOW))
        .build()
        .expect("a valid JWT configuration");
    let signing = EncodingKey::from_ec_pem(EC_PEM).expect("the test EC key");
    let jwk = serde_json::to_value(
        jsonwebtoken::jwk::Jwk::from_encoding_key(&signing, Algorithm::ES256).expect("a JWK"),
    )
    .expect("JSON");
    let required =
        serde_json::json!({"crv": jwk["crv"], "kty": "EC", "x": jwk["x"], "y": jwk["y"]});
    let jkt = URL_SAFE_NO_PAD.encode(Sha256::digest(serde_json::to_vec(&required).expect("JSON")));
    let token = TokenIssuer::new(config.clone())
        .issue(TokenRequest::new("fuzz", Scopes::empty(), Duration::from_secs(300)).dpop_key(jkt))
        .expect("a token")
        .access_token;
    let dpop = Dpop::builder(MemoryReplayStore::new(1_000))
        .public_url("https://api.example.com")
        .clock(FixedClock::at_unix(NOW))
        .build()
        .expect("a valid DPoP configuration");
    Setup {
        guard: JwtVerifier::new(config).dpop(dpop).layer(),
        ath: URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())),
        token,
        signing,
        jwk,
    }
});

fuzz_target!(|data: &[u8]| {
    let setup = &*SETUP;
    let parts = common::pieces(data, 3);
    let proof = if parts[2].is_empty() {
        let header = match serde_json::from_slice::<serde_json::Value>(parts[0]) {
            Ok(serde_json::Value::Object(mut header)) => {
                header.entry("jwk").or_insert_with(|| setup.jwk.clone());
                serde_json::to_vec(&header).expect("JSON")
            }
            _ => parts[0].to_vec(),
        };
        // `"ATH"` stands for the token's own `ath` (the token is minted when the target
        // starts), so a proof can pass every check and be accepted.
        let claims =
            String::from_utf8_lossy(parts[1]).replace("\"ATH\"", &format!("\"{}\"", setup.ath));
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let Ok(signature) =
            jsonwebtoken::crypto::sign(input.as_bytes(), &setup.signing, Algorithm::ES256)
        else {
            return;
        };
        format!("{input}.{signature}").into_bytes()
    } else {
        parts[2].to_vec()
    };
    let Ok(proof) = http::HeaderValue::from_bytes(&proof) else {
        return;
    };
    let request = Request::post("/tools/echo")
        .header("authorization", format!("DPoP {}", setup.token))
        .header("dpop", proof)
        .body(Full::new(Bytes::new()))
        .expect("a valid request");
    common::run(&setup.guard, request);
});
