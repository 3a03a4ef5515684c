//! DPoP (RFC 9449) through a guard: a self-issued token bound to a key (`cnf.jkt`), proofs
//! made here with jsonwebtoken (an independent JWS implementation) from the test keys, and
//! every check of RFC 9449 §4.3 and §7 refusing what it should. The same rules against a
//! real authorization server (node `oidc-provider`) and an independent proof library (npm
//! `dpop`) run in `tests/oauth/`.

#![cfg(feature = "dpop")]
#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::convert::Infallible;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use callguard::clock::FixedClock;
use callguard::dpop::Dpop;
use callguard::guard::GuardedBody;
use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier, TokenIssuer, TokenRequest};
use callguard::replay::MemoryReplayStore;
use callguard::{
    AuthError, AuthErrorKind, Caller, ConfigError, Confirmation, GuardLayer, Scopes, Secret,
};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tower::{Layer, Service, ServiceExt, service_fn};

const NOW: i64 = 1_800_000_000;
const PUBLIC_URL: &str = "https://api.example.com";
const HTU: &str = "https://api.example.com/tools/echo";

fn pem(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/oauth/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A client's DPoP key.
struct ClientKey {
    encoding: EncodingKey,
    algorithm: Algorithm,
    jwk: Value,
}

impl ClientKey {
    fn new(file: &str, algorithm: Algorithm) -> Self {
        JwtKey::from_jwk("{}").ok(); // installs jsonwebtoken's crypto backend
        let pem = pem(file);
        let encoding = match algorithm {
            Algorithm::ES256 => EncodingKey::from_ec_pem(&pem).unwrap(),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem).unwrap(),
            _ => EncodingKey::from_rsa_pem(&pem).unwrap(),
        };
        let jwk =
            serde_json::to_value(Jwk::from_encoding_key(&encoding, algorithm).unwrap()).unwrap();
        Self {
            encoding,
            algorithm,
            jwk,
        }
    }

    fn ec() -> Self {
        Self::new("ec.pem", Algorithm::ES256)
    }

    /// RFC 7638: the required members in lexicographic order, SHA-256, base64url.
    fn thumbprint(&self) -> String {
        let jwk = &self.jwk;
        let members = match jwk["kty"].as_str().unwrap() {
            "EC" => json!({"crv": jwk["crv"], "kty": "EC", "x": jwk["x"], "y": jwk["y"]}),
            "OKP" => json!({"crv": jwk["crv"], "kty": "OKP", "x": jwk["x"]}),
            _ => json!({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}),
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(serde_json::to_vec(&members).unwrap()))
    }

    fn header(&self) -> Value {
        json!({
            "typ": "dpop+jwt",
            "alg": format!("{:?}", self.algorithm),
            "jwk": self.jwk,
        })
    }

    /// A proof with `header` and `claims`, signed by this key.
    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap())
        );
        let signature =
            jsonwebtoken::crypto::sign(input.as_bytes(), &self.encoding, self.algorithm).unwrap();
        format!("{input}.{signature}")
    }

    fn proof(&self, claims: &Value) -> String {
        self.sign(&self.header(), claims)
    }
}

fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

fn claims(token: &str, jti: &str) -> Value {
    json!({"jti": jti, "htm": "POST", "htu": HTU, "iat": NOW, "ath": ath(token)})
}

fn config() -> JwtConfig {
    let secret = Secret::from_utf8("a-jwt-signing-key-of-32-bytes!!!").unwrap();
    JwtConfig::builder()
        .key("k1", JwtKey::hmac(JwtAlgorithm::HS256, &secret).unwrap())
        .issuer("https://api.example.com")
        .audience("tools")
        .clock(FixedClock::at_unix(NOW))
        .build()
        .unwrap()
}

fn mint(request: TokenRequest) -> String {
    TokenIssuer::new(config())
        .issue(request)
        .unwrap()
        .access_token
}

fn bound_token(key: &ClientKey) -> String {
    mint(
        TokenRequest::new(
            "agent-7",
            Scopes::from_iter(["tools:call"]),
            Duration::from_secs(300),
        )
        .dpop_key(key.thumbprint()),
    )
}

