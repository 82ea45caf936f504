//! What the store hands the analysis, on SQLite and PostgreSQL: DMARC records summed per
//! report and source (aligned counts and dispositions), every report seen exactly once —
//! also one without records and one with two policies —, TLS policies and failure details,
//! only the asked domain's reports and only those overlapping the range; and the batch
//! lookup of analysis targets leaves out removed domains and deactivated tenants.

#[path = "../common/db.rs"]
mod db;

use std::path::PathBuf;
use std::sync::Arc;

use db::{Engine, TestDb};
use sealwatch_ingest::Router;
use sealwatch_model::DomainName;
use sealwatch_parser::Parser;
use sealwatch_store::{Scope, Store, TenantPatch};

const DAY: i64 = 1_793_577_600; // 2026-11-02T00:00:00Z

/// One `<record>`: source, count, DKIM and SPF (policy evaluated), disposition, header_from.
type Rec<'a> = (&'a str, u64, &'a str, &'a str, &'a str, &'a str);

fn dmarc_xml(org: &str, id: &str, domain: &str, begin: i64, records: &[Rec<'_>]) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\"?>\n<feedback><report_metadata><org_name>{org}</org_name>\
<email>dmarc@{org}</email><report_id>{id}</report_id><date_range><begin>{begin}</begin>\
<end>{}</end></date_range></report_metadata><policy_published><domain>{domain}</domain>\
<p>none</p><pct>100</pct></policy_published>\n",
        begin + 86_399
    );
    for (ip, count, dkim, spf, disposition, from) in records {
        xml.push_str(&format!(
            "<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated>\
<disposition>{disposition}</disposition><dkim>{dkim}</dkim><spf>{spf}</spf></policy_evaluated>\
</row><identifiers><header_from>{from}</header_from></identifiers><auth_results><spf>\
<domain>{from}</domain><result>pass</result></spf></auth_results></record>\n"
        ));
    }
    xml.push_str("</feedback>\n");
    xml
}

fn tls_json(org: &str, id: &str, domain: &str, day: &str, policies: serde_json::Value) -> String {
    serde_json::json!({
        "organization-name": org,
        "date-range": {"start-datetime": format!("{day}T00:00:00Z"),
                       "end-datetime": format!("{day}T23:59:59Z")},
        "contact-info": format!("tls@{org}"),
        "report-id": id,
        "policies": policies,
    })
    .to_string()
    .replace("DOMAIN", domain)
}

fn sts_policy(ok: u64, failed: u64) -> serde_json::Value {
    serde_json::json!({
        "policy": {"policy-type": "sts",
                   "policy-string": ["version: STSv1", "mode: enforce", "mx: mx.DOMAIN"],
                   "policy-domain": "DOMAIN", "mx-host": ["mx.DOMAIN"]},
        "summary": {"total-successful-session-count": ok, "total-failure-session-count": failed},
        "failure-details": if failed > 0 {
            serde_json::json!([{"result-type": "certificate-expired", "sending-mta-ip": "198.51.100.9",
                                "receiving-mx-hostname": "mx.DOMAIN", "failed-session-count": failed}])
        } else {
            serde_json::json!([])
        }
    })
}

fn no_policy(ok: u64) -> serde_json::Value {
    serde_json::json!({
        "policy": {"policy-type": "no-policy-found", "policy-domain": "DOMAIN"},
        "summary": {"total-successful-session-count": ok, "total-failure-session-count": 0}
    })
}

async fn import(store: &Store, files: &[(&str, String)]) {
    let dir = std::env::temp_dir().join(format!(
        "sealwatch-analysis-store-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|(name, body)| {
            let p = dir.join(name);
            std::fs::write(&p, body).expect("write");
            p
        })
        .collect();
    let parser = Arc::new(Parser::default());
    let router = Arc::new(Router::new(store.routing_entries().await.expect("routes")));
    let outcome = sealwatch_ingest::import::import(
        store,
        parser,
        router,
        sealwatch_ingest::import::ImportRequest {
            paths,
            only_tenant: None,
            batch_size: 10,
            received_at: Some(received_at()),
        },
        |_| {},
        |e| panic!("unexpected read error: {e}"),
    )
    .await
    .expect("import");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(outcome.quarantined_total(), 0, "{outcome:?}");
}

