//! The anomaly detectors, one module each, over a shared read-only [`Ctx`].

use std::collections::{BTreeMap, BTreeSet};

use crate::correlation::{ProviderCorrelation, SourceIndex, baseline_range};
use crate::finding::Finding;
use crate::input::{Day, DomainInput, Window};
use crate::rollup::{FailureCell, Rollup, TlsCounts};
use crate::thresholds::Thresholds;

pub(crate) mod cert_cluster;
pub(crate) mod dane;
pub(crate) mod dmarc;
pub(crate) mod low_rate;
pub(crate) mod mta_sts;
pub(crate) mod no_data;
pub(crate) mod reporter_silent;
pub(crate) mod single_provider;

/// Certificate / negotiation result types of the certificate cluster detector.
pub(crate) const CERT_TYPES: &[&str] = &[
    "certificate-expired",
    "certificate-host-mismatch",
    "certificate-not-trusted",
    "validation-failure",
];
/// MTA-STS policy result types.
pub(crate) const STS_TYPES: &[&str] = &[
    "sts-policy-fetch-error",
    "sts-policy-invalid",
    "sts-webpki-invalid",
];
/// DANE result types.
pub(crate) const DANE_TYPES: &[&str] = &["tlsa-invalid", "dnssec-invalid", "dane-required"];
/// Result types of the low-rate negotiation detector.
pub(crate) const LOW_RATE_TYPES: &[&str] = &["starttls-not-supported", "validation-failure"];

