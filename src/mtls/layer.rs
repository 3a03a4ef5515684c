//! [`ClientCertificateLayer`]: the request's [`CertificateThumbprint`], resolved once from the
//! connection or from a trusted proxy's header.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Extensions, HeaderMap, HeaderName, Request};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use tower_layer::Layer;
use tower_service::Service;

use super::{CertificateThumbprint, ClientCertificate};
use crate::client::{ClientAddr, PeerSource, TrustedProxies};

/// The header a TLS-terminating proxy passes the client certificate in.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyHeader {
    /// A URL-escaped PEM certificate, as nginx's `$ssl_client_escaped_cert` gives it
    /// (`proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;`), in this header.
    EscapedPem(HeaderName),
    /// Envoy's `x-forwarded-client-cert`: one element, its `Hash` (the certificate's SHA-256,
    /// hex) read (`forward_client_cert_details: SANITIZE_SET` sends exactly one).
    EnvoyXfcc,
}

/// Puts the request's [`CertificateThumbprint`] into its extensions, for the token verifiers
/// holding certificate-bound tokens (RFC 8705): from a [`ClientCertificate`] the server put
/// there, or, when the connection's peer is one of the trusted proxies, from the header that
/// proxy sets. A header from any other peer is never read, and a stale thumbprint is removed.
///
/// The peer is read from the extensions: a [`SocketAddr`], then a [`ClientAddr`] the server
/// put there (place this layer outside a [`ClientAddrLayer`](crate::client::ClientAddrLayer),
/// which replaces the peer's `ClientAddr` with the client it resolves).
///
/// ```
/// use callguard::client::TrustedProxies;
/// use callguard::mtls::{ClientCertificateLayer, ProxyHeader};
///
/// let layer = ClientCertificateLayer::from_proxies(
///     TrustedProxies::parse(["10.0.0.0/8"])?,
///     ProxyHeader::EscapedPem(http::HeaderName::from_static("x-ssl-client-cert")),
/// );
/// # let _ = layer;
/// # Ok::<(), callguard::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ClientCertificateLayer {
    proxy: Option<(Arc<TrustedProxies>, ProxyHeader)>,
    peer: PeerSource,
}

impl ClientCertificateLayer {
    /// The certificate from a [`ClientCertificate`] in the extensions only (a server that
    /// terminates TLS itself).
    pub fn from_connection() -> Self {
        Self {
            proxy: None,
            peer: default_peer,
        }
    }

    /// The certificate from a [`ClientCertificate`] in the extensions, or else from `header`
    /// when the peer is one of `proxies`.
    pub fn from_proxies(proxies: TrustedProxies, header: ProxyHeader) -> Self {
        Self {
            proxy: Some((Arc::new(proxies), header)),
            peer: default_peer,
        }
    }

    /// Read the peer address with `peer` (default: a [`SocketAddr`], then a [`ClientAddr`]).
    #[must_use]
    pub fn peer_from(mut self, peer: PeerSource) -> Self {
        self.peer = peer;
        self
    }

    /// The thumbprint of the request's client certificate, if it has one this layer trusts.
    fn thumbprint(
        &self,
        extensions: &Extensions,
        headers: &HeaderMap,
    ) -> Option<CertificateThumbprint> {
        if let Some(certificate) = extensions.get::<ClientCertificate>() {
            return Some(CertificateThumbprint::of_der(&certificate.0));
        }
        let (proxies, header) = self.proxy.as_ref()?;
        let peer = (self.peer)(extensions)?;
        if !proxies.trusts(peer) {
            return None;
        }
        match header {
            ProxyHeader::EscapedPem(name) => escaped_pem(one(headers, name)?),
            ProxyHeader::EnvoyXfcc => envoy_hash(one(
                headers,
                &HeaderName::from_static("x-forwarded-client-cert"),
            )?),
        }
    }
}

fn default_peer(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<SocketAddr>()
        .map(SocketAddr::ip)
        .or_else(|| extensions.get::<ClientAddr>().map(|client| client.0))
}

/// The one value of `name`; none when absent or repeated.
fn one<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a [u8]> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => Some(value.as_bytes()),
        _ => None,
    }
}

