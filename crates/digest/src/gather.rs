//! Store → [`DigestData`]: reads one tenant's week (and the weeks before, for comparison and
//! for telling new sources from known ones) and reuses the analytics rollup for the numbers.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;
use sealwatch_analytics::{self as analytics, Day, Rollup, day_of};
use sealwatch_store::{DigestAnomaly, DigestTenant, DomainData, Store};

use crate::data::{
    DigestData, DomainDigest, HealthSlot, Issue, IssueSeverity, MxRow, SetupHints, SourceRow,
    TlsSection, WeekNumbers,
};
use crate::{DigestError, IsoWeek};

/// Weeks of history before the week shown that decide whether a source or reporter is
/// "known".
pub const HISTORY_WEEKS: i32 = 4;

/// Reads what the digest of `tenant_id` for `week` shows.
pub async fn gather(
    store: &Store,
    setup: &SetupHints,
    unsubscribe_url: Option<String>,
    tenant_id: i64,
    week: IsoWeek,
) -> Result<DigestData, DigestError> {
    let tenant = store
        .digest_tenant(tenant_id)
        .await?
        .ok_or(DigestError::UnknownTenant(tenant_id))?;
    gather_tenant(store, setup, unsubscribe_url, &tenant, week).await
}

/// [`gather`] for a tenant already loaded.
pub async fn gather_tenant(
    store: &Store,
    setup: &SetupHints,
    unsubscribe_url: Option<String>,
    tenant: &DigestTenant,
    week: IsoWeek,
) -> Result<DigestData, DigestError> {
    let first = day_of(week.start().timestamp());
    let last = first + 6;
    let history_from = first - 7 - HISTORY_WEEKS * 7;
    let from = i64::from(history_from) * 86_400;
    let to = week.end().timestamp();

    let anomalies = if tenant.domains.is_empty() {
        Vec::new()
    } else {
        store.digest_anomalies(tenant.id, first).await?
    };
    let health = store
        .latest_health_checks(tenant.id, week.end() + Duration::days(7))
        .await?;

    let mut domains = Vec::with_capacity(tenant.domains.len());
    for (domain_id, domain) in &tenant.domains {
        let data = store.domain_data(*domain_id, from, to).await?;
        let mut d = summarize(domain, data, first, last);
        d.issues = anomalies
            .iter()
            .filter(|a| a.domain_id == *domain_id)
            .filter(|a| in_week(a, first, last))
            .map(|a| {
                let e = |k: &str| {
                    a.explanation
                        .get(k)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_owned()
                };
                Issue {
                    kind: a.kind.clone(),
                    severity: IssueSeverity::parse(&a.severity),
                    acknowledged: a.status == "acknowledged",
                    resolved: a.status == "resolved",
                    summary: a.summary.clone(),
                    what_happened: e("what_happened"),
                    what_it_means: e("what_it_means"),
                    what_to_do: e("what_to_do"),
                    who_fixes_it: e("who_fixes_it"),
                    // The day it was found; for one found after the week (a catch-up
                    // run), the first day of its evidence in the judged window.
                    since: analytics::format_day(if a.first_seen_day <= last {
                        a.first_seen_day
                    } else {
                        a.window_start
                    }),
                }
            })
            .collect();
        d.issues
            .sort_by_key(|i| (i.resolved, std::cmp::Reverse(i.severity)));
        d.health = health
            .iter()
            .find(|h| h.domain_id == *domain_id)
            .map(|h| HealthSlot {
                score: h.score,
                grade: h.grade.clone(),
                checked_on: h.checked_at.format("%Y-%m-%d").to_string(),
                problems: health_problems(&h.report),
                changes: health_changes(h.previous_report.as_deref(), &h.report),
            });
        domains.push(d);
    }
    Ok(DigestData {
        tenant: tenant.name.clone(),
        week,
        domains,
        setup: setup.clone(),
        unsubscribe_url,
    })
}

/// Whether a week (days `first..=last`) shows an anomaly: one whose evidence overlaps the
/// week, whatever day the analysis found it (a catch-up run finds last week's incident
/// today), and, while it is still open, one found before the week ends.
fn in_week(a: &DigestAnomaly, first: Day, last: Day) -> bool {
    let overlaps = a.window_start <= last && a.window_end >= first;
    match a.status.as_str() {
        "open" | "acknowledged" => overlaps || a.first_seen_day <= last,
        "resolved" => overlaps,
        _ => false,
    }
}

/// What changed between two stored health reports, in plain English. Reports that do not
/// read back (an older shape) give no changes rather than wrong ones.
fn health_changes(previous: Option<&str>, current: &str) -> Vec<String> {
    let Some(previous) = previous else {
        return Vec::new();
    };
    let read = |s: &str| serde_json::from_str::<sealwatch_health::HealthReport>(s).ok();
    let (Some(before), Some(after)) = (read(previous), read(current)) else {
        return Vec::new();
    };
    sealwatch_health::diff(&before, &after)
        .iter()
        .map(sealwatch_health::Change::describe)
        .collect()
}

