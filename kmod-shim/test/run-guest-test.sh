#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the txbuf module for a Debian kernel, boot that kernel in an emulated
# guest (qemu-system-x86_64 -accel tcg) with a busybox-static initramfs that
# holds the module, the self-test program and, optionally, extra files, and
# count the guest's PASS/FAIL lines.  Prints "N passed, N failed" last.
#
# Usage: run-guest-test.sh [--kernel 6.1|6.12|all] [--extra-dir DIR]
#                          [--timeout SEC] [--build-dir DIR] [--keep]
#                          [--append "KERNEL ARGS"]
#   --kernel     which kernel(s) (default all); fetched by install-deps.sh
#   --extra-dir  copy DIR's contents into the initramfs root (also
#                TXBUF_GUEST_EXTRA=DIR).  The shared libraries of every ELF
#                binary in it are resolved with ldd and copied too.  If it
#                has an executable e2e/run.sh, the guest runs /e2e/run.sh
#                after the self-tests; its PASS/FAIL lines count.
#   --gtest BIN  run the GoogleTest binary BIN inside the guest too (after the
#                self-tests; repeatable); each "[ OK ]" / "[ FAILED ]" test
#                becomes a PASS/FAIL line.  Its shared libraries are copied.
#   --timeout    seconds without console output before the guest is
#                killed as hung (default 600, also TXBUF_GUEST_TIMEOUT); a
#                slow run that goes on printing is not cut short: the
#                guest's /init bounds each of its stages
#   --build-dir  where to build (default: a new /tmp/txbuf-guest.* that is
#                removed after a fully passing run); never the source tree
#   --keep       keep the build directory (logs, initramfs, module)
#   --append     extra kernel command line (e.g. TXBUF_E2E_TIMEOUT=900,
#                which /init sees as an environment variable)
#   --brief      print only FAIL, SKIP and DMESG lines and the summaries
#                (CTest uses it, so a failure is not buried under PASS
#                lines; the whole console log stays in the build directory)
#   --no-debug   boot without slub_debug=FZP init_on_free=1 (they catch
#                use-after-free but inflate kmalloc/free costs: use this
#                for the MEASURE figures only)
#   --nic MODEL  the guest's NIC: e1000 (default), virtio-net-pci, or none.
#                On QEMU user networking (restrict=on: the guest reaches
#                nothing but one port forwarded from the host's 127.0.0.1)
#                with the driver's modules in the initramfs.  When the
#                extra directory has e2e/bin/txbuf and e2e/nic.sh, the guest
#                serves a file with each engine and this script reads it
#                through the forwarded port and checks the server's STATS
#                (zero-copy completions not copied, docs/KMOD.md)
#
# Exit status: 0 all passed, 1 a failure, 77 nothing could run (qemu or the
# kernels missing: run kmod-shim/test/install-deps.sh), 2 usage.

set -uo pipefail

KERNELS=all
EXTRA=${TXBUF_GUEST_EXTRA:-}
TIMEOUT=${TXBUF_GUEST_TIMEOUT:-600}
BUILD=
KEEP=0
APPEND=
GTESTS=()
NIC=${TXBUF_GUEST_NIC:-e1000}
GUEST_PORT=7070			# txbufd's port in the guest (nic.sh)
DEBUG_ARGS="init_on_free=1 slub_debug=FZP"
# The emulated guest runs on the host's clock, however little CPU a busy
# host gives it: kernel checks that expect so much work per wall-clock
# second fail there.  no_timer_check: the boot-time check that the IO-APIC
# timer ticks within a few ticks' time (under load it panicked the boot:
# "IO-APIC + timer doesn't work!").  The lockup and RCU-stall detectors
# (their reports would fail dmesg_clean) get their longest thresholds:
# still there for a real lockup, not for a host that starved the guest.
TCG_ARGS="no_timer_check watchdog_thresh=60 rcupdate.rcu_cpu_stall_timeout=300"
SHOW_ALL='^(PASS|FAIL|INFO|MEASURE|SKIP|DMESG) '
SHOW=$SHOW_ALL
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) KERNELS=${2:?}; shift 2 ;;
	--kernel=*) KERNELS=${1#*=}; shift ;;
	--extra-dir) EXTRA=${2:?}; shift 2 ;;
	--extra-dir=*) EXTRA=${1#*=}; shift ;;
	--timeout) TIMEOUT=${2:?}; shift 2 ;;
	--timeout=*) TIMEOUT=${1#*=}; shift ;;
	--build-dir) BUILD=${2:?}; shift 2 ;;
	--build-dir=*) BUILD=${1#*=}; shift ;;
	--append) APPEND=${2:?}; shift 2 ;;
	--append=*) APPEND=${1#*=}; shift ;;
	--gtest) GTESTS+=("${2:?}"); shift 2 ;;
	--gtest=*) GTESTS+=("${1#*=}"); shift ;;
	--keep) KEEP=1; shift ;;
	--no-debug) DEBUG_ARGS=; shift ;;
	--nic) NIC=${2:?}; shift 2 ;;
	--nic=*) NIC=${1#*=}; shift ;;
	--brief) SHOW='^(FAIL|SKIP|DMESG) '; shift ;;
	-h|--help) sed -n '3,47p' "$0"; exit 0 ;;
	*) echo "run-guest-test.sh: unknown argument: $1" >&2; exit 2 ;;
	esac
