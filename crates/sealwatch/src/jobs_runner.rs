//! What each background job does, and what the scheduler plans at each tick: the glue
//! between the job queue (`sealwatch-jobs`) and the crates that do the work.
//!
//! Every job is idempotent in the data: a poll takes the mailbox lease and resumes from the
//! stored UID, an analysis upserts anomalies, a digest is one row per tenant and week.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sealwatch_ingest::imap::Poller;
use sealwatch_jobs::{Job, JobError, Planned, Queue, Runner};
use sealwatch_store::{Store, StoreError};
use tracing::{info, warn};

use crate::config::Config;

/// The sealwatch job runner.
pub struct SealwatchRunner {
    store: Store,
    config: Config,
    poller: Poller,
    queue: Queue,
    metrics: Arc<sealwatch_api::Metrics>,
    /// The digest relay, or why it could not be set up (digest jobs then fail visibly).
    mailer: Result<sealwatch_digest::Mailer, String>,
    digest: sealwatch_digest::DigestConfig,
    /// DNS of the analysis (`analysis.reverse_dns`, `analysis.resolve_mx`).
    rdns: Option<Arc<sealwatch_health::ReverseDns>>,
    /// The domain health checker, or why it could not be set up.
    checker: Result<sealwatch_health::HealthChecker, String>,
    /// Identifies this process in mailbox leases.
    owner: String,
    /// Periods already planned by this scheduler (job family → period key), so a tick
    /// only plans what is new; the queue's idempotency keys catch the rest.
    planned: Mutex<BTreeMap<&'static str, String>>,
}

impl std::fmt::Debug for SealwatchRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealwatchRunner")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

fn retry(e: impl std::fmt::Display) -> JobError {
    JobError::Retry(format!("{e:#}"))
}

fn store_err(e: StoreError) -> JobError {
    match e {
        StoreError::NotFound(what) => JobError::Fatal(format!("{what} not found")),
        other => JobError::Retry(other.to_string()),
    }
}

impl SealwatchRunner {
    pub fn new(
        store: Store,
        config: Config,
        poller: Poller,
        queue: Queue,
        owner: String,
        metrics: Arc<sealwatch_api::Metrics>,
    ) -> anyhow::Result<Self> {
        let pool = u32::try_from(config.jobs.concurrency.max(1)).unwrap_or(4);
        let mailer = crate::digest_cmd::mailer(&config, pool).map_err(|e| format!("{e:#}"));
        if let Err(e) = &mailer {
            warn!(error = %e, "the SMTP relay is not usable; digests will not be sent until it is");
        }
        let digest = crate::digest_cmd::digest_config(&config, mailer.as_ref().ok());
        let checker =
            crate::health_job::checker_from_config(&config, &config.health.checker_args())
                .map_err(|e| format!("{e:#}"));
        if let Err(e) = &checker {
            warn!(error = %e, "the health checker is not usable; weekly checks will fail until it is");
        }
        let rdns = config
            .health
            .analysis_dns(&config.analysis, &config.outbound)?
            .map(Arc::new);
        Ok(SealwatchRunner {
            rdns,
            store,
            config,
            poller,
            queue,
            metrics,
            mailer,
            digest,
            checker,
            owner,
            planned: Mutex::new(BTreeMap::new()),
        })
    }

    /// `true` the first time this period is seen for this family.
    fn first_time(&self, family: &'static str, period: &str) -> bool {
        let mut planned = self
            .planned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if planned.get(family).map(String::as_str) == Some(period) {
            return false;
        }
        planned.insert(family, period.to_owned());
        true
    }

    async fn poll_mailbox(&self, mailbox_id: i64) -> Result<(), JobError> {
        let now = Utc::now();
        let lease = Duration::from_secs(self.config.poller.lease_secs.max(1));
        let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
        if !self
            .store
            .acquire_mailbox_lease(mailbox_id, &self.owner, now, until)
            .await
            .map_err(store_err)?
        {
            info!(
                mailbox_id,
                "mailbox is being polled by another process; skipped"
            );
            return Ok(());
        }
        let result = async {
            let mailbox = self
                .store
                .get_mailbox(mailbox_id)
                .await
                .map_err(store_err)?;
            if !mailbox.enabled {
                return Ok(None);
            }
            self.poller
                .poll_these(vec![mailbox])
                .await
                .map(Some)
                .map_err(retry)
        }
        .await;
        if let Err(e) = self
            .store
            .release_mailbox_lease(mailbox_id, &self.owner)
            .await
        {
            warn!(mailbox_id, error = %e, "could not release the mailbox lease; it expires on its own");
        }
        let Some(summary) = result? else {
            return Ok(());
        };
        for m in &summary.mailboxes {
            self.metrics.poll(m.status == "ok", m.outcome.stored);
        }
        if let Some(m) = summary.mailboxes.first() {
            info!(
                mailbox = %m.name,
                status = %m.status,
                fetched = m.fetched,
                summary = %m.outcome.summary_line(),
                "mailbox polled"
            );
        }
        // Fresh reports: analyse the domains they belong to now, not only tonight.
        let stamp = Utc::now().format("%Y-%m-%dT%H:%M:%S%.f").to_string();
        for domain_id in &summary.outcome.domains {
            let planned = Planned::keyed(
                Job::AnalyzeDomain {
                    domain_id: *domain_id,
                },
                format!("analyze:{domain_id}:after-poll:{mailbox_id}:{stamp}"),
            );
            if let Err(e) = self.queue.push(planned).await {
                warn!(domain_id, error = %e, "could not queue the analysis");
            }
        }
        Ok(())
    }

