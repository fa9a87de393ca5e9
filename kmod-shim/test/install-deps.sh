#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install what the txbuf guest test needs:
#   - system packages: qemu-system-x86, busybox-static, build tools, dwarves,
#     cpio, Debian's 6.1 headers (linux-headers-amd64), and its 6.1 source
#     (linux-source-6.1: scripts/checkpatch.pl for test/check-style.sh);
#   - the 6.1 kernel image matching those headers, fetched with
#     `apt-get download` and unpacked with dpkg-deb (installing it would pull
#     in initramfs tooling and touch /boot);
#   - bookworm-backports' 6.12 headers, kbuild and image, through a PRIVATE
#     apt configuration (own sources list, state and cache directories), so
#     the system's apt sources stay exactly as they are.
#
# Everything fetched goes under $TXBUF_KMOD_CACHE (default
# /var/cache/txbuf-kmod).  For each kernel series S it writes
# $TXBUF_KMOD_CACHE/kernel-S.env with KVER, KDIR (headers to build against)
# and VMLINUZ, which run-guest-test.sh reads.
#
# Idempotent and quiet: a second run does nothing but check.  Exits non-zero
# with a message on the first failure.
#
# Usage: kmod-shim/test/install-deps.sh [--kernel 6.1|6.12|all]   (default all)

set -euo pipefail

CACHE=${TXBUF_KMOD_CACHE:-/var/cache/txbuf-kmod}
WANT=all
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) WANT=${2:?--kernel needs 6.1, 6.12 or all}; shift 2 ;;
	--kernel=*) WANT=${1#*=}; shift ;;
	-h|--help) sed -n '3,22p' "$0"; exit 0 ;;
	*) echo "install-deps.sh: unknown argument: $1" >&2; exit 2 ;;
	esac
done
case "$WANT" in 6.1|6.12|all) ;; *) echo "install-deps.sh: --kernel must be 6.1, 6.12 or all" >&2; exit 2 ;; esac

die() { echo "install-deps.sh: error: $*" >&2; exit 1; }
log() { echo "install-deps.sh: $*"; }

[ "$(id -u)" = 0 ] || die "must run as root (apt-get install)"
command -v apt-get >/dev/null || die "apt-get not found: this script supports Debian only"

export DEBIAN_FRONTEND=noninteractive
APT_QUIET=(-qq -o=Dpkg::Use-Pty=0)

# ---------------------------------------------------------------- system
SYS_PKGS=(qemu-system-x86 busybox-static build-essential dwarves cpio kmod
	  linux-headers-amd64 xz-utils linux-source-6.1 jq)
missing=()
for p in "${SYS_PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]}"
	if ! apt-get install -y "${APT_QUIET[@]}" --no-install-recommends \
		"${missing[@]}" >/tmp/txbuf-install-deps.log 2>&1; then
		log "apt-get install failed, retrying after apt-get update"
		apt-get update "${APT_QUIET[@]}" >>/tmp/txbuf-install-deps.log 2>&1 ||
			die "apt-get update failed (see /tmp/txbuf-install-deps.log)"
		apt-get install -y "${APT_QUIET[@]}" --no-install-recommends \
			"${missing[@]}" >>/tmp/txbuf-install-deps.log 2>&1 ||
			die "apt-get install ${missing[*]} failed (see /tmp/txbuf-install-deps.log)"
	fi
fi

mkdir -p "$CACHE" || die "cannot create $CACHE"

# Unpack only what we need of a kernel image package: /boot (vmlinuz,
# config, System.map) and the few modules of the guest's NIC (virtio-net
# over virtio-pci, with what they depend on: the virtio core, failover; and
# e1000, see run-guest-test.sh --nic;
# compressed ones decompressed, for busybox insmod) and modules.builtin,
# under DIR/lib/modules/KVER.  Everything else the guest uses is built in
# (serial console, loopback, tmpfs).  DIR/.nic-KVER marks the modules done.
unpack_boot() { # deb dir kver
	mkdir -p "$2"
	dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards ./boot \
		'./lib/modules/*/modules.builtin' \
		'./lib/modules/*/kernel/drivers/net/virtio_net.ko*' \
		'./lib/modules/*/kernel/drivers/net/net_failover.ko*' \
		'./lib/modules/*/kernel/net/core/failover.ko*' \
		'./lib/modules/*/kernel/drivers/virtio/*' \
		'./lib/modules/*/kernel/drivers/net/ethernet/intel/e1000/e1000.ko*' ||
		die "cannot unpack $1"
	find "$2/lib/modules" -name '*.ko.xz' -exec xz -d -f {} + ||
		die "cannot decompress the modules of $1"
	find "$2/lib/modules" -name '*.ko.zst' | grep -q . &&
		die "zstd-compressed modules in $1: not supported"
	[ -f "$2/lib/modules/$3/kernel/drivers/net/virtio_net.ko" ] ||
		die "no virtio_net.ko for $3 in $1"
	touch "$2/.nic-$3"
}

