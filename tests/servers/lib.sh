# shellcheck shell=bash
# Shared settings and helpers for start.sh, stop.sh and restart-dovecot.sh (sourced, not run).
#
# Every knob can be overridden from the environment; the defaults are what CI and the Rust
# tests expect. A private second instance (e.g. for a test that restarts Dovecot while nobody
# else should notice) only needs another SEALWATCH_TEST_SERVERS_STATE and other ports.

# shellcheck disable=SC2034  # the settings below are used by the scripts that source this
SW_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${SEALWATCH_TEST_SERVERS_STATE:-/tmp/sealwatch-test-servers}"
IMAP_PORT="${SEALWATCH_TEST_IMAP_PORT:-1143}"
IMAPS_PORT="${SEALWATCH_TEST_IMAPS_PORT:-1993}"
SMTP_PORT="${SEALWATCH_TEST_SMTP_PORT:-2525}"
SMTPS_PORT="${SEALWATCH_TEST_SMTPS_PORT:-2465}"
DNS_PORT="${SEALWATCH_TEST_DNS_PORT:-5353}"
HTTPS_PORT="${SEALWATCH_TEST_HTTPS_PORT:-8443}"
# two more HTTPS listeners for the health-check tests (start.sh, "HTTPS for the test zones")
HTTPS_ZONES_PORT="${SEALWATCH_TEST_HTTPS_ZONES_PORT:-8444}"
HTTPS_EXPIRED_PORT="${SEALWATCH_TEST_HTTPS_EXPIRED_PORT:-8445}"
ANY_USER_PASSWORD="${SEALWATCH_TEST_IMAP_PASSWORD:-sealwatch-any}"
SMTP_USER="${SEALWATCH_TEST_SMTP_USER:-digest}"
SMTP_PASSWORD="${SEALWATCH_TEST_SMTP_PASSWORD:-digestpass}"
MAIL_USER="${SEALWATCH_TEST_MAIL_USER:-vmail}"
READY_TIMEOUT="${SEALWATCH_TEST_READY_TIMEOUT:-20}"   # seconds, per server

LOCK="$STATE.lock"          # beside the state dir, so --fresh/--clean can delete the dir
RUN="$STATE/run"            # pid files and the spec each running server was started with
LOGS="$STATE/logs"
CERTS="$STATE/certs"
MAILDIR_ROOT="$STATE/mail"  # <root>/<user>/Maildir, owned by $MAIL_USER
SPOOL="$STATE/smtp-spool"
ZONES="$STATE/dns/zones"    # run-time copies of tests/servers/dns/*.zone
WEBROOT="$STATE/https-www"  # run-time fixtures, searched before tests/servers/https/www
DOVECOT_CONF="$STATE/dovecot/dovecot.conf"
NSD_CONF="$STATE/dns/nsd.conf"
SANS="DNS:localhost,IP:127.0.0.1,DNS:example.test,DNS:*.example.test,DNS:mta-sts.example.test,DNS:*.reports.test,DNS:*.broken.test"

