//! What operators see of refused requests: one `tracing` event per rejection, naming the
//! guard, the request path and the reason's kind, rate-limited so a flood cannot drown the
//! log.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::AuthError;

/// The most rejection events one guard writes per second; the rest are counted, and the
/// next event written says how many were left out.
pub const REJECTION_LOG_LINES_PER_SECOND: u32 = 10;

/// The longest request path a rejection event quotes, in bytes.
const MAX_LOGGED_PATH: usize = 256;

/// The named, rate-limited log of one guard's rejections. Clones share the limit.
#[derive(Debug, Clone)]
pub(crate) struct RejectionLog {
    name: Arc<str>,
    budget: Arc<Budget>,
}

#[derive(Debug, Default)]
struct Budget {
    /// The second the count below belongs to.
    second: AtomicU64,
    written: AtomicU32,
    /// Events left out since the last one written.
    suppressed: AtomicU64,
}

impl RejectionLog {
    pub(crate) fn new(name: impl Into<Arc<str>>) -> Self {
        Self {
            name: name.into(),
            budget: Arc::default(),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Record that `error` refused a request for `path`. Writes the guard's name, the path
    /// (never the query), the reason's kind, the rule a token failed (`aud`, `signature`,
    /// …; `-` for other refusals) and the status; never a credential or a body.
    /// Server-side failures (5xx) are errors, refusals of the client are warnings.
    pub(crate) fn record(&self, error: &AuthError, path: &str) {
        let Some(suppressed) = self.budget.take(unix_second()) else {
            return;
        };
        // The path is URI-safe ASCII (the http crate refuses anything else), so it can be
        // written as it is; the query, which may carry tokens, never is.
        let path = truncate(path);
        let (guard, reason, status) = (&*self.name, error.kind().as_str(), error.status());
        let rule = error.rule().unwrap_or("-");
        if status.is_server_error() {
            tracing::error!(
                %guard,
                %path,
                %reason,
                %rule,
                status = status.as_u16(),
                suppressed,
                "callguard could not check a request"
            );
        } else {
            tracing::warn!(
                %guard,
                %path,
                %reason,
                %rule,
                status = status.as_u16(),
                suppressed,
                "callguard refused a request"
            );
        }
    }
}

impl Budget {
    /// Whether an event may be written now; if so, how many were left out before it.
    fn take(&self, now: u64) -> Option<u64> {
        let second = self.second.load(Ordering::Relaxed);
        if second != now
            && self
                .second
                .compare_exchange(second, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.written.store(0, Ordering::Relaxed);
        }
        if self.written.fetch_add(1, Ordering::Relaxed) < REJECTION_LOG_LINES_PER_SECOND {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

fn unix_second() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// At most [`MAX_LOGGED_PATH`] bytes of `path`, cut at a character boundary.
pub(crate) fn truncate(path: &str) -> &str {
    if path.len() <= MAX_LOGGED_PATH {
        return path;
    }
    let mut end = MAX_LOGGED_PATH;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    &path[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_writes_the_budget_then_reports_what_it_left_out() {
        let budget = Budget::default();
        let written: Vec<_> = (0..100).filter_map(|_| budget.take(7)).collect();
        assert_eq!(written.len(), REJECTION_LOG_LINES_PER_SECOND as usize);
        assert!(written.iter().all(|suppressed| *suppressed == 0));
        assert_eq!(
            budget.take(8),
            Some(100 - u64::from(REJECTION_LOG_LINES_PER_SECOND))
        );
        assert_eq!(budget.take(8), Some(0));
    }

    #[test]
    fn long_paths_are_cut_at_a_character_boundary() {
        let path = format!("/{}", "é".repeat(200));
        let cut = truncate(&path);
        assert!(cut.len() <= MAX_LOGGED_PATH);
        assert!(path.starts_with(cut));
        assert_eq!(truncate("/hook"), "/hook");
    }
}
