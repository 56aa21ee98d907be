#!/usr/bin/env bash
# e2e: the Prometheus alert rules and the Grafana dashboard of deploy/
# (docs/operations.md) are valid and only use metrics a real bridge exports:
#   - `promtool check rules` on deploy/prometheus/alerts.yml;
#   - `promtool test rules` on alerts_test.yml (series in, alerts out), and
#     every alert has a case in it where it fires and a docs/operations.md
#     section its `runbook` annotation points at;
#   - the dashboard is JSON with a title, a uid, unique panel ids, grid
#     positions inside 24 columns and a non-empty query per target; its PromQL
#     parses (each query checked by promtool as a recording rule);
#   - a bridge with all roles, on its own database and vhost, is scraped: the
#     scrape passes `promtool check metrics`, and every metric name and label
#     the rules and the dashboard use appears in it, except the names listed
#     in NOT_SCRAPED (documented in docs/operations.md).
# Metric names are the identifiers of the queries with an underscore in them
# (string literals and grouping label lists removed) that are not PromQL
# functions or target labels, plus `up`. Rules keep each `expr:` on one line so this test reads them all.
. "$(dirname "$0")/bridge.inc"
DEPLOY=$SC_ROOT/deploy
RULES=$DEPLOY/prometheus/alerts.yml
RULE_TESTS=$DEPLOY/prometheus/alerts_test.yml
DASH=$DEPLOY/grafana/sharecount.json
OPS_DOC=$SC_ROOT/docs/operations.md
# Never on a bridge's /metrics: `up` is Prometheus's own series per target
# (docs/operations.md).
NOT_SCRAPED="up"
# Identifiers with an underscore that are not metric names.
NOT_METRICS='histogram_quantile|label_values|label_replace|label_join|[a-z]+_over_time|exported_job'
# Seconds to wait for the bridge to export every metric (it needs a few jobs
# applied and one HTTP answer); generous, the machine is shared.
SCRAPE_DEADLINE_S=25

for t in promtool jq curl; do
  command -v "$t" >/dev/null || fail "$t is not installed (make test installs it: test/deps.sh)"
done
W=$(mktemp -d "$SC_TMP/deploy_rules.XXXXXX")

# ------------------------------------------------------------ alert rules ----
promtool check rules "$RULES" > "$W/check_rules" 2>&1 || { cat "$W/check_rules" >&2; fail "promtool check rules"; }
(cd "$(dirname "$RULE_TESTS")" && promtool test rules "$(basename "$RULE_TESTS")") > "$W/test_rules" 2>&1 \
  || { cat "$W/test_rules" >&2; fail "promtool test rules: an alert fired or stayed silent against its test"; }
echo "# promtool check rules and test rules: $(grep -m1 -o '[0-9]* rules found' "$W/check_rules")"

alerts=$(sed -nE 's/^[[:space:]]*- alert:[[:space:]]*([A-Za-z0-9_]+)[[:space:]]*$/\1/p' "$RULES")
n_rules=$(grep -cE '^[[:space:]]*- (alert|record):' "$RULES")
[ "$(echo "$alerts" | grep -c .)" -ge 5 ] || fail "fewer than 5 alerts read from $RULES"
for a in $alerts; do
  # a case "alertname: A" whose exp_alerts is not empty
  awk -v a="$a" '$1 == "alertname:" { cur = $2 } $1 == "exp_alerts:" && $2 != "[]" && cur == a { found = 1 }
    END { exit !found }' "$RULE_TESTS" || fail "alerts_test.yml has no case where $a fires"
  grep -qx "### $a" "$OPS_DOC" || fail "docs/operations.md has no '### $a' section (its runbook)"
  grep -q "runbook: \"docs/operations.md#${a,,}\"" "$RULES" || fail "$a has no runbook annotation"
done
sed -nE 's/^[[:space:]]*expr:[[:space:]]*//p' "$RULES" > "$W/rule_exprs"
[ "$(grep -c . "$W/rule_exprs")" = "$n_rules" ] || fail "$n_rules rules but $(grep -c . "$W/rule_exprs") one-line exprs"
! grep -qE '^[|>]' "$W/rule_exprs" || fail "an expr is a YAML block scalar; keep each on one line"

# -------------------------------------------------------------- dashboard ----
jq -e '(.title | type == "string" and length > 0) and (.uid | type == "string" and length > 0)
  and (.panels | type == "array" and length > 0)
  and ([.panels[].id] | length == (unique | length))
  and all(.panels[]; .gridPos.w > 0 and .gridPos.h > 0 and .gridPos.x >= 0 and .gridPos.x + .gridPos.w <= 24)
  and all(.panels[] | select(.type != "row"); (.targets | length > 0)
          and all(.targets[]; (.expr | type == "string" and length > 0) and .datasource.uid == "${datasource}"))
  and any(.templating.list[]; .type == "datasource" and .name == "datasource" and .query == "prometheus")' \
  "$DASH" > /dev/null || fail "$DASH: not JSON, or a panel without title/uid/id/gridPos/query/datasource"
# Grafana's interval variables are not PromQL; give them a value.
jq -r '.panels[].targets[]?.expr | gsub("\\$__rate_interval"; "5m") | gsub("\\$__range"; "1h")' "$DASH" > "$W/dash_exprs"
jq '{groups: [{name: "dashboard", rules: [[.panels[].targets[]?.expr] | to_entries[]
     | {record: "dashboard:query_\(.key)", expr: (.value | gsub("\\$__rate_interval"; "5m") | gsub("\\$__range"; "1h"))}]}]}' \
  "$DASH" > "$W/dash_rules.yml"
