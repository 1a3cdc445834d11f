#!/usr/bin/env bash
# Fuzzes every parser of the core with libFuzzer (cargo-fuzz, a nightly toolchain; both are
# installed when missing), each target for a bounded number of executions or seconds, and
# prints executions, seconds and crashes per target. What each target checks: fuzz/checks.rs.
#
#   bash fuzz/run.sh                      # every target, 10 million executions each
#   bash fuzz/run.sh --runs 100000 plan   # one target, fewer executions
#   bash fuzz/run.sh --seconds 60         # at most a minute a target (default: an hour)
#
# Inputs that reach new code are added to fuzz/corpus/<target>/ and the corpus is minimized
# afterwards (`cargo fuzz cmin`; --no-cmin skips it): commit it, the test command replays it
# (tests/fuzz_corpus.rs). A crash is written to fuzz/artifacts/<target>/; fix it with a
# regression unit test. Exit status 1 if any target crashed or failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"

CARGO_FUZZ_VERSION=0.13.2
RUNS=10000000 SECONDS_MAX=3600 CMIN=1 TARGETS=()
while (($#)); do
  case "$1" in
    --runs) RUNS="${2:?}"; shift 2 ;;
    --seconds) SECONDS_MAX="${2:?}"; shift 2 ;;
    --no-cmin) CMIN=0; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz: unknown option $1" >&2; exit 2 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
((${#TARGETS[@]})) || mapfile -t TARGETS < <(ls fuzz/fuzz_targets | sed 's/\.rs$//')

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: installing the nightly toolchain" >&2
  rustup toolchain install nightly --profile minimal >&2
fi
if ! cargo fuzz --version 2>/dev/null | grep -qwF "$CARGO_FUZZ_VERSION"; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked >&2
fi

mkdir -p fuzz/logs
failed=0
printf '%-14s %12s %9s %8s  %s\n' target executions seconds crashes corpus
for t in "${TARGETS[@]}"; do
  [[ -f "fuzz/fuzz_targets/$t.rs" ]] || { echo "fuzz: no target $t" >&2; exit 2; }
  mkdir -p "fuzz/corpus/$t"
  log="fuzz/logs/$t.log"
  set +e
  (cd fuzz && cargo +nightly fuzz run --release "$t" "corpus/$t" -- \
     -runs="$RUNS" -max_total_time="$SECONDS_MAX" -max_len=1024 -timeout=10 -print_final_stats=1) >"$log" 2>&1
  rc=$?
  set -e
  execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)"
  secs="$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' | tail -1)"
  crashes="$(find "fuzz/artifacts/$t" -type f 2>/dev/null | wc -l)"
  if ((rc != 0 || crashes > 0)); then
    failed=1
    echo "fuzz: $t failed (exit $rc); see $log and fuzz/artifacts/$t/" >&2
  fi
  if ((CMIN && rc == 0)); then
    (cd fuzz && cargo +nightly fuzz cmin --release "$t" "corpus/$t") >>"$log" 2>&1 || true
  fi
  printf '%-14s %12s %9s %8s  %s\n' "$t" "${execs:-?}" "${secs:-?}" "$crashes" \
    "$(find "fuzz/corpus/$t" -type f | wc -l) inputs"
done
exit "$failed"
