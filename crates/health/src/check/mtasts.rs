//! MTA-STS: the `_mta-sts` TXT record, the policy file fetched over HTTPS with certificate
//! validation, its syntax and mode, and whether its `mx` patterns cover the real MX hosts.

use std::net::{IpAddr, SocketAddr};

use super::mx::MxSet;
use super::{Section, could_not_check, join_and};
use crate::dns::{Answer, Dns, addresses};
use crate::https::{FetchError, Fetcher};
use crate::outbound::{OutboundPolicy, special_purpose};
use crate::record::mtasts::{StsMode, StsPolicy, StsRecord, is_sts, render_policy};
use crate::report::{CheckId, Finding, Fix, MtaStsState, Observed, ObservedRecord, Severity};

/// max_age below one day makes senders re-fetch constantly and forget the policy quickly.
const SHORT_MAX_AGE: u64 = 86_400;
/// What we suggest: one week.
const SUGGESTED_MAX_AGE: u64 = 604_800;

/// The policy URL of a domain.
pub(crate) fn policy_url(domain: &str) -> String {
    format!("https://mta-sts.{domain}/.well-known/mta-sts.txt")
}

pub(crate) struct Target<'a> {
    pub fetcher: &'a Fetcher,
    /// Connect here instead of the address of `mta-sts.<domain>` (tests); the name must
    /// still resolve to an address `outbound` permits.
    pub connect: Option<SocketAddr>,
    /// Which resolved addresses may be connected to.
    pub outbound: OutboundPolicy,
    /// A fresh policy id to suggest (e.g. today's date).
    pub new_id: &'a str,
}

