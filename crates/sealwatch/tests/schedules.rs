//! The same truth whatever the schedule. One simulated month of nine domains with an incident
//! each (certificate expiry, one provider's mismatch, MTA-STS policy 404, a low-rate downgrade
//! that began two weeks before the end, a reporter going silent, a spoofing campaign that
//! began before the digest's week, DANE failures), a healthy domain, one with steady legacy
//! STARTTLS noise, and a domain that never reports, run in four ways:
//!
//! - (a) nightly: each night the reports of the day before arrive and `analyze` runs;
//! - (b) once: everything is imported, then one `analyze`;
//! - (c) nightly with a three-day outage of the workers over the digest's scheduled time;
//! - (d) nightly with every reporter's reports arriving three days late.
//!
//! Reports are imported with the night they arrived as their receipt time
//! (`import --received-at`). Every mode ends with the same anomaly kinds (and first days) per
//! domain and the same digest verdicts for the last week; the healthy and legacy-noise domains
//! get nothing. In (c) and (d) the digest is also built at its scheduled time with what had
//! arrived by then: it never reads "All clear" over a failure its own numbers show.

#[path = "../../../tests/common/db.rs"]
mod db;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{Duration, NaiveDate};
use db::{Engine, TestDb};
use serde_json::Value;

const START: &str = "2026-10-05";
const WEEKS: u32 = 5;
/// The week whose digest is judged (2 to 8 November, the scenario's last week).
const WEEK: &str = "2026-W45";
/// The digests' scheduled time: Monday after the week.
const DIGEST_DAY: &str = "2026-11-09";
/// Seed 12: domain 0 is on Microsoft 365 and publishes TLSA records.
const SEED: &str = "12";
const QUIET: &str = "quiet.example";
const INCIDENTS: &[&str] = &[
    "dane-broken:domain=0,result=tlsa-invalid,from=30",
    "cert-expired:domain=1,mx=0,from=30",
    "provider-mismatch:domain=2,provider=google,result=certificate-host-mismatch,from=31",
    "mta-sts-broken:domain=3,result=sts-policy-fetch-error,from=29",
    "downgrade:domain=4,network=203.0.113.0/24,rate=3,from=21",
    "silent:domain=5,provider=google,from=30",
    "spoofing:domain=6,volume=14000,from=26",
    "legacy-starttls:domain=8",
];
/// Domains where nothing may be found: 7 is healthy, 8 has legacy STARTTLS noise.
const QUIET_DOMAINS: &[usize] = &[7, 8];

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

