//! MCP 2026-07-28's routing headers: `Mcp-Method`, `Mcp-Name` and `MCP-Protocol-Version`
//! repeat what the body says so that proxies can route without reading it, and a server
//! that reads the body must refuse a request whose headers say something else (a proxy or
//! gateway would act on the headers, the server on the body). Checked on the layer's one
//! scan of the body.

use base64::Engine as _;
use http::HeaderMap;

/// The first protocol revision whose requests must carry the routing headers.
pub(crate) const HEADERS_REQUIRED_FROM: &str = "2026-07-28";

/// The routing headers' names, as the error names them.
pub(crate) const MCP_METHOD: &str = "Mcp-Method";
pub(crate) const MCP_NAME: &str = "Mcp-Name";
pub(crate) const MCP_PROTOCOL_VERSION: &str = "MCP-Protocol-Version";

/// Whether the request carries any routing header, so that its body must be read.
pub(crate) fn any_present(headers: &HeaderMap) -> bool {
    [MCP_METHOD, MCP_NAME, MCP_PROTOCOL_VERSION]
        .iter()
        .any(|name| headers.contains_key(*name))
}

/// The one value of header `name`: `Ok(None)` when absent; `Err` when repeated or not
/// visible ASCII.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ()> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => value.to_str().map(Some).map_err(|_| ()),
        (Some(_), Some(_)) => Err(()),
    }
}

/// `Mcp-Name` as the body would spell it: the `=?base64?…?=` form (for names that are not
/// visible ASCII) decoded as UTF-8; `None` for a form that does not decode.
fn decode_name(raw: &str) -> Option<String> {
    match raw
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    {
        Some(encoded) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?;
            String::from_utf8(bytes).ok()
        }
        None => Some(raw.to_owned()),
    }
}

/// What a request's body says, for the headers to be compared with.
pub(crate) struct BodySays<'a> {
    pub(crate) method: Option<&'a str>,
    /// `params.name` (tools, prompts) or `params.uri` (resources), by the method.
    pub(crate) name: Option<&'a str>,
    /// `params._meta["io.modelcontextprotocol/protocolVersion"]`.
    pub(crate) protocol_version: Option<&'a str>,
}

impl<'a> BodySays<'a> {
    /// What one request says: the name a method carries is `params.name` for
    /// `tools/call` and `prompts/get`, `params.uri` for `resources/read`, none otherwise.
    pub(crate) fn new(
        method: Option<&'a str>,
        name: Option<&'a str>,
        uri: Option<&'a str>,
        protocol_version: Option<&'a str>,
    ) -> Self {
        let name = match method {
            Some("tools/call" | "prompts/get") => name,
            Some("resources/read") => uri,
            _ => None,
        };
        Self {
            method,
            name,
            protocol_version,
        }
    }

    fn names_something(&self) -> bool {
        matches!(
            self.method,
            Some("tools/call" | "prompts/get" | "resources/read")
        )
    }
}

