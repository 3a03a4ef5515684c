//! Replay protection: a verified delivery is accepted once per window, keyed only on signed
//! material, shared across instances through one store, and never silently accepted when
//! the store is down.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use callguard::clock::FixedClock;
use callguard::replay::{
    MemoryReplayStore, RecordId, ReplayKey, ReplayPolicy, ReplayStore, StoreError, StoreFuture,
};
use callguard::signature::{SignatureVerifier, SignatureVerifierBuilder, SigningRequest};
use callguard::{AuthError, AuthErrorKind, GuardLayer, Secret, providers};
use common::echo;
use http::{Request, StatusCode};
use http_body_util::Full;
use tower::{Layer, ServiceExt, service_fn};

const NOW: i64 = 1_700_000_000;

fn secret() -> Secret {
    Secret::from_utf8("whsec_c2lnbmluZy1zZWNyZXQtMDEyMzQ1Njc4OQ").unwrap()
}

fn build(builder: SignatureVerifierBuilder) -> SignatureVerifier {
    builder
        .secret("k", secret())
        .clock(FixedClock::at_unix(NOW))
        .build()
        .unwrap()
}

fn signed(verifier: &SignatureVerifier, body: &'static [u8], id: &str) -> Vec<(String, String)> {
    verifier
        .sign(&SigningRequest::new(body).timestamp(NOW).id(id))
        .unwrap()
}

async fn deliver(
    guard: &GuardLayer,
    headers: &[(String, String)],
    body: &'static [u8],
) -> (StatusCode, Option<AuthErrorKind>) {
    let mut request = Request::post("/hook");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = guard
        .clone()
        .layer(service_fn(echo))
        .oneshot(request.body(Full::new(Bytes::from_static(body))).unwrap())
        .await
        .unwrap();
    (
        response.status(),
        response
            .extensions()
            .get::<AuthError>()
            .map(AuthError::kind),
    )
}

#[tokio::test]
async fn standard_webhooks_delivery_is_accepted_once_by_default() {
    let verifier = build(providers::standard_webhooks());
    let guard = GuardLayer::new(verifier.clone());
    let first = signed(&verifier, b"{}", "msg_1");
    assert_eq!(deliver(&guard, &first, b"{}").await.0, StatusCode::OK);
    assert_eq!(
        deliver(&guard, &first, b"{}").await,
        (StatusCode::UNAUTHORIZED, Some(AuthErrorKind::Replayed))
    );
    let other = signed(&verifier, b"{}", "msg_2");
    assert_eq!(deliver(&guard, &other, b"{}").await.0, StatusCode::OK);
}

#[tokio::test]
async fn stripe_replay_is_caught_even_with_the_signature_list_rearranged() {
    let verifier = build(providers::stripe());
    let guard = GuardLayer::new(verifier.clone());
    let headers = signed(&verifier, b"{\"id\":\"evt_1\"}", "");
    assert_eq!(
        deliver(&guard, &headers, b"{\"id\":\"evt_1\"}").await.0,
        StatusCode::OK
    );
    let (name, value) = &headers[0];
    let (t, v1) = value.split_once(',').unwrap();
    let rearranged = vec![(name.clone(), format!("{t},v0=00,{v1},{v1}"))];
    assert_eq!(
        deliver(&guard, &rearranged, b"{\"id\":\"evt_1\"}").await,
        (StatusCode::UNAUTHORIZED, Some(AuthErrorKind::Replayed))
    );
}

#[tokio::test]
async fn schemes_without_a_timestamp_are_unprotected_unless_asked() {
    let verifier = build(providers::github());
    let guard = GuardLayer::new(verifier.clone());
    let headers = signed(&verifier, b"{}", "");
    assert_eq!(deliver(&guard, &headers, b"{}").await.0, StatusCode::OK);
    assert_eq!(
        deliver(&guard, &headers, b"{}").await.0,
        StatusCode::OK,
        "platforms retry identical deliveries"
    );

    let protected = build(providers::github().replay_protection(MemoryReplayStore::new(64)));
    let guard = GuardLayer::new(protected);
    let mut first = headers.clone();
    first.push(("x-github-delivery".into(), "delivery-1".into()));
    assert_eq!(deliver(&guard, &first, b"{}").await.0, StatusCode::OK);
    // The unsigned delivery id is not the key: changing it does not make a replay new.
    let mut again = headers;
    again.push(("x-github-delivery".into(), "delivery-2".into()));
    assert_eq!(
        deliver(&guard, &again, b"{}").await.1,
        Some(AuthErrorKind::Replayed)
    );
}

