//! Documents from the fuzzer where an authorization server's answers go: a JWK set, a
//! discovery document (then its JWK set), and an introspection answer read by a guard.
//! None may panic; an introspection answer is accepted only if serde_json reads it as an
//! object with `"active": true`.
#![no_main]

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use callguard::Secret;
use callguard::guard::GuardedBody;
use callguard::jwt::JwtKeySet;
use callguard::keys::{FetchError, HttpClient, HttpFuture, RemoteKeySettings};
use callguard::oauth::{AccessTokens, Introspection, Issuer};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;
use tower::{Layer, ServiceExt, service_fn};

/// Answers every request with the same bytes.
struct Answering(Bytes);

impl HttpClient for Answering {
    fn send(&self, _request: Request<Bytes>, _max_body: usize, _timeout: Duration) -> HttpFuture {
        let body = self.0.clone();
        Box::pin(async move {
            Ok::<_, FetchError>(
                Response::builder()
                    .status(StatusCode::OK)
                    .body(body)
                    .expect("a valid response"),
            )
        })
    }
}

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
});

fuzz_target!(|data: &[u8]| {
    let Some((&which, document)) = data.split_first() else {
        return;
    };
    let client: Arc<dyn HttpClient> = Arc::new(Answering(Bytes::copy_from_slice(document)));
    match which % 3 {
        0 => {
            let _ = JwtKeySet::from_json(document, 16);
        }
        1 => {
            let settings = RemoteKeySettings::default();
            let _ = RUNTIME.block_on(Issuer::discover("https://as.example.com", client, settings));
        }
        _ => {
            let introspection = Introspection::builder(
                "https://as.example.com/introspect",
                "resource-server",
                Secret::from_utf8("introspection-secret-0123").expect("a valid secret"),
                client,
            )
            .audience("https://api.example.com/mcp")
            .build()
            .expect("a valid introspection");
            let guard = AccessTokens::introspected(introspection).layer();
            let service = guard.layer(service_fn(
                |_request: Request<GuardedBody<Full<Bytes>>>| async {
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
                },
            ));
            let request = Request::post("/mcp")
                .header("authorization", "Bearer opaque-token-0123")
                .body(Full::new(Bytes::new()))
                .expect("a valid request");
            let response = RUNTIME
                .block_on(service.oneshot(request))
                .expect("infallible");
            if response.status().is_success() {
                let answer: serde_json::Value =
                    serde_json::from_slice(document).expect("an accepted answer is JSON");
                assert_eq!(
                    answer.get("active"),
                    Some(&serde_json::Value::Bool(true)),
                    "{answer}"
                );
            }
        }
    }
});
