//! Verifying a server-issued JWT presented as a bearer token.

use std::sync::Arc;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use std::time::Duration;

use crate::replay::{ReplayKey, ReplayPolicy, ReplayStore, StoreFuture};

use super::config::JwtConfig;
use crate::caller::{AuthMethod, Caller, Claims, Scopes};
use crate::error::{AuthErrorKind, Refusal};
use crate::jws::Jws;

/// The default number of verified tokens remembered per verifier.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// The default bound on the memory the verified-token cache of one verifier takes:
/// 32 MiB, whatever the tokens' size.
pub const DEFAULT_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// A token that passed every check, remembered until its `exp` (or `until`, if sooner).
#[derive(Clone)]
pub(crate) struct Verified {
    pub(crate) caller: Caller,
    /// Refused as expired once `now - leeway >= exp`.
    pub(crate) exp: i64,
    /// Forgotten (a miss: check the token again) once `now >= until`: an introspection
    /// answer is trusted for a bounded time, whatever the token's `exp`.
    pub(crate) until: i64,
    /// What the entry costs in memory, estimated from the text it was read from.
    pub(crate) bytes: u64,
}

impl Verified {
    /// A token of `text_len` bytes (the token, or the introspection answer) that verified,
    /// valid until `exp`.
    pub(crate) fn new(caller: Caller, exp: i64, text_len: usize) -> Self {
        // The parsed claims take about twice their text (measured: 7.6 KB tokens, 13.4 KB
        // resident each), plus the entry's fixed part.
        let bytes = (text_len as u64).saturating_mul(2).saturating_add(512);
        Self {
            caller,
            exp,
            until: i64::MAX,
            bytes,
        }
    }

    /// Forgotten at `until` at the latest.
    #[cfg(any(feature = "oauth", test))]
    pub(crate) fn until(mut self, until: i64) -> Self {
        self.until = until;
        self
    }
}

/// Weighs cache entries by their estimated bytes, and at least the byte budget's share of
/// one entry of the count, so neither the count nor the bytes exceed their bound.
#[derive(Clone)]
struct ByBytes {
    floor: u64,
}

impl quick_cache::Weighter<[u8; 32], Verified> for ByBytes {
    fn weight(&self, _key: &[u8; 32], verified: &Verified) -> u64 {
        verified.bytes.max(self.floor)
    }
}

/// Tokens that passed every check, keyed by the SHA-256 of the whole token (the token
/// itself is not kept), bounded in count and in bytes, until their `exp`. Shared by the
/// self-issued JWT verifier and the external access-token verifier.
#[derive(Clone)]
pub(crate) struct TokenCache(Arc<quick_cache::sync::Cache<[u8; 32], Verified, ByBytes>>);

impl TokenCache {
    /// A cache of up to `capacity` tokens and [`DEFAULT_CACHE_BYTES`]; none for 0.
    pub(crate) fn new(capacity: usize) -> Option<Self> {
        Self::bounded(capacity, DEFAULT_CACHE_BYTES)
    }

