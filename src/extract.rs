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
