#!/usr/bin/env bash
# The data-plane twin's tools (tests/src/twin): iproute2 (`ip netns`, veth) and nftables (`nft`),
# from the system's packages. Idempotent: does nothing when both are there. Needs root, as the twin
# itself does (network namespaces).
#
#   scripts/twin-tools.sh            install what is missing
#   scripts/twin-tools.sh --check    exit 1, saying what is missing, without installing
set -euo pipefail

missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi
if [[ "${1:-}" == "--check" ]]; then
    echo "twin-tools.sh: missing ${missing[*]}: run scripts/twin-tools.sh" >&2
    exit 1
fi
if [[ "$(id -u)" != 0 ]]; then
    echo "twin-tools.sh: installing ${missing[*]} needs root (the twin's tests need it too)" >&2
    exit 1
fi
echo "twin-tools.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update -qq
    apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
}
