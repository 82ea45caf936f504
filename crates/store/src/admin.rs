//! The read and write queries of the admin API, each scoped by tenant.
//!
//! Every function takes a [`Scope`] and filters by it in SQL: a tenant-scoped caller never
//! sees another tenant's rows, and an object of another tenant is [`StoreError::NotFound`],
//! the same answer as an object that does not exist. Lists are ordered deterministically
//! and paged by keyset (`after` the last key of the previous page).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use sealwatch_model::DomainName;

use crate::analysis::severity_rank;
use crate::entities::{
    anomaly, anomaly_review, digest, dmarc_record, dmarc_report, mailbox, quarantine, raw_message,
    tenant, tenant_domain, tls_failure_detail, tls_policy, tls_report,
};
use crate::mailboxes::{AfterAction, TlsMode};
use crate::{Result, Store, StoreError};

/// Which tenants a caller may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Staff: every tenant.
    All,
    /// One tenant's own integration.
    Tenant(i64),
}

impl Scope {
    /// Whether a row of this tenant is visible.
    pub fn permits(self, tenant_id: Option<i64>) -> bool {
        match self {
            Scope::All => true,
            Scope::Tenant(t) => tenant_id == Some(t),
        }
    }

    fn condition(self, column: impl ColumnTrait) -> Condition {
        match self {
            Scope::All => Condition::all(),
            Scope::Tenant(t) => Condition::all().add(column.eq(t)),
        }
    }
}

fn not_found(what: &str, id: i64) -> StoreError {
    StoreError::NotFound(format!("{what} {id}"))
}

// ---------------------------------------------------------------------------------------
// Tenants

/// A tenant with its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRow {
    pub id: i64,
    pub name: String,
    pub active: bool,
    pub digest_recipients: Vec<String>,
    pub digest_weekday: i16,
    pub digest_hour: i16,
    pub timezone: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Changes to a tenant; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TenantPatch {
    pub name: Option<String>,
    pub digest_recipients: Option<Vec<String>>,
    pub digest_weekday: Option<i16>,
    pub digest_hour: Option<i16>,
    pub timezone: Option<String>,
    pub active: Option<bool>,
}

fn to_tenant(m: tenant::Model) -> TenantRow {
    TenantRow {
        id: m.id,
        name: m.name,
        active: m.active,
        digest_recipients: serde_json::from_str(&m.digest_recipients).unwrap_or_default(),
        digest_weekday: m.digest_weekday,
        digest_hour: m.digest_hour,
        timezone: m.timezone,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

// ---------------------------------------------------------------------------------------
// Domains

/// A tenant's domain and its verification state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRow {
    pub id: i64,
    pub tenant_id: i64,
    pub domain: String,
    /// `pending`, `verified` or `failed`.
    pub verification: String,
    pub verified_at: Option<DateTime<Utc>>,
    pub verification_detail: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

fn to_domain(m: tenant_domain::Model) -> DomainRow {
    DomainRow {
        id: m.id,
        tenant_id: m.tenant_id,
        domain: m.domain,
        verification: m.verification,
        verified_at: m.verified_at,
        verification_detail: m
            .verification_detail
            .and_then(|d| serde_json::from_str(&d).ok()),
        created_at: m.created_at,
    }
}

// ---------------------------------------------------------------------------------------
// Mailboxes

/// A mailbox as the API shows it: no password source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxRow {
    pub id: i64,
    pub tenant_id: Option<i64>,
    pub name: String,
    pub host: String,
    pub port: i32,
    pub tls: String,
    pub username: String,
    pub has_password: bool,
    pub folder: String,
    /// `move:FOLDER`, `seen` or `delete`.
    pub after: String,
    pub enabled: bool,
    pub last_poll_at: Option<DateTime<Utc>>,
    pub last_status: Option<String>,
    pub last_error: Option<String>,
    pub consecutive_failures: i32,
    pub created_at: DateTime<Utc>,
}

/// Changes to a mailbox; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct MailboxPatch {
    pub name: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub tls: Option<TlsMode>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub folder: Option<String>,
    pub after: Option<AfterAction>,
    pub enabled: Option<bool>,
}

fn to_mailbox_row(m: mailbox::Model) -> MailboxRow {
    let after = match m.after_action.as_str() {
        "move" => format!("move:{}", m.after_folder.as_deref().unwrap_or("Processed")),
        other => other.to_owned(),
    };
    MailboxRow {
        id: m.id,
        tenant_id: m.tenant_id,
        name: m.name,
        host: m.host,
        port: m.port,
        tls: m.tls_mode,
        username: m.username,
        has_password: m.password_env.is_some() || m.password_secret.is_some(),
        folder: m.folder,
        after,
        enabled: m.enabled,
        last_poll_at: m.last_poll_at,
        last_status: m.last_status,
        last_error: m.last_error,
        consecutive_failures: m.consecutive_failures,
        created_at: m.created_at,
    }
}

