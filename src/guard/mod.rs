//! The tower plumbing shared by every method: one layer ([`GuardLayer`]), one service
//! ([`Guard`]), one future ([`GuardFuture`]) and one body ([`GuardedBody`]).
//!
//! ```
//! use callguard::guard::{DEFAULT_BODY_LIMIT, GuardLayer};
//! use callguard::{Secret, signature::SignatureVerifier};
//! let verifier = SignatureVerifier::builder()
//!     .secret("k1", Secret::from_utf8("0123456789abcdef0123")?)
//!     .build()?;
//! let layer = GuardLayer::new(verifier);
//! assert_eq!(DEFAULT_BODY_LIMIT, 1024 * 1024);
//! # Ok::<(), callguard::ConfigError>(())
//! ```

mod body;
mod body_check;
pub(crate) mod deadline;
mod future;
mod layer;
mod logged_path;
mod owed;
mod service;

pub use body::GuardedBody;
pub(crate) use body::{BodyBuffer, Collect, poll_collect};
pub(crate) use body_check::{BodyCheck, BodyRead};
#[cfg(feature = "axum")]
pub(crate) use future::DefaultRendered;
pub use future::GuardFuture;
#[cfg(feature = "oauth")]
pub(crate) use future::PendingInspection;
pub use layer::{DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT, GuardLayer};
pub(crate) use owed::Owed;
pub(crate) use owed::StoreStep;
pub use service::Guard;
pub(crate) use service::ReadyInner;
