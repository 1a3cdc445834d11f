#!/usr/bin/env bash
# Benchmark: this Worker's release build vs a baseline JavaScript Worker vs a bare pass-through
# Worker vs the registry itself.
#
#   bash bench/run.sh [--quick] [--baseline FILE | --no-baseline] [--duration S] [--connections N]
#                     [--warmup S] [--cpu-rounds N] [--cpu-requests N] [--blob-runs N]
#                     [--keep-rounds N] [--keep-requests-small N] [--keep-requests-large N]
#                     [--keep-only] [--no-build] [--var NAME=VALUE]... [--static-upstream]
#                     [--marked-token] [--stats]
#
# Everything runs on 127.0.0.1, one subject at a time:
#   rust    the release build (worker-build --release, copied out of build/) in bare workerd
#   js      a service-worker script with MODE / TARGET_UPSTREAM globals (default:
#           ../shared/seed/original-worker.js next to the repo, if it exists) in bare workerd
#   pass    a bare pass-through ES-module Worker written by this script (fetch(UPSTREAM + path
#           + query) with the request's method, headers and body), in bare workerd
#   direct  the registry, no proxy
# in front of Debian's docker-registry with Docker-Hub-style token auth (tests/harness/
# token_issuer.py), blobs served by the registry itself (no redirect). Each workerd is its own
# process, so /proc gives per-subject CPU and memory.
#
# --quick: only the small requests (1 s runs after 0.5 s warm-ups) and the CPU rounds (1500
# requests each); no blobs, memory or wrangler dry run. For iterating on CPU work.
# --cpu-rounds N / --cpu-requests N: workerd CPU per manifest GET, measured with the workers
# alternating (rust, js, pass, rust, js, pass, ...), N rounds (3) of N requests (3000) each.
# --var NAME=VALUE adds a text binding (a wrangler var) to the Rust Worker, e.g. LOG_LEVEL=off.
# Keeping a blob (full run only): the Rust build as off (CACHE=off), on (default vars), paid
# (CACHE_VERIFY_MAX_BYTES=512000000), r2 (CACHE_BUCKET bound) and store (a bare Worker putting
# the upstream's body into R2), each its own workerd, the stores bench/store_sink.py (reads and
# drops); --keep-rounds N (5) rounds of, per size and subject, --keep-requests-small N (20) GETs
# of the VERIFY_MAX_DEFAULT-sized (512 KiB) and 4 MiB blobs and --keep-requests-large N (4) of
# the 200 MiB one.
# --keep-only: only that section (no small requests, CPU rounds, blobs, memory or dry run).
# --static-upstream: --quick in front of a second workerd answering a fixed OCI index instead of
# the registry. Each Worker's CPU is about half and the rounds' spread a quarter: for comparing
# builds. Its figures are not the ones the goals are about.
# --marked-token (with --static-upstream): the clients present their token as the proxy's
# /v2/auth gives it to anonymous clients (`anon~<token>`, credentials.rs), so that the Rust
# Worker takes the mark off and copies the headers, as for every anonymous pull.
# --stats: the Rust Worker gets an Analytics Engine dataset as STATS (one that keeps nothing:
# the Worker's own cost of a data point per request).
#
# stdout: tables, then `key=value` lines (also kept in $BENCH_DIR/run/report.txt);
# stderr: progress. Exit status 1 if a measurement failed or saw error answers.
#
# Needs `bash tests/setup.sh` (wrk, docker-registry, python3-jwt, worker-build, wasm-bindgen,
# npm packages). Env: BENCH_DIR=/tmp/rp-bench (state; the registry's data, ~1.3 GB, is kept
# there between runs), BENCH_PORT_BASE=6100 (uses BASE, BASE+1, BASE+10, BASE+11, BASE+12, and
# in the full run BASE+20..BASE+24 and BASE+30..BASE+34).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
PY=/usr/bin/python3
BENCH_PY="$HERE/bench.py"
export PATH="$HOME/.cargo/bin:$PATH"

STATE="${BENCH_DIR:-/tmp/rp-bench}"
RUN="$STATE/run"
PIDS="$STATE/pids"
PORT_BASE="${BENCH_PORT_BASE:-6100}"
REGISTRY_PORT=$PORT_BASE ISSUER_PORT=$((PORT_BASE + 1))
RUST_PORT=$((PORT_BASE + 10)) JS_PORT=$((PORT_BASE + 11)) PASS_PORT=$((PORT_BASE + 12))
# keeping a blob: subject i's store sink on KEEP_SINK_BASE + i, its workerd on KEEP_PORT_BASE + i
KEEP_SUBJECTS=(off on paid r2 store)
KEEP_SINK_BASE=$((PORT_BASE + 20)) KEEP_PORT_BASE=$((PORT_BASE + 30))
READY_TIMEOUT=20

DURATION="" CONNECTIONS=8 WARMUP="" CPU_ROUNDS=3 CPU_REQUESTS="" BLOB_RUNS=5 BUILD=1 BASELINE="" NO_BASELINE=0
QUICK=0 STATIC=0 MARKED=0 STATS=0 KEEP_ONLY=0 KEEP_ROUNDS=5 KEEP_REQUESTS_SMALL=20 KEEP_REQUESTS_LARGE=4
RUST_VARS=()
DEFAULT_BASELINE="$REPO/../shared/seed/original-worker.js"

