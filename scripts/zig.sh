#!/usr/bin/env bash
# Zig and cargo-zigbuild: how `cargo fixedip deploy` builds a function for Lambda's other
# architecture (arm64 on an x86_64 machine, and the reverse), or for Lambda's glibc (2.34) on a
# machine whose own glibc is newer, without cargo-lambda.
#
#   scripts/zig.sh install   install (or repair) the pinned tools; idempotent, a no-op when done
#   scripts/zig.sh env       print `export CARGO_ZIGBUILD_ZIG_PATH=...`: eval "$(scripts/zig.sh env)"
#   scripts/zig.sh zig       print the path of the zig executable (fails if not installed)
#
# What install does:
#   - Zig from the Python package `ziglang`, into a venv: $FIXEDIP_ZIG_VENV, default <repo>/.venv/zig,
#     with `bin/zig` linked to the package's executable;
#   - cargo-zigbuild from its prebuilt PyPI wheel, into the same venv, linked into cargo's bin
#     directory so that `cargo zigbuild` finds it (what `cargo install` would put there, without
#     a 2-to-5-minute release build of it on 2 cores);
#   - the Rust standard library of both Lambda targets (`rustup target add`).
# cargo-zigbuild finds zig through CARGO_ZIGBUILD_ZIG_PATH (or `python3 -m ziglang`, or `zig` on
# PATH), and so does cargo fixedip: export it as `env` prints.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FIXEDIP_ZIG_VENV:-$REPO/.venv/zig}"
ZIGLANG_PIN='ziglang==0.16.0'
ZIGBUILD_PIN='cargo-zigbuild==0.24.0'
# Lambda's two architectures; the glibc suffix cargo fixedip adds (.2.34) is not part of a rustup name.
TARGETS=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu)
# The stamp holds the pin the venv was built from: a changed pin or a half-built venv means reinstall.
STAMP="$VENV/.fixedip-pin"
PYTHON="${PYTHON:-python3}"

die() {
    echo "zig.sh: $*" >&2
    exit 1
}

zig_healthy() {
    [[ -f "$STAMP" && "$(cat "$STAMP")" == "$ZIGLANG_PIN $ZIGBUILD_PIN" && -x "$VENV/bin/zig" ]] &&
        "$VENV/bin/zig" version >/dev/null 2>&1
}

install_zig() {
    if zig_healthy; then
        echo "zig.sh: zig $("$VENV/bin/zig" version) in $VENV is up to date ($ZIGLANG_PIN)" >&2
        return
    fi
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found: install Python 3.9 or later, or set PYTHON"
    echo "zig.sh: installing $ZIGLANG_PIN $ZIGBUILD_PIN into $VENV" >&2
    local started=$SECONDS
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    "$PYTHON" -m venv "$VENV" || die "could not create a venv: install python3-venv (Debian/Ubuntu) and retry"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$ZIGLANG_PIN" "$ZIGBUILD_PIN" ||
        die "pip could not install $ZIGLANG_PIN $ZIGBUILD_PIN: check access to PyPI, then run '$0 install' again"
    # The package ships zig's own executable beside its lib/ directory; a symlink keeps zig finding
    # its lib/ (it resolves its own path) and spares a Python start on every `zig cc`.
    local zig
    zig="$("$VENV/bin/python" -c 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))')"
    [[ -x "$zig" ]] || die "$ZIGLANG_PIN has no zig executable at $zig"
    ln -sf "$zig" "$VENV/bin/zig"
    "$VENV/bin/zig" version >/dev/null || die "$VENV/bin/zig does not run"
    # Written last: an interrupted install leaves no stamp and is redone next time.
    printf '%s' "$ZIGLANG_PIN $ZIGBUILD_PIN" >"$STAMP"
    echo "zig.sh: zig $("$VENV/bin/zig" version) installed in $((SECONDS - started)) s" >&2
}

install_cargo_zigbuild() {
    # Cargo runs `cargo zigbuild` as the `cargo-zigbuild` it finds in its bin directory or on PATH.
    local bin="${CARGO_HOME:-$HOME/.cargo}/bin"
    mkdir -p "$bin"
    if [[ "$(readlink "$bin/cargo-zigbuild" 2>/dev/null || true)" != "$VENV/bin/cargo-zigbuild" ]]; then
        ln -sf "$VENV/bin/cargo-zigbuild" "$bin/cargo-zigbuild"
    fi
    cargo zigbuild --help >/dev/null 2>&1 || die "cargo does not find cargo-zigbuild in $bin: is $bin cargo's bin directory?"
    echo "zig.sh: $("$bin/cargo-zigbuild" --version) in $bin" >&2
}

install_targets() {
    command -v rustup >/dev/null ||
        die "rustup not found: install the Rust standard library for ${TARGETS[*]} the way your toolchain provides it"
    # A no-op for a target already installed.
    rustup target add "${TARGETS[@]}" >&2 ||
        die "rustup could not add ${TARGETS[*]}: check access to the Rust distribution server"
}

zig_path() {
    zig_healthy || die "zig is not installed in $VENV: run scripts/zig.sh install"
    echo "$VENV/bin/zig"
}

case "${1:-}" in
install)
    install_zig
    install_cargo_zigbuild
    install_targets
    echo "zig.sh: ready; for cargo fixedip and cargo zigbuild: export CARGO_ZIGBUILD_ZIG_PATH=$VENV/bin/zig" >&2
    ;;
env) echo "export CARGO_ZIGBUILD_ZIG_PATH=$(zig_path)" ;;
zig) zig_path ;;
*)
    echo "usage: $0 install | env | zig" >&2
    exit 2
    ;;
esac
