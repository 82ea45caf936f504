//! `sealwatch health run` / `health history` as a process, on SQLite and PostgreSQL, against
//! the loopback test servers: NSD with the tests/servers/dns zones (`hc-*.test` are this
//! file's), the HTTPS listeners for the test zones (8444 with a valid certificate, 8445 with
//! an expired one for the same names) and the test CA. Runs are stored, compared with the
//! previous stored run, and a broken MTA-STS policy opens (then resolves) one anomaly.

#[path = "../../../tests/common/db.rs"]
mod db;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use db::{Engine, TestDb};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use sealwatch_health::{Change, CheckId, HealthReport, Severity, diff};
use sealwatch_store::entities::anomaly_review;
use sealwatch_store::{AnomalyFilter, StoredAnomaly};
use serde_json::Value;

fn var(name: &str) -> String {
    if let Ok(v) = std::env::var(name) {
        return v;
    }
    let state = std::env::var("SEALWATCH_TEST_SERVERS_STATE")
        .unwrap_or_else(|_| "/tmp/sealwatch-test-servers".into());
    let text = std::fs::read_to_string(format!("{state}/servers.env")).unwrap_or_default();
    let vars: HashMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .collect();
    vars.get(name)
        .map(|v| v.trim_matches('\'').to_owned())
        .unwrap_or_else(|| panic!("{name} is not set: run tests/servers/start.sh"))
}

/// Which HTTPS listener serves `mta-sts.<zone>`: the valid certificate or the expired one.
#[derive(Clone, Copy)]
enum Cert {
    Valid,
    Expired,
}

/// A scratch directory with a configuration pointing at the test database.
struct Env {
    dir: PathBuf,
    config: PathBuf,
    dns: String,
}

