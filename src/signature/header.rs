//! Parsing the attacker-controlled parts of a signed request: the signature header's value
//! and the timestamp. Everything here works on bytes, never panics, and does no allocation.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::error::AuthErrorKind;

/// The longest tag any supported algorithm produces (HMAC-SHA256).
pub(crate) const MAX_TAG_LEN: usize = 32;

/// The most signatures one header may carry (rotation sends two or three).
pub(crate) const MAX_CANDIDATES: usize = 8;

/// The most decimal digits a timestamp may have (`i64::MAX` has 19).
const MAX_TIMESTAMP_DIGITS: usize = 19;

/// How a signature's bytes are written in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Encoding {
    /// Hexadecimal, upper or lower case (GitHub, Slack, Stripe, Sendbird, SignalWire).
    #[default]
    Hex,
    /// Standard base64, padded or not (Shopify, Standard Webhooks).
    Base64,
    /// URL-safe base64, padded or not.
    Base64Url,
}

impl Encoding {
    /// Encode `bytes` the way this encoding writes them (lower-case hex; padded base64).
    pub fn encode(self, bytes: &[u8]) -> String {
        match self {
            Self::Hex => hex::encode(bytes),
            Self::Base64 => base64::engine::general_purpose::STANDARD.encode(bytes),
            Self::Base64Url => base64::engine::general_purpose::URL_SAFE.encode(bytes),
        }
    }

    /// Decode exactly one tag of `len` bytes from `text`.
    pub(crate) fn decode_tag(self, text: &[u8], len: usize) -> Option<[u8; MAX_TAG_LEN]> {
        let mut tag = [0u8; MAX_TAG_LEN];
        match self {
            // `faster-hex` decodes with SIMD where the CPU has it, several times faster
            // than a per-character match on a 64-digit tag; either case is accepted.
            Self::Hex => {
                if text.len() != 2 * len {
                    return None;
                }
                faster_hex::hex_decode(text, tag.get_mut(..len)?).ok()?;
            }
            Self::Base64 | Self::Base64Url => {
                // Room for more than the longest tag, so that an over-long value is seen as such.
                let mut buf = [0u8; MAX_TAG_LEN + 3];
                let engine = if self == Self::Base64 {
                    &BASE64
                } else {
                    &BASE64_URL
                };
                if engine.decode_slice(text, &mut buf).ok()? != len {
                    return None;
                }
                tag[..len].copy_from_slice(&buf[..len]);
            }
        }
        Some(tag)
    }
}

// Canonical trailing bits are required (the engines' default), so two different strings
// never decode to the same tag; padding is optional because senders differ.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const BASE64_URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// How signatures are laid out in the header's value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SignatureFormat {
    layout: Layout,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Layout {
    Single {
        prefix: Box<str>,
    },
    List {
        separator: u8,
        version: Box<str>,
        delimiter: u8,
    },
}

impl SignatureFormat {
    /// The whole value is one signature (the default).
    pub fn plain() -> Self {
        Self::prefixed("")
    }

    /// The value is `prefix` followed by one signature: `sha256=` (GitHub), `v0=` (Slack).
    pub fn prefixed(prefix: &str) -> Self {
        Self {
            layout: Layout::Single {
                prefix: prefix.into(),
            },
        }
    }

    /// The value is a list of entries split by `separator`, each `key` `delimiter` `value`.
    /// Entries whose key is `version` are signatures and any one of them may match; entries
    /// with other keys are ignored (Stripe: `t=…,v1=…,v0=…`; Standard Webhooks:
    /// `v1,… v1,…`). A timestamp may travel in the same list, see
    /// [`SignatureVerifierBuilder::timestamp_field`](crate::signature::SignatureVerifierBuilder::timestamp_field).
    ///
    /// Both characters must be ASCII; the builder refuses the format otherwise.
    pub fn list(separator: char, version: &str, delimiter: char) -> Self {
        Self {
            layout: Layout::List {
                // Non-ASCII is caught by `validate`; 0xFF never occurs in a header value
                // split this way, so a placeholder cannot match by accident.
                separator: u8::try_from(separator)
                    .ok()
                    .filter(u8::is_ascii)
                    .unwrap_or(0xFF),
                version: version.into(),
                delimiter: u8::try_from(delimiter)
                    .ok()
                    .filter(u8::is_ascii)
                    .unwrap_or(0xFF),
            },
        }
    }

