#!/usr/bin/python3
"""Pulls of a multi-layer image, cold and warm, as the upstream sees them (run by bench/pulls.sh).

    pulls.py --build DIR --baseline FILE --delay-ms 50 --pulls 3 --big-mib 16

In front of the end-to-end harness's Docker-Hub-like registry (token auth, blobs redirected to
a second host), three counting fronts of this script's own, one per upstream host (registry,
token service, blob storage), each adding --delay-ms before every request it passes on, as
between a data center and Docker Hub; they point the registry's realm and redirects at each
other. Subjects, each pulled --pulls times with skopeo into an empty directory:

  rust      this Worker's build under Miniflare (a real Cache API, empty at start)
  rust-off  the same with CACHE = "off"
  original  the baseline service-worker script under Miniflare (MODE=debug towards the front)
  direct    the registry itself (through the fronts), no proxy

Per pull: upstream requests (all hosts), upstream bytes, manifest GETs (what Docker Hub counts
as pulls), blob GETs and wall time. The first pull of each subject is cold, the rest warm.
"""
import argparse
import hashlib
import http.client
import http.server
import json
import os
import re
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
       "proxy-connection", "content-length"}


class Front:
    """An HTTP front for one upstream host: delays, counts and passes on every request."""

    def __init__(self, name, target_port, delay_ms):
        self.name, self.target_port, self.delay = name, target_port, delay_ms / 1000
        self.rewrites = []  # (from, to) applied to Location and Www-Authenticate
        self.lock = threading.Lock()
        self.log = []
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_one(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                time.sleep(front.delay)
                conn = http.client.HTTPConnection("127.0.0.1", front.target_port, timeout=120)
                conn.putrequest(self.command, self.path, skip_host=True,
                                skip_accept_encoding=True)
                conn.putheader("Host", "127.0.0.1:%d" % front.target_port)
                for k, v in self.headers.items():  # repeated headers (Accept) stay repeated
                    if k.lower() not in HOP and k.lower() != "host":
                        conn.putheader(k, v)
                if body is not None:
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body)
                resp = conn.getresponse()
                self.send_response_only(resp.status, resp.reason)
                n_len = resp.getheader("content-length")
                for k, v in resp.getheaders():
                    if k.lower() in HOP:
                        continue
                    if k.lower() in ("location", "www-authenticate"):
                        for a, b in front.rewrites:
                            v = v.replace(a, b)
                    self.send_header(k, v)
                sent = 0
                if self.command == "HEAD":
                    if n_len is not None:
                        self.send_header("Content-Length", n_len)
                    self.end_headers()
                elif n_len is not None:
                    self.send_header("Content-Length", n_len)
                    self.end_headers()
                    while True:
                        chunk = resp.read(1 << 16)
                        if not chunk:
                            break
                        self.wfile.write(chunk)
                        sent += len(chunk)
                else:
                    data = resp.read()
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    sent = len(data)
                conn.close()
                with front.lock:
                    front.log.append({"method": self.command, "path": self.path.split("?")[0],
                                      "status": resp.status, "bytes": sent})

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            request_queue_size = 256

            def handle_error(self, request, client_address):
                pass  # a client that closes its keep-alive connection

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def mark(self):
        with self.lock:
            return len(self.log)

    def since(self, mark):
        with self.lock:
            return self.log[mark:]


class Miniflare:
    def __init__(self, repo, workdir, port, tls, build=None, script=None, bindings=None,
                 bucket=False):
        args = ["node", os.path.join(repo, "tests/harness/miniflare.mjs"), "--port", str(port),
                "--bindings", json.dumps(bindings or {}), "--cert", tls[0], "--key", tls[1]]
        args += ["--build", build] if build else ["--script", script]
        if bucket:  # Miniflare's R2, in memory: empty at the start
            args += ["--r2", "CACHE_BUCKET"]
        self.log = open(os.path.join(workdir, "miniflare-%d.log" % port), "w+")
        self.proc = subprocess.Popen(args, cwd=repo, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        for _ in range(300):
            self.log.seek(0)
            if "ready " in self.log.read():
                return
            time.sleep(0.05)
        self.stop()
        sys.exit("pulls: miniflare on :%d did not start" % port)

    def cpu_seconds(self):
        """utime+stime of Miniflare's workerd (the Worker's runtime, a child of node)."""
        total = 0.0
        for pid in subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                                  text=True).stdout.split():
            try:
                stat = open("/proc/%s/stat" % pid).read()
                if "(workerd)" not in stat:
                    continue
                fields = stat.rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            except OSError:
                pass
        return total

    def stop(self):
        import signal
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except Exception:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except Exception:
                pass


