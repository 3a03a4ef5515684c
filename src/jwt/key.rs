//! JWT keys: each pinned to one algorithm, its family checked when it is built.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use sha2::{Sha256, Sha384, Sha512};

use crate::error::{AuthErrorKind, ConfigError};
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
    verifying: Verifying,
    pub(crate) encoding: Option<EncodingKey>,
}

/// What checks a token's signature: the MAC keyed once for the HMAC family, the public key
/// (through `jsonwebtoken`'s backend) for the others.
#[derive(Clone)]
enum Verifying {
    Mac(Box<KeyedJwtMac>),
    PublicKey(DecodingKey),
}

/// An HMAC keyed with a JWT secret, for the HS algorithms.
///
/// HMAC tokens are checked with RustCrypto's `hmac` (the same primitive the signature
/// verifier uses, SHA-NI when the CPU has it), keyed when the `JwtKey` is built. Going through
/// `jsonwebtoken` would set the key up again for every token.
#[derive(Clone)]
enum KeyedJwtMac {
    Sha256(Hmac<Sha256>),
    Sha384(Hmac<Sha384>),
    Sha512(Hmac<Sha512>),
}

impl KeyedJwtMac {
    /// The MAC for an HMAC algorithm; `None` for the other families.
    fn new(algorithm: JwtAlgorithm, secret: &[u8]) -> Option<Self> {
        const ANY_LENGTH: &str = "HMAC accepts keys of any length";
        match algorithm {
            JwtAlgorithm::HS256 => Some(Self::Sha256(
                Hmac::new_from_slice(secret).expect(ANY_LENGTH),
            )),
            JwtAlgorithm::HS384 => Some(Self::Sha384(
                Hmac::new_from_slice(secret).expect(ANY_LENGTH),
            )),
            JwtAlgorithm::HS512 => Some(Self::Sha512(
                Hmac::new_from_slice(secret).expect(ANY_LENGTH),
            )),
            _ => None,
        }
    }

    /// Whether `tag` is this MAC of `message`, compared in constant time (a tag of another
    /// length never is).
    fn verifies(&self, message: &[u8], tag: &[u8]) -> bool {
        fn check<M: Mac + Clone>(mac: &M, message: &[u8], tag: &[u8]) -> bool {
            let mut mac = mac.clone();
            mac.update(message);
            mac.verify_slice(tag).is_ok()
        }
        match self {
            Self::Sha256(mac) => check(mac, message, tag),
            Self::Sha384(mac) => check(mac, message, tag),
            Self::Sha512(mac) => check(mac, message, tag),
        }
    }
}

/// The longest signature an HMAC key checks: HS512's 64 bytes.
const MAX_MAC_LEN: usize = 64;

/// The error of a key that does not fit the algorithm it is pinned to (now a
/// [`ConfigError::InvalidKeyMaterial`], so a configuration has one error type).
#[deprecated(
    since = "0.2.0",
    note = "key constructors return ConfigError::InvalidKeyMaterial"
)]
pub type KeyError = ConfigError;

/// A key that cannot be used as given.
pub(crate) fn invalid_key(reason: &'static str) -> ConfigError {
    ConfigError::InvalidKeyMaterial { reason }
}

impl JwtKey {
    /// An HMAC key (HS256, HS384 or HS512) that both verifies and signs.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKeyMaterial`] when `algorithm` is not an HMAC algorithm.
    pub fn hmac(algorithm: JwtAlgorithm, secret: &Secret) -> Result<Self, ConfigError> {
        super::config::install_crypto_backend();
        let mac = KeyedJwtMac::new(algorithm, secret.expose()).ok_or(invalid_key(
            "the algorithm does not belong to this key's family",
        ))?;
        Ok(Self {
            algorithm,
            verifying: Verifying::Mac(Box::new(mac)),
            encoding: Some(EncodingKey::from_secret(secret.expose())),
        })
    }

    /// A public key in PEM (RSA for RS*/PS*, EC for ES*, Ed25519 for EdDSA) that verifies only.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKeyMaterial`] when `algorithm` is an HMAC algorithm or the PEM is not a public key of
    /// the algorithm's family.
    pub fn public_pem(algorithm: JwtAlgorithm, pem: &[u8]) -> Result<Self, ConfigError> {
        super::config::install_crypto_backend();
        let decoding = match algorithm.family() {
            Family::Hmac => {
                return Err(invalid_key(
                    "an HMAC algorithm takes a secret, not a PEM key",
                ));
            }
            Family::Rsa => DecodingKey::from_rsa_pem(pem),
            Family::Ec => DecodingKey::from_ec_pem(pem),
            Family::Ed => DecodingKey::from_ed_pem(pem),
        }
        .map_err(|_| invalid_key("not a PEM public key of the algorithm's family"))?;
        Ok(Self {
            algorithm,
            verifying: Verifying::PublicKey(decoding),
            encoding: None,
        })
    }

