//! IP allow-lists: 403 from elsewhere, replaceable at run time, never open without an address.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::net::IpAddr;

use bytes::Bytes;
use callguard::limit::AllowList;
use callguard::{AuthError, AuthErrorKind, ClientAddr, ConfigError};
use http::{Request, StatusCode};
use http_body_util::Full;
use tower::{Layer, ServiceExt, service_fn};

mod common;

async fn from(list: &AllowList, client: Option<&str>) -> (StatusCode, Option<AuthErrorKind>) {
    let service = list
        .layer()
        .layer(service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
        }));
    let mut request = Request::post("/webhooks/github")
        .body(Full::new(Bytes::new()))
        .unwrap();
    if let Some(client) = client {
        let client: IpAddr = client.parse().unwrap();
        request.extensions_mut().insert(ClientAddr(client));
    }
    let response = service.oneshot(request).await.unwrap();
    (
        response.status(),
        response
            .extensions()
            .get::<AuthError>()
            .map(AuthError::kind),
    )
}

#[tokio::test]
async fn addresses_outside_the_list_are_403_and_without_an_address_500() {
    let list = AllowList::parse(["192.30.252.0/22", "2a0a:a440::/29", "203.0.113.9"]).unwrap();
    assert_eq!(from(&list, Some("192.30.253.1")).await.0, StatusCode::OK);
    assert_eq!(
        from(&list, Some("::ffff:192.30.253.1")).await.0,
        StatusCode::OK
    );
    assert_eq!(from(&list, Some("2a0a:a440::1")).await.0, StatusCode::OK);
    assert_eq!(from(&list, Some("203.0.113.9")).await.0, StatusCode::OK);
    assert_eq!(
        from(&list, Some("203.0.113.10")).await,
        (
            StatusCode::FORBIDDEN,
            Some(AuthErrorKind::AddressNotAllowed)
        )
    );
    assert_eq!(
        from(&list, None).await,
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(AuthErrorKind::ClientAddrMissing)
        )
    );
}

#[tokio::test]
async fn a_range_written_in_the_ipv4_mapped_form_holds_the_ipv4_addresses() {
    let list = AllowList::parse(["::ffff:192.30.252.0/118", "::ffff:203.0.113.9"]).unwrap();
    for inside in ["192.30.253.1", "::ffff:192.30.253.1", "203.0.113.9"] {
        assert_eq!(
            from(&list, Some(inside)).await.0,
            StatusCode::OK,
            "{inside}"
        );
    }
    for outside in ["192.30.0.1", "203.0.113.10", "::1"] {
        assert_eq!(
            from(&list, Some(outside)).await.0,
            StatusCode::FORBIDDEN,
            "{outside}"
        );
    }
}

#[tokio::test]
async fn a_list_replaced_at_run_time_applies_to_layers_already_built() {
    let list = AllowList::parse(["192.30.252.0/22"]).unwrap();
    let (old, new) = (Some("192.30.252.1"), Some("140.82.112.1"));
    assert_eq!(from(&list, new).await.0, StatusCode::FORBIDDEN);
    let path = std::env::temp_dir().join(format!("callguard-allow-{}.txt", std::process::id()));
    std::fs::write(
        &path,
        "# GitHub hooks, refreshed\n\n140.82.112.0/20  # new range\n",
    )
    .unwrap();
    list.replace(&AllowList::from_file(&path).unwrap());
    std::fs::remove_file(&path).unwrap();
    assert_eq!(from(&list, new).await.0, StatusCode::OK);
    assert_eq!(from(&list, old).await.0, StatusCode::FORBIDDEN);
}

#[test]
fn a_bad_entry_is_named_when_built() {
    let error = AllowList::parse_text("192.30.252.0/22\nexample.com\n").unwrap_err();
    assert!(
        matches!(&error, ConfigError::InvalidList { name, .. } if name.contains("example.com")),
        "{error}"
    );
    assert!(AllowList::from_file("/nonexistent/callguard/list").is_err());
}

/// A guard accepting a platform's signatures only from its ranges, and an agent's token from
/// anywhere: `allowed_from` restricts one method, not the route.
fn platform_or_agent(list: &AllowList) -> callguard::GuardLayer {
    use callguard::signature::SignatureVerifier;
    use callguard::{Authenticator, GuardLayer, Scopes, Secret, bearer::BearerTokens};
    let platform = SignatureVerifier::builder()
        .identity("platform")
        .header("x-signature")
        .secret("k1", Secret::from_utf8(common::SECRET).unwrap())
        .allowed_from(list.clone())
        .build()
        .unwrap();
    let agents = BearerTokens::builder()
        .token(
            "agent",
            Secret::from_utf8("tok_agent_0123456789abcdef").unwrap(),
            Scopes::empty(),
        )
        .build()
        .unwrap();
    GuardLayer::new(Authenticator::any_of([platform.into(), agents.into()]).unwrap())
}

async fn through(
    guard: &callguard::GuardLayer,
    client: Option<&str>,
    header: (&str, String),
) -> (StatusCode, Option<AuthErrorKind>) {
    let mut request = Request::post("/tools")
        .header(header.0, header.1)
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    if let Some(client) = client {
        let client: IpAddr = client.parse().unwrap();
        request.extensions_mut().insert(ClientAddr(client));
    }
    let response = guard
        .clone()
        .layer(service_fn(common::echo))
        .oneshot(request)
        .await
        .unwrap();
    (
        response.status(),
        response
            .extensions()
            .get::<AuthError>()
            .map(AuthError::kind),
    )
}

