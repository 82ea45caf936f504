//! The ingest write path: raw messages, their reports and quarantine entries, in one
//! transaction per batch.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{IntoColumnRef, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, IdenStatic,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set, Statement,
    TransactionTrait,
};
use sealwatch_model::{AggregateReport, Report};

use crate::entities::{
    dmarc_record, dmarc_report, failure_report, mailbox_message, quarantine, raw_message,
    tenant_domain, tls_failure_detail, tls_policy, tls_report,
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
    /// When the message reached us, when the caller knows it better than the time of
    /// writing (an archive replayed with `import --received-at`); `None`: now. Stored as the
    /// message's and its reports' receipt time: the analysis reads from it whether a
    /// reporter's reports are still arriving.
    pub received_at: Option<DateTime<Utc>>,
}

/// Counts from writing one or more batches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    pub messages: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub quarantined: BTreeMap<String, u64>,
    /// Domains that received newly stored reports (what the analysis should look at next).
    pub domains: std::collections::BTreeSet<i64>,
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
        self.domains.extend(other.domains.iter().copied());
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

/// Multi-row inserts use only these row counts, so each table has at most a handful of
/// distinct statements and the drivers' prepared-statement caches stay warm (a statement
/// per distinct row count would be re-prepared on almost every report).
const CHUNK_SIZES: [usize; 3] = [128, 16, 1];

/// Splits `items` into chunks whose lengths are all in [`CHUNK_SIZES`].
fn fixed_chunks<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = CHUNK_SIZES
            .iter()
            .copied()
            .find(|&n| n <= rest.len())
            .unwrap_or(1);
        let (head, tail) = rest.split_at(size);
        rest = tail;
        Some(head)
    })
}

impl Store {
    /// Writes a batch of messages in one transaction. Idempotent: a message seen before
    /// (same bytes) and a report seen before (same dedupe key and content) are counted as
    /// duplicates and not stored again; a report whose key matches but whose content differs
    /// is quarantined as `conflicting-duplicate` so neither copy is lost or double-counted.
    ///
    /// Rows are written set-wise (a few multi-row statements per table and batch, not a
    /// statement per row): the cost of a batch is dominated by its size, not by round trips.
    pub async fn write_messages(&self, messages: Vec<NewMessage>) -> Result<WriteOutcome> {
        let txn = self.db.begin().await?;
        let out = write_batch(&txn, messages).await?;
        txn.commit().await?;
        Ok(out)
    }

