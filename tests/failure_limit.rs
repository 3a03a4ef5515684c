//! Failed-attempt limits: failures counted per client, 429 without checking the credential
//! past the limit, another client unaffected, recovery after the window.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use callguard::bearer::BearerTokens;
use callguard::clock::FixedClock;
use callguard::limit::FailureLimit;
use callguard::replay::{MemoryReplayStore, ReplayPolicy, ReplayStore, StoreError, StoreFuture};
use callguard::{AuthError, AuthErrorKind, ClientAddr, GuardLayer, Scopes, Secret};
use http::{Request, StatusCode};
use http_body_util::Full;
use tower::{Layer, ServiceExt, service_fn};

const TOKEN: &str = "tok_agent_0123456789abcdef";
const NOW: i64 = 1_800_000_000;

fn tokens() -> BearerTokens {
    BearerTokens::builder()
        .token("agent", Secret::from_utf8(TOKEN).unwrap(), Scopes::empty())
        .build()
        .unwrap()
}

fn guard(store: impl ReplayStore, clock: &FixedClock, policy: ReplayPolicy) -> GuardLayer {
    let limit = FailureLimit::builder(store)
        .max_failures(3)
        .window(Duration::from_secs(60))
        .max_lockout(Duration::from_secs(600))
        .policy(policy)
        .clock(clock.clone())
        .build()
        .unwrap();
    GuardLayer::new(tokens()).failure_limit(limit)
}

struct Answer {
    status: StatusCode,
    kind: Option<AuthErrorKind>,
    retry_after: Option<String>,
}

async fn call(guard: &GuardLayer, client: Option<&str>, token: &str) -> Answer {
    let service = guard.layer(service_fn(|_: Request<_>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
    }));
    let mut request = Request::post("/tools/echo");
    if !token.is_empty() {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let mut request = request.body(Full::new(Bytes::new())).unwrap();
    if let Some(client) = client {
        let client: IpAddr = client.parse().unwrap();
        request.extensions_mut().insert(ClientAddr(client));
    }
    let response = service.oneshot(request).await.unwrap();
    Answer {
        status: response.status(),
        kind: response
            .extensions()
            .get::<AuthError>()
            .map(AuthError::kind),
        retry_after: response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned()),
    }
}

const ATTACKER: Option<&str> = Some("203.0.113.7");
const USER: Option<&str> = Some("198.51.100.20");

