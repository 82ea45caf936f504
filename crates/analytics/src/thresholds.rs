//! Every threshold of the detectors, with defaults for a domain without history.

use serde::{Deserialize, Serialize};

/// Detector thresholds. Every field has a default ([`Thresholds::default`]); a config file may
/// set any subset (`#[serde(default)]`). Where the domain has history (at least
/// `min_history_days` days with data before the window), detectors compare against that
/// history as documented per field; otherwise the absolute defaults apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// Days before the window used as baseline (history). Default 28.
    pub baseline_days: u32,
    /// Days with data in the baseline before history-based judgement is used. Default 7.
    pub min_history_days: u32,
    /// A change still going on that began within this many days before the window's last
    /// day is judged against the history before it began, not against a baseline that
    /// already contains it (so an ongoing incident stays an incident for that long, however
    /// the nights of analysis fell). Older changes are the domain's new normal. Default 21.
    pub recent_change_days: u32,

    /// Certificate cluster: failure rate (cert failures on one MX / the reporter's sessions in
    /// the window) from which a reporter counts as seeing the problem. Default 0.02.
    pub cert_reporter_min_failure_rate: f64,
    /// Certificate cluster: share of the window's TLS reporters that must see it. Default 0.5.
    pub cert_min_reporter_share: f64,
    /// Certificate cluster: minimum failed sessions in the window. Default 5.
    pub cert_min_failed_sessions: u64,
    /// Certificate cluster: the window's daily failures must exceed the baseline's daily mean
    /// by this factor ("rising"). Default 3.0.
    pub cert_rise_factor: f64,

    /// Single provider: the reporter's failure rate in the window. Default 0.10.
    pub single_provider_min_failure_rate: f64,
    /// Single provider: minimum failed sessions of that reporter. Default 10.
    pub single_provider_min_failed_sessions: u64,
    /// Single provider: the other reporters' combined failure rate must stay below. Default 0.02.
    pub single_provider_others_max_failure_rate: f64,
    /// Single provider: the other reporters need at least this many sessions. Default 20.
    pub single_provider_others_min_sessions: u64,

    /// No data: days after a domain was added during which "no report has ever arrived" is
    /// not yet a finding (reporters send daily, some days late). Default 7.
    pub no_data_grace_days: u32,

    /// MTA-STS: minimum policy failures in the window. Default 3.
    pub sts_min_failed_sessions: u64,

    /// Low-rate negotiation: the group's failures / the reporter's sessions must stay at or
    /// below (above it the other detectors speak). Default 0.05.
    pub low_rate_max_failure_rate: f64,
    /// Low-rate negotiation: days of the window with such failures ("steady"). Default 3.
    pub low_rate_min_days: u32,
    /// Low-rate negotiation: minimum failed sessions in the window. Default 3.
    pub low_rate_min_failed_sessions: u64,
    /// Low-rate negotiation: for a network already seen in the baseline, the window's daily
    /// rate must exceed the baseline's by this factor. Default 3.0.
    pub low_rate_rise_factor: f64,

    /// DANE: minimum failures in the window. Default 1.
    pub dane_min_failed_sessions: u64,
    /// DANE: failures from which the finding is critical. Default 20.
    pub dane_critical_failed_sessions: u64,

    /// Reporter silent: share of baseline days (since the reporter's first report) with a
    /// report. Default 0.8 (excludes providers that report only on days with traffic).
    pub silent_min_regularity: f64,
    /// Reporter silent: minimum baseline days with a report. Default 10.
    pub silent_min_baseline_days: u32,
    /// Reporter silent: days without a report ending with the window's last day; raised to
    /// one more than the longest gap seen in the baseline. Default 3.
    pub silent_days: u32,

    /// DMARC drop: a source network needs this many baseline messages to be "known". Default 100.
    pub dmarc_known_min_messages: u64,
    /// DMARC drop: its baseline pass rate must be at least this. Default 0.9.
    pub dmarc_known_min_pass_rate: f64,
    /// DMARC drop: minimum messages in the window. Default 20.
    pub dmarc_window_min_messages: u64,
    /// DMARC drop: absolute drop of the pass rate. Default 0.2.
    pub dmarc_pass_rate_drop: f64,
    /// DMARC drop: minimum failed messages in the window (evidence, not only a rate).
    /// Default 30.
    pub dmarc_drop_min_failed: u64,
    /// DMARC drop: days of the window on which the source's pass rate was down (a single
    /// day of failures, e.g. one failing aggregate row, is not yet a trend). Default 2.
    pub dmarc_drop_min_days: u32,
    /// New unauthenticated source: minimum messages in the window. Default 100.
    pub dmarc_new_source_min_messages: u64,
    /// New unauthenticated source: pass rate at or below. Default 0.2.
    pub dmarc_new_source_max_pass_rate: f64,
    /// New unauthenticated source: a network is "new" when it sent fewer than this many
    /// messages in the baseline. Default 10.
    pub dmarc_new_source_max_baseline_messages: u64,

    /// Correlation: a provider's daily DMARC volume counts as dropped below this share of
    /// its baseline mean. Default 0.5.
    pub correlation_volume_drop_ratio: f64,
    /// Correlation: baseline daily DMARC messages needed to judge a drop. Default 10.
    pub correlation_min_daily_messages: f64,
    /// Correlation: the window's TLS failure rate must exceed the baseline's by this
    /// (absolute). Default 0.05.
    pub correlation_failure_rate_rise: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            baseline_days: 28,
            min_history_days: 7,
            recent_change_days: 21,
            cert_reporter_min_failure_rate: 0.02,
            cert_min_reporter_share: 0.5,
            cert_min_failed_sessions: 5,
            cert_rise_factor: 3.0,
            single_provider_min_failure_rate: 0.10,
            single_provider_min_failed_sessions: 10,
            single_provider_others_max_failure_rate: 0.02,
            single_provider_others_min_sessions: 20,
            no_data_grace_days: 7,
            sts_min_failed_sessions: 3,
            low_rate_max_failure_rate: 0.05,
            low_rate_min_days: 3,
            low_rate_min_failed_sessions: 3,
            low_rate_rise_factor: 3.0,
            dane_min_failed_sessions: 1,
            dane_critical_failed_sessions: 20,
            silent_min_regularity: 0.8,
            silent_min_baseline_days: 10,
            silent_days: 3,
            dmarc_known_min_messages: 100,
            dmarc_known_min_pass_rate: 0.9,
            dmarc_window_min_messages: 20,
            dmarc_pass_rate_drop: 0.2,
            dmarc_drop_min_failed: 30,
            dmarc_drop_min_days: 2,
            dmarc_new_source_min_messages: 100,
            dmarc_new_source_max_pass_rate: 0.2,
            dmarc_new_source_max_baseline_messages: 10,
            correlation_volume_drop_ratio: 0.5,
            correlation_min_daily_messages: 10.0,
            correlation_failure_rate_rise: 0.05,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_config_keeps_defaults() {
        let t: Thresholds =
            serde_json::from_str(r#"{"silent_days": 5, "cert_rise_factor": 2.5}"#).expect("parses");
        assert_eq!(t.silent_days, 5);
        assert_eq!(t.cert_rise_factor, 2.5);
        assert_eq!(t.baseline_days, Thresholds::default().baseline_days);
        assert!(serde_json::from_str::<Thresholds>(r#"{"nope": 1}"#).is_err());
    }
}
