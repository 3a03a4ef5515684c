//! A replay store shared by many instances, on Redis (feature `redis`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::replay::{ReplayKey, ReplayStore, StoreError, StoreFuture};

/// How long one Redis command may take before the store reports itself unavailable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// A [`ReplayStore`] on Redis: `SET key 1 NX EX window` records a key atomically, so two
/// replicas sharing one Redis accept a delivery once between them. The connection manager
/// reconnects by itself; a command that fails or takes longer than a second is reported as
/// [`StoreError`], which the guard answers with 503 unless the verifier fails open.
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
    connection: ConnectionManager,
    prefix: Arc<str>,
}

impl RedisReplayStore {
    /// Connect to the Redis at `url` (`redis://host:port/db`); keys are prefixed with
    /// `callguard:replay:`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the URL is invalid or the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(|e| StoreError(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| StoreError(e.to_string()))?;
        Ok(Self {
            connection,
            prefix: "callguard:replay:".into(),
        })
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

impl ReplayStore for RedisReplayStore {
    fn first_seen(&self, key: ReplayKey, window: Duration) -> StoreFuture {
        let mut connection = self.connection.clone();
        let key = self.redis_key(&key);
        let seconds = window.as_secs().max(1);
        StoreFuture::pending(async move {
            let set: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("NX")
                .arg("EX")
                .arg(seconds)
                .query_async(&mut connection)
                .await
                .map_err(|e| StoreError(e.to_string()))?;
            Ok(set.is_some())
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
                .map_err(|e| StoreError(e.to_string()))?;
            Ok(count > 0)
        })
    }
}
