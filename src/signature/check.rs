//! One request's signature check: the head is inspected before the body is read, then the
//! body is fed through the keyed MAC states as it arrives, then the tags are compared.

use std::sync::Arc;

use http::request::Parts;
use http::{HeaderMap, HeaderName};

use super::config::{PrefixPart, SignatureVerifier, TimestampSource, VerifierConfig};
use super::header::{Candidates, MAX_TAG_LEN, ParsedSignatures, parse_signatures, parse_timestamp};
use super::mac::KeyedMac;
use crate::authenticator::Authenticator;
use crate::caller::Caller;
use crate::error::AuthErrorKind;
use crate::guard::{BodyCheck, BodyRead};
use crate::replay::{ReplayKey, ReplayPolicy, ReplayStore};

/// The MAC states of one request, one per configured secret. The common single-secret case
/// is held inline.
enum MacStates {
    One(KeyedMac),
    Many(Vec<KeyedMac>),
}

impl MacStates {
    /// A fresh state per configured secret, keyed when the verifier was built.
    #[inline(always)]
    fn keyed(keys: &[super::config::KeyedSecret]) -> Self {
        match keys {
            [only] => Self::One(only.mac.clone()),
            keys => Self::Many(keys.iter().map(|k| k.mac.clone()).collect()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Self::One(mac) => mac.update(data),
            Self::Many(macs) => macs.iter_mut().for_each(|mac| mac.update(data)),
        }
    }
}

/// A signed request waiting for its body: the head passed, and the MAC states are keyed and
/// fed the signed prefix. It is boxed once, inside a [`BodyRead`], when the head passes.
pub(crate) struct SignatureCheck {
    /// The verifier this check follows, by identity: the guard running the check holds the
    /// verifier (through its authenticator) and hands its configuration back to `finish`,
    /// so the check keeps no reference count of its own.
    verifier: VerifierId,
    macs: MacStates,
    candidates: Candidates,
    /// For the URL-and-form-parameters message: the public URL, kept until the body is in.
    form_url: Option<Vec<u8>>,
    /// The replay key from a signed id header, when the scheme signs one.
    replay_id: Option<ReplayKey>,
    /// The last second the signed timestamp still verifies (`timestamp + tolerance into the
    /// past`), when the scheme has one: a delivery is remembered at least until then.
    verifies_until: Option<i64>,
    /// The user the request names in its head, when the verifier reads one there.
    asserted_user: Option<String>,
}

/// A signature that verified, and the replay check still owed for it.
pub(crate) struct Verified {
    pub(crate) caller: Caller,
    pub(crate) replay: Option<PendingReplay>,
}

/// A replay check to run before the request is accepted.
pub(crate) struct PendingReplay {
    pub(crate) store: Arc<dyn ReplayStore>,
    pub(crate) key: ReplayKey,
    pub(crate) window: std::time::Duration,
    pub(crate) policy: ReplayPolicy,
    /// The inner service's answers after which the record is released.
    pub(crate) release_on: fn(http::StatusCode) -> bool,
}

/// What inspecting the head found.
pub(crate) enum HeadCheck {
    /// No signature header at all.
    Absent,
    /// A signature header that cannot pass.
    Rejected(AuthErrorKind),
    /// A plausible signature: read the body.
    Pending(Box<BodyRead>),
}

/// A verifier's identity: the address of its shared configuration, which lives as long as
/// any guard holding the verifier.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct VerifierId(usize);

impl SignatureVerifier {
    /// This verifier's identity, for a check to find it again through its guard.
    pub(crate) fn id(&self) -> VerifierId {
        VerifierId(Arc::as_ptr(&self.config).addr())
    }

    /// Whether the request carries this verifier's signature header (under any alias).
    pub(crate) fn is_presented(&self, headers: &HeaderMap) -> bool {
        self.config.aliases.contains(headers, &self.config.header)
    }

    /// The identity accepted callers get, which also names the verifier in logs.
    pub(crate) fn identity(&self) -> &str {
        &self.config.identity
    }

