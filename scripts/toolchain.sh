#!/usr/bin/env bash
# What building the Worker needs, installed when missing (fast when everything is there):
# Rust (a build machine such as Cloudflare's Workers Builds may have none), the wasm32 target,
# pinned worker-build, and wasm-bindgen-cli at exactly Cargo.lock's version. Run by
# scripts/build.sh (wrangler's build step) and tests/setup.sh.
#
# Env: SETUP_SKIP_CARGO=1 skips the two `cargo install` steps (they take ~6 and ~9 min).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"

WORKER_BUILD_VERSION=0.8.7
step() { printf 'toolchain: %s\n' "$*"; }

if ! command -v cargo >/dev/null 2>&1; then
  step "rustup: no cargo, installing the stable toolchain"
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  step "rustup: wasm32-unknown-unknown already installed"
else
  step "rustup: adding target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# Waits for an already-running `cargo install CRATE` (e.g. started by hand) instead of
# starting a second, duplicate build.
wait_for_running_install() {
  local crate="$1" waited=0
  while pgrep -f "cargo install ${crate}( |$)" >/dev/null 2>&1; do
    if ((waited == 0)); then step "cargo: a 'cargo install $crate' is already running, waiting for it"; fi
    sleep 5
    waited=$((waited + 5))
    if ((waited >= 1500)); then step "cargo: gave up waiting for the running install of $crate"; return 1; fi
  done
}

cargo_install() {  # crate version tool locked?
  local crate="$1" version="$2" tool="$3" locked="$4"
  if "$tool" --version 2>/dev/null | grep -qwF -- "$version"; then
    step "cargo: $tool $version already installed"
    return 0
  fi
  if [[ "${SETUP_SKIP_CARGO:-0}" == 1 ]]; then
    step "cargo: $tool $version missing, skipped (SETUP_SKIP_CARGO=1)"
    return 0
  fi
  wait_for_running_install "$crate" || true
  if "$tool" --version 2>/dev/null | grep -qwF -- "$version"; then
    step "cargo: $tool $version installed by the concurrent run"
    return 0
  fi
  step "cargo: installing $crate $version${locked:+ ($locked)}"
  # shellcheck disable=SC2086
  cargo install "$crate" --version "$version" $locked
}

cargo_install worker-build "$WORKER_BUILD_VERSION" worker-build --locked

WASM_BINDGEN_VERSION="$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/"/, "", $3); print $3; exit}' Cargo.lock 2>/dev/null || true)"
if [[ -z "$WASM_BINDGEN_VERSION" ]]; then
  step "cargo: no wasm-bindgen in Cargo.lock, skipping wasm-bindgen-cli"
elif ! wasm-bindgen --version 2>/dev/null | grep -qwF -- "$WASM_BINDGEN_VERSION" \
     && [[ "${TOOLCHAIN_DOWNLOADS:-0}" == 1 ]] && curl -sfI --max-time 5 -o /dev/null https://github.com/; then
  # online (a CI or Cloudflare build machine): worker-build fetches this exact version itself,
  # in seconds instead of a ~10 minute compile
  step "cargo: wasm-bindgen $WASM_BINDGEN_VERSION will be downloaded by worker-build"
else
  # offline machines cannot download it. No --locked: one locked dependency version of
  # wasm-bindgen-cli is missing from the crates mirror
  cargo_install wasm-bindgen-cli "$WASM_BINDGEN_VERSION" wasm-bindgen ""
fi
