//! A catch-up over many days gives, for every day, what the analysis of that day gave when
//! only that day's data existed: days of the input after a window are never looked at, so
//! one load of a domain's history can be judged day by day (after an import, an outage of
//! the workers, or reports that arrived late).

use sealwatch_analytics::testkit::DomainBuilder;
use sealwatch_analytics::{Day, DomainInput, Thresholds, Window, analyze, analyze_days};

const START: Day = 20_400; // 2025-11-09

/// Seventy days of healthy traffic with incidents of several kinds starting on different
/// days: a low-rate downgrade from one network, an expired certificate on one MX, a
/// spoofing source, an MTA-STS policy that cannot be fetched.
fn eventful() -> DomainInput {
    let mut b = DomainBuilder::new("example.com").healthy(START, START + 70);
    for day in START + 40..=START + 70 {
        b = b.tls_failure(
            day,
            "Google Inc.",
            "starttls-not-supported",
            "mx1.example.com",
            "198.51.100.77",
            2,
        );
    }
    for day in START + 50..=START + 70 {
        b = b
            .tls_failure(
                day,
                "Google Inc.",
                "certificate-expired",
                "mx1.example.com",
                "209.85.220.1",
                120,
            )
            .tls_failure(
                day,
                "Microsoft Corporation",
                "certificate-expired",
                "mx1.example.com",
                "40.92.0.1",
                60,
            );
    }
    for day in START + 55..=START + 70 {
        b = b.dmarc(day, "google.com", "203.0.113.200", 2_000, 0);
    }
    for day in START + 62..=START + 70 {
        b = b.tls_failure(
            day,
            "Google Inc.",
            "sts-policy-fetch-error",
            "mx2.example.com",
            "209.85.220.1",
            40,
        );
    }
    b.build()
}

/// Healthy until day 59; then only Google reports (the others fall silent) until day 64;
/// then nothing at all.
fn going_quiet() -> DomainInput {
    let mut b = DomainBuilder::new("example.org").healthy(START, START + 59);
    for day in START + 60..=START + 64 {
        b = b
            .dmarc(day, "google.com", "192.0.2.10", 200, 200)
            .tls(day, "Google Inc.", 300, 0);
    }
    b.expect_reports(true).build()
}

/// The input as it stood at the end of `day`: nothing that begins later.
fn as_of(input: &DomainInput, day: Day) -> DomainInput {
    let cut = (i64::from(day) + 1) * 86_400;
    let mut out = input.clone();
    out.dmarc.retain(|r| r.begin < cut);
    out.tls.retain(|r| r.begin < cut);
    out.tls_failures.retain(|r| r.begin < cut);
    out.reports.retain(|r| r.begin < cut);
    out
}

#[test]
fn each_day_of_a_catch_up_sees_only_its_own_past() {
    for (name, input, at_least) in [
        ("eventful", eventful(), 3),
        ("going quiet", going_quiet(), 1),
    ] {
        let thresholds = Thresholds::default();
        let days: Vec<Day> = (START + 30..=START + 75).collect();
        let windows: Vec<Window> = days.iter().map(|d| Window::ending(*d, 7)).collect();
        let caught_up = analyze_days(&input, &windows, &thresholds);
        assert_eq!(caught_up.len(), days.len());
        let mut kinds = std::collections::BTreeSet::new();
        for (day, got) in days.iter().zip(&caught_up) {
            let then = analyze(&as_of(&input, *day), Window::ending(*day, 7), &thresholds);
            assert_eq!(
                got,
                &then.findings,
                "{name}: day {} judged with later data differs from that day's own analysis",
                day - START
            );
            kinds.extend(got.iter().map(|f| f.kind));
        }
        // The incidents are there to be found (the comparison above is not vacuous).
        assert!(kinds.len() >= at_least, "{name}: {kinds:?}");
    }
}
