//! TLS-RPT: `_smtp._tls` TXT `v=TLSRPTv1; rua=...`, and whether it reports to us.

use super::mx::MxSet;
use super::{Section, could_not_check, join_and};
use crate::dns::{Answer, Dns};
use crate::record::tlsrpt::{TlsRptRecord, is_tlsrpt};
use crate::report::{CheckId, Finding, Fix, Severity, TlsRptState};

pub(crate) async fn check<D: Dns>(
    dns: &D,
    domain: &str,
    mx: &MxSet,
    ours: &[String],
) -> (Section, TlsRptState) {
    let mut s = Section::default();
    let name = format!("_smtp._tls.{domain}");
    if matches!(mx, MxSet::Null | MxSet::Missing | MxSet::NoDomain) {
        s.push(Finding::new(
            CheckId::TlsRptNotApplicable,
            Severity::Info,
            domain,
            "TLS-RPT does not apply: the domain has no mail servers",
            "TLS reports describe deliveries to your MX hosts; without MX hosts there are none.",
        ));
        return (s, TlsRptState::NotApplicable);
    }
    let answer = match dns.txt(&name).await {
        Answer::Records(r) => {
            let v: Vec<String> = r.into_iter().filter(|t| is_tlsrpt(t)).collect();
            if v.is_empty() {
                Answer::NoData
            } else {
                Answer::Records(v)
            }
        }
        other => other,
    };
    s.observe(&name, "TXT", &answer);
    // Of our addresses, prefer one meant for TLS reports.
    let preferred = ours
        .iter()
        .find(|a| a.split('@').next().is_some_and(|l| l.contains("tls")))
        .or(ours.first());
    let suggested = preferred
        .map(|a| format!("v=TLSRPTv1; rua=mailto:{a}"))
        .unwrap_or_else(|| format!("v=TLSRPTv1; rua=mailto:tls-reports@{domain}"));
    let records = match answer {
        Answer::Records(r) => r,
        Answer::Failed(e) => {
            s.push(Finding::new(
                CheckId::TlsRptCouldNotCheck,
                Severity::Unknown,
                &name,
                "TLS-RPT could not be checked",
                could_not_check(&format!("The TXT record at {name}"), &e),
            ));
            return (s, TlsRptState::Unknown);
        }
        Answer::NoData | Answer::NxDomain => {
            s.push(
                Finding::new(
                    CheckId::TlsRptMissing,
                    Severity::Warning,
                    &name,
                    format!("{domain} does not ask for TLS reports"),
                    format!(
                        "Without a TLS-RPT record, sending servers never tell you when they \
                         could not deliver to {domain} securely (expired certificate, broken \
                         STARTTLS, MTA-STS problems), so such failures go unnoticed until \
                         mail is lost."
                    ),
                )
                .fix(Fix::txt(&name, suggested)),
            );
            return (s, TlsRptState::Absent);
        }
    };
    if records.len() > 1 {
        s.push(
            Finding::new(
                CheckId::TlsRptMultiple,
                Severity::Critical,
                &name,
                format!("{name} holds {} TLS-RPT records", records.len()),
                "With more than one v=TLSRPTv1 record, senders use none (RFC 8460 §3) and \
                 send no reports. Keep exactly one; several destinations go in one rua=, \
                 separated by commas.",
            )
            .found(records.join("\n"))
            .fix(Fix::txt(&name, records[0].clone())),
        );
        return (s, TlsRptState::Broken);
    }
    let raw = records.into_iter().next().unwrap_or_default();
    let record = match TlsRptRecord::parse(&raw) {
        Ok(r) => r,
        Err(e) => {
            s.push(
                Finding::new(
                    CheckId::TlsRptInvalid,
                    Severity::Critical,
                    &name,
                    "the TLS-RPT record is invalid",
                    format!("{e}. Senders ignore an invalid record and send no reports."),
                )
                .found(raw.clone())
                .fix(Fix::txt(&name, suggested)),
            );
            return (s, TlsRptState::Broken);
        }
    };
    let finding = |id, sev, summary: String, why: String| {
        Finding::new(id, sev, &name, summary, why).found(raw.clone())
    };
    if !record.problems.is_empty() {
        s.push(finding(
            CheckId::TlsRptInvalid,
            Severity::Warning,
            "some TLS report destinations are invalid".to_owned(),
            format!(
                "{}. Reports for those destinations are not delivered; destinations must be \
                 mailto: or https: URIs.",
                record.problems.join("; ")
            ),
        ));
    }
    let addresses: Vec<String> = record
        .rua
        .iter()
        .filter_map(|u| u.address().map(str::to_owned))
        .collect();
    if !ours.is_empty() && !addresses.iter().any(|a| ours.contains(a)) {
        s.push(
            finding(
                CheckId::TlsRptNotUs,
                Severity::Warning,
                "TLS reports are not sent to us".to_owned(),
                format!(
                    "rua= lists {}, but not {}: the TLS reports we analyse for you do not \
                     reach us. Add our address (several destinations are allowed).",
                    join_and(&record.rua.iter().map(|u| u.raw.clone()).collect::<Vec<_>>()),
                    join_and(ours)
                ),
            )
            .fix(Fix::txt(
                &name,
                record.with_rua(preferred.unwrap_or(&ours[0])),
            )),
        );
    }
    if !s
        .findings
        .iter()
        .any(|f| matches!(f.severity, Severity::Warning | Severity::Critical))
    {
        s.push(finding(
            CheckId::TlsRptOk,
            Severity::Ok,
            format!(
                "TLS reports go to {}",
                join_and(&record.rua.iter().map(|u| u.raw.clone()).collect::<Vec<_>>())
            ),
            "A valid TLS-RPT record.".to_owned(),
        ));
    }
    (s, TlsRptState::Present)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::fake::FakeDns;

    fn run(dns: &FakeDns) -> (Section, TlsRptState) {
        crate::block_on(check(
            dns,
            "x.test",
            &MxSet::Hosts(Vec::new()),
            &["t@sealwatch.test".into()],
        ))
    }

    #[test]
    fn states() {
        let dns = FakeDns::default().txt(
            "_smtp._tls.x.test",
            "v=TLSRPTv1; rua=mailto:t@sealwatch.test",
        );
        let (s, st) = run(&dns);
        assert_eq!(st, TlsRptState::Present);
        assert_eq!(s.findings[0].check, CheckId::TlsRptOk);
        let dns =
            FakeDns::default().txt("_smtp._tls.x.test", "v=TLSRPTv1; rua=mailto:t@other.test");
        let (s, _) = run(&dns);
        assert_eq!(s.findings[0].check, CheckId::TlsRptNotUs);
        assert!(
            s.findings[0].fixes[0]
                .to_string()
                .contains("mailto:t@other.test,mailto:t@sealwatch.test")
        );
        let (s, st) = run(&FakeDns::default().txt("x.test", "v=spf1 -all"));
        assert_eq!(
            (s.findings[0].check, st),
            (CheckId::TlsRptMissing, TlsRptState::Absent)
        );
        let (s, st) = run(&FakeDns::default().failing("_smtp._tls.x.test"));
        assert_eq!(
            (s.findings[0].severity, st),
            (Severity::Unknown, TlsRptState::Unknown)
        );
    }
}
