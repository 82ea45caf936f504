//! `reporter-silent`: a reporter that reported regularly stopped.
//!
//! Per reporter and report kind (DMARC, TLS). Its regularity is measured over the
//! `baseline_days` before its last report (from its first report on): the share of days with
//! a report must be at least `silent_min_regularity`, with at least
//! `silent_min_baseline_days` report days. Providers that report only on days they have
//! traffic (Microsoft) fall below the regularity bar and are never flagged. It is silent when
//! the days without a report up to the window's last day reach `silent_days`, raised to one
//! more than the longest gap it had in that history and to the gap a reporter of its
//! regularity would leave by chance less than once in a thousand times (days before the
//! judged day, whose own reports are not due yet), and no report of it reached us in as
//! many days before the judged day (one that reports days late is still reporting: its
//! reports keep arriving). Warning. Fingerprint: kind, domain,
//! reporter key, report kind. A reporter silent for longer than the history the caller
//! passes is no longer judged (and the finding auto-resolves): pass enough history.

use serde_json::json;

use super::Ctx;
use crate::finding::{AnomalyKind, Explanation, Finding, Severity, conf, fingerprint, pct, r4};
use crate::input::{Day, ReportKind, format_day};

/// How unlikely a gap must be, for a reporter of its regularity, to count as silence.
const SILENCE_CHANCE: f64 = 1e-3;

