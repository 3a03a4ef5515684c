//! Bodies from the fuzzer through `ToolScopesLayer`, differentially against serde_json: a
//! caller with only `mcp:call` must never reach the service with a body that serde_json
//! (read whole, or after the lenient readings some servers apply: a byte-order mark
//! dropped, UTF-16 decoded) reads as a `tools/call` of `refund`, which needs
//! `refunds:write`.
#![no_main]

use std::convert::Infallible;
use std::future::Future;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use callguard::bearer::BearerTokens;
use callguard::guard::GuardedBody;
use callguard::mcp::ToolScopesLayer;
use callguard::{GuardLayer, Scopes, Secret};
use http::{Request, Response};
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;
use tower::{Layer, Service, service_fn};

const TOKEN: &str = "tok_fuzz_0123456789abcdef";

static GUARD: LazyLock<GuardLayer> = LazyLock::new(|| {
    let tokens = BearerTokens::builder()
        .token(
            "agent",
            Secret::from_utf8(TOKEN).expect("a valid secret"),
            Scopes::from_iter(["mcp:call"]),
        )
        .build()
        .expect("a valid token set");
    GuardLayer::new(tokens)
});

static TOOLS: LazyLock<ToolScopesLayer> = LazyLock::new(|| {
    ToolScopesLayer::new()
        .tool("refund", ["mcp:call", "refunds:write"])
        .expect("a valid tool rule")
        .body_limit(64 * 1024)
});

/// Whether `value` is, or is a batch holding, a `tools/call` of `refund`.
fn calls_refund(value: &serde_json::Value) -> bool {
    let one = |call: &serde_json::Value| {
        call.get("method").and_then(|m| m.as_str()) == Some("tools/call")
            && call.pointer("/params/name").and_then(|n| n.as_str()) == Some("refund")
    };
    match value {
        serde_json::Value::Array(calls) => calls.iter().any(one),
        call => one(call),
    }
}

/// The texts a lenient reader might make of `body`.
fn readings(body: &[u8]) -> Vec<Vec<u8>> {
    let mut texts = vec![body.to_vec()];
    if let Some(rest) = body.strip_prefix(b"\xef\xbb\xbf") {
        texts.push(rest.to_vec());
    }
    for big_endian in [false, true] {
        let units: Vec<u16> = body
            .chunks_exact(2)
            .map(|pair| {
                if big_endian {
                    u16::from_be_bytes([pair[0], pair[1]])
                } else {
                    u16::from_le_bytes([pair[0], pair[1]])
                }
            })
            .collect();
        if let Ok(text) = String::from_utf16(&units) {
            texts.push(text.trim_start_matches('\u{feff}').as_bytes().to_vec());
        }
    }
    texts
}

fuzz_target!(|data: &[u8]| {
    let reached = std::sync::Arc::new(AtomicBool::new(false));
    let seen = std::sync::Arc::clone(&reached);
    let service = service_fn(
        move |_request: Request<GuardedBody<GuardedBody<Full<Bytes>>>>| {
            seen.store(true, Ordering::SeqCst);
            async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
        },
    );
    let mut service = GUARD.clone().layer(TOOLS.clone().layer(service));
    let request = Request::post("/mcp")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::copy_from_slice(data)))
        .expect("a valid request");
    let mut cx = Context::from_waker(Waker::noop());
    if service.poll_ready(&mut cx).is_pending() {
        return;
    }
    let mut future = std::pin::pin!(service.call(request));
    let Poll::Ready(Ok(_response)) = future.as_mut().poll(&mut cx) else {
        return;
    };
    if reached.load(Ordering::SeqCst) {
        for text in readings(data) {
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&text) {
                assert!(
                    !calls_refund(&value),
                    "a tools/call of refund was handed on: {data:?}"
                );
            }
        }
    }
});
