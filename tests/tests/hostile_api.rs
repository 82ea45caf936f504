//! The API as a stranger meets it, on both engines: every request here is one an attacker
//! can send, answered by the real server over real sockets. Guessing tokens never locks a
//! valid one out; made-up methods do not grow the metrics; an intake flood is limited per
//! address and per claimed domain, alike for verified, unverified and unknown domains,
//! while other domains' reports still go through; a forged copy posted first does not
//! displace the copy from the subscriber's mailbox; revocations and deactivations reach
//! every process within seconds; repeated filter values cost nothing; a mailbox cannot
//! name the service's own secrets as its password.

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

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::{ApiServer, token};
use db::{Engine, TestDb};
use http::{Client, Response, request_with};
use sealwatch_api::{ApiConfig, IntakeConfig, TrustedProxy};
use sealwatch_ingest::imap::{Poller, PollerConfig};
use sealwatch_model::DomainName;
use sealwatch_parser::Parser;
use sealwatch_store::{ReportFilter, Role, Scope, Store};
use serde_json::{Value, json};

fn loopback_proxy() -> Vec<TrustedProxy> {
    vec!["127.0.0.1".parse().expect("proxy")]
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

/// A tenant with one domain marked verified (the intake routes only verified domains).
async fn verified_domain(store: &Store, tenant: &str, domain: &str) -> (i64, i64) {
    let t = store
        .create_tenant(tenant, &[DomainName::parse(domain).expect("domain")])
        .await
        .expect("tenant");
    let d = store
        .domain_page(Scope::All, Some(t.id), None, 10)
        .await
        .expect("domains")
        .into_iter()
        .find(|d| d.domain == domain)
        .expect("the domain");
    store
        .domain_record_verification(Scope::All, d.id, true, &json!({"checks": []}))
        .await
        .expect("verify");
    (t.id, d.id)
}

async fn bearer(addr: std::net::SocketAddr, token: &str, client: Option<&str>) -> Response {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("Authorization", auth.as_str())];
    if let Some(c) = client {
        headers.push(("X-Forwarded-For", c));
    }
    request_with(addr, "GET", "/api/v1/tenants?limit=1", &headers, None).await
}

/// 25 bad tokens, then a valid one gets 200: failures are counted per client and per
/// prefix, never against a token that verifies. Behind a trusted proxy, each client is
/// counted on its own; a client that is not a trusted proxy cannot pick its address.
async fn bad_tokens_never_lock_out_a_valid_token(engine: Engine) {
    let db = TestDb::new(engine, "hostile_auth").await;
    let store = &db.store;
    let admin = token(store, Role::Admin, None).await;
    let server = ApiServer::start(store, ApiConfig::default()).await;

    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(bearer(server.addr, "sw_000000000000_x", None).await.status);
    }
    assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");
    let ok = bearer(server.addr, &admin, None).await;
    assert_eq!(ok.status, 200, "{}", ok.text());

    // Guessing secrets of the admin's own (public) prefix: the prefix is limited, the
    // token itself still works.
    let prefix = admin.rsplit_once('_').map(|(p, _)| p).unwrap_or_default();
    let guess = format!("{prefix}_{}", "A".repeat(43));
    let mut last = 0;
    for _ in 0..25 {
        last = bearer(server.addr, &guess, None).await.status;
    }
    assert_eq!(last, 429, "the guessed prefix is limited");
    let ok = bearer(server.addr, &admin, None).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let limited = bearer(server.addr, "sw_111111111111_y", None).await;
    assert_eq!(limited.status, 429, "the guessing address is limited");
    assert!(limited.header("retry-after").is_some());
    server.stop().await;

    // Behind a load balancer: one guessing client does not block another.
    let proxied = ApiServer::start(
        store,
        ApiConfig {
            trusted_proxies: loopback_proxy(),
            ..ApiConfig::default()
        },
    )
    .await;
    for _ in 0..25 {
        bearer(proxied.addr, "sw_222222222222_x", Some("198.51.100.7")).await;
    }
    let attacker = bearer(proxied.addr, "sw_333333333333_x", Some("198.51.100.7")).await;
    assert_eq!(attacker.status, 429);
    let neighbour = bearer(proxied.addr, "sw_444444444444_x", Some("198.51.100.8")).await;
    assert_eq!(
        neighbour.status, 401,
        "another client is counted on its own"
    );
    let ok = bearer(proxied.addr, &admin, Some("198.51.100.7")).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    proxied.stop().await;

    // Without trusted proxies the header is the client's word and is ignored: rotating it
    // does not escape the limit.
    let direct = ApiServer::start(store, ApiConfig::default()).await;
    let mut statuses = Vec::new();
    for i in 0..25 {
        let claimed = format!("203.0.113.{i}");
        statuses.push(
            bearer(direct.addr, "sw_555555555555_x", Some(&claimed))
                .await
                .status,
        );
    }
    assert_eq!(statuses[24], 429, "{statuses:?}");
    direct.stop().await;
}

