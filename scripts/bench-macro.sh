#!/usr/bin/env bash
# What `#[fixed_egress]` costs a user: extra compile time of a clean release build of
# examples/hello-egress, and extra bytes in its binary, against the same function without the
# attribute and without the fixedip-macros dependency.
#
#   scripts/bench-macro.sh [--runs N]     # N clean builds of each variant (default 3; 0: only the
#                                         # per-crate timings and the sizes)
#
# The workspace is copied twice into a temporary directory: `with/` as it is, `without/` with the
# attribute, its `use` and the dependency removed. Both start from the repository's Cargo.lock, so
# every shared crate has the same version. Each build starts from an empty target directory and
# uses the release profile a Lambda ships with. Needs hyperfine (`apt-get install hyperfine`);
# without it, falls back to timing the builds with `date`.
#
# Besides the wall times, one more build of each variant runs with `--timings`, and the script
# prints the compile time of every crate only the annotated build compiles (fixedip-macros,
# fixedip-requirements and their own dependencies): on a loaded machine that difference is steadier than
# the difference of two whole-build times.
set -euo pipefail

runs=3
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done

repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d -t fixedip-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# The release profile `cargo lambda build --release` users ship with.
profile=(--release
    --config 'profile.release.lto="fat"'
    --config 'profile.release.codegen-units=1'
    --config 'profile.release.strip=true'
    --config 'profile.release.panic="abort"')

copy_workspace() {
    mkdir -p "$1"
    tar -C "$repo" --exclude=./target --exclude=./.git -cf - . | tar -C "$1" -xf -
}

copy_workspace "$work/with"
copy_workspace "$work/without"
main="$work/without/examples/hello-egress/src/main.rs"
sed -i -e '/^use fixedip_macros::fixed_egress;$/d' -e '/^#\[fixed_egress(/d' "$main"
sed -i -e '/^fixedip-macros/d' "$work/without/examples/hello-egress/Cargo.toml"
if grep -q fixed_egress "$main"; then
    echo "could not remove #[fixed_egress] from the copy: update this script's sed lines" >&2
    exit 1
fi

# Downloads are not compile time: fetch both dependency graphs first.
for variant in with without; do
    cargo fetch --manifest-path "$work/$variant/Cargo.toml" --quiet
done

# One clean-able build of a variant, as a script so that hyperfine can run it too.
cat >"$work/build.sh" <<BUILD
#!/usr/bin/env bash
# build.sh VARIANT TARGET_DIR [cargo args]
set -euo pipefail
variant="\$1" target="\$2"
shift 2
exec cargo build --quiet --manifest-path "$work/\$variant/Cargo.toml" -p hello-egress \\
    --target-dir "\$target" $(printf "%q " "${profile[@]}") "\$@"
BUILD
chmod +x "$work/build.sh"
build() { "$work/build.sh" "$@"; }

echo "machine: $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "rustc: $(rustc --version)"
echo

if [[ $runs -eq 0 ]]; then
    echo "--runs 0: no whole-build timings"
elif command -v hyperfine >/dev/null; then
    hyperfine --runs "$runs" --style basic --export-markdown "$work/hyperfine.md" \
        --prepare "rm -rf '$work/target-with' '$work/target-without'" \
        -n with "'$work/build.sh' with '$work/target-with'" \
        -n without "'$work/build.sh' without '$work/target-without'"
    echo
    cat "$work/hyperfine.md"
else
    for variant in with without; do
        for ((i = 1; i <= runs; i++)); do
            rm -rf "$work/target-$variant"
            start=$(date +%s.%N)
            build "$variant" "$work/target-$variant"
            awk -v v="$variant" -v i="$i" -v s="$start" -v e="$(date +%s.%N)" \
                'BEGIN { printf "%s run %d: %.1f s\n", v, i, e - s }'
        done
    done
fi
echo "machine load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# Per-crate compile times from one more clean build of each variant.
for variant in with without; do
    rm -rf "$work/timings-$variant"
    build "$variant" "$work/timings-$variant" --timings
done
python3 - "$work/timings-with" "$work/timings-without" <<'EOF'
import json, pathlib, re, sys

def units(target_dir):
    html = next(pathlib.Path(target_dir, "cargo-timings").glob("cargo-timing*.html")).read_text()
    data = json.loads(re.search(r"const UNIT_DATA = (\[.*?\]);\n", html, re.S).group(1))
    total = float(re.search(r"<td>Total time:</td><td>([\d.]+)s", html).group(1))
    return {(u["name"], u["version"], u["target"]): u["duration"] for u in data}, total

with_units, with_total = units(sys.argv[1])
without_units, without_total = units(sys.argv[2])
extra = {k: d for k, d in with_units.items() if k not in without_units}
print("crates only the annotated build compiles (cargo build --timings):")
for (name, version, target), duration in sorted(extra.items(), key=lambda kv: -kv[1]):
    print(f"  {name} {version}{target}: {duration:.2f} s")
print(f"  sum: {sum(extra.values()):.2f} s")
print(f"whole build, --timings run: with {with_total:.1f} s, without {without_total:.1f} s")
print(f"hello-egress itself: with {sum(d for k, d in with_units.items() if k[0] == 'hello-egress'):.2f} s,"
      f" without {sum(d for k, d in without_units.items() if k[0] == 'hello-egress'):.2f} s")
EOF
echo
# The size of what the attribute adds to the shipped binary (the --timings builds are the same
# release builds).
with_size=$(stat -c %s "$work/timings-with/release/hello-egress")
without_size=$(stat -c %s "$work/timings-without/release/hello-egress")
echo "binary with the attribute:    $with_size bytes"
echo "binary without the attribute: $without_size bytes"
echo "difference:                   $((with_size - without_size)) bytes"
if command -v readelf >/dev/null; then
    echo "the .fixedip section:"
    readelf -SW "$work/timings-with/release/hello-egress" | grep -A0 '\.fixedip' || true
fi
echo

echo "machine load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