done
case "$NIC" in
e1000) NIC_DRIVER=e1000 ;;
virtio-net-pci) NIC_DRIVER=virtio_net ;;
none) NIC_DRIVER= ;;
*) echo "run-guest-test.sh: --nic must be e1000, virtio-net-pci or none" >&2; exit 2 ;;
esac
case "$KERNELS" in
all) KERNELS="6.1 6.12" ;;
6.1|6.12) ;;
*) echo "run-guest-test.sh: --kernel must be 6.1, 6.12 or all" >&2; exit 2 ;;
esac

SRC=$(cd "$(dirname "$0")/.." && pwd)		# kmod-shim/
CACHE=${TXBUF_KMOD_CACHE:-/var/cache/txbuf-kmod}
skip() { echo "SKIP: $*"; echo "0 passed, 0 failed, 1 skipped"; exit 77; }

command -v qemu-system-x86_64 >/dev/null ||
	skip "qemu-system-x86_64 is not installed (run kmod-shim/test/install-deps.sh)"
BUSYBOX=$(command -v busybox || echo /bin/busybox)
[ -x "$BUSYBOX" ] && ! ldd "$BUSYBOX" >/dev/null 2>&1 ||
	skip "a static busybox is needed (apt-get install busybox-static)"
command -v gcc >/dev/null && command -v cpio >/dev/null ||
	skip "gcc and cpio are needed (run kmod-shim/test/install-deps.sh)"
[ -z "$EXTRA" ] || [ -d "$EXTRA" ] || { echo "run-guest-test.sh: --extra-dir $EXTRA is not a directory" >&2; exit 2; }
for g in "${GTESTS[@]}"; do
	[ -x "$g" ] || { echo "run-guest-test.sh: --gtest $g is not an executable" >&2; exit 2; }
done

if [ -z "$BUILD" ]; then
	BUILD=$(mktemp -d /tmp/txbuf-guest.XXXXXX)
	AUTO_BUILD=1
else
	mkdir -p "$BUILD"
	AUTO_BUILD=0
