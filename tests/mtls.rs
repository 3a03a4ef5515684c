//! Certificate-bound access tokens (RFC 8705) through a guard: the client certificate from
//! the connection (a `ClientCertificate` the server puts into the extensions) or from a
//! trusted proxy's header (nginx's escaped PEM, Envoy's `x-forwarded-client-cert`), and the
//! token's `cnf["x5t#S256"]` held to it. Real nginx terminating TLS runs in
//! `tests/oauth/test_mtls.py`.

#![cfg(feature = "mtls")]
#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use callguard::client::TrustedProxies;
use callguard::guard::GuardedBody;
use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier, TokenIssuer, TokenRequest};
use callguard::mtls::{
    CertificateBinding, CertificateThumbprint, ClientCertificate, ClientCertificateLayer,
    ProxyHeader,
};
use callguard::{AuthError, AuthErrorKind, Caller, Confirmation, GuardLayer, Scopes, Secret};
use http::{HeaderName, Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Layer, ServiceExt, service_fn};

const CERTIFICATE: &[u8] = b"0\x82 the client's DER certificate";
const OTHER: &[u8] = b"0\x82 another client's certificate";

fn config() -> JwtConfig {
    let secret = Secret::from_utf8("a-jwt-signing-key-of-32-bytes!!!").unwrap();
    JwtConfig::builder()
        .key("k1", JwtKey::hmac(JwtAlgorithm::HS256, &secret).unwrap())
        .build()
        .unwrap()
}

fn token(bound_to: Option<&[u8]>) -> String {
    let mut request = TokenRequest::new("agent", Scopes::empty(), Duration::from_secs(300));
    if let Some(der) = bound_to {
        request = request.certificate_bound(CertificateThumbprint::of_der(der).to_base64url());
    }
    TokenIssuer::new(config())
        .issue(request)
        .unwrap()
        .access_token
}

fn pem(der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n")
}

/// nginx's `$ssl_client_escaped_cert`: the PEM, URL-escaped.
fn escaped(pem: &str) -> String {
    pem.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The guard with `binding`, behind `certificates`; answers the confirmed thumbprint.
async fn call(
    certificates: ClientCertificateLayer,
    binding: Option<CertificateBinding>,
    request: Request<Full<Bytes>>,
) -> (StatusCode, Option<AuthErrorKind>, String) {
    let verifier = match binding {
        Some(binding) => JwtVerifier::new(config()).certificate_binding(binding),
        None => JwtVerifier::new(config()),
    };
    let inner = service_fn(|request: Request<GuardedBody<Full<Bytes>>>| async move {
        let caller = request.extensions().get::<Caller>().unwrap();
        let confirmed = match caller.confirmation() {
            Some(Confirmation::Certificate(x5t)) => x5t.to_string(),
            _ => "none".to_owned(),
        };
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(confirmed))))
    });
    let service = certificates.layer(GuardLayer::new(verifier).layer(inner));
    let response = service.oneshot(request).await.unwrap();
    let kind = response
        .extensions()
        .get::<AuthError>()
        .map(AuthError::kind);
    let status = response.status();
    use http_body_util::BodyExt as _;
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, kind, String::from_utf8(body.to_vec()).unwrap())
}

fn request(token: &str) -> http::request::Builder {
    Request::post("/tools/echo").header("authorization", format!("Bearer {token}"))
}

fn over_tls(token: &str, certificate: Option<&'static [u8]>) -> Request<Full<Bytes>> {
    let mut request = request(token).body(Full::new(Bytes::new())).unwrap();
    if let Some(der) = certificate {
        request
            .extensions_mut()
            .insert(ClientCertificate(Bytes::from_static(der)));
    }
    request
}

