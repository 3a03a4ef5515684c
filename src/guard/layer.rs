//! The layer: configuration only.

use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::service::Guard;
use crate::authenticator::Authenticator;
use crate::error::{ConfigError, check_token_text};
use crate::reject::{ProblemDetails, Reject};
use crate::rejection_log::RejectionLog;

/// The default body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// A `tower` layer that admits only requests that authenticate, and puts the resolved
/// [`Caller`](crate::Caller) into their extensions.
///
/// ```
/// use callguard::{GuardLayer, Secret, signature::SignatureVerifier};
///
/// let verifier = SignatureVerifier::builder()
///     .secret("k1", Secret::from_utf8("0123456789abcdef0123")?)
///     .build()?;
/// let layer = GuardLayer::new(verifier).body_limit(64 * 1024);
/// # Ok::<(), callguard::ConfigError>(())
/// ```
#[must_use]
#[derive(Debug, Clone)]
pub struct GuardLayer<R = ProblemDetails> {
    pub(crate) shared: Shared<R>,
}

/// What the layer and every service and future it makes share.
#[derive(Debug, Clone)]
pub(crate) struct Shared<R> {
    pub(crate) authenticator: Authenticator,
    /// The authenticator's challenges, worked out once: every refusal carries them.
    pub(crate) challenges: crate::reject::Challenges,
    pub(crate) body_limit: usize,
    pub(crate) body_timeout: Option<Duration>,
    pub(crate) optional: bool,
    pub(crate) responder: R,
    pub(crate) log: RejectionLog,
    pub(crate) implications: Option<Arc<crate::scope::ScopeImplications>>,
    /// Failed attempts counted per client, and locked out past the limit.
    pub(crate) failures: Option<crate::limit::FailureLimit>,
    /// Requests per accepted caller, past which the guard answers 429.
    pub(crate) rate: Option<crate::limit::RateLimit>,
}

impl<R> Shared<R> {
    /// The caller as the guard hands it on: with implied scopes, when configured.
    #[inline]
    pub(crate) fn accepted(&self, caller: crate::Caller) -> crate::Caller {
        match &self.implications {
            Some(implications) => caller.with_implied_scopes(implications),
            None => caller,
        }
    }
}

impl<R> Shared<R> {
    /// Whether an acceptance of the request whose head is `parts` owes the guard nothing of
    /// its own: no rate limit to consult and no attempt charged in advance to refund.
    #[inline]
    pub(crate) fn owes_nothing(&self, parts: &http::request::Parts) -> bool {
        self.rate.is_none()
            && (self.failures.is_none()
                || parts
                    .extensions
                    .get::<crate::limit::ChargedAttempt>()
                    .is_none())
    }

    /// What an accepted `caller` owes: the refund of a charged attempt (taken out of
    /// `parts`) first, then the method's own steps, then its rate limit, when the guard
    /// has one (so a replay or a revoked token is refused before it spends the caller's
    /// quota).
    #[inline]
    pub(crate) fn owed(
        &self,
        parts: &mut http::request::Parts,
        caller: &crate::Caller,
        owed: super::Owed,
    ) -> super::Owed {
        let owed = match &self.rate {
            Some(limit) => owed.then(super::StoreStep::Rate(limit.step(caller)).into()),
            None => owed,
        };
        match self.refund(parts) {
            Some(refund) => owed.after(super::StoreStep::Refund(refund)),
            None => owed,
        }
    }

    /// Refund the attempt `parts` carries a charge for, if it does, on the runtime when the
    /// store answers later: its request went away undecided.
    pub(crate) fn refund_dropped(&self, parts: &http::request::Parts) {
        let Some(limit) = &self.failures else { return };
        let Some(charged) = parts.extensions.get::<crate::limit::ChargedAttempt>() else {
            return;
        };
        if let Some(client) = crate::ClientAddr::of(parts) {
            super::future::finish_detached(limit.refund(client, charged.0));
        }
    }

