//! The two kinds of failure: a configuration mistake, found when a verifier or layer is
//! built, and a request that does not authenticate, found per request.

use std::fmt;
use std::sync::Arc;

use http::StatusCode;

/// A mistake in configuration, returned by the builder that found it.
///
/// Nothing in this crate defers a configuration check to the first request: if a verifier
/// or layer was built, its configuration is usable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A secret with no bytes.
    EmptySecret,
    /// A secret shorter than the minimum.
    SecretTooShort {
        /// The secret's id, when it was given one (a signature secret's id).
        id: Option<String>,
        /// The length given.
        len: usize,
        /// The minimum required.
        min: usize,
    },
    /// A secret given as base64 that does not decode.
    InvalidBase64,
    /// An environment variable that is unset or not valid Unicode.
    MissingEnvVar {
        /// The variable's name.
        name: String,
    },
    /// A string that is not a valid HTTP header name.
    InvalidHeaderName {
        /// The string given.
        name: String,
    },
    /// A verifier with no secret to verify against.
    NoSecrets {
        /// Which verifier: a signature verifier's identity (`github`), `bearer tokens`,
        /// `basic users` or `jwt`.
        verifier: String,
    },
    /// Two signature secrets with the same id, which would make rotation telemetry
    /// ambiguous.
    DuplicateSecretId {
        /// The repeated id.
        id: String,
    },
    /// One name given to two entries that must be told apart by it: two static tokens, two
    /// Basic users, two JWT keys (`kid`), two issuers.
    DuplicateName {
        /// What is named: `token`, `user`, `JWT key id`, `issuer`.
        what: &'static str,
        /// The repeated name.
        name: String,
    },
    /// A JWK set that cannot be read: not a JSON object with a `keys` array, or more keys
    /// than allowed.
    InvalidKeySet {
        /// What is wrong with it.
        reason: String,
    },
    /// The same secret configured twice (for example one token under two names).
    DuplicateSecret,
    /// A Basic user name that is empty, holds a colon or non-printable characters.
    InvalidUserName,
    /// A list from the environment that does not have the expected shape.
    InvalidList {
        /// The variable's name.
        name: String,
        /// The shape expected of each entry.
        expected: &'static str,
    },
    /// A JWT key that cannot be used as configured (bad PEM, wrong family for the algorithm).
    InvalidKey {
        /// The key id.
        kid: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Key material that cannot be used as given: a PEM or JWK of another family than its
    /// algorithm, an RSA key under 2048 bits, a symmetric key in a JWK set.
    InvalidKeyMaterial {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A signed-message layout that cannot be verified (for example the body not last).
    InvalidMessage {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A signature format that cannot be parsed unambiguously.
    InvalidFormat {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A value that must not be empty, quoted or contain control characters (a realm, an
    /// identity, a scope).
    InvalidValue {
        /// Which setting.
        field: &'static str,
    },
    /// A URL that is not an absolute `http` or `https` URL.
    InvalidUrl {
        /// The URL given.
        url: String,
    },
    /// A combination of methods that would silently drop one or accept nothing.
    InvalidComposition {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two methods of one composition that read the same credential: a request carrying it
    /// would be "credentials for several methods" and always refused.
    ConflictingMethods {
        /// The first method's name.
        first: String,
        /// The second method's name.
        second: String,
        /// The credential both read (a header, or a kind of `Authorization`).
        credential: String,
    },
    /// A secret from the environment with leading or trailing whitespace (usually the
    /// newline of a file or a Kubernetes secret), which would key every check wrongly.
    SecretWhitespace {
        /// The variable's name.
        name: String,
    },
    /// A secret with the `whsec_` prefix given as plain base64: Stripe keys with the whole
    /// text, Standard Webhooks decodes what follows the prefix, so the preset decides.
    PrefixedSecret,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptySecret => f.write_str("secret is empty"),
            Self::SecretTooShort { id, len, min } => {
                match id {
                    Some(id) => write!(f, "secret `{id}` is {len} bytes long")?,
                    None => write!(f, "secret is {len} bytes long")?,
                }
                write!(
                    f,
                    "; at least {min} are required (for a platform that issues shorter secrets, \
                     build the secret with callguard::dangerous::secret_allowing_short on purpose)"
                )
            }
            Self::InvalidBase64 => f.write_str("secret is not valid base64"),
            Self::MissingEnvVar { name } => {
                write!(
                    f,
                    "environment variable `{name}` is unset or not valid Unicode"
                )
            }
            Self::InvalidHeaderName { name } => write!(f, "`{name}` is not a valid header name"),
            Self::NoSecrets { verifier } => write!(f, "{verifier}: no secret configured"),
            Self::DuplicateSecretId { id } => write!(f, "secret id `{id}` is used twice"),
            Self::DuplicateSecret => f.write_str("the same secret is configured twice"),
            Self::DuplicateName { what, name } => write!(f, "{what} `{name}` is configured twice"),
            Self::InvalidKeySet { reason } => write!(f, "unusable JWK set: {reason}"),
            Self::InvalidUserName => {
                f.write_str("user name must be printable ASCII without a colon")
            }
            Self::InvalidList { name, expected } => {
                write!(f, "`{name}` must be a comma-separated list of `{expected}`")
            }
            Self::InvalidKey { kid, reason } => write!(f, "JWT key `{kid}`: {reason}"),
            Self::InvalidKeyMaterial { reason } => write!(f, "unusable key: {reason}"),
            Self::InvalidMessage { reason } => write!(f, "invalid signed message layout: {reason}"),
            Self::InvalidFormat { reason } => write!(f, "invalid signature format: {reason}"),
            Self::InvalidValue { field } => {
                write!(
                    f,
                    "{field} must be non-empty printable ASCII without quotes or backslashes"
                )
            }
            Self::InvalidUrl { url } => write!(f, "`{url}` is not an absolute http(s) URL"),
            Self::InvalidComposition { reason } => write!(f, "invalid composition: {reason}"),
            Self::ConflictingMethods {
                first,
                second,
                credential,
            } => write!(
                f,
                "invalid composition: `{first}` and `{second}` both read {credential}, so every \
                 request carrying it would be refused; make them one method (one signature \
                 verifier with both secrets, one token set with every token)"
            ),
            Self::SecretWhitespace { name } => write!(
                f,
                "environment variable `{name}` has leading or trailing whitespace (a trailing newline?); \
                 strip it, or use Secret::from_env_verbatim if the secret really has it"
            ),
            Self::PrefixedSecret => f.write_str(
                "a `whsec_` secret is not plain base64: give it to the preset's signing_secret \
                 (Stripe keys with the whole text, Standard Webhooks decodes what follows the prefix)",
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Check a configured value that ends up in logs and headers (a realm, an identity, a key
/// id): printable ASCII, non-empty, with no quote or backslash.
pub(crate) fn check_token_text(value: &str, field: &'static str) -> Result<(), ConfigError> {
    let printable = value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    if value.is_empty() || !printable {
        return Err(ConfigError::InvalidValue { field });
    }
    Ok(())
}

/// Why a request was not accepted. Carries no secret, signature or payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthErrorKind {
    /// The request carries no credential of any configured kind.
    MissingCredentials,
    /// A credential header appears more than once.
    DuplicateHeader,
    /// A credential is present but cannot be parsed: not UTF-8, bad encoding, wrong length.
    MalformedCredentials,
    /// A well-formed credential that does not verify against any configured secret.
    InvalidCredentials,
    /// The scheme signs a timestamp and the request has none.
    MissingTimestamp,
    /// The timestamp is not a decimal number of seconds that fits in 64 bits.
    MalformedTimestamp,
    /// The timestamp lies outside the configured tolerance.
    TimestampOutOfTolerance,
    /// A header that the scheme signs (for example an id) is missing or repeated.
    MissingSignedHeader,
    /// A token whose signature is valid but whose claims are not acceptable: not a JSON
    /// claims set, `exp` missing, wrong `iss`, `aud` or `typ`.
    InvalidClaims,
    /// A token past its `exp` (beyond the leeway).
    TokenExpired,
    /// A token before its `nbf` (beyond the leeway).
    TokenNotYetValid,
    /// The request carries credentials for more than one method.
    ConflictingCredentials,
    /// A verified request delivered again within its replay window.
    Replayed,
    /// A valid JWT whose `jti` has been revoked.
    TokenRevoked,
    /// The replay store could not answer, and the policy is to fail closed.
    StoreUnavailable,
    /// The caller is authenticated but lacks a required scope.
    InsufficientScope,
    /// A route requires scopes but no guard ran in front of it: a server setup mistake.
    GuardMissing,
    /// The body exceeds the configured limit.
    BodyTooLarge,
    /// The body stream failed before it ended.
    BodyReadFailed,
    /// The body stopped arriving for longer than the configured timeout.
    BodyTimeout,
    /// A form body with more parameters than a form-signing scheme computes its message
    /// over (the Twilio-compatible scheme).
    TooManyFormParameters,
    /// An issuer's keys could not be had: never fetched, stale beyond the bound, or the
    /// fetch a new key id needed failed or timed out.
    KeysUnavailable,
    /// The introspection endpoint could not be reached, timed out or answered with
    /// something other than a JSON 200.
    IntrospectionUnavailable,
    /// A user token minted for one agent (`act`) presented by another, or by none.
    ActorMismatch,
    /// The user the platform names is not the user the token is for (or cannot be read).
    UserMismatch,
    /// A request a layer must read (an MCP `tools/call`) that does not read as one request:
    /// a member named twice, a tool name that is not a string.
    AmbiguousRequest,
    /// A request a JSON-RPC layer must read (a `POST` to an MCP server with tool rules) that
    /// is not UTF-8 JSON it can read: a byte-order mark, UTF-16 or UTF-32, `NaN`, trailing
    /// bytes, another `charset`. Answered with a JSON-RPC parse error (-32700).
    UnreadableJsonRpc,
    /// An MCP request whose routing headers (`Mcp-Method`, `Mcp-Name`,
    /// `MCP-Protocol-Version`, MCP 2026-07-28) disagree with its body, are repeated or
    /// malformed, or are missing where the protocol version requires them. Answered 400
    /// with a JSON-RPC error (-32020) naming the header.
    HeaderMismatch,
    /// A token bound to a key (`cnf`: a DPoP key's `jkt`, a certificate's `x5t#S256`)
    /// presented without proof of that key (RFC 9449 §7, RFC 8705 §3): whoever holds a
    /// copy of a bound token must not be able to use it as a bearer token.
    UnprovenKeyBinding,
    /// A DPoP proof (RFC 9449) that does not prove what it must: missing or repeated, not a
    /// `dpop+jwt` signed by the key it carries with an allowed algorithm, bound to another
    /// method, URI or token, outside its time window, used before, or made by another key
    /// than the one the token is bound to. Challenged with `error="invalid_dpop_proof"`.
    InvalidDpopProof,
    /// A DPoP proof without a nonce this server issued, where the server requires one (RFC
    /// 9449 §8): the answer carries a fresh `DPoP-Nonce` for the client to retry with.
    DpopNonceRequired,
    /// A guard found a [`Caller`](crate::Caller) another guard had already accepted on the
    /// same request: a server setup mistake (two guards do not combine their proofs; put
    /// the methods into one `any_of`, or require both proofs with a `Delegation`).
    GuardStacked,
    /// The client's address is outside the route's allow-list.
    AddressNotAllowed,
    /// The request's `Origin` is not one the server allows (MCP's DNS-rebinding rule).
    OriginNotAllowed,
    /// Too many failed attempts from this client: it is locked out for a while
    /// ([`AuthError::retry_after`]), and its credential is not checked.
    TooManyFailures,
    /// An accepted caller past its rate limit ([`AuthError::retry_after`] says when to come
    /// back).
    RateLimited,
    /// A layer keyed by the client's address found none: the server put no
    /// [`ClientAddr`](crate::ClientAddr) into the request (add a
    /// [`ClientAddrLayer`](crate::client::ClientAddrLayer)). A server setup mistake.
    ClientAddrMissing,
}

impl AuthErrorKind {
    /// The HTTP status this kind is answered with by default.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BodyTooLarge | Self::TooManyFormParameters => StatusCode::PAYLOAD_TOO_LARGE,
            Self::InsufficientScope
            | Self::ActorMismatch
            | Self::UserMismatch
            | Self::AddressNotAllowed
            | Self::OriginNotAllowed => StatusCode::FORBIDDEN,
            Self::StoreUnavailable | Self::KeysUnavailable | Self::IntrospectionUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::GuardMissing | Self::GuardStacked | Self::ClientAddrMissing => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Self::BodyReadFailed
            | Self::AmbiguousRequest
            | Self::UnreadableJsonRpc
            | Self::HeaderMismatch => StatusCode::BAD_REQUEST,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::TooManyFailures | Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::MissingCredentials
            | Self::DuplicateHeader
            | Self::MalformedCredentials
            | Self::InvalidCredentials
            | Self::MissingTimestamp
            | Self::MalformedTimestamp
            | Self::TimestampOutOfTolerance
            | Self::MissingSignedHeader
            | Self::InvalidClaims
            | Self::TokenExpired
            | Self::TokenNotYetValid
            | Self::ConflictingCredentials
            | Self::Replayed
            | Self::TokenRevoked
            | Self::UnprovenKeyBinding
            | Self::InvalidDpopProof
            | Self::DpopNonceRequired => StatusCode::UNAUTHORIZED,
        }
    }

    /// A short, stable, lower-case description (used in logs and `Display`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingCredentials => "missing credentials",
            Self::DuplicateHeader => "credential header repeated",
            Self::MalformedCredentials => "malformed credentials",
            Self::InvalidCredentials => "invalid credentials",
            Self::MissingTimestamp => "missing timestamp",
            Self::MalformedTimestamp => "malformed timestamp",
            Self::TimestampOutOfTolerance => "timestamp outside tolerance",
            Self::MissingSignedHeader => "signed header missing or repeated",
            Self::InvalidClaims => "invalid claims",
            Self::TokenExpired => "token expired",
            Self::TokenNotYetValid => "token not yet valid",
            Self::ConflictingCredentials => "credentials for several methods",
            Self::Replayed => "replayed request",
            Self::TokenRevoked => "token revoked",
            Self::StoreUnavailable => "replay store unavailable",
            Self::InsufficientScope => "insufficient scope",
            Self::GuardMissing => "no guard in front of a scoped route",
            Self::BodyTooLarge => "body exceeds limit",
            Self::BodyReadFailed => "body stream failed",
            Self::BodyTimeout => "body read timed out",
            Self::TooManyFormParameters => "too many form parameters",
            Self::KeysUnavailable => "issuer keys unavailable",
            Self::IntrospectionUnavailable => "introspection endpoint unavailable",
            Self::ActorMismatch => "user token presented by another agent",
            Self::UserMismatch => "platform user is not the token's user",
            Self::AmbiguousRequest => "request does not read unambiguously",
            Self::UnreadableJsonRpc => "body is not JSON-RPC the layer can read",
            Self::HeaderMismatch => "MCP routing headers do not match the body",
            Self::UnprovenKeyBinding => "key-bound token without proof of its key",
            Self::InvalidDpopProof => "invalid DPoP proof",
            Self::DpopNonceRequired => "DPoP proof without a current server nonce",
            Self::GuardStacked => "a second guard on a request another guard accepted",
            Self::AddressNotAllowed => "client address not allowed",
            Self::OriginNotAllowed => "origin not allowed",
            Self::TooManyFailures => "too many failed attempts",
            Self::RateLimited => "rate limit exceeded",
            Self::ClientAddrMissing => "no client address on the request",
        }
    }
}

/// A scheme the client may authenticate with, named in `WWW-Authenticate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChallengeScheme {
    /// An HMAC request signature (`WWW-Authenticate: Signature`).
    Signature,
    /// A bearer token (RFC 6750).
    Bearer,
    /// HTTP Basic (RFC 7617).
    Basic,
    /// A DPoP-bound access token (RFC 9449 §7.1), named with the proof algorithms accepted.
    DPoP,
}

impl ChallengeScheme {
    const ALL: [Self; 4] = [Self::Signature, Self::Bearer, Self::DPoP, Self::Basic];

    fn bit(self) -> u8 {
        match self {
            Self::Signature => 1,
            Self::Bearer => 2,
            Self::Basic => 4,
            Self::DPoP => 8,
        }
    }
}

/// A set of challenge schemes, in a fixed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Challenges(u8);

impl Challenges {
    /// The set with one scheme.
    pub fn one(scheme: ChallengeScheme) -> Self {
        Self(scheme.bit())
    }

    /// This set with `other`'s schemes added.
    #[must_use]
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether `scheme` is in the set.
    pub fn contains(self, scheme: ChallengeScheme) -> bool {
        self.0 & scheme.bit() != 0
    }

    /// The schemes in the set: signature, bearer, DPoP, basic, in that order.
    pub fn iter(self) -> impl Iterator<Item = ChallengeScheme> {
        ChallengeScheme::ALL
            .into_iter()
            .filter(move |s| self.contains(*s))
    }
}

/// A request that did not authenticate: the reason and the schemes to challenge with.
///
/// The guard puts it into the rejection response's extensions, so an outer layer or a test
/// can read the reason that the response body deliberately does not carry.
///
/// ```
/// use callguard::{AuthError, AuthErrorKind};
/// # fn reason(response: &http::Response<()>) -> Option<AuthErrorKind> {
/// response.extensions().get::<AuthError>().map(AuthError::kind)
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    kind: AuthErrorKind,
    challenges: Challenges,
    scope: Option<Arc<str>>,
    rule: Option<&'static str>,
    retry_after: Option<u64>,
    /// A rate limit's quota and period in seconds, for the `RateLimit` fields.
    rate_policy: Option<(u32, u64)>,
    /// The DPoP proof algorithms accepted (space-separated) and a fresh server nonce, for a
    /// DPoP challenge.
    dpop: Option<Box<DpopChallenge>>,
}

/// What a `DPoP` challenge names besides the error: the algorithms and, when the server
/// issues nonces, a fresh one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DpopChallenge {
    algorithms: Arc<str>,
    nonce: Option<Arc<str>>,
}

