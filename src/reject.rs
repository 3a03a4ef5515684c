//! Rejection responses: correct by default, replaceable by the user.
//!
//! The guard hands every failure to a [`Reject`] implementation, then puts the
//! [`AuthError`] into the response's extensions. Each rejection is logged with `tracing` at
//! `warn` (`error` for a 5xx), naming the guard ([`GuardLayer::named`](crate::GuardLayer::named)),
//! the request path and the reason's kind, never a credential or a body, and at most
//! [`REJECTION_LOG_LINES_PER_SECOND`] events per
//! guard and second (the next event says how many were left out). The
//! default, [`ProblemDetails`], answers with an RFC 9457 `application/problem+json` body
//! that is the same for every request of a given status, so the response reveals nothing
//! about why a credential failed.
//!
//! A closure works as a responder:
//!
//! ```
//! use bytes::Bytes;
//! use callguard::{AuthError, GuardLayer, Secret, signature::SignatureVerifier};
//! use http::Response;
//!
//! let verifier = SignatureVerifier::builder()
//!     .secret("k1", Secret::from_utf8("0123456789abcdef0123")?)
//!     .build()?;
//! let layer = GuardLayer::new(verifier).on_reject(|error: &AuthError| {
//!     Response::builder()
//!         .status(error.status())
//!         .body(Bytes::from_static(b"nope"))
//!         .expect("a status and a static body make a valid response")
//! });
//! # Ok::<(), callguard::ConfigError>(())
//! ```

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};

use crate::error::{AuthError, ConfigError, check_token_text};
pub use crate::error::{ChallengeScheme, Challenges};
pub use crate::rejection_log::REJECTION_LOG_LINES_PER_SECOND;
use crate::rejection_log::RejectionLog;

/// Builds the response for a request the guard refuses.
pub trait Reject: Clone + Send + Sync + 'static {
    /// The response for `error`. The guard adds the error to its extensions afterwards.
    fn reject(&self, error: &AuthError) -> Response<Bytes>;
}

impl<F> Reject for F
where
    F: Fn(&AuthError) -> Response<Bytes> + Clone + Send + Sync + 'static,
{
    fn reject(&self, error: &AuthError) -> Response<Bytes> {
        self(error)
    }
}

/// The default responder: RFC 9457 problem details and RFC 7235 challenges.
///
/// - 401 carries one `WWW-Authenticate` header per scheme the guard accepts
///   (`Signature realm="…"`, `Bearer realm="…"` with `error="invalid_token"` when a token
///   was presented, `Basic realm="…", charset="UTF-8"`).
/// - The body depends only on the status, never on the reason.
/// - Every rejection is `Cache-Control: no-store`.
#[derive(Debug, Clone)]
pub struct ProblemDetails {
    realm: Arc<str>,
    /// RFC 9728 §5.1: where a client finds this protected resource's metadata.
    resource_metadata: Option<Arc<str>>,
    /// The scopes a client without a token should ask for (RFC 6750 §3 `scope`).
    scope: Option<Arc<str>>,
}

impl ProblemDetails {
    /// The default realm, `callguard`.
    pub const DEFAULT_REALM: &'static str = "callguard";

    /// A responder whose challenges name `realm`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] when the realm is empty or holds quotes, backslashes or
    /// non-printable characters.
    pub fn with_realm(realm: &str) -> Result<Self, ConfigError> {
        check_token_text(realm, "realm")?;
        Ok(Self {
            realm: realm.into(),
            ..Self::default()
        })
    }

    /// Bearer challenges (401 and 403 alike) that carry `resource_metadata="url"` (RFC 9728
    /// §5.1), as the MCP authorization spec requires of a server.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidUrl`] for a URL that is not absolute `http(s)` printable text.
    pub fn with_resource_metadata(mut self, url: &str) -> Result<Self, ConfigError> {
        let absolute = url.starts_with("https://") || url.starts_with("http://");
        if !absolute || check_token_text(url, "resource_metadata").is_err() {
            return Err(ConfigError::InvalidUrl {
                url: url.to_owned(),
            });
        }
        self.resource_metadata = Some(url.into());
        Ok(self)
    }

