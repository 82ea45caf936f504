//! `sealwatch serve`: the long-running service, in one or more roles.
//!
//! * `api` — the admin web API (actix-web) on `--bind`.
//! * `poller` — runs mailbox-poll jobs (each mailbox leased to one process at a time).
//! * `worker` — runs every other job: analysis, digests, health checks.
//! * `scheduler` — the cron tick that plans jobs (polls every interval, the nightly
//!   analysis, weekly digests and health checks). Safe to run in several processes: every
//!   planned job carries an idempotency key, and digests are exactly-once in the data.
//!
//! All roles share the one database and its job queue. On SQLite only one `serve` process
//! may use a database file; a second one is refused.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use sealwatch_jobs::{Queue, RunOptions};
use sealwatch_parser::Parser;
use sealwatch_store::Engine;
use tracing::{error, info};

use crate::cli::{Role, ServeArgs};
use crate::config::{Config, redact_url};

/// Which roles this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub api: bool,
    pub poller: bool,
    pub worker: bool,
    pub scheduler: bool,
}

impl Roles {
    pub fn from_args(roles: &[Role]) -> Roles {
        let all = roles.is_empty() || roles.contains(&Role::All);
        let has = |r: Role| all || roles.contains(&r);
        Roles {
            api: has(Role::Api),
            poller: has(Role::Poller),
            worker: has(Role::Worker),
            scheduler: has(Role::Scheduler),
        }
    }

    fn names(self) -> String {
        let mut v = Vec::new();
        for (on, name) in [
            (self.api, "api"),
            (self.poller, "poller"),
            (self.worker, "worker"),
            (self.scheduler, "scheduler"),
        ] {
            if on {
                v.push(name);
            }
        }
        v.join(",")
    }
}

/// Holds the exclusive lock on a SQLite database's `.serve.lock` file for the life of the
/// process: two `serve` processes on one SQLite file would each run the scheduler, poll the
/// same mailboxes and contend for the single writer.
fn lock_sqlite(config: &Config) -> anyhow::Result<Option<std::fs::File>> {
    let url = config.db().normalized_url();
    let Some(rest) = url.strip_prefix("sqlite://") else {
        return Ok(None);
    };
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" {
        return Ok(None);
    }
    let lock_path = format!("{path}.serve.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {lock_path}"))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another sealwatch serve process is already using the SQLite database {path} \
             (lock {lock_path}); SQLite supports one serve process with all roles — use \
             PostgreSQL to run several"
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {lock_path}"))
        }
    }
}

pub async fn serve(config: &Config, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let roles = Roles::from_args(&args.roles);
    let _sqlite_lock = lock_sqlite(config)?;
    let store = crate::app::open(config).await?;
    if store.engine() == Engine::Sqlite && roles != Roles::from_args(&[]) {
        info!(
            "SQLite: running only some roles; the others need their own process, which SQLite does not allow"
        );
    }
    let mut config = config.clone();
    if let Some(secs) = args.interval {
        config.poller.interval_secs = secs.max(1);
    }
    info!(
        database = %redact_url(&config.db().normalized_url()),
        roles = %roles.names(),
        poll_interval_secs = config.poller.interval_secs,
        "sealwatch serving"
    );
    let metrics = Arc::new(sealwatch_api::Metrics::default());

    // Every role uses the job queue: workers run it, the scheduler fills it, the API hands
    // on-demand work to it.
    let queue = Queue::open(store.connection())
        .await
        .context("opening the job queue")?;

    // The admin API, or for other roles only the probes (`/healthz`, `/readyz`,
    // `/metrics`); it stops gracefully with the rest.
    let api = {
        let bind = args.bind.clone().unwrap_or_else(|| config.api.bind.clone());
        let listener = std::net::TcpListener::bind(&bind)
            .with_context(|| format!("binding the HTTP listener to {bind}"))?;
        listener.set_nonblocking(true)?;
        let state = sealwatch_api::AppState::new(
            store.clone(),
            crate::admin_cmd::api_config(&config),
            Arc::new(Parser::new(config.limits())),
            metrics.clone(),
        )
        .with_queue(queue.clone());
        let server = if roles.api {
            info!(bind = %listener.local_addr()?, "admin API listening");
            sealwatch_api::server(listener, state)?
        } else {
            info!(bind = %listener.local_addr()?, "health and metrics endpoints listening");
            sealwatch_api::probe_server(listener, state)?
        };
        let handle = server.handle();
        Some((handle, tokio::spawn(server)))
    };

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let jobs = if roles.poller || roles.worker || roles.scheduler {
        let owner = crate::jobs_runner::process_name();
        let runner = Arc::new(crate::jobs_runner::SealwatchRunner::new(
            store.clone(),
            config.clone(),
            crate::app::poller(&config, &store)?,
            queue.clone(),
            owner.clone(),
            metrics.clone(),
        )?);
        let j = &config.jobs;
        let options = RunOptions {
            name: owner,
            poll_concurrency: if roles.poller {
                config.poller.concurrency.max(1)
            } else {
                0
            },
            concurrency: if roles.worker {
                j.concurrency.max(1)
            } else {
                0
            },
            scheduler_cron: roles.scheduler.then(|| j.scheduler_cron.clone()),
            shutdown_timeout: Duration::from_secs(j.shutdown_timeout_secs),
            idle_poll: Duration::from_millis(j.idle_poll_ms.max(50)),
            retry_after: Duration::from_secs(j.retry_after_secs),
            leadership: if roles.scheduler {
                sealwatch_jobs::Leadership::campaign(
                    store.connection(),
                    Duration::from_secs(5),
                    stop_rx.clone(),
                )
            } else {
                sealwatch_jobs::Leadership::always()
            },
        };
        // The queue gauge on /metrics, read every 15 seconds.
        {
            let queue = queue.clone();
            let metrics = metrics.clone();
            let mut rx = stop_rx.clone();
            tokio::spawn(async move {
                loop {
                    if let Ok(c) = queue.counts().await {
                        metrics.set_queue([c.pending, c.running, c.done, c.failed, c.killed]);
                    }
                    tokio::select! {
                        _ = rx.wait_for(|stop| *stop) => break,
                        () = tokio::time::sleep(Duration::from_secs(15)) => {}
                    }
                }
            });
        }
        let mut rx = stop_rx.clone();
        Some(tokio::spawn(sealwatch_jobs::run(
            queue,
            runner,
            options,
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            },
        )))
    } else {
        None
    };

    crate::app::shutdown_signal().await;
    info!("shutting down: finishing in-flight work");
    let _ = stop_tx.send(true);
    if let Some((handle, task)) = api {
        handle.stop(true).await;
        if let Err(e) = task.await {
            error!(error = %e, "admin API task failed");
        }
    }
    if let Some(task) = jobs {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error!(error = %e, "job workers stopped with an error"),
            Err(e) => error!(error = %e, "job workers task failed"),
        }
    }
    info!("shut down cleanly");
    Ok(ExitCode::SUCCESS)
}
