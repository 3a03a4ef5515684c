//! Failed-attempt limits: failures counted per client (not successes); past the limit within
//! a window, the client is answered 429 without its credential being checked, for the rest
//! of the window, and for twice as long each time it comes back, up to a cap. Never for
//! good: a key is forgotten once its lock and window have passed and the cap on top.

use std::sync::Arc;
use std::time::Duration;

use crate::ClientAddr;
use crate::clock::{Clock, SystemClock};
use crate::error::{AuthError, AuthErrorKind, Challenges, ConfigError};
use crate::replay::{ReplayKey, ReplayPolicy, ReplayStore, StoreError, StoreFuture};

/// The numbers of a failure limit, as a store applies them (all in whole seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailureRule {
    /// Failures within one window that lock the key.
    pub max_failures: u32,
    /// The window failures are counted in, in seconds.
    pub window: u64,
    /// The longest lock, in seconds.
    pub max_lockout: u64,
}

/// What a store does to a key's failure count, in one atomic step
/// ([`ReplayStore::failure_step`], [`FailureEntry::step`]).
///
/// A guard takes [`Attempt`](Self::Attempt) before it checks a credential, and then one of
/// the others once the check is decided, so guesses in flight at once from a client that is
/// already failing cannot all pass the lock check before any of them is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureStep {
    /// Before a credential is checked: is the key locked? And, when the key is known (it
    /// failed within its window and the cap after it), count this attempt now
    /// ([`FailureState::charged`]), in a new window when the last one is over; when the
    /// attempts counted already fill the limit (some still in flight), answer locked for a
    /// second. A key that is not known is not changed (nor created): only a client's first
    /// burst of attempts at once is checked before any of them is counted.
    Attempt,
    /// [`Attempt`](Self::Attempt), on a key that is not known too: it is created with this
    /// attempt charged. For a source whose wider count (its network's, its account's) is
    /// locked, so that of a burst of its attempts at once only the first is checked.
    Charge,
    /// Only look: is the key locked now? Nothing is changed or created.
    Peek,
    /// An attempt that was not charged failed: count it, and lock at the limit.
    Fail,
    /// An attempt charged in the window ending at `charged_in` failed: it is counted
    /// already; lock when the count is at the limit. When the window has turned since (or a
    /// lock started), it is counted as a failure of the window now.
    Settle {
        /// The end of the window the charge was made in ([`FailureState::charged`]).
        charged_in: i64,
    },
    /// An attempt charged in the window ending at `charged_in` did not fail (accepted, or
    /// refused for something other than a wrong credential): uncount it, unless that
    /// window is over (nothing of a later window is taken away).
    Refund {
        /// The end of the window the charge was made in ([`FailureState::charged`]).
        charged_in: i64,
    },
}

/// A key's state after a [`FailureStep`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailureState {
    /// Failures counted in the current window (0 right after a lock starts).
    pub failures: u32,
    /// How long the key is locked now, in seconds: since this failure, or still (a
    /// failure while locked is not counted).
    pub locked_for: Option<u64>,
    /// When this [`FailureStep::Attempt`] was counted as a failure, the end of the window
    /// it counts in, for the [`FailureStep::Settle`] or [`FailureStep::Refund`] once the
    /// attempt is decided.
    pub charged: Option<i64>,
}

impl FailureState {
    /// A state, for stores of your own.
    pub fn new(failures: u32, locked_for: Option<u64>) -> Self {
        Self {
            failures,
            locked_for,
            charged: None,
        }
    }

    /// This state, with the attempt charged in the window ending at `window_ends` (for
    /// stores of your own).
    #[must_use]
    pub fn charged_in(mut self, window_ends: i64) -> Self {
        self.charged = Some(window_ends);
        self
    }
}

/// What a store keeps per key: everything in one entry (one Redis hash, one map entry), so
/// one decision is one atomic step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureEntry {
    /// Failures in the window that ends at `window_ends`.
    pub failures: u32,
    /// When the current window ends (unix seconds).
    pub window_ends: i64,
    /// How many times the key was locked, recently (the escalation).
    pub strikes: u32,
    /// Locked until then (unix seconds).
    pub locked_until: i64,
}

