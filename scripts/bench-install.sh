#!/usr/bin/env bash
# What installing cargo-fixedip from source costs: the build `cargo install --locked --path
# cargo-fixedip` runs (`cargo build --release --locked -p cargo-fixedip`), cold, in an empty target
# directory, timed with GNU time. Prints one Markdown table row for docs/benchmarks.md.
#
#   scripts/bench-install.sh [--rev REV] [--label TEXT] [--keep FILE] [-- CARGO-BUILD-ARGS...]
#
#   --rev REV     build the tree of that git revision (default: the working tree, uncommitted
#                 changes included), e.g. `--rev main` for the figure before a change
#   --label TEXT  the first cell of the row (default: the revision or "working tree")
#   --keep FILE   copy the built binary to FILE (for scripts/bench-cli.sh)
#   -- ARGS       passed to cargo build, e.g. `-- --config profile.release.lto="thin"` to try a
#                 profile setting without editing Cargo.toml
#
# Figures: wall time; CPU time (user + system of cargo and every rustc and cc it waited for, steadier
# than wall time on a shared machine); peak memory as /usr/bin/time -v reports it (the largest
# resident set of one process, in practice the rustc building aws-sdk-ec2); the peak of the whole
# build's resident memory (every process of the build at once, sampled each second); and the size of
# the binary `cargo install` would copy. The load average before and after is printed: on a machine
# shared with other builds, wall time is an upper bound. Dependencies are fetched before timing
# (downloads are not build time). Needs GNU time (Debian's `time` package).
set -euo pipefail

rev=""
label=""
keep=""
extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rev) rev="$2"; shift 2 ;;
        --label) label="$2"; shift 2 ;;
        --keep) keep="$2"; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done

repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d -t fixedip-install.XXXXXX)"
trap 'rm -rf "$work"' EXIT
if [[ -n "$rev" ]]; then
    git -C "$repo" archive "$rev" | tar -C "$work" -xf -
    label="${label:-$rev ($(git -C "$repo" rev-parse --short "$rev"))}"
else
    tar -C "$repo" --exclude=./target --exclude=./.git --exclude=./.venv -cf - . | tar -C "$work" -xf -
    label="${label:-working tree}"
fi
cargo fetch --locked --manifest-path "$work/Cargo.toml" --quiet

# The sum of every build process's resident memory, sampled each second: what the machine must
# hold at once (/usr/bin/time only knows the largest single process).
sample_total_rss() {
    local pgid="$1" peak=0 kb
    while kill -0 "$pgid" 2>/dev/null; do
        kb=$(ps -o rss= -g "$pgid" 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
        ((kb > peak)) && peak=$kb
        echo "$peak" >"$work/total-rss"
        sleep 1
    done
}

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
times="$work/time.txt"
# setsid: the build gets its own process group, which the sampler sums.
setsid /usr/bin/time -v -o "$times" \
    cargo build --release --locked --quiet -p cargo-fixedip \
    --manifest-path "$work/Cargo.toml" --target-dir "$work/target" "${extra[@]}" &
build=$!
sleep 1
sample_total_rss "$(ps -o pgid= -p "$build" | tr -d ' ')" &
sampler=$!
status=0
wait "$build" || status=$?
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
if [[ $status -ne 0 ]]; then
    echo "bench-install: the build failed (exit $status)" >&2
    cat "$times" >&2
    exit "$status"
fi

wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$times")
cpu=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.0f", u + s }' "$times")
maxrss=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1048576 }' "$times")
total=$(awk '{ printf "%.1f", $1 / 1048576 }' "$work/total-rss")
[[ -z "$keep" ]] || cp "$work/target/release/cargo-fixedip" "$keep"
size=$(stat -c %s "$work/target/release/cargo-fixedip" | awk '{ printf "%.1f", $1 / 1048576 }')

echo "$(date -u '+%F %H:%M') UTC, $(rustc --version), $(nproc) cores, load average before: $load_before, after: $load_after"
echo "cargo build --release --locked -p cargo-fixedip ${extra[*]}"
echo "| build | wall [m:s] | CPU [s] | peak memory, one process [GiB] | peak memory, whole build [GiB] | binary [MB] |"
echo "|:---|---:|---:|---:|---:|---:|"
echo "| $label | $wall | $cpu | $maxrss | $total | $size |"
