//! JWT verification against tokens nobody here minted: RFC vectors and PyJWT fixtures
//! (`tests/data/jwt/make_fixtures.py`), the known attacks, and minting round trips.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use callguard::clock::FixedClock;
use callguard::jwt::{
    IssueError, JwtAlgorithm, JwtConfig, JwtConfigBuilder, JwtKey, JwtVerifier, TokenIssuer,
    TokenRequest,
};
use callguard::{AuthError, AuthErrorKind, Caller, GuardLayer, Scopes, Secret};
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

fn fixtures() -> Value {
    serde_json::from_str(include_str!("data/jwt/pyjwt_fixtures.json")).unwrap()
}

fn pyjwt_config(clock: FixedClock) -> JwtConfigBuilder {
    let f = fixtures();
    let pem = |name: &str| f[name].as_str().unwrap().as_bytes().to_vec();
    JwtConfig::builder()
        .key(
            "hs",
            JwtKey::hmac(
                JwtAlgorithm::HS256,
                &Secret::from_utf8(f["hs256_secret"].as_str().unwrap()).unwrap(),
            )
            .unwrap(),
        )
        .key(
            "rs",
            JwtKey::public_pem(JwtAlgorithm::RS256, &pem("rsa_public_pem")).unwrap(),
        )
        .key(
            "es",
            JwtKey::public_pem(JwtAlgorithm::ES256, &pem("ec_public_pem")).unwrap(),
        )
        .key(
            "ed",
            JwtKey::public_pem(JwtAlgorithm::EdDSA, &pem("ed_public_pem")).unwrap(),
        )
        .issuer(f["issuer"].as_str().unwrap())
        .audience(f["audience"].as_str().unwrap())
        .clock(clock)
}

fn app(config: JwtConfig) -> Router {
    Router::new()
        .route(
            "/tool",
            post(|caller: Caller| async move {
                axum::Json(json!({
                    "method": caller.method().as_str(),
                    "id": caller.id(),
                    "key_id": caller.key_id(),
                    "scopes": caller.scopes().iter().collect::<Vec<_>>(),
                    "conversation": caller.claims().and_then(|c| c.get("conversation")).cloned(),
                }))
            }),
        )
        .route_layer(JwtVerifier::new(config).layer())
}

async fn send(app: Router, authorization: Option<&str>) -> Response<Body> {
    let mut request = Request::post("/tool");
    if let Some(value) = authorization {
        request = request.header(AUTHORIZATION, value);
    }
    app.oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

fn kind(response: &Response<Body>) -> Option<AuthErrorKind> {
    response
        .extensions()
        .get::<AuthError>()
        .map(AuthError::kind)
}

async fn json_of(response: Response<Body>) -> Value {
    serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap()
}

fn now() -> FixedClock {
    FixedClock::at_unix(fixtures()["now"].as_i64().unwrap())
}

#[tokio::test]
async fn pyjwt_tokens_verify_for_every_algorithm() {
    let app = app(pyjwt_config(now()).build().unwrap());
    for (alg, kid) in [
        ("HS256", "hs"),
        ("RS256", "rs"),
        ("ES256", "es"),
        ("EdDSA", "ed"),
    ] {
        let token = fixtures()["valid"][alg].as_str().unwrap().to_owned();
        let response = send(app.clone(), Some(&format!("Bearer {token}"))).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{alg}: {:?}",
            kind(&response)
        );
        assert_eq!(
            json_of(response).await,
            json!({"method": "jwt", "id": "py-agent", "key_id": kid, "scopes": ["orders:read", "tools:call"], "conversation": "c-42"}),
            "{alg}"
        );
    }
}