BENCH_HOST=bench.example.test      # the Host header every request carries
IMAGE=library/bench                # the repository on the registry
SERVICE=bench-registry ISSUER_NAME=bench-issuer
PUSH_USER=bench PUSH_PASSWORD=bench-password
SMALL_BLOB=$((200 * 1024 * 1024)) BIG_BLOB=$((1024 * 1024 * 1024))
MEM_INTERVAL=0.05
ACCEPT="application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
WORKERD_BIN="$REPO/node_modules/@cloudflare/workerd-linux-64/bin/workerd"
WRANGLER_BIN="$REPO/node_modules/.bin/wrangler"

usage() { sed -n '2,42p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
T0=$(date +%s.%N)
elapsed() { awk -v t0="$T0" -v t1="$(date +%s.%N)" 'BEGIN { printf "%5.1f", t1 - t0 }'; }
log() { printf 'bench [%ss]: %s\n' "$(elapsed)" "$*" >&2; }
die() { printf 'bench: ERROR: %s\n' "$*" >&2; exit 1; }

while (($#)); do
  case "$1" in
    --baseline) BASELINE="${2:?--baseline needs a file}"; shift 2 ;;
    --baseline=*) BASELINE="${1#*=}"; shift ;;
    --no-baseline) NO_BASELINE=1; shift ;;
    --duration) DURATION="${2:?}"; shift 2 ;;
    --duration=*) DURATION="${1#*=}"; shift ;;
    --connections) CONNECTIONS="${2:?}"; shift 2 ;;
    --connections=*) CONNECTIONS="${1#*=}"; shift ;;
    --warmup) WARMUP="${2:?}"; shift 2 ;;
    --warmup=*) WARMUP="${1#*=}"; shift ;;
    --blob-runs) BLOB_RUNS="${2:?}"; shift 2 ;;
    --blob-runs=*) BLOB_RUNS="${1#*=}"; shift ;;
    --cpu-rounds) CPU_ROUNDS="${2:?}"; shift 2 ;;
    --cpu-rounds=*) CPU_ROUNDS="${1#*=}"; shift ;;
    --cpu-requests) CPU_REQUESTS="${2:?}"; shift 2 ;;
    --cpu-requests=*) CPU_REQUESTS="${1#*=}"; shift ;;
    --keep-rounds) KEEP_ROUNDS="${2:?}"; shift 2 ;;
    --keep-rounds=*) KEEP_ROUNDS="${1#*=}"; shift ;;
    --keep-requests-small) KEEP_REQUESTS_SMALL="${2:?}"; shift 2 ;;
    --keep-requests-small=*) KEEP_REQUESTS_SMALL="${1#*=}"; shift ;;
    --keep-requests-large) KEEP_REQUESTS_LARGE="${2:?}"; shift 2 ;;
    --keep-requests-large=*) KEEP_REQUESTS_LARGE="${1#*=}"; shift ;;
    --keep-only) KEEP_ONLY=1; shift ;;
    --quick) QUICK=1; shift ;;
    --static-upstream) STATIC=1 QUICK=1; shift ;;
    --marked-token) MARKED=1; shift ;;
    --stats) STATS=1; shift ;;
    --no-build) BUILD=0; shift ;;
    --var) [[ "${2:-}" == [A-Za-z_]*=* ]] || die "--var wants NAME=VALUE"; RUST_VARS+=("$2"); shift 2 ;;
    --var=*) [[ "${1#*=}" == [A-Za-z_]*=* ]] || die "--var wants NAME=VALUE"; RUST_VARS+=("${1#*=}"); shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
if ((QUICK)); then
  DURATION="${DURATION:-1}" WARMUP="${WARMUP:-0.5}" CPU_REQUESTS="${CPU_REQUESTS:-1500}" PAUSE=0.2
else
  DURATION="${DURATION:-10}" WARMUP="${WARMUP:-2}" CPU_REQUESTS="${CPU_REQUESTS:-3000}" PAUSE=1
