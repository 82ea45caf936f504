//! Which addresses the service may connect to on a tenant's or a stranger's behalf.
//!
//! A domain's owner chooses what its names resolve to, and a forged report chooses which
//! addresses appear in it, so by default every outbound connection (the MTA-STS policy
//! fetch) and every reverse lookup skips the special-purpose addresses of the IANA IPv4 and
//! IPv6 Special-Purpose Address Registries (RFC 6890 and its updates) that are not globally
//! reachable: private, shared (CGNAT), loopback, link-local, "this network", documentation,
//! benchmarking, reserved, broadcast and multicast addresses, unique-local and site-local
//! IPv6, the IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4) when that
//! address is itself special, and Teredo. [`OutboundPolicy::AllowPrivate`] (configuration
//! `outbound.allow_private_addresses`) lifts this, for test servers on loopback.
//!
//! The classifier is written here because no maintained crate fits: `std`'s
//! `IpAddr::is_global` is unstable, and the crates that copy an older version of it
//! (`ip_rfc`, `ip_network`) count global-scope multicast as global and do not look inside
//! IPv4-mapped, NAT64 or 6to4 addresses. The tables below follow the registries; each range
//! has a unit test.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether outbound connections may reach addresses that are not globally reachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutboundPolicy {
    /// Only globally reachable addresses (the default).
    #[default]
    PublicOnly,
    /// Any address, including private and loopback ones (test servers).
    AllowPrivate,
}

impl OutboundPolicy {
    /// `AllowPrivate` when `allow_private_addresses` is true, `PublicOnly` otherwise.
    pub fn allow_private(allow_private_addresses: bool) -> Self {
        if allow_private_addresses {
            Self::AllowPrivate
        } else {
            Self::PublicOnly
        }
    }

    /// Whether a connection to (or a lookup of) `ip` is permitted.
    pub fn permits(self, ip: IpAddr) -> bool {
        match self {
            Self::AllowPrivate => true,
            Self::PublicOnly => special_purpose(ip).is_none(),
        }
    }
}

/// A special-purpose range an address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialRange {
    /// The range, e.g. `10.0.0.0/8`.
    pub prefix: &'static str,
    /// What it is, in plain English, e.g. `private network`.
    pub name: &'static str,
}

impl fmt::Display for SpecialRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {}", self.name, self.prefix)
    }
}

/// An IPv4 range: network address, prefix length, what it is.
type V4 = ([u8; 4], u8, &'static str, &'static str);

/// IPv4 ranges that are not globally reachable (IANA IPv4 Special-Purpose Address Registry;
/// multicast from RFC 5771). Longest prefixes first where ranges nest.
const V4_SPECIAL: &[V4] = &[
    ([0, 0, 0, 0], 8, "0.0.0.0/8", "\"this network\""),
    ([10, 0, 0, 0], 8, "10.0.0.0/8", "private network"),
    (
        [100, 64, 0, 0],
        10,
        "100.64.0.0/10",
        "shared address space (carrier-grade NAT)",
    ),
    ([127, 0, 0, 0], 8, "127.0.0.0/8", "loopback"),
    ([169, 254, 0, 0], 16, "169.254.0.0/16", "link-local"),
    ([172, 16, 0, 0], 12, "172.16.0.0/12", "private network"),
    (
        [192, 0, 0, 0],
        24,
        "192.0.0.0/24",
        "IETF protocol assignments",
    ),
    (
        [192, 0, 2, 0],
        24,
        "192.0.2.0/24",
        "documentation (TEST-NET-1)",
    ),
    (
        [192, 88, 99, 0],
        24,
        "192.88.99.0/24",
        "6to4 relay anycast (deprecated)",
    ),
    ([192, 168, 0, 0], 16, "192.168.0.0/16", "private network"),
    ([198, 18, 0, 0], 15, "198.18.0.0/15", "benchmarking"),
    (
        [198, 51, 100, 0],
        24,
        "198.51.100.0/24",
        "documentation (TEST-NET-2)",
    ),
    (
        [203, 0, 113, 0],
        24,
        "203.0.113.0/24",
        "documentation (TEST-NET-3)",
    ),
    ([224, 0, 0, 0], 4, "224.0.0.0/4", "multicast"),
    (
        [255, 255, 255, 255],
        32,
        "255.255.255.255/32",
        "limited broadcast",
    ),
    ([240, 0, 0, 0], 4, "240.0.0.0/4", "reserved"),
];

