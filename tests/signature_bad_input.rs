//! Bad input: every malformed or hostile request gets its own clear status, never a panic,
//! a hang, or a look at the body it should not take.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use std::time::Duration;

use bytes::Bytes;
use callguard::clock::FixedClock;
use callguard::signature::{MessagePart, SignatureVerifier};
use callguard::{AuthError, AuthErrorKind, GuardLayer, Secret};
use common::{FramedBody, SECRET, echo, sign_hex};
use http::header::{CONTENT_LENGTH, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt, service_fn};

const LIMIT: usize = 1024;
const NOW: i64 = 1_700_000_000;

fn layer() -> GuardLayer {
    let verifier = SignatureVerifier::builder()
        .secret("k1", Secret::from_utf8(SECRET).unwrap())
        .build()
        .unwrap();
    GuardLayer::new(verifier).body_limit(LIMIT)
}

fn timestamped_layer() -> GuardLayer {
    let verifier = SignatureVerifier::builder()
        .secret("k1", Secret::from_utf8(SECRET).unwrap())
        .timestamp_header("x-timestamp")
        .message([
            MessagePart::Timestamp,
            MessagePart::Literal("."),
            MessagePart::Body,
        ])
        .clock(FixedClock::at_unix(NOW))
        .tolerance(Duration::from_secs(300), Duration::from_secs(300))
        .build()
        .unwrap();
    GuardLayer::new(verifier)
}

async fn send<B>(layer: GuardLayer, request: Request<B>) -> Response<Full<Bytes>>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Debug,
{
    layer
        .layer(service_fn(echo))
        .oneshot(request)
        .await
        .unwrap()
}

fn kind(response: &Response<Full<Bytes>>) -> Option<AuthErrorKind> {
    response
        .extensions()
        .get::<AuthError>()
        .map(AuthError::kind)
}

async fn expect(request: Request<Full<Bytes>>, status: StatusCode, reason: AuthErrorKind) {
    let response = send(layer(), request).await;
    assert_eq!((response.status(), kind(&response)), (status, Some(reason)));
}

#[tokio::test]
async fn missing_header_is_401_with_a_challenge() {
    let response = send(
        layer(),
        Request::post("/tool")
            .body(Full::new(Bytes::from("{}")))
            .unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[WWW_AUTHENTICATE],
        "Signature realm=\"callguard\""
    );
    assert_eq!(kind(&response), Some(AuthErrorKind::MissingCredentials));
}

#[tokio::test]
async fn empty_header_is_401() {
    let request = Request::post("/tool")
        .header("x-signature", "")
        .body(Full::new(Bytes::from("{}")))
        .unwrap();
    expect(
        request,
        StatusCode::UNAUTHORIZED,
        AuthErrorKind::MalformedCredentials,
    )
    .await;
}

#[tokio::test]
async fn odd_length_signature_is_401() {
    let signature = sign_hex(SECRET, b"{}");
    let request = Request::post("/tool")
        .header("x-signature", &signature[1..])
        .body(Full::new(Bytes::from("{}")))
        .unwrap();
    expect(
        request,
        StatusCode::UNAUTHORIZED,
        AuthErrorKind::MalformedCredentials,
    )
    .await;
}

#[tokio::test]
async fn non_hex_signature_is_401() {
    let request = Request::post("/tool")
        .header("x-signature", "zz".repeat(32))
        .body(Full::new(Bytes::from("{}")))
        .unwrap();
    expect(
        request,
        StatusCode::UNAUTHORIZED,
        AuthErrorKind::MalformedCredentials,
    )
    .await;
}

#[tokio::test]
async fn wrong_length_signature_is_401() {
    for signature in [
        sign_hex(SECRET, b"{}")[..62].to_owned(),
        format!("{}00", sign_hex(SECRET, b"{}")),
    ] {
        let request = Request::post("/tool")
            .header("x-signature", signature)
            .body(Full::new(Bytes::from("{}")))
            .unwrap();
        expect(
            request,
            StatusCode::UNAUTHORIZED,
            AuthErrorKind::MalformedCredentials,
        )
        .await;
    }
}

#[tokio::test]
async fn duplicate_signature_headers_are_401_even_if_one_is_valid() {
    let good = sign_hex(SECRET, b"{}");
    let request = Request::post("/tool")
        .header("x-signature", &good)
        .header("X-Signature", &good)
        .body(Full::new(Bytes::from("{}")))
        .unwrap();
    expect(
        request,
        StatusCode::UNAUTHORIZED,
        AuthErrorKind::DuplicateHeader,
    )
    .await;
}

#[tokio::test]
async fn non_utf8_header_value_is_401() {
    let value = HeaderValue::from_bytes(b"\xff\xfe\x80abc").unwrap();
    let request = Request::post("/tool")
        .header("x-signature", value)
        .body(Full::new(Bytes::from("{}")))
        .unwrap();
    expect(
        request,
        StatusCode::UNAUTHORIZED,
        AuthErrorKind::MalformedCredentials,
    )
    .await;
}

