//! `tls-single-provider`: TLS failures from one reporter while the others succeed — a
//! mismatch between the domain's MX setup and that sender's requirements (its trust store,
//! its DANE/MTA-STS handling), or interference on the path from that sender.
//!
//! A reporter qualifies with at least `single_provider_min_failed_sessions` failures forming
//! at least `single_provider_min_failure_rate` of its sessions in the window, while the
//! other reporters together have at least `single_provider_others_min_sessions` sessions and
//! a failure rate at most `single_provider_others_max_failure_rate`. Reporters whose detailed
//! failures are mostly MTA-STS or DANE policy failures are left to those detectors. Warning;
//! critical when the provider's DMARC volume dropped at the same time (see correlation).
//! Fingerprint: kind, domain, reporter key.

use std::collections::BTreeMap;

use serde_json::json;

use super::{Ctx, DANE_TYPES, STS_TYPES};
use crate::finding::{
    AnomalyKind, Explanation, Finding, Severity, conf, fingerprint, list, pct, r4,
};
use crate::input::{Day, format_day};
use crate::rollup::TlsCounts;

pub(crate) fn detect(ctx: &Ctx<'_>) -> Vec<Finding> {
    let th = ctx.th;
    let active = ctx.window_tls_reporters();
    let mut out = Vec::new();
    for (key, counts) in &active {
        let rate = counts.failure_rate().unwrap_or(0.0);
        if counts.failed < th.single_provider_min_failed_sessions
            || rate < th.single_provider_min_failure_rate
        {
            continue;
        }
        let mut others = TlsCounts::default();
        for (k, c) in &active {
            if k != key {
                others.add(c);
            }
        }
        let others_rate = others.failure_rate().unwrap_or(0.0);
        if others.total() < th.single_provider_others_min_sessions
            || others_rate > th.single_provider_others_max_failure_rate
        {
            continue;
        }
        let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_mx: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_day: BTreeMap<Day, u64> = BTreeMap::new();
        let (mut policy_failed, mut detail_failed) = (0u64, 0u64);
        for (day, c) in ctx.rollup.failures(ctx.window.start, ctx.window.end) {
            if &c.reporter != key {
                continue;
            }
            crate::rollup::bump(by_type.entry(c.result_type.clone()).or_default(), c.failed);
            crate::rollup::bump(by_mx.entry(c.mx.clone()).or_default(), c.failed);
            crate::rollup::bump(by_day.entry(day).or_default(), c.failed);
            crate::rollup::bump(&mut detail_failed, c.failed);
            if STS_TYPES.contains(&c.result_type.as_str())
                || DANE_TYPES.contains(&c.result_type.as_str())
            {
                crate::rollup::bump(&mut policy_failed, c.failed);
            }
        }
        if detail_failed > 0 && policy_failed.saturating_mul(2) >= detail_failed {
            continue;
        }
        let mut fail_days: Vec<Day> = by_day.keys().copied().collect();
        if fail_days.is_empty() {
            fail_days = (ctx.window.start..=ctx.window.end)
                .filter(|d| {
                    ctx.rollup
                        .tls
                        .get(d)
                        .and_then(|t| t.by_reporter.get(key))
                        .is_some_and(|c| c.failed > 0)
                })
                .collect();
        }
        let first = fail_days.first().copied().unwrap_or(ctx.window.start);
        let last = fail_days.last().copied().unwrap_or(ctx.window.end);
        let first_seen = ctx.run_start(first, |d| {
            ctx.rollup
                .tls
                .get(&d)
                .and_then(|t| t.by_reporter.get(key))
                .is_some_and(|c| c.failed > 0)
        });
        let name = ctx.reporter_name(key);
        let provider = ctx.provider(key);
        let dropped = provider.is_some_and(|p| p.dmarc_drop_with_tls_failures);
        let affected = provider.map_or(0, |p| p.estimated_affected_messages);
        let senders: Vec<_> = provider
            .map(|p| p.failing_senders.iter().take(10).cloned().collect())
            .unwrap_or_default();
        let mut types: Vec<(String, u64)> = by_type.iter().map(|(k, v)| (k.clone(), *v)).collect();
        types.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
        let type_text = if types.is_empty() {
            "no failure details given".to_owned()
        } else {
            list(
                &types
                    .iter()
                    .map(|(t, n)| format!("{t} ({n})"))
                    .collect::<Vec<_>>(),
            )
        };
        let mxs: Vec<String> = by_mx.keys().cloned().collect();
        let other_names: Vec<String> = active
            .keys()
            .filter(|k| *k != key)
            .map(|k| ctx.reporter_name(k))
            .collect();
        let evidence = json!({
            "reporter": key,
            "reporter_name": name,
            "failed_sessions": counts.failed,
            "successful_sessions": counts.successful,
            "failure_rate": r4(rate),
            "result_types": by_type,
            "mx_hosts": by_mx,
            "first_seen_day": first_seen,
            "first_seen": format_day(first_seen),
            "other_reporters": active.iter().filter(|(k, _)| *k != key).map(|(k, c)| json!({
                "reporter": k, "sessions": c.total(), "failure_rate": r4(c.failure_rate().unwrap_or(0.0))
            })).collect::<Vec<_>>(),
            "others_failure_rate": r4(others_rate),
            "estimated_affected_messages": affected,
            "dmarc_volume_dropped": dropped,
            "sending_mtas": senders,
        });
        let severity = if dropped {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let confidence = 0.55
            + 0.25
                * (others.total() as f64 / (10.0 * th.single_provider_others_min_sessions as f64))
                    .min(1.0)
            + if rate >= 0.5 { 0.1 } else { 0.0 }
            + if dropped { 0.05 } else { 0.0 };
        let since = format_day(first_seen);
        let mut what_it_means = format!(
            "Mail from {name} to {} fails to set up encryption while every other provider connects fine, so the problem is specific to how {name} reaches you: typically a certificate that {name} does not trust (missing intermediate certificate, an authority not in its trust store), a DANE or MTA-STS requirement only it enforces, or equipment on the network path between {name} and your server interfering with TLS.",
            ctx.domain
        );
        if affected > 0 {
            what_it_means.push_str(&format!(
                " About {affected} messages were affected, judging by your mail volume with {name}."
            ));
        }
        if dropped {
            what_it_means.push_str(&format!(" The DMARC volume from {name} dropped at the same time: mail from it is probably being deferred or lost."));
        }
        out.push(Finding {
            kind: AnomalyKind::TlsSingleProvider,
            severity,
            domain: ctx.domain.to_owned(),
            window_start: first.max(ctx.window.start),
            window_end: last,
            evidence,
            confidence: conf(confidence),
            fingerprint: fingerprint(AnomalyKind::TlsSingleProvider, ctx.domain, &[key]),
            summary: format!(
                "{name}: {} of TLS connections to {} fail ({}) while other providers succeed",
                pct(rate),
                ctx.domain,
                types.first().map_or("no details", |t| t.0.as_str())
            ),
            explanation: Explanation {
                what_happened: format!(
                    "Since {since}, {name} reported {} failed TLS connections out of {} to {} ({}), on {}: {type_text}. In the same period {} reported only {} failures.",
                    counts.failed,
                    counts.total(),
                    if mxs.is_empty() { ctx.domain.to_owned() } else { list(&mxs) },
                    pct(rate),
                    if mxs.is_empty() { "unspecified hosts".to_owned() } else { format!("MX {}", list(&mxs)) },
                    list(&other_names),
                    pct(others_rate),
                ),
                what_it_means,
                what_to_do: format!(
                    "Check the failure details above: make sure the certificate chain on {} is complete and issued by a widely trusted authority, and that your MTA-STS/DANE records match the MX hosts. If everything checks out, contact {name}'s postmaster support with these numbers.",
                    if mxs.is_empty() { "your MX hosts".to_owned() } else { list(&mxs) }
                ),
                who_fixes_it: format!("Your mail server administrator or hosting provider; occasionally {name}'s postmaster team."),
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
    fn one_failing_provider_is_flagged() {
        let mut b = DomainBuilder::new("example.com").healthy(0, 34);
        for day in 30..=34 {
            b = b.tls_failure(
                day,
                "Google Inc.",
                "certificate-not-trusted",
                "mx1.example.com",
                "209.85.220.9",
                90,
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
            .filter(|f| f.kind == AnomalyKind::TlsSingleProvider)
            .collect();
        assert_eq!(f.len(), 1, "{:#?}", a.findings);
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(f[0].fingerprint, "tls-single-provider:example.com:google");
        assert_eq!(f[0].evidence["reporter"], "google");
        assert_eq!(
            f[0].evidence["result_types"]["certificate-not-trusted"],
            450
        );
        assert_eq!(f[0].window_start, 30);
        assert!(f[0].explanation.what_happened.contains("Google Inc."));
    }

    #[test]
    fn failures_everywhere_are_not_single_provider() {
        let mut b = DomainBuilder::new("example.com").healthy(0, 34);
        for day in 30..=34 {
            b = b
                .tls_failure(
                    day,
                    "Google Inc.",
                    "certificate-not-trusted",
                    "mx1.example.com",
                    "209.85.220.9",
                    90,
                )
                .tls_failure(
                    day,
                    "Microsoft Corporation",
                    "certificate-not-trusted",
                    "mx1.example.com",
                    "40.92.0.9",
                    50,
                );
        }
        let a = analyze(
            &b.build(),
            Window { start: 28, end: 34 },
            &Thresholds::default(),
        );
        assert!(
            a.findings
                .iter()
                .all(|f| f.kind != AnomalyKind::TlsSingleProvider)
        );
    }

    #[test]
    fn small_failure_rate_is_not_flagged() {
        let mut b = DomainBuilder::new("example.com").healthy(0, 34);
        for day in 28..=34 {
            b = b.tls_failure(
                day,
                "Google Inc.",
                "certificate-not-trusted",
                "mx1.example.com",
                "209.85.220.9",
                3,
            );
        }
        let a = analyze(
            &b.build(),
            Window { start: 28, end: 34 },
            &Thresholds::default(),
        );
        assert!(
            a.findings
                .iter()
                .all(|f| f.kind != AnomalyKind::TlsSingleProvider)
        );
    }
}