def baseline(src, dst, target, host):
    """The original with its Docker Hub route on `host` towards `target`. It runs in production
    mode on port 443: its realm drops the port, and its debug mode's realm is plain http."""
    text = open(src).read()
    for old, new in (('"https://registry-1.docker.io"', json.dumps(target)),
                     ('"docker.yyy.xyz"', json.dumps(host))):
        if old not in text:
            sys.exit("pulls: %s has no %s to point at the front" % (src, old))
        text = text.replace(old, new, 1)
    open(dst, "w").write(text)


def pull(reference, workdir):
    out = tempfile.mkdtemp(dir=workdir)
    t0 = time.monotonic()
    tls = [] if reference.startswith("docker.example.test") else ["--src-tls-verify=false"]
    subprocess.run(["skopeo", "copy", "--quiet"] + tls + ["docker://" + reference, "oci:" + out],
                   check=True)
    secs = time.monotonic() - t0
    index = json.load(open(os.path.join(out, "index.json")))
    digest = index["manifests"][0]["digest"]
    shutil.rmtree(out)
    return secs, digest


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", required=True, help="the repository's checkout")
    ap.add_argument("--build", required=True, help="the Worker's build directory")
    ap.add_argument("--baseline", help="the original Worker (a service-worker script)")
    ap.add_argument("--hub-port", type=int, default=5000)
    ap.add_argument("--issuer-port", type=int, default=5002)
    ap.add_argument("--blobs-port", type=int, default=5004)
    ap.add_argument("--image", required=True, help="repository on the hub, e.g. library/pulls")
    ap.add_argument("--digest", required=True, help="its manifest digest, to check every pull")
    ap.add_argument("--delay-ms", type=float, default=50)
    ap.add_argument("--pulls", type=int, default=3)
    ap.add_argument("--port", type=int, default=443,
                    help="the Workers' HTTPS port, one after the other (the original's realm "
                    "needs 443)")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--workdir", default=tempfile.gettempdir())
    a = ap.parse_args()

    reg = Front("registry", a.hub_port, a.delay_ms)
    tok = Front("token", a.issuer_port, a.delay_ms)
    cdn = Front("blobs", a.blobs_port, a.delay_ms)
    for f in (reg, tok, cdn):
        f.rewrites = [("auth.example.test:%d" % a.issuer_port, "127.0.0.1:%d" % tok.port),
                      ("127.0.0.1:%d/token" % a.issuer_port, "127.0.0.1:%d/token" % tok.port),
                      ("blobs.example.test:%d" % a.blobs_port, "127.0.0.1:%d" % cdn.port)]
    fronts = (reg, tok, cdn)
    upstream = "http://127.0.0.1:%d" % reg.port

    subjects = []
    tls = (a.cert, a.key)
    host = "docker.example.test"
    routes = {host: {"upstream": upstream, "docker_hub": True}}
    subjects.append(("rust", lambda: Miniflare(a.repo, a.workdir, a.port, tls, build=a.build,
                                               bindings={"ROUTES": routes, "LOG_LEVEL": "off"})))
    subjects.append(("rust-r2", lambda: Miniflare(
        a.repo, a.workdir, a.port, tls, build=a.build,
        bindings={"ROUTES": routes, "LOG_LEVEL": "off"}, bucket=True)))
    subjects.append(("rust-off", lambda: Miniflare(
        a.repo, a.workdir, a.port, tls, build=a.build,
        bindings={"ROUTES": routes, "LOG_LEVEL": "off", "CACHE": "off"})))
    if a.baseline:
        script = os.path.join(a.workdir, "original.js")
        baseline(a.baseline, script, upstream, host)
        subjects.append(("original", lambda: Miniflare(a.repo, a.workdir, a.port, tls,
                                                       script=script)))
    subjects.append(("direct", None))
    prefix = {"rust": "%s:%d/" % (host, a.port), "rust-r2": "%s:%d/" % (host, a.port),
              "rust-off": "%s:%d/" % (host, a.port),
              "original": "%s:%d/" % (host, a.port), "direct": "127.0.0.1:%d/" % reg.port}

    rows = []
    for name, start in subjects:
        mf = start() if start else None
        if mf:
            # the isolate and its wasm are made on the first request: not part of a pull
            subprocess.run(["curl", "-s", "-o", "/dev/null", "--cacert", a.cert,
                            "https://%s:%d/v2/" % (host, a.port)], check=False)
        try:
            for n in range(a.pulls):
                marks = [f.mark() for f in fronts]
                cpu0 = mf.cpu_seconds() if mf else 0.0
                secs, digest = pull(prefix[name] + a.image + ":latest", a.workdir)
                if digest != a.digest:
                    sys.exit("pulls: %s pulled %s, not %s" % (name, digest, a.digest))
                # what is kept after the response (a second GET of each blob): until the
                # upstream hosts have seen nothing new for a second
                quiet, last = time.monotonic(), None
                while time.monotonic() - quiet < 1.0:
                    now = sum(f.mark() for f in fronts)
                    if now != last:
                        quiet, last = time.monotonic(), now
                    time.sleep(0.1)
                cpu = (mf.cpu_seconds() - cpu0) * 1000 if mf else None
                seen = [e for f, m in zip(fronts, marks) for e in f.since(m)]
                rows.append({
                    "subject": name, "pull": "cold" if n == 0 else "warm", "n": n + 1,
                    "requests": len(seen),
                    "registry_requests": len(reg.since(marks[0])),
                    "bytes": sum(e["bytes"] for e in seen),
                    "manifest_gets": sum(1 for e in seen if e["method"] == "GET"
                                         and "/manifests/" in e["path"]),
                    "blob_gets": sum(1 for e in seen if e["method"] == "GET"
                                     and ("/blobs/" in e["path"])),
                    "heads": sum(1 for e in seen if e["method"] == "HEAD"),
                    "seconds": secs,
                    "cpu_ms": cpu,
                })
        finally:
            if mf:
                mf.stop()

    print("pulls of %s (%s), %g ms added to every upstream request" % (
        a.image, a.digest[:19], a.delay_ms))
    print("%-9s %-5s %9s %9s %12s %14s %10s %6s %8s %12s" % (
        "subject", "pull", "requests", "registry", "bytes", "manifest GETs", "blob GETs", "HEADs",
        "seconds", "workerd CPU ms"))
    for r in rows:
        print("%-9s %-5s %9d %9d %12d %14d %10d %6d %8.2f %12s" % (
            r["subject"], r["pull"], r["requests"], r["registry_requests"], r["bytes"],
            r["manifest_gets"], r["blob_gets"], r["heads"], r["seconds"],
            "-" if r["cpu_ms"] is None else "%.0f" % r["cpu_ms"]))
    print("(requests, bytes and GETs: what the upstream hosts saw, registry, token service and "
          "blob storage together, the proxy's second GETs of what it keeps included; registry: "
          "the registry's own share; workerd CPU: Miniflare's runtime, which also runs its own "
          "entry Worker and its stores)")
    print()
    for r in rows:
        for k in ("requests", "registry_requests", "bytes", "manifest_gets", "blob_gets", "heads",
                  "seconds", "cpu_ms"):
            print("pulls_%s_%s%d_%s=%s" % (r["subject"].replace("-", "_"), r["pull"], r["n"], k,
                                           round(r[k], 3) if isinstance(r[k], float) else r[k]))

    def med(subject, pull, key):
        v = sorted(r[key] for r in rows if r["subject"] == subject and r["pull"] == pull)
        return v[len(v) // 2] if v else None

    goals = []
    warm = [r for r in rows if r["subject"] == "rust" and r["pull"] == "warm"]
    if warm:
        # with the default vars the 16 MiB layer is not kept: only the smaller blobs are
        goals.append(("a warm pull makes 0 manifest GETs",
                      all(r["manifest_gets"] == 0 for r in warm)))
    kept = [r for r in rows if r["subject"] == "rust-r2" and r["pull"] == "warm"]
    if kept:
        goals.append(("with a bucket, a warm pull makes 0 upstream blob GETs and 0 manifest GETs",
                      all(r["blob_gets"] == 0 and r["manifest_gets"] == 0 for r in kept)))
    if a.baseline and kept:
        ours, theirs = med("rust-r2", "warm", "seconds"), med("original", "warm", "seconds")
        goals.append(("with a bucket, a warm pull takes at most half the original's time "
                      "(%.2f s vs %.2f s)" % (ours, theirs), ours <= theirs / 2))
    if a.baseline and warm:
        ours = med("rust", "cold", "registry_requests")
        theirs = med("original", "cold", "registry_requests")
        goals.append(("a cold pull asks the registry no more than the original does "
                      "(%d vs %d requests)" % (ours, theirs), ours <= theirs))
    print()
    for text, ok in goals:
        print("goal %s: %s" % ("met" if ok else "MISSED", text))
    return 0 if all(ok for _, ok in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
