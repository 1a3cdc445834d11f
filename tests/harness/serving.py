"""What the harness's stand-in servers share (token_issuer, blob_server, fake_upstream,
search_server, recorder; fault_upstream, blackhole and tcp_forward, which work at the socket
level, take the log and the listening socket): one JSON line per request appended to a log,
an HTTP/1.1 handler that answers with a length, a threaded server, a listening socket.

Imported by the scripts next to it (their directory is first on sys.path when they run), and
by bench/bench.py through token_issuer.
"""
import json
import socket
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class JsonLog:
    """Appends one JSON object a line to `path` (none: drops them), one writer at a time."""

    def __init__(self, path, sort_keys=False):
        self.path = path
        self.sort_keys = sort_keys
        self.lock = threading.Lock()

    def append(self, entry):
        if not self.path:
            return
        line = json.dumps(entry, sort_keys=self.sort_keys)
        with self.lock, open(self.path, "a") as f:
            f.write(line + "\n")


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 (keep-alive, as registries answer), stderr for the server's own messages."""

    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # the JSON log is the record
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def target(self, blank_values=False):
        """The request's (urlsplit of the target, its query as parse_qs gives it)."""
        parsed = urllib.parse.urlsplit(self.path)
        return parsed, urllib.parse.parse_qs(parsed.query, keep_blank_values=blank_values)

    def reply(self, status, headers=(), body=b"", length=None):
        """`status` with `headers`, a Content-Length (`length`, else the body's), and the body
        unless the request was a HEAD."""
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reply_json(self, status, obj, headers=(), length=None):
        self.reply(status, [("Content-Type", "application/json")] + list(headers),
                   json.dumps(obj).encode(), length)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # the load command connects hundreds at once


def serve(handler, host, port, banner=None, **attrs):
    """Serves `handler` on host:port until interrupted; `attrs` become the server's attributes
    (what the handler reads as self.server.<name>)."""
    httpd = Server((host, port), handler)
    for name, value in attrs.items():
        setattr(httpd, name, value)
    if banner:
        print(banner, flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


def listener(host, port, backlog=128):
    """A TCP socket listening on host:port (address reuse on)."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(backlog)
    return srv
