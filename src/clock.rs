//! Injectable time, so tolerance windows and expiry can be tested without waiting.
//!
//! ```
//! use std::time::Duration;
//! use callguard::clock::{Clock, FixedClock};
//!
//! let clock = FixedClock::at_unix(1_614_265_330);
//! clock.advance(Duration::from_secs(10));
//! assert_eq!(clock.unix_seconds(), 1_614_265_340);
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time.
///
/// Implemented by [`SystemClock`], [`FixedClock`] and any
/// `Fn() -> SystemTime + Send + Sync + 'static`.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// The current time as whole seconds since the Unix epoch (negative before it).
    fn unix_seconds(&self) -> i64 {
        match self.now().duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
        }
    }
}

impl<F> Clock for F
where
    F: Fn() -> SystemTime + Send + Sync + 'static,
{
    fn now(&self) -> SystemTime {
        self()
    }
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that stands still until told to move; clones share the same time.
#[derive(Clone)]
pub struct FixedClock {
    unix_seconds: Arc<AtomicI64>,
}

impl FixedClock {
    /// A clock standing at `seconds` since the Unix epoch.
    pub fn at_unix(seconds: i64) -> Self {
        Self {
            unix_seconds: Arc::new(AtomicI64::new(seconds)),
        }
    }

    /// Move the clock (and all its clones) to `seconds` since the Unix epoch.
    pub fn set_unix(&self, seconds: i64) {
        self.unix_seconds.store(seconds, Ordering::Relaxed);
    }

    /// Move the clock forward by `by`, rounded down to whole seconds.
    pub fn advance(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.unix_seconds.fetch_add(secs, Ordering::Relaxed);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        let secs = self.unix_seconds.load(Ordering::Relaxed);
        if secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
        }
    }

    fn unix_seconds(&self) -> i64 {
        self.unix_seconds.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for FixedClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FixedClock")
            .field(&self.unix_seconds())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_clones_share_time() {
        let clock = FixedClock::at_unix(100);
        let other = clock.clone();
        other.set_unix(200);
        assert_eq!(clock.unix_seconds(), 200);
        assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(200));
    }

    #[test]
    fn closures_are_clocks() {
        let clock = || UNIX_EPOCH + Duration::from_secs(42);
        assert_eq!(clock.unix_seconds(), 42);
    }

    #[test]
    fn times_before_the_epoch_are_negative() {
        let clock = FixedClock::at_unix(-5);
        assert_eq!(Clock::now(&clock), UNIX_EPOCH - Duration::from_secs(5));
        let generic = || UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(generic.unix_seconds(), -5);
    }
}
