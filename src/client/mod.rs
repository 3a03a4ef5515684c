//! The address a request came from: [`ClientAddr`], put into the request's extensions by
//! the server or by [`ClientAddrLayer`], which reads it through [`TrustedProxies`].

use std::net::IpAddr;

mod layer;
mod proxies;

pub use layer::{ClientAddrLayer, ClientAddrService, PeerSource};
pub use proxies::{ForwardedHeader, MAX_HOPS, TrustedProxies};

/// A configured range as addresses are compared with it (after `to_canonical`): an
/// IPv4-mapped IPv6 range (`::ffff:10.0.0.0/104`) is the IPv4 range it maps.
pub(crate) fn canonical_range(range: ipnet::IpNet) -> ipnet::IpNet {
    match range {
        ipnet::IpNet::V6(v6) if v6.prefix_len() >= 96 => v6
            .addr()
            .to_ipv4_mapped()
            .and_then(|v4| ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).ok())
            .map_or(range, ipnet::IpNet::V4),
        _ => range,
    }
}

/// The address of the client a request came from, read from the request's extensions by
/// the parts of callguard that share a resource among clients (today: the introspection
/// calls one client may hold in flight).
///
/// Put it there from whatever your server knows: the peer address of the connection (axum's
/// `ConnectInfo`, hyper's accept loop), or an address resolved through proxies you trust.
/// Never from a header a client can set.
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use callguard::ClientAddr;
///
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(ClientAddr(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

#[cfg_attr(
    not(feature = "oauth"),
    allow(
        dead_code,
        reason = "only introspection shares per-client resources yet"
    )
)]
impl ClientAddr {
    /// The client's group: an IPv4 address (or an IPv4-mapped IPv6 one) as it is, an IPv6
    /// address by its /64, which one subscriber usually holds whole.
    pub(crate) fn group(self) -> u128 {
        match self.0 {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => u128::from(u32::from(v4)),
                None => (u128::from(v6) >> 64 << 64) | (1 << 32),
            },
        }
    }

    /// The client's group for a limit, as bytes: the family, then an IPv4 address as it is
    /// or an IPv6 address's first `prefix` bits (the rest zero).
    pub(crate) fn group_by(self, prefix: u8) -> [u8; 17] {
        let mut group = [0u8; 17];
        match self.0.to_canonical() {
            IpAddr::V4(v4) => {
                group[0] = 4;
                group[1..5].copy_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                group[0] = 6;
                let kept = match u32::from(prefix.min(128)) {
                    0 => 0,
                    bits => u128::from(v6) >> (128 - bits) << (128 - bits),
                };
                group[1..].copy_from_slice(&kept.to_be_bytes());
            }
        }
        group
    }

    /// The client's network: an IPv4 /24, an IPv6 /48 (what one subscriber is commonly
    /// given whole), laid out so that it never equals a [`group`](Self::group): a group's
    /// high 96 bits are zero (IPv4) or its low 64 bits are exactly `1 << 32` (IPv6), while
    /// a network has bit 127 set and low 64 bits below `1 << 24` (IPv4) or equal to 2
    /// (IPv6, its /48 in bits 64 to 111).
    pub(crate) fn network(self) -> u128 {
        let tag = 1u128 << 127;
        match self.0 {
            IpAddr::V4(v4) => tag | u128::from(u32::from(v4) >> 8),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => tag | u128::from(u32::from(v4) >> 8),
                None => tag | (1 << 126) | ((u128::from(v6) >> 80) << 64) | 2,
            },
        }
    }

    /// The client address a request carries, if its server put one there.
    pub(crate) fn of(parts: &http::request::Parts) -> Option<Self> {
        parts.extensions.get::<Self>().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_never_equals_a_group() {
        let addr = |text: &str| ClientAddr(text.parse().unwrap());
        // Once equal: the /64 group of c000:: and the /48 network of 1::.
        assert_ne!(addr("c000::1").group(), addr("1::1").network());
        let samples = [
            "0.0.0.0",
            "1.2.3.4",
            "255.255.255.255",
            "::",
            "::1",
            "1::",
            "1::1",
            "c000::",
            "c000::1",
            "ffff:ffff:ffff:ffff::",
            "ffff:ffff:ffff::",
            "::ffff:1.2.3.4",
            "2001:db8::",
            "2001:db8:0:1::",
            "8000::",
            "4000::1",
        ];
        for a in samples {
            for b in samples {
                assert_ne!(addr(a).group(), addr(b).network(), "{a} and {b}");
            }
        }
        // Networks still tell /48s and /24s apart, and keep the addresses of one together.
        assert_eq!(
            addr("2001:db8:7:1::1").network(),
            addr("2001:db8:7:ffff::9").network()
        );
        assert_ne!(
            addr("2001:db8:7::1").network(),
            addr("2001:db8:8::1").network()
        );
        assert_eq!(
            addr("198.51.100.1").network(),
            addr("::ffff:198.51.100.200").network()
        );
        assert_ne!(
            addr("198.51.100.1").network(),
            addr("198.51.101.1").network()
        );
    }

    #[test]
    fn ipv6_clients_are_grouped_by_their_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ClientAddr(a).group(), ClientAddr(b).group());
        assert_ne!(ClientAddr(a).group(), ClientAddr(c).group());
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(ClientAddr(mapped).group(), ClientAddr(v4).group());
        assert_ne!(
            ClientAddr(v4).group(),
            ClientAddr("::c000:207".parse().unwrap()).group()
        );
    }
}
