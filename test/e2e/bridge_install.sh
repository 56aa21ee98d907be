#!/usr/bin/env bash
# `make install DESTDIR=…` installs the bridge, its systemd unit and the
# sample config; the unit's ExecStart line runs the installed binary with the
# installed sample config (--check-config → exit 0); a bad key → exit 2 with
# one line on stderr.
. "$(dirname "$0")/bridge.inc"
d=$SC_TMP/install-root
rm -rf "$d"
make -C "$SC_ROOT" -s install DESTDIR="$d" >/dev/null 2>&1 || fail "make install DESTDIR=$d"
unit=$d/lib/systemd/system/sharecount-bridge.service
[ -f "$unit" ] || fail "unit not installed"
[ -f "$d/etc/sharecount/bridge.conf" ] || fail "sample config not installed"
for opt in Type=simple Restart=on-failure NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes; do
  grep -qx "$opt" "$unit" || fail "unit lacks $opt"
done
grep -q "@BINDIR@" "$unit" && fail "@BINDIR@ not substituted"
exec_line=$(sed -n 's/^ExecStart=//p' "$unit")
read -r bin args <<<"$exec_line"
[ -x "$d$bin" ] || fail "ExecStart binary $bin not installed"
# run it as the unit would, with the paths moved under DESTDIR
out=$("$d$bin" ${args//\/etc\/sharecount/$d\/etc\/sharecount} --check-config 2>&1) || fail "--check-config failed: $out"
echo "$out" | grep -q '^amqp_url = "amqp://guest:\*\*\*@localhost:5672"' || fail "unexpected effective config: $out"
echo "$out" | grep -q '^queue = "sharecount.jobs"' || fail "unexpected effective config: $out"
# every key of the sample config is a known setting (uncommented, they all validate)
sed -n 's/^#\([a-z_]* =.*\)$/\1/p' "$d/etc/sharecount/bridge.conf" > "$SC_TMP/uncommented.conf"
[ "$(wc -l < "$SC_TMP/uncommented.conf")" -ge 25 ] || fail "sample config documents too few keys"
"$d$bin" -c "$SC_TMP/uncommented.conf" --check-config >/dev/null 2>&1 || fail "the sample's commented values do not validate"
cp "$d/etc/sharecount/bridge.conf" "$SC_TMP/bad.conf"; echo "bogus_key = 1" >> "$SC_TMP/bad.conf"
set +e; err=$("$d$bin" -c "$SC_TMP/bad.conf" --check-config 2>&1 >/dev/null); st=$?; set -e
[ "$st" = 2 ] || fail "bad config: exit $st, expected 2"
[ "$(printf '%s\n' "$err" | wc -l)" = 1 ] && [[ $err == *'unknown setting "bogus_key"'* ]] || fail "bad config message: $err"
"$d$bin" --version | grep -q '^sharecount-bridge [0-9]' || fail "--version"
"$d$bin" --help | grep -q -- '--check-config' || fail "--help"
