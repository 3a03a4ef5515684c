//! One JWT configuration shared by the verifier and the issuer, so they cannot disagree
//! about keys, issuer, audience or token type.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Once};
use std::time::Duration;

use super::key::JwtKey;
use super::rules::ClaimRules;
use crate::clock::Clock;
use crate::error::{ConfigError, check_token_text};

/// The default leeway for `exp` and `nbf`: 10 seconds of clock skew.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(10);

/// The default longest lifetime a minted token may have: one hour.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(3600);

/// A configured key and the id tokens name it by.
pub(crate) struct PinnedKey {
    pub(crate) kid: Arc<str>,
    pub(crate) key: JwtKey,
}

pub(crate) struct Inner {
    pub(crate) keys: HashMap<Box<str>, PinnedKey>,
    /// The key used for tokens without `kid`: set only when exactly one key is configured.
    pub(crate) sole_kid: Option<Box<str>>,
    pub(crate) signing_kid: Option<Arc<str>>,
    pub(crate) issuer: Option<Arc<str>>,
    /// Accepted in `aud`; minted tokens name them all.
    pub(crate) audiences: Vec<Arc<str>>,
    pub(crate) typ: Option<Arc<str>>,
    pub(crate) leeway: i64,
    pub(crate) max_ttl: Duration,
    pub(crate) clock: Arc<dyn Clock>,
    /// The rules as configured.
    pub(crate) rules: ClaimRules,
}

/// Keys, issuer, audience, token type, leeway and clock for JWTs this server verifies and
/// mints. Cloning shares it.
///
/// ```
/// use callguard::Secret;
/// use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey};
///
/// let key = JwtKey::hmac(JwtAlgorithm::HS256, &Secret::from_utf8("a-jwt-signing-key-of-32-bytes!!!")?)?;
/// let config = JwtConfig::builder()
///     .key("2026-11", key)
///     .issuer("https://auth.example.com")
///     .audience("tools")
///     .build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct JwtConfig {
    pub(crate) inner: Arc<Inner>,
}

impl JwtConfig {
    /// A builder with no keys, no issuer or audience requirement, 10 s leeway, a one-hour
    /// maximum TTL and the system clock.
    pub fn builder() -> JwtConfigBuilder {
        JwtConfigBuilder::default()
    }

    /// The key ids, in no particular order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.inner.keys.keys().map(|k| &**k)
    }

    /// The claim rules tokens are verified against.
    pub fn claim_rules(&self) -> &ClaimRules {
        &self.inner.rules
    }
}

impl fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("JwtConfig")
            .field("kids", &self.kids().collect::<Vec<_>>())
            .field("signing_kid", &i.signing_kid)
            .field("issuer", &i.issuer)
            .field("audiences", &i.audiences)
            .field("typ", &i.typ)
            .field("leeway_secs", &i.leeway)
            .finish_non_exhaustive()
    }
}

/// Builds a [`JwtConfig`].
pub struct JwtConfigBuilder {
    keys: Vec<(String, JwtKey)>,
    signing_kid: Option<String>,
    rules: ClaimRules,
    max_ttl: Duration,
}

impl Default for JwtConfigBuilder {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            signing_kid: None,
            rules: ClaimRules::new(),
            max_ttl: DEFAULT_MAX_TTL,
        }
    }
}

impl fmt::Debug for JwtConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<_> = self.keys.iter().map(|(kid, _)| kid).collect();
        f.debug_struct("JwtConfigBuilder")
            .field("kids", &kids)
            .finish_non_exhaustive()
    }
}

impl JwtConfigBuilder {
    /// Add a key under `kid`. Several keys may be live at once (rotation); a token names
    /// its key in the `kid` header, and a token without one is accepted only when exactly
    /// one key is configured.
    #[must_use]
    pub fn key(mut self, kid: impl Into<String>, key: JwtKey) -> Self {
        self.keys.push((kid.into(), key));
        self
    }

    /// The key that mints tokens (default: the first key added that can sign).
    #[must_use]
    pub fn signing_key(mut self, kid: impl Into<String>) -> Self {
        self.signing_kid = Some(kid.into());
        self
    }

    /// The claim rules tokens are verified against and minted to satisfy, all at once
    /// (replacing any set before): issuer, audiences, `typ`, leeway, clock.
    #[must_use]
    pub fn claim_rules(mut self, rules: ClaimRules) -> Self {
        self.rules = rules;
        self
    }

