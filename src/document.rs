//! Serving a fixed JSON document (the public keys of minted tokens, the protected resource
//! metadata): [`DocumentBody`], the body of its answer. The `GET`/`HEAD` answer and the 405
//! for other methods are written in one place here.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};

/// The body of a served document's answer: its bytes in one frame (none for `HEAD` and
/// 405).
///
/// ```
/// use callguard::document::DocumentBody;
/// use http_body::Body;
/// let body = DocumentBody::from(bytes::Bytes::from_static(b"{}"));
/// assert_eq!(body.size_hint().exact(), Some(2));
/// assert_eq!(body.into_bytes(), "{}");
/// ```
#[derive(Clone, Debug, Default)]
pub struct DocumentBody(Option<Bytes>);

impl DocumentBody {
    /// The bytes not yet read.
    pub fn into_bytes(self) -> Bytes {
        self.0.unwrap_or_default()
    }
}

impl From<Bytes> for DocumentBody {
    fn from(bytes: Bytes) -> Self {
        Self(Some(bytes).filter(|b| !b.is_empty()))
    }
}

impl Body for DocumentBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.take().map(|bytes| Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.as_ref().map_or(0, |b| b.len() as u64))
    }
}

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
) -> Response<DocumentBody> {
    if method != Method::GET && method != Method::HEAD {
        let mut response = Response::new(DocumentBody::default());
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
    let mut response = Response::new(DocumentBody::from(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache_control));
    response
}
