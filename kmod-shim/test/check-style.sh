#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Style gates of the module source: scripts/checkpatch.pl --no-tree --strict
# on txbuf.c, txbuf_trace.h, Kbuild and the UAPI header, and a W=1 build
# against every installed guest kernel (no warning allowed).
#
# checkpatch.pl is not in Debian's headers packages.  It is taken from, in
# order: $CHECKPATCH, a kernel tree in $KERNEL_SRC, or Debian's
# linux-source-6.1 tarball (apt-get install linux-source-6.1), from which
# only scripts/ is unpacked into $TXBUF_KMOD_CACHE (default
# /var/cache/txbuf-kmod).  Exits 77 if none is available.
set -uo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${TXBUF_KMOD_CACHE:-/var/cache/txbuf-kmod}
rc=0

cp_pl=${CHECKPATCH:-}
if [ -z "$cp_pl" ] && [ -n "${KERNEL_SRC:-}" ]; then
	cp_pl=$KERNEL_SRC/scripts/checkpatch.pl
fi
if [ -z "$cp_pl" ]; then
	tarball=$(ls /usr/src/linux-source-*.tar.xz 2>/dev/null | head -n1)
	if [ -n "$tarball" ]; then
		top=$(basename "$tarball" .tar.xz)
		if [ ! -f "$CACHE/$top/scripts/checkpatch.pl" ]; then
			mkdir -p "$CACHE"
			tar -xJf "$tarball" -C "$CACHE" "$top/scripts" || exit 1
		fi
		cp_pl=$CACHE/$top/scripts/checkpatch.pl
	fi
fi
if [ -z "$cp_pl" ] || [ ! -f "$cp_pl" ]; then
	echo "SKIP: no checkpatch.pl (set CHECKPATCH= or apt-get install linux-source-6.1)"
	exit 77
fi

echo "== checkpatch ($cp_pl)"
(cd "$SRC" && perl "$cp_pl" --no-tree --strict --quiet -f txbuf.c txbuf_trace.h Kbuild \
	include/uapi/linux/txbuf.h) || rc=1
[ $rc = 0 ] && echo "checkpatch: clean"

for env in "$CACHE"/kernel-*.env; do
	[ -f "$env" ] || continue
	(
		. "$env"
		out=$(mktemp -d /tmp/txbuf-style.XXXXXX)
		if "$SRC/test/build-module.sh" "$KDIR" "$out" >/dev/null; then
			echo "W=1 build against $KVER: no warnings"
			rm -rf "$out"
		else
			echo "W=1 build against $KVER: FAILED (see $out/build.log)"
			exit 1
		fi
	) || rc=1
done
exit $rc
