#!/usr/bin/env bash
# The live page of docs/live.md in a real headless browser (Debian's chromium,
# test/browser.sh): bridge/page.html, served with a fake SSE stream, shows the
# first count, then the second; an older version or another id's count never
# shows.  The page served by a bridge, end to end, is live_page_sql.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec bash test/browser.sh
