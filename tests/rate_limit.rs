//! Rate limits for accepted callers: GCRA per caller, 429 with Retry-After and the IETF
//! RateLimit fields, decided before a delivery's replay record is made.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::time::Duration;

use bytes::Bytes;
use callguard::bearer::BearerTokens;
use callguard::clock::FixedClock;
use callguard::limit::RateLimit;
use callguard::replay::MemoryReplayStore;
use callguard::{AuthError, AuthErrorKind, GuardLayer, Scopes, Secret};
use http::{Request, StatusCode};
use http_body_util::Full;
use tower::{Layer, ServiceExt, service_fn};

const NOW: i64 = 1_800_000_000;

fn tokens() -> BearerTokens {
    BearerTokens::builder()
        .token(
            "a",
            Secret::from_utf8("tok_agent_a_0123456789abcdef").unwrap(),
            Scopes::empty(),
        )
        .token(
            "b",
            Secret::from_utf8("tok_agent_b_0123456789abcdef").unwrap(),
            Scopes::empty(),
        )
        .build()
        .unwrap()
}

struct Answer {
    status: StatusCode,
    kind: Option<AuthErrorKind>,
    headers: http::HeaderMap,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

async fn send(guard: &GuardLayer, token: &str) -> Answer {
    let service = guard.layer(service_fn(|_: Request<_>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
    }));
    let request = Request::post("/tools/echo")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    let headers = response.headers().clone();
    Answer {
        status: response.status(),
        kind: response
            .extensions()
            .get::<AuthError>()
            .map(AuthError::kind),
        headers,
    }
}

#[tokio::test]
async fn a_caller_past_its_quota_is_429_with_the_ratelimit_fields_and_others_are_not() {
    let clock = FixedClock::at_unix(NOW);
    let limit = RateLimit::builder(MemoryReplayStore::default())
        .quota(3, Duration::from_secs(60))
        .clock(clock.clone())
        .build()
        .unwrap();
    let guard = GuardLayer::new(tokens()).rate_limit(limit);
    let a = "tok_agent_a_0123456789abcdef";
    // Accepted responses carry where the caller stands.
    for (remaining, reset) in [(2, 20), (1, 40), (0, 60)] {
        let accepted = send(&guard, a).await;
        assert_eq!(accepted.status, StatusCode::OK);
        assert_eq!(
            accepted.header("ratelimit"),
            Some(format!("\"callguard\";r={remaining};t={reset}"))
        );
        assert_eq!(
            accepted.header("ratelimit-policy").as_deref(),
            Some("\"callguard\";q=3;w=60")
        );
    }
    let refused = send(&guard, a).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.kind, Some(AuthErrorKind::RateLimited));
    assert_eq!(refused.header("retry-after").as_deref(), Some("20"));
    assert_eq!(
        refused.header("ratelimit-policy").as_deref(),
        Some("\"callguard\";q=3;w=60")
    );
    assert_eq!(
        refused.header("ratelimit").as_deref(),
        Some("\"callguard\";r=0;t=20")
    );
    // Another caller has its own quota.
    assert_eq!(
        send(&guard, "tok_agent_b_0123456789abcdef").await.status,
        StatusCode::OK
    );
    // One interval later, one more request.
    clock.advance(Duration::from_secs(20));
    assert_eq!(send(&guard, a).await.status, StatusCode::OK);
    assert_eq!(send(&guard, a).await.status, StatusCode::TOO_MANY_REQUESTS);
}

const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A Standard Webhooks guard with replay protection and a rate limit of `quota` a minute.
fn webhook_guard(clock: &FixedClock, quota: u32) -> GuardLayer {
    use callguard::providers;
    let limit = RateLimit::builder(MemoryReplayStore::default())
        .quota(quota, Duration::from_secs(60))
        .clock(clock.clone())
        .build()
        .unwrap();
    let verifier = providers::standard_webhooks()
        .signing_secret("k", WEBHOOK_SECRET)
        .clock(clock.clone())
        .replay_protection(MemoryReplayStore::with_clock(64, clock.clone()))
        .build()
        .unwrap();
    GuardLayer::new(verifier).rate_limit(limit)
}

/// Deliver the signed event `id` through `guard`.
async fn deliver(guard: &GuardLayer, id: &str) -> StatusCode {
    use callguard::providers;
    let body = br#"{"type":"ping"}"#;
    let request = callguard::signature::SigningRequest::new(body)
        .timestamp(NOW + 30)
        .id(id);
    let signer = providers::standard_webhooks()
        .signing_secret("k", WEBHOOK_SECRET)
        .build()
        .unwrap();
    let mut builder = Request::post("/hook");
    for (name, value) in signer.sign(&request).unwrap() {
        builder = builder.header(name, value);
    }
    let request = builder.body(Full::new(Bytes::from_static(body))).unwrap();
    let service = guard.layer(service_fn(|_: Request<_>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
    }));
    service.oneshot(request).await.unwrap().status()
}

#[tokio::test]
async fn a_delivery_refused_for_its_rate_is_not_recorded_as_seen() {
    let clock = FixedClock::at_unix(NOW);
    let guard = webhook_guard(&clock, 1);
    assert_eq!(deliver(&guard, "msg_1").await, StatusCode::OK);
    assert_eq!(
        deliver(&guard, "msg_2").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The platform retries msg_2 once the quota refills: accepted, not a replay.
    clock.advance(Duration::from_secs(60));
    assert_eq!(deliver(&guard, "msg_2").await, StatusCode::OK);
}

#[tokio::test]
async fn replays_do_not_spend_the_senders_quota() {
    let clock = FixedClock::at_unix(NOW);
    let guard = webhook_guard(&clock, 2);
    assert_eq!(deliver(&guard, "msg_1").await, StatusCode::OK);
    // Someone who captured msg_1 sends it again and again: refused as a replay each time,
    // before the rate limit counts it.
    for _ in 0..5 {
        assert_ne!(deliver(&guard, "msg_1").await, StatusCode::OK);
    }
    assert_eq!(deliver(&guard, "msg_2").await, StatusCode::OK);
}

#[test]
fn a_limit_that_could_never_work_is_refused_when_built() {
    let build = |quota: u32, period_ms: u64, burst: Option<u32>| {
        let builder = RateLimit::builder(MemoryReplayStore::default())
            .quota(quota, Duration::from_millis(period_ms));
        match burst {
            Some(burst) => builder.burst(burst),
            None => builder,
        }
        .build()
    };
    assert!(build(0, 1000, None).is_err());
    assert!(build(10, 5, None).is_err());
    assert!(build(10, 1000, Some(0)).is_err());
    assert!(build(10, 1000, Some(11)).is_err());
    assert!(build(10, 1000, Some(1)).is_ok());
}
