//! A delegated request's one decision: the user's token read from where it travels, the
//! agent's proof by the agent's own authenticator, the platform's claim from the head; then
//! the two combined, at once or once the agent's check over the body passed.

use super::Unreadable;
use super::delegated::{Delegation, PendingDelegation, UserTokenAt, UserTokens, same_proof};
use crate::authenticator::{Head, Inspection, Method};
use crate::authorization::{self, Authorization};
use crate::caller::Caller;
use crate::error::{AuthError, AuthErrorKind, ChallengeScheme, Challenges, Refusal};
use crate::guard::{BodyCheck, Owed};
#[cfg(feature = "oauth")]
use crate::oauth::Checked;

/// A delegation's row of the authenticator's table.
impl Method for Delegation {
    fn name(&self) -> String {
        format!("delegated:{}", self.inner.agent.name())
    }

    fn challenges(&self) -> Challenges {
        self.inner
            .agent
            .challenges()
            .union(Challenges::one(ChallengeScheme::Bearer))
    }

    fn credentials(&self) -> Vec<String> {
        self.inner.agent.credentials()
    }

    fn default_body_limit(&self) -> usize {
        self.inner.agent.default_body_limit()
    }

    /// A delegation is composed on its own, never as one choice of `any_of`.
    fn presented(&self, _: &Head<'_>) -> bool {
        false
    }

    fn inspect(&self, head: &Head<'_>) -> Inspection {
        inspect(self, head)
    }
}

/// Inspect a delegated request: the user's token from where it travels, the agent's proof
/// by the agent's own authenticator, and the platform's claim from the head; then combine
/// (now, or once the agent's signature verified over the body).
fn inspect(delegation: &Delegation, head: &Head<'_>) -> Inspection {
    let parts = head.parts;
    let inner = &delegation.inner;
    let bearer = || Challenges::one(ChallengeScheme::Bearer);
    let all = || inner.agent.challenges().union(bearer());
    let token = match &inner.user_token {
        UserTokenAt::Authorization => match head.authorization() {
            Authorization::Absent => None,
            Authorization::Bearer(token) => Some(Ok(token)),
            _ => Some(Err(AuthErrorKind::MalformedCredentials)),
        },
        UserTokenAt::Header(name) => {
            let mut values = parts.headers.get_all(name).iter();
            match (values.next(), values.next()) {
                (None, _) => None,
                (Some(value), None) if value.len() > authorization::MAX_CREDENTIAL_LEN => {
                    Some(Err(AuthErrorKind::MalformedCredentials))
                }
                (Some(value), None) => {
                    // One token in both places would make one proof count twice, in
                    // whatever spelling it comes.
                    let same = matches!(
                        head.authorization(),
                        Authorization::Bearer(agent)
                            if same_proof(agent, value.as_bytes())
                    );
                    Some(if same {
                        Err(AuthErrorKind::ConflictingCredentials)
                    } else {
                        Ok(value.as_bytes())
                    })
                }
                (Some(_), Some(_)) => Some(Err(AuthErrorKind::DuplicateHeader)),
            }
        }
    };
    let agent = inner.agent.inspect_head(head);
    let token = match (token, &agent) {
        (None, Inspection::Absent) => return Inspection::Absent,
        (None, _) => {
            return Inspection::Rejected(AuthError::new(
                AuthErrorKind::MissingCredentials,
                bearer(),
            ));
        }
        (Some(_), Inspection::Absent) => {
            return Inspection::Rejected(AuthError::new(AuthErrorKind::MissingCredentials, all()));
        }
        (Some(Err(kind)), _) => return Inspection::Rejected(AuthError::new(kind, bearer())),
        (Some(Ok(token)), _) => token,
    };
    let head_claim = inner
        .binding
        .as_ref()
        .and_then(|binding| binding.read_head(parts));
    let user = match &inner.user {
        UserTokens::Jwt(verifier) => verifier.check(token),
        #[cfg(feature = "oauth")]
        UserTokens::OAuth(tokens) => match tokens.check(token, crate::ClientAddr::of(parts)) {
            Checked::Done(result) => result,
            Checked::Wait(pending) => {
                let delegation = delegation.clone();
                return Inspection::Pending(Box::pin(async move {
                    combine(&delegation, agent, pending.await, head_claim)
                }));
            }
        },
    };
    combine(delegation, agent, user, head_claim)
}

/// One decision from the agent's inspection and the user's verified token.
fn combine(
    delegation: &Delegation,
    agent: Inspection,
    user: Result<Caller, Refusal>,
    head_claim: Option<Result<String, Unreadable>>,
) -> Inspection {
    // The user's token travels as a bearer token: one bound to a key is refused, as the
    // bearer row refuses it.
    let user = user.and_then(|user| {
        crate::bearer_router::refuse_key_binding(&user)?;
        Ok(user)
    });
    let user = match user {
        Ok(user) => user,
        Err(refusal) => {
            return Inspection::Rejected(AuthError::refused(
                refusal,
                Challenges::one(ChallengeScheme::Bearer),
            ));
        }
    };
    let pending = PendingDelegation {
        delegation: delegation.clone(),
        user,
        head_claim,
    };
    // The user's steps first, then the agent's.
    let finish = |pending: PendingDelegation, agent: &Caller, agent_owes: Owed| match pending
        .complete(agent, None)
    {
        Ok((caller, user_owes)) => Inspection::Accepted {
            caller,
            owed: user_owes.then(agent_owes),
        },
        Err(error) => Inspection::Rejected(error),
    };
    match agent {
        Inspection::Accepted { caller, owed } => finish(pending, &caller, owed),
        Inspection::NeedsBody(read) => Inspection::NeedsBody(read.wrapped(|agent| {
            BodyCheck::Delegated(Box::new(DelegatedBody {
                agent,
                user: Some(pending),
            }))
        })),
        #[cfg(feature = "oauth")]
        Inspection::Pending(agent) => Inspection::Pending(Box::pin(async move {
            match agent.await {
                Inspection::Accepted { caller, owed } => finish(pending, &caller, owed),
                other => other,
            }
        })),
        other => other,
    }
}

/// A delegated request whose agent proves itself over the body: the agent's check, and the
/// user's proven side waiting for it.
pub(crate) struct DelegatedBody {
    pub(crate) agent: BodyCheck,
    user: Option<PendingDelegation>,
}

impl DelegatedBody {
    /// The agent's check decides first; a failure refuses the request before any store
    /// records anything. Then the two are combined; the user's store steps run first, then
    /// the agent's (its replay record).
    pub(crate) fn finish(
        &mut self,
        body: &[u8],
        authenticator: &crate::authenticator::Authenticator,
        challenges: Challenges,
    ) -> Result<(Caller, Owed), AuthError> {
        let (agent, agent_owes) = self.agent.finish(body, authenticator, challenges)?;
        let pending = self
            .user
            .take()
            .expect("a delegated body check finishes once");
        let (caller, user_owes) = pending.complete(&agent, Some(body))?;
        Ok((caller, user_owes.then(agent_owes)))
    }
}
