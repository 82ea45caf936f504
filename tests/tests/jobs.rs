//! The job queue on both engines: each job runs once across several worker processes,
//! idempotency keys keep duplicates out, retryable failures are retried and fatal ones are
//! not, a panicking job or plan is caught without ending its lane, the cron scheduler
//! enqueues what the runner plans, and shutdown lets in-flight jobs finish.

#[path = "../common/db.rs"]
mod db;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sealwatch_jobs::{Job, JobError, Planned, Pushed, Queue, RunOptions, Runner};
use sealwatch_store::{DbConfig, Store};

/// Records every run; fails as told.
#[derive(Default)]
struct Recorder {
    runs: Mutex<HashMap<i64, u32>>,
    successes: Mutex<HashMap<i64, u32>>,
    /// domain id → failures to return before succeeding (u32::MAX: fatal).
    failures: Mutex<HashMap<i64, u32>>,
    sleep: Option<Duration>,
    plans: Mutex<u32>,
    plan: Vec<Planned>,
    /// Job ids whose every run panics.
    panic_on: Vec<i64>,
    /// Scheduler ticks whose planning panics (counted down).
    plan_panics: Mutex<u32>,
    /// What `job_panicked` was told: (job, panic message).
    panicked: Mutex<Vec<(Job, String)>>,
    /// What `plan_panicked` was told.
    plans_panicked: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Runner for Recorder {
    async fn run(&self, job: Job) -> Result<(), JobError> {
        let id = match job {
            Job::AnalyzeDomain { domain_id } => domain_id,
            Job::PollMailbox { mailbox_id } => -mailbox_id,
            other => return Err(JobError::Fatal(format!("unexpected {other:?}"))),
        };
        *self.runs.lock().expect("lock").entry(id).or_default() += 1;
        if let Some(d) = self.sleep {
            tokio::time::sleep(d).await;
        }
        if self.panic_on.contains(&id) {
            panic!("index out of bounds in job {id}");
        }
        {
            let mut failures = self.failures.lock().expect("lock");
            if let Some(left) = failures.get_mut(&id) {
                if *left == u32::MAX {
                    return Err(JobError::Fatal("domain deleted".into()));
                }
                if *left > 0 {
                    *left -= 1;
                    return Err(JobError::Retry("database busy".into()));
                }
            }
        }
        *self.successes.lock().expect("lock").entry(id).or_default() += 1;
        Ok(())
    }

    async fn plan(&self, _now: chrono::DateTime<chrono::Utc>) -> Result<Vec<Planned>, JobError> {
        *self.plans.lock().expect("lock") += 1;
        let panic_now = {
            let mut left = self.plan_panics.lock().expect("lock");
            let now = *left > 0;
            *left = left.saturating_sub(1);
            now
        };
        if panic_now {
            panic!("planning blew up");
        }
        Ok(self.plan.clone())
    }

    fn job_panicked(&self, job: &Job, message: &str) {
        self.panicked
            .lock()
            .expect("lock")
            .push((job.clone(), message.to_owned()));
    }

    fn plan_panicked(&self, message: &str) {
        self.plans_panicked
            .lock()
            .expect("lock")
            .push(message.to_owned());
    }
}

fn options(name: &str, concurrency: usize) -> RunOptions {
    RunOptions {
        name: name.to_owned(),
        poll_concurrency: concurrency,
        concurrency,
        scheduler_cron: None,
        shutdown_timeout: Duration::from_secs(30),
        retry_after: Duration::from_secs(1),
        idle_poll: Duration::from_millis(500),
        leadership: sealwatch_jobs::Leadership::always(),
    }
}

async fn second_connection(url: &str) -> Store {
    Store::connect(&DbConfig {
        url: url.to_owned(),
        max_connections: 4,
    })
    .await
    .expect("second connection")
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..600 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

type Stop = tokio::sync::oneshot::Sender<()>;

fn start(
    queue: Queue,
    runner: Arc<Recorder>,
    options: RunOptions,
) -> (Stop, tokio::task::JoinHandle<()>) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        sealwatch_jobs::run(queue, runner, options, async move {
            let _ = rx.await;
        })
        .await
        .expect("workers run");
    });
    (tx, handle)
}

