//! The weekly plain-English digest: one email per tenant and ISO week saying what happened to
//! the authentication and encryption of the tenant's mail, whether anything needs doing, and
//! by whom.
//!
//! # API boundary
//!
//! The pure core:
//!
//! - [`IsoWeek`] (`2026-W48`, parse-don't-validate) and [`Schedule`]
//!   (`Schedule::due_week(now)`: the digest covering week W is due on the tenant's weekday and
//!   hour of week W+1 in the tenant's time zone; default Tuesday 08:00);
//! - [`DigestData`] (plain data for one tenant and week) and
//!   [`compose`]`(&DigestData) -> Composed { subject, text, html }` through the askama
//!   templates in `templates/digest/` (`askama.toml` points there).
//!
//! Reading the store: [`gather`]`(store, setup, unsubscribe_url, tenant_id, week) -> DigestData`.
//!
//! Delivery: [`Mailer`] (lettre, pooled; implicit TLS, STARTTLS, or plain to loopback only).
//!
//! The service a job runner calls (each is idempotent and safe to run concurrently from
//! several workers and processes; exactly-once comes from the unique `digests` row per
//! tenant and week and conditional updates on it):
//!
//! ```text
//! build_digest(&Store, &DigestConfig, tenant_id: i64, week: IsoWeek, now) -> Result<BuildOutcome>
//! send_digest(&Store, &Mailer, &DigestConfig, tenant_id, week, worker_id: &str, now) -> Result<SendOutcome>
//! deliver(&Store, &Mailer, &DigestConfig, tenant_id, week, worker_id, now) -> Result<SendOutcome>  // build + send
//! due_digests(&Store, now) -> Result<Vec<(i64, IsoWeek)>>   // the scheduler's weekly tick
//! retry_due(&Store, now) -> Result<Vec<(i64, IsoWeek)>>     // retries, expired leases, unbuilt rows
//! run_due(&Store, &Mailer, &DigestConfig, worker_id, now, concurrency) -> Result<RunSummary>
//! ```
//!
//! A job runner enqueues `due_digests` every few minutes (a tick that fires twice is
//! harmless), runs `deliver` per item, and enqueues `retry_due` items periodically. A failed
//! send is visible in the row (`status`, `attempts`, `last_error`, `next_attempt_at`).
//!
//! # Architecture invariants
//!
//! - Depends on the store and the analytics crate only for reading; never writes reports or
//!   anomalies. Must never depend on the HTTP API, the ingest path, the job queue or `anyhow`.
//! - The core (`week`, `schedule`, `data`, `compose`) does no IO and reads no clock: callers
//!   pass `now`.
//! - Every report-derived string is cleaned and, in HTML, escaped; host names and IPs from
//!   reports are never links (see `compose`).
//! - Dismissed and resolved anomalies never appear in a digest.

mod compose;
mod data;
mod gather;
mod mailer;
mod schedule;
mod service;
pub mod signals;
mod week;

pub use compose::{
    Composed, MAX_FIELD_CHARS, MAX_PROSE_CHARS, Verdict, clean, clean_prose, compose, count,
    defang, defang_prose, explain_result_type, percent, subject,
};
pub use data::{
    DigestData, DomainDigest, HealthSlot, Issue, IssueSeverity, MxRow, SetupHints, SourceRow,
    TlsSection, WeekNumbers,
};
pub use gather::{HISTORY_WEEKS, gather, gather_tenant};
pub use mailer::{Mailer, Outgoing, SendError, Sender, SmtpSettings, SmtpTls, parse_recipient};
pub use schedule::Schedule;
pub use service::{
    BuildOutcome, DigestConfig, RunSummary, SendOutcome, build_digest, deliver, deliver_all,
    due_digests, retry_due, run_due, send_digest,
};
pub use week::IsoWeek;

/// Errors of the digest.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("{0:?} is not an ISO week like 2026-W48")]
    InvalidWeek(String),
    #[error("invalid digest schedule: {0}")]
    InvalidSchedule(String),
    #[error("tenant {0} not found")]
    UnknownTenant(i64),
    #[error("digest configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] sealwatch_store::StoreError),
    #[error("rendering the digest: {0}")]
    Render(#[from] askama::Error),
}
