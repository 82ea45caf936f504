//! Blocklists: every MX address against IP lists (DNSBL, RFC 5782 reversed-octet queries),
//! the domain against domain lists. A list that "lists" the RFC 5782 never-listed test entry
//! (127.0.0.1 for IP lists, a random name for domain lists) answers for everything — a
//! wildcard, a hijacking resolver, or a list that blocks our resolver — and is ignored.

use std::net::{IpAddr, Ipv4Addr};

use super::mx::{MxSet, futures_join_all};
use super::{Section, could_not_check, join_and};
use crate::dns::{Answer, Dns};
use crate::report::{CheckId, Finding, Severity};

/// The DNSBL query name of an address: reversed octets (IPv4) or nibbles (IPv6).
pub(crate) fn reversed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut nibbles: Vec<String> = Vec::with_capacity(32);
            for b in v6.octets().iter().rev() {
                nibbles.push(format!("{:x}", b & 0x0f));
                nibbles.push(format!("{:x}", b >> 4));
            }
            nibbles.join(".")
        }
    }
}

/// What an A answer from a list means.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    NotListed,
    Listed(Vec<Ipv4Addr>),
    /// 127.255.255.x: the list refuses to answer this resolver (public resolver, rate limit).
    Refused(Ipv4Addr),
    /// An answer outside 127.0.0.0/8: not a list answer (a redirecting resolver).
    Bogus(Ipv4Addr),
    Failed(String),
}

fn verdict(answer: Answer<Vec<Ipv4Addr>>) -> Verdict {
    match answer {
        Answer::NoData | Answer::NxDomain => Verdict::NotListed,
        Answer::Failed(e) => Verdict::Failed(e),
        Answer::Records(addrs) => {
            if let Some(r) = addrs.iter().find(|a| a.octets()[..3] == [127, 255, 255]) {
                Verdict::Refused(*r)
            } else if let Some(b) = addrs.iter().find(|a| a.octets()[0] != 127) {
                Verdict::Bogus(*b)
            } else {
                Verdict::Listed(addrs)
            }
        }
    }
}

pub(crate) struct Lists<'a> {
    pub ip: &'a [String],
    pub domain: &'a [String],
    /// A random label for the never-listed domain probe.
    pub random_label: &'a str,
}