#[tokio::test]
async fn a_forged_request_does_not_poison_the_store() {
    let verifier = build(providers::standard_webhooks());
    let guard = GuardLayer::new(verifier.clone());
    let genuine = signed(&verifier, b"{}", "msg_victim");
    let mut forged = genuine.clone();
    forged[0].1 = format!("v1,{}", "A".repeat(43) + "=");
    assert_eq!(
        deliver(&guard, &forged, b"{}").await.1,
        Some(AuthErrorKind::InvalidCredentials)
    );
    assert_eq!(deliver(&guard, &genuine, b"{}").await.0, StatusCode::OK);
}

#[tokio::test]
async fn two_replicas_sharing_one_store_reject_the_second_delivery() {
    let shared = MemoryReplayStore::new(64);
    let replica_a = GuardLayer::new(build(providers::slack().replay_protection(shared.clone())));
    let replica_b = GuardLayer::new(build(providers::slack().replay_protection(shared)));
    let headers = signed(&build(providers::slack()), b"a=b", "");
    assert_eq!(
        deliver(&replica_a, &headers, b"a=b").await.0,
        StatusCode::OK
    );
    assert_eq!(
        deliver(&replica_b, &headers, b"a=b").await.1,
        Some(AuthErrorKind::Replayed)
    );
}

/// A store that is down, counting how often it was asked.
#[derive(Clone, Default)]
struct DownStore(Arc<AtomicUsize>);

impl ReplayStore for DownStore {
    fn first_seen(&self, _key: ReplayKey, _record: RecordId, _window: Duration) -> StoreFuture {
        self.0.fetch_add(1, Ordering::Relaxed);
        StoreFuture::pending(async { Err(StoreError::new("connection refused")) })
    }

    fn release(&self, _key: ReplayKey, _record: RecordId) -> StoreFuture {
        StoreFuture::pending(async { Err(StoreError::new("connection refused")) })
    }

    fn contains(&self, _key: ReplayKey) -> StoreFuture {
        self.0.fetch_add(1, Ordering::Relaxed);
        StoreFuture::pending(async { Err(StoreError::new("connection refused")) })
    }
}

fn jwt_guard(
    store: impl ReplayStore,
) -> (callguard::jwt::JwtVerifier, callguard::jwt::TokenIssuer) {
    use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier, TokenIssuer};
    let config = JwtConfig::builder()
        .key(
            "k",
            JwtKey::hmac(
                JwtAlgorithm::HS256,
                &Secret::from_utf8("a-jwt-signing-key-of-32-bytes!!!").unwrap(),
            )
            .unwrap(),
        )
        .clock(FixedClock::at_unix(NOW))
        .build()
        .unwrap();
    (
        JwtVerifier::new(config.clone())
            .revocations(callguard::jwt::Revocations::new(store).policy(ReplayPolicy::FailClosed)),
        TokenIssuer::new(config),
    )
}

async fn present(guard: &GuardLayer, token: &str) -> (StatusCode, Option<AuthErrorKind>) {
    let authorization = ("authorization".to_owned(), format!("Bearer {token}"));
    deliver(guard, &[authorization], b"").await
}

#[tokio::test]
async fn a_revoked_jwt_is_cut_off_before_its_expiry_even_from_the_cache() {
    use callguard::jwt::TokenRequest;
    let (verifier, issuer) = jwt_guard(MemoryReplayStore::with_clock(64, FixedClock::at_unix(NOW)));
    let stolen = issuer
        .issue(TokenRequest::new(
            "agent",
            callguard::Scopes::empty(),
            Duration::from_secs(600),
        ))
        .unwrap();
    let other = issuer
        .issue(TokenRequest::new(
            "agent",
            callguard::Scopes::empty(),
            Duration::from_secs(600),
        ))
        .unwrap();
    let guard = GuardLayer::new(verifier.clone());
    assert_eq!(
        present(&guard, &stolen.access_token).await.0,
        StatusCode::OK,
        "verified and now cached"
    );
    assert_eq!(
        verifier.revoke(&stolen.jti, Duration::from_secs(600)).await,
        Ok(true)
    );
    assert_eq!(
        present(&guard, &stolen.access_token).await,
        (StatusCode::UNAUTHORIZED, Some(AuthErrorKind::TokenRevoked))
    );
    assert_eq!(
        present(&guard, &other.access_token).await.0,
        StatusCode::OK,
        "other tokens are unaffected"
    );
}

