//! Verifying access tokens (RFC 9068 JWTs) minted by other parties' authorization servers.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::introspection::{Introspected, Introspection};
use super::issuer::{Issuer, IssuerKeys};
use crate::caller::{AuthMethod, Caller, Claims, Scopes};
use crate::error::{AuthErrorKind, ConfigError, Refusal};
use crate::jws::Jws;
use crate::jwt::{
    ClaimsChecked, DEFAULT_CACHE_CAPACITY, JwtKeySet, RevocationCheck, Revocations, RulesInForce,
    TokenCache, TypRule, Verified, subject_of,
};
use crate::keys::KeyState;
use crate::replay::{ReplayPolicy, ReplayStore, StoreFuture};

/// Access tokens from one or more external issuers, each verified with that issuer's keys
/// and rules only. Cloning shares the issuers and the cache.
///
/// A token goes to the issuer its `iss` names (read before verification only to choose; the
/// chosen issuer then checks everything, `iss` again included); a token whose `iss` names
/// none of them is refused (401), never tried elsewhere. Then, in one pass over the token:
/// `kid` names a key of that issuer (a new `kid` waits for one refetch of its JWK set, at
/// most one per interval), the header's `alg` is that key's pinned algorithm, the signature,
/// `typ` is `at+jwt` (or `JWT`/absent with [`IssuerBuilder::allow_jwt_typ`](super::IssuerBuilder::allow_jwt_typ)),
/// no `crit`, and the claims: `iss` is the issuer, `aud` names one of its audiences, `exp`
/// required and not passed, `nbf` reached, `jti` a string. Scopes come from `scope`
/// (space-separated) and `scp` (an array, or a space-separated string, as Okta and Entra ID
/// send); the [`Caller`] has method [`AuthMethod::OAuth`], the `sub` as its id, and the
/// claims (so [`Caller::issuer`] and [`Caller::client_id`]).
///
/// Verified tokens are remembered (by SHA-256) until their `exp`, as
/// [`JwtVerifier`](crate::jwt::JwtVerifier) does; the cache is checked against the first
/// issuer's clock.
#[derive(Clone)]
pub struct AccessTokens {
    inner: Arc<AccessInner>,
}

struct AccessInner {
    issuers: Vec<Issuer>,
    /// The first issuer's clock (the system clock without issuers), for the cache.
    clock: Arc<dyn crate::clock::Clock>,
    cache: Option<TokenCache>,
    revocations: Option<Revocations>,
    introspection: Option<Introspection>,
    #[cfg(feature = "dpop")]
    dpop: Option<crate::dpop::Dpop>,
    #[cfg(feature = "mtls")]
    certificates: Option<crate::mtls::CertificateBinding>,
}

impl fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessTokens")
            .field("issuers", &self.inner.issuers)
            .field(
                "cached_tokens",
                &self.inner.cache.as_ref().map(TokenCache::len),
            )
            .field("revocations", &self.inner.revocations.is_some())
            .finish()
    }
}

/// What checking a token found: an answer now, or one after the issuer's keys are fetched.
pub(crate) enum Checked {
    Done(Result<Caller, Refusal>),
    Wait(Pin<Box<dyn Future<Output = Result<Caller, Refusal>> + Send>>),
}

impl AccessTokens {
    /// Accept access tokens from `issuers`, remembering up to
    /// [`DEFAULT_CACHE_CAPACITY`] verified tokens.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidComposition`] for no issuer, [`ConfigError::DuplicateName`]
    /// for an issuer named twice.
    pub fn new(issuers: impl IntoIterator<Item = Issuer>) -> Result<Self, ConfigError> {
        let issuers: Vec<Issuer> = issuers.into_iter().collect();
        if issuers.is_empty() {
            return Err(ConfigError::InvalidComposition {
                reason: "access tokens need at least one issuer",
            });
        }
        for (index, issuer) in issuers.iter().enumerate() {
            if issuers[..index]
                .iter()
                .any(|i| i.issuer() == issuer.issuer())
            {
                return Err(ConfigError::DuplicateName {
                    what: "issuer",
                    name: issuer.issuer().to_owned(),
                });
            }
        }
        Ok(Self::assemble(issuers, None))
    }

    /// Accept opaque access tokens checked by `introspection` alone (JWT-shaped tokens are
    /// then refused).
    pub fn introspected(introspection: Introspection) -> Self {
        Self::assemble(Vec::new(), Some(introspection))
    }

