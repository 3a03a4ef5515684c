//! The per-tool scope layer: reads an MCP `tools/call` request (bounded), and answers 403
//! naming the tool's scopes when the caller lacks one, before the MCP server runs.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::caller::Caller;
use crate::error::{AuthError, AuthErrorKind, Challenges, ConfigError, check_token_text};
use crate::guard::{BodyBuffer, Collect, GuardedBody, poll_collect};
use crate::reject::{ProblemDetails, Reject, respond};
use crate::rejection_log::RejectionLog;
use crate::scope::AnonymousPass;

/// Each configured tool's name and the scopes calling it requires.
type ToolTable = HashMap<Box<str>, Arc<[Box<str>]>>;

/// Requires, for `tools/call` of each configured tool, the scopes configured for it.
///
/// The layer reads the body of `POST` requests (up to [`body_limit`](Self::body_limit),
/// 413 beyond) in one scan that keeps only `method` and `params.name`, and hands the body on
/// byte for byte. A `tools/call` of a configured tool by a caller lacking one of its scopes
/// is answered 403 `insufficient_scope` naming all of them. Everything else passes: other
/// methods, tools without configured scopes, notifications, batches (a JSON array), and
/// bodies that are not JSON at all, which the MCP server answers itself. A JSON object that
/// does not read as one request (a member named twice, `name` not a string) is refused
/// with 400 rather than left for the server to read differently.
#[must_use]
#[derive(Debug, Clone)]
pub struct ToolScopesLayer<R = ProblemDetails> {
    tools: Arc<ToolTable>,
    body_limit: usize,
    responder: R,
    log: RejectionLog,
}

impl ToolScopesLayer {
    /// No tool scopes yet; a 1 MiB body limit.
    pub fn new() -> Self {
        Self {
            tools: Arc::default(),
            body_limit: crate::DEFAULT_BODY_LIMIT,
            responder: ProblemDetails::default(),
            log: RejectionLog::new("mcp-tools"),
        }
    }
}

impl Default for ToolScopesLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<R> ToolScopesLayer<R> {
    /// Calling tool `name` requires every one of `scopes`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] for an empty list, or a scope or name that is empty or
    /// not printable.
    pub fn tool<S: AsRef<str>>(
        self,
        name: &str,
        scopes: impl IntoIterator<Item = S>,
    ) -> Result<Self, ConfigError> {
        check_token_text(name, "tool name")?;
        let scopes: Vec<Box<str>> = scopes.into_iter().map(|s| Box::from(s.as_ref())).collect();
        if scopes.is_empty() {
            return Err(ConfigError::InvalidValue { field: "scope" });
        }
        for scope in &scopes {
            check_token_text(scope, "scope")?;
            if scope.contains(' ') {
                return Err(ConfigError::InvalidValue { field: "scope" });
            }
        }
        let mut tools = HashMap::clone(&self.tools);
        tools.insert(name.into(), scopes.into());
        Ok(Self {
            tools: Arc::new(tools),
            ..self
        })
    }

    /// The most body bytes read (default 1 MiB); a longer body is 413.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Build refusals with `responder` (for example one with `resource_metadata`).
    pub fn on_reject<R2: Reject>(self, responder: R2) -> ToolScopesLayer<R2> {
        ToolScopesLayer {
            tools: self.tools,
            body_limit: self.body_limit,
            responder,
            log: self.log,
        }
    }
}

impl<S, R: Clone> Layer<S> for ToolScopesLayer<R> {
    type Service = ToolScopes<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        ToolScopes {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`ToolScopesLayer`].
#[derive(Debug, Clone)]
pub struct ToolScopes<S, R = ProblemDetails> {
    inner: S,
    layer: ToolScopesLayer<R>,
}

impl<S, R, B, ResBody> Service<Request<B>> for ToolScopes<S, R>
where
    S: Service<Request<GuardedBody<B>>, Response = Response<ResBody>> + Clone,
    B: Body<Data = Bytes>,
    ResBody: From<Bytes>,
    R: Reject,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ToolScopesFuture<S, B, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (parts, body) = request.into_parts();
        if parts.method != http::Method::POST || self.layer.tools.is_empty() {
            let request = Request::from_parts(parts, GuardedBody::streaming(body));
            return ToolScopesFuture {
                state: State::Calling {
                    future: self.inner.call(request),
                },
            };
        }
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ToolScopesFuture {
            state: State::Reading {
                body,
                reading: Some(Box::new(Reading {
                    parts,
                    inner,
                    layer: self.layer.clone(),
                    collected: Collected {
                        buffer: BodyBuffer::new(0),
                        trailers: None,
                    },
                })),
            },
        }
    }
}

/// The body so far.
struct Collected {
    buffer: BodyBuffer,
    trailers: Option<HeaderMap>,
}

impl Collect for Collected {
    fn collected(&self) -> usize {
        self.buffer.len()
    }

    fn data(&mut self, data: Bytes) {
        self.buffer.push(data);
    }

