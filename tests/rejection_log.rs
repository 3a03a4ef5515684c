//! What operators see of refused requests (issue 11, item 12; issue 17, item 15): one
//! event per refusal, named by guard, with the path, the reason and a token's failing rule,
//! never a credential, and rate-limited.
//!
//! A test binary of its own: a `tracing` subscriber scoped to one test races with the
//! events of other tests running beside it in one process.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use std::time::Duration;

use bytes::Bytes;
use callguard::clock::FixedClock;
use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier, TokenIssuer, TokenRequest};
use callguard::{AuthError, AuthErrorKind, GuardLayer, Scopes, Secret, providers};
use common::echo;
use http::{Request, StatusCode};
use http_body_util::Full;
use tower::{Layer, ServiceExt, service_fn};

const NOW: i64 = 1_700_000_000;
const JWT_SECRET: &str = "a-jwt-signing-key-of-32-bytes!!!";

async fn answer(
    guard: &GuardLayer,
    request: Request<Full<Bytes>>,
) -> (StatusCode, Option<AuthErrorKind>) {
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

#[derive(Clone, Default)]
struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn rejections_are_logged_by_guard_and_path_without_credentials_and_rate_limited() {
    let log = CapturedLog::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let github = providers::github()
        .signing_secret("k1", "github-webhook-secret-0123")
        .build()
        .unwrap();
    let forged = "sha256=".to_owned() + &"ab".repeat(32);
    let jwt = JwtConfig::builder()
        .key(
            "k1",
            JwtKey::hmac(JwtAlgorithm::HS256, &Secret::from_utf8(JWT_SECRET).unwrap()).unwrap(),
        )
        .audience("tools")
        .clock(FixedClock::at_unix(NOW))
        .build()
        .unwrap();
    let wrong_audience = TokenIssuer::new(
        JwtConfig::builder()
            .key(
                "k1",
                JwtKey::hmac(JwtAlgorithm::HS256, &Secret::from_utf8(JWT_SECRET).unwrap()).unwrap(),
            )
            .audience("elsewhere")
            .clock(FixedClock::at_unix(NOW))
            .build()
            .unwrap(),
    )
    .issue(TokenRequest::new(
        "agent",
        Scopes::empty(),
        Duration::from_secs(60),
    ))
    .unwrap()
    .access_token;
    let jwt_guard = GuardLayer::new(JwtVerifier::new(jwt))
        .named("tokens")
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        common::runtime().block_on(async {
            let named = GuardLayer::new(github.clone()).named("deliveries").unwrap();
            let headers = [("x-hub-signature-256".to_owned(), forged.clone())];
            assert_eq!(
                answer(&named, post(&headers, b"{}")).await.0,
                StatusCode::UNAUTHORIZED
            );
            let preset = GuardLayer::new(github);
            for _ in 0..100 {
                answer(&preset, post(&[], b"{}")).await;
            }
            let headers = [(
                "authorization".to_owned(),
                format!("Bearer {wrong_audience}"),
            )];
            answer(&jwt_guard, post(&headers, b"")).await;
        });
    });
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("WARN"), "{text}");
    assert!(
        lines[0].contains("guard=deliveries")
            && lines[0].contains("path=/hook")
            && lines[0].contains("reason=invalid credentials"),
        "{text}"
    );
    assert!(!text.contains(&"ab".repeat(32)), "the signature was logged");
    let jwt_line = lines
        .iter()
        .find(|l| l.contains("guard=tokens"))
        .expect("logged");
    assert!(
        jwt_line.contains("rule=aud"),
        "a token refusal names its rule: {jwt_line}"
    );
    assert!(!text.contains(&wrong_audience), "the token was logged");
    let preset_lines = lines.iter().filter(|l| l.contains("guard=github")).count();
    let budget = callguard::reject::REJECTION_LOG_LINES_PER_SECOND as usize;
    // The flood takes milliseconds; should it straddle a second, it gets a second budget.
    assert!(
        (budget..=2 * budget).contains(&preset_lines),
        "a preset names itself, and a flood is cut to the budget: {preset_lines} lines"
    );
}