    /// Re-processes a message that was quarantined, with the items a fresh parse and route
    /// of its raw bytes produced (after a parser fix, or once its domain was onboarded).
    /// In one transaction: reports are stored against the same raw message (deduplicated
    /// like any ingest), the message's open quarantine entries are resolved, and whatever
    /// still fails is quarantined again with the retry count carried on. Idempotent.
    pub async fn reprocess_quarantined(
        &self,
        raw_message_id: i64,
        items: Vec<Item>,
    ) -> Result<WriteOutcome> {
        let txn = self.db.begin().await?;
        let now = Utc::now();
        let open = quarantine::Entity::find()
            .filter(quarantine::Column::RawMessageId.eq(raw_message_id))
            .filter(quarantine::Column::ResolvedAt.is_null())
            .all(&txn)
            .await?;
        let retries = open.iter().map(|q| q.retry_count).max().unwrap_or(0) + 1;
        quarantine::Entity::update_many()
            .col_expr(
                quarantine::Column::ResolvedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(quarantine::Column::RawMessageId.eq(raw_message_id))
            .filter(quarantine::Column::ResolvedAt.is_null())
            .exec(&txn)
            .await?;
        let outcome = outcome_of(&items);
        let source: Option<String> = raw_message::Entity::find_by_id(raw_message_id)
            .select_only()
            .column(raw_message::Column::Source)
            .into_tuple()
            .one(&txn)
            .await?;
        let precedence = Precedence::of_source(source.as_deref());
        let received_at: DateTime<Utc> = raw_message::Entity::find_by_id(raw_message_id)
            .select_only()
            .column(raw_message::Column::ReceivedAt)
            .into_tuple()
            .one(&txn)
            .await?
            .unwrap_or(now);
        let mut out = WriteOutcome {
            messages: 1,
            ..WriteOutcome::default()
        };
        let (mut agg, mut tls, mut fail) = (Vec::new(), Vec::new(), Vec::new());
        let mut quarantine_rows = Vec::new();
        for item in items {
            match item {
                Item::Report(r) => {
                    let p = PendingReport {
                        raw_id: raw_message_id,
                        precedence,
                        item: *r,
                        received: received_at,
                    };
                    match p.item.report {
                        Report::DmarcAggregate(_) => agg.push(p),
                        Report::TlsRpt(_) => tls.push(p),
                        Report::DmarcFailure(_) => fail.push(p),
                    }
                }
                Item::Quarantine {
                    tenant_id,
                    reason,
                    detail,
                    part,
                } => {
                    *out.quarantined.entry(reason.clone()).or_default() += 1;
                    let mut row =
                        quarantine_row(raw_message_id, tenant_id, reason, detail, part, now);
                    row.retry_count = Set(retries);
                    quarantine_rows.push(row);
                }
            }
        }
        write_aggregates(&txn, agg, now, &mut out, &mut quarantine_rows).await?;
        write_tls(&txn, tls, now, &mut out, &mut quarantine_rows).await?;
        write_failures(&txn, fail, now, &mut out).await?;
        insert_all(&txn, &quarantine_rows).await?;
        raw_message::Entity::update_many()
            .col_expr(
                raw_message::Column::Outcome,
                sea_orm::sea_query::Expr::value(outcome),
            )
            .filter(raw_message::Column::Id.eq(raw_message_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(out)
    }

    /// The tenant a raw message is restricted to: that of the per-tenant mailbox it came
    /// from, if any.
    pub async fn raw_message_tenant(&self, raw_message_id: i64) -> Result<Option<i64>> {
        let Some(raw) = raw_message::Entity::find_by_id(raw_message_id)
            .select_only()
            .column(raw_message::Column::MailboxId)
            .into_tuple::<Option<i64>>()
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let Some(mailbox_id) = raw else {
            return Ok(None);
        };
        Ok(crate::entities::mailbox::Entity::find_by_id(mailbox_id)
            .one(&self.db)
            .await?
            .and_then(|m| m.tenant_id))
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

/// Runs a multi-row `INSERT … ON CONFLICT (key) DO NOTHING RETURNING id, key` and returns the
/// inserted `(key, id)` pairs. Conflicting rows are simply not returned.
async fn insert_returning_keys<A>(
    txn: &DatabaseTransaction,
    rows: Vec<A>,
    key: <A::Entity as EntityTrait>::Column,
    id: <A::Entity as EntityTrait>::Column,
) -> Result<Vec<(String, i64)>>
where
    A: ActiveModelTrait,
{
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = <A::Entity as EntityTrait>::insert_many(rows)
        .on_conflict(OnConflict::column(key).do_nothing().to_owned())
        .into_query();
    stmt.returning(Query::returning().columns([id.into_column_ref(), key.into_column_ref()]));
    let key_name = key.as_str().to_owned();
    let id_name = id.as_str().to_owned();
    txn.query_all(&stmt)
        .await?
        .into_iter()
        .map(|row| {
            Ok((
                row.try_get::<String>("", &key_name)?,
                row.try_get::<i64>("", &id_name)?,
            ))
        })
        .collect()
}

/// Inserts rows in fixed-size chunks without returning anything.
async fn insert_all<A: ActiveModelTrait + Clone>(
    txn: &DatabaseTransaction,
    rows: &[A],
) -> Result<()> {
    for chunk in fixed_chunks(rows) {
        <A::Entity as EntityTrait>::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// Inserts rows in fixed-size chunks, skipping conflicts on `key`; returns the inserted
/// `(key, id)` pairs.
async fn insert_new<A: ActiveModelTrait + Clone>(
    txn: &DatabaseTransaction,
    rows: &[A],
    key: <A::Entity as EntityTrait>::Column,
    id: <A::Entity as EntityTrait>::Column,
) -> Result<HashMap<String, i64>> {
    let mut out = HashMap::with_capacity(rows.len());
    for chunk in fixed_chunks(rows) {
        out.extend(insert_returning_keys(txn, chunk.to_vec(), key, id).await?);
    }
    Ok(out)
}

/// A report waiting for its row, with where it came from.
struct PendingReport {
    raw_id: i64,
    precedence: Precedence,
    item: ReportItem,
    /// When its message reached us.
    received: DateTime<Utc>,
}

/// Which of two conflicting copies of a report is counted (same dedupe key, different
/// content). The dedupe key is built from fields the sender writes, so a stranger who posts
/// a forged copy first must not displace the genuine one: a copy that reached a
/// subscriber's mailbox (or an operator's import) counts over one anybody could post over
/// HTTPS. Between copies of equal precedence the first one stored stays counted. The other
/// copy is kept, quarantined as `conflicting-duplicate` with a detail naming the counted one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Precedence {
    /// Posted over HTTPS (RFC 8460 intake): unauthenticated by design.
    Posted,
    /// From a subscriber's mailbox or an operator's import, or a stored copy whose raw
    /// message was purged (it stays counted).
    Delivered,
}

impl Precedence {
    /// The precedence of a copy by the `raw_messages.source` of its message.
    fn of_source(source: Option<&str>) -> Self {
        match source {
            Some("http") => Precedence::Posted,
            _ => Precedence::Delivered,
        }
    }

    fn of(source: &MessageSource) -> Self {
        match source {
            MessageSource::Http { .. } => Precedence::Posted,
            MessageSource::Imap { .. } | MessageSource::File { .. } => Precedence::Delivered,
        }
    }

    /// How a copy of this precedence is named in a quarantine detail.
    fn channel(self) -> &'static str {
        match self {
            Precedence::Posted => "posted over HTTPS",
            Precedence::Delivered => "from a report mailbox or an import",
        }
    }
}

/// A stored copy of a report, as the write path needs it to settle a conflict.
#[derive(Debug, Clone)]
struct StoredCopy {
    /// `None` for a copy that is about to be inserted (it displaces another).
    report_id: Option<i64>,
    raw_id: Option<i64>,
    content_hash: String,
    precedence: Precedence,
}

/// A pending report that displaces a stored conflicting copy of lower precedence.
struct Displacing {
    stored: StoredCopy,
    pending: PendingReport,
}

async fn write_batch(txn: &DatabaseTransaction, messages: Vec<NewMessage>) -> Result<WriteOutcome> {
    let mut out = WriteOutcome {
        messages: messages.len() as u64,
        ..WriteOutcome::default()
    };
    if messages.is_empty() {
        return Ok(out);
    }
    let now = Utc::now();

    // 1. Raw messages. A sha256 already present (or repeated within the batch) means the
    //    message and everything in it was ingested before.
    let mut raw_rows = Vec::with_capacity(messages.len());
    let mut imap_marks = Vec::new();
    for msg in &messages {
        let (source, mailbox_id, origin) = match &msg.source {
            MessageSource::Imap { mailbox_id, .. } => ("imap", Some(*mailbox_id), None),
            MessageSource::File { origin } => ("import", None, Some(origin.clone())),
            MessageSource::Http { origin } => ("http", None, Some(origin.clone())),
        };
        raw_rows.push(raw_message::ActiveModel {
            sha256: Set(msg.sha256.clone()),
            size: Set(msg.bytes.len() as i64),
            source: Set(source.to_owned()),
            mailbox_id: Set(mailbox_id),
            origin: Set(origin),
            message_id: Set(msg.message_id.clone()),
            outcome: Set(outcome_of(&msg.items).to_owned()),
            bytes: Set(msg.bytes.clone()),
            received_at: Set(msg.received_at.unwrap_or(now)),
            ..Default::default()
        });
    }
    let fresh = insert_new(
        txn,
        &raw_rows,
        raw_message::Column::Sha256,
        raw_message::Column::Id,
    )
    .await?;
    drop(raw_rows);
    let known: Vec<String> = messages
        .iter()
        .filter(|m| !fresh.contains_key(&m.sha256))
        .map(|m| m.sha256.clone())
        .collect();
    let mut existing: HashMap<String, i64> = HashMap::new();
    for chunk in known.chunks(500) {
        let rows: Vec<(i64, String)> = raw_message::Entity::find()
            .filter(raw_message::Column::Sha256.is_in(chunk.iter().cloned()))
            .select_only()
            .column(raw_message::Column::Id)
            .column(raw_message::Column::Sha256)
            .into_tuple()
            .all(txn)
            .await?;
        existing.extend(rows.into_iter().map(|(id, sha)| (sha, id)));
    }

    // 2. Split the batch into reports to insert and quarantine entries.
    let mut pending_agg = Vec::new();
    let mut pending_tls = Vec::new();
    let mut pending_fail = Vec::new();
    let mut quarantine_rows = Vec::new();
    let mut unused_fresh: HashSet<String> = fresh.keys().cloned().collect();
    for msg in messages {
        // The first message with fresh bytes owns the row; a copy later in the batch is a
        // duplicate like any message seen before.
        let (raw_id, is_fresh) = match fresh.get(&msg.sha256) {
            Some(&id) => (id, unused_fresh.remove(&msg.sha256)),
            None => (
                *existing.get(&msg.sha256).ok_or_else(|| {
                    sea_orm::DbErr::RecordNotFound(format!("raw message {}", msg.sha256))
                })?,
                false,
            ),
        };
        if let MessageSource::Imap {
            mailbox_id,
            uidvalidity,
            uid,
        } = msg.source
        {
            imap_marks.push(mailbox_message::ActiveModel {
                mailbox_id: Set(mailbox_id),
                uidvalidity: Set(i64::from(uidvalidity)),
                uid: Set(i64::from(uid)),
                raw_message_id: Set(raw_id),
                created_at: Set(now),
                ..Default::default()
            });
        }
        if !is_fresh {
            out.duplicates += msg.items.len() as u64;
            continue;
        }
        let precedence = Precedence::of(&msg.source);
        let received = msg.received_at.unwrap_or(now);
        for item in msg.items {
            match item {
                Item::Report(r) => {
                    let p = PendingReport {
                        raw_id,
                        precedence,
                        item: *r,
                        received,
                    };
                    match p.item.report {
                        Report::DmarcAggregate(_) => pending_agg.push(p),
                        Report::TlsRpt(_) => pending_tls.push(p),
                        Report::DmarcFailure(_) => pending_fail.push(p),
                    }
                }
                Item::Quarantine {
                    tenant_id,
                    reason,
                    detail,
                    part,
                } => {
                    *out.quarantined.entry(reason.clone()).or_default() += 1;
                    quarantine_rows
                        .push(quarantine_row(raw_id, tenant_id, reason, detail, part, now));
                }
            }
        }
    }
    insert_mailbox_marks(txn, &imap_marks).await?;

    // 3. Reports, records, policies and details.
    write_aggregates(txn, pending_agg, now, &mut out, &mut quarantine_rows).await?;
    write_tls(txn, pending_tls, now, &mut out, &mut quarantine_rows).await?;
    write_failures(txn, pending_fail, now, &mut out).await?;
    insert_all(txn, &quarantine_rows).await?;
    Ok(out)
}

async fn insert_mailbox_marks(
    txn: &DatabaseTransaction,
    marks: &[mailbox_message::ActiveModel],
) -> Result<()> {
    for chunk in fixed_chunks(marks) {
        mailbox_message::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([
                    mailbox_message::Column::MailboxId,
                    mailbox_message::Column::Uidvalidity,
                    mailbox_message::Column::Uid,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

fn quarantine_row(
    raw_id: i64,
    tenant_id: Option<i64>,
    reason: String,
    detail: String,
    part: Option<String>,
    now: DateTime<Utc>,
) -> quarantine::ActiveModel {
    quarantine::ActiveModel {
        raw_message_id: Set(raw_id),
        tenant_id: Set(tenant_id),
        reason: Set(reason),
        detail: Set(detail),
        part: Set(part),
        retry_count: Set(0),
        created_at: Set(now),
        ..Default::default()
    }
}

/// The quarantine reason of a copy that conflicts with the counted one.
const CONFLICT: &str = "conflicting-duplicate";

/// How a counted copy is named in a quarantine detail.
fn describe(copy: &StoredCopy) -> String {
    let what = match (copy.report_id, copy.raw_id) {
        (Some(report), Some(raw)) => format!("report {report}, raw message {raw}"),
        (Some(report), None) => format!("report {report}"),
        (None, Some(raw)) => format!("raw message {raw}"),
        (None, None) => "an earlier copy".to_owned(),
    };
    format!("{what}, {}", copy.precedence.channel())
}

/// Sorts reports whose key was not inserted into duplicates, conflicting copies that stay
/// uncounted (quarantined), and conflicting copies that displace a stored copy of lower
/// precedence (returned). `claimed` holds the copies this batch inserted; copies stored
/// before the batch come from `stored`. `unstored` must be in precedence order (highest
/// first), so that of several copies displacing one stored copy the first one wins.
fn settle_unstored(
    unstored: Vec<PendingReport>,
    claimed: &HashMap<String, StoredCopy>,
    stored: &HashMap<String, StoredCopy>,
    now: DateTime<Utc>,
    out: &mut WriteOutcome,
    quarantine_rows: &mut Vec<quarantine::ActiveModel>,
) -> Vec<Displacing> {
    let mut displacing: Vec<Displacing> = Vec::new();
    // key -> index into `displacing`: the copy that will be counted for that key
    let mut winner: HashMap<String, usize> = HashMap::new();
    for p in unstored {
        let key = p.item.dedupe_key.clone();
        let counted = match winner.get(&key) {
            Some(&i) => Some(StoredCopy {
                report_id: None,
                raw_id: Some(displacing[i].pending.raw_id),
                content_hash: displacing[i].pending.item.content_hash.clone(),
                precedence: displacing[i].pending.precedence,
            }),
            None => claimed.get(&key).or_else(|| stored.get(&key)).cloned(),
        };
        let Some(counted) = counted else {
            // Not inserted and not found: cannot happen inside one transaction; keep the
            // copy for review rather than count it twice or lose it.
            *out.quarantined.entry(CONFLICT.to_owned()).or_default() += 1;
            quarantine_rows.push(quarantine_row(
                p.raw_id,
                Some(p.item.tenant_id),
                CONFLICT.to_owned(),
                format!("the report key {key} could not be stored; this copy is kept for review"),
                None,
                now,
            ));
            continue;
        };
        if counted.content_hash == p.item.content_hash {
            out.duplicates += 1;
        } else if p.precedence > counted.precedence && !winner.contains_key(&key) {
            winner.insert(key, displacing.len());
            displacing.push(Displacing {
                stored: counted,
                pending: p,
            });
        } else {
            let detail = format!(
                "another copy of this report (same reporter, report id, policy domain and date range: key {key}) with different content is counted: {}. This copy, {}, is kept here and not counted",
                describe(&counted),
                p.precedence.channel()
            );
            *out.quarantined.entry(CONFLICT.to_owned()).or_default() += 1;
            quarantine_rows.push(quarantine_row(
                p.raw_id,
                Some(p.item.tenant_id),
                CONFLICT.to_owned(),
                detail,
                None,
                now,
            ));
        }
    }
    displacing
}

/// Reports whose row this batch inserted (with the new id), the rest, and the copy each
/// key this batch inserted now counts.
type Claimed = (
    Vec<(i64, PendingReport)>,
    Vec<PendingReport>,
    HashMap<String, StoredCopy>,
);

/// Splits pending reports into those whose row was inserted (first claim of each key)
/// and the rest.
fn claim(pending: Vec<PendingReport>, inserted: &HashMap<String, i64>) -> Claimed {
    let mut stored = Vec::new();
    let mut unstored = Vec::new();
    let mut claimed: HashMap<String, StoredCopy> = HashMap::new();
    for p in pending {
        match inserted.get(&p.item.dedupe_key) {
            Some(id) if !claimed.contains_key(&p.item.dedupe_key) => {
                claimed.insert(
                    p.item.dedupe_key.clone(),
                    StoredCopy {
                        report_id: Some(*id),
                        raw_id: Some(p.raw_id),
                        content_hash: p.item.content_hash.clone(),
                        precedence: p.precedence,
                    },
                );
                stored.push((*id, p));
            }
            _ => unstored.push(p),
        }
    }
    (stored, unstored, claimed)
}

/// Highest precedence first (stable: arrival order within one precedence), so that within
/// a batch the copy that should be counted is the one whose row is inserted.
fn by_precedence(mut pending: Vec<PendingReport>) -> Vec<PendingReport> {
    pending.sort_by_key(|p| std::cmp::Reverse(p.precedence));
    pending
}

/// Removes stored copies that conflicting copies of higher precedence displace; each
/// removed copy's message gets a `conflicting-duplicate` quarantine entry naming the copy
/// now counted. Returns the displacing reports, to be inserted.
async fn displace(
    txn: &DatabaseTransaction,
    table: Table,
    displacing: Vec<Displacing>,
    now: DateTime<Utc>,
    out: &mut WriteOutcome,
    quarantine_rows: &mut Vec<quarantine::ActiveModel>,
) -> Result<Vec<PendingReport>> {
    let ids: Vec<i64> = displacing
        .iter()
        .filter_map(|d| d.stored.report_id)
        .collect();
    for chunk in ids.chunks(500) {
        // Records, policies and failure details go with their report (ON DELETE CASCADE).
        match table {
            Table::Dmarc => {
                dmarc_report::Entity::delete_many()
                    .filter(dmarc_report::Column::Id.is_in(chunk.iter().copied()))
                    .exec(txn)
                    .await?;
            }
            Table::Tls => {
                tls_report::Entity::delete_many()
                    .filter(tls_report::Column::Id.is_in(chunk.iter().copied()))
                    .exec(txn)
                    .await?;
            }
        }
    }
    let mut raws = std::collections::BTreeSet::new();
    let mut pending = Vec::with_capacity(displacing.len());
    for d in displacing {
        if let Some(raw) = d.stored.raw_id {
            raws.insert(raw);
            let detail = format!(
                "a copy of this report with different content arrived {} (raw message {}) and is counted instead of this one (key {}). This copy, {}, is kept here and not counted",
                d.pending.precedence.channel(),
                d.pending.raw_id,
                d.pending.item.dedupe_key,
                d.stored.precedence.channel()
            );
            *out.quarantined.entry(CONFLICT.to_owned()).or_default() += 1;
            quarantine_rows.push(quarantine_row(
                raw,
                Some(d.pending.item.tenant_id),
                CONFLICT.to_owned(),
                detail,
                None,
                now,
            ));
        }
        pending.push(d.pending);
    }
    // A message left without any counted report reads as quarantined.
    for raw in raws {
        let left = dmarc_report::Entity::find()
            .filter(dmarc_report::Column::RawMessageId.eq(raw))
            .count(txn)
            .await?
            + tls_report::Entity::find()
                .filter(tls_report::Column::RawMessageId.eq(raw))
                .count(txn)
                .await?;
        raw_message::Entity::update_many()
            .col_expr(
                raw_message::Column::Outcome,
                sea_orm::sea_query::Expr::value(if left == 0 { "quarantined" } else { "partial" }),
            )
            .filter(raw_message::Column::Id.eq(raw))
            .exec(txn)
            .await?;
    }
    Ok(pending)
}

/// Inserts the report rows of DMARC aggregate reports (first copy of each key wins).
async fn insert_aggregates(
    txn: &DatabaseTransaction,
    pending: Vec<PendingReport>,
) -> Result<Claimed> {
    let mut rows = Vec::with_capacity(pending.len());
    for p in &pending {
        let Report::DmarcAggregate(r) = &p.item.report else {
            continue;
        };
        rows.push(aggregate_row(p, r)?);
    }
    let inserted = insert_new(
        txn,
        &rows,
        dmarc_report::Column::DedupeKey,
        dmarc_report::Column::Id,
    )
    .await?;
    Ok(claim(pending, &inserted))
}

async fn write_aggregates(
    txn: &DatabaseTransaction,
    pending: Vec<PendingReport>,
    now: DateTime<Utc>,
    out: &mut WriteOutcome,
    quarantine_rows: &mut Vec<quarantine::ActiveModel>,
) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let (mut stored, unstored, claimed) = insert_aggregates(txn, by_precedence(pending)).await?;
    let copies = stored_copies(txn, &unstored, &claimed, Table::Dmarc).await?;
    let displacing = settle_unstored(unstored, &claimed, &copies, now, out, quarantine_rows);
    if !displacing.is_empty() {
        let pending = displace(txn, Table::Dmarc, displacing, now, out, quarantine_rows).await?;
        let (again, left, claimed) = insert_aggregates(txn, pending).await?;
        stored.extend(again);
        // Keys freed by `displace` are inserted by their first displacing copy; nothing is
        // left over, and anything that were would be settled against that copy.
        let _ = settle_unstored(left, &claimed, &HashMap::new(), now, out, quarantine_rows);
    }
    out.stored += stored.len() as u64;
    out.domains
        .extend(stored.iter().map(|(_, p)| p.item.domain_id));
    rewind_watermarks(
        txn,
        stored.iter().filter_map(|(_, p)| match &p.item.report {
            Report::DmarcAggregate(r) => Some((p.item.domain_id, day(r.begin.timestamp()))),
            _ => None,
        }),
    )
    .await?;
    let mut records = Vec::new();
    for (report_id, p) in &stored {
        let Report::DmarcAggregate(r) = &p.item.report else {
            continue;
        };
        let record_day = day(r.begin.timestamp());
        for rec in &r.records {
            records.push(dmarc_record::ActiveModel {
                report_id: Set(*report_id),
                tenant_id: Set(p.item.tenant_id),
                domain_id: Set(p.item.domain_id),
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
            });
            if records.len() >= 2048 {
                insert_all(txn, &records).await?;
                records.clear();
            }
        }
    }
    insert_all(txn, &records).await?;
    Ok(())
}

#[derive(Clone, Copy)]
enum Table {
    Dmarc,
    Tls,
}

/// The stored copies of the keys this batch could not insert (not claimed by it).
async fn stored_copies(
    txn: &DatabaseTransaction,
    unstored: &[PendingReport],
    claimed: &HashMap<String, StoredCopy>,
    table: Table,
) -> Result<HashMap<String, StoredCopy>> {
    let keys: Vec<String> = unstored
        .iter()
        .map(|p| p.item.dedupe_key.clone())
        .filter(|k| !claimed.contains_key(k))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut rows: Vec<(i64, String, String, Option<i64>)> = Vec::new();
    for chunk in keys.chunks(500) {
        rows.extend(match table {
            Table::Dmarc => {
                dmarc_report::Entity::find()
                    .filter(dmarc_report::Column::DedupeKey.is_in(chunk.iter().cloned()))
                    .select_only()
                    .column(dmarc_report::Column::Id)
                    .column(dmarc_report::Column::DedupeKey)
                    .column(dmarc_report::Column::ContentHash)
                    .column(dmarc_report::Column::RawMessageId)
                    .into_tuple::<(i64, String, String, Option<i64>)>()
                    .all(txn)
                    .await?
            }
            Table::Tls => {
                tls_report::Entity::find()
                    .filter(tls_report::Column::DedupeKey.is_in(chunk.iter().cloned()))
                    .select_only()
                    .column(tls_report::Column::Id)
                    .column(tls_report::Column::DedupeKey)
                    .column(tls_report::Column::ContentHash)
                    .column(tls_report::Column::RawMessageId)
                    .into_tuple::<(i64, String, String, Option<i64>)>()
                    .all(txn)
                    .await?
            }
        });
    }
    let raw_ids: Vec<i64> = rows.iter().filter_map(|r| r.3).collect();
    let mut sources: HashMap<i64, String> = HashMap::new();
    for chunk in raw_ids.chunks(500) {
        let found: Vec<(i64, String)> = raw_message::Entity::find()
            .filter(raw_message::Column::Id.is_in(chunk.iter().copied()))
            .select_only()
            .column(raw_message::Column::Id)
            .column(raw_message::Column::Source)
            .into_tuple()
            .all(txn)
            .await?;
        sources.extend(found);
    }
    Ok(rows
        .into_iter()
        .map(|(id, key, hash, raw)| {
            let source = raw.and_then(|r| sources.get(&r)).map(String::as_str);
            (
                key,
                StoredCopy {
                    report_id: Some(id),
                    raw_id: raw,
                    content_hash: hash,
                    precedence: Precedence::of_source(source),
                },
            )
        })
        .collect())
}

/// Moves each domain's analysis watermark back before the earliest day of the reports just
/// stored for it, when the watermark had passed that day: the analysis judges those days
/// again with the late reports (one statement per domain).
async fn rewind_watermarks(
    txn: &DatabaseTransaction,
    stored: impl Iterator<Item = (i64, i32)>,
) -> Result<()> {
    let mut earliest: BTreeMap<i64, i32> = BTreeMap::new();
    for (domain_id, d) in stored {
        let e = earliest.entry(domain_id).or_insert(d);
        *e = (*e).min(d);
    }
    for (domain_id, d) in earliest {
        tenant_domain::Entity::update_many()
            .col_expr(
                tenant_domain::Column::AnalysedThrough,
                sea_orm::sea_query::Expr::value(d.saturating_sub(1)),
            )
            .filter(tenant_domain::Column::Id.eq(domain_id))
            .filter(tenant_domain::Column::AnalysedThrough.gte(d))
            .exec(txn)
            .await?;
    }
    Ok(())
}

fn day(ts: i64) -> i32 {
    i32::try_from(ts.div_euclid(86_400)).unwrap_or(i32::MAX)
}

fn aggregate_row(p: &PendingReport, r: &AggregateReport) -> Result<dmarc_report::ActiveModel> {
    let pp = &r.policy_published;
    let begin = r.begin.timestamp();
    let end = r.end.timestamp();
    Ok(dmarc_report::ActiveModel {
        tenant_id: Set(p.item.tenant_id),
        domain_id: Set(p.item.domain_id),
        raw_message_id: Set(Some(p.raw_id)),
        dedupe_key: Set(p.item.dedupe_key.clone()),
        content_hash: Set(p.item.content_hash.clone()),
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
        adkim: Set(pp.adkim.as_ref().map(|v| v.to_string())),
        aspf: Set(pp.aspf.as_ref().map(|v| v.to_string())),
        p: Set(pp.p.as_ref().map(|v| v.to_string())),
        sp: Set(pp.sp.as_ref().map(|v| v.to_string())),
        np: Set(pp.np.as_ref().map(|v| v.to_string())),
        pct: Set(pp.pct.map(i16::from)),
        fo: Set(pp.fo.clone()),
        testing: Set(pp.testing),
        discovery_method: Set(pp.discovery_method.as_ref().map(|v| v.to_string())),
        xml_namespace: Set(r.xml_namespace.clone()),
        errors: Set(to_json("errors", &r.errors)?),
        warnings: Set(to_json("warnings", &r.warnings)?),
        submitter: Set(to_json("submitter", &r.submitter)?),
        created_at: Set(p.received),
        ..Default::default()
    })
}

/// Inserts the report rows of TLS reports (first copy of each key wins).
async fn insert_tls(txn: &DatabaseTransaction, pending: Vec<PendingReport>) -> Result<Claimed> {
    let mut rows = Vec::with_capacity(pending.len());
    for p in &pending {
        let Report::TlsRpt(r) = &p.item.report else {
            continue;
        };
        let begin = r.begin.timestamp();
        let end = r.end.timestamp();
        rows.push(tls_report::ActiveModel {
            tenant_id: Set(p.item.tenant_id),
            domain_id: Set(p.item.domain_id),
            raw_message_id: Set(Some(p.raw_id)),
            dedupe_key: Set(p.item.dedupe_key.clone()),
            content_hash: Set(p.item.content_hash.clone()),
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
            created_at: Set(p.received),
            ..Default::default()
        });
    }
    let inserted = insert_new(
        txn,
        &rows,
        tls_report::Column::DedupeKey,
        tls_report::Column::Id,
    )
    .await?;
    Ok(claim(pending, &inserted))
}

async fn write_tls(
    txn: &DatabaseTransaction,
    pending: Vec<PendingReport>,
    now: DateTime<Utc>,
    out: &mut WriteOutcome,
    quarantine_rows: &mut Vec<quarantine::ActiveModel>,
) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let (mut stored, unstored, claimed) = insert_tls(txn, by_precedence(pending)).await?;
    let copies = stored_copies(txn, &unstored, &claimed, Table::Tls).await?;
    let displacing = settle_unstored(unstored, &claimed, &copies, now, out, quarantine_rows);
    if !displacing.is_empty() {
        let pending = displace(txn, Table::Tls, displacing, now, out, quarantine_rows).await?;
        let (again, left, claimed) = insert_tls(txn, pending).await?;
        stored.extend(again);
        let _ = settle_unstored(left, &claimed, &HashMap::new(), now, out, quarantine_rows);
    }
    out.stored += stored.len() as u64;
    out.domains
        .extend(stored.iter().map(|(_, p)| p.item.domain_id));
    rewind_watermarks(
        txn,
        stored.iter().filter_map(|(_, p)| match &p.item.report {
            Report::TlsRpt(r) => Some((p.item.domain_id, day(r.begin.timestamp()))),
            _ => None,
        }),
    )
    .await?;

    // Policies of all stored reports in one go; their ids come back ordered by insertion,
    // which is the order of the policies within each report.
    let mut policy_rows = Vec::new();
    for (report_id, p) in &stored {
        let Report::TlsRpt(r) = &p.item.report else {
            continue;
        };
        for pol in &r.policies {
            policy_rows.push(tls_policy::ActiveModel {
                tls_report_id: Set(*report_id),
                tenant_id: Set(p.item.tenant_id),
                domain_id: Set(p.item.domain_id),
                policy_type: Set(pol.policy_type.to_string()),
                policy_domain: Set(pol.policy_domain.as_ref().map(ToString::to_string)),
                policy_strings: Set(to_json("policy strings", &pol.policy_strings)?),
                mx_hosts: Set(to_json("mx hosts", &pol.mx_hosts)?),
                sts_mode: Set(pol.sts_mode().map(str::to_owned)),
                successful_sessions: Set(i64::try_from(pol.successful_sessions).unwrap_or(i64::MAX)),
                failed_sessions: Set(i64::try_from(pol.failed_sessions).unwrap_or(i64::MAX)),
                ..Default::default()
            });
        }
    }
    if policy_rows.is_empty() {
        return Ok(());
    }
    insert_all(txn, &policy_rows).await?;
    drop(policy_rows);
    let report_ids: Vec<i64> = stored.iter().map(|(id, _)| *id).collect();
    let mut policy_ids: HashMap<i64, Vec<i64>> = HashMap::new();
    for chunk in report_ids.chunks(500) {
        let rows: Vec<(i64, i64)> = tls_policy::Entity::find()
            .filter(tls_policy::Column::TlsReportId.is_in(chunk.iter().copied()))
            .select_only()
            .column(tls_policy::Column::TlsReportId)
            .column(tls_policy::Column::Id)
            .order_by_asc(tls_policy::Column::Id)
            .into_tuple()
            .all(txn)
            .await?;
        for (report_id, id) in rows {
            policy_ids.entry(report_id).or_default().push(id);
        }
    }
    let mut details = Vec::new();
    for (report_id, p) in &stored {
        let Report::TlsRpt(r) = &p.item.report else {
            continue;
        };
        let ids = policy_ids
            .get(report_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let begin_day = day(r.begin.timestamp());
        for (pol, policy_id) in r.policies.iter().zip(ids) {
            for d in &pol.failure_details {
                details.push(tls_failure_detail::ActiveModel {
                    tls_policy_id: Set(*policy_id),
                    tls_report_id: Set(*report_id),
                    tenant_id: Set(p.item.tenant_id),
                    domain_id: Set(p.item.domain_id),
                    day: Set(begin_day),
                    result_type: Set(d.result_type.to_string()),
                    sending_mta_ip: Set(d.sending_mta_ip.as_ref().map(ToString::to_string)),
                    receiving_mx_hostname: Set(d.receiving_mx_hostname.clone()),
                    receiving_mx_helo: Set(d.receiving_mx_helo.clone()),
                    receiving_ip: Set(d.receiving_ip.as_ref().map(ToString::to_string)),
                    failed_sessions: Set(i64::try_from(d.failed_sessions).unwrap_or(i64::MAX)),
                    additional_information: Set(d.additional_information.clone()),
                    failure_reason_code: Set(d.failure_reason_code.clone()),
                    ..Default::default()
                });
            }
        }
    }
    insert_all(txn, &details).await?;
    Ok(())
}

async fn write_failures(
    txn: &DatabaseTransaction,
    pending: Vec<PendingReport>,
    now: DateTime<Utc>,
    out: &mut WriteOutcome,
) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::with_capacity(pending.len());
    for p in &pending {
        let Report::DmarcFailure(r) = &p.item.report else {
            continue;
        };
        let arrival = r.begin.map(|t| t.timestamp());
        rows.push(failure_report::ActiveModel {
            tenant_id: Set(p.item.tenant_id),
            domain_id: Set(p.item.domain_id),
            raw_message_id: Set(Some(p.raw_id)),
            dedupe_key: Set(p.item.dedupe_key.clone()),
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
            created_at: Set(now),
            ..Default::default()
        });
    }
    let inserted = insert_new(
        txn,
        &rows,
        failure_report::Column::DedupeKey,
        failure_report::Column::Id,
    )
    .await?;
    let (stored, unstored, _) = claim(pending, &inserted);
    out.stored += stored.len() as u64;
    out.domains
        .extend(stored.iter().map(|(_, p)| p.item.domain_id));
    // A failure report describes one message: the same key is the same report.
    out.duplicates += unstored.len() as u64;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_chunks_cover_everything_with_few_sizes() {
        let items: Vec<u32> = (0..300).collect();
        let chunks: Vec<&[u32]> = fixed_chunks(&items).collect();
        let lens: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        assert_eq!(
            lens,
            vec![128, 128, 16, 16, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
        );
        assert_eq!(chunks.concat(), items);
        assert_eq!(fixed_chunks::<u32>(&[]).count(), 0);
    }
}
