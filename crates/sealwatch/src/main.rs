//! `sealwatch`: the one binary. Wiring only — argument parsing, logging, exit codes; the
//! work lives in the library crates.

mod admin_cmd;
mod analyze_cmd;
mod app;
mod bench;
mod bench_analyze;
mod bench_poll;
mod bench_quality;
mod bench_scale;
mod check_cmd;
mod cli;
mod config;
mod digest_cmd;
mod health_job;
mod jobs_runner;
mod lifecycle_cmd;
mod parse_cmd;
mod serve_cmd;
mod simulate_cmd;
mod telemetry;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    telemetry::init(&cli.log);
    let result = match cli.command {
        cli::Command::Parse(args) => parse_cmd::run(&args),
        cli::Command::BenchParse(args) => bench::run(&args),
        cli::Command::BenchPoll(args) => bench_poll::run(&args),
        cli::Command::BenchScale(args) => bench_scale::run(&args),
        cli::Command::BenchAnalyze(args) => bench_analyze::run(&args),
        cli::Command::BenchQuality(args) => bench_quality::run(&args),
        cli::Command::Simulate(args) => simulate_cmd::run(&args),
        cli::Command::Check(args) => check_cmd::run(&args, cli.config.as_deref()),
        command => app::run(cli.config.as_deref(), command),
    };
    if std::env::var_os("SEALWATCH_PRINT_PEAK_RSS").is_some()
        && let Some(kb) = parse_cmd::peak_rss_kb()
    {
        eprintln!("peak_rss_kb={kb}");
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
