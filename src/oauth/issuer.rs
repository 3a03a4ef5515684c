//! One authorization server whose access tokens this resource accepts: its identifier, its
//! keys, and the rules its tokens must meet here.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::error::{ConfigError, check_token_text};
use crate::jwt::{ClaimRules, JwtKeySet};
use crate::keys::{FetchError, HttpClient, RemoteKeySettings, RemoteKeys, check_url, get_document};

/// Where an issuer's verification keys come from.
#[derive(Clone)]
pub(crate) enum IssuerKeys {
    /// Its published JWK set, fetched and refreshed.
    Remote(RemoteKeys<JwtKeySet>),
    /// A set configured by hand.
    Fixed(Arc<JwtKeySet>),
    /// Discovery still retried in the background; its key set once it answered.
    Discovering(Arc<arc_swap::ArcSwapOption<RemoteKeys<JwtKeySet>>>),
}

/// An authorization server whose access tokens are accepted, with its keys, the audiences
/// (this resource's identifiers, RFC 8707) its tokens must name, and how strict `typ` is.
///
/// Build one with [`Issuer::discover`] (OpenID Connect discovery, then RFC 8414), or with
/// [`Issuer::builder`] and the keys given directly.
#[derive(Clone)]
pub struct Issuer {
    pub(crate) inner: Arc<IssuerInner>,
}

pub(crate) struct IssuerInner {
    pub(crate) issuer: Arc<str>,
    pub(crate) keys: IssuerKeys,
    pub(crate) audiences: Vec<Arc<str>>,
    pub(crate) typ: Vec<Arc<str>>,
    /// Accept `typ: JWT` or no `typ` (for issuers that do not send `at+jwt`).
    pub(crate) allow_jwt_typ: bool,
    pub(crate) leeway: i64,
    pub(crate) clock: Arc<dyn Clock>,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("Issuer")
            .field("issuer", &inner.issuer)
            .field("audiences", &inner.audiences)
            .field("allow_jwt_typ", &inner.allow_jwt_typ)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// An issuer named `issuer` (its `iss`, compared byte for byte), keys still to be given.
    pub fn builder(issuer: impl Into<String>) -> IssuerBuilder {
        IssuerBuilder {
            issuer: issuer.into(),
            keys: None,
            rules: ClaimRules::new(),
            allow_jwt_typ: false,
        }
    }

    /// Discover `issuer`'s metadata (`/.well-known/openid-configuration`, then RFC 8414's
    /// `/.well-known/oauth-authorization-server`), check that the document's `issuer` is
    /// `issuer` byte for byte, and fetch its `jwks_uri` under `settings`. The keys are then
    /// kept fresh in the background (see [`RemoteKeys`]).
    ///
    /// # Errors
    ///
    /// [`FetchError`] when neither document can be fetched, the `issuer` differs, the
    /// document has no `jwks_uri`, or the JWK set cannot be fetched.
    pub async fn discover(
        issuer: &str,
        client: Arc<dyn HttpClient>,
        settings: RemoteKeySettings,
    ) -> Result<IssuerBuilder, FetchError> {
        let metadata = discover_metadata(issuer, client.as_ref(), &settings).await?;
        let jwks_uri = metadata
            .jwks_uri
            .ok_or_else(|| FetchError::Invalid("the issuer's metadata has no jwks_uri".into()))?;
        let keys = RemoteKeys::fetch(&jwks_uri, client, settings).await?;
        Ok(Self::builder(issuer).remote_keys(keys))
    }

