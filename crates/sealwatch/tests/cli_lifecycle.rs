//! Data lifecycle through the CLI on both engines: `export` writes one tenant's reports (and
//! nothing of another tenant's) as JSON lines and CSV; `purge` removes reports past their
//! retention and raw messages past theirs, and keeps the rest.

#[path = "../../../tests/common/db.rs"]
mod db;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use db::{Engine, TestDb};
use serde_json::Value;

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

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Simulates one week for two domains from `start` into `dir/name`; returns the domains.
fn simulate(config: &Path, dir: &Path, name: &str, start: &str) -> Vec<String> {
    let out = dir.join(name);
    let list = dir.join(format!("{name}.txt"));
    sealwatch(
        config,
        &[
            "simulate",
            "--domains",
            "2",
            "--weeks",
            "1",
            "--start",
            start,
            "--seed",
            "5",
            "--out",
            out.to_str().expect("utf-8"),
            "--domains-out",
            list.to_str().expect("utf-8"),
        ],
    );
    std::fs::read_to_string(&list)
        .expect("list")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn jsonl(config: &Path, tenant: &str) -> Vec<Value> {
    let out = sealwatch(
        config,
        &[
            "export",
            "--tenant",
            tenant,
            "--from",
            "2024-01-01",
            "--to",
            "2027-12-31",
        ],
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

fn begins(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l["begin"].as_str().expect("begin").to_owned())
        .collect()
}

async fn export_is_tenant_scoped_and_purge_keeps_what_retention_allows(engine: Engine) {
    let db = TestDb::new(engine, "lifecycle").await;
    let dir = Dir(std::env::temp_dir().join(format!(
        "sealwatch-lifecycle-{}-{engine:?}",
        std::process::id()
    )));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).expect("dir");
    let config = dir.0.join("sealwatch.toml");
    std::fs::write(&config, format!("[database]\nurl = \"{}\"\n", db.url)).expect("config");
    // The same two domains (same seed), one week long ago and one recent week.
    let domains = simulate(&config, &dir.0, "old", "2025-01-06");
    let again = simulate(&config, &dir.0, "new", "2026-11-09");
    assert_eq!(domains, again);
    sealwatch(
        &config,
        &["tenant", "add", "alpha", "--domain", &domains[0]],
    );
    sealwatch(&config, &["tenant", "add", "beta", "--domain", &domains[1]]);
    for part in ["old", "new"] {
        sealwatch(
            &config,
            &["import", dir.0.join(part).to_str().expect("utf-8")],
        );
    }

    let alpha = jsonl(&config, "alpha");
    let beta = jsonl(&config, "beta");
    assert!(!alpha.is_empty() && !beta.is_empty());
    let alpha_text = serde_json::to_string(&alpha).expect("json");
    assert!(alpha_text.contains(&domains[0]));
    assert!(
        !alpha_text.contains(&domains[1]),
        "tenant alpha's export must not contain beta's domain"
    );
    assert!(alpha.iter().any(|l| l["type"] == "dmarc-aggregate"));
    assert!(alpha.iter().any(|l| l["type"] == "tls-rpt"));
    for l in alpha.iter().filter(|l| l["type"] == "dmarc-aggregate") {
        assert_eq!(l["policy_domain"], domains[0].as_str());
        assert!(!l["records"].as_array().expect("records").is_empty());
    }

    // CSV: a header and one row per DMARC record; the same records as the JSON lines.
    let csv_path = dir.0.join("alpha.csv");
    sealwatch(
        &config,
        &[
            "export",
            "--tenant",
            "alpha",
            "--from",
            "2024-01-01",
            "--to",
            "2027-12-31",
            "--format",
            "csv",
            "--kind",
            "dmarc",
            "--out",
            csv_path.to_str().expect("utf-8"),
        ],
    );
    let csv = std::fs::read_to_string(&csv_path).expect("csv");
    let mut rows = csv.split("\r\n").filter(|l| !l.is_empty());
    assert!(
        rows.next()
            .expect("header")
            .starts_with("report_id,org_name,begin,end")
    );
    let records: usize = alpha
        .iter()
        .filter(|l| l["type"] == "dmarc-aggregate")
        .map(|l| l["records"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(rows.count(), records);
    // A date range selects by the period reports cover.
    let recent = sealwatch(
        &config,
        &[
            "export",
            "--tenant",
            "alpha",
            "--from",
            "2026-11-01",
            "--to",
            "2026-12-31",
        ],
    );
    let recent_lines = String::from_utf8_lossy(&recent.stdout).lines().count();
    let old_count = begins(&alpha)
        .iter()
        .filter(|b| b.starts_with("2025"))
        .count();
    assert!(old_count > 0);
    assert_eq!(recent_lines, alpha.len() - old_count);

    // Purge as of 100 days from now: the 2025 reports are past 400 days, the raw messages
    // (received today) past 90; the November 2026 reports stay.
    let now = (chrono::Utc::now() + chrono::Duration::days(100)).to_rfc3339();
    let out = sealwatch(&config, &["purge", "--now", &now]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("purged "), "{said}");
    let alpha_after = jsonl(&config, "alpha");
    let beta_after = jsonl(&config, "beta");
    assert_eq!(alpha_after.len(), alpha.len() - old_count);
    assert!(begins(&alpha_after).iter().all(|b| b.starts_with("2026")));
    assert!(begins(&beta_after).iter().all(|b| b.starts_with("2026")));
    let old_total = old_count
        + begins(&beta)
            .iter()
            .filter(|b| b.starts_with("2025"))
            .count();
    let dmarc_tls: u64 = said
        .split(", ")
        .filter(|p| p.contains("DMARC reports") || p.contains("TLS reports"))
        .filter_map(|p| p.split_whitespace().find_map(|w| w.parse::<u64>().ok()))
        .sum();
    assert_eq!(dmarc_tls as usize, old_total, "{said}");
    assert!(!said.contains("purged 0 raw messages"), "{said}");
    // Purging again changes nothing.
    let again = sealwatch(&config, &["purge", "--now", &now]);
    assert!(
        String::from_utf8_lossy(&again.stdout)
            .starts_with("purged 0 raw messages, 0 DMARC reports, 0 TLS reports"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn export_is_tenant_scoped_and_purge_keeps_what_retention_allows() {
        super::export_is_tenant_scoped_and_purge_keeps_what_retention_allows(super::Engine::Sqlite)
            .await
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn export_is_tenant_scoped_and_purge_keeps_what_retention_allows() {
        super::export_is_tenant_scoped_and_purge_keeps_what_retention_allows(
            super::Engine::Postgres,
        )
        .await
    }
}
