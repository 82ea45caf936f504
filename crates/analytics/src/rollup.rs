//! Per-UTC-day aggregates of one domain's reports.
//!
//! # How a report range is split into days
//!
//! A report covers the half-open range `[begin, end)` (Unix seconds; reporters write the end
//! as `23:59:59` or as next-day `00:00:00`, both give the same days). Its counts are assigned
//! to the UTC days the range overlaps, **in proportion to the seconds of overlap** with each
//! day ([`split_range`]). Integer counts are distributed by the **largest-remainder method**
//! ([`distribute`]): every day first gets `floor(count × overlap / span)`, then the units
//! still missing go one each to the days with the largest remainders (ties: earlier day
//! first). The per-report total is therefore always preserved exactly, and the result is
//! deterministic. Each counter of a row (messages, aligned counts, dispositions, …) is split
//! independently with the same weights, so on a split day a sub-count may exceed its parent
//! by one unit; rates computed from rollups are clamped to `0..=1`.
//!
//! Counts of one row above [`MAX_ROW_COUNT`] are clamped to it, and every sum saturates at
//! `u64::MAX`. Degenerate ranges: `end <= begin` puts everything on the day of `begin`; a
//! range longer than [`MAX_SPLIT_DAYS`] (a reporter's clock bug) puts everything on the day
//! of its end.

// Counts come from sender-controlled reports: sums saturate, nothing may wrap or panic.
#![deny(clippy::arithmetic_side_effects)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::input::{Day, DomainInput, ReportKind, SECS_PER_DAY, day_of, day_start};
use crate::net::{canonical_ip, network_of};
use crate::reporter::reporter_key;

/// Ranges longer than this many days are not split (see the module docs).
pub const MAX_SPLIT_DAYS: i64 = 31;

/// Counts of a single input row are clamped to this (2^40, about 10^12 — far above any real
/// report) so that sums over millions of rows cannot overflow.
pub const MAX_ROW_COUNT: u64 = 1 << 40;

fn cap(n: u64) -> u64 {
    n.min(MAX_ROW_COUNT)
}

/// Adds `n` to a running count, saturating at `u64::MAX`: report counts are written by
/// senders, and a wrapped sum would turn a huge count into a small one.
pub(crate) fn bump(total: &mut u64, n: u64) {
    *total = total.saturating_add(n);
}

/// The days a report range overlaps, with the seconds of overlap as weight (all weights > 0).
pub fn split_range(begin: i64, end: i64) -> Vec<(Day, u64)> {
    if end <= begin {
        return vec![(day_of(begin), 1)];
    }
    // `end > begin`, so the range's last second is `end - 1` without underflow.
    let last_second = end.saturating_sub(1);
    let first = begin.div_euclid(SECS_PER_DAY);
    let last = last_second.div_euclid(SECS_PER_DAY);
    if last.saturating_sub(first) >= MAX_SPLIT_DAYS {
        return vec![(day_of(last_second), 1)];
    }
    let mut out = Vec::new();
    for d in first..=last {
        let start = d.saturating_mul(SECS_PER_DAY);
        let lo = begin.max(start);
        let hi = end.min(start.saturating_add(SECS_PER_DAY));
        if hi > lo {
            out.push((
                day_of(start),
                u64::try_from(hi.saturating_sub(lo)).unwrap_or(1),
            ));
        }
    }
    if out.is_empty() {
        out.push((day_of(begin), 1));
    }
    out
}

