#!/usr/bin/env bash
# Installs the Debian packages sharecount needs (README.md) when any is missing.
# Idempotent: with everything present it prints nothing and changes nothing.
# As root it runs apt-get; otherwise it prints the one command to run.
set -euo pipefail
pkgs=(postgresql-15 postgresql-server-dev-15 postgresql-contrib libpq-dev librabbitmq-dev
      libjansson-dev libmicrohttpd-dev libwslay-dev nettle-dev rabbitmq-server amqp-tools wrk curl gcc make
      prometheus jq    # promtool and jq: test/e2e/deploy_rules.sh
      python3-websockets   # a real WebSocket client: test/e2e/live_ws_echo.sh, test/browser.sh
      chromium xxd         # headless browser: test/browser.sh; page.html compiled in: Makefile
      clang libclang-rt-14-dev    # libFuzzer, ASan, UBSan: fuzz/
      clang-format)               # make format-check (clang-format 14 on Debian 12)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # The package lists may be missing or stale on a fresh machine.
  apt-get update -qq >/dev/null
  # rabbitmq-server's postinst tries to start the system service; a policy-rc.d
  # that says "no" keeps apt from starting daemons we do not use.
  prc=/usr/sbin/policy-rc.d
  made_prc=0
  if [ ! -e "$prc" ]; then printf '#!/bin/sh\nexit 101\n' > "$prc"; chmod 755 "$prc"; made_prc=1; fi
  trap '[ $made_prc -eq 1 ] && rm -f "$prc"' EXIT
  apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "deps: missing packages; run as root:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
