//! `tls-low-rate-negotiation`: a small but steady rate of `starttls-not-supported` /
//! `validation-failure` from unexpected sending networks.
//!
//! Failures are grouped by reporter and sending-MTA network (`/24`, `/48`). A group is
//! *steady and small* with failures on at least `low_rate_min_days` window days, at least
//! `low_rate_min_failed_sessions` failures, and at most `low_rate_max_failure_rate` of the
//! reporter's sessions. It is judged against the domain's own history:
//!
//! - a `receiving-ip` that is none of the addresses its MX host resolves to
//!   ([`crate::DomainInput::mx_addresses`]): the sender reached some other machine — the
//!   downgrade fingerprint, flagged whatever the history, warning, with the foreign address
//!   named;
//! - with history (`min_history_days`): a network the reporter never failed from in the
//!   baseline is unexpected; a known one is flagged only when its daily failure rate rose
//!   more than `low_rate_rise_factor`-fold (a long-standing legacy sender is not news).
//!   Failures that began before the window but within `recent_change_days` are judged
//!   against the days before they began;
//! - without history: flagged only when the sending IP is not related to any DMARC source
//!   of the domain (exact IP or same network) and the failures did not all reach their MX's
//!   own address, at low confidence.
//!
//! MX hosts already in a certificate cluster are left out. Info; warning for a foreign
//! receiver, and for `starttls-not-supported` from a new network while the reporter's other
//! sessions succeed (the fingerprint of STARTTLS being stripped on one path). Fingerprint:
//! kind, domain, reporter key, network.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::{Ctx, LOW_RATE_TYPES};
use crate::correlation::SourceMatch;
use crate::finding::{
    AnomalyKind, Explanation, Finding, Severity, conf, fingerprint, list, pct, r4,
};
use crate::input::{Day, format_day};
use crate::net::canonical_ip;
use crate::rollup::FailureCell;

#[derive(Default)]
struct Group {
    days: BTreeSet<Day>,
    by_type: BTreeMap<String, u64>,
    ips: BTreeMap<String, u64>,
    mxs: BTreeSet<String>,
    total: u64,
    /// `receiving-ip`s that are none of their MX host's resolved addresses, with failures.
    foreign: BTreeMap<String, u64>,
    /// Failures known to have reached their MX host's own address.
    at_own_mx: u64,
}

/// Whether `cell` reached an address that is none of its MX host's addresses (known only
/// for hosts the caller resolved).
fn receiver(ctx: &Ctx<'_>, cell: &FailureCell) -> Receiver {
    let (Some(ip), Some(known)) = (
        cell.receiving_ip.as_deref(),
        ctx.input.mx_addresses.get(&cell.mx),
    ) else {
        return Receiver::Unknown;
    };
    if known.is_empty() {
        Receiver::Unknown
    } else if known.iter().any(|a| canonical_ip(a) == ip) {
        Receiver::OwnMx
    } else {
        Receiver::Foreign(ip.to_owned())
    }
}

/// What a failure's `receiving-ip` says about who answered.
enum Receiver {
    /// Not reported, or the MX host was not resolved.
    Unknown,
    /// One of the MX host's own addresses.
    OwnMx,
    /// Some other machine.
    Foreign(String),
}

