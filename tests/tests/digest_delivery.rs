//! Weekly digest delivery against the real SMTP sink of `tests/servers` (aiosmtpd on loopback;
//! STARTTLS and implicit TLS with the test CA), on SQLite and on PostgreSQL: one digest per
//! tenant and week whatever the scheduler, racing workers, dead workers or relay outages do.

#[path = "../common/db.rs"]
mod db;
#[path = "../common/servers.rs"]
mod servers;

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use db::{Engine, TestDb};
use sealwatch_digest::{
    DigestConfig, IsoWeek, Mailer, Schedule, SendOutcome, Sender, SetupHints, SmtpSettings, SmtpTls,
};
use sealwatch_model::DomainName;
use sealwatch_store::{DigestStatus, Store};

/// A week in the future, so tenants created now are old enough to get its digest.
const WEEK: &str = "2027-W10";

fn week() -> IsoWeek {
    IsoWeek::parse(WEEK).expect("week")
}

/// One minute after the default send time of [`WEEK`] (Tuesday 08:00 UTC of the next week).
fn send_time() -> DateTime<Utc> {
    Schedule::default_utc().send_time(week()) + chrono::Duration::minutes(1)
}

fn config() -> DigestConfig {
    DigestConfig {
        setup: SetupHints {
            dmarc_rua: "dmarc@reports.test".into(),
            tlsrpt_rua: "tlsrpt@reports.test".into(),
        },
        unsubscribe_url: Some("https://sealwatch.test/unsubscribe".into()),
        max_attempts: 4,
        retry_backoff: chrono::Duration::seconds(60),
        lease: chrono::Duration::seconds(300),
        message_id_domain: "sealwatch.test".into(),
    }
}

fn sender() -> Sender {
    Sender {
        from: "sealwatch digest <digest@sealwatch.test>".into(),
        reply_to: Some("support@sealwatch.test".into()),
    }
}

fn smtp(port: u16, tls: SmtpTls) -> SmtpSettings {
    SmtpSettings {
        host: servers::var("SEALWATCH_TEST_SMTP_HOST"),
        port,
        tls,
        tls_name: None,
        username: Some(servers::var("SEALWATCH_TEST_SMTP_USER")),
        password: Some(servers::var("SEALWATCH_TEST_SMTP_PASSWORD")),
        ca_pem: Some(std::fs::read(servers::var("SEALWATCH_TEST_CA")).expect("test CA")),
        timeout: Duration::from_secs(10),
        pool_size: 4,
    }
}

fn smtp_port() -> u16 {
    servers::var("SEALWATCH_TEST_SMTP_PORT")
        .parse()
        .expect("port")
}

fn sink() -> Mailer {
    Mailer::new(&smtp(smtp_port(), SmtpTls::StartTls), &sender()).expect("mailer")
}

/// A mailer pointed at a loopback port where nothing listens.
fn dead_relay() -> Mailer {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut s = smtp(port, SmtpTls::Plain);
    s.username = None;
    s.timeout = Duration::from_secs(2);
    Mailer::new(&s, &sender()).expect("mailer")
}

fn rcpt(label: &str) -> String {
    format!("{}@digest.test", servers::unique_user(label))
}

/// The messages the sink stored for a recipient: `(eml, json)`.
fn delivered(rcpt: &str) -> Vec<(String, serde_json::Value)> {
    let dir = PathBuf::from(servers::var("SEALWATCH_TEST_SMTP_SPOOL"))
        .join("by-rcpt")
        .join(rcpt.to_lowercase());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut names: Vec<PathBuf> = entries
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|eml| {
            let text = std::fs::read_to_string(&eml).expect("eml");
            let meta = std::fs::read_to_string(eml.with_extension("json")).expect("json");
            (text, serde_json::from_str(&meta).expect("meta json"))
        })
        .collect()
}

async fn tenant(store: &Store, name: &str, recipients: &[String]) -> i64 {
    let domain = DomainName::parse(&format!("{name}.example")).expect("domain");
    let t = store.create_tenant(name, &[domain]).await.expect("tenant");
    store
        .set_digest_settings(t.id, recipients, 2, 8, "UTC")
        .await
        .expect("settings");
    t.id
}

