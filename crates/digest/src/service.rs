//! The service a job runner calls: build and send each tenant's weekly digest exactly once,
//! through the `digests` row (see `sealwatch_store` module `digests` for the state machine).

use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt as _;
use sealwatch_store::{BuiltDigest, DigestStatus, DigestTenant, Store};
use tracing::{Instrument as _, info, info_span, warn};

use crate::data::SetupHints;
use crate::mailer::{Mailer, Outgoing};
use crate::{DigestError, IsoWeek, Schedule, compose, gather_tenant};

/// Settings of the digest service.
#[derive(Debug, Clone)]
pub struct DigestConfig {
    /// Where reports must be sent (for the no-data note).
    pub setup: SetupHints,
    /// Base of the unsubscribe link; `?tenant=ID` is appended.
    pub unsubscribe_url: Option<String>,
    /// Send attempts before a digest is marked `failed`.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles with every attempt.
    pub retry_backoff: Duration,
    /// How long a claim protects a send; a worker that dies loses it after this.
    pub lease: Duration,
    /// Domain part of generated `Message-ID`s.
    pub message_id_domain: String,
}

impl DigestConfig {
    /// The unsubscribe link of a tenant.
    pub fn unsubscribe_link(&self, tenant_id: i64) -> Option<String> {
        self.unsubscribe_url.as_ref().map(|base| {
            let sep = if base.contains('?') { '&' } else { '?' };
            format!("{base}{sep}tenant={tenant_id}")
        })
    }

    /// Delay before retry number `attempts` (1 = after the first failed attempt).
    pub fn backoff(&self, attempts: i32) -> Duration {
        let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(0);
        self.retry_backoff * 2i32.saturating_pow(exp)
    }
}

/// What [`build_digest`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildOutcome {
    /// This call rendered and stored it.
    Built,
    /// It was built before (or by a racing builder); the row's status.
    AlreadyBuilt(DigestStatus),
}

/// What [`send_digest`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// This call delivered it to the relay.
    Sent { message_id: String, attempts: i32 },
    /// It had been sent before.
    AlreadySent { sent_at: Option<DateTime<Utc>> },
    /// Another worker holds a live claim.
    InProgress {
        claimed_by: Option<String>,
        until: Option<DateTime<Utc>>,
    },
    /// A previous attempt failed; the next one is not due yet.
    NotDue {
        next_attempt_at: Option<DateTime<Utc>>,
    },
    /// Not built yet (call [`build_digest`] first).
    NotBuilt,
    /// This attempt failed; it will be retried at `next_attempt_at`.
    Retrying {
        error: String,
        attempts: i32,
        next_attempt_at: DateTime<Utc>,
    },
    /// Given up (retry budget spent, a permanent refusal, or no recipients).
    Failed { error: String, attempts: i32 },
}

/// Renders and stores the digest of `tenant_id` for `week` unless that was done before.
/// Idempotent; racing callers store one version.
pub async fn build_digest(
    store: &Store,
    config: &DigestConfig,
    tenant_id: i64,
    week: IsoWeek,
    now: DateTime<Utc>,
) -> Result<BuildOutcome, DigestError> {
    let span = info_span!("digest_build", tenant_id, week = %week);
    async move {
        let row = store
            .digest_ensure(tenant_id, &week.to_string(), now)
            .await?;
        if row.status != DigestStatus::Pending {
            return Ok(BuildOutcome::AlreadyBuilt(row.status));
        }
        let tenant = store
            .digest_tenant(tenant_id)
            .await?
            .ok_or(DigestError::UnknownTenant(tenant_id))?;
        build_row(store, config, &tenant, week, row.id, now).await
    }
    .instrument(span)
    .await
}

async fn build_row(
    store: &Store,
    config: &DigestConfig,
    tenant: &DigestTenant,
    week: IsoWeek,
    row_id: i64,
    now: DateTime<Utc>,
) -> Result<BuildOutcome, DigestError> {
    let data = gather_tenant(
        store,
        &config.setup,
        config.unsubscribe_link(tenant.id),
        tenant,
        week,
    )
    .await?;
    let composed = compose(&data)?;
    let built = BuiltDigest {
        subject: composed.subject,
        text_body: composed.text,
        html_body: composed.html,
        recipients: tenant.recipients.clone(),
        message_id: format!(
            "digest.{}.{}.{}@{}",
            tenant.id,
            week,
            now.timestamp(),
            config.message_id_domain
        ),
    };
    if store.digest_set_built(row_id, &built, now).await? {
        info!(recipients = built.recipients.len(), "digest built");
        Ok(BuildOutcome::Built)
    } else {
        Ok(BuildOutcome::AlreadyBuilt(DigestStatus::Built))
    }
}

