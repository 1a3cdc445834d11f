// The store's I/O (edge/cache.rs calls it): bodies pass between the upstream, the client and
// the Cache API or the R2 bucket here, in the runtime's streams, and never enter wasm. Which
// answers are kept, where, under which key, and when one is served is decided in Rust
// (src/cache.rs).

// In the Cache API an answer is kept in two entries: its bytes under `<key>/<nonce>`, a fresh
// nonce per put, and under `<key>` the nonce, written only once the bytes are complete and of
// their digest. A put that failed (cut short, another digest) may still leave its bytes in a
// store that takes a stream that ended early as complete, but never under a nonce that is
// named. R2 needs none of it: its put checks the sha256 and is whole or nothing.

const RECORD = { "cache-control": "public, max-age=31536000" };

/** The kept answer for `key`, or `undefined`; `range` is the client's `Range`, if any. */
export async function lookup(key, range) {
  try {
    const named = await caches.default.match(key);
    if (named === undefined) return undefined;
    const nonce = (await named.text()).trim();
    if (!/^[0-9a-f-]{36}$/.test(nonce)) return undefined;
    const init = range == null ? undefined : { headers: { range } };
    return await caches.default.match(new Request(`${key}/${nonce}`, init));
  } catch {
    return undefined;
  }
}

const LENGTH = "x-registry-proxy-length";

/**
 * The blob kept in the R2 `bucket` under `name`, shaped as a Cache API hit (`served` takes
 * it), or `undefined`. One byte range (src/cache.rs `byte_range`): from `offset`, `length`
 * bytes (NaN: to the end), or the last `suffix` bytes; all NaN: the whole blob.
 */
export async function fromBucket(bucket, name, offset, length, suffix) {
  const range = !Number.isNaN(suffix) ? { suffix }
    : Number.isNaN(offset) ? undefined
    : Number.isNaN(length) ? { offset } : { offset, length };
  let object;
  try {
    object = await bucket.get(name, range === undefined ? {} : { range });
  } catch {
    // R2 refuses a range past the end (10039): the client gets 416 with the size
    const head = await bucket.head(name).catch(() => null);
    if (head === null || range === undefined) return undefined;
    return new Response(null, {
      status: 416,
      headers: { "content-range": `bytes */${head.size}`, [LENGTH]: String(head.size) },
    });
  }
  if (object === null || object.body === undefined) return undefined;
  const digest = object.customMetadata?.digest;
  if (digest === undefined) {
    object.body.cancel().catch(() => {});
    return undefined;
  }
  const headers = new Headers({
    "docker-content-digest": digest,
    [LENGTH]: String(object.size),
  });
  const type = object.httpMetadata?.contentType;
  if (type !== undefined) headers.set("content-type", type);
  let status = 200;
  let bytes = object.size;
  if (range !== undefined && object.range !== undefined) {
    const first = object.range.offset ?? object.size - object.range.suffix;
    bytes = object.range.length ?? object.size - first;
    status = 206;
    headers.set("content-range", `bytes ${first}-${first + bytes - 1}/${object.size}`);
  }
  headers.set("content-length", String(bytes));
  headers.set("accept-ranges", "bytes");
  return new Response(object.body, { status, headers });
}

/**
 * The client's copy of a kept answer (`X-Proxy-Cache: <verdict>`: HIT or STALE), or
 * `undefined` if it has no usable length: it goes with
 * the length it was kept with, because a store may keep a body whose stream ended early as if
 * it were complete, and a short one must fail the client's transfer, not look whole.
 */
export function served(hit, verdict) {
  const headers = new Headers(hit.headers);
  headers.delete("cache-control");
  headers.delete(LENGTH);
  headers.set("x-proxy-cache", verdict);
  // a range the kept bytes do not have: the store's own answer (416)
  if (hit.status !== 200 && hit.status !== 206) {
    return new Response(hit.body, { status: hit.status, headers });
  }
  const total = Number(hit.headers.get(LENGTH));
  const range = hit.headers.get("content-range");
  // bytes FIRST-LAST/TOTAL
  const m = range === null ? null : /^bytes (\d+)-(\d+)\/(\d+)$/.exec(range);
  const length = m === null ? total : Number(m[2]) - Number(m[1]) + 1;
  const known = hit.headers.get(LENGTH) !== null && Number.isSafeInteger(length);
  if (!known || hit.body === null || (m !== null && Number(m[3]) !== total)) {
    hit.body?.cancel().catch(() => {});
    return undefined;
  }
  const body = new FixedLengthStream(length);
  hit.body.pipeTo(body.writable).catch(() => {});
  return new Response(body.readable, { status: hit.status, headers });
}

