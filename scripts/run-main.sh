#!/usr/bin/env bash
# The main job, on a fresh Debian 12 machine: installs dependencies, builds an
# optimized tree and runs the engine benchmark, printing a table of send
# throughput for every engine against plain send().
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
echo "== build (release)"
scripts/build.sh release >/dev/null
echo "== engine benchmark (every engine side by side, median of 3, interleaved)"
build-release/bench/engine_bench --benchmark_repetitions=3 \
  --benchmark_enable_random_interleaving=true --benchmark_min_time=0.3 \
  --benchmark_report_aggregates_only=true --benchmark_color=false
