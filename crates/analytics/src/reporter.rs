//! Reporter keys: one stable key per reporting organisation.
//!
//! The same provider names itself differently in DMARC and TLS reports (`google.com` in DMARC,
//! `Google Inc.` in TLS-RPT; `Outlook.com` / `Microsoft Corporation`; `Mail.Ru` /
//! `corp.mail.ru`). [`reporter_key`] maps both to one key so the two report families can be
//! joined by organisation:
//!
//! 1. trim, lower-case; an e-mail address or URL is reduced to its host;
//! 2. a table of known large providers maps any of their organisation names or domains (a
//!    name *containing* one of the listed words or domains) to a fixed key (`google`,
//!    `microsoft`, `yahoo`, `mail.ru`, `apple`, …);
//! 3. otherwise corporate suffixes (`inc`, `llc`, `ltd`, `pty`, `corporation`, `gmbh`,
//!    `a.s.`, …) and punctuation are dropped; if what remains looks like a domain, the key is
//!    its registrable label (`comcast.net` → `comcast`, `mx.example.co.uk` → `example`);
//!    otherwise the words joined by `-` (`Fastmail Pty Ltd` → `fastmail`).
//!
//! The key is only ever used for grouping; findings also carry the names as written.

/// Known providers: key, then the substrings (of the lower-cased name or host) that identify it.
/// Checked in order; the first match wins.
const KNOWN: &[(&str, &[&str])] = &[
    ("google", &["google", "gmail", "googlemail"]),
    (
        "microsoft",
        &["microsoft", "outlook", "hotmail", "live.com", "msn.com"],
    ),
    ("yahoo", &["yahoo", "aol", "verizon media"]),
    ("mail.ru", &["mail.ru", "mail.ua", "vk.com"]),
    ("yandex", &["yandex"]),
    ("apple", &["icloud", "apple"]),
    ("fastmail", &["fastmail", "messagingengine"]),
    ("gmx", &["gmx"]),
    ("web.de", &["web.de"]),
    ("amazon", &["amazon", "amazonses"]),
    ("mimecast", &["mimecast"]),
    ("proofpoint", &["proofpoint", "pphosted"]),
    ("comcast", &["comcast"]),
    ("seznam", &["seznam"]),
    ("zoho", &["zoho"]),
    ("protonmail", &["proton"]),
    ("t-online", &["t-online", "telekom"]),
    ("orange", &["orange.fr", "wanadoo"]),
    ("qq", &["qq.com", "tencent"]),
    ("netease", &["163.com", "126.com", "netease"]),
];

const SUFFIXES: &[&str] = &[
    "inc",
    "inc.",
    "llc",
    "ltd",
    "ltd.",
    "limited",
    "pty",
    "corp",
    "corp.",
    "corporation",
    "gmbh",
    "ag",
    "a.s.",
    "a.s",
    "s.a.",
    "sa",
    "s.r.o.",
    "bv",
    "b.v.",
    "plc",
    "co.",
    "company",
    "srl",
    "sas",
    "ab",
    "oy",
    "as",
];

/// Second-level labels that are part of a public suffix (`co.uk`, `com.au`, …).
const SECOND_LEVEL: &[&str] = &["co", "com", "net", "org", "ac", "gov", "edu", "ne", "or"];

/// The grouping key of a reporter organisation name or domain. See the module docs.
pub fn reporter_key(name: &str) -> String {
    let mut s = name.trim().to_ascii_lowercase();
    if let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    {
        s = rest.split('/').next().unwrap_or(rest).to_owned();
    }
    if let Some((_, host)) = s.rsplit_once('@') {
        s = host.trim_end_matches('>').to_owned();
    }
    let words: Vec<&str> = s
        .split(|c: char| c.is_whitespace() || c == ',' || c == '!')
        .filter(|w| !w.is_empty())
        .collect();
    let tokens: Vec<&str> = s
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
        .filter(|w| !w.is_empty())
        .collect();
    let matches = |needle: &str| {
        if needle.contains(' ') {
            s.contains(needle)
        } else if needle.contains('.') {
            words.iter().any(|w| {
                let w = w.trim_matches('.');
                w == needle || w.ends_with(&format!(".{needle}"))
            })
        } else {
            tokens.contains(&needle)
        }
    };
    for (key, needles) in KNOWN {
        if needles.iter().any(|n| matches(n)) {
            return (*key).to_owned();
        }
    }
    let words: Vec<&str> = words
        .into_iter()
        .filter(|w| !SUFFIXES.contains(w))
        .collect();
    if words.len() == 1 && words[0].contains('.') {
        let labels: Vec<&str> = words[0]
            .trim_matches('.')
            .split('.')
            .filter(|l| !l.is_empty())
            .collect();
        if labels.len() >= 2 {
            let n = labels.len();
            let idx = if n >= 3 && SECOND_LEVEL.contains(&labels[n - 2]) {
                n - 3
            } else {
                n - 2
            };
            return clean(labels[idx]);
        }
    }
    let joined: Vec<String> = words
        .iter()
        .map(|w| clean(w))
        .filter(|w| !w.is_empty())
        .collect();
    if joined.is_empty() {
        clean(&s)
    } else {
        joined.join("-")
    }
}

fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .collect::<String>()
        .trim_matches(|c| c == '.' || c == '-')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_providers_join_across_report_families() {
        assert_eq!(reporter_key("google.com"), "google");
        assert_eq!(reporter_key("Google Inc."), "google");
        assert_eq!(reporter_key("Outlook.com"), "microsoft");
        assert_eq!(reporter_key("Microsoft Corporation"), "microsoft");
        assert_eq!(reporter_key("Enterprise Outlook"), "microsoft");
        assert_eq!(reporter_key("Yahoo"), "yahoo");
        assert_eq!(reporter_key("Mail.Ru"), "mail.ru");
        assert_eq!(reporter_key("tls_support@corp.mail.ru"), "mail.ru");
        assert_eq!(reporter_key("Amazon SES"), "amazon");
    }

    #[test]
    fn generic_names() {
        assert_eq!(reporter_key("Fastmail Pty Ltd"), "fastmail");
        assert_eq!(reporter_key("comcast.net"), "comcast");
        assert_eq!(reporter_key("Seznam.cz a.s."), "seznam");
        assert_eq!(reporter_key("mx.example.co.uk"), "example");
        assert_eq!(reporter_key("Acme Mail GmbH"), "acme-mail");
        assert_eq!(reporter_key("https://reports.example.org/tls"), "example");
        assert_eq!(reporter_key("  "), "");
        assert_eq!(reporter_key("olive.com"), "olive");
        assert_eq!(reporter_key("Yahoo! Inc."), "yahoo");
        assert_eq!(reporter_key("noreply-dmarc-support@google.com"), "google");
    }
}
