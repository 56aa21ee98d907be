"""browser_fake_sse.py — a tiny HTTP server for test/browser.sh's self-test.

Usage: /usr/bin/python3 test/browser_fake_sse.py PAGE PORTFILE
Listens on 127.0.0.1 at a free port (written to PORTFILE) and serves:
  GET /?...                          PAGE (bridge/page.html) as text/html
  GET /share-links/stream/article?ids=123
                                     text/event-stream: a `count` event for
                                     (article, 123) shareCount 5 version 1, then
                                     heartbeats; after each GET /next, the
                                     next step of STEPS
  GET /next                          204, releases the next step
Everything else is 404.  Stops on SIGTERM.
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEARTBEAT_S = 1


def event(cid, count, version):
    data = {"contentType": "article", "contentId": cid, "shareCount": count, "delta": 1,
            "version": version, "timestamp": "2026-01-02T03:04:05.678Z"}
    return ("event: count\ndata: %s\n\n" % json.dumps(data)).encode()


# After /next: the second count; a stale one (older version, must not show);
# one for another id (must not show).  The page then has read 4 events.
STEPS = [event("123", 6, 2) + event("123", 4, 1) + event("999", 100, 9)]
released = threading.Semaphore(0)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(event("123", 5, 1))
        self.wfile.flush()
        for step in STEPS:
            while not released.acquire(timeout=HEARTBEAT_S):
                self.wfile.write(b": heartbeat\n\n")
                self.wfile.flush()
            self.wfile.write(step)
            self.wfile.flush()
        while True:
            threading.Event().wait(HEARTBEAT_S)
            self.wfile.write(b": heartbeat\n\n")
            self.wfile.flush()

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/":
            with open(sys.argv[1], "rb") as f:
                self.send(200, "text/html; charset=utf-8", f.read())
        elif self.path == "/share-links/stream/article?ids=123":
            try:
                self.stream()
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif path == "/next":
            released.release()
            self.send(204, "text/plain", b"")
        else:
            self.send(404, "application/json", b'{"statusCode":404,"message":"Not Found","error":"Not Found"}')


srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
srv.daemon_threads = True
with open(sys.argv[2], "w") as f:
    f.write("%d\n" % srv.server_address[1])
srv.serve_forever()
