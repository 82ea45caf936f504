//! Import into a real database, on SQLite and on PostgreSQL: routing to tenants, dedupe,
//! quarantine with raw bytes kept, mbox and Maildir input.

#[path = "../common/db.rs"]
mod db;
#[path = "../common/reports.rs"]
mod reports;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use db::{Engine, TestDb};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use sealwatch_ingest::Router;
use sealwatch_model::DomainName;
use sealwatch_parser::Parser;
use sealwatch_store::entities::{dmarc_report, quarantine, raw_message, tls_report};
use sealwatch_store::{MessageSource, NewMessage, Store, WriteOutcome};

const DAY: i64 = 1_793_577_600; // 2026-11-02T00:00:00Z

struct Dir(PathBuf);

impl Dir {
    fn new(label: &str) -> Dir {
        let p = std::env::temp_dir().join(format!(
            "sealwatch-ingest-{label}-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create dir");
        Dir(p)
    }
    fn write(&self, rel: &str, bytes: &[u8]) {
        let p = self.0.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, bytes).expect("write");
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn domains(list: &[&str]) -> Vec<DomainName> {
    list.iter()
        .map(|d| DomainName::parse(d).expect("domain"))
        .collect()
}

async fn import(store: &Store, paths: &[&Path], only: Option<i64>) -> WriteOutcome {
    let parser = Arc::new(Parser::default());
    let router = Arc::new(Router::new(store.routing_entries().await.expect("routes")));
    sealwatch_ingest::import::import(
        store,
        parser,
        router,
        sealwatch_ingest::import::ImportRequest {
            paths: paths.iter().map(|p| p.to_path_buf()).collect(),
            only_tenant: only,
            batch_size: 7,
            received_at: None,
        },
        |_| {},
        |e| panic!("unexpected read error: {e}"),
    )
    .await
    .expect("import")
}

async fn three_tenants(store: &Store) -> [i64; 3] {
    let a = store
        .create_tenant("Alpha", &domains(&["alpha.example"]))
        .await
        .expect("tenant a");
    let b = store
        .create_tenant("Bravo", &domains(&["bravo.example", "bravo.test"]))
        .await
        .expect("tenant b");
    let c = store
        .create_tenant("Charlie", &domains(&["charlie.example"]))
        .await
        .expect("tenant c");
    [a.id, b.id, c.id]
}

async fn a_shared_mailbox_export_routes_each_report_and_reimport_stores_nothing_new(
    engine: Engine,
) {
    let db = TestDb::new(engine, "route").await;
    let [a, b, c] = three_tenants(&db.store).await;
    let dir = Dir::new("route");
    dir.write(
        "a1.eml",
        &reports::aggregate_email(
            "google.com",
            "g-1",
            "alpha.example",
            DAY,
            &[("192.0.2.1", 10), ("192.0.2.2", 5)],
        ),
    );
    // The same message exported twice (two rua addresses delivering identical bytes).
    dir.write(
        "a1-copy.eml",
        &reports::aggregate_email(
            "google.com",
            "g-1",
            "alpha.example",
            DAY,
            &[("192.0.2.1", 10), ("192.0.2.2", 5)],
        ),
    );
    dir.write(
        "b1.eml",
        &reports::aggregate_email(
            "yahoo.com",
            "y-1",
            "mail.bravo.example",
            DAY,
            &[("192.0.2.3", 7)],
        ),
    );
    dir.write(
        "c1.xml.gz",
        &reports::gzip(
            reports::aggregate_xml(
                "outlook.com",
                "o-1",
                "charlie.example",
                DAY,
                DAY + 86_400,
                &[("2001:db8::1", 3)],
            )
            .as_bytes(),
        ),
    );
    dir.write(
        "c-tls.eml",
        &reports::tls_email("google.com", "t-1", "charlie.example", "2026-11-02", 90, 10),
    );
    dir.write(
        "nobody.eml",
        &reports::aggregate_email(
            "google.com",
            "g-9",
            "unknown.example",
            DAY,
            &[("192.0.2.9", 1)],
        ),
    );
    dir.write("notes.txt", b"not a report at all");
    // An mbox with two reports and a Maildir with one.
    let mut mbox = Vec::new();
    for (id, dom) in [("m-1", "alpha.example"), ("m-2", "bravo.test")] {
        mbox.extend_from_slice(b"From reports@example Mon Nov  2 10:00:00 2026\n");
        mbox.extend_from_slice(&reports::aggregate_email(
            "fastmail.com",
            id,
            dom,
            DAY,
            &[("192.0.2.4", 2)],
        ));
        mbox.extend_from_slice(b"\n");
    }
    dir.write("archive.mbox", &mbox);
    dir.write(
        "Maildir/cur/1.eml",
        &reports::aggregate_email(
            "gmx.net",
            "x-1",
            "charlie.example",
            DAY,
            &[("192.0.2.5", 4)],
        ),
    );
    dir.write("Maildir/new/.hidden", b"ignored");
    std::fs::create_dir_all(dir.0.join("Maildir/tmp")).expect("tmp");
    dir.write(
        "Maildir/tmp/partial",
        b"half a message that is still being delivered",
    );

    let first = import(&db.store, &[&dir.0], None).await;
    assert_eq!(first.stored, 7, "{first:?}");
    assert_eq!(first.duplicates, 1, "the identical copy");
    assert_eq!(first.quarantined.get("unrouted"), Some(&1));
    assert_eq!(first.quarantined.get("not-a-report"), Some(&1));
    assert_eq!(first.quarantined_total(), 2);

    let conn = db.store.connection();
    let stored = dmarc_report::Entity::find()
        .all(conn)
        .await
        .expect("reports");
    let owner = |id: &str| {
        stored
            .iter()
            .find(|r| r.report_id == id)
            .map(|r| r.tenant_id)
    };
    assert_eq!(owner("g-1"), Some(a));
    assert_eq!(
        owner("y-1"),
        Some(b),
        "mail.bravo.example rolls up to bravo.example"
    );
    assert_eq!(owner("o-1"), Some(c));
    assert_eq!(owner("m-1"), Some(a));
    assert_eq!(owner("m-2"), Some(b));
    assert_eq!(owner("x-1"), Some(c));
    assert_eq!(owner("g-9"), None, "never attached to a guess");
    let tls = tls_report::Entity::find().all(conn).await.expect("tls");
    assert_eq!(tls.len(), 1);
    assert_eq!(
        (
            tls[0].tenant_id,
            tls[0].successful_sessions,
            tls[0].failed_sessions
        ),
        (c, 90, 10)
    );
    let counts_before = db.store.counts().await.expect("counts");
    assert_eq!(counts_before.dmarc_messages, 10 + 5 + 7 + 3 + 2 + 2 + 4);

    let again = import(&db.store, &[&dir.0], None).await;
    assert_eq!(again.stored, 0);
    assert_eq!(again.quarantined_total(), 0);
    assert_eq!(again.duplicates, 10);
    assert_eq!(db.store.counts().await.expect("counts"), counts_before);
}

async fn unparsable_input_is_quarantined_with_its_raw_bytes(engine: Engine) {
    let db = TestDb::new(engine, "quarantine").await;
    three_tenants(&db.store).await;
    let dir = Dir::new("quarantine");
    let broken = reports::report_email(
        "x@bad.example",
        "Report Domain: alpha.example",
        "bad-1@bad.example",
        "r.xml.gz",
        "application/gzip",
        b"\x1f\x8b\x08\x00garbage",
    );
    dir.write("broken.eml", &broken);
    let out = import(&db.store, &[&dir.0], None).await;
    assert_eq!(out.stored, 0);
    assert_eq!(
        out.quarantined.get("corrupt-compression"),
        Some(&1),
        "{out:?}"
    );
    let conn = db.store.connection();
    let q = quarantine::Entity::find()
        .all(conn)
        .await
        .expect("quarantine");
    assert_eq!(q.len(), 1);
    assert!(q[0].detail.contains("gzip"), "{}", q[0].detail);
    let raw = raw_message::Entity::find_by_id(q[0].raw_message_id)
        .one(conn)
        .await
        .expect("raw")
        .expect("kept");
    assert_eq!(raw.bytes, broken, "raw bytes kept byte for byte");
    assert_eq!(raw.outcome, "quarantined");
}

async fn a_reused_report_id_for_another_day_is_a_different_report(engine: Engine) {
    let db = TestDb::new(engine, "reuse").await;
    three_tenants(&db.store).await;
    let dir = Dir::new("reuse");
    for (i, day) in [DAY, DAY + 86_400, DAY + 2 * 86_400].iter().enumerate() {
        let xml = reports::aggregate_xml(
            "mimecast.org",
            "same-id",
            "alpha.example",
            *day,
            day + 86_399,
            &[("192.0.2.1", 1 + i as u64)],
        );
        dir.write(&format!("r{i}.xml"), xml.as_bytes());
    }
    let out = import(&db.store, &[&dir.0], None).await;
    assert_eq!(out.stored, 3);
    assert_eq!(out.duplicates, 0);
    let conn = db.store.connection();
    let n = dmarc_report::Entity::find()
        .filter(dmarc_report::Column::ReportId.eq("same-id"))
        .all(conn)
        .await
        .expect("reports")
        .len();
    assert_eq!(n, 3);
}

async fn the_same_report_twice_counts_once_and_a_conflicting_copy_is_quarantined(engine: Engine) {
    let db = TestDb::new(engine, "dupes").await;
    three_tenants(&db.store).await;
    let dir = Dir::new("dupes");
    let xml = reports::aggregate_xml(
        "google.com",
        "dup-1",
        "alpha.example",
        DAY,
        DAY + 86_399,
        &[("192.0.2.1", 10)],
    );
    // The same report through two rua addresses: different emails, same report.
    dir.write(
        "via-rua1.eml",
        &reports::report_email(
            "a@google.com",
            "r",
            "m1@google.com",
            "r.xml.gz",
            "application/gzip",
            &reports::gzip(xml.as_bytes()),
        ),
    );
    dir.write(
        "via-rua2.eml",
        &reports::report_email(
            "a@google.com",
            "r",
            "m2@google.com",
            "r.xml",
            "text/xml",
            xml.as_bytes(),
        ),
    );
    // Same key, different content.
    let changed = reports::aggregate_xml(
        "google.com",
        "dup-1",
        "alpha.example",
        DAY,
        DAY + 86_399,
        &[("192.0.2.1", 99)],
    );
    dir.write("zz-changed.xml", changed.as_bytes());
    let out = import(&db.store, &[&dir.0], None).await;
    assert_eq!(out.stored, 1, "{out:?}");
    assert_eq!(out.duplicates, 1);
    assert_eq!(out.quarantined.get("conflicting-duplicate"), Some(&1));
    assert_eq!(
        db.store.counts().await.expect("counts").dmarc_messages,
        10,
        "not double counted"
    );
}

async fn a_per_tenant_import_never_routes_to_another_tenant(engine: Engine) {
    let db = TestDb::new(engine, "pertenant").await;
    let [a, _, _] = three_tenants(&db.store).await;
    let dir = Dir::new("pertenant");
    dir.write(
        "mine.xml",
        reports::aggregate_xml(
            "google.com",
            "p-1",
            "alpha.example",
            DAY,
            DAY + 86_399,
            &[("192.0.2.1", 1)],
        )
        .as_bytes(),
    );
    dir.write(
        "theirs.xml",
        reports::aggregate_xml(
            "google.com",
            "p-2",
            "bravo.example",
            DAY,
            DAY + 86_399,
            &[("192.0.2.1", 1)],
        )
        .as_bytes(),
    );
    let out = import(&db.store, &[&dir.0], Some(a)).await;
    assert_eq!(out.stored, 1);
    assert_eq!(out.quarantined.get("unrouted"), Some(&1));
    let conn = db.store.connection();
    let q = quarantine::Entity::find()
        .all(conn)
        .await
        .expect("quarantine");
    assert!(
        q[0].detail
            .contains("not a domain of this mailbox's tenant"),
        "{}",
        q[0].detail
    );
    assert_eq!(q[0].tenant_id, Some(a));
}

/// One message prepared as it would arrive through `source`.
fn prepared(store_router: &Router, bytes: &[u8], name: &str, source: MessageSource) -> NewMessage {
    sealwatch_ingest::prepare(
        &Parser::default(),
        store_router,
        bytes.to_vec(),
        Some(name),
        source,
        None,
    )
    .message
}

fn posted() -> MessageSource {
    MessageSource::Http {
        origin: "203.0.113.66".into(),
    }
}

fn imported(name: &str) -> MessageSource {
    MessageSource::File {
        origin: name.into(),
    }
}

/// A copy posted over HTTPS never displaces, and is displaced by, a copy from a mailbox or
/// an import, whatever the order of arrival (in separate batches and within one batch);
/// the other copy stays visible as `conflicting-duplicate`, and only one is counted.
async fn a_posted_copy_never_outranks_a_delivered_one(engine: Engine) {
    let db = TestDb::new(engine, "precedence").await;
    three_tenants(&db.store).await;
    let router = Router::new(db.store.routing_entries().await.expect("routes"));
    let genuine = reports::aggregate_xml(
        "google.com",
        "prec-1",
        "alpha.example",
        DAY,
        DAY + 86_399,
        &[("192.0.2.1", 7), ("198.51.100.9", 3)],
    );
    let forged = reports::aggregate_xml(
        "google.com",
        "prec-1",
        "alpha.example",
        DAY,
        DAY + 86_399,
        &[("192.0.2.1", 7_000)],
    );

    // Forged first (posted), genuine second (imported): the genuine one is counted.
    let out = db
        .store
        .write_messages(vec![prepared(
            &router,
            forged.as_bytes(),
            "f.xml",
            posted(),
        )])
        .await
        .expect("write forged");
    assert_eq!(out.stored, 1);
    assert_eq!(
        db.store.counts().await.expect("counts").dmarc_messages,
        7_000
    );
    let out = db
        .store
        .write_messages(vec![prepared(
            &router,
            genuine.as_bytes(),
            "g.xml",
            imported("g.xml"),
        )])
        .await
        .expect("write genuine");
    assert_eq!(out.stored, 1, "{out:?}");
    assert_eq!(
        out.quarantined.get("conflicting-duplicate"),
        Some(&1),
        "{out:?}"
    );
    assert!(
        out.domains.len() == 1,
        "the domain is analysed again: {out:?}"
    );
    let counts = db.store.counts().await.expect("counts");
    assert_eq!(counts.dmarc_reports, 1);
    assert_eq!(
        counts.dmarc_records, 2,
        "the forged records went with their report"
    );
    assert_eq!(counts.dmarc_messages, 10, "the genuine copy is counted");
    let conn = db.store.connection();
    let q = quarantine::Entity::find()
        .all(conn)
        .await
        .expect("quarantine");
    assert_eq!(q.len(), 1);
    let raw = raw_message::Entity::find_by_id(q[0].raw_message_id)
        .one(conn)
        .await
        .expect("raw")
        .expect("the forged copy is kept");
    assert_eq!(raw.source, "http");
    assert_eq!(raw.outcome, "quarantined");
    assert_eq!(raw.bytes, forged.as_bytes());
    assert!(
        q[0].detail.contains("is counted instead of this one")
            && q[0].detail.contains("This copy, posted over HTTPS"),
        "{}",
        q[0].detail
    );

    // A later post of yet another version, and a re-post of the forged one, change nothing.
    let forged2 = forged.replace("7000", "7001");
    let out = db
        .store
        .write_messages(vec![
            prepared(&router, forged2.as_bytes(), "f2.xml", posted()),
            prepared(&router, forged.as_bytes(), "f.xml", posted()),
        ])
        .await
        .expect("write forged again");
    assert_eq!(out.stored, 0, "{out:?}");
    assert_eq!(db.store.counts().await.expect("counts").dmarc_messages, 10);
    let q = quarantine::Entity::find()
        .filter(quarantine::Column::Reason.eq("conflicting-duplicate"))
        .all(conn)
        .await
        .expect("quarantine");
    assert_eq!(
        q.len(),
        2,
        "the new version is kept for review; the re-post is a known message"
    );
    assert!(
        q.iter().any(|e| e.detail.contains("is counted: report")
            && e.detail.contains("from a report mailbox or an import")),
        "{q:?}"
    );

    // Within one batch: the posted copy comes first, the delivered one still wins.
    let genuine_b = genuine.replace("prec-1", "prec-2");
    let forged_b = forged.replace("prec-1", "prec-2");
    let out = db
        .store
        .write_messages(vec![
            prepared(&router, forged_b.as_bytes(), "fb.xml", posted()),
            prepared(&router, genuine_b.as_bytes(), "gb.xml", imported("gb.xml")),
        ])
        .await
        .expect("write one batch");
    assert_eq!(out.stored, 1, "{out:?}");
    assert_eq!(out.quarantined.get("conflicting-duplicate"), Some(&1));
    assert_eq!(db.store.counts().await.expect("counts").dmarc_messages, 20);

    // Two delivered copies that disagree: the first stays counted.
    let other = genuine.replace("prec-1", "prec-3");
    let other_changed = other.replace(">3<", ">4<");
    assert_ne!(other, other_changed);
    for (bytes, name) in [(&other, "o1.xml"), (&other_changed, "o2.xml")] {
        db.store
            .write_messages(vec![prepared(
                &router,
                bytes.as_bytes(),
                name,
                imported(name),
            )])
            .await
            .expect("write delivered");
    }
    assert_eq!(db.store.counts().await.expect("counts").dmarc_messages, 30);
}

/// A report cut short in transit is quarantined whole, never counted as the records before
/// the cut; the complete copy that arrives later is stored as the first copy of its report,
/// not as a conflicting duplicate of the damaged one.
async fn a_truncated_report_is_quarantined_and_its_complete_copy_stored_later(engine: Engine) {
    let db = TestDb::new(engine, "truncated").await;
    three_tenants(&db.store).await;
    let ips: Vec<String> = (0..50).map(|i| format!("192.0.2.{i}")).collect();
    let records: Vec<(&str, u64)> = ips
        .iter()
        .zip(1u64..)
        .map(|(ip, count)| (ip.as_str(), count))
        .collect();
    let messages: i64 = (1..=50).sum();
    let gz = reports::aggregate_gzip("google.com", "cut-1", "alpha.example", DAY, &records);
    let cut_email = reports::aggregate_email_carrying(
        "google.com",
        "cut-1",
        "alpha.example",
        DAY,
        &gz[..gz.len() / 2],
    );
    let whole_email =
        reports::aggregate_email_carrying("google.com", "cut-1", "alpha.example", DAY, &gz);
    assert_eq!(
        whole_email,
        reports::aggregate_email("google.com", "cut-1", "alpha.example", DAY, &records)
    );

    // The damaged copy first: quarantined with its raw bytes, nothing counted.
    let first = Dir::new("truncated-first");
    first.write("cut.eml", &cut_email);
    let out = import(&db.store, &[&first.0], None).await;
    assert_eq!(out.stored, 0, "{out:?}");
    assert_eq!(out.quarantined.get("truncated"), Some(&1), "{out:?}");
    assert_eq!(out.quarantined_total(), 1, "{out:?}");
    let conn = db.store.connection();
    let q = quarantine::Entity::find()
        .all(conn)
        .await
        .expect("quarantine");
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].reason, "truncated");
    assert!(
        q[0].detail.contains("the gzip stream ends early after")
            && q[0].detail.contains("the report is incomplete"),
        "{}",
        q[0].detail
    );
    let raw = raw_message::Entity::find_by_id(q[0].raw_message_id)
        .one(conn)
        .await
        .expect("raw")
        .expect("kept");
    assert_eq!(raw.bytes, cut_email, "raw bytes kept byte for byte");
    assert_eq!(raw.outcome, "quarantined");
    let counts = db.store.counts().await.expect("counts");
    assert_eq!(
        (
            counts.dmarc_reports,
            counts.dmarc_records,
            counts.dmarc_messages
        ),
        (0, 0, 0)
    );

