#!/usr/bin/env bash
# Every test of the workspace, the emulator tests included: the command the README gives and CI runs
# (.ci/run). Extra arguments go to `cargo test`, e.g. `scripts/test.sh -p cargo-fixedip`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The emulator tests need moto in a venv; installing is idempotent and quick once done.
if [[ -f scripts/emulator.sh ]]; then
    bash scripts/emulator.sh install
fi

# One target directory for everything: the tests that build examples/hello-egress themselves
# (plan --offline, the record-in-binary tests) then reuse what cargo test already compiled.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

# The emulator tests spend most of their time waiting on moto, the chaos proxy's simulated delays
# and the CLI's polling, not on the CPU: run more of them at once than the 2 cores a CI machine has.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-4}"

locked=()
if [[ "${CI:-}" == "true" ]]; then
    # In CI the lock file is the truth: fail rather than resolve different versions.
    locked=(--locked)
fi
# --no-fail-fast: one run reports every failing test binary, not only the first.
exec cargo test "${locked[@]}" --no-fail-fast --workspace --all-features "$@"
