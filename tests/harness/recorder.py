#!/usr/bin/python3
"""An HTTP relay to one upstream that records what it is sent, headers and all, for a test to
see what reached a registry whose own log holds no header (distribution's access log).

    recorder.py --port P --target http://127.0.0.1:5000 --log FILE

Each request is appended to --log as one JSON line (method, path, every header with its value:
this log holds the credentials it saw, which is the point), then sent on to --target as it
came (its body too, a chunked one read whole), and the upstream's answer is given back as it
came, its length included (a HEAD's too); a redirect is not followed. Prints "ready" once
listening. Only for the tests' own registries and credentials.

    recorder.py ... --limit [--after N]

also plays Docker Hub when it limits an address: after N manifest requests (GET or HEAD; no
limit by default) every further one is answered 429 with Docker Hub's body and headers, the
rest is relayed. A test sets the state with `GET /_limit?after=N` (the count starts again),
`/_limit?down=1` (every request's connection is closed unanswered, as a registry that cannot
be reached) or `/_limit?up=1`; that request is neither relayed nor logged.
"""
import argparse
import http.client
import threading
import time
import urllib.parse

import serving

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
              "trailer", "upgrade", "content-length"}
OWN = HOP_BY_HOP | {"date", "server"}  # the relay's answer has its own


class Handler(serving.Handler):
    def body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def limited(self):
        """Whether this request is the limit's to answer (a control request, a closed
        connection, a 429), and answers it."""
        limit = self.server.limit
        if limit is None:
            return False
        parsed, query = self.target()
        if parsed.path == "/_limit":
            with limit["lock"]:
                if "after" in query:
                    limit["after"], limit["seen"] = int(query["after"][0]), 0
                if "down" in query:
                    limit["down"] = True
                if "up" in query:
                    limit["down"] = False
            self.reply_json(200, {"after": limit["after"], "down": limit["down"]})
            return True
        if limit["down"]:
            self.close_connection = True
            return True
        if "/manifests/" not in parsed.path or self.command not in ("GET", "HEAD"):
            return False
        with limit["lock"]:
            limit["seen"] += 1
            over = limit["after"] is not None and limit["seen"] > limit["after"]
        if not over:
            return False
        self.body()
        self.server.log.append({"time": time.time(), "method": self.command, "path": self.path,
                                "headers": {k: v for k, v in self.headers.items()},
                                "limited": True})
        self.reply_json(429, {"errors": [{
            "code": "TOOMANYREQUESTS",
            "message": "You have reached your unauthenticated pull rate limit. "
                       "https://www.docker.com/increase-rate-limit"}]}, [
            ("RateLimit-Limit", "100;w=21600"), ("RateLimit-Remaining", "0;w=21600"),
            ("Docker-RateLimit-Source", "203.0.113.7")])
        return True

    def relay(self):
        if self.limited():
            return
        body = self.body()
        self.server.log.append({
            "time": time.time(),
            "method": self.command,
            "path": self.path,
            "headers": {k: v for k, v in self.headers.items()},
        })
        target = self.server.target
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        conn.request(self.command, self.path, body=body or None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        kept = [(k, v) for k, v in resp.getheaders() if k.lower() not in OWN]
        length = resp.getheader("Content-Length") if self.command == "HEAD" else None
        conn.close()
        self.reply(resp.status, kept, data, length)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = relay


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--limit", action="store_true")
    ap.add_argument("--after", type=int)
    a = ap.parse_args()
    limit = {"after": a.after, "seen": 0, "down": False, "lock": threading.Lock()} if a.limit else None
    serving.serve(Handler, "127.0.0.1", a.port, "ready",
                  target=urllib.parse.urlsplit(a.target), log=serving.JsonLog(a.log), limit=limit)


if __name__ == "__main__":
    main()
