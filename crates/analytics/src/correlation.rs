//! TLS-RPT × DMARC correlation by reporting organisation and day.
//!
//! DMARC aggregate reports from a provider describe mail *from* the domain that the provider
//! received; its TLS reports describe the provider's own deliveries *into* the domain's MX
//! hosts. Both are joined on the reporter key ([`crate::reporter_key`]) and the UTC day. The
//! provider's DMARC volume measures the size of the mail relationship with it and is used to
//! put TLS failure rates into messages:
//!
//! - **affected messages**: per day, `round(dmarc_messages × tls_failure_rate)`, summed over
//!   the window (an estimate, labelled as such in texts); the failed TLS sessions themselves
//!   are reported alongside;
//! - **volume drop with failures**: the provider's daily DMARC volume in the window fell below
//!   `correlation_volume_drop_ratio` × its baseline mean while its TLS failure rate rose by
//!   `correlation_failure_rate_rise` — replies and conversations stop when mail to the domain
//!   is deferred or lost, not merely sent in clear;
//! - **relationship**: a provider seen in DMARC but never in TLS-RPT publishes no TLS reports
//!   (its silence on TLS is not an outage);
//! - **failing senders**: each sending-MTA IP in the provider's TLS failures, linked to the
//!   domain's DMARC source IPs exactly or by network (`/24`, `/48`) and named from
//!   `source_names` when known.

// Counts come from sender-controlled reports: sums saturate, nothing may wrap or panic.
#![deny(clippy::arithmetic_side_effects)]

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::Window;
use crate::input::{Day, DomainInput};
use crate::net::{canonical_ip, network_of};
use crate::rollup::{Rollup, bump, ratio};
use crate::thresholds::Thresholds;

/// Whether a provider appears in DMARC, TLS-RPT or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderRelationship {
    /// Sends DMARC and TLS reports.
    Both,
    /// Sends DMARC reports but publishes no TLS reports.
    DmarcOnly,
    /// Sends TLS reports only.
    TlsOnly,
}

/// One provider on one window day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderDay {
    /// Day.
    pub day: Day,
    /// DMARC messages the provider reported.
    pub dmarc_messages: u64,
    /// Successful TLS sessions it reported.
    pub tls_successful: u64,
    /// Failed TLS sessions it reported.
    pub tls_failed: u64,
    /// `round(dmarc_messages × failure rate)`.
    pub estimated_affected_messages: u64,
}

/// How a sending-MTA IP of a TLS failure relates to the domain's DMARC sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceMatch {
    /// The same IP sent mail as the domain (DMARC source).
    Exact,
    /// Another IP of the same `/24` or `/48` did.
    SameNetwork,
    /// Not a DMARC source.
    None,
}

/// A sending MTA seen in a provider's TLS failures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SenderLink {
    /// The sending MTA IP.
    pub sending_ip: String,
    /// Its network.
    pub network: String,
    /// Failed sessions from it in the window.
    pub failed_sessions: u64,
    /// Relation to DMARC sources (baseline and window, any reporter).
    pub source_match: SourceMatch,
    /// The matching DMARC source IPs.
    pub dmarc_source_ips: Vec<String>,
    /// DMARC messages of those sources.
    pub dmarc_messages: u64,
    /// Names (reverse DNS / organisation) of the IP and the matching sources, when known.
    pub names: Vec<String>,
}

/// One provider's DMARC and TLS picture for the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderCorrelation {
    /// Reporter key.
    pub reporter: String,
    /// Organisation names as written.
    pub names: Vec<String>,
    /// DMARC, TLS or both.
    pub relationship: ProviderRelationship,
    /// DMARC messages in the window.
    pub window_dmarc_messages: u64,
    /// Successful TLS sessions in the window.
    pub window_tls_successful: u64,
    /// Failed TLS sessions in the window.
    pub window_tls_failed: u64,
    /// Failure rate in the window.
    pub window_failure_rate: Option<f64>,
    /// Failure rate in the baseline.
    pub baseline_failure_rate: Option<f64>,
    /// Mean DMARC messages per baseline day.
    pub baseline_daily_dmarc_messages: f64,
    /// Mean DMARC messages per window day.
    pub window_daily_dmarc_messages: f64,
    /// Estimated messages affected by TLS failures in the window.
    pub estimated_affected_messages: u64,
    /// DMARC volume dropped while TLS failures rose.
    pub dmarc_drop_with_tls_failures: bool,
    /// Window days.
    pub days: Vec<ProviderDay>,
    /// Sending MTAs of its TLS failures, most failures first.
    pub failing_senders: Vec<SenderLink>,
}

