#!/usr/bin/env bash
# Start the loopback test servers (see README.md beside this file). Idempotent: a server that
# runs with the same configuration is left alone (so tests may call this freely); one whose
# configuration, script or certificate changed is restarted.
#
#   tests/servers/start.sh [--fresh] [--only dovecot,smtp,dns,https]
#
#   --fresh  stop everything and wipe the state dir first (mail, spool, certs, logs)
#   --only   start just these servers (e.g. a private Dovecot on other ports)
#
# Afterwards: . "${SEALWATCH_TEST_SERVERS_STATE:-/tmp/sealwatch-test-servers}/servers.env"
# Never pipe this script's output into another command and wait for EOF: daemons do not keep
# our stdout (they log to $STATE/logs), but keep it that way if you change anything here.
set -euo pipefail
SW_NAME=start
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FRESH=0
ONLY="dovecot,smtp,dns,https"
while [ $# -gt 0 ]; do
  case "$1" in
    --fresh) FRESH=1 ;;
    --only) ONLY=${2:?--only needs a list}; shift ;;
    --only=*) ONLY=${1#--only=} ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--fresh] [--only dovecot,smtp,dns,https]" >&2; exit 2 ;;
  esac
  shift
done
want() { [[ ",$ONLY," == *",$1,"* ]]; }
for s in ${ONLY//,/ }; do
  case "$s" in dovecot|smtp|dns|https) ;; *) die "unknown server '$s' in --only" ;; esac
done

# ---------- prerequisites ----------
[ "$(id -u)" = 0 ] || die "run as root (Dovecot switches to the mail user '$MAIL_USER')"
check_state_path
missing=""
for c in openssl flock setsid sha256sum dovecot doveconf doveadm nsd nsd-checkconf nsd-checkzone; do
  command -v "$c" >/dev/null || missing="$missing $c"
done
[ -z "$missing" ] || die "missing:$missing -- run tests/servers/install.sh"
PY="${SEALWATCH_TEST_PYTHON:-/usr/bin/python3}"

mkdir -p "$(dirname "$STATE")"
take_lock

if [ "$FRESH" = 1 ] && [ -d "$STATE" ]; then
  log "--fresh: stopping servers and wiping $STATE"
  stop_pidfile https "$RUN/https.pid" "https_server.py --webroot $WEBROOT"
  stop_pidfile https-zones "$RUN/https-zones.pid" "https_server.py --listen 127.0.0.1:$HTTPS_ZONES_PORT"
  stop_pidfile https-expired "$RUN/https-expired.pid" "https_server.py --listen 127.0.0.1:$HTTPS_EXPIRED_PORT"
  stop_pidfile smtp "$RUN/smtp.pid" "smtp_sink.py --spool $SPOOL"
  stop_pidfile nsd "$RUN/nsd.pid" "$NSD_CONF"
  dovecot_stop
  rm -rf "$STATE"
fi
mkdir -p "$STATE" "$RUN" "$LOGS" "$CERTS" "$SPOOL" "$WEBROOT" "$ZONES" "$STATE/dns/run"
chmod 755 "$STATE"   # the mail user must be able to reach $STATE/mail

if ! id "$MAIL_USER" >/dev/null 2>&1; then
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$MAIL_USER"
  log "created system user $MAIL_USER"
fi

# ---------- TLS: throwaway CA + one leaf certificate for every test name ----------
ensure_certs() {
  # $CERTS/meta: "<leaf notAfter as unix time> <SAN list>"; renew a day before expiry
  local meta="" expires=0
  [ -s "$CERTS/meta" ] && read -r expires meta < "$CERTS/meta"
  if [ -s "$CERTS/server-chain.pem" ] && [ -s "$CERTS/server.key" ] && [ "$meta" = "$SANS" ] &&
     [ "$expires" -gt $(($(date +%s) + 86400)) ]; then
    return 0
  fi
  local tmp
  tmp=$(mktemp -d "$CERTS/gen.XXXXXX")
  cat > "$tmp/openssl.cnf" <<EOF
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $SANS
EOF
  (
    cd "$tmp"
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -config openssl.cnf -extensions ca -subj "/O=sealwatch tests/CN=sealwatch test CA" \
      -days 3650 -keyout ca.key -out ca.pem
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -config openssl.cnf -subj "/O=sealwatch tests/CN=localhost" -keyout server.key -out server.csr
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 12)" \
      -days 825 -sha256 -extfile openssl.cnf -extensions leaf -out server.pem
  ) >"$LOGS/openssl.log" 2>&1 || { rm -rf "$tmp"; fail_with_log "certificate generation failed" "$LOGS/openssl.log"; }
  cat "$tmp/server.pem" "$tmp/ca.pem" > "$tmp/server-chain.pem"
  chmod 600 "$tmp/ca.key" "$tmp/server.key"
  chmod 644 "$tmp/ca.pem" "$tmp/server.pem" "$tmp/server-chain.pem"
  for f in ca.key ca.pem server.key server.pem server-chain.pem; do mv -f "$tmp/$f" "$CERTS/$f"; done
  echo "$(date -d "$(openssl x509 -enddate -noout -in "$CERTS/server.pem" | cut -d= -f2)" +%s) $SANS" > "$CERTS/meta"
  rm -rf "$tmp"
  log "certs: new test CA $CERTS/ca.pem, leaf for $SANS"
}
ensure_certs
cert_hash=$(spec_hash < "$CERTS/server-chain.pem")

