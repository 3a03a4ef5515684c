//! The closed set of methods a guard can check, and the one decision they all make about a
//! request's head.

use std::sync::Arc;

use http::request::Parts;

use crate::authorization::{self, Authorization};
use crate::basic::BasicUsers;
use crate::bearer::BearerTokens;
use crate::caller::Caller;
use crate::custom::Custom;
#[cfg(feature = "jwt")]
use crate::delegation::Delegation;
#[cfg(feature = "jwt")]
use crate::error::Refusal;
use crate::error::{AuthError, AuthErrorKind, ChallengeScheme, Challenges, ConfigError};
use crate::guard::BodyRead;
use crate::guard::Owed;
#[cfg(feature = "jwt")]
use crate::jwt::{JwtVerifier, RevocationCheck};
#[cfg(feature = "oauth")]
use crate::oauth::{AccessTokens, Checked};
use crate::signature::{HeadCheck, SignatureVerifier};

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
    method: Method,
}

#[derive(Clone, Debug)]
enum Method {
    Signature(SignatureVerifier),
    Bearer(BearerTokens),
    #[cfg(feature = "jwt")]
    Jwt(JwtVerifier),
    #[cfg(feature = "oauth")]
    OAuth(AccessTokens),
    /// An agent's proof and a user's, both required.
    #[cfg(feature = "jwt")]
    Delegated(Delegation),
    Basic(BasicUsers),
    /// A method of the application's own.
    Custom(Custom),
    /// Never nested: `any_of` flattens.
    AnyOf(Arc<[Method]>),
    /// Signature schemes in order of preference: the first the request carries decides.
    FirstOf(Arc<[SignatureVerifier]>),
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
            match authenticator.method {
                Method::AnyOf(inner) => flat.extend(inner.iter().cloned()),
                method => flat.push(method),
            }
        }
        if flat.is_empty() {
            return Err(ConfigError::InvalidComposition {
                reason: "any_of needs at least one method",
            });
        }
        #[cfg(feature = "jwt")]
        if flat.len() > 1 && flat.iter().any(|m| matches!(m, Method::Delegated(_))) {
            return Err(ConfigError::InvalidComposition {
                reason: "a delegation needs both its proofs and cannot be one choice among others; \
                         give it a guard (a route) of its own",
            });
        }
        refuse_shared_credentials(&flat)?;
        Ok(Self {
            method: Method::AnyOf(flat.into()),
        })
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
            match authenticator.method {
                Method::Signature(verifier) => flat.push(verifier),
                Method::FirstOf(inner) => flat.extend(inner.iter().cloned()),
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
        Ok(Self {
            method: Method::FirstOf(flat.into()),
        })
    }

    /// Inspect the request head.
    pub(crate) fn inspect(&self, parts: &Parts) -> Inspection {
        match &self.method {
            Method::AnyOf(methods) => inspect_any(methods, parts),
            method => inspect_one(method, parts, None),
        }
    }

    /// The schemes a client without credentials is challenged with.
    pub(crate) fn challenges(&self) -> Challenges {
        challenges_of(&self.method)
    }

    /// The name a guard's rejections are logged under by default: a signature verifier's
    /// identity (`github`), `bearer`, `jwt` or `basic`, joined with `+` for `any_of`.
    pub(crate) fn name(&self) -> String {
        name_of(&self.method)
    }

    /// The body limit a guard of this authenticator has unless told otherwise: the largest
    /// a signature method's platform delivers (the most of several), or
    /// [`DEFAULT_BODY_LIMIT`](crate::DEFAULT_BODY_LIMIT).
    pub fn default_body_limit(&self) -> usize {
        default_body_limit_of(&self.method)
    }

    /// The credentials its methods read.
    #[cfg(feature = "jwt")]
    pub(crate) fn credentials(&self) -> Vec<String> {
        credentials_of(&self.method)
    }

    /// Whether this is a delegation.
    #[cfg(feature = "jwt")]
    pub(crate) fn is_delegation(&self) -> bool {
        matches!(self.method, Method::Delegated(_))
    }

    /// Whether any of its methods reads `Authorization`.
    #[cfg(feature = "jwt")]
    pub(crate) fn uses_authorization(&self) -> bool {
        match &self.method {
            Method::AnyOf(methods) => methods.iter().any(uses_authorization),
            method => uses_authorization(method),
        }
    }

    /// Whether every one of its methods signs the body.
    #[cfg(feature = "jwt")]
    pub(crate) fn signs_body(&self) -> bool {
        let signs = |m: &Method| matches!(m, Method::Signature(_) | Method::FirstOf(_));
        match &self.method {
            Method::AnyOf(methods) => methods.iter().all(signs),
            method => signs(method),
        }
    }

    /// A [`GuardLayer`](crate::GuardLayer) that requires this authenticator.
    pub fn layer(self) -> crate::GuardLayer {
        crate::GuardLayer::new(self)
    }
}

