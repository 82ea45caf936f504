//! Commands that use the database: migrate, import, poll, serve, tenant, mailbox.

use std::io::IsTerminal as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use sealwatch_ingest::Router;
use sealwatch_ingest::imap::{PollSummary, Poller};
use sealwatch_model::DomainName;
use sealwatch_parser::Parser;
use sealwatch_store::{Engine, NewMailbox, Store};

use crate::cli::{Command, ImportArgs, MailboxAddArgs, MailboxCommand, PollArgs, TenantCommand};
use crate::config::{Config, redact_url};

pub fn run(config_path: Option<&Path>, command: Command) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sealwatch")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match command {
            Command::Migrate => migrate(&config).await,
            Command::Import(args) => import(&config, args).await,
            Command::Poll(args) => poll(&config, args).await,
            Command::Serve(args) => crate::serve_cmd::serve(&config, args).await,
            Command::Export(args) => {
                let store = open(&config).await?;
                crate::lifecycle_cmd::export(&store, args).await
            }
            Command::Purge(args) => {
                let store = open(&config).await?;
                crate::lifecycle_cmd::purge(&store, &config, args).await
            }
            Command::Tenant(cmd) => tenant(&config, cmd).await,
            Command::Mailbox(cmd) => mailbox(&config, cmd).await,
            Command::Admin(cmd) => {
                let store = open(&config).await?;
                crate::admin_cmd::run(&store, cmd).await
            }
            Command::Analyze(args) => {
                let store = open(&config).await?;
                crate::analyze_cmd::analyze(&store, &config, args).await
            }
            Command::Anomalies(args) => {
                let store = open(&config).await?;
                crate::analyze_cmd::anomalies(&store, args).await
            }
            Command::Health(cmd) => {
                let store = open(&config).await?;
                crate::health_job::run_command(&store, &config, cmd).await
            }
            Command::Digest(cmd) => {
                let store = open(&config).await?;
                crate::digest_cmd::digest(&store, &config, cmd).await
            }
            Command::BenchDigest(args) => crate::digest_cmd::bench(&config, &args).await,
            Command::Parse(_)
            | Command::BenchParse(_)
            | Command::BenchPoll(_)
            | Command::BenchScale(_)
            | Command::BenchAnalyze(_)
            | Command::BenchQuality(_)
            | Command::Simulate(_)
            | Command::Check(_) => {
                bail!("not a database command")
            }
        }
    })
}

/// Connects and makes sure the schema is current. SQLite (single machine) migrates on the
/// fly; PostgreSQL (shared by several processes) requires an explicit `sealwatch migrate`.
pub(crate) async fn open(config: &Config) -> anyhow::Result<Store> {
    let db = config.db();
    let store = Store::connect(&db)
        .await
        .with_context(|| format!("connecting to {}", redact_url(&db.normalized_url())))?;
    match store.engine() {
        Engine::Sqlite => store.migrate().await.context("applying migrations")?,
        Engine::Postgres => {
            let pending = store.pending_migrations().await?;
            if !pending.is_empty() {
                bail!(
                    "the database schema is {} migration(s) behind; run `sealwatch migrate` first",
                    pending.len()
                );
            }
        }
    }
    Ok(store)
}