fi
for v in DURATION CONNECTIONS CPU_ROUNDS CPU_REQUESTS BLOB_RUNS KEEP_ROUNDS KEEP_REQUESTS_SMALL KEEP_REQUESTS_LARGE; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "--$(tr _ - <<<"${v,,}") wants a whole number, got '${!v}'"
done
[[ "$WARMUP" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--warmup wants a number of seconds, got '$WARMUP'"
((DURATION >= 1 && CONNECTIONS >= 1 && BLOB_RUNS >= 1 && CPU_ROUNDS >= 1 && CPU_REQUESTS >= 1)) \
  || die "--duration, --connections, --cpu-rounds, --cpu-requests and --blob-runs must be >= 1"
((KEEP_ROUNDS >= 1 && KEEP_REQUESTS_SMALL >= 1 && KEEP_REQUESTS_LARGE >= 1)) \
  || die "--keep-rounds, --keep-requests-small and --keep-requests-large must be >= 1"
((KEEP_ONLY == 0 || QUICK == 0)) || die "--keep-only is part of the full run: not with --quick or --static-upstream"
# the largest blob the default vars keep (in the Cache API, hashed by the Worker): read from the
# code, so that the keep section follows it; and one 4 times as large, which they pass unkept
VERIFY_MAX_EXPR="$(sed -n 's/^pub const VERIFY_MAX_DEFAULT: u64 = \([0-9 <*]*\);.*/\1/p' "$REPO/src/cache_settings.rs" | head -1)"
[[ -n "$VERIFY_MAX_EXPR" ]] || die "no 'pub const VERIFY_MAX_DEFAULT: u64 = ...;' in src/cache_settings.rs"
KEEP_DEFAULT_BLOB=$((VERIFY_MAX_EXPR)) KEEP_OVER_BLOB=$((4 * 1024 * 1024))
size_label() {
  if (($1 % 1048576 == 0)); then echo "$(($1 / 1048576))mib"
  elif (($1 % 1024 == 0)); then echo "$(($1 / 1024))kib"
  else echo "${1}b"; fi
}
KEEP_DEFAULT_LABEL="$(size_label "$KEEP_DEFAULT_BLOB")" KEEP_OVER_LABEL="$(size_label "$KEEP_OVER_BLOB")"
((QUICK || (KEEP_DEFAULT_BLOB < KEEP_OVER_BLOB && KEEP_OVER_BLOB < SMALL_BLOB))) \
  || die "VERIFY_MAX_DEFAULT in src/cache_settings.rs is $KEEP_DEFAULT_BLOB bytes: the keep section wants it under 4 MiB"

if ((NO_BASELINE)); then
  BASELINE=""
elif [[ -n "$BASELINE" ]]; then
  [[ -f "$BASELINE" ]] || die "--baseline $BASELINE: no such file"
  BASELINE="$(cd "$(dirname "$BASELINE")" && pwd)/$(basename "$BASELINE")"
elif [[ -f "$DEFAULT_BASELINE" ]]; then
  BASELINE="$(cd "$(dirname "$DEFAULT_BASELINE")" && pwd)/$(basename "$DEFAULT_BASELINE")"
else
  log "no baseline given and $DEFAULT_BASELINE does not exist: skipping the js column"
fi

# --- tools ------------------------------------------------------------------------------------
missing=()
for t in wrk curl gzip docker-registry openssl sha256sum; do
  command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
[[ -x "$PY" ]] || missing+=("$PY")
"$PY" -c 'import jwt, cryptography' 2>/dev/null || missing+=("python3-jwt/python3-cryptography")
[[ -x "$WORKERD_BIN" ]] || missing+=("$WORKERD_BIN (npm ci)")
if ((BUILD)); then
  command -v worker-build >/dev/null 2>&1 || missing+=("worker-build")
  command -v wasm-bindgen >/dev/null 2>&1 || missing+=("wasm-bindgen")
  [[ -x "$REPO/node_modules/.bin/wasm-opt" ]] || missing+=("node_modules/.bin/wasm-opt (npm ci)")
fi
((${#missing[@]} == 0)) || die "missing: ${missing[*]}; run 'bash tests/setup.sh' first"

# --- processes: started with setsid (pid = process group), stopped by pid ------------------------
starttime() { awk '{sub(/^.*\) /, ""); print $20}' "/proc/$1/stat" 2>/dev/null; }
pstate() { awk '{sub(/^.*\) /, ""); print $1}' "/proc/$1/stat" 2>/dev/null; }
alive() {  # PID STARTTIME: still running and the same process
  local s; s="$(pstate "$1")" || return 1
  [[ -n "$s" && "$s" != Z && "$(starttime "$1")" == "$2" ]]
}
stop_one() {
  local f="$1" pid start i
  read -r pid start <"$f" || true
  if [[ -n "${pid:-}" ]] && alive "$pid" "${start:-}"; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do alive "$pid" "$start" || break; sleep 0.1; done
    if alive "$pid" "$start"; then
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    for ((i = 0; i < 50; i++)); do alive "$pid" "$start" || break; sleep 0.1; done
  fi
  rm -f "$f"
}
stop_all() {
  local f
  [[ -d "$PIDS" ]] || return 0
  for f in "$PIDS"/*.pid; do [[ -e "$f" ]] && stop_one "$f"; done
  return 0
}
on_exit() {
  local rc=$?
  stop_all
  if ((rc != 0)); then
    printf 'bench: failed (exit %s)%s\n' "$rc" "$([[ -d "$RUN/logs" ]] && echo "; logs in $RUN/logs")" >&2
  fi
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

declare -A PID=()
start_bg() {  # NAME CMD...
  local name="$1"; shift
  setsid "$@" >"$RUN/logs/$name.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid $(starttime "$pid")" >"$PIDS/$name.pid"
  PID[$name]=$pid
}
wait_ready() {  # NAME URL
  local name="$1" url="$2" pid="${PID[$1]}" deadline=$(($(date +%s) + READY_TIMEOUT))
  while [[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' -H "Host: $BENCH_HOST" "$url" 2>/dev/null)" == 000 ]]; do
    if ! kill -0 "$pid" 2>/dev/null || [[ "$(pstate "$pid")" == Z ]]; then
      tail -n 30 "$RUN/logs/$name.log" >&2 || true
      die "$name (pid $pid) exited during start-up; log: $RUN/logs/$name.log"
    fi
    (($(date +%s) < deadline)) || { tail -n 30 "$RUN/logs/$name.log" >&2; die "$name not ready after ${READY_TIMEOUT}s"; }
    sleep 0.1
  done
}

stop_all   # leftovers of an interrupted run
keep_ports=()
if ((QUICK == 0)); then
  for ((i = 0; i < ${#KEEP_SUBJECTS[@]}; i++)); do keep_ports+=($((KEEP_SINK_BASE + i)) $((KEEP_PORT_BASE + i))); done
fi
for p in $REGISTRY_PORT $ISSUER_PORT $RUST_PORT $JS_PORT $PASS_PORT "${keep_ports[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    die "port $p is in use by something else: $(ss -ltnpH "sport = :$p" 2>/dev/null | head -1) (set BENCH_PORT_BASE)"
  fi
done
rm -rf "$RUN"
mkdir -p "$RUN/logs" "$PIDS" "$STATE/issuer" "$STATE/registry/data"
RESULTS="$RUN/results.kv"
: >"$RESULTS"
kv() { printf '%s=%s\n' "$1" "$2" >>"$RESULTS"; }

# --- 1. the release build, copied (build/ may be rebuilt by someone else at any time) ---------
if ((BUILD)); then
  # the build wrangler runs (wrangler.toml's [build] command)
  log "building the release Worker (scripts/build.sh; log: $RUN/logs/build.log)"
  if ! bash "$REPO/scripts/build.sh" >"$RUN/logs/build.log" 2>&1; then
    tail -n 40 "$RUN/logs/build.log" >&2
    die "scripts/build.sh failed"
  fi
fi
[[ -s "$REPO/build/index.js" && -s "$REPO/build/index_bg.wasm" ]] \
  || die "$REPO/build/index.js or index_bg.wasm is missing: build first or drop --no-build"
for attempt in 1 2 3; do
  before="$(sha256sum "$REPO/build/index_bg.wasm" "$REPO/build/index.js" 2>/dev/null)"
  rm -rf "$RUN/build"
  cp -a "$REPO/build" "$RUN/build"
  after="$(sha256sum "$REPO/build/index_bg.wasm" "$REPO/build/index.js" 2>/dev/null)"
  [[ "$before" == "$after" ]] && break
  ((attempt < 3)) || die "build/ keeps changing while being copied; try again"
  sleep 2
done
WASM="$RUN/build/index_bg.wasm"
WASM_SHA="$(sha256sum "$WASM" | cut -c1-12)"
COMMIT="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
DIRTY=0
[[ -z "$(git -C "$REPO" status --porcelain --untracked-files=no -- src Cargo.toml Cargo.lock 2>/dev/null)" ]] || DIRTY=1
log "copied build/ (wasm sha256 $WASM_SHA, $(stat -c %s "$WASM") bytes) to $RUN/build"

COMPAT_DATE="$(sed -n 's/^compatibility_date *= *"\([0-9-]*\)".*/\1/p' "$REPO/wrangler.toml" | head -1)"
COMPAT_DATE="${COMPAT_DATE:-2026-04-01}"
UPSTREAM="http://127.0.0.1:$REGISTRY_PORT"

# our own load loop for HEAD (wrk 4.1 waits for a HEAD response's body: wg/wrk#198); std only
LOADGEN="$STATE/loadgen-target/release/rp-bench-loadgen"
if ! cargo build --release --offline --quiet --manifest-path "$HERE/loadgen/Cargo.toml" \
      --target-dir "$STATE/loadgen-target" >"$RUN/logs/loadgen-build.log" 2>&1; then
  cat "$RUN/logs/loadgen-build.log" >&2
  die "building bench/loadgen failed"
fi

# --- 2. the baseline, with MODE = "debug" and TARGET_UPSTREAM = the registry -------------------
SUBJECTS=(rust)
if [[ -n "$BASELINE" ]]; then
  mkdir -p "$RUN/js"
  set_names="$("$PY" "$BENCH_PY" baseline --src "$BASELINE" --dst "$RUN/js/worker.js" --mode debug --target "$UPSTREAM")"
  log "baseline $BASELINE: set ${set_names:-no declarations (MODE/TARGET_UPSTREAM given as bindings only)}"
  SUBJECTS+=(js)
fi
# the bare pass-through: the floor of what any Worker costs (issue 4 compares blob throughput to it)
mkdir -p "$RUN/pass"
cat >"$RUN/pass/worker.mjs" <<'EOF'
// written by bench/run.sh: a bare pass-through Worker, only the URL's origin changes
export default {
  async fetch(req, env) {
    const u = new URL(req.url);
    return fetch(env.UPSTREAM + u.pathname + u.search, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      redirect: "manual",
    });
  },
};
EOF
SUBJECTS+=(pass direct)

# --- 3. token issuer + registry (token auth, blobs served directly), or the static stand-in -----
ISSUER_URL="http://127.0.0.1:$ISSUER_PORT/token"
if ((STATIC)); then
  mkdir -p "$RUN/static"
  "$PY" "$BENCH_PY" static-upstream --out "$RUN/static/upstream.mjs" --realm "$ISSUER_URL" \
    --service "$SERVICE" >"$RUN/image.env"
  "$PY" "$BENCH_PY" workerd-config --out "$RUN/static.capnp" --port "$REGISTRY_PORT" \
    --compat-date "$COMPAT_DATE" --module upstream.mjs=static/upstream.mjs
  start_bg registry "$WORKERD_BIN" serve "$RUN/static.capnp"
  wait_ready registry "$UPSTREAM/v2/"
  log "static upstream (workerd) on :$REGISTRY_PORT is up"
  INDEX_DIGEST="$(sed -n 's/^INDEX_DIGEST=//p' "$RUN/image.env")"
  SMALL_DIGEST=none BIG_DIGEST=none
else
  ISSUER_KEY="$STATE/issuer/key.pem" ISSUER_CERT="$STATE/issuer/cert.pem"
  if [[ ! -s "$ISSUER_KEY" || ! -s "$ISSUER_CERT" ]]; then
    openssl ecparam -name prime256v1 -genkey -noout -out "$ISSUER_KEY"
    openssl req -x509 -new -key "$ISSUER_KEY" -out "$ISSUER_CERT" -days 3650 -subj "/CN=$ISSUER_NAME" 2>/dev/null
  fi
  printf '%s:%s\n' "$PUSH_USER" "$PUSH_PASSWORD" >"$STATE/issuer/users"
  start_bg issuer "$PY" "$BENCH_PY" issuer --port "$ISSUER_PORT" --key "$ISSUER_KEY" --cert "$ISSUER_CERT" \
    --issuer "$ISSUER_NAME" --service "$SERVICE" --users "$STATE/issuer/users"
  cat >"$STATE/registry/config.yml" <<EOF
version: 0.1
log: {level: warn, formatter: text, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $STATE/registry/data}
  delete: {enabled: true}
  maintenance: {uploadpurging: {enabled: false}}
http: {addr: 127.0.0.1:$REGISTRY_PORT}
auth:
  token:
    realm: $ISSUER_URL
    service: $SERVICE
    issuer: $ISSUER_NAME
    rootcertbundle: $ISSUER_CERT
EOF
  start_bg registry docker-registry serve "$STATE/registry/config.yml"
  wait_ready issuer "$ISSUER_URL?service=$SERVICE"
  wait_ready registry "$UPSTREAM/v2/"
  log "registry on :$REGISTRY_PORT and token issuer on :$ISSUER_PORT are up"

  log "preparing $IMAGE:latest (an OCI index) and random blobs of $KEEP_DEFAULT_LABEL, $KEEP_OVER_LABEL, 200 MiB and 1 GiB"
  "$PY" "$BENCH_PY" prepare --registry "$UPSTREAM" --issuer "$ISSUER_URL" --service "$SERVICE" \
    --user "$PUSH_USER" --password "$PUSH_PASSWORD" --repo "$IMAGE" \
    --blob "$KEEP_DEFAULT_LABEL:$KEEP_DEFAULT_BLOB" --blob "$KEEP_OVER_LABEL:$KEEP_OVER_BLOB" \
    --blob "200mib:$SMALL_BLOB" --blob "1gib:$BIG_BLOB" --digest-cache "$STATE/digests.json" >"$RUN/image.env"
  INDEX_DIGEST="$(sed -n 's/^INDEX_DIGEST=//p' "$RUN/image.env")"
  SMALL_DIGEST="$(sed -n 's/^BLOB_200MIB_DIGEST=//p' "$RUN/image.env")"
  BIG_DIGEST="$(sed -n 's/^BLOB_1GIB_DIGEST=//p' "$RUN/image.env")"
  KEEP_DEFAULT_DIGEST="$(sed -n "s/^BLOB_${KEEP_DEFAULT_LABEL^^}_DIGEST=//p" "$RUN/image.env")"
  KEEP_OVER_DIGEST="$(sed -n "s/^BLOB_${KEEP_OVER_LABEL^^}_DIGEST=//p" "$RUN/image.env")"
  [[ -n "$INDEX_DIGEST" && -n "$SMALL_DIGEST" && -n "$BIG_DIGEST" && -n "$KEEP_DEFAULT_DIGEST" && -n "$KEEP_OVER_DIGEST" ]] \
    || die "preparing the image failed"
fi

# --- 4. one workerd per worker ----------------------------------------------------------------------
modules=()
while IFS= read -r f; do
  if [[ "$f" == index.js ]]; then modules=("--module" "$f=build/$f" "${modules[@]}"); else modules+=("--module" "$f=build/$f"); fi
done < <(cd "$RUN/build" && find . -path ./worker -prune -o -type f \( -name '*.js' -o -name '*.mjs' -o -name '*.wasm' \) -print | sed 's#^\./##' | sort)
ROUTES_JSON="{\"$BENCH_HOST\": {\"upstream\": \"$UPSTREAM\", \"docker_hub\": true}}"
var_args=()
for v in "${RUST_VARS[@]}"; do var_args+=(--text "$v"); done
((STATS == 0)) || var_args+=(--stats-sink)
"$PY" "$BENCH_PY" workerd-config --out "$RUN/rust.capnp" --port "$RUST_PORT" --compat-date "$COMPAT_DATE" \
  "${modules[@]}" --json "ROUTES=$ROUTES_JSON" "${var_args[@]}"
start_bg workerd_rust "$WORKERD_BIN" serve "$RUN/rust.capnp"
if [[ -n "$BASELINE" ]]; then
  "$PY" "$BENCH_PY" workerd-config --out "$RUN/js.capnp" --port "$JS_PORT" --compat-date "$COMPAT_DATE" \
    --service-worker js/worker.js --text MODE=debug --text "TARGET_UPSTREAM=$UPSTREAM"
  start_bg workerd_js "$WORKERD_BIN" serve "$RUN/js.capnp"
fi
"$PY" "$BENCH_PY" workerd-config --out "$RUN/pass.capnp" --port "$PASS_PORT" --compat-date "$COMPAT_DATE" \
  --module worker.mjs=pass/worker.mjs --text "UPSTREAM=$UPSTREAM"
start_bg workerd_pass "$WORKERD_BIN" serve "$RUN/pass.capnp"
wait_ready workerd_rust "http://127.0.0.1:$RUST_PORT/v2/"
[[ -z "$BASELINE" ]] || wait_ready workerd_js "http://127.0.0.1:$JS_PORT/v2/"
wait_ready workerd_pass "http://127.0.0.1:$PASS_PORT/v2/"
for s in rust js pass; do
  [[ -n "${PID[workerd_$s]:-}" ]] || continue
  comm="$(cat "/proc/${PID[workerd_$s]}/comm" 2>/dev/null || true)"
  [[ "$comm" == workerd* ]] || die "pid ${PID[workerd_$s]} is '$comm', not workerd: CPU and memory would be wrong"
done
log "workerd up: rust on :$RUST_PORT${BASELINE:+, js on :$JS_PORT}, pass on :$PASS_PORT (compatibility date $COMPAT_DATE)"

declare -A URL=([rust]="http://127.0.0.1:$RUST_PORT" [js]="http://127.0.0.1:$JS_PORT"
                [pass]="http://127.0.0.1:$PASS_PORT" [direct]="$UPSTREAM")
declare -A WPID=([rust]="${PID[workerd_rust]}" [js]="${PID[workerd_js]:-}" [pass]="${PID[workerd_pass]}" [direct]="")
WORKERS=()
for s in "${SUBJECTS[@]}"; do [[ -z "${WPID[$s]}" ]] || WORKERS+=("$s"); done

if ((STATIC)); then
  TOKEN=static-upstream-takes-any-token
  ((MARKED == 0)) || TOKEN="anon~$TOKEN"
else
  ((MARKED == 0)) || die "--marked-token is for --static-upstream (the registry would refuse the mark through the other Workers)"
  TOKEN="$("$PY" "$BENCH_PY" token --issuer "$ISSUER_URL" --service "$SERVICE" --scope "repository:$IMAGE:pull")"
fi
[[ -n "$TOKEN" ]] || die "no token from the issuer"

verify_args=()
((QUICK == 0)) || verify_args+=(--no-blob)   # no blob measured: no 200 MiB sha256 check either
for s in "${SUBJECTS[@]}"; do
  "$PY" "$BENCH_PY" verify --subject "$s" --url "${URL[$s]}" --host "$BENCH_HOST" --token "$TOKEN" \
    --repo "$IMAGE" --index-digest "$INDEX_DIGEST" --blob-digest "$SMALL_DIGEST" --blob-size "$SMALL_BLOB" \
    "${verify_args[@]}" || die "$s does not answer correctly; logs in $RUN/logs"
done

# --- 5. measurements (metric by metric, subjects one after another) -------------------------------
{
  kv meta_date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  kv meta_commit "$COMMIT"
  kv meta_dirty "$DIRTY"
  kv meta_workerd "$("$WORKERD_BIN" --version 2>/dev/null | awk '{print $2}')"
  kv meta_registry "$(docker-registry --version 2>/dev/null | awk '{print $3}')"
  kv meta_cpus "$(nproc)"
  kv meta_quick "$QUICK"
  kv meta_keep_only "$KEEP_ONLY"
  kv meta_upstream "$( ((STATIC)) && echo static || echo registry)"
  kv meta_marked_token "$MARKED"
  kv meta_stats "$STATS"
  kv meta_duration "$DURATION"
  kv meta_connections "$CONNECTIONS"
  kv meta_warmup "$WARMUP"
  kv meta_cpu_rounds "$CPU_ROUNDS"
  kv meta_cpu_requests "$CPU_REQUESTS"
  kv meta_blob_runs "$BLOB_RUNS"
  if ((QUICK == 0)); then
    kv meta_keep_rounds "$KEEP_ROUNDS"
    kv meta_keep_requests_small "$KEEP_REQUESTS_SMALL"
    kv meta_keep_requests_large "$KEEP_REQUESTS_LARGE"
    kv meta_keep_verify_max_default "$KEEP_DEFAULT_BLOB"
    kv meta_keep_sizes "$KEEP_DEFAULT_LABEL:$KEEP_DEFAULT_BLOB,$KEEP_OVER_LABEL:$KEEP_OVER_BLOB,$(size_label "$SMALL_BLOB"):$SMALL_BLOB"
    kv meta_keep_subjects "$(IFS=,; echo "${KEEP_SUBJECTS[*]}")"
  fi
  kv meta_mem_interval_ms "$(awk -v i="$MEM_INTERVAL" 'BEGIN { print i * 1000 }')"
  kv meta_rust "build/ of $COMMIT$( ((DIRTY)) && echo '+changes'), index_bg.wasm sha256 $WASM_SHA$( ((BUILD)) || echo ' (--no-build)')${RUST_VARS[*]:+, vars: ${RUST_VARS[*]}}"
  kv meta_js "${BASELINE:-none}${BASELINE:+ (sha256 $(sha256sum "$BASELINE" | cut -c1-12), MODE=debug)}"
  kv meta_pass "bare pass-through ES-module Worker: fetch(UPSTREAM + path + query) with the request's method, headers, body; redirect manual"
  for s in rust js pass direct; do
    if [[ " ${SUBJECTS[*]} " == *" $s "* ]]; then kv "subject_$s" 1; else kv "subject_$s" 0; fi
  done
}

measure() {  # LABEL bench.py ARGS...: append its key=value lines to the results
  local label="$1" out; shift
  out="$("$PY" "$BENCH_PY" "$@")" || die "$label failed"
  printf '%s\n' "$out" >>"$RESULTS"
  log "$label: $(grep -E '_(rps|mbps|growth_mib)_|^cpu_alt_ms_per_req_' <<<"$out" | grep -v -E '_(min|max)_' | tr '\n' ' ')"
}

MANIFEST_PATH="/v2/$IMAGE/manifests/latest"
kinds=(manifest_get manifest_head v2)
((KEEP_ONLY == 0)) || kinds=()
for kind in "${kinds[@]}"; do
  for s in "${SUBJECTS[@]}"; do
    args=(wrk --subject "$s" --name "$kind" --connections "$CONNECTIONS" --duration "$DURATION"
          --warmup "$WARMUP" --loadgen "$LOADGEN" --log "$RUN/logs/wrk.log"
          -H "Host: $BENCH_HOST" -H "User-Agent: rp-bench")
    [[ -z "${WPID[$s]}" ]] || args+=(--pid "${WPID[$s]}")
    args+=(--registry-pid "${PID[registry]}")
    case "$kind" in
      manifest_get) args+=(--url "${URL[$s]}$MANIFEST_PATH" -H "Authorization: Bearer $TOKEN" -H "Accept: $ACCEPT") ;;
      manifest_head) args+=(--url "${URL[$s]}$MANIFEST_PATH" -H "Authorization: Bearer $TOKEN" -H "Accept: $ACCEPT"
                            --method HEAD --tool loadgen) ;;
      v2) args+=(--url "${URL[$s]}/v2/" --expect 401) ;;
    esac
    measure "$s $kind" "${args[@]}"
    sleep "$PAUSE"
  done
done

# workerd CPU per manifest GET: the workers alternating, round after round, a fixed number of
# requests each; the median of each worker's rounds (the machine's other load hits all alike)
args=(cpu --rounds "$CPU_ROUNDS" --requests "$CPU_REQUESTS" --connections "$CONNECTIONS" --loadgen "$LOADGEN"
      --registry-pid "${PID[registry]}" --log "$RUN/logs/cpu.log"
      -H "Host: $BENCH_HOST" -H "User-Agent: rp-bench" -H "Authorization: Bearer $TOKEN" -H "Accept: $ACCEPT")
for s in "${WORKERS[@]}"; do args+=(--subject "$s=${WPID[$s]}=${URL[$s]}$MANIFEST_PATH"); done
((KEEP_ONLY)) || measure "CPU rounds (${WORKERS[*]}) x$CPU_ROUNDS" "${args[@]}"

if ((QUICK)); then
  kv wasm_raw_bytes "$(stat -c %s "$WASM")"
  kv wasm_gzip_bytes "$(gzip -9 -c "$WASM" | wc -c)"
  stop_all
  log "done (--quick); all processes stopped; results in $RESULTS"
  set +e
  "$PY" "$BENCH_PY" report "$RESULTS" | tee "$RUN/report.txt"
  rc=${PIPESTATUS[0]}
  set -e
  exit "$rc"
fi

# the subjects take turns, run after run (as the CPU rounds do)
if ((KEEP_ONLY == 0)); then
  args=(blob --label 200mib --runs "$BLOB_RUNS" --host "$BENCH_HOST" --token "$TOKEN" --size "$SMALL_BLOB")
  for s in "${SUBJECTS[@]}"; do args+=(--subject "$s=${WPID[$s]}=${URL[$s]}/v2/$IMAGE/blobs/$SMALL_DIGEST"); done
  measure "blob 200 MiB (${SUBJECTS[*]}) x$BLOB_RUNS" "${args[@]}"
fi

# --- keeping a blob: cold GETs into a store sink, one workerd per way of keeping ---------------------
# Every subject is the release build in front of the same registry with the same ROUTES (not
# --var), but for `store`: a bare Worker putting the upstream's body into R2, the store's own
# cost. Cache API and R2 go to bench/store_sink.py (one per subject), which reads and drops
# everything and answers every match/get as a miss: every GET is a cold miss that is kept, and
# the store's work is not in workerd's CPU.
mkdir -p "$RUN/keep"
cat >"$RUN/keep/store.mjs" <<'EOF'
// written by bench/run.sh: what keeping a blob in R2 costs with no proxy, the upstream's body put
// under a fresh key; the client gets a few bytes (labelled MISS: it keeps every answer)
let n = 0;
export default {
  async fetch(req, env, ctx) {
    const u = new URL(req.url);
    const auth = req.headers.get("authorization");
    const resp = await fetch(env.UPSTREAM + u.pathname, { headers: auth ? { authorization: auth } : {} });
    if (resp.status !== 200) return new Response(resp.body, { status: resp.status });
    ctx.waitUntil(env.CACHE_BUCKET.put(`store/${Date.now()}-${n++}`, resp.body));
    return new Response("kept\n", { headers: { "x-proxy-cache": "MISS" } });
  },
};
EOF
declare -A KEEP_URL=()
for ((i = 0; i < ${#KEEP_SUBJECTS[@]}; i++)); do
  s="${KEEP_SUBJECTS[$i]}" sink_port=$((KEEP_SINK_BASE + i)) port=$((KEEP_PORT_BASE + i))
  start_bg "keep_sink_$s" "$PY" "$HERE/store_sink.py" --port "$sink_port" --log "$RUN/keep/sink-$s.jsonl"
  args=(--out "$RUN/keep-$s.capnp" --port "$port" --compat-date "$COMPAT_DATE" --store-sink "127.0.0.1:$sink_port")
  case "$s" in
    store) args+=(--module worker.mjs=keep/store.mjs --text "UPSTREAM=$UPSTREAM" --r2-bucket CACHE_BUCKET) ;;
    *) args+=("${modules[@]}" --json "ROUTES=$ROUTES_JSON") ;;
  esac
  case "$s" in
    off) args+=(--text CACHE=off) ;;
    paid) args+=(--text CACHE_VERIFY_MAX_BYTES=512000000) ;;
    r2) args+=(--r2-bucket CACHE_BUCKET) ;;
  esac
  "$PY" "$BENCH_PY" workerd-config "${args[@]}"
  start_bg "keep_$s" "$WORKERD_BIN" serve "$RUN/keep-$s.capnp"
  KEEP_URL[$s]="http://127.0.0.1:$port"
