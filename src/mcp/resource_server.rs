//! An MCP server's resource-server role wired in one place: the metadata document, the
//! guard, the scopes every call needs and those of particular tools, from one description.

use tower_layer::{Layer, Stack};

use super::ToolScopesLayer;
use super::tool_scopes::Named;
use crate::error::ConfigError;
use crate::guard::GuardLayer;
use crate::oauth::{AccessTokens, MetadataService, ProtectedResourceMetadata};
use crate::reject::ProblemDetails;
use crate::scope::{RequireScopesLayer, ScopeImplications};

/// Everything an HTTP MCP server needs to be the OAuth resource server the MCP authorization
/// spec asks for, built from one description so no scope is written twice:
///
/// - the RFC 9728 [metadata](Self::metadata) (its `scopes_supported` every scope named
///   here), served at its well-known paths by [`metadata_routes`](Self::metadata_routes);
/// - a [guard](Self::guard) accepting the access tokens, with the implications applied and
///   401 challenges naming `resource_metadata` and the scopes every call needs;
/// - a [scope layer](Self::scope_layer) requiring those scopes of every call;
/// - a [tool layer](Self::tool_layer) requiring, for `tools/call` of each configured tool,
///   those scopes and the tool's own;
///
/// all refusing through the metadata's responder. [`layer`](Self::layer) stacks the three.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, body::Body};
/// use callguard::jwt::JwtKeySet;
/// use callguard::mcp::McpResourceServer;
/// use callguard::oauth::{AccessTokens, Issuer};
/// use http::{Request, StatusCode};
/// use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
/// use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
/// use tower::ServiceExt;
///
/// #[derive(Clone)]
/// struct Tools;
/// impl rmcp::ServerHandler for Tools {}
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// # let keys = JwtKeySet::from_json(br#"{"keys":[]}"#, 8)?;
/// let issuer = Issuer::builder("https://auth.example.com")
///     .keys(keys) // or Issuer::discover(...)
///     .audience("https://api.example.com/mcp")
///     .build()?;
/// let server = McpResourceServer::builder(AccessTokens::new([issuer])?, "https://api.example.com/mcp")
///     .every_call(["mcp:call"])?
///     .tool("refund", ["refunds:write"])?
///     .implies("mcp:admin", ["mcp:call", "refunds:write"])?
///     .build()?;
///
/// let rmcp = StreamableHttpService::new(
///     || Ok(Tools),
///     LocalSessionManager::default().into(),
///     StreamableHttpServerConfig::default(),
/// );
/// // rmcp answers with a body type of its own; axum wants its `Body`.
/// let rmcp = ServiceExt::<Request<Body>>::map_response(rmcp, |response| response.map(Body::new));
/// let mut app = Router::new()
///     .route_service("/mcp", rmcp)
///     .route_layer(server.layer());
/// for (path, metadata) in server.metadata_routes() {
///     app = app.route_service(path, metadata);
/// }
///
/// let anonymous = Request::post("/mcp").body(Body::from("{}"))?;
/// let response = app.clone().oneshot(anonymous).await?;
/// assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
/// let challenge = response.headers()["www-authenticate"].to_str()?;
/// assert!(challenge.contains(r#"resource_metadata="https://api.example.com/.well-known/oauth-protected-resource/mcp""#));
/// assert!(challenge.contains(r#"scope="mcp:call""#));
/// let metadata = Request::get("/.well-known/oauth-protected-resource/mcp").body(Body::empty())?;
/// assert_eq!(app.oneshot(metadata).await?.status(), StatusCode::OK);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct McpResourceServer {
    metadata: ProtectedResourceMetadata,
    guard: GuardLayer,
    scopes: RequireScopesLayer,
    tools: ToolScopesLayer,
}

/// Builds an [`McpResourceServer`]; see there.
#[derive(Debug)]
pub struct McpResourceServerBuilder {
    tokens: AccessTokens,
    resource: String,
    every_call: Vec<String>,
    /// Rules: what each is for, its name (or URI), every scope of it, and any one of them.
    tools: Vec<(Named, String, Vec<String>, Vec<String>)>,
    implications: ScopeImplications,
    implied: Vec<String>,
    name: Option<String>,
}

