//! How the cost of an accepted request grows with the configuration, and how memory grows
//! with traffic (feature `oauth`):
//! - static tokens, 1 against 10 000 (the first and the last one presented);
//! - MCP tool rules, 1 against 1 000 (the last rule's tool called);
//! - external issuers, 1 against 100 (a token of the last issuer, first use and repeated);
//! - signature secrets, 1, 2 and 4 live (a signature by the last one): N secrets, N MACs;
//! - then, outside criterion, peak memory while the verified-token cache and the in-memory
//!   replay store see 1 000 000 distinct keys (`-- --memory`; a smaller count under
//!   `--test`, so CI runs it).
//!
//! Run with: cargo bench --features oauth --bench scaling [-- --memory]
#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]

use bytes::Bytes;
use callguard::bearer::BearerTokens;
use callguard::jwt::JwtKeySet;
use callguard::oauth::{AccessTokens, Issuer};
use callguard::signature::SignatureVerifier;
use callguard::{GuardLayer, Scopes, Secret};
use criterion::{BenchmarkId, Criterion};
use hmac::{Hmac, KeyInit, Mac};
use http::Request;
use http_body_util::Full;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use sha2::Sha256;
use tower::{Layer, service_fn};

#[path = "support/serve.rs"]
mod serve;

use serve::{Body, answer, served_ok};

type Guarded = callguard::guard::GuardedBody<Body>;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn bearer_request(token: &str) -> Request<Body> {
    Request::post("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn token(i: usize) -> String {
    format!("tok_{i:06}_0123456789abcdef0123456789")
}

fn bench_static_tokens(c: &mut Criterion) {
    let runtime = runtime();
    let mut group = c.benchmark_group("scaling_static_tokens");
    for count in [1usize, 10_000] {
        let mut builder = BearerTokens::builder();
        for i in 0..count {
            builder = builder.token(
                format!("agent-{i}"),
                Secret::from_utf8(&token(i)).unwrap(),
                Scopes::empty(),
            );
        }
        let guarded =
            GuardLayer::new(builder.build().unwrap()).layer(service_fn(answer::<Guarded>));
        for (which, i) in [("first", 0), ("last", count - 1)] {
            let presented = token(i);
            group.bench_function(BenchmarkId::new(format!("{count}_tokens"), which), |b| {
                b.iter(|| served_ok(&runtime, &guarded, bearer_request(&presented)));
            });
        }
    }
    group.finish();
}

fn bench_tool_rules(c: &mut Criterion) {
    use callguard::mcp::ToolScopesLayer;
    let runtime = runtime();
    let token = "tok_mcp_agent_0123456789abcdef";
    let mut group = c.benchmark_group("scaling_tool_rules");
    for count in [1usize, 1_000] {
        let tokens = BearerTokens::builder()
            .token(
                "agent",
                Secret::from_utf8(token).unwrap(),
                Scopes::from_iter(["mcp:call"]),
            )
            .build()
            .unwrap();
        let mut rules = ToolScopesLayer::new();
        for i in 0..count {
            rules = rules.tool(&format!("tool_{i}"), ["mcp:call"]).unwrap();
        }
        let guarded = GuardLayer::new(tokens)
            .layer(rules.layer(service_fn(answer::<callguard::guard::GuardedBody<Guarded>>)));
        let body = Bytes::from(format!(
            r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"tool_{}","arguments":{{}}}}}}"#,
            count - 1
        ));
        group.bench_function(BenchmarkId::new("rules", count), |b| {
            b.iter(|| {
                let request = Request::post("/mcp")
                    .header("authorization", format!("Bearer {token}"))
                    .body(Full::new(body.clone()))
                    .unwrap();
                served_ok(&runtime, &guarded, request);
            });
        });
    }
    group.finish();
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/oauth/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn es256() -> (EncodingKey, String) {
    let encoding = EncodingKey::from_ec_pem(&read("ec.pem")).unwrap();
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some("k1".into());
    let set = serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap();
    (encoding, set)
}

const RESOURCE: &str = "https://api.example.com/mcp";

fn access_token(encoding: &EncodingKey, issuer: &str, jti: &str) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("k1".into());
    header.typ = Some("at+jwt".into());
    let claims = json!({"iss": issuer, "aud": RESOURCE, "sub": "agent", "client_id": "agent",
        "scope": "mcp:call", "exp": 4_000_000_000_i64, "jti": jti});
    jsonwebtoken::encode(&header, &claims, encoding).unwrap()
}

fn issuers(count: usize, set: &str) -> AccessTokens {
    let issuers = (0..count).map(|i| {
        Issuer::builder(format!("https://as{i}.example.com"))
            .keys(JwtKeySet::from_json(set.as_bytes(), 8).unwrap())
            .audience(RESOURCE)
            .build()
            .unwrap()
    });
    AccessTokens::new(issuers).unwrap()
}