/** Keeps `body` (a string) under `key`, after the response (the tag records). */
export function record(ctx, key, body) {
  ctx.waitUntil(caches.default.put(key, new Response(body, { headers: RECORD })).catch(() => {}));
}

/** The record under `key` as a string, or `undefined`. */
export async function recorded(key) {
  try {
    const hit = await caches.default.match(key);
    return hit === undefined ? undefined : await hit.text();
  } catch {
    return undefined;
  }
}

// What keeping may hold at once in an isolate (which has 128 MB in all): answers read whole
// (each at most `whole` bytes) up to this many bytes together, and this many larger ones in
// lockstep, each with at most WINDOW bytes in flight per branch. An answer over the limits,
// or one the same isolate is keeping already, passes through unkept.
const WHOLE_TOGETHER = 48 << 20;
const LOCKSTEP_TOGETHER = 4;
const WINDOW = 1 << 20;
const CHUNK = 1 << 20;
const keeping = new Set();
let wholeBytes = 0;
let large = 0;

/** Why an answer of `length` bytes under `key` cannot be kept now, or `null`. */
function busy(key, length, whole) {
  if (keeping.has(key)) return "being kept by another request";
  if (length <= whole) {
    return wholeBytes + length > WHOLE_TOGETHER ? "too much being kept at once" : null;
  }
  return large >= LOCKSTEP_TOGETHER ? "too many large answers being kept at once" : null;
}

/**
 * The client's copy of `upstream` (a 200 with a `Content-Length` of `length` bytes, checked
 * by the caller), while the same bytes are kept under `key` if their sha256 is `digest`
 * (`sha256:<hex>`). A body cut short or of another digest is never kept, and a cut one
 * fails the client's transfer (it has a length). `done(reason)` is called once the outcome
 * is known: `null` when kept, else why not. `undefined` (and `done` with the reason) when it
 * cannot be kept now: the upstream's answer goes as it is.
 *
 * At most `whole` bytes: a native tee(), the store's branch read whole, hashed, then put; the
 * tee buffers for the slower branch at most the answer's size. Larger: the upstream is read
 * in lockstep with the client and the store (at most WINDOW bytes in flight to each), so a
 * slow client slows the upstream instead of filling memory.
 *
 * Into the R2 `bucket` when one is given (`key` is then the object's name), else the Cache API.
 */
export function keep(ctx, upstream, key, digest, length, whole, done, bucket) {
  const why = busy(key, length, whole);
  if (why !== null) {
    done(why);
    return undefined;
  }
  let client;
  try {
    client = new FixedLengthStream(length);
  } catch (e) {
    done(`cannot stream ${length} bytes: ${e}`);
    return undefined;
  }
  const small = length <= whole;
  keeping.add(key);
  if (small) wholeBytes += length;
  else large += 1;
  const stored = new Headers();
  for (const name of ["content-type", "docker-content-digest", "etag"]) {
    const value = upstream.headers.get(name);
    if (value !== null) stored.set(name, value);
  }
  stored.set("docker-content-digest", digest);
  stored.set("content-length", String(length));
  stored.set(LENGTH, String(length));
  stored.set("cache-control", "public, max-age=31536000, immutable");
  const sink = bucket == null ? cacheSink(key, stored) : bucketSink(bucket, key, digest, stored);
  let outcome;
  if (small) {
    const [toClient, toStore] = upstream.body.tee();
    toClient.pipeTo(client.writable).catch(() => {});
    outcome = keepWhole(toStore, sink, digest, length);
  } else {
    outcome = keepInLockstep(upstream.body, client.writable, sink, digest, length);
  }
  const named = outcome.then(async (reason) => {
    if (reason !== null) {
      await sink.discard().catch(() => {});
      return reason;
    }
    await sink.commit();
    return null;
  });
  const finished = named.finally(() => {
    keeping.delete(key);
    if (small) wholeBytes -= length;
    else large -= 1;
  });
  ctx.waitUntil(finished.then(done, (e) => done(String(e))));
  const headers = new Headers(upstream.headers);
  headers.set("x-proxy-cache", "MISS");
  return new Response(client.readable, { status: upstream.status, headers });
}

/**
 * The Cache API: the bytes under `<key>/<nonce>`, named under `<key>` once complete and of
 * their digest (see the top of this file).
 */
function cacheSink(key, headers) {
  const nonce = crypto.randomUUID();
  const bytes = `${key}/${nonce}`;
  return {
    put: (body) => caches.default.put(bytes, new Response(body, { headers })),
    commit: () => caches.default.put(key, new Response(nonce, { headers: RECORD })),
    discard: () => caches.default.delete(bytes),
    refused: "the Cache API refused it",
  };
}

/**
 * The R2 bucket: a put is whole or nothing, and R2 checks the sha256 itself, so the object
 * is named at once; a stream that ends early or errors fails the put.
 */