fi
case "$(cd "$BUILD" && pwd)/" in
"$SRC"/*) echo "run-guest-test.sh: the build directory must not be inside $SRC" >&2; exit 2 ;;
esac

TOTAL_PASS=0 TOTAL_FAIL=0 SKIPPED=0 RAN=0
SUMMARY=()
host_verdict() { # PASS|FAIL name [why]
	echo "$1 $2${3:+: $3}"
	if [ "$1" = PASS ]; then K_PASS=$((K_PASS + 1)); else K_FAIL=$((K_FAIL + 1)); fi
}

# The self-test program, static, built once.
SELFTEST="$BUILD/txbuf_selftest"
if ! gcc -static -O2 -g -std=gnu11 -Wall -Wextra -Werror -pthread \
	-I "$SRC/include/uapi" "$SRC/test/guest/txbuf_selftest.c" \
	-o "$SELFTEST" >"$BUILD/selftest-build.log" 2>&1; then
	cat "$BUILD/selftest-build.log"
	echo "FAIL selftest_build"
	echo "0 passed, 1 failed"
	exit 1
fi

# Copy the shared libraries (and loader) of every ELF file under $1 into $1.
copy_elf_deps() {
	local root=$1 f lib
	find "$root" -type f -perm -u+x | while read -r f; do
		[ "$(head -c4 "$f" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] || continue
		ldd "$f" 2>/dev/null | grep -oE '/[^ )]+' | while read -r lib; do
			[ -e "$lib" ] && [ ! -e "$root$lib" ] && cp -L --parents "$lib" "$root"
		done
	done
}

# A guest script that runs GoogleTest binary $1 and prints PASS/FAIL lines.
gtest_wrapper() {
	cat <<EOS
#!/bin/sh
# Generated by run-guest-test.sh: runs $1, one PASS/FAIL line per test.
# Each test's start on the console as it runs: the host kills a guest that
# stays silent too long.
{ /guest-tests/bin/$1 --gtest_color=no 2>&1; echo \$? >/tmp/$1.rc; } |
	tee /tmp/$1.out | sed -n 's/^\[ RUN      \] /INFO gtest running /p'
rc=\$(cat /tmp/$1.rc)
sed 's/^/GTEST /' /tmp/$1.out
sed -n -e 's/^\[       OK \] \([^ ]*\) (.*/PASS gtest_\1/p' \\
       -e 's/^\[  FAILED  \] \([^ ]*\) (.* ms)\$/FAIL gtest_\1/p' \\
       -e 's/^\[  SKIPPED \] \([^ ]*\) (.*/FAIL gtest_\1: skipped in the guest/p' /tmp/$1.out
if [ \$rc != 0 ] && ! grep -q '^\[  FAILED  \]' /tmp/$1.out; then
	echo "FAIL gtest_$1: exit status \$rc"
fi
EOS
}

# The modules of NIC driver $2 for the kernel whose modules are under $1
# (lib/modules/KVER: install-deps.sh unpacks the NIC's), dependencies first,
# one file a line; the built-in ones (modules.builtin) are left out.
# Fails, with the reason on stderr, when one is missing.
nic_modules() { # moddir name
	local moddir=$1 seen=" " out=()
	add_mod() {
		local name=${1//-/_} f d
		case "$seen" in *" $name "*) return 0 ;; esac
		seen="$seen$name "
		if grep -qE "/${name//_/[-_]}\.ko$" "$moddir/modules.builtin" 2>/dev/null; then
			return 0
		fi
		f=$(find "$moddir/kernel" -name '*.ko' | grep -E "/${name//_/[-_]}\.ko$" | head -n1)
		[ -n "$f" ] || { echo "module $name not in $moddir (run kmod-shim/test/install-deps.sh)" >&2; return 1; }
		for d in $(modinfo -F depends "$f" | tr ',' ' '); do
			add_mod "$d" || return 1
		done
		out+=("$f")
	}
	[ -f "$moddir/modules.builtin" ] || { echo "$moddir/modules.builtin missing (run kmod-shim/test/install-deps.sh)" >&2; return 1; }
	add_mod "$2" || return 1
	# virtio-net needs the PCI transport, which 6.1 has as a module.
	[ "$2" != virtio_net ] || add_mod virtio_pci || return 1
	printf '%s\n' "${out[@]}"
}

# A TCP port on 127.0.0.1 that nothing listens on now (for hostfwd).
free_port() {
	local p _
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 40000))
		# /proc/net/tcp{,6}: local address column, port in hex.
		if ! awk 'NR > 1 { print $2 }' /proc/net/tcp /proc/net/tcp6 2>/dev/null |
			grep -qi ":$(printf '%04X' "$p")$"; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# json_num FILE KEY [ENGINE]: the number after "KEY": in txbuf stats --json
# output, in the row of ENGINE in "engines" if given (read with jq).
json_num() {
	jq -r --arg k "$2" --arg e "${3:-}" \
		'if $e == "" then .[$k] else (.engines[]? | select(.name == $e) | .[$k]) end // empty' \
		"$1" 2>/dev/null | head -n1
}

