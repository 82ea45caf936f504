//! Read side for the analysis: a domain's report rows over a range, and the persistence of
//! anomalies (open → acknowledged → resolved / dismissed).
//!
//! DMARC rows are summed by report and source, TLS rows are one per policy and one per
//! failure detail, so the analysis sees compact data; splitting multi-day reports into UTC
//! days is the analysis crate's job. Also the batch lookups of analysis targets.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, JoinType, Order, Query, SelectStatement};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};

use crate::entities::{anomaly, anomaly_review, tenant, tenant_domain};
use crate::{Result, Store, StoreError};

/// DMARC messages of one report from one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcSourceRow {
    pub begin: i64,
    pub end: i64,
    pub reporter: String,
    pub source_ip: String,
    pub header_from: Option<String>,
    pub messages: i64,
    pub dkim_aligned: i64,
    pub spf_aligned: i64,
    pub disposition_none: i64,
    pub disposition_quarantine: i64,
    pub disposition_reject: i64,
    /// Messages whose policy the receiver overrode because they were forwarded
    /// (`forwarded`, `trusted_forwarder`, `mailing_list`, or `local_policy` citing ARC).
    pub forwarded: i64,
}

/// One TLS-RPT policy block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPolicySummaryRow {
    pub begin: i64,
    pub end: i64,
    pub reporter: String,
    pub policy_type: String,
    pub policy_domain: Option<String>,
    pub sts_mode: Option<String>,
    pub mx_hosts: Vec<String>,
    pub successful: i64,
    pub failed: i64,
}

/// One TLS-RPT failure detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFailureDetailRow {
    pub begin: i64,
    pub end: i64,
    pub reporter: String,
    pub policy_type: String,
    pub result_type: String,
    pub sending_mta_ip: Option<String>,
    pub receiving_mx_hostname: Option<String>,
    pub receiving_ip: Option<String>,
    pub failed: i64,
    pub failure_reason_code: Option<String>,
    pub additional_information: Option<String>,
}

/// That a reporter sent a report covering a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSeenRow {
    pub begin: i64,
    pub end: i64,
    pub reporter: String,
    /// `dmarc` or `tls`.
    pub kind: &'static str,
    /// When the report reached us, Unix seconds.
    pub received: Option<i64>,
}

/// Everything the analysis needs about one domain over a time range.
#[derive(Debug, Clone, Default)]
pub struct DomainData {
    pub dmarc: Vec<DmarcSourceRow>,
    pub tls: Vec<TlsPolicySummaryRow>,
    pub tls_failures: Vec<TlsFailureDetailRow>,
    pub reports: Vec<ReportSeenRow>,
}

/// A domain to analyse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalysisTarget {
    pub tenant_id: i64,
    pub domain_id: i64,
    pub domain: String,
    pub tenant: String,
    /// The last day whose analysis is done; `None`: never analysed.
    pub analysed_through: Option<i32>,
    /// The day the domain was added (days since 1970-01-01).
    pub added_day: i32,
}

/// An anomaly as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAnomaly {
    pub id: i64,
    pub tenant_id: i64,
    pub domain_id: i64,
    pub domain: String,
    pub kind: String,
    pub fingerprint: String,
    pub severity: String,
    pub status: String,
    pub confidence: f64,
    pub window_start: i32,
    pub window_end: i32,
    pub first_seen_day: i32,
    pub last_seen_day: i32,
    pub summary: String,
    pub evidence: serde_json::Value,
    pub explanation: serde_json::Value,
    pub occurrences: i32,
    pub assignee: Option<String>,
}

/// What the analysis concluded about one finding.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyRecord {
    pub kind: String,
    pub fingerprint: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    pub confidence: f64,
    pub window_start: i32,
    pub window_end: i32,
    pub summary: String,
    pub evidence: serde_json::Value,
    pub explanation: serde_json::Value,
}

/// A change to apply to the anomalies of one domain.
#[derive(Debug, Clone, PartialEq)]
pub enum AnomalyChange {
    Open(AnomalyRecord),
    Update { id: i64, record: AnomalyRecord },
    Reopen { id: i64, record: AnomalyRecord },
    AutoResolve { id: i64 },
}

/// Counts of applied changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppliedChanges {
    pub opened: u32,
    pub updated: u32,
    pub reopened: u32,
    pub resolved: u32,
}

