//! Differential property test of JWT verification: over HS256 tokens with odd headers and
//! claims (wrong types, arrays, duplicates, missing and extra members, other keys),
//! callguard accepts a token exactly when `jsonwebtoken::decode`, with the validation the
//! configuration implies, accepts it and callguard's documented rules hold as well:
//!
//! - `exp` is a non-negative integer not yet passed (with the leeway); `nbf`, when present,
//!   an integer already reached;
//! - `iss` is the configured issuer as a string (RFC 7519 §4.1.1); `aud` is the configured
//!   audience, or an array holding it;
//! - `sub` and `jti` are absent or strings; `scope` a string; `scopes` an array of strings;
//! - the header has no `crit` (RFC 7515 §4.1.11: callguard understands no extension);
//! - no claim is named twice;
//! - a `kid`, when present and not `null`, names the key.
//!
//! The tokens are signed here, over the exact bytes generated, so every claims rule is
//! reached after the signature verified.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use callguard::clock::FixedClock;
use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier};
use callguard::{GuardLayer, Secret};
use common::{hmac_sha256, present_bearer as present};
use http::StatusCode;
use proptest::prelude::*;
use serde_json::{Map, Value};

const NOW: i64 = 1_800_000_000;
const LEEWAY: i64 = 10;
const SECRET: &[u8] = b"claims-rules-hs256-secret-0123456789";
const ISSUER: &str = "rules-issuer";
const AUDIENCE: &str = "rules-audience";

fn jwt_guard() -> GuardLayer {
    let config = JwtConfig::builder()
        .key(
            "k1",
            JwtKey::hmac(
                JwtAlgorithm::HS256,
                &Secret::from_bytes(SECRET.to_vec()).unwrap(),
            )
            .unwrap(),
        )
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .leeway(std::time::Duration::from_secs(LEEWAY as u64))
        .clock(FixedClock::at_unix(NOW))
        .build()
        .unwrap();
    JwtVerifier::new(config).without_cache().layer()
}

/// What `jsonwebtoken::decode` accepts with the validation this configuration implies: the
/// pinned algorithm, `exp`, `iss` and `aud` required, `iss` and `aud` checked; time is
/// callguard's to check against its own clock.
fn jsonwebtoken_accepts(token: &str) -> Option<Map<String, Value>> {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.leeway = 0;
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    let key = jsonwebtoken::DecodingKey::from_secret(SECRET);
    jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
        .ok()
        .map(|data| data.claims)
}

/// The member names of a JSON object, in order, repeats kept.
struct MemberNames(Vec<String>);

impl<'de> serde::Deserialize<'de> for MemberNames {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Names;
        impl<'de> serde::de::Visitor<'de> for Names {
            type Value = MemberNames;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<MemberNames, A::Error> {
                let mut names = Vec::new();
                while let Some((name, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                    names.push(name);
                }
                Ok(MemberNames(names))
            }
        }
        deserializer.deserialize_map(Names)
    }
}

/// Whether a JSON object's text names some member more than once.
fn has_duplicate_names(object: &str) -> bool {
    let MemberNames(mut names) = serde_json::from_str(object).unwrap();
    let all = names.len();
    names.sort();
    names.dedup();
    names.len() != all
}

/// callguard's own rules, applied to the claims `jsonwebtoken` accepted.
fn callguard_rules_hold(header: &Value, claims_text: &str, claims: &Map<String, Value>) -> bool {
    let kid_ok = match header.get("kid") {
        None | Some(Value::Null) => true,
        Some(kid) => kid == "k1",
    };
    let exp_ok = claims
        .get("exp")
        .and_then(Value::as_u64)
        .is_some_and(|exp| i64::try_from(exp).unwrap_or(i64::MAX) > NOW - LEEWAY);
    let nbf_ok = match claims.get("nbf") {
        None => true,
        Some(nbf) => nbf.as_i64().is_some_and(|nbf| nbf <= NOW + LEEWAY),
    };
    let iss_ok = claims.get("iss").is_some_and(|iss| iss == ISSUER);
    let sub_ok = matches!(claims.get("sub"), None | Some(Value::String(_)));
    let jti_ok = matches!(claims.get("jti"), None | Some(Value::String(_)));
    let crit_ok = header.get("crit").is_none();
    let scope_ok = matches!(claims.get("scope"), None | Some(Value::String(_)));
    let scopes_ok = match claims.get("scopes") {
        None => true,
        Some(Value::Array(list)) => list.iter().all(Value::is_string),
        Some(_) => false,
    };
    kid_ok
        && exp_ok
        && nbf_ok
        && iss_ok
        && sub_ok
        && jti_ok
        && crit_ok
        && scope_ok
        && scopes_ok
        && !has_duplicate_names(claims_text)
}

fn member(name: &'static str, values: Vec<&'static str>) -> BoxedStrategy<Option<String>> {
    let present =
        proptest::sample::select(values).prop_map(move |v| Some(format!("\"{name}\":{v}")));
    prop_oneof![1 => Just(None), 4 => present].boxed()
}

