//! `tls-certificate-cluster`: certificate failures on one MX host reported by most or all
//! reporters at once — the MX certificate is broken.
//!
//! Per receiving MX host, over the window: a reporter *sees* the problem when its
//! certificate-type failures on that host are at least `cert_reporter_min_failure_rate` of its
//! sessions. A cluster is at least two seeing reporters forming at least
//! `cert_min_reporter_share` of the reporters with TLS sessions in the window (or the only
//! reporter, at lower confidence), with at least `cert_min_failed_sessions` failures. The
//! failures must be *rising* (window daily mean > `cert_rise_factor` × baseline daily mean)
//! or, for an ongoing problem whose baseline already contains it, still heavy (seeing
//! reporters' failure rate ≥ 5 × `cert_reporter_min_failure_rate`). Always critical.
//! Fingerprint: kind, domain, MX host (the result-type labels vary between reporters for
//! the same broken certificate).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::{CERT_TYPES, Ctx};
use crate::finding::{
    AnomalyKind, Explanation, Finding, Severity, conf, fingerprint, list, pct, r4,
};
use crate::input::{Day, format_day};
use crate::rollup::bump;

#[derive(Default)]
struct MxAgg {
    by_reporter: BTreeMap<String, u64>,
    by_type: BTreeMap<String, u64>,
    by_day: BTreeMap<Day, u64>,
    ips: BTreeMap<String, u64>,
    total: u64,
}