/// Globally reachable exceptions inside [`V4_SPECIAL`] ranges (PCP and TURN anycast).
const V4_GLOBAL_EXCEPTIONS: &[[u8; 4]] = &[[192, 0, 0, 9], [192, 0, 0, 10]];

/// An IPv6 range: network address (segments), prefix length, what it is.
type V6 = ([u16; 8], u8, &'static str, &'static str);

/// IPv6 ranges that are not globally reachable (IANA IPv6 Special-Purpose Address Registry,
/// plus the deprecated site-local fec0::/10 and multicast ff00::/8). The forms carrying an
/// IPv4 address are handled in [`special_v6`] before this table.
const V6_SPECIAL: &[V6] = &[
    (
        [0, 0, 0, 0, 0, 0, 0, 0],
        128,
        "::/128",
        "unspecified address",
    ),
    ([0, 0, 0, 0, 0, 0, 0, 1], 128, "::1/128", "loopback"),
    (
        [0x64, 0xff9b, 1, 0, 0, 0, 0, 0],
        48,
        "64:ff9b:1::/48",
        "local-use IPv4/IPv6 translation",
    ),
    ([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "100::/64", "discard-only"),
    (
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        32,
        "2001::/32",
        "Teredo tunnelling",
    ),
    (
        [0x2001, 2, 0, 0, 0, 0, 0, 0],
        48,
        "2001:2::/48",
        "benchmarking",
    ),
    (
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
        32,
        "2001:db8::/32",
        "documentation",
    ),
    (
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        23,
        "2001::/23",
        "IETF protocol assignments",
    ),
    (
        [0x3fff, 0, 0, 0, 0, 0, 0, 0],
        20,
        "3fff::/20",
        "documentation",
    ),
    (
        [0x5f00, 0, 0, 0, 0, 0, 0, 0],
        16,
        "5f00::/16",
        "segment routing (SRv6) identifiers",
    ),
    (
        [0xfc00, 0, 0, 0, 0, 0, 0, 0],
        7,
        "fc00::/7",
        "unique-local (private network)",
    ),
    ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "fe80::/10", "link-local"),
    (
        [0xfec0, 0, 0, 0, 0, 0, 0, 0],
        10,
        "fec0::/10",
        "site-local (deprecated)",
    ),
    ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "ff00::/8", "multicast"),
];

