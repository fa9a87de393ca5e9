#!/bin/sh
# Runs inside the kmod guest (busybox sh), from run.sh: txbufd with each
# engine serves a file over the guest's NIC (QEMU user networking, port
# /nic/port forwarded from the host's 127.0.0.1), and run-guest-test.sh on
# the host reads it and checks the server's STATS (nic_host_engine there).
#
# The handshake, per engine: this script prints
#   NIC-READY ENGINE FILE SHA256 BYTES REPORTS
# once txbufd listens (REPORTS: "no" when txbufd said its io_uring
# notifications cannot say "copied", else "yes"); the host reads FILE through the port, checks it,
# reads STATS, and puts "done-ENGINE" into the export; this script waits
# for that file, stops txbufd with SIGTERM and checks pinned_bytes 0.
# Every wait is bounded and ends as soon as its condition holds.
#
# Only when run-guest-test.sh drives it (/nic/drive) and eth0 is up.
B=/e2e/bin
port=$(cat /nic/port)
exp=/tmp/nicexp
mkdir -p $exp /tmp/nic
# NIC_MIB (kernel command line) sets the file size; 16 MiB by default.
# auto reads 3 times as much (auto.bin): its first probe sends 16 MiB with
# copy, then 16 MiB with zero-copy, before it chooses (auto_policy.h).
dd if=/dev/urandom of=$exp/data.bin bs=1M count="${NIC_MIB:-16}" 2>/dev/null
cat $exp/data.bin $exp/data.bin $exp/data.bin > $exp/auto.bin

for eng in copy msg_zerocopy uring_zc kmod auto; do
	rm -f $exp/done-*
	file=data.bin
	[ $eng = auto ] && file=auto.bin
	sha=$(sha256sum < $exp/$file | cut -d' ' -f1)
	bytes=$(stat -c %s $exp/$file)
	out=/tmp/nic/$eng.out
	$B/txbufd --export $exp --engine $eng --cache-size 128M \
		--listen "0.0.0.0:$port" --token-file /nic/token > $out 2>&1 &
	spid=$!
	i=0
	while [ $i -lt 3000 ] && ! grep -q '^listening on ' $out &&
		kill -0 $spid 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
	if ! grep -q '^listening on ' $out; then
		echo "FAIL nic_${eng}_txbufd_start"
		tail -n 3 $out | sed 's/^/INFO server: /'
		kill -KILL $spid 2>/dev/null
		wait $spid
		continue
	fi
	reports=yes
	grep -q 'notifications cannot say whether the kernel copied' $out && reports=no
	echo "NIC-READY $eng $file $sha $bytes $reports"
	# The host reads up to 48 MiB through an emulated NIC: generous bound.
	i=0
	while [ $i -lt 6000 ] && [ ! -e $exp/done-$eng ] && kill -0 $spid 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
		[ $((i % 300)) = 0 ] && echo "INFO nic $eng: waiting for the host ($((i / 10)) s)"
	done
	if [ -e $exp/done-$eng ]; then
		echo "PASS nic_${eng}_host_done"
		# txbufd's CPU time over its life (user + system, in USER_HZ
		# = 100 ticks a second on x86): an emulated CPU, so only the
		# ratios between engines in one run mean anything.
		t=$(awk '{ print $14 + $15 }' /proc/$spid/stat)
		echo "MEASURE nic kernel $TXBUF_GUEST_KERNEL engine $eng: txbufd CPU $((t * 10)) ms for $bytes bytes ($((t * 10 * 1048576 / bytes)) ms per MiB, emulated)"
	else
		echo "FAIL nic_${eng}_host_done: no done-$eng from the host after $((i / 10)) s"
	fi
	kill -TERM $spid
	wait $spid
	st=$?
	if [ $st -eq 0 ] && grep -q '"pinned_bytes":0,' $out; then
		echo "PASS nic_${eng}_sigterm_pinned_zero"
	else
		echo "FAIL nic_${eng}_sigterm_pinned_zero: exit status $st"
		tail -n 3 $out | sed 's/^/INFO server: /'
	fi
done
