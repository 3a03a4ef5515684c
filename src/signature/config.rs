//! The signature verifier's configuration: built and validated once, shared by every request.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName};
use subtle::ConstantTimeEq;

use super::header::{Encoding, SignatureFormat};
use super::mac::{KeyedMac, SignatureAlgorithm};
use crate::caller::Scopes;
use crate::clock::{Clock, SystemClock};
use crate::error::{ConfigError, check_token_text};
use crate::replay::{MemoryReplayStore, ReplayKey, ReplayPolicy, ReplayStore};
use crate::secret::Secret;

/// How many deliveries the default in-memory replay store of a timestamped scheme remembers.
/// A full store refuses new deliveries (503) rather than forget a live one, so this is the
/// most deliveries within their windows: 100 000, more than 300 a second with Stripe's
/// 300 s. Memory follows use, up to 20 MB.
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

/// The default signature header.
pub const DEFAULT_HEADER: &str = "x-signature";

/// The default timestamp tolerance into the past and into the future: 300 seconds, as
/// Stripe, Slack and Standard Webhooks use.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// One piece of the message that the sender signs, in order.
///
/// The default message is the raw body alone. Schemes that sign more list their parts,
/// always ending with [`MessagePart::Body`]: Slack signs
/// `[Literal("v0:"), Timestamp, Literal(":"), Body]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessagePart {
    /// Fixed text, such as a separator.
    Literal(&'static str),
    /// The raw value of a request header (for example a delivery id); it must appear
    /// exactly once.
    Header(&'static str),
    /// The raw timestamp, exactly as sent.
    Timestamp,
    /// The public URL the sender called: the configured public base URL followed by the
    /// request's path and query, or, only when opted in, the URL rebuilt from forwarded
    /// headers (see [`SignatureVerifierBuilder::public_base_url`]).
    Url,
    /// The raw body; it must be the last part.
    Body,
    /// The Twilio-compatible message, which must be the only part: the public URL followed
    /// by the form body's parameters sorted by name and then value, each name immediately
    /// followed by its value. When the URL's query carries `bodySHA256`, the URL alone is
    /// signed and the body must hash (SHA-256, hex) to that value. The URL is tried both with
    /// and without its port, as the platforms' own validators do.
    UrlAndSortedFormParams,
}

/// Where a scheme's timestamp is found.
#[derive(Debug, Clone)]
pub(crate) enum TimestampSource {
    Header(HeaderName),
    Field(Box<str>),
}

/// A prepared message part: header names parsed, literals as bytes.
#[derive(Debug, Clone)]
pub(crate) enum PrefixPart {
    Literal(&'static [u8]),
    Header(HeaderName),
    Timestamp,
    Url,
}

/// A secret keyed into MAC state once, at build time.
pub(crate) struct KeyedSecret {
    pub(crate) id: Arc<str>,
    pub(crate) mac: KeyedMac,
}

/// Alternative names under which a header may arrive (`svix-id` for `webhook-id`).
#[derive(Debug, Clone, Default)]
pub(crate) struct HeaderAliases {
    pairs: Vec<(HeaderName, HeaderName)>,
}

impl HeaderAliases {
    /// Every name `header` is read under: itself and its aliases.
    pub(crate) fn names_of<'a>(
        &'a self,
        header: &'a HeaderName,
    ) -> impl Iterator<Item = &'a HeaderName> + 'a {
        std::iter::once(header).chain(
            self.pairs
                .iter()
                .filter(move |(canonical, _)| canonical == header)
                .map(|(_, alias)| alias),
        )
    }

    /// The one value of `name` or of one of its aliases; `Err` when there is more than one.
    pub(crate) fn single_value<'a>(
        &self,
        headers: &'a HeaderMap,
        name: &HeaderName,
    ) -> Result<Option<&'a [u8]>, ()> {
        let aliases = self
            .pairs
            .iter()
            .filter(|(canonical, _)| canonical == name)
            .map(|(_, alias)| alias);
        let mut found = None;
        for candidate in std::iter::once(name).chain(aliases) {
            for value in headers.get_all(candidate) {
                if found.replace(value.as_bytes()).is_some() {
                    return Err(());
                }
            }
        }
        Ok(found)
    }

    /// Whether `name` or one of its aliases is present.
    pub(crate) fn contains(&self, headers: &HeaderMap, name: &HeaderName) -> bool {
        headers.contains_key(name)
            || self
                .pairs
                .iter()
                .any(|(canonical, alias)| canonical == name && headers.contains_key(alias))
    }
}

