//! The resolved caller context: what every accepted request carries.
//!
//! ```
//! use callguard::{AuthMethod, Caller, Scopes};
//!
//! let caller = Caller::new(AuthMethod::Signature, "tools")
//!     .with_key_id("2026-11")
//!     .with_scopes(Scopes::from_iter(["tools:call"]));
//! assert_eq!(caller.method(), AuthMethod::Signature);
//! assert_eq!(caller.key_id(), Some("2026-11"));
//! assert!(caller.scopes().contains("tools:call"));
//! ```

use std::fmt;
use std::sync::Arc;

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// An HMAC signature over the request (webhooks, signed tool calls).
    Signature,
    /// A static bearer token from a configured set.
    Bearer,
    /// A JSON Web Token this server issued.
    Jwt,
    /// HTTP Basic credentials.
    Basic,
    /// An OAuth access token from another party's authorization server (an external
    /// issuer: its `iss` and `client_id` are in [`Caller::issuer`] and
    /// [`Caller::client_id`]).
    OAuth,
    /// A method of the application's own ([`Authenticator::custom`](crate::Authenticator::custom)).
    Custom,
}

impl AuthMethod {
    /// The method's lower-case name: `signature`, `bearer`, `jwt`, `basic`, `oauth` or
    /// `custom`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signature => "signature",
            Self::Bearer => "bearer",
            Self::Jwt => "jwt",
            Self::Basic => "basic",
            Self::OAuth => "oauth",
            Self::Custom => "custom",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of granted scopes: sorted, without duplicates, cheap to clone (shared).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Scopes {
    sorted: Arc<[Box<str>]>,
}

impl Scopes {
    /// The empty set.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Whether `scope` is granted.
    pub fn contains(&self, scope: &str) -> bool {
        self.sorted.binary_search_by(|s| (**s).cmp(scope)).is_ok()
    }

    /// The first of `required` that is not granted, if any.
    pub fn first_missing<'a>(
        &self,
        required: impl IntoIterator<Item = &'a str>,
    ) -> Option<&'a str> {
        required.into_iter().find(|scope| !self.contains(scope))
    }

    /// The granted scopes in sorted order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> {
        self.sorted.iter().map(|s| &**s)
    }

    /// How many scopes are granted.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether no scope is granted.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The scopes both sets grant: what a user's scopes come to when an agent limited to
    /// `other` uses them.
    ///
    /// ```
    /// use callguard::Scopes;
    /// let user = Scopes::from_iter(["refunds:read", "refunds:write"]);
    /// let agent = Scopes::from_iter(["refunds:read"]);
    /// assert_eq!(user.intersection(&agent).iter().collect::<Vec<_>>(), ["refunds:read"]);
    /// ```
    #[must_use]
    pub fn intersection(&self, other: &Scopes) -> Scopes {
        Scopes::from_iter(self.iter().filter(|scope| other.contains(scope)))
    }
}

impl<S: AsRef<str>> FromIterator<S> for Scopes {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut scopes: Vec<Box<str>> = iter.into_iter().map(|s| Box::from(s.as_ref())).collect();
        scopes.sort_unstable();
        scopes.dedup();
        Self {
            sorted: scopes.into(),
        }
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// The verified claims of a JWT, as JSON.
///
/// Read one claim with [`Claims::get`], or all of them as your own type with
/// [`Claims::deserialize`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Claims {
    map: serde_json::Map<String, serde_json::Value>,
}

impl Claims {
    #[cfg_attr(not(feature = "jwt"), allow(dead_code))]
    pub(crate) fn new(map: serde_json::Map<String, serde_json::Value>) -> Self {
        Self { map }
    }

    /// One claim by name.
    pub fn get(&self, name: &str) -> Option<&serde_json::Value> {
        self.map.get(name)
    }

    /// All claims as a JSON object.
    pub fn as_map(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.map
    }