/// Filters for listing anomalies.
#[derive(Debug, Clone, Default)]
pub struct AnomalyFilter {
    pub tenant_id: Option<i64>,
    pub domain: Option<String>,
    pub status: Option<String>,
    pub kind: Option<String>,
}

pub(crate) fn severity_rank(severity: &str) -> i16 {
    match severity {
        "critical" => 3,
        "warning" => 2,
        "info" => 1,
        _ => 0,
    }
}

fn col(table: &str, column: &str) -> Expr {
    Expr::col((Alias::new(table), Alias::new(column)))
}

/// One DMARC record as packed by [`Store::domain_data`]: source IP, header_from, count,
/// DKIM and SPF results (policy evaluated) and disposition. All `None` for the outer join's
/// row of a report without records.
type PackedRecord = (
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The records of one report summed by (source IP, header_from), in that order. Counts are
/// the sender's: sums saturate at `i64::MAX` rather than wrap.
/// Whether a record's stored override reasons (JSON) say the receiver saw it as forwarded.
fn forwarded_reason(reasons: Option<&str>) -> bool {
    let Some(list) = reasons.and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok()) else {
        return false;
    };
    list.as_array().is_some_and(|items| {
        items.iter().any(|r| {
            let kind = r["type"].as_str().unwrap_or_default();
            matches!(kind, "forwarded" | "trusted_forwarder" | "mailing_list")
                || (kind == "local_policy"
                    && r["comment"]
                        .as_str()
                        .is_some_and(|c| c.to_ascii_lowercase().contains("arc=pass")))
        })
    })
}

fn group_sources(
    begin: i64,
    end: i64,
    reporter: &str,
    records: Vec<PackedRecord>,
) -> Vec<DmarcSourceRow> {
    let mut by_source: std::collections::BTreeMap<(String, Option<String>), DmarcSourceRow> =
        std::collections::BTreeMap::new();
    for (source_ip, header_from, count, dkim, spf, disposition, reasons) in records {
        let (Some(source_ip), Some(count)) = (source_ip, count) else {
            continue;
        };
        let row = by_source
            .entry((source_ip.clone(), header_from.clone()))
            .or_insert_with(|| DmarcSourceRow {
                begin,
                end,
                reporter: reporter.to_owned(),
                source_ip,
                header_from,
                messages: 0,
                dkim_aligned: 0,
                spf_aligned: 0,
                disposition_none: 0,
                disposition_quarantine: 0,
                disposition_reject: 0,
                forwarded: 0,
            });
        let add = |n: &mut i64, yes: bool| {
            if yes {
                *n = n.saturating_add(count);
            }
        };
        add(&mut row.messages, true);
        add(&mut row.dkim_aligned, dkim.as_deref() == Some("pass"));
        add(&mut row.spf_aligned, spf.as_deref() == Some("pass"));
        add(
            &mut row.disposition_none,
            disposition.as_deref() == Some("none"),
        );
        add(
            &mut row.disposition_quarantine,
            disposition.as_deref() == Some("quarantine"),
        );
        add(
            &mut row.disposition_reject,
            disposition.as_deref() == Some("reject"),
        );
        add(&mut row.forwarded, forwarded_reason(reasons.as_deref()));
    }
    by_source.into_values().collect()
}

/// The domains whose tenant is in `active` (tenant id → name), as analysis targets.
fn targets_of<'a>(
    domains: Vec<tenant_domain::Model>,
    active: &'a std::collections::HashMap<i64, String>,
) -> impl Iterator<Item = AnalysisTarget> + 'a {
    domains.into_iter().filter_map(|d| {
        Some(AnalysisTarget {
            tenant_id: d.tenant_id,
            domain_id: d.id,
            tenant: active.get(&d.tenant_id)?.clone(),
            domain: d.domain,
            analysed_through: d.analysed_through,
            added_day: day_of(d.created_at),
        })
    })
}

/// The UTC day number of a time.
fn day_of(t: DateTime<Utc>) -> i32 {
    i32::try_from(t.timestamp().div_euclid(86_400)).unwrap_or(i32::MAX)
}

