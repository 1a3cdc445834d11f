#!/usr/bin/python3
"""A slow client reading a large layer while the proxy keeps it (run by bench/slow.sh).

    slow.py --repo DIR --build DIR --cert F --key F --url-path /v2/library/slow/blobs/sha256:…
            --digest sha256:… --size BYTES --rate 2M [--port 8490] [--bucket]

Starts this Worker under Miniflare (a real Cache API), GETs the blob through it with curl at
--rate bytes/s, sampling the resident memory of Miniflare's workerd every 100 ms; checks the
bytes' digest; then GETs it again at full speed and reports where that answer came from
(`X-Proxy-Cache`) and the store's log line. --bucket binds an R2 bucket (Miniflare's, kept on
disk in --workdir) that takes every blob. Prints key=value lines.
"""
import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time


def rss_kib(pid):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--repo", "--build", "--cert", "--key", "--url-path", "--digest"):
        ap.add_argument(name, required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--rate", default="2M", help="curl --limit-rate")
    ap.add_argument("--port", type=int, default=8490)
    ap.add_argument("--workdir", default="/tmp")
    ap.add_argument("--cache", default="on", help="the CACHE var (off: the same client, nothing kept)")
    ap.add_argument("--bucket", action="store_true", help="keep the blob in an R2 bucket")
    ap.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                    help="a var for the Worker, e.g. CACHE_VERIFY_MAX_BYTES=512000000")
    a = ap.parse_args()

    host = "docker.example.test"
    routes = {host: {"upstream": "http://127.0.0.1:5000", "docker_hub": True}}
    log = open(os.path.join(a.workdir, "slow-miniflare.log"), "w+")
    bindings = {"ROUTES": routes, "LOG_LEVEL": "info", "CACHE": a.cache}
    for v in a.var:
        name, _, value = v.partition("=")
        bindings[name] = value
    r2 = []
    if a.bucket:
        bindings["CACHE_BUCKET_MIN_BYTES"] = "0"
        r2dir = os.path.join(a.workdir, "r2")
        subprocess.run(["rm", "-rf", r2dir], check=True)
        r2 = ["--r2", "CACHE_BUCKET", "--r2-dir", r2dir]
    mf = subprocess.Popen(
        ["node", os.path.join(a.repo, "tests/harness/miniflare.mjs"), "--port", str(a.port),
         "--build", a.build, "--cert", a.cert, "--key", a.key,
         "--bindings", json.dumps(bindings)] + r2,
        cwd=a.repo, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(300):
            log.seek(0)
            if "ready " in log.read():
                break
            time.sleep(0.05)
        workerd = None
        for _ in range(50):
            out = subprocess.run(["pgrep", "-P", str(mf.pid), "workerd"], capture_output=True,
                                 text=True).stdout.split()
            if out:
                workerd = int(out[0])
                break
            time.sleep(0.1)
        if workerd is None:
            sys.exit("slow: no workerd under miniflare")
        url = "https://%s:%d%s" % (host, a.port, a.url_path)
        # warm the isolate and get an anonymous token for the repository, then measure
        repo = a.url_path.split("/blobs/")[0][len("/v2/"):]
        def bearer():
            answer = subprocess.run(
                ["curl", "-s", "https://%s:%d/v2/auth?scope=repository:%s:pull" % (host, a.port, repo)],
                capture_output=True, text=True, check=True).stdout
            return "Authorization: Bearer " + json.loads(answer)["token"]

        auth = bearer()
        time.sleep(0.5)
        before = rss_kib(workerd)
        peak = [before]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], rss_kib(workerd))
                time.sleep(0.1)

        threading.Thread(target=sample, daemon=True).start()
        t0 = time.monotonic()
        body = subprocess.run(["curl", "-sS", "-H", auth, "--limit-rate", a.rate, "--max-time", "3600",
                               "-D", os.path.join(a.workdir, "slow-headers"), url],
                              capture_output=True, check=True).stdout
        secs = time.monotonic() - t0
        done.set()
        got = "sha256:" + hashlib.sha256(body).hexdigest()
        headers = open(os.path.join(a.workdir, "slow-headers")).read().lower()
        first = "miss" if "x-proxy-cache: miss" in headers else "not kept"
        # the keep ends after the response (waitUntil): its store line, up to 60 s
        def store_lines():
            log.seek(0)
            return [json.loads(l[l.index("{"):]) for l in log.read().splitlines()
                    if '"event":"store"' in l]
        deadline = time.monotonic() + 60
        while first == "miss" and not store_lines() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)
        after = rss_kib(workerd)
        # a token of its own: the first one may have expired during a long slow read
        again = subprocess.run(["curl", "-sS", "-H", bearer(), "-o", "/dev/null", "-w",
                                "%{http_code} %header{x-proxy-cache} %{size_download}", url],
                               capture_output=True, text=True).stdout.split()
        stored = store_lines()
        print("slow_bytes=%d" % len(body))
        print("slow_digest_ok=%s" % (got == a.digest and len(body) == a.size))
        print("slow_seconds=%.1f" % secs)
        print("slow_client_mbps=%.2f" % (len(body) / secs / 1e6))
        print("slow_first_answer=%s" % first)
        print("slow_rss_before_mib=%.1f" % (before / 1024))
        print("slow_rss_peak_mib=%.1f" % (peak[0] / 1024))
        print("slow_rss_growth_mib=%.1f" % ((peak[0] - before) / 1024))
        print("slow_rss_after_mib=%.1f" % (after / 1024))
        print("slow_stored=%s" % (stored[-1]["stored"] if stored else None))
        print("slow_store_place=%s" % (stored[-1].get("place") if stored else None))
        print("slow_store_reason=%s" % (stored[-1].get("reason") if stored else None))
        print("slow_second_answer=%s" % " ".join(again))
        print("slow_cache=%s" % a.cache)
        print("slow_vars=%s" % " ".join(a.var))
        ok = got == a.digest and (peak[0] - before) < 32 * 1024
        return 0 if ok else 1
    finally:
        try:
            os.killpg(mf.pid, signal.SIGTERM)
            mf.wait(timeout=10)
        except Exception:
            os.killpg(mf.pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())