write_env() { # series kver kdir vmlinuz
	local f="$CACHE/kernel-$1.env"
	[ -f "$4" ] || die "$4 missing after unpacking"
	[ -f "$3/Makefile" ] || die "$3/Makefile missing after unpacking"
	printf 'KVER=%q\nKDIR=%q\nVMLINUZ=%q\n' "$2" "$3" "$4" >"$f.tmp"
	mv "$f.tmp" "$f"
}

# ---------------------------------------------------------------- 6.1
setup_61() {
	local hdr ver kver dir deb
	# The ABI package the linux-headers-amd64 metapackage points at.
	hdr=$(dpkg-query -W -f='${Depends}' linux-headers-amd64 |
		tr ',' '\n' | sed -n 's/^ *\(linux-headers-[^ ]*-amd64\).*/\1/p' | head -n1)
	[ -n "$hdr" ] || die "cannot tell which headers linux-headers-amd64 depends on"
	dpkg-query -W -f='${Status}' "$hdr" 2>/dev/null | grep -q "ok installed" ||
		die "$hdr is not installed"
	ver=$(dpkg-query -W -f='${Version}' "$hdr")
	kver=${hdr#linux-headers-}
	dir="$CACHE/k-6.1"
	if [ -f "$dir/.done-$kver-$ver" ] && [ -f "$dir/.nic-$kver" ] &&
		[ -f "$dir/boot/vmlinuz-$kver" ]; then
		write_env 6.1 "$kver" "/usr/src/$hdr" "$dir/boot/vmlinuz-$kver"
		return
	fi
	log "fetching linux-image-$kver-unsigned $ver"
	rm -rf "$dir" && mkdir -p "$dir/debs"
	(cd "$dir/debs" && apt-get download "${APT_QUIET[@]}" \
		"linux-image-$kver-unsigned=$ver" >/dev/null 2>&1) ||
		die "apt-get download linux-image-$kver-unsigned=$ver failed (try apt-get update)"
	deb=$(ls "$dir"/debs/linux-image-*.deb)
	unpack_boot "$deb" "$dir" "$kver"
	rm -rf "$dir/debs"
	touch "$dir/.done-$kver-$ver"
	write_env 6.1 "$kver" "/usr/src/$hdr" "$dir/boot/vmlinuz-$kver"
}

# ---------------------------------------------------------------- 6.12
# The Debian mirror this machine already uses for its release.
find_mirror() {
	local codename uri
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[ -n "$codename" ] || die "cannot read VERSION_CODENAME from /etc/os-release"
	# apt-cache policy lists every index as "PRIO URI SUITE/COMP ARCH Packages".
	uri=$(apt-cache policy 2>/dev/null |
		awk -v s="$codename/main" '$3 == s && $1 ~ /^[0-9]+$/ { print $2; exit }')
	if [ -z "$uri" ]; then
		# Fall back to reading the sources files (one-line and deb822).
		uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			awk -v s="$codename" '$1 == "deb" { for (i = 2; i < NF; i++) if ($i !~ /^\[/ && $(i+1) == s) { print $i; exit } }')
	fi
	if [ -z "$uri" ]; then
		uri=$(awk -v s="$codename" '
			/^URIs:/ { u = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) { print u; exit } }' \
			/etc/apt/sources.list.d/*.sources 2>/dev/null)
	fi
	[ -n "$uri" ] || die "cannot find the Debian mirror for $codename in the apt sources"
	echo "$codename $uri"
}

