//! Replay protection: "have I seen this signed request before, within its window?"
//!
//! A [`ReplayStore`] remembers keys derived only from signed material: a signed delivery id
//! (Standard Webhooks' `webhook-id`) or, for schemes with no signed id, the signature itself.
//! An unsigned header such as GitHub's `X-GitHub-Delivery` is never the key, since anyone can
//! change it. The store is consulted only after the signature verified, so unverified
//! requests cannot fill it.
//!
//! Defaults: schemes that sign a timestamp (Stripe, Slack, Standard Webhooks) get an
//! in-memory store, and each delivery is remembered until its signed timestamp can no
//! longer verify (`timestamp + tolerance into the past`, inclusive: measured from the
//! timestamp, so a delivery stamped in the future is remembered longer); schemes without one (GitHub,
//! Shopify, Sendbird, SignalWire) have none, because platforms legitimately retry identical
//! deliveries of them, and opt in with
//! [`SignatureVerifierBuilder::replay_protection`](crate::signature::SignatureVerifierBuilder::replay_protection).
//!
//! A replayed request is answered with 401 (it presents a credential that is no longer
//! valid, like an expired token: 409 would tell a prober that the signature was right). A
//! store that cannot answer gives 503 by default (fail closed); [`ReplayPolicy::FailOpen`]
//! accepts the request instead and logs a warning.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::error::Cause;
use crate::limit::memory::LimitShards;
pub use crate::limit::{
    CodeCheck, CodeEntry, FailureEntry, FailureRule, FailureState, FailureStep, RateEntry,
    RateRule, RateState,
};

/// A key derived from signed material: the SHA-256 of the verifier's identity, the kind of
/// material and its bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplayKey(pub(crate) [u8; 32]);

impl ReplayKey {
    /// The SHA-256 of `parts`, concatenated: the one derivation every key goes through
    /// (callers put their own separators between the parts).
    pub(crate) fn derive(parts: &[&[u8]]) -> Self {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        Self(hasher.finalize().into())
    }

    /// A key with these bytes, for testing a store of your own.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key's bytes, for stores that need a representation (for example a Redis key).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for ReplayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReplayKey({})", hex::encode(&self.0[..8]))
    }
}

/// A store that could not answer (down, timed out, refused, full). The store's own error,
/// when there is one, is the [`source`](std::error::Error::source).
///
/// ```
/// use callguard::replay::StoreError;
/// let error = StoreError::new("connection refused");
/// assert_eq!(error.to_string(), "replay store unavailable: connection refused");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(Cause);

impl StoreError {
    /// A store error for `cause`: a message (`&str`, `String`) or an error
    /// ([`Cause::new`]).
    pub fn new(cause: impl Into<Cause>) -> Self {
        Self(cause.into())
    }

    /// Why the store could not answer.
    pub fn cause(&self) -> &Cause {
        &self.0
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "replay store unavailable: {}", self.0)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.as_source()
    }
}

/// The answer of a store: ready at once (in memory) or later (over the network). Most
/// answers are `bool` (recorded or not); a limit's answers carry its state.
pub struct StoreFuture<T = bool>(Kind<T>);

enum Kind<T> {
    Ready(Option<Result<T, StoreError>>),
    Pending(Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>),
}

impl<T> StoreFuture<T> {
    /// An answer available now.
    pub fn ready(result: Result<T, StoreError>) -> Self {
        Self(Kind::Ready(Some(result)))
    }

    /// An answer that needs I/O.
    pub fn pending(future: impl Future<Output = Result<T, StoreError>> + Send + 'static) -> Self {
        Self(Kind::Pending(Box::pin(future)))
    }

    /// This answer passed through `f`.
    pub(crate) fn map<U: 'static>(self, f: impl FnOnce(T) -> U + Send + 'static) -> StoreFuture<U>
    where
        T: 'static,
    {
        match self.0 {
            Kind::Ready(Some(result)) => StoreFuture::ready(result.map(f)),
            Kind::Ready(None) => StoreFuture::ready(Err(StoreError::new("answer taken twice"))),
            Kind::Pending(future) => StoreFuture::pending(async move { future.await.map(f) }),
        }
    }

    /// The answer, when it is available without waiting (an in-memory store's).
    pub(crate) fn now(&mut self) -> Option<Result<T, StoreError>> {
        match &mut self.0 {
            Kind::Ready(result) => result.take(),
            Kind::Pending(_) => None,
        }
    }
}

