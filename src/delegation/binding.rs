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

    /// The claim read from the buffered body (for a body field).
    pub(crate) fn read_body(&self, body: &[u8]) -> Result<String, Unreadable> {
        let Source::JsonPointer(pointer) = &self.source else {
            return Err(Unreadable::Missing);
        };
        let document: serde_json::Value =
            serde_json::from_slice(body).map_err(|_| Unreadable::NotAString)?;
        match document.pointer(pointer) {
            None => Err(Unreadable::Missing),
            Some(serde_json::Value::String(value)) => Ok(value.clone()),
            Some(_) => Err(Unreadable::NotAString),
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
}
