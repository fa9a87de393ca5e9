#!/usr/bin/env bash
# Installs the Debian 12 packages txbuf needs to build, test and run.
# Idempotent: only missing packages are installed. Needs root or sudo.
set -euo pipefail

pkgs=(
  build-essential cmake ninja-build pkg-config git
  liburing-dev libprotobuf-dev protobuf-compiler libabsl-dev libssl-dev
  libtomlplusplus-dev libgoogle-glog-dev prometheus-cpp-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang clang-format clang-tidy libclang-rt-14-dev
  iproute2 procps python3
  # txbuf mount (libfuse3) and its tests (fusermount3, fio)
  libfuse3-dev fuse3 fio
  # tests/dist/: man pages rendered with groff
  groff-base
  # cpack -G DEB (dpkg-shlibdeps; CPack looks for file) and tests/install/
  # (objdump)
  dpkg-dev file binutils
)
pkgs+=("$@")

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
stamp=/var/lib/apt/periodic/txbuf-update-stamp
if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +360 2>/dev/null)" ]; then
  $sudo apt-get update -qq
  $sudo mkdir -p "$(dirname "$stamp")" && $sudo touch "$stamp"
fi
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
