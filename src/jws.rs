//! The JWS core (RFC 7515, compact serialization) that every signed token shares: split at
//! its dots, its header parsed once, its signature checked by a key pinned to one algorithm,
//! its payload read as a JSON object whose members are each named once.
//!
//! Self-issued JWTs and external access tokens (`src/jwt/`, `src/oauth/`) check it with a
//! key they hold; a DPoP proof, which carries its own public key in the header, will check it
//! with that key. Nothing here knows about claims rules.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::error::{AuthErrorKind, Refusal};
use crate::jwt::JwtKey;

/// A compact JWS split at its dots and its header parsed: the first step of every check of
/// a JWT or a JWS-signed proof, before any key is chosen.
pub(crate) struct Jws<'a> {
    compact: Compact<'a>,
    header: jsonwebtoken::Header,
}

impl<'a> Jws<'a> {
    /// Split `token` and parse its header once. A header with `crit` is refused (RFC 7515
    /// §4.1.11: the extensions it lists must be understood, and callguard understands none).
    pub(crate) fn parse(token: &'a [u8]) -> Result<Self, AuthErrorKind> {
        let compact = Compact::split(token).ok_or(AuthErrorKind::MalformedCredentials)?;
        let header: jsonwebtoken::Header = serde_json::from_slice(&base64url(compact.header)?)
            .map_err(|_| AuthErrorKind::MalformedCredentials)?;
        if header.crit.is_some() {
            return Err(AuthErrorKind::InvalidCredentials);
        }
        Ok(Self { compact, header })
    }

    /// The token's length in bytes.
    #[cfg(feature = "oauth")]
    pub(crate) fn len(&self) -> usize {
        self.compact.signing_input.len() + 1 + self.compact.signature.len()
    }

    /// The key id the header names, if any.
    pub(crate) fn kid(&self) -> Option<&str> {
        self.header.kid.as_deref()
    }

    /// The `iss` the payload claims, read before any verification and used only to choose
    /// the issuer whose keys and rules must then verify the token (which checks `iss`
    /// again, after the signature).
    #[cfg(feature = "oauth")]
    pub(crate) fn unverified_issuer(&self) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Issuer {
            iss: Option<String>,
        }
        let payload = base64url(self.compact.payload).ok()?;
        serde_json::from_slice::<Issuer>(&payload).ok()?.iss
    }

    /// A string claim of the payload, read before any verification: only to count failures
    /// by, never to decide.
    pub(crate) fn unverified_claim(&self, name: &str) -> Option<String> {
        let payload = base64url(self.compact.payload).ok()?;
        let claims: serde_json::Map<String, Value> = serde_json::from_slice(&payload).ok()?;
        claims.get(name)?.as_str().map(str::to_owned)
    }

    /// A member of the header as it is spelled, for what the parsed header leaves out (a
    /// DPoP proof's key must be seen with every member it has, to refuse private ones).
    #[cfg(feature = "dpop")]
    pub(crate) fn header_member(&self, name: &str) -> Option<Value> {
        let header = base64url(self.compact.header).ok()?;
        let UniqueMembers(mut members) = serde_json::from_slice(&header).ok()?;
        members.remove(name)
    }

    /// The parsed header.
    pub(crate) fn header(&self) -> &jsonwebtoken::Header {
        &self.header
    }

    /// Check the header's `alg` against `key`'s pinned algorithm, then the signature.
    pub(crate) fn verify_signature(&self, key: &JwtKey) -> Result<(), Refusal> {
        if self.header.alg != key.algorithm().to_jsonwebtoken() {
            return Err(Refusal::by(AuthErrorKind::InvalidCredentials, "alg"));
        }
        key.verify_signature(self.compact.signing_input, self.compact.signature)
            .map_err(|kind| Refusal::by(kind, "signature"))
    }

    /// The payload, a JSON object whose members are each named once. Read it only after the
    /// signature verified.
    pub(crate) fn payload_object(&self) -> Result<Map<String, Value>, Refusal> {
        let payload = base64url(self.compact.payload)?;
        let UniqueMembers(members) = serde_json::from_slice(&payload)
            .map_err(|_| Refusal::by(AuthErrorKind::InvalidClaims, "claims"))?;
        Ok(members)
    }
}

/// A compact JWS split at its two dots.
pub(crate) struct Compact<'a> {
    header: &'a [u8],
    payload: &'a [u8],
    /// The header and payload segments with the dot between them: what is signed.
    signing_input: &'a [u8],
    signature: &'a [u8],
}

impl<'a> Compact<'a> {
    /// The segments of `token`, which must have exactly two dots.
    fn split(token: &'a [u8]) -> Option<Self> {
        let mut dots = memchr::memchr_iter(b'.', token);
        let (first, second) = (dots.next()?, dots.next()?);
        if dots.next().is_some() {
            return None;
        }
        Some(Self {
            header: &token[..first],
            payload: &token[first + 1..second],
            signing_input: &token[..second],
            signature: &token[second + 1..],
        })
    }
}

/// One segment decoded from unpadded base64url; anything else is a malformed token.
fn base64url(segment: &[u8]) -> Result<Vec<u8>, AuthErrorKind> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| AuthErrorKind::MalformedCredentials)
}

/// A JSON object whose members are all named once: a token naming a claim twice (say two
/// `iss`) is refused rather than read by whichever copy a parser keeps.
struct UniqueMembers(Map<String, Value>);

impl<'de> serde::Deserialize<'de> for UniqueMembers {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;

        impl<'de> serde::de::Visitor<'de> for MembersVisitor {
            type Value = UniqueMembers;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object of claims")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut members: A,
            ) -> Result<UniqueMembers, A::Error> {
                let mut claims = Map::new();
                while let Some(name) = members.next_key::<String>()? {
                    if claims.contains_key(&name) {
                        return Err(serde::de::Error::custom("a claim is named twice"));
                    }
                    let value = members.next_value()?;
                    claims.insert(name, value);
                }
                Ok(UniqueMembers(claims))
            }
        }

        deserializer.deserialize_map(MembersVisitor)
    }
}