    /// The refund a charged attempt is owed, when `parts` carries one (taken out), and the
    /// store cannot make it at once.
    pub(crate) fn refund(
        &self,
        parts: &mut http::request::Parts,
    ) -> Option<crate::replay::StoreFuture<crate::limit::FailureState>> {
        // Only a guard with a failure limit charges: the others never look.
        let limit = self.failures.as_ref()?;
        let charged = parts.extensions.remove::<crate::limit::ChargedAttempt>()?;
        let mut refund = limit.refund(crate::ClientAddr::of(parts)?, charged.0);
        match refund.now() {
            Some(Err(error)) => {
                tracing::error!(%error, "callguard could not uncount an accepted attempt; it counts as a failure until its window ends");
                None
            }
            Some(Ok(_)) => None,
            None => Some(refund),
        }
    }
}

impl<R: Reject> Shared<R> {
    /// The rejection response for a request to `path`, through the one rejection path.
    pub(crate) fn respond<ResBody: From<bytes::Bytes>>(
        &self,
        path: &str,
        error: crate::AuthError,
    ) -> http::Response<ResBody> {
        #[cfg(feature = "dpop")]
        let error = match self.authenticator.dpop() {
            Some(dpop)
                if error
                    .challenges()
                    .contains(crate::reject::ChallengeScheme::DPoP) =>
            {
                let nonce = dpop.fresh_nonce().map(Into::into);
                error.with_dpop(dpop.algorithms_arc(), nonce)
            }
            _ => error,
        };
        crate::reject::respond(&self.responder, &self.log, path, error)
    }
}

impl<R> Shared<R> {
    /// A fresh DPoP server nonce for an accepted request's response, when the guard's DPoP
    /// configuration requires nonces (RFC 9449 §8.2: the client keeps the newest).
    #[cfg(feature = "dpop")]
    pub(crate) fn dpop_nonce(&self) -> Option<http::HeaderValue> {
        let nonce = self.authenticator.dpop()?.fresh_nonce()?;
        http::HeaderValue::try_from(nonce).ok()
    }
}

/// The default time a body may take to arrive once it has stalled: 30 seconds.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

impl GuardLayer {
    /// A guard that requires `authenticator` to accept every request, with
    /// [`ProblemDetails`] rejections and the authenticator's
    /// [default body limit](Authenticator::default_body_limit): 1 MiB, or the largest body
    /// a preset's platform delivers (GitHub: 25 MB).
    pub fn new(authenticator: impl Into<Authenticator>) -> Self {
        let authenticator = authenticator.into();
        Self {
            shared: Shared {
                log: RejectionLog::new(authenticator.name()),
                challenges: authenticator.challenges(),
                implications: None,
                failures: None,
                rate: None,
                body_limit: authenticator.default_body_limit(),
                authenticator,
                body_timeout: cfg!(feature = "timeout").then_some(DEFAULT_BODY_TIMEOUT),
                optional: false,
                responder: ProblemDetails::default(),
            },
        }
    }
}

impl<R> GuardLayer<R> {
    /// Count the failed attempts of each client (a credential presented and wrong, by
    /// [`ClientAddr`](crate::ClientAddr)); past the limit, answer 429 with `Retry-After`
    /// without checking the credential, for the rest of the window, then for twice as long
    /// each time, up to the cap. Needs a `ClientAddr` on every request (a
    /// [`ClientAddrLayer`](crate::client::ClientAddrLayer) in front, or the server's own):
    /// without one the guard answers 500.
    ///
    /// Failures are counted per address; with
    /// [`per_account`](crate::limit::FailureLimitBuilder::per_account), per account as well,
    /// in a way that only holds back addresses that have failed themselves.
    pub fn failure_limit(mut self, limit: crate::limit::FailureLimit) -> Self {
        self.shared.failures = Some(limit);
        self
    }

