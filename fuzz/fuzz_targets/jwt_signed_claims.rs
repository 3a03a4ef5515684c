//! The JWT path after the signature: tokens signed with the key the verifier holds, over an
//! arbitrary header and claims (the input's two lines, used as the segments' JSON), reach
//! every header and claims rule (`typ`, `crit`, `kid`, `jti`, scopes, times, issuer,
//! audience, the revocation lookup). Nothing may panic, and the answer is 200 or 401.
#![no_main]

mod common;

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier, Revocations};
use callguard::replay::{MemoryReplayStore, ReplayPolicy};
use callguard::{GuardLayer, Secret};
use hmac::{Hmac, KeyInit, Mac};
use http::Request;
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

const KEY: &str = "fuzz-jwt-secret-0123456789abcdef";

static GUARD: LazyLock<GuardLayer> = LazyLock::new(|| {
    let key = JwtKey::hmac(
        JwtAlgorithm::HS256,
        &Secret::from_utf8(KEY).expect("a long key"),
    )
    .expect("an HMAC key");
    let config = JwtConfig::builder()
        .key("k1", key)
        .issuer("fuzz-issuer")
        .audience("fuzz-audience")
        .typ("at+jwt")
        .build()
        .expect("a valid JWT configuration");
    JwtVerifier::new(config)
        .revocations(
            Revocations::new(MemoryReplayStore::default()).policy(ReplayPolicy::FailClosed),
        )
        .layer()
});

fuzz_target!(|data: &[u8]| {
    let parts = common::pieces(data, 2);
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(parts[0]),
        URL_SAFE_NO_PAD.encode(parts[1])
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).expect("HMAC takes any key");
    mac.update(signing_input.as_bytes());
    let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    let request = Request::post("/tool")
        .header("authorization", format!("Bearer {signing_input}.{tag}"))
        .body(Full::new(Bytes::new()))
        .expect("a base64url token is a valid header value");
    common::run(&GUARD, request);
});
