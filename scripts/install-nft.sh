#!/usr/bin/env bash
# Installs what the nftables sink's kernel test needs (sinks/nftables TestKernel): the nft command
# (Debian package nftables) and ip (iproute2). It installs only when something is missing, the
# machine has apt-get and the script runs as root; otherwise it says why and exits 0, and the
# kernel test skips itself with the precise reason.
#
#   scripts/install-nft.sh
set -euo pipefail

missing=()
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-nft: nft and ip are present"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-nft: not root; not installing ${missing[*]} (the nftables kernel test will skip)"
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-nft: no apt-get; not installing ${missing[*]} (the nftables kernel test will skip)"
	exit 0
fi

echo "install-nft: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A stale package index makes install fail with 404s; refresh it once and retry.
if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
	apt-get update
	apt-get install -y --no-install-recommends "${missing[@]}"
fi