    /// A cache of up to `capacity` tokens taking up to `max_bytes`; none for 0.
    pub(crate) fn bounded(capacity: usize, max_bytes: usize) -> Option<Self> {
        (capacity > 0 && max_bytes > 0).then(|| {
            let max_bytes = max_bytes as u64;
            let floor = (max_bytes / capacity as u64).max(1);
            Self(Arc::new(quick_cache::sync::Cache::with_weighter(
                capacity,
                max_bytes,
                ByBytes { floor },
            )))
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The estimated bytes the entries take.
    #[cfg(test)]
    pub(crate) fn weight(&self) -> u64 {
        self.0.weight()
    }

    /// The cache key of `token`.
    pub(crate) fn key(token: &[u8]) -> [u8; 32] {
        Sha256::digest(token).into()
    }

    /// The caller of a token that verified before, `exp` checked again against `now`
    /// (an expired entry is dropped); `None` when the token is not remembered, or no longer
    /// (past its entry's `until`).
    pub(crate) fn lookup(
        &self,
        key: &[u8; 32],
        now: i64,
        leeway: i64,
    ) -> Option<Result<Caller, Refusal>> {
        let hit = self.0.get(key)?;
        if now.saturating_sub(leeway) >= hit.exp {
            self.0.remove(key);
            return Some(Err(Refusal::by(AuthErrorKind::TokenExpired, "exp")));
        }
        if now >= hit.until {
            self.0.remove(key);
            return None;
        }
        Some(Ok(hit.caller))
    }

    pub(crate) fn remember(&self, key: [u8; 32], verified: Verified) {
        self.0.insert(key, verified);
    }
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
/// Checks, in order: the token is three base64url segments and its header parses; `kid`
/// names a configured key (or is absent and one key is configured); the header's `alg` is
/// the key's pinned algorithm; the signature; `typ` when configured; then the claims, parsed
/// only after the signature verified: no claim named twice, `exp` a non-negative integer,
/// `iss` equal to the configured issuer (a string, RFC 7519 §4.1.1), `aud` equal to the
/// configured audience or an array of strings holding it, `exp` not passed and `nbf`
/// reached (both with the configured leeway against the injected clock), `sub` absent or a
/// string. Scopes come from the `scope` claim (space-separated, RFC 9068) and a `scopes`
/// array of strings.
///
/// HMAC signatures are checked with RustCrypto's `hmac`, keyed once when the [`JwtKey`](super::JwtKey) is
/// built; RSA, ECDSA and EdDSA signatures go through `jsonwebtoken`'s backend.
/// `tests/jwt_claims_rules.rs` checks that a token is accepted exactly when
/// `jsonwebtoken::decode` with the same validation accepts it and the rules above hold.
#[derive(Clone)]
pub struct JwtVerifier {
    pub(crate) config: JwtConfig,
    cache: Option<TokenCache>,
    revocations: Option<Revocations>,
    #[cfg(feature = "dpop")]
    dpop: Option<crate::dpop::Dpop>,
    #[cfg(feature = "mtls")]
    certificates: Option<crate::mtls::CertificateBinding>,
}

/// A denylist of revoked tokens: where revoked `jti`s are kept, what to do when that store
/// cannot answer, and whether a token without `jti` (which no revocation could reach) is
/// accepted. One value, given to [`JwtVerifier::revocations`] or
/// [`AccessTokens::revocations`](crate::oauth::AccessTokens::revocations).
///
/// ```
/// use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier, Revocations};
/// use callguard::replay::{MemoryReplayStore, ReplayPolicy};
/// use callguard::Secret;
///
/// let key = JwtKey::hmac(JwtAlgorithm::HS256, &Secret::from_utf8("a-jwt-signing-key-of-32-bytes!!!")?)?;
/// let revocations = Revocations::new(MemoryReplayStore::default())
///     .policy(ReplayPolicy::FailClosed)
///     .allow_tokens_without_jti();
/// let verifier = JwtVerifier::new(JwtConfig::builder().key("k1", key).build()?)
///     .revocations(revocations);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Revocations {
    store: Arc<dyn ReplayStore>,
    policy: ReplayPolicy,
    /// Refuse tokens without `jti`, which no revocation could reach (the default).
    require_jti: bool,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations")
            .field("policy", &self.policy)
            .field("require_jti", &self.require_jti)
            .finish_non_exhaustive()
    }
}

impl Revocations {
    /// Revoked `jti`s kept in `store`; a store that cannot answer refuses the token (503,
    /// [`ReplayPolicy::FailClosed`]), and a token without `jti` is refused (401).
    pub fn new(store: impl ReplayStore) -> Self {
        Self {
            store: Arc::new(store),
            policy: ReplayPolicy::FailClosed,
            require_jti: true,
        }
    }

    /// What to do when the store cannot answer (default: refuse, 503).
    #[must_use]
    pub fn policy(mut self, policy: ReplayPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Accept tokens that carry no `jti` too (they cannot be revoked before their `exp`).
    #[must_use]
    pub fn allow_tokens_without_jti(mut self) -> Self {
        self.require_jti = false;
        self
    }

    /// The check owed for an accepted caller: a token without `jti` is refused unless
    /// allowed (decided on every use, so a cached token is held to the same rule).
    pub(crate) fn check(&self, caller: &Caller) -> Result<Option<RevocationCheck>, AuthErrorKind> {
        match caller
            .claims()
            .and_then(|c| c.get("jti"))
            .and_then(Value::as_str)
        {
            Some(jti) => Ok(Some(RevocationCheck {
                store: Arc::clone(&self.store),
                key: jti_key(jti),
                policy: self.policy,
            })),
            None if self.require_jti => Err(AuthErrorKind::InvalidClaims),
            None => Ok(None),
        }
    }

    /// Revoke the token with this `jti` for `window`.
    pub(crate) fn revoke(&self, jti: &str, window: Duration) -> StoreFuture {
        self.store
            .first_seen(jti_key(jti), crate::replay::RecordId::new(), window)
    }
}

/// A revocation check the guard runs before accepting a token.
pub(crate) struct RevocationCheck {
    pub(crate) store: Arc<dyn ReplayStore>,
    pub(crate) key: ReplayKey,
    pub(crate) policy: ReplayPolicy,
}

impl RevocationCheck {
    /// What a token whose revocation may need checking owes: this step, or nothing.
    pub(crate) fn owed(check: Option<Self>) -> crate::guard::Owed {
        match check {
            Some(check) => crate::guard::StoreStep::Revocation(check).into(),
            None => crate::guard::Owed::none(),
        }
    }
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("config", &self.config)
            .field("cached_tokens", &self.cache.as_ref().map(|c| c.len()))
            .field("revocations", &self.revocations.is_some())
            .finish_non_exhaustive()
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
        let cache = TokenCache::new(capacity);
        Self {
            config,
            cache,
            revocations: None,
            #[cfg(feature = "dpop")]
            dpop: None,
            #[cfg(feature = "mtls")]
            certificates: None,
        }
    }

    /// Check every token's `jti` against a denylist filled by [`revoke`](Self::revoke), so
    /// a compromised token can be cut off before its `exp`. Cached tokens are checked too.
    /// [`Revocations`] says where the denylist is kept, what happens when it cannot answer
    /// (503 by default) and whether a token without `jti` is accepted (not by default: it
    /// could never be revoked). A `jti` that is not a string is refused whether or not a
    /// denylist is set.
    #[must_use]
    pub fn revocations(mut self, revocations: Revocations) -> Self {
        self.revocations = Some(revocations);
        self
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

    /// Replaced by [`Revocations::allow_tokens_without_jti`]: this one works only after a
    /// denylist was set.
    #[deprecated(
        since = "0.2.0",
        note = "use Revocations::new(store).allow_tokens_without_jti()"
    )]
    #[must_use]
    pub fn allow_tokens_without_jti(mut self) -> Self {
        if let Some(revocations) = &mut self.revocations {
            revocations.require_jti = false;
        }
        self
    }

    /// Revoke the token with this `jti` for `window` (its remaining lifetime is enough).
    /// Await the returned future to know the store took it. Without a denylist configured,
    /// the future answers `Ok(false)`.
    pub fn revoke(&self, jti: &str, window: Duration) -> StoreFuture {
        match &self.revocations {
            Some(revocations) => revocations.revoke(jti, window),
            None => StoreFuture::ready(Ok(false)),
        }
    }

    /// The revocation check owed for an accepted caller, when a denylist is configured. A
    /// token without `jti` is refused then, unless the verifier allows it (decided here, on
    /// every use, so a cached token is held to the same rule).
    pub(crate) fn revocation_check(
        &self,
        caller: &Caller,
    ) -> Result<Option<RevocationCheck>, AuthErrorKind> {
        match &self.revocations {
            Some(revocations) => revocations.check(caller),
            None => Ok(None),
        }
    }

    /// Accept DPoP-bound tokens (RFC 9449) as [`Dpop`](crate::dpop::Dpop) says: presented
    /// as `Authorization: DPoP` with a proof of the key the token's `cnf.jkt` names. A bound
    /// token presented as `Bearer` is refused with or without this.
    #[cfg(feature = "dpop")]
    #[must_use]
    pub fn dpop(mut self, dpop: crate::dpop::Dpop) -> Self {
        self.dpop = Some(dpop);
        self
    }

    /// The DPoP configuration its tokens are accepted under, if any.
    #[cfg(feature = "dpop")]
    pub(crate) fn dpop_config(&self) -> Option<&crate::dpop::Dpop> {
        self.dpop.as_ref()
    }

    /// Accept certificate-bound tokens (RFC 8705, `cnf["x5t#S256"]`) over a connection with
    /// that client certificate, as a [`ClientCertificateLayer`](crate::mtls::ClientCertificateLayer)
    /// in front resolves it; with [`Required`](crate::mtls::CertificateBinding::Required),
    /// only them.
    #[cfg(feature = "mtls")]
    #[must_use]
    pub fn certificate_binding(mut self, binding: crate::mtls::CertificateBinding) -> Self {
        self.certificates = Some(binding);
        self
    }

    /// How its tokens are held to the client certificate, if at all.
    #[cfg(feature = "mtls")]
    pub(crate) fn certificate_config(&self) -> Option<crate::mtls::CertificateBinding> {
        self.certificates
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
    pub(crate) fn check(&self, token: &[u8]) -> Result<Caller, Refusal> {
        let Some(cache) = &self.cache else {
            return self.verify(token).map(|verified| verified.caller);
        };
        let key = TokenCache::key(token);
        let now = self.config.inner.clock.unix_seconds();
        if let Some(hit) = cache.lookup(&key, now, self.config.inner.leeway) {
            return hit;
        }
        let verified = self.verify(token)?;
        let caller = verified.caller.clone();
        cache.remember(key, verified);
        Ok(caller)
    }

    /// Every check, in full: the token is split and its header parsed once, the signature
    /// checked with the key's pinned algorithm, and the claims parsed once, after it.
    fn verify(&self, token: &[u8]) -> Result<Verified, Refusal> {
        let inner = &self.config.inner;
        let parsed = Jws::parse(token)?;
        let unknown_kid = Refusal::by(AuthErrorKind::InvalidCredentials, "kid");
        let pinned = match (inner.sole_kid.as_deref(), parsed.kid()) {
            // One key: a token may leave `kid` out, but may not name another key.
            (Some(sole), kid) if kid.is_none_or(|kid| kid == sole) => &inner.keys[sole],
            (Some(_), Some(_)) => return Err(unknown_kid),
            (_, kid) => kid.and_then(|kid| inner.keys.get(kid)).ok_or(unknown_kid)?,
        };
        let typ = inner.typ.as_ref().map(std::slice::from_ref);
        let rules = RulesInForce {
            issuer: inner.issuer.as_deref(),
            audiences: &inner.audiences,
            typ: typ.map(|accepted| TypRule {
                accepted,
                absent_ok: false,
            }),
            leeway: inner.leeway,
            now: inner.clock.unix_seconds(),
        };
        let ClaimsChecked { claims, exp } = parsed.check(&pinned.key, &rules)?;
        let caller = Caller::new(AuthMethod::Jwt, subject_of(&claims)?)
            .with_key_id(Arc::clone(&pinned.kid))
            .with_scopes(scopes_of(&claims).map_err(|kind| Refusal::by(kind, "scope"))?)
            .with_claims(Claims::new(claims));
        Ok(Verified::new(caller, exp, token.len()))
    }
}

/// What a token's header and claims must satisfy, besides its signature.
pub(crate) struct RulesInForce<'a> {
    /// The `iss` required, as a string.
    pub(crate) issuer: Option<&'a str>,
    /// The audiences of which `aud` must name one (none: no requirement).
    pub(crate) audiences: &'a [Arc<str>],
    pub(crate) typ: Option<TypRule<'a>>,
    pub(crate) leeway: i64,
    pub(crate) now: i64,
}

/// The `typ` header values accepted (RFC 7515 §4.1.9, `application/` optional).
pub(crate) struct TypRule<'a> {
    pub(crate) accepted: &'a [Arc<str>],
    /// Whether a token without `typ` passes.
    pub(crate) absent_ok: bool,
}

