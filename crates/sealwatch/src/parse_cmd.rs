//! `sealwatch parse`: offline parsing of files, emails and directories.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use sealwatch_model::{Report, ReportKind};
use sealwatch_parser::Parser;

use crate::cli::ParseArgs;

#[derive(Debug, Default)]
struct Tally {
    files: u64,
    failed_files: u64,
    reports: [u64; 3],
    part_failures: u64,
}

pub fn run(args: &ParseArgs) -> anyhow::Result<ExitCode> {
    let parser = Parser::new(args.limits.to_limits());
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut tally = Tally::default();
    let mut buf = Vec::new();
    for root in &args.paths {
        let meta = fs::metadata(root).with_context(|| format!("cannot read {}", root.display()))?;
        if meta.is_dir() {
            walk(root, &mut |path| {
                parse_one(&parser, path, args.json, &mut buf, &mut out, &mut tally)
            })?;
        } else {
            parse_one(&parser, root, args.json, &mut buf, &mut out, &mut tally)?;
        }
    }
    out.flush().context("writing to stdout")?;
    drop(out);
    let [agg, tls, fail] = tally.reports;
    let mut summary = format!(
        "parsed {} files: {} reports ({agg} dmarc-aggregate, {tls} tls-rpt, {fail} dmarc-failure), {} files failed",
        tally.files,
        agg + tls + fail,
        tally.failed_files,
    );
    if tally.part_failures > 0 {
        summary.push_str(&format!(", {} parts failed", tally.part_failures));
    }
    if args.stats
        && let Some(kb) = peak_rss_kb()
    {
        summary.push_str(&format!(", peak_rss_kb={kb}"));
    }
    eprintln!("{summary}");
    Ok(if tally.failed_files == 0 && tally.part_failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn parse_one(
    parser: &Parser,
    path: &Path,
    json_lines: bool,
    buf: &mut Vec<u8>,
    out: &mut impl Write,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    tally.files += 1;
    let shown = path.display();
    if let Err(e) = read_file(path, parser.limits().max_input_bytes, buf) {
        tally.failed_files += 1;
        eprintln!("{shown}: {e}");
        return Ok(());
    }
    let name = path.file_name().and_then(|n| n.to_str());
    match parser.parse(buf, name) {
        Ok(parsed) => {
            for report in &parsed.reports {
                write_report(out, report, json_lines).context("writing to stdout")?;
                let slot = match report.kind() {
                    ReportKind::DmarcAggregate => 0,
                    ReportKind::TlsRpt => 1,
                    ReportKind::DmarcFailure => 2,
                };
                tally.reports[slot] += 1;
            }
            for f in &parsed.failures {
                tally.part_failures += 1;
                eprintln!("{shown}: {}: {} [{}]", f.part, f.error, f.error.code());
            }
        }
        Err(e) => {
            tally.failed_files += 1;
            eprintln!("{shown}: {e} [{}]", e.code());
        }
    }
    Ok(())
}

fn write_report(out: &mut impl Write, report: &Report, json_lines: bool) -> io::Result<()> {
    if json_lines {
        serde_json::to_writer(&mut *out, report)?;
    } else {
        serde_json::to_writer_pretty(&mut *out, report)?;
    }
    out.write_all(b"\n")
}

fn read_file(path: &Path, limit: u64, buf: &mut Vec<u8>) -> io::Result<()> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    if len > limit {
        return Err(io::Error::other(format!(
            "file is {len} bytes, over the limit of {limit} bytes [too-large]"
        )));
    }
    buf.clear();
    buf.reserve(len as usize);
    file.take(limit + 1).read_to_end(buf)?;
    Ok(())
}

/// Depth-first walk that holds one directory listing at a time, never the whole tree.
fn walk(root: &Path, visit: &mut dyn FnMut(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let mut stack: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("{}: {e}", dir.display());
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("{}: {e}", dir.display());
                    continue;
                }
            };
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() || t.is_symlink() => visit(&path)?,
                _ => {}
            }
        }
    }
    Ok(())
}

/// Peak resident memory of this process (Linux `VmHWM`).
pub fn peak_rss_kb() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix("VmHWM:")?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    })
}
