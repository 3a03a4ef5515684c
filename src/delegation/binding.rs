//! Where a platform names the user it calls for: a header, a query parameter, or a field of
//! the signed JSON body.

use http::HeaderName;
use http::request::Parts;

use crate::error::ConfigError;

/// Where the platform's claim about the user travels.
///
/// ```
/// use callguard::delegation::PlatformUser;
///
/// let in_body = PlatformUser::json_pointer("/user_id")?;   // RFC 6901, into the signed body
/// let in_header = PlatformUser::header("x-user-id")?;
/// let in_query = PlatformUser::query("user_id");
/// # Ok::<(), callguard::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PlatformUser {
    pub(crate) source: Source,
}

#[derive(Debug, Clone)]
pub(crate) enum Source {
    Header(HeaderName),
    Query(Box<str>),
    JsonPointer(Box<str>),
}

/// Why the platform's claim could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unreadable {
    /// Not there (no such header, parameter or field).
    Missing,
    /// There, but not a single string (a number, an object, a repeated header, a body that
    /// is not JSON).
    NotAString,
}

impl PlatformUser {
    /// The value of request header `name`, which must appear once, as UTF-8.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidHeaderName`] for a name that is not a header name.
    pub fn header(name: &str) -> Result<Self, ConfigError> {
        let name = HeaderName::try_from(name).map_err(|_| ConfigError::InvalidHeaderName {
            name: name.to_owned(),
        })?;
        Ok(Self {
            source: Source::Header(name),
        })
    }

    /// The value of query parameter `name`, which must appear once (percent-decoded).
    pub fn query(name: &str) -> Self {
        Self {
            source: Source::Query(name.into()),
        }
    }

    /// The string at `pointer` (RFC 6901) in the JSON body, read from the body the guard
    /// already buffered to verify its signature (no second read).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] for a pointer that does not start with `/`.
    pub fn json_pointer(pointer: &str) -> Result<Self, ConfigError> {
        if !pointer.starts_with('/') {
            return Err(ConfigError::InvalidValue {
                field: "JSON pointer",
            });
        }
        Ok(Self {
            source: Source::JsonPointer(pointer.into()),
        })
    }

    /// Whether the claim is read from the body.
    pub(crate) fn needs_body(&self) -> bool {
        matches!(self.source, Source::JsonPointer(_))
    }

    /// The claim read from the head; `None` for a body field.
    pub(crate) fn read_head(&self, parts: &Parts) -> Option<Result<String, Unreadable>> {
        match &self.source {
            Source::Header(name) => {
                let mut values = parts.headers.get_all(name).iter();
                Some(match (values.next(), values.next()) {
                    (None, _) => Err(Unreadable::Missing),
                    (Some(value), None) => value
                        .to_str()
                        .map(str::to_owned)
                        .map_err(|_| Unreadable::NotAString),
                    (Some(_), Some(_)) => Err(Unreadable::NotAString),
                })
            }
            Source::Query(name) => {
                let query = parts.uri.query().unwrap_or("");
                let mut found = form_urlencoded::parse(query.as_bytes())
                    .filter(|(key, _)| key == &**name)
                    .map(|(_, value)| value.into_owned());
                Some(match (found.next(), found.next()) {
                    (None, _) => Err(Unreadable::Missing),
                    (Some(value), None) => Ok(value),
                    (Some(_), Some(_)) => Err(Unreadable::NotAString),
                })
            }
            Source::JsonPointer(_) => None,
        }
    }

    /// The claim read from the buffered body (for a body field), in one scan that builds
    /// nothing but the string found: every other member is skipped. A member named twice
    /// on the way is ambiguous and counts as unreadable.
    pub(crate) fn read_body(&self, body: &[u8]) -> Result<String, Unreadable> {
        let Source::JsonPointer(pointer) = &self.source else {
            return Err(Unreadable::Missing);
        };
        let tokens: Vec<String> = pointer
            .split('/')
            .skip(1)
            .map(|token| token.replace("~1", "/").replace("~0", "~"))
            .collect();
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let found = serde::de::DeserializeSeed::deserialize(Walk(&tokens), &mut deserializer)
            .map_err(|_| Unreadable::NotAString)?;
        deserializer.end().map_err(|_| Unreadable::NotAString)?;
        match found {
            Found::String(value) => Ok(value),
            Found::Missing => Err(Unreadable::Missing),
            Found::Other => Err(Unreadable::NotAString),
        }
    }
}

/// What a pointer found.
enum Found {
    String(String),
    Missing,
    Other,
}

/// Follows the rest of a JSON pointer through the value being deserialized.
struct Walk<'a>(&'a [String]);

