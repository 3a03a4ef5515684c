//! Delegation: an agent calling on behalf of a user, both proven, in one caller context
//! (RFC 8693's subject and actor). [`Delegation`] needs feature `jwt`; [`PlatformUser`],
//! where a platform names its user, serves signatures on their own too
//! ([`SignatureVerifierBuilder::on_behalf_of`](crate::signature::SignatureVerifierBuilder::on_behalf_of)).
//!
//! A [`Delegation`] requires two proofs on one request: the agent's (a signature scheme, a
//! static token, Basic, a self-issued or external token) and the user's (a self-issued JWT
//! or an external access token), each read from where it travels. The decision is made
//! once: both pass and the request goes on, or it is refused with one answer. Revocation
//! and replay protection are consulted once, after everything else passed, so a delivery
//! refused for a bad user token can be retried with a good one.
//!
//! The handler sees the user as the [`Caller`](crate::Caller) (`id`, claims) and the agent as its
//! [`actor`](crate::Caller::actor); the scopes in force are the user's, intersected with the
//! agent's when [`DelegationBuilder::agent_scopes`] limits them. When the platform names the
//! user ([`DelegationBuilder::bind`]), that name must be the user the token is for (`sub`, or
//! [`DelegationBuilder::bound_claim`]): a mismatch is 403. A user token minted for one agent
//! (an `act` claim, [`TokenRequest::actor`](crate::jwt::TokenRequest::actor)) is accepted only
//! from that agent (403 otherwise), and never without one (401).
//!
//! ```
//! # #[cfg(feature = "jwt")] {
//! use callguard::{GuardLayer, Scopes, Secret, providers};
//! use callguard::delegation::{Delegation, PlatformUser};
//! use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier};
//!
//! let agent = providers::sendbird().signing_secret("master", "sendbird-master-api-token-0123").build()?;
//! let key = JwtKey::hmac(JwtAlgorithm::HS256, &Secret::from_utf8("a-jwt-signing-key-of-32-bytes!!!")?)?;
//! let users = JwtVerifier::new(JwtConfig::builder().key("k1", key).build()?);
//! let refunds = Delegation::builder(agent, users)
//!     .bind(PlatformUser::json_pointer("/user_id")?)
//!     .build()?;
//! let layer = GuardLayer::new(refunds);
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod binding;

pub use binding::PlatformUser;
#[cfg(feature = "jwt")]
pub(crate) use binding::Unreadable;

#[cfg(feature = "jwt")]
mod delegated;
#[cfg(feature = "jwt")]
pub use delegated::{Delegation, DelegationBuilder, UserTokens};
#[cfg(feature = "jwt")]
mod inspect;
#[cfg(feature = "jwt")]
pub(crate) use inspect::DelegatedBody;
