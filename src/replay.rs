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

/// A key derived from signed material: the SHA-256 of the verifier's identity, the kind of
/// material and its bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
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

/// A store that could not answer (down, timed out, refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "replay store unavailable: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

/// The answer of a store: ready at once (in memory) or later (over the network).
pub struct StoreFuture(Kind);

enum Kind {
    Ready(Option<Result<bool, StoreError>>),
    Pending(Pin<Box<dyn Future<Output = Result<bool, StoreError>> + Send>>),
}

impl StoreFuture {
    /// An answer available now.
    pub fn ready(result: Result<bool, StoreError>) -> Self {
        Self(Kind::Ready(Some(result)))
    }

    /// An answer that needs I/O.
    pub fn pending(
        future: impl Future<Output = Result<bool, StoreError>> + Send + 'static,
    ) -> Self {
        Self(Kind::Pending(Box::pin(future)))
    }
}

impl Future for StoreFuture {
    type Output = Result<bool, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            Kind::Ready(result) => {
                Poll::Ready(result.take().expect("future polled after completion"))
            }
            Kind::Pending(future) => future.as_mut().poll(cx),
        }
    }
}

impl fmt::Debug for StoreFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreFuture")
    }
}

/// Remembers keys for a window. Implementations must make [`first_seen`](Self::first_seen)
/// atomic: of two concurrent calls with one key, exactly one may answer `true`.
///
/// The same store serves as a JWT denylist: revoking a token records its `jti` key with
/// `first_seen`, and every use asks [`contains`](Self::contains).
pub trait ReplayStore: Send + Sync + 'static {
    /// Record `key` for `window`; `Ok(true)` when it was not already recorded.
    fn first_seen(&self, key: ReplayKey, window: Duration) -> StoreFuture;

    /// Whether `key` is recorded and its window has not passed, without recording it.
    fn contains(&self, key: ReplayKey) -> StoreFuture;
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
/// Bounded means that, once full, the least-used keys are evicted before their window ends;
/// only verified requests are recorded, so filling it takes that many genuinely signed
/// deliveries. For several instances, use a shared store.
#[derive(Clone)]
pub struct MemoryReplayStore {
    seen: Arc<quick_cache::sync::Cache<ReplayKey, i64>>,
    clock: Arc<dyn Clock>,
}

impl MemoryReplayStore {
    /// The default capacity: 100 000 keys (about 5 MB).
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// A store remembering up to `capacity` keys, timed by the system clock.
    pub fn new(capacity: usize) -> Self {
        Self::with_clock(capacity, SystemClock)
    }

    /// A store timed by `clock` (for tests).
    pub fn with_clock(capacity: usize, clock: impl Clock) -> Self {
        Self {
            seen: Arc::new(quick_cache::sync::Cache::new(capacity.max(1))),
            clock: Arc::new(clock),
        }
    }
}

impl Default for MemoryReplayStore {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl fmt::Debug for MemoryReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReplayStore")
            .field("keys", &self.seen.len())
            .finish()
    }
}

impl ReplayStore for MemoryReplayStore {
    fn first_seen(&self, key: ReplayKey, window: Duration) -> StoreFuture {
        let now = self.clock.unix_seconds();
        let until = now.saturating_add(i64::try_from(window.as_secs()).unwrap_or(i64::MAX));
        let fresh = match self.seen.get_value_or_guard(&key, None) {
            // Another request holds the key: seen, unless its window has passed.
            quick_cache::sync::GuardResult::Value(expires) if expires > now => false,
            quick_cache::sync::GuardResult::Value(_) => {
                self.seen.insert(key, until);
                true
            }
            quick_cache::sync::GuardResult::Guard(guard) => {
                let _ = guard.insert(until);
                true
            }
            quick_cache::sync::GuardResult::Timeout => false,
        };
        StoreFuture::ready(Ok(fresh))
    }

    fn contains(&self, key: ReplayKey) -> StoreFuture {
        let now = self.clock.unix_seconds();
        StoreFuture::ready(Ok(self.seen.get(&key).is_some_and(|expires| expires > now)))
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
            answer(store.first_seen(key(1), Duration::from_secs(300))),
            Ok(true)
        );
        assert_eq!(
            answer(store.first_seen(key(1), Duration::from_secs(300))),
            Ok(false)
        );
        assert_eq!(
            answer(store.first_seen(key(2), Duration::from_secs(300))),
            Ok(true)
        );
        clock.advance(Duration::from_secs(301));
        assert_eq!(
            answer(store.first_seen(key(1), Duration::from_secs(300))),
            Ok(true)
        );
    }

    #[test]
    fn contains_sees_recorded_keys_until_their_window_ends() {
        let clock = FixedClock::at_unix(1_000);
        let store = MemoryReplayStore::with_clock(16, clock.clone());
        assert_eq!(answer(store.contains(key(3))), Ok(false));
        assert_eq!(
            answer(store.first_seen(key(3), Duration::from_secs(60))),
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
                        answer(store.first_seen(key(9), Duration::from_secs(60))) == Ok(true)
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

    #[test]
    fn keys_print_only_a_prefix() {
        assert_eq!(format!("{:?}", key(0xab)), "ReplayKey(abababababababab)");
    }
}
