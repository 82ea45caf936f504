//! DMARC: one record at `_dmarc`, syntax, policy strength, report destinations (ours among
//! them?) and the external-destination authorisation records (RFC 7489 §7.1).

use super::{Section, could_not_check, join_and};
use crate::dns::{Answer, Dns};
use crate::record::dmarc::{DmarcRecord, Policy, is_dmarc};
use crate::record::uri::UriKind;
use crate::report::{CheckId, Finding, Fix, Severity};

/// What BIMI and the report need from the DMARC check.
#[derive(Debug, Clone)]
pub(crate) enum DmarcOutcome {
    /// The record that applies (the domain's own or inherited from a parent).
    Found(DmarcRecord),
    /// No usable record.
    None,
    /// The lookup failed.
    Unknown,
}

/// The organisational domain, approximated as the last two labels (no public suffix list):
/// good enough to decide whether a report address is "external", erring towards checking.
fn org_domain(name: &str) -> String {
    let labels: Vec<&str> = name.trim_end_matches('.').split('.').collect();
    let n = labels.len();
    if n <= 2 {
        name.to_ascii_lowercase()
    } else {
        labels[n - 2..].join(".").to_ascii_lowercase()
    }
}

/// Queries `_dmarc.<name>` and keeps the DMARC records.
async fn lookup<D: Dns>(dns: &D, name: &str) -> Answer<Vec<String>> {
    match dns.txt(&format!("_dmarc.{name}")).await {
        Answer::Records(r) => {
            let v: Vec<String> = r.into_iter().filter(|t| is_dmarc(t)).collect();
            if v.is_empty() {
                Answer::NoData
            } else {
                Answer::Records(v)
            }
        }
        other => other,
    }
}

