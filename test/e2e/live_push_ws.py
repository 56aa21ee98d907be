"""live_push_ws.py — the WebSocket half of test/e2e/live_push.sh (docs/live.md
"WebSocket"), against bridge B's GET /share-links/ws with a real client
(Debian's python3-websockets).

Usage: /usr/bin/python3 test/e2e/live_push_ws.py PORT DBNAME N0
  PORT    bridge B's HTTP port (http role only, http_allowed_origins set to
          http://allowed.example)
  DBNAME  the test database (psql reaches it through PGHOST/PGPORT/PGUSER):
          shares are INSERTed there and applied by bridge A
  N0      (article, p1)'s count now

Prints one "ok: ..." line per check; exits 1 at the first failure.  Client
S subscribes to (article, p1) and stays connected while other clients send
garbage, a 300 KiB frame and 10,000 subscriptions, and one with a foreign
Origin is refused; S must keep receiving each new count.  Deadlines are
generous (the machine is shared): no timing is asserted.
"""
import asyncio
import json
import subprocess
import sys

import websockets

PORT, DB, N0 = sys.argv[1], sys.argv[2], int(sys.argv[3])
URL = "ws://127.0.0.1:%s/share-links/ws" % PORT
WAIT = 60  # seconds: a deadline, never a measurement


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def sub(ids, event="subscribe", ctype="article"):
    return json.dumps({"event": event, "data": {"contentType": ctype, "ids": ids}})


def insert_share(cid):
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", DB, "-c",
                    "INSERT INTO share_links (content_type, content_id, user_id) "
                    "VALUES ('article', '%s', 'ws-' || gen_random_uuid())" % cid], check=True)


async def recv_json(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), WAIT))


async def count_of(ws, cid, want):
    """Read until a share_count_changed for (article, cid) with shareCount want; return its data."""
    while True:
        m = await recv_json(ws)
        if m["event"] == "error":
            fail("error event %s while waiting for %s = %d" % (m["data"], cid, want))
        d = m["data"]
        if d["contentId"] == cid and d["shareCount"] == want:
            return d


async def first_count(ws, cid):
    m = await recv_json(ws)
    if m["event"] != "share_count_changed" or m["data"]["contentId"] != cid:
        fail("first message after subscribe: %s" % m)
    return m["data"]["shareCount"]


async def expect_close(ws, code, what):
    try:
        while True:
            await asyncio.wait_for(ws.recv(), WAIT)
    except websockets.ConnectionClosed as e:
        got = e.rcvd.code if e.rcvd else None
        if got != code:
            fail("%s: close code %s, want %s" % (what, got, code))
    print("ok: %s -> close %d" % (what, code))


async def error_event(ws, text, what):
    await ws.send(text)
    while True:
        m = await recv_json(ws)
        if m["event"] == "error":
            if m["data"]["statusCode"] != 400:
                fail("%s: error event %s" % (what, m["data"]))
            print("ok: %s -> error event (%s)" % (what, m["data"]["message"]))
            return m["data"]["message"]


async def bad_clients():
    g = await websockets.connect(URL)
    await error_event(g, "garbage", "garbage")
    await error_event(g, sub(["x%d" % i for i in range(10000)]), "10,000 ids in one subscribe")
    for k in range(10):
        await g.send(sub(["k%d-%d" % (k, i) for i in range(1000)]))
    got = errs = 0
    while got < 1000 or errs < 9:  # 1,000 snapshot events; the other 9,000 ids refused, in any order
        m = await recv_json(g)
        if m["event"] == "share_count_changed":
            got += 1
        elif "at most 1000 subscriptions" in m["data"]["message"]:
            errs += 1
        else:
            fail("10,000 subscriptions: %s" % m)
    if got != 1000:
        fail("10,000 subscriptions: %d snapshot events, want 1000" % got)
    print("ok: 10,000 subscriptions -> the first 1,000 snapshotted, an error event for each other message")
    await g.close()
    big = await websockets.connect(URL, max_size=None)
    await big.send("x" * (300 * 1024))
    await expect_close(big, 1009, "a 300 KiB message")
    try:
        await websockets.connect(URL, origin="http://evil.example")
        fail("a foreign Origin was upgraded")
    except websockets.InvalidStatusCode as e:
        if e.status_code != 403:
            fail("foreign Origin: status %s, want 403" % e.status_code)
    print("ok: a foreign Origin -> 403")
    ok = await websockets.connect(URL, origin="http://allowed.example")
    await ok.send(sub(["p1"]))
    await first_count(ok, "p1")
    await ok.close()
    print("ok: a listed Origin is upgraded")


async def main():
    s = await websockets.connect(URL)
    await s.send(sub(["p1", "p2"]))
    snap = {}
    for _ in range(2):
        m = await recv_json(s)
        snap[m["data"]["contentId"]] = m["data"]["shareCount"]
    if snap != {"p1": N0, "p2": 0}:
        fail("snapshot %s, want p1=%d p2=0" % (snap, N0))
    print("ok: subscribe -> the current counts first (p1=%d, p2=0)" % N0)
    insert_share("p1")
    await count_of(s, "p1", N0 + 1)
    print("ok: a share INSERTed by SQL, applied by bridge A -> %d at the WebSocket on bridge B" % (N0 + 1))
    await bad_clients()
    insert_share("p1")
    d = await count_of(s, "p1", N0 + 2)
    print("ok: the steady client kept receiving (%d, version %s)" % (N0 + 2, d["version"]))
    await s.send(sub(["p1"], "unsubscribe"))
    await s.close()
    r = await websockets.connect(URL)
    await r.send(sub(["p1"]))
    n = await first_count(r, "p1")
    if n != N0 + 2:
        fail("reconnected: first count %d, want %d" % (n, N0 + 2))
    print("ok: a reconnected client gets the current count (%d) first" % n)
    await r.close()


asyncio.run(main())