#[tokio::test]
async fn a_denylist_that_is_down_refuses_tokens() {
    use callguard::jwt::TokenRequest;
    let (verifier, issuer) = jwt_guard(DownStore::default());
    let token = issuer
        .issue(TokenRequest::new(
            "agent",
            callguard::Scopes::empty(),
            Duration::from_secs(60),
        ))
        .unwrap();
    let (status, kind) = present(&GuardLayer::new(verifier), &token.access_token).await;
    assert_eq!(
        (status, kind),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some(AuthErrorKind::StoreUnavailable)
        )
    );
}

#[tokio::test]
async fn a_store_that_is_down_gives_503_unless_failing_open_was_chosen() {
    let down = DownStore::default();
    let closed = build(providers::slack().replay_protection(down.clone()));
    let headers = signed(&closed, b"a=b", "");
    let guard = GuardLayer::new(closed);
    assert_eq!(
        deliver(&guard, &headers, b"a=b").await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some(AuthErrorKind::StoreUnavailable)
        )
    );

    let open = build(
        providers::slack()
            .replay_protection(down.clone())
            .replay_policy(ReplayPolicy::FailOpen),
    );
    assert_eq!(
        deliver(&GuardLayer::new(open), &headers, b"a=b").await.0,
        StatusCode::OK
    );
    assert_eq!(down.0.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn replay_protection_can_be_turned_off() {
    let verifier = build(providers::standard_webhooks().without_replay_protection());
    let guard = GuardLayer::new(verifier.clone());
    let headers = signed(&verifier, b"{}", "msg_1");
    assert_eq!(deliver(&guard, &headers, b"{}").await.0, StatusCode::OK);
    assert_eq!(deliver(&guard, &headers, b"{}").await.0, StatusCode::OK);
}

/// Deliver through a service that answers `status` (or fails, for `None`).
async fn deliver_to(
    guard: &GuardLayer,
    headers: &[(String, String)],
    status: Option<StatusCode>,
) -> Result<StatusCode, &'static str> {
    let mut request = Request::post("/hook");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let service = service_fn(move |_request: Request<_>| async move {
        match status {
            Some(status) => {
                let mut response = http::Response::new(Full::new(Bytes::new()));
                *response.status_mut() = status;
                Ok(response)
            }
            None => Err("the handler failed"),
        }
    });
    guard
        .clone()
        .layer(service)
        .oneshot(request.body(Full::new(Bytes::from_static(b"{}"))).unwrap())
        .await
        .map(|response| response.status())
}

#[tokio::test]
async fn a_delivery_the_handler_failed_is_accepted_when_the_platform_retries_it() {
    let verifier = build(providers::standard_webhooks());
    let guard = GuardLayer::new(verifier.clone());
    let headers = signed(&verifier, b"{}", "msg_failed");
    let failed = Some(StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        deliver_to(&guard, &headers, failed).await,
        Ok(StatusCode::INTERNAL_SERVER_ERROR)
    );
    assert_eq!(
        deliver_to(&guard, &headers, Some(StatusCode::SERVICE_UNAVAILABLE)).await,
        Ok(StatusCode::SERVICE_UNAVAILABLE),
        "a 5xx releases the delivery"
    );
    assert_eq!(
        deliver_to(&guard, &headers, None).await,
        Err("the handler failed")
    );
    assert_eq!(
        deliver_to(&guard, &headers, Some(StatusCode::OK)).await,
        Ok(StatusCode::OK),
        "a failed handler releases the delivery"
    );
    assert_eq!(
        deliver(&guard, &headers, b"{}").await,
        (StatusCode::UNAUTHORIZED, Some(AuthErrorKind::Replayed)),
        "once handled, the delivery is remembered"
    );
    let client_error = signed(&verifier, b"{}", "msg_refused_by_handler");
    assert_eq!(
        deliver_to(&guard, &client_error, Some(StatusCode::BAD_REQUEST)).await,
        Ok(StatusCode::BAD_REQUEST)
    );
    assert_eq!(
        deliver(&guard, &client_error, b"{}").await.1,
        Some(AuthErrorKind::Replayed),
        "a 4xx is the handler's answer, not a failure: no release by default"
    );
}

