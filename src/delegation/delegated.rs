//! The composition that requires both proofs.

use std::fmt;
use std::sync::Arc;

use http::HeaderName;

use super::{PlatformUser, Unreadable};

use crate::authenticator::Authenticator;
use crate::caller::{Caller, Scopes};
use crate::error::{AuthError, AuthErrorKind, ChallengeScheme, Challenges, ConfigError};
use crate::jwt::{JwtVerifier, RevocationCheck};
#[cfg(feature = "oauth")]
use crate::oauth::AccessTokens;

/// What proves the user: tokens this server minted, or access tokens from external issuers
/// (with feature `oauth`; more kinds may come).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum UserTokens {
    /// JWTs this server issued.
    Jwt(JwtVerifier),
    /// Access tokens from other parties' authorization servers.
    #[cfg(feature = "oauth")]
    OAuth(AccessTokens),
}

impl From<JwtVerifier> for UserTokens {
    fn from(verifier: JwtVerifier) -> Self {
        Self::Jwt(verifier)
    }
}

#[cfg(feature = "oauth")]
impl From<AccessTokens> for UserTokens {
    fn from(tokens: AccessTokens) -> Self {
        Self::OAuth(tokens)
    }
}

/// Where the user's token travels.
#[derive(Clone, Debug)]
pub(crate) enum UserTokenAt {
    /// `Authorization: Bearer`, when the agent proves itself another way (a signature).
    Authorization,
    /// A header of its own, holding the bare token, when the agent uses `Authorization`.
    Header(HeaderName),
}

/// A composition that requires an agent's proof and a user's proof on one request. See the
/// [module docs](crate::delegation).
#[derive(Clone)]
pub struct Delegation {
    pub(crate) inner: Arc<DelegationInner>,
}

pub(crate) struct DelegationInner {
    pub(crate) agent: Authenticator,
    pub(crate) agent_scopes: Option<Scopes>,
    pub(crate) user: UserTokens,
    pub(crate) user_token: UserTokenAt,
    pub(crate) binding: Option<PlatformUser>,
    pub(crate) bound_claim: Box<str>,
}

impl fmt::Debug for Delegation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("Delegation")
            .field("agent", &inner.agent)
            .field("user", &inner.user)
            .field("user_token", &inner.user_token)
            .field("binding", &inner.binding)
            .field("bound_claim", &inner.bound_claim)
            .finish()
    }
}

/// Builds a [`Delegation`].
#[derive(Debug)]
pub struct DelegationBuilder {
    agent: Authenticator,
    agent_scopes: Option<Scopes>,
    user: UserTokens,
    user_token: UserTokenAt,
    user_token_header: Option<String>,
    binding: Option<PlatformUser>,
    bound_claim: String,
}

impl Delegation {
    /// Require `agent`'s proof and a user token from `user`, the user token in
    /// `Authorization: Bearer` unless [`DelegationBuilder::user_token_header`] says otherwise.
    pub fn builder(
        agent: impl Into<Authenticator>,
        user: impl Into<UserTokens>,
    ) -> DelegationBuilder {
        DelegationBuilder {
            agent: agent.into(),
            agent_scopes: None,
            user: user.into(),
            user_token: UserTokenAt::Authorization,
            user_token_header: None,
            binding: None,
            bound_claim: "sub".to_owned(),
        }
    }

    /// A [`GuardLayer`](crate::GuardLayer) that requires both proofs.
    pub fn layer(self) -> crate::GuardLayer {
        crate::GuardLayer::new(self)
    }
}

impl DelegationBuilder {
    /// Read the user's token from header `name` (the bare token), for agents that use
    /// `Authorization` themselves (static tokens, Basic, their own JWT).
    #[must_use]
    pub fn user_token_header(mut self, name: &str) -> Self {
        self.user_token_header = Some(name.to_owned());
        self
    }

    /// Limit the user's scopes to `scopes` when this agent uses them: an agent allowed only
    /// `refunds:read` cannot use a user's `refunds:write`.
    #[must_use]
    pub fn agent_scopes(mut self, scopes: Scopes) -> Self {
        self.agent_scopes = Some(scopes);
        self
    }

    /// Require the user the platform names at `source` to be the user the token is for.
    #[must_use]
    pub fn bind(mut self, source: PlatformUser) -> Self {
        self.binding = Some(source);
        self
    }

    /// The user token's claim the platform's user is compared with (default `sub`).
    #[must_use]
    pub fn bound_claim(mut self, claim: impl Into<String>) -> Self {
        self.bound_claim = claim.into();
        self
    }

    /// Validate and build.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidComposition`] when the user's token and an agent method would
    /// both read `Authorization`, when the binding reads a body field but the agent does not
    /// sign the body, or when the agent is itself a delegation;
    /// [`ConfigError::InvalidHeaderName`] for a bad user-token header.
    pub fn build(self) -> Result<Delegation, ConfigError> {
        let user_token = match self.user_token_header {
            Some(name) => UserTokenAt::Header(
                HeaderName::try_from(name.as_str())
                    .map_err(|_| ConfigError::InvalidHeaderName { name })?,
            ),
            None => self.user_token,
        };
        if self.agent.is_delegation() {
            return Err(ConfigError::InvalidComposition {
                reason: "the agent of a delegation cannot be a delegation",
            });
        }
        if matches!(user_token, UserTokenAt::Authorization) && self.agent.uses_authorization() {
            return Err(ConfigError::InvalidComposition {
                reason: "the agent uses Authorization: give the user's token a header of its own (user_token_header)",
            });
        }
        if self.binding.as_ref().is_some_and(PlatformUser::needs_body) && !self.agent.signs_body() {
            return Err(ConfigError::InvalidComposition {
                reason: "a body field names the user only when the agent signs the body: bind to a header or a query parameter",
            });
        }
        crate::error::check_token_text(&self.bound_claim, "bound claim")?;
        Ok(Delegation {
            inner: Arc::new(DelegationInner {
                agent: self.agent,
                agent_scopes: self.agent_scopes,
                user: self.user,
                user_token,
                binding: self.binding,
                bound_claim: self.bound_claim.into(),
            }),
        })
    }
}

