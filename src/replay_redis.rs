//! A replay store shared by many instances, on Redis (feature `redis`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::Cause;
use crate::replay::{
    CodeCheck, CodeEntry, FailureRule, FailureState, FailureStep, RateRule, RateState, RecordId,
    ReplayKey, ReplayStore, StoreError, StoreFuture,
};

/// How long one Redis command may take before the store reports itself unavailable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Records `KEYS[1]` as `ARGV[1]` for `ARGV[2]` seconds if it is new (1); if it is there,
/// extends its time to `ARGV[2]` seconds when that ends later (0): a refused retry under the
/// same signed id keeps the key as long as the retry verifies.
const RECORD: &str = r"if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 1 end
local ttl = redis.call('TTL', KEYS[1])
if ttl >= 0 and ttl < tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 0";

/// Deletes `KEYS[1]` only while it holds the record `ARGV[1]`.
const RELEASE: &str = r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// Takes one step on the failure count of `KEYS[1]` (a hash: failures `f`, window end `w`,
/// strikes `s`, locked until `l`) at `ARGV[1]` under max failures `ARGV[2]`, window
/// `ARGV[3]` and cap `ARGV[4]` (seconds); the step `ARGV[5]` is `attempt`, `charge`, `peek`,
/// `fail`, `settle` or `refund`, the last two for a charge made in the window ending at
/// `ARGV[6]`: the steps of
/// `FailureEntry::step`, in one atomic script on one key. Answers `{failures, seconds
/// locked (0: none), the window end a charge counts in (0: not charged)}`.
const FAIL: &str = r"local now = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local cap = tonumber(ARGV[4])
local step = ARGV[5]
local charged_in = tonumber(ARGV[6])
local v = redis.call('HMGET', KEYS[1], 'f', 'w', 's', 'l')
if not v[2] and (step == 'attempt' or step == 'peek' or step == 'refund') then return {0, 0, 0} end
local f = tonumber(v[1]) or 0
local w = tonumber(v[2]) or 0
local s = tonumber(v[3]) or 0
local l = tonumber(v[4]) or 0
if l > now then return {f, l - now, 0} end
if step == 'peek' then return {f, 0, 0} end
if step == 'attempt' or step == 'charge' then
  if now >= w then f = 0; w = now + window end
  if f >= max then return {f, 1, 0} end
  f = f + 1
  redis.call('HSET', KEYS[1], 'f', f, 'w', w)
  redis.call('EXPIRE', KEYS[1], math.max(1, math.max(w, l) + cap - now))
  return {f, 0, w}
end
if step == 'refund' then
  if now < w and w == charged_in and f > 0 then
    f = f - 1
    redis.call('HSET', KEYS[1], 'f', f)
  end
  return {f, 0, 0}
end
if step == 'settle' and now < w and w == charged_in then
  if f < max then return {f, 0, 0} end
else
  if now >= w then f = 0; w = now + window end
  f = f + 1
end
local lock = 0
if f >= max then
  s = s + 1
  if s == 1 then lock = w - now else lock = math.min(window * 2 ^ math.min(s - 1, 32), cap) end
  if lock < 1 then lock = 1 end
  l = now + lock
  f = 0
  w = l
end
redis.call('HSET', KEYS[1], 'f', f, 'w', w, 's', s, 'l', l)
redis.call('EXPIRE', KEYS[1], math.max(1, math.max(w, l) + cap - now))
return {f, lock, 0}";

/// Decides one request of `KEYS[1]` (the theoretical arrival time, in unix milliseconds)
/// at `ARGV[1]` ms under period `ARGV[2]` ms, quota `ARGV[3]` and burst `ARGV[4]`: the steps
/// of `RateEntry::take` (GCRA), in one atomic script on one key. Answers `{allowed,
/// remaining, reset ms, retry-after ms}`.
const RATE: &str = r"local now = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local quota = math.max(tonumber(ARGV[3]), 1)
local burst = math.min(math.max(tonumber(ARGV[4]), 1), quota)
local interval = math.max(math.floor(period / quota), 1)
local cap = interval * burst
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local nxt = tat + interval
local allowed_at = nxt - cap
if now < allowed_at then
  return {0, math.max(math.floor((now + cap - tat) / interval), 0), tat - now, allowed_at - now}