pub(crate) struct VerifierConfig {
    /// The largest body the platform sends: a guard's default body limit.
    pub(crate) platform_body_limit: usize,
    pub(crate) header: HeaderName,
    pub(crate) aliases: HeaderAliases,
    pub(crate) algorithm: SignatureAlgorithm,
    pub(crate) encoding: Encoding,
    pub(crate) format: SignatureFormat,
    pub(crate) timestamp: Option<TimestampSource>,
    pub(crate) tolerance_past: i64,
    pub(crate) tolerance_future: i64,
    pub(crate) prefix: Vec<PrefixPart>,
    /// The message is [`MessagePart::UrlAndSortedFormParams`], computed once the body is in.
    pub(crate) form_message: bool,
    pub(crate) keys: Vec<KeyedSecret>,
    /// The caller each secret proves (`callers[i]` for `keys[i]`), built once with the
    /// verifier, so an accepted request clones one rather than assembling it.
    pub(crate) callers: Vec<crate::Caller>,
    pub(crate) identity: Arc<str>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) url: Option<crate::public_url::PublicUrl>,
    pub(crate) replay: Option<ReplaySettings>,
    /// Where the signed request names the user it is made for.
    pub(crate) on_behalf_of: Option<crate::delegation::PlatformUser>,
    /// The addresses this verifier's senders call from, when it is restricted to them.
    pub(crate) allowed_from: Option<crate::limit::AllowList>,
}

/// Replay protection as configured for one verifier.
pub(crate) struct ReplaySettings {
    pub(crate) store: Arc<dyn ReplayStore>,
    pub(crate) window: Duration,
    pub(crate) policy: ReplayPolicy,
    pub(crate) release_on: fn(http::StatusCode) -> bool,
}

impl ReplaySettings {
    /// How long to remember a delivery verified at `now`: the configured window, and for a
    /// timestamped scheme at least until the last second its timestamp still verifies
    /// (inclusive), so no replay can verify after the store has forgotten it.
    pub(crate) fn window_for(&self, verifies_until: Option<i64>, now: i64) -> Duration {
        let until_unverifiable = verifies_until.map_or(0, |last| {
            u64::try_from(last.saturating_sub(now).saturating_add(1)).unwrap_or(0)
        });
        self.window.max(Duration::from_secs(until_unverifiable))
    }

    /// The store key for signed material of `kind`: SHA-256 over the verifier's identity,
    /// the kind and the bytes, so verifiers sharing a store never collide.
    pub(crate) fn key(&self, identity: &str, kind: &[u8], material: &[u8]) -> ReplayKey {
        ReplayKey::derive(&[identity.as_bytes(), b"\0", kind, b"\0", material])
    }
}

/// Which replay protection a builder was asked for.
#[derive(Clone)]
enum ReplayChoice {
    /// On with an in-memory store when the scheme signs a timestamp; off otherwise.
    Default,
    Off,
    Store(Arc<dyn ReplayStore>),
}

/// Verifies an HMAC signature over a request: one configurable type for the generic
/// `x-signature` header and every provider's scheme.
///
/// Built with [`SignatureVerifier::builder`]; put in front of a service with
/// [`SignatureVerifier::layer`] or [`GuardLayer::new`](crate::GuardLayer::new). Cloning
/// shares the configuration.
#[derive(Clone)]
pub struct SignatureVerifier {
    pub(crate) config: Arc<VerifierConfig>,
}

impl SignatureVerifier {
    /// The headers this verifier reads its signature from: its header and the aliases.
    pub(crate) fn signature_headers(&self) -> impl Iterator<Item = &HeaderName> {
        self.config.aliases.names_of(&self.config.header)
    }

    /// The largest body the platform delivers, which a guard of this verifier accepts by
    /// default (see [`SignatureVerifierBuilder::platform_body_limit`]).
    pub fn platform_body_limit(&self) -> usize {
        self.config.platform_body_limit
    }

    /// A builder with the defaults: header `x-signature`, lower- or upper-case hex, the raw
    /// body as the message, no timestamp, identity `signature`.
    pub fn builder() -> SignatureVerifierBuilder {
        SignatureVerifierBuilder::default()
    }

    /// A [`GuardLayer`](crate::GuardLayer) that requires this signature.
    pub fn layer(self) -> crate::GuardLayer {
        crate::GuardLayer::new(self)
    }

    /// The signature header this verifier reads.
    pub fn header(&self) -> &HeaderName {
        &self.config.header
    }

    /// The ids of the configured secrets, in the order they were added.
    pub fn secret_ids(&self) -> impl Iterator<Item = &str> {
        self.config.keys.iter().map(|k| &*k.id)
    }
}

impl fmt::Debug for SignatureVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("SignatureVerifier")
            .field("header", &c.header)
            .field("encoding", &c.encoding)
            .field("format", &c.format)
            .field("timestamp", &c.timestamp)
            .field(
                "secret_ids",
                &c.keys.iter().map(|k| &*k.id).collect::<Vec<_>>(),
            )
            .field("identity", &c.identity)
            .finish_non_exhaustive()
    }
}

