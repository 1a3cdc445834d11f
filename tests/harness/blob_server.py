#!/usr/bin/python3
"""Static file server standing in for Docker Hub's blob CDN / an object store.

    blob_server.py --port 5004 --root DIR [--log FILE] [--reject-authorization]

Serves DIR read-only (GET and HEAD, single `Range: bytes=a-b` supported, 206/416).
distribution 2.8's redirect middleware sends blob GETs/HEADs to
    <baseurl scheme+host>/docker/registry/v2/blobs/sha256/<hex[:2]>/<hex>/data
which is exactly that file under the filesystem driver's rootdirectory.

--reject-authorization answers 400 to any request that carries an Authorization header,
as S3/R2 presigned URLs do ("Only one auth mechanism allowed"). Each request is appended
to --log as one JSON line (method, path, range, whether Authorization was present, status).
"""
import argparse
import os
import re
import time
import urllib.parse

import serving


class Handler(serving.Handler):
    server_version = "test-blob-server/1.0"

    def record(self, status, **extra):
        parsed, query = self.target()
        entry = {
            "time": time.time(),
            "method": self.command,
            "path": parsed.path,
            "query": query,
            "host": self.headers.get("Host"),
            "range": self.headers.get("Range"),
            "authorization": "Authorization" in self.headers,
            "proxy_authorization": "Proxy-Authorization" in self.headers,
            "cookie": "Cookie" in self.headers,
            "user_agent": self.headers.get("User-Agent"),
            "status": status,
        }
        entry.update(extra)
        self.server.log.append(entry)

    def error(self, status, code, message):
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
                "<Message>%s</Message></Error>\n" % (code, message)).encode()
        self.reply(status, [("Content-Type", "application/xml")], body)
        self.record(status)

    def do_GET(self):
        cfg = self.server.cfg
        if cfg.reject_authorization and "Authorization" in self.headers:
            return self.error(400, "InvalidArgument",
                              "Only one auth mechanism allowed; Authorization header present")
        rel = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        full = os.path.realpath(os.path.join(cfg.root, rel))
        if not (full + "/").startswith(cfg.root + "/") or not os.path.isfile(full):
            return self.error(404, "NoSuchKey", "The specified key does not exist.")
        size = os.path.getsize(full)
        start, end, status = 0, size - 1, 200
        rng = self.headers.get("Range")
        if rng:
            m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", rng)
            if m and (m.group(1) or m.group(2)):
                if m.group(1):
                    start = int(m.group(1))
                    end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
                else:  # suffix range
                    start = max(0, size - int(m.group(2)))
                if start >= size or start > end:
                    self.reply(416, [("Content-Range", "bytes */%d" % size)])
                    self.record(416)
                    return
                status = 206
        length = end - start + 1
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        self.end_headers()
        sent = 0
        if self.command != "HEAD":
            with open(full, "rb") as f:
                f.seek(start)
                remaining = length
                while remaining > 0:
                    chunk = f.read(min(1 << 20, remaining))
                    if not chunk:
                        break
                    try:
                        self.wfile.write(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        break
                    remaining -= len(chunk)
                    sent += len(chunk)
        self.record(status, bytes=sent)

    def do_HEAD(self):
        self.do_GET()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5004)
    ap.add_argument("--root", required=True)
    ap.add_argument("--log")
    ap.add_argument("--reject-authorization", action="store_true")
    cfg = ap.parse_args()
    cfg.root = os.path.realpath(cfg.root)
    serving.serve(Handler, cfg.host, cfg.port,
                  "blob server on %s:%d serving %s" % (cfg.host, cfg.port, cfg.root),
                  cfg=cfg, log=serving.JsonLog(cfg.log, sort_keys=True))


if __name__ == "__main__":
    main()