/// Distributes `count` over `weights` by largest remainder; the result has one entry per
/// weight (same order) and sums to `count`. Zero total weight gives everything to the first.
pub fn distribute(count: u64, weights: &[(Day, u64)]) -> Vec<(Day, u64)> {
    let total: u128 = weights.iter().map(|(_, w)| u128::from(*w)).sum();
    if weights.is_empty() {
        return Vec::new();
    }
    if total == 0 || weights.len() == 1 {
        let mut out: Vec<(Day, u64)> = weights.iter().map(|(d, _)| (*d, 0)).collect();
        out[0].1 = count;
        return out;
    }
    let c = u128::from(count);
    let mut out = Vec::with_capacity(weights.len());
    let mut rems = Vec::with_capacity(weights.len());
    let mut given: u128 = 0;
    for (i, (d, w)) in weights.iter().enumerate() {
        // u64 × u64 fits in u128; `total` is not zero (checked above).
        let num = c.saturating_mul(u128::from(*w));
        let q = num.checked_div(total).unwrap_or(0);
        given = given.saturating_add(q);
        out.push((*d, u64::try_from(q).unwrap_or(u64::MAX)));
        rems.push((num.checked_rem(total).unwrap_or(0), i));
    }
    // Largest remainder first; ties go to the earlier entry.
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let missing = usize::try_from(c.saturating_sub(given)).unwrap_or(0);
    for (_, i) in rems.into_iter().take(missing) {
        bump(&mut out[i].1, 1);
    }
    out
}

/// DMARC message counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DmarcCounts {
    /// Messages.
    pub messages: u64,
    /// DKIM-aligned pass.
    pub dkim_aligned: u64,
    /// SPF-aligned pass.
    pub spf_aligned: u64,
    /// DMARC pass, lower bound: per input row `max(dkim_aligned, spf_aligned)` (the rows do
    /// not say how many messages passed both).
    pub passed: u64,
    /// Disposition none.
    pub disposition_none: u64,
    /// Disposition quarantine.
    pub disposition_quarantine: u64,
    /// Disposition reject.
    pub disposition_reject: u64,
    /// Messages the receiver said were forwarded.
    pub forwarded: u64,
}

impl DmarcCounts {
    /// Adds another count (saturating).
    pub fn add(&mut self, o: &DmarcCounts) {
        bump(&mut self.messages, o.messages);
        bump(&mut self.dkim_aligned, o.dkim_aligned);
        bump(&mut self.spf_aligned, o.spf_aligned);
        bump(&mut self.passed, o.passed);
        bump(&mut self.disposition_none, o.disposition_none);
        bump(&mut self.disposition_quarantine, o.disposition_quarantine);
        bump(&mut self.disposition_reject, o.disposition_reject);
        bump(&mut self.forwarded, o.forwarded);
    }

    /// Share of messages passing DMARC (lower bound), `None` without messages.
    pub fn pass_rate(&self) -> Option<f64> {
        ratio(self.passed, self.messages)
    }
}

/// TLS session counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TlsCounts {
    /// Successful sessions.
    pub successful: u64,
    /// Failed sessions.
    pub failed: u64,
}

impl TlsCounts {
    /// Adds another count (saturating).
    pub fn add(&mut self, o: &TlsCounts) {
        bump(&mut self.successful, o.successful);
        bump(&mut self.failed, o.failed);
    }

    /// All sessions (saturating).
    pub fn total(&self) -> u64 {
        self.successful.saturating_add(self.failed)
    }

    /// Failed / all sessions, `None` without sessions.
    pub fn failure_rate(&self) -> Option<f64> {
        ratio(self.failed, self.total())
    }
}

/// `num / den` clamped to `0..=1`, `None` when `den` is zero.
pub fn ratio(num: u64, den: u64) -> Option<f64> {
    if den == 0 {
        None
    } else {
        Some((num as f64 / den as f64).clamp(0.0, 1.0))
    }
}

/// One day of DMARC data.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DmarcDay {
    /// All messages.
    pub total: DmarcCounts,
    /// By source IP (canonical text).
    pub by_source_ip: BTreeMap<String, DmarcCounts>,
    /// By source network (`/24`, `/48`).
    pub by_source_network: BTreeMap<String, DmarcCounts>,
    /// By reporter key.
    pub by_reporter: BTreeMap<String, DmarcCounts>,
    /// Reporter key → source network → counts.
    pub by_reporter_network: BTreeMap<String, BTreeMap<String, DmarcCounts>>,
}

