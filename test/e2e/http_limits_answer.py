#!/usr/bin/env python3
"""Raw-socket half of test/e2e/http_limits_answer.sh (docs/http.md "Request
size limits"): sends requests byte for byte as a client would, on a new
connection or after a first request on a kept-alive one, and checks that each
gets a status line and, for 414/431, exactly the JSON error body.

Usage: http_limits_answer.py PORT CONN_MEMORY GROUP   (GROUP: see main())
Prints one "ok:" line per check; exits 1 at the first failure."""
import socket
import sys

PORT = int(sys.argv[1])
MEM = int(sys.argv[2])
URI_MAX = MEM - 1024            # ROUTE_URI_RESERVE
BUDGET = MEM - 512              # ROUTE_HEAD_RESERVE
RECORD = 64                     # ROUTE_RECORD_BYTES
UUID = "0b6f7e2c-3c1a-4f5e-9d7a-2b8c4e6f8a01"
JSON = "application/json; charset=utf-8"
MSG = {414: "the URL is too long: POST the ids to /share-links/counts/:contentType",
       431: "the request headers are too large"}
REASON = {414: "URI Too Long", 431: "Request Header Fields Too Large"}


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def error_body(status):
    return '{"statusCode":%d,"message":"%s","error":"%s"}' % (status, MSG[status], REASON[status])


def read_answer(s, head_only=False):
    """(status, headers dict, body) of one answer, or None when the
    connection closed (or stayed silent 20 s) without a whole answer."""
    data = b""
    s.settimeout(20)
    try:
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        want = 0 if head_only else int(headers.get("content-length", "0"))
        while len(body) < want:
            chunk = s.recv(65536)
            if not chunk:
                return None
            body += chunk
        return int(lines[0].split()[1]), headers, body[:want].decode("utf-8", "replace")
    except (socket.timeout, ConnectionError):
        return None


def connect(keep_alive):
    s = socket.create_connection(("127.0.0.1", PORT))
    if keep_alive:              # a first, normal request on the connection
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        a = read_answer(s)
        if not a or a[0] != 200:
            fail("first request on a kept-alive connection: %r" % (a,))
    return s


def send(raw, keep_alive=False, head_only=False):
    s = connect(keep_alive)
    try:
        s.sendall(raw)
    except ConnectionError:
        pass                    # the answer may come before the whole request is sent
    a = read_answer(s, head_only)
    s.close()
    return a


def expect(name, a, status, body=None):
    """status 200: any JSON; 414/431: exactly the JSON error body (body=False: any body)."""
    if a is None:
        fail("%s: no answer" % name)
    st, headers, text = a
    if st != status:
        fail("%s: status %d, want %d (%s)" % (name, st, status, text[:120]))
    if body is not False and headers.get("content-type") != JSON:
        fail("%s: Content-Type %r, body %s" % (name, headers.get("content-type"), text[:120]))
    if status in (414, 431) and body is None and text != error_body(status):
        fail("%s: body %s" % (name, text[:200]))
    if body and text != body:
        fail("%s: body %s, want %s" % (name, text[:200], body))


def get(target, extra=b"", method=b"GET"):
    return method + b" " + target.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + b"\r\n"


def head_cost(raw, records):
    return len(raw) + records * RECORD


def group_uuids():
    """GET /counts with 400..460 UUIDs, 1,000 and 2,000, new and kept-alive connections."""
    for keep in (False, True):
        seen = []
        for n in list(range(400, 461)) + [1000, 2000]:
            target = "/share-links/counts/article?ids=" + ",".join([UUID] * n)
            raw = get(target)
            want = 414 if len(target) > URI_MAX else 200
            if want == 200 and head_cost(raw, 2) > BUDGET:
                want = 431
            a = send(raw, keep)
            # a kept-alive connection whose request line does not even fit
            # http_conn_memory gets libmicrohttpd's own page (docs/http.md)
            line_fits = len(raw.split(b"\r\n")[0]) + 2 < MEM - 16
            expect("GET with %d UUIDs%s" % (n, " (kept alive)" if keep else ""), a, want,
                   False if keep and not line_fits else None)
            seen.append("%d:%d" % (n, a[0]))
        print("# " + " ".join(seen))
        print("ok: GET /counts with 400..460, 1,000 and 2,000 UUIDs%s: 200 up to a %d-byte URL, "
              "then the JSON 414" % (" after a first request" if keep else "", URI_MAX))


