//! HTTP Basic credentials (RFC 7617): a set of users and passwords, each user with scopes.
//! SignalWire agents protect their endpoints this way, and so do token endpoints.
//!
//! ```
//! use callguard::{Scopes, Secret, basic::BasicUsers};
//!
//! let users = BasicUsers::builder()
//!     .user("agent", Secret::from_utf8("correct horse battery staple")?, Scopes::from_iter(["token:mint"]))
//!     .build()?;
//! assert_eq!(users.names().collect::<Vec<_>>(), ["agent"]);
//! # Ok::<(), callguard::ConfigError>(())
//! ```
//!
//! # Security
//!
//! Each `user:password` pair is kept only as a SHA-256 digest. Presented credentials are
//! decoded, hashed once and compared with every digest in constant time. Malformed base64, a
//! missing colon or a non-UTF-8 user name are answered with 401, never a panic.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use zeroize::Zeroizing;

use crate::authenticator::{Head, Inspection, Method};
use crate::authorization::{Authorization, MAX_CREDENTIAL_LEN};
use crate::caller::{AuthMethod, Caller, Scopes};
use crate::error::{AuthErrorKind, ChallengeScheme, Challenges, ConfigError};
use crate::secret::Secret;
use crate::token_set::{NamedDigests, SecretDigest};

const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The user name base64 `credentials` name, before any check (to count failures by).
pub(crate) fn user_name(credentials: &[u8]) -> Option<Vec<u8>> {
    if credentials.len() > MAX_CREDENTIAL_LEN {
        return None;
    }
    let decoded = Zeroizing::new(BASE64.decode(credentials).ok()?);
    let colon = decoded.iter().position(|b| *b == b':')?;
    Some(decoded[..colon].to_vec())
}

/// A set of Basic users.
#[derive(Clone)]
pub struct BasicUsers {
    inner: Arc<NamedDigests>,
}

impl BasicUsers {
    /// A builder for an empty set.
    pub fn builder() -> BasicUsersBuilder {
        BasicUsersBuilder::default()
    }

    /// A [`GuardLayer`](crate::GuardLayer) that requires one of these users.
    pub fn layer(self) -> crate::GuardLayer {
        crate::GuardLayer::new(self)
    }

    /// Users from the environment variable `name`: comma-separated `user:password` pairs,
    /// each granted `scopes`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::MissingEnvVar`], [`ConfigError::InvalidList`] for an entry without a
    /// colon, and whatever [`BasicUsersBuilder::build`] finds.
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
            let (user, password) =
                entry
                    .split_once(':')
                    .ok_or_else(|| ConfigError::InvalidList {
                        name: source.to_owned(),
                        expected: "user:password",
                    })?;
            builder = builder.user(user, Secret::from_utf8(password)?, scopes.clone());
        }
        builder.build()
    }

    /// The user names, in the order they were added.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.inner.names()
    }

    /// The caller that base64 `credentials` prove.
    pub(crate) fn check(&self, credentials: &[u8]) -> Result<Caller, AuthErrorKind> {
        if credentials.len() > MAX_CREDENTIAL_LEN {
            return Err(AuthErrorKind::MalformedCredentials);
        }
        // Typical credentials decode into a small stack buffer; longer ones into the heap.
        // Either way the buffer is wiped when done.
        let mut small = Zeroizing::new([0u8; 192]);
        let mut large = Zeroizing::new(Vec::new());
        let buffer: &mut [u8] = if credentials.len() <= small.len() / 3 * 4 {
            &mut small[..]
        } else {
            large.resize(credentials.len() / 4 * 3 + 3, 0);
            &mut large[..]
        };
        let len = BASE64
            .decode_slice(credentials, buffer)
            .map_err(|_| AuthErrorKind::MalformedCredentials)?;
        let decoded = &buffer[..len];
        let colon = decoded
            .iter()
            .position(|b| *b == b':')
            .ok_or(AuthErrorKind::MalformedCredentials)?;
        std::str::from_utf8(&decoded[..colon]).map_err(|_| AuthErrorKind::MalformedCredentials)?;
        self.inner
            .caller(&SecretDigest::of(&[decoded]))
            .ok_or(AuthErrorKind::InvalidCredentials)
    }
}

/// `Authorization: Basic`'s row of the authenticator's table.
impl Method for BasicUsers {
    fn name(&self) -> String {
        "basic".to_owned()
    }

    fn challenges(&self) -> Challenges {
        Challenges::one(ChallengeScheme::Basic)
    }

    fn credentials(&self) -> Vec<String> {
        vec!["Basic credentials".to_owned()]
    }

    fn presented(&self, head: &Head<'_>) -> bool {
        matches!(head.authorization(), Authorization::Basic(_))
    }

    fn inspect(&self, head: &Head<'_>) -> Inspection {
        let result = match head.authorization() {
            Authorization::Absent => return Inspection::Absent,
            Authorization::Duplicate => Err(AuthErrorKind::DuplicateHeader),
            Authorization::Basic(credentials) => self.check(credentials),
            _ => Err(AuthErrorKind::MalformedCredentials),
        };
        match result {
            Ok(caller) => Inspection::accepted(caller),
            Err(kind) => Inspection::rejected(kind, self.challenges()),
        }
    }
}

