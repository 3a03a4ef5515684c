//! Run with: cargo run --example tool_server
//!
//! A tool backend behind callguard, showing every method. Configured from the environment;
//! where a secret is unset, a random demo value is generated and printed.
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `CALLGUARD_ADDR` | address to listen on | `127.0.0.1:3000` |
//! | `CALLGUARD_HEADER_TIMEOUT` | seconds a client may take to send a request's head before its connection is closed | `10` |
//! | `CALLGUARD_BODY_LIMIT` | largest accepted body on the tool and token routes, in bytes (webhook routes accept what their platform delivers: GitHub 25 MiB, the others 1 MiB) | `1048576` |
//! | `TOOL_SIGNING_SECRETS` | comma-separated secrets for `x-signature` (hex HMAC-SHA256 of the raw body); every one is accepted | random |
//! | `TOOL_BEARER_TOKENS` | comma-separated `name=token` pairs, each granted `tools:call` | `demo=<random>` |
//! | `TOOL_JWT_SECRET` | HS256 key of the JWTs this server mints and verifies (issuer `callguard-example`, audience `tools`, header `typ` `JWT`) | random |
//! | `TOOL_JWT_PRIVATE_KEY_FILE` | path to an ES256 (P-256, PKCS#8 PEM) private key: minted tokens are signed with it (`kid` `example-es256`) and its public key set is served at `/.well-known/jwks.json`; `TOOL_JWT_SECRET` tokens still verify | unset: HS256 |
//! | `TOOL_BASIC_USERS` | comma-separated `user:password` pairs allowed to mint tokens | `demo:<random>` |
//! | `CALLGUARD_PUBLIC_URL` | base URL platforms call, for URL-covering schemes (SignalWire) | `http://<CALLGUARD_ADDR>` |
//! | `CALLGUARD_OPEN_ROUTE` | set to `1` to mount `POST /open/{name}` without authentication, the baseline `benches/load.sh` compares with | unset |
//! | `CALLGUARD_MEMORY_STORE_KEYS` | keys each in-memory store holds (replay of each route, the JWT denylist); full of live keys, a new delivery is 503 and a revocation `DELETE` 503, never a live key forgotten | `100000` |
//! | `CALLGUARD_REDIS_URL` | Redis for replay protection on the Standard Webhooks and Stripe routes and for the failure counts, shared by every instance (run with `--features redis`) | unset: in memory |
//! | `CALLGUARD_OAUTH_ISSUERS` | comma-separated issuer URLs whose access tokens `/tools/{name}` also accepts; each is discovered (OpenID Connect, then RFC 8414) and its JWKS kept fresh. `https` only, or `http` on loopback. Needs `--features reqwest` | unset |
//! | `CALLGUARD_RESOURCE` | this server's resource identifier: the audience access tokens must name | `CALLGUARD_PUBLIC_URL` |
//! | `CALLGUARD_INTROSPECTION_URL`, `CALLGUARD_INTROSPECTION_CLIENT_ID`, `CALLGUARD_INTROSPECTION_CLIENT_SECRET` | an RFC 7662 endpoint and the client credentials to call it with: opaque bearer tokens that are not static tokens are introspected (`https`, or `http` on loopback; needs `--features reqwest`) | unset |
//! | `CALLGUARD_OAUTH_ALLOW_JWT_TYP` | `1` accepts access tokens with `typ: JWT` (or none), not only `at+jwt` | unset |
//! | `CALLGUARD_CLIENT_CERT_HEADER` | with `--features mtls`: the header a TLS-terminating proxy in `CALLGUARD_TRUSTED_PROXIES` passes the client certificate in, URL-escaped PEM (nginx: `proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;`); access tokens of `CALLGUARD_OAUTH_ISSUERS` bound to a certificate (RFC 8705 `cnf["x5t#S256"]`) are then accepted over a connection with it, the answer naming it in `x5t` | unset: certificate-bound tokens refused |
//! | `CALLGUARD_DPOP_NONCE` | `1`: DPoP proofs (RFC 9449) to `/tools/{name}` must carry a server nonce: without one, 401 `use_dpop_nonce` with a `DPoP-Nonce` header; every accepted answer carries a fresh one. Replicas with one `TOOL_JWT_SECRET` accept each other's nonces. With `--features dpop`, the access tokens of `CALLGUARD_OAUTH_ISSUERS` are accepted as `Authorization: DPoP` with a proof whose `htu` is `CALLGUARD_PUBLIC_URL` + the path; a DPoP-bound token (`cnf.jkt`) only so | unset |
//! | `CALLGUARD_FAILURE_LIMIT` | `N/SECONDS`: after `N` failed attempts (a credential presented and wrong) from one client address (IPv6 by its /64) within `SECONDS`, every guard answers 429 with `Retry-After` without checking credentials, for the rest of the window, then twice as long each time, up to an hour. Shared by replicas through `CALLGUARD_REDIS_URL`. Recommended in production: `10/60` | unset: off |
//! | `CALLGUARD_RATE_LIMIT` | `N/SECONDS`: at most `N` requests per `SECONDS` (all at once if need be) per accepted caller on the `/tools/*` routes; past it, 429 with `Retry-After`, `RateLimit-Policy` and `RateLimit`. Shared by replicas through `CALLGUARD_REDIS_URL` | unset: none |
//! | `CALLGUARD_OTP_OUTBOX` | file the one-time codes of `POST /mfa/send` are appended to, one `<phone> <code>` line each (the example's stand-in for SMS) | unset: printed to stdout |
//! | `CALLGUARD_TRUSTED_PROXIES` | comma-separated CIDRs of proxies whose `X-Forwarded-For` is believed, read from the right; the first address that is not one of them is the client | unset: the peer is the client |
//! | `CALLGUARD_WEBHOOK_ALLOWED_IPS` | path to a file of CIDRs (one per line, `#` comments): `/webhooks/*` answers 403 to any other client address | unset: any address |
//! | `RUST_LOG` | log filter for stderr (`tracing-subscriber`'s `EnvFilter`); every refused request is logged at `warn` with the guard's name, the path and the reason | `info` |
//! | `SENDBIRD_API_TOKEN`, `SIGNALWIRE_SIGNING_KEY`, `GITHUB_WEBHOOK_SECRET`, `STRIPE_WEBHOOK_SECRET`, `SLACK_SIGNING_SECRET`, `SHOPIFY_WEBHOOK_SECRET`, `STANDARD_WEBHOOK_SECRET` | each mounts `POST /webhooks/{provider}` with that platform's scheme | unset: not mounted |
//!
//! Secrets from the environment must not have leading or trailing whitespace (a file's
//! trailing newline, say): the server refuses to start, naming the variable.
//!
//! Routes:
//! - `GET /healthz`: 200, no credentials.
//! - `POST /tools/{name}`: a signature, a static bearer token or a JWT; `POST /tools/orders`
//!   also requires scope `orders:write`. Answers 200 with JSON describing the caller and the
//!   body the handler received (`route`, `method`, `id`, `key_id`, `scopes`, `body_len`,
//!   `body_sha256`, and for token callers `issuer` and `client_id`). With
//!   `CALLGUARD_OAUTH_ISSUERS`, an access token from one of them is answered with `method:
//!   "oauth"`, `id` its `sub`, `issuer`, `client_id` and `scopes`; one presented as
//!   `Authorization: DPoP` with a valid proof (`--features dpop`) adds `jkt`, the proof
//!   key's thumbprint, and a certificate-bound one (`--features mtls`) `x5t`, the client
//!   certificate's (each `null` otherwise).
//! - `POST /webhooks/{provider}` for `sendbird`, `signalwire`, `github`, `stripe`, `slack`,
//!   `shopify` and `standard`, each mounted only when its secret is set (404 otherwise);
//!   answers 200 with the same JSON as the tool routes.
//! - `POST /tools/refund`: a delegated call. The agent's proof is the Sendbird signature
//!   (`x-sendbird-signature`, when `SENDBIRD_API_TOKEN` is set) or the generic `x-signature`;
//!   the user's proof is a JWT from `/auth/token` in `Authorization: Bearer` with scope
//!   `refunds:write`; the signed JSON body's `user_id` must be the token's `sub`. Answers the
//!   same JSON with `id` the user, `method: "jwt"`, `scopes` in force and `actor` (`method`,
//!   `id`, `key_id` of the agent; an `x-signature` agent is named by its secret's `key_id`,
//!   `secret-1`, …, so a token minted with that `actor` is accepted only with a signature by
//!   that secret, 403 with another). Missing either proof: 401; another `user_id`: 403; no
//!   `refunds:write`: 403 `insufficient_scope`. A signed delivery is accepted once.
//! - Signed calls whose JSON body has a `user_id` show it as `on_behalf_of` (asserted by the
//!   platform, not proven by the user), on the tool routes and `/webhooks/sendbird`.
//! - `POST /auth/token`: Basic credentials and JSON `{"scopes": [...], "ttl": seconds, "sub":
//!   user, "actor": agent}` (`sub` defaults to the Basic user; with `actor`, only that agent
//!   may present the token); answers 201 `{"access_token", "token_type": "Bearer",
//!   "expires_in", "scope", "jti"}`. With `--features dpop`, a request carrying a DPoP proof
//!   (`htu` `CALLGUARD_PUBLIC_URL/auth/token`) gets a token bound to the proof's key
//!   (`token_type: "DPoP"`), accepted on `/tools/{name}` only as `Authorization: DPoP` with
//!   proofs of that key; a bad proof is 400 `{"error": "invalid_dpop_proof"}` (or
//!   `use_dpop_nonce` with a `DPoP-Nonce`). Allowed scopes: `tools:call`, `orders:read`,
//!   `orders:write`, `refunds:read`, `refunds:write`; TTL 1..=3600 (default 300).
//! - `POST /mfa/send`: Basic credentials and `{"phone": "+15551234567"}`; a 6-digit code
//!   goes to the outbox (`CALLGUARD_OTP_OUTBOX`), answered 202 `{"status": "sent",
//!   "expires_in": 300}`; a second code for the same phone within 30 s is 429.
//! - `POST /mfa/verify`: Basic credentials and `{"phone", "code"}`; 200 `{"verified": true,
//!   "access_token"}` (a JWT for the phone with scope `mfa:verified`), 401 `{"error":
//!   "invalid code"}`, 429 after three wrong codes, 400 `{"error": "code expired"}`, 400
//!   `{"error": "no code sent"}` (also for a code already used). Codes are kept as keyed
//!   hashes only, in Redis with `CALLGUARD_REDIS_URL`.
//! - `GET /.well-known/jwks.json`: with `TOOL_JWT_PRIVATE_KEY_FILE`, the JSON Web Key Set
//!   of the key that signs minted tokens (`application/jwk-set+json`); 404 otherwise.
//! - `DELETE /auth/token/{jti}`: the same Basic credentials; revokes a minted token (204),
//!   after which it is 401 on every route, cached or not.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use callguard::basic::BasicUsers;
use callguard::bearer::BearerTokens;
use callguard::client::{ClientAddrLayer, TrustedProxies};
use callguard::delegation::{Delegation, PlatformUser};
use callguard::jwt::{
    JwksService, JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier, Revocations, TokenIssuer,
    TokenRequest,
};
use callguard::limit::{
    AllowList, CodeCheck, CodeError, CodeSender, FailureLimit, OneTimeCodes, RateLimit,
};
use callguard::replay::{MemoryReplayStore, ReplayPolicy, StoreError};
use callguard::scope::RequireScopesLayer;
use callguard::signature::{SignatureVerifier, SignatureVerifierBuilder};
use callguard::{
    Authenticator, Caller, ClientAddr, GuardLayer, Scopes, Secret, dangerous, providers,
};
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const JWT_ISSUER: &str = "callguard-example";
const JWT_AUDIENCE: &str = "tools";
const JWT_KID: &str = "example-hs256";
const JWT_ES256_KID: &str = "example-es256";
const MINTABLE_SCOPES: [&str; 5] = [
    "tools:call",
    "orders:read",
    "orders:write",
    "refunds:read",
    "refunds:write",
];
const DEFAULT_TTL: u64 = 300;
/// Webhook routes and the variable holding each one's secret.
const PROVIDERS: [(&str, &str); 7] = [
    ("sendbird", "SENDBIRD_API_TOKEN"),
    ("signalwire", "SIGNALWIRE_SIGNING_KEY"),
    ("github", "GITHUB_WEBHOOK_SECRET"),
    ("stripe", "STRIPE_WEBHOOK_SECRET"),
    ("slack", "SLACK_SIGNING_SECRET"),
    ("shopify", "SHOPIFY_WEBHOOK_SECRET"),
    ("standard", "STANDARD_WEBHOOK_SECRET"),
];
const MAX_TTL: u64 = 3600;

