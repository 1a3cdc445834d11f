#!/usr/bin/env bash
# The release build, as wrangler runs it (`[build] command` in wrangler.toml) for `wrangler
# dev`, `wrangler deploy` and Cloudflare's Workers Builds (the Deploy button): installs what
# is missing (Rust, the wasm32 target, pinned worker-build, wasm-bindgen), then builds build/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"

bash tests/setup.sh --build >&2

# Use the installed tools when they are the pinned versions; worker-build would otherwise
# download them (impossible offline).
WASM_BINDGEN_VERSION="$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/"/, "", $3); print $3; exit}' Cargo.lock)"
if wasm-bindgen --version 2>/dev/null | grep -qwF -- "$WASM_BINDGEN_VERSION"; then
  export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen)}"
fi
if [[ -x node_modules/.bin/wasm-opt ]]; then
  export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
fi
# Unminified, so that the entry can be patched below by name (gzip keeps the cost small).
export NO_MINIFY=1
worker-build --release "$@"

# worker-build's entry constructs a Proxy around a WorkerEntrypoint class for every request, to
# rebuild it after a WebAssembly trap. This Worker exports no RPC: a plain module handler with
# the same trap recovery (checkReinitialize / handleMaybeCritical) costs ~0.02 ms less CPU per
# request. If a worker-build update changes the entry, the build keeps worker-build's own.
node - build/index.js <<'JS'
const fs = require("fs");
const file = process.argv[2];
const src = fs.readFileSync(file, "utf8");
const entry = "var shim_default = new Proxy(Entrypoint, classProxyHooks);";
const needed = ["function checkReinitialize()", "function handleMaybeCritical(", "function fetch(req, env, "];
if (src.split(entry).length !== 2 || !needed.every((n) => src.includes(n))) {
  console.error("build.sh: worker-build's entry is not the expected one; keeping it as it is");
  process.exit(0);
}
fs.writeFileSync(file, src.replace(entry, `var shim_default = {
  async fetch(request, env, ctx) {
    checkReinitialize();
    try {
      return await fetch(request, env, ctx);
    } catch (e) {
      handleMaybeCritical(e);
      throw e;
    }
  }
};`));
console.error("build.sh: plain module entry in place of the per-request Proxy");
JS
