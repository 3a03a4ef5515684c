//! Static bearer tokens, Basic credentials, any-of composition, optional mode and per-route
//! scopes, through an axum router.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use base64::Engine as _;
use callguard::basic::BasicUsers;
use callguard::bearer::BearerTokens;
use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier, TokenIssuer, TokenRequest};
use callguard::scope::RequireScopesLayer;
use callguard::signature::SignatureVerifier;
use callguard::{AuthError, AuthErrorKind, Authenticator, Caller, GuardLayer, Scopes, Secret};
use common::{SECRET, sign_hex};
use http::header::WWW_AUTHENTICATE;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

const TOKEN: &str = "tok_agent_0123456789abcdef";
const NEXT_TOKEN: &str = "tok_agent_next_fedcba9876543210";

fn tokens() -> BearerTokens {
    BearerTokens::builder()
        .token(
            "agent",
            Secret::from_utf8(TOKEN).unwrap(),
            Scopes::from_iter(["tools:call"]),
        )
        .token(
            "agent-next",
            Secret::from_utf8(NEXT_TOKEN).unwrap(),
            Scopes::from_iter(["tools:call", "orders:write"]),
        )
        .build()
        .unwrap()
}

fn users() -> BasicUsers {
    BasicUsers::builder()
        .user(
            "minter",
            Secret::from_utf8("minter-password-0001").unwrap(),
            Scopes::from_iter(["token:mint"]),
        )
        .build()
        .unwrap()
}

fn signature() -> SignatureVerifier {
    SignatureVerifier::builder()
        .secret("k1", Secret::from_utf8(SECRET).unwrap())
        .identity("signed")
        .build()
        .unwrap()
}

fn jwt_config() -> JwtConfig {
    JwtConfig::builder()
        .key(
            "j1",
            JwtKey::hmac(
                JwtAlgorithm::HS256,
                &Secret::from_utf8("a-jwt-signing-key-of-32-bytes!!!").unwrap(),
            )
            .unwrap(),
        )
        .build()
        .unwrap()
}

fn jwt_token() -> String {
    TokenIssuer::new(jwt_config())
        .issue(TokenRequest::new(
            "jwt-agent",
            Scopes::from_iter(["orders:write"]),
            Duration::from_secs(60),
        ))
        .unwrap()
        .access_token
}

async fn whoami(caller: Option<Caller>) -> String {
    caller.map_or_else(
        || "anonymous".to_owned(),
        |c| format!("{}:{}", c.method(), c.id()),
    )
}

fn app(guard: GuardLayer) -> Router {
    Router::new()
        .route("/tool", post(whoami))
        .route_layer(guard)
}

fn any_of() -> GuardLayer {
    GuardLayer::new(
        Authenticator::any_of([
            signature().into(),
            tokens().into(),
            JwtVerifier::new(jwt_config()).into(),
            users().into(),
        ])
        .unwrap(),
    )
}

struct Call {
    status: StatusCode,
    body: String,
    kind: Option<AuthErrorKind>,
    challenges: Vec<String>,
}

async fn call(app: Router, headers: &[(&str, String)], body: &'static str) -> Call {
    let mut request = Request::post("/tool");
    for (name, value) in headers {
        request = request.header(*name, value.as_str());
    }
    let response: Response<Body> = app
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let kind = response
        .extensions()
        .get::<AuthError>()
        .map(AuthError::kind);
    let challenges = response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let status = response.status();
    let body = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    Call {
        status,
        body,
        kind,
        challenges,
    }
}

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

fn basic(user: &str, password: &str) -> (&'static str, String) {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    ("authorization", format!("Basic {encoded}"))
}

#[tokio::test]
async fn static_token_is_accepted_case_insensitively_and_names_the_token() {
    let app = app(GuardLayer::new(tokens()));
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let result = call(
            app.clone(),
            &[("authorization", format!("{scheme} {TOKEN}"))],
            "",
        )
        .await;
        assert_eq!(
            (result.status, result.body.as_str()),
            (StatusCode::OK, "bearer:agent"),
            "{scheme}"
        );
    }
    let rotated = call(app, &[bearer(NEXT_TOKEN)], "").await;
    assert_eq!(rotated.body, "bearer:agent-next");
}

