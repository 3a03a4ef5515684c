//! Tokens: each layer against its bare primitive and no layer, in the same run, plus
//! tower-http's bearer and Basic checks (not constant time: the common hand-rolled baseline).
//!
//! Run with: cargo bench --bench tokens
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use callguard::basic::BasicUsers;
use callguard::bearer::BearerTokens;
use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier};
use callguard::{GuardLayer, Scopes, Secret};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::Request;
use http_body_util::Full;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower::{Layer, service_fn};

#[path = "support/wire.rs"]
mod wire;

#[path = "support/serve.rs"]
mod serve;

use serve::{Body, answer, served_ok};

fn request(authorization: &str) -> Request<Body> {
    wire::request(
        http::Method::POST,
        "/tool",
        &[("authorization", authorization)],
        Bytes::from_static(&[b'x'; 1024]),
    )
}

fn token(i: usize) -> String {
    format!("tok_{i:04}_0123456789abcdefghijklmnop")
}

fn bench_bearer(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("bearer");
    for size in [1usize, 16, 1024] {
        let mut builder = BearerTokens::builder();
        for i in 0..size {
            builder = builder.token(
                format!("t{i}"),
                Secret::from_utf8(&token(i)).unwrap(),
                Scopes::from_iter(["tools:call"]),
            );
        }
        let guarded = GuardLayer::new(builder.build().unwrap())
            .layer(service_fn(answer::<callguard::guard::GuardedBody<Body>>));
        let presented = token(size - 1);
        let header = format!("Bearer {presented}");
        let digests: Vec<[u8; 32]> = (0..size).map(|i| Sha256::digest(token(i)).into()).collect();

        group.bench_function(BenchmarkId::new("primitive_digest_compare", size), |b| {
            b.iter(|| {
                let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
                let found = digests
                    .iter()
                    .fold(subtle::Choice::from(0), |acc, d| acc | d.ct_eq(&presented));
                assert!(bool::from(found));
            });
        });
        group.bench_function(BenchmarkId::new("layer", size), |b| {
            b.iter(|| {
                served_ok(&runtime, &guarded, request(&header));
            });
        });
    }
    let bare = service_fn(answer::<Body>);
    group.bench_function("no_layer", |b| {
        b.iter(|| {
            served_ok(&runtime, &bare, request("Bearer x"));
        });
    });
    #[allow(deprecated)]
    let tower_http = tower_http::validate_request::ValidateRequestHeaderLayer::bearer(&token(0))
        .layer(service_fn(answer::<Body>));
    let header = format!("Bearer {}", token(0));
    group.bench_function("tower_http_bearer", |b| {
        b.iter(|| {
            served_ok(&runtime, &tower_http, request(&header));
        });
    });
    group.finish();
}

fn bench_basic(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("basic");
    let users = BasicUsers::builder()
        .user(
            "minter",
            Secret::from_utf8("minter-password-0001").unwrap(),
            Scopes::empty(),
        )
        .build()
        .unwrap();
    let guarded =
        GuardLayer::new(users).layer(service_fn(answer::<callguard::guard::GuardedBody<Body>>));
    let header = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("minter:minter-password-0001")
    );
    let digest: [u8; 32] = Sha256::digest(b"minter:minter-password-0001").into();
    group.bench_function("primitive_decode_digest_compare", |b| {
        b.iter(|| {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(&header[6..])
                .unwrap();
            let presented: [u8; 32] = Sha256::digest(&decoded).into();
            assert!(bool::from(presented.ct_eq(&digest)));
        });
    });
    group.bench_function("layer", |b| {
        b.iter(|| {
            served_ok(&runtime, &guarded, request(&header));
        });
    });
    let bare = service_fn(answer::<Body>);
    group.bench_function("no_layer", |b| {
        b.iter(|| {
            served_ok(&runtime, &bare, request(&header));
        });
    });
    #[allow(deprecated)]
    let tower_http = tower_http::validate_request::ValidateRequestHeaderLayer::basic(
        "minter",
        "minter-password-0001",
    )
    .layer(service_fn(answer::<Body>));
    group.bench_function("tower_http_basic", |b| {
        b.iter(|| {
            served_ok(&runtime, &tower_http, request(&header));
        });
    });
    group.finish();
}

fn fixtures() -> serde_json::Value {
    serde_json::from_str(include_str!("../tests/data/jwt/pyjwt_fixtures.json")).unwrap()
}

