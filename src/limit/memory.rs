//! Limits kept in memory: sharded maps of per-key entries, bounded in keys, with eviction.
//!
//! Unlike replay records, a limit's entry may be evicted when a flood of distinct sources
//! fills its shard (a forgotten count lets a client start over; it never lets a replay or a
//! revoked token through): expired entries go first, then, among a few, one that is not
//! locked and expires soonest.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::codes::{CodeCheck, CodeEntry};
use super::failures::{FailureEntry, FailureRule, FailureState, FailureStep};
use super::rate::{RateEntry, RateRule, RateState};
use crate::replay::ReplayKey;

const SHARDS: usize = 32;

/// How many entries eviction looks at to choose one.
const EVICTION_SAMPLE: usize = 8;

/// An entry a limit keeps per key.
pub(crate) trait Limited: Copy + Default {
    /// Whether evicting it would free a client the limit holds back now.
    fn holds_back(&self, now: i64) -> bool;
}

impl Limited for FailureEntry {
    fn holds_back(&self, now: i64) -> bool {
        self.locked_for(now).is_some()
    }
}

impl Limited for CodeEntry {
    fn holds_back(&self, now: i64) -> bool {
        self.attempts_left == 0 && self.expires_at > now
    }
}

impl Limited for RateEntry {
    fn holds_back(&self, now: i64) -> bool {
        self.tat_ms > now
    }
}

/// Per-key limit entries in 32 shards, each with its own lock. Times are in the entry's
/// own unit (seconds for failures, milliseconds for rates).
pub(crate) struct LimitShards<E = FailureEntry> {
    shards: Box<[Mutex<Shard<E>>]>,
    keys_per_shard: usize,
    /// Chooses a key's shard with a key drawn when the store is made: a client can derive
    /// the keys of addresses it controls, but not which of them share a shard, so it cannot
    /// fill one shard to evict a lock there.
    shard_of: std::hash::RandomState,
}

/// One shard's entries.
type Shard<E> = HashMap<ReplayKey, Kept<E>>;

#[derive(Clone, Copy)]
struct Kept<E> {
    entry: E,
    forget_at: i64,
}

impl<E: Limited> LimitShards<E> {
    /// Room for about `capacity` keys.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            keys_per_shard: capacity.div_ceil(SHARDS).max(1),
            shard_of: std::hash::RandomState::new(),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.keys_per_shard * SHARDS
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).len()).sum()
    }

    fn shard(&self, key: &ReplayKey) -> MutexGuard<'_, Shard<E>> {
        lock(&self.shards[self.shard_index(key)])
    }

    fn shard_index(&self, key: &ReplayKey) -> usize {
        use std::hash::BuildHasher as _;
        let index = self.shard_of.hash_one(key.as_bytes()) % SHARDS as u64;
        usize::try_from(index).unwrap_or(0)
    }

    /// Change `key`'s entry at `now` (a fresh one when it was forgotten) with `change`,
    /// which answers and says when the entry may be forgotten.
    fn update<R>(
        &self,
        key: ReplayKey,
        now: i64,
        change: impl FnOnce(&mut E, i64) -> (R, i64),
    ) -> R {
        let mut shard = self.shard(&key);
        if !shard.contains_key(&key) && shard.len() >= self.keys_per_shard {
            make_room(&mut shard, now);
        }
        let kept = shard.entry(key).or_insert(Kept {
            entry: E::default(),
            forget_at: i64::MIN,
        });
        if kept.forget_at <= now {
            kept.entry = E::default();
        }
        let (answer, forget_at) = change(&mut kept.entry, kept.forget_at);
        kept.forget_at = forget_at;
        answer
    }

    /// Change `key`'s entry at `now` with `change` if it is there and not forgotten.
    fn change_existing<R>(
        &self,
        key: ReplayKey,
        now: i64,
        change: impl FnOnce(&mut E) -> (R, i64),
    ) -> Option<R> {
        let mut shard = self.shard(&key);
        let kept = shard.get_mut(&key).filter(|kept| kept.forget_at > now)?;
        let (answer, forget_at) = change(&mut kept.entry);
        kept.forget_at = forget_at;
        Some(answer)
    }
}

impl LimitShards<FailureEntry> {
    pub(crate) fn failure_step(
        &self,
        key: ReplayKey,
        rule: FailureRule,
        step: FailureStep,
        now: i64,
    ) -> FailureState {
        if matches!(
            step,
            FailureStep::Attempt | FailureStep::Peek | FailureStep::Refund { .. }
        ) {
            // None counts a new failure: a key that is not there stays away (a clean
            // client's attempt takes no room).
            return self
                .change_existing(key, now, |entry| {
                    let state = entry.step(rule, step, now);
                    (state, entry.forget_at(rule))
                })
                .unwrap_or_else(|| FailureState::new(0, None));
        }
        self.update(key, now, |entry, _| {
            let state = entry.step(rule, step, now);
            (state, entry.forget_at(rule))
        })
    }
}

