//! Requiring scopes per route: a small layer for `route_layer`, and the same check for
//! handlers on [`Caller`].
//!
//! ```
//! use axum::{Router, routing::post};
//! use callguard::{GuardLayer, Secret, bearer::BearerTokens, scope::RequireScopesLayer, Scopes};
//!
//! let tokens = BearerTokens::builder()
//!     .token("agent", Secret::from_utf8("tok_0123456789abcdef")?, Scopes::from_iter(["orders:read"]))
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/orders", post(|| async { "created" }))
//!     .route_layer(RequireScopesLayer::new(["orders:write"])?)
//!     .route_layer(GuardLayer::new(tokens));
//! # Ok::<(), callguard::ConfigError>(())
//! ```
//!
//! The guard must run first (axum applies the last `route_layer` outermost). Without one,
//! the scope layer answers 500 naming the setup mistake; behind a guard in optional mode it
//! answers 401 for an anonymous request.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::caller::{Caller, Scopes};
use crate::error::{AuthError, AuthErrorKind, Challenges, ConfigError, check_token_text};
use crate::reject::{GateFuture, ProblemDetails, Reject, respond};
use crate::rejection_log::RejectionLog;

/// Marks a request that a guard in optional mode let through without credentials.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AnonymousPass(pub(crate) Challenges);

/// Requires every listed scope of the request's [`Caller`]: 403 with
/// `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"` naming all of them (the
/// operation's whole requirement, as the MCP authorization spec asks).
#[must_use]
#[derive(Debug, Clone)]
pub struct RequireScopesLayer<R = ProblemDetails> {
    required: Arc<[Box<str>]>,
    responder: R,
    log: RejectionLog,
}

impl RequireScopesLayer {
    /// Require all of `scopes`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] for an empty list or a scope that is empty, holds a
    /// space, a quote or non-printable characters.
    pub fn new<S: AsRef<str>>(scopes: impl IntoIterator<Item = S>) -> Result<Self, ConfigError> {
        let required: Vec<Box<str>> = scopes.into_iter().map(|s| Box::from(s.as_ref())).collect();
        if required.is_empty() {
            return Err(ConfigError::InvalidValue { field: "scope" });
        }
        for scope in &required {
            check_token_text(scope, "scope")?;
            if scope.contains(' ') {
                return Err(ConfigError::InvalidValue { field: "scope" });
            }
        }
        Ok(Self {
            log: RejectionLog::new(format!("scopes:{}", required.join(","))),
            required: required.into(),
            responder: ProblemDetails::default(),
        })
    }
}

impl<R> RequireScopesLayer<R> {
    /// Build refusals with `responder` instead of [`ProblemDetails`].
    pub fn on_reject<R2: Reject>(self, responder: R2) -> RequireScopesLayer<R2> {
        RequireScopesLayer {
            required: self.required,
            responder,
            log: self.log,
        }
    }
}

impl<S, R: Clone> Layer<S> for RequireScopesLayer<R> {
    type Service = RequireScopes<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScopes {
            inner,
            required: Arc::clone(&self.required),
            responder: self.responder.clone(),
            log: self.log.clone(),
        }
    }
}

/// The service made by [`RequireScopesLayer`].
#[derive(Debug, Clone)]
pub struct RequireScopes<S, R = ProblemDetails> {
    inner: S,
    required: Arc<[Box<str>]>,
    responder: R,
    log: RejectionLog,
}

impl<S, R> RequireScopes<S, R> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming this one.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, R, B, ResBody> Service<Request<B>> for RequireScopes<S, R>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
    R: Reject,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = RequireScopesFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let extensions = request.extensions();
        let refusal = match extensions.get::<Caller>() {
            Some(caller) => caller
                .require_scopes(self.required.iter().map(|s| &**s))
                .err(),
            None => Some(match extensions.get::<AnonymousPass>() {
                Some(AnonymousPass(challenges)) => {
                    AuthError::new(AuthErrorKind::MissingCredentials, *challenges)
                }
                None => {
                    tracing::error!(
                        "callguard: a route requires scopes but no GuardLayer authenticated the request"
                    );
                    AuthError::new(AuthErrorKind::GuardMissing, Challenges::default())
                }
            }),
        };
        match refusal {
            Some(error) => GateFuture::refused(respond(
                &self.responder,
                &self.log,
                request.uri().path(),
                error,
            )),
            None => GateFuture::inner(self.inner.call(request)),
        }
    }
}

/// The response future of [`RequireScopes`]: the inner service's answer, or the refusal.
pub type RequireScopesFuture<F, ResBody> = crate::reject::GateFuture<F, ResBody>;

/// Scopes that imply others: a broader scope (`mcp:admin`) grants narrower ones
/// (`mcp:call`, `refunds:write`). Given to a guard with
/// [`GuardLayer::scope_implications`](crate::GuardLayer::scope_implications), it widens every
/// accepted caller's scopes, so [`RequireScopesLayer`] and [`Caller::require_scopes`] honour
/// it alike. Implications are followed transitively.
///
/// ```
/// use callguard::Scopes;
/// use callguard::scope::ScopeImplications;
///
/// let implications = ScopeImplications::new()
///     .implies("mcp:admin", ["mcp:call", "refunds:write"])?
///     .implies("refunds:write", ["refunds:read"])?;
/// let granted = implications.expand(&Scopes::from_iter(["mcp:admin"]));
/// assert_eq!(granted.iter().collect::<Vec<_>>(), ["mcp:admin", "mcp:call", "refunds:read", "refunds:write"]);
/// # Ok::<(), callguard::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ScopeImplications {
    rules: Vec<(Box<str>, Vec<Box<str>>)>,
}

impl ScopeImplications {
    /// No implications.
    pub fn new() -> Self {
        Self::default()
    }

    /// `broad` grants every one of `narrower` too.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] for a scope that is empty, holds a space, a quote or
    /// non-printable characters.
    pub fn implies<S: AsRef<str>>(
        mut self,
        broad: &str,
        narrower: impl IntoIterator<Item = S>,
    ) -> Result<Self, ConfigError> {
        let valid = |scope: &str| {
            check_token_text(scope, "scope")?;
            if scope.contains(' ') {
                return Err(ConfigError::InvalidValue { field: "scope" });
            }
            Ok(Box::<str>::from(scope))
        };
        let narrower = narrower
            .into_iter()
            .map(|s| valid(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        self.rules.push((valid(broad)?, narrower));
        Ok(self)
    }

    /// `granted` with everything it implies.
    pub fn expand(&self, granted: &Scopes) -> Scopes {
        let mut all: Vec<&str> = granted.iter().collect();
        let mut at = 0;
        while let Some(scope) = all.get(at).copied() {
            for (broad, narrower) in &self.rules {
                if **broad == *scope {
                    for implied in narrower {
                        if !all.contains(&&**implied) {
                            all.push(implied);
                        }
                    }
                }
            }
            at += 1;
        }
        Scopes::from_iter(all)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}
