#!/usr/bin/env bash
# Instructions txbufd's read path spends per cached 4 KiB READ, counted by
# callgrind (repeatable, whatever else the machine does).
#
#   bench/micro/callgrind-op-cost.sh [--build DIR] [--binary PATH] [--event-loop]
#                              [--revalidate-ms MS]
#
# Runs bench/micro/read_path_cost (the server's executor, page cache and reply
# composer on a temporary export; no sockets) under
# `valgrind --tool=callgrind` with 2,000 and with 12,000 READs, and prints
# the difference in instructions divided by 10,000: the cost of one READ,
# without the setup. --event-loop runs the compounds as the event loop does
# (ExecMode::kEventLoop) instead of as a pool thread. --revalidate-ms sets
# how often the page cache checks the file on disk (default: txbufd's
# default; 0: every READ, which callgrind undercounts: the fstat's kernel
# work is not counted; -1: never). To compare two trees,
# build read_path_cost in each and pass --binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=build-release
[ -d "$build" ] || build=build
binary=""
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    --event-loop) extra+=(--event-loop); shift ;;
    --revalidate-ms) extra+=(--revalidate-ms "$2"); shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--binary PATH] [--event-loop] [--revalidate-ms MS]" >&2; exit 2 ;;
  esac
done
[ -n "$binary" ] || binary=$build/bench/micro/read_path_cost
[ -x "$binary" ] || { echo "$0: $binary not built" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "$0: valgrind not installed" >&2; exit 1; }
work=$(mktemp -d /tmp/txbuf-callgrind-XXXXXX)
trap 'rm -rf "$work"' EXIT
total() {
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.$1" \
    "$binary" --ops "$1" "${extra[@]}" >/dev/null 2>"$work/log.$1" ||
    { cat "$work/log.$1" >&2; exit 1; }
  sed -n 's/^summary: *//p' "$work/cg.$1"
}
a=$(total 2000)
b=$(total 12000)
echo "binary: $binary ${extra[*]}"
echo "instructions: $a (2,000 READs), $b (12,000 READs)"
echo "per cached 4 KiB READ: $(( (b - a) / 10000 ))"