/// The claims of a token whose signature and claims passed.
pub(crate) struct ClaimsChecked {
    pub(crate) claims: Map<String, Value>,
    pub(crate) exp: i64,
}

impl Jws<'_> {
    /// Check the header's `alg` against `key`'s pinned algorithm, the signature, `typ`, and
    /// then, parsed only now, the claims: no claim named twice, `exp` a non-negative integer
    /// not passed, `iss`, `aud`, `nbf`, `jti` a string when present.
    pub(crate) fn check(
        &self,
        key: &super::JwtKey,
        rules: &RulesInForce<'_>,
    ) -> Result<ClaimsChecked, Refusal> {
        use AuthErrorKind::InvalidClaims;
        self.verify_signature(key)?;
        if let Some(rule) = &rules.typ {
            let passes = match self.header().typ.as_deref() {
                None => rule.absent_ok,
                Some(typ) => rule
                    .accepted
                    .iter()
                    .any(|accepted| typ_matches(typ, accepted)),
            };
            if !passes {
                return Err(Refusal::by(InvalidClaims, "typ"));
            }
        }
        let claims = self.payload_object()?;
        let exp = claims
            .get("exp")
            .and_then(Value::as_u64)
            .map(|exp| i64::try_from(exp).unwrap_or(i64::MAX))
            .ok_or(Refusal::by(InvalidClaims, "exp"))?;
        let string_is = |claim: &Value, expected: &str| claim.as_str() == Some(expected);
        if let Some(issuer) = rules.issuer
            && !claims.get("iss").is_some_and(|iss| string_is(iss, issuer))
        {
            return Err(Refusal::by(InvalidClaims, "iss"));
        }
        if !rules.audiences.is_empty() && !names_audience(claims.get("aud"), rules.audiences) {
            return Err(Refusal::by(InvalidClaims, "aud"));
        }
        let now = rules.now;
        if now.saturating_sub(rules.leeway) >= exp {
            return Err(Refusal::by(AuthErrorKind::TokenExpired, "exp"));
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = nbf.as_i64().ok_or(Refusal::by(InvalidClaims, "nbf"))?;
            if now.saturating_add(rules.leeway) < nbf {
                return Err(Refusal::by(AuthErrorKind::TokenNotYetValid, "nbf"));
            }
        }
        // RFC 7519 §4.1.7: a string. Anything else could not be revoked by its text.
        if claims.get("jti").is_some_and(|jti| !jti.is_string()) {
            return Err(Refusal::by(InvalidClaims, "jti"));
        }
        Ok(ClaimsChecked { claims, exp })
    }
}