    /// All claims as `T`, read in place (nothing is copied but what `T` owns; `&str` fields
    /// borrow from the claims).
    ///
    /// # Errors
    ///
    /// [`ClaimsError`] when the claims do not have `T`'s shape.
    pub fn deserialize<'a, T: serde::Deserialize<'a>>(&'a self) -> Result<T, ClaimsError> {
        T::deserialize(&self.map).map_err(|e| ClaimsError(e.to_string()))
    }
}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Claims are signed, not secret, but may be personal: print their names only.
        f.debug_set().entries(self.map.keys()).finish()
    }
}

/// Claims that do not have the shape a handler asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimsError(String);

impl fmt::Display for ClaimsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "claims do not have the expected shape: {}", self.0)
    }
}

impl std::error::Error for ClaimsError {}

impl ClaimsError {
    #[cfg_attr(
        not(feature = "axum"),
        allow(dead_code, reason = "used by the axum extractor")
    )]
    pub(crate) fn new(reason: &str) -> Self {
        Self(reason.to_owned())
    }
}

/// The agent that presented a user's proof on the user's behalf (RFC 8693's actor): how it
/// proved itself, who it is, and which of its secrets or keys matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    method: AuthMethod,
    id: Arc<str>,
    key_id: Option<Arc<str>>,
    claims: Option<Arc<Claims>>,
}

impl Actor {
    /// The method that proved the agent.
    pub fn method(&self) -> AuthMethod {
        self.method
    }

    /// The agent's identity (a verifier's name such as `sendbird`, a token name, a `sub`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The id of the agent's secret or key that matched.
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// The agent token's verified claims, when the agent proved itself with a token.
    pub fn claims(&self) -> Option<&Claims> {
        self.claims.as_deref()
    }

    /// The agent token's issuer (`iss`), when it names one.
    pub fn issuer(&self) -> Option<&str> {
        self.claims()?.get("iss")?.as_str()
    }
}

/// Who is calling, as proved by one of the configured methods.
///
/// The guard inserts exactly one `Caller` into the extensions of every request it accepts.
/// Handlers read it with the axum extractor (feature `axum`) or with
/// `request.extensions().get::<Caller>()`.
///
/// Cloning is cheap: the strings and scopes are shared with the configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct Caller {
    /// Who the caller is, shared: a configured caller (a static token's, a secret's) and a
    /// cached token's are cloned into each request it proves with one reference count.
    proved: Arc<Proved>,
}

/// What a [`Caller`] was proved to be.
#[derive(Clone, PartialEq, Eq)]
struct Proved {
    method: AuthMethod,
    id: Arc<str>,
    key_id: Option<Arc<str>>,
    scopes: Scopes,
    claims: Option<Arc<Claims>>,
    actor: Option<Arc<Actor>>,
    on_behalf_of: Option<Arc<str>>,
    confirmation: Option<Confirmation>,
}

impl Caller {
    /// A caller proved by `method` with identity `id` (a token name, a verifier's name, a
    /// JWT `sub`, a Basic user), with no key id and no scopes.
    pub fn new(method: AuthMethod, id: impl Into<Arc<str>>) -> Self {
        Self {
            proved: Arc::new(Proved {
                method,
                id: id.into(),
                key_id: None,
                scopes: Scopes::empty(),
                claims: None,
                actor: None,
                on_behalf_of: None,
                confirmation: None,
            }),
        }
    }

    /// What this caller was proved to be, to change: in place when this is its only copy
    /// (a caller being built), otherwise copied first.
    fn proved_mut(&mut self) -> &mut Proved {
        Arc::make_mut(&mut self.proved)
    }

    /// This caller (the user) acting through `agent`, whose own caller context becomes the
    /// [`actor`](Self::actor).
    #[must_use]
    pub fn with_actor(mut self, agent: &Caller) -> Self {
        let agent = &*agent.proved;
        self.proved_mut().actor = Some(Arc::new(Actor {
            method: agent.method,
            id: Arc::clone(&agent.id),
            key_id: agent.key_id.clone(),
            claims: agent.claims.clone(),
        }));
        self
    }