    /// A verifying key already decoded, pinned to `algorithm` (whose family the caller
    /// checked).
    pub(crate) fn public(algorithm: JwtAlgorithm, decoding: DecodingKey) -> Self {
        Self {
            algorithm,
            verifying: Verifying::PublicKey(decoding),
            encoding: None,
        }
    }

    /// A key that signs with the private key in `pem` (PKCS#8 for EC and Ed25519, PKCS#1 or
    /// PKCS#8 for RSA) and verifies with its public half, derived from it: for a server that
    /// mints tokens other services verify through its published key set
    /// ([`JwksService`](crate::jwt::JwksService)).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKeyMaterial`] when `algorithm` is an HMAC algorithm or the PEM is not a private key of
    /// the algorithm's family.
    pub fn private_pem(algorithm: JwtAlgorithm, pem: &[u8]) -> Result<Self, ConfigError> {
        super::config::install_crypto_backend();
        let encoding = match algorithm.family() {
            Family::Hmac => {
                return Err(invalid_key(
                    "an HMAC algorithm takes a secret, not a PEM key",
                ));
            }
            Family::Rsa => EncodingKey::from_rsa_pem(pem),
            Family::Ec => EncodingKey::from_ec_pem(pem),
            Family::Ed => EncodingKey::from_ed_pem(pem),
        }
        .map_err(|_| invalid_key("not a PEM private key of the algorithm's family"))?;
        let public =
            jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, algorithm.to_jsonwebtoken())
                .and_then(|jwk| DecodingKey::from_jwk(&jwk))
                .map_err(|_| {
                    invalid_key("the public half cannot be derived from this private key")
                })?;
        Ok(Self {
            algorithm,
            verifying: Verifying::PublicKey(public),
            encoding: Some(encoding),
        })
    }

    /// The public half as a JSON Web Key (RFC 7517) named `kid`, for publishing; `None` for
    /// an HMAC key, whose secret is never published.
    pub(crate) fn public_jwk(&self, kid: &str) -> Option<jsonwebtoken::jwk::Jwk> {
        let Verifying::PublicKey(decoding) = &self.verifying else {
            return None;
        };
        let mut jwk = jsonwebtoken::jwk::Jwk::from_decoding_key(
            decoding,
            Some(self.algorithm.to_jsonwebtoken()),
        )
        .ok()?;
        jwk.common.key_id = Some(kid.to_owned());
        jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        Some(jwk)
    }

    /// This public key, able to sign too with the matching private key in PEM.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKeyMaterial`] when the PEM is not a private key of the algorithm's family.
    pub fn with_private_pem(mut self, pem: &[u8]) -> Result<Self, ConfigError> {
        let encoding = match self.algorithm.family() {
            Family::Hmac => return Err(invalid_key("an HMAC key already signs")),
            Family::Rsa => EncodingKey::from_rsa_pem(pem),
            Family::Ec => EncodingKey::from_ec_pem(pem),
            Family::Ed => EncodingKey::from_ed_pem(pem),
        }
        .map_err(|_| invalid_key("not a PEM private key of the algorithm's family"))?;
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

    /// Check a compact JWS signature (base64url, as it appears after the token's second dot)
    /// over `signing_input` (the header and payload segments with their dot).
    ///
    /// A signature that is not base64url is a malformed token; one that does not verify is an
    /// invalid credential.
    pub(crate) fn verify_signature(
        &self,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), AuthErrorKind> {
        let verified = match &self.verifying {
            Verifying::Mac(mac) => {
                let mut tag = [0u8; MAX_MAC_LEN];
                match URL_SAFE_NO_PAD.decode_slice(signature, &mut tag) {
                    Ok(len) => mac.verifies(signing_input, &tag[..len]),
                    // Longer than any HMAC tag: decodable or not, it cannot match.
                    Err(base64::DecodeSliceError::OutputSliceTooSmall) => false,
                    Err(base64::DecodeSliceError::DecodeError(_)) => {
                        return Err(AuthErrorKind::MalformedCredentials);
                    }
                }
            }
            Verifying::PublicKey(decoding) => {
                let signature = std::str::from_utf8(signature)
                    .map_err(|_| AuthErrorKind::MalformedCredentials)?;
                let algorithm = self.algorithm.to_jsonwebtoken();
                match jsonwebtoken::crypto::verify(signature, signing_input, decoding, algorithm) {
                    Ok(verified) => verified,
                    Err(error) if matches!(error.kind(), ErrorKind::Base64(_)) => {
                        return Err(AuthErrorKind::MalformedCredentials);
                    }
                    Err(_) => false,
                }
            }
        };
        if verified {
            Ok(())
        } else {
            Err(AuthErrorKind::InvalidCredentials)
        }
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
