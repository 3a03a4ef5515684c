//! HMAC request signatures: the generic `x-signature` header and the schemes
//! platforms use, all as configurations of one [`SignatureVerifier`].
//!
//! A verifier inspects the request head first (header present once, well-formed, timestamp
//! within tolerance) and only then reads the body, hashing it as it streams in. Any one of
//! several secrets may match (rotation); the matching secret's id is reported in the
//! [`Caller`](crate::Caller).
//!
//! In axum, put a guard on the routes it protects with `Router::route_layer`: it runs only
//! for requests that matched a route, so unknown paths stay 404. `Router::layer` runs for
//! every request, including ones no route matches (they get a 401): right for a service
//! that has nothing but protected routes, wrong for a router that mixes them with public
//! ones. A guard's body limit and axum's `DefaultBodyLimit` are separate: raise both.
//!
//! ```
//! use axum::{Router, routing::post, body::Body};
//! use callguard::{Secret, signature::SignatureVerifier};
//! use hmac::{Hmac, KeyInit, Mac};
//! use http::{Request, StatusCode};
//! use tower::ServiceExt;
//!
//! # tokio_test_block_on(async {
//! let secret = "a-signing-secret-of-32-characters";
//! let verifier = SignatureVerifier::builder()
//!     .secret("2026-11", Secret::from_utf8(secret)?)
//!     .build()?;
//! let app = Router::new().route("/tools/echo", post(|body: String| async move { body }))
//!     .route_layer(verifier.layer());
//!
//! let body = r#"{"name":"echo"}"#;
//! let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
//! mac.update(body.as_bytes());
//! let signature = hex::encode(mac.finalize().into_bytes());
//!
//! let signed = Request::post("/tools/echo").header("x-signature", signature).body(Body::from(body))?;
//! assert_eq!(app.clone().oneshot(signed).await?.status(), StatusCode::OK);
//!
//! let unsigned = Request::post("/tools/echo").body(Body::from(body))?;
//! assert_eq!(app.clone().oneshot(unsigned).await?.status(), StatusCode::UNAUTHORIZED);
//!
//! // With `route_layer`, a path no route matches is still 404, not a 401 challenge.
//! let unknown = Request::post("/nowhere").body(Body::empty())?;
//! assert_eq!(app.oneshot(unknown).await?.status(), StatusCode::NOT_FOUND);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

mod check;
mod config;
mod header;
mod mac;
mod method;
mod sign;

pub(crate) use check::{PendingReplay, SignatureCheck, Verified, VerifierId};
pub use config::{
    DEFAULT_HEADER, DEFAULT_REPLAY_CAPACITY, DEFAULT_TOLERANCE, MessagePart, SignatureVerifier,
    SignatureVerifierBuilder,
};
pub(crate) use config::{SecretList, SecretText};
pub use header::{Encoding, SignatureFormat};
pub use mac::SignatureAlgorithm;
pub(crate) use method::SignaturePreference;
pub use sign::SigningRequest;
