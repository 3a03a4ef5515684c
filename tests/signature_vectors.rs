//! Known answers: the signature verifier, configured for each published scheme, agrees with
//! vectors taken from the providers' own documentation and test suites.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use std::time::Duration;

use bytes::Bytes;
use callguard::clock::FixedClock;
use callguard::signature::{
    Encoding, MessagePart, SignatureFormat, SignatureVerifier, SignatureVerifierBuilder,
};
use callguard::{AuthError, AuthErrorKind, GuardLayer, Secret, dangerous};
use common::{Seen, echo, vector};
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::Value;
use tower::{Layer, ServiceExt, service_fn};

fn secret_of(v: &Value) -> Secret {
    let text = v["secret"].as_str().unwrap();
    if text.starts_with("whsec_") && v["scheme"] == "standard-webhooks" {
        Secret::from_standard_webhooks(text).unwrap()
    } else {
        dangerous::secret_allowing_short(text.as_bytes()).unwrap()
    }
}

fn request_of(v: &Value, extra: &[(&str, String)]) -> Request<Full<Bytes>> {
    let mut builder = Request::post("/hook");
    for (name, value) in v["headers"].as_object().unwrap() {
        builder = builder.header(name.as_str(), value.as_str().unwrap());
    }
    for (name, value) in extra {
        builder = builder.header(*name, value.as_str());
    }
    builder
        .body(Full::new(Bytes::from(
            v["body"].as_str().unwrap().to_owned(),
        )))
        .unwrap()
}

async fn run(
    builder: SignatureVerifierBuilder,
    v: &Value,
    extra: &[(&str, String)],
) -> (StatusCode, Option<Seen>, Option<AuthErrorKind>) {
    let verifier = builder.secret("published", secret_of(v)).build().unwrap();
    let service = GuardLayer::new(verifier).layer(service_fn(echo));
    let response = service.oneshot(request_of(v, extra)).await.unwrap();
    (
        response.status(),
        response.extensions().get::<Seen>().cloned(),
        response
            .extensions()
            .get::<AuthError>()
            .map(AuthError::kind),
    )
}

fn clock_of(v: &Value) -> FixedClock {
    FixedClock::at_unix(v["now"].as_i64().unwrap())
}

