#!/usr/bin/env node
// Checks a deployed registry proxy end to end, the way a registry client would, and says what
// to do about each failure.
//
//   npm run doctor -- https://docker.example.com [--image library/busybox:latest]
//                     [--user NAME --key KEY] [--json] [--timeout MS]
//
// One line per check: ✔ or ✘, the time it took, and for each ✘ a hint. Exit status 0 only when
// every check passed. Node only (what wrangler needs already); no request leaves for anything
// but the given proxy and the token realm it names.

import dns from "node:dns/promises";
import http from "node:http";
import https from "node:https";
import tls from "node:tls";
import { createHash } from "node:crypto";

const MANIFESTS = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");
const INDEXES = ["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"];

function usage(why) {
  if (why) process.stderr.write(`doctor: ${why}\n`);
  process.stderr.write("usage: npm run doctor -- https://docker.example.com [--image NAME:TAG] [--user NAME --key KEY] [--json] [--timeout MS]\n");
  process.exit(2);
}

function parseArgs(argv) {
  const a = { image: null, user: null, key: null, json: false, timeout: 15000, url: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => argv[++i] ?? usage(`${arg} wants a value`);
    if (arg === "--image") a.image = value();
    else if (arg === "--user") a.user = value();
    else if (arg === "--key") a.key = value();
    else if (arg === "--json") a.json = true;
    else if (arg === "--timeout") a.timeout = Number(value());
    else if (arg === "-h" || arg === "--help") usage();
    else if (arg.startsWith("--")) usage(`unknown option ${arg}`);
    else if (a.url === null) a.url = arg;
    else usage(`one proxy at a time (${arg})`);
  }
  if (a.url === null) usage("which proxy? give its URL");
  if (!/^https?:\/\//.test(a.url)) a.url = `https://${a.url}`;
  let url;
  try {
    url = new URL(a.url);
  } catch {
    usage(`${a.url} is not a URL`);
  }
  a.origin = url.origin;
  a.url = url;
  if ((a.user === null) !== (a.key === null)) usage("--user and --key go together");
  return a;
}

class Fail extends Error {
  constructor(message, hint) {
    super(message);
    this.hint = hint;
  }
}

/** One HTTP request, no redirect followed: status, headers (lower-case), body. */
function request(url, { method = "GET", headers = {}, timeout }) {
  const u = new URL(url);
  const lib = u.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(u, { method, headers: { "user-agent": "registry-proxy-doctor", ...headers }, timeout }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), complete: res.complete }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeout} ms`)));
    req.on("error", reject);
    req.end();
  });
}

function sha256(buf) {
  return "sha256:" + createHash("sha256").update(buf).digest("hex");
}

/** A Bearer challenge's parameters (RFC 7235 auth-params), or null. */
function bearer(www) {
  if (!www || !/^\s*bearer\s/i.test(www)) return null;
  const params = {};
  for (const m of www.replace(/^\s*bearer\s+/i, "").matchAll(/([a-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/gi)) {
    params[m[1].toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3];
  }
  return params;
}

/** The registry's error code and message of an answer, if it is one. */
function registryError(r) {
  try {
    const e = JSON.parse(r.body.toString("utf8")).errors?.[0];
    return e ? `${e.code}: ${e.message}` : null;
  } catch {
    return null;
  }
}

function answered(r) {
  const e = registryError(r);
  return `${r.status}${e ? ` (${e})` : ""}`;
}

/** A registry client: follows the proxy's challenge to its token endpoint, once per scope. */
class Client {
  constructor(a) {
    this.a = a;
    this.tokens = new Map();
  }

  basic() {
    if (this.a.user === null) return {};
    return { authorization: "Basic " + Buffer.from(`${this.a.user}:${this.a.key}`).toString("base64") };
  }

  async token(challenge) {
    const realm = new URL(challenge.realm);
    if (challenge.service) realm.searchParams.set("service", challenge.service);
    if (challenge.scope) realm.searchParams.set("scope", challenge.scope);
    // a proxy user's key goes to the proxy's own token endpoint only
    const headers = realm.origin === this.a.origin ? this.basic() : {};
    const r = await request(realm, { headers, timeout: this.a.timeout });
    let token = null;
    try {
      const body = JSON.parse(r.body.toString("utf8"));
      token = body.token ?? body.access_token ?? null;
    } catch {}
    return { r, token };
  }

  /** `path` on the proxy, with a token if the proxy asks for one. */
  async get(path, { method = "GET", headers = {} } = {}) {
    const url = new URL(path, this.a.origin);
    const key = url.pathname.split("/").slice(0, -2).join("/") + url.search;
    const send = (token) => request(url, {
      method,
      headers: { ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
      timeout: this.a.timeout,
    });
    let r = await send(this.tokens.get(key));
    const challenge = r.status === 401 ? bearer(r.headers["www-authenticate"]) : null;
    if (challenge?.realm) {
      const { r: tr, token } = await this.token(challenge);
      if (!token) {
        const hint = tr.status === 401
          ? this.a.user === null
            ? "the proxy has proxy users (PROXY_USERS): pass --user NAME --key KEY"
            : "the proxy refused this user's key: make a new one with scripts/proxy-user.mjs"
          : "the token endpoint failed: see `npx wrangler tail` for its line";
        throw new Fail(`the token for ${challenge.scope ?? "the registry"} was refused: ${answered(tr)}`, hint);
      }
      this.tokens.set(key, token);
      r = await send(token);
    }
    return r;
  }
}

const results = [];
let failed = 0;

async function check(name, fn) {
  const t0 = performance.now();
  let entry;
  try {
    const detail = await fn();
    entry = { name, ok: true, detail: detail ?? "" };
  } catch (e) {
    failed++;
    entry = { name, ok: false, detail: e.message, hint: e.hint ?? "" };
  }
  entry.ms = Math.round(performance.now() - t0);
  results.push(entry);
  if (!args.json) {
    const mark = entry.ok ? "✔" : "✘";
    process.stdout.write(`${mark} ${name} (${entry.ms} ms)${entry.detail ? `: ${entry.detail}` : ""}\n`);
    if (!entry.ok && entry.hint) process.stdout.write(`    → ${entry.hint}\n`);
  }
  return entry.ok;
}

function skipped(name, because) {
  failed++;
  results.push({ name, ok: false, detail: `not checked: ${because}`, hint: "", ms: 0 });
  if (!args.json) process.stdout.write(`✘ ${name} (0 ms): not checked: ${because}\n`);
}

const args = parseArgs(process.argv.slice(2));
const host = args.url.hostname;
const client = new Client(args);

async function main() {
  const reachable = await check(`${host} resolves`, async () => {
    try {
      const addrs = await dns.lookup(host, { all: true });
      return addrs.map((x) => x.address).join(", ");
    } catch (e) {
      throw new Fail(`${e.code ?? e.message}`, "add the host name as a Custom Domain of the Worker (Settings → Domains & Routes), or check its DNS record");
    }
  });
  if (!reachable) return;
  if (args.url.protocol === "https:") {
    const secure = await check(`TLS is valid for ${host}`, () => tlsCheck());
    if (!secure) return;
  }
  await check("/ answers as LANDING says", () => landingCheck());
  const v2 = await check("/v2/ sends clients to this host's /v2/auth", () => versionCheck());
  if (!v2) return;
  const image = args.image ?? "library/busybox:latest";
  const [name, tag] = splitImage(image);
  const pulled = await pullChecks(name, tag, "");
  if (pulled) await cacheChecks(name, tag, pulled);
  if (landingPage?.includes("Pull by registry prefix")) await pathRoutingChecks();
  if (args.user !== null) await usersChecks(name);
}

function splitImage(image) {
  const at = image.lastIndexOf(":");
  return at > image.lastIndexOf("/") ? [image.slice(0, at), image.slice(at + 1)] : [image, "latest"];
}

function tlsCheck() {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port: Number(args.url.port || 443), servername: host, timeout: args.timeout }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(`certificate of ${cert.subject?.CN ?? host}, valid until ${cert.valid_to}`);
    });
    socket.on("timeout", () => socket.destroy(new Error("no TLS handshake in time")));
    socket.on("error", (e) => reject(new Fail(`${e.code ?? ""} ${e.message}`.trim(),
      "the certificate is not valid for this name: attach it as a Custom Domain of the Worker (Cloudflare issues its certificate), or wait until the certificate is active")));
  });
}

let landingPage = null;

async function landingCheck() {
  const r = await request(new URL("/", args.origin), { headers: { accept: "text/html" }, timeout: args.timeout });
  const type = r.headers["content-type"] ?? "";
  if (r.status === 200 && type.startsWith("text/html")) {
    landingPage = r.body.toString("utf8");
    return "the recipes page (LANDING = \"recipes\")";
  }
  if (r.status === 302 || r.status === 301) return `a redirect to ${r.headers.location} (LANDING = a URL)`;
  if (r.status === 404) {
    const e = registryError(r) ?? "";
    if (/host|route/i.test(e)) {
      throw new Fail(`404: ${e}`, "no route for this host name: check CUSTOM_DOMAIN (docker.<domain>, ghcr.<domain>, …) or ROUTES, and that the name is attached to this Worker");
    }
    return "404, as any unknown path (LANDING = \"off\")";
  }
  throw new Fail(`${answered(r)} with ${type || "no Content-Type"}`, "the proxy's page should answer 200, 302 or 404: see `npx wrangler tail` for the request's line");
}

async function versionCheck() {
  const r = await request(new URL("/v2/", args.origin), { timeout: args.timeout });
  if (r.status === 404) {
    throw new Fail(answered(r), "no route for this host name: check CUSTOM_DOMAIN (docker.<domain>, ghcr.<domain>, …) or ROUTES, and that the name is attached to this Worker");
  }
  if (r.status >= 500) {
    throw new Fail(answered(r), "the upstream registry cannot be reached or failed: see `npx wrangler tail`; UPSTREAM_TIMEOUT_MS, FALLBACKS and CACHE_STALE_SECONDS help with upstreams that fail");
  }
  if (r.status !== 401) throw new Fail(`${answered(r)}, not 401`, "a registry proxy asks clients to authenticate at /v2/: is this the proxy?");
  const challenge = bearer(r.headers["www-authenticate"]);
  if (!challenge?.realm) throw new Fail(`401 without a Bearer realm (${r.headers["www-authenticate"] ?? "no WWW-Authenticate"})`, "clients would not know where to get a token: is this the proxy?");
  const realm = new URL(challenge.realm);
  if (realm.origin !== args.origin || realm.pathname !== "/v2/auth") {
    throw new Fail(`the realm is ${challenge.realm}`, `clients must get their tokens from ${args.origin}/v2/auth: reach the proxy at the host and port clients use (no port forward or other name in front of it), and set MODE only for local use`);
  }
  return `realm ${challenge.realm}`;
}

/** The tag's HEAD and GET (digest checked), a blob with a Range and whole (digest checked). */
async function pullChecks(name, tag, prefix) {
  const base = `/v2/${prefix}${name}`;
  let digest = null;
  const head = await check(`HEAD ${prefix}${name}:${tag}`, async () => {
    const r = await client.get(`${base}/manifests/${tag}`, { method: "HEAD", headers: { accept: MANIFESTS } });
    if (r.status !== 200) throw new Fail(answered(r), pullHint(r));
    digest = r.headers["docker-content-digest"];
    if (!digest) throw new Fail("200 without Docker-Content-Digest", "clients need the digest: see `npx wrangler tail`");
    return digest;
  });
  if (!head) return null;
  let manifest = null;
  const got = await check(`GET ${prefix}${name}:${tag}, digest checked`, async () => {
    const r = await client.get(`${base}/manifests/${tag}`, { headers: { accept: MANIFESTS } });
    if (r.status !== 200) throw new Fail(answered(r), pullHint(r));
    const body = sha256(r.body);
    if (body !== digest || r.headers["docker-content-digest"] !== digest) {
      throw new Fail(`the body is ${body}, the HEAD said ${digest}`, "the manifest changed or was cut: pull again; if it stays, see `npx wrangler tail`");
    }
    manifest = { body: r.body, type: r.headers["content-type"] ?? "" };
    return `${r.body.length} bytes`;
  });
  if (!got) return null;
  let blob = null;
  const picked = await check("a blob of the image", async () => {
    blob = await pickBlob(base, manifest);
    return `${blob.digest} (${blob.size} bytes)`;
  });
  if (!picked) return null;
  await check("the blob with a Range", async () => {
    const r = await client.get(`${base}/blobs/${blob.digest}`, { headers: { range: "bytes=0-99" } });
    const want = Math.min(100, blob.size);
    if (r.status === 206 && r.body.length === want) return `206, ${want} bytes`;
    if (r.status === 200 && r.body.length === blob.size) return "200 whole (the range was not served: allowed)";
    throw new Fail(`${answered(r)} with ${r.body.length} bytes`, pullHint(r));
  });
  await check("the whole blob, digest checked", async () => {
    const r = await client.get(`${base}/blobs/${blob.digest}`);
    if (r.status !== 200) throw new Fail(answered(r), pullHint(r));
    if (sha256(r.body) !== blob.digest) throw new Fail(`the body is ${sha256(r.body)}`, "a blob that is not its digest: see `npx wrangler tail` for the request and store lines");
    return `${r.body.length} bytes`;
  });
  return { digest, blob, base };
}

function pullHint(r) {
  if (r.status === 401 || r.status === 403) return "the registry refused the token: a private image needs --user and --key (proxy users) or the upstream's login; pass --image for a public one";
  if (r.status === 404) return "the registry has no such image or tag: pass --image NAME:TAG of a public image";
  if (r.status === 429) return "the upstream's rate limit (Docker Hub counts per address): see \"When Docker Hub says 429\" in the README";
  if (r.status >= 500) return "the upstream cannot be reached or failed: see `npx wrangler tail`";
  return "see `npx wrangler tail` for the request's line";
}

/** The config blob of the manifest (of the first platform's, for an index). */
async function pickBlob(base, manifest) {
  let m = JSON.parse(manifest.body.toString("utf8"));
  if (INDEXES.includes(m.mediaType) || INDEXES.some((t) => manifest.type.startsWith(t)) || Array.isArray(m.manifests)) {
    const first = m.manifests?.[0];
    if (!first) throw new Fail("an index without manifests", "pass --image of another image");
    const r = await client.get(`${base}/manifests/${first.digest}`, { headers: { accept: MANIFESTS } });
    if (r.status !== 200 || sha256(r.body) !== first.digest) throw new Fail(`its first manifest: ${answered(r)}`, pullHint(r));
    m = JSON.parse(r.body.toString("utf8"));
  }
  const blob = m.config ?? m.layers?.[0];
  if (!blob?.digest) throw new Fail("a manifest without blobs", "pass --image of another image");
  return blob;
}

/** The same again: answered by the cache (the keep ends after the answer: a few tries). */
async function cacheChecks(name, tag, pulled) {
  const why = (verdict) => {
    if (verdict === undefined) return "no X-Proxy-Cache header: the cache is off (CACHE = \"off\")";
    if (host.endsWith(".workers.dev")) return "workers.dev keeps nothing in the Cache API: use a Custom Domain";
    return `X-Proxy-Cache: ${verdict}: the proxy did not keep it; its store line in \`npx wrangler tail\` says why (a layer over CACHE_VERIFY_MAX_BYTES without an R2 bucket, an answer without a length, …)`;
  };
  const again = async (path, headers) => {
    let verdict;
    for (let i = 0; i < 10; i++) {
      const r = await client.get(path, { headers });
      verdict = r.headers["x-proxy-cache"];
      if (verdict === "HIT" || verdict === undefined) return verdict;
      await new Promise((done) => setTimeout(done, 300));
    }
    return verdict;
  };
  await check(`GET ${name}:${tag} again, from the cache`, async () => {
    const verdict = await again(`${pulled.base}/manifests/${tag}`, { accept: MANIFESTS });
    if (verdict !== "HIT") throw new Fail(`X-Proxy-Cache: ${verdict ?? "none"}`, why(verdict));
    return "HIT";
  });
  await check("the blob again, from the cache", async () => {
    const verdict = await again(`${pulled.base}/blobs/${pulled.blob.digest}`, {});
    if (verdict !== "HIT") throw new Fail(`X-Proxy-Cache: ${verdict ?? "none"}`, why(verdict));
    return "HIT";
  });
}

