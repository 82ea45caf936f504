//! `sealwatch bench-quality`: how well the anomaly detectors do on simulated data —
//! recall and precision, not speed.
//!
//! Builds a seeded scenario (`sealwatch-simulate`) of `--domains` domains over `--weeks`
//! weeks ending on a fixed day, with `--per-kind` incidents of every kind the simulator
//! injects except `legacy-starttls`, each on its own domain chosen by the seed and valid
//! for it (a DANE incident only where the domain publishes TLSA records, a provider only
//! where it reports on the domain every day, …), each starting in the last 28 days and at
//! least 14 days after the start, and affecting at least 5 days (to the end, or ending
//! earlier). `legacy-starttls` noise from day 0 on `--per-kind` further domains: those
//! count as healthy. The report emails are written to a temporary directory, one tenant per
//! domain is created in a fresh database, every email goes through the import path of
//! `sealwatch import`, and the production analysis (`analyze_cmd::analyze_all`) runs:
//!
//! - `once`: one analysis as of the last day with the default catch-up
//!   (`analysis.catch_up_days` 28);
//! - `nightly`: one analysis per day from day 14 to the last day with
//!   `analysis.catch_up_days = 1`, on a copy of the imported database taken before any
//!   analysis (SQLite `VACUUM INTO`, PostgreSQL `CREATE DATABASE … TEMPLATE`), so both modes
//!   start from the same freshly imported data.
//!
//! Each mode is scored from the stored anomalies: an incident is *found* when its domain
//! has an anomaly of the kind expected for it whose `first_seen..last_seen` overlaps the
//! incident's days; other anomalies on incident domains are *collateral*; anomalies on
//! domains without an incident are *false alarms*. `--check` fails the command unless every
//! mode has recall 1.0 and at most 1 false alarm per 100 healthy domains per week judged.
//!
//! The analysis uses the default configuration with MX resolution and reverse DNS off: the
//! simulated MX host names are not in any DNS the benchmark could ask (some are real
//! names, whose real addresses are not the simulated ones), so the run needs no network
//! and gives the same numbers everywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use chrono::NaiveDate;
use clap::{Args, ValueEnum};
use sea_orm::ConnectionTrait as _;
use sealwatch_model::DomainName;
use sealwatch_simulate::{
    Cidr, Incident, IncidentKind, PROVIDERS, ReportingHabit, Scenario, ScenarioConfig, SimRng,
    TlsResultType, key_of, write_scenario_emails,
};
use sealwatch_store::{AnomalyFilter, DbConfig, Store, StoredAnomaly};

use crate::analyze_cmd::day_number;
use crate::config::Config;

#[derive(Debug, Args)]
pub struct BenchQualityArgs {
    /// Monitored domains (one tenant each).
    #[arg(long, default_value_t = 300)]
    pub domains: usize,
    /// Weeks of simulated reports, ending on a fixed day (at least 3).
    #[arg(long, default_value_t = 12)]
    pub weeks: u32,
    /// Incidents of each kind (and domains with legacy-starttls noise).
    #[arg(long, default_value_t = 12)]
    pub per_kind: usize,
    /// Seed of the scenario and of the choice of incidents.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Database engine.
    #[arg(long, value_enum, default_value_t = QualityEngine::Sqlite)]
    pub engine: QualityEngine,
    /// PostgreSQL server URL on which scratch databases are created and dropped.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub pg_admin_url: String,
    /// once: one analysis as of the last day (default catch-up); nightly: one analysis per
    /// day (catch_up_days = 1); both.
    #[arg(long, value_enum, default_value_t = QualityMode::Both)]
    pub mode: QualityMode,
    /// Exit non-zero unless every mode has recall 1.0 and at most 1 false alarm per 100
    /// healthy domains per week judged.
    #[arg(long)]
    pub check: bool,
    /// Keep the report emails and the databases, and print where they are.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QualityEngine {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QualityMode {
    Nightly,
    Once,
    Both,
}

