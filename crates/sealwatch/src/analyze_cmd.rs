//! `sealwatch analyze` and `sealwatch anomalies`: run the analysis over stored reports and
//! list what it flagged. The analysis itself is the pure `sealwatch-analytics` crate; this
//! module moves rows between it and the store.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{NaiveDate, Utc};
use sealwatch_analytics as analytics;
use sealwatch_store::{
    AnomalyChange, AnomalyFilter, AnomalyRecord, DomainData, Store, StoredAnomaly,
};
use tracing::{Instrument as _, info_span};

use crate::cli::{AnalyzeArgs, AnomaliesArgs};
use crate::config::Config;

/// Days since the Unix epoch of a date.
pub fn day_number(date: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    i32::try_from((date - epoch).num_days()).unwrap_or(0)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Store rows → analysis input.
pub fn input_of(
    target: &sealwatch_store::AnalysisTarget,
    data: DomainData,
    expect_reports: bool,
) -> analytics::DomainInput {
    analytics::DomainInput {
        tenant_id: target.tenant_id,
        domain_id: target.domain_id,
        domain: target.domain.clone(),
        dmarc: data
            .dmarc
            .into_iter()
            .map(|r| analytics::DmarcRow {
                begin: r.begin,
                end: r.end,
                reporter: r.reporter,
                source_ip: r.source_ip,
                header_from: r.header_from,
                messages: to_u64(r.messages),
                dkim_aligned: to_u64(r.dkim_aligned),
                spf_aligned: to_u64(r.spf_aligned),
                disposition_none: to_u64(r.disposition_none),
                disposition_quarantine: to_u64(r.disposition_quarantine),
                disposition_reject: to_u64(r.disposition_reject),
                forwarded: to_u64(r.forwarded),
            })
            .collect(),
        tls: data
            .tls
            .into_iter()
            .map(|r| analytics::TlsPolicyRow {
                begin: r.begin,
                end: r.end,
                reporter: r.reporter,
                policy_type: r.policy_type,
                policy_domain: r.policy_domain,
                sts_mode: r.sts_mode,
                mx_hosts: r.mx_hosts,
                successful: to_u64(r.successful),
                failed: to_u64(r.failed),
            })
            .collect(),
        tls_failures: data
            .tls_failures
            .into_iter()
            .map(|r| analytics::TlsFailureRow {
                begin: r.begin,
                end: r.end,
                reporter: r.reporter,
                policy_type: r.policy_type,
                result_type: r.result_type,
                sending_mta_ip: r.sending_mta_ip,
                receiving_mx_hostname: r.receiving_mx_hostname,
                receiving_ip: r.receiving_ip,
                failed: to_u64(r.failed),
                failure_reason_code: r.failure_reason_code,
                additional_information: r.additional_information,
            })
            .collect(),
        reports: data
            .reports
            .into_iter()
            .map(|r| analytics::ReportSeen {
                begin: r.begin,
                end: r.end,
                reporter: r.reporter,
                kind: if r.kind == "tls" {
                    analytics::ReportKind::Tls
                } else {
                    analytics::ReportKind::Dmarc
                },
                received: r.received,
            })
            .collect(),
        source_names: Default::default(),
        expect_reports,
        mx_addresses: Default::default(),
        added_day: Some(target.added_day),
    }
}

fn record_of(f: analytics::Finding) -> anyhow::Result<AnomalyRecord> {
    Ok(AnomalyRecord {
        kind: f.kind.as_str().to_owned(),
        fingerprint: f.fingerprint,
        severity: f.severity.as_str().to_owned(),
        confidence: f.confidence,
        window_start: f.window_start,
        window_end: f.window_end,
        summary: f.summary,
        evidence: f.evidence,
        explanation: serde_json::to_value(&f.explanation).context("encoding an explanation")?,
    })
}

fn existing_of(a: &StoredAnomaly) -> analytics::ExistingAnomaly {
    analytics::ExistingAnomaly {
        id: a.id,
        fingerprint: a.fingerprint.clone(),
        status: analytics::Status::parse(&a.status).unwrap_or(analytics::Status::Open),
        last_seen: a.last_seen_day,
    }
}

/// Totals of one analysis run.
#[derive(Debug, Default, Clone, Copy)]
pub struct RunTotals {
    pub domains: u64,
    pub findings: u64,
    pub opened: u64,
    pub updated: u64,
    pub reopened: u64,
    pub resolved: u64,
    pub suppressed: u64,
}

/// Most addresses named by reverse DNS per domain and run.
const MAX_NAMED_SOURCES: usize = 32;

/// Reverse-DNS names of the sending-MTA IPs of TLS failures and of the DMARC sources in
/// their networks (the addresses the correlation links), at most [`MAX_NAMED_SOURCES`].
async fn source_names(
    rdns: &sealwatch_health::ReverseDns,
    input: &analytics::DomainInput,
) -> std::collections::BTreeMap<String, String> {
    let mut ips: Vec<std::net::IpAddr> = Vec::new();
    let mut networks = std::collections::BTreeSet::new();
    for f in &input.tls_failures {
        if let Some(ip) = f.sending_mta_ip.as_deref()
            && let Ok(addr) = analytics::canonical_ip(ip).parse()
        {
            networks.insert(analytics::network_of(&analytics::canonical_ip(ip)));
            if !ips.contains(&addr) && ips.len() < MAX_NAMED_SOURCES {
                ips.push(addr);
            }
        }
    }
    for r in &input.dmarc {
        if ips.len() >= MAX_NAMED_SOURCES {
            break;
        }
        let ip = analytics::canonical_ip(&r.source_ip);
        if networks.contains(&analytics::network_of(&ip))
            && let Ok(addr) = ip.parse()
            && !ips.contains(&addr)
        {
            ips.push(addr);
        }
    }
    rdns.names(&ips)
        .await
        .into_iter()
        .map(|(ip, name)| (analytics::canonical_ip(&ip.to_string()), name))
        .collect()
}

/// The addresses of the MX hosts named by low-rate TLS failures that say which address they
/// reached (`receiving-ip`): the analysis flags those that reached another machine.
async fn mx_addresses(
    dns: &sealwatch_health::ReverseDns,
    input: &analytics::DomainInput,
) -> std::collections::BTreeMap<String, Vec<String>> {
    let hosts = analytics::mx_hosts_to_resolve(input);
    if hosts.is_empty() {
        return Default::default();
    }
    dns.host_addresses(&hosts)
        .await
        .into_iter()
        .map(|(host, addrs)| (host, addrs.iter().map(|a| a.to_string()).collect()))
        .collect()
}

/// Analyses one domain through `today` and stores the outcome: every day after the domain's
/// watermark (`analysed_through`) up to `today` is judged in order, as nightly runs would
/// have judged it — at most `analysis.catch_up_days` days, and all of them for a domain never
/// analysed — from one load of its history, and the anomaly lifecycle is applied day by day,
/// so an anomaly's `first_seen` is the first day its evidence showed, whenever the analysis
/// ran. `today` itself is always judged (the newest day's reports may still be arriving). With
/// `rdns`, the sources the correlation links are named by reverse DNS. Returns the findings
/// of `today`.
pub async fn analyze_domain(
    store: &Store,
    target: &sealwatch_store::AnalysisTarget,
    today: i32,
    config: &Config,
    rdns: Option<&sealwatch_health::ReverseDns>,
    totals: &mut RunTotals,
) -> anyhow::Result<Vec<analytics::Finding>> {
    let a = &config.analysis;
    let catch_up = i32::try_from(a.catch_up_days.max(1)).unwrap_or(28);
    let earliest = today.saturating_sub(catch_up - 1);
    let first = target
        .analysed_through
        .map_or(earliest, |w| w.saturating_add(1).max(earliest))
        .min(today);
    let history_start = first - i32::try_from(a.history_days).unwrap_or(84);
    let from = i64::from(history_start) * 86_400;
    let to = (i64::from(today) + 1) * 86_400;
    let data = store.domain_data(target.domain_id, from, to).await?;
    let mut input = input_of(target, data, true);
    if let Some(dns) = rdns {
        if a.reverse_dns {
            input.source_names = source_names(dns, &input).await;
        }
        if a.resolve_mx {
            input.mx_addresses = mx_addresses(dns, &input).await;
        }
    }
    // Days before the domain's first report are not judged: nightly runs would not have
    // had anything to judge either (and "no data" before the first report is not news).
    let earliest_report = input
        .reports
        .iter()
        .map(|r| analytics::day_of(r.begin))
        .min()
        .unwrap_or(today);
    let first = first.max(earliest_report).min(today);
    let window_days = a.window_days.max(1);
    let windows: Vec<analytics::Window> = (first..=today)
        .map(|day| analytics::Window::ending(day, window_days))
        .collect();
    let per_day = analytics::analyze_days(&input, &windows, &a.thresholds);
    let mut existing: Option<Vec<analytics::ExistingAnomaly>> = None;
    let mut last = Vec::new();
    for (day, findings) in (first..=today).zip(per_day) {
        if existing.is_none() {
            existing = Some(
                store
                    .domain_anomalies(target.domain_id)
                    .await?
                    .iter()
                    // Anomalies from the health check are opened and resolved by the health
                    // check; the report analysis must not auto-resolve them between runs.
                    .filter(|a| !a.fingerprint.starts_with("health:"))
                    .map(existing_of)
                    .collect(),
            );
        }
        let known = existing.as_deref().unwrap_or_default();
        let changes = analytics::reconcile(known, findings.clone(), day, a.quiet_days);
        let mut store_changes = Vec::with_capacity(changes.len());
        for c in changes {
            match c {
                analytics::Change::Open(f) => {
                    store_changes.push(AnomalyChange::Open(record_of(f)?))
                }
                analytics::Change::Update { id, finding } => {
                    store_changes.push(AnomalyChange::Update {
                        id,
                        record: record_of(finding)?,
                    })
                }
                analytics::Change::Reopen { id, finding } => {
                    // A day judged again (late reports) before the anomaly's last day: it was
                    // open then, and what happened after that day stands.
                    let seen_later = known.iter().any(|e| e.id == id && e.last_seen >= day);
                    if !seen_later {
                        store_changes.push(AnomalyChange::Reopen {
                            id,
                            record: record_of(finding)?,
                        })
                    }
                }
                analytics::Change::AutoResolve { id } => {
                    store_changes.push(AnomalyChange::AutoResolve { id })
                }
                analytics::Change::Suppressed { .. } => totals.suppressed += 1,
            }
        }
        if !store_changes.is_empty() {
            let applied = store
                .apply_anomaly_changes(target.tenant_id, target.domain_id, day, store_changes)
                .await?;
            totals.opened += u64::from(applied.opened);
            totals.updated += u64::from(applied.updated);
            totals.reopened += u64::from(applied.reopened);
            totals.resolved += u64::from(applied.resolved);
            // The next day reconciles against what this day stored.
            existing = None;
        }
        last = findings;
    }
    totals.findings += last.len() as u64;
    store
        .set_analysed_through(target.domain_id, target.analysed_through, today)
        .await?;
    totals.domains += 1;
    Ok(last)
}

/// What the analysis of one domain in [`analyze_many`] gave.
#[derive(Debug)]
pub struct DomainOutcome {
    pub domain: String,
    /// The findings' kinds, or why the domain could not be analysed.
    pub result: anyhow::Result<Vec<&'static str>>,
}

impl RunTotals {
    fn add(&mut self, t: &RunTotals) {
        self.domains += t.domains;
        self.findings += t.findings;
        self.opened += t.opened;
        self.updated += t.updated;
        self.reopened += t.reopened;
        self.resolved += t.resolved;
        self.suppressed += t.suppressed;
    }
}

/// What one analysis task returns: its index in the targets, the domain, its totals and
/// the findings' kinds or the error.
type TaskOutput = (usize, String, RunTotals, anyhow::Result<Vec<&'static str>>);

/// Analyses `targets` as of `today`, `analysis.concurrency` domains at a time, each in its
/// own task so the pure analysis of several domains runs on several cores while others
/// wait for the database. Each domain is independent (its own queries, its own
/// transaction): one that fails does not stop the others. Outcomes come back in the order
/// of `targets`.
pub async fn analyze_many(
    store: &Store,
    config: &Config,
    rdns: Option<Arc<sealwatch_health::ReverseDns>>,
    targets: Vec<sealwatch_store::AnalysisTarget>,
    today: i32,
) -> (RunTotals, Vec<DomainOutcome>) {
    let concurrency = config.analysis.concurrency.max(1);
    let config = Arc::new(config.clone());
    let names: Vec<String> = targets.iter().map(|t| t.domain.clone()).collect();
    let mut outcomes: Vec<Option<DomainOutcome>> = Vec::new();
    outcomes.resize_with(targets.len(), || None);
    let mut totals = RunTotals::default();
    let mut tasks = tokio::task::JoinSet::new();
    let mut record = |joined: Result<TaskOutput, tokio::task::JoinError>,
                      outcomes: &mut Vec<Option<DomainOutcome>>| {
        match joined {
            Ok((i, domain, t, result)) => {
                totals.add(&t);
                outcomes[i] = Some(DomainOutcome { domain, result });
            }
            // A panicking analysis is a bug; the domain's slot says so below.
            Err(e) => tracing::error!(error = %e, "an analysis task failed"),
        }
    };
    for (i, t) in targets.into_iter().enumerate() {
        while tasks.len() >= concurrency {
            if let Some(joined) = tasks.join_next().await {
                record(joined, &mut outcomes);
            }
        }
        let store = store.clone();
        let config = Arc::clone(&config);
        let rdns = rdns.clone();
        let span = info_span!("analyze", tenant_id = t.tenant_id, domain = %t.domain);
        tasks.spawn(
            async move {
                let mut totals = RunTotals::default();
                let result =
                    analyze_domain(&store, &t, today, &config, rdns.as_deref(), &mut totals)
                        .await
                        .map(|findings| findings.iter().map(|f| f.kind.as_str()).collect());
                (i, t.domain, totals, result)
            }
            .instrument(span),
        );
    }
    while let Some(joined) = tasks.join_next().await {
        record(joined, &mut outcomes);
    }
    let outcomes = outcomes
        .into_iter()
        .zip(names)
        .map(|(o, domain)| {
            o.unwrap_or_else(|| DomainOutcome {
                domain,
                result: Err(anyhow::anyhow!("the analysis task panicked")),
            })
        })
        .collect();
    (totals, outcomes)
}

/// Analyses every domain as of `today` (UTC); the first failure, if any, is the error.
pub async fn analyze_all(
    store: &Store,
    config: &Config,
    today: NaiveDate,
) -> anyhow::Result<RunTotals> {
    let targets = store.analysis_targets(None).await?;
    let rdns = config
        .health
        .analysis_dns(&config.analysis, &config.outbound)?
        .map(Arc::new);
    let (totals, outcomes) = analyze_many(store, config, rdns, targets, day_number(today)).await;
    for o in outcomes {
        o.result
            .with_context(|| format!("analysing {}", o.domain))?;
    }
    Ok(totals)
}

pub async fn analyze(
    store: &Store,
    config: &Config,
    args: AnalyzeArgs,
) -> anyhow::Result<ExitCode> {
    let today = match &args.today {
        Some(d) => day_number(
            NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .with_context(|| format!("--today {d:?} is not YYYY-MM-DD"))?,
        ),
        None => day_number(Utc::now().date_naive()),
    };
    let targets = store.analysis_targets(args.domain.as_deref()).await?;
    if let Some(d) = &args.domain
        && targets.is_empty()
    {
        anyhow::bail!("no tenant owns a domain named {d:?}");
    }
    let started = std::time::Instant::now();
    let rdns = config
        .health
        .analysis_dns(&config.analysis, &config.outbound)?
        .map(Arc::new);
    let (totals, outcomes) = analyze_many(store, config, rdns, targets, today).await;
    let mut failed = 0usize;
    for o in &outcomes {
        match &o.result {
            Ok(kinds) if !args.quiet => {
                if kinds.is_empty() {
                    eprintln!("{}: nothing to report", o.domain);
                } else {
                    eprintln!("{}: {}", o.domain, kinds.join(", "));
                }
            }
            Ok(_) => {}
            Err(e) => {
                failed += 1;
                eprintln!("{}: analysis failed: {e:#}", o.domain);
            }
        }
    }
    eprintln!(
        "analysed {} domains in {:.1}s",
        totals.domains,
        started.elapsed().as_secs_f64()
    );
    println!(
        "findings {}, opened {}, updated {}, reopened {}, resolved {}, suppressed {}",
        totals.findings,
        totals.opened,
        totals.updated,
        totals.reopened,
        totals.resolved,
        totals.suppressed
    );
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} domains could not be analysed",
            outcomes.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn date_of(day: i32) -> String {
    analytics::format_day(day)
}

pub async fn anomalies(store: &Store, args: AnomaliesArgs) -> anyhow::Result<ExitCode> {
    let filter = AnomalyFilter {
        tenant_id: None,
        domain: args.domain.clone(),
        status: args.status.clone(),
        kind: args.kind.clone(),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for a in store.list_anomalies(&filter).await? {
        if args.json {
            let line = format!(
                "{}",
                serde_json::json!({
                    "id": a.id,
                    "kind": a.kind,
                    "severity": a.severity,
                    "status": a.status,
                    "domain": a.domain,
                    "window_start": date_of(a.window_start),
                    "window_end": date_of(a.window_end),
                    "first_seen": date_of(a.first_seen_day),
                    "last_seen": date_of(a.last_seen_day),
                    "summary": a.summary,
                    "evidence": a.evidence,
                    "explanation": a.explanation,
                    "confidence": a.confidence,
                    "fingerprint": a.fingerprint,
                    "occurrences": a.occurrences,
                })
            );
            if !write_line(&mut out, &line)? {
                return Ok(ExitCode::SUCCESS);
            }
        } else {
            let line = format!(
                "#{:<5} {:<8} {:<12} {:<26} {:<28} {}..{}  {}",
                a.id,
                a.severity,
                a.status,
                a.kind,
                a.domain,
                date_of(a.window_start),
                date_of(a.window_end),
                a.summary
            );
            if !write_line(&mut out, &line)? {
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    let _ = std::io::Write::flush(&mut out);
    Ok(ExitCode::SUCCESS)
}

/// Writes one line; `false` when the reader went away (`sealwatch anomalies | head`).
fn write_line(out: &mut impl std::io::Write, line: &str) -> anyhow::Result<bool> {
    match writeln!(out, "{line}") {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("writing to stdout"),
    }
}