/// Builds a [`SignatureVerifier`]; every mistake is reported by [`build`](Self::build).
pub struct SignatureVerifierBuilder {
    header: String,
    aliases: Vec<(String, String)>,
    algorithm: SignatureAlgorithm,
    encoding: Encoding,
    format: SignatureFormat,
    message: Vec<MessagePart>,
    timestamp_header: Option<String>,
    timestamp_field: Option<String>,
    tolerance_past: Duration,
    tolerance_future: Duration,
    secrets: SecretList,
    identity: String,
    scopes: Scopes,
    clock: Arc<dyn Clock>,
    public_base_url: Option<String>,
    trust_forwarded: bool,
    replay: ReplayChoice,
    replay_window: Option<Duration>,
    replay_policy: ReplayPolicy,
    release_replay_on: fn(http::StatusCode) -> bool,
    platform_body_limit: usize,
    identify_by_secret: bool,
    secret_text: SecretText,
    on_behalf_of: Option<crate::delegation::PlatformUser>,
    allowed_from: Option<crate::limit::AllowList>,
}

/// The secrets given to a builder, and the first one that could not be read or decoded
/// (reported by `build`, so the builder's methods can chain).
#[derive(Debug, Default, Clone)]
pub(crate) struct SecretList {
    entries: Vec<(String, Secret)>,
    error: Option<ConfigError>,
}

impl SecretList {
    pub(crate) fn add(&mut self, id: String, secret: Result<Secret, ConfigError>) {
        match secret {
            Ok(secret) => self.entries.push((id, secret)),
            // Name the secret a short key was given as, among several.
            Err(ConfigError::SecretTooShort { id: None, len, min }) => {
                self.error.get_or_insert(ConfigError::SecretTooShort {
                    id: Some(id),
                    len,
                    min,
                });
            }
            Err(error) => {
                self.error.get_or_insert(error);
            }
        }
    }

    /// Add the secret a dashboard shows as `text`, keyed `how` the platform keys it.
    pub(crate) fn add_text(&mut self, id: String, text: &str, how: SecretText) {
        self.add(id, how.decode(text));
    }

    /// As [`add_text`](Self::add_text), read from the environment variable `variable`
    /// (surrounding whitespace refused, naming it).
    pub(crate) fn add_env(&mut self, id: String, variable: &str, how: SecretText) {
        let secret = crate::secret::env_text(variable).and_then(|text| how.decode(&text));
        self.add(id, secret);
    }

    fn ids(&self) -> Vec<&str> {
        self.entries.iter().map(|(id, _)| id.as_str()).collect()
    }

    /// The secrets, or the first mistake made giving them.
    pub(crate) fn into_entries(self) -> Result<Vec<(String, Secret)>, ConfigError> {
        match self.error {
            Some(error) => Err(error),
            None => Ok(self.entries),
        }
    }
}

/// How the platform of a preset turns the secret its dashboard shows into key bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecretText {
    /// The text's UTF-8 bytes, as shown (GitHub, Stripe with its `whsec_`, Slack, …).
    Utf8,
    /// `whsec_` and standard base64: the decoded bytes (Standard Webhooks, Svix).
    StandardWebhooks,
}

impl SecretText {
    pub(crate) fn decode(self, text: &str) -> Result<Secret, ConfigError> {
        match self {
            Self::Utf8 => Secret::from_utf8(text),
            Self::StandardWebhooks => Secret::from_standard_webhooks(text),
        }
    }
}

impl Default for SignatureVerifierBuilder {
    fn default() -> Self {
        Self {
            header: DEFAULT_HEADER.to_owned(),
            aliases: Vec::new(),
            algorithm: SignatureAlgorithm::HmacSha256,
            encoding: Encoding::Hex,
            format: SignatureFormat::plain(),
            message: vec![MessagePart::Body],
            timestamp_header: None,
            timestamp_field: None,
            tolerance_past: DEFAULT_TOLERANCE,
            tolerance_future: DEFAULT_TOLERANCE,
            secrets: SecretList::default(),
            identity: "signature".to_owned(),
            scopes: Scopes::empty(),
            clock: Arc::new(SystemClock),
            public_base_url: None,
            trust_forwarded: false,
            replay: ReplayChoice::Default,
            replay_window: None,
            replay_policy: ReplayPolicy::FailClosed,
            release_replay_on: |status| status.is_server_error(),
            platform_body_limit: crate::guard::DEFAULT_BODY_LIMIT,
            identify_by_secret: false,
            secret_text: SecretText::Utf8,
            on_behalf_of: None,
            allowed_from: None,
        }
    }
}

