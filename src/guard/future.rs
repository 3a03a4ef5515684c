//! The response future: collects and verifies the body when the method needs it, then
//! calls the inner service.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::body::GuardedBody;
use super::body_check::BodyRead;
use super::deadline::BodyDeadline;
use super::layer::Shared;
use super::logged_path::LoggedPath;
use super::owed::{Owed, Recorded, StoreStep};
use super::service::{ReadyInner, dispatch};
use crate::error::{AuthError, AuthErrorKind};
use crate::limit::FailureState;
use crate::reject::Reject;
use crate::replay::{ReplayPolicy, StoreFuture};

pin_project! {
    /// The response future of [`Guard`](crate::guard::Guard).
    pub struct GuardFuture<S, B, R>
    where
        S: Service<Request<GuardedBody<B>>>,
    {
        #[pin]
        state: State<B, S::Future, Collecting<S, R>, Box<Remembering<S, B, R>>, S::Response, Box<Waiting<S, B, R>>, Result<S::Response, S::Error>, Answering<R>>,
    }
    // A request dropped while its service runs (the client gave up, a timeout outside the
    // guard) is a delivery the service did not finish: its record is released as if the
    // service had failed, so the platform's retry is accepted.
    impl<S, B, R> PinnedDrop for GuardFuture<S, B, R>
    where
        S: Service<Request<GuardedBody<B>>>,
    {
        fn drop(this: Pin<&mut Self>) {
            match this.project().state.project() {
                StateProj::Calling { answering, .. } => {
                    if let Some(recorded) = answering.take().and_then(|a| a.recorded) {
                        finish_detached(recorded.store.release(recorded.key, recorded.record));
                    }
                }
                StateProj::Releasing { store, .. } => {
                    finish_detached(std::mem::replace(store, StoreFuture::ready(Ok(false))));
                }
                // A failure being counted is counted all the same: a client that hangs up
                // on its refusal does not escape its count.
                StateProj::Recording { store, .. } => {
                    finish_detached(std::mem::replace(store, StoreFuture::ready(Ok(FailureState::new(0, None)))));
                }
                // An attempt charged before its credential was decided is refunded: a
                // client's cancelled requests do not fill its limit.
                StateProj::Collecting { collecting, .. } => {
                    if let Some(collecting) = collecting.take()
                        && let Some(parts) = collecting.read.head()
                    {
                        collecting.shared.refund_dropped(parts);
                    }
                }
                StateProj::Inspecting { waiting, .. } => {
                    if let Some(waiting) = waiting.take() {
                        waiting.shared.refund_dropped(&waiting.parts);
                    }
                }
                StateProj::Limiting { store, waiting } => {
                    if let Some(waiting) = waiting.take()
                        && let Some(limit) = waiting.shared.failures.clone()
                        && let Some(client) = crate::ClientAddr::of(&waiting.parts)
                    {
                        let answer = std::mem::replace(store, StoreFuture::ready(Ok(FailureState::new(0, None))));
                        finish_detached(StoreFuture::pending(async move {
                            match answer.await?.charged {
                                Some(charged_in) => limit.refund(client, charged_in).await,
                                None => Ok(FailureState::new(0, None)),
                            }
                        }));
                    }
                }
                // Dropped while a store answers (Redis slow): a record this request made,
                // or is making, is released once the answer is in; a refund under way is
                // finished.
                StateProj::Remembering { store, remembering } => {
                    if remembering.as_ref().is_some_and(|waiting| waiting.finish_when_dropped) {
                        finish_detached(std::mem::replace(store, StoreFuture::ready(Ok(false))));
                        return;
                    }
                    if let Some(waiting) = remembering.take()
                        && let Some(recorded) = waiting.records
                    {
                        let answer = std::mem::replace(store, StoreFuture::ready(Ok(false)));
                        // A replay step (`refuse_on` false) records when its answer is new;
                        // a record from an earlier step exists already.
                        let recording_now = !waiting.refuse_on;
                        finish_detached(StoreFuture::pending(async move {
                            if recording_now && answer.await != Ok(true) {
                                return Ok(false);
                            }
                            recorded.store.release(recorded.key, recorded.record).await
                        }));
                    }
                }
                _ => {}
            }
        }
    }
}

/// Drive a store step whose request went away: at once when it answers at once (in memory),
/// otherwise on the tokio runtime, when there is one.
pub(crate) fn finish_detached<T: Send + 'static>(mut step: StoreFuture<T>) {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    if Pin::new(&mut step).poll(&mut cx).is_ready() {
        return;
    }
    #[cfg(any(feature = "timeout", feature = "keys", feature = "redis"))]
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            if let Err(error) = step.await {
                tracing::error!(%error, "callguard could not finish a store step of a request that was dropped");
            }
        });
        return;
    }
    tracing::error!(
        "callguard could not finish a store step of a request that was dropped: no runtime to finish it on"
    );
}