pub(crate) async fn check<D: Dns>(
    dns: &D,
    domain: &str,
    ours: &[String],
) -> (Section, DmarcOutcome) {
    let mut s = Section::default();
    // Of our addresses, suggest one that is not meant for TLS reports first.
    let mut ours_sorted: Vec<String> = ours.to_vec();
    ours_sorted.sort_by_key(|a| a.split('@').next().is_some_and(|l| l.contains("tls")));
    let ours = ours_sorted.as_slice();
    let mut record_domain = domain.to_owned();
    let mut answer = lookup(dns, domain).await;
    s.observe(&format!("_dmarc.{domain}"), "TXT", &answer);
    // DMARC falls back to the organisational domain: walk up while more than two labels.
    if answer.is_absent() {
        let mut name = domain.to_owned();
        while let Some((_, parent)) = name.split_once('.') {
            if !parent.contains('.') {
                break;
            }
            let a = lookup(dns, parent).await;
            name = parent.to_owned();
            if !a.is_absent() {
                record_domain = name.clone();
                answer = a;
                break;
            }
        }
    }
    let record_name = format!("_dmarc.{record_domain}");
    let records = match answer {
        Answer::Records(r) => r,
        Answer::Failed(e) => {
            s.push(Finding::new(
                CheckId::DmarcCouldNotCheck,
                Severity::Unknown,
                &record_name,
                "DMARC could not be checked",
                could_not_check(&format!("The TXT record at {record_name}"), &e),
            ));
            return (s, DmarcOutcome::Unknown);
        }
        Answer::NoData | Answer::NxDomain => {
            let rua = ours
                .first()
                .map(|a| format!("; rua=mailto:{a}"))
                .unwrap_or_default();
            s.push(
                Finding::new(
                    CheckId::DmarcMissing,
                    Severity::Critical,
                    &record_name,
                    format!("{domain} has no DMARC record"),
                    format!(
                        "Without DMARC, receivers have no instruction for mail that fails SPF \
                         and DKIM, so anyone can send mail that appears to come from {domain}, \
                         and nobody sends you reports about it. Start with p=none and a rua= \
                         address to collect reports, then move to quarantine and reject."
                    ),
                )
                .fix(Fix::txt(&record_name, format!("v=DMARC1; p=none{rua}"))),
            );
            return (s, DmarcOutcome::None);
        }
    };
    if records.len() > 1 {
        s.push(
            Finding::new(
                CheckId::DmarcMultiple,
                Severity::Critical,
                &record_name,
                format!("{record_name} holds {} DMARC records", records.len()),
                "With more than one DMARC record, receivers ignore all of them (RFC 7489 \
                 §6.6.3): no policy is applied and no reports are sent. Keep exactly one.",
            )
            .found(records.join("\n"))
            .fix(Fix::txt(&record_name, records[0].clone())),
        );
        return (s, DmarcOutcome::None);
    }
    let raw = records.into_iter().next().unwrap_or_default();
    let record = match DmarcRecord::parse(&raw) {
        Ok(r) => r,
        Err(e) => {
            let rua = ours
                .first()
                .map(|a| format!("; rua=mailto:{a}"))
                .unwrap_or_default();
            s.push(
                Finding::new(
                    CheckId::DmarcSyntax,
                    Severity::Critical,
                    &record_name,
                    "the DMARC record cannot be parsed",
                    format!(
                        "{e}. Receivers ignore a record they cannot parse, as if there were no \
                         DMARC at all."
                    ),
                )
                .found(raw.clone())
                .fix(Fix::txt(&record_name, format!("v=DMARC1; p=none{rua}"))),
            );
            return (s, DmarcOutcome::None);
        }
    };
    let finding = |id, sev, summary: String, why: String| {
        Finding::new(id, sev, &record_name, summary, why).found(raw.clone())
    };
    if record_domain != domain {
        s.push(finding(
            CheckId::DmarcInherited,
            Severity::Info,
            format!("{domain} has no DMARC record of its own; {record_domain}'s applies"),
            format!(
                "Receivers fall back to the organisational domain's record, using its sp= \
                 policy ({}) for {domain}.",
                record
                    .subdomain_policy
                    .or(record.policy)
                    .unwrap_or(Policy::None)
            ),
        ));
    }
    if !record.problems.is_empty() {
        let policy_broken = record.policy.is_none();
        s.push(
            finding(
                CheckId::DmarcSyntax,
                if policy_broken {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                "the DMARC record has invalid values".to_owned(),
                format!(
                    "{}. Receivers ignore invalid values{}.",
                    record.problems.join("; "),
                    if policy_broken {
                        ", and without a valid p= the record gives no policy at all"
                    } else {
                        ""
                    }
                ),
            )
            .fix(Fix::txt(&record_name, record.cleaned())),
        );
    }
    let policy = record.effective_policy();
    if record.policy == Some(Policy::None) {
        s.push(
            finding(
                CheckId::DmarcPolicyNone,
                Severity::Warning,
                "DMARC policy is p=none: forged mail is still delivered".to_owned(),
                format!(
                    "p=none only asks for reports; mail that fails DMARC is delivered as \
                     usual, so {domain} can still be spoofed. Once the reports show that all \
                     your legitimate senders pass, move to p=quarantine and then p=reject."
                ),
            )
            .fix(Fix::txt(&record_name, record.with_tag("p", "quarantine"))),
        );
    }
    if policy.is_enforcing() {
        for (tag, value) in [
            ("sp", record.subdomain_policy),
            ("np", record.nonexistent_policy),
        ] {
            if value == Some(Policy::None) {
                s.push(
                    finding(
                        CheckId::DmarcWeakerSubdomainPolicy,
                        Severity::Warning,
                        format!("{tag}=none undoes the policy for subdomains"),
                        format!(
                            "p={policy} protects {domain}, but {tag}=none lets forged mail from \
                             {} subdomains through — spoofers simply use one. Remove {tag}= \
                             (subdomains then inherit p=).",
                            if tag == "sp" { "its" } else { "non-existent" }
                        ),
                    )
                    .fix(Fix::txt(&record_name, record.without_tag(tag))),
                );
            }
        }
    }
    if let Some(pct) = record.pct
        && pct < 100
        && policy.is_enforcing()
    {
        s.push(
            finding(
                CheckId::DmarcPartialPct,
                Severity::Warning,
                format!("pct={pct}: the policy applies to only {pct}% of failing mail"),
                format!(
                    "The other {}% of mail failing DMARC is treated one step more leniently. \
                     pct is meant for a short rollout; remove it once reports look clean. \
                     (DMARCbis drops pct.)",
                    100 - u32::from(pct)
                ),
            )
            .fix(Fix::txt(&record_name, record.without_tag("pct"))),
        );
    }
    if record.testing {
        s.push(
            finding(
                CheckId::DmarcTestMode,
                Severity::Warning,
                "t=y: the DMARC policy is in test mode".to_owned(),
                "t=y asks receivers to apply a policy one step weaker than published. Remove \
                 it when the rollout is done."
                    .to_owned(),
            )
            .fix(Fix::txt(&record_name, record.without_tag("t"))),
        );
    }
    let rua_addresses: Vec<String> = record
        .rua
        .iter()
        .filter_map(|u| u.address().map(str::to_owned))
        .collect();
    if rua_addresses.is_empty() {
        let mut f = finding(
            CheckId::DmarcNoRua,
            Severity::Warning,
            "no aggregate report address (rua=)".to_owned(),
            "Without rua=, receivers send no aggregate reports, so you cannot see who sends \
             mail as your domain or whether your own mail passes."
                .to_owned(),
        );
        if let Some(a) = ours.first() {
            f = f.fix(Fix::txt(&record_name, record.with_rua(a)));
        }
        s.push(f);
    } else if !ours.is_empty() && !rua_addresses.iter().any(|a| ours.contains(a)) {
        s.push(
            finding(
                CheckId::DmarcRuaNotUs,
                Severity::Warning,
                "aggregate reports are not sent to us".to_owned(),
                format!(
                    "rua= lists {}, but not {}: the reports we analyse for you do not reach \
                     us. Add our address (you can keep the others).",
                    join_and(&rua_addresses),
                    join_and(ours)
                ),
            )
            .fix(Fix::txt(&record_name, record.with_rua(&ours[0]))),
        );
    }
    // External destinations must authorise themselves (RFC 7489 §7.1).
    let mut external: Vec<(String, String)> = Vec::new();
    for u in record.rua.iter().chain(record.ruf.iter()) {
        if let UriKind::Mailto { domain: d, .. } = &u.kind
            && org_domain(d) != org_domain(&record_domain)
            && !external.iter().any(|(x, _)| x == d)
        {
            external.push((d.clone(), u.raw.clone()));
        }
    }
    for (dest, uri) in &external {
        let name = format!("{record_domain}._report._dmarc.{dest}");
        let answer = match dns.txt(&name).await {
            Answer::Records(r) => {
                let v: Vec<String> = r.into_iter().filter(|t| is_dmarc(t)).collect();
                if v.is_empty() {
                    Answer::NoData
                } else {
                    Answer::Records(v)
                }
            }
            other => other,
        };
        s.observe(&name, "TXT", &answer);
        match answer {
            Answer::Records(_) => {}
            Answer::NoData | Answer::NxDomain => s.push(
                Finding::new(
                    CheckId::DmarcRuaUnauthorised,
                    Severity::Warning,
                    &name,
                    format!("{dest} has not authorised reports for {record_domain}"),
                    format!(
                        "{uri} is in another domain, so receivers first check that {dest} \
                         agrees to receive reports for {record_domain} by looking for a TXT \
                         record at {name}. It is missing, so receivers discard the reports \
                         for that address. The owner of {dest} must publish it."
                    ),
                )
                .found(raw.clone())
                .fix(Fix::txt(&name, "v=DMARC1")),
            ),
            Answer::Failed(e) => s.push(Finding::new(
                CheckId::DmarcCouldNotCheck,
                Severity::Unknown,
                &name,
                format!("the report authorisation of {dest} could not be checked"),
                could_not_check(&format!("The TXT record at {name}"), &e),
            )),
        }
    }
    if !s.findings.iter().any(|f| {
        matches!(
            f.severity,
            Severity::Warning | Severity::Critical | Severity::Unknown
        )
    }) {
        s.push(finding(
            CheckId::DmarcOk,
            Severity::Ok,
            format!(
                "DMARC p={policy}{}",
                if rua_addresses.is_empty() {
                    String::new()
                } else {
                    format!(", reports to {}", join_and(&rua_addresses))
                }
            ),
            "One valid DMARC record with an enforcing policy and report addresses.".to_owned(),
        ));
    }
    (s, DmarcOutcome::Found(record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::fake::FakeDns;

    fn run(dns: &FakeDns, domain: &str) -> (Section, DmarcOutcome) {
        crate::block_on(check(dns, domain, &["d@sealwatch.test".to_owned()]))
    }

    fn ids(s: &Section) -> Vec<CheckId> {
        s.findings.iter().map(|f| f.check).collect()
    }

    #[test]
    fn good_record_with_authorised_external_rua() {
        let dns = FakeDns::default()
            .txt(
                "_dmarc.x.test",
                "v=DMARC1; p=reject; rua=mailto:d@sealwatch.test",
            )
            .txt("x.test._report._dmarc.sealwatch.test", "v=DMARC1");
        let (s, out) = run(&dns, "x.test");
        assert_eq!(ids(&s), vec![CheckId::DmarcOk]);
        assert!(matches!(out, DmarcOutcome::Found(_)));
    }

    #[test]
    fn weak_and_unauthorised() {
        let dns = FakeDns::default()
            .txt(
                "_dmarc.x.test",
                "v=DMARC1; p=none; rua=mailto:r@elsewhere.test",
            )
            .txt("elsewhere.test", "v=spf1 -all");
        let (s, _) = run(&dns, "x.test");
        let got = ids(&s);
        assert!(got.contains(&CheckId::DmarcPolicyNone));
        assert!(got.contains(&CheckId::DmarcRuaNotUs));
        assert!(got.contains(&CheckId::DmarcRuaUnauthorised));
        let unauth = s
            .findings
            .iter()
            .find(|f| f.check == CheckId::DmarcRuaUnauthorised)
            .expect("finding");
        assert_eq!(
            unauth.fixes[0].to_string(),
            "x.test._report._dmarc.elsewhere.test. IN TXT \"v=DMARC1\""
        );
    }

    #[test]
    fn same_org_rua_needs_no_authorisation_and_parent_is_inherited() {
        let dns = FakeDns::default().txt(
            "_dmarc.x.test",
            "v=DMARC1; p=reject; rua=mailto:d@reports.x.test,mailto:d@sealwatch.test",
        );
        let dns = dns.txt("x.test._report._dmarc.sealwatch.test", "v=DMARC1");
        let (s, _) = run(&dns, "mail.x.test");
        assert_eq!(ids(&s), vec![CheckId::DmarcInherited, CheckId::DmarcOk]);
    }

    #[test]
    fn missing_multiple_and_failed() {
        let (s, _) = run(&FakeDns::default().txt("x.test", "v=spf1 -all"), "x.test");
        assert_eq!(ids(&s), vec![CheckId::DmarcMissing]);
        assert!(
            s.findings[0].fixes[0]
                .to_string()
                .contains("rua=mailto:d@sealwatch.test")
        );
        let dns = FakeDns::default()
            .txt("_dmarc.x.test", "v=DMARC1; p=reject")
            .txt("_dmarc.x.test", "v=DMARC1; p=none");
        assert_eq!(ids(&run(&dns, "x.test").0), vec![CheckId::DmarcMultiple]);
        let dns = FakeDns::default().failing("_dmarc.x.test");
        assert_eq!(
            ids(&run(&dns, "x.test").0),
            vec![CheckId::DmarcCouldNotCheck]
        );
    }
}