async fn a_scheduled_week_sends_one_digest_per_tenant(engine: Engine) {
    let db = TestDb::new(engine, "digest-scheduled").await;
    let store = &db.store;
    let mailer = sink();
    let cfg = config();
    let mut expected = Vec::new();
    for i in 0..3 {
        let to = vec![rcpt(&format!("sched{i}a")), rcpt(&format!("sched{i}b"))];
        let id = tenant(store, &format!("sched-{i}"), &to).await;
        expected.push((id, to));
    }
    let silent = tenant(store, "sched-silent", &[]).await;
    // Tokyo: Tuesday 08:00 JST is Monday 23:00 UTC, already past at the UTC send time.
    let tokyo_rcpt = rcpt("sched-tokyo");
    let tokyo = tenant(store, "sched-tokyo", std::slice::from_ref(&tokyo_rcpt)).await;
    store
        .set_digest_settings(tokyo, std::slice::from_ref(&tokyo_rcpt), 2, 8, "Asia/Tokyo")
        .await
        .expect("settings");

    // Before the send time nothing of this week is due.
    let early = Schedule::default_utc().send_time(week()) - chrono::Duration::hours(10);
    let due_early = sealwatch_digest::due_digests(store, early)
        .await
        .expect("due");
    assert!(due_early.iter().all(|(_, w)| *w != week()), "{due_early:?}");

    let now = send_time();
    let due = sealwatch_digest::due_digests(store, now)
        .await
        .expect("due");
    let mut due_tenants: Vec<i64> = due
        .iter()
        .filter(|(_, w)| *w == week())
        .map(|(t, _)| *t)
        .collect();
    due_tenants.sort();
    let mut want: Vec<i64> = expected.iter().map(|(t, _)| *t).collect();
    want.push(tokyo);
    want.sort();
    assert_eq!(due_tenants, want, "every tenant with recipients, once");
    assert!(!due_tenants.contains(&silent));

    let s = sealwatch_digest::run_due(store, &mailer, &cfg, "worker-a", now, 4)
        .await
        .expect("run");
    assert_eq!((s.sent, s.errors, s.failed), (4, 0, 0), "{s:?}");
    // The scheduler fires again (a second tick, another process): nothing more is sent.
    let again = sealwatch_digest::run_due(store, &mailer, &cfg, "worker-b", now, 4)
        .await
        .expect("run");
    assert_eq!(again.sent, 0, "{again:?}");
    assert!(
        sealwatch_digest::due_digests(store, now)
            .await
            .expect("due")
            .is_empty()
    );

    for (id, to) in &expected {
        let row = store
            .digest_get(*id, WEEK)
            .await
            .expect("row")
            .expect("exists");
        assert_eq!(row.status, DigestStatus::Sent);
        assert_eq!(row.attempts, 1);
        assert_eq!(&row.recipients, to);
        let message_id = row.message_id.expect("message id");
        for r in to {
            let got = delivered(r);
            assert_eq!(got.len(), 1, "exactly one digest for {r}");
            let (eml, meta) = &got[0];
            assert_eq!(
                meta["rcpt_tos"]
                    .as_array()
                    .map(|a| a.len())
                    .unwrap_or_default(),
                2,
                "one message to both recipients: {meta}"
            );
            assert_eq!(meta["tls_mode"], "starttls");
            assert_eq!(meta["auth_user"], "digest");
            assert!(
                eml.contains(&format!("Message-ID: <{message_id}>")),
                "{eml}"
            );
            assert!(eml.contains("multipart/alternative"), "{eml}");
            assert!(eml.contains("Content-Type: text/plain"), "{eml}");
            assert!(eml.contains("Content-Type: text/html"), "{eml}");
            assert!(
                eml.contains(&format!("{}, {}", to[0], to[1])),
                "To: both: {eml}"
            );
            assert!(eml.contains(&format!(
                "List-Unsubscribe: <https://sealwatch.test/unsubscribe?tenant={id}>"
            )));
            assert!(eml.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
            assert!(eml.contains("Reply-To: support@sealwatch.test"));
            assert!(eml.contains("2027-W10"), "subject names the week");
        }
    }
    assert_eq!(delivered(&tokyo_rcpt).len(), 1);
    assert!(store.digest_get(silent, WEEK).await.expect("row").is_none());
}

async fn racing_workers_build_and_send_once(engine: Engine) {
    let db = TestDb::new(engine, "digest-race").await;
    let to = rcpt("race");
    let id = tenant(&db.store, "race", std::slice::from_ref(&to)).await;
    let mailer = sink();
    let cfg = config();
    let mut tasks = Vec::new();
    for w in 0..6 {
        let (store, mailer, cfg) = (db.store.clone(), mailer.clone(), cfg.clone());
        tasks.push(tokio::spawn(async move {
            sealwatch_digest::deliver(
                &store,
                &mailer,
                &cfg,
                id,
                week(),
                &format!("racer-{w}"),
                send_time(),
            )
            .await
            .expect("deliver")
        }));
    }
    let mut sent = 0;
    for t in tasks {
        match t.await.expect("task") {
            SendOutcome::Sent { .. } => sent += 1,
            SendOutcome::AlreadySent { .. } | SendOutcome::InProgress { .. } => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(sent, 1, "exactly one racer sends");
    assert_eq!(delivered(&to).len(), 1);
    let again =
        sealwatch_digest::deliver(&db.store, &mailer, &cfg, id, week(), "late", send_time())
            .await
            .expect("deliver");
    assert!(
        matches!(again, SendOutcome::AlreadySent { sent_at: Some(_) }),
        "{again:?}"
    );
    assert_eq!(delivered(&to).len(), 1);
}

async fn a_dead_workers_claim_is_taken_over_after_its_lease(engine: Engine) {
    let db = TestDb::new(engine, "digest-killed").await;
    let store = &db.store;
    let to = rcpt("killed");
    let id = tenant(store, "killed", std::slice::from_ref(&to)).await;
    let cfg = config();
    let t0 = send_time();
    sealwatch_digest::build_digest(store, &cfg, id, week(), t0)
        .await
        .expect("build");
    let row = store.digest_get(id, WEEK).await.expect("row").expect("row");
    // A worker claims the row and dies before sending.
    assert!(
        store
            .digest_claim_send(row.id, "dead-worker", t0, t0 + cfg.lease)
            .await
            .expect("claim")
    );
    let row = store.digest_get(id, WEEK).await.expect("row").expect("row");
    assert_eq!(row.status, DigestStatus::Sending);
    assert_eq!(row.claimed_by.as_deref(), Some("dead-worker"));

    let mailer = sink();
    // While its lease runs, nobody else sends.
    let during = sealwatch_digest::send_digest(
        store,
        &mailer,
        &cfg,
        id,
        week(),
        "survivor",
        t0 + chrono::Duration::minutes(1),
    )
    .await
    .expect("send");
    assert!(
        matches!(&during, SendOutcome::InProgress { claimed_by: Some(w), .. } if w == "dead-worker"),
        "{during:?}"
    );
    assert!(delivered(&to).is_empty());
    // The expired claim shows up as work to redo.
    let after = t0 + cfg.lease + chrono::Duration::seconds(1);
    let redo = sealwatch_digest::retry_due(store, after)
        .await
        .expect("retry");
    assert!(redo.contains(&(id, week())), "{redo:?}");
    let taken = sealwatch_digest::send_digest(store, &mailer, &cfg, id, week(), "survivor", after)
        .await
        .expect("send");
    assert!(
        matches!(taken, SendOutcome::Sent { attempts: 2, .. }),
        "{taken:?}"
    );
    assert_eq!(delivered(&to).len(), 1);
    // The dead worker cannot record anything over it any more.
    assert!(
        !store
            .digest_mark_failed(row.id, "dead-worker", "late", None, after)
            .await
            .expect("mark")
    );
    let row = store.digest_get(id, WEEK).await.expect("row").expect("row");
    assert_eq!(row.status, DigestStatus::Sent);
}

async fn an_smtp_outage_is_retried_until_delivered(engine: Engine) {
    let db = TestDb::new(engine, "digest-outage").await;
    let store = &db.store;
    let to = rcpt("outage");
    let id = tenant(store, "outage", std::slice::from_ref(&to)).await;
    let cfg = config();
    let down = dead_relay();
    let t0 = send_time();

    let first = sealwatch_digest::deliver(store, &down, &cfg, id, week(), "w", t0)
        .await
        .expect("deliver");
    let SendOutcome::Retrying {
        next_attempt_at, ..
    } = first
    else {
        panic!("expected a retry, got {first:?}");
    };
    assert_eq!(next_attempt_at, t0 + cfg.retry_backoff);
    let row = store.digest_get(id, WEEK).await.expect("row").expect("row");
    assert_eq!(row.status, DigestStatus::Built);
    assert_eq!(row.attempts, 1);
    let error = row.last_error.clone().unwrap_or_default();
    assert!(
        error.starts_with("SMTP"),
        "failure visible to staff: {error:?}"
    );
    assert_eq!(
        row.next_attempt_at.map(|t| t.timestamp()),
        Some(next_attempt_at.timestamp())
    );

    // Not due before its backoff; a send attempt then is refused.
    assert!(
        !sealwatch_digest::retry_due(store, t0)
            .await
            .expect("retry")
            .contains(&(id, week()))
    );
    let early = sealwatch_digest::send_digest(store, &down, &cfg, id, week(), "w", t0)
        .await
        .expect("send");
    assert!(matches!(early, SendOutcome::NotDue { .. }), "{early:?}");

    // Second attempt, relay still down: the backoff doubles.
    let t1 = next_attempt_at;
    assert!(
        sealwatch_digest::retry_due(store, t1)
            .await
            .expect("retry")
            .contains(&(id, week()))
    );
    let second = sealwatch_digest::send_digest(store, &down, &cfg, id, week(), "w", t1)
        .await
        .expect("send");
    assert!(
        matches!(second, SendOutcome::Retrying { attempts: 2, next_attempt_at, .. } if next_attempt_at == t1 + cfg.retry_backoff * 2),
        "{second:?}"
    );
    assert!(delivered(&to).is_empty());

    // The relay is back: the scheduler's retry pass delivers it once.
    let t2 = t1 + cfg.retry_backoff * 2;
    let s = sealwatch_digest::run_due(store, &sink(), &cfg, "w", t2, 2)
        .await
        .expect("run");
    assert_eq!(s.sent, 1, "{s:?}");
    let row = store.digest_get(id, WEEK).await.expect("row").expect("row");
    assert_eq!(row.status, DigestStatus::Sent);
    assert_eq!(row.attempts, 3);
    assert_eq!(delivered(&to).len(), 1);
}

async fn refusals_are_retried_or_given_up(engine: Engine) {
    let db = TestDb::new(engine, "digest-refusal").await;
    let store = &db.store;
    let cfg = DigestConfig {
        max_attempts: 2,
        ..config()
    };
    let mailer = sink();
    let t0 = send_time();
    // 550: permanent, no retry.
    let rejected = tenant(store, "rejected", &[rcpt("reject-me")]).await;
    let out = sealwatch_digest::deliver(store, &mailer, &cfg, rejected, week(), "w", t0)
        .await
        .expect("deliver");
    assert!(
        matches!(out, SendOutcome::Failed { attempts: 1, .. }),
        "{out:?}"
    );
    let row = store
        .digest_get(rejected, WEEK)
        .await
        .expect("row")
        .expect("row");
    assert_eq!(row.status, DigestStatus::Failed);
    assert!(row.last_error.unwrap_or_default().contains("550"));
    // 451: temporary, retried until the budget is spent.
    let tempfail = tenant(store, "tempfail", &[rcpt("tempfail-me")]).await;
    let out = sealwatch_digest::deliver(store, &mailer, &cfg, tempfail, week(), "w", t0)
        .await
        .expect("deliver");
    let SendOutcome::Retrying {
        next_attempt_at, ..
    } = out
    else {
        panic!("451 is retried: {out:?}");
    };
    let out =
        sealwatch_digest::send_digest(store, &mailer, &cfg, tempfail, week(), "w", next_attempt_at)
            .await
            .expect("send");
    assert!(
        matches!(out, SendOutcome::Failed { attempts: 2, .. }),
        "{out:?}"
    );
    // Failed digests are not due again.
    assert!(
        sealwatch_digest::due_digests(store, t0)
            .await
            .expect("due")
            .iter()
            .all(|(t, _)| *t != rejected && *t != tempfail)
    );
}

/// Staff "resend": a sent digest goes out again to the tenant's current recipients with a
/// new `Message-ID`, once, on the next scheduler pass; a week never built gets built and sent.
async fn a_resend_goes_out_once_to_the_current_recipients(engine: Engine) {
    let db = TestDb::new(engine, "digest-resend").await;
    let store = &db.store;
    let mailer = sink();
    let cfg = config();
    let first = rcpt("resend-a");
    let id = tenant(store, "resend", std::slice::from_ref(&first)).await;
    let t0 = send_time();
    let out = sealwatch_digest::deliver(store, &mailer, &cfg, id, week(), "w", t0)
        .await
        .expect("deliver");
    assert!(matches!(out, SendOutcome::Sent { .. }), "{out:?}");
    assert_eq!(delivered(&first).len(), 1);
    // Nothing is due: a scheduler pass sends nothing more.
    let pass = sealwatch_digest::run_due(store, &mailer, &cfg, "w", t0, 2)
        .await
        .expect("pass");
    assert_eq!(pass.sent, 0, "{pass:?}");

    // The recipient changes; staff ask for a resend.
    let second = rcpt("resend-b");
    store
        .set_digest_settings(id, std::slice::from_ref(&second), 2, 8, "UTC")
        .await
        .expect("settings");
    let row = store
        .digest_queue_resend(id, &week().to_string(), std::slice::from_ref(&second), t0)
        .await
        .expect("resend");
    assert_eq!(row.status.as_str(), "built");
    assert_eq!(row.attempts, 0);
    let later = t0 + chrono::Duration::minutes(1);
    let pass = sealwatch_digest::run_due(store, &mailer, &cfg, "w", later, 2)
        .await
        .expect("pass");
    assert_eq!(pass.sent, 1, "{pass:?}");
    let again = sealwatch_digest::run_due(store, &mailer, &cfg, "w", later, 2)
        .await
        .expect("pass");
    assert_eq!(again.sent, 0, "sent once: {again:?}");
    assert_eq!(
        delivered(&first).len(),
        1,
        "the old recipient gets nothing more"
    );
    let got = delivered(&second);
    assert_eq!(got.len(), 1);
    assert!(
        got[0].0.contains(".resend@sealwatch.test"),
        "a new Message-ID"
    );
    // A week that was never built: queued as pending, built and sent by the next pass.
    let earlier = week().prev();
    let row = store
        .digest_queue_resend(
            id,
            &earlier.to_string(),
            std::slice::from_ref(&second),
            later,
        )
        .await
        .expect("resend of an unbuilt week");
    assert_eq!(row.status.as_str(), "pending");
    let pass = sealwatch_digest::run_due(store, &mailer, &cfg, "w", later, 2)
        .await
        .expect("pass");
    assert_eq!(pass.sent, 1, "{pass:?}");
    assert_eq!(delivered(&second).len(), 2);
}

on_both_engines!(
    a_resend_goes_out_once_to_the_current_recipients,
    a_scheduled_week_sends_one_digest_per_tenant,
    racing_workers_build_and_send_once,
    a_dead_workers_claim_is_taken_over_after_its_lease,
    an_smtp_outage_is_retried_until_delivered,
    refusals_are_retried_or_given_up,
);

async fn send_one(mailer: &Mailer, to: &str) -> Result<(), sealwatch_digest::SendError> {
    mailer
        .send(&sealwatch_digest::Outgoing {
            recipients: &[to.to_owned()],
            subject: "[example.org] Weekly email security, 2027-W10: All clear",
            text: "text part",
            html: "<p>html part</p>",
            message_id: "digest.tls-test@sealwatch.test",
            unsubscribe_url: None,
        })
        .await
}

#[tokio::test]
async fn starttls_and_implicit_tls_with_the_test_ca() {
    let to = rcpt("starttls");
    send_one(&sink(), &to).await.expect("STARTTLS send");
    let got = delivered(&to);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1["tls_mode"], "starttls");
    assert!(
        got[0].1["tls"]
            .as_str()
            .is_some_and(|v| v.starts_with("TLS"))
    );
    assert_eq!(got[0].1["auth_user"], "digest");

    let port: u16 = servers::var("SEALWATCH_TEST_SMTPS_PORT")
        .parse()
        .expect("port");
    let implicit = Mailer::new(&smtp(port, SmtpTls::Implicit), &sender()).expect("mailer");
    let to = rcpt("implicit");
    send_one(&implicit, &to).await.expect("implicit TLS send");
    let got = delivered(&to);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1["tls_mode"], "implicit");
    assert_eq!(got[0].1["auth_user"], "digest");
}

#[tokio::test]
async fn tls_without_the_ca_and_wrong_credentials_are_refused() {
    let mut no_ca = smtp(smtp_port(), SmtpTls::StartTls);
    no_ca.ca_pem = None;
    let mailer = Mailer::new(&no_ca, &sender()).expect("mailer");
    let to = rcpt("untrusted");
    let err = send_one(&mailer, &to)
        .await
        .expect_err("untrusted certificate");
    assert!(!err.message.is_empty());
    assert!(delivered(&to).is_empty());

    let mut wrong = smtp(smtp_port(), SmtpTls::StartTls);
    wrong.password = Some("not-the-password".into());
    let mailer = Mailer::new(&wrong, &sender()).expect("mailer");
    let to = rcpt("badauth");
    let err = send_one(&mailer, &to).await.expect_err("bad credentials");
    assert!(err.permanent, "535 is permanent: {err}");
    assert!(delivered(&to).is_empty());
}
