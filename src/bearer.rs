//! Static bearer tokens: a named set, each token with its own scopes, several live at once
//! for rotation.
//!
//! ```
//! use callguard::{Scopes, Secret, bearer::BearerTokens};
//!
//! let tokens = BearerTokens::builder()
//!     .token("billing-agent", Secret::from_utf8("tok_3b1f9a7c5e2d4f60")?, Scopes::from_iter(["orders:read"]))
//!     .token("billing-agent-next", Secret::from_utf8("tok_8e0d6c4a2f1b3957")?, Scopes::from_iter(["orders:read"]))
//!     .build()?;
//! assert_eq!(tokens.names().collect::<Vec<_>>(), ["billing-agent", "billing-agent-next"]);
//! # Ok::<(), callguard::ConfigError>(())
//! ```
//!
//! # Security
//!
//! Tokens are kept only as SHA-256 digests. A presented token is hashed once and compared
//! with every digest in constant time (see [`crate::GuardLayer`] for the request path), so
//! the time taken reveals neither which token it resembled nor how long the real ones are.
//! The cost grows linearly with the number of tokens: one 32-byte comparison each.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::caller::{AuthMethod, Caller, Scopes};
use crate::error::{AuthErrorKind, ConfigError, check_token_text};
use crate::secret::Secret;
use crate::token_set::{NamedDigests, SecretDigest};

/// A set of named static bearer tokens.
#[derive(Clone)]
pub struct BearerTokens {
    inner: Arc<NamedDigests>,
}

impl BearerTokens {
    /// A builder for an empty set.
    pub fn builder() -> BearerTokensBuilder {
        BearerTokensBuilder::default()
    }

    /// A [`GuardLayer`](crate::GuardLayer) that requires one of these tokens.
    pub fn layer(self) -> crate::GuardLayer {
        crate::GuardLayer::new(self)
    }

    /// Tokens from the environment variable `name`: comma-separated `name=token` pairs, each
    /// granted `scopes`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::MissingEnvVar`], [`ConfigError::InvalidList`] for an entry without `=`,
    /// and whatever [`BearerTokensBuilder::build`] finds.
    pub fn from_env(name: &str, scopes: &Scopes) -> Result<Self, ConfigError> {
        let list = Zeroizing::new(std::env::var(name).map_err(|_| ConfigError::MissingEnvVar {
            name: name.to_owned(),
        })?);
        Self::from_list(name, &list, scopes)
    }

    /// Parse a comma-separated list read from `source` (named in errors).
    fn from_list(source: &str, list: &str, scopes: &Scopes) -> Result<Self, ConfigError> {
        let mut builder = Self::builder();
        for entry in list.split(',') {
            let (token_name, token) =
                entry
                    .split_once('=')
                    .ok_or_else(|| ConfigError::InvalidList {
                        name: source.to_owned(),
                        expected: "name=token",
                    })?;
            builder = builder.token(token_name, Secret::from_utf8(token)?, scopes.clone());
        }
        builder.build()
    }

    /// The token names, in the order they were added.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.inner.names()
    }

    /// The caller a presented token proves, checking every entry in constant time.
    pub(crate) fn check(&self, token: &[u8]) -> Result<Caller, AuthErrorKind> {
        self.inner
            .caller(&SecretDigest::of(&[token]))
            .ok_or(AuthErrorKind::InvalidCredentials)
    }
}

impl fmt::Debug for BearerTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerTokens")
            .field("names", &self.names().collect::<Vec<_>>())
            .finish()
    }
}

/// Builds [`BearerTokens`].
#[derive(Default)]
pub struct BearerTokensBuilder {
    tokens: Vec<(String, Secret, Scopes)>,
}

impl fmt::Debug for BearerTokensBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.tokens.iter().map(|(name, _, _)| name).collect();
        f.debug_struct("BearerTokensBuilder")
            .field("names", &names)
            .finish()
    }
}

impl BearerTokensBuilder {
    /// Accept `token`, naming the caller `name` and granting `scopes`.
    #[must_use]
    pub fn token(mut self, name: impl Into<String>, token: Secret, scopes: Scopes) -> Self {
        self.tokens.push((name.into(), token, scopes));
        self
    }

