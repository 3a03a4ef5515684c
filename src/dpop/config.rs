//! [`Dpop`]: what a resource server accepts as proof of possession, and the two decisions it
//! takes on the bearer row's one path: a proof checked against the request (before the
//! token, from the head alone), then the verified token's binding to the proof's key.

use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;

use super::nonce::Nonces;
use super::proof::{ProofRules, ProofTarget, VerifiedProof};
use crate::caller::{Caller, Confirmation};
use crate::clock::{Clock, SystemClock};
use crate::error::{AuthError, AuthErrorKind, ChallengeScheme, Challenges, ConfigError, Refusal};
use crate::guard::StoreStep;
use crate::jwt::JwtAlgorithm;
use crate::public_url::PublicUrl;
use crate::replay::{RecordId, ReplayPolicy, ReplayStore};
use crate::secret::Secret;

/// DPoP (RFC 9449) on a resource server: access tokens bound to a key the client holds,
/// presented as `Authorization: DPoP <token>` with a proof JWT in the `DPoP` header.
///
/// Given to the token verifiers ([`JwtVerifier::dpop`](crate::jwt::JwtVerifier::dpop),
/// [`AccessTokens::dpop`](crate::oauth::AccessTokens::dpop)), it makes their guard check, on
/// the one request path:
/// - the proof: one `DPoP` header; `typ` `dpop+jwt`; an asymmetric algorithm from
///   [`algorithms`](DpopBuilder::algorithms); a public `jwk` in its header (a private member
///   is refused) that verifies its signature; `htm` the request's method; `htu` the public
///   URL of the request ([`public_url`](DpopBuilder::public_url)) without query, compared
///   after RFC 3986 normalisation; `iat` within [`max_age`](DpopBuilder::max_age) in the
///   past and [`leeway`](DpopBuilder::leeway) in the future; `ath` the token's SHA-256;
///   with [`nonce_secret`](DpopBuilder::nonce_secret), a nonce this server issued;
/// - the token: its `cnf.jkt` the RFC 7638 thumbprint of the proof's key;
/// - the proof's `jti`, accepted once through the replay store (one `SET NX` per proof,
///   shared by replicas on Redis).
///
/// A token bound to a key and presented as `Bearer` is refused; with
/// [`required`](DpopBuilder::required), every token must come as DPoP. The caller's
/// [`confirmation`](Caller::confirmation) names the key's thumbprint.
///
/// ```
/// use callguard::dpop::Dpop;
/// use callguard::replay::MemoryReplayStore;
///
/// let dpop = Dpop::builder(MemoryReplayStore::new(100_000))
///     .public_url("https://api.example.com")
///     .build()?;
/// assert_eq!(dpop.algorithms_text(), "ES256 ES384 EdDSA PS256 RS256");
/// # Ok::<(), callguard::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Dpop(Arc<Inner>);

struct Inner {
    rules: ProofRules,
    public_url: PublicUrl,
    store: Arc<dyn ReplayStore>,
    policy: ReplayPolicy,
    nonces: Option<Nonces>,
    clock: Arc<dyn Clock>,
    required: bool,
    allow_unbound: bool,
    algorithms_text: Arc<str>,
}

