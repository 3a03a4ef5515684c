//! The JWK thumbprint (RFC 7638): SHA-256 over the key's required public members, in
//! lexicographic order, as JSON without whitespace; base64url without padding. What a
//! DPoP-bound token's `cnf.jkt` holds.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Members a public JWK must not carry: the private parts of RSA, EC and OKP keys, and a
/// symmetric key's value. A proof whose key has any is refused (RFC 9449 §4.3, check 7).
pub(crate) const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The thumbprint of the public key `jwk`, or `None` for a key type other than `EC`, `RSA`
/// or `OKP`, a required member missing or not a string, or any private member present.
pub(crate) fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    if PRIVATE_MEMBERS
        .iter()
        .any(|member| jwk.contains_key(*member))
    {
        return None;
    }
    let required: &[&str] = match jwk.get("kty")?.as_str()? {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut canonical: Vec<u8> = Vec::with_capacity(1024);
    canonical.push(b'{');
    for (i, member) in required.iter().enumerate() {
        let value = jwk.get(*member)?.as_str()?;
        if i > 0 {
            canonical.push(b',');
        }
        // Member names and values as JSON strings: serde_json escapes what must be.
        serde_json::to_writer(&mut canonical, member).ok()?;
        canonical.push(b':');
        serde_json::to_writer(&mut canonical, value).ok()?;
    }
    canonical.push(b'}');
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(&canonical)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_rfc_7638_example_key_has_the_published_thumbprint() {
        // RFC 7638 §3.1.
        let jwk = object(
            r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        );
        assert_eq!(
            thumbprint(&jwk).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
    }

    #[test]
    fn the_rfc_9449_example_key_has_the_published_thumbprint() {
        // RFC 9449 §4.1 (the proof's key) and §6.1 (its `cnf.jkt`).
        let jwk = object(
            r#"{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}"#,
        );
        assert_eq!(
            thumbprint(&jwk).as_deref(),
            Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")
        );
    }

    #[test]
    fn private_keys_unknown_types_and_missing_members_have_none() {
        let public = r#""kty":"EC","crv":"P-256","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA""#;
        assert!(thumbprint(&object(&format!("{{{public}}}"))).is_some());
        assert!(thumbprint(&object(&format!(r#"{{{public},"d":"AAAA"}}"#))).is_none());
        assert!(thumbprint(&object(r#"{"kty":"oct","k":"AAAA"}"#)).is_none());
        assert!(thumbprint(&object(r#"{"kty":"EC","crv":"P-256","x":"AAAA"}"#)).is_none());
        assert!(thumbprint(&object(r#"{"kty":"OKP","crv":"Ed25519","x":7}"#)).is_none());
    }
}
