#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod authenticator;
mod authorization;
pub mod basic;
pub mod bearer;
mod bearer_router;
mod caller;
pub mod client;
pub mod clock;
pub(crate) mod ct;
pub mod custom;
pub mod dangerous;
pub mod delegation;
pub mod document;
#[cfg(feature = "dpop")]
pub mod dpop;
mod error;
#[cfg(feature = "axum")]
mod extract;
pub mod guard;
mod json;
#[cfg(feature = "jwt")]
mod jws;
#[cfg(feature = "jwt")]
pub mod jwt;
#[cfg(feature = "keys")]
pub mod keys;
pub mod limit;
pub mod mcp;
#[cfg(feature = "mtls")]
pub mod mtls;
#[cfg(feature = "oauth")]
pub mod oauth;
pub mod providers;
mod public_url;
pub mod reject;
mod rejection_log;
pub mod replay;
#[cfg(feature = "redis")]
pub mod replay_redis;
pub mod scope;
mod secret;
pub mod signature;
mod token_set;

pub use authenticator::Authenticator;
pub use caller::{Actor, AuthMethod, Caller, Claims, ClaimsError, Confirmation, Scopes};
pub use client::ClientAddr;
pub use error::{AuthError, AuthErrorKind, Cause, ConfigError};
#[cfg(feature = "axum")]
pub use extract::{ClaimsRejection, MissingCaller, TypedClaims};
pub use guard::GuardLayer;
pub use secret::Secret;

/// Moved to [`guard::Guard`].
#[deprecated(since = "0.2.0", note = "use callguard::guard::Guard")]
pub type Guard<S, R = reject::ProblemDetails> = guard::Guard<S, R>;
/// Moved to [`guard::GuardFuture`].
#[deprecated(since = "0.2.0", note = "use callguard::guard::GuardFuture")]
pub type GuardFuture<S, B, R> = guard::GuardFuture<S, B, R>;
/// Moved to [`guard::GuardedBody`].
#[deprecated(since = "0.2.0", note = "use callguard::guard::GuardedBody")]
pub type GuardedBody<B> = guard::GuardedBody<B>;
/// Moved to [`guard::DEFAULT_BODY_LIMIT`].
#[deprecated(since = "0.2.0", note = "use callguard::guard::DEFAULT_BODY_LIMIT")]
pub const DEFAULT_BODY_LIMIT: usize = guard::DEFAULT_BODY_LIMIT;
/// Moved to [`guard::DEFAULT_BODY_TIMEOUT`].
#[deprecated(since = "0.2.0", note = "use callguard::guard::DEFAULT_BODY_TIMEOUT")]
pub const DEFAULT_BODY_TIMEOUT: std::time::Duration = guard::DEFAULT_BODY_TIMEOUT;
/// Moved to [`reject::Challenges`].
#[deprecated(since = "0.2.0", note = "use callguard::reject::Challenges")]
pub type Challenges = reject::Challenges;
/// Moved to [`reject::ChallengeScheme`].
#[deprecated(since = "0.2.0", note = "use callguard::reject::ChallengeScheme")]
pub type ChallengeScheme = reject::ChallengeScheme;
/// Moved to [`reject::REJECTION_LOG_LINES_PER_SECOND`].
#[deprecated(
    since = "0.2.0",
    note = "use callguard::reject::REJECTION_LOG_LINES_PER_SECOND"
)]
pub const REJECTION_LOG_LINES_PER_SECOND: u32 = reject::REJECTION_LOG_LINES_PER_SECOND;
