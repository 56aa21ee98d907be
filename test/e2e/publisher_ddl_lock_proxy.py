#!/usr/bin/env python3
"""publisher_ddl_lock_proxy.py: a TCP relay between a bridge and RabbitMQ for
test/e2e/publisher_ddl_lock.sh, which can hold back what the broker sends (its
publisher confirms, among other frames) while what the bridge sends still goes
through.  Not a test itself (run.sh only runs *.sh).

Usage: publisher_ddl_lock_proxy.py UPSTREAM_PORT PORT_FILE
  Listens on 127.0.0.1 on a free port, written to PORT_FILE once it listens;
  every connection is relayed to 127.0.0.1:UPSTREAM_PORT.
  SIGUSR1: hold.  From the line "held N" on stdout (N counts the holds), no
           byte that the broker sends is passed on: a relay thread that reads
           some keeps it until the release.
  SIGUSR2: release.  Everything held is passed on, in order; prints
           "released N".

Rules: one thread per direction of each connection, blocking sockets; the
only shared state is the `flowing` event (set = not held).  A connection
closed at either end is closed at the other.  Python's stdlib only.
"""
import os
import signal
import socket
import sys
import threading

CHUNK = 65536  # bytes read at once from either side

flowing = threading.Event()
flowing.set()
holds = 0


def relay(src, dst, from_broker):
    """Copy src to dst until either end closes; broker bytes wait while held."""
    try:
        while True:
            data = src.recv(CHUNK)
            if not data:
                break
            if from_broker:
                flowing.wait()  # read during a hold: kept until the release
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(client, upstream_port):
    try:
        broker = socket.create_connection(("127.0.0.1", upstream_port))
    except OSError as e:
        print("cannot reach the broker: %s" % e, file=sys.stderr, flush=True)
        client.close()
        return
    for sock in (client, broker):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threading.Thread(target=relay, args=(client, broker, False), daemon=True).start()
    threading.Thread(target=relay, args=(broker, client, True), daemon=True).start()


def on_hold(_sig, _frame):
    global holds
    flowing.clear()
    holds += 1
    print("held %d" % holds, flush=True)


def on_release(_sig, _frame):
    flowing.set()
    print("released %d" % holds, flush=True)


def main():
    upstream_port, port_file = int(sys.argv[1]), sys.argv[2]
    signal.signal(signal.SIGUSR1, on_hold)
    signal.signal(signal.SIGUSR2, on_release)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    with open(port_file + ".tmp", "w") as f:
        f.write("%d\n" % lsock.getsockname()[1])
    os.rename(port_file + ".tmp", port_file)
    while True:
        client, _ = lsock.accept()  # signal handlers run here (PEP 475 retries)
        serve(client, upstream_port)


if __name__ == "__main__":
    main()