/// Sends the built digest of `tenant_id` for `week` once: claims the row (with a lease of
/// `config.lease`), sends, and records the outcome. A failed attempt goes back to `built`
/// with `next_attempt_at` (exponential backoff) and `last_error`, or to `failed` when the
/// relay refused permanently or `max_attempts` is reached.
///
/// Exactly-once holds between workers and across restarts, with one window left: a worker
/// that dies after the relay accepted the message but before recording it lets the next
/// claimant send it again (with the same `Message-ID`, so clients can drop the copy).
pub async fn send_digest(
    store: &Store,
    mailer: &Mailer,
    config: &DigestConfig,
    tenant_id: i64,
    week: IsoWeek,
    worker_id: &str,
    now: DateTime<Utc>,
) -> Result<SendOutcome, DigestError> {
    let span = info_span!("digest_send", tenant_id, week = %week, worker = worker_id);
    send_inner(store, mailer, config, tenant_id, week, worker_id, now)
        .instrument(span)
        .await
}

async fn send_inner(
    store: &Store,
    mailer: &Mailer,
    config: &DigestConfig,
    tenant_id: i64,
    week: IsoWeek,
    worker_id: &str,
    now: DateTime<Utc>,
) -> Result<SendOutcome, DigestError> {
    let week_s = week.to_string();
    let Some(row) = store.digest_get(tenant_id, &week_s).await? else {
        return Ok(SendOutcome::NotBuilt);
    };
    if !store
        .digest_claim_send(row.id, worker_id, now, now + config.lease)
        .await?
    {
        let row = store.digest_get(tenant_id, &week_s).await?.unwrap_or(row);
        return Ok(match row.status {
            DigestStatus::Pending => SendOutcome::NotBuilt,
            DigestStatus::Sent => SendOutcome::AlreadySent {
                sent_at: row.sent_at,
            },
            DigestStatus::Sending => SendOutcome::InProgress {
                claimed_by: row.claimed_by,
                until: row.claimed_until,
            },
            DigestStatus::Built => SendOutcome::NotDue {
                next_attempt_at: row.next_attempt_at,
            },
            DigestStatus::Failed => SendOutcome::Failed {
                error: row.last_error.unwrap_or_default(),
                attempts: row.attempts,
            },
        });
    }
    // Ours now: read the content as claimed.
    let row = store
        .digest_get(tenant_id, &week_s)
        .await?
        .ok_or_else(|| DigestError::Config(format!("digest {tenant_id}/{week} vanished")))?;
    let message_id = row.message_id.clone().unwrap_or_default();
    let lease = config
        .lease
        .to_std()
        .unwrap_or(std::time::Duration::from_secs(300));
    let result = if row.recipients.is_empty() {
        Err(crate::mailer::SendError {
            permanent: true,
            message: "the tenant has no digest recipients".into(),
        })
    } else {
        let unsubscribe = config.unsubscribe_link(tenant_id);
        let outgoing = Outgoing {
            recipients: &row.recipients,
            subject: row.subject.as_deref().unwrap_or_default(),
            text: row.text_body.as_deref().unwrap_or_default(),
            html: row.html_body.as_deref().unwrap_or_default(),
            message_id: &message_id,
            unsubscribe_url: unsubscribe.as_deref(),
        };
        let send = mailer.send(&outgoing);
        // A send never outlives its lease: after that another worker may claim the row.
        match tokio::time::timeout(lease, send).await {
            Ok(r) => r,
            Err(_) => Err(crate::mailer::SendError {
                permanent: false,
                message: "SMTP: timed out within the claim lease".into(),
            }),
        }
    };
    match result {
        Ok(()) => {
            if !store.digest_mark_sent(row.id, worker_id, now).await? {
                warn!("digest sent but the claim was lost before it was recorded");
            }
            info!(attempts = row.attempts, "digest sent");
            Ok(SendOutcome::Sent {
                message_id,
                attempts: row.attempts,
            })
        }
        Err(e) => {
            let give_up = e.permanent
                || u32::try_from(row.attempts).unwrap_or(u32::MAX) >= config.max_attempts;
            if give_up {
                store
                    .digest_mark_failed(row.id, worker_id, &e.message, None, now)
                    .await?;
                warn!(error = %e.message, attempts = row.attempts, "digest failed for good");
                Ok(SendOutcome::Failed {
                    error: e.message,
                    attempts: row.attempts,
                })
            } else {
                let next = now + config.backoff(row.attempts);
                store
                    .digest_mark_failed(row.id, worker_id, &e.message, Some(next), now)
                    .await?;
                warn!(error = %e.message, attempts = row.attempts, next_attempt_at = %next, "digest send failed, will retry");
                Ok(SendOutcome::Retrying {
                    error: e.message,
                    attempts: row.attempts,
                    next_attempt_at: next,
                })
            }
        }
    }
}

