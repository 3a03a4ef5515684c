//! One DPoP proof checked against the request it came with (RFC 9449 §4.3).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{AuthErrorKind, Refusal};
use crate::jws::Jws;
use crate::jwt::JwtAlgorithm;
use crate::replay::ReplayKey;

/// The longest proof read, in bytes: a proof carries one public key (an RSA key of 4096 bits
/// is about 700 bytes of JWK) and a handful of claims.
pub(crate) const MAX_PROOF_LEN: usize = 8 * 1024;

/// The longest `jti` accepted (RFC 9449 asks for at least 96 bits of randomness; a UUID is 36
/// characters).
pub(crate) const MAX_JTI_LEN: usize = 256;

/// What a proof must satisfy beyond its binding to the request.
#[derive(Debug, Clone)]
pub(crate) struct ProofRules {
    /// Signature algorithms accepted: asymmetric only, never `none` or HMAC.
    pub(crate) algorithms: Vec<JwtAlgorithm>,
    /// How old a proof's `iat` may be, in seconds.
    pub(crate) max_age: u64,
    /// How far in the future a proof's `iat` may be (clock skew), in seconds.
    pub(crate) leeway: u64,
}

impl Default for ProofRules {
    fn default() -> Self {
        Self {
            algorithms: vec![
                JwtAlgorithm::ES256,
                JwtAlgorithm::ES384,
                JwtAlgorithm::EdDSA,
                JwtAlgorithm::PS256,
                JwtAlgorithm::RS256,
            ],
            max_age: 60,
            leeway: 5,
        }
    }
}

/// The request a proof must be bound to.
pub(crate) struct ProofTarget<'a> {
    /// The request's method (`htm`).
    pub(crate) method: &'a http::Method,
    /// The request's URI as [`super::htu::normalize`] gives it (`htu`).
    pub(crate) htu: &'a str,
    /// The access token presented with the proof (`ath`), when there is one.
    pub(crate) access_token: Option<&'a [u8]>,
    /// Now, in unix seconds.
    pub(crate) now: i64,
}

/// A proof that passed: the thumbprint of the key that signed it (for `cnf.jkt`), and its
/// `jti` (to be accepted once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VerifiedProof {
    pub(crate) thumbprint: String,
    pub(crate) jti: String,
    pub(crate) iat: i64,
    /// The server nonce the proof carries (RFC 9449 §8), checked by the caller when the
    /// server issues nonces.
    pub(crate) nonce: Option<String>,
}

impl VerifiedProof {
    /// The key a replay store records this proof under: its `jti`, within its key's proofs.
    pub(crate) fn replay_key(&self) -> ReplayKey {
        ReplayKey::derive(&[
            b"dpop\0",
            self.thumbprint.as_bytes(),
            b"\0",
            self.jti.as_bytes(),
        ])
    }
}

fn refused(rule: &'static str) -> Refusal {
    Refusal::by(AuthErrorKind::InvalidCredentials, rule)
}

/// Check `proof` (the `DPoP` header's value) under `rules` against `target`.
///
/// # Errors
///
/// A [`Refusal`] naming the first check that failed, in RFC 9449 §4.3's order.
pub(crate) fn verify(
    proof: &[u8],
    rules: &ProofRules,
    target: &ProofTarget<'_>,
) -> Result<VerifiedProof, Refusal> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(refused("dpop proof size"));
    }
    let jws = Jws::parse(proof).map_err(|_| refused("dpop proof"))?;
    let header = jws.header();
    if !header
        .typ
        .as_deref()
        .is_some_and(|typ| typ.eq_ignore_ascii_case("dpop+jwt"))
    {
        return Err(refused("dpop typ"));
    }
    let algorithm = rules
        .algorithms
        .iter()
        .copied()
        .find(|algorithm| algorithm.to_jsonwebtoken() == header.alg)
        .ok_or_else(|| refused("dpop alg"))?;
    // The key as the header spells it: no private member, and a thumbprint.
    let raw_jwk = jws
        .header_member("jwk")
        .ok_or_else(|| refused("dpop jwk"))?;
    let raw_jwk = raw_jwk.as_object().ok_or_else(|| refused("dpop jwk"))?;
    let thumbprint = super::thumbprint::thumbprint(raw_jwk).ok_or_else(|| refused("dpop jwk"))?;
    let jwk = header.jwk.as_ref().ok_or_else(|| refused("dpop jwk"))?;
    let key = crate::jwt::jwk::key_from_jwk(jwk, &[algorithm]).map_err(|_| refused("dpop jwk"))?;
    jws.verify_signature(&key)
        .map_err(|_| refused("dpop signature"))?;
    let claims = jws.payload_object().map_err(|_| refused("dpop claims"))?;
    check_claims(&claims, rules, target)?;
    let jti = string(&claims, "jti").ok_or_else(|| refused("dpop jti"))?;
    let nonce = match claims.get("nonce") {
        None => None,
        Some(Value::String(nonce)) => Some(nonce.clone()),
        Some(_) => return Err(refused("dpop nonce")),
    };
    Ok(VerifiedProof {
        thumbprint,
        jti: jti.to_owned(),
        nonce,
        iat: claims
            .get("iat")
            .and_then(Value::as_i64)
            .unwrap_or_default(),
    })
}

