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
# Wait for its "listening on" line while it runs: under TCG on a busy host
# starting it can take many seconds, so there is no short guess here, only
# a bound (300 s) for a txbufd that hangs.
addr=""
i=0
while [ $i -lt 3000 ] && [ -z "$addr" ] && kill -0 $spid 2>/dev/null; do
	addr=$(sed -n 's/^listening on //p' /tmp/kcli/server.out)
	[ -n "$addr" ] || sleep 0.1
	i=$((i + 1))
done
[ -n "$addr" ] || addr=$(sed -n 's/^listening on //p' /tmp/kcli/server.out)
if [ -z "$addr" ]; then
	echo "FAIL e2e_cli_txbufd_kmod_start"
	sed 's/^/INFO server: /' /tmp/kcli/server.out
else
	echo "PASS e2e_cli_txbufd_kmod_start"
	echo "INFO e2e: txbufd was listening after about $((i / 10)).$((i % 10)) s"
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

# 2. The gtest end-to-end test; each test's start on the console as it
# runs (the host kills a guest that stays silent too long).
{ $B/kmod_e2e_test 2>&1; echo $? > /tmp/kcli/e2e.rc; } | tee /tmp/kcli/e2e.out |
	sed -n 's/^\[ RUN      \] /INFO e2e running /p'
out=$(cat /tmp/kcli/e2e.out)
status=$(cat /tmp/kcli/e2e.rc)
echo "$out" | sed -n 's/^\[       OK \] \([^ ]*\).*/PASS e2e_\1/p; s/^\[  FAILED  \] \([^ ,]*\) .*(.*/FAIL e2e_\1/p'
if [ $status -ne 0 ]; then
	echo "$out" | tail -n 40 | sed 's/^/INFO /'
	echo "FAIL e2e_kmod_e2e_test_exit_status_$status"
fi
if echo "$out" | grep -q "SKIPPED"; then
	echo "FAIL e2e_kmod_e2e_test_skipped_in_the_guest"
fi

# 3. Over the NIC (run-guest-test.sh --nic): each engine serving the host.
if [ -f /nic/drive ] && [ "$TXBUF_NIC" = eth0 ]; then
	./nic.sh
elif [ -f /nic/drive ]; then
	echo "FAIL nic_engines: eth0 is not up (see nic_eth0_up)"
fi
