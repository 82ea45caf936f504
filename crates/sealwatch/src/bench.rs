//! `sealwatch bench-parse`: placeholder until the corpus generator lands.

use std::process::ExitCode;

use crate::cli::BenchArgs;

pub fn run(_args: &BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("bench-parse is not built yet")
}
