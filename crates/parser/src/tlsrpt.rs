//! SMTP TLS reports (RFC 8460 JSON), read leniently.
//!
//! Every field is optional except what identifies the report. Known deviations are
//! repaired with a warning: `mx-host` as a string or an array, `mx: ` prefixes, a TLSA
//! `policy-string` holding one JSON-encoded array, `contact-info: null`, counts written as
//! strings, key names with `_` instead of `-`, a missing `policy-domain` (taken from the
//! `TLS-Report-Domain` header or the file name), a single policy object instead of an array,
//! and unknown result types (kept verbatim). A document that ends before its last value is
//! closed is [`ParseError::Truncated`]; data after a complete document is ignored.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use sealwatch_model::{
    DomainName, Leniency, MaybeIp, ReportId, Submitter, TlsFailureDetail, TlsPolicy, TlsPolicyType,
    TlsReport, TlsResultType,
};
use serde_json::{Map, Value};

use crate::error::{ParseError, Truncation};
use crate::hints::Hints;
use crate::warnings::Warnings;

/// Most JSON values (and keys) one document may have. A `serde_json::Value` costs 32 bytes
/// or more for as little as two bytes of input (`0,`): a 100 KB gzip of 100 MiB of `0,`
/// cost 1.8 GB. Real reports have a few thousand.
const MAX_JSON_VALUES: usize = 1_000_000;

/// Parses a TLS-RPT JSON document.
pub(crate) fn parse_tls_report(bytes: &[u8], hints: &Hints<'_>) -> Result<TlsReport, ParseError> {
    let mut w = Warnings::default();
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // Every value or key but the first follows one of these (counted in strings too).
    let separators = memchr::memchr3_iter(b',', b':', b'[', bytes)
        .chain(memchr::memchr_iter(b'{', bytes))
        .take(MAX_JSON_VALUES + 1)
        .count();
    if separators > MAX_JSON_VALUES {
        return Err(ParseError::InvalidJson(format!(
            "document has more than {MAX_JSON_VALUES} values; not read"
        )));
    }
    let root: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e)
            if e.classify() == serde_json::error::Category::Syntax
                && e.to_string().contains("trailing") =>
        {
            let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
            match stream.next() {
                Some(Ok(v)) => {
                    w.push("trailing data after the JSON document ignored");
                    v
                }
                _ => return Err(json_error(&e, bytes)),
            }
        }
        Err(e) => {
            // Invalid UTF-8 is the other common breakage: retry after lossy decoding.
            if std::str::from_utf8(bytes).is_err() {
                let text = String::from_utf8_lossy(bytes);
                match serde_json::from_str::<Value>(&text) {
                    Ok(v) => {
                        w.push("invalid UTF-8 replaced");
                        v
                    }
                    Err(_) => return Err(json_error(&e, bytes)),
                }
            } else {
                return Err(json_error(&e, bytes));
            }
        }
    };
    let Value::Object(obj) = root else {
        return Err(ParseError::InvalidJson(
            "top level is not a JSON object".to_owned(),
        ));
    };
    if get(&obj, "policies").is_none() && get(&obj, "date-range").is_none() {
        return Err(ParseError::NotAReport(
            "JSON document is not a TLS report (no \"policies\" or \"date-range\")".to_owned(),
        ));
    }

    let contact_info = get(&obj, "contact-info").and_then(|v| text(v, &mut w, "contact-info"));
    let org_name =
        match get(&obj, "organization-name").and_then(|v| text(v, &mut w, "organization-name")) {
            Some(o) => o,
            None => {
                let fallback = contact_info
                    .as_deref()
                    .and_then(|c| c.rsplit_once('@').map(|(_, d)| d.to_owned()))
                    .or_else(|| hints.submitter.and_then(|s| s.tls_report_submitter.clone()))
                    .or_else(|| hints.filename_part(0).map(str::to_owned))
                    .ok_or(ParseError::TlsMissingField("organization-name"))?;
                w.push(format!("no organization-name; using {fallback:?}"));
                fallback
            }
        };
    let report_id = match get(&obj, "report-id").and_then(|v| text(v, &mut w, "report-id")) {
        Some(id) => ReportId::parse(&id).map_err(|e| ParseError::TlsInvalidField {
            field: "report-id",
            detail: e.to_string(),
        })?,
        None => return Err(ParseError::TlsMissingField("report-id")),
    };
    let range = get(&obj, "date-range")
        .and_then(Value::as_object)
        .ok_or(ParseError::TlsMissingField("date-range"))?;
    let begin = datetime(get(range, "start-datetime"), "start-datetime", &mut w)?;
    let mut end = datetime(get(range, "end-datetime"), "end-datetime", &mut w)?;
    let mut begin = begin;
    if end < begin {
        w.push("end-datetime is before start-datetime; swapped");
        std::mem::swap(&mut begin, &mut end);
    }

    let fallback_domain = hints
        .tls_report_domain()
        .map(|d| (d, "TLS-Report-Domain header"))
        .or_else(|| hints.filename_part(1).map(|d| (d, "file name")));

    let policies_value = get(&obj, "policies");
    let policy_values: Vec<&Value> = match policies_value {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v @ Value::Object(_)) => {
            w.push("\"policies\" was a single object, not an array");
            vec![v]
        }
        Some(Value::Null) | None => {
            w.push("report has no policies");
            Vec::new()
        }
        Some(_) => {
            return Err(ParseError::TlsInvalidField {
                field: "policies",
                detail: "not an array".to_owned(),
            });
        }
    };
    let mut policies = Vec::with_capacity(policy_values.len());
    for (i, pv) in policy_values.into_iter().enumerate() {
        let n = i.saturating_add(1);
        match policy(pv, n, fallback_domain, &mut w) {
            Some(p) => policies.push(p),
            None => w.push(format!("policy {n} dropped: not an object")),
        }
    }
    if policies.is_empty() && !w.is_empty() {
        // keep going: an empty report is still a report (a heartbeat of zero sessions)
    }
    // Counts are attacker-controlled u64s: saturate rather than overflow.
    let successful_sessions = policies
        .iter()
        .fold(0u64, |sum, p| sum.saturating_add(p.successful_sessions));
    let failed_sessions = policies
        .iter()
        .fold(0u64, |sum, p| sum.saturating_add(p.failed_sessions));
    Ok(TlsReport {
        org_name,
        report_id,
        begin,
        end,
        contact_info,
        policies,
        successful_sessions,
        failed_sessions,
        warnings: w.into_vec(),
        submitter: Submitter::default(),
    })
}

