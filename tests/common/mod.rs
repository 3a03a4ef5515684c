//! Helpers shared by the integration tests: signing, bodies with chosen framing, and
//! inner services that report what they received.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

pub mod codes;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use callguard::Caller;
use callguard::guard::GuardedBody;
use hmac::{Hmac, KeyInit, Mac};
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use sha2::Sha256;

pub const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// HMAC-SHA256 of `parts` concatenated, keyed with `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

pub fn sign_hex(key: &str, body: &[u8]) -> String {
    hex::encode(hmac_sha256(key.as_bytes(), &[body]))
}

/// A body delivered as the given frames, optionally failing after them; no size hint.
pub struct FramedBody {
    frames: VecDeque<Result<Bytes, std::io::Error>>,
}

impl FramedBody {
    pub fn new(chunks: impl IntoIterator<Item = Bytes>) -> Self {
        Self {
            frames: chunks.into_iter().map(Ok).collect(),
        }
    }

    /// Split `body` into frames of `size` bytes.
    pub fn chunked(body: &[u8], size: usize) -> Self {
        Self::new(body.chunks(size.max(1)).map(Bytes::copy_from_slice))
    }

    pub fn then_fail(mut self) -> Self {
        self.frames
            .push_back(Err(std::io::Error::other("connection reset")));
        self
    }
}

impl Body for FramedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.frames.pop_front().map(|r| r.map(Frame::data)))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// What the inner service saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub caller: Option<Caller>,
    pub body: Bytes,
}

/// An inner service that collects its body and answers 200 with the request's `Seen` in the
/// response extensions.
pub async fn echo<B>(request: Request<GuardedBody<B>>) -> Result<Response<Full<Bytes>>, Infallible>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let (parts, body) = request.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
    response.extensions_mut().insert(Seen {
        caller: parts.extensions.get::<Caller>().cloned(),
        body,
    });
    Ok(response)
}

/// The published vectors, read from the repository's own copy.
pub fn vectors() -> Vec<serde_json::Value> {
    let text = include_str!("../data/published_vectors.json");
    serde_json::from_str(text).unwrap()
}

pub fn vector(id: &str) -> serde_json::Value {
    vectors()
        .into_iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("no vector {id}"))
}

/// A single-threaded runtime for tests that drive futures by hand (proptest).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The status and the caller the inner service saw for `Authorization: Bearer token`
/// through `guard` in front of [`echo`].
pub fn present_bearer(
    guard: &callguard::GuardLayer,
    token: &str,
) -> (http::StatusCode, Option<Seen>) {
    use tower::{Layer, ServiceExt, service_fn};
    let request = Request::post("/tool")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = runtime()
        .block_on(guard.layer(service_fn(echo)).oneshot(request))
        .unwrap();
    (
        response.status(),
        response.extensions().get::<Seen>().cloned(),
    )
}
