//! The closed set of methods a guard can check, and the one decision they all make about a
//! request's head.
//!
//! This file is the table of choices: each method's row (its name, challenges, the
//! credential it reads, whether a request presents it, and its inspection) is the
//! [`Method`] trait, implemented in the method's own module. Adding a method touches its
//! module and one line of [`Choice`] (and of `each_choice!`). Dispatch is a `match`, never a
//! `dyn` call per request.

use std::cell::OnceCell;
use std::sync::Arc;

use http::request::Parts;

use crate::authorization::{self, Authorization};
use crate::basic::BasicUsers;
use crate::bearer::BearerTokens;
use crate::bearer_router::BearerRouter;
use crate::caller::Caller;
use crate::custom::Custom;
#[cfg(feature = "jwt")]
use crate::delegation::Delegation;
use crate::error::{AuthError, AuthErrorKind, Challenges, ConfigError};
use crate::guard::{BodyRead, Owed};
#[cfg(feature = "jwt")]
use crate::jwt::JwtVerifier;
#[cfg(feature = "oauth")]
use crate::oauth::AccessTokens;
use crate::signature::{SignaturePreference, SignatureVerifier};

/// What a [`GuardLayer`](crate::GuardLayer) checks: one method, or any one of several.
///
/// Build one from a verifier with `From`, or combine several with
/// [`Authenticator::any_of`].
///
/// ```
/// use callguard::{Authenticator, Scopes, Secret, bearer::BearerTokens, signature::SignatureVerifier};
/// let signature = SignatureVerifier::builder()
///     .secret("k1", Secret::from_utf8("0123456789abcdef0123")?)
///     .build()?;
/// let tokens = BearerTokens::builder()
///     .token("agent", Secret::from_utf8("tok_0123456789abcdef")?, Scopes::empty())
///     .build()?;
/// let either = Authenticator::any_of([signature.into(), tokens.into()])?;
/// # Ok::<(), callguard::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Authenticator {
    choice: Choice,
}

/// One row of the table: a method a guard can check.
#[derive(Clone, Debug)]
pub(crate) enum Choice {
    /// A shared-secret signature scheme.
    Signature(SignatureVerifier),
    /// Signature schemes in order of preference: the first the request carries decides.
    FirstOf(SignaturePreference),
    /// `Authorization: Bearer`: static tokens, self-issued JWTs, external issuers' tokens,
    /// routed by the token's shape and `iss`.
    Bearer(BearerRouter),
    /// An agent's proof and a user's, both required.
    #[cfg(feature = "jwt")]
    Delegated(Delegation),
    /// `Authorization: Basic`.
    Basic(BasicUsers),
    /// A method of the application's own.
    Custom(Custom),
    /// Any one of several, chosen by what the request presents. Never nested: `any_of`
    /// flattens.
    AnyOf(AnyOf),
}

impl Choice {
    /// The signature verifier `id` names, if this choice holds it.
    fn signature_verifier(&self, id: crate::signature::VerifierId) -> Option<&SignatureVerifier> {
        match self {
            Self::Signature(verifier) => (verifier.id() == id).then_some(verifier),
            Self::FirstOf(preference) => preference.verifiers().iter().find(|v| v.id() == id),
            Self::AnyOf(any) => any
                .0
                .iter()
                .find_map(|choice| choice.signature_verifier(id)),
            #[cfg(feature = "jwt")]
            Self::Delegated(delegation) => delegation.inner.agent.signature_verifier(id),
            Self::Bearer(_) | Self::Basic(_) | Self::Custom(_) => None,
        }
    }
}

/// `$body` for whichever method `$choice` holds, bound to `$method`: static dispatch.
macro_rules! each_choice {
    ($choice:expr, $method:ident => $body:expr) => {
        match $choice {
            Choice::Signature($method) => $body,
            Choice::FirstOf($method) => $body,
            Choice::Bearer($method) => $body,
            #[cfg(feature = "jwt")]
            Choice::Delegated($method) => $body,
            Choice::Basic($method) => $body,
            Choice::Custom($method) => $body,
            Choice::AnyOf($method) => $body,
        }
    };
}

