//! Verifying a server-issued JWT presented as a bearer token.

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use std::time::Duration;

use crate::replay::{ReplayKey, ReplayPolicy, ReplayStore, StoreFuture};

use super::config::{JwtConfig, PinnedKey};
use crate::caller::{AuthMethod, Caller, Claims, Scopes};
use crate::error::AuthErrorKind;

/// The default number of verified tokens remembered per verifier.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// A token that passed every check, remembered until its `exp`.
#[derive(Clone)]
struct Verified {
    caller: Caller,
    exp: i64,
}

/// Verifies JWTs minted with a [`JwtConfig`]'s keys. Cloning shares the configuration and
/// the cache.
///
/// # Cache of verified tokens
///
/// Agents reuse one token for many calls within its lifetime, so by default a verifier
/// remembers up to [`DEFAULT_CACHE_CAPACITY`] tokens that passed every check, keyed by the
/// SHA-256 of the whole token (the token itself is not kept). A repeated token costs that
/// digest and a lookup in a sharded map instead of a signature check and JSON parse; its
/// `exp` is still checked against the clock on every use, and an expired entry is dropped.
/// Only tokens that verified are remembered, and the cache is bounded (least-used entries
/// are evicted). Turn it off with [`JwtVerifier::without_cache`].
///
/// Checks, in order: the header parses; `kid` names a configured key (or is absent and one
/// key is configured); the header's `alg` is the key's pinned algorithm; `typ` when
/// configured; the signature; `exp` present and not passed, `nbf` reached (both with the
/// configured leeway against the injected clock); `iss` and `aud` when configured. Scopes
/// come from the `scope` claim (space-separated, RFC 9068) and a `scopes` array.
#[derive(Clone)]
pub struct JwtVerifier {
    pub(crate) config: JwtConfig,
    cache: Option<Arc<quick_cache::sync::Cache<[u8; 32], Verified>>>,
    revocations: Option<Revocations>,
}

/// Where revoked `jti`s are kept, and what to do when that store cannot answer.
#[derive(Clone)]
struct Revocations {
    store: Arc<dyn ReplayStore>,
    policy: ReplayPolicy,
}

/// A revocation check the guard runs before accepting a token.
pub(crate) struct RevocationCheck {
    pub(crate) store: Arc<dyn ReplayStore>,
    pub(crate) key: ReplayKey,
    pub(crate) policy: ReplayPolicy,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("config", &self.config)
            .field("cached_tokens", &self.cache.as_ref().map(|c| c.len()))
            .field("revocations", &self.revocations.is_some())
            .finish()
    }
}

impl JwtVerifier {
    /// A verifier for tokens signed with `config`'s keys, remembering up to
    /// [`DEFAULT_CACHE_CAPACITY`] verified tokens.
    pub fn new(config: JwtConfig) -> Self {
        Self::with_cache_capacity(config, DEFAULT_CACHE_CAPACITY)
    }

    /// A verifier remembering up to `capacity` verified tokens (0 turns the cache off).
    pub fn with_cache_capacity(config: JwtConfig, capacity: usize) -> Self {
        let cache = (capacity > 0).then(|| Arc::new(quick_cache::sync::Cache::new(capacity)));
        Self {
            config,
            cache,
            revocations: None,
        }
    }

    /// Check every token's `jti` against `store`, a denylist filled by
    /// [`revoke`](Self::revoke), so a compromised token can be cut off before its `exp`.
    /// Cached tokens are checked too. A store that cannot answer refuses the token (503)
    /// under `policy`'s default, fail closed.
    #[must_use]
    pub fn with_revocations(mut self, store: impl ReplayStore, policy: ReplayPolicy) -> Self {
        self.revocations = Some(Revocations {
            store: Arc::new(store),
            policy,
        });
        self
    }

