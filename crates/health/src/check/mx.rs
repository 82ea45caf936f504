//! MX: present, null MX, every host resolvable.

use std::future::Future;
use std::net::IpAddr;

use super::{Section, could_not_check, join_and};
use crate::dns::{Answer, Dns, addresses};
use crate::report::{CheckId, Finding, Fix, MxHost, Severity};

/// What the other checks need to know about the MX set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MxSet {
    /// Real MX hosts (possibly some unresolvable).
    Hosts(Vec<MxHost>),
    /// Only the null MX: the domain receives no mail.
    Null,
    /// No MX records (mail goes to the domain's own address, if any).
    Missing,
    /// The domain does not exist.
    NoDomain,
    /// The MX lookup failed.
    Unknown,
}

impl MxSet {
    pub(crate) fn hosts(&self) -> &[MxHost] {
        match self {
            Self::Hosts(h) => h,
            _ => &[],
        }
    }
}

pub(crate) async fn check<D: Dns>(dns: &D, domain: &str) -> (Section, MxSet) {
    let mut s = Section::default();
    let answer = dns.mx(domain).await;
    s.observe(
        domain,
        "MX",
        &match &answer {
            Answer::Records(v) => Answer::Records(
                v.iter()
                    .map(|m| {
                        format!(
                            "{} {}",
                            m.preference,
                            if m.exchange.is_empty() {
                                "."
                            } else {
                                &m.exchange
                            }
                        )
                    })
                    .collect::<Vec<_>>(),
            ),
            Answer::NoData => Answer::NoData,
            Answer::NxDomain => Answer::NxDomain,
            Answer::Failed(e) => Answer::Failed(e.clone()),
        },
    );
    let mut records =
        match answer {
            Answer::Records(r) => r,
            Answer::NxDomain => {
                s.push(Finding::new(
                    CheckId::DomainNotFound,
                    Severity::Critical,
                    domain,
                    format!("{domain} does not exist in DNS"),
                    format!(
                        "The name server answered that {domain} does not exist (NXDOMAIN). Mail to \
                     and from it bounces, and every other check fails with it. Check the \
                     spelling, the registration and the delegation of the domain."
                    ),
                ));
                return (s, MxSet::NoDomain);
            }
            Answer::NoData => {
                s.push(Finding::new(
                CheckId::MxMissing,
                Severity::Warning,
                domain,
                format!("{domain} has no MX record"),
                format!(
                    "Without an MX record, senders try to deliver to the address of {domain} \
                     itself, which is rarely a mail server, and bounces and DMARC reports to \
                     the domain can go astray. Publish the MX records of your mail provider; \
                     if {domain} never receives mail, publish a null MX instead (RFC 7505) so \
                     senders fail fast."
                ),
            )
            .fix(Fix::Dns {
                name: domain.to_owned(),
                rtype: "MX".to_owned(),
                value: "0 .".to_owned(),
            }));
                return (s, MxSet::Missing);
            }
            Answer::Failed(e) => {
                s.push(Finding::new(
                    CheckId::MxCouldNotCheck,
                    Severity::Unknown,
                    domain,
                    "the MX records could not be checked",
                    could_not_check(&format!("The MX records of {domain}"), &e),
                ));
                return (s, MxSet::Unknown);
            }
        };
    records.sort_by(|a, b| (a.preference, &a.exchange).cmp(&(b.preference, &b.exchange)));
    let found: String = records
        .iter()
        .map(|m| {
            format!(
                "{} {}",
                m.preference,
                if m.exchange.is_empty() {
                    "."
                } else {
                    &m.exchange
                }
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let null = records.iter().any(|m| m.exchange.is_empty());
    if null {
        if records.len() == 1 {
            s.push(
                Finding::new(
                    CheckId::MxNull,
                    Severity::Info,
                    domain,
                    format!("{domain} publishes a null MX: it receives no mail"),
                    "A null MX (RFC 7505) tells senders that this domain accepts no mail, so \
                     messages to it fail at once instead of being retried for days. That is \
                     right for a domain that only sends, or sends nothing. MTA-STS and TLS-RPT \
                     do not apply.",
                )
                .found(found),
            );
            return (s, MxSet::Null);
        }
        s.push(
            Finding::new(
                CheckId::MxNullMixed,
                Severity::Critical,
                domain,
                "a null MX is published together with other MX records",
                "A null MX (\"0 .\") says the domain receives no mail; published beside real \
                 MX records it is invalid (RFC 7505 §3) and senders behave unpredictably: some \
                 bounce all mail. Remove the null MX if the domain receives mail, or remove \
                 the other MX records if it does not.",
            )
            .found(found.clone()),
        );
        records.retain(|m| !m.exchange.is_empty());
    }

    let lookups = records.iter().map(|m| addresses(dns, &m.exchange));
    let answers = futures_join_all(lookups).await;
    let mut hosts = Vec::new();
    let mut problems = false;
    for (m, answer) in records.iter().zip(answers) {
        s.observe(
            &m.exchange,
            "A/AAAA",
            &match &answer {
                Answer::Records(v) => Answer::Records(v.clone()),
                Answer::NoData => Answer::NoData,
                Answer::NxDomain => Answer::NxDomain,
                Answer::Failed(e) => Answer::Failed(e.clone()),
            },
        );
        if m.exchange.parse::<IpAddr>().is_ok()
            || m.exchange
                .split('.')
                .all(|l| l.chars().all(|c| c.is_ascii_digit()))
        {
            problems = true;
            s.push(
                Finding::new(
                    CheckId::MxHostIpLiteral,
                    Severity::Critical,
                    &m.exchange,
                    format!("the MX record points at an IP address ({})", m.exchange),
                    "An MX record must name a host, not an address (RFC 5321 §5.1). Senders \
                     look up the \"host\" as a name, find nothing and cannot deliver. Point the \
                     MX at a host name whose A/AAAA record holds the address.",
                )
                .found(found.clone()),
            );
        }
        let addrs = match answer {
            Answer::Records(a) => a,
            Answer::NxDomain | Answer::NoData => {
                problems = true;
                s.push(
                    Finding::new(
                        CheckId::MxHostUnresolvable,
                        Severity::Critical,
                        &m.exchange,
                        format!("MX host {} has no address", m.exchange),
                        format!(
                            "The MX record (priority {}) names {}, which has no A or AAAA \
                             record. Senders cannot deliver to it: mail is delayed and \
                             eventually bounced if it is the only MX. Fix the host name in \
                             the MX record or publish its address.",
                            m.preference, m.exchange,
                        ),
                    )
                    .found(found.clone()),
                );
                Vec::new()
            }
            Answer::Failed(e) => {
                s.push(Finding::new(
                    CheckId::MxCouldNotCheck,
                    Severity::Unknown,
                    &m.exchange,
                    format!("the address of MX host {} could not be checked", m.exchange),
                    could_not_check(&format!("The address of {}", m.exchange), &e),
                ));
                Vec::new()
            }
        };
        hosts.push(MxHost {
            preference: m.preference,
            host: m.exchange.clone(),
            addresses: addrs,
        });
    }
    if !problems {
        let described: Vec<String> = hosts
            .iter()
            .map(|h| {
                let addrs: Vec<String> = h.addresses.iter().map(ToString::to_string).collect();
                format!("{} {} ({})", h.preference, h.host, addrs.join(", "))
            })
            .collect();
        s.push(
            Finding::new(
                CheckId::MxOk,
                Severity::Ok,
                domain,
                format!(
                    "{} MX host{}: {}",
                    hosts.len(),
                    if hosts.len() == 1 { "" } else { "s" },
                    join_and(&described)
                ),
                "Every MX host resolves to an address; lower priority numbers are tried first.",
            )
            .found(found),
        );
    }
    (s, MxSet::Hosts(hosts))
}

/// Awaits futures concurrently, keeping their order.
pub(crate) async fn futures_join_all<F: Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    futures_util::future::join_all(futures).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::fake::FakeDns;

    fn run(dns: &FakeDns, domain: &str) -> (Section, MxSet) {
        crate::block_on(check(dns, domain))
    }

    #[test]
    fn good_mx_hosts() {
        let dns = FakeDns::default()
            .mx("x.test", 20, "mx2.x.test")
            .mx("x.test", 10, "mx1.x.test")
            .a("mx1.x.test", "192.0.2.1")
            .a("mx2.x.test", "192.0.2.2");
        let (s, set) = run(&dns, "x.test");
        assert_eq!(set.hosts().len(), 2);
        assert_eq!(set.hosts()[0].host, "mx1.x.test");
        assert_eq!(s.findings.len(), 1);
        assert_eq!(s.findings[0].check, CheckId::MxOk);
    }

    #[test]
    fn null_missing_and_dangling() {
        let dns = FakeDns::default().mx("x.test", 0, "");
        assert_eq!(run(&dns, "x.test").1, MxSet::Null);
        let dns = FakeDns::default().txt("x.test", "v=spf1 -all");
        let (s, set) = run(&dns, "x.test");
        assert_eq!(set, MxSet::Missing);
        assert_eq!(s.findings[0].check, CheckId::MxMissing);
        let dns = FakeDns::default().mx("x.test", 10, "gone.x.test");
        let (s, _) = run(&dns, "x.test");
        assert_eq!(s.findings[0].check, CheckId::MxHostUnresolvable);
        assert_eq!(s.findings[0].severity, Severity::Critical);
        let dns = FakeDns::default()
            .mx("x.test", 0, "")
            .mx("x.test", 10, "mx.x.test")
            .a("mx.x.test", "192.0.2.1");
        let (s, _) = run(&dns, "x.test");
        assert!(s.findings.iter().any(|f| f.check == CheckId::MxNullMixed));
    }

    #[test]
    fn failures_are_unknown_not_missing() {
        let dns = FakeDns::default().failing("x.test");
        let (s, set) = run(&dns, "x.test");
        assert_eq!(set, MxSet::Unknown);
        assert_eq!(s.findings[0].severity, Severity::Unknown);
        let dns = FakeDns::default().txt("z.test", "x");
        let (s, set) = run(&dns, "x.test");
        assert_eq!(set, MxSet::NoDomain);
        assert_eq!(s.findings[0].check, CheckId::DomainNotFound);
    }
}
