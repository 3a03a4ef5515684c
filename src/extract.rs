//! axum extractors: `Caller` and `Option<Caller>`.

use std::convert::Infallible;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::caller::Caller;

/// The rejection when a handler asks for [`Caller`] on a route that no guard protects: a
/// server setup mistake, answered with 500, never the client's fault.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct MissingCaller;

impl IntoResponse for MissingCaller {
    fn into_response(self) -> Response {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "callguard: no `callguard::Caller` in the request extensions; is this route behind a `GuardLayer`?",
        )
            .into_response()
    }
}

impl std::fmt::Display for MissingCaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no `callguard::Caller` in the request extensions")
    }
}

impl std::error::Error for MissingCaller {}

/// Answers with the default [`ProblemDetails`](crate::reject::ProblemDetails) response,
/// so a handler can write `caller.require_scopes(["orders:write"])?`. Behind a guard, the
/// guard renders it again with its own responder (realm, `resource_metadata`) and logs it,
/// as it does its own refusals.
impl IntoResponse for crate::AuthError {
    fn into_response(self) -> Response {
        let mut response = crate::reject::response(&crate::reject::ProblemDetails::default(), self);
        response
            .extensions_mut()
            .insert(crate::guard::DefaultRendered);
        response
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = MissingCaller;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(MissingCaller)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Caller>().cloned())
    }
}

/// The verified token's claims as `T`, for handlers behind a guard that accepts tokens:
///
/// ```
/// use axum::{Router, body::Body, routing::post};
/// use callguard::{Scopes, Secret, TypedClaims};
/// use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier, TokenIssuer, TokenRequest};
/// use http::{Request, StatusCode};
/// use tower::ServiceExt;
///
/// #[derive(serde::Deserialize)]
/// struct Order { sub: String, order_id: String }
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let key = JwtKey::hmac(JwtAlgorithm::HS256, &Secret::from_utf8("a-jwt-signing-key-of-32-bytes!!!")?)?;
/// let config = JwtConfig::builder().key("k1", key).build()?;
/// let app = Router::new()
///     .route("/refund", post(|TypedClaims(order): TypedClaims<Order>| async move {
///         format!("{} refunds {}", order.sub, order.order_id)
///     }))
///     .route_layer(JwtVerifier::new(config.clone()).layer());
/// let token = TokenIssuer::new(config)
///     .issue(TokenRequest::new("agent-7", Scopes::empty(), std::time::Duration::from_secs(60)).claim("order_id", "o-9"))?;
/// let request = Request::post("/refund")
///     .header("authorization", format!("Bearer {}", token.access_token))
///     .body(Body::empty())?;
/// assert_eq!(app.oneshot(request).await?.status(), StatusCode::OK);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A caller without claims (a signature, a static token), or whose claims lack what `T`
/// needs, is refused with [`ClaimsRejection`] (403): the caller is known, but its proof
/// does not carry what this route needs.
#[derive(Debug, Clone)]
pub struct TypedClaims<T>(pub T);

/// Why [`TypedClaims`] could not be extracted.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClaimsRejection {
    /// No guard ran in front of the route (500).
    MissingCaller,
    /// The caller has no claims, or not of the shape asked for (403).
    Shape(crate::ClaimsError),
}

impl IntoResponse for ClaimsRejection {
    fn into_response(self) -> Response {
        match self {
            Self::MissingCaller => MissingCaller.into_response(),
            Self::Shape(_) => (
                StatusCode::FORBIDDEN,
                "the caller's claims do not carry what this route needs",
            )
                .into_response(),
        }
    }
}

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for TypedClaims<T> {
    type Rejection = ClaimsRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let caller = parts
            .extensions
            .get::<Caller>()
            .ok_or(ClaimsRejection::MissingCaller)?;
        let claims = caller.claims().ok_or_else(|| {
            ClaimsRejection::Shape(crate::ClaimsError::new("the caller has no claims"))
        })?;
        claims
            .deserialize::<T>()
            .map(TypedClaims)
            .map_err(ClaimsRejection::Shape)
    }
}