// Never pinned in place: the pending future is boxed, and a ready answer is moved out.
impl<T> Unpin for StoreFuture<T> {}

impl<T> Future for StoreFuture<T> {
    type Output = Result<T, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            Kind::Ready(result) => {
                Poll::Ready(result.take().expect("future polled after completion"))
            }
            Kind::Pending(future) => future.as_mut().poll(cx),
        }
    }
}

impl<T> fmt::Debug for StoreFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreFuture")
    }
}

/// One record's own value: a store keeps it beside the key, so a record can be undone only
/// by whoever made it (a release after a handler's failure, or a store undoing a write the
/// guard gave up waiting for), never a later record of the same key.
///
/// Unique across processes with overwhelming probability: a random 64-bit value drawn once
/// per process, and a counter.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordId(u128);

impl RecordId {
    /// A value no other record of this or another process holds.
    pub fn new() -> Self {
        use std::sync::OnceLock;
        use std::sync::atomic::{AtomicU64, Ordering};
        static PROCESS: OnceLock<u64> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let process = *PROCESS.get_or_init(|| {
            let mut bytes = [0; 8];
            // Without the OS's randomness, the time and address still tell processes apart.
            if getrandom::fill(&mut bytes).is_err() {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                bytes = (nanos as u64 ^ (&COUNTER as *const AtomicU64 as u64)).to_le_bytes();
            }
            u64::from_le_bytes(bytes)
        });
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self((u128::from(process) << 64) | u128::from(count))
    }

    /// The value, for stores that keep it (for example as a Redis value).
    pub fn as_u128(self) -> u128 {
        self.0
    }
}

impl Default for RecordId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordId({:032x})", self.0)
    }
}

/// Remembers keys for a window: the one store behind replay protection and revocation.
///
/// # Contract
///
/// - [`first_seen`](Self::first_seen) is atomic: of two concurrent calls with one key,
///   exactly one may answer `Ok(true)`.
/// - A key recorded for a window is remembered for all of it, and a `first_seen` that finds
///   it live extends it to the new window if that ends later (a retry under the same
///   signed id with a later timestamp verifies for longer). A store that cannot hold a new
///   key without forgetting a live one answers `Err` (the guard answers 503): it never
///   forgets a key inside its window, which would let a replay or a revoked token through.
/// - Windows are whole seconds, at least one.
/// - A call that answers `Err` leaves no record behind, including one that reaches the
///   store after the caller gave up waiting (undo it by its [`RecordId`]).
/// - [`release`](Self::release) forgets a record only while it still holds the same
///   [`RecordId`].
///
/// The same store serves as a JWT denylist: revoking a token records its `jti` key with
/// `first_seen`, and every use asks [`contains`](Self::contains).
pub trait ReplayStore: Send + Sync + 'static {
    /// Record `key` for `window` under `record`; `Ok(true)` when it was not already
    /// recorded.
    fn first_seen(&self, key: ReplayKey, record: RecordId, window: Duration) -> StoreFuture;

    /// Whether `key` is recorded and its window has not passed, without recording it.
    fn contains(&self, key: ReplayKey) -> StoreFuture;

    /// Forget `key` if it is still recorded under `record` (`Ok(true)` when it was): a
    /// delivery the handler failed, so that the platform's retry is accepted.
    fn release(&self, key: ReplayKey, record: RecordId) -> StoreFuture;

    /// Take `step` on `key`'s failure count at `now` (unix seconds) under `rule`,
    /// atomically, as [`FailureEntry::step`] does: is the key locked, was the attempt
    /// charged, the failures in the window, and the lock a failure started, if it did. A
    /// store that keeps no counts answers `Err` (the default).
    fn failure_step(
        &self,
        key: ReplayKey,
        rule: FailureRule,
        step: FailureStep,
        now: i64,
    ) -> StoreFuture<FailureState> {
        let _ = (key, rule, step, now);
        StoreFuture::ready(Err(StoreError::new("this store keeps no failure counts")))
    }

    /// Decide one request of `key` at `now_ms` (unix milliseconds) under `rule`, atomically,
    /// as [`RateEntry::take`] does, counting it when allowed. A store that keeps no rates
    /// answers `Err` (the default).
    fn rate(&self, key: ReplayKey, rule: RateRule, now_ms: i64) -> StoreFuture<RateState> {
        let _ = (key, rule, now_ms);
        StoreFuture::ready(Err(StoreError::new("this store keeps no rate limits")))
    }

    /// Keep a one-time code's `entry` under `key`, replacing any, until `keep_after` seconds
    /// past its expiry (so a late check can say it expired); but not a code whose attempts
    /// are used up and which is still live (`Ok(false)`). A store that keeps no codes
    /// answers `Err` (the default).
    fn put_code(
        &self,
        key: ReplayKey,
        entry: CodeEntry,
        now: i64,
        keep_after: u64,
    ) -> StoreFuture<bool> {
        let _ = (key, entry, now, keep_after);
        StoreFuture::ready(Err(StoreError::new("this store keeps no one-time codes")))
    }

    /// Check `digest` against `key`'s code at `now`, atomically, as [`CodeEntry::check`]
    /// does (a right code is removed). A store that keeps no codes answers `Err`.
    fn check_code(&self, key: ReplayKey, digest: [u8; 32], now: i64) -> StoreFuture<CodeCheck> {
        let _ = (key, digest, now);
        StoreFuture::ready(Err(StoreError::new("this store keeps no one-time codes")))
    }
}