#[tokio::test]
async fn a_method_restricted_to_an_allow_list_is_refused_from_elsewhere_and_the_others_are_not() {
    let list = AllowList::parse(["192.30.252.0/22"]).unwrap();
    let guard = platform_or_agent(&list);
    let signed = || ("x-signature", common::sign_hex(common::SECRET, b"{}"));
    let forged = || {
        (
            "x-signature",
            common::sign_hex("another-secret-of-32-bytes-length", b"{}"),
        )
    };
    let token = || {
        (
            "authorization",
            "Bearer tok_agent_0123456789abcdef".to_owned(),
        )
    };
    assert_eq!(
        through(&guard, Some("192.30.253.1"), signed()).await,
        (StatusCode::OK, None)
    );
    assert_eq!(
        through(&guard, Some("203.0.113.7"), signed()).await,
        (
            StatusCode::FORBIDDEN,
            Some(AuthErrorKind::AddressNotAllowed)
        ),
        "a valid signature from outside the platform's ranges"
    );
    // Refused for its address before its MAC is looked at: a forgery from outside is 403 too.
    assert_eq!(
        through(&guard, Some("203.0.113.7"), forged()).await,
        (
            StatusCode::FORBIDDEN,
            Some(AuthErrorKind::AddressNotAllowed)
        )
    );
    assert_eq!(
        through(&guard, Some("192.30.253.1"), forged()).await,
        (
            StatusCode::UNAUTHORIZED,
            Some(AuthErrorKind::InvalidCredentials)
        ),
        "from inside, a signature still has to verify"
    );
    // The other method is not restricted.
    assert_eq!(
        through(&guard, Some("203.0.113.7"), token()).await,
        (StatusCode::OK, None)
    );
    assert_eq!(through(&guard, None, token()).await, (StatusCode::OK, None));
    // Without a client address the restricted method cannot decide: a setup mistake.
    assert_eq!(
        through(&guard, None, signed()).await,
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(AuthErrorKind::ClientAddrMissing)
        )
    );
    // Replaced at run time, through any clone of the list.
    list.replace(&AllowList::parse(["203.0.113.0/24"]).unwrap());
    assert_eq!(
        through(&guard, Some("203.0.113.7"), signed()).await,
        (StatusCode::OK, None)
    );
    assert_eq!(
        through(&guard, Some("192.30.253.1"), signed()).await,
        (
            StatusCode::FORBIDDEN,
            Some(AuthErrorKind::AddressNotAllowed)
        )
    );
}

/// SignalWire's three schemes share its allow-list: a request from elsewhere is 403 under
/// whichever header it picks, and one `first_of` cannot mix a restricted scheme with an
/// unrestricted one (the unrestricted header would get around the list).
#[tokio::test]
async fn every_scheme_of_signalwire_keeps_its_allow_list_and_a_mixed_first_of_is_refused() {
    use callguard::GuardLayer;
    use callguard::providers::{signalwire, signalwire_sha1, signalwire_sha256};
    let list = AllowList::parse(["192.30.252.0/22"]).unwrap();
    let authenticator = signalwire()
        .signing_secret("key", "PSK_0123456789abcdef0123456789")
        .public_base_url("https://example.com")
        .allowed_from(list.clone())
        .build()
        .unwrap();
    let guard = GuardLayer::new(authenticator);
    // Well-formed and wrong: hex SHA-256, hex SHA-1, base64 SHA-1.
    let headers = [
        ("x-signalwire-sha256-signature", "ab".repeat(32)),
        ("x-signalwire-signature", "ab".repeat(20)),
        (
            "x-twilio-signature",
            "q83vEjRWeJq83vEjRWeJq83vEjQ=".to_owned(),
        ),
    ];
    for (name, value) in headers {
        assert_eq!(
            through(&guard, Some("203.0.113.7"), (name, value.clone())).await,
            (
                StatusCode::FORBIDDEN,
                Some(AuthErrorKind::AddressNotAllowed)
            ),
            "{name} from elsewhere"
        );
        assert_eq!(
            through(&guard, Some("192.30.253.1"), (name, value)).await.0,
            StatusCode::UNAUTHORIZED,
            "{name} from inside is checked"
        );
    }
    let secret = || callguard::Secret::from_utf8("PSK_0123456789abcdef0123456789").unwrap();
    let restricted = signalwire_sha256()
        .secret("key", secret())
        .public_base_url("https://example.com")
        .allowed_from(list.clone())
        .build()
        .unwrap();
    let open = signalwire_sha1()
        .secret("key", secret())
        .public_base_url("https://example.com")
        .build()
        .unwrap();
    assert!(matches!(
        callguard::Authenticator::first_of([restricted.clone().into(), open.into()]),
        Err(ConfigError::InvalidComposition { reason }) if reason.contains("allow-list")
    ));
    let also_restricted = signalwire_sha1()
        .secret("key", secret())
        .public_base_url("https://example.com")
        .allowed_from(list)
        .build()
        .unwrap();
    assert!(
        callguard::Authenticator::first_of([restricted.into(), also_restricted.into()]).is_ok()
    );
}
