#!/usr/bin/python3
"""Load through the proxy as registry clients make it (run by bench/load.sh).

    load.py --proxy https://docker.example.test:8443 --cafile CA --pid WORKERD_PID
            [--clients 200] [--soak-seconds 180] [--soak-clients 20]

burst: --clients clients at once, each pulls like docker does: `/v2/`, a token from the
       proxy's /v2/auth, then `library/multi` (manifest, config, three layers) and
       `library/load` (index, manifest, config, one 200 MiB layer), every manifest and blob
       checked against its digest.
soak:  --soak-clients clients for --soak-seconds, each pulling one of those images, a
       multi-arch index (`library/hello`, both architectures), a tag list or a HEAD of a
       manifest, chosen at random; then --idle seconds with nothing.

Prints, per phase, pulls, requests, failures (with the first few reasons), bytes, requests/s
and MB/s, and workerd's resident memory before, at peak, after the load and after the idle
time, as a table and as key=value lines. Exit status 1 if any pull failed.
"""
import argparse
import hashlib
import http.client
import json
import random
import ssl
import sys
import threading
import time
import urllib.parse

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


class Failure(Exception):
    pass


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.pulls = 0
        self.requests = 0
        self.bytes = 0
        self.failures = []

    def add(self, requests, nbytes):
        with self.lock:
            self.requests += requests
            self.bytes += nbytes

    def fail(self, why):
        with self.lock:
            self.failures.append(why)

    def pulled(self):
        with self.lock:
            self.pulls += 1


