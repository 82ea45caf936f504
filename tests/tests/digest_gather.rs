//! What `gather` reads for a digest, on SQLite and PostgreSQL: the anomalies whose evidence
//! lies in the week appear with their plain-English explanation (open and acknowledged ones,
//! ones resolved since marked so, ones a later analysis found), dismissed ones never do, and
//! the latest health check fills the health slot.

#[path = "../common/db.rs"]
mod db;

use chrono::{TimeZone as _, Utc};
use db::{Engine, TestDb};
use sealwatch_digest::{IsoWeek, SetupHints, Verdict};
use sealwatch_model::DomainName;
use sealwatch_store::{AnomalyChange, AnomalyRecord};

/// Days since 1970-01-01 of a date in November 2026.
fn nov_2026(day: u32) -> i32 {
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, day).expect("date");
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    i32::try_from((date - epoch).num_days()).expect("fits")
}

fn record(kind: &str, subject: &str, severity: &str) -> AnomalyRecord {
    AnomalyRecord {
        kind: kind.into(),
        fingerprint: format!("{kind}:gather.example:{subject}"),
        severity: severity.into(),
        confidence: 0.9,
        window_start: nov_2026(13),
        window_end: nov_2026(13),
        summary: format!("{kind} on {subject}"),
        evidence: serde_json::json!({}),
        explanation: serde_json::json!({
            "what_happened": format!("Reports show {kind} on {subject}."),
            "what_it_means": "Some mail may be affected.",
            "what_to_do": format!("Fix {subject}."),
            "who_fixes_it": "Your mail administrator.",
        }),
    }
}

async fn gather_shows_open_issues_and_the_health_check(engine: Engine) {
    let db = TestDb::new(engine, "digest-gather").await;
    let store = &db.store;
    let t = store
        .create_tenant(
            "gather",
            &[DomainName::parse("gather.example").expect("domain")],
        )
        .await
        .expect("tenant");
    let target = store
        .analysis_targets(Some("gather.example"))
        .await
        .expect("targets")
        .pop()
        .expect("target");
    // The week 2026-W46 is 9 to 15 November 2026; the anomalies are first seen on the 13th.
    let week = IsoWeek::parse("2026-W46").expect("week");
    store
        .apply_anomaly_changes(
            t.id,
            target.domain_id,
            nov_2026(13),
            vec![
                AnomalyChange::Open(record("tls-certificate-cluster", "mx1", "critical")),
                AnomalyChange::Open(record("reporter-silent", "yahoo", "info")),
                AnomalyChange::Open(record("dmarc-auth-drop", "false-alarm", "warning")),
                AnomalyChange::Open(record("dane", "old", "warning")),
            ],
        )
        .await
        .expect("anomalies");
    let all = store
        .domain_anomalies(target.domain_id)
        .await
        .expect("list");
    let id = |kind: &str| all.iter().find(|a| a.kind == kind).expect("anomaly").id;
    store
        .review_anomaly(
            id("reporter-silent"),
            "acknowledge",
            None,
            None,
            Some("staff"),
        )
        .await
        .expect("ack");
    store
        .review_anomaly(
            id("dmarc-auth-drop"),
            "dismiss",
            Some("expected"),
            None,
            Some("staff"),
        )
        .await
        .expect("dismiss");
    store
        .review_anomaly(id("dane"), "resolve", None, None, Some("staff"))
        .await
        .expect("resolve");
    let report = serde_json::json!({
        "findings": [
            {"severity": "ok", "summary": "valid SPF record"},
            {"severity": "critical", "summary": "the MTA-STS policy does not cover mx1.gather.example"},
        ]
    });
    store
        .insert_health_check(
            t.id,
            target.domain_id,
            64,
            "D",
            &report.to_string(),
            Utc.with_ymd_and_hms(2026, 11, 14, 6, 0, 0)
                .single()
                .expect("time"),
        )
        .await
        .expect("health");

    // A catch-up analysis a week later finds an incident whose evidence lies in the week.
    let mut late = record("mta-sts-policy", "late", "warning");
    late.window_start = nov_2026(10);
    late.window_end = nov_2026(12);
    store
        .apply_anomaly_changes(
            t.id,
            target.domain_id,
            nov_2026(20),
            vec![AnomalyChange::Open(late)],
        )
        .await
        .expect("late anomaly");

    let data = sealwatch_digest::gather(store, &SetupHints::default(), None, t.id, week)
        .await
        .expect("gather");
    let d = &data.domains[0];
    let kinds: Vec<(&str, bool)> = d
        .issues
        .iter()
        .map(|i| (i.kind.as_str(), i.resolved))
        .collect();
    assert_eq!(
        kinds,
        [
            ("tls-certificate-cluster", false),
            ("mta-sts-policy", false),
            ("reporter-silent", false),
            ("dane", true)
        ],
        "open ones most urgent first, then the one resolved since; never the dismissed one"
    );
    assert!(d.issues[2].acknowledged);
    assert_eq!(d.issues[0].what_to_do, "Fix mx1.");
    assert_eq!(
        d.issues[0].since, "2026-11-13",
        "the first day of its evidence"
    );
    assert_eq!(
        d.issues[1].since, "2026-11-10",
        "found later, dated by its evidence"
    );
    let health = d.health.as_ref().expect("health slot");
    assert_eq!(
        (
            health.score,
            health.grade.as_str(),
            health.checked_on.as_str()
        ),
        (64, "D", "2026-11-14")
    );
    assert_eq!(
        health.problems,
        ["the MTA-STS policy does not cover mx1.gather.example"]
    );
    assert_eq!(
        Verdict::of(&data),
        Verdict::Issues {
            count: 3,
            urgent: 1
        }
    );
    let composed = sealwatch_digest::compose(&data).expect("compose");
    assert!(
        composed
            .subject
            .ends_with("2026-W46: 3 issues need attention"),
        "{}",
        composed.subject
    );
    assert!(
        composed
            .text
            .contains("Score 64 of 100 (grade D), checked 2026-11-14.")
    );
    assert!(
        !composed.text.contains("false-alarm"),
        "dismissed anomalies never appear"
    );
    // The domain sent no reports this week, yet the issues the verdict counts are listed
    // (the subject and the body agree), in both parts.
    for part in [&composed.text, &composed.html] {
        for summary in ["tls-certificate-cluster on mx1", "reporter-silent on yahoo"] {
            assert!(part.contains(summary), "{summary} missing: {part}");
        }
    }

    // A week that ends before any evidence shows none of them.
    let earlier = sealwatch_digest::gather(
        store,
        &SetupHints::default(),
        None,
        t.id,
        week.prev().prev(),
    )
    .await
    .expect("gather");
    assert!(earlier.domains[0].issues.is_empty());
    // The week after: the open ones stay while they are open; the resolved one does not
    // (its evidence ended before that week).
    let later = sealwatch_digest::gather(store, &SetupHints::default(), None, t.id, week.next())
        .await
        .expect("gather");
    let kinds: Vec<&str> = later.domains[0]
        .issues
        .iter()
        .map(|i| i.kind.as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "tls-certificate-cluster",
            "mta-sts-policy",
            "reporter-silent"
        ]
    );
}

on_both_engines!(gather_shows_open_issues_and_the_health_check);
