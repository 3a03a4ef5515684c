//! The tower plumbing shared by every method: one layer, one service, one future, one body.

mod body;
mod body_check;
pub(crate) mod deadline;
mod future;
mod layer;
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
#[cfg(feature = "jwt")]
pub(crate) use owed::StoreStep;
pub use service::Guard;
pub(crate) use service::ReadyInner;
