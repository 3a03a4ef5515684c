//! JSON Web Keys (RFC 7517) as [`JwtKey`]s: RSA, EC (P-256, P-384) and OKP (Ed25519)
//! public keys, each pinned to one algorithm.

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};

use super::key::{JwtAlgorithm, JwtKey, invalid_key};
use crate::error::ConfigError;

/// The smallest RSA modulus accepted from a JWK: 2048 bits (RFC 7518 §3.3).
const MIN_RSA_MODULUS_BYTES: usize = 256;

impl JwtKey {
    /// A public key from one JWK (RFC 7517), pinned to the algorithm its `alg` names, or,
    /// without `alg`, to the one algorithm its curve allows (`ES256` for P-256, `ES384` for
    /// P-384, `EdDSA` for Ed25519). An RSA key without `alg` needs
    /// [`from_jwk_with_algorithm`](Self::from_jwk_with_algorithm).
    ///
    /// ```
    /// use callguard::jwt::{JwtAlgorithm, JwtKey};
    ///
    /// let jwk = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
    /// let key = JwtKey::from_jwk(jwk)?;
    /// assert_eq!(key.algorithm(), JwtAlgorithm::EdDSA);
    /// # Ok::<(), callguard::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKeyMaterial`] for text that is not a JWK, a symmetric (`oct`) key, a key whose `use`
    /// is not `sig`, an algorithm its family does not have, an unsupported curve, or an RSA
    /// modulus under 2048 bits.
    pub fn from_jwk(jwk: &str) -> Result<Self, ConfigError> {
        Self::from_jwk_with_algorithm(jwk, None)
    }

    /// As [`from_jwk`](Self::from_jwk), with `algorithm` used when the JWK has no `alg` (it
    /// must then belong to the key's family; with an `alg`, the two must agree).
    ///
    /// # Errors
    ///
    /// As [`from_jwk`](Self::from_jwk).
    pub fn from_jwk_with_algorithm(
        jwk: &str,
        algorithm: Option<JwtAlgorithm>,
    ) -> Result<Self, ConfigError> {
        let jwk: Jwk = serde_json::from_str(jwk).map_err(|_| invalid_key("not a JSON Web Key"))?;
        let allowed: &[JwtAlgorithm] = match &algorithm {
            Some(algorithm) => std::slice::from_ref(algorithm),
            None => &[],
        };
        key_from_jwk(&jwk, allowed)
    }
}

/// The key a JWK describes, pinned to its `alg`, else to the first algorithm of `allowed`
/// that fits its family, else (with nothing allowed explicitly) to its curve's only
/// algorithm. A JWK whose `alg` is not in a non-empty `allowed` is refused.
pub(crate) fn key_from_jwk(jwk: &Jwk, allowed: &[JwtAlgorithm]) -> Result<JwtKey, ConfigError> {
    super::config::install_crypto_backend();
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return Err(invalid_key("the key's use is not sig"));
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(params) => {
            let modulus = base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                params.n.trim_end_matches('='),
            )
            .map_err(|_| invalid_key("the RSA modulus is not base64url"))?;
            let significant = modulus.iter().skip_while(|b| **b == 0).count();
            if significant < MIN_RSA_MODULUS_BYTES {
                return Err(invalid_key("the RSA modulus is shorter than 2048 bits"));
            }
            JwkFamily::Rsa
        }
        AlgorithmParameters::EllipticCurve(params) => match params.curve {
            EllipticCurve::P256 => JwkFamily::Ec(JwtAlgorithm::ES256),
            EllipticCurve::P384 => JwkFamily::Ec(JwtAlgorithm::ES384),
            _ => return Err(invalid_key("an unsupported elliptic curve")),
        },
        AlgorithmParameters::OctetKeyPair(params) => match params.curve {
            EllipticCurve::Ed25519 => JwkFamily::Ed,
            _ => return Err(invalid_key("an unsupported OKP curve")),
        },
        AlgorithmParameters::OctetKey(_) => {
            return Err(invalid_key("a symmetric key is never taken from a JWK set"));
        }
        _ => return Err(invalid_key("an unsupported key type")),
    };
    let algorithm = match jwk.common.key_algorithm {
        Some(named) => {
            let algorithm =
                signing_algorithm(named).ok_or(invalid_key("not a signing algorithm"))?;
            if !allowed.is_empty() && !allowed.contains(&algorithm) {
                return Err(invalid_key("the key's algorithm is not allowed"));
            }
            algorithm
        }
        None if allowed.is_empty() => family
            .only_algorithm()
            .ok_or(invalid_key("an RSA key without alg needs an algorithm"))?,
        None => allowed
            .iter()
            .copied()
            .find(|a| family.fits(*a))
            .ok_or(invalid_key(
                "no allowed algorithm belongs to this key's family",
            ))?,
    };
    if !family.fits(algorithm) {
        return Err(invalid_key(
            "the algorithm does not belong to this key's family",
        ));
    }
    let decoding = DecodingKey::from_jwk(jwk)
        .map_err(|_| invalid_key("the key's parameters do not decode"))?;
    Ok(JwtKey::public(algorithm, decoding))
}

