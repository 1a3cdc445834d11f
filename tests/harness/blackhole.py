#!/usr/bin/python3
"""Accepts TCP connections and never answers (for upstream-timeout tests).

    blackhole.py --port 5009 [--max-seconds 3600]

Connections are held open, unread, until the peer closes them or --max-seconds passes.
"""
import argparse
import selectors
import socket
import time

import serving


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5009)
    ap.add_argument("--max-seconds", type=float, default=3600.0)
    args = ap.parse_args()
    srv = serving.listener(args.host, args.port)
    print("blackhole on %s:%d" % (args.host, args.port), flush=True)
    sel = selectors.DefaultSelector()
    sel.register(srv, selectors.EVENT_READ)
    conns = {}  # socket -> accept time
    while True:
        for key, _ in sel.select(timeout=1.0):
            if key.fileobj is srv:
                c, _ = srv.accept()
                conns[c] = time.monotonic()
                sel.register(c, selectors.EVENT_READ)
            else:
                c = key.fileobj
                try:
                    data = c.recv(65536, socket.MSG_PEEK)
                except OSError:
                    data = b""
                if data:
                    # drain (never answer) so the peer is not blocked on a full buffer
                    try:
                        c.recv(65536)
                    except OSError:
                        pass
                else:
                    sel.unregister(c)
                    conns.pop(c, None)
                    c.close()
        now = time.monotonic()
        for c, t in list(conns.items()):
            if now - t > args.max_seconds:
                sel.unregister(c)
                conns.pop(c)
                c.close()


if __name__ == "__main__":
    main()