pub(crate) fn detect(ctx: &Ctx<'_>, cluster_mx: &BTreeSet<String>) -> Vec<Finding> {
    let th = ctx.th;
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    for (day, c) in ctx.window_cells(LOW_RATE_TYPES) {
        if cluster_mx.contains(&c.mx) {
            continue;
        }
        let Some(net) = &c.sending_network else {
            continue;
        };
        let g = groups.entry((c.reporter.clone(), net.clone())).or_default();
        g.days.insert(day);
        crate::rollup::bump(
            g.by_type.entry(c.result_type.clone()).or_default(),
            c.failed,
        );
        if let Some(ip) = &c.sending_ip {
            crate::rollup::bump(g.ips.entry(ip.clone()).or_default(), c.failed);
        }
        g.mxs.insert(c.mx.clone());
        crate::rollup::bump(&mut g.total, c.failed);
        match receiver(ctx, c) {
            Receiver::Foreign(ip) => {
                crate::rollup::bump(g.foreign.entry(ip).or_default(), c.failed)
            }
            Receiver::OwnMx => crate::rollup::bump(&mut g.at_own_mx, c.failed),
            Receiver::Unknown => {}
        }
    }
    let active = ctx.window_tls_reporters();
    let mut out = Vec::new();
    for ((reporter, net), g) in groups {
        let sessions = active.get(&reporter).map_or(0, |c| c.total());
        if sessions == 0 {
            continue;
        }
        let rate = g.total as f64 / sessions as f64;
        if u32::try_from(g.days.len()).unwrap_or(u32::MAX) < th.low_rate_min_days
            || g.total < th.low_rate_min_failed_sessions
            || rate > th.low_rate_max_failure_rate
        {
            continue;
        }
        let is_ours = |c: &FailureCell| {
            c.reporter == reporter
                && c.sending_network.as_deref() == Some(net.as_str())
                && LOW_RATE_TYPES.contains(&c.result_type.as_str())
        };
        // Failures that began before the window, within `recent_change_days`, are judged
        // against the days before they began.
        let change_start = ctx.recent_change_start(|d| {
            if ctx.day_failures(d, is_ours) > 0 {
                Some(true)
            } else if ctx.rollup.tls_reporter(&reporter, d, d).total() > 0 {
                Some(false)
            } else {
                None
            }
        });
        let (bfrom, bto) = ctx.baseline_before(change_start);
        let (base_failed, base_sessions) = if ctx.bdays > 0 && bfrom <= bto {
            let failed: u64 = ctx
                .rollup
                .failures(bfrom, bto)
                .filter(|(_, c)| is_ours(c))
                .map(|(_, c)| c.failed)
                .fold(0u64, u64::saturating_add);
            (
                failed,
                ctx.rollup.tls_reporter(&reporter, bfrom, bto).total(),
            )
        } else {
            (0, 0)
        };
        let base_rate = if base_sessions > 0 {
            base_failed as f64 / base_sessions as f64
        } else {
            0.0
        };
        let links: Vec<_> = g
            .ips
            .iter()
            .map(|(ip, n)| ctx.sources.link(ip, *n))
            .collect();
        let dmarc_related = links.iter().any(|l| l.source_match != SourceMatch::None);
        let seen_before = base_failed > 0;
        let foreign = !g.foreign.is_empty();
        let (flag, why) = if foreign {
            // The sender reached a machine that is not the MX it meant: the downgrade
            // fingerprint, however long it has been going on.
            (true, "foreign-receiver")
        } else if ctx.history {
            if !seen_before {
                (true, "new-network")
            } else if rate > th.low_rate_rise_factor * base_rate {
                (true, "rising")
            } else {
                (false, "")
            }
        } else {
            // Without history, failures that all reached the MX's own address show a host
            // without STARTTLS, not an interception: not news.
            let all_at_own_mx = g.at_own_mx >= g.total;
            (
                !dmarc_related && !all_at_own_mx,
                "no-history-unknown-source",
            )
        };
        if !flag {
            continue;
        }
        let starttls = g.by_type.contains_key("starttls-not-supported");
        let reporter_ok = active
            .get(&reporter)
            .and_then(|c| c.failure_rate())
            .is_some_and(|r| r <= th.low_rate_max_failure_rate);
        let severity = if foreign || (ctx.history && !seen_before && starttls && reporter_ok) {
            Severity::Warning
        } else {
            Severity::Info
        };
        let confidence = if ctx.history {
            0.45 + 0.1 * (g.days.len().min(7) as f64 / 7.0) * 3.0
                + if dmarc_related { 0.0 } else { 0.1 }
        } else {
            0.3
        };
        let first = g.days.iter().next().copied().unwrap_or(ctx.window.start);
        let last = g.days.iter().next_back().copied().unwrap_or(ctx.window.end);
        let name = ctx.reporter_name(&reporter);
        let names: BTreeSet<String> = links.iter().flat_map(|l| l.names.iter().cloned()).collect();
        let names: Vec<String> = names.into_iter().collect();
        let types: Vec<String> = g
            .by_type
            .iter()
            .map(|(t, n)| format!("{t} ({n})"))
            .collect();
        let ips: Vec<String> = g.ips.keys().cloned().collect();
        let evidence = json!({
            "reporter": reporter,
            "reporter_name": name,
            "sending_network": net,
            "sending_ips": links,
            "sending_names": names,
            "result_types": g.by_type,
            "mx_hosts": g.mxs,
            "failed_sessions": g.total,
            "days_with_failures": g.days.len(),
            "failure_rate": r4(rate),
            "baseline_failed_sessions": base_failed,
            "baseline_failure_rate": r4(base_rate),
            "history": ctx.history,
            "reason": why,
            "foreign_receiving_ips": g.foreign,
            "change_began": change_start.map(format_day),
            "related_to_dmarc_sources": dmarc_related,
        });
        let from_text = if names.is_empty() {
            format!("{net} ({})", list(&ips))
        } else {
            format!("{net} ({}; {})", list(&ips), list(&names))
        };
        out.push(Finding {
            kind: AnomalyKind::TlsLowRateNegotiation,
            severity,
            domain: ctx.domain.to_owned(),
            window_start: first,
            window_end: last,
            evidence,
            confidence: conf(confidence),
            fingerprint: fingerprint(AnomalyKind::TlsLowRateNegotiation, ctx.domain, &[&reporter, &net]),
            summary: format!(
                "{name}: steady low-rate TLS negotiation failures from {net} ({} of sessions, {} days)",
                pct(rate.min(1.0)),
                g.days.len()
            ),
            explanation: Explanation {
                what_happened: format!(
                    "On {} of the days from {} to {}, {name} reported TLS failures for mail sent from {from_text} to {}: {}. That is {} of its connections to you{}.",
                    g.days.len(),
                    format_day(first),
                    format_day(last),
                    list(&g.mxs.iter().cloned().collect::<Vec<_>>()),
                    list(&types),
                    pct(rate.min(1.0)),
                    match why {
                        "foreign-receiver" => format!(
                            ". Those connections reached {}, which is not an address of {}",
                            list(&g.foreign.keys().cloned().collect::<Vec<_>>()),
                            list(&g.mxs.iter().cloned().collect::<Vec<_>>())
                        ),
                        "new-network" => ", from a network that had no such failures in the previous weeks".to_owned(),
                        "rising" => ", several times more than in the previous weeks".to_owned(),
                        _ => "; there is no history yet to compare with".to_owned(),
                    }
                ),
                what_it_means: if foreign {
                    format!("Something other than your mail server answered {name}'s connections on that path and offered no encryption (or a certificate that could not be validated). That is what a STARTTLS downgrade looks like: mail on that path may be read or altered in transit.")
                } else if starttls {
                    format!("For these connections {name}'s server saw your mail server offer no encryption, while its other connections were encrypted. Often this is harmless (an old relay or a filtering appliance in between), but STARTTLS disappearing on one network path is also what a downgrade attack looks like.")
                } else {
                    format!("For these connections {name}'s server could not validate your server's TLS, while its other connections succeeded. Often this is a legacy sending system with an outdated trust store; sometimes it points at interception on that network path.")
                },
                what_to_do: if foreign {
                    format!("Find out whose machine {} is (your hosting or network provider can tell), and ask {name} to check its path to you. Publishing MTA-STS in enforce mode, or DANE, makes senders refuse such a path instead of delivering in the clear.", list(&g.foreign.keys().cloned().collect::<Vec<_>>()))
                } else { format!(
                    "Usually nothing urgent. Check whether {net} belongs to a system you know (a relay, a forwarding or filtering service); if it does not and the pattern continues, ask {name} and your network provider to look at that path. Enforcing MTA-STS protects against downgrades."
                ) },
                who_fixes_it: "Your mail administrator to investigate; the operator of the sending network if it is theirs.".to_owned(),
            },
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::testkit::DomainBuilder;
    use crate::{AnomalyKind, Severity, Thresholds, Window, analyze};

    #[test]
    fn new_network_with_steady_starttls_failures_is_flagged() {
        let mut b = DomainBuilder::new("example.com").healthy(0, 34);
        for day in 28..=34 {
            b = b.tls_failure(
                day,
                "Google Inc.",
                "starttls-not-supported",
                "mx1.example.com",
                "185.220.101.4",
                2,
            );
        }
        let a = analyze(
            &b.build(),
            Window { start: 28, end: 34 },
            &Thresholds::default(),
        );
        let f: Vec<_> = a
            .findings
            .iter()
            .filter(|f| f.kind == AnomalyKind::TlsLowRateNegotiation)
            .collect();
        assert_eq!(f.len(), 1, "{:#?}", a.findings);
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(
            f[0].fingerprint,
            "tls-low-rate-negotiation:example.com:google:185.220.101.0/24"
        );
        assert_eq!(f[0].evidence["reason"], "new-network");
        assert_eq!(f[0].evidence["failed_sessions"], 14);
        assert_eq!(a.findings.len(), 1, "{:#?}", a.findings);
    }

    #[test]
    fn long_standing_legacy_sender_is_not_news() {
        let mut b = DomainBuilder::new("example.com").healthy(0, 34);
        for day in 0..=34 {
            b = b.tls_failure(
                day,
                "Google Inc.",
                "starttls-not-supported",
                "mx1.example.com",
                "185.220.101.4",
                2,
            );
        }
        let a = analyze(
            &b.build(),
            Window { start: 28, end: 34 },
            &Thresholds::default(),
        );
        assert!(a.findings.is_empty(), "{:#?}", a.findings);
    }

    fn low_rate(a: &crate::Analysis) -> Vec<&crate::Finding> {
        a.findings
            .iter()
            .filter(|f| f.kind == AnomalyKind::TlsLowRateNegotiation)
            .collect()
    }

    /// Two months of steady failures from one network, every one to `receiving`.
    fn steady_to(receiving: &str) -> DomainBuilder {
        let mut b = DomainBuilder::new("example.com").healthy(0, 59);
        for day in 0..=59 {
            b = b.tls_failure_at(
                day,
                "Google Inc.",
                "starttls-not-supported",
                "mx1.example.com",
                "185.220.101.4",
                receiving,
                2,
            );
        }
        b
    }

    #[test]
    fn a_receiver_that_is_not_the_mx_is_a_downgrade_however_long_it_lasts() {
        let input = steady_to("198.51.100.66")
            .mx_addresses("mx1.example.com", &["192.0.2.25", "2001:db8::25"])
            .build();
        let a = analyze(
            &input,
            Window { start: 53, end: 59 },
            &Thresholds::default(),
        );
        let f = low_rate(&a);
        assert_eq!(f.len(), 1, "{:#?}", a.findings);
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(f[0].evidence["reason"], "foreign-receiver");
        assert_eq!(f[0].evidence["foreign_receiving_ips"]["198.51.100.66"], 14);
        assert!(
            f[0].explanation.what_happened.contains("198.51.100.66"),
            "{}",
            f[0].explanation.what_happened
        );
        // Unresolved MX: the history decides, and two months of it is the new normal.
        let unresolved = analyze(
            &steady_to("198.51.100.66").build(),
            Window { start: 53, end: 59 },
            &Thresholds::default(),
        );
        assert!(
            low_rate(&unresolved).is_empty(),
            "{:#?}",
            unresolved.findings
        );
    }

    #[test]
    fn legacy_noise_that_reaches_the_real_mx_stays_quiet() {
        let input = steady_to("192.0.2.25")
            .mx_addresses("mx1.example.com", &["192.0.2.25"])
            .build();
        let a = analyze(
            &input,
            Window { start: 53, end: 59 },
            &Thresholds::default(),
        );
        assert!(a.findings.is_empty(), "{:#?}", a.findings);
    }

    #[test]
    fn a_change_that_began_within_recent_change_days_is_judged_against_the_days_before_it() {
        let failures_from = |first: i32| {
            let mut b = DomainBuilder::new("example.com").healthy(0, 59);
            for day in first..=59 {
                b = b.tls_failure(
                    day,
                    "Google Inc.",
                    "starttls-not-supported",
                    "mx1.example.com",
                    "185.220.101.4",
                    2,
                );
            }
            b.build()
        };
        let window = Window { start: 53, end: 59 };
        // Began 20 days before the window's end: a baseline of 28 days already holds 13 of
        // them, and still it is judged as new.
        let a = analyze(&failures_from(40), window, &Thresholds::default());
        let f = low_rate(&a);
        assert_eq!(f.len(), 1, "{:#?}", a.findings);
        assert_eq!(f[0].evidence["reason"], "new-network");
        assert_eq!(f[0].evidence["change_began"], crate::format_day(40));
        // The same with the rule switched off: absorbed by the baseline.
        let off = Thresholds {
            recent_change_days: 0,
            ..Thresholds::default()
        };
        assert!(low_rate(&analyze(&failures_from(40), window, &off)).is_empty());
        // Began 30 days before: the domain's new normal.
        let old = analyze(&failures_from(30), window, &Thresholds::default());
        assert!(low_rate(&old).is_empty(), "{:#?}", old.findings);
    }

    #[test]
    fn sporadic_failures_are_not_steady() {
        let b = DomainBuilder::new("example.com")
            .healthy(0, 34)
            .tls_failure(
                30,
                "Google Inc.",
                "starttls-not-supported",
                "mx1.example.com",
                "185.220.101.4",
                3,
            )
            .tls_failure(
                33,
                "Google Inc.",
                "starttls-not-supported",
                "mx1.example.com",
                "185.220.101.4",
                3,
            );
        let a = analyze(
            &b.build(),
            Window { start: 28, end: 34 },
            &Thresholds::default(),
        );
        assert!(a.findings.is_empty(), "{:#?}", a.findings);
    }

    #[test]
    fn without_history_only_unknown_sources_count() {
        let mut b = DomainBuilder::new("example.com").healthy(0, 6);
        for day in 0..=6 {
            b = b
                .tls_failure(
                    day,
                    "Google Inc.",
                    "validation-failure",
                    "mx1.example.com",
                    "192.0.2.77",
                    2,
                )
                .tls_failure(
                    day,
                    "Google Inc.",
                    "validation-failure",
                    "mx1.example.com",
                    "185.220.101.4",
                    2,
                );
        }
        let a = analyze(
            &b.build(),
            Window { start: 0, end: 6 },
            &Thresholds::default(),
        );
        let f: Vec<_> = a
            .findings
            .iter()
            .filter(|f| f.kind == AnomalyKind::TlsLowRateNegotiation)
            .collect();
        let unknown = f
            .iter()
            .find(|f| f.evidence["sending_network"] == "185.220.101.0/24")
            .expect("unknown network flagged");
        assert_eq!(unknown.severity, Severity::Info);
        assert!(unknown.confidence < 0.5);
        // 192.0.2.77 shares a network with the domain's own DMARC source 192.0.2.10.
        assert!(
            f.iter()
                .all(|f| f.evidence["sending_network"] != "192.0.2.0/24"),
            "{f:#?}"
        );
    }
}
