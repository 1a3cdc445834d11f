// A fallback upstream's blob on its way to the client (edge/fallback.rs), checked against its
// digest as it passes: each chunk is written to a crypto.DigestStream, and the last one reaches
// the client only once the digest is right. A wrong or cut body errors the client's stream
// instead, so the client never holds all the bytes of a wrong blob. This is work per chunk, on
// the fallback path only (the primary's blobs stream untouched).

export function checked(ctx, body, digest, length) {
  const out = length === null ? new TransformStream() : new FixedLengthStream(length);
  const writer = out.writable.getWriter();
  const hasher = new crypto.DigestStream("SHA-256");
  const hash = hasher.getWriter();
  const reader = body.getReader();
  const pass = (async () => {
    let held = null;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        await hash.write(value);
        if (held !== null) await writer.write(held);
        held = value;
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
