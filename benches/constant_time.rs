//! Constant-time evidence in the style of dudect: time the guard on two classes of wrong
//! credentials that differ only in how close they come to a real one, interleaved at random,
//! and compare the classes with Welch's t-test. |t| < 4.5 is the usual bar for "no
//! detectable difference". Not part of CI: timing on a shared machine is not a pass/fail
//! signal there; `SECURITY.md` records the figures.
//!
//! Run with: cargo bench --bench constant_time [-- samples]
#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]

use std::convert::Infallible;
use std::future::Future;
use std::task::{Context, Waker};
use std::time::Instant;

use bytes::Bytes;
use callguard::bearer::BearerTokens;
use callguard::signature::SignatureVerifier;
use callguard::{GuardLayer, GuardedBody, Scopes, Secret};
use http::{Request, Response};
use http_body_util::Full;
use rand::Rng;
use tower::{Layer, Service, service_fn};

const SECRET: &str = "constant-time-secret-0123456789abcdef";
const TOKEN: &str = "tok_real_0123456789abcdefghijklmnopqrstuvwxyz";

/// Time one request through `guard`, polled synchronously (everything is ready at once).
fn time_one(guard: &GuardLayer, request: Request<Full<Bytes>>) -> f64 {
    let mut service =
        guard
            .clone()
            .layer(service_fn(|_r: Request<GuardedBody<Full<Bytes>>>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
            }));
    let mut cx = Context::from_waker(Waker::noop());
    let _ = service.poll_ready(&mut cx);
    let started = Instant::now();
    let mut future = std::pin::pin!(service.call(request));
    let answer = future.as_mut().poll(&mut cx);
    let elapsed = started.elapsed().as_nanos() as f64;
    assert!(answer.is_ready());
    elapsed
}

/// Welch's t between two samples, after dropping each one's slowest 10% (interrupts and
/// scheduling noise), as dudect's cropping does.
fn welch_t(mut a: Vec<f64>, mut b: Vec<f64>) -> f64 {
    let crop = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.truncate(v.len() * 9 / 10);
    };
    crop(&mut a);
    crop(&mut b);
    let stats = |v: &[f64]| {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var, n)
    };
    let (ma, va, na) = stats(&a);
    let (mb, vb, nb) = stats(&b);
    (ma - mb) / (va / na + vb / nb).sqrt()
}

