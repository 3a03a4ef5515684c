//! JSON Web Tokens this server issues and verifies: short-lived, scoped, keyed by `kid`,
//! each key pinned to one algorithm.
//!
//! One [`JwtConfig`] feeds both the [`JwtVerifier`] (put it in a [`GuardLayer`]) and the
//! [`TokenIssuer`] (call it from your token endpoint), so the two cannot disagree.
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, body::Body, routing::post};
//! use callguard::{Caller, Scopes, Secret};
//! use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier, TokenIssuer, TokenRequest};
//! use http::{Request, StatusCode};
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let key = JwtKey::hmac(JwtAlgorithm::HS256, &Secret::from_utf8("a-jwt-signing-key-of-32-bytes!!!")?)?;
//! let config = JwtConfig::builder().key("k1", key).issuer("me").audience("tools").build()?;
//! let app = Router::new()
//!     .route("/tools/{name}", post(|caller: Caller| async move { caller.id().to_owned() }))
//!     .route_layer(JwtVerifier::new(config.clone()).layer());
//!
//! let token = TokenIssuer::new(config)
//!     .issue(TokenRequest::new("agent-7", Scopes::from_iter(["tools:call"]), Duration::from_secs(60)))?;
//! let request = Request::post("/tools/echo")
//!     .header("authorization", format!("Bearer {}", token.access_token))
//!     .body(Body::empty())?;
//! assert_eq!(app.oneshot(request).await?.status(), StatusCode::OK);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Crypto backend
//!
//! `jsonwebtoken` needs exactly one crypto backend and panics at run time without one.
//! callguard chooses for you: the default feature `aws-lc-rs` uses aws-lc-rs (4x to 9x
//! faster than the pure-Rust backend for RSA and ECDSA); `rust-crypto` (with
//! `default-features = false`) uses RustCrypto instead. callguard installs the chosen
//! backend explicitly when a [`JwtConfig`] is built, and prefers aws-lc-rs if both features
//! end up enabled, so the panic cannot happen through this crate.
//!
//! [`GuardLayer`]: crate::GuardLayer

#[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
compile_error!("callguard's `jwt` feature needs a backend: enable `aws-lc-rs` or `rust-crypto`");

mod config;
mod issue;
pub(crate) mod jwk;
mod key;
mod publish;
mod rules;
mod verify;

pub use config::{DEFAULT_LEEWAY, DEFAULT_MAX_TTL, JwtConfig, JwtConfigBuilder};
pub use issue::{IssueError, IssuedToken, TokenIssuer, TokenRequest};
pub use jwk::JwtKeySet;
#[allow(deprecated)]
pub use key::KeyError;
pub use key::{JwtAlgorithm, JwtKey};
pub use publish::JwksService;
pub use rules::ClaimRules;
pub(crate) use verify::RevocationCheck;
#[cfg(feature = "oauth")]
pub(crate) use verify::{
    ClaimsChecked, RulesInForce, TokenCache, TypRule, Verified, names_audience, subject_of,
};
pub use verify::{DEFAULT_CACHE_BYTES, DEFAULT_CACHE_CAPACITY, JwtVerifier, Revocations};
