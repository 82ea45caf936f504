//! End-to-end scenarios over the public API: a healthy month, incidents across days with the
//! lifecycle applied like the store would, and robustness on arbitrary input.

use proptest::prelude::*;
use sealwatch_analytics::testkit::DomainBuilder;
use sealwatch_analytics::{
    AnomalyKind, Change, Day, DmarcRow, DomainInput, ExistingAnomaly, ReportKind, ReportSeen,
    Severity, Status, Thresholds, TlsFailureRow, TlsPolicyRow, Window, analyze, day_from_ymd,
    reconcile,
};

const START: Day = 19_800; // 2024-03-18

#[test]
fn a_healthy_month_yields_zero_findings_every_day() {
    // Five weeks of history, then judge each of the last 14 days as "today".
    let input = DomainBuilder::new("example.com")
        .source_name("192.0.2.10", "mail.example.com")
        .healthy(START, START + 48)
        .build();
    for today in START + 35..=START + 48 {
        let a = analyze(&input, Window::ending(today, 7), &Thresholds::default());
        assert!(a.findings.is_empty(), "day {today}: {:#?}", a.findings);
        assert!(!a.correlation.is_empty());
    }
    // The correlation tells providers apart.
    let a = analyze(
        &input,
        Window::ending(START + 48, 7),
        &Thresholds::default(),
    );
    let yahoo = a
        .correlation
        .iter()
        .find(|p| p.reporter == "yahoo")
        .expect("yahoo");
    assert_eq!(
        yahoo.relationship,
        sealwatch_analytics::ProviderRelationship::DmarcOnly
    );
    let google = a
        .correlation
        .iter()
        .find(|p| p.reporter == "google")
        .expect("google");
    assert_eq!(
        google.relationship,
        sealwatch_analytics::ProviderRelationship::Both
    );
    assert!(!google.dmarc_drop_with_tls_failures);
}

#[test]
fn healthy_month_with_first_week_only_yields_nothing_but_info_at_most() {
    // A brand-new domain with one healthy week: no warnings.
    let input = DomainBuilder::new("example.com")
        .healthy(START, START + 6)
        .build();
    let a = analyze(&input, Window::ending(START + 6, 7), &Thresholds::default());
    assert!(
        a.findings.iter().all(|f| f.severity == Severity::Info),
        "{:#?}",
        a.findings
    );
}

/// Runs the analysis for each day and applies the changes like the store would.
fn simulate(
    input: &DomainInput,
    days: std::ops::RangeInclusive<Day>,
    store: &mut Vec<(ExistingAnomaly, AnomalyKind)>,
) {
    for today in days {
        let a = analyze(input, Window::ending(today, 7), &Thresholds::default());
        let existing: Vec<ExistingAnomaly> = store.iter().map(|(e, _)| e.clone()).collect();
        for change in reconcile(&existing, a.findings, today, 7) {
            match change {
                Change::Open(f) => {
                    let id = store.len() as i64 + 1;
                    store.push((
                        ExistingAnomaly {
                            id,
                            fingerprint: f.fingerprint,
                            status: Status::Open,
                            last_seen: today,
                        },
                        f.kind,
                    ));
                }
                Change::Update { id, .. } | Change::Reopen { id, .. } => {
                    let (e, _) = store.iter_mut().find(|(e, _)| e.id == id).expect("row");
                    e.last_seen = today;
                    e.status = if e.status == Status::Resolved {
                        Status::Open
                    } else {
                        e.status
                    };
                }
                Change::AutoResolve { id } => {
                    let (e, _) = store.iter_mut().find(|(e, _)| e.id == id).expect("row");
                    e.status = Status::Resolved;
                }
                Change::Suppressed { .. } => {}
            }
        }
    }
}

