//! Publishing the public keys of the tokens this server mints, so other services verify them.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use crate::document::DocumentBody;
use bytes::Bytes;
use http::{Request, Response};
use tower_service::Service;

use super::JwtConfig;
use crate::error::ConfigError;

/// How long others may cache the key set: short enough that a new key is seen within
/// minutes of being added (add it before signing with it).
const MAX_AGE: &str = "public, max-age=300";

impl JwtConfig {
    /// The JSON Web Key Set (RFC 7517 §5) of this configuration's public keys: every RSA,
    /// EC and Ed25519 key, each with its `kid`, `alg` and `use: sig`. HMAC keys are secret
    /// and never appear.
    ///
    /// ```
    /// use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey};
    ///
    /// # let pem = std::fs::read("tests/data/oauth/ec.pem")?;
    /// let key = JwtKey::private_pem(JwtAlgorithm::ES256, &pem)?;
    /// let config = JwtConfig::builder().key("2026-11", key).build()?;
    /// let set: serde_json::Value = serde_json::from_str(&config.public_key_set())?;
    /// assert_eq!(set["keys"][0]["kid"], "2026-11");
    /// assert_eq!(set["keys"][0]["alg"], "ES256");
    /// assert!(set["keys"][0].get("d").is_none(), "no private part");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn public_key_set(&self) -> String {
        let mut keys: Vec<_> = self
            .inner
            .keys
            .values()
            .filter_map(|pinned| pinned.key.public_jwk(&pinned.kid))
            .collect();
        keys.sort_by(|a, b| a.common.key_id.cmp(&b.common.key_id));
        let set = jsonwebtoken::jwk::JwkSet { keys };
        serde_json::to_string(&set).expect("a JWK set serializes")
    }
}

/// Serves a [`JwtConfig`]'s [public key set](JwtConfig::public_key_set) (mount it at
/// `/.well-known/jwks.json`): `GET` and `HEAD`, `application/jwk-set+json`, cacheable for
/// five minutes; 405 for other methods.
#[derive(Debug, Clone)]
pub struct JwksService {
    body: Bytes,
}

impl JwksService {
    /// The service for `config`'s public keys.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidComposition`] when `config` has no public key (HMAC keys are
    /// secret: a service that verifies them needs the secret, not a key set).
    pub fn new(config: &JwtConfig) -> Result<Self, ConfigError> {
        let set = config.public_key_set();
        if set == r#"{"keys":[]}"# {
            return Err(ConfigError::InvalidComposition {
                reason: "no public key to publish: HMAC keys are secret",
            });
        }
        Ok(Self {
            body: Bytes::from(set),
        })
    }
}

impl<B> Service<Request<B>> for JwksService {
    type Response = Response<DocumentBody>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        ready(Ok(crate::document::answer(
            request.method(),
            &self.body,
            "application/jwk-set+json",
            MAX_AGE,
        )))
    }
}
