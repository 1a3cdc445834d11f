#!/usr/bin/python3
"""An HTTP relay to one upstream that records what it is sent, headers and all, for a test to
see what reached a registry whose own log holds no header (distribution's access log).

    recorder.py --port P --target http://127.0.0.1:5000 --log FILE

Each request is appended to --log as one JSON line (method, path, every header with its value:
this log holds the credentials it saw, which is the point), then sent on to --target as it
came (its body too, a chunked one read whole), and the upstream's answer is given back as it
came, its length included (a HEAD's too); a redirect is not followed. Prints "ready" once
listening. Only for the tests' own registries and credentials.
"""
import argparse
import http.client
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

    def relay(self):
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
    a = ap.parse_args()
    serving.serve(Handler, "127.0.0.1", a.port, "ready",
                  target=urllib.parse.urlsplit(a.target), log=serving.JsonLog(a.log))


if __name__ == "__main__":
    main()
