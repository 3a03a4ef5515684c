//! OAuth 2.0 Protected Resource Metadata (RFC 9728): the document that tells a client
//! (an MCP client, say) which authorization servers issue tokens for this resource, built
//! from the same configuration that verifies those tokens.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use crate::document::DocumentBody;
use bytes::Bytes;
use http::{Request, Response};
use tower_service::Service;

use super::AccessTokens;
use crate::error::{ConfigError, check_token_text};
use crate::reject::ProblemDetails;

/// The well-known path of the document (RFC 9728 §3).
pub const WELL_KNOWN_PATH: &str = "/.well-known/oauth-protected-resource";

/// An RFC 9728 protected resource metadata document.
///
/// ```
/// # #[cfg(feature = "oauth")] {
/// use callguard::jwt::JwtKeySet;
/// use callguard::oauth::{AccessTokens, Issuer, ProtectedResourceMetadata};
///
/// let keys = JwtKeySet::from_json(br#"{"keys":[]}"#, 8).unwrap();
/// let issuer = Issuer::builder("https://auth.example.com").keys(keys).audience("https://api.example.com/mcp").build()?;
/// let tokens = AccessTokens::new([issuer])?;
/// let metadata = ProtectedResourceMetadata::for_access_tokens(&tokens, "https://api.example.com/mcp")?
///     .scopes_supported(["mcp:call", "mcp:admin"])?
///     .resource_name("Example tools")
///     .build();
/// assert_eq!(metadata.url(), "https://api.example.com/.well-known/oauth-protected-resource/mcp");
/// assert_eq!(metadata.document()["authorization_servers"][0], "https://auth.example.com");
/// # }
/// # Ok::<(), callguard::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ProtectedResourceMetadata {
    document: serde_json::Value,
    body: Bytes,
    url: String,
    paths: Vec<String>,
}

/// Builds [`ProtectedResourceMetadata`].
#[derive(Debug, Clone)]
pub struct ProtectedResourceMetadataBuilder {
    resource: String,
    authorization_servers: Vec<String>,
    scopes_supported: Vec<String>,
    resource_name: Option<String>,
    resource_documentation: Option<String>,
    resource_policy_uri: Option<String>,
    resource_tos_uri: Option<String>,
    /// The DPoP proof algorithms, and whether DPoP-bound tokens are required.
    dpop: Option<(Vec<String>, bool)>,
    /// Whether certificate-bound tokens (RFC 8705) are accepted.
    #[cfg(feature = "mtls")]
    certificate_bound: bool,
}

/// RFC 9728's DPoP fields for `tokens`: the proof algorithms, and whether DPoP is required.
#[cfg(feature = "dpop")]
fn dpop_fields(tokens: &AccessTokens) -> Option<(Vec<String>, bool)> {
    let dpop = tokens.dpop_config()?;
    let algorithms = dpop
        .algorithms_text()
        .split(' ')
        .map(str::to_owned)
        .collect();
    Some((algorithms, dpop.is_required()))
}

#[cfg(not(feature = "dpop"))]
fn dpop_fields(_: &AccessTokens) -> Option<(Vec<String>, bool)> {
    None
}

impl ProtectedResourceMetadata {
    /// The document for `resource` (this server's identifier, as the issuers' tokens name it
    /// in `aud`), whose `authorization_servers` are `tokens`'s issuers.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidUrl`] for a resource that is not an absolute `http(s)` URL
    /// without a fragment, [`ConfigError::InvalidComposition`] when an issuer does not
    /// accept `resource` as an audience (the document would send clients for tokens this
    /// server then refuses).
    pub fn for_access_tokens(
        tokens: &AccessTokens,
        resource: &str,
    ) -> Result<ProtectedResourceMetadataBuilder, ConfigError> {
        let uri: http::Uri = resource.parse().map_err(|_| ConfigError::InvalidUrl {
            url: resource.to_owned(),
        })?;
        let absolute = matches!(uri.scheme_str(), Some("https" | "http")) && uri.host().is_some();
        if !absolute || resource.contains('#') {
            return Err(ConfigError::InvalidUrl {
                url: resource.to_owned(),
            });
        }
        if tokens
            .issuers()
            .iter()
            .any(|issuer| !issuer.audiences().any(|aud| aud == resource))
        {
            return Err(ConfigError::InvalidComposition {
                reason: "every issuer must accept the resource as an audience",
            });
        }
        Ok(ProtectedResourceMetadataBuilder {
            resource: resource.to_owned(),
            authorization_servers: tokens
                .issuers()
                .iter()
                .map(|i| i.issuer().to_owned())
                .collect(),
            scopes_supported: Vec::new(),
            resource_name: None,
            resource_documentation: None,
            resource_policy_uri: None,
            resource_tos_uri: None,
            dpop: dpop_fields(tokens),
            #[cfg(feature = "mtls")]
            certificate_bound: tokens.certificate_config().is_some(),
        })
    }

