//! Key material: zeroized on drop, never printed, validated when it is built.
//!
//! ```
//! use callguard::Secret;
//!
//! let secret = Secret::from_utf8("a-signing-secret-of-32-characters")?;
//! assert_eq!(format!("{secret:?}"), "Secret([redacted])");
//!
//! // Standard Webhooks' `whsec_` form: the part after the prefix is base64.
//! let key = Secret::from_standard_webhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
//! assert_eq!(key.len(), 24);
//!
//! // Plain base64 refuses the prefix: Stripe's `whsec_` secrets are keyed as UTF-8 text.
//! assert!(Secret::from_base64("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
//!
//! // Empty and short keys are refused when the configuration is built.
//! assert!(Secret::from_utf8("short").is_err());
//! # Ok::<(), callguard::ConfigError>(())
//! ```

use std::fmt;

use base64::Engine as _;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::ConfigError;

/// The prefix Standard Webhooks (and Svix) put before a base64-encoded key.
const WHSEC_PREFIX: &str = "whsec_";

/// A secret key: an HMAC key, a static token's value, a password, a JWT signing key.
///
/// # Security
///
/// - The bytes are overwritten with zeros when the last copy is dropped.
/// - `Debug` prints `Secret([redacted])`; there is no `Display`.
/// - Construction refuses an empty key and, by default, keys shorter than
///   [`Secret::MIN_LEN`] bytes. Known-answer tests that need a short published key use
///   [`crate::dangerous::secret_allowing_short`].
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Secret {
    bytes: Box<[u8]>,
}

impl Secret {
    /// The shortest key accepted by the ordinary constructors: 16 bytes (128 bits).
    pub const MIN_LEN: usize = 16;

    /// A secret made of these raw bytes.
    ///
    /// # Errors
    ///
    /// [`ConfigError::EmptySecret`] for no bytes, [`ConfigError::SecretTooShort`] for fewer
    /// than [`Secret::MIN_LEN`].
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Result<Self, ConfigError> {
        Self::with_min_len(&Zeroizing::new(bytes.into()), Self::MIN_LEN)
    }

    /// A secret whose key bytes are this string's UTF-8 bytes (GitHub, Stripe, Slack,
    /// Shopify and Sendbird all key their HMAC this way, Stripe including the `whsec_`
    /// prefix).
    ///
    /// # Errors
    ///
    /// As [`Secret::from_bytes`].
    pub fn from_utf8(text: &str) -> Result<Self, ConfigError> {
        Self::from_bytes(text.as_bytes())
    }

    /// A secret given in standard base64 (padded or not).
    ///
    /// # Errors
    ///
    /// [`ConfigError::PrefixedSecret`] for text starting with `whsec_` (Stripe keys such a
    /// secret as UTF-8 text, Standard Webhooks decodes what follows the prefix: use
    /// [`Secret::from_standard_webhooks`] or the preset's `signing_secret`),
    /// [`ConfigError::InvalidBase64`] when the text does not decode, then as
    /// [`Secret::from_bytes`] for the decoded bytes.
    pub fn from_base64(text: &str) -> Result<Self, ConfigError> {
        if text.starts_with(WHSEC_PREFIX) {
            return Err(ConfigError::PrefixedSecret);
        }
        Self::decode_base64(text)
    }

    /// A Standard Webhooks (or Svix) secret as its dashboard shows it: `whsec_` followed by
    /// standard base64, the prefix optional; the key is the decoded bytes.
    ///
    /// # Errors
    ///
    /// As [`Secret::from_base64`] for the text after the prefix.
    pub fn from_standard_webhooks(text: &str) -> Result<Self, ConfigError> {
        Self::decode_base64(text.strip_prefix(WHSEC_PREFIX).unwrap_or(text))
    }

    fn decode_base64(encoded: &str) -> Result<Self, ConfigError> {
        let decoded = base64_standard_indifferent()
            .decode(encoded.trim_end_matches('='))
            .map(Zeroizing::new)
            .map_err(|_| ConfigError::InvalidBase64)?;
        Self::with_min_len(&decoded, Self::MIN_LEN)
    }

    /// A secret given in URL-safe base64 (padded or not), as JWK `k` values are.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidBase64`] when the text does not decode, then as
    /// [`Secret::from_bytes`] for the decoded bytes.
    pub fn from_base64url(text: &str) -> Result<Self, ConfigError> {
        let engine = base64::engine::GeneralPurpose::new(
            &base64::alphabet::URL_SAFE,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
        );
        let decoded = engine
            .decode(text.trim_end_matches('='))
            .map(Zeroizing::new)
            .map_err(|_| ConfigError::InvalidBase64)?;
        Self::with_min_len(&decoded, Self::MIN_LEN)
    }

