//! The OAuth resource server's part (feature `oauth`): access tokens minted by other
//! parties' authorization servers, verified with the keys those servers publish.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use callguard::keys::{HttpClient, RemoteKeySettings};
//! use callguard::oauth::{AccessTokens, Issuer};
//!
//! # fn client() -> Arc<dyn HttpClient> { unimplemented!() }
//! let client: Arc<dyn HttpClient> = client(); // `callguard::keys::ReqwestClient` with feature `reqwest`
//! let issuer = Issuer::discover("https://auth.example.com", client, RemoteKeySettings::default())
//!     .await?
//!     .audience("https://api.example.com/mcp")
//!     .build()?;
//! let layer = AccessTokens::new([issuer])?.layer();
//! # Ok(())
//! # }
//! ```
//!
//! [`AccessTokens`] sits in [`Authenticator::any_of`](crate::Authenticator::any_of) beside
//! signatures, static tokens, Basic and self-issued JWTs: a JWT-shaped bearer token whose
//! `iss` names one of its issuers goes to it, any other JWT-shaped token to the self-issued
//! verifier, so each token meets exactly one verifier.

mod access_token;
mod introspection;
mod issuer;
mod resource_metadata;

pub use access_token::AccessTokens;
pub(crate) use access_token::Checked;
pub use introspection::{
    DEFAULT_MAX_POSITIVE_TTL, DEFAULT_NEGATIVE_TTL, Introspection, IntrospectionBuilder,
    MAX_CALLS_IN_FLIGHT, MAX_CALLS_PER_CLIENT, MAX_CALLS_PER_NETWORK,
};
pub use issuer::{Issuer, IssuerBuilder};
pub use resource_metadata::{
    MetadataService, ProtectedResourceMetadata, ProtectedResourceMetadataBuilder, WELL_KNOWN_PATH,
};
