//! A domain's health check through the API: the stored runs with what changed since the
//! previous one, and an on-demand run (queued as a job for the workers).

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Need, Principal};
use crate::error::{ApiError, Problem};

/// One stored run, in short.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthRunSummary {
    pub id: i64,
    /// 0–100.
    pub score: i32,
    /// `A` … `F`.
    pub grade: String,
    pub checked_at: DateTime<Utc>,
}

/// A domain's health check: the latest run in full, what changed since the run before it,
/// and the recent runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct DomainHealth {
    pub domain_id: i64,
    pub domain: String,
    /// The latest run's report (`sealwatch check --json` shape); null before the first run.
    #[schema(value_type = Object)]
    pub latest: Option<serde_json::Value>,
    /// What changed since the run before, one plain-English sentence each.
    pub changes: Vec<String>,
    /// The same changes as data (`change`: `record-appeared`, `record-vanished`,
    /// `record-changed`, `problem-appeared`, `problem-resolved`, `score-changed`, …).
    #[schema(value_type = Vec<Object>)]
    pub change_details: Vec<serde_json::Value>,
    /// The last ten runs, newest first.
    pub history: Vec<HealthRunSummary>,
}

/// The stored health-check runs of a domain and what changed since the previous run.
#[utoipa::path(
    tag = "domains",
    params(("domain_id" = i64, Path, description = "domain id")),
    responses(
        (status = 200, body = DomainHealth),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/domains/{domain_id}/health")]
pub async fn get_health(
    p: Principal,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<web::Json<DomainHealth>, ApiError> {
    let scope = p.require(Need::Read)?;
    let domain = state.store.domain_get(scope, *id).await?;
    let runs = state.store.recent_health_checks(domain.id, 10).await?;
    let read = |s: &str| serde_json::from_str::<sealwatch_health::HealthReport>(s).ok();
    let changes = match (runs.first(), runs.get(1)) {
        (Some(now), Some(before)) => match (read(&before.report), read(&now.report)) {
            (Some(b), Some(a)) => sealwatch_health::diff(&b, &a),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    Ok(web::Json(DomainHealth {
        domain_id: domain.id,
        domain: domain.domain.clone(),
        latest: runs
            .first()
            .and_then(|r| serde_json::from_str(&r.report).ok()),
        changes: changes.iter().map(|c| c.describe()).collect(),
        change_details: changes
            .iter()
            .filter_map(|c| serde_json::to_value(c).ok())
            .collect(),
        history: runs
            .iter()
            .map(|r| HealthRunSummary {
                id: r.id,
                score: r.score,
                grade: r.grade.clone(),
                checked_at: r.checked_at,
            })
            .collect(),
    }))
}

/// A health check queued to run.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthQueued {
    pub domain_id: i64,
    /// `queued`, or `already-queued` when the same request came within the minute.
    pub status: String,
}

/// Run the domain's health check now: queued for the workers, which store the run (and open
/// or resolve the MTA-STS anomaly); read it back with `GET …/health`.
#[utoipa::path(
    tag = "domains",
    params(("domain_id" = i64, Path, description = "domain id")),
    responses(
        (status = 202, body = HealthQueued),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/domains/{domain_id}/health")]
pub async fn run_health(
    p: Principal,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require(Need::Review)?;
    let domain = state.store.domain_get(scope, *id).await?;
    let queue = state
        .queue
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("the job queue is not open in this process".into()))?;
    let minute = Utc::now().format("%Y-%m-%dT%H:%M");
    let pushed = queue
        .push(sealwatch_jobs::Planned::keyed(
            sealwatch_jobs::Job::CheckDomain {
                domain_id: domain.id,
            },
            format!("check:{}:on-demand:{minute}", domain.id),
        ))
        .await
        .map_err(|e| ApiError::Unavailable(format!("job queue: {e}")))?;
    let status = match pushed {
        sealwatch_jobs::Pushed::Queued => "queued",
        sealwatch_jobs::Pushed::Duplicate => "already-queued",
    };
    crate::routes::tenants::audit(
        &state,
        &p,
        Some(domain.tenant_id),
        "health-check",
        "domain",
        domain.id,
        (None, Some(serde_json::json!({"status": status}))),
    )
    .await?;
    Ok(HttpResponse::Accepted().json(HealthQueued {
        domain_id: domain.id,
        status: status.to_owned(),
    }))
}