impl McpResourceServer {
    /// A resource server for `resource` (this server's identifier, the audience tokens must
    /// name) accepting `tokens`.
    pub fn builder(tokens: AccessTokens, resource: impl Into<String>) -> McpResourceServerBuilder {
        McpResourceServerBuilder {
            tokens,
            resource: resource.into(),
            every_call: Vec::new(),
            tools: Vec::new(),
            implications: ScopeImplications::new(),
            implied: Vec::new(),
            name: None,
        }
    }

    /// The RFC 9728 metadata document.
    pub fn metadata(&self) -> &ProtectedResourceMetadata {
        &self.metadata
    }

    /// Each well-known path of the metadata and the service answering it (mount with
    /// `route_service`, outside the guard: clients read it without a token).
    pub fn metadata_routes(&self) -> impl Iterator<Item = (&str, MetadataService)> + '_ {
        self.metadata
            .paths()
            .map(|path| (path, self.metadata.service()))
    }

    /// The guard: access tokens, the implications, challenges naming the metadata and the
    /// scopes every call needs.
    pub fn guard(&self) -> GuardLayer {
        self.guard.clone()
    }

    /// The layer requiring the scopes every call needs (403 `insufficient_scope`).
    pub fn scope_layer(&self) -> RequireScopesLayer {
        self.scopes.clone()
    }

    /// The layer requiring each configured tool's scopes of its `tools/call`.
    pub fn tool_layer(&self) -> ToolScopesLayer {
        self.tools.clone()
    }

    /// The guard, the scope layer and the tool layer, outermost first, as one layer.
    pub fn layer(&self) -> McpLayer {
        Stack::new(
            self.tool_layer(),
            Stack::new(self.scope_layer(), self.guard()),
        )
    }
}

/// The three layers of an [`McpResourceServer`], stacked.
pub type McpLayer = Stack<ToolScopesLayer, Stack<RequireScopesLayer, GuardLayer>>;

impl McpResourceServerBuilder {
    /// Scopes every call needs (usually one, such as `mcp:call`); the 401 challenge names
    /// them.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] for a scope that is empty or not printable.
    pub fn every_call<S: AsRef<str>>(
        mut self,
        scopes: impl IntoIterator<Item = S>,
    ) -> Result<Self, ConfigError> {
        for scope in scopes {
            check_scope(scope.as_ref())?;
            self.every_call.push(scope.as_ref().to_owned());
        }
        Ok(self)
    }

    /// `tools/call` of `name` needs `scopes` as well as those every call needs.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] for an empty list, or a name or scope that is empty or
    /// not printable.
    pub fn tool<S: AsRef<str>>(
        self,
        name: &str,
        scopes: impl IntoIterator<Item = S>,
    ) -> Result<Self, ConfigError> {
        self.rule(Named::Tool, name, scopes, false)
    }

    /// `tools/call` of `name` needs one of `scopes` as well as those every call needs.
    ///
    /// # Errors
    ///
    /// As [`tool`](Self::tool).
    pub fn tool_any_of<S: AsRef<str>>(
        self,
        name: &str,
        scopes: impl IntoIterator<Item = S>,
    ) -> Result<Self, ConfigError> {
        self.rule(Named::Tool, name, scopes, true)
    }

    /// `prompts/get` of `name` needs `scopes` as well as those every call needs.
    ///
    /// # Errors
    ///
    /// As [`tool`](Self::tool).
    pub fn prompt<S: AsRef<str>>(
        self,
        name: &str,
        scopes: impl IntoIterator<Item = S>,
    ) -> Result<Self, ConfigError> {
        self.rule(Named::Prompt, name, scopes, false)
    }