impl std::fmt::Debug for Dpop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dpop")
            .field("algorithms", &self.0.algorithms_text)
            .field("max_age", &self.0.rules.max_age)
            .field("leeway", &self.0.rules.leeway)
            .field("nonces", &self.0.nonces)
            .field("required", &self.0.required)
            .field("allow_unbound", &self.0.allow_unbound)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Dpop`]: setters that cannot fail, one [`build`](Self::build).
#[must_use]
pub struct DpopBuilder {
    store: Arc<dyn ReplayStore>,
    algorithms: Vec<JwtAlgorithm>,
    max_age: Duration,
    leeway: Duration,
    public_url: Option<String>,
    trust_forwarded: bool,
    nonce_secrets: Vec<Secret>,
    nonce_window: Duration,
    required: bool,
    allow_unbound: bool,
    policy: ReplayPolicy,
    clock: Arc<dyn Clock>,
}

impl Dpop {
    /// DPoP with the proofs' `jti`s kept in `store` (memory, or Redis shared by replicas).
    pub fn builder(store: impl ReplayStore) -> DpopBuilder {
        let defaults = ProofRules::default();
        DpopBuilder {
            store: Arc::new(store),
            algorithms: defaults.algorithms,
            max_age: Duration::from_secs(defaults.max_age),
            leeway: Duration::from_secs(defaults.leeway),
            public_url: None,
            trust_forwarded: false,
            nonce_secrets: Vec::new(),
            nonce_window: Duration::from_secs(60),
            required: false,
            allow_unbound: false,
            policy: ReplayPolicy::FailClosed,
            clock: Arc::new(SystemClock),
        }
    }

    /// The proof algorithms accepted, space-separated, as a `DPoP` challenge's `algs` names
    /// them.
    pub fn algorithms_text(&self) -> &str {
        &self.0.algorithms_text
    }

    /// The proof algorithms accepted, for the RFC 9728 metadata's
    /// `dpop_signing_alg_values_supported`.
    pub fn algorithms(&self) -> &[JwtAlgorithm] {
        &self.0.rules.algorithms
    }

    /// Whether every token must be presented with a proof (RFC 9728
    /// `dpop_bound_access_tokens_required`).
    pub fn is_required(&self) -> bool {
        self.0.required
    }

    /// The nonce to hand out now, when the server requires nonces.
    pub(crate) fn fresh_nonce(&self) -> Option<String> {
        let nonces = self.0.nonces.as_ref()?;
        Some(nonces.current(self.0.clock.unix_seconds()))
    }

    pub(crate) fn algorithms_arc(&self) -> Arc<str> {
        Arc::clone(&self.0.algorithms_text)
    }

    /// Check the proof in `parts`' one `DPoP` header against the request and `token`.
    ///
    /// # Errors
    ///
    /// A refusal of kind [`AuthErrorKind::InvalidDpopProof`] naming the check that failed,
    /// or [`AuthErrorKind::DpopNonceRequired`] when the proof lacks a current nonce.
    pub(crate) fn check_proof(
        &self,
        parts: &Parts,
        token: Option<&[u8]>,
    ) -> Result<VerifiedProof, Refusal> {
        let refused = |rule| Refusal::by(AuthErrorKind::InvalidDpopProof, rule);
        let mut values = parts.headers.get_all("dpop").iter();
        let proof = match (values.next(), values.next()) {
            (Some(proof), None) => proof.as_bytes(),
            (None, _) => return Err(refused("dpop proof missing")),
            (Some(_), Some(_)) => return Err(refused("dpop proof repeated")),
        };
        if !super::htu::is_plain(parts.uri.path()) {
            return Err(refused("dpop htu"));
        }
        let mut url = String::new();
        let mut readable = true;
        self.0
            .public_url
            .feed(parts, false, |piece| match std::str::from_utf8(piece) {
                Ok(text) => url.push_str(text),
                Err(_) => readable = false,
            })
            .map_err(|_| refused("dpop htu"))?;
        let htu = readable
            .then(|| super::htu::normalize(&url))
            .flatten()
            .ok_or_else(|| refused("dpop htu"))?;
        let now = self.0.clock.unix_seconds();
        let target = ProofTarget {
            method: &parts.method,
            htu: &htu,
            access_token: token,
            now,
        };
        let proof = super::proof::verify(proof, &self.0.rules, &target)
            .map_err(|refusal| refused(refusal.rule.unwrap_or("dpop proof")))?;
        if let Some(nonces) = &self.0.nonces
            && !proof
                .nonce
                .as_deref()
                .is_some_and(|nonce| nonces.accepts(nonce, now))
        {
            return Err(Refusal::by(AuthErrorKind::DpopNonceRequired, "dpop nonce"));
        }
        Ok(proof)
    }

    /// How long `proof`'s `jti` must be remembered: until its `iat` is too old to pass.
    fn jti_window(&self, proof: &VerifiedProof) -> Duration {
        let max_age = i64::try_from(self.0.rules.max_age).unwrap_or(i64::MAX);
        let remaining = proof
            .iat
            .saturating_add(max_age)
            .saturating_sub(self.0.clock.unix_seconds())
            .saturating_add(1);
        Duration::from_secs(u64::try_from(remaining).unwrap_or(0).max(1))
    }

    /// Check the DPoP proof of a request to a token endpoint (RFC 9449 §5: no access token,
    /// so no `ath`; `htu` the endpoint's public URL) and accept its `jti` once through the
    /// store. The answer is the thumbprint of the proof's key, to bind the token to with
    /// [`TokenRequest::dpop_key`](crate::jwt::TokenRequest::dpop_key).
    ///
    /// # Errors
    ///
    /// An [`AuthError`] of kind [`InvalidDpopProof`](AuthErrorKind::InvalidDpopProof) (its
    /// [`rule`](AuthError::rule) names the check), [`DpopNonceRequired`](AuthErrorKind::DpopNonceRequired)
    /// (with a fresh [`dpop_nonce`](AuthError::dpop_nonce) to retry with), or
    /// [`StoreUnavailable`](AuthErrorKind::StoreUnavailable). A token endpoint answers them
    /// 400 with the OAuth error `invalid_dpop_proof` or `use_dpop_nonce`.
    ///
    /// Anyone can make a valid proof with a key of their own, and each accepted one holds a
    /// record in the store for its window: authenticate the token request (or limit it)
    /// before calling this, or give the endpoint a store of its own, so that unauthenticated
    /// proofs cannot fill the store the resource server's proofs use.
    ///
    /// ```
    /// # async fn token_endpoint(dpop: callguard::dpop::Dpop, parts: http::request::Parts) -> Result<(), callguard::AuthError> {
    /// use std::time::Duration;
    /// use callguard::Scopes;
    /// use callguard::jwt::TokenRequest;
    ///
    /// let jkt = dpop.verify_token_request(&parts).await?;
    /// let request = TokenRequest::new("agent-7", Scopes::from_iter(["tools:call"]), Duration::from_secs(300))
    ///     .dpop_key(jkt);
    /// # Ok(()) }
    /// ```
    pub async fn verify_token_request(&self, parts: &Parts) -> Result<String, AuthError> {
        let refused = |refusal: Refusal| {
            AuthError::refused(refusal, Challenges::one(ChallengeScheme::DPoP))
                .with_dpop(self.algorithms_arc(), self.fresh_nonce().map(Into::into))
        };
        let proof = self.check_proof(parts, None).map_err(refused)?;
        let window = self.jti_window(&proof);
        let first = self
            .0
            .store
            .first_seen(proof.replay_key(), RecordId::new(), window)
            .await;
        match first {
            Ok(true) => Ok(proof.thumbprint),
            Ok(false) => Err(refused(Refusal::by(
                AuthErrorKind::InvalidDpopProof,
                "dpop jti",
            ))),
            Err(error) if self.0.policy == ReplayPolicy::FailOpen => {
                tracing::warn!(%error, "callguard accepted a DPoP proof its store could not answer for (failing open)");
                Ok(proof.thumbprint)
            }
            Err(error) => {
                tracing::error!(%error, "callguard refused a DPoP proof its store could not answer for");
                Err(refused(AuthErrorKind::StoreUnavailable.into()))
            }
        }
    }

    /// Bind the verified token's `caller` to `proof`: its `cnf.jkt` must be the proof key's
    /// thumbprint (an unbound token only when allowed). The caller then names the key, and
    /// the proof's `jti` is owed to the store.
    ///
    /// # Errors
    ///
    /// [`AuthErrorKind::InvalidDpopProof`] for a token bound to another key;
    /// [`AuthErrorKind::UnprovenKeyBinding`] for a token bound to something a DPoP proof
    /// does not prove (a certificate); [`AuthErrorKind::InvalidClaims`] for an unbound token
    /// when those are not allowed, or a `cnf` that is not an object of strings.
    ///
    /// A `cnf` naming a certificate too (`x5t#S256`) passes here only when
    /// `certificate_checked` says the caller holds the token to the connection's certificate
    /// as well; a member no check here or there proves refuses the token.
    pub(crate) fn bind(
        &self,
        proof: &VerifiedProof,
        caller: Caller,
        certificate_checked: bool,
    ) -> Result<(Caller, StoreStep), Refusal> {
        let cnf = caller.claims().and_then(|claims| claims.get("cnf"));
        match cnf {
            None if self.0.allow_unbound => {}
            None => return Err(Refusal::by(AuthErrorKind::InvalidClaims, "cnf")),
            Some(cnf) => {
                let cnf = cnf
                    .as_object()
                    .ok_or(Refusal::by(AuthErrorKind::InvalidClaims, "cnf"))?;
                let proven_elsewhere = |member: &String| {
                    member == "jkt" || (certificate_checked && member == "x5t#S256")
                };
                if !cnf.keys().all(proven_elsewhere) {
                    return Err(Refusal::by(AuthErrorKind::UnprovenKeyBinding, "cnf"));
                }
                match cnf.get("jkt") {
                    Some(serde_json::Value::String(jkt)) if *jkt == proof.thumbprint => {}
                    Some(serde_json::Value::String(_)) => {
                        return Err(Refusal::by(AuthErrorKind::InvalidDpopProof, "cnf.jkt"));
                    }
                    Some(_) => return Err(Refusal::by(AuthErrorKind::InvalidClaims, "cnf.jkt")),
                    // Bound to a certificate, or to something else no DPoP proof proves.
                    None => return Err(Refusal::by(AuthErrorKind::UnprovenKeyBinding, "cnf")),
                }
            }
        }
        let step = StoreStep::ProofJti(crate::signature::PendingReplay {
            store: Arc::clone(&self.0.store),
            key: proof.replay_key(),
            window: self.jti_window(proof),
            policy: self.0.policy,
            release_on: |_| false,
        });
        let caller =
            caller.with_confirmation(Confirmation::DpopKey(proof.thumbprint.as_str().into()));
        Ok((caller, step))
    }
}

