// The store's I/O (edge/cache.rs calls it): bodies pass between the upstream, the client and
// the Cache API or the R2 bucket here, in the runtime's streams, and never enter wasm. Which
// answers are kept, where, under which key, and when one is served is decided in Rust
// (src/cache.rs).

// In the Cache API an answer read whole (a manifest, a small blob) is put under `<key>` once its
// bytes are complete and of their digest: the put is given those bytes, never a stream. A large
// one is streamed into the store, and a store may keep a stream that ended early or failed as if
// it were complete: so it is kept in two entries, its bytes under `<key>/<nonce>` (a fresh nonce
// per put) and under `<key>` the nonce, written only once the bytes were complete and of their
// digest. A failed put's bytes may remain, but never under a nonce that is named. R2 needs none
// of it: its put checks the sha256 and is whole or nothing.

const RECORD = { "cache-control": "public, max-age=31536000" };
// the length an answer was kept with (src/cache.rs KEPT_LENGTH)
const LENGTH = "x-registry-proxy-length";

/** The kept answer for `key`, or `undefined`; `range` is the client's `Range`, if any. */
export async function lookup(key, range) {
  try {
    const named = await caches.default.match(key);
    if (named === undefined) return undefined;
    if (named.headers.has(LENGTH)) {
      // kept whole under its own name
      if (range == null) return named;
      named.body?.cancel().catch(() => {});
      return await caches.default.match(new Request(key, { headers: { range } }));
    }
    const nonce = (await named.text()).trim();
    if (!/^[0-9a-f-]{36}$/.test(nonce)) return undefined;
    const init = range == null ? undefined : { headers: { range } };
    return await caches.default.match(new Request(`${key}/${nonce}`, init));
  } catch {
    return undefined;
  }
}

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
 * The client's copy of a kept answer (`X-Proxy-Cache: <verdict>`), with `length` bytes (decided
 * by src/cache.rs `served_length`: the length it was kept with, so that a store read that ends
 * early fails the client's transfer instead of looking whole); NaN: the store's own answer as
 * it is (a 416).
 */
