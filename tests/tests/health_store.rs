//! The health-check side of the store on both engines: the MTA-STS anomaly's upsert and
//! resolution follow the review status, concurrent upserts end as one row, and "the run
//! before" finds last week's run.

#[path = "../common/db.rs"]
mod db;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use sealwatch_model::DomainName;
use sealwatch_store::entities::anomaly_review;
use sealwatch_store::{HealthAnomaly, HealthAnomalyAction, StoredAnomaly};
use serde_json::json;

const FP: &str = "health:mta-sts:example.test";

fn record(severity: &str, summary: &str) -> HealthAnomaly {
    HealthAnomaly {
        kind: "mta-sts-policy-broken".into(),
        fingerprint: FP.into(),
        severity: severity.into(),
        summary: summary.into(),
        evidence: json!({"findings": [{"check": "mta-sts-certificate-invalid"}]}),
        explanation: json!({
            "what_happened": "the certificate expired",
            "what_it_means": "senders cannot read the policy",
            "what_to_do": "renew it",
            "who_fixes_it": "the web server's operator",
        }),
    }
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("time")
}

async fn setup(engine: db::Engine, label: &str) -> (db::TestDb, i64) {
    let db = db::TestDb::new(engine, label).await;
    let tenant = db
        .store
        .create_tenant(
            "acme",
            &[DomainName::parse("example.test").expect("domain")],
        )
        .await
        .expect("tenant");
    let domain_id = db
        .store
        .analysis_targets(Some("example.test"))
        .await
        .expect("targets")[0]
        .domain_id;
    assert_eq!(
        db.store
            .health_target(domain_id)
            .await
            .expect("target")
            .tenant_id,
        tenant.id
    );
    (db, domain_id)
}

async fn the_anomaly(db: &db::TestDb, domain_id: i64) -> StoredAnomaly {
    let all = db
        .store
        .domain_anomalies(domain_id)
        .await
        .expect("anomalies");
    assert_eq!(all.len(), 1, "{all:?}");
    all.into_iter().next().expect("one")
}

async fn reviews(db: &db::TestDb, id: i64) -> Vec<anomaly_review::Model> {
    anomaly_review::Entity::find()
        .filter(anomaly_review::Column::AnomalyId.eq(id))
        .order_by_asc(anomaly_review::Column::Id)
        .all(db.store.connection())
        .await
        .expect("reviews")
}

async fn the_health_anomaly_follows_its_review_status(engine: db::Engine) {
    let (db, domain_id) = setup(engine, "health_anomaly").await;
    let s = &db.store;
    let now = at("2026-11-30T06:00:00Z");

    // nothing to resolve yet
    assert_eq!(
        s.resolve_health_anomaly(domain_id, FP, "fixed", now)
            .await
            .expect("resolve"),
        None
    );
    let opened = s
        .upsert_health_anomaly(domain_id, &record("warning", "first"), 100, now)
        .await
        .expect("open");
    assert_eq!(opened.action, HealthAnomalyAction::Opened);
    assert_eq!((opened.status.as_str(), opened.occurrences), ("open", 1));
    let updated = s
        .upsert_health_anomaly(domain_id, &record("critical", "second"), 101, now)
        .await
        .expect("update");
    assert_eq!(updated.action, HealthAnomalyAction::Updated);
    assert_eq!(updated.id, opened.id);
    let a = the_anomaly(&db, domain_id).await;
    assert_eq!(
        (a.severity.as_str(), a.summary.as_str(), a.occurrences),
        ("critical", "second", 2)
    );
    assert_eq!((a.first_seen_day, a.last_seen_day), (100, 101));
    assert_eq!((a.window_start, a.window_end), (100, 101));
    assert_eq!(a.explanation["what_to_do"], "renew it");

    // acknowledged: status and content stay, last seen moves
    s.review_anomaly(a.id, "acknowledge", None, Some("ops"), Some("staff"))
        .await
        .expect("ack");
    let refreshed = s
        .upsert_health_anomaly(domain_id, &record("warning", "third"), 102, now)
        .await
        .expect("refresh");
    assert_eq!(refreshed.action, HealthAnomalyAction::Refreshed);
    assert_eq!(refreshed.status, "acknowledged");
    let a = the_anomaly(&db, domain_id).await;
    assert_eq!(
        (a.severity.as_str(), a.summary.as_str(), a.last_seen_day),
        ("critical", "second", 102)
    );

    // an acknowledged anomaly is resolved by a healthy check, with a review row
    let resolved = s
        .resolve_health_anomaly(domain_id, FP, "the policy works", now)
        .await
        .expect("resolve");
    assert_eq!(resolved, Some(a.id));
    let a = the_anomaly(&db, domain_id).await;
    assert_eq!(a.status, "resolved");
    let r = reviews(&db, a.id).await;
    let last = r.last().expect("review");
    assert_eq!(
        (
            last.from_status.as_str(),
            last.to_status.as_str(),
            last.actor.as_deref(),
            last.note.as_deref()
        ),
        (
            "acknowledged",
            "resolved",
            Some("health-check"),
            Some("the policy works")
        )
    );
    // resolving again does nothing
    assert_eq!(
        s.resolve_health_anomaly(domain_id, FP, "x", now)
            .await
            .expect("resolve"),
        None
    );

    // broken again: reopened, with a review row
    let reopened = s
        .upsert_health_anomaly(domain_id, &record("critical", "fourth"), 110, now)
        .await
        .expect("reopen");
    assert_eq!(reopened.action, HealthAnomalyAction::Reopened);
    assert_eq!(reopened.status, "open");
    let r = reviews(&db, reopened.id).await;
    assert_eq!(r.last().map(|x| x.action.as_str()), Some("reopen"));

    // dismissed: never resolved or reopened by the health check
    s.review_anomaly(
        reopened.id,
        "dismiss",
        Some("false alarm"),
        None,
        Some("staff"),
    )
    .await
    .expect("dismiss");
    let quiet = s
        .upsert_health_anomaly(domain_id, &record("critical", "fifth"), 111, now)
        .await
        .expect("refresh");
    assert_eq!(
        (quiet.action, quiet.status.as_str()),
        (HealthAnomalyAction::Refreshed, "dismissed")
    );
    assert_eq!(
        s.resolve_health_anomaly(domain_id, FP, "x", now)
            .await
            .expect("resolve"),
        None
    );
    let a = the_anomaly(&db, domain_id).await;
    assert_eq!((a.status.as_str(), a.last_seen_day), ("dismissed", 111));
}

