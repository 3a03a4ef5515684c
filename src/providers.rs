//! Presets for the platforms that call webhooks: each a configuration of the one
//! [`SignatureVerifier`], not a separate code path. Add secrets (and a clock, scopes or an
//! identity if you like) and build.
//!
//! ```
//! use callguard::{Secret, providers};
//!
//! let github = providers::github()
//!     .secret("2026-11", Secret::from_env("GITHUB_WEBHOOK_SECRET").or_else(|_| Secret::from_utf8("a-demo-secret-for-the-docs"))?)
//!     .build()?;
//! let layer = github.layer();
//! # Ok::<(), callguard::ConfigError>(())
//! ```
//!
//! Give each preset its secret as the platform's dashboard shows it, with
//! [`signing_secret`](SignatureVerifierBuilder::signing_secret) (or
//! [`signing_secret_from_env`](SignatureVerifierBuilder::signing_secret_from_env)), and the
//! preset keys it the platform's way: most use the text's UTF-8 bytes, Stripe including its
//! `whsec_` prefix; Standard Webhooks and Svix base64-decode the part after `whsec_`. The two
//! `whsec_` forms look alike and key differently, so let the preset decide.
//!
//! ```
//! use callguard::providers;
//!
//! let dashboard = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
//! let stripe = providers::stripe().signing_secret("2026-11", dashboard).build()?;
//! let standard = providers::standard_webhooks().signing_secret("2026-11", dashboard).build()?;
//! # Ok::<(), callguard::ConfigError>(())
//! ```
//!
//! # Body limits
//!
//! A guard built from a preset accepts bodies up to the largest its platform documents, so
//! a legitimate delivery is never refused with 413 (which the platform records as a failed
//! delivery): GitHub caps payloads at 25 MB, and the guard accepts 25 MiB. The other
//! platforms document no maximum, so their guards keep the 1 MiB default
//! ([`crate::guard::DEFAULT_BODY_LIMIT`]); raise it with
//! [`GuardLayer::body_limit`](crate::GuardLayer::body_limit) if your deliveries are larger.
//! In axum, raise `DefaultBodyLimit` to match on the same route, or the `Bytes` extractor
//! refuses what the guard verified.
//!
//! ```
//! use callguard::{GuardLayer, providers};
//!
//! let github = providers::github().signing_secret("k1", "a-github-webhook-secret").build()?;
//! assert_eq!(GuardLayer::new(github).max_body(), 25 * 1024 * 1024);
//! let stripe = providers::stripe().signing_secret("k1", "whsec_a-stripe-secret-0123").build()?;
//! assert_eq!(GuardLayer::new(stripe).max_body(), callguard::guard::DEFAULT_BODY_LIMIT);
//! # Ok::<(), callguard::ConfigError>(())
//! ```
//!
//! URL-covering schemes (SignalWire, Twilio) sign the URL the platform called, which a
//! server behind a proxy does not see. Configure it with `public_base_url`; only if that is
//! impossible, opt in to forwarded headers with `trust_forwarded_headers` (they are
//! spoofable). The base URL takes precedence.

use std::time::Duration;

use crate::authenticator::Authenticator;
use crate::caller::Scopes;
use crate::error::ConfigError;
use crate::secret::Secret;
use crate::signature::{
    Encoding, MessagePart, SignatureAlgorithm, SignatureFormat, SignatureVerifier,
    SignatureVerifierBuilder,
};
use crate::signature::{SecretList, SecretText};

/// GitHub's documented payload cap, 25 MB, read generously as 25 MiB.
const GITHUB_MAX_PAYLOAD: usize = 25 * 1024 * 1024;

/// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`, keyed with the
/// webhook secret's UTF-8 bytes. No timestamp. Bodies up to 25 MiB (GitHub caps payloads at
/// 25 MB). See GitHub Docs, "Validating webhook deliveries" and "Webhook events and
/// payloads".
pub fn github() -> SignatureVerifierBuilder {
    SignatureVerifier::builder()
        .identity("github")
        .platform_body_limit(GITHUB_MAX_PAYLOAD)
        .header("x-hub-signature-256")
        .format(SignatureFormat::prefixed("sha256="))
}

/// Stripe: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…][,v0=…]`, each `v1` an
/// HMAC-SHA256 of `<t>.<raw body>` keyed with the whole `whsec_…` secret as UTF-8. Any `v1`
/// may match (Stripe sends several while a secret rolls); `v0` is ignored. Timestamps older
/// than 300 s are refused; like Stripe's SDKs, future ones are not. See Stripe Docs, "Verify
/// webhook signatures manually".
pub fn stripe() -> SignatureVerifierBuilder {
    SignatureVerifier::builder()
        .identity("stripe")
        .header("stripe-signature")
        .format(SignatureFormat::list(',', "v1", '='))
        .timestamp_field("t")
        .tolerance(crate::signature::DEFAULT_TOLERANCE, Duration::MAX)
        .message([
            MessagePart::Timestamp,
            MessagePart::Literal("."),
            MessagePart::Body,
        ])
}

/// Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<raw body>">` with
/// `X-Slack-Request-Timestamp`, keyed with the signing secret's UTF-8 bytes; ±300 s. See
/// Slack's "Verifying requests from Slack".
pub fn slack() -> SignatureVerifierBuilder {
    SignatureVerifier::builder()
        .identity("slack")
        .header("x-slack-signature")
        .format(SignatureFormat::prefixed("v0="))
        .timestamp_header("x-slack-request-timestamp")
        .message([
            MessagePart::Literal("v0:"),
            MessagePart::Timestamp,
            MessagePart::Literal(":"),
            MessagePart::Body,
        ])
}

/// Shopify: `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the raw body>`, keyed with the
/// app's client secret as UTF-8. See Shopify's "Verify webhooks" documentation.
pub fn shopify() -> SignatureVerifierBuilder {
    SignatureVerifier::builder()
        .identity("shopify")
        .header("x-shopify-hmac-sha256")
        .encoding(Encoding::Base64)
}

/// Standard Webhooks (and Svix, whose `svix-` headers are accepted as aliases):
/// `webhook-signature: v1,<base64> [v1,<base64>…]`, each an HMAC-SHA256 of
/// `<webhook-id>.<webhook-timestamp>.<raw body>` keyed with the base64 after `whsec_`;
/// ±300 s. See the Standard Webhooks specification, "Verifying webhook authenticity".
pub fn standard_webhooks() -> SignatureVerifierBuilder {
    SignatureVerifier::builder()
        .identity("standard-webhooks")
        .secret_text(SecretText::StandardWebhooks)
        .header("webhook-signature")
        .header_alias("webhook-signature", "svix-signature")
        .header_alias("webhook-timestamp", "svix-timestamp")
        .header_alias("webhook-id", "svix-id")
        .encoding(Encoding::Base64)
        .format(SignatureFormat::list(' ', "v1", ','))
        .timestamp_header("webhook-timestamp")
        .message([
            MessagePart::Header("webhook-id"),
            MessagePart::Literal("."),
            MessagePart::Timestamp,
            MessagePart::Literal("."),
            MessagePart::Body,
        ])
}

/// Sendbird: `x-sendbird-signature: <hex HMAC-SHA256 of the raw body>`, keyed with the
/// application's master API token. The raw bytes matter: Sendbird escapes slashes
/// (`https:\/\/…`), so a re-serialised body does not verify. See Sendbird's "Webhooks"
/// documentation.
pub fn sendbird() -> SignatureVerifierBuilder {
    SignatureVerifier::builder()
        .identity("sendbird")
        .header("x-sendbird-signature")
}

/// SignalWire, which signs the public URL it called. Built as an [`Authenticator`] that
/// prefers, in order:
///
/// 1. `X-SignalWire-Sha256-Signature`: hex HMAC-SHA256 of `<url><raw body>`;
/// 2. `X-SignalWire-Signature` (alias `X-Twilio-Signature`) in hex: HMAC-SHA1 of
///    `<url><raw body>`;
/// 3. the same header in base64: the Twilio-compatible scheme, HMAC-SHA1 of the URL followed
///    by the form parameters sorted by name (or of the URL alone when it carries
///    `bodySHA256`, which must match the body), with and without the URL's port.
///
/// Keyed with the project's signing key as UTF-8. See SignalWire's "Validating requests"
/// guide and Twilio's "Webhooks security" documentation.
pub fn signalwire() -> SignalWireBuilder {
    SignalWireBuilder::default()
}

/// SignalWire's SHA-256 scheme alone: `X-SignalWire-Sha256-Signature: <hex HMAC-SHA256 of
/// "<url><raw body>">`. Needs a URL source. [`signalwire`] combines it with the others.
pub fn signalwire_sha256() -> SignatureVerifierBuilder {
    SignatureVerifier::builder()
        .identity("signalwire")
        .header("x-signalwire-sha256-signature")
        .message([MessagePart::Url, MessagePart::Body])
}

/// SignalWire's SHA-1 scheme alone: `X-SignalWire-Signature` (alias `X-Twilio-Signature`):
/// hex HMAC-SHA1 of `<url><raw body>`. Needs a URL source.
pub fn signalwire_sha1() -> SignatureVerifierBuilder {
    SignatureVerifier::builder()
        .identity("signalwire")
        .header("x-signalwire-signature")
        .header_alias("x-signalwire-signature", "x-twilio-signature")
        .algorithm(SignatureAlgorithm::HmacSha1)
        .message([MessagePart::Url, MessagePart::Body])
}

