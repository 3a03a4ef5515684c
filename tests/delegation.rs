//! Delegation: an agent calling on behalf of a user, both proven, in one caller context.

#![cfg(feature = "jwt")]
#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use std::time::Duration;

use bytes::Bytes;
use callguard::bearer::BearerTokens;
use callguard::clock::FixedClock;
use callguard::delegation::{Delegation, PlatformUser};
use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier, TokenIssuer, TokenRequest};
use callguard::replay::MemoryReplayStore;
use callguard::scope::RequireScopesLayer;
use callguard::signature::SignatureVerifier;
use callguard::{
    AuthError, AuthErrorKind, AuthMethod, Caller, ConfigError, GuardLayer, Scopes, Secret,
};
use common::{Seen, echo, sign_hex};
use http::{Request, StatusCode};
use http_body_util::Full;
use proptest::prelude::*;
use tower::{Layer, ServiceExt, service_fn};

const NOW: i64 = 1_800_000_000;
const AGENT_SECRET: &str = "agent-signing-secret-0123456789ab";
const AGENT_TOKEN: &str = "tok_agent_0123456789abcdef";

fn jwt_config() -> JwtConfig {
    JwtConfig::builder()
        .key(
            "k1",
            JwtKey::hmac(
                JwtAlgorithm::HS256,
                &Secret::from_utf8("user-jwt-secret-0123456789abcdef").unwrap(),
            )
            .unwrap(),
        )
        .issuer("tools")
        .audience("tools")
        .clock(FixedClock::at_unix(NOW))
        .build()
        .unwrap()
}

fn mint(sub: &str, scopes: &[&str], actor: Option<&str>) -> String {
    let mut request = TokenRequest::new(sub, Scopes::from_iter(scopes), Duration::from_secs(300));
    if let Some(actor) = actor {
        request = request.actor(actor);
    }
    TokenIssuer::new(jwt_config())
        .issue(request)
        .unwrap()
        .access_token
}

fn signature_agent() -> SignatureVerifier {
    SignatureVerifier::builder()
        .identity("sendbird")
        .secret("master", Secret::from_utf8(AGENT_SECRET).unwrap())
        .replay_protection(MemoryReplayStore::with_clock(64, FixedClock::at_unix(NOW)))
        .build()
        .unwrap()
}

fn users() -> JwtVerifier {
    JwtVerifier::new(jwt_config())
}

/// A signature agent, a user token in Authorization, bound to the body's `user_id`.
fn signed_delegation(users: JwtVerifier) -> GuardLayer {
    Delegation::builder(signature_agent(), users)
        .bind(PlatformUser::json_pointer("/user_id").unwrap())
        .build()
        .unwrap()
        .layer()
}

struct Call<'a> {
    body: &'a [u8],
    signature: Option<String>,
    authorization: Option<String>,
    headers: Vec<(&'a str, String)>,
    uri: &'a str,
}

impl<'a> Call<'a> {
    fn signed(body: &'a [u8], user_token: Option<&str>) -> Self {
        Self {
            body,
            signature: Some(sign_hex(AGENT_SECRET, body)),
            authorization: user_token.map(|t| format!("Bearer {t}")),
            headers: Vec::new(),
            uri: "/tools/refund",
        }
    }
}

async fn send(
    guard: &GuardLayer,
    call: Call<'_>,
) -> (StatusCode, Option<AuthErrorKind>, Option<Caller>) {
    let mut request = Request::post(call.uri);
    if let Some(signature) = &call.signature {
        request = request.header("x-signature", signature);
    }
    if let Some(authorization) = &call.authorization {
        request = request.header("authorization", authorization);
    }
    for (name, value) in &call.headers {
        request = request.header(*name, value);
    }
    let request = request
        .body(Full::new(Bytes::copy_from_slice(call.body)))
        .unwrap();
    let response = guard
        .layer(service_fn(echo))
        .oneshot(request)
        .await
        .unwrap();
    (
        response.status(),
        response
            .extensions()
            .get::<AuthError>()
            .map(AuthError::kind),
        response
            .extensions()
            .get::<Seen>()
            .and_then(|s| s.caller.clone()),
    )
}

