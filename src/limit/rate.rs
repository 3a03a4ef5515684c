//! Rate limits for accepted callers: GCRA (the generic cell rate algorithm) per caller, in
//! the one store, as one more store step of an accepted request.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

use crate::caller::Caller;
use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::replay::{ReplayKey, ReplayPolicy, ReplayStore, StoreFuture};

/// The numbers of a rate limit, as a store applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateRule {
    /// Requests allowed per period, on average.
    pub quota: u32,
    /// The period, in milliseconds.
    pub period_ms: u64,
    /// Requests allowed at once (at most the quota).
    pub burst: u32,
}

/// A store's answer to one request under a rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateState {
    /// Whether the request is within the quota (and was counted).
    pub allowed: bool,
    /// Requests left at once after this one.
    pub remaining: u32,
    /// Milliseconds until the whole quota is available again.
    pub reset_ms: u64,
    /// Milliseconds until a refused request would be allowed (0 when allowed).
    pub retry_after_ms: u64,
}

impl RateState {
    /// A state, for stores of your own.
    pub fn new(allowed: bool, remaining: u32, reset_ms: u64, retry_after_ms: u64) -> Self {
        Self {
            allowed,
            remaining,
            reset_ms,
            retry_after_ms,
        }
    }
}

/// What a store keeps per key for a rate limit: the theoretical arrival time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateEntry {
    /// The theoretical arrival time of the next request, in unix milliseconds.
    pub tat_ms: i64,
}

impl RateEntry {
    /// Decide one request at `now_ms` under `rule` (GCRA: each request moves the theoretical
    /// arrival time one emission interval on; a request is allowed while that time stays
    /// within the quota's worth of intervals of now). The one place the arithmetic lives:
    /// the in-memory store runs it, the Redis script is the same steps (tested against it).
    pub fn take(&mut self, rule: RateRule, now_ms: i64) -> RateState {
        let period = i64::try_from(rule.period_ms).unwrap_or(i64::MAX).max(1);
        let quota = i64::from(rule.quota.max(1));
        let interval = (period / quota).max(1);
        let burst = interval.saturating_mul(i64::from(rule.burst.clamp(1, rule.quota.max(1))));
        let tat = self.tat_ms.max(now_ms);
        let next = tat.saturating_add(interval);
        let allowed_at = next.saturating_sub(burst);
        if now_ms < allowed_at {
            let remaining = now_ms.saturating_add(burst).saturating_sub(tat) / interval;
            return RateState::new(
                false,
                u32::try_from(remaining.max(0)).unwrap_or(0),
                (tat - now_ms).unsigned_abs(),
                (allowed_at - now_ms).unsigned_abs(),
            );
        }
        self.tat_ms = next;
        let remaining = now_ms.saturating_add(burst).saturating_sub(next) / interval;
        RateState::new(
            true,
            u32::try_from(remaining.max(0)).unwrap_or(0),
            (next - now_ms).unsigned_abs(),
            0,
        )
    }

    /// When the entry may be forgotten: once its arrival time has passed.
    pub fn forget_at_ms(&self) -> i64 {
        self.tat_ms
    }
}

/// A rate limit for the callers a guard accepts ([`GuardLayer::rate_limit`](crate::GuardLayer::rate_limit)):
/// `quota` requests per period per caller (its method and id: a token's name, a JWT's
/// `sub`, the delegating agent's user), one every `period / quota` on average, up to
/// `burst` at once (default: the whole quota). In any span of one period a caller gets at
/// most `burst + quota - 1`; a burst of 1 makes that the quota exactly. Past it: 429 with
/// `Retry-After`, `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers).
///
/// ```
/// use std::time::Duration;
/// use callguard::limit::RateLimit;
/// use callguard::replay::MemoryReplayStore;
///
/// let limit = RateLimit::builder(MemoryReplayStore::default())
///     .quota(100, Duration::from_secs(60))
///     .build()?;
/// # Ok::<(), callguard::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct RateLimit {
    pub(crate) store: Arc<dyn ReplayStore>,
    pub(crate) rule: RateRule,
    pub(crate) policy: ReplayPolicy,
    pub(crate) clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("rule", &self.rule)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Builds a [`RateLimit`].
pub struct RateLimitBuilder {
    store: Arc<dyn ReplayStore>,
    quota: u32,
    period: Duration,
    burst: Option<u32>,
    policy: ReplayPolicy,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for RateLimitBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitBuilder")
            .field("quota", &self.quota)
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

impl RateLimit {
    /// A limit kept in `store`: by default 60 requests a minute, 503 when the store cannot
    /// answer.
    pub fn builder(store: impl ReplayStore) -> RateLimitBuilder {
        RateLimitBuilder {
            store: Arc::new(store),
            quota: 60,
            period: Duration::from_secs(60),
            burst: None,
            policy: ReplayPolicy::FailClosed,
            clock: Arc::new(SystemClock),
        }
    }

    /// The numbers a store applies.
    pub fn rule(&self) -> RateRule {
        self.rule
    }

    /// The store step an accepted `caller` owes this limit.
    pub(crate) fn step(&self, caller: &Caller) -> RateStep {
        // The caller as precisely as it is known: method, issuer, key (a token's name, a
        // JWT's kid) and id, so two issuers' `sub`s or two keys never share a quota.
        let key = ReplayKey::derive(&[
            b"rate\0",
            caller.method().as_str().as_bytes(),
            b"\0",
            caller.issuer().unwrap_or_default().as_bytes(),
            b"\0",
            caller.key_id().unwrap_or_default().as_bytes(),
            b"\0",
            caller.id().as_bytes(),
        ]);
        let now_ms = self
            .clock
            .now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        RateStep {
            store: Arc::clone(&self.store),
            key,
            rule: self.rule,
            now_ms,
            policy: self.policy,
        }
    }
}

impl RateLimitBuilder {
    /// At most `quota` requests per `period` per caller, all of them at once if need be.
    #[must_use]
    pub fn quota(mut self, quota: u32, period: Duration) -> Self {
        self.quota = quota;
        self.period = period;
        self
    }

