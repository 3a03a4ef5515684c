//! The per-tool scope layer: reads an MCP `tools/call`, `prompts/get` or `resources/read`
//! request (bounded), and answers 403 naming the scopes its rule needs when the caller
//! lacks them, before the MCP server runs.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::caller::Caller;
use crate::error::{AuthError, AuthErrorKind, Challenges, ConfigError, check_token_text};
use crate::guard::ReadyInner;
use crate::guard::deadline::BodyDeadline;
use crate::guard::{BodyBuffer, Collect, GuardedBody, poll_collect};
use crate::json::Text;
use crate::reject::{ProblemDetails, Reject, respond};
use crate::rejection_log::RejectionLog;
use crate::scope::AnonymousPass;

/// What a rule is for: what an MCP request names, by the method that names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Named {
    /// `tools/call` of `params.name`.
    Tool,
    /// `prompts/get` of `params.name`.
    Prompt,
    /// `resources/read` of `params.uri`.
    Resource,
}

impl Named {
    fn of_method(method: &str) -> Option<Self> {
        match method {
            "tools/call" => Some(Self::Tool),
            "prompts/get" => Some(Self::Prompt),
            "resources/read" => Some(Self::Resource),
            _ => None,
        }
    }

    fn field(self) -> &'static str {
        match self {
            Self::Tool => "tool name",
            Self::Prompt => "prompt name",
            Self::Resource => "resource uri",
        }
    }
}

/// A rule's scopes: every one of `all`, and, when `any` has some, at least one of them.
#[derive(Debug)]
struct Rule {
    all: Box<[Box<str>]>,
    any: Box<[Box<str>]>,
}

impl Rule {
    /// The scopes a caller holding `has` lacks, as a challenge names them: the missing ones
    /// of `all`, and the first of `any` when it holds none of them.
    fn missing(&self, has: impl Fn(&str) -> bool) -> impl Iterator<Item = &str> {
        let any_missing = !self.any.is_empty() && !self.any.iter().any(|scope| has(scope));
        let all: Vec<&str> = self.all.iter().map(|s| &**s).filter(|s| !has(s)).collect();
        all.into_iter()
            .chain(self.any.first().map(|s| &**s).filter(|_| any_missing))
    }
}

/// Each configured rule, by what it is for and the name (or URI) it names.
type ToolTable = HashMap<(Named, Box<str>), Arc<Rule>>;

/// Requires, for `tools/call` of each configured tool, `prompts/get` of each configured
/// prompt and `resources/read` of each configured resource URI, the scopes configured for
/// it: every one of them ([`tool`](Self::tool)), or any one of several
/// ([`tool_any_of`](Self::tool_any_of)).
///
/// The layer reads the body of `POST` requests (up to [`body_limit`](Self::body_limit),
/// 413 beyond) in one scan that keeps only `method`, `params.name` and `params.uri`, and
/// hands the body on byte for byte. A call of a configured name by a caller its rule does
/// not admit is answered 403 `insufficient_scope` naming the rule's scopes (the first of an
/// any-of rule); in a batch (a JSON array), every element is checked and the challenge names
/// everything the batch's rules need. Other methods, names without rules and notifications
/// pass.
///
/// The same scan checks MCP 2026-07-28's routing headers: `Mcp-Method` must be the body's
/// `method`, `Mcp-Name` its `params.name` (`tools/call`, `prompts/get`) or `params.uri`
/// (`resources/read`), also in the `=?base64?…?=` form, and `MCP-Protocol-Version` the
/// version `params._meta` names when it names one; from version 2026-07-28 on, the method
/// header, and the name header of a method that names something, are required; a batch
/// carries none. A request whose headers disagree, repeat, are malformed or are missing is
/// answered 400 with a JSON-RPC error -32020 naming the header and echoing the request's
/// `id` ([`AuthErrorKind::HeaderMismatch`](crate::AuthErrorKind::HeaderMismatch)). A layer
/// with no tool rules reads the body only when a routing header is present.
///
/// # Security
///
/// The layer never reads a body more leniently than the server behind it, and never hands
/// on what it could not read: once it has any tool rule, a `POST` that is not one JSON text
/// serde_json reads whole as requests (a byte-order mark, UTF-16 or UTF-32, `NaN`, trailing
/// bytes, a member named twice, not JSON at all) or that names a `charset` other than UTF-8
/// is refused with 400 and a JSON-RPC parse error (-32700); lenient servers (the Python MCP
/// SDK among them) read some such bodies as a `tools/call`. A `tools/call` whose `name` is
/// not a string, and a body with a `Content-Encoding` (which would read differently once
/// decoded), are 400 as well. A body that stalls is 408 after the timeout, as in the guard.
#[must_use]
#[derive(Debug, Clone)]
pub struct ToolScopesLayer<R = ProblemDetails> {
    tools: Arc<ToolTable>,
    body_limit: usize,
    body_timeout: Option<std::time::Duration>,
    responder: R,
    log: RejectionLog,
}

