//! The queue: one apalis storage of [`Job`]s on whichever engine the service database is.

use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};

use crate::{Job, Planned, QueueError};

/// The apalis queue of mailbox polls (consumed by the `poller` role).
pub const POLL_QUEUE: &str = "sealwatch-poll";
/// The apalis queue of every other job (consumed by the `worker` role).
pub const WORK_QUEUE: &str = "sealwatch-work";

/// How often a worker reports that it is alive. An idle worker also looks for new jobs at
/// least this often (apalis re-arms its fetch with the heartbeat), so it bounds how long a
/// queued job can wait for an idle worker.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(5);
/// Heartbeats a worker may miss before its running jobs are handed to others (20 s). Jobs
/// are idempotent in the data, so a slow worker being taken for dead costs work, not
/// correctness.
pub const MISSED_HEARTBEATS: usize = 4;

/// Which of the two queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Poll,
    Work,
}

impl Lane {
    pub fn name(self) -> &'static str {
        match self {
            Lane::Poll => POLL_QUEUE,
            Lane::Work => WORK_QUEUE,
        }
    }

    /// The lane a job runs on.
    pub fn of(job: &Job) -> Lane {
        match job {
            Job::PollMailbox { .. } => Lane::Poll,
            _ => Lane::Work,
        }
    }
}

/// The shared job queue: two apalis queues (polls, other work) in the service database.
#[derive(Clone)]
pub struct Queue {
    pub(crate) poll: Backend,
    pub(crate) work: Backend,
    db: DatabaseConnection,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let engine = match self.work {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        };
        f.debug_struct("Queue").field("engine", &engine).finish()
    }
}

#[derive(Clone)]
pub(crate) enum Backend {
    Sqlite(SqliteStorage<Job>),
    Postgres(PostgresStorage<Job>),
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// A job with the same idempotency key was queued before; nothing was added.
    Duplicate,
}

/// Jobs per state.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueCounts {
    pub pending: u64,
    pub running: u64,
    pub done: u64,
    pub failed: u64,
    pub killed: u64,
}

impl Queue {
    /// Opens the queue on the store's database, creating its tables when missing
    /// (idempotent; safe when several processes start at once).
    pub async fn open(db: &DatabaseConnection) -> Result<Queue, QueueError> {
        let (poll, work) = match db.get_database_backend() {
            DatabaseBackend::Sqlite => {
                let pool = db.get_sqlite_connection_pool();
                // Only the schema: `SqliteStorage::setup` would also switch the connection to
                // `synchronous = OFF`, which the store does not accept for its data.
                SqliteStorage::<()>::migrations()
                    .run(pool)
                    .await
                    .map_err(|e| QueueError::Setup(e.to_string()))?;
                let lane = |name: &str| {
                    let config = apalis_sqlite::Config::default()
                        .queue(name)
                        .heartbeat_interval(HEARTBEAT)
                        .missed_heartbeats(MISSED_HEARTBEATS);
                    Backend::Sqlite(SqliteStorage::new(pool).with_config(config))
                };
                (lane(POLL_QUEUE), lane(WORK_QUEUE))
            }
            DatabaseBackend::Postgres => {
                let pool = db.get_postgres_connection_pool();
                PostgresStorage::<()>::setup(pool)
                    .await
                    .map_err(|e| QueueError::Setup(e.to_string()))?;
                let lane = |name: &str| {
                    let config = apalis_postgres::Config::default()
                        .queue(name)
                        .heartbeat_interval(HEARTBEAT)
                        .missed_heartbeats(MISSED_HEARTBEATS);
                    Backend::Postgres(PostgresStorage::new(pool).with_config(config))
                };
                (lane(POLL_QUEUE), lane(WORK_QUEUE))
            }
            other => {
                return Err(QueueError::Setup(format!(
                    "unsupported database backend {other:?}"
                )));
            }
        };
        Ok(Queue {
            poll,
            work,
            db: db.clone(),
        })
    }

    pub(crate) fn lane(&self, lane: Lane) -> &Backend {
        match lane {
            Lane::Poll => &self.poll,
            Lane::Work => &self.work,
        }
    }