/// The last simulated day, and the day the `once` analysis runs as of.
const LAST_DAY: NaiveDate = NaiveDate::from_ymd_opt(2026, 11, 29).expect("a valid date");
/// Incidents start at least this many days after the scenario's start (history first).
const MIN_START_DAY: u32 = 14;
/// ... and within this many days before the end (the default catch-up of `once`).
const RECENT_DAYS: u32 = 28;
/// Every incident affects at least this many days.
const MIN_INCIDENT_DAYS: u32 = 5;
/// The nightly mode's first analysed day.
const NIGHTLY_FIRST_DAY: u32 = 14;
/// Targets of `--check`.
const TARGET_RECALL: f64 = 1.0;
const TARGET_FALSE_ALARMS_PER_100_WEEK: f64 = 1.0;
/// Most lines of each list printed.
const MAX_LINES: usize = 30;

/// The incident kinds measured, in the order domains are handed out each round (the
/// scarcest eligible domains first), with the anomaly kind that finds them.
const KINDS: [(&str, &str); 7] = [
    ("dane-broken", "dane"),
    ("cert-expired", "tls-certificate-cluster"),
    ("provider-mismatch", "tls-single-provider"),
    ("mta-sts-broken", "mta-sts-policy"),
    ("downgrade", "tls-low-rate-negotiation"),
    ("silent", "reporter-silent"),
    ("spoofing", "dmarc-new-unauthenticated-source"),
];
/// The order the kinds are printed in.
const PRINT_ORDER: [&str; 7] = [
    "cert-expired",
    "provider-mismatch",
    "mta-sts-broken",
    "downgrade",
    "silent",
    "spoofing",
    "dane-broken",
];

/// One injected incident and where to look for it.
#[derive(Debug, Clone)]
struct Planned {
    incident: Incident,
    kind: &'static str,
    expected: &'static str,
    domain: String,
    /// Affected days (UTC day numbers, inclusive).
    first: i32,
    last: i32,
}

/// The scenario with its incidents.
#[derive(Debug)]
struct Plan {
    scenario: Scenario,
    days: u32,
    incidents: Vec<Planned>,
    /// Domains (indices) with legacy-starttls noise.
    noise: Vec<usize>,
    /// Kinds injected fewer times than asked, and why.
    short: Vec<String>,
}

impl Plan {
    fn healthy_domains(&self) -> usize {
        self.scenario.domains().len() - self.incidents.len()
    }
}

