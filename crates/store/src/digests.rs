//! The weekly digest: what the digest reads about a tenant, and the `digests` row state
//! machine that makes building and sending exactly-once per tenant and ISO week.
//!
//! ```text
//!   (no row) ──ensure──► pending ──set_built──► built ──claim──► sending ──mark_sent──► sent
//!                                                 ▲                 │
//!                                                 └──mark_failed────┤ (retry budget left:
//!                                                    (next_attempt)  │  back to built)
//!                                                                    └──► failed (budget spent,
//!                                                                         or a permanent error)
//! ```
//!
//! Every transition is one conditional `UPDATE … WHERE status = …` and reports whether it
//! won, so racing workers agree on one winner. A claim carries a lease (`claimed_until`): a
//! row left in `sending` by a worker that died is claimable again once the lease expired.
//! Timestamps are written truncated to whole seconds, so SQLite's text comparison of them
//! orders them correctly.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use crate::entities::{anomaly, digest, health_check, tenant, tenant_domain};
use crate::{Result, Store, StoreError};

/// Where a digest is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestStatus {
    /// The row exists; the digest is not rendered yet.
    Pending,
    /// Rendered and stored; waiting to be sent (maybe after a failed attempt).
    Built,
    /// A worker holds a lease and is sending it.
    Sending,
    /// Accepted by the SMTP relay.
    Sent,
    /// Given up: the retry budget is spent or the relay refused it permanently.
    Failed,
}

impl DigestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DigestStatus::Pending => "pending",
            DigestStatus::Built => "built",
            DigestStatus::Sending => "sending",
            DigestStatus::Sent => "sent",
            DigestStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for DigestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DigestStatus {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "pending" => DigestStatus::Pending,
            "built" => DigestStatus::Built,
            "sending" => DigestStatus::Sending,
            "sent" => DigestStatus::Sent,
            "failed" => DigestStatus::Failed,
            other => return Err(StoreError::Invalid(format!("digest status {other:?}"))),
        })
    }
}

/// A tenant as the digest sees it: settings and domains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestTenant {
    pub id: i64,
    pub name: String,
    pub active: bool,
    pub recipients: Vec<String>,
    /// ISO weekday of the send day, 1 = Monday … 7 = Sunday.
    pub weekday: i16,
    /// Local hour of the send time, 0–23.
    pub hour: i16,
    /// IANA time zone name.
    pub timezone: String,
    pub created_at: DateTime<Utc>,
    /// `(domain id, domain name)`, by name.
    pub domains: Vec<(i64, String)>,
}

/// The latest health check of one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckRow {
    pub domain_id: i64,
    pub score: i32,
    pub grade: String,
    /// The full report as JSON.
    pub report: String,
    pub checked_at: DateTime<Utc>,
    /// The run before it (report JSON), to say what changed since.
    pub previous_report: Option<String>,
}

/// An anomaly a digest may show (open or acknowledged; never dismissed or resolved).
#[derive(Debug, Clone, PartialEq)]
pub struct DigestAnomaly {
    pub domain_id: i64,
    pub kind: String,
    pub severity: String,
    /// `open`, `acknowledged` or `resolved`.
    pub status: String,
    pub first_seen_day: i32,
    pub last_seen_day: i32,
    /// The days its evidence covers (days since 1970-01-01, inclusive).
    pub window_start: i32,
    pub window_end: i32,
    pub summary: String,
    /// The plain-English explanation (JSON object).
    pub explanation: serde_json::Value,
}

/// One `digests` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestRow {
    pub id: i64,
    pub tenant_id: i64,
    pub iso_week: String,
    pub status: DigestStatus,
    pub subject: Option<String>,
    pub text_body: Option<String>,
    pub html_body: Option<String>,
    pub recipients: Vec<String>,
    pub message_id: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub claimed_by: Option<String>,
    pub claimed_until: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub built_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// A rendered digest, ready to be stored on its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltDigest {
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub recipients: Vec<String>,
    pub message_id: String,
}

fn secs(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(0)
}

fn row_of(m: digest::Model) -> Result<DigestRow> {
    Ok(DigestRow {
        status: m.status.parse()?,
        recipients: serde_json::from_str(&m.recipients).unwrap_or_default(),
        id: m.id,
        tenant_id: m.tenant_id,
        iso_week: m.iso_week,
        subject: m.subject,
        text_body: m.text_body,
        html_body: m.html_body,
        message_id: m.message_id,
        attempts: m.attempts,
        last_error: m.last_error,
        claimed_by: m.claimed_by,
        claimed_until: m.claimed_until,
        next_attempt_at: m.next_attempt_at,
        built_at: m.built_at,
        sent_at: m.sent_at,
    })
}