/// A refusal and, for a token, the rule it failed: what verifiers answer inside the crate,
/// turned into an [`AuthError`] where the challenges are known.
#[cfg(feature = "jwt")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) kind: AuthErrorKind,
    pub(crate) rule: Option<&'static str>,
}

#[cfg(feature = "jwt")]
impl Refusal {
    /// A refusal of `kind` because the token failed `rule` (`aud`, `signature`, …).
    pub(crate) fn by(kind: AuthErrorKind, rule: &'static str) -> Self {
        Self {
            kind,
            rule: Some(rule),
        }
    }
}

#[cfg(feature = "jwt")]
impl From<AuthErrorKind> for Refusal {
    fn from(kind: AuthErrorKind) -> Self {
        Self { kind, rule: None }
    }
}

#[cfg(feature = "jwt")]
impl PartialEq<AuthErrorKind> for Refusal {
    fn eq(&self, kind: &AuthErrorKind) -> bool {
        self.kind == *kind
    }
}

impl AuthError {
    /// An error of `kind`, challenging with `challenges`.
    pub fn new(kind: AuthErrorKind, challenges: Challenges) -> Self {
        Self {
            kind,
            challenges,
            scope: None,
            rule: None,
            retry_after: None,
            rate_policy: None,
            dpop: None,
        }
    }