/// Everything a detector reads.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub input: &'a DomainInput,
    pub domain: &'a str,
    pub window: Window,
    pub th: &'a Thresholds,
    pub rollup: &'a Rollup,
    /// Baseline days actually in the input: `bfrom..=bto`, `bdays` of them (0: none).
    pub bfrom: Day,
    pub bto: Day,
    pub bdays: u32,
    /// At least `min_history_days` baseline days have data.
    pub history: bool,
    pub correlation: &'a [ProviderCorrelation],
    pub sources: SourceIndex,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        input: &'a DomainInput,
        window: Window,
        th: &'a Thresholds,
        rollup: &'a Rollup,
        correlation: &'a [ProviderCorrelation],
    ) -> Ctx<'a> {
        let (bfrom, bto, bdays) = baseline_range(rollup, window, th);
        let data_days = if bdays == 0 {
            0
        } else {
            let days: BTreeSet<Day> = rollup
                .dmarc
                .range(bfrom..=bto)
                .map(|(d, _)| *d)
                .chain(rollup.tls.range(bfrom..=bto).map(|(d, _)| *d))
                .collect();
            days.len()
        };
        let history = bdays > 0
            && data_days >= usize::try_from(th.min_history_days.max(1)).unwrap_or(usize::MAX);
        Ctx {
            input,
            domain: &input.domain,
            window,
            th,
            rollup,
            bfrom,
            bto,
            bdays,
            history,
            correlation,
            sources: SourceIndex::build(input, rollup, bfrom, window.end),
        }
    }

    /// TLS counts per reporter in the window (reporters with sessions only).
    pub(crate) fn window_tls_reporters(&self) -> BTreeMap<String, TlsCounts> {
        let mut m: BTreeMap<String, TlsCounts> = BTreeMap::new();
        for (_, d) in self.rollup.tls.range(self.window.start..=self.window.end) {
            for (k, c) in &d.by_reporter {
                m.entry(k.clone()).or_default().add(c);
            }
        }
        m.retain(|_, c| c.total() > 0);
        m
    }

    /// Window failure cells whose result type is in `types`.
    pub(crate) fn window_cells<'s>(
        &'s self,
        types: &'s [&'s str],
    ) -> impl Iterator<Item = (Day, &'s FailureCell)> + 's {
        self.rollup
            .failures(self.window.start, self.window.end)
            .filter(move |(_, c)| types.contains(&c.result_type.as_str()))
    }

    /// A readable name of a reporter key: the organisation names as written.
    pub(crate) fn reporter_name(&self, key: &str) -> String {
        match self.rollup.reporters.get(key) {
            Some(p) if !p.names.is_empty() => {
                p.names.iter().cloned().collect::<Vec<_>>().join(" / ")
            }
            _ => key.to_owned(),
        }
    }

    pub(crate) fn provider(&self, key: &str) -> Option<&ProviderCorrelation> {
        self.correlation.iter().find(|p| p.reporter == key)
    }

    /// First day of the run of consecutive days (back into the baseline) on which `pred`
    /// holds, starting from `day`.
    pub(crate) fn run_start(&self, day: Day, pred: impl Fn(Day) -> bool) -> Day {
        let mut d = day;
        let floor = self.bfrom.min(self.window.start);
        while d > floor && pred(d - 1) {
            d -= 1;
        }
        d
    }

    /// The first day of a change that is still going on, when it began before the window
    /// but within `recent_change_days` of the window's last day; `None` when it began in the
    /// window or longer ago (then it is the domain's new normal). Walks back from the day
    /// before the window while `looks_changed` says `Some(true)`; `None` (no data that day)
    /// is stepped over, at most `MAX_GAP` days in a row. Detectors judge such a change
    /// against the baseline days before its start ([`Ctx::baseline_before`]).
    pub(crate) fn recent_change_start(
        &self,
        looks_changed: impl Fn(Day) -> Option<bool>,
    ) -> Option<Day> {
        const MAX_GAP: u32 = 3;
        let limit = self
            .window
            .end
            .saturating_sub(Day::try_from(self.th.recent_change_days).unwrap_or(0))
            .saturating_add(1);
        if self.bdays == 0 {
            return None;
        }
        let floor = self.bfrom.max(limit);
        let mut start = None;
        let mut gap = 0;
        let mut d = self.window.start.saturating_sub(1);
        while d >= floor {
            match looks_changed(d) {
                Some(true) => {
                    start = Some(d);
                    gap = 0;
                }
                // The change began after a day that looked normal, or after days without
                // data: recent.
                Some(false) => return start,
                None => {
                    gap += 1;
                    if gap > MAX_GAP {
                        return start;
                    }
                }
            }
            d -= 1;
        }
        // Still changed as far back as we may look: older than `recent_change_days` (or
        // older than the history), so it is the new normal.
        None
    }

    /// The baseline days before `change_start` (all of them without one): `(from, to)`,
    /// empty (`from > to`) when nothing is left.
    pub(crate) fn baseline_before(&self, change_start: Option<Day>) -> (Day, Day) {
        match change_start {
            Some(s) => (self.bfrom, s.saturating_sub(1).min(self.bto)),
            None => (self.bfrom, self.bto),
        }
    }

    /// Sum of failed sessions of cells matching `f` on `day`.
    pub(crate) fn day_failures(&self, day: Day, f: impl Fn(&FailureCell) -> bool) -> u64 {
        self.rollup.tls.get(&day).map_or(0, |t| {
            t.failures
                .iter()
                .filter(|c| f(c))
                .map(|c| c.failed)
                .fold(0u64, u64::saturating_add)
        })
    }
}

/// Runs every detector.
pub(crate) fn run_all(ctx: &Ctx<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(f) = no_data::detect(ctx) {
        // Nothing arrived: every other detector would only echo that.
        out.push(f);
        return out;
    }
    let cert = cert_cluster::detect(ctx);
    let cluster_mx: BTreeSet<String> = cert
        .iter()
        .filter_map(|f| {
            f.evidence
                .get("mx_host")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
        .collect();
    out.extend(cert);
    out.extend(single_provider::detect(ctx));
    out.extend(mta_sts::detect(ctx));
    out.extend(low_rate::detect(ctx, &cluster_mx));
    out.extend(dane::detect(ctx));
    out.extend(reporter_silent::detect(ctx));
    out.extend(dmarc::detect(ctx));
    out
}
