//! The body the inner service receives.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// The request body behind a guard: either the verified bytes, replayed exactly as they
    /// arrived (with any trailers), or the original body untouched when the method did not
    /// need to read it.
    pub struct GuardedBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Buffered { data: Option<Bytes>, trailers: Option<Box<HeaderMap>> },
        Streaming { #[pin] body: B },
    }
}

impl<B> GuardedBody<B> {
    pub(crate) fn buffered(data: Bytes, trailers: Option<Box<HeaderMap>>) -> Self {
        Self {
            kind: Kind::Buffered {
                data: Some(data).filter(|d| !d.is_empty()),
                trailers,
            },
        }
    }

    pub(crate) fn streaming(body: B) -> Self {
        Self {
            kind: Kind::Streaming { body },
        }
    }
}

impl<B> Body for GuardedBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Buffered { data, trailers } => {
                let frame = data
                    .take()
                    .map(Frame::data)
                    .or_else(|| trailers.take().map(|trailers| Frame::trailers(*trailers)));
                Poll::Ready(frame.map(Ok))
            }
            KindProj::Streaming { body } => body.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Buffered { data, trailers } => data.is_none() && trailers.is_none(),
            Kind::Streaming { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Buffered { data, .. } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Kind::Streaming { body } => body.size_hint(),
        }
    }
}

impl<B> std::fmt::Debug for GuardedBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Buffered { data, .. } => f
                .debug_struct("GuardedBody::Buffered")
                .field("len", &data.as_ref().map_or(0, Bytes::len))
                .finish(),
            Kind::Streaming { .. } => f.write_str("GuardedBody::Streaming"),
        }
    }
}

/// The most a buffer reserves up front from a declared length: 64 KiB. Beyond it the buffer
/// grows as bytes arrive, so memory follows the bytes received, never what a header claims.
pub(crate) const MAX_UP_FRONT_RESERVE: usize = 64 * 1024;

/// Collects a body's data frames with at most one copy: one frame is kept as it is; from the
/// second on, frames are copied into a buffer reserved for the expected length, up to
/// [`MAX_UP_FRONT_RESERVE`], and grown as more arrives.
#[derive(Debug)]
pub(crate) struct BodyBuffer {
    state: BufferState,
    len: usize,
    expected: usize,
}

#[derive(Debug)]
enum BufferState {
    Empty,
    One(Bytes),
    Many(BytesMut),
}

impl BodyBuffer {
    /// A buffer that expects `expected` bytes (from `Content-Length`, already bounded by the
    /// limit, which may be as large as `usize::MAX`).
    pub(crate) fn new(expected: usize) -> Self {
        Self {
            state: BufferState::Empty,
            len: 0,
            expected,
        }
    }

    /// How many bytes have been collected.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.len += chunk.len();
        self.state = match std::mem::replace(&mut self.state, BufferState::Empty) {
            BufferState::Empty => BufferState::One(chunk),
            BufferState::One(first) => {
                let reserve = self.expected.min(MAX_UP_FRONT_RESERVE).max(self.len);
                let mut joined = BytesMut::with_capacity(reserve);
                joined.extend_from_slice(&first);
                joined.extend_from_slice(&chunk);
                BufferState::Many(joined)
            }
            BufferState::Many(mut joined) => {
                joined.extend_from_slice(&chunk);
                BufferState::Many(joined)
            }
        };
    }

    #[inline]
    pub(crate) fn into_bytes(self) -> Bytes {
        match self.state {
            BufferState::Empty => Bytes::new(),
            BufferState::One(bytes) => bytes,
            BufferState::Many(joined) => joined.freeze(),
        }
    }
}

/// Where the frames of a body being collected go: every consumer of the one body path (a
/// signature check, a JSON-RPC reader) is fed each data frame as it arrives.
pub(crate) trait Collect {
    /// How many body bytes have been collected.
    fn collected(&self) -> usize;
    /// The next data frame, already counted against the limit.
    fn data(&mut self, data: Bytes);
    /// Trailers, kept to be handed on.
    fn trailers(&mut self, trailers: HeaderMap);
}

/// Read frames until the body ends, each data frame counted against `limit` before it is
/// kept: a stream error is [`AuthErrorKind::BodyReadFailed`], crossing the limit
/// [`AuthErrorKind::BodyTooLarge`] (and reading stops).
pub(crate) fn poll_collect<B, C>(
    mut body: Pin<&mut B>,
    sink: &mut C,
    limit: usize,
    cx: &mut Context<'_>,
) -> Poll<Result<(), crate::error::AuthErrorKind>>
where
    B: Body<Data = Bytes>,
    C: Collect + ?Sized,
{
    use crate::error::AuthErrorKind;
    loop {
        let frame = match std::task::ready!(body.as_mut().poll_frame(cx)) {
            None => return Poll::Ready(Ok(())),
            Some(Err(_)) => return Poll::Ready(Err(AuthErrorKind::BodyReadFailed)),
            Some(Ok(frame)) => frame,
        };
        match frame.into_data() {
            Ok(data) => {
                if data.len() > limit - sink.collected() {
                    return Poll::Ready(Err(AuthErrorKind::BodyTooLarge));
                }
                sink.data(data);
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    sink.trailers(trailers);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use http_body_util::Full;

    #[test]
    fn single_frame_is_not_copied() {
        let original = Bytes::from_static(b"hello");
        let mut buffer = BodyBuffer::new(5);
        buffer.push(original.clone());
        let out = buffer.into_bytes();
        assert_eq!(out.as_ptr(), original.as_ptr());
    }

    #[test]
    fn many_frames_are_joined_in_order() {
        let mut buffer = BodyBuffer::new(0);
        for part in ["ab", "", "cd", "e"] {
            buffer.push(Bytes::from(part));
        }
        assert_eq!(buffer.len(), 5);
        assert_eq!(buffer.into_bytes(), "abcde");
    }

    #[test]
    fn a_declared_length_reserves_at_most_the_bounded_amount() {
        let mut buffer = BodyBuffer::new(usize::MAX);
        buffer.push(Bytes::from_static(b"ab"));
        buffer.push(Bytes::from_static(b"cd"));
        let BufferState::Many(joined) = &buffer.state else {
            panic!("two frames are joined");
        };
        assert!(joined.capacity() <= MAX_UP_FRONT_RESERVE);
        assert_eq!(buffer.into_bytes(), "abcd");
    }

    #[tokio::test]
    async fn buffered_body_replays_data_then_trailers() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-checksum", "1".parse().unwrap());
        let body: GuardedBody<Full<Bytes>> = GuardedBody::buffered(
            Bytes::from_static(b"data"),
            Some(Box::new(trailers.clone())),
        );
        assert_eq!(body.size_hint().exact(), Some(4));
        let collected = body.collect().await.unwrap();
        assert_eq!(collected.trailers(), Some(&trailers));
        assert_eq!(collected.to_bytes(), "data");
    }

    #[tokio::test]
    async fn empty_buffered_body_is_at_end() {
        let body: GuardedBody<Full<Bytes>> = GuardedBody::buffered(Bytes::new(), None);
        assert!(body.is_end_stream());
    }
}
