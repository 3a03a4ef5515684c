//! The experiments shared by the two constant-time benches: for each check, how to make a
//! request of the "near" class (close to a real credential) and of the "far" class, built
//! so that the two differ only in that closeness. `constant_time_counts` counts each
//! request's instructions under callgrind; `constant_time` times them.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::task::{Context, Poll, Waker};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use callguard::basic::BasicUsers;
use callguard::bearer::BearerTokens;
use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier};
use callguard::signature::SignatureVerifier;
use callguard::{GuardLayer, Scopes, Secret};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use rand::Rng;
use rand::rngs::StdRng;
use tower::{Layer, Service};

pub(crate) type Body = Full<Bytes>;

const TOKEN: &str = "tok_real_0123456789abcdefghijklmnopqrstuvwxyz";
const PASSWORD: &str = "correct-horse-battery-staple-42";
const SECRET: &str = "constant-time-secret-0123456789abcdef";

/// The service behind every guard: answers 200 at once.
#[derive(Clone)]
struct Answer;

impl<B> Service<Request<B>> for Answer {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<B>) -> Self::Future {
        ready(Ok(Response::new(Full::new(Bytes::new()))))
    }
}

/// One request through a service, polled to completion on the spot (everything is ready).
fn run<S>(service: &mut S, request: Request<Body>) -> StatusCode
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    let mut cx = Context::from_waker(Waker::noop());
    assert!(service.poll_ready(&mut cx).is_ready());
    let mut future = std::pin::pin!(service.call(request));
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(response)) => response.status(),
        Poll::Pending => panic!("a ready body left the guard pending"),
    }
}

pub(crate) type Check = Box<dyn FnMut(Request<Body>) -> StatusCode>;
type Make = Box<dyn Fn(&mut StdRng, bool) -> Request<Body>>;

/// One experiment: a check, how to make a request of each class, and what it must answer.
pub(crate) struct Case {
    pub(crate) name: &'static str,
    /// The control is expected to leak; everything else must not.
    pub(crate) control: bool,
    pub(crate) expected: StatusCode,
    pub(crate) check: Check,
    pub(crate) make: Make,
}

/// The guard built by `layer` in front of [`Answer`], as a check.
fn guarded(layer: &GuardLayer) -> Check {
    let mut service = layer.layer(Answer);
    Box::new(move |request| run(&mut service, request))
}

/// A header value built on the stack, so that both classes of request reach the guard with
/// the same allocations behind them (the allocator's own bookkeeping is counted too, and a
/// differently sized temporary would show up as a difference that is not the guard's).
struct Value {
    bytes: [u8; 512],
    len: usize,
}

impl Value {
    fn new() -> Self {
        Self {
            bytes: [0; 512],
            len: 0,
        }
    }

    fn push(&mut self, data: &[u8]) -> &mut Self {
        self.bytes[self.len..self.len + data.len()].copy_from_slice(data);
        self.len += data.len();
        self
    }