#[tokio::test]
async fn bare_hex_primitive_vectors_verify_in_x_signature() {
    for id in ["prim-01", "prim-02", "prim-03"] {
        let v = vector(id);
        let expected = v["expected_hex"].as_str().unwrap().to_owned();
        let (status, seen, _) = run(
            SignatureVerifier::builder(),
            &v,
            &[("x-signature", expected.clone())],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{id}");
        assert_eq!(
            seen.unwrap().body,
            v["body"].as_str().unwrap().as_bytes(),
            "{id}: body changed"
        );

        let upper = expected.to_uppercase();
        let (status, _, _) = run(SignatureVerifier::builder(), &v, &[("x-signature", upper)]).await;
        assert_eq!(status, StatusCode::OK, "{id}: upper-case hex");

        let mut wrong = expected.into_bytes();
        wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
        let (status, _, kind) = run(
            SignatureVerifier::builder(),
            &v,
            &[("x-signature", String::from_utf8(wrong).unwrap())],
        )
        .await;
        assert_eq!(
            (status, kind),
            (
                StatusCode::UNAUTHORIZED,
                Some(AuthErrorKind::InvalidCredentials)
            ),
            "{id}"
        );
    }
}

fn github() -> SignatureVerifierBuilder {
    SignatureVerifier::builder()
        .header("x-hub-signature-256")
        .format(SignatureFormat::prefixed("sha256="))
}

#[tokio::test]
async fn github_docs_vector_verifies_with_sha256_prefix() {
    let v = vector("gh-01");
    let (status, seen, _) = run(github(), &v, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen.unwrap().body, "Hello, World!");
}

#[tokio::test]
async fn github_vector_without_its_prefix_is_rejected() {
    let v = vector("gh-01");
    let (status, _, kind) = run(
        SignatureVerifier::builder().header("x-hub-signature-256"),
        &v,
        &[],
    )
    .await;
    assert_eq!(
        (status, kind),
        (
            StatusCode::UNAUTHORIZED,
            Some(AuthErrorKind::MalformedCredentials)
        )
    );
}

#[tokio::test]
async fn shopify_sdk_vector_verifies_as_base64() {
    let v = vector("sh-01");
    let builder = SignatureVerifier::builder()
        .header("x-shopify-hmac-sha256")
        .encoding(Encoding::Base64);
    let (status, seen, _) = run(builder, &v, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen.unwrap().body, r#"{"foo": "bar"}"#);
}

fn slack(v: &Value) -> SignatureVerifierBuilder {
    SignatureVerifier::builder()
        .header("x-slack-signature")
        .format(SignatureFormat::prefixed("v0="))
        .timestamp_header("x-slack-request-timestamp")
        .message([
            MessagePart::Literal("v0:"),
            MessagePart::Timestamp,
            MessagePart::Literal(":"),
            MessagePart::Body,
        ])
        .clock(clock_of(v))
}

#[tokio::test]
async fn slack_sdk_vectors_verify_and_tampered_body_does_not() {
    let good = vector("sl-01");
    assert_eq!(run(slack(&good), &good, &[]).await.0, StatusCode::OK);
    let tampered = vector("sl-02");
    let (status, _, kind) = run(slack(&tampered), &tampered, &[]).await;
    assert_eq!(
        (status, kind),
        (
            StatusCode::UNAUTHORIZED,
            Some(AuthErrorKind::InvalidCredentials)
        )
    );
}

#[tokio::test]
async fn slack_vector_outside_tolerance_is_rejected_both_ways() {
    let v = vector("sl-01");
    let sent = v["now"].as_i64().unwrap();
    for now in [sent + 301, sent - 301] {
        let builder = slack(&v).clock(FixedClock::at_unix(now));
        let (status, _, kind) = run(builder, &v, &[]).await;
        assert_eq!(
            (status, kind),
            (
                StatusCode::UNAUTHORIZED,
                Some(AuthErrorKind::TimestampOutOfTolerance)
            ),
            "now={now}"
        );
    }
    let lenient = slack(&v)
        .clock(FixedClock::at_unix(sent + 301))
        .tolerance(Duration::from_secs(600), Duration::ZERO);
    assert_eq!(run(lenient, &v, &[]).await.0, StatusCode::OK);
}

fn standard_webhooks(v: &Value) -> SignatureVerifierBuilder {
    SignatureVerifier::builder()
        .header("webhook-signature")
        .encoding(Encoding::Base64)
        .format(SignatureFormat::list(' ', "v1", ','))
        .timestamp_header("webhook-timestamp")
        .message([
            MessagePart::Header("webhook-id"),
            MessagePart::Literal("."),
            MessagePart::Timestamp,
            MessagePart::Literal("."),
            MessagePart::Body,
        ])
        .clock(clock_of(v))
}

#[tokio::test]
async fn standard_webhooks_reference_vectors_verify_and_negative_does_not() {
    for id in ["sw-01", "sw-02"] {
        let v = vector(id);
        assert_eq!(
            run(standard_webhooks(&v), &v, &[]).await.0,
            StatusCode::OK,
            "{id}"
        );
    }
    let v = vector("sw-03");
    let (status, _, kind) = run(standard_webhooks(&v), &v, &[]).await;
    assert_eq!(
        (status, kind),
        (
            StatusCode::UNAUTHORIZED,
            Some(AuthErrorKind::InvalidCredentials)
        )
    );
}

#[tokio::test]
async fn standard_webhooks_list_passes_when_any_entry_matches() {
    let v = vector("sw-01");
    let good = v["headers"]["webhook-signature"].as_str().unwrap();
    let bad = vector("sw-03")["headers"]["webhook-signature"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut request_headers = v.clone();
    request_headers["headers"]["webhook-signature"] = Value::from(format!("{bad} {good}"));
    assert_eq!(
        run(standard_webhooks(&v), &request_headers, &[]).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn standard_webhooks_with_changed_id_is_rejected() {
    let v = vector("sw-01");
    let mut changed = v.clone();
    changed["headers"]["webhook-id"] = Value::from("msg_someone_else");
    let (status, _, kind) = run(standard_webhooks(&v), &changed, &[]).await;
    assert_eq!(
        (status, kind),
        (
            StatusCode::UNAUTHORIZED,
            Some(AuthErrorKind::InvalidCredentials)
        )
    );
}