    /// Limit how often each accepted caller (by method and id) may call through this guard:
    /// past the limit, 429 with `Retry-After`, `RateLimit-Policy` and `RateLimit`. The
    /// decision is a store step of the accepted request, taken before its replay record is
    /// made, so a refused delivery can be retried.
    pub fn rate_limit(mut self, limit: crate::limit::RateLimit) -> Self {
        self.shared.rate = Some(limit);
        self
    }

    /// Name this guard in the log of the requests it refuses (default: the methods' names,
    /// such as `github` for the GitHub preset, or `tools+bearer+jwt` for `any_of`).
    ///
    /// ```
    /// use callguard::{GuardLayer, providers};
    ///
    /// let github = providers::github().signing_secret("k1", "a-webhook-secret-0123").build()?;
    /// let layer = GuardLayer::new(github).named("github-deliveries")?;
    /// assert_eq!(layer.name(), "github-deliveries");
    /// # Ok::<(), callguard::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] for a name that is empty or holds quotes, backslashes or
    /// non-printable characters.
    pub fn named(mut self, name: &str) -> Result<Self, ConfigError> {
        check_token_text(name, "guard name")?;
        self.shared.log = RejectionLog::new(name);
        Ok(self)
    }

    /// Widen every accepted caller's scopes by `implications` (`mcp:admin` implying
    /// `mcp:call`, say), so scope checks behind the guard honour the hierarchy.
    pub fn scope_implications(mut self, implications: crate::scope::ScopeImplications) -> Self {
        self.shared.implications = (!implications.is_empty()).then(|| Arc::new(implications));
        self
    }

    /// The name this guard's rejections are logged under.
    pub fn name(&self) -> &str {
        self.shared.log.name()
    }

    /// The most body bytes this guard reads (see [`GuardLayer::body_limit`]).
    pub fn max_body(&self) -> usize {
        self.shared.body_limit
    }

    /// The most body bytes a method that reads the body will accept (default 1 MiB, or the
    /// largest body a preset's platform delivers). A larger
    /// declared `Content-Length` is refused with 413 before reading; a body that grows past it
    /// while streaming is refused with 413 as soon as it does. Memory follows the bytes that
    /// actually arrive, whatever the limit (`usize::MAX` means no limit) and whatever
    /// `Content-Length` claims.
    ///
    /// In axum, the `Bytes` and `Json` extractors have a limit of their own (2 MB by
    /// default): raise it too with `axum::extract::DefaultBodyLimit::max` when raising this
    /// one (GitHub deliveries reach 25 MB), or the guard verifies a body the handler then
    /// refuses.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.shared.body_limit = bytes;
        self
    }

    /// Give up on a body that is still arriving `timeout` after the guard first had to wait
    /// for it, answering 408 (default 30 s). The timer starts only if the body stalls, and
    /// needs tokio's time driver (hyper and axum servers have it).
    #[cfg(feature = "timeout")]
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.shared.body_timeout = Some(timeout);
        self
    }

    /// Wait for bodies as long as they take.
    pub fn without_body_timeout(mut self) -> Self {
        self.shared.body_timeout = None;
        self
    }

    /// Let requests that carry no credential at all through with no [`Caller`](crate::Caller);
    /// requests with a credential that fails are still refused.
    pub fn optional(mut self) -> Self {
        self.shared.optional = true;
        self
    }

    /// Build rejection responses with `responder` instead of [`ProblemDetails`].
    pub fn on_reject<R2: Reject>(self, responder: R2) -> GuardLayer<R2> {
        let Shared {
            authenticator,
            challenges,
            body_limit,
            body_timeout,
            optional,
            log,
            implications,
            failures,
            rate,
            ..
        } = self.shared;
        GuardLayer {
            shared: Shared {
                authenticator,
                challenges,
                body_limit,
                body_timeout,
                optional,
                responder,
                log,
                implications,
                failures,
                rate,
            },
        }
    }
}

impl<S, R: Clone> Layer<S> for GuardLayer<R> {
    type Service = Guard<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        Guard {
            inner,
            shared: Arc::new(self.shared.clone()),
        }
    }
}
