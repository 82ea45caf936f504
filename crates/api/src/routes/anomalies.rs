//! The staff review queue: anomalies most urgent first, one with its evidence and
//! explanation, and reviews (acknowledge, resolve, dismiss, reopen) with their history.

use actix_web::{get, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use sealwatch_model::DomainName;
use sealwatch_store::{AnomalyRow, QueueFilter, QueueKey, ReviewRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::reports::parse_date;
use super::tenants::audit;
use crate::AppState;
use crate::auth::{Need, Principal};
use crate::error::{ApiError, FieldError, Problem};
use crate::page::{PageQuery, next, page_of};

const STATUSES: [&str; 4] = ["open", "acknowledged", "resolved", "dismissed"];
const SEVERITIES: [&str; 3] = ["info", "warning", "critical"];

/// Filters of the review queue.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnomalyQuery {
    pub tenant_id: Option<i64>,
    /// Only this domain.
    pub domain: Option<String>,
    /// An anomaly kind such as `tls-certificate-cluster`.
    pub kind: Option<String>,
    /// `info`, `warning` or `critical`.
    pub severity: Option<String>,
    /// Comma-separated statuses (`open`, `acknowledged`, `resolved`, `dismissed`) or `all`;
    /// default `open,acknowledged`.
    pub status: Option<String>,
    /// Last seen on or after this date (YYYY-MM-DD).
    pub from: Option<String>,
    /// Last seen on or before this date (YYYY-MM-DD).
    pub to: Option<String>,
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Unknown values reported per filter (the rest are summarised).
const MAX_REPORTED_VALUES: usize = 3;
/// Characters of an unknown value echoed back.
const MAX_ECHOED_CHARS: usize = 40;

/// A comma-separated filter over a known set of values: each value once, in the order of
/// first mention, so the number of distinct values (and of queries they cost) is at most
/// the size of the set however often a value is repeated. Unknown values are refused,
/// each named once and only the first few.
fn enum_values(
    field: &str,
    list: &str,
    known: &[&'static str],
) -> Result<Vec<&'static str>, Vec<FieldError>> {
    let mut values: Vec<&'static str> = Vec::new();
    let mut unknown: Vec<&str> = Vec::new();
    let mut more_unknown = false;
    for v in list.split(',').map(str::trim) {
        match known.iter().find(|k| **k == v) {
            Some(k) => {
                if !values.contains(k) {
                    values.push(k);
                }
            }
            None if unknown.contains(&v) => {}
            None if unknown.len() < MAX_REPORTED_VALUES => unknown.push(v),
            None => more_unknown = true,
        }
    }
    if unknown.is_empty() {
        return Ok(values);
    }
    let mut errors: Vec<FieldError> = unknown
        .iter()
        .map(|v| {
            let shown: String = v.chars().take(MAX_ECHOED_CHARS).collect();
            FieldError {
                field: field.to_owned(),
                reason: format!("{shown:?} is not one of {}, all", known.join(", ")),
            }
        })
        .collect();
    if more_unknown {
        errors.push(FieldError {
            field: field.to_owned(),
            reason: "more unknown values follow (not listed)".into(),
        });
    }
    Err(errors)
}

fn day_number(d: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    i32::try_from((d - epoch).num_days()).unwrap_or(i32::MAX)
}

fn day_date(day: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .unwrap_or_default()
        .checked_add_signed(chrono::Duration::days(i64::from(day)))
        .unwrap_or_default()
}

/// An anomaly in the queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct Anomaly {
    pub id: i64,
    pub tenant_id: i64,
    pub domain_id: i64,
    pub domain: String,
    pub kind: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// `open`, `acknowledged`, `resolved` or `dismissed`.
    pub status: String,
    pub confidence: f64,
    pub window_start: NaiveDate,
    pub window_end: NaiveDate,
    pub first_seen: NaiveDate,
    pub last_seen: NaiveDate,
    pub summary: String,
    pub occurrences: i32,
    pub assignee: Option<String>,
    pub fingerprint: String,
    pub updated_at: DateTime<Utc>,
}

impl From<&AnomalyRow> for Anomaly {
    fn from(a: &AnomalyRow) -> Self {
        Anomaly {
            id: a.id,
            tenant_id: a.tenant_id,
            domain_id: a.domain_id,
            domain: a.domain.clone(),
            kind: a.kind.clone(),
            severity: a.severity.clone(),
            status: a.status.clone(),
            confidence: a.confidence,
            window_start: day_date(a.window_start),
            window_end: day_date(a.window_end),
            first_seen: day_date(a.first_seen_day),
            last_seen: day_date(a.last_seen_day),
            summary: a.summary.clone(),
            occurrences: a.occurrences,
            assignee: a.assignee.clone(),
            fingerprint: a.fingerprint.clone(),
            updated_at: a.updated_at,
        }
    }
}

/// One review in an anomaly's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct Review {
    pub id: i64,
    pub action: String,
    pub from_status: String,
    pub to_status: String,
    pub note: Option<String>,
    pub assignee: Option<String>,
    pub actor: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<ReviewRow> for Review {
    fn from(r: ReviewRow) -> Self {
        Review {
            id: r.id,
            action: r.action,
            from_status: r.from_status,
            to_status: r.to_status,
            note: r.note,
            assignee: r.assignee,
            actor: r.actor,
            created_at: r.created_at,
        }
    }
}

/// An anomaly with its evidence, plain-English explanation and review history.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnomalyDetail {
    #[serde(flatten)]
    pub anomaly: Anomaly,
    /// Numbers, reporters, MX hosts, result types, IPs.
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
    /// `what_happened`, `what_it_means`, `what_to_do`, `who_fixes_it`.
    #[schema(value_type = Object)]
    pub explanation: serde_json::Value,
    /// Oldest first.
    pub reviews: Vec<Review>,
}