function bucketSink(bucket, name, digest, headers) {
  const options = {
    sha256: digest.slice("sha256:".length),
    customMetadata: { digest },
    httpMetadata: headers.has("content-type") ? { contentType: headers.get("content-type") } : {},
  };
  return {
    put: (body) => bucket.put(name, body, options),
    commit: async () => {},
    discard: async () => {},
    refused: "the R2 bucket refused it",
  };
}

async function keepWhole(body, sink, digest, length) {
  let bytes;
  try {
    bytes = await new Response(body).arrayBuffer();
  } catch {
    return "the upstream's body was cut short";
  }
  if (bytes.byteLength !== length) {
    return `the upstream sent ${bytes.byteLength} of ${length} bytes`;
  }
  const got = "sha256:" + hex(await crypto.subtle.digest("SHA-256", bytes));
  if (got !== digest) {
    return `the upstream's body is ${got}, not ${digest}`;
  }
  await sink.put(bytes);
  return null;
}

/**
 * A writer that lets up to `limit` bytes be in flight (written, not yet taken by the reader)
 * before `ready` waits: the reader's pace, without a round trip per chunk. `taken` settles
 * once the reader has the chunk.
 */
function windowed(writer, limit) {
  const pending = [];
  let inflight = 0;
  let failed = null;
  const wait = async () => {
    while (inflight > limit && pending.length > 0) await pending.shift();
    if (failed !== null) throw failed;
  };
  return {
    write(chunk) {
      if (failed !== null) return { taken: Promise.reject(failed), ready: Promise.reject(failed) };
      const n = chunk.byteLength;
      inflight += n;
      const taken = writer.write(chunk);
      pending.push(taken.then(() => { inflight -= n; }, (e) => { failed ??= e; }));
      return { taken, ready: wait() };
    },
    async close() {
      await Promise.all(pending.splice(0));
      if (failed !== null) throw failed;
      await writer.close();
    },
    abort(reason) {
      return writer.abort(reason).catch(() => {});
    },
  };
}

async function keepInLockstep(body, clientSide, sink, digest, length) {
  const store = new FixedLengthStream(length);
  const hasher = new crypto.DigestStream("SHA-256");
  const put = sink.put(store.readable);
  // large reads (workerd's readAtLeast of a BYOB reader): the loop's cost is per chunk; and
  // their buffers are used again once every branch has taken them, so that a large answer
  // leaves no garbage of its size behind for the collector
  const reader = body.getReader({ mode: "byob" });
  const spare = [];
  const buffer = () => {
    const b = spare.pop();
    return b !== undefined && b.byteLength === CHUNK ? b : new ArrayBuffer(CHUNK);
  };
  const client = windowed(clientSide.getWriter(), WINDOW);
  const kept = windowed(store.writable.getWriter(), WINDOW);
  const hash = windowed(hasher.getWriter(), WINDOW);
  // A client that goes away stops getting bytes and the store goes on (within waitUntil's
  // time); a store that fails stops being written and the client goes on.
  let clientGone = false;
  let storeFailed = null;
  const refused = (e) => { storeFailed ??= `${sink.refused}: ${e}`; };
  put.catch(refused);
  try {
    for (;;) {
      let chunk;
      try {
        chunk = await reader.readAtLeast(CHUNK / 4, new Uint8Array(buffer()));
      } catch {
        throw new Error("the upstream's body was cut short");
      }
      const value = chunk.value;
      if (value !== undefined && value.byteLength > 0) {
        const hashed = hash.write(value);
        const toClient = clientGone ? null : client.write(value);
        const toStore = storeFailed !== null ? null : kept.write(value);
        const all = [hashed, toClient, toStore].filter((w) => w !== null);
        Promise.all(all.map((w) => w.taken)).then(() => spare.push(value.buffer), () => {});
        await Promise.all([
          hashed.ready,
          toClient?.ready.catch(() => { clientGone = true; }),
          toStore?.ready.catch(refused),
        ]);
        if (clientGone && storeFailed !== null) throw new Error(storeFailed);
      }
      if (chunk.done) break;
    }
    if (!clientGone) await client.close().catch(() => {});
    if (storeFailed !== null) throw new Error(storeFailed);
    await hash.close();
    const got = "sha256:" + hex(await hasher.digest);
    if (got !== digest) throw new Error(`the upstream's body is ${got}, not ${digest}`);
    await kept.close();
    await put;
    return null;
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    // a client still reading fails too: its length is not reached
    client.abort(reason);
    kept.abort(reason);
    hash.abort(reason);
    reader.cancel(reason).catch(() => {});
    await put.catch(() => {});
    return reason;
  }
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}
