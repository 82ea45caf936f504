//! The sealwatch job queue: background work on the service's own database.
//!
//! **API boundary.** [`Job`] (what can be queued), [`Queue`] (push jobs with an optional
//! idempotency key and delay; read queue counts), [`Runner`] (implemented by the binary:
//! runs one job, and plans what the scheduler should enqueue at a tick) and [`run`] (worker
//! loops plus, optionally, the cron scheduler, until a shutdown future resolves).
//!
//! The queue is apalis on SQLite (`Jobs` table in the service database) or on PostgreSQL
//! (schema `apalis`, claimed with `FOR UPDATE SKIP LOCKED`), sharing the store's connection
//! pool, so several worker processes on several machines share one queue and each job is
//! claimed by one worker. A job held by a worker that stops heart-beating is re-queued.
//!
//! **Exactly-once is in the data, not in the queue.** A queue delivers at least once; every
//! job is written so that running it twice is harmless (a digest row per tenant and week, a
//! lease per mailbox, upserted anomalies). Idempotency keys only keep the queue from filling
//! with duplicates when schedulers tick twice.
//!
//! **A panic never ends a lane.** Each job and each scheduler tick runs behind a panic
//! boundary: a panicking job fails like a retryable failure (logged with its message,
//! reported through [`Runner::job_panicked`], retried while attempts remain) and the worker
//! goes on with the next job.
//!
//! **Architecture invariants.** No domain logic: this crate never parses, polls, analyses
//! or renders; it knows job names and ids. It depends on sea-orm only to borrow the pool.

mod leader;
mod queue;
mod worker;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use leader::{Leadership, SCHEDULER_LOCK_KEY};
pub use queue::{Lane, POLL_QUEUE, Pushed, Queue, QueueCounts, WORK_QUEUE};
pub use worker::{RunOptions, run};

/// A unit of background work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "kebab-case")]
pub enum Job {
    /// Poll one IMAP mailbox.
    PollMailbox { mailbox_id: i64 },
    /// Analyse one domain's reports and update its anomalies (after a poll stored some).
    AnalyzeDomain { domain_id: i64 },
    /// The nightly analysis of a batch of domains as of one UTC day (`2026-11-30`).
    AnalyzeDomains { domain_ids: Vec<i64>, day: String },
    /// Build the digest of one tenant for one ISO week (`2026-W48`).
    BuildDigest { tenant_id: i64, week: String },
    /// Send the built digest of one tenant for one ISO week.
    SendDigest { tenant_id: i64, week: String },
    /// Run the DNS / MTA-STS health check of one domain and store the result.
    CheckDomain { domain_id: i64 },
    /// Purge raw messages, quarantined inputs, reports and finished jobs past retention.
    Retention,
}

impl Job {
    /// A short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Job::PollMailbox { .. } => "poll-mailbox",
            Job::AnalyzeDomain { .. } => "analyze-domain",
            Job::AnalyzeDomains { .. } => "analyze-domains",
            Job::BuildDigest { .. } => "build-digest",
            Job::SendDigest { .. } => "send-digest",
            Job::CheckDomain { .. } => "check-domain",
            Job::Retention => "retention",
        }
    }
}

impl Job {
    /// Queue priority (higher runs first): digests are time-sensitive and short, the
    /// analysis feeds them, health checks can wait on slow DNS and the purge waits for all.
    pub fn priority(&self) -> usize {
        match self {
            Job::BuildDigest { .. } | Job::SendDigest { .. } => 30,
            Job::PollMailbox { .. } | Job::AnalyzeDomain { .. } => 20,
            Job::AnalyzeDomains { .. } => 15,
            Job::CheckDomain { .. } => 10,
            Job::Retention => 5,
        }
    }
}

/// A job to enqueue, with what keeps it from being queued twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub job: Job,
    /// Unique among all jobs ever queued (kept until the finished job is purged): the same
    /// key pushed again is a no-op. Include the period it covers, e.g.
    /// `build-digest:42:2026-W48` or `poll:7:2026-11-30T10:05`.
    pub key: Option<String>,
    /// Run no earlier than this long after enqueueing.
    pub delay: Option<Duration>,
    /// Attempts before the queue gives up on the job.
    pub max_attempts: u32,
}

impl Planned {
    /// A job with a key and the default of 5 attempts.
    pub fn keyed(job: Job, key: impl Into<String>) -> Planned {
        Planned {
            job,
            key: Some(key.into()),
            delay: None,
            max_attempts: 5,
        }
    }
}

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt (network down, database busy).
    #[error("{0}")]
    Retry(String),
    /// Will fail the same way again (the tenant was deleted, bad input).
    #[error("{0}")]
    Fatal(String),
}

/// Errors of the queue itself.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("job queue database error: {0}")]
    Db(String),
    #[error("job queue setup failed: {0}")]
    Setup(String),
    #[error("job worker failed: {0}")]
    Worker(String),
}

/// What the binary provides: how to run each job, and what to plan at each scheduler tick.
#[async_trait::async_trait]
pub trait Runner: Send + Sync + 'static {
    /// Runs one job. Must be safe to call twice with the same job.
    async fn run(&self, job: Job) -> Result<(), JobError>;
    /// The jobs due at `now` (digests whose send time came, polls, nightly analysis, …).
    /// Called by the one active scheduler every tick.
    async fn plan(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Vec<Planned>, JobError>;
    /// Called after [`Runner::run`] panicked on `job` (with the panic's message). The worker
    /// has caught the panic: the job fails like a retryable failure and the lane keeps
    /// running. For metrics; the default does nothing.
    fn job_panicked(&self, job: &Job, message: &str) {
        let _ = (job, message);
    }
    /// Called after [`Runner::plan`] panicked (with the panic's message); nothing is
    /// enqueued at that tick and the scheduler keeps ticking. The default does nothing.
    fn plan_panicked(&self, message: &str) {
        let _ = message;
    }
}
