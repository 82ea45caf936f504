//! Changes in a week's numbers that must never read "All clear". The digest's verdict comes
//! from the anomalies the analysis found; these checks make sure the numbers printed beside
//! it cannot contradict it. Each [`Signal`] is a line the numbers crossed; when no issue of
//! the week explains it (an anomaly of a related kind), the digest shows it as an issue of
//! its own: "something changed that we could not classify".
//!
//! The lines are deliberately simple and judged on the numbers the digest prints (this week
//! against the week before), so a reader can check them against the table.

use crate::IsoWeek;
use crate::compose::{count, percent};
use crate::data::{DomainDigest, Issue, IssueSeverity};

/// The kind of a digest issue made from an unexplained signal.
pub const UNCLASSIFIED: &str = "unclassified-change";

/// TLS sessions a week needs before its success rate is judged.
pub const MIN_TLS_SESSIONS: u64 = 20;
/// A TLS success rate this far (in points) below the week before is a drop.
pub const TLS_DROP_POINTS: f64 = 5.0;
/// A TLS success rate below this is never "as expected", whatever the week before.
pub const TLS_FLOOR: f64 = 0.95;
/// DMARC messages a week (this one and the one before) needs before its pass rate is judged.
pub const MIN_DMARC_MESSAGES: u64 = 100;
/// A DMARC pass rate this far (in points) below the week before is a drop.
pub const DMARC_DROP_POINTS: f64 = 10.0;
/// Messages that make a new failing source "of real volume".
pub const NEW_SOURCE_MIN_MESSAGES: u64 = 100;
/// A new source passing DMARC for less than this share of its messages is failing.
pub const NEW_SOURCE_MAX_PASS_RATE: f64 = 0.5;

/// TLS-RPT result types that mean senders could not use the MTA-STS policy.
const STS_FAILURES: [&str; 3] = [
    "sts-policy-fetch-error",
    "sts-policy-invalid",
    "sts-webpki-invalid",
];

/// A line the week's numbers crossed.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// The TLS success rate is low or fell.
    TlsDrop { now: f64, before: Option<f64> },
    /// The DMARC pass rate fell.
    DmarcDrop { now: f64, before: f64 },
    /// Reporters that sent reports every week before sent nothing this week.
    ReporterMissing { names: Vec<String> },
    /// A reporter that sent reports every week before stopped during this week while the
    /// others went on (its first day without reports).
    ReporterStopped {
        name: String,
        since: sealwatch_analytics::Day,
    },
    /// A source not seen in the weeks before sent much mail failing DMARC.
    NewFailingSource {
        ip: String,
        messages: u64,
        passed: u64,
    },
    /// Senders reported that the MTA-STS policy could not be used.
    StsPolicyFailures { sessions: u64 },
}

impl Signal {
    /// Whether an anomaly of `kind` explains this signal.
    fn explained_by(&self, kind: &str) -> bool {
        match self {
            Signal::TlsDrop { .. } => {
                kind.starts_with("tls-")
                    || kind.starts_with("mta-sts")
                    || kind == "dane"
                    || kind == "no-data"
            }
            Signal::DmarcDrop { .. } | Signal::NewFailingSource { .. } => {
                kind.starts_with("dmarc-")
            }
            Signal::ReporterMissing { .. } | Signal::ReporterStopped { .. } => {
                kind == "reporter-silent" || kind == "no-data"
            }
            Signal::StsPolicyFailures { .. } => kind.starts_with("mta-sts"),
        }
    }

    /// What the numbers show, in one sentence.
    fn sentence(&self) -> String {
        match self {
            Signal::TlsDrop {
                now,
                before: Some(b),
            } => format!(
                "the TLS success rate of deliveries to your mail servers was {} this week, against {} the week before",
                percent(Some(*now)),
                percent(Some(*b))
            ),
            Signal::TlsDrop { now, before: None } => format!(
                "only {} of deliveries to your mail servers could be encrypted this week",
                percent(Some(*now))
            ),
            Signal::DmarcDrop { now, before } => format!(
                "the share of mail passing DMARC fell to {} from {} the week before",
                percent(Some(*now)),
                percent(Some(*before))
            ),
            Signal::ReporterMissing { names } => format!(
                "{} sent reports every week before but none this week",
                names.join(", ")
            ),
            Signal::ReporterStopped { name, since } => format!(
                "{name}, which sent reports every day before, sent none from {} on while the other providers' reports kept coming",
                sealwatch_analytics::format_day(*since)
            ),
            Signal::NewFailingSource {
                ip,
                messages,
                passed,
            } => format!(
                "{ip}, a source not seen before, sent {} messages as you, {} of them passing DMARC",
                count(*messages),
                count(*passed)
            ),
            Signal::StsPolicyFailures { sessions } => format!(
                "senders reported {} deliveries in which your MTA-STS policy could not be fetched or used",
                count(*sessions)
            ),
        }
    }
}