impl Store {
    /// The domains to analyse (all active tenants' domains, or one).
    pub async fn analysis_targets(&self, domain: Option<&str>) -> Result<Vec<AnalysisTarget>> {
        let tenants: std::collections::HashMap<i64, String> = tenant::Entity::find()
            .filter(tenant::Column::Active.eq(true))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|t| (t.id, t.name))
            .collect();
        let mut q = tenant_domain::Entity::find().order_by_asc(tenant_domain::Column::Domain);
        if let Some(d) = domain {
            q = q.filter(tenant_domain::Column::Domain.eq(d));
        }
        let domains = q.all(&self.db).await?;
        Ok(targets_of(domains, &tenants).collect())
    }

    /// The domains among `domain_ids` still to analyse (removed domains and those of
    /// deactivated tenants left out), in domain-name order. Two queries per 500 ids.
    pub async fn analysis_targets_by_id(&self, domain_ids: &[i64]) -> Result<Vec<AnalysisTarget>> {
        let mut out = Vec::with_capacity(domain_ids.len());
        // Bounded IN lists (SQLite allows 32,766 parameters; keep statements small).
        for ids in domain_ids.chunks(500) {
            let domains = tenant_domain::Entity::find()
                .filter(tenant_domain::Column::Id.is_in(ids.iter().copied()))
                .all(&self.db)
                .await?;
            let mut tenant_ids: Vec<i64> = domains.iter().map(|d| d.tenant_id).collect();
            tenant_ids.sort_unstable();
            tenant_ids.dedup();
            let tenants: std::collections::HashMap<i64, String> = tenant::Entity::find()
                .filter(tenant::Column::Id.is_in(tenant_ids))
                .filter(tenant::Column::Active.eq(true))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|t| (t.id, t.name))
                .collect();
            out.extend(targets_of(domains, &tenants));
        }
        out.sort_by(|a, b| a.domain.cmp(&b.domain));
        Ok(out)
    }

    /// One domain to analyse by id: `None` when it was removed or its tenant deactivated.
    /// (What a per-domain analysis job needs; two primary-key reads, not the whole list.)
    pub async fn analysis_target(&self, domain_id: i64) -> Result<Option<AnalysisTarget>> {
        let Some(d) = tenant_domain::Entity::find_by_id(domain_id)
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let Some(t) = tenant::Entity::find_by_id(d.tenant_id)
            .filter(tenant::Column::Active.eq(true))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(AnalysisTarget {
            tenant_id: t.id,
            domain_id: d.id,
            added_day: day_of(d.created_at),
            domain: d.domain,
            tenant: t.name,
            analysed_through: d.analysed_through,
        }))
    }

    /// Records that the analysis of a domain is done through `day`, unless the watermark
    /// moved meanwhile (a report stored for an earlier day moved it back: that day must be
    /// judged again) or is already later. `read` is the watermark the analysis started from.
    pub async fn set_analysed_through(
        &self,
        domain_id: i64,
        read: Option<i32>,
        day: i32,
    ) -> Result<()> {
        let mut q = tenant_domain::Entity::update_many()
            .col_expr(tenant_domain::Column::AnalysedThrough, Expr::value(day))
            .filter(tenant_domain::Column::Id.eq(domain_id));
        q = match read {
            None => q.filter(tenant_domain::Column::AnalysedThrough.is_null()),
            Some(r) if r < day => q.filter(tenant_domain::Column::AnalysedThrough.eq(r)),
            Some(_) => return Ok(()),
        };
        q.exec(&self.db).await?;
        Ok(())
    }

    /// Aggregated report data of a domain whose reports overlap `[from, to)` (Unix seconds).
    ///
    /// Three queries, each returning about one row per report: the nightly pass reads weeks
    /// of history for every domain, and on SQLite the cost is per row and per value crossing
    /// the driver, not the work inside the database. DMARC records therefore arrive packed as
    /// one JSON array per report (grouped by source here), and the reports seen are the
    /// report rows of the first two queries (outer joins keep reports without records or
    /// policies).
    pub async fn domain_data(&self, domain_id: i64, from: i64, to: i64) -> Result<DomainData> {
        let db = &self.db;
        let backend = db.get_database_backend();
        let overlaps = |q: &mut SelectStatement, t: &str| {
            q.and_where(col(t, "domain_id").eq(domain_id))
                .and_where(col(t, "end_ts").gte(from))
                .and_where(col(t, "begin_ts").lt(to));
        };
        let mut data = DomainData::default();

        // One row per DMARC report, its records as a JSON array of
        // [source_ip, header_from, count, dkim_result, spf_result, disposition, reasons].
        let record = "r.source_ip, r.header_from, r.count, r.dkim_result, r.spf_result, r.disposition, r.reasons";
        let records = match backend {
            DbBackend::Postgres => format!("CAST(json_agg(json_build_array({record})) AS TEXT)"),
            _ => format!("json_group_array(json_array({record}))"),
        };
        let mut q = Query::select();
        q.from(Alias::new("dmarc_reports"))
            .join_as(
                JoinType::LeftJoin,
                Alias::new("dmarc_records"),
                // `r` is the alias the packed-record expression names.
                Alias::new("r"),
                col("r", "report_id").equals((Alias::new("dmarc_reports"), Alias::new("id"))),
            )
            .expr_as(col("dmarc_reports", "begin_ts"), Alias::new("begin_ts"))
            .expr_as(col("dmarc_reports", "end_ts"), Alias::new("end_ts"))
            .expr_as(col("dmarc_reports", "org_name"), Alias::new("reporter"))
            .expr_as(
                col("dmarc_reports", "created_at"),
                Alias::new("received_at"),
            )
            .expr_as(Expr::cust(records), Alias::new("records"))
            .group_by_col((Alias::new("dmarc_reports"), Alias::new("id")))
            .order_by(
                (Alias::new("dmarc_reports"), Alias::new("begin_ts")),
                Order::Asc,
            )
            .order_by((Alias::new("dmarc_reports"), Alias::new("id")), Order::Asc);
        overlaps(&mut q, "dmarc_reports");
        for row in db.query_all_raw(backend.build(&q)).await? {
            let begin: i64 = row.try_get("", "begin_ts")?;
            let end: i64 = row.try_get("", "end_ts")?;
            let reporter: String = row.try_get("", "reporter")?;
            let packed: String = row.try_get("", "records")?;
            let records: Vec<PackedRecord> = serde_json::from_str(&packed)
                .map_err(|e| StoreError::Invalid(format!("packed DMARC records: {e}")))?;
            data.dmarc
                .extend(group_sources(begin, end, &reporter, records));
            let received: Option<DateTime<Utc>> = row.try_get("", "received_at")?;
            data.reports.push(ReportSeenRow {
                begin,
                end,
                reporter,
                kind: "dmarc",
                received: received.map(|t| t.timestamp()),
            });
        }

        // One row per TLS policy; a report without policies gives one row of NULLs.
        let mut q = Query::select();
        q.from(Alias::new("tls_reports"))
            .left_join(
                Alias::new("tls_policies"),
                col("tls_policies", "tls_report_id")
                    .equals((Alias::new("tls_reports"), Alias::new("id"))),
            )
            .expr_as(col("tls_reports", "id"), Alias::new("report_id"))
            .expr_as(col("tls_reports", "begin_ts"), Alias::new("begin_ts"))
            .expr_as(col("tls_reports", "end_ts"), Alias::new("end_ts"))
            .expr_as(col("tls_reports", "org_name"), Alias::new("reporter"))
            .expr_as(col("tls_reports", "created_at"), Alias::new("received_at"))
            .expr_as(
                col("tls_policies", "policy_type"),
                Alias::new("policy_type"),
            )
            .expr_as(
                col("tls_policies", "policy_domain"),
                Alias::new("policy_domain"),
            )
            .expr_as(col("tls_policies", "sts_mode"), Alias::new("sts_mode"))
            .expr_as(col("tls_policies", "mx_hosts"), Alias::new("mx_hosts"))
            .expr_as(
                col("tls_policies", "successful_sessions"),
                Alias::new("successful"),
            )
            .expr_as(col("tls_policies", "failed_sessions"), Alias::new("failed"))
            .order_by(
                (Alias::new("tls_reports"), Alias::new("begin_ts")),
                Order::Asc,
            )
            .order_by((Alias::new("tls_reports"), Alias::new("id")), Order::Asc)
            .order_by((Alias::new("tls_policies"), Alias::new("id")), Order::Asc);
        overlaps(&mut q, "tls_reports");
        let mut tls_seen = Vec::new();
        let mut last_report = None;
        for row in db.query_all_raw(backend.build(&q)).await? {
            let report_id: i64 = row.try_get("", "report_id")?;
            let begin: i64 = row.try_get("", "begin_ts")?;
            let end: i64 = row.try_get("", "end_ts")?;
            let reporter: String = row.try_get("", "reporter")?;
            if last_report != Some(report_id) {
                last_report = Some(report_id);
                let received: Option<DateTime<Utc>> = row.try_get("", "received_at")?;
                tls_seen.push(ReportSeenRow {
                    begin,
                    end,
                    reporter: reporter.clone(),
                    kind: "tls",
                    received: received.map(|t| t.timestamp()),
                });
            }
            let Some(policy_type) = row.try_get::<Option<String>>("", "policy_type")? else {
                continue;
            };
            let mx: Option<String> = row.try_get("", "mx_hosts")?;
            data.tls.push(TlsPolicySummaryRow {
                begin,
                end,
                reporter,
                policy_type,
                policy_domain: row.try_get("", "policy_domain")?,
                sts_mode: row.try_get("", "sts_mode")?,
                mx_hosts: mx
                    .and_then(|m| serde_json::from_str(&m).ok())
                    .unwrap_or_default(),
                successful: row.try_get::<Option<i64>>("", "successful")?.unwrap_or(0),
                failed: row.try_get::<Option<i64>>("", "failed")?.unwrap_or(0),
            });
        }
        data.reports.extend(tls_seen);

        let mut q = Query::select();
        q.from_as(Alias::new("tls_failure_details"), Alias::new("d"))
            .inner_join(
                Alias::new("tls_reports"),
                col("tls_reports", "id").equals((Alias::new("d"), Alias::new("tls_report_id"))),
            )
            .inner_join(
                Alias::new("tls_policies"),
                col("tls_policies", "id").equals((Alias::new("d"), Alias::new("tls_policy_id"))),
            )
            .expr_as(col("tls_reports", "begin_ts"), Alias::new("begin_ts"))
            .expr_as(col("tls_reports", "end_ts"), Alias::new("end_ts"))
            .expr_as(col("tls_reports", "org_name"), Alias::new("reporter"))
            .expr_as(
                col("tls_policies", "policy_type"),
                Alias::new("policy_type"),
            )
            .expr_as(col("d", "result_type"), Alias::new("result_type"))
            .expr_as(col("d", "sending_mta_ip"), Alias::new("sending_mta_ip"))
            .expr_as(
                col("d", "receiving_mx_hostname"),
                Alias::new("receiving_mx_hostname"),
            )
            .expr_as(col("d", "receiving_ip"), Alias::new("receiving_ip"))
            .expr_as(col("d", "failed_sessions"), Alias::new("failed"))
            .expr_as(
                col("d", "failure_reason_code"),
                Alias::new("failure_reason_code"),
            )
            .expr_as(
                col("d", "additional_information"),
                Alias::new("additional_information"),
            )
            .order_by(
                (Alias::new("tls_reports"), Alias::new("begin_ts")),
                Order::Asc,
            );
        overlaps(&mut q, "tls_reports");
        for row in db.query_all_raw(backend.build(&q)).await? {
            data.tls_failures.push(TlsFailureDetailRow {
                begin: row.try_get("", "begin_ts")?,
                end: row.try_get("", "end_ts")?,
                reporter: row.try_get("", "reporter")?,
                policy_type: row.try_get("", "policy_type")?,
                result_type: row.try_get("", "result_type")?,
                sending_mta_ip: row.try_get("", "sending_mta_ip")?,
                receiving_mx_hostname: row.try_get("", "receiving_mx_hostname")?,
                receiving_ip: row.try_get("", "receiving_ip")?,
                failed: row.try_get("", "failed")?,
                failure_reason_code: row.try_get("", "failure_reason_code")?,
                additional_information: row.try_get("", "additional_information")?,
            });
        }
        Ok(data)
    }

    /// Every anomaly of a domain, any status.
    pub async fn domain_anomalies(&self, domain_id: i64) -> Result<Vec<StoredAnomaly>> {
        let rows = anomaly::Entity::find()
            .filter(anomaly::Column::DomainId.eq(domain_id))
            .order_by_asc(anomaly::Column::Id)
            .all(&self.db)
            .await?;
        let domain = tenant_domain::Entity::find_by_id(domain_id)
            .one(&self.db)
            .await?
            .map(|d| d.domain)
            .unwrap_or_default();
        Ok(rows
            .into_iter()
            .map(|a| stored(a, domain.clone()))
            .collect())
    }

    /// Applies the analysis' changes to one domain's anomalies, in one transaction.
    pub async fn apply_anomaly_changes(
        &self,
        tenant_id: i64,
        domain_id: i64,
        today: i32,
        changes: Vec<AnomalyChange>,
    ) -> Result<AppliedChanges> {
        if changes.is_empty() {
            // Nothing to write: no transaction (on SQLite, no turn at the single writer).
            return Ok(AppliedChanges::default());
        }
        let txn = self.db.begin().await?;
        // Write first: on SQLite this takes the write lock now, waiting (busy timeout), instead
        // of failing with SQLITE_BUSY_SNAPSHOT when a read below would have to be upgraded
        // after another analysis committed; on PostgreSQL it locks the domain's anomalies, so
        // two analyses of one domain (after a poll and nightly) apply one after the other.
        anomaly::Entity::update_many()
            .col_expr(
                anomaly::Column::Occurrences,
                Expr::col(anomaly::Column::Occurrences),
            )
            .filter(anomaly::Column::DomainId.eq(domain_id))
            .exec(&txn)
            .await?;
        let now = Utc::now();
        let mut applied = AppliedChanges::default();
        for change in changes {
            match change {
                AnomalyChange::Open(r) => {
                    anomaly::ActiveModel {
                        tenant_id: Set(tenant_id),
                        domain_id: Set(domain_id),
                        kind: Set(r.kind),
                        fingerprint: Set(r.fingerprint),
                        severity_rank: Set(severity_rank(&r.severity)),
                        severity: Set(r.severity),
                        status: Set("open".into()),
                        confidence: Set(r.confidence),
                        window_start: Set(r.window_start),
                        window_end: Set(r.window_end),
                        // The first day of its evidence, whenever the analysis found it
                        // (a reporter is silent from the day after its last report, found
                        // days later; a late report delays the finding, not the fact).
                        first_seen_day: Set(std::cmp::min(r.window_start, today)),
                        last_seen_day: Set(today),
                        summary: Set(r.summary),
                        evidence: Set(r.evidence.to_string()),
                        explanation: Set(r.explanation.to_string()),
                        occurrences: Set(1),
                        reopened: Set(0),
                        created_at: Set(now),
                        updated_at: Set(now),
                        ..Default::default()
                    }
                    .insert(&txn)
                    .await?;
                    applied.opened += 1;
                }
                AnomalyChange::Update { id, record } => {
                    update(&txn, domain_id, id, record, today, now, false).await?;
                    applied.updated += 1;
                }
                AnomalyChange::Reopen { id, record } => {
                    update(&txn, domain_id, id, record, today, now, true).await?;
                    anomaly_review::ActiveModel {
                        anomaly_id: Set(id),
                        action: Set("reopen".into()),
                        from_status: Set("resolved".into()),
                        to_status: Set("open".into()),
                        note: Set(Some("the problem was seen again".into())),
                        actor: Set(Some("analysis".into())),
                        created_at: Set(now),
                        ..Default::default()
                    }
                    .insert(&txn)
                    .await?;
                    applied.reopened += 1;
                }
                AnomalyChange::AutoResolve { id } => {
                    let Some(a) = anomaly::Entity::find_by_id(id).one(&txn).await? else {
                        continue;
                    };
                    if a.domain_id != domain_id {
                        return Err(StoreError::NotFound(format!(
                            "anomaly {id} of domain {domain_id}"
                        )));
                    }
                    let from = a.status.clone();
                    let mut am: anomaly::ActiveModel = a.into();
                    am.status = Set("resolved".into());
                    am.resolved_at = Set(Some(now));
                    am.updated_at = Set(now);
                    am.update(&txn).await?;
                    anomaly_review::ActiveModel {
                        anomaly_id: Set(id),
                        action: Set("auto-resolve".into()),
                        from_status: Set(from),
                        to_status: Set("resolved".into()),
                        note: Set(Some("not seen during the quiet period".into())),
                        actor: Set(Some("analysis".into())),
                        created_at: Set(now),
                        ..Default::default()
                    }
                    .insert(&txn)
                    .await?;
                    applied.resolved += 1;
                }
            }
        }
        txn.commit().await?;
        Ok(applied)
    }

    /// Records a staff review: `acknowledge`, `resolve`, `dismiss` (a false positive: the
    /// analysis keeps its fingerprint quiet) or `reopen`, with an optional note and assignee.
    /// The history of reviews is kept.
    pub async fn review_anomaly(
        &self,
        id: i64,
        action: &str,
        note: Option<&str>,
        assignee: Option<&str>,
        actor: Option<&str>,
    ) -> Result<StoredAnomaly> {
        let to = match action {
            "acknowledge" => "acknowledged",
            "resolve" => "resolved",
            "dismiss" => "dismissed",
            "reopen" => "open",
            other => {
                return Err(StoreError::Invalid(format!(
                    "review action {other:?} is not one of acknowledge, resolve, dismiss, reopen"
                )));
            }
        };
        let txn = self.db.begin().await?;
        let a = anomaly::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("anomaly {id}")))?;
        let from = a.status.clone();
        let now = Utc::now();
        let mut am: anomaly::ActiveModel = a.into();
        am.status = Set(to.to_owned());
        am.updated_at = Set(now);
        am.resolved_at = Set(matches!(to, "resolved" | "dismissed").then_some(now));
        if let Some(who) = assignee {
            am.assignee = Set(Some(who.to_owned()));
        }
        let updated = am.update(&txn).await?;
        anomaly_review::ActiveModel {
            anomaly_id: Set(id),
            action: Set(action.to_owned()),
            from_status: Set(from),
            to_status: Set(to.to_owned()),
            note: Set(note.map(str::to_owned)),
            assignee: Set(assignee.map(str::to_owned)),
            actor: Set(actor.map(str::to_owned)),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        let domain = tenant_domain::Entity::find_by_id(updated.domain_id)
            .one(&self.db)
            .await?
            .map(|d| d.domain)
            .unwrap_or_default();
        Ok(stored(updated, domain))
    }

    /// Anomalies matching a filter, most urgent first (open before acknowledged, then
    /// severity, then most recently seen).
    pub async fn list_anomalies(&self, filter: &AnomalyFilter) -> Result<Vec<StoredAnomaly>> {
        let mut q = anomaly::Entity::find();
        if let Some(t) = filter.tenant_id {
            q = q.filter(anomaly::Column::TenantId.eq(t));
        }
        if let Some(s) = &filter.status {
            q = q.filter(anomaly::Column::Status.eq(s.as_str()));
        }
        if let Some(k) = &filter.kind {
            q = q.filter(anomaly::Column::Kind.eq(k.as_str()));
        }
        let domains = tenant_domain::Entity::find().all(&self.db).await?;
        if let Some(d) = &filter.domain {
            let ids: Vec<i64> = domains
                .iter()
                .filter(|x| &x.domain == d)
                .map(|x| x.id)
                .collect();
            q = q.filter(anomaly::Column::DomainId.is_in(ids));
        }
        let rows = q
            .order_by_desc(anomaly::Column::SeverityRank)
            .order_by_desc(anomaly::Column::LastSeenDay)
            .order_by_asc(anomaly::Column::Id)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|a| {
                let name = domains
                    .iter()
                    .find(|d| d.id == a.domain_id)
                    .map(|d| d.domain.clone())
                    .unwrap_or_default();
                stored(a, name)
            })
            .collect())
    }
}