    /// Validate and digest the tokens.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoSecrets`] for an empty set, [`ConfigError::DuplicateName`] for a
    /// repeated name, [`ConfigError::DuplicateSecret`] for a repeated token,
    /// [`ConfigError::InvalidValue`] for a name that is not printable ASCII or a token with
    /// characters a bearer token cannot carry (RFC 6750 `b64token`).
    pub fn build(self) -> Result<BearerTokens, ConfigError> {
        if self.tokens.is_empty() {
            return Err(ConfigError::NoSecrets {
                verifier: "bearer tokens".to_owned(),
            });
        }
        let mut set = NamedDigests::new(AuthMethod::Bearer);
        for (name, token, scopes) in self.tokens {
            check_token_text(&name, "token name")?;
            let mut header = b"Bearer ".to_vec();
            header.extend_from_slice(token.expose());
            let well_formed = matches!(
                crate::authorization::parse_value(&header),
                crate::authorization::Authorization::Bearer(t) if t == token.expose()
            );
            zeroize::Zeroize::zeroize(&mut header);
            if !well_formed {
                return Err(ConfigError::InvalidValue {
                    field: "bearer token",
                });
            }
            set.push("token", name, SecretDigest::of(&[token.expose()]), scopes)?;
        }
        Ok(BearerTokens {
            inner: Arc::new(set),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> Secret {
        Secret::from_utf8(text).unwrap()
    }

    #[test]
    fn each_member_is_accepted_with_its_name_and_scopes() {
        let tokens = BearerTokens::builder()
            .token(
                "a",
                secret("token-aaaaaaaaaaaaaaaa"),
                Scopes::from_iter(["x"]),
            )
            .token(
                "b",
                secret("token-bbbbbbbbbbbbbbbb"),
                Scopes::from_iter(["y"]),
            )
            .build()
            .unwrap();
        let caller = tokens.check(b"token-bbbbbbbbbbbbbbbb").unwrap();
        assert_eq!(
            (caller.method(), caller.id(), caller.key_id()),
            (AuthMethod::Bearer, "b", Some("b"))
        );
        assert!(caller.has_scope("y") && !caller.has_scope("x"));
        assert_eq!(
            tokens.check(b"token-bbbbbbbbbbbbbbb").unwrap_err(),
            AuthErrorKind::InvalidCredentials
        );
    }

    #[test]
    fn token_with_a_space_is_refused_at_build_time() {
        let err = BearerTokens::builder()
            .token("a", secret("token with a space!"), Scopes::empty())
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            ConfigError::InvalidValue {
                field: "bearer token"
            }
        );
    }

    #[test]
    fn repeated_names_and_tokens_are_refused() {
        let same_name = BearerTokens::builder()
            .token("a", secret("token-aaaaaaaaaaaaaaaa"), Scopes::empty())
            .token("a", secret("token-bbbbbbbbbbbbbbbb"), Scopes::empty())
            .build();
        assert!(matches!(
            same_name,
            Err(ConfigError::DuplicateName { what: "token", .. })
        ));
        let same_token = BearerTokens::builder()
            .token("a", secret("token-aaaaaaaaaaaaaaaa"), Scopes::empty())
            .token("b", secret("token-aaaaaaaaaaaaaaaa"), Scopes::empty())
            .build();
        assert!(matches!(same_token, Err(ConfigError::DuplicateSecret)));
    }

    #[test]
    fn list_of_name_token_pairs_is_parsed() {
        let tokens = BearerTokens::from_list(
            "VAR",
            "a=tok_aaaaaaaaaaaaaaaa,b=tok_bbbbbbbbbbbbbbbb",
            &Scopes::from_iter(["s"]),
        )
        .unwrap();
        assert_eq!(tokens.names().collect::<Vec<_>>(), ["a", "b"]);
        assert!(
            tokens
                .check(b"tok_bbbbbbbbbbbbbbbb")
                .unwrap()
                .has_scope("s")
        );
        let err = BearerTokens::from_list("VAR", "no-equals-sign", &Scopes::empty()).unwrap_err();
        assert_eq!(
            err,
            ConfigError::InvalidList {
                name: "VAR".into(),
                expected: "name=token"
            }
        );
    }

    #[test]
    fn empty_set_is_refused() {
        assert!(matches!(
            BearerTokens::builder().build(),
            Err(ConfigError::NoSecrets { .. })
        ));
    }

    #[test]
    fn debug_names_tokens_but_not_their_values() {
        let tokens = BearerTokens::builder()
            .token("agent", secret("token-aaaaaaaaaaaaaaaa"), Scopes::empty())
            .build()
            .unwrap();
        let printed = format!("{tokens:?}");
        assert!(printed.contains("agent") && !printed.contains("token-aaaa"));
    }
}
