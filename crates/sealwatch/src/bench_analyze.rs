//! `sealwatch bench-analyze`: the nightly analysis pass over many domains with weeks of
//! history. Fills a fresh database with synthetic reports (written through the normal
//! store path, without generating and parsing emails), then times `analyze` over every
//! domain and prints domains/s and report rows/s.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use chrono::{DateTime, Days, NaiveDate, Utc};
use sea_orm::ConnectionTrait as _;
use sealwatch_model::{
    AggregateRecord, AggregateReport, AuthResults, Disposition, DkimAuthResult, DkimResult,
    DmarcResult, DomainName, Identifiers, MaybeIp, PolicyEvaluated, PolicyPublished, Report,
    ReportId, SpfAuthResult, SpfResult, Submitter, TlsFailureDetail, TlsPolicy, TlsPolicyType,
    TlsReport, TlsResultType,
};
use sealwatch_store::{DbConfig, Item, MessageSource, NewMessage, ReportItem, Store};

use crate::cli::BenchAnalyzeArgs;
use crate::config::Config;

const REPORTERS: [&str; 4] = ["google.com", "Outlook.com", "Yahoo", "Fastmail Pty Ltd"];
const TLS_REPORTERS: [&str; 2] = ["Google Inc.", "Microsoft Corporation"];

/// The last day of loaded history, and the day the analysis runs as of.
const LAST_DAY: NaiveDate = NaiveDate::from_ymd_opt(2026, 11, 29).expect("a valid date");