#[derive(Debug, Clone, Copy)]
enum JwkFamily {
    Rsa,
    Ec(JwtAlgorithm),
    Ed,
}

impl JwkFamily {
    fn fits(self, algorithm: JwtAlgorithm) -> bool {
        use JwtAlgorithm::{EdDSA, PS256, PS384, PS512, RS256, RS384, RS512};
        match self {
            Self::Rsa => matches!(algorithm, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            Self::Ec(only) => algorithm == only,
            Self::Ed => algorithm == EdDSA,
        }
    }

    fn only_algorithm(self) -> Option<JwtAlgorithm> {
        match self {
            Self::Rsa => None,
            Self::Ec(only) => Some(only),
            Self::Ed => Some(JwtAlgorithm::EdDSA),
        }
    }
}

fn signing_algorithm(named: KeyAlgorithm) -> Option<JwtAlgorithm> {
    Some(match named {
        KeyAlgorithm::RS256 => JwtAlgorithm::RS256,
        KeyAlgorithm::RS384 => JwtAlgorithm::RS384,
        KeyAlgorithm::RS512 => JwtAlgorithm::RS512,
        KeyAlgorithm::PS256 => JwtAlgorithm::PS256,
        KeyAlgorithm::PS384 => JwtAlgorithm::PS384,
        KeyAlgorithm::PS512 => JwtAlgorithm::PS512,
        KeyAlgorithm::ES256 => JwtAlgorithm::ES256,
        KeyAlgorithm::ES384 => JwtAlgorithm::ES384,
        KeyAlgorithm::EdDSA => JwtAlgorithm::EdDSA,
        _ => return None,
    })
}

/// The signing keys of a JWK set (RFC 7517 §5), as an authorization server publishes them
/// at its `jwks_uri`: by `kid`, each pinned to its `alg` (an RSA key without `alg` to RS256,
/// an EC or OKP key to its curve's algorithm). Symmetric keys, keys whose `use` is not `sig`,
/// unsupported curves, short RSA moduli and keys that do not parse are left out, so one
/// exotic key does not take the others down; a repeated `kid` keeps its first key.
pub struct JwtKeySet {
    pub(crate) keys: std::collections::HashMap<Box<str>, super::config::PinnedKey>,
}

impl std::fmt::Debug for JwtKeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeySet")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl JwtKeySet {
    /// Parse a JWK set document, refusing one with more than `max_keys` keys.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKeySet`] when the text is not a JSON object with a `keys`
    /// array, or the array is longer than `max_keys`.
    pub fn from_json(body: &[u8], max_keys: usize) -> Result<Self, ConfigError> {
        #[derive(serde::Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let document: Document =
            serde_json::from_slice(body).map_err(|_| ConfigError::InvalidKeySet {
                reason: "not a JSON object with a `keys` array".to_owned(),
            })?;
        if document.keys.len() > max_keys {
            return Err(ConfigError::InvalidKeySet {
                reason: format!("more than {max_keys} keys"),
            });
        }
        let mut keys = std::collections::HashMap::new();
        for value in document.keys {
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                continue;
            };
            let key =
                key_from_jwk(&jwk, &[]).or_else(|_| key_from_jwk(&jwk, &[JwtAlgorithm::RS256]));
            let Ok(key) = key else {
                continue;
            };
            let kid: Box<str> = jwk.common.key_id.unwrap_or_default().into();
            keys.entry(kid.clone()).or_insert(super::config::PinnedKey {
                kid: kid.into(),
                key,
            });
        }
        Ok(Self { keys })
    }

    /// The key a token's `kid` names; a token without `kid` uses the only key of a set of
    /// one.
    #[cfg(feature = "oauth")]
    pub(crate) fn find(&self, kid: Option<&str>) -> Option<&super::config::PinnedKey> {
        match kid {
            Some(kid) => self.keys.get(kid),
            None if self.keys.len() == 1 => self.keys.values().next(),
            None => None,
        }
    }

    /// The key ids in the set.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(|kid| &**kid)
    }

    /// How many usable keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no usable key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(feature = "keys")]