    /// A secret read from the environment variable `name`, used as UTF-8 key bytes.
    ///
    /// A value with leading or trailing whitespace is refused: it is almost always the
    /// newline of the file or Kubernetes secret it came from, and would make every request
    /// fail as "invalid credentials". For the rare secret that really has it, use
    /// [`Secret::from_env_verbatim`].
    ///
    /// # Errors
    ///
    /// [`ConfigError::MissingEnvVar`] when it is unset or not Unicode,
    /// [`ConfigError::SecretWhitespace`] naming the variable, then as [`Secret::from_utf8`].
    pub fn from_env(name: &str) -> Result<Self, ConfigError> {
        let value = env_text(name)?;
        Self::from_utf8(&value)
    }

    /// A secret read from the environment variable `name` exactly as it is, surrounding
    /// whitespace included.
    ///
    /// # Errors
    ///
    /// [`ConfigError::MissingEnvVar`] when it is unset or not Unicode, then as
    /// [`Secret::from_utf8`].
    pub fn from_env_verbatim(name: &str) -> Result<Self, ConfigError> {
        let value = std::env::var(name).map_err(|_| ConfigError::MissingEnvVar {
            name: name.to_owned(),
        })?;
        Self::from_utf8(&Zeroizing::new(value))
    }

    /// The number of key bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always `false`: an empty secret cannot be built. Present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The key bytes, for the crate's own keyed primitives only.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.bytes
    }

    pub(crate) fn with_min_len(bytes: &[u8], min_len: usize) -> Result<Self, ConfigError> {
        if bytes.is_empty() {
            return Err(ConfigError::EmptySecret);
        }
        if bytes.len() < min_len {
            return Err(ConfigError::SecretTooShort {
                id: None,
                len: bytes.len(),
                min: min_len,
            });
        }
        // Copy into an exact-size allocation so no spare capacity holds key bytes; the
        // callers wipe their source buffers with `Zeroizing`.
        Ok(Self {
            bytes: Box::from(bytes),
        })
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// The text of environment variable `name`, refused when it is unset, not Unicode, or has
/// leading or trailing whitespace. Wiped when dropped.
pub(crate) fn env_text(name: &str) -> Result<Zeroizing<String>, ConfigError> {
    let value = Zeroizing::new(std::env::var(name).map_err(|_| ConfigError::MissingEnvVar {
        name: name.to_owned(),
    })?);
    if value.trim() != value.as_str() {
        return Err(ConfigError::SecretWhitespace {
            name: name.to_owned(),
        });
    }
    Ok(value)
}

fn base64_standard_indifferent() -> base64::engine::GeneralPurpose {
    base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_is_redacted() {
        let secret = Secret::from_utf8("super-secret-value-123").unwrap();
        let printed = format!("{secret:?} {:#?}", secret);
        assert!(!printed.contains("super"), "{printed}");
        assert!(printed.contains("[redacted]"));
    }

    #[test]
    fn empty_secret_is_refused() {
        assert_eq!(
            Secret::from_bytes(Vec::new()).unwrap_err(),
            ConfigError::EmptySecret
        );
        assert_eq!(Secret::from_utf8("").unwrap_err(), ConfigError::EmptySecret);
    }

    #[test]
    fn short_secret_is_refused_with_lengths() {
        assert_eq!(
            Secret::from_utf8("fifteen-bytes!!").unwrap_err(),
            ConfigError::SecretTooShort {
                id: None,
                len: 15,
                min: 16
            }
        );
        assert!(Secret::from_utf8("sixteen-bytes!!!").is_ok());
    }

    #[test]
    fn standard_webhooks_prefix_is_stripped_and_decoded() {
        let secret =
            Secret::from_standard_webhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(secret.len(), 24);
        let plain = Secret::from_base64("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(secret.expose(), plain.expose());
        assert_eq!(
            Secret::from_base64("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err(),
            ConfigError::PrefixedSecret
        );
    }

    #[test]
    fn padded_and_unpadded_base64_agree() {
        let padded = Secret::from_base64("AAECAwQFBgcICQoLDA0ODxAREg==").unwrap();
        let bare = Secret::from_base64("AAECAwQFBgcICQoLDA0ODxAREg").unwrap();
        assert_eq!(padded.expose(), bare.expose());
        assert_eq!(padded.len(), 19);
    }

    #[test]
    fn invalid_base64_is_a_config_error() {
        assert_eq!(
            Secret::from_standard_webhooks("whsec_***").unwrap_err(),
            ConfigError::InvalidBase64
        );
    }

    #[test]
    fn missing_env_var_names_the_variable() {
        let err = Secret::from_env("CALLGUARD_TEST_SURELY_UNSET_VARIABLE").unwrap_err();
        assert_eq!(
            err,
            ConfigError::MissingEnvVar {
                name: "CALLGUARD_TEST_SURELY_UNSET_VARIABLE".into()
            }
        );
    }
}
