//! External issuers in-process: access tokens verified with keys an issuer publishes, served
//! by a fake JWKS endpoint that counts its fetches (the real authorization server, node
//! `oidc-provider`, drives the example server in `tests/oauth/`).

#![cfg(feature = "oauth")]
#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use callguard::keys::{FetchError, HttpClient, HttpFuture, RemoteKeySettings, RemoteKeys};
use callguard::oauth::{AccessTokens, Issuer};
use callguard::{AuthError, AuthErrorKind, AuthMethod, Caller, GuardLayer};
use common::{Seen, echo};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tower::{Layer, ServiceExt, service_fn};

const ISSUER: &str = "https://as.example.com";
const OTHER_ISSUER: &str = "https://other.example.com";
const RESOURCE: &str = "https://api.example.com/mcp";
const JWKS_URL: &str = "https://as.example.com/jwks";

fn pem(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/oauth/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A signing key of the test issuer and its public JWK.
struct SigningKey {
    kid: &'static str,
    algorithm: Algorithm,
    encoding: EncodingKey,
}

impl SigningKey {
    fn new(kid: &'static str, algorithm: Algorithm, file: &str) -> Self {
        // This test's own jsonwebtoken calls need its crypto backend: building any callguard
        // key installs it.
        let _ = callguard::jwt::JwtKey::from_jwk("{}");
        let private = pem(file);
        let encoding = match algorithm {
            Algorithm::ES256 => EncodingKey::from_ec_pem(&private),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(&private),
            _ => EncodingKey::from_rsa_pem(&private),
        }
        .unwrap();
        Self {
            kid,
            algorithm,
            encoding,
        }
    }

    fn jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.encoding, self.algorithm).unwrap();
        jwk.common.key_id = Some(self.kid.to_owned());
        jwk
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_with(claims, |_| {})
    }

    fn sign_with(&self, claims: &Value, edit: impl FnOnce(&mut Header)) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.to_owned());
        header.typ = Some("at+jwt".to_owned());
        edit(&mut header);
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": RESOURCE,
        "sub": "client-7",
        "client_id": "client-7",
        "exp": now() + 300,
        "iat": now(),
        "jti": "at-1",
        "scope": "mcp:call refunds:read",
    })
}

/// How the fake endpoint answers.
#[derive(Clone)]
enum Answer {
    Keys(String),
    Oversize,
    NotJson,
    Redirect,
    Down,
}

/// A JWKS endpoint that counts fetches and answers as told, after `delay`.
struct FakeJwks {
    answer: Mutex<Answer>,
    fetches: AtomicUsize,
    delay: Duration,
}

impl FakeJwks {
    fn new(keys: &[&SigningKey], delay: Duration) -> Arc<Self> {
        let fake = Arc::new(Self {
            answer: Mutex::new(Answer::Down),
            fetches: AtomicUsize::new(0),
            delay,
        });
        fake.publish(keys);
        fake
    }

    fn publish(&self, keys: &[&SigningKey]) {
        let set = JwkSet {
            keys: keys.iter().map(|k| k.jwk()).collect(),
        };
        *self.answer.lock().unwrap() = Answer::Keys(serde_json::to_string(&set).unwrap());
    }

    fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl HttpClient for FakeJwks {
    fn send(&self, request: Request<Bytes>, max_body: usize, _timeout: Duration) -> HttpFuture {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        assert_eq!(request.uri(), JWKS_URL);
        let answer = self.answer.lock().unwrap().clone();
        let delay = self.delay;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            let response = |status: StatusCode, body: Vec<u8>| {
                Response::builder()
                    .status(status)
                    .header("cache-control", "max-age=3600")
                    .body(Bytes::from(body))
                    .unwrap()
            };
            match answer {
                Answer::Keys(text) => Ok(response(StatusCode::OK, text.into_bytes())),
                Answer::Oversize if max_body < 1 << 20 => {
                    Err(FetchError::TooLarge { limit: max_body })
                }
                Answer::Oversize => Ok(response(StatusCode::OK, vec![b' '; 1 << 20])),
                Answer::NotJson => Ok(response(StatusCode::OK, b"<html>".to_vec())),
                Answer::Redirect => Ok(response(StatusCode::FOUND, Vec::new())),
                Answer::Down => Err(FetchError::Connect("connection refused".into())),
            }
        })
    }
}

async fn remote(
    fake: &Arc<FakeJwks>,
    settings: RemoteKeySettings,
) -> RemoteKeys<callguard::jwt::JwtKeySet> {
    RemoteKeys::fetch(JWKS_URL, Arc::clone(fake) as Arc<dyn HttpClient>, settings)
        .await
        .unwrap()
}

