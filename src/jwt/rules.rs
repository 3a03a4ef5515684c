//! [`ClaimRules`]: what a token's claims must satisfy besides its signature, one value shared
//! by every verifier of tokens (as jsonwebtoken's `Validation` is).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::config::DEFAULT_LEEWAY;
use crate::clock::{Clock, SystemClock};
use crate::error::{ConfigError, check_token_text};

/// The issuer a token must name, the audiences of which it must name one, the `typ` its
/// header must carry, the clock skew allowed on `exp` and `nbf`, and the clock: one value,
/// given to [`JwtConfigBuilder::claim_rules`](super::JwtConfigBuilder::claim_rules),
/// [`IssuerBuilder::claim_rules`](crate::oauth::IssuerBuilder::claim_rules) or
/// [`IntrospectionBuilder::claim_rules`](crate::oauth::IntrospectionBuilder::claim_rules).
/// Each builder's own setters (`issuer`, `audience`, `leeway`, `typ`, `clock`) change the
/// same value, and mean the same everywhere: `audience` adds one more accepted audience.
///
/// ```
/// use std::time::Duration;
/// use callguard::Secret;
/// use callguard::clock::FixedClock;
/// use callguard::jwt::{ClaimRules, JwtAlgorithm, JwtConfig, JwtKey};
///
/// let rules = ClaimRules::new()
///     .issuer("https://auth.example.com")
///     .audience("https://tools.example.com")
///     .leeway(Duration::from_secs(5))
///     .clock(FixedClock::at_unix(1_800_000_000));
/// let key = JwtKey::hmac(JwtAlgorithm::HS256, &Secret::from_utf8("a-jwt-signing-key-of-32-bytes!!!")?)?;
/// let config = JwtConfig::builder().key("k1", key).claim_rules(rules.clone()).build()?;
/// assert_eq!(config.claim_rules().audiences().collect::<Vec<_>>(), ["https://tools.example.com"]);
/// # Ok::<(), callguard::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ClaimRules {
    pub(crate) issuer: Option<String>,
    pub(crate) audiences: Vec<String>,
    pub(crate) typ: Option<String>,
    pub(crate) leeway: Duration,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Default for ClaimRules {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ClaimRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimRules")
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("typ", &self.typ)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

impl ClaimRules {
    /// No issuer or audience required, no `typ` rule, [`DEFAULT_LEEWAY`] and the system clock.
    pub fn new() -> Self {
        Self {
            issuer: None,
            audiences: Vec::new(),
            typ: None,
            leeway: DEFAULT_LEEWAY,
            clock: Arc::new(SystemClock),
        }
    }

    /// Require `iss` to be `issuer` (byte for byte).
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Accept tokens whose `aud` names `audience` (this resource's identifier, RFC 8707);
    /// call again to accept several.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Require this `typ` header, for example `at+jwt` (RFC 9068); compared
    /// case-insensitively, with or without the `application/` prefix.
    #[must_use]
    pub fn typ(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self
    }

    /// Clock skew allowed on `exp` and `nbf` (default [`DEFAULT_LEEWAY`], 10 s).
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The clock `exp`, `nbf` (and a minted token's `iat`) are read against.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The required issuer, if any.
    pub fn required_issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The accepted audiences.
    pub fn audiences(&self) -> impl Iterator<Item = &str> {
        self.audiences.iter().map(String::as_str)
    }

    /// The leeway in whole seconds.
    pub(crate) fn leeway_secs(&self) -> i64 {
        i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX)
    }

    /// Check every text for what ends up in headers and logs.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if let Some(issuer) = &self.issuer {
            check_token_text(issuer, "issuer")?;
        }
        for audience in &self.audiences {
            check_token_text(audience, "audience")?;
        }
        if let Some(typ) = &self.typ {
            check_token_text(typ, "typ")?;
        }
        Ok(())
    }
}