/// Known DMARC sources of the domain and names of IPs.
#[derive(Debug, Default)]
pub(crate) struct SourceIndex {
    pub by_ip: BTreeMap<String, u64>,
    pub by_net: BTreeMap<String, BTreeSet<String>>,
    pub names: BTreeMap<String, String>,
}

impl SourceIndex {
    pub(crate) fn build(input: &DomainInput, rollup: &Rollup, from: Day, to: Day) -> SourceIndex {
        let mut idx = SourceIndex::default();
        for (_, d) in rollup.dmarc.range(from..=to) {
            for (ip, c) in &d.by_source_ip {
                bump(idx.by_ip.entry(ip.clone()).or_default(), c.messages);
                idx.by_net
                    .entry(network_of(ip))
                    .or_default()
                    .insert(ip.clone());
            }
        }
        for (ip, name) in &input.source_names {
            idx.names.insert(canonical_ip(ip), name.trim().to_owned());
        }
        idx
    }

    pub(crate) fn link(&self, ip: &str, failed: u64) -> SenderLink {
        let ip = canonical_ip(ip);
        let network = network_of(&ip);
        let mut names = Vec::new();
        if let Some(n) = self.names.get(&ip) {
            names.push(n.clone());
        }
        let (source_match, ips) = if self.by_ip.contains_key(&ip) {
            (SourceMatch::Exact, vec![ip.clone()])
        } else if let Some(set) = self.by_net.get(&network) {
            (SourceMatch::SameNetwork, set.iter().cloned().collect())
        } else {
            (SourceMatch::None, Vec::new())
        };
        let mut dmarc_messages = 0;
        for s in &ips {
            bump(&mut dmarc_messages, self.by_ip.get(s).copied().unwrap_or(0));
            if let Some(n) = self.names.get(s)
                && !names.contains(n)
            {
                names.push(n.clone());
            }
        }
        SenderLink {
            sending_ip: ip,
            network,
            failed_sessions: failed,
            source_match,
            dmarc_source_ips: ips,
            dmarc_messages,
            names,
        }
    }
}

/// Baseline range actually covered by the input: `(from, to, days)`; `days == 0` without one.
pub(crate) fn baseline_range(rollup: &Rollup, window: Window, th: &Thresholds) -> (Day, Day, u32) {
    let to = window.start.saturating_sub(1);
    let nominal = window
        .start
        .saturating_sub(Day::try_from(th.baseline_days).unwrap_or(Day::MAX));
    let from = match rollup.first_day {
        Some(f) => nominal.max(f),
        None => window.start,
    };
    if from > to {
        (window.start, to, 0)
    } else {
        (
            from,
            to,
            u32::try_from(
                i64::from(to)
                    .saturating_sub(i64::from(from))
                    .saturating_add(1),
            )
            .unwrap_or(0),
        )
    }
}