async fn concurrent_upserts_end_as_one_row(engine: db::Engine) {
    let (db, domain_id) = setup(engine, "health_race").await;
    let now = at("2026-11-30T06:00:00Z");
    let (ra, rb) = (record("critical", "a"), record("critical", "b"));
    let (a, b) = tokio::join!(
        db.store.upsert_health_anomaly(domain_id, &ra, 100, now),
        db.store.upsert_health_anomaly(domain_id, &rb, 100, now),
    );
    let (a, b) = (a.expect("first"), b.expect("second"));
    assert_eq!(a.id, b.id);
    let mut actions = [a.action, b.action];
    actions.sort_by_key(|x| *x != HealthAnomalyAction::Opened);
    assert_eq!(
        actions,
        [HealthAnomalyAction::Opened, HealthAnomalyAction::Updated]
    );
    assert_eq!(the_anomaly(&db, domain_id).await.occurrences, 2);
}

async fn the_run_before_a_time_is_last_weeks(engine: db::Engine) {
    let (db, domain_id) = setup(engine, "health_before").await;
    let s = &db.store;
    let week_ago = at("2026-11-23T06:00:00Z");
    let now = week_ago + Duration::days(7);
    let old = s
        .record_health_check(domain_id, 90, "A", "{}", week_ago)
        .await
        .expect("old run");
    let new = s
        .record_health_check(domain_id, 70, "C", "{}", now)
        .await
        .expect("new run");
    assert_eq!(
        s.health_check_before(domain_id, now)
            .await
            .expect("before")
            .map(|r| r.id),
        Some(old.id)
    );
    assert_eq!(
        s.health_check_before(domain_id, now + Duration::seconds(1))
            .await
            .expect("before")
            .map(|r| r.id),
        Some(new.id)
    );
    assert_eq!(
        s.health_check_before(domain_id, week_ago)
            .await
            .expect("before"),
        None
    );
    let recent = s.recent_health_checks(domain_id, 10).await.expect("recent");
    assert_eq!(recent.iter().map(|r| r.score).collect::<Vec<_>>(), [70, 90]);
    // no DMARC reports: no selectors
    assert!(
        s.dkim_selectors_seen(domain_id, "example.test", 0, 20)
            .await
            .expect("selectors")
            .is_empty()
    );
}

on_both_engines!(
    the_health_anomaly_follows_its_review_status,
    concurrent_upserts_end_as_one_row,
    the_run_before_a_time_is_last_weeks,
);
