//! DPoP (RFC 9449) on the resource server: a proof JWT in the `DPoP` header, signed by a key
//! the client holds and names in the proof's header, bound to the request (`htm`, `htu`),
//! to the access token (`ath`), and to the token's `cnf.jkt` by the key's RFC 7638
//! thumbprint.
//!
//! This module checks a proof ([`proof::verify`]): its JWS through the shared core
//! (`src/jws.rs`), with the key the proof carries; the request URI it names compared after
//! normalisation ([`htu`]); the key's thumbprint ([`thumbprint`]). Wiring it into the bearer
//! row (the `DPoP` authorization scheme, `cnf.jkt`, the proof's `jti` as a store step, nonces
//! and the challenges) is the next step; until then nothing here is reachable from a guard.

#![allow(
    dead_code,
    reason = "the proof check is built and tested here first; the bearer row calls it next"
)]

pub(crate) mod htu;
pub(crate) mod proof;
pub(crate) mod thumbprint;
