//! DMARC authentication detectors, per source network (`/24`, `/48`):
//!
//! - `dmarc-auth-drop`: a *known* source (at least `dmarc_known_min_messages` baseline
//!   messages with a pass rate of at least `dmarc_known_min_pass_rate`, on at least
//!   `min_history_days` days of `MIN_DAY_MESSAGES` messages) sends at least
//!   `dmarc_window_min_messages` in the window with a pass rate at least
//!   `dmarc_pass_rate_drop` lower than what the same reporters said of it before, and the
//!   drop is real rather than noise: at least
//!   `dmarc_drop_min_failed` failed messages, on at least `dmarc_drop_min_days` days of the
//!   window, and a window pass rate below every day of the source's own history (days with
//!   at least `MIN_DAY_MESSAGES` messages): a source that has had such days before is
//!   varying, not dropping. Warning; critical when under half passes and at least a
//!   quarter of its messages were quarantined or rejected.
//! - `dmarc-new-unauthenticated-source`: a network that is not a known source sends at least
//!   `dmarc_new_source_min_messages` in the window with a pass rate at most
//!   `dmarc_new_source_max_pass_rate`, and hardly any aligned DKIM (at most 5%: mail signed
//!   with the domain's key is genuine, so such a source is a forwarder) — spoofing, or a
//!   service nobody set up SPF/DKIM for.
//!   New (fewer than `dmarc_new_source_max_baseline_messages` baseline messages) or already
//!   sending unauthenticated in the history: a campaign that began before the window is
//!   still flagged while it sends (one anomaly by fingerprint; a staff dismissal keeps an
//!   accepted one quiet). Warning (lower confidence without history).
//!
//! A drop that began before the window but within `recent_change_days` is judged against
//! the days before it began (an ongoing drop stays one, however the nights of analysis fell).
//!
//! Networks whose mail receivers marked as forwarded (`forwarded`, `trusted_forwarder`,
//! `mailing_list`, or `local_policy` citing ARC) for at least a tenth of their messages are
//! forwarders and judged by neither detector; a network that never passed SPF for the
//! domain and whose DKIM passed for less than 98% of its messages before is not judged for a
//! drop (DKIM surviving
//! forwarding only most of the time: the shape of a forwarder or mailing list without the
//! receiver saying so; a sending service that signs keeps DKIM at ~100% and stays judged).
//!
//! The pass rate is the lower bound `max(dkim_aligned, spf_aligned) / messages` per row.
//! Fingerprint: kind, domain, network.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::Ctx;
use crate::finding::{
    AnomalyKind, Explanation, Finding, Severity, conf, fingerprint, list, pct, r4,
};
use crate::input::{Day, format_day};
use crate::net::network_of;
use crate::rollup::{DmarcCounts, ratio};

#[derive(Default, Clone)]
struct Net {
    base: DmarcCounts,
    base_days: BTreeMap<Day, DmarcCounts>,
    /// The baseline per reporter, to compare the window with what the same reporters said.
    base_by_reporter: BTreeMap<String, DmarcCounts>,
    win: DmarcCounts,
    win_days: BTreeMap<Day, DmarcCounts>,
    ips: BTreeMap<String, u64>,
    reporters: BTreeSet<String>,
}