    /// Whether `other` restricts its clients to the same allow-list as this verifier (the
    /// same list, not one with equal ranges: a list can be replaced while it serves), or
    /// neither restricts them.
    pub(crate) fn same_allow_list(&self, other: &Self) -> bool {
        match (&self.config.allowed_from, &other.config.allowed_from) {
            (None, None) => true,
            (Some(a), Some(b)) => a.is_same_list(b),
            _ => false,
        }
    }

    /// Whether `other` reads its signature from the same header as this verifier.
    pub(crate) fn shares_header(&self, other: &Self) -> bool {
        self.config.header == other.config.header
    }

    /// Whether the request carries this verifier's signature header in a shape it parses:
    /// how a preference among schemes sharing a header picks the right one.
    pub(crate) fn recognizes(&self, headers: &HeaderMap) -> bool {
        matches!(self.signatures(headers), Ok(Some(_)))
    }

    /// The signature header's decoded candidates (and timestamp field): `None` when the
    /// header is absent, an error when it is repeated or malformed.
    fn signatures<'a>(
        &self,
        headers: &'a HeaderMap,
    ) -> Result<Option<ParsedSignatures<'a>>, AuthErrorKind> {
        let config = &self.config;
        let Some(value) = config
            .aliases
            .single_value(headers, &config.header)
            .map_err(|()| AuthErrorKind::DuplicateHeader)?
        else {
            return Ok(None);
        };
        let timestamp_key = match &config.timestamp {
            Some(TimestampSource::Field(key)) => Some(&**key),
            _ => None,
        };
        parse_signatures(
            value,
            &config.format,
            config.encoding,
            config.algorithm.tag_len(),
            timestamp_key,
        )
        .map(Some)
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

    fn prepare(&self, parts: &Parts) -> Result<Option<Box<BodyRead>>, AuthErrorKind> {
        let config = &self.config;
        let header = |name: &HeaderName| config.aliases.single_value(&parts.headers, name);
        let Some(parsed) = self.signatures(&parts.headers)? else {
            return Ok(None);
        };
        if let Some(allowed) = &config.allowed_from {
            match crate::ClientAddr::of(parts) {
                Some(client) if allowed.allows(client.0) => {}
                Some(_) => return Err(AuthErrorKind::AddressNotAllowed),
                None => {
                    tracing::error!(
                        verifier = &*config.identity,
                        "callguard: a signature restricted to an allow-list found no ClientAddr on the request; add a ClientAddrLayer in front of the guard"
                    );
                    return Err(AuthErrorKind::ClientAddrMissing);
                }
            }
        }
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
        let verifies_until = match raw_timestamp {
            Some(raw) => Some(check_tolerance(config, raw)?),
            None => None,
        };
        let asserted_user = config
            .on_behalf_of
            .as_ref()
            .and_then(|source| source.read_head(parts))
            .and_then(Result::ok);
        let form_url = if config.form_message {
            let source = config
                .url
                .as_ref()
                .expect("the builder refuses a URL part without a URL source");
            let mut url = Vec::new();
            source.feed(parts, true, |piece| url.extend_from_slice(piece))?;
            Some(url)
        } else {
            None
        };
        // Boxed first, the MAC states keyed straight into it and fed there: the states are
        // the largest part of the check, and each move of them is a copy.
        let mut read = BodyRead::new_with(|| {
            BodyCheck::Signature(SignatureCheck {
                verifier: self.id(),
                macs: MacStates::keyed(&config.keys),
                candidates: parsed.candidates,
                replay_id: None,
                form_url,
                verifies_until,
                asserted_user,
            })
        });
        let check = read
            .check
            .signature_mut()
            .expect("the read was made for a signature check");
        if check.form_url.is_none() {
            check.feed_prefix(config, parts, raw_timestamp)?;
        }
        Ok(Some(read))
    }
}