    /// The `scope` a 401 Bearer challenge names: what a client should ask its
    /// authorization server for.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] for a scope that is empty or not printable.
    pub fn with_challenge_scope<S: AsRef<str>>(
        mut self,
        scopes: impl IntoIterator<Item = S>,
    ) -> Result<Self, ConfigError> {
        let scopes: Vec<String> = scopes.into_iter().map(|s| s.as_ref().to_owned()).collect();
        for scope in &scopes {
            check_token_text(scope, "scope")?;
        }
        self.scope = (!scopes.is_empty()).then(|| scopes.join(" ").into());
        Ok(self)
    }

    /// `, resource_metadata="…"` when configured.
    fn metadata_parameter(&self) -> String {
        self.resource_metadata
            .as_deref()
            .map_or_else(String::new, |url| format!(", resource_metadata=\"{url}\""))
    }

    fn challenge(&self, scheme: ChallengeScheme, error: &AuthError) -> HeaderValue {
        let realm = &self.realm;
        let text = match scheme {
            ChallengeScheme::Signature => format!("Signature realm=\"{realm}\""),
            ChallengeScheme::Bearer => {
                let mut text = format!("Bearer realm=\"{realm}\"");
                if error.credentials_presented() && dpop_error(error.kind()).is_none() {
                    text.push_str(", error=\"invalid_token\"");
                }
                text.push_str(&self.metadata_parameter());
                if let Some(scope) = &self.scope {
                    text.push_str(&format!(", scope=\"{scope}\""));
                }
                text
            }
            ChallengeScheme::DPoP => {
                let mut text = format!("DPoP realm=\"{realm}\"");
                if let Some(algorithms) = error.dpop_algorithms() {
                    text.push_str(&format!(", algs=\"{algorithms}\""));
                }
                match dpop_error(error.kind()) {
                    Some(code) => text.push_str(&format!(", error=\"{code}\"")),
                    None if error.credentials_presented() => {
                        text.push_str(", error=\"invalid_token\"");
                    }
                    None => {}
                }
                text.push_str(&self.metadata_parameter());
                if let Some(scope) = &self.scope {
                    text.push_str(&format!(", scope=\"{scope}\""));
                }
                text
            }
            ChallengeScheme::Basic => format!("Basic realm=\"{realm}\", charset=\"UTF-8\""),
        };
        HeaderValue::try_from(text)
            .expect("the realm was checked to be printable ASCII without quotes")
    }
}

impl Default for ProblemDetails {
    fn default() -> Self {
        Self {
            realm: Self::DEFAULT_REALM.into(),
            resource_metadata: None,
            scope: None,
        }
    }
}