pub fn run(args: &BenchAnalyzeArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match &args.reuse {
            Some(url) => println!("bench-analyze: the database a --keep run loaded ({url})"),
            None => println!(
                "bench-analyze: {} domains x {} weeks of history ({} DMARC + {} TLS reports per domain and day)",
                args.domains,
                args.weeks,
                REPORTERS.len(),
                TLS_REPORTERS.len()
            ),
        }
        println!("{:<10} {:>9} {:>11} {:>11} {:>10} {:>12} {:>12}", "database", "domains", "rows", "load s", "analyse s", "domains/s", "rows/s");
        if let Some(url) = &args.reuse {
            let engine = if url.starts_with("sqlite:") { "sqlite" } else { "postgres" };
            let store = Store::connect(&DbConfig { url: url.clone(), max_connections: 8 }).await?;
            let rows = report_rows(&store).await?;
            let domains = store.analysis_targets(None).await?.len();
            let analyse_secs = analyse(args, &store, domains).await?;
            print_row(engine, domains, &Measured { rows, load_secs: 0.0, analyse_secs });
            if args.through_queue {
                let secs = through_queue(args, &store).await?;
                print_row(&format!("{engine}/q"), domains, &Measured { rows, load_secs: 0.0, analyse_secs: secs });
            }
            return Ok(ExitCode::SUCCESS);
        }
        for engine in &args.engines {
            let (url, pg_name) = match engine.as_str() {
                "sqlite" => {
                    let path = std::env::temp_dir().join(format!("sealwatch-bench-analyze-{}.db", std::process::id()));
                    (format!("sqlite://{}", path.display()), None)
                }
                "postgres" => {
                    let name = format!("sealwatch_bench_analyze_{}", std::process::id());
                    let admin = Store::connect(&DbConfig { url: args.pg_admin_url.clone(), max_connections: 1 }).await?;
                    admin.connection().execute_unprepared(&format!("CREATE DATABASE {name}")).await?;
                    let base = args.pg_admin_url.rsplit_once('/').map(|(b, _)| b.to_owned()).context("URL has no database")?;
                    (format!("{base}/{name}"), Some(name))
                }
                other => anyhow::bail!("unknown engine {other:?} (sqlite or postgres)"),
            };
            let result = measure(args, &url).await;
            let queued = match (&result, args.through_queue) {
                (Ok(_), true) => {
                    let store = Store::connect(&DbConfig { url: url.clone(), max_connections: 8 }).await?;
                    Some(through_queue(args, &store).await)
                }
                _ => None,
            };
            if args.keep {
                eprintln!("kept the {engine} database: --reuse {url}");
            } else {
                match pg_name {
                    Some(name) => {
                        let admin = Store::connect(&DbConfig { url: args.pg_admin_url.clone(), max_connections: 1 }).await?;
                        admin
                            .connection()
                            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .await?;
                    }
                    None => {
                        let path = url.trim_start_matches("sqlite://");
                        for suffix in ["", "-wal", "-shm"] {
                            let _ = std::fs::remove_file(format!("{path}{suffix}"));
                        }
                    }
                }
            }
            let m = result?;
            print_row(engine, args.domains, &m);
            if let Some(secs) = queued {
                print_row(&format!("{engine}/q"), args.domains, &Measured { analyse_secs: secs?, ..m });
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn print_row(engine: &str, domains: usize, m: &Measured) {
    println!(
        "{:<10} {:>9} {:>11} {:>11.1} {:>10.1} {:>12.0} {:>12.0}",
        engine,
        domains,
        m.rows,
        m.load_secs,
        m.analyse_secs,
        domains as f64 / m.analyse_secs,
        m.rows as f64 / m.analyse_secs
    );
    if domains < 10_000 {
        println!(
            "{:<10} extrapolated full pass over 10,000 domains: {:.0} s",
            "",
            m.analyse_secs * 10_000.0 / domains as f64
        );
    }
}

/// Report rows of a loaded database, counted as the loader counts them: DMARC records,
/// TLS reports and TLS failure details.
async fn report_rows(store: &Store) -> anyhow::Result<u64> {
    let backend = store.connection().get_database_backend();
    let row = store
        .connection()
        .query_one_raw(sea_orm::Statement::from_string(
            backend,
            "SELECT (SELECT COUNT(*) FROM dmarc_records) + (SELECT COUNT(*) FROM tls_reports) \
             + (SELECT COUNT(*) FROM tls_failure_details) AS n",
        ))
        .await?
        .context("no row")?;
    let n: i64 = row.try_get("", "n")?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The default configuration with `--concurrency` applied.
fn bench_config(args: &BenchAnalyzeArgs) -> Config {
    let mut config = Config::default();
    if let Some(c) = args.concurrency {
        config.analysis.concurrency = c;
    }
    config
}

/// Times one full analysis pass as of the last loaded day. On a database no analysis has
/// seen, that pass catches up (every domain judged day by day over
/// `analysis.catch_up_days`); it is printed, and a second pass as of the same day — one day
/// per domain, what each night costs — is timed and returned.
async fn analyse(args: &BenchAnalyzeArgs, store: &Store, domains: usize) -> anyhow::Result<f64> {
    let config = bench_config(args);
    let started = Instant::now();
    let totals = crate::analyze_cmd::analyze_all(store, &config, LAST_DAY).await?;
    let first_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "first analysis (catch-up over up to {} days): {} domains in {first_secs:.1} s, {} findings on the last day, {} anomalies opened ({} expected certificate incidents), concurrency {}",
        config.analysis.catch_up_days,
        totals.domains,
        totals.findings,
        totals.opened,
        domains.div_ceil(100),
        config.analysis.concurrency
    );
    let started = Instant::now();
    let totals = crate::analyze_cmd::analyze_all(store, &config, LAST_DAY).await?;
    let analyse_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "nightly pass (one day per domain): {} domains in {analyse_secs:.1} s, {} findings",
        totals.domains, totals.findings
    );
    Ok(analyse_secs)
}

/// Times the nightly pass through the job queue: the scheduler's batch jobs for every
/// domain are queued, and one worker process runs them until the queue is empty.
async fn through_queue(args: &BenchAnalyzeArgs, store: &Store) -> anyhow::Result<f64> {
    use sealwatch_jobs::{Leadership, Queue, RunOptions};
    let config = bench_config(args);
    let queue = Queue::open(store.connection()).await?;
    let runner = std::sync::Arc::new(crate::jobs_runner::SealwatchRunner::new(
        store.clone(),
        config.clone(),
        crate::app::poller(&config, store)?,
        queue.clone(),
        crate::jobs_runner::process_name(),
        std::sync::Arc::new(sealwatch_api::Metrics::default()),
    )?);
    let before = queue.counts().await?;
    let started = Instant::now();
    let ids = store
        .analysis_targets(None)
        .await?
        .iter()
        .map(|t| t.domain_id)
        .collect();
    // A key of its own per run: a database measured again has the day's keys already.
    let run = Utc::now().timestamp_millis();
    let mut jobs = 0u64;
    for mut planned in crate::jobs_runner::nightly_jobs(ids, &LAST_DAY.to_string()) {
        planned.key = planned.key.map(|k| format!("{k}:bench-{run}"));
        queue.push(planned).await?;
        jobs += 1;
    }
    let options = RunOptions {
        name: crate::jobs_runner::process_name(),
        poll_concurrency: 0,
        concurrency: config.jobs.concurrency.max(1),
        scheduler_cron: None,
        shutdown_timeout: std::time::Duration::from_secs(60),
        idle_poll: std::time::Duration::from_millis(50),
        retry_after: std::time::Duration::from_secs(config.jobs.retry_after_secs),
        leadership: Leadership::always(),
    };
    let watch = queue.clone();
    sealwatch_jobs::run(queue.clone(), runner, options, async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            match watch.counts().await {
                Ok(c) if c.pending == 0 && c.running == 0 => break,
                _ => {}
            }
        }
    })
    .await?;
    let secs = started.elapsed().as_secs_f64();
    let after = queue.counts().await?;
    eprintln!(
        "through the queue: {jobs} batch jobs, {} done, {} failed, {} killed, {} workers",
        after.done - before.done,
        after.failed - before.failed,
        after.killed - before.killed,
        config.jobs.concurrency
    );
    Ok(secs)
}

