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

/// The static token `tok_agent_0123456789abcdef`, named `agent`.
fn agent_token() -> callguard::bearer::BearerTokens {
    callguard::bearer::BearerTokens::builder()
        .token(
            "agent",
            Secret::from_utf8("tok_agent_0123456789abcdef").unwrap(),
            callguard::Scopes::empty(),
        )
        .build()
        .unwrap()
}

/// `token` as a bearer token from `client`, through `guard`: the answer's status.
fn bearer_from(
    guard: &GuardLayer,
    client: &str,
    token: &str,
) -> impl std::future::Future<Output = StatusCode> + use<> {
    let mut request = Request::post("/tools")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    request
        .extensions_mut()
        .insert(callguard::ClientAddr(client.parse().unwrap()));
    let service = guard.clone().layer(service_fn(echo));
    async move { service.oneshot(request).await.unwrap().status() }
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
        .sign(&SigningRequest::new(b"{}").timestamp(now).id("msg_shared"))
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
        .sign(
            &SigningRequest::new(b"{}")
                .timestamp(now)
                .id("msg_after_outage"),
        )
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
    let replica_a = JwtVerifier::new(config.clone()).revocations(callguard::jwt::Revocations::new(
        RedisReplayStore::connect(&redis.url).await.unwrap(),
    ));
    let replica_b = JwtVerifier::new(config).revocations(callguard::jwt::Revocations::new(
        RedisReplayStore::connect(&redis.url).await.unwrap(),
    ));
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

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn signed_delivery(id: &str) -> Vec<(String, String)> {
    providers::standard_webhooks()
        .secret("k", secret())
        .build()
        .unwrap()
        .sign(&SigningRequest::new(b"{}").timestamp(now()).id(id))
        .unwrap()
}

#[tokio::test]
async fn a_delivery_the_handler_failed_is_released_in_redis() {
    let Some(redis) = start_redis() else { return };
    let guard = GuardLayer::new(
        providers::standard_webhooks()
            .secret("k", secret())
            .replay_protection(RedisReplayStore::connect(&redis.url).await.unwrap())
            .build()
            .unwrap(),
    );
    let headers = signed_delivery("msg_handler_failed");
    let failing = service_fn(|_request: Request<_>| async {
        let mut response = http::Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::BAD_GATEWAY;
        Ok::<_, std::convert::Infallible>(response)
    });
    let mut request = Request::post("/hook");
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    let response = guard
        .clone()
        .layer(failing)
        .oneshot(request.body(Full::new(Bytes::from_static(b"{}"))).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(
        deliver(&guard, &headers).await.0,
        StatusCode::OK,
        "the retry is accepted"
    );
    assert_eq!(
        deliver(&guard, &headers).await.1,
        Some(AuthErrorKind::Replayed)
    );
}

#[tokio::test]
async fn a_delivery_answered_503_while_redis_stalled_is_accepted_on_retry() {
    let Some(redis) = start_redis() else { return };
    let store = RedisReplayStore::connect(&redis.url).await.unwrap();
    let guard = GuardLayer::new(
        providers::standard_webhooks()
            .secret("k", secret())
            .replay_protection(store)
            .build()
            .unwrap(),
    );
    let headers = signed_delivery("msg_during_stall");
    // Writes wait for 2.5 s: longer than the store's 1 s timeout; then Redis applies the SET.
    let admin = redis::Client::open(redis.url.as_str()).unwrap();
    let mut admin = admin.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(2500)
        .arg("WRITE")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(
        deliver(&guard, &headers).await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some(AuthErrorKind::StoreUnavailable)
        )
    );
    // The pause ends, the late SET lands, and the store's undo follows it.
    let mut accepted = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        match deliver(&guard, &headers).await {
            (StatusCode::OK, None) => {
                accepted = true;
                break;
            }
            (StatusCode::SERVICE_UNAVAILABLE, _)
            | (StatusCode::UNAUTHORIZED, Some(AuthErrorKind::Replayed)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(accepted, "the platform's retry was refused after the stall");
    assert_eq!(
        deliver(&guard, &headers).await.1,
        Some(AuthErrorKind::Replayed),
        "and accepted once"
    );
}

#[tokio::test]
async fn a_refused_retry_keeps_the_key_as_long_as_the_retry_verifies() {
    let Some(redis) = start_redis() else { return };
    let guard = GuardLayer::new(
        providers::standard_webhooks()
            .secret("k", secret())
            .replay_protection(RedisReplayStore::connect(&redis.url).await.unwrap())
            .build()
            .unwrap(),
    );
    let signer = providers::standard_webhooks()
        .secret("k", secret())
        .build()
        .unwrap();
    let at = |timestamp: i64| {
        signer
            .sign(
                &SigningRequest::new(b"{}")
                    .timestamp(timestamp)
                    .id("msg_retried"),
            )
            .unwrap()
    };
    // First seen stamped 200 s ago: remembered for about 100 s more.
    assert_eq!(deliver(&guard, &at(now() - 200)).await.0, StatusCode::OK);
    // The platform's retry, stamped now, verifies for 300 s: refused, and the key kept so long.
    assert_eq!(
        deliver(&guard, &at(now())).await.1,
        Some(AuthErrorKind::Replayed)
    );
    let admin = redis::Client::open(redis.url.as_str()).unwrap();
    let mut admin = admin.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("callguard:replay:*")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    let ttl: i64 = redis::cmd("TTL")
        .arg(&keys[0])
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(
        ttl >= 290,
        "the key expires in {ttl} s, before the retry stops verifying"
    );
}

#[tokio::test]
async fn a_store_error_keeps_the_redis_error_as_its_source() {
    use std::error::Error as _;
    let Err(error) = RedisReplayStore::connect("not-a-redis-url").await else {
        panic!("an invalid URL cannot connect");
    };
    assert!(error.to_string().starts_with("replay store unavailable: "));
    let source = error.source().expect("the redis error is kept");
    assert!(
        source.downcast_ref::<redis::RedisError>().is_some(),
        "{source:?}"
    );
}

/// The Redis script and the in-memory arithmetic are one rule: the same steps at the same
/// times give the same answers, through charges, refunds, lock, recovery, escalation and the
/// cap.
#[tokio::test]
async fn failure_counts_in_redis_follow_the_same_steps_as_in_memory() {
    use callguard::replay::{FailureEntry, FailureRule, FailureStep, ReplayKey, ReplayStore};
    let Some(redis) = start_redis() else { return };
    let store = RedisReplayStore::connect(&redis.url).await.unwrap();
    let limits = [(3u32, 60u64, 600u64), (1, 1, 5), (5, 10, 1000)];
    // Settles and refunds name the window of the last charge (0 before any: a stale one).
    let steps = [
        "attempt", "fail", "attempt", "settle", "charge", "attempt", "refund", "peek", "fail",
    ];
    for (n, (max_failures, window, max_lockout)) in limits.into_iter().enumerate() {
        let rule = rule_of(max_failures, window, max_lockout);
        let key = key_of(n);
        let mut memory = FailureEntry::default();
        let mut now = 1_800_000_000i64;
        let mut charged_in = 0;
        for round in 0..400u32 {
            now += i64::from(round % 13);
            // An uneven walk through the steps, so each follows each.
            let step = match steps[(round as usize * 5 + round as usize / 7) % steps.len()] {
                "attempt" => FailureStep::Attempt,
                "charge" => FailureStep::Charge,
                "peek" => FailureStep::Peek,
                "fail" => FailureStep::Fail,
                "settle" => FailureStep::Settle { charged_in },
                _ => FailureStep::Refund { charged_in },
            };
            let expected = memory.step(rule, step, now);
            if let Some(window) = expected.charged {
                charged_in = window;
            }
            let answered = store.failure_step(key, rule, step, now).await.unwrap();
            assert_eq!(
                answered, expected,
                "limit {n}, round {round}, {step:?} at {now}"
            );
        }
        // On a key never seen: a peek changes nothing, a charge creates it charged.
        let fresh = key_of(100 + n);
        let mut memory = FailureEntry::default();
        for step in [
            FailureStep::Peek,
            FailureStep::Charge,
            FailureStep::Peek,
            FailureStep::Charge,
        ] {
            let expected = memory.step(rule, step, now);
            let answered = store.failure_step(fresh, rule, step, now).await.unwrap();
            assert_eq!(answered, expected, "limit {n}, a fresh key, {step:?}");
        }
    }

    fn rule_of(max_failures: u32, window: u64, max_lockout: u64) -> FailureRule {
        // FailureRule is non-exhaustive: read one back from a limit built the public way.
        callguard::limit::FailureLimit::builder(callguard::replay::MemoryReplayStore::default())
            .max_failures(max_failures)
            .window(Duration::from_secs(window))
            .max_lockout(Duration::from_secs(max_lockout))
            .build()
            .unwrap()
            .rule()
    }

    fn key_of(n: usize) -> ReplayKey {
        ReplayKey::from_bytes([u8::try_from(n).unwrap(); 32])
    }
}

/// Two replicas on one Redis share their failure counts: failures at one lock the client
/// out of both, and the right token from another address passes either.
#[tokio::test]
async fn two_replicas_sharing_redis_share_failure_counts() {
    use callguard::limit::FailureLimit;
    let Some(redis) = start_redis() else { return };
    let replica = |store| {
        let limit = FailureLimit::builder(store)
            .max_failures(2)
            .window(Duration::from_secs(60))
            .build()
            .unwrap();
        GuardLayer::new(agent_token()).failure_limit(limit)
    };
    let a = replica(RedisReplayStore::connect(&redis.url).await.unwrap());
    let b = replica(RedisReplayStore::connect(&redis.url).await.unwrap());
    let send = |guard: &GuardLayer, client: &str, token: &str| bearer_from(guard, client, token);
    let wrong = "tok_wrong_0123456789abcdef";
    assert_eq!(
        send(&a, "203.0.113.7", wrong).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&b, "203.0.113.7", wrong).await,
        StatusCode::UNAUTHORIZED
    );
    let right = "tok_agent_0123456789abcdef";
    assert_eq!(
        send(&a, "203.0.113.7", right).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send(&b, "203.0.113.7", right).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(send(&b, "198.51.100.20", right).await, StatusCode::OK);
    // Redis gone: 503, not a free pass.
    drop(redis);
    assert_eq!(
        send(&a, "198.51.100.20", right).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

/// Rate decisions in Redis follow `RateEntry::take` step for step.
#[tokio::test]
async fn rate_decisions_in_redis_follow_the_same_steps_as_in_memory() {
    use callguard::replay::{RateEntry, ReplayKey, ReplayStore};
    let Some(redis) = start_redis() else { return };
    let store = RedisReplayStore::connect(&redis.url).await.unwrap();
    for (n, (quota, period_ms, burst)) in [(3u32, 3000u64, 3u32), (10, 1000, 1), (7, 60_000, 4)]
        .into_iter()
        .enumerate()
    {
        let rule =
            callguard::limit::RateLimit::builder(callguard::replay::MemoryReplayStore::default())
                .quota(quota, Duration::from_millis(period_ms))
                .burst(burst)
                .build()
                .unwrap()
                .rule();
        let key = ReplayKey::from_bytes([u8::try_from(n).unwrap() + 100; 32]);
        let mut memory = RateEntry::default();
        let mut now = 1_800_000_000_000i64;
        for step in 0..300i64 {
            now += (step * 37) % 450;
            let expected = memory.take(rule, now);
            let answered = store.rate(key, rule, now).await.unwrap();
            assert_eq!(answered, expected, "limit {n}, step {step}, now {now}");
        }
    }
}

/// One-time codes on Redis follow the same flow as in memory, and Redis never holds a code
/// in clear text (only its keyed hash).
#[tokio::test]
async fn one_time_codes_in_redis_follow_the_flow_and_no_code_is_kept_in_clear() {
    use callguard::clock::FixedClock;
    let Some(redis) = start_redis() else { return };
    let store = RedisReplayStore::connect(&redis.url).await.unwrap();
    let clock = FixedClock::at_unix(now());
    let resend = Duration::from_millis(1100);
    let codes = common::codes::codes(store, &clock, resend);
    common::codes::the_flow(&codes, &clock, "+15550001111", resend).await;
    // Issue one more and look at everything Redis holds.
    tokio::time::sleep(resend).await;
    let outbox = common::codes::Outbox::default();
    codes.issue("+15550001111", "mfa", &outbox).await.unwrap();
    let code = outbox.last();
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    for key in keys {
        assert!(
            !key.contains(&code) && !key.contains("15550001111"),
            "{key}"
        );
        let dump: Vec<u8> = redis::cmd("DUMP")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .unwrap();
        assert!(
            !dump.windows(code.len()).any(|w| w == code.as_bytes()),
            "{key} holds the code"
        );
    }
}

/// Commands Redis has run, by name, from `INFO commandstats`. Commands a script runs are
/// counted under their own names, so a round trip is one `evalsha`.
async fn commands_run(connection: &mut redis::aio::MultiplexedConnection) -> Vec<(String, u64)> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(connection)
        .await
        .unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

/// The commands run between two readings, by name, leaving out the `INFO` that read them.
fn commands_between(before: &[(String, u64)], after: &[(String, u64)]) -> Vec<(String, u64)> {
    let mut run: Vec<(String, u64)> = after
        .iter()
        .filter(|(name, _)| name != "info")
        .map(|(name, calls)| {
            let earlier = before
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, c)| *c);
            (name.clone(), calls - earlier)
        })
        .filter(|(_, calls)| *calls > 0)
        .collect();
    run.sort();
    run
}

/// The store's promise, counted on a real Redis: each decision is one script, one round
/// trip (`evalsha`), and the client sends nothing else. Over 20 accepted requests each:
/// - a bearer request under a failure limit and a rate limit, from clients that never
///   failed: the attempt (not charged: nothing to refund) and the rate, 2 round trips;
/// - the same from a client with a failure on record: its attempt is charged, and refunded
///   once the credential is accepted, 3;
/// - a bearer request with neither: none;
/// - a signed delivery with replay protection: its record, 1.
#[tokio::test]
async fn an_accepted_request_costs_one_redis_round_trip_per_store_step() {
    use callguard::limit::{FailureLimit, RateLimit};
    let Some(redis) = start_redis() else { return };
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut observer = client.get_multiplexed_async_connection().await.unwrap();
    let store = RedisReplayStore::connect(&redis.url).await.unwrap();
    let tokens = agent_token();
    let send = |guard: &GuardLayer, client: String, token: &str| bearer_from(guard, &client, token);
    let right = "tok_agent_0123456789abcdef";
    let limited = GuardLayer::new(tokens.clone())
        .failure_limit(
            FailureLimit::builder(store.clone())
                .max_failures(5)
                .window(Duration::from_secs(60))
                .build()
                .unwrap(),
        )
        .rate_limit(
            RateLimit::builder(store.clone())
                .quota(1_000, Duration::from_secs(60))
                .build()
                .unwrap(),
        );
    // Each script is loaded by the first request that runs it, before counting starts.
    assert_eq!(
        send(&limited, "198.51.100.1".into(), "tok_wrong").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&limited, "198.51.100.1".into(), right).await,
        StatusCode::OK
    );
    let mut counted = async |guard: &GuardLayer, client: &dyn Fn(usize) -> String| {
        let before = commands_run(&mut observer).await;
        for n in 1..=20 {
            assert_eq!(send(guard, client(n), right).await, StatusCode::OK);
        }
        let after = commands_run(&mut observer).await;
        let run = commands_between(&before, &after);
        let round_trips = run
            .iter()
            .find(|(name, _)| name == "evalsha")
            .map_or(0, |(_, c)| *c);
        let scripted = ["get", "set", "hmget", "hset", "expire", "ttl", "del"];
        assert!(
            run.iter()
                .all(|(name, _)| name == "evalsha" || scripted.contains(&name.as_str())),
            "only scripts, and what they run: {run:?}"
        );
        round_trips
    };
    let fresh = |n: usize| format!("203.0.113.{n}");
    assert_eq!(counted(&limited, &fresh).await, 2 * 20);
    let failed_once = |_: usize| "198.51.100.1".to_owned();
    assert_eq!(counted(&limited, &failed_once).await, 3 * 20);
    assert_eq!(counted(&GuardLayer::new(tokens), &fresh).await, 0);
    let verifier = providers::standard_webhooks()
        .secret("k1", secret())
        .replay_protection(store.clone())
        .build()
        .unwrap();
    let signed = GuardLayer::new(verifier);
    assert_eq!(
        deliver(&signed, &signed_delivery("msg_warm")).await.0,
        StatusCode::OK
    );
    let before = commands_run(&mut observer).await;
    for n in 0..20 {
        let id = format!("msg_{n}");
        assert_eq!(
            deliver(&signed, &signed_delivery(&id)).await.0,
            StatusCode::OK
        );
    }
    let after = commands_run(&mut observer).await;
    let run = commands_between(&before, &after);
    assert_eq!(
        run.iter().find(|(name, _)| name == "evalsha"),
        Some(&("evalsha".to_owned(), 20)),
        "{run:?}"
    );
}

/// `per_network` on Redis, where each count is an awaited answer: a /48 whose /64s failed
/// enough gives the next one a single guess, and an address that has not failed is let in.
#[tokio::test]
async fn network_counts_in_redis_give_a_rotating_network_one_guess_per_address() {
    use callguard::limit::FailureLimit;
    let Some(redis) = start_redis() else { return };
    let limit = FailureLimit::builder(RedisReplayStore::connect(&redis.url).await.unwrap())
        .max_failures(5)
        .per_network(3)
        .window(Duration::from_secs(60))
        .build()
        .unwrap();
    let tokens = agent_token();
    let guard = GuardLayer::new(tokens).failure_limit(limit);
    let send = |client: &str, token: &str| bearer_from(&guard, client, token);
    let (wrong, right) = ("tok_wrong_0123456789abcdef", "tok_agent_0123456789abcdef");
    for client in ["2001:db8:7:1::1", "2001:db8:7:2::1", "2001:db8:7:3::1"] {
        assert_eq!(send(client, wrong).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        send("2001:db8:7:4::1", wrong).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send("2001:db8:7:4::1", right).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(send("2001:db8:7:5::1", right).await, StatusCode::OK);
    assert_eq!(
        send("2001:db8:8:1::1", wrong).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(send("2001:db8:8:1::1", right).await, StatusCode::OK);
}
