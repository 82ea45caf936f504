//! SMTP TLS reports (RFC 8460) as plain data, and their JSON form.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

/// An SMTP TLS report as data; fields are named after the JSON members they become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsRptReport {
    /// `organization-name`.
    pub organization_name: String,
    /// `date-range/start-datetime`.
    pub start: DateTime<Utc>,
    /// `date-range/end-datetime`.
    pub end: DateTime<Utc>,
    /// `contact-info`; `None` writes `null` (as some reporters do).
    pub contact_info: Option<String>,
    /// `report-id`.
    pub report_id: String,
    /// `policies`, in order.
    pub policies: Vec<TlsRptPolicy>,
}

/// How `mx-host` is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxHost {
    /// Left out.
    Omitted,
    /// A string, as RFC 8460 specifies.
    Single(String),
    /// An array, as Google and others write it.
    List(Vec<String>),
}

/// One policy block with its summary and failure details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsRptPolicy {
    /// `sts`, `tlsa` or `no-policy-found`.
    pub policy_type: String,
    /// `policy-string`; `None` leaves the key out.
    pub policy_strings: Option<Vec<String>>,
    /// `policy-domain`; `None` leaves the key out.
    pub policy_domain: Option<String>,
    /// `mx-host`.
    pub mx_host: MxHost,
    /// `summary/total-successful-session-count`.
    pub successful_sessions: u64,
    /// `summary/total-failure-session-count`.
    pub failed_sessions: u64,
    /// `failure-details`, in order.
    pub failure_details: Vec<TlsRptFailure>,
    /// Write `"failure-details": []` when there are none (otherwise the key is left out).
    pub empty_failure_details: bool,
}

/// One `failure-details` entry, one field per member. `None` fields are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsRptFailure {
    pub result_type: String,
    pub sending_mta_ip: Option<String>,
    pub receiving_mx_hostname: Option<String>,
    pub receiving_mx_helo: Option<String>,
    pub receiving_ip: Option<String>,
    pub failed_session_count: u64,
    pub additional_information: Option<String>,
    pub failure_reason_code: Option<String>,
}

fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl TlsRptReport {
    /// The report as a JSON value.
    pub fn to_json(&self) -> Value {
        let policies: Vec<Value> = self.policies.iter().map(TlsRptPolicy::to_json).collect();
        json!({
            "organization-name": self.organization_name,
            "date-range": {
                "start-datetime": rfc3339(&self.start),
                "end-datetime": rfc3339(&self.end),
            },
            "contact-info": self.contact_info,
            "report-id": self.report_id,
            "policies": policies,
        })
    }

    /// The report as compact JSON bytes.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        self.to_json().to_string().into_bytes()
    }

    /// Total successful sessions over all policies.
    pub fn successful_sessions(&self) -> u64 {
        self.policies.iter().map(|p| p.successful_sessions).sum()
    }

    /// Total failed sessions over all policies.
    pub fn failed_sessions(&self) -> u64 {
        self.policies.iter().map(|p| p.failed_sessions).sum()
    }
}

impl TlsRptPolicy {
    fn to_json(&self) -> Value {
        let mut policy = Map::new();
        policy.insert("policy-type".into(), json!(self.policy_type));
        if let Some(strings) = &self.policy_strings {
            policy.insert("policy-string".into(), json!(strings));
        }
        if let Some(domain) = &self.policy_domain {
            policy.insert("policy-domain".into(), json!(domain));
        }
        match &self.mx_host {
            MxHost::Omitted => {}
            MxHost::Single(h) => {
                policy.insert("mx-host".into(), json!(h));
            }
            MxHost::List(hs) => {
                policy.insert("mx-host".into(), json!(hs));
            }
        }
        let mut block = Map::new();
        block.insert("policy".into(), Value::Object(policy));
        block.insert(
            "summary".into(),
            json!({
                "total-successful-session-count": self.successful_sessions,
                "total-failure-session-count": self.failed_sessions,
            }),
        );
        if !self.failure_details.is_empty() || self.empty_failure_details {
            let details: Vec<Value> = self.failure_details.iter().map(failure_json).collect();
            block.insert("failure-details".into(), Value::Array(details));
        }
        Value::Object(block)
    }
}

fn failure_json(f: &TlsRptFailure) -> Value {
    let mut m = Map::new();
    m.insert("result-type".into(), json!(f.result_type));
    let optional = [
        ("sending-mta-ip", &f.sending_mta_ip),
        ("receiving-mx-hostname", &f.receiving_mx_hostname),
        ("receiving-mx-helo", &f.receiving_mx_helo),
        ("receiving-ip", &f.receiving_ip),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            m.insert(key.into(), json!(v));
        }
    }
    m.insert("failed-session-count".into(), json!(f.failed_session_count));
    if let Some(v) = &f.additional_information {
        m.insert("additional-information".into(), json!(v));
    }
    if let Some(v) = &f.failure_reason_code {
        m.insert("failure-reason-code".into(), json!(v));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn json_has_rfc8460_shape() {
        let start = Utc
            .with_ymd_and_hms(2026, 3, 2, 0, 0, 0)
            .single()
            .expect("valid");
        let report = TlsRptReport {
            organization_name: "Google Inc.".into(),
            start,
            end: start + chrono::Duration::seconds(86_399),
            contact_info: None,
            report_id: "2026-03-02T00:00:00Z_example.com".into(),
            policies: vec![TlsRptPolicy {
                policy_type: "sts".into(),
                policy_strings: Some(vec!["version: STSv1".into(), "mode: enforce".into()]),
                policy_domain: Some("example.com".into()),
                mx_host: MxHost::List(vec!["mx1.example.com".into()]),
                successful_sessions: 10,
                failed_sessions: 2,
                failure_details: vec![TlsRptFailure {
                    result_type: "certificate-expired".into(),
                    sending_mta_ip: Some("209.85.220.41".into()),
                    failed_session_count: 2,
                    ..TlsRptFailure::default()
                }],
                empty_failure_details: false,
            }],
        };
        let v = report.to_json();
        assert_eq!(v["date-range"]["end-datetime"], "2026-03-02T23:59:59Z");
        assert!(v["contact-info"].is_null());
        let p = &v["policies"][0];
        assert_eq!(p["policy"]["mx-host"][0], "mx1.example.com");
        assert_eq!(p["summary"]["total-failure-session-count"], 2);
        assert_eq!(
            p["failure-details"][0]["result-type"],
            "certificate-expired"
        );
        assert!(p["failure-details"][0].get("receiving-ip").is_none());
        let text = String::from_utf8(report.to_json_bytes()).expect("utf-8");
        assert!(text.starts_with('{'));
    }
}
