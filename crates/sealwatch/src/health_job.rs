//! Health checks of stored domains: run the check, store the run, compare it with the
//! previous stored run, and keep the domain's MTA-STS anomaly in step (opened or updated
//! while the policy is broken, resolved once it works). `check_and_store` is what the
//! weekly job and `sealwatch health run` call; `sealwatch health history` lists the runs.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sealwatch_health::record::mtasts::StsMode;
use sealwatch_health::{
    Change, CheckConfig, CheckId, Finding, Grade, HealthChecker, HealthReport, MtaStsState,
    OutboundPolicy, StsPolicyHealth, diff,
};
use sealwatch_model::DomainName;
use sealwatch_store::{HealthAnomaly, HealthAnomalyAction, HealthRun, Store};
use serde::Serialize;
use serde_json::json;
use tracing::Instrument as _;

use crate::cli::{CheckerArgs, HealthCommand, HealthHistoryArgs, HealthRunArgs};
use crate::config::Config;

/// Kind of the anomaly a broken MTA-STS policy opens.
pub const STS_ANOMALY_KIND: &str = "mta-sts-policy-broken";
/// DKIM selectors seen in DMARC reports are taken from this many days back.
const SELECTOR_DAYS: i32 = 90;
/// At most this many selectors from reports are tried.
const MAX_REPORT_SELECTORS: usize = 20;
/// Stored runs searched for the last published MTA-STS mode.
const MODE_HISTORY: u64 = 8;

/// The fingerprint of a domain's MTA-STS anomaly (one per domain).
pub fn sts_fingerprint(domain: &str) -> String {
    format!("health:mta-sts:{domain}")
}

/// The checker settings for `flags`; `default_our_rua` applies when no `--our-rua` is given;
/// `outbound` says which addresses the policy fetch may connect to (`[outbound]`).
pub fn check_config(
    flags: &CheckerArgs,
    default_our_rua: &[String],
    outbound: OutboundPolicy,
) -> anyhow::Result<CheckConfig> {
    let mut config = CheckConfig {
        name_servers: flags.nameservers.clone(),
        dns_timeout: Duration::from_secs_f64(flags.dns_timeout.max(0.1)),
        mta_sts_connect: flags.mta_sts_addr,
        outbound,
        our_rua: if flags.our_rua.is_empty() {
            default_our_rua.to_vec()
        } else {
            flags.our_rua.clone()
        },
        dkim_selectors: flags.dkim_selectors.clone(),
        ..CheckConfig::default()
    };
    if let Some(path) = &flags.ca_file {
        config.extra_roots = sealwatch_health::load_pem_roots(path)
            .with_context(|| format!("--ca-file {}", path.display()))?;
    }
    if flags.no_blocklists {
        config.dnsbl_zones.clear();
        config.domain_blocklists.clear();
    } else {
        if !flags.dnsbl.is_empty() {
            config.dnsbl_zones = flags.dnsbl.clone();
        }
        if !flags.domain_blocklists.is_empty() {
            config.domain_blocklists = flags.domain_blocklists.clone();
        }
    }
    Ok(config)
}

/// The checker of the service: our reporting addresses from `[reporting]` (unless `flags`
/// name others), everything else from `flags` (`CheckerArgs::default()` for the job).
pub fn checker_from_config(config: &Config, flags: &CheckerArgs) -> anyhow::Result<HealthChecker> {
    let ours = [
        config.reporting.dmarc_rua.clone(),
        config.reporting.tlsrpt_rua.clone(),
    ];
    HealthChecker::new(check_config(flags, &ours, config.outbound.policy())?)
        .context("setting up the health check")
}

/// The previous stored run a new one is compared with.
#[derive(Debug, Clone, Serialize)]
pub struct PreviousRun {
    pub run_id: i64,
    pub checked_at: DateTime<Utc>,
    pub score: i32,
    pub grade: String,
}

/// What happened to the domain's MTA-STS anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyAction {
    Opened,
    Updated,
    Reopened,
    /// Acknowledged or dismissed by staff: only its last-seen day was refreshed.
    Refreshed,
    Resolved,
}

/// The MTA-STS anomaly a run opened, updated or resolved.
#[derive(Debug, Clone, Serialize)]
pub struct AnomalyEvent {
    pub id: i64,
    pub action: AnomalyAction,
    pub kind: &'static str,
    /// Of the problem found (absent when resolved).
    pub severity: Option<String>,
    /// The row's status afterwards.
    pub status: String,
    pub summary: Option<String>,
}