pub(crate) fn detect(ctx: &Ctx<'_>) -> Vec<Finding> {
    let th = ctx.th;
    let mut nets: BTreeMap<String, Net> = BTreeMap::new();
    if ctx.bdays > 0 {
        add_baseline(ctx, &mut nets, ctx.bfrom, ctx.bto, None);
    }
    for (day, d) in ctx.rollup.dmarc.range(ctx.window.start..=ctx.window.end) {
        for (net, c) in &d.by_source_network {
            let n = nets.entry(net.clone()).or_default();
            n.win.add(c);
            n.win_days.entry(*day).or_default().add(c);
        }
        for (ip, c) in &d.by_source_ip {
            if let Some(n) = nets.get_mut(&network_of(ip)) {
                crate::rollup::bump(n.ips.entry(ip.clone()).or_default(), c.messages);
            }
        }
        for (rep, by_net) in &d.by_reporter_network {
            for net in by_net.keys() {
                if let Some(n) = nets.get_mut(net) {
                    n.reporters.insert(rep.clone());
                }
            }
        }
    }
    let mut out = Vec::new();
    for (net, full) in nets {
        let Some(win_rate) = full.win.pass_rate() else {
            continue;
        };
        if is_forwarder(&full) {
            // Receivers said its mail was forwarded: a forwarder or mailing list breaks SPF
            // and often DKIM by design; its pass rate is not the domain's to fix.
            continue;
        }
        let mut n = full.clone();
        // A pass rate that was already down before the window, since a day within
        // `recent_change_days`, is judged against the days before it went down.
        let change_start = ctx.recent_change_start(|d| {
            let c = full
                .base_days
                .get(&d)
                .filter(|c| c.messages >= MIN_DAY_MESSAGES)?;
            Some(c.pass_rate()? <= win_rate + th.dmarc_pass_rate_drop / 2.0)
        });
        if let Some(start) = change_start {
            let win = std::mem::take(&mut n.win);
            let win_days = std::mem::take(&mut n.win_days);
            let ips = std::mem::take(&mut n.ips);
            let reporters = std::mem::take(&mut n.reporters);
            let mut one = BTreeMap::new();
            let (bfrom, bto) = ctx.baseline_before(Some(start));
            add_baseline(ctx, &mut one, bfrom, bto, Some(&net));
            n = one.remove(&net).unwrap_or_default();
            n.win = win;
            n.win_days = win_days;
            n.ips = ips;
            n.reporters = reporters;
        }
        // What the reporters of the window said about this source before: when one reporter
        // falls silent, the others' share of failures is not a drop.
        let mut comparable = DmarcCounts::default();
        for rep in &n.reporters {
            if let Some(c) = n.base_by_reporter.get(rep) {
                comparable.add(c);
            }
        }
        let base_rate = n.base.pass_rate();
        // Known: enough mail, passing, on enough days to show how much it varies.
        let judged_days = n
            .base_days
            .values()
            .filter(|c| c.messages >= MIN_DAY_MESSAGES)
            .count();
        let known = n.base.messages >= th.dmarc_known_min_messages
            && base_rate.is_some_and(|r| r >= th.dmarc_known_min_pass_rate)
            && u32::try_from(judged_days).unwrap_or(u32::MAX) >= th.min_history_days;
        if known && forwarding_like(&n) {
            continue;
        }
        if known {
            let base_rate = if comparable.messages >= th.dmarc_window_min_messages {
                comparable.pass_rate().unwrap_or(1.0)
            } else {
                base_rate.unwrap_or(1.0)
            };
            if n.win.messages >= th.dmarc_window_min_messages
                && win_rate <= base_rate - th.dmarc_pass_rate_drop
                && is_real_drop(th, &n, base_rate, win_rate)
            {
                out.push(drop_finding(ctx, &net, &n, base_rate, win_rate));
            }
        } else if n.win.messages >= th.dmarc_new_source_min_messages
            && win_rate <= th.dmarc_new_source_max_pass_rate
            && (full.win.dkim_aligned as f64) <= GENUINE_DKIM_SHARE * full.win.messages as f64
        {
            // New, or already sending unauthenticated in the history (a campaign that began
            // before the judged window is still one): flagged while it sends, with the whole
            // history (it tells since when).
            out.push(new_source_finding(ctx, &net, &full, win_rate));
        }
    }
    out
}

/// Share of a network's messages (history and window) that receivers said were forwarded
/// from which it counts as a forwarder.
const FORWARDER_MIN_SHARE: f64 = 0.1;

/// Share of a source's messages with aligned DKIM above which it carries genuinely signed
/// mail (a spoofer cannot sign with the domain's key): a forwarder or a half set-up
/// service, not an unauthenticated source.
const GENUINE_DKIM_SHARE: f64 = 0.05;

/// DKIM pass rate below which a source that never passes SPF looks like forwarding.
const FORWARDING_MAX_DKIM_RATE: f64 = 0.98;