fn bench_jwt(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let f = fixtures();
    let pem = |name: &str| f[name].as_str().unwrap().as_bytes().to_vec();
    let hs = Secret::from_utf8(f["hs256_secret"].as_str().unwrap()).unwrap();
    let keys = [
        (
            "HS256",
            "hs",
            JwtKey::hmac(JwtAlgorithm::HS256, &hs).unwrap(),
            jsonwebtoken::DecodingKey::from_secret(f["hs256_secret"].as_str().unwrap().as_bytes()),
            jsonwebtoken::Algorithm::HS256,
        ),
        (
            "RS256",
            "rs",
            JwtKey::public_pem(JwtAlgorithm::RS256, &pem("rsa_public_pem")).unwrap(),
            jsonwebtoken::DecodingKey::from_rsa_pem(&pem("rsa_public_pem")).unwrap(),
            jsonwebtoken::Algorithm::RS256,
        ),
        (
            "ES256",
            "es",
            JwtKey::public_pem(JwtAlgorithm::ES256, &pem("ec_public_pem")).unwrap(),
            jsonwebtoken::DecodingKey::from_ec_pem(&pem("ec_public_pem")).unwrap(),
            jsonwebtoken::Algorithm::ES256,
        ),
        (
            "EdDSA",
            "ed",
            JwtKey::public_pem(JwtAlgorithm::EdDSA, &pem("ed_public_pem")).unwrap(),
            jsonwebtoken::DecodingKey::from_ed_pem(&pem("ed_public_pem")).unwrap(),
            jsonwebtoken::Algorithm::EdDSA,
        ),
    ];
    let mut group = c.benchmark_group("jwt");
    for (alg, kid, key, decoding, algorithm) in keys {
        let config = JwtConfig::builder()
            .key(kid, key)
            .issuer(f["issuer"].as_str().unwrap())
            .audience(f["audience"].as_str().unwrap())
            .build()
            .unwrap();
        let token = f["valid"][alg].as_str().unwrap().to_owned();
        let header = format!("Bearer {token}");
        let mut validation = jsonwebtoken::Validation::new(algorithm);
        validation.set_issuer(&[f["issuer"].as_str().unwrap()]);
        validation.set_audience(&[f["audience"].as_str().unwrap()]);
        group.bench_function(BenchmarkId::new("jsonwebtoken_decode", alg), |b| {
            b.iter(|| {
                jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
                    &token,
                    &decoding,
                    &validation,
                )
                .unwrap()
            });
        });
        let first_use = GuardLayer::new(JwtVerifier::new(config.clone()).without_cache())
            .layer(service_fn(answer::<callguard::guard::GuardedBody<Body>>));
        group.bench_function(BenchmarkId::new("layer_first_use", alg), |b| {
            b.iter(|| {
                served_ok(&runtime, &first_use, request(&header));
            });
        });
        // The peer: tower-jwt's layer, which decodes with jsonwebtoken 9 (ring) on every
        // request and puts the claims in the extensions.
        let peer_key = match alg {
            "HS256" => {
                tower_jwt::DecodingKey::from_secret(f["hs256_secret"].as_str().unwrap().as_bytes())
            }
            "RS256" => tower_jwt::DecodingKey::from_rsa_pem(&pem("rsa_public_pem")).unwrap(),
            "ES256" => tower_jwt::DecodingKey::from_ec_pem(&pem("ec_public_pem")).unwrap(),
            _ => tower_jwt::DecodingKey::from_ed_pem(&pem("ed_public_pem")).unwrap(),
        };
        let mut peer_validation = tower_jwt::Validation::new(match alg {
            "HS256" => jsonwebtoken9::Algorithm::HS256,
            "RS256" => jsonwebtoken9::Algorithm::RS256,
            "ES256" => jsonwebtoken9::Algorithm::ES256,
            _ => jsonwebtoken9::Algorithm::EdDSA,
        });
        peer_validation.set_issuer(&[f["issuer"].as_str().unwrap()]);
        peer_validation.set_audience(&[f["audience"].as_str().unwrap()]);
        let peer = tower_jwt::JwtLayer::<serde_json::Map<String, serde_json::Value>>::new(
            peer_validation,
            peer_key,
        )
        .layer(service_fn(answer::<Body>));
        group.bench_function(BenchmarkId::new("tower_jwt_layer", alg), |b| {
            b.iter(|| {
                served_ok(&runtime, &peer, request(&header));
            });
        });
        let cached = GuardLayer::new(JwtVerifier::new(config))
            .layer(service_fn(answer::<callguard::guard::GuardedBody<Body>>));
        group.bench_function(BenchmarkId::new("layer_repeated", alg), |b| {
            b.iter(|| {
                served_ok(&runtime, &cached, request(&header));
            });
        });
    }
    let bare = service_fn(answer::<Body>);
    group.bench_function("no_layer", |b| {
        b.iter(|| {
            served_ok(&runtime, &bare, request("Bearer x"));
        });
    });
    let _ = Duration::ZERO;
    group.finish();
}

