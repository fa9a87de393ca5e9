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
	--brief) SHOW='^(FAIL|SKIP|DMESG) '; shift ;;
	-h|--help) sed -n '3,39p' "$0"; exit 0 ;;
	*) echo "run-guest-test.sh: unknown argument: $1" >&2; exit 2 ;;
	esac
done
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
		-m 1G -smp 2 -nic none \
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
	while kill -0 "$qpid" 2>/dev/null; do
		sleep 1
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