#[tokio::test]
async fn a_bound_token_is_accepted_only_with_its_certificate() {
    let bound = token(Some(CERTIFICATE));
    let when_bound = Some(CertificateBinding::WhenBound);
    let layer = ClientCertificateLayer::from_connection;
    let (status, _, confirmed) =
        call(layer(), when_bound, over_tls(&bound, Some(CERTIFICATE))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        confirmed,
        CertificateThumbprint::of_der(CERTIFICATE).to_base64url()
    );
    for certificate in [Some(OTHER), None] {
        let (status, kind, _) = call(layer(), when_bound, over_tls(&bound, certificate)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(kind, Some(AuthErrorKind::UnprovenKeyBinding));
    }
    // An unbound token is accepted as before, with no confirmation.
    let (status, _, confirmed) =
        call(layer(), when_bound, over_tls(&token(None), Some(OTHER))).await;
    assert_eq!((status, confirmed.as_str()), (StatusCode::OK, "none"));
    // Without a binding configured, a bound token is never a bearer token.
    let (status, kind, _) = call(layer(), None, over_tls(&bound, Some(CERTIFICATE))).await;
    assert_eq!(
        (status, kind),
        (
            StatusCode::UNAUTHORIZED,
            Some(AuthErrorKind::UnprovenKeyBinding)
        )
    );
}

#[tokio::test]
async fn required_binding_refuses_an_unbound_token() {
    let required = Some(CertificateBinding::Required);
    let layer = ClientCertificateLayer::from_connection;
    let (status, kind, _) =
        call(layer(), required, over_tls(&token(None), Some(CERTIFICATE))).await;
    assert_eq!(
        (status, kind),
        (
            StatusCode::UNAUTHORIZED,
            Some(AuthErrorKind::UnprovenKeyBinding)
        )
    );
    let (status, _, _) = call(
        layer(),
        required,
        over_tls(&token(Some(CERTIFICATE)), Some(CERTIFICATE)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_proxys_header_is_believed_from_a_trusted_proxy_only() {
    let bound = token(Some(CERTIFICATE));
    let header = HeaderName::from_static("x-ssl-client-cert");
    let nginx = || {
        ClientCertificateLayer::from_proxies(
            TrustedProxies::parse(["10.0.0.0/8"]).unwrap(),
            ProxyHeader::EscapedPem(header.clone()),
        )
    };
    let from = |peer: &str, value: &str, name: &HeaderName| {
        let mut request = request(&bound)
            .header(name, value)
            .body(Full::new(Bytes::new()))
            .unwrap();
        request
            .extensions_mut()
            .insert(peer.parse::<SocketAddr>().unwrap());
        request
    };
    let value = escaped(&pem(CERTIFICATE));
    let when_bound = Some(CertificateBinding::WhenBound);
    let (status, _, _) = call(nginx(), when_bound, from("10.1.2.3:443", &value, &header)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call(
        nginx(),
        when_bound,
        from("203.0.113.5:443", &value, &header),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a client cannot set the header itself"
    );
    let (status, _, _) = call(
        nginx(),
        when_bound,
        from("10.1.2.3:443", &escaped(&pem(OTHER)), &header),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = call(
        nginx(),
        when_bound,
        from("10.1.2.3:443", "garbage", &header),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let envoy = ClientCertificateLayer::from_proxies(
        TrustedProxies::parse(["10.0.0.0/8"]).unwrap(),
        ProxyHeader::EnvoyXfcc,
    );
    let xfcc = HeaderName::from_static("x-forwarded-client-cert");
    let hash = hex::encode(CertificateThumbprint::of_der(CERTIFICATE).0);
    let value = format!(
        "By=spiffe://cluster.local/ns/default/sa/api;Hash={hash};Subject=\"CN=agent,O=Example\""
    );
    let (status, _, _) = call(
        envoy.clone(),
        when_bound,
        from("10.1.2.3:443", &value, &xfcc),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call(envoy, when_bound, from("203.0.113.5:443", &value, &xfcc)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Security review: an XFCC value with an unclosed quote must not hide the element the
/// proxy appended (Envoy `APPEND_FORWARD`): the client's own `Hash` would be read instead.
#[tokio::test]
async fn an_xfcc_header_with_an_unclosed_quote_names_no_certificate() {
    let bound = token(Some(CERTIFICATE));
    let envoy = ClientCertificateLayer::from_proxies(
        TrustedProxies::parse(["10.0.0.0/8"]).unwrap(),
        ProxyHeader::EnvoyXfcc,
    );
    let victim = hex::encode(CertificateThumbprint::of_der(CERTIFICATE).0);
    let attacker = hex::encode(CertificateThumbprint::of_der(OTHER).0);
    for value in [
        format!("Hash={victim};X=\",By=spiffe://proxy;Hash={attacker};Subject=\"CN=attacker\""),
        format!("Hash={victim};X=\"unterminated"),
        format!("Hash={victim};X=\"a\\"),
        format!("Hash={victim};X=a\"b\""),
    ] {
        let mut request = request(&bound)
            .header("x-forwarded-client-cert", value.as_str())
            .body(Full::new(Bytes::new()))
            .unwrap();
        request
            .extensions_mut()
            .insert("10.1.2.3:443".parse::<SocketAddr>().unwrap());
        let (status, _, _) =
            call(envoy.clone(), Some(CertificateBinding::WhenBound), request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{value}");
    }
}