# The host side of the NIC test for one engine, when the guest prints
# "NIC-READY ENGINE FILE SHA256 BYTES REPORTS": read FILE through the
# forwarded port, compare checksums, check the server's STATS, then put
# "done-ENGINE" into the export (the guest waits for it, then stops txbufd).  Every client
# call is bounded (timeout 300: the emulated guest may be slow).
nic_host_engine() { # engine file sha bytes reports
	local eng=$1 file=$2 sha=$3 bytes=$4 nd="$dir/nic" t0 t1 ms got st zc cp ezc ecp
	NIC_REPORTS=$5
	local etx pin pinmax p50 p99 e budget
	local T=(timeout 300 "$NIC_CLIENT" --server "127.0.0.1:$HOST_PORT"
		 --token-file "$NIC_TOKEN" --timeout 120)
	mkdir -p "$nd"
	rm -f "$nd/$eng.bin"
	t0=$(date +%s%N)
	if ! "${T[@]}" get "$file" "$nd/$eng.bin" 2>"$nd/$eng.err"; then
		host_verdict FAIL "nic_${eng}_read" "$(tail -n1 "$nd/$eng.err")"
	else
		t1=$(date +%s%N)
		ms=$(((t1 - t0) / 1000000))
		got=$(sha256sum <"$nd/$eng.bin" | cut -d' ' -f1)
		if [ "$got" = "$sha" ] && [ "$(stat -c %s "$nd/$eng.bin")" = "$bytes" ]; then
			host_verdict PASS "nic_${eng}_read_sha256_equal"
			rm -f "$nd/$eng.bin"	# kept only when it differs
		else
			host_verdict FAIL "nic_${eng}_read_sha256_equal" "$bytes bytes, sha256 $sha expected, got $got"
		fi
		# The destructors run after the peer's ACKs: the last ones may
		# come just after the reply's last byte.  Wait for pinned 0.
		st="$nd/$eng.stats.json"
		for _ in $(seq 1 300); do
			"${T[@]}" stats --json >"$st" 2>>"$nd/$eng.err" || true
			[ "$(json_num "$st" pinned_bytes)" = 0 ] && break
			sleep 0.2
		done
		zc=$(json_num "$st" zerocopy_completions)
		cp=$(json_num "$st" copied_completions)
		pin=$(json_num "$st" pinned_bytes)
		pinmax=$(json_num "$st" pinned_bytes_max)
		# (nanoseconds, integers)
		p50=$(jq -r '.destructor_latency.p50 // empty' "$st" 2>/dev/null)
		p99=$(jq -r '.destructor_latency.p99 // empty' "$st" 2>/dev/null)
		echo "MEASURE nic $NIC kernel $s engine $eng: $bytes bytes in $ms ms; completions zero-copy ${zc:-?} copied ${cp:-?}; destructor latency p50 $((${p50:-0} / 1000)) us p99 $((${p99:-0} / 1000)) us; pinned max ${pinmax:-?} bytes"
		for e in copy msg_zerocopy uring_zc kmod auto; do
			etx=$(json_num "$st" txbufs "$e")
			ezc=$(json_num "$st" zc_notifications "$e")
			ecp=$(json_num "$st" zc_copied "$e")
			[ "${etx:-0}" = 0 ] && [ "${ezc:-0}" = 0 ] && continue
			echo "INFO nic $eng: engine row $e: txbufs $etx, notifications $ezc, of them copied $ecp"
		done
		if [ -z "$zc" ] || [ -z "$cp" ] || [ -z "$pin" ]; then
			host_verdict FAIL "nic_${eng}_stats" "no completion counters in $st"
		else
			case "$eng" in
			copy)
				# Each of its sends completes "copied".
				if [ "$zc" = 0 ] && [ "$cp" -gt 0 ]; then
					host_verdict PASS "nic_copy_no_zerocopy_completions"
				else
					host_verdict FAIL "nic_copy_no_zerocopy_completions" "zero-copy $zc, copied $cp"
				fi ;;
			auto)
				nic_host_auto "$st" ;;
			uring_zc)
				if uring_cannot_report_copied; then
					echo "SKIP nic_uring_zc_completions_zerocopy_not_copied kernel $s: its io_uring cannot report copied sends (no IORING_SEND_ZC_REPORT_USAGE, Linux 6.2 or a backport): every notification counts as zero-copy ($zc)"
				else
					nic_expect_zerocopy "$eng" "$zc" "$cp"
				fi ;;
			*)
				nic_expect_zerocopy "$eng" "$zc" "$cp" ;;
			esac
			if [ "$pin" = 0 ]; then
				host_verdict PASS "nic_${eng}_pinned_zero_after_reads"
			else
				host_verdict FAIL "nic_${eng}_pinned_zero_after_reads" "pinned_bytes $pin"
			fi
			# The server's pinned-bytes budget held during the reads.
			budget=$(json_num "$st" budget)
			if [ -n "$pinmax" ] && [ -n "$budget" ] && [ "$pinmax" -le "$budget" ]; then
				host_verdict PASS "nic_${eng}_pinned_max_within_budget"
			else
				host_verdict FAIL "nic_${eng}_pinned_max_within_budget" "pinned_bytes_max ${pinmax:-?}, budget ${budget:-?}"
			fi
		fi
	fi
	: >"$nd/done-$eng"
	if ! "${T[@]}" put "$nd/done-$eng" "done-$eng" 2>>"$nd/$eng.err"; then
		host_verdict FAIL "nic_${eng}_done_marker" "$(tail -n1 "$nd/$eng.err")"
	fi
}