impl SignatureCheck {
    /// Feed the MAC states the signed prefix the scheme puts before the body (literals,
    /// the timestamp, signed headers, the URL), noting the replay id a signed header gives.
    fn feed_prefix(
        &mut self,
        config: &VerifierConfig,
        parts: &Parts,
        raw_timestamp: Option<&[u8]>,
    ) -> Result<(), AuthErrorKind> {
        let header = |name: &HeaderName| config.aliases.single_value(&parts.headers, name);
        for part in &config.prefix {
            match part {
                PrefixPart::Literal(bytes) => self.macs.update(bytes),
                PrefixPart::Timestamp => {
                    self.macs.update(
                        raw_timestamp
                            .expect("the builder refuses a signed timestamp without a source"),
                    );
                }
                PrefixPart::Header(name) => {
                    let value = header(name)
                        .ok()
                        .flatten()
                        .ok_or(AuthErrorKind::MissingSignedHeader)?;
                    self.macs.update(value);
                    if let Some(settings) = &config.replay {
                        self.replay_id
                            .get_or_insert_with(|| settings.key(&config.identity, b"id", value));
                    }
                }
                PrefixPart::Url => {
                    let source = config
                        .url
                        .as_ref()
                        .expect("the builder refuses a URL part without a URL source");
                    let mut url = Vec::new();
                    source.feed(parts, true, |piece| url.extend_from_slice(piece))?;
                    let url = std::str::from_utf8(&url)
                        .map_err(|_| AuthErrorKind::MissingSignedHeader)?;
                    // Platforms sign the URL with or without its port, inconsistently; their
                    // own validators try both, so one set of MAC states follows each.
                    let [without_port, with_port] = port_variants(url);
                    let mut other = self.macs.as_slice().to_vec();
                    self.macs.update(without_port.as_bytes());
                    other
                        .iter_mut()
                        .for_each(|mac| mac.update(with_port.as_bytes()));
                    let mut all =
                        std::mem::replace(&mut self.macs, MacStates::Many(Vec::new())).into_vec();
                    all.extend(other);
                    self.macs = MacStates::Many(all);
                }
            }
        }
        Ok(())
    }

    /// Feed the next piece of the body.
    pub(crate) fn update(&mut self, data: &[u8]) {
        if self.form_url.is_none() {
            self.macs.update(data);
        }
    }

    /// Finalise every MAC and compare each with every candidate in constant time. `body` is
    /// the whole body, which only the URL-and-form-parameters message reads again.
    ///
    /// Works in place: the check stays in its box and its MAC states are finalised where
    /// they lie; moving either out first is a copy, a measurable share of a small request.
    pub(crate) fn finish(
        &mut self,
        body: &[u8],
        verifiers: &Authenticator,
    ) -> Result<Verified, AuthErrorKind> {
        // The guard that made the check holds its verifier until it ends; were that ever
        // not so, the request is refused (and the bug logged), never accepted or a panic.
        let Some(verifier) = verifiers.signature_verifier(self.verifier) else {
            tracing::error!(
                "callguard: a signature check was finished by a guard that does not hold its verifier; refused"
            );
            return Err(AuthErrorKind::InvalidCredentials);
        };
        let config = &*verifier.config;
        let candidates = &self.candidates;
        let (form_url, replay_id) = (self.form_url.take(), self.replay_id.take());
        let (matched, first_tag) = match form_url {
            Some(url) => form_message::find_match(&url, body, &self.macs, candidates)?,
            None => streamed_match(&mut self.macs, candidates),
        };
        // With URL variants there is one MAC state per secret per variant, secrets innermost.
        let index = matched.ok_or(AuthErrorKind::InvalidCredentials)? % config.keys.len();
        let mut caller = config.callers[index].clone();
        let asserted = match &config.on_behalf_of {
            Some(source) if source.needs_body() => source.read_body(body).ok(),
            _ => self.asserted_user.take(),
        };
        if let Some(user) = asserted {
            caller = caller.with_on_behalf_of(user);
        }
        let replay = config.replay.as_ref().map(|settings| {
            let key = replay_id.unwrap_or_else(|| {
                settings.key(
                    &config.identity,
                    b"signature",
                    &first_tag[..config.algorithm.tag_len()],
                )
            });
            PendingReplay {
                store: Arc::clone(&settings.store),
                key,
                window: settings.window_for(self.verifies_until, config.clock.unix_seconds()),
                policy: settings.policy,
                release_on: settings.release_on,
            }
        });
        Ok(Verified { caller, replay })
    }
}

