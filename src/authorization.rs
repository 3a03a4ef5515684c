//! Parsing the `Authorization` header (RFC 9110 §11.6.2): one header, a scheme matched
//! case-insensitively, one or more spaces, then the credentials, bounded in length and
//! checked against the scheme's character set before anything is decoded or hashed.

use http::HeaderMap;
use http::header::AUTHORIZATION;

/// The longest credential accepted; longer ones are refused before any work is done on them.
pub(crate) const MAX_CREDENTIAL_LEN: usize = 8 * 1024;

/// What the request's `Authorization` header holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Authorization<'a> {
    /// No `Authorization` header.
    Absent,
    /// A `Bearer` token: RFC 6750 `b64token` characters, non-empty.
    Bearer(&'a [u8]),
    /// `Basic` credentials, still base64-encoded.
    Basic(&'a [u8]),
    /// A `DPoP` access token (RFC 9449 §7.1): a token whose proof of possession travels in
    /// the `DPoP` header. The same `token68` characters as a bearer token.
    DPoP(&'a [u8]),
    /// A scheme this crate does not implement.
    OtherScheme,
    /// More than one `Authorization` header.
    Duplicate,
    /// A known scheme whose credentials are empty, too long or hold forbidden characters.
    Malformed,
}

impl Authorization<'_> {
    /// Whether the request presents some credential in `Authorization`.
    pub(crate) fn is_present(&self) -> bool {
        *self != Self::Absent
    }

    /// Whether a bearer token has the shape of a JWT (three dot-separated segments).
    pub(crate) fn is_jwt_shaped(&self) -> bool {
        // `memchr` finds the dots many bytes at a time; a JWT is hundreds of bytes long.
        matches!(self, Self::Bearer(token) | Self::DPoP(token) if memchr::memchr_iter(b'.', token).take(3).count() == 2)
    }
}

/// Parse the request's `Authorization` header.
pub(crate) fn parse(headers: &HeaderMap) -> Authorization<'_> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    match (values.next(), values.next()) {
        (None, _) => Authorization::Absent,
        (Some(_), Some(_)) => Authorization::Duplicate,
        (Some(value), None) => parse_value(value.as_bytes()),
    }
}

/// Parse one `Authorization` value.
pub(crate) fn parse_value(value: &[u8]) -> Authorization<'_> {
    let (scheme, rest) = match value.iter().position(|b| *b == b' ') {
        Some(at) => (&value[..at], &value[at..]),
        None => (value, &[][..]),
    };
    let credentials = trim_leading_spaces(rest);
    let is_bearer = scheme.eq_ignore_ascii_case(b"bearer");
    let is_basic = scheme.eq_ignore_ascii_case(b"basic");
    let is_dpop = scheme.eq_ignore_ascii_case(b"dpop");
    if !is_bearer && !is_basic && !is_dpop {
        return Authorization::OtherScheme;
    }
    if credentials.is_empty() || credentials.len() > MAX_CREDENTIAL_LEN || !is_token68(credentials)
    {
        return Authorization::Malformed;
    }
    if is_bearer {
        Authorization::Bearer(credentials)
    } else if is_dpop {
        Authorization::DPoP(credentials)
    } else {
        Authorization::Basic(credentials)
    }
}

fn trim_leading_spaces(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != b' ').unwrap_or(bytes.len());
    &bytes[start..]
}

/// RFC 9110 `token68` (which RFC 6750 calls `b64token`): `1*( ALPHA / DIGIT / "-" / "." /
/// "_" / "~" / "+" / "/" ) *"="`.
fn is_token68(bytes: &[u8]) -> bool {
    let body_len = bytes
        .iter()
        .rposition(|b| *b != b'=')
        .map_or(0, |at| at + 1);
    // Every byte is checked with comparisons combined without short-circuiting, so the
    // compiler checks many bytes per instruction: the check runs over every credential
    // (a JWT is hundreds of bytes), so its cost is paid per request.
    body_len > 0
        && bytes[..body_len]
            .iter()
            .fold(true, |valid, b| valid & is_token68_char(*b))
}

/// Whether `b` may appear in `token68` before its padding.
fn is_token68_char(b: u8) -> bool {
    let folded = b | 0x20; // ASCII upper case to lower case; no other byte lands on a letter
    folded.is_ascii_lowercase()
        | b.is_ascii_digit()
        | (b == b'-')
        | (b == b'.')
        | (b == b'_')
        | (b == b'~')
        | (b == b'+')
        | (b == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn parse_one(value: &[u8]) -> Authorization<'static> {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_bytes(value).unwrap());
        let leaked: &'static HeaderMap = Box::leak(Box::new(headers));
        parse(leaked)
    }

    #[test]
    fn scheme_is_case_insensitive_and_token_exact() {
        assert_eq!(
            parse_one(b"bearer abc.DEF"),
            Authorization::Bearer(b"abc.DEF")
        );
        assert_eq!(parse_one(b"BEARER abc"), Authorization::Bearer(b"abc"));
        assert_eq!(
            parse_one(b"Basic dXNlcjpwYXNz"),
            Authorization::Basic(b"dXNlcjpwYXNz")
        );
    }

    #[test]
    fn several_spaces_after_the_scheme_are_allowed() {
        assert_eq!(parse_one(b"Bearer   abc"), Authorization::Bearer(b"abc"));
    }

    #[test]
    fn empty_missing_or_spaced_tokens_are_malformed() {
        for value in [
            &b"Bearer"[..],
            b"Bearer ",
            b"Bearer  ",
            b"Bearer a b",
            b"Bearer ab\tc",
            b"Bearer ===",
            b"Bearer a=b",
        ] {
            assert_eq!(parse_one(value), Authorization::Malformed, "{value:?}");
        }
    }

    #[test]
    fn bearer_without_space_is_another_scheme() {
        assert_eq!(parse_one(b"Bearerabc"), Authorization::OtherScheme);
        assert_eq!(parse_one(b"Digest realm=x"), Authorization::OtherScheme);
    }

    #[test]
    fn overlong_credentials_are_malformed() {
        let long = format!("Bearer {}", "a".repeat(MAX_CREDENTIAL_LEN + 1));
        assert_eq!(parse_one(long.as_bytes()), Authorization::Malformed);
    }

    #[test]
    fn non_ascii_credentials_are_malformed() {
        assert_eq!(parse_one(b"Bearer \xff\xfe"), Authorization::Malformed);
    }

    #[test]
    fn two_authorization_headers_are_duplicate() {
        let mut headers = HeaderMap::new();
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer a"));
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert_eq!(parse(&headers), Authorization::Duplicate);
    }

    #[test]
    fn jwt_shape_is_three_segments() {
        assert!(parse_one(b"Bearer a.b.c").is_jwt_shaped());
        assert!(!parse_one(b"Bearer a.b").is_jwt_shaped());
        assert!(!parse_one(b"Bearer abc").is_jwt_shaped());
    }

    #[test]
    fn token68_allows_exactly_its_characters_before_the_padding() {
        for byte in 0..=255u8 {
            let allowed = byte.is_ascii_alphanumeric()
                || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
            assert_eq!(is_token68(&[b'a', byte, b'b']), allowed, "{byte}");
            assert_eq!(is_token68(&[byte]), allowed && byte != b'=', "{byte} alone");
        }
        assert!(is_token68(b"abc=="));
        assert!(!is_token68(b"=="));
        assert!(!is_token68(b"a=b"));
    }
}