pin_project! {
    #[project = StateProj]
    enum State<B, F, C, M, Rsp, W, O, A> {
        Collecting { #[pin] body: B, collecting: Option<C>, deadline: BodyDeadline },
        Remembering { store: StoreFuture, remembering: Option<M> },
        Inspecting { pending: PendingInspection, waiting: Option<W> },
        Limiting { store: StoreFuture<FailureState>, waiting: Option<W> },
        Recording { store: StoreFuture<FailureState>, response: Option<Rsp> },
        Calling { #[pin] future: F, answering: Option<A> },
        Releasing { store: StoreFuture, output: Option<O> },
        Refused { response: Option<Rsp> },
    }
}

/// A verified request waiting for a store's answer (replay or revocation).
pub(crate) struct Remembering<S, B, R> {
    request: Request<GuardedBody<B>>,
    inner: S,
    shared: Arc<Shared<R>>,
    policy: ReplayPolicy,
    /// The answer that refuses the request, and the reason it gives.
    refuse_on: bool,
    refusal: AuthErrorKind,
    /// A rate limit's wait and policy, for its refusal's fields.
    rate: Option<(Arc<std::sync::OnceLock<crate::limit::RateState>>, u32, u64)>,
    /// The lookups still owed after this one, last first.
    then: Vec<StoreStep>,
    /// The record this lookup makes, released if the inner service fails.
    records: Option<Recorded>,
    /// Whether the lookup must be finished even when the request goes away (a refund).
    finish_when_dropped: bool,
}

/// The state of a [`GuardFuture`] for inner service `S`, body `B` and responder `R`.
type FutureState<S, B, R> = State<
    B,
    <S as Service<Request<GuardedBody<B>>>>::Future,
    Collecting<S, R>,
    Box<Remembering<S, B, R>>,
    <S as Service<Request<GuardedBody<B>>>>::Response,
    Box<Waiting<S, B, R>>,
    Result<
        <S as Service<Request<GuardedBody<B>>>>::Response,
        <S as Service<Request<GuardedBody<B>>>>::Error,
    >,
    Answering<R>,
>;

/// What the guard does with the inner service's answer: render an `AuthError` the handler
/// answered with through the guard's responder (and log it), and release a recorded
/// delivery the service failed.
pub(crate) struct Answering<R> {
    shared: Arc<Shared<R>>,
    /// The request's path, for the log line of a refusal the handler answers with.
    path: LoggedPath,
    recorded: Option<Box<Recorded>>,
    /// The caller's standing under the guard's rate limit, for the response's fields.
    rate: Option<crate::limit::RateStatus>,
}

/// Call the inner service, or first wait for the store lookups `steps` owes (given last
/// first), one after the other.
fn checked_or_called<S, B, R>(
    mut steps: Vec<StoreStep>,
    request: Request<GuardedBody<B>>,
    mut inner: S,
    shared: Arc<Shared<R>>,
    recorded: Option<Recorded>,
) -> FutureState<S, B, R>
where
    S: Service<Request<GuardedBody<B>>>,
{
    match steps.pop() {
        None => {
            let path = LoggedPath::of(request.uri());
            // Only a guard with a rate limit answers with its standing: others skip the lookup.
            let rate = shared.rate.as_ref().and_then(|_| {
                request
                    .extensions()
                    .get::<crate::limit::RateStatus>()
                    .copied()
            });
            State::Calling {
                future: inner.call(request),
                answering: Some(Answering {
                    shared,
                    path,
                    recorded: recorded.map(Box::new),
                    rate,
                }),
            }
        }
        Some(step) => {
            let started = step.start();
            State::Remembering {
                store: started.store,
                remembering: Some(Box::new(Remembering {
                    request,
                    inner,
                    shared,
                    policy: started.policy,
                    refuse_on: started.refuse_on,
                    refusal: started.refusal,
                    rate: started.rate,
                    then: steps,
                    records: started.records.or(recorded),
                    finish_when_dropped: started.finish_when_dropped,
                })),
            }
        }
    }
}

/// Marks a response an [`AuthError`] rendered with the default responder (a handler's
/// `caller.require_scopes(..)?`), for the guard around it to render again with its own.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DefaultRendered;

/// A request whose inspection waits for something (a key fetch), with what is needed to act
/// on the answer.
pub(crate) struct Waiting<S, B, R> {
    parts: Parts,
    body: B,
    inner: S,
    shared: Arc<Shared<R>>,
}

/// An inspection that needs an awaited step (a remote key set's fetch) before it decides.
pub(crate) type PendingInspection =
    Pin<Box<dyn Future<Output = crate::authenticator::Inspection> + Send>>;

/// Everything the collecting state owns besides the body. The request head, the check's
/// state and the bytes so far live in the boxed read, so this stays small on every path.
pub(crate) struct Collecting<S, R> {
    inner: S,
    read: Box<BodyRead>,
    shared: Arc<Shared<R>>,
}

impl<S, B, R> GuardFuture<S, B, R>
where
    S: Service<Request<GuardedBody<B>>>,
{
    /// The inner service's future, its answer looked at as [`Answering`] says.
    pub(crate) fn calling(future: S::Future, shared: Arc<Shared<R>>, path: LoggedPath) -> Self {
        Self {
            state: State::Calling {
                future,
                answering: Some(Answering {
                    shared,
                    path,
                    recorded: None,
                    rate: None,
                }),
            },
        }
    }

    /// A request accepted on condition that the store steps it `owed` let it through.
    pub(crate) fn consulting(
        owed: Owed,
        request: Request<GuardedBody<B>>,
        inner: S,
        shared: Arc<Shared<R>>,
    ) -> Self {
        Self {
            state: checked_or_called(owed.into_stack(), request, inner, shared, None),
        }
    }

    /// A request whose head is still being inspected: `pending` answers the decision.
    #[cfg(feature = "oauth")]
    pub(crate) fn inspecting(
        pending: PendingInspection,
        parts: Parts,
        body: B,
        inner: S,
        shared: Arc<Shared<R>>,
    ) -> Self {
        Self {
            state: State::Inspecting {
                pending,
                waiting: Some(Box::new(Waiting {
                    parts,
                    body,
                    inner,
                    shared,
                })),
            },
        }
    }

    /// A request whose client's lock is still being looked up (a store over the network).
    pub(crate) fn limiting(
        store: StoreFuture<FailureState>,
        parts: Parts,
        body: B,
        inner: S,
        shared: Arc<Shared<R>>,
    ) -> Self {
        Self {
            state: State::Limiting {
                store,
                waiting: Some(Box::new(Waiting {
                    parts,
                    body,
                    inner,
                    shared,
                })),
            },
        }
    }

    /// A refusal answered once the failure it counts is recorded.
    pub(crate) fn recording(store: StoreFuture<FailureState>, response: S::Response) -> Self {
        Self {
            state: State::Recording {
                store,
                response: Some(response),
            },
        }
    }

    pub(crate) fn refused(response: S::Response) -> Self {
        Self {
            state: State::Refused {
                response: Some(response),
            },
        }
    }

    /// A request whose body `read` (holding its head) collects and checks.
    #[inline]
    pub(crate) fn collecting(
        body: B,
        read: Box<BodyRead>,
        inner: S,
        shared: Arc<Shared<R>>,
    ) -> Self {
        Self {
            state: State::Collecting {
                body,
                collecting: Some(Collecting {
                    inner,
                    read,
                    shared,
                }),
                deadline: BodyDeadline::new(),
            },
        }
    }
}

impl<S, B, R, ResBody> Future for GuardFuture<S, B, R>
where
    S: Service<Request<GuardedBody<B>>, Response = Response<ResBody>> + Clone,
    B: Body<Data = Bytes>,
    ResBody: From<Bytes>,
    R: Reject,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Collecting {
                    body,
                    collecting,
                    deadline,
                } => {
                    let progress = collecting
                        .as_mut()
                        .expect("the collecting state always holds its data until it ends");
                    let outcome = match poll_collect(body, progress, cx) {
                        Poll::Ready(outcome) => outcome,
                        Poll::Pending if deadline.expired(cx, progress.shared.body_timeout) => {
                            Err(AuthErrorKind::BodyTimeout)
                        }
                        Poll::Pending => return Poll::Pending,
                    };
                    let Collecting {
                        inner,
                        mut read,
                        shared,
                    } = collecting
                        .take()
                        .expect("the collecting state always holds its data until it ends");
                    let (body, trailers) = read.take_body();
                    let challenges = shared.challenges;
                    let verified = outcome
                        .map_err(|kind| AuthError::new(kind, challenges))
                        .and_then(|()| read.check.finish(&body, &shared.authenticator, challenges));
                    // The head is changed where it lies and taken out of the read once, into
                    // the request: each move of it is a copy of some 200 bytes.
                    let parts = read.head_mut();
                    match verified {
                        Ok((caller, owed)) => {
                            let owed = shared.owed(parts, &caller, owed);
                            parts.extensions.insert(shared.accepted(caller));
                            if owed.is_empty() {
                                // Nothing owed (so no rate limit either): the service's
                                // future is built where it runs.
                                let path = LoggedPath::of(&parts.uri);
                                let mut inner = inner;
                                state.set(State::Calling {
                                    future: inner.call(Request::from_parts(
                                        read.take_head(),
                                        GuardedBody::buffered(body, trailers),
                                    )),
                                    answering: Some(Answering {
                                        shared,
                                        path,
                                        recorded: None,
                                        rate: None,
                                    }),
                                });
                                continue;
                            }
                            let request = Request::from_parts(
                                read.take_head(),
                                GuardedBody::buffered(body, trailers),
                            );
                            state.set(checked_or_called(
                                owed.into_stack(),
                                request,
                                inner,
                                shared,
                                None,
                            ));
                        }
                        Err(error) => {
                            let mut next = refuse_counting(parts, error, &shared);
                            state.set(std::mem::replace(
                                &mut next.state,
                                State::Refused { response: None },
                            ));
                        }
                    }
                }
                StateProj::Limiting { store, waiting } => {
                    let answer = ready!(Pin::new(store).poll(cx));
                    let Waiting {
                        mut parts,
                        body,
                        inner,
                        shared,
                    } = *waiting.take().expect("future polled after completion");
                    let limit = shared
                        .failures
                        .as_ref()
                        .expect("only a guard with a failure limit looks one up");
                    if let Some(charged_in) = answer.as_ref().ok().and_then(|state| state.charged) {
                        parts
                            .extensions
                            .insert(crate::limit::ChargedAttempt(charged_in));
                    }
                    let mut next = match limit.refusal(answer, shared.challenges) {
                        Some(error) => {
                            GuardFuture::refused(shared.respond(parts.uri.path(), error))
                        }
                        None => {
                            let inspection = shared.authenticator.inspect(&parts);
                            dispatch(inspection, parts, body, ReadyInner::Owned(inner), &shared)
                        }
                    };
                    let decided =
                        std::mem::replace(&mut next.state, State::Refused { response: None });
                    state.set(decided);
                }
                StateProj::Recording { store, response } => {
                    if let Err(error) = ready!(Pin::new(store).poll(cx)) {
                        tracing::error!(%error, "callguard could not count a failed attempt");
                    }
                    let response = response.take().expect("future polled after completion");
                    state.set(State::Refused { response: None });
                    return Poll::Ready(Ok(response));
                }
                StateProj::Remembering { store, remembering } => {
                    let answer = ready!(Pin::new(store).poll(cx));
                    let Remembering {
                        request,
                        inner,
                        shared,
                        policy,
                        refuse_on,
                        refusal,
                        rate,
                        then,
                        records,
                        finish_when_dropped: _,
                    } = *remembering.take().expect("future polled after completion");
                    // A replay step (`refuse_on` false) made a record only when the store
                    // said the key was new; a record from an earlier step exists already.
                    let records = if refuse_on {
                        records
                    } else {
                        records.filter(|_| matches!(answer, Ok(true)))
                    };
                    let refusal = match answer {
                        Ok(answer) if answer == refuse_on => Some(refusal),
                        Ok(_) => None,
                        Err(error) if policy == ReplayPolicy::FailOpen => {
                            tracing::warn!(%error, "callguard accepted a request its store could not answer for (failing open)");
                            None
                        }
                        Err(error) => {
                            tracing::error!(%error, "callguard refused a request its store could not answer for");
                            Some(AuthErrorKind::StoreUnavailable)
                        }
                    };
                    let mut request = request;
                    if refusal.is_none()
                        && let Some((answered, quota, period)) = &rate
                        && let Some(answer) = answered.get()
                    {
                        request
                            .extensions_mut()
                            .insert(crate::limit::RateStatus::new(*quota, *period, *answer));
                    }
                    match refusal {
                        None => state.set(checked_or_called(then, request, inner, shared, records)),
                        Some(kind) => {
                            let mut error = AuthError::new(kind, shared.challenges);
                            if let (AuthErrorKind::RateLimited, Some((answered, quota, period))) =
                                (kind, &rate)
                            {
                                let wait = answered
                                    .get()
                                    .map_or(1, |state| state.retry_after_ms.div_ceil(1000).max(1));
                                error = error
                                    .with_retry_after(wait)
                                    .with_rate_policy(*quota, *period);
                            }
                            let response = shared.respond(request.uri().path(), error);
                            // Refused after an earlier step recorded the delivery (its rate
                            // limit, say): release it, so that the retry is not a replay.
                            state.set(match records {
                                Some(recorded) => State::Releasing {
                                    store: recorded.store.release(recorded.key, recorded.record),
                                    output: Some(Ok(response)),
                                },
                                None => State::Refused {
                                    response: Some(response),
                                },
                            });
                        }
                    }
                }
                StateProj::Inspecting { pending, waiting } => {
                    let inspection = ready!(pending.as_mut().poll(cx));
                    let Waiting {
                        parts,
                        body,
                        inner,
                        shared,
                    } = *waiting.take().expect("future polled after completion");
                    let mut next =
                        dispatch(inspection, parts, body, ReadyInner::Owned(inner), &shared);
                    // Take the decided state out, leaving one with nothing to release.
                    let decided =
                        std::mem::replace(&mut next.state, State::Refused { response: None });
                    state.set(decided);
                }
                StateProj::Calling { future, answering } => {
                    let mut output = ready!(future.poll(cx));
                    let Answering {
                        shared,
                        path,
                        recorded,
                        rate,
                    } = answering.take().expect("future polled after completion");
                    #[cfg(feature = "dpop")]
                    if let Ok(response) = &mut output
                        && let Some(nonce) = shared.dpop_nonce()
                    {
                        // A nonce the service set itself stands.
                        response
                            .headers_mut()
                            .entry(http::HeaderName::from_static("dpop-nonce"))
                            .or_insert(nonce);
                    }
                    if let (Ok(response), Some(rate)) = (&mut output, rate) {
                        for (name, value) in rate.fields() {
                            if let Ok(value) = http::HeaderValue::try_from(value) {
                                response.headers_mut().entry(name).or_insert(value);
                            }
                        }
                    }
                    if let Ok(response) = &mut output
                        && response
                            .extensions_mut()
                            .remove::<DefaultRendered>()
                            .is_some()
                        && let Some(error) = response.extensions_mut().remove::<AuthError>()
                    {
                        *response = shared.respond(path.as_str(), error);
                    }
                    let release = recorded.filter(|recorded| match &output {
                        Ok(response) => (recorded.release_on)(response.status()),
                        Err(_) => true,
                    });
                    let Some(recorded) = release else {
                        return Poll::Ready(output);
                    };
                    state.set(State::Releasing {
                        store: recorded.store.release(recorded.key, recorded.record),
                        output: Some(output),
                    });
                }
                StateProj::Releasing { store, output } => {
                    if let Err(error) = ready!(Pin::new(store).poll(cx)) {
                        tracing::error!(%error, "callguard could not release a delivery the service failed; its retry will be refused as a replay");
                    }
                    let output = output.take().expect("future polled after completion");
                    // Done: nothing is left for a drop to release.
                    state.set(State::Refused { response: None });
                    return Poll::Ready(output);
                }
                StateProj::Refused { response } => {
                    return Poll::Ready(Ok(response
                        .take()
                        .expect("future polled after completion")));
                }
            }
        }
    }
}