fn unbound_token() -> String {
    mint(TokenRequest::new(
        "agent-7",
        Scopes::from_iter(["tools:call"]),
        Duration::from_secs(300),
    ))
}

fn dpop() -> callguard::dpop::DpopBuilder {
    Dpop::builder(MemoryReplayStore::new(1_000))
        .public_url(PUBLIC_URL)
        .clock(FixedClock::at_unix(NOW))
}

type Guarded =
    tower::util::BoxCloneService<Request<Full<Bytes>>, Response<Full<Bytes>>, Infallible>;

/// A guard with `dpop` in front of a service answering the confirmed key's thumbprint.
fn guard(dpop: Dpop) -> Guarded {
    let inner = service_fn(|request: Request<GuardedBody<Full<Bytes>>>| async move {
        let caller = request.extensions().get::<Caller>().unwrap();
        let jkt = caller
            .confirmation()
            .map(Confirmation::thumbprint)
            .unwrap_or("none")
            .to_owned();
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(jkt))))
    });
    tower::util::BoxCloneService::new(
        GuardLayer::new(JwtVerifier::new(config()).dpop(dpop)).layer(inner),
    )
}

fn request(
    method: &str,
    path: &str,
    authorization: &str,
    proof: Option<&str>,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", authorization);
    if let Some(proof) = proof {
        builder = builder.header("dpop", proof);
    }
    builder.body(Full::new(Bytes::new())).unwrap()
}

async fn call(service: &mut Guarded, request: Request<Full<Bytes>>) -> Response<Full<Bytes>> {
    service.ready().await.unwrap().call(request).await.unwrap()
}

async fn body(response: Response<Full<Bytes>>) -> String {
    use http_body_util::BodyExt as _;
    String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
}

fn kind(response: &Response<Full<Bytes>>) -> Option<AuthErrorKind> {
    response
        .extensions()
        .get::<AuthError>()
        .map(AuthError::kind)
}

fn challenges(response: &Response<Full<Bytes>>) -> Vec<String> {
    response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_bound_token_with_a_proof_by_its_key_is_accepted_and_names_the_key() {
    for (file, algorithm) in [
        ("ec.pem", Algorithm::ES256),
        ("ed.pem", Algorithm::EdDSA),
        ("rsa-a.pem", Algorithm::RS256),
        ("rsa-a.pem", Algorithm::PS256),
    ] {
        let key = ClientKey::new(file, algorithm);
        let token = bound_token(&key);
        let mut service = guard(dpop().build().unwrap());
        let proof = key.proof(&claims(&token, "jti-1"));
        let response = call(
            &mut service,
            request(
                "POST",
                "/tools/echo",
                &format!("DPoP {token}"),
                Some(&proof),
            ),
        )
        .await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{algorithm:?}: {:?}",
            kind(&response)
        );
        assert_eq!(body(response).await, key.thumbprint());
    }
}

