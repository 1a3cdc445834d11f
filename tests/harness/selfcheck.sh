#!/usr/bin/env bash
# Checks that the environment of up.sh works, without involving the proxy (except the last
# check, which only needs *a* worker that routes open.example.test to the open registry).
#
#   bash tests/harness/up.sh && bash tests/harness/selfcheck.sh
#
# tests/run.sh runs it once the harness is up, before the end-to-end tests.
set -euo pipefail

E2E_DIR="${E2E_DIR:-/tmp/rp-e2e}"
[[ -f "$E2E_DIR/env" ]] || { echo "selfcheck: no $E2E_DIR/env: run up.sh first" >&2; exit 1; }
# shellcheck disable=SC1091
source "$E2E_DIR/env"
export SSL_CERT_FILE="$CA_FILE"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
passed=0 failed=0
ok() { printf 'selfcheck: ok   %s\n' "$1"; passed=$((passed + 1)); }
bad() { printf 'selfcheck: FAIL %s\n' "$1"; failed=$((failed + 1)); }
check() { local name="$1"; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }

hdr() { grep -i "^$2:" "$1" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
sha_of() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }
ACCEPT='application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'

# token flow by hand: 401 challenge -> realm -> token -> 200
token_flow() {
  local code
  code="$(curl -s -o /dev/null -D "$TMP/h1" -w '%{http_code}' "$HUB_URL/v2/library/hello/manifests/latest")"
  [[ "$code" == 401 ]] || return 1
  local chal realm service scope
  chal="$(hdr "$TMP/h1" Www-Authenticate)"
  realm="$(sed -E 's/.*realm="([^"]*)".*/\1/' <<<"$chal")"
  service="$(sed -E 's/.*service="([^"]*)".*/\1/' <<<"$chal")"
  scope="$(sed -E 's/.*scope="([^"]*)".*/\1/' <<<"$chal")"
  [[ "$realm" == "$ISSUER_REALM" && "$service" == "$ISSUER_SERVICE" && "$scope" == repository:library/hello:pull ]] || return 1
  local tok
  tok="$(curl -sf -G "$realm" --data-urlencode "service=$service" --data-urlencode "scope=$scope" | jq -r .token)"
  code="$(curl -s -o "$TMP/m" -D "$TMP/h2" -w '%{http_code}' -H "Authorization: Bearer $tok" -H "Accept: $ACCEPT" "$HUB_URL/v2/library/hello/manifests/latest")"
  [[ "$code" == 200 && "$(hdr "$TMP/h2" Docker-Content-Digest)" == "$DIGEST_HELLO_LATEST" && "$(sha_of "$TMP/m")" == "$DIGEST_HELLO_LATEST" ]]
}
check "hub: 401 challenge -> anonymous token -> manifest 200 with the right digest" token_flow

issuer_rules() {
  local c
  c="$(curl -s -o /dev/null -w '%{http_code}' -u alice:nope "$ISSUER_URL?service=$ISSUER_SERVICE&scope=repository:library/hello:pull")"
  [[ "$c" == 401 ]] || { echo "wrong password gave $c"; return 1; }
  c="$(curl -s -o /dev/null -w '%{http_code}' "$ISSUER_URL?service=other&scope=repository:library/hello:pull")"
  [[ "$c" == 400 ]] || { echo "wrong service gave $c"; return 1; }
  local claims
  claims="$(curl -sf "$ISSUER_URL?service=$ISSUER_SERVICE&scope=repository:library/hello:pull,push" | jq -r .token)"
  claims="$(/usr/bin/python3 -c 'import sys, jwt, json; print(json.dumps(jwt.decode(sys.argv[1], options={"verify_signature": False})["access"]))' "$claims")"
  [[ "$claims" == '[{"type": "repository", "name": "library/hello", "actions": ["pull"]}]' ]] \
    || { echo "anonymous pull,push gave $claims"; return 1; }
  claims="$(curl -sf -u "$TEST_USER:$TEST_PASSWORD" "$ISSUER_URL?service=$ISSUER_SERVICE&scope=repository:library/hello:pull,push%20repository:library/multi:delete" | jq -r .token)"
  "$PY_JWT" - "$claims" "$ISSUER_CERT" "$ISSUER_SERVICE" "$ISSUER_NAME" <<'EOF' || return 1
import sys, jwt
from cryptography import x509
cert = x509.load_pem_x509_certificate(open(sys.argv[2], "rb").read())
c = jwt.decode(sys.argv[1], cert.public_key(), algorithms=["ES256"], audience=sys.argv[3], issuer=sys.argv[4])
assert c["sub"] == "alice", c
assert c["access"] == [{"type": "repository", "name": "library/hello", "actions": ["pull", "push"]},
                       {"type": "repository", "name": "library/multi", "actions": ["delete"]}], c
EOF
  local r rt
  r="$(curl -sf -d grant_type=password -d username="$TEST_USER" -d password="$TEST_PASSWORD" -d service="$ISSUER_SERVICE" -d client_id=selfcheck -d scope=repository:library/hello:pull "$ISSUER_URL")"
  rt="$(jq -r .refresh_token <<<"$r")"
  [[ -n "$rt" && "$rt" != null ]] || { echo "no refresh token: $r"; return 1; }
  r="$(curl -sf -d grant_type=refresh_token -d refresh_token="$rt" -d service="$ISSUER_SERVICE" -d client_id=selfcheck -d scope=repository:library/hello:pull "$ISSUER_URL")"
  [[ "$(jq -r .access_token <<<"$r")" == ey* ]] || { echo "refresh grant: $r"; return 1; }
  grep -q '"form_has_password": true' "$ISSUER_LOG" && ! grep -q "$TEST_PASSWORD" "$ISSUER_LOG"
}
PY_JWT=/usr/bin/python3
check "issuer: 401 bad password, 400 bad service, anonymous=pull only, signed claims, POST password/refresh grants, log without secrets" issuer_rules

check "hub: skopeo inspect with --creds" \
  bash -c "[[ \$(skopeo inspect --tls-verify=false --creds '$TEST_USER:$TEST_PASSWORD' --raw docker://127.0.0.1:$HUB_PORT/library/multi:latest | sha256sum | cut -d' ' -f1) == ${DIGEST_MULTI#sha256:} ]]"
check "hub: skopeo inspect anonymously" \
  bash -c "skopeo inspect --tls-verify=false --override-arch arm64 docker://127.0.0.1:$HUB_PORT/library/hello:latest | jq -e '.Architecture == \"arm64\"' >/dev/null"

blob_redirect() {
  local blob="$1" tok code loc
  tok="$(curl -sf "$ISSUER_URL?service=$ISSUER_SERVICE&scope=repository:library/big:pull" | jq -r .token)"
  code="$(curl -s -o /dev/null -D "$TMP/hb" -w '%{http_code}' -H "Authorization: Bearer $tok" "$HUB_URL/v2/library/big/blobs/$blob")"
  loc="$(hdr "$TMP/hb" Location)"
  [[ "$code" == 307 && "$loc" == "${BLOBS_BASEURL}docker/registry/v2/blobs/sha256/${blob:7:2}/${blob#sha256:}/data" ]] || { echo "$code $loc"; return 1; }
  curl -sf -o "$TMP/blob" "$loc" || return 1
  [[ "$(sha_of "$TMP/blob")" == "$blob" ]] || return 1
  # the blob host refuses requests carrying Authorization, as S3/R2 do
  if [[ "$BLOBS_REJECT_AUTH" == 1 ]]; then
    [[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" "$loc")" == 400 ]] || return 1
  fi
  # ranges
  [[ "$(curl -sf -r 0-9 "$loc" | wc -c)" == 10 ]]
}
check "hub: blob GET -> 307 to blobs.example.test:5004, bytes match the digest" blob_redirect "$BLOB_BIG_LAYER"

# every token registry has a token service of its own: a token of one is refused by another
own_tokens_only() {
  local scope=repository:team/app:pull team hub code
  team="$(curl -sf "http://127.0.0.1:$TEAM_ISSUER_PORT/token?service=$TEAM_ISSUER_SERVICE&scope=$scope" | jq -r .token)"
  hub="$(curl -sf "$ISSUER_URL?service=$ISSUER_SERVICE&scope=$scope" | jq -r .token)"
  code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $team" -H "Accept: $ACCEPT" "$TEAM_URL/v2/team/app/manifests/latest")"
  [[ "$code" == 200 ]] || { echo "team token: $code"; return 1; }
  code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $hub" -H "Accept: $ACCEPT" "$TEAM_URL/v2/team/app/manifests/latest")"
  [[ "$code" == 401 ]] || { echo "hub token at the team registry: $code"; return 1; }
  # the team registry's private names: nothing for anonymous clients, pull for its own user
  team="$(curl -sf "http://127.0.0.1:$TEAM_ISSUER_PORT/token?service=$TEAM_ISSUER_SERVICE&scope=repository:${PRIVATE_PREFIX}app:pull" | jq -r .token)"
  code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $team" "$TEAM_URL/v2/${PRIVATE_PREFIX}app/manifests/latest")"
  [[ "$code" == 401 ]] || { echo "anonymous private pull: $code"; return 1; }
  team="$(curl -sf -u "$TEAM_USER:$TEAM_PASSWORD" "http://127.0.0.1:$TEAM_ISSUER_PORT/token?service=$TEAM_ISSUER_SERVICE&scope=repository:${PRIVATE_PREFIX}app:pull" | jq -r .token)"
  code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $team" -H "Accept: $ACCEPT" "$TEAM_URL/v2/${PRIVATE_PREFIX}app/manifests/latest")"
  [[ "$code" == 200 ]] || { echo "bob's private pull: $code"; return 1; }
}
check "team: its own issuer's tokens only; private/ refuses anonymous clients" own_tokens_only

check "open: skopeo copy docker://127.0.0.1:$OPEN_PORT/library/hello:latest oci:" \
  skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$OPEN_PORT/library/hello:latest" "oci:$TMP/oci:latest"
check "open: manifest list (v2s2) digest" \
  bash -c "[[ \$(curl -sf -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' $OPEN_URL/v2/library/hello/manifests/v2s2 | sha256sum | cut -d' ' -f1) == ${DIGEST_HELLO_V2S2#sha256:} ]]"

if [[ "$WORKER_ENABLED" == 1 ]]; then
  worker_index() {
    curl -sf --cacert "$CA_FILE" -o "$TMP/wi" -H 'Accept: application/vnd.oci.image.index.v1+json' \
      "https://open.example.test:$WORKER_HTTPS_PORT/v2/library/hello/manifests/latest" &&
      [[ "$(sha_of "$TMP/wi")" == "$DIGEST_HELLO_LATEST" ]] &&
      jq -e '.mediaType == "application/vnd.oci.image.index.v1+json"' "$TMP/wi" >/dev/null
  }
  check "worker: https://open.example.test:$WORKER_HTTPS_PORT returns the hello index" worker_index
fi

if [[ "$DAEMONS" == 1 ]]; then
  quiet() { "$@" >/dev/null 2>&1; }
  check "containerd: ctr version" quiet ctr --address "$CONTAINERD_SOCK" version
  check "dockerd: docker info" quiet env DOCKER_HOST="$DOCKER_HOST_URL" docker info
fi

echo "selfcheck: $passed passed, $failed failed"
((failed == 0))
