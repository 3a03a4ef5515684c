//! Who the client is behind proxies: `X-Forwarded-For` or `Forwarded` (RFC 7239) read from
//! the right, and only as far as the hops are proxies the operator trusts.

use std::net::IpAddr;
use std::str::FromStr;

use http::HeaderMap;
use ipnet::IpNet;

use crate::error::ConfigError;

/// Which header trusted proxies name the client in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, most load balancers).
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
}

/// The proxies whose forwarding headers are believed: a set of CIDR ranges.
///
/// The client of a request is found by walking from the connection's peer to the left of
/// the forwarding header: while the address at hand is a trusted proxy, the entry it added
/// (the next one to the left) is taken; the first address that is not a trusted proxy is
/// the client. Entries a client wrote itself sit left of that point and are never read, so
/// a spoofed leftmost `X-Forwarded-For` entry does not help. Without a trusted peer, the
/// headers are ignored and the peer is the client.
///
/// ```
/// use std::net::IpAddr;
/// use callguard::client::TrustedProxies;
///
/// let proxies = TrustedProxies::parse(["10.0.0.0/8", "2001:db8::/32"])?;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("x-forwarded-for", "203.0.113.9, 198.51.100.7, 10.0.0.2".parse()?);
/// // The peer is our load balancer (trusted); 10.0.0.2 is another of ours; 198.51.100.7 is
/// // the first hop we do not run: the client. 203.0.113.9 is what the client claimed.
/// let peer: IpAddr = "10.0.0.1".parse()?;
/// assert_eq!(proxies.client(peer, &headers), "198.51.100.7".parse::<IpAddr>()?);
/// // From an untrusted peer the header is ignored.
/// let peer: IpAddr = "192.0.2.1".parse()?;
/// assert_eq!(proxies.client(peer, &headers), peer);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    ranges: Vec<IpNet>,
    header: ForwardedHeader,
}

/// The most forwarding entries read: a chain longer than this ends at its last trusted hop.
pub const MAX_HOPS: usize = 32;

impl TrustedProxies {
    /// No proxy is trusted: the peer is always the client.
    pub fn none() -> Self {
        Self::default()
    }

    /// Trust the proxies in `ranges` (CIDRs such as `10.0.0.0/8`, or single addresses).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] naming `trusted proxy` for an entry that is neither.
    pub fn parse<S: AsRef<str>>(ranges: impl IntoIterator<Item = S>) -> Result<Self, ConfigError> {
        let ranges = ranges
            .into_iter()
            .map(|range| parse_range(range.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|()| ConfigError::InvalidValue {
                field: "trusted proxy (a CIDR such as 10.0.0.0/8, or an address)",
            })?;
        Ok(Self {
            ranges,
            header: ForwardedHeader::default(),
        })
    }

    /// Read the client from `header` (default: `X-Forwarded-For`).
    #[must_use]
    pub fn header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    /// Whether `address` is a trusted proxy.
    pub fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.ranges.iter().any(|range| range.contains(&address))
    }

    /// The client of a request that came from `peer` with `headers`: walking the forwarding
    /// entries from the right, the first address that is not a trusted proxy. A request
    /// from a trusted proxy that names no client (its own health check, or a proxy that
    /// does not add the header) is the proxy's: configure the proxy to set the header on
    /// every request it forwards, or all of its clients share one address's limits.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let name = match self.header {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        };
        // Every header line, in order, then every entry of each: the whole list.
        let lines: Vec<&[u8]> = headers.get_all(name).iter().map(|v| v.as_bytes()).collect();
        let entries = lines
            .iter()
            .rev()
            .flat_map(|line| line.rsplit(|b| *b == b','))
            .take(MAX_HOPS);
        for entry in entries {
            let hop = match self.header {
                ForwardedHeader::XForwardedFor => parse_address(trim(entry)),
                ForwardedHeader::Forwarded => forwarded_for(entry),
            };
            match hop {
                // A hop our proxy could not name (`unknown`, an obfuscated id, garbage): the
                // proxy that reported it is as far as we can see.
                None => return client,
                Some(hop) => {
                    client = hop.to_canonical();
                    if !self.trusts(client) {
                        return client;
                    }
                }
            }
        }
        client
    }
}

fn parse_range(text: &str) -> Result<IpNet, ()> {
    let text = text.trim();
    IpNet::from_str(text)
        .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
        .map(|net| crate::client::canonical_range(net.trunc()))
        .map_err(|_| ())
}

fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:443`, `2001:db8::1`,
/// `[2001:db8::1]:443`.
fn parse_address(text: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(text).ok()?;
    if let Ok(address) = IpAddr::from_str(text) {
        return Some(address);
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port_ok = after.is_empty()
            || after
                .strip_prefix(':')
                .is_some_and(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
        return port_ok
            .then(|| std::net::Ipv6Addr::from_str(inside).ok().map(IpAddr::V6))
            .flatten();
    }
    let (host, port) = text.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    std::net::Ipv4Addr::from_str(host).ok().map(IpAddr::V4)
}

/// The `for` parameter of one `Forwarded` element (`for=192.0.2.60;proto=http`), unquoted.
fn forwarded_for(element: &[u8]) -> Option<IpAddr> {
    element.split(|b| *b == b';').find_map(|pair| {
        let pair = trim(pair);
        let (name, value) = pair.split_at(pair.iter().position(|b| *b == b'=')?);
        if !name.eq_ignore_ascii_case(b"for") {
            return None;
        }
        let value = &value[1..];
        let value = match value {
            [b'"', inner @ .., b'"'] => inner,
            value => value,
        };
        parse_address(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: &str, values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_walk_goes_right_to_left_through_trusted_hops_only() {
        let proxies = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
        let spoofed = headers("x-forwarded-for", &["1.1.1.1, 203.0.113.5, 10.1.1.1"]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &spoofed), ip("203.0.113.5"));
        // Several header lines are one list, in order.
        let split = headers("x-forwarded-for", &["1.1.1.1", "203.0.113.5, 10.1.1.1"]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &split), ip("203.0.113.5"));
        // Untrusted peer: the headers are the client's own words.
        assert_eq!(proxies.client(ip("192.0.2.9"), &spoofed), ip("192.0.2.9"));
        // Every hop trusted: the leftmost is as far as the chain goes.
        let internal = headers("x-forwarded-for", &["10.9.9.9, 10.1.1.1"]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &internal), ip("10.9.9.9"));
        // No header from a trusted peer: the peer.
        assert_eq!(
            proxies.client(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn an_unreadable_hop_stops_the_walk_at_the_proxy_that_wrote_it() {
        let proxies = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
        let garbage = headers("x-forwarded-for", &["203.0.113.5, not-an-ip, 10.1.1.1"]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &garbage), ip("10.1.1.1"));
    }

    #[test]
    fn mapped_ipv4_is_ipv4_and_ports_are_read_past() {
        let proxies = TrustedProxies::parse(["10.0.0.0/8", "2001:db8::/32"]).unwrap();
        assert!(proxies.trusts(ip("::ffff:10.1.2.3")));
        let forwarded = headers("x-forwarded-for", &["[2001:db9::5]:443, 10.0.0.7:8080"]);
        assert_eq!(
            proxies.client(ip("::ffff:10.0.0.1"), &forwarded),
            ip("2001:db9::5")
        );
        let mapped = headers("x-forwarded-for", &["::ffff:198.51.100.1"]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &mapped), ip("198.51.100.1"));
        // A range written in the mapped form is the IPv4 range.
        let written_mapped = TrustedProxies::parse(["::ffff:10.0.0.0/104"]).unwrap();
        assert!(written_mapped.trusts(ip("10.9.8.7")));
        assert!(written_mapped.trusts(ip("::ffff:10.9.8.7")));
        assert!(!written_mapped.trusts(ip("11.0.0.1")));
    }

    #[test]
    fn rfc_7239_for_parameters_are_read_quoted_or_not() {
        let proxies = TrustedProxies::parse(["10.0.0.0/8"])
            .unwrap()
            .header(ForwardedHeader::Forwarded);
        let forwarded = headers(
            "forwarded",
            &[
                "for=192.0.2.43;proto=https, For=\"[2001:db8:cafe::17]:4711\", for=10.0.0.3;by=10.0.0.1",
            ],
        );
        assert_eq!(
            proxies.client(ip("10.0.0.1"), &forwarded),
            ip("2001:db8:cafe::17")
        );
        let hidden = headers("forwarded", &["for=_hidden, for=10.0.0.3"]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &hidden), ip("10.0.0.3"));
    }

    #[test]
    fn a_bad_range_is_named_when_built() {
        assert!(TrustedProxies::parse(["10.0.0.0/33"]).is_err());
        assert!(TrustedProxies::parse(["proxy.internal"]).is_err());
        assert!(TrustedProxies::parse(["192.0.2.1", " 10.0.0.0/8 "]).is_ok());
    }

    #[test]
    fn a_long_chain_is_read_at_most_max_hops_deep() {
        let proxies = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
        let chain = vec!["10.0.0.9"; 1000].join(", ");
        let long = headers("x-forwarded-for", &[&format!("203.0.113.5, {chain}")]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &long), ip("10.0.0.9"));
    }
}
