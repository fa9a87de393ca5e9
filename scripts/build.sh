#!/usr/bin/env bash
# Configures and builds one flavour of the tree.
#   scripts/build.sh test     build/          -O2 -g, debug checks on (tests)
#   scripts/build.sh asan     build-asan/     ASan + UBSan, debug checks on
#   scripts/build.sh tsan     build-tsan/     TSan, debug checks on; only the
#                                             tests labelled "threads" and
#                                             the binaries they run
#   scripts/build.sh fuzz     build-fuzz/     clang: libFuzzer targets with
#                                             ASan + UBSan (fuzz/), nothing else
#   scripts/build.sh release  build-release/  -O3 -DNDEBUG (benchmarks, main job)
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-test}
env=()
target=()
case "$flavour" in
  test)    dir=build;         args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g") ;;
  asan)    dir=build-asan;    args=(-DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" -DTXBUF_SANITIZE=ON) ;;
  tsan)    dir=build-tsan;    args=(-DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" -DTXBUF_TSAN=ON)
           target=(--target threads_tests) ;;
  fuzz)    dir=build-fuzz;    args=(-DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" -DTXBUF_FUZZ=ON)
           env=(CC=clang CXX=clang++)
           target=(--target fuzz_targets) ;;
  release) dir=build-release; args=(-DCMAKE_BUILD_TYPE=Release) ;;
  *) echo "usage: $0 test|asan|tsan|fuzz|release" >&2; exit 2 ;;
esac
env "${env[@]}" cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)" "${target[@]}"
echo "$dir"
