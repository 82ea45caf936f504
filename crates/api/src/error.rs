//! Errors as RFC 9457 problem details (`application/problem+json`) with a stable `code`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use sealwatch_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// One invalid input: which field and why.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// The field (JSON member or query parameter), e.g. `port`.
    pub field: String,
    /// Why it was refused.
    pub reason: String,
}

/// A problem detail (RFC 9457). `code` is stable; `detail` is for people.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:sealwatch:problem:<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code, e.g. `validation-failed`, `not-found`.
    pub code: String,
    /// For `validation-failed`: each invalid field and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// An error answered to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("authentication required")]
    Unauthenticated { detail: String },
    #[error("not allowed for this token")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("too many failed authentications")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("the request took too long")]
    Timeout,
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// One invalid field.
    pub fn field(field: &str, reason: impl Into<String>) -> ApiError {
        ApiError::Validation(vec![FieldError {
            field: field.to_owned(),
            reason: reason.into(),
        }])
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated { .. } => "unauthenticated",
            ApiError::Forbidden => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::Validation(_) => "validation-failed",
            ApiError::BadRequest(_) => "bad-request",
            ApiError::Conflict(_) => "conflict",
            ApiError::TooManyAttempts { .. } => "too-many-auth-failures",
            ApiError::RateLimited { .. } => "rate-limited",
            ApiError::PayloadTooLarge => "payload-too-large",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::Timeout => "timeout",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated { .. } => "Authentication required",
            ApiError::Forbidden => "Forbidden",
            ApiError::NotFound(_) => "Not found",
            ApiError::Validation(_) => "Invalid request",
            ApiError::BadRequest(_) => "Bad request",
            ApiError::Conflict(_) => "Conflict",
            ApiError::TooManyAttempts { .. } => "Too many failed authentications",
            ApiError::RateLimited { .. } => "Too many requests",
            ApiError::PayloadTooLarge => "Payload too large",
            ApiError::UnsupportedMediaType(_) => "Unsupported media type",
            ApiError::Timeout => "Request timed out",
            ApiError::Unavailable(_) => "Service unavailable",
            ApiError::Internal(_) => "Internal error",
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::Unauthenticated { detail } => detail.clone(),
            ApiError::Forbidden => "this token's role does not allow this operation".into(),
            ApiError::NotFound(what) => format!("{what} not found"),
            ApiError::Validation(errors) => errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.reason))
                .collect::<Vec<_>>()
                .join("; "),
            ApiError::BadRequest(d) | ApiError::Conflict(d) | ApiError::Unavailable(d) => d.clone(),
            ApiError::UnsupportedMediaType(d) => d.clone(),
            ApiError::TooManyAttempts { retry_after_secs } => {
                format!(
                    "too many failed authentications from this client or for this token prefix; retry in {retry_after_secs} s (a valid token is still accepted)"
                )
            }
            ApiError::RateLimited { retry_after_secs } => {
                format!("too many requests; retry in {retry_after_secs} s")
            }
            ApiError::PayloadTooLarge => "the request body is larger than allowed".into(),
            ApiError::Timeout => "the request took longer than allowed".into(),
            // The cause is logged, not shown.
            ApiError::Internal(_) => "an internal error occurred".into(),
        }
    }

    /// The problem document.
    pub fn problem(&self) -> Problem {
        Problem {
            problem_type: format!("urn:sealwatch:problem:{}", self.code()),
            title: self.title().to_owned(),
            status: self.status_code().as_u16(),
            detail: self.detail(),
            code: self.code().to_owned(),
            errors: match self {
                ApiError::Validation(e) => e.clone(),
                _ => Vec::new(),
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Validation(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooManyAttempts { .. } | ApiError::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Timeout | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(error = %cause, "internal error");
        }
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        match self {
            ApiError::Unauthenticated { .. } => {
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::TooManyAttempts { retry_after_secs }
            | ApiError::RateLimited { retry_after_secs } => {
                res.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            _ => {}
        }
        res.body(serde_json::to_string(&self.problem()).unwrap_or_default())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(what),
            StoreError::TenantExists(n) => {
                ApiError::Conflict(format!("a tenant named {n:?} already exists"))
            }
            StoreError::DomainTaken(d) => {
                ApiError::Conflict(format!("domain {d} already belongs to a tenant"))
            }
            StoreError::MailboxExists(n) => {
                ApiError::Conflict(format!("a mailbox named {n:?} already exists"))
            }
            StoreError::Invalid(d) => ApiError::BadRequest(d),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// Maps actix's own extractor errors (bad JSON, bad query, oversized body) to problems.
pub(crate) fn json_error(err: actix_web::error::JsonPayloadError) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    match err {
        E::OverflowKnownLength { .. } | E::Overflow { .. } => ApiError::PayloadTooLarge.into(),
        E::ContentType => {
            ApiError::UnsupportedMediaType("expected Content-Type: application/json".into()).into()
        }
        E::Deserialize(e) => {
            let field = e
                .to_string()
                .split('`')
                .nth(1)
                .map(str::to_owned)
                .unwrap_or_else(|| "body".to_owned());
            ApiError::field(&field, e.to_string()).into()
        }
        other => ApiError::BadRequest(other.to_string()).into(),
    }
}

pub(crate) fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::field("query", err.to_string()).into()
}

pub(crate) fn path_error(
    err: actix_web::error::PathError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::field("path", err.to_string()).into()
}

/// Turns any error answer that is not yet a problem document (actix's own 413 of a raw body,
/// a malformed request line, …) into one, keeping its status.
pub(crate) fn problem_for_plain_errors<B>(
    res: actix_web::dev::ServiceResponse<B>,
) -> actix_web::Result<actix_web::middleware::ErrorHandlerResponse<B>> {
    use actix_web::middleware::ErrorHandlerResponse;
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let known = match status {
        StatusCode::PAYLOAD_TOO_LARGE => Some(ApiError::PayloadTooLarge),
        StatusCode::NOT_FOUND => Some(ApiError::NotFound("route".into())),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Some(ApiError::UnsupportedMediaType(
            "this content type is not accepted here".into(),
        )),
        StatusCode::BAD_REQUEST => Some(ApiError::BadRequest("the request is malformed".into())),
        _ => None,
    };
    let response = match known {
        Some(e) => e.error_response(),
        None => {
            let reason = status.canonical_reason().unwrap_or("Error");
            let code = reason.to_ascii_lowercase().replace(' ', "-");
            let problem = Problem {
                problem_type: format!("urn:sealwatch:problem:{code}"),
                title: reason.to_owned(),
                status: status.as_u16(),
                detail: reason.to_owned(),
                code,
                errors: Vec::new(),
            };
            HttpResponse::build(status)
                .insert_header((
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/problem+json"),
                ))
                .body(serde_json::to_string(&problem).unwrap_or_default())
        }
    };
    let (req, _) = res.into_parts();
    Ok(ErrorHandlerResponse::Response(
        actix_web::dev::ServiceResponse::new(req, response).map_into_right_body(),
    ))
}
