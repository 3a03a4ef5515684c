//! Signature over the body: the layer against its floor, in the same run.
//!
//! For each body size and framing, three measurements:
//! - `hmac_primitive`: clone a pre-keyed HMAC-SHA256, feed the body, verify a tag: the floor;
//! - `layer`: the guard verifying the same signed request in front of a trivial service
//!   (`tower::ServiceExt::oneshot`), which also collects the body and hands it on;
//! - `no_layer`: the same trivial service, collecting the same body, with no guard.
//!
//! Run with: cargo bench --bench signature
#![allow(missing_docs, clippy::unwrap_used)]

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use callguard::signature::SignatureVerifier;
use callguard::{GuardLayer, Secret};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use sha2::Sha256;
use tower::{Layer, ServiceExt, service_fn};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const SIZES: [(usize, &str); 4] = [
    (64, "64B"),
    (1024, "1KiB"),
    (64 * 1024, "64KiB"),
    (1024 * 1024, "1MiB"),
];
const FRAME: usize = 16 * 1024;

/// A body that yields pre-split frames, with an exact size hint, as hyper's would.
struct Frames {
    /// In reverse order, so the next frame is popped off the end.
    frames: Vec<Bytes>,
    remaining: u64,
}

impl Frames {
    fn new(frames: &[Bytes]) -> Self {
        let remaining = frames.iter().map(|f| f.len() as u64).sum();
        Self {
            frames: frames.iter().rev().cloned().collect(),
            remaining,
        }
    }
}

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = self.frames.pop();
        if let Some(frame) = &next {
            self.remaining -= frame.len() as u64;
        }
        Poll::Ready(next.map(|b| Ok(Frame::data(b))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

fn frames_of(body: &Bytes, framed: bool) -> Vec<Bytes> {
    if framed {
        (0..body.len())
            .step_by(FRAME)
            .map(|at| body.slice(at..(at + FRAME).min(body.len())))
            .collect()
    } else {
        vec![body.clone()]
    }
}

async fn consume<B: Body<Data = Bytes>>(request: Request<B>) -> Result<Response<Bytes>, Infallible>
where
    B::Error: std::fmt::Debug,
{
    let body = request.into_body().collect().await.unwrap().to_bytes();
    Ok(Response::new(Bytes::from(body.len().to_string())))
}

fn bench_signature(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let verifier = SignatureVerifier::builder()
        .secret("k1", Secret::from_utf8(SECRET).unwrap())
        .build()
        .unwrap();
    let guarded = GuardLayer::new(verifier)
        .body_limit(2 * 1024 * 1024)
        .layer(service_fn(consume));
    let bare = service_fn(consume);
    let keyed = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();

    for framed in [false, true] {
        let mut group = c.benchmark_group(if framed {
            "signature_16KiB_frames"
        } else {
            "signature_one_frame"
        });
        for (size, label) in SIZES {
            let body = Bytes::from((0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
            let mut mac = keyed.clone();
            mac.update(&body);
            let tag = mac.finalize().into_bytes();
            let signature = hex::encode(tag);
            let frames = frames_of(&body, framed);
            group.throughput(Throughput::Bytes(size as u64));

            group.bench_function(BenchmarkId::new("hmac_primitive", label), |b| {
                b.iter(|| {
                    let mut mac = keyed.clone();
                    for frame in &frames {
                        mac.update(frame);
                    }
                    mac.verify_slice(&tag).unwrap();
                });
            });
            group.bench_function(BenchmarkId::new("layer", label), |b| {
                b.iter(|| {
                    let request = Request::post("/tool")
                        .header("x-signature", signature.as_str())
                        .body(Frames::new(&frames))
                        .unwrap();
                    let response = runtime.block_on(guarded.clone().oneshot(request)).unwrap();
                    assert_eq!(response.status(), 200);
                });
            });
            group.bench_function(BenchmarkId::new("no_layer", label), |b| {
                b.iter(|| {
                    let request = Request::post("/tool")
                        .header("x-signature", signature.as_str())
                        .body(Frames::new(&frames))
                        .unwrap();
                    let response = runtime.block_on(bare.oneshot(request)).unwrap();
                    assert_eq!(response.status(), 200);
                });
            });
        }
        group.finish();
    }
}

/// The Twilio-compatible scheme's rejection cost against a plain scheme (Sendbird's preset:
/// hex HMAC-SHA256 of the raw body) on the same 1 MiB body with a made-up signature:
/// `a&a&…` (half a million parameters, refused by the parameter cap) and 1024 parameters
/// whose values are all percent-escapes (the most decoding the cap allows).
fn bench_form_rejection(c: &mut Criterion) {
    use callguard::providers;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let twilio = GuardLayer::new(
        providers::twilio_compatible()
            .secret("k", Secret::from_utf8(SECRET).unwrap())
            .public_base_url("https://hooks.example.com")
            .build()
            .unwrap(),
    )
    .body_limit(2 * 1024 * 1024)
    .layer(service_fn(consume));
    let sendbird = GuardLayer::new(
        providers::sendbird()
            .secret("k", Secret::from_utf8(SECRET).unwrap())
            .build()
            .unwrap(),
    )
    .body_limit(2 * 1024 * 1024)
    .layer(service_fn(consume));
    let mut group = c.benchmark_group("form_rejection_1MiB");
    for (label, body) in form_bodies() {
        group.throughput(Throughput::Bytes(body.len() as u64));
        let frames = [body];
        group.bench_function(BenchmarkId::new("twilio_compatible", label), |b| {
            b.iter(|| {
                let request = Request::post("/hook")
                    .header("x-twilio-signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
                    .body(Frames::new(&frames))
                    .unwrap();
                let response = runtime.block_on(twilio.clone().oneshot(request)).unwrap();
                assert!(response.status() == 401 || response.status() == 413);
            });
        });
        group.bench_function(BenchmarkId::new("sendbird", label), |b| {
            b.iter(|| {
                let request = Request::post("/hook")
                    .header("x-sendbird-signature", "00".repeat(32))
                    .body(Frames::new(&frames))
                    .unwrap();
                let response = runtime.block_on(sendbird.clone().oneshot(request)).unwrap();
                assert_eq!(response.status(), 401);
            });
        });
    }
    group.finish();
}

/// The two 1 MiB form bodies of `bench_form_rejection`.
fn form_bodies() -> [(&'static str, Bytes); 2] {
    const MIB: usize = 1024 * 1024;
    let many = "a&".repeat(MIB / 2);
    let value = "%41".repeat(MIB / 1024 / 3 - 1);
    let escaped: String = (0..1024).map(|i| format!("p{i:04}={value}&")).collect();
    [
        ("a_amp_repeated", Bytes::from(many)),
        ("1024_escaped_params", Bytes::from(escaped)),
    ]
}

criterion_group!(benches, bench_signature, bench_form_rejection);
criterion_main!(benches);