    fn assemble(issuers: Vec<Issuer>, introspection: Option<Introspection>) -> Self {
        let clock = issuers.first().map_or_else(
            || Arc::new(crate::clock::SystemClock) as Arc<dyn crate::clock::Clock>,
            |issuer| Arc::clone(&issuer.inner.clock),
        );
        Self {
            inner: Arc::new(AccessInner {
                issuers,
                clock,
                cache: TokenCache::new(DEFAULT_CACHE_CAPACITY),
                revocations: None,
                introspection,
                #[cfg(feature = "dpop")]
                dpop: None,
                #[cfg(feature = "mtls")]
                certificates: None,
            }),
        }
    }

    /// Every token verified in full every time.
    #[must_use]
    pub fn without_cache(self) -> Self {
        self.rebuild(|inner| inner.cache = None)
    }

    /// Check every token's `jti` against a denylist filled by [`revoke`](Self::revoke),
    /// as [`JwtVerifier::revocations`](crate::jwt::JwtVerifier::revocations) does.
    #[must_use]
    pub fn revocations(self, revocations: Revocations) -> Self {
        self.rebuild(|inner| inner.revocations = Some(revocations))
    }

    /// Replaced by [`revocations`](Self::revocations) with one [`Revocations`] value.
    #[deprecated(
        since = "0.2.0",
        note = "use .revocations(Revocations::new(store).policy(policy))"
    )]
    #[must_use]
    pub fn with_revocations(self, store: impl ReplayStore, policy: ReplayPolicy) -> Self {
        self.revocations(Revocations::new(store).policy(policy))
    }

    fn rebuild(self, change: impl FnOnce(&mut AccessInner)) -> Self {
        let mut inner = AccessInner {
            issuers: self.inner.issuers.clone(),
            clock: Arc::clone(&self.inner.clock),
            cache: self.inner.cache.clone(),
            revocations: self.inner.revocations.clone(),
            introspection: self.inner.introspection.clone(),
            #[cfg(feature = "dpop")]
            dpop: self.inner.dpop.clone(),
            #[cfg(feature = "mtls")]
            certificates: self.inner.certificates,
        };
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Check opaque (not JWT-shaped) tokens by asking `introspection` (RFC 7662).
    #[must_use]
    pub fn with_introspection(self, introspection: Introspection) -> Self {
        self.rebuild(|inner| inner.introspection = Some(introspection))
    }

    /// Accept DPoP-bound tokens (RFC 9449) as [`Dpop`](crate::dpop::Dpop) says, whether
    /// they are JWTs or introspected (`cnf` from the introspection answer): presented as
    /// `Authorization: DPoP` with a proof of the key the token's `cnf.jkt` names. The RFC
    /// 9728 metadata built from these tokens names the proof algorithms.
    #[cfg(feature = "dpop")]
    #[must_use]
    pub fn dpop(self, dpop: crate::dpop::Dpop) -> Self {
        self.rebuild(|inner| inner.dpop = Some(dpop))
    }

    /// The DPoP configuration its tokens are accepted under, if any.
    #[cfg(feature = "dpop")]
    pub fn dpop_config(&self) -> Option<&crate::dpop::Dpop> {
        self.inner.dpop.as_ref()
    }

    /// Accept certificate-bound tokens (RFC 8705, `cnf["x5t#S256"]`, from a JWT or the
    /// introspection answer) over a connection with that client certificate, as a
    /// [`ClientCertificateLayer`](crate::mtls::ClientCertificateLayer) in front resolves it;
    /// with [`Required`](crate::mtls::CertificateBinding::Required), only them. The RFC 9728
    /// metadata then says `tls_client_certificate_bound_access_tokens`.
    #[cfg(feature = "mtls")]
    #[must_use]
    pub fn certificate_binding(self, binding: crate::mtls::CertificateBinding) -> Self {
        self.rebuild(|inner| inner.certificates = Some(binding))
    }

    /// How its tokens are held to the client certificate, if at all.
    #[cfg(feature = "mtls")]
    pub fn certificate_config(&self) -> Option<crate::mtls::CertificateBinding> {
        self.inner.certificates
    }

    /// Whether opaque tokens are introspected.
    pub(crate) fn introspects(&self) -> bool {
        self.inner.introspection.is_some()
    }

    /// Revoke the token with this `jti` for `window`; without a denylist, `Ok(false)`.
    pub fn revoke(&self, jti: &str, window: Duration) -> StoreFuture {
        match &self.inner.revocations {
            Some(revocations) => revocations.revoke(jti, window),
            None => StoreFuture::ready(Ok(false)),
        }
    }

    /// The issuers accepted.
    pub fn issuers(&self) -> &[Issuer] {
        &self.inner.issuers
    }

    /// A [`GuardLayer`](crate::GuardLayer) that requires such a token.
    pub fn layer(self) -> crate::GuardLayer {
        crate::GuardLayer::new(self)
    }

    /// Whether `token`'s `iss` names one of these issuers: how `any_of` tells an external
    /// access token from a self-issued JWT. Read before verification, only to route.
    pub(crate) fn names_issuer(&self, token: &[u8]) -> bool {
        Jws::parse(token)
            .ok()
            .and_then(|parsed| parsed.unverified_issuer())
            .is_some_and(|iss| self.inner.issuers.iter().any(|i| i.issuer() == iss))
    }

    /// The revocation check owed for an accepted caller, when a denylist is configured.
    pub(crate) fn revocation_check(
        &self,
        caller: &Caller,
    ) -> Result<Option<RevocationCheck>, AuthErrorKind> {
        match &self.inner.revocations {
            Some(revocations) => revocations.check(caller),
            None => Ok(None),
        }
    }

    /// Check `token`: from the cache, now with keys held, or after a fetch of the issuer's
    /// keys for a `kid` they do not hold yet.
    pub(crate) fn check(&self, token: &[u8], client: Option<crate::ClientAddr>) -> Checked {
        let inner = &self.inner;
        if memchr::memchr_iter(b'.', token).count() != 2 {
            return match &inner.introspection {
                Some(introspection) => match introspection.check(token, client) {
                    Introspected::Cached(result) => Checked::Done(result),
                    Introspected::Wait(answer) => Checked::Wait(Box::pin(answer)),
                },
                None => Checked::Done(Err(AuthErrorKind::MalformedCredentials.into())),
            };
        }
        let key = inner.cache.as_ref().map(|_| TokenCache::key(token));
        if let (Some(cache), Some(key)) = (&inner.cache, &key) {
            let now = inner.clock.unix_seconds();
            if let Some(hit) = cache.lookup(key, now, 0) {
                return Checked::Done(hit);
            }
        }
        let parsed = match Jws::parse(token) {
            Ok(parsed) => parsed,
            Err(kind) => return Checked::Done(Err(kind.into())),
        };
        let Some(issuer) = self.route(&parsed) else {
            return Checked::Done(Err(Refusal::by(AuthErrorKind::InvalidCredentials, "iss")));
        };
        let discovered;
        let remote = match &issuer.inner.keys {
            IssuerKeys::Fixed(keys) => {
                return Checked::Done(self.verify(issuer, &parsed, keys, key));
            }
            IssuerKeys::Remote(remote) => remote,
            IssuerKeys::Discovering(slot) => match slot.load_full() {
                Some(keys) => {
                    discovered = keys;
                    &*discovered
                }
                // Discovery has not answered yet: the issuer's keys are unavailable.
                None => return Checked::Done(Err(AuthErrorKind::KeysUnavailable.into())),
            },
        };
        if let KeyState::Ready(loaded) = remote.state()
            && (loaded.keys.find(parsed.kid()).is_some())
        {
            let verified = self.verify(issuer, &parsed, &loaded.keys, key);
            // A known key id whose key no longer verifies may have been re-keyed: a set
            // older than the refetch interval is fetched again (throttled and single-flight
            // like an unknown id), and the token verified against what it brings.
            let rekeyed = matches!(&verified, Err(refusal)
                if refusal.kind == AuthErrorKind::InvalidCredentials
                    && matches!(refusal.rule, Some("signature" | "alg")));
            if !rekeyed || loaded.age() < remote.refetch_interval() {
                return Checked::Done(verified);
            }
            let Some(wait) = remote.refetch() else {
                return Checked::Done(verified);
            };
            return self.verify_after(wait, remote.wait_limit(), issuer, token, key, true);
        }
        let had_keys = matches!(remote.state(), KeyState::Ready(_));
        let Some(wait) = remote.refetch() else {
            // Refetched within the interval: the key is unknown, or the keys are unavailable.
            return Checked::Done(Err(if had_keys {
                Refusal::by(AuthErrorKind::InvalidCredentials, "kid")
            } else {
                AuthErrorKind::KeysUnavailable.into()
            }));
        };
        self.verify_after(wait, remote.wait_limit(), issuer, token, key, had_keys)
    }

    /// Wait (at most `limit`) for the key fetch `wait`, then verify `token` with what it
    /// brought. A failed fetch is 503 when no keys were held, and leaves the token
    /// unverifiable by the keys that were (401).
    fn verify_after(
        &self,
        wait: crate::keys::KeyWait<JwtKeySet>,
        limit: std::time::Duration,
        issuer: &Issuer,
        token: &[u8],
        key: Option<[u8; 32]>,
        had_keys: bool,
    ) -> Checked {
        let (this, issuer, token) = (self.clone(), issuer.clone(), token.to_vec());
        Checked::Wait(Box::pin(async move {
            let loaded = match tokio::time::timeout(limit, wait).await {
                Ok(Ok(loaded)) => loaded,
                Ok(Err(_)) | Err(_) if !had_keys => {
                    return Err(AuthErrorKind::KeysUnavailable.into());
                }
                // The refetch failed but older keys are held: they do not verify the token.
                Ok(Err(_)) | Err(_) => {
                    return Err(Refusal::by(AuthErrorKind::InvalidCredentials, "kid"));
                }
            };
            let parsed = Jws::parse(&token)?;
            this.verify(&issuer, &parsed, &loaded.keys, key)
        }))
    }

    /// The one issuer a token may be verified by.
    fn route(&self, parsed: &Jws<'_>) -> Option<&Issuer> {
        match self.inner.issuers.as_slice() {
            [] => None,
            // The sole issuer checks `iss` itself, after the signature.
            [only] => Some(only),
            issuers => {
                let iss = parsed.unverified_issuer()?;
                issuers.iter().find(|issuer| issuer.issuer() == iss)
            }
        }
    }

    fn verify(
        &self,
        issuer: &Issuer,
        parsed: &Jws<'_>,
        keys: &JwtKeySet,
        cache_key: Option<[u8; 32]>,
    ) -> Result<Caller, Refusal> {
        let rules = &issuer.inner;
        let pinned = keys
            .find(parsed.kid())
            .ok_or(Refusal::by(AuthErrorKind::InvalidCredentials, "kid"))?;
        let ClaimsChecked { claims, exp } = parsed.check(
            &pinned.key,
            &RulesInForce {
                issuer: Some(&rules.issuer),
                audiences: &rules.audiences,
                typ: Some(TypRule {
                    accepted: &rules.typ,
                    absent_ok: rules.allow_jwt_typ,
                }),
                leeway: rules.leeway,
                now: rules.clock.unix_seconds(),
            },
        )?;
        let caller = Caller::new(AuthMethod::OAuth, subject_of(&claims)?)
            .with_key_id(Arc::clone(&pinned.kid))
            .with_scopes(access_token_scopes(&claims).map_err(|kind| Refusal::by(kind, "scope"))?)
            .with_claims(Claims::new(claims));
        if let (Some(cache), Some(key)) = (&self.inner.cache, cache_key) {
            cache.remember(
                key,
                Verified::new(
                    caller.clone(),
                    exp.saturating_add(rules.leeway),
                    parsed.len(),
                ),
            );
        }
        Ok(caller)
    }
}

