//! One-time codes: a random numeric code for a subject and a purpose, sent through a
//! sender the application brings, stored only as a keyed hash with its expiry and the
//! attempts left, checked in constant time, used once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hmac::{KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::rate::RateRule;
use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::replay::{ReplayKey, ReplayStore, StoreError};
use crate::secret::Secret;

/// What a store keeps for an issued code: never the code, only its keyed hash.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CodeEntry {
    /// HMAC-SHA256 of the code under the codes' key, bound to subject and purpose.
    pub digest: [u8; 32],
    /// When the code expires (unix seconds).
    pub expires_at: i64,
    /// Wrong attempts still allowed.
    pub attempts_left: u32,
}

/// What checking a code found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeCheck {
    /// The code is right; it is used up.
    Verified,
    /// The code is wrong; this many attempts are left.
    Wrong {
        /// Attempts left (0: the next check is refused as too many).
        attempts_left: u32,
    },
    /// Too many wrong attempts: no code is checked until this many seconds have passed.
    TooManyAttempts {
        /// Seconds until the code expires.
        retry_after: u64,
    },
    /// The code expired.
    Expired,
    /// No code was issued (or it was used).
    Missing,
}

impl CodeEntry {
    /// Check `digest` at `now`: the one arithmetic the in-memory store runs and the Redis
    /// script mirrors. Answers what it found, and whether the entry is to be removed.
    pub fn check(&mut self, digest: &[u8; 32], now: i64) -> (CodeCheck, bool) {
        if now >= self.expires_at {
            return (CodeCheck::Expired, false);
        }
        if self.attempts_left == 0 {
            let retry_after = (self.expires_at - now).unsigned_abs();
            return (CodeCheck::TooManyAttempts { retry_after }, false);
        }
        if bool::from(self.digest.ct_eq(digest)) {
            return (CodeCheck::Verified, true);
        }
        self.attempts_left -= 1;
        (
            CodeCheck::Wrong {
                attempts_left: self.attempts_left,
            },
            false,
        )
    }
}

/// Delivers a code to its subject (SMS, a voice call, an email): the application's part.
pub trait CodeSender: Send + Sync {
    /// Send `code` to `subject` for `purpose`.
    fn send(
        &self,
        subject: &str,
        purpose: &str,
        code: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Why a code could not be issued or checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeError {
    /// A code was sent to this subject for this purpose too recently; try again in this
    /// many seconds.
    TooSoon {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// The last code's wrong attempts are used up: no new code until it expires, so that
    /// sending codes again cannot buy more guesses.
    Exhausted,
    /// The store could not answer.
    Store(StoreError),
    /// The sender could not deliver the code.
    Delivery(StoreError),
    /// No randomness was available.
    Randomness,
}

impl std::fmt::Display for CodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooSoon { retry_after } => {
                write!(f, "a code was sent recently; retry in {retry_after} s")
            }
            Self::Exhausted => {
                f.write_str("the last code's attempts are used up; wait until it expires")
            }
            Self::Store(error) => write!(f, "{error}"),
            Self::Delivery(error) => write!(f, "the code could not be delivered: {error}"),
            Self::Randomness => f.write_str("no randomness to draw a code from"),
        }
    }
}

impl std::error::Error for CodeError {}

