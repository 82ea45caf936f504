//! `sealwatch bench-scale`: the scale-out benchmark on PostgreSQL with real processes.
//! Seeds several IMAP mailboxes once, then for 1, 2 and 4 `serve --role poller` processes
//! (each polling one mailbox at a time) times IMAP-to-PostgreSQL ingest into a fresh
//! database; then times the weekly digests of many tenants with 1 and 2
//! `serve --role worker` processes sending to a loopback SMTP relay. Prints rates and the
//! speed-up over one process.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::NaiveDate;
use sea_orm::ConnectionTrait as _;
use sealwatch_model::DomainName;
use sealwatch_simulate::{Scenario, ScenarioConfig};
use sealwatch_store::{AfterAction, DbConfig, NewMailbox, Store, TlsMode};

use crate::cli::BenchScaleArgs;

pub fn run(args: &BenchScaleArgs) -> anyhow::Result<ExitCode> {
    let password = std::env::var(&args.password_env).with_context(|| {
        format!(
            "environment variable {} (the IMAP password) is not set",
            args.password_env
        )
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let work = std::env::temp_dir().join(format!("sealwatch-bench-scale-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let scenario = Scenario::new(ScenarioConfig {
        seed: 11,
        domains: args.domains,
        start: NaiveDate::from_ymd_opt(2026, 11, 2).context("date")?,
        days: None,
        rua: Some("reports@sealwatch.test".into()),
        incidents: Vec::new(),
    });
    let stamp = format!("{}-{}", std::process::id(), chrono::Utc::now().timestamp());
    let users: Vec<String> = (0..args.mailboxes)
        .map(|i| format!("scale{i}-{stamp}"))
        .collect();
    eprintln!(
        "seeding {} report emails into {} mailboxes ...",
        args.messages,
        users.len()
    );
    let seeded = seed(args, &users, &password, &scenario)?;

    println!(
        "bench-scale ingest: {seeded} report emails in {} mailboxes, PostgreSQL, each poller process polls one mailbox at a time",
        users.len()
    );
    println!(
        "{:>8} {:>10} {:>10} {:>9}",
        "pollers", "seconds", "msgs/s", "speed-up"
    );
    let mut base = None;
    for &n in &args.pollers {
        let (url, name) = runtime.block_on(fresh_pg(&args.pg_admin_url, "ingest"))?;
        runtime.block_on(prepare_ingest(&url, &scenario, args, &users))?;
        let config = write_config(&work, &url, args, 1, 4)?;
        let result = timed(
            &config,
            &args.password_env,
            &password,
            n,
            "poller",
            || runtime.block_on(count(&url, "SELECT COUNT(*) AS n FROM raw_messages")),
            seeded as i64,
        );
        runtime.block_on(drop_pg(&args.pg_admin_url, &name))?;
        let secs = result?;
        let rate = seeded as f64 / secs;
        let b = *base.get_or_insert(rate);
        println!("{n:>8} {secs:>10.2} {rate:>10.0} {:>8.2}x", rate / b);
    }

    println!(
        "bench-scale digests: {} tenants (one domain and recipient each), SMTP {}:{}",
        args.tenants, args.smtp_host, args.smtp_port
    );
    println!(
        "{:>8} {:>10} {:>10} {:>9}",
        "workers", "seconds", "digests/s", "speed-up"
    );
    let mut base = None;
    for &n in &args.workers {
        let (url, name) = runtime.block_on(fresh_pg(&args.pg_admin_url, "digest"))?;
        runtime.block_on(prepare_digests(&url, args.tenants, &stamp))?;
        let config = write_config(&work, &url, args, 4, args.worker_concurrency)?;
        let result = timed(
            &config,
            &args.password_env,
            &password,
            n,
            "worker",
            || {
                runtime.block_on(count(
                    &url,
                    "SELECT COUNT(*) AS n FROM digests WHERE status = 'sent'",
                ))
            },
            args.tenants as i64,
        );
        runtime.block_on(drop_pg(&args.pg_admin_url, &name))?;
        let secs = result?;
        let rate = args.tenants as f64 / secs;
        let b = *base.get_or_insert(rate);
        println!("{n:>8} {secs:>10.2} {rate:>10.1} {:>8.2}x", rate / b);
    }
    println!("(times include process start and the first scheduler tick, about one second)");
    cleanup(args, &users, &password);
    let _ = std::fs::remove_dir_all(&work);
    Ok(ExitCode::SUCCESS)
}

fn seed(
    args: &BenchScaleArgs,
    users: &[String],
    password: &str,
    scenario: &Scenario,
) -> anyhow::Result<usize> {
    let mut sessions = Vec::new();
    for u in users {
        let tcp = std::net::TcpStream::connect((args.imap_host.as_str(), args.imap_port))
            .context("connecting to the IMAP server")?;
        tcp.set_nodelay(true)?;
        let mut client = imap::Client::new(tcp);
        client.read_greeting()?;
        sessions.push(
            client
                .login(u, password)
                .map_err(|(e, _)| e)
                .context("IMAP login")?,
        );
    }
    let mut n = 0usize;
    'outer: for plan in scenario.plans() {
        for email in [
            Some(scenario.aggregate_email(&plan)?),
            scenario.tls_email(&plan)?,
        ]
        .into_iter()
        .flatten()
        {
            if n >= args.messages {
                break 'outer;
            }
            let s = &mut sessions[n % users.len()];
            s.append("INBOX", &email.bytes).finish().context("APPEND")?;
            n += 1;
        }
    }
    for mut s in sessions {
        let _ = s.logout();
    }
    Ok(n)
}

fn cleanup(args: &BenchScaleArgs, users: &[String], password: &str) {
    for u in users {
        let Ok(tcp) = std::net::TcpStream::connect((args.imap_host.as_str(), args.imap_port))
        else {
            return;
        };
        let mut client = imap::Client::new(tcp);
        if client.read_greeting().is_err() {
            return;
        }
        if let Ok(mut s) = client.login(u, password) {
            let _ = s.select("INBOX");
            let _ = s.store("1:*", "+FLAGS.SILENT (\\Deleted)");
            let _ = s.expunge();
            let _ = s.logout();
        }
    }
}

async fn admin(admin_url: &str) -> anyhow::Result<Store> {
    Ok(Store::connect(&DbConfig {
        url: admin_url.to_owned(),
        max_connections: 1,
    })
    .await?)
}

async fn fresh_pg(admin_url: &str, label: &str) -> anyhow::Result<(String, String)> {
    let name = format!("sealwatch_bench_scale_{label}_{}", std::process::id());
    let a = admin(admin_url).await?;
    a.connection()
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    a.connection()
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .context("PostgreSQL URL has no database")?;
    let url = format!("{base}/{name}");
    let store = Store::connect(&DbConfig {
        url: url.clone(),
        max_connections: 2,
    })
    .await?;
    store.migrate().await?;
    sealwatch_jobs::Queue::open(store.connection()).await?;
    Ok((url, name))
}

async fn drop_pg(admin_url: &str, name: &str) -> anyhow::Result<()> {
    admin(admin_url)
        .await?
        .connection()
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    Ok(())
}

async fn count(url: &str, sql: &str) -> anyhow::Result<i64> {
    let store = Store::connect(&DbConfig {
        url: url.to_owned(),
        max_connections: 1,
    })
    .await?;
    let row = store
        .connection()
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            sql,
        ))
        .await?
        .context("no row")?;
    Ok(row.try_get("", "n")?)
}

