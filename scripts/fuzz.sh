#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (libFuzzer + AddressSanitizer) on a nightly toolchain. Not part of
# .ci/run: CI replays the committed corpora and crash reproducers on stable instead
# (crates/*/tests/fuzz_corpus.rs). See RELIABILITY.md.
#
#   scripts/fuzz.sh run  [TARGET|all] [RUNS] [SECONDS]   fuzz until RUNS executions or SECONDS
#                                                        (default 1000000 / 1800), one target at
#                                                        a time, one process
#   scripts/fuzz.sh cmin [TARGET|all]                    add the inputs of fuzz/work/TARGET that
#                                                        bring new coverage to fuzz/corpus/TARGET
#   scripts/fuzz.sh build                                build every target
#   scripts/fuzz.sh list                                 the targets
#
# fuzz/work/TARGET is the working corpus (ignored by git), seeded from fuzz/corpus/TARGET;
# crashes land in fuzz/artifacts/TARGET/. A fixed crash's input goes to
# fuzz/regressions/TARGET/ (replayed by the stable tests). Logs: fuzz/work/TARGET.log.
# Environment: FUZZ_TOOLCHAIN (default nightly), FUZZ_RSS_MB (2048), FUZZ_MALLOC_MB (1024),
# FUZZ_TIMEOUT (seconds per input, 10), FUZZ_MAX_LEN (default: libFuzzer's choice).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(manifest segment filter stored_fields model_config tokenize)
TOOLCHAIN="${FUZZ_TOOLCHAIN:-nightly}"

ensure_tools() {
  if ! rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1; then
    echo "== installing the $TOOLCHAIN toolchain"
    rustup toolchain install "$TOOLCHAIN" --profile minimal
  fi
  if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
  fi
}

targets_of() {
  if [ "${1:-all}" = all ]; then
    echo "${TARGETS[@]}"
  else
    for t in "${TARGETS[@]}"; do [ "$t" = "$1" ] && { echo "$1"; return; }; done
    echo "unknown target $1 (known: ${TARGETS[*]})" >&2
    exit 2
  fi
}

corpus_size() { # files bytes
  local n b
  n=$(find "$1" -type f 2>/dev/null | wc -l)
  b=$(find "$1" -type f -printf '%s\n' 2>/dev/null | awk '{s+=$1} END {print s+0}')
  echo "$n files, $b bytes"
}

fuzz() { # target, libFuzzer args...
  local t=$1
  shift
  cargo "+$TOOLCHAIN" fuzz run "$t" "$@"
}

run_one() {
  local t=$1 runs=$2 secs=$3
  mkdir -p "fuzz/work/$t" "fuzz/corpus/$t" "fuzz/artifacts/$t"
  local log="fuzz/work/$t.log"
  local extra=()
  [ -n "${FUZZ_MAX_LEN:-}" ] && extra+=("-max_len=$FUZZ_MAX_LEN")
  echo "== $t: up to $runs executions or $secs s (log: $log)"
  local start end rc=0
  start=$(date +%s)
  fuzz "$t" "fuzz/work/$t" "fuzz/corpus/$t" -- \
    -runs="$runs" -max_total_time="$secs" \
    -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -malloc_limit_mb="${FUZZ_MALLOC_MB:-1024}" \
    -timeout="${FUZZ_TIMEOUT:-10}" -print_final_stats=1 \
    -artifact_prefix="fuzz/artifacts/$t/" "${extra[@]}" >"$log" 2>&1 || rc=$?
  end=$(date +%s)
  local execs
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  echo "$t: exit $rc, ${execs:-?} executions in $((end - start)) s," \
    "working corpus $(corpus_size "fuzz/work/$t"), committed corpus $(corpus_size "fuzz/corpus/$t")"
  if [ "$rc" -ne 0 ]; then
    grep -E '^(==[0-9]+==ERROR|thread .* panicked|SUMMARY|artifact_prefix|Test unit written)' "$log" | head -20 || true
    echo "   (full log: $log; reproduce: cargo +$TOOLCHAIN fuzz run $t fuzz/artifacts/$t/<file>)"
  fi
  return "$rc"
}

cmin_one() {
  local t=$1
  mkdir -p "fuzz/work/$t" "fuzz/corpus/$t"
  echo "== $t: merging fuzz/work/$t into fuzz/corpus/$t (inputs with new coverage only)"
  # Edge coverage only (no hit-count buckets, no comparison values): keeps the committed
  # corpus to a few hundred inputs.
  fuzz "$t" "fuzz/corpus/$t" "fuzz/work/$t" -- -set_cover_merge=1 -use_counters=0 -use_value_profile=0 \
    -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -malloc_limit_mb="${FUZZ_MALLOC_MB:-1024}" \
    >"fuzz/work/$t.cmin.log" 2>&1
  echo "$t: committed corpus $(corpus_size "fuzz/corpus/$t")"
}

cmd="${1:-run}"
case "$cmd" in
  list) echo "${TARGETS[@]}" ;;
  build)
    ensure_tools
    cargo "+$TOOLCHAIN" fuzz build
    ;;
  run)
    ensure_tools
    status=0
    for t in $(targets_of "${2:-all}"); do
      run_one "$t" "${3:-1000000}" "${4:-1800}" || status=1
    done
    exit "$status"
    ;;
  cmin)
    ensure_tools
    for t in $(targets_of "${2:-all}"); do cmin_one "$t"; done
    ;;
  *)
    sed -n '2,20p' "$0"
    exit 2
    ;;
esac
