//! The IMAP poller against a real Dovecot (plain, STARTTLS and implicit TLS on loopback with
//! a private CA), on SQLite and on PostgreSQL.

#[path = "../common/db.rs"]
mod db;
#[path = "../common/reports.rs"]
mod reports;
#[path = "../common/servers.rs"]
mod servers;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use db::{Engine, TestDb};
use sealwatch_ingest::imap::{PollSummary, Poller, PollerConfig};
use sealwatch_model::DomainName;
use sealwatch_parser::Parser;
use sealwatch_store::{AfterAction, Mailbox, NewMailbox, Store, TlsMode};

const DAY: i64 = 1_793_577_600;

fn config(batch: usize) -> PollerConfig {
    PollerConfig {
        concurrency: 4,
        batch_size: batch,
        timeout: Duration::from_secs(10),
        retries: 5,
        backoff: Duration::from_millis(300),
        password_env_prefix: sealwatch_ingest::imap::DEFAULT_PASSWORD_ENV_PREFIX.into(),
    }
}

fn poller(store: &Store, batch: usize) -> Poller {
    let ca = PathBuf::from(servers::var("SEALWATCH_TEST_CA"));
    Poller::new(
        store.clone(),
        Arc::new(Parser::default()),
        config(batch),
        Some(&ca),
    )
    .expect("poller")
}

async fn tenants(store: &Store) {
    for (name, dom) in [
        ("Alpha", "alpha.example"),
        ("Bravo", "bravo.example"),
        ("Charlie", "charlie.example"),
    ] {
        store
            .create_tenant(name, &[DomainName::parse(dom).expect("domain")])
            .await
            .expect("tenant");
    }
}

async fn mailbox(
    store: &Store,
    user: &str,
    tls: TlsMode,
    after: AfterAction,
    tenant: Option<i64>,
) -> Mailbox {
    let (host, port) = match tls {
        TlsMode::Implicit => ("localhost", servers::imaps_port()),
        TlsMode::StartTls => ("localhost", servers::imap_port()),
        TlsMode::Plain => ("127.0.0.1", servers::imap_port()),
    };
    store
        .add_mailbox(NewMailbox {
            tenant_id: tenant,
            name: format!("{user}-{tls}"),
            host: host.into(),
            port,
            tls,
            username: user.into(),
            password_env: servers::PASSWORD_ENV.into(),
            folder: "INBOX".into(),
            after,
        })
        .await
        .expect("mailbox")
}

/// Three tenants' reports, one for a domain nobody owns, one non-report.
fn shared_mailbox_messages() -> Vec<Vec<u8>> {
    vec![
        reports::aggregate_email("google.com", "i-1", "alpha.example", DAY, &[("192.0.2.1", 10)]),
        reports::aggregate_email("yahoo.com", "i-2", "bravo.example", DAY, &[("192.0.2.2", 20), ("192.0.2.3", 1)]),
        reports::tls_email("google.com", "i-3", "charlie.example", "2026-11-02", 50, 0),
        reports::aggregate_email("outlook.com", "i-4", "mx.charlie.example", DAY, &[("198.51.100.1", 3)]),
        reports::aggregate_email("google.com", "i-5", "nobody.example", DAY, &[("192.0.2.9", 1)]),
        b"From: friend@example.org\r\nSubject: lunch?\r\nMessage-ID: <l@example.org>\r\n\r\nAre you free?\r\n".to_vec(),
    ]
}

fn only_ok(summary: &PollSummary) {
    for m in &summary.mailboxes {
        assert_eq!(m.status, "ok", "{}: {:?}", m.name, m.error);
    }
}

async fn a_shared_mailbox_is_routed_by_content_and_a_second_poll_finds_nothing_new(engine: Engine) {
    let db = TestDb::new(engine, "imapshared").await;
    tenants(&db.store).await;
    let user = servers::unique_user("shared");
    servers::seed(&user, "INBOX", &shared_mailbox_messages());
    mailbox(
        &db.store,
        &user,
        TlsMode::Plain,
        AfterAction::Move("Processed".into()),
        None,
    )
    .await;
    let p = poller(&db.store, 4);

    let first = p.poll_all().await.expect("poll");
    only_ok(&first);
    assert_eq!(first.outcome.stored, 4, "{:?}", first.outcome);
    assert_eq!(first.outcome.quarantined.get("unrouted"), Some(&1));
    assert_eq!(first.outcome.quarantined.get("not-a-report"), Some(&1));
    assert_eq!(
        servers::folder_state(&user, "INBOX").0,
        0,
        "every processed message moved"
    );
    assert_eq!(servers::folder_state(&user, "Processed").0, 6);
    let counts = db.store.counts().await.expect("counts");
    assert_eq!(
        (counts.dmarc_reports, counts.tls_reports, counts.quarantine),
        (3, 1, 2)
    );
    assert_eq!(counts.dmarc_messages, 10 + 21 + 3);

    let second = p.poll_all().await.expect("poll");
    only_ok(&second);
    assert_eq!(second.mailboxes[0].fetched, 0);
    assert_eq!(second.outcome, Default::default());
    assert_eq!(db.store.counts().await.expect("counts"), counts);
}