impl ToolScopesLayer {
    /// No tool scopes yet; a 1 MiB body limit.
    pub fn new() -> Self {
        Self {
            tools: Arc::default(),
            body_limit: crate::guard::DEFAULT_BODY_LIMIT,
            body_timeout: cfg!(feature = "timeout").then_some(crate::guard::DEFAULT_BODY_TIMEOUT),
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
        self.rule(Named::Tool, name, scopes, None::<[&str; 0]>)
    }

    /// Calling tool `name` requires at least one of `scopes` (a read scope or a write scope,
    /// say); a refusal's challenge names the first.
    ///
    /// # Errors
    ///
    /// As [`tool`](Self::tool).
    pub fn tool_any_of<S: AsRef<str>>(
        self,
        name: &str,
        scopes: impl IntoIterator<Item = S>,
    ) -> Result<Self, ConfigError> {
        self.rule(Named::Tool, name, [] as [&str; 0], Some(scopes))
    }

    /// Getting prompt `name` (`prompts/get`) requires every one of `scopes`.
    ///
    /// # Errors
    ///
    /// As [`tool`](Self::tool).
    pub fn prompt<S: AsRef<str>>(
        self,
        name: &str,
        scopes: impl IntoIterator<Item = S>,
    ) -> Result<Self, ConfigError> {
        self.rule(Named::Prompt, name, scopes, None::<[&str; 0]>)
    }

    /// Getting prompt `name` requires at least one of `scopes`.
    ///
    /// # Errors
    ///
    /// As [`tool`](Self::tool).
    pub fn prompt_any_of<S: AsRef<str>>(
        self,
        name: &str,
        scopes: impl IntoIterator<Item = S>,
    ) -> Result<Self, ConfigError> {
        self.rule(Named::Prompt, name, [] as [&str; 0], Some(scopes))
    }

    /// Reading resource `uri` (`resources/read`, compared exactly) requires every one of
    /// `scopes`.
    ///
    /// # Errors
    ///
    /// As [`tool`](Self::tool).
    pub fn resource<S: AsRef<str>>(
        self,
        uri: &str,
        scopes: impl IntoIterator<Item = S>,
    ) -> Result<Self, ConfigError> {
        self.rule(Named::Resource, uri, scopes, None::<[&str; 0]>)
    }

    /// Reading resource `uri` requires at least one of `scopes`.
    ///
    /// # Errors
    ///
    /// As [`tool`](Self::tool).
    pub fn resource_any_of<S: AsRef<str>>(
        self,
        uri: &str,
        scopes: impl IntoIterator<Item = S>,
    ) -> Result<Self, ConfigError> {
        self.rule(Named::Resource, uri, [] as [&str; 0], Some(scopes))
    }

    /// The rule for `name`: every one of `all`, and one of `any` when given.
    pub(crate) fn rule<S: AsRef<str>, T: AsRef<str>>(
        self,
        named: Named,
        name: &str,
        all: impl IntoIterator<Item = S>,
        any: Option<impl IntoIterator<Item = T>>,
    ) -> Result<Self, ConfigError> {
        check_token_text(name, named.field())?;
        let all: Vec<Box<str>> = all.into_iter().map(|s| Box::from(s.as_ref())).collect();
        let any_given = any.is_some();
        let any: Vec<Box<str>> = any
            .into_iter()
            .flatten()
            .map(|s| Box::from(s.as_ref()))
            .collect();
        if (all.is_empty() && any.is_empty()) || (any_given && any.is_empty()) {
            return Err(ConfigError::InvalidValue { field: "scope" });
        }
        for scope in all.iter().chain(&any) {
            check_token_text(scope, "scope")?;
            if scope.contains(' ') {
                return Err(ConfigError::InvalidValue { field: "scope" });
            }
        }
        let mut tools = HashMap::clone(&self.tools);
        let rule = Rule {
            all: all.into(),
            any: any.into(),
        };
        tools.insert((named, name.into()), Arc::new(rule));
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

    /// Give up on a body still arriving `timeout` after it first stalled (408; default
    /// 30 s, with feature `timeout`), as the guard does.
    #[cfg(feature = "timeout")]
    pub fn body_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.body_timeout = Some(timeout);
        self
    }

    /// Build refusals with `responder` (for example one with `resource_metadata`).
    pub fn on_reject<R2: Reject>(self, responder: R2) -> ToolScopesLayer<R2> {
        ToolScopesLayer {
            tools: self.tools,
            body_limit: self.body_limit,
            body_timeout: self.body_timeout,
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

impl<S, R> ToolScopes<S, R> {
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
        let must_read = !self.layer.tools.is_empty() || super::headers::any_present(&parts.headers);
        if parts.method != http::Method::POST || !must_read {
            let request = Request::from_parts(parts, GuardedBody::streaming(body));
            return ToolScopesFuture {
                state: State::Calling {
                    future: self.inner.call(request),
                },
            };
        }
        let inner = ReadyInner::Borrowed(&mut self.inner).into_owned();
        ToolScopesFuture {
            state: State::Reading {
                body,
                deadline: BodyDeadline::new(),
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
    trailers: Option<Box<HeaderMap>>,
}

impl Collect for Collected {
    fn collected(&self) -> usize {
        self.buffer.len()
    }

    fn data(&mut self, data: Bytes) {
        self.buffer.push(data);
    }

    fn trailers(&mut self, trailers: HeaderMap) {
        self.trailers.get_or_insert_default().extend(trailers);
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
        Reading { #[pin] body: B, reading: Option<G>, deadline: BodyDeadline },
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
                StateProj::Reading {
                    body,
                    reading,
                    deadline,
                } => {
                    let progress = reading
                        .as_mut()
                        .expect("the reading state holds its data until it ends");
                    let limit = progress.layer.body_limit;
                    let outcome = match poll_collect(body, &mut progress.collected, limit, cx) {
                        Poll::Ready(outcome) => outcome,
                        Poll::Pending if deadline.expired(cx, progress.layer.body_timeout) => {
                            Err(AuthErrorKind::BodyTimeout)
                        }
                        Poll::Pending => return Poll::Pending,
                    };
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
                        Err(kind) => {
                            Some(Refusal::Auth(AuthError::new(kind, Challenges::default())))
                        }
                        Ok(()) => layer.refusal(&parts, &bytes),
                    };
                    match refusal {
                        Some(Refusal::Unreadable(error)) => {
                            let response = parse_error(&layer.log, parts.uri.path(), error);
                            state.set(State::Refused {
                                response: Some(response),
                            });
                        }
                        Some(Refusal::HeaderMismatch { header, id }) => {
                            let response =
                                header_mismatch(&layer.log, parts.uri.path(), header, id.as_ref());
                            state.set(State::Refused {
                                response: Some(response),
                            });
                        }
                        Some(Refusal::Auth(error)) => {
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

/// The parts of a JSON-RPC request the layer reads; everything else is skipped, its strings
/// checked as serde_json checks them (see `crate::json`), so nothing the layer reads is
/// refused by a serde_json server, and nothing it passes would be read by one as more.
struct JsonRpcCall<'a> {
    method: Option<Cow<'a, str>>,
    params: Option<CallParams<'a>>,
    /// Echoed in a header-mismatch error.
    id: Option<serde_json::Value>,
}

#[derive(Default)]
struct CallParams<'a> {
    name: Option<Cow<'a, str>>,
    uri: Option<Cow<'a, str>>,
    /// `_meta["io.modelcontextprotocol/protocolVersion"]`.
    protocol_version: Option<Cow<'a, str>>,
}

impl<'de> serde::Deserialize<'de> for JsonRpcCall<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Call;
        impl<'de> serde::de::Visitor<'de> for Call {
            type Value = JsonRpcCall<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON-RPC request object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<JsonRpcCall<'de>, A::Error> {
                let mut call = JsonRpcCall {
                    method: None,
                    params: None,
                    id: None,
                };
                crate::json::read_object(map, &["method", "params", "id"], |key, map| {
                    match key {
                        "method" => {
                            call.method = map.next_value::<Option<Text<'de>>>()?.map(|t| t.0);
                        }
                        "id" => call.id = map.next_value::<Option<serde_json::Value>>()?,
                        _ => call.params = map.next_value::<Option<CallParams<'de>>>()?,
                    }
                    Ok(true)
                })?;
                Ok(call)
            }
        }
        deserializer.deserialize_map(Call)
    }
}

impl<'de> serde::Deserialize<'de> for CallParams<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Params;
        impl<'de> serde::de::Visitor<'de> for Params {
            type Value = CallParams<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON-RPC params")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<CallParams<'de>, A::Error> {
                let mut params = CallParams::default();
                crate::json::read_object(map, &["name", "uri", "_meta"], |key, map| {
                    match key {
                        "name" => {
                            params.name = map.next_value::<Option<Text<'de>>>()?.map(|t| t.0);
                        }
                        "uri" => {
                            params.uri = map.next_value::<Option<Text<'de>>>()?.map(|t| t.0);
                        }
                        _ => {
                            params.protocol_version = map
                                .next_value::<Option<Meta<'de>>>()?
                                .and_then(|meta| meta.0);
                        }
                    }
                    Ok(true)
                })?;
                Ok(params)
            }

            // By-position params name no tool: skipped, checked.
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<CallParams<'de>, A::Error> {
                while seq.next_element::<crate::json::Checked>()?.is_some() {}
                Ok(CallParams::default())
            }
        }
        deserializer.deserialize_any(Params)
    }
}

/// `params._meta`, read for the protocol version it may carry.
struct Meta<'a>(Option<Cow<'a, str>>);

/// The `_meta` member naming the request's protocol version (MCP 2026-07-28).
const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

impl<'de> serde::Deserialize<'de> for Meta<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MetaVisitor;
        impl<'de> serde::de::Visitor<'de> for MetaVisitor {
            type Value = Meta<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a _meta object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Meta<'de>, A::Error> {
                let mut version = None;
                crate::json::read_object(map, &[META_PROTOCOL_VERSION], |_, map| {
                    version = map.next_value::<Option<Text<'de>>>()?.map(|t| t.0);
                    Ok(true)
                })?;
                Ok(Meta(version))
            }
        }
        deserializer.deserialize_map(MetaVisitor)
    }
}