impl std::fmt::Debug for DpopBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopBuilder")
            .field("algorithms", &self.algorithms)
            .field("max_age", &self.max_age)
            .field("leeway", &self.leeway)
            .field("public_url", &self.public_url)
            .field("trust_forwarded", &self.trust_forwarded)
            .field("nonce_secrets", &self.nonce_secrets.len())
            .field("required", &self.required)
            .field("allow_unbound", &self.allow_unbound)
            .finish_non_exhaustive()
    }
}

impl DpopBuilder {
    /// The proof algorithms accepted (default ES256, ES384, EdDSA, PS256, RS256). Asymmetric
    /// only: an HMAC algorithm is refused when built, and `none` is not an algorithm.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = JwtAlgorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// How old a proof's `iat` may be (default 60 s); its `jti` is remembered that long.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// How far in the future a proof's `iat` may be, for clients whose clocks run ahead
    /// (default 5 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The base URL clients call this server by (`https://api.example.com`, or with a path
    /// prefix): a proof's `htu` must name it followed by the request's path.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// Take the URL clients called from `X-Forwarded-Proto` / `X-Forwarded-Host` (then
    /// `Host`), as the URL-covering signature schemes can: only behind a proxy that sets
    /// them, since anyone can send them. A [`public_url`](Self::public_url) takes precedence.
    pub fn trust_forwarded_headers(mut self) -> Self {
        self.trust_forwarded = true;
        self
    }