async fn domain_data_packs_records_and_lists_each_report_once(engine: Engine) {
    let db = TestDb::new(engine, "analysis-store").await;
    let store = &db.store;
    let d = |n: &str| DomainName::parse(n).expect("domain");
    store
        .create_tenant("acme", &[d("acme.example")])
        .await
        .expect("tenant");
    store
        .create_tenant("other", &[d("other.example")])
        .await
        .expect("tenant");
    let a = "acme.example";
    let files = [
        (
            "google.xml",
            dmarc_xml(
                "google.com",
                "g-1",
                a,
                DAY,
                &[
                    ("192.0.2.1", 10, "pass", "fail", "none", a),
                    ("192.0.2.1", 5, "fail", "pass", "quarantine", a),
                    ("192.0.2.1", 2, "pass", "pass", "none", "news.acme.example"),
                    ("192.0.2.2", 3, "fail", "fail", "reject", a),
                ],
            ),
        ),
        ("yahoo-empty.xml", dmarc_xml("Yahoo", "y-1", a, DAY, &[])),
        // Before the range asked for below.
        (
            "old.xml",
            dmarc_xml(
                "google.com",
                "g-0",
                a,
                DAY - 30 * 86_400,
                &[("192.0.2.1", 7, "pass", "pass", "none", a)],
            ),
        ),
        // Another tenant's domain, same day and reporter.
        (
            "other.xml",
            dmarc_xml(
                "google.com",
                "g-2",
                "other.example",
                DAY,
                &[("203.0.113.5", 99, "pass", "pass", "none", "other.example")],
            ),
        ),
        (
            "google-tls.json",
            tls_json(
                "Google Inc.",
                "t-1",
                a,
                "2026-11-02",
                serde_json::json!([sts_policy(90, 4), no_policy(6)]),
            ),
        ),
        (
            "ms-tls.json",
            tls_json(
                "Microsoft Corporation",
                "t-2",
                a,
                "2026-11-02",
                serde_json::json!([sts_policy(40, 0)]),
            ),
        ),
    ];
    import(store, &files).await;
    let target = store
        .analysis_targets(Some(a))
        .await
        .expect("targets")
        .pop()
        .expect("acme");
    let data = store
        .domain_data(target.domain_id, DAY - 7 * 86_400, DAY + 86_400)
        .await
        .expect("data");

    // DMARC: one row per (report, source, header_from), counts summed per outcome.
    let mut dmarc = data.dmarc.clone();
    dmarc.sort_by(|x, y| (&x.source_ip, &x.header_from).cmp(&(&y.source_ip, &y.header_from)));
    let summary: Vec<_> = dmarc
        .iter()
        .map(|r| {
            (
                r.reporter.as_str(),
                r.source_ip.as_str(),
                r.header_from.as_deref(),
                [
                    r.messages,
                    r.dkim_aligned,
                    r.spf_aligned,
                    r.disposition_none,
                    r.disposition_quarantine,
                    r.disposition_reject,
                ],
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("google.com", "192.0.2.1", Some(a), [15, 10, 5, 10, 5, 0]),
            (
                "google.com",
                "192.0.2.1",
                Some("news.acme.example"),
                [2, 2, 2, 2, 0, 0]
            ),
            ("google.com", "192.0.2.2", Some(a), [3, 0, 0, 0, 0, 3]),
        ]
    );
    assert!(
        dmarc
            .iter()
            .all(|r| r.begin == DAY && r.end == DAY + 86_399)
    );

    // Each report in the range once: both DMARC reports (one without records) and both
    // TLS reports (one with two policies).
    let mut seen: Vec<(&str, &str, i64)> = data
        .reports
        .iter()
        .map(|r| (r.kind, r.reporter.as_str(), r.begin))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("dmarc", "Yahoo", DAY),
            ("dmarc", "google.com", DAY),
            ("tls", "Google Inc.", DAY),
            ("tls", "Microsoft Corporation", DAY),
        ]
    );
    // Each with the time its message reached us (here: as the import said).
    assert!(
        data.reports
            .iter()
            .all(|r| r.received == Some(received_at().timestamp())),
        "{:?}",
        data.reports
    );

    // TLS: every policy with its counts and MX hosts; the failure detail with its report.
    let mut tls: Vec<_> = data
        .tls
        .iter()
        .map(|p| {
            (
                p.reporter.as_str(),
                p.policy_type.as_str(),
                p.mx_hosts.clone(),
                p.successful,
                p.failed,
            )
        })
        .collect();
    tls.sort();
    let mx = vec!["mx.acme.example".to_owned()];
    assert_eq!(
        tls,
        [
            ("Google Inc.", "no-policy-found", Vec::new(), 6, 0),
            ("Google Inc.", "sts", mx.clone(), 90, 4),
            ("Microsoft Corporation", "sts", mx, 40, 0),
        ]
    );
    assert_eq!(data.tls_failures.len(), 1, "{:?}", data.tls_failures);
    let f = &data.tls_failures[0];
    assert_eq!(
        (
            f.reporter.as_str(),
            f.result_type.as_str(),
            f.failed,
            f.sending_mta_ip.as_deref()
        ),
        (
            "Google Inc.",
            "certificate-expired",
            4,
            Some("198.51.100.9")
        )
    );

    // The older report shows up when the range covers it.
    let wide = store
        .domain_data(target.domain_id, DAY - 60 * 86_400, DAY + 86_400)
        .await
        .expect("data");
    assert_eq!(wide.reports.len(), 5);
    assert_eq!(wide.dmarc.len(), 4);
}