impl FailureEntry {
    /// Take `step` at `now` under `rule`. The one place the arithmetic lives: the in-memory
    /// store runs it, and the Redis script is the same steps (tested against it).
    pub fn step(&mut self, rule: FailureRule, step: FailureStep, now: i64) -> FailureState {
        match step {
            FailureStep::Attempt => self.attempt(rule, now, false),
            FailureStep::Charge => self.attempt(rule, now, true),
            FailureStep::Peek => FailureState::new(self.failures, self.locked_for(now)),
            FailureStep::Fail => self.fail(rule, now),
            FailureStep::Settle { charged_in } => self.settle(rule, charged_in, now),
            FailureStep::Refund { charged_in } => self.refund(charged_in, now),
        }
    }

    /// Record one failure at `now` under `rule` ([`FailureStep::Fail`]).
    pub fn fail(&mut self, rule: FailureRule, now: i64) -> FailureState {
        if self.locked_until > now {
            return FailureState::new(self.failures, self.locked_for(now));
        }
        if now >= self.window_ends {
            self.failures = 0;
            self.window_ends = now.saturating_add(window_of(rule));
        }
        self.failures = self.failures.saturating_add(1);
        if self.failures < rule.max_failures {
            return FailureState::new(self.failures, None);
        }
        self.lock(rule, now)
    }

    fn attempt(&mut self, rule: FailureRule, now: i64, create: bool) -> FailureState {
        if *self == Self::default() && !create {
            // Unknown (never failed, or forgotten): not charged, not changed.
            return FailureState::new(0, None);
        }
        if let Some(locked) = self.locked_for(now) {
            return FailureState::new(self.failures, Some(locked));
        }
        if now >= self.window_ends {
            // Known, its last window (or lock) over: this attempt opens the next window.
            self.failures = 0;
            self.window_ends = now.saturating_add(window_of(rule));
        }
        if self.failures >= rule.max_failures {
            // The attempts in flight fill the limit: wait for them to be decided.
            return FailureState::new(self.failures, Some(1));
        }
        self.failures += 1;
        FailureState::new(self.failures, None).charged_in(self.window_ends)
    }

    fn settle(&mut self, rule: FailureRule, charged_in: i64, now: i64) -> FailureState {
        if self.locked_until > now {
            return FailureState::new(self.failures, self.locked_for(now));
        }
        if now >= self.window_ends || self.window_ends != charged_in {
            // The window turned (or the entry was forgotten) while the attempt was checked:
            // it fails in the window of now.
            return self.fail(rule, now);
        }
        if self.failures < rule.max_failures {
            return FailureState::new(self.failures, None);
        }
        self.lock(rule, now)
    }

    fn refund(&mut self, charged_in: i64, now: i64) -> FailureState {
        if self.locked_until <= now && now < self.window_ends && self.window_ends == charged_in {
            self.failures = self.failures.saturating_sub(1);
        }
        FailureState::new(self.failures, self.locked_for(now))
    }

    /// The count reached the limit at `now`: lock for the rest of the window the first
    /// time, for twice the last lock each time after, up to the cap.
    fn lock(&mut self, rule: FailureRule, now: i64) -> FailureState {
        let window = window_of(rule);
        let cap = i64::try_from(rule.max_lockout).unwrap_or(i64::MAX);
        self.strikes = self.strikes.saturating_add(1);
        let lock = if self.strikes == 1 {
            self.window_ends - now
        } else {
            let doubled = window.saturating_mul(1i64 << (self.strikes - 1).min(32));
            doubled.min(cap)
        }
        .max(1);
        self.locked_until = now.saturating_add(lock);
        self.failures = 0;
        self.window_ends = self.locked_until;
        FailureState::new(0, Some(lock.unsigned_abs()))
    }

    /// How many seconds the key is still locked at `now`, if it is.
    pub fn locked_for(&self, now: i64) -> Option<u64> {
        (self.locked_until > now).then(|| (self.locked_until - now).unsigned_abs())
    }

