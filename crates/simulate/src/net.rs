//! Address blocks that sending sources draw their IP addresses from.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::rng::SimRng;

/// An IPv4 or IPv6 network in CIDR form. Built with `const` constructors so catalogues
/// can be `static`; a prefix longer than the address is treated as a single host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cidr {
    /// An IPv4 network: first address and prefix length.
    V4 { base: u32, prefix: u8 },
    /// An IPv6 network: first address and prefix length.
    V6 { base: u128, prefix: u8 },
}

impl Cidr {
    /// An IPv4 network, e.g. `Cidr::v4([209, 85, 128, 0], 17)`.
    pub const fn v4(octets: [u8; 4], prefix: u8) -> Self {
        let prefix = if prefix > 32 { 32 } else { prefix };
        let base = u32::from_be_bytes(octets);
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        Cidr::V4 {
            base: base & mask,
            prefix,
        }
    }

    /// An IPv6 network from its eight 16-bit groups, e.g.
    /// `Cidr::v6([0x2a00, 0x1450, 0x4000, 0, 0, 0, 0, 0], 37)`.
    pub const fn v6(segments: [u16; 8], prefix: u8) -> Self {
        let prefix = if prefix > 128 { 128 } else { prefix };
        let mut base: u128 = 0;
        let mut i = 0;
        while i < 8 {
            base = (base << 16) | segments[i] as u128;
            i += 1;
        }
        let mask = if prefix == 0 {
            0
        } else {
            u128::MAX << (128 - prefix)
        };
        Cidr::V6 {
            base: base & mask,
            prefix,
        }
    }

    /// Number of host bits.
    fn host_bits(&self) -> u32 {
        match *self {
            Cidr::V4 { prefix, .. } => 32 - u32::from(prefix),
            Cidr::V6 { prefix, .. } => 128 - u32::from(prefix),
        }
    }

    /// The `n`th address of the network (wrapping around its size). For IPv4 networks
    /// larger than a `/31`, the network and broadcast addresses are skipped.
    pub fn nth(&self, n: u128) -> IpAddr {
        let bits = self.host_bits();
        match *self {
            Cidr::V4 { base, .. } => {
                let size = 1u64 << bits;
                let offset = if size > 2 {
                    1 + (n % u128::from(size - 2)) as u64
                } else {
                    (n % u128::from(size)) as u64
                };
                IpAddr::V4(Ipv4Addr::from(base.wrapping_add(offset as u32)))
            }
            Cidr::V6 { base, .. } => {
                let offset = if bits >= 128 {
                    n
                } else {
                    let size = 1u128 << bits;
                    if size > 2 {
                        1 + n % (size - 1)
                    } else {
                        n % size
                    }
                };
                IpAddr::V6(Ipv6Addr::from(base.wrapping_add(offset)))
            }
        }
    }

    /// A uniformly chosen address of the network.
    pub fn random(&self, rng: &mut SimRng) -> IpAddr {
        let n = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
        self.nth(n)
    }

    /// True when `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (*self, ip) {
            (Cidr::V4 { base, prefix }, IpAddr::V4(a)) => {
                let mask = if prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - prefix)
                };
                u32::from(a) & mask == base
            }
            (Cidr::V6 { base, prefix }, IpAddr::V6(a)) => {
                let mask = if prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - prefix)
                };
                u128::from(a) & mask == base
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Cidr::V4 { base, prefix } => write!(f, "{}/{prefix}", Ipv4Addr::from(base)),
            Cidr::V6 { base, prefix } => write!(f, "{}/{prefix}", Ipv6Addr::from(base)),
        }
    }
}

/// Why a network in CIDR notation could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a network (expected ADDRESS/PREFIX, e.g. 203.0.113.0/24)")]
pub struct CidrError(pub String);

impl FromStr for Cidr {
    type Err = CidrError;

    /// Reads `203.0.113.0/24`, `2001:db8::/32`, or a bare address (a single host). Host
    /// bits are cleared.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || CidrError(s.to_owned());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| err())?)),
            None => (s, None),
        };
        match addr.parse::<IpAddr>().map_err(|_| err())? {
            IpAddr::V4(a) => {
                let prefix = prefix.unwrap_or(32);
                if prefix > 32 {
                    return Err(err());
                }
                Ok(Cidr::v4(a.octets(), prefix))
            }
            IpAddr::V6(a) => {
                let prefix = prefix.unwrap_or(128);
                if prefix > 128 {
                    return Err(err());
                }
                Ok(Cidr::v6(a.segments(), prefix))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_addresses_stay_inside() {
        let nets = [
            Cidr::v4([209, 85, 128, 0], 17),
            Cidr::v4([66, 111, 4, 0], 24),
            Cidr::v4([10, 0, 0, 7], 32),
            Cidr::v6([0x2a00, 0x1450, 0x4000, 0, 0, 0, 0, 0], 37),
        ];
        let mut rng = SimRng::new(11);
        for net in nets {
            for _ in 0..500 {
                let ip = net.random(&mut rng);
                assert!(net.contains(ip), "{ip} not in {net}");
            }
        }
    }

    #[test]
    fn networks_print_canonically() {
        assert_eq!(
            Cidr::v4([209, 85, 200, 1], 17).to_string(),
            "209.85.128.0/17"
        );
        assert_eq!(
            Cidr::v6([0x2a01, 0x111, 0xf400, 0, 0, 0, 0, 0], 48).to_string(),
            "2a01:111:f400::/48"
        );
    }

    #[test]
    fn networks_parse() {
        assert_eq!(
            "203.0.113.7/24".parse::<Cidr>(),
            Ok(Cidr::v4([203, 0, 113, 0], 24))
        );
        assert_eq!(
            "2a01:111:f400::/48".parse::<Cidr>().map(|c| c.to_string()),
            Ok("2a01:111:f400::/48".to_owned())
        );
        assert_eq!(
            "192.0.2.1".parse::<Cidr>(),
            Ok(Cidr::v4([192, 0, 2, 1], 32))
        );
        for bad in ["", "203.0.113.0/33", "203.0.113/24", "x/8", "10.0.0.0/"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ipv4_skips_network_and_broadcast() {
        let net = Cidr::v4([192, 0, 2, 0], 30);
        let all: Vec<String> = (0..4).map(|n| net.nth(n).to_string()).collect();
        assert_eq!(all, ["192.0.2.1", "192.0.2.2", "192.0.2.1", "192.0.2.2"]);
    }
}
