//! Constant-time equality of 32-byte values (digests and zero-padded MAC tags), a word at a
//! time.
//!
//! `subtle`'s slice comparison hides every byte behind an optimisation barrier, about ten
//! instructions a byte; comparing four 64-bit words with `subtle`'s `u64` comparison keeps
//! the same guarantee (no branch or early exit on the data) at a fraction of the cost.
//! `benches/constant_time_counts.rs` checks the result by counting instructions.

use subtle::{Choice, ConstantTimeEq};

/// Whether `a` and `b` are equal, in time independent of their contents.
pub(crate) fn eq_32(a: &[u8; 32], b: &[u8; 32]) -> Choice {
    let word = |bytes: &[u8; 32], at: usize| {
        let mut chunk = [0u8; 8];
        chunk.copy_from_slice(&bytes[at..at + 8]);
        u64::from_ne_bytes(chunk)
    };
    let difference = (0..32)
        .step_by(8)
        .fold(0u64, |acc, at| acc | (word(a, at) ^ word(b, at)));
    difference.ct_eq(&0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_only_when_every_bit_is() {
        let a: [u8; 32] = std::array::from_fn(|i| i as u8 * 7);
        assert!(bool::from(eq_32(&a, &a)));
        for byte in 0..32 {
            for bit in 0..8 {
                let mut b = a;
                b[byte] ^= 1 << bit;
                assert!(!bool::from(eq_32(&a, &b)), "byte {byte} bit {bit}");
            }
        }
    }
}