# True when txbufd in the guest said its io_uring zero-copy notifications
# cannot say "copied" (no IORING_SEND_ZC_REPORT_USAGE: before Linux 6.2
# unless backported; Debian's 6.1 has it).  STATS then count every
# uring_zc completion as zero-copy, whatever the kernel did.
uring_cannot_report_copied() {
	[ "$NIC_REPORTS" = no ]
}

# A zero-copy engine's completions: most of them zero-copy on e1000.  On
# virtio-net over user networking the kernel copies (docs/KMOD.md, "Where
# zero-copy is real": no checksum offload, so no scatter-gather): there the
# check is that most are reported copied, the opposite.
nic_expect_zerocopy() { # engine zc cp
	if [ "$NIC" = virtio-net-pci ]; then
		if [ "$3" -gt "$2" ]; then
			host_verdict PASS "nic_$1_completions_copied_on_virtio_user"
		else
			host_verdict FAIL "nic_$1_completions_copied_on_virtio_user" "zero-copy $2, copied $3"
		fi
	elif [ "$2" -gt 0 ] && [ "$2" -gt "$3" ]; then
		host_verdict PASS "nic_$1_completions_zerocopy_not_copied"
	else
		host_verdict FAIL "nic_$1_completions_zerocopy_not_copied" "zero-copy $2, copied $3"
	fi
}

# auto: what it chose, from the engine rows (its copy sends count in the
# copy row, its zero-copy ones in uring_zc's or msg_zerocopy's).  Its first
# probe sends 16 MiB with copy, then 16 MiB with zero-copy; the zero-copy
# sends' notifications must say what the NIC did, and after the probe it
# keeps the cheaper kind (auto_policy.h): printed, not asserted (a tie on an
# emulated CPU can go either way).
nic_host_auto() { # stats
	local zrow ztx ctx zn zcp
	zrow=uring_zc
	[ "$(json_num "$1" txbufs uring_zc)" != 0 ] || zrow=msg_zerocopy
	ztx=$(json_num "$1" txbufs "$zrow")
	ctx=$(json_num "$1" txbufs copy)
	zn=$(json_num "$1" zc_notifications "$zrow")
	zcp=$(json_num "$1" zc_copied "$zrow")
	echo "INFO nic auto: sent $ctx txbufs with copy and $ztx with $zrow; $zrow notifications $zn, of them copied $zcp; after its probe it kept $([ "${ztx:-0}" -gt "${ctx:-0}" ] && echo "zero-copy ($zrow)" || echo copy)"
	if [ "${ztx:-0}" = 0 ] || [ "${zn:-0}" = 0 ]; then
		host_verdict FAIL "nic_auto_probed_zerocopy" "no $zrow send or notification (file too small for its probe?)"
	elif [ "$zrow" = uring_zc ] && uring_cannot_report_copied; then
		host_verdict PASS "nic_auto_probed_zerocopy"
		echo "SKIP nic_auto_probed_zerocopy_not_copied kernel $s: its zero-copy engine is uring_zc, whose notifications cannot say copied on this kernel"
	elif [ "$NIC" = virtio-net-pci ]; then
		host_verdict PASS "nic_auto_probed_zerocopy"
		echo "INFO nic auto: on virtio-net over user networking the notifications say copied ($zcp of $zn)"
	elif [ "$((zn - zcp))" -gt "$zcp" ]; then
		host_verdict PASS "nic_auto_probed_zerocopy_not_copied"
	else
		host_verdict FAIL "nic_auto_probed_zerocopy_not_copied" "$zrow notifications $zn, copied $zcp"
	fi
}