#[tokio::test]
async fn static_token_part_is_exact() {
    let app = app(GuardLayer::new(tokens()));
    for wrong in [
        &TOKEN[..TOKEN.len() - 1],
        &format!("{TOKEN}x"),
        &TOKEN.to_uppercase(),
    ] {
        let result = call(app.clone(), &[bearer(wrong)], "").await;
        assert_eq!(
            (result.status, result.kind),
            (
                StatusCode::UNAUTHORIZED,
                Some(AuthErrorKind::InvalidCredentials)
            ),
            "{wrong}"
        );
        assert_eq!(
            result.challenges,
            ["Bearer realm=\"callguard\", error=\"invalid_token\""]
        );
    }
}

#[tokio::test]
async fn basic_credentials_are_checked_and_challenged() {
    let app = app(GuardLayer::new(users()));
    assert_eq!(
        call(app.clone(), &[basic("minter", "minter-password-0001")], "")
            .await
            .body,
        "basic:minter"
    );
    let wrong = call(app.clone(), &[basic("minter", "minter-password-0002")], "").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.challenges,
        ["Basic realm=\"callguard\", charset=\"UTF-8\""]
    );
    for malformed in ["Basic !!!!", "Basic bm9jb2xvbg==", "Basic //79"] {
        let result = call(app.clone(), &[("authorization", malformed.to_owned())], "").await;
        assert_eq!(
            (result.status, result.kind),
            (
                StatusCode::UNAUTHORIZED,
                Some(AuthErrorKind::MalformedCredentials)
            ),
            "{malformed}"
        );
    }
}

#[tokio::test]
async fn any_of_dispatches_by_what_the_request_carries() {
    let app = app(any_of());
    let body = "{}";
    assert_eq!(
        call(
            app.clone(),
            &[("x-signature", sign_hex(SECRET, body.as_bytes()))],
            body
        )
        .await
        .body,
        "signature:signed"
    );
    assert_eq!(
        call(app.clone(), &[bearer(TOKEN)], body).await.body,
        "bearer:agent"
    );
    assert_eq!(
        call(app.clone(), &[bearer(&jwt_token())], body).await.body,
        "jwt:jwt-agent"
    );
    assert_eq!(
        call(app, &[basic("minter", "minter-password-0001")], body)
            .await
            .body,
        "basic:minter"
    );
}

#[tokio::test]
async fn any_of_without_credentials_challenges_every_scheme() {
    let result = call(app(any_of()), &[], "").await;
    assert_eq!(
        (result.status, result.kind),
        (
            StatusCode::UNAUTHORIZED,
            Some(AuthErrorKind::MissingCredentials)
        )
    );
    assert_eq!(
        result.challenges,
        [
            "Signature realm=\"callguard\"",
            "Bearer realm=\"callguard\"",
            "Basic realm=\"callguard\", charset=\"UTF-8\""
        ]
    );
}

#[tokio::test]
async fn bad_signature_plus_valid_bearer_token_is_rejected() {
    let result = call(
        app(any_of()),
        &[("x-signature", "00".repeat(32)), bearer(TOKEN)],
        "{}",
    )
    .await;
    assert_eq!(
        (result.status, result.kind),
        (
            StatusCode::UNAUTHORIZED,
            Some(AuthErrorKind::ConflictingCredentials)
        )
    );
}

#[tokio::test]
async fn failing_credential_never_falls_through_to_another_method() {
    let app = app(any_of());
    let bad_bearer = call(app.clone(), &[bearer("tok_not_configured_0000000000")], "").await;
    assert_eq!(bad_bearer.kind, Some(AuthErrorKind::InvalidCredentials));
    let bad_jwt = call(app.clone(), &[bearer("eyJhbGciOiJIUzI1NiJ9.e30.AAAA")], "").await;
    assert_eq!(bad_jwt.status, StatusCode::UNAUTHORIZED);
    let unknown_scheme = call(
        app,
        &[("authorization", "Digest username=x".to_owned())],
        "",
    )
    .await;
    assert_eq!(
        unknown_scheme.kind,
        Some(AuthErrorKind::MalformedCredentials)
    );
}