/// The index of the first secret whose finalised MAC equals a candidate, visiting all, so
/// the time taken does not say which one came close.
///
/// Also returns the tag of the first state (the first secret, the first URL variant): a
/// deterministic function of the signed message, whichever candidates the request carried.
fn streamed_match(
    macs: &mut MacStates,
    candidates: &Candidates,
) -> (Option<usize>, [u8; MAX_TAG_LEN]) {
    match macs {
        MacStates::One(mac) => {
            let (matched, tag) = mac.finish(candidates);
            (bool::from(matched).then_some(0), tag)
        }
        MacStates::Many(macs) => {
            let mut first = None;
            let mut first_tag = [0u8; MAX_TAG_LEN];
            for (index, mac) in macs.iter_mut().enumerate() {
                let (matched, tag) = mac.finish(candidates);
                if index == 0 {
                    first_tag = tag;
                }
                if bool::from(matched) && first.is_none() {
                    first = Some(index);
                }
            }
            (first, first_tag)
        }
    }
}

impl MacStates {
    fn as_slice(&self) -> &[KeyedMac] {
        match self {
            Self::One(mac) => std::slice::from_ref(mac),
            Self::Many(macs) => macs,
        }
    }

    fn into_vec(self) -> Vec<KeyedMac> {
        match self {
            Self::One(mac) => vec![mac],
            Self::Many(macs) => macs,
        }
    }
}

/// The URL without its port, and with its port (explicit, or the scheme's default).
fn port_variants(url: &str) -> [String; 2] {
    let Some((scheme, rest)) = url.split_once("://") else {
        return [url.to_owned(), url.to_owned()];
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            (host, Some(port))
        }
        _ => (authority, None),
    };
    let default_port = if scheme.eq_ignore_ascii_case("http") {
        "80"
    } else {
        "443"
    };
    [
        format!("{scheme}://{host}{tail}"),
        format!("{scheme}://{host}:{}{tail}", port.unwrap_or(default_port)),
    ]
}

/// The Twilio-compatible message, computed once the whole body is in.
pub(crate) mod form_message {
    use super::super::header::Encoding;
    use super::{Candidates, MAX_TAG_LEN, MacStates, port_variants};
    use crate::ct::eq_32;
    use crate::error::AuthErrorKind;
    use sha2::{Digest, Sha256};

    /// The index of the first secret that signed `url` (with or without its port) and the
    /// body's form parameters, or the URL alone when it carries a matching `bodySHA256`.
    pub(super) fn find_match(
        url: &[u8],
        body: &[u8],
        macs: &MacStates,
        candidates: &Candidates,
    ) -> Result<(Option<usize>, [u8; MAX_TAG_LEN]), AuthErrorKind> {
        let url = std::str::from_utf8(url).map_err(|_| AuthErrorKind::MalformedCredentials)?;
        let params = match query_value(url, "bodySHA256") {
            Some(expected) => {
                let wanted = Encoding::Hex
                    .decode_tag(expected.as_bytes(), 32)
                    .ok_or(AuthErrorKind::InvalidCredentials)?;
                let actual: [u8; 32] = Sha256::digest(body).into();
                if !bool::from(eq_32(&actual, &wanted)) {
                    return Err(AuthErrorKind::InvalidCredentials);
                }
                SortedParams::default()
            }
            None => SortedParams::parse(body)?,
        };
        let mut first = None;
        let mut first_tag = None;
        for variant in port_variants(url) {
            for (index, keyed) in macs.as_slice().iter().enumerate() {
                let mut mac = keyed.clone();
                mac.update(variant.as_bytes());
                params.feed(|piece| mac.update(piece));
                let (matched, tag) = mac.finish(candidates);
                first_tag.get_or_insert(tag);
                if bool::from(matched) && first.is_none() {
                    first = Some(index);
                }
            }
        }
        Ok((first, first_tag.unwrap_or([0; MAX_TAG_LEN])))
    }