async fn migrate(config: &Config) -> anyhow::Result<ExitCode> {
    let db = config.db();
    let store = Store::connect(&db)
        .await
        .with_context(|| format!("connecting to {}", redact_url(&db.normalized_url())))?;
    let pending = store.pending_migrations().await?;
    store.migrate().await.context("applying migrations")?;
    if pending.is_empty() {
        println!("database is up to date");
    } else {
        for m in &pending {
            println!("applied {m}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn tenant_id(store: &Store, name: Option<&str>) -> anyhow::Result<Option<i64>> {
    match name {
        None => Ok(None),
        Some(n) => Ok(Some(
            store
                .find_tenant(n)
                .await?
                .with_context(|| format!("no tenant named {n:?}"))?
                .id,
        )),
    }
}

async fn import(config: &Config, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let store = open(config).await?;
    let only = tenant_id(&store, args.tenant.as_deref()).await?;
    let router = Arc::new(Router::new(store.routing_entries().await?));
    if router.is_empty() {
        eprintln!(
            "warning: no tenant domains configured; every report will be quarantined as unrouted"
        );
    }
    let parser = Arc::new(Parser::new(config.limits()));
    let inventory = sealwatch_ingest::import::inventory(&args.paths);
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(inventory.bytes);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {wide_bar} {bytes}/{total_bytes} {msg} [{elapsed_precise}, eta {eta}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(bar)
    } else {
        None
    };
    let started = std::time::Instant::now();
    let progress_bar = bar.clone();
    let outcome = sealwatch_ingest::import::import(
        &store,
        parser,
        router,
        sealwatch_ingest::import::ImportRequest {
            paths: args.paths.clone(),
            only_tenant: only,
            batch_size: args.batch_size,
            received_at: args.received_at,
        },
        move |p| {
            if let Some(b) = &progress_bar {
                b.set_position(p.bytes);
                b.set_message(format!(
                    "{} messages, {} stored",
                    p.messages, p.outcome.stored
                ));
            }
        },
        |e| eprintln!("{e}"),
    )
    .await?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if outcome.stored >= REFRESH_STATISTICS_AFTER {
        // A bulk load: the planner's statistics no longer describe the tables.
        store
            .refresh_statistics()
            .await
            .context("refreshing the database statistics after the import")?;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "imported {} messages from {} files in {secs:.1}s ({:.0} messages/s)",
        outcome.messages,
        inventory.files,
        outcome.messages as f64 / secs.max(1e-9)
    );
    println!("{}", outcome.summary_line());
    Ok(ExitCode::SUCCESS)
}

/// Reports stored by one import from which the database statistics are refreshed.
pub(crate) const REFRESH_STATISTICS_AFTER: u64 = 5_000;

fn print_poll(summary: &PollSummary) {
    for m in &summary.mailboxes {
        match &m.error {
            None => eprintln!(
                "{}: ok, {} fetched, {} ({:.1}s)",
                m.name,
                m.fetched,
                m.outcome.summary_line(),
                m.elapsed.as_secs_f64()
            ),
            Some(e) => eprintln!("{}: {}: {e}", m.name, m.status),
        }
    }
}

pub(crate) fn poller(config: &Config, store: &Store) -> anyhow::Result<Poller> {
    let parser = Arc::new(Parser::new(config.limits()));
    Ok(Poller::new(
        store.clone(),
        parser,
        config.poller(),
        config.poller.ca_file.as_deref(),
    )?)
}

async fn poll(config: &Config, args: PollArgs) -> anyhow::Result<ExitCode> {
    debug_assert!(args.once);
    let store = open(config).await?;
    let poller = poller(config, &store)?;
    let summary = match &args.mailbox {
        Some(name) => {
            let all = store.list_mailboxes().await?;
            let chosen: Vec<_> = all.into_iter().filter(|m| &m.name == name).collect();
            if chosen.is_empty() {
                bail!("no mailbox named {name:?}");
            }
            poller.poll_these(chosen).await?
        }
        None => poller.poll_all().await?,
    };
    print_poll(&summary);
    println!("{}", summary.outcome.summary_line());
    Ok(if summary.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

async fn tenant(config: &Config, cmd: TenantCommand) -> anyhow::Result<ExitCode> {
    let store = open(config).await?;
    match cmd {
        TenantCommand::Add { name, domains } => {
            let parsed = domains
                .iter()
                .map(|d| {
                    DomainName::parse(d)
                        .with_context(|| format!("--domain {d:?} is not a domain name"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let t = store.create_tenant(&name, &parsed).await?;
            println!(
                "tenant {} created (id {}) with {}",
                t.name,
                t.id,
                t.domains.join(", ")
            );
        }
        TenantCommand::List { json } => {
            for t in store.list_tenants().await? {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"id": t.id, "name": t.name, "active": t.active, "domains": t.domains})
                    );
                } else {
                    println!("{}\t{}\t{}", t.id, t.name, t.domains.join(","));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn mailbox(config: &Config, cmd: MailboxCommand) -> anyhow::Result<ExitCode> {
    let store = open(config).await?;
    match cmd {
        MailboxCommand::Add(args) => {
            add_mailbox(&store, args, &config.poller.password_env_prefix).await?
        }
        MailboxCommand::List { json } => {
            for m in store.list_mailboxes().await? {
                let status = m
                    .last_status
                    .clone()
                    .unwrap_or_else(|| "never polled".into());
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "id": m.id, "name": m.name, "tenant_id": m.tenant_id, "host": m.host,
                            "port": m.port, "tls": m.tls.as_str(), "username": m.username,
                            "folder": m.folder, "after": m.after.to_string(),
                            "last_poll_at": m.last_poll_at.map(|t| t.to_rfc3339()),
                            "last_status": m.last_status, "last_error": m.last_error,
                            "uidvalidity": m.uidvalidity, "last_uid": m.last_uid,
                        })
                    );
                } else {
                    let when = m.last_poll_at.map_or_else(
                        || "-".to_owned(),
                        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
                    );
                    let err = m
                        .last_error
                        .as_deref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default();
                    println!(
                        "{}\t{}\t{}:{} {} {}\t{}\t{} {status}{err}",
                        m.id, m.name, m.host, m.port, m.tls, m.folder, m.after, when
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn add_mailbox(
    store: &Store,
    args: MailboxAddArgs,
    password_env_prefix: &str,
) -> anyhow::Result<()> {
    sealwatch_ingest::imap::check_password_env(&args.password_env, password_env_prefix)
        .map_err(|e| anyhow::anyhow!("--password-env {:?}: {e}", args.password_env))?;
    let tls = args
        .tls
        .parse()
        .map_err(|e| anyhow::anyhow!("--tls: {e}"))?;
    let after = args
        .after
        .parse()
        .map_err(|e| anyhow::anyhow!("--after: {e}"))?;
    anyhow::ensure!(args.port != 0, "--port must be between 1 and 65535");
    let tenant = tenant_id(store, args.tenant.as_deref()).await?;
    let name = args
        .name
        .unwrap_or_else(|| format!("{}@{}/{}", args.username, args.host, args.folder));
    let m = store
        .add_mailbox(NewMailbox {
            tenant_id: tenant,
            name,
            host: args.host,
            port: args.port,
            tls,
            username: args.username,
            password_env: args.password_env,
            folder: args.folder,
            after,
        })
        .await?;
    println!(
        "mailbox {} added (id {}, {})",
        m.name,
        m.id,
        if m.tenant_id.is_some() {
            "per-tenant"
        } else {
            "shared, routed by content"
        }
    );
    Ok(())
}
