//! The service: inspects the head, then either answers, passes the request on, or hands the
//! body to the future for verification.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use super::body::GuardedBody;
use super::future::GuardFuture;
use super::layer::Shared;
use crate::authenticator::Inspection;
use crate::error::{AuthError, AuthErrorKind};
use crate::reject::{ProblemDetails, Reject};
use crate::scope::AnonymousPass;

/// The service made by [`GuardLayer`](crate::GuardLayer).
///
/// Requests reach `inner` with a [`GuardedBody`] and, when accepted, a
/// [`Caller`](crate::Caller) in their extensions. Rejections are responses, so
/// `Error = S::Error`.
#[derive(Debug, Clone)]
pub struct Guard<S, R = ProblemDetails> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared<R>>,
}

impl<S, R, B, ResBody> Service<Request<B>> for Guard<S, R>
where
    S: Service<Request<GuardedBody<B>>, Response = Response<ResBody>> + Clone,
    B: Body<Data = Bytes>,
    ResBody: From<Bytes>,
    R: Reject,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = GuardFuture<S, B, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let shared = &self.shared;
        match shared.authenticator.inspect(&parts) {
            Inspection::Absent if shared.optional => {
                parts
                    .extensions
                    .insert(AnonymousPass(shared.authenticator.challenges()));
                self.pass(parts, body)
            }
            Inspection::Absent => self.refuse(
                &parts,
                AuthError::new(
                    AuthErrorKind::MissingCredentials,
                    shared.authenticator.challenges(),
                ),
            ),
            Inspection::Rejected(error) => self.refuse(&parts, error),
            Inspection::Accepted(caller) => {
                parts.extensions.insert(caller);
                self.pass(parts, body)
            }
            #[cfg(feature = "jwt")]
            Inspection::AcceptedUnlessRevoked(caller, check) => {
                parts.extensions.insert(caller);
                let request = Request::from_parts(parts, GuardedBody::streaming(body));
                GuardFuture::consulting(
                    check.store.contains(check.key),
                    request,
                    self.take_ready_inner(),
                    Arc::clone(&self.shared),
                    check.policy,
                    AuthErrorKind::TokenRevoked,
                )
            }
            Inspection::NeedsBody(check) => {
                let expected = match declared_length(&parts, &body) {
                    Some(len) if len > shared.body_limit as u64 => {
                        return self.refuse(
                            &parts,
                            AuthError::new(
                                AuthErrorKind::BodyTooLarge,
                                shared.authenticator.challenges(),
                            ),
                        );
                    }
                    // Only a hint: the buffer reserves a bounded part of it and grows as bytes
                    // arrive, so a lying header sizes nothing, whatever the limit.
                    Some(len) => usize::try_from(len).unwrap_or(usize::MAX),
                    None => 0,
                };
                GuardFuture::collecting(
                    body,
                    parts,
                    check,
                    self.take_ready_inner(),
                    Arc::clone(&self.shared),
                    expected,
                )
            }
        }
    }
}

impl<S, R> Guard<S, R> {
    /// The inner service that was polled ready, for a future that calls it later; a clone
    /// is left in its place.
    fn take_ready_inner(&mut self) -> S
    where
        S: Clone,
    {
        let clone = self.inner.clone();
        std::mem::replace(&mut self.inner, clone)
    }

    fn pass<B, ResBody>(&mut self, parts: Parts, body: B) -> GuardFuture<S, B, R>
    where
        S: Service<Request<GuardedBody<B>>, Response = Response<ResBody>>,
    {
        GuardFuture::calling(
            self.inner
                .call(Request::from_parts(parts, GuardedBody::streaming(body))),
        )
    }

    fn refuse<B, ResBody>(&self, parts: &Parts, error: AuthError) -> GuardFuture<S, B, R>
    where
        S: Service<Request<GuardedBody<B>>, Response = Response<ResBody>>,
        ResBody: From<Bytes>,
        R: Reject,
    {
        GuardFuture::refused(self.shared.respond(parts.uri.path(), error))
    }
}

/// The body length the request declares: `Content-Length`, or the body's own exact or lower
/// size hint (hyper derives it from the header), whichever is larger.
fn declared_length<B: Body>(parts: &Parts, body: &B) -> Option<u64> {
    let header = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let hint = body.size_hint().lower();
    match header {
        Some(len) => Some(len.max(hint)),
        None if hint > 0 => Some(hint),
        None => None,
    }
}