    /// Require and mint this `iss` ([`ClaimRules::issuer`]).
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.rules = self.rules.issuer(issuer);
        self
    }

    /// Accept tokens whose `aud` names `audience`; call again to accept several
    /// ([`ClaimRules::audience`]). Minted tokens name every audience configured (one as a
    /// string, several as an array).
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.rules = self.rules.audience(audience);
        self
    }

    /// Require and mint this `typ` header, for example `at+jwt` (RFC 9068); compared
    /// case-insensitively, with or without the `application/` prefix.
    #[must_use]
    pub fn typ(mut self, typ: impl Into<String>) -> Self {
        self.rules = self.rules.typ(typ);
        self
    }

    /// Clock skew allowed on `exp` and `nbf` (default 10 s).
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.rules = self.rules.leeway(leeway);
        self
    }

    /// The longest lifetime the issuer will mint (default one hour).
    #[must_use]
    pub fn max_ttl(mut self, max_ttl: Duration) -> Self {
        self.max_ttl = max_ttl;
        self
    }

    /// The clock for `exp`, `nbf` and `iat` (default [`SystemClock`](crate::clock::SystemClock)).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.rules = self.rules.clock(clock);
        self
    }

    /// Validate the configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoSecrets`] without keys, [`ConfigError::DuplicateName`] for a
    /// repeated kid, [`ConfigError::InvalidValue`] for a kid, issuer, audience or typ that is
    /// not printable ASCII, [`ConfigError::InvalidKey`] for a signing key that cannot sign
    /// or is unknown.
    pub fn build(self) -> Result<JwtConfig, ConfigError> {
        install_crypto_backend();
        if self.keys.is_empty() {
            return Err(ConfigError::NoSecrets {
                verifier: "jwt".to_owned(),
            });
        }
        self.rules.check()?;
        let sole_kid = (self.keys.len() == 1).then(|| self.keys[0].0.clone().into_boxed_str());
        let signing_kid = match self.signing_kid {
            Some(kid) => match self.keys.iter().find(|(k, _)| *k == kid) {
                Some((_, key)) if key.can_sign() => Some(kid),
                Some(_) => {
                    return Err(ConfigError::InvalidKey {
                        kid,
                        reason: "the signing key has no private or secret part",
                    });
                }
                None => {
                    return Err(ConfigError::InvalidKey {
                        kid,
                        reason: "no key with this id",
                    });
                }
            },
            None => self
                .keys
                .iter()
                .find(|(_, key)| key.can_sign())
                .map(|(kid, _)| kid.clone()),
        };
        let mut keys = HashMap::with_capacity(self.keys.len());
        for (kid, key) in self.keys {
            check_token_text(&kid, "kid")?;
            let pinned = PinnedKey {
                kid: kid.as_str().into(),
                key,
            };
            if keys.insert(kid.clone().into_boxed_str(), pinned).is_some() {
                return Err(ConfigError::DuplicateName {
                    what: "JWT key id",
                    name: kid,
                });
            }
        }
        Ok(JwtConfig {
            inner: Arc::new(Inner {
                keys,
                sole_kid,
                signing_kid: signing_kid.map(Into::into),
                issuer: self.rules.issuer.as_deref().map(Into::into),
                audiences: self
                    .rules
                    .audiences
                    .iter()
                    .map(|a| a.as_str().into())
                    .collect(),
                typ: self.rules.typ.as_deref().map(Into::into),
                leeway: self.rules.leeway_secs(),
                max_ttl: self.max_ttl,
                clock: Arc::clone(&self.rules.clock),
                rules: self.rules,
            }),
        })
    }
}

/// Choose jsonwebtoken's crypto backend explicitly, once per process, so it never has to
/// infer one from its features (which panics at run time when both or neither are on).
/// Every key constructor calls it, so no key exists before a backend does.
pub(crate) fn install_crypto_backend() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        #[cfg(feature = "aws-lc-rs")]
        let provider = &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
        #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
        let provider = &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
        // Another library may have installed one already; any installed provider is fine.
        // (Without a backend the crate does not build: `jwt/mod.rs` says why, alone.)
        #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))]
        let _ = provider.install_default();
    });
}