/// Correlates every provider of the domain over `window`.
pub fn correlate(
    input: &DomainInput,
    rollup: &Rollup,
    window: Window,
    th: &Thresholds,
) -> Vec<ProviderCorrelation> {
    let window = window.normalized();
    let (bfrom, bto, bdays) = baseline_range(rollup, window, th);
    let sources = SourceIndex::build(input, rollup, bfrom, window.end);
    let mut out = Vec::new();
    for (key, presence) in &rollup.reporters {
        let relationship = match (presence.dmarc_days.is_empty(), presence.tls_days.is_empty()) {
            (false, false) => ProviderRelationship::Both,
            (false, true) => ProviderRelationship::DmarcOnly,
            _ => ProviderRelationship::TlsOnly,
        };
        let mut days = Vec::new();
        let (mut wd, mut ws, mut wf, mut affected) = (0u64, 0u64, 0u64, 0u64);
        for day in window.start..=window.end {
            let dm = rollup
                .dmarc
                .get(&day)
                .and_then(|d| d.by_reporter.get(key))
                .map_or(0, |c| c.messages);
            let tc = rollup
                .tls
                .get(&day)
                .and_then(|d| d.by_reporter.get(key))
                .copied()
                .unwrap_or_default();
            let est = tc
                .failure_rate()
                .map_or(0, |r| (dm as f64 * r).round() as u64);
            bump(&mut wd, dm);
            bump(&mut ws, tc.successful);
            bump(&mut wf, tc.failed);
            bump(&mut affected, est);
            if dm > 0 || tc.total() > 0 {
                days.push(ProviderDay {
                    day,
                    dmarc_messages: dm,
                    tls_successful: tc.successful,
                    tls_failed: tc.failed,
                    estimated_affected_messages: est,
                });
            }
        }
        let (bd, btls) = if bdays > 0 {
            (
                rollup.dmarc_reporter(key, bfrom, bto).messages,
                rollup.tls_reporter(key, bfrom, bto),
            )
        } else {
            (0, Default::default())
        };
        let base_mean = if bdays > 0 {
            bd as f64 / f64::from(bdays)
        } else {
            0.0
        };
        let win_mean = wd as f64 / f64::from(window.len());
        let win_rate = ratio(wf, ws.saturating_add(wf));
        let base_rate = btls.failure_rate();
        let drop = base_mean >= th.correlation_min_daily_messages
            && win_mean < base_mean * th.correlation_volume_drop_ratio
            && wf > 0
            && win_rate.unwrap_or(0.0)
                >= base_rate.unwrap_or(0.0) + th.correlation_failure_rate_rise;
        let mut per_ip: BTreeMap<String, u64> = BTreeMap::new();
        for (_, cell) in rollup.failures(window.start, window.end) {
            if &cell.reporter == key
                && let Some(ip) = &cell.sending_ip
            {
                bump(per_ip.entry(ip.clone()).or_default(), cell.failed);
            }
        }
        let mut failing_senders: Vec<SenderLink> =
            per_ip.iter().map(|(ip, n)| sources.link(ip, *n)).collect();
        failing_senders.sort_by(|a, b| {
            b.failed_sessions
                .cmp(&a.failed_sessions)
                .then_with(|| a.sending_ip.cmp(&b.sending_ip))
        });
        out.push(ProviderCorrelation {
            reporter: key.clone(),
            names: presence.names.iter().cloned().collect(),
            relationship,
            window_dmarc_messages: wd,
            window_tls_successful: ws,
            window_tls_failed: wf,
            window_failure_rate: win_rate,
            baseline_failure_rate: base_rate,
            baseline_daily_dmarc_messages: base_mean,
            window_daily_dmarc_messages: win_mean,
            estimated_affected_messages: affected,
            dmarc_drop_with_tls_failures: drop,
            days,
            failing_senders,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::DomainBuilder;

    #[test]
    fn joins_google_dmarc_and_tls_and_estimates_affected_messages() {
        let mut b = DomainBuilder::new("example.com");
        for day in 0..28 {
            b = b
                .dmarc(day, "google.com", "192.0.2.10", 100, 100)
                .tls(day, "Google Inc.", 200, 0);
        }
        for day in 28..35 {
            b = b
                .dmarc(day, "google.com", "192.0.2.10", 100, 100)
                .tls(day, "Google Inc.", 150, 0)
                .tls_failure(
                    day,
                    "Google Inc.",
                    "certificate-expired",
                    "mx1.example.com",
                    "209.85.1.1",
                    50,
                );
        }
        b = b.dmarc(30, "Yahoo", "192.0.2.10", 10, 10);
        let input = b.build();
        let r = Rollup::build(&input);
        let c = correlate(
            &input,
            &r,
            Window { start: 28, end: 34 },
            &Thresholds::default(),
        );
        let g = c.iter().find(|p| p.reporter == "google").expect("google");
        assert_eq!(g.relationship, ProviderRelationship::Both);
        assert_eq!(
            g.names,
            vec!["Google Inc.".to_owned(), "google.com".to_owned()]
        );
        assert_eq!(g.window_tls_failed, 350);
        // 25% of 100 messages a day for 7 days.
        assert_eq!(g.estimated_affected_messages, 175);
        assert!(!g.dmarc_drop_with_tls_failures);
        assert_eq!(g.failing_senders[0].source_match, SourceMatch::None);
        let y = c.iter().find(|p| p.reporter == "yahoo").expect("yahoo");
        assert_eq!(y.relationship, ProviderRelationship::DmarcOnly);
    }

    #[test]
    fn detects_volume_drop_with_rising_failures() {
        let mut b = DomainBuilder::new("example.com");
        for day in 0..28 {
            b = b.dmarc(day, "Outlook.com", "192.0.2.10", 200, 200).tls(
                day,
                "Microsoft Corporation",
                300,
                0,
            );
        }
        for day in 28..35 {
            b = b
                .dmarc(day, "Outlook.com", "192.0.2.10", 40, 40)
                .tls(day, "Microsoft Corporation", 100, 0)
                .tls_failure(
                    day,
                    "Microsoft Corporation",
                    "validation-failure",
                    "mx1.example.com",
                    "40.92.1.1",
                    100,
                );
        }
        let input = b.build();
        let r = Rollup::build(&input);
        let c = correlate(
            &input,
            &r,
            Window { start: 28, end: 34 },
            &Thresholds::default(),
        );
        let m = &c[0];
        assert_eq!(m.reporter, "microsoft");
        assert!(m.dmarc_drop_with_tls_failures);
        assert_eq!(m.window_failure_rate, Some(0.5));
    }

    #[test]
    fn links_sending_ips_to_dmarc_sources_and_names() {
        let mut b = DomainBuilder::new("example.com")
            .source_name("198.51.100.7", "relay.example.com")
            .source_name("203.0.113.9", "mail-out.vendor.net");
        for day in 0..7 {
            b = b
                .dmarc(day, "google.com", "198.51.100.7", 10, 10)
                .dmarc(day, "google.com", "203.0.113.9", 10, 10)
                .tls(day, "Google Inc.", 100, 0)
                .tls_failure(
                    day,
                    "Google Inc.",
                    "starttls-not-supported",
                    "mx1.example.com",
                    "198.51.100.7",
                    1,
                )
                .tls_failure(
                    day,
                    "Google Inc.",
                    "starttls-not-supported",
                    "mx1.example.com",
                    "203.0.113.44",
                    2,
                )
                .tls_failure(
                    day,
                    "Google Inc.",
                    "starttls-not-supported",
                    "mx1.example.com",
                    "100.64.0.1",
                    1,
                );
        }
        let input = b.build();
        let r = Rollup::build(&input);
        let c = correlate(
            &input,
            &r,
            Window { start: 0, end: 6 },
            &Thresholds::default(),
        );
        let s = &c[0].failing_senders;
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].sending_ip, "203.0.113.44");
        assert_eq!(s[0].source_match, SourceMatch::SameNetwork);
        assert_eq!(s[0].dmarc_source_ips, vec!["203.0.113.9".to_owned()]);
        assert_eq!(s[0].names, vec!["mail-out.vendor.net".to_owned()]);
        let exact = s
            .iter()
            .find(|l| l.sending_ip == "198.51.100.7")
            .expect("exact");
        assert_eq!(exact.source_match, SourceMatch::Exact);
        assert_eq!(exact.dmarc_messages, 70);
        assert_eq!(exact.names, vec!["relay.example.com".to_owned()]);
        let none = s
            .iter()
            .find(|l| l.sending_ip == "100.64.0.1")
            .expect("none");
        assert_eq!(none.source_match, SourceMatch::None);
    }
}
