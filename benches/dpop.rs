//! DPoP (feature `dpop`): an accepted DPoP request with a cached (repeated) token, against the
//! same token's request as a plain bearer token and against a raw ES256 verification of the
//! proof's signature, in the same run. Every DPoP request carries a fresh proof (made
//! outside the timed part), so each pays the proof check and one store record.
//!
//! Run with: cargo bench --features dpop --bench dpop
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use callguard::clock::FixedClock;
use callguard::dpop::Dpop;
use callguard::guard::GuardedBody;
use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier, TokenIssuer, TokenRequest};
use callguard::replay::MemoryReplayStore;
use callguard::{GuardLayer, Scopes, Secret};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::Request;
use http_body_util::Full;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde_json::json;
use sha2::{Digest, Sha256};
use tower::{Layer, service_fn};

#[path = "support/serve.rs"]
mod serve;

use serve::{Body, answer, served_ok};

const NOW: i64 = 1_800_000_000;

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/oauth/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn request(scheme: &str, token: &str, proof: Option<&str>) -> Request<Body> {
    let mut request =
        Request::post("/tools/echo").header("authorization", format!("{scheme} {token}"));
    if let Some(proof) = proof {
        request = request.header("dpop", proof);
    }
    request.body(Full::new(Bytes::new())).unwrap()
}

fn bench_dpop(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let secret = Secret::from_utf8("a-jwt-signing-key-of-32-bytes!!!").unwrap();
    let config = JwtConfig::builder()
        .key("k1", JwtKey::hmac(JwtAlgorithm::HS256, &secret).unwrap())
        .clock(FixedClock::at_unix(NOW))
        .build()
        .unwrap();
    let signing = EncodingKey::from_ec_pem(&read("ec.pem")).unwrap();
    let verifying = DecodingKey::from_ec_pem(&read("ec.pub.pem")).unwrap();
    let jwk = serde_json::to_value(
        jsonwebtoken::jwk::Jwk::from_encoding_key(&signing, Algorithm::ES256).unwrap(),
    )
    .unwrap();
    let required = json!({"crv": jwk["crv"], "kty": "EC", "x": jwk["x"], "y": jwk["y"]});
    let jkt = URL_SAFE_NO_PAD.encode(Sha256::digest(serde_json::to_vec(&required).unwrap()));
    let issuer = TokenIssuer::new(config.clone());
    let ttl = Duration::from_secs(300);
    let bound = issuer
        .issue(TokenRequest::new("agent", Scopes::empty(), ttl).dpop_key(jkt))
        .unwrap()
        .access_token;
    let unbound = issuer
        .issue(TokenRequest::new("agent", Scopes::empty(), ttl))
        .unwrap()
        .access_token;
    let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(bound.as_bytes()));
    let header = URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(&json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk})).unwrap(),
    );
    // A proof of `claims`, signed by the client's key.
    let sign = |claims: &serde_json::Value| {
        let input = format!(
            "{header}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap())
        );
        let signature =
            jsonwebtoken::crypto::sign(input.as_bytes(), &signing, Algorithm::ES256).unwrap();
        format!("{input}.{signature}")
    };
    let mut counter = 0_u64;
    let mut fresh_proof = || {
        counter += 1;
        sign(&json!({"jti": format!("proof-{counter}"), "htm": "POST",
            "htu": "https://api.example.com/tools/echo", "iat": NOW, "ath": ath}))
    };

    let mut group = c.benchmark_group("dpop");
    // The raw primitive: the proof's ES256 signature checked with the key, nothing else;
    // once the same proof every time (what a verification bench usually times), once a fresh
    // proof each time, as the guard sees them (a repeated input runs about 5 µs faster).
    let proof = fresh_proof();
    let (input, signature) = proof.rsplit_once('.').unwrap();
    let raw_verify = |input: &str, signature: &str| {
        assert!(
            jsonwebtoken::crypto::verify(signature, input.as_bytes(), &verifying, Algorithm::ES256)
                .unwrap()
        );
    };
    group.bench_function("es256_verify_raw", |b| {
        b.iter(|| raw_verify(input, signature));
    });
    group.bench_function("es256_verify_raw_fresh", |b| {
        b.iter_batched(
            &mut fresh_proof,
            |proof| {
                let (input, signature) = proof.rsplit_once('.').unwrap();
                raw_verify(input, signature);
            },
            BatchSize::SmallInput,
        );
    });
    let dpop = Dpop::builder(MemoryReplayStore::new(4_000_000))
        .public_url("https://api.example.com")
        .clock(FixedClock::at_unix(NOW))
        .build()
        .unwrap();
    let guard = GuardLayer::new(JwtVerifier::new(config).dpop(dpop.clone()))
        .layer(service_fn(answer::<GuardedBody<Body>>));
    // Both tokens verified once, so every timed request finds its token in the cache.
    served_ok(&runtime, &guard, request("Bearer", &unbound, None));
    served_ok(
        &runtime,
        &guard,
        request("DPoP", &bound, Some(&fresh_proof())),
    );
    group.bench_function("bearer_repeated", |b| {
        b.iter(|| served_ok(&runtime, &guard, request("Bearer", &unbound, None)));
    });
    // The proof check and its store record alone, as a token endpoint makes them.
    let token_endpoint_proof = |counter: u64| {
        sign(&json!({"jti": format!("endpoint-{counter}"), "htm": "POST",
            "htu": "https://api.example.com/tools/echo", "iat": NOW}))
    };
    let mut endpoint_counter = 0;
    group.bench_function("proof_check_alone", |b| {
        b.iter_batched(
            || {
                endpoint_counter += 1;
                Request::post("/tools/echo")
                    .header("dpop", token_endpoint_proof(endpoint_counter))
                    .body(())
                    .unwrap()
                    .into_parts()
                    .0
            },
            |parts| runtime.block_on(dpop.verify_token_request(&parts)).unwrap(),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("dpop_repeated", |b| {
        b.iter_batched(
            || request("DPoP", &bound, Some(&fresh_proof())),
            |request| served_ok(&runtime, &guard, request),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench_dpop);
criterion_main!(benches);
