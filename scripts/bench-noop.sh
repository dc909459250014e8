#!/usr/bin/env bash
# Issue 18's "a no-op that is nearly free": deploys the example once to a local moto server, then
# times no-op redeploys of each given cargo-fixedip binary, alternately, and prints the median
# wall time of each with its AWS requests (docs/benchmarks.md, "Speed"). The redeploys upload a
# prebuilt zip (`deploy --zip`, as a pipeline that builds with cargo lambda does), so what is timed
# is the CLI: the process's start, the reads of the observation, the plan, the verification.
#
#   scripts/bench-noop.sh [--runs N] BINARY...
#
# BINARY: e.g. target/debug/cargo-fixedip, or a release build from
# `scripts/bench-install.sh --keep FILE`. The example's zip is the test suite's
# (target/debug/hello-egress.fixedip-test.zip; `bash scripts/test.sh` makes it). moto answers from
# memory on loopback with no added latency: what AWS adds is one round trip per level of the
# observation's three.
set -euo pipefail

runs=11
binaries=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) binaries+=("$(realpath "$1")"); shift ;;
    esac
done
[[ ${#binaries[@]} -gt 0 ]] || { echo "bench-noop: give at least one binary (try --help)" >&2; exit 2; }

repo="$(cd "$(dirname "$0")/.." && pwd)"
zip="$repo/target/debug/hello-egress.fixedip-test.zip"
[[ -f "$zip" ]] || { echo "bench-noop: no $zip; run \`bash scripts/test.sh -E 'test(=speed::deploy_noop_and_code_change)'\` once to make it" >&2; exit 1; }

bash "$repo/scripts/emulator.sh" install >&2
work="$(mktemp -d -t fixedip-bench-noop.XXXXXX)"
port=$((20000 + RANDOM % 20000))
setsid bash "$repo/scripts/emulator.sh" start "$port" >"$work/moto.log" 2>&1 &
emulator=$!
trap 'kill -TERM -- "-$emulator" 2>/dev/null || true; wait "$emulator" 2>/dev/null || true; rm -rf "$work"' EXIT
bash "$repo/scripts/emulator.sh" ready "$work/moto.log" "$emulator"

# Dummy credentials for the emulator only; never real ones.
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1 NO_COLOR=1
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE
cd "$repo/examples/hello-egress"

deploy() { "$1" fixedip deploy --zip "$zip" --verbose; }

# The stack, made once by the first binary; every run after it changes nothing.
deploy "${binaries[0]}" >/dev/null 2>"$work/first.log" || { cat "$work/first.log" >&2; exit 1; }

# Milliseconds of one no-op redeploy, and the AWS requests it says it made.
run() {
    local start end requests
    start=$(date +%s%N)
    deploy "$1" >/dev/null 2>"$work/run.log" || { cat "$work/run.log" >&2; exit 1; }
    end=$(date +%s%N)
    requests=$(grep -o '[0-9]* AWS requests, [0-9]* mutating' "$work/run.log" | head -1)
    echo "$(((end - start) / 1000000)) $requests"
}

for binary in "${binaries[@]}"; do run "$binary" >/dev/null; done
echo "$(date -u '+%F %H:%M') UTC, $runs no-op redeploys each, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| binary | no-op redeploy, median | fastest | slowest | AWS requests |"
echo "|:---|---:|---:|---:|:---|"
declare -A times requests
for _ in $(seq "$runs"); do
    for i in "${!binaries[@]}"; do
        read -r ms rest < <(run "${binaries[$i]}")
        times[$i]+="$ms "
        requests[$i]="$rest"
    done
done
for i in "${!binaries[@]}"; do
    sorted=$(echo "${times[$i]}" | tr ' ' '\n' | grep . | sort -n)
    median=$(echo "$sorted" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
    echo "| ${binaries[$i]} | $median ms | $(echo "$sorted" | head -1) ms | $(echo "$sorted" | tail -1) ms | ${requests[$i]} |"
done
