//! The MCP resource server's parts in-process: RFC 9728 metadata, challenges that carry
//! `resource_metadata` and the scopes needed, scope hierarchies, and per-tool scopes read
//! from the JSON-RPC body.

#![cfg(feature = "oauth")]
#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use bytes::Bytes;
use callguard::bearer::BearerTokens;
use callguard::jwt::JwtKeySet;
use callguard::mcp::ToolScopesLayer;
use callguard::oauth::{AccessTokens, Issuer, ProtectedResourceMetadata};
use callguard::scope::{RequireScopesLayer, ScopeImplications};
use callguard::{AuthErrorKind, ConfigError, GuardLayer, Scopes, Secret};
use common::{Seen, echo};
use http::header::WWW_AUTHENTICATE;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceBuilder, ServiceExt, service_fn};

const RESOURCE: &str = "https://tools.example.com/mcp";
const ISSUER: &str = "https://auth.example.com";

fn tokens() -> AccessTokens {
    let keys = JwtKeySet::from_json(br#"{"keys":[]}"#, 8).unwrap();
    let issuer = Issuer::builder(ISSUER)
        .keys(keys)
        .audience(RESOURCE)
        .build()
        .unwrap();
    AccessTokens::new([issuer]).unwrap()
}

fn metadata() -> ProtectedResourceMetadata {
    ProtectedResourceMetadata::for_access_tokens(&tokens(), RESOURCE)
        .unwrap()
        .scopes_supported(["mcp:call", "mcp:admin", "refunds:write"])
        .unwrap()
        .resource_name("Example tools")
        .build()
}

#[tokio::test]
async fn the_metadata_document_follows_rfc_9728() {
    let metadata = metadata();
    assert_eq!(
        metadata.url(),
        "https://tools.example.com/.well-known/oauth-protected-resource/mcp"
    );
    assert_eq!(
        metadata.paths().collect::<Vec<_>>(),
        [
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-protected-resource"
        ]
    );
    for path in metadata.paths() {
        let request = Request::get(path).body(Full::new(Bytes::new())).unwrap();
        let response = metadata.service().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert!(
            response.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("max-age")
        );
        let document: serde_json::Value =
            serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes())
                .unwrap();
        assert_eq!(document["resource"], RESOURCE);
        assert_eq!(
            document["authorization_servers"],
            serde_json::json!([ISSUER])
        );
        assert_eq!(
            document["bearer_methods_supported"],
            serde_json::json!(["header"])
        );
        assert_eq!(document["resource_name"], "Example tools");
        let scopes: Vec<&str> = document["scopes_supported"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert!(!scopes.contains(&"offline_access"));
    }
    let post = Request::post(metadata.url())
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(
        metadata.service().oneshot(post).await.unwrap().status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[test]
fn metadata_that_would_disagree_with_the_verifier_is_refused() {
    assert!(matches!(
        ProtectedResourceMetadata::for_access_tokens(
            &tokens(),
            "https://elsewhere.example.com/mcp"
        ),
        Err(ConfigError::InvalidComposition { .. })
    ));
    assert!(
        ProtectedResourceMetadata::for_access_tokens(&tokens(), RESOURCE)
            .unwrap()
            .scopes_supported(["offline_access"])
            .is_err()
    );
}

#[tokio::test]
async fn challenges_carry_resource_metadata_and_the_scopes_needed() {
    let metadata = metadata();
    let guard = GuardLayer::new(tokens()).on_reject(
        metadata
            .responder()
            .with_challenge_scope(["mcp:call"])
            .unwrap(),
    );
    let request = Request::post("/mcp").body(Full::new(Bytes::new())).unwrap();
    let response = guard
        .layer(service_fn(echo))
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()[WWW_AUTHENTICATE].to_str().unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains(&format!("resource_metadata=\"{}\"", metadata.url())),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"mcp:call\""), "{challenge}");
}

const AGENT: &str = "tok_agent_0123456789abcdef";
const ADMIN: &str = "tok_admin_0123456789abcdef";

/// Static tokens stand in for access tokens here: the scope machinery is the same.
fn stack(
    tool_scopes: ToolScopesLayer<callguard::reject::ProblemDetails>,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = http::Response<Full<Bytes>>,
    Error = std::convert::Infallible,
> + Clone {
    let tokens = BearerTokens::builder()
        .token(
            "agent",
            Secret::from_utf8(AGENT).unwrap(),
            Scopes::from_iter(["mcp:call"]),
        )
        .token(
            "admin",
            Secret::from_utf8(ADMIN).unwrap(),
            Scopes::from_iter(["mcp:admin"]),
        )
        .build()
        .unwrap();
    let implications = ScopeImplications::new()
        .implies("mcp:admin", ["mcp:call", "refunds:write"])
        .unwrap();
    let responder = metadata().responder();
    ServiceBuilder::new()
        .layer(GuardLayer::new(tokens).scope_implications(implications))
        .layer(
            RequireScopesLayer::new(["mcp:call"])
                .unwrap()
                .on_reject(responder.clone()),
        )
        .layer(tool_scopes.on_reject(responder))
        .service(service_fn(echo))
}

fn tool_layer() -> ToolScopesLayer {
    ToolScopesLayer::new()
        .tool("refund", ["mcp:call", "refunds:write"])
        .unwrap()
        .body_limit(4096)
}

async fn call(token: &str, body: &'static [u8]) -> (StatusCode, Option<String>, Option<Bytes>) {
    let request = Request::post("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::from_static(body)))
        .unwrap();
    let response = stack(tool_layer()).oneshot(request).await.unwrap();
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let seen = response.extensions().get::<Seen>().map(|s| s.body.clone());
    (response.status(), challenge, seen)
}

const REFUND: &[u8] = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"refund","arguments":{"order_id":"o-1","amount":5}}}"#;

#[tokio::test]
async fn a_tool_call_without_the_tools_scopes_is_403_naming_them_all() {
    let (status, challenge, _) = call(AGENT, REFUND).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let challenge = challenge.unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"mcp:call refunds:write\""),
        "{challenge}"
    );
    assert!(challenge.contains("resource_metadata=\""), "{challenge}");
}

