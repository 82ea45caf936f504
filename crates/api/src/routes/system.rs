//! Liveness, readiness, metrics, TLS reports posted over HTTPS, quarantine, tokens and the
//! audit log.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use sealwatch_model::{Report, ReportKind};
use sealwatch_store::{ApiToken, AuditRecord, Item, MessageSource, QuarantineRow, Role};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::tenants::audit;
use crate::AppState;
use crate::auth::{Need, Principal, issue_token};
use crate::error::{ApiError, FieldError, Problem};
use crate::intake::DomainKey;
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

/// Prometheus metrics (text exposition format). The database gauges are read at most once
/// per refresh interval (15 s by default), whatever the scrape rate.
#[utoipa::path(tag = "system", responses((status = 200, content_type = "text/plain", body = String)))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let counts = state
        .metrics
        .stored_counts(&state.store, state.config.metrics_refresh)
        .await;
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(counts))
}

// ---- TLS-RPT over HTTPS ----------------------------------------------------------------

/// The answer to every post that reads as a report: taken for processing. Whether it was
/// new, a copy, for which domain, or dropped is never told to the sender (a stranger must
/// not learn which domains are verified or what a victim's report says).
#[derive(Debug, Serialize, ToSchema)]
pub struct TlsRptAccepted {
    /// Always `accepted`.
    pub status: String,
}

/// Most distinct domains one post is counted against.
const MAX_DOMAIN_KEYS: usize = 16;

fn rate_limited(l: crate::intake::Limited) -> ApiError {
    ApiError::RateLimited {
        retry_after_secs: l.retry_after_secs,
    }
}

async fn accept_tlsrpt(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let client = crate::client_address(&req, &state.config);
    if let Some(ip) = client {
        state.intake.check_address(ip).map_err(rate_limited)?;
    }
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
    let router = state.intake.router(&state.store).await?;
    let parser = state.parser.clone();
    let origin = format!(
        "https:{}",
        client.map(|ip| ip.to_string()).unwrap_or_default()
    );
    let bytes = body.to_vec();
    let routes = router.clone();
    let prepared = web::block(move || {
        sealwatch_ingest::prepare(
            &parser,
            &routes,
            bytes,
            Some("posted.json"),
            MessageSource::Http { origin },
            None,
        )
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    // A body that does not read as a report is refused before anything about a domain is
    // known, so the refusal says nothing about any domain.
    let mut readable = 0usize;
    for item in &prepared.message.items {
        match item {
            Item::Report(_) => readable += 1,
            Item::Quarantine { reason, .. } if reason == "unrouted" => readable += 1,
            Item::Quarantine { reason, detail, .. } => {
                return Err(ApiError::Validation(vec![FieldError {
                    field: "body".into(),
                    reason: format!("is not an RFC 8460 TLS report ({reason}: {detail})"),
                }]));
            }
        }
    }
    if readable == 0 {
        return Err(ApiError::field("body", "holds no TLS report"));
    }
    // Decided by what the body is, routed or not, like everything before the limits.
    if let Some(kind) = prepared.kinds.iter().find(|k| **k != ReportKind::TlsRpt) {
        return Err(ApiError::field(
            "body",
            format!(
                "is a {} report; this endpoint takes TLS reports (RFC 8460) only",
                kind.as_str()
            ),
        ));
    }
    // Every claimed domain counts, verified or not, so a refusal reveals nothing either.
    let mut keys: Vec<DomainKey> = Vec::new();
    for name in &prepared.claimed {
        let key = match router.route(name, None) {
            Some(route) => DomainKey::Routed(route.domain_id),
            None => DomainKey::Claimed(name.as_str().to_owned()),
        };
        if !keys.contains(&key) {
            keys.push(key);
        }
        if keys.len() >= MAX_DOMAIN_KEYS {
            break;
        }
    }
    state.intake.check_domains(&keys).map_err(rate_limited)?;
    // Only TLS reports for verified domains are kept; nothing of anything else is stored.
    let mut message = prepared.message;
    let offered = message.items.len();
    message
        .items
        .retain(|i| matches!(i, Item::Report(r) if matches!(r.report, Report::TlsRpt(_))));
    let kept = message.items.len();
    let (stored, duplicates) = if kept > 0 {
        let outcome = state.store.write_messages(vec![message]).await?;
        (outcome.stored, outcome.duplicates)
    } else {
        (0, 0)
    };
    state.metrics.tlsrpt(stored);
    tracing::info!(
        client = ?client,
        reports = offered,
        routed = kept,
        stored,
        duplicates,
        "TLS report posted"
    );
    Ok(HttpResponse::Accepted().json(TlsRptAccepted {
        status: "accepted".into(),
    }))
}

/// Accept a TLS report posted by a sending MTA (RFC 8460 HTTPS reporting). Every readable
/// report gets the same answer; it is kept only when it is for a verified domain (the same
/// report posted again is stored once). Posts are rate-limited per client address and per
/// claimed domain.
#[utoipa::path(
    tag = "tlsrpt",
    request_body(content = Object, content_type = "application/tlsrpt+json",
        description = "an RFC 8460 report, or gzip of it as application/tlsrpt+gzip"),
    responses(
        (status = 202, body = TlsRptAccepted, description = "taken for processing"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
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
        (status = 202, body = TlsRptAccepted, description = "taken for processing"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
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
