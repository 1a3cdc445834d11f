#!/usr/bin/env bash
# Idempotent installer of everything the end-to-end tests need on a fresh Debian machine
# (run as root). Fast when everything is already there: every step checks first.
#
#   bash tests/setup.sh               # everything the tests need
#   bash tests/setup.sh --toolchain   # only what building and `wrangler dev` need
#                                     # (scripts/toolchain.sh, then the npm packages)
#
# Env: SETUP_SKIP_CARGO=1 skips the two `cargo install` steps (they take ~6 and ~9 min).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf 'setup: %s\n' "$*"; }
TOOLCHAIN_ONLY=0
case "${1:-}" in
  --toolchain) TOOLCHAIN_ONLY=1 ;;
  "") ;;
  *) echo "usage: setup.sh [--toolchain]" >&2; exit 2 ;;
esac

APT_PACKAGES=(curl ca-certificates procps iproute2 docker-registry skopeo podman containerd docker.io apache2-utils openssl jq
              python3-jwt python3-cryptography python3-yaml wrk chromium)
WRANGLER_VERSION=4.86.0
BINARYEN_VERSION=132.0.0
E2E_HOSTS=(docker.example.test quay.example.test open.example.test blobs.example.test
           auth.example.test proxy.example.test unknown.example.test timeout.example.test
           down.example.test bare.example.test quirky.example.test broken.example.test
           team.example.test token.team.example.test faults.example.test tokendown.example.test
           tokenjunk.example.test tokenfile.example.test)

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

# --- 2. the build toolchain: Rust, the wasm32 target, pinned worker-build and wasm-bindgen-cli
# (--toolchain, as for `npm run dev`: online, worker-build may download wasm-bindgen itself)
TOOLCHAIN_DOWNLOADS="$TOOLCHAIN_ONLY" bash scripts/toolchain.sh

# --- 3. npm: wrangler (with workerd) and binaryen (wasm-opt) ----------------------------
if [[ ! -f package.json || ! -f package-lock.json ]]; then
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

# --- 4. /etc/hosts -----------------------------------------------------------------------
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