    /// `resources/read` of `uri` needs `scopes` as well as those every call needs.
    ///
    /// # Errors
    ///
    /// As [`tool`](Self::tool).
    pub fn resource<S: AsRef<str>>(
        self,
        uri: &str,
        scopes: impl IntoIterator<Item = S>,
    ) -> Result<Self, ConfigError> {
        self.rule(Named::Resource, uri, scopes, false)
    }

    fn rule<S: AsRef<str>>(
        mut self,
        named: Named,
        name: &str,
        scopes: impl IntoIterator<Item = S>,
        any: bool,
    ) -> Result<Self, ConfigError> {
        let scopes: Vec<String> = scopes.into_iter().map(|s| s.as_ref().to_owned()).collect();
        if scopes.is_empty() {
            return Err(ConfigError::InvalidValue { field: "scope" });
        }
        for scope in &scopes {
            check_scope(scope)?;
        }
        crate::error::check_token_text(name, "tool name")?;
        let (all, any) = if any {
            (Vec::new(), scopes)
        } else {
            (scopes, Vec::new())
        };
        self.tools.push((named, name.to_owned(), all, any));
        Ok(self)
    }

    /// A caller granted `scope` holds `implied` too (`mcp:admin` implying `mcp:call`).
    ///
    /// # Errors
    ///
    /// As [`ScopeImplications::implies`].
    pub fn implies<S: AsRef<str>>(
        mut self,
        scope: &str,
        implied: impl IntoIterator<Item = S>,
    ) -> Result<Self, ConfigError> {
        self.implications = self.implications.implies(scope, implied)?;
        self.implied.push(scope.to_owned());
        Ok(self)
    }

    /// The `resource_name` of the metadata document.
    #[must_use]
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Build the metadata and the layers.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidComposition`] without scopes every call needs, and the errors
    /// of [`ProtectedResourceMetadata::for_access_tokens`] (a resource an issuer would not
    /// accept as audience).
    pub fn build(self) -> Result<McpResourceServer, ConfigError> {
        if self.every_call.is_empty() {
            return Err(ConfigError::InvalidComposition {
                reason: "an MCP resource server needs the scopes every call requires",
            });
        }
        let mut supported: Vec<&str> = Vec::new();
        let named = self
            .every_call
            .iter()
            .chain(
                self.tools
                    .iter()
                    .flat_map(|(_, _, all, any)| all.iter().chain(any)),
            )
            .chain(&self.implied);
        for scope in named {
            if !supported.contains(&scope.as_str()) {
                supported.push(scope);
            }
        }
        let mut metadata =
            ProtectedResourceMetadata::for_access_tokens(&self.tokens, &self.resource)?
                .scopes_supported(supported)?;
        if let Some(name) = self.name {
            metadata = metadata.resource_name(name);
        }
        let metadata = metadata.build();
        let responder: ProblemDetails = metadata.responder();
        let guard = GuardLayer::new(self.tokens)
            .scope_implications(self.implications)
            .named("mcp")?
            .on_reject(responder.clone().with_challenge_scope(&self.every_call)?);
        let scopes = RequireScopesLayer::new(&self.every_call)?.on_reject(responder.clone());
        let mut tools = ToolScopesLayer::new();
        for (named, name, all, any) in &self.tools {
            let mut needed = self.every_call.clone();
            needed.extend(all.iter().filter(|s| !self.every_call.contains(s)).cloned());
            let any = (!any.is_empty()).then_some(any);
            tools = tools.rule(*named, name, needed, any)?;
        }
        Ok(McpResourceServer {
            metadata,
            guard,
            scopes,
            tools: tools.on_reject(responder),
        })
    }
}

fn check_scope(scope: &str) -> Result<(), ConfigError> {
    crate::error::check_token_text(scope, "scope")?;
    if scope.contains(' ') {
        return Err(ConfigError::InvalidValue { field: "scope" });
    }
    Ok(())
}

impl<S> Layer<S> for McpResourceServer {
    type Service = <McpLayer as Layer<S>>::Service;

    fn layer(&self, inner: S) -> Self::Service {
        McpResourceServer::layer(self).layer(inner)
    }
}
