//! Regression tests for the defects an outside review demonstrated: one test (or a few) per
//! numbered finding, each failing on the code before its fix. SECURITY.md's changelog names
//! them.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use callguard::clock::FixedClock;
use callguard::jwt::{
    IssueError, JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier, TokenIssuer, TokenRequest,
};
use callguard::replay::{MemoryReplayStore, ReplayPolicy};
use callguard::signature::{SignatureVerifier, SigningRequest};
use callguard::{
    AuthError, AuthErrorKind, Authenticator, ConfigError, GuardLayer, Scopes, Secret, bearer,
    providers,
};
use common::{FramedBody, echo, hmac_sha256};
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use tower::{Layer, ServiceExt, service_fn};

const NOW: i64 = 1_700_000_000;
const JWT_SECRET: &str = "a-jwt-signing-key-of-32-bytes!!!";

async fn answer<B>(guard: &GuardLayer, request: Request<B>) -> (StatusCode, Option<AuthErrorKind>)
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Debug,
{
    let response = guard
        .layer(service_fn(echo))
        .oneshot(request)
        .await
        .unwrap();
    let kind = response
        .extensions()
        .get::<AuthError>()
        .map(AuthError::kind);
    (response.status(), kind)
}

fn post(headers: &[(String, String)], body: &'static [u8]) -> Request<Full<Bytes>> {
    let mut request = Request::post("/hook");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.body(Full::new(Bytes::from_static(body))).unwrap()
}

// 1. A lying Content-Length must not size an allocation, whatever the limit.
#[tokio::test]
async fn a_huge_declared_length_with_no_limit_does_not_reserve_it() {
    let verifier = SignatureVerifier::builder()
        .secret("k", Secret::from_utf8(common::SECRET).unwrap())
        .build()
        .unwrap();
    let guard = GuardLayer::new(verifier).body_limit(usize::MAX);
    let request = Request::post("/hook")
        .header("x-signature", "00".repeat(32))
        .header("content-length", "68719476736")
        .body(FramedBody::new([
            Bytes::from_static(b"first"),
            Bytes::from_static(b"second"),
        ]))
        .unwrap();
    assert_eq!(
        answer(&guard, request).await,
        (
            StatusCode::UNAUTHORIZED,
            Some(AuthErrorKind::InvalidCredentials)
        )
    );
}

