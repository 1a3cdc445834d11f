#!/usr/bin/python3
"""Miniflare's R2 (or Cache API) alone: the memory its simulator takes for one put, with no
proxy in front.

    r2_alone.py --repo DIR [--mib 1024] [--rate 2M] [--store r2|cache] [--port 8499]
                [--workdir /tmp/rp-r2-alone]

bench/slow.sh --bucket measures workerd while this Worker keeps a layer in Miniflare's R2, but
the R2 simulator runs in the same workerd process; this streams the same amount at the same
rate into a bucket from a four-line Worker (`put` with the sha256, as the proxy does), so the
two figures can be told apart. `--store cache` does the same with `caches.default.put` into
Miniflare's Cache API (in memory, as the tests and bench/slow.sh run it). The proxy keeps a
layer from its own second GET at full speed: use `--rate 0` (no limit) for its share. Prints
key=value lines.
"""
import argparse
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

WORKER = """
addEventListener("fetch", (e) => e.respondWith((async (req) => {
  const sha256 = new URL(req.url).searchParams.get("sha256");
  const body = new FixedLengthStream(Number(req.headers.get("content-length")));
  req.body.pipeTo(body.writable).catch(() => {});
  if (typeof BUCKET === "undefined") {
    await caches.default.put("https://alone.example.test/blob", new Response(body.readable, {
      headers: { "content-length": req.headers.get("content-length"), "cache-control": "max-age=3600" } }));
    return new Response(`stored ${req.headers.get("content-length")}`);
  }
  const o = await BUCKET.put("blob", body.readable, { sha256 });
  return new Response(o === null ? "refused" : `stored ${o.size}`);
})(e.request)));
"""

RUNNER = """
import { createRequire } from "node:module";
const require = createRequire(process.argv[2] + "/package.json");
const { Miniflare, Log, LogLevel } = require("miniflare");
const r2 = process.argv[6] === "r2" ? { r2Buckets: ["BUCKET"], r2Persist: process.argv[4] } : {};
const mf = new Miniflare({ scriptPath: process.argv[3], modules: false,
  compatibilityDate: "2026-04-01", ...r2, cachePersist: false,
  host: "127.0.0.1", port: Number(process.argv[5]), log: new Log(LogLevel.WARN) });
await mf.ready;
console.log("ready");
for (const s of ["SIGTERM", "SIGINT"]) process.on(s, async () => { await mf.dispose(); process.exit(0); });
"""

CHUNK = 1 << 20


def chunks(mib):
    rng = random.Random(1024)
    for _ in range(mib):
        yield rng.randbytes(CHUNK)


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
    ap.add_argument("--repo", required=True)
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--rate", default="2M")
    ap.add_argument("--port", type=int, default=8499)
    ap.add_argument("--workdir", default="/tmp/rp-r2-alone")
    ap.add_argument("--store", choices=["r2", "cache"], default="r2")
    a = ap.parse_args()
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    script = os.path.join(a.workdir, "worker.js")
    runner = os.path.join(a.workdir, "runner.mjs")
    open(script, "w").write(WORKER)
    open(runner, "w").write(RUNNER)
    digest = hashlib.sha256()
    for c in chunks(a.mib):
        digest.update(c)
    log = open(os.path.join(a.workdir, "miniflare.log"), "w+")
    mf = subprocess.Popen(["node", runner, a.repo, script, os.path.join(a.workdir, "r2"), str(a.port),
                           a.store],
                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(300):
            log.seek(0)
            if "ready" in log.read():
                break
            time.sleep(0.05)
        out = subprocess.run(["pgrep", "-P", str(mf.pid), "workerd"], capture_output=True, text=True)
        if not out.stdout.split():
            sys.exit("r2_alone: no workerd under miniflare")
        workerd = int(out.stdout.split()[0])
        time.sleep(0.5)
        before = rss_kib(workerd)
        peak = [before]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], rss_kib(workerd))
                time.sleep(0.1)

        threading.Thread(target=sample, daemon=True).start()
        size = a.mib * CHUNK
        url = "http://127.0.0.1:%d/?sha256=%s" % (a.port, digest.hexdigest())
        t0 = time.monotonic()
        limit = [] if a.rate in ("0", "") else ["--limit-rate", a.rate]
        curl = subprocess.Popen(["curl", "-sS", "-X", "PUT", "-T", "-", "-H", "content-length: %d" % size]
                                + limit + [url], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        for c in chunks(a.mib):
            curl.stdin.write(c)
        curl.stdin.close()
        answer = curl.stdout.read().decode()
        curl.wait()
        secs = time.monotonic() - t0
        done.set()
        time.sleep(1)
        print("r2_alone_store=%s" % a.store)
        print("r2_alone_bytes=%d" % size)
        print("r2_alone_answer=%s" % answer)
        print("r2_alone_seconds=%.1f" % secs)
        print("r2_alone_rss_before_mib=%.1f" % (before / 1024))
        print("r2_alone_rss_peak_mib=%.1f" % (peak[0] / 1024))
        print("r2_alone_rss_growth_mib=%.1f" % ((peak[0] - before) / 1024))
        print("r2_alone_rss_after_mib=%.1f" % (rss_kib(workerd) / 1024))
        return 0 if answer == "stored %d" % size else 1
    finally:
        try:
            os.killpg(mf.pid, signal.SIGTERM)
            mf.wait(timeout=10)
        except Exception:
            os.killpg(mf.pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())