    // Retrying the same bytes changes nothing: they are still cut short.
    let retried = sealwatch_ingest::retry_quarantined(
        &db.store,
        &Parser::default(),
        sealwatch_store::Scope::All,
        q[0].id,
    )
    .await
    .expect("retry");
    assert_eq!(retried.outcome.stored, 0, "{retried:?}");
    assert_eq!(
        retried.outcome.quarantined.get("truncated"),
        Some(&1),
        "{retried:?}"
    );

    // The complete copy later: stored as the report, with all its records.
    let later = Dir::new("truncated-later");
    later.write("whole.eml", &whole_email);
    let out = import(&db.store, &[&later.0], None).await;
    assert_eq!(out.stored, 1, "{out:?}");
    assert_eq!(out.duplicates, 0, "{out:?}");
    assert_eq!(out.quarantined_total(), 0, "{out:?}");
    let stored = dmarc_report::Entity::find()
        .filter(dmarc_report::Column::ReportId.eq("cut-1"))
        .all(conn)
        .await
        .expect("reports");
    assert_eq!(stored.len(), 1);
    let counts = db.store.counts().await.expect("counts");
    assert_eq!(counts.dmarc_reports, 1);
    assert_eq!(counts.dmarc_records, 50);
    assert_eq!(counts.dmarc_messages, messages);
    let q = quarantine::Entity::find()
        .all(conn)
        .await
        .expect("quarantine");
    assert!(
        q.iter().all(|e| e.reason == "truncated"),
        "no conflicting duplicate: {q:?}"
    );

    // The counts are those of the complete report alone.
    let alone = TestDb::new(engine, "truncatedalone").await;
    three_tenants(&alone.store).await;
    import(&alone.store, &[&later.0], None).await;
    let only_whole = alone.store.counts().await.expect("counts");
    assert_eq!(
        (
            counts.dmarc_reports,
            counts.dmarc_records,
            counts.dmarc_messages,
            counts.tls_reports
        ),
        (
            only_whole.dmarc_reports,
            only_whole.dmarc_records,
            only_whole.dmarc_messages,
            only_whole.tls_reports
        )
    );
}

on_both_engines!(
    a_shared_mailbox_export_routes_each_report_and_reimport_stores_nothing_new,
    unparsable_input_is_quarantined_with_its_raw_bytes,
    a_reused_report_id_for_another_day_is_a_different_report,
    the_same_report_twice_counts_once_and_a_conflicting_copy_is_quarantined,
    a_per_tenant_import_never_routes_to_another_tenant,
    a_posted_copy_never_outranks_a_delivered_one,
    a_truncated_report_is_quarantined_and_its_complete_copy_stored_later,
);