/// One scan of a `POST` body: one request, or a batch (a JSON array); `None` when it is
/// not one JSON text serde_json reads as requests, which is refused, because a more
/// lenient reader further in (a BOM, UTF-16, `NaN`) may read a `tools/call` in it.
enum Parsed<'a> {
    One(JsonRpcCall<'a>),
    Batch(Vec<JsonRpcCall<'a>>),
}

impl<'a> Parsed<'a> {
    fn calls(&self) -> &[JsonRpcCall<'a>] {
        match self {
            Self::One(call) => std::slice::from_ref(call),
            Self::Batch(calls) => calls,
        }
    }
}

fn parse(body: &[u8]) -> Option<Parsed<'_>> {
    // The first byte after JSON's own whitespace says which shape to read, so the body is
    // scanned once, into nothing but the fields the layer needs. Anything serde_json does
    // not read whole (a member named twice included) is unreadable.
    match body
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        Some(b'{') => serde_json::from_slice(body).ok().map(Parsed::One),
        Some(b'[') => serde_json::from_slice(body).ok().map(Parsed::Batch),
        _ => None,
    }
}

/// What the requests name that a rule may be for.
enum ToolCalls<'a> {
    /// `tools/call`s, `prompts/get`s and `resources/read`s of these (one, or several in a
    /// batch).
    Named(Vec<(Named, &'a str)>),
    /// Requests that name nothing a rule is for: other methods, notifications, responses.
    None,
    /// A request whose name (or URI) cannot be read (missing, or not a string).
    Ambiguous,
}

fn tool_calls<'a>(calls: &'a [JsonRpcCall<'_>]) -> ToolCalls<'a> {
    let mut tools = Vec::new();
    for call in calls {
        let Some(named) = call.method.as_deref().and_then(Named::of_method) else {
            continue;
        };
        let params = call.params.as_ref();
        let name = match named {
            Named::Tool | Named::Prompt => params.and_then(|params| params.name.as_deref()),
            Named::Resource => params.and_then(|params| params.uri.as_deref()),
        };
        match name {
            Some(name) => tools.push((named, name)),
            None => return ToolCalls::Ambiguous,
        }
    }
    if tools.is_empty() {
        ToolCalls::None
    } else {
        ToolCalls::Named(tools)
    }
}

/// Whether the request's `Content-Type` names a charset other than UTF-8 (JSON is UTF-8,
/// RFC 8259 §8.1; a server that honours another charset reads other text than the layer).
fn names_another_charset(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(http::header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        // None: nothing names a charset. Several: which one a server honours is unknown.
        return headers.contains_key(http::header::CONTENT_TYPE);
    };
    let Ok(value) = value.to_str() else {
        return true;
    };
    value.split(';').skip(1).any(|parameter| {
        let Some((name, charset)) = parameter.split_once('=') else {
            return false;
        };
        let charset = charset.trim();
        let charset = charset
            .strip_prefix('"')
            .and_then(|c| c.strip_suffix('"'))
            .unwrap_or(charset);
        name.trim().eq_ignore_ascii_case("charset") && !charset.eq_ignore_ascii_case("utf-8")
    })
}

/// The JSON-RPC 2.0 answer to a body that cannot be read (`id` is null: none could be read).
const PARSE_ERROR: &[u8] =
    br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#;

/// A refusal of an unreadable body as a JSON-RPC parse error, logged like every refusal and
/// carrying the [`AuthError`] in its extensions.
fn parse_error<ResBody: From<Bytes>>(
    log: &RejectionLog,
    path: &str,
    error: AuthError,
) -> Response<ResBody> {
    log.record(&error, path);
    let mut response = Response::new(ResBody::from(Bytes::from_static(PARSE_ERROR)));
    *response.status_mut() = error.kind().status();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response.extensions_mut().insert(error);
    response
}

/// Why the layer refuses a request.
enum Refusal {
    /// Through the guard's rejection path (403, 400, 413, 408).
    Auth(AuthError),
    /// A JSON-RPC parse error (-32700).
    Unreadable(AuthError),
    /// A JSON-RPC header-mismatch error (-32020) naming the header, with the request's id.
    HeaderMismatch {
        header: &'static str,
        id: Option<serde_json::Value>,
    },
}

/// The JSON-RPC error code of a request whose routing headers disagree with its body.
const HEADER_MISMATCH: i32 = -32020;

/// A refusal of a request whose routing headers disagree with its body: 400 with a JSON-RPC
/// error naming the header, logged like every refusal and carrying the [`AuthError`].
fn header_mismatch<ResBody: From<Bytes>>(
    log: &RejectionLog,
    path: &str,
    header: &'static str,
    id: Option<&serde_json::Value>,
) -> Response<ResBody> {
    let error = AuthError::new(AuthErrorKind::HeaderMismatch, Challenges::default());
    log.record(&error, path);
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {
            "code": HEADER_MISMATCH,
            "message": format!("HeaderMismatch: the {header} header does not match the request body"),
            "data": { "header": header },
        },
    });
    let mut response = Response::new(ResBody::from(Bytes::from(body.to_string())));
    *response.status_mut() = error.kind().status();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response.extensions_mut().insert(error);
    response
}