#[tokio::test]
async fn a_burst_of_wrong_tokens_is_locked_out_and_another_client_still_passes() {
    let clock = FixedClock::at_unix(NOW);
    let guard = guard(
        MemoryReplayStore::default(),
        &clock,
        ReplayPolicy::FailClosed,
    );
    for _ in 0..3 {
        assert_eq!(
            call(&guard, ATTACKER, "tok_wrong_0123456789abcdef")
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Locked: even the right token is not checked.
    let locked = call(&guard, ATTACKER, TOKEN).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(locked.kind, Some(AuthErrorKind::TooManyFailures));
    assert_eq!(locked.retry_after.as_deref(), Some("60"));
    // Another client, the same account: accepted.
    assert_eq!(call(&guard, USER, TOKEN).await.status, StatusCode::OK);
    // Requests without a credential (empty here: no header) are not failures.
    let other = Some("192.0.2.1");
    for _ in 0..5 {
        let answer = call(&guard, other, "").await;
        assert_ne!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    }
    // The lock ends with the window.
    clock.advance(Duration::from_secs(30));
    assert_eq!(
        call(&guard, ATTACKER, TOKEN).await.retry_after.as_deref(),
        Some("30")
    );
    clock.advance(Duration::from_secs(30));
    assert_eq!(call(&guard, ATTACKER, TOKEN).await.status, StatusCode::OK);
    // Back and guessing again: locked for twice the window.
    for _ in 0..3 {
        call(&guard, ATTACKER, "tok_wrong_0123456789abcdef").await;
    }
    assert_eq!(
        call(&guard, ATTACKER, TOKEN).await.retry_after.as_deref(),
        Some("120")
    );
}

#[tokio::test]
async fn ipv6_clients_are_counted_by_their_64() {
    let clock = FixedClock::at_unix(NOW);
    let guard = guard(
        MemoryReplayStore::default(),
        &clock,
        ReplayPolicy::FailClosed,
    );
    for host in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2::3"] {
        call(&guard, Some(host), "tok_wrong_0123456789abcdef").await;
    }
    assert_eq!(
        call(&guard, Some("2001:db8:1:2:ffff::9"), TOKEN)
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        call(&guard, Some("2001:db8:1:3::1"), TOKEN).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn without_a_client_address_the_guard_answers_500() {
    let clock = FixedClock::at_unix(NOW);
    let guard = guard(
        MemoryReplayStore::default(),
        &clock,
        ReplayPolicy::FailClosed,
    );
    let answer = call(&guard, None, TOKEN).await;
    assert_eq!(
        (answer.status, answer.kind),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(AuthErrorKind::ClientAddrMissing)
        )
    );
}

/// A store that is down for limits.
#[derive(Clone)]
struct Down;

impl ReplayStore for Down {
    fn first_seen(
        &self,
        _: callguard::replay::ReplayKey,
        _: callguard::replay::RecordId,
        _: Duration,
    ) -> StoreFuture {
        StoreFuture::pending(async { Err(StoreError::new("connection refused")) })
    }

    fn contains(&self, _: callguard::replay::ReplayKey) -> StoreFuture {
        StoreFuture::pending(async { Err(StoreError::new("connection refused")) })
    }

    fn release(
        &self,
        _: callguard::replay::ReplayKey,
        _: callguard::replay::RecordId,
    ) -> StoreFuture {
        StoreFuture::pending(async { Err(StoreError::new("connection refused")) })
    }

    fn failure_step(
        &self,
        _: callguard::replay::ReplayKey,
        _: callguard::replay::FailureRule,
        _: callguard::replay::FailureStep,
        _: i64,
    ) -> StoreFuture<callguard::replay::FailureState> {
        StoreFuture::pending(async { Err(StoreError::new("connection refused")) })
    }
}

#[tokio::test]
async fn a_store_that_cannot_answer_is_503_unless_failing_open_was_chosen() {
    let clock = FixedClock::at_unix(NOW);
    let closed = guard(Down, &clock, ReplayPolicy::FailClosed);
    let answer = call(&closed, USER, TOKEN).await;
    assert_eq!(
        (answer.status, answer.kind),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some(AuthErrorKind::StoreUnavailable)
        )
    );
    let open = guard(Down, &clock, ReplayPolicy::FailOpen);
    assert_eq!(call(&open, USER, TOKEN).await.status, StatusCode::OK);
    // A failure the store cannot count is still refused as it would be.
    assert_eq!(
        call(&open, USER, "tok_wrong_0123456789abcdef").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn a_limit_that_could_never_work_is_refused_when_built() {
    let build = |max: u32, window: u64, cap: u64| {
        FailureLimit::builder(MemoryReplayStore::default())
            .max_failures(max)
            .window(Duration::from_secs(window))
            .max_lockout(Duration::from_secs(cap))
            .build()
    };
    assert!(build(0, 60, 600).is_err());
    assert!(build(3, 0, 600).is_err());
    assert!(build(3, 60, 30).is_err());
    assert!(build(3, 60, 60).is_ok());
}

/// A signature guard that locks a client after `max_failures` failures a minute.
fn signature_guard(max_failures: u32, clock: &FixedClock) -> GuardLayer {
    use callguard::signature::SignatureVerifier;
    let limit = FailureLimit::builder(MemoryReplayStore::default())
        .max_failures(max_failures)
        .clock(clock.clone())
        .build()
        .unwrap();
    let verifier = SignatureVerifier::builder()
        .secret("k1", Secret::from_utf8("0123456789abcdef0123").unwrap())
        .build()
        .unwrap();
    GuardLayer::new(verifier).failure_limit(limit)
}

#[tokio::test]
async fn a_signature_that_fails_over_the_body_counts_too() {
    let guard = signature_guard(2, &FixedClock::at_unix(NOW));
    let send = |signature: &'static str| {
        let service = guard.layer(service_fn(|_: Request<_>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
        }));
        let mut request = Request::post("/webhooks")
            .header("x-signature", signature)
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        request
            .extensions_mut()
            .insert(ClientAddr("203.0.113.7".parse().unwrap()));
        async move { service.oneshot(request).await.unwrap().status() }
    };
    let wrong = "00000000000000000000000000000000000000000000000000000000000000aa";
    assert_eq!(send(wrong).await, StatusCode::UNAUTHORIZED);
    assert_eq!(send(wrong).await, StatusCode::UNAUTHORIZED);
    assert_eq!(send(wrong).await, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn guessing_one_account_from_many_addresses_gets_one_guess_each_and_the_user_still_gets_in() {
    use base64::Engine as _;
    use callguard::basic::BasicUsers;
    let clock = FixedClock::at_unix(NOW);
    let limit = FailureLimit::builder(MemoryReplayStore::default())
        .max_failures(10)
        .per_account(3)
        .window(Duration::from_secs(60))
        .clock(clock.clone())
        .build()
        .unwrap();
    let users = BasicUsers::builder()
        .user(
            "alice",
            Secret::from_utf8("alice-password-0123456").unwrap(),
            Scopes::empty(),
        )
        .build()
        .unwrap();
    let guard = GuardLayer::new(users).failure_limit(limit);
    let basic = |user: &str, password: &str| {
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {credentials}")
    };
    let send = |client: &str, authorization: String| {
        let service = guard.layer(service_fn(|_: Request<_>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
        }));
        let mut request = Request::post("/auth/token")
            .header("authorization", authorization)
            .body(Full::new(Bytes::new()))
            .unwrap();
        request
            .extensions_mut()
            .insert(ClientAddr(client.parse().unwrap()));
        async move { service.oneshot(request).await.unwrap().status() }
    };
    // A distributed guess: three addresses, one try each, well under the per-client limit.
    for n in 1..=3 {
        let client = format!("203.0.113.{n}");
        assert_eq!(
            send(&client, basic("alice", "guess")).await,
            StatusCode::UNAUTHORIZED
        );
    }
    // The account is under attack now: a new address gets one guess, then is locked.
    assert_eq!(
        send("203.0.113.9", basic("alice", "guess")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send("203.0.113.9", basic("alice", "alice-password-0123456")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The real user, from an address that has not failed: checked, and let in.
    assert_eq!(
        send("198.51.100.20", basic("alice", "alice-password-0123456")).await,
        StatusCode::OK
    );
    // Another account is not affected: its guesser keeps the per-client allowance.
    assert_eq!(
        send("203.0.113.50", basic("bob", "guess")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send("203.0.113.50", basic("bob", "guess")).await,
        StatusCode::UNAUTHORIZED
    );
}

/// A wrong signature over `body` from one client, through `guard`: the answer's status.
fn wrong_guess(
    guard: &GuardLayer,
    body: HeldBody,
) -> impl std::future::Future<Output = StatusCode> + use<> {
    wrong_guess_from(guard, "203.0.113.7", body)
}

/// A wrong signature over `body` from `client`, through `guard`: the answer's status.
fn wrong_guess_from(
    guard: &GuardLayer,
    client: &str,
    body: HeldBody,
) -> impl std::future::Future<Output = StatusCode> + use<> {
    let wrong = "00000000000000000000000000000000000000000000000000000000000000aa";
    let service = guard.layer(service_fn(|_: Request<_>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
    }));
    let mut request = Request::post("/webhooks")
        .header("x-signature", wrong)
        .body(body)
        .unwrap();
    request
        .extensions_mut()
        .insert(ClientAddr(client.parse().unwrap()));
    async move { service.oneshot(request).await.unwrap().status() }
}

/// A body whose bytes arrive when the test sends them.
struct HeldBody(Option<tokio::sync::oneshot::Receiver<Bytes>>);

impl http_body::Body for HeldBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let Some(receiver) = self.0.as_mut() else {
            return std::task::Poll::Ready(None);
        };
        let bytes = std::task::ready!(std::pin::Pin::new(receiver).poll(cx)).unwrap_or_default();
        self.0 = None;
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(bytes))))
    }
}

