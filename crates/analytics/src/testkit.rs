//! A small builder of [`DomainInput`] for tests (ours and the callers'): one call per daily
//! report row, with sensible defaults, plus [`DomainBuilder::healthy`] — a realistic healthy
//! domain with a dozen-ish streams of daily traffic.
//!
//! ```
//! use sealwatch_analytics::testkit::DomainBuilder;
//! let input = DomainBuilder::new("example.com")
//!     .healthy(0, 27)
//!     .tls_failure(27, "Google Inc.", "certificate-expired", "mx1.example.com", "209.85.220.1", 40)
//!     .build();
//! assert!(!input.reports.is_empty());
//! ```

use std::collections::BTreeSet;

use crate::input::{
    Day, DmarcRow, DomainInput, ReportKind, ReportSeen, SECS_PER_DAY, TlsFailureRow, TlsPolicyRow,
    day_start,
};

/// Builds a [`DomainInput`] day by day. Every row covers one whole UTC day.
#[derive(Debug, Clone)]
pub struct DomainBuilder {
    input: DomainInput,
    auto_reports: bool,
}

fn range(day: Day) -> (i64, i64) {
    (day_start(day), day_start(day) + SECS_PER_DAY)
}

impl DomainBuilder {
    /// An empty domain.
    pub fn new(domain: &str) -> Self {
        DomainBuilder {
            input: DomainInput {
                tenant_id: 1,
                domain_id: 1,
                domain: domain.to_owned(),
                ..Default::default()
            },
            auto_reports: true,
        }
    }

    /// Sets `expect_reports`.
    pub fn expect_reports(mut self, yes: bool) -> Self {
        self.input.expect_reports = yes;
        self
    }

    /// Do not derive [`ReportSeen`] entries from rows in [`build`](Self::build).
    pub fn without_auto_reports(mut self) -> Self {
        self.auto_reports = false;
        self
    }

    /// A DMARC row: `messages` from `ip`, `passed` of them DKIM- and SPF-aligned; the failing
    /// ones are quarantined, the passing ones delivered.
    pub fn dmarc(self, day: Day, reporter: &str, ip: &str, messages: u64, passed: u64) -> Self {
        let (begin, end) = range(day);
        let passed = passed.min(messages);
        self.dmarc_row(DmarcRow {
            begin,
            end,
            reporter: reporter.to_owned(),
            source_ip: ip.to_owned(),
            header_from: None,
            messages,
            dkim_aligned: passed,
            spf_aligned: passed,
            disposition_none: passed,
            disposition_quarantine: messages - passed,
            disposition_reject: 0,
            forwarded: 0,
        })
    }

    /// Any DMARC row.
    pub fn dmarc_row(mut self, row: DmarcRow) -> Self {
        let mut row = row;
        if row.header_from.is_none() {
            row.header_from = Some(self.input.domain.clone());
        }
        self.input.dmarc.push(row);
        self
    }

    /// An MTA-STS (`enforce`) policy row with `mx1.` and `mx2.` of the domain.
    pub fn tls(self, day: Day, reporter: &str, successful: u64, failed: u64) -> Self {
        let (begin, end) = range(day);
        let d = self.input.domain.clone();
        self.tls_policy(TlsPolicyRow {
            begin,
            end,
            reporter: reporter.to_owned(),
            policy_type: "sts".into(),
            policy_domain: Some(d.clone()),
            sts_mode: Some("enforce".into()),
            mx_hosts: vec![format!("mx1.{d}"), format!("mx2.{d}")],
            successful,
            failed,
        })
    }

    /// Any TLS policy row.
    pub fn tls_policy(mut self, row: TlsPolicyRow) -> Self {
        self.input.tls.push(row);
        self
    }

    /// A failure detail; its count is also added to that reporter's policy row of the day
    /// (created with zero successes when missing; `tlsa` for DANE result types, else `sts`).
    pub fn tls_failure(
        mut self,
        day: Day,
        reporter: &str,
        result_type: &str,
        mx: &str,
        sending_ip: &str,
        failed: u64,
    ) -> Self {
        let (begin, end) = range(day);
        let policy_type = if matches!(
            result_type,
            "tlsa-invalid" | "dnssec-invalid" | "dane-required"
        ) {
            "tlsa"
        } else {
            "sts"
        };
        let existing =
            self.input.tls.iter_mut().find(|p| {
                p.begin == begin && p.reporter == reporter && p.policy_type == policy_type
            });
        match existing {
            Some(p) => p.failed += failed,
            None => {
                let d = self.input.domain.clone();
                self.input.tls.push(TlsPolicyRow {
                    begin,
                    end,
                    reporter: reporter.to_owned(),
                    policy_type: policy_type.into(),
                    policy_domain: Some(if policy_type == "tlsa" {
                        mx.to_owned()
                    } else {
                        d.clone()
                    }),
                    sts_mode: (policy_type == "sts").then(|| "enforce".to_owned()),
                    mx_hosts: vec![format!("mx1.{d}"), format!("mx2.{d}")],
                    successful: 0,
                    failed,
                });
            }
        }
        self.input.tls_failures.push(TlsFailureRow {
            begin,
            end,
            reporter: reporter.to_owned(),
            policy_type: policy_type.into(),
            result_type: result_type.to_owned(),
            sending_mta_ip: Some(sending_ip.to_owned()),
            receiving_mx_hostname: Some(mx.to_owned()),
            receiving_ip: None,
            failed,
            failure_reason_code: None,
            additional_information: None,
        });
        self
    }

