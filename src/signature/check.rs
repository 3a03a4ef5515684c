//! One request's signature check: the head is inspected before the body is read, then the
//! body is fed through the keyed MAC states as it arrives, then the tags are compared.

use std::sync::Arc;

use hmac::Mac;
use http::request::Parts;
use http::{HeaderMap, HeaderName};
use subtle::{Choice, ConstantTimeEq};

use super::config::{HmacSha256, PrefixPart, SignatureVerifier, TimestampSource, VerifierConfig};
use super::header::{Candidates, parse_signatures, parse_timestamp};
use crate::caller::{AuthMethod, Caller};
use crate::error::AuthErrorKind;

/// The MAC states of one request, one per configured secret. The common single-secret case
/// is held inline, so the check allocates nothing.
enum MacStates {
    One(HmacSha256),
    Many(Vec<HmacSha256>),
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
#[allow(
    clippy::large_enum_variant,
    reason = "kept inline: boxing would allocate on every signed request"
)]
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
    /// Check everything that can be checked before the body: the signature header's shape,
    /// the timestamp's tolerance, the signed headers' presence. Then key the MACs and feed
    /// them the signed prefix.
    pub(crate) fn check_head(&self, parts: &Parts) -> HeadCheck {
        let config = &self.config;
        let value = match single_value(&parts.headers, &config.header) {
            Ok(Some(value)) => value,
            Ok(None) => return HeadCheck::Absent,
            Err(()) => return HeadCheck::Rejected(AuthErrorKind::DuplicateHeader),
        };
        let timestamp_key = match &config.timestamp {
            Some(TimestampSource::Field(key)) => Some(&**key),
            _ => None,
        };
        let parsed = match parse_signatures(value, &config.format, config.encoding, timestamp_key) {
            Ok(parsed) => parsed,
            Err(kind) => return HeadCheck::Rejected(kind),
        };
        let raw_timestamp = match &config.timestamp {
            None => None,
            Some(TimestampSource::Field(_)) => match parsed.timestamp_field {
                Some(raw) => Some(raw),
                None => return HeadCheck::Rejected(AuthErrorKind::MissingTimestamp),
            },
            Some(TimestampSource::Header(name)) => match single_value(&parts.headers, name) {
                Ok(Some(raw)) => Some(raw),
                Ok(None) => return HeadCheck::Rejected(AuthErrorKind::MissingTimestamp),
                Err(()) => return HeadCheck::Rejected(AuthErrorKind::MalformedTimestamp),
            },
        };
        if let Some(Err(kind)) = raw_timestamp.map(|raw| check_tolerance(config, raw)) {
            return HeadCheck::Rejected(kind);
        }
        let mut macs = match config.keys.as_slice() {
            [only] => MacStates::One(only.mac.clone()),
            keys => MacStates::Many(keys.iter().map(|k| k.mac.clone()).collect()),
        };
        for part in &config.prefix {
            match part {
                PrefixPart::Literal(bytes) => macs.update(bytes),
                PrefixPart::Timestamp => macs.update(
                    raw_timestamp.expect("the builder refuses a signed timestamp without a source"),
                ),
                PrefixPart::Header(name) => match single_value(&parts.headers, name) {
                    Ok(Some(value)) => macs.update(value),
                    _ => return HeadCheck::Rejected(AuthErrorKind::MissingSignedHeader),
                },
                PrefixPart::Url => {
                    let base = config
                        .public_base_url
                        .as_deref()
                        .expect("the builder refuses a URL part without a base URL");
                    macs.update(base.as_bytes());
                    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
                    macs.update(path_and_query.as_bytes());
                }
            }
        }
        HeadCheck::Pending(Box::new(SignatureCheck {
            config: Arc::clone(config),
            macs,
            candidates: parsed.candidates,
        }))
    }
}

impl SignatureCheck {
    /// Feed the next piece of the body.
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.macs.update(data);
    }

    /// Finalise every MAC and compare each with every candidate in constant time.
    pub(crate) fn finish(self: Box<Self>) -> Result<Caller, AuthErrorKind> {
        let matched = match self.macs {
            MacStates::One(mac) => bool::from(matches_any(mac, &self.candidates)).then_some(0),
            MacStates::Many(macs) => {
                // Visit every secret, so the time taken does not say which one came close.
                let mut first = None;
                for (index, mac) in macs.into_iter().enumerate() {
                    if bool::from(matches_any(mac, &self.candidates)) && first.is_none() {
                        first = Some(index);
                    }
                }
                first
            }
        };
        let index = matched.ok_or(AuthErrorKind::InvalidCredentials)?;
        let config = &self.config;
        Ok(
            Caller::new(AuthMethod::Signature, Arc::clone(&config.identity))
                .with_key_id(Arc::clone(&config.keys[index].id))
                .with_scopes(config.scopes.clone()),
        )
    }
}

fn matches_any(mac: HmacSha256, candidates: &Candidates) -> Choice {
    let tag = mac.finalize();
    candidates
        .as_slice()
        .iter()
        .fold(Choice::from(0), |acc, candidate| {
            acc | tag.as_bytes().as_slice().ct_eq(candidate)
        })
}

/// The value of a header that must appear at most once; `Err` when it is repeated.
fn single_value<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a [u8]>, ()> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => Ok(Some(value.as_bytes())),
        (Some(_), Some(_)) => Err(()),
    }
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
