//! What the criterion benches share: the trivial service behind every layer and the one
//! call they all time, a request served through `oneshot` and answered 200.

use std::convert::Infallible;
use std::fmt::Debug;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Service, ServiceExt};

/// The request and response body of the benches.
pub(crate) type Body = Full<Bytes>;

/// The service behind every layer: answers 200 with an empty body at once.
pub(crate) async fn answer<B>(_request: Request<B>) -> Result<Response<Body>, Infallible> {
    Ok(Response::new(Full::new(Bytes::new())))
}

/// Serve `request` through a clone of `service` on `runtime`, and insist on a 200.
pub(crate) fn served_ok<S, B, ResBody>(
    runtime: &tokio::runtime::Runtime,
    service: &S,
    request: Request<B>,
) where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone,
    S::Error: Debug,
{
    let response = runtime.block_on(service.clone().oneshot(request)).unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