/// Run `samples` requests, each of a class drawn at random, and return the t statistic and
/// the two classes' median times.
fn compare(
    samples: usize,
    guard: &GuardLayer,
    make: impl Fn(bool) -> Request<Full<Bytes>>,
) -> (f64, f64, f64) {
    let mut rng = rand::rng();
    let (mut near, mut far) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    for _ in 0..samples * 2 {
        let class = rng.random::<bool>();
        let time = time_one(guard, make(class));
        if class {
            near.push(time);
        } else {
            far.push(time);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (mut n, mut f) = (near.clone(), far.clone());
    (welch_t(near, far), median(&mut n), median(&mut f))
}

/// A random character of the same class as `c` (lower case, upper case, digit), else `c`.
fn random_like(rng: &mut impl Rng, c: char) -> char {
    let mut pick = |range: std::ops::RangeInclusive<u8>| char::from(rng.random_range(range));
    match c {
        'a'..='z' => pick(b'a'..=b'z'),
        'A'..='Z' => pick(b'A'..=b'Z'),
        '0'..='9' => pick(b'0'..=b'9'),
        other => other,
    }
}

/// A hex digit of the same class as `c` (digit or letter) but different from it.
fn other_in_class(rng: &mut impl Rng, c: char) -> char {
    loop {
        let candidate = random_like(rng, c);
        if candidate != c && candidate.is_ascii_hexdigit() {
            return candidate;
        }
    }
}

fn main() {
    let samples: usize = std::env::args()
        .filter_map(|a| a.parse().ok())
        .next()
        .unwrap_or(200_000);

    let tokens = BearerTokens::builder()
        .token("real", Secret::from_utf8(TOKEN).unwrap(), Scopes::empty())
        .build()
        .unwrap();
    let bearer = GuardLayer::new(tokens);
    // Both classes are drawn afresh each time, with the same length and the same character
    // class at every position (the parser's work depends on classes, which the attacker
    // chooses anyway): "near" shares all but the last character with the real token, "far"
    // is random throughout.
    let (t, near, far) = compare(samples, &bearer, |near| {
        let mut rng = rand::rng();
        let token: String = if near {
            format!(
                "{}{}",
                &TOKEN[..TOKEN.len() - 1],
                random_like(&mut rng, 'q')
            )
        } else {
            TOKEN.chars().map(|c| random_like(&mut rng, c)).collect()
        };
        Request::post("/")
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .unwrap()
    });
    println!(
        "static bearer token, long shared prefix vs none: t = {t:.2} (medians {near:.0} ns vs {far:.0} ns, {samples} samples per class)"
    );
    // Control: the same experiment around a token that is *not* configured. A similar t
    // here means the difference comes from repeating the attacker's own input (caches,
    // branch predictors), not from the secret.
    const DECOY: &str = "tok_fake_9876543210zyxwvutsrqponmlkjihgfedcba";
    let (t, near, far) = compare(samples, &bearer, |near| {
        let mut rng = rand::rng();
        let token: String = if near {
            format!(
                "{}{}",
                &DECOY[..DECOY.len() - 1],
                random_like(&mut rng, 'q')
            )
        } else {
            DECOY.chars().map(|c| random_like(&mut rng, c)).collect()
        };
        Request::post("/")
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .unwrap()
    });
    println!(
        "control, the same around an unconfigured token: t = {t:.2} (medians {near:.0} ns vs {far:.0} ns)"
    );

    let verifier = SignatureVerifier::builder()
        .secret("k", Secret::from_utf8(SECRET).unwrap())
        .build()
        .unwrap();
    let signature = GuardLayer::new(verifier);
    let body = Bytes::from_static(b"{\"tool\":\"lookup\"}");
    let real = {
        use hmac::{Hmac, KeyInit, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(&body);
        mac.finalize().into_bytes()
    };
    let real_hex = hex::encode(real);
    // "near" is right in its first 31 bytes, "far" in none; every hex digit of "far" is
    // changed within its class (digit for digit, letter for letter), so decoding costs the
    // same and only closeness to the real tag differs.
    let (t, near, far) = compare(samples, &signature, |near| {
        let mut rng = rand::rng();
        let value: String = if near {
            let mut tag = real;
            tag[31] ^= rng.random_range(1..=255u8);
            hex::encode(tag)
        } else {
            real_hex
                .chars()
                .map(|c| other_in_class(&mut rng, c))
                .collect()
        };
        Request::post("/")
            .header("x-signature", value)
            .body(Full::new(body.clone()))
            .unwrap()
    });
    println!(
        "signature, first 31 bytes right vs none: t = {t:.2} (medians {near:.0} ns vs {far:.0} ns, {samples} samples per class)"
    );
    // Control: the same shapes around a tag the secret did not make.
    let decoy: [u8; 32] = std::array::from_fn(|i| real[i] ^ 0x5a);
    let decoy_hex = hex::encode(decoy);
    let (t, near, far) = compare(samples, &signature, |near| {
        let mut rng = rand::rng();
        let value: String = if near {
            let mut tag = decoy;
            tag[31] ^= rng.random_range(1..=255u8);
            hex::encode(tag)
        } else {
            decoy_hex
                .chars()
                .map(|c| other_in_class(&mut rng, c))
                .collect()
        };
        Request::post("/")
            .header("x-signature", value)
            .body(Full::new(body.clone()))
            .unwrap()
    });
    println!(
        "control, the same around a tag the secret did not make: t = {t:.2} (medians {near:.0} ns vs {far:.0} ns)"
    );
}