impl fmt::Debug for BasicUsers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicUsers")
            .field("users", &self.names().collect::<Vec<_>>())
            .finish()
    }
}

/// Builds [`BasicUsers`].
#[derive(Default)]
pub struct BasicUsersBuilder {
    users: Vec<(String, Secret, Scopes)>,
}

impl fmt::Debug for BasicUsersBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.users.iter().map(|(name, _, _)| name).collect();
        f.debug_struct("BasicUsersBuilder")
            .field("users", &names)
            .finish()
    }
}

impl BasicUsersBuilder {
    /// Accept `user` with `password`, granting `scopes`.
    #[must_use]
    pub fn user(mut self, user: impl Into<String>, password: Secret, scopes: Scopes) -> Self {
        self.users.push((user.into(), password, scopes));
        self
    }

    /// Validate and digest the credentials.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoSecrets`] for an empty set, [`ConfigError::InvalidUserName`] for an
    /// empty name or one with a colon or non-printable characters,
    /// [`ConfigError::DuplicateName`] for a repeated user.
    pub fn build(self) -> Result<BasicUsers, ConfigError> {
        if self.users.is_empty() {
            return Err(ConfigError::NoSecrets {
                verifier: "basic users".to_owned(),
            });
        }
        let mut set = NamedDigests::new(AuthMethod::Basic);
        for (name, password, scopes) in self.users {
            let printable = name.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b':');
            if name.is_empty() || !printable {
                return Err(ConfigError::InvalidUserName);
            }
            let digest = SecretDigest::of(&[name.as_bytes(), b":", password.expose()]);
            set.push("user", name, digest, scopes)?;
        }
        Ok(BasicUsers {
            inner: Arc::new(set),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> BasicUsers {
        BasicUsers::builder()
            .user(
                "alice",
                Secret::from_utf8("alice-password-123").unwrap(),
                Scopes::from_iter(["a"]),
            )
            .user(
                "bob",
                Secret::from_utf8("bob-password-45678").unwrap(),
                Scopes::empty(),
            )
            .build()
            .unwrap()
    }

    fn encode(text: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn right_password_is_accepted_with_the_user_name() {
        let caller = users()
            .check(encode(b"bob:bob-password-45678").as_bytes())
            .unwrap();
        assert_eq!((caller.method(), caller.id()), (AuthMethod::Basic, "bob"));
    }

    #[test]
    fn another_users_password_is_rejected() {
        let err = users()
            .check(encode(b"bob:alice-password-123").as_bytes())
            .unwrap_err();
        assert_eq!(err, AuthErrorKind::InvalidCredentials);
    }

    #[test]
    fn malformed_base64_missing_colon_and_non_utf8_user_are_malformed() {
        let users = users();
        for credentials in [
            "!!!".to_owned(),
            encode(b"alicealice-password-123"),
            encode(b"\xff\xfe:alice-password-123"),
        ] {
            assert_eq!(
                users.check(credentials.as_bytes()).unwrap_err(),
                AuthErrorKind::MalformedCredentials,
                "{credentials}"
            );
        }
    }

    #[test]
    fn list_of_user_password_pairs_is_parsed() {
        let users = BasicUsers::from_list(
            "VAR",
            "ann:ann-password-000001,ben:ben-password-000002",
            &Scopes::empty(),
        )
        .unwrap();
        assert_eq!(users.names().collect::<Vec<_>>(), ["ann", "ben"]);
        let err = BasicUsers::from_list("VAR", "nocolon", &Scopes::empty()).unwrap_err();
        assert_eq!(
            err,
            ConfigError::InvalidList {
                name: "VAR".into(),
                expected: "user:password"
            }
        );
    }

    #[test]
    fn long_credentials_decode_on_the_heap_path() {
        let password = "p".repeat(600);
        let users = BasicUsers::builder()
            .user(
                "long",
                Secret::from_utf8(&password).unwrap(),
                Scopes::empty(),
            )
            .build()
            .unwrap();
        let encoded = encode(format!("long:{password}").as_bytes());
        assert_eq!(users.check(encoded.as_bytes()).unwrap().id(), "long");
    }

    #[test]
    fn password_may_contain_colons() {
        let users = BasicUsers::builder()
            .user(
                "carol",
                Secret::from_utf8("pass:with:colons!!").unwrap(),
                Scopes::empty(),
            )
            .build()
            .unwrap();
        assert!(
            users
                .check(encode(b"carol:pass:with:colons!!").as_bytes())
                .is_ok()
        );
    }

    #[test]
    fn user_names_with_colons_or_spaces_are_refused() {
        for name in ["", "a:b", "a b"] {
            let err = BasicUsers::builder()
                .user(
                    name,
                    Secret::from_utf8("some-password-1234").unwrap(),
                    Scopes::empty(),
                )
                .build()
                .unwrap_err();
            assert_eq!(err, ConfigError::InvalidUserName, "{name:?}");
        }
    }
}