pub(crate) fn detect(ctx: &Ctx<'_>) -> Vec<Finding> {
    let th = ctx.th;
    let mut per_mx: BTreeMap<String, MxAgg> = BTreeMap::new();
    for (day, c) in ctx.window_cells(CERT_TYPES) {
        let a = per_mx.entry(c.mx.clone()).or_default();
        bump(
            a.by_reporter.entry(c.reporter.clone()).or_default(),
            c.failed,
        );
        bump(
            a.by_type.entry(c.result_type.clone()).or_default(),
            c.failed,
        );
        bump(a.by_day.entry(day).or_default(), c.failed);
        if let Some(ip) = &c.sending_ip {
            bump(a.ips.entry(ip.clone()).or_default(), c.failed);
        }
        bump(&mut a.total, c.failed);
    }
    let active = ctx.window_tls_reporters();
    let mut out = Vec::new();
    for (mx, a) in per_mx {
        if a.total < th.cert_min_failed_sessions {
            continue;
        }
        let mut active_keys: BTreeSet<&String> = active.keys().collect();
        active_keys.extend(a.by_reporter.keys());
        let mut seeing = Vec::new();
        let (mut seeing_failed, mut seeing_sessions) = (0u64, 0u64);
        for (r, failed) in &a.by_reporter {
            let sessions = active.get(r).map_or(0, |c| c.total());
            let rate = if sessions == 0 {
                1.0
            } else {
                *failed as f64 / sessions as f64
            };
            if rate >= th.cert_reporter_min_failure_rate {
                seeing.push((r.clone(), *failed, rate.min(1.0)));
                bump(&mut seeing_failed, *failed);
                bump(&mut seeing_sessions, sessions.max(*failed));
            }
        }
        let share = seeing.len() as f64 / active_keys.len().max(1) as f64;
        let only_reporter = active_keys.len() == 1 && seeing.len() == 1;
        let cluster = (seeing.len() >= 2 && share >= th.cert_min_reporter_share) || only_reporter;
        if !cluster {
            continue;
        }
        let base_total: u64 = if ctx.bdays > 0 {
            (ctx.bfrom..=ctx.bto)
                .map(|d| {
                    ctx.day_failures(d, |c| {
                        c.mx == mx && CERT_TYPES.contains(&c.result_type.as_str())
                    })
                })
                .fold(0u64, u64::saturating_add)
        } else {
            0
        };
        let base_mean = if ctx.bdays > 0 {
            base_total as f64 / f64::from(ctx.bdays)
        } else {
            0.0
        };
        let win_mean = a.total as f64 / f64::from(ctx.window.len());
        let rising = win_mean > th.cert_rise_factor * base_mean;
        let seeing_rate = seeing_failed as f64 / seeing_sessions.max(1) as f64;
        let heavy = seeing_rate >= 5.0 * th.cert_reporter_min_failure_rate;
        if !(rising || heavy) {
            continue;
        }
        let first_window_day = a.by_day.keys().next().copied().unwrap_or(ctx.window.start);
        let last_window_day = a
            .by_day
            .keys()
            .next_back()
            .copied()
            .unwrap_or(ctx.window.end);
        let first_seen = ctx.run_start(first_window_day, |d| {
            ctx.day_failures(d, |c| {
                c.mx == mx && CERT_TYPES.contains(&c.result_type.as_str())
            }) > 0
        });
        let mut types: Vec<(String, u64)> =
            a.by_type.iter().map(|(k, v)| (k.clone(), *v)).collect();
        types.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
        let dominant = types.first().map(|t| t.0.clone()).unwrap_or_default();
        let reporter_names: Vec<String> = seeing
            .iter()
            .map(|(r, _, _)| ctx.reporter_name(r))
            .collect();
        let mut ips: Vec<(String, u64)> = a.ips.into_iter().collect();
        ips.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
        ips.truncate(10);
        let affected: u64 = seeing
            .iter()
            .filter_map(|(r, _, _)| ctx.provider(r))
            .map(|p| p.estimated_affected_messages)
            .fold(0u64, u64::saturating_add);
        let dropped: Vec<String> = seeing
            .iter()
            .filter(|(r, _, _)| {
                ctx.provider(r)
                    .is_some_and(|p| p.dmarc_drop_with_tls_failures)
            })
            .map(|(r, _, _)| ctx.reporter_name(r))
            .collect();
        let reason_codes = reason_codes(ctx, &mx);
        let evidence = json!({
            "mx_host": mx,
            "result_types": a.by_type,
            "failed_sessions": a.total,
            "reporters": seeing.iter().map(|(r, n, rate)| json!({
                "reporter": r, "name": ctx.reporter_name(r), "failed_sessions": n, "failure_rate": r4(*rate)
            })).collect::<Vec<_>>(),
            "reporters_seeing": seeing.len(),
            "reporters_with_tls_data": active_keys.len(),
            "first_seen_day": first_seen,
            "first_seen": format_day(first_seen),
            "daily_failed_sessions": a.by_day.iter().map(|(d, n)| json!({"day": d, "date": format_day(*d), "failed": n})).collect::<Vec<_>>(),
            "baseline_daily_mean": r4(base_mean),
            "sending_ips": ips.iter().map(|(ip, n)| json!({"ip": ip, "failed": n})).collect::<Vec<_>>(),
            "failure_reason_codes": reason_codes,
            "estimated_affected_messages": affected,
            "dmarc_volume_dropped_for": dropped,
        });
        let confidence = if only_reporter {
            0.6
        } else {
            0.55 + 0.35 * share + if seeing.len() >= 3 { 0.05 } else { 0.0 }
        };
        let since = format_day(first_seen);
        let type_text = list(
            &types
                .iter()
                .map(|(t, n)| format!("{t} ({n})"))
                .collect::<Vec<_>>(),
        );
        let meaning = match dominant.as_str() {
            "certificate-expired" => {
                format!("The TLS certificate of {mx} has most likely expired.")
            }
            "certificate-host-mismatch" => format!(
                "The TLS certificate presented by {mx} is not valid for the name {mx} (for example it was issued for another host)."
            ),
            "certificate-not-trusted" => format!(
                "The TLS certificate of {mx} is not trusted: it is self-signed, from an unknown authority, or the intermediate certificates are missing."
            ),
            _ => format!("The TLS certificate of {mx} fails validation."),
        };
        let mut what_it_means = format!(
            "{meaning} Senders that require valid TLS for your domain (MTA-STS in enforce mode, DANE) will not deliver to this server: their mail is delayed and eventually bounced, and other senders fall back to unencrypted delivery."
        );
        if affected > 0 {
            what_it_means.push_str(&format!(
                " Judging by the mail volume these providers exchange with {}, about {affected} messages were affected in this period.",
                ctx.domain
            ));
        }
        if !dropped.is_empty() {
            what_it_means.push_str(&format!(
                " The DMARC volume from {} dropped at the same time: mail is probably being deferred or lost.",
                list(&dropped)
            ));
        }
        out.push(Finding {
            kind: AnomalyKind::TlsCertificateCluster,
            severity: Severity::Critical,
            domain: ctx.domain.to_owned(),
            window_start: first_window_day,
            window_end: last_window_day,
            evidence,
            confidence: conf(confidence),
            fingerprint: fingerprint(AnomalyKind::TlsCertificateCluster, ctx.domain, &[&mx]),
            summary: format!(
                "Certificate problem on MX {mx}: {dominant} reported by {} of {} providers since {since}",
                seeing.len(),
                active_keys.len()
            ),
            explanation: Explanation {
                what_happened: format!(
                    "Since {since}, {} reported {} failed TLS connections to your mail server {mx}: {type_text}. {} of the {} providers that send TLS reports for {} see the problem, failing on about {} of their connections.",
                    list(&reporter_names),
                    a.total,
                    seeing.len(),
                    active_keys.len(),
                    ctx.domain,
                    pct(seeing_rate.min(1.0)),
                ),
                what_it_means,
                what_to_do: format!(
                    "Fix it today: install a valid certificate on {mx} that is issued for the name {mx}, is not expired and includes the full intermediate chain, then restart the mail service and test it (for example `openssl s_client -starttls smtp -connect {mx}:25 -servername {mx}`). The failures stop appearing in the next day's reports."
                ),
                who_fixes_it: format!(
                    "Whoever runs the mail server {mx}: your IT team or your mail hosting provider."
                ),
            },
        });
    }
    out
}