    async fn analyze_domain(&self, domain_id: i64) -> Result<(), JobError> {
        let Some(target) = self
            .store
            .analysis_target(domain_id)
            .await
            .map_err(store_err)?
        else {
            // Removed, or its tenant deactivated, since the job was queued.
            info!(domain_id, "domain is no longer analysed; skipped");
            return Ok(());
        };
        let today = crate::analyze_cmd::day_number(Utc::now().date_naive());
        let mut totals = crate::analyze_cmd::RunTotals::default();
        crate::analyze_cmd::analyze_domain(
            &self.store,
            &target,
            today,
            &self.config,
            self.rdns.as_deref(),
            &mut totals,
        )
        .await
        .map_err(retry)?;
        info!(
            domain = %target.domain,
            opened = totals.opened,
            resolved = totals.resolved,
            "domain analysed"
        );
        Ok(())
    }

    /// The nightly analysis of a batch of domains as of `day` (the day it was planned for,
    /// even when the queue runs it after midnight). Domains removed since are skipped; when
    /// some fail, the job is retried and analyses the whole batch again (idempotent).
    async fn analyze_domains(&self, domain_ids: &[i64], day: &str) -> Result<(), JobError> {
        let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .map_err(|e| JobError::Fatal(format!("day {day:?}: {e}")))?;
        let targets = self
            .store
            .analysis_targets_by_id(domain_ids)
            .await
            .map_err(store_err)?;
        let (totals, outcomes) = crate::analyze_cmd::analyze_many(
            &self.store,
            &self.config,
            self.rdns.clone(),
            targets,
            crate::analyze_cmd::day_number(date),
        )
        .await;
        let failed: Vec<String> = outcomes
            .iter()
            .filter_map(|o| {
                let e = o.result.as_ref().err()?;
                warn!(domain = %o.domain, error = %format!("{e:#}"), "analysis failed");
                Some(o.domain.clone())
            })
            .collect();
        info!(
            domains = totals.domains,
            skipped = domain_ids.len().saturating_sub(outcomes.len()),
            opened = totals.opened,
            resolved = totals.resolved,
            failed = failed.len(),
            "nightly batch analysed"
        );
        if failed.is_empty() {
            Ok(())
        } else {
            Err(JobError::Retry(format!(
                "{} of {} domains failed: {}",
                failed.len(),
                outcomes.len(),
                failed.join(", ")
            )))
        }
    }

    /// Builds (once) and sends (once) a tenant's digest for a week. A failed send is
    /// recorded on the digest row with its next attempt time; the scheduler queues the
    /// retry when it is due.
    async fn deliver_digest(&self, tenant_id: i64, week: &str) -> Result<(), JobError> {
        use sealwatch_digest::SendOutcome;
        let week = sealwatch_digest::IsoWeek::parse(week)
            .map_err(|e| JobError::Fatal(format!("bad week {week:?}: {e}")))?;
        let mailer = self
            .mailer
            .as_ref()
            .map_err(|e| JobError::Retry(e.clone()))?;
        let outcome = sealwatch_digest::deliver(
            &self.store,
            mailer,
            &self.digest,
            tenant_id,
            week,
            &self.owner,
            Utc::now(),
        )
        .await
        .map_err(|e| match e {
            sealwatch_digest::DigestError::UnknownTenant(_) => JobError::Fatal(e.to_string()),
            other => retry(other),
        })?;
        match &outcome {
            SendOutcome::Sent {
                message_id,
                attempts,
            } => {
                info!(tenant_id, week = %week, %message_id, attempts, "digest sent");
            }
            SendOutcome::Retrying {
                error,
                next_attempt_at,
                ..
            } => {
                warn!(tenant_id, week = %week, %error, %next_attempt_at, "digest send failed; will retry");
            }
            SendOutcome::Failed { error, attempts } => {
                warn!(tenant_id, week = %week, %error, attempts, "digest send gave up");
            }
            other => {
                info!(tenant_id, week = %week, outcome = ?other, "digest not sent by this job")
            }
        }
        Ok(())
    }

