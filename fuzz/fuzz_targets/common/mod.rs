//! Driving a guard to completion without a runtime: with an in-memory body and store every
//! step is ready at once, so one poll with a no-op waker finishes the request.

use std::convert::Infallible;
use std::future::Future;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use callguard::GuardLayer;
use callguard::guard::GuardedBody;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Layer, Service, service_fn};

/// The statuses a guard may answer a hostile request with.
const EXPECTED: [u16; 6] = [200, 400, 401, 408, 413, 503];

/// Run `request` through `guard`; panic if the answer is a status no rejection uses.
pub fn run(guard: &GuardLayer, request: Request<Full<Bytes>>) {
    let mut service = guard.clone().layer(service_fn(
        |_request: Request<GuardedBody<Full<Bytes>>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        },
    ));
    let mut cx = Context::from_waker(Waker::noop());
    if service.poll_ready(&mut cx).is_pending() {
        return;
    }
    let mut future = std::pin::pin!(service.call(request));
    if let Poll::Ready(Ok(response)) = future.as_mut().poll(&mut cx) {
        let status: StatusCode = response.status();
        assert!(
            EXPECTED.contains(&status.as_u16()),
            "unexpected status {status}"
        );
    }
}

/// Split fuzz input into `n` pieces at `\n` (missing pieces are empty).
pub fn pieces(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut parts: Vec<&[u8]> = data.splitn(n, |b| *b == b'\n').collect();
    parts.resize(n, &[]);
    parts
}
