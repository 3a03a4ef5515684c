//! Opaque access tokens, checked by asking the authorization server (RFC 7662 token
//! introspection), with the answers cached.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{Request, StatusCode};
use serde_json::{Map, Value};

use super::access_token::access_token_scopes;
use crate::caller::{AuthMethod, Caller, Claims};
use crate::client::ClientAddr;
use crate::clock::Clock;
use crate::error::{AuthErrorKind, ConfigError, Refusal, check_token_text};
use crate::jwt::ClaimRules;
use crate::jwt::TokenCache;
use crate::keys::{FetchError, HttpClient, check_url};
use crate::secret::Secret;

/// The most introspection calls in flight at once (distinct tokens); beyond it a new token
/// is answered 503 until one completes, so a flood of made-up tokens cannot pile up calls.
pub const MAX_CALLS_IN_FLIGHT: usize = 256;

/// The most introspection calls made for one client (one IPv4 address, one IPv6 /64) at
/// once: one source of made-up tokens cannot take the slots of everyone else.
pub const MAX_CALLS_PER_CLIENT: usize = 16;

/// The most introspection calls made for one network (an IPv4 /24, an IPv6 /48, which one
/// subscriber can hold whole) at once.
pub const MAX_CALLS_PER_NETWORK: usize = 32;

/// The client group and the network a call was started for.
type Sources = (u128, u128);

/// The calls in flight, and how many each client and network started.
#[derive(Default)]
struct Flights {
    answers: HashMap<[u8; 32], (Answer, Option<Sources>)>,
    per_source: HashMap<u128, usize>,
}

impl Flights {
    /// Count a call for `client` and its network, unless either holds its share already.
    fn start(&mut self, client: ClientAddr) -> Result<Sources, ()> {
        let (group, network) = (client.group(), client.network());
        let held = |key| self.per_source.get(&key).copied().unwrap_or(0);
        if held(group) >= MAX_CALLS_PER_CLIENT || held(network) >= MAX_CALLS_PER_NETWORK {
            return Err(());
        }
        for key in [group, network] {
            *self.per_source.entry(key).or_default() += 1;
        }
        Ok((group, network))
    }

    /// Forget the call for `key` and give its client's and network's slots back.
    fn end(&mut self, key: &[u8; 32]) {
        if let Some((_, Some((group, network)))) = self.answers.remove(key) {
            for source in [group, network] {
                if let Some(count) = self.per_source.get_mut(&source) {
                    *count -= 1;
                    if *count == 0 {
                        self.per_source.remove(&source);
                    }
                }
            }
        }
    }
}

/// How long an `active: false` answer is remembered by default: 10 s.
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(10);

/// The longest an `active: true` answer is remembered by default, whatever its `exp`: 5 min.
pub const DEFAULT_MAX_POSITIVE_TTL: Duration = Duration::from_secs(300);

/// An RFC 7662 introspection endpoint and the client credentials to call it with.
///
/// An answer `active: true` must meet the same rules as a JWT access token: `iss` the
/// configured issuer (when one is), `aud` naming one of the audiences, `exp` not passed;
/// `scope` and `scp` give the scopes. `active: false` is 401. An endpoint that cannot be
/// reached, times out or answers anything but 200 with JSON is 503: a token is never
/// accepted because the endpoint was down. Answers are cached by the token's SHA-256:
/// positive ones until their `exp` (at most [`DEFAULT_MAX_POSITIVE_TTL`]), negative ones for
/// [`DEFAULT_NEGATIVE_TTL`]; concurrent requests with one token share one call, which runs
/// on the tokio runtime to its end even if every request waiting for it goes away; at most
/// [`MAX_CALLS_IN_FLIGHT`] calls run at once (503 beyond).
#[derive(Clone)]
pub struct Introspection {
    inner: Arc<IntrospectionInner>,
}

