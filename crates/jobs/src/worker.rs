//! Worker loops and the cron scheduler, under one apalis monitor.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::{
    AbortError, BackendExt as _, BoxDynError, Data, Monitor, WorkerBuilder, WorkerBuilderExt,
};
use apalis_cron::{CronScheduler, Tick};
use futures_util::FutureExt as _;
use tracing::Instrument as _;

use crate::queue::{Backend, Lane};
use crate::{Job, JobError, Pushed, Queue, QueueError, Runner};

/// What this process runs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Prefix of the worker names (unique per process, e.g. `host-pid`).
    pub name: String,
    /// Mailbox polls run at once by this process (0: this process polls nothing).
    pub poll_concurrency: usize,
    /// Other jobs run at once by this process (0: this process runs no other jobs).
    pub concurrency: usize,
    /// Run the scheduler with this cron expression (seconds field first, UTC), e.g.
    /// `0 * * * * *` for every minute; `None` runs no scheduler.
    pub scheduler_cron: Option<String>,
    /// How long in-flight jobs may take to finish after shutdown is requested; after it
    /// they are abandoned and the queue re-queues them once their heartbeat expires.
    pub shutdown_timeout: Duration,
    /// Whether this process may plan at a tick (the scheduler leader election).
    pub leadership: crate::Leadership,
    /// How often an idle worker looks for new jobs.
    pub idle_poll: Duration,
    /// Delay before a job that failed with [`JobError::Retry`] is attempted again.
    pub retry_after: Duration,
}

/// The error a panicking job fails with (retryable, like [`JobError::Retry`]).
#[derive(Debug, thiserror::Error)]
#[error("job panicked: {0}")]
struct JobPanicked(String);

#[derive(Clone)]
struct Ctx {
    leadership: crate::Leadership,
    runner: Arc<dyn Runner>,
    queue: Queue,
    retry_after: Duration,
}

/// The message a panic was raised with (`panic!("…")` carries a `&str` or a `String`).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// Runs `fut` behind a panic boundary: a panic becomes `Err(message)` instead of unwinding
/// into the worker, which would end the lane for every other job.
async fn guarded<T>(fut: impl Future<Output = T>) -> Result<T, String> {
    // The runner's state is shared behind `Arc`s and locks; a job that panics half-way
    // leaves nothing that the next job relies on being consistent beyond what a failed job
    // leaves anyway (every job is idempotent and is retried), hence `AssertUnwindSafe`.
    AssertUnwindSafe(fut)
        .catch_unwind()
        .await
        .map_err(|payload| panic_message(payload.as_ref()))
}

async fn handle_job(job: Job, ctx: Data<Ctx>) -> Result<(), BoxDynError> {
    let span = tracing::info_span!("job", job = job.name(), args = ?job);
    let started = std::time::Instant::now();
    let result = guarded(ctx.runner.run(job.clone()).instrument(span.clone())).await;
    let _guard = span.enter();
    let result = match result {
        Ok(result) => result,
        Err(message) => {
            tracing::error!(panic = %message, "job panicked; will retry while attempts remain");
            ctx.runner.job_panicked(&job, &message);
            // Like a retryable failure: the queue hands the job out again while attempts
            // remain, then leaves it failed.
            tokio::time::sleep(ctx.retry_after).await;
            return Err(JobPanicked(message).into());
        }
    };
    match result {
        Ok(()) => {
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "job done"
            );
            Ok(())
        }
        Err(JobError::Retry(e)) => {
            tracing::warn!(error = %e, "job failed; will retry");
            // A plain error marks the job `Failed`, which the queue hands out again while
            // attempts remain. (apalis' `RetryAfterError` leaves the SQLite row locked by
            // this worker, so it would never run again.) Pause briefly so a failing
            // dependency is not hammered.
            tokio::time::sleep(ctx.retry_after).await;
            Err(e.into())
        }
        Err(JobError::Fatal(e)) => {
            tracing::error!(error = %e, "job failed; not retrying");
            Err(AbortError::new(e).into())
        }
    }
}

