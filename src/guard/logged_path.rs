//! The path of a request the guard passed on, kept for the log line of a refusal its
//! handler answers with (`caller.require_scopes(..)?`).

use http::uri::PathAndQuery;

/// The longest path copied inline. Longer ones share the request's own bytes.
const INLINE: usize = 38;

/// A request's path (never its query). A short path (most webhook and tool routes) is
/// copied into the value itself; a longer one shares the request URI's bytes, which costs
/// an atomic reference count on the way in and out, as a `PathAndQuery` clone does.
pub(crate) enum LoggedPath {
    Inline { bytes: [u8; INLINE], len: u8 },
    Shared(PathAndQuery),
}

impl LoggedPath {
    /// The path of `uri`.
    #[inline]
    pub(crate) fn of(uri: &http::Uri) -> Self {
        let path = uri.path().as_bytes();
        match u8::try_from(path.len()) {
            Ok(len) if path.len() <= INLINE => {
                let mut bytes = [0u8; INLINE];
                bytes[..path.len()].copy_from_slice(path);
                Self::Inline { bytes, len }
            }
            _ => Self::Shared(
                uri.path_and_query()
                    .cloned()
                    .unwrap_or_else(|| PathAndQuery::from_static("/")),
            ),
        }
    }

    /// The path, as the request carried it.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            // Copied whole from a `&str`, so always UTF-8.
            Self::Inline { bytes, len } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or("/")
            }
            Self::Shared(path) => path.path(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_path_is_copied_and_a_long_one_shared_both_without_the_query() {
        let short: http::Uri = "/webhooks/github?token=secret".parse().unwrap();
        let logged = LoggedPath::of(&short);
        assert!(matches!(logged, LoggedPath::Inline { .. }));
        assert_eq!(logged.as_str(), "/webhooks/github");

        let exactly: http::Uri = format!("/{}", "a".repeat(INLINE - 1)).parse().unwrap();
        assert!(matches!(
            LoggedPath::of(&exactly),
            LoggedPath::Inline { .. }
        ));
        assert_eq!(LoggedPath::of(&exactly).as_str().len(), INLINE);

        let long: http::Uri = format!("/{}?q=1", "é".repeat(200)).parse().unwrap();
        let logged = LoggedPath::of(&long);
        assert!(matches!(logged, LoggedPath::Shared(_)));
        assert_eq!(logged.as_str(), long.path());
    }

    #[test]
    fn an_absolute_form_uri_logs_its_path() {
        let absolute: http::Uri = "https://example.com/hooks/stripe".parse().unwrap();
        assert_eq!(LoggedPath::of(&absolute).as_str(), "/hooks/stripe");
        let bare: http::Uri = "https://example.com".parse().unwrap();
        assert_eq!(LoggedPath::of(&bare).as_str(), "/");
    }
}
