//! The admin API over real HTTP on a random loopback port, on SQLite and on PostgreSQL: the
//! whole staff story (onboard, mailbox, poll, reports, an anomaly from a simulated incident,
//! review), the authorisation matrix of every endpoint, TLS reports posted over HTTPS, and
//! the behaviour every endpoint shares (problem documents, cursors, limits, audit).

#[path = "../common/analysis.rs"]
mod analysis;
#[path = "../common/api.rs"]
mod api;
#[path = "../common/db.rs"]
mod db;
#[path = "../common/http.rs"]
mod http;
#[path = "../common/reports.rs"]
mod reports;
#[path = "../common/servers.rs"]
mod servers;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use api::{ApiServer, own_test_zones, token};
use chrono::NaiveDate;
use db::{Engine, TestDb};
use http::Client;
use sealwatch_api::ApiConfig;
use sealwatch_ingest::Router;
use sealwatch_ingest::imap::{Poller, PollerConfig};
use sealwatch_parser::Parser;
use sealwatch_store::{AnomalyChange, AnomalyRecord, MessageSource, Role, Store};
use serde_json::{Value, json};

const DAY: i64 = 1_793_577_600; // 2026-11-02T00:00:00Z

fn config() -> ApiConfig {
    ApiConfig {
        dmarc_rua: "dmarc@sealwatch.test".into(),
        tlsrpt_rua: "tlsrpt@sealwatch.test".into(),
        tlsrpt_https_base: Some("https://api.sealwatch.test".into()),
        dns_servers: vec![
            servers::var("SEALWATCH_TEST_DNS")
                .parse()
                .expect("DNS addr"),
        ],
        dns_timeout: Duration::from_secs(2),
        ..ApiConfig::default()
    }
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

/// Stores raw messages for routing tests (what a poll or import would do).
async fn ingest(store: &Store, messages: Vec<Vec<u8>>, only_tenant: Option<i64>) {
    let router = Router::new(store.routing_entries().await.expect("routes"));
    let parser = Parser::default();
    let prepared = messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            sealwatch_ingest::prepare(
                &parser,
                &router,
                m,
                None,
                MessageSource::File {
                    origin: format!("test-{i}"),
                },
                only_tenant,
            )
            .message
        })
        .collect();
    store.write_messages(prepared).await.expect("write");
}

fn record(kind: &str, severity: &str) -> AnomalyRecord {
    AnomalyRecord {
        kind: kind.into(),
        fingerprint: format!("{kind}:test"),
        severity: severity.into(),
        confidence: 0.9,
        window_start: 20_759,
        window_end: 20_765,
        summary: format!("{kind} on the test domain"),
        evidence: json!({"failed_sessions": 40}),
        explanation: json!({"what_happened": "something", "what_to_do": "fix it"}),
    }
}

// ---- the story ---------------------------------------------------------------------------

