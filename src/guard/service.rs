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
use super::body_check::BodyRead;
use super::future::GuardFuture;
use super::layer::Shared;
use super::logged_path::LoggedPath;
use crate::authenticator::Inspection;
use crate::error::{AuthError, AuthErrorKind};
use crate::limit::FailureState;
use crate::reject::{ProblemDetails, Reject};
use crate::replay::StoreFuture;
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

impl<S, R> Guard<S, R> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming this one.
    pub fn into_inner(self) -> S {
        self.inner
    }
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
        if let Some(first) = parts.extensions.get::<crate::Caller>() {
            return GuardFuture::refused(stacked(&self.shared, first, parts.uri.path()));
        }
        if let Some(limit) = &self.shared.failures {
            match admission(&self.shared, limit, &mut parts) {
                Admission::Admitted => {}
                Admission::Refused(response) => return GuardFuture::refused(response),
                Admission::Waiting(answer) => {
                    let inner = ReadyInner::Borrowed(&mut self.inner).into_owned();
                    let shared = Arc::clone(&self.shared);
                    return GuardFuture::limiting(answer, parts, body, inner, shared);
                }
            }
        }
        let inner = ReadyInner::Borrowed(&mut self.inner);
        match self.shared.authenticator.inspect(&parts) {
            // The two commonest decisions are acted on here rather than through
            // `dispatch`'s arguments: each move of the head is a copy of some 200 bytes.
            // An acceptance that owes nothing (no store step, no rate limit, no charged
            // attempt to refund) calls the service at once; a body to read gets the head.
            Inspection::Accepted { caller, owed }
                if owed.is_empty() && self.shared.owes_nothing(&parts) =>
            {
                parts.extensions.insert(self.shared.accepted(caller));
                let path = LoggedPath::of(&parts.uri);
                let request = Request::from_parts(parts, GuardedBody::streaming(body));
                GuardFuture::calling(inner.call(request), Arc::clone(&self.shared), path)
            }
            Inspection::NeedsBody(mut read) => {
                let Some(expected) = expected_length(&parts, &body, self.shared.body_limit) else {
                    return too_large(&parts, &self.shared);
                };
                read.start(parts, expected);
                GuardFuture::collecting(body, read, inner.into_owned(), Arc::clone(&self.shared))
            }
            inspection => dispatch(inspection, parts, body, inner, &self.shared),
        }
    }
}

/// What a guard's failure limit says about a request before its credential is looked at.
enum Admission<ResBody> {
    /// Go on; an attempt charged in advance is in the request's extensions.
    Admitted,
    /// Refused at once: the client (or its network, or the account) is locked out, or the
    /// guard has no address to count by.
    Refused(Response<ResBody>),
    /// The store answers later.
    Waiting(StoreFuture<FailureState>),
}

/// The failure limit's answer for the request whose head is `parts`. Out of line: a guard
/// without a failure limit never runs it, and one with a limit calls it once.
#[inline(never)]
fn admission<R: Reject, ResBody: From<Bytes>>(
    shared: &Shared<R>,
    limit: &crate::limit::FailureLimit,
    parts: &mut Parts,
) -> Admission<ResBody> {
    let challenges = shared.challenges;
    let Some(client) = crate::ClientAddr::of(parts) else {
        tracing::error!(
            guard = shared.log.name(),
            "callguard: a guard with a failure limit found no ClientAddr on the request; add a ClientAddrLayer in front of it"
        );
        let error = AuthError::new(AuthErrorKind::ClientAddrMissing, challenges);
        return Admission::Refused(shared.respond(parts.uri.path(), error));
    };
    let mut answer = limit.attempt(client, limit.account_of(parts));
    let Some(answer) = answer.now() else {
        return Admission::Waiting(answer);
    };
    let charged = answer.as_ref().ok().and_then(|state| state.charged);
    if let Some(error) = limit.refusal(answer, challenges) {
        return Admission::Refused(shared.respond(parts.uri.path(), error));
    }
    if let Some(charged_in) = charged {
        parts
            .extensions
            .insert(crate::limit::ChargedAttempt(charged_in));
    }
    Admission::Admitted
}

/// The answer of a guard that finds a caller another guard accepted: a setup mistake (500),
/// logged once, naming this guard and the method the other one accepted.
#[cold]
#[inline(never)]
fn stacked<R: Reject, ResBody: From<Bytes>>(
    shared: &Shared<R>,
    first: &crate::Caller,
    path: &str,
) -> Response<ResBody> {
    tracing::error!(
        guard = shared.log.name(),
        first = first.method().as_str(),
        path = crate::rejection_log::truncate(path),
        "callguard: a second guard on a request another guard accepted; put every method into one any_of, or require both proofs with a Delegation"
    );
    crate::reject::response(
        &shared.responder,
        AuthError::new(
            AuthErrorKind::GuardStacked,
            crate::reject::Challenges::default(),
        ),
    )
}

/// The inner service that was polled ready: the service's own, borrowed, or one a future
/// took along to call later.
pub(crate) enum ReadyInner<'a, S> {
    Borrowed(&'a mut S),
    Owned(S),
}

