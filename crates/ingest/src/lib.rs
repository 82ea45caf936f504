//! Report ingestion: bytes from mailboxes and files become stored, routed reports.
//!
//! **API boundary.** [`Router`] maps a report's policy domain to the tenant that owns it;
//! [`prepare`] turns one raw message into a [`sealwatch_store::NewMessage`] (parse, route,
//! dedupe keys, quarantine reasons — pure CPU work); [`import`] backfills files, `.eml`,
//! mbox and Maildir; [`imap`] polls IMAP mailboxes; [`retry_quarantined`] parses and routes
//! a quarantined input again.
//!
//! **Architecture invariants.** A report is attached to a tenant only through a domain that
//! tenant owns (the policy domain or one of its parents); anything else is quarantined as
//! `unrouted`, never guessed. An IMAP message is moved, flagged or deleted only after its
//! reports or quarantine entries are committed. Nothing here knows HTTP or the job queue.

pub mod imap;
pub mod import;
mod prepare;
mod retry;
mod route;

pub use prepare::{Prepared, dedupe_key, prepare, sha256_hex};
pub use retry::{RetryOutcome, retry_quarantined};
pub use route::{Route, Router};

/// Errors of the ingest layer.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] sealwatch_store::StoreError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("IMAP: {0}")]
    Imap(String),
    #[error("background task failed: {0}")]
    Task(String),
}

pub type Result<T, E = IngestError> = std::result::Result<T, E>;