/// Of `count` wrong guesses `send` sends at once, each past the lock check before any body
/// has arrived, how many get their signature checked (401; the others must be 429).
async fn checked_of_a_burst<F>(count: usize, send: impl Fn(HeldBody) -> F) -> usize
where
    F: std::future::Future<Output = StatusCode>,
{
    let mut senders = Vec::new();
    let mut guesses = Vec::new();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..count {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let mut guess = Box::pin(send(HeldBody(Some(receiver))));
        let early = guess.as_mut().poll(&mut cx);
        senders.push(sender);
        guesses.push((guess, early));
    }
    for sender in senders {
        // A guess refused at once has dropped its body.
        let _ = sender.send(Bytes::from_static(b"{}"));
    }
    let mut checked = 0;
    for (guess, early) in guesses {
        let status = match early {
            std::task::Poll::Ready(status) => status,
            std::task::Poll::Pending => guess.await,
        };
        if status == StatusCode::UNAUTHORIZED {
            checked += 1;
        } else {
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        }
    }
    checked
}

/// `per_network` under concurrency: once a network is locked, an address of it that has
/// never failed gets one guess even when it sends a burst at once (an HTTP/2 connection's
/// streams), not one burst; an address of another network keeps its allowance.
#[tokio::test]
async fn a_burst_from_a_fresh_address_of_a_locked_network_is_held_to_the_client_limit() {
    use callguard::signature::SignatureVerifier;
    let limit = FailureLimit::builder(MemoryReplayStore::default())
        .max_failures(5)
        .per_network(3)
        .window(Duration::from_secs(60))
        .clock(FixedClock::at_unix(NOW))
        .build()
        .unwrap();
    let verifier = SignatureVerifier::builder()
        .secret("k1", Secret::from_utf8("0123456789abcdef0123").unwrap())
        .build()
        .unwrap();
    let guard = GuardLayer::new(verifier).failure_limit(limit);
    let held = |bytes: &'static [u8]| {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        sender.send(Bytes::from_static(bytes)).unwrap();
        HeldBody(Some(receiver))
    };
    for n in 1..=3 {
        let client = format!("198.51.100.{n}");
        assert_eq!(
            wrong_guess_from(&guard, &client, held(b"{}")).await,
            StatusCode::UNAUTHORIZED
        );
    }
    // The /24 is locked: a fresh address's burst of twenty is held to the per-client limit
    // of five, and its failures lock it.
    let checked =
        checked_of_a_burst(20, |body| wrong_guess_from(&guard, "198.51.100.50", body)).await;
    assert_eq!(
        checked, 5,
        "guesses of one fresh address of a locked network checked"
    );
    assert_eq!(
        wrong_guess_from(&guard, "198.51.100.50", held(b"{}")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another fresh address of it: its honest deliveries in flight together all pass.
    let accepted =
        deliveries_at_once(3, |body| good_delivery_from(&guard, "198.51.100.60", body)).await;
    assert_eq!(
        accepted, 3,
        "honest deliveries at once from a fresh address"
    );
}

/// A delivery signed right over `{}` from `client`, through `guard`: the answer's status.
fn good_delivery_from(
    guard: &GuardLayer,
    client: &str,
    body: HeldBody,
) -> impl std::future::Future<Output = StatusCode> + use<> {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"0123456789abcdef0123").unwrap();
    mac.update(b"{}");
    let good = hex::encode(mac.finalize().into_bytes());
    let service = guard.layer(service_fn(|_: Request<_>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
    }));
    let mut request = Request::post("/webhooks")
        .header("x-signature", good)
        .body(body)
        .unwrap();
    request
        .extensions_mut()
        .insert(ClientAddr(client.parse().unwrap()));
    async move { service.oneshot(request).await.unwrap().status() }
}