/// Every line the week's numbers of `d` crossed.
pub fn signals(d: &DomainDigest) -> Vec<Signal> {
    let mut out = Vec::new();
    let (a, b) = (&d.this_week, &d.last_week);
    if a.tls_sessions() >= MIN_TLS_SESSIONS
        && let Some(now) = a.tls_success_rate()
    {
        let before = (b.tls_sessions() >= MIN_TLS_SESSIONS)
            .then(|| b.tls_success_rate())
            .flatten();
        let fell = before.is_some_and(|b| (b - now) * 100.0 > TLS_DROP_POINTS);
        if now < TLS_FLOOR || fell {
            out.push(Signal::TlsDrop { now, before });
        }
    }
    if a.messages >= MIN_DMARC_MESSAGES
        && b.messages >= MIN_DMARC_MESSAGES
        && let (Some(now), Some(before)) = (a.dmarc_pass_rate(), b.dmarc_pass_rate())
        && (before - now) * 100.0 > DMARC_DROP_POINTS
    {
        out.push(Signal::DmarcDrop { now, before });
    }
    if !d.regular_reporters_missing.is_empty() {
        out.push(Signal::ReporterMissing {
            names: d.regular_reporters_missing.clone(),
        });
    }
    for (name, since) in &d.regular_reporters_stopped {
        out.push(Signal::ReporterStopped {
            name: name.clone(),
            since: *since,
        });
    }
    if let Some(s) = d.sources.iter().find(|s| {
        s.new
            && s.messages >= NEW_SOURCE_MIN_MESSAGES
            && (s.dmarc_passed as f64) < s.messages as f64 * NEW_SOURCE_MAX_PASS_RATE
    }) {
        out.push(Signal::NewFailingSource {
            ip: s.ip.clone(),
            messages: s.messages,
            passed: s.dmarc_passed,
        });
    }
    let sts: u64 = d
        .tls
        .failure_types
        .iter()
        .filter(|(t, _)| STS_FAILURES.contains(&t.as_str()))
        .map(|(_, n)| *n)
        .fold(0, u64::saturating_add);
    if sts > 0 {
        out.push(Signal::StsPolicyFailures { sessions: sts });
    }
    out
}

/// The signals of `d` that none of its issues explains, as one issue ("something changed
/// that we could not classify"), or nothing.
pub fn unexplained(d: &DomainDigest, week: IsoWeek) -> Option<Issue> {
    // Any issue of the week explains, resolved since or not: it happened in the week.
    let open: Vec<&str> = d.issues.iter().map(|i| i.kind.as_str()).collect();
    let left: Vec<Signal> = signals(d)
        .into_iter()
        .filter(|s| !open.iter().any(|k| s.explained_by(k)))
        .collect();
    if left.is_empty() {
        return None;
    }
    let sentences: Vec<String> = left.iter().map(Signal::sentence).collect();
    let what = sentences.join("; ");
    let mut first = sentences[0].clone();
    if let Some(c) = first.get(..1) {
        first = c.to_uppercase() + first.get(1..).unwrap_or_default();
    }
    Some(Issue {
        kind: UNCLASSIFIED.to_owned(),
        severity: IssueSeverity::Warning,
        acknowledged: false,
        resolved: false,
        summary: format!(
            "Something changed for {} that we could not classify: {first}.",
            d.domain
        ),
        what_happened: format!("The numbers of this week show that {what}."),
        what_it_means: "None of our checks recognised the pattern behind it, so we cannot \
                        say yet what it means for your mail; it is not what a normal week \
                        looks like."
            .to_owned(),
        what_to_do: "Compare the numbers below with the week before. If nothing on your \
                     side changed (mail servers, certificates, DNS records, sending \
                     services), reply to this email and we will look at the reports with you."
            .to_owned(),
        who_fixes_it: "Whoever runs your mail servers and DNS, with our help.".to_owned(),
        since: week.monday().format("%Y-%m-%d").to_string(),
    })
}
