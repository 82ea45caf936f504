//! Input types: what the store reads for one domain, and the days being judged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A UTC calendar day: days since 1970-01-01.
pub type Day = i32;

/// Seconds in a UTC day.
pub const SECS_PER_DAY: i64 = 86_400;

/// The UTC day containing the Unix timestamp `ts` (clamped to the `Day` range).
pub fn day_of(ts: i64) -> Day {
    let d = ts.div_euclid(SECS_PER_DAY);
    Day::try_from(d).unwrap_or(if d < 0 { Day::MIN } else { Day::MAX })
}

/// The Unix timestamp of 00:00:00 UTC of `day`.
pub fn day_start(day: Day) -> i64 {
    i64::from(day) * SECS_PER_DAY
}

/// The day of a proleptic Gregorian date (`day_from_ymd(1970, 1, 1) == 0`).
pub fn day_from_ymd(year: i32, month: u32, dom: u32) -> Day {
    // Howard Hinnant's days_from_civil.
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(dom) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Day::try_from(days).unwrap_or(0)
}

/// `YYYY-MM-DD` of a day, for human-readable texts.
pub fn format_day(day: Day) -> String {
    // Howard Hinnant's civil_from_days.
    let z = i64::from(day) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Which kind of report a [`ReportSeen`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportKind {
    /// A DMARC aggregate report (`rua`).
    Dmarc,
    /// An SMTP TLS report (TLS-RPT).
    Tls,
}

impl ReportKind {
    /// Stable identifier: `dmarc` or `tls`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Dmarc => "dmarc",
            ReportKind::Tls => "tls",
        }
    }
}

/// One DMARC aggregate record (or the sum of several with the same key) of one report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmarcRow {
    /// Report range start, Unix seconds.
    pub begin: i64,
    /// Report range end, Unix seconds (exclusive; `23:59:59` and next-day `00:00:00` both work).
    pub end: i64,
    /// Reporter organisation name as written in the report.
    pub reporter: String,
    /// Source IP as written (unparseable values are kept and grouped as themselves).
    pub source_ip: String,
    /// `identifiers/header_from`.
    pub header_from: Option<String>,
    /// Message count.
    pub messages: u64,
    /// Messages whose `policy_evaluated/dkim` is `pass`.
    pub dkim_aligned: u64,
    /// Messages whose `policy_evaluated/spf` is `pass`.
    pub spf_aligned: u64,
    /// Messages with disposition `none` (or `pass`).
    pub disposition_none: u64,
    /// Messages with disposition `quarantine`.
    pub disposition_quarantine: u64,
    /// Messages with disposition `reject`.
    pub disposition_reject: u64,
    /// Messages the receiver said were forwarded (a `forwarded`, `trusted_forwarder` or
    /// `mailing_list` override, or `local_policy` citing ARC).
    #[serde(default)]
    pub forwarded: u64,
}

/// One policy block of one TLS report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsPolicyRow {
    /// Report range start, Unix seconds.
    pub begin: i64,
    /// Report range end, Unix seconds.
    pub end: i64,
    /// Reporter organisation name.
    pub reporter: String,
    /// `sts`, `tlsa`, `no-policy-found` or anything else as written.
    pub policy_type: String,
    /// `policy-domain`.
    pub policy_domain: Option<String>,
    /// MTA-STS `mode:` from the policy strings (`enforce`, `testing`, `none`).
    pub sts_mode: Option<String>,
    /// `mx-host` values.
    pub mx_hosts: Vec<String>,
    /// `total-successful-session-count`.
    pub successful: u64,
    /// `total-failure-session-count`.
    pub failed: u64,
}

/// One `failure-details` entry of one TLS report policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsFailureRow {
    /// Report range start, Unix seconds.
    pub begin: i64,
    /// Report range end, Unix seconds.
    pub end: i64,
    /// Reporter organisation name.
    pub reporter: String,
    /// Policy type of the enclosing policy block.
    pub policy_type: String,
    /// `result-type` as written (`certificate-expired`, …, or an unknown vendor value).
    pub result_type: String,
    /// `sending-mta-ip`.
    pub sending_mta_ip: Option<String>,
    /// `receiving-mx-hostname`.
    pub receiving_mx_hostname: Option<String>,
    /// `receiving-ip`.
    pub receiving_ip: Option<String>,
    /// `failed-session-count`.
    pub failed: u64,
    /// `failure-reason-code`.
    pub failure_reason_code: Option<String>,
    /// `additional-information`.
    pub additional_information: Option<String>,
}