/// Whether an `aud` claim names one of `audiences`: a string that is one, or an array of
/// strings holding one (RFC 7519 §4.1.3).
pub(crate) fn names_audience(aud: Option<&Value>, audiences: &[Arc<str>]) -> bool {
    let ours = |aud: &Value| {
        aud.as_str()
            .is_some_and(|aud| audiences.iter().any(|a| same_audience(aud, a)))
    };
    match aud {
        Some(Value::Array(list)) => list.iter().all(Value::is_string) && list.iter().any(ours),
        Some(aud) => ours(aud),
        None => false,
    }
}

/// Whether the audience `aud` names `ours`: the same string, or, for `http(s)` URIs, the same
/// URI with scheme and host compared case-insensitively (RFC 3986 §6.2.2.1; the MCP
/// authorization spec compares resource URIs so). The path, query and port compare exactly.
fn same_audience(aud: &str, ours: &str) -> bool {
    if aud == ours {
        return true;
    }
    let split = |uri: &str| -> Option<(String, String)> {
        let (scheme, rest) = uri.split_once("://")?;
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return None;
        }
        let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_len];
        if authority.contains('@') {
            return None;
        }
        let scheme_and_host = format!("{}://{}", scheme, authority).to_ascii_lowercase();
        Some((scheme_and_host, rest[authority_len..].to_owned()))
    };
    match (split(aud), split(ours)) {
        (Some((aud_origin, aud_rest)), Some((our_origin, our_rest))) => {
            aud_origin == our_origin && aud_rest == our_rest
        }
        _ => false,
    }
}

