//! Crash safety of `sealwatch poll --once` as a process: kill it with SIGKILL mid-batch,
//! restart it, and the database holds every report exactly once, on SQLite and PostgreSQL.

#[path = "../../../tests/common/db.rs"]
mod db;
#[path = "../../../tests/common/reports.rs"]
mod reports;
#[path = "../../../tests/common/servers.rs"]
mod servers;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use db::{Engine, TestDb};
use sealwatch_model::DomainName;
use sealwatch_store::{AfterAction, NewMailbox, TlsMode};

const DAY: i64 = 1_793_577_600;
const MESSAGES: usize = 400;

fn write_config(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    let path = dir.join("sealwatch.toml");
    let toml = format!(
        "[database]\nurl = \"{url}\"\nmax_connections = 4\n\n[poller]\nbatch_size = 10\ntimeout_secs = 10\nretries = 2\nbackoff_ms = 100\n"
    );
    std::fs::write(&path, toml).expect("write config");
    path
}

fn poll_once(config: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .args([
            "--config",
            config.to_str().expect("utf-8"),
            "poll",
            "--once",
        ])
        .output()
        .expect("run sealwatch poll")
}

async fn a_poller_killed_mid_batch_loses_and_doubles_nothing(engine: Engine) {
    let db = TestDb::new(engine, "kill").await;
    db.store
        .create_tenant(
            "Alpha",
            &[DomainName::parse("alpha.example").expect("domain")],
        )
        .await
        .expect("tenant");
    let user = servers::unique_user("kill");
    let msgs: Vec<Vec<u8>> = (0..MESSAGES)
        .map(|i| {
            reports::aggregate_email(
                "google.com",
                &format!("k-{i}"),
                "alpha.example",
                DAY,
                &[("192.0.2.1", 3), ("192.0.2.2", 4)],
            )
        })
        .collect();
    servers::seed(&user, "INBOX", &msgs);
    db.store
        .add_mailbox(NewMailbox {
            tenant_id: None,
            name: "kill-test".into(),
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
    let dir = std::env::temp_dir().join(format!("sealwatch-kill-{}", servers::unique_user("d")));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = write_config(&dir, &db.url);

    // Start a poll and kill it once some batches are committed but well before the end.
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .args([
            "--config",
            config.to_str().expect("utf-8"),
            "poll",
            "--once",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn poller");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stored = db.store.counts().await.expect("counts").dmarc_reports;
        if stored >= 30 {
            break;
        }
        assert!(Instant::now() < deadline, "poller made no progress");
        if child.try_wait().expect("wait").is_some() {
            let mut err = String::new();
            use std::io::Read as _;
            let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
            panic!("poller finished before it could be killed: {err}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let partial = db.store.counts().await.expect("counts");
    assert!(
        partial.dmarc_reports < MESSAGES as u64,
        "killed mid-run, not after: {partial:?}"
    );

    let out = poll_once(&config);
    assert!(
        out.status.success(),
        "restart: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    let counts = db.store.counts().await.expect("counts");
    assert_eq!(
        counts.dmarc_reports, MESSAGES as u64,
        "nothing lost; restart said {summary}"
    );
    assert_eq!(counts.raw_messages, MESSAGES as u64, "nothing doubled");
    assert_eq!(counts.dmarc_messages, 7 * MESSAGES as i64);
    assert_eq!(servers::folder_state(&user, "INBOX").0, 0);
    assert_eq!(servers::folder_state(&user, "Done").0, MESSAGES as u32);

    let third = poll_once(&config);
    assert!(third.status.success());
    assert_eq!(
        String::from_utf8_lossy(&third.stdout).trim(),
        "stored 0, duplicates 0, quarantined 0"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

on_both_engines!(a_poller_killed_mid_batch_loses_and_doubles_nothing);
