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
# PostgreSQL runs on the CI machines (trust auth); each test creates its own database.
export SEALWATCH_TEST_PG_URL="${SEALWATCH_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"

if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

log "test servers (Dovecot, SMTP sink, NSD, HTTPS)"
tests/servers/install.sh
tests/servers/start.sh
set -a
# shellcheck disable=SC1090
. "${SEALWATCH_TEST_SERVERS_STATE:-/tmp/sealwatch-test-servers}/servers.env"
set +a

log "cargo fmt --check"
cargo fmt --all --check

log "deployment files (hadolint, yamllint, docker-compose config)"
deploy/lint.sh

log "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "tests"
cargo nextest run --workspace --locked --no-fail-fast "$@"

log "doc tests"
cargo test --workspace --doc --locked

log "all checks passed"