struct IntrospectionInner {
    endpoint: http::Uri,
    authorization: http::HeaderValue,
    client: Arc<dyn HttpClient>,
    issuer: Option<Arc<str>>,
    audiences: Vec<Arc<str>>,
    /// Clock skew allowed on `exp` and `nbf`.
    leeway: i64,
    clock: Arc<dyn Clock>,
    timeout: Duration,
    max_bytes: usize,
    max_positive_ttl: i64,
    negative_ttl: i64,
    cache: TokenCache,
    negative: quick_cache::sync::Cache<[u8; 32], i64>,
    flights: Mutex<Flights>,
}

type Answer = Shared<BoxFuture<'static, Result<Caller, Refusal>>>;

impl fmt::Debug for Introspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Introspection")
            .field("endpoint", &self.inner.endpoint)
            .field("issuer", &self.inner.issuer)
            .field("audiences", &self.inner.audiences)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Introspection`].
pub struct IntrospectionBuilder {
    endpoint: String,
    client_id: String,
    client_secret: Secret,
    http: Arc<dyn HttpClient>,
    rules: ClaimRules,
    allow_loopback_http: bool,
    timeout: Duration,
}

impl fmt::Debug for IntrospectionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionBuilder")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Introspection {
    /// Introspect at `endpoint`, authenticating as `client_id` with `client_secret` (HTTP
    /// Basic, RFC 6749 §2.3.1), through `http`.
    pub fn builder(
        endpoint: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: Secret,
        http: Arc<dyn HttpClient>,
    ) -> IntrospectionBuilder {
        IntrospectionBuilder {
            endpoint: endpoint.into(),
            client_id: client_id.into(),
            client_secret,
            http,
            rules: ClaimRules::new(),
            allow_loopback_http: false,
            timeout: Duration::from_secs(5),
        }
    }
}

impl IntrospectionBuilder {
    /// The claim rules active tokens are held to, all at once (replacing any set before):
    /// issuer, audiences, leeway and clock. An introspection answer has no header, so
    /// rules naming a `typ` are refused when built.
    #[must_use]
    pub fn claim_rules(mut self, rules: ClaimRules) -> Self {
        self.rules = rules;
        self
    }

    /// Require active tokens' `iss` to be `issuer` ([`ClaimRules::issuer`]).
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.rules = self.rules.issuer(issuer);
        self
    }

    /// Require active tokens' `aud` to name `audience`; call again for several
    /// ([`ClaimRules::audience`]).
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.rules = self.rules.audience(audience);
        self
    }

    /// The clock `exp` and `nbf` are checked against.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.rules = self.rules.clock(clock);
        self
    }

    /// Allow a plain `http` endpoint on loopback.
    #[must_use]
    pub fn allow_loopback_http(mut self) -> Self {
        self.allow_loopback_http = true;
        self
    }

    /// The most one call may take (default 5 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Validate and build.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidUrl`] for an endpoint that is not `https` (or loopback `http`
    /// when allowed), [`ConfigError::InvalidValue`] for an empty client id, issuer or
    /// audience, [`ConfigError::InvalidComposition`] without an audience.
    pub fn build(self) -> Result<Introspection, ConfigError> {
        let endpoint = check_url(&self.endpoint, self.allow_loopback_http).map_err(|_| {
            ConfigError::InvalidUrl {
                url: self.endpoint.clone(),
            }
        })?;
        check_token_text(&self.client_id, "client id")?;
        if self.rules.audiences.is_empty() {
            return Err(ConfigError::InvalidComposition {
                reason: "introspection needs at least one audience: this resource's identifier",
            });
        }
        if self.rules.typ.is_some() {
            return Err(ConfigError::InvalidComposition {
                reason: "an introspection answer has no typ header to check; leave typ out of its claim rules",
            });
        }
        self.rules.check()?;
        // RFC 6749 §2.3.1: the id and secret are form-urlencoded before Basic encoding.
        let encode = |text: &[u8]| form_urlencoded::byte_serialize(text).collect::<String>();
        let credentials = zeroize::Zeroizing::new(format!(
            "{}:{}",
            encode(self.client_id.as_bytes()),
            encode(self.client_secret.expose())
        ));
        let mut authorization = http::HeaderValue::try_from(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials.as_bytes())
        ))
        .map_err(|_| ConfigError::InvalidValue {
            field: "client secret",
        })?;
        authorization.set_sensitive(true);
        let seconds = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Ok(Introspection {
            inner: Arc::new(IntrospectionInner {
                endpoint,
                authorization,
                client: self.http,
                issuer: self.rules.issuer.as_deref().map(Into::into),
                audiences: self
                    .rules
                    .audiences
                    .iter()
                    .map(|a| a.as_str().into())
                    .collect(),
                leeway: self.rules.leeway_secs(),
                clock: self.rules.clock,
                timeout: self.timeout,
                max_bytes: 64 * 1024,
                max_positive_ttl: seconds(DEFAULT_MAX_POSITIVE_TTL),
                negative_ttl: seconds(DEFAULT_NEGATIVE_TTL),
                cache: TokenCache::new(10_000).expect("a non-zero capacity"),
                negative: quick_cache::sync::Cache::new(10_000),
                flights: Mutex::default(),
            }),
        })
    }
}

