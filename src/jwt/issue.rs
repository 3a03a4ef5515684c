//! Minting the short-lived, scoped JWTs that the same configuration verifies.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Map, Value};

use super::config::JwtConfig;
use crate::caller::Scopes;

/// Claims the issuer sets itself, or that carry authority a verifier reads (scopes in any
/// of their spellings, the client, a delegation's actor, a confirmation key): an extra
/// claim may set none of them, so [`IssuedToken`] describes exactly what the token grants.
const RESERVED: [&str; 13] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "scope",
    "scopes",
    "scp",
    "client_id",
    "act",
    "cnf",
];

/// Mints tokens with a [`JwtConfig`]'s signing key, issuer, audience and type.
///
/// ```
/// use std::time::Duration;
/// use callguard::{Scopes, Secret};
/// use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, TokenIssuer, TokenRequest};
///
/// let key = JwtKey::hmac(JwtAlgorithm::HS256, &Secret::from_utf8("a-jwt-signing-key-of-32-bytes!!!")?)?;
/// let config = JwtConfig::builder().key("k1", key).issuer("me").audience("tools").build()?;
/// let issued = TokenIssuer::new(config).issue(
///     TokenRequest::new("agent-7", Scopes::from_iter(["tools:call"]), Duration::from_secs(300)),
/// )?;
/// assert_eq!(issued.expires_in, Duration::from_secs(300));
/// assert_eq!(issued.scope, "tools:call");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct TokenIssuer {
    config: JwtConfig,
}

/// What to put in a token.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    subject: String,
    scopes: Scopes,
    ttl: Duration,
    actor: Option<String>,
    dpop_key: Option<String>,
    certificate: Option<String>,
    extra: Map<String, Value>,
}

impl TokenRequest {
    /// A token for `subject` granting `scopes`, valid for `ttl`.
    pub fn new(subject: impl Into<String>, scopes: Scopes, ttl: Duration) -> Self {
        Self {
            subject: subject.into(),
            scopes,
            ttl,
            actor: None,
            dpop_key: None,
            certificate: None,
            extra: Map::new(),
        }
    }

    /// Make the token presentable only by the agent `actor` (RFC 8693 `act`:
    /// `{"sub": "<actor>"}`): a [`Delegation`](crate::delegation::Delegation) accepts it
    /// only when that agent proved itself, and no guard accepts it presented alone.
    ///
    /// The agent is named by the id of the [`Caller`](crate::Caller) its proof gives: a
    /// static token's or Basic user's name, a JWT's `sub`, and for a signature the
    /// verifier's identity (`sendbird`), which every secret of the verifier proves alike.
    /// To bind a token to one of several HMAC agents, build their verifier with
    /// [`identify_callers_by_secret`](crate::signature::SignatureVerifierBuilder::identify_callers_by_secret)
    /// and name the agent's secret id here.
    #[must_use]
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Bind the token to the DPoP key whose RFC 7638 thumbprint is `jkt` (RFC 9449 §6:
    /// `cnf: {"jkt": …}`), as a token endpoint does for a client that presented a DPoP proof
    /// ([`Dpop::verify_token_request`](crate::dpop::Dpop::verify_token_request) gives the
    /// thumbprint). A verifier then accepts the token only with a proof by that key, never as
    /// a bearer token.
    #[must_use]
    pub fn dpop_key(mut self, jkt: impl Into<String>) -> Self {
        self.dpop_key = Some(jkt.into());
        self
    }

    /// Bind the token to the client certificate whose SHA-256 thumbprint (base64url) is
    /// `x5t` (RFC 8705 §3: `cnf: {"x5t#S256": …}`), as a token endpoint does for a client
    /// that authenticated with that certificate. A verifier with a
    /// certificate binding then accepts the token only over a connection with that
    /// certificate; one without refuses it.
    #[must_use]
    pub fn certificate_bound(mut self, x5t: impl Into<String>) -> Self {
        self.certificate = Some(x5t.into());
        self
    }

    /// Add a private claim, for example binding the token to one tool call or conversation.
    #[must_use]
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra.insert(name.into(), value.into());
        self
    }
}

/// A minted token.
#[derive(Clone)]
#[non_exhaustive]
pub struct IssuedToken {
    /// The compact JWS.
    pub access_token: String,
    /// Its lifetime from now.
    pub expires_in: Duration,
    /// The granted scopes, space-separated.
    pub scope: String,
    /// Its unique id (`jti`).
    pub jti: String,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("jti", &self.jti)
            .finish()
    }
}