/// One stored health-check run and what it changed.
#[derive(Debug, Clone, Serialize)]
pub struct CheckOutcome {
    pub tenant_id: i64,
    pub domain_id: i64,
    pub domain: String,
    pub run_id: i64,
    pub checked_at: DateTime<Utc>,
    pub score: u8,
    pub grade: Grade,
    pub complete: bool,
    pub mta_sts: MtaStsState,
    /// The run this one was compared with (none for a domain's first run).
    pub previous: Option<PreviousRun>,
    /// What changed since `previous`.
    pub changes: Vec<Change>,
    /// The MTA-STS anomaly opened, updated or resolved by this run.
    pub anomaly: Option<AnomalyEvent>,
}

/// Checks one stored domain as of `now`, stores the run, diffs it against the previous
/// stored run and opens, updates or resolves the domain's MTA-STS anomaly. DKIM selectors
/// seen in the domain's DMARC reports of the last 90 days are tried besides the configured
/// and common ones. The stored report's `checked_at` is `now`.
pub async fn check_and_store(
    store: &Store,
    checker: &HealthChecker,
    domain_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<CheckOutcome> {
    let span = tracing::info_span!("health_check", domain_id, domain = tracing::field::Empty);
    async move {
        let target = store
            .health_target(domain_id)
            .await
            .with_context(|| format!("looking up domain {domain_id}"))?;
        tracing::Span::current().record("domain", target.domain.as_str());
        let domain = DomainName::parse(&target.domain)
            .with_context(|| format!("stored domain {:?} is not a domain name", target.domain))?;
        let today = day_of(now);
        let selectors = store
            .dkim_selectors_seen(
                domain_id,
                domain.as_str(),
                today - SELECTOR_DAYS,
                MAX_REPORT_SELECTORS,
            )
            .await
            .context("reading the DKIM selectors of the domain's reports")?;
        let earlier = store
            .recent_health_checks(domain_id, MODE_HISTORY)
            .await
            .context("reading earlier health checks")?;

        let mut report = checker.check(&domain, &selectors).await;
        report.checked_at = now;
        let json = serde_json::to_string(&report).context("encoding the report")?;
        let run = store
            .record_health_check(
                domain_id,
                i32::from(report.score),
                &report.grade.to_string(),
                &json,
                now,
            )
            .await
            .context("storing the health check")?;

        let earlier: Vec<(HealthRun, Option<HealthReport>)> = earlier
            .into_iter()
            .map(|r| {
                let parsed = match serde_json::from_str::<HealthReport>(&r.report) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        tracing::warn!(run_id = r.id, error = %e, "stored health report does not read back");
                        None
                    }
                };
                (r, parsed)
            })
            .collect();
        let (previous, changes) = match earlier.first() {
            Some((run, parsed)) => (
                Some(PreviousRun {
                    run_id: run.id,
                    checked_at: run.checked_at,
                    score: run.score,
                    grade: run.grade.clone(),
                }),
                parsed.as_ref().map(|p| diff(p, &report)).unwrap_or_default(),
            ),
            None => (None, Vec::new()),
        };

        let fingerprint = sts_fingerprint(domain.as_str());
        let anomaly = match report.sts_policy_health() {
            StsPolicyHealth::Broken(findings) => {
                let mode = report
                    .sts_mode()
                    .map(|m| (m, ModeSource::ThisCheck))
                    .or_else(|| {
                        earlier.iter().find_map(|(run, parsed)| {
                            parsed
                                .as_ref()
                                .and_then(HealthReport::sts_mode)
                                .map(|m| (m, ModeSource::Earlier(run.checked_at)))
                        })
                    });
                let record = sts_anomaly(&report, &findings, mode, run.id, &fingerprint);
                let outcome = store
                    .upsert_health_anomaly(domain_id, &record, today, now)
                    .await
                    .context("recording the MTA-STS anomaly")?;
                tracing::info!(
                    anomaly_id = outcome.id,
                    action = ?outcome.action,
                    severity = %record.severity,
                    "MTA-STS policy broken"
                );
                Some(AnomalyEvent {
                    id: outcome.id,
                    action: match outcome.action {
                        HealthAnomalyAction::Opened => AnomalyAction::Opened,
                        HealthAnomalyAction::Updated => AnomalyAction::Updated,
                        HealthAnomalyAction::Reopened => AnomalyAction::Reopened,
                        HealthAnomalyAction::Refreshed => AnomalyAction::Refreshed,
                    },
                    kind: STS_ANOMALY_KIND,
                    severity: Some(record.severity),
                    status: outcome.status,
                    summary: Some(record.summary),
                })
            }
            StsPolicyHealth::Healthy => {
                let note = match report.mta_sts {
                    MtaStsState::Absent => "MTA-STS is no longer published",
                    MtaStsState::NotApplicable => "the domain no longer has MX hosts",
                    _ => "the health check found the MTA-STS policy working",
                };
                let resolved = store
                    .resolve_health_anomaly(domain_id, &fingerprint, note, now)
                    .await
                    .context("resolving the MTA-STS anomaly")?;
                resolved.map(|id| {
                    tracing::info!(anomaly_id = id, "MTA-STS policy works again");
                    AnomalyEvent {
                        id,
                        action: AnomalyAction::Resolved,
                        kind: STS_ANOMALY_KIND,
                        severity: None,
                        status: "resolved".to_owned(),
                        summary: None,
                    }
                })
            }
            // A failed lookup tells nothing: leave the anomaly as it is.
            StsPolicyHealth::Unknown => None,
        };
        tracing::info!(
            run_id = run.id,
            score = report.score,
            changes = changes.len(),
            "health check stored"
        );
        Ok(CheckOutcome {
            tenant_id: target.tenant_id,
            domain_id,
            domain: target.domain,
            run_id: run.id,
            checked_at: now,
            score: report.score,
            grade: report.grade,
            complete: report.complete,
            mta_sts: report.mta_sts,
            previous,
            changes,
            anomaly,
        })
    }
    .instrument(span)
    .await
}