async fn starttls_and_implicit_tls_with_a_private_ca_flag_messages_seen(engine: Engine) {
    let db = TestDb::new(engine, "imaptls").await;
    tenants(&db.store).await;
    for tls in [TlsMode::StartTls, TlsMode::Implicit] {
        let user = servers::unique_user("tls");
        let msgs: Vec<Vec<u8>> = (0..3)
            .map(|i| {
                reports::aggregate_email(
                    "google.com",
                    &format!("{tls}-{i}"),
                    "alpha.example",
                    DAY,
                    &[("192.0.2.1", 1)],
                )
            })
            .collect();
        servers::seed(&user, "INBOX", &msgs);
        mailbox(&db.store, &user, tls, AfterAction::Seen, None).await;
    }
    let p = poller(&db.store, 2);
    let first = p.poll_all().await.expect("poll");
    only_ok(&first);
    assert_eq!(first.outcome.stored, 6);
    for m in &first.mailboxes {
        let user = m.name.rsplit_once('-').map(|(u, _)| u).expect("name");
        assert_eq!(
            servers::folder_state(user, "INBOX"),
            (3, 3),
            "{}: left in place, all \\Seen",
            m.name
        );
    }
    let second = p.poll_all().await.expect("poll");
    only_ok(&second);
    assert_eq!(
        second.outcome.stored + second.outcome.duplicates,
        0,
        "incremental by UID"
    );
}

async fn delete_after_processing_empties_the_folder(engine: Engine) {
    let db = TestDb::new(engine, "imapdelete").await;
    tenants(&db.store).await;
    let user = servers::unique_user("delete");
    servers::seed(&user, "INBOX", &shared_mailbox_messages());
    mailbox(&db.store, &user, TlsMode::Plain, AfterAction::Delete, None).await;
    let summary = poller(&db.store, 100).poll_all().await.expect("poll");
    only_ok(&summary);
    assert_eq!(summary.outcome.stored, 4);
    assert_eq!(servers::folder_state(&user, "INBOX").0, 0);
}

async fn bad_credentials_are_a_clear_mailbox_status_not_a_crash(engine: Engine) {
    let db = TestDb::new(engine, "imapauth").await;
    let user = servers::unique_user("auth");
    let mut m = NewMailbox {
        tenant_id: None,
        name: "wrong-password".into(),
        host: "127.0.0.1".into(),
        port: servers::imap_port(),
        tls: TlsMode::Plain,
        username: user,
        // Set by the test servers, and certainly not the password.
        password_env: servers::WRONG_PASSWORD_ENV.into(),
        folder: "INBOX".into(),
        after: AfterAction::Seen,
    };
    db.store.add_mailbox(m.clone()).await.expect("mailbox");
    m.name = "unreachable".into();
    m.port = 1;
    m.password_env = servers::PASSWORD_ENV.into();
    db.store.add_mailbox(m).await.expect("mailbox");
    let mut cfg = config(10);
    cfg.retries = 1;
    cfg.backoff = Duration::from_millis(10);
    let ca = PathBuf::from(servers::var("SEALWATCH_TEST_CA"));
    let p = Poller::new(
        db.store.clone(),
        Arc::new(Parser::default()),
        cfg,
        Some(&ca),
    )
    .expect("poller");
    let summary = p
        .poll_all()
        .await
        .expect("a failing mailbox does not fail the cycle");
    let by_name = |n: &str| {
        summary
            .mailboxes
            .iter()
            .find(|m| m.name == n)
            .expect("polled")
    };
    assert_eq!(by_name("wrong-password").status, "auth-failed");
    assert_eq!(by_name("unreachable").status, "connect-failed");
    let stored = db.store.list_mailboxes().await.expect("list");
    let wrong = stored
        .iter()
        .find(|m| m.name == "wrong-password")
        .expect("stored");
    assert_eq!(wrong.last_status.as_deref(), Some("auth-failed"));
    assert!(
        wrong
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("refused"),
        "{:?}",
        wrong.last_error
    );
    assert_eq!(wrong.consecutive_failures, 1);
}

