//! One remote key set: fetched under limits, held for lock-free reads, refreshed in the
//! background, refetched on an unknown key id at most once per interval, single-flight, and
//! kept when a refresh fails.

// The request-path side (`state`, `refetch`) has one consumer today, `oauth`; agents' key
// directories are the next.
#![cfg_attr(not(feature = "oauth"), allow(dead_code))]

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use http::header::CACHE_CONTROL;

use super::http::{FetchError, HttpClient, check_url, get_document};

/// Keeps [`KeyDocument`] implemented by callguard's documents only: each is parsed under
/// limits that are part of what callguard promises.
mod sealed {
    pub trait Sealed {}
    #[cfg(feature = "jwt")]
    impl Sealed for crate::jwt::JwtKeySet {}
}

/// A document of keys a [`RemoteKeys`] fetches: a JWKS today, a key directory tomorrow.
/// Sealed: implemented by callguard's documents only.
pub trait KeyDocument: sealed::Sealed + Sized + Send + Sync + 'static {
    /// Parse a fetched body, refusing more than `max_keys` keys.
    ///
    /// # Errors
    ///
    /// [`FetchError::Invalid`] for a body that is not such a document.
    fn parse(body: &[u8], max_keys: usize) -> Result<Self, FetchError>;

    /// How many usable keys the document holds.
    fn len(&self) -> usize;

    /// Whether it holds none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Limits and timings of a remote key set. The defaults suit an authorization server's JWKS.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RemoteKeySettings {
    /// The least time between two fetches caused by unknown key ids (default 10 s).
    pub refetch_interval: Duration,
    /// Bounds on how long a fetched set is used before the background refresh, whatever
    /// `Cache-Control: max-age` says (default 60 s to 24 h).
    pub min_refresh: Duration,
    /// See `min_refresh`.
    pub max_refresh: Duration,
    /// How long a set is used when its answer has no `max-age` (default 5 min).
    pub default_refresh: Duration,
    /// How long the last good set keeps verifying while every refresh fails; after that,
    /// requests that need it are answered 503 (default 24 h).
    pub max_stale: Duration,
    /// The most one fetch may take, and the most a request waits for one (default 5 s).
    pub timeout: Duration,
    /// The longest answer accepted (default 256 KiB).
    pub max_bytes: usize,
    /// The most keys one document may hold (default 64).
    pub max_keys: usize,
    /// Allow plain `http` to a loopback host (default off: `https` only).
    pub allow_loopback_http: bool,
}

impl Default for RemoteKeySettings {
    fn default() -> Self {
        Self {
            refetch_interval: Duration::from_secs(10),
            min_refresh: Duration::from_secs(60),
            max_refresh: Duration::from_secs(24 * 3600),
            default_refresh: Duration::from_secs(300),
            max_stale: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(5),
            max_bytes: 256 * 1024,
            max_keys: 64,
            allow_loopback_http: false,
        }
    }
}

impl RemoteKeySettings {
    /// Allow plain `http` to a loopback host, for tests and local development.
    #[must_use]
    pub fn allow_loopback_http(mut self) -> Self {
        self.allow_loopback_http = true;
        self
    }

    /// Set the least time between fetches caused by unknown key ids.
    #[must_use]
    pub fn refetch_interval(mut self, interval: Duration) -> Self {
        self.refetch_interval = interval;
        self
    }