/// What to do when the store cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ReplayPolicy {
    /// Refuse the request with 503 (the default).
    #[default]
    FailClosed,
    /// Accept the request, unprotected, and log a warning.
    FailOpen,
}

/// The default in-memory store: bounded, safe under concurrency, sharded so that there is no
/// global lock on the hot path.
///
/// # What fills it, and what happens then
///
/// Each recorded key (a verified delivery, a revoked `jti`) takes at most
/// [`BYTES_PER_KEY`](Self::BYTES_PER_KEY) bytes, the map's growth and the expiry queue
/// included, until its window passes; expired keys are reclaimed first whenever a shard
/// needs room. Only verified requests are recorded, so filling it takes that many
/// genuinely signed deliveries (or revocations) within their windows: with the default
/// capacity and a 300 s window, more than 333 a second. When every key of a shard is still
/// inside its window, a new record is refused ([`StoreError`], so 503 under the default
/// [`ReplayPolicy`], and `revoke` reports the error) rather than a live key forgotten. For
/// several instances, use a shared store.
#[derive(Clone)]
pub struct MemoryReplayStore {
    shards: Arc<[std::sync::Mutex<Shard>]>,
    keys_per_shard: usize,
    clock: Arc<dyn Clock>,
    /// Failure counts and limits, bounded apart from the records.
    limits: Arc<LimitShards>,
    /// Rate limits' arrival times, bounded alike.
    rates: Arc<LimitShards<RateEntry>>,
    /// One-time codes' hashes, bounded alike.
    codes: Arc<LimitShards<CodeEntry>>,
}

/// One shard: its keys, and the order in which they expire.
#[derive(Default)]
struct Shard {
    keys: std::collections::HashMap<ReplayKey, Entry>,
    /// `(expires, key)`, earliest first; an entry whose key was since released or
    /// recorded again is skipped when it comes up.
    expiries: std::collections::BinaryHeap<std::cmp::Reverse<(i64, ReplayKey)>>,
}

#[derive(Clone, Copy)]
struct Entry {
    /// Live while `expires > now`.
    expires: i64,
    record: RecordId,
}

impl Shard {
    /// Forget every key whose window has passed.
    fn reclaim(&mut self, now: i64) {
        while let Some(std::cmp::Reverse((expires, key))) = self.expiries.peek().copied() {
            if expires > now {
                break;
            }
            self.expiries.pop();
            if self
                .keys
                .get(&key)
                .is_some_and(|entry| entry.expires == expires)
            {
                self.keys.remove(&key);
            }
        }
    }