#[tokio::test]
async fn a_broader_scope_implies_the_narrower_ones_everywhere() {
    let (status, _, seen) = call(ADMIN, REFUND).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        seen.unwrap(),
        Bytes::from_static(REFUND),
        "the body is handed on byte for byte"
    );
}

#[tokio::test]
async fn other_requests_pass_the_tool_layer() {
    for body in [
        &br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#[..],
        br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami"}}"#,
        br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}},{"jsonrpc":"2.0","method":"notifications/initialized"}]"#,
    ] {
        let (status, _, seen) = call(AGENT, body).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(body));
        assert_eq!(seen.unwrap(), Bytes::from_static(body));
    }
}

/// Bodies serde_json cannot read, each of which the official Python MCP SDK (or another
/// lenient JSON reader) reads as `tools/call` of `refund`: refused, never handed on.
#[tokio::test]
async fn a_post_the_layer_cannot_read_is_a_json_rpc_parse_error() {
    let refund = std::str::from_utf8(REFUND).unwrap();
    let utf16: Vec<u8> = refund.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let utf32: Vec<u8> = refund
        .chars()
        .flat_map(|c| (c as u32).to_be_bytes())
        .collect();
    let unreadable: Vec<Vec<u8>> = vec![
        [b"\xef\xbb\xbf".as_slice(), REFUND].concat(),
        [b"\xff\xfe".as_slice(), &utf16].concat(),
        utf16,
        utf32,
        br#"{"jsonrpc":"2.0","id":NaN,"method":"tools/call","params":{"name":"refund"}}"#.to_vec(),
        br#"{"jsonrpc":"2.0","id":Infinity,"method":"tools/call","params":{"name":"refund"}}"#
            .to_vec(),
        [b"\x0c".as_slice(), REFUND].concat(),
        b"this is not json".to_vec(),
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"refund""#.to_vec(),
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"refund"}} x"#.to_vec(),
        Vec::new(),
    ];
    for body in unreadable {
        let body: &'static [u8] = body.leak();
        let (status, _, seen) = call(AGENT, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");
        assert!(seen.is_none(), "handed on: {body:?}");
    }
    let request = Request::post("/mcp")
        .header("authorization", format!("Bearer {AGENT}"))
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let response = stack(tool_layer()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "a readable body passes");
    let request = Request::post("/mcp")
        .header("authorization", format!("Bearer {AGENT}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(b"\xef\xbb\xbf{}")))
        .unwrap();
    let response = stack(tool_layer()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()["content-type"], "application/json");
    let answer: serde_json::Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(answer["jsonrpc"], "2.0");
    assert_eq!(answer["id"], serde_json::Value::Null);
    assert_eq!(answer["error"]["code"], -32700);
}

#[tokio::test]
async fn a_charset_other_than_utf_8_is_refused() {
    for (content_type, expected) in [
        ("application/json; charset=utf-16", StatusCode::BAD_REQUEST),
        (
            "application/json;charset=\"UTF-32\"",
            StatusCode::BAD_REQUEST,
        ),
        (
            "application/json; charset=iso-8859-1",
            StatusCode::BAD_REQUEST,
        ),
        ("application/json; charset=UTF-8", StatusCode::FORBIDDEN),
        ("application/json; charset=\"utf-8\"", StatusCode::FORBIDDEN),
        ("application/json", StatusCode::FORBIDDEN),
    ] {
        let request = Request::post("/mcp")
            .header("authorization", format!("Bearer {AGENT}"))
            .header("content-type", content_type)
            .body(Full::new(Bytes::from_static(REFUND)))
            .unwrap();
        let response = stack(tool_layer()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), expected, "{content_type}");
    }
}

#[tokio::test]
async fn every_call_of_a_batch_is_checked() {
    let batch: &[u8] = br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"refund"}}]"#;
    let (status, challenge, _) = call(AGENT, batch).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        challenge
            .unwrap()
            .contains("scope=\"mcp:call refunds:write\"")
    );
    assert_eq!(call(ADMIN, batch).await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_encoded_body_is_refused_rather_than_read_as_something_else() {
    let request = Request::post("/mcp")
        .header("authorization", format!("Bearer {AGENT}"))
        .header("content-encoding", "gzip")
        .body(Full::new(Bytes::from_static(b"\x1f\x8b\x08\x00")))
        .unwrap();
    let response = stack(tool_layer()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

/// A body that never ends.
struct Stalled;

impl http_body::Body for Stalled {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Pending
    }
}

#[tokio::test(start_paused = true)]
async fn a_body_that_stalls_is_408_after_the_timeout() {
    let tokens = BearerTokens::builder()
        .token(
            "agent",
            Secret::from_utf8(AGENT).unwrap(),
            Scopes::from_iter(["mcp:call"]),
        )
        .build()
        .unwrap();
    let service = ServiceBuilder::new()
        .layer(GuardLayer::new(tokens))
        .layer(tool_layer().body_timeout(std::time::Duration::from_secs(5)))
        .service(service_fn(echo));
    let request = Request::post("/mcp")
        .header("authorization", format!("Bearer {AGENT}"))
        .body(Stalled)
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
}

#[tokio::test]
async fn ambiguous_tool_calls_and_long_bodies_are_refused() {
    let twice: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","name":"refund"}}"#;
    assert_eq!(call(AGENT, twice).await.0, StatusCode::BAD_REQUEST);
    let numeric: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}"#;
    assert_eq!(call(AGENT, numeric).await.0, StatusCode::BAD_REQUEST);
    let long: &'static [u8] = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"refund","arguments":{{"pad":"{}"}}}}}}"#,
        "x".repeat(8192)
    )
    .leak()
    .as_bytes();
    let request = Request::post("/mcp")
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Full::new(Bytes::from_static(long)))
        .unwrap();
    let response = stack(tool_layer()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response
            .extensions()
            .get::<callguard::AuthError>()
            .map(callguard::AuthError::kind),
        Some(AuthErrorKind::BodyTooLarge)
    );
}

