//! Tenants and their domains (onboarding with the DNS records to publish, verification).

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use sealwatch_health::{CheckConfig, HealthChecker, Observed};
use sealwatch_model::DomainName;
use sealwatch_store::{AuditEntry, DomainRow, TenantPatch, TenantRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Need, Principal};
use crate::error::{ApiError, FieldError, Problem};
use crate::page::{PageQuery, next, page_of};

/// A tenant (subscriber).
#[derive(Debug, Serialize, ToSchema)]
pub struct Tenant {
    pub id: i64,
    pub name: String,
    pub active: bool,
    /// Who receives the weekly digest.
    pub digest_recipients: Vec<String>,
    /// ISO weekday the digest is sent, 1 (Monday) – 7 (Sunday).
    pub digest_weekday: i16,
    /// Hour of day (0–23) in `timezone`.
    pub digest_hour: i16,
    /// IANA time zone, e.g. `Europe/Berlin`.
    pub timezone: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<TenantRow> for Tenant {
    fn from(t: TenantRow) -> Self {
        Tenant {
            id: t.id,
            name: t.name,
            active: t.active,
            digest_recipients: t.digest_recipients,
            digest_weekday: t.digest_weekday,
            digest_hour: t.digest_hour,
            timezone: t.timezone,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

page_of!(TenantPage, Tenant);
page_of!(DomainPage, Domain);

/// A new tenant, or changes to one (absent fields stay as they are).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantInput {
    /// Unique name, 1–200 characters.
    pub name: Option<String>,
    pub digest_recipients: Option<Vec<String>>,
    /// 1 (Monday) – 7 (Sunday).
    pub digest_weekday: Option<i16>,
    /// 0–23.
    pub digest_hour: Option<i16>,
    /// IANA time zone name such as `UTC` or `Europe/Berlin`.
    pub timezone: Option<String>,
}

fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',')
        && DomainName::parse(domain).is_ok()
}

fn valid_timezone(tz: &str) -> bool {
    tz == "UTC"
        || (tz.len() <= 64
            && tz.contains('/')
            && tz.split('/').all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c))
            }))
}