    /// Require server nonces (RFC 9449 §8): a proof must carry a nonce made with one of these
    /// secrets (the first added makes new nonces; add the next one first to rotate). A proof
    /// without one is answered 401 `use_dpop_nonce` with a fresh `DPoP-Nonce`, and every
    /// accepted request's response carries a fresh one. Replicas with the same secrets accept
    /// each other's nonces without shared state.
    pub fn nonce_secret(mut self, secret: Secret) -> Self {
        self.nonce_secrets.push(secret);
        self
    }

    /// How long a nonce window lasts (default 60 s): a nonce is good in the window it was
    /// made in and the next.
    pub fn nonce_window(mut self, window: Duration) -> Self {
        self.nonce_window = window;
        self
    }

    /// Require DPoP for every token of the verifiers it is given to: a token presented as
    /// `Bearer` is refused, and the metadata says `dpop_bound_access_tokens_required`.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Accept, under the `DPoP` scheme with a valid proof, a token that is not bound to a
    /// key (no `cnf`): RFC 9449 §7.2 lets a server do so; by default such a token is refused.
    pub fn allow_unbound_tokens(mut self) -> Self {
        self.allow_unbound = true;
        self
    }

    /// What to do when the store cannot answer for a proof's `jti` (default: refuse, 503).
    pub fn policy(mut self, policy: ReplayPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The clock proofs and nonces are judged by (default: the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The configuration.
    ///
    /// # Errors
    ///
    /// - [`ConfigError::InvalidValue`] (`dpop algorithms`) for no algorithm or an HMAC one;
    ///   (`dpop max_age`) for a zero maximum age; (`dpop nonce secret`) for a nonce secret
    ///   shorter than 32 bytes.
    /// - [`ConfigError::InvalidUrl`] for a public URL that is not absolute `http(s)` without
    ///   a query.
    /// - [`ConfigError::InvalidComposition`] without a public URL or trusted forwarded
    ///   headers (a proof's `htu` could not be checked), or when both
    ///   [`required`](Self::required) and [`allow_unbound_tokens`](Self::allow_unbound_tokens).
    pub fn build(self) -> Result<Dpop, ConfigError> {
        let symmetric = |algorithm: &JwtAlgorithm| {
            matches!(
                algorithm,
                JwtAlgorithm::HS256 | JwtAlgorithm::HS384 | JwtAlgorithm::HS512
            )
        };
        if self.algorithms.is_empty() || self.algorithms.iter().any(symmetric) {
            return Err(ConfigError::InvalidValue {
                field: "dpop algorithms",
            });
        }
        if self.max_age.is_zero() {
            return Err(ConfigError::InvalidValue {
                field: "dpop max_age",
            });
        }
        if self.nonce_secrets.iter().any(|secret| secret.len() < 32) {
            return Err(ConfigError::InvalidValue {
                field: "dpop nonce secret",
            });
        }
        if self.required && self.allow_unbound {
            return Err(ConfigError::InvalidComposition {
                reason: "DPoP cannot both require bound tokens and allow unbound ones",
            });
        }
        let public_url = PublicUrl::configured(self.public_url, self.trust_forwarded)?.ok_or(
            ConfigError::InvalidComposition {
                reason: "DPoP needs the URL its proofs name: set public_url or trust_forwarded_headers",
            },
        )?;
        let mut algorithms = self.algorithms;
        algorithms.dedup();
        let algorithms_text = algorithms
            .iter()
            .map(|algorithm| format!("{:?}", algorithm.to_jsonwebtoken()))
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Dpop(Arc::new(Inner {
            rules: ProofRules {
                algorithms,
                max_age: self.max_age.as_secs(),
                leeway: self.leeway.as_secs(),
            },
            public_url,
            store: self.store,
            policy: self.policy,
            nonces: (!self.nonce_secrets.is_empty())
                .then(|| Nonces::new(&self.nonce_secrets, self.nonce_window.as_secs())),
            clock: self.clock,
            required: self.required,
            allow_unbound: self.allow_unbound,
            algorithms_text: algorithms_text.into(),
        })))
    }
}