// 2. Every claim that carries authority or that the verifier reads is the issuer's own.
#[test]
fn an_extra_claim_may_not_set_any_authority_carrying_claim() {
    let config = JwtConfig::builder()
        .key(
            "k1",
            JwtKey::hmac(JwtAlgorithm::HS256, &Secret::from_utf8(JWT_SECRET).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    let issuer = TokenIssuer::new(config);
    for name in [
        "iss",
        "sub",
        "aud",
        "exp",
        "nbf",
        "iat",
        "jti",
        "scope",
        "scopes",
        "scp",
        "client_id",
        "act",
        "cnf",
    ] {
        let request = TokenRequest::new(
            "agent",
            Scopes::from_iter(["tools:call"]),
            Duration::from_secs(60),
        )
        .claim(name, json!(["admin"]));
        assert_eq!(
            issuer.issue(request).unwrap_err(),
            IssueError::ReservedClaim(name.to_owned()),
            "claim {name}"
        );
    }
}

// 3. A delivery is remembered for as long as its timestamp can still verify.
fn replay_case(
    builder: callguard::signature::SignatureVerifierBuilder,
    stamped: i64,
    first: i64,
    again: i64,
) -> Vec<(StatusCode, Option<AuthErrorKind>)> {
    let clock = FixedClock::at_unix(first);
    let verifier = builder
        .secret(
            "k",
            Secret::from_utf8("whsec_c2lnbmluZy1zZWNyZXQtMDEyMzQ1Njc4OQ").unwrap(),
        )
        .clock(clock.clone())
        .build()
        .unwrap();
    let headers = verifier
        .sign(&SigningRequest::new(b"{}").timestamp(stamped).id("msg_1"))
        .unwrap();
    let guard = GuardLayer::new(verifier);
    common::runtime().block_on(async {
        let first_answer = answer(&guard, post(&headers, b"{}")).await;
        clock.advance(Duration::from_secs(u64::try_from(again - first).unwrap()));
        let second_answer = answer(&guard, post(&headers, b"{}")).await;
        vec![first_answer, second_answer]
    })
}

const ACCEPTED: (StatusCode, Option<AuthErrorKind>) = (StatusCode::OK, None);
const REPLAYED: (StatusCode, Option<AuthErrorKind>) =
    (StatusCode::UNAUTHORIZED, Some(AuthErrorKind::Replayed));

#[test]
fn stripe_remembers_a_future_stamped_delivery_until_it_can_no_longer_verify() {
    let ts = NOW + 1000;
    assert_eq!(
        replay_case(providers::stripe(), ts, NOW, NOW + 700),
        [ACCEPTED, REPLAYED]
    );
    assert_eq!(
        replay_case(providers::stripe(), ts, NOW, ts + 300),
        [ACCEPTED, REPLAYED],
        "the last second the timestamp verifies"
    );
}

#[test]
fn slack_with_a_long_future_tolerance_remembers_the_whole_span() {
    let slack = || providers::slack().tolerance(Duration::from_secs(60), Duration::from_secs(600));
    assert_eq!(
        replay_case(slack(), NOW + 70, NOW, NOW + 130),
        [ACCEPTED, REPLAYED]
    );
}

#[test]
fn a_delivery_first_seen_at_the_early_edge_is_refused_at_the_late_edge() {
    let ts = NOW + 300;
    assert_eq!(
        replay_case(providers::slack(), ts, NOW, ts + 300),
        [ACCEPTED, REPLAYED]
    );
    assert_eq!(
        replay_case(providers::standard_webhooks(), ts, NOW, ts + 300),
        [ACCEPTED, REPLAYED]
    );
}

// 4. A preferred signature header that is present decides, malformed or not.
#[tokio::test]
async fn a_malformed_preferred_signature_does_not_fall_through_to_sha1() {
    let url = "https://hooks.example.com/signalwire";
    let secret = || Secret::from_utf8("signalwire-signing-key-0123").unwrap();
    let sha1 = providers::signalwire_sha1()
        .secret("k", secret())
        .public_base_url("https://hooks.example.com")
        .build()
        .unwrap();
    let mut headers = sha1.sign(&SigningRequest::new(b"{}").url(url)).unwrap();
    let guard = GuardLayer::new(
        providers::signalwire()
            .secret("k", secret())
            .public_base_url("https://hooks.example.com")
            .build()
            .unwrap(),
    );
    let request = |headers: &[(String, String)]| {
        let mut request = Request::post("/signalwire");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.body(Full::new(Bytes::from_static(b"{}"))).unwrap()
    };
    assert_eq!(answer(&guard, request(&headers)).await, ACCEPTED);
    headers.push(("x-signalwire-sha256-signature".into(), "garbage".into()));
    assert_eq!(
        answer(&guard, request(&headers)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

// 5. The Twilio-compatible message bounds its work: too many parameters is a 413.
#[tokio::test]
async fn a_form_body_with_too_many_parameters_is_refused_before_any_sort() {
    let guard = GuardLayer::new(
        providers::twilio_compatible()
            .secret(
                "k",
                Secret::from_utf8("twilio-auth-token-0123456789").unwrap(),
            )
            .public_base_url("https://hooks.example.com")
            .build()
            .unwrap(),
    );
    let body: &'static [u8] = "a&".repeat(512 * 1024).leak().as_bytes();
    let headers = [(
        "x-twilio-signature".to_owned(),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned(),
    )];
    assert_eq!(
        answer(&guard, post(&headers, body)).await,
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            Some(AuthErrorKind::TooManyFormParameters)
        )
    );
}

fn hs256(header: &Value, claims: &Value) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let tag = hmac_sha256(JWT_SECRET.as_bytes(), &[signing_input.as_bytes()]);
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag))
}

fn jwt_config() -> callguard::jwt::JwtConfigBuilder {
    JwtConfig::builder()
        .key(
            "k1",
            JwtKey::hmac(JwtAlgorithm::HS256, &Secret::from_utf8(JWT_SECRET).unwrap()).unwrap(),
        )
        .clock(FixedClock::at_unix(NOW))
}

fn claims(extra: Value) -> Value {
    let mut claims = json!({"sub": "agent", "exp": NOW + 60});
    if let (Some(claims), Value::Object(extra)) = (claims.as_object_mut(), extra) {
        claims.extend(extra);
    }
    claims
}

// 6. The `typ` check slices no attacker-controlled text at a byte offset.
#[test]
fn a_typ_with_a_multibyte_character_at_the_media_type_boundary_is_refused() {
    let guard = JwtVerifier::new(jwt_config().typ("at+jwt").build().unwrap()).layer();
    for typ in ["aaaaaaaaaaaé", "aaaaaaaaaaaéat+jwt", "é", "application/é"] {
        let token = hs256(&json!({"alg": "HS256", "typ": typ}), &claims(json!({})));
        assert_eq!(
            common::present_bearer(&guard, &token).0,
            StatusCode::UNAUTHORIZED,
            "{typ}"
        );
    }
    let good = hs256(
        &json!({"alg": "HS256", "typ": "application/at+jwt"}),
        &claims(json!({})),
    );
    assert_eq!(common::present_bearer(&guard, &good).0, StatusCode::OK);
}

// 7. A `jti` that is not a string is an invalid token; with a denylist, one is required.
#[test]
fn a_non_string_jti_is_refused_and_revocation_cannot_be_sidestepped() {
    let denylist = || {
        callguard::jwt::Revocations::new(MemoryReplayStore::with_clock(
            64,
            FixedClock::at_unix(NOW),
        ))
    };
    let verifier = JwtVerifier::new(jwt_config().build().unwrap());
    let guard = verifier.clone().revocations(denylist()).layer();
    let numeric = hs256(&json!({"alg": "HS256"}), &claims(json!({"jti": 42})));
    assert_eq!(
        common::present_bearer(&guard, &numeric).0,
        StatusCode::UNAUTHORIZED
    );
    let without = hs256(&json!({"alg": "HS256"}), &claims(json!({})));
    assert_eq!(
        common::present_bearer(&guard, &without).0,
        StatusCode::UNAUTHORIZED,
        "with a denylist, a token without jti cannot be revoked"
    );
    let opted_out = verifier
        .clone()
        .revocations(denylist().allow_tokens_without_jti())
        .layer();
    assert_eq!(
        common::present_bearer(&opted_out, &without).0,
        StatusCode::OK
    );
    // The deprecated setters configure the same denylist for one release.
    #[allow(deprecated)]
    let deprecated = verifier
        .with_revocations(
            MemoryReplayStore::with_clock(64, FixedClock::at_unix(NOW)),
            ReplayPolicy::FailClosed,
        )
        .allow_tokens_without_jti()
        .layer();
    assert_eq!(
        common::present_bearer(&deprecated, &without).0,
        StatusCode::OK
    );
    let plain = JwtVerifier::new(jwt_config().build().unwrap()).layer();
    assert_eq!(
        common::present_bearer(&plain, &numeric).0,
        StatusCode::UNAUTHORIZED,
        "RFC 7519 §4.1.7: jti is a string, with or without a denylist"
    );
}

// 8. callguard understands no critical header parameter: any `crit` is refused.
#[test]
fn a_token_with_crit_is_refused() {
    let guard = JwtVerifier::new(jwt_config().build().unwrap()).layer();
    for crit in [json!(["exp"]), json!(["b64"]), json!([])] {
        let token = hs256(
            &json!({"alg": "HS256", "crit": crit, "exp": 1}),
            &claims(json!({})),
        );
        assert_eq!(
            common::present_bearer(&guard, &token).0,
            StatusCode::UNAUTHORIZED,
            "{crit}"
        );
    }
}

// 9. Compositions that would drop a method, or hold none, are refused when built.
#[test]
fn first_of_with_a_token_method_and_an_empty_any_of_are_configuration_errors() {
    let signature = SignatureVerifier::builder()
        .secret("k", Secret::from_utf8(common::SECRET).unwrap())
        .build()
        .unwrap();
    let tokens = bearer::BearerTokens::builder()
        .token(
            "agent",
            Secret::from_utf8("tok_0123456789abcdef").unwrap(),
            Scopes::empty(),
        )
        .build()
        .unwrap();
    assert!(matches!(
        Authenticator::first_of([signature.clone().into(), tokens.into()]),
        Err(ConfigError::InvalidComposition { .. })
    ));
    assert!(matches!(
        Authenticator::any_of([]),
        Err(ConfigError::InvalidComposition { .. })
    ));
    assert!(matches!(
        Authenticator::first_of([]),
        Err(ConfigError::InvalidComposition { .. })
    ));
    assert!(Authenticator::first_of([signature.into()]).is_ok());
}

// 10. An environment secret with surrounding whitespace is refused, naming the variable.
const WHITESPACE_VARIABLE: &str = "CALLGUARD_TEST_SECRET_WITH_NEWLINE";

/// Run by `an_environment_secret_with_a_trailing_newline_is_refused_by_name` in a child
/// process that has the variable set (the crate forbids `unsafe`, so no `set_var` here).
#[test]
fn environment_secret_child() {
    let Ok(value) = std::env::var(WHITESPACE_VARIABLE) else {
        return;
    };
    assert!(value.ends_with('\n'));
    assert_eq!(
        Secret::from_env(WHITESPACE_VARIABLE).unwrap_err(),
        ConfigError::SecretWhitespace {
            name: WHITESPACE_VARIABLE.to_owned()
        }
    );
    assert!(
        Secret::from_env(WHITESPACE_VARIABLE)
            .unwrap_err()
            .to_string()
            .contains(WHITESPACE_VARIABLE)
    );
    assert!(Secret::from_env_verbatim(WHITESPACE_VARIABLE).is_ok());
    println!("environment secret checks ran");
}

#[test]
fn an_environment_secret_with_a_trailing_newline_is_refused_by_name() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "environment_secret_child", "--nocapture"])
        .env(WHITESPACE_VARIABLE, "a-secret-from-a-file-0123456789\n")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("environment secret checks ran"), "{stdout}");
}