/// Up to five distinct `failure-reason-code`s reported for `mx` in the window.
fn reason_codes(ctx: &Ctx<'_>, mx: &str) -> Vec<String> {
    let mut set = BTreeSet::new();
    for row in &ctx.input.tls_failures {
        let day = crate::input::day_of(row.begin.max(row.end.saturating_sub(1)));
        if !ctx.window.contains(day) {
            continue;
        }
        let host = row
            .receiving_mx_hostname
            .as_deref()
            .map(crate::rollup::norm_host);
        if host.as_deref() == Some(mx)
            && let Some(code) = &row.failure_reason_code
        {
            set.insert(code.trim().to_owned());
        }
        if set.len() >= 5 {
            break;
        }
    }
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use crate::testkit::DomainBuilder;
    use crate::{AnomalyKind, Severity, Thresholds, Window, analyze};

    fn window() -> Window {
        Window { start: 28, end: 34 }
    }

    #[test]
    fn expired_certificate_seen_by_all_reporters_is_critical() {
        let mut b = DomainBuilder::new("example.com").healthy(0, 34);
        for day in 31..=34 {
            b = b
                .tls_failure(
                    day,
                    "Google Inc.",
                    "certificate-expired",
                    "mx1.example.com",
                    "209.85.220.9",
                    120,
                )
                .tls_failure(
                    day,
                    "Mail.Ru",
                    "certificate-expired",
                    "mx1.example.com",
                    "94.100.1.1",
                    8,
                )
                .tls_failure(
                    day,
                    "Microsoft Corporation",
                    "validation-failure",
                    "mx1.example.com",
                    "40.92.0.1",
                    60,
                );
        }
        let a = analyze(&b.build(), window(), &Thresholds::default());
        let f: Vec<_> = a
            .findings
            .iter()
            .filter(|f| f.kind == AnomalyKind::TlsCertificateCluster)
            .collect();
        assert_eq!(f.len(), 1, "{:#?}", a.findings);
        let f = f[0];
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(
            f.fingerprint,
            "tls-certificate-cluster:example.com:mx1.example.com"
        );
        assert_eq!(f.window_start, 31);
        assert_eq!(f.window_end, 34);
        assert_eq!(f.evidence["mx_host"], "mx1.example.com");
        assert_eq!(f.evidence["first_seen_day"], 31);
        assert_eq!(f.evidence["reporters_seeing"], 3);
        assert_eq!(f.evidence["result_types"]["certificate-expired"], 512);
        assert!(f.explanation.what_happened.contains("mx1.example.com"));
        assert!(f.summary.contains("certificate-expired"));
        // Nothing else fires on this data.
        assert!(
            a.findings
                .iter()
                .all(|f| f.kind == AnomalyKind::TlsCertificateCluster),
            "{:#?}",
            a.findings
        );
    }

    #[test]
    fn ongoing_problem_keeps_the_same_fingerprint_and_first_day() {
        let mut b = DomainBuilder::new("example.com").healthy(0, 60);
        for day in 31..=60 {
            b = b
                .tls_failure(
                    day,
                    "Google Inc.",
                    "certificate-expired",
                    "mx1.example.com",
                    "209.85.220.9",
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
        let input = b.build();
        let a1 = analyze(
            &input,
            Window { start: 28, end: 34 },
            &Thresholds::default(),
        );
        let a2 = analyze(
            &input,
            Window { start: 54, end: 60 },
            &Thresholds::default(),
        );
        let f1 = a1
            .findings
            .iter()
            .find(|f| f.kind == AnomalyKind::TlsCertificateCluster)
            .expect("first week");
        let f2 = a2
            .findings
            .iter()
            .find(|f| f.kind == AnomalyKind::TlsCertificateCluster)
            .expect("later week");
        assert_eq!(f1.fingerprint, f2.fingerprint);
        assert_eq!(f2.evidence["first_seen_day"], 31);
    }

    #[test]
    fn one_reporter_among_many_is_not_a_cluster() {
        let mut b = DomainBuilder::new("example.com").healthy(0, 34);
        for day in 28..=34 {
            b = b.tls_failure(
                day,
                "Google Inc.",
                "certificate-not-trusted",
                "mx1.example.com",
                "209.85.220.9",
                100,
            );
        }
        let a = analyze(&b.build(), window(), &Thresholds::default());
        assert!(
            a.findings
                .iter()
                .all(|f| f.kind != AnomalyKind::TlsCertificateCluster)
        );
    }

    #[test]
    fn steady_background_noise_is_not_a_cluster() {
        let mut b = DomainBuilder::new("example.com").healthy(0, 34);
        for day in 0..=34 {
            b = b
                .tls_failure(
                    day,
                    "Google Inc.",
                    "validation-failure",
                    "mx2.example.com",
                    "209.85.220.9",
                    7,
                )
                .tls_failure(
                    day,
                    "Microsoft Corporation",
                    "validation-failure",
                    "mx2.example.com",
                    "40.92.0.1",
                    4,
                );
        }
        let a = analyze(&b.build(), window(), &Thresholds::default());
        assert!(
            a.findings
                .iter()
                .all(|f| f.kind != AnomalyKind::TlsCertificateCluster),
            "{:#?}",
            a.findings
        );
    }
}
