#!/usr/bin/env bash
# Start the end-to-end test environment on 127.0.0.1 and write its state to $E2E_DIR.
#
#   bash tests/harness/up.sh            # then: source "$E2E_DIR/env"
#   bash tests/harness/down.sh
#
# Needs tests/setup.sh to have run (packages, npm deps, /etc/hosts names).
#
# Ports: 5000 hub registry (token auth, blob redirects, Docker Hub's rules), 5001 open
#        registry (no auth), 5010 team registry (token auth, like ghcr.io or quay.io),
#        5002 / 5012 / 5013 the token issuers of the hub, the team registry and the quirky
#        fake (each its own key, issuer name, service name and users: a token of one is
#        refused by the others), 5004 blob server (redirect target), 5009 black hole (never
#        answers), 5008 left closed, 5005-5007 fake_upstream.py (bare, quirky, broken), 5014 search
#        stand-in (Docker Hub's /v1/search; the hub route's "search"),
#        5020-5024 fault_upstream.py (faults, token-down, token-junk, token-file, wrong),
#        5032 mirror registry (a fallback: the hub's public images only, token auth) and 5033
#        its token issuer (its own key, issuer and service, anonymous pulls), 8443 workerd https,
#        8080 workerd http.
#
# Env knobs:
#   E2E_DIR=/tmp/rp-e2e        state directory (certs, data, logs, pids, env file)
#   E2E_NO_WORKER=1            don't start workerd (no worker build needed)
#   E2E_WORKER_DIR=DIR         serve DIR/index.js (+ DIR/*.wasm) instead of build/
#   E2E_DAEMONS=1              also start containerd and dockerd (slow)
#   E2E_ROUTES_JSON, E2E_CUSTOM_DOMAIN, E2E_UPSTREAM_TIMEOUT_MS, E2E_LOG_LEVEL (debug)
#                              override the bindings
#   E2E_EXTRA_BINDINGS         raw capnp binding entries appended to the list, e.g.
#                              '(name = "MODE", text = "debug"),'
#   E2E_COMPAT_FLAGS           raw capnp list items, e.g. '"nodejs_compat"'
#   E2E_DOCKER_MIRRORS         JSON array for dockerd's registry-mirrors
#                              (default ["https://proxy.example.test:8443"], the path-routing
#                              host, whose default registry is the hub)
#   E2E_BLOBS_ALLOW_AUTH=1     blob server accepts requests carrying Authorization
#                              (default: 400, as S3/R2 presigned URLs answer)
#   E2E_READY_TIMEOUT=20       seconds to wait for each server (daemons: 3x)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
export E2E_DIR="${E2E_DIR:-/tmp/rp-e2e}"
PY=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1  # the servers import serving.py: no __pycache__ in tests/harness
READY_TIMEOUT="${E2E_READY_TIMEOUT:-20}"
T0=$(date +%s.%N)

HUB_PORT=5000 OPEN_PORT=5001 ISSUER_PORT=5002 BLOBS_PORT=5004 DOWN_PORT=5008
BLACKHOLE_PORT=5009 FAKE_BARE_PORT=5005 FAKE_QUIRKY_PORT=5006 FAKE_BROKEN_PORT=5007
TEAM_PORT=5010 TEAM_ISSUER_PORT=5012 QUIRKY_ISSUER_PORT=5013
SEARCH_PORT=5014 FAULTS_PORT=5020 TOKEN_DOWN_PORT=5021 TOKEN_JUNK_PORT=5022 TOKEN_FILE_PORT=5023
WRONG_PORT=5024 MIRROR_PORT=5032 MIRROR_ISSUER_PORT=5033
WORKER_HTTPS_PORT=8443 WORKER_HTTP_PORT=8080
# the hub's token service (ISSUER_*: Docker Hub's auth.docker.io stand-in)
ISSUER_NAME=hub-issuer ISSUER_SERVICE=hub-registry
ISSUER_REALM="http://auth.example.test:$ISSUER_PORT/token"
# the team registry's (ghcr.io's or quay.io's stand-in: another host, key, service, accounts)
TEAM_ISSUER_NAME=team-issuer TEAM_ISSUER_SERVICE=team-registry
TEAM_ISSUER_REALM="http://token.team.example.test:$TEAM_ISSUER_PORT/token"
QUIRKY_ISSUER_NAME=quirky-issuer QUIRKY_ISSUER_SERVICE=quirky-registry
QUIRKY_ISSUER_REALM="http://auth.example.test:$QUIRKY_ISSUER_PORT/token"
# the mirror's (mirror.gcr.io's stand-in: another key, issuer, service; anyone may pull)
MIRROR_ISSUER_NAME=mirror-issuer MIRROR_ISSUER_SERVICE=mirror-registry
MIRROR_ISSUER_REALM="http://127.0.0.1:$MIRROR_ISSUER_PORT/token"
MIRROR_USER=keeper MIRROR_PASSWORD=mirrorkeeper
BLOBS_BASEURL="http://blobs.example.test:$BLOBS_PORT/"
TEST_USER=alice TEST_PASSWORD=wonderland
TEAM_USER=bob TEAM_PASSWORD=builder
# names under this prefix refuse anonymous clients, on the hub and the team registry
PRIVATE_PREFIX=private/
WORKERD_BIN="$REPO/node_modules/@cloudflare/workerd-linux-64/bin/workerd"
DEFAULT_ROUTES='{"docker.example.test": {"upstream": "http://127.0.0.1:5000", "docker_hub": true, "registry": "hub.registry.test", "search": "http://127.0.0.1:5014"}, "open.example.test": {"upstream": "http://127.0.0.1:5001", "registry": "open.registry.test"}, "team.example.test": {"upstream": "http://127.0.0.1:5010", "registry": "team.registry.test"}, "timeout.example.test": "http://127.0.0.1:5009", "down.example.test": "http://127.0.0.1:5008", "bare.example.test": {"upstream": "http://127.0.0.1:5005", "registry": "bare.registry.test"}, "faults.example.test": "http://127.0.0.1:5020", "tokendown.example.test": "http://127.0.0.1:5021", "tokenjunk.example.test": "http://127.0.0.1:5022", "tokenfile.example.test": "http://127.0.0.1:5023", "quirky.example.test": "http://127.0.0.1:5006", "broken.example.test": "http://127.0.0.1:5007"}'