    /// Set the most one fetch may take.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// A set of keys published by someone else at a URL. Cloning shares it.
///
/// Reads on the request path are lock-free (`arc-swap`). A background task (on the tokio
/// runtime that built the set) refreshes it when `Cache-Control: max-age`, bounded by the
/// settings, says; a key id the set does not hold triggers at most one fetch per
/// [`refetch_interval`](RemoteKeySettings::refetch_interval), and every request that
/// needs that fetch waits for the same one. A failed refresh keeps the last good set.
pub struct RemoteKeys<K> {
    shared: Arc<RemoteShared<K>>,
}

impl<K> Clone for RemoteKeys<K> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K> fmt::Debug for RemoteKeys<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteKeys")
            .field("url", &self.shared.url)
            .field("fetches", &self.shared.fetches.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

struct RemoteShared<K> {
    url: String,
    uri: http::Uri,
    client: Arc<dyn HttpClient>,
    settings: RemoteKeySettings,
    current: ArcSwapOption<Loaded<K>>,
    flight: Mutex<Flight<K>>,
    fetches: AtomicU64,
    last_failed: AtomicBool,
}

/// A fetched key set and when it was fetched.
pub(crate) struct Loaded<K> {
    pub(crate) keys: K,
    fetched: Instant,
    refresh_after: Duration,
}

impl<K> Loaded<K> {
    /// How long ago the set was fetched.
    pub(crate) fn age(&self) -> Duration {
        self.fetched.elapsed()
    }
}

/// A fetch that requests wait for together.
pub(crate) type KeyWait<K> = Shared<BoxFuture<'static, Result<Arc<Loaded<K>>, FetchError>>>;

struct Flight<K> {
    /// When the last fetch caused by an unknown key id started: the throttle applies to
    /// those (background refreshes are bounded by `min_refresh` instead).
    last_for_unknown: Option<Instant>,
    pending: Option<KeyWait<K>>,
}

/// What the set can offer a request right now.
pub(crate) enum KeyState<K> {
    /// Keys fetched within the staleness bound.
    Ready(Arc<Loaded<K>>),
    /// No usable keys: never fetched, or stale beyond the bound.
    Unavailable,
}

impl<K: KeyDocument> RemoteKeys<K> {
    /// Fetch the set at `url` now and keep it fresh in the background.
    ///
    /// # Errors
    ///
    /// [`FetchError`] when the URL is not allowed, the first fetch fails, or no tokio
    /// runtime is running.
    pub async fn fetch(
        url: &str,
        client: Arc<dyn HttpClient>,
        settings: RemoteKeySettings,
    ) -> Result<Self, FetchError> {
        let keys = Self::unfetched(url, client, settings)?;
        keys.shared.start_or_join().await?;
        keys.spawn_refresh()?;
        Ok(keys)
    }

    /// A set that is fetched in the background from now on; until the first fetch succeeds,
    /// requests that need it are answered 503 (for an issuer that may be down at startup).
    ///
    /// # Errors
    ///
    /// [`FetchError`] when the URL is not allowed or no tokio runtime is running.
    pub fn lazy(
        url: &str,
        client: Arc<dyn HttpClient>,
        settings: RemoteKeySettings,
    ) -> Result<Self, FetchError> {
        let keys = Self::unfetched(url, client, settings)?;
        keys.spawn_refresh()?;
        Ok(keys)
    }

    fn unfetched(
        url: &str,
        client: Arc<dyn HttpClient>,
        settings: RemoteKeySettings,
    ) -> Result<Self, FetchError> {
        let uri = check_url(url, settings.allow_loopback_http)?;
        Ok(Self {
            shared: Arc::new(RemoteShared {
                url: url.to_owned(),
                uri,
                client,
                settings,
                current: ArcSwapOption::empty(),
                flight: Mutex::new(Flight {
                    last_for_unknown: None,
                    pending: None,
                }),
                fetches: AtomicU64::new(0),
                last_failed: AtomicBool::new(false),
            }),
        })
    }

    fn spawn_refresh(&self) -> Result<(), FetchError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            FetchError::Invalid("a remote key set needs a running tokio runtime".to_owned())
        })?;
        runtime.spawn(refresh_loop(Arc::downgrade(&self.shared)));
        Ok(())
    }

    /// How many fetches this set has started (telemetry; tests count with it).
    pub fn fetches(&self) -> u64 {
        self.shared.fetches.load(Ordering::Relaxed)
    }

    /// The URL the set is fetched from.
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// The keys a request may use now.
    pub(crate) fn state(&self) -> KeyState<K> {
        match self.shared.current.load_full() {
            Some(loaded) if loaded.fetched.elapsed() <= self.shared.settings.max_stale => {
                KeyState::Ready(loaded)
            }
            _ => KeyState::Unavailable,
        }
    }

    /// A fetch for a key id the set does not hold, or whose key no longer verifies (an
    /// issuer that re-keyed under the same id): the one in flight, or a new one unless one
    /// started within the refetch interval (then `None`: the key is simply unknown).
    pub(crate) fn refetch(&self) -> Option<KeyWait<K>> {
        self.shared.refetch_throttled()
    }

    /// The least time between two fetches caused by requests.
    pub(crate) fn refetch_interval(&self) -> Duration {
        self.shared.settings.refetch_interval
    }

    /// The most a request waits for a fetch.
    pub(crate) fn wait_limit(&self) -> Duration {
        self.shared.settings.timeout
    }
}