/// The caller's id: `sub`, absent or a string.
pub(crate) fn subject_of(claims: &Map<String, Value>) -> Result<Arc<str>, Refusal> {
    match claims.get("sub") {
        None => Ok("".into()),
        Some(Value::String(sub)) => Ok(sub.as_str().into()),
        Some(_) => Err(Refusal::by(AuthErrorKind::InvalidClaims, "sub")),
    }
}

/// The denylist key of a `jti`.
fn jti_key(jti: &str) -> ReplayKey {
    ReplayKey::derive(&[b"jwt-jti\0", jti.as_bytes()])
}

/// RFC 7515 §4.1.9: `typ` compares case-insensitively, and `application/` may be left out.
/// Works on bytes, so no attacker-chosen text is ever sliced at a char boundary.
fn typ_matches(typ: &str, expected: &str) -> bool {
    const PREFIX: &[u8] = b"application/";
    fn bare(t: &str) -> &[u8] {
        let t = t.as_bytes();
        match t.split_at_checked(PREFIX.len()) {
            Some((head, rest)) if !rest.is_empty() && head.eq_ignore_ascii_case(PREFIX) => rest,
            _ => t,
        }
    }
    bare(typ).eq_ignore_ascii_case(bare(expected))
}

/// Scopes from `scope` (a space-separated string) and `scopes` (an array of strings).
pub(crate) fn scopes_of(claims: &Map<String, Value>) -> Result<Scopes, AuthErrorKind> {
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
mod audience_tests {
    use super::*;

    #[test]
    fn resource_uris_compare_case_insensitively_in_scheme_and_host_only() {
        let ours: [Arc<str>; 1] = ["https://api.example.com/mcp".into()];
        let names = |aud: &str| names_audience(Some(&Value::from(aud)), &ours);
        assert!(names("https://api.example.com/mcp"));
        assert!(names("HTTPS://API.Example.COM/mcp"));
        assert!(!names("https://api.example.com/MCP"));
        assert!(!names("https://api.example.com:8443/mcp"));
        assert!(!names("https://api.example.com/mcp/"));
        assert!(!names("https://user@api.example.com/mcp"));
        assert!(!names("http://api.example.com/mcp"));
        let plain: [Arc<str>; 1] = ["Tools".into()];
        assert!(!names_audience(Some(&Value::from("tools")), &plain));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_comparison_ignores_case_and_media_type_prefix() {
        assert!(typ_matches("at+jwt", "at+jwt"));
        assert!(typ_matches("application/AT+JWT", "at+jwt"));
        assert!(!typ_matches("JWT", "at+jwt"));
        assert!(!typ_matches("aaaaaaaaaaaé", "at+jwt"));
        assert!(!typ_matches("application/", "at+jwt"));
        assert!(typ_matches("application/", "APPLICATION/"));
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

    fn entry(text_len: usize) -> Verified {
        Verified::new(Caller::new(AuthMethod::Jwt, "agent"), i64::MAX, text_len)
    }

    #[test]
    fn the_token_cache_is_bounded_in_bytes_as_well_as_in_count() {
        // Large tokens: the bytes bind first.
        let cache = TokenCache::bounded(10_000, 1024 * 1024).unwrap();
        for n in 0..10_000u32 {
            let mut key = [0; 32];
            key[..4].copy_from_slice(&n.to_le_bytes());
            cache.remember(key, entry(7_600));
        }
        assert!(cache.weight() <= 1024 * 1024, "{} bytes", cache.weight());
        assert!(
            cache.len() <= 1024 * 1024 / 15_712 + 1,
            "{} entries",
            cache.len()
        );
        // Small tokens: the count binds first.
        let cache = TokenCache::bounded(100, 1024 * 1024).unwrap();
        for n in 0..10_000u32 {
            let mut key = [0; 32];
            key[..4].copy_from_slice(&n.to_le_bytes());
            cache.remember(key, entry(10));
        }
        assert!(cache.len() <= 100, "{} entries", cache.len());
    }

    #[test]
    fn an_entry_past_its_until_is_a_miss_not_a_refusal() {
        let cache = TokenCache::new(16).unwrap();
        cache.remember([1; 32], entry(100).until(1_000));
        assert!(matches!(cache.lookup(&[1; 32], 999, 0), Some(Ok(_))));
        assert!(cache.lookup(&[1; 32], 1_000, 0).is_none());
    }
}