// 11. Each preset decodes its secret the platform's way.
#[tokio::test]
async fn presets_take_the_secret_as_the_dashboard_shows_it() {
    let text = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let stripe = providers::stripe()
        .signing_secret("k", text)
        .clock(FixedClock::at_unix(NOW))
        .build()
        .unwrap();
    let stripe_tag = hex::encode(hmac_sha256(
        text.as_bytes(),
        &[format!("{NOW}.").as_bytes(), b"{}"],
    ));
    let headers = [(
        "stripe-signature".to_owned(),
        format!("t={NOW},v1={stripe_tag}"),
    )];
    assert_eq!(
        answer(&GuardLayer::new(stripe), post(&headers, b"{}")).await,
        ACCEPTED
    );

    let standard = providers::standard_webhooks()
        .signing_secret("k", text)
        .clock(FixedClock::at_unix(NOW))
        .build()
        .unwrap();
    let key = base64::engine::general_purpose::STANDARD
        .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .unwrap();
    let tag = base64::engine::general_purpose::STANDARD.encode(hmac_sha256(
        &key,
        &[format!("msg_1.{NOW}.").as_bytes(), b"{}"],
    ));
    let headers = [
        ("webhook-id".to_owned(), "msg_1".to_owned()),
        ("webhook-timestamp".to_owned(), NOW.to_string()),
        ("webhook-signature".to_owned(), format!("v1,{tag}")),
    ];
    assert_eq!(
        answer(&GuardLayer::new(standard), post(&headers, b"{}")).await,
        ACCEPTED
    );

    assert_eq!(
        Secret::from_base64(text).unwrap_err(),
        ConfigError::PrefixedSecret,
        "a whsec_ secret is not plain base64: the presets decide how it is keyed"
    );
}

