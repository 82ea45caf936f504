//! [`DigestData`]: everything one tenant's digest for one ISO week says, as plain data. The
//! store side fills it ([`crate::gather`]); [`crate::compose`] renders it. Strings taken from
//! reports are kept as written here and cleaned when rendered.

use crate::IsoWeek;

/// One tenant's week.
#[derive(Debug, Clone, PartialEq)]
pub struct DigestData {
    /// The tenant's name.
    pub tenant: String,
    /// The week covered.
    pub week: IsoWeek,
    /// One entry per domain the tenant owns, by name.
    pub domains: Vec<DomainDigest>,
    /// Where reports must be sent, for the "how to start receiving reports" note.
    pub setup: SetupHints,
    /// Link to stop receiving digests (also the `List-Unsubscribe` target).
    pub unsubscribe_url: Option<String>,
}

/// The addresses a domain's DNS records must point reports at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetupHints {
    /// DMARC aggregate `rua` mailbox, e.g. `dmarc@reports.example.net`.
    pub dmarc_rua: String,
    /// TLS-RPT `rua` mailbox.
    pub tlsrpt_rua: String,
}

/// One domain's week, with the week before for comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainDigest {
    /// The domain name.
    pub domain: String,
    /// This week's headline numbers.
    pub this_week: WeekNumbers,
    /// The previous week's, same definitions.
    pub last_week: WeekNumbers,
    /// Reporters that sent reports in the four weeks before but none this week.
    pub reporters_missing: Vec<String>,
    /// Of those, the ones that reported on most days (five of seven) of every one of the four
    /// weeks before.
    pub regular_reporters_missing: Vec<String>,
    /// Of the reporters that did report this week, the regular ones whose reports stopped
    /// days before the others' did, with the first day without their reports.
    pub regular_reporters_stopped: Vec<(String, sealwatch_analytics::Day)>,
    /// Anomalies of the week, most urgent first: open and acknowledged ones, and resolved
    /// ones whose evidence lies in the week (marked resolved); never dismissed ones.
    pub issues: Vec<Issue>,
    /// Inbound encryption.
    pub tls: TlsSection,
    /// Sending sources of this week, largest first (at most [`DomainDigest::MAX_SOURCES`]).
    pub sources: Vec<SourceRow>,
    /// How many sources there were in all.
    pub sources_total: usize,
    /// The latest domain health check, when one was run.
    pub health: Option<HealthSlot>,
}

impl DomainDigest {
    /// Rows kept in the sources table.
    pub const MAX_SOURCES: usize = 10;

    /// True when any report covered this week.
    pub fn has_data(&self) -> bool {
        self.this_week.has_data()
    }
}

/// Headline numbers of one week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WeekNumbers {
    /// Messages in DMARC aggregate reports.
    pub messages: u64,
    /// Of which passed DMARC (aligned SPF or DKIM; a lower bound).
    pub dmarc_passed: u64,
    /// Sending sources (networks: `/24` for IPv4, `/48` for IPv6) seen in the four weeks
    /// before too.
    pub sources_known: u64,
    /// Sending sources (networks) not seen in the four weeks before.
    pub sources_new: u64,
    /// Successful TLS sessions reported by TLS-RPT.
    pub tls_successful: u64,
    /// Failed TLS sessions.
    pub tls_failed: u64,
    /// Organisations that sent reports (DMARC or TLS).
    pub reporters: u64,
}

impl WeekNumbers {
    /// True when any report covered the week.
    pub fn has_data(&self) -> bool {
        self.messages > 0 || self.tls_sessions() > 0 || self.reporters > 0
    }

    /// DMARC pass rate, `None` without messages.
    pub fn dmarc_pass_rate(&self) -> Option<f64> {
        rate(self.dmarc_passed, self.messages)
    }

    /// All TLS sessions.
    pub fn tls_sessions(&self) -> u64 {
        self.tls_successful.saturating_add(self.tls_failed)
    }

    /// TLS success rate, `None` without sessions.
    pub fn tls_success_rate(&self) -> Option<f64> {
        rate(self.tls_successful, self.tls_sessions())
    }
}

pub(crate) fn rate(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| (num as f64 / den as f64).clamp(0.0, 1.0))
}

/// How urgent an issue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IssueSeverity {
    /// Worth knowing.
    Info,
    /// Look at it this week.
    Warning,
    /// Mail is or may be lost: today.
    Critical,
}

impl IssueSeverity {
    /// Parses `info` / `warning` / `critical` (anything else is a warning).
    pub fn parse(s: &str) -> IssueSeverity {
        match s {
            "critical" => IssueSeverity::Critical,
            "info" => IssueSeverity::Info,
            _ => IssueSeverity::Warning,
        }
    }

    /// Label for readers.
    pub fn label(self) -> &'static str {
        match self {
            IssueSeverity::Info => "Worth knowing",
            IssueSeverity::Warning => "Needs a look",
            IssueSeverity::Critical => "Urgent",
        }
    }

    /// `info`, `warning`, `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            IssueSeverity::Info => "info",
            IssueSeverity::Warning => "warning",
            IssueSeverity::Critical => "critical",
        }
    }
}

/// An anomaly, in the analysis' plain English.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Stable kind id (`tls-certificate-cluster`, …).
    pub kind: String,
    pub severity: IssueSeverity,
    /// Staff acknowledged it and are working on it.
    pub acknowledged: bool,
    /// It happened in this week and has been resolved since.
    pub resolved: bool,
    /// One line.
    pub summary: String,
    pub what_happened: String,
    pub what_it_means: String,
    pub what_to_do: String,
    pub who_fixes_it: String,
    /// First day it was seen, `YYYY-MM-DD`.
    pub since: String,
}

/// Inbound TLS (what senders saw when delivering to this domain's MX hosts).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSection {
    /// MTA-STS mode senders found (`enforce`, `testing`, `none`), or `None` without a policy.
    pub mta_sts_mode: Option<String>,
    /// True when some sender reported finding no MTA-STS or DANE policy.
    pub no_policy_reported: bool,
    /// One row per MX host, hosts with failures first.
    pub mx: Vec<MxRow>,
    /// Failed sessions by failure type, largest first.
    pub failure_types: Vec<(String, u64)>,
}

/// One MX host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxRow {
    /// Host name as reported.
    pub host: String,
    /// Failed sessions reported for it this week.
    pub failed: u64,
    /// Failure types seen for it.
    pub result_types: Vec<String>,
}

/// One sending source (IP address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRow {
    pub ip: String,
    pub messages: u64,
    pub dmarc_passed: u64,
    pub dkim_aligned: u64,
    pub spf_aligned: u64,
    /// Its network was not seen in the four weeks before.
    pub new: bool,
}

/// The latest health check of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSlot {
    /// 0–100.
    pub score: i32,
    /// `A`…`F`.
    pub grade: String,
    /// `YYYY-MM-DD`.
    pub checked_on: String,
    /// Titles of the checks that need action, when the stored report lists them.
    pub problems: Vec<String>,
    /// What changed since the run before (records that appeared, vanished or changed,
    /// problems that appeared or were fixed), one sentence each.
    pub changes: Vec<String>,
}
