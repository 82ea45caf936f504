//! The detectors' quality at CI size: `sealwatch bench-quality --check` on a small
//! simulated scenario (50 domains, 8 weeks, 2 incidents of each kind, SQLite) finds every
//! incident in both modes (one catch-up analysis, nightly analyses) with at most 1 false
//! alarm per 100 healthy domains per week.
//!
//! Size: 8 weeks give the nightly mode 6 weeks to judge and every incident 14+ days of
//! history before it starts; 2 per kind is the smallest count that still varies the
//! incidents' parameters (provider, MX, result type, start, end) within a kind; 50
//! domains leave 36 healthy ones for false alarms to show (fewer weeks and domains make one
//! chance false alarm weigh more than the target allows). It runs a debug build of the
//! whole pipeline (import and 43 nightly analyses), so it has a longer timeout of its own
//! (`.config/nextest.toml`). The seed is the command's default.

use std::process::Command;

#[test]
fn bench_quality_meets_its_targets_at_ci_size() {
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .args([
            "bench-quality",
            "--domains",
            "50",
            "--weeks",
            "8",
            "--per-kind",
            "2",
            "--engine",
            "sqlite",
            "--check",
        ])
        .output()
        .expect("run sealwatch bench-quality");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    eprintln!(
        "bench-quality took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "bench-quality --check failed ({:?}):\n{stdout}\n{stderr}",
        out.status
    );
    for mode in ["once", "nightly"] {
        let block = stdout
            .split("== mode ")
            .find(|b| b.starts_with(&format!("{mode}:")))
            .unwrap_or_else(|| panic!("no block for mode {mode}:\n{stdout}"));
        let recall = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("recall"))
            .unwrap_or_else(|| panic!("no recall line for mode {mode}:\n{stdout}"));
        let value: f64 = recall
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("recall of {mode} is not a number: {recall:?}"));
        assert!(value >= 1.0, "recall of {mode}: {recall}");
    }
    assert!(
        stdout.contains("targets") && stdout.contains(": met"),
        "{stdout}"
    );
}
