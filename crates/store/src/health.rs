//! Stored domain health-check runs: one row per run with the full JSON report, so the
//! digest can say what changed since the previous run; the anomaly a broken MTA-STS policy
//! opens for staff review (one row per domain and fingerprint, like the analysis' anomalies);
//! and the DKIM selectors seen in a domain's DMARC reports, for the check to try.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, SqlErr,
    TransactionTrait,
};

use crate::analysis::{AnalysisTarget, severity_rank};
use crate::entities::{anomaly, anomaly_review, dmarc_record, health_check, tenant, tenant_domain};
use crate::{Result, Store, StoreError};

/// Who the health check's anomaly changes are recorded as (`anomaly_reviews.actor`).
pub const HEALTH_CHECK_ACTOR: &str = "health-check";

/// What a health check concluded about one problem, to be opened or refreshed as an anomaly.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthAnomaly {
    /// E.g. `mta-sts-policy-broken`.
    pub kind: String,
    /// Stable per domain and problem, e.g. `health:mta-sts:example.com`.
    pub fingerprint: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    pub summary: String,
    pub evidence: serde_json::Value,
    /// `what_happened`, `what_it_means`, `what_to_do`, `who_fixes_it` (as the analysis').
    pub explanation: serde_json::Value,
}

/// What [`Store::upsert_health_anomaly`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthAnomalyAction {
    /// A new open anomaly.
    Opened,
    /// An open one was updated (evidence, severity, last seen, occurrences).
    Updated,
    /// A resolved one was opened again.
    Reopened,
    /// An acknowledged or dismissed one: only its last-seen day and occurrences changed.
    Refreshed,
}

/// The anomaly row a health check opened, updated or resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthAnomalyOutcome {
    pub id: i64,
    pub action: HealthAnomalyAction,
    /// The status after the change.
    pub status: String,
    pub occurrences: i32,
}

/// One stored health-check run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthRun {
    pub id: i64,
    pub tenant_id: i64,
    pub domain_id: i64,
    pub score: i32,
    pub grade: String,
    /// The checker's JSON report.
    pub report: String,
    pub checked_at: DateTime<Utc>,
}

impl From<health_check::Model> for HealthRun {
    fn from(m: health_check::Model) -> Self {
        HealthRun {
            id: m.id,
            tenant_id: m.tenant_id,
            domain_id: m.domain_id,
            score: m.score,
            grade: m.grade,
            report: m.report,
            checked_at: m.checked_at,
        }
    }
}

impl Store {
    /// Stores a health-check run of a domain (its tenant is looked up, not trusted).
    pub async fn record_health_check(
        &self,
        domain_id: i64,
        score: i32,
        grade: &str,
        report_json: &str,
        checked_at: DateTime<Utc>,
    ) -> Result<HealthRun> {
        let domain = tenant_domain::Entity::find_by_id(domain_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("domain {domain_id}")))?;
        let row = health_check::ActiveModel {
            tenant_id: Set(domain.tenant_id),
            domain_id: Set(domain_id),
            score: Set(score),
            grade: Set(grade.to_owned()),
            report: Set(report_json.to_owned()),
            checked_at: Set(checked_at),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok(row.into())
    }

    /// The latest run of a domain checked strictly before `before` (e.g. "last week's" run).
    pub async fn health_check_before(
        &self,
        domain_id: i64,
        before: DateTime<Utc>,
    ) -> Result<Option<HealthRun>> {
        Ok(health_check::Entity::find()
            .filter(health_check::Column::DomainId.eq(domain_id))
            .filter(health_check::Column::CheckedAt.lt(before))
            .order_by_desc(health_check::Column::CheckedAt)
            .order_by_desc(health_check::Column::Id)
            .one(&self.db)
            .await?
            .map(HealthRun::from))
    }