/// A key set configured by hand, holding `key`'s public JWK.
fn fixed_set(key: &SigningKey) -> callguard::jwt::JwtKeySet {
    let text = serde_json::to_string(&JwkSet {
        keys: vec![key.jwk()],
    })
    .unwrap();
    callguard::jwt::JwtKeySet::from_json(text.as_bytes(), 8).unwrap()
}

fn guard(keys: RemoteKeys<callguard::jwt::JwtKeySet>) -> GuardLayer {
    let issuer = Issuer::builder(ISSUER)
        .remote_keys(keys)
        .audience(RESOURCE)
        .build()
        .unwrap();
    AccessTokens::new([issuer]).unwrap().layer()
}

async fn present(
    guard: &GuardLayer,
    token: &str,
) -> (StatusCode, Option<AuthErrorKind>, Option<Caller>) {
    let request = Request::post("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
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
            .and_then(|seen| seen.caller.clone()),
    )
}

#[tokio::test]
async fn a_token_signed_by_a_published_key_is_accepted_with_its_scopes() {
    let rsa = SigningKey::new("rsa-a", Algorithm::RS256, "rsa-a.pem");
    let ec = SigningKey::new("ec", Algorithm::ES256, "ec.pem");
    let ed = SigningKey::new("ed", Algorithm::EdDSA, "ed.pem");
    let fake = FakeJwks::new(&[&rsa, &ec, &ed], Duration::ZERO);
    let guard = guard(remote(&fake, RemoteKeySettings::default()).await);
    for key in [&rsa, &ec, &ed] {
        let (status, _, caller) = present(&guard, &key.sign(&claims())).await;
        assert_eq!(status, StatusCode::OK, "{}", key.kid);
        let caller = caller.unwrap();
        assert_eq!(caller.method(), AuthMethod::OAuth);
        assert_eq!(caller.id(), "client-7");
        assert_eq!(caller.issuer(), Some(ISSUER));
        assert_eq!(caller.client_id(), Some("client-7"));
        assert_eq!(caller.key_id(), Some(key.kid));
        assert_eq!(
            caller.scopes().iter().collect::<Vec<_>>(),
            ["mcp:call", "refunds:read"]
        );
    }
    assert_eq!(
        fake.fetches(),
        1,
        "no fetch on the request path in steady state"
    );
}

#[tokio::test]
async fn tokens_that_must_not_pass_are_refused() {
    let rsa = SigningKey::new("rsa-a", Algorithm::RS256, "rsa-a.pem");
    let unpublished = SigningKey::new("rsa-a", Algorithm::RS256, "rsa-other.pem");
    let fake = FakeJwks::new(&[&rsa], Duration::ZERO);
    let guard = guard(remote(&fake, RemoteKeySettings::default()).await);
    let with = |change: Value| {
        let mut claims = claims();
        claims
            .as_object_mut()
            .unwrap()
            .extend(change.as_object().unwrap().clone());
        claims
    };
    let public_pem = pem("rsa-a.pub.pem");
    let confused = jsonwebtoken::encode(
        &{
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some("rsa-a".into());
            header.typ = Some("at+jwt".into());
            header
        },
        &claims(),
        &EncodingKey::from_secret(&public_pem),
    )
    .unwrap();
    let unsigned = {
        let good = rsa.sign(&claims());
        let payload = good.split('.').nth(1).unwrap().to_owned();
        let header = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            r#"{"alg":"none","typ":"at+jwt","kid":"rsa-a"}"#,
        );
        format!("{header}.{payload}.")
    };
    let cases = [
        (
            "wrong audience",
            rsa.sign(&with(json!({"aud": "https://elsewhere.example.com"}))),
        ),
        ("expired", rsa.sign(&with(json!({"exp": now() - 120})))),
        (
            "another issuer",
            rsa.sign(&with(json!({"iss": OTHER_ISSUER}))),
        ),
        ("a key not in the set", unpublished.sign(&claims())),
        (
            "typ JWT",
            rsa.sign_with(&claims(), |h| h.typ = Some("JWT".into())),
        ),
        ("no typ", rsa.sign_with(&claims(), |h| h.typ = None)),
        ("HS256 with the RSA public key", confused),
        ("alg none", unsigned),
        (
            "no exp",
            rsa.sign(&{
                let mut c = claims();
                c.as_object_mut().unwrap().remove("exp");
                c
            }),
        ),
    ];
    for (case, token) in cases {
        let (status, kind, _) = present(&guard, &token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {kind:?}");
    }
}