    /// Rebuild the expiry queue from the keys when stale entries make up most of it.
    fn compact(&mut self) {
        if self.expiries.len() > 2 * self.keys.len() + 64 {
            self.expiries = self
                .keys
                .iter()
                .map(|(key, entry)| std::cmp::Reverse((entry.expires, *key)))
                .collect();
        }
    }
}

/// The number of shards: enough that concurrent requests rarely meet on one lock.
const SHARDS: usize = 32;

impl MemoryReplayStore {
    /// The default capacity: 100 000 keys (at most 20 MB once full; nothing until used).
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// The most memory one recorded key takes: the map's slot and its growth, and the
    /// expiry queue's entry and its growth.
    pub const BYTES_PER_KEY: usize = 200;

    /// A store remembering up to `capacity` keys (rounded up to a multiple of the shard
    /// count), timed by the system clock.
    pub fn new(capacity: usize) -> Self {
        Self::with_clock(capacity, SystemClock)
    }

    /// A store using at most `bytes` of memory for its keys
    /// (`bytes / BYTES_PER_KEY` keys).
    pub fn with_max_bytes(bytes: usize) -> Self {
        Self::new(bytes / Self::BYTES_PER_KEY)
    }

    /// A store timed by `clock` (for tests).
    pub fn with_clock(capacity: usize, clock: impl Clock) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| std::sync::Mutex::default()).collect(),
            keys_per_shard: capacity.div_ceil(SHARDS).max(1),
            clock: Arc::new(clock),
            limits: Arc::new(LimitShards::new(Self::DEFAULT_LIMIT_KEYS)),
            rates: Arc::new(LimitShards::new(Self::DEFAULT_LIMIT_KEYS)),
            codes: Arc::new(LimitShards::new(Self::DEFAULT_LIMIT_KEYS)),
        }
    }

    /// The most limit entries (failure counts) kept by default: 100 000 (about 10 MB).
    pub const DEFAULT_LIMIT_KEYS: usize = 100_000;

    /// Keep at most about `keys` limit entries (failure counts per client): past it, expired
    /// ones are dropped, then unlocked ones evicted, so a flood of distinct sources cannot
    /// grow memory.
    #[must_use]
    pub fn with_limit_keys(mut self, keys: usize) -> Self {
        self.limits = Arc::new(LimitShards::new(keys));
        self.rates = Arc::new(LimitShards::new(keys));
        self.codes = Arc::new(LimitShards::new(keys));
        self
    }

    /// The limit entries held now, and the most it holds.
    pub fn limit_keys(&self) -> (usize, usize) {
        (self.limits.len(), self.limits.capacity())
    }

    /// The most keys this store holds at once.
    pub fn capacity(&self) -> usize {
        self.keys_per_shard * SHARDS
    }

    /// The keys held now, expired ones not yet reclaimed included.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).keys.len()).sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, key: &ReplayKey) -> std::sync::MutexGuard<'_, Shard> {
        // Keys are SHA-256 outputs: any of their bytes spreads them evenly.
        lock(&self.shards[usize::from(key.0[0]) % SHARDS])
    }
}

