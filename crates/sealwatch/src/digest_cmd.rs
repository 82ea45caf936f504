//! `sealwatch digest …` and `sealwatch bench-digest`: preview, send and schedule the weekly
//! digest, and time building and sending it for many tenants. The work is the
//! `sealwatch-digest` crate; this module maps the configuration onto it.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use sealwatch_digest::{
    DigestConfig, IsoWeek, Mailer, Schedule, SendOutcome, Sender, SetupHints, SmtpSettings, SmtpTls,
};
use sealwatch_model::DomainName;
use sealwatch_store::{DbConfig, DigestTenant, Store};

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum DigestCommand {
    /// Print a tenant's digest for a week without sending it.
    Preview(PreviewArgs),
    /// Build and send a tenant's digest for a week now (idempotent: a digest is sent once).
    Send(SendArgs),
    /// Set a tenant's digest recipients and send time.
    Settings(SettingsArgs),
    /// One scheduler pass: send every digest that is due, and retry failed sends.
    Run(RunArgs),
    /// Show the state of the digests of a week (status, attempts, last error).
    Status(StatusArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PreviewFormat {
    Text,
    Html,
}

#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// A domain of the tenant whose digest to show.
    #[arg(long)]
    pub domain: String,
    /// ISO week, e.g. 2026-W48 (default: the last complete week).
    #[arg(long)]
    pub week: Option<String>,
    #[arg(long, value_enum, default_value_t = PreviewFormat::Text)]
    pub format: PreviewFormat,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Tenant name (or id).
    #[arg(long)]
    pub tenant: String,
    /// ISO week, e.g. 2026-W48.
    #[arg(long)]
    pub week: String,
}

#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// Tenant name (or id).
    #[arg(long)]
    pub tenant: String,
    /// Recipient address (repeatable; replaces the list).
    #[arg(long = "recipient")]
    pub recipients: Vec<String>,
    /// ISO weekday to send on, 1 = Monday … 7 = Sunday.
    #[arg(long)]
    pub weekday: Option<i16>,
    /// Local hour to send at, 0–23.
    #[arg(long)]
    pub hour: Option<i16>,
    /// IANA time zone, e.g. Europe/Berlin.
    #[arg(long)]
    pub timezone: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Pretend it is this time (RFC 3339), e.g. 2026-12-01T09:00:00Z.
    #[arg(long)]
    pub now: Option<String>,
    /// Digests built and sent at the same time.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// ISO week, e.g. 2026-W48.
    #[arg(long)]
    pub week: String,
}

#[derive(Debug, Args)]
pub struct BenchDigestArgs {
    /// Tenants (one domain and one recipient each).
    #[arg(long, default_value_t = 10_000)]
    pub tenants: usize,
    /// Of which this many have two weeks of synthetic reports (the rest get the no-data
    /// digest).
    #[arg(long, default_value_t = 1_000)]
    pub with_data: usize,
    /// Digests built and sent at the same time.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// SMTP connections kept open.
    #[arg(long, default_value_t = 16)]
    pub smtp_connections: u32,
    /// Database (default: a fresh SQLite file in the temp directory).
    #[arg(long)]
    pub database: Option<String>,
}

