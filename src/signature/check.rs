//! One request's signature check: the head is inspected before the body is read, then the
//! body is fed through the keyed MAC states as it arrives, then the tags are compared.

use std::sync::Arc;

use http::request::Parts;
use http::{HeaderMap, HeaderName};

use super::config::{PrefixPart, SignatureVerifier, TimestampSource, UrlSource, VerifierConfig};
use super::header::{Candidates, parse_signatures, parse_timestamp};
use super::mac::KeyedMac;
use crate::caller::{AuthMethod, Caller};
use crate::error::AuthErrorKind;

/// The MAC states of one request, one per configured secret. The common single-secret case
/// is held inline.
enum MacStates {
    One(KeyedMac),
    Many(Vec<KeyedMac>),
}

impl MacStates {
    fn update(&mut self, data: &[u8]) {
        match self {
            Self::One(mac) => mac.update(data),
            Self::Many(macs) => macs.iter_mut().for_each(|mac| mac.update(data)),
        }
    }
}

/// A signature check in progress: the head passed, the body is still to come.
pub(crate) struct SignatureCheck {
    config: Arc<VerifierConfig>,
    macs: MacStates,
    candidates: Candidates,
}

/// What inspecting the head found.
pub(crate) enum HeadCheck {
    /// No signature header at all.
    Absent,
    /// A signature header that cannot pass.
    Rejected(AuthErrorKind),
    /// A plausible signature: read the body. Boxed once here, so the check's few hundred
    /// bytes are not copied again each time the request's future moves.
    Pending(Box<SignatureCheck>),
}

impl SignatureVerifier {
    /// Whether the request carries this verifier's signature header (under any alias).
    pub(crate) fn is_presented(&self, headers: &HeaderMap) -> bool {
        self.config.aliases.contains(headers, &self.config.header)
    }

    /// Check everything that can be checked before the body: the signature header's shape,
    /// the timestamp's tolerance, the signed headers' presence. Then clone the keyed MACs
    /// and feed them the signed prefix.
    pub(crate) fn check_head(&self, parts: &Parts) -> HeadCheck {
        match self.prepare(parts) {
            Ok(Some(check)) => HeadCheck::Pending(check),
            Ok(None) => HeadCheck::Absent,
            Err(kind) => HeadCheck::Rejected(kind),
        }
    }

    fn prepare(&self, parts: &Parts) -> Result<Option<Box<SignatureCheck>>, AuthErrorKind> {
        let config = &self.config;
        let header = |name: &HeaderName| config.aliases.single_value(&parts.headers, name);
        let Some(value) = header(&config.header).map_err(|()| AuthErrorKind::DuplicateHeader)?
        else {
            return Ok(None);
        };
        let timestamp_key = match &config.timestamp {
            Some(TimestampSource::Field(key)) => Some(&**key),
            _ => None,
        };
        let parsed = parse_signatures(
            value,
            &config.format,
            config.encoding,
            config.algorithm.tag_len(),
            timestamp_key,
        )?;
        let raw_timestamp = match &config.timestamp {
            None => None,
            Some(TimestampSource::Field(_)) => Some(
                parsed
                    .timestamp_field
                    .ok_or(AuthErrorKind::MissingTimestamp)?,
            ),
            Some(TimestampSource::Header(name)) => Some(
                header(name)
                    .map_err(|()| AuthErrorKind::MalformedTimestamp)?
                    .ok_or(AuthErrorKind::MissingTimestamp)?,
            ),
        };
        if let Some(raw) = raw_timestamp {
            check_tolerance(config, raw)?;
        }
        let mut macs = match config.keys.as_slice() {
            [only] => MacStates::One(only.mac.clone()),
            keys => MacStates::Many(keys.iter().map(|k| k.mac.clone()).collect()),
        };
        for part in &config.prefix {
            match part {
                PrefixPart::Literal(bytes) => macs.update(bytes),
                PrefixPart::Timestamp => {
                    macs.update(
                        raw_timestamp
                            .expect("the builder refuses a signed timestamp without a source"),
                    );
                }
                PrefixPart::Header(name) => {
                    let value = header(name)
                        .ok()
                        .flatten()
                        .ok_or(AuthErrorKind::MissingSignedHeader)?;
                    macs.update(value);
                }
                PrefixPart::Url => {
                    let source = config
                        .url
                        .as_ref()
                        .expect("the builder refuses a URL part without a URL source");
                    feed_public_url(source, parts, |piece| macs.update(piece))?;
                }
            }
        }
        Ok(Some(Box::new(SignatureCheck {
            config: Arc::clone(config),
            macs,
            candidates: parsed.candidates,
        })))
    }
}

impl SignatureCheck {
    /// Feed the next piece of the body.
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.macs.update(data);
    }

    /// Finalise every MAC and compare each with every candidate in constant time.
    pub(crate) fn finish(self: Box<Self>) -> Result<Caller, AuthErrorKind> {
        let Self {
            config,
            macs,
            candidates,
        } = *self;
        let matched = match macs {
            MacStates::One(mac) => bool::from(mac.matches_any(&candidates)).then_some(0),
            MacStates::Many(macs) => {
                // Visit every secret, so the time taken does not say which one came close.
                let mut first = None;
                for (index, mac) in macs.into_iter().enumerate() {
                    if bool::from(mac.matches_any(&candidates)) && first.is_none() {
                        first = Some(index);
                    }
                }
                first
            }
        };
        let index = matched.ok_or(AuthErrorKind::InvalidCredentials)?;
        Ok(
            Caller::new(AuthMethod::Signature, Arc::clone(&config.identity))
                .with_key_id(Arc::clone(&config.keys[index].id))
                .with_scopes(config.scopes.clone()),
        )
    }
}

/// Feed the URL the sender called, in pieces, without building a string.
fn feed_public_url(
    source: &UrlSource,
    parts: &Parts,
    mut feed: impl FnMut(&[u8]),
) -> Result<(), AuthErrorKind> {
    match source {
        UrlSource::Base(base) => feed(base.as_bytes()),
        UrlSource::Forwarded => {
            let first_token = |name: &str| {
                let mut values = parts.headers.get_all(name).iter();
                match (values.next(), values.next()) {
                    (Some(value), None) => value
                        .as_bytes()
                        .split(|b| *b == b',')
                        .next()
                        .map(<[u8]>::trim_ascii),
                    _ => None,
                }
            };
            let scheme = first_token("x-forwarded-proto").unwrap_or(b"https");
            let host = first_token("x-forwarded-host")
                .or_else(|| first_token("host"))
                .or_else(|| parts.uri.authority().map(|a| a.as_str().as_bytes()))
                .filter(|h| !h.is_empty())
                .ok_or(AuthErrorKind::MissingSignedHeader)?;
            feed(scheme);
            feed(b"://");
            feed(host);
        }
    }
    feed(
        parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .as_bytes(),
    );
    Ok(())
}

fn check_tolerance(config: &VerifierConfig, raw: &[u8]) -> Result<(), AuthErrorKind> {
    let sent = i128::from(parse_timestamp(raw)?);
    let now = i128::from(config.clock.unix_seconds());
    let too_old = now - sent > i128::from(config.tolerance_past);
    let too_new = sent - now > i128::from(config.tolerance_future);
    if too_old || too_new {
        return Err(AuthErrorKind::TimestampOutOfTolerance);
    }
    Ok(())
}
