#!/usr/bin/env bash
# How long `cargo fixedip deploy` takes to build examples/hello-egress for arm64 on an x86_64
# machine without cargo-lambda: the cargo-zigbuild command line cargo fixedip runs, timed cold (an
# empty target directory), warm with nothing changed, and warm after the function's source changed.
#
#   scripts/bench-cross-build.sh [--native]   # --native: also time the host's own x86_64 release
#                                             # build the same way, for comparison
#
# Needs the tools of `scripts/zig.sh install` (run first; its own time is not counted) and GNU time
# (/usr/bin/time, Debian's `time` package). The
# workspace is copied into a temporary directory so that touching the source leaves the repository
# alone; dependencies are fetched before timing (downloads are not build time).
set -euo pipefail

native=false
while [[ $# -gt 0 ]]; do
    case "$1" in
        --native) native=true; shift ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done

repo="$(cd "$(dirname "$0")/.." && pwd)"
eval "$(bash "$repo/scripts/zig.sh" env)"
work="$(mktemp -d -t fixedip-cross.XXXXXX)"
trap 'rm -rf "$work"' EXIT
tar -C "$repo" --exclude=./target --exclude=./.git --exclude=./.venv -cf - . | tar -C "$work" -xf -
cargo fetch --manifest-path "$work/Cargo.toml" --quiet

# What build.rs and lambda_build.rs put together for one arm64 package (cargo fixedip -v prints it).
zigbuild=(cargo zigbuild --target aarch64-unknown-linux-gnu.2.34 --release
    --message-format=json-render-diagnostics --manifest-path "$work/Cargo.toml"
    --package hello-egress --bins --quiet)
hostbuild=(cargo build --release --message-format=json-render-diagnostics
    --manifest-path "$work/Cargo.toml" --package hello-egress --bins --quiet)

# "wall / CPU" in seconds: the CPU time (user + system, cargo and every rustc and zig it waited
# for) depends less than the wall time on what else the machine runs.
seconds() {
    local times
    times=$(mktemp)
    /usr/bin/time -f '%e %U %S' -o "$times" "$@" >/dev/null
    awk '{ printf "%.1f / %.1f", $1, $2 + $3 }' "$times"
    rm -f "$times"
}

report() {
    local name="$1"
    shift
    local target="$work/target-${name// /-}"
    local cold warm touched
    cold=$(seconds "$@" --target-dir "$target")
    warm=$(seconds "$@" --target-dir "$target")
    touch "$work/examples/hello-egress/src/main.rs"
    touched=$(seconds "$@" --target-dir "$target")
    echo "| $name | $cold | $warm | $touched |"
}

echo "$(date -u +%F), $(rustc --version), zig $("$CARGO_ZIGBUILD_ZIG_PATH" version), $(cargo-zigbuild --version), $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| build | cold, wall / CPU [s] | nothing changed [s] | main.rs changed [s] |"
echo "|:---|---:|---:|---:|"
report "arm64 with cargo-zigbuild" "${zigbuild[@]}"
if $native; then
    report "x86_64 native cargo build" "${hostbuild[@]}"
fi
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
