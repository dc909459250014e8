#!/usr/bin/env bash
# The local AWS emulator (moto server) that fixedip's end-to-end tests and scripts/run-local.sh use.
#
#   scripts/emulator.sh install        create or repair the venv (idempotent; a few seconds when fresh)
#   scripts/emulator.sh start [PORT]   run moto on 127.0.0.1:PORT (default 5000) in the foreground, started
#                                      as every test starts it (tests/moto: the settings of docs/emulator.md)
#   scripts/emulator.sh bin            print the path of moto_server (fails if not installed)
#   scripts/emulator.sh ready LOG PID  wait until the `start` running as PID, writing LOG, says moto
#                                      answers (3 minutes at most: the first start builds the launcher)
#
# The venv lives in $FIXEDIP_MOTO_VENV, default <repo>/.venv/moto. Nothing listens beyond loopback.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FIXEDIP_MOTO_VENV:-$REPO/.venv/moto}"
# Only the services fixedip calls: `moto[server]` would pull every service (twice the size and time).
# flask and flask-cors are what moto_server itself needs. openapi-spec-validator: moto's
# DescribeVpcEndpointServices imports its cloudformation module, which needs it (without it the first
# call answers HTTP 500 and later ones an empty list).
# `autoscaling` (nat-self-healing's groups) pulls no package of its own: moto ships every service's
# code; the extra is named so that the pin says what the tests use.
PIN='moto[ec2,iam,ssm,sts,autoscaling,awslambda-simple]==5.2.5 flask flask-cors openapi-spec-validator==0.9.0'
# The stamp holds the pin the venv was built from: a changed pin or a half-built venv means reinstall.
STAMP="$VENV/.fixedip-pin"
PYTHON="${PYTHON:-python3}"

die() {
    echo "emulator.sh: $*" >&2
    exit 1
}

# True when the venv was built from the current pin and its moto still imports.
healthy() {
    [[ -f "$STAMP" && "$(cat "$STAMP")" == "$PIN" && -x "$VENV/bin/moto_server" ]] &&
        "$VENV/bin/python" -c 'import moto, flask, flask_cors, openapi_spec_validator' 2>/dev/null
}

install() {
    if healthy; then
        echo "emulator.sh: $VENV is up to date ($PIN)" >&2
        return
    fi
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found: install Python 3.9 or later, or set PYTHON"
    echo "emulator.sh: installing $PIN into $VENV" >&2
    local started=$SECONDS
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    "$PYTHON" -m venv "$VENV" || die "could not create a venv: install python3-venv (Debian/Ubuntu) and retry"
    # Word splitting of $PIN is intended: it is a list of requirement specifiers.
    # shellcheck disable=SC2086
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $PIN ||
        die "pip could not install $PIN: check access to PyPI, then run '$0 install' again"
    # Written last: an interrupted install leaves no stamp and is redone next time.
    printf '%s' "$PIN" >"$STAMP"
    echo "emulator.sh: installed in $((SECONDS - started)) s" >&2
}

bin() {
    healthy || die "moto is not installed in $VENV: run scripts/emulator.sh install"
    echo "$VENV/bin/moto_server"
}

# One launcher for moto, the tests' own (tests/moto, the `fixedip-moto` binary): the same settings
# (docs/emulator.md) whether a test, run-local.sh or a person starts it. It stops moto with it.
start() {
    local port="${1:-5000}"
    bin >/dev/null
    exec cargo run --quiet -p fixedip-moto -- "$port"
}

# Waits for the launcher's "ready" line in its log; fails if it exits first or takes too long.
ready() {
    local log="$1" pid="$2" tries=0
    until grep -q '^fixedip-moto: moto ready on' "$log" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || die "the emulator did not start; see $log"
        ((++tries > 1800)) && die "the emulator did not start within 3 minutes; see $log"
        sleep 0.1
    done
}

case "${1:-}" in
install) install ;;
start)
    shift
    start "$@"
    ;;
bin) bin ;;
ready)
    shift
    ready "$@"
    ;;
*)
    echo "usage: $0 install | start [PORT] | bin | ready LOG PID" >&2
    exit 2
    ;;
esac