/// A document that ends inside a value was cut short; any other error is invalid JSON.
fn json_error(e: &serde_json::Error, bytes: &[u8]) -> ParseError {
    if e.classify() == serde_json::error::Category::Eof {
        ParseError::truncated(Truncation::Json, bytes.len())
    } else {
        ParseError::InvalidJson(e.to_string())
    }
}

fn policy(
    value: &Value,
    n: usize,
    fallback_domain: Option<(&str, &str)>,
    w: &mut Warnings,
) -> Option<TlsPolicy> {
    let obj = value.as_object()?;
    let empty = Map::new();
    let pol = get(obj, "policy")
        .and_then(Value::as_object)
        .unwrap_or_else(|| {
            w.push(format!("policy {n} has no \"policy\" object"));
            &empty
        });
    let policy_type = match get(pol, "policy-type").and_then(|v| text(v, w, "policy-type")) {
        Some(t) => {
            let (t, how) = TlsPolicyType::parse_lenient(&t);
            match how {
                Leniency::Exact => {}
                Leniency::Unknown => w.push(format!("unknown policy-type {:?} kept", t.as_str())),
                _ => w.push(format!("policy-type normalised to {:?}", t.as_str())),
            }
            t
        }
        None => {
            w.push(format!("policy {n} has no policy-type"));
            TlsPolicyType::Other(String::new())
        }
    };
    let mut policy_strings = strings(get(pol, "policy-string"));
    if policy_strings.len() == 1
        && policy_strings[0].trim_start().starts_with('[')
        && let Ok(inner) = serde_json::from_str::<Vec<String>>(&policy_strings[0])
    {
        w.push("policy-string held a JSON-encoded array; decoded");
        policy_strings = inner;
    }
    let mx_raw = strings(get(pol, "mx-host"));
    let mut mx_hosts = Vec::with_capacity(mx_raw.len());
    for mx in mx_raw {
        let t = mx.trim();
        let stripped = t
            .strip_prefix("mx:")
            .or_else(|| t.strip_prefix("MX:"))
            .map(str::trim);
        if stripped.is_some() {
            w.push("\"mx: \" prefix removed from mx-host");
        }
        let host = stripped
            .unwrap_or(t)
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if !host.is_empty() {
            mx_hosts.push(host);
        }
    }
    let policy_domain = match get(pol, "policy-domain").and_then(|v| text(v, w, "policy-domain")) {
        Some(raw) => match DomainName::parse(&raw) {
            Ok(d) => Some(d),
            Err(e) => {
                w.push(format!("policy {n}: invalid policy-domain {raw:?} ({e})"));
                None
            }
        },
        None => None,
    };
    let policy_domain = policy_domain.or_else(|| {
        let (raw, source) = fallback_domain?;
        let d = DomainName::parse(raw).ok()?;
        w.push(format!(
            "policy {n}: no policy-domain; taken from the {source}"
        ));
        Some(d)
    });
    let summary = get(obj, "summary").and_then(Value::as_object);
    if summary.is_none() {
        w.push(format!("policy {n} has no summary; counts taken as 0"));
    }
    let count_of = |key: &str, w: &mut Warnings| -> u64 {
        summary
            .and_then(|s| get(s, key))
            .map(|v| count(v, w, key))
            .unwrap_or(0)
    };
    let successful_sessions = count_of("total-successful-session-count", w);
    let failed_sessions = count_of("total-failure-session-count", w);
    let mut failure_details = Vec::new();
    match get(obj, "failure-details") {
        Some(Value::Array(items)) => {
            for item in items {
                match item.as_object() {
                    Some(d) => failure_details.push(failure_detail(d, w)),
                    None => w.push("failure-details entry that is not an object ignored"),
                }
            }
        }
        Some(Value::Null) | None => {}
        Some(_) => w.push("failure-details that is not an array ignored"),
    }
    Some(TlsPolicy {
        policy_type,
        policy_strings,
        policy_domain,
        mx_hosts,
        successful_sessions,
        failed_sessions,
        failure_details,
    })
}

