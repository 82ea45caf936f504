//! `sealwatch bench-parse`: writes a realistic report corpus, then times the real
//! `sealwatch parse --json --stats` over it in a child process — once over the whole
//! corpus and once over its first half, so throughput and the independence of peak
//! memory from corpus size are both visible.

use std::fs;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sealwatch_simulate::{Corpus, CorpusConfig, CorpusStats};

use crate::cli::BenchArgs;

/// Most files per batch directory.
const FILES_PER_DIR: usize = 2000;

pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.reports > 0, "--reports must be at least 1");
    let exe = std::env::current_exe().context("cannot find the sealwatch executable")?;
    let (root, created) = prepare_dir(args.dir.as_deref(), args.seed)?;
    let mut cleanup = Cleanup {
        root: root.clone(),
        whole_root: created,
        dirs: Vec::new(),
        active: !args.keep,
    };
    let tty = std::io::stderr().is_terminal();

    // At least two batch directories, so that half of the corpus is a set of directories.
    let files_per_dir = FILES_PER_DIR.min(args.reports.div_ceil(2)).max(1);
    let corpus = Corpus::new(CorpusConfig {
        files_per_dir,
        ..CorpusConfig::new(args.reports, args.seed)
    });
    let started = Instant::now();
    let step = (args.reports / 200).max(1);
    let progress = |done: usize| {
        if tty && (done.is_multiple_of(step) || done == args.reports) {
            eprint!("\rgenerating corpus: {done}/{} files", args.reports);
            let _ = std::io::stderr().flush();
        }
    };
    let written = corpus.write_to(&root, &progress);
    if tty {
        eprintln!();
    }
    let stats = written.with_context(|| format!("writing the corpus to {}", root.display()))?;
    cleanup.dirs = stats.dirs.iter().map(|d| root.join(&d.name)).collect();
    let generated_in = started.elapsed();

    if tty {
        eprintln!("parsing the full corpus ...");
    }
    let full = time_parse(&exe, std::slice::from_ref(&root))?;
    let half_dirs = stats
        .dirs
        .len()
        .div_ceil(2)
        .min(stats.dirs.len().saturating_sub(1));
    let half = if half_dirs > 0 {
        if tty {
            eprintln!("parsing the first half ...");
        }
        let paths: Vec<PathBuf> = stats.dirs[..half_dirs]
            .iter()
            .map(|d| root.join(&d.name))
            .collect();
        let xml: u64 = stats.dirs[..half_dirs]
            .iter()
            .map(|d| d.document_bytes)
            .sum();
        Some((time_parse(&exe, &paths)?, xml))
    } else {
        None
    };

    let kept = if args.keep {
        format!("kept at {}", root.display())
    } else {
        format!("{} (removed)", root.display())
    };
    print_results(
        args.seed,
        &stats,
        generated_in,
        &kept,
        &full,
        half.as_ref().map(|(run, xml)| (run, *xml)),
    );
    drop(cleanup);

    let clean = full.clean() && half.as_ref().is_none_or(|(run, _)| run.clean());
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Picks (and creates) the corpus directory; the flag says whether it was created here.
fn prepare_dir(dir: Option<&Path>, seed: u64) -> anyhow::Result<(PathBuf, bool)> {
    match dir {
        Some(dir) if dir.exists() => {
            let mut entries =
                fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
            anyhow::ensure!(
                entries.next().is_none(),
                "{} is not empty; give a new or empty directory",
                dir.display()
            );
            Ok((dir.to_path_buf(), false))
        }
        Some(dir) => {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            Ok((dir.to_path_buf(), true))
        }
        None => {
            let base = std::env::temp_dir();
            for n in 0u32.. {
                let candidate =
                    base.join(format!("sealwatch-bench-{}-{seed}-{n}", std::process::id()));
                match fs::create_dir(&candidate) {
                    Ok(()) => return Ok((candidate, true)),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("cannot create {}", candidate.display()));
                    }
                }
            }
            anyhow::bail!("no free directory name under {}", base.display())
        }
    }
}

/// Removes the corpus when dropped (also on errors), unless it is to be kept.
struct Cleanup {
    root: PathBuf,
    /// The root directory itself was created by this run.
    whole_root: bool,
    /// Batch directories written into a root that existed before.
    dirs: Vec<PathBuf>,
    active: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.active {
            return;
        }
        let result = if self.whole_root {
            fs::remove_dir_all(&self.root)
        } else {
            self.dirs.iter().try_for_each(fs::remove_dir_all)
        };
        if let Err(e) = result {
            eprintln!(
                "warning: could not remove the corpus at {}: {e}",
                self.root.display()
            );
        }
    }
}

/// What the summary line of `sealwatch parse` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Summary {
    files: u64,
    reports: u64,
    failed_files: u64,
    failed_parts: u64,
    peak_rss_kb: Option<u64>,
}

/// The number written right before `suffix` in `line`.
fn number_before(line: &str, suffix: &str) -> Option<u64> {
    let head = &line[..line.find(suffix)?];
    let start = head
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    head[start..].parse().ok()
}