log() { printf 'up: %s\n' "$*"; }
elapsed() { awk -v t0="$T0" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f", t1 - t0 }'; }
die() { printf 'up: ERROR: %s\n' "$*" >&2; exit 1; }

# --- 0. stop a previous run, lay out the state directory -------------------------------
bash "$HERE/down.sh" >/dev/null
# on failure stop whatever was started (logs stay in $E2E_DIR/logs), unless asked not to
on_exit() {
  local rc=$?
  if ((rc != 0)) && [[ "${E2E_KEEP_ON_FAILURE:-0}" != 1 ]]; then
    printf 'up: failed (exit %s), stopping what was started; logs in %s/logs\n' "$rc" "$E2E_DIR" >&2
    bash "$HERE/down.sh" >/dev/null 2>&1 || true
  fi
}
trap on_exit EXIT
mkdir -p "$E2E_DIR"/{tls,issuer,team-issuer,quirky-issuer,mirror-issuer,hub,open,team,mirror,images,logs,pids,worker}
: >"$E2E_DIR/issuer.log"
: >"$E2E_DIR/team-issuer.log"
: >"$E2E_DIR/quirky-issuer.log"
: >"$E2E_DIR/mirror-issuer.log"
: >"$E2E_DIR/blobs.log"
rm -f "$E2E_DIR/env"

for name in docker.example.test open.example.test team.example.test blobs.example.test auth.example.test token.team.example.test; do
  getent hosts "$name" >/dev/null || die "$name does not resolve: run tests/setup.sh first"
done
for p in $HUB_PORT $OPEN_PORT $TEAM_PORT $ISSUER_PORT $TEAM_ISSUER_PORT $QUIRKY_ISSUER_PORT $BLOBS_PORT \
         $BLACKHOLE_PORT $FAKE_BARE_PORT $FAKE_QUIRKY_PORT $FAKE_BROKEN_PORT $FAULTS_PORT $TOKEN_DOWN_PORT \
         $TOKEN_JUNK_PORT $TOKEN_FILE_PORT $WRONG_PORT $MIRROR_PORT $MIRROR_ISSUER_PORT $SEARCH_PORT $WORKER_HTTPS_PORT $WORKER_HTTP_PORT; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    die "port $p is already in use by something up.sh did not start: $(ss -ltnpH "sport = :$p" 2>/dev/null | head -1)"
  fi
done

# the worker build to serve (checked before anything starts)
WORKER_ENABLED=0 WORKERD_CONFIG="" WORKER_SRC=""
if [[ "${E2E_NO_WORKER:-0}" != 1 ]]; then
  WORKER_SRC="${E2E_WORKER_DIR:-$REPO/build}"
  WORKER_SRC="$(cd "$WORKER_SRC" 2>/dev/null && pwd)" || die "worker directory ${E2E_WORKER_DIR:-$REPO/build} does not exist: build the worker first (worker-build --release) or set E2E_NO_WORKER=1"
  [[ -s "$WORKER_SRC/index.js" ]] || die "$WORKER_SRC/index.js is missing: build the worker first (worker-build --release) or set E2E_NO_WORKER=1"
  if [[ -z "${E2E_WORKER_DIR:-}" && ! -s "$WORKER_SRC/index_bg.wasm" ]]; then
    die "$WORKER_SRC/index_bg.wasm is missing: build the worker first (worker-build --release) or set E2E_NO_WORKER=1"
  fi
  if [[ ! -x "$WORKERD_BIN" ]]; then
    log "workerd binary missing, running tests/setup.sh's npm step"
    (cd "$REPO" && npm ci --no-audit --no-fund >/dev/null)
    [[ -x "$WORKERD_BIN" ]] || die "no workerd at $WORKERD_BIN after npm ci"
  fi
fi

# --- helpers -----------------------------------------------------------------------------
starttime() { awk '{sub(/^.*\) /, ""); print $20}' "/proc/$1/stat" 2>/dev/null; }

# start_bg NAME CMD...: run CMD in its own session, stdout/stderr to logs/NAME.out,
# record "PID STARTTIME" in pids/NAME.pid; sets PID_<NAME>.
start_bg() {
  local name="$1"; shift
  setsid "$@" >"$E2E_DIR/logs/$name.out" 2>&1 </dev/null &
  local pid=$!
  echo "$pid $(starttime "$pid")" >"$E2E_DIR/pids/$name.pid"
  printf -v "PID_${name^^}" '%s' "$pid"
}

# wait_ready NAME TIMEOUT CMD...: poll CMD every 0.1 s until it succeeds.
wait_ready() {
  local name="$1" timeout="$2"; shift 2
  local pid; pid="$(cut -d' ' -f1 "$E2E_DIR/pids/$name.pid")"
  local deadline=$(( $(date +%s) + timeout ))
  while ! "$@" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null || [[ "$(awk '{sub(/^.*\) /, ""); print $1}' "/proc/$pid/stat" 2>/dev/null)" == Z ]]; then
      tail -n 30 "$E2E_DIR/logs/$name.out" >&2 || true
      die "$name (pid $pid) exited during start-up; log: $E2E_DIR/logs/$name.out"
    fi
    if (( $(date +%s) >= deadline )); then
      tail -n 30 "$E2E_DIR/logs/$name.out" >&2 || true
      die "$name not ready after ${timeout}s; log: $E2E_DIR/logs/$name.out"
    fi
    sleep 0.1
  done
}

http_answers() { [[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$@")" != 000 ]]; }

# --- 1. TLS: test CA + server cert (once), trusted system-wide ---------------------------
TLS="$E2E_DIR/tls"
CA_FILE="$TLS/ca.crt" SERVER_CERT="$TLS/server.crt" SERVER_KEY="$TLS/server.key"
if [[ ! -s "$CA_FILE" || ! -s "$TLS/ca.key" ]] || ! openssl x509 -checkend 2592000 -noout -in "$CA_FILE" >/dev/null; then
  log "generating test CA"
  rm -f "$SERVER_CERT"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$TLS/ca.key" -out "$CA_FILE" -days 3650 -subj "/CN=rp-e2e test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi
if [[ ! -s "$SERVER_CERT" || ! -s "$SERVER_KEY" ]] || ! openssl x509 -checkend 2592000 -noout -in "$SERVER_CERT" >/dev/null; then
  log "generating server certificate for *.example.test, example.test, localhost, 127.0.0.1"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$SERVER_KEY" -out "$TLS/server.csr" -subj "/CN=example.test" 2>/dev/null
  cat >"$TLS/server.ext" <<'EOF'
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:*.example.test, DNS:example.test, DNS:localhost, IP:127.0.0.1
EOF
  openssl x509 -req -in "$TLS/server.csr" -CA "$CA_FILE" -CAkey "$TLS/ca.key" \
    -CAcreateserial -out "$SERVER_CERT" -days 825 -sha256 -extfile "$TLS/server.ext" 2>/dev/null
  cat "$SERVER_CERT" "$CA_FILE" >"$TLS/server-chain.crt"
fi
SYSTEM_CA=/usr/local/share/ca-certificates/rp-e2e-ca.crt
if ! cmp -s "$CA_FILE" "$SYSTEM_CA"; then
  log "installing the test CA into the system trust store"
  mkdir -p "$(dirname "$SYSTEM_CA")"
  cp "$CA_FILE" "$SYSTEM_CA"
  update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed"
fi

# --- 2. token issuers: one per token registry, each with its own key -------------------------
# start_issuer NAME DIR PORT ISSUER SERVICE USERS_LINE [--private-prefix P]: sets <NAME>_KEY,
# <NAME>_CERT (the key's certificate, the registry's rootcertbundle)
start_issuer() {
  local name="$1" dir="$2" port="$3" issuer="$4" service="$5" users="$6"; shift 6
  local key="$dir/key.pem" cert="$dir/cert.pem"
  if [[ ! -s "$key" || ! -s "$cert" ]]; then
    log "generating the ES256 key of $issuer"
    openssl ecparam -name prime256v1 -genkey -noout -out "$key"
    openssl req -x509 -new -key "$key" -out "$cert" -days 3650 -subj "/CN=$issuer" 2>/dev/null
  fi
  printf '%s\n' "$users" >"$dir/users"
  start_bg "$name" "$PY" "$HERE/token_issuer.py" --port "$port" --key "$key" --cert "$cert" \
    --issuer "$issuer" --service "$service" --users "$dir/users" --log "$dir.log" "$@"
  printf -v "${name^^}_KEY" '%s' "$key"
  printf -v "${name^^}_CERT" '%s' "$cert"
}
start_issuer issuer "$E2E_DIR/issuer" "$ISSUER_PORT" "$ISSUER_NAME" "$ISSUER_SERVICE" \
  "$TEST_USER:$TEST_PASSWORD" --private-prefix "$PRIVATE_PREFIX"
start_issuer team_issuer "$E2E_DIR/team-issuer" "$TEAM_ISSUER_PORT" "$TEAM_ISSUER_NAME" \
  "$TEAM_ISSUER_SERVICE" "$TEAM_USER:$TEAM_PASSWORD" --private-prefix "$PRIVATE_PREFIX"
start_issuer quirky_issuer "$E2E_DIR/quirky-issuer" "$QUIRKY_ISSUER_PORT" "$QUIRKY_ISSUER_NAME" \
  "$QUIRKY_ISSUER_SERVICE" "$TEST_USER:$TEST_PASSWORD"
start_issuer mirror_issuer "$E2E_DIR/mirror-issuer" "$MIRROR_ISSUER_PORT" "$MIRROR_ISSUER_NAME" \
  "$MIRROR_ISSUER_SERVICE" "$MIRROR_USER:$MIRROR_PASSWORD"
ISSUER_LOG="$E2E_DIR/issuer.log" TEAM_ISSUER_LOG="$E2E_DIR/team-issuer.log"
MIRROR_ISSUER_LOG="$E2E_DIR/mirror-issuer.log"
QUIRKY_ISSUER_LOG="$E2E_DIR/quirky-issuer.log"

# --- 3. registries (fresh storage every run) + blob server + black hole ----------------------
HUB_DATA="$E2E_DIR/hub/data" OPEN_DATA="$E2E_DIR/open/data" TEAM_DATA="$E2E_DIR/team/data"
MIRROR_DATA="$E2E_DIR/mirror/data"
rm -rf "$HUB_DATA" "$OPEN_DATA" "$TEAM_DATA" "$MIRROR_DATA"
mkdir -p "$HUB_DATA" "$OPEN_DATA" "$TEAM_DATA" "$MIRROR_DATA"
cat >"$E2E_DIR/hub/config.yml" <<EOF
version: 0.1
log: {level: info, formatter: text}
storage:
  filesystem: {rootdirectory: $HUB_DATA}
  delete: {enabled: true}
  maintenance: {uploadpurging: {enabled: false}}
http: {addr: 127.0.0.1:$HUB_PORT}
auth:
  token:
    realm: $ISSUER_REALM
    service: $ISSUER_SERVICE
    issuer: $ISSUER_NAME
    rootcertbundle: $ISSUER_CERT
middleware:
  storage:
    - name: redirect
      options: {baseurl: $BLOBS_BASEURL}
EOF
cat >"$E2E_DIR/open/config.yml" <<EOF
version: 0.1
log: {level: info, formatter: text}
storage:
  filesystem: {rootdirectory: $OPEN_DATA}
  delete: {enabled: true}
  maintenance: {uploadpurging: {enabled: false}}
http: {addr: 127.0.0.1:$OPEN_PORT}
EOF
cat >"$E2E_DIR/team/config.yml" <<EOF
version: 0.1
log: {level: info, formatter: text}
storage:
  filesystem: {rootdirectory: $TEAM_DATA}
  delete: {enabled: true}
  maintenance: {uploadpurging: {enabled: false}}
http: {addr: 127.0.0.1:$TEAM_PORT}
auth:
  token:
    realm: $TEAM_ISSUER_REALM
    service: $TEAM_ISSUER_SERVICE
    issuer: $TEAM_ISSUER_NAME
    rootcertbundle: $TEAM_ISSUER_CERT
EOF
cat >"$E2E_DIR/mirror/config.yml" <<EOF
version: 0.1
log: {level: info, formatter: text}
storage:
  filesystem: {rootdirectory: $MIRROR_DATA}
  delete: {enabled: true}
  maintenance: {uploadpurging: {enabled: false}}
http: {addr: 127.0.0.1:$MIRROR_PORT}
auth:
  token:
    realm: $MIRROR_ISSUER_REALM
    service: $MIRROR_ISSUER_SERVICE
    issuer: $MIRROR_ISSUER_NAME
    rootcertbundle: $MIRROR_ISSUER_CERT
EOF
start_bg hub docker-registry serve "$E2E_DIR/hub/config.yml"
start_bg mirror docker-registry serve "$E2E_DIR/mirror/config.yml"
start_bg team docker-registry serve "$E2E_DIR/team/config.yml"
start_bg open docker-registry serve "$E2E_DIR/open/config.yml"
BLOBS_LOG="$E2E_DIR/blobs.log"
blob_args=(--port "$BLOBS_PORT" --root "$HUB_DATA" --log "$BLOBS_LOG")
[[ "${E2E_BLOBS_ALLOW_AUTH:-0}" == 1 ]] || blob_args+=(--reject-authorization)
start_bg blobs "$PY" "$HERE/blob_server.py" "${blob_args[@]}"
start_bg blackhole "$PY" "$HERE/blackhole.py" --port "$BLACKHOLE_PORT"
FAKE_LOG="$E2E_DIR/fake.log"
: >"$FAKE_LOG"
start_bg fake_bare "$PY" "$HERE/fake_upstream.py" --port "$FAKE_BARE_PORT" --mode bare --log "$FAKE_LOG"
start_bg fake_quirky "$PY" "$HERE/fake_upstream.py" --port "$FAKE_QUIRKY_PORT" --mode quirky --log "$FAKE_LOG" \
  --realm "$QUIRKY_ISSUER_REALM" --service "$QUIRKY_ISSUER_SERVICE" --cert "$QUIRKY_ISSUER_CERT"
start_bg fake_broken "$PY" "$HERE/fake_upstream.py" --port "$FAKE_BROKEN_PORT" --mode broken --log "$FAKE_LOG"
SEARCH_LOG="$E2E_DIR/search.log"
: >"$SEARCH_LOG"
start_bg search "$PY" "$HERE/search_server.py" --port "$SEARCH_PORT" --log "$SEARCH_LOG"
FAULT_LOG="$E2E_DIR/faults.log"
: >"$FAULT_LOG"
start_bg faults "$PY" "$HERE/fault_upstream.py" --port "$FAULTS_PORT" --mode faults --log "$FAULT_LOG"
start_bg token_down "$PY" "$HERE/fault_upstream.py" --port "$TOKEN_DOWN_PORT" --mode token-down \
  --down-realm "http://127.0.0.1:$DOWN_PORT/token" --log "$FAULT_LOG"
start_bg token_junk "$PY" "$HERE/fault_upstream.py" --port "$TOKEN_JUNK_PORT" --mode token-junk --log "$FAULT_LOG"
start_bg token_file "$PY" "$HERE/fault_upstream.py" --port "$TOKEN_FILE_PORT" --mode token-file --log "$FAULT_LOG"
start_bg wrong "$PY" "$HERE/fault_upstream.py" --port "$WRONG_PORT" --mode wrong --log "$FAULT_LOG"

wait_ready issuer "$READY_TIMEOUT" http_answers "http://127.0.0.1:$ISSUER_PORT/token?service=$ISSUER_SERVICE"
wait_ready team_issuer "$READY_TIMEOUT" http_answers "http://127.0.0.1:$TEAM_ISSUER_PORT/token?service=$TEAM_ISSUER_SERVICE"
wait_ready quirky_issuer "$READY_TIMEOUT" http_answers "http://127.0.0.1:$QUIRKY_ISSUER_PORT/token?service=$QUIRKY_ISSUER_SERVICE"
wait_ready mirror_issuer "$READY_TIMEOUT" http_answers "http://127.0.0.1:$MIRROR_ISSUER_PORT/token?service=$MIRROR_ISSUER_SERVICE"
wait_ready mirror "$READY_TIMEOUT" http_answers "http://127.0.0.1:$MIRROR_PORT/v2/"
wait_ready hub "$READY_TIMEOUT" http_answers "http://127.0.0.1:$HUB_PORT/v2/"
wait_ready team "$READY_TIMEOUT" http_answers "http://127.0.0.1:$TEAM_PORT/v2/"
wait_ready open "$READY_TIMEOUT" http_answers "http://127.0.0.1:$OPEN_PORT/v2/"
wait_ready blobs "$READY_TIMEOUT" http_answers "http://127.0.0.1:$BLOBS_PORT/"
wait_ready blackhole "$READY_TIMEOUT" bash -c "exec 3<>/dev/tcp/127.0.0.1/$BLACKHOLE_PORT"
wait_ready fake_bare "$READY_TIMEOUT" bash -c "exec 3<>/dev/tcp/127.0.0.1/$FAKE_BARE_PORT"
wait_ready search "$READY_TIMEOUT" bash -c "exec 3<>/dev/tcp/127.0.0.1/$SEARCH_PORT"
wait_ready fake_quirky "$READY_TIMEOUT" bash -c "exec 3<>/dev/tcp/127.0.0.1/$FAKE_QUIRKY_PORT"
wait_ready fake_broken "$READY_TIMEOUT" bash -c "exec 3<>/dev/tcp/127.0.0.1/$FAKE_BROKEN_PORT"
for f in faults:$FAULTS_PORT token_down:$TOKEN_DOWN_PORT token_junk:$TOKEN_JUNK_PORT token_file:$TOKEN_FILE_PORT wrong:$WRONG_PORT; do
  wait_ready "${f%%:*}" "$READY_TIMEOUT" bash -c "exec 3<>/dev/tcp/127.0.0.1/${f#*:}"
done
log "issuers, hub, open, team, blobs, blackhole and fakes are up ($(elapsed)s)"

# --- 4. test images: OCI layouts (cached), pushed to both registries ----------------------
IMAGES="$E2E_DIR/images"
"$PY" "$HERE/make_images.py" "$IMAGES" | sed 's/^/up: /'

push_all() {  # port [creds]
  local port="$1"; shift
  local c=(skopeo copy -q --retry-times 2 --dest-tls-verify=false "$@")
  "${c[@]}" --all "oci:$IMAGES/hello:latest" "docker://127.0.0.1:$port/library/hello:latest"
  "${c[@]}" --all --format v2s2 "oci:$IMAGES/hello:latest" "docker://127.0.0.1:$port/library/hello:v2s2"
  "${c[@]}" "oci:$IMAGES/multi:latest" "docker://127.0.0.1:$port/library/multi:latest"
  "${c[@]}" "oci:$IMAGES/big:latest" "docker://127.0.0.1:$port/library/big:latest"
}
push_private() {  # to the hub, as alice
  skopeo copy -q --retry-times 2 --dest-tls-verify=false --dest-creds "$TEST_USER:$TEST_PASSWORD" \
    --all "oci:$IMAGES/hello:latest" "docker://127.0.0.1:$HUB_PORT/${PRIVATE_PREFIX}hello:latest"
}
push_team() {  # as bob, the team registry's own user
  local c=(skopeo copy -q --retry-times 2 --dest-tls-verify=false --dest-creds "$TEAM_USER:$TEAM_PASSWORD")
  "${c[@]}" --all "oci:$IMAGES/hello:latest" "docker://127.0.0.1:$TEAM_PORT/team/app:latest"
  "${c[@]}" "oci:$IMAGES/multi:latest" "docker://127.0.0.1:$TEAM_PORT/${PRIVATE_PREFIX}app:latest"
}
log "pushing library/{hello:latest,hello:v2s2,multi:latest,big:latest} to :$HUB_PORT and :$OPEN_PORT, ${PRIVATE_PREFIX}hello:latest to :$HUB_PORT, team/app:latest and ${PRIVATE_PREFIX}app:latest to :$TEAM_PORT"
{ push_all "$HUB_PORT" --dest-creds "$TEST_USER:$TEST_PASSWORD" && push_private; } >"$E2E_DIR/logs/push-hub.out" 2>&1 &
push_hub=$!
push_all "$OPEN_PORT" >"$E2E_DIR/logs/push-open.out" 2>&1 &
push_open=$!
push_team >"$E2E_DIR/logs/push-team.out" 2>&1 &
push_team=$!
# the mirror holds the hub's public images, never its private ones
push_all "$MIRROR_PORT" --dest-creds "$MIRROR_USER:$MIRROR_PASSWORD" >"$E2E_DIR/logs/push-mirror.out" 2>&1 &
push_mirror=$!
wait "$push_hub" || { cat "$E2E_DIR/logs/push-hub.out" >&2; die "pushing to the hub registry failed"; }
wait "$push_open" || { cat "$E2E_DIR/logs/push-open.out" >&2; die "pushing to the open registry failed"; }
wait "$push_team" || { cat "$E2E_DIR/logs/push-team.out" >&2; die "pushing to the team registry failed"; }
wait "$push_mirror" || { cat "$E2E_DIR/logs/push-mirror.out" >&2; die "pushing to the mirror registry failed"; }

raw_manifest() {  # port repo:tag [creds]
  local port="$1" ref="$2"; shift 2
  skopeo inspect --raw --tls-verify=false "$@" "docker://127.0.0.1:$port/$ref"
}
digest_of() {  # repo:tag -> digest, checked equal on both registries
  local ref="$1" a b
  a="sha256:$(raw_manifest "$OPEN_PORT" "$ref" | sha256sum | cut -d' ' -f1)"
  b="sha256:$(raw_manifest "$HUB_PORT" "$ref" --creds "$TEST_USER:$TEST_PASSWORD" | sha256sum | cut -d' ' -f1)"
  [[ "$a" == "$b" ]] || die "$ref has digest $a on :$OPEN_PORT but $b on :$HUB_PORT"
  echo "$a"
}
DIGEST_HELLO_LATEST="$(digest_of library/hello:latest)"
DIGEST_HELLO_V2S2="$(digest_of library/hello:v2s2)"
DIGEST_MULTI="$(digest_of library/multi:latest)"
DIGEST_BIG="$(digest_of library/big:latest)"
team_digest="sha256:$(raw_manifest "$TEAM_PORT" team/app:latest --creds "$TEAM_USER:$TEAM_PASSWORD" | sha256sum | cut -d' ' -f1)"
[[ "$team_digest" == "$DIGEST_HELLO_LATEST" ]] || die "team/app:latest has digest $team_digest, not $DIGEST_HELLO_LATEST"
hello_index="$(raw_manifest "$OPEN_PORT" library/hello:latest)"
hello_list="$(raw_manifest "$OPEN_PORT" library/hello:v2s2)"
arch_digest() { jq -r --arg a "$2" '.manifests[] | select(.platform.architecture == $a) | .digest' <<<"$1"; }
DIGEST_HELLO_AMD64="$(arch_digest "$hello_index" amd64)"
DIGEST_HELLO_ARM64="$(arch_digest "$hello_index" arm64)"
DIGEST_HELLO_V2S2_AMD64="$(arch_digest "$hello_list" amd64)"
DIGEST_HELLO_V2S2_ARM64="$(arch_digest "$hello_list" arm64)"
blob_of() { jq -r "$2" "$IMAGES/$1/blobs/sha256/${3#sha256:}"; }
BLOB_HELLO_AMD64_LAYER="$(blob_of hello '.layers[0].digest' "$DIGEST_HELLO_AMD64")"
BLOB_HELLO_AMD64_CONFIG="$(blob_of hello '.config.digest' "$DIGEST_HELLO_AMD64")"
BLOB_BIG_LAYER="$(blob_of big '.layers[0].digest' "$DIGEST_BIG")"
BLOB_BIG_LAYER_SIZE="$(blob_of big '.layers[0].size' "$DIGEST_BIG")"
for v in DIGEST_HELLO_LATEST DIGEST_HELLO_V2S2 DIGEST_MULTI DIGEST_BIG DIGEST_HELLO_AMD64 \
         DIGEST_HELLO_ARM64 DIGEST_HELLO_V2S2_AMD64 DIGEST_HELLO_V2S2_ARM64 \
         BLOB_HELLO_AMD64_LAYER BLOB_HELLO_AMD64_CONFIG BLOB_BIG_LAYER; do
  [[ "${!v}" =~ ^sha256:[0-9a-f]{64}$ ]] || die "could not determine $v (got '${!v}')"
done
log "images pushed ($(elapsed)s)"

# --- 5. workerd serving the worker build ------------------------------------------------------
if [[ -n "$WORKER_SRC" ]]; then
  # Copy the build next to the config (capnp `embed` paths are relative to the config).
  rm -rf "$E2E_DIR/worker"
  mkdir -p "$E2E_DIR/worker"
  (cd "$WORKER_SRC" && find . -path ./worker -prune -o -type f \( -name '*.js' -o -name '*.mjs' -o -name '*.wasm' \) -print) \
    | sed 's#^\./##' | sort >"$E2E_DIR/worker.modules"
  modules=""
  while IFS= read -r f; do
    mkdir -p "$E2E_DIR/worker/$(dirname "$f")"
    cp "$WORKER_SRC/$f" "$E2E_DIR/worker/$f"
    case "$f" in
      *.wasm) entry="    (name = \"$f\", wasm = embed \"worker/$f\")," ;;
      *)      entry="    (name = \"$f\", esModule = embed \"worker/$f\")," ;;
    esac
    if [[ "$f" == index.js ]]; then modules="$entry"$'\n'"$modules"; else modules+="$entry"$'\n'; fi
  done <"$E2E_DIR/worker.modules"
  WORKERD_CONFIG="$E2E_DIR/workerd.capnp"
  ROUTES_JSON="${E2E_ROUTES_JSON:-$DEFAULT_ROUTES}"
  jq -e . >/dev/null <<<"$ROUTES_JSON" || die "E2E_ROUTES_JSON is not valid JSON"
  MODULES="$modules" ROUTES_JSON="$ROUTES_JSON" \
  CUSTOM_DOMAIN="${E2E_CUSTOM_DOMAIN:-example.test}" \
  UPSTREAM_TIMEOUT_MS="${E2E_UPSTREAM_TIMEOUT_MS:-2000}" LOG_LEVEL="${E2E_LOG_LEVEL:-debug}" \
  COMPAT_DATE="${E2E_COMPAT_DATE:-2026-04-01}" COMPAT_FLAGS="${E2E_COMPAT_FLAGS:-}" \
  EXTRA_BINDINGS="${E2E_EXTRA_BINDINGS:-}" \
  HTTPS_ADDR="127.0.0.1:$WORKER_HTTPS_PORT" HTTP_ADDR="127.0.0.1:$WORKER_HTTP_PORT" \
  "$PY" - "$HERE/workerd.capnp.in" "$WORKERD_CONFIG" <<'EOF'
