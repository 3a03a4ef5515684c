#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod authenticator;
mod authorization;
pub mod basic;
pub mod bearer;
mod bearer_router;
mod caller;
mod client;
pub mod clock;
pub(crate) mod ct;
pub mod custom;
pub mod dangerous;
pub mod delegation;
mod document;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod guard;
mod json;
#[cfg(feature = "jwt")]
mod jws;
#[cfg(feature = "jwt")]
pub mod jwt;
#[cfg(feature = "oauth")]
pub mod keys;
pub mod mcp;
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
pub use caller::{Actor, AuthMethod, Caller, Claims, ClaimsError, Scopes};
pub use client::ClientAddr;
pub use error::{AuthError, AuthErrorKind, Cause, ChallengeScheme, Challenges, ConfigError};
#[cfg(feature = "axum")]
pub use extract::{ClaimsRejection, MissingCaller, TypedClaims};
pub use guard::{
    DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT, Guard, GuardFuture, GuardLayer, GuardedBody,
};
pub use rejection_log::REJECTION_LOG_LINES_PER_SECOND;
pub use secret::Secret;
