//! The keyed MAC primitives a signature scheme can use, behind one small enum so the rest of
//! the verifier does not care which hash is inside.

use hmac::{HmacReset, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;
use subtle::Choice;

use crate::ct::eq_32;

use super::header::{Candidates, MAX_TAG_LEN};

/// The MAC a scheme signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// HMAC-SHA256: every scheme but the legacy ones.
    #[default]
    HmacSha256,
    /// HMAC-SHA1: only for platforms that still sign with it (SignalWire's and Twilio's
    /// `X-…-Signature`). Its use here is as a MAC, where SHA-1's collision weakness does
    /// not apply, but prefer SHA-256 wherever the platform offers it.
    HmacSha1,
}

impl SignatureAlgorithm {
    /// The length of this algorithm's tag in bytes.
    pub fn tag_len(self) -> usize {
        match self {
            Self::HmacSha256 => 32,
            Self::HmacSha1 => 20,
        }
    }
}

/// A MAC state keyed once at build time and cloned per request. The resettable form, so a
/// request's state is finalised where it lies (in the request's boxed check) rather than
/// moved out to be consumed.
#[derive(Clone)]
pub(crate) enum KeyedMac {
    Sha256(HmacReset<Sha256>),
    Sha1(HmacReset<Sha1>),
}

impl KeyedMac {
    pub(crate) fn new(algorithm: SignatureAlgorithm, key: &[u8]) -> Self {
        const ANY_LENGTH: &str = "HMAC accepts keys of any length";
        match algorithm {
            SignatureAlgorithm::HmacSha256 => {
                Self::Sha256(HmacReset::new_from_slice(key).expect(ANY_LENGTH))
            }
            SignatureAlgorithm::HmacSha1 => {
                Self::Sha1(HmacReset::new_from_slice(key).expect(ANY_LENGTH))
            }
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha256(mac) => mac.update(data),
            Self::Sha1(mac) => mac.update(data),
        }
    }

    /// This key's tag over one fixed message: equal for two keys (but for a negligible
    /// chance) exactly when HMAC treats them as one key (a key and itself padded with zero
    /// bytes, a long key and its digest), for telling duplicate secrets apart when a
    /// verifier is built.
    pub(crate) fn probe_tag(&self) -> Vec<u8> {
        let mut mac = self.clone();
        mac.update(b"callguard: is this secret configured twice?");
        mac.finalize_bytes()
    }

    /// Finalise into the tag's bytes, for signing.
    pub(crate) fn finalize_bytes(self) -> Vec<u8> {
        match self {
            Self::Sha256(mac) => mac.finalize().as_bytes().to_vec(),
            Self::Sha1(mac) => mac.finalize().as_bytes().to_vec(),
        }
    }

    /// Finalise in place (the state is left reset, and dropped with its request), compare
    /// with every candidate in constant time, and return the tag too (a deterministic
    /// function of the signed message, used as replay key material).
    pub(crate) fn finish(&mut self, candidates: &Candidates) -> (Choice, [u8; MAX_TAG_LEN]) {
        // Tags shorter than `MAX_TAG_LEN` are zero-padded on both sides, so comparing the
        // padded arrays compares the tags.
        let compare = |tag: &[u8]| {
            let mut copy = [0u8; MAX_TAG_LEN];
            copy[..tag.len()].copy_from_slice(tag);
            let matched = candidates.padded().fold(Choice::from(0), |acc, candidate| {
                acc | eq_32(&copy, candidate)
            });
            (matched, copy)
        };
        match self {
            Self::Sha256(mac) => compare(mac.finalize_reset().as_bytes()),
            Self::Sha1(mac) => compare(mac.finalize_reset().as_bytes()),
        }
    }
}