setup_612() {
	local m codename mirror apt kver ver img dir deb hdr common kbuild
	m=$(find_mirror) || exit 1
	read -r codename mirror <<<"$m"
	apt="$CACHE/apt"
	mkdir -p "$apt/etc/sources.list.d" "$apt/etc/preferences.d" \
		"$apt/state/lists/partial" "$apt/cache/archives/partial"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $codename-backports main" \
		>"$apt/etc/sources.list"
	: >>"$apt/status"
	local O=(-o "Dir::Etc::sourcelist=$apt/etc/sources.list"
		 -o "Dir::Etc::sourceparts=$apt/etc/sources.list.d"
		 -o "Dir::Etc::preferencesparts=$apt/etc/preferences.d"
		 -o "Dir::State=$apt/state"
		 -o "Dir::State::lists=$apt/state/lists"
		 -o "Dir::State::status=$apt/status"
		 -o "Dir::Cache=$apt/cache"
		 -o "Dir::Cache::archives=$apt/cache/archives")
	# Refresh the private index at most once a day.
	if [ -z "$(find "$apt/state/lists" -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null)" ]; then
		apt-get "${O[@]}" update "${APT_QUIET[@]}" >/dev/null 2>"$apt/update.err" ||
			die "apt-get update of $codename-backports failed: $(tail -n3 "$apt/update.err")"
	fi
	img=$(apt-cache "${O[@]}" depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[^ ]*-amd64\)$/\1/p' | head -n1)
	[ -n "$img" ] || die "no linux-image-amd64 in $codename-backports"
	kver=${img#linux-image-}
	case "$kver" in 6.12.*) ;; *) die "$codename-backports has kernel $kver, expected 6.12.x" ;; esac
	ver=$(apt-cache "${O[@]}" show "$img" 2>/dev/null | sed -n 's/^Version: //p' | head -n1)
	[ -n "$ver" ] || die "cannot find the version of $img"
	dir="$CACHE/k-6.12"
	hdr="$dir/usr/src/linux-headers-$kver"
	if ! { [ -f "$dir/.done-$kver-$ver" ] && [ -f "$dir/.nic-$kver" ] &&
		[ -f "$dir/boot/vmlinuz-$kver" ]; }; then
		log "fetching $codename-backports kernel $kver ($ver): image, headers, kbuild"
		common="linux-headers-${kver%-amd64}-common"
		kbuild=$(apt-cache "${O[@]}" show "linux-headers-$kver=$ver" 2>/dev/null |
			sed -n 's/^Depends: //p' | tr ',' '\n' |
			sed -n 's/^ *\(linux-kbuild-[^ ]*\).*/\1/p' | head -n1)
		[ -n "$kbuild" ] || die "cannot find the kbuild package of linux-headers-$kver"
		rm -rf "$dir" && mkdir -p "$dir/debs"
		(cd "$dir/debs" && apt-get "${O[@]}" download "${APT_QUIET[@]}" \
			"linux-image-$kver-unsigned=$ver" "linux-headers-$kver=$ver" \
			"$common=$ver" "$kbuild=$ver" >/dev/null 2>"$dir/download.err") ||
			die "apt-get download of the $kver packages failed: $(tail -n3 "$dir/download.err")"
		for deb in "$dir"/debs/linux-headers-*.deb "$dir"/debs/linux-kbuild-*.deb; do
			dpkg-deb -x "$deb" "$dir" || die "cannot unpack $deb"
		done
		unpack_boot "$(ls "$dir"/debs/linux-image-*.deb)" "$dir" "$kver"
		rm -rf "$dir/debs" "$dir/download.err"
		# The arch headers' Makefile includes the -common one by absolute
		# path under /usr/src: point it at our copy.
		sed -i "s|^include /usr/src/|include $dir/usr/src/|" "$hdr/Makefile"
		touch "$dir/.done-$kver-$ver"
	fi
	write_env 6.12 "$kver" "$hdr" "$dir/boot/vmlinuz-$kver"
}

case "$WANT" in
6.1) setup_61 ;;
6.12) setup_612 ;;
all) setup_61; setup_612 ;;
esac

for s in 6.1 6.12; do
	[ -f "$CACHE/kernel-$s.env" ] || continue
	[ "$WANT" = all ] || [ "$WANT" = "$s" ] || continue
	( . "$CACHE/kernel-$s.env"; log "kernel $s ready: $KVER" )
done
