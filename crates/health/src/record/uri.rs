//! Report destination URIs as DMARC (`rua=`, `ruf=`) and TLS-RPT (`rua=`) publish them.

use serde::Serialize;

/// One destination of a `rua=`/`ruf=` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportUri {
    /// As written in the record.
    pub raw: String,
    /// What it is.
    pub kind: UriKind,
}

/// The kinds of destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "scheme", rename_all = "kebab-case")]
pub enum UriKind {
    /// `mailto:local@domain` (address lower-cased, DMARC `!size` suffix dropped).
    Mailto { address: String, domain: String },
    /// `https://...` (TLS-RPT only).
    Https { url: String },
    /// Anything else, or a malformed mailto/https URI; `reason` says what is wrong.
    Invalid { reason: String },
}

impl ReportUri {
    /// Parses one URI. Never fails: a bad URI becomes [`UriKind::Invalid`].
    pub fn parse(raw: &str) -> Self {
        let raw = raw.trim();
        let kind = parse_kind(raw);
        Self {
            raw: raw.to_owned(),
            kind,
        }
    }

    /// The mail address of a `mailto:` URI.
    pub fn address(&self) -> Option<&str> {
        match &self.kind {
            UriKind::Mailto { address, .. } => Some(address),
            _ => None,
        }
    }

    /// The domain of a `mailto:` URI.
    pub fn mail_domain(&self) -> Option<&str> {
        match &self.kind {
            UriKind::Mailto { domain, .. } => Some(domain),
            _ => None,
        }
    }
}

fn parse_kind(raw: &str) -> UriKind {
    let lower = raw.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("mailto:") {
        // DMARC allows a size limit suffix: mailto:a@b.example!10m
        let addr = rest.split('!').next().unwrap_or_default().trim();
        let addr = percent_decode(addr);
        match addr.rsplit_once('@') {
            Some((local, domain))
                if !local.is_empty()
                    && !domain.is_empty()
                    && domain.contains('.')
                    && domain
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')) =>
            {
                UriKind::Mailto {
                    address: addr.clone(),
                    domain: domain.trim_end_matches('.').to_owned(),
                }
            }
            _ => UriKind::Invalid {
                reason: format!("{raw:?} is not a valid mailto: address"),
            },
        }
    } else if lower.starts_with("https://") {
        if raw.len() > "https://".len() && !raw.contains(char::is_whitespace) {
            UriKind::Https {
                url: raw.to_owned(),
            }
        } else {
            UriKind::Invalid {
                reason: format!("{raw:?} is not a valid https: URL"),
            }
        }
    } else if raw.is_empty() {
        UriKind::Invalid {
            reason: "empty destination".to_owned(),
        }
    } else {
        UriKind::Invalid {
            reason: format!("{raw:?} is neither a mailto: nor an https: URI"),
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Splits a comma-separated `rua=` value into URIs (empty items skipped).
pub fn parse_list(value: &str) -> Vec<ReportUri> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(ReportUri::parse)
        .collect()
}

/// Normalises one of "our" addresses as given in configuration (`mailto:x@y`, or a bare
/// `x@y`) to the lower-case address.
pub fn normalise_address(configured: &str) -> String {
    let s = configured.trim();
    let s = if s.len() >= 7 && s[..7].eq_ignore_ascii_case("mailto:") {
        &s[7..]
    } else {
        s
    };
    s.split('!').next().unwrap_or_default().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mailto_with_size_and_case() {
        let u = ReportUri::parse("MAILTO:DMARC@Reports.Example.test!10m");
        assert_eq!(u.address(), Some("dmarc@reports.example.test"));
        assert_eq!(u.mail_domain(), Some("reports.example.test"));
    }

    #[test]
    fn flags_bad_uris() {
        assert!(matches!(
            ReportUri::parse("dmarc@example.test").kind,
            UriKind::Invalid { .. }
        ));
        assert!(matches!(
            ReportUri::parse("mailto:nobody").kind,
            UriKind::Invalid { .. }
        ));
        assert!(matches!(
            ReportUri::parse("https://tlsrpt.example.test/v1").kind,
            UriKind::Https { .. }
        ));
    }

    #[test]
    fn lists_and_our_addresses() {
        let l = parse_list("mailto:a@x.test, mailto:b%40c@y.test,,");
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].address(), Some("b@c@y.test"));
        assert_eq!(
            normalise_address("mailto:DMARC@Sealwatch.test"),
            "dmarc@sealwatch.test"
        );
        assert_eq!(normalise_address("x@y.test"), "x@y.test");
    }
}