/// [`build_digest`] then [`send_digest`].
pub async fn deliver(
    store: &Store,
    mailer: &Mailer,
    config: &DigestConfig,
    tenant_id: i64,
    week: IsoWeek,
    worker_id: &str,
    now: DateTime<Utc>,
) -> Result<SendOutcome, DigestError> {
    build_digest(store, config, tenant_id, week, now).await?;
    send_digest(store, mailer, config, tenant_id, week, worker_id, now).await
}

/// The `(tenant, week)` digests due at `now` and not yet sent or given up: for every active
/// tenant with recipients, the latest week whose send time (tenant's weekday and hour in its
/// zone, in the following week) has passed. Weeks that ended before the tenant existed are
/// skipped. An invalid schedule falls back to Tuesday 08:00 UTC.
pub async fn due_digests(
    store: &Store,
    now: DateTime<Utc>,
) -> Result<Vec<(i64, IsoWeek)>, DigestError> {
    let tenants = store.digest_tenants().await?;
    let mut due = Vec::new();
    for t in &tenants {
        if t.recipients.is_empty() {
            continue;
        }
        let schedule = Schedule::new(t.weekday, t.hour, &t.timezone).unwrap_or_else(|e| {
            warn!(tenant_id = t.id, error = %e, "invalid digest schedule, using Tuesday 08:00 UTC");
            Schedule::default_utc()
        });
        let week = schedule.due_week(now);
        if week.end() <= t.created_at {
            continue;
        }
        due.push((t.id, week));
    }
    let mut weeks: Vec<String> = due.iter().map(|(_, w)| w.to_string()).collect();
    weeks.sort();
    weeks.dedup();
    let done: std::collections::HashSet<(i64, String)> = store
        .digests_of_weeks(&weeks)
        .await?
        .into_iter()
        .filter(|r| matches!(r.status, DigestStatus::Sent | DigestStatus::Failed))
        .map(|r| (r.tenant_id, r.iso_week))
        .collect();
    due.retain(|(t, w)| !done.contains(&(*t, w.to_string())));
    Ok(due)
}

/// Digests with work left at `now`, any week: never built, a retry that is due, or a send
/// whose worker's lease expired (it died mid-send).
pub async fn retry_due(
    store: &Store,
    now: DateTime<Utc>,
) -> Result<Vec<(i64, IsoWeek)>, DigestError> {
    Ok(store
        .digests_unfinished(now)
        .await?
        .into_iter()
        .filter_map(|r| Some((r.tenant_id, IsoWeek::parse(&r.iso_week).ok()?)))
        .collect())
}

/// Counts of one [`run_due`] pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub sent: u64,
    pub already_sent: u64,
    pub retrying: u64,
    pub failed: u64,
    pub skipped: u64,
    pub errors: u64,
}

/// One scheduler pass: [`deliver`] everything [`due_digests`] and [`retry_due`] return,
/// `concurrency` at a time.
pub async fn run_due(
    store: &Store,
    mailer: &Mailer,
    config: &DigestConfig,
    worker_id: &str,
    now: DateTime<Utc>,
    concurrency: usize,
) -> Result<RunSummary, DigestError> {
    let mut work = due_digests(store, now).await?;
    work.extend(retry_due(store, now).await?);
    work.sort();
    work.dedup();
    deliver_all(store, mailer, config, &work, worker_id, now, concurrency).await
}

/// [`deliver`] for many `(tenant, week)` pairs, `concurrency` at a time.
pub async fn deliver_all(
    store: &Store,
    mailer: &Mailer,
    config: &DigestConfig,
    work: &[(i64, IsoWeek)],
    worker_id: &str,
    now: DateTime<Utc>,
    concurrency: usize,
) -> Result<RunSummary, DigestError> {
    let mut results = futures_util::stream::iter(work.iter().copied())
        .map(|(t, w)| deliver(store, mailer, config, t, w, worker_id, now))
        .buffer_unordered(concurrency.max(1));
    let mut s = RunSummary::default();
    while let Some(r) = results.next().await {
        match r {
            Ok(SendOutcome::Sent { .. }) => s.sent += 1,
            Ok(SendOutcome::AlreadySent { .. }) => s.already_sent += 1,
            Ok(SendOutcome::Retrying { .. }) => s.retrying += 1,
            Ok(SendOutcome::Failed { .. }) => s.failed += 1,
            Ok(_) => s.skipped += 1,
            Err(e) => {
                warn!(error = %e, "digest delivery failed");
                s.errors += 1;
            }
        }
    }
    Ok(s)
}
