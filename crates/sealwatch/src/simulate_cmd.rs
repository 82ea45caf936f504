//! `sealwatch simulate`: write a seeded scenario of report emails, with injected incidents,
//! for `sealwatch import` and the analytics tests.

use std::fmt::Write as _;
use std::fs;
use std::process::ExitCode;

use anyhow::{Context, bail};
use sealwatch_simulate::{
    Incident, SERVICES, Scenario, ScenarioConfig, ScenarioStats, write_scenario_emails,
};

use crate::cli::SimulateArgs;

pub fn run(args: &SimulateArgs) -> anyhow::Result<ExitCode> {
    let scenario = scenario(args)?;
    let stats = write_scenario_emails(&scenario, &args.out)
        .with_context(|| format!("writing the scenario to {}", args.out.display()))?;
    if let Some(path) = &args.domains_out {
        let names: String = scenario
            .domains()
            .iter()
            .map(|d| format!("{}\n", d.name))
            .collect();
        fs::write(path, names).with_context(|| format!("writing {}", path.display()))?;
    }
    print!("{}", summary(&scenario, &stats, args));
    Ok(ExitCode::SUCCESS)
}

fn scenario(args: &SimulateArgs) -> anyhow::Result<Scenario> {
    if args.domains == 0 {
        bail!("--domains must be at least 1");
    }
    if args.weeks == 0 {
        bail!("--weeks must be at least 1");
    }
    let days = args.weeks.checked_mul(7).context("--weeks is too large")?;
    let incidents = parse_incidents(&args.incidents)?;
    let config = ScenarioConfig {
        seed: args.seed,
        domains: args.domains,
        // By default the scenario ends yesterday, so `sealwatch analyze` (which judges the
        // days up to today) sees it as current.
        start: args.start.unwrap_or_else(|| {
            chrono::Utc::now().date_naive() - chrono::Days::new(u64::from(args.weeks) * 7)
        }),
        days: Some(days),
        rua: args.rua.clone(),
        incidents,
    };
    Ok(Scenario::try_new(config)?)
}

/// Reads every `--incident SPEC`, naming the one that is wrong.
fn parse_incidents(specs: &[String]) -> anyhow::Result<Vec<Incident>> {
    specs
        .iter()
        .map(|spec| {
            spec.parse::<Incident>()
                .with_context(|| format!("--incident {spec:?}"))
        })
        .collect()
}

fn summary(scenario: &Scenario, stats: &ScenarioStats, args: &SimulateArgs) -> String {
    let config = scenario.config();
    let days = config.days.unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "wrote {} report emails ({} DMARC aggregate, {} TLS; {:.1} MiB) for {} domains, {} .. {}, to {} (one directory per day)",
        stats.files,
        stats.dmarc_reports,
        stats.tls_reports,
        stats.bytes as f64 / (1024.0 * 1024.0),
        scenario.domains().len(),
        scenario.date_of(0),
        scenario.date_of(days.saturating_sub(1)),
        args.out.display()
    );
    let _ = writeln!(
        out,
        "DMARC messages {}, TLS sessions {} successful / {} failed, seed {}",
        stats.dmarc_messages, stats.tls_successful_sessions, stats.tls_failed_sessions, config.seed
    );
    if config.incidents.is_empty() {
        let _ = writeln!(out, "incidents: none (a healthy scenario)");
    } else {
        let _ = writeln!(out, "incidents:");
        for incident in &config.incidents {
            let _ = writeln!(out, "  {incident}");
            let _ = writeln!(out, "    {}", scenario.describe(incident));
        }
    }
    let _ = writeln!(out, "domains:");
    for (i, d) in scenario.domains().iter().enumerate() {
        let _ = writeln!(
            out,
            "  {i:>3} {:<28} p={:<10} mail: {:<16} mx: {} mta-sts: {}{}",
            d.name,
            d.p,
            SERVICES[d.services[0].0].key,
            d.mx_hosts.join(","),
            d.sts_mode,
            if d.dane { ", dane" } else { "" }
        );
    }
    if let Some(path) = &args.domains_out {
        let _ = writeln!(out, "domain names written to {}", path.display());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(incidents: &[&str]) -> SimulateArgs {
        SimulateArgs {
            domains: 3,
            weeks: 1,
            out: std::env::temp_dir().join(format!("sealwatch-simulate-{}", std::process::id())),
            seed: 7,
            start: chrono::NaiveDate::from_ymd_opt(2026, 3, 2),
            incidents: incidents.iter().map(|s| (*s).to_owned()).collect(),
            domains_out: None,
            rua: None,
        }
    }

    #[test]
    fn bad_incident_specs_are_named() {
        let err = parse_incidents(&[
            "cert-expired:domain=0".into(),
            "cert-expird:domain=1".into(),
        ])
        .expect_err("typo");
        let text = format!("{err:#}");
        assert!(
            text.contains("--incident \"cert-expird:domain=1\""),
            "{text}"
        );
        assert!(text.contains("unknown incident kind"), "{text}");
        let err = parse_incidents(&["silent:domain=0".into()]).expect_err("no provider");
        assert!(format!("{err:#}").contains("silent needs provider="));
    }

    #[test]
    fn incidents_must_fit_the_scenario() {
        let err = scenario(&args(&["spoofing:domain=5"])).expect_err("no such domain");
        assert!(format!("{err:#}").contains("no domain 5"), "{err:#}");
        let err = scenario(&args(&["silent:provider=google,from=7"])).expect_err("too late");
        assert!(format!("{err:#}").contains("starts on day 7"), "{err:#}");
        let s = scenario(&args(&["cert-expired:domain=1,from=2,to=4"])).expect("fits");
        assert_eq!(s.config().days, Some(7));
        let stats = ScenarioStats::default();
        let text = summary(&s, &stats, &args(&[]));
        assert!(
            text.contains("cert-expired:domain=1,mx=0,from=2,to=4"),
            "{text}"
        );
        assert!(text.contains(&s.domains()[1].name), "{text}");
        assert!(text.contains("2026-03-04 .. 2026-03-06"), "{text}");
    }
}
