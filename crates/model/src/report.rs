//! Typed reports. Field names and nesting follow the RFCs; the serialized shape is the
//! public JSON contract of `sealwatch parse --json`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{
    Alignment, DiscoveryMethod, Disposition, DkimResult, DmarcResult, DomainName, MaybeIp,
    OverrideType, PolicyAction, ReportId, SpfResult, SpfScope, TlsPolicyType, TlsResultType,
    rfc3339,
};

/// Which kind of report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportKind {
    DmarcAggregate,
    TlsRpt,
    DmarcFailure,
}

impl ReportKind {
    /// The stable identifier used in JSON, the CLI and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::DmarcAggregate => "dmarc-aggregate",
            ReportKind::TlsRpt => "tls-rpt",
            ReportKind::DmarcFailure => "dmarc-failure",
        }
    }
}

/// Any report sealwatch understands.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Report {
    DmarcAggregate(AggregateReport),
    TlsRpt(TlsReport),
    DmarcFailure(FailureReport),
}

impl Report {
    pub fn kind(&self) -> ReportKind {
        match self {
            Report::DmarcAggregate(_) => ReportKind::DmarcAggregate,
            Report::TlsRpt(_) => ReportKind::TlsRpt,
            Report::DmarcFailure(_) => ReportKind::DmarcFailure,
        }
    }

    /// What was repaired or ignored while parsing.
    pub fn warnings(&self) -> &[String] {
        match self {
            Report::DmarcAggregate(r) => &r.warnings,
            Report::TlsRpt(r) => &r.warnings,
            Report::DmarcFailure(r) => &r.warnings,
        }
    }

    /// Mutable access to the warnings.
    pub fn warnings_mut(&mut self) -> &mut Vec<String> {
        match self {
            Report::DmarcAggregate(r) => &mut r.warnings,
            Report::TlsRpt(r) => &mut r.warnings,
            Report::DmarcFailure(r) => &mut r.warnings,
        }
    }

    /// Where the report came from (email headers, file name).
    pub fn submitter(&self) -> &Submitter {
        match self {
            Report::DmarcAggregate(r) => &r.submitter,
            Report::TlsRpt(r) => &r.submitter,
            Report::DmarcFailure(r) => &r.submitter,
        }
    }

    /// Mutable access to the submitter identity.
    pub fn submitter_mut(&mut self) -> &mut Submitter {
        match self {
            Report::DmarcAggregate(r) => &mut r.submitter,
            Report::TlsRpt(r) => &mut r.submitter,
            Report::DmarcFailure(r) => &mut r.submitter,
        }
    }
}

/// Identity of whoever sent the report, from the carrying email and attachment.
/// Every field is optional: a bare file has none of the email headers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Submitter {
    /// `From:` address.
    pub from: Option<String>,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    #[serde(serialize_with = "rfc3339::serialize_opt")]
    pub date: Option<DateTime<Utc>>,
    /// `TLS-Report-Submitter:` header (RFC 8460 §5.3).
    pub tls_report_submitter: Option<String>,
    /// `TLS-Report-Domain:` header (RFC 8460 §5.3).
    pub tls_report_domain: Option<String>,
    /// Attachment or file name the report was read from.
    pub filename: Option<String>,
}

// ---------------------------------------------------------------------------------------
// DMARC aggregate
// ---------------------------------------------------------------------------------------

/// A DMARC aggregate report (RFC 7489 appendix C, its older drafts, and RFC 9990).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AggregateReport {
    pub org_name: String,
    pub report_id: ReportId,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub begin: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub end: DateTime<Utc>,
    /// The DMARC policy domain the report is about (`policy_published/domain`).
    pub policy_domain: DomainName,
    /// Sum of the `count` of every record.
    pub message_count: u64,
    pub email: Option<String>,
    pub extra_contact_info: Option<String>,
    /// `<error>` elements of the report metadata.
    pub errors: Vec<String>,
    /// RFC 9990 `generator`.
    pub generator: Option<String>,
    /// `<version>` as written (`1.0`, or absent in older reports).
    pub version: Option<String>,
    /// XML namespace of the `feedback` element (`urn:ietf:params:xml:ns:dmarc-2.0` for RFC 9990).
    pub xml_namespace: Option<String>,
    pub policy_published: PolicyPublished,
    pub records: Vec<AggregateRecord>,
    /// Raw XML of RFC 9990 `<extension>` elements, kept unparsed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<String>,
    pub warnings: Vec<String>,
    pub submitter: Submitter,
}

/// `policy_published`: the DMARC record the receiver found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PolicyPublished {
    pub domain: String,
    pub adkim: Option<Alignment>,
    pub aspf: Option<Alignment>,
    pub p: Option<PolicyAction>,
    pub sp: Option<PolicyAction>,
    /// RFC 9990: policy for non-existent subdomains.
    pub np: Option<PolicyAction>,
    /// RFC 7489 only; removed in RFC 9990.
    pub pct: Option<u8>,
    pub fo: Option<String>,
    /// RFC 9990 `testing` (`t=y`).
    pub testing: Option<bool>,
    /// RFC 9990 `discovery_method`.
    pub discovery_method: Option<DiscoveryMethod>,
}

