#!/usr/bin/python3
"""An upstream that fails the ways real ones do, at the socket level, for the fault tests.

    fault_upstream.py --port P --mode faults|token-down|token-junk|token-file [--log FILE]
                      [--down-realm URL]

faults: an open registry (`/v2/` answers 200) whose repositories are named for a fault, the
        first name component choosing it: /v2/<fault>/app/manifests/<tag> (or blobs, tags):
          ok              200 with a body and Content-Length
          cut-chunked     200 chunked: half the body, then the connection closes (no last chunk)
          cut-chunked-big the same after 4 MiB
          cut-length      200 with Content-Length, half the body, then the connection closes
          stall           200 chunked: one chunk, then nothing for --stall seconds, then close
          reset           the request is read, then the connection is reset (RST), no answer
          status-503      503 with Retry-After and a registry error
          status-429      429 with Retry-After and Docker Hub's rate-limit headers
          redirect-loop   302 to itself
          redirect-ftp    302 to an ftp:// URL
          redirect-script 302 to a javascript: URL
          redirect-bad    302 to a malformed URL
          redirect-relative 307 to a relative path on this host, which answers like `ok`
          redirect-cdn    307 to the blob server (another origin, as a CDN is)
          challenge-basic 401 with a Basic challenge
          reset-once      /v2/reset-once/<seed>/...: the first request of each path is reset
                          (RST, no answer), every later one answered like `ok`
          flaky           /v2/flaky/<seed>/<how>/blobs/<digest>: the blob whose content is
                          <seed> repeated (1000 bytes; 20 MiB for a seed that starts with
                          "big"), with Content-Length, every GET alike (the proxy's second GET
                          of a blob it keeps gets what the client got): <how> "wrong" answers
                          other bytes of that length, "cut" half of them and closes, "slow" the
                          right bytes over about 2 s, anything else the right bytes; HEAD
                          answers 200 with the length. GETs per path are counted in the log
wrong: an open registry that serves wrong bytes (a fallback gone bad): a blob GET answers 200
        with --wrong-size bytes that are no blob's (100 kB in a repository named `small`), with
        Content-Length; a HEAD 200 with that length; a manifest the fixed one above.
token-down: /v2/ answers 401 with a Bearer challenge whose realm (--down-realm) refuses
        connections.
token-file: /v2/ answers 401 with a Bearer challenge whose realm is a file:// URL.
token-junk: /v2/ answers 401 with a Bearer challenge whose realm is this server's /token,
        which answers 200 with an HTML page (not a token); /token?scope=...cut... cuts its
        chunked answer short.
Each request is appended to --log as one JSON line (mode, method, path, headers present).
"""
import argparse
import json
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse

import serving

MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": "sha256:" + "cd" * 32, "size": 2},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": "sha256:" + "ef" * 32, "size": 1234}],
    "annotations": {"padding": "x" * 2000},
}).encode()


