//! Who is asking: the client address a request is counted against (failed authentications,
//! intake rate limits, the origin recorded with a posted report).
//!
//! Behind a load balancer every request arrives from the balancer's address, so the real
//! client is read from `X-Forwarded-For` (or, when that header is absent, RFC 7239
//! `Forwarded`), but only when the TCP peer is one of the configured trusted proxies:
//! anybody else could write any address there. Each proxy appends the address it received
//! the request from, so the chain is read from the right: trusted proxies are skipped and
//! the first address that is not one of ours is the client. Entries to the left of it were
//! written by the client itself and are ignored.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use actix_web::http::header::HeaderMap;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// A trusted proxy: one address (`10.0.0.7`) or a network (`10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TrustedProxy(IpNet);

/// Why a trusted-proxy entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or network (for example 10.0.0.7 or 10.0.0.0/8)")]
pub struct BadProxy(String);

impl TrustedProxy {
    /// Whether `ip` is this proxy (or in this network). IPv4-mapped IPv6 addresses count
    /// as their IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&canonical(ip))
    }
}

impl FromStr for TrustedProxy {
    type Err = BadProxy;
    fn from_str(s: &str) -> Result<Self, BadProxy> {
        let s = s.trim();
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(TrustedProxy(net.trunc()));
        }
        s.parse::<IpAddr>()
            .map(|ip| TrustedProxy(IpNet::from(canonical(ip))))
            .map_err(|_| BadProxy(s.to_owned()))
    }
}

impl TryFrom<String> for TrustedProxy {
    type Error = BadProxy;
    fn try_from(s: String) -> Result<Self, BadProxy> {
        s.parse()
    }
}

impl From<TrustedProxy> for String {
    fn from(p: TrustedProxy) -> String {
        p.to_string()
    }
}

impl fmt::Display for TrustedProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host_bits = match self.0 {
            IpNet::V4(_) => 32,
            IpNet::V6(_) => 128,
        };
        if self.0.prefix_len() == host_bits {
            write!(f, "{}", self.0.addr())
        } else {
            write!(f, "{}", self.0)
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Most entries of a forwarding chain looked at; a longer chain is read from its right end.
const MAX_HOPS: usize = 32;

/// One node of a forwarding chain: an address, or something else (`unknown`, an obfuscated
/// identifier, garbage).
fn parse_node(raw: &str) -> Option<IpAddr> {
    let s = raw.trim().trim_matches('"').trim();
    if let Some(rest) = s.strip_prefix('[') {
        // `[2001:db8::1]` or `[2001:db8::1]:4711`
        let (inner, _) = rest.split_once(']')?;
        return inner.parse::<IpAddr>().ok().map(canonical);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    // `192.0.2.1:8080`
    let (host, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The chain of `X-Forwarded-For` (every header line, in order), else of `Forwarded`'s
/// `for=` parameters; `None` when the request carries neither.
fn forwarding_chain(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let xff: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !xff.is_empty() {
        return Some(
            xff.iter()
                .flat_map(|line| line.split(','))
                .map(parse_node)
                .collect(),
        );
    }
    let fwd: Vec<&str> = headers
        .get_all("forwarded")
        .filter_map(|v| v.to_str().ok())
        .collect();
    if fwd.is_empty() {
        return None;
    }
    Some(
        fwd.iter()
            .flat_map(|line| line.split(','))
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, value)| parse_node(value))
            })
            .collect(),
    )
}