async fn each_job_runs_once_across_two_processes(engine: db::Engine) {
    let db = db::TestDb::new(engine, "jobs_once").await;
    let other = second_connection(&db.url).await;
    let q1 = Queue::open(db.store.connection()).await.expect("queue 1");
    let q2 = Queue::open(other.connection()).await.expect("queue 2");
    const N: i64 = 40;
    for id in 1..=N {
        let pushed = q1
            .push(Planned::keyed(
                Job::AnalyzeDomain { domain_id: id },
                format!("analyze:{id}"),
            ))
            .await
            .expect("push");
        assert_eq!(pushed, Pushed::Queued);
    }
    let runner = Arc::new(Recorder {
        sleep: Some(Duration::from_millis(20)),
        ..Recorder::default()
    });
    let (s1, h1) = start(q1.clone(), runner.clone(), options("proc-a", 2));
    let (s2, h2) = start(q2, runner.clone(), options("proc-b", 2));
    wait_until("all jobs to run", || {
        runner.successes.lock().expect("lock").len() == N as usize
    })
    .await;
    // Give a duplicate claim, if any, time to show up before judging.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = s1.send(());
    let _ = s2.send(());
    h1.await.expect("worker a");
    h2.await.expect("worker b");
    let runs = runner.runs.lock().expect("lock").clone();
    for id in 1..=N {
        assert_eq!(
            runs.get(&id),
            Some(&1),
            "job {id} ran {:?} times",
            runs.get(&id)
        );
    }
    let counts = q1.counts().await.expect("counts");
    assert_eq!(counts.done, N as u64, "{counts:?}");
    assert_eq!(
        counts.pending + counts.running + counts.failed,
        0,
        "{counts:?}"
    );
}

async fn idempotency_keys_keep_duplicates_out(engine: db::Engine) {
    let db = db::TestDb::new(engine, "jobs_keys").await;
    let other = second_connection(&db.url).await;
    let q1 = Queue::open(db.store.connection()).await.expect("queue 1");
    let q2 = Queue::open(other.connection()).await.expect("queue 2");
    let job = || {
        Planned::keyed(
            Job::AnalyzeDomain { domain_id: 7 },
            "build-digest:7:2026-W48",
        )
    };
    assert_eq!(q1.push(job()).await.expect("first push"), Pushed::Queued);
    // The same key from the same and from another process: both refused.
    assert_eq!(q1.push(job()).await.expect("again"), Pushed::Duplicate);
    assert_eq!(q2.push(job()).await.expect("other"), Pushed::Duplicate);
    // Two processes racing with a fresh key: exactly one row.
    let race = |q: Queue| async move {
        q.push(Planned::keyed(
            Job::AnalyzeDomain { domain_id: 8 },
            "raced-key",
        ))
        .await
        .expect("raced push")
    };
    let (a, b) = tokio::join!(race(q1.clone()), race(q2.clone()));
    let queued = [a, b].iter().filter(|p| **p == Pushed::Queued).count();
    assert!(queued >= 1, "{a:?} {b:?}");
    let counts = q1.counts().await.expect("counts");
    assert_eq!(counts.pending, 2, "one row per key: {counts:?}");
    // Without a key nothing is deduplicated.
    let unkeyed = Planned { key: None, ..job() };
    assert_eq!(
        q1.push(unkeyed.clone()).await.expect("unkeyed"),
        Pushed::Queued
    );
    assert_eq!(q1.push(unkeyed).await.expect("unkeyed 2"), Pushed::Queued);
    assert_eq!(q1.counts().await.expect("counts").pending, 4);
}

async fn retryable_failures_retry_and_fatal_ones_stop(engine: db::Engine) {
    let db = db::TestDb::new(engine, "jobs_retry").await;
    let queue = Queue::open(db.store.connection()).await.expect("queue");
    let runner = Arc::new(Recorder::default());
    runner.failures.lock().expect("lock").insert(1, 2); // two retryable failures, then success
    runner.failures.lock().expect("lock").insert(2, u32::MAX); // fatal
    for id in [1, 2] {
        queue
            .push(Planned::keyed(
                Job::AnalyzeDomain { domain_id: id },
                format!("k{id}"),
            ))
            .await
            .expect("push");
    }
    let (stop, handle) = start(queue.clone(), runner.clone(), options("retry", 2));
    wait_until("job 1 to succeed after retries", || {
        runner.successes.lock().expect("lock").get(&1) == Some(&1)
    })
    .await;
    let _ = stop.send(());
    handle.await.expect("worker");
    let runs = runner.runs.lock().expect("lock").clone();
    assert_eq!(runs.get(&1), Some(&3), "two failures then success");
    assert_eq!(runs.get(&2), Some(&1), "a fatal failure is not retried");
    assert!(runner.successes.lock().expect("lock").get(&2).is_none());
}

