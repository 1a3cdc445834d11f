#!/usr/bin/env bash
# The release build, as wrangler runs it (`[build] command` in wrangler.toml) for `wrangler
# dev`, `wrangler deploy` and Cloudflare's Workers Builds (the Deploy button): installs what
# is missing (Rust, the wasm32 target, pinned worker-build, wasm-bindgen), then builds build/
# with `worker-build --release`, whose output is used as it is.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# wrangler runs this step itself, so a machine that can download may let worker-build fetch
# wasm-bindgen instead of compiling it
TOOLCHAIN_DOWNLOADS=1 bash scripts/toolchain.sh >&2

# Use the installed tools when they are the pinned versions; worker-build would otherwise
# download them (impossible offline).
WASM_BINDGEN_VERSION="$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/"/, "", $3); print $3; exit}' Cargo.lock)"
if wasm-bindgen --version 2>/dev/null | grep -qwF -- "$WASM_BINDGEN_VERSION"; then
  export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen)}"
fi
if [[ -x node_modules/.bin/wasm-opt ]]; then
  export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
fi
exec worker-build --release "$@"
