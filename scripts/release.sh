#!/usr/bin/env bash
# The release archives of cargo-fixedip: what a release publishes, how each archive is built and
# packed. .github/workflows/release.yml runs it; docs/release.md explains the release; the binstall
# metadata in cargo-fixedip/Cargo.toml points at the archives it makes, which
# cargo-fixedip/tests/release.rs checks.
#
#   scripts/release.sh plan [--tag TAG]          the tag and the archive of every target, one line
#                                                each ("TARGET ARCHIVE"); with --tag, fail unless
#                                                TAG is v<version of cargo-fixedip>
#   scripts/release.sh build TARGET              build cargo-fixedip for TARGET as a release does
#   scripts/release.sh package TARGET [BINARY] [OUT]
#                                                pack BINARY (default: what `build` made) into
#                                                OUT/cargo-fixedip-TARGET.tar.gz (default OUT: dist/),
#                                                with its .sha256 beside it
#
# Linux archives are built with cargo-zigbuild against glibc 2.28 (Debian 10, Ubuntu 20.04, RHEL 8
# and later), whatever the build machine's own glibc; `build` checks the binary asks for no newer
# symbol. macOS archives are built with Xcode's toolchain, both architectures on one machine.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NAME=cargo-fixedip
# Every target a release publishes. The workflow's build matrix lists the same (a test checks it).
TARGETS=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-apple-darwin aarch64-apple-darwin)
# The newest glibc a Linux archive may need: manylinux_2_28, the oldest distributions still supported.
GLIBC=2.28

die() {
    echo "release.sh: $*" >&2
    exit 1
}

known_target() {
    local target
    for target in "${TARGETS[@]}"; do
        [[ "$target" == "$1" ]] && return 0
    done
    die "$1 is not a release target (${TARGETS[*]})"
}

version() {
    # path+file:///…/cargo-fixedip#0.1.0, or …#cargo-fixedip@0.1.0 for another package name.
    local id
    id="$(cargo pkgid --quiet --manifest-path "$REPO/Cargo.toml" -p "$NAME")"
    echo "${id##*[#@]}"
}

archive() {
    echo "$NAME-$1.tar.gz"
}

plan() {
    local tag="" version
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --tag) tag="$2"; shift 2 ;;
            *) die "unknown argument to plan: $1" ;;
        esac
    done
    version="$(version)"
    if [[ -n "$tag" && "$tag" != "v$version" ]]; then
        die "the tag $tag does not name the version in cargo-fixedip/Cargo.toml ($version): tag v$version"
    fi
    echo "release v$version of $NAME"
    local target
    for target in "${TARGETS[@]}"; do
        echo "$target $(archive "$target")"
    done
}

# The newest GLIBC_x.y symbol version the binary needs, or nothing for a static binary.
newest_glibc() {
    objdump -T "$1" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n 1
}

build() {
    local target="${1:?build needs a TARGET}"
    known_target "$target"
    local binary="$REPO/target/$target/release/$NAME"
    case "$target" in
        *-linux-gnu)
            # cargo-zigbuild links against the glibc named after the target (zig ships them all).
            bash "$REPO/scripts/zig.sh" install
            eval "$(bash "$REPO/scripts/zig.sh" env)"
            cargo zigbuild --release --locked -p "$NAME" --target "$target.$GLIBC" \
                --manifest-path "$REPO/Cargo.toml"
            local newest
            newest="$(newest_glibc "$binary")"
            if [[ -n "$newest" && "$(printf '%s\n%s\n' "$newest" "$GLIBC" | sort -V | tail -n 1)" != "$GLIBC" ]]; then
                die "$binary needs glibc $newest, newer than $GLIBC"
            fi
            echo "release.sh: $binary needs glibc ${newest:-nothing} (at most $GLIBC)" >&2
            ;;
        *-apple-darwin)
            rustup target add "$target"
            cargo build --release --locked -p "$NAME" --target "$target" --manifest-path "$REPO/Cargo.toml"
            ;;
    esac
    # Run it where the machine can: a binary that does not start must not be published.
    if [[ "$target" == "$(rustc -vV | sed -n 's/^host: //p')" ]]; then
        "$binary" fixedip --version
    fi
}

package() {
    local target="${1:?package needs a TARGET}"
    known_target "$target"
    local binary="${2:-$REPO/target/$target/release/$NAME}"
    local out="${3:-$REPO/dist}"
    [[ -x "$binary" ]] || die "$binary is not an executable: run '$0 build $target' first"
    mkdir -p "$out"
    out="$(cd "$out" && pwd)"
    local stage
    stage="$(mktemp -d)"
    # The archive holds one directory named like the archive: what binstall's bin-dir points into.
    local dir="$stage/$NAME-$target"
    mkdir -p "$dir"
    cp "$binary" "$dir/$NAME"
    chmod 755 "$dir/$NAME"
    cp "$REPO/README.md" "$dir/"
    chmod 644 "$dir/README.md"
    chmod 755 "$dir"
    local file
    file="$(archive "$target")"
    # Sorted names and fixed owner and times: the same binary gives the same archive.
    tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime='@0' \
        -cf - "$NAME-$target" | gzip -n -9 >"$out/$file"
    rm -rf "$stage"
    (cd "$out" && sha256sum "$file" >"$file.sha256")
    echo "$out/$file"
}

command="${1:-}"
shift || true
case "$command" in
    plan) plan "$@" ;;
    build) build "$@" ;;
    package) package "$@" ;;
    -h|--help|"") sed -n '2,19p' "$0" ;;
    *) die "unknown command $command (try --help)" ;;
esac