fn failure_detail(d: &Map<String, Value>, w: &mut Warnings) -> TlsFailureDetail {
    let result_type = match get(d, "result-type").and_then(|v| text(v, w, "result-type")) {
        Some(t) => {
            let (t, how) = TlsResultType::parse_lenient(&t);
            match how {
                Leniency::Exact => {}
                Leniency::Unknown => w.push(format!("unknown result-type {:?} kept", t.as_str())),
                _ => w.push(format!("result-type normalised to {:?}", t.as_str())),
            }
            t
        }
        None => {
            w.push("failure detail without result-type");
            TlsResultType::Other(String::new())
        }
    };
    let ip = |key: &str, w: &mut Warnings| {
        get(d, key).and_then(|v| text(v, w, key)).map(|s| {
            let ip = MaybeIp::parse(&s);
            if let MaybeIp::Invalid(raw) = &ip {
                w.push(format!("{key} {raw:?} is not an IP address"));
            }
            ip
        })
    };
    TlsFailureDetail {
        result_type,
        sending_mta_ip: ip("sending-mta-ip", w),
        receiving_mx_hostname: get(d, "receiving-mx-hostname")
            .and_then(|v| text(v, w, "receiving-mx-hostname"))
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase()),
        receiving_mx_helo: get(d, "receiving-mx-helo")
            .and_then(|v| text(v, w, "receiving-mx-helo")),
        receiving_ip: ip("receiving-ip", w),
        failed_sessions: get(d, "failed-session-count")
            .map(|v| count(v, w, "failed-session-count"))
            .unwrap_or(0),
        additional_information: get(d, "additional-information")
            .and_then(|v| text(v, w, "additional-information")),
        failure_reason_code: get(d, "failure-reason-code")
            .and_then(|v| text(v, w, "failure-reason-code")),
    }
}

/// Looks a key up exactly, then ignoring case and `_`/`-` differences.
fn get<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    if let Some(v) = obj.get(key) {
        return Some(v);
    }
    obj.iter().find_map(|(k, v)| {
        (k.len() == key.len()
            && k.bytes().zip(key.bytes()).all(|(a, b)| {
                let a = if a == b'_' {
                    b'-'
                } else {
                    a.to_ascii_lowercase()
                };
                a == b
            }))
        .then_some(v)
    })
}

/// A string value; numbers are accepted as text, empty strings and null are absent.
fn text(v: &Value, w: &mut Warnings, key: &str) -> Option<String> {
    match v {
        Value::String(s) => {
            let t = s.trim();
            (!t.is_empty()).then(|| t.to_owned())
        }
        Value::Number(n) => Some(n.to_string()),
        Value::Null => None,
        Value::Array(items) if items.len() == 1 => text(&items[0], w, key),
        _ => {
            w.push(format!("{key} has an unexpected JSON type; ignored"));
            None
        }
    }
}