pub(crate) async fn check<D: Dns>(
    dns: &D,
    domain: &str,
    mx: &MxSet,
    target: &Target<'_>,
) -> (Section, MtaStsState) {
    let mut s = Section::default();
    let txt_name = format!("_mta-sts.{domain}");
    let url = policy_url(domain);
    match mx {
        MxSet::Null | MxSet::Missing | MxSet::NoDomain => {
            s.push(Finding::new(
                CheckId::MtaStsNotApplicable,
                Severity::Info,
                domain,
                "MTA-STS does not apply: the domain has no mail servers",
                "MTA-STS protects mail delivered to your MX hosts; without MX hosts there is \
                 nothing to protect.",
            ));
            return (s, MtaStsState::NotApplicable);
        }
        MxSet::Hosts(_) | MxSet::Unknown => {}
    }
    let mx_hosts: Vec<String> = mx.hosts().iter().map(|h| h.host.clone()).collect();
    let answer = match dns.txt(&txt_name).await {
        Answer::Records(r) => {
            let v: Vec<String> = r.into_iter().filter(|t| is_sts(t)).collect();
            if v.is_empty() {
                Answer::NoData
            } else {
                Answer::Records(v)
            }
        }
        other => other,
    };
    s.observe(&txt_name, "TXT", &answer);
    let records = match answer {
        Answer::Records(r) => r,
        Answer::Failed(e) => {
            s.push(Finding::new(
                CheckId::MtaStsCouldNotCheck,
                Severity::Unknown,
                &txt_name,
                "MTA-STS could not be checked",
                could_not_check(&format!("The TXT record at {txt_name}"), &e),
            ));
            return (s, MtaStsState::Unknown);
        }
        Answer::NoData | Answer::NxDomain => {
            let mut f = Finding::new(
                CheckId::MtaStsMissing,
                Severity::Warning,
                &txt_name,
                format!("{domain} has no MTA-STS policy"),
                format!(
                    "Without MTA-STS, mail servers sending to {domain} fall back to \
                     unencrypted delivery whenever STARTTLS fails or is stripped by an \
                     attacker, and accept any certificate. Publish the policy file below at \
                     {url} (the host mta-sts.{domain} needs an A record and a valid \
                     certificate), then the TXT record. Start in mode testing, read the \
                     TLS reports, then switch to enforce."
                ),
            );
            if !mx_hosts.is_empty() {
                f = f
                    .fix(Fix::File {
                        url: url.clone(),
                        content: render_policy(StsMode::Testing, &mx_hosts, SUGGESTED_MAX_AGE),
                    })
                    .fix(Fix::txt(
                        &txt_name,
                        format!("v=STSv1; id={}", target.new_id),
                    ));
            }
            s.push(f);
            return (s, MtaStsState::Absent);
        }
    };
    if records.len() > 1 {
        s.push(
            Finding::new(
                CheckId::MtaStsMultiple,
                Severity::Critical,
                &txt_name,
                format!("{txt_name} holds {} MTA-STS records", records.len()),
                "With more than one v=STSv1 record, senders ignore MTA-STS altogether (RFC \
                 8461 §3.1). Keep exactly one.",
            )
            .found(records.join("\n"))
            .fix(Fix::txt(&txt_name, records[0].clone())),
        );
        return (s, MtaStsState::Broken);
    }
    let raw = records.into_iter().next().unwrap_or_default();
    let sts = match StsRecord::parse(&raw) {
        Ok(r) => r,
        Err(e) => {
            s.push(
                Finding::new(
                    CheckId::MtaStsTxtInvalid,
                    Severity::Critical,
                    &txt_name,
                    "the MTA-STS TXT record is invalid",
                    format!("{e}. Senders ignore an invalid record, so MTA-STS is off."),
                )
                .found(raw.clone())
                .fix(Fix::txt(
                    &txt_name,
                    format!("v=STSv1; id={}", target.new_id),
                )),
            );
            return (s, MtaStsState::Broken);
        }
    };

    // Fetch the policy, from an address that is permitted (by default a globally reachable
    // one: an address the internet cannot reach is never connected to).
    let host = format!("mta-sts.{domain}");
    let addr = match addresses(dns, &host).await {
        Answer::Records(ips) => {
            let Some(ip) = ips.iter().copied().find(|ip| target.outbound.permits(*ip)) else {
                let why = unreachable_addresses(&host, &ips);
                s.records.push(ObservedRecord {
                    name: url.clone(),
                    rtype: "POLICY".to_owned(),
                    observed: Observed::Failed(why.clone()),
                });
                s.push(unreachable(&url, &raw, &why, domain, &mx_hosts));
                return (s, MtaStsState::Broken);
            };
            // The connect-address override (tests) replaces the permitted address only.
            target.connect.unwrap_or(SocketAddr::new(ip, 443))
        }
        Answer::Failed(e) => {
            s.push(Finding::new(
                CheckId::MtaStsCouldNotCheck,
                Severity::Unknown,
                &host,
                "the MTA-STS policy host could not be looked up",
                could_not_check(&format!("The address of {host}"), &e),
            ));
            return (s, MtaStsState::Unknown);
        }
        Answer::NoData | Answer::NxDomain => {
            s.records.push(ObservedRecord {
                name: url.clone(),
                rtype: "POLICY".to_owned(),
                observed: Observed::Absent,
            });
            s.push(unavailable(
                &url,
                &raw,
                &format!("{host} has no address in DNS"),
                domain,
                &mx_hosts,
            ));
            return (s, MtaStsState::Broken);
        }
    };
    let fetched = match target
        .fetcher
        .get(&host, addr, "/.well-known/mta-sts.txt")
        .await
    {
        Ok(f) => f,
        Err(e) => {
            s.records.push(ObservedRecord {
                name: url.clone(),
                rtype: "POLICY".to_owned(),
                observed: match &e {
                    FetchError::Status(404, _) => Observed::Absent,
                    other => Observed::Failed(other.to_string()),
                },
            });
            match e {
                FetchError::Certificate(why) => s.push(
                    Finding::new(
                        CheckId::MtaStsCertificateInvalid,
                        Severity::Critical,
                        &url,
                        format!("the certificate of {host} is not valid: {why}"),
                        format!(
                            "Senders fetch the policy over HTTPS and validate the certificate \
                             like a browser. The certificate of {host} was rejected because \
                             {why}, so senders cannot read the policy and treat {domain} as \
                             having no MTA-STS: the protection is silently off. Install a \
                             certificate for {host} from a public certificate authority (for \
                             example with automatic renewal) that covers that exact name."
                        ),
                    )
                    .found(raw.clone()),
                ),
                other => s.push(unavailable(
                    &url,
                    &raw,
                    &other.to_string(),
                    domain,
                    &mx_hosts,
                )),
            }
            return (s, MtaStsState::Broken);
        }
    };
    let normalised: Vec<String> = fetched
        .body
        .lines()
        .map(|l| l.trim_end_matches('\r').to_owned())
        .filter(|l| !l.trim().is_empty())
        .collect();
    s.records.push(ObservedRecord {
        name: url.clone(),
        rtype: "POLICY".to_owned(),
        observed: Observed::Found(vec![normalised.join("\n")]),
    });
    let found = fetched.body.replace('\r', "");
    let finding = |id, sev, summary: String, why: String| {
        Finding::new(id, sev, &url, summary, why).found(found.clone())
    };
    let policy = StsPolicy::parse(&fetched.body);
    let content_type_ok = fetched.content_type.as_deref().is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/plain"))
    });
    if !content_type_ok {
        s.push(finding(
            CheckId::MtaStsContentType,
            Severity::Warning,
            format!(
                "the policy is served as {} instead of text/plain",
                fetched
                    .content_type
                    .as_deref()
                    .unwrap_or("(no Content-Type)")
            ),
            "RFC 8461 §3.3 requires the policy to be served as text/plain; strict senders \
             ignore it otherwise. Fix the web server's content type for mta-sts.txt."
                .to_owned(),
        ));
    }
    let suggested_mx = if mx_hosts.is_empty() {
        policy.mx.clone()
    } else {
        mx_hosts.clone()
    };
    let suggested_age = policy
        .max_age
        .filter(|a| *a >= SHORT_MAX_AGE)
        .unwrap_or(SUGGESTED_MAX_AGE);
    let new_txt = Fix::txt(&txt_name, format!("v=STSv1; id={}", target.new_id));
    if !policy.problems.is_empty() {
        s.push(
            finding(
                CheckId::MtaStsPolicyInvalid,
                Severity::Critical,
                "the MTA-STS policy file is invalid".to_owned(),
                format!(
                    "{}. Senders discard a policy they cannot parse, so MTA-STS is off. \
                     Publish a valid policy and change the id= in the TXT record so senders \
                     fetch it again.",
                    policy.problems.join("; ")
                ),
            )
            .fix(Fix::File {
                url: url.clone(),
                content: render_policy(
                    policy.mode.unwrap_or(StsMode::Testing),
                    &suggested_mx,
                    suggested_age,
                ),
            })
            .fix(new_txt.clone()),
        );
        return (s, MtaStsState::Broken);
    }
    let mode = policy.mode.unwrap_or(StsMode::None);
    let uncovered: Vec<String> = mx_hosts
        .iter()
        .filter(|h| !policy.covers(h))
        .cloned()
        .collect();
    if !uncovered.is_empty() && mode != StsMode::None {
        let enforce = mode == StsMode::Enforce;
        s.push(
            finding(
                CheckId::MtaStsMxMismatch,
                if enforce {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                format!(
                    "the policy does not cover MX host{} {}",
                    if uncovered.len() == 1 { "" } else { "s" },
                    join_and(&uncovered)
                ),
                format!(
                    "The policy lists mx: {} but the MX record{} point{} at {}. {}",
                    join_and(&policy.mx),
                    if mx_hosts.len() == 1 { "" } else { "s" },
                    if mx_hosts.len() == 1 { "s" } else { "" },
                    join_and(&mx_hosts),
                    if enforce {
                        "In enforce mode, senders refuse to deliver to a host the policy does \
                         not cover: mail to those hosts is deferred and then bounced."
                    } else {
                        "In testing mode mail still flows, but every delivery to those hosts \
                         is reported as a failure, and switching to enforce would bounce it."
                    }
                ),
            )
            .fix(Fix::File {
                url: url.clone(),
                content: render_policy(mode, &suggested_mx, suggested_age),
            })
            .fix(new_txt.clone()),
        );
    }
    match mode {
        StsMode::Testing => s.push(
            finding(
                CheckId::MtaStsModeTesting,
                Severity::Warning,
                "MTA-STS is in testing mode: nothing is enforced".to_owned(),
                "In testing mode senders only report TLS problems (via TLS-RPT) and still \
                 deliver over unencrypted or unverified connections, so an attacker can \
                 still intercept mail. When the TLS reports show no failures, switch to \
                 enforce and change the id."
                    .to_owned(),
            )
            .fix(Fix::File {
                url: url.clone(),
                content: render_policy(StsMode::Enforce, &suggested_mx, suggested_age),
            })
            .fix(new_txt.clone()),
        ),
        StsMode::None => s.push(
            finding(
                CheckId::MtaStsModeNone,
                Severity::Warning,
                "MTA-STS mode is none: the policy is switched off".to_owned(),
                "mode: none withdraws the policy; senders forget it. That is the right way to \
                 retire MTA-STS, but while it stays, mail has no protection against downgrade \
                 attacks."
                    .to_owned(),
            )
            .fix(Fix::File {
                url: url.clone(),
                content: render_policy(StsMode::Testing, &suggested_mx, suggested_age),
            })
            .fix(new_txt.clone()),
        ),
        StsMode::Enforce => {}
    }
    if let Some(age) = policy.max_age
        && age < SHORT_MAX_AGE
        && mode != StsMode::None
    {
        s.push(
            finding(
                CheckId::MtaStsMaxAgeShort,
                Severity::Warning,
                format!("max_age is only {age} seconds"),
                format!(
                    "Senders cache the policy for max_age seconds; below a day an attacker \
                     who blocks the policy fetch soon finds senders without it. RFC 8461 \
                     suggests weeks: {SUGGESTED_MAX_AGE} (one week) or more."
                ),
            )
            .fix(Fix::File {
                url: url.clone(),
                content: render_policy(mode, &suggested_mx, SUGGESTED_MAX_AGE),
            })
            .fix(new_txt),
        );
    }
    let state = match mode {
        StsMode::Enforce => MtaStsState::Enforce,
        StsMode::Testing => MtaStsState::Testing,
        StsMode::None => MtaStsState::None,
    };
    if !s.findings.iter().any(|f| {
        matches!(
            f.severity,
            Severity::Warning | Severity::Critical | Severity::Unknown
        )
    }) {
        s.push(finding(
            CheckId::MtaStsOk,
            Severity::Ok,
            format!(
                "MTA-STS mode {mode}, id {}, max_age {}, covers every MX host",
                sts.id,
                policy.max_age.unwrap_or_default()
            ),
            "The policy is published with a valid certificate and covers every MX host.".to_owned(),
        ));
    }
    (s, state)
}

