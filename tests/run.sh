#!/usr/bin/env bash
# The project's test command (README.md, .ci/run): installs what is missing, runs the native
# unit tests, builds the release Worker, starts the end-to-end harness (registries, token
# issuer, workerd over HTTPS, containerd, dockerd) on 127.0.0.1, runs the end-to-end tests
# against it and stops everything it started.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export E2E_DIR="${E2E_DIR:-/tmp/rp-e2e}"

step() { printf '\n==> %s\n' "$*"; }

step "setup (idempotent)"
bash tests/setup.sh

step "unit tests (native) and the fuzz corpus replayed"
cargo test --locked --lib --test fuzz_corpus

step "lint: rustfmt, clippy (native and wasm32)"
bash tests/lint.sh

step "release build and deploy check (wrangler deploy --dry-run runs scripts/build.sh)"
mkdir -p test-artifacts
WRANGLER_SEND_METRICS=false node_modules/.bin/wrangler deploy --dry-run --outdir test-artifacts/deploy \
  2>&1 | tee test-artifacts/deploy.log
grep -q 'Total Upload' test-artifacts/deploy.log
# Size budget (issue 4): the compressed wasm must stay under 200 KiB. Size is deterministic for
# a given toolchain, so this is a hard check; time is not, so there are no timing checks.
WASM_GZIP_BUDGET=$((200 * 1024))
wasm_raw="$(wc -c <build/index_bg.wasm)" wasm_gzip="$(gzip -9c build/index_bg.wasm | wc -c)"
printf 'wasm: %s bytes raw, %s bytes gzip (budget %s)\n' "$wasm_raw" "$wasm_gzip" "$WASM_GZIP_BUDGET"
if ((wasm_gzip > WASM_GZIP_BUDGET)); then
  echo "FAIL: build/index_bg.wasm is $wasm_gzip bytes gzip'd, over the budget of $WASM_GZIP_BUDGET" >&2
  exit 1
fi

step "end-to-end harness up"
trap 'bash tests/harness/down.sh >/dev/null 2>&1 || true' EXIT
E2E_DAEMONS=1 bash tests/harness/up.sh
bash tests/harness/selfcheck.sh

step "end-to-end tests"
cargo test --locked --no-fail-fast --test e2e -- --ignored --test-threads 4