    /// The header value carrying `signature`, and the timestamp field when there is one.
    pub(crate) fn render(&self, signature: &str, timestamp_field: Option<(&str, &str)>) -> String {
        match &self.layout {
            Layout::Single { prefix } => format!("{prefix}{signature}"),
            Layout::List {
                separator,
                version,
                delimiter,
            } => {
                let (separator, delimiter) = (char::from(*separator), char::from(*delimiter));
                let entry = format!("{version}{delimiter}{signature}");
                match timestamp_field {
                    Some((key, value)) => format!("{key}{delimiter}{value}{separator}{entry}"),
                    None => entry,
                }
            }
        }
    }

    pub(crate) fn validate(&self, has_timestamp_field: bool) -> Result<(), &'static str> {
        match &self.layout {
            Layout::Single { .. } if has_timestamp_field => {
                Err("a timestamp field needs a list format")
            }
            Layout::Single { .. } => Ok(()),
            Layout::List {
                separator,
                version,
                delimiter,
            } => {
                if !separator.is_ascii() || !delimiter.is_ascii() {
                    Err("separator and delimiter must be ASCII")
                } else if separator == delimiter {
                    Err("separator and delimiter must differ")
                } else if version.is_empty()
                    || version.bytes().any(|b| b == *separator || b == *delimiter)
                {
                    Err(
                        "the version tag must be non-empty and contain neither separator nor delimiter",
                    )
                } else {
                    Ok(())
                }
            }
        }
    }
}

impl Default for SignatureFormat {
    fn default() -> Self {
        Self::plain()
    }
}

/// The decoded signatures of one header, held inline, all of one tag length.
#[derive(Clone)]
pub(crate) struct Candidates {
    /// The first tag, held inline: most headers carry one.
    first: Option<[u8; MAX_TAG_LEN]>,
    /// The others (a header listing one signature per live secret during a rotation).
    more: Vec<[u8; MAX_TAG_LEN]>,
}

impl Candidates {
    fn new() -> Self {
        Self {
            first: None,
            more: Vec::new(),
        }
    }

    fn push(&mut self, tag: [u8; MAX_TAG_LEN]) -> Result<(), AuthErrorKind> {
        if self.first.is_none() {
            self.first = Some(tag);
            return Ok(());
        }
        if self.more.len() + 1 >= MAX_CANDIDATES {
            return Err(AuthErrorKind::MalformedCredentials);
        }
        self.more.push(tag);
        Ok(())
    }

    /// The decoded tags, each zero-padded to `MAX_TAG_LEN`.
    pub(crate) fn padded(&self) -> impl Iterator<Item = &[u8; MAX_TAG_LEN]> {
        self.first.iter().chain(&self.more)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.len()
    }
}

/// What a signature header holds: at least one decoded tag and, for list formats that carry
/// one, the raw timestamp field.
pub(crate) struct ParsedSignatures<'a> {
    pub(crate) candidates: Candidates,
    pub(crate) timestamp_field: Option<&'a [u8]>,
}

/// Parse a signature header value. Any malformation rejects the whole header.
pub(crate) fn parse_signatures<'a>(
    value: &'a [u8],
    format: &SignatureFormat,
    encoding: Encoding,
    tag_len: usize,
    timestamp_key: Option<&str>,
) -> Result<ParsedSignatures<'a>, AuthErrorKind> {
    let mut candidates = Candidates::new();
    let mut timestamp_field = None;
    match &format.layout {
        Layout::Single { prefix } => {
            let encoded = strip_prefix(value, prefix.as_bytes())?;
            candidates.push(
                encoding
                    .decode_tag(encoded, tag_len)
                    .ok_or(AuthErrorKind::MalformedCredentials)?,
            )?;
        }
        Layout::List {
            separator,
            version,
            delimiter,
        } => {
            for entry in value.split(|b| b == separator) {
                let at = entry
                    .iter()
                    .position(|b| b == delimiter)
                    .ok_or(AuthErrorKind::MalformedCredentials)?;
                let (key, rest) = entry.split_at(at);
                let field = &rest[1..];
                if key == version.as_bytes() {
                    candidates.push(
                        encoding
                            .decode_tag(field, tag_len)
                            .ok_or(AuthErrorKind::MalformedCredentials)?,
                    )?;
                } else if timestamp_key.is_some_and(|t| key == t.as_bytes())
                    && timestamp_field.replace(field).is_some()
                {
                    return Err(AuthErrorKind::MalformedTimestamp);
                }
            }
            if candidates.first.is_none() {
                return Err(AuthErrorKind::MalformedCredentials);
            }
        }
    }
    Ok(ParsedSignatures {
        candidates,
        timestamp_field,
    })
}

