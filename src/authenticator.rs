//! The closed set of methods a guard can check, and the one decision they all make about a
//! request's head.

use http::request::Parts;

use crate::caller::Caller;
use crate::error::{AuthError, ChallengeScheme, Challenges};
use crate::signature::{HeadCheck, SignatureCheck, SignatureVerifier};

/// What a [`GuardLayer`](crate::GuardLayer) checks: build one from a verifier with `From`.
///
/// ```
/// use callguard::{Authenticator, Secret, signature::SignatureVerifier};
/// let verifier = SignatureVerifier::builder()
///     .secret("k1", Secret::from_utf8("0123456789abcdef0123")?)
///     .build()?;
/// let authenticator = Authenticator::from(verifier);
/// # Ok::<(), callguard::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Authenticator {
    method: Method,
}

#[derive(Clone, Debug)]
enum Method {
    Signature(SignatureVerifier),
}

/// The guard's decision after reading the head, before any body byte.
#[allow(
    clippy::large_enum_variant,
    reason = "kept inline: boxing would allocate on every signed request"
)]
pub(crate) enum Inspection {
    /// The request carries no credential this authenticator knows.
    Absent,
    /// A credential was presented and failed: final, no other method is tried.
    Rejected(AuthError),
    /// A credential was presented and passed; the body is not needed.
    #[allow(dead_code)] // produced by the token methods
    Accepted(Caller),
    /// The decision needs the body.
    NeedsBody(Box<SignatureCheck>),
}

impl Authenticator {
    /// Inspect the request head.
    pub(crate) fn inspect(&self, parts: &Parts) -> Inspection {
        match &self.method {
            Method::Signature(verifier) => match verifier.check_head(parts) {
                HeadCheck::Absent => Inspection::Absent,
                HeadCheck::Rejected(kind) => {
                    Inspection::Rejected(AuthError::new(kind, self.challenges()))
                }
                HeadCheck::Pending(check) => Inspection::NeedsBody(check),
            },
        }
    }

    /// The schemes a client without credentials is challenged with.
    pub(crate) fn challenges(&self) -> Challenges {
        match &self.method {
            Method::Signature(_) => Challenges::one(ChallengeScheme::Signature),
        }
    }
}

impl From<SignatureVerifier> for Authenticator {
    fn from(verifier: SignatureVerifier) -> Self {
        Self {
            method: Method::Signature(verifier),
        }
    }
}
