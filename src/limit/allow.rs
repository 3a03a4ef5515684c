//! IP allow-lists: CIDR sets a route accepts callers from, replaceable at run time.

use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Request, Response};
use ipnet::IpNet;
use tower_layer::Layer;
use tower_service::Service;

use crate::ClientAddr;
use crate::error::{AuthError, AuthErrorKind, ConfigError};
use crate::reject::{Challenges, GateFuture, ProblemDetails, Reject, respond};
use crate::rejection_log::RejectionLog;

/// The addresses a route accepts requests from: a set of CIDR ranges, shared by every clone
/// and replaceable at run time ([`replace`](Self::replace)), as providers publish and change
/// their ranges (GitHub's `hooks` in its meta API, Stripe's and Svix's webhook lists).
///
/// An allow-list adds to a signature, never replaces one: addresses are shared by every
/// customer of a platform, and a request from inside the range still has to prove itself.
///
/// ```
/// use std::net::IpAddr;
/// use callguard::limit::AllowList;
///
/// let github_hooks = AllowList::parse_text("# from api.github.com/meta\n192.30.252.0/22\n2a0a:a440::/29\n")?;
/// assert!(github_hooks.allows("192.30.252.7".parse()?));
/// assert!(!github_hooks.allows("203.0.113.1".parse()?));
/// // Replaced in place: every layer built from a clone sees the new list.
/// github_hooks.replace(&AllowList::parse(["140.82.112.0/20"])?);
/// assert!(github_hooks.allows("140.82.112.1".parse()?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct AllowList {
    ranges: Arc<ArcSwap<Vec<IpNet>>>,
}

impl std::fmt::Debug for AllowList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AllowList")
            .field("ranges", &self.ranges.load().len())
            .finish()
    }
}

impl AllowList {
    /// Whether `other` is this list (a clone of it, sharing its replacements), not merely
    /// one with the same ranges.
    pub(crate) fn is_same_list(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.ranges, &other.ranges)
    }

    /// An allow-list of `ranges` (CIDRs such as `192.30.252.0/22`, or single addresses).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidList`] for an entry that is neither.
    pub fn parse<S: AsRef<str>>(ranges: impl IntoIterator<Item = S>) -> Result<Self, ConfigError> {
        let ranges = ranges
            .into_iter()
            .map(|range| parse_range(range.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::of(ranges))
    }

    /// An allow-list from text: one range per line; blank lines and `#` comments are skipped.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidList`] naming the first line that is not a range.
    pub fn parse_text(text: &str) -> Result<Self, ConfigError> {
        let lines = text
            .lines()
            .map(|line| line.split('#').next().unwrap_or_default().trim())
            .filter(|line| !line.is_empty());
        Self::parse(lines)
    }

    /// An allow-list from the file at `path` (see [`parse_text`](Self::parse_text)).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidList`] for a file that cannot be read or holds a line that is not
    /// a range.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::InvalidList {
            name: format!("{} ({error})", path.display()),
            expected: "CIDR ranges, one per line",
        })?;
        Self::parse_text(&text)
    }

    fn of(ranges: Vec<IpNet>) -> Self {
        Self {
            ranges: Arc::new(ArcSwap::from_pointee(ranges)),
        }
    }

    /// Put `other`'s ranges in place of these, for every clone and every layer built from
    /// one; requests already past the check are not affected.
    pub fn replace(&self, other: &AllowList) {
        self.ranges.store(other.ranges.load_full());
    }

    /// Whether `address` (an IPv4-mapped IPv6 address as the IPv4 one) is in the list.
    pub fn allows(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.ranges
            .load()
            .iter()
            .any(|range| range.contains(&address))
    }

    /// A layer that answers 403 to requests from elsewhere.
    pub fn layer(&self) -> AllowListLayer {
        AllowListLayer {
            list: self.clone(),
            responder: ProblemDetails::default(),
            log: RejectionLog::new("allow-list".to_owned()),
        }
    }
}

fn parse_range(text: &str) -> Result<IpNet, ConfigError> {
    let text = text.trim();
    IpNet::from_str(text)
        .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
        .map(|net| crate::client::canonical_range(net.trunc()))
        .map_err(|_| ConfigError::InvalidList {
            name: format!("allow-list entry `{text}`"),
            expected: "a CIDR range such as 192.30.252.0/22, or an address",
        })
}

/// Refuses requests whose [`ClientAddr`] is outside an [`AllowList`] (403
/// [`AuthErrorKind::AddressNotAllowed`]); a request without a `ClientAddr` is a server setup
/// mistake (500 [`AuthErrorKind::ClientAddrMissing`]), never let through.
#[derive(Clone, Debug)]
pub struct AllowListLayer<R = ProblemDetails> {
    list: AllowList,
    responder: R,
    log: RejectionLog,
}

impl<R> AllowListLayer<R> {
    /// Build refusals with `responder` instead of [`ProblemDetails`].
    pub fn on_reject<R2: Reject>(self, responder: R2) -> AllowListLayer<R2> {
        AllowListLayer {
            list: self.list,
            responder,
            log: self.log,
        }
    }
}

impl<S, R: Clone> Layer<S> for AllowListLayer<R> {
    type Service = AllowListService<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        AllowListService {
            inner,
            gate: self.clone(),
        }
    }
}

/// The service made by [`AllowListLayer`].
#[derive(Clone, Debug)]
pub struct AllowListService<S, R = ProblemDetails> {
    inner: S,
    gate: AllowListLayer<R>,
}

impl<S, R> AllowListService<S, R> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming this one.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, R, B, ResBody> Service<Request<B>> for AllowListService<S, R>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
    R: Reject,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = GateFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let refusal = match request.extensions().get::<ClientAddr>() {
            Some(client) if self.gate.list.allows(client.0) => None,
            Some(_) => Some(AuthErrorKind::AddressNotAllowed),
            None => {
                tracing::error!(
                    "callguard: an allow-list found no ClientAddr on the request; add a ClientAddrLayer in front of it"
                );
                Some(AuthErrorKind::ClientAddrMissing)
            }
        };
        match refusal {
            None => GateFuture::inner(self.inner.call(request)),
            Some(kind) => GateFuture::refused(respond(
                &self.gate.responder,
                &self.gate.log,
                request.uri().path(),
                AuthError::new(kind, Challenges::default()),
            )),
        }
    }
}