/// That a report arrived, whatever it contained (an empty report still proves the reporter
/// is alive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSeen {
    /// Report range start, Unix seconds.
    pub begin: i64,
    /// Report range end, Unix seconds.
    pub end: i64,
    /// Reporter organisation name.
    pub reporter: String,
    /// DMARC or TLS.
    pub kind: ReportKind,
    /// When the report reached us, Unix seconds (`None`: unknown). A reporter whose reports
    /// still arrive, however late they are, is not silent.
    #[serde(default)]
    pub received: Option<i64>,
}

/// Everything the analysis knows about one tenant domain: normally the baseline weeks plus
/// the window being judged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainInput {
    /// Tenant id (copied into nothing but kept for the caller's convenience).
    pub tenant_id: i64,
    /// Domain id.
    pub domain_id: i64,
    /// The domain name, used in findings, fingerprints and texts.
    pub domain: String,
    /// DMARC aggregate rows.
    pub dmarc: Vec<DmarcRow>,
    /// TLS-RPT policy rows.
    pub tls: Vec<TlsPolicyRow>,
    /// TLS-RPT failure details.
    pub tls_failures: Vec<TlsFailureRow>,
    /// Every report received (rows also count as evidence that a report arrived).
    pub reports: Vec<ReportSeen>,
    /// Reverse DNS or organisation of IP addresses, when known (may be empty).
    pub source_names: BTreeMap<String, String>,
    /// The caller knows this domain should receive reports (for example its DMARC record
    /// points `rua` at us). Without it, a domain with no reports ever gets an info finding.
    #[serde(default)]
    pub expect_reports: bool,
    /// The addresses each MX host name resolves to (lower-case name without the trailing
    /// dot), for the hosts the caller could resolve. A TLS failure whose `receiving-ip` is
    /// none of its MX host's addresses reached some other machine (STARTTLS stripped on the
    /// way). Hosts missing here are not judged that way.
    #[serde(default)]
    pub mx_addresses: BTreeMap<String, Vec<String>>,
    /// The day the domain was added, when the caller knows it: a domain that never had a
    /// report is not reported as such in its first `no_data_grace_days` (its first reports
    /// may simply not have arrived yet).
    #[serde(default)]
    pub added_day: Option<Day>,
}

/// The inclusive range of days being judged. Days before `start` in the input are history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// First judged day.
    pub start: Day,
    /// Last judged day (inclusive).
    pub end: Day,
}

impl Window {
    /// The `days` days ending with `today` (inclusive).
    pub fn ending(today: Day, days: u32) -> Window {
        let len = Day::try_from(days.max(1)).unwrap_or(Day::MAX);
        Window {
            start: today.saturating_sub(len - 1),
            end: today,
        }
    }

    /// True when `day` is inside the window.
    pub fn contains(&self, day: Day) -> bool {
        day >= self.start && day <= self.end
    }

    /// Number of days (at least 1).
    pub fn len(&self) -> u32 {
        u32::try_from(i64::from(self.end) - i64::from(self.start) + 1)
            .unwrap_or(1)
            .max(1)
    }

    /// Never empty: a window with `end < start` is treated as the single day `start`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// `end < start` repaired to the single day `start`.
    pub fn normalized(self) -> Window {
        if self.end < self.start {
            Window {
                start: self.start,
                end: self.start,
            }
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips() {
        assert_eq!(day_from_ymd(1970, 1, 1), 0);
        assert_eq!(format_day(0), "1970-01-01");
        let d = day_from_ymd(2024, 2, 29);
        assert_eq!(format_day(d), "2024-02-29");
        assert_eq!(format_day(d + 1), "2024-03-01");
        assert_eq!(day_of(day_start(d) + 86_399), d);
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(i64::MAX), Day::MAX);
    }

    #[test]
    fn window_helpers() {
        let w = Window::ending(100, 7);
        assert_eq!((w.start, w.end, w.len()), (94, 100, 7));
        assert!(w.contains(94) && !w.contains(93));
        assert_eq!(Window { start: 5, end: 3 }.normalized().len(), 1);
    }
}