async fn update(
    txn: &sea_orm::DatabaseTransaction,
    domain_id: i64,
    id: i64,
    r: AnomalyRecord,
    today: i32,
    now: DateTime<Utc>,
    reopen: bool,
) -> Result<()> {
    let Some(a) = anomaly::Entity::find_by_id(id).one(txn).await? else {
        return Err(StoreError::NotFound(format!("anomaly {id}")));
    };
    if a.domain_id != domain_id {
        return Err(StoreError::NotFound(format!(
            "anomaly {id} of domain {domain_id}"
        )));
    }
    // A day judged again (reports for it arrived late) never moves the anomaly back in time
    // nor counts as one more occurrence; the days after it are judged again next.
    let again = today <= a.last_seen_day;
    let occurrences = if again {
        a.occurrences
    } else {
        a.occurrences.saturating_add(1)
    };
    let reopened = a.reopened.saturating_add(i32::from(reopen));
    let window_start = std::cmp::min(a.window_start, r.window_start);
    let window_end = std::cmp::max(a.window_end, r.window_end);
    let last_seen_day = std::cmp::max(a.last_seen_day, today);
    let mut am: anomaly::ActiveModel = a.into();
    if reopen {
        am.status = Set("open".into());
        am.resolved_at = Set(None);
    }
    am.severity_rank = Set(severity_rank(&r.severity));
    am.severity = Set(r.severity);
    am.confidence = Set(r.confidence);
    am.window_start = Set(window_start);
    am.window_end = Set(window_end);
    am.last_seen_day = Set(last_seen_day);
    am.summary = Set(r.summary);
    am.evidence = Set(r.evidence.to_string());
    am.explanation = Set(r.explanation.to_string());
    am.occurrences = Set(occurrences);
    am.reopened = Set(reopened);
    am.updated_at = Set(now);
    am.update(txn).await?;
    Ok(())
}