    /// This caller, saying it acts on behalf of `user`: asserted by the caller (a platform
    /// naming its user in a signed request), not proven by the user.
    #[must_use]
    pub fn with_on_behalf_of(mut self, user: impl Into<Arc<str>>) -> Self {
        self.proved_mut().on_behalf_of = Some(user.into());
        self
    }

    /// This caller, having proved possession of the key `confirmation` names.
    #[must_use]
    pub fn with_confirmation(mut self, confirmation: Confirmation) -> Self {
        self.proved_mut().confirmation = Some(confirmation);
        self
    }

    /// The key this caller proved it holds beside its token, when it did: a DPoP key's
    /// thumbprint (the token's `cnf.jkt`, or the proof's key for an unbound token a server
    /// accepts under the `DPoP` scheme), or the connection's client certificate a
    /// certificate-bound token names (`cnf["x5t#S256"]`).
    pub fn confirmation(&self) -> Option<&Confirmation> {
        self.proved.confirmation.as_ref()
    }

    /// The agent that presented this user's proof, when the call was delegated.
    pub fn actor(&self) -> Option<&Actor> {
        self.proved.actor.as_deref()
    }

    /// The user this caller says it acts for, as the caller asserted it (for example the
    /// `user_id` of a signed platform request). Only asserted: the user proved nothing. A
    /// delegated call, where the user did prove it, has the user as the caller instead.
    pub fn on_behalf_of(&self) -> Option<&str> {
        self.proved.on_behalf_of.as_deref()
    }

    /// This caller, naming the secret or key that matched.
    #[must_use]
    pub fn with_key_id(mut self, key_id: impl Into<Arc<str>>) -> Self {
        self.proved_mut().key_id = Some(key_id.into());
        self
    }

    /// This caller with these granted scopes.
    #[must_use]
    pub fn with_scopes(mut self, scopes: Scopes) -> Self {
        self.proved_mut().scopes = scopes;
        self
    }

    /// This caller with the verified claims of its JWT.
    #[must_use]
    pub fn with_claims(mut self, claims: Claims) -> Self {
        self.proved_mut().claims = Some(Arc::new(claims));
        self
    }

    /// The verified JWT claims, for callers proved by a JWT.
    pub fn claims(&self) -> Option<&Claims> {
        self.proved.claims.as_deref()
    }

    /// This caller with its scopes widened by `implications` (a broader scope implying
    /// narrower ones).
    #[must_use]
    pub(crate) fn with_implied_scopes(
        mut self,
        implications: &crate::scope::ScopeImplications,
    ) -> Self {
        let scopes = implications.expand(&self.proved.scopes);
        self.proved_mut().scopes = scopes;
        self
    }

    /// The verified token's issuer (`iss`), for callers proved by a token that names one.
    pub fn issuer(&self) -> Option<&str> {
        self.claims()?.get("iss")?.as_str()
    }

    /// The OAuth client the verified token was issued to (`client_id`, RFC 9068), if any.
    pub fn client_id(&self) -> Option<&str> {
        self.claims()?.get("client_id")?.as_str()
    }

    /// The method that proved the caller.
    pub fn method(&self) -> AuthMethod {
        self.proved.method
    }

    /// The caller's identity: token name, verifier name, JWT `sub` or Basic user.
    pub fn id(&self) -> &str {
        &self.proved.id
    }

    /// The id of the secret or key that matched, for rotation telemetry.
    pub fn key_id(&self) -> Option<&str> {
        self.proved.key_id.as_deref()
    }

    /// The granted scopes.
    pub fn scopes(&self) -> &Scopes {
        &self.proved.scopes
    }

