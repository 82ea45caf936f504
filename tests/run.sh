#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs and starts what the tests need, then
# runs formatting, lints and every test. Usage: tests/run.sh [extra nextest args]
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*" >&2; }

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# The shared corpus of real reports must be present: a missing corpus fails the suite.
export SEALWATCH_REQUIRE_CORPUS=1
export SEALWATCH_CORPUS="${SEALWATCH_CORPUS:-$(cd .. && pwd)/shared/corpus}"

if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

log "cargo fmt --check"
cargo fmt --all --check

log "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "tests"
cargo nextest run --workspace --locked --no-fail-fast "$@"

log "doc tests"
cargo test --workspace --doc --locked

log "all checks passed"