/// Everything the server reads from its environment, checked before it listens.
struct Settings {
    addr: SocketAddr,
    body_limit: usize,
    header_timeout: Duration,
    signing_secrets: Vec<String>,
    bearer_tokens: Vec<(String, String)>,
    jwt_secret: String,
    /// PEM of an ES256 (P-256, PKCS#8) private key that mints tokens instead of the HS256
    /// secret; its public half is published at `/.well-known/jwks.json`.
    jwt_private_key: Option<Vec<u8>>,
    basic_users: Vec<(String, String)>,
    public_url: String,
    /// `(route name, secret)` for each provider whose variable is set.
    providers: Vec<(&'static str, String)>,
    /// Variables that were unset, with the demo value generated for each.
    generated: Vec<(&'static str, String)>,
    /// External issuers whose access tokens the tool routes accept.
    oauth_issuers: Vec<String>,
    /// The audience those tokens must name.
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    resource: String,
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    allow_jwt_typ: bool,
    /// `CALLGUARD_DPOP_NONCE=1`: DPoP proofs must carry a server nonce.
    dpop_nonce: bool,
    /// `(endpoint, client id, client secret)` for introspecting opaque tokens.
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    introspection: Option<(String, String, String)>,
    /// `CALLGUARD_FAILURE_LIMIT`: failures, and the window in seconds.
    failure_limit: Option<(u32, u64)>,
    /// `CALLGUARD_RATE_LIMIT`: requests, and the period in seconds.
    rate_limit: Option<(u32, u64)>,
    trusted_proxies: TrustedProxies,
    /// `CALLGUARD_CLIENT_CERT_HEADER`: the header a trusted TLS-terminating proxy passes the
    /// client certificate in (nginx `$ssl_client_escaped_cert`).
    #[cfg_attr(
        not(feature = "mtls"),
        allow(dead_code, reason = "read with feature mtls")
    )]
    client_cert_header: Option<http::HeaderName>,
    webhook_allowed_ips: Option<AllowList>,
}

