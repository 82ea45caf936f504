//! Findings: what a detector reports, with evidence and a plain-English explanation.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::input::Day;

/// Anomaly kinds. [`AnomalyKind::as_str`] is the stable identifier shared by the CLI, the API,
/// the database and the digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyKind {
    /// Certificate failures on one MX host reported by most or all reporters.
    TlsCertificateCluster,
    /// TLS failures from one reporter while the others succeed.
    TlsSingleProvider,
    /// MTA-STS policy could not be fetched, parsed or authenticated.
    MtaStsPolicy,
    /// A small but steady rate of negotiation failures from unexpected networks.
    TlsLowRateNegotiation,
    /// DANE (`tlsa-invalid`, `dnssec-invalid`, `dane-required`).
    Dane,
    /// A reporter that reported regularly stopped.
    ReporterSilent,
    /// A known sending source's DMARC pass rate fell.
    DmarcAuthDrop,
    /// A source not seen before sends at volume and fails DMARC.
    DmarcNewUnauthenticatedSource,
    /// No reports at all in the window.
    NoData,
}

impl AnomalyKind {
    /// Every kind.
    pub const ALL: &'static [AnomalyKind] = &[
        AnomalyKind::TlsCertificateCluster,
        AnomalyKind::TlsSingleProvider,
        AnomalyKind::MtaStsPolicy,
        AnomalyKind::TlsLowRateNegotiation,
        AnomalyKind::Dane,
        AnomalyKind::ReporterSilent,
        AnomalyKind::DmarcAuthDrop,
        AnomalyKind::DmarcNewUnauthenticatedSource,
        AnomalyKind::NoData,
    ];

    /// The stable identifier.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::TlsCertificateCluster => "tls-certificate-cluster",
            AnomalyKind::TlsSingleProvider => "tls-single-provider",
            AnomalyKind::MtaStsPolicy => "mta-sts-policy",
            AnomalyKind::TlsLowRateNegotiation => "tls-low-rate-negotiation",
            AnomalyKind::Dane => "dane",
            AnomalyKind::ReporterSilent => "reporter-silent",
            AnomalyKind::DmarcAuthDrop => "dmarc-auth-drop",
            AnomalyKind::DmarcNewUnauthenticatedSource => "dmarc-new-unauthenticated-source",
            AnomalyKind::NoData => "no-data",
        }
    }

    /// Parses a stable identifier.
    pub fn parse(s: &str) -> Option<AnomalyKind> {
        AnomalyKind::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent a finding is. Ordered: `Info < Warning < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Worth knowing; nothing is broken.
    Info,
    /// Something should be looked at this week.
    Warning,
    /// Mail is (or may be) lost or refused: fix today.
    Critical,
}

impl Severity {
    /// `info`, `warning` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// Parses `info` / `warning` / `critical`.
    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Plain-English explanation for a non-expert, filled with the specifics of the finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// What the reports show.
    pub what_happened: String,
    /// Why it matters.
    pub what_it_means: String,
    /// Whether anything needs doing, and what.
    pub what_to_do: String,
    /// Who usually fixes it.
    pub who_fixes_it: String,
}

/// One detected anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Kind.
    pub kind: AnomalyKind,
    /// Severity.
    pub severity: Severity,
    /// The domain.
    pub domain: String,
    /// First day of the judged window with evidence of the problem.
    pub window_start: Day,
    /// Last day of the judged window with evidence of the problem.
    pub window_end: Day,
    /// Numbers, reporters, MX hosts, result types, IPs (a JSON object; keys per kind).
    pub evidence: serde_json::Value,
    /// 0..=1.
    pub confidence: f64,
    /// Stable identity of the problem: `kind:domain:subject` without dates, so the same
    /// ongoing problem has the same fingerprint day after day.
    pub fingerprint: String,
    /// One line.
    pub summary: String,
    /// Plain English.
    pub explanation: Explanation,
}

/// `kind:domain[:part…]`, lower-cased, without whitespace.
pub fn fingerprint(kind: AnomalyKind, domain: &str, parts: &[&str]) -> String {
    let mut s = format!("{}:{}", kind.as_str(), crate::rollup::norm_host(domain));
    for p in parts {
        s.push(':');
        s.extend(
            p.trim()
                .to_ascii_lowercase()
                .chars()
                .map(|c| if c.is_whitespace() { '_' } else { c }),
        );
    }
    s
}

/// Confidence clamped into `0.05..=0.99` and rounded to two decimals.
pub(crate) fn conf(x: f64) -> f64 {
    let x = if x.is_finite() { x } else { 0.5 };
    (x.clamp(0.05, 0.99) * 100.0).round() / 100.0
}

/// A rate rounded to four decimals for evidence.
pub(crate) fn r4(x: f64) -> f64 {
    if x.is_finite() {
        (x * 10_000.0).round() / 10_000.0
    } else {
        0.0
    }
}

/// `a, b and c`.
pub(crate) fn list(items: &[String]) -> String {
    match items.len() {
        0 => String::new(),
        1 => items[0].clone(),
        n => format!("{} and {}", items[..n - 1].join(", "), items[n - 1]),
    }
}

/// Percentage text: `12.5%`.
pub(crate) fn pct(x: f64) -> String {
    let p = x * 100.0;
    if p >= 10.0 || p == 0.0 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for k in AnomalyKind::ALL {
            assert_eq!(AnomalyKind::parse(k.as_str()), Some(*k));
            let json = serde_json::to_string(k).expect("serializes");
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
        assert!(Severity::Critical > Severity::Warning);
        assert_eq!(Severity::parse("info"), Some(Severity::Info));
    }

    #[test]
    fn fingerprints_and_texts() {
        assert_eq!(
            fingerprint(
                AnomalyKind::Dane,
                "Example.COM.",
                &["MX1.example.com", "a b"]
            ),
            "dane:example.com:mx1.example.com:a_b"
        );
        assert_eq!(list(&["a".into(), "b".into(), "c".into()]), "a, b and c");
        assert_eq!(pct(0.126), "13%");
        assert_eq!(pct(0.012), "1.2%");
        assert_eq!(conf(2.0), 0.99);
    }
}