    /// When the entry may be forgotten: its lock and window are over, and the cap has passed
    /// on top (so a client that keeps coming back keeps escalating).
    pub fn forget_at(&self, rule: FailureRule) -> i64 {
        let cap = i64::try_from(rule.max_lockout).unwrap_or(i64::MAX);
        self.window_ends.max(self.locked_until).saturating_add(cap)
    }
}

fn window_of(rule: FailureRule) -> i64 {
    i64::try_from(rule.window).unwrap_or(i64::MAX)
}

/// A failed-attempt limit for a guard ([`GuardLayer::failure_limit`](crate::GuardLayer::failure_limit)):
/// failed authentications counted per client address (IPv6 by its /64, or the prefix set
/// here), in one store shared by replicas.
///
/// ```
/// use std::time::Duration;
/// use callguard::limit::FailureLimit;
/// use callguard::replay::MemoryReplayStore;
///
/// // Five failures a minute per client; locks double up to an hour.
/// let limit = FailureLimit::builder(MemoryReplayStore::default())
///     .max_failures(5)
///     .window(Duration::from_secs(60))
///     .max_lockout(Duration::from_secs(3600))
///     .build()?;
/// # Ok::<(), callguard::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct FailureLimit {
    pub(crate) store: Arc<dyn ReplayStore>,
    pub(crate) rule: FailureRule,
    pub(crate) policy: ReplayPolicy,
    pub(crate) ipv6_prefix: u8,
    pub(crate) clock: Arc<dyn Clock>,
    /// Failures an account may see from anywhere before its clients get one try each.
    pub(crate) account_rule: Option<FailureRule>,
    /// Failures a network (IPv4 /24, IPv6 /48) may see before its clients get one try each.
    pub(crate) network_rule: Option<FailureRule>,
}

impl std::fmt::Debug for FailureLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailureLimit")
            .field("rule", &self.rule)
            .field("policy", &self.policy)
            .field("ipv6_prefix", &self.ipv6_prefix)
            .finish_non_exhaustive()
    }
}

/// Builds a [`FailureLimit`].
pub struct FailureLimitBuilder {
    store: Arc<dyn ReplayStore>,
    max_failures: u32,
    window: Duration,
    max_lockout: Duration,
    policy: ReplayPolicy,
    ipv6_prefix: u8,
    clock: Arc<dyn Clock>,
    per_account: Option<u32>,
    per_network: Option<u32>,
}