end
redis.call('SET', KEYS[1], string.format('%d', nxt), 'PX', math.max(nxt - now, 1))
return {1, math.max(math.floor((now + cap - nxt) / interval), 0), nxt - now, 0}";

/// Checks the hash `ARGV[1]` against the one-time code kept in `KEYS[1]` (a hash: digest
/// `d`, expiry `e`, attempts left `a`) at `ARGV[2]`: the steps of `CodeEntry::check`, in one
/// script. Answers `{0 verified (and deleted) | 1 wrong | 2 too many | 3 expired | 4
/// missing, attempts left or seconds to wait}`.
const CHECK_CODE: &str = r"local v = redis.call('HMGET', KEYS[1], 'd', 'e', 'a')
if not v[1] then return {4, 0} end
local now = tonumber(ARGV[2])
local e = tonumber(v[2])
local a = tonumber(v[3])
if now >= e then return {3, 0} end
if a == 0 then return {2, e - now} end
if v[1] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return {0, 0}
end
a = a - 1
redis.call('HSET', KEYS[1], 'a', a)
return {1, a}";

/// Keeps a one-time code in `KEYS[1]`: digest `ARGV[1]`, expiry `ARGV[2]`, attempts
/// `ARGV[3]`, kept `ARGV[5]` seconds; unless the code there has used up its attempts and is
/// live at `ARGV[4]` (0).
const PUT_CODE: &str = r"local v = redis.call('HMGET', KEYS[1], 'e', 'a')
if v[1] and tonumber(v[2]) == 0 and tonumber(v[1]) > tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'e', ARGV[2], 'a', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1";

/// How many times, and how far apart, the store tries to undo a record it gave up on.
const UNDO_ATTEMPTS: u32 = 10;
const UNDO_INTERVAL: Duration = Duration::from_secs(1);

/// A [`ReplayStore`] on Redis: one script runs `SET key <record> NX EX window` (and, when the
/// key is there, extends its time to a later-ending window), so two replicas sharing one
/// Redis accept a delivery once between them. The connection
/// manager reconnects by itself; a command that fails or takes longer than a second is
/// reported as [`StoreError`], which the guard answers with 503 unless the verifier fails
/// open.
///
/// Every record holds its own [`RecordId`], and a record is undone only by a script that
/// deletes the key while it still holds that value: a release after the handler failed,
/// and the undoing of a `SET` the guard gave up waiting for (Redis stalled past the
/// timeout, then applied it), which the store sends on the same connection right away and
/// retries in the background, so the delivery's retry is not refused as a replay. Each
/// command and script touches one key, so the store works on Redis Cluster as well
/// ([`connect_cluster`](Self::connect_cluster); `scripts/redis_cluster.sh` checks it on three
/// masters). Failure counts and rates live here too: one script per decision, one round
/// trip. An accepted request under a failure limit and a rate limit makes two (three when
/// its client has a failure on record: its charged attempt is refunded), plus one for each
/// per-account or per-network count it is looked up under, a signed delivery with replay
/// protection one; `tests/replay_redis.rs` counts them on a real Redis.
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use callguard::{Secret, providers, replay_redis::RedisReplayStore};
///
/// let store = RedisReplayStore::connect("redis://127.0.0.1:6379/").await?;
/// let stripe = providers::stripe()
///     .secret("2026-11", Secret::from_env("STRIPE_WEBHOOK_SECRET")?)
///     .replay_protection(store)
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisReplayStore {
    connection: Connection,
    prefix: Arc<str>,
    record: Arc<redis::Script>,
    release: Arc<redis::Script>,
    fail: Arc<redis::Script>,
    rate: Arc<redis::Script>,
    check_code: Arc<redis::Script>,
    put_code: Arc<redis::Script>,
}

/// One Redis, reconnecting by itself, or a Redis Cluster, following its slots.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl redis::aio::ConnectionLike for Connection {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Single(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