    fn jobs_table(&self) -> &'static str {
        match self.work {
            Backend::Sqlite(_) => "Jobs",
            Backend::Postgres(_) => "apalis.jobs",
        }
    }

    /// Whether a job with this idempotency key was ever queued (and not yet purged).
    pub async fn contains_key(&self, lane: Lane, key: &str) -> Result<bool, QueueError> {
        let (sql, engine) = match self.work {
            Backend::Sqlite(_) => (
                "SELECT 1 FROM Jobs WHERE job_type = ? AND idempotency_key = ? LIMIT 1",
                DatabaseBackend::Sqlite,
            ),
            Backend::Postgres(_) => (
                "SELECT 1 FROM apalis.jobs WHERE job_type = $1 AND idempotency_key = $2 LIMIT 1",
                DatabaseBackend::Postgres,
            ),
        };
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                engine,
                sql,
                [lane.name().into(), key.into()],
            ))
            .await
            .map_err(|e| QueueError::Db(e.to_string()))?;
        Ok(row.is_some())
    }

    /// Queues a job. With a key already used, nothing is added ([`Pushed::Duplicate`]).
    pub async fn push(&self, planned: Planned) -> Result<Pushed, QueueError> {
        let lane = Lane::of(&planned.job);
        if let Some(key) = &planned.key
            && self.contains_key(lane, key).await?
        {
            return Ok(Pushed::Duplicate);
        }
        let priority = planned.job.priority();
        let mut builder = TaskBuilder::new(planned.job)
            .max_attempts(planned.max_attempts.max(1) as usize)
            .priority(priority);
        if let Some(key) = &planned.key {
            builder = builder.idempotency_key(key);
        }
        if let Some(delay) = planned.delay {
            builder = builder.run_after(delay);
        }
        let result = match self.lane(lane) {
            Backend::Sqlite(s) => {
                let mut s = s.clone();
                s.push_task(builder.build())
                    .await
                    .map_err(|e| e.to_string())
            }
            Backend::Postgres(s) => {
                let mut s = s.clone();
                s.push_task(builder.build())
                    .await
                    .map_err(|e| e.to_string())
            }
        };
        match result {
            // On SQLite a key that slipped past the check is ignored by the unique index
            // (`ON CONFLICT DO NOTHING`): still one row.
            Ok(()) => Ok(Pushed::Queued),
            // Two schedulers raced past the check: the unique index kept one.
            Err(e) if planned.key.is_some() && e.contains("idempotency") => Ok(Pushed::Duplicate),
            Err(e) => Err(QueueError::Db(e)),
        }
    }

    /// Jobs per state, both lanes together.
    pub async fn counts(&self) -> Result<QueueCounts, QueueError> {
        let mut total = self.lane_counts(Lane::Poll).await?;
        let work = self.lane_counts(Lane::Work).await?;
        total.pending += work.pending;
        total.running += work.running;
        total.done += work.done;
        total.failed += work.failed;
        total.killed += work.killed;
        Ok(total)
    }

    /// Jobs per state in one lane.
    pub async fn lane_counts(&self, lane: Lane) -> Result<QueueCounts, QueueError> {
        let engine = self.db.get_database_backend();
        let placeholder = if engine == DatabaseBackend::Postgres {
            "$1"
        } else {
            "?"
        };
        let sql = format!(
            "SELECT status, COUNT(*) AS n FROM {} WHERE job_type = {placeholder} GROUP BY status",
            self.jobs_table()
        );
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                engine,
                sql,
                [lane.name().into()],
            ))
            .await
            .map_err(|e| QueueError::Db(e.to_string()))?;
        let mut counts = QueueCounts::default();
        for row in rows {
            let status: String = row
                .try_get("", "status")
                .map_err(|e| QueueError::Db(e.to_string()))?;
            let n: i64 = row
                .try_get("", "n")
                .map_err(|e| QueueError::Db(e.to_string()))?;
            let n = u64::try_from(n).unwrap_or(0);
            match status.as_str() {
                "Pending" => counts.pending += n,
                "Queued" | "Running" => counts.running += n,
                "Done" => counts.done += n,
                "Failed" => counts.failed += n,
                "Killed" => counts.killed += n,
                _ => {}
            }
        }
        Ok(counts)
    }

    /// Deletes finished jobs (done, killed, or failed for good) that finished before
    /// `before`. Their idempotency keys are released with them, so keep them longer than
    /// any key's period (a week is plenty: keys name their day, week or poll slot).
    pub async fn purge_finished(
        &self,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, QueueError> {
        let finished =
            "(status IN ('Done', 'Killed') OR (status = 'Failed' AND attempts >= max_attempts))";
        let stmt = match self.work {
            Backend::Sqlite(_) => Statement::from_sql_and_values(
                DatabaseBackend::Sqlite,
                format!(
                    "DELETE FROM Jobs WHERE job_type IN (?, ?) AND {finished} AND done_at IS NOT NULL AND done_at < ?"
                ),
                [
                    POLL_QUEUE.into(),
                    WORK_QUEUE.into(),
                    before.timestamp().into(),
                ],
            ),
            Backend::Postgres(_) => Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                format!(
                    "DELETE FROM apalis.jobs WHERE job_type IN ($1, $2) AND {finished} AND done_at IS NOT NULL AND done_at < $3"
                ),
                [POLL_QUEUE.into(), WORK_QUEUE.into(), before.into()],
            ),
        };
        let res = self
            .db
            .execute_raw(stmt)
            .await
            .map_err(|e| QueueError::Db(e.to_string()))?;
        Ok(res.rows_affected())
    }

    /// The database connection the queue lives in.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }
}
