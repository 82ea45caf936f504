#!/usr/bin/env bash
# Stop the servers that start.sh started (only the processes named by our pid files, and only
# when their command line still matches). Keeps the state dir (mail, spool, certs, logs);
# --clean deletes it too.
#
#   tests/servers/stop.sh [--clean]
set -euo pipefail
SW_NAME=stop
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLEAN=0
case "${1:-}" in
  "") ;;
  --clean) CLEAN=1 ;;
  *) echo "usage: $0 [--clean]" >&2; exit 2 ;;
esac
if [ ! -d "$STATE" ]; then
  log "nothing to stop: $STATE does not exist"
  exit 0
fi
take_lock
stop_pidfile https "$RUN/https.pid" "https_server.py --webroot $WEBROOT"
stop_pidfile https-zones "$RUN/https-zones.pid" "https_server.py --listen 127.0.0.1:$HTTPS_ZONES_PORT"
stop_pidfile https-expired "$RUN/https-expired.pid" "https_server.py --listen 127.0.0.1:$HTTPS_EXPIRED_PORT"
stop_pidfile smtp "$RUN/smtp.pid" "smtp_sink.py --spool $SPOOL"
stop_pidfile nsd "$RUN/nsd.pid" "$NSD_CONF"
dovecot_stop
rm -f "$RUN"/*.spec
if [ "$CLEAN" = 1 ]; then
  rm -rf "$STATE"
  rm -f "$LOCK"
  log "removed $STATE"
fi