/// Reads `parsed F files: R reports (…), X files failed[, Y parts failed][, peak_rss_kb=K]`.
fn parse_summary(line: &str) -> Option<Summary> {
    let line = line.trim();
    if !line.starts_with("parsed ") {
        return None;
    }
    let peak_rss_kb = line.split_once("peak_rss_kb=").and_then(|(_, rest)| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    });
    Some(Summary {
        files: number_before(line, " files:")?,
        reports: number_before(line, " reports")?,
        failed_files: number_before(line, " files failed")?,
        failed_parts: number_before(line, " parts failed").unwrap_or(0),
        peak_rss_kb,
    })
}

/// One timed run of the parser.
#[derive(Debug)]
struct ParseRun {
    wall: Duration,
    summary: Summary,
    status: ExitStatus,
    /// The first complaints the parser printed (bounded).
    complaints: Vec<String>,
}

impl ParseRun {
    fn clean(&self) -> bool {
        self.status.success() && self.summary.failed_files == 0 && self.summary.failed_parts == 0
    }
}

fn time_parse(exe: &Path, paths: &[PathBuf]) -> anyhow::Result<ParseRun> {
    let started = Instant::now();
    let mut child = Command::new(exe)
        .args(["parse", "--json", "--stats"])
        .args(paths)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    let mut last = String::new();
    let mut complaints = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let line = line.context("reading the parser's stderr")?;
            if !last.is_empty() && complaints.len() < 5 {
                complaints.push(std::mem::take(&mut last));
            }
            last = line;
        }
    }
    let status = child.wait().context("waiting for the parser")?;
    let wall = started.elapsed();
    let summary = parse_summary(&last).with_context(|| {
        format!("the parser ended ({status}) without its summary line; last line: {last:?}")
    })?;
    Ok(ParseRun {
        wall,
        summary,
        status,
        complaints,
    })
}

const MIB: f64 = 1024.0 * 1024.0;

fn print_results(
    seed: u64,
    stats: &CorpusStats,
    generated_in: Duration,
    location: &str,
    full: &ParseRun,
    half: Option<(&ParseRun, u64)>,
) {
    println!("sealwatch bench-parse (seed {seed})");
    println!(
        "corpus: {} report files in {} directories: {} .xml.gz, {} .zip, {} .eml",
        stats.files,
        stats.dirs.len(),
        stats.xml_gz,
        stats.zip,
        stats.eml
    );
    println!(
        "        {:.1} MiB XML uncompressed (avg {:.1} KiB/report), {:.1} MiB on disk, {} records, {} messages",
        stats.document_bytes as f64 / MIB,
        stats.document_bytes as f64 / stats.files.max(1) as f64 / 1024.0,
        stats.disk_bytes as f64 / MIB,
        stats.records,
        stats.messages
    );
    println!(
        "        generated in {:.1} s; {location}",
        generated_in.as_secs_f64()
    );
    println!();
    println!(
        "{:<6} {:>9} {:>11} {:>8} {:>11} {:>8} {:>13}",
        "run", "reports", "XML MiB", "wall s", "reports/s", "MiB/s", "peak RSS MiB"
    );
    print_row("full", full, stats.document_bytes);
    if let Some((run, xml)) = half {
        print_row("half", run, xml);
        if let (Some(a), Some(b)) = (full.summary.peak_rss_kb, run.summary.peak_rss_kb) {
            println!(
                "peak RSS full/half: {:.2} (1.00 = independent of corpus size)",
                a as f64 / b.max(1) as f64
            );
        }
    }
    for (name, run) in std::iter::once(("full", full)).chain(half.map(|(r, _)| ("half", r))) {
        if !run.clean() {
            println!(
                "{name} run: {} files failed, {} parts failed, exit {}",
                run.summary.failed_files, run.summary.failed_parts, run.status
            );
            for c in &run.complaints {
                println!("  {c}");
            }
        }
    }
}

fn print_row(name: &str, run: &ParseRun, xml_bytes: u64) {
    let secs = run.wall.as_secs_f64().max(1e-9);
    let mib = xml_bytes as f64 / MIB;
    let rss = run.summary.peak_rss_kb.map_or_else(
        || "n/a".to_owned(),
        |kb| format!("{:.1}", kb as f64 / 1024.0),
    );
    println!(
        "{:<6} {:>9} {:>11.1} {:>8.2} {:>11.0} {:>8.1} {:>13}",
        name,
        run.summary.reports,
        mib,
        secs,
        run.summary.reports as f64 / secs,
        mib / secs,
        rss
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_parse_summary_line() {
        let s = parse_summary(
            "parsed 20000 files: 20000 reports (20000 dmarc-aggregate, 0 tls-rpt, 0 dmarc-failure), 0 files failed, peak_rss_kb=12345",
        )
        .expect("summary");
        assert_eq!(
            s,
            Summary {
                files: 20000,
                reports: 20000,
                failed_files: 0,
                failed_parts: 0,
                peak_rss_kb: Some(12345),
            }
        );
        let s = parse_summary(
            "parsed 3 files: 2 reports (2 dmarc-aggregate, 0 tls-rpt, 0 dmarc-failure), 1 files failed, 4 parts failed",
        )
        .expect("summary");
        assert_eq!(
            (s.failed_files, s.failed_parts, s.peak_rss_kb),
            (1, 4, None)
        );
        assert_eq!(parse_summary("error: cannot read x"), None);
    }
}