    /// A stored domain with its tenant, for a health check.
    pub async fn health_target(&self, domain_id: i64) -> Result<AnalysisTarget> {
        let domain = tenant_domain::Entity::find_by_id(domain_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("domain {domain_id}")))?;
        let owner = tenant::Entity::find_by_id(domain.tenant_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("tenant {}", domain.tenant_id)))?;
        Ok(AnalysisTarget {
            tenant_id: owner.id,
            domain_id: domain.id,
            tenant: owner.name,
            analysed_through: domain.analysed_through,
            added_day: i32::try_from(domain.created_at.timestamp().div_euclid(86_400))
                .unwrap_or(i32::MAX),
            domain: domain.domain,
        })
    }

    /// DKIM selectors that signed for exactly `domain` (`d=`) in its DMARC reports from
    /// `since_day` (UTC day number) on, sorted, at most `limit`.
    pub async fn dkim_selectors_seen(
        &self,
        domain_id: i64,
        domain: &str,
        since_day: i32,
        limit: usize,
    ) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Signature {
            domain: Option<String>,
            selector: Option<String>,
        }
        let rows: Vec<String> = dmarc_record::Entity::find()
            .select_only()
            .column(dmarc_record::Column::DkimAuth)
            .distinct()
            .filter(dmarc_record::Column::DomainId.eq(domain_id))
            .filter(dmarc_record::Column::Day.gte(since_day))
            .limit(5_000)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut selectors = std::collections::BTreeSet::new();
        for json in rows {
            // A row that does not decode contributes nothing; the check still runs.
            let Ok(sigs) = serde_json::from_str::<Vec<Signature>>(&json) else {
                continue;
            };
            for sig in sigs {
                let (Some(d), Some(sel)) = (sig.domain, sig.selector) else {
                    continue;
                };
                let sel = sel.trim().to_ascii_lowercase();
                let valid = !sel.is_empty()
                    && sel.len() <= 63
                    && sel
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                if valid && d.trim().trim_end_matches('.').eq_ignore_ascii_case(domain) {
                    selectors.insert(sel);
                }
            }
        }
        Ok(selectors.into_iter().take(limit).collect())
    }

    /// Opens the anomaly of a health-check problem, or refreshes the one with the same
    /// fingerprint on that domain: an open one is updated (severity, summary, evidence,
    /// explanation, last seen, occurrences), a resolved one is reopened (with a review row
    /// by [`HEALTH_CHECK_ACTOR`]), an acknowledged or dismissed one keeps its status and
    /// content and only has its last-seen day and occurrences refreshed. `day` is the UTC
    /// day number of the check. Two concurrent calls for the same fingerprint end as one row
    /// (the one that loses the insert race updates instead).
    pub async fn upsert_health_anomaly(
        &self,
        domain_id: i64,
        record: &HealthAnomaly,
        day: i32,
        now: DateTime<Utc>,
    ) -> Result<HealthAnomalyOutcome> {
        match self
            .upsert_health_anomaly_once(domain_id, record, day, now)
            .await
        {
            Err(StoreError::Db(e))
                if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) =>
            {
                self.upsert_health_anomaly_once(domain_id, record, day, now)
                    .await
            }
            other => other,
        }
    }

    async fn upsert_health_anomaly_once(
        &self,
        domain_id: i64,
        record: &HealthAnomaly,
        day: i32,
        now: DateTime<Utc>,
    ) -> Result<HealthAnomalyOutcome> {
        let txn = self.db.begin().await?;
        lock_anomaly(&txn, domain_id, &record.fingerprint).await?;
        let domain = tenant_domain::Entity::find_by_id(domain_id)
            .one(&txn)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("domain {domain_id}")))?;
        let existing = anomaly::Entity::find()
            .filter(anomaly::Column::DomainId.eq(domain_id))
            .filter(anomaly::Column::Fingerprint.eq(record.fingerprint.as_str()))
            .one(&txn)
            .await?;
        let outcome = match existing {
            None => {
                let row = anomaly::ActiveModel {
                    tenant_id: Set(domain.tenant_id),
                    domain_id: Set(domain_id),
                    kind: Set(record.kind.clone()),
                    fingerprint: Set(record.fingerprint.clone()),
                    severity_rank: Set(severity_rank(&record.severity)),
                    severity: Set(record.severity.clone()),
                    status: Set("open".into()),
                    confidence: Set(1.0),
                    window_start: Set(day),
                    window_end: Set(day),
                    first_seen_day: Set(day),
                    last_seen_day: Set(day),
                    summary: Set(record.summary.clone()),
                    evidence: Set(record.evidence.to_string()),
                    explanation: Set(record.explanation.to_string()),
                    occurrences: Set(1),
                    reopened: Set(0),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                }
                .insert(&txn)
                .await?;
                HealthAnomalyOutcome {
                    id: row.id,
                    action: HealthAnomalyAction::Opened,
                    status: row.status,
                    occurrences: row.occurrences,
                }
            }
            Some(a) => {
                let id = a.id;
                let status = a.status.clone();
                let occurrences = a.occurrences + 1;
                let action = match status.as_str() {
                    "open" => HealthAnomalyAction::Updated,
                    "resolved" => HealthAnomalyAction::Reopened,
                    _ => HealthAnomalyAction::Refreshed,
                };
                let window_start = a.window_start.min(day);
                let reopened = a.reopened;
                let mut am: anomaly::ActiveModel = a.into();
                am.last_seen_day = Set(day);
                am.window_start = Set(window_start);
                am.window_end = Set(day);
                am.occurrences = Set(occurrences);
                am.updated_at = Set(now);
                if action != HealthAnomalyAction::Refreshed {
                    am.severity_rank = Set(severity_rank(&record.severity));
                    am.severity = Set(record.severity.clone());
                    am.summary = Set(record.summary.clone());
                    am.evidence = Set(record.evidence.to_string());
                    am.explanation = Set(record.explanation.to_string());
                }
                if action == HealthAnomalyAction::Reopened {
                    am.status = Set("open".into());
                    am.resolved_at = Set(None);
                    am.reopened = Set(reopened + 1);
                }
                let row = am.update(&txn).await?;
                if action == HealthAnomalyAction::Reopened {
                    anomaly_review::ActiveModel {
                        anomaly_id: Set(id),
                        action: Set("reopen".into()),
                        from_status: Set(status),
                        to_status: Set("open".into()),
                        note: Set(Some("the health check found the problem again".into())),
                        actor: Set(Some(HEALTH_CHECK_ACTOR.into())),
                        created_at: Set(now),
                        ..Default::default()
                    }
                    .insert(&txn)
                    .await?;
                }
                HealthAnomalyOutcome {
                    id,
                    action,
                    status: row.status,
                    occurrences: row.occurrences,
                }
            }
        };
        txn.commit().await?;
        Ok(outcome)
    }

    /// Resolves the open or acknowledged anomaly with this fingerprint on a domain (status
    /// `resolved`, `resolved_at`, a review row by [`HEALTH_CHECK_ACTOR`] with `note`).
    /// Returns its id, or `None` when there is nothing to resolve (no such anomaly, already
    /// resolved, or dismissed).
    pub async fn resolve_health_anomaly(
        &self,
        domain_id: i64,
        fingerprint: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>> {
        let txn = self.db.begin().await?;
        lock_anomaly(&txn, domain_id, fingerprint).await?;
        let Some(a) = anomaly::Entity::find()
            .filter(anomaly::Column::DomainId.eq(domain_id))
            .filter(anomaly::Column::Fingerprint.eq(fingerprint))
            .filter(anomaly::Column::Status.is_in(["open", "acknowledged"]))
            .one(&txn)
            .await?
        else {
            return Ok(None);
        };
        let id = a.id;
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
            note: Set(Some(note.to_owned())),
            actor: Set(Some(HEALTH_CHECK_ACTOR.into())),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(Some(id))
    }

    /// The latest `limit` runs of a domain, newest first.
    pub async fn recent_health_checks(&self, domain_id: i64, limit: u64) -> Result<Vec<HealthRun>> {
        Ok(health_check::Entity::find()
            .filter(health_check::Column::DomainId.eq(domain_id))
            .order_by_desc(health_check::Column::CheckedAt)
            .order_by_desc(health_check::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(HealthRun::from)
            .collect())
    }
}

/// Starts the transaction with a write to the anomaly row (matching or not): PostgreSQL
/// locks the row, so concurrent updates of it queue instead of losing an occurrence; SQLite
/// takes its write lock now, waiting (busy timeout) instead of failing later when a read
/// snapshot would have to be upgraded after another writer committed.
async fn lock_anomaly(
    txn: &sea_orm::DatabaseTransaction,
    domain_id: i64,
    fingerprint: &str,
) -> Result<()> {
    anomaly::Entity::update_many()
        .col_expr(
            anomaly::Column::Occurrences,
            Expr::col(anomaly::Column::Occurrences),
        )
        .filter(anomaly::Column::DomainId.eq(domain_id))
        .filter(anomaly::Column::Fingerprint.eq(fingerprint))
        .exec(txn)
        .await?;
    Ok(())
}
