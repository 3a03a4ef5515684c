//! Property tests of external-issuer routing: a token verifies only with the issuer its
//! `iss` names, only with that issuer's keys, and only for an audience configured; `scp`
//! and `scope` give the same scopes.

#![cfg(feature = "oauth")]
#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use bytes::Bytes;
use callguard::jwt::JwtKeySet;
use callguard::oauth::{AccessTokens, Issuer};
use callguard::{Caller, GuardLayer};
use common::{Seen, echo};
use http::{Request, StatusCode};
use http_body_util::Full;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use serde_json::json;
use tower::{Layer, ServiceExt, service_fn};

const ISSUERS: [&str; 3] = [
    "https://a.example.com",
    "https://b.example.com",
    "https://stranger.example.com",
];
const AUDIENCES: [&str; 3] = [
    "https://api.example.com",
    "https://api.example.com/mcp",
    "https://elsewhere.example.com",
];

/// The signing key of each issuer: Ed25519 for `a`, P-256 for `b`, and the stranger's
/// Ed25519 key, which no configured issuer publishes.
fn keys() -> [(Algorithm, EncodingKey, &'static str); 3] {
    let _ = callguard::jwt::JwtKey::from_jwk("{}"); // installs jsonwebtoken's backend
    let read = |name: &str| {
        std::fs::read(format!(
            "{}/tests/data/oauth/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let stranger = EncodingKey::from_ed_der(&ed25519_pkcs8_of_seed([7; 32]));
    [
        (
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(&read("ed.pem")).unwrap(),
            "a-key",
        ),
        (
            Algorithm::ES256,
            EncodingKey::from_ec_pem(&read("ec.pem")).unwrap(),
            "b-key",
        ),
        (Algorithm::EdDSA, stranger, "a-key"),
    ]
}

/// The PKCS#8 DER of the Ed25519 key with `seed` (RFC 8410's fixed prefix).
fn ed25519_pkcs8_of_seed(seed: [u8; 32]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed);
    der
}

fn guard() -> GuardLayer {
    let [a, b, _] = keys();
    let set = |(algorithm, key, kid): (Algorithm, EncodingKey, &str)| {
        let mut jwk = Jwk::from_encoding_key(&key, algorithm).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        let text = serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap();
        JwtKeySet::from_json(text.as_bytes(), 8).unwrap()
    };
    let issuer = |name: &str, keys| {
        Issuer::builder(name)
            .keys(keys)
            .audience(AUDIENCES[0])
            .audience(AUDIENCES[1])
            .build()
            .unwrap()
    };
    AccessTokens::new([issuer(ISSUERS[0], set(a)), issuer(ISSUERS[1], set(b))])
        .unwrap()
        .layer()
}

fn present(guard: &GuardLayer, token: &str) -> (StatusCode, Option<Caller>) {
    let request = Request::post("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = common::runtime()
        .block_on(guard.layer(service_fn(echo)).oneshot(request))
        .unwrap();
    let caller = response
        .extensions()
        .get::<Seen>()
        .and_then(|s| s.caller.clone());
    (response.status(), caller)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn a_token_verifies_only_with_the_issuer_it_names_and_an_audience_configured(
        named in 0usize..3,
        signer in 0usize..3,
        audience in 0usize..3,
        scp_as_array in any::<bool>(),
    ) {
        let guard = guard();
        let keys = keys();
        let (algorithm, key, kid) = &keys[signer];
        let mut claims = json!({
            "iss": ISSUERS[named],
            "aud": AUDIENCES[audience],
            "sub": "agent",
            "exp": 4_000_000_000_i64,
        });
        claims["scp"] = if scp_as_array { json!(["x", "y"]) } else { json!("y x") };
        let mut header = Header::new(*algorithm);
        header.kid = Some((*kid).to_owned());
        header.typ = Some("at+jwt".to_owned());
        let token = jsonwebtoken::encode(&header, &claims, key).unwrap();
        let (status, caller) = present(&guard, &token);
        // Issuer a is signed by key 0, b by key 1; key 2 belongs to no issuer.
        let should_pass = named < 2 && signer == named && audience < 2;
        prop_assert_eq!(status == StatusCode::OK, should_pass, "status {}", status);
        if let Some(caller) = caller {
            prop_assert_eq!(caller.issuer(), Some(ISSUERS[named]));
            prop_assert_eq!(caller.scopes().iter().collect::<Vec<_>>(), vec!["x", "y"]);
        }
    }
}
