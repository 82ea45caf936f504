//! The weekly digest end to end through the CLI: `simulate` writes five weeks of report
//! emails with injected incidents, `import` stores them, `analyze` judges the last week, and
//! `digest preview` renders the digest of that week for each kind of week. The plain-text
//! digests are insta snapshots (`tests/snapshots/`), identical on both engines (the simulation
//! is seeded, so domain names and numbers are stable), and each is also checked for the
//! phrases that make it read right. Host names and IPs from reports carry zero-width spaces
//! (U+200B) after their dots, invisible in the snapshots.

#[path = "../../../tests/common/db.rs"]
mod db;
#[path = "../../../tests/common/servers.rs"]
mod servers;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use db::{Engine, TestDb};

const START: &str = "2026-10-05";
/// The last simulated day (a Sunday): the week 2026-W45 ends with it.
const LAST: &str = "2026-11-08";
const WEEK: &str = "2026-W45";

struct Run {
    dir: PathBuf,
    config: PathBuf,
    domains: Vec<String>,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sealwatch(config: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run sealwatch");
    assert!(
        out.status.success(),
        "sealwatch {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Three simulated domains (0: certificate expired on one MX from day 14; 1: MTA-STS policy
/// broken from day 14; 2: healthy) and a fourth tenant whose domain never gets reports.
fn scenario(db: &TestDb, label: &str) -> Run {
    let dir = std::env::temp_dir().join(format!("sealwatch-digest-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("sealwatch.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{}\"\n\n[reporting]\ndmarc_rua = \"dmarc@reports.sealwatch.test\"\ntlsrpt_rua = \"tlsrpt@reports.sealwatch.test\"\n\n[digest]\nunsubscribe_url = \"https://sealwatch.test/unsubscribe\"\n",
            db.url
        ),
    )
    .expect("config");
    let mails = dir.join("mail");
    let list = dir.join("domains.txt");
    sealwatch(
        &config,
        &[
            "simulate",
            "--domains",
            "3",
            "--weeks",
            "5",
            "--start",
            START,
            "--seed",
            "11",
            "--out",
            mails.to_str().expect("utf-8"),
            "--domains-out",
            list.to_str().expect("utf-8"),
            "--incident",
            "cert-expired:domain=0,mx=0,from=14",
            "--incident",
            "mta-sts-broken:domain=1,from=14",
        ],
    );
    let mut domains: Vec<String> = std::fs::read_to_string(&list)
        .expect("domain list")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(domains.len(), 3);
    domains.push("quiet-tenant.example".to_owned());
    for (i, d) in domains.iter().enumerate() {
        sealwatch(
            &config,
            &["tenant", "add", &format!("tenant-{i}"), "--domain", d],
        );
    }
    let imported = sealwatch(&config, &["import", mails.to_str().expect("utf-8")]);
    assert!(String::from_utf8_lossy(&imported.stdout).contains("quarantined 0"));
    sealwatch(&config, &["analyze", "--today", LAST]);
    Run {
        dir,
        config,
        domains,
    }
}

fn preview(run: &Run, domain: &str, format: &str) -> String {
    let out = sealwatch(
        &run.config,
        &[
            "digest", "preview", "--domain", domain, "--week", WEEK, "--format", format,
        ],
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn subject(text: &str) -> &str {
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix("Subject: "))
        .expect("preview starts with the subject")
}

async fn digests_of_simulated_weeks(engine: Engine) {
    let db = TestDb::new(engine, "digest-snapshots").await;
    let run = scenario(&db, &format!("{engine:?}").to_lowercase());

    // Certificate expired on one MX host.
    let cert = preview(&run, &run.domains[0], "text");
    assert!(subject(&cert).contains("need"), "{cert}");
    assert!(!subject(&cert).contains("All clear"));
    assert!(cert.contains("certificate-expired"), "{cert}");
    assert!(cert.contains("has expired; renew it now"), "{cert}");
    assert!(cert.contains("Needs attention"));
    assert!(cert.contains("What to do:") && cert.contains("Who usually fixes it:"));
    assert!(!cert.contains("Nothing needs attention"));
    assert!(!cert.contains("sts-policy-fetch-error"));
    insta::assert_snapshot!("certificate_expiry_week", &cert);

    // MTA-STS policy cannot be fetched.
    let sts = preview(&run, &run.domains[1], "text");
    assert!(subject(&sts).contains("need"), "{sts}");
    assert!(sts.contains("sts-policy-fetch-error"), "{sts}");
    assert!(sts.contains("MTA-STS"), "{sts}");
    assert!(sts.contains("/.well-known/mta-sts.txt"), "{sts}");
    assert!(!sts.contains("certificate-expired"));
    insta::assert_snapshot!("mta_sts_broken_week", &sts);

    // A healthy week is short and says so.
    let healthy = preview(&run, &run.domains[2], "text");
    assert!(
        subject(&healthy).ends_with(&format!("{WEEK}: All clear")),
        "{healthy}"
    );
    assert!(healthy.contains("Good news: nothing needs doing this week."));
    assert!(healthy.contains("Nothing needs attention this week."));
    assert!(!healthy.contains("What to do:"));
    assert!(
        healthy.lines().count() < cert.lines().count(),
        "the healthy digest is the short one"
    );
    insta::assert_snapshot!("healthy_week", &healthy);

    // No reports at all: a short note on how to fix it, no empty tables.
    let quiet = preview(&run, "quiet-tenant.example", "text");
    assert!(subject(&quiet).contains("No reports yet"), "{quiet}");
    assert!(quiet.contains(
        "_dmarc.quiet-tenant.example  TXT  \"v=DMARC1; p=none; rua=mailto:dmarc@reports.sealwatch.test\""
    ));
    assert!(quiet.contains(
        "_smtp._tls.quiet-tenant.example  TXT  \"v=TLSRPTv1; rua=mailto:tlsrpt@reports.sealwatch.test\""
    ));
    assert!(!quiet.contains("Sending sources"));
    assert!(!quiet.contains("The week in numbers"));
    assert!(quiet.lines().count() < 40, "short: {quiet}");
    insta::assert_snapshot!("no_data_week", &quiet);

    // The HTML part of the same week carries the same sections.
    let html = preview(&run, &run.domains[0], "html");
    for heading in [
        "The week in numbers",
        "Needs attention",
        "Inbound encryption (TLS)",
        "Sending sources",
        "Domain health check",
    ] {
        assert!(html.contains(heading), "HTML has {heading}");
    }
    assert!(html.contains("certificate-expired"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_digests_of_simulated_weeks() {
    digests_of_simulated_weeks(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_digests_of_simulated_weeks() {
    digests_of_simulated_weeks(Engine::Postgres).await;
}

#[test]
fn preview_rejects_unknown_weeks_and_domains() {
    let dir = std::env::temp_dir().join(format!("sealwatch-digest-args-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("sealwatch.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"sqlite://{}\"\n",
            dir.join("db.sqlite").display()
        ),
    )
    .expect("config");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sealwatch"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .expect("run")
    };
    let bad_week = run(&[
        "digest",
        "preview",
        "--domain",
        "example.com",
        "--week",
        "2026-W54",
    ]);
    assert!(!bad_week.status.success());
    let bad_domain = run(&[
        "digest",
        "preview",
        "--domain",
        "nobody.example",
        "--week",
        "2026-W48",
    ]);
    assert!(!bad_domain.status.success());
    assert!(String::from_utf8_lossy(&bad_domain.stderr).contains("no tenant owns"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `digest settings` then `digest send` twice against the SMTP sink over implicit TLS: one
/// message, and the second call says it was already sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_send_is_idempotent_from_the_cli() {
    let db = TestDb::new(Engine::Sqlite, "digest-cli-send").await;
    let dir = std::env::temp_dir().join(format!("sealwatch-digest-send-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("sealwatch.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{}\"\n\n[smtp]\nhost = \"{}\"\nport = {}\ntls = \"implicit\"\nusername = \"{}\"\npassword_env = \"SEALWATCH_DIGEST_TEST_SMTP_PASSWORD\"\nca_file = \"{}\"\ntimeout_secs = 10\n",
            db.url,
            servers::var("SEALWATCH_TEST_SMTP_HOST"),
            servers::var("SEALWATCH_TEST_SMTPS_PORT"),
            servers::var("SEALWATCH_TEST_SMTP_USER"),
            servers::var("SEALWATCH_TEST_CA"),
        ),
    )
    .expect("config");
    let rcpt = format!("{}@digest.test", servers::unique_user("cli-send"));
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sealwatch"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .env(
                "SEALWATCH_DIGEST_TEST_SMTP_PASSWORD",
                servers::var("SEALWATCH_TEST_SMTP_PASSWORD"),
            )
            .output()
            .expect("run sealwatch")
    };
    let ok = |args: &[&str]| {
        let out = run(args);
        assert!(
            out.status.success(),
            "sealwatch {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(&["tenant", "add", "acme", "--domain", "acme.example"]);
    let nobody = run(&["digest", "send", "--tenant", "acme", "--week", WEEK]);
    assert!(!nobody.status.success());
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("no digest recipients"));
    let bad = run(&[
        "digest",
        "settings",
        "--tenant",
        "acme",
        "--recipient",
        "not an address",
    ]);
    assert!(!bad.status.success());
    let set = ok(&[
        "digest",
        "settings",
        "--tenant",
        "acme",
        "--recipient",
        &rcpt,
        "--weekday",
        "3",
        "--hour",
        "9",
        "--timezone",
        "Europe/Berlin",
    ]);
    assert!(set.contains("weekday 3 at 09:00 Europe/Berlin"), "{set}");
    let first = ok(&["digest", "send", "--tenant", "acme", "--week", WEEK]);
    assert!(first.contains(": sent (attempt 1"), "{first}");
    let second = ok(&["digest", "send", "--tenant", "acme", "--week", WEEK]);
    assert!(second.contains("already sent"), "{second}");
    let spool = PathBuf::from(servers::var("SEALWATCH_TEST_SMTP_SPOOL"))
        .join("by-rcpt")
        .join(rcpt.to_lowercase());
    let emls: Vec<_> = std::fs::read_dir(&spool)
        .expect("spool dir")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    assert_eq!(emls.len(), 1, "one message");
    let eml = std::fs::read_to_string(&emls[0]).expect("eml");
    assert!(eml.contains("No reports yet"), "the no-data digest: {eml}");
    let status = ok(&["digest", "status", "--week", WEEK]);
    assert!(
        status.contains("sent") && status.contains("attempts 1"),
        "{status}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
