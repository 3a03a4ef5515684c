//! Server nonces (RFC 9449 §8, §9) that every replica accepts without shared state: a nonce
//! names a time window and carries a MAC of it under the configured secret, so a server
//! checks one by recomputing the MAC. A nonce is good in the window it was made in and the
//! next one; rotation is a list of secrets, the first making nonces and all checking them.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::secret::Secret;

/// The bytes of a nonce before encoding: the window (8, big-endian) and a truncated MAC (16).
const NONCE_LEN: usize = 8 + 16;

/// The MAC's domain, so that a nonce's MAC is never a MAC of this secret for anything else.
const DOMAIN: &[u8] = b"callguard dpop nonce\0";

/// The keys nonces are made and checked with, and the length of a window.
#[derive(Clone)]
pub(crate) struct Nonces {
    /// Keyed once; the first makes nonces, every one checks them.
    keys: Arc<[Hmac<Sha256>]>,
    window_seconds: u64,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nonces")
            .field("secrets", &self.keys.len())
            .field("window_seconds", &self.window_seconds)
            .finish()
    }
}

impl Nonces {
    /// Nonces under `secrets` (at least one; the caller checks), each good for one to two
    /// windows of `window_seconds`.
    pub(crate) fn new(secrets: &[Secret], window_seconds: u64) -> Self {
        let keys = secrets
            .iter()
            .map(|secret| {
                <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose())
                    .expect("HMAC takes a key of any length")
            })
            .collect();
        Self {
            keys,
            window_seconds: window_seconds.max(1),
        }
    }

    fn window(&self, now: i64) -> u64 {
        u64::try_from(now).unwrap_or(0) / self.window_seconds
    }

    fn tag(key: &Hmac<Sha256>, window: u64) -> [u8; 16] {
        let mut mac = key.clone();
        mac.update(DOMAIN);
        mac.update(&window.to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut tag = [0; 16];
        tag.copy_from_slice(&full[..16]);
        tag
    }

    /// The nonce to hand out at `now` (unix seconds).
    pub(crate) fn current(&self, now: i64) -> String {
        let window = self.window(now);
        let mut bytes = [0; NONCE_LEN];
        bytes[..8].copy_from_slice(&window.to_be_bytes());
        bytes[8..].copy_from_slice(&Self::tag(&self.keys[0], window));
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Whether `nonce` was made by one of the secrets in the current window or the one
    /// before it.
    pub(crate) fn accepts(&self, nonce: &str, now: i64) -> bool {
        let mut bytes = [0; NONCE_LEN];
        match URL_SAFE_NO_PAD.decode_slice(nonce.as_bytes(), &mut bytes) {
            Ok(NONCE_LEN) if nonce.len() == 32 => {}
            _ => return false,
        }
        let window = u64::from_be_bytes(bytes[..8].try_into().expect("eight bytes"));
        let current = self.window(now);
        if window != current && window.checked_add(1) != Some(current) {
            return false;
        }
        // Every key is tried, so the time taken does not say which one matched.
        self.keys.iter().fold(false, |matched, key| {
            matched | bool::from(Self::tag(key, window).ct_eq(&bytes[8..]))
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
    fn a_nonce_is_good_for_its_window_and_the_next_only() {
        let nonces = Nonces::new(&[secret("a-nonce-secret-of-32-bytes-long!")], 60);
        let nonce = nonces.current(6_000);
        assert_eq!(nonce.len(), 32);
        assert!(nonces.accepts(&nonce, 6_000));
        assert!(nonces.accepts(&nonce, 6_059));
        assert!(nonces.accepts(&nonce, 6_119));
        assert!(!nonces.accepts(&nonce, 6_120));
        assert!(!nonces.accepts(&nonce, 5_999));
    }

    #[test]
    fn a_made_up_or_altered_nonce_is_refused() {
        let nonces = Nonces::new(&[secret("a-nonce-secret-of-32-bytes-long!")], 60);
        let nonce = nonces.current(6_000);
        let mut altered = nonce.clone().into_bytes();
        altered[31] = if altered[31] == b'A' { b'B' } else { b'A' };
        assert!(!nonces.accepts(std::str::from_utf8(&altered).unwrap(), 6_000));
        assert!(!nonces.accepts("", 6_000));
        assert!(!nonces.accepts(&format!("{nonce}A"), 6_000));
        let other = Nonces::new(&[secret("another-secret-of-32-bytes-long!")], 60);
        assert!(!other.accepts(&nonce, 6_000));
    }

    #[test]
    fn rotation_checks_with_every_secret_and_makes_with_the_first() {
        let old = Nonces::new(&[secret("the-old-nonce-secret-32-bytes-ok")], 60);
        let rotated = Nonces::new(
            &[
                secret("the-new-nonce-secret-32-bytes-ok"),
                secret("the-old-nonce-secret-32-bytes-ok"),
            ],
            60,
        );
        assert!(rotated.accepts(&old.current(6_000), 6_000));
        assert!(!old.accepts(&rotated.current(6_000), 6_000));
    }
}