impl<'de> serde::de::DeserializeSeed<'de> for Walk<'_> {
    type Value = Found;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Found, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Walk<'_> {
    type Value = Found;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Found, E> {
        Ok(if self.0.is_empty() {
            Found::String(value.to_owned())
        } else {
            Found::Missing
        })
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Found, A::Error> {
        let Some((token, rest)) = self.0.split_first() else {
            while map
                .next_entry::<crate::json::Checked, crate::json::Checked>()?
                .is_some()
            {}
            return Ok(Found::Other);
        };
        let mut found = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if *key == **token {
                if found.is_some() {
                    // Named twice: which one the platform meant is not ours to guess.
                    map.next_value::<crate::json::Checked>()?;
                    found = Some(Found::Other);
                    continue;
                }
                found = Some(map.next_value_seed(Walk(rest))?);
            } else {
                map.next_value::<crate::json::Checked>()?;
            }
        }
        Ok(found.unwrap_or(Found::Missing))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Found, A::Error> {
        // RFC 6901 §4: an index is `0` or digits without a leading zero.
        let index = self
            .0
            .first()
            .filter(|token| {
                token.bytes().all(|b| b.is_ascii_digit())
                    && (token.len() == 1 || !token.starts_with('0'))
            })
            .and_then(|token| token.parse::<usize>().ok());
        let mut found = Found::Missing;
        let mut at = 0;
        loop {
            if Some(at) == index {
                match seq.next_element_seed(Walk(&self.0[1..]))? {
                    Some(value) => found = value,
                    None => break,
                }
            } else if seq.next_element::<crate::json::Checked>()?.is_none() {
                break;
            }
            at += 1;
        }
        Ok(if self.0.is_empty() {
            Found::Other
        } else {
            found
        })
    }

    fn visit_bool<E>(self, _: bool) -> Result<Found, E> {
        Ok(self.scalar())
    }

    fn visit_i64<E>(self, _: i64) -> Result<Found, E> {
        Ok(self.scalar())
    }

    fn visit_u64<E>(self, _: u64) -> Result<Found, E> {
        Ok(self.scalar())
    }

    fn visit_f64<E>(self, _: f64) -> Result<Found, E> {
        Ok(self.scalar())
    }

    fn visit_unit<E>(self) -> Result<Found, E> {
        Ok(self.scalar())
    }
}

impl Walk<'_> {
    /// A number, boolean or null: the value when the pointer ends here, else nothing inside.
    fn scalar(&self) -> Found {
        if self.0.is_empty() {
            Found::Other
        } else {
            Found::Missing
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = http::Request::post(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_header_must_appear_once() {
        let source = PlatformUser::header("x-user-id").unwrap();
        assert_eq!(
            source.read_head(&parts("/", &[("x-user-id", "u1")])),
            Some(Ok("u1".into()))
        );
        assert_eq!(
            source.read_head(&parts("/", &[])),
            Some(Err(Unreadable::Missing))
        );
        let twice = parts("/", &[("x-user-id", "u1"), ("x-user-id", "u2")]);
        assert_eq!(source.read_head(&twice), Some(Err(Unreadable::NotAString)));
    }

    #[test]
    fn a_query_parameter_is_decoded_and_must_appear_once() {
        let source = PlatformUser::query("user_id");
        assert_eq!(
            source.read_head(&parts("/?user_id=u%201", &[])),
            Some(Ok("u 1".into()))
        );
        assert_eq!(
            source.read_head(&parts("/?user_id=a&user_id=b", &[])),
            Some(Err(Unreadable::NotAString))
        );
        assert_eq!(
            source.read_head(&parts("/?other=1", &[])),
            Some(Err(Unreadable::Missing))
        );
    }

    #[test]
    fn a_body_field_must_be_a_string_in_json() {
        let source = PlatformUser::json_pointer("/user/id").unwrap();
        assert_eq!(
            source.read_body(br#"{"user":{"id":"u1"}}"#),
            Ok("u1".into())
        );
        assert_eq!(
            source.read_body(br#"{"user":{"id":7}}"#),
            Err(Unreadable::NotAString)
        );
        assert_eq!(
            source.read_body(br#"{"user":{}}"#),
            Err(Unreadable::Missing)
        );
        assert_eq!(source.read_body(b"user=u1"), Err(Unreadable::NotAString));
        assert!(PlatformUser::json_pointer("user_id").is_err());
    }

    #[test]
    fn the_scan_agrees_with_serde_json_pointer() {
        let documents = [
            r#"{"a":{"b":["x",{"c":"y"}]},"a~b":"t","s/l":"u","n":null}"#,
            r#"[{"a":"x"},"y"]"#,
            r#""plain""#,
            r#"{"a":{"b":[1,2]}}"#,
        ];
        let pointers = [
            "/a/b/0", "/a/b/01", "/a/b/+1", "/a/b/1/c", "/a~0b", "/s~1l", "/n", "/a", "/a/b/9",
            "/0/a", "/1", "/missing", "/a/b/x",
        ];
        for document in documents {
            let value: serde_json::Value = serde_json::from_str(document).unwrap();
            for pointer in pointers {
                let expected = match value.pointer(pointer) {
                    None => Err(Unreadable::Missing),
                    Some(serde_json::Value::String(s)) => Ok(s.clone()),
                    Some(_) => Err(Unreadable::NotAString),
                };
                let source = PlatformUser::json_pointer(pointer).unwrap();
                assert_eq!(
                    source.read_body(document.as_bytes()),
                    expected,
                    "{document} {pointer}"
                );
            }
        }
    }

    #[test]
    fn a_member_named_twice_is_unreadable() {
        let source = PlatformUser::json_pointer("/user_id").unwrap();
        assert_eq!(
            source.read_body(br#"{"user_id":"a","user_id":"b"}"#),
            Err(Unreadable::NotAString)
        );
        assert_eq!(
            source.read_body(br#"{"user_id":"a"} trailing"#),
            Err(Unreadable::NotAString)
        );
    }
}