/// The thumbprint of a URL-escaped PEM certificate (nginx `$ssl_client_escaped_cert`).
fn escaped_pem(value: &[u8]) -> Option<CertificateThumbprint> {
    let pem: Vec<u8> = percent_encoding::percent_decode(value).collect();
    let der = CertificateDer::from_pem_slice(&pem).ok()?;
    Some(CertificateThumbprint::of_der(&der))
}

/// The `Hash` of Envoy's `x-forwarded-client-cert` when it holds exactly one element.
fn envoy_hash(value: &[u8]) -> Option<CertificateThumbprint> {
    let value = std::str::from_utf8(value).ok()?;
    let elements = split_unquoted(value, ',')?;
    let [element] = elements.as_slice() else {
        return None;
    };
    let mut hashes = split_unquoted(element, ';')?
        .into_iter()
        .filter_map(|pair| pair.split_once('='))
        .filter(|(key, _)| key.trim().eq_ignore_ascii_case("hash"))
        .map(|(_, hash)| hash.trim());
    let (Some(hash), None) = (hashes.next(), hashes.next()) else {
        return None;
    };
    let mut thumbprint = [0; 32];
    hex::decode_to_slice(hash, &mut thumbprint).ok()?;
    Some(CertificateThumbprint(thumbprint))
}

/// `text` split at `separator` outside double quotes (a backslash escapes inside them);
/// `None` for anything ambiguous: a quote that does not open a value (right after `=`), a
/// closing quote not followed by a separator or the end, a quote left open, a dangling
/// backslash. An open quote would otherwise swallow what a proxy appended after it.
fn split_unquoted(text: &str, separator: char) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped, mut just_closed) = (0, false, false, false);
    let mut previous = None;
    for (at, c) in text.char_indices() {
        if just_closed && c != ',' && c != ';' {
            return None;
        }
        just_closed = false;
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' if quoted => {
                quoted = false;
                just_closed = true;
            }
            '"' if previous == Some('=') => quoted = true,
            '"' => return None,
            c if c == separator && !quoted => {
                parts.push(&text[start..at]);
                start = at + c.len_utf8();
            }
            _ => {}
        }
        previous = Some(c);
    }
    if quoted || escaped {
        return None;
    }
    parts.push(&text[start..]);
    Some(parts)
}

impl<S> Layer<S> for ClientCertificateLayer {
    type Service = ClientCertificateService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientCertificateService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of a [`ClientCertificateLayer`].
#[derive(Clone, Debug)]
pub struct ClientCertificateService<S> {
    inner: S,
    layer: ClientCertificateLayer,
}

impl<S> ClientCertificateService<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for ClientCertificateService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        match self
            .layer
            .thumbprint(request.extensions(), request.headers())
        {
            Some(thumbprint) => {
                request.extensions_mut().insert(thumbprint);
            }
            None => {
                request.extensions_mut().remove::<CertificateThumbprint>();
            }
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envoy_header_gives_its_one_elements_hash() {
        let hash = "a".repeat(64);
        let one = format!("By=spiffe://a;Hash={hash};Subject=\"CN=x,O=y;z\";URI=spiffe://b");
        assert_eq!(
            envoy_hash(one.as_bytes()),
            Some(CertificateThumbprint([0xaa; 32]))
        );
        let two = format!("Hash={hash},Hash={hash}");
        assert_eq!(
            envoy_hash(two.as_bytes()),
            None,
            "two elements: which client is unknown"
        );
        let twice = format!("Hash={hash};Hash={hash}");
        assert_eq!(envoy_hash(twice.as_bytes()), None);
        assert_eq!(envoy_hash(b"Hash=zz"), None);
        assert_eq!(envoy_hash(b"By=x"), None);
    }

    #[test]
    fn an_escaped_pem_that_is_not_a_certificate_gives_nothing() {
        assert_eq!(escaped_pem(b""), None);
        assert_eq!(
            escaped_pem(b"-----BEGIN%20CERTIFICATE-----%0An*pe!%0A-----END%20CERTIFICATE-----"),
            None
        );
    }
}
