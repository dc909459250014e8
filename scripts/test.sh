#!/usr/bin/env bash
# Every test of the workspace, the emulator tests included, with cargo-nextest: the command the README
# gives and CI runs (.ci/run). docs/testing.md explains the suite.
#
#   scripts/test.sh                  everything (CI: the `ci` profile, --locked)
#   scripts/test.sh --quick          everything but the `slow` group (crash-anywhere, IP stability,
#                                    record-in-binary): a few minutes less, for a local loop
#   scripts/test.sh deploy::         only the tests whose name contains `deploy::`
#   scripts/test.sh -E 'package(fixedip-core)'   any other cargo-nextest argument
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The emulator tests need moto in a venv; installing is idempotent and quick once done.
bash scripts/emulator.sh install
# Zig and cargo-zigbuild: the cross_build test builds the example for arm64 on this machine.
bash scripts/zig.sh install
# iproute2 and nftables: the data-plane twin (tests/src/twin) builds network namespaces with them.
bash scripts/twin-tools.sh

# cargo-nextest is on the project's machines; where it is not, install it (before CARGO_TARGET_DIR
# is set below, so that its build does not land in the project's target directory).
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "test.sh: installing cargo-nextest" >&2
    cargo install --locked cargo-nextest
fi

# One target directory for everything: the tests that build examples/hello-egress and the fixtures
# themselves (plan --offline, record-in-binary) then reuse what the test build already compiled.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

profile=default
locked=()
if [[ "${CI:-}" == "true" ]]; then
    profile=ci
    # In CI the lock file is the truth: fail rather than resolve different versions.
    locked=(--locked)
fi

args=()
for arg in "$@"; do
    case "$arg" in
    --quick) args+=(-E 'not group(slow)') ;;
    *) args+=("$arg") ;;
    esac
done

# Build every test binary first, then check that a subset resolves the same dependency features as
# the whole workspace (the workspace-hack crate, .config/hakari.toml): running one test must never
# rebuild the AWS SDK.
cargo test "${locked[@]}" --workspace --no-run --quiet
stale="$(cargo test "${locked[@]}" -p fixedip-tests --no-run --message-format=json 2>/dev/null |
    grep '"reason":"compiler-artifact"' | grep '"fresh":false' | grep -o '#aws-[a-z0-9-]*@' | tr -d '#@' | sort -u | tr '\n' ' ' || true)"
if [[ -n "$stale" ]]; then
    echo "test.sh: \`-p fixedip-tests\` rebuilt $stale: the workspace-hack is out of date." >&2
    echo "test.sh: run \`cargo hakari generate && cargo hakari manage-deps\` (cargo install cargo-hakari) and commit workspace-hack/." >&2
    exit 1
fi

# What the tests build themselves, built once here: the example (debug for the end-to-end tests'
# zips, release as `cargo fixedip plan` and `deploy` build it) and the fixture functions (their own
# workspace, in target/fixtures). Otherwise every test process that needs one waits for the first
# to build it, and on a fresh clone that wait alone can outlast a test's timeout.
cargo build "${locked[@]}" --quiet -p hello-egress --bins
cargo build "${locked[@]}" --quiet --release -p hello-egress --bins
CARGO_TARGET_DIR="$PWD/target/fixtures" cargo build "${locked[@]}" --quiet --workspace \
    --manifest-path tests/fixtures/functions/Cargo.toml
CARGO_TARGET_DIR="$PWD/target/fixtures" cargo build "${locked[@]}" --quiet --workspace \
    --manifest-path tests/fixtures/scope/Cargo.toml
# The acceptance suite's functions (copies of the example in a workspace of each run's own):
# their dependencies, built once into target/acceptance/build.
"$CARGO_TARGET_DIR/debug/fixedip-acceptance" prepare

exec cargo nextest run "${locked[@]}" --workspace --profile "$profile" "${args[@]}"