/// The user's side of a delegated request, proven, waiting for the agent's (whose
/// signature needs the body) before the two are combined.
pub(crate) struct PendingDelegation {
    pub(crate) delegation: Delegation,
    pub(crate) user: Caller,
    /// The platform's claim read from the head, when it travels there.
    pub(crate) head_claim: Option<Result<String, Unreadable>>,
}

impl PendingDelegation {
    /// Combine the agent's proof with the user's: the token's `act` must name the agent,
    /// the platform's user must be the token's, and the scopes in force are the user's
    /// within the agent's. Then what the user token still owes (its revocation check).
    pub(crate) fn complete(
        self,
        agent: &Caller,
        body: Option<&[u8]>,
    ) -> Result<(Caller, crate::guard::Owed), AuthError> {
        let inner = &self.delegation.inner;
        let forbidden = |kind| AuthError::new(kind, Challenges::one(ChallengeScheme::Bearer));
        // Two proofs of one principal are the user acting as themselves, not an agent
        // acting for them (two tokens of one subject, or one token in two spellings).
        if same_principal(agent, &self.user) {
            return Err(forbidden(AuthErrorKind::ConflictingCredentials));
        }
        if let Some(act) = self.user.claims().and_then(|claims| claims.get("act")) {
            let named = act.get("sub").and_then(serde_json::Value::as_str);
            // An `act` naming an issuer binds a token agent of that issuer only.
            let issuer_ok = match act.get("iss") {
                None => true,
                Some(iss) => iss.as_str().is_some() && iss.as_str() == agent.issuer(),
            };
            if named != Some(agent.id()) || !issuer_ok {
                return Err(forbidden(AuthErrorKind::ActorMismatch));
            }
        }
        if let Some(binding) = &inner.binding {
            let claimed = match (self.head_claim, body) {
                (Some(claim), _) => claim,
                (None, Some(body)) => binding.read_body(body),
                (None, None) => Err(Unreadable::Missing),
            };
            let bound = match &*inner.bound_claim {
                "sub" => Some(self.user.id()),
                claim => self
                    .user
                    .claims()
                    .and_then(|claims| claims.get(claim))
                    .and_then(serde_json::Value::as_str),
            };
            // An empty user matches nothing: a token without `sub` binds to no one.
            let bound = bound.filter(|bound| !bound.is_empty());
            if bound.is_none() || claimed.as_deref().ok() != bound {
                return Err(forbidden(AuthErrorKind::UserMismatch));
            }
        }
        let scopes = match &inner.agent_scopes {
            Some(limit) => self.user.scopes().intersection(limit),
            None => self.user.scopes().clone(),
        };
        let caller = self.user.clone().with_scopes(scopes).with_actor(agent);
        let revocation = self
            .delegation
            .inner
            .user
            .revocation_check(&self.user)
            .map_err(|kind| AuthError::new(kind, Challenges::one(ChallengeScheme::Bearer)))?;
        Ok((caller, RevocationCheck::owed(revocation)))
    }
}

/// Whether two token callers are one principal: the same subject of the same issuer (by
/// `iss` when both name one, whichever verifier checked them; by method when neither does).
fn same_principal(agent: &Caller, user: &Caller) -> bool {
    let same_issuer = match (agent.issuer(), user.issuer()) {
        (Some(a), Some(b)) => a == b,
        (None, None) => agent.method() == user.method(),
        _ => false,
    };
    agent.claims().is_some() && user.claims().is_some() && same_issuer && agent.id() == user.id()
}

/// Whether two presented tokens are one proof: for a compact JWS, the same signed part
/// (`header.payload`), since a signature may have several spellings that verify (ECDSA's
/// `(r, s)` and `(r, n - s)`); for anything else, the same bytes.
pub(crate) fn same_proof(a: &[u8], b: &[u8]) -> bool {
    fn signed_part(token: &[u8]) -> &[u8] {
        match memchr::memrchr(b'.', token) {
            Some(dot) if memchr::memchr_iter(b'.', token).count() == 2 => &token[..dot],
            _ => token,
        }
    }
    signed_part(a) == signed_part(b)
}

impl UserTokens {
    /// The revocation check owed for the user's token, when a denylist is configured.
    pub(crate) fn revocation_check(
        &self,
        caller: &Caller,
    ) -> Result<Option<RevocationCheck>, AuthErrorKind> {
        match self {
            Self::Jwt(verifier) => verifier.revocation_check(caller),
            #[cfg(feature = "oauth")]
            Self::OAuth(tokens) => tokens.revocation_check(caller),
        }
    }
}
