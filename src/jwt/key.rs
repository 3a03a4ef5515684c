//! JWT keys: each pinned to one algorithm, its family checked when it is built.

use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use crate::secret::Secret;

/// A JWS algorithm a key can be pinned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwtAlgorithm {
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Hmac,
    Rsa,
    Ec,
    Ed,
}

impl JwtAlgorithm {
    pub(crate) fn to_jsonwebtoken(self) -> Algorithm {
        match self {
            Self::HS256 => Algorithm::HS256,
            Self::HS384 => Algorithm::HS384,
            Self::HS512 => Algorithm::HS512,
            Self::RS256 => Algorithm::RS256,
            Self::RS384 => Algorithm::RS384,
            Self::RS512 => Algorithm::RS512,
            Self::PS256 => Algorithm::PS256,
            Self::PS384 => Algorithm::PS384,
            Self::PS512 => Algorithm::PS512,
            Self::ES256 => Algorithm::ES256,
            Self::ES384 => Algorithm::ES384,
            Self::EdDSA => Algorithm::EdDSA,
        }
    }

    fn family(self) -> Family {
        match self {
            Self::HS256 | Self::HS384 | Self::HS512 => Family::Hmac,
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512 => {
                Family::Rsa
            }
            Self::ES256 | Self::ES384 => Family::Ec,
            Self::EdDSA => Family::Ed,
        }
    }
}

/// A key that verifies (and, when it holds private or symmetric material, signs) JWTs with
/// exactly one algorithm.
///
/// A token whose header names another algorithm never reaches the key, so an RS256 public
/// key can never be used as an HS256 secret (algorithm confusion), and `alg: none` has no
/// key at all.
#[derive(Clone)]
pub struct JwtKey {
    pub(crate) algorithm: JwtAlgorithm,
    pub(crate) decoding: DecodingKey,
    pub(crate) encoding: Option<EncodingKey>,
}

/// A key that does not fit the algorithm it is pinned to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(pub(crate) &'static str);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for KeyError {}

impl JwtKey {
    /// An HMAC key (HS256, HS384 or HS512) that both verifies and signs.
    ///
    /// # Errors
    ///
    /// [`KeyError`] when `algorithm` is not an HMAC algorithm.
    pub fn hmac(algorithm: JwtAlgorithm, secret: &Secret) -> Result<Self, KeyError> {
        expect_family(algorithm, Family::Hmac)?;
        Ok(Self {
            algorithm,
            decoding: DecodingKey::from_secret(secret.expose()),
            encoding: Some(EncodingKey::from_secret(secret.expose())),
        })
    }

    /// A public key in PEM (RSA for RS*/PS*, EC for ES*, Ed25519 for EdDSA) that verifies only.
    ///
    /// # Errors
    ///
    /// [`KeyError`] when `algorithm` is an HMAC algorithm or the PEM is not a public key of
    /// the algorithm's family.
    pub fn public_pem(algorithm: JwtAlgorithm, pem: &[u8]) -> Result<Self, KeyError> {
        let decoding = match algorithm.family() {
            Family::Hmac => {
                return Err(KeyError("an HMAC algorithm takes a secret, not a PEM key"));
            }
            Family::Rsa => DecodingKey::from_rsa_pem(pem),
            Family::Ec => DecodingKey::from_ec_pem(pem),
            Family::Ed => DecodingKey::from_ed_pem(pem),
        }
        .map_err(|_| KeyError("not a PEM public key of the algorithm's family"))?;
        Ok(Self {
            algorithm,
            decoding,
            encoding: None,
        })
    }

    /// This public key, able to sign too with the matching private key in PEM.
    ///
    /// # Errors
    ///
    /// [`KeyError`] when the PEM is not a private key of the algorithm's family.
    pub fn with_private_pem(mut self, pem: &[u8]) -> Result<Self, KeyError> {
        let encoding = match self.algorithm.family() {
            Family::Hmac => return Err(KeyError("an HMAC key already signs")),
            Family::Rsa => EncodingKey::from_rsa_pem(pem),
            Family::Ec => EncodingKey::from_ec_pem(pem),
            Family::Ed => EncodingKey::from_ed_pem(pem),
        }
        .map_err(|_| KeyError("not a PEM private key of the algorithm's family"))?;
        self.encoding = Some(encoding);
        Ok(self)
    }

    /// The algorithm this key is pinned to.
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.algorithm
    }

    /// Whether this key can mint tokens.
    pub fn can_sign(&self) -> bool {
        self.encoding.is_some()
    }
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey")
            .field("algorithm", &self.algorithm)
            .field("can_sign", &self.can_sign())
            .finish_non_exhaustive()
    }
}

fn expect_family(algorithm: JwtAlgorithm, family: Family) -> Result<(), KeyError> {
    if algorithm.family() == family {
        Ok(())
    } else {
        Err(KeyError(
            "the algorithm does not belong to this key's family",
        ))
    }
}
