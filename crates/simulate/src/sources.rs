//! Who sends mail as a monitored domain: legitimate sending services, forwarders that
//! relay it, and spoofers that forge it.

use crate::net::Cidr;
use crate::rng::SimRng;

/// Where a service's bounces go (the SMTP `MAIL FROM` domain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeStyle {
    /// The customer's own domain (SPF aligned).
    OwnDomain,
    /// A subdomain of the customer's domain, from a pattern such as `em####` (aligned
    /// under relaxed SPF alignment).
    OwnSubdomain(&'static str),
    /// A domain of the service itself, from a pattern (not aligned).
    Service(&'static str),
}

/// Who a DKIM signature is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// The customer's domain, with a selector pattern.
    Own(&'static str),
    /// A service domain and selector (not aligned).
    Service(&'static str, &'static str),
}

/// A legitimate sending service a domain may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendingService {
    /// Stable short identifier.
    pub key: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Networks its MTAs send from.
    pub ranges: &'static [Cidr],
    /// Its `MAIL FROM` domain.
    pub envelope: EnvelopeStyle,
    /// The DKIM signatures it adds, in order.
    pub signers: &'static [Signer],
    /// Chance (per cent) that a message's own-domain signature fails (broken setups,
    /// body modifications).
    pub dkim_fail_percent: u8,
    /// Typical share of marketing mail sent from a subdomain (`news.`, `mail.`).
    pub subdomain_percent: u8,
}

/// Legitimate sending services, in a fixed order.
pub static SERVICES: [SendingService; 11] = [
    SendingService {
        key: "google-workspace",
        name: "Google Workspace",
        ranges: &[
            Cidr::v4([209, 85, 128, 0], 17),
            Cidr::v4([74, 125, 0, 0], 16),
            Cidr::v6([0x2a00, 0x1450, 0x4000, 0, 0, 0, 0, 0], 37),
        ],
        envelope: EnvelopeStyle::OwnDomain,
        signers: &[Signer::Own("google")],
        dkim_fail_percent: 1,
        subdomain_percent: 0,
    },
    SendingService {
        key: "microsoft-365",
        name: "Microsoft 365",
        ranges: &[
            Cidr::v4([40, 107, 0, 0], 16),
            Cidr::v4([52, 100, 0, 0], 14),
            Cidr::v4([104, 47, 0, 0], 17),
            Cidr::v6([0x2a01, 0x111, 0xf403, 0, 0, 0, 0, 0], 48),
        ],
        envelope: EnvelopeStyle::OwnDomain,
        signers: &[Signer::Own("selector1")],
        dkim_fail_percent: 2,
        subdomain_percent: 0,
    },
    SendingService {
        key: "amazon-ses",
        name: "Amazon SES",
        ranges: &[
            Cidr::v4([54, 240, 0, 0], 18),
            Cidr::v4([23, 249, 208, 0], 20),
            Cidr::v4([69, 169, 224, 0], 20),
        ],
        envelope: EnvelopeStyle::Service("us-east-1.amazonses.com"),
        signers: &[
            Signer::Own("********************************"),
            Signer::Service("amazonses.com", "6gbrjpgwjskckoa6a5zn6fwqkn67xbtw"),
        ],
        dkim_fail_percent: 1,
        subdomain_percent: 20,
    },
    SendingService {
        key: "sendgrid",
        name: "SendGrid",
        ranges: &[
            Cidr::v4([167, 89, 0, 0], 17),
            Cidr::v4([149, 72, 0, 0], 16),
            Cidr::v4([198, 37, 144, 0], 20),
        ],
        envelope: EnvelopeStyle::OwnSubdomain("em####"),
        signers: &[
            Signer::Own("s1"),
            Signer::Service("sendgrid.info", "smtpapi"),
        ],
        dkim_fail_percent: 2,
        subdomain_percent: 30,
    },
    SendingService {
        key: "mailchimp",
        name: "Mailchimp",
        ranges: &[
            Cidr::v4([198, 2, 128, 0], 18),
            Cidr::v4([205, 201, 128, 0], 20),
        ],
        envelope: EnvelopeStyle::Service("mail##.atl###.mcdlv.net"),
        signers: &[Signer::Own("k#"), Signer::Service("mcdlv.net", "k1")],
        dkim_fail_percent: 1,
        subdomain_percent: 50,
    },
    SendingService {
        key: "mailgun",
        name: "Mailgun",
        ranges: &[
            Cidr::v4([159, 135, 224, 0], 20),
            Cidr::v4([69, 72, 32, 0], 20),
        ],
        envelope: EnvelopeStyle::OwnSubdomain("mg"),
        signers: &[Signer::Own("mx"), Signer::Service("mailgun.org", "mg")],
        dkim_fail_percent: 2,
        subdomain_percent: 20,
    },
    SendingService {
        key: "salesforce",
        name: "Salesforce",
        ranges: &[
            Cidr::v4([13, 110, 208, 0], 21),
            Cidr::v4([13, 110, 216, 0], 22),
        ],
        envelope: EnvelopeStyle::Service("bnc#.mail.salesforce.com"),
        signers: &[Signer::Own("sf#")],
        dkim_fail_percent: 3,
        subdomain_percent: 0,
    },
    SendingService {
        key: "zendesk",
        name: "Zendesk",
        ranges: &[
            Cidr::v4([192, 161, 144, 0], 20),
            Cidr::v4([216, 198, 0, 0], 18),
        ],
        envelope: EnvelopeStyle::Service("zendesk.com"),
        signers: &[Signer::Own("zendesk1")],
        dkim_fail_percent: 2,
        subdomain_percent: 0,
    },
    SendingService {
        key: "hubspot",
        name: "HubSpot",
        ranges: &[
            Cidr::v4([158, 247, 16, 0], 20),
            Cidr::v4([3, 93, 157, 0], 24),
        ],
        envelope: EnvelopeStyle::Service("#######.hubspotemail.net"),
        signers: &[
            Signer::Own("hs#"),
            Signer::Service("hubspotemail.net", "hs1"),
        ],
        dkim_fail_percent: 1,
        subdomain_percent: 60,
    },
    SendingService {
        key: "zoho-mail",
        name: "Zoho Mail",
        ranges: &[
            Cidr::v4([136, 143, 188, 0], 24),
            Cidr::v4([204, 141, 32, 0], 23),
        ],
        envelope: EnvelopeStyle::OwnDomain,
        signers: &[Signer::Own("zmail")],
        dkim_fail_percent: 2,
        subdomain_percent: 0,
    },
    SendingService {
        key: "own-server",
        name: "own mail server",
        ranges: &[
            Cidr::v4([78, 46, 0, 0], 15),
            Cidr::v4([51, 68, 0, 0], 16),
            Cidr::v6([0x2a01, 0x4f8, 0, 0, 0, 0, 0, 0], 32),
        ],
        envelope: EnvelopeStyle::OwnDomain,
        signers: &[Signer::Own("mail")],
        dkim_fail_percent: 8,
        subdomain_percent: 0,
    },
];

