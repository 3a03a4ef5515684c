//! The code a user would write instead of callguard for a signed webhook: collect the body,
//! HMAC it, hex-decode the header, compare in constant time with `subtle`, and hand a small
//! struct to the handler. The benches' "hand-rolled" peer.

use std::convert::Infallible;
use std::future::Future;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// What the hand-rolled layer tells the handler.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Signed {
    #[allow(
        dead_code,
        reason = "what a handler would read; the benches' handler does not"
    )]
    pub(crate) key_id: &'static str,
}

/// The hand-rolled check in front of `inner`, keyed once with `keyed`.
pub(crate) fn hand_rolled<F, Fut>(
    keyed: Hmac<Sha256>,
    inner: F,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Full<Bytes>>, Infallible>>,
> + Clone
where
    F: Fn(Request<Full<Bytes>>) -> Fut + Clone,
    Fut: Future<Output = Result<Response<Full<Bytes>>, Infallible>>,
{
    tower::service_fn(move |request: Request<Full<Bytes>>| {
        let (keyed, inner) = (keyed.clone(), inner.clone());
        async move {
            let (mut parts, body) = request.into_parts();
            let Ok(collected) = body.collect().await;
            let bytes = collected.to_bytes();
            let mut tag = [0u8; 32];
            let decoded = parts
                .headers
                .get("x-signature")
                .is_some_and(|value| hex::decode_to_slice(value.as_bytes(), &mut tag).is_ok());
            let mut mac = keyed;
            mac.update(&bytes);
            let expected = mac.finalize().into_bytes();
            if !decoded || !bool::from(expected.as_slice().ct_eq(&tag)) {
                let mut refused = Response::new(Full::new(Bytes::new()));
                *refused.status_mut() = StatusCode::UNAUTHORIZED;
                return Ok(refused);
            }
            parts.extensions.insert(Signed { key_id: "k1" });
            inner(Request::from_parts(parts, Full::new(bytes))).await
        }
    })
}

/// What the shared variant tells the handler: the key's name, shared with the configuration
/// as a guard's caller is.
#[derive(Clone, Debug)]
pub(crate) struct SharedSigned {
    #[allow(
        dead_code,
        reason = "what a handler would read; the benches' handler does not"
    )]
    pub(crate) key_id: std::sync::Arc<str>,
}

/// The same check with its configuration shared rather than copied, the way a layer holds a
/// configuration too large to copy into every request: the key behind an `Arc` (one count
/// when the service is cloned, one for the request's future) and the caller handed on as a
/// clone of a shared name (one more). The three reference-count pairs callguard's guard
/// pays, added to the hand-rolled layer and nothing else: an explanatory peer, not a target.
pub(crate) fn hand_rolled_shared<F, Fut>(
    keyed: Hmac<Sha256>,
    inner: F,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Full<Bytes>>, Infallible>>,
> + Clone
where
    F: Fn(Request<Full<Bytes>>) -> Fut + Clone,
    Fut: Future<Output = Result<Response<Full<Bytes>>, Infallible>>,
{
    let config = std::sync::Arc::new((
        keyed,
        SharedSigned {
            key_id: "k1".into(),
        },
    ));
    tower::service_fn(move |request: Request<Full<Bytes>>| {
        let (config, inner) = (std::sync::Arc::clone(&config), inner.clone());
        async move {
            let (mut parts, body) = request.into_parts();
            let Ok(collected) = body.collect().await;
            let bytes = collected.to_bytes();
            let mut tag = [0u8; 32];
            let decoded = parts
                .headers
                .get("x-signature")
                .is_some_and(|value| hex::decode_to_slice(value.as_bytes(), &mut tag).is_ok());
            let mut mac = config.0.clone();
            mac.update(&bytes);
            let expected = mac.finalize().into_bytes();
            if !decoded || !bool::from(expected.as_slice().ct_eq(&tag)) {
                let mut refused = Response::new(Full::new(Bytes::new()));
                *refused.status_mut() = StatusCode::UNAUTHORIZED;
                return Ok(refused);
            }
            parts.extensions.insert(config.1.clone());
            drop(config);
            inner(Request::from_parts(parts, Full::new(bytes))).await
        }
    })
}
