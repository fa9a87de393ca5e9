#!/bin/sh
# Runs inside the kmod guest (busybox sh): txbufd --engine kmod serving
# reads and writes that the txbuf client verifies by checksum, then the
# gtest end-to-end test (tests/kmod_e2e_test.cc). Prints PASS/FAIL lines
# that the guest /init counts.
export TXBUFD=/e2e/bin/txbufd
export TMPDIR=/tmp
B=/e2e/bin

# 1. The txbuf CLI against txbufd --engine kmod, checked with sha256sum.
mkdir -p /tmp/kexport /tmp/kcli
$B/txbufd --export /tmp/kexport --engine kmod --cache-size 64M \
	--listen 127.0.0.1:0 > /tmp/kcli/server.out 2>&1 &
spid=$!
addr=""
i=0
while [ $i -lt 100 ] && [ -z "$addr" ]; do
	addr=$(sed -n 's/^listening on //p' /tmp/kcli/server.out)
	[ -n "$addr" ] || sleep 0.1
	i=$((i + 1))
done
if [ -z "$addr" ]; then
	echo "FAIL e2e_cli_txbufd_kmod_start"
	sed 's/^/INFO server: /' /tmp/kcli/server.out
else
	echo "PASS e2e_cli_txbufd_kmod_start"
	dd if=/dev/urandom of=/tmp/kcli/in.bin bs=1M count=8 2>/dev/null
	# stderr to a file: the console is a terminal, and the progress bar
	# would flood it; a failure's one-line error is shown below.
	if $B/txbuf --server "$addr" put /tmp/kcli/in.bin big.bin 2>/tmp/kcli/cli.err &&
		$B/txbuf --server "$addr" get big.bin /tmp/kcli/out.bin 2>>/tmp/kcli/cli.err; then
		a=$(sha256sum < /tmp/kcli/in.bin)
		b=$(sha256sum < /tmp/kcli/out.bin)
		c=$(sha256sum < /tmp/kexport/big.bin)
		if [ "$a" = "$b" ] && [ "$a" = "$c" ]; then
			echo "PASS e2e_cli_put_get_sha256_equal"
		else
			echo "FAIL e2e_cli_put_get_sha256_equal"
		fi
	else
		echo "FAIL e2e_cli_put_get"
		tail -n 2 /tmp/kcli/cli.err | sed 's/^/INFO txbuf: /'
	fi
	if $B/txbuf --server "$addr" stats --json > /tmp/kcli/stats.json &&
		grep -q '"engine": *"kmod"' /tmp/kcli/stats.json; then
		echo "PASS e2e_cli_stats_engine_kmod"
	else
		echo "FAIL e2e_cli_stats_engine_kmod"
		sed 's/^/INFO stats: /' /tmp/kcli/stats.json
	fi
	kill -TERM $spid
	wait $spid
	st=$?
	if [ $st -eq 0 ] && grep -q '"pinned_bytes":0,' /tmp/kcli/server.out; then
		echo "PASS e2e_cli_txbufd_sigterm_pinned_zero"
	else
		echo "FAIL e2e_cli_txbufd_sigterm_pinned_zero"
		tail -n 3 /tmp/kcli/server.out | sed 's/^/INFO server: /'
	fi
fi

# 2. The gtest end-to-end test.
out=$($B/kmod_e2e_test 2>&1)
status=$?
echo "$out" | sed -n 's/^\[       OK \] \([^ ]*\).*/PASS e2e_\1/p; s/^\[  FAILED  \] \([^ ,]*\) .*(.*/FAIL e2e_\1/p'
if [ $status -ne 0 ]; then
	echo "$out" | tail -n 40 | sed 's/^/INFO /'
	echo "FAIL e2e_kmod_e2e_test_exit_status_$status"
fi
if echo "$out" | grep -q "SKIPPED"; then
	echo "FAIL e2e_kmod_e2e_test_skipped_in_the_guest"
fi