impl<R> ToolScopesLayer<R> {
    /// The refusal a request's caller, headers and body earn, if any.
    fn refusal(&self, parts: &Parts, body: &[u8]) -> Option<Refusal> {
        let ambiguous = || {
            Refusal::Auth(AuthError::new(
                AuthErrorKind::AmbiguousRequest,
                Challenges::default(),
            ))
        };
        // An encoded body reads as something else once decoded further in.
        let encoded = parts
            .headers
            .get_all(http::header::CONTENT_ENCODING)
            .iter()
            .any(|value| !value.as_bytes().eq_ignore_ascii_case(b"identity"));
        if encoded {
            return Some(ambiguous());
        }
        let unreadable = || {
            Refusal::Unreadable(AuthError::new(
                AuthErrorKind::UnreadableJsonRpc,
                Challenges::default(),
            ))
        };
        if names_another_charset(&parts.headers) {
            return Some(unreadable());
        }
        let Some(parsed) = parse(body) else {
            return Some(unreadable());
        };
        let says = match &parsed {
            Parsed::One(call) => {
                let params = call.params.as_ref();
                Some(super::headers::BodySays::new(
                    call.method.as_deref(),
                    params.and_then(|p| p.name.as_deref()),
                    params.and_then(|p| p.uri.as_deref()),
                    params.and_then(|p| p.protocol_version.as_deref()),
                ))
            }
            Parsed::Batch(_) => None,
        };
        if let Some(header) = super::headers::mismatch(&parts.headers, says.as_ref()) {
            // The request's id, echoed in the error (a batch has none to echo).
            let id = match &parsed {
                Parsed::One(call) => call.id.clone(),
                Parsed::Batch(_) => None,
            };
            return Some(Refusal::HeaderMismatch { header, id });
        }
        let names = match tool_calls(parsed.calls()) {
            ToolCalls::None => return None,
            ToolCalls::Ambiguous => return Some(ambiguous()),
            ToolCalls::Named(names) => names,
        };
        let rules: Vec<&Rule> = names
            .iter()
            .filter_map(|(named, name)| self.tools.get(&(*named, Box::from(*name))))
            .map(|rule| &**rule)
            .collect();
        if rules.is_empty() {
            return None;
        }
        let refused = match parts.extensions.get::<Caller>() {
            Some(caller) => {
                // Everything the batch's rules still need, in one challenge.
                let mut missing: Vec<&str> = Vec::new();
                for scope in rules
                    .iter()
                    .flat_map(|rule| rule.missing(|s| caller.has_scope(s)))
                {
                    if !missing.contains(&scope) {
                        missing.push(scope);
                    }
                }
                (!missing.is_empty()).then(|| {
                    // The challenge names the whole requirement of what was refused: every
                    // scope of `all`, and the first of `any` where none was held.
                    let mut needed: Vec<&str> = Vec::new();
                    for rule in &rules {
                        let any_held = rule.any.iter().any(|s| caller.has_scope(s));
                        let first_any = rule.any.first().map(|s| &**s).filter(|_| !any_held);
                        for scope in rule.all.iter().map(|s| &**s).chain(first_any) {
                            if !needed.contains(&scope) {
                                needed.push(scope);
                            }
                        }
                    }
                    AuthError::insufficient_scope(needed.join(" "))
                })
            }
            None => Some(match parts.extensions.get::<AnonymousPass>() {
                Some(AnonymousPass(challenges)) => {
                    AuthError::new(AuthErrorKind::MissingCredentials, *challenges)
                }
                None => AuthError::new(AuthErrorKind::GuardMissing, Challenges::default()),
            }),
        };
        refused.map(Refusal::Auth)
    }
}