#[tokio::test]
async fn typ_jwt_passes_only_with_the_switch() {
    let rsa = SigningKey::new("rsa-a", Algorithm::RS256, "rsa-a.pem");
    let fake = FakeJwks::new(&[&rsa], Duration::ZERO);
    let issuer = Issuer::builder(ISSUER)
        .remote_keys(remote(&fake, RemoteKeySettings::default()).await)
        .audience(RESOURCE)
        .allow_jwt_typ()
        .build()
        .unwrap();
    let guard = AccessTokens::new([issuer]).unwrap().layer();
    let token = rsa.sign_with(&claims(), |h| h.typ = Some("JWT".into()));
    assert_eq!(present(&guard, &token).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_rotated_key_is_accepted_on_first_use_after_one_fetch() {
    let old = SigningKey::new("rsa-a", Algorithm::RS256, "rsa-a.pem");
    let new = SigningKey::new("rsa-b", Algorithm::RS256, "rsa-b.pem");
    let fake = FakeJwks::new(&[&old], Duration::ZERO);
    let guard = guard(remote(&fake, RemoteKeySettings::default()).await);
    assert_eq!(
        present(&guard, &old.sign(&claims())).await.0,
        StatusCode::OK
    );
    fake.publish(&[&old, &new]);
    assert_eq!(
        present(&guard, &new.sign(&claims())).await.0,
        StatusCode::OK
    );
    assert_eq!(fake.fetches(), 2);
    assert_eq!(
        present(&guard, &new.sign(&claims())).await.0,
        StatusCode::OK
    );
    assert_eq!(fake.fetches(), 2, "the new key is held now");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_with_a_new_kid_make_one_fetch_and_all_pass() {
    let old = SigningKey::new("rsa-a", Algorithm::RS256, "rsa-a.pem");
    let new = SigningKey::new("rsa-b", Algorithm::RS256, "rsa-b.pem");
    let fake = FakeJwks::new(&[&old], Duration::from_millis(100));
    let guard = guard(remote(&fake, RemoteKeySettings::default()).await);
    fake.publish(&[&old, &new]);
    let mut tasks = Vec::new();
    for index in 0..1000 {
        let guard = guard.clone();
        let mut claims = claims();
        claims["jti"] = json!(format!("at-{index}"));
        let token = new.sign(&claims);
        tasks.push(tokio::spawn(async move { present(&guard, &token).await.0 }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(
        fake.fetches(),
        2,
        "the first fetch, then one for the new kid"
    );
}

#[tokio::test]
async fn a_flood_of_random_kids_makes_at_most_one_fetch_per_interval() {
    let key = SigningKey::new("rsa-a", Algorithm::RS256, "rsa-a.pem");
    let fake = FakeJwks::new(&[&key], Duration::ZERO);
    let guard = guard(remote(&fake, RemoteKeySettings::default()).await);
    for index in 0..200 {
        let token = key.sign_with(&claims(), |h| h.kid = Some(format!("random-{index}")));
        assert_eq!(present(&guard, &token).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        fake.fetches(),
        2,
        "the first fetch and one refetch in the interval"
    );
    assert_eq!(
        present(&guard, &key.sign(&claims())).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn bad_jwks_answers_are_refused_and_held_keys_keep_verifying() {
    let key = SigningKey::new("rsa-a", Algorithm::RS256, "rsa-a.pem");
    let settings = || RemoteKeySettings::default().refetch_interval(Duration::ZERO);
    for answer in [
        Answer::Oversize,
        Answer::NotJson,
        Answer::Redirect,
        Answer::Down,
    ] {
        let fake = FakeJwks::new(&[&key], Duration::ZERO);
        fake.answer(answer.clone());
        let first = RemoteKeys::<callguard::jwt::JwtKeySet>::fetch(
            JWKS_URL,
            Arc::clone(&fake) as Arc<dyn HttpClient>,
            settings(),
        )
        .await;
        assert!(first.is_err(), "a first fetch of a bad answer is an error");
        // With good keys held, the same bad answer on a refetch changes nothing.
        let fake = FakeJwks::new(&[&key], Duration::ZERO);
        let guard = guard(remote(&fake, settings()).await);
        fake.answer(answer);
        let unknown = key.sign_with(&claims(), |h| h.kid = Some("rotated".into()));
        assert_eq!(present(&guard, &unknown).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(
            present(&guard, &key.sign(&claims())).await.0,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn a_slow_jwks_endpoint_times_out_and_the_wait_is_bounded() {
    let key = SigningKey::new("rsa-a", Algorithm::RS256, "rsa-a.pem");
    let fake = FakeJwks::new(&[&key], Duration::from_secs(30));
    let settings = RemoteKeySettings::default().timeout(Duration::from_millis(200));
    let first = RemoteKeys::<callguard::jwt::JwtKeySet>::fetch(
        JWKS_URL,
        Arc::clone(&fake) as Arc<dyn HttpClient>,
        settings.clone(),
    )
    .await;
    let error = first.unwrap_err();
    assert_eq!(error.cause(), &FetchError::Timeout);
    assert!(error.to_string().contains(JWKS_URL), "{error}");
    // Lazy: nothing held yet, so a request waits for at most the timeout, then 503.
    let lazy =
        RemoteKeys::lazy(JWKS_URL, Arc::clone(&fake) as Arc<dyn HttpClient>, settings).unwrap();
    let (status, kind, _) = present(&guard(lazy), &key.sign(&claims())).await;
    assert_eq!(
        (status, kind),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some(AuthErrorKind::KeysUnavailable)
        )
    );
}

#[tokio::test]
async fn plain_http_is_refused_unless_loopback_is_allowed() {
    let fake = FakeJwks::new(&[], Duration::ZERO);
    let client = || Arc::clone(&fake) as Arc<dyn HttpClient>;
    let refused = RemoteKeys::<callguard::jwt::JwtKeySet>::lazy(
        "http://as.example.com/jwks",
        client(),
        RemoteKeySettings::default(),
    );
    assert!(matches!(refused, Err(FetchError::InsecureUrl(_))));
    let loopback = RemoteKeys::<callguard::jwt::JwtKeySet>::lazy(
        "http://127.0.0.1:9/jwks",
        client(),
        RemoteKeySettings::default(),
    );
    assert!(matches!(loopback, Err(FetchError::InsecureUrl(_))));
    let allowed = RemoteKeys::<callguard::jwt::JwtKeySet>::lazy(
        "http://127.0.0.1:9/jwks",
        client(),
        RemoteKeySettings::default().allow_loopback_http(),
    );
    assert!(allowed.is_ok());
}

#[tokio::test]
async fn a_token_goes_only_to_the_issuer_it_names() {
    let ours = SigningKey::new("rsa-a", Algorithm::RS256, "rsa-a.pem");
    let theirs = SigningKey::new("rsa-b", Algorithm::RS256, "rsa-b.pem");
    let set = fixed_set;
    let first = Issuer::builder(ISSUER)
        .keys(set(&ours))
        .audience(RESOURCE)
        .build()
        .unwrap();
    let second = Issuer::builder(OTHER_ISSUER)
        .keys(set(&theirs))
        .audience(RESOURCE)
        .build()
        .unwrap();
    let guard = AccessTokens::new([first, second]).unwrap().layer();
    let mut other_claims = claims();
    other_claims["iss"] = json!(OTHER_ISSUER);
    assert_eq!(
        present(&guard, &ours.sign(&claims())).await.0,
        StatusCode::OK
    );
    assert_eq!(
        present(&guard, &theirs.sign(&other_claims)).await.0,
        StatusCode::OK
    );
    // Each issuer's key only verifies tokens naming that issuer.
    assert_eq!(
        present(&guard, &theirs.sign(&claims())).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        present(&guard, &ours.sign(&other_claims)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let mut stranger = claims();
    stranger["iss"] = json!("https://stranger.example.com");
    assert_eq!(
        present(&guard, &ours.sign(&stranger)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// An introspection endpoint that counts calls and answers from a table of tokens.
struct FakeIntrospection {
    active: Vec<(&'static str, Value)>,
    calls: AtomicUsize,
    down: bool,
}

impl HttpClient for FakeIntrospection {
    fn send(&self, request: Request<Bytes>, _max_body: usize, _timeout: Duration) -> HttpFuture {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let authorized = request.headers()["authorization"]
            == format!(
                "Basic {}",
                base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    "resource-server:introspection-secret-0123"
                )
            )
            .as_str();
        let token = form_urlencoded::parse(request.body())
            .find(|(name, _)| name == "token")
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default();
        let answer = self
            .active
            .iter()
            .find(|(known, _)| *known == token)
            .map_or(json!({"active": false}), |(_, answer)| answer.clone());
        let down = self.down;
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if down {
                return Err(FetchError::Connect("connection refused".into()));
            }
            assert!(
                authorized,
                "introspection is called with the client's credentials"
            );
            Ok(Response::builder()
                .status(StatusCode::OK)
                .body(Bytes::from(answer.to_string()))
                .unwrap())
        })
    }
}

fn introspecting(fake: &Arc<FakeIntrospection>) -> GuardLayer {
    use callguard::oauth::Introspection;
    let key = SigningKey::new("rsa-a", Algorithm::RS256, "rsa-a.pem");
    let issuer = Issuer::builder(ISSUER)
        .keys(fixed_set(&key))
        .audience(RESOURCE)
        .build()
        .unwrap();
    let introspection = Introspection::builder(
        "https://as.example.com/introspect",
        "resource-server",
        callguard::Secret::from_utf8("introspection-secret-0123").unwrap(),
        Arc::clone(fake) as Arc<dyn HttpClient>,
    )
    .issuer(ISSUER)
    .audience(RESOURCE)
    .build()
    .unwrap();
    let statics = callguard::bearer::BearerTokens::builder()
        .token(
            "static",
            callguard::Secret::from_utf8("tok_static_0123456789abcdef").unwrap(),
            callguard::Scopes::empty(),
        )
        .build()
        .unwrap();
    let tokens = AccessTokens::new([issuer])
        .unwrap()
        .with_introspection(introspection);
    GuardLayer::new(callguard::Authenticator::any_of([statics.into(), tokens.into()]).unwrap())
}

fn active(scope: &str, aud: &str) -> Value {
    json!({"active": true, "iss": ISSUER, "aud": aud, "sub": "agent-9", "client_id": "opaque-agent",
           "scope": scope, "exp": now() + 300})
}

#[tokio::test]
async fn opaque_tokens_are_introspected_cached_and_refused_when_inactive() {
    let fake = Arc::new(FakeIntrospection {
        active: vec![
            ("opaque-good", active("mcp:call", RESOURCE)),
            (
                "opaque-elsewhere",
                active("mcp:call", "https://elsewhere.example.com"),
            ),
        ],
        calls: AtomicUsize::new(0),
        down: false,
    });
    let guard = introspecting(&fake);
    let (status, _, caller) = present(&guard, "opaque-good").await;
    assert_eq!(status, StatusCode::OK);
    let caller = caller.unwrap();
    assert_eq!(
        (caller.method(), caller.id(), caller.client_id()),
        (AuthMethod::OAuth, "agent-9", Some("opaque-agent"))
    );
    assert_eq!(caller.scopes().iter().collect::<Vec<_>>(), ["mcp:call"]);
    assert_eq!(present(&guard, "opaque-good").await.0, StatusCode::OK);
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        1,
        "the positive answer is cached"
    );
    assert_eq!(
        present(&guard, "opaque-unknown").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        present(&guard, "opaque-unknown").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        2,
        "the negative answer is cached briefly"
    );
    assert_eq!(
        present(&guard, "opaque-elsewhere").await.0,
        StatusCode::UNAUTHORIZED
    );
    // A static token is still a static token, and never reaches the endpoint.
    let (status, _, caller) = present(&guard, "tok_static_0123456789abcdef").await;
    assert_eq!(
        (status, caller.unwrap().method()),
        (StatusCode::OK, AuthMethod::Bearer)
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_opaque_token_make_one_call() {
    let fake = Arc::new(FakeIntrospection {
        active: vec![("opaque-good", active("mcp:call", RESOURCE))],
        calls: AtomicUsize::new(0),
        down: false,
    });
    let guard = introspecting(&fake);
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let guard = guard.clone();
            tokio::spawn(async move { present(&guard, "opaque-good").await.0 })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_endpoint_that_is_down_is_503_not_acceptance() {
    let fake = Arc::new(FakeIntrospection {
        active: vec![("opaque-good", active("mcp:call", RESOURCE))],
        calls: AtomicUsize::new(0),
        down: true,
    });
    let (status, kind, _) = present(&introspecting(&fake), "opaque-good").await;
    assert_eq!(
        (status, kind),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some(AuthErrorKind::IntrospectionUnavailable)
        )
    );
}

#[tokio::test]
async fn self_issued_and_external_jwts_each_meet_one_verifier() {
    use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier, TokenIssuer, TokenRequest};
    let key = SigningKey::new("rsa-a", Algorithm::RS256, "rsa-a.pem");
    let issuer = Issuer::builder(ISSUER)
        .keys(fixed_set(&key))
        .audience(RESOURCE)
        .build()
        .unwrap();
    let own = JwtConfig::builder()
        .key(
            "own",
            JwtKey::hmac(
                JwtAlgorithm::HS256,
                &callguard::Secret::from_utf8("own-jwt-secret-0123456789abcdef!").unwrap(),
            )
            .unwrap(),
        )
        .issuer("https://tools.example.com")
        .audience("tools")
        .build()
        .unwrap();
    let minted = TokenIssuer::new(own.clone())
        .issue(TokenRequest::new(
            "user-1",
            callguard::Scopes::from_iter(["tools:call"]),
            Duration::from_secs(60),
        ))
        .unwrap();
    let guard = GuardLayer::new(
        callguard::Authenticator::any_of([
            JwtVerifier::new(own).into(),
            AccessTokens::new([issuer]).unwrap().into(),
        ])
        .unwrap(),
    );
    let (status, _, caller) = present(&guard, &minted.access_token).await;
    assert_eq!(
        (status, caller.unwrap().method()),
        (StatusCode::OK, AuthMethod::Jwt)
    );
    let (status, _, caller) = present(&guard, &key.sign(&claims())).await;
    assert_eq!(
        (status, caller.unwrap().method()),
        (StatusCode::OK, AuthMethod::OAuth)
    );
    // An external token whose `iss` is not an external issuer's goes to the self-issued
    // verifier, which refuses it: never tried against the issuer's keys.
    let mut stranger = claims();
    stranger["iss"] = json!("https://tools.example.com");
    assert_eq!(
        present(&guard, &key.sign(&stranger)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_introspections_still_end_and_leave_room() {
    let fake = Arc::new(FakeIntrospection {
        active: vec![("opaque-good", active("mcp:call", RESOURCE))],
        calls: AtomicUsize::new(0),
        down: false,
    });
    let guard = introspecting(&fake);
    // More distinct made-up tokens than may be in flight, each request dropped before the
    // endpoint answers (a client that disconnects).
    for index in 0..(callguard::oauth::MAX_CALLS_IN_FLIGHT + 44) {
        let token = format!("made-up-{index}");
        let _ = tokio::time::timeout(Duration::from_millis(1), present(&guard, &token)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        present(&guard, "opaque-good").await.0,
        StatusCode::OK,
        "the abandoned calls ended and left the table"
    );
}

/// A token bound to a key (RFC 9449 `cnf.jkt`, RFC 8705 `cnf.x5t#S256`) is worthless
/// without proof of the key; callguard proves none yet, so a bound token is never a bearer
/// token, from a JWKS-verified JWT or from an introspection answer.
#[tokio::test]
async fn a_key_bound_token_presented_as_a_bearer_token_is_refused() {
    let rsa = SigningKey::new("rsa-a", Algorithm::RS256, "rsa-a.pem");
    let ec = SigningKey::new("ec", Algorithm::ES256, "ec.pem");
    let fake = FakeJwks::new(&[&rsa, &ec], Duration::ZERO);
    let guard = guard(remote(&fake, RemoteKeySettings::default()).await);
    for cnf in [
        json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}),
        json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}),
        json!({}),
    ] {
        for key in [&rsa, &ec] {
            let mut claims = claims();
            claims["cnf"] = cnf.clone();
            let (status, kind, _) = present(&guard, &key.sign(&claims)).await;
            assert_eq!(
                (status, kind),
                (
                    StatusCode::UNAUTHORIZED,
                    Some(AuthErrorKind::UnprovenKeyBinding)
                ),
                "{cnf}"
            );
        }
    }
    let mut bound = active("mcp:call", RESOURCE);
    bound["cnf"] = json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"});
    let introspection = Arc::new(FakeIntrospection {
        active: vec![("opaque-bound", bound)],
        calls: AtomicUsize::new(0),
        down: false,
    });
    let (status, kind, _) = present(&introspecting(&introspection), "opaque-bound").await;
    assert_eq!(
        (status, kind),
        (
            StatusCode::UNAUTHORIZED,
            Some(AuthErrorKind::UnprovenKeyBinding)
        )
    );
}

/// An introspection answer is cached for at most its cache lifetime; past it, the token is
/// introspected again (it is still active), never refused for the cache's sake.
#[tokio::test]
async fn an_active_token_is_introspected_again_when_its_cache_entry_ends() {
    use callguard::clock::FixedClock;
    use callguard::oauth::Introspection;
    let clock = FixedClock::at_unix(now());
    let mut answer = active("mcp:call", RESOURCE);
    answer["exp"] = json!(now() + 3600);
    let fake = Arc::new(FakeIntrospection {
        active: vec![("opaque-long", answer)],
        calls: AtomicUsize::new(0),
        down: false,
    });
    let introspection = Introspection::builder(
        "https://as.example.com/introspect",
        "resource-server",
        callguard::Secret::from_utf8("introspection-secret-0123").unwrap(),
        Arc::clone(&fake) as Arc<dyn HttpClient>,
    )
    .issuer(ISSUER)
    .audience(RESOURCE)
    .clock(clock.clone())
    .build()
    .unwrap();
    let key = SigningKey::new("rsa-a", Algorithm::RS256, "rsa-a.pem");
    let issuer = Issuer::builder(ISSUER)
        .keys(fixed_set(&key))
        .audience(RESOURCE)
        .build()
        .unwrap();
    let guard = AccessTokens::new([issuer])
        .unwrap()
        .with_introspection(introspection)
        .layer();
    assert_eq!(present(&guard, "opaque-long").await.0, StatusCode::OK);
    clock.advance(Duration::from_secs(301));
    assert_eq!(
        present(&guard, "opaque-long").await.0,
        StatusCode::OK,
        "the cache entry ended, the token did not"
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
    clock.advance(Duration::from_secs(3600));
    assert_eq!(
        present(&guard, "opaque-long").await.1,
        Some(AuthErrorKind::TokenExpired)
    );
}

/// An issuer that re-keys under the same `kid`: a signature that fails under a held key
/// whose set is older than the refetch interval causes one refetch (throttled like an
/// unknown `kid`), so the new key verifies in seconds rather than at the next refresh.
#[tokio::test]
async fn a_key_replaced_under_the_same_kid_is_refetched_once_per_interval() {
    let before = SigningKey::new("rsa-a", Algorithm::RS256, "rsa-a.pem");
    let after = SigningKey::new("rsa-a", Algorithm::RS256, "rsa-b.pem");
    let fake = FakeJwks::new(&[&before], Duration::ZERO);
    let settings = RemoteKeySettings::default().refetch_interval(Duration::from_millis(200));
    let guard = guard(remote(&fake, settings).await);
    fake.publish(&[&after]);
    assert_eq!(
        present(&guard, &after.sign(&claims())).await.1,
        Some(AuthErrorKind::InvalidCredentials),
        "a set fetched within the interval is not fetched again"
    );
    assert_eq!(fake.fetches(), 1);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        present(&guard, &after.sign(&claims())).await.0,
        StatusCode::OK,
        "the re-keyed kid verifies after one refetch"
    );
    assert_eq!(fake.fetches(), 2);
    // Forged signatures under the known kid cannot make it fetch more than once an interval
    // (however long the 50 checks take on a loaded machine).
    tokio::time::sleep(Duration::from_millis(250)).await;
    let started = std::time::Instant::now();
    for _ in 0..50 {
        assert_eq!(
            present(&guard, &before.sign(&claims())).await.1,
            Some(AuthErrorKind::InvalidCredentials)
        );
    }
    let intervals = usize::try_from(started.elapsed().as_millis() / 200).unwrap();
    let forged_fetches = fake.fetches() - 2;
    assert!(
        (1..=1 + intervals).contains(&forged_fetches),
        "{forged_fetches} fetches in {intervals} intervals"
    );
}

/// An authorization server's two documents, discovery and keys, which can be down.
struct FakeServer {
    keys: String,
    up: std::sync::atomic::AtomicBool,
}

impl HttpClient for FakeServer {
    fn send(&self, request: Request<Bytes>, _max_body: usize, _timeout: Duration) -> HttpFuture {
        let body = match request.uri().to_string().as_str() {
            _ if !self.up.load(Ordering::SeqCst) => None,
            "https://as.example.com/.well-known/openid-configuration" => {
                Some(json!({"issuer": ISSUER, "jwks_uri": JWKS_URL}).to_string())
            }
            JWKS_URL => Some(self.keys.clone()),
            _ => None,
        };
        Box::pin(async move {
            match body {
                Some(body) => Ok(Response::builder()
                    .status(StatusCode::OK)
                    .body(Bytes::from(body))
                    .unwrap()),
                None => Err(FetchError::Connect("connection refused".into())),
            }
        })
    }
}

#[tokio::test]
async fn an_issuer_discovered_lazily_answers_503_until_it_is_up_and_errors_name_the_url() {
    let key = SigningKey::new("rsa-a", Algorithm::RS256, "rsa-a.pem");
    let server = Arc::new(FakeServer {
        keys: serde_json::to_string(&JwkSet {
            keys: vec![key.jwk()],
        })
        .unwrap(),
        up: std::sync::atomic::AtomicBool::new(false),
    });
    let settings = RemoteKeySettings::default().refetch_interval(Duration::from_millis(100));
    let error = Issuer::discover(
        ISSUER,
        Arc::clone(&server) as Arc<dyn HttpClient>,
        settings.clone(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("https://as.example.com/.well-known/openid-configuration")
            && error.contains("https://as.example.com/.well-known/oauth-authorization-server"),
        "{error}"
    );
    let issuer =
        Issuer::discover_lazily(ISSUER, Arc::clone(&server) as Arc<dyn HttpClient>, settings)
            .unwrap()
            .audience(RESOURCE)
            .build()
            .unwrap();
    let guard = AccessTokens::new([issuer]).unwrap().layer();
    let token = key.sign(&claims());
    assert_eq!(
        present(&guard, &token).await.1,
        Some(AuthErrorKind::KeysUnavailable),
        "503 while the issuer is down"
    );
    server.up.store(true, Ordering::SeqCst);
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        status = present(&guard, &token).await.0;
        if status == StatusCode::OK {
            break;
        }
    }
    assert_eq!(status, StatusCode::OK, "accepted once discovery answered");
}

/// An introspection endpoint that answers made-up tokens slowly and one good token at once.
struct SlowForMadeUp;

impl HttpClient for SlowForMadeUp {
    fn send(&self, request: Request<Bytes>, _max_body: usize, _timeout: Duration) -> HttpFuture {
        let good = form_urlencoded::parse(request.body())
            .any(|(name, value)| name == "token" && value == "opaque-good");
        Box::pin(async move {
            let answer = if good {
                active("mcp:call", RESOURCE)
            } else {
                tokio::time::sleep(Duration::from_millis(500)).await;
                json!({"active": false})
            };
            Ok(Response::builder()
                .status(StatusCode::OK)
                .body(Bytes::from(answer.to_string()))
                .unwrap())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_cannot_take_every_introspection_slot() {
    use callguard::ClientAddr;
    use callguard::oauth::Introspection;
    let introspection = Introspection::builder(
        "https://as.example.com/introspect",
        "resource-server",
        callguard::Secret::from_utf8("introspection-secret-0123").unwrap(),
        Arc::new(SlowForMadeUp) as Arc<dyn HttpClient>,
    )
    .audience(RESOURCE)
    .build()
    .unwrap();
    let guard = AccessTokens::introspected(introspection).layer();
    let from = |client: &str, token: String| {
        let mut request = Request::post("/mcp")
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        request
            .extensions_mut()
            .insert(ClientAddr(client.parse().unwrap()));
        let guard = guard.clone();
        async move {
            guard
                .layer(service_fn(echo))
                .oneshot(request)
                .await
                .unwrap()
        }
    };
    // One source floods with more made-up tokens than the whole table holds, from
    // addresses in one IPv6 /64.
    let flood: Vec<_> = (0..callguard::oauth::MAX_CALLS_IN_FLIGHT + 44)
        .map(|n| {
            tokio::spawn(from(
                &format!("2001:db8::{:x}", n + 1),
                format!("made-up-{n}"),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let response = from("192.0.2.7", "opaque-good".to_owned()).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "another client's token waited for no slot"
    );
    let mut refused = 0;
    for call in flood {
        let response = call.await.unwrap();
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            refused += 1;
            assert_eq!(
                response
                    .extensions()
                    .get::<AuthError>()
                    .and_then(AuthError::rule),
                Some("client-calls")
            );
        }
    }
    assert_eq!(
        refused,
        callguard::oauth::MAX_CALLS_IN_FLIGHT + 44 - callguard::oauth::MAX_CALLS_PER_CLIENT
    );
    // Many /64s of one /48 (one subscriber's allocation) share the network's cap.
    let spread: Vec<_> = (0..64)
        .map(|n| tokio::spawn(from(&format!("2001:db8:7:{n:x}::1"), format!("spread-{n}"))))
        .collect();
    let mut refused = 0;
    for call in spread {
        refused += usize::from(call.await.unwrap().status() == StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(refused, 64 - callguard::oauth::MAX_CALLS_PER_NETWORK);
}

#[cfg(feature = "reqwest")]
#[tokio::test]
async fn a_failed_connection_keeps_the_clients_error_as_its_source() {
    use std::error::Error as _;
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = callguard::keys::ReqwestClient::new().unwrap();
    let request = Request::get(format!("http://127.0.0.1:{port}/jwks"))
        .body(Bytes::new())
        .unwrap();
    let error = client
        .send(request, 1024, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::Connect(_)), "{error:?}");
    let source = error.source().expect("reqwest's error is kept");
    assert!(
        source.downcast_ref::<reqwest::Error>().is_some(),
        "{source:?}"
    );
    assert!(error.at("http://127.0.0.1/jwks").source().is_some());
}

#[test]
fn one_claim_rules_value_configures_an_issuer_and_introspection() {
    use callguard::ConfigError;
    use callguard::jwt::ClaimRules;
    use callguard::oauth::Introspection;
    let key = SigningKey::new("rsa-a", Algorithm::RS256, "rsa-a.pem");
    let rules = ClaimRules::new().issuer(ISSUER).audience(RESOURCE);
    let issuer = Issuer::builder(ISSUER)
        .keys(fixed_set(&key))
        .claim_rules(rules.clone())
        .build()
        .unwrap();
    assert_eq!(issuer.audiences().collect::<Vec<_>>(), [RESOURCE]);
    let introspection = |rules: ClaimRules| {
        Introspection::builder(
            "https://as.example.com/introspect",
            "resource-server",
            callguard::Secret::from_utf8("introspection-secret-0123").unwrap(),
            Arc::new(FakeIntrospection {
                active: Vec::new(),
                calls: AtomicUsize::new(0),
                down: false,
            }) as Arc<dyn HttpClient>,
        )
        .claim_rules(rules)
        .build()
    };
    assert!(introspection(rules.clone()).is_ok());
    // Rules are never dropped without a word: another issuer, or a typ an answer cannot carry.
    let other = Issuer::builder(OTHER_ISSUER)
        .keys(fixed_set(&key))
        .claim_rules(rules.clone())
        .build();
    assert!(matches!(other, Err(ConfigError::InvalidComposition { .. })));
    assert!(matches!(
        introspection(rules.typ("at+jwt")),
        Err(ConfigError::InvalidComposition { .. })
    ));
}