/// A request's head as the methods read it: the `Authorization` header is parsed once, by
/// the first method that asks.
pub(crate) struct Head<'a> {
    pub(crate) parts: &'a Parts,
    authorization: OnceCell<Authorization<'a>>,
}

impl<'a> Head<'a> {
    pub(crate) fn new(parts: &'a Parts) -> Self {
        Self {
            parts,
            authorization: OnceCell::new(),
        }
    }

    /// What `Authorization` holds.
    pub(crate) fn authorization(&self) -> Authorization<'a> {
        *self
            .authorization
            .get_or_init(|| authorization::parse(&self.parts.headers))
    }
}

/// A method's row of the table.
pub(crate) trait Method {
    /// The name its rejections are logged under and composition errors name it by.
    fn name(&self) -> String;

    /// The schemes a client without credentials is challenged with.
    fn challenges(&self) -> Challenges;

    /// The credentials it reads, each named as a composition error names it (a signature
    /// header, a kind of `Authorization` token): two methods of one `any_of` never share one.
    fn credentials(&self) -> Vec<String>;

    /// Whether it reads the `Authorization` header.
    fn reads_authorization(&self) -> bool {
        true
    }

    /// Whether it signs the body (every request it accepts is covered by a MAC of it).
    #[cfg_attr(not(feature = "jwt"), allow(dead_code))]
    fn signs_body(&self) -> bool {
        false
    }

    /// The body limit a guard of this method has unless told otherwise.
    fn default_body_limit(&self) -> usize {
        crate::guard::DEFAULT_BODY_LIMIT
    }