impl Settings {
    fn from_env() -> Result<Self, String> {
        let mut generated = Vec::new();
        let mut env_or_random = |name: &'static str, make: fn() -> String| match secret_env(name) {
            Ok(Some(value)) => Ok(value),
            Ok(None) => {
                let value = make();
                generated.push((name, value.clone()));
                Ok(value)
            }
            Err(e) => Err(e),
        };
        let signing = env_or_random("TOOL_SIGNING_SECRETS", random_secret)?;
        let bearer = env_or_random("TOOL_BEARER_TOKENS", || format!("demo={}", random_secret()))?;
        let jwt_secret = env_or_random("TOOL_JWT_SECRET", random_secret)?;
        let basic = env_or_random("TOOL_BASIC_USERS", || format!("demo:{}", random_secret()))?;
        let addr: SocketAddr = env_or("CALLGUARD_ADDR", "127.0.0.1:3000")
            .parse()
            .map_err(|e| format!("CALLGUARD_ADDR: {e}"))?;
        let mut providers = Vec::new();
        for (route, variable) in PROVIDERS {
            if let Some(secret) = secret_env(variable)? {
                providers.push((route, secret));
            }
        }
        let public_url =
            std::env::var("CALLGUARD_PUBLIC_URL").unwrap_or_else(|_| format!("http://{addr}"));
        let oauth_issuers: Vec<String> = std::env::var("CALLGUARD_OAUTH_ISSUERS")
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        for issuer in &oauth_issuers {
            let loopback_http = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
                .iter()
                .any(|prefix| {
                    issuer
                        .strip_prefix(prefix)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
                });
            if !issuer.starts_with("https://") && !loopback_http {
                return Err(format!(
                    "CALLGUARD_OAUTH_ISSUERS: `{issuer}` is not an https URL (plain http is allowed only on loopback)"
                ));
            }
        }
        Ok(Self {
            addr,
            resource: std::env::var("CALLGUARD_RESOURCE").unwrap_or_else(|_| public_url.clone()),
            public_url,
            oauth_issuers,
            allow_jwt_typ: std::env::var("CALLGUARD_OAUTH_ALLOW_JWT_TYP").as_deref() == Ok("1"),
            dpop_nonce: std::env::var("CALLGUARD_DPOP_NONCE").as_deref() == Ok("1"),
            introspection: match std::env::var("CALLGUARD_INTROSPECTION_URL") {
                Ok(url) => Some((
                    url,
                    std::env::var("CALLGUARD_INTROSPECTION_CLIENT_ID").map_err(|_| {
                        "CALLGUARD_INTROSPECTION_URL is set: CALLGUARD_INTROSPECTION_CLIENT_ID must be too"
                            .to_owned()
                    })?,
                    secret_env("CALLGUARD_INTROSPECTION_CLIENT_SECRET")?.ok_or_else(|| {
                        "CALLGUARD_INTROSPECTION_URL is set: CALLGUARD_INTROSPECTION_CLIENT_SECRET must be too"
                            .to_owned()
                    })?,
                )),
                Err(_) => None,
            },
            providers,
            body_limit: env_or("CALLGUARD_BODY_LIMIT", "1048576")
                .parse()
                .map_err(|e| format!("CALLGUARD_BODY_LIMIT: {e}"))?,
            header_timeout: match env_or("CALLGUARD_HEADER_TIMEOUT", "10").parse::<u64>() {
                Ok(seconds) if seconds > 0 => Duration::from_secs(seconds),
                Ok(_) => return Err("CALLGUARD_HEADER_TIMEOUT must be at least 1".to_owned()),
                Err(e) => return Err(format!("CALLGUARD_HEADER_TIMEOUT: {e}")),
            },
            signing_secrets: signing.split(',').map(str::to_owned).collect(),
            bearer_tokens: pairs("TOOL_BEARER_TOKENS", &bearer, '=')?,
            jwt_secret,
            jwt_private_key: match std::env::var_os("TOOL_JWT_PRIVATE_KEY_FILE") {
                Some(path) => Some(std::fs::read(&path).map_err(|e| {
                    format!("TOOL_JWT_PRIVATE_KEY_FILE ({}): {e}", path.to_string_lossy())
                })?),
                None => None,
            },
            basic_users: pairs("TOOL_BASIC_USERS", &basic, ':')?,
            generated,
            failure_limit: per_seconds("CALLGUARD_FAILURE_LIMIT")?,
            rate_limit: per_seconds("CALLGUARD_RATE_LIMIT")?,
            client_cert_header: match std::env::var("CALLGUARD_CLIENT_CERT_HEADER") {
                Ok(name) if !cfg!(feature = "mtls") => {
                    return Err(format!(
                        "CALLGUARD_CLIENT_CERT_HEADER is set ({name}): run with `--features mtls` to use it"
                    ));
                }
                Ok(name) => Some(
                    http::HeaderName::try_from(name.as_str())
                        .map_err(|e| format!("CALLGUARD_CLIENT_CERT_HEADER: {e}"))?,
                ),
                Err(_) => None,
            },
            trusted_proxies: match std::env::var("CALLGUARD_TRUSTED_PROXIES") {
                Err(_) => TrustedProxies::none(),
                Ok(list) => TrustedProxies::parse(list.split(',').filter(|s| !s.trim().is_empty()))
                    .map_err(|e| format!("CALLGUARD_TRUSTED_PROXIES: {e}"))?,
            },
            webhook_allowed_ips: match std::env::var_os("CALLGUARD_WEBHOOK_ALLOWED_IPS") {
                None => None,
                Some(path) => Some(
                    AllowList::from_file(&path)
                        .map_err(|e| format!("CALLGUARD_WEBHOOK_ALLOWED_IPS: {e}"))?,
                ),
            },
        })
    }
}

/// A secret-bearing variable: `None` when unset; refused, naming it, when it has leading or
/// trailing whitespace (as `Secret::from_env` refuses it).
fn secret_env(name: &str) -> Result<Option<String>, String> {
    match std::env::var(name) {
        Ok(value) if value.trim() != value => Err(callguard::ConfigError::SecretWhitespace {
            name: name.to_owned(),
        }
        .to_string()),
        Ok(value) => Ok(Some(value)),
        Err(_) => Ok(None),
    }
}

