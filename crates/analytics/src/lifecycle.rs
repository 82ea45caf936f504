//! Anomaly lifecycle, pure: today's findings against the stored anomalies.
//!
//! Matching is by fingerprint. For each finding (the first of several with the same
//! fingerprint wins):
//!
//! | stored anomaly with that fingerprint | change |
//! |---|---|
//! | `open` or `acknowledged` | [`Change::Update`] (status kept by the store) |
//! | `dismissed` | [`Change::Suppressed`] — a dismissal is a verdict "false positive" and keeps the fingerprint quiet until staff un-dismiss it |
//! | `resolved` | [`Change::Reopen`] |
//! | none | [`Change::Open`] |
//!
//! When several stored anomalies share a fingerprint, an open/acknowledged one wins over a
//! dismissed one, which wins over a resolved one; among equals the most recently seen, then
//! the highest id. Every `open`/`acknowledged` anomaly without a finding today whose
//! `last_seen` is at least `quiet_days` before `today` gets [`Change::AutoResolve`].
//!
//! The output is deterministic: changes for findings in finding order, then auto-resolves by
//! id. Applying the same input twice gives the same changes (`Update` instead of `Open` once
//! the store has recorded the first run), so the analysis job can run as often as wanted.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::finding::Finding;
use crate::input::Day;

/// Stored status of an anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// New, nobody looked at it.
    Open,
    /// Staff saw it; still a live problem.
    Acknowledged,
    /// Over (by staff or by the quiet period).
    Resolved,
    /// A false positive; suppresses its fingerprint.
    Dismissed,
}

impl Status {
    /// `open`, `acknowledged`, `resolved`, `dismissed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Acknowledged => "acknowledged",
            Status::Resolved => "resolved",
            Status::Dismissed => "dismissed",
        }
    }

    /// Parses [`Status::as_str`] values.
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "open" => Some(Status::Open),
            "acknowledged" => Some(Status::Acknowledged),
            "resolved" => Some(Status::Resolved),
            "dismissed" => Some(Status::Dismissed),
            _ => None,
        }
    }

    fn rank(self) -> u8 {
        match self {
            Status::Open | Status::Acknowledged => 3,
            Status::Dismissed => 2,
            Status::Resolved => 1,
        }
    }
}

/// What the store knows of an anomaly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExistingAnomaly {
    /// Row id.
    pub id: i64,
    /// Fingerprint.
    pub fingerprint: String,
    /// Status.
    pub status: Status,
    /// Last day a finding matched it.
    pub last_seen: Day,
}

/// What the store should do.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Insert a new open anomaly.
    Open(Finding),
    /// Refresh an open/acknowledged anomaly (evidence, severity, window, `last_seen = today`).
    Update {
        /// Row id.
        id: i64,
        /// Today's finding.
        finding: Finding,
    },
    /// A resolved anomaly is back: set it open again and refresh it.
    Reopen {
        /// Row id.
        id: i64,
        /// Today's finding.
        finding: Finding,
    },
    /// Quiet for `quiet_days`: set resolved.
    AutoResolve {
        /// Row id.
        id: i64,
    },
    /// The problem is still there but was dismissed: record nothing (or bump `last_seen`).
    Suppressed {
        /// Row id.
        id: i64,
        /// Fingerprint.
        fingerprint: String,
    },
}

