// A fallback's blob on its way to the client (edge/fallback.rs), checked against its digest
// as it passes, where failover.rs lets the Worker pay for that (up to CACHE_VERIFY_MAX_BYTES):
// read in large chunks (workerd's readAtLeast of a BYOB reader: the loop's cost is per chunk),
// each written to a crypto.DigestStream, and the last one reaching the client only once the
// digest is right. A wrong or cut body errors the client's stream instead, so the client never
// holds all the bytes of a wrong blob.

const CHUNK = 1 << 20;

export function checked(ctx, body, digest, length) {
  const out = length === null ? new TransformStream() : new FixedLengthStream(length);
  const writer = out.writable.getWriter();
  const hasher = new crypto.DigestStream("SHA-256");
  const hash = hasher.getWriter();
  const reader = body.getReader({ mode: "byob" });
  const pass = (async () => {
    let held = null;
    try {
      for (;;) {
        // a buffer of its own each time: the one held back is still to be written
        const { value, done } = await reader.readAtLeast(CHUNK / 4, new Uint8Array(CHUNK));
        if (value !== undefined && value.byteLength > 0) {
          await hash.write(value);
          if (held !== null) await writer.write(held);
          held = value;
        }
        if (done) break;
      }
      await hash.close();
      const got = "sha256:" + hex(await hasher.digest);
      if (got !== digest) throw new Error(`the fallback's blob is ${got}, not ${digest}`);
      if (held !== null) await writer.write(held);
      await writer.close();
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      writer.abort(reason).catch(() => {});
      hash.abort(reason).catch(() => {});
      reader.cancel(reason).catch(() => {});
    }
  })();
  ctx.waitUntil(pass);
  return out.readable;
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}