import os, re, sys
def capnp_str(s):
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
raw = {"MODULES", "COMPAT_FLAGS", "EXTRA_BINDINGS"}
text = open(sys.argv[1]).read()
def sub(m):
    v = os.environ[m.group(1)]
    return v.rstrip("\n") if m.group(1) in raw else capnp_str(v)
names = ("MODULES", "COMPAT_DATE", "COMPAT_FLAGS", "CUSTOM_DOMAIN", "ROUTES_JSON",
         "UPSTREAM_TIMEOUT_MS", "LOG_LEVEL", "EXTRA_BINDINGS", "HTTPS_ADDR", "HTTP_ADDR")
out = re.sub(r"@(%s)@" % "|".join(names), sub, text)
left = re.findall(r"@[A-Z_]+@", out)
if left:
    sys.exit("workerd.capnp.in: unknown placeholders %s" % left)
open(sys.argv[2], "w").write(out)
EOF
  # the same bindings as JSON, for the tests that run the build under Miniflare
  jq -n --argjson routes "$ROUTES_JSON" --arg domain "${E2E_CUSTOM_DOMAIN:-example.test}" \
    --arg timeout "${E2E_UPSTREAM_TIMEOUT_MS:-2000}" --arg level "${E2E_LOG_LEVEL:-debug}" \
    '{CUSTOM_DOMAIN: $domain, ROUTES: $routes, UPSTREAM_TIMEOUT_MS: $timeout,
      PATH_ROUTING: "proxy.example.test", DEFAULT_REGISTRY: "hub.registry.test",
      LOG_LEVEL: $level}' >"$E2E_DIR/bindings.json"
  start_bg workerd "$WORKERD_BIN" serve --verbose "$WORKERD_CONFIG"
  wait_ready workerd "$READY_TIMEOUT" http_answers "http://127.0.0.1:$WORKER_HTTP_PORT/"
  wait_ready workerd "$READY_TIMEOUT" http_answers --cacert "$CA_FILE" "https://localhost:$WORKER_HTTPS_PORT/"
  WORKER_ENABLED=1
  log "workerd is up on https://127.0.0.1:$WORKER_HTTPS_PORT and http://127.0.0.1:$WORKER_HTTP_PORT serving $WORKER_SRC"