/// A `N/SECONDS` variable, both positive; `None` when unset.
fn per_seconds(name: &str) -> Result<Option<(u32, u64)>, String> {
    let Ok(text) = std::env::var(name) else {
        return Ok(None);
    };
    text.split_once('/')
        .and_then(|(n, s)| Some((n.parse().ok()?, s.parse().ok()?)))
        .filter(|(n, s): &(u32, u64)| *n > 0 && *s > 0)
        .map(Some)
        .ok_or_else(|| format!("{name}: `{text}` is not `N/SECONDS` (say 10/60)"))
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn pairs(name: &str, list: &str, separator: char) -> Result<Vec<(String, String)>, String> {
    list.split(',')
        .map(|entry| {
            entry
                .split_once(separator)
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .ok_or_else(|| format!("{name}: entry `{entry}` has no `{separator}`"))
        })
        .collect()
}

fn random_secret() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    hex::encode(bytes)
}

/// A secret from the environment. Drivers of this example may use short test secrets:
/// allow them, but say so.
fn lenient_secret(variable: &str, value: &str) -> Result<Secret, String> {
    Secret::from_utf8(value).or_else(|_| {
        eprintln!(
            "warning: a value in {variable} is shorter than {} bytes",
            Secret::MIN_LEN
        );
        dangerous::secret_allowing_short(value.as_bytes()).map_err(|e| format!("{variable}: {e}"))
    })
}

/// The verifier for one provider's webhooks, keyed as that provider keys its secret.
/// The replay store of the timestamped webhook routes: Redis when `CALLGUARD_REDIS_URL` is
/// set (build with `--features redis`), otherwise each verifier's in-memory default.
#[derive(Clone)]
enum SharedReplay {
    /// In memory, each store holding this many keys.
    InMemory(usize),
    #[cfg(feature = "redis")]
    Redis(callguard::replay_redis::RedisReplayStore),
}

impl SharedReplay {
    async fn from_env() -> Result<Self, String> {
        let Ok(url) = std::env::var("CALLGUARD_REDIS_URL") else {
            return memory_store_keys().map(Self::InMemory);
        };
        #[cfg(feature = "redis")]
        {
            callguard::replay_redis::RedisReplayStore::connect(&url)
                .await
                .map(Self::Redis)
                .map_err(|e| format!("CALLGUARD_REDIS_URL: {e}"))
        }
        #[cfg(not(feature = "redis"))]
        {
            let _ = url;
            Err("CALLGUARD_REDIS_URL is set: run with `--features redis` to use it".to_owned())
        }
    }

    /// The failure limit of every guard, when `CALLGUARD_FAILURE_LIMIT` sets one: counted in
    /// Redis when it is configured, else in one in-memory store all guards share.
    fn failure_limit(&self, settings: &Settings) -> Result<Option<FailureLimit>, String> {
        let Some((failures, seconds)) = settings.failure_limit else {
            return Ok(None);
        };
        let builder = match self {
            Self::InMemory(keys) => {
                FailureLimit::builder(MemoryReplayStore::new(1).with_limit_keys(*keys))
            }
            #[cfg(feature = "redis")]
            Self::Redis(store) => FailureLimit::builder(store.clone()),
        };
        builder
            .max_failures(failures)
            .window(Duration::from_secs(seconds))
            .max_lockout(Duration::from_secs(seconds.max(3600)))
            .build()
            .map(Some)
            .map_err(|e| format!("CALLGUARD_FAILURE_LIMIT: {e}"))
    }

    /// DPoP for the access tokens of other issuers: proofs' `jti`s in Redis when it is
    /// configured (shared by replicas), else in memory; `htu` based on `CALLGUARD_PUBLIC_URL`;
    /// with `CALLGUARD_DPOP_NONCE=1`, server nonces keyed by a key derived from the JWT
    /// secret, so replicas with one secret accept each other's nonces.
    #[cfg(feature = "dpop")]
    fn dpop(&self, settings: &Settings) -> Result<callguard::dpop::Dpop, String> {
        let builder = match self {
            Self::InMemory(keys) => callguard::dpop::Dpop::builder(MemoryReplayStore::new(*keys)),
            #[cfg(feature = "redis")]
            Self::Redis(store) => callguard::dpop::Dpop::builder(store.clone()),
        };
        let mut builder = builder.public_url(settings.public_url.as_str());
        if settings.dpop_nonce {
            let mut mac = Hmac::<Sha256>::new_from_slice(settings.jwt_secret.as_bytes())
                .map_err(|e| e.to_string())?;
            mac.update(b"callguard example dpop nonces");
            let key = Secret::from_bytes(mac.finalize().into_bytes().to_vec())
                .map_err(|e| e.to_string())?;
            builder = builder.nonce_secret(key);
        }
        builder.build().map_err(|e| format!("DPoP: {e}"))
    }

    /// The one-time codes of `/mfa/*`: in Redis when it is configured, else in memory; their
    /// hashes keyed by a key derived from the JWT secret.
    fn codes(&self, jwt_secret: &str) -> Result<OneTimeCodes, String> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(jwt_secret.as_bytes()).map_err(|e| e.to_string())?;
        mac.update(b"callguard example one-time codes");
        let key =
            Secret::from_bytes(mac.finalize().into_bytes().to_vec()).map_err(|e| e.to_string())?;
        let builder = match self {
            Self::InMemory(keys) => {
                OneTimeCodes::builder(MemoryReplayStore::new(*keys).with_limit_keys(*keys), key)
            }
            #[cfg(feature = "redis")]
            Self::Redis(store) => OneTimeCodes::builder(store.clone(), key),
        };
        builder.build().map_err(|e| format!("one-time codes: {e}"))
    }

    /// The rate limit of the tool routes, when `CALLGUARD_RATE_LIMIT` sets one.
    fn rate_limit(&self, settings: &Settings) -> Result<Option<RateLimit>, String> {
        let Some((requests, seconds)) = settings.rate_limit else {
            return Ok(None);
        };
        let builder = match self {
            Self::InMemory(keys) => {
                RateLimit::builder(MemoryReplayStore::new(1).with_limit_keys(*keys))
            }
            #[cfg(feature = "redis")]
            Self::Redis(store) => RateLimit::builder(store.clone()),
        };
        builder
            .quota(requests, Duration::from_secs(seconds))
            .build()
            .map(Some)
            .map_err(|e| format!("CALLGUARD_RATE_LIMIT: {e}"))
    }

    fn apply(
        &self,
        builder: callguard::signature::SignatureVerifierBuilder,
    ) -> callguard::signature::SignatureVerifierBuilder {
        match self {
            Self::InMemory(keys) => builder.replay_protection(MemoryReplayStore::new(*keys)),
            #[cfg(feature = "redis")]
            Self::Redis(store) => builder.replay_protection(store.clone()),
        }
    }
}