class Handler(socketserver.StreamRequestHandler):
    def read_request(self):
        line = self.rfile.readline(65537).decode("latin-1").rstrip("\r\n")
        if not line:
            return None
        method, target, _ = (line.split(" ", 2) + ["", ""])[:3]
        headers = {}
        while True:
            h = self.rfile.readline(65537).decode("latin-1").rstrip("\r\n")
            if not h:
                break
            k, _, v = h.partition(":")
            headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        return method, target, headers

    def record(self, method, target, headers):
        u = urllib.parse.urlsplit(target)
        self.server.log.append({"time": time.time(), "mode": self.server.cfg.mode, "method": method,
                                "path": u.path, "query": urllib.parse.parse_qs(u.query),
                                "authorization": "authorization" in headers,
                                "proxy_authorization": "proxy-authorization" in headers,
                                "cookie": "cookie" in headers})

    def send(self, status, reason, headers=(), body=b"", length=True):
        out = ["HTTP/1.1 %d %s" % (status, reason)]
        out += ["%s: %s" % kv for kv in headers]
        if length:
            out.append("Content-Length: %d" % len(body))
        out.append("Connection: close")
        self.wfile.write(("\r\n".join(out) + "\r\n\r\n").encode() + body)
        self.wfile.flush()

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def handle(self):
        req = self.read_request()
        if req is None:
            return
        method, target, headers = req
        self.record(method, target, headers)
        path = urllib.parse.urlsplit(target).path
        mode = self.server.cfg.mode
        if mode == "faults":
            return self.fault(method, path)
        if mode == "wrong":
            return self.wrong(method, path)
        if path in ("/v2", "/v2/"):
            realm = {"token-down": self.server.cfg.down_realm, "token-file": "file:///etc/passwd"}.get(
                mode, "http://127.0.0.1:%d/token" % self.server.server_address[1])
            return self.send(401, "Unauthorized", [
                ("Content-Type", "application/json"),
                ("Www-Authenticate", 'Bearer realm="%s",service="%s"' % (realm, mode))],
                b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
        if path == "/token" and "cut" in target:
            self.send(200, "OK", [("Content-Type", "application/json"),
                                  ("Transfer-Encoding", "chunked")], length=False)
            self.chunk(b'{"token":"eyJhbGciOiJFUzI1NiJ9.')
            return  # closes without the last chunk
        if path == "/token":
            return self.send(200, "OK", [("Content-Type", "text/html")],
                             b"<html><body>Service temporarily unavailable</body></html>")
        self.send(404, "Not Found", [("Content-Type", "application/json")],
                  b'{"errors":[{"code":"NAME_UNKNOWN","message":"unknown"}]}')

    def fault(self, method, path):
        if path in ("/v2", "/v2/"):
            return self.send(200, "OK", [("Content-Type", "application/json")], b"{}")
        parts = path.split("/")
        fault = parts[2] if len(parts) > 2 else ""
        ctype = [("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
                 ("Docker-Content-Digest", "sha256:" + "ab" * 32)]
        body = b"" if method == "HEAD" else MANIFEST
        if fault == "ok":
            return self.send(200, "OK", ctype, body)
        if fault == "cut-chunked":
            self.send(200, "OK", ctype + [("Transfer-Encoding", "chunked")], length=False)
            self.chunk(MANIFEST[: len(MANIFEST) // 2])
            return
        if fault == "cut-chunked-big":
            self.send(200, "OK", [("Content-Type", "application/octet-stream"),
                                  ("Transfer-Encoding", "chunked")], length=False)
            block = b"\0" * 65536
            for _ in range(64):
                self.chunk(block)
            return
        if fault == "cut-length":
            head = ["HTTP/1.1 200 OK"] + ["%s: %s" % kv for kv in ctype] + [
                "Content-Length: %d" % len(MANIFEST), "Connection: close"]
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + MANIFEST[: len(MANIFEST) // 2])
            self.wfile.flush()
            return
        if fault == "stall":
            self.send(200, "OK", ctype + [("Transfer-Encoding", "chunked")], length=False)
            self.chunk(MANIFEST[:100])
            deadline = time.time() + self.server.cfg.stall
            while time.time() < deadline:
                time.sleep(0.2)
            return
        if fault == "reset-once":
            with self.server.lock:
                first = path not in self.server.seen
                self.server.seen.add(path)
            if not first:
                return self.send(200, "OK", ctype, body)
            fault = "reset"
        if fault == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        if fault == "flaky" and len(parts) > 6 and parts[5] == "blobs":
            return self.flaky(method, parts[3], parts[4])
        if fault == "challenge-basic":
            return self.send(401, "Unauthorized", [
                ("Content-Type", "application/json"), ("Www-Authenticate", 'Basic realm="faults"')],
                b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
        if fault == "status-503":
            return self.send(503, "Service Unavailable", [
                ("Content-Type", "application/json"), ("Retry-After", "7")],
                b'{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}')
        if fault == "status-429":
            return self.send(429, "Too Many Requests", [
                ("Content-Type", "application/json"), ("Retry-After", "30"),
                ("RateLimit-Limit", "100;w=21600"), ("RateLimit-Remaining", "0;w=21600"),
                ("Docker-RateLimit-Source", "203.0.113.7")],
                b'{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}')
        redirects = {
            "redirect-loop": path,
            "redirect-ftp": "ftp://files.example.test/blob",
            "redirect-script": "javascript:alert(1)",
            "redirect-bad": "http://[::1",
            "redirect-relative": "../../../ok/app/manifests/v1",
            "redirect-cdn": "http://blobs.example.test:5004/cdn/" + fault,
        }
        if fault in redirects:
            status = 307 if fault in ("redirect-relative", "redirect-cdn") else 302
            return self.send(status, "Redirect", [("Location", redirects[fault])])
        self.send(404, "Not Found", [("Content-Type", "application/json")],
                  b'{"errors":[{"code":"NAME_UNKNOWN","message":"unknown fault"}]}')


    def wrong(self, method, path):
        if path in ("/v2", "/v2/"):
            return self.send(200, "OK", [("Content-Type", "application/json")], b"{}")
        if "/blobs/" in path:
            size = 100_000 if path.startswith("/v2/small/") else self.server.cfg.wrong_size
            head = ["HTTP/1.1 200 OK", "Content-Type: application/octet-stream",
                    "Content-Length: %d" % size, "Connection: close"]
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode())
            if method != "HEAD":
                block = b"not the blob you asked for " * 2500
                sent = 0
                while sent < size:
                    part = block[: size - sent]
                    self.wfile.write(part)
                    sent += len(part)
            return self.wfile.flush()
        if "/manifests/" in path:
            return self.send(200, "OK", [("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
                             b"" if method == "HEAD" else MANIFEST)
        self.send(404, "Not Found", [("Content-Type", "application/json")],
                  b'{"errors":[{"code":"NAME_UNKNOWN","message":"unknown"}]}')

    def flaky(self, method, seed, how):
        size = 20 << 20 if seed.startswith("big") else 1000
        good = (seed.encode() * (size // max(len(seed), 1) + 1))[:size]
        head = ["HTTP/1.1 200 OK", "Content-Type: application/octet-stream",
                "Content-Length: %d" % size, "Connection: close"]
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode())
        if method == "HEAD":
            return self.wfile.flush()
        if how == "wrong":
            self.wfile.write(good[:-1] + bytes([good[-1] ^ 1]))
        elif how == "cut":
            self.wfile.write(good[: size // 2])
        elif how == "slow":
            step = max(size // 20, 1)
            for i in range(0, size, step):
                self.wfile.write(good[i:i + step])
                self.wfile.flush()
                time.sleep(0.1)
        else:
            self.wfile.write(good)
        self.wfile.flush()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=["faults", "wrong", "token-down", "token-junk", "token-file"],
                    required=True)
    ap.add_argument("--wrong-size", type=int, default=3 << 20)
    ap.add_argument("--down-realm", default="http://127.0.0.1:5008/token")
    ap.add_argument("--stall", type=float, default=600.0)
    ap.add_argument("--log")
    cfg = ap.parse_args()
    srv = Server(("127.0.0.1", cfg.port), Handler)
    srv.cfg = cfg
    srv.seen, srv.lock = set(), threading.Lock()
    srv.log = serving.JsonLog(cfg.log)
    print("fault upstream (%s) on 127.0.0.1:%d" % (cfg.mode, cfg.port), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