#[tokio::test]
async fn optional_mode_passes_no_credentials_and_rejects_bad_ones() {
    let app = app(any_of().optional());
    assert_eq!(call(app.clone(), &[], "").await.body, "anonymous");
    assert_eq!(
        call(app.clone(), &[bearer(TOKEN)], "").await.body,
        "bearer:agent"
    );
    assert_eq!(
        call(app.clone(), &[bearer("tok_not_configured_0000000000")], "")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(app, &[("x-signature", "00".repeat(32))], "{}")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

fn scoped(guard: GuardLayer) -> Router {
    Router::new()
        .route("/tool", post(whoami))
        .route_layer(RequireScopesLayer::new(["orders:write"]).unwrap())
        .route_layer(guard)
}

#[tokio::test]
async fn scope_layer_answers_403_naming_the_missing_scope() {
    let result = call(scoped(GuardLayer::new(tokens())), &[bearer(TOKEN)], "").await;
    assert_eq!(
        (result.status, result.kind),
        (
            StatusCode::FORBIDDEN,
            Some(AuthErrorKind::InsufficientScope)
        )
    );
    assert_eq!(
        result.challenges,
        ["Bearer realm=\"callguard\", error=\"insufficient_scope\", scope=\"orders:write\""]
    );
    let allowed = call(scoped(GuardLayer::new(tokens())), &[bearer(NEXT_TOKEN)], "").await;
    assert_eq!(
        (allowed.status, allowed.body.as_str()),
        (StatusCode::OK, "bearer:agent-next")
    );
}

#[tokio::test]
async fn scope_layer_without_a_guard_is_a_500_naming_the_mistake() {
    let app = Router::new()
        .route("/tool", post(whoami))
        .route_layer(RequireScopesLayer::new(["orders:write"]).unwrap());
    let result = call(app, &[bearer(TOKEN)], "").await;
    assert_eq!(result.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(result.body.contains("GuardLayer"), "{}", result.body);
}

#[tokio::test]
async fn scope_layer_behind_an_optional_guard_is_401_for_anonymous_requests() {
    let result = call(scoped(any_of().optional()), &[], "").await;
    assert_eq!(
        (result.status, result.kind),
        (
            StatusCode::UNAUTHORIZED,
            Some(AuthErrorKind::MissingCredentials)
        )
    );
}

#[tokio::test]
async fn handler_side_scope_check_answers_403() {
    let app = Router::new()
        .route(
            "/tool",
            post(|caller: Caller| async move {
                caller.require_scopes(["orders:write"])?;
                Ok::<_, AuthError>("written")
            }),
        )
        .route_layer(GuardLayer::new(tokens()));
    assert_eq!(
        call(app.clone(), &[bearer(TOKEN)], "").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(call(app, &[bearer(NEXT_TOKEN)], "").await.body, "written");
}

#[test]
fn scope_layer_refuses_unusable_scopes() {
    assert!(RequireScopesLayer::new(Vec::<String>::new()).is_err());
    assert!(RequireScopesLayer::new(["a b"]).is_err());
    assert!(RequireScopesLayer::new(["a\"b"]).is_err());
}

#[tokio::test]
async fn two_authorization_headers_are_rejected_by_static_tokens() {
    let result = call(
        app(GuardLayer::new(tokens())),
        &[bearer(TOKEN), bearer(TOKEN)],
        "",
    )
    .await;
    assert_eq!(result.kind, Some(AuthErrorKind::DuplicateHeader));
}

fn verifier_on(identity: &str, header: &str, secret: &str) -> SignatureVerifier {
    SignatureVerifier::builder()
        .identity(identity)
        .header(header)
        .secret("k", Secret::from_utf8(secret).unwrap())
        .build()
        .unwrap()
}

#[test]
fn any_of_refuses_two_methods_that_read_one_credential_naming_both() {
    let error = Authenticator::any_of([
        verifier_on("agents", "x-signature", "first-secret-0123456789").into(),
        verifier_on("partners", "x-signature", "second-secret-0123456789").into(),
    ])
    .unwrap_err();
    assert_eq!(
        error,
        callguard::ConfigError::ConflictingMethods {
            first: "agents".into(),
            second: "partners".into(),
            credential: "the `x-signature` header".into(),
        }
    );
    assert!(
        error.to_string().contains("`agents` and `partners`"),
        "{error}"
    );
    // An alias is read as surely as the header itself.
    let svix = verifier_on("svix", "svix-signature", "svix-secret-0123456789ab");
    let standard = callguard::providers::standard_webhooks()
        .signing_secret("k", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .build()
        .unwrap();
    assert!(matches!(
        Authenticator::any_of([standard.into(), svix.into()]),
        Err(callguard::ConfigError::ConflictingMethods { .. })
    ));
    assert!(matches!(
        Authenticator::any_of([tokens().into(), tokens().into()]),
        Err(callguard::ConfigError::ConflictingMethods { .. })
    ));
    assert!(matches!(
        Authenticator::any_of([users().into(), users().into()]),
        Err(callguard::ConfigError::ConflictingMethods { .. })
    ));
    let jwt = || JwtVerifier::new(jwt_config());
    assert!(matches!(
        Authenticator::any_of([jwt().into(), jwt().into()]),
        Err(callguard::ConfigError::ConflictingMethods { .. })
    ));
    // Nesting does not hide a conflict.
    let nested = Authenticator::any_of([tokens().into(), signature().into()]).unwrap();
    assert!(matches!(
        Authenticator::any_of([nested, tokens().into()]),
        Err(callguard::ConfigError::ConflictingMethods { .. })
    ));
    // Different credentials compose.
    assert!(
        Authenticator::any_of([
            tokens().into(),
            jwt().into(),
            users().into(),
            signature().into()
        ])
        .is_ok()
    );
}

#[test]
fn a_delegation_cannot_be_one_choice_among_others() {
    let delegation =
        callguard::delegation::Delegation::builder(signature(), JwtVerifier::new(jwt_config()))
            .build()
            .unwrap();
    assert!(matches!(
        Authenticator::any_of([
            delegation.clone().into(),
            JwtVerifier::new(jwt_config()).into()
        ]),
        Err(callguard::ConfigError::InvalidComposition { .. })
    ));
    assert!(Authenticator::any_of([delegation.into()]).is_ok());
}

mod composition_rule {
    use super::*;
    use proptest::prelude::*;

    const HEADERS: [&str; 3] = ["x-signature", "x-hub-signature-256", "x-agent-signature"];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// any_of builds exactly when no two verifiers read one header, and what it builds
        /// accepts a request signed for each of its verifiers: a composition never builds
        /// that could not accept.
        #[test]
        fn any_of_builds_only_what_can_accept(choice in proptest::collection::vec(0..HEADERS.len(), 1..4)) {
            let verifiers: Vec<(usize, SignatureVerifier)> = choice
                .iter()
                .enumerate()
                .map(|(n, &h)| (h, verifier_on(&format!("v{n}"), HEADERS[h], &format!("secret-{n}-0123456789abcdef"))))
                .collect();
            let mut distinct = choice.clone();
            distinct.sort_unstable();
            distinct.dedup();
            let built = Authenticator::any_of(verifiers.iter().map(|(_, v)| v.clone().into()));
            prop_assert_eq!(built.is_ok(), distinct.len() == choice.len());
            let Ok(authenticator) = built else { return Ok(()) };
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            for (n, (h, _)) in verifiers.iter().enumerate() {
                let signature = sign_hex(&format!("secret-{n}-0123456789abcdef"), b"{}");
                let request = Request::post("/tool")
                    .header(HEADERS[*h], signature)
                    .body(Body::from("{}"))
                    .unwrap();
                let guard = GuardLayer::new(authenticator.clone());
                let status = runtime.block_on(app(guard).oneshot(request)).unwrap().status();
                prop_assert_eq!(status, StatusCode::OK);
            }
        }
    }
}

#[test]
fn signalwire_composes_with_token_methods() {
    let signalwire = callguard::providers::signalwire()
        .signing_secret("k", "signalwire-signing-key-0123456789")
        .public_base_url("https://hooks.example.com")
        .build()
        .unwrap();
    Authenticator::any_of([signalwire.clone()]).unwrap();
    Authenticator::any_of([signalwire, tokens().into()]).unwrap();
}

#[test]
fn a_repeated_name_is_named_for_what_it_names() {
    use callguard::ConfigError;
    let password = || Secret::from_utf8("minter-password-0001").unwrap();
    let error = BasicUsers::builder()
        .user("minter", password(), Scopes::empty())
        .user(
            "minter",
            Secret::from_utf8("other-password-0002").unwrap(),
            Scopes::empty(),
        )
        .build()
        .unwrap_err();
    assert_eq!(
        error,
        ConfigError::DuplicateName {
            what: "user",
            name: "minter".into()
        }
    );
    assert_eq!(error.to_string(), "user `minter` is configured twice");
    let key = || {
        JwtKey::hmac(
            JwtAlgorithm::HS256,
            &Secret::from_utf8("a-jwt-signing-key-of-32-bytes!!!").unwrap(),
        )
        .unwrap()
    };
    let error = JwtConfig::builder()
        .key("j1", key())
        .key("j1", key())
        .build()
        .unwrap_err();
    assert!(
        matches!(&error, ConfigError::DuplicateName { what: "JWT key id", name } if name == "j1"),
        "{error:?}"
    );
    let error = callguard::jwt::JwtKeySet::from_json(b"[]", 8).unwrap_err();
    assert!(
        matches!(error, ConfigError::InvalidKeySet { .. }),
        "{error:?}"
    );
    let error = callguard::jwt::JwtKeySet::from_json(br#"{"keys":[{},{}]}"#, 1).unwrap_err();
    assert_eq!(error.to_string(), "unusable JWK set: more than 1 keys");
}