fn provider(
    route: &str,
    secret: &str,
    public_url: &str,
    replay: &SharedReplay,
) -> Result<Authenticator, String> {
    let variable = PROVIDERS
        .iter()
        .find(|(r, _)| *r == route)
        .map_or(route, |(_, v)| *v);
    let failed = |e: callguard::ConfigError| format!("{variable}: {e}");
    let key = || lenient_secret(variable, secret);
    let builder = match route {
        "signalwire" => {
            return providers::signalwire()
                .secret("signalwire", key()?)
                .public_base_url(public_url)
                .build()
                .map_err(failed);
        }
        "standard" => {
            let key = Secret::from_standard_webhooks(secret).map_err(failed)?;
            return replay
                .apply(providers::standard_webhooks())
                .secret("standard", key)
                .build()
                .map(Into::into)
                .map_err(failed);
        }
        "sendbird" => providers::sendbird().on_behalf_of(user_id_in_body()),
        "github" => providers::github(),
        "stripe" => replay.apply(providers::stripe()),
        "slack" => providers::slack(),
        "shopify" => providers::shopify(),
        other => return Err(format!("no provider named {other}")),
    };
    builder
        .secret(route, key()?)
        .build()
        .map(Into::into)
        .map_err(failed)
}

struct Methods {
    signature: SignatureVerifier,
    bearer: BearerTokens,
    jwt: JwtConfig,
    basic: BasicUsers,
}

/// The generic `x-signature` verifier of the tool routes, reading the platform-asserted
/// `user_id` of a JSON body.
fn tool_signature(settings: &Settings) -> Result<SignatureVerifierBuilder, String> {
    let mut signature = SignatureVerifier::builder()
        .identity("tools")
        .scopes(Scopes::from_iter(["tools:call"]))
        .on_behalf_of(user_id_in_body());
    for (index, text) in settings.signing_secrets.iter().enumerate() {
        signature = signature.secret(
            format!("secret-{}", index + 1),
            lenient_secret("TOOL_SIGNING_SECRETS", text)?,
        );
    }
    Ok(signature)
}

/// Where Sendbird and the tool callers name their user: the JSON body's `user_id`.
fn user_id_in_body() -> PlatformUser {
    PlatformUser::json_pointer("/user_id").expect("a pointer that starts with a slash")
}

fn methods(settings: &Settings) -> Result<Methods, String> {
    let signature = tool_signature(settings)?;
    let mut bearer = BearerTokens::builder();
    for (name, token) in &settings.bearer_tokens {
        bearer = bearer.token(
            name,
            lenient_secret("TOOL_BEARER_TOKENS", token)?,
            Scopes::from_iter(["tools:call"]),
        );
    }
    let jwt_key = JwtKey::hmac(
        JwtAlgorithm::HS256,
        &lenient_secret("TOOL_JWT_SECRET", &settings.jwt_secret)?,
    )
    .map_err(|e| format!("TOOL_JWT_SECRET: {e}"))?;
    let mut jwt_builder = JwtConfig::builder().key(JWT_KID, jwt_key);
    if let Some(pem) = &settings.jwt_private_key {
        let key = JwtKey::private_pem(JwtAlgorithm::ES256, pem)
            .map_err(|e| format!("TOOL_JWT_PRIVATE_KEY_FILE: {e}"))?;
        jwt_builder = jwt_builder
            .key(JWT_ES256_KID, key)
            .signing_key(JWT_ES256_KID);
    }
    let mut basic = BasicUsers::builder();
    for (user, password) in &settings.basic_users {
        basic = basic.user(
            user,
            lenient_secret("TOOL_BASIC_USERS", password)?,
            Scopes::empty(),
        );
    }
    Ok(Methods {
        signature: signature
            .build()
            .map_err(|e| format!("TOOL_SIGNING_SECRETS: {e}"))?,
        bearer: bearer
            .build()
            .map_err(|e| format!("TOOL_BEARER_TOKENS: {e}"))?,
        jwt: jwt_builder
            .issuer(JWT_ISSUER)
            .audience(JWT_AUDIENCE)
            .typ("JWT")
            .max_ttl(Duration::from_secs(MAX_TTL))
            .build()
            .map_err(|e| format!("TOOL_JWT_SECRET: {e}"))?,
        basic: basic
            .build()
            .map_err(|e| format!("TOOL_BASIC_USERS: {e}"))?,
    })
}

/// The JSON every accepted tool call is answered with.
fn describe(caller: &Caller, route: &str, body: &[u8]) -> Value {
    json!({
        "route": route,
        "method": caller.method().as_str(),
        "id": caller.id(),
        "key_id": caller.key_id(),
        "scopes": caller.scopes().iter().collect::<Vec<_>>(),
        "issuer": caller.issuer(),
        "client_id": caller.client_id(),
        "on_behalf_of": caller.on_behalf_of(),
        "jkt": match caller.confirmation() {
            Some(callguard::Confirmation::DpopKey(jkt)) => Some(&**jkt),
            _ => None,
        },
        "x5t": match caller.confirmation() {
            Some(callguard::Confirmation::Certificate(x5t)) => Some(&**x5t),
            _ => None,
        },
        "actor": caller.actor().map(|actor| json!({
            "method": actor.method().as_str(),
            "id": actor.id(),
            "key_id": actor.key_id(),
        })),
        "body_len": body.len(),
        "body_sha256": hex::encode(Sha256::digest(body)),
    })
}

async fn call_tool(caller: Caller, OriginalUri(uri): OriginalUri, body: Bytes) -> Json<Value> {
    Json(describe(&caller, uri.path(), &body))
}

/// The unauthenticated baseline for load tests: the same work without a guard.
async fn open_tool(OriginalUri(uri): OriginalUri, body: Bytes) -> Json<Value> {
    let anonymous = Caller::new(callguard::AuthMethod::Bearer, "anonymous");
    Json(describe(&anonymous, uri.path(), &body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    scopes: Option<Vec<String>>,
    ttl: Option<u64>,
    /// The user the token is for (default: the Basic user).
    sub: Option<String>,
    /// The agent that alone may present it.
    actor: Option<String>,
}

/// What the token routes share: the issuer, and the verifier whose denylist revokes.
#[derive(Clone)]
struct TokenState {
    issuer: TokenIssuer,
    /// Checks the DPoP proof a token request may carry, to bind the token to its key.
    #[cfg(feature = "dpop")]
    dpop: callguard::dpop::Dpop,
    users: JwtVerifier,
    codes: OneTimeCodes,
}

/// The example's code sender: a line in `CALLGUARD_OTP_OUTBOX`, or stdout.
struct Outbox;

impl CodeSender for Outbox {
    async fn send(&self, phone: &str, _: &str, code: &str) -> Result<(), StoreError> {
        let line = format!("{phone} {code}\n");
        match std::env::var_os("CALLGUARD_OTP_OUTBOX") {
            None => {
                print!("{line}");
                Ok(())
            }
            Some(path) => {
                use std::io::Write as _;
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .and_then(|mut file| file.write_all(line.as_bytes()))
                    .map_err(|e| StoreError::new(callguard::Cause::new(e)))
            }
        }
    }
}

#[derive(Deserialize)]
struct MfaBody {
    phone: String,
    code: Option<String>,
}

fn mfa_body(body: &Bytes) -> Result<MfaBody, (StatusCode, Json<Value>)> {
    serde_json::from_slice::<MfaBody>(body)
        .ok()
        .filter(|b| !b.phone.is_empty() && b.phone.len() <= 32)
        .ok_or_else(|| {
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "body must be JSON {\"phone\": \"+15551234567\"}"})),
            )
        })
}

