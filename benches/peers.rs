//! Standard Webhooks: callguard's preset against the `standardwebhooks` crate's `verify`
//! (wrapped as the same kind of layer: collect the body, verify, call the same service), and
//! both against the raw HMAC, in the same run, on a 1 KiB body.
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

#[path = "support/serve.rs"]
mod serve;

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
        Request::post("/hook")
            .header("webhook-id", "msg_bench")
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", signature.as_str())
            .body(Full::new(body.clone()))
            .unwrap()
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

fn callguard_key() -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .unwrap()
}

criterion_group!(benches, bench_standard_webhooks);
criterion_main!(benches);