fn header_strategy() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(vec![
            "\"HS256\"",
            "\"HS256\"",
            "\"HS256\"",
            "\"HS384\"",
            "\"RS256\"",
            "\"none\"",
            "\"hs256\"",
            "256",
        ]),
        member("kid", vec!["\"k1\"", "\"k1\"", "\"k2\"", "7", "null"]),
        member("typ", vec!["\"JWT\"", "\"at+jwt\"", "5"]),
        member("x-extra", vec!["true", "{\"a\":1}"]),
        member("crit", vec!["[\"exp\"]", "[]", "5"]),
        any::<bool>(),
    )
        .prop_map(|(alg, kid, typ, extra, crit, twice)| {
            let mut members = vec![format!("\"alg\":{alg}")];
            members.extend([kid, typ, extra, crit].into_iter().flatten());
            if twice {
                members.push("\"alg\":\"HS256\"".to_owned());
            }
            format!("{{{}}}", members.join(","))
        })
}

fn claims_strategy() -> impl Strategy<Value = String> {
    let future = (NOW + 600).to_string().leak() as &'static str;
    let just_inside = (NOW - LEEWAY + 1).to_string().leak() as &'static str;
    let just_outside = (NOW - LEEWAY).to_string().leak() as &'static str;
    let soon = (NOW + LEEWAY).to_string().leak() as &'static str;
    let later = (NOW + LEEWAY + 1).to_string().leak() as &'static str;
    let past = (NOW - 600).to_string().leak() as &'static str;
    (
        member(
            "exp",
            vec![
                future,
                future,
                just_inside,
                just_outside,
                "1.8e9",
                "\"1800000600\"",
                "-5",
                "18446744073709551615",
                "null",
            ],
        ),
        member("nbf", vec![past, soon, later, "\"0\"", "1.5"]),
        member(
            "iss",
            vec![
                "\"rules-issuer\"",
                "\"rules-issuer\"",
                "\"other\"",
                "[\"rules-issuer\"]",
                "5",
            ],
        ),
        member(
            "aud",
            vec![
                "\"rules-audience\"",
                "\"rules-audience\"",
                "[\"x\",\"rules-audience\"]",
                "[\"x\"]",
                "[]",
                "\"other\"",
                "[5]",
                "5",
            ],
        ),
        member("sub", vec!["\"agent-7\"", "\"agent-7\"", "5", "null"]),
        member("scope", vec!["\"a b\"", "\" b  c \"", "[\"a\"]", "5"]),
        member("scopes", vec!["[\"c\",\"a\"]", "[1]", "\"c\"", "[]"]),
        member("jti", vec!["\"id-1\"", "{\"nested\":\"x\"}"]),
        proptest::sample::select(vec![
            None,
            None,
            None,
            Some("\"iss\":\"other\""),
            Some("\"exp\":1"),
            Some("\"scope\":\"z\""),
            Some("\"aud\":\"rules-audience\""),
        ]),
    )
        .prop_map(|(exp, nbf, iss, aud, sub, scope, scopes, jti, repeat)| {
            let members: Vec<String> = [exp, nbf, iss, aud, sub, scope, scopes, jti]
                .into_iter()
                .flatten()
                .chain(repeat.map(str::to_owned))
                .collect();
            format!("{{{}}}", members.join(","))
        })
}

/// The token for these header and claims texts, signed with `secret`.
fn signed(header: &str, claims: &str, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let tag = hmac_sha256(secret, &[input.as_bytes()]);
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(768))]

    #[test]
    fn accepts_exactly_what_jsonwebtoken_and_the_documented_rules_accept(
        header in header_strategy(),
        claims in claims_strategy(),
        right_secret in prop_oneof![6 => Just(true), 1 => Just(false)],
    ) {
        // Built first: building a configuration installs the JWT backend the oracle uses too.
        let guard = jwt_guard();
        let secret: &[u8] = if right_secret { SECRET } else { b"another-secret" };
        let token = signed(&header, &claims, secret);
        let header_value: Value = serde_json::from_str(&header).unwrap();
        let expected = jsonwebtoken_accepts(&token)
            .filter(|map| callguard_rules_hold(&header_value, &claims, map));
        let (status, seen) = present(&guard, &token);
        match expected {
            Some(map) => {
                prop_assert_eq!(status, StatusCode::OK, "header {} claims {}", header, claims);
                let caller = seen.unwrap().caller.unwrap();
                let sub = map.get("sub").and_then(Value::as_str).unwrap_or("");
                prop_assert_eq!(caller.id(), sub);
                prop_assert_eq!(caller.claims().unwrap().as_map(), &map);
            }
            None => prop_assert_eq!(
                status, StatusCode::UNAUTHORIZED, "header {} claims {}", header, claims
            ),
        }
    }
}

#[test]
fn the_rules_reject_what_jsonwebtoken_alone_would_accept() {
    // Each of these passes `jsonwebtoken::decode` with the implied validation, and is
    // refused by one of callguard's documented rules.
    let guard = jwt_guard();
    let header = r#"{"alg":"HS256"}"#;
    let base = r#""iss":"rules-issuer","aud":"rules-audience""#;
    let exp = format!("\"exp\":{}", NOW + 600);
    for claims in [
        format!(r#"{{"iss":["rules-issuer"],"aud":"rules-audience",{exp}}}"#),
        format!(r#"{{{base},{exp},"scope":"a","scope":"b"}}"#),
        format!(r#"{{{base},"exp":1.8e9}}"#),
        format!(r#"{{{base},{exp},"sub":5}}"#),
        format!(r#"{{{base},{exp},"scopes":[1]}}"#),
        format!(r#"{{{base},{exp},"jti":42}}"#),
    ] {
        let token = signed(header, &claims, SECRET);
        assert!(jsonwebtoken_accepts(&token).is_some(), "{claims}");
        assert_eq!(
            present(&guard, &token).0,
            StatusCode::UNAUTHORIZED,
            "{claims}"
        );
    }
}
