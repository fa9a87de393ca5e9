#!/bin/sh
# Runs inside the kmod guest (busybox sh): txbufd --engine kmod serving
# reads and writes, verified by checksum (tests/kmod_e2e_test.cc). Prints
# PASS/FAIL lines that the guest /init counts.
export TXBUFD=/e2e/bin/txbufd
export TMPDIR=/tmp
out=$(/e2e/bin/kmod_e2e_test 2>&1)
status=$?
echo "$out" | sed -n 's/^\[       OK \] \([^ ]*\).*/PASS e2e_\1/p; s/^\[  FAILED  \] \([^ ,]*\) .*(.*/FAIL e2e_\1/p'
if [ $status -ne 0 ]; then
	echo "$out" | tail -n 40 | sed 's/^/INFO /'
	echo "FAIL e2e_kmod_e2e_test_exit_status_$status"
fi
if echo "$out" | grep -q "SKIPPED"; then
	echo "FAIL e2e_kmod_e2e_test_skipped_in_the_guest"
fi
