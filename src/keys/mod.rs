//! Keys held by others (feature `keys`, which `oauth` turns on): one mechanism for every key set callguard fetches
//! (an authorization server's JWKS today, agents' key directories next).
//!
//! A [`RemoteKeys`] is fetched off the request path under limits (`https` only, plain
//! `http` to loopback only when allowed, a size cap, a key-count cap, a timeout, no
//! redirects), read without a lock, refreshed in the background as `Cache-Control: max-age`
//! says within bounds, refetched on an unknown key id at most once per interval with every
//! waiting request sharing the one fetch, and kept when a refresh fails, for a bounded
//! time. A request that must wait for a fetch waits in the guard's own future, as it waits
//! for a replay store's answer.
//!
//! The HTTP client is a trait, [`HttpClient`]; [`ReqwestClient`] (feature `reqwest`) is the
//! default.

mod http;
mod remote;

#[cfg(feature = "reqwest")]
pub use self::http::ReqwestClient;
pub use self::http::{FetchError, HttpClient, HttpFuture};
// What the key mechanism offers its consumers inside the crate: OAuth's today.
#[cfg_attr(not(feature = "oauth"), allow(unused_imports))]
pub(crate) use self::http::{check_url, get_document};
pub use remote::{KeyDocument, RemoteKeySettings, RemoteKeys};
#[cfg_attr(not(feature = "oauth"), allow(unused_imports))]
pub(crate) use remote::{KeyState, KeyWait};
