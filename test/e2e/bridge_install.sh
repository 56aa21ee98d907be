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

# SIGHUP reloads log_level from the file; SIGTERM while both servers are
# unreachable (reconnect loop) still exits 0 promptly.
port=$(sc_free_port)
cat > "$SC_TMP/hup.conf" <<CONF
roles = publisher,consumer
pg_conninfo = host=127.0.0.1 port=$port user=nobody password=topsecret connect_timeout=1
amqp_url = amqp://guest:hunter2@127.0.0.1:$port/x
reconnect_max_ms = 300
log_level = info
CONF
"$d$bin" -c "$SC_TMP/hup.conf" 2>"$SC_TMP/hup.log" &
HP=$!
sc_on_exit "kill -9 $HP"
sleep 1
sed -i 's/^log_level = info/log_level = debug/' "$SC_TMP/hup.conf"
kill -HUP "$HP"
for i in $(seq 50); do grep -q "configuration reloaded" "$SC_TMP/hup.log" && break; sleep 0.1; done
grep -q "configuration reloaded (log_level = debug" "$SC_TMP/hup.log" || fail "SIGHUP did not reload log_level: $(tail -3 "$SC_TMP/hup.log")"
grep -q "cannot connect to PostgreSQL" "$SC_TMP/hup.log" || fail "no database connection error logged"
grep -Eq "topsecret|hunter2" "$SC_TMP/hup.log" && fail "a password was logged"
t0=$SECONDS
bridge_stop "$HP" TERM
[ "$STOP_STATUS" = 0 ] || fail "SIGTERM while reconnecting: exit $STOP_STATUS"
[ $((SECONDS - t0)) -le 5 ] || fail "SIGTERM while reconnecting took $((SECONDS - t0)) s"
