//! A proof's `htu` against the request's URI (RFC 9449 §4.3, check 9): both without query
//! and fragment, compared after syntax- and scheme-based normalisation (RFC 3986 §6.2.2,
//! §6.2.3): scheme and host in lower case, the default port dropped, an empty path as `/`,
//! dot segments removed (all by the `url` crate's parser), percent-escapes of unreserved
//! characters decoded and the others' hex digits in upper case (here).

/// `uri` normalised for comparison, without its query and fragment; `None` for anything but
/// an absolute `http` or `https` URI with a host and no user information.
pub(crate) fn normalize(uri: &str) -> Option<String> {
    let mut url = url::Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    Some(normalize_escapes(url.as_str()))
}

/// Whether `uri` (absolute, or a bare path) is one a proof or a request may name as it is:
/// no backslash, whitespace or control character (which a lenient URL parser reads as
/// something else), and no dot segment in its path, written plainly or percent-encoded (an
/// application routes on the raw path, so `/x/../admin` is not `/admin` to it).
pub(crate) fn is_plain(uri: &str) -> bool {
    if uri.bytes().any(|b| b == b'\\' || b <= b' ' || b == 0x7f) {
        return false;
    }
    let after_scheme = uri.find("://").map_or(0, |at| at + 3);
    let rest = &uri[after_scheme..];
    let path_start = if after_scheme == 0 {
        0
    } else {
        rest.find('/').unwrap_or(rest.len())
    };
    let path = &rest[path_start..];
    let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
    !path.split('/').any(|segment| {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        decoded == "." || decoded == ".."
    })
}

/// Percent-escapes as RFC 3986 §6.2.2.1 and §6.2.2.2 want them: an unreserved character's
/// escape decoded, every other escape's hex digits in upper case.
fn normalize_escapes(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escape {
            Some(byte) if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) => {
                out.push(char::from(byte));
                i += 3;
            }
            Some(byte) => {
                out.push_str(&format!("%{byte:02X}"));
                i += 3;
            }
            None => {
                // Not an escape: the text is ASCII after the parser, one byte at a time.
                out.push(char::from(bytes[i]));
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn equivalent_spellings_of_one_uri_compare_equal() {
        let canonical = normalize("https://server.example.com/resource").unwrap();
        for spelling in [
            "https://server.example.com/resource",
            "HTTPS://Server.Example.COM/resource",
            "https://server.example.com:443/resource",
            "https://server.example.com/resource?query=1",
            "https://server.example.com/resource#fragment",
            "https://server.example.com/a/../resource",
            "https://server.example.com/%72esource",
        ] {
            assert_eq!(normalize(spelling).as_ref(), Some(&canonical), "{spelling}");
        }
        assert_eq!(
            normalize("https://server.example.com").unwrap(),
            "https://server.example.com/"
        );
        assert_eq!(
            normalize("https://server.example.com/a%2fb").unwrap(),
            "https://server.example.com/a%2Fb"
        );
    }

    #[test]
    fn different_uris_and_other_schemes_do_not() {
        let canonical = normalize("https://server.example.com/resource");
        for other in [
            "http://server.example.com/resource",
            "https://server.example.com:8443/resource",
            "https://server.example.org/resource",
            "https://server.example.com/resource/",
            "https://server.example.com/Resource",
        ] {
            assert_ne!(normalize(other), canonical, "{other}");
        }
        for refused in [
            "ftp://server.example.com/",
            "/resource",
            "https://user:pass@server.example.com/",
            "not a uri",
        ] {
            assert_eq!(normalize(refused), None, "{refused}");
        }
    }
}