#[tokio::test]
async fn a_bound_token_presented_as_bearer_is_refused_with_a_dpop_challenge() {
    let key = ClientKey::ec();
    let token = bound_token(&key);
    let mut service = guard(dpop().build().unwrap());
    let proof = key.proof(&claims(&token, "jti-1"));
    let response = call(
        &mut service,
        request(
            "POST",
            "/tools/echo",
            &format!("Bearer {token}"),
            Some(&proof),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(kind(&response), Some(AuthErrorKind::UnprovenKeyBinding));
    let challenges = challenges(&response);
    assert!(
        challenges
            .iter()
            .any(|c| c.starts_with("DPoP ") && c.contains("algs=\"ES256 ES384 EdDSA PS256 RS256\"")),
        "{challenges:?}"
    );
    assert!(
        challenges.iter().any(|c| c.starts_with("Bearer ")),
        "{challenges:?}"
    );
}

#[tokio::test]
async fn every_broken_proof_is_refused_as_an_invalid_dpop_proof() {
    let key = ClientKey::ec();
    let other = ClientKey::new("rsa-a.pem", Algorithm::RS256);
    let token = bound_token(&key);
    let good = claims(&token, "jti-1");
    let with = |name: &str, value: Value| {
        let mut claims = good.clone();
        claims[name] = value;
        claims
    };
    let without = |name: &str| {
        let mut claims = good.clone();
        claims.as_object_mut().unwrap().remove(name);
        claims
    };
    let header_with = |name: &str, value: Value| {
        let mut header = key.header();
        header[name] = value;
        header
    };
    let mut private_jwk = key.jwk.clone();
    private_jwk["d"] = json!("AAAA");
    let hs256 = {
        let header =
            json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&good).unwrap())
        );
        let signature = jsonwebtoken::crypto::sign(
            input.as_bytes(),
            &EncodingKey::from_secret(b"secret"),
            Algorithm::HS256,
        )
        .unwrap();
        format!("{input}.{signature}")
    };
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"typ":"dpop+jwt","alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&good).unwrap())
    );
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no proof", None, "/tools/echo"),
        (
            "wrong htm",
            Some(key.proof(&with("htm", json!("GET")))),
            "/tools/echo",
        ),
        (
            "other path",
            Some(key.proof(&with("htu", json!("https://api.example.com/tools/other")))),
            "/tools/echo",
        ),
        (
            "other host",
            Some(key.proof(&with("htu", json!("https://evil.example.com/tools/echo")))),
            "/tools/echo",
        ),
        (
            "request to another path",
            Some(key.proof(&good)),
            "/tools/other",
        ),
        (
            "stale iat",
            Some(key.proof(&with("iat", json!(NOW - 61)))),
            "/tools/echo",
        ),
        (
            "future iat",
            Some(key.proof(&with("iat", json!(NOW + 6)))),
            "/tools/echo",
        ),
        (
            "missing ath",
            Some(key.proof(&without("ath"))),
            "/tools/echo",
        ),
        (
            "wrong ath",
            Some(key.proof(&with("ath", json!(ath("another-token"))))),
            "/tools/echo",
        ),
        (
            "missing jti",
            Some(key.proof(&without("jti"))),
            "/tools/echo",
        ),
        ("another key", Some(other.proof(&good)), "/tools/echo"),
        (
            "typ JWT",
            Some(key.sign(&header_with("typ", json!("JWT")), &good)),
            "/tools/echo",
        ),
        ("HMAC", Some(hs256), "/tools/echo"),
        ("none", Some(none), "/tools/echo"),
        (
            "private key in jwk",
            Some(key.sign(&header_with("jwk", private_jwk), &good)),
            "/tools/echo",
        ),
        (
            "alg not allowed",
            Some(key.sign(&header_with("alg", json!("ES384")), &good)),
            "/tools/echo",
        ),
        (
            "signed by another key than it names",
            Some(other.sign(&key.header(), &good)),
            "/tools/echo",
        ),
        ("not a JWS", Some("not.a.jws".to_owned()), "/tools/echo"),
    ];
    for (case, proof, path) in cases {
        let mut service = guard(dpop().build().unwrap());
        let response = call(
            &mut service,
            request("POST", path, &format!("DPoP {token}"), proof.as_deref()),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{case}");
        assert_eq!(
            kind(&response),
            Some(AuthErrorKind::InvalidDpopProof),
            "{case}"
        );
        let challenges = challenges(&response);
        assert!(
            challenges
                .iter()
                .any(|c| c.starts_with("DPoP ") && c.contains("error=\"invalid_dpop_proof\"")),
            "{case}: {challenges:?}"
        );
    }
}

#[tokio::test]
async fn two_proof_headers_are_refused() {
    let key = ClientKey::ec();
    let token = bound_token(&key);
    let mut service = guard(dpop().build().unwrap());
    let mut request = request(
        "POST",
        "/tools/echo",
        &format!("DPoP {token}"),
        Some(&key.proof(&claims(&token, "jti-1"))),
    );
    let second = key.proof(&claims(&token, "jti-2")).parse().unwrap();
    request.headers_mut().append("dpop", second);
    let response = call(&mut service, request).await;
    assert_eq!(kind(&response), Some(AuthErrorKind::InvalidDpopProof));
}

