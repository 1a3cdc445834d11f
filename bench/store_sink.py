#!/usr/bin/python3
"""A store that costs workerd nothing: the Cache API and an R2 bucket that read and drop.

    store_sink.py --port P [--log FILE]

Bare workerd sends a worker's Cache API operations (its `cacheApiOutbound`) and an R2 binding's
operations (`r2Bucket = "<this service>"`) to a service as HTTP. This one answers both as the
real stores would answer a store that never has anything, reading every byte it is sent and
dropping it, so that a benchmark counts the Worker's CPU and not the store's:

- Cache API: `match` (a GET) is a miss (504, `Cf-Cache-Status: MISS`); `put` (PUT) and `delete`
  (PURGE) are read and answered 204 / 404.
- R2: `get`/`head` (GET, the operation in `cf-r2-request`) is "no such key" (404, `cf-r2-error`
  with v4code 10007); `put` (PUT: `cf-r2-metadata-size` bytes of JSON, then the value) is read
  to its end and answered with the object's metadata, the size being what arrived. A put whose
  body ends early is answered 400, as R2 would refuse it.

One JSON line per operation goes to --log (kind, method, bytes read), so a benchmark can check
that what it measured was kept (or not).
"""
import argparse
import json
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

R2_MISS = json.dumps({"message": "The specified key does not exist.", "version": 1, "v4code": 10007})
CHUNK = 1 << 20


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # an answer's headers and body go in two writes: with Nagle, the body would wait for the
    # client's delayed ACK (~40 ms per R2 put answer)
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def read(self, n):
        """Reads and drops `n` bytes: how many arrived before the connection ended."""
        got = 0
        while got < n:
            part = self.rfile.read(min(n - got, CHUNK))
            if not part:
                break
            got += len(part)
        return got

    def drain(self):
        """Reads the body (Content-Length or chunked) and drops it: the bytes that arrived and
        whether it was complete."""
        n = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    return n, False
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline(1024)
                    return n, True
                got = self.read(size)
                n += got
                if got < size:
                    return n, False
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        n = self.read(length)
        return n, n == length

    def record(self, kind, n, complete):
        if self.server.log:
            entry = {"time": time.time(), "kind": kind, "method": self.command, "path": self.path,
                     "bytes": n, "complete": complete}
            with self.server.lock, open(self.server.log, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def answer(self, status, headers=(), body=b""):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def r2(self):
        return "cf-r2-request" in self.headers or "cf-r2-metadata-size" in self.headers

    def do_GET(self):
        self.drain()
        if self.r2():
            op = json.loads(self.headers.get("cf-r2-request") or "{}")
            self.record("r2-" + str(op.get("method")), 0, True)
            return self.answer(404, [("cf-r2-error", R2_MISS)])
        self.record("cache-match", 0, True)
        self.answer(504, [("Cf-Cache-Status", "MISS")])

    def do_PUT(self):
        if not self.r2():
            n, complete = self.drain()
            self.record("cache-put", n, complete)
            return self.answer(204 if complete else 400)
        size = int(self.headers["cf-r2-metadata-size"])
        meta = json.loads(self.rfile.read(size) or b"{}")
        total = int(self.headers.get("Content-Length") or 0) - size
        n = self.read(total)
        complete = n == total
        self.record("r2-" + str(meta.get("method")), n, complete)
        if meta.get("method") != "put":
            return self.answer(200)
        if not complete:
            err = json.dumps({"message": "incomplete body", "version": 1, "v4code": 10037})
            return self.answer(400, [("cf-r2-error", err)])
        obj = meta.get("object", "")
        props = json.dumps({
            "name": obj, "version": "0" * 32, "size": n, "etag": "0" * 32,
            "uploaded": int(time.time() * 1000), "httpFields": meta.get("httpFields") or {},
            "customFields": [{"k": k, "v": v} for k, v in (meta.get("customFields") or {}).items()]
            if isinstance(meta.get("customFields"), dict) else meta.get("customFields") or [],
            "checksums": {},
        }).encode()
        self.answer(200, [("cf-r2-metadata-size", str(len(props))),
                          ("Content-Type", "application/json")], props)

    def do_PURGE(self):
        self.drain()
        self.record("cache-delete", 0, True)
        self.answer(404)

    do_DELETE = do_PURGE


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log")
    a = ap.parse_args()
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.log = a.log
    srv.lock = threading.Lock()
    print("store sink on 127.0.0.1:%d" % a.port, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
