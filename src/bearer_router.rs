//! `Authorization: Bearer`, one method however many kinds of token it takes: static tokens,
//! the server's own JWTs and external issuers' access tokens (JWTs from their key sets, or
//! opaque tokens by introspection), told apart by the token's shape and `iss`.

use crate::authenticator::{Head, Inspection, Method};
use crate::authorization::Authorization;
use crate::bearer::BearerTokens;
#[cfg(feature = "jwt")]
use crate::caller::Caller;
#[cfg(feature = "jwt")]
use crate::error::{AuthError, Refusal};
use crate::error::{AuthErrorKind, ChallengeScheme, Challenges};
#[cfg(feature = "jwt")]
use crate::jwt::{JwtVerifier, RevocationCheck};
#[cfg(feature = "oauth")]
use crate::oauth::{AccessTokens, Checked};

/// The bearer-token methods of one authenticator, and the rule that routes each token to
/// exactly one of them.
#[derive(Clone, Debug, Default)]
pub(crate) struct BearerRouter {
    statics: Option<BearerTokens>,
    #[cfg(feature = "jwt")]
    jwt: Option<JwtVerifier>,
    #[cfg(feature = "oauth")]
    external: Option<AccessTokens>,
}

/// Where one presented token goes.
enum Route<'a> {
    Static(&'a BearerTokens),
    /// An opaque token that is not a static one is an issuer's: the static set is checked
    /// in full first, then the token is introspected.
    #[cfg(feature = "oauth")]
    StaticThenIntrospected(&'a BearerTokens, &'a AccessTokens),
    #[cfg(feature = "jwt")]
    Jwt(&'a JwtVerifier),
    #[cfg(feature = "oauth")]
    External(&'a AccessTokens),
}

impl BearerRouter {
    /// Add `other`'s kinds of token. `any_of` has refused two of one kind already.
    pub(crate) fn merge(&mut self, other: BearerRouter) {
        self.statics = self.statics.take().or(other.statics);
        #[cfg(feature = "jwt")]
        {
            self.jwt = self.jwt.take().or(other.jwt);
        }
        #[cfg(feature = "oauth")]
        {
            self.external = self.external.take().or(other.external);
        }
    }

    /// The DPoP configurations of its kinds of token, without allocating (the challenges
    /// are worked out on every request).
    #[cfg(feature = "dpop")]
    fn dpop_configs(&self) -> impl Iterator<Item = &crate::dpop::Dpop> {
        let jwt = self.jwt.as_ref().and_then(JwtVerifier::dpop_config);
        #[cfg(feature = "oauth")]
        let external = self.external.as_ref().and_then(AccessTokens::dpop_config);
        #[cfg(not(feature = "oauth"))]
        let external = None;
        jwt.into_iter().chain(external)
    }

    /// The first DPoP configuration of its kinds of token.
    #[cfg(feature = "dpop")]
    pub(crate) fn first_dpop(&self) -> Option<&crate::dpop::Dpop> {
        self.dpop_configs().next()
    }

    fn kinds(&self) -> usize {
        [
            self.statics.is_some(),
            #[cfg(feature = "jwt")]
            self.jwt.is_some(),
            #[cfg(feature = "oauth")]
            self.external.is_some(),
        ]
        .into_iter()
        .filter(|present| *present)
        .count()
    }

    /// The one method `token` goes to, if any. A router of one kind takes every token (and
    /// refuses what it cannot read). With several:
    /// - a JWT-shaped token goes to the external issuers when its `iss` names one of them
    ///   (or there are no self-issued JWTs), else to the self-issued verifier;
    /// - an opaque token goes to the static tokens, then to introspection; without static
    ///   tokens, to introspection; a JWT verifier alone never takes an opaque token.
    fn route(&self, token: &[u8]) -> Option<Route<'_>> {
        if self.kinds() == 1 {
            #[cfg(feature = "jwt")]
            if let Some(jwt) = &self.jwt {
                return Some(Route::Jwt(jwt));
            }
            #[cfg(feature = "oauth")]
            if let Some(external) = &self.external {
                return Some(Route::External(external));
            }
            return self.statics.as_ref().map(Route::Static);
        }
        let jwt_shaped = Authorization::Bearer(token).is_jwt_shaped();
        if jwt_shaped {
            #[cfg(feature = "oauth")]
            if let Some(external) = &self.external {
                #[cfg(feature = "jwt")]
                let external_issuer = self.jwt.is_none() || external.names_issuer(token);
                #[cfg(not(feature = "jwt"))]
                let external_issuer = true;
                if external_issuer {
                    return Some(Route::External(external));
                }
            }
            #[cfg(feature = "jwt")]
            if let Some(jwt) = &self.jwt {
                return Some(Route::Jwt(jwt));
            }
        }
        #[cfg(feature = "oauth")]
        if let Some(external) = self.external.as_ref().filter(|e| e.introspects()) {
            return match &self.statics {
                Some(statics) => Some(Route::StaticThenIntrospected(statics, external)),
                None if !jwt_shaped => Some(Route::External(external)),
                None => None,
            };
        }
        self.statics.as_ref().map(Route::Static)
    }
}

impl Method for BearerRouter {
    fn name(&self) -> String {
        let mut names: Vec<&str> = Vec::new();
        if self.statics.is_some() {
            names.push("bearer");
        }
        #[cfg(feature = "jwt")]
        if self.jwt.is_some() {
            names.push("jwt");
        }
        #[cfg(feature = "oauth")]
        if self.external.is_some() {
            names.push("oauth");
        }
        names.join("+")
    }

    /// `Bearer`, and `DPoP` when a kind of token takes DPoP proofs; `DPoP` alone when every
    /// kind of token requires them.
    fn challenges(&self) -> Challenges {
        let bearer = Challenges::one(ChallengeScheme::Bearer);
        #[cfg(feature = "dpop")]
        {
            let dpop = Challenges::one(ChallengeScheme::DPoP);
            let (mut configs, mut required) = (0, 0);
            for config in self.dpop_configs() {
                configs += 1;
                required += usize::from(config.is_required());
            }
            if configs == 0 {
                return bearer;
            }
            let every_kind_requires = configs == self.kinds() && required == configs;
            if every_kind_requires {
                return dpop;
            }
            bearer.union(dpop)
        }
        #[cfg(not(feature = "dpop"))]
        bearer
    }

    fn credentials(&self) -> Vec<String> {
        let mut credentials = Vec::new();
        if self.statics.is_some() {
            credentials.push("static bearer tokens".to_owned());
        }
        #[cfg(feature = "jwt")]
        if self.jwt.is_some() {
            credentials.push("the server's own JWTs".to_owned());
        }
        #[cfg(feature = "oauth")]
        if self.external.is_some() {
            credentials.push("access tokens of external issuers".to_owned());
        }
        credentials
    }

    fn presented(&self, head: &Head<'_>) -> bool {
        match head.authorization() {
            Authorization::Bearer(token) => self.route(token).is_some(),
            #[cfg(feature = "dpop")]
            Authorization::DPoP(token) => self
                .route(token)
                .is_some_and(|route| route.dpop().is_some()),
            _ => false,
        }
    }

    fn inspect(&self, head: &Head<'_>) -> Inspection {
        let challenges = self.challenges();
        let reject = |kind| Inspection::rejected(kind, challenges);
        let (token, under_dpop) = match head.authorization() {
            Authorization::Absent => return Inspection::Absent,
            Authorization::Duplicate => return reject(AuthErrorKind::DuplicateHeader),
            Authorization::Bearer(token) => (token, false),
            #[cfg(feature = "dpop")]
            Authorization::DPoP(token) => (token, true),
            _ => return reject(AuthErrorKind::MalformedCredentials),
        };
        let Some(route) = self.route(token) else {
            return reject(AuthErrorKind::MalformedCredentials);
        };
        #[cfg(feature = "jwt")]
        let presented = match Presented::of(&route, under_dpop, head, token) {
            Ok(presented) => presented,
            Err(refusal) => return Inspection::Rejected(AuthError::refused(refusal, challenges)),
        };
        #[cfg(not(feature = "jwt"))]
        let _ = under_dpop;
        let decide = |result: Result<_, AuthErrorKind>| match result {
            Ok(caller) => Inspection::accepted(caller),
            Err(kind) => reject(kind),
        };
        match route {
            Route::Static(statics) => decide(statics.check(token)),
            #[cfg(feature = "oauth")]
            Route::StaticThenIntrospected(statics, external) => {
                // A static token is never bound to a key: under DPoP the token is the
                // issuer's or nobody's.
                match (presented.is_bearer(), statics.check(token)) {
                    (true, Ok(caller)) => Inspection::accepted(caller),
                    _ => inspect_external(external, head, token, presented, challenges),
                }
            }
            #[cfg(feature = "jwt")]
            Route::Jwt(verifier) => accept_token(
                verifier.check(token).and_then(not_for_an_agent),
                |caller| verifier.revocation_check(caller),
                presented,
                challenges,
            ),
            #[cfg(feature = "oauth")]
            Route::External(external) => {
                inspect_external(external, head, token, presented, challenges)
            }
        }
    }
}

/// How a token came: as a bearer token, or under the `DPoP` scheme with a proof that
/// passed. Decided from the head before the token is checked; the token's binding is
/// settled once it is.
#[cfg(feature = "jwt")]
pub(crate) enum Presented {
    /// `Authorization: Bearer`, to a kind of token that requires DPoP or does not, and
    /// holds bound tokens to the connection's client certificate or does not.
    Bearer {
        dpop_required: bool,
        #[cfg(feature = "mtls")]
        certificate: Option<(
            crate::mtls::CertificateBinding,
            Option<crate::mtls::CertificateThumbprint>,
        )>,
    },
    /// `Authorization: DPoP` with a proof checked against the request and the token.
    #[cfg(feature = "dpop")]
    Proven {
        dpop: crate::dpop::Dpop,
        proof: Box<crate::dpop::proof::VerifiedProof>,
        /// The kind's certificate binding and the request's certificate: a token bound to
        /// both a key and a certificate needs both, and `Required` holds under DPoP too.
        #[cfg(feature = "mtls")]
        certificate: Option<(
            crate::mtls::CertificateBinding,
            Option<crate::mtls::CertificateThumbprint>,
        )>,
    },
}

#[cfg(feature = "jwt")]
impl Presented {
    /// How `token` came to `route`: a `DPoP` token's proof is checked now, from the head.
    fn of(
        route: &Route<'_>,
        under_dpop: bool,
        head: &Head<'_>,
        token: &[u8],
    ) -> Result<Self, Refusal> {
        #[cfg(feature = "dpop")]
        {
            let dpop = route.dpop();
            if under_dpop {
                let dpop = dpop.ok_or(Refusal::from(AuthErrorKind::MalformedCredentials))?;
                let proof = dpop.check_proof(head.parts, Some(token))?;
                return Ok(Self::Proven {
                    dpop: dpop.clone(),
                    proof: Box::new(proof),
                    #[cfg(feature = "mtls")]
                    certificate: certificate_of(route, head),
                });
            }
            Ok(Self::Bearer {
                dpop_required: dpop.is_some_and(crate::dpop::Dpop::is_required),
                #[cfg(feature = "mtls")]
                certificate: certificate_of(route, head),
            })
        }
        #[cfg(not(feature = "dpop"))]
        {
            let _ = (under_dpop, token);
            #[cfg(not(feature = "mtls"))]
            let _ = (route, head);
            Ok(Self::Bearer {
                dpop_required: false,
                #[cfg(feature = "mtls")]
                certificate: certificate_of(route, head),
            })
        }
    }

    #[cfg(feature = "oauth")]
    fn is_bearer(&self) -> bool {
        matches!(self, Self::Bearer { .. })
    }

    /// The verified token's `caller` held to how it came: a bearer token must not be bound
    /// to a key (nor be presented as one where DPoP is required); a DPoP token must be bound
    /// to the proof's key, whose `jti` is then owed to the store.
    fn settle(self, caller: Caller) -> Result<(Caller, Option<crate::guard::StoreStep>), Refusal> {
        match self {
            Self::Bearer {
                dpop_required,
                #[cfg(feature = "mtls")]
                certificate,
            } => {
                #[cfg(feature = "mtls")]
                let caller = match certificate {
                    Some((binding, thumbprint)) => {
                        match crate::mtls::check(binding, thumbprint, &caller)? {
                            Some(x5t) => caller.with_confirmation(
                                crate::caller::Confirmation::Certificate(x5t.into()),
                            ),
                            None => caller,
                        }
                    }
                    None => {
                        refuse_key_binding(&caller)?;
                        caller
                    }
                };
                #[cfg(not(feature = "mtls"))]
                refuse_key_binding(&caller)?;
                if dpop_required {
                    return Err(Refusal::by(AuthErrorKind::UnprovenKeyBinding, "dpop"));
                }
                Ok((caller, None))
            }
            #[cfg(feature = "dpop")]
            Self::Proven {
                dpop,
                proof,
                #[cfg(feature = "mtls")]
                certificate,
            } => {
                #[cfg(feature = "mtls")]
                let certificate_checked = certificate.is_some();
                #[cfg(not(feature = "mtls"))]
                let certificate_checked = false;
                let (caller, step) = dpop.bind(&proof, caller, certificate_checked)?;
                #[cfg(feature = "mtls")]
                if let Some((binding, thumbprint)) = certificate {
                    // The key's proof names the caller's confirmation; the certificate is
                    // checked as well, never instead.
                    crate::mtls::check_beside_proof(binding, thumbprint, &caller)?;
                }
                Ok((caller, Some(step)))
            }
        }
    }
}

/// Refuse a token bound to a key (`cnf`, RFC 7800) presented without proof of that key: a
/// bound token accepted as a bearer token is what binding exists to prevent (RFC 9449 §7,
/// RFC 8705 §3). Shared by every kind of token, and by a delegation's user token.
#[cfg(feature = "jwt")]
pub(crate) fn refuse_key_binding(caller: &Caller) -> Result<(), Refusal> {
    match caller.claims().and_then(|claims| claims.get("cnf")) {
        Some(_) => Err(Refusal::by(AuthErrorKind::UnprovenKeyBinding, "cnf")),
        None => Ok(()),
    }
}

/// How `route`'s kind of token holds bound tokens to the client certificate, and the
/// certificate the request came with.
#[cfg(feature = "mtls")]
fn certificate_of(
    route: &Route<'_>,
    head: &Head<'_>,
) -> Option<(
    crate::mtls::CertificateBinding,
    Option<crate::mtls::CertificateThumbprint>,
)> {
    let binding = match route {
        Route::Static(_) => None,
        #[cfg(feature = "oauth")]
        Route::StaticThenIntrospected(_, external) | Route::External(external) => {
            external.certificate_config()
        }
        Route::Jwt(verifier) => verifier.certificate_config(),
    }?;
    let thumbprint = head
        .parts
        .extensions
        .get::<crate::mtls::CertificateThumbprint>()
        .copied();
    Some((binding, thumbprint))
}

impl Route<'_> {
    /// The DPoP configuration of the kind of token this route goes to.
    #[cfg(feature = "dpop")]
    fn dpop(&self) -> Option<&crate::dpop::Dpop> {
        match self {
            Self::Static(_) => None,
            #[cfg(feature = "oauth")]
            Self::StaticThenIntrospected(_, external) | Self::External(external) => {
                external.dpop_config()
            }
            Self::Jwt(verifier) => verifier.dpop_config(),
        }
    }
}