/// Twilio's scheme (and SignalWire's compatibility scheme): `X-Twilio-Signature: <base64
/// HMAC-SHA1>` of the URL followed by the form parameters sorted by name then value, or of
/// the URL alone when it carries `bodySHA256` (which must match the body); the URL with and
/// without its port. Keyed with the auth token as UTF-8. Needs a URL source. See Twilio's
/// "Webhooks security" documentation.
pub fn twilio_compatible() -> SignatureVerifierBuilder {
    SignatureVerifier::builder()
        .identity("twilio")
        .header("x-twilio-signature")
        .algorithm(SignatureAlgorithm::HmacSha1)
        .encoding(Encoding::Base64)
        .message([MessagePart::UrlAndSortedFormParams])
}

/// Builds the SignalWire [`Authenticator`].
#[derive(Debug, Default)]
pub struct SignalWireBuilder {
    secrets: SecretList,
    scopes: Scopes,
    public_base_url: Option<String>,
    trust_forwarded: bool,
    allowed_from: Option<crate::limit::AllowList>,
}

impl SignalWireBuilder {
    /// Accept signatures made with the signing key as SignalWire's dashboard shows it (keyed
    /// as UTF-8), reported as key id `id`. A key that is too short is reported by `build`.
    #[must_use]
    pub fn signing_secret(mut self, id: impl Into<String>, text: &str) -> Self {
        self.secrets.add_text(id.into(), text, SecretText::Utf8);
        self
    }

    /// As [`signing_secret`](Self::signing_secret), read from the environment variable
    /// `variable` (surrounding whitespace is refused, naming it).
    #[must_use]
    pub fn signing_secret_from_env(mut self, id: impl Into<String>, variable: &str) -> Self {
        self.secrets.add_env(id.into(), variable, SecretText::Utf8);
        self
    }

    /// Accept signatures made with this signing key, reported as key id `id`.
    #[must_use]
    pub fn secret(mut self, id: impl Into<String>, secret: Secret) -> Self {
        self.secrets.add(id.into(), Ok(secret));
        self
    }

    /// The scopes accepted callers are granted.
    #[must_use]
    pub fn scopes(mut self, scopes: Scopes) -> Self {
        self.scopes = scopes;
        self
    }

    /// The public base URL SignalWire calls; see the module docs.
    #[must_use]
    pub fn public_base_url(mut self, url: impl Into<String>) -> Self {
        self.public_base_url = Some(url.into());
        self
    }

    /// Rebuild the URL from forwarded headers when no base URL is set; see
    /// [`SignatureVerifierBuilder::trust_forwarded_headers`].
    #[must_use]
    pub fn trust_forwarded_headers(mut self) -> Self {
        self.trust_forwarded = true;
        self
    }

    /// Accept signatures only from client addresses `addresses` holds, under every one of
    /// the three schemes (so no header of another scheme gets around it); see
    /// [`SignatureVerifierBuilder::allowed_from`].
    ///
    /// ```
    /// use callguard::limit::AllowList;
    /// use callguard::providers::signalwire;
    /// let platform = AllowList::parse(["203.0.113.0/24"])?;
    /// let authenticator = signalwire()
    ///     .signing_secret("key", "PSK_0123456789abcdef0123456789")
    ///     .public_base_url("https://example.com")
    ///     .allowed_from(platform)
    ///     .build()?;
    /// # let _ = authenticator;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn allowed_from(mut self, addresses: crate::limit::AllowList) -> Self {
        self.allowed_from = Some(addresses);
        self
    }

    /// Validate and build the three schemes, preferring them in the documented order.
    ///
    /// # Errors
    ///
    /// As [`SignatureVerifierBuilder::build`], including a missing URL source.
    pub fn build(self) -> Result<Authenticator, ConfigError> {
        let secrets = self.secrets.into_entries()?;
        let configure = |builder: SignatureVerifierBuilder| {
            let mut builder = builder.identity("signalwire").scopes(self.scopes.clone());
            for (id, secret) in &secrets {
                builder = builder.secret(id.clone(), secret.clone());
            }
            if let Some(url) = &self.public_base_url {
                builder = builder.public_base_url(url.clone());
            }
            if self.trust_forwarded {
                builder = builder.trust_forwarded_headers();
            }
            if let Some(addresses) = &self.allowed_from {
                builder = builder.allowed_from(addresses.clone());
            }
            builder.build()
        };
        let url_and_body = [MessagePart::Url, MessagePart::Body];
        let sha256 = configure(
            SignatureVerifier::builder()
                .header("x-signalwire-sha256-signature")
                .message(url_and_body.clone()),
        )?;
        let sha1 = configure(
            SignatureVerifier::builder()
                .header("x-signalwire-signature")
                .header_alias("x-signalwire-signature", "x-twilio-signature")
                .algorithm(SignatureAlgorithm::HmacSha1)
                .message(url_and_body),
        )?;
        let compatible = configure(
            SignatureVerifier::builder()
                .header("x-signalwire-signature")
                .header_alias("x-signalwire-signature", "x-twilio-signature")
                .algorithm(SignatureAlgorithm::HmacSha1)
                .encoding(Encoding::Base64)
                .message([MessagePart::UrlAndSortedFormParams]),
        )?;
        Authenticator::first_of([sha256.into(), sha1.into(), compatible.into()])
    }
}