/// What introspecting a token found: an answer from the cache, or a call to wait for.
pub(crate) enum Introspected {
    Cached(Result<Caller, Refusal>),
    Wait(Answer),
}

impl Introspection {
    /// The cached answer for `token`, or the one call (shared by every request presenting
    /// it now) that will give it. A new call is refused (503) when [`MAX_CALLS_IN_FLIGHT`]
    /// are under way, [`MAX_CALLS_PER_CLIENT`] for the request's `client`, or
    /// [`MAX_CALLS_PER_NETWORK`] for its network.
    pub(crate) fn check(&self, token: &[u8], client: Option<ClientAddr>) -> Introspected {
        let inner = &self.inner;
        let key = TokenCache::key(token);
        let now = inner.clock.unix_seconds();
        if let Some(hit) = inner.cache.lookup(&key, now, inner.leeway) {
            return Introspected::Cached(hit);
        }
        if inner.negative.get(&key).is_some_and(|until| until > now) {
            return Introspected::Cached(Err(Refusal::by(
                AuthErrorKind::InvalidCredentials,
                "active",
            )));
        }
        let mut flights = inner.flights.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((answer, _)) = flights.answers.get(&key) {
            return Introspected::Wait(answer.clone());
        }
        if flights.answers.len() >= MAX_CALLS_IN_FLIGHT {
            return Introspected::Cached(Err(AuthErrorKind::IntrospectionUnavailable.into()));
        }
        let client = match client.map(|client| flights.start(client)) {
            None => None,
            Some(Ok(sources)) => Some(sources),
            Some(Err(())) => {
                return Introspected::Cached(Err(Refusal::by(
                    AuthErrorKind::IntrospectionUnavailable,
                    "client-calls",
                )));
            }
        };
        let (this, token) = (self.clone(), token.to_vec());
        let answer = async move {
            let result = this.call(&token).await;
            this.remember(key, &result);
            this.inner
                .flights
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .end(&key);
            result
        }
        .boxed()
        .shared();
        flights.answers.insert(key, (answer.clone(), client));
        // Driven to completion on the runtime whatever happens to the requests waiting for
        // it, so an abandoned call still ends (bounded by the timeout) and leaves the map.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(answer.clone());
        }
        Introspected::Wait(answer)
    }

    fn remember(&self, key: [u8; 32], result: &Result<Caller, Refusal>) {
        let inner = &self.inner;
        let now = inner.clock.unix_seconds();
        match result {
            Ok(caller) => {
                let exp = caller
                    .claims()
                    .and_then(|c| c.get("exp"))
                    .and_then(Value::as_i64)
                    .unwrap_or(i64::MAX);
                // Trusted for a bounded time; past it the token is asked about again, and
                // refused as expired only once its own `exp` has passed.
                let until = now.saturating_add(inner.max_positive_ttl);
                let text_len = caller.claims().map_or(0, |claims| {
                    serde_json::to_vec(claims.as_map()).map_or(0, |text| text.len())
                });
                inner.cache.remember(
                    key,
                    crate::jwt::Verified::new(caller.clone(), exp, text_len).until(until),
                );
            }
            Err(Refusal {
                kind:
                    AuthErrorKind::InvalidCredentials
                    | AuthErrorKind::InvalidClaims
                    | AuthErrorKind::UnprovenKeyBinding,
                ..
            }) => {
                inner
                    .negative
                    .insert(key, now.saturating_add(inner.negative_ttl));
            }
            // The endpoint's trouble is not the token's: ask again next time.
            Err(_) => {}
        }
    }

    async fn call(&self, token: &[u8]) -> Result<Caller, Refusal> {
        let inner = &self.inner;
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", &String::from_utf8_lossy(token))
            .append_pair("token_type_hint", "access_token")
            .finish();
        let request = Request::post(inner.endpoint.clone())
            .header(AUTHORIZATION, inner.authorization.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(Bytes::from(body))
            .map_err(|_| Refusal::from(AuthErrorKind::IntrospectionUnavailable))?;
        let sent = inner.client.send(request, inner.max_bytes, inner.timeout);
        let response = match tokio::time::timeout(inner.timeout, sent).await {
            Ok(Ok(response)) if response.status() == StatusCode::OK => response,
            outcome => {
                let error = match outcome {
                    Ok(Ok(response)) => FetchError::Status(response.status().as_u16()),
                    Ok(Err(error)) => error,
                    Err(_) => FetchError::Timeout,
                };
                tracing::error!(
                    endpoint = %inner.endpoint,
                    %error,
                    "callguard could not introspect a token"
                );
                return Err(AuthErrorKind::IntrospectionUnavailable.into());
            }
        };
        let answer: Map<String, Value> = serde_json::from_slice(response.body())
            .map_err(|_| Refusal::from(AuthErrorKind::IntrospectionUnavailable))?;
        self.caller_of(answer)
    }

    /// The caller an introspection answer proves, under the configured rules.
    fn caller_of(&self, answer: Map<String, Value>) -> Result<Caller, Refusal> {
        let inner = &self.inner;
        use AuthErrorKind::InvalidClaims;
        if answer.get("active") != Some(&Value::Bool(true)) {
            return Err(Refusal::by(AuthErrorKind::InvalidCredentials, "active"));
        }
        let string_is = |value: &Value, expected: &str| value.as_str() == Some(expected);
        if let Some(issuer) = &inner.issuer
            && !answer.get("iss").is_some_and(|iss| string_is(iss, issuer))
        {
            return Err(Refusal::by(InvalidClaims, "iss"));
        }
        if !crate::jwt::names_audience(answer.get("aud"), &inner.audiences) {
            return Err(Refusal::by(InvalidClaims, "aud"));
        }
        let now = inner.clock.unix_seconds();
        if let Some(exp) = answer.get("exp") {
            let exp = exp.as_i64().ok_or(Refusal::by(InvalidClaims, "exp"))?;
            if now.saturating_sub(inner.leeway) >= exp {
                return Err(Refusal::by(AuthErrorKind::TokenExpired, "exp"));
            }
        }
        if let Some(nbf) = answer.get("nbf") {
            let nbf = nbf.as_i64().ok_or(Refusal::by(InvalidClaims, "nbf"))?;
            if now.saturating_add(inner.leeway) < nbf {
                return Err(Refusal::by(AuthErrorKind::TokenNotYetValid, "nbf"));
            }
        }
        let subject: Arc<str> = match answer.get("sub") {
            None => "".into(),
            Some(Value::String(sub)) => sub.as_str().into(),
            Some(_) => return Err(Refusal::by(InvalidClaims, "sub")),
        };
        let scopes = access_token_scopes(&answer).map_err(|kind| Refusal::by(kind, "scope"))?;
        Ok(Caller::new(AuthMethod::OAuth, subject)
            .with_scopes(scopes)
            .with_claims(Claims::new(answer)))
    }
}
