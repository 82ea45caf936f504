//! `sealwatch export` (a tenant's reports as JSON lines or CSV) and `sealwatch purge` (the
//! retention purge, run now).

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use chrono::{NaiveDate, Utc};
use sealwatch_store::{ReportFilter, ReportKey, Scope, Store};
use serde_json::json;

use crate::cli::{ExportArgs, ExportFormat, ExportKind, PurgeArgs};
use crate::config::Config;

/// Reports read per page.
const PAGE: u64 = 500;

fn day_start(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp())
        .unwrap_or(0)
}

/// A CSV field: quoted when needed, and defused against spreadsheet formula injection
/// (a report value starting with `=`, `+`, `-`, `@` is prefixed with `'`).
fn csv_field(value: &str) -> String {
    let defused = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

fn csv_line(fields: &[String]) -> String {
    let mut line = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

fn ts(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

pub async fn export(store: &Store, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let tenant = store
        .find_tenant(&args.tenant)
        .await?
        .with_context(|| format!("no tenant named {:?}", args.tenant))?;
    let (from, to) = (day_start(args.from), day_start(args.to) + 86_400);
    if to <= from {
        bail!("--to must not be before --from");
    }
    if args.format == ExportFormat::Csv && args.kind == ExportKind::All {
        bail!("CSV has one row shape per kind: choose --kind dmarc or --kind tls");
    }
    let scope = Scope::Tenant(tenant.id);
    let filter = ReportFilter {
        domain_id: None,
        from_ts: Some(from),
        to_ts: Some(to),
    };
    let mut out: Box<dyn std::io::Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut reports = 0u64;
    let mut rows = 0u64;
    if matches!(args.kind, ExportKind::All | ExportKind::Dmarc) {
        if args.format == ExportFormat::Csv {
            out.write_all(
                csv_line(
                    &[
                        "report_id",
                        "org_name",
                        "begin",
                        "end",
                        "policy_domain",
                        "policy_p",
                        "source_ip",
                        "count",
                        "disposition",
                        "dkim_aligned",
                        "spf_aligned",
                        "header_from",
                        "envelope_from",
                    ]
                    .map(String::from),
                )
                .as_bytes(),
            )?;
        }
        let mut after: Option<ReportKey> = None;
        loop {
            let page = store.dmarc_report_page(scope, &filter, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(ReportKey {
                begin_ts: last.begin_ts,
                id: last.id,
            });
            for head in &page {
                let (r, records) = store.dmarc_report_get(scope, head.id).await?;
                reports += 1;
                match args.format {
                    ExportFormat::Jsonl => {
                        let line = json!({
                            "type": "dmarc-aggregate",
                            "org_name": r.org_name,
                            "reporter_email": r.reporter_email,
                            "report_id": r.report_id,
                            "policy_domain": r.policy_domain,
                            "policy_p": r.p,
                            "begin": ts(r.begin_ts),
                            "end": ts(r.end_ts),
                            "message_count": r.message_count,
                            "records": records.iter().map(|x| json!({
                                "source_ip": x.source_ip,
                                "count": x.count,
                                "disposition": x.disposition,
                                "dkim": x.dkim_result,
                                "spf": x.spf_result,
                                "header_from": x.header_from,
                                "envelope_from": x.envelope_from,
                                "dkim_auth": x.dkim_auth,
                                "spf_auth": x.spf_auth,
                            })).collect::<Vec<_>>(),
                        });
                        serde_json::to_writer(&mut out, &line)?;
                        out.write_all(b"\n")?;
                        rows += 1;
                    }
                    ExportFormat::Csv => {
                        for x in &records {
                            out.write_all(
                                csv_line(&[
                                    r.report_id.clone(),
                                    r.org_name.clone(),
                                    ts(r.begin_ts),
                                    ts(r.end_ts),
                                    r.policy_domain.clone(),
                                    opt(&r.p),
                                    x.source_ip.clone(),
                                    x.count.to_string(),
                                    opt(&x.disposition),
                                    opt(&x.dkim_result),
                                    opt(&x.spf_result),
                                    opt(&x.header_from),
                                    opt(&x.envelope_from),
                                ])
                                .as_bytes(),
                            )?;
                            rows += 1;
                        }
                    }
                }
            }
        }
    }
    if matches!(args.kind, ExportKind::All | ExportKind::Tls) {
        if args.format == ExportFormat::Csv {
            out.write_all(
                csv_line(
                    &[
                        "report_id",
                        "org_name",
                        "begin",
                        "end",
                        "policy_type",
                        "policy_domain",
                        "policy_successful",
                        "policy_failed",
                        "result_type",
                        "sending_mta_ip",
                        "receiving_mx_hostname",
                        "receiving_ip",
                        "failed_sessions",
                    ]
                    .map(String::from),
                )
                .as_bytes(),
            )?;
        }
        let mut after: Option<ReportKey> = None;
        loop {
            let page = store.tls_report_page(scope, &filter, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(ReportKey {
                begin_ts: last.begin_ts,
                id: last.id,
            });
            for head in &page {
                let (r, policies) = store.tls_report_get(scope, head.id).await?;
                reports += 1;
                match args.format {
                    ExportFormat::Jsonl => {
                        let line = json!({
                            "type": "tls-rpt",
                            "org_name": r.org_name,
                            "contact_info": r.contact_info,
                            "report_id": r.report_id,
                            "begin": ts(r.begin_ts),
                            "end": ts(r.end_ts),
                            "successful_sessions": r.successful_sessions,
                            "failed_sessions": r.failed_sessions,
                            "policies": policies.iter().map(|p| json!({
                                "policy_type": p.policy_type,
                                "policy_domain": p.policy_domain,
                                "policy_strings": p.policy_strings,
                                "mx_hosts": p.mx_hosts,
                                "successful_sessions": p.successful_sessions,
                                "failed_sessions": p.failed_sessions,
                                "failure_details": p.failure_details.iter().map(|d| json!({
                                    "result_type": d.result_type,
                                    "sending_mta_ip": d.sending_mta_ip,
                                    "receiving_mx_hostname": d.receiving_mx_hostname,
                                    "receiving_ip": d.receiving_ip,
                                    "failed_sessions": d.failed_sessions,
                                    "failure_reason_code": d.failure_reason_code,
                                    "additional_information": d.additional_information,
                                })).collect::<Vec<_>>(),
                            })).collect::<Vec<_>>(),
                        });
                        serde_json::to_writer(&mut out, &line)?;
                        out.write_all(b"\n")?;
                        rows += 1;
                    }
                    ExportFormat::Csv => {
                        for p in &policies {
                            let base = [
                                r.report_id.clone(),
                                r.org_name.clone(),
                                ts(r.begin_ts),
                                ts(r.end_ts),
                                p.policy_type.clone(),
                                opt(&p.policy_domain),
                                p.successful_sessions.to_string(),
                                p.failed_sessions.to_string(),
                            ];
                            if p.failure_details.is_empty() {
                                let mut f = base.to_vec();
                                f.extend([
                                    String::new(),
                                    String::new(),
                                    String::new(),
                                    String::new(),
                                    String::new(),
                                ]);
                                out.write_all(csv_line(&f).as_bytes())?;
                                rows += 1;
                            }
                            for d in &p.failure_details {
                                let mut f = base.to_vec();
                                f.extend([
                                    d.result_type.clone(),
                                    opt(&d.sending_mta_ip),
                                    opt(&d.receiving_mx_hostname),
                                    opt(&d.receiving_ip),
                                    d.failed_sessions.to_string(),
                                ]);
                                out.write_all(csv_line(&f).as_bytes())?;
                                rows += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    out.flush()?;
    eprintln!(
        "exported {reports} reports ({rows} {}) of tenant {}",
        if args.format == ExportFormat::Csv {
            "rows"
        } else {
            "lines"
        },
        tenant.name
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn purge(store: &Store, config: &Config, args: PurgeArgs) -> anyhow::Result<ExitCode> {
    let now = match &args.now {
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .with_context(|| format!("--now {s:?} is not an RFC 3339 time"))?
            .with_timezone(&Utc),
        None => Utc::now(),
    };
    let purged = store.purge_expired(config.retention.store(), now).await?;
    let queue = sealwatch_jobs::Queue::open(store.connection()).await?;
    let jobs = queue
        .purge_finished(now - chrono::Duration::days(i64::from(config.retention.jobs_days.max(1))))
        .await?;
    println!(
        "purged {} raw messages, {} DMARC reports, {} TLS reports, {} failure reports, {} finished jobs",
        purged.raw_messages, purged.dmarc_reports, purged.tls_reports, purged.failure_reports, jobs
    );
    Ok(ExitCode::SUCCESS)
}