    /// As [`Issuer::discover`], without waiting: discovery and the first key fetch are
    /// retried in the background until they succeed (every refetch interval at first,
    /// backing off to 5 min, each failure logged with the URL), so a server starts while
    /// its issuer is down. Until then, requests with this issuer's tokens are answered 503.
    ///
    /// # Errors
    ///
    /// [`FetchError::InsecureUrl`] for an issuer URL that is not allowed, and
    /// [`FetchError::Invalid`] when no tokio runtime is running.
    pub fn discover_lazily(
        issuer: &str,
        client: Arc<dyn HttpClient>,
        settings: RemoteKeySettings,
    ) -> Result<IssuerBuilder, FetchError> {
        check_url(issuer, settings.allow_loopback_http)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            FetchError::Invalid("lazy discovery needs a running tokio runtime".to_owned())
        })?;
        let slot = Arc::new(arc_swap::ArcSwapOption::empty());
        runtime.spawn(discover_in_background(
            issuer.to_owned(),
            client,
            settings,
            Arc::downgrade(&slot),
        ));
        let mut builder = Self::builder(issuer);
        builder.keys = Some(IssuerKeys::Discovering(slot));
        Ok(builder)
    }

    /// The issuer's identifier.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The audiences its tokens must name one of.
    pub fn audiences(&self) -> impl Iterator<Item = &str> {
        self.inner.audiences.iter().map(|a| &**a)
    }
}

/// Builds an [`Issuer`].
pub struct IssuerBuilder {
    issuer: String,
    keys: Option<IssuerKeys>,
    rules: ClaimRules,
    allow_jwt_typ: bool,
}

impl fmt::Debug for IssuerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerBuilder")
            .field("issuer", &self.issuer)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl IssuerBuilder {
    /// Verify with this remote key set (for example one fetched from a known `jwks_uri`).
    #[must_use]
    pub fn remote_keys(mut self, keys: RemoteKeys<JwtKeySet>) -> Self {
        self.keys = Some(IssuerKeys::Remote(keys));
        self
    }

    /// Verify with keys configured by hand.
    #[must_use]
    pub fn keys(mut self, keys: JwtKeySet) -> Self {
        self.keys = Some(IssuerKeys::Fixed(Arc::new(keys)));
        self
    }

    /// The claim rules this issuer's tokens are verified against, all at once (replacing
    /// any set before): audiences, leeway, clock, and `typ` (RFC 9068's `at+jwt` when the
    /// rules name none). The rules' issuer, when set, must be this issuer's identifier.
    #[must_use]
    pub fn claim_rules(mut self, rules: ClaimRules) -> Self {
        self.rules = rules;
        self
    }

    /// Accept tokens whose `aud` names `audience` (this resource's identifier, RFC 8707);
    /// call again to accept several ([`ClaimRules::audience`]).
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.rules = self.rules.audience(audience);
        self
    }

    /// Accept tokens with `typ: JWT` or without `typ`, for issuers that do not send RFC
    /// 9068's `at+jwt` (by default only `at+jwt` and `application/at+jwt` pass).
    #[must_use]
    pub fn allow_jwt_typ(mut self) -> Self {
        self.allow_jwt_typ = true;
        self
    }

    /// Clock skew allowed for `exp` and `nbf` (default 10 s).
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.rules = self.rules.leeway(leeway);
        self
    }

    /// The clock `exp` and `nbf` are checked against.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.rules = self.rules.clock(clock);
        self
    }

    /// Validate and build.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] for an issuer or audience that is empty or not printable
    /// ASCII, [`ConfigError::NoSecrets`] without keys, [`ConfigError::InvalidComposition`]
    /// without an audience (a resource must never accept tokens meant for another).
    pub fn build(self) -> Result<Issuer, ConfigError> {
        check_token_text(&self.issuer, "issuer")?;
        let keys = self.keys.ok_or_else(|| ConfigError::NoSecrets {
            verifier: format!("issuer {}", self.issuer),
        })?;
        let rules = self.rules;
        if rules.audiences.is_empty() {
            return Err(ConfigError::InvalidComposition {
                reason: "an issuer needs at least one audience: this resource's identifier",
            });
        }
        rules.check()?;
        if rules.issuer.as_ref().is_some_and(|iss| *iss != self.issuer) {
            return Err(ConfigError::InvalidComposition {
                reason: "the claim rules name another issuer than the issuer they are given to",
            });
        }
        let mut typ: Vec<Arc<str>> = vec![rules.typ.as_deref().unwrap_or("at+jwt").into()];
        if self.allow_jwt_typ {
            typ.push("JWT".into());
        }
        Ok(Issuer {
            inner: Arc::new(IssuerInner {
                issuer: self.issuer.into(),
                keys,
                audiences: rules.audiences.iter().map(|a| a.as_str().into()).collect(),
                typ,
                allow_jwt_typ: self.allow_jwt_typ,
                leeway: rules.leeway_secs(),
                clock: rules.clock,
            }),
        })
    }
}

