#!/usr/bin/env bash
# Instructions txbufd spends per request, counted by callgrind (repeatable,
# whatever else the machine does), for one txbuf-bench workload.
#
#   bench/callgrind-op-cost.sh [--txbufd PATH] [--build DIR] [-- BENCH ARGS]
#
# Starts TXBUFD under `valgrind --tool=callgrind` on a temporary export
# (--engine copy, one event loop, one pool thread), warms the page cache with
# the workload, zeroes the counters, runs the workload again, dumps, and
# prints the server's instructions per request (total Ir / requests served
# in the measured interval, from STATS). Default workload: cached 4 KiB
# random READs (PUTFH + READ), one request at a time. Compare two binaries
# (before / after a change) by running it once with each --txbufd.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-release
[ -d "$build" ] || build=build
txbufd=""
bench_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --txbufd) txbufd=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --) shift; bench_args=("$@"); break ;;
    *) echo "usage: $0 [--txbufd PATH] [--build DIR] [-- BENCH ARGS]" >&2; exit 2 ;;
  esac
done
[ -n "$txbufd" ] || txbufd=$build/server/txbufd
bench=$build/bench/txbuf-bench/txbuf-bench
cli=$build/client/txbuf
for b in "$txbufd" "$bench" "$cli"; do
  [ -x "$b" ] || { echo "$0: $b not built" >&2; exit 1; }
done
command -v valgrind >/dev/null || { echo "$0: valgrind not installed" >&2; exit 1; }
if [ ${#bench_args[@]} -eq 0 ]; then
  bench_args=(--workload read --size 4K --pattern rand --concurrency 1)
fi

work=$(mktemp -d /tmp/txbuf-callgrind-XXXXXX)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/export"
valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
  "$txbufd" --export "$work/export" --listen 127.0.0.1:0 --engine copy \
  --threads 1 --io-threads 1 --cache-size 64M >"$work/server.out" \
  2>"$work/valgrind.log" &
pid=$!
addr=""
for _ in $(seq 600); do
  addr=$(sed -n 's/^listening on //p' "$work/server.out")
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/valgrind.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { echo "$0: txbufd did not start" >&2; exit 1; }
common=(--server "$addr" --server-pid "$pid" --file-size 1M --stats-interval 0
        --no-progress "${bench_args[@]}")
requests() {
  "$cli" --server "$addr" stats --json | python3 -c \
    'import json,sys; print(json.load(sys.stdin)["requests"])'
}
# Warm: creates the file and caches it.
"$bench" "${common[@]}" --duration 2 --warmup 1 >/dev/null
callgrind_control -z "$pid" >/dev/null
r0=$(requests)
"$bench" "${common[@]}" --no-setup --duration 4 --warmup 0 >/dev/null
r1=$(requests)
callgrind_control -d "$pid" >/dev/null
# The newest dump holds the measured interval.
dump=$(ls -t "$work"/cg.out* | head -1)
ir=$(callgrind_annotate "$dump" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
ops=$((r1 - r0 - 1))
echo "txbufd: $txbufd"
echo "workload: ${bench_args[*]}"
echo "requests: $ops, instructions: $ir, per request: $((ir / ops))"
