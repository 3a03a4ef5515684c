//! A method of the application's own (`Authenticator::custom`) joins the one decision: it
//! decides the requests that present its credential, a failing credential is final, and it
//! composes with the built-in methods under `any_of`'s rules.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use bytes::Bytes;
use callguard::bearer::BearerTokens;
use callguard::custom::Authenticate;
use callguard::reject::Challenges;
use callguard::{
    AuthError, AuthErrorKind, AuthMethod, Authenticator, Caller, ConfigError, GuardLayer, Scopes,
    Secret,
};
use common::{Seen, echo};
use http::request::Parts;
use http::{Request, StatusCode};
use http_body_util::Full;
use subtle::ConstantTimeEq;
use tower::{Layer, ServiceExt, service_fn};

const KEY: &str = "api-key-0123456789abcdef";
const TOKEN: &str = "tok_agent_0123456789abcdef";

/// An API key in a header of its own, or (with `in_authorization`) as `Authorization: ApiKey`.
struct ApiKey {
    in_authorization: bool,
}

impl ApiKey {
    fn presented<'a>(&self, parts: &'a Parts) -> Option<&'a [u8]> {
        if self.in_authorization {
            let value = parts.headers.get("authorization")?.as_bytes();
            value.strip_prefix(b"ApiKey ")
        } else {
            parts.headers.get("x-api-key").map(|v| v.as_bytes())
        }
    }
}

impl Authenticate for ApiKey {
    fn name(&self) -> &str {
        "api-key"
    }

    fn presented(&self, parts: &Parts) -> bool {
        self.presented(parts).is_some()
    }

    fn authenticate(&self, parts: &Parts) -> Result<Caller, AuthError> {
        let presented = self.presented(parts).unwrap_or_default();
        if bool::from(presented.ct_eq(KEY.as_bytes())) {
            Ok(Caller::new(AuthMethod::Custom, "partner-7")
                .with_scopes(Scopes::from_iter(["tools:call"])))
        } else {
            Err(AuthError::new(
                AuthErrorKind::InvalidCredentials,
                Challenges::default(),
            ))
        }
    }

    fn reads_authorization(&self) -> bool {
        self.in_authorization
    }
}

fn tokens() -> BearerTokens {
    BearerTokens::builder()
        .token("agent", Secret::from_utf8(TOKEN).unwrap(), Scopes::empty())
        .build()
        .unwrap()
}

async fn send(
    guard: &GuardLayer,
    headers: &[(&str, &str)],
) -> (StatusCode, Option<AuthErrorKind>, Option<Caller>) {
    let mut request = Request::post("/tool");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = guard
        .layer(service_fn(echo))
        .oneshot(request.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    (
        response.status(),
        response
            .extensions()
            .get::<AuthError>()
            .map(AuthError::kind),
        response
            .extensions()
            .get::<Seen>()
            .and_then(|s| s.caller.clone()),
    )
}

#[tokio::test]
async fn a_custom_method_decides_what_presents_its_credential() {
    let guard = GuardLayer::new(Authenticator::custom(ApiKey {
        in_authorization: false,
    }));
    let (status, _, caller) = send(&guard, &[("x-api-key", KEY)]).await;
    assert_eq!(status, StatusCode::OK);
    let caller = caller.unwrap();
    assert_eq!(
        (caller.method(), caller.id()),
        (AuthMethod::Custom, "partner-7")
    );
    assert_eq!(guard.name(), "api-key");
    assert_eq!(
        send(&guard, &[("x-api-key", "wrong")]).await.1,
        Some(AuthErrorKind::InvalidCredentials)
    );
    assert_eq!(
        send(&guard, &[]).await.1,
        Some(AuthErrorKind::MissingCredentials)
    );
}

#[tokio::test]
async fn a_custom_method_composes_under_any_of_and_its_refusal_is_final() {
    let guard = GuardLayer::new(
        Authenticator::any_of([
            Authenticator::custom(ApiKey {
                in_authorization: false,
            }),
            tokens().into(),
        ])
        .unwrap(),
    );
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(send(&guard, &[("x-api-key", KEY)]).await.0, StatusCode::OK);
    assert_eq!(
        send(&guard, &[("authorization", &bearer)]).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send(
            &guard,
            &[("x-api-key", "wrong"), ("authorization", &bearer)]
        )
        .await
        .1,
        Some(AuthErrorKind::ConflictingCredentials),
        "two credentials at once"
    );
    assert_eq!(
        send(&guard, &[("x-api-key", "wrong")]).await.1,
        Some(AuthErrorKind::InvalidCredentials),
        "a failing key never falls through"
    );
}

#[tokio::test]
async fn a_custom_scheme_in_authorization_is_its_own_not_a_stray_header() {
    let guard = GuardLayer::new(
        Authenticator::any_of([
            Authenticator::custom(ApiKey {
                in_authorization: true,
            }),
            tokens().into(),
        ])
        .unwrap(),
    );
    let api_key = format!("ApiKey {KEY}");
    assert_eq!(
        send(&guard, &[("authorization", &api_key)]).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send(&guard, &[("authorization", &format!("Bearer {TOKEN}"))])
            .await
            .0,
        StatusCode::OK
    );
}

#[test]
fn two_custom_methods_of_one_name_are_one_credential() {
    let error = Authenticator::any_of([
        Authenticator::custom(ApiKey {
            in_authorization: false,
        }),
        Authenticator::custom(ApiKey {
            in_authorization: false,
        }),
    ])
    .unwrap_err();
    assert!(
        matches!(error, ConfigError::ConflictingMethods { .. }),
        "{error}"
    );
}