/// The SMTP relay settings of the configuration (the password is read from its variable).
pub fn smtp_settings(config: &Config, pool_size: u32) -> anyhow::Result<SmtpSettings> {
    let s = &config.smtp;
    let password = match &s.password_env {
        Some(var) => Some(
            std::env::var(var)
                .with_context(|| format!("smtp.password_env names {var:?}, which is not set"))?,
        ),
        None => None,
    };
    let ca_pem = match &s.ca_file {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    Ok(SmtpSettings {
        host: s.host.clone(),
        port: s.port,
        tls: SmtpTls::parse(&s.tls)?,
        tls_name: None,
        username: s.username.clone(),
        password,
        ca_pem,
        timeout: Duration::from_secs(s.timeout_secs.max(1)),
        pool_size,
    })
}

pub fn mailer(config: &Config, pool_size: u32) -> anyhow::Result<Mailer> {
    Ok(Mailer::new(
        &smtp_settings(config, pool_size)?,
        &Sender {
            from: config.digest.from.clone(),
            reply_to: config.digest.reply_to.clone(),
        },
    )?)
}

pub fn digest_config(config: &Config, mailer: Option<&Mailer>) -> DigestConfig {
    let d = &config.digest;
    DigestConfig {
        setup: SetupHints {
            dmarc_rua: config.reporting.dmarc_rua.clone(),
            tlsrpt_rua: config.reporting.tlsrpt_rua.clone(),
        },
        unsubscribe_url: Some(d.unsubscribe_url.clone()).filter(|u| !u.is_empty()),
        max_attempts: d.max_attempts.max(1),
        retry_backoff: chrono::Duration::seconds(
            i64::try_from(d.retry_backoff_secs.max(1)).unwrap_or(60),
        ),
        lease: chrono::Duration::seconds(
            i64::try_from((config.smtp.timeout_secs * 4).max(300)).unwrap_or(300),
        ),
        message_id_domain: mailer
            .map(Mailer::from_domain)
            .unwrap_or_else(|| "sealwatch.invalid".into()),
    }
}

async fn find_tenant(store: &Store, name: &str) -> anyhow::Result<DigestTenant> {
    if let Some(t) = store.find_tenant(name).await? {
        return store
            .digest_tenant(t.id)
            .await?
            .with_context(|| format!("tenant {name:?} vanished"));
    }
    if let Ok(id) = name.parse::<i64>()
        && let Some(t) = store.digest_tenant(id).await?
    {
        return Ok(t);
    }
    bail!("no tenant named {name:?}")
}

fn parse_week(s: &str) -> anyhow::Result<IsoWeek> {
    Ok(IsoWeek::parse(s)?)
}

pub async fn digest(
    store: &Store,
    config: &Config,
    command: DigestCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        DigestCommand::Preview(args) => preview(store, config, args).await,
        DigestCommand::Send(args) => send(store, config, args).await,
        DigestCommand::Settings(args) => settings(store, args).await,
        DigestCommand::Run(args) => run_pass(store, config, args).await,
        DigestCommand::Status(args) => status(store, args).await,
    }
}