fn timestamped(timestamp: &str, body: &'static str) -> Request<Full<Bytes>> {
    let signature = hex::encode(common::hmac_sha256(
        SECRET.as_bytes(),
        &[timestamp.as_bytes(), b".", body.as_bytes()],
    ));
    Request::post("/tool")
        .header("x-signature", signature)
        .header("x-timestamp", timestamp)
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

#[tokio::test]
async fn timestamped_signature_within_tolerance_is_accepted() {
    for ts in [NOW, NOW - 300, NOW + 300] {
        let response = send(timestamped_layer(), timestamped(&ts.to_string(), "{}")).await;
        assert_eq!(response.status(), StatusCode::OK, "ts={ts}");
    }
}

#[tokio::test]
async fn non_numeric_or_overflowing_timestamp_is_401() {
    for ts in [
        "abc",
        "",
        "-5",
        "+1700000000",
        "1700000000.5",
        "99999999999999999999",
        "9223372036854775808",
    ] {
        let response = send(timestamped_layer(), timestamped(ts, "{}")).await;
        assert_eq!(
            (response.status(), kind(&response)),
            (
                StatusCode::UNAUTHORIZED,
                Some(AuthErrorKind::MalformedTimestamp)
            ),
            "ts={ts:?}"
        );
    }
}

#[tokio::test]
async fn timestamp_outside_tolerance_is_401_in_past_and_future() {
    for ts in [NOW - 301, NOW + 301, 0, i64::MAX] {
        let response = send(timestamped_layer(), timestamped(&ts.to_string(), "{}")).await;
        assert_eq!(
            (response.status(), kind(&response)),
            (
                StatusCode::UNAUTHORIZED,
                Some(AuthErrorKind::TimestampOutOfTolerance)
            ),
            "ts={ts}"
        );
    }
}

#[tokio::test]
async fn missing_timestamp_is_401() {
    let mut request = timestamped(&NOW.to_string(), "{}");
    request.headers_mut().remove("x-timestamp");
    let response = send(timestamped_layer(), request).await;
    assert_eq!(kind(&response), Some(AuthErrorKind::MissingTimestamp));
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn oversized_content_length_is_413_before_reading_a_byte() {
    // A body that would fail if it were ever polled proves the guard never read it.
    let body = FramedBody::new([]).then_fail();
    let request = Request::post("/tool")
        .header("x-signature", sign_hex(SECRET, b""))
        .header(CONTENT_LENGTH, (LIMIT + 1).to_string())
        .body(body)
        .unwrap();
    let response = send(layer(), request).await;
    assert_eq!(
        (response.status(), kind(&response)),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            Some(AuthErrorKind::BodyTooLarge)
        )
    );
}

#[tokio::test]
async fn body_over_limit_without_content_length_is_413() {
    let body = vec![b'a'; LIMIT + 1];
    let request = Request::post("/tool")
        .header("x-signature", sign_hex(SECRET, &body))
        .body(FramedBody::chunked(&body, 100))
        .unwrap();
    let response = send(layer(), request).await;
    assert_eq!(
        (response.status(), kind(&response)),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            Some(AuthErrorKind::BodyTooLarge)
        )
    );
}

#[tokio::test]
async fn body_of_exactly_the_limit_is_accepted() {
    let body = vec![b'a'; LIMIT];
    let request = Request::post("/tool")
        .header("x-signature", sign_hex(SECRET, &body))
        .body(FramedBody::chunked(&body, 100))
        .unwrap();
    assert_eq!(send(layer(), request).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn body_larger_than_its_content_length_claims_is_413() {
    let body = vec![b'a'; LIMIT + 10];
    let request = Request::post("/tool")
        .header("x-signature", sign_hex(SECRET, &body))
        .header(CONTENT_LENGTH, "10")
        .body(FramedBody::chunked(&body, 256))
        .unwrap();
    let response = send(layer(), request).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn body_stream_error_midway_is_400() {
    let request = Request::post("/tool")
        .header("x-signature", sign_hex(SECRET, b"partial"))
        .body(FramedBody::chunked(b"partial", 3).then_fail())
        .unwrap();
    let response = send(layer(), request).await;
    assert_eq!(
        (response.status(), kind(&response)),
        (StatusCode::BAD_REQUEST, Some(AuthErrorKind::BodyReadFailed))
    );
}

#[tokio::test]
async fn rejection_bodies_do_not_echo_the_signature_or_payload() {
    let signature = sign_hex("another-secret-entirely-32-bytes", b"payload-marker");
    let request = Request::post("/tool")
        .header("x-signature", &signature)
        .body(Full::new(Bytes::from_static(b"payload-marker")))
        .unwrap();
    let response = send(layer(), request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let headers = format!("{:?}", response.headers());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&body);
    for leaked in [signature.as_str(), "payload-marker", SECRET] {
        assert!(
            !text.contains(leaked) && !headers.contains(leaked),
            "leaked {leaked}"
        );
    }
}

#[tokio::test]
async fn signature_from_another_secret_is_401_with_the_same_body_as_missing() {
    let wrong = Request::post("/tool")
        .header(
            "x-signature",
            sign_hex("another-secret-entirely-32-bytes", b"{}"),
        )
        .body(Full::new(Bytes::from("{}")))
        .unwrap();
    let missing = Request::post("/tool")
        .body(Full::new(Bytes::from("{}")))
        .unwrap();
    let wrong = send(layer(), wrong).await;
    let missing = send(layer(), missing).await;
    assert_eq!(wrong.status(), missing.status());
    assert_eq!(
        wrong.headers()[WWW_AUTHENTICATE],
        missing.headers()[WWW_AUTHENTICATE]
    );
    let wrong = wrong.into_body().collect().await.unwrap().to_bytes();
    let missing = missing.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(wrong, missing);
}

#[test]
fn empty_and_short_secrets_are_refused_when_building() {
    assert!(Secret::from_utf8("").is_err());
    assert!(Secret::from_utf8("short").is_err());
}