fn is_forwarder(n: &Net) -> bool {
    let messages = n.base.messages.saturating_add(n.win.messages);
    let forwarded = n.base.forwarded.saturating_add(n.win.forwarded);
    messages > 0 && forwarded as f64 >= FORWARDER_MIN_SHARE * messages as f64
}

/// Never SPF-aligned, and DKIM surviving only most of the time before: what forwarding
/// looks like (a sending service signing with its own envelope keeps DKIM at ~100%, and
/// its DKIM breaking stays judged). Only a reason not to judge a *drop*.
fn forwarding_like(n: &Net) -> bool {
    n.base.messages > 0
        && n.base.spf_aligned == 0
        && ratio(n.base.dkim_aligned, n.base.messages).is_some_and(|r| r < FORWARDING_MAX_DKIM_RATE)
}

/// Adds the baseline days `from..=to` to `nets` (only network `only`, when given).
fn add_baseline(
    ctx: &Ctx<'_>,
    nets: &mut BTreeMap<String, Net>,
    from: Day,
    to: Day,
    only: Option<&str>,
) {
    if from > to {
        return;
    }
    let wanted = |net: &str| only.is_none_or(|o| o == net);
    for (day, d) in ctx.rollup.dmarc.range(from..=to) {
        for (net, c) in d.by_source_network.iter().filter(|(n, _)| wanted(n)) {
            let n = nets.entry(net.clone()).or_default();
            n.base.add(c);
            n.base_days.entry(*day).or_default().add(c);
        }
        for (rep, by_net) in &d.by_reporter_network {
            for (net, c) in by_net.iter().filter(|(n, _)| wanted(n)) {
                nets.entry(net.clone())
                    .or_default()
                    .base_by_reporter
                    .entry(rep.clone())
                    .or_default()
                    .add(c);
            }
        }
    }
}

/// Messages a day of history needs before its pass rate says how much the source varies.
const MIN_DAY_MESSAGES: u64 = 3;

/// Whether a drop of a known source's pass rate is evidence rather than noise: enough failed
/// messages, on enough days, and lower than any day of the source's own history.
fn is_real_drop(th: &crate::Thresholds, n: &Net, base_rate: f64, win_rate: f64) -> bool {
    let failed = n.win.messages.saturating_sub(n.win.passed);
    let down_days = n
        .win_days
        .values()
        .filter(|c| {
            c.pass_rate()
                .is_some_and(|r| r <= base_rate - th.dmarc_pass_rate_drop)
        })
        .count();
    let worst_day_before = n
        .base_days
        .values()
        .filter(|c| c.messages >= MIN_DAY_MESSAGES)
        .filter_map(DmarcCounts::pass_rate)
        .fold(f64::INFINITY, f64::min);
    failed >= th.dmarc_drop_min_failed
        && u32::try_from(down_days).unwrap_or(u32::MAX) >= th.dmarc_drop_min_days
        && win_rate < worst_day_before
}

fn top_ips(ctx: &Ctx<'_>, n: &Net) -> (Vec<serde_json::Value>, Vec<String>) {
    let mut ips: Vec<(&String, &u64)> = n.ips.iter().collect();
    ips.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let mut names = BTreeSet::new();
    let values = ips
        .iter()
        .take(10)
        .map(|(ip, m)| {
            let name = ctx.sources.names.get(*ip).cloned();
            if let Some(x) = &name {
                names.insert(x.clone());
            }
            json!({"ip": ip, "messages": m, "name": name})
        })
        .collect();
    (values, names.into_iter().collect())
}

fn dispositions(c: &DmarcCounts) -> serde_json::Value {
    json!({"none": c.disposition_none, "quarantine": c.disposition_quarantine, "reject": c.disposition_reject})
}