    /// This error, with what its `DPoP` challenge names: the proof algorithms accepted
    /// (space-separated, as the `algs` parameter) and, when the server requires nonces, a
    /// fresh one for the `DPoP-Nonce` header. The guard adds them to every error whose
    /// challenges include [`ChallengeScheme::DPoP`].
    #[must_use]
    pub fn with_dpop(mut self, algorithms: Arc<str>, nonce: Option<Arc<str>>) -> Self {
        self.dpop = Some(Box::new(DpopChallenge { algorithms, nonce }));
        self
    }

    /// The DPoP proof algorithms a `DPoP` challenge names (`algs`), space-separated.
    pub fn dpop_algorithms(&self) -> Option<&str> {
        self.dpop.as_ref().map(|dpop| &*dpop.algorithms)
    }

    /// A fresh server nonce for the `DPoP-Nonce` header, when the server requires them.
    pub fn dpop_nonce(&self) -> Option<&str> {
        self.dpop.as_ref().and_then(|dpop| dpop.nonce.as_deref())
    }

    /// This error, naming the rate limit it is for: `quota` requests per `period_seconds`
    /// (the `RateLimit-Policy` field).
    #[must_use]
    pub fn with_rate_policy(mut self, quota: u32, period_seconds: u64) -> Self {
        self.rate_policy = Some((quota, period_seconds));
        self
    }

