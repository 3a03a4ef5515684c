//! The guard as a plain hyper 1 service over a real TCP socket on 127.0.0.1: no axum, bodies
//! framed by hyper itself (Content-Length and chunked).

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use callguard::signature::SignatureVerifier;
use callguard::{GuardLayer, Secret};
use common::{FramedBody, SECRET, Seen, echo, sign_hex};
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tower::{Layer, service_fn};

/// Serve the guarded echo service on an ephemeral port; the answer's body is the SHA-256 of
/// the bytes the inner service received, and `x-key-id` names the matching secret.
async fn serve(limit: usize) -> SocketAddr {
    let verifier = SignatureVerifier::builder()
        .secret("k1", Secret::from_utf8(SECRET).unwrap())
        .build()
        .unwrap();
    let guarded = GuardLayer::new(verifier)
        .body_limit(limit)
        .layer(service_fn(|request| async move {
            let response = echo(request).await?;
            let seen = response.extensions().get::<Seen>().cloned().unwrap();
            let digest = hex::encode(Sha256::digest(&seen.body));
            let key_id = seen
                .caller
                .and_then(|c| c.key_id().map(str::to_owned))
                .unwrap_or_default();
            Ok::<_, std::convert::Infallible>(
                Response::builder()
                    .header("x-key-id", key_id)
                    .body(Full::new(Bytes::from(digest)))
                    .unwrap(),
            )
        }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = TowerToHyperService::new(guarded.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn send<B>(addr: SocketAddr, request: Request<B>) -> (StatusCode, String, String)
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let key_id = response
        .headers()
        .get("x-key-id")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned(), key_id)
}

fn binary_body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::test]
async fn signed_body_with_content_length_arrives_byte_for_byte() {
    let addr = serve(1 << 20).await;
    let body = binary_body(200_000);
    let request = Request::post(format!("http://{addr}/tool"))
        .header("host", addr.to_string())
        .header("x-signature", sign_hex(SECRET, &body))
        .body(Full::new(Bytes::from(body.clone())))
        .unwrap();
    let (status, digest, key_id) = send(addr, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(digest, hex::encode(Sha256::digest(&body)));
    assert_eq!(key_id, "k1");
}

#[tokio::test]
async fn signed_chunked_body_arrives_byte_for_byte() {
    let addr = serve(1 << 20).await;
    let body = binary_body(100_000);
    let request = Request::post(format!("http://{addr}/tool"))
        .header("host", addr.to_string())
        .header("x-signature", sign_hex(SECRET, &body))
        .body(FramedBody::chunked(&body, 16 * 1024))
        .unwrap();
    let (status, digest, _) = send(addr, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(digest, hex::encode(Sha256::digest(&body)));
}

#[tokio::test]
async fn tampered_body_over_tcp_is_401() {
    let addr = serve(1 << 20).await;
    let mut body = binary_body(5_000);
    let signature = sign_hex(SECRET, &body);
    body[4_999] ^= 1;
    let request = Request::post(format!("http://{addr}/tool"))
        .header("host", addr.to_string())
        .header("x-signature", signature)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let (status, text, _) = send(addr, request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(text.contains("missing or invalid credentials"));
}

#[tokio::test]
async fn declared_length_over_the_limit_is_413_over_tcp() {
    let addr = serve(1_000).await;
    let body = binary_body(1_001);
    let request = Request::post(format!("http://{addr}/tool"))
        .header("host", addr.to_string())
        .header("x-signature", sign_hex(SECRET, &body))
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    assert_eq!(send(addr, request).await.0, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn chunked_body_over_the_limit_is_413_over_tcp() {
    let addr = serve(1_000).await;
    let body = binary_body(3_000);
    let request = Request::post(format!("http://{addr}/tool"))
        .header("host", addr.to_string())
        .header("x-signature", sign_hex(SECRET, &body))
        .body(FramedBody::chunked(&body, 500))
        .unwrap();
    assert_eq!(send(addr, request).await.0, StatusCode::PAYLOAD_TOO_LARGE);
}