/// Reconciles today's findings with the stored anomalies. See the module docs.
pub fn reconcile(
    existing: &[ExistingAnomaly],
    findings: Vec<Finding>,
    today: Day,
    quiet_days: u32,
) -> Vec<Change> {
    let mut best: BTreeMap<&str, &ExistingAnomaly> = BTreeMap::new();
    for e in existing {
        let slot = best.entry(e.fingerprint.as_str()).or_insert(e);
        let key = |a: &ExistingAnomaly| (a.status.rank(), a.last_seen, a.id);
        if key(e) > key(slot) {
            *slot = e;
        }
    }
    let mut out = Vec::new();
    let mut matched: BTreeSet<String> = BTreeSet::new();
    for f in findings {
        if !matched.insert(f.fingerprint.clone()) {
            continue;
        }
        match best.get(f.fingerprint.as_str()) {
            None => out.push(Change::Open(f)),
            Some(e) => match e.status {
                Status::Open | Status::Acknowledged => out.push(Change::Update {
                    id: e.id,
                    finding: f,
                }),
                Status::Resolved => out.push(Change::Reopen {
                    id: e.id,
                    finding: f,
                }),
                Status::Dismissed => out.push(Change::Suppressed {
                    id: e.id,
                    fingerprint: f.fingerprint,
                }),
            },
        }
    }
    let mut resolve: Vec<i64> = existing
        .iter()
        .filter(|e| matches!(e.status, Status::Open | Status::Acknowledged))
        .filter(|e| !matched.contains(&e.fingerprint))
        .filter(|e| i64::from(today) - i64::from(e.last_seen) >= i64::from(quiet_days))
        .map(|e| e.id)
        .collect();
    resolve.sort_unstable();
    resolve.dedup();
    out.extend(resolve.into_iter().map(|id| Change::AutoResolve { id }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{AnomalyKind, Explanation, Severity};

    fn finding(fp: &str) -> Finding {
        Finding {
            kind: AnomalyKind::Dane,
            severity: Severity::Warning,
            domain: "example.com".into(),
            window_start: 1,
            window_end: 2,
            evidence: serde_json::json!({}),
            confidence: 0.5,
            fingerprint: fp.into(),
            summary: String::new(),
            explanation: Explanation {
                what_happened: String::new(),
                what_it_means: String::new(),
                what_to_do: String::new(),
                who_fixes_it: String::new(),
            },
        }
    }

    fn existing(id: i64, fp: &str, status: Status, last_seen: Day) -> ExistingAnomaly {
        ExistingAnomaly {
            id,
            fingerprint: fp.into(),
            status,
            last_seen,
        }
    }

    #[test]
    fn new_finding_opens() {
        let c = reconcile(&[], vec![finding("a")], 10, 7);
        assert!(matches!(&c[..], [Change::Open(f)] if f.fingerprint == "a"));
    }

    #[test]
    fn ongoing_incident_updates_one_anomaly_day_after_day() {
        let mut store: Vec<ExistingAnomaly> = Vec::new();
        let mut next_id = 1;
        for today in 10..20 {
            for change in reconcile(&store, vec![finding("a"), finding("a")], today, 7) {
                match change {
                    Change::Open(f) => {
                        store.push(existing(next_id, &f.fingerprint, Status::Open, today));
                        next_id += 1;
                    }
                    Change::Update { id, .. } => {
                        let e = store.iter_mut().find(|e| e.id == id).expect("row");
                        e.last_seen = today;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert_eq!(store.len(), 1);
        assert_eq!(store[0].last_seen, 19);
        // Acknowledged behaves like open.
        store[0].status = Status::Acknowledged;
        let c = reconcile(&store, vec![finding("a")], 20, 7);
        assert!(matches!(&c[..], [Change::Update { id: 1, .. }]));
    }

    #[test]
    fn dismissed_fingerprint_stays_quiet() {
        let store = [existing(4, "a", Status::Dismissed, 3)];
        let c = reconcile(&store, vec![finding("a")], 30, 7);
        assert_eq!(
            c,
            vec![Change::Suppressed {
                id: 4,
                fingerprint: "a".into()
            }]
        );
        // And a dismissed anomaly never auto-resolves.
        assert!(reconcile(&store, vec![], 30, 7).is_empty());
    }

    #[test]
    fn resolved_anomaly_reappearing_is_reopened() {
        let store = [
            existing(5, "a", Status::Resolved, 3),
            existing(2, "a", Status::Resolved, 1),
        ];
        let c = reconcile(&store, vec![finding("a")], 30, 7);
        assert!(matches!(&c[..], [Change::Reopen { id: 5, .. }]));
    }

    #[test]
    fn open_wins_over_older_rows_with_the_same_fingerprint() {
        let store = [
            existing(1, "a", Status::Resolved, 9),
            existing(2, "a", Status::Open, 5),
        ];
        let c = reconcile(&store, vec![finding("a")], 10, 7);
        assert!(matches!(&c[..], [Change::Update { id: 2, .. }]));
    }

    #[test]
    fn quiet_anomalies_auto_resolve_after_the_quiet_period() {
        let store = [
            existing(1, "a", Status::Open, 10),
            existing(2, "b", Status::Acknowledged, 14),
            existing(3, "c", Status::Resolved, 1),
            existing(4, "d", Status::Open, 10),
        ];
        let c = reconcile(&store, vec![finding("d")], 17, 7);
        assert_eq!(c.len(), 2, "{c:?}");
        assert!(matches!(&c[0], Change::Update { id: 4, .. }));
        assert_eq!(c[1], Change::AutoResolve { id: 1 });
        // Day 21: b has been quiet for 7 days too.
        let c = reconcile(&store, vec![finding("d")], 21, 7);
        assert_eq!(
            &c[1..],
            &[Change::AutoResolve { id: 1 }, Change::AutoResolve { id: 2 }]
        );
        assert_eq!(
            Status::parse(Status::Acknowledged.as_str()),
            Some(Status::Acknowledged)
        );
    }
}
