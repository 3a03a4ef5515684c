//! Replay protection and JWT revocation shared through a real Redis: two replicas, one
//! store; a Redis that goes away gives 503, never a silent accept.
//!
//! Starts its own `redis-server` on a free loopback port. `.ci/run` installs Redis and sets
//! `CALLGUARD_REQUIRE_REDIS=1`, so there a missing server is a failure; elsewhere the test
//! says loudly that it was skipped.
#![cfg(feature = "redis")]
#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "a test fails by panicking"
)]

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use callguard::replay_redis::RedisReplayStore;
use callguard::signature::SigningRequest;
use callguard::{AuthError, AuthErrorKind, GuardLayer, Secret, providers};
use common::echo;
use http::{Request, StatusCode};
use http_body_util::Full;
use tower::{Layer, ServiceExt, service_fn};

struct RedisServer {
    child: Child,
    url: String,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A throwaway `redis-server` on loopback, or `None` when it is not installed (and not required).
fn start_redis() -> Option<RedisServer> {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spawned = Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match spawned {
        Ok(child) => child,
        Err(e) if std::env::var("CALLGUARD_REQUIRE_REDIS").is_err() => {
            eprintln!(
                "SKIPPED: redis-server is not installed ({e}); apt-get install redis-server to run this test"
            );
            return None;
        }
        Err(e) => panic!("redis-server is required here but could not start: {e}"),
    };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(RedisServer {
                child,
                url: format!("redis://127.0.0.1:{port}/"),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("redis-server did not start listening on port {port}");
}

async fn deliver(
    guard: &GuardLayer,
    headers: &[(String, String)],
) -> (StatusCode, Option<AuthErrorKind>) {
    let mut request = Request::post("/hook");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = guard
        .clone()
        .layer(service_fn(echo))
        .oneshot(request.body(Full::new(Bytes::from_static(b"{}"))).unwrap())
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

fn secret() -> Secret {
    Secret::from_standard_webhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
}

#[tokio::test]
async fn two_replicas_sharing_redis_accept_a_delivery_once_and_refuse_when_redis_is_gone() {
    let Some(redis) = start_redis() else { return };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let replica = |store| {
        GuardLayer::new(
            providers::standard_webhooks()
                .secret("k", secret())
                .replay_protection(store)
                .build()
                .unwrap(),
        )
    };
    let replica_a = replica(RedisReplayStore::connect(&redis.url).await.unwrap());
    let replica_b = replica(RedisReplayStore::connect(&redis.url).await.unwrap());
    let signer = providers::standard_webhooks()
        .secret("k", secret())
        .build()
        .unwrap();
    let headers = signer
        .sign(&SigningRequest {
            url: None,
            body: b"{}",
            timestamp: now,
            id: "msg_shared",
        })
        .unwrap();

    assert_eq!(deliver(&replica_a, &headers).await.0, StatusCode::OK);
    assert_eq!(
        deliver(&replica_b, &headers).await,
        (StatusCode::UNAUTHORIZED, Some(AuthErrorKind::Replayed))
    );
    assert_eq!(
        deliver(&replica_a, &headers).await.1,
        Some(AuthErrorKind::Replayed)
    );

    let fresh = signer
        .sign(&SigningRequest {
            url: None,
            body: b"{}",
            timestamp: now,
            id: "msg_after_outage",
        })
        .unwrap();
    drop(redis);
    assert_eq!(
        deliver(&replica_b, &fresh).await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some(AuthErrorKind::StoreUnavailable)
        ),
        "a store that is down is never a silent accept"
    );
}

#[tokio::test]
async fn a_jwt_revoked_through_redis_is_refused_by_every_replica() {
    use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier, TokenIssuer, TokenRequest};
    use callguard::replay::ReplayPolicy;
    let Some(redis) = start_redis() else { return };
    let config = JwtConfig::builder()
        .key(
            "k",
            JwtKey::hmac(
                JwtAlgorithm::HS256,
                &Secret::from_utf8("a-jwt-signing-key-of-32-bytes!!!").unwrap(),
            )
            .unwrap(),
        )
        .build()
        .unwrap();
    let token = TokenIssuer::new(config.clone())
        .issue(TokenRequest::new(
            "agent",
            callguard::Scopes::empty(),
            Duration::from_secs(300),
        ))
        .unwrap();
    let replica_a = JwtVerifier::new(config.clone()).with_revocations(
        RedisReplayStore::connect(&redis.url).await.unwrap(),
        ReplayPolicy::FailClosed,
    );
    let replica_b = JwtVerifier::new(config).with_revocations(
        RedisReplayStore::connect(&redis.url).await.unwrap(),
        ReplayPolicy::FailClosed,
    );
    let bearer = vec![(
        "authorization".to_owned(),
        format!("Bearer {}", token.access_token),
    )];
    assert_eq!(
        deliver(&GuardLayer::new(replica_b.clone()), &bearer)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        replica_a.revoke(&token.jti, Duration::from_secs(300)).await,
        Ok(true)
    );
    assert_eq!(
        deliver(&GuardLayer::new(replica_b), &bearer).await.1,
        Some(AuthErrorKind::TokenRevoked)
    );
}
