#!/usr/bin/env bash
# The main job, on a fresh Debian 12 machine: installs dependencies (with the
# benchmark peers' packages), builds an optimized tree and runs
# `txbuf-bench --compare --quick`: txbufd with every engine against the raw-TCP
# floor and gRPC on the issue's six workloads (about a minute), printing one
# table per workload with ratios to the best peer and to the floor, and the
# targets checked (PASS/MISS).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
bench/targets/install-peers.sh >/dev/null
echo "== build (release)"
scripts/build.sh release >/dev/null
echo "== txbuf-bench --compare --quick (1 s per run, median of 1; progress on stderr)"
build-release/bench/cli/txbuf-bench --compare --quick
