//! Runs the analysis over stored reports the way `sealwatch analyze` does (default
//! thresholds, 84 days of history, a 7-day window). Include with
//! `#[path = "../common/analysis.rs"] mod analysis;`.

#![allow(dead_code)]

use chrono::NaiveDate;
use sealwatch_analytics as analytics;
use sealwatch_store::{AnomalyChange, AnomalyRecord, Store};

pub fn day_number(date: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    i32::try_from((date - epoch).num_days()).expect("day")
}

fn n(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn record(f: analytics::Finding) -> AnomalyRecord {
    AnomalyRecord {
        kind: f.kind.as_str().to_owned(),
        fingerprint: f.fingerprint,
        severity: f.severity.as_str().to_owned(),
        confidence: f.confidence,
        window_start: f.window_start,
        window_end: f.window_end,
        summary: f.summary,
        evidence: f.evidence,
        explanation: serde_json::to_value(&f.explanation).expect("explanation"),
    }
}

/// Analyses every domain as of `today`; returns the number of anomalies opened.
pub async fn analyze_all(store: &Store, today: NaiveDate) -> u32 {
    let today = day_number(today);
    let thresholds = analytics::Thresholds::default();
    let mut opened = 0;
    for target in store.analysis_targets(None).await.expect("targets") {
        let from = i64::from(today - 84) * 86_400;
        let to = (i64::from(today) + 1) * 86_400;
        let data = store
            .domain_data(target.domain_id, from, to)
            .await
            .expect("domain data");
        let input = analytics::DomainInput {
            tenant_id: target.tenant_id,
            domain_id: target.domain_id,
            domain: target.domain.clone(),
            dmarc: data
                .dmarc
                .into_iter()
                .map(|r| analytics::DmarcRow {
                    begin: r.begin,
                    end: r.end,
                    reporter: r.reporter,
                    source_ip: r.source_ip,
                    header_from: r.header_from,
                    messages: n(r.messages),
                    dkim_aligned: n(r.dkim_aligned),
                    spf_aligned: n(r.spf_aligned),
                    disposition_none: n(r.disposition_none),
                    disposition_quarantine: n(r.disposition_quarantine),
                    disposition_reject: n(r.disposition_reject),
                    forwarded: n(r.forwarded),
                })
                .collect(),
            tls: data
                .tls
                .into_iter()
                .map(|r| analytics::TlsPolicyRow {
                    begin: r.begin,
                    end: r.end,
                    reporter: r.reporter,
                    policy_type: r.policy_type,
                    policy_domain: r.policy_domain,
                    sts_mode: r.sts_mode,
                    mx_hosts: r.mx_hosts,
                    successful: n(r.successful),
                    failed: n(r.failed),
                })
                .collect(),
            tls_failures: data
                .tls_failures
                .into_iter()
                .map(|r| analytics::TlsFailureRow {
                    begin: r.begin,
                    end: r.end,
                    reporter: r.reporter,
                    policy_type: r.policy_type,
                    result_type: r.result_type,
                    sending_mta_ip: r.sending_mta_ip,
                    receiving_mx_hostname: r.receiving_mx_hostname,
                    receiving_ip: r.receiving_ip,
                    failed: n(r.failed),
                    failure_reason_code: r.failure_reason_code,
                    additional_information: r.additional_information,
                })
                .collect(),
            reports: data
                .reports
                .into_iter()
                .map(|r| analytics::ReportSeen {
                    begin: r.begin,
                    end: r.end,
                    reporter: r.reporter,
                    kind: if r.kind == "tls" {
                        analytics::ReportKind::Tls
                    } else {
                        analytics::ReportKind::Dmarc
                    },
                    received: r.received,
                })
                .collect(),
            source_names: Default::default(),
            expect_reports: true,
            mx_addresses: Default::default(),
            added_day: Some(target.added_day),
        };
        let window = analytics::Window {
            start: today - 6,
            end: today,
        };
        let findings = analytics::analyze(&input, window, &thresholds).findings;
        let existing: Vec<analytics::ExistingAnomaly> = store
            .domain_anomalies(target.domain_id)
            .await
            .expect("anomalies")
            .iter()
            .map(|a| analytics::ExistingAnomaly {
                id: a.id,
                fingerprint: a.fingerprint.clone(),
                status: analytics::Status::parse(&a.status).unwrap_or(analytics::Status::Open),
                last_seen: a.last_seen_day,
            })
            .collect();
        let changes = analytics::reconcile(&existing, findings, today, 7)
            .into_iter()
            .filter_map(|c| match c {
                analytics::Change::Open(f) => Some(AnomalyChange::Open(record(f))),
                analytics::Change::Update { id, finding } => Some(AnomalyChange::Update {
                    id,
                    record: record(finding),
                }),
                analytics::Change::Reopen { id, finding } => Some(AnomalyChange::Reopen {
                    id,
                    record: record(finding),
                }),
                analytics::Change::AutoResolve { id } => Some(AnomalyChange::AutoResolve { id }),
                analytics::Change::Suppressed { .. } => None,
            })
            .collect();
        opened += store
            .apply_anomaly_changes(target.tenant_id, target.domain_id, today, changes)
            .await
            .expect("apply")
            .opened;
    }
    opened
}