/// One cell of split TLS failure details.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FailureCell {
    /// Reporter key.
    pub reporter: String,
    /// Policy type as written (lower-cased).
    pub policy_type: String,
    /// Result type as written (lower-cased).
    pub result_type: String,
    /// Receiving MX host name (lower-cased, no trailing dot), or `receiving-ip`, or `unknown`.
    pub mx: String,
    /// Sending MTA IP (canonical) when reported.
    pub sending_ip: Option<String>,
    /// Its network.
    pub sending_network: Option<String>,
    /// `receiving-ip` (canonical) when reported: the address the sender actually reached.
    pub receiving_ip: Option<String>,
    /// Failed sessions on this day.
    pub failed: u64,
}

/// One day of TLS data.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TlsDay {
    /// All sessions.
    pub total: TlsCounts,
    /// By reporter key.
    pub by_reporter: BTreeMap<String, TlsCounts>,
    /// By policy type.
    pub by_policy_type: BTreeMap<String, TlsCounts>,
    /// Failed sessions (failure details) by result type. Result types are non-exclusive: the
    /// sum may exceed `total.failed`.
    pub failures_by_result_type: BTreeMap<String, u64>,
    /// Failure details by receiving MX host.
    pub failures_by_mx: BTreeMap<String, u64>,
    /// Failure details by sending-MTA network.
    pub failures_by_sending_network: BTreeMap<String, u64>,
    /// Every failure detail, split to this day and merged by key.
    pub failures: Vec<FailureCell>,
}

/// Which days a reporter sent reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReporterPresence {
    /// Organisation names as written.
    pub names: BTreeSet<String>,
    /// Days covered by a DMARC report.
    pub dmarc_days: BTreeSet<Day>,
    /// Days covered by a TLS report.
    pub tls_days: BTreeSet<Day>,
    /// Days on which a DMARC report of it reached us (when the caller said).
    pub dmarc_received: BTreeSet<Day>,
    /// Days on which a TLS report of it reached us (when the caller said).
    pub tls_received: BTreeSet<Day>,
}

impl ReporterPresence {
    /// The days on which reports of one kind reached us.
    pub fn received(&self, kind: ReportKind) -> &BTreeSet<Day> {
        match kind {
            ReportKind::Dmarc => &self.dmarc_received,
            ReportKind::Tls => &self.tls_received,
        }
    }

    /// The days of one report kind.
    pub fn days(&self, kind: ReportKind) -> &BTreeSet<Day> {
        match kind {
            ReportKind::Dmarc => &self.dmarc_days,
            ReportKind::Tls => &self.tls_days,
        }
    }
}

/// Per-day aggregates of one domain.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Rollup {
    /// DMARC by day.
    pub dmarc: BTreeMap<Day, DmarcDay>,
    /// TLS by day.
    pub tls: BTreeMap<Day, TlsDay>,
    /// Reporter key → presence.
    pub reporters: BTreeMap<String, ReporterPresence>,
    /// Earliest day with any data or report.
    pub first_day: Option<Day>,
    /// Latest day with any data or report.
    pub last_day: Option<Day>,
}