    /// Digests whose send time came (one job per tenant and week), and retries that are due.
    async fn plan_digests(
        &self,
        now: DateTime<Utc>,
        out: &mut Vec<Planned>,
    ) -> Result<(), JobError> {
        let minute = now.format("%Y-%m-%dT%H:%M").to_string();
        if !self.first_time("digest", &minute) {
            return Ok(());
        }
        let due = sealwatch_digest::due_digests(&self.store, now)
            .await
            .map_err(retry)?;
        for (tenant_id, week) in due {
            out.push(Planned::keyed(
                Job::BuildDigest {
                    tenant_id,
                    week: week.to_string(),
                },
                format!("digest:{tenant_id}:{week}"),
            ));
        }
        let retries = sealwatch_digest::retry_due(&self.store, now)
            .await
            .map_err(retry)?;
        for (tenant_id, week) in retries {
            out.push(Planned::keyed(
                Job::SendDigest {
                    tenant_id,
                    week: week.to_string(),
                },
                format!("digest-retry:{tenant_id}:{week}:{minute}"),
            ));
        }
        Ok(())
    }

    /// Runs the health check of one domain, stores it, and opens or resolves the MTA-STS
    /// anomaly.
    async fn check_domain(&self, domain_id: i64) -> Result<(), JobError> {
        let checker = self
            .checker
            .as_ref()
            .map_err(|e| JobError::Retry(e.clone()))?;
        match crate::health_job::check_and_store(&self.store, checker, domain_id, Utc::now()).await
        {
            Ok(outcome) => {
                info!(
                    domain_id,
                    score = outcome.score,
                    grade = %outcome.grade,
                    changes = outcome.changes.len(),
                    "domain health checked"
                );
                Ok(())
            }
            Err(e) => match e.downcast_ref::<StoreError>() {
                Some(StoreError::NotFound(_)) => {
                    info!(domain_id, "domain no longer exists; health check skipped");
                    Ok(())
                }
                _ => Err(retry(e)),
            },
        }
    }

    /// The weekly health check of every domain (ISO week, UTC).
    async fn plan_health(
        &self,
        now: DateTime<Utc>,
        out: &mut Vec<Planned>,
    ) -> Result<(), JobError> {
        use chrono::Datelike as _;
        let w = now.iso_week();
        let week = format!("{}-W{:02}", w.year(), w.week());
        if !self.first_time("health", &week) {
            return Ok(());
        }
        for t in self.store.analysis_targets(None).await.map_err(store_err)? {
            out.push(Planned::keyed(
                Job::CheckDomain {
                    domain_id: t.domain_id,
                },
                format!("check:{}:{week}", t.domain_id),
            ));
        }
        Ok(())
    }

    async fn retention(&self) -> Result<(), JobError> {
        let now = Utc::now();
        let purged = self
            .store
            .purge_expired(self.config.retention.store(), now)
            .await
            .map_err(store_err)?;
        let jobs = self
            .queue
            .purge_finished(
                now - chrono::Duration::days(i64::from(self.config.retention.jobs_days.max(1))),
            )
            .await
            .map_err(retry)?;
        info!(
            raw_messages = purged.raw_messages,
            dmarc_reports = purged.dmarc_reports,
            tls_reports = purged.tls_reports,
            failure_reports = purged.failure_reports,
            finished_jobs = jobs,
            "retention purge done"
        );
        Ok(())
    }

    /// The daily retention purge.
    fn plan_retention(&self, now: DateTime<Utc>, out: &mut Vec<Planned>) {
        let day = now.date_naive().to_string();
        if self.first_time("retention", &day) {
            out.push(Planned::keyed(Job::Retention, format!("retention:{day}")));
        }
    }

    /// Polls of every enabled mailbox, one per poll interval.
    async fn plan_polls(&self, now: DateTime<Utc>, out: &mut Vec<Planned>) -> Result<(), JobError> {
        let interval = i64::try_from(self.config.poller.interval_secs.max(1)).unwrap_or(300);
        let slot = now.timestamp().div_euclid(interval);
        if !self.first_time("poll", &slot.to_string()) {
            return Ok(());
        }
        for m in self.store.list_mailboxes().await.map_err(store_err)? {
            if m.enabled {
                out.push(Planned::keyed(
                    Job::PollMailbox { mailbox_id: m.id },
                    format!("poll:{}:{slot}", m.id),
                ));
            }
        }
        Ok(())
    }