fn drop_finding(ctx: &Ctx<'_>, net: &str, n: &Net, base_rate: f64, win_rate: f64) -> Finding {
    let th = ctx.th;
    let first = n
        .win_days
        .iter()
        .find(|(_, c)| {
            c.pass_rate()
                .is_some_and(|r| r <= base_rate - th.dmarc_pass_rate_drop)
        })
        .map_or(ctx.window.start, |(d, _)| *d);
    let last = n
        .win_days
        .keys()
        .next_back()
        .copied()
        .unwrap_or(ctx.window.end);
    let refused = n.win.disposition_quarantine + n.win.disposition_reject;
    let critical = win_rate < 0.5 && refused.saturating_mul(4) >= n.win.messages;
    let (ips, names) = top_ips(ctx, n);
    let reporters: Vec<String> = n.reporters.iter().map(|r| ctx.reporter_name(r)).collect();
    let rate = |a: u64, m: u64| r4(ratio(a, m).unwrap_or(0.0));
    let evidence = json!({
        "source_network": net,
        "source_ips": ips,
        "source_names": names,
        "reporters": n.reporters,
        "baseline_messages": n.base.messages,
        "baseline_pass_rate": r4(base_rate),
        "baseline_dkim_rate": rate(n.base.dkim_aligned, n.base.messages),
        "baseline_spf_rate": rate(n.base.spf_aligned, n.base.messages),
        "window_messages": n.win.messages,
        "window_pass_rate": r4(win_rate),
        "window_dkim_rate": rate(n.win.dkim_aligned, n.win.messages),
        "window_spf_rate": rate(n.win.spf_aligned, n.win.messages),
        "window_dispositions": dispositions(&n.win),
        "first_day": first,
        "first_date": format_day(first),
    });
    let who = if names.is_empty() {
        net.to_owned()
    } else {
        format!("{net} ({})", list(&names))
    };
    let dkim_b = ratio(n.base.dkim_aligned, n.base.messages).unwrap_or(0.0);
    let dkim_w = ratio(n.win.dkim_aligned, n.win.messages).unwrap_or(0.0);
    let spf_b = ratio(n.base.spf_aligned, n.base.messages).unwrap_or(0.0);
    let spf_w = ratio(n.win.spf_aligned, n.win.messages).unwrap_or(0.0);
    let drop = base_rate - win_rate;
    Finding {
        kind: AnomalyKind::DmarcAuthDrop,
        severity: if critical { Severity::Critical } else { Severity::Warning },
        domain: ctx.domain.to_owned(),
        window_start: first,
        window_end: last,
        evidence,
        confidence: conf(0.5 + drop * 0.6 + if n.reporters.len() >= 2 { 0.1 } else { 0.0 }),
        fingerprint: fingerprint(AnomalyKind::DmarcAuthDrop, ctx.domain, &[net]),
        summary: format!(
            "DMARC pass rate of {who} fell from {} to {} since {}",
            pct(base_rate),
            pct(win_rate),
            format_day(first)
        ),
        explanation: Explanation {
            what_happened: format!(
                "Mail claiming to be from {} sent from {who} passed DMARC {} of the time over the previous weeks ({} messages); since {} only {} of {} messages passed (DKIM {} → {}, SPF {} → {}), as reported by {}. {} messages were quarantined or rejected.",
                ctx.domain,
                pct(base_rate),
                n.base.messages,
                format_day(first),
                pct(win_rate),
                n.win.messages,
                pct(dkim_b),
                pct(dkim_w),
                pct(spf_b),
                pct(spf_w),
                list(&reporters),
                refused
            ),
            what_it_means: "A system that normally sends your mail correctly stopped authenticating it: typically a DKIM key was rotated or removed, the SPF record was edited, or the service changed its setup. Receivers may send this mail to spam or refuse it, depending on your DMARC policy.".to_owned(),
            what_to_do: format!(
                "Find the service sending from {who}. If DKIM dropped, check that it still signs with a key published in your DNS; if SPF dropped, check that your SPF record still includes it. If you do not recognise the change, treat it as possible spoofing from that network."
            ),
            who_fixes_it: "Whoever manages that sending service and your DNS records (IT team or the vendor).".to_owned(),
        },
    }
}