async fn preview(store: &Store, config: &Config, args: PreviewArgs) -> anyhow::Result<ExitCode> {
    let week = match &args.week {
        Some(w) => parse_week(w)?,
        None => IsoWeek::containing(Utc::now().date_naive()).prev(),
    };
    let domain = DomainName::parse(&args.domain)
        .map_err(|e| anyhow::anyhow!("--domain {:?}: {e}", args.domain))?;
    let tenant = store
        .digest_tenant_of_domain(domain.as_str())
        .await?
        .with_context(|| format!("no tenant owns a domain named {:?}", args.domain))?;
    let dc = digest_config(config, None);
    let data = sealwatch_digest::gather_tenant(
        store,
        &dc.setup,
        dc.unsubscribe_link(tenant.id),
        &tenant,
        week,
    )
    .await?;
    let composed = sealwatch_digest::compose(&data)?;
    match args.format {
        PreviewFormat::Text => print!("Subject: {}\n\n{}", composed.subject, composed.text),
        PreviewFormat::Html => print!("{}", composed.html),
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(outcome: &SendOutcome) -> String {
    match outcome {
        SendOutcome::Sent {
            message_id,
            attempts,
        } => format!("sent (attempt {attempts}, Message-ID <{message_id}>)"),
        SendOutcome::AlreadySent { sent_at } => format!(
            "already sent{}",
            sent_at.map(|t| format!(" at {t}")).unwrap_or_default()
        ),
        SendOutcome::InProgress { claimed_by, until } => format!(
            "being sent by {} (claim until {})",
            claimed_by.as_deref().unwrap_or("another worker"),
            until.map(|t| t.to_string()).unwrap_or_default()
        ),
        SendOutcome::NotDue { next_attempt_at } => format!(
            "a previous attempt failed; next attempt at {}",
            next_attempt_at.map(|t| t.to_string()).unwrap_or_default()
        ),
        SendOutcome::NotBuilt => "not built".into(),
        SendOutcome::Retrying {
            error,
            attempts,
            next_attempt_at,
        } => format!("attempt {attempts} failed: {error}; retrying at {next_attempt_at}"),
        SendOutcome::Failed { error, attempts } => {
            format!("failed after {attempts} attempt(s): {error}")
        }
    }
}

async fn send(store: &Store, config: &Config, args: SendArgs) -> anyhow::Result<ExitCode> {
    let tenant = find_tenant(store, &args.tenant).await?;
    let week = parse_week(&args.week)?;
    if tenant.recipients.is_empty() {
        bail!(
            "tenant {:?} has no digest recipients: add them with `sealwatch digest settings --tenant {:?} --recipient ADDRESS`",
            tenant.name,
            tenant.name
        );
    }
    let mailer = mailer(config, 1)?;
    let dc = digest_config(config, Some(&mailer));
    let outcome = sealwatch_digest::deliver(
        store,
        &mailer,
        &dc,
        tenant.id,
        week,
        &crate::jobs_runner::process_name(),
        Utc::now(),
    )
    .await?;
    println!("{} {week}: {}", tenant.name, describe(&outcome));
    Ok(match outcome {
        SendOutcome::Sent { .. } | SendOutcome::AlreadySent { .. } => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}

async fn settings(store: &Store, args: SettingsArgs) -> anyhow::Result<ExitCode> {
    let tenant = find_tenant(store, &args.tenant).await?;
    let recipients = if args.recipients.is_empty() {
        tenant.recipients.clone()
    } else {
        args.recipients
            .iter()
            .map(|r| sealwatch_digest::parse_recipient(r))
            .collect::<Result<Vec<_>, _>>()?
    };
    let weekday = args.weekday.unwrap_or(tenant.weekday);
    let hour = args.hour.unwrap_or(tenant.hour);
    let timezone = args.timezone.clone().unwrap_or(tenant.timezone.clone());
    Schedule::new(weekday, hour, &timezone)?;
    store
        .set_digest_settings(tenant.id, &recipients, weekday, hour, &timezone)
        .await?;
    println!(
        "{}: digest to {} on weekday {weekday} at {hour:02}:00 {timezone}",
        tenant.name,
        if recipients.is_empty() {
            "nobody".to_owned()
        } else {
            recipients.join(", ")
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn parse_now(now: Option<&str>) -> anyhow::Result<DateTime<Utc>> {
    match now {
        None => Ok(Utc::now()),
        Some(s) => Ok(DateTime::parse_from_rfc3339(s)
            .with_context(|| format!("--now {s:?} is not RFC 3339"))?
            .with_timezone(&Utc)),
    }
}

async fn run_pass(store: &Store, config: &Config, args: RunArgs) -> anyhow::Result<ExitCode> {
    let now = parse_now(args.now.as_deref())?;
    let pool = u32::try_from(args.concurrency.clamp(1, 64)).unwrap_or(16);
    let mailer = mailer(config, pool)?;
    let dc = digest_config(config, Some(&mailer));
    let s = sealwatch_digest::run_due(
        store,
        &mailer,
        &dc,
        &crate::jobs_runner::process_name(),
        now,
        args.concurrency,
    )
    .await?;
    println!(
        "sent {}, already sent {}, retrying {}, failed {}, skipped {}, errors {}",
        s.sent, s.already_sent, s.retrying, s.failed, s.skipped, s.errors
    );
    Ok(if s.errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn status(store: &Store, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let week = parse_week(&args.week)?;
    let rows = store.digests_of_weeks(&[week.to_string()]).await?;
    for r in rows {
        println!(
            "tenant {:<6} {} {:<8} attempts {} {}{}",
            r.tenant_id,
            r.iso_week,
            r.status,
            r.attempts,
            r.next_attempt_at
                .map(|t| format!("next {t} "))
                .unwrap_or_default(),
            r.last_error
                .map(|e| format!("last error: {e}"))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `sealwatch bench-digest`.
pub async fn bench(config: &Config, args: &BenchDigestArgs) -> anyhow::Result<ExitCode> {
    let smtp = smtp_settings(config, args.smtp_connections)?;
    let loopback = smtp.host == "localhost"
        || smtp
            .host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!(
            "bench-digest sends {} emails: point smtp.host at a loopback test relay (got {:?})",
            args.tenants,
            smtp.host
        );
    }
    let path =
        std::env::temp_dir().join(format!("sealwatch-bench-digest-{}.db", std::process::id()));
    let url = args
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", path.display()));
    let store = Store::connect(&DbConfig {
        url: url.clone(),
        max_connections: 16,
    })
    .await?;
    store.migrate().await?;

    // Setup (not timed as part of the digest run): tenants, domains, recipients, reports.
    // The current week: tenants created now are old enough for its digest, which the run
    // sends as if it were the default send time (Tuesday 08:00 UTC of the next week).
    let week = IsoWeek::containing(Utc::now().date_naive());
    let started = Instant::now();
    let with_data = args.with_data.min(args.tenants);
    let mut batch = Vec::new();
    for i in 0..args.tenants {
        let name = format!("digest-bench-{i}.example");
        let t = store
            .create_tenant(&format!("bench-tenant-{i}"), &[DomainName::parse(&name)?])
            .await?;
        store
            .set_digest_settings(t.id, &[format!("bench-{i}@bench.test")], 2, 8, "UTC")
            .await?;
        if i < with_data {
            let dt = store.digest_tenant(t.id).await?.context("tenant")?;
            let (domain_id, _) = dt.domains.first().cloned().context("domain")?;
            batch.extend(synthetic_days(
                t.id,
                domain_id,
                &name,
                i,
                week.prev().monday(),
                14,
            )?);
            if batch.len() >= 2000 {
                store.write_messages(std::mem::take(&mut batch)).await?;
            }
        }
    }
    store.write_messages(batch).await?;
    let setup_secs = started.elapsed().as_secs_f64();

    let mailer = Mailer::new(
        &smtp,
        &Sender {
            from: config.digest.from.clone(),
            reply_to: config.digest.reply_to.clone(),
        },
    )?;
    let dc = digest_config(config, Some(&mailer));
    let now = Schedule::default_utc().send_time(week) + chrono::Duration::minutes(1);
    let started = Instant::now();
    let due = sealwatch_digest::due_digests(&store, now).await?;
    let s =
        sealwatch_digest::deliver_all(&store, &mailer, &dc, &due, "bench", now, args.concurrency)
            .await?;
    let secs = started.elapsed().as_secs_f64();
    if args.database.is_none() {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    println!(
        "bench-digest: {} tenants ({} with two weeks of reports), relay {}:{} ({:?}), concurrency {}, {} SMTP connections",
        args.tenants,
        with_data,
        smtp.host,
        smtp.port,
        smtp.tls,
        args.concurrency,
        args.smtp_connections
    );
    println!("setup (tenants, reports): {setup_secs:.1}s");
    println!(
        "built and sent {} digests in {secs:.1}s: {:.0} digests/s (retrying {}, failed {}, errors {})",
        s.sent,
        s.sent as f64 / secs.max(1e-9),
        s.retrying,
        s.failed,
        s.errors
    );
    Ok(if s.sent as usize == args.tenants {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Two report kinds a day for one domain, from the `bench-analyze` generators: four DMARC
/// reporters and two TLS reporters; one domain in a hundred has an expired certificate in
/// its last week.
fn synthetic_days(
    tenant_id: i64,
    domain_id: i64,
    name: &str,
    d: usize,
    first: chrono::NaiveDate,
    days: u64,
) -> anyhow::Result<Vec<sealwatch_store::NewMessage>> {
    use sealwatch_model::Report;
    let mut out = Vec::new();
    for day in 0..days {
        let date = first + chrono::Days::new(day);
        let begin = date.and_hms_opt(0, 0, 0).context("time")?.and_utc();
        let broken = d % 100 == 7 && day + 7 >= days;
        for (i, reporter) in ["google.com", "Outlook.com", "Yahoo", "Fastmail Pty Ltd"]
            .iter()
            .enumerate()
        {
            let report = crate::bench_analyze::aggregate(name, reporter, begin, d, day, i)?;
            out.push(crate::bench_analyze::message(
                tenant_id,
                domain_id,
                name,
                Report::DmarcAggregate(report),
                d,
                day,
                i,
            ));
        }
        for (i, reporter) in ["Google Inc.", "Microsoft Corporation"].iter().enumerate() {
            let report = crate::bench_analyze::tls(name, reporter, begin, broken)?;
            out.push(crate::bench_analyze::message(
                tenant_id,
                domain_id,
                name,
                Report::TlsRpt(report),
                d,
                day,
                10 + i,
            ));
        }
    }
    Ok(out)
}
