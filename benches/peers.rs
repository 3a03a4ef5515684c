//! Peers in the same run as callguard:
//! - Standard Webhooks: callguard's preset against the `standardwebhooks` crate's `verify`
//!   (wrapped as the same kind of layer: collect the body, verify, call the same service), and
//!   both against the raw HMAC, on a 1 KiB body;
//! - a hex HMAC-SHA256 signature over 64 B and 1 KiB bodies: callguard's `SignatureVerifier`
//!   against the hand-rolled layer a user would write instead (`support/hand_rolled.rs`),
//!   the raw HMAC, and no layer, every service reading the body; and, to explain what is
//!   left between the two, the hand-rolled layer with its configuration shared as a guard
//!   shares it (`hand_rolled_shared`: the same three reference-count pairs, nothing else).
//!
//! Run with: cargo bench --bench peers
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use callguard::{GuardLayer, Secret, providers};
use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use sha2::Sha256;
use tower::{Layer, service_fn};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[path = "support/wire.rs"]
mod wire;

#[path = "support/serve.rs"]
mod serve;

#[path = "support/hand_rolled.rs"]
mod hand_rolled;

#[path = "support/consume.rs"]
mod consume;

use consume::consume;

use serve::{Body, answer, served_ok};

fn bench_standard_webhooks(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let body = Bytes::from(vec![b'x'; 1024]);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let peer = std::sync::Arc::new(standardwebhooks::Webhook::new(SECRET).unwrap());
    let signature = peer
        .sign("msg_bench", i64::try_from(now).unwrap(), &body)
        .unwrap();
    let request = || {
        wire::request(
            http::Method::POST,
            "/hook",
            &[
                ("webhook-id", "msg_bench"),
                ("webhook-timestamp", &now.to_string()),
                ("webhook-signature", signature.as_str()),
            ],
            body.clone(),
        )
    };
    let mut group = c.benchmark_group("standard_webhooks_1KiB");

    let key = callguard_key();
    let keyed = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    let message = [
        b"msg_bench.".as_slice(),
        now.to_string().as_bytes(),
        b".",
        &body,
    ]
    .concat();
    group.bench_function("hmac_primitive", |b| {
        b.iter(|| {
            let mut mac = keyed.clone();
            mac.update(&message);
            mac.finalize()
        });
    });

    // The peer crate verifies signatures only; replay protection (on by default for this
    // scheme, and it would refuse every repetition of the one request) is left out to
    // compare like with like.
    let guarded = GuardLayer::new(
        providers::standard_webhooks()
            .secret("k", Secret::from_standard_webhooks(SECRET).unwrap())
            .without_replay_protection()
            .build()
            .unwrap(),
    )
    .layer(service_fn(answer::<callguard::guard::GuardedBody<Body>>));
    group.bench_function("callguard_layer", |b| {
        b.iter(|| {
            served_ok(&runtime, &guarded, request());
        });
    });

    let peer_layer = service_fn(move |request: Request<Body>| {
        let peer = std::sync::Arc::clone(&peer);
        async move {
            let (parts, body) = request.into_parts();
            let bytes = body.collect().await.unwrap().to_bytes();
            if peer.verify(&bytes, &parts.headers).is_err() {
                let mut refused = Response::new(Full::new(Bytes::new()));
                *refused.status_mut() = http::StatusCode::UNAUTHORIZED;
                return Ok(refused);
            }
            answer(Request::from_parts(parts, Full::new(bytes))).await
        }
    });
    group.bench_function("standardwebhooks_crate_verify", |b| {
        b.iter(|| {
            served_ok(&runtime, &peer_layer, request());
        });
    });

    let bare = service_fn(answer::<Body>);
    group.bench_function("no_layer", |b| {
        b.iter(|| {
            served_ok(&runtime, &bare, request());
        });
    });
    group.finish();
}

fn bench_hand_rolled(c: &mut Criterion) {
    use callguard::signature::SignatureVerifier;
    use criterion::BenchmarkId;
    const KEY: &str = "0123456789abcdef0123456789abcdef";
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let keyed = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    let verifier = SignatureVerifier::builder()
        .secret("k1", Secret::from_utf8(KEY).unwrap())
        .build()
        .unwrap();
    let guarded = GuardLayer::new(verifier).layer(service_fn(consume));
    let hand_rolled = hand_rolled::hand_rolled(keyed.clone(), consume::<Body>);
    let hand_rolled_shared = hand_rolled::hand_rolled_shared(keyed.clone(), consume::<Body>);
    let bare = service_fn(consume::<Body>);
    let mut group = c.benchmark_group("hmac_signature");
    for (size, label) in [(64usize, "64B"), (1024, "1KiB")] {
        let body = Bytes::from((0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
        let mut mac = keyed.clone();
        mac.update(&body);
        let tag = mac.finalize().into_bytes();
        let signature = hex::encode(tag);
        let request = || {
            wire::request(
                http::Method::POST,
                "/tool",
                &[("x-signature", signature.as_str())],
                body.clone(),
            )
        };
        group.bench_function(BenchmarkId::new("hmac_primitive", label), |b| {
            b.iter(|| {
                let mut mac = keyed.clone();
                mac.update(&body);
                mac.verify_slice(&tag).unwrap();
            });
        });
        group.bench_function(BenchmarkId::new("callguard_layer", label), |b| {
            b.iter(|| served_ok(&runtime, &guarded, request()));
        });
        group.bench_function(BenchmarkId::new("hand_rolled_layer", label), |b| {
            b.iter(|| served_ok(&runtime, &hand_rolled, request()));
        });
        group.bench_function(BenchmarkId::new("hand_rolled_shared_layer", label), |b| {
            b.iter(|| served_ok(&runtime, &hand_rolled_shared, request()));
        });
        group.bench_function(BenchmarkId::new("no_layer", label), |b| {
            b.iter(|| served_ok(&runtime, &bare, request()));
        });
    }
    group.finish();
}

fn callguard_key() -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .unwrap()
}

criterion_group!(benches, bench_standard_webhooks, bench_hand_rolled);
criterion_main!(benches);