impl<S: Clone> ReadyInner<'_, S> {
    fn call<Req>(self, request: Req) -> S::Future
    where
        S: Service<Req>,
    {
        match self {
            Self::Borrowed(inner) => inner.call(request),
            Self::Owned(mut inner) => inner.call(request),
        }
    }

    /// The ready service itself, for a future that calls it later; a borrowed one leaves a
    /// clone in its place.
    pub(crate) fn into_owned(self) -> S {
        match self {
            Self::Borrowed(inner) => {
                let clone = inner.clone();
                std::mem::replace(inner, clone)
            }
            Self::Owned(inner) => inner,
        }
    }
}

/// Act on the authenticator's decision about a request's head: answer, pass the request on,
/// or hand it to a future that reads the body or waits for a store or a key fetch. The
/// service calls this, and so does the future once a pending inspection resolves.
pub(crate) fn dispatch<S, B, R, ResBody>(
    inspection: Inspection,
    mut parts: Parts,
    body: B,
    inner: ReadyInner<'_, S>,
    shared: &Arc<Shared<R>>,
) -> GuardFuture<S, B, R>
where
    S: Service<Request<GuardedBody<B>>, Response = Response<ResBody>> + Clone,
    B: Body<Data = Bytes>,
    ResBody: From<Bytes>,
    R: Reject,
{
    let refuse = |parts: &Parts, error| super::future::refuse_counting(parts, error, shared);
    match inspection {
        Inspection::Absent if shared.optional => {
            parts.extensions.insert(AnonymousPass(shared.challenges));
            if let Some(refund) = shared.refund(&mut parts) {
                let request = Request::from_parts(parts, GuardedBody::streaming(body));
                let owed = super::Owed::from(super::StoreStep::Refund(refund));
                return GuardFuture::consulting(
                    owed,
                    request,
                    inner.into_owned(),
                    Arc::clone(shared),
                );
            }
            let path = LoggedPath::of(&parts.uri);
            GuardFuture::calling(
                inner.call(Request::from_parts(parts, GuardedBody::streaming(body))),
                Arc::clone(shared),
                path,
            )
        }
        Inspection::Absent => refuse(
            &parts,
            AuthError::new(AuthErrorKind::MissingCredentials, shared.challenges),
        ),
        Inspection::Rejected(error) => super::future::refuse_counting(&parts, error, shared),
        // (The guard's `call` passes an acceptance that owes nothing straight on; one
        // decided later owes its steps through the same future, empty or not.)
        Inspection::Accepted { caller, owed } => {
            let owed = shared.owed(&mut parts, &caller, owed);
            parts.extensions.insert(shared.accepted(caller));
            let request = Request::from_parts(parts, GuardedBody::streaming(body));
            GuardFuture::consulting(owed, request, inner.into_owned(), Arc::clone(shared))
        }
        #[cfg(feature = "oauth")]
        Inspection::Pending(pending) => {
            GuardFuture::inspecting(pending, parts, body, inner.into_owned(), Arc::clone(shared))
        }
        Inspection::NeedsBody(read) => read_body(read, parts, body, inner, shared),
    }
}

/// Hand a request whose decision needs its body to a future that reads it, or refuse it at
/// once when it declares more than the limit.
fn read_body<S, B, R, ResBody>(
    mut read: Box<BodyRead>,
    parts: Parts,
    body: B,
    inner: ReadyInner<'_, S>,
    shared: &Arc<Shared<R>>,
) -> GuardFuture<S, B, R>
where
    S: Service<Request<GuardedBody<B>>, Response = Response<ResBody>> + Clone,
    B: Body<Data = Bytes>,
    ResBody: From<Bytes>,
    R: Reject,
{
    let Some(expected) = expected_length(&parts, &body, shared.body_limit) else {
        return too_large(&parts, shared);
    };
    read.start(parts, expected);
    GuardFuture::collecting(body, read, inner.into_owned(), Arc::clone(shared))
}

/// How many body bytes to expect, or `None` when the request declares more than `limit`.
/// Only a hint: the buffer reserves a bounded part of it and grows as bytes arrive, so a
/// lying header sizes nothing, whatever the limit.
fn expected_length<B: Body>(parts: &Parts, body: &B, limit: usize) -> Option<usize> {
    match declared_length(parts, body) {
        Some(len) if len > limit as u64 => None,
        Some(len) => Some(usize::try_from(len).unwrap_or(usize::MAX)),
        None => Some(0),
    }
}

/// The refusal of a body declared larger than the guard's limit (a failed attempt, counted
/// when the guard has a failure limit).
fn too_large<S, B, R, ResBody>(parts: &Parts, shared: &Arc<Shared<R>>) -> GuardFuture<S, B, R>
where
    S: Service<Request<GuardedBody<B>>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
    R: Reject,
{
    super::future::refuse_counting(
        parts,
        AuthError::new(AuthErrorKind::BodyTooLarge, shared.challenges),
        shared,
    )
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