/// The `_count` series of the request histogram, as label sets.
fn request_series(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("sealwatch_http_request_duration_seconds_count"))
        .filter_map(|l| l.split_once(' ').map(|(labels, _)| labels.to_owned()))
        .collect()
}

/// 1,000 made-up methods add at most one series (`method="other"`) to `/metrics`, and
/// paths never become labels.
async fn made_up_methods_add_one_metrics_series(engine: Engine) {
    let db = TestDb::new(engine, "hostile_metrics").await;
    let server = ApiServer::start(&db.store, ApiConfig::default()).await;
    let scrape = || async {
        let r = http::request(server.addr, "GET", "/metrics", None, None).await;
        assert_eq!(r.status, 200);
        r.text()
    };
    let before = request_series(&scrape().await);
    for i in 0..1000 {
        let r = request_with(server.addr, &format!("M{i}"), &format!("/x/{i}"), &[], None).await;
        assert!(r.status >= 400, "{}", r.status);
    }
    let text = scrape().await;
    let after = request_series(&text);
    let added: Vec<&String> = after.difference(&before).collect();
    assert!(added.len() <= 2, "{added:?}"); // the `other` series, and the first /metrics scrape
    assert!(
        added
            .iter()
            .filter(|l| !l.contains("route=\"/metrics\""))
            .all(|l| l.contains("method=\"other\"") && l.contains("route=\"unmatched\"")),
        "{added:?}"
    );
    assert!(!text.contains("/x/"), "a path became a label");
    assert!(!text.contains("M999"), "a method became a label");
    server.stop().await;
}

