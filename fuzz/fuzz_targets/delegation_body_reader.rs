//! Bodies from the fuzzer, correctly signed by the agent, through a `Delegation` that binds
//! the body's `/user_id` to the user token's `sub` (`user-1`), differentially against
//! serde_json: a body is accepted only if serde_json reads it whole and its `/user_id` is
//! the string `user-1`.
#![no_main]

use std::sync::LazyLock;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use callguard::delegation::{Delegation, PlatformUser};
use callguard::guard::GuardedBody;
use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier, TokenIssuer, TokenRequest};
use callguard::signature::SignatureVerifier;
use callguard::{GuardLayer, Scopes, Secret};
use hmac::{Hmac, KeyInit, Mac};
use http::{Request, Response};
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;
use tower::{Layer, Service, service_fn};

const AGENT_SECRET: &str = "agent-signing-secret-0123456789ab";

static SETUP: LazyLock<(GuardLayer, String)> = LazyLock::new(|| {
    let secret = |text: &str| Secret::from_utf8(text).expect("a valid secret");
    let key = JwtKey::hmac(
        JwtAlgorithm::HS256,
        &secret("user-jwt-secret-0123456789abcdef"),
    )
    .expect("an HMAC key");
    let config = JwtConfig::builder()
        .key("k1", key)
        .build()
        .expect("a valid JWT configuration");
    let token = TokenIssuer::new(config.clone())
        .issue(TokenRequest::new(
            "user-1",
            Scopes::from_iter(["refunds:write"]),
            Duration::from_secs(3600),
        ))
        .expect("a token")
        .access_token;
    let agent = SignatureVerifier::builder()
        .identity("agent")
        .secret("k", secret(AGENT_SECRET))
        .build()
        .expect("a valid verifier");
    let guard = Delegation::builder(agent, JwtVerifier::new(config))
        .bind(PlatformUser::json_pointer("/user_id").expect("a valid pointer"))
        .build()
        .expect("a valid delegation")
        .layer();
    (guard, token)
});

fuzz_target!(|data: &[u8]| {
    let (guard, token) = &*SETUP;
    let mut mac = Hmac::<Sha256>::new_from_slice(AGENT_SECRET.as_bytes()).expect("any key length");
    mac.update(data);
    let signature = hex_encode(&mac.finalize().into_bytes());
    let mut service = guard.clone().layer(service_fn(
        |_request: Request<GuardedBody<Full<Bytes>>>| async {
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
        },
    ));
    let request = Request::post("/tools/refund")
        .header("x-signature", signature)
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::copy_from_slice(data)))
        .expect("a valid request");
    let mut cx = Context::from_waker(Waker::noop());
    if service.poll_ready(&mut cx).is_pending() {
        return;
    }
    let mut future = std::pin::pin!(service.call(request));
    let Poll::Ready(Ok(response)) = future.as_mut().poll(&mut cx) else {
        return;
    };
    if response.status().is_success() {
        let value: serde_json::Value =
            serde_json::from_slice(data).expect("an accepted body is JSON to serde_json");
        assert_eq!(
            value.pointer("/user_id").and_then(|u| u.as_str()),
            Some("user-1"),
            "accepted for another user: {data:?}"
        );
    }
});

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