async fn targets_by_id_leave_out_removed_and_inactive(engine: Engine) {
    let db = TestDb::new(engine, "analysis-targets").await;
    let store = &db.store;
    let d = |n: &str| DomainName::parse(n).expect("domain");
    let acme = store
        .create_tenant("acme", &[d("b.example"), d("a.example")])
        .await
        .expect("tenant");
    let gone = store
        .create_tenant("gone", &[d("c.example")])
        .await
        .expect("tenant");
    let all = store.analysis_targets(None).await.expect("targets");
    let ids: Vec<i64> = all.iter().map(|t| t.domain_id).collect();
    assert_eq!(all.len(), 3);
    store
        .tenant_update(
            Scope::All,
            gone.id,
            TenantPatch {
                active: Some(false),
                ..TenantPatch::default()
            },
        )
        .await
        .expect("deactivate");
    let mut asked = ids.clone();
    asked.push(999_999); // never existed
    let found = store.analysis_targets_by_id(&asked).await.expect("by id");
    let names: Vec<(&str, &str, i64)> = found
        .iter()
        .map(|t| (t.domain.as_str(), t.tenant.as_str(), t.tenant_id))
        .collect();
    assert_eq!(
        names,
        [
            ("a.example", "acme", acme.id),
            ("b.example", "acme", acme.id)
        ]
    );
    assert!(
        store
            .analysis_targets_by_id(&[])
            .await
            .expect("none")
            .is_empty()
    );
}

/// After a bulk load the planner's statistics are refreshed: on PostgreSQL the report tables
/// show a fresh `ANALYZE`; on SQLite `PRAGMA optimize` runs without error.
async fn statistics_are_refreshed_on_request(engine: Engine) {
    use sea_orm::ConnectionTrait as _;
    let db = TestDb::new(engine, "refresh-statistics").await;
    db.store
        .refresh_statistics()
        .await
        .expect("refresh statistics");
    if engine == Engine::Postgres {
        let row = db
            .store
            .connection()
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT count(*) AS n FROM pg_stat_user_tables WHERE relname IN ('dmarc_reports', 'dmarc_records', 'tls_reports') AND last_analyze IS NOT NULL",
            ))
            .await
            .expect("query")
            .expect("a row");
        let n: i64 = row.try_get("", "n").expect("count");
        assert_eq!(n, 3, "ANALYZE ran on the report tables");
    }
}

/// The receipt time the import records.
fn received_at() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-06-02T03:00:00Z")
        .expect("time")
        .to_utc()
}

on_both_engines!(
    domain_data_packs_records_and_lists_each_report_once,
    targets_by_id_leave_out_removed_and_inactive,
    statistics_are_refreshed_on_request,
);