    /// `real` with the characters from `keep` on changed within their class by `change`.
    fn push_changed(
        &mut self,
        rng: &mut StdRng,
        real: &str,
        keep: usize,
        change: fn(&mut StdRng, u8) -> u8,
    ) -> &mut Self {
        for (i, &c) in real.as_bytes().iter().enumerate() {
            let c = if i < keep { c } else { change(rng, c) };
            self.push(&[c]);
        }
        self
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn request(&self, header: &'static str, body: Bytes) -> Request<Body> {
        Request::post("/tool")
            .header(header, HeaderValue::from_bytes(self.as_bytes()).unwrap())
            .body(Full::new(body))
            .unwrap()
    }
}

/// A random character of the same class as `c` (lower case, upper case, digit), different
/// from `c`, else `c` itself. Parsers may branch on a character's class, which the caller
/// chooses anyway; keeping classes equal leaves closeness to the secret as the only
/// difference between the two kinds of request.
fn other_like(rng: &mut StdRng, c: u8) -> u8 {
    let range = match c {
        b'a'..=b'z' => b'a'..=b'z',
        b'A'..=b'Z' => b'A'..=b'Z',
        b'0'..=b'9' => b'0'..=b'9',
        other => return other,
    };
    loop {
        let candidate = rng.random_range(range.clone());
        if candidate != c {
            return candidate;
        }
    }
}

/// A hex digit of the same class as `c` (digit, or letter a–f), different from it.
fn other_hex_like(rng: &mut StdRng, c: u8) -> u8 {
    loop {
        let candidate = other_like(rng, c);
        if candidate.is_ascii_hexdigit() {
            return candidate;
        }
    }
}

/// A base64 character of the same class as `c`, different from it, that keeps the
/// encoding canonical as the last significant character, whose lowest `PAD_BITS` bits are
/// padding and must be zero (else decoding stops early, for a reason that is not the
/// secret).
fn other_base64_tail_like<const PAD_BITS: u32>(rng: &mut StdRng, c: u8) -> u8 {
    // Letters and digits sit at the same values in the standard and URL-safe alphabets.
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    loop {
        let candidate = other_like(rng, c);
        let value = ALPHABET.iter().position(|&a| a == candidate).unwrap();
        if value % (1 << PAD_BITS) == 0 {
            return candidate;
        }
    }
}

/// How much of a real credential of `len` characters a request keeps: "near" keeps all
/// but the last four characters (so that near requests are still many different
/// credentials, as far ones are), "far" none.
fn kept(len: usize, near: bool) -> usize {
    if near { len - 4 } else { 0 }
}

pub(crate) fn cases() -> Vec<Case> {
    let tokens = BearerTokens::builder()
        .token("real", Secret::from_utf8(TOKEN).unwrap(), Scopes::empty())
        .build()
        .unwrap();
    let users = BasicUsers::builder()
        .user(
            "agent",
            Secret::from_utf8(PASSWORD).unwrap(),
            Scopes::empty(),
        )
        .build()
        .unwrap();
    let verifier = SignatureVerifier::builder()
        .secret("k", Secret::from_utf8(SECRET).unwrap())
        .build()
        .unwrap();
    let body = Bytes::from_static(b"{\"tool\":\"lookup\"}");
    let real_tag = {
        use hmac::{Hmac, KeyInit, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(&body);
        hex::encode(mac.finalize().into_bytes())
    };
    let jwt_config = JwtConfig::builder()
        .key(
            "hs",
            JwtKey::hmac(JwtAlgorithm::HS256, &Secret::from_utf8(SECRET).unwrap()).unwrap(),
        )
        .signing_key("hs")
        .issuer("constant-time")
        .audience("tools")
        .build()
        .unwrap();
    let issued = callguard::jwt::TokenIssuer::new(jwt_config.clone())
        .issue(callguard::jwt::TokenRequest::new(
            "agent",
            Scopes::empty(),
            std::time::Duration::from_secs(3600),
        ))
        .unwrap();
    let jwt = issued.access_token;
    let (jwt_signed, jwt_signature) = jwt.rsplit_once('.').unwrap();
    assert_eq!(jwt_signature.len(), 43, "an HS256 tag is 32 bytes");
    let (jwt_signed, jwt_tag) = (jwt_signed.to_owned(), jwt_signature.to_owned());

    let basic_encoded = STANDARD.encode(format!("agent:{PASSWORD}"));
    let basic_text = basic_encoded.trim_end_matches('=').to_owned();
    assert_eq!(
        basic_text.len(),
        50,
        "37 bytes: the last character carries 4 padding bits"
    );
    let basic_padding = basic_encoded[basic_text.len()..].to_owned();

    vec![
        Case {
            name: "static bearer token: all but the last 4 of 45 characters right vs none",
            control: false,
            expected: StatusCode::UNAUTHORIZED,
            check: guarded(&GuardLayer::new(tokens)),
            make: Box::new(|rng, near| {
                Value::new()
                    .push(b"Bearer ")
                    .push_changed(rng, TOKEN, kept(TOKEN.len(), near), other_like)
                    .request("authorization", Bytes::new())
            }),
        },
        Case {
            name: "Basic credentials of a real user: password right but for its last 3 of 31 bytes vs wrong throughout",
            control: false,
            expected: StatusCode::UNAUTHORIZED,
            check: guarded(&GuardLayer::new(users)),
            make: Box::new(move |rng, near| {
                // The base64 text itself changes within its character classes, as for hex;
                // its first 8 characters are exactly "agent:", kept in both classes.
                let last = basic_text.len() - 1;
                let keep = if near { basic_text.len() - 4 } else { 8 };
                let mut value = Value::new();
                value
                    .push(b"Basic ")
                    .push_changed(rng, &basic_text[..last], keep, other_like)
                    .push_changed(rng, &basic_text[last..], 0, other_base64_tail_like::<4>)
                    .push(basic_padding.as_bytes());
                value.request("authorization", Bytes::new())
            }),
        },
        Case {
            name: "body signature (hex): first 31 of 32 bytes right vs none",
            control: false,
            expected: StatusCode::UNAUTHORIZED,
            check: guarded(&GuardLayer::new(verifier)),
            make: Box::new(move |rng, near| {
                // Hex digits change within their class (digit for digit, letter for
                // letter) so decoding does the same work for both classes.
                // The last byte is two hex digits.
                let keep = if near { real_tag.len() - 2 } else { 0 };
                Value::new()
                    .push_changed(rng, &real_tag, keep, other_hex_like)
                    .request("x-signature", body.clone())
            }),
        },
        Case {
            name: "JWT HS256 signature: first 30 of 32 bytes right vs none",
            control: false,
            expected: StatusCode::UNAUTHORIZED,
            check: guarded(&GuardLayer::new(JwtVerifier::new(jwt_config))),
            make: Box::new(move |rng, near| {
                // Characters change within their class, as for hex; the last one stays a
                // canonical encoding, or decoding would stop early for other reasons.
                let keep = if near { jwt_tag.len() - 2 } else { 0 };
                let mut value = Value::new();
                value
                    .push(b"Bearer ")
                    .push(jwt_signed.as_bytes())
                    .push(b".")
                    .push_changed(rng, &jwt_tag[..jwt_tag.len() - 1], keep, other_like)
                    .push_changed(
                        rng,
                        &jwt_tag[jwt_tag.len() - 1..],
                        0,
                        other_base64_tail_like::<2>,
                    );
                value.request("authorization", Bytes::new())
            }),
        },
        Case {
            name: "control: tower-http's bearer check (`==`), all but the last 4 characters right vs none",
            control: true,
            expected: StatusCode::UNAUTHORIZED,
            check: {
                #[allow(deprecated)]
                let layer = tower_http::validate_request::ValidateRequestHeaderLayer::bearer(TOKEN);
                let mut service = layer.layer(Answer);
                Box::new(move |request| run(&mut service, request))
            },
            make: Box::new(|rng, near| {
                Value::new()
                    .push(b"Bearer ")
                    .push_changed(rng, TOKEN, kept(TOKEN.len(), near), other_like)
                    .request("authorization", Bytes::new())
            }),
        },
    ]
}

/// Welch's t. Counts can be exactly equal everywhere: no variance and equal means is t = 0.
pub(crate) fn welch_t(a: &[f64], b: &[f64]) -> f64 {
    let stats = |v: &[f64]| {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var / n)
    };
    let ((ma, sa), (mb, sb)) = (stats(a), stats(b));
    if ma == mb {
        0.0
    } else if sa + sb == 0.0 {
        f64::INFINITY
    } else {
        (ma - mb) / (sa + sb).sqrt()
    }
}
