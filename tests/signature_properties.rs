//! Properties of the signature guard over arbitrary bodies, secrets, framings and clocks:
//! a correctly signed request always passes with its body unchanged; any change to what was
//! signed always fails; hostile header bytes never panic.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use std::time::Duration;

use bytes::Bytes;
use callguard::clock::FixedClock;
use callguard::signature::{Encoding, MessagePart, SignatureFormat, SignatureVerifier};
use callguard::{AuthError, AuthErrorKind, GuardLayer, dangerous};
use common::{FramedBody, Seen, echo, hmac_sha256, runtime};
use http::{HeaderValue, Request, StatusCode};
use proptest::prelude::*;
use tower::{Layer, ServiceExt, service_fn};

const TOLERANCE: i64 = 300;

#[derive(Debug)]
struct Case {
    secret: Vec<u8>,
    body: Vec<u8>,
    frame: usize,
    now: i64,
}

fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..2048),
        1 => Just(Vec::new()),
        1 => proptest::collection::vec(any::<u8>(), 60_000..70_000),
    ]
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec(any::<u8>(), 1..80),
        body_strategy(),
        1usize..20_000,
        0i64..4_000_000_000,
    )
        .prop_map(|(secret, body, frame, now)| Case {
            secret,
            body,
            frame,
            now,
        })
}

fn guard(case: &Case) -> GuardLayer {
    let verifier = SignatureVerifier::builder()
        .secret(
            "k1",
            dangerous::secret_allowing_short(case.secret.clone()).unwrap(),
        )
        .timestamp_header("x-timestamp")
        .message([
            MessagePart::Timestamp,
            MessagePart::Literal("."),
            MessagePart::Body,
        ])
        .clock(FixedClock::at_unix(case.now))
        .tolerance(
            Duration::from_secs(TOLERANCE as u64),
            Duration::from_secs(TOLERANCE as u64),
        )
        .build()
        .unwrap();
    GuardLayer::new(verifier).body_limit(1 << 20)
}

fn tag(case: &Case, timestamp: &str, body: &[u8]) -> [u8; 32] {
    hmac_sha256(&case.secret, &[timestamp.as_bytes(), b".", body])
}

/// Send `body` in frames with these headers; the status, what the inner service saw, the reason.
fn send(
    case: &Case,
    signature: HeaderValue,
    timestamp: HeaderValue,
    body: &[u8],
) -> (StatusCode, Option<Seen>, Option<AuthErrorKind>) {
    let request = Request::post("/tool")
        .header("x-signature", signature)
        .header("x-timestamp", timestamp)
        .body(FramedBody::chunked(body, case.frame))
        .unwrap();
    let response = runtime()
        .block_on(guard(case).layer(service_fn(echo)).oneshot(request))
        .unwrap();
    (
        response.status(),
        response.extensions().get::<Seen>().cloned(),
        response
            .extensions()
            .get::<AuthError>()
            .map(AuthError::kind),
    )
}

