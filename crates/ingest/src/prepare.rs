//! One raw message → one [`NewMessage`]: parse, route each report, compute dedupe keys,
//! turn every failure into a quarantine entry with its reason. Pure CPU work.

// Counts come from sender-controlled input: none may wrap or panic.
#![deny(clippy::arithmetic_side_effects)]

use sealwatch_model::{DomainName, Report, ReportKind};
use sealwatch_parser::Parser;
use sealwatch_store::{Item, MessageSource, NewMessage, ReportItem};
use sha2::{Digest, Sha256};

use crate::route::Router;

/// A prepared message plus what it will contribute, for progress reporting.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub message: NewMessage,
    pub reports: usize,
    pub quarantined: usize,
    /// The policy domains the message's reports name (routed or not), as they claim them.
    pub claimed: Vec<DomainName>,
    /// The kind of every report read from the message, routed or not.
    pub kinds: Vec<ReportKind>,
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest.iter() {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 0x0f)]));
    }
    out
}

/// The identity of a report for dedupe: kind, reporter, report id, policy domain and date
/// range. A reporter that reuses a report id for another date range produces another key.
pub fn dedupe_key(report: &Report, policy_domain: &str) -> String {
    let parts = match report {
        Report::DmarcAggregate(r) => format!(
            "dmarc-aggregate\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            r.org_name.trim().to_lowercase(),
            r.email.as_deref().unwrap_or_default().trim().to_lowercase(),
            r.report_id,
            policy_domain,
            r.begin.timestamp(),
            r.end.timestamp()
        ),
        Report::TlsRpt(r) => format!(
            "tls-rpt\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            r.org_name.trim().to_lowercase(),
            r.contact_info
                .as_deref()
                .unwrap_or_default()
                .trim()
                .to_lowercase(),
            r.report_id,
            policy_domain,
            r.begin.timestamp(),
            r.end.timestamp()
        ),
        Report::DmarcFailure(r) => format!(
            "dmarc-failure\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            r.org_name.as_deref().unwrap_or_default(),
            r.report_id.as_deref().unwrap_or_default(),
            policy_domain,
            r.begin.map(|t| t.timestamp()).unwrap_or_default(),
            r.source_ip
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        ),
    };
    sha256_hex(parts.as_bytes())
}

/// Hash of what a report says (not how it arrived): records or policies and metadata.
fn content_hash(report: &Report) -> String {
    let body = match report {
        Report::DmarcAggregate(r) => {
            serde_json::to_vec(&(&r.policy_published, &r.records, r.message_count))
        }
        Report::TlsRpt(r) => serde_json::to_vec(&r.policies),
        Report::DmarcFailure(r) => serde_json::to_vec(&r.fields),
    };
    sha256_hex(&body.unwrap_or_default())
}

/// Domains a report may be routed by, most specific first.
fn routing_domains(report: &Report) -> Vec<DomainName> {
    let mut out = Vec::new();
    match report {
        Report::DmarcAggregate(r) => out.push(r.policy_domain.clone()),
        Report::TlsRpt(r) => {
            out.extend(r.policies.iter().filter_map(|p| p.policy_domain.clone()));
            if let Some(d) = r
                .submitter
                .tls_report_domain
                .as_deref()
                .and_then(|d| DomainName::parse(d).ok())
            {
                out.push(d);
            }
            // DANE reports name an MX host as policy domain: the MX often lives under the
            // tenant's domain, which the parent walk in the router handles.
        }
        Report::DmarcFailure(r) => out.extend(r.reported_domain.clone()),
    }
    out.dedup();
    out
}

/// Parses and routes one raw message. `only_tenant` restricts routing to one tenant's
/// domains (a per-tenant mailbox).
pub fn prepare(
    parser: &Parser,
    router: &Router,
    bytes: Vec<u8>,
    name: Option<&str>,
    source: MessageSource,
    only_tenant: Option<i64>,
) -> Prepared {
    let sha256 = sha256_hex(&bytes);
    let mut items = Vec::new();
    let mut message_id = None;
    let mut claimed: Vec<DomainName> = Vec::new();
    let mut kinds: Vec<ReportKind> = Vec::new();
    match parser.parse(&bytes, name) {
        Ok(parsed) => {
            for report in parsed.reports {
                kinds.push(report.kind());
                if message_id.is_none() {
                    message_id = report.submitter().message_id.clone();
                }
                let candidates = routing_domains(&report);
                claimed.extend(candidates.iter().cloned());
                let route = candidates
                    .iter()
                    .find_map(|d| router.route(d, only_tenant).map(|r| (d, r)));
                match route {
                    Some((domain, route)) => {
                        items.push(Item::Report(Box::new(ReportItem {
                            tenant_id: route.tenant_id,
                            domain_id: route.domain_id,
                            dedupe_key: dedupe_key(&report, domain.as_str()),
                            content_hash: content_hash(&report),
                            report,
                        })));
                    }
                    None => {
                        let shown = if candidates.is_empty() {
                            "the report names no policy domain".to_owned()
                        } else {
                            let list: Vec<&str> =
                                candidates.iter().map(DomainName::as_str).collect();
                            match only_tenant {
                                Some(_) => format!(
                                    "policy domain {} is not a domain of this mailbox's tenant",
                                    list.join(", ")
                                ),
                                None => format!(
                                    "policy domain {} belongs to no tenant",
                                    list.join(", ")
                                ),
                            }
                        };
                        items.push(Item::Quarantine {
                            tenant_id: only_tenant,
                            reason: "unrouted".to_owned(),
                            detail: format!(
                                "{} report {} from {}: {shown}",
                                report.kind().as_str(),
                                report_label(&report),
                                reporter(&report)
                            ),
                            part: report.submitter().filename.clone(),
                        });
                    }
                }
            }
            for failure in parsed.failures {
                items.push(Item::Quarantine {
                    tenant_id: only_tenant,
                    reason: failure.error.code().to_owned(),
                    detail: failure.error.to_string(),
                    part: Some(failure.part),
                });
            }
        }
        Err(e) => items.push(Item::Quarantine {
            tenant_id: only_tenant,
            reason: e.code().to_owned(),
            detail: e.to_string(),
            part: None,
        }),
    }
    let reports = items
        .iter()
        .filter(|i| matches!(i, Item::Report(_)))
        .count();
    let quarantined = items.len().saturating_sub(reports);
    Prepared {
        message: NewMessage {
            sha256,
            bytes,
            source,
            message_id,
            items,
            received_at: None,
        },
        reports,
        quarantined,
        claimed,
        kinds,
    }
}

fn report_label(report: &Report) -> String {
    match report {
        Report::DmarcAggregate(r) => r.report_id.to_string(),
        Report::TlsRpt(r) => r.report_id.to_string(),
        Report::DmarcFailure(r) => r.report_id.clone().unwrap_or_default(),
    }
}

fn reporter(report: &Report) -> String {
    match report {
        Report::DmarcAggregate(r) => r.org_name.clone(),
        Report::TlsRpt(r) => r.org_name.clone(),
        Report::DmarcFailure(r) => r.org_name.clone().unwrap_or_else(|| "unknown".into()),
    }
}