impl std::fmt::Debug for FailureLimitBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailureLimitBuilder")
            .field("max_failures", &self.max_failures)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl FailureLimit {
    /// A limit kept in `store`: by default 10 failures a minute, locks up to an hour, 503
    /// when the store cannot answer, IPv6 clients by their /64.
    pub fn builder(store: impl ReplayStore) -> FailureLimitBuilder {
        FailureLimitBuilder {
            store: Arc::new(store),
            max_failures: 10,
            window: Duration::from_secs(60),
            max_lockout: Duration::from_secs(3600),
            policy: ReplayPolicy::FailClosed,
            ipv6_prefix: 64,
            clock: Arc::new(SystemClock),
            per_account: None,
            per_network: None,
        }
    }

    /// The numbers a store applies.
    pub fn rule(&self) -> FailureRule {
        self.rule
    }

    /// The key a client's failures are counted under.
    pub(crate) fn client_key(&self, client: ClientAddr) -> ReplayKey {
        let group = client.group_by(self.ipv6_prefix);
        ReplayKey::derive(&[b"failures\0client\0", &group])
    }

    /// Before `client`'s credential is checked: whether it is locked out, and whether this
    /// attempt was charged ([`FailureStep::Attempt`]). When a wider count (the account the
    /// request names, the client's network) is locked, the attempt is charged even if the
    /// client has never failed ([`FailureStep::Charge`]): a burst it sends at once is held
    /// to the per-client limit before any of it is checked (honest requests in flight
    /// together still pass), and its first failure locks it (`record`).
    pub(crate) fn attempt(
        &self,
        client: ClientAddr,
        account: Option<ReplayKey>,
    ) -> StoreFuture<FailureState> {
        self.wider_then_client(client, account, FailureStep::Peek, |limit, locked| {
            limit.attempt_under(locked)
        })
    }

    /// The rule and step a client's attempt is taken under: charged even on a key not yet
    /// known while a wider count is `locked`. The per-client limit stays, so that a user's
    /// own requests in flight together are not refused for a network's guesser.
    fn attempt_under(&self, locked: bool) -> (FailureRule, FailureStep) {
        let step = if locked {
            FailureStep::Charge
        } else {
            FailureStep::Attempt
        };
        (self.rule, step)
    }

    /// The client's rule while a wider count is locked: one failure locks it.
    fn strict_rule(&self) -> FailureRule {
        FailureRule {
            max_failures: 1,
            ..self.rule
        }
    }

    /// The wider counts a client's failures also go to, with their rules: the account the
    /// request names, then the client's network, each when configured.
    fn wider(
        &self,
        client: ClientAddr,
        account: Option<ReplayKey>,
    ) -> impl Iterator<Item = (ReplayKey, FailureRule)> + use<> {
        [
            account.zip(self.account_rule),
            self.network_rule
                .map(|rule| (Self::network_key(client), rule)),
        ]
        .into_iter()
        .flatten()
    }

    /// Whether a wider count's `answer` puts its sources under one guess each: locked, or,
    /// when the store cannot say and the policy fails closed, taken as locked (logged).
    fn locks(&self, answer: Result<FailureState, StoreError>) -> bool {
        match answer {
            Ok(state) => state.locked_for.is_some(),
            Err(error) => {
                tracing::error!(%error, "callguard could not read or count a failure limit's account or network count");
                self.policy == ReplayPolicy::FailClosed
            }
        }
    }

    /// The key a client's network's failures are counted under (IPv4 /24, IPv6 /48).
    fn network_key(client: ClientAddr) -> ReplayKey {
        ReplayKey::derive(&[b"failures\0network\0", &client.network().to_be_bytes()])
    }

    /// Uncount `client`'s attempt charged in the window ending at `charged_in`: it did not
    /// fail.
    pub(crate) fn refund(&self, client: ClientAddr, charged_in: i64) -> StoreFuture<FailureState> {
        let now = self.clock.unix_seconds();
        let step = FailureStep::Refund { charged_in };
        self.store
            .failure_step(self.client_key(client), self.rule, step, now)
    }

    /// Count a failed attempt of `client` (settle it, when it was `charged`), naming
    /// `account` when the request named one: the wider counts first (the account's, the
    /// network's), and while one of them is locked, one failure locks the client (each
    /// source gets one guess; a source that has not failed is still checked).
    pub(crate) fn record(
        &self,
        client: ClientAddr,
        account: Option<ReplayKey>,
        charged: Option<i64>,
    ) -> StoreFuture<FailureState> {
        let step = match charged {
            Some(charged_in) => FailureStep::Settle { charged_in },
            None => FailureStep::Fail,
        };
        self.wider_then_client(client, account, FailureStep::Fail, move |limit, locked| {
            let rule = if locked {
                limit.strict_rule()
            } else {
                limit.rule
            };
            (rule, step)
        })
    }

    /// Take `wider_step` on each wider count of `client` (the account, the network), in
    /// order, then the client's own step, which `client_step` chooses from whether any of
    /// them is locked. In memory every answer is at hand: all is done at once. Over the
    /// network, the rest is done in order once the first answer that must be waited for
    /// is in.
    fn wider_then_client<F>(
        &self,
        client: ClientAddr,
        account: Option<ReplayKey>,
        wider_step: FailureStep,
        client_step: F,
    ) -> StoreFuture<FailureState>
    where
        F: FnOnce(&Self, bool) -> (FailureRule, FailureStep) + Send + 'static,
    {
        let now = self.clock.unix_seconds();
        let client_key = self.client_key(client);
        let mut wider = self.wider(client, account);
        let mut locked = false;
        while let Some((key, rule)) = wider.next() {
            let mut answer = self.store.failure_step(key, rule, wider_step, now);
            match answer.now() {
                Some(answer) => locked |= self.locks(answer),
                None => {
                    let rest: Vec<_> = wider.collect();
                    let limit = self.clone();
                    return StoreFuture::pending(async move {
                        let mut locked = locked | limit.locks(answer.await);
                        for (key, rule) in rest {
                            let answer = limit.store.failure_step(key, rule, wider_step, now);
                            locked |= limit.locks(answer.await);
                        }
                        let (rule, step) = client_step(&limit, locked);
                        limit.store.failure_step(client_key, rule, step, now).await
                    });
                }
            }
        }
        let (rule, step) = client_step(self, locked);
        self.store.failure_step(client_key, rule, step, now)
    }

    /// The account a request's credential names, before it is checked: a Basic user name,
    /// or a JWT's `sub` (read unverified, only to count failures by).
    pub(crate) fn account_of(&self, parts: &http::request::Parts) -> Option<ReplayKey> {
        self.account_rule?;
        let account = match crate::authorization::parse(&parts.headers) {
            crate::authorization::Authorization::Basic(credentials) => {
                let user = crate::basic::user_name(credentials)?;
                ReplayKey::derive(&[b"failures\0account\0basic\0", &user])
            }
            #[cfg(feature = "jwt")]
            crate::authorization::Authorization::Bearer(token)
            | crate::authorization::Authorization::DPoP(token) => {
                let subject = crate::jws::Jws::parse(token)
                    .ok()?
                    .unverified_claim("sub")?;
                ReplayKey::derive(&[b"failures\0account\0sub\0", subject.as_bytes()])
            }
            _ => return None,
        };
        Some(account)
    }

    /// The refusal a lock check's answer calls for, if any: 429 while locked; when the
    /// store cannot answer, 503 (or, failing open, a warning and none).
    pub(crate) fn refusal(
        &self,
        answer: Result<FailureState, StoreError>,
        challenges: Challenges,
    ) -> Option<AuthError> {
        match answer.map(|state| state.locked_for) {
            Ok(None) => None,
            Ok(Some(seconds)) => Some(
                AuthError::new(AuthErrorKind::TooManyFailures, challenges)
                    .with_retry_after(seconds.max(1)),
            ),
            Err(error) if self.policy == ReplayPolicy::FailOpen => {
                tracing::warn!(%error, "callguard let a request through without its failure limit");
                None
            }
            Err(error) => {
                tracing::error!(%error, "callguard refused a request whose failure limit it could not check");
                Some(AuthError::new(AuthErrorKind::StoreUnavailable, challenges))
            }
        }
    }
}