#[tokio::test]
async fn which_statuses_release_a_delivery_is_configurable() {
    let verifier = build(
        providers::standard_webhooks()
            .release_replay_on(|status| status == StatusCode::TOO_MANY_REQUESTS),
    );
    let guard = GuardLayer::new(verifier.clone());
    let busy = signed(&verifier, b"{}", "msg_busy");
    let _ = deliver_to(&guard, &busy, Some(StatusCode::TOO_MANY_REQUESTS)).await;
    assert_eq!(deliver(&guard, &busy, b"{}").await.0, StatusCode::OK);
    let crashed = signed(&verifier, b"{}", "msg_crashed");
    let _ = deliver_to(&guard, &crashed, Some(StatusCode::INTERNAL_SERVER_ERROR)).await;
    assert_eq!(
        deliver(&guard, &crashed, b"{}").await.1,
        Some(AuthErrorKind::Replayed)
    );
}

#[tokio::test]
async fn a_duplicate_arriving_while_the_first_is_handled_is_refused() {
    let verifier = build(providers::standard_webhooks());
    let guard = GuardLayer::new(verifier.clone());
    let headers = signed(&verifier, b"{}", "msg_in_flight");
    let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
    let (finish_tx, finish_rx) = tokio::sync::oneshot::channel::<()>();
    let slots = Arc::new(std::sync::Mutex::new(Some((entered_tx, finish_rx))));
    let slow = service_fn(move |_request: Request<_>| {
        let slot = slots.lock().unwrap().take();
        async move {
            if let Some((entered, finish)) = slot {
                let _ = entered.send(());
                let _ = finish.await;
            }
            let mut response = http::Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let mut request = Request::post("/hook");
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    let first = tokio::spawn(
        guard
            .clone()
            .layer(slow)
            .oneshot(request.body(Full::new(Bytes::from_static(b"{}"))).unwrap()),
    );
    entered_rx.await.unwrap();
    assert_eq!(
        deliver(&guard, &headers, b"{}").await.1,
        Some(AuthErrorKind::Replayed),
        "still in flight"
    );
    finish_tx.send(()).unwrap();
    assert_eq!(
        first.await.unwrap().unwrap().status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        deliver(&guard, &headers, b"{}").await.0,
        StatusCode::OK,
        "released after the 5xx"
    );
}

#[tokio::test]
async fn a_full_memory_store_refuses_new_deliveries_and_never_forgets_a_live_one() {
    let store = MemoryReplayStore::with_clock(64, FixedClock::at_unix(NOW));
    let verifier = build(providers::standard_webhooks().replay_protection(store.clone()));
    let guard = GuardLayer::new(verifier.clone());
    let first = signed(&verifier, b"{}", "msg_0");
    assert_eq!(deliver(&guard, &first, b"{}").await.0, StatusCode::OK);
    let mut refused = 0;
    for n in 1..1_000 {
        let headers = signed(
            &verifier,
            b"{}",
            Box::leak(format!("msg_{n}").into_boxed_str()),
        );
        match deliver(&guard, &headers, b"{}").await {
            (StatusCode::OK, None) => {}
            (StatusCode::SERVICE_UNAVAILABLE, Some(AuthErrorKind::StoreUnavailable)) => {
                refused += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            deliver(&guard, &first, b"{}").await.1,
            Some(AuthErrorKind::Replayed),
            "the first delivery was forgotten after {n} others"
        );
    }
    assert!(refused > 0, "a store of 64 keys took 1000 live deliveries");
    assert!(store.len() <= store.capacity());
}

#[tokio::test]
async fn a_revocation_the_store_cannot_hold_is_an_error_and_none_is_forgotten() {
    use callguard::jwt::TokenRequest;
    let store = MemoryReplayStore::with_clock(64, FixedClock::at_unix(NOW));
    let (verifier, issuer) = jwt_guard(store.clone());
    let guard = GuardLayer::new(verifier.clone());
    let mut revoked = Vec::new();
    let mut refused = 0;
    for _ in 0..300 {
        let token = issuer
            .issue(TokenRequest::new(
                "agent",
                callguard::Scopes::empty(),
                Duration::from_secs(600),
            ))
            .unwrap();
        match verifier.revoke(&token.jti, Duration::from_secs(600)).await {
            Ok(true) => revoked.push(token.access_token),
            Err(_) => refused += 1,
            Ok(false) => panic!("a fresh jti was already revoked"),
        }
    }
    assert!(refused > 0, "a store of 64 keys held 300 revocations");
    for token in &revoked {
        assert_eq!(
            present(&guard, token).await,
            (StatusCode::UNAUTHORIZED, Some(AuthErrorKind::TokenRevoked)),
            "a revoked token was forgotten"
        );
    }
    assert!(store.len() <= store.capacity());
}

#[tokio::test]
async fn a_delivery_whose_request_was_dropped_while_handled_is_released() {
    let verifier = build(providers::standard_webhooks());
    let guard = GuardLayer::new(verifier.clone());
    let headers = signed(&verifier, b"{}", "msg_abandoned");
    let never = service_fn(|_request: Request<_>| async {
        std::future::pending::<Result<http::Response<Full<Bytes>>, std::convert::Infallible>>()
            .await
    });
    let mut request = Request::post("/hook");
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    let abandoned = tokio::time::timeout(
        Duration::from_millis(50),
        guard
            .clone()
            .layer(never)
            .oneshot(request.body(Full::new(Bytes::from_static(b"{}"))).unwrap()),
    )
    .await;
    assert!(
        abandoned.is_err(),
        "the platform gave up on the slow handler"
    );
    assert_eq!(
        deliver(&guard, &headers, b"{}").await.0,
        StatusCode::OK,
        "its retry is accepted"
    );
    assert_eq!(
        deliver(&guard, &headers, b"{}").await.1,
        Some(AuthErrorKind::Replayed)
    );
}

/// A store whose writes land after a delay whether or not anyone still waits for the
/// answer (as a Redis `SET` already sent does).
#[derive(Clone)]
struct SlowWrites(MemoryReplayStore);

impl ReplayStore for SlowWrites {
    fn first_seen(&self, key: ReplayKey, record: RecordId, window: Duration) -> StoreFuture {
        let (answer_tx, answer_rx) = tokio::sync::oneshot::channel();
        let inner = self.0.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = answer_tx.send(inner.first_seen(key, record, window).await);
        });
        StoreFuture::pending(async move {
            answer_rx
                .await
                .unwrap_or_else(|_| Err(StoreError::new("the writer went away")))
        })
    }

    fn contains(&self, key: ReplayKey) -> StoreFuture {
        self.0.contains(key)
    }

    fn release(&self, key: ReplayKey, record: RecordId) -> StoreFuture {
        self.0.release(key, record)
    }
}

#[tokio::test]
async fn a_delivery_dropped_while_its_record_is_being_written_is_released() {
    let store = SlowWrites(MemoryReplayStore::with_clock(64, FixedClock::at_unix(NOW)));
    let verifier = build(providers::standard_webhooks().replay_protection(store));
    let guard = GuardLayer::new(verifier.clone());
    let headers = signed(&verifier, b"{}", "msg_dropped_while_recording");
    // The platform gives up while the store is still writing; the write lands after.
    let dropped =
        tokio::time::timeout(Duration::from_millis(30), deliver(&guard, &headers, b"{}")).await;
    assert!(dropped.is_err());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        deliver(&guard, &headers, b"{}").await.0,
        StatusCode::OK,
        "the retry is accepted"
    );
    assert_eq!(
        deliver(&guard, &headers, b"{}").await.1,
        Some(AuthErrorKind::Replayed)
    );
}