/// Read frames until the body ends, feeding each data frame to the check and the buffer.
fn poll_collect<B, S, R>(
    body: Pin<&mut B>,
    progress: &mut Collecting<S, R>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), AuthErrorKind>>
where
    B: Body<Data = Bytes>,
{
    super::body::poll_collect(body, &mut *progress.read, progress.shared.body_limit, cx)
}

/// Refuse the request for `error`; a failed attempt (a credential presented and wrong) of a
/// guard with a failure limit is counted first, so the client's next attempts see it.
pub(crate) fn refuse_counting<S, B, R, ResBody>(
    parts: &Parts,
    error: AuthError,
    shared: &Arc<Shared<R>>,
) -> GuardFuture<S, B, R>
where
    S: Service<Request<GuardedBody<B>>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
    R: Reject,
{
    let charged = parts
        .extensions
        .get::<crate::limit::ChargedAttempt>()
        .map(|charged| charged.0);
    let counted = shared.failures.as_ref().and_then(|limit| {
        let client = crate::ClientAddr::of(parts)?;
        if error.kind().is_failed_attempt() {
            Some(limit.record(client, limit.account_of(parts), charged))
        } else {
            charged.map(|charged_in| limit.refund(client, charged_in))
        }
    });
    let response = shared.respond(parts.uri.path(), error);
    match counted {
        None => GuardFuture::refused(response),
        Some(mut store) => match store.now() {
            Some(Err(error)) => {
                tracing::error!(%error, "callguard could not count a failed attempt");
                GuardFuture::refused(response)
            }
            Some(Ok(_)) => GuardFuture::refused(response),
            None => GuardFuture::recording(store, response),
        },
    }
}
