#!/usr/bin/env bash
# Does a build profile cost time at run time? Runs read-only commands of each given cargo-fixedip
# binary against a local moto server, alternately, and prints the median wall time of each: the
# check behind the install profile's choices (docs/benchmarks.md, "Installing cargo-fixedip from
# source"). Make the binaries with `scripts/bench-install.sh --keep FILE`.
#
#   scripts/bench-cli.sh [--runs N] BINARY...
#
# The commands: `status` and `destroy --dry-run` of a stack with nothing in the region (every
# Describe call of an observation: STS, EC2, IAM, Lambda, SSM through the SDK, then the refusal,
# exit code 12), and `ips`. moto answers from memory on loopback, so what is timed is the
# process: start, the SDK's configuration, signing, serializing, parsing. Needs the moto venv
# (scripts/emulator.sh install).
set -euo pipefail

runs=15
binaries=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) binaries+=("$1"); shift ;;
    esac
done
[[ ${#binaries[@]} -gt 0 ]] || { echo "bench-cli: give at least one binary (try --help)" >&2; exit 2; }

repo="$(cd "$(dirname "$0")/.." && pwd)"
moto="$(bash "$repo/scripts/emulator.sh" bin)"
work="$(mktemp -d -t fixedip-bench-cli.XXXXXX)"
port=$((20000 + RANDOM % 20000))
MOTO_IAM_LOAD_MANAGED_POLICIES=true "$moto" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 50); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/moto-api/" && break
    sleep 0.2
done

# Fake credentials for the emulator only; never real ones.
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1 NO_COLOR=1
unset AWS_PROFILE AWS_SESSION_TOKEN
commands=("status --stack bench" "ips --stack bench" "destroy --stack bench --dry-run")

# Milliseconds of one run; the exit code is not the point (status says 12: nothing there).
run_ms() {
    local start end
    start=$(date +%s%N)
    (cd "$work" && "$@" >/dev/null 2>&1) || true
    end=$(date +%s%N)
    echo $(((end - start) / 1000000))
}

# A warm-up run of each (moto loads its data on the first request).
for binary in "${binaries[@]}"; do
    for command in "${commands[@]}"; do
        # shellcheck disable=SC2086
        run_ms "$binary" fixedip $command >/dev/null
    done
done

echo "$(date -u '+%F %H:%M') UTC, $runs runs each, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| binary | $(printf '%s | ' "${commands[@]}")"
echo "|:---|$(printf -- '---:|%.0s' "${commands[@]}")"
declare -A times
for _ in $(seq "$runs"); do
    for i in "${!binaries[@]}"; do
        for command in "${commands[@]}"; do
            # shellcheck disable=SC2086
            times["$i $command"]+="$(run_ms "${binaries[$i]}" fixedip $command) "
        done
    done
done
median() {
    tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}
for i in "${!binaries[@]}"; do
    row="| ${binaries[$i]} |"
    for command in "${commands[@]}"; do
        row+=" $(echo "${times["$i $command"]}" | median) ms |"
    done
    echo "$row"
done
