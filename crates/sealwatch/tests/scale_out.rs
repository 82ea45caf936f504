//! Scale-out on PostgreSQL with real processes and a real Dovecot: three pollers, two
//! workers and two schedulers share one database and one job queue over twenty mailboxes.
//! Every report is stored exactly once, a poller killed mid-run has its mailboxes finished
//! by the others, and the two schedulers send each weekly digest once.

#[path = "../../../tests/common/db.rs"]
mod db;
#[path = "../../../tests/common/reports.rs"]
mod reports;
#[path = "../../../tests/common/servers.rs"]
mod servers;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use db::{Engine, TestDb};
use sea_orm::ConnectionTrait as _;
use sealwatch_model::DomainName;
use sealwatch_store::{AfterAction, NewMailbox, TlsMode};

const DAY: i64 = 1_793_577_600;
const MAILBOXES: usize = 20;
const PER_MAILBOX: usize = 30;

fn spawn(config: &Path, role: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .arg("--config")
        .arg(config)
        .args([
            "--log-level",
            "info",
            "serve",
            "--role",
            role,
            "--bind",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve")
}

fn terminate(child: Child) -> String {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().expect("exit");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn delivered(rcpt: &str) -> usize {
    let dir = Path::new(&servers::var("SEALWATCH_TEST_SMTP_SPOOL"))
        .join("by-rcpt")
        .join(rcpt.to_lowercase());
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .count()
        })
        .unwrap_or(0)
}

async fn scalar(db: &TestDb, sql: &str) -> i64 {
    let row = db
        .store
        .connection()
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            sql,
        ))
        .await
        .expect("query")
        .expect("row");
    row.try_get("", "n").expect("n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pollers_workers_and_schedulers_share_one_postgres() {
    let db = TestDb::new(Engine::Postgres, "scaleout").await;
    let tenant = db
        .store
        .create_tenant(
            "Scale",
            &[DomainName::parse("scale.example").expect("domain")],
        )
        .await
        .expect("tenant");
    let rcpt = format!("{}@scale.example", servers::unique_user("digest"));
    db.store
        .connection()
        .execute_unprepared(&format!(
            "UPDATE tenants SET digest_recipients = '[\"{rcpt}\"]', \
             created_at = NOW() - INTERVAL '30 days' WHERE id = {}",
            tenant.id
        ))
        .await
        .expect("recipients");
    let mut users = Vec::new();
    for m in 0..MAILBOXES {
        let user = servers::unique_user(&format!("scale{m}"));
        let msgs: Vec<Vec<u8>> = (0..PER_MAILBOX)
            .map(|i| {
                reports::aggregate_email(
                    "google.com",
                    &format!("scale-{m}-{i}"),
                    "scale.example",
                    DAY,
                    &[("192.0.2.1", 3), ("192.0.2.2", 4)],
                )
            })
            .collect();
        servers::seed(&user, "INBOX", &msgs);
        db.store
            .add_mailbox(NewMailbox {
                tenant_id: None,
                name: format!("scale-{m}"),
                host: "127.0.0.1".into(),
                port: servers::imap_port(),
                tls: TlsMode::Plain,
                username: user.clone(),
                password_env: servers::PASSWORD_ENV.into(),
                folder: "INBOX".into(),
                after: AfterAction::Move("Done".into()),
            })
            .await
            .expect("mailbox");
        users.push(user);
    }
    let dir = std::env::temp_dir().join(format!("sealwatch-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("sealwatch.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{}\"\nmax_connections = 4\n\n\
             [poller]\ninterval_secs = 2\nlease_secs = 6\nbatch_size = 5\nconcurrency = 2\ntimeout_secs = 10\n\n\
             [jobs]\nscheduler_cron = \"* * * * * *\"\nidle_poll_ms = 200\nconcurrency = 2\n\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\n",
            db.url,
            servers::var("SEALWATCH_TEST_SMTP_PORT")
        ),
    )
    .expect("config");

    let total = (MAILBOXES * PER_MAILBOX) as i64;
    let mut pollers: Vec<Child> = (0..3).map(|_| spawn(&config, "poller")).collect();
    let workers: Vec<Child> = (0..2).map(|_| spawn(&config, "worker")).collect();
    // Two schedulers started at once.
    let schedulers: Vec<Child> = (0..2).map(|_| spawn(&config, "scheduler")).collect();

    // Kill one poller hard once ingest is under way.
    let deadline = Instant::now() + Duration::from_secs(120);
    while scalar(&db, "SELECT COUNT(*) AS n FROM dmarc_reports").await < total / 10 {
        assert!(Instant::now() < deadline, "no ingest progress");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut victim = pollers.remove(0);
    victim.kill().expect("SIGKILL a poller");
    victim.wait().expect("reap");
    let at_kill = scalar(&db, "SELECT COUNT(*) AS n FROM dmarc_reports").await;
    assert!(at_kill < total, "the poller was killed mid-run");

    let deadline = Instant::now() + Duration::from_secs(180);
    while scalar(&db, "SELECT COUNT(*) AS n FROM dmarc_reports").await < total {
        assert!(
            Instant::now() < deadline,
            "the surviving pollers did not finish"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while delivered(&rcpt) == 0 {
        assert!(Instant::now() < deadline, "the weekly digest was not sent");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A few more scheduler ticks and poll rounds: nothing more may arrive.
    tokio::time::sleep(Duration::from_secs(5)).await;

    let mut logs = String::new();
    for c in pollers.into_iter().chain(workers).chain(schedulers) {
        logs.push_str(&terminate(c));
    }
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) AS n FROM dmarc_reports").await,
        total,
        "every report exactly once"
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT COALESCE(SUM(message_count), 0)::BIGINT AS n FROM dmarc_reports"
        )
        .await,
        total * 7,
        "no record counted twice"
    );
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) AS n FROM mailbox_messages").await,
        total
    );
    for user in &users {
        assert_eq!(
            servers::folder_state(user, "INBOX").0,
            0,
            "{user}: INBOX emptied"
        );
        assert_eq!(
            servers::folder_state(user, "Done").0 as usize,
            PER_MAILBOX,
            "{user}: every message moved once"
        );
    }
    assert_eq!(delivered(&rcpt), 1, "one digest for the week");
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) AS n FROM digests WHERE status = 'sent'"
        )
        .await,
        1
    );
    // The workers ran the analysis that ingest queued.
    assert!(logs.contains("domain analysed"), "{logs}");
    assert!(
        logs.contains("this process is now the active scheduler"),
        "{logs}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
