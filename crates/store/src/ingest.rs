//! The ingest write path: raw messages, their reports and quarantine entries, in one
//! transaction per batch.

use std::collections::BTreeMap;

use chrono::Utc;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
    QuerySelect, Set, Statement, TransactionTrait, TryInsertResult,
};
use sealwatch_model::{AggregateReport, FailureReport, Report, TlsReport};

use crate::entities::{
    dmarc_record, dmarc_report, failure_report, mailbox_message, quarantine, raw_message,
    tls_failure_detail, tls_policy, tls_report,
};
use crate::{Result, Store, to_json};

/// Where a message came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageSource {
    /// An IMAP message: marked processed in the same transaction.
    Imap {
        mailbox_id: i64,
        uidvalidity: u32,
        uid: u32,
    },
    /// A file from `sealwatch import` (path, or path and position inside an mbox).
    File { origin: String },
    /// A report posted over HTTPS.
    Http { origin: String },
}

/// A routed report ready to store.
#[derive(Debug, Clone)]
pub struct ReportItem {
    pub tenant_id: i64,
    pub domain_id: i64,
    /// Reporter + report id + policy domain + date range.
    pub dedupe_key: String,
    /// Hash of the report's content, to tell a re-send from a conflicting report.
    pub content_hash: String,
    pub report: Report,
}

/// What one message contributes.
#[derive(Debug, Clone)]
pub enum Item {
    Report(Box<ReportItem>),
    Quarantine {
        tenant_id: Option<i64>,
        /// Stable reason code (`unrouted`, `bounce`, `invalid-json`, …).
        reason: String,
        detail: String,
        part: Option<String>,
    },
}

/// A message to write.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub sha256: String,
    pub bytes: Vec<u8>,
    pub source: MessageSource,
    pub message_id: Option<String>,
    pub items: Vec<Item>,
}

/// Counts from writing one or more batches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    pub messages: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub quarantined: BTreeMap<String, u64>,
}

impl WriteOutcome {
    pub fn quarantined_total(&self) -> u64 {
        self.quarantined.values().sum()
    }

    pub fn merge(&mut self, other: &WriteOutcome) {
        self.messages += other.messages;
        self.stored += other.stored;
        self.duplicates += other.duplicates;
        for (k, v) in &other.quarantined {
            *self.quarantined.entry(k.clone()).or_default() += v;
        }
    }

    /// `stored N, duplicates N, quarantined N (reason: count, ...)`
    pub fn summary_line(&self) -> String {
        let mut line = format!(
            "stored {}, duplicates {}, quarantined {}",
            self.stored,
            self.duplicates,
            self.quarantined_total()
        );
        if !self.quarantined.is_empty() {
            let reasons: Vec<String> = self
                .quarantined
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            line.push_str(&format!(" ({})", reasons.join(", ")));
        }
        line
    }
}

/// Row counts, for tests and `sealwatch status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub raw_messages: u64,
    pub dmarc_reports: u64,
    pub dmarc_records: u64,
    pub tls_reports: u64,
    pub failure_reports: u64,
    pub quarantine: u64,
    /// Sum of DMARC message counts over all stored reports.
    pub dmarc_messages: i64,
}

fn outcome_of(items: &[Item]) -> &'static str {
    let reports = items
        .iter()
        .filter(|i| matches!(i, Item::Report(_)))
        .count();
    match (reports, items.len() - reports) {
        (0, _) => "quarantined",
        (_, 0) => "reports",
        _ => "partial",
    }
}

const CHUNK: usize = 500;

impl Store {
    /// Writes a batch of messages in one transaction. Idempotent: a message seen before
    /// (same bytes) and a report seen before (same dedupe key and content) are counted as
    /// duplicates and not stored again; a report whose key matches but whose content differs
    /// is quarantined as `conflicting-duplicate` so neither copy is lost or double-counted.
    pub async fn write_messages(&self, messages: Vec<NewMessage>) -> Result<WriteOutcome> {
        let txn = self.db.begin().await?;
        let mut out = WriteOutcome::default();
        for msg in messages {
            write_one(&txn, msg, &mut out).await?;
        }
        txn.commit().await?;
        Ok(out)
    }

