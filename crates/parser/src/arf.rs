//! DMARC failure reports: RFC 5965 / 6591 / 9991 `message/feedback-report` parts, and the
//! plain-text failure notices some gateways send instead.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sealwatch_model::{DomainName, FailureFormat, FailureReport, MaybeIp, Submitter};

use crate::warnings::Warnings;

/// Lines of a `message/feedback-report` part read. A report has a few dozen; every line
/// read is kept in the report's `fields` (about 30 times its size in memory).
const MAX_FIELD_LINES: usize = 1000;

/// Parses the body of a `message/feedback-report` part.
pub(crate) fn parse_feedback_report(body: &[u8], submitter: &Submitter) -> FailureReport {
    let text = String::from_utf8_lossy(body);
    let fields = header_fields(&text);
    let mut report = build(fields, FailureFormat::Arf, submitter);
    if text.lines().nth(MAX_FIELD_LINES).is_some() {
        report.warnings.push(format!(
            "feedback report has more than {MAX_FIELD_LINES} lines; the rest ignored"
        ));
    }
    report
}

/// Recognises a plain-text DMARC failure notice (no machine-readable part) by its subject
/// and body, and extracts what it can.
pub(crate) fn parse_plain_failure(body: &str, submitter: &Submitter) -> Option<FailureReport> {
    let subject = submitter
        .subject
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let looks_like = (subject.contains("dmarc")
        && (subject.contains("failure") || subject.contains("forensic")))
        || body.contains("failed the published DMARC policy");
    if !looks_like {
        return None;
    }
    let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in body.lines().take(200) {
        let Some((k, v)) = line.trim().split_once(':') else {
            continue;
        };
        let key = match k.trim().to_ascii_lowercase().as_str() {
            "sender domain" => "reported-domain",
            "sender ip address" | "sender ip" => "source-ip",
            "received date" => "arrival-date",
            "dmarc results" => "delivery-result",
            _ => continue,
        };
        fields
            .entry(key.to_owned())
            .or_default()
            .push(v.trim().to_owned());
    }
    fields
        .entry("feedback-type".to_owned())
        .or_insert_with(|| vec!["auth-failure".to_owned()]);
    let mut report = build(fields, FailureFormat::PlainText, submitter);
    report
        .warnings
        .push("plain-text failure notice without a machine-readable part".to_owned());
    Some(report)
}

/// Parses `Name: value` lines with folding; names are lower-cased.
fn header_fields(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines().take(MAX_FIELD_LINES) {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = current.as_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = current.take() {
            fields.entry(k).or_default().push(v);
        }
        if line.trim().is_empty() {
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            current = Some((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    if let Some((k, v)) = current {
        fields.entry(k).or_default().push(v);
    }
    fields
}

fn build(
    fields: BTreeMap<String, Vec<String>>,
    format: FailureFormat,
    submitter: &Submitter,
) -> FailureReport {
    let mut w = Warnings::default();
    let first = |k: &str| fields.get(k).and_then(|v| v.first()).cloned();
    let arrival = first("arrival-date").and_then(|d| {
        let parsed = parse_mail_date(&d);
        if parsed.is_none() {
            w.push(format!("Arrival-Date {d:?} could not be read"));
        }
        parsed
    });
    let reported_domain = first("reported-domain").and_then(|d| match DomainName::parse(&d) {
        Ok(d) => Some(d),
        Err(e) => {
            w.push(format!("Reported-Domain {d:?} is not a domain name ({e})"));
            None
        }
    });
    // `Source-IP: 192.0.2.1 (host.example)`: the comment is not part of the address.
    let source_ip =
        first("source-ip").and_then(|s| s.split_whitespace().next().map(MaybeIp::parse));
    let incidents = first("incidents")
        .and_then(|i| i.trim().parse().ok())
        .unwrap_or(1);
    let org_name = submitter.from.as_deref().and_then(|f| {
        f.rsplit_once('@')
            .map(|(_, d)| d.trim_end_matches('>').to_ascii_lowercase())
    });
    let mut report = FailureReport {
        org_name,
        report_id: submitter.message_id.clone(),
        begin: arrival.or(submitter.date),
        end: arrival.or(submitter.date),
        format,
        feedback_type: first("feedback-type"),
        reported_domain,
        source_ip,
        auth_failure: first("auth-failure"),
        authentication_results: fields
            .get("authentication-results")
            .cloned()
            .unwrap_or_default(),
        original_mail_from: first("original-mail-from"),
        original_rcpt_to: first("original-rcpt-to"),
        delivery_result: first("delivery-result"),
        dkim_domain: first("dkim-domain"),
        dkim_selector: first("dkim-selector"),
        user_agent: first("user-agent"),
        incidents,
        fields,
        warnings: Vec::new(),
        submitter: submitter.clone(),
    };
    report.warnings = w.into_vec();
    report
}

/// Parses an RFC 5322 date, tolerating obsolete zone names (`EDT`) and extra spaces.
pub(crate) fn parse_mail_date(raw: &str) -> Option<DateTime<Utc>> {
    let cleaned = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    let cleaned = cleaned.split(" (").next().unwrap_or(&cleaned);
    DateTime::parse_from_rfc2822(cleaned)
        .or_else(|e| {
            // A wrong day-of-week name is common: drop it and retry.
            match cleaned.split_once(", ") {
                Some((_, rest)) => DateTime::parse_from_rfc2822(rest),
                None => Err(e),
            }
        })
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_report_fields_are_read() {
        let body = b"Feedback-Type: auth-failure\r\nUser-Agent: Test/1.0\r\nVersion: 1\r\n\
Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT\r\nSource-IP: 192.0.2.1\r\n\
Authentication-Results: mx.example.com;\r\n  dmarc=fail header.from=example.net\r\n\
Reported-Domain: example.net\r\nAuth-Failure: dmarc\r\n";
        let r = parse_feedback_report(body, &Submitter::default());
        assert_eq!(r.feedback_type.as_deref(), Some("auth-failure"));
        assert_eq!(
            r.reported_domain.as_ref().map(|d| d.as_str()),
            Some("example.net")
        );
        assert_eq!(
            r.source_ip.as_ref().map(|i| i.to_string()).as_deref(),
            Some("192.0.2.1")
        );
        assert_eq!(
            r.authentication_results,
            vec!["mx.example.com; dmarc=fail header.from=example.net".to_owned()]
        );
        assert_eq!(
            r.begin.map(|d| d.to_rfc3339()).as_deref(),
            Some("2005-03-08T18:00:00+00:00")
        );
    }

    /// Found measuring memory after the fuzz runs: a base64 feedback-report part of 3
    /// million `key:value` lines (a 35 MB email) became 3 million fields (855 MB).
    #[test]
    fn feedback_report_lines_are_bounded() {
        let mut body = b"Feedback-Type: auth-failure\n".to_vec();
        for i in 0..MAX_FIELD_LINES * 3 {
            body.extend(format!("X-{i}: v\n").as_bytes());
        }
        let r = parse_feedback_report(&body, &Submitter::default());
        assert_eq!(r.feedback_type.as_deref(), Some("auth-failure"));
        assert_eq!(r.fields.len(), MAX_FIELD_LINES);
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("lines; the rest ignored"))
        );
    }
}