/// An external issuer's token: decided now (cache, keys held), or once its issuer answers.
#[cfg(feature = "oauth")]
fn inspect_external(
    tokens: &AccessTokens,
    head: &Head<'_>,
    token: &[u8],
    presented: Presented,
    challenges: Challenges,
) -> Inspection {
    match tokens.check(token, crate::ClientAddr::of(head.parts)) {
        Checked::Done(result) => accept_token(
            result.and_then(not_for_an_agent),
            |caller| tokens.revocation_check(caller),
            presented,
            challenges,
        ),
        Checked::Wait(pending) => {
            let tokens = tokens.clone();
            Inspection::Pending(Box::pin(async move {
                accept_token(
                    pending.await.and_then(not_for_an_agent),
                    |caller| tokens.revocation_check(caller),
                    presented,
                    challenges,
                )
            }))
        }
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

/// A verified token's caller, held to how it was presented, and accepted at once or once
/// its store steps (revocation, then a DPoP proof's `jti`) are taken.
#[cfg(feature = "jwt")]
fn accept_token(
    checked: Result<Caller, Refusal>,
    revocation: impl FnOnce(&Caller) -> Result<Option<RevocationCheck>, AuthErrorKind>,
    presented: Presented,
    challenges: Challenges,
) -> Inspection {
    let checked = checked.and_then(|caller| {
        let (caller, proof_step) = presented.settle(caller)?;
        let check = revocation(&caller).map_err(|kind| Refusal::by(kind, "jti"))?;
        Ok((check, caller, proof_step))
    });
    match checked {
        Ok((check, caller, proof_step)) => {
            let owed = RevocationCheck::owed(check);
            Inspection::Accepted {
                caller,
                owed: match proof_step {
                    Some(step) => owed.then(step.into()),
                    None => owed,
                },
            }
        }
        Err(refusal) => Inspection::Rejected(AuthError::refused(refusal, challenges)),
    }
}

impl From<BearerTokens> for BearerRouter {
    fn from(tokens: BearerTokens) -> Self {
        Self {
            statics: Some(tokens),
            #[cfg(feature = "jwt")]
            jwt: None,
            #[cfg(feature = "oauth")]
            external: None,
        }
    }
}

#[cfg(feature = "jwt")]
impl From<JwtVerifier> for BearerRouter {
    fn from(verifier: JwtVerifier) -> Self {
        Self {
            jwt: Some(verifier),
            ..Self::default()
        }
    }
}

#[cfg(feature = "oauth")]
impl From<AccessTokens> for BearerRouter {
    fn from(tokens: AccessTokens) -> Self {
        Self {
            external: Some(tokens),
            ..Self::default()
        }
    }
}

#[cfg(test)]
#[cfg(feature = "jwt")]
mod tests {
    use super::*;
    use crate::jwt::{JwtAlgorithm, JwtConfig, JwtKey};
    use crate::{Scopes, Secret};

    fn statics() -> BearerRouter {
        BearerTokens::builder()
            .token(
                "agent",
                Secret::from_utf8("tok_0123456789abcdef").unwrap(),
                Scopes::empty(),
            )
            .build()
            .unwrap()
            .into()
    }

    fn jwt() -> BearerRouter {
        let secret = Secret::from_utf8("a-jwt-signing-key-of-32-bytes!!!").unwrap();
        let key = JwtKey::hmac(JwtAlgorithm::HS256, &secret).unwrap();
        JwtVerifier::new(JwtConfig::builder().key("k1", key).build().unwrap()).into()
    }

    fn routed(router: &BearerRouter, token: &[u8]) -> &'static str {
        match router.route(token) {
            None => "none",
            Some(Route::Static(_)) => "static",
            Some(Route::Jwt(_)) => "jwt",
            #[cfg(feature = "oauth")]
            Some(Route::External(_) | Route::StaticThenIntrospected(..)) => "external",
        }
    }

    const OPAQUE: &[u8] = b"tok_0123456789abcdef";
    const JWT_SHAPED: &[u8] = b"eyJh.eyJz.c2ln";

    #[test]
    fn one_kind_takes_every_token() {
        assert_eq!(routed(&statics(), JWT_SHAPED), "static");
        assert_eq!(routed(&jwt(), OPAQUE), "jwt");
    }

    #[test]
    fn static_tokens_and_jwts_are_told_apart_by_shape() {
        let mut router = statics();
        router.merge(jwt());
        assert_eq!(routed(&router, OPAQUE), "static");
        assert_eq!(routed(&router, JWT_SHAPED), "jwt");
        assert_eq!(router.name(), "bearer+jwt");
        assert_eq!(router.credentials().len(), 2);
    }
}