// ---------------------------------------------------------------------------------------
// Reports

/// Which reports to list.
#[derive(Debug, Clone, Default)]
pub struct ReportFilter {
    pub domain_id: Option<i64>,
    /// Reports whose range ends at or after this Unix time.
    pub from_ts: Option<i64>,
    /// Reports whose range begins before this Unix time.
    pub to_ts: Option<i64>,
}

/// Keyset position in a report list (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportKey {
    pub begin_ts: i64,
    pub id: i64,
}

/// A DMARC aggregate report's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcReportRow {
    pub id: i64,
    pub tenant_id: i64,
    pub domain_id: i64,
    pub raw_message_id: Option<i64>,
    pub org_name: String,
    pub reporter_email: Option<String>,
    pub report_id: String,
    pub policy_domain: String,
    pub begin_ts: i64,
    pub end_ts: i64,
    pub message_count: i64,
    pub record_count: i32,
    pub p: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// One DMARC record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcRecordRow {
    pub source_ip: String,
    pub count: i64,
    pub disposition: Option<String>,
    pub dkim_result: Option<String>,
    pub spf_result: Option<String>,
    pub header_from: Option<String>,
    pub envelope_from: Option<String>,
    pub dkim_auth: serde_json::Value,
    pub spf_auth: serde_json::Value,
}

/// A TLS-RPT report's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsReportRow {
    pub id: i64,
    pub tenant_id: i64,
    pub domain_id: i64,
    pub raw_message_id: Option<i64>,
    pub org_name: String,
    pub contact_info: Option<String>,
    pub report_id: String,
    pub begin_ts: i64,
    pub end_ts: i64,
    pub successful_sessions: i64,
    pub failed_sessions: i64,
    pub created_at: DateTime<Utc>,
}

/// One TLS-RPT policy with its failure details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPolicyRow {
    pub policy_type: String,
    pub policy_domain: Option<String>,
    pub policy_strings: serde_json::Value,
    pub mx_hosts: serde_json::Value,
    pub successful_sessions: i64,
    pub failed_sessions: i64,
    pub failure_details: Vec<TlsFailureRow>,
}

/// One TLS-RPT failure detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFailureRow {
    pub result_type: String,
    pub sending_mta_ip: Option<String>,
    pub receiving_mx_hostname: Option<String>,
    pub receiving_ip: Option<String>,
    pub failed_sessions: i64,
    pub failure_reason_code: Option<String>,
    pub additional_information: Option<String>,
}

fn json_text(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

fn to_dmarc(m: dmarc_report::Model) -> DmarcReportRow {
    DmarcReportRow {
        id: m.id,
        tenant_id: m.tenant_id,
        domain_id: m.domain_id,
        raw_message_id: m.raw_message_id,
        org_name: m.org_name,
        reporter_email: m.reporter_email,
        report_id: m.report_id,
        policy_domain: m.policy_domain,
        begin_ts: m.begin_ts,
        end_ts: m.end_ts,
        message_count: m.message_count,
        record_count: m.record_count,
        p: m.p,
        created_at: m.created_at,
    }
}

fn to_tls(m: tls_report::Model) -> TlsReportRow {
    TlsReportRow {
        id: m.id,
        tenant_id: m.tenant_id,
        domain_id: m.domain_id,
        raw_message_id: m.raw_message_id,
        org_name: m.org_name,
        contact_info: m.contact_info,
        report_id: m.report_id,
        begin_ts: m.begin_ts,
        end_ts: m.end_ts,
        successful_sessions: m.successful_sessions,
        failed_sessions: m.failed_sessions,
        created_at: m.created_at,
    }
}

// ---------------------------------------------------------------------------------------
// Quarantine

/// A quarantined input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineRow {
    pub id: i64,
    pub raw_message_id: i64,
    pub tenant_id: Option<i64>,
    pub reason: String,
    pub detail: String,
    pub part: Option<String>,
    pub retry_count: i32,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

fn to_quarantine(m: quarantine::Model) -> QuarantineRow {
    QuarantineRow {
        id: m.id,
        raw_message_id: m.raw_message_id,
        tenant_id: m.tenant_id,
        reason: m.reason,
        detail: m.detail,
        part: m.part,
        retry_count: m.retry_count,
        created_at: m.created_at,
        resolved_at: m.resolved_at,
    }
}

// ---------------------------------------------------------------------------------------
// Anomalies

/// Filters of the review queue.
#[derive(Debug, Clone, Default)]
pub struct QueueFilter {
    pub tenant_id: Option<i64>,
    pub domain_id: Option<i64>,
    pub kind: Option<String>,
    pub severity: Option<String>,
    /// Statuses to include (empty: every status).
    pub statuses: Vec<String>,
    /// Last seen on or after this UTC day number.
    pub from_day: Option<i32>,
    /// Last seen on or before this UTC day number.
    pub to_day: Option<i32>,
}

/// Keyset position in the review queue: most severe, most recently seen, oldest id first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueKey {
    pub severity_rank: i16,
    pub last_seen_day: i32,
    pub id: i64,
}

