//! The cost of a limit decision on the in-memory store, one thread and two, beside
//! `governor` (what `tower_governor` uses) deciding on the same keys; and the memory a
//! flood of 1 000 000 distinct sources leaves behind.

#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "a bench fails by panicking and reports what criterion does not measure"
)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use callguard::limit::{FailureLimit, RateLimit};
use callguard::replay::{FailureStep, MemoryReplayStore, ReplayKey, ReplayStore};
use criterion::{Criterion, criterion_group, criterion_main};
use governor::{Quota, RateLimiter};

const KEYS: u32 = 10_000;

fn key(n: u32) -> ReplayKey {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&n.to_le_bytes());
    bytes[28..].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_le_bytes());
    ReplayKey::from_bytes(bytes)
}

fn ip(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | n))
}

/// Run `decide(n)` for `iterations` keys spread over `threads` threads; the time per
/// decision, wall clock (so two threads on two cores show contention, not a sum).
fn spread(threads: u32, iterations: u64, decide: &(dyn Fn(u32) + Sync)) -> Duration {
    let per_thread = iterations.div_ceil(u64::from(threads));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            scope.spawn(move || {
                for i in 0..per_thread {
                    let n = u32::try_from((i + u64::from(t) * 7919) % u64::from(KEYS)).unwrap();
                    decide(n);
                }
            });
        }
    });
    started.elapsed() / threads
}

fn decisions(c: &mut Criterion) {
    let store = MemoryReplayStore::default();
    let rule = RateLimit::builder(store.clone())
        .quota(1_000, Duration::from_secs(1))
        .build()
        .unwrap()
        .rule();
    let failures = FailureLimit::builder(store.clone()).build().unwrap().rule();
    let now_ms = 1_800_000_000_000i64;
    let governor = RateLimiter::keyed(Quota::per_second(NonZeroU32::new(1_000).unwrap()));
    let mut group = c.benchmark_group("limit_decision");
    for threads in [1u32, 2] {
        group.bench_function(format!("callguard_rate/{threads}_threads"), |b| {
            b.iter_custom(|iterations| {
                spread(threads, iterations, &|n| {
                    let mut answer = store.rate(key(n), rule, now_ms);
                    black_box(futures_ready(&mut answer));
                })
            });
        });
        group.bench_function(format!("callguard_failure_check/{threads}_threads"), |b| {
            b.iter_custom(|iterations| {
                spread(threads, iterations, &|n| {
                    let mut answer =
                        store.failure_step(key(n), failures, FailureStep::Attempt, now_ms / 1000);
                    black_box(futures_ready(&mut answer));
                })
            });
        });
        group.bench_function(format!("callguard_failure_record/{threads}_threads"), |b| {
            b.iter_custom(|iterations| {
                spread(threads, iterations, &|n| {
                    let mut answer =
                        store.failure_step(key(n), failures, FailureStep::Fail, now_ms / 1000);
                    black_box(futures_ready(&mut answer));
                })
            });
        });
        group.bench_function(format!("governor_keyed/{threads}_threads"), |b| {
            b.iter_custom(|iterations| {
                spread(threads, iterations, &|n| {
                    black_box(governor.check_key(&ip(n)).is_ok());
                })
            });
        });
    }
    group.finish();
}

/// An in-memory store's answer is ready at once: take it without a runtime.
fn futures_ready<T>(answer: &mut callguard::replay::StoreFuture<T>) -> bool {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};
    let mut cx = Context::from_waker(Waker::noop());
    matches!(Pin::new(answer).poll(&mut cx), Poll::Ready(Ok(_)))
}

/// A flood of 1 000 000 distinct sources: the entries the store keeps (its cap) and the
/// process's resident memory, against governor's, which keeps every key until it is told
/// to forget.
fn flood(_: &mut Criterion) {
    let rss = || {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            })
            .unwrap_or(0)
    };
    let store = MemoryReplayStore::default();
    let failures = FailureLimit::builder(store.clone()).build().unwrap().rule();
    let before = rss();
    for n in 0..1_000_000u32 {
        let mut answer = store.failure_step(key(n), failures, FailureStep::Fail, 1_800_000_000);
        futures_ready(&mut answer);
    }
    let (held, cap) = store.limit_keys();
    let after = rss();
    eprintln!(
        "limit_flood/callguard: 1000000 distinct sources, {held} entries kept (cap {cap}), resident +{} KiB",
        after.saturating_sub(before)
    );
    let governor = RateLimiter::keyed(Quota::per_second(NonZeroU32::new(10).unwrap()));
    let before = rss();
    for n in 0..1_000_000u32 {
        black_box(governor.check_key(&ip(n)).is_ok());
    }
    let after = rss();
    eprintln!(
        "limit_flood/governor: 1000000 distinct sources, {} entries kept, resident +{} KiB",
        governor.len(),
        after.saturating_sub(before)
    );
}

criterion_group!(benches, decisions, flood);
criterion_main!(benches);