    /// Like [`tls_failure`](Self::tls_failure), with the `receiving-ip` the sender reached.
    #[allow(clippy::too_many_arguments)]
    pub fn tls_failure_at(
        self,
        day: Day,
        reporter: &str,
        result_type: &str,
        mx: &str,
        sending_ip: &str,
        receiving_ip: &str,
        failed: u64,
    ) -> Self {
        let mut b = self.tls_failure(day, reporter, result_type, mx, sending_ip, failed);
        if let Some(row) = b.input.tls_failures.last_mut() {
            row.receiving_ip = Some(receiving_ip.to_owned());
        }
        b
    }

    /// The addresses MX host `mx` resolves to ([`DomainInput::mx_addresses`]).
    pub fn mx_addresses(mut self, mx: &str, addresses: &[&str]) -> Self {
        self.input.mx_addresses.insert(
            mx.trim_end_matches('.').to_ascii_lowercase(),
            addresses.iter().map(|a| (*a).to_owned()).collect(),
        );
        self
    }

    /// Sets the MTA-STS mode of every `sts` policy row built so far.
    pub fn sts_mode(mut self, mode: &str) -> Self {
        for p in &mut self.input.tls {
            if p.policy_type == "sts" {
                p.sts_mode = Some(mode.to_owned());
            }
        }
        self
    }

    /// A report that arrived (possibly empty).
    pub fn report(mut self, day: Day, reporter: &str, kind: ReportKind) -> Self {
        let (begin, end) = range(day);
        self.input.reports.push(ReportSeen {
            begin,
            end,
            reporter: reporter.to_owned(),
            kind,
            received: None,
        });
        self
    }

    /// A report of `day` that reached us on day `received` (a late reporter).
    pub fn report_received(
        mut self,
        day: Day,
        reporter: &str,
        kind: ReportKind,
        received: Day,
    ) -> Self {
        let (begin, end) = range(day);
        self.input.reports.push(ReportSeen {
            begin,
            end,
            reporter: reporter.to_owned(),
            kind,
            received: Some(day_start(received) + 3_600),
        });
        self
    }

    /// A reverse-DNS / organisation name for an IP.
    pub fn source_name(mut self, ip: &str, name: &str) -> Self {
        self.input
            .source_names
            .insert(ip.to_owned(), name.to_owned());
        self
    }

    /// Healthy traffic on every day of `from..=to`:
    ///
    /// - Google: DMARC 200 + 50 messages a day from `192.0.2.10` (the domain's own server)
    ///   and `198.51.100.20` (an ESP), all passing; TLS 300 successful sessions a day, and one
    ///   `validation-failure` every third day from `209.85.220.1` (background noise);
    /// - Microsoft (`Outlook.com` / `Microsoft Corporation`): reports only on weekdays (days
    ///   with traffic), DMARC 100, TLS 150;
    /// - Yahoo: DMARC 60 a day, no TLS reports;
    /// - Mail.ru: DMARC 10 and TLS 20 every other day;
    /// - a mailing list at `203.0.113.50` forwarding 5 messages a day that fail DMARC.
    pub fn healthy(mut self, from: Day, to: Day) -> Self {
        for day in from..=to {
            self = self
                .dmarc(day, "google.com", "192.0.2.10", 200, 200)
                .dmarc(day, "google.com", "198.51.100.20", 50, 50)
                .dmarc(day, "google.com", "203.0.113.50", 5, 0)
                .tls(day, "Google Inc.", 300, 0)
                .dmarc(day, "Yahoo", "192.0.2.10", 60, 60);
            if day.rem_euclid(3) == 0 {
                let d = self.input.domain.clone();
                self = self.tls_failure(
                    day,
                    "Google Inc.",
                    "validation-failure",
                    &format!("mx2.{d}"),
                    "209.85.220.1",
                    1,
                );
            }
            // 1970-01-01 was a Thursday: day % 7 == 2 is Saturday, 3 is Sunday.
            if !matches!(day.rem_euclid(7), 2 | 3) {
                self = self.dmarc(day, "Outlook.com", "192.0.2.10", 100, 100).tls(
                    day,
                    "Microsoft Corporation",
                    150,
                    0,
                );
            }
            if day.rem_euclid(2) == 0 {
                self = self
                    .dmarc(day, "Mail.Ru", "192.0.2.10", 10, 10)
                    .tls(day, "Mail.Ru", 20, 0);
            }
        }
        self
    }

    /// The input; unless [`without_auto_reports`](Self::without_auto_reports), one
    /// [`ReportSeen`] per reporter, kind and day that has rows.
    pub fn build(mut self) -> DomainInput {
        if self.auto_reports {
            let mut seen: BTreeSet<(i64, i64, String, ReportKind)> = self
                .input
                .reports
                .iter()
                .map(|r| (r.begin, r.end, r.reporter.clone(), r.kind))
                .collect();
            let derived: Vec<(i64, i64, String, ReportKind)> = self
                .input
                .dmarc
                .iter()
                .map(|r| (r.begin, r.end, r.reporter.clone(), ReportKind::Dmarc))
                .chain(
                    self.input
                        .tls
                        .iter()
                        .map(|r| (r.begin, r.end, r.reporter.clone(), ReportKind::Tls)),
                )
                .collect();
            for key in derived {
                if seen.insert(key.clone()) {
                    self.input.reports.push(ReportSeen {
                        begin: key.0,
                        end: key.1,
                        reporter: key.2,
                        kind: key.3,
                        received: None,
                    });
                }
            }
        }
        self.input
    }
}