/// One-time codes kept in the one store (memory or Redis).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// use std::sync::Mutex;
/// use callguard::Secret;
/// use callguard::limit::{CodeCheck, CodeSender, OneTimeCodes};
/// use callguard::replay::{MemoryReplayStore, StoreError};
///
/// struct Outbox(Mutex<Vec<String>>);
/// impl CodeSender for Outbox {
///     async fn send(&self, _: &str, _: &str, code: &str) -> Result<(), StoreError> {
///         self.0.lock().unwrap().push(code.to_owned());
///         Ok(())
///     }
/// }
///
/// let codes = OneTimeCodes::builder(MemoryReplayStore::default(), Secret::from_utf8("a-key-for-code-hashes-0123")?).build()?;
/// let outbox = Outbox(Mutex::new(Vec::new()));
/// codes.issue("+15551234567", "login", &outbox).await?;
/// let code = outbox.0.lock().unwrap()[0].clone();
/// assert_eq!(code.len(), 6);
/// assert_eq!(codes.verify("+15551234567", "login", &code).await?, CodeCheck::Verified);
/// // Used once.
/// assert_eq!(codes.verify("+15551234567", "login", &code).await?, CodeCheck::Missing);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct OneTimeCodes {
    store: Arc<dyn ReplayStore>,
    key: Arc<hmac::Hmac<Sha256>>,
    length: u32,
    ttl: u64,
    max_attempts: u32,
    resend_after: Duration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for OneTimeCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneTimeCodes")
            .field("length", &self.length)
            .field("ttl", &self.ttl)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

/// Builds [`OneTimeCodes`].
pub struct OneTimeCodesBuilder {
    store: Arc<dyn ReplayStore>,
    secret: Secret,
    length: u32,
    ttl: Duration,
    max_attempts: u32,
    resend_after: Duration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for OneTimeCodesBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneTimeCodesBuilder")
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

impl OneTimeCodes {
    /// Codes kept in `store`, hashed under `secret`: by default 6 digits, valid 5 minutes,
    /// 3 wrong attempts, one code per subject and purpose every 30 s.
    pub fn builder(store: impl ReplayStore, secret: Secret) -> OneTimeCodesBuilder {
        OneTimeCodesBuilder {
            store: Arc::new(store),
            secret,
            length: 6,
            ttl: Duration::from_secs(300),
            max_attempts: 3,
            resend_after: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
        }
    }

    /// The seconds a code is valid.
    pub fn ttl(&self) -> u64 {
        self.ttl
    }

    fn key(subject: &str, purpose: &str, kind: &[u8]) -> ReplayKey {
        ReplayKey::derive(&[
            b"code\0",
            kind,
            b"\0",
            purpose.as_bytes(),
            b"\0",
            subject.as_bytes(),
        ])
    }