/// The credentials a method reads, each named as a composition error would name it: a
/// signature header (or alias), or a kind of `Authorization` token.
fn credentials_of(method: &Method) -> Vec<String> {
    let header = |verifier: &SignatureVerifier| -> Vec<String> {
        verifier
            .signature_headers()
            .map(|name| format!("the `{name}` header"))
            .collect()
    };
    match method {
        Method::Signature(verifier) => header(verifier),
        Method::FirstOf(verifiers) => {
            // Schemes of one `first_of` share headers (SignalWire's hex and base64 forms).
            let mut names: Vec<String> = verifiers.iter().flat_map(header).collect();
            names.sort_unstable();
            names.dedup();
            names
        }
        Method::Bearer(_) => vec!["static bearer tokens".to_owned()],
        #[cfg(feature = "jwt")]
        Method::Jwt(_) => vec!["the server's own JWTs".to_owned()],
        #[cfg(feature = "oauth")]
        Method::OAuth(_) => vec!["access tokens of external issuers".to_owned()],
        #[cfg(feature = "jwt")]
        Method::Delegated(delegation) => delegation.inner.agent.credentials(),
        Method::Basic(_) => vec!["Basic credentials".to_owned()],
        Method::Custom(custom) => vec![format!("the credential of `{}`", custom.0.name())],
        Method::AnyOf(methods) => methods.iter().flat_map(credentials_of).collect(),
    }
}