impl fmt::Debug for SignatureVerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureVerifierBuilder")
            .field("header", &self.header)
            .field("secret_ids", &self.secrets.ids())
            .finish_non_exhaustive()
    }
}

impl SignatureVerifierBuilder {
    /// The header that carries the signature (default `x-signature`; matched case-insensitively).
    #[must_use]
    pub fn header(mut self, name: impl Into<String>) -> Self {
        self.header = name.into();
        self
    }

    /// Accept header `alias` wherever the scheme reads header `canonical` (the signature,
    /// timestamp or a signed header): Svix's `svix-id` for Standard Webhooks' `webhook-id`.
    /// A request carrying both names is refused as a repeated header.
    #[must_use]
    pub fn header_alias(mut self, canonical: impl Into<String>, alias: impl Into<String>) -> Self {
        self.aliases.push((canonical.into(), alias.into()));
        self
    }

    /// The MAC the scheme signs with (default [`SignatureAlgorithm::HmacSha256`]).
    #[must_use]
    pub fn algorithm(mut self, algorithm: SignatureAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// How the signature bytes are written (default [`Encoding::Hex`]).
    #[must_use]
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// How the header's value is laid out (default: one bare signature).
    #[must_use]
    pub fn format(mut self, format: SignatureFormat) -> Self {
        self.format = format;
        self
    }

    /// The parts of the signed message, in order, ending with [`MessagePart::Body`]
    /// (default: the body alone).
    #[must_use]
    pub fn message(mut self, parts: impl IntoIterator<Item = MessagePart>) -> Self {
        self.message = parts.into_iter().collect();
        self
    }

    /// The scheme has a timestamp in this header (Slack: `X-Slack-Request-Timestamp`).
    #[must_use]
    pub fn timestamp_header(mut self, name: impl Into<String>) -> Self {
        self.timestamp_header = Some(name.into());
        self
    }

    /// The scheme has a timestamp inside the signature list, under this key (Stripe: `t`).
    #[must_use]
    pub fn timestamp_field(mut self, key: impl Into<String>) -> Self {
        self.timestamp_field = Some(key.into());
        self
    }

    /// How far the timestamp may lie in the past and in the future (default 300 s each).
    #[must_use]
    pub fn tolerance(mut self, past: Duration, future: Duration) -> Self {
        self.tolerance_past = past;
        self.tolerance_future = future;
        self
    }

    /// Accept signatures made with `secret`, reported as key id `id` when it matches.
    /// Add several during rotation; any of them passes.
    #[must_use]
    pub fn secret(mut self, id: impl Into<String>, secret: Secret) -> Self {
        self.secrets.add(id.into(), Ok(secret));
        self
    }

    /// Accept signatures made with the secret exactly as the platform's dashboard shows it,
    /// keyed the way that platform keys it: a preset knows (Stripe keys its `whsec_…` text as
    /// UTF-8; Standard Webhooks base64-decodes what follows `whsec_`); a builder that is not
    /// a preset keys the UTF-8 text. A secret that does not decode is reported by `build`.
    ///
    /// ```
    /// use callguard::providers;
    ///
    /// let stripe = providers::stripe().signing_secret("2026-11", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").build()?;
    /// let standard = providers::standard_webhooks().signing_secret("2026-11", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").build()?;
    /// # Ok::<(), callguard::ConfigError>(())
    /// ```
    #[must_use]
    pub fn signing_secret(mut self, id: impl Into<String>, text: &str) -> Self {
        self.secrets.add_text(id.into(), text, self.secret_text);
        self
    }

    /// As [`signing_secret`](Self::signing_secret), with the text read from the environment
    /// variable `variable`. A value with leading or trailing whitespace (a file's newline) is
    /// refused by `build` with [`ConfigError::SecretWhitespace`] naming the variable.
    #[must_use]
    pub fn signing_secret_from_env(mut self, id: impl Into<String>, variable: &str) -> Self {
        self.secrets.add_env(id.into(), variable, self.secret_text);
        self
    }

    /// Read the user a verified request says it is made for from `source` (a field of the
    /// signed body, a header, a query parameter), and put it in
    /// [`Caller::on_behalf_of`](crate::Caller::on_behalf_of): asserted by the platform, not
    /// proven by the user. A request without it verifies as before, with no such user. To
    /// require the user's own proof as well, use a
    /// [`Delegation`](crate::delegation::Delegation).
    ///
    /// ```
    /// use callguard::{delegation::PlatformUser, providers};
    ///
    /// let sendbird = providers::sendbird()
    ///     .signing_secret("master", "sendbird-master-api-token-0123")
    ///     .on_behalf_of(PlatformUser::json_pointer("/user_id")?)
    ///     .build()?;
    /// # Ok::<(), callguard::ConfigError>(())
    /// ```
    #[must_use]
    pub fn on_behalf_of(mut self, source: crate::delegation::PlatformUser) -> Self {
        self.on_behalf_of = Some(source);
        self
    }

    /// How this builder's platform keys the text of its secrets (presets set it).
    pub(crate) fn secret_text(mut self, secret_text: SecretText) -> Self {
        self.secret_text = secret_text;
        self
    }

    /// The identity accepted callers get in [`Caller::id`](crate::Caller::id)
    /// (default `signature`; a provider name such as `github` is typical).
    #[must_use]
    pub fn identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = identity.into();
        self
    }

