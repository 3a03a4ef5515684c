//! Run with: cargo run --example tool_server
//!
//! A tool and webhook backend behind callguard. Configured from the environment:
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `CALLGUARD_ADDR` | address to listen on | `127.0.0.1:3000` |
//! | `CALLGUARD_BODY_LIMIT` | largest accepted body, in bytes | `1048576` |
//! | `TOOL_SIGNING_SECRETS` | comma-separated secrets for `x-signature` (hex HMAC-SHA256 of the raw body); every one is accepted | a random secret, printed |
//!
//! Routes:
//! - `GET /healthz`: 200, no credentials.
//! - `POST /tools/{name}`: requires `x-signature`; answers 200 with JSON describing the caller
//!   and the body the handler received (`route`, `method`, `id`, `key_id`, `scopes`,
//!   `body_len`, `body_sha256`).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::OriginalUri;
use axum::routing::{get, post};
use axum::{Json, Router};
use callguard::signature::SignatureVerifier;
use callguard::{Caller, GuardLayer, Scopes, Secret, dangerous};
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// What the server needs from its environment, read and checked before it listens.
struct Settings {
    addr: SocketAddr,
    body_limit: usize,
    signing_secrets: Vec<String>,
    generated_secret: bool,
}

impl Settings {
    fn from_env() -> Result<Self, String> {
        let addr = env_or("CALLGUARD_ADDR", "127.0.0.1:3000")
            .parse()
            .map_err(|e| format!("CALLGUARD_ADDR: {e}"))?;
        let body_limit = env_or("CALLGUARD_BODY_LIMIT", "1048576")
            .parse()
            .map_err(|e| format!("CALLGUARD_BODY_LIMIT: {e}"))?;
        let (signing_secrets, generated_secret) = match std::env::var("TOOL_SIGNING_SECRETS") {
            Ok(list) => (list.split(',').map(str::to_owned).collect(), false),
            Err(_) => (vec![random_secret()], true),
        };
        Ok(Self {
            addr,
            body_limit,
            signing_secrets,
            generated_secret,
        })
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn random_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    hex::encode(bytes)
}

/// The `x-signature` verifier: every configured secret, key ids `secret-1`, `secret-2`, ….
fn tool_signature(settings: &Settings) -> Result<SignatureVerifier, String> {
    let mut builder = SignatureVerifier::builder()
        .identity("tools")
        .scopes(Scopes::from_iter(["tools:call"]));
    for (index, text) in settings.signing_secrets.iter().enumerate() {
        let id = format!("secret-{}", index + 1);
        // Drivers of this example may use short test secrets; allow them, but say so.
        let secret = match Secret::from_utf8(text) {
            Ok(secret) => secret,
            Err(_) => {
                eprintln!(
                    "warning: TOOL_SIGNING_SECRETS entry {id} is shorter than {} bytes",
                    Secret::MIN_LEN
                );
                dangerous::secret_allowing_short(text.as_bytes())
                    .map_err(|e| format!("TOOL_SIGNING_SECRETS entry {id}: {e}"))?
            }
        };
        builder = builder.secret(id, secret);
    }
    builder
        .build()
        .map_err(|e| format!("TOOL_SIGNING_SECRETS: {e}"))
}

/// The JSON every accepted request is answered with.
fn describe(caller: &Caller, route: &str, body: &[u8]) -> Value {
    json!({
        "route": route,
        "method": caller.method().as_str(),
        "id": caller.id(),
        "key_id": caller.key_id(),
        "scopes": caller.scopes().iter().collect::<Vec<_>>(),
        "body_len": body.len(),
        "body_sha256": hex::encode(Sha256::digest(body)),
    })
}

async fn call_tool(caller: Caller, OriginalUri(uri): OriginalUri, body: Bytes) -> Json<Value> {
    Json(describe(&caller, uri.path(), &body))
}

fn app(settings: &Settings) -> Result<Router, String> {
    let tools = Router::new()
        .route("/tools/{name}", post(call_tool))
        .route_layer(GuardLayer::new(tool_signature(settings)?).body_limit(settings.body_limit));
    Ok(tools.route("/healthz", get(|| async { "ok" })))
}

fn example_curl(settings: &Settings) -> String {
    let body = r#"{"text":"hello"}"#;
    let mut mac = Hmac::<Sha256>::new_from_slice(settings.signing_secrets[0].as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    format!(
        "curl -sS -X POST http://{}/tools/echo -H 'content-type: application/json' -H 'x-signature: {signature}' --data-binary '{body}'",
        settings.addr
    )
}

#[tokio::main]
async fn main() {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("error: {message}");
            std::process::exit(2);
        }
    };
    let app = match app(&settings) {
        Ok(app) => app,
        Err(message) => {
            eprintln!("error: {message}");
            std::process::exit(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(settings.addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", settings.addr);
            std::process::exit(1);
        }
    };
    if settings.generated_secret {
        println!(
            "TOOL_SIGNING_SECRETS is unset; using a random demo secret: {}",
            settings.signing_secrets[0]
        );
    }
    println!(
        "callguard tool server listening on http://{}",
        settings.addr
    );
    println!("try:\n  {}", example_curl(&settings));
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        eprintln!("error: server failed: {e}");
        std::process::exit(1);
    }
}
