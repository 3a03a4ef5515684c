//! MCP servers behind callguard: scopes per tool, read from the JSON-RPC request an MCP
//! client sends, checked before the MCP server runs.
//!
//! The MCP authorization spec makes every HTTP MCP server an OAuth resource server: put an
//! [`AccessTokens`](crate::oauth::AccessTokens) guard in front (feature `oauth`), serve its
//! [`ProtectedResourceMetadata`](crate::oauth::ProtectedResourceMetadata), require the
//! scopes every call needs with [`RequireScopesLayer`](crate::scope::RequireScopesLayer),
//! and those of particular tools with [`ToolScopesLayer`] (which also checks MCP 2026-07-28's
//! routing headers against the body). [`AllowedOriginsLayer`] refuses browser origins the
//! server does not allow (the transport's DNS-rebinding rule).
//!
//! ```
//! use callguard::mcp::ToolScopesLayer;
//!
//! let per_tool = ToolScopesLayer::new()
//!     .tool("refund", ["mcp:call", "refunds:write"])?
//!     .body_limit(256 * 1024);
//! # Ok::<(), callguard::ConfigError>(())
//! ```

mod headers;
mod origin;
#[cfg(feature = "oauth")]
mod resource_server;
mod tool_scopes;

pub use origin::{AllowedOrigins, AllowedOriginsLayer};
#[cfg(feature = "oauth")]
pub use resource_server::{McpLayer, McpResourceServer, McpResourceServerBuilder};
pub use tool_scopes::{ToolScopes, ToolScopesFuture, ToolScopesLayer};