/// One `<record>`: a source IP and identifiers with the messages counted for them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AggregateRecord {
    pub source_ip: MaybeIp,
    pub count: u64,
    pub policy_evaluated: PolicyEvaluated,
    pub identifiers: Identifiers,
    pub auth_results: AuthResults,
}

/// `policy_evaluated`: what DMARC concluded and what the receiver did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyEvaluated {
    pub disposition: Option<Disposition>,
    pub dkim: Option<DmarcResult>,
    pub spf: Option<DmarcResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<PolicyOverrideReason>,
}

/// A policy override reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyOverrideReason {
    #[serde(rename = "type")]
    pub kind: OverrideType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// `identifiers` of a record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Identifiers {
    pub header_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envelope_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envelope_to: Option<String>,
}

/// `auth_results` of a record: every DKIM signature and SPF check reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuthResults {
    pub dkim: Vec<DkimAuthResult>,
    pub spf: Vec<SpfAuthResult>,
}

/// One DKIM result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DkimAuthResult {
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    pub result: DkimResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub human_result: Option<String>,
}

/// One SPF result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpfAuthResult {
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<SpfScope>,
    pub result: SpfResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub human_result: Option<String>,
}

impl AggregateReport {
    /// Recomputes `message_count` from the records.
    pub fn recount(&mut self) {
        self.message_count = self.records.iter().map(|r| r.count).sum();
    }
}

// ---------------------------------------------------------------------------------------
// TLS-RPT
// ---------------------------------------------------------------------------------------

/// An SMTP TLS report (RFC 8460).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TlsReport {
    pub org_name: String,
    pub report_id: ReportId,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub begin: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub end: DateTime<Utc>,
    pub contact_info: Option<String>,
    pub policies: Vec<TlsPolicy>,
    /// Sum of `successful_sessions` over the policies.
    pub successful_sessions: u64,
    /// Sum of `failed_sessions` over the policies.
    pub failed_sessions: u64,
    pub warnings: Vec<String>,
    pub submitter: Submitter,
}

/// One policy block of a TLS report with its summary and failure details.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TlsPolicy {
    pub policy_type: TlsPolicyType,
    pub policy_strings: Vec<String>,
    /// The policy domain; filled from `TLS-Report-Domain` or the file name when the
    /// reporter left it out (a warning says so).
    pub policy_domain: Option<DomainName>,
    /// MX host patterns, without the `mx: ` prefix some reporters add.
    pub mx_hosts: Vec<String>,
    pub successful_sessions: u64,
    pub failed_sessions: u64,
    pub failure_details: Vec<TlsFailureDetail>,
}

impl TlsPolicy {
    /// The MTA-STS `mode` from the policy strings (`enforce`, `testing`, `none`).
    pub fn sts_mode(&self) -> Option<&str> {
        if self.policy_type != TlsPolicyType::Sts {
            return None;
        }
        self.policy_strings.iter().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim().eq_ignore_ascii_case("mode")).then(|| value.trim())
        })
    }
}

/// One `failure-details` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsFailureDetail {
    pub result_type: TlsResultType,
    pub sending_mta_ip: Option<MaybeIp>,
    pub receiving_mx_hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiving_mx_helo: Option<String>,
    pub receiving_ip: Option<MaybeIp>,
    pub failed_sessions: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_information: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason_code: Option<String>,
}

// ---------------------------------------------------------------------------------------
// DMARC failure (ARF)
// ---------------------------------------------------------------------------------------

/// How a failure report was packaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureFormat {
    /// RFC 5965 / 6591 / 9991 `message/feedback-report`.
    Arf,
    /// A gateway's plain-text failure notice without a machine-readable part.
    PlainText,
}

/// A DMARC failure (forensic) report: one message that failed authentication.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailureReport {
    /// Reporter: `From:` domain of the carrying email.
    pub org_name: Option<String>,
    /// The carrying email's `Message-ID`.
    pub report_id: Option<String>,
    /// Arrival date of the failed message (both ends of the window).
    #[serde(serialize_with = "rfc3339::serialize_opt")]
    pub begin: Option<DateTime<Utc>>,
    #[serde(serialize_with = "rfc3339::serialize_opt")]
    pub end: Option<DateTime<Utc>>,
    pub format: FailureFormat,
    /// `Feedback-Type` (`auth-failure`, `abuse`, …).
    pub feedback_type: Option<String>,
    pub reported_domain: Option<DomainName>,
    pub source_ip: Option<MaybeIp>,
    pub auth_failure: Option<String>,
    pub authentication_results: Vec<String>,
    pub original_mail_from: Option<String>,
    pub original_rcpt_to: Option<String>,
    pub delivery_result: Option<String>,
    pub dkim_domain: Option<String>,
    pub dkim_selector: Option<String>,
    pub user_agent: Option<String>,
    /// `Incidents` (defaults to 1).
    pub incidents: u64,
    /// Every field of the feedback report, as written (lower-cased names).
    pub fields: BTreeMap<String, Vec<String>>,
    pub warnings: Vec<String>,
    pub submitter: Submitter,
}