/// Where the MTA-STS mode that decides the anomaly's severity was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModeSource {
    ThisCheck,
    Earlier(DateTime<Utc>),
}

/// The UTC day number of a time.
fn day_of(t: DateTime<Utc>) -> i32 {
    sealwatch_analytics::day_of(t.timestamp())
}

/// The anomaly of a broken MTA-STS policy: critical when the published mode is (or was
/// last seen as) `enforce`, else warning. Pure.
fn sts_anomaly(
    report: &HealthReport,
    findings: &[&Finding],
    mode: Option<(StsMode, ModeSource)>,
    run_id: i64,
    fingerprint: &str,
) -> HealthAnomaly {
    let domain = report.domain.as_str();
    let enforce = matches!(mode, Some((StsMode::Enforce, _)));
    let severity = if enforce { "critical" } else { "warning" };
    let first = findings
        .first()
        .map_or("the MTA-STS policy does not work", |f| f.summary.as_str());
    let summary = format!("MTA-STS policy of {domain} is broken: {first}");
    let mode_text = match mode {
        Some((m, ModeSource::ThisCheck)) => format!("The policy is published in mode {m}."),
        Some((m, ModeSource::Earlier(at))) => format!(
            "The policy could not be read this time; the check of {} found it in mode {m}.",
            at.format("%Y-%m-%d")
        ),
        None => "The policy's mode is not known: no check has been able to read it.".to_owned(),
    };
    let mismatch_only = findings
        .iter()
        .all(|f| f.check == CheckId::MtaStsMxMismatch);
    let consequence = match (enforce, mismatch_only) {
        (true, true) => {
            "This is urgent: mail to the hosts the policy does not cover is being deferred \
             and then bounced by senders that apply MTA-STS."
        }
        (true, false) => {
            "Senders that cached the enforce policy keep applying it until its max_age runs \
             out but cannot pick up any change; after that, and for every sender that never \
             cached it, the protection is silently off."
        }
        (false, _) => {
            "Mail still flows, but the protection MTA-STS should give is not in place, and \
             TLS reports will show failures."
        }
    };
    let what_happened = format!(
        "On {} the health check found that the MTA-STS policy of {domain} does not work: {}.",
        report.checked_at.format("%Y-%m-%d"),
        findings
            .iter()
            .map(|f| f.summary.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    );
    let what_it_means = format!(
        "{} {mode_text} {consequence}",
        findings.first().map_or("", |f| f.explanation.as_str())
    );
    let fixes: Vec<String> = findings
        .iter()
        .flat_map(|f| f.fixes.iter().map(ToString::to_string))
        .collect();
    let what_to_do = if fixes.is_empty() {
        format!(
            "Make https://mta-sts.{domain}/.well-known/mta-sts.txt fetchable again: served over \
             HTTPS with a valid certificate for mta-sts.{domain}, status 200, as text/plain. \
             The health check resolves this anomaly once it can read a working policy."
        )
    } else {
        format!(
            "Publish:\n{}\nThe health check resolves this anomaly once it can read a working \
             policy.",
            fixes.join("\n")
        )
    };
    let mode_json = mode.map(|(m, _)| m.as_str());
    let mode_source = match mode {
        Some((_, ModeSource::ThisCheck)) => json!("this check"),
        Some((_, ModeSource::Earlier(at))) => json!(at),
        None => serde_json::Value::Null,
    };
    HealthAnomaly {
        kind: STS_ANOMALY_KIND.to_owned(),
        fingerprint: fingerprint.to_owned(),
        severity: severity.to_owned(),
        summary,
        evidence: json!({
            "source": "health-check",
            "health_check_id": run_id,
            "checked_at": report.checked_at,
            "policy_url": format!("https://mta-sts.{domain}/.well-known/mta-sts.txt"),
            "mode": mode_json,
            "mode_seen": mode_source,
            "findings": findings.iter().map(|f| json!({
                "check": f.check,
                "severity": f.severity,
                "subject": f.subject,
                "summary": f.summary,
                "found": f.found,
                "fix": f.fixes.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }),
        explanation: json!({
            "what_happened": what_happened,
            "what_it_means": what_it_means,
            "what_to_do": what_to_do,
            "who_fixes_it": format!(
                "Whoever runs the web server for mta-sts.{domain} (its certificate and the policy \
                 file) and the DNS of {domain}."
            ),
        }),
    }
}

/// `sealwatch health run|history`.
pub async fn run_command(
    store: &Store,
    config: &Config,
    command: HealthCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        HealthCommand::Run(args) => run(store, config, &args).await,
        HealthCommand::History(args) => history(store, &args).await,
    }
}

async fn run(store: &Store, config: &Config, args: &HealthRunArgs) -> anyhow::Result<ExitCode> {
    let checker = checker_from_config(config, &args.checker)?;
    let domain = match &args.domain {
        Some(d) => Some(
            DomainName::parse(d)
                .with_context(|| format!("{d:?} is not a domain name"))?
                .as_str()
                .to_owned(),
        ),
        None => None,
    };
    let targets = store.analysis_targets(domain.as_deref()).await?;
    if let Some(d) = &domain
        && targets.is_empty()
    {
        anyhow::bail!("{d} is not a stored domain of an active tenant");
    }
    let mut failed = 0usize;
    for t in &targets {
        match check_and_store(store, &checker, t.domain_id, Utc::now()).await {
            Ok(outcome) => {
                if args.json {
                    println!(
                        "{}",
                        serde_json::to_string(&outcome).context("encoding the outcome")?
                    );
                } else {
                    print!("{}", render_outcome(&outcome));
                }
            }
            Err(e) => {
                failed += 1;
                tracing::error!(domain = %t.domain, error = %format!("{e:#}"), "health check failed");
                eprintln!("{}: health check failed: {e:#}", t.domain);
            }
        }
    }
    if !args.json {
        println!(
            "checked {} domain{}{}",
            targets.len() - failed,
            if targets.len() - failed == 1 { "" } else { "s" },
            if failed > 0 {
                format!(", {failed} failed")
            } else {
                String::new()
            }
        );
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The readable summary of one run.
pub fn render_outcome(o: &CheckOutcome) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} — score {}/100, grade {}{} (run {})",
        o.domain,
        o.score,
        o.grade,
        if o.complete { "" } else { ", incomplete" },
        o.run_id
    );
    match &o.previous {
        None => {
            let _ = writeln!(out, "  first run: nothing to compare with");
        }
        Some(p) if o.changes.is_empty() => {
            let _ = writeln!(
                out,
                "  no changes since {} (run {})",
                p.checked_at.format("%Y-%m-%d %H:%M UTC"),
                p.run_id
            );
        }
        Some(p) => {
            let _ = writeln!(
                out,
                "  changes since {} (run {}):",
                p.checked_at.format("%Y-%m-%d %H:%M UTC"),
                p.run_id
            );
            for c in &o.changes {
                let _ = writeln!(out, "    - {}", c.describe());
            }
        }
    }
    if let Some(a) = &o.anomaly {
        let action = match a.action {
            AnomalyAction::Opened => "opened",
            AnomalyAction::Updated => "updated",
            AnomalyAction::Reopened => "reopened",
            AnomalyAction::Refreshed => "seen again",
            AnomalyAction::Resolved => "resolved",
        };
        let _ = write!(out, "  anomaly {} {} {action}", a.id, a.kind);
        if let Some(s) = &a.severity {
            let _ = write!(out, " ({s}, {})", a.status);
        }
        if let Some(s) = &a.summary {
            let _ = write!(out, ": {s}");
        }
        out.push('\n');
    }
    out
}

async fn history(store: &Store, args: &HealthHistoryArgs) -> anyhow::Result<ExitCode> {
    let domain = DomainName::parse(&args.domain)
        .with_context(|| format!("{:?} is not a domain name", args.domain))?;
    let target = store
        .analysis_targets(Some(domain.as_str()))
        .await?
        .into_iter()
        .next()
        .with_context(|| format!("{domain} is not a stored domain of an active tenant"))?;
    let runs = store
        .recent_health_checks(target.domain_id, args.limit)
        .await?;
    if runs.is_empty() && !args.json {
        println!("{domain}: no stored health checks");
    }
    for r in &runs {
        let report = serde_json::from_str::<HealthReport>(&r.report).ok();
        let problems = report.as_ref().map(|p| {
            p.findings
                .iter()
                .filter(|f| {
                    matches!(
                        f.severity,
                        sealwatch_health::Severity::Warning | sealwatch_health::Severity::Critical
                    )
                })
                .count()
        });
        if args.json {
            println!(
                "{}",
                json!({
                    "run_id": r.id,
                    "domain": target.domain,
                    "checked_at": r.checked_at,
                    "score": r.score,
                    "grade": r.grade,
                    "problems": problems,
                    "mta_sts": report.as_ref().map(|p| p.mta_sts),
                })
            );
        } else {
            println!(
                "{:>6}  {}  {:>3}/100  {}  {}",
                r.id,
                r.checked_at.format("%Y-%m-%d %H:%M UTC"),
                r.score,
                r.grade,
                problems.map_or_else(|| "report unreadable".to_owned(), |n| format!("{n} to fix"))
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealwatch_health::Severity;

    fn broken_report(mta_sts: MtaStsState, findings: serde_json::Value) -> HealthReport {
        serde_json::from_value(json!({
            "domain": "x.test",
            "checked_at": "2026-11-30T06:00:00Z",
            "score": 70,
            "grade": "C",
            "complete": true,
            "dmarc_policy": "reject",
            "mta_sts": mta_sts,
            "tls_rpt": "present",
            "mx": [],
            "findings": findings,
            "records": [],
        }))
        .expect("a report")
    }

    fn finding(check: &str, severity: &str) -> serde_json::Value {
        json!({
            "check": check,
            "category": "mta-sts",
            "severity": severity,
            "subject": "https://mta-sts.x.test/.well-known/mta-sts.txt",
            "found": "v=STSv1; id=1",
            "summary": format!("summary of {check}"),
            "explanation": "Senders cannot read the policy.",
            "fixes": [{"kind": "dns", "name": "_mta-sts.x.test", "rtype": "TXT", "value": "v=STSv1; id=2"}],
        })
    }

    fn anomaly_of(report: &HealthReport, mode: Option<(StsMode, ModeSource)>) -> HealthAnomaly {
        let StsPolicyHealth::Broken(f) = report.sts_policy_health() else {
            panic!("expected a broken policy");
        };
        sts_anomaly(report, &f, mode, 7, &sts_fingerprint("x.test"))
    }

    #[test]
    fn enforce_mode_makes_the_anomaly_critical() {
        let r = broken_report(
            MtaStsState::Enforce,
            json!([finding("mta-sts-mx-mismatch", "critical")]),
        );
        let a = anomaly_of(&r, Some((StsMode::Enforce, ModeSource::ThisCheck)));
        assert_eq!(a.kind, "mta-sts-policy-broken");
        assert_eq!(a.fingerprint, "health:mta-sts:x.test");
        assert_eq!(a.severity, "critical");
        assert_eq!(
            a.summary,
            "MTA-STS policy of x.test is broken: summary of mta-sts-mx-mismatch"
        );
        assert_eq!(a.evidence["mode"], "enforce");
        assert_eq!(a.evidence["mode_seen"], "this check");
        assert_eq!(a.evidence["health_check_id"], 7);
        assert_eq!(a.evidence["findings"][0]["check"], "mta-sts-mx-mismatch");
        assert_eq!(a.evidence["findings"][0]["found"], "v=STSv1; id=1");
        assert_eq!(
            a.evidence["findings"][0]["fix"][0],
            "_mta-sts.x.test. IN TXT \"v=STSv1; id=2\""
        );
        let what = a.explanation["what_it_means"].as_str().expect("text");
        assert!(
            what.starts_with("Senders cannot read the policy."),
            "{what}"
        );
        assert!(what.contains("published in mode enforce"), "{what}");
        assert!(what.contains("This is urgent"), "{what}");
        assert!(
            a.explanation["what_to_do"]
                .as_str()
                .expect("text")
                .contains("_mta-sts.x.test. IN TXT \"v=STSv1; id=2\"")
        );
        assert!(
            a.explanation["what_happened"]
                .as_str()
                .expect("text")
                .starts_with("On 2026-11-30 ")
        );
    }

    #[test]
    fn testing_or_unknown_mode_makes_it_a_warning() {
        let r = broken_report(
            MtaStsState::Broken,
            json!([finding("mta-sts-certificate-invalid", "critical")]),
        );
        let a = anomaly_of(&r, None);
        assert_eq!(a.severity, "warning");
        assert_eq!(a.evidence["mode"], serde_json::Value::Null);
        let at: DateTime<Utc> = "2026-11-23T06:00:00Z".parse().expect("time");
        let a = anomaly_of(&r, Some((StsMode::Testing, ModeSource::Earlier(at))));
        assert_eq!(a.severity, "warning");
        assert!(
            a.explanation["what_it_means"]
                .as_str()
                .expect("text")
                .contains("the check of 2026-11-23 found it in mode testing")
        );
        // the mode last seen decides when this check could not read the policy
        let a = anomaly_of(&r, Some((StsMode::Enforce, ModeSource::Earlier(at))));
        assert_eq!(a.severity, "critical");
        let what = a.explanation["what_it_means"].as_str().expect("text");
        assert!(
            what.contains("Senders that cached the enforce policy"),
            "{what}"
        );
        assert!(!what.contains("urgent"), "{what}");
    }

    #[test]
    fn a_weak_but_working_policy_opens_nothing() {
        let r = broken_report(
            MtaStsState::Testing,
            json!([finding("mta-sts-mode-testing", "warning")]),
        );
        assert_eq!(r.sts_policy_health(), StsPolicyHealth::Healthy);
        assert!(r.has(CheckId::MtaStsModeTesting));
        assert_eq!(r.findings[0].severity, Severity::Warning);
    }

    #[test]
    fn days_are_utc_day_numbers() {
        let t: DateTime<Utc> = "1970-01-02T23:59:59Z".parse().expect("time");
        assert_eq!(day_of(t), 1);
    }

    #[test]
    fn default_flags_take_our_addresses_from_the_configuration() {
        let c = check_config(
            &CheckerArgs::default(),
            &["dmarc@r.test".to_owned()],
            OutboundPolicy::PublicOnly,
        )
        .expect("config");
        assert_eq!(c.our_rua, vec!["dmarc@r.test".to_owned()]);
        assert!(!c.dnsbl_zones.is_empty());
        assert_eq!(c.outbound, OutboundPolicy::PublicOnly);
        let flags = CheckerArgs {
            our_rua: vec!["mailto:x@y.test".to_owned()],
            no_blocklists: true,
            ..CheckerArgs::default()
        };
        let c = check_config(
            &flags,
            &["dmarc@r.test".to_owned()],
            OutboundPolicy::AllowPrivate,
        )
        .expect("config");
        assert_eq!(c.our_rua, vec!["mailto:x@y.test".to_owned()]);
        assert_eq!(c.outbound, OutboundPolicy::AllowPrivate);
        assert!(c.dnsbl_zones.is_empty() && c.domain_blocklists.is_empty());
    }
}
