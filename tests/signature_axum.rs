//! The guard inside an axum application: `Router::layer` and `route_layer`, the `Caller`
//! extractors, and extractors behind the guard reading the verified body.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use axum::body::{Body, Bytes};
use axum::routing::{get, post};
use axum::{Json, Router};
use callguard::signature::SignatureVerifier;
use callguard::{AuthMethod, Caller, GuardLayer, Scopes, Secret};
use common::{SECRET, sign_hex};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tower::ServiceExt;

const OLD_SECRET: &str = "the-previous-secret-still-in-use!";

fn verifier() -> SignatureVerifier {
    SignatureVerifier::builder()
        .identity("agents")
        .scopes(Scopes::from_iter(["tools:call"]))
        .secret("current", Secret::from_utf8(SECRET).unwrap())
        .secret("previous", Secret::from_utf8(OLD_SECRET).unwrap())
        .build()
        .unwrap()
}

#[derive(Deserialize)]
struct Order {
    item: String,
    quantity: u32,
}

async fn describe(caller: Caller, body: Bytes) -> Json<Value> {
    Json(json!({
        "method": caller.method().as_str(),
        "id": caller.id(),
        "key_id": caller.key_id(),
        "scopes": caller.scopes().iter().collect::<Vec<_>>(),
        "body": String::from_utf8_lossy(&body),
    }))
}

async fn order(caller: Caller, Json(order): Json<Order>) -> String {
    format!(
        "{} ordered {} x {}",
        caller.id(),
        order.quantity,
        order.item
    )
}

async fn maybe(caller: Option<Caller>) -> String {
    caller.map_or_else(|| "anonymous".to_owned(), |c| c.id().to_owned())
}

fn app() -> Router {
    Router::new()
        .route("/tools/describe", post(describe))
        .route("/tools/order", post(order))
        .route_layer(GuardLayer::new(verifier()))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/unguarded",
            post(|caller: Caller| async move { caller.id().to_owned() }),
        )
        .route("/unguarded/optional", post(maybe))
}

fn signed(uri: &str, key: &str, body: &'static str) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .header("x-signature", sign_hex(key, body.as_bytes()))
        .body(Body::from(body))
        .unwrap()
}

async fn body_text(response: axum::response::Response) -> String {
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

#[tokio::test]
async fn caller_extractor_sees_method_identity_key_and_scopes() {
    let response = app()
        .oneshot(signed("/tools/describe", SECRET, r#"{"a":1}"#))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let json: Value = serde_json::from_str(&body_text(response).await).unwrap();
    assert_eq!(
        json,
        json!({"method": "signature", "id": "agents", "key_id": "current", "scopes": ["tools:call"], "body": "{\"a\":1}"})
    );
}

#[tokio::test]
async fn rotated_secret_is_accepted_and_named() {
    let response = app()
        .oneshot(signed("/tools/describe", OLD_SECRET, "{}"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let json: Value = serde_json::from_str(&body_text(response).await).unwrap();
    assert_eq!(json["key_id"], "previous");
}

#[tokio::test]
async fn json_extractor_behind_the_guard_reads_the_verified_body() {
    let response = app()
        .oneshot(signed(
            "/tools/order",
            SECRET,
            r#"{"item":"widget","quantity":3}"#,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_text(response).await, "agents ordered 3 x widget");
}

#[tokio::test]
async fn unsigned_request_to_a_guarded_route_is_401() {
    let request = Request::post("/tools/order")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(
        app().oneshot(request).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn route_layer_leaves_unknown_routes_404_and_other_routes_open() {
    let unknown = Request::post("/tools/nope/x").body(Body::empty()).unwrap();
    assert_eq!(
        app().oneshot(unknown).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let health = Request::get("/healthz").body(Body::empty()).unwrap();
    assert_eq!(
        app().oneshot(health).await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn caller_extractor_without_a_guard_is_a_500_naming_the_mistake() {
    let request = Request::post("/unguarded").body(Body::empty()).unwrap();
    let response = app().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body_text(response).await.contains("GuardLayer"));
}

#[tokio::test]
async fn optional_caller_extractor_without_a_guard_is_none() {
    let request = Request::post("/unguarded/optional")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        body_text(app().oneshot(request).await.unwrap()).await,
        "anonymous"
    );
}

#[tokio::test]
async fn router_layer_guards_every_route_including_unknown_ones() {
    let app = Router::new()
        .route("/a", post(|| async { "a" }))
        .layer(GuardLayer::new(verifier()));
    let unsigned = Request::post("/a").body(Body::empty()).unwrap();
    assert_eq!(
        app.clone().oneshot(unsigned).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let signed_request = signed("/a", SECRET, "");
    assert_eq!(
        app.oneshot(signed_request).await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn optional_mode_passes_requests_without_credentials_and_rejects_bad_ones() {
    let app = Router::new()
        .route("/tools/maybe", post(maybe))
        .route_layer(GuardLayer::new(verifier()).optional());
    let anonymous = Request::post("/tools/maybe").body(Body::empty()).unwrap();
    let response = app.clone().oneshot(anonymous).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_text(response).await, "anonymous");

    let good = app
        .clone()
        .oneshot(signed("/tools/maybe", SECRET, "x"))
        .await
        .unwrap();
    assert_eq!(body_text(good).await, "agents");

    let bad = signed("/tools/maybe", "a-secret-nobody-configured-here!", "x");
    assert_eq!(
        app.oneshot(bad).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn request_parts_and_extensions_survive_the_guard() {
    #[derive(Clone)]
    struct Marker(&'static str);
    let app = Router::new()
        .route(
            "/tools/{name}",
            post(
                |axum::extract::Path(name): axum::extract::Path<String>,
                 axum::Extension(marker): axum::Extension<Marker>,
                 headers: http::HeaderMap,
                 caller: Caller| async move {
                    format!(
                        "{name} {} {} {:?}",
                        marker.0,
                        headers["x-extra"].to_str().unwrap(),
                        caller.method()
                    )
                },
            ),
        )
        .route_layer(GuardLayer::new(verifier()))
        .layer(axum::Extension(Marker("kept")));
    let mut request = signed("/tools/lookup?q=1", SECRET, "{}");
    request
        .headers_mut()
        .insert("x-extra", "here".parse().unwrap());
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(
        body_text(response).await,
        format!("lookup kept here {:?}", AuthMethod::Signature)
    );
}
