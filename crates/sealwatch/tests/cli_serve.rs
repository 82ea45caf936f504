//! `sealwatch serve` as processes: roles, the SQLite single-process guard, two
//! worker+scheduler processes on one PostgreSQL database sending each weekly digest exactly
//! once to the real SMTP sink, and a worker lane that survives a hostile MTA-STS policy host.

#[path = "../../../tests/common/db.rs"]
mod db;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use db::{Engine, TestDb};
use sea_orm::ConnectionTrait as _;

fn env_var(name: &str) -> String {
    if let Ok(v) = std::env::var(name) {
        return v;
    }
    let state = std::env::var("SEALWATCH_TEST_SERVERS_STATE")
        .unwrap_or_else(|_| "/tmp/sealwatch-test-servers".into());
    let text = std::fs::read_to_string(format!("{state}/servers.env")).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('\'').to_owned())
        .unwrap_or_else(|| panic!("{name} is not set: run tests/servers/start.sh"))
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn workdir(label: &str) -> Dir {
    let dir = std::env::temp_dir().join(format!("sealwatch-serve-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    Dir(dir)
}

fn write_config(dir: &Path, db_url: &str) -> PathBuf {
    let config = dir.join("sealwatch.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{db_url}\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\n\n\
             [jobs]\nscheduler_cron = \"*/2 * * * * *\"\nidle_poll_ms = 200\n\n\
             [digest]\nfrom = \"sealwatch <digest@sealwatch.test>\"\nunsubscribe_url = \"https://sealwatch.test/unsubscribe\"\nmax_attempts = 8\nretry_backoff_secs = 60\n",
            env_var("SEALWATCH_TEST_SMTP_PORT")
        ),
    )
    .expect("config");
    config
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

fn spawn_serve(config: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .arg("--config")
        .arg(config)
        .args(["--log-level", "info", "serve"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve")
}

fn stop(child: Child) -> (std::process::ExitStatus, String) {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let out = child.wait_with_output().expect("serve exits");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Messages the sink stored for one recipient.
fn delivered(rcpt: &str) -> Vec<String> {
    let dir = Path::new(&env_var("SEALWATCH_TEST_SMTP_SPOOL"))
        .join("by-rcpt")
        .join(rcpt.to_lowercase());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_serve_process_on_one_sqlite_file_is_refused() {
    let db = TestDb::new(Engine::Sqlite, "serve_lock").await;
    let dir = workdir("lock");
    let config = write_config(&dir.0, &db.url);
    let first = spawn_serve(&config, &["--bind", "127.0.0.1:0"]);
    // Wait until the first one is up (it logs once it has the database).
    std::thread::sleep(Duration::from_secs(2));
    let second = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .arg("--config")
        .arg(&config)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .output()
        .expect("second serve");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        !second.status.success(),
        "the second process must not start"
    );
    assert!(
        stderr.contains("another sealwatch serve process is already using the SQLite database"),
        "{stderr}"
    );
    let (status, first_err) = stop(first);
    assert!(status.success(), "{first_err}");
    assert!(first_err.contains("shut down cleanly"), "{first_err}");
    // Once the first has stopped, a new one may start.
    let again = spawn_serve(
        &config,
        &[
            "--bind",
            "127.0.0.1:0",
            "--role",
            "api",
            "--log-format",
            "json",
        ],
    );
    std::thread::sleep(Duration::from_secs(2));
    let (status, err) = stop(again);
    assert!(status.success(), "{err}");
    assert!(err.contains(r#""roles":"api""#), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_and_workers_on_postgres_send_each_weekly_digest_once() {
    let db = TestDb::new(Engine::Postgres, "serve_digest").await;
    let dir = workdir("digest");
    let config = write_config(&dir.0, &db.url);
    let tag = format!(
        "{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    );
    let mut recipients = Vec::new();
    for i in 0..3 {
        let tenant = format!("serve-tenant-{i}");
        let domain = format!("serve{i}-{}.example", std::process::id());
        sealwatch(&config, &["tenant", "add", &tenant, "--domain", &domain]);
        let rcpt = format!("owner{i}-{tag}@tenant.example");
        sealwatch(
            &config,
            &[
                "digest",
                "settings",
                "--tenant",
                &tenant,
                "--recipient",
                &rcpt,
            ],
        );
        recipients.push(rcpt);
    }
    // The tenants have existed for a month, so last week's digest is due.
    db.store
        .connection()
        .execute_unprepared("UPDATE tenants SET created_at = NOW() - INTERVAL '30 days'")
        .await
        .expect("backdate tenants");

    // Two processes, each with a scheduler (both fire every two seconds) and workers.
    let roles = [
        "--role",
        "worker",
        "--role",
        "scheduler",
        "--bind",
        "127.0.0.1:0",
    ];
    let a = spawn_serve(&config, &roles);
    let b = spawn_serve(&config, &roles);
    let deadline = Instant::now() + Duration::from_secs(90);
    while recipients.iter().any(|r| delivered(r).is_empty()) {
        assert!(Instant::now() < deadline, "digests were not delivered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let both schedulers tick a few more times: nothing more may arrive.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (sa, ea) = stop(a);
    let (sb, eb) = stop(b);
    assert!(sa.success(), "{ea}");
    assert!(sb.success(), "{eb}");
    for r in &recipients {
        let msgs = delivered(r);
        assert_eq!(msgs.len(), 1, "{r} got {} digests", msgs.len());
        let m = &msgs[0];
        assert!(m.contains("multipart/alternative"), "{m}");
        assert!(m.contains("text/plain") && m.contains("text/html"), "{m}");
        assert!(m.contains("List-Unsubscribe"), "{m}");
    }
    let sent = db
        .store
        .connection()
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT COUNT(*) AS n FROM digests WHERE status = 'sent'",
        ))
        .await
        .expect("count")
        .expect("row");
    let n: i64 = sent.try_get("", "n").expect("n");
    assert_eq!(n, 3);
    assert!(
        ea.contains("digest sent") || eb.contains("digest sent"),
        "{ea}\n{eb}"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A plain HTTP/1.1 GET on loopback: (status, body).
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    request(port, "GET", path, None)
}

/// A plain HTTP/1.1 request without a body on loopback: (status, body).
fn request(port: u16, method: &str, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

/// Appends the health-check settings of the test servers to `config`, with MTA-STS policies
/// fetched from `mta_sts_addr`, and the `rua` addresses the test zones point at.
fn add_health_settings(config: &Path, mta_sts_addr: &str) {
    let mut text = std::fs::read_to_string(config).expect("config");
    text.push_str(&format!(
        "\n[health]\nname_servers = [\"{}\"]\nca_file = \"{}\"\nmta_sts_addr = \"{mta_sts_addr}\"\nblocklists = false\ndns_timeout_secs = 2.0\n\n[reporting]\ndmarc_rua = \"dmarc@sealwatch.test\"\ntlsrpt_rua = \"tlsrpt@sealwatch.test\"\n",
        env_var("SEALWATCH_TEST_DNS"),
        env_var("SEALWATCH_TEST_CA"),
    ));
    std::fs::write(config, text).expect("config");
}

/// An admin token made by the CLI.
fn admin_token(config: &Path) -> String {
    String::from_utf8_lossy(
        &sealwatch(config, &["admin", "create-token", "--role", "admin"]).stdout,
    )
    .trim()
    .to_owned()
}

/// Waits for the API on `port` to answer, then returns the id of the first domain.
async fn first_domain_id(port: u16, token: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    let domains = loop {
        if let Some((200, body)) = request(port, "GET", "/api/v1/domains", Some(token)) {
            break body;
        }
        assert!(Instant::now() < deadline, "the API did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let domains: serde_json::Value = serde_json::from_str(&domains).expect("json");
    domains["items"][0]["id"].as_i64().expect("domain id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_process_answers_probes_and_metrics_but_not_the_api() {
    let db = TestDb::new(Engine::Sqlite, "serve_probes").await;
    // Two domains for the nightly analysis (one batch job).
    db.store
        .create_tenant(
            "probe",
            &[
                sealwatch_model::DomainName::parse("probe.example").expect("domain"),
                sealwatch_model::DomainName::parse("probe.test").expect("domain"),
            ],
        )
        .await
        .expect("tenant");
    let dir = workdir("probes");
    let config = write_config(&dir.0, &db.url);
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let child = spawn_serve(
        &config,
        &["--role", "worker", "--role", "scheduler", "--bind", &bind],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        if let Some(r) = get(port, "/healthz") {
            break r;
        }
        assert!(Instant::now() < deadline, "no /healthz on {bind}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(health.0, 200);
    assert!(health.1.contains("ok"), "{}", health.1);
    let ready = get(port, "/readyz").expect("readyz");
    assert_eq!(ready.0, 200, "{}", ready.1);
    // The scheduler's first tick runs the nightly analysis and purge jobs; their outcomes
    // and the queue gauge show up on /metrics.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = get(port, "/metrics").expect("metrics");
        assert_eq!(status, 200);
        if body.contains("sealwatch_jobs_total{job=\"retention\",outcome=\"ok\"} 1")
            && body.contains("sealwatch_jobs_total{job=\"analyze-domains\",outcome=\"ok\"} 1")
            && body.contains("sealwatch_jobs{state=\"done\"}")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "job metrics never appeared:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let api = get(port, "/api/v1/tenants").expect("api");
    assert_eq!(api.0, 404, "a worker does not serve the admin API");
    let (status, err) = stop(child);
    assert!(status.success(), "{err}");
    assert!(
        err.contains("health and metrics endpoints listening"),
        "{err}"
    );
}

/// The on-demand health check: staff ask through the API, a worker runs the check against
/// the (test) DNS and MTA-STS servers and stores it, and the API shows the stored run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_demand_health_check_is_run_by_a_worker_and_shown_by_the_api() {
    let db = TestDb::new(Engine::Sqlite, "serve_health").await;
    let dir = workdir("health");
    let config = write_config(&dir.0, &db.url);
    add_health_settings(
        &config,
        &format!("127.0.0.1:{}", env_var("SEALWATCH_TEST_HTTPS_ZONES_PORT")),
    );
    sealwatch(
        &config,
        &["tenant", "add", "perfect", "--domain", "perfect.test"],
    );
    let token = admin_token(&config);
    let port = free_port();
    let child = spawn_serve(&config, &["--bind", &format!("127.0.0.1:{port}")]);
    let id = first_domain_id(port, &token).await;
    let path = format!("/api/v1/domains/{id}/health");
    // Unauthenticated: refused; staff: queued.
    assert_eq!(request(port, "POST", &path, None).expect("post").0, 401);
    let (status, body) = request(port, "POST", &path, Some(&token)).expect("post");
    assert_eq!(status, 202, "{body}");
    assert!(body.contains("queued"), "{body}");
    let deadline = Instant::now() + Duration::from_secs(90);
    let health: serde_json::Value = loop {
        let (status, body) = request(port, "GET", &path, Some(&token)).expect("get");
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        if !v["latest"].is_null() {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "no health run was stored: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let (status, err) = stop(child);
    assert!(status.success(), "{err}");
    assert_eq!(health["domain"], "perfect.test");
    assert_eq!(health["latest"]["domain"], "perfect.test");
    assert_eq!(health["latest"]["score"], 100, "{health}");
    assert!(!health["history"].as_array().expect("history").is_empty());
    assert!(err.contains("domain health checked"), "{err}");
}

/// An HTTPS policy host for `mta-sts.perfect.test` (the test CA's zones certificate) whose
/// first answers are hostile (chunk sizes of 2^64 and 2^64-1) and whose later answers are
/// the real policy. Returns its address.
async fn hostile_then_honest_policy_host(hostile: usize) -> std::net::SocketAddr {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio_rustls::rustls;

    let certs = format!("{}/certs", env_var("SEALWATCH_TEST_SERVERS_STATE"));
    let chain = std::fs::read(format!("{certs}/https-zones-chain.pem")).expect("chain");
    let key = std::fs::read(format!("{certs}/https-zones.key")).expect("key");
    let chain = rustls_pemfile::certs(&mut chain.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .expect("PEM certificates");
    let key = rustls_pemfile::private_key(&mut key.as_slice())
        .expect("PEM key")
        .expect("a key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("certificate");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let policy = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/servers/https/www/mta-sts.perfect.test/.well-known/mta-sts.txt"
    ))
    .expect("the perfect.test policy");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let served = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let policy = policy.clone();
            let n = served.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => head.extend_from_slice(&buf[..k]),
                    }
                }
                let answer: Vec<u8> = if n < hostile {
                    let size = if n.is_multiple_of(2) {
                        "10000000000000000"
                    } else {
                        "ffffffffffffffff"
                    };
                    let mut a = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n{size}\r\n"
                    )
                    .into_bytes();
                    a.extend(std::iter::repeat_n(b'x', 256 << 10));
                    a
                } else {
                    let mut a = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        policy.len()
                    )
                    .into_bytes();
                    a.extend_from_slice(&policy);
                    a
                };
                let _ = tls.write_all(&answer).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

/// One worker lane (`jobs.concurrency = 1`) runs a health check against a policy host that
/// sends a chunk size that overflows 64 bits; the check is stored with the policy reported
/// unavailable, and the same lane goes on: it runs the nightly analysis the scheduler plans
/// at start, builds and sends last week's digest, and runs the next health check, which reads
/// the real policy. No job panicked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_policy_host_does_not_stop_the_worker_lane() {
    let db = TestDb::new(Engine::Sqlite, "serve_hostile").await;
    let dir = workdir("hostile");
    let config = write_config(&dir.0, &db.url);
    let policy_host = hostile_then_honest_policy_host(1).await;
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace("[jobs]\n", "[jobs]\nconcurrency = 1\n"),
    )
    .expect("config");
    add_health_settings(&config, &policy_host.to_string());
    sealwatch(
        &config,
        &["tenant", "add", "perfect", "--domain", "perfect.test"],
    );
    // Last week's digest is due from Monday 00:00 UTC on: the lane builds and sends it too.
    let rcpt = format!("lane-{}@perfect.test", std::process::id());
    sealwatch(
        &config,
        &[
            "digest",
            "settings",
            "--tenant",
            "perfect",
            "--recipient",
            &rcpt,
            "--weekday",
            "1",
            "--hour",
            "0",
        ],
    );
    // A digest is due only for weeks the tenant existed in: it joined a month ago.
    {
        use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
        use sealwatch_store::entities::tenant;
        tenant::Entity::update_many()
            .col_expr(
                tenant::Column::CreatedAt,
                sea_orm::sea_query::Expr::value(chrono::Utc::now() - chrono::Duration::days(30)),
            )
            .filter(tenant::Column::Name.eq("perfect"))
            .exec(db.store.connection())
            .await
            .expect("backdate the tenant");
    }
    let token = admin_token(&config);
    let port = free_port();
    // The scheduler plans this week's health check, today's analysis and last week's digest
    // at its first tick; the on-demand check below is the second check. One lane runs them
    // all.
    let child = spawn_serve(&config, &["--bind", &format!("127.0.0.1:{port}")]);
    let id = first_domain_id(port, &token).await;
    let path = format!("/api/v1/domains/{id}/health");
    let (status, body) = request(port, "POST", &path, Some(&token)).expect("post");
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(90);
    let (health, metrics) = loop {
        let (status, body) = request(port, "GET", &path, Some(&token)).expect("get");
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let metrics = get(port, "/metrics").map(|m| m.1).unwrap_or_default();
        // The run is stored just before the job counts as done: wait for both.
        if v["history"].as_array().map_or(0, Vec::len) >= 2
            && metrics.contains("job=\"analyze-domains\",outcome=\"ok\"")
            && metrics.contains("sealwatch_jobs_total{job=\"check-domain\",outcome=\"ok\"} 2")
            && metrics.contains("job=\"build-digest\",outcome=\"ok\"")
        {
            break (v, metrics);
        }
        assert!(
            Instant::now() < deadline,
            "the lane stopped: {body}\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let (status, err) = stop(child);
    assert!(status.success(), "{err}");
    let history: Vec<i64> = health["history"]
        .as_array()
        .map(|h| h.iter().filter_map(|r| r["score"].as_i64()).collect())
        .unwrap_or_default();
    // Newest first: the honest answer after the hostile one.
    assert_eq!(history.len(), 2, "{health}");
    assert_eq!(
        history[0], 100,
        "the next check read the real policy: {health}"
    );
    assert!(
        history[1] < 100,
        "the hostile answer is a finding: {health}"
    );
    assert!(
        err.contains("mta-sts-policy-unavailable") || err.contains("domain health checked"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        metrics.contains("sealwatch_jobs_total{job=\"check-domain\",outcome=\"ok\"} 2"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("outcome=\"panic\""),
        "no job panicked: {metrics}"
    );
}
