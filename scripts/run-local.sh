#!/usr/bin/env bash
# The main job, locally and without AWS: plan the example function offline, then deploy it to a local
# AWS emulator (moto on 127.0.0.1, installed in a venv by scripts/emulator.sh) and print its fixed IPs.
#
#   scripts/run-local.sh            region us-east-1, emulator on port 5000
#   AWS_REGION=ap-northeast-1 FIXEDIP_MOTO_PORT=5001 scripts/run-local.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

REGION="${AWS_REGION:-us-east-1}"
PORT="${FIXEDIP_MOTO_PORT:-5000}"
EXAMPLE=examples/hello-egress/Cargo.toml
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

cargo build --quiet -p cargo-fixedip
fixedip() { "$CARGO_TARGET_DIR/debug/cargo-fixedip" fixedip "$@"; }

echo "==> cargo fixedip plan --offline (no AWS)" >&2
fixedip plan --offline --region "$REGION" --manifest-path "$EXAMPLE"

if [[ ! -f scripts/emulator.sh ]] || ! fixedip deploy --help >/dev/null 2>&1; then
    echo "==> deploy is not built into this cargo-fixedip yet: stopping after the offline plan" >&2
    exit 0
fi

bash scripts/emulator.sh install
# moto logs every request: keep that out of the way, in a file.
log="${TMPDIR:-/tmp}/fixedip-moto-$PORT.log"
echo "==> starting the AWS emulator (moto) on 127.0.0.1:$PORT, its log in $log" >&2
# In its own process group where setsid exists, so that stopping the group stops moto_server too,
# whatever the emulator script's own cleanup does.
if command -v setsid >/dev/null; then
    setsid bash scripts/emulator.sh start "$PORT" >"$log" 2>&1 &
    emulator=$!
    stop="-$emulator"
else
    bash scripts/emulator.sh start "$PORT" >"$log" 2>&1 &
    emulator=$!
    stop="$emulator"
fi
trap 'kill -TERM -- "$stop" 2>/dev/null || true; wait "$emulator" 2>/dev/null || true' EXIT
# The launcher (tests/moto) says so once moto answers and is configured; the first run builds it.
bash scripts/emulator.sh ready "$log" "$emulator"

# Every AWS call goes to the emulator, with its dummy credentials; no profile is read.
export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION="$REGION"
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE

echo "==> cargo fixedip deploy (against the emulator)" >&2
fixedip deploy --manifest-path "$EXAMPLE"
echo "==> cargo fixedip ips" >&2
fixedip ips --manifest-path "$EXAMPLE"
