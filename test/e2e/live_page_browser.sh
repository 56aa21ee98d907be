#!/usr/bin/env bash
# The live page of docs/live.md in a real headless browser (Debian's chromium,
# test/browser.sh): bridge/page.html, served with a fake SSE stream, shows the


set -euo pipefail
cd "$(dirname "$0")/../.."
exec bash test/browser.sh