fn tenant_of(t: tenant::Model, domains: &[tenant_domain::Model]) -> DigestTenant {
    DigestTenant {
        recipients: serde_json::from_str(&t.digest_recipients).unwrap_or_default(),
        domains: domains
            .iter()
            .filter(|d| d.tenant_id == t.id)
            .map(|d| (d.id, d.domain.clone()))
            .collect(),
        id: t.id,
        name: t.name,
        active: t.active,
        weekday: t.digest_weekday,
        hour: t.digest_hour,
        timezone: t.timezone,
        created_at: t.created_at,
    }
}

impl Store {
    /// One tenant with its digest settings and domains.
    pub async fn digest_tenant(&self, tenant_id: i64) -> Result<Option<DigestTenant>> {
        let Some(t) = tenant::Entity::find_by_id(tenant_id).one(&self.db).await? else {
            return Ok(None);
        };
        let domains = tenant_domain::Entity::find()
            .filter(tenant_domain::Column::TenantId.eq(tenant_id))
            .order_by_asc(tenant_domain::Column::Domain)
            .all(&self.db)
            .await?;
        Ok(Some(tenant_of(t, &domains)))
    }

    /// The tenant owning a domain.
    pub async fn digest_tenant_of_domain(&self, domain: &str) -> Result<Option<DigestTenant>> {
        let Some(d) = tenant_domain::Entity::find()
            .filter(tenant_domain::Column::Domain.eq(domain.trim().to_ascii_lowercase()))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        self.digest_tenant(d.tenant_id).await
    }

    /// Every active tenant with its settings and domains (two queries), by id.
    pub async fn digest_tenants(&self) -> Result<Vec<DigestTenant>> {
        let tenants = tenant::Entity::find()
            .filter(tenant::Column::Active.eq(true))
            .order_by_asc(tenant::Column::Id)
            .all(&self.db)
            .await?;
        let mut domains = tenant_domain::Entity::find()
            .order_by_asc(tenant_domain::Column::Domain)
            .all(&self.db)
            .await?;
        domains.sort_by_key(|d| d.tenant_id);
        Ok(tenants
            .into_iter()
            .map(|t| {
                let lo = domains.partition_point(|d| d.tenant_id < t.id);
                let hi = domains.partition_point(|d| d.tenant_id <= t.id);
                tenant_of(t, &domains[lo..hi])
            })
            .collect())
    }

    /// Replaces a tenant's digest recipients and schedule (weekday 1–7, hour 0–23, IANA zone;
    /// the zone is checked by the caller).
    pub async fn set_digest_settings(
        &self,
        tenant_id: i64,
        recipients: &[String],
        weekday: i16,
        hour: i16,
        timezone: &str,
    ) -> Result<()> {
        if !(1..=7).contains(&weekday) || !(0..=23).contains(&hour) {
            return Err(StoreError::Invalid(format!(
                "digest weekday {weekday} (1-7) or hour {hour} (0-23)"
            )));
        }
        let res = tenant::Entity::update_many()
            .col_expr(
                tenant::Column::DigestRecipients,
                Expr::value(crate::to_json("digest recipients", &recipients)?),
            )
            .col_expr(tenant::Column::DigestWeekday, Expr::value(weekday))
            .col_expr(tenant::Column::DigestHour, Expr::value(hour))
            .col_expr(tenant::Column::Timezone, Expr::value(timezone.to_owned()))
            .col_expr(tenant::Column::UpdatedAt, Expr::value(secs(Utc::now())))
            .filter(tenant::Column::Id.eq(tenant_id))
            .exec(&self.db)
            .await?;
        if res.rows_affected == 0 {
            return Err(StoreError::NotFound(format!("tenant {tenant_id}")));
        }
        Ok(())
    }

