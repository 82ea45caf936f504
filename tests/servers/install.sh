#!/usr/bin/env bash
# Install the packages that tests/servers/start.sh needs (Debian 12, run as root).
# Idempotent and fast: apt-get runs only when something is missing. Nothing is started
# here; while installing, a policy-rc.d keeps the packages from starting the system-wide
# dovecot (143/993) and nsd (53) daemons.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

PKGS=(dovecot-imapd python3-aiosmtpd nsd bind9-dnsutils openssl chromium)

missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" 2>/dev/null | grep -qx 'Status: install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "tests/servers/install.sh: all test server packages already installed"
  exit 0
fi

[ "$(id -u)" = 0 ] || { echo "tests/servers/install.sh: must run as root to install: ${missing[*]}" >&2; exit 1; }

added_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  added_policy=1
fi
cleanup() { if [ "$added_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT

echo "tests/servers/install.sh: installing ${missing[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  "${missing[@]}" >/dev/null
echo "tests/servers/install.sh: installed ${missing[*]}"