const BODY: &[u8] = br#"{"user_id":"user-1","order_id":"o-9","amount":12}"#;

#[tokio::test]
async fn both_proofs_give_one_caller_the_user_acting_through_the_agent() {
    let guard = signed_delegation(users());
    let token = mint("user-1", &["refunds:write"], None);
    let (status, _, caller) = send(&guard, Call::signed(BODY, Some(&token))).await;
    assert_eq!(status, StatusCode::OK);
    let caller = caller.unwrap();
    assert_eq!((caller.method(), caller.id()), (AuthMethod::Jwt, "user-1"));
    assert_eq!(
        caller.scopes().iter().collect::<Vec<_>>(),
        ["refunds:write"]
    );
    let actor = caller.actor().unwrap();
    assert_eq!(
        (actor.method(), actor.id(), actor.key_id()),
        (AuthMethod::Signature, "sendbird", Some("master"))
    );
}

#[tokio::test]
async fn a_delegation_alone_in_any_of_still_runs() {
    let delegation = Delegation::builder(signature_agent(), users())
        .bind(PlatformUser::json_pointer("/user_id").unwrap())
        .build()
        .unwrap();
    let guard = callguard::Authenticator::any_of([delegation.into()])
        .unwrap()
        .layer();
    let token = mint("user-1", &["refunds:write"], None);
    let (status, _, caller) = send(&guard, Call::signed(BODY, Some(&token))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(caller.unwrap().actor().unwrap().id(), "sendbird");
}

#[tokio::test]
async fn missing_either_proof_is_401() {
    let guard = signed_delegation(users());
    let token = mint("user-1", &["refunds:write"], None);
    assert_eq!(
        send(&guard, Call::signed(BODY, None)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let mut unsigned = Call::signed(BODY, Some(&token));
    unsigned.signature = None;
    assert_eq!(send(&guard, unsigned).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_platform_user_must_be_the_token_user() {
    let guard = signed_delegation(users());
    let token = mint("user-1", &["refunds:write"], None);
    for body in [
        &br#"{"user_id":"user-2"}"#[..],
        br#"{"order_id":"o-9"}"#,
        br#"{"user_id":1}"#,
        b"user_id=user-1",
    ] {
        let (status, kind, _) = send(&guard, Call::signed(body, Some(&token))).await;
        assert_eq!(
            (status, kind),
            (StatusCode::FORBIDDEN, Some(AuthErrorKind::UserMismatch)),
            "{body:?}"
        );
    }
}

#[tokio::test]
async fn a_bad_user_token_does_not_burn_the_delivery_and_replay_is_checked_once() {
    let guard = signed_delegation(users());
    let good = mint("user-1", &["refunds:write"], None);
    let (status, _, _) = send(&guard, Call::signed(BODY, Some("not.a.token"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = send(&guard, Call::signed(BODY, Some(&good))).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the retry of the same signed delivery succeeds"
    );
    let (status, kind, _) = send(&guard, Call::signed(BODY, Some(&good))).await;
    assert_eq!(
        (status, kind),
        (StatusCode::UNAUTHORIZED, Some(AuthErrorKind::Replayed))
    );
}

#[tokio::test]
async fn a_mismatched_user_does_not_burn_the_delivery_either() {
    let guard = signed_delegation(users());
    let wrong = mint("user-2", &["refunds:write"], None);
    let right = mint("user-1", &["refunds:write"], None);
    assert_eq!(
        send(&guard, Call::signed(BODY, Some(&wrong))).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&guard, Call::signed(BODY, Some(&right))).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_revoked_user_token_is_refused_before_the_delivery_is_recorded() {
    let users = users().revocations(callguard::jwt::Revocations::new(
        MemoryReplayStore::with_clock(64, FixedClock::at_unix(NOW)),
    ));
    let guard = signed_delegation(users.clone());
    let issued = TokenIssuer::new(jwt_config())
        .issue(TokenRequest::new(
            "user-1",
            Scopes::from_iter(["refunds:write"]),
            Duration::from_secs(300),
        ))
        .unwrap();
    assert_eq!(
        users.revoke(&issued.jti, Duration::from_secs(300)).await,
        Ok(true)
    );
    let (status, kind, _) = send(&guard, Call::signed(BODY, Some(&issued.access_token))).await;
    assert_eq!(
        (status, kind),
        (StatusCode::UNAUTHORIZED, Some(AuthErrorKind::TokenRevoked))
    );
    let fresh = mint("user-1", &["refunds:write"], None);
    assert_eq!(
        send(&guard, Call::signed(BODY, Some(&fresh))).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_token_minted_for_an_agent_is_accepted_only_from_that_agent() {
    let guard = signed_delegation(users());
    let ours = mint("user-1", &["refunds:write"], Some("sendbird"));
    let theirs = mint("user-1", &["refunds:write"], Some("another-agent"));
    assert_eq!(
        send(&guard, Call::signed(BODY, Some(&ours))).await.0,
        StatusCode::OK
    );
    let other_body = br#"{"user_id":"user-1","order_id":"o-10"}"#;
    let (status, kind, _) = send(&guard, Call::signed(other_body, Some(&theirs))).await;
    assert_eq!(
        (status, kind),
        (StatusCode::FORBIDDEN, Some(AuthErrorKind::ActorMismatch))
    );
    // Presented on its own, without the agent, it is no credential at all.
    let alone = users().layer();
    let mut direct = Call::signed(b"{}", Some(&ours));
    direct.signature = None;
    assert_eq!(send(&alone, direct).await.0, StatusCode::UNAUTHORIZED);
}

fn token_agent(users: JwtVerifier, binding: PlatformUser) -> GuardLayer {
    let agent = BearerTokens::builder()
        .token(
            "agent-7",
            Secret::from_utf8(AGENT_TOKEN).unwrap(),
            Scopes::from_iter(["refunds:read"]),
        )
        .build()
        .unwrap();
    Delegation::builder(agent, users)
        .user_token_header("x-user-token")
        .bind(binding)
        .agent_scopes(Scopes::from_iter(["refunds:read"]))
        .build()
        .unwrap()
        .layer()
}

#[tokio::test]
async fn a_token_agent_with_the_user_token_in_a_header_bound_by_header_or_query() {
    let token = mint("user-1", &["refunds:read", "refunds:write"], None);
    let call = |uri, headers: Vec<(&'static str, String)>| Call {
        body: b"{}",
        signature: None,
        authorization: Some(format!("Bearer {AGENT_TOKEN}")),
        headers,
        uri,
    };
    let by_header = token_agent(users(), PlatformUser::header("x-user-id").unwrap());
    let (status, _, caller) = send(
        &by_header,
        call(
            "/tools/refund",
            vec![
                ("x-user-token", token.clone()),
                ("x-user-id", "user-1".into()),
            ],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let caller = caller.unwrap();
    assert_eq!(
        caller.scopes().iter().collect::<Vec<_>>(),
        ["refunds:read"],
        "the user's scopes within the agent's"
    );
    assert_eq!(caller.actor().unwrap().id(), "agent-7");
    let (status, _, _) = send(
        &by_header,
        call(
            "/tools/refund",
            vec![
                ("x-user-token", token.clone()),
                ("x-user-id", "user-2".into()),
            ],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let by_query = token_agent(users(), PlatformUser::query("user_id"));
    let (status, _, _) = send(
        &by_query,
        call(
            "/tools/refund?user_id=user-1",
            vec![("x-user-token", token.clone())],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(
        &by_query,
        call(
            "/tools/refund?user_id=user-3",
            vec![("x-user-token", token)],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn scopes_in_force_are_what_scope_checks_see() {
    let token = mint("user-1", &["refunds:read", "refunds:write"], None);
    let guard = token_agent(users(), PlatformUser::header("x-user-id").unwrap());
    let scoped = tower::ServiceBuilder::new()
        .layer(guard)
        .layer(RequireScopesLayer::new(["refunds:write"]).unwrap())
        .service(service_fn(echo));
    let request = Request::post("/tools/refund")
        .header("authorization", format!("Bearer {AGENT_TOKEN}"))
        .header("x-user-token", token)
        .header("x-user-id", "user-1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = scoped.oneshot(request).await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "the agent may not use refunds:write"
    );
}

#[test]
fn compositions_that_cannot_work_are_refused_when_built() {
    let agent = BearerTokens::builder()
        .token(
            "agent-7",
            Secret::from_utf8(AGENT_TOKEN).unwrap(),
            Scopes::empty(),
        )
        .build()
        .unwrap();
    assert!(
        matches!(
            Delegation::builder(agent.clone(), users()).build(),
            Err(ConfigError::InvalidComposition { .. })
        ),
        "both in Authorization"
    );
    assert!(
        matches!(
            Delegation::builder(agent, users())
                .user_token_header("x-user-token")
                .bind(PlatformUser::json_pointer("/user_id").unwrap())
                .build(),
            Err(ConfigError::InvalidComposition { .. })
        ),
        "a body field the agent did not sign"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Of one valid and one invalid proof, or two invalid ones, nothing is ever accepted.
    #[test]
    fn no_invalid_proof_is_ever_accepted(
        signature in 0u8..3,   // 0 valid, 1 wrong, 2 absent
        user in 0u8..4,        // 0 valid, 1 wrong key, 2 expired-shaped garbage, 3 absent
        user_id_matches in any::<bool>(),
    ) {
        let runtime = common::runtime();
        let guard = signed_delegation(users());
        let body: &[u8] = if user_id_matches { br#"{"user_id":"user-1"}"# } else { br#"{"user_id":"user-9"}"# };
        let good = mint("user-1", &["refunds:write"], None);
        let forged = TokenIssuer::new(
            JwtConfig::builder()
                .key("k1", JwtKey::hmac(JwtAlgorithm::HS256, &Secret::from_utf8("another-secret-0123456789abcdef!").unwrap()).unwrap())
                .issuer("tools")
                .audience("tools")
                .clock(FixedClock::at_unix(NOW))
                .build()
                .unwrap(),
        )
        .issue(TokenRequest::new("user-1", Scopes::from_iter(["refunds:write"]), Duration::from_secs(300)))
        .unwrap()
        .access_token;
        let mut call = Call::signed(body, match user { 0 => Some(good.as_str()), 1 => Some(forged.as_str()), 2 => Some("a.b.c"), _ => None });
        call.signature = match signature { 0 => call.signature, 1 => Some(sign_hex("another-agent-secret-0123456789ab", body)), _ => None };
        let (status, _, _) = runtime.block_on(send(&guard, call));
        let valid = signature == 0 && user == 0 && user_id_matches;
        prop_assert_eq!(status == StatusCode::OK, valid, "status {}", status);
    }
}

#[tokio::test]
async fn one_token_cannot_fill_both_slots() {
    // An agent that accepts the server's own JWTs, and a user token from the same issuer.
    let guard = Delegation::builder(users(), users())
        .user_token_header("x-user-token")
        .build()
        .unwrap()
        .layer();
    let token = mint("user-1", &["refunds:write"], None);
    let call = Call {
        body: b"{}",
        signature: None,
        authorization: Some(format!("Bearer {token}")),
        headers: vec![("x-user-token", token.clone())],
        uri: "/tools/refund",
    };
    let (status, kind, _) = send(&guard, call).await;
    assert_eq!(
        (status, kind),
        (
            StatusCode::UNAUTHORIZED,
            Some(AuthErrorKind::ConflictingCredentials)
        )
    );
}

#[tokio::test]
async fn a_token_without_a_subject_binds_to_no_one() {
    let guard = token_agent(users(), PlatformUser::query("user_id"));
    let token = mint("", &["refunds:read"], None);
    let call = Call {
        body: b"{}",
        signature: None,
        authorization: Some(format!("Bearer {AGENT_TOKEN}")),
        headers: vec![("x-user-token", token)],
        uri: "/tools/refund?user_id=",
    };
    let (status, kind, _) = send(&guard, call).await;
    assert_eq!(
        (status, kind),
        (StatusCode::FORBIDDEN, Some(AuthErrorKind::UserMismatch))
    );
}

#[tokio::test]
async fn an_oversized_user_token_header_is_malformed() {
    let guard = token_agent(users(), PlatformUser::header("x-user-id").unwrap());
    let call = Call {
        body: b"{}",
        signature: None,
        authorization: Some(format!("Bearer {AGENT_TOKEN}")),
        headers: vec![
            ("x-user-token", "a".repeat(9000)),
            ("x-user-id", "user-1".into()),
        ],
        uri: "/tools/refund",
    };
    let (status, kind, _) = send(&guard, call).await;
    assert_eq!(
        (status, kind),
        (
            StatusCode::UNAUTHORIZED,
            Some(AuthErrorKind::MalformedCredentials)
        )
    );
}

#[tokio::test]
async fn an_act_naming_an_issuer_binds_only_a_token_agent_of_that_issuer() {
    use base64::Engine as _;
    let encode = |value: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
    };
    let input = format!(
        "{}.{}",
        encode(serde_json::json!({"alg": "HS256", "kid": "k1"})),
        encode(serde_json::json!({
            "sub": "user-1", "iss": "tools", "aud": "tools", "exp": NOW + 300, "scope": "refunds:write",
            "act": {"sub": "sendbird", "iss": "https://as.example.com"},
        }))
    );
    let tag = common::hmac_sha256(b"user-jwt-secret-0123456789abcdef", &[input.as_bytes()]);
    let token = format!(
        "{input}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag)
    );
    // The signature agent named `sendbird` has no issuer: the act does not name it.
    let (status, kind, _) = send(
        &signed_delegation(users()),
        Call::signed(BODY, Some(&token)),
    )
    .await;
    assert_eq!(
        (status, kind),
        (StatusCode::FORBIDDEN, Some(AuthErrorKind::ActorMismatch))
    );
}

/// The ECDSA twin of a compact JWS: `(r, s)` becomes `(r, n - s)`, which verifies under the
/// same key and was computed without it.
fn ecdsa_twin(token: &str) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    // The order of P-256, big-endian.
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let s = &mut signature[32..];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let difference = i16::from(N[i]) - i16::from(s[i]) - borrow;
        borrow = i16::from(difference < 0);
        s[i] = (difference + 256 * borrow) as u8;
    }
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

#[tokio::test]
async fn an_ecdsa_token_and_its_malleated_twin_cannot_fill_both_slots() {
    let pem = |name: &str| std::fs::read(format!("tests/data/oauth/{name}")).unwrap();
    let key = JwtKey::public_pem(JwtAlgorithm::ES256, &pem("ec.pub.pem"))
        .unwrap()
        .with_private_pem(&pem("ec.pem"))
        .unwrap();
    let config = JwtConfig::builder()
        .key("ec", key)
        .issuer("tools")
        .audience("tools")
        .clock(FixedClock::at_unix(NOW))
        .build()
        .unwrap();
    let verifier = JwtVerifier::new(config.clone());
    let token = TokenIssuer::new(config)
        .issue(TokenRequest::new(
            "user-1",
            Scopes::from_iter(["refunds:write"]),
            Duration::from_secs(300),
        ))
        .unwrap()
        .access_token;
    let twin = ecdsa_twin(&token);
    assert_ne!(twin, token);
    let alone = GuardLayer::new(verifier.clone());
    for spelling in [&token, &twin] {
        let call = Call {
            body: b"{}",
            signature: None,
            authorization: Some(format!("Bearer {spelling}")),
            headers: vec![],
            uri: "/tools/refund",
        };
        assert_eq!(
            send(&alone, call).await.0,
            StatusCode::OK,
            "both spellings verify"
        );
    }
    let guard = Delegation::builder(verifier.clone(), verifier)
        .user_token_header("x-user-token")
        .build()
        .unwrap()
        .layer();
    let call = Call {
        body: b"{}",
        signature: None,
        authorization: Some(format!("Bearer {token}")),
        headers: vec![("x-user-token", twin)],
        uri: "/tools/refund",
    };
    let (status, kind, caller) = send(&guard, call).await;
    assert_eq!(
        (status, kind),
        (
            StatusCode::UNAUTHORIZED,
            Some(AuthErrorKind::ConflictingCredentials)
        ),
        "accepted as {caller:?}"
    );
}

#[tokio::test]
async fn a_delegation_whose_agent_and_user_are_one_principal_is_refused() {
    // Two distinct tokens for one subject: still the user acting as themselves.
    let guard = Delegation::builder(users(), users())
        .user_token_header("x-user-token")
        .build()
        .unwrap()
        .layer();
    let call = Call {
        body: b"{}",
        signature: None,
        authorization: Some(format!(
            "Bearer {}",
            mint("user-1", &["refunds:write"], None)
        )),
        headers: vec![("x-user-token", mint("user-1", &["refunds:write"], None))],
        uri: "/tools/refund",
    };
    assert_eq!(
        send(&guard, call).await.1,
        Some(AuthErrorKind::ConflictingCredentials)
    );
    let call = Call {
        body: b"{}",
        signature: None,
        authorization: Some(format!("Bearer {}", mint("agent-7", &[], None))),
        headers: vec![("x-user-token", mint("user-1", &["refunds:write"], None))],
        uri: "/tools/refund",
    };
    let (status, _, caller) = send(&guard, call).await;
    assert_eq!(status, StatusCode::OK, "two principals pass");
    let actor = caller.unwrap().actor().cloned().unwrap();
    assert_eq!(
        actor.issuer(),
        Some("tools"),
        "the actor keeps its token's issuer"
    );
    assert_eq!(
        actor
            .claims()
            .and_then(|c| c.get("sub"))
            .and_then(|s| s.as_str()),
        Some("agent-7")
    );
}

#[tokio::test]
async fn a_token_bound_to_one_hmac_agent_is_accepted_only_with_that_agents_secret() {
    const SEVEN: &str = "agent-seven-secret-0123456789ab";
    const EIGHT: &str = "agent-eight-secret-0123456789ab";
    let agents = SignatureVerifier::builder()
        .identity("agents")
        .secret("agent-7", Secret::from_utf8(SEVEN).unwrap())
        .secret("agent-8", Secret::from_utf8(EIGHT).unwrap())
        .identify_callers_by_secret()
        .build()
        .unwrap();
    let guard = Delegation::builder(agents, users())
        .bind(PlatformUser::json_pointer("/user_id").unwrap())
        .build()
        .unwrap()
        .layer();
    let token = mint("user-1", &["refunds:write"], Some("agent-7"));
    let by = |secret: &str| Call {
        signature: Some(sign_hex(secret, BODY)),
        ..Call::signed(BODY, Some(&token))
    };
    let (status, _, caller) = send(&guard, by(SEVEN)).await;
    assert_eq!(status, StatusCode::OK);
    let actor = caller.unwrap().actor().cloned().unwrap();
    assert_eq!((actor.id(), actor.key_id()), ("agent-7", Some("agent-7")));
    assert_eq!(
        send(&guard, by(EIGHT)).await.1,
        Some(AuthErrorKind::ActorMismatch),
        "another agent of the same verifier"
    );
}

#[tokio::test]
async fn a_body_serde_json_would_refuse_binds_no_user() {
    let guard = signed_delegation(users());
    let token = mint("user-1", &["refunds:write"], None);
    for body in [
        &b"{\"note\":\"\x8a\",\"user_id\":\"user-1\"}"[..],
        br#"{"note":"\ud800","user_id":"user-1"}"#,
        br#"{"note":["\udc00"],"user_id":"user-1"}"#,
    ] {
        let (status, kind, _) = send(&guard, Call::signed(body, Some(&token))).await;
        assert_eq!(
            (status, kind),
            (StatusCode::FORBIDDEN, Some(AuthErrorKind::UserMismatch)),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}
