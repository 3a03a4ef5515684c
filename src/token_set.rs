//! A set of secrets checked by digest: the shared core of static bearer tokens and Basic
//! credentials.
//!
//! Every entry stores only the SHA-256 of its secret. A presented credential is hashed once
//! and looked up by its digest, so the cost is one SHA-256 and one map probe whatever the
//! size of the set (1 or 10 000 tokens).
//!
//! # Why this is constant time where it matters
//!
//! The lookup's timing depends only on digest bits, never on the secrets' bytes or lengths:
//! the map is indexed by the first eight bytes of the digest, and candidates are compared
//! with `subtle`. An attacker chooses the *token*, not its digest, so steering a probe toward
//! a real entry would take a SHA-256 preimage; learning that a probe landed near one reveals
//! nothing about the token behind it. Length is hidden because every digest is 32 bytes.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::caller::{AuthMethod, Caller, Scopes};
use crate::error::ConfigError;

/// The SHA-256 digest of one configured or presented secret.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct SecretDigest([u8; 32]);

impl SecretDigest {
    pub(crate) fn of(parts: &[&[u8]]) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        Self(hasher.finalize().into())
    }
}

impl PartialEq for SecretDigest {
    fn eq(&self, other: &Self) -> bool {
        crate::ct::eq_32(&self.0, &other.0).into()
    }
}

impl Eq for SecretDigest {}

impl Hash for SecretDigest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(&self.0[..8]);
    }
}

/// A digest is already uniformly distributed: its first eight bytes are the hash.
#[derive(Default)]
struct DigestPrefixHasher(u64);

impl Hasher for DigestPrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut prefix = [0u8; 8];
        let len = bytes.len().min(8);
        prefix[..len].copy_from_slice(&bytes[..len]);
        self.0 = u64::from_le_bytes(prefix);
    }
}

/// Digests of the configured secrets, each mapped to its position in the configuration.
#[derive(Clone, Default)]
pub(crate) struct DigestSet {
    index: HashMap<SecretDigest, usize, BuildHasherDefault<DigestPrefixHasher>>,
}

impl DigestSet {
    /// Add the next entry's digest; a secret configured twice would make a match ambiguous.
    pub(crate) fn push(&mut self, digest: SecretDigest) -> Result<(), ConfigError> {
        let position = self.index.len();
        if self.index.insert(digest, position).is_some() {
            return Err(ConfigError::DuplicateSecret);
        }
        Ok(())
    }

    /// The position of the entry whose digest equals `presented`.
    pub(crate) fn find(&self, presented: &SecretDigest) -> Option<usize> {
        self.index.get(presented).copied()
    }
}

/// Named entries with their scopes, found by the digest of their secret: what static bearer
/// tokens and Basic users share. Each entry's caller is built once, with the set: a request
/// it proves gets a clone (one reference count), not a caller assembled anew.
pub(crate) struct NamedDigests {
    method: AuthMethod,
    digests: DigestSet,
    callers: Vec<Caller>,
}

impl NamedDigests {
    /// An empty set of entries that `method` proves.
    pub(crate) fn new(method: AuthMethod) -> Self {
        Self {
            method,
            digests: DigestSet::default(),
            callers: Vec::new(),
        }
    }

    /// Add an entry; a repeated name (of `what`: a token, a user) or a repeated secret is a
    /// configuration error.
    pub(crate) fn push(
        &mut self,
        what: &'static str,
        name: String,
        digest: SecretDigest,
        scopes: Scopes,
    ) -> Result<(), ConfigError> {
        if self.callers.iter().any(|existing| existing.id() == name) {
            return Err(ConfigError::DuplicateName { what, name });
        }
        self.digests.push(digest)?;
        let name: Arc<str> = name.into();
        self.callers.push(
            Caller::new(self.method, Arc::clone(&name))
                .with_key_id(name)
                .with_scopes(scopes),
        );
        Ok(())
    }

    /// The names, in the order they were added.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.callers.iter().map(Caller::id)
    }

    /// The caller whose secret has `presented`'s digest: named (and keyed) by the entry,
    /// with its scopes.
    pub(crate) fn caller(&self, presented: &SecretDigest) -> Option<Caller> {
        Some(self.callers[self.digests.find(presented)?].clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_member_and_nothing_else() {
        let mut set = DigestSet::default();
        for secret in ["alpha-token", "bravo-token", "charlie-token"] {
            set.push(SecretDigest::of(&[secret.as_bytes()])).unwrap();
        }
        assert_eq!(set.find(&SecretDigest::of(&[b"bravo-token"])), Some(1));
        assert_eq!(set.find(&SecretDigest::of(&[b"charlie-token"])), Some(2));
        assert_eq!(set.find(&SecretDigest::of(&[b"bravo-toke"])), None);
    }

    #[test]
    fn duplicate_secret_is_refused() {
        let mut set = DigestSet::default();
        set.push(SecretDigest::of(&[b"same"])).unwrap();
        assert_eq!(
            set.push(SecretDigest::of(&[b"same"])).unwrap_err(),
            ConfigError::DuplicateSecret
        );
    }

    #[test]
    fn parts_are_hashed_as_their_concatenation() {
        let mut set = DigestSet::default();
        set.push(SecretDigest::of(&[b"user", b":", b"pass"]))
            .unwrap();
        assert_eq!(set.find(&SecretDigest::of(&[b"user:pass"])), Some(0));
    }
}
