//! Load benchmark of the review queue on PostgreSQL with 1,000,000 DMARC reports and 100,000
//! anomalies across 1,000 tenants. Not part of the normal suite: run it with
//!
//! ```sh
//! cargo nextest run --release -p sealwatch-tests --test api_bench --run-ignored only --no-capture
//! ```
//!
//! It needs `wrk` on the PATH and prints wrk's latency distribution for each request kind;
//! the fixed-rate run uses `oha` when it is on the PATH (`cargo install oha`).

#[path = "../common/api.rs"]
mod api;
#[path = "../common/db.rs"]
mod db;
#[path = "../common/http.rs"]
mod http;

use std::process::Command;
use std::time::Instant;

use db::{Engine, TestDb};
use sea_orm::ConnectionTrait as _;
use sealwatch_api::ApiConfig;
use sealwatch_store::Role;

const SEED: &str = r#"
INSERT INTO tenants (name, active, digest_recipients, digest_weekday, digest_hour, timezone, created_at, updated_at)
SELECT 'bench-' || g, true, '[]', 2, 8, 'UTC', now(), now() FROM generate_series(1, 1000) g;
INSERT INTO tenant_domains (tenant_id, domain, verification, created_at)
SELECT id, 'bench-' || id || '.example', 'verified', now() FROM tenants;
WITH m AS (SELECT min(id) AS first FROM tenant_domains)
INSERT INTO dmarc_reports (tenant_id, domain_id, dedupe_key, content_hash, org_name, report_id,
    policy_domain, begin_ts, end_ts, begin_day, end_day, message_count, record_count, errors,
    warnings, submitter, created_at)
SELECT d.tenant_id, d.id, 'key-' || g, 'hash', 'reporter-' || (g % 12), 'report-' || g, d.domain,
    1786000000 + (g % 84) * 86400, 1786000000 + (g % 84) * 86400 + 86399,
    20671 + (g % 84), 20671 + (g % 84), 100 + g % 50, 3, '[]', '[]', '{}', now()
FROM generate_series(1, 1000000) g
JOIN m ON true
JOIN tenant_domains d ON d.id = m.first + (g % 1000);
WITH m AS (SELECT min(id) AS first FROM tenant_domains)
INSERT INTO anomalies (tenant_id, domain_id, kind, fingerprint, severity, severity_rank, status,
    confidence, window_start, window_end, first_seen_day, last_seen_day, summary, evidence,
    explanation, occurrences, reopened, created_at, updated_at)
SELECT d.tenant_id, d.id,
    (ARRAY['tls-certificate-cluster','tls-single-provider','mta-sts-policy','dane',
           'reporter-silent','dmarc-auth-drop','dmarc-new-unauthenticated-source','no-data',
           'tls-low-rate-negotiation'])[1 + g % 9],
    'fp-' || g,
    (ARRAY['info','warning','critical'])[1 + g % 3], 1 + g % 3,
    CASE WHEN g % 20 = 0 THEN 'open' WHEN g % 20 = 1 THEN 'acknowledged'
         WHEN g % 20 < 15 THEN 'resolved' ELSE 'dismissed' END,
    0.8, 20740 + g % 14, 20747 + g % 14, 20700 + g % 40, 20720 + g % 40,
    'a summary of the finding for the review queue', '{"failed_sessions": 40, "reporters": ["a", "b"]}',
    '{"what_happened": "x", "what_it_means": "y", "what_to_do": "z", "who_fixes_it": "w"}',
    1 + g % 5, 0, now(), now()
FROM generate_series(1, 100000) g
JOIN m ON true
JOIN tenant_domains d ON d.id = m.first + (g % 1000);
ANALYZE;
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load benchmark: seeds 1,000,000 reports and 100,000 anomalies and needs wrk"]
async fn review_queue_under_load() {
    let db = TestDb::new(Engine::Postgres, "api_bench").await;
    let store = &db.store;
    let started = Instant::now();
    store
        .connection()
        .execute_unprepared(SEED)
        .await
        .expect("seed");
    eprintln!(
        "seeded 1,000,000 DMARC reports and 100,000 anomalies in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let token = api::token(store, Role::Analyst, None).await;
    let server = api::ApiServer::start(
        store,
        ApiConfig {
            workers: 2,
            ..ApiConfig::default()
        },
    )
    .await;
    let client = http::Client::new(server.addr, Some(&token));
    let first = client.ok("/api/v1/anomalies?limit=50").await;
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let tenant = first["items"][0]["tenant_id"].as_i64().expect("tenant");
    let cases = [
        (
            "queue, first page of 50",
            "/api/v1/anomalies?limit=50".to_owned(),
        ),
        (
            "queue, next page by cursor",
            format!("/api/v1/anomalies?limit=50&cursor={cursor}"),
        ),
        (
            "queue, critical TLS certificate anomalies",
            "/api/v1/anomalies?severity=critical&kind=tls-certificate-cluster".to_owned(),
        ),
        (
            "queue, one tenant, every status",
            format!("/api/v1/anomalies?tenant_id={tenant}&status=all"),
        ),
        (
            "DMARC reports of one domain, one week",
            format!(
                "/api/v1/reports/dmarc?domain={}&from=2026-08-10&to=2026-08-16",
                first["items"][0]["domain"].as_str().expect("domain")
            ),
        ),
    ];
    for (label, path) in cases {
        assert_eq!(client.get(&path).await.status, 200, "{path}");
        let out = Command::new("wrk")
            .args(["-t2", "-c8", "-d15s", "--latency", "-H"])
            .arg(format!("Authorization: Bearer {token}"))
            .arg(format!("http://{}{path}", server.addr))
            .output()
            .expect("run wrk (apt-get install wrk)");
        let text = String::from_utf8_lossy(&out.stdout);
        println!("== {label}: GET {path}\n{text}");
    }
    // The target: the first page of the queue at a fixed 500 requests/s. With `oha` on the
    // PATH (`cargo install oha`) the load comes from that separate process over 16
    // keep-alive connections, at a fixed rate with latency correction (no coordinated
    // omission); without it, from an open loop in this process, one connection per request.
    let rate = 500u32;
    let seconds = 20u32;
    let url = format!("http://{}/api/v1/anomalies?limit=50", server.addr);
    let oha = Command::new("oha")
        .args(["--no-tui", "--latency-correction", "-c", "16"])
        .args(["-q", &rate.to_string(), "-z", &format!("{seconds}s")])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .arg(&url)
        .output();
    match oha {
        Ok(out) if out.status.success() => {
            println!(
                "== queue, first page of 50, oha at a fixed {rate} requests/s for {seconds} s over 16 connections:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        _ => {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1) / rate);
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..rate * seconds {
                tick.tick().await;
                let client = client.clone();
                tasks.spawn(async move {
                    let t = Instant::now();
                    let r = client.get("/api/v1/anomalies?limit=50").await;
                    (r.status, t.elapsed())
                });
            }
            let mut latencies = Vec::new();
            while let Some(done) = tasks.join_next().await {
                let (status, took) = done.expect("request task");
                assert_eq!(status, 200);
                latencies.push(took);
            }
            latencies.sort();
            let pct = |p: f64| {
                let i =
                    ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
                latencies[i].as_secs_f64() * 1000.0
            };
            println!(
                "== queue, first page of 50, open loop at {rate} requests/s for {seconds} s: {} requests, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                latencies.len(),
                pct(0.50),
                pct(0.90),
                pct(0.99),
                pct(1.0)
            );
        }
    }
    server.stop().await;
}