/// Refuse two methods that read one credential: every request carrying it would be refused
/// as carrying credentials for several methods.
fn refuse_shared_credentials(methods: &[Method]) -> Result<(), ConfigError> {
    let mut seen: Vec<(String, String)> = Vec::new();
    for method in methods {
        let name = name_of(method);
        for credential in credentials_of(method) {
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

fn default_body_limit_of(method: &Method) -> usize {
    match method {
        Method::Signature(verifier) => verifier.platform_body_limit(),
        #[cfg(feature = "jwt")]
        Method::Delegated(delegation) => delegation.inner.agent.default_body_limit(),
        Method::AnyOf(methods) => methods
            .iter()
            .map(default_body_limit_of)
            .max()
            .unwrap_or(crate::DEFAULT_BODY_LIMIT),
        Method::FirstOf(verifiers) => verifiers
            .iter()
            .map(SignatureVerifier::platform_body_limit)
            .max()
            .unwrap_or(crate::DEFAULT_BODY_LIMIT),
        _ => crate::DEFAULT_BODY_LIMIT,
    }
}

fn name_of(method: &Method) -> String {
    match method {
        Method::Signature(verifier) => verifier.identity().to_owned(),
        Method::Bearer(_) => "bearer".to_owned(),
        #[cfg(feature = "jwt")]
        Method::Jwt(_) => "jwt".to_owned(),
        #[cfg(feature = "oauth")]
        Method::OAuth(_) => "oauth".to_owned(),
        #[cfg(feature = "jwt")]
        Method::Delegated(delegation) => format!("delegated:{}", delegation.inner.agent.name()),
        Method::Basic(_) => "basic".to_owned(),
        Method::Custom(custom) => custom.0.name().to_owned(),
        Method::AnyOf(methods) => methods.iter().map(name_of).collect::<Vec<_>>().join("+"),
        Method::FirstOf(verifiers) => verifiers
            .first()
            .map_or_else(String::new, |v| v.identity().to_owned()),
    }
}

fn challenges_of(method: &Method) -> Challenges {
    match method {
        Method::Signature(_) => Challenges::one(ChallengeScheme::Signature),
        Method::Bearer(_) => Challenges::one(ChallengeScheme::Bearer),
        #[cfg(feature = "jwt")]
        Method::Jwt(_) => Challenges::one(ChallengeScheme::Bearer),
        #[cfg(feature = "oauth")]
        Method::OAuth(_) => Challenges::one(ChallengeScheme::Bearer),
        #[cfg(feature = "jwt")]
        Method::Delegated(delegation) => delegation
            .inner
            .agent
            .challenges()
            .union(Challenges::one(ChallengeScheme::Bearer)),
        Method::Basic(_) => Challenges::one(ChallengeScheme::Basic),
        Method::Custom(custom) => custom.0.challenges(),
        Method::AnyOf(methods) => challenges_of_all(methods),
        Method::FirstOf(_) => Challenges::one(ChallengeScheme::Signature),
    }
}

fn uses_authorization(method: &Method) -> bool {
    match method {
        Method::Signature(_) | Method::FirstOf(_) => false,
        Method::Custom(custom) => custom.0.reads_authorization(),
        _ => true,
    }
}

/// Inspect the head for one method. `auth` is the `Authorization` header when the caller
/// has parsed it already (`any_of` does, to choose the method), so it is parsed once.
fn inspect_one(method: &Method, parts: &Parts, auth: Option<Authorization<'_>>) -> Inspection {
    let reject = |kind| Inspection::Rejected(AuthError::new(kind, challenges_of(method)));
    let decide = |result: Result<Caller, AuthErrorKind>| match result {
        Ok(caller) => Inspection::accepted(caller),
        Err(kind) => reject(kind),
    };
    let signature = match method {
        Method::Signature(verifier) => Some(verifier),
        Method::FirstOf(verifiers) => {
            let headers = &parts.headers;
            // The most preferred header present decides. Among the schemes sharing it, the
            // first that parses its value checks it; if none does, the first explains why.
            verifiers
                .iter()
                .find(|v| v.is_presented(headers))
                .map(|preferred| {
                    verifiers
                        .iter()
                        .filter(|v| v.shares_header(preferred))
                        .find(|v| v.recognizes(headers))
                        .unwrap_or(preferred)
                })
        }
        _ => None,
    };
    if let Some(verifier) = signature {
        return match verifier.check_head(parts) {
            HeadCheck::Absent => Inspection::Absent,
            HeadCheck::Rejected(kind) => reject(kind),
            HeadCheck::Pending(check) => Inspection::NeedsBody(check),
        };
    }
    if matches!(method, Method::FirstOf(_)) {
        return Inspection::Absent;
    }
    if let Method::Custom(custom) = method {
        return match custom.0.presented(parts) {
            false => Inspection::Absent,
            true => match custom.0.authenticate(parts) {
                Ok(caller) => Inspection::accepted(caller),
                Err(error) => Inspection::Rejected(error),
            },
        };
    }
    #[cfg(feature = "jwt")]
    if let Method::Delegated(delegation) = method {
        return delegation.inspect(parts);
    }
    let auth = auth.unwrap_or_else(|| authorization::parse(&parts.headers));
    match (method, auth) {
        (_, Authorization::Absent) => Inspection::Absent,
        (_, Authorization::Duplicate) => reject(AuthErrorKind::DuplicateHeader),
        (Method::Bearer(tokens), Authorization::Bearer(token)) => decide(tokens.check(token)),
        #[cfg(feature = "jwt")]
        (Method::Jwt(verifier), Authorization::Bearer(token)) => accept_token(
            verifier.check(token).and_then(not_for_an_agent),
            |caller| verifier.revocation_check(caller),
            reject_with(method),
        ),
        #[cfg(feature = "oauth")]
        (Method::OAuth(tokens), Authorization::Bearer(token)) => {
            match tokens.check(token, crate::ClientAddr::of(parts)) {
                Checked::Done(result) => accept_token(
                    result.and_then(not_for_an_agent),
                    |caller| tokens.revocation_check(caller),
                    reject_with(method),
                ),
                Checked::Wait(pending) => {
                    let (tokens, challenges) = (tokens.clone(), challenges_of(method));
                    Inspection::Pending(Box::pin(async move {
                        let result = pending.await.and_then(not_for_an_agent);
                        accept_token(
                            result,
                            |caller| tokens.revocation_check(caller),
                            |refusal| Inspection::Rejected(AuthError::refused(refusal, challenges)),
                        )
                    }))
                }
            }
        }
        (Method::Basic(users), Authorization::Basic(credentials)) => {
            decide(users.check(credentials))
        }
        _ => reject(AuthErrorKind::MalformedCredentials),
    }
}

/// A user token minted for an agent (`act`) is accepted only through a delegation that
/// proves that agent, never presented on its own.
#[cfg(feature = "jwt")]
fn not_for_an_agent(caller: Caller) -> Result<Caller, Refusal> {
    match caller.claims().and_then(|claims| claims.get("act")) {
        Some(_) => Err(Refusal::by(AuthErrorKind::InvalidCredentials, "act")),
        None => Ok(caller),
    }
}

/// A rejection of `kind` with `method`'s challenges.
#[cfg(feature = "jwt")]
fn reject_with(method: &Method) -> impl FnOnce(Refusal) -> Inspection {
    let challenges = challenges_of(method);
    move |refusal| Inspection::Rejected(AuthError::refused(refusal, challenges))
}

/// A verified token's caller, accepted at once or once its revocation is looked up.
#[cfg(feature = "jwt")]
fn accept_token(
    checked: Result<Caller, Refusal>,
    revocation: impl FnOnce(&Caller) -> Result<Option<RevocationCheck>, AuthErrorKind>,
    reject: impl FnOnce(Refusal) -> Inspection,
) -> Inspection {
    let checked = checked.and_then(|caller| {
        let check = revocation(&caller).map_err(|kind| Refusal::by(kind, "jti"))?;
        Ok((check, caller))
    });
    match checked {
        Ok((check, caller)) => Inspection::Accepted {
            caller,
            owed: RevocationCheck::owed(check),
        },
        Err(kind) => reject(kind),
    }
}

fn inspect_any(methods: &[Method], parts: &Parts) -> Inspection {
    let auth = authorization::parse(&parts.headers);
    let has = |pred: fn(&Method) -> bool| methods.iter().any(pred);
    #[cfg(feature = "jwt")]
    let (has_static, has_jwt) = (
        has(|m| matches!(m, Method::Bearer(_))),
        has(|m| matches!(m, Method::Jwt(_))),
    );
    #[cfg(not(feature = "jwt"))]
    let has_jwt = false;
    #[cfg(feature = "oauth")]
    let oauth = methods.iter().find_map(|m| match m {
        Method::OAuth(tokens) => Some(tokens),
        _ => None,
    });
    #[cfg(not(feature = "oauth"))]
    let oauth: Option<&()> = None;
    let is_bearer = matches!(auth, Authorization::Bearer(_));
    // Only needed to tell static tokens from JWTs; counted once.
    let jwt_shaped = (has_jwt || oauth.is_some()) && auth.is_jwt_shaped();
    // With both self-issued JWTs and external issuers, the token's `iss` chooses.
    #[cfg(feature = "oauth")]
    let external = match (oauth, &auth) {
        (Some(tokens), Authorization::Bearer(token)) if jwt_shaped => {
            !has_jwt || tokens.names_issuer(token)
        }
        _ => false,
    };
    let claims = |method: &Method| match method {
        Method::Signature(verifier) => verifier.is_presented(&parts.headers),
        Method::FirstOf(verifiers) => verifiers.iter().any(|v| v.is_presented(&parts.headers)),
        Method::Bearer(_) => is_bearer && !jwt_shaped,
        #[cfg(all(feature = "jwt", not(feature = "oauth")))]
        Method::Jwt(_) => is_bearer && (!has_static || jwt_shaped),
        #[cfg(feature = "oauth")]
        Method::Jwt(_) => is_bearer && (!has_static || jwt_shaped) && !external,
        #[cfg(feature = "oauth")]
        Method::OAuth(tokens) => {
            is_bearer && (external || (!jwt_shaped && !has_static && tokens.introspects()))
        }
        // A delegation is composed on its own, not inside `any_of`.
        #[cfg(feature = "jwt")]
        Method::Delegated(_) => false,
        Method::Basic(_) => matches!(auth, Authorization::Basic(_)),
        Method::Custom(custom) => custom.0.presented(parts),
        Method::AnyOf(_) => unreachable!("any_of flattens nested sets"),
    };
    let mut claimed = methods.iter().filter(|m| claims(m));
    let all = || challenges_of_all(methods);
    let first = claimed.next();
    if claimed.next().is_some() {
        return Inspection::Rejected(AuthError::new(AuthErrorKind::ConflictingCredentials, all()));
    }
    let authorization_unclaimed =
        auth.is_present() && has(uses_authorization) && !first.is_some_and(uses_authorization);
    if authorization_unclaimed {
        let kind = if auth == Authorization::Duplicate {
            AuthErrorKind::DuplicateHeader
        } else if first.is_some() {
            AuthErrorKind::ConflictingCredentials
        } else {
            AuthErrorKind::MalformedCredentials
        };
        return Inspection::Rejected(AuthError::new(kind, all()));
    }
    // Static tokens and introspection both take opaque tokens: one that is not a static
    // token is an issuer's, so it is introspected (the static set is checked in full first).
    #[cfg(feature = "oauth")]
    if let (Some(Method::Bearer(statics)), Some(tokens), Authorization::Bearer(token)) =
        (first, oauth, &auth)
        && !jwt_shaped
        && tokens.introspects()
    {
        let introspected = methods.iter().find(|m| matches!(m, Method::OAuth(_)));
        return match (statics.check(token), introspected) {
            (Ok(caller), _) => Inspection::accepted(caller),
            (Err(_), Some(method)) => inspect_one(method, parts, Some(auth)),
            (Err(kind), None) => Inspection::Rejected(AuthError::new(kind, all())),
        };
    }
    match first {
        Some(method) => inspect_one(method, parts, Some(auth)),
        None => Inspection::Absent,
    }
}

fn challenges_of_all(methods: &[Method]) -> Challenges {
    methods
        .iter()
        .fold(Challenges::default(), |all, m| all.union(challenges_of(m)))
}

impl From<SignatureVerifier> for Authenticator {
    fn from(verifier: SignatureVerifier) -> Self {
        Self {
            method: Method::Signature(verifier),
        }
    }
}

impl From<BearerTokens> for Authenticator {
    fn from(tokens: BearerTokens) -> Self {
        Self {
            method: Method::Bearer(tokens),
        }
    }
}

impl Authenticator {
    pub(crate) fn from_custom(custom: Custom) -> Self {
        Self {
            method: Method::Custom(custom),
        }
    }
}

impl From<BasicUsers> for Authenticator {
    fn from(users: BasicUsers) -> Self {
        Self {
            method: Method::Basic(users),
        }
    }
}

#[cfg(feature = "jwt")]
impl From<Delegation> for Authenticator {
    fn from(delegation: Delegation) -> Self {
        Self {
            method: Method::Delegated(delegation),
        }
    }
}

#[cfg(feature = "oauth")]
impl From<AccessTokens> for Authenticator {
    fn from(tokens: AccessTokens) -> Self {
        Self {
            method: Method::OAuth(tokens),
        }
    }
}

#[cfg(feature = "jwt")]
impl From<JwtVerifier> for Authenticator {
    fn from(verifier: JwtVerifier) -> Self {
        Self {
            method: Method::Jwt(verifier),
        }
    }
}