page_of!(AnomalyPage, Anomaly);

impl AnomalyQuery {
    fn parse(&self) -> Result<(QueueFilter, Option<DomainName>), ApiError> {
        let mut errors = Vec::new();
        let mut filter = QueueFilter {
            tenant_id: self.tenant_id,
            kind: self.kind.clone(),
            ..QueueFilter::default()
        };
        if let Some(s) = &self.severity {
            if SEVERITIES.contains(&s.as_str()) {
                filter.severity = Some(s.clone());
            } else {
                errors.push(FieldError {
                    field: "severity".into(),
                    reason: format!("{s:?} is not one of info, warning, critical"),
                });
            }
        }
        match self.status.as_deref() {
            None => filter.statuses = vec!["open".into(), "acknowledged".into()],
            Some("all") => {}
            Some(list) => match enum_values("status", list, &STATUSES) {
                Ok(values) => filter.statuses = values.into_iter().map(str::to_owned).collect(),
                Err(e) => errors.extend(e),
            },
        }
        for (field, value, slot) in [
            ("from", &self.from, &mut filter.from_day),
            ("to", &self.to, &mut filter.to_day),
        ] {
            if let Some(v) = value {
                match parse_date(field, v) {
                    Ok(d) => *slot = Some(day_number(d)),
                    Err(e) => errors.push(e),
                }
            }
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
        if errors.is_empty() {
            Ok((filter, domain))
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

/// The review queue: most severe first, then most recently seen.
#[utoipa::path(
    tag = "anomalies",
    params(AnomalyQuery),
    responses(
        (status = 200, body = AnomalyPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/anomalies")]
pub async fn list_anomalies(
    p: Principal,
    state: web::Data<AppState>,
    q: web::Query<AnomalyQuery>,
) -> Result<web::Json<AnomalyPage>, ApiError> {
    let scope = p.require(Need::Read)?;
    let (mut filter, domain) = q.parse()?;
    if let Some(d) = domain {
        filter.domain_id = Some(state.store.domain_by_name(scope, &d).await?.id);
    }
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor.clone(),
    };
    let limit = page.limit()?;
    let after = page
        .after::<(i16, i32, i64)>()?
        .map(|(severity_rank, last_seen_day, id)| QueueKey {
            severity_rank,
            last_seen_day,
            id,
        });
    let rows = state
        .store
        .anomaly_queue(scope, &filter, after, limit)
        .await?;
    let next_cursor = next(&rows, limit, |a| (a.severity_rank, a.last_seen_day, a.id));
    Ok(web::Json(AnomalyPage {
        items: rows.iter().map(Into::into).collect(),
        next_cursor,
    }))
}

async fn detail(state: &AppState, p: &Principal, id: i64) -> Result<AnomalyDetail, ApiError> {
    let (a, reviews) = state.store.anomaly_detail(p.scope(), id).await?;
    Ok(AnomalyDetail {
        anomaly: (&a).into(),
        evidence: a.evidence,
        explanation: a.explanation,
        reviews: reviews.into_iter().map(Into::into).collect(),
    })
}

/// One anomaly with its evidence, explanation and review history.
#[utoipa::path(
    tag = "anomalies",
    params(("anomaly_id" = i64, Path, description = "anomaly id")),
    responses(
        (status = 200, body = AnomalyDetail),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/anomalies/{anomaly_id}")]
pub async fn get_anomaly(
    p: Principal,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<web::Json<AnomalyDetail>, ApiError> {
    p.require(Need::Read)?;
    Ok(web::Json(detail(&state, &p, *id).await?))
}

/// A review action.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewInput {
    /// `acknowledge`, `resolve`, `dismiss` (a false positive: stays quiet) or `reopen`.
    pub action: String,
    /// Up to 4000 characters.
    pub note: Option<String>,
    /// Who works on it (up to 200 characters).
    pub assignee: Option<String>,
}

/// Review an anomaly; the history of reviews is kept.
#[utoipa::path(
    tag = "anomalies",
    params(("anomaly_id" = i64, Path, description = "anomaly id")),
    request_body = ReviewInput,
    responses(
        (status = 200, body = AnomalyDetail),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/anomalies/{anomaly_id}/review")]
pub async fn review_anomaly(
    p: Principal,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<ReviewInput>,
) -> Result<web::Json<AnomalyDetail>, ApiError> {
    let scope = p.require(Need::Review)?;
    let mut errors = Vec::new();
    if !["acknowledge", "resolve", "dismiss", "reopen"].contains(&body.action.as_str()) {
        errors.push(FieldError {
            field: "action".into(),
            reason: format!(
                "{:?} is not one of acknowledge, resolve, dismiss, reopen",
                body.action
            ),
        });
    }
    if body.note.as_ref().is_some_and(|n| n.chars().count() > 4000) {
        errors.push(FieldError {
            field: "note".into(),
            reason: "longer than 4000 characters".into(),
        });
    }
    if body
        .assignee
        .as_ref()
        .is_some_and(|a| a.trim().is_empty() || a.chars().count() > 200)
    {
        errors.push(FieldError {
            field: "assignee".into(),
            reason: "must be 1–200 characters".into(),
        });
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let before = detail(&state, &p, *id).await?;
    state
        .store
        .anomaly_review_scoped(
            scope,
            *id,
            &body.action,
            body.note.as_deref(),
            body.assignee.as_deref(),
            &p.actor(),
        )
        .await?;
    let after = detail(&state, &p, *id).await?;
    audit(
&state, &p, Some(after.anomaly.tenant_id), &format!("review:{}", body.action), "anomaly", *id, (Some(serde_json::json!({"status": before.anomaly.status, "assignee": before.anomaly.assignee})), Some(serde_json::json!({"status": after.anomaly.status, "assignee": after.anomaly.assignee, "note": body.note}))))
    .await?;
    Ok(web::Json(after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_filter_values_count_once() {
        let repeated = vec!["open"; 1500].join(",");
        assert_eq!(
            enum_values("status", &repeated, &STATUSES),
            Ok(vec!["open"])
        );
        assert_eq!(
            enum_values("status", "resolved, open,resolved,open", &STATUSES),
            Ok(vec!["resolved", "open"])
        );
    }

    #[test]
    fn unknown_filter_values_are_named_once_and_only_a_few() {
        let errors = enum_values("status", "nope,nope,open", &STATUSES).expect_err("refused");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].reason.starts_with("\"nope\" is not one of open"));
        let many = (0..1500)
            .map(|i| format!("x{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let errors = enum_values("status", &many, &STATUSES).expect_err("refused");
        assert_eq!(errors.len(), MAX_REPORTED_VALUES + 1, "{errors:?}");
        let long = "y".repeat(5000);
        let errors = enum_values("status", &long, &STATUSES).expect_err("refused");
        assert!(errors[0].reason.len() < 200, "{errors:?}");
    }
}