    /// The rate limit a 429 is for: its quota and period in seconds.
    pub fn rate_policy(&self) -> Option<(u32, u64)> {
        self.rate_policy
    }

    /// This error, telling the client to come back in `seconds` (`Retry-After`).
    #[must_use]
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The seconds after which the client may try again, for a 429.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// The error a verifier's refusal makes, with the rule it names.
    #[cfg(feature = "jwt")]
    pub(crate) fn refused(refusal: impl Into<Refusal>, challenges: Challenges) -> Self {
        let refusal = refusal.into();
        Self {
            rule: refusal.rule,
            ..Self::new(refusal.kind, challenges)
        }
    }

    /// For a token that was refused, the rule it failed, as the rejection log names it:
    /// `signature`, `alg`, `kid` (no such key), `typ`, `iss`, `aud`, `exp`, `nbf`, `jti`,
    /// `cnf`, `dpop …` (the DPoP proof check that failed: `dpop htu`, `dpop ath`, `dpop jti`,
    /// …), `claims` (not a JSON claims set, or a claim named twice or of the wrong type),
    /// `act`. Never sent to the client: every 401 looks the same.
    pub fn rule(&self) -> Option<&'static str> {
        self.rule
    }

    /// A 403 for a caller that lacks what `scope` (one scope, or several space-separated:
    /// everything the operation needs) grants.
    pub fn insufficient_scope(scope: impl Into<Arc<str>>) -> Self {
        Self {
            kind: AuthErrorKind::InsufficientScope,
            challenges: Challenges::one(ChallengeScheme::Bearer),
            scope: Some(scope.into()),
            rule: None,
            retry_after: None,
            rate_policy: None,
            dpop: None,
        }
    }

    /// The scopes the refused operation needs (space-separated), for
    /// [`AuthErrorKind::InsufficientScope`].
    pub fn required_scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// Why the request was not accepted.
    pub fn kind(&self) -> AuthErrorKind {
        self.kind
    }

    /// The status this error is answered with by default.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The schemes a `WWW-Authenticate` header should offer.
    pub fn challenges(&self) -> Challenges {
        self.challenges
    }

    /// Whether the client presented a credential (as opposed to none at all), which decides
    /// for example whether a Bearer challenge carries `error="invalid_token"`.
    pub fn credentials_presented(&self) -> bool {
        self.kind != AuthErrorKind::MissingCredentials
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_str())
    }
}