async fn a_changed_uidvalidity_resyncs_without_storing_anything_twice(engine: Engine) {
    let db = TestDb::new(engine, "imapuidv").await;
    tenants(&db.store).await;
    let user = servers::unique_user("uidv");
    servers::seed(&user, "Reports", &shared_mailbox_messages());
    let m = db
        .store
        .add_mailbox(NewMailbox {
            tenant_id: None,
            name: format!("{user}-reports"),
            host: "127.0.0.1".into(),
            port: servers::imap_port(),
            tls: TlsMode::Plain,
            username: user.clone(),
            password_env: servers::PASSWORD_ENV.into(),
            folder: "Reports".into(),
            after: AfterAction::Seen,
        })
        .await
        .expect("mailbox");
    let p = poller(&db.store, 3);
    let first = p.poll_all().await.expect("poll");
    assert_eq!(first.outcome.stored, 4);
    let before = db.store.counts().await.expect("counts");
    let old_validity = db
        .store
        .get_mailbox(m.id)
        .await
        .expect("mailbox")
        .uidvalidity;
    // Rebuild the folder on the server: same messages, new UIDVALIDITY, UIDs from 1 again.
    {
        let mut s = servers::session(&user);
        s.rename("Reports", "Reports-old").expect("rename");
        s.create("Reports").expect("create");
        s.select("Reports-old").expect("select");
        s.uid_copy("1:*", "Reports").expect("copy");
        let _ = s.logout();
    }
    let again = p.poll_all().await.expect("poll");
    only_ok(&again);
    let new_validity = db
        .store
        .get_mailbox(m.id)
        .await
        .expect("mailbox")
        .uidvalidity;
    assert_ne!(
        old_validity, new_validity,
        "the server assigned a new UIDVALIDITY"
    );
    assert_eq!(again.mailboxes[0].fetched, 6, "whole folder refetched");
    assert_eq!(again.outcome.stored, 0);
    assert_eq!(again.outcome.duplicates, 6);
    assert_eq!(db.store.counts().await.expect("counts"), before);
}

async fn many_mailboxes_are_polled_concurrently_and_one_bad_one_does_not_stall_the_rest(
    engine: Engine,
) {
    let db = TestDb::new(engine, "imapmany").await;
    tenants(&db.store).await;
    let mut users = Vec::new();
    for i in 0..6 {
        let user = servers::unique_user("many");
        let msgs: Vec<Vec<u8>> = (0..5)
            .map(|j| {
                reports::aggregate_email(
                    "google.com",
                    &format!("many-{i}-{j}"),
                    "bravo.example",
                    DAY,
                    &[("192.0.2.1", 2)],
                )
            })
            .collect();
        servers::seed(&user, "INBOX", &msgs);
        mailbox(
            &db.store,
            &user,
            TlsMode::Plain,
            AfterAction::Move("Done".into()),
            None,
        )
        .await;
        users.push(user);
    }
    db.store
        .add_mailbox(NewMailbox {
            tenant_id: None,
            name: "black-hole".into(),
            host: "127.0.0.1".into(),
            port: 9,
            tls: TlsMode::Plain,
            username: "x".into(),
            password_env: servers::PASSWORD_ENV.into(),
            folder: "INBOX".into(),
            after: AfterAction::Seen,
        })
        .await
        .expect("mailbox");
    let mut cfg = config(2);
    cfg.retries = 1;
    cfg.backoff = Duration::from_millis(50);
    let ca = PathBuf::from(servers::var("SEALWATCH_TEST_CA"));
    let p = Poller::new(
        db.store.clone(),
        Arc::new(Parser::default()),
        cfg,
        Some(&ca),
    )
    .expect("poller");
    let summary = p.poll_all().await.expect("poll");
    assert_eq!(summary.outcome.stored, 30);
    assert_eq!(summary.failed(), 1);
    for u in &users {
        assert_eq!(servers::folder_state(u, "Done").0, 5);
    }
}