/// serde's skipping does not check strings: a member the layer does not need, holding bytes
/// that are not UTF-8 or a lone surrogate, must not make a body the layer reads but a
/// serde_json server refuses.
#[tokio::test]
async fn strings_the_layer_skips_are_checked_as_serde_json_checks_them() {
    for body in [
        &b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"x\":\"\x8a\"}"[..],
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","x":"\ud800"}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{"a":"\udc00"}}}"#,
    ] {
        let (status, _, seen) = call(AGENT, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(body));
        assert!(seen.is_none());
    }
}

mod reading_rule {
    use super::*;
    use proptest::prelude::*;

    /// Whether serde_json reads `text` as a `tools/call` of `refund` (alone or in a batch).
    fn calls_refund(text: &[u8]) -> bool {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(text) else {
            return false;
        };
        let one = |call: &serde_json::Value| {
            call["method"] == "tools/call" && call.pointer("/params/name") == Some(&"refund".into())
        };
        match &value {
            serde_json::Value::Array(calls) => calls.iter().any(one),
            call => one(call),
        }
    }

    /// The texts a lenient server might make of a body: as sent, without a BOM, from UTF-16.
    fn readings(body: &[u8]) -> Vec<Vec<u8>> {
        let mut texts = vec![body.to_vec()];
        if let Some(rest) = body.strip_prefix(b"\xef\xbb\xbf") {
            texts.push(rest.to_vec());
        }
        let units: Vec<u16> = body
            .chunks_exact(2)
            .map(|p| u16::from_le_bytes([p[0], p[1]]))
            .collect();
        if let Ok(text) = String::from_utf16(&units) {
            texts.push(text.trim_start_matches('\u{feff}').as_bytes().to_vec());
        }
        texts
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        let name = prop::sample::select(vec!["refund", "whoami", "ref\\u0075nd"]);
        let call = (name, any::<bool>(), any::<bool>()).prop_map(|(name, twice, batch)| {
            let params = if twice {
                format!(r#"{{"name":"whoami","name":"{name}"}}"#)
            } else {
                format!(r#"{{"name":"{name}"}}"#)
            };
            let call =
                format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{params}}}"#);
            if batch { format!("[{call}]") } else { call }
        });
        let prefix = prop::sample::select(vec!["", " ", "\u{feff}", "\u{c}", "\n\t"]);
        let suffix = prop::sample::select(vec!["", " ", "\n", "x", ",", "NaN"]);
        (prefix, call, suffix, any::<bool>()).prop_map(|(prefix, call, suffix, utf16)| {
            let text = format!("{prefix}{call}{suffix}");
            if utf16 {
                text.encode_utf16().flat_map(u16::to_le_bytes).collect()
            } else {
                text.into_bytes()
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Whatever the layer hands on to a caller with `mcp:call` only is, to serde_json
        /// and to a server reading it leniently, never a `tools/call` of `refund`.
        #[test]
        fn what_the_layer_passes_is_never_a_call_it_should_have_checked(body in body()) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let body: &'static [u8] = body.leak();
            let (status, _, seen) = runtime.block_on(call(AGENT, body));
            if seen.is_some() {
                prop_assert_eq!(status, StatusCode::OK);
                for text in readings(body) {
                    prop_assert!(!calls_refund(&text), "handed on: {:?}", String::from_utf8_lossy(body));
                }
            }
        }
    }
}

/// `body` sent by the admin with MCP routing `headers`, through `layer`: the status and the
/// JSON body of the answer.
async fn routed(
    layer: ToolScopesLayer,
    headers: &[(&str, &str)],
    body: &'static [u8],
) -> (StatusCode, serde_json::Value) {
    let mut request = Request::post("/mcp").header("authorization", format!("Bearer {ADMIN}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::from_static(body))).unwrap();
    let response = stack(layer).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json)
}

#[tokio::test]
async fn routing_headers_that_disagree_with_the_body_are_400_with_a_json_rpc_header_mismatch() {
    const NEW: &str = "2026-07-28";
    let agreeing = [
        ("mcp-protocol-version", NEW),
        ("mcp-method", "tools/call"),
        ("mcp-name", "refund"),
    ];
    for layer in [tool_layer(), ToolScopesLayer::new()] {
        assert_eq!(routed(layer, &agreeing, REFUND).await.0, StatusCode::OK);
    }
    // The name in its base64 form matches too.
    let encoded = [
        ("mcp-protocol-version", NEW),
        ("mcp-method", "tools/call"),
        ("mcp-name", "=?base64?cmVmdW5k?="),
    ];
    assert_eq!(
        routed(tool_layer(), &encoded, REFUND).await.0,
        StatusCode::OK
    );
    for (index, value, header) in [(1, "tools/list", "Mcp-Method"), (2, "lookup", "Mcp-Name")] {
        let mut changed = agreeing;
        changed[index].1 = value;
        // With tool rules and without: a layer that reads the body checks the headers.
        for layer in [tool_layer(), ToolScopesLayer::new()] {
            let (status, answer) = routed(layer, &changed, REFUND).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{value}");
            assert_eq!(answer["error"]["code"], -32020, "{answer}");
            assert_eq!(answer["error"]["data"]["header"], header, "{answer}");
            assert_eq!(answer["id"], 3, "the request's id: {answer}");
        }
    }
    // From 2026-07-28 the headers are required; before it, a request without them passes.
    let (status, answer) = routed(tool_layer(), &[("mcp-protocol-version", NEW)], REFUND).await;
    assert_eq!(
        (status, &answer["error"]["data"]["header"]),
        (StatusCode::BAD_REQUEST, &serde_json::json!("Mcp-Method"))
    );
    let old = [("mcp-protocol-version", "2025-06-18")];
    assert_eq!(routed(tool_layer(), &old, REFUND).await.0, StatusCode::OK);
    // The version the body carries in _meta must be the header's.
    const WITH_META: &[u8] = br#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"refund","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-09-30"}}}"#;
    let (status, answer) = routed(tool_layer(), &agreeing, WITH_META).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["data"]["header"], "MCP-Protocol-Version");
    assert_eq!(answer["id"], "a");
    // resources/read is named by its uri.
    const READ: &[u8] = br#"{"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri":"file:///orders/o-1"}}"#;
    let read = [
        ("mcp-protocol-version", NEW),
        ("mcp-method", "resources/read"),
        ("mcp-name", "file:///orders/o-1"),
    ];
    assert_eq!(routed(tool_layer(), &read, READ).await.0, StatusCode::OK);
    let mut other = read;
    other[2].1 = "file:///orders/o-2";
    assert_eq!(
        routed(tool_layer(), &other, READ).await.0,
        StatusCode::BAD_REQUEST
    );
    // A batch carries no routing headers.
    const BATCH: &[u8] = br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#;
    let (status, answer) = routed(tool_layer(), &[("mcp-method", "tools/list")], BATCH).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["id"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_request_from_an_origin_not_allowed_is_403_and_one_without_origin_passes() {
    use callguard::mcp::AllowedOriginsLayer;
    let layer = AllowedOriginsLayer::new(["https://tools.example.com"]).unwrap();
    let send = |origins: &[&str]| {
        let mut request = Request::post("/mcp");
        for origin in origins {
            request = request.header("origin", *origin);
        }
        let request = request.body(Full::new(Bytes::new())).unwrap();
        let service = layer.layer(service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
        }));
        async move {
            let response = service.oneshot(request).await.unwrap();
            (
                response.status(),
                response
                    .extensions()
                    .get::<callguard::AuthError>()
                    .map(callguard::AuthError::kind),
            )
        }
    };
    assert_eq!(send(&[]).await.0, StatusCode::OK);
    assert_eq!(send(&["https://tools.example.com"]).await.0, StatusCode::OK);
    assert_eq!(
        send(&["https://Tools.Example.com:443"]).await.0,
        StatusCode::OK
    );
    for refused in [
        &["https://evil.example"][..],
        &["http://tools.example.com"],
        &["https://tools.example.com:8443"],
        &["null"],
        &["https://tools.example.com", "https://tools.example.com"],
    ] {
        assert_eq!(
            send(refused).await,
            (
                StatusCode::FORBIDDEN,
                Some(callguard::AuthErrorKind::OriginNotAllowed)
            ),
            "{refused:?}"
        );
    }
    assert!(AllowedOriginsLayer::new(["https://tools.example.com/mcp"]).is_err());
    assert!(AllowedOriginsLayer::new(Vec::<String>::new()).is_err());
}

/// `prompts/get` and `resources/read` by name and URI, and a rule any one of whose scopes
/// passes: agent holds `mcp:call`, admin `mcp:admin` (implying `mcp:call` and
/// `refunds:write`).
#[tokio::test]
async fn prompts_and_resources_have_rules_by_name_and_a_rule_may_take_any_of_its_scopes() {
    let layer = ToolScopesLayer::new()
        .prompt("refund_policy", ["refunds:write"])
        .unwrap()
        .resource("file:///ledger.csv", ["refunds:write"])
        .unwrap()
        .tool_any_of("lookup", ["orders:read", "mcp:call"])
        .unwrap()
        .tool_any_of("export", ["orders:read", "orders:export"])
        .unwrap();
    let send = |token: &'static str, body: &'static str| {
        let layer = layer.clone();
        async move {
            let request = Request::post("/mcp")
                .header("authorization", format!("Bearer {token}"))
                .body(Full::new(Bytes::from_static(body.as_bytes())))
                .unwrap();
            let response = stack(layer).oneshot(request).await.unwrap();
            let challenge = response
                .headers()
                .get(WWW_AUTHENTICATE)
                .map(|v| v.to_str().unwrap().to_owned());
            (response.status(), challenge)
        }
    };
    let prompt =
        r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"refund_policy"}}"#;
    let resource = r#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///ledger.csv"}}"#;
    let other_resource = r#"{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"file:///readme.md"}}"#;
    let lookup = r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"lookup"}}"#;
    let export = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"export"}}"#;
    let prompt_named_like_a_tool =
        r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"refund_policy"}}"#;
    let nameless_read = r#"{"jsonrpc":"2.0","id":7,"method":"resources/read","params":{"name":"file:///ledger.csv"}}"#;
    for (token, body, expected) in [
        (AGENT, prompt, StatusCode::FORBIDDEN),
        (ADMIN, prompt, StatusCode::OK),
        (AGENT, resource, StatusCode::FORBIDDEN),
        (ADMIN, resource, StatusCode::OK),
        (AGENT, other_resource, StatusCode::OK),
        (AGENT, lookup, StatusCode::OK),
        (AGENT, export, StatusCode::FORBIDDEN),
        (AGENT, prompt_named_like_a_tool, StatusCode::OK),
        (AGENT, nameless_read, StatusCode::BAD_REQUEST),
    ] {
        let (status, challenge) = send(token, body).await;
        assert_eq!(status, expected, "{token} {body}: {challenge:?}");
    }
    let (_, challenge) = send(AGENT, prompt).await;
    assert!(challenge.unwrap().contains("scope=\"refunds:write\""));
    // Any of several: the challenge names the first.
    let (_, challenge) = send(AGENT, export).await;
    assert!(challenge.unwrap().contains("scope=\"orders:read\""));
}