# ---------- Dovecot ----------
ensure_dovecot() {
  dovecot_prepare
  if dovecot_running && spec_ok dovecot "$DOVECOT_SPEC"; then
    if greeting "$IMAP_PORT" "* OK"; then
      rm -f "$DOVECOT_CONF.new" "$STATE/dovecot/users.new"
      log "dovecot: already running (pid $(cat "$(dovecot_pidfile)"))"
      return 0
    fi
    log "dovecot: running but not answering on $IMAP_PORT; restarting"
  elif dovecot_running; then
    log "dovecot: configuration changed; restarting"
  fi
  dovecot_stop
  dovecot_start
}

# ---------- SMTP sink ----------
ensure_smtp() {
  local pat="smtp_sink.py --spool $SPOOL" spec
  local args=(--spool "$SPOOL" --listen "127.0.0.1:$SMTP_PORT" --smtps-listen "127.0.0.1:$SMTPS_PORT"
    --cert "$CERTS/server-chain.pem" --key "$CERTS/server.key" --auth "$SMTP_USER:$SMTP_PASSWORD"
    --pidfile "$RUN/smtp.pid")
  spec=$({ cat "$SW_DIR/smtp_sink.py"; echo "$PY ${args[*]} $cert_hash"; } | spec_hash)
  if alive "$RUN/smtp.pid" "$pat" && spec_ok smtp "$spec"; then
    if greeting "$SMTP_PORT" "220"; then
      log "smtp: already running (pid $(cat "$RUN/smtp.pid"))"
      return 0
    fi
    log "smtp: running but not answering on $SMTP_PORT; restarting"
  fi
  stop_pidfile smtp "$RUN/smtp.pid" "$pat"
  "$PY" -c 'import aiosmtpd' 2>/dev/null ||
    die "$PY cannot import aiosmtpd: run tests/servers/install.sh (python3-aiosmtpd) or set SEALWATCH_TEST_PYTHON"
  if port_taken "$SMTP_PORT" || port_taken "$SMTPS_PORT"; then
    die "port $SMTP_PORT or $SMTPS_PORT is used by another process; see: ss -ltnp"
  fi
  spawn "$LOGS/smtp.log" "$PY" "$SW_DIR/smtp_sink.py" "${args[@]}"
  wait_for smtp "$LOGS/smtp.log" - test -s "$RUN/smtp.pid"
  wait_for smtp "$LOGS/smtp.log" "$RUN/smtp.pid" greeting "$SMTP_PORT" "220"
  wait_for smtp "$LOGS/smtp.log" "$RUN/smtp.pid" tcp_open "$SMTPS_PORT"
  echo "$spec" > "$RUN/smtp.spec"
  log "smtp: 127.0.0.1:$SMTP_PORT (STARTTLS), smtps 127.0.0.1:$SMTPS_PORT -> $SPOOL (pid $(cat "$RUN/smtp.pid"))"
}