    /// The scopes accepted callers are granted (default none).
    #[must_use]
    pub fn scopes(mut self, scopes: Scopes) -> Self {
        self.scopes = scopes;
        self
    }

    /// The clock that timestamps are checked against (default [`SystemClock`]).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The public base URL senders call (for example `https://api.example.com`), needed by
    /// [`MessagePart::Url`]: the signed URL is this base followed by the request's path and
    /// query. It takes precedence over forwarded headers.
    #[must_use]
    pub fn public_base_url(mut self, url: impl Into<String>) -> Self {
        self.public_base_url = Some(url.into());
        self
    }

    /// Accept this scheme's signatures only from `addresses` (the platform's published
    /// ranges: GitHub's `hooks`, Stripe's webhook IPs), whatever else the guard accepts and
    /// from wherever: a request that presents this signature from another address is refused
    /// with 403 (`address_not_allowed`) before any MAC is computed. The client address is the
    /// request's [`ClientAddr`](crate::ClientAddr) (put a
    /// [`ClientAddrLayer`](crate::client::ClientAddrLayer) in front; without one such a request is a
    /// 500 naming the mistake). The list is shared with its clones, so
    /// [`AllowList::replace`](crate::limit::AllowList::replace) changes it at run time.
    ///
    /// An addition to the signature, never a replacement: addresses are shared by every
    /// customer of a platform. For every method of a route at once, put
    /// [`AllowList::layer`](crate::limit::AllowList::layer) on the route instead.
    ///
    /// ```
    /// use callguard::limit::AllowList;
    /// use callguard::{Authenticator, Secret, bearer::BearerTokens, providers};
    ///
    /// let github_hooks = AllowList::parse(["192.30.252.0/22", "2a0a:a440::/29"])?;
    /// let github = providers::github()
    ///     .secret("2026-11", Secret::from_utf8("a-webhook-secret")?)
    ///     .allowed_from(github_hooks)
    ///     .build()?;
    /// // Agents with a token call from anywhere; GitHub's signatures only from GitHub.
    /// let agents = BearerTokens::builder()
    ///     .token("agent", Secret::from_utf8("tok_agent_0123456789abcdef")?, callguard::Scopes::empty())
    ///     .build()?;
    /// let methods = Authenticator::any_of([github.into(), agents.into()])?;
    /// # let _ = methods;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn allowed_from(mut self, addresses: crate::limit::AllowList) -> Self {
        self.allowed_from = Some(addresses);
        self
    }

    /// Refuse a second delivery of the same signed request within the replay window, using
    /// `store` (for example one shared by several instances). The key is the signed id when
    /// the scheme signs one, otherwise the signature. See [`crate::replay`].
    #[must_use]
    pub fn replay_protection(mut self, store: impl ReplayStore) -> Self {
        self.replay = ReplayChoice::Store(Arc::new(store));
        self
    }

    /// Turn replay protection off, including the default one for timestamped schemes.
    #[must_use]
    pub fn without_replay_protection(mut self) -> Self {
        self.replay = ReplayChoice::Off;
        self
    }

    /// How long a delivery is remembered at least (default: five minutes for schemes without
    /// a timestamp). A timestamped scheme always remembers a delivery until its timestamp
    /// can no longer verify (`timestamp + tolerance into the past`, inclusive), however far
    /// in the future it was stamped; this setting can lengthen that, never shorten it.
    #[must_use]
    pub fn replay_window(mut self, window: Duration) -> Self {
        self.replay_window = Some(window);
        self
    }

    /// Which of the inner service's answers release a recorded delivery, so that the
    /// platform's retry of it is accepted (default: every 5xx). A handler that fails (its
    /// service answers `Err`) always releases it. A duplicate arriving while the first
    /// delivery is still being handled is refused either way.
    ///
    /// ```
    /// use callguard::providers;
    ///
    /// let github = providers::github()
    ///     .signing_secret("2026-11", "a-github-webhook-secret-0123")
    ///     .replay_protection(callguard::replay::MemoryReplayStore::default())
    ///     .release_replay_on(|status| status.is_server_error() || status.as_u16() == 429)
    ///     .build()?;
    /// # Ok::<(), callguard::ConfigError>(())
    /// ```
    pub fn release_replay_on(mut self, statuses: fn(http::StatusCode) -> bool) -> Self {
        self.release_replay_on = statuses;
        self
    }

    /// Name each caller by the id of the secret its signature verified with, rather than by
    /// the verifier's identity: for verifiers whose secrets belong to different agents, so a
    /// token minted with [`TokenRequest::actor`](crate::jwt::TokenRequest::actor) set to one
    /// secret's id is accepted in a [`Delegation`](crate::delegation::Delegation) only with
    /// that secret's signature. The [`Caller::key_id`](crate::Caller::key_id) is the
    /// secret's id either way.
    ///
    /// ```
    /// use callguard::signature::SignatureVerifier;
    ///
    /// let agents = SignatureVerifier::builder()
    ///     .identity("agents")
    ///     .signing_secret("agent-7", "agent-seven-secret-0123456789")
    ///     .signing_secret("agent-8", "agent-eight-secret-0123456789")
    ///     .identify_callers_by_secret()
    ///     .build()?;
    /// # Ok::<(), callguard::ConfigError>(())
    /// ```
    pub fn identify_callers_by_secret(mut self) -> Self {
        self.identify_by_secret = true;
        self
    }

    /// The largest body the platform delivers (default 1 MiB, [`crate::guard::DEFAULT_BODY_LIMIT`]):
    /// a [`GuardLayer`](crate::GuardLayer) built from this verifier refuses longer bodies
    /// with 413 unless told otherwise with
    /// [`GuardLayer::body_limit`](crate::GuardLayer::body_limit). Presets set their
    /// platform's documented maximum (GitHub: 25 MB), so a legitimate delivery is never
    /// refused.
    pub fn platform_body_limit(mut self, bytes: usize) -> Self {
        self.platform_body_limit = bytes;
        self
    }

    /// What to do when the replay store cannot answer (default: refuse with 503).
    #[must_use]
    pub fn replay_policy(mut self, policy: ReplayPolicy) -> Self {
        self.replay_policy = policy;
        self
    }

    /// Without a public base URL, rebuild the signed URL from `X-Forwarded-Proto` (default
    /// `https`) and `X-Forwarded-Host`, falling back to `Host`.
    ///
    /// # Security
    ///
    /// Anyone can set these headers. The signature still covers the URL, but a request
    /// signed for one of your URLs can then be replayed to another route of the same server
    /// by rewriting them. Prefer [`public_base_url`](Self::public_base_url); opt in only
    /// behind a proxy that overwrites the headers.
    #[must_use]
    pub fn trust_forwarded_headers(mut self) -> Self {
        self.trust_forwarded = true;
        self
    }

    /// Validate the configuration and key every secret.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first mistake: an invalid header name, no secret, a
    /// repeated secret id, an empty identity, a message that does not end with the body or
    /// signs a timestamp the scheme does not have, a list format that is ambiguous, or a
    /// URL part without a valid public base URL.
    pub fn build(self) -> Result<SignatureVerifier, ConfigError> {
        let secrets = self.secrets.into_entries()?;
        let header = parse_header_name(&self.header)?;
        let has_timestamp_field = self.timestamp_field.is_some();
        let timestamp = match (self.timestamp_header, self.timestamp_field) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::InvalidMessage {
                    reason: "a timestamp comes from a header or a field, not both",
                });
            }
            (Some(name), None) => Some(TimestampSource::Header(parse_header_name(&name)?)),
            (None, Some(key)) => Some(TimestampSource::Field(key.into())),
            (None, None) => None,
        };
        self.format
            .validate(has_timestamp_field)
            .map_err(|reason| ConfigError::InvalidFormat { reason })?;
        let form_message = self.message.contains(&MessagePart::UrlAndSortedFormParams);
        if form_message && self.message.len() != 1 {
            return Err(ConfigError::InvalidMessage {
                reason: "the URL-and-form-parameters message must be the only part",
            });
        }
        let prefix = if form_message {
            vec![PrefixPart::Url]
        } else {
            prepare_message(&self.message, timestamp.is_some())?
        };
        let url =
            crate::public_url::PublicUrl::configured(self.public_base_url, self.trust_forwarded)?;
        if url.is_none() && prefix.iter().any(|p| matches!(p, PrefixPart::Url)) {
            return Err(ConfigError::InvalidMessage {
                reason: "a URL part needs a public base URL (or trusted forwarded headers)",
            });
        }
        let aliases = HeaderAliases {
            pairs: self
                .aliases
                .iter()
                .map(|(canonical, alias)| {
                    Ok((parse_header_name(canonical)?, parse_header_name(alias)?))
                })
                .collect::<Result<_, ConfigError>>()?,
        };
        check_token_text(&self.identity, "identity")?;
        let keys = key_secrets(&self.identity, &secrets, self.algorithm)?;
        let identity: Arc<str> = self.identity.into();
        let callers = keys
            .iter()
            .map(|key| {
                let id = match self.identify_by_secret {
                    true => &key.id,
                    false => &identity,
                };
                crate::Caller::new(crate::AuthMethod::Signature, Arc::clone(id))
                    .with_key_id(Arc::clone(&key.id))
                    .with_scopes(self.scopes.clone())
            })
            .collect();
        // A timestamped scheme remembers each delivery from its own timestamp (see
        // `ReplaySettings::window_for`); the configured window can only lengthen that.
        let window = self.replay_window.unwrap_or(match timestamp {
            Some(_) => Duration::ZERO,
            None => DEFAULT_TOLERANCE,
        });
        let store: Option<Arc<dyn ReplayStore>> = match self.replay {
            ReplayChoice::Off => None,
            ReplayChoice::Store(store) => Some(store),
            ReplayChoice::Default if timestamp.is_some() => {
                let clock = Arc::clone(&self.clock);
                Some(Arc::new(MemoryReplayStore::with_clock(
                    DEFAULT_REPLAY_CAPACITY,
                    move || clock.now(),
                )))
            }
            ReplayChoice::Default => None,
        };
        let replay = store.map(|store| ReplaySettings {
            store,
            window,
            policy: self.replay_policy,
            release_on: self.release_replay_on,
        });
        Ok(SignatureVerifier {
            config: Arc::new(VerifierConfig {
                platform_body_limit: self.platform_body_limit,
                header,
                aliases,
                algorithm: self.algorithm,
                encoding: self.encoding,
                format: self.format,
                timestamp,
                tolerance_past: seconds(self.tolerance_past),
                tolerance_future: seconds(self.tolerance_future),
                prefix,
                form_message,
                keys,
                callers,
                identity,
                clock: self.clock,
                url,
                replay,
                on_behalf_of: self.on_behalf_of,
                allowed_from: self.allowed_from,
            }),
        })
    }
}

