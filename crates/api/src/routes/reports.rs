//! Stored DMARC aggregate and TLS-RPT reports: list by domain and date range, one with its
//! records or policies, and the raw original.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, NaiveDate, Utc};
use sealwatch_model::DomainName;
use sealwatch_store::{
    DmarcRecordRow, DmarcReportRow, ReportFilter, ReportKey, Scope, TlsPolicyRow, TlsReportRow,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Need, Principal};
use crate::error::{ApiError, FieldError, Problem};
use crate::page::{PageQuery, next, page_of};

/// Filters of a report list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// Only reports about this domain.
    pub domain: Option<String>,
    /// Reports covering days on or after this date (YYYY-MM-DD, UTC).
    pub from: Option<String>,
    /// Reports covering days on or before this date (YYYY-MM-DD, UTC).
    pub to: Option<String>,
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

pub(crate) fn parse_date(field: &str, value: &str) -> Result<NaiveDate, FieldError> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| FieldError {
        field: field.to_owned(),
        reason: format!("{value:?} is not a date (YYYY-MM-DD)"),
    })
}

fn midnight(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp())
        .unwrap_or_default()
}

impl ReportQuery {
    async fn filter(
        &self,
        state: &AppState,
        scope: Scope,
    ) -> Result<(ReportFilter, PageQuery), ApiError> {
        let mut errors = Vec::new();
        let from = self.from.as_deref().map(|v| parse_date("from", v));
        let to = self.to.as_deref().map(|v| parse_date("to", v));
        let mut filter = ReportFilter::default();
        match from {
            Some(Ok(d)) => filter.from_ts = Some(midnight(d)),
            Some(Err(e)) => errors.push(e),
            None => {}
        }
        match to {
            Some(Ok(d)) => filter.to_ts = Some(midnight(d) + 86_400),
            Some(Err(e)) => errors.push(e),
            None => {}
        }
        let domain = match self.domain.as_deref().map(DomainName::parse) {
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => {
                errors.push(FieldError {
                    field: "domain".into(),
                    reason: format!("not a domain name: {e}"),
                });
                None
            }
            None => None,
        };
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        if let Some(d) = domain {
            filter.domain_id = Some(state.store.domain_by_name(scope, &d).await?.id);
        }
        Ok((
            filter,
            PageQuery {
                limit: self.limit,
                cursor: self.cursor.clone(),
            },
        ))
    }
}

fn ts(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).unwrap_or_default()
}

/// A DMARC aggregate report.
#[derive(Debug, Serialize, ToSchema)]
pub struct DmarcReport {
    pub id: i64,
    pub tenant_id: i64,
    pub domain_id: i64,
    pub org_name: String,
    pub reporter_email: Option<String>,
    pub report_id: String,
    pub policy_domain: String,
    pub begin: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub message_count: i64,
    pub record_count: i32,
    /// Published policy `p=`.
    pub policy: Option<String>,
    pub received_at: DateTime<Utc>,
}

impl From<DmarcReportRow> for DmarcReport {
    fn from(r: DmarcReportRow) -> Self {
        DmarcReport {
            id: r.id,
            tenant_id: r.tenant_id,
            domain_id: r.domain_id,
            org_name: r.org_name,
            reporter_email: r.reporter_email,
            report_id: r.report_id,
            policy_domain: r.policy_domain,
            begin: ts(r.begin_ts),
            end: ts(r.end_ts),
            message_count: r.message_count,
            record_count: r.record_count,
            policy: r.p,
            received_at: r.created_at,
        }
    }
}

/// One record of a DMARC report.
#[derive(Debug, Serialize, ToSchema)]
pub struct DmarcRecord {
    pub source_ip: String,
    pub count: i64,
    pub disposition: Option<String>,
    pub dkim: Option<String>,
    pub spf: Option<String>,
    pub header_from: Option<String>,
    pub envelope_from: Option<String>,
    #[schema(value_type = Object)]
    pub dkim_auth: serde_json::Value,
    #[schema(value_type = Object)]
    pub spf_auth: serde_json::Value,
}

