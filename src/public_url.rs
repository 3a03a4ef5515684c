//! The URL a sender called, as the sender saw it: what URL-covering signatures sign
//! (SignalWire, Twilio), and what a DPoP proof's `htu` and an RFC 9421 `@target-uri` name.
//! A server behind a proxy does not see it, so it comes from configuration (a public base
//! URL) or, only when the user opts in, from forwarded headers anyone can set.

use http::request::Parts;

use crate::error::{AuthErrorKind, ConfigError};

/// Where the public URL comes from.
#[derive(Debug, Clone)]
pub(crate) enum PublicUrl {
    /// A configured base URL, without a trailing slash.
    Base(Box<str>),
    /// `X-Forwarded-Proto` / `X-Forwarded-Host`, then `Host`: only when the user opted in.
    Forwarded,
}

impl PublicUrl {
    /// The source a configuration names: the base URL when there is one (it takes
    /// precedence), forwarded headers when trusted, otherwise none.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidUrl`] for a base URL that is not absolute `http(s)` without a
    /// query or fragment.
    pub(crate) fn configured(
        base: Option<String>,
        trust_forwarded: bool,
    ) -> Result<Option<Self>, ConfigError> {
        Ok(match (base, trust_forwarded) {
            (Some(url), _) => Some(Self::Base(validate_base_url(url)?)),
            (None, true) => Some(Self::Forwarded),
            (None, false) => None,
        })
    }

    /// Feed the URL of the request `parts` describe, in pieces, without building a string:
    /// scheme and authority, then the path and, when `with_query`, the query.
    pub(crate) fn feed(
        &self,
        parts: &Parts,
        with_query: bool,
        mut feed: impl FnMut(&[u8]),
    ) -> Result<(), AuthErrorKind> {
        match self {
            Self::Base(base) => feed(base.as_bytes()),
            Self::Forwarded => {
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
        let target = match (with_query, parts.uri.path_and_query()) {
            (true, Some(pq)) => pq.as_str(),
            (false, Some(pq)) => pq.path(),
            (_, None) => "/",
        };
        feed(target.as_bytes());
        Ok(())
    }
}

fn validate_base_url(url: String) -> Result<Box<str>, ConfigError> {
    let parsed: http::Uri = url
        .parse()
        .map_err(|_| ConfigError::InvalidUrl { url: url.clone() })?;
    let scheme_ok = matches!(parsed.scheme_str(), Some("http" | "https"));
    let bare = parsed.query().is_none() && !url.contains('#');
    if !scheme_ok || parsed.authority().is_none() || !bare {
        return Err(ConfigError::InvalidUrl { url });
    }
    Ok(url.trim_end_matches('/').into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(source: &PublicUrl, request: http::Request<()>, with_query: bool) -> String {
        let (parts, ()) = request.into_parts();
        let mut text = Vec::new();
        source
            .feed(&parts, with_query, |piece| text.extend_from_slice(piece))
            .unwrap();
        String::from_utf8(text).unwrap()
    }

    #[test]
    fn the_base_url_or_trusted_forwarded_headers_give_the_url_with_or_without_query() {
        let base = PublicUrl::configured(Some("https://hooks.example.com/".into()), true)
            .unwrap()
            .unwrap();
        let request = || {
            http::Request::post("/voice?a=1")
                .header("x-forwarded-host", "evil.example")
                .body(())
                .unwrap()
        };
        assert_eq!(
            url(&base, request(), true),
            "https://hooks.example.com/voice?a=1"
        );
        assert_eq!(
            url(&base, request(), false),
            "https://hooks.example.com/voice"
        );
        let forwarded = PublicUrl::configured(None, true).unwrap().unwrap();
        assert_eq!(
            url(&forwarded, request(), true),
            "https://evil.example/voice?a=1"
        );
        assert!(PublicUrl::configured(None, false).unwrap().is_none());
        assert!(PublicUrl::configured(Some("https://a.example/?q".into()), false).is_err());
    }
}