#[cfg(feature = "dpop")]
#[test]
fn the_metadata_says_dpop_bound_tokens_are_required_only_when_they_are() {
    use callguard::dpop::Dpop;
    use callguard::jwt::JwtAlgorithm;
    use callguard::replay::MemoryReplayStore;
    let dpop = || {
        Dpop::builder(MemoryReplayStore::new(100))
            .public_url(RESOURCE)
            .algorithms([JwtAlgorithm::ES256, JwtAlgorithm::EdDSA])
    };
    let document = |tokens: AccessTokens| {
        ProtectedResourceMetadata::for_access_tokens(&tokens, RESOURCE)
            .unwrap()
            .build()
            .document()
            .clone()
    };
    let required = document(tokens().dpop(dpop().required().build().unwrap()));
    assert_eq!(required["dpop_bound_access_tokens_required"], true);
    assert_eq!(
        required["dpop_signing_alg_values_supported"],
        serde_json::json!(["ES256", "EdDSA"])
    );
    let accepted = document(tokens().dpop(dpop().build().unwrap()));
    assert!(
        accepted.get("dpop_bound_access_tokens_required").is_none(),
        "{accepted}"
    );
    assert_eq!(
        accepted["dpop_signing_alg_values_supported"],
        serde_json::json!(["ES256", "EdDSA"])
    );
    let without = document(tokens());
    assert!(without.get("dpop_signing_alg_values_supported").is_none());
    assert!(without.get("dpop_bound_access_tokens_required").is_none());
}
