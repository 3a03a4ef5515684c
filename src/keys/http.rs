//! The HTTP a remote key set needs: one request, one bounded answer, behind a trait so users
//! can bring their own client. [`ReqwestClient`] (feature `reqwest`) is the default.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};

use crate::error::Cause;

/// Why a fetch failed. Carries no response body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL is not `https` (or `http` on loopback, when allowed).
    InsecureUrl(String),
    /// The server could not be reached, or the connection failed; the client's error is
    /// the [`source`](std::error::Error::source).
    Connect(Cause),
    /// No complete answer within the timeout.
    Timeout,
    /// The server answered with a redirect, which is never followed.
    Redirect,
    /// The answer's status is not 200.
    Status(u16),
    /// The answer is longer than the limit.
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The answer is not the document expected (not JSON, too many keys, a wrong `issuer`).
    Invalid(String),
    /// A fetch of `url` failed for `cause`: how discovery and key-set fetches report, so an
    /// operator sees which document could not be had.
    At {
        /// The URL fetched.
        url: String,
        /// Why it failed.
        cause: Box<FetchError>,
    },
}

impl FetchError {
    /// Name the URL whose fetch failed (an error that names one already is kept).
    #[must_use]
    pub fn at(self, url: &str) -> Self {
        match self {
            Self::At { .. } | Self::InsecureUrl(_) => self,
            cause => Self::At {
                url: url.to_owned(),
                cause: Box::new(cause),
            },
        }
    }

    /// Why the fetch failed, without the URL.
    pub fn cause(&self) -> &Self {
        match self {
            Self::At { cause, .. } => cause.cause(),
            other => other,
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InsecureUrl(url) => write!(
                f,
                "`{url}` is not an https URL (plain http is allowed only on loopback, when enabled)"
            ),
            Self::Connect(reason) => write!(f, "connection failed: {reason}"),
            Self::Timeout => f.write_str("no answer within the timeout"),
            Self::Redirect => f.write_str("the server redirected, and redirects are not followed"),
            Self::Status(status) => write!(f, "the server answered {status}"),
            Self::TooLarge { limit } => write!(f, "the answer is longer than {limit} bytes"),
            Self::Invalid(reason) => write!(f, "unusable answer: {reason}"),
            Self::At { url, cause } => write!(f, "{url}: {cause}"),
        }
    }
}

impl std::error::Error for FetchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect(cause) => cause.as_source(),
            // The cause's text is in this error's own; its source is what lies under it.
            Self::At { cause, .. } => std::error::Error::source(&**cause),
            _ => None,
        }
    }
}

/// The future an [`HttpClient`] answers with.
pub type HttpFuture = Pin<Box<dyn Future<Output = Result<Response<Bytes>, FetchError>> + Send>>;

/// Sends one request for a remote key set, discovery document or introspection.
///
/// Implementations must not follow redirects (answer the 3xx itself, or
/// [`FetchError::Redirect`]), must stop reading a body longer than `max_body` bytes with
/// [`FetchError::TooLarge`], and should give up after `timeout` (callguard also bounds the
/// whole call by it).
pub trait HttpClient: Send + Sync + 'static {
    /// Send `request` and collect its answer.
    fn send(&self, request: Request<Bytes>, max_body: usize, timeout: Duration) -> HttpFuture;
}

/// GET `uri` for a JSON document through `client`, under the limits every fetch shares: the
/// whole call bounded by `timeout`, and a redirect, a status other than 200 or a body over
/// `max_bytes` an error. The one place key sets and metadata documents are fetched.
pub(crate) async fn get_document(
    client: &dyn HttpClient,
    uri: http::Uri,
    max_bytes: usize,
    timeout: Duration,
) -> Result<Response<Bytes>, FetchError> {
    let request = Request::get(uri)
        .header(http::header::ACCEPT, "application/json")
        .body(Bytes::new())
        .map_err(|e| FetchError::Invalid(e.to_string()))?;
    let response = tokio::time::timeout(timeout, client.send(request, max_bytes, timeout))
        .await
        .map_err(|_| FetchError::Timeout)??;
    if response.status().is_redirection() {
        return Err(FetchError::Redirect);
    }
    if response.status() != http::StatusCode::OK {
        return Err(FetchError::Status(response.status().as_u16()));
    }
    if response.body().len() > max_bytes {
        return Err(FetchError::TooLarge { limit: max_bytes });
    }
    Ok(response)
}