T0=$(date +%s%N)
log() { printf '[%s %5sms] %s\n' "${SW_NAME:-servers}" $((($(date +%s%N) - T0) / 1000000)) "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }

# Serialise start/stop/restart across processes (nextest runs tests in parallel processes).
take_lock() {
  exec 8>"$LOCK"
  flock -w 120 8 || die "could not lock $LOCK within 120 s"
}

check_state_path() {
  # Dovecot's unix sockets live under $STATE/dovecot/run; sun_path holds 107 bytes.
  [ ${#STATE} -le 60 ] || die "state dir '$STATE' is ${#STATE} chars; keep it <= 60 (unix socket path limit)"
  case "$STATE" in /*) ;; *) die "SEALWATCH_TEST_SERVERS_STATE must be an absolute path" ;; esac
}

# ---------- processes ----------
# pid_stat PID -> prints "STATE PGID" of a live process; fails if it is gone
pid_stat() {
  local s
  { read -r s < "/proc/$1/stat"; } 2>/dev/null || return 1
  s=${s##*) }          # drop "pid (comm) "; comm may contain spaces
  # shellcheck disable=SC2086  # split into fields on purpose
  set -- $s
  echo "$1 $3"
}
# alive PIDFILE PATTERN: pid file names a live, non-zombie process whose command line contains PATTERN
alive() {
  local pid st cmd
  [ -s "$1" ] || return 1
  read -r pid < "$1" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  st=$(pid_stat "$pid") || return 1
  [ "${st%% *}" != Z ] || return 1
  cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ "$cmd" == *"$2"* ]]
}
# group_alive PGID: any non-zombie process in that process group
group_alive() {
  local f s
  for f in /proc/[0-9]*/stat; do
    { read -r s < "$f"; } 2>/dev/null || continue
    s=${s##*) }
    # shellcheck disable=SC2086
    set -- $s
    if [ "$3" = "$PGID_WANTED" ] && [ "$1" != Z ]; then return 0; fi
  done
  return 1
}
# spawn LOGFILE CMD...: start CMD in the background, in its own session, with no fd of ours:
# stdin /dev/null, stdout+stderr appended to LOGFILE, every other inherited fd closed (a pipe
# or our lock fd left open in a daemon would hang whoever waits for this script's output).
spawn() {
  local logf=$1
  shift
  (
    for fd in "/proc/$BASHPID/fd/"*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec setsid "$@" </dev/null >>"$logf" 2>&1
  ) &
}
# stop_pidfile NAME PIDFILE PATTERN: SIGTERM the process's group and wait until all of it is
# gone; SIGKILL the group after 10 s. Only a process whose command line matches is touched.
stop_pidfile() {
  local name=$1 f=$2 pat=$3 pid pgid i
  if ! alive "$f" "$pat"; then
    [ -e "$f" ] && log "$name: stale pid file removed"
    rm -f "$f"
    return 0
  fi
  read -r pid < "$f"
  pgid=$(pid_stat "$pid") && pgid=${pgid#* }
  # only signal the group when the daemon leads it (it always does when we started it)
  [ "$pgid" = "$pid" ] || pgid=""
  # SIGTERM to the whole group at once: Dovecot's master alone waits for login processes
  # with idle clients (and only then stops the imap processes), which takes 10+ s
  if [ -n "$pgid" ]; then kill -TERM -- "-$pgid" 2>/dev/null || true; else kill -TERM "$pid" 2>/dev/null || true; fi
  PGID_WANTED=${pgid:-$pid}
  for ((i = 0; i < 200; i++)); do
    if [ -n "$pgid" ]; then group_alive || break; else pid_stat "$pid" >/dev/null || break; fi
    sleep 0.05
  done
  if { [ -n "$pgid" ] && group_alive; } || { [ -z "$pgid" ] && pid_stat "$pid" >/dev/null; }; then
    log "$name: still running 10 s after SIGTERM; SIGKILL"
    if [ -n "$pgid" ]; then kill -KILL -- "-$pgid" 2>/dev/null || true; else kill -KILL "$pid" 2>/dev/null || true; fi
    sleep 0.2
  fi
  rm -f "$f"
  log "$name: stopped (pid $pid)"
}

# ---------- probes ----------
tcp_open() {   # PORT
  { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  exec 3>&-
}
greeting() {   # PORT PREFIX: the first line the server sends starts with PREFIX
  local line
  { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  IFS= read -r -t 3 line <&3 || { exec 3>&-; return 1; }
  exec 3>&-
  [[ "$line" == "$2"* ]]
}
port_taken() { tcp_open "$1"; }
# wait_for NAME LOGFILE PIDFILE|- CMD...: poll CMD until it succeeds; fail with the log tail
# after READY_TIMEOUT s, or at once when PIDFILE exists but its process died.
wait_for() {
  local name=$1 logf=$2 pidf=$3 deadline pid
  shift 3
  deadline=$(($(date +%s) + READY_TIMEOUT))
  until "$@"; do
    if [ "$pidf" != - ] && [ -s "$pidf" ]; then
      read -r pid < "$pidf" || pid=""
      if [ -n "$pid" ] && ! pid_stat "$pid" >/dev/null; then
        fail_with_log "$name exited during startup" "$logf"
      fi
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      fail_with_log "$name not ready after ${READY_TIMEOUT}s (waiting for: $*)" "$logf"
    fi
    sleep 0.05
  done
}
fail_with_log() {   # MESSAGE LOGFILE...
  local msg=$1 f
  shift
  log "ERROR: $msg" >&2
  for f in "$@"; do
    [ -s "$f" ] || continue
    echo "---- last lines of $f ----" >&2
    tail -n 25 "$f" >&2
  done
  exit 1
}
spec_hash() { sha256sum | cut -c1-64; }
spec_ok() {   # NAME HASH: the running server was started with exactly this spec
  [ -s "$RUN/$1.spec" ] && [ "$(cat "$RUN/$1.spec")" = "$2" ]
}

# ---------- Dovecot ----------
dovecot_config() {
  local uid gid dh=""
  uid=$(id -u "$MAIL_USER")
  gid=$(id -g "$MAIL_USER")
  [ -s /usr/share/dovecot/dh.pem ] && dh="ssl_dh = </usr/share/dovecot/dh.pem"
  cat <<EOF
# Generated by tests/servers/start.sh (from tests/servers/lib.sh): loopback IMAP for tests.
# Nothing in /etc/dovecot is read. Run: dovecot -c $DOVECOT_CONF
instance_name = sealwatch-test
base_dir = $STATE/dovecot/run
state_dir = $STATE/dovecot/state
protocols = imap
listen = 127.0.0.1
shutdown_clients = yes
log_path = $LOGS/dovecot.log
info_log_path = $LOGS/dovecot.log
debug_log_path = $LOGS/dovecot.log
auth_verbose = yes

# internal and login processes: users made by the Debian package; mail: $MAIL_USER
default_internal_user = dovecot
default_login_user = dovenull
mail_uid = $MAIL_USER
mail_gid = $MAIL_USER
first_valid_uid = $uid
last_valid_uid = $uid
first_valid_gid = $gid
last_valid_gid = $gid

ssl = yes
ssl_cert = <$CERTS/server-chain.pem
ssl_key = <$CERTS/server.key
$dh
ssl_min_protocol = TLSv1.2

# plaintext login also on the plain port; no delays or caches that slow tests down
# (a failed login still takes ~0.5 s: auth flushes failures on a 500 ms timer)
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
auth_cache_size = 0

# fixed users (user:{PLAIN}password)
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $STATE/dovecot/users
}
# any user name (fixed ones too) logs in with one shared password: per-test isolation by user name
passdb {
  driver = static
  args = password=$ANY_USER_PASSWORD
}
userdb {
  driver = static
  args = home=$MAILDIR_ROOT/%u allow_all_users=yes
}

# LAYOUT=fs: "/" separates folders and "." is allowed in names (e.g. DMARC/example.test)
mail_location = maildir:~/Maildir:LAYOUT=fs
mail_fsync = never
# the mailbox list index makes concurrent sessions of one user that create/select folders
# occasionally die with "fcntl(dovecot.list.index.log) ... Resource deadlock avoided"
mailbox_list_index = no
namespace inbox {
  inbox = yes
  separator = /
  prefix =
}
# IDLE notices new mail (e.g. from doveadm save) within a second
mailbox_idle_check_interval = 1 secs

# every IMAP process also talks to log, stats, anvil, auth, config: their 1000-client
# default makes hundreds of parallel sessions stall
default_client_limit = 10000

protocol imap {
  # default 10 per user+IP; tests poll many mailboxes at once
  mail_max_userip_connections = 5000
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS_PORT
    ssl = yes
  }
  # "performance" mode: a few long-lived login processes serve all connections
  service_count = 0
  process_min_avail = 2
  process_limit = 16
  client_limit = 2000
}
service imap {
  process_limit = 5000
}
service anvil {
  # no per-IP auth penalty (a failed login in one test would delay every other test's logins
  # from 127.0.0.1 by up to 15 s): with mode 0 the socket is not created, and auth silently
  # disables the penalty when it does not exist (dovecot_start removes stale sockets)
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
EOF
}
dovecot_users() {
  printf '%s\n' '# user:{PLAIN}password (passwd-file); generated by tests/servers/start.sh' \
    'test:{PLAIN}testpass' 'reports@example.test:{PLAIN}reportspass'
}
dovecot_pidfile() { echo "$STATE/dovecot/run/master.pid"; }

dovecot_running() { alive "$(dovecot_pidfile)" "$DOVECOT_CONF"; }

# write config (+ users file), return its spec hash in DOVECOT_SPEC
dovecot_prepare() {
  mkdir -p "$STATE/dovecot/run" "$STATE/dovecot/state" "$MAILDIR_ROOT"
  chown "$MAIL_USER:$MAIL_USER" "$MAILDIR_ROOT"
  chmod 750 "$MAILDIR_ROOT"
  dovecot_config > "$DOVECOT_CONF.new"
  dovecot_users > "$STATE/dovecot/users.new"
  DOVECOT_SPEC=$(cat "$DOVECOT_CONF.new" "$STATE/dovecot/users.new" "$CERTS/server-chain.pem" | spec_hash)
  # validate before anything running is stopped
  if ! doveconf -c "$DOVECOT_CONF.new" -n >/dev/null 2>"$LOGS/doveconf.err"; then
    fail_with_log "doveconf rejects the generated $DOVECOT_CONF.new" "$LOGS/doveconf.err"
  fi
}
dovecot_start() {
  mv -f "$DOVECOT_CONF.new" "$DOVECOT_CONF"
  mv -f "$STATE/dovecot/users.new" "$STATE/dovecot/users"
  chmod 644 "$DOVECOT_CONF" "$STATE/dovecot/users"
  if port_taken "$IMAP_PORT" || port_taken "$IMAPS_PORT"; then
    die "port $IMAP_PORT or $IMAPS_PORT is used by another process (not our Dovecot); see: ss -ltnp"
  fi
  # stale sockets must go: auth disables its per-IP penalty only when anvil-auth-penalty
  # does not exist at all (a left-over socket costs 5 s of connect retries at startup)
  find "$STATE/dovecot/run" -mindepth 1 -delete
  spawn "$LOGS/dovecot.log" dovecot -c "$DOVECOT_CONF"      # daemonizes, writes master.pid
  wait_for dovecot "$LOGS/dovecot.log" - test -s "$(dovecot_pidfile)"
  wait_for dovecot "$LOGS/dovecot.log" "$(dovecot_pidfile)" greeting "$IMAP_PORT" "* OK"
  wait_for dovecot "$LOGS/dovecot.log" "$(dovecot_pidfile)" tcp_open "$IMAPS_PORT"
  echo "$DOVECOT_SPEC" > "$RUN/dovecot.spec"
  log "dovecot: imap 127.0.0.1:$IMAP_PORT (STARTTLS), imaps 127.0.0.1:$IMAPS_PORT (pid $(cat "$(dovecot_pidfile)"))"
}
dovecot_stop() {
  stop_pidfile dovecot "$(dovecot_pidfile)" "$DOVECOT_CONF"
  rm -f "$RUN/dovecot.spec"
}
