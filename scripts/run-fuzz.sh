#!/usr/bin/env bash
# Builds the fuzz flavour (clang, libFuzzer, ASan + UBSan; see fuzz/README.md)
# and fuzzes every target for a bounded time.
#   scripts/run-fuzz.sh [SECONDS]     replay the committed corpus (ctest -L
#                                     fuzz), then fuzz each target SECONDS
#                                     (default 60) from a copy of its corpus
#   scripts/run-fuzz.sh --regen-corpus
#                                     rewrite fuzz/corpus/ with
#                                     fuzz/corpus_gen.cc
# Targets run side by side, one per core. Any crash, sanitizer report, leak,
# timeout (-timeout) or out-of-memory (-rss_limit_mb) fails the run; the
# input that did it is kept in build-fuzz/fuzz-artifacts/TARGET/ and its path
# printed, with the command that reproduces it. The committed corpus is never
# written to: new inputs go to a temporary copy.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(frame_reader_fuzz executor_fuzz)

if [ "${1:-}" = "--regen-corpus" ]; then
  scripts/build.sh fuzz >/dev/null
  build-fuzz/fuzz/fuzz_corpus_gen fuzz/corpus
  exit 0
fi
secs=${1:-60}
case "$secs" in ''|*[!0-9]*) echo "usage: $0 [SECONDS] | --regen-corpus" >&2; exit 2 ;; esac

scripts/build.sh fuzz >/dev/null
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
unset LSAN_OPTIONS

echo "run-fuzz: replaying the committed corpus"
(cd build-fuzz && ctest --output-on-failure -L fuzz)

work=$(mktemp -d "${TMPDIR:-/tmp}/txbuf-fuzz-XXXXXX")
trap 'rm -rf "$work"' EXIT
art=build-fuzz/fuzz-artifacts
logs=build-fuzz/fuzz-logs
mkdir -p "$logs"
run_one() {
  local t=$1 rc=0
  # -error_exitcode / -timeout_exitcode: every kind of finding exits non-zero.
  # TMPDIR: a target killed by a finding leaves its temporary files here.
  mkdir -p "$work/tmp-$t"
  TMPDIR=$work/tmp-$t build-fuzz/fuzz/$t -max_total_time="$secs" -rss_limit_mb=2048 -timeout=25 \
      -error_exitcode=77 -timeout_exitcode=78 -print_final_stats=1 \
      -artifact_prefix="$art/$t/" "$work/$t" >"$logs/$t.log" 2>&1 || rc=$?
  echo "$rc" >"$work/$t.rc"
}
for t in "${targets[@]}"; do
  cp -r "fuzz/corpus/$t" "$work/$t"
  rm -rf "${art:?}/$t"
  mkdir -p "$art/$t"
done
echo "run-fuzz: fuzzing ${targets[*]} for ${secs}s each"
if [ "$(nproc)" -ge 2 ]; then
  for t in "${targets[@]}"; do run_one "$t" & done
  wait
else
  for t in "${targets[@]}"; do run_one "$t"; done
fi

failed=0
for t in "${targets[@]}"; do
  log=$logs/$t.log
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo "?")
  cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1 || true)
  rc=$(cat "$work/$t.rc")
  if [ "$rc" != 0 ] || [ -n "$(ls -A "$art/$t")" ]; then
    failed=1
    echo "run-fuzz: $t FAILED (exit $rc) after $runs runs; log $log:"
    tail -n 60 "$log" | sed 's/^/  | /'
    for a in "$art/$t"/*; do
      [ -e "$a" ] || continue
      echo "run-fuzz: reproducer: $a"
      echo "run-fuzz:   reproduce with: build-fuzz/fuzz/$t $a"
    done
  else
    echo "run-fuzz: $t: ${secs}s, $runs runs, $cov, no findings"
  fi
done
exit $failed