impl Env {
    fn new(db: &TestDb, label: &str) -> Env {
        let dir = std::env::temp_dir().join(format!(
            "sealwatch-health-{label}-{}-{}",
            std::process::id(),
            db.url.len()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let config = dir.join("sealwatch.toml");
        std::fs::write(
            &config,
            format!(
                "[database]\nurl = \"{}\"\n\n[reporting]\ndmarc_rua = \"dmarc@sealwatch.test\"\ntlsrpt_rua = \"tlsrpt@sealwatch.test\"\n",
                db.url
            ),
        )
        .expect("config");
        Env {
            dir,
            config,
            dns: var("SEALWATCH_TEST_DNS"),
        }
    }

    fn raw(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_sealwatch"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .expect("run sealwatch")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.raw(args);
        assert!(
            out.status.success(),
            "sealwatch {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn checker_flags(&self, cert: Cert) -> Vec<String> {
        let port = match cert {
            Cert::Valid => var("SEALWATCH_TEST_HTTPS_ZONES_PORT"),
            Cert::Expired => var("SEALWATCH_TEST_HTTPS_EXPIRED_PORT"),
        };
        [
            "--nameserver",
            &self.dns,
            "--ca-file",
            &var("SEALWATCH_TEST_CA"),
            "--mta-sts-addr",
            &format!("127.0.0.1:{port}"),
            "--dnsbl",
            "dnsbl.test",
            "--domain-blocklist",
            "dbl.test",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }

    /// `health run [--domain D] --json` with the HTTPS listener `cert`: one outcome per domain.
    fn run_json(&self, domain: Option<&str>, cert: Cert) -> Vec<Value> {
        let mut args = vec!["health".to_owned(), "run".to_owned(), "--json".to_owned()];
        if let Some(d) = domain {
            args.extend(["--domain".to_owned(), d.to_owned()]);
        }
        args.extend(self.checker_flags(cert));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ok(&argv)
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect()
    }

    fn run_text(&self, cert: Cert) -> String {
        let mut args = vec!["health".to_owned(), "run".to_owned()];
        args.extend(self.checker_flags(cert));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ok(&argv)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn anomalies(db: &TestDb, domain: &str) -> Vec<StoredAnomaly> {
    db.store
        .list_anomalies(&AnomalyFilter {
            domain: Some(domain.to_owned()),
            ..Default::default()
        })
        .await
        .expect("list anomalies")
}

async fn reviews(db: &TestDb, anomaly_id: i64) -> Vec<anomaly_review::Model> {
    anomaly_review::Entity::find()
        .filter(anomaly_review::Column::AnomalyId.eq(anomaly_id))
        .order_by_asc(anomaly_review::Column::Id)
        .all(db.store.connection())
        .await
        .expect("reviews")
}

fn only(outcomes: Vec<Value>) -> Value {
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    outcomes.into_iter().next().expect("one")
}

fn has_change(outcome: &Value, change: &str, pred: impl Fn(&Value) -> bool) -> bool {
    outcome["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .any(|c| c["change"] == change && pred(c))
}

const DOMAIN: &str = "hc-enforce.test";

async fn a_broken_policy_opens_one_anomaly_that_a_fixed_policy_resolves(engine: Engine) {
    let db = TestDb::new(engine, "health_lifecycle").await;
    let env = Env::new(&db, "lifecycle");
    env.ok(&["tenant", "add", "acme", "--domain", DOMAIN]);

    // 1. the policy works: the run is stored, nothing to compare with, no anomaly
    let first = only(env.run_json(Some(DOMAIN), Cert::Valid));
    assert_eq!(first["domain"], DOMAIN);
    assert_eq!(first["score"], 100, "{first}");
    assert_eq!(first["grade"], "A");
    assert_eq!(first["mta_sts"], "enforce");
    assert_eq!(first["previous"], Value::Null);
    assert_eq!(first["changes"], serde_json::json!([]));
    assert_eq!(first["anomaly"], Value::Null);
    assert!(anomalies(&db, DOMAIN).await.is_empty());
    let runs = db
        .store
        .recent_health_checks(first["domain_id"].as_i64().expect("id"), 10)
        .await
        .expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].score, runs[0].grade.as_str()), (100, "A"));
    let stored: HealthReport =
        serde_json::from_str(&runs[0].report).expect("stored report reads back");
    assert_eq!(stored.domain.as_str(), DOMAIN);
    // no DMARC reports: only the configured and common DKIM selectors were tried
    assert!(
        !stored
            .records
            .iter()
            .any(|r| r.name == "hc2026._domainkey.hc-enforce.test")
    );

    // 2. mta-sts.hc-enforce.test now serves an expired certificate: the anomaly opens,
    //    critical because the policy was last seen in enforce mode
    let second = only(env.run_json(Some(DOMAIN), Cert::Expired));
    assert_eq!(second["score"], 70, "{second}");
    assert_eq!(second["mta_sts"], "broken");
    assert_eq!(second["previous"]["run_id"], first["run_id"]);
    assert!(has_change(&second, "problem-appeared", |c| {
        c["check"] == "mta-sts-certificate-invalid" && c["severity"] == "critical"
    }));
    assert!(has_change(&second, "score-changed", |c| {
        c["before"] == 100 && c["after"] == 70
    }));
    assert_eq!(second["anomaly"]["action"], "opened");
    assert_eq!(second["anomaly"]["severity"], "critical");
    let list = anomalies(&db, DOMAIN).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let a = &list[0];
    assert_eq!(a.id, second["anomaly"]["id"].as_i64().expect("id"));
    assert_eq!(a.kind, "mta-sts-policy-broken");
    assert_eq!(a.fingerprint, "health:mta-sts:hc-enforce.test");
    assert_eq!(
        (a.severity.as_str(), a.status.as_str()),
        ("critical", "open")
    );
    assert_eq!(a.occurrences, 1);
    assert_eq!(a.first_seen_day, a.last_seen_day);
    assert!(
        a.summary.starts_with(
            "MTA-STS policy of hc-enforce.test is broken: the certificate of mta-sts.hc-enforce.test is not valid"
        ),
        "{}",
        a.summary
    );
    assert_eq!(a.evidence["mode"], "enforce");
    assert_eq!(a.evidence["health_check_id"], second["run_id"]);
    let f = &a.evidence["findings"][0];
    assert_eq!(f["check"], "mta-sts-certificate-invalid");
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["found"], "v=STSv1; id=2026113001");
    let what = a.explanation["what_happened"].as_str().expect("text");
    assert!(
        what.contains("the certificate of mta-sts.hc-enforce.test is not valid"),
        "{what}"
    );
    let means = a.explanation["what_it_means"].as_str().expect("text");
    assert!(
        means.contains("treat hc-enforce.test as having no MTA-STS"),
        "{means}"
    );
    assert!(
        means.contains("could not be read this time; the check of"),
        "{means}"
    );
    assert!(means.contains("found it in mode enforce"), "{means}");
    assert!(
        !a.explanation["what_to_do"]
            .as_str()
            .expect("text")
            .is_empty()
    );
    assert!(
        !a.explanation["who_fixes_it"]
            .as_str()
            .expect("text")
            .is_empty()
    );

    // 3. the same week, still broken: the same row is updated, not a second one
    let third = only(env.run_json(Some(DOMAIN), Cert::Expired));
    assert_eq!(third["anomaly"]["action"], "updated");
    assert_eq!(third["anomaly"]["id"], second["anomaly"]["id"]);
    assert_eq!(third["changes"], serde_json::json!([]), "{third}");
    let list = anomalies(&db, DOMAIN).await;
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].status.as_str(), list[0].occurrences), ("open", 2));
    // the review queue of the CLI lists it like any other anomaly
    let listed = env.ok(&["anomalies", "--domain", DOMAIN, "--json"]);
    let rows: Vec<Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(rows.len(), 1, "{listed}");
    assert_eq!(rows[0]["kind"], "mta-sts-policy-broken");

