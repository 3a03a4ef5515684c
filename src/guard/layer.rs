//! The layer: configuration only.

use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::service::Guard;
use crate::authenticator::Authenticator;
use crate::reject::{ProblemDetails, Reject};

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
    pub(crate) body_limit: usize,
    pub(crate) body_timeout: Option<Duration>,
    pub(crate) optional: bool,
    pub(crate) responder: R,
}

/// The default time a body may take to arrive once it has stalled: 30 seconds.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

impl GuardLayer {
    /// A guard that requires `authenticator` to accept every request, with a 1 MiB body
    /// limit and [`ProblemDetails`] rejections.
    pub fn new(authenticator: impl Into<Authenticator>) -> Self {
        Self {
            shared: Shared {
                authenticator: authenticator.into(),
                body_limit: DEFAULT_BODY_LIMIT,
                body_timeout: cfg!(feature = "timeout").then_some(DEFAULT_BODY_TIMEOUT),
                optional: false,
                responder: ProblemDetails::default(),
            },
        }
    }
}

impl<R> GuardLayer<R> {
    /// The most body bytes a method that reads the body will accept (default 1 MiB). A larger
    /// declared `Content-Length` is refused with 413 before reading; a body that grows past it
    /// while streaming is refused with 413 as soon as it does.
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
            body_limit,
            body_timeout,
            optional,
            ..
        } = self.shared;
        GuardLayer {
            shared: Shared {
                authenticator,
                body_limit,
                body_timeout,
                optional,
                responder,
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
