//! `mta-sts-policy`: senders could not fetch (`sts-policy-fetch-error`), parse
//! (`sts-policy-invalid`) or authenticate (`sts-webpki-invalid`) the domain's MTA-STS policy.
//!
//! At least `sts_min_failed_sessions` such failures in the window. Critical when the latest
//! published policy mode seen in the input is `enforce` (senders that cached the policy keep
//! enforcing it, and legitimate mail may already be refused), warning otherwise.
//! Fingerprint: kind, domain (one policy per domain; the result types are evidence).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::{Ctx, STS_TYPES};
use crate::finding::{AnomalyKind, Explanation, Finding, Severity, conf, fingerprint, list};
use crate::input::{Day, format_day};

pub(crate) fn detect(ctx: &Ctx<'_>) -> Option<Finding> {
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_reporter: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_day: BTreeMap<Day, u64> = BTreeMap::new();
    let mut total = 0u64;
    for (day, c) in ctx.window_cells(STS_TYPES) {
        crate::rollup::bump(by_type.entry(c.result_type.clone()).or_default(), c.failed);
        crate::rollup::bump(by_reporter.entry(c.reporter.clone()).or_default(), c.failed);
        crate::rollup::bump(by_day.entry(day).or_default(), c.failed);
        crate::rollup::bump(&mut total, c.failed);
    }
    if total == 0 || total < ctx.th.sts_min_failed_sessions {
        return None;
    }
    let end = crate::input::day_start(ctx.window.end.saturating_add(1));
    let latest = ctx
        .input
        .tls
        .iter()
        .filter(|p| p.begin < end && p.sts_mode.is_some())
        .max_by_key(|p| p.begin);
    let mode = latest
        .and_then(|p| p.sts_mode.as_deref())
        .map(|m| m.trim().to_ascii_lowercase());
    let policy_domains: BTreeSet<String> = ctx
        .input
        .tls
        .iter()
        .filter(|p| p.policy_type.trim().eq_ignore_ascii_case("sts"))
        .filter_map(|p| p.policy_domain.as_deref().map(crate::rollup::norm_host))
        .collect();
    let policy_domain = policy_domains
        .iter()
        .next()
        .cloned()
        .unwrap_or_else(|| crate::rollup::norm_host(ctx.domain));
    let enforce = mode.as_deref() == Some("enforce");
    let first = by_day.keys().next().copied().unwrap_or(ctx.window.start);
    let last = by_day.keys().next_back().copied().unwrap_or(ctx.window.end);
    let first_seen = ctx.run_start(first, |d| {
        ctx.day_failures(d, |c| STS_TYPES.contains(&c.result_type.as_str())) > 0
    });
    let names: Vec<String> = by_reporter.keys().map(|k| ctx.reporter_name(k)).collect();
    let types: Vec<String> = by_type.iter().map(|(t, n)| format!("{t} ({n})")).collect();
    let url = format!("https://mta-sts.{policy_domain}/.well-known/mta-sts.txt");
    let mut causes = Vec::new();
    if by_type.contains_key("sts-policy-fetch-error") {
        causes.push(format!("the policy file at {url} could not be downloaded (the mta-sts web host is down, missing from DNS, or answers with an error)"));
    }
    if by_type.contains_key("sts-webpki-invalid") {
        causes.push(format!("the HTTPS certificate of mta-sts.{policy_domain} is not valid (expired, wrong name or untrusted)"));
    }
    if by_type.contains_key("sts-policy-invalid") {
        causes.push("the policy file's content is invalid (syntax error, or its mx: lines do not match your MX records)".to_owned());
    }
    let severity = if enforce {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let confidence =
        0.6 + 0.1 * (by_reporter.len().min(3) as f64) + if total >= 20 { 0.05 } else { 0.0 };
    let evidence = json!({
        "policy_domain": policy_domain,
        "policy_url": url,
        "mode": mode,
        "result_types": by_type,
        "reporters": by_reporter,
        "failed_sessions": total,
        "first_seen_day": first_seen,
        "first_seen": format_day(first_seen),
        "daily_failed_sessions": by_day.iter().map(|(d, n)| json!({"day": d, "date": format_day(*d), "failed": n})).collect::<Vec<_>>(),
    });
    let since = format_day(first_seen);
    Some(Finding {
        kind: AnomalyKind::MtaStsPolicy,
        severity,
        domain: ctx.domain.to_owned(),
        window_start: first,
        window_end: last,
        evidence,
        confidence: conf(confidence),
        fingerprint: fingerprint(AnomalyKind::MtaStsPolicy, ctx.domain, &[]),
        summary: format!(
            "MTA-STS policy of {policy_domain} unusable ({}) since {since}{}",
            list(&by_type.keys().cloned().collect::<Vec<_>>()),
            if enforce { ", mode enforce" } else { "" }
        ),
        explanation: Explanation {
            what_happened: format!(
                "Since {since}, {} reported {total} connections where your MTA-STS policy could not be used: {}.",
                list(&names),
                list(&types)
            ),
            what_it_means: format!(
                "MTA-STS tells senders to deliver to {} only over verified TLS. Here {}. {}",
                ctx.domain,
                list(&causes),
                if enforce {
                    "Your policy is in enforce mode: senders that cached it keep enforcing it and may refuse to deliver, and new senders lose the protection."
                } else {
                    "Your policy is not in enforce mode, so mail still flows, but the protection MTA-STS should give is gone."
                }
            ),
            what_to_do: format!(
                "Open {url} in a browser: it must load over valid HTTPS and contain `version: STSv1`, a `mode:` line, one `mx:` line per MX host and `max_age:`. Fix the web host, certificate or file, then change the `id=` in the _mta-sts.{policy_domain} TXT record so senders fetch it again."
            ),
            who_fixes_it: "Whoever hosts the mta-sts web site and your DNS: usually your IT team, web host or mail provider.".to_owned(),
        },
    })
}

#[cfg(test)]
mod tests {
    use crate::testkit::DomainBuilder;
    use crate::{AnomalyKind, Severity, Thresholds, Window, analyze};

    fn broken(mode: &str) -> crate::Analysis {
        let mut b = DomainBuilder::new("example.com").healthy(0, 34);
        for day in 30..=34 {
            b = b
                .tls_failure(
                    day,
                    "Google Inc.",
                    "sts-webpki-invalid",
                    "mx1.example.com",
                    "209.85.220.9",
                    12,
                )
                .tls_failure(
                    day,
                    "Microsoft Corporation",
                    "sts-policy-fetch-error",
                    "mx1.example.com",
                    "40.92.0.9",
                    5,
                );
        }
        let input = b.sts_mode(mode).build();
        analyze(
            &input,
            Window { start: 28, end: 34 },
            &Thresholds::default(),
        )
    }

    #[test]
    fn enforce_mode_is_critical() {
        let a = broken("enforce");
        let f: Vec<_> = a
            .findings
            .iter()
            .filter(|f| f.kind == AnomalyKind::MtaStsPolicy)
            .collect();
        assert_eq!(f.len(), 1, "{:#?}", a.findings);
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(f[0].fingerprint, "mta-sts-policy:example.com");
        assert_eq!(f[0].evidence["mode"], "enforce");
        assert_eq!(f[0].evidence["result_types"]["sts-webpki-invalid"], 60);
        assert!(
            f[0].explanation
                .what_to_do
                .contains("https://mta-sts.example.com/.well-known/mta-sts.txt")
        );
        assert!(
            a.findings
                .iter()
                .all(|f| f.kind != AnomalyKind::TlsSingleProvider),
            "{:#?}",
            a.findings
        );
    }

    #[test]
    fn testing_mode_is_a_warning() {
        let a = broken("testing");
        let f = a
            .findings
            .iter()
            .find(|f| f.kind == AnomalyKind::MtaStsPolicy)
            .expect("finding");
        assert_eq!(f.severity, Severity::Warning);
    }

    #[test]
    fn a_single_stray_failure_is_ignored() {
        let b = DomainBuilder::new("example.com")
            .healthy(0, 34)
            .tls_failure(
                33,
                "Google Inc.",
                "sts-policy-fetch-error",
                "mx1.example.com",
                "209.85.220.9",
                1,
            );
        let a = analyze(
            &b.build(),
            Window { start: 28, end: 34 },
            &Thresholds::default(),
        );
        assert!(a.findings.is_empty(), "{:#?}", a.findings);
    }
}
