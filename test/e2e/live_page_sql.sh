#!/usr/bin/env bash
# The live page end to end (docs/live.md "The page"): one bridge with every
# role serves GET / to a real headless browser (Debian's chromium,
# test/browser.sh); the page shows the key's count, a share INSERTed with SQL
# is applied and its event comes back through RabbitMQ, and the page's DOM
# shows the new count (read through the DevTools protocol).
. "$(dirname "$0")/bridge.inc"
. "$SC_ROOT/test/browser.sh"
e2e_setup live_page_sql
P=$(sc_free_port)
sc_on_exit browser_stop
share() { q "INSERT INTO share_links (content_type, content_id, user_id) VALUES ('article', 'page 1', 'u' || gen_random_uuid())" >/dev/null; }

bridge_start --roles=publisher,consumer,http --http_listen=127.0.0.1:$P --poll_interval_ms=100
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$P/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$P/healthz" >/dev/null || fail "the http bridge did not start"
share; share
wait_drained

browser_start "http://127.0.0.1:$P/?contentType=article&contentId=page%201"
count='document.getElementById("count").textContent'
got=$(browser_wait "$count" 2) || fail "the page shows '$got', want 2"
got=$(browser_wait 'document.getElementById("status").textContent' live) || fail "status '$got', want live"
echo "ok: GET / in headless Chromium shows the count (2), live"
share
got=$(browser_wait "$count" 3) || fail "after a share INSERTed with SQL the page shows '$got', want 3"
echo "ok: a share INSERTed with SQL -> the page shows 3"
share; share
got=$(browser_wait "$count" 5) || fail "after two more the page shows '$got', want 5"
echo "ok: two more -> 5"