impl RedisReplayStore {
    /// Connect to the Redis at `url` (`redis://host:port/db`); keys are prefixed with
    /// `callguard:replay:`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the URL is invalid or the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(|e| StoreError::new(Cause::new(e)))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| StoreError::new(Cause::new(e)))?;
        Ok(Self::with_connection(Connection::Single(connection)))
    }

    /// Connect to the Redis Cluster whose nodes include `nodes` (`redis://host:port`); keys
    /// are prefixed with `callguard:replay:`. Every command and script touches one key, so
    /// each goes to the one node that holds its slot, and replicas sharing the cluster share
    /// every record, count and rate.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when a URL is invalid or the cluster cannot be reached.
    pub async fn connect_cluster<S: AsRef<str>>(
        nodes: impl IntoIterator<Item = S>,
    ) -> Result<Self, StoreError> {
        let nodes: Vec<String> = nodes.into_iter().map(|n| n.as_ref().to_owned()).collect();
        let client = redis::cluster::ClusterClient::builder(nodes)
            .response_timeout(RESPONSE_TIMEOUT)
            .connection_timeout(RESPONSE_TIMEOUT)
            .retries(1)
            .build()
            .map_err(|e| StoreError::new(Cause::new(e)))?;
        let connection = client
            .get_async_connection()
            .await
            .map_err(|e| StoreError::new(Cause::new(e)))?;
        Ok(Self::with_connection(Connection::Cluster(connection)))
    }

    fn with_connection(connection: Connection) -> Self {
        Self {
            connection,
            prefix: "callguard:replay:".into(),
            record: Arc::new(redis::Script::new(RECORD)),
            release: Arc::new(redis::Script::new(RELEASE)),
            fail: Arc::new(redis::Script::new(FAIL)),
            rate: Arc::new(redis::Script::new(RATE)),
            check_code: Arc::new(redis::Script::new(CHECK_CODE)),
            put_code: Arc::new(redis::Script::new(PUT_CODE)),
        }
    }

    /// Use `prefix` before every key instead of `callguard:replay:`.
    #[must_use]
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.into();
        self
    }

    fn redis_key(&self, key: &ReplayKey) -> String {
        format!("{}{}", self.prefix, hex::encode(key.as_bytes()))
    }
}

impl fmt::Debug for RedisReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisReplayStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Run the release script for `key` and `record`: `Ok(true)` when it deleted the key.
async fn release(
    script: &redis::Script,
    connection: &mut Connection,
    key: &str,
    record: &str,
) -> Result<bool, StoreError> {
    let deleted: i64 = script
        .key(key)
        .arg(record)
        .invoke_async(connection)
        .await
        .map_err(|e| StoreError::new(Cause::new(e)))?;
    Ok(deleted > 0)
}

/// Undo a record whose `SET` may still land: once now, on the connection the `SET` went out
/// on (so Redis runs it after the `SET`), then again at intervals in case the connection
/// was lost with both still queued.
fn undo(store: &RedisReplayStore, key: String, record: String) {
    let (mut connection, script) = (store.connection.clone(), Arc::clone(&store.release));
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        for attempt in 0..UNDO_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(UNDO_INTERVAL).await;
            }
            match release(&script, &mut connection, &key, &record).await {
                Ok(true) => return,
                // Not there: the SET may not have been applied yet; try again later.
                Ok(false) => {}
                Err(error) => {
                    tracing::debug!(%error, "callguard could not yet undo a replay record");
                }
            }
        }
    });
}

impl ReplayStore for RedisReplayStore {
    fn first_seen(&self, key: ReplayKey, record: RecordId, window: Duration) -> StoreFuture {
        let mut connection = self.connection.clone();
        let key = self.redis_key(&key);
        let record = format!("{:032x}", record.as_u128());
        let seconds = window.as_secs().max(1);
        let store = self.clone();
        let script = Arc::clone(&self.record);
        StoreFuture::pending(async move {
            let set: Result<i64, _> = script
                .key(&key)
                .arg(&record)
                .arg(seconds)
                .invoke_async(&mut connection)
                .await;
            match set {
                Ok(set) => Ok(set == 1),
                Err(error) => {
                    // The guard answers 503 now; a SET Redis applies later must not refuse
                    // the delivery's retry.
                    undo(&store, key, record);
                    Err(StoreError::new(Cause::new(error)))
                }
            }
        })
    }

    fn release(&self, key: ReplayKey, record: RecordId) -> StoreFuture {
        let mut connection = self.connection.clone();
        let key = self.redis_key(&key);
        let record = format!("{:032x}", record.as_u128());
        let script = Arc::clone(&self.release);
        StoreFuture::pending(async move { release(&script, &mut connection, &key, &record).await })
    }

