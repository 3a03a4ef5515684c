//! Helpers that weaken a default on purpose. Each says what it gives up.

use zeroize::Zeroizing;

use crate::error::ConfigError;
use crate::secret::Secret;

/// A secret of any non-empty length, bypassing [`Secret::MIN_LEN`].
///
/// For published known-answer vectors and for platforms that hand out short keys. A short
/// HMAC key can be brute-forced offline from one signed request; prefer
/// [`Secret::from_bytes`].
///
/// # Errors
///
/// [`ConfigError::EmptySecret`] for no bytes.
pub fn secret_allowing_short(bytes: impl Into<Vec<u8>>) -> Result<Secret, ConfigError> {
    Secret::with_min_len(&Zeroizing::new(bytes.into()), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secret_is_allowed_but_empty_is_not() {
        assert_eq!(secret_allowing_short("test_secret").unwrap().len(), 11);
        assert_eq!(
            secret_allowing_short("").unwrap_err(),
            ConfigError::EmptySecret
        );
    }
}