    /// The document as JSON.
    pub fn document(&self) -> &serde_json::Value {
        &self.document
    }

    /// Where clients fetch it: the path-aware well-known URL (RFC 9728 §3.1), the value of
    /// `resource_metadata` in challenges.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The paths to serve it at: the path-aware one and, when the resource has a path, the
    /// root one too.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.paths.iter().map(String::as_str)
    }

    /// A service answering `GET` and `HEAD` with the document (JSON, cacheable for an hour,
    /// no credentials needed), and 405 otherwise. Mount it at every one of
    /// [`paths`](Self::paths).
    pub fn service(&self) -> MetadataService {
        MetadataService {
            body: self.body.clone(),
        }
    }

    /// The default responder with `resource_metadata` in its Bearer challenges.
    pub fn responder(&self) -> ProblemDetails {
        ProblemDetails::default()
            .with_resource_metadata(&self.url)
            .expect("the metadata URL was built from a checked resource URL")
    }
}

impl ProtectedResourceMetadataBuilder {
    /// The scopes clients may request for this resource.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] for a scope that is empty or not printable, or for
    /// `offline_access`, which a resource server should not advertise (MCP authorization).
    pub fn scopes_supported<S: AsRef<str>>(
        mut self,
        scopes: impl IntoIterator<Item = S>,
    ) -> Result<Self, ConfigError> {
        for scope in scopes {
            let scope = scope.as_ref();
            check_token_text(scope, "scope")?;
            if scope == "offline_access" || scope.contains(' ') {
                return Err(ConfigError::InvalidValue { field: "scope" });
            }
            self.scopes_supported.push(scope.to_owned());
        }
        Ok(self)
    }

    /// A human-readable name (`resource_name`).
    #[must_use]
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// A page for developers (`resource_documentation`).
    #[must_use]
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.resource_documentation = Some(url.into());
        self
    }

    /// The resource's policy (`resource_policy_uri`).
    #[must_use]
    pub fn resource_policy_uri(mut self, url: impl Into<String>) -> Self {
        self.resource_policy_uri = Some(url.into());
        self
    }

    /// The resource's terms of service (`resource_tos_uri`).
    #[must_use]
    pub fn resource_tos_uri(mut self, url: impl Into<String>) -> Self {
        self.resource_tos_uri = Some(url.into());
        self
    }

    /// The document.
    pub fn build(self) -> ProtectedResourceMetadata {
        let mut document = serde_json::json!({
            "resource": self.resource,
            "authorization_servers": self.authorization_servers,
            "bearer_methods_supported": ["header"],
        });
        let fields = [
            ("resource_name", self.resource_name),
            ("resource_documentation", self.resource_documentation),
            ("resource_policy_uri", self.resource_policy_uri),
            ("resource_tos_uri", self.resource_tos_uri),
        ];
        let object = document
            .as_object_mut()
            .expect("the document is built as an object");
        if !self.scopes_supported.is_empty() {
            object.insert("scopes_supported".into(), self.scopes_supported.into());
        }
        #[cfg(feature = "mtls")]
        if self.certificate_bound {
            object.insert(
                "tls_client_certificate_bound_access_tokens".into(),
                true.into(),
            );
        }
        if let Some((algorithms, required)) = self.dpop {
            object.insert(
                "dpop_signing_alg_values_supported".into(),
                algorithms.into(),
            );
            if required {
                object.insert("dpop_bound_access_tokens_required".into(), true.into());
            }
        }
        for (name, value) in fields {
            if let Some(value) = value {
                object.insert(name.into(), value.into());
            }
        }
        let uri: http::Uri = self
            .resource
            .parse()
            .expect("the builder checked the resource URL");
        let path = uri.path().trim_end_matches('/');
        let origin = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or("https"),
            uri.authority().map_or("", |a| a.as_str())
        );
        let path_aware = format!("{WELL_KNOWN_PATH}{path}");
        let mut paths = vec![path_aware.clone()];
        if !path.is_empty() {
            paths.push(WELL_KNOWN_PATH.to_owned());
        }
        ProtectedResourceMetadata {
            body: Bytes::from(document.to_string()),
            document,
            url: format!("{origin}{path_aware}"),
            paths,
        }
    }
}

/// Serves a [`ProtectedResourceMetadata`] document.
#[derive(Debug, Clone)]
pub struct MetadataService {
    body: Bytes,
}

impl<B> Service<Request<B>> for MetadataService {
    type Response = Response<DocumentBody>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let mut response = crate::document::answer(
            request.method(),
            &self.body,
            "application/json",
            "public, max-age=3600",
        );
        response.headers_mut().insert(
            "access-control-allow-origin",
            http::HeaderValue::from_static("*"),
        );
        ready(Ok(response))
    }
}
