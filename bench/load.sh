#!/usr/bin/env bash
# The load command: many registry clients at once through the release build in bare workerd,
# in front of the end-to-end harness (a token-auth registry with blob redirects to a second
# host), every manifest and blob checked against its digest. Not a timed test: it prints
# failures (the goal: none), requests/s, MB/s and workerd's memory.
#
#   bash bench/load.sh                      # 200 clients at once, then 3 minutes of mixed pulls
#   bash bench/load.sh --clients 50 --soak-seconds 30 --no-build
#   bash bench/load.sh --soaks 3         # three soaks in a row: does memory keep growing?
#
# The burst: each client pulls library/multi (three layers) and library/load (a 200 MiB
# layer). The soak: --soak-clients clients pull images, tag lists and manifest HEADs, then
# 10 s of idle time; memory is read before, at peak, after each phase and after the idle time.
# Uses the harness's ports (5000-5023, 8080, 8443), so not while tests/harness/up.sh runs;
# state in $LOAD_DIR (default /tmp/rp-load). Needs `bash tests/setup.sh` once.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"

BUILD=1 LOAD_ARGS=()
while (($#)); do
  case "$1" in
    --no-build) BUILD=0; shift ;;
    --clients|--soak-seconds|--soak-clients|--idle|--soaks) LOAD_ARGS+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "load: unknown argument $1" >&2; exit 2 ;;
  esac
done

export E2E_DIR="${LOAD_DIR:-/tmp/rp-load}"
if ((BUILD)); then
  echo "load: building the release Worker (scripts/build.sh)" >&2
  bash scripts/build.sh >"${TMPDIR:-/tmp}/rp-load-build.log" 2>&1 \
    || { tail -20 "${TMPDIR:-/tmp}/rp-load-build.log" >&2; exit 1; }
fi
trap 'bash tests/harness/down.sh >/dev/null 2>&1 || true' EXIT
# the defaults of a deployment: 30 s to an upstream's headers, a log line per request
E2E_UPSTREAM_TIMEOUT_MS=30000 E2E_LOG_LEVEL=info bash tests/harness/up.sh >&2
# shellcheck disable=SC1091
source "$E2E_DIR/env"
echo "load: pushing library/load (a 200 MiB layer) to the hub registry" >&2
/usr/bin/python3 bench/bench.py prepare --registry "$HUB_URL" --issuer "$ISSUER_URL" \
  --service "$ISSUER_SERVICE" --user "$TEST_USER" --password "$TEST_PASSWORD" \
  --repo library/load --blob "200mib:$((200 * 1024 * 1024))" \
  --digest-cache "$E2E_DIR/digests.json" >/dev/null
echo "load: running (workerd pid $WORKERD_PID)" >&2
/usr/bin/python3 bench/load.py --proxy "https://docker.example.test:$WORKER_HTTPS_PORT" \
  --cafile "$CA_FILE" --pid "$WORKERD_PID" "${LOAD_ARGS[@]}"