promtool check rules "$W/dash_rules.yml" > "$W/check_dash" 2>&1 || { cat "$W/check_dash" >&2; fail "a dashboard query is not valid PromQL"; }
jq -r '.templating.list[] | select(.type == "query") | .query.query' "$DASH" > "$W/var_queries"
echo "# dashboard: $(jq '[.panels[] | select(.type != "row")] | length' "$DASH") panels, $(grep -c . "$W/dash_exprs") queries parse"

# Metric and label names used by both files.
# (string literals and by/on/without/ignoring label lists removed)
cat "$W/rule_exprs" "$W/dash_exprs" "$W/var_queries" \
  | sed -E 's/"([^"\\]|\\.)*"//g; s/(^|[^A-Za-z0-9_:])(by|on|without|ignoring) *\([^)]*\)/\1/g' > "$W/all_exprs"
{ grep -oE '[A-Za-z_:][A-Za-z0-9_:]*' "$W/all_exprs" | grep '_' | grep -vxE "$NOT_METRICS" || true
  if grep -qE '(^|[^A-Za-z0-9_:])up([^A-Za-z0-9_:(]|$)' "$W/all_exprs"; then echo up; fi
} | sort -u > "$W/used_metrics"
# labels: by/on/without lists, matchers, $labels.X in rules, {{X}} in legends
{ cat "$W/rule_exprs" "$W/dash_exprs" | grep -oE '(^|[^A-Za-z0-9_:])(by|on|without|ignoring) *\([^)]*\)' | sed -E 's/^[^(]*\(//; s/\)$//' | tr ', ' '\n\n'
  cat "$W/rule_exprs" "$W/dash_exprs" "$W/var_queries" | grep -oE '[A-Za-z_][A-Za-z0-9_]* *(=~|!~|!=|=)"' | sed -E 's/ *[=!~]+"$//'
  grep -oE '\$labels\.[A-Za-z_][A-Za-z0-9_]*' "$RULES" | sed 's/.*\.//'
  jq -r '.panels[].targets[]?.legendFormat' "$DASH" | grep -oE '\{\{ *[A-Za-z_][A-Za-z0-9_]* *\}\}' | tr -d '{} '
  sed -nE 's/^label_values\([^,]*, *([A-Za-z_][A-Za-z0-9_]*)\)$/\1/p' "$W/var_queries"
} | grep . | sort -u > "$W/used_labels"
echo "# used: $(tr '\n' ' ' < "$W/used_metrics")"
echo "# labels: $(tr '\n' ' ' < "$W/used_labels")"
grep -qx sharecount_event_lag_seconds_bucket "$W/used_metrics" || fail "name extraction broken: event lag not found"

# ------------------------------------------------- a real bridge's scrape ----
e2e_setup deploy_rules
PORT=$(sc_free_port)
bridge_start --roles=publisher,consumer,http --http_listen=127.0.0.1:$PORT
URL=http://127.0.0.1:$PORT
insert_rows 20 5                 # applied jobs fill the lag and apply histograms
curl -s -o /dev/null "$URL/healthz" || true

# missing_metrics: print the used names the last scrape lacks
missing_metrics() {
  awk '!/^#/ && NF { sub(/[{ ].*/, "", $1); print $1 }' "$W/scrape" | sort -u > "$W/scraped"
  local m
  for m in $(cat "$W/used_metrics"); do
    [[ " $NOT_SCRAPED " == *" $m "* ]] && continue
    grep -qx "$m" "$W/scraped" || echo "$m"
  done
}
start=$SECONDS
while :; do
  curl -sf -o "$W/scrape" "$URL/metrics" || : > "$W/scrape"
  applied=$(awk '$1 ~ /^sharecount_jobs_applied_total/ { n += $2 } END { print n + 0 }' "$W/scrape")
  missing=$(missing_metrics)
  [ -z "$missing" ] && [ "$applied" -ge 20 ] && break
  [ $((SECONDS - start)) -ge $SCRAPE_DEADLINE_S ] && \
    fail "after ${SCRAPE_DEADLINE_S}s: $applied of 20 jobs applied; metrics used by deploy/ but not on /metrics: $(echo $missing)"
  sleep 0.5
done
echo "# every used metric is on /metrics after $((SECONDS - start)) s ($applied jobs applied)"

promtool check metrics < "$W/scrape" > "$W/check_metrics" 2>&1 || { cat "$W/check_metrics" >&2; fail "promtool check metrics on the scrape"; }
# Labels: those of the scrape, the target labels Prometheus adds, and the
# bridge's `job` label renamed to exported_job by the scrape.
{ grep -v '^#' "$W/scrape" | grep -oE '[{,][A-Za-z_][A-Za-z0-9_]*=' | tr -d '{,='
  echo job; echo instance
  grep -qE '^[a-z_]+\{([^}]*,)?job=' "$W/scrape" && echo exported_job
} | sort -u > "$W/scraped_labels"
bad=$(comm -23 "$W/used_labels" "$W/scraped_labels")
[ -z "$bad" ] || fail "labels used by deploy/ but not on /metrics: $(echo $bad)"
for m in $NOT_SCRAPED; do
  grep -qF "\`$m\`" "$OPS_DOC" || fail "$m is exempt from the scrape check but not documented in docs/operations.md"
done
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "bridge did not exit 0 on SIGTERM (status $STOP_STATUS)"
echo "# ok: $(echo "$alerts" | grep -c .) alerts, dashboard, scrape"
