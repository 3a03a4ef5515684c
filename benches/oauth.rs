//! External access tokens (feature `oauth`): the layer against `jsonwebtoken::decode` with
//! the same key and against `jwt-authorizer`'s layer (the same key set as JWKS text), in the
//! same run; a repeated token (the verified-token cache); and an introspected opaque token
//! served from the introspection cache, against a repeated JWT.
//!
//! Run with: cargo bench --features oauth --bench oauth
#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use callguard::GuardLayer;
use callguard::jwt::JwtKeySet;
use callguard::keys::{HttpClient, HttpFuture};
use callguard::oauth::{AccessTokens, Introspection, Issuer};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::Full;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value, json};
use tower::{Layer, service_fn};

#[path = "support/serve.rs"]
mod serve;

use serve::{Body, answer, served_ok};

const ISSUER: &str = "https://as.example.com";
const RESOURCE: &str = "https://api.example.com/mcp";

fn request(token: &str) -> Request<Body> {
    Request::post("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/oauth/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// An introspection endpoint that is never reached after the first answer.
struct OneAnswer;

impl HttpClient for OneAnswer {
    fn send(&self, _request: Request<Bytes>, _max: usize, _timeout: Duration) -> HttpFuture {
        let answer = json!({"active": true, "iss": ISSUER, "aud": RESOURCE, "sub": "agent",
            "client_id": "agent", "scope": "mcp:call", "exp": 4_000_000_000_i64});
        Box::pin(async move { Ok(Response::new(Bytes::from(answer.to_string()))) })
    }
}

fn bench_external(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _ = callguard::jwt::JwtKey::from_jwk("{}"); // installs jsonwebtoken's backend
    let claims = json!({"iss": ISSUER, "aud": RESOURCE, "sub": "agent", "client_id": "agent",
        "scope": "mcp:call", "exp": 4_000_000_000_i64, "jti": "bench"});
    let mut group = c.benchmark_group("external_access_token");
    for (label, algorithm, private, public) in [
        ("RS256", Algorithm::RS256, "rsa-a.pem", "rsa-a.pub.pem"),
        ("ES256", Algorithm::ES256, "ec.pem", "ec.pub.pem"),
        ("EdDSA", Algorithm::EdDSA, "ed.pem", "ed.pub.pem"),
    ] {
        let (encoding, decoding) = match algorithm {
            Algorithm::RS256 => (
                EncodingKey::from_rsa_pem(&read(private)).unwrap(),
                DecodingKey::from_rsa_pem(&read(public)).unwrap(),
            ),
            Algorithm::ES256 => (
                EncodingKey::from_ec_pem(&read(private)).unwrap(),
                DecodingKey::from_ec_pem(&read(public)).unwrap(),
            ),
            _ => (
                EncodingKey::from_ed_pem(&read(private)).unwrap(),
                DecodingKey::from_ed_pem(&read(public)).unwrap(),
            ),
        };
        let mut jwk = Jwk::from_encoding_key(&encoding, algorithm).unwrap();
        jwk.common.key_id = Some("k1".into());
        let set = serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap();
        let issuer = Issuer::builder(ISSUER)
            .keys(JwtKeySet::from_json(set.as_bytes(), 8).unwrap())
            .audience(RESOURCE)
            .build()
            .unwrap();
        let mut header = Header::new(algorithm);
        header.kid = Some("k1".into());
        header.typ = Some("at+jwt".into());
        let token = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[RESOURCE]);
        group.bench_function(BenchmarkId::new("jsonwebtoken_decode", label), |b| {
            b.iter(|| {
                jsonwebtoken::decode::<Map<String, Value>>(&token, &decoding, &validation).unwrap()
            });
        });
        // The peer: jwt-authorizer's layer from the same JWKS, checking `iss` and `aud`; it
        // decodes every token (jsonwebtoken 9), with no cache of verified tokens.
        let authorizer = runtime
            .block_on(
                jwt_authorizer::JwtAuthorizer::<Value>::from_jwks_text(&set)
                    .validation(
                        jwt_authorizer::Validation::new()
                            .iss(&[ISSUER])
                            .aud(&[RESOURCE]),
                    )
                    .build(),
            )
            .unwrap();
        let authorizer = jwt_authorizer::IntoLayer::into_layer([authorizer]);
        let peer = authorizer.layer(service_fn(|_: Request<Body>| async {
            Ok::<_, std::convert::Infallible>(axum07::response::Response::new(
                axum07::body::Body::empty(),
            ))
        }));
        group.bench_function(BenchmarkId::new("jwt_authorizer_layer", label), |b| {
            b.iter(|| served_ok(&runtime, &peer, request(&token)));
        });
        let tokens = AccessTokens::new([issuer]).unwrap();
        let first_use = GuardLayer::new(tokens.clone().without_cache())
            .layer(service_fn(answer::<callguard::guard::GuardedBody<Body>>));
        group.bench_function(BenchmarkId::new("layer_first_use", label), |b| {
            b.iter(|| served_ok(&runtime, &first_use, request(&token)));
        });
        let repeated = GuardLayer::new(tokens)
            .layer(service_fn(answer::<callguard::guard::GuardedBody<Body>>));
        served_ok(&runtime, &repeated, request(&token));
        group.bench_function(BenchmarkId::new("layer_repeated", label), |b| {
            b.iter(|| served_ok(&runtime, &repeated, request(&token)));
        });
    }
    let introspection = Introspection::builder(
        "https://as.example.com/introspect",
        "resource-server",
        callguard::Secret::from_utf8("introspection-secret-0123").unwrap(),
        Arc::new(OneAnswer),
    )
    .audience(RESOURCE)
    .build()
    .unwrap();
    let introspected = GuardLayer::new(AccessTokens::introspected(introspection))
        .layer(service_fn(answer::<callguard::guard::GuardedBody<Body>>));
    let opaque = "I89bOeDfM75mQLhInH65vcuGmqBD84d-NpLxiIrPz6c";
    served_ok(&runtime, &introspected, request(opaque));
    group.bench_function("introspection_cache_hit", |b| {
        b.iter(|| served_ok(&runtime, &introspected, request(opaque)));
    });
    group.finish();
}

criterion_group!(benches, bench_external);
criterion_main!(benches);
