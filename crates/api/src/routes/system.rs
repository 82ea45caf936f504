//! Liveness, readiness, metrics, TLS reports posted over HTTPS, quarantine, tokens and the
//! audit log.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use sealwatch_ingest::Router;
use sealwatch_model::Report;
use sealwatch_store::{ApiToken, AuditRecord, Item, MessageSource, QuarantineRow, Role};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::tenants::audit;
use crate::AppState;
use crate::auth::{Need, Principal, issue_token};
use crate::error::{ApiError, FieldError, Problem};
use crate::page::{PageQuery, next, page_of};

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    pub status: String,
}

/// The process is up.
#[utoipa::path(tag = "system", responses((status = 200, body = Status)))]
#[get("/healthz")]
pub async fn healthz() -> web::Json<Status> {
    web::Json(Status {
        status: "ok".into(),
    })
}

/// The database answers.
#[utoipa::path(
    tag = "system",
    responses(
        (status = 200, body = Status),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<web::Json<Status>, ApiError> {
    state
        .store
        .ping()
        .await
        .map_err(|e| ApiError::Unavailable(format!("database: {e}")))?;
    Ok(web::Json(Status {
        status: "ready".into(),
    }))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(tag = "system", responses((status = 200, content_type = "text/plain", body = String)))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let counts = state.store.metric_counts().await.ok();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(counts))
}

// ---- TLS-RPT over HTTPS ----------------------------------------------------------------

/// What happened to a posted report.
#[derive(Debug, Serialize, ToSchema)]
pub struct TlsRptAccepted {
    /// Reports stored now.
    pub stored: u64,
    /// Reports that were already stored (the same report posted again).
    pub duplicates: u64,
}

