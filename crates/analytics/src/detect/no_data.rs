//! `no-data`: no report at all arrived for the domain in the window.
//!
//! Warning when the domain had reports before the window (something broke) or the caller says
//! it should receive reports (`DomainInput::expect_reports`); info for a domain that never
//! had any (how to publish `rua`). A domain that never had a report is not flagged in the
//! first `no_data_grace_days` after it was added (`DomainInput::added_day`): its first
//! reports may still be on their way. Fingerprint: kind, domain. When it fires, the other
//! detectors are not run.

use serde_json::json;

use super::Ctx;
use crate::finding::{AnomalyKind, Explanation, Finding, Severity, fingerprint};
use crate::input::format_day;

pub(crate) fn detect(ctx: &Ctx<'_>) -> Option<Finding> {
    let (s, e) = (ctx.window.start, ctx.window.end);
    if ctx.rollup.any_data(s, e) {
        return None;
    }
    let domain = ctx.domain;
    let never = ctx.rollup.reporters.is_empty();
    let in_grace = ctx.input.added_day.is_some_and(|added| {
        e >= added && i64::from(e) < i64::from(added) + i64::from(ctx.th.no_data_grace_days)
    });
    if never && in_grace {
        return None;
    }
    let last_before = ctx.rollup.last_day.filter(|d| *d < s).or_else(|| {
        // `last_day` may lie after the window when the caller passes later data.
        let mut last = None;
        for p in ctx.rollup.reporters.values() {
            for d in p
                .dmarc_days
                .range(..s)
                .next_back()
                .into_iter()
                .chain(p.tls_days.range(..s).next_back())
            {
                last = last.max(Some(*d));
            }
        }
        last
    });
    let records = format!(
        "_dmarc.{domain} TXT \"v=DMARC1; p=none; rua=mailto:<your reporting address>\" and _smtp._tls.{domain} TXT \"v=TLSRPTv1; rua=mailto:<your reporting address>\""
    );
    let (severity, confidence, summary, what_happened, what_it_means, what_to_do) = if let Some(
        last,
    ) =
        last_before
    {
        (
            Severity::Warning,
            0.9,
            format!("No DMARC or TLS reports for {domain} since {}", format_day(last)),
            format!(
                "No DMARC or TLS report arrived for {domain} from {} to {}; the last one covered {}.",
                format_day(s),
                format_day(e),
                format_day(last)
            ),
            "Reports used to arrive, so most likely the rua= address in your DMARC or TLS-RPT record was changed or removed, the DNS records were lost, or the reporting mailbox stopped accepting mail. Until reports return, nothing about this domain's mail can be checked.".to_owned(),
            format!("Check that these records still exist and point at your reporting address: {records}. Also check that the reporting mailbox is reachable and not full."),
        )
    } else if ctx.input.expect_reports {
        (
            Severity::Warning,
            0.7,
            format!("No DMARC or TLS reports have ever arrived for {domain}"),
            format!("No report arrived for {domain} from {} to {}, and none before.", format_day(s), format_day(e)),
            "The domain is expected to receive reports, but none came: the DNS records may be missing or wrong, or reports are sent to another address.".to_owned(),
            format!("Publish or correct these records: {records}. Reports usually start within one to two days."),
        )
    } else {
        (
            Severity::Info,
            0.5,
            format!("No reports yet for {domain}: publish rua= records to start monitoring"),
            format!("No DMARC or TLS report has arrived for {domain} yet."),
            "Mail providers send daily reports only to addresses the domain publishes in DNS. Without them there is nothing to analyse yet; a brand-new domain or one that sends little mail may also simply have no reports so far.".to_owned(),
            format!("Publish {records}. If the reporting address is on another domain, that domain must also authorise it (a <your domain>._report._dmarc TXT \"v=DMARC1\" record). Reports usually start within one to two days."),
        )
    };
    Some(Finding {
        kind: AnomalyKind::NoData,
        severity,
        domain: domain.to_owned(),
        window_start: s,
        window_end: e,
        evidence: json!({
            "window_start": format_day(s),
            "window_end": format_day(e),
            "last_report_day": last_before,
            "last_report": last_before.map(format_day),
            "expect_reports": ctx.input.expect_reports,
            "reporters_before": ctx.rollup.reporters.keys().collect::<Vec<_>>(),
        }),
        confidence,
        fingerprint: fingerprint(AnomalyKind::NoData, domain, &[]),
        summary,
        explanation: Explanation {
            what_happened,
            what_it_means,
            what_to_do,
            who_fixes_it: "Whoever manages your DNS records.".to_owned(),
        },
    })
}

#[cfg(test)]
mod tests {
    use crate::testkit::DomainBuilder;
    use crate::{AnomalyKind, Severity, Thresholds, Window, analyze};

    fn window() -> Window {
        Window { start: 28, end: 34 }
    }

    #[test]
    fn domain_that_stopped_receiving_reports() {
        let a = analyze(
            &DomainBuilder::new("example.com").healthy(0, 20).build(),
            window(),
            &Thresholds::default(),
        );
        assert_eq!(a.findings.len(), 1, "{:#?}", a.findings);
        let f = &a.findings[0];
        assert_eq!(f.kind, AnomalyKind::NoData);
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.evidence["last_report_day"], 20);
        assert_eq!(f.fingerprint, "no-data:example.com");
    }

    #[test]
    fn brand_new_domain_gets_info() {
        let a = analyze(
            &DomainBuilder::new("new.example").build(),
            window(),
            &Thresholds::default(),
        );
        assert_eq!(a.findings.len(), 1);
        assert_eq!(a.findings[0].severity, Severity::Info);
        assert!(
            a.findings[0]
                .explanation
                .what_to_do
                .contains("_dmarc.new.example")
        );
        let a = analyze(
            &DomainBuilder::new("new.example")
                .expect_reports(true)
                .build(),
            window(),
            &Thresholds::default(),
        );
        assert_eq!(a.findings[0].severity, Severity::Warning);
    }

    #[test]
    fn an_empty_report_is_still_data() {
        let input = DomainBuilder::new("example.com")
            .healthy(0, 20)
            .report(30, "Google Inc.", crate::ReportKind::Tls)
            .build();
        let a = analyze(&input, window(), &Thresholds::default());
        assert!(a.findings.iter().all(|f| f.kind != AnomalyKind::NoData));
    }
}