async fn prepare_ingest(
    url: &str,
    scenario: &Scenario,
    args: &BenchScaleArgs,
    users: &[String],
) -> anyhow::Result<()> {
    let store = Store::connect(&DbConfig {
        url: url.to_owned(),
        max_connections: 2,
    })
    .await?;
    for (i, d) in scenario.domains().iter().enumerate() {
        store
            .create_tenant(&format!("tenant-{i}"), &[DomainName::parse(&d.name)?])
            .await?;
    }
    for (i, u) in users.iter().enumerate() {
        store
            .add_mailbox(NewMailbox {
                tenant_id: None,
                name: format!("bench-{i}"),
                host: args.imap_host.clone(),
                port: args.imap_port,
                tls: TlsMode::Plain,
                username: u.clone(),
                password_env: args.password_env.clone(),
                folder: "INBOX".into(),
                after: AfterAction::Seen,
            })
            .await?;
    }
    Ok(())
}

async fn prepare_digests(url: &str, tenants: usize, stamp: &str) -> anyhow::Result<()> {
    let store = Store::connect(&DbConfig {
        url: url.to_owned(),
        max_connections: 2,
    })
    .await?;
    for i in 0..tenants {
        store
            .create_tenant(
                &format!("tenant-{i}"),
                &[DomainName::parse(&format!("t{i}.bench-scale.example"))?],
            )
            .await?;
    }
    store
        .connection()
        .execute_unprepared(&format!(
            "UPDATE tenants SET created_at = NOW() - INTERVAL '30 days', \
             digest_recipients = '[\"owner-' || id || '-{stamp}@bench-scale.example\"]'"
        ))
        .await?;
    Ok(())
}

