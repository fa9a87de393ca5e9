#!/usr/bin/env bash
# Installs the Debian packages the txbuf-bench peers need:
#   gRPC peer: libgrpc++-dev protobuf-compiler-grpc (pkg-config grpc++)
#   NFS peer:  nfs-ganesha nfs-ganesha-vfs rpcbind (server), libnfs-dev (client)
# Idempotent: packages already installed are left alone. Uses sudo when not
# root. Re-run CMake afterwards so bench/targets picks the peers up.
set -euo pipefail

pkgs=(libgrpc++-dev protobuf-compiler-grpc nfs-ganesha nfs-ganesha-vfs
      libnfs-dev rpcbind pkg-config)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-peers: all peer packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

echo "install-peers: installing ${missing[*]}"
# Installing nfs-ganesha/rpcbind must not start daemons from maintainer scripts
# inside containers without an init; policy-rc.d is honoured by invoke-rc.d.
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; then
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
echo "install-peers: done; re-run cmake to enable the gRPC/NFS peers"