else
  log "E2E_NO_WORKER=1: not starting workerd"
fi

# --- 6. containerd + dockerd (E2E_DAEMONS=1 only) ----------------------------------------------
DAEMONS=0 CONTAINERD_SOCK="" CONTAINERD_CONFIG="" DOCKER_SOCK="" DOCKER_HOST_URL="" DOCKERD_CONFIG=""
if [[ "${E2E_DAEMONS:-0}" == 1 ]]; then
  CTRD="$E2E_DIR/containerd"
  rm -rf "$CTRD" "$E2E_DIR/docker"
  mkdir -p "$CTRD" "$E2E_DIR/docker"
  CONTAINERD_SOCK="$CTRD/containerd.sock"
  CONTAINERD_CONFIG="$CTRD/config.toml"
  cat >"$CONTAINERD_CONFIG" <<EOF
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CTRD/containerd.sock.ttrpc"
[debug]
  address = "$CTRD/debug.sock"
EOF
  start_bg containerd containerd --config "$CONTAINERD_CONFIG"
  wait_ready containerd $((READY_TIMEOUT * 3)) ctr --address "$CONTAINERD_SOCK" version
  DOCKER_SOCK="$E2E_DIR/docker.sock"
  DOCKER_HOST_URL="unix://$DOCKER_SOCK"
  DOCKERD_CONFIG="$E2E_DIR/docker/daemon.json"
  jq -n --arg host "$DOCKER_HOST_URL" --arg ctrd "$CONTAINERD_SOCK" --arg d "$E2E_DIR/docker" \
     --argjson mirrors "${E2E_DOCKER_MIRRORS:-[\"https://proxy.example.test:$WORKER_HTTPS_PORT\"]}" '{
      "storage-driver": "vfs", "iptables": false, "ip6tables": false, "ip-forward": false,
      "ip-masq": false, "bridge": "none", "hosts": [$host], "containerd": $ctrd,
      "data-root": ($d + "/root"), "exec-root": ($d + "/exec"), "pidfile": ($d + "/docker.pid"),
      "registry-mirrors": $mirrors, "max-concurrent-downloads": 3 }' >"$DOCKERD_CONFIG"
  # a proxy that refuses everything: if dockerd ever falls back from the mirror to the real
  # docker.io, the request dies here instead of leaving the machine
  start_bg dockerd env HTTPS_PROXY="http://127.0.0.1:$DOWN_PORT" HTTP_PROXY="http://127.0.0.1:$DOWN_PORT" \
    NO_PROXY="localhost,127.0.0.1,example.test" dockerd --config-file "$DOCKERD_CONFIG"
  wait_ready dockerd $((READY_TIMEOUT * 3)) env DOCKER_HOST="$DOCKER_HOST_URL" docker info
  DAEMONS=1
  log "containerd ($CONTAINERD_SOCK) and dockerd ($DOCKER_HOST_URL) are up"