impl From<DmarcRecordRow> for DmarcRecord {
    fn from(r: DmarcRecordRow) -> Self {
        DmarcRecord {
            source_ip: r.source_ip,
            count: r.count,
            disposition: r.disposition,
            dkim: r.dkim_result,
            spf: r.spf_result,
            header_from: r.header_from,
            envelope_from: r.envelope_from,
            dkim_auth: r.dkim_auth,
            spf_auth: r.spf_auth,
        }
    }
}

/// A DMARC report with its records.
#[derive(Debug, Serialize, ToSchema)]
pub struct DmarcReportDetail {
    pub report: DmarcReport,
    pub records: Vec<DmarcRecord>,
}

/// A TLS-RPT report.
#[derive(Debug, Serialize, ToSchema)]
pub struct TlsReport {
    pub id: i64,
    pub tenant_id: i64,
    pub domain_id: i64,
    pub org_name: String,
    pub contact_info: Option<String>,
    pub report_id: String,
    pub begin: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub successful_sessions: i64,
    pub failed_sessions: i64,
    pub received_at: DateTime<Utc>,
}

impl From<TlsReportRow> for TlsReport {
    fn from(r: TlsReportRow) -> Self {
        TlsReport {
            id: r.id,
            tenant_id: r.tenant_id,
            domain_id: r.domain_id,
            org_name: r.org_name,
            contact_info: r.contact_info,
            report_id: r.report_id,
            begin: ts(r.begin_ts),
            end: ts(r.end_ts),
            successful_sessions: r.successful_sessions,
            failed_sessions: r.failed_sessions,
            received_at: r.created_at,
        }
    }
}

/// One failure detail of a TLS-RPT policy.
#[derive(Debug, Serialize, ToSchema)]
pub struct TlsFailure {
    pub result_type: String,
    pub sending_mta_ip: Option<String>,
    pub receiving_mx_hostname: Option<String>,
    pub receiving_ip: Option<String>,
    pub failed_sessions: i64,
    pub failure_reason_code: Option<String>,
    pub additional_information: Option<String>,
}

/// One policy of a TLS-RPT report.
#[derive(Debug, Serialize, ToSchema)]
pub struct TlsPolicy {
    pub policy_type: String,
    pub policy_domain: Option<String>,
    #[schema(value_type = Object)]
    pub policy_strings: serde_json::Value,
    #[schema(value_type = Object)]
    pub mx_hosts: serde_json::Value,
    pub successful_sessions: i64,
    pub failed_sessions: i64,
    pub failure_details: Vec<TlsFailure>,
}

impl From<TlsPolicyRow> for TlsPolicy {
    fn from(p: TlsPolicyRow) -> Self {
        TlsPolicy {
            policy_type: p.policy_type,
            policy_domain: p.policy_domain,
            policy_strings: p.policy_strings,
            mx_hosts: p.mx_hosts,
            successful_sessions: p.successful_sessions,
            failed_sessions: p.failed_sessions,
            failure_details: p
                .failure_details
                .into_iter()
                .map(|d| TlsFailure {
                    result_type: d.result_type,
                    sending_mta_ip: d.sending_mta_ip,
                    receiving_mx_hostname: d.receiving_mx_hostname,
                    receiving_ip: d.receiving_ip,
                    failed_sessions: d.failed_sessions,
                    failure_reason_code: d.failure_reason_code,
                    additional_information: d.additional_information,
                })
                .collect(),
        }
    }
}

/// A TLS-RPT report with its policies.
#[derive(Debug, Serialize, ToSchema)]
pub struct TlsReportDetail {
    pub report: TlsReport,
    pub policies: Vec<TlsPolicy>,
}

page_of!(DmarcReportPage, DmarcReport);
page_of!(TlsReportPage, TlsReport);