    fn failure_step(
        &self,
        key: ReplayKey,
        rule: FailureRule,
        step: FailureStep,
        now: i64,
    ) -> StoreFuture<FailureState> {
        let mut connection = self.connection.clone();
        let key = self.redis_key(&key);
        let script = Arc::clone(&self.fail);
        let (step, charged_in) = match step {
            FailureStep::Attempt => ("attempt", 0),
            FailureStep::Charge => ("charge", 0),
            FailureStep::Peek => ("peek", 0),
            FailureStep::Fail => ("fail", 0),
            FailureStep::Settle { charged_in } => ("settle", charged_in),
            FailureStep::Refund { charged_in } => ("refund", charged_in),
        };
        StoreFuture::pending(async move {
            let (failures, locked, charged_in): (u32, u64, i64) = script
                .key(&key)
                .arg(now)
                .arg(rule.max_failures)
                .arg(rule.window)
                .arg(rule.max_lockout)
                .arg(step)
                .arg(charged_in)
                .invoke_async(&mut connection)
                .await
                .map_err(|e| StoreError::new(Cause::new(e)))?;
            let state = FailureState::new(failures, (locked > 0).then_some(locked));
            Ok(if charged_in > 0 {
                state.charged_in(charged_in)
            } else {
                state
            })
        })
    }

    fn rate(&self, key: ReplayKey, rule: RateRule, now_ms: i64) -> StoreFuture<RateState> {
        let mut connection = self.connection.clone();
        let key = self.redis_key(&key);
        let script = Arc::clone(&self.rate);
        StoreFuture::pending(async move {
            let (allowed, remaining, reset, retry_after): (i64, u32, u64, u64) = script
                .key(&key)
                .arg(now_ms)
                .arg(rule.period_ms)
                .arg(rule.quota)
                .arg(rule.burst)
                .invoke_async(&mut connection)
                .await
                .map_err(|e| StoreError::new(Cause::new(e)))?;
            Ok(RateState::new(allowed == 1, remaining, reset, retry_after))
        })
    }

    fn put_code(
        &self,
        key: ReplayKey,
        entry: CodeEntry,
        now: i64,
        keep_after: u64,
    ) -> StoreFuture<bool> {
        let mut connection = self.connection.clone();
        let key = self.redis_key(&key);
        let keep = (entry.expires_at - now)
            .max(1)
            .unsigned_abs()
            .saturating_add(keep_after);
        let script = Arc::clone(&self.put_code);
        StoreFuture::pending(async move {
            let kept: i64 = script
                .key(&key)
                .arg(hex::encode(entry.digest))
                .arg(entry.expires_at)
                .arg(entry.attempts_left)
                .arg(now)
                .arg(keep)
                .invoke_async(&mut connection)
                .await
                .map_err(|e| StoreError::new(Cause::new(e)))?;
            Ok(kept == 1)
        })
    }

    fn check_code(&self, key: ReplayKey, digest: [u8; 32], now: i64) -> StoreFuture<CodeCheck> {
        let mut connection = self.connection.clone();
        let key = self.redis_key(&key);
        let script = Arc::clone(&self.check_code);
        StoreFuture::pending(async move {
            let (outcome, value): (u8, u64) = script
                .key(&key)
                .arg(hex::encode(digest))
                .arg(now)
                .invoke_async(&mut connection)
                .await
                .map_err(|e| StoreError::new(Cause::new(e)))?;
            Ok(match outcome {
                0 => CodeCheck::Verified,
                1 => CodeCheck::Wrong {
                    attempts_left: u32::try_from(value).unwrap_or(0),
                },
                2 => CodeCheck::TooManyAttempts { retry_after: value },
                3 => CodeCheck::Expired,
                _ => CodeCheck::Missing,
            })
        })
    }

    fn contains(&self, key: ReplayKey) -> StoreFuture {
        let mut connection = self.connection.clone();
        let key = self.redis_key(&key);
        StoreFuture::pending(async move {
            let count: i64 = redis::cmd("EXISTS")
                .arg(&key)
                .query_async(&mut connection)
                .await
                .map_err(|e| StoreError::new(Cause::new(e)))?;
            Ok(count > 0)
        })
    }
}
