//! A set of secrets checked by digest in constant time: the shared core of static bearer
//! tokens and Basic credentials.
//!
//! Every entry stores the SHA-256 of its secret. A presented credential is hashed once and
//! compared with every entry's digest using `subtle`, always visiting the whole set, so the
//! time taken reveals neither which entry came close nor how long any real secret is.

use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::ConfigError;

/// The SHA-256 digest of one configured secret.
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

/// Digests in the order they were configured.
#[derive(Clone, Default)]
pub(crate) struct DigestSet {
    digests: Vec<SecretDigest>,
}

impl DigestSet {
    /// Add a digest; a secret configured twice would make the match ambiguous.
    pub(crate) fn push(&mut self, digest: SecretDigest) -> Result<(), ConfigError> {
        if self
            .digests
            .iter()
            .any(|d| bool::from(d.0.ct_eq(&digest.0)))
        {
            return Err(ConfigError::DuplicateSecret);
        }
        self.digests.push(digest);
        Ok(())
    }

    pub(crate) fn len(&self) -> usize {
        self.digests.len()
    }

    /// The index of the entry whose digest equals `presented`'s, visiting every entry.
    pub(crate) fn find(&self, presented: &SecretDigest) -> Option<usize> {
        let mut found = Choice::from(0);
        let mut index = 0u64;
        for (position, digest) in self.digests.iter().enumerate() {
            let equal = digest.0.ct_eq(&presented.0);
            index.conditional_assign(&(position as u64), equal);
            found |= equal;
        }
        bool::from(found)
            .then(|| usize::try_from(index).expect("an index into the set fits in usize"))
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