impl LimitShards<CodeEntry> {
    /// Keep `entry`, unless the code it replaces has used up its attempts and is still
    /// live (`false`): a new code must not buy more guesses.
    pub(crate) fn put(&self, key: ReplayKey, entry: CodeEntry, now: i64, keep_after: u64) -> bool {
        let keep = i64::try_from(keep_after).unwrap_or(i64::MAX);
        self.update(key, now, |kept, forget_at| {
            if *kept != CodeEntry::default() && kept.attempts_left == 0 && kept.expires_at > now {
                return (false, forget_at);
            }
            *kept = entry;
            (true, entry.expires_at.saturating_add(keep).max(now + 1))
        })
    }

    pub(crate) fn check(&self, key: ReplayKey, digest: &[u8; 32], now: i64) -> CodeCheck {
        self.update(key, now, |kept, forget_at| {
            if *kept == CodeEntry::default() {
                // Nothing issued (or used): leave nothing behind.
                return (CodeCheck::Missing, i64::MIN);
            }
            match kept.check(digest, now) {
                (check, true) => (check, i64::MIN),
                (check, false) => (check, forget_at),
            }
        })
    }
}

impl LimitShards<RateEntry> {
    pub(crate) fn take(&self, key: ReplayKey, rule: RateRule, now_ms: i64) -> RateState {
        self.update(key, now_ms, |entry, _| {
            let state = entry.take(rule, now_ms);
            (state, entry.forget_at_ms())
        })
    }
}

/// Drop expired entries; if none was, evict one of a few: unlocked first, then the one
/// forgotten soonest.
fn make_room<E: Limited>(shard: &mut Shard<E>, now: i64) {
    let before = shard.len();
    shard.retain(|_, kept| kept.forget_at > now);
    if shard.len() < before {
        return;
    }
    let victim = shard
        .iter()
        .take(EVICTION_SAMPLE)
        .min_by_key(|(_, kept)| (kept.entry.holds_back(now), kept.forget_at))
        .map(|(key, _)| *key);
    if let Some(victim) = victim {
        shard.remove(&victim);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every change is one insert, update or remove: a poisoned lock's map is consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: FailureRule = FailureRule {
        max_failures: 2,
        window: 60,
        max_lockout: 600,
    };

    fn key(n: u32) -> ReplayKey {
        ReplayKey::derive(&[&n.to_le_bytes()])
    }

    #[test]
    fn a_flood_of_distinct_keys_stays_within_the_cap_and_locked_keys_survive_it() {
        let limits = LimitShards::<FailureEntry>::new(1024);
        let locked = key(u32::MAX);
        limits.failure_step(locked, RULE, FailureStep::Fail, 0);
        assert_eq!(
            limits
                .failure_step(locked, RULE, FailureStep::Fail, 0)
                .locked_for,
            Some(60)
        );
        for n in 0..200_000 {
            limits.failure_step(key(n), RULE, FailureStep::Fail, 1);
        }
        assert!(limits.len() <= limits.capacity(), "{} keys", limits.len());
        assert_eq!(
            limits
                .failure_step(locked, RULE, FailureStep::Attempt, 2)
                .locked_for,
            Some(58)
        );
    }

    #[test]
    fn an_unknown_key_is_neither_charged_nor_kept() {
        let limits = LimitShards::<FailureEntry>::new(64);
        let answer = limits.failure_step(key(1), RULE, FailureStep::Attempt, 0);
        assert_eq!((answer.charged, answer.locked_for), (None, None));
        let refund = FailureStep::Refund { charged_in: 60 };
        limits.failure_step(key(1), RULE, refund, 0);
        assert_eq!(limits.len(), 0);
        // Known once it failed: charged from then on.
        limits.failure_step(key(1), RULE, FailureStep::Fail, 0);
        let answer = limits.failure_step(key(1), RULE, FailureStep::Attempt, 1);
        assert_eq!(answer.charged, Some(60));
    }

    #[test]
    fn which_keys_share_a_shard_differs_from_store_to_store() {
        let (one, other) = (
            LimitShards::<FailureEntry>::new(64),
            LimitShards::<FailureEntry>::new(64),
        );
        let shards = |limits: &LimitShards| -> Vec<usize> {
            (0..64).map(|n| limits.shard_index(&key(n))).collect()
        };
        // Equal by chance once in 32^64.
        assert_ne!(shards(&one), shards(&other));
    }

    #[test]
    fn an_entry_past_its_forget_time_starts_over() {
        let limits = LimitShards::<FailureEntry>::new(64);
        limits.failure_step(key(1), RULE, FailureStep::Fail, 0);
        assert_eq!(
            limits
                .failure_step(key(1), RULE, FailureStep::Fail, 0)
                .locked_for,
            Some(60)
        );
        // Long after the lock and the cap: no strike is remembered.
        let later = 60 + 60 + 600 + 1;
        limits.failure_step(key(1), RULE, FailureStep::Fail, later);
        assert_eq!(
            limits
                .failure_step(key(1), RULE, FailureStep::Fail, later)
                .locked_for,
            Some(60)
        );
    }
}