#[test]
fn certificate_incident_is_one_anomaly_and_auto_resolves_after_the_fix() {
    let mut b = DomainBuilder::new("example.com").healthy(START, START + 70);
    // mx1's certificate expires on day 35 and is fixed on day 45.
    for day in START + 35..START + 45 {
        b = b
            .tls_failure(
                day,
                "Google Inc.",
                "certificate-expired",
                "mx1.example.com",
                "209.85.220.9",
                150,
            )
            .tls_failure(
                day,
                "Microsoft Corporation",
                "certificate-expired",
                "mx1.example.com",
                "40.92.0.9",
                70,
            )
            .tls_failure(
                day,
                "Mail.Ru",
                "validation-failure",
                "mx1.example.com",
                "94.100.1.1",
                9,
            );
    }
    let input = b.build();
    let mut store = Vec::new();
    simulate(&input, START + 35..=START + 44, &mut store);
    assert_eq!(store.len(), 1, "{store:?}");
    assert_eq!(store[0].1, AnomalyKind::TlsCertificateCluster);
    assert_eq!(store[0].0.status, Status::Open);
    // After the fix the 7-day window still contains the incident for 6 days, then the quiet
    // period of 7 days runs: resolved by day 44 + 7 + 7.
    simulate(&input, START + 45..=START + 65, &mut store);
    assert_eq!(store.len(), 1, "{store:?}");
    assert_eq!(store[0].0.status, Status::Resolved);
}

#[test]
fn dismissed_spoofing_stays_quiet() {
    let mut b = DomainBuilder::new("example.com").healthy(START, START + 50);
    for day in START + 35..=START + 50 {
        b = b.dmarc(day, "google.com", "45.13.7.20", 300, 0);
    }
    let input = b.build();
    let mut store = Vec::new();
    simulate(&input, START + 36..=START + 37, &mut store);
    assert_eq!(store.len(), 1, "{store:?}");
    assert_eq!(store[0].1, AnomalyKind::DmarcNewUnauthenticatedSource);
    store[0].0.status = Status::Dismissed;
    simulate(&input, START + 38..=START + 50, &mut store);
    assert_eq!(store.len(), 1);
    assert_eq!(store[0].0.status, Status::Dismissed);
}

#[test]
fn day_numbers_match_the_calendar() {
    assert_eq!(day_from_ymd(2024, 3, 18), START);
}

fn arb_row() -> impl Strategy<Value = (i64, i64, String, String, u64, u64, u64)> {
    (
        -200_000i64..3_000_000,
        -100_000i64..400_000,
        prop::sample::select(vec!["google.com", "Google Inc.", "Yahoo", "", "x"]),
        prop::sample::select(vec![
            "192.0.2.1",
            "2001:db8::1",
            "garbage",
            "",
            "::ffff:10.0.0.1",
        ]),
        0u64..u64::MAX,
        0u64..1_000,
        0u64..1_000,
    )
        .prop_map(|(b, l, r, ip, m, a, c)| (b, b + l, r.to_owned(), ip.to_owned(), m, a, c))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn analysis_never_panics(rows in prop::collection::vec(arb_row(), 0..30), wstart in -5i32..40, wlen in -3i32..10) {
        let mut input = DomainInput { domain: "example.com".into(), ..Default::default() };
        for (i, (begin, end, reporter, ip, m, a, c)) in rows.into_iter().enumerate() {
            input.dmarc.push(DmarcRow { begin, end, reporter: reporter.clone(), source_ip: ip.clone(), messages: m / 4, dkim_aligned: a, spf_aligned: m, disposition_reject: c, ..Default::default() });
            input.tls.push(TlsPolicyRow { begin, end, reporter: reporter.clone(), policy_type: "sts".into(), sts_mode: Some("enforce".into()), successful: a, failed: c, ..Default::default() });
            let rt = ["certificate-expired", "sts-policy-invalid", "tlsa-invalid", "starttls-not-supported", "weird"][i % 5];
            input.tls_failures.push(TlsFailureRow { begin, end, reporter: reporter.clone(), policy_type: "sts".into(), result_type: rt.into(), sending_mta_ip: Some(ip.clone()), failed: c, ..Default::default() });
            input.reports.push(ReportSeen { begin, end, reporter, kind: if i % 2 == 0 { ReportKind::Dmarc } else { ReportKind::Tls }, received: None });
        }
        let w = Window { start: wstart, end: wstart + wlen };
        let a = analyze(&input, w, &Thresholds::default());
        let b = analyze(&input, w, &Thresholds::default());
        prop_assert_eq!(&a, &b);
        for f in &a.findings {
            prop_assert!((0.0..=1.0).contains(&f.confidence));
            prop_assert!(f.fingerprint.starts_with(f.kind.as_str()));
        }
    }
}