    /// Whether `scope` is granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.proved.scopes.contains(scope)
    }

    /// `Ok` when every one of `scopes` is granted; otherwise the 403 whose challenge names
    /// all of `scopes`, the operation's whole requirement, in one `scope` (with the `axum`
    /// feature, `?` in a handler answers it).
    ///
    /// # Errors
    ///
    /// [`AuthError`](crate::AuthError) of kind [`InsufficientScope`](crate::AuthErrorKind::InsufficientScope).
    pub fn require_scopes<'a>(
        &self,
        scopes: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), crate::AuthError> {
        let required: Vec<&str> = scopes.into_iter().collect();
        match self.proved.scopes.first_missing(required.iter().copied()) {
            Some(_) => Err(crate::AuthError::insufficient_scope(required.join(" "))),
            None => Ok(()),
        }
    }
}

/// A key a caller proved it holds, beside its token (RFC 7800 `cnf`).
///
/// ```
/// use callguard::{AuthMethod, Caller, Confirmation};
///
/// let caller = Caller::new(AuthMethod::OAuth, "user-1")
///     .with_confirmation(Confirmation::DpopKey("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into()));
/// assert_eq!(
///     caller.confirmation().map(Confirmation::thumbprint),
///     Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Confirmation {
    /// A DPoP key (RFC 9449): its RFC 7638 SHA-256 thumbprint, base64url.
    DpopKey(Arc<str>),
    /// The client certificate of the connection (RFC 8705): its SHA-256 thumbprint
    /// (`x5t#S256`), base64url.
    Certificate(Arc<str>),
}

impl Confirmation {
    /// The key's thumbprint, base64url without padding.
    pub fn thumbprint(&self) -> &str {
        match self {
            Self::DpopKey(thumbprint) | Self::Certificate(thumbprint) => thumbprint,
        }
    }
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proved = &*self.proved;
        f.debug_struct("Caller")
            .field("method", &proved.method)
            .field("id", &proved.id)
            .field("key_id", &proved.key_id)
            .field("scopes", &proved.scopes)
            .field("claims", &proved.claims)
            .field("actor", &proved.actor)
            .field("on_behalf_of", &proved.on_behalf_of)
            .field("confirmation", &proved.confirmation)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_sorted_and_deduplicated() {
        let scopes = Scopes::from_iter(["b", "a", "b"]);
        assert_eq!(scopes.iter().collect::<Vec<_>>(), ["a", "b"]);
        assert!(scopes.contains("a"));
        assert!(!scopes.contains("c"));
    }

    #[test]
    fn first_missing_scope_is_named() {
        let scopes = Scopes::from_iter(["orders:read"]);
        assert_eq!(
            scopes.first_missing(["orders:read", "orders:write"]),
            Some("orders:write")
        );
        assert_eq!(scopes.first_missing(["orders:read"]), None);
    }

    #[test]
    fn a_shared_caller_changed_for_one_request_leaves_the_others_as_they_were() {
        // A configured caller (a static token's, a secret's) is cloned into each request it
        // proves; what one request adds (the user it names, a proof) must stay its own.
        let configured = Caller::new(AuthMethod::Signature, "platform")
            .with_key_id("k1")
            .with_scopes(Scopes::from_iter(["orders:read"]));
        let first = configured
            .clone()
            .with_on_behalf_of("user-1")
            .with_confirmation(Confirmation::Certificate("x5t".into()));
        let second = configured.clone();
        assert_eq!(first.on_behalf_of(), Some("user-1"));
        assert!(first.confirmation().is_some());
        assert_eq!((second.on_behalf_of(), second.confirmation()), (None, None));
        assert_eq!(configured, second);
        assert_ne!(configured, first);
        assert_eq!((first.id(), first.key_id()), ("platform", Some("k1")));
    }

    #[test]
    fn method_names_are_stable() {
        assert_eq!(AuthMethod::Signature.to_string(), "signature");
        assert_eq!(AuthMethod::Jwt.as_str(), "jwt");
    }
}
