//! Persistence for sealwatch: connects to SQLite or PostgreSQL, applies the migrations,
//! and offers repositories over the sea-orm entities.
//!
//! **API boundary.** [`Store`] and the plain types it takes and returns ([`NewMessage`],
//! [`Item`], [`WriteOutcome`], [`Mailbox`], [`Tenant`], …). Entities are public for
//! read-side crates but writes go through `Store` methods, which keep the invariants:
//! a report is stored at most once (dedupe key, backed by a content hash), every message's
//! raw bytes are kept, and an IMAP message is marked processed in the same transaction that
//! stores its reports or quarantine entries.
//!
//! **Architecture invariants.** No parsing, no network, no IMAP, no HTTP: input arrives
//! already parsed and routed. Both engines run the same code; engine-specific behaviour is
//! confined to [`Store::connect`].

mod admin;
mod analysis;
mod audit;
mod digests;
pub mod entities;
mod health;
mod ingest;
mod leases;
mod mailboxes;
mod retention;
mod tenants;
mod tokens;

use std::str::FromStr;
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;

pub use admin::{
    AnomalyRow, DigestSummary, DmarcRecordRow, DmarcReportRow, DomainRow, MailboxPatch, MailboxRow,
    QuarantineRow, QueueFilter, QueueKey, ReportFilter, ReportKey, ReviewRow, Scope, TenantPatch,
    TenantRow, TlsFailureRow, TlsPolicyRow, TlsReportRow,
};
pub use analysis::{
    AnalysisTarget, AnomalyChange, AnomalyFilter, AnomalyRecord, AppliedChanges, DmarcSourceRow,
    DomainData, ReportSeenRow, StoredAnomaly, TlsFailureDetailRow, TlsPolicySummaryRow,
};
pub use audit::{AuditEntry, AuditRecord};
pub use digests::{
    BuiltDigest, DigestAnomaly, DigestRow, DigestStatus, DigestTenant, HealthCheckRow,
};
pub use health::{
    HEALTH_CHECK_ACTOR, HealthAnomaly, HealthAnomalyAction, HealthAnomalyOutcome, HealthRun,
};
pub use ingest::{Counts, Item, MessageSource, NewMessage, ReportItem, WriteOutcome};
pub use mailboxes::{AfterAction, Mailbox, NewMailbox, PollRecord, TlsMode};
pub use retention::{Purged, Retention};
pub use tenants::{RouteEntry, Tenant};
pub use tokens::{ApiToken, NewToken, Role, TokenCredential};

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    #[error("a tenant named {0:?} already exists")]
    TenantExists(String),
    #[error("domain {0} already belongs to a tenant")]
    DomainTaken(String),
    #[error("a mailbox named {0:?} already exists")]
    MailboxExists(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("invalid value: {0}")]
    Invalid(String),
    #[error("could not encode {what}: {source}")]
    Encode {
        what: &'static str,
        source: serde_json::Error,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database engine is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// `sqlite://path/to/file.db`, a bare SQLite file path, or `postgres://…`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
}

impl DbConfig {
    /// Normalises the URL: a bare path becomes a SQLite URL that creates the file.
    pub fn normalized_url(&self) -> String {
        let url = self.url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return url.to_owned();
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.contains('?') || path.contains(":memory:") {
            format!("sqlite://{path}")
        } else {
            format!("sqlite://{path}?mode=rwc")
        }
    }

    pub fn engine(&self) -> Engine {
        if self.normalized_url().starts_with("postgres") {
            Engine::Postgres
        } else {
            Engine::Sqlite
        }
    }
}

/// Bytes of a SQLite database file each connection maps into memory (`PRAGMA mmap_size`).
const SQLITE_MMAP_BYTES: u64 = 1 << 30;

/// The database handle. Cheap to clone (a pool).
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    engine: Engine,
}

impl Store {
    /// Connects. SQLite gets WAL journaling, `synchronous=NORMAL`, foreign keys and a busy
    /// timeout, so several connections of one process work concurrently, and reads through
    /// a memory map of up to 1 GiB.
    pub async fn connect(config: &DbConfig) -> Result<Store> {
        let url = config.normalized_url();
        let engine = config.engine();
        let mut opts = ConnectOptions::new(url.clone());
        opts.max_connections(config.max_connections.max(1))
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(30))
            .sqlx_logging(false);
        if engine == Engine::Sqlite {
            // Validate the URL up front for a clear message instead of a pool timeout.
            SqliteConnectOptions::from_str(&url)
                .map_err(|e| StoreError::Invalid(format!("{url}: {e}")))?;
            opts.map_sqlx_sqlite_opts(|o: SqliteConnectOptions| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(30))
                    // Reads through a memory map instead of a read() call per page: the
                    // nightly analysis reads weeks of every domain's history.
                    .pragma("mmap_size", SQLITE_MMAP_BYTES.to_string())
            });
        }
        let db = Database::connect(opts).await?;
        Ok(Store { db, engine })
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<()> {
        sealwatch_migrations::Migrator::up(&self.db, None).await?;
        Ok(())
    }

    /// Names of the migrations not yet applied.
    pub async fn pending_migrations(&self) -> Result<Vec<String>> {
        let pending = sealwatch_migrations::Migrator::get_pending_migrations(&self.db).await?;
        Ok(pending.iter().map(|m| m.name().to_owned()).collect())
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The underlying connection, for read-side crates.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Refreshes the query planner's statistics of the report tables, after a bulk load
    /// changed much of them (PostgreSQL `ANALYZE`, SQLite `PRAGMA optimize`): without it,
    /// PostgreSQL plans the analysis's reads for the empty tables it last measured (a first
    /// analysis right after a large import took 83 s instead of 15 s).
    pub async fn refresh_statistics(&self) -> Result<()> {
        use sea_orm::ConnectionTrait as _;
        let sql = match self.engine {
            Engine::Postgres => {
                "ANALYZE raw_messages, dmarc_reports, dmarc_records, tls_reports, tls_policies, tls_failure_details, tenant_domains"
            }
            Engine::Sqlite => "PRAGMA optimize",
        };
        self.db.execute_unprepared(sql).await?;
        Ok(())
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<()> {
        self.db.ping().await?;
        Ok(())
    }
}

pub(crate) fn to_json<T: serde::Serialize>(what: &'static str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|source| StoreError::Encode { what, source })
}
