//! [`ClientAddrLayer`]: the request's [`ClientAddr`], resolved once for every layer after it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Extensions, Request};
use tower_layer::Layer;
use tower_service::Service;

use super::ClientAddr;
use super::proxies::TrustedProxies;

/// Where the connection's peer address is found in a request's extensions.
pub type PeerSource = fn(&Extensions) -> Option<IpAddr>;

/// Puts the client's address into each request's extensions as [`ClientAddr`]: the
/// connection's peer, or, when the peer is a trusted proxy, the client it names (see
/// [`TrustedProxies`]). Every limit and allow-list after it reads that one value.
///
/// The peer is read from the extensions: a [`ClientAddr`] or a [`SocketAddr`] the server put
/// there, by default. With axum, read its `ConnectInfo` instead:
///
/// ```
/// use std::net::SocketAddr;
/// use callguard::client::{ClientAddrLayer, TrustedProxies};
///
/// let layer = ClientAddrLayer::new(TrustedProxies::parse(["10.0.0.0/8"])?).peer_from(|extensions| {
///     extensions
///         .get::<axum::extract::ConnectInfo<SocketAddr>>()
///         .map(|info| info.0.ip())
/// });
/// # Ok::<(), callguard::ConfigError>(())
/// ```
///
/// A request whose peer is unknown gets no `ClientAddr` (and the limits keyed by it say so).
#[derive(Clone, Debug)]
pub struct ClientAddrLayer {
    proxies: Arc<TrustedProxies>,
    peer: PeerSource,
}

impl ClientAddrLayer {
    /// Resolve the client through `proxies` (use [`TrustedProxies::none`] to take the peer).
    pub fn new(proxies: TrustedProxies) -> Self {
        Self {
            proxies: Arc::new(proxies),
            peer: default_peer,
        }
    }

    /// Read the peer address with `peer` (default: a [`ClientAddr`], then a [`SocketAddr`]).
    #[must_use]
    pub fn peer_from(mut self, peer: PeerSource) -> Self {
        self.peer = peer;
        self
    }
}

fn default_peer(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ClientAddr>()
        .map(|client| client.0)
        .or_else(|| extensions.get::<SocketAddr>().map(SocketAddr::ip))
}

impl<S> Layer<S> for ClientAddrLayer {
    type Service = ClientAddrService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientAddrService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of a [`ClientAddrLayer`].
#[derive(Clone, Debug)]
pub struct ClientAddrService<S> {
    inner: S,
    layer: ClientAddrLayer,
}

impl<S> ClientAddrService<S> {
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

impl<S, B> Service<Request<B>> for ClientAddrService<S>
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
        match (self.layer.peer)(request.extensions()) {
            Some(peer) => {
                let client = self.layer.proxies.client(peer, request.headers());
                request.extensions_mut().insert(ClientAddr(client));
            }
            // A stale value must not stand in for a peer nobody knows.
            None => {
                request.extensions_mut().remove::<ClientAddr>();
            }
        }
        self.inner.call(request)
    }
}
