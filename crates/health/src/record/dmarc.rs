//! DMARC policy records (RFC 7489, with the DMARCbis `np` and `psd` tags).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::tags::{TagList, starts_with_version};
use super::uri::{ReportUri, UriKind, parse_list};

/// `p=`, `sp=` and `np=` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    None,
    Quarantine,
    Reject,
}

impl Policy {
    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Some(Self::None),
            "quarantine" => Some(Self::Quarantine),
            "reject" => Some(Self::Reject),
            _ => None,
        }
    }

    /// The tag value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Quarantine => "quarantine",
            Self::Reject => "reject",
        }
    }

    /// Quarantine or reject.
    pub fn is_enforcing(self) -> bool {
        !matches!(self, Self::None)
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed DMARC record. Invalid tag values are listed in `problems` (each a sentence) and
/// the tag is treated as absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcRecord {
    pub tags: TagList,
    /// `p=`; `None` when missing or invalid (receivers then apply `none`).
    pub policy: Option<Policy>,
    pub subdomain_policy: Option<Policy>,
    pub nonexistent_policy: Option<Policy>,
    /// `pct=` (0–100).
    pub pct: Option<u8>,
    pub rua: Vec<ReportUri>,
    pub ruf: Vec<ReportUri>,
    /// `t=y` (DMARCbis test mode).
    pub testing: bool,
    pub problems: Vec<String>,
}

/// True when a TXT record is a DMARC record (`v=DMARC1` first).
pub fn is_dmarc(txt: &str) -> bool {
    starts_with_version(txt, "v", "DMARC1")
}