pub fn run(args: &BenchQualityArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.domains > 0, "--domains must be at least 1");
    anyhow::ensure!(
        args.weeks >= 3,
        "--weeks must be at least 3 (incidents start after {MIN_START_DAY} days of history and last {MIN_INCIDENT_DAYS} days)"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let plan = plan(args)?;
        print_plan(args, &plan);
        let dir =
            std::env::temp_dir().join(format!("sealwatch-bench-quality-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut dbs: Vec<Db> = Vec::new();
        let mut open: Vec<Store> = Vec::new();
        let result = measure(args, &plan, &dir, &mut dbs, &mut open).await;
        // Closed before the files go: a SQLite connection closing later would write its
        // WAL and shared-memory files back into the removed directory.
        for store in open {
            let _ = store.connection().close_by_ref().await;
        }
        if args.keep {
            println!("kept the report emails: {}", dir.join("mail").display());
            println!(
                "kept the incident list: {}",
                dir.join("incidents.txt").display()
            );
            for db in &dbs {
                println!("kept the {} database: {}", db.label, db.url);
            }
        } else {
            for db in &dbs {
                if let Err(e) = db.drop(args).await {
                    eprintln!("warning: dropping the {} database: {e:#}", db.label);
                }
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
        result
    })
}

/// Chooses the incidents: domains in an order shuffled by the seed, handed out one kind
/// after another in rounds, each to the next unused domain the kind is valid for.
fn plan(args: &BenchQualityArgs) -> anyhow::Result<Plan> {
    let days = args.weeks.checked_mul(7).context("--weeks is too large")?;
    let start = LAST_DAY - chrono::Days::new(u64::from(days) - 1);
    let mut config = ScenarioConfig {
        seed: args.seed,
        domains: args.domains,
        start,
        days: Some(days),
        rua: None,
        incidents: Vec::new(),
    };
    // Profiles and reporting habits do not depend on the incidents.
    let healthy = Scenario::new(config.clone());
    let mut order: Vec<usize> = (0..args.domains).collect();
    let mut rng = SimRng::derive(args.seed, &[key_of("bench-quality-domains")]);
    for i in (1..order.len()).rev() {
        let j = rng.index(i + 1);
        order.swap(i, j);
    }
    let mut used = vec![false; args.domains];
    let mut chosen: Vec<(&'static str, &'static str, Incident)> = Vec::new();
    let mut exhausted: BTreeSet<&'static str> = BTreeSet::new();
    for _round in 0..args.per_kind {
        for (kind, expected) in KINDS {
            if exhausted.contains(kind) {
                continue;
            }
            let found = order.iter().copied().find_map(|d| {
                if used[d] {
                    return None;
                }
                incident_for(&healthy, kind, d, args.seed).map(|i| (d, i))
            });
            match found {
                Some((d, incident)) => {
                    used[d] = true;
                    chosen.push((kind, expected, incident));
                }
                None => {
                    exhausted.insert(kind);
                }
            }
        }
    }
    let mut noise = Vec::new();
    for &d in &order {
        if noise.len() >= args.per_kind {
            break;
        }
        if !used[d] {
            used[d] = true;
            noise.push(d);
        }
    }
    let mut short = Vec::new();
    for (kind, _) in KINDS {
        let n = chosen.iter().filter(|(k, _, _)| *k == kind).count();
        if n < args.per_kind {
            let eligible = (0..args.domains)
                .filter(|&d| incident_for(&healthy, kind, d, args.seed).is_some())
                .count();
            short.push(format!(
                "{kind}: {n} of {} injected ({eligible} of {} domains are eligible, and each domain gets one incident)",
                args.per_kind, args.domains
            ));
        }
    }
    if noise.len() < args.per_kind {
        short.push(format!(
            "legacy-starttls noise: {} of {} domains (no more free domains)",
            noise.len(),
            args.per_kind
        ));
    }
    config.incidents = chosen.iter().map(|(_, _, i)| i.clone()).collect();
    config.incidents.extend(noise.iter().map(|&d| Incident {
        kind: IncidentKind::LegacyStarttls {
            mx: IncidentKind::LAST_MX,
            rate_per_day: 2,
            providers: Vec::new(),
        },
        domain: d,
        from_day: 0,
        to_day: None,
    }));
    let scenario = Scenario::try_new(config)?;
    let incidents = chosen
        .into_iter()
        .map(|(kind, expected, incident)| {
            let last = incident.to_day.unwrap_or(days - 1);
            Planned {
                kind,
                expected,
                domain: scenario.domains()[incident.domain].name.clone(),
                first: day_number(scenario.date_of(incident.from_day)),
                last: day_number(scenario.date_of(last)),
                incident,
            }
        })
        .collect();
    Ok(Plan {
        scenario,
        days,
        incidents,
        noise,
        short,
    })
}

/// Providers (catalogue indices) that report on domain `d` every day.
fn daily(s: &Scenario, d: usize) -> Vec<usize> {
    (0..PROVIDERS.len())
        .filter(|&p| s.habit(d, p) == ReportingHabit::Daily)
        .collect()
}

/// Of [`daily`], those that send TLS reports.
fn daily_tls(s: &Scenario, d: usize) -> Vec<usize> {
    daily(s, d)
        .into_iter()
        .filter(|&p| PROVIDERS[p].tls.is_some())
        .collect()
}

fn results(ok: fn(TlsResultType) -> bool) -> Vec<TlsResultType> {
    TlsResultType::ALL.into_iter().filter(|r| ok(*r)).collect()
}

/// An incident of `kind` on domain `d`, with its parameters and days drawn from the seed,
/// or `None` when the kind cannot happen there: a DANE failure needs TLSA records and a
/// DANE-validating reporter; every TLS incident needs a TLS reporter that reports daily
/// (one whose reports carry the `sts` policy for MTA-STS); a provider mismatch needs two
/// (one fails, the other keeps succeeding); a silent reporter must have reported daily and
/// leave another daily reporter behind.
fn incident_for(s: &Scenario, kind: &str, d: usize, seed: u64) -> Option<Incident> {
    let profile = &s.domains()[d];
    let mut rng = SimRng::derive(seed, &[key_of("bench-quality"), key_of(kind), d as u64]);
    let tls = daily_tls(s, d);
    let pick = |rng: &mut SimRng, list: &[usize]| list.get(rng.index(list.len())).copied();
    let kind = match kind {
        "cert-expired" => {
            if tls.is_empty() {
                return None;
            }
            IncidentKind::CertificateExpired {
                mx: rng.index(profile.mx_hosts.len()),
            }
        }
        "provider-mismatch" => {
            if tls.len() < 2 {
                return None;
            }
            let p = pick(&mut rng, &tls)?;
            let r = results(TlsResultType::is_negotiation);
            IncidentKind::ProviderMismatch {
                provider: PROVIDERS[p].key.to_owned(),
                result: r[rng.index(r.len())],
            }
        }
        "mta-sts-broken" => {
            let sts = tls.iter().any(|&p| {
                PROVIDERS[p]
                    .tls
                    .as_ref()
                    .is_some_and(|t| !(t.dane && profile.dane))
            });
            if !sts {
                return None;
            }
            let r = results(TlsResultType::is_sts);
            IncidentKind::MtaStsBroken {
                result: r[rng.index(r.len())],
            }
        }
        "downgrade" => {
            let p = pick(&mut rng, &tls)?;
            // A /24 of 198.18.0.0/15 (benchmarking, RFC 2544), which no simulated
            // reporter, sender or MX uses.
            let n = rng.below(512);
            IncidentKind::LowRateDowngrade {
                network: Cidr::v4([198, 18 + (n / 256) as u8, (n % 256) as u8, 0], 24),
                rate_per_day: 3,
                providers: vec![PROVIDERS[p].key.to_owned()],
                receiver: None,
            }
        }
        "silent" => {
            let all = daily(s, d);
            if all.len() < 2 {
                return None;
            }
            let p = pick(&mut rng, &all)?;
            IncidentKind::ReporterSilent {
                provider: PROVIDERS[p].key.to_owned(),
            }
        }
        "spoofing" => {
            if daily(s, d).is_empty() {
                return None;
            }
            IncidentKind::SpoofingCampaign {
                volume_per_day: 500,
                network: None,
            }
        }
        "dane-broken" => {
            let validating = tls
                .iter()
                .any(|&p| PROVIDERS[p].tls.as_ref().is_some_and(|t| t.dane));
            if !profile.dane || !validating {
                return None;
            }
            let r = results(TlsResultType::is_dane);
            IncidentKind::DaneBroken {
                result: r[rng.index(r.len())],
            }
        }
        _ => return None,
    };
    let days = s.config().days.unwrap_or(0);
    let lo = MIN_START_DAY.max(days.saturating_sub(RECENT_DAYS));
    let hi = days.checked_sub(MIN_INCIDENT_DAYS)?;
    if lo > hi {
        return None;
    }
    let from_day = lo + rng.below(u64::from(hi - lo + 1)) as u32;
    let to_day = if rng.chance(0.5) {
        None
    } else {
        let len = MIN_INCIDENT_DAYS
            + rng.below(u64::from(days - from_day - MIN_INCIDENT_DAYS + 1)) as u32;
        let to = from_day + len - 1;
        (to + 1 < days).then_some(to)
    };
    Some(Incident {
        kind,
        domain: d,
        from_day,
        to_day,
    })
}

fn print_plan(args: &BenchQualityArgs, plan: &Plan) {
    let s = &plan.scenario;
    println!(
        "bench-quality: {} domains x {} weeks ({} .. {}), seed {}, {} incidents ({} per kind asked), legacy-starttls noise on {} domains, {} healthy domains, engine {}",
        s.domains().len(),
        args.weeks,
        s.date_of(0),
        s.date_of(plan.days - 1),
        args.seed,
        plan.incidents.len(),
        args.per_kind,
        plan.noise.len(),
        plan.healthy_domains(),
        match args.engine {
            QualityEngine::Sqlite => "sqlite",
            QualityEngine::Postgres => "postgres",
        }
    );
    let mut line = String::from("injected:");
    for kind in PRINT_ORDER {
        let n = plan.incidents.iter().filter(|p| p.kind == kind).count();
        let _ = write!(line, " {kind} {n},");
    }
    line.pop();
    println!("{line}");
    for s in &plan.short {
        println!("fewer than asked: {s}");
    }
    println!(
        "analysis: default configuration, MX resolution and reverse DNS off (the simulated MX names are not in DNS)"
    );
}

/// A scratch database.
#[derive(Debug)]
struct Db {
    label: &'static str,
    url: String,
    pg_name: Option<String>,
}

impl Db {
    async fn connect(&self) -> anyhow::Result<Store> {
        Ok(Store::connect(&DbConfig {
            url: self.url.clone(),
            max_connections: 8,
        })
        .await?)
    }

    async fn drop(&self, args: &BenchQualityArgs) -> anyhow::Result<()> {
        match &self.pg_name {
            Some(name) => {
                let admin = admin(args).await?;
                admin
                    .connection()
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
            }
            None => {
                let path = self.url.trim_start_matches("sqlite://");
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{path}{suffix}"));
                }
            }
        }
        Ok(())
    }
}

async fn admin(args: &BenchQualityArgs) -> anyhow::Result<Store> {
    Store::connect(&DbConfig {
        url: args.pg_admin_url.clone(),
        max_connections: 1,
    })
    .await
    .context("connecting to --pg-admin-url")
}

fn pg_url(args: &BenchQualityArgs, name: &str) -> anyhow::Result<String> {
    let base = args
        .pg_admin_url
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .context("--pg-admin-url has no database")?;
    Ok(format!("{base}/{name}"))
}

/// A new, empty database (migrated by the caller).
async fn fresh_db(
    args: &BenchQualityArgs,
    dir: &Path,
    label: &'static str,
    dbs: &mut Vec<Db>,
) -> anyhow::Result<Store> {
    let db = match args.engine {
        QualityEngine::Sqlite => Db {
            label,
            url: format!("sqlite://{}", dir.join(format!("{label}.db")).display()),
            pg_name: None,
        },
        QualityEngine::Postgres => {
            let name = format!("sealwatch_bench_quality_{}_{label}", std::process::id());
            let admin = admin(args).await?;
            admin
                .connection()
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await?;
            admin
                .connection()
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await?;
            Db {
                label,
                url: pg_url(args, &name)?,
                pg_name: Some(name),
            }
        }
    };
    let store = db.connect().await;
    dbs.push(db);
    let store = store?;
    store.migrate().await?;
    Ok(store)
}

/// A copy of the database behind `store` (closed and reopened for PostgreSQL, whose
/// template must have no connections). Returns the reopened source and the copy.
async fn copy_db(
    args: &BenchQualityArgs,
    dir: &Path,
    source: Store,
    label: &'static str,
    dbs: &mut Vec<Db>,
) -> anyhow::Result<(Store, Store)> {
    match args.engine {
        QualityEngine::Sqlite => {
            let path = dir.join(format!("{label}.db"));
            let text = path.to_str().context("temp path is not UTF-8")?;
            source
                .connection()
                .execute_unprepared(&format!("VACUUM INTO '{}'", text.replace('\'', "''")))
                .await
                .context("copying the imported database (VACUUM INTO)")?;
            let db = Db {
                label,
                url: format!("sqlite://{text}"),
                pg_name: None,
            };
            let copy = db.connect().await;
            dbs.push(db);
            Ok((source, copy?))
        }
        QualityEngine::Postgres => {
            let from = dbs
                .iter()
                .find_map(|d| d.pg_name.clone())
                .context("no source database")?;
            source.connection().close_by_ref().await?;
            drop(source);
            let name = format!("sealwatch_bench_quality_{}_{label}", std::process::id());
            let admin = admin(args).await?;
            admin
                .connection()
                .execute_unprepared(&format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = '{from}' AND pid <> pg_backend_pid()"
                ))
                .await?;
            admin
                .connection()
                .execute_unprepared(&format!("CREATE DATABASE {name} TEMPLATE {from}"))
                .await
                .context("copying the imported database (CREATE DATABASE … TEMPLATE)")?;
            let db = Db {
                label,
                url: pg_url(args, &name)?,
                pg_name: Some(name),
            };
            let copy = db.connect().await;
            dbs.push(db);
            let reopened = dbs
                .iter()
                .find(|d| d.pg_name.as_deref() == Some(from.as_str()))
                .context("no source database")?
                .connect()
                .await?;
            Ok((reopened, copy?))
        }
    }
}

