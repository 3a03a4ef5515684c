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
    MemoryReplayStore, ReplayKey, ReplayPolicy, ReplayStore, StoreError, StoreFuture,
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
        .sign(&SigningRequest {
            url: None,
            body,
            timestamp: NOW,
            id,
        })
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
    fn first_seen(&self, _key: ReplayKey, _window: Duration) -> StoreFuture {
        self.0.fetch_add(1, Ordering::Relaxed);
        StoreFuture::pending(async { Err(StoreError("connection refused".into())) })
    }

    fn contains(&self, _key: ReplayKey) -> StoreFuture {
        self.0.fetch_add(1, Ordering::Relaxed);
        StoreFuture::pending(async { Err(StoreError("connection refused".into())) })
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
        JwtVerifier::new(config.clone()).with_revocations(store, ReplayPolicy::FailClosed),
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
