//! `sealwatch check DOMAIN`: the domain health check from the command line.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use sealwatch_health::{Finding, HealthChecker, HealthReport, Severity};
use sealwatch_model::DomainName;

use crate::cli::CheckArgs;

/// Width of the readable report.
const WIDTH: usize = 100;
/// Indentation of the detail lines under a finding.
const INDENT: usize = 21;

/// `config_file` is `--config`: only its `[outbound]` section (or
/// `SEALWATCH_OUTBOUND__ALLOW_PRIVATE_ADDRESSES`) matters here.
pub fn run(args: &CheckArgs, config_file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let domain = DomainName::parse(&args.domain)
        .with_context(|| format!("{:?} is not a domain name", args.domain))?;
    let outbound = crate::config::Config::load(config_file)?.outbound.policy();
    let config = crate::health_job::check_config(&args.checker, &[], outbound)?;
    let checker = HealthChecker::new(config).context("setting up the health check")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sealwatch-check")
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(checker.check(&domain, &args.checker.dkim_selectors));
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("serialising the report")?
        );
    } else {
        print!("{}", render(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// The readable report.
pub fn render(report: &HealthReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} — score {}/100, grade {}{}",
        report.domain,
        report.score,
        report.grade,
        if report.complete {
            ""
        } else {
            " (incomplete: some checks could not be run)"
        }
    );
    let mx: Vec<String> = report
        .mx
        .iter()
        .map(|h| {
            let addrs: Vec<String> = h.addresses.iter().map(ToString::to_string).collect();
            format!("{} {} ({})", h.preference, h.host, addrs.join(", "))
        })
        .collect();
    let _ = writeln!(
        out,
        "checked {}; DMARC {}, MTA-STS {}, TLS-RPT {}",
        report.checked_at.format("%Y-%m-%d %H:%M UTC"),
        report
            .dmarc_policy
            .map_or_else(|| "none".to_owned(), |p| format!("p={p}")),
        serde_plain(&report.mta_sts),
        serde_plain(&report.tls_rpt),
    );
    if !mx.is_empty() {
        let _ = writeln!(out, "MX: {}", mx.join(", "));
    }
    out.push('\n');
    for f in &report.findings {
        render_finding(&mut out, f);
    }
    let problems = report
        .findings
        .iter()
        .filter(|f| matches!(f.severity, Severity::Warning | Severity::Critical))
        .count();
    let _ = writeln!(
        out,
        "\n{} finding{}, {problems} to fix.",
        report.findings.len(),
        if report.findings.len() == 1 { "" } else { "s" }
    );
    out
}

fn serde_plain<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn render_finding(out: &mut String, f: &Finding) {
    let severity = match f.severity {
        Severity::Critical => "CRITICAL".to_owned(),
        Severity::Warning => "WARNING".to_owned(),
        other => other.as_str().to_owned(),
    };
    let _ = writeln!(
        out,
        "{:<11}{:<10}{} [{}]",
        f.category.label(),
        severity,
        f.summary,
        f.check
    );
    if f.severity == Severity::Ok {
        return;
    }
    if let Some(found) = &f.found {
        detail(out, "found:", found);
    }
    wrapped(out, "why:", &f.explanation);
    for fix in &f.fixes {
        detail(out, "publish:", &fix.to_string());
    }
}

/// A labelled block whose lines are kept as they are.
fn detail(out: &mut String, label: &str, text: &str) {
    for (i, line) in text.lines().enumerate() {
        let l = if i == 0 { label } else { "" };
        let _ = writeln!(out, "{:>w$} {:<9} {line}", "", l, w = INDENT - 11);
    }
}

/// A labelled paragraph, word-wrapped.
fn wrapped(out: &mut String, label: &str, text: &str) {
    let width = WIDTH - INDENT;
    let mut line = String::new();
    let mut first = true;
    let flush = |out: &mut String, line: &mut String, first: &mut bool| {
        let l = if *first { label } else { "" };
        let _ = writeln!(out, "{:>w$} {:<9} {line}", "", l, w = INDENT - 11);
        line.clear();
        *first = false;
    };
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            flush(out, &mut line, &mut first);
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        flush(out, &mut line, &mut first);
    }
}
