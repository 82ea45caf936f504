//! `sealwatch bench-poll`: end-to-end IMAP ingest benchmark. Seeds a mailbox on a running
//! IMAP server with generated report emails, then times `sealwatch poll --once` as a separate
//! process into a fresh SQLite file and a fresh PostgreSQL database, printing messages per
//! second and the poller's peak memory.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context as _, bail};
use chrono::NaiveDate;
use sea_orm::ConnectionTrait as _;
use sealwatch_model::DomainName;
use sealwatch_simulate::{Scenario, ScenarioConfig};
use sealwatch_store::{AfterAction, DbConfig, NewMailbox, Store, TlsMode};

use crate::cli::BenchPollArgs;

pub fn run(args: &BenchPollArgs) -> anyhow::Result<ExitCode> {
    let password = std::env::var(&args.password_env).with_context(|| {
        format!(
            "environment variable {} (the IMAP password) is not set",
            args.password_env
        )
    })?;
    let scenario = Scenario::new(ScenarioConfig {
        seed: args.seed,
        domains: args.domains,
        start: NaiveDate::from_ymd_opt(2026, 11, 2).context("date")?,
        days: None,
        rua: Some("reports@sealwatch.test".into()),
        incidents: Vec::new(),
    });
    let user = format!(
        "bench-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp()
    );
    eprintln!(
        "seeding {} report emails into {}@{}:{} ...",
        args.messages, user, args.imap_host, args.imap_port
    );
    let seeded = seed(args, &user, &password, &scenario)?;
    eprintln!(
        "seeded {} emails ({:.1} MB) in {:.1}s",
        seeded.messages,
        seeded.bytes as f64 / 1e6,
        seeded.seconds
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let work = std::env::temp_dir().join(format!("sealwatch-bench-poll-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    println!(
        "bench-poll: {} report emails, {:.1} MB, one mailbox, batch size {}",
        seeded.messages,
        seeded.bytes as f64 / 1e6,
        args.batch_size
    );
    println!(
        "{:<11} {:>9} {:>10} {:>10} {:>12}  summary",
        "database", "messages", "seconds", "msgs/s", "peak RSS MB"
    );
    for engine in &args.engines {
        let (url, cleanup) = match engine.as_str() {
            "sqlite" => (
                format!("sqlite://{}", work.join("bench.db").display()),
                None,
            ),
            "postgres" => {
                let name = format!("sealwatch_bench_{}", std::process::id());
                runtime.block_on(create_pg(&args.pg_admin_url, &name))?;
                let base = args
                    .pg_admin_url
                    .rsplit_once('/')
                    .map(|(b, _)| b.to_owned())
                    .context("PostgreSQL URL has no database")?;
                (format!("{base}/{name}"), Some(name))
            }
            other => bail!("unknown engine {other:?} (sqlite or postgres)"),
        };
        runtime.block_on(prepare_db(&url, &scenario, args, &user))?;
        let config = write_config(&work, &url, args.batch_size)?;
        let result = time_poll(&config, &args.password_env, &password);
        if let Some(name) = cleanup {
            runtime.block_on(drop_pg(&args.pg_admin_url, &name))?;
        } else {
            for suffix in ["", "-wal", "-shm"] {
                let _ =
                    std::fs::remove_file(format!("{}{suffix}", work.join("bench.db").display()));
            }
        }
        let r = result?;
        println!(
            "{:<11} {:>9} {:>10.2} {:>10.0} {:>12.1}  {}",
            engine,
            seeded.messages,
            r.seconds,
            seeded.messages as f64 / r.seconds,
            r.peak_rss_kb as f64 / 1024.0,
            r.summary
        );
    }
    cleanup_mailbox(args, &user, &password)?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(ExitCode::SUCCESS)
}

struct Seeded {
    messages: usize,
    bytes: u64,
    seconds: f64,
}

fn seed(
    args: &BenchPollArgs,
    user: &str,
    password: &str,
    scenario: &Scenario,
) -> anyhow::Result<Seeded> {
    let started = Instant::now();
    let tcp = std::net::TcpStream::connect((args.imap_host.as_str(), args.imap_port))
        .context("connecting to the IMAP server")?;
    tcp.set_nodelay(true)?;
    let mut client = imap::Client::new(tcp);
    client.read_greeting()?;
    let mut session = client
        .login(user, password)
        .map_err(|(e, _)| e)
        .context("IMAP login")?;
    let mut messages = 0;
    let mut bytes = 0u64;
    for plan in scenario.plans() {
        if messages >= args.messages {
            break;
        }
        let email = scenario.aggregate_email(&plan)?;
        bytes += email.bytes.len() as u64;
        session
            .append("INBOX", &email.bytes)
            .finish()
            .context("APPEND")?;
        messages += 1;
        if messages < args.messages
            && let Some(tls) = scenario.tls_email(&plan)?
        {
            bytes += tls.bytes.len() as u64;
            session
                .append("INBOX", &tls.bytes)
                .finish()
                .context("APPEND")?;
            messages += 1;
        }
    }
    let _ = session.logout();
    Ok(Seeded {
        messages,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn cleanup_mailbox(args: &BenchPollArgs, user: &str, password: &str) -> anyhow::Result<()> {
    let tcp = std::net::TcpStream::connect((args.imap_host.as_str(), args.imap_port))?;
    let mut client = imap::Client::new(tcp);
    client.read_greeting()?;
    let mut session = client.login(user, password).map_err(|(e, _)| e)?;
    session.select("INBOX")?;
    session.store("1:*", "+FLAGS.SILENT (\\Deleted)")?;
    session.expunge()?;
    let _ = session.logout();
    Ok(())
}

async fn create_pg(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let admin = Store::connect(&DbConfig {
        url: admin_url.to_owned(),
        max_connections: 1,
    })
    .await?;
    admin
        .connection()
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    Ok(())
}

async fn drop_pg(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let admin = Store::connect(&DbConfig {
        url: admin_url.to_owned(),
        max_connections: 1,
    })
    .await?;
    admin
        .connection()
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    Ok(())
}

async fn prepare_db(
    url: &str,
    scenario: &Scenario,
    args: &BenchPollArgs,
    user: &str,
) -> anyhow::Result<()> {
    let store = Store::connect(&DbConfig {
        url: url.to_owned(),
        max_connections: 2,
    })
    .await?;
    store.migrate().await?;
    for (i, d) in scenario.domains().iter().enumerate() {
        store
            .create_tenant(&format!("tenant-{i}"), &[DomainName::parse(&d.name)?])
            .await?;
    }
    store
        .add_mailbox(NewMailbox {
            tenant_id: None,
            name: "bench".into(),
            host: args.imap_host.clone(),
            port: args.imap_port,
            tls: TlsMode::Plain,
            username: user.to_owned(),
            password_env: args.password_env.clone(),
            folder: "INBOX".into(),
            after: AfterAction::Seen,
        })
        .await?;
    Ok(())
}

fn write_config(dir: &Path, url: &str, batch: usize) -> anyhow::Result<PathBuf> {
    let path = dir.join("bench.toml");
    std::fs::write(
        &path,
        format!(
            "[database]\nurl = \"{url}\"\nmax_connections = 8\n\n[poller]\nbatch_size = {batch}\ntimeout_secs = 60\n"
        ),
    )?;
    Ok(path)
}

struct Timed {
    seconds: f64,
    peak_rss_kb: u64,
    summary: String,
}

fn time_poll(config: &Path, password_env: &str, password: &str) -> anyhow::Result<Timed> {
    let exe = std::env::current_exe().context("locating the sealwatch executable")?;
    let started = Instant::now();
    let out = Command::new(exe)
        .arg("--config")
        .arg(config)
        .args(["poll", "--once"])
        .env("SEALWATCH_PRINT_PEAK_RSS", "1")
        .env(password_env, password)
        .stdin(Stdio::null())
        .output()
        .context("running sealwatch poll --once")?;
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("poll failed: {stderr}");
    }
    let peak_rss_kb = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("peak_rss_kb="))
        .find_map(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Ok(Timed {
        seconds,
        peak_rss_kb,
        summary: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    })
}
