//! The client address through trusted proxies, end to end through the layer.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use callguard::ClientAddr;
use callguard::client::{ClientAddrLayer, ForwardedHeader, TrustedProxies};
use http::{Request, Response};
use tower::{Layer, ServiceExt, service_fn};

async fn client_of(layer: &ClientAddrLayer, request: Request<()>) -> Option<IpAddr> {
    let service = layer.layer(service_fn(|request: Request<()>| async move {
        Ok::<_, Infallible>(Response::new(
            request.extensions().get::<ClientAddr>().map(|c| c.0),
        ))
    }));
    service.oneshot(request).await.unwrap().into_body()
}

fn from(peer: &str, forwarded: &[&str]) -> Request<()> {
    let mut request = Request::get("/");
    for value in forwarded {
        request = request.header("x-forwarded-for", *value);
    }
    let mut request = request.body(()).unwrap();
    let peer: SocketAddr = peer.parse().unwrap();
    request.extensions_mut().insert(peer);
    request
}

fn ip(text: &str) -> Option<IpAddr> {
    Some(text.parse().unwrap())
}

#[tokio::test]
async fn the_client_is_the_peer_unless_the_peer_is_a_trusted_proxy() {
    let layer = ClientAddrLayer::new(TrustedProxies::parse(["10.0.0.0/8"]).unwrap());
    // A client that writes its own X-Forwarded-For gains nothing.
    let direct = from("198.51.100.4:5000", &["1.2.3.4"]);
    assert_eq!(client_of(&layer, direct).await, ip("198.51.100.4"));
    // Through our proxy, the entry it appended; the client's spoofed entry to its left is
    // never read.
    let proxied = from("10.0.0.1:443", &["1.2.3.4, 198.51.100.4"]);
    assert_eq!(client_of(&layer, proxied).await, ip("198.51.100.4"));
    // No proxy trusted: the peer, whatever the headers say.
    let none = ClientAddrLayer::new(TrustedProxies::none());
    let proxied = from("10.0.0.1:443", &["198.51.100.4"]);
    assert_eq!(client_of(&none, proxied).await, ip("10.0.0.1"));
}

#[tokio::test]
async fn the_peer_can_come_from_elsewhere_and_an_unknown_peer_leaves_no_address() {
    let layer = ClientAddrLayer::new(
        TrustedProxies::parse(["192.0.2.0/24"])
            .unwrap()
            .header(ForwardedHeader::Forwarded),
    )
    .peer_from(|extensions| extensions.get::<PeerFromTls>().map(|peer| peer.0));
    let mut request = Request::get("/")
        .header("forwarded", "for=203.0.113.8")
        .body(())
        .unwrap();
    request
        .extensions_mut()
        .insert(PeerFromTls("192.0.2.1".parse().unwrap()));
    assert_eq!(client_of(&layer, request).await, ip("203.0.113.8"));
    // A ClientAddr a handler upstream guessed is not kept when the peer is unknown.
    let mut request = Request::get("/").body(()).unwrap();
    request
        .extensions_mut()
        .insert(ClientAddr("203.0.113.8".parse().unwrap()));
    assert_eq!(client_of(&layer, request).await, None);
}

#[derive(Clone)]
struct PeerFromTls(IpAddr);
