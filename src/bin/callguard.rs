//! The `callguard` command: sign requests as a platform would, verify them locally, and
//! mint JWTs the example server accepts.
//!
//! ```text
//! callguard sign --preset github --secret-env GITHUB_WEBHOOK_SECRET < body.json
//! callguard verify --preset github --secret-env GITHUB_WEBHOOK_SECRET -H 'X-Hub-Signature-256: sha256=…' < body.json
//! callguard token --secret-env TOOL_JWT_SECRET --sub agent --scope tools:call --ttl 300
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Read;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, TokenIssuer, TokenRequest};
use callguard::signature::{SignatureVerifier, SignatureVerifierBuilder, SigningRequest};
use callguard::{
    AuthError, Authenticator, Caller, GuardLayer, Scopes, Secret, dangerous, providers,
};
use clap::{Parser, Subcommand, ValueEnum};
use http::{Request, Response};
use http_body_util::Full;
use tower_layer::Layer;
use tower_service::Service;

#[derive(Parser)]
#[command(
    name = "callguard",
    version,
    about = "Sign, verify and mint the credentials callguard checks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the headers a platform would send with the body read from standard input.
    Sign {
        /// The platform's scheme.
        #[arg(long, value_enum)]
        preset: Preset,
        /// The environment variable holding the secret.
        #[arg(long)]
        secret_env: String,
        /// The full URL the platform calls (URL-covering schemes).
        #[arg(long)]
        url: Option<String>,
        /// The timestamp to sign, in Unix seconds (default: now).
        #[arg(long)]
        timestamp: Option<i64>,
        /// The delivery id to sign, for schemes that sign one (default: generated).
        #[arg(long)]
        id: Option<String>,
    },
    /// Check the body on standard input and the given headers; say valid, or why not.
    Verify {
        /// The platform's scheme.
        #[arg(long, value_enum)]
        preset: Preset,
        /// The environment variable holding the secret.
        #[arg(long)]
        secret_env: String,
        /// A request header, `Name: value`; repeat for each.
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
        /// The full URL the platform called (URL-covering schemes).
        #[arg(long)]
        url: Option<String>,
    },
    /// Print an HS256 JWT signed with the secret, as the example server mints them.
    Token {
        /// The environment variable holding the HS256 key.
        #[arg(long)]
        secret_env: String,
        /// The token's subject.
        #[arg(long)]
        sub: String,
        /// A granted scope; repeat for each.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Lifetime in seconds (1..=3600).
        #[arg(long, default_value_t = 300)]
        ttl: u64,
        /// The `iss` claim.
        #[arg(long, default_value = "callguard-example")]
        iss: String,
        /// The `aud` claim.
        #[arg(long, default_value = "tools")]
        aud: String,
        /// The key id in the header.
        #[arg(long, default_value = "example-hs256")]
        kid: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Preset {
    /// `x-signature`: hex HMAC-SHA256 of the raw body.
    XSignature,
    Github,
    Stripe,
    Slack,
    Shopify,
    /// Standard Webhooks (and Svix).
    Standard,
    Sendbird,
    /// SignalWire: signs with both the SHA-256 and SHA-1 headers; verifies as the server does.
    Signalwire,
    Twilio,
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> Result<ExitCode, String> {
    match command {
        Command::Sign {
            preset,
            secret_env,
            url,
            timestamp,
            id,
        } => {
            let secret = read_secret(&secret_env, preset)?;
            let body = read_stdin()?;
            let timestamp = timestamp.unwrap_or_else(now);
            let id = id.unwrap_or_else(|| format!("msg_{timestamp}"));
            let mut request = SigningRequest::new(&body).timestamp(timestamp).id(&id);
            if let Some(url) = url.as_deref() {
                request = request.url(url);
            }
            for verifier in signing_verifiers(preset, &secret, url.as_deref())? {
                for (name, value) in verifier.sign(&request).map_err(|e| e.to_string())? {
                    println!("{name}: {value}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            preset,
            secret_env,
            headers,
            url,
        } => {
            let secret = read_secret(&secret_env, preset)?;
            let body = read_stdin()?;
            verify(preset, secret, &headers, url.as_deref(), body)
        }
        Command::Token {
            secret_env,
            sub,
            scopes,
            ttl,
            iss,
            aud,
            kid,
        } => {
            let secret = read_secret(&secret_env, Preset::XSignature)?;
            let key = JwtKey::hmac(JwtAlgorithm::HS256, &secret).map_err(|e| e.to_string())?;
            let config = JwtConfig::builder()
                .key(kid, key)
                .issuer(iss)
                .audience(aud)
                .build()
                .map_err(|e| e.to_string())?;
            let request =
                TokenRequest::new(sub, Scopes::from_iter(&scopes), Duration::from_secs(ttl));
            let token = TokenIssuer::new(config)
                .issue(request)
                .map_err(|e| e.to_string())?;
            println!("{}", token.access_token);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn read_stdin() -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    std::io::stdin()
        .read_to_end(&mut body)
        .map_err(|e| format!("cannot read the body from standard input: {e}"))?;
    Ok(body)
}

/// The secret as the platform keys it; short test secrets are allowed here.
fn read_secret(variable: &str, preset: Preset) -> Result<Secret, String> {
    let text =
        std::env::var(variable).map_err(|_| format!("environment variable {variable} is unset"))?;
    let secret = match preset {
        Preset::Standard => Secret::from_standard_webhooks(&text),
        _ => dangerous::secret_allowing_short(text.as_bytes()),
    };
    secret.map_err(|e| format!("{variable}: {e}"))
}

/// `https://host[:port]` of a full URL, and its path and query.
fn split_url(url: &str) -> Result<(String, String), String> {
    let uri: http::Uri = url.parse().map_err(|_| format!("`{url}` is not a URL"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(format!("`{url}` is not an absolute URL"));
    };
    let path = uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    Ok((format!("{scheme}://{authority}"), path))
}

fn preset_builder(preset: Preset) -> SignatureVerifierBuilder {
    match preset {
        Preset::XSignature => SignatureVerifier::builder(),
        Preset::Github => providers::github(),
        Preset::Stripe => providers::stripe(),
        Preset::Slack => providers::slack(),
        Preset::Shopify => providers::shopify(),
        Preset::Standard => providers::standard_webhooks(),
        Preset::Sendbird => providers::sendbird(),
        Preset::Signalwire => providers::signalwire_sha256(),
        Preset::Twilio => providers::twilio_compatible(),
    }
}

fn with_url(
    builder: SignatureVerifierBuilder,
    url: Option<&str>,
) -> Result<SignatureVerifierBuilder, String> {
    Ok(match url {
        Some(url) => builder.public_base_url(split_url(url)?.0),
        None => builder,
    })
}

fn signing_verifiers(
    preset: Preset,
    secret: &Secret,
    url: Option<&str>,
) -> Result<Vec<SignatureVerifier>, String> {
    if matches!(preset, Preset::Signalwire | Preset::Twilio) && url.is_none() {
        return Err("this scheme signs the URL: give --url".to_owned());
    }
    let mut builders = vec![preset_builder(preset)];
    if matches!(preset, Preset::Signalwire) {
        builders.push(providers::signalwire_sha1());
    }
    builders
        .into_iter()
        .map(|builder| {
            with_url(builder, url)?
                .secret("cli", secret.clone())
                .build()
                .map_err(|e| e.to_string())
        })
        .collect()
}

fn verify(
    preset: Preset,
    secret: Secret,
    headers: &[String],
    url: Option<&str>,
    body: Vec<u8>,
) -> Result<ExitCode, String> {
    let authenticator: Authenticator = match preset {
        Preset::Signalwire => {
            let (base, _) = split_url(url.ok_or("this scheme signs the URL: give --url")?)?;
            providers::signalwire()
                .secret("cli", secret)
                .public_base_url(base)
                .build()
                .map_err(|e| e.to_string())?
        }
        _ => with_url(preset_builder(preset), url)?
            .secret("cli", secret)
            .build()
            .map_err(|e| e.to_string())?
            .into(),
    };
    let path = url
        .map(split_url)
        .transpose()?
        .map_or_else(|| "/".to_owned(), |(_, path)| path);
    let mut request = Request::post(path);
    for header in headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| format!("header `{header}` is not `Name: value`"))?;
        request = request.header(name.trim(), value.trim());
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("bad header: {e}"))?;
    let mut service = GuardLayer::new(authenticator).layer(ReportCaller);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    let Ok(response) = runtime.block_on(async {
        std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
        service.call(request).await
    });
    if let Some(error) = response.extensions().get::<AuthError>() {
        println!("invalid: {error} ({:?})", error.kind());
        return Ok(ExitCode::from(1));
    }
    let caller = response.extensions().get::<Caller>();
    println!(
        "valid: {} (key {})",
        caller.map_or("?", Caller::id),
        caller.and_then(Caller::key_id).unwrap_or("?")
    );
    Ok(ExitCode::SUCCESS)
}

/// The inner service of `verify`: answers with the caller the guard resolved.
#[derive(Clone)]
struct ReportCaller;

type CheckedRequest = Request<callguard::guard::GuardedBody<Full<Bytes>>>;

impl Service<CheckedRequest> for ReportCaller {
    type Response = Response<Full<Bytes>>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: CheckedRequest) -> Self::Future {
        let mut response = Response::new(Full::new(Bytes::new()));
        if let Some(caller) = request.extensions().get::<Caller>() {
            response.extensions_mut().insert(caller.clone());
        }
        std::future::ready(Ok(response))
    }
}
