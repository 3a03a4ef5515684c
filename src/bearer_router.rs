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

    fn challenges(&self) -> Challenges {
        Challenges::one(ChallengeScheme::Bearer)
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
        matches!(head.authorization(), Authorization::Bearer(token) if self.route(token).is_some())
    }

    fn inspect(&self, head: &Head<'_>) -> Inspection {
        let reject = |kind| Inspection::rejected(kind, self.challenges());
        let token = match head.authorization() {
            Authorization::Absent => return Inspection::Absent,
            Authorization::Duplicate => return reject(AuthErrorKind::DuplicateHeader),
            Authorization::Bearer(token) => token,
            _ => return reject(AuthErrorKind::MalformedCredentials),
        };
        let decide = |result: Result<_, AuthErrorKind>| match result {
            Ok(caller) => Inspection::accepted(caller),
            Err(kind) => reject(kind),
        };
        match self.route(token) {
            None => reject(AuthErrorKind::MalformedCredentials),
            Some(Route::Static(statics)) => decide(statics.check(token)),
            #[cfg(feature = "oauth")]
            Some(Route::StaticThenIntrospected(statics, external)) => match statics.check(token) {
                Ok(caller) => Inspection::accepted(caller),
                Err(_) => inspect_external(external, head, token),
            },
            #[cfg(feature = "jwt")]
            Some(Route::Jwt(verifier)) => accept_token(
                verifier.check(token).and_then(not_for_an_agent),
                |caller| verifier.revocation_check(caller),
                self.challenges(),
            ),
            #[cfg(feature = "oauth")]
            Some(Route::External(external)) => inspect_external(external, head, token),
        }
    }
}

/// An external issuer's token: decided now (cache, keys held), or once its issuer answers.
#[cfg(feature = "oauth")]
fn inspect_external(tokens: &AccessTokens, head: &Head<'_>, token: &[u8]) -> Inspection {
    let challenges = Challenges::one(ChallengeScheme::Bearer);
    match tokens.check(token, crate::ClientAddr::of(head.parts)) {
        Checked::Done(result) => accept_token(
            result.and_then(not_for_an_agent),
            |caller| tokens.revocation_check(caller),
            challenges,
        ),
        Checked::Wait(pending) => {
            let tokens = tokens.clone();
            Inspection::Pending(Box::pin(async move {
                accept_token(
                    pending.await.and_then(not_for_an_agent),
                    |caller| tokens.revocation_check(caller),
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

/// A verified token's caller, accepted at once or once its revocation is looked up.
#[cfg(feature = "jwt")]
fn accept_token(
    checked: Result<Caller, Refusal>,
    revocation: impl FnOnce(&Caller) -> Result<Option<RevocationCheck>, AuthErrorKind>,
    challenges: Challenges,
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