    /// Row counts of the ingest tables.
    pub async fn counts(&self) -> Result<Counts> {
        let db = &self.db;
        // SUM(bigint) is NUMERIC on PostgreSQL: cast back so both engines decode an i64.
        let total = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT CAST(COALESCE(SUM(message_count), 0) AS BIGINT) AS total FROM dmarc_reports",
            ))
            .await?
            .map(|row| row.try_get::<i64>("", "total"))
            .transpose()?
            .unwrap_or(0);
        Ok(Counts {
            raw_messages: raw_message::Entity::find().count(db).await?,
            dmarc_reports: dmarc_report::Entity::find().count(db).await?,
            dmarc_records: dmarc_record::Entity::find().count(db).await?,
            tls_reports: tls_report::Entity::find().count(db).await?,
            failure_reports: failure_report::Entity::find().count(db).await?,
            quarantine: quarantine::Entity::find().count(db).await?,
            dmarc_messages: total,
        })
    }
}

async fn write_one(
    txn: &DatabaseTransaction,
    msg: NewMessage,
    out: &mut WriteOutcome,
) -> Result<()> {
    out.messages += 1;
    let (source, mailbox_id, origin, imap) = match &msg.source {
        MessageSource::Imap {
            mailbox_id,
            uidvalidity,
            uid,
        } => (
            "imap",
            Some(*mailbox_id),
            None,
            Some((*mailbox_id, *uidvalidity, *uid)),
        ),
        MessageSource::File { origin } => ("import", None, Some(origin.clone()), None),
        MessageSource::Http { origin } => ("http", None, Some(origin.clone()), None),
    };
    let size = msg.bytes.len() as i64;
    let inserted = raw_message::Entity::insert(raw_message::ActiveModel {
        sha256: Set(msg.sha256.clone()),
        size: Set(size),
        source: Set(source.to_owned()),
        mailbox_id: Set(mailbox_id),
        origin: Set(origin),
        message_id: Set(msg.message_id.clone()),
        outcome: Set(outcome_of(&msg.items).to_owned()),
        bytes: Set(msg.bytes),
        received_at: Set(Utc::now()),
        ..Default::default()
    })
    .on_conflict_do_nothing_on([raw_message::Column::Sha256])
    .exec(txn)
    .await?;
    let (raw_id, fresh) = match inserted {
        TryInsertResult::Inserted(r) => (r.last_insert_id, true),
        _ => {
            let existing = raw_message::Entity::find()
                .filter(raw_message::Column::Sha256.eq(msg.sha256.as_str()))
                .select_only()
                .column(raw_message::Column::Id)
                .into_tuple::<i64>()
                .one(txn)
                .await?
                .ok_or_else(|| {
                    sea_orm::DbErr::RecordNotFound(format!("raw message {}", msg.sha256))
                })?;
            (existing, false)
        }
    };
    if let Some((mailbox_id, uidvalidity, uid)) = imap {
        mailbox_message::Entity::insert(mailbox_message::ActiveModel {
            mailbox_id: Set(mailbox_id),
            uidvalidity: Set(i64::from(uidvalidity)),
            uid: Set(i64::from(uid)),
            raw_message_id: Set(raw_id),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        .on_conflict_do_nothing_on([
            mailbox_message::Column::MailboxId,
            mailbox_message::Column::Uidvalidity,
            mailbox_message::Column::Uid,
        ])
        .exec_without_returning(txn)
        .await?;
    }
    if !fresh {
        // The same bytes were ingested before, with everything they contain.
        out.duplicates += msg.items.len() as u64;
        return Ok(());
    }
    for item in msg.items {
        match item {
            Item::Report(r) => write_report(txn, raw_id, *r, out).await?,
            Item::Quarantine {
                tenant_id,
                reason,
                detail,
                part,
            } => {
                insert_quarantine(txn, raw_id, tenant_id, &reason, &detail, part).await?;
                *out.quarantined.entry(reason).or_default() += 1;
            }
        }
    }
    Ok(())
}

async fn insert_quarantine(
    txn: &DatabaseTransaction,
    raw_id: i64,
    tenant_id: Option<i64>,
    reason: &str,
    detail: &str,
    part: Option<String>,
) -> Result<()> {
    quarantine::Entity::insert(quarantine::ActiveModel {
        raw_message_id: Set(raw_id),
        tenant_id: Set(tenant_id),
        reason: Set(reason.to_owned()),
        detail: Set(detail.to_owned()),
        part: Set(part),
        retry_count: Set(0),
        created_at: Set(Utc::now()),
        ..Default::default()
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

async fn write_report(
    txn: &DatabaseTransaction,
    raw_id: i64,
    item: ReportItem,
    out: &mut WriteOutcome,
) -> Result<()> {
    let ReportItem {
        tenant_id,
        domain_id,
        dedupe_key,
        content_hash,
        report,
    } = item;
    let stored = match &report {
        Report::DmarcAggregate(r) => {
            insert_aggregate(
                txn,
                raw_id,
                tenant_id,
                domain_id,
                &dedupe_key,
                &content_hash,
                r,
            )
            .await?
        }
        Report::TlsRpt(r) => {
            insert_tls(
                txn,
                raw_id,
                tenant_id,
                domain_id,
                &dedupe_key,
                &content_hash,
                r,
            )
            .await?
        }
        Report::DmarcFailure(r) => {
            insert_failure(txn, raw_id, tenant_id, domain_id, &dedupe_key, r).await?
        }
    };
    if stored {
        out.stored += 1;
        return Ok(());
    }
    let existing_hash: Option<String> = match report {
        Report::DmarcAggregate(_) => {
            dmarc_report::Entity::find()
                .filter(dmarc_report::Column::DedupeKey.eq(dedupe_key.as_str()))
                .select_only()
                .column(dmarc_report::Column::ContentHash)
                .into_tuple()
                .one(txn)
                .await?
        }
        Report::TlsRpt(_) => {
            tls_report::Entity::find()
                .filter(tls_report::Column::DedupeKey.eq(dedupe_key.as_str()))
                .select_only()
                .column(tls_report::Column::ContentHash)
                .into_tuple()
                .one(txn)
                .await?
        }
        Report::DmarcFailure(_) => Some(content_hash.clone()),
    };
    if existing_hash.as_deref() == Some(content_hash.as_str()) {
        out.duplicates += 1;
    } else {
        let detail = format!(
            "a report with the same reporter, id, policy domain and date range but different content is already stored (key {dedupe_key})"
        );
        insert_quarantine(
            txn,
            raw_id,
            Some(tenant_id),
            "conflicting-duplicate",
            &detail,
            None,
        )
        .await?;
        *out.quarantined
            .entry("conflicting-duplicate".to_owned())
            .or_default() += 1;
    }
    Ok(())
}

fn day(ts: i64) -> i32 {
    i32::try_from(ts.div_euclid(86_400)).unwrap_or(i32::MAX)
}

async fn insert_aggregate(
    txn: &DatabaseTransaction,
    raw_id: i64,
    tenant_id: i64,
    domain_id: i64,
    dedupe_key: &str,
    content_hash: &str,
    r: &AggregateReport,
) -> Result<bool> {
    let p = &r.policy_published;
    let begin = r.begin.timestamp();
    let end = r.end.timestamp();
    let res = dmarc_report::Entity::insert(dmarc_report::ActiveModel {
        tenant_id: Set(tenant_id),
        domain_id: Set(domain_id),
        raw_message_id: Set(Some(raw_id)),
        dedupe_key: Set(dedupe_key.to_owned()),
        content_hash: Set(content_hash.to_owned()),
        org_name: Set(r.org_name.clone()),
        reporter_email: Set(r.email.clone()),
        report_id: Set(r.report_id.to_string()),
        policy_domain: Set(r.policy_domain.to_string()),
        begin_ts: Set(begin),
        end_ts: Set(end),
        begin_day: Set(day(begin)),
        end_day: Set(day(end)),
        message_count: Set(i64::try_from(r.message_count).unwrap_or(i64::MAX)),
        record_count: Set(i32::try_from(r.records.len()).unwrap_or(i32::MAX)),
        adkim: Set(p.adkim.as_ref().map(|v| v.to_string())),
        aspf: Set(p.aspf.as_ref().map(|v| v.to_string())),
        p: Set(p.p.as_ref().map(|v| v.to_string())),
        sp: Set(p.sp.as_ref().map(|v| v.to_string())),
        np: Set(p.np.as_ref().map(|v| v.to_string())),
        pct: Set(p.pct.map(i16::from)),
        fo: Set(p.fo.clone()),
        testing: Set(p.testing),
        discovery_method: Set(p.discovery_method.as_ref().map(|v| v.to_string())),
        xml_namespace: Set(r.xml_namespace.clone()),
        errors: Set(to_json("errors", &r.errors)?),
        warnings: Set(to_json("warnings", &r.warnings)?),
        submitter: Set(to_json("submitter", &r.submitter)?),
        created_at: Set(Utc::now()),
        ..Default::default()
    })
    .on_conflict_do_nothing_on([dmarc_report::Column::DedupeKey])
    .exec(txn)
    .await?;
    let TryInsertResult::Inserted(res) = res else {
        return Ok(false);
    };
    let report_id = res.last_insert_id;
    let record_day = day(begin);
    for chunk in r.records.chunks(CHUNK) {
        let rows = chunk
            .iter()
            .map(|rec| {
                Ok(dmarc_record::ActiveModel {
                    report_id: Set(report_id),
                    tenant_id: Set(tenant_id),
                    domain_id: Set(domain_id),
                    day: Set(record_day),
                    source_ip: Set(rec.source_ip.to_string()),
                    count: Set(i64::try_from(rec.count).unwrap_or(i64::MAX)),
                    disposition: Set(rec
                        .policy_evaluated
                        .disposition
                        .as_ref()
                        .map(|v| v.to_string())),
                    dkim_result: Set(rec.policy_evaluated.dkim.as_ref().map(|v| v.to_string())),
                    spf_result: Set(rec.policy_evaluated.spf.as_ref().map(|v| v.to_string())),
                    header_from: Set(rec.identifiers.header_from.clone()),
                    envelope_from: Set(rec.identifiers.envelope_from.clone()),
                    envelope_to: Set(rec.identifiers.envelope_to.clone()),
                    reasons: Set(if rec.policy_evaluated.reasons.is_empty() {
                        None
                    } else {
                        Some(to_json("reasons", &rec.policy_evaluated.reasons)?)
                    }),
                    dkim_auth: Set(to_json("dkim results", &rec.auth_results.dkim)?),
                    spf_auth: Set(to_json("spf results", &rec.auth_results.spf)?),
                    ..Default::default()
                })
            })
            .collect::<Result<Vec<_>>>()?;
        dmarc_record::Entity::insert_many(rows)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(true)
}

async fn insert_tls(
    txn: &DatabaseTransaction,
    raw_id: i64,
    tenant_id: i64,
    domain_id: i64,
    dedupe_key: &str,
    content_hash: &str,
    r: &TlsReport,
) -> Result<bool> {
    let begin = r.begin.timestamp();
    let end = r.end.timestamp();
    let res = tls_report::Entity::insert(tls_report::ActiveModel {
        tenant_id: Set(tenant_id),
        domain_id: Set(domain_id),
        raw_message_id: Set(Some(raw_id)),
        dedupe_key: Set(dedupe_key.to_owned()),
        content_hash: Set(content_hash.to_owned()),
        org_name: Set(r.org_name.clone()),
        contact_info: Set(r.contact_info.clone()),
        report_id: Set(r.report_id.to_string()),
        begin_ts: Set(begin),
        end_ts: Set(end),
        begin_day: Set(day(begin)),
        end_day: Set(day(end)),
        successful_sessions: Set(i64::try_from(r.successful_sessions).unwrap_or(i64::MAX)),
        failed_sessions: Set(i64::try_from(r.failed_sessions).unwrap_or(i64::MAX)),
        warnings: Set(to_json("warnings", &r.warnings)?),
        submitter: Set(to_json("submitter", &r.submitter)?),
        created_at: Set(Utc::now()),
        ..Default::default()
    })
    .on_conflict_do_nothing_on([tls_report::Column::DedupeKey])
    .exec(txn)
    .await?;
    let TryInsertResult::Inserted(res) = res else {
        return Ok(false);
    };
    let report_id = res.last_insert_id;
    for p in &r.policies {
        let policy_id = tls_policy::Entity::insert(tls_policy::ActiveModel {
            tls_report_id: Set(report_id),
            tenant_id: Set(tenant_id),
            domain_id: Set(domain_id),
            policy_type: Set(p.policy_type.to_string()),
            policy_domain: Set(p.policy_domain.as_ref().map(ToString::to_string)),
            policy_strings: Set(to_json("policy strings", &p.policy_strings)?),
            mx_hosts: Set(to_json("mx hosts", &p.mx_hosts)?),
            sts_mode: Set(p.sts_mode().map(str::to_owned)),
            successful_sessions: Set(i64::try_from(p.successful_sessions).unwrap_or(i64::MAX)),
            failed_sessions: Set(i64::try_from(p.failed_sessions).unwrap_or(i64::MAX)),
            ..Default::default()
        })
        .exec(txn)
        .await?
        .last_insert_id;
        for chunk in p.failure_details.chunks(CHUNK) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|d| tls_failure_detail::ActiveModel {
                    tls_policy_id: Set(policy_id),
                    tls_report_id: Set(report_id),
                    tenant_id: Set(tenant_id),
                    domain_id: Set(domain_id),
                    day: Set(day(begin)),
                    result_type: Set(d.result_type.to_string()),
                    sending_mta_ip: Set(d.sending_mta_ip.as_ref().map(ToString::to_string)),
                    receiving_mx_hostname: Set(d.receiving_mx_hostname.clone()),
                    receiving_mx_helo: Set(d.receiving_mx_helo.clone()),
                    receiving_ip: Set(d.receiving_ip.as_ref().map(ToString::to_string)),
                    failed_sessions: Set(i64::try_from(d.failed_sessions).unwrap_or(i64::MAX)),
                    additional_information: Set(d.additional_information.clone()),
                    failure_reason_code: Set(d.failure_reason_code.clone()),
                    ..Default::default()
                })
                .collect();
            tls_failure_detail::Entity::insert_many(rows)
                .exec_without_returning(txn)
                .await?;
        }
    }
    Ok(true)
}

async fn insert_failure(
    txn: &DatabaseTransaction,
    raw_id: i64,
    tenant_id: i64,
    domain_id: i64,
    dedupe_key: &str,
    r: &FailureReport,
) -> Result<bool> {
    let arrival = r.begin.map(|t| t.timestamp());
    let res = failure_report::Entity::insert(failure_report::ActiveModel {
        tenant_id: Set(tenant_id),
        domain_id: Set(domain_id),
        raw_message_id: Set(Some(raw_id)),
        dedupe_key: Set(dedupe_key.to_owned()),
        org_name: Set(r.org_name.clone()),
        feedback_type: Set(r.feedback_type.clone()),
        reported_domain: Set(r
            .reported_domain
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()),
        source_ip: Set(r.source_ip.as_ref().map(ToString::to_string)),
        arrival_ts: Set(arrival),
        day: Set(arrival.map(day)),
        auth_failure: Set(r.auth_failure.clone()),
        fields: Set(to_json("fields", &r.fields)?),
        warnings: Set(to_json("warnings", &r.warnings)?),
        submitter: Set(to_json("submitter", &r.submitter)?),
        created_at: Set(Utc::now()),
        ..Default::default()
    })
    .on_conflict_do_nothing_on([failure_report::Column::DedupeKey])
    .exec_without_returning(txn)
    .await?;
    Ok(matches!(res, TryInsertResult::Inserted(n) if n > 0))
}
