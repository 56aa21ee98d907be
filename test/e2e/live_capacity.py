#!/usr/bin/env python3
"""Hold N Server-Sent Events streams and N WebSockets to one bridge (each a
new connection, so the bridge serves them itself: docs/live.md "Capacity"),
wait for every snapshot, and print the bridge's resident memory per
connection as one JSON line: {"rss0":KiB,"rss_sse":KiB,"rss_ws":KiB,"n":N}.
Exits non-zero when a subscriber gets no snapshot within the deadline.

Usage: live_capacity.py PORT BRIDGE_PID N
"""
import json
import os
import selectors
import socket
import sys
import time

DEADLINE_S = 120  # for all snapshots of one kind; generous on a loaded machine


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS")


def ws_frame(text):
    """One masked client text frame (zero mask key, RFC 6455 allows any)."""
    data = text.encode()
    assert len(data) < 126
    return bytes([0x81, 0x80 | len(data)]) + b"\0\0\0\0" + data


def open_all(port, n, ws):
    sel = selectors.DefaultSelector()
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        if ws:
            s.sendall(b"GET /share-links/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
            s.sendall(ws_frame('{"event":"subscribe","data":{"contentType":"article","ids":["c%d"]}}' % (i % 10)))
        else:
            s.sendall(b"GET /share-links/stream/article?ids=c%d HTTP/1.1\r\nHost: x\r\n\r\n" % (i % 10))
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, bytearray())
        socks.append(s)
    want = b"share_count_changed" if ws else b"event: count"
    pending, end = n, time.time() + DEADLINE_S
    while pending and time.time() < end:
        for key, _ in sel.select(1):
            chunk = key.fileobj.recv(65536)
            if not chunk:
                raise SystemExit("a %s subscriber was closed: %r" % ("WebSocket" if ws else "stream", bytes(key.data)))
            key.data.extend(chunk)
            if want in key.data:
                sel.unregister(key.fileobj)
                pending -= 1
    if pending:
        raise SystemExit("%d subscribers got no snapshot" % pending)
    return socks


def main():
    port, pid, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    rss0 = rss_kib(pid)
    keep = open_all(port, n, False)
    time.sleep(1)
    rss_sse = rss_kib(pid)
    keep += open_all(port, n, True)
    time.sleep(1)
    rss_ws = rss_kib(pid)
    print(json.dumps({"rss0": rss0, "rss_sse": rss_sse, "rss_ws": rss_ws, "n": n}))
    sys.stdout.flush()
    for s in keep:
        s.close()


if __name__ == "__main__":
    main()