fn write_config(
    dir: &Path,
    url: &str,
    args: &BenchScaleArgs,
    poll_interval: u64,
    job_concurrency: usize,
) -> anyhow::Result<PathBuf> {
    let path = dir.join("bench-scale.toml");
    std::fs::write(
        &path,
        format!(
            "[database]\nurl = \"{url}\"\nmax_connections = 8\n\n\
             [poller]\ninterval_secs = {poll_interval}\nconcurrency = 1\nbatch_size = 200\ntimeout_secs = 60\nlease_secs = 600\n\n\
             [jobs]\nscheduler_cron = \"* * * * * *\"\nidle_poll_ms = 100\nconcurrency = {job_concurrency}\n\n\
             [smtp]\nhost = \"{}\"\nport = {}\ntls = \"plain\"\n",
            args.smtp_host, args.smtp_port
        ),
    )?;
    Ok(path)
}

fn spawn(exe: &Path, config: &Path, role: &str, env: (&str, &str)) -> anyhow::Result<Child> {
    Command::new(exe)
        .arg("--config")
        .arg(config)
        .args(["serve", "--role", role, "--bind", "127.0.0.1:0"])
        .env(env.0, env.1)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting sealwatch serve")
}

/// Starts one scheduler and `n` processes of `role`, and times until `progress` reaches
/// `target`.
fn timed(
    config: &Path,
    password_env: &str,
    password: &str,
    n: usize,
    role: &str,
    mut progress: impl FnMut() -> anyhow::Result<i64>,
    target: i64,
) -> anyhow::Result<f64> {
    let exe = std::env::current_exe().context("locating the sealwatch executable")?;
    let started = Instant::now();
    let mut children = vec![spawn(&exe, config, "scheduler", (password_env, password))?];
    for _ in 0..n {
        children.push(spawn(&exe, config, role, (password_env, password))?);
    }
    let deadline = started + Duration::from_secs(1800);
    let result = loop {
        match progress() {
            Ok(done) if done >= target => break Ok(started.elapsed().as_secs_f64()),
            Ok(_) => {}
            Err(e) => break Err(e),
        }
        if Instant::now() > deadline {
            break Err(anyhow::anyhow!("did not finish in 30 minutes"));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for c in &children {
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
    }
    for mut c in children {
        let _ = c.wait();
    }
    if let Err(e) = &result {
        bail!("{role} run failed: {e:#}");
    }
    result
}