/// `POST /mfa/send`: a code for the phone, through the outbox.
async fn mfa_send(State(state): State<TokenState>, body: Bytes) -> (StatusCode, Json<Value>) {
    let request = match mfa_body(&body) {
        Ok(request) => request,
        Err(answer) => return answer,
    };
    match state.codes.issue(&request.phone, "mfa", &Outbox).await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(json!({"status": "sent", "expires_in": state.codes.ttl()})),
        ),
        Err(CodeError::TooSoon { retry_after }) => (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"error": "code sent recently", "retry_after": retry_after})),
        ),
        Err(CodeError::Exhausted) => (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"error": "too many attempts"})),
        ),
        Err(error) => {
            tracing::error!(%error, "a one-time code could not be sent");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "code could not be sent"})),
            )
        }
    }
}

/// `POST /mfa/verify`: the phone's code checked; a JWT for the phone with `mfa:verified`.
async fn mfa_verify(State(state): State<TokenState>, body: Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    let request = match mfa_body(&body) {
        Ok(request) => request,
        Err(answer) => return answer.into_response(),
    };
    let code = request.code.unwrap_or_default();
    let error =
        |status: StatusCode, text: &str| (status, Json(json!({"error": text}))).into_response();
    match state.codes.verify(&request.phone, "mfa", &code).await {
        Ok(CodeCheck::Verified) => {
            let minted = state.issuer.issue(TokenRequest::new(
                request.phone.clone(),
                Scopes::from_iter(["mfa:verified"]),
                Duration::from_secs(DEFAULT_TTL),
            ));
            match minted {
                Ok(token) => Json(json!({"verified": true, "access_token": token.access_token}))
                    .into_response(),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            }
        }
        Ok(CodeCheck::Wrong { .. }) => error(StatusCode::UNAUTHORIZED, "invalid code"),
        Ok(CodeCheck::TooManyAttempts { retry_after }) => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "too many attempts");
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, retry_after.into());
            response
        }
        Ok(CodeCheck::Expired) => error(StatusCode::BAD_REQUEST, "code expired"),
        Ok(_) => error(StatusCode::BAD_REQUEST, "no code sent"),
        Err(e) => {
            tracing::error!(error = %e, "a one-time code could not be checked");
            error(StatusCode::SERVICE_UNAVAILABLE, "code could not be checked")
        }
    }
}

fn bad_request(description: &str) -> (StatusCode, Json<Value>) {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "invalid_request", "error_description": description})),
    )
}

/// `POST /auth/token`: mint a JWT for the Basic user.
async fn mint_token(
    State(state): State<TokenState>,
    caller: Caller,
    parts: axum::http::request::Parts,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    // RFC 9449 §5: a request with a DPoP proof gets a token bound to the proof's key.
    #[cfg(feature = "dpop")]
    let dpop_key = if parts.headers.contains_key("dpop") {
        match state.dpop.verify_token_request(&parts).await {
            Ok(jkt) => Some(jkt),
            Err(refused) => return dpop_refusal(&refused),
        }
    } else {
        None
    };
    #[cfg(not(feature = "dpop"))]
    let dpop_key = {
        let _ = parts;
        None
    };
    mint(&state, &caller, &body, dpop_key).into_response()
}