fn parse_header_name(name: &str) -> Result<HeaderName, ConfigError> {
    HeaderName::try_from(name).map_err(|_| ConfigError::InvalidHeaderName {
        name: name.to_owned(),
    })
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

fn prepare_message(
    parts: &[MessagePart],
    has_timestamp: bool,
) -> Result<Vec<PrefixPart>, ConfigError> {
    let (last, prefix) = parts.split_last().ok_or(ConfigError::InvalidMessage {
        reason: "the message is empty",
    })?;
    if *last != MessagePart::Body {
        return Err(ConfigError::InvalidMessage {
            reason: "the body must be the last part",
        });
    }
    prefix
        .iter()
        .map(|part| match part {
            MessagePart::Literal(text) => Ok(PrefixPart::Literal(text.as_bytes())),
            MessagePart::Header(name) => parse_header_name(name).map(PrefixPart::Header),
            MessagePart::Timestamp if has_timestamp => Ok(PrefixPart::Timestamp),
            MessagePart::Timestamp => Err(ConfigError::InvalidMessage {
                reason: "the message signs a timestamp but none is configured",
            }),
            MessagePart::Url => Ok(PrefixPart::Url),
            MessagePart::Body => Err(ConfigError::InvalidMessage {
                reason: "the body may appear only once",
            }),
            MessagePart::UrlAndSortedFormParams => Err(ConfigError::InvalidMessage {
                reason: "the URL-and-form-parameters message must be the only part",
            }),
        })
        .collect()
}

fn key_secrets(
    identity: &str,
    secrets: &[(String, Secret)],
    algorithm: SignatureAlgorithm,
) -> Result<Vec<KeyedSecret>, ConfigError> {
    if secrets.is_empty() {
        return Err(ConfigError::NoSecrets {
            verifier: identity.to_owned(),
        });
    }
    let mut keys: Vec<KeyedSecret> = Vec::with_capacity(secrets.len());
    for (id, secret) in secrets {
        check_token_text(id, "secret id")?;
        if keys.iter().any(|k| *k.id == **id) {
            return Err(ConfigError::DuplicateSecretId { id: id.clone() });
        }
        // One secret under two ids: the first id would be named for the other's callers.
        // Compared as HMAC keys (`k` and `k\0`, or a long key and its digest, are one key):
        // by each key's tag over one fixed message.
        let mac = KeyedMac::new(algorithm, secret.expose());
        let probe = mac.probe_tag();
        if keys
            .iter()
            .any(|earlier| bool::from(earlier.mac.probe_tag().ct_eq(&probe)))
        {
            return Err(ConfigError::DuplicateSecret);
        }
        keys.push(KeyedSecret {
            id: id.as_str().into(),
            mac,
        });
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::from_utf8("0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn one_secret_under_two_ids_is_refused() {
        let built = SignatureVerifier::builder()
            .secret("a", secret())
            .secret("b", secret())
            .build();
        assert_eq!(built.unwrap_err(), ConfigError::DuplicateSecret);
        // The same HMAC key in another spelling: trailing zero bytes.
        let padded = Secret::from_bytes(b"0123456789abcdef0123456789abcdef\0".to_vec()).unwrap();
        let built = SignatureVerifier::builder()
            .secret("a", secret())
            .secret("b", padded)
            .build();
        assert_eq!(built.unwrap_err(), ConfigError::DuplicateSecret);
        let other = Secret::from_utf8("another-secret-of-32-bytes-long!").unwrap();
        assert!(
            SignatureVerifier::builder()
                .secret("a", secret())
                .secret("b", other)
                .build()
                .is_ok()
        );
    }

    #[test]
    fn verifier_without_secrets_is_refused() {
        assert_eq!(
            SignatureVerifier::builder().build().unwrap_err(),
            ConfigError::NoSecrets {
                verifier: "signature".to_owned()
            }
        );
    }

    #[test]
    fn a_short_secret_is_named_with_the_deliberate_way_to_allow_it() {
        let error = SignatureVerifier::builder()
            .signing_secret("2026-11", "0123456789abcdef0123456789abcdef")
            .signing_secret("legacy", "short-key")
            .build()
            .unwrap_err();
        assert_eq!(
            error,
            ConfigError::SecretTooShort {
                id: Some("legacy".into()),
                len: 9,
                min: Secret::MIN_LEN
            }
        );
        let text = error.to_string();
        assert!(text.contains("`legacy`"), "{text}");
        assert!(text.contains("dangerous::secret_allowing_short"), "{text}");
    }

    #[test]
    fn duplicate_secret_ids_are_refused() {
        let err = SignatureVerifier::builder()
            .secret("a", secret())
            .secret("a", secret())
            .build()
            .unwrap_err();
        assert_eq!(err, ConfigError::DuplicateSecretId { id: "a".into() });
    }

    #[test]
    fn invalid_header_name_is_refused() {
        let err = SignatureVerifier::builder()
            .header("bad header")
            .secret("a", secret())
            .build()
            .unwrap_err();
        assert!(matches!(err, ConfigError::InvalidHeaderName { .. }));
    }

    #[test]
    fn body_must_be_last_and_only_once() {
        for message in [
            vec![],
            vec![MessagePart::Body, MessagePart::Literal(".")],
            vec![MessagePart::Body, MessagePart::Body],
        ] {
            let err = SignatureVerifier::builder()
                .message(message)
                .secret("a", secret())
                .build()
                .unwrap_err();
            assert!(matches!(err, ConfigError::InvalidMessage { .. }), "{err}");
        }
    }

    #[test]
    fn signed_timestamp_needs_a_timestamp_source() {
        let err = SignatureVerifier::builder()
            .message([MessagePart::Timestamp, MessagePart::Body])
            .secret("a", secret())
            .build()
            .unwrap_err();
        assert!(matches!(err, ConfigError::InvalidMessage { .. }));
    }

    #[test]
    fn url_part_needs_a_valid_base_url() {
        let base = || {
            SignatureVerifier::builder()
                .message([MessagePart::Url, MessagePart::Body])
                .secret("a", secret())
        };
        assert!(matches!(
            base().build().unwrap_err(),
            ConfigError::InvalidMessage { .. }
        ));
        for bad in [
            "example.com",
            "ftp://example.com",
            "https://example.com/?q=1",
            "/path",
        ] {
            assert!(
                matches!(
                    base().public_base_url(bad).build().unwrap_err(),
                    ConfigError::InvalidUrl { .. }
                ),
                "{bad}"
            );
        }
        assert!(
            base()
                .public_base_url("https://example.com/hooks/")
                .build()
                .is_ok()
        );
    }

    #[test]
    fn identity_with_quotes_is_refused() {
        let err = SignatureVerifier::builder()
            .identity("a\"b")
            .secret("a", secret())
            .build()
            .unwrap_err();
        assert_eq!(err, ConfigError::InvalidValue { field: "identity" });
    }

    #[test]
    fn debug_output_names_ids_but_no_key_material() {
        let verifier = SignatureVerifier::builder()
            .secret("2026-11", secret())
            .build()
            .unwrap();
        let printed = format!("{verifier:?}");
        assert!(printed.contains("2026-11"));
        assert!(!printed.contains("0123456789abcdef"));
    }
}
