//! Signing with a preset produces what the platform sends: the published Standard Webhooks
//! vector byte for byte, and for every preset a signature its own verifier accepts.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use bytes::Bytes;
use callguard::clock::FixedClock;
use callguard::signature::{SignatureVerifier, SignatureVerifierBuilder, SigningRequest};
use callguard::{GuardLayer, Secret, providers};
use common::echo;
use http::{Request, StatusCode};
use http_body_util::Full;
use tower::{Layer, ServiceExt, service_fn};

const NOW: i64 = 1_700_000_000;
const URL: &str = "https://hooks.example.com/webhooks/x?a=1";

#[test]
fn standard_webhooks_signing_reproduces_the_published_vector() {
    let v = common::vector("sw-01");
    let verifier = providers::standard_webhooks()
        .secret(
            "k",
            Secret::from_standard_webhooks(v["secret"].as_str().unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    let headers = verifier
        .sign(
            &SigningRequest::new(v["body"].as_str().unwrap().as_bytes())
                .timestamp(v["now"].as_i64().unwrap())
                .id(v["headers"]["webhook-id"].as_str().unwrap()),
        )
        .unwrap();
    assert_eq!(
        headers[0],
        (
            "webhook-signature".to_owned(),
            v["headers"]["webhook-signature"]
                .as_str()
                .unwrap()
                .to_owned()
        )
    );
}

fn presets() -> Vec<(&'static str, SignatureVerifierBuilder)> {
    vec![
        ("x-signature", SignatureVerifier::builder()),
        ("github", providers::github()),
        ("stripe", providers::stripe()),
        ("slack", providers::slack()),
        ("shopify", providers::shopify()),
        ("standard", providers::standard_webhooks()),
        ("sendbird", providers::sendbird()),
        (
            "signalwire-sha256",
            providers::signalwire_sha256().public_base_url("https://hooks.example.com"),
        ),
        (
            "signalwire-sha1",
            providers::signalwire_sha1().public_base_url("https://hooks.example.com"),
        ),
        (
            "twilio",
            providers::twilio_compatible().public_base_url("https://hooks.example.com"),
        ),
    ]
}

#[tokio::test]
async fn every_preset_accepts_what_it_signs_and_rejects_a_changed_body() {
    for (name, builder) in presets() {
        let verifier = builder
            .secret(
                "k",
                Secret::from_utf8("whsec_c2lnbmluZy1zZWNyZXQtMDEyMzQ1Njc4OQ").unwrap(),
            )
            .clock(FixedClock::at_unix(NOW))
            .build()
            .unwrap();
        let body = b"CallSid=CA1&Digits=1234&From=%2B1415";
        let headers = verifier
            .sign(
                &SigningRequest::new(body)
                    .url(URL)
                    .timestamp(NOW)
                    .id("msg_1"),
            )
            .unwrap();
        for (tampered, expected) in [(false, StatusCode::OK), (true, StatusCode::UNAUTHORIZED)] {
            let mut request = Request::post("/webhooks/x?a=1");
            for (header, value) in &headers {
                request = request.header(header, value);
            }
            let sent: &[u8] = if tampered {
                b"CallSid=CA1&Digits=9999&From=%2B1415"
            } else {
                body
            };
            let response = GuardLayer::new(verifier.clone())
                .layer(service_fn(echo))
                .oneshot(
                    request
                        .body(Full::new(Bytes::copy_from_slice(sent)))
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(response.status(), expected, "{name}, tampered: {tampered}");
        }
    }
}

#[test]
fn signing_a_url_scheme_without_a_url_is_a_clear_error() {
    let verifier = providers::signalwire_sha1()
        .public_base_url("https://hooks.example.com")
        .secret("k", Secret::from_utf8("a-signing-key-0123456789").unwrap())
        .build()
        .unwrap();
    let err = verifier.sign(&SigningRequest::new(b"")).unwrap_err();
    assert!(err.to_string().contains("URL"), "{err}");
}