/// The client address of a request that came from `peer` with `headers`.
///
/// Without a trusted peer, or without forwarding headers, it is the peer. Otherwise the
/// forwarding chain is walked from the right past every trusted proxy; the first other
/// address is the client. An entry that is not an address stops the walk at the last
/// trusted hop (the proxy that wrote it). A chain made only of trusted proxies yields its
/// left-most entry.
pub fn resolve(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[TrustedProxy],
) -> Option<IpAddr> {
    let peer = peer.map(canonical)?;
    let is_trusted = |ip: IpAddr| trusted.iter().any(|t| t.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let Some(chain) = forwarding_chain(headers) else {
        return Some(peer);
    };
    let mut last_trusted = peer;
    for node in chain.iter().rev().take(MAX_HOPS) {
        match node {
            Some(ip) if is_trusted(*ip) => last_trusted = *ip,
            Some(ip) => return Some(*ip),
            None => return Some(last_trusted),
        }
    }
    Some(last_trusted)
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        map
    }

    fn proxies(list: &[&str]) -> Vec<TrustedProxy> {
        list.iter()
            .map(|s| s.parse().expect("test proxy"))
            .collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.9"),
            ("forwarded", "for=198.51.100.10"),
        ]);
        assert_eq!(
            resolve(Some(ip("203.0.113.5")), &h, &proxies(&["10.0.0.0/8"])),
            Some(ip("203.0.113.5"))
        );
        assert_eq!(
            resolve(Some(ip("203.0.113.5")), &h, &[]),
            Some(ip("203.0.113.5"))
        );
    }

    #[test]
    fn the_right_most_untrusted_entry_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "192.0.2.1"]);
        // The client wrote a fake entry; the balancer appended the real peer; an inner
        // proxy appended the balancer.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.7, 192.0.2.1")]);
        assert_eq!(
            resolve(Some(ip("10.1.2.3")), &h, &trusted),
            Some(ip("198.51.100.7"))
        );
        // Several header lines form one chain.
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "198.51.100.8"),
        ]);
        assert_eq!(
            resolve(Some(ip("10.1.2.3")), &h, &trusted),
            Some(ip("198.51.100.8"))
        );
    }

    #[test]
    fn forwarded_is_read_when_x_forwarded_for_is_absent() {
        let trusted = proxies(&["10.0.0.1"]);
        let h = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=http;by=203.0.113.43, For=\"[2001:db8:cafe::17]:4711\"",
        )]);
        assert_eq!(
            resolve(Some(ip("10.0.0.1")), &h, &trusted),
            Some(ip("2001:db8:cafe::17"))
        );
        let h = headers(&[("forwarded", "for=192.0.2.60:8080")]);
        assert_eq!(
            resolve(Some(ip("10.0.0.1")), &h, &trusted),
            Some(ip("192.0.2.60"))
        );
    }

    #[test]
    fn odd_chains_fall_back_to_a_proxy_not_to_a_client_claim() {
        let trusted = proxies(&["10.0.0.0/8"]);
        // No header: the proxy itself.
        assert_eq!(
            resolve(Some(ip("10.0.0.1")), &HeaderMap::new(), &trusted),
            Some(ip("10.0.0.1"))
        );
        // An unreadable entry stops at the hop that wrote it.
        let h = headers(&[("x-forwarded-for", "198.51.100.1, unknown, 10.0.0.9")]);
        assert_eq!(
            resolve(Some(ip("10.0.0.1")), &h, &trusted),
            Some(ip("10.0.0.9"))
        );
        // Only proxies: the left-most.
        let h = headers(&[("x-forwarded-for", "10.0.0.5, 10.0.0.9")]);
        assert_eq!(
            resolve(Some(ip("10.0.0.1")), &h, &trusted),
            Some(ip("10.0.0.5"))
        );
        // IPv4-mapped peers are their IPv4 address.
        let h = headers(&[("x-forwarded-for", "198.51.100.3")]);
        assert_eq!(
            resolve(Some(ip("::ffff:10.0.0.1")), &h, &trusted),
            Some(ip("198.51.100.3"))
        );
        assert_eq!(resolve(None, &h, &trusted), None);
    }

    #[test]
    fn trusted_proxies_parse_addresses_and_networks() {
        assert_eq!(
            "10.0.0.7".parse::<TrustedProxy>().map(|p| p.to_string()),
            Ok("10.0.0.7".to_owned())
        );
        assert_eq!(
            "10.1.2.3/8".parse::<TrustedProxy>().map(|p| p.to_string()),
            Ok("10.0.0.0/8".to_owned())
        );
        assert!("fd00::/8".parse::<TrustedProxy>().is_ok());
        assert!("proxy.internal".parse::<TrustedProxy>().is_err());
        let json: Vec<TrustedProxy> =
            serde_json::from_str(r#"["10.0.0.0/8", "::1"]"#).expect("deserialises");
        assert!(json[1].contains(ip("::1")));
        assert!(serde_json::from_str::<Vec<TrustedProxy>>(r#"["nope"]"#).is_err());
    }
}
