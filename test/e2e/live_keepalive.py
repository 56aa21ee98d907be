"""live_keepalive.py — the client half of test/e2e/live_keepalive.sh
(docs/live.md "WebSocket", "Server-Sent Events", "Capacity"): a WebSocket and
a stream opened as the SECOND request of a kept-alive connection, so that
libmicrohttpd (not the door) answers them — its upgrade hands the socket to
the live thread, with the bytes it read past the handshake — and, for
comparison, a WebSocket whose handshake and first frame arrive in one write
on a new connection (the door's path).  Raw sockets and hand-made frames
(RFC 6455 §5): the test must control which bytes travel in which write.

Usage: /usr/bin/python3 test/e2e/live_keepalive.py PORT DBNAME N0
  PORT    bridge B's HTTP port (http role only)
  DBNAME  the test database (psql reaches it through PGHOST/PGPORT/PGUSER);
          shares INSERTed there are applied by bridge A
  N0      (article, k1)'s count now

Prints one "ok: ..." line per check; exits 1 at the first failure.
Deadlines are generous (the machine is shared): no timing is asserted.
"""
import base64
import json
import os
import socket
import struct
import subprocess
import sys

PORT, DB, N0 = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
WAIT = 60  # seconds: a deadline, never a measurement


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def insert_share(cid):
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", DB, "-c",
                    "INSERT INTO share_links (content_type, content_id, user_id) "
                    "VALUES ('article', '%s', 'ka-' || gen_random_uuid())" % cid], check=True)


class Conn:
    """A socket and the bytes read from it but not consumed yet."""

    def __init__(self):
        self.sock = socket.create_connection(("127.0.0.1", PORT), timeout=WAIT)
        self.buf = b""

    def fill(self, what):
        """Read once more (the socket's timeout is the deadline)."""
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            fail("nothing read for %s in %d s (read: %r)" % (what, WAIT, self.buf[:300]))
        if not data:
            fail("the bridge closed the connection while waiting for %s (read: %r)" % (what, self.buf[:300]))
        self.buf += data

    def take(self, n, what):
        while len(self.buf) < n:
            self.fill(what)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def head(self, what):
        """An HTTP response head: (status, {lower-case name: value})."""
        while b"\r\n\r\n" not in self.buf:
            self.fill(what)
        raw, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw.decode("latin-1").split("\r\n")
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        return int(lines[0].split()[1]), fields

    def healthz(self):
        """GET /healthz with keep-alive: the connection's first request (not a live route: libmicrohttpd's)."""
        self.sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, fields = self.head("the /healthz answer")
        self.take(int(fields.get("content-length", "0")), "the /healthz body")
        if status != 200 or fields.get("connection", "").lower() == "close":
            fail("/healthz: %d %r: the connection is not kept alive" % (status, fields))


def ws_frame(payload, opcode=1):
    """A masked client frame (RFC 6455 §5.2)."""
    n = len(payload)
    hdr = bytes([0x80 | opcode])
    if n < 126:
        hdr += bytes([0x80 | n])
    elif n < 65536:
        hdr += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        hdr += bytes([0x80 | 127]) + struct.pack(">Q", n)
    mask = os.urandom(4)
    return hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_read(c, what):
    """The next data or close frame from the server (unmasked): (opcode, payload); pings are skipped."""
    while True:
        b0, b1 = c.take(2, what)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", c.take(2, what))[0]
        elif n == 127:
            n = struct.unpack(">Q", c.take(8, what))[0]
        if b1 & 0x80:
            fail("a masked server frame")
        payload = c.take(n, what)
        if b0 & 0x0F in (1, 8):
            return b0 & 0x0F, payload


def ws_count(c, cid, want):
    """Read until a share_count_changed of (article, cid) with shareCount want."""
    while True:
        op, payload = ws_read(c, "%s = %d" % (cid, want))
        if op == 8:
            fail("closed while waiting for %s = %d: %r" % (cid, want, payload))
        m = json.loads(payload)
        if m["event"] == "error":
            fail("error event %r while waiting for %s = %d" % (m["data"], cid, want))
        if m["data"]["contentId"] == cid and m["data"]["shareCount"] == want:
            return m["data"]


def ws_open(c, first_frame):
    """The handshake and a first frame in ONE write; the 101 checked."""
    key = base64.b64encode(os.urandom(16)).decode()
    req = ("GET /share-links/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n" % key).encode()
    c.sock.sendall(req + first_frame)
    status, fields = c.head("the 101")
    if status != 101 or fields.get("upgrade", "").lower() != "websocket":
        fail("handshake: %d %r" % (status, fields))


def ws_close(c):
    c.sock.sendall(ws_frame(struct.pack(">H", 1000), opcode=8))
    op, payload = ws_read(c, "the close answer")
    if op != 8 or struct.unpack(">H", payload[:2])[0] != 1000:
        fail("close answer: opcode %d %r" % (op, payload))
    c.sock.close()


def subscribe(ids):
    return ws_frame(json.dumps({"event": "subscribe", "data": {"contentType": "article", "ids": ids}}).encode())


def main():
    # 1. a WebSocket on a kept-alive connection: libmicrohttpd's upgrade, the subscribe among its extra bytes
    ka = Conn()
    ka.healthz()
    ws_open(ka, subscribe(["k1", "k2"]))
    ws_count(ka, "k1", N0)
    ws_count(ka, "k2", 0)
    print("ok: a WebSocket on a kept-alive connection (libmicrohttpd's upgrade): the subscribe sent with "
          "the handshake gets the snapshot (k1=%d, k2=0)" % N0)

    # 2. the same on a new connection (the door's path)
    new = Conn()
    ws_open(new, subscribe(["k1"]))
    ws_count(new, "k1", N0)
    print("ok: a WebSocket on a new connection (the door's path): the same snapshot")

    # 3. a stream as a kept-alive connection's second request (libmicrohttpd's stream)
    st = Conn()
    st.healthz()
    st.sock.sendall(b"GET /share-links/stream/article?ids=k1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    status, fields = st.head("the stream's head")
    if status != 200 or not fields.get("content-type", "").startswith("text/event-stream"):
        fail("kept-alive stream: %d %r" % (status, fields))
    line = ('"contentId":"k1","shareCount":%d,' % N0).encode()
    while line not in st.buf:
        st.fill("the kept-alive stream's snapshot")
    print("ok: a stream on a kept-alive connection (libmicrohttpd's): 200 text/event-stream, snapshot k1=%d" % N0)

    # 4. a change reaches all three
    insert_share("k1")
    ws_count(ka, "k1", N0 + 1)
    ws_count(new, "k1", N0 + 1)
    line = ('"contentId":"k1","shareCount":%d,' % (N0 + 1)).encode()
    while line not in st.buf:
        st.fill("the kept-alive stream's change")
    print("ok: a change (k1=%d) reached both WebSockets and the kept-alive stream" % (N0 + 1))

    # 5. the client's close is answered with 1000 on both paths
    ws_close(ka)
    ws_close(new)
    st.sock.close()
    print("ok: the client's close answered with 1000 (both paths)")


main()
