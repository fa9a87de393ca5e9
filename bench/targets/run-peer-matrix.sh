#!/usr/bin/env bash
# Runs the issue-4 workload matrix against every peer and prints a Markdown
# table (ops/s, MiB/s, p50/p99 latency, server/client CPU per op).
#   bench/targets/run-peer-matrix.sh BUILD_DIR [DURATION_S] [PEERS...]
# Peers of one workload run back to back, so load noise hits them alike.
# Connections: min(concurrency, 4) (txbuf-peer-bench's default).
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR [DURATION_S] [PEERS...]}
dur=${2:-3}
shift $(( $# >= 2 ? 2 : 1 ))
peers=("$@")
[ ${#peers[@]} -gt 0 ] || peers=(raw grpc nfs)
tool="$build/bench/cli/txbuf-peer-bench"
# One export for every run: the pattern file is created once (writes keep
# its pattern) and is not being written back during the measurements.
export_dir=$(mktemp -d /tmp/txbuf-peer-matrix-XXXXXX)
trap 'rm -rf "$export_dir"' EXIT
workloads=(
  "read 4K rand 1"
  "read 4K rand 64"
  "read 1M seq 1"
  "read 1M seq 8"
  "write 4K rand 16"
  "write 1M seq 4"
)
echo "| workload | peer | ops/s | MiB/s | p50 us | p99 us | server CPU us/op | client CPU us/op | errors | verify |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for wl in "${workloads[@]}"; do
  read -r op size pat conc <<<"$wl"
  for p in "${peers[@]}"; do
    line=$("$tool" --peer "$p" --op "$op" --size "$size" --pattern "$pat" \
             --concurrency "$conc" --duration "$dur" --warmup 1 \
             --file-size 256M --export "$export_dir" 2>&1 | grep '^RESULT' || true)
    if [ -z "$line" ]; then
      echo "| $op $size $pat c$conc | $p | unavailable | | | | | | | |"
      continue
    fi
    get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
    printf '| %s %s %s c%s | %s | %.0f | %.1f | %s | %s | %s | %s | %s | %s |\n' \
      "$op" "$size" "$pat" "$conc" "$p" "$(get ops_s)" "$(get mib_s)" \
      "$(get p50_us)" "$(get p99_us)" "$(get server_cpu_us_op)" \
      "$(get client_cpu_us_op)" "$(get errors)" "$(get verify_failures)"
  done
done