pub(crate) async fn check<D: Dns>(dns: &D, domain: &str, mx: &MxSet, lists: &Lists<'_>) -> Section {
    let mut s = Section::default();
    if lists.ip.is_empty() && lists.domain.is_empty() {
        return s;
    }
    // 1. Probe every list with an entry that must never be listed.
    let probes: Vec<(String, bool, String)> = lists
        .ip
        .iter()
        .map(|z| (z.clone(), true, format!("1.0.0.127.{z}")))
        .chain(lists.domain.iter().map(|z| {
            (
                z.clone(),
                false,
                format!("{}.invalid.{z}", lists.random_label),
            )
        }))
        .collect();
    let probe_answers = futures_join_all(probes.iter().map(|(_, _, q)| dns.a(q))).await;
    let mut usable_ip = Vec::new();
    let mut usable_domain = Vec::new();
    let mut unknown: Vec<(String, String)> = Vec::new();
    for ((zone, is_ip, query), answer) in probes.iter().zip(probe_answers) {
        match verdict(answer) {
            Verdict::NotListed => {
                if *is_ip {
                    usable_ip.push(zone.clone());
                } else {
                    usable_domain.push(zone.clone());
                }
            }
            Verdict::Listed(_) | Verdict::Bogus(_) => s.push(Finding::new(
                CheckId::BlocklistUnusable,
                Severity::Info,
                zone,
                format!("blocklist {zone} answers for everything and was ignored"),
                format!(
                    "{zone} claims to list {query}, which no working list ever lists (RFC \
                     5782 §5). It is a wildcard, a resolver that rewrites answers, or a list \
                     that blocks our queries; its answers mean nothing, so it was skipped."
                ),
            )),
            Verdict::Refused(code) => unknown.push((
                zone.clone(),
                format!("the list refused to answer this resolver (code {code})"),
            )),
            Verdict::Failed(e) => unknown.push((zone.clone(), e)),
        }
    }
    // 2. The real queries.
    let mut queries: Vec<(String, String, String)> = Vec::new(); // (zone, what, query)
    for zone in &usable_ip {
        for host in mx.hosts() {
            for ip in &host.addresses {
                queries.push((
                    zone.clone(),
                    format!("{ip} ({})", host.host),
                    format!("{}.{zone}", reversed(*ip)),
                ));
            }
        }
    }
    for zone in &usable_domain {
        queries.push((zone.clone(), domain.to_owned(), format!("{domain}.{zone}")));
    }
    let answers = futures_join_all(queries.iter().map(|(_, _, q)| dns.a(q))).await;
    let mut listed = 0usize;
    for ((zone, what, query), answer) in queries.iter().zip(answers) {
        let is_ip = usable_ip.contains(zone) && what != domain;
        match verdict(answer) {
            Verdict::NotListed => {}
            Verdict::Listed(codes) => {
                listed += 1;
                let reason = match dns.txt(query).await {
                    Answer::Records(t) => format!(" The list says: \"{}\".", t.join(" ")),
                    _ => String::new(),
                };
                let codes: Vec<String> = codes.iter().map(ToString::to_string).collect();
                let (id, why) = if is_ip {
                    (
                        CheckId::BlocklistMxListed,
                        format!(
                            "Your mail server {what} is on the {zone} blocklist (answer {}).{reason} \
                             Receivers that use this list reject or junk mail from it, and \
                             being listed usually means it sent spam or is misconfigured. Find \
                             the cause (a compromised account, an open relay, a shared IP), fix \
                             it, then request delisting from {zone}.",
                            join_and(&codes)
                        ),
                    )
                } else {
                    (
                        CheckId::BlocklistDomainListed,
                        format!(
                            "{what} is on the {zone} domain blocklist (answer {}).{reason} \
                             Receivers that use it reject or junk mail that mentions the \
                             domain, from any server. Find why (spam, a compromised site, a \
                             newly registered domain), fix it, then request delisting.",
                            join_and(&codes)
                        ),
                    )
                };
                s.push(
                    Finding::new(
                        id,
                        Severity::Critical,
                        query.clone(),
                        format!("{what} is listed on {zone}"),
                        why,
                    )
                    .found(join_and(&codes)),
                );
            }
            Verdict::Refused(code) => unknown.push((
                zone.clone(),
                format!("the list refused to answer this resolver (code {code})"),
            )),
            Verdict::Bogus(a) => unknown.push((zone.clone(), format!("unexpected answer {a}"))),
            Verdict::Failed(e) => unknown.push((zone.clone(), e)),
        }
    }
    unknown.sort();
    unknown.dedup_by(|a, b| a.0 == b.0);
    for (zone, e) in &unknown {
        s.push(Finding::new(
            CheckId::BlocklistCouldNotCheck,
            Severity::Unknown,
            zone,
            format!("blocklist {zone} could not be checked"),
            could_not_check(&format!("The {zone} blocklist"), e),
        ));
    }
    let checked = usable_ip.len() + usable_domain.len();
    if listed == 0 && checked > 0 {
        let n_addr: usize = mx.hosts().iter().map(|h| h.addresses.len()).sum();
        s.push(Finding::new(
            CheckId::BlocklistClean,
            Severity::Ok,
            domain,
            format!(
                "not listed: {n_addr} MX address{} on {} IP list{}, the domain on {} domain list{}",
                if n_addr == 1 { "" } else { "es" },
                usable_ip.len(),
                if usable_ip.len() == 1 { "" } else { "s" },
                usable_domain.len(),
                if usable_domain.len() == 1 { "" } else { "s" },
            ),
            format!(
                "Checked against {}.",
                join_and(
                    &usable_ip
                        .iter()
                        .chain(usable_domain.iter())
                        .cloned()
                        .collect::<Vec<_>>()
                )
            ),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::fake::FakeDns;
    use crate::report::MxHost;

    #[test]
    fn reverses_addresses() {
        assert_eq!(reversed("192.0.2.1".parse().expect("ip")), "1.2.0.192");
        assert_eq!(
            reversed("2001:db8::1".parse().expect("ip")),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"
        );
    }

    fn mx() -> MxSet {
        MxSet::Hosts(vec![MxHost {
            preference: 10,
            host: "mx.x.test".into(),
            addresses: vec!["192.0.2.66".parse().expect("ip")],
        }])
    }

    #[test]
    fn listed_unusable_and_clean() {
        let dns = FakeDns::default()
            .a("66.2.0.192.bl.test", "127.0.0.2")
            .txt("66.2.0.192.bl.test", "spam source")
            .a("2.0.0.127.bl.test", "127.0.0.2")
            .a("1.0.0.127.wild.test", "127.0.0.2")
            .a("66.2.0.192.wild.test", "127.0.0.2")
            .a("x.test.dbl.test", "127.0.1.2")
            .a("test.dbl.test", "127.0.1.2");
        let lists = Lists {
            ip: &["bl.test".into(), "wild.test".into()],
            domain: &["dbl.test".into()],
            random_label: "r4nd0m",
        };
        let s = crate::block_on(check(&dns, "x.test", &mx(), &lists));
        let ids: Vec<CheckId> = s.findings.iter().map(|f| f.check).collect();
        assert!(ids.contains(&CheckId::BlocklistMxListed));
        assert!(ids.contains(&CheckId::BlocklistDomainListed));
        assert!(ids.contains(&CheckId::BlocklistUnusable));
        let listed = s
            .findings
            .iter()
            .find(|f| f.check == CheckId::BlocklistMxListed)
            .expect("listed");
        assert!(listed.explanation.contains("spam source"));
        assert_eq!(
            s.findings
                .iter()
                .filter(|f| f.check == CheckId::BlocklistMxListed)
                .count(),
            1
        );
        let clean = FakeDns::default().a("2.0.0.127.bl.test", "127.0.0.2");
        let lists = Lists {
            ip: &["bl.test".into()],
            domain: &[],
            random_label: "r",
        };
        let s = crate::block_on(check(&clean, "x.test", &mx(), &lists));
        assert_eq!(s.findings[0].check, CheckId::BlocklistClean);
    }

    #[test]
    fn refusals_are_unknown() {
        let dns = FakeDns::default().a("66.2.0.192.bl.test", "127.255.255.254");
        let lists = Lists {
            ip: &["bl.test".into()],
            domain: &[],
            random_label: "r",
        };
        let s = crate::block_on(check(&dns, "x.test", &mx(), &lists));
        assert_eq!(s.findings[0].check, CheckId::BlocklistCouldNotCheck);
    }
}