    /// The nightly analysis of every domain (silences and quiet periods are judged even
    /// without new mail), once per UTC day.
    async fn plan_nightly(
        &self,
        now: DateTime<Utc>,
        out: &mut Vec<Planned>,
    ) -> Result<(), JobError> {
        let day = now.date_naive().to_string();
        if !self.first_time("nightly", &day) {
            return Ok(());
        }
        let targets = self.store.analysis_targets(None).await.map_err(store_err)?;
        out.extend(nightly_jobs(
            targets.iter().map(|t| t.domain_id).collect(),
            &day,
        ));
        Ok(())
    }
}

#[async_trait::async_trait]
impl Runner for SealwatchRunner {
    async fn run(&self, job: Job) -> Result<(), JobError> {
        let name = job.name();
        let result = self.run_job(job).await;
        self.metrics.job(
            name,
            match &result {
                Ok(()) => "ok",
                Err(JobError::Retry(_)) => "retry",
                Err(JobError::Fatal(_)) => "failed",
            },
        );
        result
    }

    fn job_panicked(&self, job: &Job, _message: &str) {
        self.metrics.job(job.name(), "panic");
    }

    async fn plan(&self, now: DateTime<Utc>) -> Result<Vec<Planned>, JobError> {
        let mut out = Vec::new();
        self.plan_polls(now, &mut out).await?;
        self.plan_nightly(now, &mut out).await?;
        self.plan_digests(now, &mut out).await?;
        self.plan_retention(now, &mut out);
        self.plan_health(now, &mut out).await?;
        Ok(out)
    }
}

impl SealwatchRunner {
    async fn run_job(&self, job: Job) -> Result<(), JobError> {
        match job {
            Job::PollMailbox { mailbox_id } => self.poll_mailbox(mailbox_id).await,
            Job::AnalyzeDomain { domain_id } => self.analyze_domain(domain_id).await,
            Job::AnalyzeDomains { domain_ids, day } => {
                self.analyze_domains(&domain_ids, &day).await
            }
            Job::BuildDigest { tenant_id, week } | Job::SendDigest { tenant_id, week } => {
                self.deliver_digest(tenant_id, &week).await
            }
            Job::Retention => self.retention().await,
            Job::CheckDomain { domain_id } => self.check_domain(domain_id).await,
        }
    }
}

/// Domains per nightly analysis job: few enough jobs that the queue costs nothing next to
/// the analysis, enough that several workers share the pass.
pub const NIGHTLY_BATCH: usize = 100;

/// The nightly analysis of `domain_ids` as of `day` (`YYYY-MM-DD`): one job per
/// [`NIGHTLY_BATCH`] domains, keyed by the day and the batch's domains.
pub fn nightly_jobs(mut domain_ids: Vec<i64>, day: &str) -> Vec<Planned> {
    domain_ids.sort_unstable();
    domain_ids
        .chunks(NIGHTLY_BATCH)
        .map(|batch| {
            let key = format!(
                "analyze:{day}:{}-{}",
                batch.first().copied().unwrap_or_default(),
                batch.last().copied().unwrap_or_default()
            );
            Planned::keyed(
                Job::AnalyzeDomains {
                    domain_ids: batch.to_vec(),
                    day: day.to_owned(),
                },
                key,
            )
        })
        .collect()
}

/// A name for this process in leases and worker names: host and pid.
pub fn process_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "sealwatch".to_owned());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nightly_pass_is_batched_with_one_key_per_batch() {
        let ids: Vec<i64> = (1..=250).rev().collect();
        let jobs = nightly_jobs(ids, "2026-11-30");
        assert_eq!(jobs.len(), 3);
        let mut all = Vec::new();
        for (i, p) in jobs.iter().enumerate() {
            let Job::AnalyzeDomains { domain_ids, day } = &p.job else {
                panic!("unexpected {:?}", p.job);
            };
            assert_eq!(day, "2026-11-30");
            assert_eq!(domain_ids.len(), if i < 2 { NIGHTLY_BATCH } else { 50 });
            let (first, last) = (domain_ids[0], domain_ids[domain_ids.len() - 1]);
            assert_eq!(
                p.key.as_deref(),
                Some(format!("analyze:2026-11-30:{first}-{last}").as_str())
            );
            all.extend_from_slice(domain_ids);
        }
        // Every domain once, in order.
        assert_eq!(all, (1..=250).collect::<Vec<i64>>());
        assert!(nightly_jobs(Vec::new(), "2026-11-30").is_empty());
    }
}
