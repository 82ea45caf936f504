//! `dane`: `tlsa-invalid`, `dnssec-invalid` or `dane-required` failures on an MX host.
//!
//! At least `dane_min_failed_sessions` failures for one MX host in the window; critical from
//! `dane_critical_failed_sessions` failures or when at least half of the window's `tlsa`
//! policy sessions failed (DANE senders defer mail they cannot verify), warning otherwise.
//! Fingerprint: kind, domain, MX host.

use std::collections::BTreeMap;

use serde_json::json;

use super::{Ctx, DANE_TYPES};
use crate::finding::{AnomalyKind, Explanation, Finding, Severity, conf, fingerprint, list, r4};
use crate::input::{Day, format_day};
use crate::rollup::TlsCounts;

#[derive(Default)]
struct Agg {
    by_type: BTreeMap<String, u64>,
    by_reporter: BTreeMap<String, u64>,
    by_day: BTreeMap<Day, u64>,
    total: u64,
}

pub(crate) fn detect(ctx: &Ctx<'_>) -> Vec<Finding> {
    let th = ctx.th;
    let mut per_mx: BTreeMap<String, Agg> = BTreeMap::new();
    for (day, c) in ctx.window_cells(DANE_TYPES) {
        let a = per_mx.entry(c.mx.clone()).or_default();
        crate::rollup::bump(
            a.by_type.entry(c.result_type.clone()).or_default(),
            c.failed,
        );
        crate::rollup::bump(
            a.by_reporter.entry(c.reporter.clone()).or_default(),
            c.failed,
        );
        crate::rollup::bump(a.by_day.entry(day).or_default(), c.failed);
        crate::rollup::bump(&mut a.total, c.failed);
    }
    let mut tlsa = TlsCounts::default();
    for (_, d) in ctx.rollup.tls.range(ctx.window.start..=ctx.window.end) {
        if let Some(c) = d.by_policy_type.get("tlsa") {
            tlsa.add(c);
        }
    }
    let tlsa_rate = tlsa.failure_rate().unwrap_or(0.0);
    let mut out = Vec::new();
    for (mx, a) in per_mx {
        if a.total == 0 || a.total < th.dane_min_failed_sessions {
            continue;
        }
        let critical = a.total >= th.dane_critical_failed_sessions || tlsa_rate >= 0.5;
        let first = a.by_day.keys().next().copied().unwrap_or(ctx.window.start);
        let last = a
            .by_day
            .keys()
            .next_back()
            .copied()
            .unwrap_or(ctx.window.end);
        let first_seen = ctx.run_start(first, |d| {
            ctx.day_failures(d, |c| {
                c.mx == mx && DANE_TYPES.contains(&c.result_type.as_str())
            }) > 0
        });
        let since = format_day(first_seen);
        let names: Vec<String> = a.by_reporter.keys().map(|k| ctx.reporter_name(k)).collect();
        let mut causes = Vec::new();
        if a.by_type.contains_key("tlsa-invalid") {
            causes.push(format!("the TLSA record at _25._tcp.{mx} does not match the certificate {mx} presents (typically a certificate or key was renewed without updating TLSA)"));
        }
        if a.by_type.contains_key("dnssec-invalid") {
            causes.push(format!("the DNSSEC signatures for {mx} or its TLSA record do not validate (expired signatures, broken DS chain, or lookups fail)"));
        }
        if a.by_type.contains_key("dane-required") {
            causes.push(format!(
                "the sender requires DANE but found no DNSSEC-validated TLSA record for {mx}"
            ));
        }
        let evidence = json!({
            "mx_host": mx,
            "result_types": a.by_type,
            "reporters": a.by_reporter,
            "failed_sessions": a.total,
            "tlsa_policy_sessions": tlsa.total(),
            "tlsa_failure_rate": r4(tlsa_rate),
            "first_seen_day": first_seen,
            "first_seen": format_day(first_seen),
        });
        out.push(Finding {
            kind: AnomalyKind::Dane,
            severity: if critical { Severity::Critical } else { Severity::Warning },
            domain: ctx.domain.to_owned(),
            window_start: first,
            window_end: last,
            evidence,
            confidence: conf(0.65 + 0.1 * (a.by_reporter.len().min(3) as f64)),
            fingerprint: fingerprint(AnomalyKind::Dane, ctx.domain, &[&mx]),
            summary: format!(
                "DANE failures on MX {mx}: {} since {since}",
                list(&a.by_type.keys().cloned().collect::<Vec<_>>())
            ),
            explanation: Explanation {
                what_happened: format!(
                    "Since {since}, {} reported {} connections to {mx} that failed DANE checks: {}.",
                    list(&names),
                    a.total,
                    list(&a.by_type.iter().map(|(t, n)| format!("{t} ({n})")).collect::<Vec<_>>())
                ),
                what_it_means: format!(
                    "Senders that use DANE verify your server's certificate against a DNSSEC-signed TLSA record. Here {}. Such senders hold the mail back instead of delivering it unprotected, so it is delayed and eventually bounced.",
                    list(&causes)
                ),
                what_to_do: format!(
                    "Compare the TLSA record at _25._tcp.{mx} with the certificate {mx} serves now (publish a record for the new key before rolling certificates) and check the DNSSEC chain of the zone with a DNSSEC analyser."
                ),
                who_fixes_it: format!("Whoever manages DNS (DNSSEC, TLSA records) and the certificate of {mx}: your IT team or DNS/mail provider."),
            },
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::testkit::DomainBuilder;
    use crate::{AnomalyKind, Severity, Thresholds, Window, analyze};

    #[test]
    fn tlsa_mismatch_is_detected_per_mx() {
        let mut b = DomainBuilder::new("example.com").healthy(0, 34);
        for day in 32..=34 {
            b = b.tls_failure(
                day,
                "Mail.Ru",
                "tlsa-invalid",
                "mx2.example.com",
                "94.100.1.1",
                10,
            );
        }
        let a = analyze(
            &b.build(),
            Window { start: 28, end: 34 },
            &Thresholds::default(),
        );
        let f: Vec<_> = a
            .findings
            .iter()
            .filter(|f| f.kind == AnomalyKind::Dane)
            .collect();
        assert_eq!(f.len(), 1, "{:#?}", a.findings);
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(f[0].fingerprint, "dane:example.com:mx2.example.com");
        assert_eq!(f[0].evidence["failed_sessions"], 30);
        assert!(
            f[0].explanation
                .what_to_do
                .contains("_25._tcp.mx2.example.com")
        );
    }

    #[test]
    fn a_few_dane_required_failures_are_a_warning() {
        let b = DomainBuilder::new("example.com")
            .healthy(0, 34)
            .tls(33, "Mail.Ru", 0, 0)
            .tls_failure(
                33,
                "Mail.Ru",
                "dane-required",
                "mx1.example.com",
                "94.100.1.1",
                2,
            );
        let mut input = b.build();
        // The dane-required session belongs to an sts-less tlsa policy with many successes.
        for p in &mut input.tls {
            if p.policy_type == "tlsa" {
                p.successful = 100;
            }
        }
        let a = analyze(
            &input,
            Window { start: 28, end: 34 },
            &Thresholds::default(),
        );
        let f = a
            .findings
            .iter()
            .find(|f| f.kind == AnomalyKind::Dane)
            .expect("dane");
        assert_eq!(f.severity, Severity::Warning);
    }

    #[test]
    fn no_dane_failures_no_finding() {
        let a = analyze(
            &DomainBuilder::new("example.com").healthy(0, 34).build(),
            Window { start: 28, end: 34 },
            &Thresholds::default(),
        );
        assert!(a.findings.iter().all(|f| f.kind != AnomalyKind::Dane));
    }
}