struct Measured {
    rows: u64,
    load_secs: f64,
    analyse_secs: f64,
}

async fn measure(args: &BenchAnalyzeArgs, url: &str) -> anyhow::Result<Measured> {
    let store = Store::connect(&DbConfig {
        url: url.to_owned(),
        max_connections: 8,
    })
    .await?;
    store.migrate().await?;
    let days = u64::from(args.weeks) * 7;
    let last = LAST_DAY;
    let first = last - Days::new(days - 1);
    let started = Instant::now();
    let mut rows = 0u64;
    let mut batch = Vec::new();
    for d in 0..args.domains {
        let name = format!("domain{d}.example");
        store
            .create_tenant(&format!("tenant-{d}"), &[DomainName::parse(&name)?])
            .await?;
    }
    let routes: std::collections::HashMap<String, (i64, i64)> = store
        .routing_entries()
        .await?
        .into_iter()
        .map(|r| (r.domain.to_string(), (r.tenant_id, r.domain_id)))
        .collect();
    for d in 0..args.domains {
        let name = format!("domain{d}.example");
        let &(tenant_id, domain_id) = routes.get(&name).context("route")?;
        for day in 0..days {
            let date = first + Days::new(day);
            let begin = date.and_hms_opt(0, 0, 0).context("time")?.and_utc();
            // One domain in a hundred has an expired certificate in the last week.
            let broken = d % 100 == 7 && day + 7 >= days;
            for (i, reporter) in REPORTERS.iter().enumerate() {
                let report = aggregate(&name, reporter, begin, d, day, i)?;
                rows += report.records.len() as u64;
                batch.push(message(
                    tenant_id,
                    domain_id,
                    &name,
                    Report::DmarcAggregate(report),
                    d,
                    day,
                    i,
                ));
            }
            for (i, reporter) in TLS_REPORTERS.iter().enumerate() {
                let report = tls(&name, reporter, begin, broken)?;
                rows += 1 + report
                    .policies
                    .iter()
                    .map(|p| p.failure_details.len() as u64)
                    .sum::<u64>();
                batch.push(message(
                    tenant_id,
                    domain_id,
                    &name,
                    Report::TlsRpt(report),
                    d,
                    day,
                    10 + i,
                ));
            }
        }
        if batch.len() >= 2000 {
            store.write_messages(std::mem::take(&mut batch)).await?;
        }
    }
    store.write_messages(batch).await?;
    // Fresh planner statistics, as autovacuum (PostgreSQL) or a periodic ANALYZE (SQLite)
    // would have them on a database that grew over weeks.
    store.connection().execute_unprepared("ANALYZE").await?;
    let load_secs = started.elapsed().as_secs_f64();

    let analyse_secs = analyse(args, &store, args.domains).await?;
    Ok(Measured {
        rows,
        load_secs,
        analyse_secs,
    })
}