fn bench_issuers(c: &mut Criterion) {
    let runtime = runtime();
    let _ = callguard::jwt::JwtKey::from_jwk("{}"); // installs jsonwebtoken's backend
    let (encoding, set) = es256();
    let mut group = c.benchmark_group("scaling_issuers");
    for count in [1usize, 100] {
        let tokens = issuers(count, &set);
        let token = access_token(
            &encoding,
            &format!("https://as{}.example.com", count - 1),
            "bench",
        );
        let first_use =
            GuardLayer::new(tokens.clone().without_cache()).layer(service_fn(answer::<Guarded>));
        group.bench_function(BenchmarkId::new("first_use", count), |b| {
            b.iter(|| served_ok(&runtime, &first_use, bearer_request(&token)));
        });
        let repeated = GuardLayer::new(tokens).layer(service_fn(answer::<Guarded>));
        group.bench_function(BenchmarkId::new("repeated", count), |b| {
            b.iter(|| served_ok(&runtime, &repeated, bearer_request(&token)));
        });
    }
    group.finish();
}

fn bench_secrets(c: &mut Criterion) {
    let runtime = runtime();
    let body = Bytes::from(vec![b'x'; 1024]);
    let mut group = c.benchmark_group("scaling_signature_secrets_1KiB");
    for count in [1usize, 2, 4] {
        let secret = |i: usize| format!("secret-{i}-0123456789abcdef0123");
        let mut builder = SignatureVerifier::builder();
        for i in 0..count {
            builder = builder.secret(format!("k{i}"), Secret::from_utf8(&secret(i)).unwrap());
        }
        let guarded =
            GuardLayer::new(builder.build().unwrap()).layer(service_fn(answer::<Guarded>));
        let mut mac = Hmac::<Sha256>::new_from_slice(secret(count - 1).as_bytes()).unwrap();
        mac.update(&body);
        let signature = hex::encode(mac.finalize().into_bytes());
        group.bench_function(BenchmarkId::new("live_secrets", count), |b| {
            b.iter(|| {
                let request = Request::post("/hook")
                    .header("x-signature", signature.as_str())
                    .body(Full::new(body.clone()))
                    .unwrap();
                served_ok(&runtime, &guarded, request);
            });
        });
    }
    group.finish();
}

/// Resident memory now, from `/proc/self/statm` (0 where there is none).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

/// Peak memory while the verified-token cache and the in-memory replay store see `count`
/// distinct keys each.
fn memory(count: usize) {
    use callguard::replay::{MemoryReplayStore, RecordId, ReplayKey, ReplayStore};
    use std::future::Future as _;
    use std::time::Duration;
    let runtime = runtime();
    let (encoding, set) = es256();
    let issuer = "https://as0.example.com";
    let guarded = GuardLayer::new(issuers(1, &set)).layer(service_fn(answer::<Guarded>));
    let before = rss_bytes();
    for i in 0..count {
        let token = access_token(&encoding, issuer, &format!("t{i}"));
        served_ok(&runtime, &guarded, bearer_request(&token));
    }
    let after = rss_bytes();
    println!(
        "verified-token cache: {count} distinct tokens, resident memory +{:.1} MB (cap {} tokens, {} MB)",
        (after.saturating_sub(before)) as f64 / 1e6,
        callguard::jwt::DEFAULT_CACHE_CAPACITY,
        callguard::jwt::DEFAULT_CACHE_BYTES / (1024 * 1024),
    );
    let store = MemoryReplayStore::default();
    let before = rss_bytes();
    let mut refused = 0usize;
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for i in 0..count {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let mut answer = store.first_seen(
            ReplayKey::from_bytes(bytes),
            RecordId::new(),
            Duration::from_secs(300),
        );
        match std::pin::Pin::new(&mut answer).poll(&mut cx) {
            std::task::Poll::Ready(Ok(true)) => {}
            _ => refused += 1,
        }
    }
    let after = rss_bytes();
    println!(
        "in-memory replay store: {count} distinct deliveries, {} kept, {refused} refused (full: 503), resident memory +{:.1} MB",
        count - refused,
        (after.saturating_sub(before)) as f64 / 1e6,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let test_mode = args.iter().any(|a| a == "--test");
    if args.iter().any(|a| a == "--memory") {
        memory(1_000_000);
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    bench_static_tokens(&mut criterion);
    bench_tool_rules(&mut criterion);
    bench_issuers(&mut criterion);
    bench_secrets(&mut criterion);
    criterion.final_summary();
    if test_mode {
        memory(20_000);
    }
}
