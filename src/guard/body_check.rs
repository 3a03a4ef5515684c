//! A decision that needs the body: the check a method built from the head, fed every data
//! frame of the one frame loop as it arrives, and decided once the body is in.
//!
//! A shared-secret signature is one such check today; a `Content-Digest`, an RFC 9421
//! signature covering one, or a JSON-RPC reader are further variants of the same enum, each
//! fed by the same loop. A delegation wraps the agent's check rather than living inside it.

use bytes::Bytes;
use http::HeaderMap;
use http::request::Parts;

use super::body::{BodyBuffer, Collect};
use super::owed::{Owed, StoreStep};
use crate::authenticator::Authenticator;
use crate::caller::Caller;
use crate::error::{AuthError, Challenges};
use crate::signature::{SignatureCheck, Verified};

/// What a method checks over the body.
// The common check is held inline: the whole read is boxed once, and a second box for the
// signature's MAC states would be one more allocation on every signed request.
#[allow(clippy::large_enum_variant)]
pub(crate) enum BodyCheck {
    /// A shared-secret signature whose MACs are fed the body as it streams.
    Signature(SignatureCheck),
    /// An agent's body check, combined with its user's proven token once it passes.
    #[cfg(feature = "jwt")]
    Delegated(Box<crate::delegation::DelegatedBody>),
}

impl BodyCheck {
    /// The signature check this is, before any wrapping.
    pub(crate) fn signature_mut(&mut self) -> Option<&mut SignatureCheck> {
        match self {
            Self::Signature(check) => Some(check),
            #[cfg(feature = "jwt")]
            Self::Delegated(_) => None,
        }
    }

    /// Feed the next data frame.
    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Self::Signature(check) => check.update(data),
            #[cfg(feature = "jwt")]
            Self::Delegated(delegated) => delegated.agent.update(data),
        }
    }

    /// Decide, with the whole body: the caller it proves and the store steps it owes, or
    /// the refusal (with `challenges` when the check has none of its own). `authenticator`
    /// is the guard's, which holds the methods whose checks these are.
    pub(crate) fn finish(
        &mut self,
        body: &[u8],
        authenticator: &Authenticator,
        challenges: Challenges,
    ) -> Result<(Caller, Owed), AuthError> {
        match self {
            Self::Signature(check) => {
                let Verified { caller, replay } = check
                    .finish(body, authenticator)
                    .map_err(|kind| AuthError::new(kind, challenges))?;
                let owed =
                    replay.map_or_else(Owed::none, |replay| StoreStep::Replay(replay).into());
                Ok((caller, owed))
            }
            #[cfg(feature = "jwt")]
            Self::Delegated(delegated) => delegated.finish(body, authenticator, challenges),
        }
    }
}

/// A body check and the request it reads: the head, held while the body arrives, the body's
/// bytes and trailers. Boxed once when the head passes, so the request's future stays small
/// and this state never moves again.
pub(crate) struct BodyRead {
    pub(crate) check: BodyCheck,
    head: Option<Parts>,
    buffer: BodyBuffer,
    trailers: Option<Box<HeaderMap>>,
}

impl BodyRead {
    /// A read for the check `make` builds, its request not yet attached, built in its
    /// allocation: the allocation is made
    /// first, so the check (MAC states and all) is written into it rather than built on
    /// the stack and copied.
    #[inline(always)]
    pub(crate) fn new_with(make: impl FnOnce() -> BodyCheck) -> Box<Self> {
        Box::write(
            Box::new_uninit(),
            Self {
                check: make(),
                head: None,
                buffer: BodyBuffer::new(0),
                trailers: None,
            },
        )
    }

    /// Its check replaced by `wrap(check)`: a delegation wrapping an agent's check.
    #[cfg(feature = "jwt")]
    pub(crate) fn wrapped(self: Box<Self>, wrap: impl FnOnce(BodyCheck) -> BodyCheck) -> Box<Self> {
        let Self {
            check,
            head,
            buffer,
            trailers,
        } = *self;
        Box::new(Self {
            check: wrap(check),
            head,
            buffer,
            trailers,
        })
    }

    /// Start reading the body of the request whose head is `head`, expecting `expected`
    /// bytes (a hint only: the buffer reserves a bounded part of it).
    #[inline]
    pub(crate) fn start(&mut self, head: Parts, expected: usize) {
        self.head = Some(head);
        self.buffer = BodyBuffer::new(expected);
    }

    /// The request's head, while the body is read.
    pub(crate) fn head(&self) -> Option<&Parts> {
        self.head.as_ref()
    }

    /// The request's head, to change before it is taken out.
    #[inline]
    pub(crate) fn head_mut(&mut self) -> &mut Parts {
        self.head
            .as_mut()
            .expect("the guard stores the head before collecting")
    }

    /// The request's head, taken out once its body is in.
    #[inline]
    pub(crate) fn take_head(&mut self) -> Parts {
        self.head
            .take()
            .expect("the guard stores the head before collecting")
    }

    /// The bytes and the trailers read.
    #[inline]
    pub(crate) fn take_body(&mut self) -> (Bytes, Option<Box<HeaderMap>>) {
        (
            std::mem::replace(&mut self.buffer, BodyBuffer::new(0)).into_bytes(),
            self.trailers.take(),
        )
    }
}

impl Collect for BodyRead {
    fn collected(&self) -> usize {
        self.buffer.len()
    }

    fn data(&mut self, data: Bytes) {
        self.check.update(&data);
        self.buffer.push(data);
    }

    fn trailers(&mut self, trailers: HeaderMap) {
        self.trailers.get_or_insert_default().extend(trailers);
    }
}