    /// The raw value of query parameter `name`, if present.
    pub(crate) fn query_value<'a>(url: &'a str, name: &str) -> Option<&'a str> {
        let query = url.split_once('?')?.1;
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }

    /// The most form parameters the message is computed over: 1024. Twilio and SignalWire
    /// send a few dozen; a body with more is refused (413) before anything is sorted.
    pub(crate) const MAX_FORM_PARAMETERS: usize = 1024;

    /// Form parameters decoded as `application/x-www-form-urlencoded` (as
    /// `form_urlencoded::parse` does: `+` is a space, `%XX` a byte, invalid UTF-8 replaced),
    /// then sorted by name and value with duplicates removed, as twilio-python's
    /// `RequestValidator` does. Every decoded byte lives in one buffer no larger than the
    /// body, and each parameter is three offsets into it: no allocation per parameter.
    #[derive(Default)]
    pub(crate) struct SortedParams {
        decoded: Vec<u8>,
        /// Per parameter: where its name starts, where its value starts, where it ends.
        spans: Vec<[usize; 3]>,
    }

    impl SortedParams {
        /// Parse and sort `body`'s parameters.
        ///
        /// # Errors
        ///
        /// [`AuthErrorKind::TooManyFormParameters`] beyond [`MAX_FORM_PARAMETERS`], counted
        /// before any decoding.
        pub(crate) fn parse(body: &[u8]) -> Result<Self, AuthErrorKind> {
            let pairs = || body.split(|b| *b == b'&').filter(|pair| !pair.is_empty());
            if pairs().nth(MAX_FORM_PARAMETERS).is_some() {
                return Err(AuthErrorKind::TooManyFormParameters);
            }
            let mut params = Self {
                decoded: Vec::with_capacity(body.len()),
                spans: Vec::with_capacity(pairs().count()),
            };
            for pair in pairs() {
                let (name, value) = match memchr::memchr(b'=', pair) {
                    Some(at) => (&pair[..at], &pair[at + 1..]),
                    None => (pair, &b""[..]),
                };
                let start = params.decoded.len();
                params.decode(name);
                let middle = params.decoded.len();
                params.decode(value);
                params.spans.push([start, middle, params.decoded.len()]);
            }
            let decoded = &params.decoded;
            let pair =
                |[start, middle, end]: [usize; 3]| (&decoded[start..middle], &decoded[middle..end]);
            params
                .spans
                .sort_unstable_by(|a, b| pair(*a).cmp(&pair(*b)));
            params.spans.dedup_by(|a, b| pair(*a) == pair(*b));
            Ok(params)
        }

        /// Append `encoded`, form-decoded, to the buffer. Splitting at `+` and then
        /// percent-decoding each piece equals replacing `+` first, since a space is never a
        /// hex digit. Invalid UTF-8 is replaced as `form_urlencoded` does (rare: the only
        /// allocation left).
        fn decode(&mut self, encoded: &[u8]) {
            let start = self.decoded.len();
            for (index, piece) in encoded.split(|b| *b == b'+').enumerate() {
                if index > 0 {
                    self.decoded.push(b' ');
                }
                // One pass, byte by byte, with a table for hex digits: measured faster than
                // percent_encoding's iterator and than jumping between `%`s with memchr.
                let mut at = 0;
                while let Some(&byte) = piece.get(at) {
                    let escape = (byte == b'%')
                        .then(|| piece.get(at + 1..at + 3))
                        .flatten()
                        .and_then(|pair| {
                            let (high, low) =
                                (HEX[usize::from(pair[0])], HEX[usize::from(pair[1])]);
                            ((high | low) & NOT_HEX == 0).then_some(high << 4 | low)
                        });
                    match escape {
                        Some(decoded) => {
                            self.decoded.push(decoded);
                            at += 3;
                        }
                        // Any other byte, or a `%` that starts no escape, stands for itself.
                        None => {
                            self.decoded.push(byte);
                            at += 1;
                        }
                    }
                }
            }
            if std::str::from_utf8(&self.decoded[start..]).is_err() {
                let replaced = String::from_utf8_lossy(&self.decoded[start..]).into_owned();
                self.decoded.truncate(start);
                self.decoded.extend_from_slice(replaced.as_bytes());
            }
        }

        /// Feed the message, name then value for each parameter in order.
        pub(crate) fn feed(&self, mut feed: impl FnMut(&[u8])) {
            for &[start, middle, end] in &self.spans {
                feed(&self.decoded[start..middle]);
                feed(&self.decoded[middle..end]);
            }
        }
    }

    /// Marks a byte that is not a hex digit in [`HEX`]; no digit's value has these bits.
    const NOT_HEX: u8 = 0xf0;

    /// The value of each hex digit, by byte.
    const HEX: [u8; 256] = {
        let mut table = [NOT_HEX; 256];
        let mut digit = 0;
        while digit < 10 {
            table[b'0' as usize + digit] = digit as u8;
            digit += 1;
        }
        let mut letter = 0;
        while letter < 6 {
            table[b'a' as usize + letter] = 10 + letter as u8;
            table[b'A' as usize + letter] = 10 + letter as u8;
            letter += 1;
        }
        table
    };

    /// The parameters' message as one string (for signing and tests).
    #[cfg(test)]
    pub(crate) fn sorted_params(body: &[u8]) -> String {
        let mut text = Vec::new();
        SortedParams::parse(body)
            .expect("test bodies are small")
            .feed(|piece| text.extend_from_slice(piece));
        String::from_utf8(text).expect("decoded parameters are UTF-8")
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn port_variants_add_the_default_and_strip_explicit_ports() {
            assert_eq!(
                port_variants("https://a.com/p?x=1"),
                [
                    "https://a.com/p?x=1".to_owned(),
                    "https://a.com:443/p?x=1".to_owned()
                ]
            );
            assert_eq!(
                port_variants("http://a.com:8080/"),
                ["http://a.com/".to_owned(), "http://a.com:8080/".to_owned()]
            );
        }

        #[test]
        fn params_sort_by_name_then_value() {
            assert_eq!(sorted_params(b"b=2&a=z&a=y&c=%2B1+2"), "ayazb2c+1 2");
        }

        fn reference(body: &[u8]) -> String {
            let mut pairs: Vec<(String, String)> =
                form_urlencoded::parse(body).into_owned().collect();
            pairs.sort();
            pairs.dedup();
            pairs.into_iter().map(|(n, v)| n + &v).collect()
        }

        proptest::proptest! {
            #[test]
            fn params_match_form_urlencoded_on_any_bytes(
                body in proptest::collection::vec(
                    proptest::sample::select(b"ab=&+%0fF\xc3\xa9\xff".to_vec()),
                    0..64,
                )
            ) {
                proptest::prop_assert_eq!(sorted_params(&body), reference(&body));
            }
        }

        #[test]
        fn params_decode_as_form_urlencoded_does() {
            let cases: [&[u8]; 7] = [
                b"a=1&&b&=c&a=1",
                b"%zz=%4+1&%+=+%",
                b"x=%ff%fe&y=%c3%a9&%C3%A9=1",
                b"k=v=w&k",
                b"",
                b"&&&",
                b"n=%2",
            ];
            for body in cases {
                assert_eq!(sorted_params(body), reference(body), "{body:?}");
            }
        }

        #[test]
        fn too_many_params_are_refused_and_the_limit_itself_is_not() {
            let at_limit = "a=1&".repeat(MAX_FORM_PARAMETERS);
            assert!(SortedParams::parse(at_limit.as_bytes()).is_ok());
            let over = format!("{at_limit}b=2");
            assert_eq!(
                SortedParams::parse(over.as_bytes()).err(),
                Some(AuthErrorKind::TooManyFormParameters)
            );
            let empty_pieces = "&".repeat(10 * MAX_FORM_PARAMETERS);
            assert!(SortedParams::parse(empty_pieces.as_bytes()).is_ok());
        }

        #[test]
        fn query_value_is_found_by_exact_name() {
            assert_eq!(
                query_value("https://a/p?x=1&bodySHA256=ab", "bodySHA256"),
                Some("ab")
            );
            assert_eq!(
                query_value("https://a/p?xbodySHA256=ab", "bodySHA256"),
                None
            );
        }
    }
}

/// Check the timestamp against the tolerance, both ends inclusive, and answer the last
/// second it still verifies.
fn check_tolerance(config: &VerifierConfig, raw: &[u8]) -> Result<i64, AuthErrorKind> {
    let sent = parse_timestamp(raw)?;
    let now = i128::from(config.clock.unix_seconds());
    let too_old = now - i128::from(sent) > i128::from(config.tolerance_past);
    let too_new = i128::from(sent) - now > i128::from(config.tolerance_future);
    if too_old || too_new {
        return Err(AuthErrorKind::TimestampOutOfTolerance);
    }
    Ok(sent.saturating_add(config.tolerance_past))
}
