//! SPF: one record, syntax, the `all` qualifier, and the DNS-lookup budget (RFC 7208 §4.6.4:
//! at most 10 lookup terms and 2 void lookups, counted through include and redirect).

use std::future::Future;
use std::pin::Pin;

use super::mx::MxSet;
use super::{Section, could_not_check, join_and};
use crate::dns::{Answer, Dns, addresses};
use crate::record::spf::{Mechanism, Qualifier, SpfRecord, TermKind, has_macros, is_spf, merge};
use crate::report::{CheckId, Finding, Fix, Severity};

/// RFC 7208 limits.
const MAX_LOOKUPS: u32 = 10;
const MAX_VOID: u32 = 2;
/// Bounds on our own work for pathological trees.
const MAX_RECORDS_FETCHED: u32 = 40;
const MAX_DEPTH: u32 = 10;

#[derive(Debug, Default)]
struct Walk {
    lookups: u32,
    voids: u32,
    fetched: u32,
    /// Top-level terms and the lookups each costs, nested ones included.
    costs: Vec<(String, u32)>,
    missing: Vec<String>,
    loops: Vec<String>,
    nested_errors: Vec<(String, String)>,
    failed: Vec<(String, String)>,
    void_names: Vec<String>,
    stack: Vec<String>,
}

type Boxed<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Follows one record's lookup terms, depth first.
fn walk<'a, D: Dns>(
    dns: &'a D,
    domain: &'a str,
    record: &'a SpfRecord,
    w: &'a mut Walk,
    depth: u32,
) -> Boxed<'a> {
    Box::pin(async move {
        let has_all = record.all().is_some();
        for term in &record.terms {
            let before = w.lookups;
            match &term.kind {
                TermKind::Mechanism(_, Mechanism::Include(target)) => {
                    w.lookups += 1;
                    follow(dns, target, w, depth).await;
                }
                TermKind::Redirect(target) if !has_all => {
                    w.lookups += 1;
                    follow(dns, target, w, depth).await;
                }
                TermKind::Mechanism(_, Mechanism::A(target)) => {
                    w.lookups += 1;
                    let t = target.as_deref().unwrap_or(domain);
                    if !has_macros(t) {
                        match addresses(dns, t).await {
                            Answer::Records(_) => {}
                            Answer::Failed(e) => w.failed.push((t.to_owned(), e)),
                            _ => {
                                w.voids += 1;
                                w.void_names.push(format!("a:{t}"));
                            }
                        }
                    }
                }
                TermKind::Mechanism(_, Mechanism::Mx(target)) => {
                    w.lookups += 1;
                    let t = target.as_deref().unwrap_or(domain);
                    if !has_macros(t) {
                        match dns.mx(t).await {
                            Answer::Records(r) if r.len() > 10 => w.nested_errors.push((
                                t.to_owned(),
                                format!("mx:{t} has {} MX hosts; SPF allows 10", r.len()),
                            )),
                            Answer::Records(_) => {}
                            Answer::Failed(e) => w.failed.push((t.to_owned(), e)),
                            _ => {
                                w.voids += 1;
                                w.void_names.push(format!("mx:{t}"));
                            }
                        }
                    }
                }
                TermKind::Mechanism(_, Mechanism::Ptr(_)) => w.lookups += 1,
                TermKind::Mechanism(_, Mechanism::Exists(t)) => {
                    w.lookups += 1;
                    if !has_macros(t) {
                        match dns.a(t).await {
                            Answer::Records(_) => {}
                            Answer::Failed(e) => w.failed.push((t.clone(), e)),
                            _ => {
                                w.voids += 1;
                                w.void_names.push(format!("exists:{t}"));
                            }
                        }
                    }
                }
                _ => {}
            }
            if depth == 0 && w.lookups > before {
                w.costs.push((term.raw.clone(), w.lookups - before));
            }
        }
    })
}

/// Fetches and walks an include or redirect target.
async fn follow<D: Dns>(dns: &D, target: &str, w: &mut Walk, depth: u32) {
    if has_macros(target) || depth >= MAX_DEPTH || w.fetched >= MAX_RECORDS_FETCHED {
        return;
    }
    let key = target.to_ascii_lowercase();
    if w.stack.contains(&key) {
        let mut path = w.stack.clone();
        path.push(key);
        w.loops.push(path.join(" → "));
        return;
    }
    w.fetched += 1;
    let records = match dns.txt(target).await {
        Answer::Records(r) => r.into_iter().filter(|t| is_spf(t)).collect::<Vec<_>>(),
        Answer::Failed(e) => {
            w.failed.push((target.to_owned(), e));
            return;
        }
        _ => {
            w.voids += 1;
            w.void_names.push(target.to_owned());
            Vec::new()
        }
    };
    match records.as_slice() {
        [] => w.missing.push(target.to_owned()),
        [one] => {
            let parsed = SpfRecord::parse(one);
            if !parsed.errors.is_empty() {
                w.nested_errors
                    .push((target.to_owned(), parsed.errors.join("; ")));
            }
            w.stack.push(key);
            walk(dns, target, &parsed, w, depth + 1).await;
            w.stack.pop();
        }
        _ => w.nested_errors.push((
            target.to_owned(),
            format!("{target} publishes {} SPF records", records.len()),
        )),
    }
}