/** Every registry of a path-routing host's page, by prefix and with containerd's `?ns=`. */
async function pathRoutingChecks() {
  const text = landingPage.replace(/&#x2F;|&#47;/g, "/").replace(/&amp;/g, "&");
  const names = new Set();
  for (const m of text.matchAll(/docker pull [^\s/<]+\/([^\s/<]+)\/[^\s<]+/g)) {
    if (m[1].includes(".") || m[1].includes(":")) names.add(m[1]);
  }
  if (names.size === 0) {
    skipped("path routing", "the page names no registry");
    return;
  }
  for (const registry of names) {
    await check(`${registry} by prefix`, async () => {
      const r = await client.get(`/v2/${registry}/library/doctor-probe/manifests/latest`, { method: "HEAD", headers: { accept: MANIFESTS } });
      return routed(r, registry);
    });
    await check(`${registry} with ?ns=`, async () => {
      const ns = encodeURIComponent(registry);
      const r = await client.get(`/v2/library/doctor-probe/manifests/latest?ns=${ns}`, { method: "HEAD", headers: { accept: MANIFESTS } });
      return routed(r, registry);
    });
  }
}

/** A probe's answer once the token flow is done: the registry's own (its 200 or 404). */
function routed(r, registry) {
  if (r.status === 200 || r.status === 404) return `${registry} answered ${r.status}`;
  throw new Fail(answered(r), `${registry} could not be reached through this host: see \`npx wrangler tail\`, and ROUTES / PATH_ROUTING`);
}

/** With a proxy user: an anonymous client is refused (the key just worked above). */
async function usersChecks(name) {
  await check("an anonymous token request is refused", async () => {
    const r = await request(new URL(`/v2/auth?scope=repository:${name}:pull`, args.origin), { timeout: args.timeout });
    if (r.status === 401) return "401";
    throw new Fail(`${answered(r)}, not 401`, "strangers get tokens: is PROXY_USERS set on this deployment?");
  });
}

main()
  .catch((e) => {
    failed++;
    results.push({ name: "doctor", ok: false, detail: e.message, hint: "", ms: 0 });
    if (!args.json) process.stdout.write(`✘ doctor: ${e.message}\n`);
  })
  .finally(() => {
    if (args.json) process.stdout.write(JSON.stringify({ proxy: args.origin, ok: failed === 0, checks: results }, null, 2) + "\n");
    else process.stdout.write(failed === 0 ? `all ${results.length} checks passed\n` : `${failed} of ${results.length} checks failed\n`);
    process.exit(failed === 0 ? 0 : 1);
  });
