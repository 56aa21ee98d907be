"""browser_cdp.py — the smallest DevTools-protocol client, for test/browser.sh.

Usage: /usr/bin/python3 test/browser_cdp.py DEVTOOLS_PORT EXPRESSION
Connects to the first page target of the Chromium listening on DEVTOOLS_PORT
(http://127.0.0.1:PORT/json/list -> webSocketDebuggerUrl), evaluates
EXPRESSION in it with Runtime.evaluate (returnByValue) and prints the value
(strings as they are, anything else as JSON).  Exit 1 with a reason on stderr
if there is no page, the expression throws or nothing answers in 30 s.
Uses Debian's python3-websockets (10.x, asyncio API).
"""
import asyncio
import json
import sys
import urllib.request

import websockets

DEADLINE = 30  # seconds, generous: the machine is shared


def page_ws_url(port):
    with urllib.request.urlopen("http://127.0.0.1:%s/json/list" % port, timeout=DEADLINE) as r:
        targets = json.load(r)
    pages = [t for t in targets if t.get("type") == "page" and t.get("webSocketDebuggerUrl")]
    if not pages:
        sys.exit("browser_cdp: no page target among %d" % len(targets))
    return pages[0]["webSocketDebuggerUrl"]


async def evaluate(url, expression):
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"id": 1, "method": "Runtime.evaluate",
                                  "params": {"expression": expression, "returnByValue": True}}))
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
            if msg.get("id") == 1:
                return msg


def main():
    port, expression = sys.argv[1], sys.argv[2]
    msg = asyncio.run(evaluate(page_ws_url(port), expression))
    res = msg.get("result", {})
    if "error" in msg or "exceptionDetails" in res:
        sys.exit("browser_cdp: %s" % json.dumps(msg.get("error") or res.get("exceptionDetails"))[:300])
    value = res.get("result", {}).get("value")
    print(value if isinstance(value, str) else json.dumps(value))


main()
