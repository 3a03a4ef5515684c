//! Methods callguard does not build in: an API key in a header of your own, an identity the
//! connection proved (a client certificate your TLS terminator checked), a session cookie.
//! Implement [`Authenticate`] and hand it to
//! [`Authenticator::custom`](crate::Authenticator::custom); it joins
//! [`Authenticator::any_of`](crate::Authenticator::any_of) under the same rule as every
//! built-in method: the method whose credential a request presents decides, and a presented
//! credential that fails is final.
//!
//! ```
//! use callguard::custom::Authenticate;
//! use callguard::{AuthError, AuthErrorKind, AuthMethod, Authenticator, Caller, Challenges, GuardLayer};
//! use http::request::Parts;
//! use subtle::ConstantTimeEq;
//!
//! /// An API key in `x-api-key`, compared in constant time.
//! struct ApiKey { key: Vec<u8> }
//!
//! impl Authenticate for ApiKey {
//!     fn name(&self) -> &str {
//!         "api-key"
//!     }
//!     fn presented(&self, parts: &Parts) -> bool {
//!         parts.headers.contains_key("x-api-key")
//!     }
//!     fn authenticate(&self, parts: &Parts) -> Result<Caller, AuthError> {
//!         let presented = parts.headers.get("x-api-key").map(|v| v.as_bytes()).unwrap_or_default();
//!         if bool::from(presented.ct_eq(&self.key)) {
//!             Ok(Caller::new(AuthMethod::Custom, "partner-7"))
//!         } else {
//!             Err(AuthError::new(AuthErrorKind::InvalidCredentials, Challenges::default()))
//!         }
//!     }
//! }
//!
//! let guard = GuardLayer::new(Authenticator::custom(ApiKey { key: b"k-0123456789abcdef".to_vec() }));
//!
//! # use tower::{Layer, ServiceExt};
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let service = guard.layer(tower::service_fn(|request: http::Request<_>| async move {
//!     let id = request.extensions().get::<Caller>().map_or(String::new(), |c| c.id().to_owned());
//!     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::from(id))))
//! }));
//! let request = http::Request::post("/tool")
//!     .header("x-api-key", "k-0123456789abcdef")
//!     .body(http_body_util::Empty::<bytes::Bytes>::new())?;
//! let response = service.clone().oneshot(request).await?;
//! assert_eq!(response.status(), http::StatusCode::OK);
//! # use http_body_util::BodyExt;
//! assert_eq!(response.into_body().collect().await?.to_bytes(), "partner-7");
//! let wrong = http::Request::post("/tool").header("x-api-key", "guess").body(http_body_util::Empty::<bytes::Bytes>::new())?;
//! assert_eq!(service.oneshot(wrong).await?.status(), http::StatusCode::UNAUTHORIZED);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::Arc;

use http::request::Parts;

use crate::authenticator::{Head, Inspection, Method};
use crate::caller::Caller;
use crate::error::{AuthError, Challenges};

/// A method of your own, decided from the request's head.
///
/// # Security
///
/// callguard cannot check what this method does: compare secrets in constant time on
/// decoded bytes (`subtle`), never log a credential, and answer a presented credential that
/// fails with `Err` (it is final: no other method is tried).
pub trait Authenticate: Send + Sync + 'static {
    /// The method's name: in the rejection log, and in composition errors.
    fn name(&self) -> &str;

    /// Whether the request presents this method's credential; [`Authenticator::any_of`]
    /// chooses the method by it. A request that presents none is not this method's.
    ///
    /// [`Authenticator::any_of`]: crate::Authenticator::any_of
    fn presented(&self, parts: &Parts) -> bool;

    /// The decision for a request that presents the credential: who is calling, or why
    /// not (401 `InvalidCredentials` for a credential that does not verify, say).
    ///
    /// # Errors
    ///
    /// The refusal, answered through the guard's responder and logged.
    fn authenticate(&self, parts: &Parts) -> Result<Caller, AuthError>;

    /// The schemes a client without credentials is challenged with (default: none).
    fn challenges(&self) -> Challenges {
        Challenges::default()
    }

    /// Whether the credential travels in `Authorization` (a scheme of your own there):
    /// then `any_of` does not take an `Authorization` header the built-in methods cannot
    /// read for a stray one (default: no).
    fn reads_authorization(&self) -> bool {
        false
    }
}

/// A custom method, shared.
#[derive(Clone)]
pub(crate) struct Custom(pub(crate) Arc<dyn Authenticate>);

impl fmt::Debug for Custom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Custom").field(&self.0.name()).finish()
    }
}

/// A custom method's row of the authenticator's table: what the application's
/// [`Authenticate`] says.
impl Method for Custom {
    fn name(&self) -> String {
        self.0.name().to_owned()
    }

    fn challenges(&self) -> Challenges {
        self.0.challenges()
    }

    fn credentials(&self) -> Vec<String> {
        vec![format!("the credential of `{}`", self.0.name())]
    }

    fn reads_authorization(&self) -> bool {
        self.0.reads_authorization()
    }

    fn presented(&self, head: &Head<'_>) -> bool {
        self.0.presented(head.parts)
    }

    fn inspect(&self, head: &Head<'_>) -> Inspection {
        if !self.0.presented(head.parts) {
            return Inspection::Absent;
        }
        match self.0.authenticate(head.parts) {
            Ok(caller) => Inspection::accepted(caller),
            Err(error) => Inspection::Rejected(error),
        }
    }
}

impl crate::Authenticator {
    /// An authenticator from a method of your own (see [`Authenticate`]).
    pub fn custom(method: impl Authenticate) -> Self {
        Self::from_custom(Custom(Arc::new(method)))
    }
}
