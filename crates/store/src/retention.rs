//! Data lifecycle: raw messages (and the quarantine entries that point at them) are purged
//! after `raw_days`, parsed reports after `reports_days` (default 400: a year-over-year
//! comparison needs a year and a bit). Deletes run in bounded batches so a purge never holds
//! a long write lock; running it twice is harmless.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ColumnTrait, EntityTrait, ExprTrait as _, QueryFilter};

use crate::entities::{dmarc_report, failure_report, raw_message, tls_report};
use crate::{Result, Store};

/// How long to keep what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw message bytes and quarantined inputs.
    pub raw_days: u32,
    /// Parsed reports (aggregate, TLS, failure) by the end of the period they cover.
    pub reports_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            raw_days: 90,
            reports_days: 400,
        }
    }
}

/// What one purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Purged {
    pub raw_messages: u64,
    pub dmarc_reports: u64,
    pub tls_reports: u64,
    pub failure_reports: u64,
}

/// Rows deleted per statement.
const BATCH: u64 = 5_000;

impl Store {
    /// Deletes what is older than the retention allows, as of `now`.
    pub async fn purge_expired(&self, retention: Retention, now: DateTime<Utc>) -> Result<Purged> {
        let raw_cutoff = now - Duration::days(i64::from(retention.raw_days));
        let report_cutoff = (now - Duration::days(i64::from(retention.reports_days))).timestamp();
        let mut purged = Purged::default();
        // Reports first: their raw message (if still there) goes with the raw purge, and a
        // report whose raw message is purged keeps `raw_message_id = NULL`.
        loop {
            let ids = Query::select()
                .column(dmarc_report::Column::Id)
                .from(dmarc_report::Entity)
                .and_where(Expr::col(dmarc_report::Column::EndTs).lt(report_cutoff))
                .limit(BATCH)
                .take();
            let n = dmarc_report::Entity::delete_many()
                .filter(dmarc_report::Column::Id.in_subquery(ids))
                .exec(&self.db)
                .await?
                .rows_affected;
            purged.dmarc_reports += n;
            if n < BATCH {
                break;
            }
        }
        loop {
            let ids = Query::select()
                .column(tls_report::Column::Id)
                .from(tls_report::Entity)
                .and_where(Expr::col(tls_report::Column::EndTs).lt(report_cutoff))
                .limit(BATCH)
                .take();
            let n = tls_report::Entity::delete_many()
                .filter(tls_report::Column::Id.in_subquery(ids))
                .exec(&self.db)
                .await?
                .rows_affected;
            purged.tls_reports += n;
            if n < BATCH {
                break;
            }
        }
        loop {
            // A failure report without an arrival date is judged by when it was stored.
            let ids =
                Query::select()
                    .column(failure_report::Column::Id)
                    .from(failure_report::Entity)
                    .cond_where(
                        sea_orm::Condition::any()
                            .add(Expr::col(failure_report::Column::ArrivalTs).lt(report_cutoff))
                            .add(
                                sea_orm::Condition::all()
                                    .add(Expr::col(failure_report::Column::ArrivalTs).is_null())
                                    .add(Expr::col(failure_report::Column::CreatedAt).lt(
                                        now - Duration::days(i64::from(retention.reports_days))
                                    )),
                            ),
                    )
                    .limit(BATCH)
                    .take();
            let n = failure_report::Entity::delete_many()
                .filter(failure_report::Column::Id.in_subquery(ids))
                .exec(&self.db)
                .await?
                .rows_affected;
            purged.failure_reports += n;
            if n < BATCH {
                break;
            }
        }
        loop {
            let ids = Query::select()
                .column(raw_message::Column::Id)
                .from(raw_message::Entity)
                .and_where(Expr::col(raw_message::Column::ReceivedAt).lt(raw_cutoff))
                .limit(BATCH)
                .take();
            let n = raw_message::Entity::delete_many()
                .filter(raw_message::Column::Id.in_subquery(ids))
                .exec(&self.db)
                .await?
                .rows_affected;
            purged.raw_messages += n;
            if n < BATCH {
                break;
            }
        }
        Ok(purged)
    }
}