fn new_source_finding(ctx: &Ctx<'_>, net: &str, n: &Net, win_rate: f64) -> Finding {
    let first = n
        .win_days
        .keys()
        .next()
        .copied()
        .unwrap_or(ctx.window.start);
    let last = n
        .win_days
        .keys()
        .next_back()
        .copied()
        .unwrap_or(ctx.window.end);
    let (ips, names) = top_ips(ctx, n);
    let reporters: Vec<String> = n.reporters.iter().map(|r| ctx.reporter_name(r)).collect();
    let refused = n.win.disposition_quarantine + n.win.disposition_reject;
    // Already sending (unauthenticated) in the history: since when.
    let sending_since = (n.base.messages >= ctx.th.dmarc_new_source_max_baseline_messages)
        .then(|| n.base_days.keys().next().copied())
        .flatten();
    let who = if names.is_empty() {
        net.to_owned()
    } else {
        format!("{net} ({})", list(&names))
    };
    let evidence = json!({
        "source_network": net,
        "source_ips": ips,
        "source_names": names,
        "reporters": n.reporters,
        "baseline_messages": n.base.messages,
        "window_messages": n.win.messages,
        "window_pass_rate": r4(win_rate),
        "window_dispositions": dispositions(&n.win),
        "history": ctx.history,
        "first_day": first,
        "first_date": format_day(first),
        "sending_since": sending_since.map(format_day),
    });
    let confidence = 0.45
        + if ctx.history { 0.2 } else { 0.0 }
        + if n.reporters.len() >= 2 { 0.1 } else { 0.0 }
        + if n.win.messages >= ctx.th.dmarc_new_source_min_messages.saturating_mul(10) {
            0.1
        } else {
            0.0
        };
    Finding {
        kind: AnomalyKind::DmarcNewUnauthenticatedSource,
        severity: Severity::Warning,
        domain: ctx.domain.to_owned(),
        window_start: first,
        window_end: last,
        evidence,
        confidence: conf(confidence),
        fingerprint: fingerprint(AnomalyKind::DmarcNewUnauthenticatedSource, ctx.domain, &[net]),
        summary: format!(
            "{} {who} sent {} messages as {} failing DMARC ({} pass)",
            if sending_since.is_some() {
                "Unauthenticated source"
            } else {
                "New source"
            },
            n.win.messages,
            ctx.domain,
            pct(win_rate)
        ),
        explanation: Explanation {
            what_happened: format!(
                "Since {}, {} reported {} messages claiming to be from {} sent from {who}, {}; only {} passed DMARC and {refused} were quarantined or rejected.",
                format_day(first),
                list(&reporters),
                n.win.messages,
                ctx.domain,
                match sending_since {
                    Some(d) => format!("a network that has been sending as your domain without authenticating since {}", format_day(d)),
                    None if ctx.history => "a network that had not sent as your domain before".to_owned(),
                    None => "a network not yet known to us".to_owned(),
                },
                pct(win_rate),
            ),
            what_it_means: format!(
                "Either someone is sending mail pretending to be {} (spoofing or phishing), or you started using a service (newsletter, CRM, ticketing, a new office server) that was never set up to authenticate as your domain. In the second case its mail is being junked or refused.",
                ctx.domain
            ),
            what_to_do: format!(
                "Find out whether {who} belongs to a service you use. If it does, add it to your SPF record and set up DKIM signing for it. If it does not, nothing to fix on that network: move your DMARC policy towards p=quarantine or p=reject so such mail is refused."
            ),
            who_fixes_it: "Your IT team or whoever manages your DNS; the vendor of the service if it is a forgotten one.".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use crate::testkit::DomainBuilder;
    use crate::{AnomalyKind, Severity, Thresholds, Window, analyze};

    /// Sixty healthy days in which the ESP's mail (198.51.100.20) fails from `first` on.
    fn esp_fails_from(first: i32) -> crate::DomainInput {
        let mut input = DomainBuilder::new("example.com").healthy(0, 59).build();
        for row in &mut input.dmarc {
            if row.source_ip == "198.51.100.20" && row.begin >= crate::input::day_start(first) {
                row.dkim_aligned = 0;
                row.spf_aligned = 0;
                row.disposition_none = 0;
                row.disposition_quarantine = row.messages;
            }
        }
        input
    }

    #[test]
    fn a_source_that_looks_like_forwarding_is_not_judged_for_a_drop() {
        let drops = |input: &crate::DomainInput| {
            analyze(input, Window { start: 53, end: 59 }, &Thresholds::default())
                .findings
                .iter()
                .filter(|f| f.kind == AnomalyKind::DmarcAuthDrop)
                .count()
        };
        // A sending service that signs with DKIM but never aligns SPF: its DKIM breaking is
        // a drop.
        let mut esp = esp_fails_from(55);
        for row in &mut esp.dmarc {
            if row.source_ip == "198.51.100.20" {
                row.spf_aligned = 0;
            }
        }
        assert_eq!(drops(&esp), 1);
        // The same network, whose DKIM survived for only 95% of its mail before: forwarding.
        for row in &mut esp.dmarc {
            if row.source_ip == "198.51.100.20" && row.begin < crate::input::day_start(55) {
                row.dkim_aligned = row.messages * 95 / 100;
            }
        }
        assert_eq!(drops(&esp), 0);
    }

    #[test]
    fn a_new_source_carrying_mail_signed_with_the_domains_key_is_not_unauthenticated() {
        let with_dkim = |aligned: u64| {
            let mut b = DomainBuilder::new("example.com").healthy(0, 34);
            for day in 28..=34 {
                b = b.dmarc_row(crate::DmarcRow {
                    begin: crate::input::day_start(day),
                    end: crate::input::day_start(day + 1),
                    reporter: "google.com".into(),
                    source_ip: "131.111.8.20".into(),
                    messages: 40,
                    dkim_aligned: aligned,
                    disposition_none: 40,
                    ..Default::default()
                });
            }
            analyze(
                &b.build(),
                Window { start: 28, end: 34 },
                &Thresholds::default(),
            )
            .findings
            .into_iter()
            .filter(|f| f.kind == AnomalyKind::DmarcNewUnauthenticatedSource)
            .count()
        };
        assert_eq!(with_dkim(0), 1, "nothing signed: unauthenticated");
        assert_eq!(
            with_dkim(8),
            0,
            "a fifth signed with the domain's key: forwarded mail"
        );
    }

    #[test]
    fn a_forwarder_is_not_a_dropping_source() {
        let mut input = esp_fails_from(55);
        // Receivers marked a share of that network's mail as forwarded.
        for row in &mut input.dmarc {
            if row.source_ip == "198.51.100.20" {
                row.forwarded = row.messages / 5;
            }
        }
        let a = analyze(
            &input,
            Window { start: 53, end: 59 },
            &Thresholds::default(),
        );
        assert!(
            !a.findings
                .iter()
                .any(|f| f.kind == AnomalyKind::DmarcAuthDrop),
            "{:#?}",
            a.findings
        );
        let plain = analyze(
            &esp_fails_from(55),
            Window { start: 53, end: 59 },
            &Thresholds::default(),
        );
        assert!(
            plain
                .findings
                .iter()
                .any(|f| f.kind == AnomalyKind::DmarcAuthDrop)
        );
    }

    #[test]
    fn a_drop_that_began_before_the_window_stays_a_drop_for_recent_change_days() {
        let drops = |input: &crate::DomainInput, th: &Thresholds| {
            analyze(input, Window { start: 53, end: 59 }, th)
                .findings
                .into_iter()
                .filter(|f| f.kind == AnomalyKind::DmarcAuthDrop)
                .count()
        };
        let th = Thresholds::default();
        // Began 12 days before the window's end: five of its days are in the baseline.
        assert_eq!(drops(&esp_fails_from(48), &th), 1);
        let off = Thresholds {
            recent_change_days: 0,
            ..Thresholds::default()
        };
        assert_eq!(
            drops(&esp_fails_from(48), &off),
            0,
            "absorbed without the rule"
        );
        // Began 40 days before: the new normal.
        assert_eq!(drops(&esp_fails_from(20), &th), 0);
    }

    #[test]
    fn known_source_losing_authentication() {
        let mut b = DomainBuilder::new("example.com")
            .healthy(0, 27)
            .source_name("198.51.100.20", "mta1.esp.example.net");
        b = b.healthy(28, 34);
        let mut input = b.build();
        // From day 31 the ESP's mail (198.51.100.20) fails DKIM and SPF and is quarantined.
        for row in &mut input.dmarc {
            if row.source_ip == "198.51.100.20" && row.begin >= crate::input::day_start(31) {
                row.dkim_aligned = 0;
                row.spf_aligned = 0;
                row.disposition_none = 0;
                row.disposition_quarantine = row.messages;
            }
        }
        let a = analyze(
            &input,
            Window { start: 28, end: 34 },
            &Thresholds::default(),
        );
        let f: Vec<_> = a
            .findings
            .iter()
            .filter(|f| f.kind == AnomalyKind::DmarcAuthDrop)
            .collect();
        assert_eq!(f.len(), 1, "{:#?}", a.findings);
        assert_eq!(
            f[0].fingerprint,
            "dmarc-auth-drop:example.com:198.51.100.0/24"
        );
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(f[0].window_start, 31);
        assert_eq!(f[0].evidence["source_names"][0], "mta1.esp.example.net");
        assert!(f[0].summary.contains("mta1.esp.example.net"));
        assert_eq!(a.findings.len(), 1, "{:#?}", a.findings);
    }

    #[test]
    fn a_campaign_that_began_before_the_window_is_still_flagged() {
        // Four addresses of one network, ~14,000 rejected messages a day from day 22: by
        // day 34 the campaign fills the last week of the baseline too.
        let mut b = DomainBuilder::new("example.com").healthy(0, 34);
        for day in 22..=34 {
            for ip in ["45.13.7.20", "45.13.7.21", "45.13.7.22", "45.13.7.23"] {
                b = b.dmarc(day, "google.com", ip, 3_500, 0);
            }
        }
        let a = analyze(
            &b.build(),
            Window { start: 28, end: 34 },
            &Thresholds::default(),
        );
        let f: Vec<_> = a
            .findings
            .iter()
            .filter(|f| f.kind == AnomalyKind::DmarcNewUnauthenticatedSource)
            .collect();
        assert_eq!(f.len(), 1, "{:#?}", a.findings);
        assert_eq!(
            f[0].fingerprint,
            "dmarc-new-unauthenticated-source:example.com:45.13.7.0/24"
        );
        assert!(
            f[0].summary
                .starts_with("Unauthenticated source 45.13.7.0/24"),
            "{}",
            f[0].summary
        );
        assert!(
            f[0].explanation
                .what_happened
                .contains("without authenticating since"),
            "{}",
            f[0].explanation.what_happened
        );
        // A source that always authenticated and a small failing forwarder stay quiet.
        assert_eq!(a.findings.len(), 1, "{:#?}", a.findings);
    }

    #[test]
    fn spoofing_campaign_from_a_new_network() {
        let mut b = DomainBuilder::new("example.com").healthy(0, 34);
        for day in 32..=34 {
            b = b.dmarc(day, "google.com", "45.13.7.20", 400, 0).dmarc(
                day,
                "Yahoo",
                "45.13.7.21",
                150,
                3,
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
            .filter(|f| f.kind == AnomalyKind::DmarcNewUnauthenticatedSource)
            .collect();
        assert_eq!(f.len(), 1, "{:#?}", a.findings);
        assert_eq!(
            f[0].fingerprint,
            "dmarc-new-unauthenticated-source:example.com:45.13.7.0/24"
        );
        assert_eq!(f[0].evidence["window_messages"], 1650);
        assert_eq!(f[0].window_start, 32);
        assert_eq!(a.findings.len(), 1, "{:#?}", a.findings);
    }

    #[test]
    fn small_unauthenticated_forwarders_are_ignored() {
        let mut b = DomainBuilder::new("example.com").healthy(0, 34);
        for day in 28..=34 {
            b = b.dmarc(day, "google.com", "45.13.7.20", 10, 0);
        }
        let a = analyze(
            &b.build(),
            Window { start: 28, end: 34 },
            &Thresholds::default(),
        );
        assert!(a.findings.is_empty(), "{:#?}", a.findings);
    }
}
