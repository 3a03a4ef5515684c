//! Signature headers, timestamps, ids and bodies from the fuzzer, through every signature
//! scheme: list formats (Stripe, Standard Webhooks), prefixes (GitHub, Slack), base64
//! (Shopify), the Twilio form message, and the generic `x-signature`.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::sync::LazyLock;

use bytes::Bytes;
use callguard::{Authenticator, GuardLayer, Secret, providers, signature::SignatureVerifier};
use http::{HeaderValue, Request};
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;

static GUARDS: LazyLock<Vec<(&'static str, GuardLayer)>> = LazyLock::new(|| {
    let secret = || Secret::from_utf8("fuzzing-secret-0123456789abcdef").expect("a valid secret");
    let build = |builder: callguard::signature::SignatureVerifierBuilder| -> Authenticator {
        builder
            .secret("k", secret())
            .build()
            .expect("a valid configuration")
            .into()
    };
    let signalwire = providers::signalwire()
        .secret("k", secret())
        .public_base_url("https://hooks.example.com")
        .build()
        .expect("a valid configuration");
    vec![
        (
            "x-signature",
            GuardLayer::new(build(SignatureVerifier::builder())),
        ),
        (
            "stripe-signature",
            GuardLayer::new(build(providers::stripe())),
        ),
        (
            "webhook-signature",
            GuardLayer::new(build(providers::standard_webhooks())),
        ),
        (
            "x-hub-signature-256",
            GuardLayer::new(build(providers::github())),
        ),
        (
            "x-slack-signature",
            GuardLayer::new(build(providers::slack())),
        ),
        (
            "x-shopify-hmac-sha256",
            GuardLayer::new(build(providers::shopify())),
        ),
        ("x-signalwire-signature", GuardLayer::new(signalwire)),
    ]
});

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (header, guard) = &GUARDS[usize::from(selector) % GUARDS.len()];
    let [signature, timestamp, id, path, body] = common::pieces(rest, 5)[..] else {
        return;
    };
    let mut request = Request::post("/hook");
    for (name, value) in [
        (*header, signature),
        ("webhook-timestamp", timestamp),
        ("x-slack-request-timestamp", timestamp),
        ("webhook-id", id),
        ("svix-id", id),
    ] {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            request = request.header(name, value);
        }
    }
    if let Ok(path) = std::str::from_utf8(path) {
        if let Ok(uri) = format!("/hook{path}").parse::<http::Uri>() {
            request = request.uri(uri);
        }
    }
    if let Ok(request) = request.body(Full::new(Bytes::copy_from_slice(body))) {
        common::run(guard, request);
    }
});