/// `value` without its scheme's `prefix` (`sha256=`; often none); a short prefix is compared
/// in line, not through a call to the C library's `memcmp`, which costs more than the
/// comparison on every request.
fn strip_prefix<'a>(value: &'a [u8], prefix: &[u8]) -> Result<&'a [u8], AuthErrorKind> {
    if value.len() < prefix.len() || !value.iter().zip(prefix).all(|(a, b)| a == b) {
        return Err(AuthErrorKind::MalformedCredentials);
    }
    Ok(&value[prefix.len()..])
}

/// Parse a timestamp: 1 to 19 ASCII digits, seconds since the Unix epoch.
pub(crate) fn parse_timestamp(raw: &[u8]) -> Result<i64, AuthErrorKind> {
    if raw.is_empty() || raw.len() > MAX_TIMESTAMP_DIGITS || !raw.iter().all(u8::is_ascii_digit) {
        return Err(AuthErrorKind::MalformedTimestamp);
    }
    raw.iter().try_fold(0i64, |acc, digit| {
        acc.checked_mul(10)
            .and_then(|acc| acc.checked_add(i64::from(digit - b'0')))
            .ok_or(AuthErrorKind::MalformedTimestamp)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX_TAG: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn single(value: &str, prefix: &str, encoding: Encoding) -> Result<usize, AuthErrorKind> {
        parse_signatures(
            value.as_bytes(),
            &SignatureFormat::prefixed(prefix),
            encoding,
            32,
            None,
        )
        .map(|p| p.candidates.len())
    }

    #[test]
    fn hex_signature_in_either_case_decodes_to_the_same_tag() {
        let lower = parse_signatures(
            HEX_TAG.as_bytes(),
            &SignatureFormat::plain(),
            Encoding::Hex,
            32,
            None,
        )
        .unwrap();
        let upper_text = HEX_TAG.to_uppercase();
        let upper = parse_signatures(
            upper_text.as_bytes(),
            &SignatureFormat::plain(),
            Encoding::Hex,
            32,
            None,
        )
        .unwrap();
        assert!(lower.candidates.padded().eq(upper.candidates.padded()));
    }

    #[test]
    fn odd_length_short_long_and_non_hex_signatures_are_malformed() {
        for bad in [
            &HEX_TAG[1..],
            &HEX_TAG[2..],
            &format!("{HEX_TAG}00"),
            &HEX_TAG.replace('7', "g"),
            "",
        ] {
            assert_eq!(
                single(bad, "", Encoding::Hex),
                Err(AuthErrorKind::MalformedCredentials),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_non_hex_byte_anywhere_is_malformed_and_hex_decodes_as_the_hex_crate_does() {
        // The bytes either side of each hex range, and bytes outside ASCII.
        let outsiders = [b'/', b':', b'@', b'G', b'`', b'g', b' ', 0x00, 0x80, 0xff];
        for at in 0..HEX_TAG.len() {
            for outsider in outsiders {
                let mut text = HEX_TAG.as_bytes().to_vec();
                text[at] = outsider;
                assert!(
                    Encoding::Hex.decode_tag(&text, 32).is_none(),
                    "{at}: {outsider}"
                );
            }
        }
        let mixed: String = HEX_TAG
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 3 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        let expected = hex::decode(HEX_TAG).unwrap();
        for text in [HEX_TAG, &mixed, &HEX_TAG.to_uppercase()] {
            let tag = Encoding::Hex.decode_tag(text.as_bytes(), 32).unwrap();
            assert_eq!(tag[..32], expected[..], "{text}");
        }
        let sha1 = &HEX_TAG[..40];
        let tag = Encoding::Hex.decode_tag(sha1.as_bytes(), 20).unwrap();
        assert_eq!(tag[..20], hex::decode(sha1).unwrap()[..]);
        assert_eq!(tag[20..], [0; 12]);
    }

    #[test]
    fn missing_prefix_is_malformed() {
        assert_eq!(
            single(HEX_TAG, "sha256=", Encoding::Hex),
            Err(AuthErrorKind::MalformedCredentials)
        );
        assert_eq!(
            single(&format!("sha256={HEX_TAG}"), "sha256=", Encoding::Hex),
            Ok(1)
        );
    }

    #[test]
    fn signature_with_trailing_whitespace_is_malformed() {
        assert_eq!(
            single(&format!("{HEX_TAG} "), "", Encoding::Hex),
            Err(AuthErrorKind::MalformedCredentials)
        );
    }

    #[test]
    fn base64_with_and_without_padding_is_accepted_but_wrong_length_is_not() {
        let padded = "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=";
        assert_eq!(single(padded, "", Encoding::Base64), Ok(1));
        assert_eq!(
            single(padded.trim_end_matches('='), "", Encoding::Base64),
            Ok(1)
        );
        assert_eq!(
            single(
                "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3",
                "",
                Encoding::Base64
            ),
            Err(AuthErrorKind::MalformedCredentials)
        );
        assert_eq!(
            single(
                "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7gA",
                "",
                Encoding::Base64
            ),
            Err(AuthErrorKind::MalformedCredentials)
        );
    }

    #[test]
    fn base64_with_non_canonical_trailing_bits_is_malformed() {
        // `h` instead of `g` changes only bits that padding discards.
        assert_eq!(
            single(
                "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7h=",
                "",
                Encoding::Base64
            ),
            Err(AuthErrorKind::MalformedCredentials)
        );
    }

    #[test]
    fn list_collects_every_matching_version_and_ignores_others() {
        let value = format!("t=12345,v1={HEX_TAG},v0={HEX_TAG},v1={HEX_TAG}");
        let parsed = parse_signatures(
            value.as_bytes(),
            &SignatureFormat::list(',', "v1", '='),
            Encoding::Hex,
            32,
            Some("t"),
        )
        .unwrap();
        assert_eq!(parsed.candidates.len(), 2);
        assert_eq!(parsed.timestamp_field, Some(&b"12345"[..]));
    }

    #[test]
    fn list_with_empty_entry_or_no_signature_is_malformed() {
        let format = SignatureFormat::list(' ', "v1", ',');
        let ok = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert!(parse_signatures(ok.as_bytes(), &format, Encoding::Base64, 32, None).is_ok());
        for bad in [
            format!("{ok} "),
            format!("{ok}  {ok}"),
            "v2,abc".to_owned(),
            String::new(),
        ] {
            assert!(
                parse_signatures(bad.as_bytes(), &format, Encoding::Base64, 32, None).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn sha1_length_tags_are_decoded_by_length() {
        let hex40 = "c3c08c1fefaf9ee198a100d5906765a6f394bf0f";
        let sha1 = parse_signatures(
            hex40.as_bytes(),
            &SignatureFormat::plain(),
            Encoding::Hex,
            20,
            None,
        )
        .unwrap();
        let tag = sha1.candidates.padded().next().unwrap();
        assert_eq!(tag[..20], hex::decode(hex40).unwrap()[..]);
        assert_eq!(tag[20..], [0; 12], "a 20-byte tag is zero-padded");
        assert!(
            parse_signatures(
                hex40.as_bytes(),
                &SignatureFormat::plain(),
                Encoding::Hex,
                32,
                None
            )
            .is_err()
        );
        assert!(
            parse_signatures(
                HEX_TAG.as_bytes(),
                &SignatureFormat::plain(),
                Encoding::Hex,
                20,
                None
            )
            .is_err()
        );
    }

    #[test]
    fn more_than_eight_signatures_are_malformed() {
        let entry = format!("v1={HEX_TAG}");
        let value = vec![entry; MAX_CANDIDATES + 1].join(",");
        let parsed = parse_signatures(
            value.as_bytes(),
            &SignatureFormat::list(',', "v1", '='),
            Encoding::Hex,
            32,
            None,
        );
        assert!(matches!(parsed, Err(AuthErrorKind::MalformedCredentials)));
    }

    #[test]
    fn repeated_timestamp_field_is_malformed() {
        let value = format!("t=1,t=2,v1={HEX_TAG}");
        let parsed = parse_signatures(
            value.as_bytes(),
            &SignatureFormat::list(',', "v1", '='),
            Encoding::Hex,
            32,
            Some("t"),
        );
        assert!(matches!(parsed, Err(AuthErrorKind::MalformedTimestamp)));
    }

    #[test]
    fn timestamps_must_be_plain_decimal_that_fits() {
        assert_eq!(parse_timestamp(b"1614265330"), Ok(1_614_265_330));
        assert_eq!(parse_timestamp(b"0009"), Ok(9));
        assert_eq!(parse_timestamp(b"9223372036854775807"), Ok(i64::MAX));
        for bad in [
            &b""[..],
            b"+5",
            b"-5",
            b" 5",
            b"5 ",
            b"1e9",
            b"9223372036854775808",
            b"99999999999999999999",
            b"\xff",
        ] {
            assert_eq!(
                parse_timestamp(bad),
                Err(AuthErrorKind::MalformedTimestamp),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn list_formats_with_ambiguous_characters_are_refused() {
        assert!(
            SignatureFormat::list(',', "v1", ',')
                .validate(false)
                .is_err()
        );
        assert!(SignatureFormat::list(',', "", '=').validate(false).is_err());
        assert!(
            SignatureFormat::list('é', "v1", '=')
                .validate(false)
                .is_err()
        );
        assert!(SignatureFormat::prefixed("v0=").validate(true).is_err());
        assert!(SignatureFormat::list(',', "v1", '=').validate(true).is_ok());
    }
}