impl crate::keys::KeyDocument for JwtKeySet {
    fn parse(body: &[u8], max_keys: usize) -> Result<Self, crate::keys::FetchError> {
        Self::from_json(body, max_keys).map_err(|error| match error {
            ConfigError::InvalidKeySet { reason } => crate::keys::FetchError::Invalid(reason),
            other => crate::keys::FetchError::Invalid(other.to_string()),
        })
    }

    fn len(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str =
        r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;

    #[test]
    fn an_okp_key_is_pinned_to_eddsa() {
        assert_eq!(
            JwtKey::from_jwk(ED25519).unwrap().algorithm(),
            JwtAlgorithm::EdDSA
        );
    }

    #[test]
    fn symmetric_and_encryption_keys_are_refused() {
        assert!(JwtKey::from_jwk(r#"{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQ"}"#).is_err());
        let encryption = ED25519.replace("{", r#"{"use":"enc","#);
        assert!(JwtKey::from_jwk(&encryption).is_err());
    }

    #[test]
    fn an_alg_outside_the_family_is_refused() {
        let mislabelled = ED25519.replace("{", r#"{"alg":"RS256","#);
        assert!(JwtKey::from_jwk(&mislabelled).is_err());
        assert!(JwtKey::from_jwk_with_algorithm(ED25519, Some(JwtAlgorithm::HS256)).is_err());
    }

    #[test]
    fn a_set_over_the_key_count_cap_is_refused_and_unusable_keys_are_left_out() {
        let key = ED25519.replace("{", r#"{"kid":"k","#);
        let oct = r#"{"kty":"oct","kid":"s","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQ"}"#;
        let three = format!(r#"{{"keys":[{key},{oct},{key}]}}"#);
        assert!(JwtKeySet::from_json(three.as_bytes(), 2).is_err());
        let set = JwtKeySet::from_json(three.as_bytes(), 3).unwrap();
        assert_eq!(
            set.kids().collect::<Vec<_>>(),
            ["k"],
            "oct left out, the repeated kid kept once"
        );
    }

    #[test]
    fn a_short_rsa_modulus_is_refused() {
        let short = r#"{"kty":"RSA","alg":"RS256","n":"AQAB","e":"AQAB"}"#;
        assert_eq!(
            JwtKey::from_jwk(short).unwrap_err(),
            invalid_key("the RSA modulus is shorter than 2048 bits")
        );
    }
}