/// A shard's lock; a panic elsewhere while holding it leaves the map consistent (every
/// change is a single insert or remove), so a poisoned lock is used as it is.
fn lock(shard: &std::sync::Mutex<Shard>) -> std::sync::MutexGuard<'_, Shard> {
    shard
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Default for MemoryReplayStore {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl fmt::Debug for MemoryReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReplayStore")
            .field("keys", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl ReplayStore for MemoryReplayStore {
    fn first_seen(&self, key: ReplayKey, record: RecordId, window: Duration) -> StoreFuture {
        let now = self.clock.unix_seconds();
        // At least a second, as Redis's `EX` has it: a shorter window would remember nothing.
        let seconds = window.as_secs().max(1);
        let expires = now.saturating_add(i64::try_from(seconds).unwrap_or(i64::MAX));
        let mut shard = self.shard(&key);
        if let Some(entry) = shard.keys.get_mut(&key)
            && entry.expires > now
        {
            // A refused retry (a new timestamp under the same signed id) verifies for as
            // long as its own window: the key is kept at least that long.
            if expires > entry.expires {
                entry.expires = expires;
                shard.expiries.push(std::cmp::Reverse((expires, key)));
            }
            return StoreFuture::ready(Ok(false));
        }
        // Room is made only when needed: expired keys first, then the queue's stale
        // entries (left by released keys), so neither grows past a bound.
        if shard.keys.len() >= self.keys_per_shard
            || shard.expiries.len() >= 2 * self.keys_per_shard + 64
        {
            shard.reclaim(now);
            shard.compact();
        }
        if shard.keys.len() >= self.keys_per_shard && !shard.keys.contains_key(&key) {
            return StoreFuture::ready(Err(StoreError::new(format!(
                "in-memory store full: {} keys still inside their windows",
                self.capacity()
            ))));
        }
        shard.keys.insert(key, Entry { expires, record });
        shard.expiries.push(std::cmp::Reverse((expires, key)));
        StoreFuture::ready(Ok(true))
    }

    fn contains(&self, key: ReplayKey) -> StoreFuture {
        let now = self.clock.unix_seconds();
        let shard = self.shard(&key);
        StoreFuture::ready(Ok(shard
            .keys
            .get(&key)
            .is_some_and(|entry| entry.expires > now)))
    }

    fn release(&self, key: ReplayKey, record: RecordId) -> StoreFuture {
        let mut shard = self.shard(&key);
        let held = shard
            .keys
            .get(&key)
            .is_some_and(|entry| entry.record == record);
        if held {
            shard.keys.remove(&key);
        }
        StoreFuture::ready(Ok(held))
    }

    fn failure_step(
        &self,
        key: ReplayKey,
        rule: FailureRule,
        step: FailureStep,
        now: i64,
    ) -> StoreFuture<FailureState> {
        StoreFuture::ready(Ok(self.limits.failure_step(key, rule, step, now)))
    }

    fn rate(&self, key: ReplayKey, rule: RateRule, now_ms: i64) -> StoreFuture<RateState> {
        StoreFuture::ready(Ok(self.rates.take(key, rule, now_ms)))
    }

    fn put_code(
        &self,
        key: ReplayKey,
        entry: CodeEntry,
        now: i64,
        keep_after: u64,
    ) -> StoreFuture<bool> {
        StoreFuture::ready(Ok(self.codes.put(key, entry, now, keep_after)))
    }

    fn check_code(&self, key: ReplayKey, digest: [u8; 32], now: i64) -> StoreFuture<CodeCheck> {
        StoreFuture::ready(Ok(self.codes.check(key, &digest, now)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;

    fn key(byte: u8) -> ReplayKey {
        ReplayKey([byte; 32])
    }

    fn answer(future: StoreFuture) -> Result<bool, StoreError> {
        let mut future = std::pin::pin!(future);
        match future
            .as_mut()
            .poll(&mut Context::from_waker(std::task::Waker::noop()))
        {
            Poll::Ready(result) => result,
            Poll::Pending => panic!("the memory store answers at once"),
        }
    }

    #[test]
    fn a_key_is_fresh_once_within_its_window() {
        let clock = FixedClock::at_unix(1_000);
        let store = MemoryReplayStore::with_clock(16, clock.clone());
        assert_eq!(
            answer(store.first_seen(key(1), RecordId::new(), Duration::from_secs(300))),
            Ok(true)
        );
        assert_eq!(
            answer(store.first_seen(key(1), RecordId::new(), Duration::from_secs(300))),
            Ok(false)
        );
        assert_eq!(
            answer(store.first_seen(key(2), RecordId::new(), Duration::from_secs(300))),
            Ok(true)
        );
        clock.advance(Duration::from_secs(301));
        assert_eq!(
            answer(store.first_seen(key(1), RecordId::new(), Duration::from_secs(300))),
            Ok(true)
        );
    }

    #[test]
    fn contains_sees_recorded_keys_until_their_window_ends() {
        let clock = FixedClock::at_unix(1_000);
        let store = MemoryReplayStore::with_clock(16, clock.clone());
        assert_eq!(answer(store.contains(key(3))), Ok(false));
        assert_eq!(
            answer(store.first_seen(key(3), RecordId::new(), Duration::from_secs(60))),
            Ok(true)
        );
        assert_eq!(answer(store.contains(key(3))), Ok(true));
        assert_eq!(
            answer(store.contains(key(3))),
            Ok(true),
            "contains does not consume"
        );
        clock.advance(Duration::from_secs(61));
        assert_eq!(answer(store.contains(key(3))), Ok(false));
    }

    #[test]
    fn concurrent_first_sightings_admit_exactly_one() {
        let store = MemoryReplayStore::new(1024);
        let admitted = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        answer(store.first_seen(key(9), RecordId::new(), Duration::from_secs(60)))
                            == Ok(true)
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().ok())
                .filter(|fresh| *fresh)
                .count()
        });
        assert_eq!(admitted, 1);
    }

    fn record(store: &MemoryReplayStore, byte: u8, seconds: u64) -> Result<bool, StoreError> {
        answer(store.first_seen(key(byte), RecordId::new(), Duration::from_secs(seconds)))
    }

    #[test]
    fn a_full_store_refuses_a_new_key_rather_than_forget_a_live_one() {
        let clock = FixedClock::at_unix(1_000);
        // One key per shard: keys 0 and 32 meet in shard 0.
        let store = MemoryReplayStore::with_clock(SHARDS, clock.clone());
        assert_eq!(record(&store, 0, 300), Ok(true));
        assert!(record(&store, 32, 300).is_err(), "full of live keys");
        assert_eq!(record(&store, 0, 300), Ok(false), "the live key is kept");
        clock.advance(Duration::from_secs(300));
        assert_eq!(
            record(&store, 32, 300),
            Ok(true),
            "an expired key makes room"
        );
        assert_eq!(
            record(&store, 0, 300),
            Err(StoreError::new(
                "in-memory store full: 32 keys still inside their windows"
            ))
        );
    }

    #[test]
    fn a_refused_retry_extends_the_window_and_no_window_is_shorter_than_a_second() {
        let clock = FixedClock::at_unix(1_000);
        let store = MemoryReplayStore::with_clock(64, clock.clone());
        assert_eq!(record(&store, 4, 300), Ok(true));
        clock.advance(Duration::from_secs(10));
        // The platform's retry, stamped 10 s later, verifies until 1 310.
        assert_eq!(record(&store, 4, 300), Ok(false));
        clock.advance(Duration::from_secs(295));
        assert_eq!(
            answer(store.contains(key(4))),
            Ok(true),
            "kept for the retry's window"
        );
        assert_eq!(record(&store, 4, 1), Ok(false));
        clock.advance(Duration::from_secs(6));
        assert_eq!(answer(store.contains(key(4))), Ok(false));
        assert_eq!(
            answer(store.first_seen(key(5), RecordId::new(), Duration::from_millis(500))),
            Ok(true)
        );
        assert_eq!(
            answer(store.first_seen(key(5), RecordId::new(), Duration::ZERO)),
            Ok(false),
            "a sub-second window still remembers for a second"
        );
    }

    #[test]
    fn a_release_forgets_only_its_own_record() {
        let store = MemoryReplayStore::new(64);
        let (first, other) = (RecordId::new(), RecordId::new());
        assert_ne!(first, other);
        assert_eq!(
            answer(store.first_seen(key(5), first, Duration::from_secs(60))),
            Ok(true)
        );
        assert_eq!(answer(store.release(key(5), other)), Ok(false));
        assert_eq!(answer(store.contains(key(5))), Ok(true));
        assert_eq!(answer(store.release(key(5), first)), Ok(true));
        assert_eq!(answer(store.contains(key(5))), Ok(false));
        assert_eq!(
            answer(store.first_seen(key(5), other, Duration::from_secs(60))),
            Ok(true),
            "a released key can be recorded again"
        );
    }

    #[test]
    fn stale_expiry_entries_do_not_grow_without_bound() {
        let clock = FixedClock::at_unix(1_000);
        let store = MemoryReplayStore::with_clock(SHARDS, clock.clone());
        for _ in 0..10_000 {
            let id = RecordId::new();
            assert_eq!(
                answer(store.first_seen(key(7), id, Duration::from_secs(60))),
                Ok(true)
            );
            assert_eq!(answer(store.release(key(7), id)), Ok(true));
        }
        clock.advance(Duration::from_secs(61));
        assert_eq!(record(&store, 39, 60), Ok(true));
        let queued: usize = store.shards.iter().map(|s| lock(s).expiries.len()).sum();
        assert!(queued < 200, "{queued} expiry entries queued");
    }

    #[test]
    fn keys_print_only_a_prefix() {
        assert_eq!(format!("{:?}", key(0xab)), "ReplayKey(abababababababab)");
    }

    mod model {
        use super::*;
        use proptest::prelude::*;
        use std::collections::HashMap;

        #[derive(Debug, Clone)]
        enum Op {
            Record(u8, u64),
            Release(u8),
            Advance(u64),
        }

        fn op() -> impl Strategy<Value = Op> {
            // Keys 0, 32, 64 and 1, 33 share shards 0 and 1: two keys a shard fill them.
            let key = prop::sample::select(vec![0u8, 32, 64, 1, 33, 2]);
            prop_oneof![
                (key.clone(), 1..5u64).prop_map(|(k, w)| Op::Record(k, w)),
                key.prop_map(Op::Release),
                (0..4u64).prop_map(Op::Advance),
            ]
        }

        proptest! {
            /// Against a model of what must be remembered: a key inside its window is never
            /// reported new, a new key is refused only when its shard is full of live keys,
            /// and a release forgets only the record it names.
            #[test]
            fn the_store_never_forgets_a_live_key(ops in proptest::collection::vec(op(), 1..80)) {
                let clock = FixedClock::at_unix(1_000);
                let store = MemoryReplayStore::with_clock(2 * SHARDS, clock.clone());
                let mut now = 1_000i64;
                // key -> (expires, record)
                let mut model: HashMap<u8, (i64, RecordId)> = HashMap::new();
                for op in ops {
                    match op {
                        Op::Record(k, window) => {
                            let record = RecordId::new();
                            let live = |m: &HashMap<u8, (i64, RecordId)>, k: &u8| {
                                m.get(k).is_some_and(|(expires, _)| *expires > now)
                            };
                            let shard_live = model
                                .keys()
                                .filter(|other| usize::from(**other) % SHARDS == usize::from(k) % SHARDS)
                                .filter(|other| live(&model, other))
                                .count();
                            let answer = answer(store.first_seen(key(k), record, Duration::from_secs(window)));
                            if live(&model, &k) {
                                prop_assert_eq!(answer, Ok(false), "a live key was forgotten");
                                let entry = model.get_mut(&k).expect("live");
                                entry.0 = entry.0.max(now + window as i64);
                            } else if shard_live >= 2 {
                                prop_assert!(answer.is_err(), "a full shard took a new key");
                            } else {
                                prop_assert_eq!(answer, Ok(true), "room was refused");
                                model.insert(k, (now + window as i64, record));
                            }
                        }
                        Op::Release(k) => {
                            let Some((expires, record)) = model.get(&k).copied() else { continue };
                            prop_assert_eq!(answer(store.release(key(k), RecordId::new())), Ok(false));
                            let released = answer(store.release(key(k), record));
                            // An expired record may have been reclaimed already.
                            if expires > now {
                                prop_assert_eq!(released, Ok(true));
                            }
                            model.remove(&k);
                        }
                        Op::Advance(seconds) => {
                            clock.advance(Duration::from_secs(seconds));
                            now += seconds as i64;
                        }
                    }
                    for (k, (expires, _)) in &model {
                        let held = answer(store.contains(key(*k))) == Ok(true);
                        prop_assert_eq!(held, *expires > now, "contains disagrees for {}", k);
                    }
                }
            }
        }
    }
}