/// Scopes from `scope` (a space-separated string, RFC 9068) and `scp` (an array of strings,
/// as Okta sends, or a space-separated string, as Entra ID sends); anything else in either
/// is an invalid token.
pub(crate) fn access_token_scopes(claims: &Map<String, Value>) -> Result<Scopes, AuthErrorKind> {
    let mut scopes: Vec<&str> = Vec::new();
    for name in ["scope", "scp"] {
        match claims.get(name) {
            None => {}
            Some(Value::String(list)) => scopes.extend(list.split(' ').filter(|s| !s.is_empty())),
            Some(Value::Array(list)) if name == "scp" => {
                for scope in list {
                    scopes.push(scope.as_str().ok_or(AuthErrorKind::InvalidClaims)?);
                }
            }
            Some(_) => return Err(AuthErrorKind::InvalidClaims),
        }
    }
    Ok(Scopes::from_iter(scopes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(claims: &str) -> Result<Vec<String>, AuthErrorKind> {
        let claims: Map<String, Value> = serde_json::from_str(claims).unwrap();
        access_token_scopes(&claims).map(|s| s.iter().map(str::to_owned).collect())
    }

    #[test]
    fn scp_as_array_or_string_and_scope_parse_alike() {
        let expected = Ok(vec!["a".to_owned(), "b".to_owned()]);
        assert_eq!(scopes(r#"{"scope":"a b"}"#), expected);
        assert_eq!(scopes(r#"{"scp":["b","a"]}"#), expected);
        assert_eq!(scopes(r#"{"scp":"a  b"}"#), expected);
        assert_eq!(scopes(r#"{"scope":"a","scp":["b"]}"#), expected);
        assert_eq!(scopes(r#"{"scp":[1]}"#), Err(AuthErrorKind::InvalidClaims));
        assert_eq!(
            scopes(r#"{"scope":["a"]}"#),
            Err(AuthErrorKind::InvalidClaims)
        );
    }
}