/// Networks of forwarders and mailing lists that relay a domain's mail (SPF breaks,
/// DKIM usually survives).
pub static FORWARDERS: &[Cidr] = &[
    Cidr::v4([209, 85, 128, 0], 17),
    Cidr::v4([40, 92, 0, 0], 15),
    Cidr::v4([140, 211, 0, 0], 16),
    Cidr::v4([128, 100, 0, 0], 16),
    Cidr::v4([131, 111, 8, 0], 24),
    Cidr::v4([37, 97, 0, 0], 16),
    Cidr::v4([66, 111, 4, 0], 24),
];

/// Networks spoofed mail comes from.
pub static SPOOFERS: &[Cidr] = &[
    Cidr::v4([185, 0, 0, 0], 8),
    Cidr::v4([45, 0, 0, 0], 8),
    Cidr::v4([103, 0, 0, 0], 8),
    Cidr::v4([177, 0, 0, 0], 8),
    Cidr::v4([91, 0, 0, 0], 8),
    Cidr::v4([194, 0, 0, 0], 8),
    Cidr::v6([0x2a0e, 0, 0, 0, 0, 0, 0, 0], 16),
];

/// Fills a pattern: `#` becomes a decimal digit, `*` a lower-case letter or digit.
pub fn fill_pattern(pattern: &str, rng: &mut SimRng) -> String {
    pattern
        .chars()
        .map(|c| match c {
            '#' => char::from(b'0' + rng.below(10) as u8),
            '*' => rng.alnum(1).chars().next().unwrap_or('x'),
            c => c,
        })
        .collect()
}

/// The organisational domain under a simple public-suffix rule (two labels, three for
/// `co.uk`-style suffixes).
pub fn org_domain(domain: &str) -> &str {
    const TWO_LABEL_SUFFIXES: &[&str] = &[".co.uk", ".com.au", ".co.jp", ".com.br", ".co.nz"];
    let labels = if TWO_LABEL_SUFFIXES.iter().any(|s| domain.ends_with(s)) {
        3
    } else {
        2
    };
    let mut dots = domain.rmatch_indices('.').skip(labels - 1);
    match dots.next() {
        Some((i, _)) => &domain[i + 1..],
        None => domain,
    }
}

/// DMARC identifier alignment of `a` with `b`.
pub fn aligned(a: &str, b: &str, strict: bool) -> bool {
    if strict {
        a.eq_ignore_ascii_case(b)
    } else {
        org_domain(a).eq_ignore_ascii_case(org_domain(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_domains_and_alignment() {
        assert_eq!(org_domain("news.example.com"), "example.com");
        assert_eq!(org_domain("example.com"), "example.com");
        assert_eq!(org_domain("a.b.example.co.uk"), "example.co.uk");
        assert_eq!(org_domain("localhost"), "localhost");
        assert!(aligned("em1234.example.com", "example.com", false));
        assert!(!aligned("em1234.example.com", "example.com", true));
        assert!(!aligned("sendgrid.net", "example.com", false));
    }

    #[test]
    fn patterns_fill() {
        let mut rng = SimRng::new(2);
        let s = fill_pattern("em####", &mut rng);
        assert!(s.starts_with("em") && s.len() == 6);
        assert!(s[2..].bytes().all(|b| b.is_ascii_digit()));
        let s = fill_pattern("**", &mut rng);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn service_keys_are_unique() {
        let mut keys: Vec<&str> = SERVICES.iter().map(|s| s.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), SERVICES.len());
    }
}