/// An anomaly in the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyRow {
    pub id: i64,
    pub tenant_id: i64,
    pub domain_id: i64,
    pub domain: String,
    pub kind: String,
    pub fingerprint: String,
    pub severity: String,
    pub severity_rank: i16,
    pub status: String,
    pub confidence: f64,
    pub window_start: i32,
    pub window_end: i32,
    pub first_seen_day: i32,
    pub last_seen_day: i32,
    pub summary: String,
    pub occurrences: i32,
    pub assignee: Option<String>,
    pub updated_at: DateTime<Utc>,
    /// Only filled by [`Store::anomaly_detail`].
    pub evidence: serde_json::Value,
    /// Only filled by [`Store::anomaly_detail`].
    pub explanation: serde_json::Value,
}

/// One review of an anomaly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewRow {
    pub id: i64,
    pub action: String,
    pub from_status: String,
    pub to_status: String,
    pub note: Option<String>,
    pub assignee: Option<String>,
    pub actor: Option<String>,
    pub created_at: DateTime<Utc>,
}

fn to_anomaly(m: anomaly::Model, domain: String, full: bool) -> AnomalyRow {
    AnomalyRow {
        id: m.id,
        tenant_id: m.tenant_id,
        domain_id: m.domain_id,
        domain,
        kind: m.kind,
        fingerprint: m.fingerprint,
        severity: m.severity,
        severity_rank: m.severity_rank,
        status: m.status,
        confidence: m.confidence,
        window_start: m.window_start,
        window_end: m.window_end,
        first_seen_day: m.first_seen_day,
        last_seen_day: m.last_seen_day,
        summary: m.summary,
        occurrences: m.occurrences,
        assignee: m.assignee,
        updated_at: m.updated_at,
        evidence: if full {
            json_text(&m.evidence)
        } else {
            serde_json::Value::Null
        },
        explanation: if full {
            json_text(&m.explanation)
        } else {
            serde_json::Value::Null
        },
    }
}

impl Store {
    // ---- tenants -----------------------------------------------------------------------