# The host end of "txbuf_selftest --nic" (guest/init): once the guest
# prints NIC-SELFTEST-READY, read everything it sends through the forwarded
# port until EOF; once it prints "NIC-SELFTEST-SENT SHA256 BYTES" (after
# closing its socket), compare.  Called about once a second while the
# guest runs; NST_PID is the reader, NST_DONE 1 once compared.
nic_selftest_host() {
	local line sha bytes got n
	if [ -z "$NST_PID" ] && [ "$NST_DONE" = 0 ] &&
		tr -d '\r' <"$raw" | grep -q '^NIC-SELFTEST-READY '; then
		# shellcheck disable=SC2016
		timeout 900 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && cat <&3' _ "$HOST_PORT" \
			>"$dir/nic-selftest.bin" 2>"$dir/nic-selftest.err" &
		NST_PID=$!
	fi
	[ -n "$NST_PID" ] || return 0
	line=$(tr -d '\r' <"$raw" | grep -E '^NIC-SELFTEST-SENT [0-9a-f]{64} [0-9]+$' | head -n1)
	[ -n "$line" ] || return 0
	# The guest closed its socket before that line: EOF follows.
	wait "$NST_PID"
	NST_PID='' NST_DONE=1
	read -r _ sha bytes <<<"$line"
	got=$(sha256sum <"$dir/nic-selftest.bin" | cut -d' ' -f1)
	n=$(stat -c %s "$dir/nic-selftest.bin")
	if [ "$got" = "$sha" ] && [ "$n" = "$bytes" ]; then
		host_verdict PASS "nic_selftest_host_bytes_exact"
		echo "INFO nic selftest: the host read $n bytes, sha256 equal"
		rm -f "$dir/nic-selftest.bin"
	else
		host_verdict FAIL "nic_selftest_host_bytes_exact" "read $n bytes sha256 $got, the guest sent $bytes sha256 $sha ($(tail -n1 "$dir/nic-selftest.err"))"
	fi
}

