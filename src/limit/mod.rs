//! Abuse controls: who may call at all ([`AllowList`]), and, next, how often.
//!
//! Every control reads the one [`ClientAddr`](crate::ClientAddr) a
//! [`ClientAddrLayer`](crate::client::ClientAddrLayer) (or the server) put into the request,
//! and answers through the same rejection path as the guard.

mod allow;
mod codes;
mod failures;
pub(crate) mod memory;
mod rate;

pub use allow::{AllowList, AllowListLayer, AllowListService};
pub use codes::{CodeCheck, CodeEntry, CodeError, CodeSender, OneTimeCodes, OneTimeCodesBuilder};
pub(crate) use failures::ChargedAttempt;
pub use failures::{
    FailureEntry, FailureLimit, FailureLimitBuilder, FailureRule, FailureState, FailureStep,
};
pub(crate) use rate::RateStep;
pub use rate::{RateEntry, RateLimit, RateLimitBuilder, RateRule, RateState, RateStatus};
