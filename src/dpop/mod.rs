//! DPoP (RFC 9449) on the resource server: a proof JWT in the `DPoP` header, signed by a key
//! the client holds and names in the proof's header, bound to the request (`htm`, `htu`),
//! to the access token (`ath`), and to the token's `cnf.jkt` by the key's RFC 7638
//! thumbprint.
//!
//! [`Dpop`] is the configuration a token verifier is given; the bearer row of the
//! authenticator's table then checks, on its one path, the proof (`proof.rs`: its JWS through
//! the shared core with the key it carries; the request URI it names compared after
//! normalisation, `htu.rs`), the token's binding to the proof key's thumbprint
//! (`thumbprint.rs`), a server nonce (`nonce.rs`), and owes the proof's `jti` to the replay
//! store as one store step.

mod config;
pub(crate) mod htu;
pub(crate) mod nonce;
pub(crate) mod proof;
pub(crate) mod thumbprint;

pub use config::{Dpop, DpopBuilder};