/// List DMARC aggregate reports, newest first.
#[utoipa::path(
    tag = "reports",
    params(ReportQuery),
    responses(
        (status = 200, body = DmarcReportPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/reports/dmarc")]
pub async fn list_dmarc(
    p: Principal,
    state: web::Data<AppState>,
    q: web::Query<ReportQuery>,
) -> Result<web::Json<DmarcReportPage>, ApiError> {
    let scope = p.require(Need::Read)?;
    let (filter, page) = q.filter(&state, scope).await?;
    let limit = page.limit()?;
    let after = page
        .after::<(i64, i64)>()?
        .map(|(begin_ts, id)| ReportKey { begin_ts, id });
    let rows = state
        .store
        .dmarc_report_page(scope, &filter, after, limit)
        .await?;
    let next_cursor = next(&rows, limit, |r| (r.begin_ts, r.id));
    Ok(web::Json(DmarcReportPage {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// One DMARC report with its records.
#[utoipa::path(
    tag = "reports",
    params(("report_id" = i64, Path, description = "report id")),
    responses(
        (status = 200, body = DmarcReportDetail),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/reports/dmarc/{report_id}")]
pub async fn get_dmarc(
    p: Principal,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<web::Json<DmarcReportDetail>, ApiError> {
    let scope = p.require(Need::Read)?;
    let (r, records) = state.store.dmarc_report_get(scope, *id).await?;
    Ok(web::Json(DmarcReportDetail {
        report: r.into(),
        records: records.into_iter().map(Into::into).collect(),
    }))
}

fn raw(bytes: Vec<u8>, name: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .body(bytes)
}

/// The raw message or file a DMARC report was parsed from.
#[utoipa::path(
    tag = "reports",
    params(("report_id" = i64, Path, description = "report id")),
    responses(
        (status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/reports/dmarc/{report_id}/raw")]
pub async fn raw_dmarc(
    p: Principal,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require(Need::Read)?;
    let bytes = state.store.report_raw(scope, false, *id).await?;
    Ok(raw(bytes, format!("dmarc-report-{id}.raw")))
}

/// List TLS-RPT reports, newest first.
#[utoipa::path(
    tag = "reports",
    params(ReportQuery),
    responses(
        (status = 200, body = TlsReportPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/reports/tls")]
pub async fn list_tls(
    p: Principal,
    state: web::Data<AppState>,
    q: web::Query<ReportQuery>,
) -> Result<web::Json<TlsReportPage>, ApiError> {
    let scope = p.require(Need::Read)?;
    let (filter, page) = q.filter(&state, scope).await?;
    let limit = page.limit()?;
    let after = page
        .after::<(i64, i64)>()?
        .map(|(begin_ts, id)| ReportKey { begin_ts, id });
    let rows = state
        .store
        .tls_report_page(scope, &filter, after, limit)
        .await?;
    let next_cursor = next(&rows, limit, |r| (r.begin_ts, r.id));
    Ok(web::Json(TlsReportPage {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// One TLS-RPT report with its policies and failure details.
#[utoipa::path(
    tag = "reports",
    params(("report_id" = i64, Path, description = "report id")),
    responses(
        (status = 200, body = TlsReportDetail),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/reports/tls/{report_id}")]
pub async fn get_tls(
    p: Principal,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<web::Json<TlsReportDetail>, ApiError> {
    let scope = p.require(Need::Read)?;
    let (r, policies) = state.store.tls_report_get(scope, *id).await?;
    Ok(web::Json(TlsReportDetail {
        report: r.into(),
        policies: policies.into_iter().map(Into::into).collect(),
    }))
}

/// The raw message or file a TLS-RPT report was parsed from.
#[utoipa::path(
    tag = "reports",
    params(("report_id" = i64, Path, description = "report id")),
    responses(
        (status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/reports/tls/{report_id}/raw")]
pub async fn raw_tls(
    p: Principal,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require(Need::Read)?;
    let bytes = state.store.report_raw(scope, true, *id).await?;
    Ok(raw(bytes, format!("tls-report-{id}.raw")))
}
