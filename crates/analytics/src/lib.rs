//! Analytics core of sealwatch: per-day rollups, TLS-RPT × DMARC correlation, anomaly
//! detectors and the anomaly lifecycle, as pure functions over plain data.
//!
//! # API
//!
//! ```text
//! analyze(&DomainInput, Window, &Thresholds) -> Analysis { rollup, correlation, findings }
//! reconcile(&[ExistingAnomaly], Vec<Finding>, today: Day, quiet_days: u32) -> Vec<Change>
//! mx_hosts_to_resolve(&DomainInput) -> Vec<String>   // then fill DomainInput::mx_addresses
//! ```
//!
//! The caller (the store side) fills a [`DomainInput`] with one domain's DMARC rows, TLS
//! policy rows, TLS failure details and the list of reports received — normally the
//! `Thresholds::baseline_days` before the window plus the window itself — and passes the days
//! to judge as a [`Window`] (typically the last 7 days ending "today"; this crate never reads
//! the clock). [`analyze`] returns the per-day [`Rollup`], one [`ProviderCorrelation`] per
//! reporting organisation and the [`Finding`]s. The caller then loads the stored anomalies of
//! the domain and applies what [`reconcile`] returns ([`Change`]).
//!
//! Detectors (module `detect`, one file each; thresholds in [`Thresholds`]):
//! `tls-certificate-cluster`, `tls-single-provider`, `mta-sts-policy`,
//! `tls-low-rate-negotiation`, `dane`, `reporter-silent`, `dmarc-auth-drop`,
//! `dmarc-new-unauthenticated-source`, `no-data` ([`AnomalyKind::as_str`]).
//!
//! # Invariants
//!
//! - **Pure and deterministic**: no IO, no clock, no randomness, no global state, no async;
//!   the same input gives the same output (ordered maps everywhere; findings are sorted).
//! - **Never panics on data**: any input — negative or reversed date ranges, absurd counts,
//!   unparseable IPs, unknown result types — yields a result.
//! - **Days are UTC** ([`Day`] = days since 1970-01-01); a report spanning several days is split
//!   proportionally with totals preserved ([`rollup`] documents the rounding).
//! - **History is the input**: the baseline is the days before the window that the input
//!   contains (at most `baseline_days`); with fewer than `min_history_days` days of data,
//!   detectors fall back to absolute defaults.
//! - **Fingerprints are stable**: `kind:domain:subject` without dates; the same ongoing
//!   problem has the same fingerprint every day.
//! - Depends only on `serde` and `serde_json`.

mod correlation;
mod detect;
mod finding;
mod input;
mod lifecycle;
mod net;
mod reporter;
pub mod rollup;
mod thresholds;

pub mod testkit;

use serde::Serialize;

pub use correlation::{
    ProviderCorrelation, ProviderDay, ProviderRelationship, SenderLink, SourceMatch, correlate,
};
pub use finding::{AnomalyKind, Explanation, Finding, Severity, fingerprint};
pub use input::{
    Day, DmarcRow, DomainInput, ReportKind, ReportSeen, SECS_PER_DAY, TlsFailureRow, TlsPolicyRow,
    Window, day_from_ymd, day_of, day_start, format_day,
};
pub use lifecycle::{Change, ExistingAnomaly, Status, reconcile};
pub use net::{canonical_ip, network_of};
pub use reporter::reporter_key;
pub use rollup::Rollup;
pub use thresholds::Thresholds;

/// Result of [`analyze`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    /// Per-day aggregates of the whole input.
    pub rollup: Rollup,
    /// One entry per reporting organisation (reporter key order).
    pub correlation: Vec<ProviderCorrelation>,
    /// Findings, most severe first, then by kind and fingerprint.
    pub findings: Vec<Finding>,
}

/// Analyses one domain over `window` (inclusive days; `end < start` is read as the single day
/// `start`). Days of the input before the window are its history.
pub fn analyze(input: &DomainInput, window: Window, thresholds: &Thresholds) -> Analysis {
    let window = window.normalized();
    let rollup = Rollup::build(input);
    let correlation = correlate(input, &rollup, window, thresholds);
    let ctx = detect::Ctx::new(input, window, thresholds, &rollup, &correlation);
    let findings = findings_of(&ctx);
    drop(ctx);
    Analysis {
        rollup,
        correlation,
        findings,
    }
}

/// The findings of [`analyze`] for each of `windows`, in order, from one rollup of the input
/// (a catch-up over many days costs one rollup, not one per day). Each window is judged only
/// on the days up to its end: days of the input after it are not looked at.
pub fn analyze_days(
    input: &DomainInput,
    windows: &[Window],
    thresholds: &Thresholds,
) -> Vec<Vec<Finding>> {
    let rollup = Rollup::build(input);
    windows
        .iter()
        .map(|w| {
            let window = w.normalized();
            let correlation = correlate(input, &rollup, window, thresholds);
            let ctx = detect::Ctx::new(input, window, thresholds, &rollup, &correlation);
            findings_of(&ctx)
        })
        .collect()
}

/// The MX host names whose addresses [`DomainInput::mx_addresses`] should hold: those named
/// by failures of the low-rate detector's result types that say which address they reached
/// (`receiving-ip`), lower case without the trailing dot, sorted, each once.
pub fn mx_hosts_to_resolve(input: &DomainInput) -> Vec<String> {
    input
        .tls_failures
        .iter()
        .filter(|f| {
            f.receiving_ip.is_some()
                && detect::LOW_RATE_TYPES
                    .contains(&f.result_type.trim().to_ascii_lowercase().as_str())
        })
        .filter_map(|f| f.receiving_mx_hostname.as_deref())
        .map(rollup::norm_host)
        .filter(|h| !h.is_empty())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Every detector's findings, most severe first, one per fingerprint.
fn findings_of(ctx: &detect::Ctx<'_>) -> Vec<Finding> {
    let mut findings = detect::run_all(ctx);
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.kind.cmp(&b.kind))
            .then_with(|| a.fingerprint.cmp(&b.fingerprint))
    });
    findings.dedup_by(|a, b| a.fingerprint == b.fingerprint);
    findings
}
