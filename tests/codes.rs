//! One-time codes: random, stored only as a keyed hash, checked at most a few times, used
//! once, expiring, and not re-sent too often.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use std::time::Duration;

use callguard::Secret;
use callguard::clock::FixedClock;
use callguard::limit::OneTimeCodes;
use callguard::replay::MemoryReplayStore;
use common::codes::{Outbox, codes, the_flow};

const NOW: i64 = 1_800_000_000;

#[tokio::test]
async fn codes_in_memory_follow_the_flow() {
    let clock = FixedClock::at_unix(NOW);
    let store = MemoryReplayStore::with_clock(1024, clock.clone());
    the_flow(
        &codes(store, &clock, Duration::ZERO),
        &clock,
        "+15551234567",
        Duration::ZERO,
    )
    .await;
}

#[tokio::test]
async fn codes_are_uniform_digits() {
    let clock = FixedClock::at_unix(NOW);
    let codes = OneTimeCodes::builder(
        MemoryReplayStore::with_clock(100_000, clock.clone()),
        Secret::from_utf8("a-key-for-code-hashes-0123").unwrap(),
    )
    .length(4)
    .clock(clock)
    .build()
    .unwrap();
    let outbox = Outbox::default();
    let mut counts = [0u32; 10];
    for n in 0..2000 {
        codes
            .issue(&format!("user-{n}"), "mfa", &outbox)
            .await
            .unwrap();
        for digit in outbox.last().bytes() {
            counts[usize::from(digit - b'0')] += 1;
        }
    }
    // 8000 digits: each about 800; a biased draw (a plain byte % 10) would still pass this
    // loosely, so the bound is a smoke check that every digit occurs and none dominates.
    assert!(counts.iter().all(|c| (650..950).contains(c)), "{counts:?}");
}

#[test]
fn settings_that_could_never_work_are_refused_when_built() {
    let build = |length: u32, attempts: u32| {
        OneTimeCodes::builder(
            MemoryReplayStore::default(),
            Secret::from_utf8("a-key-for-code-hashes-0123").unwrap(),
        )
        .length(length)
        .max_attempts(attempts)
        .build()
    };
    assert!(build(3, 3).is_err());
    assert!(build(11, 3).is_err());
    assert!(build(6, 0).is_err());
    assert!(build(6, 3).is_ok());
}
