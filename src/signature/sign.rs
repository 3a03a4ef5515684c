//! Signing a request the way a platform would: for tests, local replays and the CLI. The
//! message is built from the same configuration the verifier checks, so the two agree.

use super::check::form_message;
use super::config::{PrefixPart, SignatureVerifier, TimestampSource};
use crate::error::ConfigError;

/// What to sign: build it with [`SigningRequest::new`] and the setters, as fields may be
/// added (a method, other signed headers).
///
/// ```
/// use callguard::signature::SigningRequest;
///
/// let request = SigningRequest::new(b"{}").timestamp(1_700_000_000).id("msg_1");
/// assert_eq!((request.body, request.timestamp, request.id, request.url), (&b"{}"[..], 1_700_000_000, "msg_1", None));
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SigningRequest<'a> {
    /// The full URL the platform calls, for URL-covering schemes.
    pub url: Option<&'a str>,
    /// The raw body.
    pub body: &'a [u8],
    /// The timestamp to sign, in seconds since the Unix epoch, for schemes that sign one.
    pub timestamp: i64,
    /// The value of each signed header (a delivery id such as `webhook-id`).
    pub id: &'a str,
}

impl<'a> SigningRequest<'a> {
    /// A request with `body`, no URL, timestamp 0 and no signed id.
    pub fn new(body: &'a [u8]) -> Self {
        Self {
            url: None,
            body,
            timestamp: 0,
            id: "",
        }
    }

    /// The full URL the platform calls (URL-covering schemes need it).
    #[must_use]
    pub fn url(mut self, url: &'a str) -> Self {
        self.url = Some(url);
        self
    }

    /// The timestamp to sign, in seconds since the Unix epoch.
    #[must_use]
    pub fn timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// The value of each signed header (a delivery id such as `webhook-id`).
    #[must_use]
    pub fn id(mut self, id: &'a str) -> Self {
        self.id = id;
        self
    }
}

impl SignatureVerifier {
    /// The headers a platform would send with `request`, signed with the first configured
    /// secret: the signature header, and the timestamp and signed headers when the scheme
    /// has them. Header names are lower case.
    ///
    /// ```
    /// use callguard::{Secret, providers, signature::SigningRequest};
    ///
    /// let slack = providers::slack().secret("k", Secret::from_utf8("0123456789abcdef0123")?).build()?;
    /// let headers = slack.sign(&SigningRequest::new(b"a=b").timestamp(1_700_000_000))?;
    /// assert_eq!(headers[0].0, "x-slack-signature");
    /// assert_eq!(headers[1], ("x-slack-request-timestamp".to_owned(), "1700000000".to_owned()));
    /// # Ok::<(), callguard::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidMessage`] when the scheme signs a URL and none is given.
    pub fn sign(&self, request: &SigningRequest<'_>) -> Result<Vec<(String, String)>, ConfigError> {
        let config = &self.config;
        let needs_url = || ConfigError::InvalidMessage {
            reason: "this scheme signs the URL: give the full URL the platform calls",
        };
        let key = config
            .keys
            .first()
            .expect("the builder refuses a verifier without secrets");
        let mut mac = key.mac.clone();
        let timestamp = request.timestamp.to_string();
        let mut extra = Vec::new();
        if let Some(TimestampSource::Header(name)) = &config.timestamp {
            extra.push((name.as_str().to_owned(), timestamp.clone()));
        }
        if config.form_message {
            let url = request.url.ok_or_else(needs_url)?;
            mac.update(url.as_bytes());
            if form_message::query_value(url, "bodySHA256").is_none() {
                form_message::SortedParams::parse(request.body)
                    .map_err(|_| ConfigError::InvalidMessage {
                        reason: "the form body has more parameters than a verifier accepts",
                    })?
                    .feed(|piece| mac.update(piece));
            }
        } else {
            for part in &config.prefix {
                match part {
                    PrefixPart::Literal(bytes) => mac.update(bytes),
                    PrefixPart::Timestamp => mac.update(timestamp.as_bytes()),
                    PrefixPart::Header(name) => {
                        mac.update(request.id.as_bytes());
                        extra.push((name.as_str().to_owned(), request.id.to_owned()));
                    }
                    PrefixPart::Url => mac.update(request.url.ok_or_else(needs_url)?.as_bytes()),
                }
            }
            mac.update(request.body);
        }
        let signature = config.encoding.encode(&mac.finalize_bytes());
        let field = match &config.timestamp {
            Some(TimestampSource::Field(key)) => Some((&**key, timestamp.as_str())),
            _ => None,
        };
        let mut headers = vec![(
            config.header.as_str().to_owned(),
            config.format.render(&signature, field),
        )];
        headers.extend(extra);
        Ok(headers)
    }
}