export function served(hit, verdict, length) {
  const headers = new Headers(hit.headers);
  headers.delete("cache-control");
  headers.delete(LENGTH);
  headers.set("x-proxy-cache", verdict);
  if (Number.isNaN(length) || hit.body === null) {
    return new Response(hit.body, { status: hit.status, headers });
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

// Keeping. Which answers are kept, where and how, and how many at once, is decided in Rust
// (src/cache.rs `keep`, `InFlight`); `done(reason)` tells it the outcome once known: `null` when
// kept, else why not.

const CHUNK = 1 << 20;

/** The headers an answer is kept with. */
function keptHeaders(upstream, digest, length) {
  const kept = new Headers();
  for (const name of ["content-type", "etag"]) {
    const value = upstream.headers.get(name);
    if (value !== null) kept.set(name, value);
  }
  kept.set("docker-content-digest", digest);
  kept.set("content-length", String(length));
  kept.set(LENGTH, String(length));
  kept.set("cache-control", "public, max-age=31536000, immutable");
  return kept;
}

/**
 * A manifest (`length` bytes, at most a few MiB): the client's copy of `upstream` through a
 * native tee(), whose other branch is read whole, hashed and put into the Cache API under
 * `key` if its sha256 is `digest`. `undefined` if it cannot be streamed (done says why).
 */
export function keepTee(ctx, upstream, key, digest, length, done) {
  const client = clientCopy(upstream, length, done);
  if (client === undefined) return undefined;
  const [toClient, toStore] = upstream.body.tee();
  toClient.pipeTo(client.writable).catch(() => {});
  const sink = wholeSink(key, keptHeaders(upstream, digest, length));
  ctx.waitUntil(settled(whole(toStore, sink, digest, length), sink, done));
  return client.response;
}

/**
 * A fallback's manifest, read whole already (edge/fallback.rs): `bytes` put under `key` once
 * their sha256 is `digest`. The client's copy is `upstream`, untouched.
 */
export function keepBytes(ctx, upstream, key, digest, bytes, done) {
  const sink = wholeSink(key, keptHeaders(upstream, digest, bytes.byteLength));
  const body = new Response(bytes.slice()).body;
  ctx.waitUntil(settled(whole(body, sink, digest, bytes.byteLength), sink, done));
}

/**
 * The client's copy of `upstream` (`length` bytes, `X-Proxy-Cache: MISS`) through a native
 * FixedLengthStream, whose writable side is to be fed; `undefined` if it cannot be made (done
 * says why).
 */
function clientCopy(upstream, length, done) {
  let stream;
  try {
    stream = new FixedLengthStream(length);
  } catch (e) {
    done(`cannot stream ${length} bytes: ${e}`);
    return undefined;
  }
  const headers = new Headers(upstream.headers);
  headers.set("x-proxy-cache", "MISS");
  const response = new Response(stream.readable, { status: upstream.status, headers });
  return { writable: stream.writable, response };
}

/**
 * A blob: `start()` makes a second GET of it (src/edge/upstream.rs `fetch`: a promise of the
 * Response, of `null` if it failed, of `undefined` if it timed out), kept under `key` in the R2
 * `bucket` if one is given (R2 checks the sha256 and keeps all or nothing: the bytes never pass
 * through JavaScript), else in the Cache API once their sha256 is `digest`. The client's copy
 * is `upstream`'s body: untouched (`undefined` is returned, and nothing here paces it), or,
 * with `after`, piped natively to the client and the second GET started only once that copy
 * has ended (the returned Response), so that hashing never shares the isolate's thread with it.
 */
export function keepRefetched(ctx, start, upstream, key, digest, length, bucket, after, done) {
  const kept = keptHeaders(upstream, digest, length);
  // into the bucket natively; into the Cache API read whole (small) or streamed and hashed
  const sink = bucket != null ? bucketSink(bucket, key, digest, kept)
    : after ? cacheSink(key, kept) : wholeSink(key, kept);
  if (!after) {
    ctx.waitUntil(settled(refetched(start(), sink, digest, length), sink, done));
    return undefined;
  }
  const client = clientCopy(upstream, length, done);
  if (client === undefined) return undefined;
  // once the client has its copy (or went away): the second GET
  const copied = upstream.body.pipeTo(client.writable).catch(() => {});
  const outcome = copied.then(() => refetched(start(), sink, digest, length));
  ctx.waitUntil(settled(outcome, sink, done));
  return client.response;
}

async function refetched(fetched, sink, digest, length) {
  const resp = await fetched;
  if (resp == null) {
    return resp === null ? "the second fetch failed" : "the second fetch timed out";
  }
  const got = resp.headers.get("content-length");
  if (resp.status !== 200 || Number(got) !== length || resp.body === null) {
    resp.body?.cancel().catch(() => {});
    return `the second fetch got ${resp.status} with ${got} bytes, not 200 with ${length}`;
  }
  if (sink.verifies) {
    try {
      await sink.put(resp.body);
      return null;
    } catch (e) {
      return `${sink.refused} (cut short or not ${digest}): ${e}`;
    }
  }
  return sink.whole ? whole(resp.body, sink, digest, length) : hashed(resp.body, sink, digest, length);
}

/** Once `outcome` (the reason it was not kept, or null) is known: named or discarded. */
function settled(outcome, sink, done) {
  return outcome
    .then(async (reason) => {
      if (reason !== null) {
        await sink.discard().catch(() => {});
        return reason;
      }
      await sink.commit();
      return null;
    })
    .then(done, (e) => done(String(e)));
}

/**
 * The Cache API: the bytes under `<key>/<nonce>`, named under `<key>` once complete and of
 * their digest (see the top of this file).
 */
function cacheSink(key, headers) {
  const nonce = crypto.randomUUID();
  const bytes = `${key}/${nonce}`;
  return {
    verifies: false,
    put: (body) => caches.default.put(bytes, new Response(body, { headers })),
    commit: () => caches.default.put(key, new Response(nonce, { headers: RECORD })),
    discard: () => caches.default.delete(bytes),
    refused: "the Cache API refused it",
  };
}

/** The Cache API for bytes read whole and checked: put under `key` itself. */
function wholeSink(key, headers) {
  return {
    whole: true,
    verifies: false,
    put: (bytes) => caches.default.put(key, new Response(bytes, { headers })),
    commit: async () => {},
    discard: async () => {},
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
    verifies: true,
    put: (body) => bucket.put(name, body, options),
    commit: async () => {},
    discard: async () => {},
    refused: "the R2 bucket refused it",
  };
}

/** A manifest's branch or a small blob's second GET: read whole, hashed, put. */
async function whole(body, sink, digest, length) {
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
  try {
    await sink.put(bytes);
  } catch (e) {
    return `${sink.refused}: ${e}`;
  }
  return null;
}

/**
 * A blob's second GET into the Cache API: read in large chunks (workerd's readAtLeast of a BYOB
 * reader: the loop's cost is per chunk), each written to a crypto.DigestStream and the store
 * (which waits for the store to take it: flat memory), and the store's stream closed only once
 * the digest is right, so that other bytes are never put at all.
 */
async function hashed(body, sink, digest, length) {
  const store = new FixedLengthStream(length);
  const put = sink.put(store.readable);
  const writer = store.writable.getWriter();
  const hasher = new crypto.DigestStream("SHA-256");
  const hash = hasher.getWriter();
  const reader = body.getReader({ mode: "byob" });
  let failed = null;
  put.catch((e) => { failed ??= `${sink.refused}: ${e}`; });
  // one buffer, read into again once the hash and the store have taken its bytes: a large
  // answer leaves no garbage of its size behind for the collector (which would show as memory)
  let buffer = new ArrayBuffer(CHUNK);
  try {
    for (;;) {
      let chunk;
      try {
        chunk = await reader.readAtLeast(CHUNK / 4, new Uint8Array(buffer));
      } catch {
        throw new Error("the upstream's body was cut short");
      }
      const value = chunk.value;
      if (value !== undefined && value.byteLength > 0) {
        await Promise.all([hash.write(value), writer.write(value)]);
      }
      // the read took the buffer over (BYOB): its bytes are in `value`
      buffer = value?.buffer ?? new ArrayBuffer(CHUNK);
      if (failed !== null) throw new Error(failed);
      if (chunk.done) break;
    }
    await hash.close();
    const got = "sha256:" + hex(await hasher.digest);
    if (got !== digest) throw new Error(`the upstream's body is ${got}, not ${digest}`);
    await writer.close();
    await put;
    return failed;
  } catch (e) {
    const reason = failed ?? (e instanceof Error ? e.message : String(e));
    writer.abort(reason).catch(() => {});
    hash.abort(reason).catch(() => {});
    reader.cancel(reason).catch(() => {});
    await put.catch(() => {});
    return reason;
  }
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}