fn stored(a: anomaly::Model, domain: String) -> StoredAnomaly {
    StoredAnomaly {
        id: a.id,
        tenant_id: a.tenant_id,
        domain_id: a.domain_id,
        domain,
        kind: a.kind,
        fingerprint: a.fingerprint,
        severity: a.severity,
        status: a.status,
        confidence: a.confidence,
        window_start: a.window_start,
        window_end: a.window_end,
        first_seen_day: a.first_seen_day,
        last_seen_day: a.last_seen_day,
        summary: a.summary,
        evidence: serde_json::from_str(&a.evidence).unwrap_or(serde_json::Value::Null),
        explanation: serde_json::from_str(&a.explanation).unwrap_or(serde_json::Value::Null),
        occurrences: a.occurrences,
        assignee: a.assignee,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ip: &str, count: i64, dkim: &str) -> PackedRecord {
        (
            Some(ip.to_owned()),
            Some("example.com".to_owned()),
            Some(count),
            Some(dkim.to_owned()),
            Some("fail".to_owned()),
            Some("none".to_owned()),
            None,
        )
    }

    #[test]
    fn forwarding_override_reasons_are_recognised_as_stored() {
        use sealwatch_model::{OverrideType, PolicyOverrideReason};
        let stored = |reasons: Vec<PolicyOverrideReason>| {
            crate::to_json("reasons", &reasons).expect("encodes")
        };
        let reason = |kind: OverrideType, comment: Option<&str>| PolicyOverrideReason {
            kind,
            comment: comment.map(str::to_owned),
        };
        for yes in [
            stored(vec![reason(OverrideType::Forwarded, None)]),
            stored(vec![reason(OverrideType::MailingList, None)]),
            stored(vec![
                reason(OverrideType::SampledOut, None),
                reason(OverrideType::TrustedForwarder, None),
            ]),
            stored(vec![reason(
                OverrideType::LocalPolicy,
                Some("arc=pass as.1.google.com=pass"),
            )]),
        ] {
            assert!(forwarded_reason(Some(&yes)), "{yes}");
        }
        for no in [
            stored(vec![reason(OverrideType::LocalPolicy, Some("spam filter"))]),
            stored(vec![reason(OverrideType::SampledOut, None)]),
            "not json".to_owned(),
            "{\"type\":\"forwarded\"}".to_owned(),
        ] {
            assert!(!forwarded_reason(Some(&no)), "{no}");
        }
        assert!(!forwarded_reason(None));
    }

    /// Two forged records with counts near the top must not wrap to a small (or negative)
    /// number of messages.
    #[test]
    fn source_sums_saturate_instead_of_wrapping() {
        let near = i64::MAX - 5;
        let rows = group_sources(
            0,
            86_400,
            "Forger",
            vec![
                record("192.0.2.1", near, "pass"),
                record("192.0.2.1", near, "pass"),
                record("192.0.2.2", 3, "fail"),
            ],
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].messages, i64::MAX);
        assert_eq!(rows[0].dkim_aligned, i64::MAX);
        assert_eq!(rows[0].disposition_none, i64::MAX);
        assert_eq!(rows[1].messages, 3);
        assert_eq!(rows[1].dkim_aligned, 0);
    }
}