impl TenantInput {
    /// Parses into a patch; every invalid field is reported.
    fn into_patch(self, creating: bool) -> Result<TenantPatch, ApiError> {
        let mut errors = Vec::new();
        let mut bad = |field: &str, reason: String| {
            errors.push(FieldError {
                field: field.to_owned(),
                reason,
            })
        };
        let name = self.name.map(|n| n.trim().to_owned());
        match &name {
            None if creating => bad("name", "is required".into()),
            Some(n) if n.is_empty() || n.chars().count() > 200 => {
                bad("name", "must be 1–200 characters".into())
            }
            _ => {}
        }
        if let Some(r) = &self.digest_recipients {
            for (i, a) in r.iter().enumerate() {
                if !valid_email(a) {
                    bad(
                        &format!("digest_recipients[{i}]"),
                        format!("{a:?} is not an email address"),
                    );
                }
            }
            if r.len() > 50 {
                bad("digest_recipients", "at most 50 recipients".into());
            }
        }
        if let Some(d) = self.digest_weekday
            && !(1..=7).contains(&d)
        {
            bad(
                "digest_weekday",
                format!("{d} is not between 1 (Monday) and 7 (Sunday)"),
            );
        }
        if let Some(h) = self.digest_hour
            && !(0..=23).contains(&h)
        {
            bad("digest_hour", format!("{h} is not between 0 and 23"));
        }
        if let Some(tz) = &self.timezone
            && !valid_timezone(tz)
        {
            bad("timezone", format!("{tz:?} is not an IANA time zone name"));
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(TenantPatch {
            name,
            digest_recipients: self.digest_recipients,
            digest_weekday: self.digest_weekday,
            digest_hour: self.digest_hour,
            timezone: self.timezone,
            active: None,
        })
    }
}

fn json<T: Serialize>(v: &T) -> Option<serde_json::Value> {
    serde_json::to_value(v).ok()
}

pub(crate) async fn audit(
    state: &AppState,
    p: &Principal,
    tenant_id: Option<i64>,
    action: &str,
    entity: &str,
    entity_id: impl ToString,
    (before, after): (Option<serde_json::Value>, Option<serde_json::Value>),
) -> Result<(), ApiError> {
    state
        .store
        .audit(AuditEntry {
            actor: p.actor(),
            actor_token_id: Some(p.token_id),
            tenant_id,
            action: action.to_owned(),
            entity: entity.to_owned(),
            entity_id: Some(entity_id.to_string()),
            before,
            after,
        })
        .await?;
    Ok(())
}

/// Create a tenant.
#[utoipa::path(
    tag = "tenants",
    request_body = TenantInput,
    responses(
        (status = 201, body = Tenant),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/tenants")]
pub async fn create_tenant(
    p: Principal,
    state: web::Data<AppState>,
    body: web::Json<TenantInput>,
) -> Result<HttpResponse, ApiError> {
    p.require(Need::Admin)?;
    let mut patch = body.into_inner().into_patch(true)?;
    let name = patch.name.take().unwrap_or_default();
    let t: Tenant = state.store.tenant_create(&name, patch).await?.into();
    audit(
        &state,
        &p,
        Some(t.id),
        "create",
        "tenant",
        t.id,
        (None, json(&t)),
    )
    .await?;
    Ok(HttpResponse::Created().json(t))
}

/// List tenants (a tenant token sees its own), by id.
#[utoipa::path(
    tag = "tenants",
    params(PageQuery),
    responses(
        (status = 200, body = TenantPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/tenants")]
pub async fn list_tenants(
    p: Principal,
    state: web::Data<AppState>,
    q: web::Query<PageQuery>,
) -> Result<web::Json<TenantPage>, ApiError> {
    let scope = p.require(Need::Read)?;
    let limit = q.limit()?;
    let rows = state.store.tenant_page(scope, q.after()?, limit).await?;
    let next_cursor = next(&rows, limit, |t| t.id);
    Ok(web::Json(TenantPage {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// One tenant.
#[utoipa::path(
    tag = "tenants",
    params(("tenant_id" = i64, Path, description = "tenant id")),
    responses(
        (status = 200, body = Tenant),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/tenants/{tenant_id}")]
pub async fn get_tenant(
    p: Principal,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<web::Json<Tenant>, ApiError> {
    let scope = p.require(Need::Read)?;
    Ok(web::Json(state.store.tenant_get(scope, *id).await?.into()))
}

/// Update a tenant's name and digest settings.
#[utoipa::path(
    tag = "tenants",
    params(("tenant_id" = i64, Path, description = "tenant id")),
    request_body = TenantInput,
    responses(
        (status = 200, body = Tenant),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[patch("/api/v1/tenants/{tenant_id}")]
pub async fn update_tenant(
    p: Principal,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<TenantInput>,
) -> Result<web::Json<Tenant>, ApiError> {
    let scope = p.require(Need::Admin)?;
    let patch = body.into_inner().into_patch(false)?;
    let (before, after) = state.store.tenant_update(scope, *id, patch).await?;
    // (Re)activation changes which domains the TLS-RPT intake routes to.
    state.intake.invalidate_routes().await;
    let (before, after): (Tenant, Tenant) = (before.into(), after.into());
    audit(
        &state,
        &p,
        Some(*id),
        "update",
        "tenant",
        *id,
        (json(&before), json(&after)),
    )
    .await?;
    Ok(web::Json(after))
}

/// Deactivate a tenant: its reports are no longer routed and its tokens stop working.
#[utoipa::path(
    tag = "tenants",
    params(("tenant_id" = i64, Path, description = "tenant id")),
    responses(
        (status = 200, body = Tenant),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/tenants/{tenant_id}/deactivate")]
pub async fn deactivate_tenant(
    p: Principal,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<web::Json<Tenant>, ApiError> {
    let scope = p.require(Need::Admin)?;
    // Bumps the authentication revision: other processes drop their cached tokens within
    // seconds; this one drops the tenant's at once.
    let (before, after) = state.store.tenant_deactivate(scope, *id).await?;
    state.auth.forget_tenant(*id);
    state.intake.invalidate_routes().await;
    let (before, after): (Tenant, Tenant) = (before.into(), after.into());
    audit(
        &state,
        &p,
        Some(*id),
        "deactivate",
        "tenant",
        *id,
        (json(&before), json(&after)),
    )
    .await?;
    Ok(web::Json(after))
}

// ---- domains ---------------------------------------------------------------------------

/// A tenant's domain.
#[derive(Debug, Serialize, ToSchema)]
pub struct Domain {
    pub id: i64,
    pub tenant_id: i64,
    pub domain: String,
    /// `pending`, `verified` or `failed`.
    pub verification: String,
    pub verified_at: Option<DateTime<Utc>>,
    /// What the last verification found.
    #[schema(value_type = Option<Object>)]
    pub verification_detail: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

impl From<DomainRow> for Domain {
    fn from(d: DomainRow) -> Self {
        Domain {
            id: d.id,
            tenant_id: d.tenant_id,
            domain: d.domain,
            verification: d.verification,
            verified_at: d.verified_at,
            verification_detail: d.verification_detail,
            created_at: d.created_at,
        }
    }
}

/// A DNS record to publish.
#[derive(Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct DnsRecord {
    /// `dmarc`, `tls-rpt` or `dmarc-external-authorization`.
    pub purpose: String,
    /// Owner name, fully qualified, without the trailing dot.
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    /// The value to publish (for DMARC: an example; keep your own policy tags and add the
    /// `rua` address).
    pub value: String,
    /// Who publishes it: `subscriber` (in their zone) or `sealwatch` (in ours).
    pub publisher: String,
    pub note: String,
}

/// An onboarded domain and the records that make reports reach us.
#[derive(Debug, Serialize, ToSchema)]
pub struct Onboarding {
    pub domain: Domain,
    pub dns_records: Vec<DnsRecord>,
}

/// A domain to onboard.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainInput {
    /// A registered domain name such as `example.com`.
    pub domain: String,
}

fn address_domain(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase())
        .unwrap_or_default()
}

/// The records a subscriber publishes for `domain` (and the one we publish).
pub fn dns_records(config: &crate::ApiConfig, domain: &str, token: &str) -> Vec<DnsRecord> {
    let mut tls_rua = format!("mailto:{}", config.tlsrpt_rua);
    if let Some(base) = &config.tlsrpt_https_base {
        tls_rua.push_str(&format!(",{}/api/v1/tlsrpt", base.trim_end_matches('/')));
    }
    let mut out = vec![
        DnsRecord {
            purpose: "dmarc".into(),
            name: format!("_dmarc.{domain}"),
            rtype: "TXT".into(),
            value: format!("v=DMARC1; p=none; rua=mailto:{}", config.dmarc_rua),
            publisher: "subscriber".into(),
            note: format!(
                "add mailto:{} to the rua= tag of the existing DMARC record (keep its policy), or publish this one",
                config.dmarc_rua
            ),
        },
        DnsRecord {
            purpose: "tls-rpt".into(),
            name: format!("_smtp._tls.{domain}"),
            rtype: "TXT".into(),
            value: format!("v=TLSRPTv1; rua={tls_rua}"),
            publisher: "subscriber".into(),
            note:
                "add these addresses to the rua= of an existing TLS-RPT record, or publish this one"
                    .into(),
        },
    ];
    let rua_domain = address_domain(&config.dmarc_rua);
    if !rua_domain.is_empty()
        && rua_domain != domain
        && !rua_domain.ends_with(&format!(".{domain}"))
    {
        out.push(DnsRecord {
            purpose: "dmarc-external-authorization".into(),
            name: format!("{domain}._report._dmarc.{rua_domain}"),
            rtype: "TXT".into(),
            value: "v=DMARC1".into(),
            publisher: "sealwatch".into(),
            note: format!(
                "RFC 7489 §7.1: {rua_domain} must authorise receiving reports for {domain}, or receivers drop the rua"
            ),
        });
    }
    out.push(DnsRecord {
        purpose: "ownership".into(),
        name: ownership_name(domain),
        rtype: "TXT".into(),
        value: ownership_value(token),
        publisher: "subscriber".into(),
        note: "proves that whoever adds this domain controls its DNS; the token is the tenant's own (the same for all its domains) and verification needs it".into(),
    });
    out
}

/// Onboard a domain for a tenant; answers with the DNS records to publish.
#[utoipa::path(
    tag = "domains",
    params(("tenant_id" = i64, Path, description = "tenant id")),
    request_body = DomainInput,
    responses(
        (status = 201, body = Onboarding),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/tenants/{tenant_id}/domains")]
pub async fn add_domain(
    p: Principal,
    state: web::Data<AppState>,
    tenant_id: web::Path<i64>,
    body: web::Json<DomainInput>,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require(Need::Admin)?;
    let domain = DomainName::parse(&body.domain).map_err(|e| {
        ApiError::field(
            "domain",
            format!("{:?} is not a domain name: {e}", body.domain),
        )
    })?;
    let d: Domain = state
        .store
        .domain_add(scope, *tenant_id, &domain)
        .await?
        .into();
    audit(
        &state,
        &p,
        Some(d.tenant_id),
        "create",
        "domain",
        d.id,
        (None, json(&d)),
    )
    .await?;
    let token = ownership_token(&state, scope, d.tenant_id).await?;
    let dns_records = dns_records(&state.config, &d.domain, &token);
    Ok(HttpResponse::Created().json(Onboarding {
        domain: d,
        dns_records,
    }))
}

/// List a tenant's domains.
#[utoipa::path(
    tag = "domains",
    params(("tenant_id" = i64, Path, description = "tenant id"), PageQuery),
    responses(
        (status = 200, body = DomainPage),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/tenants/{tenant_id}/domains")]
pub async fn list_domains(
    p: Principal,
    state: web::Data<AppState>,
    tenant_id: web::Path<i64>,
    q: web::Query<PageQuery>,
) -> Result<web::Json<DomainPage>, ApiError> {
    let scope = p.require(Need::Read)?;
    state.store.tenant_get(scope, *tenant_id).await?;
    let limit = q.limit()?;
    let rows = state
        .store
        .domain_page(scope, Some(*tenant_id), q.after()?, limit)
        .await?;
    let next_cursor = next(&rows, limit, |d| d.id);
    Ok(web::Json(DomainPage {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// One domain with the records to publish.
#[utoipa::path(
    tag = "domains",
    params(("domain_id" = i64, Path, description = "domain id")),
    responses(
        (status = 200, body = Onboarding),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/domains/{domain_id}")]
pub async fn get_domain(
    p: Principal,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<web::Json<Onboarding>, ApiError> {
    let scope = p.require(Need::Read)?;
    let d: Domain = state.store.domain_get(scope, *id).await?.into();
    let token = ownership_token(&state, scope, d.tenant_id).await?;
    let dns_records = dns_records(&state.config, &d.domain, &token);
    Ok(web::Json(Onboarding {
        domain: d,
        dns_records,
    }))
}

/// Remove a domain (its reports and anomalies go with it).
#[utoipa::path(
    tag = "domains",
    params(("domain_id" = i64, Path, description = "domain id")),
    responses(
        (status = 204),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[delete("/api/v1/domains/{domain_id}")]
pub async fn remove_domain(
    p: Principal,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require(Need::Admin)?;
    let d: Domain = state.store.domain_remove(scope, *id).await?.into();
    state.intake.invalidate_routes().await;
    audit(
        &state,
        &p,
        Some(d.tenant_id),
        "delete",
        "domain",
        d.id,
        (json(&d), None),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// What verification found for one record.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordCheck {
    pub purpose: String,
    pub name: String,
    /// `ok`, `missing-address` (the record does not name our address), `wrong-token` (an
    /// ownership record with another token), `absent` or `lookup-failed`.
    pub status: String,
    /// The records found.
    pub found: Vec<String>,
}

/// Where a tenant publishes its domain-ownership token.
fn ownership_name(domain: &str) -> String {
    format!("_sealwatch.{domain}")
}

fn ownership_value(token: &str) -> String {
    format!("sealwatch-verification={token}")
}

/// The tenant's domain-ownership token (made on first use: 128 random bits, hex).
async fn ownership_token(
    state: &AppState,
    scope: sealwatch_store::Scope,
    tenant_id: i64,
) -> Result<String, ApiError> {
    let candidate: String = crate::auth::random::<16>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(state
        .store
        .tenant_verification_token(scope, tenant_id, &candidate)
        .await?)
}

/// Whether `_sealwatch.<domain>` holds the tenant's token.
fn check_ownership(observed: Observed, domain: &str, token: &str) -> RecordCheck {
    let wanted = ownership_value(token);
    let (status, found) = match observed {
        Observed::Found(values) => {
            let relevant: Vec<String> = values
                .into_iter()
                .filter(|v| v.trim().starts_with("sealwatch-verification="))
                .collect();
            let status = if relevant.iter().any(|v| v.trim() == wanted) {
                "ok"
            } else if relevant.is_empty() {
                "absent"
            } else {
                "wrong-token"
            };
            (status, relevant)
        }
        Observed::Failed(e) => ("lookup-failed", vec![e]),
        Observed::Absent => ("absent", Vec::new()),
    };
    RecordCheck {
        purpose: "ownership".into(),
        name: ownership_name(domain),
        status: status.into(),
        found,
    }
}

/// The result of a verification.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verification {
    pub domain: Domain,
    pub verified: bool,
    pub checks: Vec<RecordCheck>,
}

fn check_record(
    report: &sealwatch_health::HealthReport,
    purpose: &str,
    name: &str,
    marker: &str,
    address: &str,
) -> RecordCheck {
    let observed = report
        .records
        .iter()
        .find(|r| r.rtype == "TXT" && r.name.eq_ignore_ascii_case(name))
        .map(|r| r.observed.clone());
    let wanted = format!("mailto:{}", address.to_ascii_lowercase());
    let (status, found) = match observed {
        Some(Observed::Found(values)) => {
            let relevant: Vec<String> = values
                .into_iter()
                .filter(|v| v.to_ascii_lowercase().starts_with(marker))
                .collect();
            let ok = relevant.iter().any(|v| {
                v.to_ascii_lowercase()
                    .split(['=', ',', ';', ' '])
                    .any(|part| part.split('!').next() == Some(wanted.as_str()))
            });
            let status = if relevant.is_empty() {
                "absent"
            } else if ok {
                "ok"
            } else {
                "missing-address"
            };
            (status, relevant)
        }
        Some(Observed::Failed(e)) => ("lookup-failed", vec![e]),
        Some(Observed::Absent) | None => ("absent", Vec::new()),
    };
    RecordCheck {
        purpose: purpose.into(),
        name: name.into(),
        status: status.into(),
        found,
    }
}

/// Check the domain's DNS for our report addresses and record the result.
#[utoipa::path(
    tag = "domains",
    params(("domain_id" = i64, Path, description = "domain id")),
    responses(
        (status = 200, body = Verification),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/domains/{domain_id}/verify")]
pub async fn verify_domain(
    p: Principal,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<web::Json<Verification>, ApiError> {
    let scope = p.require(Need::Admin)?;
    let row = state.store.domain_get(scope, *id).await?;
    let domain = DomainName::parse(&row.domain)
        .map_err(|e| ApiError::Internal(format!("stored domain {}: {e}", row.domain)))?;
    let checker = HealthChecker::new(CheckConfig {
        name_servers: state.config.dns_servers.clone(),
        dns_timeout: state.config.dns_timeout,
        https_timeout: state.config.dns_timeout,
        our_rua: vec![
            format!("mailto:{}", state.config.dmarc_rua),
            format!("mailto:{}", state.config.tlsrpt_rua),
        ],
        dnsbl_zones: Vec::new(),
        domain_blocklists: Vec::new(),
        ..CheckConfig::default()
    })
    .map_err(|e| ApiError::Unavailable(format!("DNS resolver: {e}")))?;
    let token = ownership_token(&state, scope, row.tenant_id).await?;
    let ownership_at = ownership_name(domain.as_str());
    let (report, ownership) =
        futures_util::join!(checker.check(&domain, &[]), checker.txt(&ownership_at));
    let checks = vec![
        check_record(
            &report,
            "dmarc",
            &format!("_dmarc.{domain}"),
            "v=dmarc1",
            &state.config.dmarc_rua,
        ),
        check_record(
            &report,
            "tls-rpt",
            &format!("_smtp._tls.{domain}"),
            "v=tlsrptv1",
            &state.config.tlsrpt_rua,
        ),
        check_ownership(ownership, domain.as_str(), &token),
    ];
    let verified = checks.iter().all(|c| c.status == "ok");
    let detail = serde_json::json!({
        "checked_at": Utc::now(),
        "checks": checks,
    });
    let (before, after) = state
        .store
        .domain_record_verification(scope, *id, verified, &detail)
        .await?;
    state.intake.invalidate_routes().await;
    let (before, after): (Domain, Domain) = (before.into(), after.into());
    audit(
        &state,
        &p,
        Some(after.tenant_id),
        "verify",
        "domain",
        after.id,
        (json(&before), json(&after)),
    )
    .await?;
    Ok(web::Json(Verification {
        domain: after,
        verified,
        checks,
    }))
}

/// Filters of the domain list across tenants.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DomainQuery {
    /// Only this tenant's domains.
    pub tenant_id: Option<i64>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// List domains across tenants (a tenant token sees its own).
#[utoipa::path(
    tag = "domains",
    params(DomainQuery),
    responses(
        (status = 200, body = DomainPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/domains")]
pub async fn list_all_domains(
    p: Principal,
    state: web::Data<AppState>,
    q: web::Query<DomainQuery>,
) -> Result<web::Json<DomainPage>, ApiError> {
    let scope = p.require(Need::Read)?;
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor.clone(),
    };
    let limit = page.limit()?;
    let rows = state
        .store
        .domain_page(scope, q.tenant_id, page.after()?, limit)
        .await?;
    let next_cursor = next(&rows, limit, |d| d.id);
    Ok(web::Json(DomainPage {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onboarding_names_the_external_authorisation_record_only_when_needed() {
        let config = crate::ApiConfig {
            dmarc_rua: "dmarc@reports.example.net".into(),
            tlsrpt_rua: "tlsrpt@reports.example.net".into(),
            tlsrpt_https_base: Some("https://api.example.net/".into()),
            ..crate::ApiConfig::default()
        };
        let records = dns_records(&config, "shop.example", "0f1e");
        assert_eq!(records.len(), 4);
        assert_eq!(records[0].name, "_dmarc.shop.example");
        assert!(
            records[0]
                .value
                .contains("rua=mailto:dmarc@reports.example.net")
        );
        assert_eq!(
            records[1].value,
            "v=TLSRPTv1; rua=mailto:tlsrpt@reports.example.net,https://api.example.net/api/v1/tlsrpt"
        );
        assert_eq!(
            records[2].name,
            "shop.example._report._dmarc.reports.example.net"
        );
        assert_eq!(records[2].value, "v=DMARC1");
        assert_eq!(records[3].name, "_sealwatch.shop.example");
        assert_eq!(records[3].value, "sealwatch-verification=0f1e");
        assert_eq!(dns_records(&config, "example.net", "0f1e").len(), 3);
        assert_eq!(dns_records(&config, "reports.example.net", "0f1e").len(), 3);
    }

    #[test]
    fn ownership_needs_the_tenants_own_token() {
        let found = |v: &[&str]| Observed::Found(v.iter().map(|s| (*s).to_owned()).collect());
        let status = |o| check_ownership(o, "shop.example", "ab12").status;
        assert_eq!(status(found(&["sealwatch-verification=ab12"])), "ok");
        assert_eq!(
            status(found(&["v=spf1 -all", " sealwatch-verification=ab12 "])),
            "ok"
        );
        assert_eq!(
            status(found(&["sealwatch-verification=ffff"])),
            "wrong-token"
        );
        assert_eq!(
            status(found(&["sealwatch-verification=ab123"])),
            "wrong-token"
        );
        assert_eq!(status(found(&["v=spf1 -all"])), "absent");
        assert_eq!(status(Observed::Absent), "absent");
        assert_eq!(status(Observed::Failed("timeout".into())), "lookup-failed");
    }

    #[test]
    fn tenant_input_names_every_bad_field() {
        let input = TenantInput {
            name: Some(String::new()),
            digest_recipients: Some(vec!["ops@example.com".into(), "nope".into()]),
            digest_weekday: Some(9),
            digest_hour: Some(24),
            timezone: Some("Mars Time".into()),
        };
        let Err(ApiError::Validation(errors)) = input.into_patch(true) else {
            panic!("expected validation errors");
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "name",
                "digest_recipients[1]",
                "digest_weekday",
                "digest_hour",
                "timezone"
            ]
        );
    }
}
