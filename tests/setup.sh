#!/usr/bin/env bash
# Idempotent installer of everything the end-to-end tests need on a fresh Debian machine
# (run as root). Fast when everything is already there: every step checks first.
#
#   bash tests/setup.sh               # everything the tests need
#   bash tests/setup.sh --toolchain   # only what building and `wrangler dev` need
#   bash tests/setup.sh --build       # as --toolchain, without npm (wrangler's build step,
#                                     # scripts/build.sh, runs inside an installed wrangler)
#
# Env: SETUP_SKIP_CARGO=1 skips the two `cargo install` steps (they take ~6 and ~9 min).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf 'setup: %s\n' "$*"; }
TOOLCHAIN_ONLY=0 BUILD_ONLY=0
case "${1:-}" in
  --toolchain) TOOLCHAIN_ONLY=1 ;;
  --build) TOOLCHAIN_ONLY=1 BUILD_ONLY=1 ;;
  "") ;;
  *) echo "usage: setup.sh [--toolchain|--build]" >&2; exit 2 ;;
esac

APT_PACKAGES=(curl ca-certificates procps iproute2 docker-registry skopeo podman containerd docker.io apache2-utils openssl jq
              python3-jwt python3-cryptography python3-yaml wrk chromium)
WORKER_BUILD_VERSION=0.8.7
WRANGLER_VERSION=4.86.0
BINARYEN_VERSION=132.0.0
E2E_HOSTS=(docker.example.test quay.example.test open.example.test blobs.example.test
           auth.example.test proxy.example.test unknown.example.test timeout.example.test
           down.example.test bare.example.test quirky.example.test broken.example.test)

# --- 1. Debian packages ----------------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((TOOLCHAIN_ONLY)); then
  step "apt: skipped (--toolchain)"
elif ((${#missing[@]})); then
  step "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  step "apt: all ${#APT_PACKAGES[@]} packages already installed"
fi

# --- 2. Rust (a build machine such as Cloudflare's Workers Builds may have none) and its
#        wasm target ----------------------------------------------------------------------
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

# --- 3. npm: wrangler (with workerd) and binaryen (wasm-opt) ----------------------------
if ((BUILD_ONLY)); then
  step "npm: skipped (--build)"
elif [[ ! -f package.json || ! -f package-lock.json ]]; then
  step "npm: no package.json/package-lock.json, creating them (wrangler@$WRANGLER_VERSION binaryen@$BINARYEN_VERSION)"
  npm install --no-audit --no-fund --save-exact --save-dev \
    "wrangler@$WRANGLER_VERSION" "binaryen@$BINARYEN_VERSION"
elif [[ ! -x node_modules/.bin/wrangler || ! -x node_modules/@cloudflare/workerd-linux-64/bin/workerd ]] \
     || ! cmp -s <(sha256sum <package-lock.json) node_modules/.rp-lock-sha256; then
  step "npm: node_modules missing or older than package-lock.json, running npm ci"
  npm ci --no-audit --no-fund
  sha256sum <package-lock.json >node_modules/.rp-lock-sha256
else
  step "npm: node_modules already installed (wrangler $(node -p 'require("wrangler/package.json").version' 2>/dev/null || echo '?'))"
fi

# --- 4./5. cargo-installed tools -------------------------------------------------------
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
elif ((TOOLCHAIN_ONLY)) && ! wasm-bindgen --version 2>/dev/null | grep -qwF -- "$WASM_BINDGEN_VERSION" \
     && curl -sfI --max-time 5 -o /dev/null https://github.com/; then
  # online (a CI or Cloudflare build machine): worker-build fetches this exact version itself,
  # in seconds instead of a ~10 minute compile
  step "cargo: wasm-bindgen $WASM_BINDGEN_VERSION will be downloaded by worker-build"
else
  # offline machines cannot download it. No --locked: one locked dependency version of
  # wasm-bindgen-cli is missing from the crates mirror
  cargo_install wasm-bindgen-cli "$WASM_BINDGEN_VERSION" wasm-bindgen ""
fi

# --- 6. /etc/hosts -----------------------------------------------------------------------
HOSTS_LINE="127.0.0.1 ${E2E_HOSTS[*]} # rp-e2e"
if ((TOOLCHAIN_ONLY)); then
  step "hosts: skipped (--toolchain)"
elif grep -qxF "$HOSTS_LINE" /etc/hosts; then
  step "hosts: /etc/hosts already maps the ${#E2E_HOSTS[@]} test names"
else
  step "hosts: mapping ${E2E_HOSTS[*]} to 127.0.0.1 in /etc/hosts"
  tmp="$(mktemp)"
  grep -v ' # rp-e2e$' /etc/hosts >"$tmp" || true
  printf '%s\n' "$HOSTS_LINE" >>"$tmp"
  cat "$tmp" >/etc/hosts   # in place: /etc/hosts may be a bind mount
  rm -f "$tmp"
fi

step "done"