run_kernel() { # series
	local s=$1 KVER KDIR VMLINUZ env="$CACHE/kernel-$1.env" dir ko root log rc
	local t0 t1 cfg
	K_PASS=0 K_FAIL=0
	if [ ! -f "$env" ]; then
		echo "SKIP kernel $s: not installed (run kmod-shim/test/install-deps.sh)"
		SKIPPED=$((SKIPPED + 1))
		return
	fi
	# shellcheck disable=SC1090
	. "$env"
	if [ ! -f "$VMLINUZ" ] || [ ! -f "$KDIR/Makefile" ]; then
		echo "SKIP kernel $s: $VMLINUZ or $KDIR missing (run kmod-shim/test/install-deps.sh)"
		SKIPPED=$((SKIPPED + 1))
		return
	fi
	RAN=$((RAN + 1))
	dir="$BUILD/$s"
	mkdir -p "$dir"
	echo "=== kernel $s: $KVER"
	cfg=$(dirname "$VMLINUZ")/config-$KVER
	if [ -f "$cfg" ]; then
		echo "INFO kernel config: $(grep -E '^CONFIG_(KASAN|DEBUG_KMEMLEAK|SLUB_DEBUG|HZ)=' "$cfg" | tr '\n' ' ')"
		grep -q '^CONFIG_KASAN=y' "$cfg" ||
			echo "INFO no KASAN in this kernel: the dmesg check cannot see KASAN reports"
		grep -q '^CONFIG_DEBUG_KMEMLEAK=y' "$cfg" ||
			echo "INFO no kmemleak in this kernel: leaks are checked with the module's own counters"
	fi
	echo "INFO boot options for an emulated guest: $TCG_ARGS"
	echo "INFO boot debug options: ${DEBUG_ARGS:-none}"

	# 1. the module, out of tree, W=1, no warnings allowed
	if ko=$("$SRC/test/build-module.sh" "$KDIR" "$dir/kmod" 2>"$dir/kmod-build.err"); then
		host_verdict PASS "module_build_w1_no_warnings"
	else
		cat "$dir/kmod-build.err"
		host_verdict FAIL "module_build_w1_no_warnings" "see $dir/kmod/build.log"
		[ -f "$dir/kmod/src/txbuf.ko" ] && ko="$dir/kmod/src/txbuf.ko" || { finish_kernel "$s"; return; }
	fi
	if modinfo -F vermagic "$ko" | grep -q "^$KVER "; then
		host_verdict PASS "module_vermagic_matches_kernel"
	else
		host_verdict FAIL "module_vermagic_matches_kernel" "$(modinfo -F vermagic "$ko")"
	fi

	# 2. the initramfs
	root="$dir/root"
	rm -rf "$root"
	mkdir -p "$root/bin" "$root/dev"
	cp "$BUSYBOX" "$root/bin/busybox"
	cp "$SRC/test/guest/init" "$root/init"
	chmod 755 "$root/init"
	cp "$SELFTEST" "$root/bin/txbuf_selftest"
	cp "$ko" "$root/txbuf.ko"
	if [ ${#GTESTS[@]} -gt 0 ]; then
		mkdir -p "$root/guest-tests/bin"
		for g in "${GTESTS[@]}"; do
			cp "$g" "$root/guest-tests/bin/"
			gtest_wrapper "$(basename "$g")" >"$root/guest-tests/$(basename "$g").sh"
			chmod 755 "$root/guest-tests/$(basename "$g").sh"
		done
	fi
	if [ -n "$EXTRA" ]; then
		cp -a "$EXTRA"/. "$root"/
	fi
	if [ -n "$EXTRA" ] || [ ${#GTESTS[@]} -gt 0 ]; then
		copy_elf_deps "$root"
	fi
	# The NIC: its modules (loaded by /init in this order), the port the
	# guest listens on, and a token (txbufd refuses a non-loopback
	# address without one).  /nic/drive tells the guest that this script
	# will run the client side of e2e/nic.sh.
	NET_ARGS=(-nic none)
	NIC_CLIENT='' HOST_PORT=''
	if [ -n "$NIC_DRIVER" ]; then
		local mods
		if ! mods=$(nic_modules "$(dirname "$VMLINUZ")/../lib/modules/$KVER" "$NIC_DRIVER" 2>"$dir/nic-modules.err"); then
			echo "SKIP nic kernel $s: $(cat "$dir/nic-modules.err")"
		elif ! HOST_PORT=$(free_port); then
			echo "SKIP nic kernel $s: no free port on 127.0.0.1"
		else
			mkdir -p "$root/nic/mods"
			for m in $mods; do
				cp "$m" "$root/nic/mods/"
				basename "$m" >>"$root/nic/modules"
			done
			echo "$GUEST_PORT" >"$root/nic/port"
			touch "$root/nic/selftest"	# nic_selftest_host()
			NET_ARGS=(-device "$NIC,netdev=n0"
				  -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$HOST_PORT-:$GUEST_PORT")
			echo "INFO nic: $NIC ($(tr '\n' ' ' <"$root/nic/modules")), user networking restrict=on, 127.0.0.1:$HOST_PORT -> guest :$GUEST_PORT"
			if [ -n "$EXTRA" ] && [ -x "$EXTRA/e2e/bin/txbuf" ] && [ -x "$EXTRA/e2e/nic.sh" ]; then
				NIC_CLIENT=$EXTRA/e2e/bin/txbuf
				NIC_TOKEN=$dir/nic-token
				(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$NIC_TOKEN")
				install -m 600 "$NIC_TOKEN" "$root/nic/token"
				touch "$root/nic/drive"
			else
				echo "SKIP nic kernel $s: engines over the NIC: no e2e/bin/txbuf and e2e/nic.sh in --extra-dir"
			fi
		fi
	fi
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$dir/initrd.gz" || {
		host_verdict FAIL "initramfs_build"
		finish_kernel "$s"
		return
	}

	# 3. boot it.  An emulated guest on a busy host is slow, by a factor
	# nobody knows in advance: it is not killed after a fixed time but
	# once its console has said nothing for $TIMEOUT s (it hangs).  The
	# guest bounds each of its own stages (guest/init), and CTest the run.
	log="$dir/console.log"
	raw="$dir/console.raw"
	t0=$(date +%s)
	qemu-system-x86_64 -accel tcg -nographic -no-reboot \
		-m 1G -smp 2 "${NET_ARGS[@]}" \
		-kernel "$VMLINUZ" -initrd "$dir/initrd.gz" \
		-append "console=ttyS0 quiet panic=-1 $TCG_ARGS $DEBUG_ARGS $APPEND" \
		</dev/null >"$raw" 2>&1 &
	qpid=$!
	tail -n +1 -f --pid="$qpid" "$raw" | sed -u 's/\r$//' |
		grep --line-buffered -E "$SHOW" &
	show_pid=$!
	silent_kill=0
	last_size=-1
	last_change=$t0
	nic_done=0
	NST_PID='' NST_DONE=0
	while kill -0 "$qpid" 2>/dev/null; do
		sleep 1
		[ -z "$HOST_PORT" ] || nic_selftest_host
		# The guest's NIC stages wait for this side (nic_host_engine).
		if [ -n "$NIC_CLIENT" ]; then
			while read -r _ eng file sha bytes reports; do
				nic_host_engine "$eng" "$file" "$sha" "$bytes" "$reports"
				nic_done=$((nic_done + 1))
				last_change=$(date +%s)
			done < <(tr -d '\r' <"$raw" | grep -E '^NIC-READY [a-z_]+ [a-z.]+ [0-9a-f]{64} [0-9]+ (yes|no)$' | tail -n +$((nic_done + 1)))
		fi
		size=$(stat -c %s "$raw")
		now=$(date +%s)
		if [ "$size" != "$last_size" ]; then
			last_size=$size
			last_change=$now
		elif [ $((now - last_change)) -ge "$TIMEOUT" ]; then
			silent_kill=1
			kill "$qpid" 2>/dev/null
			break
		fi
	done
	wait "$qpid"
	rc=$?
	wait "$show_pid"
	# The guest is gone: its connection too (the reader sees EOF).
	[ -z "$NST_PID" ] || nic_selftest_host
	if [ -n "$NST_PID" ]; then
		kill "$NST_PID" 2>/dev/null
		wait "$NST_PID"
		host_verdict FAIL "nic_selftest_host_bytes_exact" "the guest never said what it sent (NIC-SELFTEST-SENT)"
	fi
	tr -d '\r' <"$raw" >"$log"
	t1=$(date +%s)
	K_PASS=$((K_PASS + $(grep -c '^PASS ' "$log")))
	K_FAIL=$((K_FAIL + $(grep -c '^FAIL ' "$log")))
	if ! grep -q '^TXBUF-GUEST-DONE' "$log"; then
		if [ "$silent_kill" = 1 ]; then
			host_verdict FAIL "guest_completed" "killed: no console output for ${TIMEOUT} s (after $((t1 - t0)) s)"
		else
			host_verdict FAIL "guest_completed" "no end marker (qemu exit $rc: panic?)"
		fi
		echo "--- last lines of $log:"
		tail -n 60 "$log"
	elif [ "$SHOW" != "$SHOW_ALL" ] && grep -q '^FAIL ' "$log"; then
		# --brief hid the INFO lines that explain a failure: show them.
		echo "--- INFO and FAIL lines of $log:"
		grep -E '^(INFO|FAIL) ' "$log" | tail -n 80
	fi
	echo "INFO kernel $s: boot and tests took $((t1 - t0)) s"
	finish_kernel "$s"
}

finish_kernel() {
	SUMMARY+=("kernel $1: $K_PASS passed, $K_FAIL failed")
	TOTAL_PASS=$((TOTAL_PASS + K_PASS))
	TOTAL_FAIL=$((TOTAL_FAIL + K_FAIL))
}

for s in $KERNELS; do
	run_kernel "$s"
done

echo "=== summary"
for line in "${SUMMARY[@]}"; do
	echo "$line"
done
if [ "$RAN" = 0 ]; then
	echo "SKIP: no kernel available (run kmod-shim/test/install-deps.sh)"
	echo "0 passed, 0 failed, $SKIPPED skipped"
	rm -rf "$BUILD"
	exit 77
fi
if [ "$TOTAL_FAIL" -gt 0 ] || [ "$KEEP" = 1 ] || [ "$AUTO_BUILD" = 0 ]; then
	echo "INFO build directory (logs, initramfs): $BUILD"
else
	rm -rf "$BUILD"
fi
if [ "$SKIPPED" -gt 0 ]; then
	echo "$TOTAL_PASS passed, $TOTAL_FAIL failed, $SKIPPED skipped"
else
	echo "$TOTAL_PASS passed, $TOTAL_FAIL failed"
fi
[ "$TOTAL_FAIL" = 0 ]
