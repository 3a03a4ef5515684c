//! What an accepted request still owes a store before its service runs: revocation and
//! replay lookups, a DPoP proof's `jti`, a rate limit, a charged attempt's refund. Each method
//! adds its steps to one list; the guard future awaits them in order, one state for all.

use std::sync::{Arc, OnceLock};

use crate::error::AuthErrorKind;
use crate::replay::{RecordId, ReplayKey, ReplayPolicy, ReplayStore, StoreFuture};

/// One store lookup an accepted request waits for before its service runs.
pub(crate) enum StoreStep {
    /// Refused when the denylist holds the token's `jti`.
    #[cfg(feature = "jwt")]
    Revocation(crate::jwt::RevocationCheck),
    /// Refused when the delivery was seen within its window (and recorded otherwise).
    Replay(crate::signature::PendingReplay),
    /// Refused when a DPoP proof's `jti` was seen within the proof's window (and recorded
    /// otherwise, for good: a used proof is never released).
    #[cfg(feature = "dpop")]
    ProofJti(crate::signature::PendingReplay),
    /// Refused when the caller is past its rate limit (and counted otherwise).
    Rate(crate::limit::RateStep),
    /// A charged attempt that was accepted, uncounted (never refuses).
    Refund(StoreFuture<crate::limit::FailureState>),
}

/// The store steps owed, in the order they run.
#[derive(Default)]
pub(crate) struct Owed(Vec<StoreStep>);

impl Owed {
    /// Nothing owed: the service runs at once (no allocation).
    pub(crate) fn none() -> Self {
        Self(Vec::new())
    }

    /// `step`, then these steps.
    #[must_use]
    pub(crate) fn after(mut self, step: StoreStep) -> Self {
        self.0.insert(0, step);
        self
    }

    /// These steps, then `later`'s.
    #[must_use]
    pub(crate) fn then(mut self, later: Owed) -> Self {
        self.0.extend(later.0);
        self
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The steps last first, for popping in order.
    pub(crate) fn into_stack(mut self) -> Vec<StoreStep> {
        self.0.reverse();
        self.0
    }
}

impl From<StoreStep> for Owed {
    fn from(step: StoreStep) -> Self {
        Self(vec![step])
    }
}

/// A delivery recorded in a replay store, to release if the inner service fails, so that
/// the platform's retry of it is not refused as a replay.
pub(crate) struct Recorded {
    pub(crate) store: Arc<dyn ReplayStore>,
    pub(crate) key: ReplayKey,
    pub(crate) record: RecordId,
    pub(crate) release_on: fn(http::StatusCode) -> bool,
}

/// A store lookup under way: the answer that refuses, the reason then, and the record it
/// makes.
pub(crate) struct Started {
    pub(crate) store: StoreFuture,
    pub(crate) policy: ReplayPolicy,
    pub(crate) refuse_on: bool,
    pub(crate) refusal: AuthErrorKind,
    pub(crate) records: Option<Recorded>,
    /// For a rate limit: the seconds to wait, filled in by the answer, and the limit's
    /// quota and period (seconds) for the `RateLimit` fields.
    pub(crate) rate: Option<(Arc<OnceLock<crate::limit::RateState>>, u32, u64)>,
    /// Whether the lookup is finished even when its request goes away (a refund).
    pub(crate) finish_when_dropped: bool,
}

impl StoreStep {
    pub(crate) fn start(self) -> Started {
        match self {
            #[cfg(feature = "jwt")]
            Self::Revocation(check) => Started {
                store: check.store.contains(check.key),
                policy: check.policy,
                refuse_on: true,
                refusal: AuthErrorKind::TokenRevoked,
                records: None,
                rate: None,
                finish_when_dropped: false,
            },
            Self::Replay(replay) => {
                let record = RecordId::new();
                Started {
                    store: replay.store.first_seen(replay.key, record, replay.window),
                    policy: replay.policy,
                    refuse_on: false,
                    refusal: AuthErrorKind::Replayed,
                    records: Some(Recorded {
                        store: replay.store,
                        key: replay.key,
                        record,
                        release_on: replay.release_on,
                    }),
                    rate: None,
                    finish_when_dropped: false,
                }
            }
            #[cfg(feature = "dpop")]
            Self::ProofJti(proof) => Started {
                store: proof
                    .store
                    .first_seen(proof.key, RecordId::new(), proof.window),
                policy: proof.policy,
                refuse_on: false,
                refusal: AuthErrorKind::InvalidDpopProof,
                records: None,
                rate: None,
                finish_when_dropped: false,
            },
            Self::Rate(step) => {
                let answered = Arc::new(OnceLock::new());
                let (policy, quota) = (step.policy, step.rule.quota);
                let period = step.rule.period_ms.div_ceil(1000);
                Started {
                    store: step.start(Arc::clone(&answered)),
                    policy,
                    refuse_on: true,
                    refusal: AuthErrorKind::RateLimited,
                    records: None,
                    rate: Some((answered, quota, period)),
                    finish_when_dropped: false,
                }
            }
            Self::Refund(refund) => Started {
                store: StoreFuture::pending(async move {
                    if let Err(error) = refund.await {
                        tracing::error!(%error, "callguard could not uncount an accepted attempt; it counts as a failure until its window ends");
                    }
                    Ok(false)
                }),
                policy: ReplayPolicy::FailClosed,
                refuse_on: true,
                refusal: AuthErrorKind::StoreUnavailable,
                records: None,
                rate: None,
                finish_when_dropped: true,
            },
        }
    }
}
