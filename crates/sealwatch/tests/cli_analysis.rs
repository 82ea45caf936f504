//! Analysis end to end through the CLI: `simulate` writes report emails with one injected
//! incident, `import` stores them, `analyze` judges the last week, `anomalies --json` shows
//! what was flagged. One test per detector, a healthy month, and the anomaly lifecycle.

#[path = "../../../tests/common/db.rs"]
mod db;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use db::{Engine, TestDb};
use serde_json::Value;

const START: &str = "2026-10-05";
const WEEKS: u32 = 5;
/// The last simulated day: START + 5 weeks - 1 day.
const LAST: &str = "2026-11-08";

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

/// Simulates `domains` domains with the given incidents, creates one tenant per domain and
/// imports everything.
fn scenario(db: &TestDb, label: &str, domains: usize, incidents: &[&str]) -> Run {
    scenario_seeded(db, label, domains, incidents, 11)
}

fn scenario_seeded(db: &TestDb, label: &str, domains: usize, incidents: &[&str], seed: u64) -> Run {
    let dir =
        std::env::temp_dir().join(format!("sealwatch-analysis-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("sealwatch.toml");
    std::fs::write(&config, base_config(db)).expect("config");
    let mails = dir.join("mail");
    let list = dir.join("domains.txt");
    let n = domains.to_string();
    let weeks = WEEKS.to_string();
    let seed_text = seed.to_string();
    let mut args = vec![
        "simulate",
        "--domains",
        &n,
        "--weeks",
        &weeks,
        "--start",
        START,
        "--seed",
        &seed_text,
        "--out",
        mails.to_str().expect("utf-8"),
        "--domains-out",
        list.to_str().expect("utf-8"),
    ];
    for i in incidents {
        args.push("--incident");
        args.push(i);
    }
    sealwatch(&config, &args);
    let domains: Vec<String> = std::fs::read_to_string(&list)
        .expect("domain list")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        domains.len(),
        domains_len(domains.len(), n.parse().expect("n"))
    );
    for (i, d) in domains.iter().enumerate() {
        sealwatch(
            &config,
            &["tenant", "add", &format!("tenant-{i}"), "--domain", d],
        );
    }
    let imported = sealwatch(&config, &["import", mails.to_str().expect("utf-8")]);
    let summary = String::from_utf8_lossy(&imported.stdout);
    assert!(
        summary.contains("quarantined 0"),
        "every simulated report routes: {summary}"
    );
    Run {
        dir,
        config,
        domains,
    }
}

/// The database and the test DNS server (the analysis resolves the MX hosts that TLS
/// failures name; the simulated domains' names do not resolve there).
fn base_config(db: &TestDb) -> String {
    format!(
        "[database]\nurl = \"{}\"\n\n[health]\nname_servers = [\"{}\"]\ndns_timeout_secs = 2.0\n",
        db.url,
        test_dns()
    )
}

fn test_dns() -> String {
    std::env::var("SEALWATCH_TEST_DNS").unwrap_or_else(|_| "127.0.0.1:5353".into())
}

fn domains_len(got: usize, want: usize) -> usize {
    assert_eq!(got, want, "one line per simulated domain");
    got
}

fn analyze(run: &Run, today: &str) -> String {
    let out = sealwatch(&run.config, &["analyze", "--today", today]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn anomalies(run: &Run, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["anomalies", "--json"];
    args.extend_from_slice(extra);
    let out = sealwatch(&run.config, &args);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn kinds_for(list: &[Value], domain: &str) -> Vec<String> {
    list.iter()
        .filter(|a| a["domain"] == domain)
        .map(|a| a["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Runs one incident on domain 0 of three and checks the expected kind is flagged for that
/// domain only, with its evidence.
async fn detects(label: &str, incident: &str, kind: &str) -> (Vec<Value>, Run, TestDb) {
    detects_seeded(label, incident, kind, 11).await
}

async fn detects_seeded(
    label: &str,
    incident: &str,
    kind: &str,
    seed: u64,
) -> (Vec<Value>, Run, TestDb) {
    let db = TestDb::new(Engine::Sqlite, label).await;
    let run = scenario_seeded(&db, label, 3, &[incident], seed);
    analyze(&run, LAST);
    let all = anomalies(&run, &[]);
    let hit: Vec<&Value> = all
        .iter()
        .filter(|a| a["kind"] == kind && a["domain"] == run.domains[0].as_str())
        .collect();
    assert!(
        !hit.is_empty(),
        "{kind} not flagged for {} by {incident}; got {all:#?}",
        run.domains[0]
    );
    for other in &run.domains[1..] {
        assert!(
            !kinds_for(&all, other).contains(&kind.to_owned()),
            "{kind} flagged for unaffected {other}"
        );
    }
    for a in &hit {
        assert_eq!(a["status"], "open");
        assert!(a["window_end"].as_str().unwrap_or_default() <= LAST);
        assert!(!a["summary"].as_str().unwrap_or_default().is_empty());
        assert!(a["evidence"].is_object(), "evidence is structured: {a}");
        for part in [
            "what_happened",
            "what_it_means",
            "what_to_do",
            "who_fixes_it",
        ] {
            assert!(
                a["explanation"][part]
                    .as_str()
                    .is_some_and(|s| s.len() > 20),
                "plain-English {part} for {kind}: {a}"
            );
        }
    }
    (all, run, db)
}

async fn a_healthy_month_yields_no_anomalies(engine: Engine) {
    let db = TestDb::new(engine, "healthy").await;
    let run = scenario(&db, &format!("healthy-{engine:?}"), 4, &[]);
    let summary = analyze(&run, LAST);
    assert!(summary.starts_with("findings 0,"), "{summary}");
    assert_eq!(anomalies(&run, &[]), Vec::<Value>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_on_one_mx_is_a_certificate_cluster() {
    let (all, run, _db) = detects(
        "cert",
        "cert-expired:domain=0,mx=0,from=28",
        "tls-certificate-cluster",
    )
    .await;
    let a = all
        .iter()
        .find(|a| a["kind"] == "tls-certificate-cluster")
        .expect("flagged");
    assert_eq!(a["severity"], "critical");
    assert!(
        a["window_start"].as_str().unwrap_or_default() >= "2026-11-02",
        "starts on the incident day: {a}"
    );
    assert!(
        a["evidence"].to_string().contains("certificate-expired"),
        "{a}"
    );
    let _ = run;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_providers_mismatch_is_a_single_provider_failure() {
    let (all, _run, _db) = detects(
        "mismatch",
        "provider-mismatch:domain=0,provider=google,result=certificate-host-mismatch,from=28",
        "tls-single-provider",
    )
    .await;
    let a = all
        .iter()
        .find(|a| a["kind"] == "tls-single-provider")
        .expect("flagged");
    assert!(
        a["evidence"].to_string().to_lowercase().contains("google"),
        "{a}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_mta_sts_policy_is_flagged() {
    let (all, _run, _db) = detects(
        "sts",
        "mta-sts-broken:domain=0,result=sts-policy-fetch-error,from=28",
        "mta-sts-policy",
    )
    .await;
    let a = all
        .iter()
        .find(|a| a["kind"] == "mta-sts-policy")
        .expect("flagged");
    assert!(
        a["evidence"].to_string().contains("sts-policy-fetch-error"),
        "{a}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_rate_downgrade_from_one_network_is_flagged() {
    let (all, _run, _db) = detects(
        "downgrade",
        "downgrade:domain=0,network=203.0.113.0/24,rate=3,from=21",
        "tls-low-rate-negotiation",
    )
    .await;
    let a = all
        .iter()
        .find(|a| a["kind"] == "tls-low-rate-negotiation")
        .expect("flagged");
    assert!(a["evidence"].to_string().contains("203.0.113."), "{a}");
    // Without reverse DNS (the default) the senders have no names.
    assert_eq!(a["evidence"]["sending_names"], serde_json::json!([]), "{a}");
}

/// With `analysis.reverse_dns`, the senders of the downgrade are named by their PTR records
/// (the test DNS server publishes one for all of 203.0.113.0/24).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverse_dns_names_the_sending_sources() {
    let db = TestDb::new(Engine::Sqlite, "rdns").await;
    let run = scenario(
        &db,
        "rdns",
        2,
        &["downgrade:domain=0,network=203.0.113.0/24,rate=3,from=21"],
    );
    let mut text = std::fs::read_to_string(&run.config).expect("config");
    text.push_str("\n[analysis]\nreverse_dns = true\n");
    std::fs::write(&run.config, text).expect("config");
    analyze(&run, LAST);
    let all = anomalies(&run, &[]);
    let a = all
        .iter()
        .find(|a| a["kind"] == "tls-low-rate-negotiation")
        .expect("flagged");
    assert_eq!(
        a["evidence"]["sending_names"],
        serde_json::json!(["legacy-mta.downgrade.example"]),
        "{a}"
    );
    assert!(
        a["summary"]
            .to_string()
            .contains("legacy-mta.downgrade.example")
            || a["explanation"]
                .to_string()
                .contains("legacy-mta.downgrade.example"),
        "{a}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reporter_going_silent_is_flagged() {
    let (all, _run, _db) = detects(
        "silent",
        "silent:domain=0,provider=google,from=30",
        "reporter-silent",
    )
    .await;
    let a = all
        .iter()
        .find(|a| a["kind"] == "reporter-silent")
        .expect("flagged");
    assert!(
        a["evidence"].to_string().to_lowercase().contains("google"),
        "{a}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofing_campaign_is_a_new_unauthenticated_source() {
    detects(
        "spoof",
        "spoofing:domain=0,volume=500,from=28",
        "dmarc-new-unauthenticated-source",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_without_reports_is_no_data() {
    let db = TestDb::new(Engine::Sqlite, "nodata").await;
    let run = scenario(&db, "nodata", 2, &[]);
    sealwatch(
        &run.config,
        &["tenant", "add", "quiet-co", "--domain", "quiet.example"],
    );
    analyze(&run, LAST);
    let all = anomalies(&run, &["--domain", "quiet.example"]);
    assert_eq!(kinds_for(&all, "quiet.example"), vec!["no-data".to_owned()]);
    assert_eq!(
        anomalies(&run, &["--kind", "no-data"]).len(),
        1,
        "only the silent domain"
    );
}

async fn an_ongoing_incident_stays_one_anomaly_and_a_dismissal_sticks(engine: Engine) {
    let db = TestDb::new(engine, "lifecycle").await;
    let run = scenario(
        &db,
        &format!("lifecycle-{engine:?}"),
        2,
        &["cert-expired:domain=0,mx=0,from=25"],
    );
    analyze(&run, "2026-11-01");
    analyze(&run, "2026-11-04");
    analyze(&run, LAST);
    let cert: Vec<Value> = anomalies(&run, &["--kind", "tls-certificate-cluster"]);
    assert_eq!(
        cert.len(),
        1,
        "one anomaly for one ongoing problem: {cert:#?}"
    );
    // Judged once a day from the first day of evidence (2026-10-30) to the last: the three
    // runs caught up on every day in between.
    assert_eq!(cert[0]["occurrences"], 10);
    assert_eq!(cert[0]["first_seen"], "2026-10-30");
    assert_eq!(cert[0]["last_seen"], LAST);
    // Staff dismiss it as a false positive: later runs leave it alone and open nothing new.
    let id = cert[0]["id"].as_i64().expect("id");
    let reviewed = db
        .store
        .review_anomaly(id, "dismiss", Some("known maintenance"), None, Some("test"))
        .await
        .expect("review");
    assert_eq!(reviewed.status, "dismissed");
    let summary = analyze(&run, LAST);
    assert!(summary.contains("suppressed 1"), "{summary}");
    let after = anomalies(&run, &["--kind", "tls-certificate-cluster"]);
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["status"], "dismissed");
}

/// What the anomaly list says of a database, without row ids or timestamps of the run.
fn lifecycle_of(run: &Run) -> Vec<String> {
    let mut out: Vec<String> = anomalies(run, &[])
        .iter()
        .map(|a| {
            format!(
                "{} {} {} first {} last {} window {}..{} {} x{}",
                a["domain"],
                a["kind"],
                a["fingerprint"],
                a["first_seen"],
                a["last_seen"],
                a["window_start"],
                a["window_end"],
                a["status"],
                a["occurrences"]
            )
        })
        .collect();
    out.sort();
    out
}

/// One `analyze` after importing everything, catching up day by day, leaves the same
/// anomalies (kinds, fingerprints, first and last seen days, windows, statuses,
/// occurrences) as running the analysis every night over the same days; and a report that
/// arrives late moves the watermark back, so the next run judges its day again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_catch_up_run_equals_nightly_runs() {
    const DAYS: u32 = 21;
    let incidents = [
        "cert-expired:domain=0,mx=0,from=24",
        "mta-sts-broken:domain=1,from=27",
    ];
    let last = chrono::NaiveDate::parse_from_str(LAST, "%Y-%m-%d").expect("date");
    let first = last - chrono::Duration::days(i64::from(DAYS) - 1);

    // Nightly: one run per day, each judging that day only.
    let nightly_db = TestDb::new(Engine::Sqlite, "catchup-nightly").await;
    let nightly = scenario(&nightly_db, "catchup-nightly", 3, &incidents);
    let mut text = std::fs::read_to_string(&nightly.config).expect("config");
    text.push_str("\n[analysis]\ncatch_up_days = 1\n");
    std::fs::write(&nightly.config, text).expect("config");
    let mut day = first;
    while day <= last {
        analyze(&nightly, &day.to_string());
        day += chrono::Duration::days(1);
    }

    // One run at the end that catches up over the same days.
    let once_db = TestDb::new(Engine::Sqlite, "catchup-once").await;
    let once = scenario(&once_db, "catchup-once", 3, &incidents);
    let mut text = std::fs::read_to_string(&once.config).expect("config");
    text.push_str(&format!("\n[analysis]\ncatch_up_days = {DAYS}\n"));
    std::fs::write(&once.config, text).expect("config");
    analyze(&once, LAST);

    let (a, b) = (lifecycle_of(&nightly), lifecycle_of(&once));
    assert!(
        a.iter().any(|l| l.contains("tls-certificate-cluster"))
            && a.iter().any(|l| l.contains("mta-sts-policy")),
        "the incidents are found: {a:#?}"
    );
    assert_eq!(a, b, "nightly and one catch-up run disagree");
    let cert = anomalies(&once, &["--kind", "tls-certificate-cluster"]);
    assert!(
        cert[0]["first_seen"].as_str().unwrap_or_default() < LAST,
        "first seen on the first day of its evidence, not on the day of the run: {cert:#?}"
    );

    // Running again judges only the newest day again (its reports may still be arriving):
    // nothing opens, reopens or resolves.
    let again = analyze(&once, LAST);
    assert!(
        again.contains("opened 0,")
            && again.contains("reopened 0,")
            && again.contains("resolved 0,"),
        "{again}"
    );
    let watermark = |db: &TestDb| {
        let store = db.store.clone();
        async move {
            store
                .analysis_targets(None)
                .await
                .expect("targets")
                .iter()
                .map(|t| t.analysed_through)
                .collect::<Vec<_>>()
        }
    };
    let done = watermark(&once_db).await;
    assert!(done.iter().all(|w| w.is_some()), "{done:?}");
    // A late report for an earlier day moves its domain's watermark back before that day.
    let late = once.dir.join("late.xml");
    std::fs::write(
        &late,
        format!(
            "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>late.example</org_name><email>r@late.example</email><report_id>late-1</report_id><date_range><begin>{}</begin><end>{}</end></date_range></report_metadata><policy_published><domain>{}</domain><p>none</p></policy_published><record><row><source_ip>192.0.2.1</source_ip><count>3</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row><identifiers><header_from>{}</header_from></identifiers><auth_results><spf><domain>{}</domain><result>pass</result></spf></auth_results></record></feedback>",
            (first + chrono::Duration::days(3)).and_hms_opt(0, 0, 0).expect("t").and_utc().timestamp(),
            (first + chrono::Duration::days(3)).and_hms_opt(23, 59, 59).expect("t").and_utc().timestamp(),
            once.domains[2],
            once.domains[2],
            once.domains[2],
        ),
    )
    .expect("late report");
    sealwatch(&once.config, &["import", late.to_str().expect("utf-8")]);
    let moved = watermark(&once_db).await;
    let expected_day = i32::try_from(
        (first + chrono::Duration::days(2)
            - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch"))
        .num_days(),
    )
    .expect("day");
    assert!(
        moved.contains(&Some(expected_day)),
        "the late report's domain is to be judged again from its day: {moved:?} (want {expected_day})"
    );
    // The next run judges those days again: a healthy late report changes no anomaly (none
    // moves back in time, counts twice, or reopens for a day already behind it).
    analyze(&once, LAST);
    assert_eq!(lifecycle_of(&once), b);
    assert!(watermark(&once_db).await.iter().all(|w| *w == done[0]));
}

/// A day of TLS reports for downgrade.test (tests/servers/dns/downgrade.test.zone: mx1 is
/// 192.0.2.25 and 2001:db8::25, mx2 is 192.0.2.26) from two reporters. Google's connections
/// to mx2 have always met no STARTTLS now and then, at mx2's real address (a legacy host);
/// Microsoft's connections to mx1 from one network have, for as long as there are reports,
/// reached 198.51.100.66, which is not mx1.
fn downgrade_day(day: chrono::NaiveDate) -> [String; 2] {
    let d = day.format("%Y-%m-%d");
    let report = |org: &str, ok: u64, failure: Value| {
        serde_json::json!({
            "organization-name": org,
            "date-range": {"start-datetime": format!("{d}T00:00:00Z"), "end-datetime": format!("{d}T23:59:59Z")},
            "contact-info": format!("tls@{org}"),
            "report-id": format!("{org}-{d}"),
            "policies": [{
                "policy": {"policy-type": "sts", "policy-string": ["version: STSv1", "mode: enforce", "mx: mx1.downgrade.test", "mx: mx2.downgrade.test"],
                           "policy-domain": "downgrade.test", "mx-host": ["mx1.downgrade.test", "mx2.downgrade.test"]},
                "summary": {"total-successful-session-count": ok, "total-failure-session-count": failure["failed-session-count"]},
                "failure-details": [failure]
            }]
        })
        .to_string()
    };
    [
        report(
            "google.com",
            400,
            serde_json::json!({"result-type": "starttls-not-supported", "sending-mta-ip": "209.85.220.41",
                "receiving-mx-hostname": "mx2.downgrade.test", "receiving-ip": "192.0.2.26", "failed-session-count": 2}),
        ),
        report(
            "microsoft.com",
            300,
            serde_json::json!({"result-type": "starttls-not-supported", "sending-mta-ip": "40.107.22.5",
                "receiving-mx-hostname": "mx1.downgrade.test", "receiving-ip": "198.51.100.66", "failed-session-count": 3}),
        ),
    ]
}

/// A TLS failure that reached an address which is none of its MX host's (resolved through
/// the test DNS server) is the downgrade fingerprint, flagged however long it has lasted;
/// legacy noise at the MX's own address is not. Without MX resolution the same long-standing
/// pattern is the domain's normal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_is_not_the_mx_is_a_downgrade() {
    let setup = |db: &TestDb, label: &str, extra: &str| {
        let dir = std::env::temp_dir().join(format!("sealwatch-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("reports")).expect("dir");
        let run = Run {
            config: dir.join("sealwatch.toml"),
            dir,
            domains: vec!["downgrade.test".to_owned()],
        };
        std::fs::write(&run.config, format!("{}{extra}", base_config(db))).expect("config");
        sealwatch(
            &run.config,
            &["tenant", "add", "acme", "--domain", "downgrade.test"],
        );
        let last = chrono::NaiveDate::parse_from_str(LAST, "%Y-%m-%d").expect("date");
        for back in 0..35 {
            let day = last - chrono::Duration::days(back);
            for (i, json) in downgrade_day(day).iter().enumerate() {
                std::fs::write(
                    run.dir.join("reports").join(format!("{day}-{i}.json")),
                    json,
                )
                .expect("report");
            }
        }
        let imported = sealwatch(
            &run.config,
            &["import", run.dir.join("reports").to_str().expect("utf-8")],
        );
        assert!(
            String::from_utf8_lossy(&imported.stdout).contains("quarantined 0"),
            "{}",
            String::from_utf8_lossy(&imported.stdout)
        );
        analyze(&run, LAST);
        run
    };

    // Without MX resolution: five weeks of the same is the domain's normal by the end.
    let off_db = TestDb::new(Engine::Sqlite, "foreign-receiver-off").await;
    let off = setup(&off_db, "foreign-off", "\n[analysis]\nresolve_mx = false\n");
    let open = anomalies(&off, &["--status", "open"]);
    assert!(open.is_empty(), "{open:#?}");

    let db = TestDb::new(Engine::Sqlite, "foreign-receiver").await;
    let run = setup(&db, "foreign-on", "");
    let all = anomalies(&run, &[]);
    assert_eq!(all.len(), 1, "only the foreign receiver: {all:#?}");
    let a = &all[0];
    assert_eq!(a["kind"], "tls-low-rate-negotiation", "{a}");
    assert_eq!(a["severity"], "warning", "{a}");
    assert_eq!(a["status"], "open", "{a}");
    assert_eq!(a["evidence"]["reason"], "foreign-receiver", "{a}");
    assert_eq!(a["evidence"]["sending_network"], "40.107.22.0/24", "{a}");
    assert!(
        a["evidence"]["foreign_receiving_ips"]
            .get("198.51.100.66")
            .is_some(),
        "{a}"
    );
    assert!(
        a["explanation"]["what_happened"]
            .as_str()
            .is_some_and(|t| t.contains("198.51.100.66") && t.contains("mx1.downgrade.test")),
        "{a}"
    );
}

mod sqlite {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_healthy_month_yields_no_anomalies() {
        super::a_healthy_month_yields_no_anomalies(Engine::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_ongoing_incident_stays_one_anomaly_and_a_dismissal_sticks() {
        super::an_ongoing_incident_stays_one_anomaly_and_a_dismissal_sticks(Engine::Sqlite).await
    }
}

mod postgres {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_healthy_month_yields_no_anomalies() {
        super::a_healthy_month_yields_no_anomalies(Engine::Postgres).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_ongoing_incident_stays_one_anomaly_and_a_dismissal_sticks() {
        super::an_ongoing_incident_stays_one_anomaly_and_a_dismissal_sticks(Engine::Postgres).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_analyses_on_its_first_scheduler_tick_and_stops_cleanly_on_sigterm() {
    let db = TestDb::new(Engine::Sqlite, "serve").await;
    let run = scenario(&db, "serve", 2, &[]);
    assert!(anomalies(&run, &[]).is_empty());
    let child = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .arg("--config")
        .arg(&run.config)
        .args([
            "--log-level",
            "info",
            "serve",
            "--interval",
            "1",
            "--bind",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start serve");
    // The simulated weeks ended before today, so today's analysis must flag the silence.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while anomalies(&run, &["--kind", "no-data"]).len() < run.domains.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not analyse"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let out = child.wait_with_output().expect("serve exits");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "serve exit: {:?}\n{stderr}",
        out.status
    );
    assert!(stderr.contains("nightly batch analysed"), "{stderr}");
    assert!(stderr.contains("admin API listening"), "{stderr}");
    assert!(stderr.contains("shut down cleanly"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_tlsa_records_are_a_dane_problem() {
    // With seed 12 the first simulated domain is on Microsoft 365 and publishes TLSA records.
    let (all, _run, _db) = detects_seeded(
        "dane",
        "dane-broken:domain=0,result=tlsa-invalid,from=28",
        "dane",
        12,
    )
    .await;
    let a = all.iter().find(|a| a["kind"] == "dane").expect("flagged");
    assert!(a["evidence"].to_string().contains("tlsa-invalid"), "{a}");
}