done
for ((i = 0; i < ${#KEEP_SUBJECTS[@]}; i++)); do
  s="${KEEP_SUBJECTS[$i]}"
  wait_ready "keep_sink_$s" "http://127.0.0.1:$((KEEP_SINK_BASE + i))/"
  wait_ready "keep_$s" "${KEEP_URL[$s]}/v2/"
  comm="$(cat "/proc/${PID[keep_$s]}/comm" 2>/dev/null || true)"
  [[ "$comm" == workerd* ]] || die "pid ${PID[keep_$s]} is '$comm', not workerd: CPU would be wrong"
done
log "keep subjects up: ${KEEP_SUBJECTS[*]} on :$KEEP_PORT_BASE-$((KEEP_PORT_BASE + ${#KEEP_SUBJECTS[@]} - 1)), their store sinks on :$KEEP_SINK_BASE-$((KEEP_SINK_BASE + ${#KEEP_SUBJECTS[@]} - 1))"
KEEP_LABELS=("$KEEP_DEFAULT_LABEL" "$KEEP_OVER_LABEL" "$(size_label "$SMALL_BLOB")")
args=(keep --rounds "$KEEP_ROUNDS" --host "$BENCH_HOST" --token "$TOKEN" --repo "$IMAGE" --log "$RUN/logs/keep.log"
      --registry-pid "${PID[registry]}"
      --size "$KEEP_DEFAULT_LABEL:$KEEP_DEFAULT_BLOB:$KEEP_DEFAULT_DIGEST:$KEEP_REQUESTS_SMALL"
      --size "$KEEP_OVER_LABEL:$KEEP_OVER_BLOB:$KEEP_OVER_DIGEST:$KEEP_REQUESTS_SMALL"
      --size "${KEEP_LABELS[2]}:$SMALL_BLOB:$SMALL_DIGEST:$KEEP_REQUESTS_LARGE" --sink-only store)
for s in "${KEEP_SUBJECTS[@]}"; do
  args+=(--subject "$s=${PID[keep_$s]}=$RUN/keep/sink-$s.jsonl=$RUN/logs/keep_$s.log=${KEEP_URL[$s]}")
done
out="$("$PY" "$BENCH_PY" "${args[@]}")" || die "keeping a blob failed"
printf '%s\n' "$out" >>"$RESULTS"
for lab in "${KEEP_LABELS[@]}"; do
  log "keep $lab (${KEEP_SUBJECTS[*]}) x$KEEP_ROUNDS: $(grep -E "^keep_(cpu_ms|mbps|verdict)_${lab}_" <<<"$out" | tr '\n' ' ')"
done
for s in "${KEEP_SUBJECTS[@]}"; do stop_one "$PIDS/keep_$s.pid"; stop_one "$PIDS/keep_sink_$s.pid"; done

if ((KEEP_ONLY == 0)); then
  # Read the 1 GiB blob's file once first, so that the first subject does not pay for a cold page
  # cache: a cold read is disk-bound (about 400 MB/s here, a third of a warm one).
  BIG_FILE="$STATE/registry/data/docker/registry/v2/blobs/sha256/${BIG_DIGEST:7:2}/${BIG_DIGEST#sha256:}/data"
  if [[ -f "$BIG_FILE" ]]; then
    cat "$BIG_FILE" >/dev/null
  else
    log "WARNING: $BIG_FILE not found; the first 1 GiB run may read from disk"
  fi
  for s in "${SUBJECTS[@]}"; do
    sleep 2  # let the worker settle before its idle RSS is read
    args=(mem --subject "$s" --label 1gib --url "${URL[$s]}/v2/$IMAGE/blobs/$BIG_DIGEST" --host "$BENCH_HOST"
          --token "$TOKEN" --size "$BIG_BLOB" --interval "$MEM_INTERVAL")
    [[ -z "${WPID[$s]}" ]] || args+=(--pid "${WPID[$s]}")
    measure "$s blob 1 GiB" "${args[@]}"
  done
fi

# --- 6. sizes ----------------------------------------------------------------------------------------
kv wasm_raw_bytes "$(stat -c %s "$WASM")"
kv wasm_gzip_bytes "$(gzip -9 -c "$WASM" | wc -c)"
if ((KEEP_ONLY)); then
  stop_all
  log "done (--keep-only); all processes stopped; results in $RESULTS"
  set +e
  "$PY" "$BENCH_PY" report "$RESULTS" | tee "$RUN/report.txt"
  rc=${PIPESTATUS[0]}
  set -e
  exit "$rc"
fi
# wrangler's dry run on the copy: the repo's wrangler.toml without its [build] command (which
# would rebuild build/), `main` pointing at the copied shim; no network (metrics, update check off)
"$PY" "$BENCH_PY" wrangler-config --src "$REPO/wrangler.toml" --dst "$RUN/wrangler.toml" --main build/worker/shim.mjs
if (cd "$RUN" && WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_HIDE_BANNER=true \
      WRANGLER_SEND_ERROR_REPORTS=false npm_config_registry=http://127.0.0.1:9/ \
      "$WRANGLER_BIN" deploy --dry-run --env= --outdir "$RUN/wrangler-out" --config "$RUN/wrangler.toml") \
      >"$RUN/logs/wrangler.log" 2>&1; then
  upload="$(grep -o 'Total Upload: [0-9.]* KiB / gzip: [0-9.]* KiB' "$RUN/logs/wrangler.log" | tail -1)"
  if [[ -n "$upload" ]]; then
    kv upload_total_kib "$(awk '{print $3}' <<<"$upload")"
    kv upload_gzip_kib "$(awk '{print $7}' <<<"$upload")"
  else
    kv note_wrangler "wrangler deploy --dry-run printed no 'Total Upload' line (log: $RUN/logs/wrangler.log)"
  fi
else
  tail -n 20 "$RUN/logs/wrangler.log" >&2
  kv note_wrangler "wrangler deploy --dry-run failed (log: $RUN/logs/wrangler.log)"
fi
log "wasm $(stat -c %s "$WASM") bytes; upload: ${upload:-?}"

# --- 7. report ---------------------------------------------------------------------------------------
stop_all
log "done; all processes stopped; results in $RESULTS"
set +e
"$PY" "$BENCH_PY" report "$RESULTS" | tee "$RUN/report.txt"
rc=${PIPESTATUS[0]}
set -e
exit "$rc"