fi

# --- 7. env file --------------------------------------------------------------------------------
{
  kv() { printf '%s=%q\n' "$1" "$2"; }
  kv E2E_DIR "$E2E_DIR"
  kv REPO "$REPO"
  kv CA_FILE "$CA_FILE"
  kv SERVER_CERT "$SERVER_CERT"
  kv SERVER_KEY "$SERVER_KEY"
  kv TEST_USER "$TEST_USER"
  kv TEST_PASSWORD "$TEST_PASSWORD"
  kv ISSUER_PORT "$ISSUER_PORT"
  kv ISSUER_URL "http://127.0.0.1:$ISSUER_PORT/token"
  kv ISSUER_REALM "$ISSUER_REALM"
  kv ISSUER_SERVICE "$ISSUER_SERVICE"
  kv ISSUER_NAME "$ISSUER_NAME"
  kv ISSUER_KEY "$ISSUER_KEY"
  kv ISSUER_CERT "$ISSUER_CERT"
  kv ISSUER_LOG "$ISSUER_LOG"
  kv ISSUER_PID "$PID_ISSUER"
  kv TEAM_ISSUER_PORT "$TEAM_ISSUER_PORT"
  kv TEAM_ISSUER_REALM "$TEAM_ISSUER_REALM"
  kv TEAM_ISSUER_SERVICE "$TEAM_ISSUER_SERVICE"
  kv TEAM_ISSUER_NAME "$TEAM_ISSUER_NAME"
  kv TEAM_ISSUER_CERT "$TEAM_ISSUER_CERT"
  kv TEAM_ISSUER_LOG "$TEAM_ISSUER_LOG"
  kv QUIRKY_ISSUER_REALM "$QUIRKY_ISSUER_REALM"
  kv QUIRKY_ISSUER_SERVICE "$QUIRKY_ISSUER_SERVICE"
  kv QUIRKY_ISSUER_LOG "$QUIRKY_ISSUER_LOG"
  kv TEAM_PORT "$TEAM_PORT"
  kv TEAM_URL "http://127.0.0.1:$TEAM_PORT"
  kv TEAM_DATA "$TEAM_DATA"
  kv TEAM_PID "$PID_TEAM"
  kv TEAM_USER "$TEAM_USER"
  kv TEAM_PASSWORD "$TEAM_PASSWORD"
  kv PRIVATE_PREFIX "$PRIVATE_PREFIX"
  kv HUB_PORT "$HUB_PORT"
  kv HUB_URL "http://127.0.0.1:$HUB_PORT"
  kv HUB_DATA "$HUB_DATA"
  kv HUB_PID "$PID_HUB"
  kv OPEN_PORT "$OPEN_PORT"
  kv OPEN_URL "http://127.0.0.1:$OPEN_PORT"
  kv OPEN_DATA "$OPEN_DATA"
  kv OPEN_PID "$PID_OPEN"
  kv BLOBS_PORT "$BLOBS_PORT"
  kv BLOBS_BASEURL "$BLOBS_BASEURL"
  kv BLOBS_LOG "$BLOBS_LOG"
  kv BLOBS_PID "$PID_BLOBS"
  kv BLOBS_REJECT_AUTH "$([[ "${E2E_BLOBS_ALLOW_AUTH:-0}" == 1 ]] && echo 0 || echo 1)"
  kv BLACKHOLE_PORT "$BLACKHOLE_PORT"
  kv BLACKHOLE_PID "$PID_BLACKHOLE"
  kv DOWN_PORT "$DOWN_PORT"
  kv FAKE_LOG "$FAKE_LOG"
  kv SEARCH_LOG "$SEARCH_LOG"
  kv SEARCH_URL "http://127.0.0.1:$SEARCH_PORT"
  kv FAKE_BARE_PORT "$FAKE_BARE_PORT"
  kv FAULT_LOG "$FAULT_LOG"
  kv FAULTS_PORT "$FAULTS_PORT"
  kv WRONG_URL "http://127.0.0.1:$WRONG_PORT"
  kv MIRROR_URL "http://127.0.0.1:$MIRROR_PORT"
  kv MIRROR_DATA "$MIRROR_DATA"
  kv MIRROR_ISSUER_LOG "$MIRROR_ISSUER_LOG"
  kv MIRROR_ISSUER_NAME "$MIRROR_ISSUER_NAME"
  kv WORKER_ENABLED "$WORKER_ENABLED"
  kv WORKER_SRC "$WORKER_SRC"
  kv WORKER_HTTPS_PORT "$WORKER_HTTPS_PORT"
  kv WORKER_HTTP_PORT "$WORKER_HTTP_PORT"
  kv WORKERD_BIN "$WORKERD_BIN"
  kv WORKERD_CONFIG "$WORKERD_CONFIG"
  kv WORKERD_LOG "$E2E_DIR/logs/workerd.out"
  kv WORKERD_PID "${PID_WORKERD:-}"
  kv BINDINGS_FILE "$E2E_DIR/bindings.json"
  kv HUB_LOG "$E2E_DIR/logs/hub.out"
  kv TEAM_LOG "$E2E_DIR/logs/team.out"
  kv OPEN_LOG "$E2E_DIR/logs/open.out"
  kv DIGEST_HELLO_LATEST "$DIGEST_HELLO_LATEST"
  kv DIGEST_HELLO_AMD64 "$DIGEST_HELLO_AMD64"
  kv DIGEST_HELLO_ARM64 "$DIGEST_HELLO_ARM64"
  kv DIGEST_HELLO_V2S2 "$DIGEST_HELLO_V2S2"
  kv DIGEST_HELLO_V2S2_AMD64 "$DIGEST_HELLO_V2S2_AMD64"
  kv DIGEST_HELLO_V2S2_ARM64 "$DIGEST_HELLO_V2S2_ARM64"
  kv DIGEST_MULTI "$DIGEST_MULTI"
  kv DIGEST_BIG "$DIGEST_BIG"
  kv BLOB_HELLO_AMD64_LAYER "$BLOB_HELLO_AMD64_LAYER"
  kv BLOB_HELLO_AMD64_CONFIG "$BLOB_HELLO_AMD64_CONFIG"
  kv BLOB_BIG_LAYER "$BLOB_BIG_LAYER"
  kv BLOB_BIG_LAYER_SIZE "$BLOB_BIG_LAYER_SIZE"
  kv IMAGES_DIR "$IMAGES"
  kv DAEMONS "$DAEMONS"
  kv CONTAINERD_SOCK "$CONTAINERD_SOCK"
  kv CONTAINERD_CONFIG "$CONTAINERD_CONFIG"
  kv CONTAINERD_PID "${PID_CONTAINERD:-}"
  kv DOCKER_SOCK "$DOCKER_SOCK"
  kv DOCKER_HOST_URL "$DOCKER_HOST_URL"
  kv DOCKERD_CONFIG "$DOCKERD_CONFIG"
  kv DOCKERD_PID "${PID_DOCKERD:-}"
} >"$E2E_DIR/env.tmp"
mv "$E2E_DIR/env.tmp" "$E2E_DIR/env"
log "ready in $(elapsed)s; state: $E2E_DIR/env"