impl std::error::Error for AuthError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_failures_are_401_and_body_failures_are_not() {
        assert_eq!(
            AuthErrorKind::InvalidCredentials.status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            AuthErrorKind::MalformedTimestamp.status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            AuthErrorKind::BodyTooLarge.status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            AuthErrorKind::BodyReadFailed.status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn challenges_iterate_in_fixed_order() {
        let set = Challenges::one(ChallengeScheme::Basic)
            .union(Challenges::one(ChallengeScheme::Signature));
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [ChallengeScheme::Signature, ChallengeScheme::Basic]
        );
        assert!(!set.contains(ChallengeScheme::Bearer));
    }
}

/// Why something outside callguard failed (a store, a connection): a message, or the error
/// itself, kept so that [`std::error::Error::source`] reaches it (a `reqwest` or `redis`
/// error and its own causes). Two causes are equal when they read the same.
///
/// ```
/// use callguard::Cause;
/// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
/// let cause = Cause::new(io);
/// assert_eq!(cause.to_string(), "refused");
/// assert!(cause.error().is_some());
/// assert_eq!(Cause::from("refused"), cause);
/// ```
#[derive(Clone)]
pub struct Cause(CauseKind);

#[derive(Clone)]
enum CauseKind {
    Message(Arc<str>),
    Error(Arc<dyn std::error::Error + Send + Sync>),
}

impl Cause {
    /// The cause `error`, kept whole.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(CauseKind::Error(Arc::new(error)))
    }

    /// The error, when the cause is one rather than a message.
    pub fn error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match &self.0 {
            CauseKind::Message(_) => None,
            CauseKind::Error(error) => Some(&**error),
        }
    }

    /// The cause as an error's `source`.
    pub(crate) fn as_source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<&str> for Cause {
    fn from(message: &str) -> Self {
        Self(CauseKind::Message(message.into()))
    }
}

impl From<String> for Cause {
    fn from(message: String) -> Self {
        Self(CauseKind::Message(message.into()))
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            CauseKind::Message(message) => f.write_str(message),
            CauseKind::Error(error) => error.fmt(f),
        }
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            CauseKind::Message(message) => f.debug_tuple("Cause").field(message).finish(),
            CauseKind::Error(error) => f.debug_tuple("Cause").field(error).finish(),
        }
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for Cause {}