def group_headers():
    """One big header, many small ones, many query parameters and cookies, around the budget."""
    base = len(get("/healthz", b"X-Pad: \r\n"))
    edge = BUDGET - 2 * RECORD - base            # the largest X-Pad value that fits
    for keep in (False, True):
        for k in list(range(edge - 3, edge + 4)) + [16000, 16300]:
            raw = get("/healthz", b"X-Pad: " + b"x" * k + b"\r\n")
            want = 200 if head_cost(raw, 2) <= BUDGET else 431
            expect("a %d-byte header%s" % (k, " (kept alive)" if keep else ""), send(raw, keep), want,
                   False if keep and k >= 16300 else None)
    print("ok: one header: 200 up to a %d-byte value (head cost %d), then the JSON 431" % (edge, BUDGET))
    for k in (100000, 1000000):
        expect("a %d-byte header" % k, send(get("/healthz", b"X-Pad: " + b"x" * k + b"\r\n")), 431)
    print("ok: headers of 100 KB and 1 MB: the JSON 431")
    per = len(b"X-H000: v\r\n") + RECORD
    edge = (BUDGET - len(get("/healthz")) - RECORD) // per
    for n in (edge, edge + 1, 1000, 5000):
        raw = get("/healthz", b"".join(b"X-H%03d: v\r\n" % i for i in range(n)))
        expect("%d header fields" % n, send(raw), 200 if head_cost(raw, n + 1) <= BUDGET else 431)
    print("ok: %d header fields answered 200, %d and more the JSON 431" % (edge, edge + 1))
    target = "/healthz?" + "&".join(["a"] * 300)
    expect("300 query parameters", send(get(target)), 431)
    cookie = b"Cookie: " + b"; ".join(b"c%d=1" % i for i in range(300)) + b"\r\n"
    expect("300 cookies", send(get("/healthz", cookie)), 431)
    print("ok: 300 query parameters, 300 cookies: the JSON 431 (each is a record in http_conn_memory)")


def group_misc():
    """HEAD, a line without end, bare LF, POSTs over the body limit."""
    big = "/share-links/counts/article?ids=" + ",".join([UUID] * 2000)
    a = send(get(big, method=b"HEAD"), head_only=True)
    expect("HEAD with 2,000 UUIDs", a, 414, False)
    if a[2] != "" or a[1].get("content-length") != str(len(error_body(414))):
        fail("HEAD with 2,000 UUIDs: body %r, Content-Length %r" % (a[2], a[1].get("content-length")))
    print("ok: HEAD with 2,000 UUIDs: 414, no body, the Content-Length of the JSON")
    expect("20 KB without a line end", send(b"GET /" + b"a" * 20000), 414)
    expect("a long URL, bare LF line ends", send(get(big).replace(b"\r\n", b"\n")), 414)
    expect("bare LF line ends", send(get("/healthz").replace(b"\r\n", b"\n")), 200)
    print("ok: 20 KB without a line end, bare-LF requests: answered")
    huge = b"POST /share-links/counts/article HTTP/1.1\r\nHost: 127.0.0.1\r\n" \
           b"Content-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n"
    over = '{"statusCode":413,"message":"body is larger than 2097152 bytes","error":"Payload Too Large"}'
    expect("POST declaring 10^12 bytes", send(huge), 413, over)
    body = b" " * (2 * 1024 * 1024 + 1)
    raw = b"POST /share-links/counts/article HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" \
          b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    expect("chunked POST of 2 MiB + 1 byte", send(raw), 413, over)
    print("ok: POST with Content-Length over 2 MiB and a chunked body over it: the JSON 413")


def main():
    {"uuids": group_uuids, "headers": group_headers, "misc": group_misc}[sys.argv[3]]()


main()