async fn accept_tlsrpt(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if content_type != "application/tlsrpt+gzip" && content_type != "application/tlsrpt+json" {
        return Err(ApiError::UnsupportedMediaType(
            "send application/tlsrpt+gzip or application/tlsrpt+json (RFC 8460)".into(),
        ));
    }
    if body.is_empty() {
        return Err(ApiError::field("body", "is empty"));
    }
    let router = Arc::new(Router::new(state.store.verified_routing_entries().await?));
    let parser = state.parser.clone();
    let origin = format!(
        "https:{}",
        req.peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default()
    );
    let bytes = body.to_vec();
    let prepared = web::block(move || {
        sealwatch_ingest::prepare(
            &parser,
            &router,
            bytes,
            Some("posted.json"),
            MessageSource::Http { origin },
            None,
        )
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut reports = 0;
    for item in &prepared.message.items {
        match item {
            Item::Report(r) if matches!(r.report, Report::TlsRpt(_)) => reports += 1,
            Item::Report(_) => {
                return Err(ApiError::field(
                    "body",
                    "is not a TLS report (RFC 8460 JSON)",
                ));
            }
            Item::Quarantine { reason, detail, .. } => {
                // Nothing is kept of a post that is not a report for a verified domain.
                return Err(if reason == "unrouted" {
                    ApiError::NotFound(format!("a verified domain for this report ({detail})"))
                } else {
                    ApiError::Validation(vec![FieldError {
                        field: "body".into(),
                        reason: format!("{reason}: {detail}"),
                    }])
                });
            }
        }
    }
    if reports == 0 {
        return Err(ApiError::field("body", "holds no TLS report"));
    }
    let outcome = state.store.write_messages(vec![prepared.message]).await?;
    state.metrics.tlsrpt(outcome.stored);
    let body = TlsRptAccepted {
        stored: outcome.stored,
        duplicates: outcome.duplicates,
    };
    Ok(if outcome.stored > 0 {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// Accept a TLS report posted by a sending MTA (RFC 8460 HTTPS reporting). Routed only to a
/// verified domain; the same report posted again is stored once.
#[utoipa::path(
    tag = "tlsrpt",
    request_body(content = Object, content_type = "application/tlsrpt+json",
        description = "an RFC 8460 report, or gzip of it as application/tlsrpt+gzip"),
    responses(
        (status = 201, body = TlsRptAccepted, description = "stored"),
        (status = 200, body = TlsRptAccepted, description = "already stored"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/tlsrpt")]
pub async fn post_tlsrpt(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    accept_tlsrpt(req, state, body).await
}

/// The same as `POST /api/v1/tlsrpt`, at the path of RFC 8460's example `rua=https:` URI.
#[utoipa::path(
    tag = "tlsrpt",
    request_body(content = Object, content_type = "application/tlsrpt+json"),
    responses(
        (status = 201, body = TlsRptAccepted),
        (status = 200, body = TlsRptAccepted),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/tlsrpt")]
pub async fn post_tlsrpt_rfc(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    accept_tlsrpt(req, state, body).await
}

// ---- quarantine ------------------------------------------------------------------------

/// A quarantined input.
#[derive(Debug, Serialize, ToSchema)]
pub struct Quarantined {
    pub id: i64,
    pub tenant_id: Option<i64>,
    /// Stable reason code (`unrouted`, `invalid-json`, `conflicting-duplicate`, …).
    pub reason: String,
    pub detail: String,
    pub part: Option<String>,
    pub retry_count: i32,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

impl From<QuarantineRow> for Quarantined {
    fn from(q: QuarantineRow) -> Self {
        Quarantined {
            id: q.id,
            tenant_id: q.tenant_id,
            reason: q.reason,
            detail: q.detail,
            part: q.part,
            retry_count: q.retry_count,
            created_at: q.created_at,
            resolved_at: q.resolved_at,
        }
    }
}

page_of!(QuarantinePage, Quarantined);

/// Filters of the quarantine list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QuarantineQuery {
    /// Only this reason code.
    pub reason: Option<String>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// Quarantined inputs with their reasons, newest first.
#[utoipa::path(
    tag = "quarantine",
    params(QuarantineQuery),
    responses(
        (status = 200, body = QuarantinePage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/quarantine")]
pub async fn list_quarantine(
    p: Principal,
    state: web::Data<AppState>,
    q: web::Query<QuarantineQuery>,
) -> Result<web::Json<QuarantinePage>, ApiError> {
    let scope = p.require(Need::Read)?;
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor.clone(),
    };
    let limit = page.limit()?;
    let rows = state
        .store
        .quarantine_page(scope, q.reason.as_deref(), page.after()?, limit)
        .await?;
    let next_cursor = next(&rows, limit, |r| r.id);
    Ok(web::Json(QuarantinePage {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// The raw bytes of a quarantined input.
#[utoipa::path(
    tag = "quarantine",
    params(("quarantine_id" = i64, Path, description = "quarantine entry id")),
    responses(
        (status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/quarantine/{quarantine_id}/raw")]
pub async fn raw_quarantine(
    p: Principal,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require(Need::Read)?;
    let (_, bytes) = state.store.quarantine_get(scope, *id).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"quarantine-{id}.raw\""),
        ))
        .body(bytes))
}

/// What retrying a quarantined input did.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetryResult {
    /// Reports stored by this retry.
    pub stored: u64,
    /// Reports that were already stored.
    pub duplicates: u64,
    /// Reasons the input is still quarantined (with counts); empty when it went through.
    pub still_quarantined: std::collections::BTreeMap<String, u64>,
}

/// Parse and route a quarantined input again (after a parser fix, or once its domain has
/// been onboarded). Its open entries are resolved; what still fails is quarantined again
/// with the retry count carried on. Safe to repeat.
#[utoipa::path(
    tag = "quarantine",
    params(("quarantine_id" = i64, Path, description = "quarantine entry id")),
    responses(
        (status = 200, body = RetryResult),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/quarantine/{quarantine_id}/retry")]
pub async fn retry_quarantine(
    p: Principal,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<web::Json<RetryResult>, ApiError> {
    let scope = p.require(Need::Admin)?;
    let (before, _) = state.store.quarantine_get(scope, *id).await?;
    let result = sealwatch_ingest::retry_quarantined(&state.store, &state.parser, scope, *id)
        .await
        .map_err(|e| match e {
            sealwatch_ingest::IngestError::Store(s) => ApiError::from(s),
            other => ApiError::Internal(other.to_string()),
        })?;
    let out = RetryResult {
        stored: result.outcome.stored,
        duplicates: result.outcome.duplicates,
        still_quarantined: result.outcome.quarantined.clone(),
    };
    audit(
        &state,
        &p,
        before.tenant_id,
        "retry",
        "quarantine",
        *id,
        (
            Some(serde_json::json!({"reason": before.reason, "retry_count": before.retry_count})),
            serde_json::to_value(&out).ok(),
        ),
    )
    .await?;
    Ok(web::Json(out))
}

// ---- tokens ----------------------------------------------------------------------------

/// An API token (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct Token {
    pub id: i64,
    pub name: String,
    /// The public part, `sw_<prefix>_…`.
    pub prefix: String,
    /// `admin`, `analyst` or `tenant`.
    pub role: String,
    pub tenant_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    /// Updated at most once a minute.
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiToken> for Token {
    fn from(t: ApiToken) -> Self {
        Token {
            id: t.id,
            name: t.name,
            prefix: t.prefix,
            role: t.role.as_str().to_owned(),
            tenant_id: t.tenant_id,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// A new token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenInput {
    /// What the token is for (1–200 characters).
    pub name: String,
    /// `admin`, `analyst` or `tenant`.
    pub role: String,
    /// Required for (and only for) `tenant` tokens.
    pub tenant_id: Option<i64>,
}

/// A created token with its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewToken {
    pub token: Token,
    /// `sw_<prefix>_<secret>`: send as `Authorization: Bearer …`. Not retrievable later.
    pub secret: String,
}

page_of!(TokenPage, Token);

/// Create a token (its secret is in this answer only).
#[utoipa::path(
    tag = "tokens",
    request_body = TokenInput,
    responses(
        (status = 201, body = NewToken),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/tokens")]
pub async fn create_token(
    p: Principal,
    state: web::Data<AppState>,
    body: web::Json<TokenInput>,
) -> Result<HttpResponse, ApiError> {
    p.require(Need::Admin)?;
    let mut errors = Vec::new();
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        errors.push(FieldError {
            field: "name".into(),
            reason: "must be 1–200 characters".into(),
        });
    }
    let role = body.role.parse::<Role>();
    match (&role, body.tenant_id) {
        (Err(e), _) => errors.push(FieldError {
            field: "role".into(),
            reason: e.to_string(),
        }),
        (Ok(Role::Tenant), None) => errors.push(FieldError {
            field: "tenant_id".into(),
            reason: "is required for a tenant token".into(),
        }),
        (Ok(Role::Admin | Role::Analyst), Some(_)) => errors.push(FieldError {
            field: "tenant_id".into(),
            reason: "only tenant tokens belong to a tenant".into(),
        }),
        _ => {}
    }
    let Ok(role) = role else {
        return Err(ApiError::Validation(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let (token, secret) = issue_token(&state.store, name, role, body.tenant_id).await?;
    let token: Token = token.into();
    audit(
        &state,
        &p,
        token.tenant_id,
        "create",
        "token",
        token.id,
        (None, serde_json::to_value(&token).ok()),
    )
    .await?;
    Ok(HttpResponse::Created().json(NewToken { token, secret }))
}

/// List tokens.
#[utoipa::path(
    tag = "tokens",
    params(PageQuery),
    responses(
        (status = 200, body = TokenPage),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/tokens")]
pub async fn list_tokens(
    p: Principal,
    state: web::Data<AppState>,
    q: web::Query<PageQuery>,
) -> Result<web::Json<TokenPage>, ApiError> {
    p.require(Need::Admin)?;
    let limit = q.limit()?;
    let rows = state.store.token_page(q.after()?, limit).await?;
    let next_cursor = next(&rows, limit, |t| t.id);
    Ok(web::Json(TokenPage {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// Revoke a token; it stops working at once on this server (within a minute on others).
#[utoipa::path(
    tag = "tokens",
    params(("token_id" = i64, Path, description = "token id")),
    responses(
        (status = 200, body = Token),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/tokens/{token_id}/revoke")]
pub async fn revoke_token(
    p: Principal,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<web::Json<Token>, ApiError> {
    p.require(Need::Admin)?;
    let (before, after) = state.store.revoke_token(*id).await?;
    state.auth.forget(*id);
    let (before, after): (Token, Token) = (before.into(), after.into());
    audit(
        &state,
        &p,
        after.tenant_id,
        "revoke",
        "token",
        after.id,
        (
            serde_json::to_value(&before).ok(),
            serde_json::to_value(&after).ok(),
        ),
    )
    .await?;
    Ok(web::Json(after))
}

// ---- audit -----------------------------------------------------------------------------

/// One recorded change.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditItem {
    pub id: i64,
    pub actor: String,
    pub actor_token_id: Option<i64>,
    pub tenant_id: Option<i64>,
    pub action: String,
    pub entity: String,
    pub entity_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

impl From<AuditRecord> for AuditItem {
    fn from(a: AuditRecord) -> Self {
        AuditItem {
            id: a.id,
            actor: a.actor,
            actor_token_id: a.actor_token_id,
            tenant_id: a.tenant_id,
            action: a.action,
            entity: a.entity,
            entity_id: a.entity_id,
            before: a.before,
            after: a.after,
            created_at: a.created_at,
        }
    }
}

page_of!(AuditPage, AuditItem);

/// Filters of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub tenant_id: Option<i64>,
    /// `tenant`, `domain`, `mailbox`, `anomaly`, `token`.
    pub entity: Option<String>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// The audit log, newest first (admin only).
#[utoipa::path(
    tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, body = AuditPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/audit")]
pub async fn list_audit(
    p: Principal,
    state: web::Data<AppState>,
    q: web::Query<AuditQuery>,
) -> Result<web::Json<AuditPage>, ApiError> {
    p.require(Need::Admin)?;
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor.clone(),
    };
    let limit = page.limit()?;
    let rows = state
        .store
        .audit_page(q.tenant_id, q.entity.as_deref(), page.after()?, limit)
        .await?;
    let next_cursor = next(&rows, limit, |a| a.id);
    Ok(web::Json(AuditPage {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}