/// Globally reachable exceptions inside 2001::/23 (registry: PCP and TURN anycast, AMT,
/// AS112, ORCHIDv2, drone remote ID).
const V6_GLOBAL_EXCEPTIONS: &[([u16; 8], u8)] = &[
    ([0x2001, 1, 0, 0, 0, 0, 0, 1], 128),
    ([0x2001, 1, 0, 0, 0, 0, 0, 2], 128),
    ([0x2001, 3, 0, 0, 0, 0, 0, 0], 32),
    ([0x2001, 4, 0x112, 0, 0, 0, 0, 0], 48),
    ([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28),
    ([0x2001, 0x30, 0, 0, 0, 0, 0, 0], 28),
];

/// The special-purpose range `ip` is in, or `None` for a globally reachable address.
pub fn special_purpose(ip: IpAddr) -> Option<SpecialRange> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<SpecialRange> {
    if V4_GLOBAL_EXCEPTIONS.contains(&ip.octets()) {
        return None;
    }
    let bits = ip.to_bits();
    V4_SPECIAL
        .iter()
        .find(|(net, len, _, _)| in_prefix_v4(bits, Ipv4Addr::from(*net).to_bits(), *len))
        .map(|&(_, _, prefix, name)| SpecialRange { prefix, name })
}

fn special_v6(ip: Ipv6Addr) -> Option<SpecialRange> {
    let bits = ip.to_bits();
    let seg = ip.segments();
    // IPv4-mapped (::ffff:0:0/96): never globally reachable as an IPv6 destination, and a
    // dual-stack socket would reach the embedded IPv4 address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(special_v4(v4).unwrap_or(SpecialRange {
            prefix: "::ffff:0:0/96",
            name: "IPv4-mapped address",
        }));
    }
    // IPv4-compatible (::/96, deprecated), including :: and ::1.
    if seg[..6] == [0; 6] {
        return Some(
            V6_SPECIAL
                .iter()
                .find(|(net, len, _, _)| in_prefix_v6(bits, Ipv6Addr::from(*net).to_bits(), *len))
                .map_or(
                    SpecialRange {
                        prefix: "::/96",
                        name: "IPv4-compatible address (deprecated)",
                    },
                    |&(_, _, prefix, name)| SpecialRange { prefix, name },
                ),
        );
    }
    // NAT64 well-known prefix (64:ff9b::/96) and 6to4 (2002::/16) reach the embedded IPv4
    // address: they are as reachable as it is.
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return special_v4(embedded_v4(seg[6], seg[7]));
    }
    if seg[0] == 0x2002 {
        return special_v4(embedded_v4(seg[1], seg[2]));
    }
    if V6_GLOBAL_EXCEPTIONS
        .iter()
        .any(|(net, len)| in_prefix_v6(bits, Ipv6Addr::from(*net).to_bits(), *len))
    {
        return None;
    }
    V6_SPECIAL
        .iter()
        .find(|(net, len, _, _)| in_prefix_v6(bits, Ipv6Addr::from(*net).to_bits(), *len))
        .map(|&(_, _, prefix, name)| SpecialRange { prefix, name })
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// Whether `addr` is in `net`/`len` (IPv4).
fn in_prefix_v4(addr: u32, net: u32, len: u8) -> bool {
    let mask = u32::MAX
        .checked_shl(32u32.saturating_sub(u32::from(len)))
        .unwrap_or(0);
    addr & mask == net & mask
}

