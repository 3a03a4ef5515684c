//! The one store on Redis Cluster: two replicas share replay records, failure counts and
//! rates through three masters. `scripts/redis_cluster.sh` starts the cluster and runs this
//! with `CALLGUARD_REDIS_CLUSTER` naming its nodes; without it the tests say they skipped.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]
#![allow(clippy::print_stderr, reason = "a skipped test says so")]

use std::time::Duration;

use callguard::limit::{FailureLimit, RateLimit};
use callguard::replay::{FailureStep, MemoryReplayStore, RecordId, ReplayKey, ReplayStore};
use callguard::replay_redis::RedisReplayStore;

async fn replicas() -> Option<(RedisReplayStore, RedisReplayStore)> {
    let Ok(nodes) = std::env::var("CALLGUARD_REDIS_CLUSTER") else {
        assert!(
            std::env::var("CALLGUARD_REQUIRE_REDIS_CLUSTER").is_err(),
            "CALLGUARD_REDIS_CLUSTER must name the cluster's nodes here"
        );
        eprintln!("SKIPPED: no Redis Cluster (run scripts/redis_cluster.sh)");
        return None;
    };
    let nodes: Vec<&str> = nodes.split(',').collect();
    let a = RedisReplayStore::connect_cluster(&nodes).await.unwrap();
    let b = RedisReplayStore::connect_cluster(&nodes).await.unwrap();
    Some((a, b))
}

fn key(n: u32) -> ReplayKey {
    // Spread over the slots: different leading bytes hash to different nodes.
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_be_bytes());
    ReplayKey::from_bytes(bytes)
}

#[tokio::test]
async fn two_replicas_accept_each_delivery_once_across_the_cluster() {
    let Some((a, b)) = replicas().await else {
        return;
    };
    for n in 0..64 {
        let (ra, rb) = (RecordId::new(), RecordId::new());
        let window = Duration::from_secs(60);
        let first = a.first_seen(key(n), ra, window).await.unwrap();
        let second = b.first_seen(key(n), rb, window).await.unwrap();
        assert!(first && !second, "key {n}: {first} {second}");
        assert!(b.contains(key(n)).await.unwrap());
        // Only the record's own maker releases it, from either replica.
        assert!(!b.release(key(n), rb).await.unwrap());
        assert!(b.release(key(n), ra).await.unwrap());
        assert!(!a.contains(key(n)).await.unwrap());
    }
}

#[tokio::test]
async fn failure_counts_and_rates_are_shared_across_the_cluster() {
    let Some((a, b)) = replicas().await else {
        return;
    };
    let failures = FailureLimit::builder(MemoryReplayStore::default())
        .max_failures(3)
        .window(Duration::from_secs(60))
        .build()
        .unwrap()
        .rule();
    let rate = RateLimit::builder(MemoryReplayStore::default())
        .quota(4, Duration::from_secs(60))
        .build()
        .unwrap()
        .rule();
    let now = 1_800_000_000i64;
    for n in 100..132 {
        assert_eq!(
            a.failure_step(key(n), failures, FailureStep::Fail, now)
                .await
                .unwrap()
                .locked_for,
            None
        );
        assert_eq!(
            b.failure_step(key(n), failures, FailureStep::Fail, now)
                .await
                .unwrap()
                .locked_for,
            None
        );
        assert_eq!(
            a.failure_step(key(n), failures, FailureStep::Fail, now)
                .await
                .unwrap()
                .locked_for,
            Some(60)
        );
        assert_eq!(
            b.failure_step(key(n), failures, FailureStep::Attempt, now + 10)
                .await
                .unwrap()
                .locked_for,
            Some(50)
        );
    }
    for n in 200..232 {
        let now_ms = now * 1000;
        let allowed = [&a, &b, &a, &b, &a, &b];
        let mut count = 0;
        for store in allowed {
            if store.rate(key(n), rate, now_ms).await.unwrap().allowed {
                count += 1;
            }
        }
        assert_eq!(count, 4, "key {n}");
    }
}

#[tokio::test]
async fn one_time_codes_are_shared_across_the_cluster() {
    use callguard::replay::{CodeCheck, CodeEntry};
    let Some((a, b)) = replicas().await else {
        return;
    };
    let now = 1_800_000_000i64;
    for n in 300..332 {
        let entry = CodeEntry {
            digest: [7; 32],
            expires_at: now + 300,
            attempts_left: 2,
        };
        assert!(a.put_code(key(n), entry, now, 300).await.unwrap());
        assert_eq!(
            b.check_code(key(n), [1; 32], now).await.unwrap(),
            CodeCheck::Wrong { attempts_left: 1 }
        );
        assert_eq!(
            a.check_code(key(n), [7; 32], now).await.unwrap(),
            CodeCheck::Verified
        );
        assert_eq!(
            b.check_code(key(n), [7; 32], now).await.unwrap(),
            CodeCheck::Missing
        );
    }
}