    /// Revoke the token with this `jti` for `window` (its remaining lifetime is enough).
    /// Await the returned future to know the store took it. Without a denylist configured,
    /// the future answers `Ok(false)`.
    pub fn revoke(&self, jti: &str, window: Duration) -> StoreFuture {
        match &self.revocations {
            Some(revocations) => revocations.store.first_seen(jti_key(jti), window),
            None => StoreFuture::ready(Ok(false)),
        }
    }

    /// The revocation check owed for an accepted caller, when a denylist is configured and
    /// the token has a `jti`.
    pub(crate) fn revocation_check(&self, caller: &Caller) -> Option<RevocationCheck> {
        let revocations = self.revocations.as_ref()?;
        let jti = caller.claims()?.get("jti")?.as_str()?;
        Some(RevocationCheck {
            store: Arc::clone(&revocations.store),
            key: jti_key(jti),
            policy: revocations.policy,
        })
    }

    /// This verifier without the cache: every token is verified in full every time.
    #[must_use]
    pub fn without_cache(mut self) -> Self {
        self.cache = None;
        self
    }

    /// A [`GuardLayer`](crate::GuardLayer) that requires such a token.
    pub fn layer(self) -> crate::GuardLayer {
        crate::GuardLayer::new(self)
    }

    /// The caller a presented token proves: from the cache when it verified before and has
    /// not expired, otherwise by verifying it in full.
    pub(crate) fn check(&self, token: &[u8]) -> Result<Caller, AuthErrorKind> {
        let Some(cache) = &self.cache else {
            return self.verify(token).map(|verified| verified.caller);
        };
        let key: [u8; 32] = Sha256::digest(token).into();
        let now = self.config.inner.clock.unix_seconds();
        if let Some(hit) = cache.get(&key) {
            if now.saturating_sub(self.config.inner.leeway) >= hit.exp {
                cache.remove(&key);
                return Err(AuthErrorKind::TokenExpired);
            }
            return Ok(hit.caller);
        }
        let verified = self.verify(token)?;
        let caller = verified.caller.clone();
        cache.insert(key, verified);
        Ok(caller)
    }

    /// Every check, in full.
    fn verify(&self, token: &[u8]) -> Result<Verified, AuthErrorKind> {
        let inner = &self.config.inner;
        let decode = |pinned: &PinnedKey| {
            jsonwebtoken::decode::<Map<String, Value>>(
                token,
                &pinned.key.decoding,
                &pinned.validation,
            )
            .map_err(|e| classify(&e, token))
        };
        let (pinned, data) = match inner.sole_kid.as_deref() {
            // One key: jsonwebtoken parses the header itself (the algorithm is pinned in the
            // validation), so it is parsed once; a `kid` naming another key is refused after.
            Some(sole) => {
                let pinned = &inner.keys[sole];
                let data = decode(pinned)?;
                if data.header.kid.as_deref().is_some_and(|kid| kid != sole) {
                    return Err(AuthErrorKind::InvalidCredentials);
                }
                (pinned, data)
            }
            None => {
                let header = jsonwebtoken::decode_header(token)
                    .map_err(|_| AuthErrorKind::MalformedCredentials)?;
                let kid = header
                    .kid
                    .as_deref()
                    .ok_or(AuthErrorKind::InvalidCredentials)?;
                let pinned = inner
                    .keys
                    .get(kid)
                    .ok_or(AuthErrorKind::InvalidCredentials)?;
                if header.alg != pinned.key.algorithm.to_jsonwebtoken() {
                    return Err(AuthErrorKind::InvalidCredentials);
                }
                (pinned, decode(pinned)?)
            }
        };
        let typ_ok = |expected: &str| {
            data.header
                .typ
                .as_deref()
                .is_some_and(|typ| typ_matches(typ, expected))
        };
        if inner
            .typ
            .as_deref()
            .is_some_and(|expected| !typ_ok(expected))
        {
            return Err(AuthErrorKind::InvalidClaims);
        }
        let kid = &pinned.kid;
        let claims = data.claims;
        let now = inner.clock.unix_seconds();
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or(AuthErrorKind::InvalidClaims)?;
        if now.saturating_sub(inner.leeway) >= exp {
            return Err(AuthErrorKind::TokenExpired);
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = nbf.as_i64().ok_or(AuthErrorKind::InvalidClaims)?;
            if now.saturating_add(inner.leeway) < nbf {
                return Err(AuthErrorKind::TokenNotYetValid);
            }
        }
        let subject: Arc<str> = match claims.get("sub") {
            None => "".into(),
            Some(Value::String(sub)) => sub.as_str().into(),
            Some(_) => return Err(AuthErrorKind::InvalidClaims),
        };
        let scopes = scopes_of(&claims)?;
        let caller = Caller::new(AuthMethod::Jwt, subject)
            .with_key_id(Arc::clone(kid))
            .with_scopes(scopes)
            .with_claims(Claims::new(claims));
        Ok(Verified { caller, exp })
    }
}

