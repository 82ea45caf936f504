//! BIMI: `default._bimi` syntax, and DMARC at enforcement (which BIMI requires).

use super::dmarc::DmarcOutcome;
use super::{Section, could_not_check};
use crate::dns::{Answer, Dns};
use crate::record::bimi::{BimiRecord, is_bimi};
use crate::record::dmarc::Policy;
use crate::report::{CheckId, Finding, Fix, Severity};

pub(crate) async fn check<D: Dns>(dns: &D, domain: &str, dmarc: &DmarcOutcome) -> Section {
    let mut s = Section::default();
    let name = format!("default._bimi.{domain}");
    let answer = match dns.txt(&name).await {
        Answer::Records(r) => {
            let v: Vec<String> = r.into_iter().filter(|t| is_bimi(t)).collect();
            if v.is_empty() {
                Answer::NoData
            } else {
                Answer::Records(v)
            }
        }
        other => other,
    };
    s.observe(&name, "TXT", &answer);
    let records = match answer {
        Answer::Records(r) => r,
        Answer::Failed(e) => {
            s.push(Finding::new(
                CheckId::BimiCouldNotCheck,
                Severity::Unknown,
                &name,
                "BIMI could not be checked",
                could_not_check(&format!("The TXT record at {name}"), &e),
            ));
            return s;
        }
        Answer::NoData | Answer::NxDomain => {
            s.push(Finding::new(
                CheckId::BimiMissing,
                Severity::Info,
                &name,
                "no BIMI record (optional)",
                "BIMI shows your logo next to your mail in some mailbox providers. It is \
                 optional and requires DMARC at quarantine or reject.",
            ));
            return s;
        }
    };
    let raw = records.join("\n");
    let finding = |id, sev, summary: String, why: String| {
        Finding::new(id, sev, &name, summary, why).found(raw.clone())
    };
    if records.len() > 1 {
        s.push(finding(
            CheckId::BimiInvalid,
            Severity::Warning,
            format!("{name} holds {} BIMI records", records.len()),
            "Mailbox providers ignore BIMI when there is more than one record. Keep one."
                .to_owned(),
        ));
        return s;
    }
    let record = match BimiRecord::parse(&records[0]) {
        Ok(r) => r,
        Err(e) => {
            s.push(finding(
                CheckId::BimiInvalid,
                Severity::Warning,
                "the BIMI record is invalid".to_owned(),
                format!("{e}. Mailbox providers ignore it, so no logo is shown."),
            ));
            return s;
        }
    };
    if record.declined() {
        s.push(finding(
            CheckId::BimiDeclined,
            Severity::Info,
            "BIMI declined (empty l=)".to_owned(),
            "An empty l= says the domain does not want a logo shown.".to_owned(),
        ));
        return s;
    }
    if !record.problems.is_empty() {
        s.push(finding(
            CheckId::BimiInvalid,
            Severity::Warning,
            "the BIMI record has errors".to_owned(),
            format!(
                "{}. Mailbox providers ignore a record with errors, so no logo is shown.",
                record.problems.join("; ")
            ),
        ));
    }
    if record.authority.is_none() {
        s.push(finding(
            CheckId::BimiNoCertificate,
            Severity::Info,
            "no mark certificate (a=)".to_owned(),
            "Gmail and Apple Mail show BIMI logos only with a Verified or Common Mark \
             Certificate (a=); without one the logo appears only at providers that do not \
             require it."
                .to_owned(),
        ));
    }
    match dmarc {
        DmarcOutcome::Found(d) if d.at_enforcement() => {}
        DmarcOutcome::Unknown => {}
        other => {
            let (why, fix) = match other {
                DmarcOutcome::Found(d) => {
                    let mut why = format!("The DMARC policy is p={}", d.effective_policy());
                    if let Some(p) = d.pct.filter(|p| *p < 100) {
                        why.push_str(&format!(" with pct={p}"));
                    }
                    if d.testing {
                        why.push_str(" in test mode (t=y)");
                    }
                    let mut tags = d.tags.clone();
                    if !d.effective_policy().is_enforcing() {
                        tags.set("p", Policy::Quarantine.as_str());
                    }
                    tags.remove("pct");
                    tags.remove("t");
                    (
                        why,
                        Some(Fix::txt(format!("_dmarc.{domain}"), tags.to_string())),
                    )
                }
                _ => ("There is no usable DMARC record".to_owned(), None),
            };
            let mut f = finding(
                CheckId::BimiDmarcNotEnforced,
                Severity::Warning,
                "BIMI is published but DMARC is not at enforcement".to_owned(),
                format!(
                    "{why}. Mailbox providers show a BIMI logo only when DMARC is at \
                     quarantine or reject for all mail (no pct below 100), so the logo is not \
                     displayed. Move DMARC to enforcement once your reports are clean."
                ),
            );
            if let Some(fx) = fix {
                f = f.fix(fx);
            }
            s.push(f);
        }
    }
    if !s
        .findings
        .iter()
        .any(|f| matches!(f.severity, Severity::Warning | Severity::Critical))
    {
        s.push(finding(
            CheckId::BimiOk,
            Severity::Ok,
            "valid BIMI record, DMARC at enforcement".to_owned(),
            "Mailbox providers that support BIMI can show your logo.".to_owned(),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::fake::FakeDns;
    use crate::record::dmarc::DmarcRecord;

    #[test]
    fn bimi_needs_enforcement() {
        let dns = FakeDns::default().txt(
            "default._bimi.x.test",
            "v=BIMI1; l=https://x.test/l.svg; a=https://x.test/v.pem",
        );
        let none = DmarcOutcome::Found(DmarcRecord::parse("v=DMARC1; p=none").expect("valid"));
        let s = crate::block_on(check(&dns, "x.test", &none));
        let f = s
            .findings
            .iter()
            .find(|f| f.check == CheckId::BimiDmarcNotEnforced)
            .expect("finding");
        assert!(f.fixes[0].to_string().contains("p=quarantine"));
        let reject = DmarcOutcome::Found(DmarcRecord::parse("v=DMARC1; p=reject").expect("valid"));
        let s = crate::block_on(check(&dns, "x.test", &reject));
        assert_eq!(s.findings[0].check, CheckId::BimiOk);
    }
}
