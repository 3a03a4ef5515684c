//! Requests as hyper hands them to a service: the head is read into one buffer, and the
//! URI and every header value are slices of it (`hyper::proto::h1::role`: `split_to`,
//! `freeze`, `slice_ref`). Cloning any of them counts a reference; a request built with
//! `Request::post("/path")` instead holds copies that the first clone moves to the heap, a
//! cost no server pays.

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::Full;

/// A request for `method` and `target` with `headers`, laid out as hyper lays it out, and
/// `body` as its body.
pub(crate) fn request(
    method: Method,
    target: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Request<Full<Bytes>> {
    let mut head = BytesMut::with_capacity(512);
    head.extend_from_slice(method.as_str().as_bytes());
    head.extend_from_slice(b" ");
    let target_at = head.len();
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    let mut values = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        values.push((head.len(), value.len()));
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let len = head.len();
    let shared = head.split_to(len).freeze();
    let uri = Uri::from_maybe_shared(shared.slice(target_at..target_at + target.len()))
        .expect("a valid request target");
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    for ((name, _), (at, len)) in headers.iter().zip(values) {
        request.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).expect("a valid header name"),
            HeaderValue::from_maybe_shared(shared.slice(at..at + len))
                .expect("a valid header value"),
        );
    }
    request
}