/// A string or an array of strings.
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn count(v: &Value, w: &mut Warnings, key: &str) -> u64 {
    match v {
        Value::Number(n) => n.as_u64().unwrap_or_else(|| {
            w.push(format!(
                "{key} {n} is not a non-negative integer; taken as 0"
            ));
            0
        }),
        Value::String(s) => s.trim().parse().unwrap_or_else(|_| {
            w.push(format!("{key} {s:?} is not a number; taken as 0"));
            0
        }),
        Value::Null => 0,
        _ => {
            w.push(format!("{key} has an unexpected JSON type; taken as 0"));
            0
        }
    }
}

fn datetime(
    v: Option<&Value>,
    key: &'static str,
    w: &mut Warnings,
) -> Result<DateTime<Utc>, ParseError> {
    let v = v.ok_or(ParseError::TlsMissingField(key))?;
    if let Some(secs) = v.as_i64() {
        w.push(format!("{key} was epoch seconds, not RFC 3339"));
        return DateTime::from_timestamp(secs, 0).ok_or(ParseError::TlsInvalidField {
            field: key,
            detail: format!("{secs} is out of range"),
        });
    }
    let raw = v
        .as_str()
        .map(str::trim)
        .ok_or(ParseError::TlsInvalidField {
            field: key,
            detail: "not a string".to_owned(),
        })?;
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    // Lenient forms: space instead of T, missing zone (UTC assumed), date only.
    let normalized = raw.replacen(' ', "T", 1);
    if let Ok(t) = DateTime::parse_from_rfc3339(&normalized) {
        w.push(format!("{key} {raw:?} was not strict RFC 3339"));
        return Ok(t.with_timezone(&Utc));
    }
    let no_zone = normalized.trim_end_matches(['Z', 'z']);
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(no_zone, fmt) {
            w.push(format!("{key} {raw:?} had no time zone; UTC assumed"));
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        w.push(format!("{key} {raw:?} was a date without a time"));
        return Ok(t.and_utc());
    }
    Err(ParseError::TlsInvalidField {
        field: key,
        detail: format!("{raw:?} is not an RFC 3339 date-time"),
    })
}

#[cfg(test)]
mod tests {
    use sealwatch_model::Report;

    use super::MAX_JSON_VALUES;
    use crate::Parser;

    /// Found measuring memory after the fuzz runs: 100 MiB of `0,` in a policies array
    /// (a 100 KB gzip) became 1.8 GB of `serde_json::Value`s.
    #[test]
    fn documents_with_too_many_values_are_refused_before_parsing() {
        let doc = |n: usize| format!("{{\"policies\": [{}0]}}", "0,".repeat(n));
        let err = Parser::default()
            .parse(doc(1000).as_bytes(), None)
            .expect_err("no report-id");
        assert_eq!(err.code(), "tlsrpt-missing-field");
        let err = Parser::default()
            .parse(doc(MAX_JSON_VALUES).as_bytes(), None)
            .expect_err("too many values");
        assert_eq!(err.code(), "invalid-json");
        assert!(err.to_string().contains("more than"), "{err}");
    }

    /// Found with the fuzz harness: session totals summed attacker-controlled u64 counts
    /// and overflowed (a panic with overflow checks, a wrapped total without).
    #[test]
    fn session_totals_saturate() {
        let policy = r#"{"policy": {"policy-type": "sts", "policy-domain": "example.com"},
            "summary": {"total-successful-session-count": 18446744073709551615,
                        "total-failure-session-count": 18446744073709551615}}"#;
        let input = format!(
            r#"{{"organization-name": "o", "report-id": "r",
                "date-range": {{"start-datetime": "2023-11-14T00:00:00Z",
                               "end-datetime": "2023-11-14T23:59:59Z"}},
                "policies": [{policy}, {policy}]}}"#
        );
        let parsed = Parser::default()
            .parse(input.as_bytes(), None)
            .expect("a report");
        let Some(Report::TlsRpt(t)) = parsed.reports.first() else {
            panic!("not a TLS report: {parsed:?}");
        };
        assert_eq!(t.policies.len(), 2);
        assert_eq!(t.successful_sessions, u64::MAX);
        assert_eq!(t.failed_sessions, u64::MAX);
    }
}
