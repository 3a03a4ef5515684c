//! Every provider preset against every published vector for its scheme, negatives included,
//! with the vector's `now` as the clock.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use bytes::Bytes;
use callguard::clock::FixedClock;
use callguard::signature::SignatureVerifierBuilder;
use callguard::{
    AuthError, AuthErrorKind, Authenticator, GuardLayer, Secret, dangerous, providers,
};
use common::{Seen, echo, vectors};
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::Value;
use tower::{Layer, ServiceExt, service_fn};

fn secret_of(v: &Value) -> Secret {
    let text = v["secret"].as_str().unwrap();
    if v["scheme"] == "standard-webhooks" {
        Secret::from_standard_webhooks(text).unwrap()
    } else {
        dangerous::secret_allowing_short(text.as_bytes()).unwrap()
    }
}

/// `https://host[:port]` and `/path?query` of a vector's URL.
fn split_url(url: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let at = rest.find('/').unwrap_or(rest.len());
    (format!("{scheme}://{}", &rest[..at]), rest[at..].to_owned())
}

/// The body a vector sends: its form parameters when it has them, otherwise its body.
fn body_of(v: &Value) -> String {
    match v["params"].as_array() {
        Some(params) if !params.is_empty() => {
            let mut form = form_urlencoded::Serializer::new(String::new());
            for pair in params {
                form.append_pair(pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
            }
            form.finish()
        }
        _ => v["body"].as_str().unwrap().to_owned(),
    }
}

async fn run(
    authenticator: Authenticator,
    v: &Value,
    path: &str,
) -> (StatusCode, Option<Seen>, Option<AuthErrorKind>) {
    let mut request = Request::post(path);
    for (name, value) in v["headers"].as_object().unwrap() {
        request = request.header(name.as_str(), value.as_str().unwrap());
    }
    let body = body_of(v);
    let response = GuardLayer::new(authenticator)
        .layer(service_fn(echo))
        .oneshot(request.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    (
        response.status(),
        response.extensions().get::<Seen>().cloned(),
        response
            .extensions()
            .get::<AuthError>()
            .map(AuthError::kind),
    )
}

fn with_secret_and_clock(builder: SignatureVerifierBuilder, v: &Value) -> Authenticator {
    let builder = builder.secret("published", secret_of(v));
    let builder = match v["now"].as_i64() {
        Some(now) => builder.clock(FixedClock::at_unix(now)),
        None => builder,
    };
    builder.build().unwrap().into()
}

fn preset_for(v: &Value) -> Option<(Authenticator, String)> {
    let scheme = v["scheme"].as_str().unwrap();
    let plain = |builder| Some((with_secret_and_clock(builder, v), "/hook".to_owned()));
    match scheme {
        "github" => plain(providers::github()),
        "slack" => plain(providers::slack()),
        "shopify" => plain(providers::shopify()),
        "standard-webhooks" => plain(providers::standard_webhooks()),
        "twilio" | "signalwire-scheme-a" | "signalwire-scheme-b" => {
            let (base, path) = split_url(v["url"].as_str().unwrap());
            let signalwire = providers::signalwire()
                .secret("published", secret_of(v))
                .public_base_url(base)
                .build()
                .unwrap();
            Some((signalwire, path))
        }
        _ => None,
    }
}

#[tokio::test]
async fn every_preset_agrees_with_every_published_vector_for_its_scheme() {
    let mut checked = Vec::new();
    for v in vectors() {
        let Some((authenticator, path)) = preset_for(&v) else {
            continue;
        };
        let id = v["id"].as_str().unwrap().to_owned();
        let (status, seen, kind) = run(authenticator, &v, &path).await;
        if v["expected_valid"].as_bool().unwrap() {
            assert_eq!(status, StatusCode::OK, "{id}: {kind:?}");
            assert_eq!(
                seen.unwrap().body,
                body_of(&v).as_bytes(),
                "{id}: body changed"
            );
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{id}");
        }
        checked.push(id);
    }
    let expected = [
        "sw-01", "sw-02", "sw-03", "gh-01", "sl-01", "sl-02", "sh-01", "tw-01", "tw-02", "tw-03",
        "tw-04", "tw-05", "tw-06", "tw-07", "swa-01", "swa-02", "swa-03", "swa-05",
    ];
    assert_eq!(checked, expected);
}

#[tokio::test]
async fn svix_header_names_are_accepted_for_standard_webhooks() {
    let mut v = common::vector("sw-01");
    let headers = v["headers"].as_object().unwrap().clone();
    let renamed: serde_json::Map<String, Value> = headers
        .into_iter()
        .map(|(name, value)| (name.replace("webhook-", "svix-"), value))
        .collect();
    v["headers"] = Value::Object(renamed);
    let (status, _, _) = run(
        with_secret_and_clock(providers::standard_webhooks(), &v),
        &v,
        "/hook",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn standard_webhooks_with_both_header_families_is_refused() {
    let mut v = common::vector("sw-01");
    let signature = v["headers"]["webhook-signature"].clone();
    v["headers"]["svix-signature"] = signature;
    let (status, _, kind) = run(
        with_secret_and_clock(providers::standard_webhooks(), &v),
        &v,
        "/hook",
    )
    .await;
    assert_eq!(
        (status, kind),
        (
            StatusCode::UNAUTHORIZED,
            Some(AuthErrorKind::DuplicateHeader)
        )
    );
}

#[tokio::test]
async fn twilio_vector_with_a_changed_parameter_is_rejected() {
    let mut v = common::vector("tw-01");
    v["params"][1][1] = Value::from("9999");
    let (base, path) = split_url(v["url"].as_str().unwrap());
    let signalwire = providers::signalwire()
        .secret("k", secret_of(&v))
        .public_base_url(base)
        .build()
        .unwrap();
    assert_eq!(run(signalwire, &v, &path).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn twilio_json_body_must_match_its_body_sha256() {
    let mut v = common::vector("tw-06");
    v["body"] = Value::from("{\"property\": \"changed\", \"boolean\": true}");
    let (base, path) = split_url(v["url"].as_str().unwrap());
    let signalwire = providers::signalwire()
        .secret("k", secret_of(&v))
        .public_base_url(base)
        .build()
        .unwrap();
    assert_eq!(run(signalwire, &v, &path).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn signalwire_prefers_the_sha256_header_when_both_are_sent() {
    let v = common::vector("swa-01");
    let (base, path) = split_url(v["url"].as_str().unwrap());
    let key = v["secret"].as_str().unwrap();
    let url = v["url"].as_str().unwrap();
    let body = v["body"].as_str().unwrap();
    let sha256 = hex::encode(common::hmac_sha256(
        key.as_bytes(),
        &[url.as_bytes(), body.as_bytes()],
    ));
    let build = || {
        providers::signalwire()
            .secret("k", secret_of(&v))
            .public_base_url(base.clone())
            .build()
            .unwrap()
    };

    let mut both = v.clone();
    both["headers"]["X-SignalWire-Sha256-Signature"] = Value::from(sha256.clone());
    assert_eq!(run(build(), &both, &path).await.0, StatusCode::OK);

    // A valid SHA-1 signature does not rescue a wrong SHA-256 one: the stronger header decides.
    let mut wrong_sha256 = v.clone();
    wrong_sha256["headers"]["X-SignalWire-Sha256-Signature"] = Value::from("00".repeat(32));
    let (status, _, kind) = run(build(), &wrong_sha256, &path).await;
    assert_eq!(
        (status, kind),
        (
            StatusCode::UNAUTHORIZED,
            Some(AuthErrorKind::InvalidCredentials)
        )
    );
}

#[tokio::test]
async fn signalwire_url_is_covered_behind_forwarded_headers_only_when_trusted() {
    let v = common::vector("swa-01");
    let (_, path) = split_url(v["url"].as_str().unwrap());
    let mut forwarded = v.clone();
    forwarded["headers"]["X-Forwarded-Proto"] = Value::from("https");
    forwarded["headers"]["X-Forwarded-Host"] = Value::from("example.ngrok.io");
    let trusting = providers::signalwire()
        .secret("k", secret_of(&v))
        .trust_forwarded_headers()
        .build()
        .unwrap();
    assert_eq!(run(trusting, &forwarded, &path).await.0, StatusCode::OK);
    let mut spoofed = forwarded.clone();
    spoofed["headers"]["X-Forwarded-Host"] = Value::from("attacker.example");
    let trusting = providers::signalwire()
        .secret("k", secret_of(&v))
        .trust_forwarded_headers()
        .build()
        .unwrap();
    assert_eq!(
        run(trusting, &spoofed, &path).await.0,
        StatusCode::UNAUTHORIZED
    );
    let pinned = providers::signalwire()
        .secret("k", secret_of(&v))
        .public_base_url("https://api.example.com")
        .trust_forwarded_headers()
        .build()
        .unwrap();
    assert_eq!(
        run(pinned, &forwarded, &path).await.0,
        StatusCode::UNAUTHORIZED,
        "the base URL takes precedence"
    );
}

#[test]
fn signalwire_without_a_url_source_is_refused() {
    let err = providers::signalwire()
        .secret("k", Secret::from_utf8("a-signing-key-0123456789").unwrap())
        .build()
        .unwrap_err();
    assert!(matches!(err, callguard::ConfigError::InvalidMessage { .. }));
}