// 13. Build errors name the verifier they came from.
#[test]
fn a_verifier_without_secrets_is_named_in_its_error() {
    let error = providers::github().build().unwrap_err();
    assert_eq!(
        error,
        ConfigError::NoSecrets {
            verifier: "github".to_owned()
        }
    );
    assert!(error.to_string().contains("github"), "{error}");
    let error = bearer::BearerTokens::builder().build().unwrap_err();
    assert!(error.to_string().contains("bearer"), "{error}");
}

// 12. Rejections are logged: tests/rejection_log.rs, in a binary of its own (tracing
// subscribers scoped to one test race with events of tests running beside them).

// Issue 17, item 15: a token refusal names the rule it failed, never the token.
#[test]
fn a_token_refusal_names_the_failing_rule_in_the_log() {
    let sign = |header: Value, claims: Value, key: &str| {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let tag = hmac_sha256(key.as_bytes(), &[signing_input.as_bytes()]);
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag))
    };
    let header = |kid: &str, typ: &str| json!({"alg": "HS256", "kid": kid, "typ": typ});
    let claims = |change: Value| {
        let mut claims = json!({"iss": "tools", "aud": "tools", "sub": "agent", "exp": NOW + 300});
        claims
            .as_object_mut()
            .unwrap()
            .extend(change.as_object().unwrap().clone());
        claims
    };
    let cases = [
        (
            "aud",
            sign(
                header("k1", "JWT"),
                claims(json!({"aud": "other"})),
                JWT_SECRET,
            ),
        ),
        (
            "iss",
            sign(
                header("k1", "JWT"),
                claims(json!({"iss": "other"})),
                JWT_SECRET,
            ),
        ),
        (
            "typ",
            sign(header("k1", "at+jwt"), claims(json!({})), JWT_SECRET),
        ),
        (
            "exp",
            sign(
                header("k1", "JWT"),
                claims(json!({"exp": NOW - 60})),
                JWT_SECRET,
            ),
        ),
        (
            "nbf",
            sign(
                header("k1", "JWT"),
                claims(json!({"nbf": NOW + 60})),
                JWT_SECRET,
            ),
        ),
        (
            "kid",
            sign(header("k9", "JWT"), claims(json!({})), JWT_SECRET),
        ),
        (
            "signature",
            sign(
                header("k1", "JWT"),
                claims(json!({})),
                "another-key-of-32-bytes-0123456789",
            ),
        ),
        (
            "cnf",
            sign(
                header("k1", "JWT"),
                claims(json!({"cnf": {"jkt": "x"}})),
                JWT_SECRET,
            ),
        ),
    ];
    let config = JwtConfig::builder()
        .key(
            "k1",
            JwtKey::hmac(JwtAlgorithm::HS256, &Secret::from_utf8(JWT_SECRET).unwrap()).unwrap(),
        )
        .key(
            "k2",
            JwtKey::hmac(
                JwtAlgorithm::HS256,
                &Secret::from_utf8("a-second-jwt-key-of-32-bytes!!!!").unwrap(),
            )
            .unwrap(),
        )
        .issuer("tools")
        .audience("tools")
        .typ("JWT")
        .clock(FixedClock::at_unix(NOW))
        .build()
        .unwrap();
    // Each refusal names its rule (deterministically, in the response's `AuthError`; the
    // log line that writes it is checked in the logging test above, where one subscriber
    // sees everything).
    for (rule, token) in cases {
        let guard = GuardLayer::new(JwtVerifier::new(config.clone()));
        let request = Request::post("/hook")
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = common::runtime()
            .block_on(guard.layer(service_fn(echo)).oneshot(request))
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{rule}");
        assert_eq!(
            response
                .extensions()
                .get::<AuthError>()
                .and_then(AuthError::rule),
            Some(rule)
        );
    }
}