    /// A tenant's anomalies a digest may show: open and acknowledged ones, and resolved ones
    /// whose evidence reaches `since_day` or later (what happened in a week is shown even
    /// when it was resolved since). Dismissed ones never. Most severe first.
    pub async fn digest_anomalies(
        &self,
        tenant_id: i64,
        since_day: i32,
    ) -> Result<Vec<DigestAnomaly>> {
        Ok(anomaly::Entity::find()
            .filter(anomaly::Column::TenantId.eq(tenant_id))
            .filter(
                Condition::any()
                    .add(anomaly::Column::Status.is_in(["open", "acknowledged"]))
                    .add(
                        Condition::all()
                            .add(anomaly::Column::Status.eq("resolved"))
                            .add(anomaly::Column::WindowEnd.gte(since_day)),
                    ),
            )
            .order_by_desc(anomaly::Column::SeverityRank)
            .order_by_desc(anomaly::Column::LastSeenDay)
            .order_by_asc(anomaly::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|a| DigestAnomaly {
                explanation: serde_json::from_str(&a.explanation)
                    .unwrap_or(serde_json::Value::Null),
                domain_id: a.domain_id,
                kind: a.kind,
                severity: a.severity,
                status: a.status,
                first_seen_day: a.first_seen_day,
                last_seen_day: a.last_seen_day,
                window_start: a.window_start,
                window_end: a.window_end,
                summary: a.summary,
            })
            .collect())
    }

    /// The most recent health check of each of a tenant's domains, checked before `before`.
    pub async fn latest_health_checks(
        &self,
        tenant_id: i64,
        before: DateTime<Utc>,
    ) -> Result<Vec<HealthCheckRow>> {
        // Ids first (no report bodies), then the bodies of the latest two runs per domain.
        let heads: Vec<(i64, i64)> = health_check::Entity::find()
            .select_only()
            .column(health_check::Column::Id)
            .column(health_check::Column::DomainId)
            .filter(health_check::Column::TenantId.eq(tenant_id))
            .filter(health_check::Column::CheckedAt.lt(before))
            .order_by_asc(health_check::Column::DomainId)
            .order_by_desc(health_check::Column::CheckedAt)
            .order_by_desc(health_check::Column::Id)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut wanted: Vec<(i64, i64, Option<i64>)> = Vec::new();
        for (id, domain_id) in heads {
            match wanted.last_mut() {
                Some(last) if last.0 == domain_id => {
                    if last.2.is_none() {
                        last.2 = Some(id);
                    }
                }
                _ => wanted.push((domain_id, id, None)),
            }
        }
        let ids: Vec<i64> = wanted
            .iter()
            .flat_map(|(_, latest, prev)| std::iter::once(*latest).chain(*prev))
            .collect();
        let mut rows: std::collections::HashMap<i64, health_check::Model> =
            std::collections::HashMap::new();
        for chunk in ids.chunks(500) {
            for r in health_check::Entity::find()
                .filter(health_check::Column::Id.is_in(chunk.iter().copied()))
                .all(&self.db)
                .await?
            {
                rows.insert(r.id, r);
            }
        }
        let mut out = Vec::with_capacity(wanted.len());
        for (domain_id, latest, prev) in wanted {
            let Some(r) = rows.remove(&latest) else {
                continue;
            };
            out.push(HealthCheckRow {
                domain_id,
                score: r.score,
                grade: r.grade,
                report: r.report,
                checked_at: r.checked_at,
                previous_report: prev.and_then(|p| rows.remove(&p)).map(|p| p.report),
            });
        }
        Ok(out)
    }