    /// At most `burst` requests at once (default: the quota; 1 spaces every request).
    #[must_use]
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = Some(burst);
        self
    }

    /// What to do when the store cannot answer (default: refuse with 503).
    #[must_use]
    pub fn policy(mut self, policy: ReplayPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The clock the limit is timed by (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Validate and build.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] for a quota of 0, a period under one millisecond per
    /// request, or a burst of 0 or over the quota.
    pub fn build(self) -> Result<RateLimit, ConfigError> {
        let burst = self.burst.unwrap_or(self.quota);
        if burst == 0 || burst > self.quota {
            return Err(ConfigError::InvalidValue {
                field: "rate limit: burst (from 1 to the quota)",
            });
        }
        let period_ms = u64::try_from(self.period.as_millis()).unwrap_or(u64::MAX);
        if self.quota == 0 {
            return Err(ConfigError::InvalidValue {
                field: "rate limit: quota (at least 1)",
            });
        }
        if period_ms < u64::from(self.quota) {
            return Err(ConfigError::InvalidValue {
                field: "rate limit: period (at least a millisecond per request)",
            });
        }
        Ok(RateLimit {
            store: self.store,
            rule: RateRule {
                quota: self.quota,
                period_ms,
                burst,
            },
            policy: self.policy,
            clock: self.clock,
        })
    }
}

/// A rate decision an accepted request still owes.
pub(crate) struct RateStep {
    pub(crate) store: Arc<dyn ReplayStore>,
    pub(crate) key: ReplayKey,
    pub(crate) rule: RateRule,
    pub(crate) now_ms: i64,
    pub(crate) policy: ReplayPolicy,
}

impl RateStep {
    /// Ask the store; the answer as the guard's store steps take it (`true`: refused), the
    /// state kept in `answered` for the refusal's or the response's fields.
    pub(crate) fn start(self, answered: Arc<OnceLock<RateState>>) -> StoreFuture {
        let answer = self.store.rate(self.key, self.rule, self.now_ms);
        let refused = move |state: RateState| {
            let _ = answered.set(state);
            !state.allowed
        };
        answer.map(refused)
    }
}

/// Where an accepted caller stands under the guard's rate limit, in the request's
/// extensions (for the handler) and as the `RateLimit-Policy` and `RateLimit` fields of the
/// response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateStatus {
    /// Requests per period.
    pub quota: u32,
    /// The period, in seconds.
    pub period: u64,
    /// Requests left at once.
    pub remaining: u32,
    /// Seconds until the whole quota is available again.
    pub reset: u64,
}

impl RateStatus {
    pub(crate) fn new(quota: u32, period: u64, state: RateState) -> Self {
        Self {
            quota,
            period,
            remaining: state.remaining,
            reset: state.reset_ms.div_ceil(1000),
        }
    }

    /// The two fields (draft-ietf-httpapi-ratelimit-headers), named `callguard`.
    pub(crate) fn fields(&self) -> [(http::HeaderName, String); 2] {
        [
            (
                http::HeaderName::from_static("ratelimit-policy"),
                format!("\"callguard\";q={};w={}", self.quota, self.period),
            ),
            (
                http::HeaderName::from_static("ratelimit"),
                format!("\"callguard\";r={};t={}", self.remaining, self.reset),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_is_available_at_once_then_refills_one_interval_at_a_time() {
        let rule = RateRule {
            quota: 3,
            period_ms: 3000,
            burst: 3,
        };
        let mut entry = RateEntry::default();
        let now = 1_000_000;
        assert_eq!(entry.take(rule, now), RateState::new(true, 2, 1000, 0));
        assert_eq!(entry.take(rule, now), RateState::new(true, 1, 2000, 0));
        assert_eq!(entry.take(rule, now), RateState::new(true, 0, 3000, 0));
        let refused = entry.take(rule, now);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_ms, 1000);
        assert_eq!(
            entry.take(rule, now + 1000),
            RateState::new(true, 0, 3000, 0)
        );
    }

    #[test]
    fn never_more_than_burst_plus_quota_minus_one_in_any_period() {
        // Property, for any spacing and burst: within any span of one period, at most
        // `burst + quota - 1` requests are allowed (the quota exactly with a burst of 1),
        // and a steady caller gets the quota.
        for burst in [1, 2, 5] {
            let rule = RateRule {
                quota: 5,
                period_ms: 1000,
                burst,
            };
            for step in [1, 7, 50, 199, 200, 201, 333] {
                let mut entry = RateEntry::default();
                let allowed: Vec<i64> = (0..20_000)
                    .step_by(step)
                    .filter(|now| entry.take(rule, *now).allowed)
                    .collect();
                let bound = usize::try_from(burst + 5 - 1).unwrap();
                for (i, start) in allowed.iter().enumerate() {
                    let within = allowed[i..]
                        .iter()
                        .take_while(|t| **t < start + 1000)
                        .count();
                    assert!(
                        within <= bound,
                        "burst {burst}, step {step}: {within} from {start}"
                    );
                }
                if step == 1 {
                    // Every millisecond for 20 s: 5 a second, and the first burst.
                    let expected = 20 * 5 + usize::try_from(burst).unwrap() - 1;
                    assert!(
                        allowed.len().abs_diff(expected) <= 1,
                        "{} allowed",
                        allowed.len()
                    );
                }
            }
        }
    }
}