/// A delegated call (an agent's 1 KiB body signature and a user's repeated HS256 JWT, bound
/// by the body's `user_id`) against each of its two checks alone, in the same run.
fn bench_delegated(c: &mut Criterion) {
    use callguard::delegation::{Delegation, PlatformUser};
    use callguard::jwt::{TokenIssuer, TokenRequest};
    use callguard::signature::SignatureVerifier;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let agent_secret = "agent-signing-secret-0123456789ab";
    let signature = || {
        SignatureVerifier::builder()
            .secret("k1", Secret::from_utf8(agent_secret).unwrap())
            .build()
            .unwrap()
    };
    let config = JwtConfig::builder()
        .key(
            "k1",
            JwtKey::hmac(
                JwtAlgorithm::HS256,
                &Secret::from_utf8("user-jwt-secret-0123456789abcdef").unwrap(),
            )
            .unwrap(),
        )
        .build()
        .unwrap();
    let token = TokenIssuer::new(config.clone())
        .issue(TokenRequest::new(
            "user-1",
            Scopes::from_iter(["refunds:write"]),
            Duration::from_secs(3600),
        ))
        .unwrap()
        .access_token;
    let mut body = br#"{"user_id":"user-1","pad":""#.to_vec();
    body.resize(1022, b'x');
    body.extend_from_slice(br#""}"#);
    let body = Bytes::from(body);
    let tag = {
        use hmac::{Hmac, KeyInit, Mac};
        let mut mac = Hmac::<Sha256>::new_from_slice(agent_secret.as_bytes()).unwrap();
        mac.update(&body);
        hex::encode(mac.finalize().into_bytes())
    };
    let signed = |authorization: Option<&str>, with_signature: bool| {
        let mut request = Request::post("/tools/refund");
        if with_signature {
            request = request.header("x-signature", tag.as_str());
        }
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        request.body(Full::new(body.clone())).unwrap()
    };
    let bearer = format!("Bearer {token}");
    let signature_only = GuardLayer::new(signature())
        .layer(service_fn(answer::<callguard::guard::GuardedBody<Body>>));
    let jwt_only = GuardLayer::new(JwtVerifier::new(config.clone()))
        .layer(service_fn(answer::<callguard::guard::GuardedBody<Body>>));
    let delegation = Delegation::builder(signature(), JwtVerifier::new(config))
        .bind(PlatformUser::json_pointer("/user_id").unwrap())
        .build()
        .unwrap();
    let delegated = GuardLayer::new(delegation)
        .layer(service_fn(answer::<callguard::guard::GuardedBody<Body>>));
    served_ok(&runtime, &delegated, signed(Some(&bearer), true));
    served_ok(&runtime, &jwt_only, signed(Some(&bearer), false));
    let mut group = c.benchmark_group("delegated_1KiB");
    group.bench_function("signature_only", |b| {
        b.iter(|| served_ok(&runtime, &signature_only, signed(None, true)));
    });
    group.bench_function("jwt_repeated_only", |b| {
        b.iter(|| served_ok(&runtime, &jwt_only, signed(Some(&bearer), false)));
    });
    group.bench_function("delegated", |b| {
        b.iter(|| served_ok(&runtime, &delegated, signed(Some(&bearer), true)));
    });
    let bare = service_fn(answer::<Body>);
    group.bench_function("no_layer", |b| {
        b.iter(|| served_ok(&runtime, &bare, signed(Some(&bearer), true)));
    });
    group.finish();
}

/// The per-tool scope layer on an MCP `tools/call` of about 1 KiB: the same request behind a
/// static-token guard with and without it, and one `serde_json::Value` parse of the body
/// (a full JSON scan) for scale.
fn bench_tool_scopes(c: &mut Criterion) {
    use callguard::mcp::ToolScopesLayer;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let token = "tok_mcp_agent_0123456789abcdef";
    let tokens = || {
        BearerTokens::builder()
            .token(
                "agent",
                Secret::from_utf8(token).unwrap(),
                Scopes::from_iter(["mcp:call", "refunds:write"]),
            )
            .build()
            .unwrap()
    };
    let body = Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"refund","arguments":{{"order_id":"o-1","amount":5,"note":"{}"}}}}}}"#,
        "x".repeat(900)
    ));
    let request = || {
        Request::post("/mcp")
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(body.clone()))
            .unwrap()
    };
    let without =
        GuardLayer::new(tokens()).layer(service_fn(answer::<callguard::guard::GuardedBody<Body>>));
    let with = GuardLayer::new(tokens()).layer(
        ToolScopesLayer::new()
            .tool("refund", ["mcp:call", "refunds:write"])
            .unwrap()
            .layer(service_fn(
                answer::<callguard::guard::GuardedBody<callguard::guard::GuardedBody<Body>>>,
            )),
    );
    let mut group = c.benchmark_group("mcp_tool_scopes_1KiB");
    group.bench_function("guard_only", |b| {
        b.iter(|| served_ok(&runtime, &without, request()));
    });
    group.bench_function("guard_and_tool_scopes", |b| {
        b.iter(|| served_ok(&runtime, &with, request()));
    });
    group.bench_function("serde_json_value_parse", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(&body).unwrap());
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_bearer,
    bench_basic,
    bench_jwt,
    bench_delegated,
    bench_tool_scopes
);
criterion_main!(benches);
