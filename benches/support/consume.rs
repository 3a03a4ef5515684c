//! The handler behind the layers compared in `peers` and `profile`: it reads the body, as
//! a webhook handler does, and answers 200 with its length.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};

pub(crate) async fn consume<B>(
    request: Request<B>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let body = request.into_body().collect().await.unwrap().to_bytes();
    Ok(Response::new(Full::new(Bytes::from(
        body.len().to_string(),
    ))))
}
