#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine: installs dependencies,
# builds, and runs
#   1. every test in a normal build, with the lint checks and the
#      kernel-module guest test;
#   2. every test again under AddressSanitizer + UndefinedBehaviorSanitizer
#      with LeakSanitizer on;
#   3. the libFuzzer targets (fuzz/, clang, ASan + UBSan): the committed
#      corpus replayed, then 60 s of fuzzing per target;
#   4. the tests that run threads (label "threads") under ThreadSanitizer,
#      with every txbufd they start on 2 worker threads.
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
# The benchmark's peers (gRPC, NFS-ganesha, libnfs) for their smoke tests.
bench/targets/install-peers.sh
if [ -x kmod-shim/test/install-deps.sh ]; then
  # Packages for the emulated-guest kernel test; if they cannot be installed
  # the guest test reports SKIPPED with the reason.
  kmod-shim/test/install-deps.sh || echo "run-tests: kmod guest dependencies unavailable; the guest test will be skipped"
fi

jobs=$(nproc)
echo "== build (tests)"
scripts/build.sh test >/dev/null
echo "== tests"
(cd build && ctest -j "$jobs" --output-on-failure --timeout 900 -LE lint)
echo "== lint (clang-format, clang-tidy)"
# After the tests, not beside them: clang-tidy keeps both cores busy for
# minutes, which would starve the timing-sensitive smoke tests.
(cd build && ctest --output-on-failure --timeout 1800 -L lint)

echo "== build (ASan + UBSan)"
scripts/build.sh asan >/dev/null
echo "== tests under ASan + UBSan + LSan"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS=suppressions=$PWD/scripts/lsan.supp
(cd build-asan && ctest -j "$jobs" --output-on-failure --timeout 1800 -LE 'guest|lint')

echo "== fuzz (60 s per target, ASan+UBSan)"
# Builds build-fuzz/ with clang; the targets run side by side, one per core.
scripts/run-fuzz.sh 60

echo "== build (TSan)"
scripts/build.sh tsan >/dev/null
echo "== tests under TSan"
# Only the tests that run threads: TSan has nothing to say about the others.
# halt_on_error: the first report fails the test (a txbufd that reports exits
# with 66, which tests/server_process.cc turns into a failure).
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp"
export TXBUF_TEST_SERVER_THREADS=2
(cd build-tsan && ctest -j "$jobs" --output-on-failure --timeout 1800 -L threads -LE 'guest|lint')
echo "run-tests: all passed"
