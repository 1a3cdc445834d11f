#!/usr/bin/env bash
# Pulls through the proxy as the upstream sees them: a multi-layer image pulled cold and warm
# with skopeo through this Worker (under Miniflare, with a real Cache API), through the original
# Worker and from the registry alone, with a fixed delay added to every upstream request.
# Prints upstream requests, bytes, manifest GETs (Docker Hub's pulls), blob GETs and seconds
# per pull, and the goals of issue 12. Not a timed test.
#
#   bash bench/pulls.sh                          # 50 ms per upstream request, 3 pulls each
#   bash bench/pulls.sh --delay-ms 0 --pulls 2 --no-build
#
# Uses the end-to-end harness (ports 5000-5023; state in $PULLS_DIR, default /tmp/rp-pulls)
# and port 443 (the original's realm has no port), so not while tests/harness/up.sh runs.
# Needs `bash tests/setup.sh` once.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"

BUILD=1 ARGS=() BIG_MIB=16
BASELINE="${BASELINE:-../shared/seed/original-worker.js}"
while (($#)); do
  case "$1" in
    --no-build) BUILD=0; shift ;;
    --delay-ms|--pulls) ARGS+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
    --big-mib) BIG_MIB="${2:?}"; shift 2 ;;
    --baseline) BASELINE="${2:?}"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "pulls: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -f "$BASELINE" ]] && ARGS+=(--baseline "$BASELINE") || echo "pulls: no $BASELINE, no original" >&2

export E2E_DIR="${PULLS_DIR:-/tmp/rp-pulls}"
if ((BUILD)); then
  echo "pulls: building the release Worker (scripts/build.sh)" >&2
  bash scripts/build.sh >"${TMPDIR:-/tmp}/rp-pulls-build.log" 2>&1 \
    || { tail -20 "${TMPDIR:-/tmp}/rp-pulls-build.log" >&2; exit 1; }
fi
trap 'bash tests/harness/down.sh >/dev/null 2>&1 || true' EXIT
# the original follows blob redirects with the client's Authorization: let the blob host take it
E2E_BLOBS_ALLOW_AUTH=1 E2E_NO_WORKER=1 bash tests/harness/up.sh >&2
# shellcheck disable=SC1091
source "$E2E_DIR/env"
image="library/pulls$(date +%s)"
layout="$E2E_DIR/pulls-image"
rm -rf "$layout"
/usr/bin/python3 tests/harness/make_images.py --unique "$image" "$layout" "$BIG_MIB"
skopeo copy --quiet --dest-tls-verify=false --dest-creds "$TEST_USER:$TEST_PASSWORD" \
  "oci:$layout" "docker://127.0.0.1:$HUB_PORT/$image:latest"
digest="$(jq -r '.manifests[0].digest' "$layout/index.json")"
mkdir -p "$E2E_DIR/pulls"
/usr/bin/python3 bench/pulls.py --repo "$PWD" --build "$PWD/build" --image "$image" \
  --digest "$digest" --workdir "$E2E_DIR/pulls" --cert "$SERVER_CERT" --key "$SERVER_KEY" "${ARGS[@]}"