/// "mta-sts.x resolves only to 10.0.0.5 (private network, 10.0.0.0/8)": every address named
/// with its range.
fn unreachable_addresses(host: &str, ips: &[IpAddr]) -> String {
    let named: Vec<String> = ips
        .iter()
        .map(|ip| match special_purpose(*ip) {
            Some(range) => format!("{ip} ({range})"),
            None => ip.to_string(),
        })
        .collect();
    format!(
        "{host} resolves only to {} not reachable from the internet: {}",
        if ips.len() == 1 {
            "an address"
        } else {
            "addresses"
        },
        join_and(&named)
    )
}

/// The policy host resolves only to addresses the internet cannot reach: we did not try to
/// connect, and neither can a real sender.
fn unreachable(url: &str, raw: &str, why: &str, domain: &str, mx_hosts: &[String]) -> Finding {
    policy_unavailable(
        url,
        raw,
        why,
        format!(
            "The _mta-sts TXT record announces a policy, but {why}. Mail servers on the \
             internet cannot fetch {url} from such an address, so they treat {domain} as \
             having no MTA-STS and the protection is silently off (senders that cached an \
             older policy keep using it until it expires). Give mta-sts.{domain} a public \
             address in DNS (A and AAAA records) that serves the policy file below over \
             HTTPS, or remove the TXT record."
        ),
        mx_hosts,
    )
}

