#!/usr/bin/env bash
# A slow client and a large layer (under Miniflare: a real Cache API and R2): a client reads
# it at 2 MB/s while the proxy keeps it (with a bucket, or the Cache API raised as on the paid
# plan; with the default vars a layer this large passes unkept); prints workerd's memory
# before, at peak and after, whether the layer was kept, and where the next answer came from.
# Not a timed test.
#
#   bash bench/slow.sh                    # 256 MiB at 2 MB/s (about two minutes)
#   bash bench/slow.sh --mib 64 --rate 4M --no-build
#   bash bench/slow.sh --cache off        # the same client, nothing kept: the runtime's share
#   bash bench/slow.sh --mib 1024 --bucket  # kept in an R2 bucket (Miniflare's, on disk)
#   bash bench/slow.sh --var CACHE_VERIFY_MAX_BYTES=512000000  # kept in the Cache API (paid plan)
#
# Uses the end-to-end harness (ports 5000-5023; state in $SLOW_DIR, default /tmp/rp-slow), so
# not while tests/harness/up.sh runs. Needs `bash tests/setup.sh` once.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"

BUILD=1 MIB=256 RATE=2M CACHE=on BUCKET=() VARS=()
while (($#)); do
  case "$1" in
    --no-build) BUILD=0; shift ;;
    --mib) MIB="${2:?}"; shift 2 ;;
    --rate) RATE="${2:?}"; shift 2 ;;
    --cache) CACHE="${2:?}"; shift 2 ;;
    --bucket) BUCKET=(--bucket); shift ;;
    --var) VARS+=(--var "${2:?}"); shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "slow: unknown argument $1" >&2; exit 2 ;;
  esac
done
export E2E_DIR="${SLOW_DIR:-/tmp/rp-slow}"
if ((BUILD)); then
  bash scripts/build.sh >"${TMPDIR:-/tmp}/rp-slow-build.log" 2>&1 \
    || { tail -20 "${TMPDIR:-/tmp}/rp-slow-build.log" >&2; exit 1; }
fi
trap 'bash tests/harness/down.sh >/dev/null 2>&1 || true' EXIT
E2E_NO_WORKER=1 bash tests/harness/up.sh >&2
# shellcheck disable=SC1091
source "$E2E_DIR/env"
echo "slow: pushing a ${MIB} MiB blob to library/slow" >&2
digest="$(/usr/bin/python3 bench/bench.py prepare --registry "$HUB_URL" --issuer "$ISSUER_URL" \
  --service "$ISSUER_SERVICE" --user "$TEST_USER" --password "$TEST_PASSWORD" \
  --repo library/slow --blob "slow:$((MIB * 1024 * 1024))" \
  --digest-cache "$E2E_DIR/digests.json" | sed -n 's/^BLOB_SLOW_DIGEST=//p')"
[[ -n "$digest" ]] || { echo "slow: no digest from bench.py prepare" >&2; exit 1; }
mkdir -p "$E2E_DIR/slow"
/usr/bin/python3 bench/slow.py --repo "$PWD" --build "$PWD/build" --cert "$SERVER_CERT" \
  --key "$SERVER_KEY" --url-path "/v2/library/slow/blobs/$digest" --digest "$digest" \
  --size "$((MIB * 1024 * 1024))" --rate "$RATE" --cache "$CACHE" --workdir "$E2E_DIR/slow" \
  "${BUCKET[@]}" "${VARS[@]}"
