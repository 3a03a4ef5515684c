//! Allocations per accepted 1 KiB request, for each method, counted by dhat's global
//! allocator and compared with the same request through no layer. Counts are deterministic,
//! so the budgets from the performance targets are asserted; times never are. This binary
//! holds one test, so nothing else allocates while it counts.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use std::convert::Infallible;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use callguard::basic::BasicUsers;
use callguard::bearer::BearerTokens;
use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier, TokenIssuer, TokenRequest};
use callguard::signature::SignatureVerifier;
use callguard::{Authenticator, GuardLayer, Scopes, Secret};
use common::{SECRET, sign_hex};
use http::{Request, Response};
use http_body_util::Full;
use tower::{Layer, Service, service_fn};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

type Body = Full<Bytes>;

/// The inner service: answers without touching the body, so only the guard's work counts.
async fn answer<B>(_request: Request<B>) -> Result<Response<Body>, Infallible> {
    Ok(Response::new(Full::new(Bytes::new())))
}

/// Allocations made while `service` handles `request` to completion, on this thread.
fn count<S>(mut service: S, request: Request<Body>) -> usize
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    assert!(service.poll_ready(&mut cx).is_ready());
    let before = dhat::HeapStats::get().total_blocks;
    let mut future = std::pin::pin!(service.call(request));
    let response = loop {
        if let std::task::Poll::Ready(response) = future.as_mut().poll(&mut cx) {
            break response.unwrap();
        }
    };
    let after = dhat::HeapStats::get().total_blocks;
    assert_eq!(response.status(), 200);
    usize::try_from(after - before).unwrap()
}

fn body() -> Bytes {
    Bytes::from(vec![b'x'; 1024])
}

/// Whether the request arrives with an extension map already in place, as axum's router
/// leaves it (it inserts the matched path and URL parameters before route layers run).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Extensions {
    Empty,
    LikeAxum,
}

#[derive(Clone)]
struct RouterMarker;

fn request(header: (&str, String), extensions: Extensions) -> Request<Body> {
    // The URI as hyper makes it: a slice of its shared read buffer, so cloning it (the
    // guard keeps the path for logging a handler's refusal) counts references rather than
    // allocating, as it does in a server. (`Request::post("/tool")` would copy the text
    // into a vector whose first clone allocates.)
    let buffer = bytes::Bytes::from(b"POST /tool HTTP/1.1".to_vec());
    let _hyper_keeps_the_buffer = buffer.clone();
    let uri = http::Uri::from_maybe_shared(buffer.slice(5..10)).unwrap();
    let mut request = Request::post(uri)
        .header(header.0, header.1)
        .body(Full::new(body()))
        .unwrap();
    if extensions == Extensions::LikeAxum {
        request.extensions_mut().insert(RouterMarker);
    }
    request
}

/// `authenticator` after it has accepted `token` once, so its cache holds it.
fn warmed(authenticator: Authenticator, token: &str) -> Authenticator {
    let guarded = GuardLayer::new(authenticator.clone())
        .layer(service_fn(answer::<callguard::guard::GuardedBody<Body>>));
    count(
        guarded,
        request(
            ("authorization", format!("Bearer {token}")),
            Extensions::Empty,
        ),
    );
    authenticator
}

/// A method, the header that proves the caller, and its allocation budget (if any).
type Case = (
    &'static str,
    Authenticator,
    (&'static str, String),
    Option<usize>,
);

#[test]
fn allocations_per_1kib_request_stay_within_budget() {
    let _profiler = dhat::Profiler::builder().testing().build();

    let signature = SignatureVerifier::builder()
        .secret("k1", Secret::from_utf8(SECRET).unwrap())
        .build()
        .unwrap();
    let tokens = BearerTokens::builder()
        .token(
            "agent",
            Secret::from_utf8("tok_agent_0123456789abcdef").unwrap(),
            Scopes::from_iter(["tools:call"]),
        )
        .build()
        .unwrap();
    let users = BasicUsers::builder()
        .user(
            "minter",
            Secret::from_utf8("minter-password-0001").unwrap(),
            Scopes::empty(),
        )
        .build()
        .unwrap();
    let jwt = JwtConfig::builder()
        .key(
            "j1",
            JwtKey::hmac(
                JwtAlgorithm::HS256,
                &Secret::from_utf8("a-jwt-signing-key-of-32-bytes!!!").unwrap(),
            )
            .unwrap(),
        )
        .build()
        .unwrap();
    let token = TokenIssuer::new(jwt.clone())
        .issue(TokenRequest::new(
            "agent",
            Scopes::from_iter(["tools:call"]),
            Duration::from_secs(60),
        ))
        .unwrap()
        .access_token;
    let basic = base64::engine::general_purpose::STANDARD.encode("minter:minter-password-0001");

    // Budgets (with axum's extension map in place): signatures 2, tokens 1. A JWT's first
    // use parses JSON claims, which allocates, and is reported without a budget; a repeated
    // JWT comes from the verifier's cache and has the token budget.
    let cases: Vec<Case> = vec![
        (
            "signature",
            signature.into(),
            ("x-signature", sign_hex(SECRET, &body())),
            Some(2),
        ),
        (
            "bearer",
            tokens.into(),
            (
                "authorization",
                "Bearer tok_agent_0123456789abcdef".to_owned(),
            ),
            Some(1),
        ),
        (
            "basic",
            users.into(),
            ("authorization", format!("Basic {basic}")),
            Some(1),
        ),
        (
            "jwt (first use)",
            JwtVerifier::new(jwt.clone()).without_cache().into(),
            ("authorization", format!("Bearer {token}")),
            None,
        ),
        (
            "jwt (repeated)",
            warmed(JwtVerifier::new(jwt).into(), &token),
            ("authorization", format!("Bearer {token}")),
            Some(1),
        ),
    ];
    let mut report = Vec::new();
    for (name, authenticator, header, budget) in cases {
        for extensions in [Extensions::LikeAxum, Extensions::Empty] {
            let baseline = count(
                service_fn(answer::<Body>),
                request(header.clone(), extensions),
            );
            let guarded = GuardLayer::new(authenticator.clone())
                .layer(service_fn(answer::<callguard::guard::GuardedBody<Body>>));
            let added = count(guarded, request(header.clone(), extensions)) - baseline;
            report.push(format!("{name} ({extensions:?} extensions): {added} beyond the no-layer baseline of {baseline}"));
            if let (Some(budget), Extensions::LikeAxum) = (budget, extensions) {
                assert!(
                    added <= budget,
                    "{name}: {added} allocations beyond baseline, budget {budget}"
                );
            }
        }
    }
    println!("allocations per 1 KiB request:\n  {}", report.join("\n  "));
}
