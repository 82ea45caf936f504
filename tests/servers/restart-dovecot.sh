#!/usr/bin/env bash
# Restart the test Dovecot (for "server restarts mid-poll" tests): SIGTERM the master, which
# drops every IMAP connection, wait until it is gone, optionally stay down a while, start it
# again with the same configuration, and return once it greets on the IMAP port. Stored mail
# is kept.
#
#   tests/servers/restart-dovecot.sh [--down SECONDS]
#
# It restarts the Dovecot of $SEALWATCH_TEST_SERVERS_STATE, which every test using that
# instance shares. A test that must not disturb others starts a private one first, e.g.
#   SEALWATCH_TEST_SERVERS_STATE=/tmp/sw-restart SEALWATCH_TEST_IMAP_PORT=11143 \
#   SEALWATCH_TEST_IMAPS_PORT=11993 tests/servers/start.sh --only dovecot
# and calls this script (and stop.sh --clean) with the same variables.
set -euo pipefail
SW_NAME=restart-dovecot
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DOWN=0
case "${1:-}" in
  "") ;;
  --down) DOWN=${2:?--down needs seconds} ;;
  *) echo "usage: $0 [--down SECONDS]" >&2; exit 2 ;;
esac
[ -s "$CERTS/server-chain.pem" ] || die "no test servers in $STATE: run tests/servers/start.sh first"
take_lock
dovecot_stop
if [ "$DOWN" != 0 ]; then
  log "dovecot: staying down for ${DOWN}s"
  sleep "$DOWN"
fi
dovecot_prepare
dovecot_start