    /// Whether the request presents this method's credential: `any_of` chooses by it.
    fn presented(&self, head: &Head<'_>) -> bool;

    /// The decision about a request's head.
    fn inspect(&self, head: &Head<'_>) -> Inspection;
}

impl Method for Choice {
    fn name(&self) -> String {
        each_choice!(self, method => method.name())
    }

    fn challenges(&self) -> Challenges {
        each_choice!(self, method => method.challenges())
    }

    fn credentials(&self) -> Vec<String> {
        each_choice!(self, method => method.credentials())
    }

    fn reads_authorization(&self) -> bool {
        each_choice!(self, method => method.reads_authorization())
    }

    fn signs_body(&self) -> bool {
        each_choice!(self, method => method.signs_body())
    }

    fn default_body_limit(&self) -> usize {
        each_choice!(self, method => method.default_body_limit())
    }

    fn presented(&self, head: &Head<'_>) -> bool {
        each_choice!(self, method => method.presented(head))
    }

    fn inspect(&self, head: &Head<'_>) -> Inspection {
        each_choice!(self, method => method.inspect(head))
    }
}

/// The guard's decision after reading the head, before any body byte.
pub(crate) enum Inspection {
    /// The request carries no credential this authenticator knows.
    Absent,
    /// A credential was presented and failed: final, no other method is tried.
    Rejected(AuthError),
    /// A credential was presented and passed; the body is not needed. The service runs once
    /// the store steps `owed` (a token's revocation, …) let it through.
    Accepted { caller: Caller, owed: Owed },
    /// The decision needs the body: read it for this check.
    NeedsBody(Box<BodyRead>),
    /// The decision needs an awaited step first (a remote key set's fetch for a new key id).
    #[cfg(feature = "oauth")]
    Pending(crate::guard::PendingInspection),
}

impl Inspection {
    /// Accepted, owing nothing.
    pub(crate) fn accepted(caller: Caller) -> Self {
        Self::Accepted {
            caller,
            owed: Owed::none(),
        }
    }

    /// Refused for `kind`, with `challenges`.
    pub(crate) fn rejected(kind: AuthErrorKind, challenges: Challenges) -> Self {
        Self::Rejected(AuthError::new(kind, challenges))
    }
}

impl Authenticator {
    /// Accept a request proved by any one of `methods`, choosing by what it carries:
    ///
    /// - the request is matched to the one method whose credential it presents (a
    ///   signature header, `Authorization: Bearer` — a JWT-shaped token goes to the JWT
    ///   verifier when both JWT and static tokens are configured — or `Authorization: Basic`);
    /// - that method's answer is final: a failing credential is rejected and never falls
    ///   through to another method or to anonymous access;
    /// - credentials for two methods at once are rejected (401), as is an `Authorization`
    ///   header none of the methods understands;
    /// - a request with no credential gets one `WWW-Authenticate` challenge per scheme.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidComposition`] for an empty list, which could accept nothing,
    /// and for a [`Delegation`](crate::delegation::Delegation) among other methods (it needs
    /// both its proofs, so it cannot be one choice of several). [`ConfigError::ConflictingMethods`]
    /// for two methods that read one credential (two signature verifiers on one header, two
    /// static token sets, two JWT verifiers), naming both: every request carrying it would
    /// be refused, so make them one method instead.
    pub fn any_of(methods: impl IntoIterator<Item = Authenticator>) -> Result<Self, ConfigError> {
        let mut flat = Vec::new();
        for authenticator in methods {
            match authenticator.choice {
                Choice::AnyOf(inner) => flat.extend(inner.0.iter().cloned()),
                choice => flat.push(choice),
            }
        }
        if flat.is_empty() {
            return Err(ConfigError::InvalidComposition {
                reason: "any_of needs at least one method",
            });
        }
        #[cfg(feature = "jwt")]
        if flat.len() > 1 && flat.iter().any(|m| matches!(m, Choice::Delegated(_))) {
            return Err(ConfigError::InvalidComposition {
                reason: "a delegation needs both its proofs and cannot be one choice among others; \
                         give it a guard (a route) of its own",
            });
        }
        refuse_shared_credentials(&flat)?;
        // Every bearer token goes through one router, which tells static tokens, self-issued
        // JWTs and external issuers' tokens apart.
        let mut choices: Vec<Choice> = Vec::with_capacity(flat.len());
        for choice in flat {
            match (
                choice,
                choices.iter_mut().find(|c| matches!(c, Choice::Bearer(_))),
            ) {
                (Choice::Bearer(more), Some(Choice::Bearer(router))) => router.merge(more),
                (choice, _) => choices.push(choice),
            }
        }
        let choice = match <[Choice; 1]>::try_from(choices) {
            Ok([only]) => only,
            Err(choices) => Choice::AnyOf(AnyOf(choices.into())),
        };
        Ok(Self { choice })
    }

    /// Accept a request signed with the first of `verifiers`, in order, whose signature
    /// header it carries in that verifier's encoding; later ones are not consulted. This is
    /// how a platform that sends several signatures of different strength (SignalWire's
    /// SHA-256 and SHA-1 headers) is checked against the strongest it sent.
    ///
    /// Only signature schemes can be ordered this way; combine the result with
    /// [`Authenticator::any_of`] to accept tokens as well.
    ///
    /// A preferred scheme whose header is present decides, even when its value is
    /// malformed: a request is never checked against a weaker scheme because its stronger
    /// signature was garbled. Schemes sharing one header (SignalWire's hex and base64
    /// `X-SignalWire-Signature`) are told apart by the encoding of its value.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidComposition`] for an empty list or a method that is not a
    /// signature scheme (it would otherwise be dropped without a word).
    pub fn first_of(
        verifiers: impl IntoIterator<Item = Authenticator>,
    ) -> Result<Self, ConfigError> {
        let mut flat = Vec::new();
        for authenticator in verifiers {
            match authenticator.choice {
                Choice::Signature(verifier) => flat.push(verifier),
                Choice::FirstOf(inner) => flat.extend(inner.verifiers().iter().cloned()),
                _ => {
                    return Err(ConfigError::InvalidComposition {
                        reason: "first_of orders signature schemes only; put token methods beside it in any_of",
                    });
                }
            }
        }
        if flat.is_empty() {
            return Err(ConfigError::InvalidComposition {
                reason: "first_of needs at least one signature scheme",
            });
        }
        // A request picks the scheme by the header it sends: one scheme without the others'
        // allow-list would let anyone holding the key around it.
        if flat
            .iter()
            .any(|verifier| !verifier.same_allow_list(&flat[0]))
        {
            return Err(ConfigError::InvalidComposition {
                reason: "the schemes of one first_of must share one allow-list (allowed_from), or all have none",
            });
        }
        Ok(Self {
            choice: Choice::FirstOf(SignaturePreference::new(flat)),
        })
    }

    /// The signature verifier `id` names, wherever this authenticator holds it (alone, in
    /// a preference, in an `any_of`, as a delegation's agent).
    pub(crate) fn signature_verifier(
        &self,
        id: crate::signature::VerifierId,
    ) -> Option<&SignatureVerifier> {
        self.choice.signature_verifier(id)
    }

    /// Inspect the request head.
    pub(crate) fn inspect(&self, parts: &Parts) -> Inspection {
        self.choice.inspect(&Head::new(parts))
    }

    /// Inspect a head another method is reading too (a delegation's agent).
    #[cfg(feature = "jwt")]
    pub(crate) fn inspect_head(&self, head: &Head<'_>) -> Inspection {
        self.choice.inspect(head)
    }

    /// The schemes a client without credentials is challenged with.
    pub(crate) fn challenges(&self) -> Challenges {
        self.choice.challenges()
    }

    /// The name a guard's rejections are logged under by default: a signature verifier's
    /// identity (`github`), `bearer`, `jwt` or `basic`, joined with `+` for `any_of`.
    pub(crate) fn name(&self) -> String {
        self.choice.name()
    }

    /// The body limit a guard of this authenticator has unless told otherwise: the largest
    /// a signature method's platform delivers (the most of several), or
    /// [`DEFAULT_BODY_LIMIT`](crate::guard::DEFAULT_BODY_LIMIT).
    pub fn default_body_limit(&self) -> usize {
        self.choice.default_body_limit()
    }

    /// The credentials its methods read.
    #[cfg(feature = "jwt")]
    pub(crate) fn credentials(&self) -> Vec<String> {
        self.choice.credentials()
    }

    /// Whether this is a delegation.
    #[cfg(feature = "jwt")]
    pub(crate) fn is_delegation(&self) -> bool {
        matches!(self.choice, Choice::Delegated(_))
    }

    /// Whether any of its methods reads `Authorization`.
    #[cfg(feature = "jwt")]
    pub(crate) fn uses_authorization(&self) -> bool {
        self.choice.reads_authorization()
    }

    /// Whether every one of its methods signs the body.
    #[cfg(feature = "jwt")]
    pub(crate) fn signs_body(&self) -> bool {
        self.choice.signs_body()
    }

    /// A [`GuardLayer`](crate::GuardLayer) that requires this authenticator.
    pub fn layer(self) -> crate::GuardLayer {
        crate::GuardLayer::new(self)
    }

    /// The DPoP configuration its bearer row takes proofs under (the first, when its kinds
    /// of token have several): what its challenges name and the nonces it hands out. Kinds
    /// of token with different `Dpop` values in one guard get the first one's `algs` and
    /// nonces; give them one `Dpop` (the README says so).
    #[cfg(feature = "dpop")]
    pub(crate) fn dpop(&self) -> Option<&crate::dpop::Dpop> {
        match &self.choice {
            Choice::Bearer(router) => router.first_dpop(),
            Choice::AnyOf(any) => any.0.iter().find_map(|choice| match choice {
                Choice::Bearer(router) => router.first_dpop(),
                _ => None,
            }),
            _ => None,
        }
    }
}

/// Refuse two methods that read one credential: every request carrying it would be refused
/// as carrying credentials for several methods.
fn refuse_shared_credentials(methods: &[Choice]) -> Result<(), ConfigError> {
    let mut seen: Vec<(String, String)> = Vec::new();
    for method in methods {
        let name = method.name();
        for credential in method.credentials() {
            if let Some((first, _)) = seen.iter().find(|(_, c)| *c == credential) {
                return Err(ConfigError::ConflictingMethods {
                    first: first.clone(),
                    second: name,
                    credential,
                });
            }
            seen.push((name.clone(), credential));
        }
    }
    Ok(())
}

/// Any one of several methods, chosen by the credential the request presents.
#[derive(Clone, Debug)]
pub(crate) struct AnyOf(Arc<[Choice]>);

impl Method for AnyOf {
    fn name(&self) -> String {
        self.0
            .iter()
            .map(Method::name)
            .collect::<Vec<_>>()
            .join("+")
    }

    fn challenges(&self) -> Challenges {
        self.0
            .iter()
            .fold(Challenges::default(), |all, m| all.union(m.challenges()))
    }

    fn credentials(&self) -> Vec<String> {
        self.0.iter().flat_map(Method::credentials).collect()
    }

    fn reads_authorization(&self) -> bool {
        self.0.iter().any(Method::reads_authorization)
    }

    fn signs_body(&self) -> bool {
        self.0.iter().all(Method::signs_body)
    }

    fn default_body_limit(&self) -> usize {
        self.0
            .iter()
            .map(Method::default_body_limit)
            .max()
            .unwrap_or(crate::guard::DEFAULT_BODY_LIMIT)
    }

    fn presented(&self, head: &Head<'_>) -> bool {
        self.0.iter().any(|m| m.presented(head))
    }

    /// The one method whose credential the request presents decides; credentials for two
    /// methods, or an `Authorization` header none of them reads, are refused.
    fn inspect(&self, head: &Head<'_>) -> Inspection {
        let mut presented = self.0.iter().filter(|m| m.presented(head));
        let first = presented.next();
        if presented.next().is_some() {
            return Inspection::rejected(AuthErrorKind::ConflictingCredentials, self.challenges());
        }
        let auth = head.authorization();
        let authorization_unclaimed = auth.is_present()
            && self.reads_authorization()
            && !first.is_some_and(Method::reads_authorization);
        if authorization_unclaimed {
            let kind = if auth == Authorization::Duplicate {
                AuthErrorKind::DuplicateHeader
            } else if first.is_some() {
                AuthErrorKind::ConflictingCredentials
            } else {
                AuthErrorKind::MalformedCredentials
            };
            return Inspection::rejected(kind, self.challenges());
        }
        match first {
            Some(method) => method.inspect(head),
            None => Inspection::Absent,
        }
    }
}

impl From<SignatureVerifier> for Authenticator {
    fn from(verifier: SignatureVerifier) -> Self {
        Self {
            choice: Choice::Signature(verifier),
        }
    }
}

impl From<BearerTokens> for Authenticator {
    fn from(tokens: BearerTokens) -> Self {
        Self {
            choice: Choice::Bearer(BearerRouter::from(tokens)),
        }
    }
}

impl Authenticator {
    pub(crate) fn from_custom(custom: Custom) -> Self {
        Self {
            choice: Choice::Custom(custom),
        }
    }
}

impl From<BasicUsers> for Authenticator {
    fn from(users: BasicUsers) -> Self {
        Self {
            choice: Choice::Basic(users),
        }
    }
}

#[cfg(feature = "jwt")]
impl From<Delegation> for Authenticator {
    fn from(delegation: Delegation) -> Self {
        Self {
            choice: Choice::Delegated(delegation),
        }
    }
}

#[cfg(feature = "oauth")]
impl From<AccessTokens> for Authenticator {
    fn from(tokens: AccessTokens) -> Self {
        Self {
            choice: Choice::Bearer(BearerRouter::from(tokens)),
        }
    }
}

#[cfg(feature = "jwt")]
impl From<JwtVerifier> for Authenticator {
    fn from(verifier: JwtVerifier) -> Self {
        Self {
            choice: Choice::Bearer(BearerRouter::from(verifier)),
        }
    }
}