pub(crate) fn detect(ctx: &Ctx<'_>) -> Vec<Finding> {
    let th = ctx.th;
    let mut out = Vec::new();
    for (key, presence) in &ctx.rollup.reporters {
        for kind in [ReportKind::Dmarc, ReportKind::Tls] {
            let days = presence.days(kind);
            // The judged day's own reports are not due yet (they arrive after it ends, and a
            // nightly run judges a day that has just begun): silence is counted on the days
            // before it, so a run made later, when they have arrived, says the same.
            let Some(&last) = days.range(..ctx.window.end).next_back() else {
                continue;
            };
            let Some(&first) = days.iter().next() else {
                continue;
            };
            let gap = i64::from(ctx.window.end) - 1 - i64::from(last);
            if gap < i64::from(th.silent_days.max(1)) {
                continue;
            }
            let span_from = first
                .max(last.saturating_sub(Day::try_from(th.baseline_days).unwrap_or(Day::MAX)) + 1);
            let span_len = i64::from(last) - i64::from(span_from) + 1;
            let present: Vec<Day> = days.range(span_from..=last).copied().collect();
            if present.len() < usize::try_from(th.silent_min_baseline_days).unwrap_or(usize::MAX)
                || span_len <= 0
            {
                continue;
            }
            let regularity = present.len() as f64 / span_len as f64;
            if regularity < th.silent_min_regularity {
                continue;
            }
            let longest_gap = present
                .windows(2)
                .map(|w| i64::from(w[1]) - i64::from(w[0]) - 1)
                .max()
                .unwrap_or(0);
            // A gap this long by chance, were it reporting on each day independently with
            // its regularity, would happen less than once in a thousand gaps.
            let by_chance = if regularity < 1.0 {
                (SILENCE_CHANCE.ln() / (1.0 - regularity).ln()).ceil() as i64
            } else {
                0
            };
            let required = i64::from(th.silent_days.max(1))
                .max(longest_gap + 1)
                .max(by_chance);
            if gap < required {
                continue;
            }
            // A report of it reached us within those days, up to the judged day: it reports
            // late, it has not stopped (a report received after the judged day is not looked
            // at: nightly runs could not have seen it either).
            let quiet_from =
                Day::try_from(i64::from(ctx.window.end) - required + 1).unwrap_or(ctx.window.end);
            let still_arriving = presence
                .received(kind)
                .range(quiet_from.min(ctx.window.end)..=ctx.window.end)
                .next()
                .is_some();
            if still_arriving {
                continue;
            }
            let other = match kind {
                ReportKind::Dmarc => ReportKind::Tls,
                ReportKind::Tls => ReportKind::Dmarc,
            };
            let other_alive = presence
                .days(other)
                .range(last.saturating_add(1)..=ctx.window.end)
                .next()
                .is_some();
            let name = ctx.reporter_name(key);
            let silent_from = last.saturating_add(1);
            let kind_text = match kind {
                ReportKind::Dmarc => "DMARC aggregate",
                ReportKind::Tls => "TLS (TLS-RPT)",
            };
            let record = match kind {
                ReportKind::Dmarc => format!("_dmarc.{}", ctx.domain),
                ReportKind::Tls => format!("_smtp._tls.{}", ctx.domain),
            };
            let evidence = json!({
                "reporter": key,
                "reporter_name": name,
                "report_kind": kind.as_str(),
                "last_report_day": last,
                "last_report": format_day(last),
                "days_silent": gap,
                "regularity": r4(regularity),
                "report_days_before": present.len(),
                "longest_gap_before": longest_gap,
                "other_kind_still_reporting": other_alive,
            });
            let confidence = 0.4
                + 0.4 * regularity * ((gap as f64) / (2.0 * required as f64)).min(1.0)
                + if other_alive { 0.1 } else { 0.0 };
            out.push(Finding {
                kind: AnomalyKind::ReporterSilent,
                severity: Severity::Warning,
                domain: ctx.domain.to_owned(),
                window_start: silent_from.max(ctx.window.start),
                window_end: ctx.window.end,
                evidence,
                confidence: conf(confidence),
                fingerprint: fingerprint(AnomalyKind::ReporterSilent, ctx.domain, &[key, kind.as_str()]),
                summary: format!("{name} stopped sending {kind_text} reports after {} ({gap} days)", format_day(last)),
                explanation: Explanation {
                    what_happened: format!(
                        "{name} sent {kind_text} reports for {} on {} of the {span_len} days up to {}, and none in the {gap} days since.{}",
                        ctx.domain,
                        pct(regularity),
                        format_day(last),
                        if other_alive {
                            format!(" Its {} reports still arrive.", match other { ReportKind::Dmarc => "DMARC", ReportKind::Tls => "TLS" })
                        } else {
                            String::new()
                        }
                    ),
                    what_it_means: format!(
                        "Either the reports no longer reach us (the rua= address in the {record} record was changed or removed, or the mailbox rejects them), or {name} no longer exchanges mail with {}. While reports are missing, problems with this provider go unnoticed.",
                        ctx.domain
                    ),
                    what_to_do: format!(
                        "Check that the {record} TXT record still lists our reporting address in rua= and that the reporting mailbox accepts mail. If nothing changed, wait a few days: providers sometimes pause reports."
                    ),
                    who_fixes_it: "Whoever manages your DNS records; occasionally nobody (the provider paused reporting).".to_owned(),
                },
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::testkit::DomainBuilder;
    use crate::{AnomalyKind, Thresholds, Window, analyze};

    #[test]
    fn daily_reporter_going_silent_is_flagged() {
        // Google's TLS reports stop after day 29 (its DMARC continues).
        let mut input = DomainBuilder::new("example.com").healthy(0, 34).build();
        input
            .tls
            .retain(|p| !(p.reporter == "Google Inc." && p.begin >= crate::input::day_start(30)));
        input
            .tls_failures
            .retain(|p| !(p.reporter == "Google Inc." && p.begin >= crate::input::day_start(30)));
        input
            .reports
            .retain(|r| !(r.reporter == "Google Inc." && r.begin >= crate::input::day_start(30)));
        let a = analyze(
            &input,
            Window { start: 28, end: 34 },
            &Thresholds::default(),
        );
        let f: Vec<_> = a
            .findings
            .iter()
            .filter(|f| f.kind == AnomalyKind::ReporterSilent)
            .collect();
        assert_eq!(f.len(), 1, "{:#?}", a.findings);
        assert_eq!(f[0].fingerprint, "reporter-silent:example.com:google:tls");
        assert_eq!(f[0].evidence["last_report_day"], 29);
        // Days 30..33: the judged day's own reports are not due yet.
        assert_eq!(f[0].evidence["days_silent"], 4);
        assert_eq!(f[0].evidence["other_kind_still_reporting"], true);
        assert_eq!(f[0].window_start, 30);
        assert_eq!(a.findings.len(), 1, "{:#?}", a.findings);
    }

    /// Google's TLS reports of days 30..34 have not arrived when day 34 is judged; those of
    /// days 26..29 arrived four days late (on days 30..33).
    fn late_google(arrived_lately: bool) -> crate::DomainInput {
        let mut input = DomainBuilder::new("example.com").healthy(0, 34).build();
        let late = |begin: i64| begin >= crate::input::day_start(30);
        input
            .tls
            .retain(|p| !(p.reporter == "Google Inc." && late(p.begin)));
        input
            .tls_failures
            .retain(|p| !(p.reporter == "Google Inc." && late(p.begin)));
        input.reports.retain(|r| {
            !(r.reporter == "Google Inc."
                && r.kind == crate::ReportKind::Tls
                && r.begin >= crate::input::day_start(26))
        });
        let mut b = DomainBuilder::new("example.com");
        for day in 26..30 {
            b = b.report_received(
                day,
                "Google Inc.",
                crate::ReportKind::Tls,
                if arrived_lately { day + 4 } else { 40 },
            );
        }
        input.reports.extend(b.build().reports);
        input
    }

    #[test]
    fn a_reporter_whose_reports_still_arrive_late_is_not_silent() {
        let window = Window { start: 28, end: 34 };
        let silent = |input: &crate::DomainInput| {
            analyze(input, window, &Thresholds::default())
                .findings
                .iter()
                .filter(|f| f.kind == AnomalyKind::ReporterSilent)
                .count()
        };
        // Its reports kept arriving up to the judged day: late, not silent.
        assert_eq!(silent(&late_google(true)), 0);
        // Reports received only after the judged day (an import, a catch-up) are not looked
        // at: the days they cover decide, and five days are missing.
        assert_eq!(silent(&late_google(false)), 1);
    }

    #[test]
    fn traffic_only_reporter_is_not_flagged() {
        // Microsoft reports on weekdays only; a 4-day pause is not silence for it.
        let mut input = DomainBuilder::new("example.com").healthy(0, 34).build();
        input.tls.retain(|p| {
            !(p.reporter == "Microsoft Corporation" && p.begin >= crate::input::day_start(31))
        });
        input.reports.retain(|r| {
            !(r.reporter == "Microsoft Corporation" && r.begin >= crate::input::day_start(31))
        });
        let a = analyze(
            &input,
            Window { start: 28, end: 34 },
            &Thresholds::default(),
        );
        assert!(
            a.findings
                .iter()
                .all(|f| f.kind != AnomalyKind::ReporterSilent),
            "{:#?}",
            a.findings
        );
    }

    #[test]
    fn short_gap_is_not_silence() {
        let mut input = DomainBuilder::new("example.com").healthy(0, 34).build();
        input
            .dmarc
            .retain(|p| !(p.reporter == "Yahoo" && p.begin >= crate::input::day_start(33)));
        input
            .reports
            .retain(|r| !(r.reporter == "Yahoo" && r.begin >= crate::input::day_start(33)));
        let a = analyze(
            &input,
            Window { start: 28, end: 34 },
            &Thresholds::default(),
        );
        assert!(a.findings.is_empty(), "{:#?}", a.findings);
    }
}