pub(crate) async fn check<D: Dns>(dns: &D, domain: &str, mx: &MxSet) -> Section {
    let mut s = Section::default();
    let answer = dns.txt(domain).await;
    let spf: Answer<Vec<String>> = match answer {
        Answer::Records(r) => {
            let v: Vec<String> = r.into_iter().filter(|t| is_spf(t)).collect();
            if v.is_empty() {
                Answer::NoData
            } else {
                Answer::Records(v)
            }
        }
        other => other,
    };
    s.observe(domain, "TXT", &spf);
    let records = match spf {
        Answer::Records(r) => r,
        Answer::Failed(e) => {
            s.push(Finding::new(
                CheckId::SpfCouldNotCheck,
                Severity::Unknown,
                domain,
                "SPF could not be checked",
                could_not_check(&format!("The TXT records of {domain}"), &e),
            ));
            return s;
        }
        Answer::NoData | Answer::NxDomain => {
            let (value, how) = match mx {
                MxSet::Null | MxSet::Missing | MxSet::NoDomain => (
                    "v=spf1 -all",
                    "The domain receives no mail; if it sends none either, this record says \
                     so and receivers reject forgeries outright.",
                ),
                _ => (
                    "v=spf1 mx ~all",
                    "The record below authorises your MX hosts; add an include: for every \
                     service that sends as you (your mail provider, newsletter tool, CRM) \
                     before tightening ~all to -all.",
                ),
            };
            s.push(
                Finding::new(
                    CheckId::SpfMissing,
                    Severity::Critical,
                    domain,
                    format!("{domain} has no SPF record"),
                    format!(
                        "Without SPF, receivers cannot tell your servers from anyone else's: \
                         your mail is more likely to land in spam, and DMARC can only pass on \
                         DKIM. {how}"
                    ),
                )
                .fix(Fix::txt(domain, value)),
            );
            return s;
        }
    };
    if records.len() > 1 {
        let parsed: Vec<SpfRecord> = records.iter().map(|r| SpfRecord::parse(r)).collect();
        s.push(
            Finding::new(
                CheckId::SpfMultiple,
                Severity::Critical,
                domain,
                format!("{domain} publishes {} SPF records", records.len()),
                "A domain may publish only one v=spf1 record (RFC 7208 §4.5). With two, every \
                 receiver returns \"permerror\": SPF fails for all your mail, and DMARC can \
                 only pass on DKIM. Merge them into one record.",
            )
            .found(records.join("\n"))
            .fix(Fix::txt(domain, merge(&parsed))),
        );
        return s;
    }
    let raw = records.into_iter().next().unwrap_or_default();
    let record = SpfRecord::parse(&raw);
    let finding = |id, sev, summary: String, why: String| {
        Finding::new(id, sev, domain, summary, why).found(raw.clone())
    };
    if !record.errors.is_empty() {
        let mut f = finding(
            CheckId::SpfSyntax,
            Severity::Critical,
            "the SPF record has syntax errors".to_owned(),
            format!(
                "Receivers return \"permerror\" for a record they cannot parse, so SPF fails \
                 for all your mail. Problems: {}.",
                record.errors.join("; ")
            ),
        );
        let cleaned = record.cleaned();
        if cleaned != "v=spf1" {
            f = f.fix(Fix::txt(domain, cleaned));
        }
        s.push(f);
        return s;
    }
    match (record.all(), record.redirect()) {
        (Some(Qualifier::Pass), _) => s.push(
            finding(
                CheckId::SpfPassAll,
                Severity::Critical,
                "the SPF record ends in +all: anyone may send as you".to_owned(),
                "\"+all\" authorises every server on the internet to send mail as this \
                 domain, which makes SPF worthless and helps spammers forge your address. End \
                 the record with -all (or ~all while you check your senders)."
                    .to_owned(),
            )
            .fix(Fix::txt(domain, record.with_all(Qualifier::Fail))),
        ),
        (Some(Qualifier::Neutral), _) => s.push(
            finding(
                CheckId::SpfNeutralAll,
                Severity::Warning,
                "the SPF record ends in ?all, which protects nothing".to_owned(),
                "\"?all\" tells receivers to treat mail from unlisted servers as if there \
                 were no SPF record, so forgeries are not flagged. Use ~all (soft fail) or \
                 -all (fail)."
                    .to_owned(),
            )
            .fix(Fix::txt(domain, record.with_all(Qualifier::SoftFail))),
        ),
        (Some(Qualifier::SoftFail), _) => s.push(finding(
            CheckId::SpfSoftFailAll,
            Severity::Info,
            "the SPF record ends in ~all (soft fail)".to_owned(),
            "Mail from unlisted servers is marked suspicious rather than rejected. With a \
             DMARC policy of quarantine or reject that is the usual choice; -all is stricter."
                .to_owned(),
        )),
        (None, None) => s.push(
            finding(
                CheckId::SpfNoAll,
                Severity::Warning,
                "the SPF record has no all mechanism".to_owned(),
                "Without a closing all (and without redirect=), mail from servers the record \
                 does not list gets \"neutral\" — the same as having no SPF for them. End the \
                 record with ~all or -all."
                    .to_owned(),
            )
            .fix(Fix::txt(domain, record.with_all(Qualifier::SoftFail))),
        ),
        _ => {}
    }
    if record.uses_ptr() {
        s.push(
            finding(
                CheckId::SpfPtr,
                Severity::Warning,
                "the SPF record uses the deprecated ptr mechanism".to_owned(),
                "\"ptr\" is slow, unreliable and deprecated (RFC 7208 §5.5); some receivers \
                 ignore it, so mail it was meant to authorise can fail SPF. Replace it with \
                 ip4:/ip6: or include: terms."
                    .to_owned(),
            )
            .fix(Fix::txt(domain, record.cleaned())),
        );
    }

    let mut w = Walk {
        stack: vec![domain.to_ascii_lowercase()],
        ..Walk::default()
    };
    walk(dns, domain, &record, &mut w, 0).await;
    let breakdown = join_and(
        &w.costs
            .iter()
            .map(|(t, n)| format!("{t} ({n})"))
            .collect::<Vec<_>>(),
    );
    if w.lookups > MAX_LOOKUPS {
        s.push(finding(
            CheckId::SpfTooManyLookups,
            Severity::Critical,
            format!(
                "SPF needs {} DNS lookups; the limit is {MAX_LOOKUPS}",
                w.lookups
            ),
            format!(
                "Receivers stop evaluating SPF after {MAX_LOOKUPS} lookups (include, a, mx, \
                 ptr, exists, redirect — counted through every include) and return \
                 \"permerror\", so SPF fails for your mail. Lookups per term: {breakdown}. \
                 Remove includes for services you no longer use, replace a and mx with ip4:/ip6: \
                 ranges, or move senders to subdomains with their own SPF records."
            ),
        ));
    }
    if w.voids > MAX_VOID {
        s.push(finding(
            CheckId::SpfTooManyVoidLookups,
            Severity::Critical,
            format!(
                "SPF makes {} lookups that find nothing; the limit is {MAX_VOID}",
                w.voids
            ),
            format!(
                "Receivers return \"permerror\" after more than {MAX_VOID} lookups that return \
                 no records (RFC 7208 §4.6.4). These find nothing: {}. Remove them.",
                join_and(&w.void_names)
            ),
        ));
    }
    for target in &w.missing {
        s.push(finding(
            CheckId::SpfIncludeMissing,
            Severity::Critical,
            format!("{target} has no SPF record to include"),
            format!(
                "The record includes {target}, which publishes no SPF record. Receivers \
                 return \"permerror\" for the whole check, so SPF fails for all your mail. \
                 Fix the name or remove the include."
            ),
        ));
    }
    for path in &w.loops {
        s.push(finding(
            CheckId::SpfIncludeLoop,
            Severity::Critical,
            "the SPF record includes itself in a loop".to_owned(),
            format!(
                "The includes form a loop ({path}); receivers stop with \"permerror\" and SPF \
                 fails for all your mail. Break the loop."
            ),
        ));
    }
    for (target, why) in &w.nested_errors {
        s.push(finding(
            CheckId::SpfSyntax,
            Severity::Critical,
            format!("an included SPF record ({target}) is broken"),
            format!(
                "{why}. Receivers return \"permerror\" when any included record is broken, so \
                 SPF fails for all your mail."
            ),
        ));
    }
    if !w.failed.is_empty() && w.lookups <= MAX_LOOKUPS {
        let names: Vec<String> = w.failed.iter().map(|(n, _)| n.clone()).collect();
        let err = w.failed.first().map(|(_, e)| e.clone()).unwrap_or_default();
        s.push(Finding::new(
            CheckId::SpfCouldNotCheck,
            Severity::Unknown,
            domain,
            "part of the SPF record could not be checked",
            could_not_check(
                &format!("{} (used by the SPF record)", join_and(&names)),
                &err,
            ),
        ));
    }
    if !s.findings.iter().any(|f| {
        matches!(
            f.severity,
            Severity::Warning | Severity::Critical | Severity::Unknown
        )
    }) {
        s.push(finding(
            CheckId::SpfOk,
            Severity::Ok,
            format!(
                "valid SPF record, {} of {MAX_LOOKUPS} DNS lookups",
                w.lookups
            ),
            "One valid SPF record within the lookup limits.".to_owned(),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::fake::FakeDns;

    fn run(dns: &FakeDns) -> Section {
        crate::block_on(check(dns, "x.test", &MxSet::Hosts(Vec::new())))
    }

    fn ids(s: &Section) -> Vec<CheckId> {
        s.findings.iter().map(|f| f.check).collect()
    }

    #[test]
    fn counts_lookups_through_includes() {
        let mut dns =
            FakeDns::default().txt("x.test", "v=spf1 include:a.x.test include:b.x.test -all");
        dns = dns
            .txt("a.x.test", "v=spf1 include:c.x.test mx -all")
            .mx("a.x.test", 10, "m.x.test");
        dns = dns.txt("b.x.test", "v=spf1 ip4:192.0.2.0/24 -all");
        dns = dns
            .txt("c.x.test", "v=spf1 a -all")
            .a("c.x.test", "192.0.2.1");
        let s = run(&dns);
        assert_eq!(ids(&s), vec![CheckId::SpfOk]);
        assert!(
            s.findings[0].summary.contains("5 of 10"),
            "{}",
            s.findings[0].summary
        );
    }

    #[test]
    fn too_many_lookups() {
        let terms: Vec<String> = (0..11).map(|i| format!("include:i{i}.x.test")).collect();
        let mut dns = FakeDns::default().txt("x.test", &format!("v=spf1 {} -all", terms.join(" ")));
        for i in 0..11 {
            dns = dns.txt(&format!("i{i}.x.test"), "v=spf1 ip4:192.0.2.1 -all");
        }
        let s = run(&dns);
        assert!(ids(&s).contains(&CheckId::SpfTooManyLookups));
        assert!(
            s.findings
                .iter()
                .any(|f| f.summary.contains("11 DNS lookups"))
        );
    }

    #[test]
    fn loops_missing_includes_and_voids() {
        let dns = FakeDns::default()
            .txt("x.test", "v=spf1 include:l.x.test -all")
            .txt("l.x.test", "v=spf1 include:x.test -all");
        assert!(ids(&run(&dns)).contains(&CheckId::SpfIncludeLoop));
        let dns = FakeDns::default()
            .txt("x.test", "v=spf1 include:nothing.x.test -all")
            .txt("nothing.x.test", "hello");
        assert!(ids(&run(&dns)).contains(&CheckId::SpfIncludeMissing));
        let dns = FakeDns::default().txt(
            "x.test",
            "v=spf1 a:v1.x.test a:v2.x.test exists:v3.x.test -all",
        );
        assert!(ids(&run(&dns)).contains(&CheckId::SpfTooManyVoidLookups));
    }

    #[test]
    fn qualifiers_duplicates_and_failures() {
        let dns = FakeDns::default().txt("x.test", "v=spf1 +all");
        let s = run(&dns);
        assert_eq!(ids(&s), vec![CheckId::SpfPassAll]);
        assert!(
            s.findings[0].fixes[0]
                .to_string()
                .contains("\"v=spf1 -all\"")
        );
        let dns = FakeDns::default()
            .txt("x.test", "v=spf1 mx -all")
            .txt("x.test", "v=spf1 ip4:192.0.2.1 ~all");
        let s = run(&dns);
        assert_eq!(ids(&s), vec![CheckId::SpfMultiple]);
        assert!(
            s.findings[0].fixes[0]
                .to_string()
                .contains("v=spf1 mx ip4:192.0.2.1 -all")
        );
        let dns = FakeDns::default().failing("x.test");
        assert_eq!(ids(&run(&dns)), vec![CheckId::SpfCouldNotCheck]);
        let dns = FakeDns::default()
            .txt("x.test", "v=spf1 include:slow.x.test -all")
            .failing("slow.x.test");
        assert_eq!(ids(&run(&dns)), vec![CheckId::SpfCouldNotCheck]);
    }
}