# ---------- NSD ----------
nsd_config() {
  cat <<EOF
# Generated by tests/servers/start.sh: authoritative DNS for the test zones.
server:
    ip-address: 127.0.0.1@$DNS_PORT
    port: $DNS_PORT
    do-ip4: yes
    do-ip6: no
    reuseport: no
    # run as root, no chroot, no compiled database: everything lives in the state dir
    username: ""
    chroot: ""
    database: ""
    zonesdir: "$ZONES"
    zonelistfile: "$STATE/dns/run/zone.list"
    xfrdfile: "$STATE/dns/run/xfrd.state"
    xfrdir: "$STATE/dns/run"
    pidfile: "$RUN/nsd.pid"
    logfile: "$LOGS/nsd.log"
    server-count: 1
    verbosity: 1
    hide-version: yes
    hide-identity: yes
    refuse-any: no
    # rate limiting would drop bursts of test queries
    rrl-ratelimit: 0
remote-control:
    control-enable: no
EOF
  local z
  for z in "$SW_DIR"/dns/*.zone; do
    printf 'zone:\n    name: "%s"\n    zonefile: "%s"\n' "$(basename "$z" .zone)" "$(basename "$z")"
  done
}
dns_ok() {
  local zones=("$ZONES"/*.zone) first
  first=$(basename "${zones[0]}" .zone)
  [ -n "$(dig +short +time=1 +tries=1 -p "$DNS_PORT" @127.0.0.1 SOA "$first" 2>/dev/null)" ] &&
  [ -n "$(dig +short +tcp +time=1 +tries=1 -p "$DNS_PORT" @127.0.0.1 SOA "$first" 2>/dev/null)" ]
}
ensure_dns() {
  local spec z n
  command -v dig >/dev/null || die "dig missing: run tests/servers/install.sh (bind9-dnsutils)"
  compgen -G "$SW_DIR/dns/*.zone" >/dev/null || die "no zone files in $SW_DIR/dns"
  nsd_config > "$NSD_CONF.new"
  spec=$({ cat "$NSD_CONF.new"; for z in "$SW_DIR"/dns/*.zone; do echo "== $z"; cat "$z"; done; } | spec_hash)
  if alive "$RUN/nsd.pid" "$NSD_CONF" && spec_ok nsd "$spec"; then
    if tcp_open "$DNS_PORT"; then
      rm -f "$NSD_CONF.new"
      log "nsd: already running (pid $(cat "$RUN/nsd.pid"))"
      return 0
    fi
    log "nsd: running but not answering; restarting"
  elif alive "$RUN/nsd.pid" "$NSD_CONF"; then
    log "nsd: zones or configuration changed; restarting"
  fi
  # validate before anything running is stopped
  for z in "$SW_DIR"/dns/*.zone; do
    n=$(basename "$z" .zone)
    nsd-checkzone "$n" "$z" >"$LOGS/nsd-checkzone.log" 2>&1 ||
      fail_with_log "zone $n does not load (tests/servers/dns/$n.zone)" "$LOGS/nsd-checkzone.log"
  done
  nsd-checkconf "$NSD_CONF.new" >"$LOGS/nsd-checkconf.log" 2>&1 ||
    fail_with_log "nsd-checkconf rejects $NSD_CONF.new" "$LOGS/nsd-checkconf.log"
  stop_pidfile nsd "$RUN/nsd.pid" "$NSD_CONF"
  rm -rf "$ZONES" "$STATE/dns/run"
  mkdir -p "$ZONES" "$STATE/dns/run"
  cp "$SW_DIR"/dns/*.zone "$ZONES/"
  mv -f "$NSD_CONF.new" "$NSD_CONF"
  if port_taken "$DNS_PORT"; then die "tcp port $DNS_PORT is used by another process; see: ss -ltnup"; fi
  spawn "$LOGS/nsd.log" nsd -c "$NSD_CONF"     # daemonizes, writes $RUN/nsd.pid
  wait_for nsd "$LOGS/nsd.log" - test -s "$RUN/nsd.pid"
  wait_for nsd "$LOGS/nsd.log" "$RUN/nsd.pid" dns_ok
  echo "$spec" > "$RUN/nsd.spec"
  log "nsd: dns 127.0.0.1:$DNS_PORT udp+tcp, zones: $(cd "$ZONES" && for z in *.zone; do printf '%s ' "${z%.zone}"; done)(pid $(cat "$RUN/nsd.pid"))"
}

# ---------- HTTPS ----------
ensure_https() {
  local pat="https_server.py --webroot $WEBROOT" spec
  local args=(--webroot "$WEBROOT" --webroot "$SW_DIR/https/www" --listen "127.0.0.1:$HTTPS_PORT"
    --cert "$CERTS/server-chain.pem" --key "$CERTS/server.key" --pidfile "$RUN/https.pid")
  spec=$({ cat "$SW_DIR/https_server.py"; echo "$PY ${args[*]} $cert_hash"; } | spec_hash)
  if alive "$RUN/https.pid" "$pat" && spec_ok https "$spec" && tcp_open "$HTTPS_PORT"; then
    log "https: already running (pid $(cat "$RUN/https.pid"))"
    return 0
  fi
  stop_pidfile https "$RUN/https.pid" "$pat"
  if port_taken "$HTTPS_PORT"; then die "port $HTTPS_PORT is used by another process; see: ss -ltnp"; fi
  spawn "$LOGS/https.log" "$PY" "$SW_DIR/https_server.py" "${args[@]}"
  wait_for https "$LOGS/https.log" - test -s "$RUN/https.pid"
  wait_for https "$LOGS/https.log" "$RUN/https.pid" tcp_open "$HTTPS_PORT"
  echo "$spec" > "$RUN/https.spec"
  log "https: 127.0.0.1:$HTTPS_PORT serving $WEBROOT/<host>/ then $SW_DIR/https/www/<host>/ (pid $(cat "$RUN/https.pid"))"
}

# ---------- HTTPS for the test zones (health checks) ----------
# Two more listeners with the same web roots, so MTA-STS policies can be fetched for every
# test zone: $HTTPS_ZONES_PORT with a certificate from the test CA for <zone> and *.<zone> of
# every tests/servers/dns/<zone>.zone (so mta-sts.<zone> is valid), and $HTTPS_EXPIRED_PORT
# with a certificate for the same names that expired in 2020.
zone_sans() {
  local z s=""
  for z in "$SW_DIR"/dns/*.zone; do z=$(basename "$z" .zone); s="$s,DNS:$z,DNS:*.$z"; done
  echo "${s#,}"
}
ensure_zone_cert() {   # NAME valid|expired -> $CERTS/NAME-chain.pem, $CERTS/NAME.key
  local name=$1 kind=$2 want tmp
  local dates=(-days 825)
  want="$kind $(spec_hash < "$CERTS/ca.pem") $(zone_sans)"
  if [ -s "$CERTS/$name-chain.pem" ] && [ -s "$CERTS/$name.key" ] &&
     [ "$(cat "$CERTS/$name.meta" 2>/dev/null)" = "$want" ] &&
     { [ "$kind" = expired ] || openssl x509 -checkend 86400 -noout -in "$CERTS/$name-chain.pem" >/dev/null 2>&1; }; then
    return 0
  fi
  [ "$kind" = expired ] && dates=(-startdate 20200101000000Z -enddate 20200201000000Z)
  tmp=$(mktemp -d "$CERTS/gen.XXXXXX")
  {
    printf '[req]\ndistinguished_name = dn\n[dn]\n[ca]\ndefault_ca = testca\n[testca]\n'
    printf 'database = %s/index.txt\nnew_certs_dir = %s\nserial = %s/serial\n' "$tmp" "$tmp" "$tmp"
    printf 'default_md = sha256\npolicy = anything\nunique_subject = no\n[anything]\ncommonName = supplied\n'
    printf '[leaf]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\n'
    printf 'extendedKeyUsage = serverAuth\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n'
    printf 'subjectAltName = %s\n' "$(zone_sans)"
  } > "$tmp/openssl.cnf"
  (
    cd "$tmp"
    : > index.txt
    openssl rand -hex 12 > serial
    openssl req -new -config openssl.cnf -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -subj "/CN=sealwatch test zones ($kind)" -keyout leaf.key -out leaf.csr
    openssl ca -batch -config openssl.cnf -cert "$CERTS/ca.pem" -keyfile "$CERTS/ca.key" \
      -in leaf.csr -out leaf.pem -extensions leaf -notext "${dates[@]}"
  ) >"$LOGS/openssl-$name.log" 2>&1 || { rm -rf "$tmp"; fail_with_log "$name certificate generation failed" "$LOGS/openssl-$name.log"; }
  cat "$tmp/leaf.pem" "$CERTS/ca.pem" > "$tmp/chain.pem"
  chmod 600 "$tmp/leaf.key"
  chmod 644 "$tmp/chain.pem"
  mv -f "$tmp/leaf.key" "$CERTS/$name.key"
  mv -f "$tmp/chain.pem" "$CERTS/$name-chain.pem"
  echo "$want" > "$CERTS/$name.meta"
  rm -rf "$tmp"
  log "certs: $kind certificate $name for the test zones"
}
ensure_https_extra() {   # NAME PORT CERT-NAME
  local name=$1 port=$2 cert=$3 pat spec
  pat="https_server.py --listen 127.0.0.1:$port"
  local args=(--listen "127.0.0.1:$port" --webroot "$WEBROOT" --webroot "$SW_DIR/https/www"
    --cert "$CERTS/$cert-chain.pem" --key "$CERTS/$cert.key" --pidfile "$RUN/$name.pid")
  spec=$({ cat "$SW_DIR/https_server.py"; echo "$PY ${args[*]}"; cat "$CERTS/$cert-chain.pem"; } | spec_hash)
  if alive "$RUN/$name.pid" "$pat" && spec_ok "$name" "$spec" && tcp_open "$port"; then
    log "$name: already running (pid $(cat "$RUN/$name.pid"))"
    return 0
  fi
  stop_pidfile "$name" "$RUN/$name.pid" "$pat"
  if port_taken "$port"; then die "port $port is used by another process; see: ss -ltnp"; fi
  spawn "$LOGS/$name.log" "$PY" "$SW_DIR/https_server.py" "${args[@]}"
  wait_for "$name" "$LOGS/$name.log" - test -s "$RUN/$name.pid"
  wait_for "$name" "$LOGS/$name.log" "$RUN/$name.pid" tcp_open "$port"
  echo "$spec" > "$RUN/$name.spec"
  log "$name: 127.0.0.1:$port with the $cert certificate (pid $(cat "$RUN/$name.pid"))"
}
ensure_https_zones() {
  ensure_zone_cert https-zones valid
  ensure_zone_cert https-expired expired
  ensure_https_extra https-zones "$HTTPS_ZONES_PORT" https-zones
  ensure_https_extra https-expired "$HTTPS_EXPIRED_PORT" https-expired
}

if want dovecot; then ensure_dovecot; fi
if want smtp; then ensure_smtp; fi
if want dns; then ensure_dns; fi
if want https; then ensure_https; ensure_https_zones; fi

# ---------- environment for the tests ----------
cat > "$STATE/servers.env.tmp" <<EOF
export SEALWATCH_TEST_SERVERS_STATE='$STATE'
# every test server is on loopback: sealwatch processes started by the tests may connect there
export SEALWATCH_OUTBOUND__ALLOW_PRIVATE_ADDRESSES='true'
export SEALWATCH_TEST_CA='$CERTS/ca.pem'
export SEALWATCH_TEST_TLS_NAME='localhost'
export SEALWATCH_TEST_IMAP_HOST='127.0.0.1'
export SEALWATCH_TEST_IMAP_PORT='$IMAP_PORT'
export SEALWATCH_TEST_IMAPS_PORT='$IMAPS_PORT'
export SEALWATCH_TEST_IMAP_PASSWORD='$ANY_USER_PASSWORD'
export SEALWATCH_MAILBOX_TEST_IMAP_PASSWORD='$ANY_USER_PASSWORD'
export SEALWATCH_MAILBOX_TEST_WRONG_PASSWORD='not-$ANY_USER_PASSWORD'
export SEALWATCH_TEST_MAILDIR_ROOT='$MAILDIR_ROOT'
export SEALWATCH_TEST_DOVEADM='$(command -v doveadm) -c $DOVECOT_CONF'
export SEALWATCH_TEST_RESTART_DOVECOT='$SW_DIR/restart-dovecot.sh'
export SEALWATCH_TEST_SMTP_HOST='127.0.0.1'
export SEALWATCH_TEST_SMTP_PORT='$SMTP_PORT'
export SEALWATCH_TEST_SMTPS_PORT='$SMTPS_PORT'
export SEALWATCH_TEST_SMTP_USER='$SMTP_USER'
export SEALWATCH_TEST_SMTP_PASSWORD='$SMTP_PASSWORD'
export SEALWATCH_TEST_SMTP_SPOOL='$SPOOL'
export SEALWATCH_TEST_DNS='127.0.0.1:$DNS_PORT'
export SEALWATCH_TEST_DNS_ZONES='$ZONES'
export SEALWATCH_TEST_DNS_PIDFILE='$RUN/nsd.pid'
export SEALWATCH_TEST_HTTPS_PORT='$HTTPS_PORT'
export SEALWATCH_TEST_HTTPS_WEBROOT='$WEBROOT'
export SEALWATCH_TEST_HTTPS_ZONES_PORT='$HTTPS_ZONES_PORT'
export SEALWATCH_TEST_HTTPS_EXPIRED_PORT='$HTTPS_EXPIRED_PORT'
EOF
mv -f "$STATE/servers.env.tmp" "$STATE/servers.env"
log "ready ($ONLY); for tests: . $STATE/servers.env"