#[tokio::test]
async fn pyjwt_attack_tokens_are_rejected_with_their_reason() {
    let app = app(pyjwt_config(now()).build().unwrap());
    let expected = [
        ("alg_none", AuthErrorKind::MalformedCredentials),
        (
            "hs256_keyed_with_rsa_public_pem",
            AuthErrorKind::InvalidCredentials,
        ),
        ("unknown_kid", AuthErrorKind::InvalidCredentials),
        ("kid_path_traversal", AuthErrorKind::InvalidCredentials),
        ("kid_sql", AuthErrorKind::InvalidCredentials),
        ("expired", AuthErrorKind::TokenExpired),
        ("not_yet_valid", AuthErrorKind::TokenNotYetValid),
        ("wrong_iss", AuthErrorKind::InvalidClaims),
        ("wrong_aud", AuthErrorKind::InvalidClaims),
        ("missing_exp", AuthErrorKind::InvalidClaims),
        (
            "signed_with_other_secret",
            AuthErrorKind::InvalidCredentials,
        ),
    ];
    for (name, reason) in expected {
        let token = fixtures()["attacks"][name].as_str().unwrap().to_owned();
        let response = send(app.clone(), Some(&format!("Bearer {token}"))).await;
        assert_eq!(
            (response.status(), kind(&response)),
            (StatusCode::UNAUTHORIZED, Some(reason)),
            "{name}"
        );
        assert_eq!(
            response.headers()[WWW_AUTHENTICATE],
            "Bearer realm=\"callguard\", error=\"invalid_token\"",
            "{name}"
        );
    }
}

#[tokio::test]
async fn no_token_is_401_without_an_error_code() {
    let response = send(app(pyjwt_config(now()).build().unwrap()), None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[WWW_AUTHENTICATE],
        "Bearer realm=\"callguard\""
    );
}

#[tokio::test]
async fn malformed_authorization_values_are_401() {
    let app = app(pyjwt_config(now()).build().unwrap());
    let token = fixtures()["valid"]["HS256"].as_str().unwrap().to_owned();
    let huge = format!("Bearer {}", "a".repeat(1 << 20));
    let cases = [
        format!("Bearer {token}.garbage"),
        format!("Bearer {token}garbage"),
        format!("Bearer {token} trailing"),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        format!("Bearer{token}"),
        huge,
        format!("Basic {token}"),
    ];
    for value in cases {
        let response = send(app.clone(), Some(&value)).await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{}",
            &value[..value.len().min(40)]
        );
    }
}

#[tokio::test]
async fn tampered_payload_is_rejected() {
    let token = fixtures()["valid"]["HS256"].as_str().unwrap().to_owned();
    let mut segments: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims: Value = serde_json::from_slice(&base64url_decode(&segments[1])).unwrap();
    claims["scope"] = Value::from("tools:call orders:read orders:write");
    segments[1] = base64url_encode(&serde_json::to_vec(&claims).unwrap());
    let response = send(
        app(pyjwt_config(now()).build().unwrap()),
        Some(&format!("Bearer {}", segments.join("."))),
    )
    .await;
    assert_eq!(
        (response.status(), kind(&response)),
        (
            StatusCode::UNAUTHORIZED,
            Some(AuthErrorKind::InvalidCredentials)
        )
    );
}

#[tokio::test]
async fn two_authorization_headers_are_rejected() {
    let token = fixtures()["valid"]["HS256"].as_str().unwrap().to_owned();
    let request = Request::post("/tool")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = app(pyjwt_config(now()).build().unwrap())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(
        (response.status(), kind(&response)),
        (
            StatusCode::UNAUTHORIZED,
            Some(AuthErrorKind::DuplicateHeader)
        )
    );
}

