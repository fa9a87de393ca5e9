#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build txbuf.ko out of tree: copy the module sources (txbuf.c,
# txbuf_trace.h, Kbuild, include/) into OUTDIR/src and run Kbuild there
# with W=1, so nothing is ever written into the source tree.  Prints the
# path of the .ko.
#
# Usage: build-module.sh KDIR OUTDIR [make arguments...]
#   KDIR    kernel headers (e.g. /usr/src/linux-headers-6.1.0-56-amd64)
#   OUTDIR  build directory (created)
# Exit status: 0 built without any compiler warning, 1 otherwise.
set -euo pipefail
KDIR=${1:?usage: build-module.sh KDIR OUTDIR}
OUT=${2:?usage: build-module.sh KDIR OUTDIR}
shift 2
SRC=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT/src/include/uapi/linux"
cp "$SRC/txbuf.c" "$SRC/txbuf_trace.h" "$SRC/Kbuild" "$OUT/src/"
cp "$SRC/include/uapi/linux/txbuf.h" "$OUT/src/include/uapi/linux/"
LOG="$OUT/build.log"
if ! make -C "$KDIR" M="$OUT/src" W=1 "$@" modules >"$LOG" 2>&1; then
	cat "$LOG" >&2
	echo "build-module.sh: build against $KDIR failed" >&2
	exit 1
fi
if grep -E "warning:|error:" "$LOG" >&2; then
	echo "build-module.sh: warnings building against $KDIR (W=1), see $LOG" >&2
	exit 1
fi
echo "$OUT/src/txbuf.ko"