class Client:
    """One registry client: its own connections, its own token."""

    def __init__(self, a, stats):
        u = urllib.parse.urlsplit(a.proxy)
        self.host, self.port = u.hostname, u.port or 443
        self.ctx = ssl.create_default_context(cafile=a.cafile)
        self.stats = stats
        self.token = None
        self.conn = None

    def connect(self):
        self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=120)

    def request(self, method, path, headers=None, sink=None):
        """(status, headers, body or None) of one request; `sink` takes the body in chunks."""
        for attempt in (0, 1):
            if self.conn is None:
                self.connect()
            try:
                self.conn.request(method, path, headers=headers or {})
                resp = self.conn.getresponse()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # a keep-alive connection the server closed: once more on a new one
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        n = 0
        body = b""
        while True:
            chunk = resp.read(1 << 20)
            if not chunk:
                break
            n += len(chunk)
            if sink:
                sink(chunk)
            else:
                body += chunk
        expected = resp.getheader("Content-Length")
        if expected is not None and int(expected) != n and method != "HEAD":
            raise Failure("%s %s: %d of %s bytes" % (method, path, n, expected))
        self.stats.add(1, n)
        return resp.status, resp, body

    def auth(self, repos):
        status, _, _ = self.request("GET", "/v2/")
        if status != 401:
            raise Failure("/v2/ answered %d" % status)
        q = urllib.parse.urlencode([("service", "cloudflare-docker-proxy")] +
                                   [("scope", "repository:%s:pull" % r) for r in repos])
        status, _, body = self.request("GET", "/v2/auth?" + q)
        if status != 200:
            raise Failure("/v2/auth answered %d: %s" % (status, body[:200]))
        self.token = json.loads(body)["token"]

    def get(self, method, path, accept=None, sink=None):
        h = {"Authorization": "Bearer " + self.token}
        if accept:
            h["Accept"] = accept
        return self.request(method, path, h, sink)

    def manifest(self, repo, ref):
        status, resp, body = self.get("GET", "/v2/%s/manifests/%s" % (repo, ref), ACCEPT)
        if status != 200:
            raise Failure("manifest %s:%s answered %d" % (repo, ref, status))
        digest = resp.getheader("Docker-Content-Digest")
        actual = "sha256:" + hashlib.sha256(body).hexdigest()
        if digest != actual or (ref.startswith("sha256:") and ref != actual):
            raise Failure("manifest %s:%s has digest %s, header says %s" % (repo, ref, actual, digest))
        return json.loads(body)

    def blob(self, repo, desc):
        h = hashlib.sha256()
        status, _, _ = self.get("GET", "/v2/%s/blobs/%s" % (repo, desc["digest"]), sink=h.update)
        if status != 200:
            raise Failure("blob %s answered %d" % (desc["digest"][:19], status))
        if "sha256:" + h.hexdigest() != desc["digest"]:
            raise Failure("blob %s has another digest" % desc["digest"][:19])

    def pull(self, repo, ref="latest", arch="amd64"):
        m = self.manifest(repo, ref)
        if "manifests" in m:  # an index: the architecture's manifest
            entry = next(e for e in m["manifests"] if e["platform"]["architecture"] == arch)
            m = self.manifest(repo, entry["digest"])
        for desc in [m["config"]] + m["layers"]:
            self.blob(repo, desc)
        self.stats.pulled()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Memory:
    """workerd's VmRSS, sampled every 100 ms while running."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = 0
        self.running = True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self):
        while self.running:
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.1)

    def stop(self):
        self.running = False
        self.thread.join()
        return self.peak


def burst(a, stats):
    def one():
        c = Client(a, stats)
        try:
            c.auth(["library/multi", "library/load"])
            c.pull("library/multi")
            c.pull("library/load")
        except Exception as e:  # every failure is counted, whatever it is
            stats.fail("%s: %s" % (type(e).__name__, e))
    threads = [threading.Thread(target=one) for _ in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def soak(a, stats):
    deadline = time.monotonic() + a.soak_seconds
    rng = random.Random(11)
    choices = ["multi", "multi", "hello-amd64", "hello-arm64", "tags", "head", "head", "load"]

    def one(seed):
        r = random.Random(seed)
        while time.monotonic() < deadline:
            c = Client(a, stats)
            what = r.choice(choices)
            try:
                if what == "multi":
                    c.auth(["library/multi"])
                    c.pull("library/multi")
                elif what.startswith("hello"):
                    c.auth(["library/hello"])
                    c.pull("library/hello", arch=what.split("-")[1])
                elif what == "load":
                    c.auth(["library/load"])
                    c.pull("library/load")
                elif what == "tags":
                    c.auth(["library/hello"])
                    status, _, body = c.get("GET", "/v2/library/hello/tags/list")
                    if status != 200 or "latest" not in json.loads(body)["tags"]:
                        raise Failure("tags/list answered %d" % status)
                    stats.pulled()
                else:
                    c.auth(["library/hello"])
                    status, _, _ = c.get("HEAD", "/v2/library/hello/manifests/latest", ACCEPT)
                    if status != 200:
                        raise Failure("HEAD answered %d" % status)
                    stats.pulled()
            except Exception as e:
                stats.fail("%s: %s" % (type(e).__name__, e))
    threads = [threading.Thread(target=one, args=(rng.random(),)) for _ in range(a.soak_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def phase(name, a, fn):
    stats = Stats()
    before = rss_kib(a.pid)
    mem = Memory(a.pid)
    t0 = time.monotonic()
    fn(a, stats)
    secs = time.monotonic() - t0
    peak = mem.stop()
    after = rss_kib(a.pid)
    return {"phase": name, "pulls": stats.pulls, "requests": stats.requests,
            "failures": len(stats.failures), "first_failures": stats.failures[:5],
            "bytes": stats.bytes, "seconds": secs, "rps": stats.requests / secs,
            "mbps": stats.bytes / secs / 1e6, "rss_before_mib": before / 1024,
            "rss_peak_mib": max(peak, after) / 1024, "rss_after_mib": after / 1024}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--proxy", required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--pid", type=int, required=True, help="workerd's pid (its memory)")
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--soak-seconds", type=float, default=180)
    ap.add_argument("--soak-clients", type=int, default=20)
    ap.add_argument("--idle", type=float, default=10)
    ap.add_argument("--soaks", type=int, default=1, help="soak phases one after another (a "
                    "leak grows with each; a runtime's high-water mark does not)")
    a = ap.parse_args()

    start_rss = rss_kib(a.pid) / 1024
    # one client's pull first: the Worker's instance and its wasm are made on the first
    # request, which is not the load; the level after it is what the soak should return to
    one = argparse.Namespace(**{**vars(a), "clients": 1})
    results = [phase("warm-up", one, burst)]
    warm_rss = rss_kib(a.pid) / 1024
    results.append(phase("burst", a, burst))
    if a.soak_seconds > 0:
        for n in range(a.soaks):
            results.append(phase("soak" if n == 0 else "soak%d" % (n + 1), a, soak))
    time.sleep(a.idle)
    idle_rss = rss_kib(a.pid) / 1024

    print("%-7s %6s %9s %9s %10s %8s %8s  %s" % (
        "phase", "pulls", "requests", "failures", "GB", "req/s", "MB/s",
        "workerd RSS MiB: before / peak / after"))
    for r in results:
        print("%-7s %6d %9d %9d %10.2f %8.0f %8.0f  %.1f / %.1f / %.1f" % (
            r["phase"], r["pulls"], r["requests"], r["failures"], r["bytes"] / 1e9, r["rps"],
            r["mbps"], r["rss_before_mib"], r["rss_peak_mib"], r["rss_after_mib"]))
        for f in r["first_failures"]:
            print("       failure: %s" % f)
    print("workerd RSS MiB: %.1f at start, %.1f after one pull, %.1f after the load and %.0f s idle"
          % (start_rss, warm_rss, idle_rss, a.idle))
    print()
    for r in results:
        for k, v in r.items():
            if k not in ("phase", "first_failures"):
                print("load_%s_%s=%s" % (r["phase"].replace("-", "_"), k, round(v, 3) if isinstance(v, float) else v))
    print("load_rss_start_mib=%.1f" % start_rss)
    print("load_rss_warm_mib=%.1f" % warm_rss)
    print("load_rss_idle_mib=%.1f" % idle_rss)
    return 1 if any(r["failures"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