    // 4. the certificate is fixed: the anomaly is resolved by the health check
    let fourth = only(env.run_json(Some(DOMAIN), Cert::Valid));
    assert_eq!(fourth["score"], 100);
    assert_eq!(fourth["anomaly"]["action"], "resolved");
    assert!(has_change(&fourth, "problem-resolved", |c| {
        c["check"] == "mta-sts-certificate-invalid"
    }));
    let list = anomalies(&db, DOMAIN).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].status, "resolved");
    let r = reviews(&db, list[0].id).await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].actor.as_deref(), Some("health-check"));
    assert_eq!(
        (r[0].from_status.as_str(), r[0].to_status.as_str()),
        ("open", "resolved")
    );

    // 5. broken again: the resolved row is reopened, still one row
    let fifth = only(env.run_json(Some(DOMAIN), Cert::Expired));
    assert_eq!(fifth["anomaly"]["action"], "reopened");
    let list = anomalies(&db, DOMAIN).await;
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].status.as_str(), list[0].occurrences), ("open", 3));
    let r = reviews(&db, list[0].id).await;
    assert_eq!(r.len(), 2);
    assert_eq!(
        (r[1].action.as_str(), r[1].actor.as_deref()),
        ("reopen", Some("health-check"))
    );

    // history: every run, newest first
    let history = env.ok(&["health", "history", "--domain", DOMAIN]);
    let scores: Vec<&str> = history
        .lines()
        .map(|l| l.split_whitespace().nth(4).expect("score column"))
        .collect();
    assert_eq!(
        scores,
        ["70/100", "100/100", "70/100", "70/100", "100/100"],
        "{history}"
    );
    let json = env.ok(&[
        "health", "history", "--domain", DOMAIN, "--json", "--limit", "2",
    ]);
    let rows: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["run_id"], fifth["run_id"]);
    assert_eq!(rows[0]["grade"], "C");
    assert_eq!(rows[0]["mta_sts"], "broken");
    assert_eq!(rows[1]["problems"], 0);
}