fn string<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name)?.as_str()
}

fn check_claims(
    claims: &Map<String, Value>,
    rules: &ProofRules,
    target: &ProofTarget<'_>,
) -> Result<(), Refusal> {
    let jti = string(claims, "jti").ok_or_else(|| refused("dpop jti"))?;
    if jti.is_empty() || jti.len() > MAX_JTI_LEN {
        return Err(refused("dpop jti"));
    }
    if string(claims, "htm") != Some(target.method.as_str()) {
        return Err(refused("dpop htm"));
    }
    let htu = string(claims, "htu")
        .filter(|htu| super::htu::is_plain(htu))
        .and_then(super::htu::normalize);
    if htu.as_deref() != Some(target.htu) {
        return Err(refused("dpop htu"));
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or_else(|| refused("dpop iat"))?;
    let oldest = target
        .now
        .saturating_sub(i64::try_from(rules.max_age).unwrap_or(i64::MAX));
    let newest = target
        .now
        .saturating_add(i64::try_from(rules.leeway).unwrap_or(i64::MAX));
    if iat < oldest || iat > newest {
        return Err(refused("dpop iat"));
    }
    match (target.access_token, string(claims, "ath")) {
        (Some(token), Some(ath)) if ath == URL_SAFE_NO_PAD.encode(Sha256::digest(token)) => {}
        (None, None) => {}
        _ => return Err(refused("dpop ath")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;
    const HTU: &str = "https://api.example.com/mcp";
    const TOKEN: &[u8] = b"an-access-token";

    fn key(name: &str, algorithm: Algorithm) -> EncodingKey {
        crate::jwt::JwtKey::from_jwk("{}").ok(); // installs jsonwebtoken's backend
        let pem = std::fs::read(format!(
            "{}/tests/data/oauth/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        match algorithm {
            Algorithm::ES256 => EncodingKey::from_ec_pem(&pem).unwrap(),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem).unwrap(),
            _ => EncodingKey::from_rsa_pem(&pem).unwrap(),
        }
    }

    /// A proof signed by `signer`, naming `named`'s public key, with `claims`.
    fn proof_by(
        signer: &EncodingKey,
        named: &EncodingKey,
        algorithm: Algorithm,
        claims: &Value,
    ) -> String {
        let mut header = Header::new(algorithm);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(Jwk::from_encoding_key(named, algorithm).unwrap());
        jsonwebtoken::encode(&header, claims, signer).unwrap()
    }

    fn claims() -> Value {
        json!({
            "jti": "e1j3V_bKic8-LAEB",
            "htm": "POST",
            "htu": HTU,
            "iat": NOW,
            "ath": URL_SAFE_NO_PAD.encode(Sha256::digest(TOKEN)),
        })
    }

    fn target() -> ProofTarget<'static> {
        ProofTarget {
            method: &http::Method::POST,
            htu: HTU,
            access_token: Some(TOKEN),
            now: NOW,
        }
    }

    fn check(proof: &str) -> Result<VerifiedProof, &'static str> {
        verify(proof.as_bytes(), &ProofRules::default(), &target())
            .map_err(|refusal| refusal.rule.unwrap_or("none"))
    }

    #[test]
    fn a_proof_bound_to_the_request_and_token_passes_with_its_keys_thumbprint() {
        for (file, algorithm) in [
            ("ec.pem", Algorithm::ES256),
            ("ed.pem", Algorithm::EdDSA),
            ("rsa-a.pem", Algorithm::RS256),
        ] {
            let key = key(file, algorithm);
            let verified = check(&proof_by(&key, &key, algorithm, &claims())).unwrap();
            let jwk =
                serde_json::to_value(Jwk::from_encoding_key(&key, algorithm).unwrap()).unwrap();
            assert_eq!(
                Some(verified.thumbprint.clone()),
                crate::dpop::thumbprint::thumbprint(jwk.as_object().unwrap()),
                "{file}"
            );
            assert_eq!(verified.jti, "e1j3V_bKic8-LAEB");
        }
    }

    #[test]
    fn every_check_of_rfc_9449_refuses_what_it_should() {
        let ec = key("ec.pem", Algorithm::ES256);
        let other = key("rsa-b.pem", Algorithm::RS256);
        let with = |change: &dyn Fn(&mut Value)| {
            let mut claims = claims();
            change(&mut claims);
            proof_by(&ec, &ec, Algorithm::ES256, &claims)
        };
        // Signed by another key than the one it names.
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(
            Jwk::from_encoding_key(&key("rsa-a.pem", Algorithm::RS256), Algorithm::RS256).unwrap(),
        );
        let forged = jsonwebtoken::encode(&header, &claims(), &other).unwrap();
        assert_eq!(check(&forged), Err("dpop signature"));
        // Not a DPoP proof by its type.
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("JWT".into());
        header.jwk = Some(Jwk::from_encoding_key(&ec, Algorithm::ES256).unwrap());
        assert_eq!(
            check(&jsonwebtoken::encode(&header, &claims(), &ec).unwrap()),
            Err("dpop typ")
        );
        // HMAC: never, whatever it names.
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("dpop+jwt".into());
        let hmac = jsonwebtoken::encode(
            &header,
            &claims(),
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .unwrap();
        assert_eq!(check(&hmac), Err("dpop alg"));
        // No key in the header.
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        assert_eq!(
            check(&jsonwebtoken::encode(&header, &claims(), &ec).unwrap()),
            Err("dpop jwk")
        );
        assert_eq!(check(&with(&|c| c["htm"] = json!("GET"))), Err("dpop htm"));
        assert_eq!(
            check(&with(&|c| c["htu"] = json!("https://api.example.com/other"))),
            Err("dpop htu")
        );
        assert_eq!(
            check(&with(&|c| c["iat"] = json!(NOW - 61))),
            Err("dpop iat")
        );
        assert_eq!(
            check(&with(&|c| c["iat"] = json!(NOW + 6))),
            Err("dpop iat")
        );
        assert_eq!(check(&with(&|c| c["ath"] = json!("AAAA"))), Err("dpop ath"));
        assert_eq!(
            check(&with(&|c| {
                c.as_object_mut().unwrap().remove("ath");
            })),
            Err("dpop ath")
        );
        assert_eq!(
            check(&with(&|c| {
                c.as_object_mut().unwrap().remove("jti");
            })),
            Err("dpop jti")
        );
        assert_eq!(
            check(&with(&|c| c["jti"] = json!("x".repeat(MAX_JTI_LEN + 1)))),
            Err("dpop jti")
        );
        // The htu as another spelling of the same URI, and with a query: accepted.
        assert!(
            check(&with(
                &|c| c["htu"] = json!("HTTPS://API.example.com:443/mcp?x=1")
            ))
            .is_ok()
        );
        assert!(check(&with(&|c| c["iat"] = json!(NOW - 60))).is_ok());
        assert_eq!(
            check(&"a".repeat(MAX_PROOF_LEN + 1)),
            Err("dpop proof size")
        );
        assert_eq!(check("not.a.proof"), Err("dpop proof"));
    }

    #[test]
    fn a_key_with_a_private_member_is_refused_even_when_the_signature_verifies() {
        let ec = key("ec.pem", Algorithm::ES256);
        let proof = proof_by(&ec, &ec, Algorithm::ES256, &claims());
        // Put a `d` into the header's key and sign again with the same key.
        let (header, rest) = proof.split_once('.').unwrap();
        let mut header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        header["jwk"]["d"] = json!("c2VjcmV0");
        let header = URL_SAFE_NO_PAD.encode(header.to_string());
        let payload = rest.split_once('.').unwrap().0;
        let signing_input = format!("{header}.{payload}");
        let signature =
            jsonwebtoken::crypto::sign(signing_input.as_bytes(), &ec, Algorithm::ES256).unwrap();
        assert_eq!(
            check(&format!("{signing_input}.{signature}")),
            Err("dpop jwk")
        );
    }

    #[test]
    fn two_proofs_share_a_replay_key_only_with_one_key_and_one_jti() {
        let proof = |thumbprint: &str, jti: &str| VerifiedProof {
            thumbprint: thumbprint.into(),
            jti: jti.into(),
            iat: NOW,
            nonce: None,
        };
        assert_eq!(proof("a", "1").replay_key(), proof("a", "1").replay_key());
        assert_ne!(proof("a", "1").replay_key(), proof("b", "1").replay_key());
        assert_ne!(proof("a", "1").replay_key(), proof("a", "2").replay_key());
    }

    /// RFC 9449 Figure 2 (§4.1): the proof of a token request, and the key's thumbprint its
    /// Figure 9 publishes; Figure 13 (§7.1): the proof of a resource request with `ath`.
    const RFC_9449_HEADER: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19";
    const RFC_9449_FIGURE_2: &str = "eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
    const RFC_9449_FIGURE_13: &str = "eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA";
    const RFC_9449_TOKEN: &[u8] = b"Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
    const RFC_9449_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

    #[test]
    fn the_rfc_9449_example_proofs_verify_for_what_they_name() {
        crate::jwt::JwtKey::from_jwk("{}").ok(); // installs jsonwebtoken's backend
        let at =
            |method: &'static http::Method, htu: &'static str, token: Option<&'static [u8]>| {
                move |proof: &str| {
                    let htu = crate::dpop::htu::normalize(htu).unwrap();
                    verify(
                        format!("{RFC_9449_HEADER}.{proof}").as_bytes(),
                        &ProofRules::default(),
                        &ProofTarget {
                            method,
                            htu: &htu,
                            access_token: token,
                            now: 1_562_262_620,
                        },
                    )
                    .map_err(|refusal| refusal.rule.unwrap_or("none"))
                }
            };
        let token_request = at(
            &http::Method::POST,
            "https://server.example.com/token",
            None,
        );
        let verified = token_request(RFC_9449_FIGURE_2).unwrap();
        assert_eq!(verified.thumbprint, RFC_9449_JKT);
        assert_eq!(
            (verified.jti.as_str(), verified.iat),
            ("-BwC3ESc6acc2lTc", 1_562_262_616)
        );
        let resource = at(
            &http::Method::GET,
            "https://resource.example.org/protectedresource",
            Some(RFC_9449_TOKEN),
        );
        assert_eq!(
            resource(RFC_9449_FIGURE_13).unwrap().thumbprint,
            RFC_9449_JKT
        );
        // Each bound to what it names: another token, method or URI is refused.
        let another_token = at(
            &http::Method::GET,
            "https://resource.example.org/protectedresource",
            Some(b"another-token"),
        );
        assert_eq!(another_token(RFC_9449_FIGURE_13), Err("dpop ath"));
        let as_a_post = at(
            &http::Method::POST,
            "https://resource.example.org/protectedresource",
            Some(RFC_9449_TOKEN),
        );
        assert_eq!(as_a_post(RFC_9449_FIGURE_13), Err("dpop htm"));
        assert_eq!(resource(RFC_9449_FIGURE_2), Err("dpop htm"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// A proof passes only for the method, URI and token it names, and names the key
        /// that made it: any one of them changed, it is refused (or names another key).
        #[test]
        fn a_proof_is_accepted_only_for_what_it_names(
            named in (0usize..3, 0usize..4, 0usize..3, 0usize..2),
            changed in proptest::collection::vec(proptest::bool::weighted(0.3), 4),
        ) {
            const METHODS: [&str; 3] = ["POST", "GET", "DELETE"];
            const URIS: [&str; 4] = [
                "https://api.example.com/mcp",
                "https://api.example.com/mcp/",
                "https://api.example.com/tools/echo",
                "https://other.example.com/mcp",
            ];
            const TOKENS: [&[u8]; 3] = [b"token-a", b"token-b", b"token-a "];
            let keys = [
                (key("ec.pem", Algorithm::ES256), Algorithm::ES256),
                (key("ed.pem", Algorithm::EdDSA), Algorithm::EdDSA),
            ];
            let (method, uri, token, signer) = named;
            let (key_used, algorithm) = &keys[signer];
            let proof = proof_by(key_used, key_used, *algorithm, &json!({
                "jti": "a-jti-of-the-property",
                "htm": METHODS[method],
                "htu": URIS[uri],
                "iat": NOW,
                "ath": URL_SAFE_NO_PAD.encode(Sha256::digest(TOKENS[token])),
            }));
            // The request as presented: each part the proof's own, or (where `changed` says)
            // the next one of its kind.
            let other = |index: usize, len: usize, change: bool| (index + usize::from(change)) % len;
            let presented = (
                other(method, 3, changed[0]),
                other(uri, 4, changed[1]),
                other(token, 3, changed[2]),
                other(signer, 2, changed[3]),
            );
            let (p_method, p_uri, p_token, p_key) = presented;
            let request_method = http::Method::from_bytes(METHODS[p_method].as_bytes()).unwrap();
            let htu = crate::dpop::htu::normalize(URIS[p_uri]).unwrap();
            let result = verify(
                proof.as_bytes(),
                &ProofRules::default(),
                &ProofTarget {
                    method: &request_method,
                    htu: &htu,
                    access_token: Some(TOKENS[p_token]),
                    now: NOW,
                },
            );
            let jwk = |index: usize| {
                let (key, algorithm) = &keys[index];
                serde_json::to_value(Jwk::from_encoding_key(key, *algorithm).unwrap()).unwrap()
            };
            let expected_key =
                crate::dpop::thumbprint::thumbprint(jwk(p_key).as_object().unwrap()).unwrap();
            let accepted = result.is_ok_and(|proof| proof.thumbprint == expected_key);
            proptest::prop_assert_eq!(accepted, named == presented);
        }
    }
}