/// Whether `addr` is in `net`/`len` (IPv6).
fn in_prefix_v6(addr: u128, net: u128, len: u8) -> bool {
    let mask = u128::MAX
        .checked_shl(128u32.saturating_sub(u32::from(len)))
        .unwrap_or(0);
    addr & mask == net & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn special(ip: &str) -> Option<&'static str> {
        special_purpose(ip.parse().expect("an address")).map(|r| r.prefix)
    }

    #[track_caller]
    fn blocked(ip: &str, prefix: &str) {
        assert_eq!(special(ip), Some(prefix), "{ip}");
        let ip: IpAddr = ip.parse().expect("an address");
        assert!(!OutboundPolicy::PublicOnly.permits(ip));
        assert!(OutboundPolicy::AllowPrivate.permits(ip));
    }

    #[track_caller]
    fn global(ip: &str) {
        assert_eq!(special(ip), None, "{ip}");
        assert!(OutboundPolicy::PublicOnly.permits(ip.parse().expect("an address")));
    }

    #[test]
    fn the_default_allows_public_addresses_only() {
        assert_eq!(OutboundPolicy::default(), OutboundPolicy::PublicOnly);
        assert_eq!(
            OutboundPolicy::allow_private(true),
            OutboundPolicy::AllowPrivate
        );
        assert_eq!(
            OutboundPolicy::allow_private(false),
            OutboundPolicy::PublicOnly
        );
    }

    #[test]
    fn public_addresses_are_global() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.1",
            "169.253.255.255",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.3.1",
            "192.167.255.255",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450:4001::1",
            "2001:4860:4860::8888",
            "2c0f:fb50:4000::1",
        ] {
            global(ip);
        }
    }

    #[test]
    fn this_network() {
        blocked("0.0.0.0", "0.0.0.0/8");
        blocked("0.255.255.255", "0.0.0.0/8");
    }

    #[test]
    fn private_networks() {
        blocked("10.0.0.5", "10.0.0.0/8");
        blocked("10.255.255.255", "10.0.0.0/8");
        blocked("172.16.0.1", "172.16.0.0/12");
        blocked("172.31.255.255", "172.16.0.0/12");
        blocked("192.168.1.1", "192.168.0.0/16");
    }

    #[test]
    fn shared_address_space_cgnat() {
        blocked("100.64.0.1", "100.64.0.0/10");
        blocked("100.127.255.255", "100.64.0.0/10");
    }

    #[test]
    fn loopback() {
        blocked("127.0.0.1", "127.0.0.0/8");
        blocked("127.255.0.9", "127.0.0.0/8");
        blocked("::1", "::1/128");
    }

    #[test]
    fn link_local() {
        blocked("169.254.169.254", "169.254.0.0/16");
        blocked("fe80::1", "fe80::/10");
        blocked("febf:ffff::1", "fe80::/10");
    }

    #[test]
    fn ietf_protocol_assignments() {
        blocked("192.0.0.1", "192.0.0.0/24");
        blocked("192.0.0.170", "192.0.0.0/24");
        // the PCP and TURN anycast addresses are globally reachable
        global("192.0.0.9");
        global("192.0.0.10");
        blocked("2001:1::3", "2001::/23");
        blocked("2001:100::1", "2001::/23");
        global("2001:1::1");
        global("2001:1::2");
        global("2001:3::1");
        global("2001:4:112::1");
        global("2001:20::1");
        global("2001:30::1");
        global("2001:200::1");
    }

    #[test]
    fn documentation() {
        blocked("192.0.2.10", "192.0.2.0/24");
        blocked("198.51.100.1", "198.51.100.0/24");
        blocked("203.0.113.7", "203.0.113.0/24");
        blocked("2001:db8::1", "2001:db8::/32");
        blocked("3fff:fff::1", "3fff::/20");
    }

    #[test]
    fn benchmarking() {
        blocked("198.18.0.1", "198.18.0.0/15");
        blocked("198.19.255.255", "198.18.0.0/15");
        blocked("2001:2::1", "2001:2::/48");
    }

    #[test]
    fn multicast() {
        blocked("224.0.0.1", "224.0.0.0/4");
        blocked("239.255.255.250", "224.0.0.0/4");
        blocked("ff02::1", "ff00::/8");
        // global-scope multicast is still not a place to open a connection to
        blocked("ff0e::1", "ff00::/8");
    }

    #[test]
    fn reserved_and_broadcast() {
        blocked("240.0.0.1", "240.0.0.0/4");
        blocked("254.255.255.255", "240.0.0.0/4");
        blocked("255.255.255.255", "255.255.255.255/32");
    }

    #[test]
    fn unique_local_and_site_local() {
        blocked("fc00::1", "fc00::/7");
        blocked("fd12:3456::5", "fc00::/7");
        blocked("fec0::1", "fec0::/10");
    }

    #[test]
    fn unspecified_and_ipv4_compatible() {
        blocked("::", "::/128");
        blocked("::8.8.8.8", "::/96");
    }

    #[test]
    fn ipv4_mapped_addresses_are_judged_by_their_ipv4_address_and_never_global() {
        blocked("::ffff:10.0.0.5", "10.0.0.0/8");
        blocked("::ffff:127.0.0.1", "127.0.0.0/8");
        blocked("::ffff:8.8.8.8", "::ffff:0:0/96");
    }

    #[test]
    fn nat64_is_as_reachable_as_its_ipv4_address() {
        blocked("64:ff9b::10.0.0.5", "10.0.0.0/8");
        blocked("64:ff9b::169.254.169.254", "169.254.0.0/16");
        global("64:ff9b::8.8.8.8");
        blocked("64:ff9b:1::1", "64:ff9b:1::/48");
    }

    #[test]
    fn six_to_four_is_as_reachable_as_its_ipv4_address() {
        blocked("2002:0a00:0005::1", "10.0.0.0/8");
        blocked("2002:7f00:0001::1", "127.0.0.0/8");
        global("2002:0808:0808::1");
        blocked("192.88.99.1", "192.88.99.0/24");
    }

    #[test]
    fn teredo() {
        blocked("2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::/32");
    }

    #[test]
    fn discard_only_and_srv6() {
        blocked("100::1", "100::/64");
        global("100:0:0:1::1");
        blocked("5f00::1", "5f00::/16");
    }

    #[test]
    fn ranges_read_as_their_name() {
        let r = special_purpose("10.0.0.5".parse().expect("ip")).expect("special");
        assert_eq!(r.to_string(), "private network, 10.0.0.0/8");
    }
}