async fn an_mx_mismatch_is_critical_in_enforce_mode_and_a_warning_in_testing(engine: Engine) {
    let db = TestDb::new(engine, "health_mx").await;
    let env = Env::new(&db, "mx");
    env.ok(&["tenant", "add", "acme", "--domain", "hc-wrongmx.test"]);
    env.ok(&[
        "tenant",
        "add",
        "globex",
        "--domain",
        "hc-testing-wrongmx.test",
        "--domain",
        DOMAIN,
    ]);

    // every stored domain, readable output
    let text = env.run_text(Cert::Valid);
    assert!(
        text.contains("hc-wrongmx.test — score 70/100, grade C"),
        "{text}"
    );
    assert!(
        text.contains("hc-testing-wrongmx.test — score 80/100, grade B"),
        "{text}"
    );
    assert!(
        text.contains("hc-enforce.test — score 100/100, grade A"),
        "{text}"
    );
    assert!(
        text.contains("first run: nothing to compare with"),
        "{text}"
    );
    assert!(
        text.contains(
            "mta-sts-policy-broken opened (critical, open): MTA-STS policy of hc-wrongmx.test is broken: the policy does not cover MX host mx2.hc-wrongmx.test"
        ),
        "{text}"
    );
    assert!(text.contains("checked 3 domains"), "{text}");

    let enforce = anomalies(&db, "hc-wrongmx.test").await;
    assert_eq!(enforce.len(), 1);
    let a = &enforce[0];
    assert_eq!(
        (a.severity.as_str(), a.status.as_str()),
        ("critical", "open")
    );
    assert_eq!(a.evidence["mode"], "enforce");
    assert_eq!(a.evidence["mode_seen"], "this check");
    let f = &a.evidence["findings"][0];
    assert_eq!(f["check"], "mta-sts-mx-mismatch");
    assert!(
        f["found"]
            .as_str()
            .expect("policy as found")
            .contains("mx: old-mx.hc-wrongmx.test")
    );
    let fixes: Vec<&str> = f["fix"]
        .as_array()
        .expect("fixes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        fixes.iter().any(|x| x.contains("mx: mx1.hc-wrongmx.test")
            && x.contains("mx: mx2.hc-wrongmx.test")
            && x.contains("mode: enforce")),
        "{fixes:?}"
    );
    let means = a.explanation["what_it_means"].as_str().expect("text");
    assert!(
        means.contains(
            "In enforce mode, senders refuse to deliver to a host the policy does not cover"
        ),
        "{means}"
    );
    assert!(
        a.explanation["what_to_do"]
            .as_str()
            .expect("text")
            .contains("https://mta-sts.hc-wrongmx.test/.well-known/mta-sts.txt")
    );

    let testing = anomalies(&db, "hc-testing-wrongmx.test").await;
    assert_eq!(testing.len(), 1);
    assert_eq!(testing[0].severity, "warning");
    assert_eq!(testing[0].evidence["mode"], "testing");
    // testing mode alone is a weakness, not a broken policy: only the mismatch is evidence
    let checks: Vec<&Value> = testing[0].evidence["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| &f["check"])
        .collect();
    assert_eq!(checks, [&Value::from("mta-sts-mx-mismatch")]);
    assert!(anomalies(&db, DOMAIN).await.is_empty());

    // staff acknowledge one and dismiss the other: later runs keep their status and only
    // refresh when they were last seen
    db.store
        .review_anomaly(
            a.id,
            "acknowledge",
            Some("on it"),
            Some("ops"),
            Some("staff"),
        )
        .await
        .expect("acknowledge");
    db.store
        .review_anomaly(
            testing[0].id,
            "dismiss",
            Some("moving away"),
            None,
            Some("staff"),
        )
        .await
        .expect("dismiss");
    let again = env.run_json(None, Cert::Valid);
    assert_eq!(again.len(), 3);
    for o in &again {
        assert_ne!(o["previous"], Value::Null, "{o}");
        assert_eq!(o["changes"], serde_json::json!([]), "{o}");
    }
    let by_domain = |d: &str| {
        again
            .iter()
            .find(|o| o["domain"] == d)
            .cloned()
            .expect("outcome")
    };
    assert_eq!(
        by_domain("hc-wrongmx.test")["anomaly"]["action"],
        "refreshed"
    );
    assert_eq!(
        by_domain("hc-wrongmx.test")["anomaly"]["status"],
        "acknowledged"
    );
    assert_eq!(
        by_domain("hc-testing-wrongmx.test")["anomaly"]["status"],
        "dismissed"
    );
    assert_eq!(by_domain(DOMAIN)["anomaly"], Value::Null);
    let enforce = anomalies(&db, "hc-wrongmx.test").await;
    assert_eq!(
        (
            enforce[0].status.as_str(),
            enforce[0].occurrences,
            enforce[0].assignee.as_deref()
        ),
        ("acknowledged", 2, Some("ops"))
    );
    let testing = anomalies(&db, "hc-testing-wrongmx.test").await;
    assert_eq!(
        (testing[0].status.as_str(), testing[0].occurrences),
        ("dismissed", 2)
    );
}