/// `/metrics` answers the database gauges from a cache: scrapes within the refresh
/// interval do not read the database again.
async fn metrics_gauges_come_from_a_cache(engine: Engine) {
    let db = TestDb::new(engine, "hostile_gauges").await;
    let store = &db.store;
    verified_domain(store, "Gauge", "gauge.example").await;
    let server = ApiServer::start(
        store,
        ApiConfig {
            metrics_refresh: Duration::from_secs(4),
            ..ApiConfig::default()
        },
    )
    .await;
    let stored = |text: String| -> Option<String> {
        text.lines()
            .find(|l| l.starts_with("sealwatch_reports_stored{kind=\"tls\"}"))
            .map(str::to_owned)
    };
    let scrape = || async {
        http::request(server.addr, "GET", "/metrics", None, None)
            .await
            .text()
    };
    let first = stored(scrape().await);
    let started = Instant::now();
    let report = reports::tls_json("mx.gauge.test", "g-1", "gauge.example", "2026-11-02", 5, 0);
    let r = http::request(
        server.addr,
        "POST",
        "/api/v1/tlsrpt",
        None,
        Some(("application/tlsrpt+json", report.as_bytes())),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(store.counts().await.expect("counts").tls_reports, 1);
    let cached = stored(scrape().await);
    if started.elapsed() < Duration::from_secs(3) {
        assert_eq!(cached, first, "read again within the refresh interval");
    }
    let mut fresh = cached.clone();
    for _ in 0..100 {
        if fresh != first {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        fresh = stored(scrape().await);
    }
    assert_eq!(
        fresh.as_deref(),
        Some("sealwatch_reports_stored{kind=\"tls\"} 1"),
        "read again after the interval"
    );
    server.stop().await;
}

async fn post_report(
    addr: std::net::SocketAddr,
    client: &str,
    body: &[u8],
    content_type: &str,
) -> Response {
    request_with(
        addr,
        "POST",
        "/api/v1/tlsrpt",
        &[("X-Forwarded-For", client)],
        Some((content_type, body)),
    )
    .await
}

/// An intake flood gets 429 with `Retry-After`, per address and per claimed domain, with
/// the same answers whether the domain is verified, unverified or unknown; another
/// domain's reporter still gets through and its report is stored.
async fn an_intake_flood_is_limited_while_other_domains_go_through(engine: Engine) {
    let db = TestDb::new(engine, "hostile_intake").await;
    let store = &db.store;
    let (_, victim) = verified_domain(store, "Victim", "victim.example").await;
    let (_, bystander) = verified_domain(store, "Bystander", "bystander.example").await;
    store
        .create_tenant(
            "Pending",
            &[DomainName::parse("pending.example").expect("domain")],
        )
        .await
        .expect("an unverified domain");
    let server = ApiServer::start(
        store,
        ApiConfig {
            trusted_proxies: loopback_proxy(),
            intake: IntakeConfig {
                per_address_per_minute: 5,
                per_domain_per_hour: 8,
                ..IntakeConfig::default()
            },
            ..ApiConfig::default()
        },
    )
    .await;
    let report = |domain: &str, n: usize| {
        reports::tls_json(
            "mx.flood.test",
            &format!("f-{n}"),
            domain,
            "2026-11-02",
            1,
            0,
        )
    };

    // One address: five posts, then 429.
    let mut statuses = Vec::new();
    for n in 0..6 {
        let r = post_report(
            server.addr,
            "198.51.100.7",
            report("victim.example", n).as_bytes(),
            "application/tlsrpt+json",
        )
        .await;
        if r.status == 429 {
            let wait: u64 = r
                .header("retry-after")
                .and_then(|v| v.parse().ok())
                .expect("Retry-After in seconds");
            assert!((1..=60).contains(&wait), "{wait}");
        }
        statuses.push(r.status);
    }
    assert_eq!(statuses, [202, 202, 202, 202, 202, 429]);

    // Rotating addresses does not escape the domain's limit: the same answers for a
    // verified, an unverified and an unknown domain (a 429 reveals nothing).
    let mut answers = Vec::new();
    for (k, domain) in ["victim2.example", "pending.example", "nobody.example"]
        .into_iter()
        .enumerate()
    {
        if domain == "victim2.example" {
            verified_domain(store, "Victim two", domain).await;
        }
        let mut seen = Vec::new();
        for n in 0..10 {
            let client = format!("203.0.{k}.{n}");
            let r = post_report(
                server.addr,
                &client,
                report(domain, n).as_bytes(),
                "application/tlsrpt+json",
            )
            .await;
            seen.push((r.status, r.body.clone()));
        }
        answers.push(seen);
    }
    assert_eq!(
        answers[0], answers[1],
        "verified and unverified answered alike"
    );
    assert_eq!(
        answers[0], answers[2],
        "verified and unknown answered alike"
    );
    let statuses: Vec<u16> = answers[0].iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [202, 202, 202, 202, 202, 202, 202, 202, 429, 429]);

    // Meanwhile the bystander's reporter gets through, and its report is stored.
    let r = post_report(
        server.addr,
        "192.0.2.200",
        &reports::gzip(report("bystander.example", 99).as_bytes()),
        "application/tlsrpt+gzip",
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let stored = |domain_id: i64| async move {
        store
            .tls_report_page(
                Scope::All,
                &ReportFilter {
                    domain_id: Some(domain_id),
                    from_ts: None,
                    to_ts: None,
                },
                None,
                100,
            )
            .await
            .expect("reports")
            .len()
    };
    assert_eq!(stored(bystander).await, 1);
    assert_eq!(stored(victim).await, 5, "only what the limits let through");
    server.stop().await;
}

/// A report posted over HTTPS first (forged: no failures) and the genuine copy delivered
/// to the subscriber's mailbox second: the genuine copy is counted, the forged one is kept
/// and shown to staff as a conflict.
async fn a_forged_post_does_not_displace_the_mailbox_copy(engine: Engine) {
    let db = TestDb::new(engine, "hostile_forged").await;
    let store = &db.store;
    let (tenant, domain) = verified_domain(store, "Genuine", "genuine.example").await;
    let server = ApiServer::start(store, ApiConfig::default()).await;
    let admin = Client::new(server.addr, Some(&token(store, Role::Admin, None).await));
    let report_id = "2026-11-02T00:00:00Z_genuine.example";
    let forged = reports::tls_json(
        "google.com",
        report_id,
        "genuine.example",
        "2026-11-02",
        1000,
        0,
    );
    let r = http::request(
        server.addr,
        "POST",
        "/api/v1/tlsrpt",
        None,
        Some(("application/tlsrpt+json", forged.as_bytes())),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let listed = items(&admin.ok("/api/v1/reports/tls?domain=genuine.example").await);
    assert_eq!(
        listed[0]["failed_sessions"], 0,
        "the forged copy came first"
    );

    // The genuine report reaches the subscriber's mailbox.
    let user = format!("forged-{engine:?}-{}", std::process::id()).to_lowercase();
    let genuine = reports::tls_email(
        "google.com",
        report_id,
        "genuine.example",
        "2026-11-02",
        500,
        500,
    );
    let seed_user = user.clone();
    tokio::task::spawn_blocking(move || servers::seed(&seed_user, "INBOX", &[genuine]))
        .await
        .expect("seed");
    let mailbox = admin
        .post(
            "/api/v1/mailboxes",
            &json!({
                "tenant_id": tenant, "host": "127.0.0.1", "port": servers::imap_port(),
                "tls": "plain", "username": user, "password_env": servers::PASSWORD_ENV,
                "folder": "INBOX", "after": "seen",
            }),
        )
        .await;
    assert_eq!(mailbox.status, 201, "{}", mailbox.text());
    let poller = Poller::new(
        store.clone(),
        Arc::new(Parser::default()),
        PollerConfig {
            concurrency: 1,
            batch_size: 50,
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

    let listed = items(&admin.ok("/api/v1/reports/tls?domain=genuine.example").await);
    assert_eq!(listed.len(), 1, "one copy counted: {listed:?}");
    assert_eq!(
        listed[0]["failed_sessions"], 500,
        "the mailbox copy is counted"
    );
    assert_eq!(listed[0]["successful_sessions"], 500);
    let conflicts = items(
        &admin
            .ok("/api/v1/quarantine?reason=conflicting-duplicate")
            .await,
    );
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0]["tenant_id"], tenant);
    let detail = conflicts[0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("is counted instead of this one") && detail.contains("posted over HTTPS"),
        "{detail}"
    );
    // The forged bytes are kept for staff to read.
    let raw = admin
        .get(&format!("/api/v1/quarantine/{}/raw", id(&conflicts[0])))
        .await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.body, forged.as_bytes());

    // Posting the forgery again changes nothing.
    let again = http::request(
        server.addr,
        "POST",
        "/api/v1/tlsrpt",
        None,
        Some(("application/tlsrpt+json", forged.as_bytes())),
    )
    .await;
    assert_eq!(again.status, 202);
    let listed = items(&admin.ok("/api/v1/reports/tls?domain=genuine.example").await);
    assert_eq!(listed[0]["failed_sessions"], 500);
    let _ = domain;
    server.stop().await;
}

/// Waits until `f` answers `want` (up to `limit`); returns how long it took.
async fn until_status<F, Fut>(limit: Duration, want: u16, f: F) -> Option<Duration>
where
    F: Fn() -> Fut,
    Fut: Future<Output = u16>,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if f().await == want {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// A token revoked, or a tenant deactivated, through one process stops working in another
/// process (which had the token cached) within seconds.
async fn revocation_and_deactivation_reach_every_process(engine: Engine) {
    let db = TestDb::new(engine, "hostile_revoke").await;
    let store = &db.store;
    let admin = token(store, Role::Admin, None).await;
    let config = || ApiConfig {
        auth_revision_check: Duration::from_secs(1),
        ..ApiConfig::default()
    };
    let a = ApiServer::start(store, config()).await;
    let b = ApiServer::start(store, config()).await;
    let t = store
        .create_tenant(
            "Leaving",
            &[DomainName::parse("leaving.example").expect("d")],
        )
        .await
        .expect("tenant");
    let (row, analyst) = sealwatch_api::auth::issue_token(store, "analyst", Role::Analyst, None)
        .await
        .expect("token");
    let tenant_token = token(store, Role::Tenant, Some(t.id)).await;
    for tok in [&analyst, &tenant_token] {
        assert_eq!(bearer(b.addr, tok, None).await.status, 200, "cached on B");
    }

    let revoked = Client::new(a.addr, Some(&admin))
        .post(&format!("/api/v1/tokens/{}/revoke", row.id), &json!({}))
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    let took = until_status(Duration::from_secs(15), 401, || async {
        bearer(b.addr, &analyst, None).await.status
    })
    .await;
    assert!(took.is_some(), "the revoked token still works on B");

    let deactivated = Client::new(a.addr, Some(&admin))
        .post(&format!("/api/v1/tenants/{}/deactivate", t.id), &json!({}))
        .await;
    assert!(
        deactivated.status == 200,
        "{} {}",
        deactivated.status,
        deactivated.text()
    );
    let took = until_status(Duration::from_secs(15), 401, || async {
        bearer(b.addr, &tenant_token, None).await.status
    })
    .await;
    assert!(
        took.is_some(),
        "the deactivated tenant's token still works on B"
    );
    assert_eq!(bearer(b.addr, &admin, None).await.status, 200);
    a.stop().await;
    b.stop().await;
}

/// A filter value repeated 1,500 times is one value; a mailbox may not read the service's
/// own configuration (or any variable outside the mailbox prefix) as its password.
async fn repeated_filters_and_foreign_password_variables(engine: Engine) {
    let db = TestDb::new(engine, "hostile_misc").await;
    let store = &db.store;
    let server = ApiServer::start(store, ApiConfig::default()).await;
    let admin = Client::new(server.addr, Some(&token(store, Role::Admin, None).await));
    let once = admin.get("/api/v1/anomalies?status=open").await;
    assert_eq!(once.status, 200, "{}", once.text());
    let repeated = vec!["open"; 1500].join(",");
    let many = admin
        .get(&format!("/api/v1/anomalies?status={repeated}"))
        .await;
    assert_eq!(many.status, 200, "{}", many.text());
    assert_eq!(many.json(), once.json());
    let junk = (0..1500)
        .map(|i| format!("x{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let refused = admin.get(&format!("/api/v1/anomalies?status={junk}")).await;
    assert_eq!(refused.status, 400);
    assert!(refused.body.len() < 2048, "{}", refused.text());

    for name in ["SEALWATCH_DATABASE__URL", "PATH", "SEALWATCH_SMTP_PASSWORD"] {
        let r = admin
            .post(
                "/api/v1/mailboxes",
                &json!({"host": "imap.example.com", "port": 993, "tls": "implicit",
                        "username": "u", "password_env": name}),
            )
            .await;
        assert_eq!(r.status, 400, "{name}: {}", r.text());
        assert_eq!(r.json()["errors"][0]["field"], "password_env");
    }
    let ok = admin
        .post(
            "/api/v1/mailboxes",
            &json!({"host": "imap.example.com", "port": 993, "tls": "implicit",
                    "username": "u", "password_env": "SEALWATCH_MAILBOX_REPORTS"}),
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.text());
    server.stop().await;
}

/// A gzip body of about 120 KB that inflates to one 120 MB `additional-information`
/// string is accepted and stored with that string cut at the field limit (4 KiB), with a
/// warning on the report.
async fn a_120_mb_string_is_stored_at_the_cap(engine: Engine) {
    use std::io::Write as _;

    use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
    use sealwatch_store::entities::{tls_failure_detail, tls_report};

    let db = TestDb::new(engine, "hostile_huge").await;
    let store = &db.store;
    let (_, domain) = verified_domain(store, "Huge", "huge.example").await;
    let server = ApiServer::start(store, ApiConfig::default()).await;
    let head = r#"{"organization-name":"mx.huge.test","date-range":{"start-datetime":"2026-11-02T00:00:00Z","end-datetime":"2026-11-02T23:59:59Z"},"contact-info":"tls@huge.test","report-id":"huge-1","policies":[{"policy":{"policy-type":"sts","policy-string":["version: STSv1","mode: enforce","mx: mx.huge.example"],"policy-domain":"huge.example","mx-host":["mx.huge.example"]},"summary":{"total-successful-session-count":5,"total-failure-session-count":1},"failure-details":[{"result-type":"certificate-expired","sending-mta-ip":"198.51.100.9","receiving-mx-hostname":"mx.huge.example","failed-session-count":1,"additional-information":""#;
    let tail = r#""}]}]}"#;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(head.as_bytes()).expect("gzip");
    let chunk = vec![b'A'; 1 << 20];
    for _ in 0..120 {
        gz.write_all(&chunk).expect("gzip");
    }
    gz.write_all(tail.as_bytes()).expect("gzip");
    let body = gz.finish().expect("gzip");
    assert!(body.len() < 1 << 20, "{} bytes on the wire", body.len());

    let r = http::request(
        server.addr,
        "POST",
        "/api/v1/tlsrpt",
        None,
        Some(("application/tlsrpt+gzip", &body)),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let conn = store.connection();
    let report = tls_report::Entity::find()
        .filter(tls_report::Column::DomainId.eq(domain))
        .one(conn)
        .await
        .expect("query")
        .expect("the report is stored");
    assert!(
        report.warnings.contains("field-truncated"),
        "{}",
        report.warnings
    );
    let details = tls_failure_detail::Entity::find()
        .filter(tls_failure_detail::Column::TlsReportId.eq(report.id))
        .all(conn)
        .await
        .expect("details");
    assert_eq!(details.len(), 1);
    let info = details[0]
        .additional_information
        .clone()
        .unwrap_or_default();
    assert_eq!(info.len(), 4096, "stored at the cap");
    assert!(info.bytes().all(|b| b == b'A'));
    server.stop().await;
}

on_both_engines!(
    bad_tokens_never_lock_out_a_valid_token,
    made_up_methods_add_one_metrics_series,
    metrics_gauges_come_from_a_cache,
    an_intake_flood_is_limited_while_other_domains_go_through,
    a_forged_post_does_not_displace_the_mailbox_copy,
    revocation_and_deactivation_reach_every_process,
    repeated_filters_and_foreign_password_variables,
    a_120_mb_string_is_stored_at_the_cap,
);