/// Of `count` deliveries `send` sends at once (each past the lock check before its body
/// arrives), how many are accepted.
async fn deliveries_at_once<F>(count: usize, send: impl Fn(HeldBody) -> F) -> usize
where
    F: std::future::Future<Output = StatusCode>,
{
    let mut senders = Vec::new();
    let mut pending = Vec::new();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..count {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let mut delivery = Box::pin(send(HeldBody(Some(receiver))));
        let early = delivery.as_mut().poll(&mut cx);
        senders.push(sender);
        pending.push((delivery, early));
    }
    for sender in senders {
        let _ = sender.send(Bytes::from_static(b"{}"));
    }
    let mut accepted = 0;
    for (delivery, early) in pending {
        let status = match early {
            std::task::Poll::Ready(status) => status,
            std::task::Poll::Pending => delivery.await,
        };
        accepted += usize::from(status == StatusCode::OK);
    }
    accepted
}

#[tokio::test]
async fn guesses_in_flight_at_once_from_a_failing_client_are_held_to_the_limit() {
    let clock = FixedClock::at_unix(NOW);
    let guard = signature_guard(3, &clock);
    let send = |body| wrong_guess(&guard, body);
    // Ten guesses at once, each past the lock check before any body has arrived: how many
    // of them get their signature checked.
    let burst = || checked_of_a_burst(10, send);
    // One failure on record: the client is known to be guessing.
    let (sender, receiver) = tokio::sync::oneshot::channel();
    sender.send(Bytes::from_static(b"{}")).unwrap();
    assert_eq!(
        send(HeldBody(Some(receiver))).await,
        StatusCode::UNAUTHORIZED
    );
    // Three failures a window: the one on record and two more were checked; the rest were
    // refused before their signature was.
    let checked = burst().await;
    assert_eq!(checked, 2, "guesses checked in one window: {}", checked + 1);
    assert_eq!(send(HeldBody(None)).await, StatusCode::TOO_MANY_REQUESTS);
    // The lock over, and the window after it: the client is still known, so a burst is held
    // to the limit again (three, the lock's escalation after them).
    clock.advance(std::time::Duration::from_secs(61));
    assert_eq!(burst().await, 3, "after the lock");
    clock.advance(std::time::Duration::from_secs(121));
    assert_eq!(burst().await, 3, "after the second lock");
    assert_eq!(send(HeldBody(None)).await, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn attempts_of_a_failing_client_that_do_not_fail_are_not_counted() {
    // The store answers later, as Redis does, and at once, as memory does.
    for later in [false, true] {
        let clock = FixedClock::at_unix(NOW);
        let store = MemoryReplayStore::default();
        let guard = if later {
            guard(Later(store), &clock, ReplayPolicy::FailClosed)
        } else {
            guard(store, &clock, ReplayPolicy::FailClosed)
        };
        let wrong = "tok_wrong_0123456789abcdef";
        // Two failures: one short of the lock of three. Each attempt after them is counted
        // before it is checked, and uncounted when it does not fail.
        for _ in 0..2 {
            assert_eq!(
                call(&guard, USER, wrong).await.status,
                StatusCode::UNAUTHORIZED
            );
        }
        for _ in 0..5 {
            assert_eq!(call(&guard, USER, TOKEN).await.status, StatusCode::OK);
            // A request without a credential is not a failure either.
            assert_eq!(
                call(&guard, USER, "").await.kind,
                Some(AuthErrorKind::MissingCredentials)
            );
        }
        // The third failure locks, as it would have without the attempts between.
        assert_eq!(
            call(&guard, USER, wrong).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call(&guard, USER, TOKEN).await.status,
            StatusCode::TOO_MANY_REQUESTS,
            "answered later: {later}"
        );
    }
}

/// A store whose every failure step runs on a later poll, as a networked store's does (a
/// step not polled is never taken).
#[derive(Clone)]
struct Later(MemoryReplayStore);

impl ReplayStore for Later {
    fn first_seen(
        &self,
        key: callguard::replay::ReplayKey,
        record: callguard::replay::RecordId,
        window: Duration,
    ) -> StoreFuture {
        self.0.first_seen(key, record, window)
    }

    fn contains(&self, key: callguard::replay::ReplayKey) -> StoreFuture {
        self.0.contains(key)
    }

    fn release(
        &self,
        key: callguard::replay::ReplayKey,
        record: callguard::replay::RecordId,
    ) -> StoreFuture {
        self.0.release(key, record)
    }

    fn failure_step(
        &self,
        key: callguard::replay::ReplayKey,
        rule: callguard::replay::FailureRule,
        step: callguard::replay::FailureStep,
        now: i64,
    ) -> StoreFuture<callguard::replay::FailureState> {
        let store = self.0.clone();
        StoreFuture::pending(async move {
            tokio::task::yield_now().await;
            store.failure_step(key, rule, step, now).await
        })
    }
}

#[tokio::test]
async fn a_charged_attempt_whose_request_goes_away_is_refunded() {
    use std::future::Future as _;
    let guard = signature_guard(3, &FixedClock::at_unix(NOW));
    let send = |body| wrong_guess(&guard, body);
    let sent = |bytes: &'static [u8]| {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        sender.send(Bytes::from_static(bytes)).unwrap();
        HeldBody(Some(receiver))
    };
    // Two failures: one short of the lock.
    for _ in 0..2 {
        assert_eq!(send(sent(b"{}")).await, StatusCode::UNAUTHORIZED);
    }
    // Three requests charged while their bodies arrive, then dropped (the client hung up).
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    for _ in 0..3 {
        let (_sender, receiver) = tokio::sync::oneshot::channel::<Bytes>();
        let mut request = Box::pin(send(HeldBody(Some(receiver))));
        assert!(request.as_mut().poll(&mut cx).is_pending());
        drop(request);
    }
    // Nothing of them is left counted: the next guess is checked, and locks.
    assert_eq!(send(sent(b"{}")).await, StatusCode::UNAUTHORIZED);
    assert_eq!(send(sent(b"{}")).await, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_failure_being_counted_when_its_client_hangs_up_is_counted_all_the_same() {
    use std::future::Future as _;
    let clock = FixedClock::at_unix(NOW);
    let guard = guard(
        Later(MemoryReplayStore::default()),
        &clock,
        ReplayPolicy::FailClosed,
    );
    let wrong = "tok_wrong_0123456789abcdef";
    // A wrong token whose failure the store is still counting when the request is dropped:
    // polled until it waits on the count, then dropped.
    let service = guard.layer(service_fn(|_: Request<_>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
    }));
    let mut request = Request::post("/tools/echo")
        .header("authorization", format!("Bearer {wrong}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    request
        .extensions_mut()
        .insert(ClientAddr(ATTACKER.unwrap().parse().unwrap()));
    let mut pending = Box::pin(service.oneshot(request));
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    // The lock check (asked on the first poll, read on the second), then the count, pending.
    for _ in 0..2 {
        assert!(pending.as_mut().poll(&mut cx).is_pending());
    }
    drop(pending);
    // The count finishes on the runtime.
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
    // Two more wrong tokens make three: locked.
    for _ in 0..2 {
        assert_eq!(
            call(&guard, ATTACKER, wrong).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        call(&guard, ATTACKER, TOKEN).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// `per_network`: someone rotating through the /64s of their IPv6 /48 (or the addresses of
/// an IPv4 /24) gets one guess for each once the network has failed enough, not the
/// per-client allowance; another network is not affected, and an address of the locked
/// network that has not failed is still checked and let in.
#[tokio::test]
async fn a_network_rotating_its_addresses_gets_one_guess_each_once_it_has_failed_enough() {
    let limit = FailureLimit::builder(MemoryReplayStore::default())
        .max_failures(5)
        .per_network(8)
        .window(Duration::from_secs(60))
        .clock(FixedClock::at_unix(NOW))
        .build()
        .unwrap();
    let tokens = BearerTokens::builder()
        .token("agent", Secret::from_utf8(TOKEN).unwrap(), Scopes::empty())
        .build()
        .unwrap();
    let guard = GuardLayer::new(tokens).failure_limit(limit);
    let send = |client: String, token: &str| {
        let service = guard.layer(service_fn(|_: Request<_>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
        }));
        let mut request = Request::post("/tools")
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        request
            .extensions_mut()
            .insert(ClientAddr(client.parse().unwrap()));
        async move { service.oneshot(request).await.unwrap().status() }
    };
    let wrong = "tok_wrong_0123456789abcdef";
    // IPv6: eight /64s of 2001:db8:7::/48, one guess each, under the per-client limit.
    for n in 1..=8 {
        assert_eq!(
            send(format!("2001:db8:7:{n}::1"), wrong).await,
            StatusCode::UNAUTHORIZED
        );
    }
    // The /48 is locked now: a ninth /64 gets one guess, then is locked itself.
    assert_eq!(
        send("2001:db8:7:9::1".into(), wrong).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send("2001:db8:7:9::1".into(), TOKEN).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // An address of the same /48 that has not failed: checked, and let in.
    assert_eq!(send("2001:db8:7:99::1".into(), TOKEN).await, StatusCode::OK);
    // Another /48 keeps the per-client allowance: four failures, and still let in.
    for _ in 1..=4 {
        assert_eq!(
            send("2001:db8:8:1::1".into(), wrong).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(send("2001:db8:8:1::1".into(), TOKEN).await, StatusCode::OK);
    // IPv4: the addresses of one /24 likewise.
    for n in 1..=8 {
        assert_eq!(
            send(format!("198.51.100.{n}"), wrong).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        send("198.51.100.77".into(), wrong).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send("198.51.100.77".into(), TOKEN).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(send("198.51.101.77".into(), TOKEN).await, StatusCode::OK);
}

#[test]
fn a_network_count_of_zero_is_refused_when_built() {
    let built = FailureLimit::builder(MemoryReplayStore::default())
        .per_network(0)
        .build();
    assert!(
        matches!(built, Err(callguard::ConfigError::InvalidValue { field }) if field.contains("per_network")),
        "{built:?}"
    );
}