fn run(config: &Path, args: &[&str]) -> Output {
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

struct Scenario {
    dir: PathBuf,
    mail: PathBuf,
    domains: Vec<String>,
}

impl Drop for Scenario {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn simulate(db: &TestDb) -> Scenario {
    let dir = std::env::temp_dir().join(format!("sealwatch-schedules-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("sim.toml");
    std::fs::write(&config, format!("[database]\nurl = \"{}\"\n", db.url)).expect("config");
    let mail = dir.join("mail");
    let list = dir.join("domains.txt");
    let weeks = WEEKS.to_string();
    let mut args = vec![
        "simulate",
        "--domains",
        "9",
        "--weeks",
        &weeks,
        "--start",
        START,
        "--seed",
        SEED,
        "--out",
        mail.to_str().expect("utf-8"),
        "--domains-out",
        list.to_str().expect("utf-8"),
    ];
    for i in INCIDENTS {
        args.push("--incident");
        args.push(i);
    }
    run(&config, &args);
    let domains = std::fs::read_to_string(&list)
        .expect("domain list")
        .lines()
        .map(str::to_owned)
        .collect();
    Scenario { dir, mail, domains }
}

/// One way of running the service over the scenario, in a database of its own.
struct Mode {
    label: &'static str,
    config: PathBuf,
    _db: TestDb,
}

impl Mode {
    async fn new(label: &'static str, s: &Scenario, extra: &str) -> Mode {
        let db = TestDb::new(Engine::Sqlite, &format!("schedules-{label}")).await;
        let dns = std::env::var("SEALWATCH_TEST_DNS").unwrap_or_else(|_| "127.0.0.1:5353".into());
        let config = s.dir.join(format!("{label}.toml"));
        std::fs::write(
            &config,
            format!(
                "[database]\nurl = \"{}\"\n\n[health]\nname_servers = [\"{dns}\"]\ndns_timeout_secs = 2.0\n{extra}",
                db.url
            ),
        )
        .expect("config");
        let m = Mode {
            label,
            config,
            _db: db,
        };
        for (i, d) in s.domains.iter().enumerate() {
            m.sealwatch(&["tenant", "add", &format!("tenant-{i}"), "--domain", d]);
        }
        m.sealwatch(&["tenant", "add", "tenant-quiet", "--domain", QUIET]);
        // The domains were onboarded the day the scenario starts.
        use sea_orm::{EntityTrait as _, sea_query::Expr};
        use sealwatch_store::entities::tenant_domain;
        tenant_domain::Entity::update_many()
            .col_expr(
                tenant_domain::Column::CreatedAt,
                Expr::value(day(START).and_hms_opt(9, 0, 0).expect("time").and_utc()),
            )
            .exec(m._db.store.connection())
            .await
            .expect("onboarding day");
        m
    }

    fn sealwatch(&self, args: &[&str]) -> Output {
        run(&self.config, args)
    }

    /// The reports of `reported` (one directory per reported day) arrive on night `night`.
    fn arrive(&self, s: &Scenario, reported: NaiveDate, night: NaiveDate) {
        let dir = s.mail.join(reported.to_string());
        if !dir.exists() {
            return;
        }
        let at = format!("{night}T03:00:00Z");
        let out = self.sealwatch(&["import", dir.to_str().expect("utf-8"), "--received-at", &at]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("quarantined 0"), "{}: {text}", self.label);
    }

    fn analyze(&self, today: NaiveDate) {
        self.sealwatch(&["analyze", "--today", &today.to_string()]);
    }

    /// Every anomaly as (domain, kind, first_seen), sorted.
    fn anomalies(&self) -> Vec<(String, String, String)> {
        let out = self.sealwatch(&["anomalies", "--json"]);
        let mut v: Vec<(String, String, String)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("JSON line"))
            .map(|a| {
                eprintln!(
                    "{}: {} {} {}",
                    self.label, a["domain"], a["first_seen"], a["summary"]
                );
                let kind = a["kind"].as_str().unwrap_or_default().to_owned();
                // A domain that never reported has no first day of evidence: a catch-up
                // judges it from the day it runs, nightly runs from the first night.
                let first = if kind == "no-data" {
                    String::new()
                } else {
                    a["first_seen"].as_str().unwrap_or_default().to_owned()
                };
                (
                    a["domain"].as_str().unwrap_or_default().to_owned(),
                    kind,
                    first,
                )
            })
            .collect();
        v.sort();
        v
    }

    /// The verdict in the subject of each domain's digest of [`WEEK`].
    fn verdicts(&self, s: &Scenario) -> BTreeMap<String, String> {
        s.domains
            .iter()
            .map(String::as_str)
            .chain([QUIET])
            .map(|d| {
                let out = self.sealwatch(&["digest", "preview", "--domain", d, "--week", WEEK]);
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                let subject = text
                    .lines()
                    .find_map(|l| l.strip_prefix("Subject: "))
                    .unwrap_or_else(|| panic!("no subject in {text}"));
                let verdict = subject
                    .rsplit_once(": ")
                    .map_or(subject, |(_, v)| v)
                    .to_owned();
                (d.to_owned(), verdict)
            })
            .collect()
    }
}

const ALL_CLEAR: &str = "All clear";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_truth_whatever_the_schedule() {
    let sim_db = TestDb::new(Engine::Sqlite, "schedules-sim").await;
    let s = simulate(&sim_db);
    let first = day(START);
    let digest_day = day(DIGEST_DAY);
    // The nightly modes judge every day since the first report, like the one-shot run.
    let once_extra = "\n[analysis]\ncatch_up_days = 60\n";

    // (a) nightly, reports of each day arriving the next night.
    let a = Mode::new("nightly", &s, "").await;
    let mut night = first + Duration::days(1);
    while night <= digest_day + Duration::days(1) {
        a.arrive(&s, night - Duration::days(1), night);
        a.analyze(night);
        night += Duration::days(1);
    }
    let a_final = digest_day + Duration::days(1);

    // (b) everything arrives, then one analysis.
    let b = Mode::new("once", &s, once_extra).await;
    let mut night = first + Duration::days(1);
    while night <= digest_day {
        b.arrive(&s, night - Duration::days(1), night);
        night += Duration::days(1);
    }
    b.analyze(a_final);

    // (c) nightly, with the workers down for three nights (7, 8 and 9 November): the reports
    // keep arriving, nothing is analysed. The digest is built at its scheduled time all the
    // same, then again after the workers caught up.
    let c = Mode::new("outage", &s, "").await;
    let outage = [
        digest_day - Duration::days(2),
        digest_day - Duration::days(1),
        digest_day,
    ];
    let mut night = first + Duration::days(1);
    let mut c_scheduled = None;
    while night <= digest_day + Duration::days(1) {
        c.arrive(&s, night - Duration::days(1), night);
        if !outage.contains(&night) {
            c.analyze(night);
        }
        if night == digest_day {
            c_scheduled = Some(c.verdicts(&s));
        }
        night += Duration::days(1);
    }

    // (d) nightly, every report arriving three days late (the reports of day D on night
    // D + 4). The digest is built at its scheduled time, then again once all arrived.
    let d = Mode::new("late", &s, "").await;
    let mut night = first + Duration::days(1);
    let last_reported = first + Duration::days(i64::from(WEEKS) * 7 - 1);
    let mut d_scheduled = None;
    while night <= last_reported + Duration::days(4) {
        d.arrive(&s, night - Duration::days(4), night);
        d.analyze(night);
        if night == digest_day {
            d_scheduled = Some(d.verdicts(&s));
        }
        night += Duration::days(1);
    }

    let kinds = |m: &Mode| m.anomalies();
    let (ka, kb, kc, kd) = (kinds(&a), kinds(&b), kinds(&c), kinds(&d));
    // Every incident is found, on its own domain, and nothing on the quiet ones.
    let expected: [(usize, &str); 7] = [
        (0, "dane"),
        (1, "tls-certificate-cluster"),
        (2, "tls-single-provider"),
        (3, "mta-sts-policy"),
        (4, "tls-low-rate-negotiation"),
        (5, "reporter-silent"),
        (6, "dmarc-new-unauthenticated-source"),
    ];
    for (domain, kind) in expected {
        assert!(
            ka.iter()
                .any(|(d, k, _)| *d == s.domains[domain] && k == kind),
            "{kind} on domain {domain} not found nightly: {ka:#?}"
        );
    }
    // And nothing else: no finding on the quiet domains, none of another kind on the
    // incident domains.
    for (d, k, _) in &ka {
        let expected_here = expected
            .iter()
            .any(|(i, kind)| s.domains[*i] == *d && kind == k)
            || (d == QUIET && k == "no-data");
        assert!(expected_here, "unexpected {k} on {d}: {ka:#?}");
    }
    // The domain that never reports is flagged once its first week is over.
    assert!(
        ka.iter().any(|(d, k, _)| d == QUIET && k == "no-data"),
        "{ka:#?}"
    );
    assert_eq!(ka, kb, "nightly and one catch-up run disagree");
    assert_eq!(ka, kc, "nightly and nightly-with-an-outage disagree");
    assert_eq!(ka, kd, "nightly and nightly-with-late-reports disagree");

    // The same digests once everything arrived.
    let va = a.verdicts(&s);
    for q in QUIET_DOMAINS {
        assert_eq!(va[&s.domains[*q]], ALL_CLEAR, "{va:#?}");
    }
    for (domain, _) in expected {
        assert_ne!(va[&s.domains[domain]], ALL_CLEAR, "{va:#?}");
    }
    assert_eq!(va, b.verdicts(&s), "digests: nightly vs once");
    assert_eq!(va, c.verdicts(&s), "digests: nightly vs outage");
    assert_eq!(va, d.verdicts(&s), "digests: nightly vs late reports");

    // At the scheduled time, with what had arrived by then: never "All clear" where the
    // complete week has a failure that its numbers already showed. In (c) all of the week's
    // reports were there (only the analysis was behind): every incident domain must say so.
    let c_scheduled = c_scheduled.expect("built on schedule");
    for (domain, _) in expected {
        assert_ne!(
            c_scheduled[&s.domains[domain]], ALL_CLEAR,
            "outage: {c_scheduled:#?}"
        );
    }
    // In (d) the reports of 5 to 8 November were still on their way: an incident that began
    // before 5 November was visible in what had arrived.
    let d_scheduled = d_scheduled.expect("built on schedule");
    for domain in [0, 1, 3, 4, 6] {
        assert_ne!(
            d_scheduled[&s.domains[domain]], ALL_CLEAR,
            "late: domain {domain}: {d_scheduled:#?}"
        );
    }
    let _ = a_final;
}
