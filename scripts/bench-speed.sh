#!/usr/bin/env bash
# Issue 18's figures (docs/benchmarks.md, "Speed: AWS's waits, a no-op, many functions"): a fresh
# deploy, a no-op redeploy and a code change of the example through the chaos proxy at AWS's
# timing, with 100 ms on every call; then ten functions of one stack against one. Prints, for each
# run, its calls, mutating calls, depth (round trips one after the other), wall time and the
# deepest chain of calls.
#
#   scripts/bench-speed.sh [--scale S]     S: AWS's timing × S (default 1: NAT gateways pending
#                                          60 s, Lambda 10 s, a new role 8 s); the test suite runs
#                                          the same benchmark at 0.1
#
# Debug build of the CLI, as the suite's; the moto venv and the example are set up by
# scripts/test.sh, which this runs.
set -euo pipefail

scale=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --scale) scale="$2"; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "bench-speed: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."
FIXEDIP_TIMING_SCALE="$scale" exec bash scripts/test.sh -E 'test(/^speed::/)' --no-capture
