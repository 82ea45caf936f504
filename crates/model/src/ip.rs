//! IP addresses as reporters write them.

use std::fmt;
use std::net::IpAddr;

use serde::{Serialize, Serializer};

/// An IP address from a report. Valid addresses are kept parsed (and print in canonical
/// form); an unparsable value is kept verbatim so nothing is lost, and the parser adds a
/// warning.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MaybeIp {
    Valid(IpAddr),
    Invalid(String),
}

impl MaybeIp {
    /// Parses an address, tolerating surrounding spaces, `[brackets]` and an IPv6 zone.
    pub fn parse(raw: &str) -> Self {
        let t = raw.trim();
        let t = t
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(t);
        let t = t.strip_prefix("IPv6:").unwrap_or(t);
        match t.parse::<IpAddr>() {
            Ok(ip) => MaybeIp::Valid(ip),
            Err(_) => match t.split_once('%').map(|(a, _)| a.parse::<IpAddr>()) {
                Some(Ok(ip)) => MaybeIp::Valid(ip),
                _ => MaybeIp::Invalid(t.to_owned()),
            },
        }
    }

    /// The parsed address, if valid.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            MaybeIp::Valid(ip) => Some(*ip),
            MaybeIp::Invalid(_) => None,
        }
    }
}

impl fmt::Display for MaybeIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaybeIp::Valid(ip) => write!(f, "{ip}"),
            MaybeIp::Invalid(raw) => f.write_str(raw),
        }
    }
}

impl Serialize for MaybeIp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_canonicalised_or_kept() {
        assert_eq!(MaybeIp::parse(" 192.0.2.1 ").to_string(), "192.0.2.1");
        assert_eq!(
            MaybeIp::parse("2001:db8:abcd:0012::1").to_string(),
            "2001:db8:abcd:12::1"
        );
        assert_eq!(MaybeIp::parse("[IPv6:::1]").to_string(), "::1");
        assert_eq!(
            MaybeIp::parse("not-an-ip"),
            MaybeIp::Invalid("not-an-ip".into())
        );
    }
}