/// Titles of the findings of a stored health report that need action (`severity` of
/// `critical`/`warning`/`error`), when the JSON has a `findings` list.
fn health_problems(report: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(report) else {
        return Vec::new();
    };
    let Some(list) = v.get("findings").and_then(|f| f.as_array()) else {
        return Vec::new();
    };
    list.iter()
        .filter(|f| {
            matches!(
                f.get("severity").and_then(|s| s.as_str()),
                Some("critical" | "warning" | "error")
            )
        })
        .filter_map(|f| {
            f.get("title")
                .or_else(|| f.get("summary"))
                .or_else(|| f.get("explanation"))
                .and_then(|t| t.as_str())
                .map(str::to_owned)
        })
        .take(10)
        .collect()
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Store rows → analytics input (the rollup splits multi-day reports into UTC days).
fn input_of(domain: &str, data: &DomainData) -> analytics::DomainInput {
    analytics::DomainInput {
        domain: domain.to_owned(),
        dmarc: data
            .dmarc
            .iter()
            .map(|r| analytics::DmarcRow {
                begin: r.begin,
                end: r.end,
                reporter: r.reporter.clone(),
                source_ip: r.source_ip.clone(),
                header_from: r.header_from.clone(),
                messages: to_u64(r.messages),
                dkim_aligned: to_u64(r.dkim_aligned),
                spf_aligned: to_u64(r.spf_aligned),
                disposition_none: to_u64(r.disposition_none),
                disposition_quarantine: to_u64(r.disposition_quarantine),
                disposition_reject: to_u64(r.disposition_reject),
                forwarded: to_u64(r.forwarded),
            })
            .collect(),
        tls: data
            .tls
            .iter()
            .map(|r| analytics::TlsPolicyRow {
                begin: r.begin,
                end: r.end,
                reporter: r.reporter.clone(),
                policy_type: r.policy_type.clone(),
                policy_domain: r.policy_domain.clone(),
                sts_mode: r.sts_mode.clone(),
                mx_hosts: r.mx_hosts.clone(),
                successful: to_u64(r.successful),
                failed: to_u64(r.failed),
            })
            .collect(),
        tls_failures: data
            .tls_failures
            .iter()
            .map(|r| analytics::TlsFailureRow {
                begin: r.begin,
                end: r.end,
                reporter: r.reporter.clone(),
                policy_type: r.policy_type.clone(),
                result_type: r.result_type.clone(),
                sending_mta_ip: r.sending_mta_ip.clone(),
                receiving_mx_hostname: r.receiving_mx_hostname.clone(),
                receiving_ip: r.receiving_ip.clone(),
                failed: to_u64(r.failed),
                failure_reason_code: r.failure_reason_code.clone(),
                additional_information: r.additional_information.clone(),
            })
            .collect(),
        reports: data
            .reports
            .iter()
            .map(|r| analytics::ReportSeen {
                begin: r.begin,
                end: r.end,
                reporter: r.reporter.clone(),
                kind: if r.kind == "tls" {
                    analytics::ReportKind::Tls
                } else {
                    analytics::ReportKind::Dmarc
                },
                received: r.received,
            })
            .collect(),
        ..Default::default()
    }
}

fn sources_in(
    rollup: &Rollup,
    from: Day,
    to: Day,
) -> BTreeMap<String, analytics::rollup::DmarcCounts> {
    let mut out: BTreeMap<String, analytics::rollup::DmarcCounts> = BTreeMap::new();
    for (_, day) in rollup.dmarc.range(from..=to) {
        for (ip, c) in &day.by_source_ip {
            out.entry(ip.clone()).or_default().add(c);
        }
    }
    out
}

/// Source networks (`/24`, `/48`) with DMARC messages in `from..=to`: a provider that
/// rotates addresses inside its ranges is not a new source every week.
fn networks_in(rollup: &Rollup, from: Day, to: Day) -> BTreeSet<String> {
    rollup
        .dmarc
        .range(from..=to)
        .flat_map(|(_, day)| day.by_source_network.keys().cloned())
        .collect()
}

fn reporters_in(rollup: &Rollup, from: Day, to: Day) -> BTreeSet<String> {
    rollup
        .reporters
        .iter()
        .filter(|(_, p)| {
            p.dmarc_days.range(from..=to).next().is_some()
                || p.tls_days.range(from..=to).next().is_some()
        })
        .map(|(k, _)| k.clone())
        .collect()
}

fn numbers(rollup: &Rollup, first: Day, last: Day) -> WeekNumbers {
    let mut n = WeekNumbers::default();
    // Counts are written by senders: sums saturate rather than wrap to a small number.
    for (_, d) in rollup.dmarc.range(first..=last) {
        n.messages = n.messages.saturating_add(d.total.messages);
        n.dmarc_passed = n.dmarc_passed.saturating_add(d.total.passed);
    }
    for (_, d) in rollup.tls.range(first..=last) {
        n.tls_successful = n.tls_successful.saturating_add(d.total.successful);
        n.tls_failed = n.tls_failed.saturating_add(d.total.failed);
    }
    let before = networks_in(rollup, first - HISTORY_WEEKS * 7, first - 1);
    for net in networks_in(rollup, first, last) {
        if before.contains(&net) {
            n.sources_known = n.sources_known.saturating_add(1);
        } else {
            n.sources_new = n.sources_new.saturating_add(1);
        }
    }
    n.reporters = u64::try_from(reporters_in(rollup, first, last).len()).unwrap_or(u64::MAX);
    n
}

/// Days of a week a reporter must have reported on, in each of the weeks before, for its
/// silence this week to be news.
const REGULAR_DAYS_PER_WEEK: usize = 5;
/// Days a regular reporter's reports must have stopped before the others' did for the
/// week's numbers to show it.
const STOPPED_DAYS: Day = 3;

/// The numbers, sources and TLS section of one domain for the week `first..=last`.
fn summarize(domain: &str, data: DomainData, first: Day, last: Day) -> DomainDigest {
    let input = input_of(domain, &data);
    let rollup = Rollup::build(&input);
    let this_week = numbers(&rollup, first, last);
    let last_week = numbers(&rollup, first - 7, first - 1);

    let seen = reporters_in(&rollup, first, last);
    let missing: Vec<String> = reporters_in(&rollup, first - HISTORY_WEEKS * 7, first - 1)
        .difference(&seen)
        .filter_map(|k| rollup.reporters.get(k)?.names.iter().next().cloned())
        .collect();
    // Of those, the ones that reported on most days of every one of the weeks before: their
    // silence is news, an occasional reporter's is not.
    let regular_missing: Vec<String> = rollup
        .reporters
        .iter()
        .filter(|(k, _)| !seen.contains(*k))
        .filter(|(_, p)| {
            (1..=HISTORY_WEEKS).all(|w| {
                let (from, to) = (first - w * 7, first - w * 7 + 6);
                let days: BTreeSet<Day> = p
                    .dmarc_days
                    .range(from..=to)
                    .chain(p.tls_days.range(from..=to))
                    .copied()
                    .collect();
                days.len() >= REGULAR_DAYS_PER_WEEK
            })
        })
        .filter_map(|(_, p)| p.names.iter().next().cloned())
        .collect();
    // Regular reporters that reported this week but stopped days before the others did.
    let regular = |p: &analytics::rollup::ReporterPresence| {
        (1..=HISTORY_WEEKS).all(|w| {
            let (from, to) = (first - w * 7, first - w * 7 + 6);
            let days: BTreeSet<Day> = p
                .dmarc_days
                .range(from..=to)
                .chain(p.tls_days.range(from..=to))
                .copied()
                .collect();
            days.len() >= REGULAR_DAYS_PER_WEEK
        })
    };
    let last_of = |p: &analytics::rollup::ReporterPresence| {
        p.dmarc_days
            .range(first..=last)
            .chain(p.tls_days.range(first..=last))
            .copied()
            .max()
    };
    let mut regular_stopped = Vec::new();
    for (key, p) in &rollup.reporters {
        let Some(own_last) = last_of(p) else {
            continue;
        };
        let others_last = rollup
            .reporters
            .iter()
            .filter(|(k, _)| *k != key)
            .filter_map(|(_, o)| last_of(o))
            .max();
        if let Some(others_last) = others_last
            && others_last - own_last >= STOPPED_DAYS
            && regular(p)
            && let Some(name) = p.names.iter().next()
        {
            regular_stopped.push((name.clone(), own_last + 1));
        }
    }

    let before = networks_in(&rollup, first - HISTORY_WEEKS * 7, first - 1);
    let mut sources: Vec<SourceRow> = sources_in(&rollup, first, last)
        .into_iter()
        .map(|(ip, c)| SourceRow {
            new: !before.contains(&analytics::network_of(&ip)),
            messages: c.messages,
            dmarc_passed: c.passed,
            dkim_aligned: c.dkim_aligned,
            spf_aligned: c.spf_aligned,
            ip,
        })
        .collect();
    sources.sort_by(|a, b| b.messages.cmp(&a.messages).then(a.ip.cmp(&b.ip)));
    let sources_total = sources.len();
    sources.truncate(DomainDigest::MAX_SOURCES);

    DomainDigest {
        domain: domain.to_owned(),
        this_week,
        last_week,
        reporters_missing: missing,
        regular_reporters_missing: regular_missing,
        regular_reporters_stopped: regular_stopped,
        issues: Vec::new(),
        tls: tls_section(&input, &rollup, first, last),
        sources,
        sources_total,
        health: None,
    }
}

fn tls_section(
    input: &analytics::DomainInput,
    rollup: &Rollup,
    first: Day,
    last: Day,
) -> TlsSection {
    let (lo, hi) = (analytics::day_start(first), analytics::day_start(last + 1));
    let in_week: Vec<&analytics::TlsPolicyRow> = input
        .tls
        .iter()
        .filter(|r| r.end > lo && r.begin < hi)
        .collect();
    let mut modes: BTreeMap<String, u64> = BTreeMap::new();
    let mut no_policy = false;
    let mut hosts: BTreeSet<String> = BTreeSet::new();
    for r in &in_week {
        match r.policy_type.trim().to_ascii_lowercase().as_str() {
            "sts" => {
                if let Some(m) = &r.sts_mode {
                    let weight = r.successful.saturating_add(r.failed).saturating_add(1);
                    let sessions = modes.entry(m.trim().to_ascii_lowercase()).or_default();
                    *sessions = sessions.saturating_add(weight);
                }
            }
            "no-policy-found" => no_policy = true,
            _ => {}
        }
        for h in &r.mx_hosts {
            let h = h.trim().trim_end_matches('.').to_ascii_lowercase();
            if !h.is_empty() {
                hosts.insert(h);
            }
        }
    }
    let mode = modes
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(m, _)| m);

    let mut by_mx: BTreeMap<String, (u64, BTreeSet<String>)> = BTreeMap::new();
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    for (_, cell) in rollup.failures(first, last) {
        let e = by_mx.entry(cell.mx.clone()).or_default();
        e.0 = e.0.saturating_add(cell.failed);
        e.1.insert(cell.result_type.clone());
        let by = by_type.entry(cell.result_type.clone()).or_default();
        *by = by.saturating_add(cell.failed);
    }
    for h in hosts {
        by_mx.entry(h).or_default();
    }
    let mut mx: Vec<MxRow> = by_mx
        .into_iter()
        .map(|(host, (failed, types))| MxRow {
            host,
            failed,
            result_types: types.into_iter().collect(),
        })
        .collect();
    mx.sort_by(|a, b| b.failed.cmp(&a.failed).then(a.host.cmp(&b.host)));
    let mut failure_types: Vec<(String, u64)> = by_type.into_iter().collect();
    failure_types.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    TlsSection {
        mta_sts_mode: mode,
        no_policy_reported: no_policy,
        mx,
        failure_types,
    }
}