/// A private NSD on its own port and state directory, serving the repository's zones, whose
/// run-time copy of a zone the test edits (the shared servers are untouched).
struct PrivateNsd {
    state: String,
    port: u16,
}

impl PrivateNsd {
    fn start(label: &str) -> PrivateNsd {
        let port = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
            let port = udp.local_addr().expect("addr").port();
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                break port;
            }
        };
        let nsd = PrivateNsd {
            state: format!("/tmp/sw-hj-{label}-{}", std::process::id()),
            port,
        };
        let out = nsd
            .script("start.sh")
            .args(["--only", "dns"])
            .output()
            .expect("run start.sh");
        assert!(
            out.status.success(),
            "start.sh --only dns failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        nsd
    }

    fn script(&self, name: &str) -> Command {
        let mut c = Command::new(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/servers")
                .join(name),
        );
        c.env("SEALWATCH_TEST_SERVERS_STATE", &self.state)
            .env("SEALWATCH_TEST_DNS_PORT", self.port.to_string());
        c
    }

    fn addr(&self) -> String {
        SocketAddr::from(([127, 0, 0, 1], self.port)).to_string()
    }

    fn edit_zone(&self, zone: &str, edit: impl Fn(&str) -> String) {
        let path = format!("{}/dns/zones/{zone}.zone", self.state);
        let text = std::fs::read_to_string(&path).expect("zone copy");
        std::fs::write(&path, edit(&text)).expect("write zone");
        let pid = std::fs::read_to_string(format!("{}/run/nsd.pid", self.state)).expect("pid");
        let status = Command::new("kill")
            .args(["-HUP", pid.trim()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for PrivateNsd {
    fn drop(&mut self) {
        let _ = self.script("stop.sh").arg("--clean").output();
    }
}

/// A DMARC aggregate report for `hc-enforce.test` whose DKIM results name selector hc2026
/// (and a selector of another signing domain, which is not ours to check).
fn dmarc_report(dir: &Path) -> PathBuf {
    let end = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        / 86_400
        * 86_400;
    let begin = end - 86_400;
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata>
    <org_name>reporter.test</org_name>
    <email>dmarc@reporter.test</email>
    <report_id>hc-enforce-{begin}</report_id>
    <date_range><begin>{begin}</begin><end>{end}</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>hc-enforce.test</domain><adkim>r</adkim><aspf>r</aspf><p>reject</p><sp>reject</sp><pct>100</pct>
  </policy_published>
  <record>
    <row>
      <source_ip>192.0.2.10</source_ip><count>12</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated>
    </row>
    <identifiers><header_from>hc-enforce.test</header_from></identifiers>
    <auth_results>
      <dkim><domain>hc-enforce.test</domain><selector>hc2026</selector><result>pass</result></dkim>
      <dkim><domain>esp.test</domain><selector>esp1</selector><result>pass</result></dkim>
      <spf><domain>hc-enforce.test</domain><result>pass</result></spf>
    </auth_results>
  </record>
</feedback>
"#
    );
    let path = dir.join("report.xml");
    std::fs::write(&path, xml).expect("write report");
    path
}

async fn a_zone_change_shows_up_between_two_stored_runs(engine: Engine) {
    let label = match engine {
        Engine::Sqlite => "sqlite",
        Engine::Postgres => "pg",
    };
    let nsd = PrivateNsd::start(label);
    let db = TestDb::new(engine, "health_diff").await;
    let mut env = Env::new(&db, "diff");
    env.dns = nsd.addr();
    env.ok(&["tenant", "add", "acme", "--domain", DOMAIN]);
    let report = dmarc_report(&env.dir);
    env.ok(&["import", report.to_str().expect("utf-8")]);

    let first = only(env.run_json(Some(DOMAIN), Cert::Valid));
    assert_eq!(first["score"], 100, "{first}");

    nsd.edit_zone(DOMAIN, |z| {
        let mut out: String = z
            .replace("2026113001 3600", "2026113002 3600")
            .replace("p=reject; rua=", "p=quarantine; rua=")
            .lines()
            .filter(|l| !l.starts_with("_smtp._tls"))
            .map(|l| format!("{l}\n"))
            .collect();
        out.push_str(
            "default._bimi IN TXT \"v=BIMI1; l=https://hc-enforce.test/bimi/logo.svg; a=https://hc-enforce.test/bimi/vmc.pem\"\n",
        );
        out
    });
    // NSD reloads in the background: wait (bounded) until the edited zone is served, with
    // `check`, which stores nothing
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut args = vec!["check".to_owned(), DOMAIN.to_owned(), "--json".to_owned()];
        args.extend(env.checker_flags(Cert::Valid));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = env.raw(&argv);
        let r: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if r["dmarc_policy"] == "quarantine" || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let second = only(env.run_json(Some(DOMAIN), Cert::Valid));
    assert_eq!(second["previous"]["run_id"], first["run_id"]);
    assert!(
        has_change(&second, "record-vanished", |c| {
            c["name"] == "_smtp._tls.hc-enforce.test" && c["rtype"] == "TXT"
        }),
        "{second}"
    );
    assert!(
        has_change(&second, "record-changed", |c| {
            c["name"] == "_dmarc.hc-enforce.test"
                && c["before"][0] == "v=DMARC1; p=reject; rua=mailto:dmarc@sealwatch.test"
                && c["after"][0] == "v=DMARC1; p=quarantine; rua=mailto:dmarc@sealwatch.test"
        }),
        "{second}"
    );
    assert!(
        has_change(&second, "record-appeared", |c| {
            c["name"] == "default._bimi.hc-enforce.test"
        }),
        "{second}"
    );
    assert!(has_change(&second, "problem-appeared", |c| {
        c["check"] == "tls-rpt-missing"
    }));
    // the MTA-STS policy still works: no anomaly
    assert_eq!(second["anomaly"], Value::Null);
    assert!(anomalies(&db, DOMAIN).await.is_empty());

    // the stored reports read back and compare the same way
    let domain_id = first["domain_id"].as_i64().expect("id");
    let runs = db
        .store
        .recent_health_checks(domain_id, 10)
        .await
        .expect("runs");
    assert_eq!(runs.len(), 2);
    let newer: HealthReport = serde_json::from_str(&runs[0].report).expect("reads back");
    let older: HealthReport = serde_json::from_str(&runs[1].report).expect("reads back");
    let changes = diff(&older, &newer);
    assert!(changes.contains(&Change::RecordVanished {
        name: "_smtp._tls.hc-enforce.test".into(),
        rtype: "TXT".into(),
        before: vec!["v=TLSRPTv1; rua=mailto:tlsrpt@sealwatch.test".into()],
    }));
    assert!(changes.iter().any(|c| matches!(
        c,
        Change::ProblemAppeared {
            check: CheckId::TlsRptMissing,
            severity: Severity::Warning,
            ..
        }
    )));
    assert_eq!(
        serde_json::to_value(&changes).expect("json"),
        second["changes"],
        "the CLI reports what the stored runs say"
    );
    // the DKIM selector seen in the domain's DMARC report was tried (and found); the other
    // signing domain's selector was not
    let seen = store_selectors(&db, domain_id).await;
    assert_eq!(seen, ["hc2026"]);
    assert!(
        older
            .records
            .iter()
            .any(|r| r.name == "hc2026._domainkey.hc-enforce.test")
    );
    assert!(
        older
            .findings_for(CheckId::DkimOk)
            .any(|f| f.summary.contains("hc2026")),
        "{:?}",
        older.findings
    );

    // the weekly digest's health section says what changed since the previous check
    let digest = env
        .ok(&["digest", "preview", "--domain", DOMAIN])
        .replace('\u{200B}', "");
    assert!(
        digest.contains("Changed since the previous check:"),
        "{digest}"
    );
    assert!(
        digest.contains("TXT _smtp._tls.hc-enforce.test vanished"),
        "{digest}"
    );
    assert!(
        digest.contains("TXT _dmarc.hc-enforce.test changed from"),
        "{digest}"
    );

    // the readable output lists the changes since the previous run
    let env_text = {
        let mut args = vec![
            "health".to_owned(),
            "run".to_owned(),
            "--domain".to_owned(),
            DOMAIN.to_owned(),
        ];
        args.extend(env.checker_flags(Cert::Valid));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        env.ok(&argv)
    };
    assert!(env_text.contains("no changes since"), "{env_text}");
    drop(nsd);
}

async fn store_selectors(db: &TestDb, domain_id: i64) -> Vec<String> {
    db.store
        .dkim_selectors_seen(domain_id, DOMAIN, 0, 20)
        .await
        .expect("selectors")
}

#[test]
fn unknown_domains_are_an_error() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let db = rt.block_on(TestDb::new(Engine::Sqlite, "health_unknown"));
    let env = Env::new(&db, "unknown");
    let out = env.raw(&["health", "run", "--domain", "nowhere.test"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nowhere.test is not a stored domain"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env.raw(&["health", "history", "--domain", "nowhere.test"]);
    assert!(!out.status.success());
}

mod sqlite {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broken_policy_opens_one_anomaly_that_a_fixed_policy_resolves() {
        super::a_broken_policy_opens_one_anomaly_that_a_fixed_policy_resolves(Engine::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_mx_mismatch_is_critical_in_enforce_mode_and_a_warning_in_testing() {
        super::an_mx_mismatch_is_critical_in_enforce_mode_and_a_warning_in_testing(Engine::Sqlite)
            .await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_zone_change_shows_up_between_two_stored_runs() {
        super::a_zone_change_shows_up_between_two_stored_runs(Engine::Sqlite).await
    }
}

mod postgres {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broken_policy_opens_one_anomaly_that_a_fixed_policy_resolves() {
        super::a_broken_policy_opens_one_anomaly_that_a_fixed_policy_resolves(Engine::Postgres)
            .await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_mx_mismatch_is_critical_in_enforce_mode_and_a_warning_in_testing() {
        super::an_mx_mismatch_is_critical_in_enforce_mode_and_a_warning_in_testing(Engine::Postgres)
            .await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_zone_change_shows_up_between_two_stored_runs() {
        super::a_zone_change_shows_up_between_two_stored_runs(Engine::Postgres).await
    }
}