async fn a_dovecot_restart_mid_poll_is_survived(engine: Engine) {
    let db = TestDb::new(engine, "imaprestart").await;
    tenants(&db.store).await;
    let user = servers::unique_user("restart");
    let msgs: Vec<Vec<u8>> = (0..150)
        .map(|j| {
            reports::aggregate_email(
                "google.com",
                &format!("rs-{j}"),
                "charlie.example",
                DAY,
                &[("192.0.2.1", 1), ("192.0.2.2", 1)],
            )
        })
        .collect();
    servers::seed(&user, "INBOX", &msgs);
    mailbox(
        &db.store,
        &user,
        TlsMode::Plain,
        AfterAction::Move("Done".into()),
        None,
    )
    .await;
    let p = poller(&db.store, 5);
    let task = tokio::spawn(async move { p.poll_all().await });
    // Wait until the poll is under way, then restart the server under it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while db.store.counts().await.expect("counts").dmarc_reports == 0 {
        assert!(std::time::Instant::now() < deadline, "poll never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let restart = servers::var("SEALWATCH_TEST_RESTART_DOVECOT");
    let status = tokio::process::Command::new(&restart)
        .status()
        .await
        .expect("restart script runs");
    assert!(status.success(), "dovecot restart failed");
    let summary = task.await.expect("join").expect("poll");
    only_ok(&summary);
    let counts = db.store.counts().await.expect("counts");
    assert_eq!(counts.dmarc_reports, 150, "nothing lost");
    assert_eq!(counts.raw_messages, 150, "nothing doubled");
    assert_eq!(counts.dmarc_messages, 300);
    assert_eq!(servers::folder_state(&user, "INBOX").0, 0);
    assert_eq!(servers::folder_state(&user, "Done").0, 150);
}

async fn a_message_over_the_input_limit_is_quarantined_without_loading_it_whole(engine: Engine) {
    let db = TestDb::new(engine, "imaplarge").await;
    tenants(&db.store).await;
    let user = servers::unique_user("large");
    let small = reports::aggregate_email(
        "google.com",
        "l-1",
        "alpha.example",
        DAY,
        &[("192.0.2.1", 1)],
    );
    let mut big = b"From: someone@example.org\r\nSubject: huge\r\n\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'x', 20_000));
    servers::seed(&user, "INBOX", &[small.clone(), big.clone()]);
    mailbox(
        &db.store,
        &user,
        TlsMode::Plain,
        AfterAction::Move("Done".into()),
        None,
    )
    .await;
    let limits = sealwatch_parser::Limits {
        max_input_bytes: (small.len() + 1000) as u64,
        ..sealwatch_parser::Limits::default()
    };
    let ca = PathBuf::from(servers::var("SEALWATCH_TEST_CA"));
    let p = Poller::new(
        db.store.clone(),
        Arc::new(Parser::new(limits.clone())),
        config(10),
        Some(&ca),
    )
    .expect("poller");
    let summary = p.poll_all().await.expect("poll");
    only_ok(&summary);
    assert_eq!(summary.outcome.stored, 1);
    assert_eq!(
        summary.outcome.quarantined.get("too-large"),
        Some(&1),
        "{:?}",
        summary.outcome
    );
    let conn = db.store.connection();
    use sea_orm::EntityTrait as _;
    let raws = sealwatch_store::entities::raw_message::Entity::find()
        .all(conn)
        .await
        .expect("raw");
    let kept = raws
        .iter()
        .find(|r| r.outcome == "quarantined")
        .expect("kept");
    assert_eq!(
        kept.bytes.len() as u64,
        limits.max_input_bytes,
        "only the first bytes are kept"
    );
    assert_eq!(&kept.bytes[..], &big[..kept.bytes.len()]);
    assert_eq!(servers::folder_state(&user, "Done").0, 2, "both processed");
}

on_both_engines!(
    a_shared_mailbox_is_routed_by_content_and_a_second_poll_finds_nothing_new,
    starttls_and_implicit_tls_with_a_private_ca_flag_messages_seen,
    delete_after_processing_empties_the_folder,
    bad_credentials_are_a_clear_mailbox_status_not_a_crash,
    a_changed_uidvalidity_resyncs_without_storing_anything_twice,
    many_mailboxes_are_polled_concurrently_and_one_bad_one_does_not_stall_the_rest,
    a_dovecot_restart_mid_poll_is_survived,
    a_message_over_the_input_limit_is_quarantined_without_loading_it_whole,
);
