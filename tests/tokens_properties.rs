//! Properties of tokens: minted JWTs verify with their own configuration only and break
//! under any change; static token sets accept exactly their members.

#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use callguard::bearer::BearerTokens;
use callguard::clock::FixedClock;
use callguard::jwt::{JwtAlgorithm, JwtConfig, JwtKey, JwtVerifier, TokenIssuer, TokenRequest};
use callguard::{AuthMethod, GuardLayer, Scopes, Secret};
use common::present_bearer as present;
use http::StatusCode;
use proptest::prelude::*;

const NOW: i64 = 1_800_000_000;
const TOKEN_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/";

fn config(secret: &[u8], kid: &str) -> JwtConfig {
    JwtConfig::builder()
        .key(
            kid,
            JwtKey::hmac(
                JwtAlgorithm::HS256,
                &Secret::from_bytes(secret.to_vec()).unwrap(),
            )
            .unwrap(),
        )
        .issuer("prop-issuer")
        .audience("prop-audience")
        .clock(FixedClock::at_unix(NOW))
        .build()
        .unwrap()
}

fn scope_strategy() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec("[a-z]{1,8}(:[a-z]{1,8})?", 0..5)
}

fn token_strategy() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(TOKEN_CHARS), 16..48)
        .prop_map(|b| String::from_utf8(b).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn minted_token_verifies_with_its_config_and_never_with_another_key(
        secret in proptest::collection::vec(any::<u8>(), 32..64),
        other in proptest::collection::vec(any::<u8>(), 32..64),
        subject in "[ -~]{0,40}",
        scopes in scope_strategy(),
        ttl in 1u64..=3600,
    ) {
        prop_assume!(secret != other);
        let own = config(&secret, "k1");
        let issued = TokenIssuer::new(own.clone())
            .issue(TokenRequest::new(subject.clone(), Scopes::from_iter(&scopes), Duration::from_secs(ttl)))
            .unwrap();
        let (status, seen) = present(&JwtVerifier::new(own).layer(), &issued.access_token);
        prop_assert_eq!(status, StatusCode::OK);
        let caller = seen.unwrap().caller.unwrap();
        prop_assert_eq!(caller.method(), AuthMethod::Jwt);
        prop_assert_eq!(caller.id(), subject.as_str());
        let expected: BTreeSet<&str> = scopes.iter().map(String::as_str).collect();
        prop_assert_eq!(caller.scopes().iter().collect::<BTreeSet<_>>(), expected);

        let (status, _) = present(&JwtVerifier::new(config(&other, "k1")).layer(), &issued.access_token);
        prop_assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn any_change_to_a_minted_token_is_rejected(
        secret in proptest::collection::vec(any::<u8>(), 32..64),
        index in any::<prop::sample::Index>(),
        replacement in proptest::sample::select(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.".as_slice()),
    ) {
        let own = config(&secret, "k1");
        let token = TokenIssuer::new(own.clone())
            .issue(TokenRequest::new("agent", Scopes::from_iter(["tools:call"]), Duration::from_secs(60)))
            .unwrap()
            .access_token;
        let mut bytes = token.clone().into_bytes();
        let at = index.index(bytes.len());
        prop_assume!(bytes[at] != replacement);
        bytes[at] = replacement;
        let changed = String::from_utf8(bytes).unwrap();
        let (status, _) = present(&JwtVerifier::new(own).layer(), &changed);
        prop_assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn static_token_sets_accept_exactly_their_members(
        members in proptest::collection::btree_set(token_strategy(), 1..40),
        strangers in proptest::collection::vec(token_strategy(), 1..10),
    ) {
        let members: Vec<String> = members.into_iter().collect();
        let mut builder = BearerTokens::builder();
        for (index, token) in members.iter().enumerate() {
            builder = builder.token(format!("t{index}"), Secret::from_utf8(token).unwrap(), Scopes::empty());
        }
        let guard = GuardLayer::new(builder.build().unwrap());
        for (index, token) in members.iter().enumerate() {
            let (status, seen) = present(&guard, token);
            prop_assert_eq!(status, StatusCode::OK);
            let id = seen.unwrap().caller.unwrap().id().to_owned();
            prop_assert_eq!(id, format!("t{index}"));
        }
        for stranger in strangers.iter().filter(|s| !members.contains(s)) {
            prop_assert_eq!(present(&guard, stranger).0, StatusCode::UNAUTHORIZED);
        }
    }
}