    fn digest(&self, subject: &str, purpose: &str, code: &str) -> [u8; 32] {
        let mut mac = (*self.key).clone();
        for part in [
            purpose.as_bytes(),
            b"\0",
            subject.as_bytes(),
            b"\0",
            code.as_bytes(),
        ] {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// Draw a code, store its hash, and hand it to `sender`.
    ///
    /// # Errors
    ///
    /// [`CodeError::TooSoon`] within the resend interval, [`CodeError::Store`] or
    /// [`CodeError::Delivery`] when those fail, [`CodeError::Randomness`] without
    /// randomness.
    pub async fn issue(
        &self,
        subject: &str,
        purpose: &str,
        sender: &impl CodeSender,
    ) -> Result<(), CodeError> {
        // One code per interval, as a rate of one: a refused request does not move the
        // interval on, so asking again and again cannot keep the subject from getting one.
        let throttle = Self::key(subject, purpose, b"sent");
        let interval = RateRule {
            quota: 1,
            period_ms: u64::try_from(self.resend_after.as_millis()).unwrap_or(u64::MAX),
            burst: 1,
        };
        let now_ms = self
            .clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let sent = self
            .store
            .rate(throttle, interval, now_ms)
            .await
            .map_err(CodeError::Store)?;
        if !sent.allowed {
            return Err(CodeError::TooSoon {
                retry_after: sent.retry_after_ms.div_ceil(1000).max(1),
            });
        }
        let code = self.draw()?;
        let entry = CodeEntry {
            digest: self.digest(subject, purpose, &code),
            expires_at: self
                .clock
                .unix_seconds()
                .saturating_add(i64::try_from(self.ttl).unwrap_or(i64::MAX)),
            attempts_left: self.max_attempts,
        };
        let kept = self
            .store
            .put_code(
                Self::key(subject, purpose, b"entry"),
                entry,
                self.clock.unix_seconds(),
                self.ttl,
            )
            .await
            .map_err(CodeError::Store)?;
        if !kept {
            return Err(CodeError::Exhausted);
        }
        sender
            .send(subject, purpose, &code)
            .await
            .map_err(CodeError::Delivery)
    }

    /// Check `code` for `subject` and `purpose`; a right code is used up.
    ///
    /// # Errors
    ///
    /// [`CodeError::Store`] when the store cannot answer.
    pub async fn verify(
        &self,
        subject: &str,
        purpose: &str,
        code: &str,
    ) -> Result<CodeCheck, CodeError> {
        let digest = self.digest(subject, purpose, code);
        self.store
            .check_code(
                Self::key(subject, purpose, b"entry"),
                digest,
                self.clock.unix_seconds(),
            )
            .await
            .map_err(CodeError::Store)
    }

    /// A uniformly random code of `length` digits (rejection sampling: no digit is likelier).
    fn draw(&self) -> Result<String, CodeError> {
        let mut code = String::with_capacity(self.length as usize);
        while code.len() < self.length as usize {
            let mut byte = [0u8; 1];
            getrandom::fill(&mut byte).map_err(|_| CodeError::Randomness)?;
            if byte[0] < 250 {
                code.push(char::from(b'0' + byte[0] % 10));
            }
        }
        Ok(code)
    }
}

impl OneTimeCodesBuilder {
    /// Digits per code (default 6; 4 to 10).
    #[must_use]
    pub fn length(mut self, length: u32) -> Self {
        self.length = length;
        self
    }

    /// How long a code is valid (default 5 minutes).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Wrong attempts allowed per code (default 3).
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The least time between two codes for one subject and purpose (default 30 s).
    #[must_use]
    pub fn resend_after(mut self, interval: Duration) -> Self {
        self.resend_after = interval;
        self
    }

    /// The clock expiries are read against (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Validate and build.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] for a length outside 4 to 10, no attempts, a lifetime
    /// under a second, or a resend interval under a second.
    pub fn build(self) -> Result<OneTimeCodes, ConfigError> {
        let invalid = |field| Err(ConfigError::InvalidValue { field });
        if !(4..=10).contains(&self.length) {
            return invalid("one-time codes: length (4 to 10 digits)");
        }
        if self.max_attempts == 0 {
            return invalid("one-time codes: max_attempts (at least 1)");
        }
        if self.ttl.as_secs() == 0 || self.resend_after.as_secs() == 0 {
            return invalid("one-time codes: ttl and resend_after (at least a second)");
        }
        let key = hmac::Hmac::<Sha256>::new_from_slice(self.secret.expose())
            .map_err(|_| ConfigError::EmptySecret)?;
        Ok(OneTimeCodes {
            store: self.store,
            key: Arc::new(key),
            length: self.length,
            ttl: self.ttl.as_secs(),
            max_attempts: self.max_attempts,
            resend_after: self.resend_after,
            clock: self.clock,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_checked_at_most_max_attempts_times_then_refused_until_it_expires() {
        let mut entry = CodeEntry {
            digest: [7; 32],
            expires_at: 100,
            attempts_left: 2,
        };
        assert_eq!(
            entry.check(&[1; 32], 10),
            (CodeCheck::Wrong { attempts_left: 1 }, false)
        );
        assert_eq!(
            entry.check(&[1; 32], 10),
            (CodeCheck::Wrong { attempts_left: 0 }, false)
        );
        // Even the right code is refused now.
        assert_eq!(
            entry.check(&[7; 32], 11),
            (CodeCheck::TooManyAttempts { retry_after: 89 }, false)
        );
        let mut fresh = CodeEntry {
            digest: [7; 32],
            expires_at: 100,
            attempts_left: 3,
        };
        assert_eq!(fresh.check(&[7; 32], 99), (CodeCheck::Verified, true));
        assert_eq!(fresh.check(&[7; 32], 100), (CodeCheck::Expired, false));
    }
}
