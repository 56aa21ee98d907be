"""ws_live_client.py — drives test/unit/ws_echo_server.bin with a real
WebSocket client (Debian's python3-websockets), for test/e2e/live_ws_echo.sh
(docs/live.md).

Usage: /usr/bin/python3 test/unit/ws_live_client.py PORT
Prints one "ok: ..." line per check; exits 1 at the first failure.

Client B subscribes to (article, tick), which the server changes every
100 ms, and stays connected while other clients send garbage, 10,000
subscriptions, an unmasked frame, a binary message and an oversized message;
B must keep receiving increasing versions and answering pings.  Deadlines are
generous (the machine is shared): no timing is asserted.
"""
import asyncio
import json
import sys

import websockets

URL = "ws://127.0.0.1:%s/share-links/ws" % sys.argv[1]
WAIT = 30  # seconds: a deadline, never a measurement


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def sub(ids, event="subscribe", ctype="article"):
    return json.dumps({"event": event, "data": {"contentType": ctype, "ids": ids}})


async def recv_json(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), WAIT))


async def expect_close(ws, code, what):
    """Read until the server closes; its close code must be `code`."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), WAIT)
    except websockets.ConnectionClosed as e:
        got = e.rcvd.code if e.rcvd else None
        if got != code:
            fail("%s: close code %s, want %s" % (what, got, code))
    print("ok: %s -> close %d" % (what, code))


async def tick_versions(b, n):
    """The next n tick versions B receives (snapshots of other keys are skipped)."""
    out = []
    while len(out) < n:
        m = await recv_json(b)
        if m["event"] == "share_count_changed" and m["data"]["contentId"] == "tick":
            out.append(m["data"]["version"])
    return out


async def errors_and_events(ws, n_err, n_ev):
    errs, evs = [], 0
    while len(errs) < n_err or evs < n_ev:
        m = await recv_json(ws)
        if m["event"] == "error":
            if m["data"]["statusCode"] != 400:
                fail("error event status %s" % m["data"])
            errs.append(m["data"]["message"])
        elif m["event"] == "share_count_changed":
            evs += 1
        else:
            fail("unexpected message %s" % m)
    return errs, evs


async def bad_messages(a):
    await a.send(sub(["abc", "de"]))
    snap = {m["data"]["contentId"]: m["data"] for m in [await recv_json(a), await recv_json(a)]}
    if snap.get("abc", {}).get("shareCount") != 3 or snap.get("de", {}).get("shareCount") != 2:
        fail("snapshot %s" % snap)
    print("ok: subscribe -> one snapshot event per id")
    for text, why in [("garbage", "not JSON"), ("[1]", "JSON object"),
                      ('{"event":"publish","data":{}}', '"subscribe" or "unsubscribe"'),
                      (sub([]), "1 to 1000 ids"),
                      (sub([str(i) for i in range(10000)]), "1 to 1000 ids, not 10000")]:
        await a.send(text)
        errs, _ = await errors_and_events(a, 1, 0)
        if why not in errs[0]:
            fail("%r: error %r lacks %r" % (text[:40], errs[0], why))
    print("ok: garbage, wrong shapes and 10,000 ids in one message -> error events, connection kept")


async def many_subscriptions(c):
    for k in range(10):
        await c.send(sub(["k%d-%d" % (k, i) for i in range(1000)]))
    errs, evs = await errors_and_events(c, 9, 1000)
    if evs != 1000 or any("at most 1000 subscriptions per connection" not in e for e in errs):
        fail("10,000 subscriptions: %d events, errors %s" % (evs, errs[:2]))
    print("ok: 10,000 subscriptions in 10 messages -> 1,000 snapshots, then 9 error events")
    await c.send(sub(["k0-%d" % i for i in range(1000)], "unsubscribe"))
    await c.send(sub(["again"]))
    m = await recv_json(c)
    if m["event"] != "share_count_changed" or m["data"]["contentId"] != "again":
        fail("after unsubscribe, subscribe again: %s" % m)
    print("ok: after unsubscribing 1,000 there is room again")


async def main():
    async with websockets.connect(URL) as b:
        await b.send(sub(["tick"]))
        before = await tick_versions(b, 3)
        async with websockets.connect(URL) as a:
            await bad_messages(a)
        async with websockets.connect(URL) as c:
            await many_subscriptions(c)
        async with websockets.connect(URL) as d:
            await d.send(b"\x00\x01binary")
            await expect_close(d, 1003, "binary message")
        async with websockets.connect(URL, max_size=None) as e:
            await e.send("x" * (300 * 1024))
            await expect_close(e, 1009, "300 KiB message (limit 256 KiB)")
        async with websockets.connect(URL) as f:
            f.transport.write(b"\x81\x05hello")  # unmasked client frame: RFC 6455 5.1
            await expect_close(f, 1002, "unmasked frame")
        pong = await b.ping()
        await asyncio.wait_for(pong, WAIT)
        after = await tick_versions(b, 3)
        allv = before + after
        if any(y <= x for x, y in zip(allv, allv[1:])):
            fail("B's tick versions not increasing: %s" % allv)
        print("ok: client B unaffected: answers ping, versions %s then %s" % (before, after))


asyncio.run(main())