async fn scheduler_enqueues_planned_jobs_once_per_key(engine: db::Engine) {
    let db = db::TestDb::new(engine, "jobs_sched").await;
    let queue = Queue::open(db.store.connection()).await.expect("queue");
    let runner = Arc::new(Recorder {
        plan: vec![
            Planned::keyed(Job::PollMailbox { mailbox_id: 3 }, "poll:3:slot-1"),
            Planned::keyed(Job::AnalyzeDomain { domain_id: 4 }, "analyze:4:2026-11-30"),
        ],
        ..Recorder::default()
    });
    let mut opts = options("sched", 2);
    opts.scheduler_cron = Some("* * * * * *".to_owned()); // every second
    let (stop, handle) = start(queue.clone(), runner.clone(), opts);
    wait_until("three scheduler ticks", || {
        *runner.plans.lock().expect("lock") >= 3
    })
    .await;
    wait_until("planned jobs to run", || {
        runner.successes.lock().expect("lock").len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = stop.send(());
    handle.await.expect("scheduler");
    let runs = runner.runs.lock().expect("lock").clone();
    assert_eq!(runs.get(&-3), Some(&1), "{runs:?}");
    assert_eq!(runs.get(&4), Some(&1), "{runs:?}");
}

async fn shutdown_lets_in_flight_jobs_finish(engine: db::Engine) {
    let db = db::TestDb::new(engine, "jobs_shutdown").await;
    let queue = Queue::open(db.store.connection()).await.expect("queue");
    let runner = Arc::new(Recorder {
        sleep: Some(Duration::from_secs(2)),
        ..Recorder::default()
    });
    queue
        .push(Planned::keyed(Job::AnalyzeDomain { domain_id: 9 }, "slow"))
        .await
        .expect("push");
    let (stop, handle) = start(queue.clone(), runner.clone(), options("shutdown", 1));
    wait_until("the job to start", || {
        !runner.runs.lock().expect("lock").is_empty()
    })
    .await;
    let _ = stop.send(());
    handle.await.expect("worker stops");
    assert_eq!(
        runner.successes.lock().expect("lock").get(&9),
        Some(&1),
        "the in-flight job finished before the worker stopped"
    );
    let counts = queue.counts().await.expect("counts");
    assert_eq!(counts.done, 1, "{counts:?}");
}

/// A job that panics fails like a retryable failure (retried, then left failed, reported to
/// the runner's hook) while the same worker goes on running the next jobs.
async fn a_panicking_job_fails_and_the_lane_keeps_running(engine: db::Engine) {
    let db = db::TestDb::new(engine, "jobs_panic").await;
    let queue = Queue::open(db.store.connection()).await.expect("queue");
    let runner = Arc::new(Recorder {
        panic_on: vec![1],
        ..Recorder::default()
    });
    const ATTEMPTS: u32 = 3;
    queue
        .push(Planned {
            max_attempts: ATTEMPTS,
            ..Planned::keyed(Job::AnalyzeDomain { domain_id: 1 }, "panics")
        })
        .await
        .expect("push");
    for id in 2..=5 {
        queue
            .push(Planned::keyed(
                Job::AnalyzeDomain { domain_id: id },
                format!("fine-{id}"),
            ))
            .await
            .expect("push");
    }
    // One process, one job at a time: the worker that caught the panic runs the rest.
    let mut opts = options("panic", 1);
    opts.poll_concurrency = 0;
    let (stop, handle) = start(queue.clone(), runner.clone(), opts);
    wait_until("the other jobs to succeed", || {
        runner.successes.lock().expect("lock").len() == 4
    })
    .await;
    wait_until("the panicking job to use its attempts", || {
        runner.panicked.lock().expect("lock").len() == ATTEMPTS as usize
    })
    .await;
    let queue_settled = || async {
        let c = queue.counts().await.expect("counts");
        c.failed == 1 && c.pending + c.running == 0
    };
    for _ in 0..100 {
        if queue_settled().await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A further attempt, if the queue wrongly made one, shows up within the retry pause.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop.send(());
    handle
        .await
        .expect("the worker ends normally after catching panics");

    let runs = runner.runs.lock().expect("lock").clone();
    assert_eq!(
        runs.get(&1),
        Some(&ATTEMPTS),
        "retried until attempts ran out"
    );
    for id in 2..=5 {
        assert_eq!(
            runner.successes.lock().expect("lock").get(&id),
            Some(&1),
            "job {id} ran to completion"
        );
    }
    let panicked = runner.panicked.lock().expect("lock").clone();
    assert_eq!(panicked.len(), ATTEMPTS as usize);
    for (job, message) in &panicked {
        assert_eq!(job, &Job::AnalyzeDomain { domain_id: 1 });
        assert_eq!(message, "index out of bounds in job 1");
    }
    let counts = queue.counts().await.expect("counts");
    assert_eq!(counts.done, 4, "{counts:?}");
    assert_eq!(
        counts.failed, 1,
        "the panicking job ends failed: {counts:?}"
    );
    assert_eq!(counts.pending + counts.running, 0, "{counts:?}");
}

/// A scheduler tick whose planning panics enqueues nothing; the next ticks plan as usual.
async fn a_panicking_plan_skips_one_tick(engine: db::Engine) {
    let db = db::TestDb::new(engine, "jobs_plan_panic").await;
    let queue = Queue::open(db.store.connection()).await.expect("queue");
    let runner = Arc::new(Recorder {
        plan: vec![Planned::keyed(
            Job::AnalyzeDomain { domain_id: 4 },
            "analyze:4:2026-11-30",
        )],
        plan_panics: Mutex::new(2),
        ..Recorder::default()
    });
    let mut opts = options("plan-panic", 1);
    opts.scheduler_cron = Some("* * * * * *".to_owned());
    let (stop, handle) = start(queue.clone(), runner.clone(), opts);
    wait_until("the planned job to run", || {
        runner.successes.lock().expect("lock").get(&4) == Some(&1)
    })
    .await;
    let _ = stop.send(());
    handle.await.expect("scheduler ends normally");
    assert!(*runner.plans.lock().expect("lock") >= 3);
    assert_eq!(
        runner.plans_panicked.lock().expect("lock").clone(),
        vec!["planning blew up".to_owned(); 2]
    );
}

/// Two processes campaign for the scheduler: one leads; when it stops, the other takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_scheduler_leads_on_postgres_and_another_takes_over() {
    use sealwatch_jobs::Leadership;
    let db = db::TestDb::new(db::Engine::Postgres, "jobs_leader").await;
    let other = second_connection(&db.url).await;
    let (stop_a, rx_a) = tokio::sync::watch::channel(false);
    let (stop_b, rx_b) = tokio::sync::watch::channel(false);
    let retry = Duration::from_millis(200);
    let a = Leadership::campaign(db.store.connection(), retry, rx_a);
    let b = Leadership::campaign(other.connection(), retry, rx_b);
    wait_until("a leader", || a.is_leader() || b.is_leader()).await;
    // Stays exactly one for a while.
    for _ in 0..10 {
        assert!(a.is_leader() ^ b.is_leader(), "exactly one leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (leader_stop, leader, follower) = if a.is_leader() {
        (stop_a, a, b)
    } else {
        (stop_b, b, a)
    };
    let _ = leader_stop.send(true);
    wait_until("the other process to take over", || follower.is_leader()).await;
    assert!(!leader.is_leader());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_the_only_process_always_leads() {
    let db = db::TestDb::new(db::Engine::Sqlite, "jobs_leader_sqlite").await;
    let (_stop, rx) = tokio::sync::watch::channel(false);
    let l =
        sealwatch_jobs::Leadership::campaign(db.store.connection(), Duration::from_millis(100), rx);
    assert!(l.is_leader());
}

on_both_engines!(
    each_job_runs_once_across_two_processes,
    idempotency_keys_keep_duplicates_out,
    retryable_failures_retry_and_fatal_ones_stop,
    scheduler_enqueues_planned_jobs_once_per_key,
    shutdown_lets_in_flight_jobs_finish,
    a_panicking_job_fails_and_the_lane_keeps_running,
    a_panicking_plan_skips_one_tick,
);
