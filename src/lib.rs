#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod authenticator;
mod caller;
pub mod clock;
pub mod dangerous;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod guard;
pub mod reject;
mod secret;
pub mod signature;

pub use authenticator::Authenticator;
pub use caller::{AuthMethod, Caller, Scopes};
pub use error::{AuthError, AuthErrorKind, ChallengeScheme, Challenges, ConfigError};
#[cfg(feature = "axum")]
pub use extract::MissingCaller;
pub use guard::{DEFAULT_BODY_LIMIT, Guard, GuardFuture, GuardLayer, GuardedBody};
pub use secret::Secret;
