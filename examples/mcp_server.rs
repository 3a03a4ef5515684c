//! Run with: cargo run --example mcp_server --features reqwest
//!
//! An MCP server (rmcp, streamable HTTP) behind callguard as its OAuth resource server, as
//! the MCP authorization spec asks: tokens from the configured authorization servers, for
//! this resource only, every call needing `mcp:call`, the `refund` tool `refunds:write` as
//! well, and `mcp:admin` implying both. With `--features reqwest,dpop`, DPoP-bound tokens
//! (RFC 9449) are accepted as `Authorization: DPoP` with a proof whose `htu` is the
//! resource's URL, and the metadata names the proof algorithms
//! (`dpop_signing_alg_values_supported`).
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `CALLGUARD_ADDR` | address to listen on | `127.0.0.1:3001` |
//! | `CALLGUARD_OAUTH_ISSUERS` | comma-separated issuer URLs (discovered; `https`, or `http` on loopback) | required |
//! | `CALLGUARD_RESOURCE` | this server's resource identifier, the audience tokens must name | `http://<CALLGUARD_ADDR>/mcp` |
//! | `CALLGUARD_MCP_ALLOWED_ORIGINS` | comma-separated browser origins allowed to call `/mcp` (others: 403; requests without `Origin` pass) | the resource's origin |
//! | `RUST_LOG` | log filter for stderr | `info` |
//!
//! Routes: `/mcp` (the MCP endpoint), `/.well-known/oauth-protected-resource/mcp` and
//! `/.well-known/oauth-protected-resource` (RFC 9728 metadata, no credentials needed).
//! Tools: `whoami` (no arguments; JSON text with the caller's `id`, `issuer`, `client_id`
//! and `scopes`) and `refund` (`order_id`, `amount`; answers `refunded <order_id>`).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use callguard::Caller;
use callguard::keys::{HttpClient, RemoteKeySettings, ReqwestClient};
use callguard::mcp::{AllowedOriginsLayer, McpResourceServer, McpResourceServerBuilder};
use callguard::oauth::{AccessTokens, Issuer};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use serde_json::json;
use tower::ServiceExt;

/// The MCP tools.
#[derive(Debug, Clone)]
struct Tools {
    #[allow(dead_code, reason = "read by the tool_handler macro")]
    tool_router: ToolRouter<Self>,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct RefundArgs {
    /// The order to refund.
    order_id: String,
    /// The amount to refund.
    amount: f64,
}

/// The caller callguard put into the HTTP request, which rmcp hands to tools.
fn caller(parts: &http::request::Parts) -> Result<&Caller, ErrorData> {
    parts
        .extensions
        .get::<Caller>()
        .ok_or_else(|| ErrorData::internal_error("no callguard caller in the request", None))
}

#[tool_router]
impl Tools {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Who is calling: the caller's id, issuer, client id and scopes")]
    async fn whoami(
        &self,
        Extension(parts): Extension<http::request::Parts>,
    ) -> Result<String, ErrorData> {
        let caller = caller(&parts)?;
        Ok(json!({
            "id": caller.id(),
            "issuer": caller.issuer(),
            "client_id": caller.client_id(),
            "scopes": caller.scopes().iter().collect::<Vec<_>>(),
        })
        .to_string())
    }

    #[tool(description = "Refund an order (needs refunds:write)")]
    async fn refund(
        &self,
        Parameters(RefundArgs { order_id, amount }): Parameters<RefundArgs>,
    ) -> String {
        let _ = amount;
        format!("refunded {order_id}")
    }
}

#[tool_handler]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2);
}

async fn run() -> Result<(), String> {
    let addr: SocketAddr = std::env::var("CALLGUARD_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3001".to_owned())
        .parse()
        .map_err(|e| format!("CALLGUARD_ADDR: {e}"))?;
    let resource =
        std::env::var("CALLGUARD_RESOURCE").unwrap_or_else(|_| format!("http://{addr}/mcp"));
    let issuers = std::env::var("CALLGUARD_OAUTH_ISSUERS").map_err(|_| {
        "CALLGUARD_OAUTH_ISSUERS is required: the authorization servers to accept".to_owned()
    })?;
    let client: Arc<dyn HttpClient> =
        Arc::new(ReqwestClient::new().map_err(|e| format!("CALLGUARD_OAUTH_ISSUERS: {e}"))?);
    let mut accepted = Vec::new();
    for url in issuers.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let issuer = Issuer::discover(
            url,
            Arc::clone(&client),
            RemoteKeySettings::default().allow_loopback_http(),
        )
        .await
        .map_err(|e| format!("CALLGUARD_OAUTH_ISSUERS: {url}: {e}"))?
        .audience(resource.as_str())
        .build()
        .map_err(|e| format!("CALLGUARD_OAUTH_ISSUERS: {url}: {e}"))?;
        accepted.push(issuer);
    }
    let tokens = AccessTokens::new(accepted).map_err(|e| e.to_string())?;
    // DPoP-bound tokens too (RFC 9449), their proofs naming the resource's origin and path;
    // the metadata then names the proof algorithms.
    #[cfg(feature = "dpop")]
    let tokens = tokens.dpop(
        callguard::dpop::Dpop::builder(callguard::replay::MemoryReplayStore::new(100_000))
            .public_url(origin_of(&resource))
            .build()
            .map_err(|e| format!("CALLGUARD_RESOURCE: {e}"))?,
    );
    // The resource server's role in one place: metadata, guard, every call's scope, the
    // refund tool's scope and the admin scope's implications.
    let server = McpResourceServer::builder(tokens, resource.as_str())
        .every_call(["mcp:call"])
        .and_then(|b| b.tool("refund", ["refunds:write"]))
        .and_then(|b| b.implies("mcp:admin", ["mcp:call", "refunds:write"]))
        .map(|b| b.resource_name("callguard MCP example"))
        .and_then(McpResourceServerBuilder::build)
        .map_err(|e| format!("CALLGUARD_RESOURCE: {e}"))?;
    let host = addr.ip().to_string();
    let rmcp = StreamableHttpService::new(
        || Ok(Tools::new()),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default()
            .with_allowed_hosts([host.clone(), format!("{host}:{}", addr.port())]),
    );
    // rmcp answers with its own body type; axum's routes want `Body`.
    let rmcp = ServiceExt::<http::Request<axum::body::Body>>::map_response(rmcp, |response| {
        response.map(axum::body::Body::new)
    });
    // The transport's DNS-rebinding rule, before anything else: browser origins allowed.
    let origins = std::env::var("CALLGUARD_MCP_ALLOWED_ORIGINS")
        .unwrap_or_else(|_| origin_of(&resource).to_owned());
    let origins = AllowedOriginsLayer::new(
        origins
            .split(',')
            .map(str::trim)
            .filter(|origin| !origin.is_empty()),
    )
    .map_err(|e| format!("CALLGUARD_MCP_ALLOWED_ORIGINS: {e}"))?;
    let mut app = Router::new()
        .route_service("/mcp", rmcp)
        .route_layer(server.layer())
        .route_layer(origins);
    for (path, metadata) in server.metadata_routes() {
        app = app.route_service(path, metadata);
    }
    let metadata = server.metadata();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    println!(
        "callguard MCP server on http://{addr}/mcp (resource {resource}, metadata {})",
        metadata.url()
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| format!("server failed: {e}"))
}

/// `scheme://authority` of `url` (all of it when it has no path).
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |at| at + 3);
    match url[after_scheme..].find('/') {
        Some(at) => &url[..after_scheme + at],
        None => url,
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    if let Err(message) = run().await {
        fail(&message);
    }
}