fn header(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn correctly_signed_request_is_accepted_with_its_body_unchanged(case in case_strategy(), offset in -TOLERANCE..=TOLERANCE) {
        let ts = (case.now + offset).to_string();
        let signature = hex::encode(tag(&case, &ts, &case.body));
        let (status, seen, _) = send(&case, header(&signature), header(&ts), &case.body);
        prop_assert_eq!(status, StatusCode::OK);
        let seen = seen.unwrap();
        prop_assert_eq!(&seen.body[..], &case.body[..]);
        let caller = seen.caller.unwrap();
        prop_assert_eq!(caller.key_id(), Some("k1"));
    }

    #[test]
    fn flipping_any_body_bit_is_rejected(case in case_strategy(), index in any::<prop::sample::Index>(), bit in 0u8..8) {
        prop_assume!(!case.body.is_empty());
        let ts = case.now.to_string();
        let signature = hex::encode(tag(&case, &ts, &case.body));
        let mut body = case.body.clone();
        let at = index.index(body.len());
        body[at] ^= 1 << bit;
        let (status, seen, kind) = send(&case, header(&signature), header(&ts), &body);
        prop_assert_eq!(status, StatusCode::UNAUTHORIZED);
        prop_assert_eq!(kind, Some(AuthErrorKind::InvalidCredentials));
        prop_assert!(seen.is_none());
    }

    #[test]
    fn flipping_any_signature_bit_is_rejected(case in case_strategy(), index in 0usize..32, bit in 0u8..8) {
        let ts = case.now.to_string();
        let mut signature = tag(&case, &ts, &case.body);
        signature[index] ^= 1 << bit;
        let (status, _, kind) = send(&case, header(&hex::encode(signature)), header(&ts), &case.body);
        prop_assert_eq!(status, StatusCode::UNAUTHORIZED);
        prop_assert_eq!(kind, Some(AuthErrorKind::InvalidCredentials));
    }

    #[test]
    fn truncating_or_extending_the_signature_is_rejected(case in case_strategy(), cut in 1usize..64, extra in "[0-9a-f]{1,8}") {
        let ts = case.now.to_string();
        let signature = hex::encode(tag(&case, &ts, &case.body));
        let truncated = &signature[..64 - cut];
        let extended = format!("{signature}{extra}");
        for changed in [truncated, extended.as_str()] {
            let (status, _, _) = send(&case, header(changed), header(&ts), &case.body);
            prop_assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
    }

    #[test]
    fn flipping_any_timestamp_bit_is_rejected(case in case_strategy(), index in any::<prop::sample::Index>(), bit in 0u8..7) {
        let ts = case.now.to_string();
        let signature = hex::encode(tag(&case, &ts, &case.body));
        let mut changed = ts.clone().into_bytes();
        let at = index.index(changed.len());
        changed[at] ^= 1 << bit;
        // Only printable changes can travel in a header at all.
        prop_assume!(changed.iter().all(|b| (0x20..0x7f).contains(b)));
        let changed = String::from_utf8(changed).unwrap();
        let (status, _, _) = send(&case, header(&signature), header(&changed), &case.body);
        prop_assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn timestamp_outside_the_tolerance_is_rejected(case in case_strategy(), beyond in 1i64..1_000_000, future in any::<bool>()) {
        let sent = if future { case.now + TOLERANCE + beyond } else { case.now - TOLERANCE - beyond };
        prop_assume!(sent >= 0);
        let ts = sent.to_string();
        let signature = hex::encode(tag(&case, &ts, &case.body));
        let (status, _, kind) = send(&case, header(&signature), header(&ts), &case.body);
        prop_assert_eq!(status, StatusCode::UNAUTHORIZED);
        prop_assert_eq!(kind, Some(AuthErrorKind::TimestampOutOfTolerance));
    }

    #[test]
    fn arbitrary_header_bytes_never_panic(case in case_strategy(), signature in proptest::collection::vec(any::<u8>(), 0..200), ts in proptest::collection::vec(any::<u8>(), 0..40)) {
        let (Ok(signature), Ok(ts)) = (HeaderValue::from_bytes(&signature), HeaderValue::from_bytes(&ts)) else {
            return Ok(());
        };
        let (status, _, _) = send(&case, signature, ts, &case.body);
        prop_assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn arbitrary_list_headers_never_panic(value in proptest::collection::vec(any::<u8>(), 0..300)) {
        let Ok(value) = HeaderValue::from_bytes(&value) else { return Ok(()) };
        let verifier = SignatureVerifier::builder()
            .header("stripe-signature")
            .format(SignatureFormat::list(',', "v1", '='))
            .timestamp_field("t")
            .encoding(Encoding::Base64Url)
            .message([MessagePart::Timestamp, MessagePart::Literal("."), MessagePart::Body])
            .secret("k1", dangerous::secret_allowing_short("whsec_test").unwrap())
            .build()
            .unwrap();
        let request = Request::post("/").header("stripe-signature", value).body(FramedBody::new([Bytes::from_static(b"{}")])).unwrap();
        let response = runtime().block_on(GuardLayer::new(verifier).layer(service_fn(echo)).oneshot(request)).unwrap();
        prop_assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
}

#[test]
fn correctly_signed_base64_list_entry_passes_among_decoys() {
    // A deterministic companion to the properties: the list path with several entries.
    let case = Case {
        secret: b"0123456789abcdef".to_vec(),
        body: b"{}".to_vec(),
        frame: 1,
        now: 1_000,
    };
    let ts = case.now.to_string();
    let good = base64_encode(&tag(&case, &ts, &case.body));
    let decoy = base64_encode(&[7u8; 32]);
    let verifier = SignatureVerifier::builder()
        .header("webhook-signature")
        .format(SignatureFormat::list(' ', "v1", ','))
        .encoding(Encoding::Base64)
        .timestamp_header("x-timestamp")
        .message([
            MessagePart::Timestamp,
            MessagePart::Literal("."),
            MessagePart::Body,
        ])
        .clock(FixedClock::at_unix(case.now))
        .secret(
            "k1",
            dangerous::secret_allowing_short(case.secret.clone()).unwrap(),
        )
        .build()
        .unwrap();
    let request = Request::post("/")
        .header(
            "webhook-signature",
            format!("v1,{decoy} v2,{good} v1,{good}"),
        )
        .header("x-timestamp", ts)
        .body(FramedBody::new([Bytes::from_static(b"{}")]))
        .unwrap();
    let response = runtime()
        .block_on(
            GuardLayer::new(verifier)
                .layer(service_fn(echo))
                .oneshot(request),
        )
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

fn base64_encode(bytes: &[u8]) -> String {
    Encoding::Base64.encode(bytes)
}