pub(crate) fn message(
    tenant_id: i64,
    domain_id: i64,
    domain: &str,
    report: Report,
    d: usize,
    day: u64,
    i: usize,
) -> NewMessage {
    let key = format!("{domain}/{day}/{i}");
    NewMessage {
        sha256: hex_key(&key),
        bytes: key.clone().into_bytes(),
        source: MessageSource::File {
            origin: key.clone(),
        },
        message_id: None,
        received_at: None,
        items: vec![Item::Report(Box::new(ReportItem {
            tenant_id,
            domain_id,
            dedupe_key: format!("k/{key}/{d}"),
            content_hash: key,
            report,
        }))],
    }
}

/// A unique 64-character key (the store keys raw messages by a hex SHA-256).
pub fn hex_key(key: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}{:048x}", key.len())
}

pub(crate) fn aggregate(
    domain: &str,
    reporter: &str,
    begin: DateTime<Utc>,
    d: usize,
    day: u64,
    i: usize,
) -> anyhow::Result<AggregateReport> {
    let records = (0..5u64)
        .map(|s| {
            let count = 10 + (d as u64 * 7 + day * 3 + s * 11 + i as u64) % 40;
            AggregateRecord {
                source_ip: MaybeIp::parse(&format!("192.0.2.{}", 10 + s)),
                count,
                policy_evaluated: PolicyEvaluated {
                    disposition: Some(Disposition::None),
                    dkim: Some(DmarcResult::Pass),
                    spf: Some(DmarcResult::Pass),
                    reasons: Vec::new(),
                },
                identifiers: Identifiers {
                    header_from: Some(domain.to_owned()),
                    envelope_from: None,
                    envelope_to: None,
                },
                auth_results: AuthResults {
                    dkim: vec![DkimAuthResult {
                        domain: Some(domain.to_owned()),
                        selector: Some("s1".into()),
                        result: DkimResult::Pass,
                        human_result: None,
                    }],
                    spf: vec![SpfAuthResult {
                        domain: Some(domain.to_owned()),
                        scope: None,
                        result: SpfResult::Pass,
                        human_result: None,
                    }],
                },
            }
        })
        .collect::<Vec<_>>();
    let message_count = records.iter().map(|r| r.count).sum();
    Ok(AggregateReport {
        org_name: reporter.to_owned(),
        report_id: ReportId::parse(&format!("{domain}-{day}-{i}"))?,
        begin,
        end: begin + chrono::Duration::seconds(86_399),
        policy_domain: DomainName::parse(domain)?,
        message_count,
        email: None,
        extra_contact_info: None,
        errors: Vec::new(),
        generator: None,
        version: None,
        xml_namespace: None,
        policy_published: PolicyPublished {
            domain: domain.to_owned(),
            ..PolicyPublished::default()
        },
        records,
        extensions: Vec::new(),
        warnings: Vec::new(),
        submitter: Submitter::default(),
    })
}

pub(crate) fn tls(
    domain: &str,
    reporter: &str,
    begin: DateTime<Utc>,
    broken: bool,
) -> anyhow::Result<TlsReport> {
    let mx = format!("mx1.{domain}");
    let (ok, failed) = if broken { (0, 40) } else { (40, 0) };
    let failure_details = if broken {
        vec![TlsFailureDetail {
            result_type: TlsResultType::CertificateExpired,
            sending_mta_ip: Some(MaybeIp::parse("209.85.220.41")),
            receiving_mx_hostname: Some(mx.clone()),
            receiving_mx_helo: None,
            receiving_ip: Some(MaybeIp::parse("198.51.100.25")),
            failed_sessions: failed,
            additional_information: None,
            failure_reason_code: None,
        }]
    } else {
        Vec::new()
    };
    Ok(TlsReport {
        org_name: reporter.to_owned(),
        report_id: ReportId::parse(&format!("{domain}-{}-{reporter}", begin.timestamp()))?,
        begin,
        end: begin + chrono::Duration::seconds(86_399),
        contact_info: None,
        policies: vec![TlsPolicy {
            policy_type: TlsPolicyType::Sts,
            policy_strings: vec![
                "version: STSv1".into(),
                "mode: enforce".into(),
                format!("mx: {mx}"),
            ],
            policy_domain: Some(DomainName::parse(domain)?),
            mx_hosts: vec![mx],
            successful_sessions: ok,
            failed_sessions: failed,
            failure_details,
        }],
        successful_sessions: ok,
        failed_sessions: failed,
        warnings: Vec::new(),
        submitter: Submitter::default(),
    })
}
