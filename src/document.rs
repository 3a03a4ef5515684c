//! Serving a fixed JSON document (a key set, a metadata document): the one place the
//! `GET`/`HEAD` answer and the 405 for other methods are written.

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;

/// The answer to `method` for a document `body` of `content_type`, cacheable as
/// `cache_control` says: the body for `GET`, the headers alone for `HEAD`, 405 naming both
/// otherwise.
#[cfg_attr(
    not(feature = "jwt"),
    allow(dead_code, reason = "served by jwt and oauth")
)]
pub(crate) fn answer(
    method: &Method,
    body: &Bytes,
    content_type: &'static str,
    cache_control: &'static str,
) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let body = if method == Method::HEAD {
        Bytes::new()
    } else {
        body.clone()
    };
    let mut response = Response::new(Full::new(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache_control));
    response
}