/// A token request whose DPoP proof failed: 400 with the OAuth error RFC 9449 §5 names, and
/// a fresh `DPoP-Nonce` when the server requires one.
#[cfg(feature = "dpop")]
fn dpop_refusal(refused: &callguard::AuthError) -> axum::response::Response {
    use axum::response::IntoResponse;
    let code = match refused.kind() {
        callguard::AuthErrorKind::DpopNonceRequired => "use_dpop_nonce",
        callguard::AuthErrorKind::StoreUnavailable => "temporarily_unavailable",
        _ => "invalid_dpop_proof",
    };
    let status = match refused.kind() {
        callguard::AuthErrorKind::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = (status, Json(json!({"error": code}))).into_response();
    if let Some(nonce) = refused
        .dpop_nonce()
        .and_then(|nonce| axum::http::HeaderValue::try_from(nonce).ok())
    {
        response.headers_mut().insert("dpop-nonce", nonce);
    }
    response
}

/// Mint the token a `/auth/token` body asks for, bound to `dpop_key` when given.
fn mint(
    state: &TokenState,
    caller: &Caller,
    body: &[u8],
    dpop_key: Option<String>,
) -> (StatusCode, Json<Value>) {
    let request: TokenBody = if body.is_empty() {
        TokenBody {
            scopes: None,
            ttl: None,
            sub: None,
            actor: None,
        }
    } else {
        match serde_json::from_slice(body) {
            Ok(request) => request,
            Err(e) => {
                return bad_request(&format!(
                    "body must be JSON {{\"scopes\": [...], \"ttl\": seconds}}: {e}"
                ));
            }
        }
    };
    let scopes = request
        .scopes
        .unwrap_or_else(|| vec!["tools:call".to_owned()]);
    if let Some(unknown) = scopes
        .iter()
        .find(|s| !MINTABLE_SCOPES.contains(&s.as_str()))
    {
        return bad_request(&format!(
            "unknown scope `{unknown}`; allowed: {}",
            MINTABLE_SCOPES.join(", ")
        ));
    }
    let ttl = request.ttl.unwrap_or(DEFAULT_TTL);
    if !(1..=MAX_TTL).contains(&ttl) {
        return bad_request(&format!(
            "ttl must be between 1 and {MAX_TTL} seconds, got {ttl}"
        ));
    }
    let printable =
        |text: &str| !text.is_empty() && text.bytes().all(|b| (0x21..0x7f).contains(&b));
    for (field, value) in [("sub", &request.sub), ("actor", &request.actor)] {
        if value.as_deref().is_some_and(|v| !printable(v)) {
            return bad_request(&format!("`{field}` must be non-empty printable ASCII"));
        }
    }
    let mut token_request = TokenRequest::new(
        request.sub.as_deref().unwrap_or(caller.id()),
        Scopes::from_iter(&scopes),
        Duration::from_secs(ttl),
    );
    if let Some(actor) = request.actor {
        token_request = token_request.actor(actor);
    }
    let token_type = if dpop_key.is_some() { "DPoP" } else { "Bearer" };
    if let Some(jkt) = dpop_key {
        token_request = token_request.dpop_key(jkt);
    }
    match state.issuer.issue(token_request) {
        Ok(token) => (
            StatusCode::CREATED,
            Json(json!({
                "access_token": token.access_token,
                "token_type": token_type,
                "expires_in": token.expires_in.as_secs(),
                "scope": token.scope,
                "jti": token.jti,
            })),
        ),
        Err(e) => bad_request(&e.to_string()),
    }
}

/// `DELETE /auth/token/{jti}`: revoke a minted token on every route, cached or not.
async fn revoke_token(State(state): State<TokenState>, Path(jti): Path<String>) -> StatusCode {
    match state.users.revoke(&jti, Duration::from_secs(MAX_TTL)).await {
        Ok(_) => StatusCode::NO_CONTENT,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The access tokens of `CALLGUARD_OAUTH_ISSUERS`, each issuer discovered now.
#[cfg(feature = "reqwest")]
async fn external_issuers(
    settings: &Settings,
    replay: &SharedReplay,
) -> Result<Option<Authenticator>, String> {
    use callguard::keys::{HttpClient, RemoteKeySettings, ReqwestClient};
    use callguard::oauth::{AccessTokens, Introspection, Issuer};
    if settings.oauth_issuers.is_empty() && settings.introspection.is_none() {
        return Ok(None);
    }
    let client: std::sync::Arc<dyn HttpClient> = std::sync::Arc::new(
        ReqwestClient::new().map_err(|e| format!("CALLGUARD_OAUTH_ISSUERS: {e}"))?,
    );
    let mut issuers = Vec::new();
    for url in &settings.oauth_issuers {
        let keys = RemoteKeySettings::default().allow_loopback_http();
        let mut builder = Issuer::discover(url, std::sync::Arc::clone(&client), keys)
            .await
            .map_err(|e| format!("CALLGUARD_OAUTH_ISSUERS: {url}: {e}"))?
            .audience(settings.resource.as_str());
        if settings.allow_jwt_typ {
            builder = builder.allow_jwt_typ();
        }
        issuers.push(
            builder
                .build()
                .map_err(|e| format!("CALLGUARD_OAUTH_ISSUERS: {url}: {e}"))?,
        );
    }
    let introspection = match &settings.introspection {
        None => None,
        Some((url, client_id, secret)) => {
            let failed = |e: callguard::ConfigError| format!("CALLGUARD_INTROSPECTION_URL: {e}");
            let mut builder = Introspection::builder(
                url.as_str(),
                client_id.as_str(),
                callguard::Secret::from_utf8(secret)
                    .map_err(|e| format!("CALLGUARD_INTROSPECTION_CLIENT_SECRET: {e}"))?,
                std::sync::Arc::clone(&client),
            )
            .audience(settings.resource.as_str())
            .allow_loopback_http();
            if let [only] = settings.oauth_issuers.as_slice() {
                builder = builder.issuer(only.as_str());
            }
            Some(builder.build().map_err(failed)?)
        }
    };
    let tokens = match (issuers.is_empty(), introspection) {
        (true, Some(introspection)) => AccessTokens::introspected(introspection),
        (_, introspection) => {
            let tokens =
                AccessTokens::new(issuers).map_err(|e| format!("CALLGUARD_OAUTH_ISSUERS: {e}"))?;
            match introspection {
                Some(introspection) => tokens.with_introspection(introspection),
                None => tokens,
            }
        }
    };
    #[cfg(feature = "dpop")]
    let tokens = tokens.dpop(replay.dpop(settings)?);
    #[cfg(feature = "mtls")]
    let tokens = match settings.client_cert_header {
        Some(_) => tokens.certificate_binding(callguard::mtls::CertificateBinding::WhenBound),
        None => tokens,
    };
    #[cfg(not(feature = "dpop"))]
    let _ = replay;
    Ok(Some(tokens.into()))
}

#[cfg(not(feature = "reqwest"))]
async fn external_issuers(
    settings: &Settings,
    _replay: &SharedReplay,
) -> Result<Option<Authenticator>, String> {
    if settings.oauth_issuers.is_empty() && settings.introspection.is_none() {
        return Ok(None);
    }
    Err(
        "CALLGUARD_OAUTH_ISSUERS or CALLGUARD_INTROSPECTION_URL is set: run with `--features reqwest` to use it"
            .to_owned(),
    )
}

fn app(
    settings: &Settings,
    methods: Methods,
    replay: &SharedReplay,
    external: Option<Authenticator>,
) -> Result<Router, String> {
    // One verifier for the server's own JWTs everywhere, so a revocation reaches every
    // route and its cache. Tokens from elsewhere may lack a jti (PyJWT's do).
    let jwks = JwksService::new(&methods.jwt).ok();
    let users = JwtVerifier::new(methods.jwt.clone()).revocations(
        Revocations::new(MemoryReplayStore::new(memory_store_keys()?))
            .policy(ReplayPolicy::FailClosed)
            .allow_tokens_without_jti(),
    );
    // The server's own tokens may be DPoP-bound too: minted bound when `/auth/token` is
    // shown a proof, accepted then only with proofs of that key.
    #[cfg(feature = "dpop")]
    let dpop = replay.dpop(settings)?;
    #[cfg(feature = "dpop")]
    let users = users.dpop(dpop.clone());
    let mut accepted: Vec<Authenticator> = vec![
        methods.signature.into(),
        methods.bearer.into(),
        users.clone().into(),
    ];
    accepted.extend(external);
    let limit = replay.failure_limit(settings)?;
    let limited = |guard: GuardLayer| match &limit {
        Some(limit) => guard.failure_limit(limit.clone()),
        None => guard,
    };
    let mut tool_guard = limited(
        GuardLayer::new(Authenticator::any_of(accepted).map_err(|e| e.to_string())?)
            .body_limit(settings.body_limit)
            .named("tools")
            .map_err(|e| e.to_string())?,
    );
    if let Some(rate) = replay.rate_limit(settings)? {
        tool_guard = tool_guard.rate_limit(rate);
    }
    let orders_scope = RequireScopesLayer::new(["orders:write"]).map_err(|e| e.to_string())?;
    let tools = Router::new()
        .route("/tools/{name}", post(call_tool))
        .route_layer(tool_guard.clone());
    let orders = Router::new()
        .route("/tools/orders", post(call_tool))
        .route_layer(orders_scope)
        .route_layer(tool_guard);
    let refund = Router::new()
        .route("/tools/refund", post(call_tool))
        .route_layer(RequireScopesLayer::new(["refunds:write"]).map_err(|e| e.to_string())?)
        .route_layer(limited(refund_guard(settings, users.clone())?));
    let token = Router::new()
        .route("/auth/token", post(mint_token))
        .route("/auth/token/{jti}", axum::routing::delete(revoke_token))
        .route("/mfa/send", post(mfa_send))
        .route("/mfa/verify", post(mfa_verify))
        .route_layer(limited(
            GuardLayer::new(methods.basic)
                .body_limit(64 * 1024)
                .named("token-endpoint")
                .map_err(|e| e.to_string())?,
        ))
        .with_state(TokenState {
            issuer: TokenIssuer::new(methods.jwt),
            #[cfg(feature = "dpop")]
            dpop,
            users,
            codes: replay.codes(&settings.jwt_secret)?,
        });
    let mut app = tools
        .merge(orders)
        .merge(refund)
        .merge(token)
        .route("/healthz", get(|| async { "ok" }));
    // Only a private key has a public half to publish; an HMAC secret never is.
    if let Some(jwks) = jwks {
        app = app.route_service("/.well-known/jwks.json", jwks);
    }
    if std::env::var("CALLGUARD_OPEN_ROUTE").as_deref() == Ok("1") {
        app = app.route("/open/{name}", post(open_tool));
    }
    // axum's extractors have their own body limit (2 MB): it must not be lower than the
    // guard's, or a verified body is then refused by the `Bytes` extractor.
    app = app.layer(DefaultBodyLimit::max(settings.body_limit));
    for (route, secret) in &settings.providers {
        // Presets name themselves (`github`, `stripe`, …) in the rejection log, and accept
        // the largest body their platform delivers (GitHub: 25 MB), whatever
        // CALLGUARD_BODY_LIMIT says for the tool routes.
        let guard = limited(GuardLayer::new(provider(
            route,
            secret,
            &settings.public_url,
            replay,
        )?));
        let body_limit = DefaultBodyLimit::max(guard.max_body());
        let mut webhook = Router::new()
            .route(&format!("/webhooks/{route}"), post(call_tool))
            .route_layer(guard);
        // Outside the guard: an address outside the list is refused before any check.
        if let Some(allowed) = &settings.webhook_allowed_ips {
            webhook = webhook.route_layer(allowed.layer());
        }
        app = app.merge(webhook.layer(body_limit));
    }
    // Outermost: every route sees the client as the trusted proxies name it.
    let app = app.layer(ClientAddrLayer::new(settings.trusted_proxies.clone()));
    // Outside that: the client certificate a trusted TLS-terminating proxy passes on, read
    // while the peer is still the proxy.
    #[cfg(feature = "mtls")]
    let app = match &settings.client_cert_header {
        Some(header) => app.layer(callguard::mtls::ClientCertificateLayer::from_proxies(
            settings.trusted_proxies.clone(),
            callguard::mtls::ProxyHeader::EscapedPem(header.clone()),
        )),
        None => app,
    };
    Ok(app)
}

/// How many keys each in-memory store of the example holds (`CALLGUARD_MEMORY_STORE_KEYS`).
fn memory_store_keys() -> Result<usize, String> {
    match std::env::var("CALLGUARD_MEMORY_STORE_KEYS") {
        Err(_) => Ok(MemoryReplayStore::DEFAULT_CAPACITY),
        Ok(text) => match text.parse::<usize>() {
            Ok(keys) if keys > 0 => Ok(keys),
            _ => Err(format!(
                "CALLGUARD_MEMORY_STORE_KEYS: `{text}` is not a positive number"
            )),
        },
    }
}

/// `POST /tools/refund`: the agent's signature (Sendbird's, when `SENDBIRD_API_TOKEN` is
/// set, or the generic `x-signature`) and the user's JWT, the signed body's `user_id` bound
/// to the token's `sub`. Deliveries are remembered, so a signed refund runs once.
fn refund_guard(settings: &Settings, users: JwtVerifier) -> Result<GuardLayer, String> {
    let keys = memory_store_keys()?;
    let remembered = || MemoryReplayStore::new(keys);
    let mut agents: Vec<Authenticator> = vec![
        tool_signature(settings)?
            // Each TOOL_SIGNING_SECRETS entry is its own agent (`secret-1`, …), so a token
            // minted with that `actor` is presented only with that secret's signature.
            .identify_callers_by_secret()
            .replay_protection(remembered())
            .build()
            .map_err(|e| format!("TOOL_SIGNING_SECRETS: {e}"))?
            .into(),
    ];
    if let Some((_, token)) = settings
        .providers
        .iter()
        .find(|(route, _)| *route == "sendbird")
    {
        agents.push(
            providers::sendbird()
                .secret("sendbird", lenient_secret("SENDBIRD_API_TOKEN", token)?)
                .replay_protection(remembered())
                .build()
                .map_err(|e| format!("SENDBIRD_API_TOKEN: {e}"))?
                .into(),
        );
    }
    let agent = Authenticator::any_of(agents).map_err(|e| e.to_string())?;
    let delegation = Delegation::builder(agent, users)
        .bind(user_id_in_body())
        .build()
        .map_err(|e| e.to_string())?;
    GuardLayer::new(delegation)
        .body_limit(settings.body_limit)
        .named("refunds")
        .map_err(|e| e.to_string())
}

fn example_commands(settings: &Settings) -> Vec<String> {
    let addr = settings.addr;
    let body = r#"{"text":"hello"}"#;
    let mut mac = Hmac::<Sha256>::new_from_slice(settings.signing_secrets[0].as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    let (_, token) = &settings.bearer_tokens[0];
    let (user, password) = &settings.basic_users[0];
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    vec![
        format!(
            "curl -sS -X POST http://{addr}/tools/echo -H 'content-type: application/json' -H 'x-signature: {signature}' --data-binary '{body}'"
        ),
        format!(
            "curl -sS -X POST http://{addr}/tools/echo -H 'authorization: Bearer {token}' --data-binary '{body}'"
        ),
        format!(
            "curl -sS -X POST http://{addr}/auth/token -H 'authorization: Basic {basic}' -H 'content-type: application/json' --data-binary '{{\"scopes\":[\"tools:call\",\"orders:write\"],\"ttl\":300}}'"
        ),
        format!(
            "curl -sS -X POST http://{addr}/tools/orders -H \"authorization: Bearer $ACCESS_TOKEN\" --data-binary '{body}'   # with the access_token from above"
        ),
    ]
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2);
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let settings = Settings::from_env().unwrap_or_else(|e| fail(&e));
    let methods = methods(&settings).unwrap_or_else(|e| fail(&e));
    let replay = SharedReplay::from_env().await.unwrap_or_else(|e| fail(&e));
    if settings.dpop_nonce && !cfg!(feature = "dpop") {
        fail("CALLGUARD_DPOP_NONCE is set: run with `--features reqwest,dpop` to use it");
    }
    let external = external_issuers(&settings, &replay)
        .await
        .unwrap_or_else(|e| fail(&e));
    let app = app(&settings, methods, &replay, external).unwrap_or_else(|e| fail(&e));
    let listener = tokio::net::TcpListener::bind(settings.addr)
        .await
        .unwrap_or_else(|e| fail(&format!("cannot listen on {}: {e}", settings.addr)));
    for (variable, value) in &settings.generated {
        println!("{variable} is unset; using a random demo value: {value}");
    }
    println!(
        "callguard tool server listening on http://{}",
        settings.addr
    );
    println!("try:");
    for command in example_commands(&settings) {
        println!("  {command}");
    }
    serve(listener, app, settings.header_timeout).await;
}

/// Serve `app` until Ctrl-C, closing any connection that has not sent a complete request
/// head within `header_timeout` (so idle or trickling clients cannot hold connections
/// open indefinitely: `axum::serve` sets no such limit). Each request carries the peer's
/// address as `ConnectInfo` and as callguard's `ClientAddr`.
async fn serve(listener: tokio::net::TcpListener, app: Router, header_timeout: Duration) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    use tower::Service as _;
    let mut make_service = app.into_make_service_with_connect_info::<SocketAddr>();
    let shutdown = tokio::signal::ctrl_c();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };
        let Ok(service) = make_service.call(peer).await;
        // The connection's peer is the client here (no proxy in front): callguard shares
        // per-client resources (introspection calls) by it.
        let service = tower::ServiceBuilder::new()
            .map_request(move |mut request: axum::http::Request<_>| {
                request.extensions_mut().insert(ClientAddr(peer.ip()));
                request
            })
            .service(service);
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .with_upgrades();
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
}