#[tokio::test]
async fn a_proof_is_accepted_once() {
    let key = ClientKey::ec();
    let token = bound_token(&key);
    let mut service = guard(dpop().build().unwrap());
    let proof = key.proof(&claims(&token, "jti-once"));
    let authorization = format!("DPoP {token}");
    let first = call(
        &mut service,
        request("POST", "/tools/echo", &authorization, Some(&proof)),
    )
    .await;
    assert_eq!(first.status(), StatusCode::OK);
    let again = call(
        &mut service,
        request("POST", "/tools/echo", &authorization, Some(&proof)),
    )
    .await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(kind(&again), Some(AuthErrorKind::InvalidDpopProof));
    let fresh = key.proof(&claims(&token, "jti-next"));
    let next = call(
        &mut service,
        request("POST", "/tools/echo", &authorization, Some(&fresh)),
    )
    .await;
    assert_eq!(next.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_unbound_token_under_dpop_is_refused_unless_allowed() {
    let key = ClientKey::ec();
    let token = unbound_token();
    let proof = key.proof(&claims(&token, "jti-1"));
    let authorization = format!("DPoP {token}");
    let mut strict = guard(dpop().build().unwrap());
    let refused = call(
        &mut strict,
        request("POST", "/tools/echo", &authorization, Some(&proof)),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(kind(&refused), Some(AuthErrorKind::InvalidClaims));
    let mut lenient = guard(dpop().allow_unbound_tokens().build().unwrap());
    let accepted = call(
        &mut lenient,
        request("POST", "/tools/echo", &authorization, Some(&proof)),
    )
    .await;
    assert_eq!(accepted.status(), StatusCode::OK);
    assert_eq!(body(accepted).await, key.thumbprint());
    // Without DPoP required, the unbound token still works as a bearer token.
    let bearer = call(
        &mut strict,
        request("POST", "/tools/echo", &format!("Bearer {token}"), None),
    )
    .await;
    assert_eq!(bearer.status(), StatusCode::OK);
    assert_eq!(body(bearer).await, "none");
}

#[tokio::test]
async fn required_dpop_refuses_every_bearer_token_and_challenges_with_dpop_alone() {
    let mut service = guard(dpop().required().build().unwrap());
    let response = call(
        &mut service,
        request(
            "POST",
            "/tools/echo",
            &format!("Bearer {}", unbound_token()),
            None,
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(kind(&response), Some(AuthErrorKind::UnprovenKeyBinding));
    let challenges = challenges(&response);
    assert_eq!(challenges.len(), 1, "{challenges:?}");
    assert!(challenges[0].starts_with("DPoP realm="), "{challenges:?}");
}

#[tokio::test]
async fn server_nonces_are_asked_for_handed_out_and_checked() {
    let key = ClientKey::ec();
    let token = bound_token(&key);
    let nonce_secret = || Secret::from_utf8("a-dpop-nonce-secret-of-32-bytes!").unwrap();
    let mut service = guard(dpop().nonce_secret(nonce_secret()).build().unwrap());
    let authorization = format!("DPoP {token}");
    // Without a nonce: 401 use_dpop_nonce, with one to retry with.
    let asked = call(
        &mut service,
        request(
            "POST",
            "/tools/echo",
            &authorization,
            Some(&key.proof(&claims(&token, "jti-1"))),
        ),
    )
    .await;
    assert_eq!(asked.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(kind(&asked), Some(AuthErrorKind::DpopNonceRequired));
    assert!(
        challenges(&asked)
            .iter()
            .any(|c| c.starts_with("DPoP ") && c.contains("error=\"use_dpop_nonce\"")),
        "{:?}",
        challenges(&asked)
    );
    let nonce = asked.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    // With it: accepted, and the answer carries a nonce for next time.
    let mut with_nonce = claims(&token, "jti-2");
    with_nonce["nonce"] = json!(nonce);
    let accepted = call(
        &mut service,
        request(
            "POST",
            "/tools/echo",
            &authorization,
            Some(&key.proof(&with_nonce)),
        ),
    )
    .await;
    assert_eq!(accepted.status(), StatusCode::OK, "{:?}", kind(&accepted));
    assert!(accepted.headers().contains_key("dpop-nonce"));
    // A replica with the same secret accepts it too, without shared state.
    let mut replica = guard(dpop().nonce_secret(nonce_secret()).build().unwrap());
    let mut on_replica = claims(&token, "jti-3");
    on_replica["nonce"] = json!(nonce);
    let response = call(
        &mut replica,
        request(
            "POST",
            "/tools/echo",
            &authorization,
            Some(&key.proof(&on_replica)),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    // A made-up nonce: asked again.
    let mut made_up = claims(&token, "jti-4");
    made_up["nonce"] = json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let refused = call(
        &mut service,
        request(
            "POST",
            "/tools/echo",
            &authorization,
            Some(&key.proof(&made_up)),
        ),
    )
    .await;
    assert_eq!(kind(&refused), Some(AuthErrorKind::DpopNonceRequired));
}

#[tokio::test]
async fn a_token_endpoint_binds_a_token_to_the_proof_it_was_shown() {
    let key = ClientKey::ec();
    let dpop = dpop().build().unwrap();
    let endpoint_proof = key.proof(&json!({
        "jti": "token-request-1",
        "htm": "POST",
        "htu": "https://api.example.com/token",
        "iat": NOW,
    }));
    let (parts, ()) = Request::builder()
        .method("POST")
        .uri("/token")
        .header("dpop", &endpoint_proof)
        .body(())
        .unwrap()
        .into_parts();
    let jkt = dpop.verify_token_request(&parts).await.unwrap();
    assert_eq!(jkt, key.thumbprint());
    // Its jti is spent.
    let again = dpop.verify_token_request(&parts).await.unwrap_err();
    assert_eq!(again.kind(), AuthErrorKind::InvalidDpopProof);
    let token =
        mint(TokenRequest::new("agent-7", Scopes::empty(), Duration::from_secs(60)).dpop_key(jkt));
    let mut service = guard(dpop);
    let response = call(
        &mut service,
        request(
            "POST",
            "/tools/echo",
            &format!("DPoP {token}"),
            Some(&key.proof(&claims(&token, "jti-1"))),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[test]
fn bad_configurations_are_refused_when_built() {
    let invalid = |result: Result<Dpop, ConfigError>| result.unwrap_err().to_string();
    assert!(
        invalid(
            dpop()
                .algorithms([JwtAlgorithm::ES256, JwtAlgorithm::HS256])
                .build()
        )
        .contains("dpop algorithms")
    );
    assert!(invalid(dpop().algorithms([]).build()).contains("dpop algorithms"));
    assert!(invalid(Dpop::builder(MemoryReplayStore::new(10)).build()).contains("public_url"));
    assert!(invalid(dpop().required().allow_unbound_tokens().build()).contains("unbound"));
    assert!(invalid(dpop().public_url("ftp://x").build()).contains("ftp://x"));
    assert!(
        invalid(
            dpop()
                .nonce_secret(Secret::from_utf8("short-secret-123").unwrap())
                .build()
        )
        .contains("nonce")
    );
    assert!(invalid(dpop().max_age(Duration::ZERO).build()).contains("max_age"));
}

/// A store that counts what it is asked, answering as the in-memory store does.
#[derive(Clone, Default)]
struct CountingStore {
    inner: MemoryReplayStore,
    calls: std::sync::Arc<std::sync::Mutex<Vec<&'static str>>>,
}

impl callguard::replay::ReplayStore for CountingStore {
    fn first_seen(
        &self,
        key: callguard::replay::ReplayKey,
        record: callguard::replay::RecordId,
        window: Duration,
    ) -> callguard::replay::StoreFuture {
        self.calls.lock().unwrap().push("first_seen");
        self.inner.first_seen(key, record, window)
    }

    fn contains(&self, key: callguard::replay::ReplayKey) -> callguard::replay::StoreFuture {
        self.calls.lock().unwrap().push("contains");
        self.inner.contains(key)
    }

    fn release(
        &self,
        key: callguard::replay::ReplayKey,
        record: callguard::replay::RecordId,
    ) -> callguard::replay::StoreFuture {
        self.calls.lock().unwrap().push("release");
        self.inner.release(key, record)
    }
}

#[tokio::test]
async fn an_accepted_dpop_request_costs_one_set_nx_and_no_other_store_call() {
    let store = CountingStore::default();
    let dpop = Dpop::builder(store.clone())
        .public_url(PUBLIC_URL)
        .clock(FixedClock::at_unix(NOW))
        .build()
        .unwrap();
    let key = ClientKey::ec();
    let token = bound_token(&key);
    let mut service = guard(dpop);
    let authorization = format!("DPoP {token}");
    for jti in ["a", "b", "c"] {
        let proof = key.proof(&claims(&token, jti));
        let response = call(
            &mut service,
            request("POST", "/tools/echo", &authorization, Some(&proof)),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    // A refused proof (bad htm) never reaches the store.
    let mut bad = claims(&token, "d");
    bad["htm"] = json!("GET");
    let response = call(
        &mut service,
        request(
            "POST",
            "/tools/echo",
            &authorization,
            Some(&key.proof(&bad)),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(*store.calls.lock().unwrap(), ["first_seen"; 3]);
}

/// Security review: a token bound to a DPoP key and to a certificate needs both proofs; a
/// verifier that checks no certificate refuses it whatever proof comes with it.
#[cfg(feature = "mtls")]
mod both_bindings {
    use super::*;
    use callguard::mtls::{
        CertificateBinding, CertificateThumbprint, ClientCertificate, ClientCertificateLayer,
    };

    const CERTIFICATE: &[u8] = b"0\x82 the client's certificate";

    fn guard_with(dpop: Dpop, binding: Option<CertificateBinding>) -> Guarded {
        let inner = service_fn(|_request: Request<GuardedBody<Full<Bytes>>>| async move {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        });
        let verifier = JwtVerifier::new(config()).dpop(dpop);
        let verifier = match binding {
            Some(binding) => verifier.certificate_binding(binding),
            None => verifier,
        };
        tower::util::BoxCloneService::new(
            ClientCertificateLayer::from_connection().layer(GuardLayer::new(verifier).layer(inner)),
        )
    }

    fn with_certificate(
        mut request: Request<Full<Bytes>>,
        certificate: bool,
    ) -> Request<Full<Bytes>> {
        if certificate {
            request
                .extensions_mut()
                .insert(ClientCertificate(Bytes::from_static(CERTIFICATE)));
        }
        request
    }

    #[tokio::test]
    async fn a_token_bound_to_a_key_and_a_certificate_needs_both() {
        let key = ClientKey::ec();
        let token = mint(
            TokenRequest::new("agent-7", Scopes::empty(), Duration::from_secs(300))
                .dpop_key(key.thumbprint())
                .certificate_bound(CertificateThumbprint::of_der(CERTIFICATE).to_base64url()),
        );
        let authorization = format!("DPoP {token}");
        for (binding, certificate, expected) in [
            (Some(CertificateBinding::WhenBound), true, StatusCode::OK),
            (
                Some(CertificateBinding::WhenBound),
                false,
                StatusCode::UNAUTHORIZED,
            ),
            (
                Some(CertificateBinding::Required),
                false,
                StatusCode::UNAUTHORIZED,
            ),
            (None, true, StatusCode::UNAUTHORIZED),
        ] {
            let mut service = guard_with(dpop().build().unwrap(), binding);
            let proof = key.proof(&claims(&token, "jti-1"));
            let request = with_certificate(
                request("POST", "/tools/echo", &authorization, Some(&proof)),
                certificate,
            );
            let response = call(&mut service, request).await;
            assert_eq!(
                response.status(),
                expected,
                "{binding:?} certificate {certificate}"
            );
        }
    }

    #[tokio::test]
    async fn required_certificate_binding_holds_under_the_dpop_scheme_too() {
        let key = ClientKey::ec();
        for token in [bound_token(&key), unbound_token()] {
            let mut service = guard_with(
                dpop().allow_unbound_tokens().build().unwrap(),
                Some(CertificateBinding::Required),
            );
            let proof = key.proof(&claims(&token, "jti-1"));
            let request = with_certificate(
                request(
                    "POST",
                    "/tools/echo",
                    &format!("DPoP {token}"),
                    Some(&proof),
                ),
                true,
            );
            let response = call(&mut service, request).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(kind(&response), Some(AuthErrorKind::UnprovenKeyBinding));
        }
    }
}

/// Security review: a request path with dot segments is not the path a proof names once
/// normalised (the application routes on the raw path), and an `htu` with a backslash or
/// whitespace names no URI.
#[tokio::test]
async fn dot_segments_in_the_request_path_and_odd_characters_in_htu_are_refused() {
    let key = ClientKey::ec();
    let token = bound_token(&key);
    let authorization = format!("DPoP {token}");
    let mut service = guard(dpop().build().unwrap());
    for path in ["/x/../tools/echo", "/tools/./echo", "/x/%2e%2E/tools/echo"] {
        let response = call(
            &mut service,
            request(
                "POST",
                path,
                &authorization,
                Some(&key.proof(&claims(&token, path))),
            ),
        )
        .await;
        assert_eq!(
            kind(&response),
            Some(AuthErrorKind::InvalidDpopProof),
            "{path}"
        );
    }
    for htu in [
        "https://api.example.com\\tools/echo",
        "https://api.example.com/tools/echo\t",
        "https://api.example.com/tools/%2e%2e/tools/echo",
    ] {
        let mut odd = claims(&token, htu);
        odd["htu"] = json!(htu);
        let response = call(
            &mut service,
            request(
                "POST",
                "/tools/echo",
                &authorization,
                Some(&key.proof(&odd)),
            ),
        )
        .await;
        assert_eq!(
            kind(&response),
            Some(AuthErrorKind::InvalidDpopProof),
            "{htu:?}"
        );
    }
}

#[tokio::test]
async fn a_dpop_nonce_the_service_set_stands_and_others_get_a_fresh_one() {
    let key = ClientKey::ec();
    let token = bound_token(&key);
    let nonce_secret = Secret::from_utf8("a-dpop-nonce-secret-of-32-bytes!").unwrap();
    let dpop = dpop().nonce_secret(nonce_secret).build().unwrap();
    // A service that hands out nonces of its own on one route.
    let inner = service_fn(|request: Request<GuardedBody<Full<Bytes>>>| async move {
        let mut response = Response::new(Full::new(Bytes::new()));
        if request.uri().path() == "/tools/own-nonce" {
            response.headers_mut().insert(
                "dpop-nonce",
                http::HeaderValue::from_static("the-services-own"),
            );
        }
        Ok::<_, Infallible>(response)
    });
    let mut service = tower::util::BoxCloneService::new(
        GuardLayer::new(JwtVerifier::new(config()).dpop(dpop)).layer(inner),
    );
    let authorization = format!("DPoP {token}");
    let asked = call(
        &mut service,
        request(
            "POST",
            "/tools/echo",
            &authorization,
            Some(&key.proof(&claims(&token, "n-1"))),
        ),
    )
    .await;
    let nonce = asked.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let proof_for = |path: &str, jti: &str| {
        let mut with_nonce = claims(&token, jti);
        with_nonce["htu"] = json!(format!("{PUBLIC_URL}{path}"));
        with_nonce["nonce"] = json!(nonce);
        key.proof(&with_nonce)
    };
    let own = call(
        &mut service,
        request(
            "POST",
            "/tools/own-nonce",
            &authorization,
            Some(&proof_for("/tools/own-nonce", "n-2")),
        ),
    )
    .await;
    assert_eq!(own.status(), StatusCode::OK, "{:?}", kind(&own));
    let values: Vec<_> = own.headers().get_all("dpop-nonce").iter().collect();
    assert_eq!(values, ["the-services-own"], "the service's nonce, alone");
    let theirs = call(
        &mut service,
        request(
            "POST",
            "/tools/echo",
            &authorization,
            Some(&proof_for("/tools/echo", "n-3")),
        ),
    )
    .await;
    assert_eq!(theirs.status(), StatusCode::OK, "{:?}", kind(&theirs));
    let fresh = theirs.headers()["dpop-nonce"].to_str().unwrap();
    assert!(!fresh.is_empty() && fresh != "the-services-own");
}
