//! How the guard treats what happens around it: an `AuthError` a handler answers with is
//! rendered by the guard's own responder and logged, and a second guard on a route that one
//! already guards is a setup mistake (500), not a silent replacement of the caller.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use callguard::bearer::BearerTokens;
use callguard::reject::ProblemDetails;
use callguard::{AuthError, AuthErrorKind, Caller, GuardLayer, Scopes, Secret};
use http::header::WWW_AUTHENTICATE;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

const TOKEN: &str = "tok_agent_0123456789abcdef";

fn tokens(name: &str, token: &str) -> BearerTokens {
    BearerTokens::builder()
        .token(
            name,
            Secret::from_utf8(token).unwrap(),
            Scopes::from_iter(["tools:call"]),
        )
        .build()
        .unwrap()
}

async fn needs_refunds(caller: Caller) -> Result<&'static str, AuthError> {
    caller.require_scopes(["refunds:write"])?;
    Ok("refunded")
}

fn bearer(request: http::request::Builder, token: &str) -> Request<Body> {
    request
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn an_auth_error_from_the_handler_is_rendered_by_the_guards_responder_and_logged() {
    let responder = ProblemDetails::with_realm("tools")
        .unwrap()
        .with_resource_metadata("https://api.example.com/.well-known/oauth-protected-resource/mcp")
        .unwrap();
    let app = Router::new()
        .route("/refund", post(needs_refunds))
        .route_layer(GuardLayer::new(tokens("agent", TOKEN)).on_reject(responder));
    let response = app
        .oneshot(bearer(Request::post("/refund"), TOKEN))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let challenge = response.headers()[WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("realm=\"tools\""), "{challenge}");
    assert!(challenge.contains("resource_metadata=\""), "{challenge}");
    assert!(challenge.contains("scope=\"refunds:write\""), "{challenge}");
    assert_eq!(
        response
            .extensions()
            .get::<AuthError>()
            .map(AuthError::kind),
        Some(AuthErrorKind::InsufficientScope)
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(!body.is_empty());
}

/// The stacked-guard log cuts a long path at a character boundary: a path whose 256th byte
/// falls inside a character is still a 500, not a panic, with a subscriber recording the
/// line (without one, the field is never formatted).
#[test]
fn a_second_guard_on_a_long_non_ascii_path_is_a_500_not_a_panic() {
    use tower::Layer;
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .with_max_level(tracing::Level::ERROR)
        .finish();
    let outer = GuardLayer::new(tokens("agent", TOKEN));
    let inner = GuardLayer::new(tokens("other", "tok_other_0123456789abcdef"));
    let service = outer.layer(inner.layer(tower::service_fn(|_: Request<_>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(Body::empty()))
    })));
    let path = format!("/{}é", "a".repeat(254));
    let request = bearer(Request::post(path.as_str()), TOKEN);
    let status = tracing::subscriber::with_default(subscriber, || {
        common::runtime().block_on(async { service.oneshot(request).await.unwrap().status() })
    });
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn a_second_guard_on_a_guarded_route_is_a_500_naming_both() {
    let outer = GuardLayer::new(tokens("agent", TOKEN))
        .named("outer")
        .unwrap();
    let inner = GuardLayer::new(tokens("other", "tok_other_0123456789abcdef"))
        .named("inner")
        .unwrap();
    let app = Router::new()
        .route(
            "/tool",
            post(|caller: Caller| async move { caller.id().to_owned() }),
        )
        .route_layer(inner)
        .route_layer(outer);
    let response = app
        .oneshot(bearer(Request::post("/tool"), TOKEN))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        response
            .extensions()
            .get::<AuthError>()
            .map(AuthError::kind),
        Some(AuthErrorKind::GuardStacked)
    );
}

#[tokio::test]
async fn typed_claims_refuse_a_caller_whose_proof_carries_none() {
    #[derive(serde::Deserialize)]
    struct Order {
        #[allow(dead_code, reason = "read by the extractor only")]
        order_id: String,
    }
    let app = Router::new()
        .route(
            "/refund",
            post(|callguard::TypedClaims(_order): callguard::TypedClaims<Order>| async { "ok" }),
        )
        .route_layer(GuardLayer::new(tokens("agent", TOKEN)));
    let response = app
        .oneshot(bearer(Request::post("/refund"), TOKEN))
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "a static token has no claims"
    );
}

#[test]
#[allow(deprecated)]
fn moved_items_keep_their_old_paths_for_one_release() {
    assert_eq!(
        callguard::DEFAULT_BODY_LIMIT,
        callguard::guard::DEFAULT_BODY_LIMIT
    );
    assert_eq!(
        callguard::DEFAULT_BODY_TIMEOUT,
        callguard::guard::DEFAULT_BODY_TIMEOUT
    );
    assert_eq!(
        callguard::REJECTION_LOG_LINES_PER_SECOND,
        callguard::reject::REJECTION_LOG_LINES_PER_SECOND
    );
    let old: callguard::Challenges =
        callguard::reject::Challenges::one(callguard::ChallengeScheme::Bearer);
    assert_eq!(
        old,
        callguard::reject::Challenges::one(callguard::reject::ChallengeScheme::Bearer)
    );
    let _: Option<callguard::Guard<()>> = None::<callguard::guard::Guard<()>>;
    let _: Option<callguard::GuardedBody<()>> = None::<callguard::guard::GuardedBody<()>>;
}