#[cfg(test)]
mod tests {
    use analytics::rollup::{DmarcCounts, DmarcDay, FailureCell, TlsCounts, TlsDay};

    use super::*;

    const NEAR_MAX: u64 = u64::MAX - 5;

    /// A rollup whose days 10 and 11 each carry counts near `u64::MAX`, as two forged
    /// reports would.
    fn forged_rollup() -> Rollup {
        let mut r = Rollup::default();
        for day in [10, 11] {
            r.dmarc.insert(
                day,
                DmarcDay {
                    total: DmarcCounts {
                        messages: NEAR_MAX,
                        passed: NEAR_MAX,
                        ..Default::default()
                    },
                    ..Default::default()
                },
            );
            r.tls.insert(
                day,
                TlsDay {
                    total: TlsCounts {
                        successful: NEAR_MAX,
                        failed: NEAR_MAX,
                    },
                    failures: vec![FailureCell {
                        reporter: "forger".to_owned(),
                        policy_type: "sts".to_owned(),
                        result_type: "certificate-expired".to_owned(),
                        mx: "mx.example.com".to_owned(),
                        sending_ip: None,
                        sending_network: None,
                        receiving_ip: None,
                        failed: NEAR_MAX,
                    }],
                    ..Default::default()
                },
            );
        }
        r
    }

    #[test]
    fn week_numbers_saturate_instead_of_wrapping() {
        let n = numbers(&forged_rollup(), 10, 16);
        assert_eq!(n.messages, u64::MAX);
        assert_eq!(n.dmarc_passed, u64::MAX);
        assert_eq!(n.tls_successful, u64::MAX);
        assert_eq!(n.tls_failed, u64::MAX);
    }

    #[test]
    fn mx_failures_saturate_instead_of_wrapping() {
        let input = analytics::DomainInput {
            domain: "example.com".to_owned(),
            ..Default::default()
        };
        let tls = tls_section(&input, &forged_rollup(), 10, 16);
        assert_eq!(tls.mx.len(), 1);
        assert_eq!(tls.mx[0].failed, u64::MAX);
        assert_eq!(
            tls.failure_types,
            vec![("certificate-expired".to_owned(), u64::MAX)]
        );
    }
}