/// Writes the emails, loads a database, runs the modes, prints the scores.
async fn measure(
    args: &BenchQualityArgs,
    plan: &Plan,
    dir: &Path,
    dbs: &mut Vec<Db>,
    open: &mut Vec<Store>,
) -> anyhow::Result<ExitCode> {
    let mail = dir.join("mail");
    let started = Instant::now();
    let stats = write_scenario_emails(&plan.scenario, &mail)
        .with_context(|| format!("writing the scenario to {}", mail.display()))?;
    let write_secs = started.elapsed().as_secs_f64();
    let mut list = String::new();
    for p in &plan.incidents {
        let _ = writeln!(list, "{}\t{}", p.domain, p.incident);
    }
    for &d in &plan.noise {
        let _ = writeln!(
            list,
            "{}\tlegacy-starttls noise",
            plan.scenario.domains()[d].name
        );
    }
    let _ = std::fs::write(dir.join("incidents.txt"), list);

    let label = match args.mode {
        QualityMode::Nightly => "nightly",
        QualityMode::Once | QualityMode::Both => "once",
    };
    let store = fresh_db(args, dir, label, dbs).await?;
    open.push(store.clone());
    for (i, d) in plan.scenario.domains().iter().enumerate() {
        store
            .create_tenant(&format!("tenant-{i}"), &[DomainName::parse(&d.name)?])
            .await?;
    }
    let started = Instant::now();
    let outcome = import(&store, &mail).await?;
    let import_secs = started.elapsed().as_secs_f64();
    println!(
        "wrote {} report emails ({:.1} MiB) in {write_secs:.1} s; imported them in {import_secs:.1} s: {}",
        stats.files,
        stats.bytes as f64 / (1024.0 * 1024.0),
        outcome.summary_line()
    );
    anyhow::ensure!(
        outcome.quarantined_total() == 0,
        "every simulated report should route to its tenant: {}",
        outcome.summary_line()
    );

    let mut scores = Vec::new();
    match args.mode {
        QualityMode::Once => scores.push(once(&store, plan).await?),
        QualityMode::Nightly => scores.push(nightly(&store, plan).await?),
        QualityMode::Both => {
            let started = Instant::now();
            let (store, copy) = copy_db(args, dir, store, "nightly", dbs).await?;
            open.push(store.clone());
            open.push(copy.clone());
            eprintln!(
                "copied the imported database for the nightly mode in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            scores.push(once(&store, plan).await?);
            scores.push(nightly(&copy, plan).await?);
        }
    }
    let mut met = true;
    for s in &scores {
        print_score(plan, s);
        met &= s.meets_targets();
    }
    println!(
        "targets (recall {TARGET_RECALL:.1} in each mode, at most {TARGET_FALSE_ALARMS_PER_100_WEEK:.0} false alarm per 100 healthy domains per week): {}",
        if met { "met" } else { "MISSED" }
    );
    Ok(if args.check && !met {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Imports every email under `mail` as `sealwatch import` does (the same import, then the
/// planner statistics refreshed after a bulk load).
async fn import(store: &Store, mail: &Path) -> anyhow::Result<sealwatch_store::WriteOutcome> {
    let config = Config::default();
    let router = Arc::new(sealwatch_ingest::Router::new(
        store.routing_entries().await?,
    ));
    let parser = Arc::new(sealwatch_parser::Parser::new(config.limits()));
    let outcome = sealwatch_ingest::import::import(
        store,
        parser,
        router,
        sealwatch_ingest::import::ImportRequest {
            paths: vec![mail.to_path_buf()],
            only_tenant: None,
            batch_size: 200,
            received_at: None,
        },
        |_| {},
        |e| eprintln!("{e}"),
    )
    .await?;
    // As `sealwatch import` does after a bulk load.
    if outcome.stored >= crate::app::REFRESH_STATISTICS_AFTER {
        store
            .refresh_statistics()
            .await
            .context("refreshing the database statistics after the import")?;
    }
    Ok(outcome)
}

/// The analysis configuration of the benchmark.
fn analysis_config(catch_up_days: u32) -> Config {
    let mut config = Config::default();
    config.analysis.catch_up_days = catch_up_days;
    config.analysis.resolve_mx = false;
    config.analysis.reverse_dns = false;
    config
}

async fn once(store: &Store, plan: &Plan) -> anyhow::Result<Score> {
    let config = analysis_config(Config::default().analysis.catch_up_days);
    let last = plan.scenario.date_of(plan.days - 1);
    let started = Instant::now();
    crate::analyze_cmd::analyze_all(store, &config, last).await?;
    let secs = started.elapsed().as_secs_f64();
    let judged = config.analysis.catch_up_days.clamp(1, plan.days);
    score(
        store,
        plan,
        "once",
        format!(
            "one analysis as of {last} with catch_up_days = {}",
            config.analysis.catch_up_days
        ),
        judged,
        secs,
    )
    .await
}

async fn nightly(store: &Store, plan: &Plan) -> anyhow::Result<Score> {
    let config = analysis_config(1);
    let first = NIGHTLY_FIRST_DAY.min(plan.days - 1);
    let started = Instant::now();
    for day in first..plan.days {
        let date = plan.scenario.date_of(day);
        crate::analyze_cmd::analyze_all(store, &config, date)
            .await
            .with_context(|| format!("nightly analysis of {date}"))?;
        if (day - first) % 7 == 6 {
            eprintln!(
                "nightly: analysed through {date} ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    let secs = started.elapsed().as_secs_f64();
    score(
        store,
        plan,
        "nightly",
        format!(
            "one analysis per day, {} .. {}, with catch_up_days = 1",
            plan.scenario.date_of(first),
            plan.scenario.date_of(plan.days - 1)
        ),
        plan.days - first,
        secs,
    )
    .await
}

/// The scores of one mode.
#[derive(Debug)]
struct Score {
    mode: &'static str,
    what: String,
    judged_days: u32,
    secs: f64,
    /// Per incident (in plan order): found?
    found: Vec<bool>,
    anomalies: usize,
    true_hits: usize,
    /// (anomaly, the incident kind on its domain, note)
    collateral: Vec<(StoredAnomaly, &'static str, &'static str)>,
    false_alarms: Vec<StoredAnomaly>,
    healthy: usize,
}

impl Score {
    fn found_count(&self) -> usize {
        self.found.iter().filter(|f| **f).count()
    }

    fn recall(&self) -> f64 {
        if self.found.is_empty() {
            1.0
        } else {
            self.found_count() as f64 / self.found.len() as f64
        }
    }

    fn precision(&self) -> Option<f64> {
        let n = self.true_hits + self.false_alarms.len();
        (n > 0).then(|| self.true_hits as f64 / n as f64)
    }

    fn weeks(&self) -> f64 {
        f64::from(self.judged_days) / 7.0
    }

    /// False alarms per 100 healthy domains per week judged.
    fn false_alarm_rate(&self) -> f64 {
        if self.healthy == 0 {
            return 0.0;
        }
        self.false_alarms.len() as f64 / (self.healthy as f64 / 100.0) / self.weeks()
    }

    fn meets_targets(&self) -> bool {
        self.recall() >= TARGET_RECALL
            && self.false_alarm_rate() <= TARGET_FALSE_ALARMS_PER_100_WEEK
    }
}

async fn score(
    store: &Store,
    plan: &Plan,
    mode: &'static str,
    what: String,
    judged_days: u32,
    secs: f64,
) -> anyhow::Result<Score> {
    let anomalies = store.list_anomalies(&AnomalyFilter::default()).await?;
    let by_domain: BTreeMap<&str, &Planned> = plan
        .incidents
        .iter()
        .map(|p| (p.domain.as_str(), p))
        .collect();
    let overlaps =
        |a: &StoredAnomaly, p: &Planned| a.first_seen_day <= p.last && a.last_seen_day >= p.first;
    let found = plan
        .incidents
        .iter()
        .map(|p| {
            anomalies
                .iter()
                .any(|a| a.domain == p.domain && a.kind == p.expected && overlaps(a, p))
        })
        .collect();
    let mut true_hits = 0;
    let mut collateral = Vec::new();
    let mut false_alarms = Vec::new();
    for a in &anomalies {
        match by_domain.get(a.domain.as_str()) {
            Some(p) if a.kind == p.expected && overlaps(a, p) => true_hits += 1,
            Some(p) if a.kind == p.expected => collateral.push((
                a.clone(),
                p.kind,
                "expected kind, outside the incident's days",
            )),
            Some(p) => collateral.push((a.clone(), p.kind, "")),
            None => false_alarms.push(a.clone()),
        }
    }
    false_alarms.sort_by(|a, b| {
        (a.first_seen_day, &a.domain, &a.kind).cmp(&(b.first_seen_day, &b.domain, &b.kind))
    });
    collateral.sort_by(|(a, _, _), (b, _, _)| (&a.domain, &a.kind).cmp(&(&b.domain, &b.kind)));
    Ok(Score {
        mode,
        what,
        judged_days,
        secs,
        found,
        anomalies: anomalies.len(),
        true_hits,
        collateral,
        false_alarms,
        healthy: plan.healthy_domains(),
    })
}

fn date(day: i32) -> String {
    sealwatch_analytics::format_day(day)
}

fn print_score(plan: &Plan, s: &Score) {
    println!();
    println!("== mode {}: {} ==", s.mode, s.what);
    println!("  incidents            {}", s.found.len());
    println!("  found                {}", s.found_count());
    println!(
        "  recall               {:.3}  ({} of {} incidents found)",
        s.recall(),
        s.found_count(),
        s.found.len()
    );
    println!("  anomalies            {}", s.anomalies);
    println!("  true                 {}", s.true_hits);
    println!("  collateral           {}", s.collateral.len());
    println!("  false alarms         {}", s.false_alarms.len());
    match s.precision() {
        Some(p) => println!("  precision            {p:.3}"),
        None => println!(
            "  precision            -  (no anomalies on expected kinds or healthy domains)"
        ),
    }
    println!(
        "  false alarms per 100 healthy domains per week judged  {:.2}  ({} on {} healthy domains over {:.1} weeks judged)",
        s.false_alarm_rate(),
        s.false_alarms.len(),
        s.healthy,
        s.weeks()
    );
    println!("  wall time            {:.1} s", s.secs);
    let mut per_kind = String::from("  found per kind      ");
    for kind in PRINT_ORDER {
        let (n, f) = plan
            .incidents
            .iter()
            .zip(&s.found)
            .filter(|(p, _)| p.kind == kind)
            .fold((0, 0), |(n, f), (_, found)| {
                (n + 1, f + usize::from(*found))
            });
        let _ = write!(per_kind, " {kind} {f}/{n},");
    }
    per_kind.pop();
    println!("{per_kind}");
    let missed: Vec<&Planned> = plan
        .incidents
        .iter()
        .zip(&s.found)
        .filter(|(_, f)| !**f)
        .map(|(p, _)| p)
        .collect();
    println!("  missed incidents ({}):", missed.len());
    for p in missed.iter().take(MAX_LINES) {
        println!(
            "    {:<28} {}  ({} .. {})",
            p.domain,
            p.incident,
            date(p.first),
            date(p.last)
        );
    }
    more(missed.len());
    println!("  false alarms ({}):", s.false_alarms.len());
    let noise: BTreeSet<&str> = plan
        .noise
        .iter()
        .map(|&d| plan.scenario.domains()[d].name.as_str())
        .collect();
    for a in s.false_alarms.iter().take(MAX_LINES) {
        println!(
            "    {:<28} {:<33} {:<8} first seen {}{}  {}",
            a.domain,
            a.kind,
            a.severity,
            date(a.first_seen_day),
            if noise.contains(a.domain.as_str()) {
                " (legacy-starttls noise domain)"
            } else {
                ""
            },
            a.summary
        );
    }
    more(s.false_alarms.len());
    println!("  collateral ({}):", s.collateral.len());
    for (a, kind, note) in s.collateral.iter().take(MAX_LINES) {
        println!(
            "    {:<28} {:<33} on a {kind} incident, first seen {}{}  {}",
            a.domain,
            a.kind,
            date(a.first_seen_day),
            if note.is_empty() {
                String::new()
            } else {
                format!(" ({note})")
            },
            a.summary
        );
    }
    more(s.collateral.len());
}

fn more(n: usize) {
    if n > MAX_LINES {
        println!("    … and {} more", n - MAX_LINES);
    }
}
