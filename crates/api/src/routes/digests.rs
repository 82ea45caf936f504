//! A tenant's weekly digests: the ones built and sent, and a preview of any week.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use sealwatch_digest::{IsoWeek, SetupHints};
use sealwatch_store::DigestSummary;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Need, Principal};
use crate::error::{ApiError, Problem};
use crate::page::{PageQuery, next, page_of};

/// A digest of one tenant and ISO week.
#[derive(Debug, Serialize, ToSchema)]
pub struct Digest {
    pub id: i64,
    pub tenant_id: i64,
    /// e.g. `2026-W45`.
    pub iso_week: String,
    /// `pending`, `built`, `sending`, `sent` or `failed`.
    pub status: String,
    pub subject: Option<String>,
    pub recipients: Vec<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub built_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl From<DigestSummary> for Digest {
    fn from(d: DigestSummary) -> Self {
        Digest {
            id: d.id,
            tenant_id: d.tenant_id,
            iso_week: d.iso_week,
            status: d.status,
            subject: d.subject,
            recipients: d.recipients,
            attempts: d.attempts,
            last_error: d.last_error,
            built_at: d.built_at,
            sent_at: d.sent_at,
        }
    }
}

page_of!(DigestPage, Digest);

/// A tenant's digests, newest first.
#[utoipa::path(
    tag = "digests",
    params(("tenant_id" = i64, Path, description = "tenant id"), PageQuery),
    responses(
        (status = 200, body = DigestPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/tenants/{tenant_id}/digests")]
pub async fn list_digests(
    p: Principal,
    state: web::Data<AppState>,
    tenant_id: web::Path<i64>,
    q: web::Query<PageQuery>,
) -> Result<web::Json<DigestPage>, ApiError> {
    let scope = p.require(Need::Read)?;
    let limit = q.limit()?;
    let rows = state
        .store
        .digest_page(scope, *tenant_id, q.after()?, limit)
        .await?;
    let next_cursor = next(&rows, limit, |d| d.id);
    Ok(web::Json(DigestPage {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// A digest queued to be sent again.
#[derive(Debug, Serialize, ToSchema)]
pub struct Resend {
    pub iso_week: String,
    /// The digest's status now: `built` (the next scheduler tick sends it), `pending` (not
    /// built yet: built and sent on the next tick), or `sending` (already on its way).
    pub status: String,
    /// Who it goes to: the tenant's current recipients.
    pub recipients: Vec<String>,
}

/// Send a week's digest again, to the tenant's current recipients (for example after a
/// recipient change or a lost message). The scheduler sends it within a minute; the
/// digest's `attempts`, `last_error` and `sent_at` show how it went.
#[utoipa::path(
    tag = "digests",
    params(
        ("tenant_id" = i64, Path, description = "tenant id"),
        ("week" = String, Path, description = "ISO week such as 2026-W45"),
    ),
    responses(
        (status = 202, body = Resend),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/tenants/{tenant_id}/digests/{week}/resend")]
pub async fn resend_digest(
    p: Principal,
    state: web::Data<AppState>,
    path: web::Path<(i64, String)>,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require(Need::Admin)?;
    let (tenant_id, week) = path.into_inner();
    let week = IsoWeek::parse(&week).map_err(|e| ApiError::field("week", e.to_string()))?;
    // Scoped lookup first: another tenant's id is 404 like a missing one.
    state.store.tenant_get(scope, tenant_id).await?;
    let tenant = state
        .store
        .digest_tenant(tenant_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("tenant {tenant_id}")))?;
    let before = state.store.digest_get(tenant_id, &week.to_string()).await?;
    let row = state
        .store
        .digest_queue_resend(tenant_id, &week.to_string(), &tenant.recipients, Utc::now())
        .await?;
    let out = Resend {
        iso_week: row.iso_week.clone(),
        status: row.status.as_str().to_owned(),
        recipients: row.recipients.clone(),
    };
    crate::routes::tenants::audit(
        &state,
        &p,
        Some(tenant_id),
        "resend",
        "digest",
        row.id,
        (
            before.map(|b| serde_json::json!({"status": b.status.as_str(), "sent_at": b.sent_at})),
            serde_json::to_value(&out).ok(),
        ),
    )
    .await?;
    Ok(HttpResponse::Accepted().json(out))
}

/// Which week to preview and how.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewQuery {
    /// ISO week such as `2026-W45` (default: last week).
    pub week: Option<String>,
    /// `json` (subject, text and HTML; default), `text` or `html`.
    pub format: Option<String>,
}

/// A rendered digest.
#[derive(Debug, Serialize, ToSchema)]
pub struct DigestPreview {
    pub iso_week: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Render a week's digest for a tenant now, without sending or storing it.
#[utoipa::path(
    tag = "digests",
    params(("tenant_id" = i64, Path, description = "tenant id"), PreviewQuery),
    responses(
        (status = 200, body = DigestPreview, description = "as JSON, or text/plain or text/html with `format`"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/tenants/{tenant_id}/digests/preview")]
pub async fn preview_digest(
    p: Principal,
    state: web::Data<AppState>,
    tenant_id: web::Path<i64>,
    q: web::Query<PreviewQuery>,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require(Need::Read)?;
    state.store.tenant_get(scope, *tenant_id).await?;
    let week = match &q.week {
        Some(w) => IsoWeek::parse(w).map_err(|e| ApiError::field("week", e.to_string()))?,
        None => IsoWeek::containing((Utc::now() - chrono::Duration::days(7)).date_naive()),
    };
    let format = q.format.as_deref().unwrap_or("json");
    if !["json", "text", "html"].contains(&format) {
        return Err(ApiError::field(
            "format",
            format!("{format:?} is not one of json, text, html"),
        ));
    }
    let setup = SetupHints {
        dmarc_rua: state.config.dmarc_rua.clone(),
        tlsrpt_rua: state.config.tlsrpt_rua.clone(),
    };
    let data = sealwatch_digest::gather(&state.store, &setup, None, *tenant_id, week)
        .await
        .map_err(|e| match e {
            sealwatch_digest::DigestError::UnknownTenant(t) => {
                ApiError::NotFound(format!("tenant {t}"))
            }
            other => ApiError::Internal(other.to_string()),
        })?;
    let composed =
        sealwatch_digest::compose(&data).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(match format {
        "text" => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(composed.text),
        "html" => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(composed.html),
        _ => HttpResponse::Ok().json(DigestPreview {
            iso_week: week.to_string(),
            subject: composed.subject,
            text: composed.text,
            html: composed.html,
        }),
    })
}