/// Staff onboard a tenant with two domains, add its Dovecot mailbox, poll it, read the
/// reports, find the anomaly a simulated certificate expiry causes, acknowledge and resolve it.
async fn the_staff_story_runs_through_http(engine: Engine) {
    let db = TestDb::new(engine, "api_story").await;
    let store = &db.store;
    let server = ApiServer::start(store, config()).await;
    let admin = Client::new(server.addr, Some(&token(store, Role::Admin, None).await));

    // A scenario: two domains, five weeks, one MX's certificate expires in the last week.
    let scenario = sealwatch_simulate::Scenario::try_new(sealwatch_simulate::ScenarioConfig {
        seed: 11,
        domains: 2,
        start: NaiveDate::from_ymd_opt(2026, 10, 5).expect("date"),
        days: Some(35),
        rua: None,
        incidents: vec![
            "cert-expired:domain=0,mx=0,from=28"
                .parse()
                .expect("incident"),
        ],
    })
    .expect("scenario");
    let names: Vec<String> = scenario.domains().iter().map(|d| d.name.clone()).collect();
    let dir = std::env::temp_dir().join(format!(
        "sealwatch-api-story-{}-{}",
        std::process::id(),
        servers::unique_user("d")
    ));
    sealwatch_simulate::write_scenario_emails(&scenario, &dir).expect("simulate");

    // Onboard: a tenant and its two domains, with the records to publish.
    let tenant = admin
        .post(
            "/api/v1/tenants",
            &json!({"name": "Acme", "digest_recipients": ["ops@acme.example"], "timezone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!(tenant.status, 201, "{}", tenant.text());
    let tenant_id = id(&tenant.json());
    for name in &names {
        let r = admin
            .post(
                &format!("/api/v1/tenants/{tenant_id}/domains"),
                &json!({"domain": name}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let body = r.json();
        let records = body["dns_records"].as_array().expect("records");
        assert_eq!(records[0]["name"], format!("_dmarc.{name}"));
        assert!(
            records[0]["value"]
                .as_str()
                .is_some_and(|v| v.contains("rua=mailto:dmarc@sealwatch.test"))
        );
        assert_eq!(
            records[1]["value"],
            "v=TLSRPTv1; rua=mailto:tlsrpt@sealwatch.test,https://api.sealwatch.test/api/v1/tlsrpt"
        );
        assert_eq!(
            records[2]["name"],
            format!("{name}._report._dmarc.sealwatch.test")
        );
    }
    let domains = admin
        .ok(&format!("/api/v1/tenants/{tenant_id}/domains"))
        .await;
    assert_eq!(items(&domains).len(), 2);

    // A Dovecot mailbox for the tenant; the password source never comes back.
    let user = servers::unique_user("api-story");
    let mut emails = Vec::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p: PathBuf = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                emails.push(p);
            }
        }
    }
    emails.sort();
    let messages: Vec<Vec<u8>> = emails
        .iter()
        .map(|p| std::fs::read(p).expect("email"))
        .collect();
    let count = messages.len();
    assert!(count > 100, "a realistic mailbox: {count} emails");
    let seed_user = user.clone();
    tokio::task::spawn_blocking(move || servers::seed(&seed_user, "INBOX", &messages))
        .await
        .expect("seed");
    let _ = std::fs::remove_dir_all(&dir);
    let mailbox = admin
        .post(
            "/api/v1/mailboxes",
            &json!({
                "tenant_id": tenant_id, "name": "acme reports", "host": "127.0.0.1",
                "port": servers::imap_port(), "tls": "plain", "username": user,
                "password_env": servers::PASSWORD_ENV, "folder": "INBOX", "after": "seen",
            }),
        )
        .await;
    assert_eq!(mailbox.status, 201, "{}", mailbox.text());
    let mailbox = mailbox.json();
    assert!(mailbox.get("password_env").is_none(), "{mailbox}");
    assert_eq!(mailbox["has_password"], true);
    assert_eq!(mailbox["last_status"], Value::Null);

    // Poll (the poller the service runs) and see the mailbox status and the reports.
    let poller = Poller::new(
        store.clone(),
        Arc::new(Parser::default()),
        PollerConfig {
            concurrency: 2,
            batch_size: 200,
            timeout: Duration::from_secs(20),
            retries: 3,
            backoff: Duration::from_millis(300),
            password_env_prefix: sealwatch_ingest::imap::DEFAULT_PASSWORD_ENV_PREFIX.into(),
        },
        None,
    )
    .expect("poller");
    let summary = poller.poll_all().await.expect("poll");
    assert_eq!(summary.failed(), 0, "{summary:?}");
    assert_eq!(summary.outcome.messages, count as u64);
    let polled = admin
        .ok(&format!("/api/v1/mailboxes/{}", id(&mailbox)))
        .await;
    assert_eq!(polled["last_status"], "ok", "{polled}");

    let d0 = &names[0];
    let dmarc = admin
        .ok(&format!(
            "/api/v1/reports/dmarc?domain={d0}&from=2026-11-02&to=2026-11-08&limit=5"
        ))
        .await;
    let page = items(&dmarc);
    assert_eq!(page.len(), 5);
    assert!(dmarc["next_cursor"].is_string());
    for r in &page {
        assert_eq!(r["policy_domain"], d0.as_str());
        assert!(r["end"].as_str().unwrap_or_default() >= "2026-11-02");
    }
    let one = admin
        .ok(&format!("/api/v1/reports/dmarc/{}", id(&page[0])))
        .await;
    assert!(!one["records"].as_array().expect("records").is_empty());
    let raw = admin
        .get(&format!("/api/v1/reports/dmarc/{}/raw", id(&page[0])))
        .await;
    assert_eq!(raw.status, 200);
    assert!(raw.text().contains("Subject:"), "the original email");
    let tls = admin
        .ok(&format!("/api/v1/reports/tls?domain={d0}&from=2026-11-03"))
        .await;
    let failing = items(&tls)
        .into_iter()
        .find(|r| r["failed_sessions"].as_i64().unwrap_or(0) > 0)
        .expect("a TLS report with failures after the certificate expired");
    let detail = admin
        .ok(&format!("/api/v1/reports/tls/{}", id(&failing)))
        .await;
    assert!(
        detail["policies"]
            .to_string()
            .contains("certificate-expired"),
        "{detail}"
    );

    // The analysis flags the incident; staff review it.
    let opened =
        analysis::analyze_all(store, NaiveDate::from_ymd_opt(2026, 11, 8).expect("date")).await;
    assert!(opened >= 1);
    let queue = admin.ok(&format!("/api/v1/anomalies?domain={d0}")).await;
    let cluster = items(&queue)
        .into_iter()
        .find(|a| a["kind"] == "tls-certificate-cluster")
        .unwrap_or_else(|| panic!("the incident is in the queue: {queue}"));
    assert_eq!(cluster["severity"], "critical");
    assert_eq!(cluster["status"], "open");
    let all = items(&admin.ok("/api/v1/anomalies?status=all").await);
    assert!(
        all.windows(2).all(|w| {
            let rank = |a: &Value| match a["severity"].as_str() {
                Some("critical") => 3,
                Some("warning") => 2,
                _ => 1,
            };
            rank(&w[0]) >= rank(&w[1])
        }),
        "most urgent first"
    );
    let aid = id(&cluster);
    let shown = admin.ok(&format!("/api/v1/anomalies/{aid}")).await;
    assert!(shown["explanation"]["what_to_do"].is_string(), "{shown}");
    assert!(
        shown["evidence"]
            .to_string()
            .contains("certificate-expired")
    );

    let ack = admin
        .post(
            &format!("/api/v1/anomalies/{aid}/review"),
            &json!({"action": "acknowledge", "note": "looking", "assignee": "dana"}),
        )
        .await;
    assert_eq!(ack.status, 200, "{}", ack.text());
    assert_eq!(ack.json()["status"], "acknowledged");
    assert_eq!(ack.json()["assignee"], "dana");
    let resolved = admin
        .post(
            &format!("/api/v1/anomalies/{aid}/review"),
            &json!({"action": "resolve", "note": "certificate renewed"}),
        )
        .await
        .json();
    assert_eq!(resolved["status"], "resolved");
    let history: Vec<&str> = resolved["reviews"]
        .as_array()
        .expect("reviews")
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert_eq!(history, ["acknowledge", "resolve"]);
    let open_queue = items(&admin.ok(&format!("/api/v1/anomalies?domain={d0}")).await);
    assert!(
        open_queue.iter().all(|a| id(a) != aid),
        "resolved leaves the queue"
    );

    // The week's digest, previewed.
    let preview = admin
        .get(&format!(
            "/api/v1/tenants/{tenant_id}/digests/preview?week=2026-W45&format=text"
        ))
        .await;
    assert_eq!(preview.status, 200, "{}", preview.text());
    assert!(preview.text().contains(d0.as_str()), "{}", preview.text());
    let preview = admin
        .ok(&format!(
            "/api/v1/tenants/{tenant_id}/digests/preview?week=2026-W45"
        ))
        .await;
    assert!(
        preview["html"]
            .as_str()
            .is_some_and(|h| h.contains("<html"))
    );
    assert_eq!(preview["iso_week"], "2026-W45");
    let bad = admin
        .get(&format!(
            "/api/v1/tenants/{tenant_id}/digests/preview?week=W45"
        ))
        .await;
    assert_eq!(bad.json()["errors"][0]["field"], "week");

    // Every change is in the audit log, newest first.
    let audit = items(&admin.ok("/api/v1/audit?limit=100").await);
    let actions: Vec<String> = audit
        .iter()
        .map(|a| {
            format!(
                "{}:{}",
                a["entity"].as_str().unwrap_or(""),
                a["action"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(actions[0], "anomaly:review:resolve");
    assert_eq!(actions[1], "anomaly:review:acknowledge");
    assert!(actions.contains(&"mailbox:create".to_owned()));
    assert!(actions.contains(&"tenant:create".to_owned()));
    assert_eq!(actions.iter().filter(|a| *a == "domain:create").count(), 2);
    assert_eq!(audit[0]["before"]["status"], "acknowledged");
    assert_eq!(audit[0]["after"]["status"], "resolved");

    // Metrics saw the requests.
    let metrics = http::request(server.addr, "GET", "/metrics", None, None).await;
    assert!(metrics.text().contains(
        "sealwatch_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/anomalies/{anomaly_id}/review\",status=\"200\"} 2"
    ), "{}", metrics.text());
    assert!(
        metrics
            .text()
            .contains("sealwatch_reports_stored{kind=\"dmarc\"}")
    );
    server.stop().await;
}

/// Verification reads the published records and keeps the result.
async fn domain_verification_reads_the_published_records(engine: Engine) {
    let db = TestDb::new(engine, "api_verify").await;
    let store = &db.store;
    let server = ApiServer::start(store, config()).await;
    let admin = Client::new(server.addr, Some(&token(store, Role::Admin, None).await));
    // A tenant that adds a domain it does not control cannot verify it: the DMARC and
    // TLS-RPT records point at us, but the ownership record holds another tenant's token.
    let imposter = id(&admin
        .post("/api/v1/tenants", &json!({"name": "Imposter"}))
        .await
        .json());
    let d = admin
        .post(
            &format!("/api/v1/tenants/{imposter}/domains"),
            &json!({"domain": "perfect.test"}),
        )
        .await
        .json();
    let asked = d["dns_records"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["purpose"] == "ownership"))
        .cloned()
        .expect("the onboarding answer names the ownership record");
    assert_eq!(asked["name"], "_sealwatch.perfect.test");
    let value = asked["value"].as_str().unwrap_or_default();
    assert!(
        value.starts_with("sealwatch-verification=") && value.len() == 23 + 32,
        "{asked}"
    );
    assert_ne!(
        value,
        format!("sealwatch-verification={}", api::OWNERSHIP_TOKEN)
    );
    let v = admin
        .post(
            &format!("/api/v1/domains/{}/verify", id(&d["domain"])),
            &json!({}),
        )
        .await
        .json();
    assert_eq!(v["verified"], false, "{v}");
    let statuses: Vec<&str> = v["checks"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["status"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(statuses, ["ok", "ok", "wrong-token"], "{v}");
    assert_eq!(
        admin
            .delete(&format!("/api/v1/domains/{}", id(&d["domain"])))
            .await
            .status,
        204
    );

    let t = id(&admin
        .post("/api/v1/tenants", &json!({"name": "Perfect"}))
        .await
        .json());
    own_test_zones(store, t).await;
    let mut verdicts = Vec::new();
    for domain in ["perfect.test", "no-dmarc.test", "rua-elsewhere.test"] {
        let d = admin
            .post(
                &format!("/api/v1/tenants/{t}/domains"),
                &json!({"domain": domain}),
            )
            .await
            .json();
        let v = admin
            .post(
                &format!("/api/v1/domains/{}/verify", id(&d["domain"])),
                &json!({}),
            )
            .await;
        assert_eq!(v.status, 200, "{}", v.text());
        let v = v.json();
        let shown = admin
            .ok(&format!("/api/v1/domains/{}", id(&d["domain"])))
            .await;
        assert_eq!(shown["domain"]["verification"], v["domain"]["verification"]);
        verdicts.push((
            domain,
            v["verified"].as_bool().unwrap_or(false),
            v["checks"][0]["status"].as_str().unwrap_or("").to_owned(),
        ));
    }
    assert_eq!(verdicts[0], ("perfect.test", true, "ok".to_owned()));
    assert_eq!(verdicts[1], ("no-dmarc.test", false, "absent".to_owned()));
    assert_eq!(
        verdicts[2],
        ("rua-elsewhere.test", false, "missing-address".to_owned())
    );
    server.stop().await;
}

// ---- authorisation ----------------------------------------------------------------------

struct Fixture {
    _db: TestDb,
    server: ApiServer,
    admin: String,
    analyst: String,
    tenant_a: String,
    tenant_b: String,
    a: i64,
    a_domain: i64,
    a_mailbox: i64,
    a_dmarc: i64,
    a_tls: i64,
    a_anomaly: i64,
    a_quarantine: i64,
}

/// Two tenants; tenant A has a domain, mailbox, reports, an anomaly and a quarantine entry.
async fn fixture(engine: Engine, label: &str) -> Fixture {
    let db = TestDb::new(engine, label).await;
    let store = db.store.clone();
    let a = store
        .create_tenant(
            "Alpha",
            &[sealwatch_model::DomainName::parse("alpha.example").expect("d")],
        )
        .await
        .expect("tenant");
    let b = store
        .create_tenant(
            "Bravo",
            &[sealwatch_model::DomainName::parse("bravo.example").expect("d")],
        )
        .await
        .expect("tenant");
    ingest(
        &store,
        vec![
            reports::aggregate_email(
                "google.com",
                "a-1",
                "alpha.example",
                DAY,
                &[("192.0.2.1", 5)],
            ),
            reports::tls_email("google.com", "t-1", "alpha.example", "2026-11-02", 10, 2),
            reports::aggregate_email(
                "google.com",
                "b-1",
                "bravo.example",
                DAY,
                &[("192.0.2.2", 5)],
            ),
        ],
        None,
    )
    .await;
    // A report for a domain tenant A does not own, from A's own mailbox: quarantined for A.
    ingest(
        &store,
        vec![reports::aggregate_email(
            "yahoo.com",
            "x-1",
            "other.example",
            DAY,
            &[("192.0.2.3", 1)],
        )],
        Some(a.id),
    )
    .await;
    let mailbox = store
        .add_mailbox(sealwatch_store::NewMailbox {
            tenant_id: Some(a.id),
            name: "alpha".into(),
            host: "127.0.0.1".into(),
            port: 1143,
            tls: sealwatch_store::TlsMode::Plain,
            username: "alpha".into(),
            password_env: "NOPE".into(),
            folder: "INBOX".into(),
            after: sealwatch_store::AfterAction::Seen,
        })
        .await
        .expect("mailbox");
    let a_domain = store
        .routing_entries()
        .await
        .expect("routes")
        .into_iter()
        .find(|r| r.tenant_id == a.id)
        .expect("A's domain")
        .domain_id;
    store
        .apply_anomaly_changes(
            a.id,
            a_domain,
            20_765,
            vec![AnomalyChange::Open(record("dane", "warning"))],
        )
        .await
        .expect("anomaly");
    let admin = token(&store, Role::Admin, None).await;
    let analyst = token(&store, Role::Analyst, None).await;
    let tenant_a = token(&store, Role::Tenant, Some(a.id)).await;
    let tenant_b = token(&store, Role::Tenant, Some(b.id)).await;
    // Many deliberate bad tokens follow: no rate limit here (tested on its own).
    let server = ApiServer::start_with_queue(
        &store,
        ApiConfig {
            auth_failures_per_minute: 1_000_000,
            ..config()
        },
    )
    .await;
    let c = Client::new(server.addr, Some(&admin));
    let a_dmarc = items(&c.ok("/api/v1/reports/dmarc?domain=alpha.example").await)
        .first()
        .map(id)
        .expect("A's DMARC report");
    let a_tls = items(&c.ok("/api/v1/reports/tls?domain=alpha.example").await)
        .first()
        .map(id)
        .expect("A's TLS report");
    let a_anomaly = items(&c.ok("/api/v1/anomalies").await)
        .first()
        .map(id)
        .expect("anomaly");
    let a_quarantine = items(&c.ok("/api/v1/quarantine").await)
        .iter()
        .find(|q| q["tenant_id"] == a.id)
        .map(id)
        .expect("A's quarantine entry");
    Fixture {
        _db: db,
        server,
        admin,
        analyst,
        tenant_a,
        tenant_b,
        a: a.id,
        a_domain,
        a_mailbox: mailbox.id,
        a_dmarc,
        a_tls,
        a_anomaly,
        a_quarantine,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Needs {
    Read,
    Review,
    Admin,
}

/// Every endpoint: unauthenticated → 401; a role without the right → 403; another
/// tenant's token on tenant A's object → 404; the right token → success.
async fn every_endpoint_refuses_the_wrong_caller(engine: Engine) {
    let f = fixture(engine, "api_authz").await;
    let a = f.a;
    let endpoints: Vec<(&str, String, Option<Value>, Needs, bool)> = vec![
        // (method, path, body, needs, names an object of tenant A)
        ("GET", "/api/v1/tenants".into(), None, Needs::Read, false),
        (
            "POST",
            "/api/v1/tenants".into(),
            Some(json!({"name": "New"})),
            Needs::Admin,
            false,
        ),
        (
            "GET",
            format!("/api/v1/tenants/{a}"),
            None,
            Needs::Read,
            true,
        ),
        (
            "PATCH",
            format!("/api/v1/tenants/{a}"),
            Some(json!({"digest_hour": 9})),
            Needs::Admin,
            true,
        ),
        (
            "GET",
            format!("/api/v1/tenants/{a}/domains"),
            None,
            Needs::Read,
            true,
        ),
        (
            "POST",
            format!("/api/v1/tenants/{a}/domains"),
            Some(json!({"domain": "new-alpha.example"})),
            Needs::Admin,
            true,
        ),
        ("GET", "/api/v1/domains".into(), None, Needs::Read, false),
        (
            "GET",
            format!("/api/v1/domains/{}", f.a_domain),
            None,
            Needs::Read,
            true,
        ),
        (
            "POST",
            format!("/api/v1/domains/{}/verify", f.a_domain),
            Some(json!({})),
            Needs::Admin,
            true,
        ),
        ("GET", "/api/v1/mailboxes".into(), None, Needs::Read, false),
        (
            "POST",
            "/api/v1/mailboxes".into(),
            Some(
                json!({"tenant_id": a, "host": "127.0.0.1", "port": 1143, "tls": "plain", "username": "u2", "password_env": "SEALWATCH_MAILBOX_X"}),
            ),
            Needs::Admin,
            false,
        ),
        (
            "GET",
            format!("/api/v1/mailboxes/{}", f.a_mailbox),
            None,
            Needs::Read,
            true,
        ),
        (
            "PATCH",
            format!("/api/v1/mailboxes/{}", f.a_mailbox),
            Some(json!({"enabled": false})),
            Needs::Admin,
            true,
        ),
        (
            "GET",
            "/api/v1/reports/dmarc".into(),
            None,
            Needs::Read,
            false,
        ),
        (
            "GET",
            format!("/api/v1/reports/dmarc/{}", f.a_dmarc),
            None,
            Needs::Read,
            true,
        ),
        (
            "GET",
            format!("/api/v1/reports/dmarc/{}/raw", f.a_dmarc),
            None,
            Needs::Read,
            true,
        ),
        (
            "GET",
            "/api/v1/reports/tls".into(),
            None,
            Needs::Read,
            false,
        ),
        (
            "GET",
            format!("/api/v1/reports/tls/{}", f.a_tls),
            None,
            Needs::Read,
            true,
        ),
        (
            "GET",
            format!("/api/v1/reports/tls/{}/raw", f.a_tls),
            None,
            Needs::Read,
            true,
        ),
        ("GET", "/api/v1/anomalies".into(), None, Needs::Read, false),
        (
            "GET",
            format!("/api/v1/anomalies/{}", f.a_anomaly),
            None,
            Needs::Read,
            true,
        ),
        (
            "POST",
            format!("/api/v1/anomalies/{}/review", f.a_anomaly),
            Some(json!({"action": "acknowledge"})),
            Needs::Review,
            true,
        ),
        (
            "GET",
            format!("/api/v1/tenants/{a}/digests"),
            None,
            Needs::Read,
            true,
        ),
        (
            "GET",
            format!("/api/v1/tenants/{a}/digests/preview?week=2026-W45"),
            None,
            Needs::Read,
            true,
        ),
        (
            "GET",
            format!("/api/v1/domains/{}/health", f.a_domain),
            None,
            Needs::Read,
            true,
        ),
        (
            "POST",
            format!("/api/v1/domains/{}/health", f.a_domain),
            Some(json!({})),
            Needs::Review,
            true,
        ),
        (
            "POST",
            format!("/api/v1/tenants/{a}/digests/2026-W45/resend"),
            Some(json!({})),
            Needs::Admin,
            true,
        ),
        ("GET", "/api/v1/quarantine".into(), None, Needs::Read, false),
        (
            "GET",
            format!("/api/v1/quarantine/{}/raw", f.a_quarantine),
            None,
            Needs::Read,
            true,
        ),
        (
            "POST",
            format!("/api/v1/quarantine/{}/retry", f.a_quarantine),
            Some(json!({})),
            Needs::Admin,
            true,
        ),
        ("GET", "/api/v1/tokens".into(), None, Needs::Admin, false),
        (
            "POST",
            "/api/v1/tokens".into(),
            Some(json!({"name": "ci", "role": "analyst"})),
            Needs::Admin,
            false,
        ),
        ("GET", "/api/v1/audit".into(), None, Needs::Admin, false),
        (
            "DELETE",
            format!("/api/v1/mailboxes/{}", f.a_mailbox),
            None,
            Needs::Admin,
            true,
        ),
        (
            "DELETE",
            format!("/api/v1/domains/{}", f.a_domain),
            None,
            Needs::Admin,
            true,
        ),
        (
            "POST",
            format!("/api/v1/tenants/{a}/deactivate"),
            Some(json!({})),
            Needs::Admin,
            true,
        ),
    ];
    let call = |token: Option<String>, method: &'static str, path: String, body: Option<Value>| {
        let addr = f.server.addr;
        async move {
            let text = body.map(|b| b.to_string());
            http::request(
                addr,
                method,
                &path,
                token.as_deref(),
                text.as_deref().map(|t| ("application/json", t.as_bytes())),
            )
            .await
        }
    };
    for (method, path, body, needs, of_a) in &endpoints {
        let label = format!("{method} {path}");
        // No token, a malformed token, a well-formed but unknown token: 401, as a problem.
        for t in [
            None,
            Some("garbage".to_owned()),
            Some("sw_0123456789ab_nope".to_owned()),
        ] {
            let r = call(t.clone(), method, path.clone(), body.clone()).await;
            assert_eq!(r.status, 401, "{label} with {t:?}: {}", r.text());
            assert_eq!(r.header("content-type"), Some("application/problem+json"));
            assert_eq!(r.header("www-authenticate"), Some("Bearer"));
            assert_eq!(r.json()["code"], "unauthenticated");
        }
        // Roles without the right: 403 whatever the object.
        let refused: Vec<&String> = match needs {
            Needs::Read => vec![],
            Needs::Review => vec![&f.tenant_a, &f.tenant_b],
            Needs::Admin => vec![&f.analyst, &f.tenant_a, &f.tenant_b],
        };
        for t in refused {
            let r = call(Some(t.clone()), method, path.clone(), body.clone()).await;
            assert_eq!(r.status, 403, "{label}: {}", r.text());
            assert_eq!(r.json()["code"], "forbidden");
        }
        // Another tenant reading tenant A's object: 404, as if it did not exist.
        if *needs == Needs::Read && *of_a {
            let r = call(Some(f.tenant_b.clone()), method, path.clone(), body.clone()).await;
            assert_eq!(r.status, 404, "{label}: {}", r.text());
            assert_eq!(r.json()["code"], "not-found");
            let mine = call(Some(f.tenant_a.clone()), method, path.clone(), body.clone()).await;
            assert_eq!(
                mine.status,
                200,
                "{label} for its own tenant: {}",
                mine.text()
            );
        }
        // Lists: tenant B sees nothing of tenant A.
        if *needs == Needs::Read && !*of_a && *method == "GET" {
            let r = call(Some(f.tenant_b.clone()), method, path.clone(), None).await;
            assert_eq!(r.status, 200, "{label}: {}", r.text());
            let list = items(&r.json());
            let tenants_list = path.starts_with("/api/v1/tenants");
            assert!(
                list.iter()
                    .all(|i| i["tenant_id"] != a && !(tenants_list && i["id"] == a)),
                "{label} shows tenant A to tenant B: {list:?}"
            );
        }
        // The right role succeeds.
        let who = match needs {
            Needs::Read | Needs::Admin => &f.admin,
            Needs::Review => &f.analyst,
        };
        let r = call(Some(who.clone()), method, path.clone(), body.clone()).await;
        assert!(
            (200..300).contains(&r.status),
            "{label} as {needs:?}: {} {}",
            r.status,
            r.text()
        );
    }
    // An unknown id is the same 404 as another tenant's.
    let admin = Client::new(f.server.addr, Some(&f.admin));
    assert_eq!(admin.get("/api/v1/anomalies/999999").await.status, 404);
    f.server.stop().await;
}

// ---- TLS-RPT over HTTPS -----------------------------------------------------------------

/// Posted reports reach only a verified domain, once, in both content types.
async fn posted_tls_reports_reach_only_verified_domains_once(engine: Engine) {
    let db = TestDb::new(engine, "api_tlsrpt").await;
    let store = &db.store;
    let server = ApiServer::start(store, config()).await;
    let admin = Client::new(server.addr, Some(&token(store, Role::Admin, None).await));
    let t = id(&admin
        .post("/api/v1/tenants", &json!({"name": "Perfect"}))
        .await
        .json());
    own_test_zones(store, t).await;
    let d = admin
        .post(
            &format!("/api/v1/tenants/{t}/domains"),
            &json!({"domain": "perfect.test"}),
        )
        .await
        .json();
    let did = id(&d["domain"]);
    let report = reports::tls_json(
        "mx.sender.example",
        "r-1",
        "perfect.test",
        "2026-11-02",
        10,
        3,
    );
    let post = |ct: &'static str, body: Vec<u8>| {
        let addr = server.addr;
        async move { http::request(addr, "POST", "/api/v1/tlsrpt", None, Some((ct, &body))).await }
    };
    // Not verified yet: the same answer as for any report, and nothing kept.
    let accepted = |r: &http::Response| {
        assert_eq!(r.status, 202, "{}", r.text());
        assert_eq!(r.json(), json!({"status": "accepted"}));
    };
    let r = post("application/tlsrpt+json", report.clone().into_bytes()).await;
    accepted(&r);
    assert_eq!(store.counts().await.expect("counts").raw_messages, 0);
    let v = admin
        .post(&format!("/api/v1/domains/{did}/verify"), &json!({}))
        .await
        .json();
    assert_eq!(v["verified"], true, "{v}");
    // Stored once; the same report again (gzip this time, at the RFC 8460 path) is a
    // duplicate, answered alike.
    let r = post("application/tlsrpt+json", report.clone().into_bytes()).await;
    accepted(&r);
    assert_eq!(store.counts().await.expect("counts").tls_reports, 1);
    let again = http::request(
        server.addr,
        "POST",
        "/v1/tlsrpt",
        None,
        Some(("application/tlsrpt+gzip", &reports::gzip(report.as_bytes()))),
    )
    .await;
    accepted(&again);
    let r = post("application/tlsrpt+json", report.clone().into_bytes()).await;
    accepted(&r);
    assert_eq!(store.counts().await.expect("counts").tls_reports, 1);
    let listed = items(&admin.ok("/api/v1/reports/tls?domain=perfect.test").await);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["failed_sessions"], 3);
    // Wrong content type, garbage, a DMARC report: refused with a reason.
    let r = post("application/json", report.clone().into_bytes()).await;
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (415, json!("unsupported-media-type"))
    );
    let r = post("application/tlsrpt+json", b"{not json".to_vec()).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["errors"][0]["field"], "body");
    let dmarc = reports::aggregate_xml(
        "x.example",
        "1",
        "perfect.test",
        DAY,
        DAY + 86_399,
        &[("192.0.2.1", 1)],
    );
    let r = post("application/tlsrpt+json", dmarc.into_bytes()).await;
    assert_eq!(r.status, 400, "{}", r.text());
    // Over the size limit: 413 before anything is parsed.
    let small = ApiServer::start(
        store,
        ApiConfig {
            max_body_bytes: 1024,
            ..config()
        },
    )
    .await;
    let big = http::request(
        small.addr,
        "POST",
        "/api/v1/tlsrpt",
        None,
        Some(("application/tlsrpt+json", &vec![b' '; 4096])),
    )
    .await;
    assert_eq!(big.status, 413, "{}", big.text());
    assert_eq!(big.json()["code"], "payload-too-large");
    let json_too_big = http::request(
        small.addr,
        "POST",
        "/api/v1/tenants",
        None,
        Some(("application/json", &vec![b' '; 4096])),
    )
    .await;
    assert_eq!(json_too_big.status, 401, "authentication comes first");
    small.stop().await;
    server.stop().await;
}

// ---- shared behaviour -------------------------------------------------------------------

/// Validation names the field and why; lists page by opaque cursor without gaps or
/// repeats; revoked tokens stop at once; repeated bad tokens from one address get 429.
async fn errors_pages_revocation_and_rate_limits(engine: Engine) {
    let db = TestDb::new(engine, "api_behaviour").await;
    let store = &db.store;
    let server = ApiServer::start(
        store,
        ApiConfig {
            auth_failures_per_minute: 5,
            ..config()
        },
    )
    .await;
    let admin_token = token(store, Role::Admin, None).await;
    let admin = Client::new(server.addr, Some(&admin_token));

    // Validation errors.
    let r = admin
        .post(
            "/api/v1/tenants",
            &json!({"name": "", "digest_weekday": 8, "timezone": "nowhere"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let p = r.json();
    assert_eq!(p["code"], "validation-failed");
    assert_eq!(p["status"], 400);
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["name", "digest_weekday", "timezone"]);
    let t = id(&admin
        .post("/api/v1/tenants", &json!({"name": "T"}))
        .await
        .json());
    let r = admin
        .post(
            &format!("/api/v1/tenants/{t}/domains"),
            &json!({"domain": "not a domain"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["errors"][0]["field"].clone()),
        (400, json!("domain"))
    );
    let r = admin
        .post("/api/v1/mailboxes", &json!({"host": "imap.example.com", "port": 70000, "tls": "plain", "username": "u", "password_env": "SEALWATCH_MAILBOX_P"}))
        .await;
    let p = r.json();
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["port", "tls"], "{p}");
    let r = admin
        .post("/api/v1/tenants", &json!({"name": "X", "colour": "red"}))
        .await;
    assert_eq!(r.status, 400, "unknown fields are refused: {}", r.text());
    let r = admin
        .get("/api/v1/anomalies?severity=urgent&from=yesterday")
        .await;
    assert_eq!(
        r.json()["errors"].as_array().map(Vec::len),
        Some(2),
        "{}",
        r.text()
    );
    let r = admin.get("/api/v1/tenants?cursor=%21%21").await;
    assert_eq!(r.json()["errors"][0]["field"], "cursor");
    let r = admin.get("/api/v1/tenants?limit=0").await;
    assert_eq!(r.json()["errors"][0]["field"], "limit");
    assert_eq!(
        admin.get("/api/v1/nothing-here").await.json()["code"],
        "not-found"
    );
    let r = admin.post("/api/v1/tenants", &json!({"name": "T"})).await;
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (409, json!("conflict"))
    );

    // Cursor pagination over 23 tenants, 5 at a time.
    for i in 0..22 {
        assert_eq!(
            admin
                .post(
                    "/api/v1/tenants",
                    &json!({"name": format!("tenant {i:02}")})
                )
                .await
                .status,
            201
        );
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/tenants?limit=5".to_owned();
    loop {
        let page = admin.ok(&path).await;
        seen.extend(items(&page).iter().map(id));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/tenants?limit=5&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 23);
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "ordered, no repeats: {seen:?}"
    );

    // Tokens: created with the secret shown once, last use recorded, revoked at once.
    let created = admin
        .post("/api/v1/tokens", &json!({"name": "ci", "role": "analyst"}))
        .await
        .json();
    let secret = created["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with(&format!(
        "sw_{}_",
        created["token"]["prefix"].as_str().expect("prefix")
    )));
    let ci = Client::new(server.addr, Some(&secret));
    assert_eq!(ci.get("/api/v1/anomalies").await.status, 200);
    let listed = items(&admin.ok("/api/v1/tokens").await);
    let row = listed.iter().find(|t| t["name"] == "ci").expect("listed");
    assert!(
        row.get("secret").is_none() && row["last_used_at"].is_string(),
        "{row}"
    );
    let tid = id(&created["token"]);
    assert_eq!(
        admin
            .post(&format!("/api/v1/tokens/{tid}/revoke"), &json!({}))
            .await
            .status,
        200
    );
    let r = ci.get("/api/v1/anomalies").await;
    assert_eq!(r.status, 401);

    // A deactivated tenant's token stops working (a fresh token: no cached verification).
    let c = id(&admin
        .post("/api/v1/tenants", &json!({"name": "Charlie"}))
        .await
        .json());
    let charlie = Client::new(
        server.addr,
        Some(&token(store, Role::Tenant, Some(c)).await),
    );
    assert_eq!(
        admin
            .post(&format!("/api/v1/tenants/{c}/deactivate"), &json!({}))
            .await
            .json()["active"],
        false
    );
    assert_eq!(
        charlie.get(&format!("/api/v1/tenants/{c}")).await.status,
        401
    );

    // Failed authentications are rate-limited per address; a good token from the same
    // address still works (it is verified before any failure limit applies).
    let bad = Client::new(server.addr, Some("sw_0123456789ab_wrong"));
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(bad.get("/api/v1/tenants").await.status);
    }
    // The revoked and the deactivated tokens' attempts above were this minute's first failures.
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429, 429]);
    let r = bad.get("/api/v1/tenants").await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    let r = admin.get("/api/v1/tenants").await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Health endpoints and the spec need no token.
    assert_eq!(
        http::request(server.addr, "GET", "/healthz", None, None)
            .await
            .status,
        200
    );
    assert_eq!(
        http::request(server.addr, "GET", "/readyz", None, None)
            .await
            .json()["status"],
        "ready"
    );
    let spec = http::request(server.addr, "GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(spec.json()["info"]["title"], "sealwatch admin API");
    let ui = http::request(server.addr, "GET", "/api/v1/docs/", None, None).await;
    assert_eq!(ui.status, 200);
    server.stop().await;

    // A request that takes longer than allowed is answered 503 (here: verification against a
    // name server that never answers).
    let slow = ApiServer::start(
        store,
        ApiConfig {
            request_timeout: Duration::from_secs(2),
            dns_servers: vec!["192.0.2.1:53".parse().expect("addr")],
            ..config()
        },
    )
    .await;
    let admin = Client::new(slow.addr, Some(&admin_token));
    // The first use of a token pays for argon2 (slow in debug builds); later ones hit the cache.
    let warm = admin.get("/api/v1/tenants?limit=1").await;
    assert_eq!(warm.status, 200, "{}", warm.text());
    // The domain is added through the store: only the verification is to meet the timeout.
    let d = store
        .domain_add(
            sealwatch_store::Scope::All,
            t,
            &sealwatch_model::DomainName::parse("slow.example").expect("domain"),
        )
        .await
        .expect("domain");
    let started = std::time::Instant::now();
    let r = admin
        .post(&format!("/api/v1/domains/{}/verify", d.id), &json!({}))
        .await;
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (503, json!("timeout"))
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    slow.stop().await;
}

/// A report quarantined as `unrouted` goes through once its domain is onboarded and the
/// entry is retried; retrying again stores nothing twice.
async fn a_quarantined_report_goes_through_after_its_domain_is_onboarded(engine: Engine) {
    let f = fixture(engine, "api_retry").await;
    let c = Client::new(f.server.addr, Some(&f.admin));
    let path = format!("/api/v1/quarantine/{}/retry", f.a_quarantine);
    // Still unowned: the retry quarantines it again, with the count carried on.
    let r = c.post(&path, &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["stored"], 0);
    assert_eq!(r.json()["still_quarantined"]["unrouted"], 1);
    let open: Vec<Value> = items(&c.ok("/api/v1/quarantine").await)
        .into_iter()
        .filter(|q| q["resolved_at"].is_null() && q["reason"] == "unrouted")
        .collect();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["retry_count"], 1);
    let again = id(&open[0]);

    // Onboard the domain to tenant A, retry: stored, and the entry is resolved.
    let r = c
        .post(
            &format!("/api/v1/tenants/{}/domains", f.a),
            &json!({"domain": "other.example"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = c
        .post(&format!("/api/v1/quarantine/{again}/retry"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["stored"], 1, "{}", r.text());
    assert!(
        r.json()["still_quarantined"]
            .as_object()
            .is_some_and(|m| m.is_empty())
    );
    assert!(
        items(&c.ok("/api/v1/quarantine").await)
            .iter()
            .all(|q| q["reason"] != "unrouted" || !q["resolved_at"].is_null()),
        "every unrouted entry is resolved"
    );
    let reports = items(&c.ok("/api/v1/reports/dmarc?domain=other.example").await);
    assert_eq!(reports.len(), 1, "{reports:?}");
    // Retrying once more stores nothing twice.
    let r = c
        .post(&format!("/api/v1/quarantine/{again}/retry"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["stored"], 0);
    assert_eq!(r.json()["duplicates"], 1, "{}", r.text());
    assert_eq!(
        items(&c.ok("/api/v1/reports/dmarc?domain=other.example").await).len(),
        1
    );
    // The audit log recorded the retries.
    let audit = items(&c.ok("/api/v1/audit").await);
    assert!(
        audit.iter().filter(|e| e["action"] == "retry").count() >= 3,
        "{audit:?}"
    );
    f.server.stop().await;
}

on_both_engines!(
    a_quarantined_report_goes_through_after_its_domain_is_onboarded,
    the_staff_story_runs_through_http,
    domain_verification_reads_the_published_records,
    every_endpoint_refuses_the_wrong_caller,
    posted_tls_reports_reach_only_verified_domains_once,
    errors_pages_revocation_and_rate_limits,
);