fn unavailable(url: &str, raw: &str, why: &str, domain: &str, mx_hosts: &[String]) -> Finding {
    policy_unavailable(
        url,
        raw,
        why,
        format!(
            "The _mta-sts TXT record announces a policy, but {url} cannot be fetched ({why}). \
             Senders then treat {domain} as having no MTA-STS, so the protection is silently \
             off (and senders that cached an older policy keep using it until it expires). \
             Serve the policy file below over HTTPS, or remove the TXT record."
        ),
        mx_hosts,
    )
}

/// The critical "policy cannot be fetched" finding, with a testing-mode policy for the
/// real MX hosts as the fix.
fn policy_unavailable(
    url: &str,
    raw: &str,
    why: &str,
    explanation: String,
    mx_hosts: &[String],
) -> Finding {
    let mut f = Finding::new(
        CheckId::MtaStsPolicyUnavailable,
        Severity::Critical,
        url,
        format!("the MTA-STS policy file cannot be fetched: {why}"),
        explanation,
    )
    .found(raw.to_owned());
    if !mx_hosts.is_empty() {
        f = f.fix(Fix::File {
            url: url.to_owned(),
            content: render_policy(StsMode::Testing, mx_hosts, SUGGESTED_MAX_AGE),
        });
    }
    f
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::dns::fake::FakeDns;
    use crate::report::MxHost;

    fn zone() -> FakeDns {
        FakeDns::default()
            .txt("_mta-sts.x.test", "v=STSv1; id=1")
            .a("mta-sts.x.test", "10.0.0.5")
            .aaaa("mta-sts.x.test", "fd00::5")
    }

    fn mx() -> MxSet {
        MxSet::Hosts(vec![MxHost {
            preference: 10,
            host: "mx.x.test".to_owned(),
            addresses: Vec::new(),
        }])
    }

    #[test]
    fn a_policy_host_on_private_addresses_is_reported_without_connecting() {
        let fetcher = Fetcher::new(&[], Duration::from_secs(1), 1024).expect("fetcher");
        // the override points at a port nothing listens on: a connection attempt would show
        // up as a connection error instead of the finding below
        let target = Target {
            fetcher: &fetcher,
            connect: Some("127.0.0.1:9".parse().expect("addr")),
            outbound: OutboundPolicy::PublicOnly,
            new_id: "1",
        };
        let (s, state) = crate::block_on(check(&zone(), "x.test", &mx(), &target));
        assert_eq!(state, MtaStsState::Broken);
        let f = s
            .findings
            .iter()
            .find(|f| f.check == CheckId::MtaStsPolicyUnavailable)
            .expect("the policy is unavailable");
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(
            f.summary,
            "the MTA-STS policy file cannot be fetched: mta-sts.x.test resolves only to \
             addresses not reachable from the internet: 10.0.0.5 (private network, \
             10.0.0.0/8) and fd00::5 (unique-local (private network), fc00::/7)"
        );
        assert!(
            f.explanation
                .contains("Mail servers on the internet cannot fetch")
        );
        assert!(!f.explanation.contains("connect"), "{}", f.explanation);
        assert!(s.records.iter().any(|r| r.rtype == "POLICY"
            && matches!(&r.observed, Observed::Failed(w) if w.contains("10.0.0.5"))));
    }

    #[test]
    fn allowing_private_addresses_connects() {
        let fetcher = Fetcher::new(&[], Duration::from_secs(1), 1024).expect("fetcher");
        let target = Target {
            fetcher: &fetcher,
            connect: Some("127.0.0.1:9".parse().expect("addr")),
            outbound: OutboundPolicy::AllowPrivate,
            new_id: "1",
        };
        let (s, _) = crate::block_on(check(&zone(), "x.test", &mx(), &target));
        let f = s
            .findings
            .iter()
            .find(|f| f.check == CheckId::MtaStsPolicyUnavailable)
            .expect("the policy is unavailable");
        // the connection to the closed port was attempted
        assert!(f.summary.contains("could not connect"), "{}", f.summary);
    }
}
