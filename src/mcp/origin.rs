//! MCP's DNS-rebinding rule (Streamable HTTP transport: servers MUST validate `Origin`): a
//! request whose `Origin` is not one the server allows is refused with 403; a request
//! without `Origin` (not from a browser) passes.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{AuthError, AuthErrorKind, ConfigError};
use crate::reject::{Challenges, GateFuture, ProblemDetails, Reject, respond};
use crate::rejection_log::RejectionLog;

/// Refuses requests from browser origins the MCP server does not allow (403
/// [`AuthErrorKind::OriginNotAllowed`]): a page on another site, or one that rebinds its
/// own host name to the server's address, cannot drive the server from a user's browser.
/// Requests without `Origin` pass; two `Origin` headers, or `Origin: null`, do not.
///
/// ```
/// use callguard::mcp::AllowedOriginsLayer;
///
/// let origins = AllowedOriginsLayer::new(["https://tools.example.com", "http://localhost:6274"])?;
/// assert!(origins.allows("https://TOOLS.example.com:443"));
/// assert!(!origins.allows("https://tools.example.com.evil.test"));
/// assert!(!origins.allows("null"));
/// # Ok::<(), callguard::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct AllowedOriginsLayer<R = ProblemDetails> {
    origins: Arc<[String]>,
    responder: R,
    log: RejectionLog,
}

impl AllowedOriginsLayer {
    /// Allow these origins (`scheme://host[:port]`, `http` or `https`, nothing after).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidList`] naming an entry that is not such an origin, or an
    /// empty list.
    pub fn new<S: AsRef<str>>(origins: impl IntoIterator<Item = S>) -> Result<Self, ConfigError> {
        let origins = origins
            .into_iter()
            .map(|origin| {
                let origin = origin.as_ref();
                canonical(origin).ok_or_else(|| ConfigError::InvalidList {
                    name: format!("allowed origin `{origin}`"),
                    expected: "an origin such as https://tools.example.com (scheme, host and port only)",
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if origins.is_empty() {
            return Err(ConfigError::InvalidList {
                name: "allowed origins".into(),
                expected: "at least one origin",
            });
        }
        Ok(Self {
            origins: origins.into(),
            responder: ProblemDetails::default(),
            log: RejectionLog::new("mcp-origins"),
        })
    }
}

impl<R> AllowedOriginsLayer<R> {
    /// Whether a request with `Origin: origin` is allowed.
    pub fn allows(&self, origin: &str) -> bool {
        canonical(origin).is_some_and(|origin| self.origins.contains(&origin))
    }

    /// Build refusals with `responder` instead of [`ProblemDetails`].
    pub fn on_reject<R2: Reject>(self, responder: R2) -> AllowedOriginsLayer<R2> {
        AllowedOriginsLayer {
            origins: self.origins,
            responder,
            log: self.log,
        }
    }
}

/// An origin as compared: scheme and host in lower case, the scheme's default port
/// dropped; `None` for anything but `http(s)://host[:port]`.
fn canonical(origin: &str) -> Option<String> {
    let origin = origin.trim().to_ascii_lowercase();
    let (scheme, rest) = origin.split_once("://")?;
    let default_port = match scheme {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    let authority = rest.strip_suffix(default_port).unwrap_or(rest);
    let port_ok = |host: &str, port: &str| {
        !host.is_empty() && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
    };
    let host_ok = !authority.is_empty()
        && !authority.contains(['/', '?', '#', '@', ' '])
        && if authority.starts_with('[') {
            // An IPv6 literal, with or without a port after it.
            match authority.split_once(']') {
                Some((_, "")) => true,
                Some((host, rest)) => rest
                    .strip_prefix(':')
                    .is_some_and(|port| port_ok(host, port)),
                None => false,
            }
        } else {
            authority
                .split_once(':')
                .is_none_or(|(host, port)| port_ok(host, port))
        };
    host_ok.then(|| format!("{scheme}://{authority}"))
}

impl<S, R: Clone> Layer<S> for AllowedOriginsLayer<R> {
    type Service = AllowedOrigins<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        AllowedOrigins {
            inner,
            gate: self.clone(),
        }
    }
}

/// The service made by [`AllowedOriginsLayer`].
#[derive(Clone, Debug)]
pub struct AllowedOrigins<S, R = ProblemDetails> {
    inner: S,
    gate: AllowedOriginsLayer<R>,
}

impl<S, R> AllowedOrigins<S, R> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming this one.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, R, B, ResBody> Service<Request<B>> for AllowedOrigins<S, R>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
    R: Reject,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = GateFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let mut origins = request.headers().get_all(http::header::ORIGIN).iter();
        let allowed = match (origins.next(), origins.next()) {
            (None, _) => true,
            (Some(origin), None) => origin.to_str().is_ok_and(|origin| self.gate.allows(origin)),
            (Some(_), Some(_)) => false,
        };
        if allowed {
            return GateFuture::inner(self.inner.call(request));
        }
        GateFuture::refused(respond(
            &self.gate.responder,
            &self.gate.log,
            request.uri().path(),
            AuthError::new(AuthErrorKind::OriginNotAllowed, Challenges::default()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn origins_compare_by_scheme_host_and_port() {
        assert_eq!(
            canonical("HTTPS://Tools.Example.com:443").as_deref(),
            Some("https://tools.example.com")
        );
        assert_eq!(
            canonical("http://localhost:6274").as_deref(),
            Some("http://localhost:6274")
        );
        assert_eq!(
            canonical("http://[::1]:8080").as_deref(),
            Some("http://[::1]:8080")
        );
        assert_eq!(canonical("http://[::1]").as_deref(), Some("http://[::1]"));
        assert_eq!(
            canonical("http://[::1]:80").as_deref(),
            Some("http://[::1]")
        );
        for not_an_origin in [
            "null",
            "https://",
            "https://a.example/",
            "https://a.example/path",
            "ftp://a.example",
            "https://user@a.example",
            "https://a.example:",
            "https://a.example:x",
            "https://a.example:1:2",
            "http://[::1]x",
            "a.example",
        ] {
            assert_eq!(canonical(not_an_origin), None, "{not_an_origin}");
        }
    }
}
