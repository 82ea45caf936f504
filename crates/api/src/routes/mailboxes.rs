//! IMAP mailbox sources. The password source is write-only: a mailbox names the
//! environment variable that holds its password, and no answer ever contains it. Only
//! variables with the configured prefix may be named (the poller checks again at use).

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use sealwatch_ingest::imap::check_password_env;
use sealwatch_store::{AfterAction, MailboxPatch, MailboxRow, NewMailbox, TlsMode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::tenants::audit;
use crate::AppState;
use crate::auth::{Need, Principal};
use crate::error::{ApiError, FieldError, Problem};
use crate::page::{PageQuery, next, page_of};

/// A mailbox and its last poll.
#[derive(Debug, Serialize, ToSchema)]
pub struct Mailbox {
    pub id: i64,
    /// Owning tenant (a per-tenant mailbox); absent for a shared mailbox routed by content.
    pub tenant_id: Option<i64>,
    pub name: String,
    pub host: String,
    pub port: i32,
    /// `implicit`, `starttls` or `plain`.
    pub tls: String,
    pub username: String,
    /// Whether a password source is configured (the source itself is never shown).
    pub has_password: bool,
    pub folder: String,
    /// `move:FOLDER`, `seen` or `delete`.
    pub after: String,
    pub enabled: bool,
    pub last_poll_at: Option<DateTime<Utc>>,
    /// `ok`, `auth-failed`, `connect-failed`, `config-error`, `error`; absent before the first poll.
    pub last_status: Option<String>,
    pub last_error: Option<String>,
    pub consecutive_failures: i32,
    pub created_at: DateTime<Utc>,
}

impl From<MailboxRow> for Mailbox {
    fn from(m: MailboxRow) -> Self {
        Mailbox {
            id: m.id,
            tenant_id: m.tenant_id,
            name: m.name,
            host: m.host,
            port: m.port,
            tls: m.tls,
            username: m.username,
            has_password: m.has_password,
            folder: m.folder,
            after: m.after,
            enabled: m.enabled,
            last_poll_at: m.last_poll_at,
            last_status: m.last_status,
            last_error: m.last_error,
            consecutive_failures: m.consecutive_failures,
            created_at: m.created_at,
        }
    }
}

page_of!(MailboxPage, Mailbox);

/// A new mailbox, or changes to one (absent fields stay as they are).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailboxInput {
    /// Only when creating: the owning tenant (omit for a shared mailbox).
    pub tenant_id: Option<i64>,
    pub name: Option<String>,
    pub host: Option<String>,
    /// 1–65535.
    pub port: Option<i64>,
    /// `implicit`, `starttls` or `plain` (plain only for loopback hosts).
    pub tls: Option<String>,
    pub username: Option<String>,
    /// Write-only: the environment variable holding the password at poll time. It must
    /// start with the configured prefix (`poller.password_env_prefix`, default
    /// `SEALWATCH_MAILBOX_`): no other variable of the service is ever read as a password.
    pub password_env: Option<String>,
    pub folder: Option<String>,
    /// `move:FOLDER`, `seen` or `delete`.
    pub after: Option<String>,
    pub enabled: Option<bool>,
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl MailboxInput {
    fn parse(
        self,
        creating: bool,
        password_env_prefix: &str,
    ) -> Result<(Option<i64>, MailboxPatch), ApiError> {
        let mut errors = Vec::new();
        let mut bad = |field: &str, reason: String| {
            errors.push(FieldError {
                field: field.to_owned(),
                reason,
            })
        };
        if creating {
            for (field, value) in [
                ("host", &self.host),
                ("username", &self.username),
                ("password_env", &self.password_env),
                ("tls", &self.tls),
            ] {
                if value.is_none() {
                    bad(field, "is required".into());
                }
            }
            if self.port.is_none() {
                bad("port", "is required".into());
            }
        } else if self.tenant_id.is_some() {
            bad(
                "tenant_id",
                "cannot be changed; create another mailbox".into(),
            );
        }
        let port = match self.port {
            Some(p) if (1..=65535).contains(&p) => u16::try_from(p).ok(),
            Some(p) => {
                bad("port", format!("{p} is out of range 1–65535"));
                None
            }
            None => None,
        };
        let tls = match self.tls.as_deref().map(str::parse::<TlsMode>) {
            Some(Ok(t)) => Some(t),
            Some(Err(e)) => {
                bad("tls", e.to_string());
                None
            }
            None => None,
        };
        let after = match self.after.as_deref().map(str::parse::<AfterAction>) {
            Some(Ok(a)) => Some(a),
            Some(Err(e)) => {
                bad("after", e.to_string());
                None
            }
            None => None,
        };
        if let Some(h) = &self.host
            && (h.is_empty() || h.len() > 253 || h.chars().any(|c| c.is_whitespace() || c == '/'))
        {
            bad("host", format!("{h:?} is not a host name or address"));
        }
        if tls == Some(TlsMode::Plain)
            && let Some(h) = &self.host
            && !is_loopback(h)
        {
            bad(
                "tls",
                "plain (no TLS) is only allowed for loopback hosts".into(),
            );
        }
        if let Some(v) = &self.password_env
            && let Err(e) = check_password_env(v, password_env_prefix)
        {
            bad("password_env", e.to_string());
        }
        for (field, value) in [
            ("username", &self.username),
            ("folder", &self.folder),
            ("name", &self.name),
        ] {
            if let Some(v) = value
                && (v.is_empty() || v.len() > 500)
            {
                bad(field, "must be 1–500 characters".into());
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok((
            self.tenant_id,
            MailboxPatch {
                name: self.name,
                host: self.host,
                port,
                tls,
                username: self.username,
                password_env: self.password_env,
                folder: self.folder,
                after,
                enabled: self.enabled,
            },
        ))
    }
}

/// Add an IMAP mailbox.
#[utoipa::path(
    tag = "mailboxes",
    request_body = MailboxInput,
    responses(
        (status = 201, body = Mailbox),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/mailboxes")]
pub async fn create_mailbox(
    p: Principal,
    state: web::Data<AppState>,
    body: web::Json<MailboxInput>,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require(Need::Admin)?;
    let (tenant_id, patch) = body
        .into_inner()
        .parse(true, &state.config.password_env_prefix)?;
    if let Some(t) = tenant_id {
        state.store.tenant_get(scope, t).await?;
    }
    let missing = |f: &str| ApiError::field(f, "is required");
    let host = patch.host.ok_or_else(|| missing("host"))?;
    let username = patch.username.ok_or_else(|| missing("username"))?;
    let folder = patch.folder.unwrap_or_else(|| "INBOX".into());
    let m = state
        .store
        .add_mailbox(NewMailbox {
            tenant_id,
            name: patch
                .name
                .unwrap_or_else(|| format!("{username}@{host}/{folder}")),
            host,
            port: patch.port.ok_or_else(|| missing("port"))?,
            tls: patch.tls.ok_or_else(|| missing("tls"))?,
            username,
            password_env: patch.password_env.ok_or_else(|| missing("password_env"))?,
            folder,
            after: patch.after.unwrap_or(AfterAction::Seen),
        })
        .await?;
    let row: Mailbox = state.store.mailbox_get(scope, m.id).await?.into();
    audit(
        &state,
        &p,
        row.tenant_id,
        "create",
        "mailbox",
        row.id,
        (None, serde_json::to_value(&row).ok()),
    )
    .await?;
    Ok(HttpResponse::Created().json(row))
}

/// List mailboxes with their last poll status (a tenant token sees its own mailboxes).
#[utoipa::path(
    tag = "mailboxes",
    params(PageQuery),
    responses(
        (status = 200, body = MailboxPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/mailboxes")]
pub async fn list_mailboxes(
    p: Principal,
    state: web::Data<AppState>,
    q: web::Query<PageQuery>,
) -> Result<web::Json<MailboxPage>, ApiError> {
    let scope = p.require(Need::Read)?;
    let limit = q.limit()?;
    let rows = state.store.mailbox_page(scope, q.after()?, limit).await?;
    let next_cursor = next(&rows, limit, |m| m.id);
    Ok(web::Json(MailboxPage {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// One mailbox.
#[utoipa::path(
    tag = "mailboxes",
    params(("mailbox_id" = i64, Path, description = "mailbox id")),
    responses(
        (status = 200, body = Mailbox),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/mailboxes/{mailbox_id}")]
pub async fn get_mailbox(
    p: Principal,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<web::Json<Mailbox>, ApiError> {
    let scope = p.require(Need::Read)?;
    Ok(web::Json(state.store.mailbox_get(scope, *id).await?.into()))
}

/// Change a mailbox (connection, folder, after-action, password source, enabled).
#[utoipa::path(
    tag = "mailboxes",
    params(("mailbox_id" = i64, Path, description = "mailbox id")),
    request_body = MailboxInput,
    responses(
        (status = 200, body = Mailbox),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[patch("/api/v1/mailboxes/{mailbox_id}")]
pub async fn update_mailbox(
    p: Principal,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<MailboxInput>,
) -> Result<web::Json<Mailbox>, ApiError> {
    let scope = p.require(Need::Admin)?;
    let (_, patch) = body
        .into_inner()
        .parse(false, &state.config.password_env_prefix)?;
    let (before, after) = state.store.mailbox_update(scope, *id, patch).await?;
    let (before, after): (Mailbox, Mailbox) = (before.into(), after.into());
    audit(
        &state,
        &p,
        after.tenant_id,
        "update",
        "mailbox",
        after.id,
        (
            serde_json::to_value(&before).ok(),
            serde_json::to_value(&after).ok(),
        ),
    )
    .await?;
    Ok(web::Json(after))
}

/// Remove a mailbox (reports already stored stay).
#[utoipa::path(
    tag = "mailboxes",
    params(("mailbox_id" = i64, Path, description = "mailbox id")),
    responses(
        (status = 204),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[delete("/api/v1/mailboxes/{mailbox_id}")]
pub async fn remove_mailbox(
    p: Principal,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require(Need::Admin)?;
    let m: Mailbox = state.store.mailbox_remove(scope, *id).await?.into();
    audit(
        &state,
        &p,
        m.tenant_id,
        "delete",
        "mailbox",
        m.id,
        (serde_json::to_value(&m).ok(), None),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
