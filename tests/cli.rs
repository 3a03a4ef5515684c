//! The `callguard` command, run as a user would: what `sign` prints, `verify` accepts; a
//! changed body is refused; `token` mints what the JWT verifier accepts; errors are one line.
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::io::Write;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_callguard");

fn run(args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that fails before reading its input closes the pipe: that is not an error here.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn what_sign_prints_verify_accepts_for_every_preset() {
    let env = [("SECRET", "whsec_c2lnbmluZy1zZWNyZXQtMDEyMzQ1Njc4OQ")];
    let body = b"CallSid=CA1&Digits=1234";
    let url = "https://hooks.example.com/webhooks/x?a=1";
    for preset in [
        "x-signature",
        "github",
        "stripe",
        "slack",
        "shopify",
        "standard",
        "sendbird",
        "signalwire",
        "twilio",
    ] {
        let signed = run(
            &[
                "sign",
                "--preset",
                preset,
                "--secret-env",
                "SECRET",
                "--url",
                url,
            ],
            &env,
            body,
        );
        assert!(
            signed.status.success(),
            "{preset}: {}",
            text(&signed.stderr)
        );
        let mut args = vec![
            "verify",
            "--preset",
            preset,
            "--secret-env",
            "SECRET",
            "--url",
            url,
        ];
        let headers = text(&signed.stdout);
        for line in headers.lines() {
            args.extend(["-H", line]);
        }
        let verified = run(&args, &env, body);
        assert!(
            verified.status.success(),
            "{preset}: {} {}",
            text(&verified.stdout),
            text(&verified.stderr)
        );
        assert!(text(&verified.stdout).starts_with("valid"), "{preset}");

        let changed = run(&args, &env, b"CallSid=CA1&Digits=9999");
        assert_eq!(changed.status.code(), Some(1), "{preset}");
        assert!(
            text(&changed.stdout).starts_with("invalid: invalid credentials"),
            "{preset}: {}",
            text(&changed.stdout)
        );
    }
}

#[test]
fn token_is_a_jwt_the_verifier_accepts() {
    use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey};
    let key = "a-jwt-signing-key-of-32-bytes!!!";
    let out = run(
        &[
            "token",
            "--secret-env",
            "JWT",
            "--sub",
            "agent-1",
            "--scope",
            "tools:call",
            "--scope",
            "orders:write",
            "--ttl",
            "60",
        ],
        &[("JWT", key)],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_owned();
    let config = JwtConfig::builder()
        .key(
            "example-hs256",
            JwtKey::hmac(
                JwtAlgorithm::HS256,
                &callguard::Secret::from_utf8(key).unwrap(),
            )
            .unwrap(),
        )
        .issuer("callguard-example")
        .audience("tools")
        .build()
        .unwrap();
    let request = http::Request::post("/")
        .header("authorization", format!("Bearer {token}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(tower::ServiceExt::oneshot(
            tower::Layer::layer(
                &callguard::jwt::JwtVerifier::new(config).layer(),
                tower::service_fn(common_echo),
            ),
            request,
        ))
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn common_echo<B>(
    request: http::Request<B>,
) -> Result<http::Response<http_body_util::Full<bytes::Bytes>>, std::convert::Infallible> {
    let caller = request
        .extensions()
        .get::<callguard::Caller>()
        .cloned()
        .unwrap();
    assert_eq!(caller.id(), "agent-1");
    assert!(caller.has_scope("orders:write"));
    Ok(http::Response::new(http_body_util::Full::new(
        bytes::Bytes::new(),
    )))
}

#[test]
fn errors_are_one_line_and_a_non_zero_exit() {
    for (args, fragment) in [
        (
            vec![
                "sign",
                "--preset",
                "github",
                "--secret-env",
                "CALLGUARD_SURELY_UNSET",
            ],
            "CALLGUARD_SURELY_UNSET is unset",
        ),
        (
            vec!["sign", "--preset", "twilio", "--secret-env", "SECRET"],
            "give --url",
        ),
        (
            vec![
                "verify",
                "--preset",
                "github",
                "--secret-env",
                "SECRET",
                "-H",
                "no colon",
            ],
            "not `Name: value`",
        ),
        (
            vec![
                "token",
                "--secret-env",
                "SECRET",
                "--sub",
                "a",
                "--ttl",
                "0",
            ],
            "ttl must be between",
        ),
    ] {
        let out = run(&args, &[("SECRET", "some-secret-value-0123")], b"{}");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(fragment), "{stderr}");
    }
}