/// Whether `url` may be fetched: `https`, or `http` to a loopback host when
/// `allow_loopback_http`.
pub(crate) fn check_url(url: &str, allow_loopback_http: bool) -> Result<http::Uri, FetchError> {
    let insecure = || FetchError::InsecureUrl(url.to_owned());
    let uri: http::Uri = url.parse().map_err(|_| insecure())?;
    let host = uri.host().ok_or_else(insecure)?;
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if allow_loopback_http && is_loopback(host) => Ok(uri),
        _ => Err(insecure()),
    }
}

/// Whether `host` names this machine: `localhost`, 127.0.0.0/8 or `[::1]`.
pub(crate) fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The default client: `reqwest` with rustls, no redirects, no proxy from the environment.
#[cfg(feature = "reqwest")]
#[derive(Debug, Clone)]
pub struct ReqwestClient {
    client: reqwest::Client,
}

#[cfg(feature = "reqwest")]
impl ReqwestClient {
    /// A client that follows no redirects.
    ///
    /// # Errors
    ///
    /// [`FetchError::Connect`] when the TLS stack cannot be set up.
    pub fn new() -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| FetchError::Connect(Cause::new(e)))?;
        Ok(Self { client })
    }
}

#[cfg(feature = "reqwest")]
impl HttpClient for ReqwestClient {
    fn send(&self, request: Request<Bytes>, max_body: usize, timeout: Duration) -> HttpFuture {
        let client = self.client.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let url = parts.uri.to_string();
            let mut response = client
                .request(parts.method, url)
                .headers(parts.headers)
                .body(body)
                .timeout(timeout)
                .send()
                .await
                .map_err(|e| {
                    if e.is_timeout() {
                        FetchError::Timeout
                    } else {
                        FetchError::Connect(Cause::new(e.without_url()))
                    }
                })?;
            let status = response.status();
            if status.is_redirection() {
                return Err(FetchError::Redirect);
            }
            if response
                .content_length()
                .is_some_and(|len| len > max_body as u64)
            {
                return Err(FetchError::TooLarge { limit: max_body });
            }
            let mut builder = Response::builder().status(status);
            if let Some(headers) = builder.headers_mut() {
                headers.extend(response.headers().clone());
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| {
                if e.is_timeout() {
                    FetchError::Timeout
                } else {
                    FetchError::Connect(Cause::new(e.without_url()))
                }
            })? {
                if body.len() + chunk.len() > max_body {
                    return Err(FetchError::TooLarge { limit: max_body });
                }
                body.extend_from_slice(&chunk);
            }
            builder
                .body(Bytes::from(body))
                .map_err(|e| FetchError::Invalid(e.to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_allowed_loopback_http_is_fetched() {
        assert!(check_url("https://as.example.com/jwks", false).is_ok());
        assert!(check_url("http://as.example.com/jwks", true).is_err());
        assert!(check_url("http://127.0.0.1:8080/jwks", false).is_err());
        assert!(check_url("http://127.0.0.1:8080/jwks", true).is_ok());
        assert!(check_url("http://[::1]:8080/jwks", true).is_ok());
        assert!(check_url("http://localhost/jwks", true).is_ok());
        assert!(check_url("http://127.0.0.1.example.com/jwks", true).is_err());
        assert!(check_url("ftp://as.example.com/jwks", true).is_err());
    }
}