/// Discover `issuer` and fetch its keys until both succeed, then hand the key set to
/// `slot`; stop early if the issuer was dropped.
async fn discover_in_background(
    issuer: String,
    client: Arc<dyn HttpClient>,
    settings: RemoteKeySettings,
    slot: std::sync::Weak<arc_swap::ArcSwapOption<RemoteKeys<JwtKeySet>>>,
) {
    const MAX_DELAY: Duration = Duration::from_secs(300);
    let mut delay = settings.refetch_interval.max(Duration::from_millis(100));
    loop {
        if slot.strong_count() == 0 {
            return;
        }
        let discovered = match discover_metadata(&issuer, client.as_ref(), &settings).await {
            Ok(metadata) => match metadata.jwks_uri {
                Some(jwks_uri) => {
                    RemoteKeys::fetch(&jwks_uri, Arc::clone(&client), settings.clone()).await
                }
                None => Err(FetchError::Invalid(format!(
                    "the metadata of `{issuer}` has no jwks_uri"
                ))),
            },
            Err(error) => Err(error),
        };
        match discovered {
            Ok(keys) => {
                if let Some(slot) = slot.upgrade() {
                    slot.store(Some(Arc::new(keys)));
                    tracing::info!(%issuer, "callguard discovered an issuer");
                }
                return;
            }
            Err(error) => {
                tracing::warn!(%issuer, %error, retry_in = ?delay, "callguard could not discover an issuer yet");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_DELAY);
    }
}

/// The parts of an authorization server's metadata (RFC 8414, OpenID Connect Discovery)
/// callguard reads.
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct Metadata {
    pub(crate) issuer: String,
    pub(crate) jwks_uri: Option<String>,
    #[allow(dead_code, reason = "read by introspection, next")]
    pub(crate) introspection_endpoint: Option<String>,
}

/// Fetch and check the metadata of `issuer`: OpenID Connect's document first, RFC 8414's
/// (path-aware) second; the document's `issuer` must equal `issuer` byte for byte.
pub(crate) async fn discover_metadata(
    issuer: &str,
    client: &dyn HttpClient,
    settings: &RemoteKeySettings,
) -> Result<Metadata, FetchError> {
    let base = check_url(issuer, settings.allow_loopback_http)?;
    let trimmed = issuer.trim_end_matches('/');
    let path = base.path().trim_end_matches('/');
    let origin = &trimmed[..trimmed.len() - path.len()];
    let candidates = [
        format!("{trimmed}/.well-known/openid-configuration"),
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
    ];
    let mut failures = Vec::new();
    for url in candidates {
        match fetch_json::<Metadata>(client, &url, settings).await {
            Ok(metadata) if metadata.issuer == issuer => return Ok(metadata),
            Ok(metadata) => {
                return Err(FetchError::Invalid(format!(
                    "the metadata at {url} names issuer `{}`, not `{issuer}`",
                    metadata.issuer
                )));
            }
            Err(error) => failures.push(error.to_string()),
        }
    }
    Err(FetchError::Invalid(format!(
        "no metadata document for issuer `{issuer}`: {}",
        failures.join("; ")
    )))
}

async fn fetch_json<T: serde::de::DeserializeOwned>(
    client: &dyn HttpClient,
    url: &str,
    settings: &RemoteKeySettings,
) -> Result<T, FetchError> {
    let uri = check_url(url, settings.allow_loopback_http)?;
    let response = get_document(client, uri, settings.max_bytes, settings.timeout)
        .await
        .map_err(|error| error.at(url))?;
    serde_json::from_slice(response.body())
        .map_err(|_| FetchError::Invalid(format!("{url} is not the JSON document expected")))
}