    fn trailers(&mut self, trailers: HeaderMap) {
        self.trailers
            .get_or_insert_with(HeaderMap::new)
            .extend(trailers);
    }
}

/// What the reading state owns besides the body.
struct Reading<S, R> {
    parts: Parts,
    inner: S,
    layer: ToolScopesLayer<R>,
    collected: Collected,
}

pin_project! {
    /// The response future of [`ToolScopes`].
    pub struct ToolScopesFuture<S, B, R>
    where
        S: Service<Request<GuardedBody<B>>>,
    {
        #[pin]
        state: State<B, S::Future, Box<Reading<S, R>>, S::Response>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<B, F, G, Rsp> {
        Reading { #[pin] body: B, reading: Option<G> },
        Calling { #[pin] future: F },
        Refused { response: Option<Rsp> },
    }
}

impl<S, B, R, ResBody> Future for ToolScopesFuture<S, B, R>
where
    S: Service<Request<GuardedBody<B>>, Response = Response<ResBody>>,
    B: Body<Data = Bytes>,
    ResBody: From<Bytes>,
    R: Reject,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Reading { body, reading } => {
                    let progress = reading
                        .as_mut()
                        .expect("the reading state holds its data until it ends");
                    let limit = progress.layer.body_limit;
                    let outcome = ready!(poll_collect(body, &mut progress.collected, limit, cx));
                    let Reading {
                        parts,
                        mut inner,
                        layer,
                        collected,
                    } = *reading
                        .take()
                        .expect("the reading state holds its data until it ends");
                    let bytes = collected.buffer.into_bytes();
                    let refusal = match outcome {
                        Err(kind) => Some(AuthError::new(kind, Challenges::default())),
                        Ok(()) => layer.refusal(&parts, &bytes),
                    };
                    match refusal {
                        Some(error) => {
                            let response =
                                respond(&layer.responder, &layer.log, parts.uri.path(), error);
                            state.set(State::Refused {
                                response: Some(response),
                            });
                        }
                        None => {
                            let body = GuardedBody::buffered(bytes, collected.trailers);
                            state.set(State::Calling {
                                future: inner.call(Request::from_parts(parts, body)),
                            });
                        }
                    }
                }
                StateProj::Calling { future } => return future.poll(cx),
                StateProj::Refused { response } => {
                    return Poll::Ready(Ok(response
                        .take()
                        .expect("future polled after completion")));
                }
            }
        }
    }
}

impl<S, B, R> std::fmt::Debug for ToolScopesFuture<S, B, R>
where
    S: Service<Request<GuardedBody<B>>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ToolScopesFuture")
    }
}

/// The parts of a JSON-RPC request the layer reads; everything else is skipped unparsed.
#[derive(serde::Deserialize)]
struct JsonRpcCall<'a> {
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    params: Option<CallParams<'a>>,
}

#[derive(serde::Deserialize)]
struct CallParams<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
}

/// What one scan of the body says.
enum Read<'a> {
    /// A `tools/call` of this tool.
    ToolCall(Cow<'a, str>),
    /// Anything the layer lets through: another method, a batch, not JSON.
    PassThrough,
    /// JSON that does not read as one request.
    Ambiguous,
}

fn read(body: &[u8]) -> Read<'_> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Read::PassThrough;
    }
    match serde_json::from_slice::<JsonRpcCall<'_>>(body) {
        Ok(JsonRpcCall {
            method: Some(method),
            params: Some(CallParams { name: Some(name) }),
        }) if method == "tools/call" => Read::ToolCall(name),
        Ok(JsonRpcCall { method, .. }) if method.as_deref() == Some("tools/call") => {
            Read::Ambiguous
        }
        Ok(_) => Read::PassThrough,
        // Not JSON at all: the MCP server answers it. JSON that failed to read (a member
        // named twice, a name that is not a string) is refused.
        Err(error) if error.is_syntax() || error.is_eof() => Read::PassThrough,
        Err(_) => Read::Ambiguous,
    }
}

impl<R> ToolScopesLayer<R> {
    /// The refusal a request's caller and body earn, if any.
    fn refusal(&self, parts: &Parts, body: &[u8]) -> Option<AuthError> {
        let name = match read(body) {
            Read::PassThrough => return None,
            Read::Ambiguous => {
                return Some(AuthError::new(
                    AuthErrorKind::AmbiguousRequest,
                    Challenges::default(),
                ));
            }
            Read::ToolCall(name) => name,
        };
        let required = self.tools.get(&*name)?;
        match parts.extensions.get::<Caller>() {
            Some(caller) => caller.require_scopes(required.iter().map(|s| &**s)).err(),
            None => Some(match parts.extensions.get::<AnonymousPass>() {
                Some(AnonymousPass(challenges)) => {
                    AuthError::new(AuthErrorKind::MissingCredentials, *challenges)
                }
                None => AuthError::new(AuthErrorKind::GuardMissing, Challenges::default()),
            }),
        }
    }
}