    /// Records a health-check run (used by the health-check job and by tests).
    pub async fn insert_health_check(
        &self,
        tenant_id: i64,
        domain_id: i64,
        score: i32,
        grade: &str,
        report: &str,
        checked_at: DateTime<Utc>,
    ) -> Result<()> {
        use sea_orm::ActiveModelTrait as _;
        health_check::ActiveModel {
            tenant_id: Set(tenant_id),
            domain_id: Set(domain_id),
            score: Set(score),
            grade: Set(grade.to_owned()),
            report: Set(report.to_owned()),
            checked_at: Set(secs(checked_at)),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// Creates the `(tenant, week)` row in `pending` unless it exists (insert-or-ignore),
    /// and returns the row as it now is.
    pub async fn digest_ensure(
        &self,
        tenant_id: i64,
        iso_week: &str,
        now: DateTime<Utc>,
    ) -> Result<DigestRow> {
        let now = secs(now);
        digest::Entity::insert(digest::ActiveModel {
            tenant_id: Set(tenant_id),
            iso_week: Set(iso_week.to_owned()),
            status: Set(DigestStatus::Pending.as_str().to_owned()),
            recipients: Set("[]".to_owned()),
            attempts: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::columns([digest::Column::TenantId, digest::Column::IsoWeek])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        self.digest_get(tenant_id, iso_week)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("digest {tenant_id}/{iso_week}")))
    }

    /// Queues a digest to be sent again (staff "resend"): a sent or failed digest goes back
    /// to `built` with the tenant's current recipients, a fresh `Message-ID` and a clean retry
    /// budget, so the next scheduler tick sends it; a week with no digest yet gets its
    /// `pending` row (built and sent on the next tick). A digest being sent or already
    /// waiting to be sent is left as it is. Returns the row as it now is.
    pub async fn digest_queue_resend(
        &self,
        tenant_id: i64,
        iso_week: &str,
        recipients: &[String],
        now: DateTime<Utc>,
    ) -> Result<DigestRow> {
        let row = self.digest_ensure(tenant_id, iso_week, now).await?;
        if !matches!(row.status, DigestStatus::Sent | DigestStatus::Failed) {
            return Ok(row);
        }
        let at = secs(now);
        let domain = row
            .message_id
            .as_deref()
            .and_then(|m| m.rsplit_once('@'))
            .map(|(_, d)| d.trim_end_matches('>').to_owned())
            .unwrap_or_else(|| "sealwatch.invalid".to_owned());
        let message_id = format!(
            "digest.{tenant_id}.{iso_week}.{}.resend@{domain}",
            at.timestamp()
        );
        digest::Entity::update_many()
            .col_expr(
                digest::Column::Status,
                Expr::value(DigestStatus::Built.as_str()),
            )
            .col_expr(
                digest::Column::Recipients,
                Expr::value(crate::to_json("digest recipients", &recipients)?),
            )
            .col_expr(digest::Column::MessageId, Expr::value(message_id))
            .col_expr(digest::Column::Attempts, Expr::value(0))
            .col_expr(
                digest::Column::LastError,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                digest::Column::ClaimedBy,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                digest::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                digest::Column::NextAttemptAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                digest::Column::SentAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(digest::Column::UpdatedAt, Expr::value(at))
            .filter(digest::Column::Id.eq(row.id))
            .filter(
                digest::Column::Status
                    .is_in([DigestStatus::Sent.as_str(), DigestStatus::Failed.as_str()]),
            )
            .exec(&self.db)
            .await?;
        self.digest_get(tenant_id, iso_week)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("digest {tenant_id}/{iso_week}")))
    }

    /// The `(tenant, week)` row, if any.
    pub async fn digest_get(&self, tenant_id: i64, iso_week: &str) -> Result<Option<DigestRow>> {
        digest::Entity::find()
            .filter(digest::Column::TenantId.eq(tenant_id))
            .filter(digest::Column::IsoWeek.eq(iso_week))
            .one(&self.db)
            .await?
            .map(row_of)
            .transpose()
    }

    /// The rows of the given weeks (all tenants).
    pub async fn digests_of_weeks(&self, weeks: &[String]) -> Result<Vec<DigestRow>> {
        if weeks.is_empty() {
            return Ok(Vec::new());
        }
        digest::Entity::find()
            .filter(digest::Column::IsoWeek.is_in(weeks.iter().cloned()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(row_of)
            .collect()
    }

    /// `pending` → `built` with the rendered content. `false` when another builder won.
    pub async fn digest_set_built(
        &self,
        id: i64,
        built: &BuiltDigest,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let now = secs(now);
        let res = digest::Entity::update_many()
            .col_expr(
                digest::Column::Status,
                Expr::value(DigestStatus::Built.as_str()),
            )
            .col_expr(digest::Column::Subject, Expr::value(built.subject.clone()))
            .col_expr(
                digest::Column::TextBody,
                Expr::value(built.text_body.clone()),
            )
            .col_expr(
                digest::Column::HtmlBody,
                Expr::value(built.html_body.clone()),
            )
            .col_expr(
                digest::Column::Recipients,
                Expr::value(crate::to_json("digest recipients", &built.recipients)?),
            )
            .col_expr(
                digest::Column::MessageId,
                Expr::value(built.message_id.clone()),
            )
            .col_expr(digest::Column::BuiltAt, Expr::value(now))
            .col_expr(digest::Column::UpdatedAt, Expr::value(now))
            .filter(digest::Column::Id.eq(id))
            .filter(digest::Column::Status.eq(DigestStatus::Pending.as_str()))
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Claims a row for sending: `built` and due (`next_attempt_at` empty or passed), or
    /// `sending` with an expired lease (its worker died). Counts the attempt. `false` when
    /// the row is not claimable (sent, failed, not due, or leased by a live worker).
    pub async fn digest_claim_send(
        &self,
        id: i64,
        worker: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool> {
        let now = secs(now);
        let due = Condition::all()
            .add(digest::Column::Status.eq(DigestStatus::Built.as_str()))
            .add(
                Condition::any()
                    .add(digest::Column::NextAttemptAt.is_null())
                    .add(digest::Column::NextAttemptAt.lte(now)),
            );
        let abandoned = Condition::all()
            .add(digest::Column::Status.eq(DigestStatus::Sending.as_str()))
            .add(
                Condition::any()
                    .add(digest::Column::ClaimedUntil.is_null())
                    .add(digest::Column::ClaimedUntil.lt(now)),
            );
        let res = digest::Entity::update_many()
            .col_expr(
                digest::Column::Status,
                Expr::value(DigestStatus::Sending.as_str()),
            )
            .col_expr(digest::Column::ClaimedBy, Expr::value(worker.to_owned()))
            .col_expr(digest::Column::ClaimedUntil, Expr::value(secs(lease_until)))
            .col_expr(
                digest::Column::Attempts,
                Expr::col(digest::Column::Attempts).add(1),
            )
            .col_expr(digest::Column::UpdatedAt, Expr::value(now))
            .filter(digest::Column::Id.eq(id))
            .filter(Condition::any().add(due).add(abandoned))
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// `sending` (held by `worker`) → `sent`. `false` when the lease was lost.
    pub async fn digest_mark_sent(
        &self,
        id: i64,
        worker: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let now = secs(now);
        let res = digest::Entity::update_many()
            .col_expr(
                digest::Column::Status,
                Expr::value(DigestStatus::Sent.as_str()),
            )
            .col_expr(digest::Column::SentAt, Expr::value(now))
            .col_expr(
                digest::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                digest::Column::NextAttemptAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(digest::Column::UpdatedAt, Expr::value(now))
            .filter(digest::Column::Id.eq(id))
            .filter(digest::Column::Status.eq(DigestStatus::Sending.as_str()))
            .filter(digest::Column::ClaimedBy.eq(worker))
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// `sending` (held by `worker`) → `built` with `next_attempt_at` (a retry), or →
    /// `failed` when `next_attempt_at` is `None`. The error is kept in `last_error`.
    pub async fn digest_mark_failed(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        next_attempt_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let now = secs(now);
        let status = if next_attempt_at.is_some() {
            DigestStatus::Built
        } else {
            DigestStatus::Failed
        };
        let error: String = error.chars().take(2000).collect();
        let res = digest::Entity::update_many()
            .col_expr(digest::Column::Status, Expr::value(status.as_str()))
            .col_expr(digest::Column::LastError, Expr::value(error))
            .col_expr(
                digest::Column::NextAttemptAt,
                Expr::value(next_attempt_at.map(secs)),
            )
            .col_expr(
                digest::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(digest::Column::UpdatedAt, Expr::value(now))
            .filter(digest::Column::Id.eq(id))
            .filter(digest::Column::Status.eq(DigestStatus::Sending.as_str()))
            .filter(digest::Column::ClaimedBy.eq(worker))
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Rows with work left as of `now`: `pending` (never built), `built` and due, or
    /// `sending` with an expired lease. Oldest first.
    pub async fn digests_unfinished(&self, now: DateTime<Utc>) -> Result<Vec<DigestRow>> {
        let now = secs(now);
        digest::Entity::find()
            .filter(
                Condition::any()
                    .add(digest::Column::Status.eq(DigestStatus::Pending.as_str()))
                    .add(
                        Condition::all()
                            .add(digest::Column::Status.eq(DigestStatus::Built.as_str()))
                            .add(
                                Condition::any()
                                    .add(digest::Column::NextAttemptAt.is_null())
                                    .add(digest::Column::NextAttemptAt.lte(now)),
                            ),
                    )
                    .add(
                        Condition::all()
                            .add(digest::Column::Status.eq(DigestStatus::Sending.as_str()))
                            .add(digest::Column::ClaimedUntil.lt(now)),
                    ),
            )
            .order_by_asc(digest::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(row_of)
            .collect()
    }
}