/// Lower-cased host without a trailing dot.
pub(crate) fn norm_host(h: &str) -> String {
    h.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The value under `key`, inserted as default first if missing (the key is cloned only
/// then; `entry` would clone it on every call).
fn slot<'a, V: Default>(map: &'a mut BTreeMap<String, V>, key: &str) -> &'a mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

/// Records a reporter's name as written (trimmed).
fn note_name(names: &mut BTreeSet<String>, name: &str) {
    let name = name.trim();
    if !names.contains(name) {
        names.insert(name.to_owned());
    }
}

/// Reporter keys and canonical source addresses, derived once per distinct input text.
#[derive(Default)]
struct Keys {
    reporters: HashMap<String, String>,
    sources: HashMap<String, (String, String)>,
}

impl Keys {
    fn reporter(&mut self, name: &str) -> String {
        if let Some(k) = self.reporters.get(name) {
            return k.clone();
        }
        let k = reporter_key(name);
        self.reporters.insert(name.to_owned(), k.clone());
        k
    }

    /// Canonical address and network of a source IP as written.
    fn source(&mut self, ip: &str) -> (String, String) {
        if let Some(v) = self.sources.get(ip) {
            return v.clone();
        }
        let v = (canonical_ip(ip), network_of(ip));
        self.sources.insert(ip.to_owned(), v.clone());
        v
    }
}

fn mark_days(days: &mut BTreeSet<Day>, begin: i64, end: i64) {
    for (d, _) in split_range(begin, end) {
        days.insert(d);
    }
}

impl Rollup {
    /// Builds the rollup of everything in `input`.
    pub fn build(input: &DomainInput) -> Rollup {
        let mut r = Rollup::default();
        // Many rows share a reporter and a source: derive each key once per name.
        let mut keys = Keys::default();
        for row in &input.dmarc {
            let w = split_range(row.begin, row.end);
            let key = keys.reporter(&row.reporter);
            let (ip, net) = keys.source(&row.source_ip);
            let whole = DmarcCounts {
                messages: cap(row.messages),
                dkim_aligned: cap(row.dkim_aligned),
                spf_aligned: cap(row.spf_aligned),
                passed: cap(row.dkim_aligned.max(row.spf_aligned)),
                disposition_none: cap(row.disposition_none),
                disposition_quarantine: cap(row.disposition_quarantine),
                disposition_reject: cap(row.disposition_reject),
                forwarded: cap(row.forwarded),
            };
            let mut add = |day: Day, c: &DmarcCounts| {
                let d = r.dmarc.entry(day).or_default();
                d.total.add(c);
                slot(&mut d.by_source_ip, &ip).add(c);
                slot(&mut d.by_source_network, &net).add(c);
                slot(&mut d.by_reporter, &key).add(c);
                slot(slot(&mut d.by_reporter_network, &key), &net).add(c);
            };
            if let [(day, _)] = w.as_slice() {
                // The common case: a report of one UTC day, nothing to split.
                add(*day, &whole);
            } else {
                let parts = [
                    distribute(whole.messages, &w),
                    distribute(whole.dkim_aligned, &w),
                    distribute(whole.spf_aligned, &w),
                    distribute(whole.passed, &w),
                    distribute(whole.disposition_none, &w),
                    distribute(whole.disposition_quarantine, &w),
                    distribute(whole.disposition_reject, &w),
                    distribute(whole.forwarded, &w),
                ];
                for (i, (day, _)) in w.iter().enumerate() {
                    let c = DmarcCounts {
                        messages: parts[0][i].1,
                        dkim_aligned: parts[1][i].1,
                        spf_aligned: parts[2][i].1,
                        passed: parts[3][i].1,
                        disposition_none: parts[4][i].1,
                        disposition_quarantine: parts[5][i].1,
                        disposition_reject: parts[6][i].1,
                        forwarded: parts[7][i].1,
                    };
                    add(*day, &c);
                }
            }
            let p = slot(&mut r.reporters, &key);
            note_name(&mut p.names, &row.reporter);
            p.dmarc_days.extend(w.iter().map(|(d, _)| *d));
        }
        for row in &input.tls {
            let w = split_range(row.begin, row.end);
            let key = keys.reporter(&row.reporter);
            let pt = row.policy_type.trim().to_ascii_lowercase();
            let ok = distribute(cap(row.successful), &w);
            let bad = distribute(cap(row.failed), &w);
            for (i, (day, _)) in w.iter().enumerate() {
                let c = TlsCounts {
                    successful: ok[i].1,
                    failed: bad[i].1,
                };
                let d = r.tls.entry(*day).or_default();
                d.total.add(&c);
                slot(&mut d.by_reporter, &key).add(&c);
                slot(&mut d.by_policy_type, &pt).add(&c);
            }
            let p = slot(&mut r.reporters, &key);
            note_name(&mut p.names, &row.reporter);
            p.tls_days.extend(w.iter().map(|(d, _)| *d));
        }
        let mut cells: BTreeMap<Day, BTreeMap<FailureCell, u64>> = BTreeMap::new();
        for row in &input.tls_failures {
            let w = split_range(row.begin, row.end);
            let key = keys.reporter(&row.reporter);
            let mx = row
                .receiving_mx_hostname
                .as_deref()
                .map(norm_host)
                .filter(|h| !h.is_empty())
                .or_else(|| row.receiving_ip.as_deref().map(canonical_ip))
                .unwrap_or_else(|| "unknown".to_owned());
            let sending_ip = row.sending_mta_ip.as_deref().map(canonical_ip);
            let proto = FailureCell {
                reporter: key.clone(),
                policy_type: row.policy_type.trim().to_ascii_lowercase(),
                result_type: row.result_type.trim().to_ascii_lowercase(),
                mx,
                sending_network: row.sending_mta_ip.as_deref().map(network_of),
                sending_ip,
                receiving_ip: row.receiving_ip.as_deref().map(canonical_ip),
                failed: 0,
            };
            for (day, n) in distribute(cap(row.failed), &w) {
                if n > 0 {
                    bump(
                        cells
                            .entry(day)
                            .or_default()
                            .entry(proto.clone())
                            .or_default(),
                        n,
                    );
                }
            }
            let p = slot(&mut r.reporters, &key);
            note_name(&mut p.names, &row.reporter);
            p.tls_days.extend(w.iter().map(|(d, _)| *d));
        }
        for (day, map) in cells {
            let d = r.tls.entry(day).or_default();
            for (mut cell, n) in map {
                cell.failed = n;
                bump(
                    d.failures_by_result_type
                        .entry(cell.result_type.clone())
                        .or_default(),
                    n,
                );
                bump(d.failures_by_mx.entry(cell.mx.clone()).or_default(), n);
                if let Some(net) = &cell.sending_network {
                    bump(
                        d.failures_by_sending_network
                            .entry(net.clone())
                            .or_default(),
                        n,
                    );
                }
                d.failures.push(cell);
            }
        }
        for seen in &input.reports {
            let key = keys.reporter(&seen.reporter);
            let p = slot(&mut r.reporters, &key);
            note_name(&mut p.names, &seen.reporter);
            let (days, received) = match seen.kind {
                ReportKind::Dmarc => (&mut p.dmarc_days, &mut p.dmarc_received),
                ReportKind::Tls => (&mut p.tls_days, &mut p.tls_received),
            };
            mark_days(days, seen.begin, seen.end);
            if let Some(t) = seen.received {
                received.insert(day_of(t));
            }
        }
        let all_days = r.dmarc.keys().chain(r.tls.keys()).chain(
            r.reporters
                .values()
                .flat_map(|p| p.dmarc_days.iter().chain(&p.tls_days)),
        );
        r.first_day = all_days.clone().min().copied();
        r.last_day = all_days.max().copied();
        r
    }

    /// DMARC counts of `reporter` summed over `from..=to`.
    pub fn dmarc_reporter(&self, reporter: &str, from: Day, to: Day) -> DmarcCounts {
        let mut c = DmarcCounts::default();
        for (_, d) in self.dmarc.range(from..=to) {
            if let Some(x) = d.by_reporter.get(reporter) {
                c.add(x);
            }
        }
        c
    }

    /// TLS counts of `reporter` summed over `from..=to`.
    pub fn tls_reporter(&self, reporter: &str, from: Day, to: Day) -> TlsCounts {
        let mut c = TlsCounts::default();
        for (_, d) in self.tls.range(from..=to) {
            if let Some(x) = d.by_reporter.get(reporter) {
                c.add(x);
            }
        }
        c
    }

    /// Failure cells of `from..=to` with their day.
    pub fn failures(&self, from: Day, to: Day) -> impl Iterator<Item = (Day, &FailureCell)> {
        self.tls
            .range(from..=to)
            .flat_map(|(d, t)| t.failures.iter().map(move |c| (*d, c)))
    }

    /// True when any report or row of any kind covers a day in `from..=to`.
    pub fn any_data(&self, from: Day, to: Day) -> bool {
        self.dmarc.range(from..=to).next().is_some()
            || self.tls.range(from..=to).next().is_some()
            || self.reporters.values().any(|p| {
                p.dmarc_days.range(from..=to).next().is_some()
                    || p.tls_days.range(from..=to).next().is_some()
            })
    }
}

/// Midnight-aligned helper used by tests and the testkit: `[day, day + 1)`.
pub fn day_range(day: Day) -> (i64, i64) {
    (day_start(day), day_start(day).saturating_add(SECS_PER_DAY))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{DmarcRow, TlsFailureRow, TlsPolicyRow};
    use proptest::prelude::*;

    #[test]
    fn one_day_report_stays_on_its_day() {
        let (b, e) = day_range(100);
        assert_eq!(split_range(b, e), vec![(100, 86_400)]);
        // 23:59:59 end.
        assert_eq!(split_range(b, e - 1), vec![(100, 86_399)]);
    }

    #[test]
    fn two_day_report_splits_by_overlap() {
        // 18:00 day 100 → 06:00 day 101 + 24h: 6h on 100, 24h on 101, 6h on 102.
        let b = day_start(100) + 18 * 3600;
        let e = day_start(102) + 6 * 3600;
        let w = split_range(b, e);
        assert_eq!(w, vec![(100, 6 * 3600), (101, 24 * 3600), (102, 6 * 3600)]);
        assert_eq!(distribute(12, &w), vec![(100, 2), (101, 8), (102, 2)]);
        // 10 = 1.67 + 6.67 + 1.67: floors 1, 6, 1; two units left, remainders .67 each,
        // ties go to the earlier days.
        assert_eq!(distribute(10, &w), vec![(100, 2), (101, 7), (102, 1)]);
    }

    #[test]
    fn degenerate_ranges() {
        assert_eq!(
            split_range(day_start(5) + 10, day_start(5) + 10),
            vec![(5, 1)]
        );
        assert_eq!(split_range(day_start(5), day_start(3)), vec![(5, 1)]);
        let long = split_range(day_start(0), day_start(400));
        assert_eq!(long, vec![(399, 1)]);
        assert!(distribute(7, &[]).is_empty());
        assert_eq!(distribute(7, &[(1, 0), (2, 0)]), vec![(1, 7), (2, 0)]);
    }

    #[test]
    fn rollup_aggregates_dmarc_and_tls() {
        let (b, e) = day_range(10);
        let input = DomainInput {
            domain: "example.com".into(),
            dmarc: vec![
                DmarcRow {
                    begin: b,
                    end: e,
                    reporter: "google.com".into(),
                    source_ip: "192.0.2.1".into(),
                    messages: 10,
                    dkim_aligned: 9,
                    spf_aligned: 10,
                    disposition_none: 10,
                    ..Default::default()
                },
                DmarcRow {
                    begin: b,
                    end: e,
                    reporter: "Yahoo".into(),
                    source_ip: "192.0.2.2".into(),
                    messages: 4,
                    dkim_aligned: 0,
                    spf_aligned: 1,
                    disposition_reject: 4,
                    ..Default::default()
                },
            ],
            tls: vec![TlsPolicyRow {
                begin: b,
                end: e,
                reporter: "Google Inc.".into(),
                policy_type: "sts".into(),
                successful: 90,
                failed: 10,
                ..Default::default()
            }],
            tls_failures: vec![TlsFailureRow {
                begin: b,
                end: e,
                reporter: "Google Inc.".into(),
                policy_type: "sts".into(),
                result_type: "certificate-expired".into(),
                sending_mta_ip: Some("209.85.1.2".into()),
                receiving_mx_hostname: Some("MX1.Example.com.".into()),
                failed: 10,
                ..Default::default()
            }],
            ..Default::default()
        };
        let r = Rollup::build(&input);
        let d = &r.dmarc[&10];
        assert_eq!(d.total.messages, 14);
        assert_eq!(d.total.passed, 11);
        assert_eq!(d.total.disposition_reject, 4);
        assert_eq!(d.by_source_network["192.0.2.0/24"].messages, 14);
        assert_eq!(d.by_reporter["google"].messages, 10);
        let t = &r.tls[&10];
        assert_eq!(
            t.by_reporter["google"],
            TlsCounts {
                successful: 90,
                failed: 10
            }
        );
        assert_eq!(t.failures_by_mx["mx1.example.com"], 10);
        assert_eq!(t.failures_by_sending_network["209.85.1.0/24"], 10);
        assert_eq!(t.failures_by_result_type["certificate-expired"], 10);
        let g = &r.reporters["google"];
        assert!(g.dmarc_days.contains(&10) && g.tls_days.contains(&10));
        assert_eq!(g.names.len(), 2);
        assert_eq!((r.first_day, r.last_day), (Some(10), Some(10)));
    }

    /// Two forged reports with failure counts near `u64::MAX` must not wrap to a small
    /// total: sums saturate, and a rollup clamps each row first.
    #[test]
    fn counts_near_u64_max_saturate_instead_of_wrapping() {
        let near = u64::MAX - 5;
        let mut t = TlsCounts {
            successful: 0,
            failed: near,
        };
        t.add(&TlsCounts {
            successful: near,
            failed: near,
        });
        assert_eq!(t.failed, u64::MAX);
        assert_eq!(t.total(), u64::MAX);
        let mut d = DmarcCounts {
            messages: near,
            ..Default::default()
        };
        d.add(&DmarcCounts {
            messages: near,
            ..Default::default()
        });
        assert_eq!(d.messages, u64::MAX);

        let (b, e) = day_range(10);
        let policy = TlsPolicyRow {
            begin: b,
            end: e,
            reporter: "Forger".into(),
            policy_type: "sts".into(),
            failed: near,
            ..Default::default()
        };
        let failure = TlsFailureRow {
            begin: b,
            end: e,
            reporter: "Forger".into(),
            policy_type: "sts".into(),
            result_type: "certificate-expired".into(),
            receiving_mx_hostname: Some("mx.example.com".into()),
            failed: near,
            ..Default::default()
        };
        let input = DomainInput {
            domain: "example.com".into(),
            tls: vec![policy.clone(), policy],
            tls_failures: vec![failure.clone(), failure],
            ..Default::default()
        };
        let r = Rollup::build(&input);
        let day = &r.tls[&10];
        assert_eq!(day.total.failed, 2 * MAX_ROW_COUNT);
        assert_eq!(day.failures_by_mx["mx.example.com"], 2 * MAX_ROW_COUNT);
        assert_eq!(r.tls_reporter("forger", 10, 10).failed, 2 * MAX_ROW_COUNT);
    }

    proptest! {
        #[test]
        fn split_preserves_totals(
            begin in -1_000_000i64..10_000_000_000,
            len in -100_000i64..3_000_000,
            count in 0u64..u64::MAX / 2,
        ) {
            let w = split_range(begin, begin.saturating_add(len));
            prop_assert!(!w.is_empty());
            prop_assert!(w.iter().all(|(_, x)| *x > 0));
            let parts = distribute(count, &w);
            prop_assert_eq!(parts.len(), w.len());
            prop_assert_eq!(parts.iter().map(|(_, n)| u128::from(*n)).sum::<u128>(), u128::from(count));
            // Days are consecutive and ascending.
            for pair in w.windows(2) {
                prop_assert_eq!(pair[1].0, pair[0].0.saturating_add(1));
            }
        }

        #[test]
        fn distribute_is_within_one_of_quota(count in 0u64..1_000_000, ws in proptest::collection::vec(1u64..100_000, 1..10)) {
            let weights: Vec<(Day, u64)> = ws.iter().enumerate().map(|(i, w)| (i as Day, *w)).collect();
            let total: f64 = ws.iter().map(|w| *w as f64).sum();
            for ((_, n), w) in distribute(count, &weights).iter().zip(&ws) {
                let quota = count as f64 * *w as f64 / total;
                prop_assert!((*n as f64 - quota).abs() < 1.0 + 1e-6);
            }
        }
    }
}