#[tokio::test]
async fn leeway_admits_small_clock_skew_only() {
    let f = fixtures();
    let token = f["attacks"]["expired"].as_str().unwrap().to_owned();
    // `expired` has exp = now - 3600.
    let at = |offset: i64| FixedClock::at_unix(f["now"].as_i64().unwrap() - 3600 + offset);
    let within = app(pyjwt_config(at(5)).build().unwrap());
    assert_eq!(
        send(within, Some(&format!("Bearer {token}")))
            .await
            .status(),
        StatusCode::OK
    );
    let beyond = app(pyjwt_config(at(11)).build().unwrap());
    assert_eq!(
        send(beyond, Some(&format!("Bearer {token}")))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let custom = app(pyjwt_config(at(11))
        .leeway(Duration::from_secs(60))
        .build()
        .unwrap());
    assert_eq!(
        send(custom, Some(&format!("Bearer {token}")))
            .await
            .status(),
        StatusCode::OK
    );
}

fn rfc_config(v: &Value, clock: FixedClock) -> JwtConfig {
    let secret = Secret::from_base64url(v["secret"].as_str().unwrap()).unwrap();
    JwtConfig::builder()
        .key("rfc", JwtKey::hmac(JwtAlgorithm::HS256, &secret).unwrap())
        .clock(clock)
        .build()
        .unwrap()
}

fn bearer_of(v: &Value) -> String {
    v["headers"]["Authorization"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn rfc7515_token_verifies_before_its_expiry_and_not_after() {
    let v = common::vector("jwt-01");
    let before = app(rfc_config(&v, FixedClock::at_unix(1_300_819_000)));
    assert_eq!(
        send(before, Some(&bearer_of(&v))).await.status(),
        StatusCode::OK
    );
    let today = app(rfc_config(&v, FixedClock::at_unix(1_795_000_000)));
    let response = send(today, Some(&bearer_of(&v))).await;
    assert_eq!(
        (response.status(), kind(&response)),
        (StatusCode::UNAUTHORIZED, Some(AuthErrorKind::TokenExpired))
    );
}

#[tokio::test]
async fn rfc7519_unsecured_token_is_rejected() {
    let v = common::vector("jwt-04");
    let response = send(
        app(rfc_config(&v, FixedClock::at_unix(1_300_819_000))),
        Some(&bearer_of(&v)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn rfc_jws_vectors_pass_the_signature_and_fail_only_as_claims() {
    for id in ["jwt-05", "jwt-06"] {
        let v = common::vector(id);
        let mut secret_config = rfc_config(&v, FixedClock::at_unix(1_300_819_000));
        if id == "jwt-06" {
            // RFC 7520 names its key; the token's `kid` must find it.
            let secret = Secret::from_base64url(v["secret"].as_str().unwrap()).unwrap();
            secret_config = JwtConfig::builder()
                .key(
                    "018c0ae5-4d9b-471b-bfd6-eef314bc7037",
                    JwtKey::hmac(JwtAlgorithm::HS256, &secret).unwrap(),
                )
                .build()
                .unwrap();
        }
        let app = app(secret_config);
        let response = send(app.clone(), Some(&bearer_of(&v))).await;
        // The signature verified (otherwise: InvalidCredentials); the payload is no claims set.
        assert_eq!(kind(&response), Some(AuthErrorKind::InvalidClaims), "{id}");
        let mut tampered = bearer_of(&v);
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(
            kind(&send(app, Some(&tampered)).await),
            Some(AuthErrorKind::InvalidCredentials),
            "{id} tampered"
        );
    }
}

fn hs_config(clock: FixedClock) -> JwtConfig {
    JwtConfig::builder()
        .key(
            "mint",
            JwtKey::hmac(
                JwtAlgorithm::HS256,
                &Secret::from_utf8("a-jwt-signing-key-of-32-bytes!!!").unwrap(),
            )
            .unwrap(),
        )
        .issuer("callguard-example")
        .audience("tools")
        .typ("at+jwt")
        .clock(clock)
        .build()
        .unwrap()
}

#[tokio::test]
async fn minted_token_verifies_with_subject_scopes_kid_and_extra_claims() {
    let config = hs_config(now());
    let issued = TokenIssuer::new(config.clone())
        .issue(
            TokenRequest::new(
                "agent-9",
                Scopes::from_iter(["tools:call", "orders:write"]),
                Duration::from_secs(120),
            )
            .claim("conversation", "c-7"),
        )
        .unwrap();
    assert_eq!(issued.scope, "orders:write tools:call");
    let response = send(
        app(config),
        Some(&format!("Bearer {}", issued.access_token)),
    )
    .await;
    assert_eq!(
        json_of(response).await,
        json!({"method": "jwt", "id": "agent-9", "key_id": "mint", "scopes": ["orders:write", "tools:call"], "conversation": "c-7"})
    );
}

#[tokio::test]
async fn every_hmac_algorithm_accepts_its_tag_only_whole() {
    // Minted by jsonwebtoken's encoder (the installed backend), verified by callguard's own
    // keyed MAC: the two must agree for each hash, and a tag cut short, extended or longer
    // than any HMAC tag must not pass.
    let secret =
        Secret::from_utf8("a-jwt-signing-key-of-64-bytes!!!a-jwt-signing-key-of-64-bytes!!!")
            .unwrap();
    for (algorithm, tag_len) in [
        (JwtAlgorithm::HS256, 32),
        (JwtAlgorithm::HS384, 48),
        (JwtAlgorithm::HS512, 64),
    ] {
        let config = JwtConfig::builder()
            .key("mint", JwtKey::hmac(algorithm, &secret).unwrap())
            .clock(now())
            .build()
            .unwrap();
        let token = TokenIssuer::new(config.clone())
            .issue(TokenRequest::new(
                "agent-1",
                Scopes::empty(),
                Duration::from_secs(60),
            ))
            .unwrap()
            .access_token;
        let response = send(app(config.clone()), Some(&format!("Bearer {token}"))).await;
        assert_eq!(response.status(), StatusCode::OK, "{algorithm:?}");
        let (signed, tag) = token.rsplit_once('.').unwrap();
        let tag = base64url_decode(tag);
        assert_eq!(tag.len(), tag_len, "{algorithm:?}");
        let extended = [tag.as_slice(), &[0]].concat();
        let too_long = [tag.as_slice(), tag.as_slice()].concat();
        for changed in [&tag[..tag_len - 1], &extended, &too_long] {
            let forged = format!("Bearer {signed}.{}", base64url_encode(changed));
            let response = send(app(config.clone()), Some(&forged)).await;
            assert_eq!(
                kind(&response),
                Some(AuthErrorKind::InvalidCredentials),
                "{algorithm:?}, tag of {} bytes",
                changed.len()
            );
        }
    }
}

#[tokio::test]
async fn minted_token_expires_after_its_ttl() {
    let clock = now();
    let config = hs_config(clock.clone());
    let issued = TokenIssuer::new(config.clone())
        .issue(TokenRequest::new(
            "agent",
            Scopes::empty(),
            Duration::from_secs(60),
        ))
        .unwrap();
    clock.advance(Duration::from_secs(60 + 10));
    let response = send(
        app(config),
        Some(&format!("Bearer {}", issued.access_token)),
    )
    .await;
    assert_eq!(kind(&response), Some(AuthErrorKind::TokenExpired));
}

#[tokio::test]
async fn cached_token_still_expires_and_tampered_tokens_are_not_served_from_the_cache() {
    let clock = now();
    let config = hs_config(clock.clone());
    let token = TokenIssuer::new(config.clone())
        .issue(TokenRequest::new(
            "agent",
            Scopes::from_iter(["tools:call"]),
            Duration::from_secs(60),
        ))
        .unwrap()
        .access_token;
    let app = app(config);
    for _ in 0..3 {
        assert_eq!(
            send(app.clone(), Some(&format!("Bearer {token}")))
                .await
                .status(),
            StatusCode::OK
        );
    }
    let mut tampered = token.clone();
    tampered.push('A');
    assert_eq!(
        send(app.clone(), Some(&format!("Bearer {tampered}")))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    clock.advance(Duration::from_secs(71));
    let response = send(app.clone(), Some(&format!("Bearer {token}"))).await;
    assert_eq!(kind(&response), Some(AuthErrorKind::TokenExpired));
    let response = send(app, Some(&format!("Bearer {token}"))).await;
    assert_eq!(
        kind(&response),
        Some(AuthErrorKind::TokenExpired),
        "an expired entry is not revived"
    );
}

#[tokio::test]
async fn verifier_without_cache_gives_the_same_answers() {
    let config = pyjwt_config(now()).build().unwrap();
    let uncached = Router::new()
        .route(
            "/tool",
            post(|caller: Caller| async move { caller.id().to_owned() }),
        )
        .route_layer(JwtVerifier::new(config).without_cache().layer());
    let token = fixtures()["valid"]["ES256"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        assert_eq!(
            send(uncached.clone(), Some(&format!("Bearer {token}")))
                .await
                .status(),
            StatusCode::OK
        );
    }
    let expired = fixtures()["attacks"]["expired"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        send(uncached, Some(&format!("Bearer {expired}")))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn token_without_the_required_typ_is_rejected() {
    let f = fixtures();
    let config = pyjwt_config(now()).typ("at+jwt").build().unwrap();
    let token = f["valid"]["HS256"].as_str().unwrap();
    let response = send(app(config), Some(&format!("Bearer {token}"))).await;
    assert_eq!(kind(&response), Some(AuthErrorKind::InvalidClaims));
}

#[tokio::test]
async fn with_one_key_a_token_naming_another_kid_is_rejected() {
    let f = fixtures();
    let secret = Secret::from_utf8(f["hs256_secret"].as_str().unwrap()).unwrap();
    let only = JwtConfig::builder()
        .key(
            "other-kid",
            JwtKey::hmac(JwtAlgorithm::HS256, &secret).unwrap(),
        )
        .issuer(f["issuer"].as_str().unwrap())
        .audience(f["audience"].as_str().unwrap())
        .clock(now())
        .build()
        .unwrap();
    // Signed with the right secret, but its header names kid "hs".
    let token = f["valid"]["HS256"].as_str().unwrap();
    let response = send(app(only), Some(&format!("Bearer {token}"))).await;
    assert_eq!(kind(&response), Some(AuthErrorKind::InvalidCredentials));
}

#[tokio::test]
async fn with_one_key_alg_none_is_still_malformed() {
    let v = common::vector("jwt-04");
    let response = send(
        app(rfc_config(&v, FixedClock::at_unix(1_300_819_000))),
        Some(&bearer_of(&v)),
    )
    .await;
    assert_eq!(kind(&response), Some(AuthErrorKind::MalformedCredentials));
}

#[test]
fn issuer_refuses_ttls_out_of_bounds_and_reserved_claims() {
    let issuer = TokenIssuer::new(hs_config(now()));
    for ttl in [
        Duration::ZERO,
        Duration::from_secs(3601),
        Duration::from_millis(1500),
    ] {
        let err = issuer
            .issue(TokenRequest::new("a", Scopes::empty(), ttl))
            .unwrap_err();
        assert!(matches!(err, IssueError::TtlOutOfBounds { .. }), "{ttl:?}");
    }
    let err = issuer
        .issue(TokenRequest::new("a", Scopes::empty(), Duration::from_secs(60)).claim("exp", 1))
        .unwrap_err();
    assert_eq!(err, IssueError::ReservedClaim("exp".into()));
}

#[test]
fn verify_only_keys_cannot_mint() {
    let f = fixtures();
    let config = JwtConfig::builder()
        .key(
            "rs",
            JwtKey::public_pem(
                JwtAlgorithm::RS256,
                f["rsa_public_pem"].as_str().unwrap().as_bytes(),
            )
            .unwrap(),
        )
        .build()
        .unwrap();
    let err = TokenIssuer::new(config)
        .issue(TokenRequest::new(
            "a",
            Scopes::empty(),
            Duration::from_secs(60),
        ))
        .unwrap_err();
    assert_eq!(err, IssueError::NoSigningKey);
}

#[test]
fn keys_are_refused_for_the_wrong_algorithm_family() {
    let secret = Secret::from_utf8("a-jwt-signing-key-of-32-bytes!!!").unwrap();
    assert!(JwtKey::hmac(JwtAlgorithm::RS256, &secret).is_err());
    let f = fixtures();
    assert!(
        JwtKey::public_pem(
            JwtAlgorithm::HS256,
            f["rsa_public_pem"].as_str().unwrap().as_bytes()
        )
        .is_err()
    );
    assert!(
        JwtKey::public_pem(
            JwtAlgorithm::ES256,
            f["rsa_public_pem"].as_str().unwrap().as_bytes()
        )
        .is_err()
    );
}

#[test]
fn jwt_guard_layer_builds_from_a_verifier() {
    let _layer: GuardLayer = JwtVerifier::new(hs_config(now())).layer();
}

fn base64url_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}

fn base64url_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Tokens minted with an asymmetric key verify elsewhere from the published key set alone:
/// jsonwebtoken, given only what `JwksService` serves, accepts them.
#[tokio::test]
async fn tokens_minted_with_a_private_key_verify_from_the_published_key_set() {
    use callguard::jwt::{JwksService, JwtAlgorithm, JwtConfig, JwtKey, TokenIssuer, TokenRequest};
    let pem = std::fs::read("tests/data/oauth/ec.pem").unwrap();
    let hmac = JwtKey::hmac(
        JwtAlgorithm::HS256,
        &Secret::from_utf8("a-jwt-signing-key-of-32-bytes!!!").unwrap(),
    )
    .unwrap();
    let config = JwtConfig::builder()
        .key(
            "es-2026",
            JwtKey::private_pem(JwtAlgorithm::ES256, &pem).unwrap(),
        )
        .key("hs-legacy", hmac)
        .signing_key("es-2026")
        .issuer("https://tools.example.com")
        .audience("tools")
        .build()
        .unwrap();
    let token = TokenIssuer::new(config.clone())
        .issue(TokenRequest::new(
            "agent-7",
            Scopes::from_iter(["tools:call"]),
            Duration::from_secs(60),
        ))
        .unwrap()
        .access_token;
    let service = JwksService::new(&config).unwrap();
    let response = service
        .clone()
        .oneshot(Request::get("/.well-known/jwks.json").body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/jwk-set+json"
    );
    assert!(
        response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        set.keys.len(),
        1,
        "the HMAC key is secret and never published"
    );
    let jwk = set.find("es-2026").unwrap();
    let text: Value = serde_json::from_slice(&body).unwrap();
    assert!(text["keys"][0].get("d").is_none(), "no private part");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["tools"]);
    validation.set_issuer(&["https://tools.example.com"]);
    let decoded = jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .unwrap();
    assert_eq!(decoded.claims["sub"], "agent-7");
    let post = service
        .oneshot(Request::post("/.well-known/jwks.json").body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    let secret_only = JwtConfig::builder()
        .key(
            "hs",
            JwtKey::hmac(
                JwtAlgorithm::HS256,
                &Secret::from_utf8("a-jwt-signing-key-of-32-bytes!!!").unwrap(),
            )
            .unwrap(),
        )
        .build()
        .unwrap();
    assert!(JwksService::new(&secret_only).is_err());
}

#[tokio::test]
async fn one_claim_rules_value_configures_minting_and_verifying_and_audience_adds() {
    use callguard::jwt::ClaimRules;
    let key = || {
        JwtKey::hmac(
            JwtAlgorithm::HS256,
            &Secret::from_utf8("a-jwt-signing-key-of-32-bytes!!!").unwrap(),
        )
        .unwrap()
    };
    let rules = ClaimRules::new()
        .issuer("callguard-example")
        .audience("tools")
        .audience("billing")
        .typ("at+jwt")
        .clock(now());
    let both = JwtConfig::builder()
        .key("mint", key())
        .claim_rules(rules.clone())
        .build()
        .unwrap();
    assert_eq!(
        both.claim_rules().audiences().collect::<Vec<_>>(),
        ["tools", "billing"]
    );
    let token = TokenIssuer::new(both)
        .issue(TokenRequest::new(
            "agent-7",
            Scopes::empty(),
            Duration::from_secs(60),
        ))
        .unwrap();
    let claims: Value = serde_json::from_slice(&base64url_decode(
        token.access_token.split('.').nth(1).unwrap(),
    ))
    .unwrap();
    assert_eq!(claims["aud"], json!(["tools", "billing"]));
    // A resource that accepts one of the two audiences accepts the token.
    let tools_only = JwtConfig::builder()
        .key("mint", key())
        .claim_rules(
            ClaimRules::new()
                .issuer("callguard-example")
                .typ("at+jwt")
                .clock(now()),
        )
        .audience("tools")
        .build()
        .unwrap();
    let bearer = format!("Bearer {}", token.access_token);
    let response = send(app(tools_only), Some(&bearer)).await;
    assert_eq!(response.status(), StatusCode::OK);
    // One naming neither refuses it for its audience.
    let elsewhere = JwtConfig::builder()
        .key("mint", key())
        .claim_rules(rules.clone())
        .claim_rules(ClaimRules::new().audience("elsewhere").clock(now()))
        .build()
        .unwrap();
    let response = send(app(elsewhere), Some(&bearer)).await;
    assert_eq!(kind(&response), Some(AuthErrorKind::InvalidClaims));
    // Text that ends up in headers and logs is checked once, wherever the rules go.
    let error = JwtConfig::builder()
        .key("mint", key())
        .claim_rules(ClaimRules::new().audience("bad\"audience"))
        .build()
        .unwrap_err();
    assert_eq!(
        error,
        callguard::ConfigError::InvalidValue { field: "audience" }
    );
}