/// The denylist key of a `jti`.
fn jti_key(jti: &str) -> ReplayKey {
    ReplayKey::derive(&[b"jwt-jti\0", jti.as_bytes()])
}

/// The reason a token failed in jsonwebtoken, as this crate reports it.
fn classify(error: &jsonwebtoken::errors::Error, token: &[u8]) -> AuthErrorKind {
    match error.kind() {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName => AuthErrorKind::InvalidCredentials,
        ErrorKind::InvalidToken | ErrorKind::Base64(_) => AuthErrorKind::MalformedCredentials,
        // A JSON error in the header (say `alg: none`) is a malformed token; in the claims,
        // after the signature verified, it is an unacceptable claims set.
        ErrorKind::Json(_) | ErrorKind::Utf8(_) if jsonwebtoken::decode_header(token).is_err() => {
            AuthErrorKind::MalformedCredentials
        }
        _ => AuthErrorKind::InvalidClaims,
    }
}

fn typ_matches(typ: &str, expected: &str) -> bool {
    let bare = |t: &str| {
        let lower = t.len() > 12 && t[..12].eq_ignore_ascii_case("application/");
        if lower {
            t[12..].to_owned()
        } else {
            t.to_owned()
        }
    };
    bare(typ).eq_ignore_ascii_case(&bare(expected))
}

/// Scopes from `scope` (a space-separated string) and `scopes` (an array of strings).
fn scopes_of(claims: &Map<String, Value>) -> Result<Scopes, AuthErrorKind> {
    let mut scopes: Vec<&str> = Vec::new();
    match claims.get("scope") {
        None => {}
        Some(Value::String(list)) => scopes.extend(list.split(' ').filter(|s| !s.is_empty())),
        Some(_) => return Err(AuthErrorKind::InvalidClaims),
    }
    match claims.get("scopes") {
        None => {}
        Some(Value::Array(list)) => {
            for scope in list {
                scopes.push(scope.as_str().ok_or(AuthErrorKind::InvalidClaims)?);
            }
        }
        Some(_) => return Err(AuthErrorKind::InvalidClaims),
    }
    Ok(Scopes::from_iter(scopes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_comparison_ignores_case_and_media_type_prefix() {
        assert!(typ_matches("at+jwt", "at+jwt"));
        assert!(typ_matches("application/AT+JWT", "at+jwt"));
        assert!(!typ_matches("JWT", "at+jwt"));
    }

    #[test]
    fn scopes_merge_string_and_array_forms() {
        let claims: Map<String, Value> =
            serde_json::from_str(r#"{"scope":"a  b","scopes":["c","a"]}"#).unwrap();
        assert_eq!(
            scopes_of(&claims).unwrap().iter().collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        let bad: Map<String, Value> = serde_json::from_str(r#"{"scopes":[1]}"#).unwrap();
        assert_eq!(scopes_of(&bad).unwrap_err(), AuthErrorKind::InvalidClaims);
    }
}
