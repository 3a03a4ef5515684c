//! The Twilio-compatible message's memory, counted by dhat: refusing a made-up signature on
//! a 1 MiB form body adds at most twice the body to the heap's peak (it added 41 MiB when
//! every parameter was a `String` pair), on the body that decodes the most the parameter
//! cap allows and on one that the cap refuses.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::convert::Infallible;

use bytes::Bytes;
use callguard::{GuardLayer, Secret, providers};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Layer, Service, service_fn};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

const MIB: usize = 1024 * 1024;

/// The heap's peak while `body` is refused, above what was live before, and the status.
fn added_peak(guard: &GuardLayer, body: Bytes) -> (usize, StatusCode) {
    let mut service = guard.layer(service_fn(|_request| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    }));
    let request = Request::post("/hook")
        .header("x-twilio-signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .body(Full::new(body))
        .unwrap();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(service.poll_ready(&mut cx).is_ready());
    let live = dhat::HeapStats::get().curr_bytes;
    let mut future = std::pin::pin!(service.call(request));
    let response = loop {
        if let std::task::Poll::Ready(response) = future.as_mut().poll(&mut cx) {
            break response.unwrap();
        }
    };
    let peak = dhat::HeapStats::get().max_bytes;
    (peak.saturating_sub(live), response.status())
}

#[test]
fn refusing_a_1_mib_form_body_adds_at_most_twice_the_body() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let guard = GuardLayer::new(
        providers::twilio_compatible()
            .secret(
                "k",
                Secret::from_utf8("twilio-auth-token-0123456789").unwrap(),
            )
            .public_base_url("https://hooks.example.com")
            .build()
            .unwrap(),
    )
    .body_limit(2 * MIB);
    let escaped = || {
        let value = "%41".repeat(MIB / 1024 / 3 - 1);
        (0..1024)
            .map(|i| format!("p{i:04}={value}&"))
            .collect::<String>()
    };
    let many = || "a&".repeat(MIB / 2);
    // dhat's peak only grows, so the case with the smaller peak goes first.
    let cases: [(&dyn Fn() -> String, StatusCode); 2] = [
        (&many, StatusCode::PAYLOAD_TOO_LARGE),
        (&escaped, StatusCode::UNAUTHORIZED),
    ];
    for (make, status) in cases {
        let body = make();
        let len = body.len();
        let (added, answered) = added_peak(&guard, Bytes::from(body));
        assert_eq!(answered, status);
        assert!(
            added <= 2 * len,
            "added {added} bytes for a {len}-byte body"
        );
        println!("{len}-byte body: {added} bytes added to the peak ({status})");
    }
}