    /// Tenants by id.
    pub async fn tenant_page(
        &self,
        scope: Scope,
        after: Option<i64>,
        limit: u64,
    ) -> Result<Vec<TenantRow>> {
        let mut q = tenant::Entity::find()
            .filter(scope.condition(tenant::Column::Id))
            .order_by_asc(tenant::Column::Id);
        if let Some(a) = after {
            q = q.filter(tenant::Column::Id.gt(a));
        }
        Ok(q.limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_tenant)
            .collect())
    }

    /// One tenant.
    pub async fn tenant_get(&self, scope: Scope, id: i64) -> Result<TenantRow> {
        tenant::Entity::find_by_id(id)
            .filter(scope.condition(tenant::Column::Id))
            .one(&self.db)
            .await?
            .map(to_tenant)
            .ok_or_else(|| not_found("tenant", id))
    }

    /// Creates a tenant without domains, with its digest settings.
    pub async fn tenant_create(&self, name: &str, patch: TenantPatch) -> Result<TenantRow> {
        let t = self.create_tenant(name, &[]).await?;
        let (_, after) = self.tenant_update(Scope::All, t.id, patch).await?;
        Ok(after)
    }

    /// Updates a tenant; returns it before and after.
    pub async fn tenant_update(
        &self,
        scope: Scope,
        id: i64,
        patch: TenantPatch,
    ) -> Result<(TenantRow, TenantRow)> {
        let txn = self.db.begin().await?;
        let m = tenant::Entity::find_by_id(id)
            .filter(scope.condition(tenant::Column::Id))
            .one(&txn)
            .await?
            .ok_or_else(|| not_found("tenant", id))?;
        if let Some(name) = &patch.name
            && name != &m.name
            && tenant::Entity::find()
                .filter(tenant::Column::Name.eq(name.as_str()))
                .one(&txn)
                .await?
                .is_some()
        {
            return Err(StoreError::TenantExists(name.clone()));
        }
        let before = to_tenant(m.clone());
        let mut am: tenant::ActiveModel = m.into();
        if let Some(v) = patch.name {
            am.name = Set(v);
        }
        if let Some(v) = patch.digest_recipients {
            am.digest_recipients = Set(crate::to_json("digest recipients", &v)?);
        }
        if let Some(v) = patch.digest_weekday {
            am.digest_weekday = Set(v);
        }
        if let Some(v) = patch.digest_hour {
            am.digest_hour = Set(v);
        }
        if let Some(v) = patch.timezone {
            am.timezone = Set(v);
        }
        if let Some(v) = patch.active {
            am.active = Set(v);
        }
        am.updated_at = Set(Utc::now());
        let after = to_tenant(am.update(&txn).await?);
        txn.commit().await?;
        Ok((before, after))
    }

    // ---- domains -----------------------------------------------------------------------

    /// Adds a domain to a tenant (pending verification).
    pub async fn domain_add(
        &self,
        scope: Scope,
        tenant_id: i64,
        domain: &DomainName,
    ) -> Result<DomainRow> {
        let txn = self.db.begin().await?;
        tenant::Entity::find_by_id(tenant_id)
            .filter(scope.condition(tenant::Column::Id))
            .one(&txn)
            .await?
            .ok_or_else(|| not_found("tenant", tenant_id))?;
        if tenant_domain::Entity::find()
            .filter(tenant_domain::Column::Domain.eq(domain.as_str()))
            .one(&txn)
            .await?
            .is_some()
        {
            return Err(StoreError::DomainTaken(domain.to_string()));
        }
        let m = tenant_domain::ActiveModel {
            tenant_id: Set(tenant_id),
            domain: Set(domain.to_string()),
            verification: Set("pending".to_owned()),
            created_at: Set(Utc::now()),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(to_domain(m))
    }

    /// Domains by id, optionally of one tenant.
    pub async fn domain_page(
        &self,
        scope: Scope,
        tenant_id: Option<i64>,
        after: Option<i64>,
        limit: u64,
    ) -> Result<Vec<DomainRow>> {
        let mut q = tenant_domain::Entity::find()
            .filter(scope.condition(tenant_domain::Column::TenantId))
            .order_by_asc(tenant_domain::Column::Id);
        if let Some(t) = tenant_id {
            q = q.filter(tenant_domain::Column::TenantId.eq(t));
        }
        if let Some(a) = after {
            q = q.filter(tenant_domain::Column::Id.gt(a));
        }
        Ok(q.limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_domain)
            .collect())
    }

    /// One domain.
    pub async fn domain_get(&self, scope: Scope, id: i64) -> Result<DomainRow> {
        tenant_domain::Entity::find_by_id(id)
            .filter(scope.condition(tenant_domain::Column::TenantId))
            .one(&self.db)
            .await?
            .map(to_domain)
            .ok_or_else(|| not_found("domain", id))
    }

    /// A domain by name.
    pub async fn domain_by_name(&self, scope: Scope, name: &DomainName) -> Result<DomainRow> {
        tenant_domain::Entity::find()
            .filter(tenant_domain::Column::Domain.eq(name.as_str()))
            .filter(scope.condition(tenant_domain::Column::TenantId))
            .one(&self.db)
            .await?
            .map(to_domain)
            .ok_or_else(|| StoreError::NotFound(format!("domain {name}")))
    }

    /// Removes a domain and (by cascade) its reports and anomalies.
    pub async fn domain_remove(&self, scope: Scope, id: i64) -> Result<DomainRow> {
        let row = self.domain_get(scope, id).await?;
        tenant_domain::Entity::delete_by_id(id)
            .exec(&self.db)
            .await?;
        Ok(row)
    }

    /// Records the result of a DNS verification; returns the domain before and after.
    pub async fn domain_record_verification(
        &self,
        scope: Scope,
        id: i64,
        verified: bool,
        detail: &serde_json::Value,
    ) -> Result<(DomainRow, DomainRow)> {
        let m = tenant_domain::Entity::find_by_id(id)
            .filter(scope.condition(tenant_domain::Column::TenantId))
            .one(&self.db)
            .await?
            .ok_or_else(|| not_found("domain", id))?;
        let before = to_domain(m.clone());
        let mut am: tenant_domain::ActiveModel = m.into();
        am.verification = Set(if verified { "verified" } else { "failed" }.to_owned());
        if verified {
            am.verified_at = Set(Some(Utc::now()));
        }
        am.verification_detail = Set(Some(detail.to_string()));
        let after = to_domain(am.update(&self.db).await?);
        Ok((before, after))
    }

    // ---- mailboxes ---------------------------------------------------------------------

    /// Mailboxes by id. A tenant scope sees only its per-tenant mailboxes.
    pub async fn mailbox_page(
        &self,
        scope: Scope,
        after: Option<i64>,
        limit: u64,
    ) -> Result<Vec<MailboxRow>> {
        let mut q = mailbox::Entity::find()
            .filter(scope.condition(mailbox::Column::TenantId))
            .order_by_asc(mailbox::Column::Id);
        if let Some(a) = after {
            q = q.filter(mailbox::Column::Id.gt(a));
        }
        Ok(q.limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_mailbox_row)
            .collect())
    }

    /// One mailbox.
    pub async fn mailbox_get(&self, scope: Scope, id: i64) -> Result<MailboxRow> {
        mailbox::Entity::find_by_id(id)
            .filter(scope.condition(mailbox::Column::TenantId))
            .one(&self.db)
            .await?
            .map(to_mailbox_row)
            .ok_or_else(|| not_found("mailbox", id))
    }

    /// Updates a mailbox; returns it before and after. Changing where it connects resets
    /// the sync position.
    pub async fn mailbox_update(
        &self,
        scope: Scope,
        id: i64,
        patch: MailboxPatch,
    ) -> Result<(MailboxRow, MailboxRow)> {
        let m = mailbox::Entity::find_by_id(id)
            .filter(scope.condition(mailbox::Column::TenantId))
            .one(&self.db)
            .await?
            .ok_or_else(|| not_found("mailbox", id))?;
        if let Some(name) = &patch.name
            && name != &m.name
            && mailbox::Entity::find()
                .filter(mailbox::Column::Name.eq(name.as_str()))
                .one(&self.db)
                .await?
                .is_some()
        {
            return Err(StoreError::MailboxExists(name.clone()));
        }
        let before = to_mailbox_row(m.clone());
        let moved = patch.host.as_ref().is_some_and(|h| h != &m.host)
            || patch.username.as_ref().is_some_and(|u| u != &m.username)
            || patch.folder.as_ref().is_some_and(|f| f != &m.folder);
        let mut am: mailbox::ActiveModel = m.into();
        if let Some(v) = patch.name {
            am.name = Set(v);
        }
        if let Some(v) = patch.host {
            am.host = Set(v);
        }
        if let Some(v) = patch.port {
            am.port = Set(i32::from(v));
        }
        if let Some(v) = patch.tls {
            am.tls_mode = Set(v.as_str().to_owned());
        }
        if let Some(v) = patch.username {
            am.username = Set(v);
        }
        if let Some(v) = patch.password_env {
            am.password_env = Set(Some(v));
            am.password_secret = Set(None);
        }
        if let Some(v) = patch.folder {
            am.folder = Set(v);
        }
        if let Some(after) = patch.after {
            let (action, folder) = match after {
                AfterAction::Move(f) => ("move", Some(f)),
                AfterAction::Seen => ("seen", None),
                AfterAction::Delete => ("delete", None),
            };
            am.after_action = Set(action.to_owned());
            am.after_folder = Set(folder);
        }
        if let Some(v) = patch.enabled {
            am.enabled = Set(v);
        }
        if moved {
            am.uidvalidity = Set(None);
            am.last_uid = Set(0);
        }
        let after = to_mailbox_row(am.update(&self.db).await?);
        Ok((before, after))
    }

    /// Removes a mailbox (its processed marks go with it; stored reports stay).
    pub async fn mailbox_remove(&self, scope: Scope, id: i64) -> Result<MailboxRow> {
        let row = self.mailbox_get(scope, id).await?;
        mailbox::Entity::delete_by_id(id).exec(&self.db).await?;
        Ok(row)
    }

    // ---- reports -----------------------------------------------------------------------

    /// DMARC aggregate reports, newest first.
    pub async fn dmarc_report_page(
        &self,
        scope: Scope,
        filter: &ReportFilter,
        after: Option<ReportKey>,
        limit: u64,
    ) -> Result<Vec<DmarcReportRow>> {
        use dmarc_report::Column as C;
        let mut q = dmarc_report::Entity::find()
            .filter(scope.condition(C::TenantId))
            .order_by_desc(C::BeginTs)
            .order_by_desc(C::Id);
        if let Some(d) = filter.domain_id {
            q = q.filter(C::DomainId.eq(d));
        }
        if let Some(f) = filter.from_ts {
            q = q.filter(C::EndTs.gte(f));
        }
        if let Some(t) = filter.to_ts {
            q = q.filter(C::BeginTs.lt(t));
        }
        if let Some(k) = after {
            q = q.filter(
                Condition::any().add(C::BeginTs.lt(k.begin_ts)).add(
                    Condition::all()
                        .add(C::BeginTs.eq(k.begin_ts))
                        .add(C::Id.lt(k.id)),
                ),
            );
        }
        Ok(q.limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_dmarc)
            .collect())
    }

    /// One DMARC report with its records.
    pub async fn dmarc_report_get(
        &self,
        scope: Scope,
        id: i64,
    ) -> Result<(DmarcReportRow, Vec<DmarcRecordRow>)> {
        let r = dmarc_report::Entity::find_by_id(id)
            .filter(scope.condition(dmarc_report::Column::TenantId))
            .one(&self.db)
            .await?
            .ok_or_else(|| not_found("DMARC report", id))?;
        let records = dmarc_record::Entity::find()
            .filter(dmarc_record::Column::ReportId.eq(id))
            .order_by_asc(dmarc_record::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| DmarcRecordRow {
                source_ip: m.source_ip,
                count: m.count,
                disposition: m.disposition,
                dkim_result: m.dkim_result,
                spf_result: m.spf_result,
                header_from: m.header_from,
                envelope_from: m.envelope_from,
                dkim_auth: json_text(&m.dkim_auth),
                spf_auth: json_text(&m.spf_auth),
            })
            .collect();
        Ok((to_dmarc(r), records))
    }

    /// TLS-RPT reports, newest first.
    pub async fn tls_report_page(
        &self,
        scope: Scope,
        filter: &ReportFilter,
        after: Option<ReportKey>,
        limit: u64,
    ) -> Result<Vec<TlsReportRow>> {
        use tls_report::Column as C;
        let mut q = tls_report::Entity::find()
            .filter(scope.condition(C::TenantId))
            .order_by_desc(C::BeginTs)
            .order_by_desc(C::Id);
        if let Some(d) = filter.domain_id {
            q = q.filter(C::DomainId.eq(d));
        }
        if let Some(f) = filter.from_ts {
            q = q.filter(C::EndTs.gte(f));
        }
        if let Some(t) = filter.to_ts {
            q = q.filter(C::BeginTs.lt(t));
        }
        if let Some(k) = after {
            q = q.filter(
                Condition::any().add(C::BeginTs.lt(k.begin_ts)).add(
                    Condition::all()
                        .add(C::BeginTs.eq(k.begin_ts))
                        .add(C::Id.lt(k.id)),
                ),
            );
        }
        Ok(q.limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_tls)
            .collect())
    }

    /// One TLS-RPT report with its policies and failure details.
    pub async fn tls_report_get(
        &self,
        scope: Scope,
        id: i64,
    ) -> Result<(TlsReportRow, Vec<TlsPolicyRow>)> {
        let r = tls_report::Entity::find_by_id(id)
            .filter(scope.condition(tls_report::Column::TenantId))
            .one(&self.db)
            .await?
            .ok_or_else(|| not_found("TLS report", id))?;
        let policies = tls_policy::Entity::find()
            .filter(tls_policy::Column::TlsReportId.eq(id))
            .order_by_asc(tls_policy::Column::Id)
            .all(&self.db)
            .await?;
        let details = tls_failure_detail::Entity::find()
            .filter(tls_failure_detail::Column::TlsReportId.eq(id))
            .order_by_asc(tls_failure_detail::Column::Id)
            .all(&self.db)
            .await?;
        let out = policies
            .into_iter()
            .map(|p| TlsPolicyRow {
                failure_details: details
                    .iter()
                    .filter(|d| d.tls_policy_id == p.id)
                    .map(|d| TlsFailureRow {
                        result_type: d.result_type.clone(),
                        sending_mta_ip: d.sending_mta_ip.clone(),
                        receiving_mx_hostname: d.receiving_mx_hostname.clone(),
                        receiving_ip: d.receiving_ip.clone(),
                        failed_sessions: d.failed_sessions,
                        failure_reason_code: d.failure_reason_code.clone(),
                        additional_information: d.additional_information.clone(),
                    })
                    .collect(),
                policy_type: p.policy_type,
                policy_domain: p.policy_domain,
                policy_strings: json_text(&p.policy_strings),
                mx_hosts: json_text(&p.mx_hosts),
                successful_sessions: p.successful_sessions,
                failed_sessions: p.failed_sessions,
            })
            .collect();
        Ok((to_tls(r), out))
    }

    /// The raw bytes a report was parsed from.
    pub async fn report_raw(&self, scope: Scope, tls: bool, id: i64) -> Result<Vec<u8>> {
        let raw_id = if tls {
            self.tls_report_get(scope, id).await?.0.raw_message_id
        } else {
            dmarc_report::Entity::find_by_id(id)
                .filter(scope.condition(dmarc_report::Column::TenantId))
                .one(&self.db)
                .await?
                .ok_or_else(|| not_found("DMARC report", id))?
                .raw_message_id
        };
        let raw_id = raw_id.ok_or_else(|| StoreError::NotFound(format!("raw bytes of {id}")))?;
        raw_message::Entity::find_by_id(raw_id)
            .one(&self.db)
            .await?
            .map(|m| m.bytes)
            .ok_or_else(|| not_found("raw message", raw_id))
    }

    // ---- quarantine --------------------------------------------------------------------

    /// Quarantine entries, newest first (by id, before `before`).
    pub async fn quarantine_page(
        &self,
        scope: Scope,
        reason: Option<&str>,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<QuarantineRow>> {
        let mut q = quarantine::Entity::find()
            .filter(scope.condition(quarantine::Column::TenantId))
            .order_by_desc(quarantine::Column::Id);
        if let Some(r) = reason {
            q = q.filter(quarantine::Column::Reason.eq(r));
        }
        if let Some(b) = before {
            q = q.filter(quarantine::Column::Id.lt(b));
        }
        Ok(q.limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_quarantine)
            .collect())
    }

    /// One quarantine entry with its raw bytes.
    pub async fn quarantine_get(&self, scope: Scope, id: i64) -> Result<(QuarantineRow, Vec<u8>)> {
        let q = quarantine::Entity::find_by_id(id)
            .filter(scope.condition(quarantine::Column::TenantId))
            .one(&self.db)
            .await?
            .ok_or_else(|| not_found("quarantine entry", id))?;
        let bytes = raw_message::Entity::find_by_id(q.raw_message_id)
            .one(&self.db)
            .await?
            .map(|m| m.bytes)
            .unwrap_or_default();
        Ok((to_quarantine(q), bytes))
    }

    // ---- anomalies ---------------------------------------------------------------------

    /// The review queue: most severe first, then most recently seen, then oldest id.
    pub async fn anomaly_queue(
        &self,
        scope: Scope,
        filter: &QueueFilter,
        after: Option<QueueKey>,
        limit: u64,
    ) -> Result<Vec<AnomalyRow>> {
        use anomaly::Column as C;
        let mut q = anomaly::Entity::find()
            .select_only()
            .columns([
                C::Id,
                C::TenantId,
                C::DomainId,
                C::Kind,
                C::Fingerprint,
                C::Severity,
                C::SeverityRank,
                C::Status,
                C::Confidence,
                C::WindowStart,
                C::WindowEnd,
                C::FirstSeenDay,
                C::LastSeenDay,
                C::Summary,
                C::Occurrences,
                C::Reopened,
                C::Assignee,
                C::CreatedAt,
                C::UpdatedAt,
                C::ResolvedAt,
            ])
            .expr_as(Expr::val(""), "evidence")
            .expr_as(Expr::val(""), "explanation")
            .filter(scope.condition(C::TenantId))
            .order_by_desc(C::SeverityRank)
            .order_by_desc(C::LastSeenDay)
            .order_by_asc(C::Id);
        if let Some(t) = filter.tenant_id {
            q = q.filter(C::TenantId.eq(t));
        }
        if let Some(d) = filter.domain_id {
            q = q.filter(C::DomainId.eq(d));
        }
        if let Some(k) = &filter.kind {
            q = q.filter(C::Kind.eq(k.as_str()));
        }
        if let Some(s) = &filter.severity {
            q = q.filter(C::SeverityRank.eq(severity_rank(s)));
        }
        if let Some(f) = filter.from_day {
            q = q.filter(C::LastSeenDay.gte(f));
        }
        if let Some(t) = filter.to_day {
            q = q.filter(C::LastSeenDay.lte(t));
        }
        if let Some(k) = after {
            q = q.filter(
                Condition::any()
                    .add(C::SeverityRank.lt(k.severity_rank))
                    .add(
                        Condition::all()
                            .add(C::SeverityRank.eq(k.severity_rank))
                            .add(C::LastSeenDay.lt(k.last_seen_day)),
                    )
                    .add(
                        Condition::all()
                            .add(C::SeverityRank.eq(k.severity_rank))
                            .add(C::LastSeenDay.eq(k.last_seen_day))
                            .add(C::Id.gt(k.id)),
                    ),
            );
        }
        let rows = match filter.statuses.as_slice() {
            [] => q.limit(limit).all(&self.db).await?,
            // One range of the queue index (status, severity_rank, last_seen_day) per status,
            // merged here: cheaper than sorting every row of several statuses.
            statuses => {
                let mut all = Vec::new();
                for s in statuses {
                    all.extend(
                        q.clone()
                            .filter(C::Status.eq(s.as_str()))
                            .limit(limit)
                            .all(&self.db)
                            .await?,
                    );
                }
                all.sort_by(|a, b| {
                    b.severity_rank
                        .cmp(&a.severity_rank)
                        .then(b.last_seen_day.cmp(&a.last_seen_day))
                        .then(a.id.cmp(&b.id))
                });
                all.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                all
            }
        };
        let ids: Vec<i64> = rows.iter().map(|a| a.domain_id).collect();
        let domains = if ids.is_empty() {
            Vec::new()
        } else {
            tenant_domain::Entity::find()
                .filter(tenant_domain::Column::Id.is_in(ids))
                .all(&self.db)
                .await?
        };
        Ok(rows
            .into_iter()
            .map(|a| {
                let name = domains
                    .iter()
                    .find(|d| d.id == a.domain_id)
                    .map(|d| d.domain.clone())
                    .unwrap_or_default();
                to_anomaly(a, name, false)
            })
            .collect())
    }

    /// One anomaly with its evidence, explanation and review history (oldest first).
    pub async fn anomaly_detail(
        &self,
        scope: Scope,
        id: i64,
    ) -> Result<(AnomalyRow, Vec<ReviewRow>)> {
        let a = anomaly::Entity::find_by_id(id)
            .filter(scope.condition(anomaly::Column::TenantId))
            .one(&self.db)
            .await?
            .ok_or_else(|| not_found("anomaly", id))?;
        let domain = tenant_domain::Entity::find_by_id(a.domain_id)
            .one(&self.db)
            .await?
            .map(|d| d.domain)
            .unwrap_or_default();
        let reviews = anomaly_review::Entity::find()
            .filter(anomaly_review::Column::AnomalyId.eq(id))
            .order_by_asc(anomaly_review::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|r| ReviewRow {
                id: r.id,
                action: r.action,
                from_status: r.from_status,
                to_status: r.to_status,
                note: r.note,
                assignee: r.assignee,
                actor: r.actor,
                created_at: r.created_at,
            })
            .collect();
        Ok((to_anomaly(a, domain, true), reviews))
    }

    /// Reviews an anomaly within a scope (see [`Store::review_anomaly`]).
    pub async fn anomaly_review_scoped(
        &self,
        scope: Scope,
        id: i64,
        action: &str,
        note: Option<&str>,
        assignee: Option<&str>,
        actor: &str,
    ) -> Result<()> {
        let visible = anomaly::Entity::find_by_id(id)
            .filter(scope.condition(anomaly::Column::TenantId))
            .count(&self.db)
            .await?;
        if visible == 0 {
            return Err(not_found("anomaly", id));
        }
        self.review_anomaly(id, action, note, assignee, Some(actor))
            .await?;
        Ok(())
    }

    /// Counts for the metrics endpoint: stored reports and open quarantine entries.
    pub async fn metric_counts(&self) -> Result<(u64, u64, u64)> {
        let dmarc = dmarc_report::Entity::find().count(&self.db).await?;
        let tls = tls_report::Entity::find().count(&self.db).await?;
        let quarantined = quarantine::Entity::find()
            .filter(Expr::col(quarantine::Column::ResolvedAt).is_null())
            .count(&self.db)
            .await?;
        Ok((dmarc, tls, quarantined))
    }
}

/// A digest of a tenant and week, without its bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestSummary {
    pub id: i64,
    pub tenant_id: i64,
    pub iso_week: String,
    /// `pending`, `built`, `sending`, `sent` or `failed`.
    pub status: String,
    pub subject: Option<String>,
    pub recipients: Vec<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub built_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl Store {
    /// A tenant's digests, newest first (by id, before `before`).
    pub async fn digest_page(
        &self,
        scope: Scope,
        tenant_id: i64,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<DigestSummary>> {
        self.tenant_get(scope, tenant_id).await?;
        let mut q = digest::Entity::find()
            .filter(digest::Column::TenantId.eq(tenant_id))
            .order_by_desc(digest::Column::Id);
        if let Some(b) = before {
            q = q.filter(digest::Column::Id.lt(b));
        }
        Ok(q.limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|d| DigestSummary {
                id: d.id,
                tenant_id: d.tenant_id,
                iso_week: d.iso_week,
                status: d.status,
                subject: d.subject,
                recipients: serde_json::from_str(&d.recipients).unwrap_or_default(),
                attempts: d.attempts,
                last_error: d.last_error,
                built_at: d.built_at,
                sent_at: d.sent_at,
            })
            .collect())
    }
}
