// The release build under Miniflare (the local runtime wrangler ships, with a real Cache API):
// for the tests of what bare workerd has no storage for.
//
//   node tests/harness/miniflare.mjs --port 8444 --build DIR --bindings JSON \
//        [--cert FILE --key FILE] [--cache-dir DIR] [--r2 NAME,... [--r2-dir DIR]]
//        [--ratelimits JSON]   # {"NAME": {"simple": {"limit": 5, "period": 60}}}
//        [--stats FILE]        # STATS: an Analytics Engine dataset whose data points are
//                              # appended to FILE, one JSON line each (Miniflare's own drops them)
//   node tests/harness/miniflare.mjs --port 8445 --script FILE ...   # a service-worker script
//
// HTTPS when --cert and --key are given (the harness's test CA), else plain http. Prints
// "ready <url>" once it serves; SIGTERM or SIGINT disposes of it (else its workerd stays).
// The Worker's console goes to stdout. --r2 binds R2 buckets (Miniflare's real R2: sha256
// checked on put, ranges), in memory unless --r2-dir keeps them for a second instance.
import { createRequire } from "node:module";
import path from "node:path";
import { parseArgs } from "node:util";
import { appendFileSync } from "node:fs";

const require = createRequire(path.join(process.cwd(), "package.json"));
const { Miniflare, Log, LogLevel } = require("miniflare");

const { values: a } = parseArgs({
  options: {
    port: { type: "string" },
    build: { type: "string", default: "build" },
    script: { type: "string" },
    bindings: { type: "string", default: "{}" },
    cert: { type: "string" },
    key: { type: "string" },
    "cache-dir": { type: "string" },
    r2: { type: "string" },
    "r2-dir": { type: "string" },
    ratelimits: { type: "string" },
    stats: { type: "string" },
  },
});
const build = path.resolve(a.build);
const code = a.script
  ? { scriptPath: path.resolve(a.script), modules: false }
  : {
      modulesRoot: build,
      modules: [
        { type: "ESModule", path: path.join(build, "index.js") },
        { type: "CompiledWasm", path: path.join(build, "index_bg.wasm") },
      ],
    };
const worker = {
  ...code,
  compatibilityDate: "2026-04-01",
  bindings: JSON.parse(a.bindings),
  ...(a.ratelimits ? { ratelimits: JSON.parse(a.ratelimits) } : {}),
  ...(a.r2 ? { r2Buckets: a.r2.split(",") } : {}),
};
// STATS as a wrapped binding: its writeDataPoint hands each point to Node, which appends it to
// the file (the returned promise is the Worker's to wait for: stats.js does)
const recorder = {
  name: "stats-recorder",
  modules: true,
  script: `export default function (env) {
    return { writeDataPoint(point) {
      return env.SINK.fetch("http://sink/", { method: "POST", body: JSON.stringify(point) });
    } };
  }`,
  serviceBindings: {
    async SINK(request) {
      appendFileSync(a.stats, (await request.text()) + "\n");
      return new Response("ok");
    },
  },
};
const workers = a.stats
  ? { workers: [{ name: "main", ...worker, wrappedBindings: { STATS: { scriptName: "stats-recorder" } } }, recorder] }
  : worker;
const mf = new Miniflare({
  ...workers,
  host: "127.0.0.1",
  port: Number(a.port),
  ...(a.cert && a.key ? { httpsCertPath: a.cert, httpsKeyPath: a.key } : {}),
  // in memory unless a directory is given: each instance starts with an empty cache
  cachePersist: a["cache-dir"] ?? false,
  ...(a.r2 ? { r2Persist: a["r2-dir"] ?? false } : {}),
  log: new Log(LogLevel.WARN),
});
const url = await mf.ready;
console.log(`ready ${url.href}`);

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    await mf.dispose().catch(() => {});
    process.exit(0);
  });
}