impl FailureLimitBuilder {
    /// Failures within one window that lock the client (default 10).
    #[must_use]
    pub fn max_failures(mut self, max_failures: u32) -> Self {
        self.max_failures = max_failures;
        self
    }

    /// The window failures are counted in (default one minute; whole seconds).
    #[must_use]
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// The longest a lock lasts, however often the client comes back (default one hour).
    #[must_use]
    pub fn max_lockout(mut self, max_lockout: Duration) -> Self {
        self.max_lockout = max_lockout;
        self
    }

    /// What to do when the store cannot answer (default: refuse with 503).
    #[must_use]
    pub fn policy(mut self, policy: ReplayPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The clock windows and locks are timed by (default the system clock; every replica
    /// sharing a store should agree on the time).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Count failures per account too: after `max_failures` failed attempts naming one
    /// account (a Basic user, a JWT's `sub`) within the window, from any number of
    /// addresses, each address gets one guess for that account until the lock ends. A
    /// correct credential from an address that has not failed is still checked and
    /// accepted, so someone else's guessing does not lock the real user out (one mistyped
    /// password of theirs during the lock does lock their own address).
    #[must_use]
    pub fn per_account(mut self, max_failures: u32) -> Self {
        self.per_account = Some(max_failures);
        self
    }

    /// Count failures per network too (an IPv4 /24, an IPv6 /48: what one subscriber or
    /// site is commonly given whole): after `max_failures` failed attempts from addresses of
    /// one network within the window, each address of it gets one guess until the lock
    /// ends. Someone rotating through the /64s of their /48, or the addresses of their /24,
    /// gets one guess for each rather than the per-client allowance. As with
    /// [`per_account`](Self::per_account), an address of the network that has not failed is
    /// still checked and accepted: the network's other users are not locked out. Counted
    /// only when an attempt fails, so an accepted request costs no more.
    #[must_use]
    pub fn per_network(mut self, max_failures: u32) -> Self {
        self.per_network = Some(max_failures);
        self
    }

    /// Count IPv6 clients by this prefix (default 64: one subscriber's network).
    #[must_use]
    pub fn ipv6_prefix(mut self, prefix: u8) -> Self {
        self.ipv6_prefix = prefix;
        self
    }

    /// Validate and build.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] for no failures allowed, a window under one second, a
    /// cap shorter than the window, or an IPv6 prefix over 128.
    pub fn build(self) -> Result<FailureLimit, ConfigError> {
        let invalid = |field| Err(ConfigError::InvalidValue { field });
        if self.max_failures == 0 {
            return invalid("failure limit: max_failures (at least 1)");
        }
        if self.window.as_secs() == 0 {
            return invalid("failure limit: window (at least one second)");
        }
        if self.max_lockout < self.window {
            return invalid("failure limit: max_lockout (at least the window)");
        }
        if self.ipv6_prefix > 128 {
            return invalid("failure limit: ipv6_prefix (at most 128)");
        }
        if self.per_account == Some(0) {
            return invalid("failure limit: per_account (at least 1)");
        }
        if self.per_network == Some(0) {
            return invalid("failure limit: per_network (at least 1)");
        }
        Ok(FailureLimit {
            store: self.store,
            rule: FailureRule {
                max_failures: self.max_failures,
                window: self.window.as_secs(),
                max_lockout: self.max_lockout.as_secs(),
            },
            policy: self.policy,
            ipv6_prefix: self.ipv6_prefix,
            clock: self.clock,
            account_rule: self.per_account.map(|max_failures| FailureRule {
                max_failures,
                window: self.window.as_secs(),
                max_lockout: self.max_lockout.as_secs(),
            }),
            network_rule: self.per_network.map(|max_failures| FailureRule {
                max_failures,
                window: self.window.as_secs(),
                max_lockout: self.max_lockout.as_secs(),
            }),
        })
    }
}

/// Marks a request whose attempt a failure limit charged before its credential was checked,
/// with the end of the window it was charged in: the guard settles the charge when the
/// attempt fails, and refunds it otherwise.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChargedAttempt(pub(crate) i64);

impl AuthErrorKind {
    /// Whether this refusal is a failed attempt a failure limit counts: a credential that
    /// was presented and is wrong (not a missing one, an expired token, a replay, a server
    /// or body problem, or a refusal after the credential passed).
    pub fn is_failed_attempt(self) -> bool {
        matches!(
            self,
            Self::InvalidCredentials
                | Self::MalformedCredentials
                | Self::InvalidClaims
                | Self::ConflictingCredentials
                | Self::DuplicateHeader
                | Self::UnprovenKeyBinding
                | Self::InvalidDpopProof
                | Self::TokenRevoked
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: FailureRule = FailureRule {
        max_failures: 3,
        window: 60,
        max_lockout: 600,
    };

    #[test]
    fn a_lock_lasts_the_rest_of_the_window_then_doubles_up_to_the_cap() {
        let mut entry = FailureEntry::default();
        assert_eq!(entry.fail(RULE, 1000).locked_for, None);
        assert_eq!(entry.fail(RULE, 1010).locked_for, None);
        // Third failure 20 s into the window: locked for the 40 s left.
        assert_eq!(entry.fail(RULE, 1020).locked_for, Some(40));
        assert_eq!(entry.locked_for(1030), Some(30));
        assert_eq!(entry.locked_for(1060), None);
        // Back and failing again: 120 s, then 240, 480, then the cap.
        let mut now = 1060;
        for expected in [120, 240, 480, 600, 600] {
            entry.fail(RULE, now);
            entry.fail(RULE, now);
            assert_eq!(entry.fail(RULE, now).locked_for, Some(expected));
            now += i64::try_from(expected).unwrap();
        }
        // A failure while locked (a guard that did not check) changes nothing, and says
        // the key is locked.
        let before = entry;
        let locked = entry.locked_until;
        assert_eq!(entry.fail(RULE, locked - 1).locked_for, Some(1));
        assert_eq!(entry, before);
    }

    #[test]
    fn attempts_of_a_known_key_are_charged_settled_or_refunded() {
        let mut entry = FailureEntry::default();
        let settle = |charged: FailureState| FailureStep::Settle {
            charged_in: charged.charged.unwrap(),
        };
        let refund = |charged: FailureState| FailureStep::Refund {
            charged_in: charged.charged.unwrap(),
        };
        entry.fail(RULE, 0);
        // Failing now: two attempts in flight fill the limit of three; a third waits.
        let first = entry.step(RULE, FailureStep::Attempt, 1);
        let second = entry.step(RULE, FailureStep::Attempt, 1);
        assert_eq!((first.charged, second.charged), (Some(60), Some(60)));
        let waits = entry.step(RULE, FailureStep::Attempt, 1);
        assert_eq!((waits.charged, waits.locked_for), (None, Some(1)));
        // One is accepted (refunded), the other fails (settled): two failures, no lock.
        assert_eq!(entry.step(RULE, refund(first), 2).failures, 2);
        assert_eq!(entry.step(RULE, settle(second), 2).locked_for, None);
        // The next charged attempt that fails reaches three: locked, as a plain failure
        // would have.
        let third = entry.step(RULE, FailureStep::Attempt, 3);
        assert_eq!(entry.step(RULE, settle(third), 3).locked_for, Some(57));
        // When the lock is over, the key is still known: every attempt is charged again
        // (a burst after a lock is held to the limit), in a new window.
        let after = entry.step(RULE, FailureStep::Attempt, 61);
        assert_eq!(after.charged, Some(121));
        // A charge whose window turned while it was checked counts in the new window.
        let mut entry = FailureEntry::default();
        entry.fail(RULE, 0);
        let late = entry.step(RULE, FailureStep::Attempt, 59);
        assert_eq!(entry.step(RULE, settle(late), 61).failures, 1);
        // A refund of a charge from an earlier window takes nothing from a later one.
        let mut entry = FailureEntry::default();
        entry.fail(RULE, 0);
        let old = entry.step(RULE, FailureStep::Attempt, 59);
        entry.fail(RULE, 61);
        assert_eq!(entry.step(RULE, refund(old), 62).failures, 1);
    }

    #[test]
    fn failures_in_an_old_window_are_forgotten() {
        let mut entry = FailureEntry::default();
        entry.fail(RULE, 0);
        entry.fail(RULE, 1);
        assert_eq!(entry.fail(RULE, 61).failures, 1);
        assert!(entry.forget_at(RULE) >= 61 + 60 + 600);
    }

    #[test]
    fn never_more_failures_are_checked_than_the_windows_allow() {
        // Property, for any spacing of attempts: within any span of one window, at most
        // `2 * max_failures - 1` failures are checked (fixed windows: the end of one and the
        // start of the next), and never more than `max_failures` in one counting window.
        for step in 1..40 {
            let mut entry = FailureEntry::default();
            let mut checked = Vec::new();
            for now in (0..20_000).step_by(step) {
                if entry.locked_for(now).is_none() {
                    checked.push(now);
                    entry.fail(RULE, now);
                }
            }
            for (i, start) in checked.iter().enumerate() {
                let within = checked[i..].iter().take_while(|t| **t < start + 60).count();
                assert!(
                    within <= 5,
                    "step {step}: {within} checked failures from {start}"
                );
            }
        }
    }
}