impl<K: KeyDocument> RemoteShared<K> {
    fn refetch_throttled(self: &Arc<Self>) -> Option<KeyWait<K>> {
        let mut flight = self.flight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pending) = &flight.pending {
            return Some(pending.clone());
        }
        let interval = self.settings.refetch_interval;
        if flight
            .last_for_unknown
            .is_some_and(|at| at.elapsed() < interval)
        {
            return None;
        }
        flight.last_for_unknown = Some(Instant::now());
        Some(self.start(&mut flight))
    }

    fn start_or_join(self: &Arc<Self>) -> KeyWait<K> {
        let mut flight = self.flight.lock().unwrap_or_else(|e| e.into_inner());
        match &flight.pending {
            Some(pending) => pending.clone(),
            None => self.start(&mut flight),
        }
    }

    /// Start a fetch; the caller holds the flight lock.
    fn start(self: &Arc<Self>, flight: &mut Flight<K>) -> KeyWait<K> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let weak = Arc::downgrade(self);
        let wait = async move {
            let Some(shared) = weak.upgrade() else {
                return Err(FetchError::Invalid("the key set was dropped".to_owned()));
            };
            let timeout = shared.settings.timeout;
            let result = match tokio::time::timeout(timeout, shared.fetch_once()).await {
                Ok(result) => result,
                Err(_) => Err(FetchError::Timeout.at(&shared.url)),
            };
            match &result {
                Ok(loaded) => {
                    shared.current.store(Some(Arc::clone(loaded)));
                    shared.last_failed.store(false, Ordering::Relaxed);
                }
                Err(error) => {
                    shared.last_failed.store(true, Ordering::Relaxed);
                    tracing::warn!(
                        url = %shared.url,
                        %error,
                        keeping_previous = shared.current.load().is_some(),
                        "callguard could not fetch a remote key set"
                    );
                }
            }
            shared
                .flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pending = None;
            result
        }
        .boxed()
        .shared();
        flight.pending = Some(wait.clone());
        wait
    }

    async fn fetch_once(&self) -> Result<Arc<Loaded<K>>, FetchError> {
        self.fetch_document()
            .await
            .map_err(|error| error.at(&self.url))
    }

    async fn fetch_document(&self) -> Result<Arc<Loaded<K>>, FetchError> {
        let settings = &self.settings;
        let response = get_document(
            self.client.as_ref(),
            self.uri.clone(),
            settings.max_bytes,
            settings.timeout,
        )
        .await?;
        let max_age = response
            .headers()
            .get(CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        let keys = K::parse(response.body(), settings.max_keys)?;
        let refresh_after = max_age
            .unwrap_or(settings.default_refresh)
            .clamp(settings.min_refresh, settings.max_refresh);
        Ok(Arc::new(Loaded {
            keys,
            fetched: Instant::now(),
            refresh_after,
        }))
    }

    /// How long the background task sleeps before its next refresh.
    fn next_refresh(&self) -> Duration {
        match self.current.load_full() {
            _ if self.last_failed.load(Ordering::Relaxed) => self.settings.refetch_interval,
            Some(loaded) => loaded
                .refresh_after
                .saturating_sub(loaded.fetched.elapsed()),
            None => Duration::ZERO,
        }
    }
}

/// Refresh the set until it is dropped.
async fn refresh_loop<K: KeyDocument>(weak: Weak<RemoteShared<K>>) {
    loop {
        let delay = match weak.upgrade() {
            Some(shared) => shared.next_refresh(),
            None => return,
        };
        tokio::time::sleep(delay.max(Duration::from_millis(10))).await;
        let wait = match weak.upgrade() {
            Some(shared) => shared.start_or_join(),
            None => return,
        };
        let _ = wait.await;
    }
}

/// The `max-age` of a `Cache-Control` value, if it has one.
fn max_age(value: &str) -> Option<Duration> {
    value.split(',').find_map(|directive| {
        let (name, seconds) = directive.trim().split_once('=')?;
        name.eq_ignore_ascii_case("max-age")
            .then(|| seconds.trim().trim_matches('"').parse().ok())
            .flatten()
            .map(Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_among_other_directives() {
        assert_eq!(
            max_age("public, max-age=3600, must-revalidate"),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(max_age("no-store"), None);
        assert_eq!(max_age("MAX-AGE=\"60\""), Some(Duration::from_secs(60)));
        assert_eq!(max_age("max-age=-1"), None);
    }
}