impl DmarcRecord {
    /// Parses a record; `Err` when it is not a tag list starting with `v=DMARC1`.
    pub fn parse(txt: &str) -> Result<Self, String> {
        let tags = TagList::parse(txt).map_err(|e| e.to_string())?;
        match tags.first() {
            Some((n, v)) if n.eq_ignore_ascii_case("v") && v == "DMARC1" => {}
            _ => return Err("the record must start with \"v=DMARC1\"".to_owned()),
        }
        let mut problems = Vec::new();
        let mut policy_tag = |name: &str| -> Option<Policy> {
            let v = tags.get(name)?;
            let p = Policy::parse(v);
            if p.is_none() {
                problems.push(format!(
                    "{name}={v} is not a policy (none, quarantine or reject)"
                ));
            }
            p
        };
        let policy = policy_tag("p");
        let subdomain_policy = policy_tag("sp");
        let nonexistent_policy = policy_tag("np");
        if tags.get("p").is_none() {
            problems.push("the required p= tag is missing".to_owned());
        }
        let pct = match tags.get("pct") {
            None => None,
            Some(v) => match v.parse::<u8>() {
                Ok(n) if n <= 100 => Some(n),
                _ => {
                    problems.push(format!("pct={v} is not a number from 0 to 100"));
                    None
                }
            },
        };
        for name in ["adkim", "aspf"] {
            if let Some(v) = tags.get(name)
                && !matches!(v.to_ascii_lowercase().as_str(), "r" | "s")
            {
                problems.push(format!("{name}={v} must be r (relaxed) or s (strict)"));
            }
        }
        let testing = match tags.get("t") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("y") => true,
            Some(v) if v.eq_ignore_ascii_case("n") => false,
            Some(v) => {
                problems.push(format!("t={v} must be y or n"));
                false
            }
        };
        let mut uris = |name: &str| -> Vec<ReportUri> {
            let list = tags.get(name).map(parse_list).unwrap_or_default();
            for u in &list {
                match &u.kind {
                    UriKind::Invalid { reason } => problems.push(format!("{name}: {reason}")),
                    UriKind::Https { .. } => problems.push(format!(
                        "{name}: {} — DMARC reports are only sent to mailto: addresses",
                        u.raw
                    )),
                    UriKind::Mailto { .. } => {}
                }
            }
            list
        };
        let rua = uris("rua");
        let ruf = uris("ruf");
        Ok(Self {
            policy,
            subdomain_policy,
            nonexistent_policy,
            pct,
            rua,
            ruf,
            testing,
            problems,
            tags,
        })
    }

    /// The policy receivers apply to the domain itself (`p=`, `none` when unusable).
    pub fn effective_policy(&self) -> Policy {
        self.policy.unwrap_or(Policy::None)
    }

    /// True when mail failing DMARC is quarantined or rejected for every message (policy
    /// enforcing, `pct` 100, not in test mode) — what BIMI requires.
    pub fn at_enforcement(&self) -> bool {
        self.effective_policy().is_enforcing() && self.pct.unwrap_or(100) == 100 && !self.testing
    }

    /// The record with a tag set to a value (for advice).
    pub fn with_tag(&self, name: &str, value: &str) -> String {
        let mut t = self.tags.clone();
        t.set(name, value);
        t.to_string()
    }

    /// The record without a tag (for advice).
    pub fn without_tag(&self, name: &str) -> String {
        let mut t = self.tags.clone();
        t.remove(name);
        t.to_string()
    }

    /// The record with every unusable tag repaired or removed: `p=none` (right after `v=`)
    /// when `p=` is missing or invalid, invalid `sp`/`np`/`pct`/`adkim`/`aspf`/`t` removed,
    /// and only valid `mailto:` destinations kept.
    pub fn cleaned(&self) -> String {
        let mut t = self.tags.clone();
        if self.policy.is_none() {
            t.set_at(1, "p", "none");
        }
        for (name, ok) in [
            ("sp", self.subdomain_policy.is_some()),
            ("np", self.nonexistent_policy.is_some()),
            ("pct", self.pct.is_some()),
        ] {
            if !ok {
                t.remove(name);
            }
        }
        for name in ["adkim", "aspf"] {
            if t.get(name)
                .is_some_and(|v| !matches!(v.to_ascii_lowercase().as_str(), "r" | "s"))
            {
                t.remove(name);
            }
        }
        if t.get("t")
            .is_some_and(|v| !v.eq_ignore_ascii_case("y") && !v.eq_ignore_ascii_case("n"))
        {
            t.remove("t");
        }
        for (name, list) in [("rua", &self.rua), ("ruf", &self.ruf)] {
            let good: Vec<&str> = list
                .iter()
                .filter(|u| matches!(u.kind, UriKind::Mailto { .. }))
                .map(|u| u.raw.as_str())
                .collect();
            if good.is_empty() {
                t.remove(name);
            } else {
                t.set(name, &good.join(","));
            }
        }
        t.to_string()
    }

    /// The record with `mailto:address` added to `rua=`.
    pub fn with_rua(&self, address: &str) -> String {
        let mut list: Vec<String> = self.rua.iter().map(|u| u.raw.clone()).collect();
        list.push(format!("mailto:{address}"));
        self.with_tag("rua", &list.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_record() {
        let r = DmarcRecord::parse(
            "v=DMARC1; p=reject; sp=quarantine; np=reject; pct=100; \
             rua=mailto:d@sealwatch.test,mailto:x@y.test!10m; ruf=mailto:f@y.test; adkim=s",
        )
        .expect("valid");
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.policy, Some(Policy::Reject));
        assert_eq!(r.subdomain_policy, Some(Policy::Quarantine));
        assert_eq!(r.rua.len(), 2);
        assert_eq!(r.rua[1].address(), Some("x@y.test"));
        assert!(r.at_enforcement());
    }

    #[test]
    fn lists_problems_without_failing() {
        let r = DmarcRecord::parse("v=DMARC1; p=block; pct=150; rua=dmarc@x.test; adkim=x")
            .expect("still a DMARC record");
        assert_eq!(r.problems.len(), 4, "{:?}", r.problems);
        assert_eq!(r.effective_policy(), Policy::None);
        assert!(!r.at_enforcement());
        assert_eq!(r.cleaned(), "v=DMARC1; p=none");
        let r = DmarcRecord::parse("v=DMARC1; rua=mailto:a@x.test, https://x.test; sp=maybe")
            .expect("parses");
        assert_eq!(r.cleaned(), "v=DMARC1; p=none; rua=mailto:a@x.test");
    }

    #[test]
    fn rejects_non_dmarc() {
        assert!(DmarcRecord::parse("p=reject; v=DMARC1").is_err());
        assert!(DmarcRecord::parse("v=DMARC1 p=reject").is_err());
        assert!(is_dmarc("v=DMARC1; p=none"));
        assert!(!is_dmarc("v=spf1 -all"));
    }

    #[test]
    fn computes_advice_records() {
        let r = DmarcRecord::parse("v=DMARC1; p=none; rua=mailto:a@x.test").expect("valid");
        assert_eq!(
            r.with_tag("p", "quarantine"),
            "v=DMARC1; p=quarantine; rua=mailto:a@x.test"
        );
        assert_eq!(
            r.with_rua("d@sealwatch.test"),
            "v=DMARC1; p=none; rua=mailto:a@x.test,mailto:d@sealwatch.test"
        );
        let partial = DmarcRecord::parse("v=DMARC1; p=reject; pct=20").expect("valid");
        assert!(!partial.at_enforcement());
        assert_eq!(partial.without_tag("pct"), "v=DMARC1; p=reject");
    }
}
