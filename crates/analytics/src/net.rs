//! Network grouping of IP addresses: `/24` for IPv4, `/48` for IPv6.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The network of an address as a string (`192.0.2.0/24`, `2001:db8:1::/48`). A value that is
/// not an IP address is returned trimmed and lower-cased, so it still groups with itself.
pub fn network_of(ip: &str) -> String {
    let trimmed = ip.trim();
    match trimmed.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let o = v4.octets();
            format!("{}/24", Ipv4Addr::new(o[0], o[1], o[2], 0))
        }
        Ok(IpAddr::V6(v6)) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return network_of(&v4.to_string());
            }
            let s = v6.segments();
            format!("{}/48", Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
        }
        Err(_) => trimmed.to_ascii_lowercase(),
    }
}

/// The canonical text of an address (`::ffff:192.0.2.1` → `192.0.2.1`, IPv6 compressed);
/// non-addresses are trimmed and lower-cased.
pub fn canonical_ip(ip: &str) -> String {
    let trimmed = ip.trim();
    match trimmed.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => trimmed.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        assert_eq!(network_of("192.0.2.77"), "192.0.2.0/24");
        assert_eq!(network_of(" 2001:db8:1:2::5 "), "2001:db8:1::/48");
        assert_eq!(network_of("::ffff:198.51.100.9"), "198.51.100.0/24");
        assert_eq!(network_of("Not-An-IP"), "not-an-ip");
        assert_eq!(canonical_ip("2001:DB8:0::1"), "2001:db8::1");
    }
}