/// The routing header that disagrees with the body, is malformed or repeated, or is
/// missing where the request's protocol version requires it; `None` when they agree.
/// `body` is `None` for a batch, which no revision with routing headers allows.
pub(crate) fn mismatch(headers: &HeaderMap, body: Option<&BodySays<'_>>) -> Option<&'static str> {
    let version = single(headers, MCP_PROTOCOL_VERSION).map_err(|()| MCP_PROTOCOL_VERSION);
    let method = single(headers, MCP_METHOD).map_err(|()| MCP_METHOD);
    let name = single(headers, MCP_NAME).map_err(|()| MCP_NAME);
    let (version, method, name) = match (version, method, name) {
        (Ok(version), Ok(method), Ok(name)) => (version, method, name),
        (Err(header), _, _) | (_, Err(header), _) | (_, _, Err(header)) => return Some(header),
    };
    let required = version.is_some_and(|version| version >= HEADERS_REQUIRED_FROM);
    let Some(body) = body else {
        // A batch: only revisions without routing headers allow one.
        return match (method, name) {
            (Some(_), _) => Some(MCP_METHOD),
            (None, Some(_)) => Some(MCP_NAME),
            (None, None) if required => Some(MCP_METHOD),
            (None, None) => None,
        };
    };
    match method {
        Some(method) if body.method != Some(method) => return Some(MCP_METHOD),
        None if required && body.method.is_some() => return Some(MCP_METHOD),
        _ => {}
    }
    match name.map(decode_name) {
        Some(None) => return Some(MCP_NAME),
        Some(Some(name)) if body.name != Some(name.as_str()) => return Some(MCP_NAME),
        None if required && body.names_something() => return Some(MCP_NAME),
        _ => {}
    }
    match (version, body.protocol_version) {
        (Some(header), Some(said)) if header != said => Some(MCP_PROTOCOL_VERSION),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    const NEW: &str = "2026-07-28";

    #[test]
    fn headers_that_repeat_the_body_pass_and_any_disagreement_names_its_header() {
        let call = BodySays::new(Some("tools/call"), Some("refund"), None, Some(NEW));
        let agreeing = [
            ("MCP-Protocol-Version", NEW),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "refund"),
        ];
        assert_eq!(mismatch(&headers(&agreeing), Some(&call)), None);
        // The base64 form of the same name.
        let encoded = headers(&[
            ("MCP-Protocol-Version", NEW),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "=?base64?cmVmdW5k?="),
        ]);
        assert_eq!(mismatch(&encoded, Some(&call)), None);
        for (index, value, header) in [
            (1, "tools/list", MCP_METHOD),
            (2, "delete_everything", MCP_NAME),
            (2, "=?base64?!!!?=", MCP_NAME),
            (0, "2026-07-29", MCP_PROTOCOL_VERSION),
        ] {
            let mut changed = agreeing;
            changed[index].1 = value;
            assert_eq!(
                mismatch(&headers(&changed), Some(&call)),
                Some(header),
                "{value}"
            );
        }
        // Repeated.
        let mut twice = agreeing.to_vec();
        twice.push(("Mcp-Method", "tools/call"));
        assert_eq!(mismatch(&headers(&twice), Some(&call)), Some(MCP_METHOD));
    }

    #[test]
    fn from_2026_07_28_the_headers_are_required_and_before_it_they_are_not() {
        let call = BodySays::new(Some("resources/read"), None, Some("file:///a"), None);
        let old = headers(&[("MCP-Protocol-Version", "2025-06-18")]);
        assert_eq!(mismatch(&old, Some(&call)), None);
        let new = headers(&[("MCP-Protocol-Version", NEW)]);
        assert_eq!(mismatch(&new, Some(&call)), Some(MCP_METHOD));
        let new = headers(&[
            ("MCP-Protocol-Version", NEW),
            ("Mcp-Method", "resources/read"),
        ]);
        assert_eq!(mismatch(&new, Some(&call)), Some(MCP_NAME));
        let new = headers(&[
            ("MCP-Protocol-Version", NEW),
            ("Mcp-Method", "resources/read"),
            ("Mcp-Name", "file:///a"),
        ]);
        assert_eq!(mismatch(&new, Some(&call)), None);
        // A method that names nothing needs no Mcp-Name; a name header for it disagrees.
        let list = BodySays::new(Some("tools/list"), None, None, None);
        let new = headers(&[("MCP-Protocol-Version", NEW), ("Mcp-Method", "tools/list")]);
        assert_eq!(mismatch(&new, Some(&list)), None);
        let named = headers(&[("Mcp-Method", "tools/list"), ("Mcp-Name", "x")]);
        assert_eq!(mismatch(&named, Some(&list)), Some(MCP_NAME));
        // Batches carry no routing headers.
        assert_eq!(mismatch(&old, None), None);
        assert_eq!(
            mismatch(&headers(&[("Mcp-Method", "tools/call")]), None),
            Some(MCP_METHOD)
        );
        assert_eq!(
            mismatch(&headers(&[("MCP-Protocol-Version", NEW)]), None),
            Some(MCP_METHOD)
        );
    }
}
