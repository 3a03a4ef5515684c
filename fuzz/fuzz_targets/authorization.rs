//! `Authorization` values from the fuzzer, through a guard that accepts static bearer
//! tokens, server-issued JWTs (so JWT segments are parsed before any verification) and Basic
//! credentials.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::sync::LazyLock;

use bytes::Bytes;
use callguard::basic::BasicUsers;
use callguard::bearer::BearerTokens;
use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier};
use callguard::{Authenticator, GuardLayer, Scopes, Secret};
use http::{HeaderValue, Request};
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;

static GUARD: LazyLock<GuardLayer> = LazyLock::new(|| {
    let secret = |text: &str| Secret::from_utf8(text).expect("a valid secret");
    let tokens = BearerTokens::builder()
        .token(
            "agent",
            secret("tok_fuzz_0123456789abcdef"),
            Scopes::from_iter(["tools:call"]),
        )
        .build()
        .expect("a valid token set");
    let users = BasicUsers::builder()
        .user(
            "minter",
            secret("fuzz-password-0123456789"),
            Scopes::empty(),
        )
        .build()
        .expect("a valid user set");
    let key = JwtKey::hmac(
        JwtAlgorithm::HS256,
        &secret("fuzz-jwt-secret-0123456789abcdef"),
    )
    .expect("an HMAC key");
    let jwt = JwtConfig::builder()
        .key("k1", key)
        .build()
        .expect("a valid JWT configuration");
    GuardLayer::new(
        Authenticator::any_of([tokens.into(), JwtVerifier::new(jwt).into(), users.into()])
            .expect("three methods make a valid composition"),
    )
});

fuzz_target!(|data: &[u8]| {
    let mut request = Request::post("/tool");
    for value in common::pieces(data, 2) {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            request = request.header("authorization", value);
        }
    }
    if let Ok(request) = request.body(Full::new(Bytes::new())) {
        common::run(&GUARD, request);
    }
});
