#!/usr/bin/env bash
# Makes sure the programs the test suite runs for real are installed: Dovecot (IMAP, POP3,
# submission), swaks, openssl, redis-server (also run as `redis-server --sentinel` by the Sentinel
# failover tests, so no separate redis-sentinel package), the mail clients test/e2e/real-clients drives
# (mbsync from isync, fetchmail, msmtp), nginx-light (auth_request, for the forward-auth test) with libnginx-mod-mail (the mail proxy
# the scale benchmark compares with), and Chromium with a CJK font for the browser tests
# (zh-TW texts and screenshots), and systemd-analyze with python3-seccomp (check deploy/systemd/mailotp.service and run mailotp under its system-call filter). Idempotent; meant to run as `pretest`.
# The tests start their own private instances on free ports, so the system services are
# never needed; a system Dovecot that only runs because this script installed it is stopped.
#   --dry-run   print what would be installed, change nothing
set -euo pipefail

# swaks needs the Perl TLS modules for STARTTLS/--tlsc; Debian only recommends them.
PACKAGES=(dovecot-imapd dovecot-pop3d dovecot-submissiond swaks libnet-ssleay-perl libio-socket-ssl-perl openssl redis-server isync fetchmail msmtp nginx-light libnginx-mod-mail chromium fonts-wqy-microhei systemd python3-seccomp)
DRY_RUN=0
[[ "${1:-}" == "--dry-run" ]] && DRY_RUN=1

# path -> package that provides it
declare -A NEEDS=(
  [/usr/sbin/dovecot]=dovecot-imapd
  [/usr/bin/doveadm]=dovecot-imapd
  [/usr/lib/dovecot/imap-login]=dovecot-imapd
  [/usr/lib/dovecot/pop3-login]=dovecot-pop3d
  [/usr/lib/dovecot/submission-login]=dovecot-submissiond
  [/usr/bin/chromium]=chromium
  [/usr/sbin/nginx]=nginx-light
)

missing_items() {
  local p
  for p in "${!NEEDS[@]}"; do [[ -x "$p" ]] || echo "$p"; done
  for p in swaks openssl redis-server mbsync fetchmail msmtp systemd-analyze; do command -v "$p" >/dev/null 2>&1 || echo "$p"; done
  for m in Net::SSLeay IO::Socket::SSL; do perl -M"$m" -e 1 >/dev/null 2>&1 || echo "perl:$m"; done
  /usr/bin/python3 -c 'import seccomp' >/dev/null 2>&1 || echo python3-seccomp   # Debian's python, not a pyenv shim
  [[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]] || echo fonts-wqy-microhei
  [[ -e /usr/lib/nginx/modules/ngx_mail_module.so ]] || echo libnginx-mod-mail
}

# The system Dovecot's master pid, if one is running (our test instances use other base_dirs).
system_dovecot_pid() {
  local pidfile=/run/dovecot/master.pid pid
  [[ -r "$pidfile" ]] || return 1
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

mapfile -t missing < <(missing_items | sort)
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup-test-env: nothing to do (dovecot $(/usr/sbin/dovecot --version 2>/dev/null | cut -d' ' -f1), swaks, openssl, redis-server, mbsync, fetchmail, msmtp, nginx with its mail module, chromium, CJK font, systemd-analyze, python3-seccomp present)"
  exit 0
fi

if [[ $DRY_RUN -eq 1 ]]; then
  echo "setup-test-env: would install ${PACKAGES[*]} (missing: ${missing[*]})"
  exit 0
fi

if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-test-env: missing ${missing[*]}; install as root: apt-get install -y --no-install-recommends ${PACKAGES[*]}" >&2
  exit 1
fi

dovecot_was_running=0
system_dovecot_pid >/dev/null && dovecot_was_running=1

# Debian's postinst starts services unless policy-rc.d says no; the tests do not want them.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  added_policy=1
fi
cleanup() { if [[ $added_policy -eq 1 ]]; then rm -f "$policy"; fi; }
trap cleanup EXIT

log=$(mktemp)
if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PACKAGES[@]}"; } >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  rm -f "$log"
  echo "setup-test-env: apt-get could not install ${PACKAGES[*]} (see above)" >&2
  exit 1
fi
rm -f "$log"

stopped=""
if [[ $dovecot_was_running -eq 0 ]] && pid=$(system_dovecot_pid); then
  # Started by the install despite policy-rc.d (e.g. under systemd); it was not there before.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet dovecot 2>/dev/null; then
    systemctl stop dovecot || true
  else
    kill -TERM "$pid" 2>/dev/null || true
  fi
  stopped=", stopped the system dovecot the install had started"
fi

mapfile -t still < <(missing_items | sort)
if [[ ${#still[@]} -gt 0 ]]; then
  echo "setup-test-env: still missing after install: ${still[*]}" >&2
  exit 1
fi
echo "setup-test-env: installed ${PACKAGES[*]} (was missing: ${missing[*]})${stopped}"
