//! Where an accepted request's instructions go: runs one case's requests in a loop, each
//! through `measured`, for `scripts/profile.sh` to count under callgrind (per-request
//! totals and the functions they are spent in). Counts, unlike times, are the same on a
//! busy machine, and under valgrind SHA-256 runs its software path.
//!
//! Run with: `bash scripts/profile.sh` (or `cargo bench --bench profile -- <case> <n>`
//! for the plain loop; the cases are listed by `-- list`).
#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]

use bytes::Bytes;
use callguard::bearer::BearerTokens;
use callguard::signature::SignatureVerifier;
use callguard::{GuardLayer, Scopes, Secret};
use hmac::{Hmac, KeyInit, Mac};
use http::{Request, Response};
use http_body_util::Full;
use sha2::Sha256;
use tower::{Layer, Service, ServiceExt, service_fn};

#[path = "support/wire.rs"]
mod wire;

#[path = "support/hand_rolled.rs"]
mod hand_rolled;

#[path = "support/consume.rs"]
mod consume;

use consume::consume;

type Body = Full<Bytes>;

const KEY: &str = "0123456789abcdef0123456789abcdef";
const TOKEN: &str = "tok_agent_0123456789abcdef0123456789";
const CASES: [&str; 10] = [
    "signature_64B",
    "signature_1KiB",
    "hand_rolled_64B",
    "hand_rolled_1KiB",
    "hand_rolled_shared_64B",
    "hand_rolled_shared_1KiB",
    "no_layer_64B",
    "no_layer_1KiB",
    "bearer",
    "no_layer_bearer",
];

/// One request, start to answer. Not inlined, so callgrind can count it by name.
#[inline(never)]
fn measured<S>(runtime: &tokio::runtime::Runtime, service: &S, request: Request<Body>) -> u16
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone,
    S::Error: std::fmt::Debug,
{
    let response = runtime.block_on(service.clone().oneshot(request)).unwrap();
    response.status().as_u16()
}

fn run<S>(
    runtime: &tokio::runtime::Runtime,
    service: &S,
    request: impl Fn() -> Request<Body>,
    n: usize,
) where
    S: Service<Request<Body>, Response = Response<Body>> + Clone,
    S::Error: std::fmt::Debug,
{
    for _ in 0..n {
        assert_eq!(measured(runtime, service, request()), 200);
    }
}

fn signed(size: usize) -> impl Fn() -> Request<Body> {
    let body = Bytes::from((0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(&body);
    let signature = hex::encode(mac.finalize().into_bytes());
    move || {
        wire::request(
            http::Method::POST,
            "/tool",
            &[("x-signature", signature.as_str())],
            body.clone(),
        )
    }
}

fn bearer() -> Request<Body> {
    wire::request(
        http::Method::POST,
        "/tool",
        &[("authorization", &format!("Bearer {TOKEN}"))],
        Bytes::new(),
    )
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let case = args.first().map_or("list", String::as_str);
    let n: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let keyed = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    let signature = || {
        GuardLayer::new(
            SignatureVerifier::builder()
                .secret("k1", Secret::from_utf8(KEY).unwrap())
                .build()
                .unwrap(),
        )
        .layer(service_fn(consume))
    };
    let size = if case.ends_with("1KiB") { 1024 } else { 64 };
    match case {
        "signature_64B" | "signature_1KiB" => run(&runtime, &signature(), signed(size), n),
        "hand_rolled_64B" | "hand_rolled_1KiB" => run(
            &runtime,
            &hand_rolled::hand_rolled(keyed, consume::<Body>),
            signed(size),
            n,
        ),
        "hand_rolled_shared_64B" | "hand_rolled_shared_1KiB" => run(
            &runtime,
            &hand_rolled::hand_rolled_shared(keyed, consume::<Body>),
            signed(size),
            n,
        ),
        "no_layer_64B" | "no_layer_1KiB" => {
            run(&runtime, &service_fn(consume::<Body>), signed(size), n);
        }
        "bearer" => {
            let tokens = BearerTokens::builder()
                .token("agent", Secret::from_utf8(TOKEN).unwrap(), Scopes::empty())
                .build()
                .unwrap();
            run(
                &runtime,
                &GuardLayer::new(tokens).layer(service_fn(consume)),
                bearer,
                n,
            );
        }
        "no_layer_bearer" => run(&runtime, &service_fn(consume::<Body>), bearer, n),
        "sizes" => {
            let guarded = signature();
            let hand = hand_rolled::hand_rolled(keyed, consume::<Body>);
            println!(
                "future sizes (bytes): callguard signature {}, hand-rolled {}, no layer {}",
                std::mem::size_of_val(&guarded.clone().oneshot(signed(64)())),
                std::mem::size_of_val(&hand.clone().oneshot(signed(64)())),
                std::mem::size_of_val(&service_fn(consume::<Body>).oneshot(signed(64)())),
            );
        }
        _ => println!("{}", CASES.join("\n")),
    }
}
