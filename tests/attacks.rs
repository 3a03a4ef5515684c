//! The known ways request verifiers have been broken, one test each. Every test here would
//! fail if the promise it names broke.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use callguard::clock::FixedClock;
use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier};
use callguard::signature::{SignatureVerifier, SigningRequest};
use callguard::{AuthError, AuthErrorKind, ConfigError, GuardLayer, Secret, providers};
use common::{FramedBody, SECRET, echo, sign_hex};
use http::{Request, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use tower::{Layer, ServiceExt, service_fn};

const NOW: i64 = 1_700_000_000;

async fn send<B>(guard: GuardLayer, request: Request<B>) -> (StatusCode, Option<AuthErrorKind>)
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Debug,
{
    let response = guard
        .layer(service_fn(echo))
        .oneshot(request)
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

fn x_signature() -> GuardLayer {
    GuardLayer::new(
        SignatureVerifier::builder()
            .secret("k", Secret::from_utf8(SECRET).unwrap())
            .build()
            .unwrap(),
    )
}

fn post(headers: &[(&str, &str)], body: &'static str) -> Request<Full<Bytes>> {
    let mut request = Request::post("/hook");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

fn jwt_guard() -> GuardLayer {
    let f: serde_json::Value =
        serde_json::from_str(include_str!("data/jwt/pyjwt_fixtures.json")).unwrap();
    let hs = Secret::from_utf8(f["hs256_secret"].as_str().unwrap()).unwrap();
    let config = JwtConfig::builder()
        .key("hs", JwtKey::hmac(JwtAlgorithm::HS256, &hs).unwrap())
        .key(
            "rs",
            JwtKey::public_pem(
                JwtAlgorithm::RS256,
                f["rsa_public_pem"].as_str().unwrap().as_bytes(),
            )
            .unwrap(),
        )
        .issuer(f["issuer"].as_str().unwrap())
        .audience(f["audience"].as_str().unwrap())
        .clock(FixedClock::at_unix(f["now"].as_i64().unwrap()))
        .build()
        .unwrap();
    GuardLayer::new(JwtVerifier::new(config))
}

async fn jwt_attack(name: &str) -> (StatusCode, Option<AuthErrorKind>) {
    let f: serde_json::Value =
        serde_json::from_str(include_str!("data/jwt/pyjwt_fixtures.json")).unwrap();
    let token = f["attacks"][name].as_str().unwrap();
    send(
        jwt_guard(),
        post(&[("authorization", &format!("Bearer {token}"))], ""),
    )
    .await
}

#[tokio::test]
async fn alg_none_is_rejected() {
    assert_eq!(jwt_attack("alg_none").await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_rejected() {
    assert_eq!(
        jwt_attack("hs256_keyed_with_rsa_public_pem").await,
        (
            StatusCode::UNAUTHORIZED,
            Some(AuthErrorKind::InvalidCredentials)
        )
    );
}

#[tokio::test]
async fn kid_with_path_or_sql_characters_is_just_an_unknown_kid() {
    for name in ["kid_path_traversal", "kid_sql"] {
        assert_eq!(
            jwt_attack(name).await,
            (
                StatusCode::UNAUTHORIZED,
                Some(AuthErrorKind::InvalidCredentials)
            ),
            "{name}"
        );
    }
}

#[tokio::test]
async fn signature_over_reserialised_json_is_rejected() {
    // Sendbird escapes slashes; a verifier that re-serialises the JSON checks other bytes.
    let raw = r#"{"url":"https:\/\/example.com\/a"}"#;
    let reserialised = r#"{"url":"https://example.com/a"}"#;
    let signature = sign_hex(SECRET, raw.as_bytes());
    assert_eq!(
        send(x_signature(), post(&[("x-signature", &signature)], raw))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        send(
            x_signature(),
            post(&[("x-signature", &signature)], reserialised)
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn hex_is_compared_as_bytes_not_as_text() {
    let signature = sign_hex(SECRET, b"{}");
    let mixed: String = signature
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    for variant in [signature.to_uppercase(), mixed] {
        assert_eq!(
            send(x_signature(), post(&[("x-signature", &variant)], "{}"))
                .await
                .0,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn trailing_whitespace_or_a_forged_second_entry_does_not_pass() {
    let signature = sign_hex(SECRET, b"{}");
    let padded = format!("{signature}\t");
    assert_eq!(
        send(x_signature(), post(&[("x-signature", &padded)], "{}"))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    let stripe = providers::stripe()
        .secret("k", Secret::from_utf8(SECRET).unwrap())
        .clock(FixedClock::at_unix(NOW))
        .build()
        .unwrap();
    let forged = format!("t={NOW},v1={},v1={}", "00".repeat(32), "11".repeat(32));
    let (status, kind) = send(
        GuardLayer::new(stripe),
        post(&[("stripe-signature", &forged)], "{}"),
    )
    .await;
    assert_eq!(
        (status, kind),
        (
            StatusCode::UNAUTHORIZED,
            Some(AuthErrorKind::InvalidCredentials)
        )
    );
}

#[tokio::test]
async fn duplicate_and_mixed_case_signature_headers_are_rejected() {
    let signature = sign_hex(SECRET, b"{}");
    let request = post(
        &[
            ("X-Signature", &signature),
            ("x-SIGNATURE", &"00".repeat(32)),
        ],
        "{}",
    );
    assert_eq!(
        send(x_signature(), request).await,
        (
            StatusCode::UNAUTHORIZED,
            Some(AuthErrorKind::DuplicateHeader)
        )
    );
}

#[tokio::test]
async fn timestamp_in_the_future_is_rejected() {
    let slack = providers::slack()
        .secret("k", Secret::from_utf8(SECRET).unwrap())
        .clock(FixedClock::at_unix(NOW))
        .build()
        .unwrap();
    let headers = slack
        .sign(&SigningRequest::new(b"a=b").timestamp(NOW + 3600))
        .unwrap();
    let mut request = Request::post("/hook");
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    let (status, kind) = send(
        GuardLayer::new(slack),
        request.body(Full::new(Bytes::from_static(b"a=b"))).unwrap(),
    )
    .await;
    assert_eq!(
        (status, kind),
        (
            StatusCode::UNAUTHORIZED,
            Some(AuthErrorKind::TimestampOutOfTolerance)
        )
    );
}

#[tokio::test]
async fn replayed_delivery_is_rejected() {
    let verifier = providers::standard_webhooks()
        .secret(
            "k",
            Secret::from_standard_webhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
        )
        .clock(FixedClock::at_unix(NOW))
        .build()
        .unwrap();
    let headers = verifier
        .sign(&SigningRequest::new(b"{}").timestamp(NOW).id("msg_1"))
        .unwrap();
    let guard = GuardLayer::new(verifier);
    for expected in [StatusCode::OK, StatusCode::UNAUTHORIZED] {
        let mut request = Request::post("/hook");
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let (status, _) = send(
            guard.clone(),
            request.body(Full::new(Bytes::from_static(b"{}"))).unwrap(),
        )
        .await;
        assert_eq!(status, expected);
    }
}

#[test]
fn empty_secret_is_refused_at_construction() {
    assert_eq!(Secret::from_utf8("").unwrap_err(), ConfigError::EmptySecret);
    assert_eq!(
        SignatureVerifier::builder().build().unwrap_err(),
        ConfigError::NoSecrets {
            verifier: "signature".to_owned()
        }
    );
}

#[tokio::test]
async fn body_larger_than_its_lying_content_length_is_413() {
    let body = vec![b'a'; 4096];
    let request = Request::post("/hook")
        .header("x-signature", sign_hex(SECRET, &body))
        .header("content-length", "10")
        .body(FramedBody::chunked(&body, 512))
        .unwrap();
    assert_eq!(
        send(x_signature().body_limit(1024), request).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

/// A body that sends one frame and then never another, and reports when it is dropped.
struct EndlessBody {
    sent: bool,
    dropped: Arc<AtomicBool>,
}

impl Body for EndlessBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.sent {
            return Poll::Pending;
        }
        self.sent = true;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"{\"start\":")))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

impl Drop for EndlessBody {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn body_that_never_ends_is_408_and_leaves_nothing_behind() {
    let dropped = Arc::new(AtomicBool::new(false));
    let body = EndlessBody {
        sent: false,
        dropped: Arc::clone(&dropped),
    };
    let request = Request::post("/hook")
        .header("x-signature", sign_hex(SECRET, b"{}"))
        .body(body)
        .unwrap();
    let guard = x_signature().body_timeout(Duration::from_secs(5));
    let started = tokio::time::Instant::now();
    let (status, kind) = send(guard, request).await;
    assert_eq!(
        (status, kind),
        (
            StatusCode::REQUEST_TIMEOUT,
            Some(AuthErrorKind::BodyTimeout)
        )
    );
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "gave up no earlier than the configured timeout (virtual time)"
    );
    assert!(
        dropped.load(Ordering::SeqCst),
        "the stalled body was dropped with the request"
    );
    assert_eq!(
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
        0,
        "no task left running"
    );
}