async fn handle_tick(tick: Tick, ctx: Data<Ctx>) -> Result<(), BoxDynError> {
    if !ctx.leadership.is_leader() {
        tracing::trace!("scheduler tick skipped: another process is the active scheduler");
        return Ok(());
    }
    let secs = i64::try_from(tick.get_timestamp()).unwrap_or(i64::MAX);
    let now = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_else(chrono::Utc::now);
    let span = tracing::info_span!("scheduler", tick = %now.format("%Y-%m-%dT%H:%M:%SZ"));
    async {
        let planned = match guarded(ctx.runner.plan(now)).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "planning failed");
                return Ok(());
            }
            Err(message) => {
                tracing::error!(panic = %message, "planning panicked; the next tick plans again");
                ctx.runner.plan_panicked(&message);
                return Ok(());
            }
        };
        let (mut queued, mut duplicates) = (0usize, 0usize);
        for p in planned {
            let name = p.job.name();
            match ctx.queue.push(p).await {
                Ok(Pushed::Queued) => queued += 1,
                Ok(Pushed::Duplicate) => duplicates += 1,
                Err(e) => tracing::error!(job = name, error = %e, "could not enqueue"),
            }
        }
        if queued > 0 {
            tracing::info!(queued, duplicates, "scheduler tick");
        } else {
            tracing::debug!(duplicates, "scheduler tick");
        }
        Ok(())
    }
    .instrument(span)
    .await
}

/// Runs job workers and/or the scheduler until `shutdown` resolves, then lets in-flight
/// jobs finish (up to `shutdown_timeout`).
pub async fn run<F>(
    queue: Queue,
    runner: Arc<dyn Runner>,
    options: RunOptions,
    shutdown: F,
) -> Result<(), QueueError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let ctx = Ctx {
        leadership: options.leadership.clone(),
        runner,
        queue: queue.clone(),
        retry_after: options.retry_after,
    };
    let mut monitor = Monitor::new().shutdown_timeout(options.shutdown_timeout);
    let mut any = false;
    for (lane, concurrency) in [
        (Lane::Poll, options.poll_concurrency),
        (Lane::Work, options.concurrency),
    ] {
        if concurrency == 0 {
            continue;
        }
        any = true;
        let name = format!("{}-{}", options.name, lane.name());
        let idle_poll = options.idle_poll;
        let c = ctx.clone();
        monitor = match queue.lane(lane).clone() {
            Backend::Sqlite(storage) => monitor.register(move |run| {
                WorkerBuilder::new(format!("{name}-{run}"))
                    .backend(storage.clone().poll_with_interval(idle_poll))
                    .concurrency(concurrency)
                    .data(c.clone())
                    .build(handle_job)
            }),
            Backend::Postgres(storage) => monitor.register(move |run| {
                WorkerBuilder::new(format!("{name}-{run}"))
                    .backend(storage.clone().poll_with_interval(idle_poll))
                    .concurrency(concurrency)
                    .data(c.clone())
                    .build(handle_job)
            }),
        };
    }
    if let Some(expr) = &options.scheduler_cron {
        any = true;
        let schedule = cron::Schedule::from_str(expr)
            .map_err(|e| QueueError::Setup(format!("invalid scheduler cron {expr:?}: {e}")))?;
        let name = format!("{}-scheduler", options.name);
        let c = ctx.clone();
        monitor = monitor.register(move |run| {
            WorkerBuilder::new(format!("{name}-{run}"))
                .backend(CronScheduler::new(schedule.clone()))
                .data(c.clone())
                .build(handle_tick)
        });
    }
    if !any {
        shutdown.await;
        return Ok(());
    }
    monitor
        .run_with_signal(async move {
            shutdown.await;
            Ok(())
        })
        .await
        .map_err(|e| QueueError::Worker(e.to_string()))
}