/// Why a token could not be minted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IssueError {
    /// The configuration has no key that can sign.
    NoSigningKey,
    /// The lifetime is zero or longer than the configured maximum.
    TtlOutOfBounds {
        /// The configured maximum.
        max: Duration,
    },
    /// An extra claim tries to set a claim the issuer sets itself or one that carries
    /// authority (`scope`, `scopes`, `scp`, `client_id`, `act`, `cnf` and the registered
    /// time and identity claims).
    ReservedClaim(String),
    /// A scope is empty or holds a space, which the `scope` claim cannot carry.
    InvalidScope(String),
    /// The signing backend failed, or no randomness was available for `jti`.
    Signing,
}

impl fmt::Display for IssueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSigningKey => f.write_str("no configured key can sign"),
            Self::TtlOutOfBounds { max } => {
                write!(f, "ttl must be between 1 and {} seconds", max.as_secs())
            }
            Self::ReservedClaim(name) => write!(f, "claim `{name}` is set by the issuer"),
            Self::InvalidScope(scope) => write!(f, "scope `{scope}` is empty or holds a space"),
            Self::Signing => f.write_str("signing failed"),
        }
    }
}

impl std::error::Error for IssueError {}

impl TokenIssuer {
    /// An issuer using `config`'s signing key.
    pub fn new(config: JwtConfig) -> Self {
        Self { config }
    }

    /// The longest lifetime this issuer mints.
    pub fn max_ttl(&self) -> Duration {
        self.config.inner.max_ttl
    }

    /// Mint a token.
    ///
    /// # Errors
    ///
    /// [`IssueError`] for a TTL out of bounds, a reserved extra claim, a scope the `scope`
    /// claim cannot carry, or a configuration with no signing key.
    pub fn issue(&self, request: TokenRequest) -> Result<IssuedToken, IssueError> {
        let inner = &self.config.inner;
        let kid = inner
            .signing_kid
            .as_deref()
            .ok_or(IssueError::NoSigningKey)?;
        let pinned = &inner.keys[kid];
        let encoding: &EncodingKey = pinned
            .key
            .encoding
            .as_ref()
            .ok_or(IssueError::NoSigningKey)?;
        if request.ttl.is_zero() || request.ttl > inner.max_ttl || request.ttl.subsec_nanos() != 0 {
            return Err(IssueError::TtlOutOfBounds { max: inner.max_ttl });
        }
        if let Some(name) = request
            .extra
            .keys()
            .find(|k| RESERVED.contains(&k.as_str()))
        {
            return Err(IssueError::ReservedClaim(name.clone()));
        }
        if let Some(bad) = request
            .scopes
            .iter()
            .find(|s| s.is_empty() || s.contains(' '))
        {
            return Err(IssueError::InvalidScope(bad.to_owned()));
        }
        let now = inner.clock.unix_seconds();
        let ttl = i64::try_from(request.ttl.as_secs())
            .map_err(|_| IssueError::TtlOutOfBounds { max: inner.max_ttl })?;
        let jti = random_id()?;
        let scope = request.scopes.iter().collect::<Vec<_>>().join(" ");
        let mut claims = request.extra;
        if let Some(issuer) = &inner.issuer {
            claims.insert("iss".into(), Value::from(&**issuer));
        }
        match inner.audiences.as_slice() {
            [] => {}
            [audience] => {
                claims.insert("aud".into(), Value::from(&**audience));
            }
            audiences => {
                let all = audiences.iter().map(|a| Value::from(&**a)).collect();
                claims.insert("aud".into(), Value::Array(all));
            }
        }
        claims.insert("sub".into(), Value::from(request.subject));
        claims.insert("iat".into(), Value::from(now));
        claims.insert("nbf".into(), Value::from(now));
        claims.insert("exp".into(), Value::from(now.saturating_add(ttl)));
        claims.insert("jti".into(), Value::from(jti.as_str()));
        claims.insert("scope".into(), Value::from(scope.as_str()));
        if let Some(actor) = request.actor {
            let mut act = Map::new();
            act.insert("sub".into(), Value::from(actor));
            claims.insert("act".into(), Value::Object(act));
        }
        let mut cnf = Map::new();
        if let Some(jkt) = request.dpop_key {
            cnf.insert("jkt".into(), Value::from(jkt));
        }
        if let Some(x5t) = request.certificate {
            cnf.insert("x5t#S256".into(), Value::from(x5t));
        }
        if !cnf.is_empty() {
            claims.insert("cnf".into(), Value::Object(cnf));
        }
        let mut header = Header::new(pinned.key.algorithm.to_jsonwebtoken());
        header.kid = Some(kid.to_owned());
        header.typ = Some(inner.typ.as_deref().unwrap_or("JWT").to_owned());
        let access_token =
            jsonwebtoken::encode(&header, &claims, encoding).map_err(|_| IssueError::Signing)?;
        Ok(IssuedToken {
            access_token,
            expires_in: request.ttl,
            scope,
            jti,
        })
    }
}

/// 128 random bits, base64url without padding.
fn random_id() -> Result<String, IssueError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| IssueError::Signing)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}