impl Reject for ProblemDetails {
    fn reject(&self, error: &AuthError) -> Response<Bytes> {
        let status = error.status();
        let mut response = Response::new(Bytes::from_static(problem_body(status, error.kind())));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::UNAUTHORIZED {
            for scheme in error.challenges().iter() {
                headers.append(WWW_AUTHENTICATE, self.challenge(scheme, error));
            }
        }
        if let Some(nonce) = error.dpop_nonce()
            && let Ok(value) = HeaderValue::try_from(nonce)
        {
            headers.insert(http::HeaderName::from_static("dpop-nonce"), value);
        }
        if let Some(seconds) = error.retry_after() {
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some((quota, period)) = error.rate_policy() {
            // draft-ietf-httpapi-ratelimit-headers: the policy, and none left until `t`.
            let policy = format!("\"callguard\";q={quota};w={period}");
            let left = format!("\"callguard\";r=0;t={}", error.retry_after().unwrap_or(1));
            for (name, value) in [("ratelimit-policy", policy), ("ratelimit", left)] {
                if let Ok(value) = HeaderValue::try_from(value) {
                    headers.insert(http::HeaderName::from_static(name), value);
                }
            }
        }
        if let Some(scope) = error.required_scope() {
            let text = format!(
                "Bearer realm=\"{}\", error=\"insufficient_scope\", scope=\"{scope}\"{}",
                self.realm,
                self.metadata_parameter()
            );
            if let Ok(value) = HeaderValue::try_from(text) {
                headers.insert(WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

/// The `error` a DPoP challenge names for a refusal of the proof (RFC 9449 §7.1, §9).
fn dpop_error(kind: crate::AuthErrorKind) -> Option<&'static str> {
    match kind {
        crate::AuthErrorKind::InvalidDpopProof => Some("invalid_dpop_proof"),
        crate::AuthErrorKind::DpopNonceRequired => Some("use_dpop_nonce"),
        _ => None,
    }
}

/// One fixed body per status (a server's own setup mistakes aside, which name the fix): the
/// body is never an oracle for why a credential failed.
fn problem_body(status: StatusCode, kind: crate::AuthErrorKind) -> &'static [u8] {
    use crate::AuthErrorKind;
    match (status, kind) {
        (_, AuthErrorKind::GuardMissing) => {
            return br#"{"type":"about:blank","title":"Internal Server Error","status":500,"detail":"callguard: a route that requires scopes has no GuardLayer in front of it"}"#;
        }
        (_, AuthErrorKind::GuardStacked) => {
            return br#"{"type":"about:blank","title":"Internal Server Error","status":500,"detail":"callguard: a second GuardLayer on a request another one accepted; put every method into one any_of"}"#;
        }
        (_, AuthErrorKind::ClientAddrMissing) => {
            return br#"{"type":"about:blank","title":"Internal Server Error","status":500,"detail":"callguard: no client address on the request; put a ClientAddrLayer in front"}"#;
        }
        _ => {}
    }
    match status {
        StatusCode::UNAUTHORIZED => {
            br#"{"type":"about:blank","title":"Unauthorized","status":401,"detail":"missing or invalid credentials"}"#
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            br#"{"type":"about:blank","title":"Content Too Large","status":413,"detail":"request body exceeds the limit"}"#
        }
        StatusCode::BAD_REQUEST => {
            br#"{"type":"about:blank","title":"Bad Request","status":400,"detail":"request body could not be read"}"#
        }
        StatusCode::REQUEST_TIMEOUT => {
            br#"{"type":"about:blank","title":"Request Timeout","status":408,"detail":"the request body stopped arriving"}"#
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            br#"{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"the request cannot be checked right now"}"#
        }
        StatusCode::FORBIDDEN => {
            br#"{"type":"about:blank","title":"Forbidden","status":403,"detail":"the credentials do not allow this request"}"#
        }
        StatusCode::INTERNAL_SERVER_ERROR => {
            br#"{"type":"about:blank","title":"Internal Server Error","status":500,"detail":"callguard: the server is set up wrongly; its log says how"}"#
        }
        StatusCode::TOO_MANY_REQUESTS => {
            br#"{"type":"about:blank","title":"Too Many Requests","status":429,"detail":"too many attempts; retry after the time given"}"#
        }
        _ => br#"{"type":"about:blank","title":"Request Refused"}"#,
    }
}

/// Log the reason, build the response, attach the error: the one path every rejection takes.
pub(crate) fn respond<R: Reject, ResBody: From<Bytes>>(
    responder: &R,
    log: &RejectionLog,
    path: &str,
    error: AuthError,
) -> Response<ResBody> {
    log.record(&error, path);
    response(responder, error)
}

/// Build the response for `error` and attach the error, without logging it (a handler that
/// answers with an [`AuthError`] itself decides what to log).
pub(crate) fn response<R: Reject, ResBody: From<Bytes>>(
    responder: &R,
    error: AuthError,
) -> Response<ResBody> {
    let mut response = responder.reject(&error).map(ResBody::from);
    response.extensions_mut().insert(error);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{AuthErrorKind, Challenges};

    fn signature_error(kind: AuthErrorKind) -> AuthError {
        AuthError::new(kind, Challenges::one(ChallengeScheme::Signature))
    }

    #[test]
    fn every_401_has_the_same_body() {
        let responder = ProblemDetails::default();
        let bodies: Vec<_> = [
            AuthErrorKind::MissingCredentials,
            AuthErrorKind::InvalidCredentials,
            AuthErrorKind::MalformedTimestamp,
            AuthErrorKind::DuplicateHeader,
        ]
        .into_iter()
        .map(|kind| responder.reject(&signature_error(kind)).into_body())
        .collect();
        assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn bearer_challenge_names_invalid_token_only_when_a_token_was_sent() {
        let responder = ProblemDetails::with_realm("tools").unwrap();
        let bearer = Challenges::one(ChallengeScheme::Bearer);
        let missing = responder.reject(&AuthError::new(AuthErrorKind::MissingCredentials, bearer));
        assert_eq!(
            missing.headers()[WWW_AUTHENTICATE],
            "Bearer realm=\"tools\""
        );
        let invalid = responder.reject(&AuthError::new(AuthErrorKind::InvalidCredentials, bearer));
        assert_eq!(
            invalid.headers()[WWW_AUTHENTICATE],
            "Bearer realm=\"tools\", error=\"invalid_token\""
        );
    }

    #[test]
    fn one_challenge_per_scheme() {
        let all = Challenges::one(ChallengeScheme::Signature)
            .union(Challenges::one(ChallengeScheme::Bearer))
            .union(Challenges::one(ChallengeScheme::Basic));
        let response = ProblemDetails::default()
            .reject(&AuthError::new(AuthErrorKind::MissingCredentials, all));
        assert_eq!(
            response.headers().get_all(WWW_AUTHENTICATE).iter().count(),
            3
        );
    }

    #[test]
    fn oversized_body_is_413_without_challenge() {
        let response =
            ProblemDetails::default().reject(&signature_error(AuthErrorKind::BodyTooLarge));
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(response.headers().get(WWW_AUTHENTICATE).is_none());
    }

    #[test]
    fn realm_with_quote_is_refused() {
        assert!(ProblemDetails::with_realm("a\"b").is_err());
        assert!(ProblemDetails::with_realm("").is_err());
    }

    #[test]
    fn respond_attaches_the_error() {
        let response: Response<Bytes> = respond(
            &ProblemDetails::default(),
            &RejectionLog::new("test"),
            "/hook",
            signature_error(AuthErrorKind::InvalidCredentials),
        );
        assert_eq!(
            response
                .extensions()
                .get::<AuthError>()
                .map(AuthError::kind),
            Some(AuthErrorKind::InvalidCredentials)
        );
    }
}

pin_project_lite::pin_project! {
    /// The response future of a layer that lets a request through or refuses it at once
    /// (a scope requirement, an allow-list): the inner service's answer, or the refusal.
    pub struct GateFuture<F, ResBody> {
        #[pin]
        kind: GateKind<F, ResBody>,
    }
}

pin_project_lite::pin_project! {
    #[project = GateKindProj]
    enum GateKind<F, ResBody> {
        Inner { #[pin] future: F },
        Refused { response: Option<Response<ResBody>> },
    }
}

impl<F, ResBody> GateFuture<F, ResBody> {
    /// The inner service's answer.
    pub(crate) fn inner(future: F) -> Self {
        Self {
            kind: GateKind::Inner { future },
        }
    }

    /// A refusal, answered at once.
    pub(crate) fn refused(response: Response<ResBody>) -> Self {
        Self {
            kind: GateKind::Refused {
                response: Some(response),
            },
        }
    }
}

impl<F, ResBody, E> std::future::Future for GateFuture<F, ResBody>
where
    F: std::future::Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.project().kind.project() {
            GateKindProj::Inner { future } => future.poll(cx),
            GateKindProj::Refused { response } => {
                std::task::Poll::Ready(Ok(response.take().expect("future polled after completion")))
            }
        }
    }
}

impl<F, ResBody> std::fmt::Debug for GateFuture<F, ResBody> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GateFuture")
    }
}
