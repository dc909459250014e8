//! Building for Lambda without cargo-lambda: on this x86_64 machine, `cargo fixedip deploy` builds
//! examples/hello-egress for arm64 and for x86_64 with cargo-zigbuild (Zig from the Python package
//! `ziglang`, both installed by `scripts/zig.sh install`), and deploys each to a private moto.
//!
//! For each architecture the test checks what Lambda would: the ELF's machine, the newest GLIBC
//! symbol version it needs (at most provided.al2023's 2.34), and fixedip-core's artifact checks on
//! its Lambda zip. `--target-dir` is passed as a user would, and is where the binaries must be: the
//! option reaches the Lambda build.
//!
//! The example is copied into a workspace of its own per architecture (the copy's only change is
//! `architecture` in [package.metadata.fixedip]), with the repository's `[workspace.dependencies]`
//! and Cargo.lock, so that it builds what the example builds.

use std::path::{Path, PathBuf};

use cargo_fixedip::lambda_build::rust_target;
use cargo_fixedip::package::LambdaZip;
use fixedip_core::artifact::{check_artifact, GlibcVersion, AL2023_GLIBC};
use fixedip_core::settings::Architecture;
use fixedip_tests::{workspace_root, Emulator};
use object::elf;
use object::read::elf::{ElfFile64, FileHeader, Sym};
use object::{Endianness, Object};

/// Zig as scripts/zig.sh installs it; the test fails, saying so, when it is missing.
fn zig() -> PathBuf {
    let venv = std::env::var_os("FIXEDIP_ZIG_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/zig"));
    let zig = venv.join("bin/zig");
    assert!(
        zig.is_file(),
        "zig is not installed ({} is missing): run scripts/zig.sh install",
        zig.display()
    );
    zig
}

/// A copy of examples/hello-egress for `architecture`, in a workspace of its own; returns the
/// package's directory.
fn example_for(architecture: Architecture) -> PathBuf {
    let root = workspace_root();
    let workspace = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cross-build")
        .join(architecture.to_string());
    let package = workspace.join("hello-egress");
    std::fs::create_dir_all(package.join("src")).unwrap();

    // The repository's [workspace.dependencies], their paths made absolute.
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let dependencies: String = manifest
        .lines()
        .skip_while(|line| *line != "[workspace.dependencies]")
        .take_while(|line| *line == "[workspace.dependencies]" || !line.starts_with('['))
        .map(|line| line.replace("path = \"", &format!("path = \"{}/", root.display())) + "\n")
        .collect();
    assert!(dependencies.contains("fixedip-macros"), "{dependencies}");
    std::fs::write(
        workspace.join("Cargo.toml"),
        format!("[workspace]\nresolver = \"2\"\nmembers = [\"hello-egress\"]\n\n{dependencies}"),
    )
    .unwrap();
    std::fs::copy(root.join("Cargo.lock"), workspace.join("Cargo.lock")).unwrap();

    let example = root.join("examples/hello-egress");
    let own = std::fs::read_to_string(example.join("Cargo.toml")).unwrap();
    assert!(!own.contains("[package.metadata.fixedip]"), "{own}");
    std::fs::write(
        package.join("Cargo.toml"),
        format!("{own}\n[package.metadata.fixedip]\narchitecture = \"{architecture}\"\n"),
    )
    .unwrap();
    std::fs::copy(example.join("src/main.rs"), package.join("src/main.rs")).unwrap();
    package
}

/// Every GLIBC version the executable asks of the dynamic loader: the version needs
/// (`.gnu.version_r`, checked before it starts) and the version of each imported symbol
/// (`.gnu.version` of the undefined dynamic symbols), as `(symbol or "", version)`.
fn glibc_versions(binary: &[u8]) -> Vec<(String, GlibcVersion)> {
    let header = elf::FileHeader64::<Endianness>::parse(binary).unwrap();
    let endian = header.endian().unwrap();
    let sections = header.sections(endian, binary).unwrap();
    let mut found = Vec::new();
    let (mut needs, strings) = sections
        .gnu_verneed(endian, binary)
        .unwrap()
        .expect("a glibc executable has version needs");
    let strings = sections.strings(endian, binary, strings).unwrap();
    while let Some((_, mut auxes)) = needs.next().unwrap() {
        while let Some(aux) = auxes.next().unwrap() {
            let name = String::from_utf8_lossy(aux.name(endian, strings).unwrap()).into_owned();
            found.extend(GlibcVersion::parse(&name).map(|v| (String::new(), v)));
        }
    }
    let versions = sections
        .versions(endian, binary)
        .unwrap()
        .expect("symbol versions");
    let dynamic = sections.symbols(endian, binary, elf::SHT_DYNSYM).unwrap();
    for (index, symbol) in dynamic.enumerate() {
        if !symbol.is_undefined(endian) {
            continue;
        }
        let version_index = versions.version_index(endian, index).index();
        if let Some(version) = versions.version(version_index).unwrap() {
            let name = String::from_utf8_lossy(dynamic.symbol_name(endian, symbol).unwrap());
            if let Some(version) = GlibcVersion::parse(&String::from_utf8_lossy(version.name())) {
                found.push((name.into_owned(), version));
            }
        }
    }
    found
}

#[test]
fn zig_builds_the_example_for_both_architectures_and_lambda_would_run_them() {
    let zig = zig();
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cross-build-target");
    for architecture in [Architecture::Arm64, Architecture::X86_64] {
        let package = example_for(architecture);
        let emulator = Emulator::start();
        let output = emulator
            .cargo_fixedip()
            .args(["deploy", "-v", "--target-dir"])
            .arg(&target_dir)
            .current_dir(&package)
            .env("CARGO_ZIGBUILD_ZIG_PATH", &zig)
            // Tests never reach the network: cargo resolves the new workspace from the local
            // registry cache, which the workspace's own build filled.
            .env("CARGO_NET_OFFLINE", "true")
            // What Lambda checks (the ELF's machine, its GLIBC versions, the zip) does not depend
            // on optimization: the release profile without it builds in half the time.
            .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "256")
            .output()
            .expect("cargo-fixedip runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "deploy for {architecture} failed:\n{stderr}"
        );
        // deploy ran fixedip-core's artifact checks before uploading; the test runs them again
        // below, on the binary it finds where --target-dir put it.
        assert!(
            stderr.contains(&format!("building for {architecture} with Zigbuild")),
            "this machine's glibc is newer than Lambda's (or it is not {architecture}): zig builds \
             both architectures:\n{stderr}"
        );
        let binary = target_dir
            .join(rust_target(architecture))
            .join("release/hello-egress");
        let bytes = std::fs::read(&binary)
            .unwrap_or_else(|e| panic!("{}: {e}\n{stderr}", binary.display()));

        let elf = ElfFile64::<Endianness>::parse(&*bytes).expect("a 64-bit ELF");
        let machine = match architecture {
            Architecture::Arm64 => object::Architecture::Aarch64,
            Architecture::X86_64 => object::Architecture::X86_64,
        };
        assert_eq!(elf.architecture(), machine, "{}", binary.display());
        let versions = glibc_versions(&bytes);
        assert!(
            versions.iter().any(|(symbol, _)| !symbol.is_empty()),
            "a glibc build imports versioned symbols: {versions:?}"
        );
        let too_new: Vec<_> = versions.iter().filter(|(_, v)| *v > AL2023_GLIBC).collect();
        assert!(
            too_new.is_empty(),
            "{} needs more than provided.al2023's {AL2023_GLIBC}: {too_new:?}",
            binary.display()
        );

        let zip = LambdaZip::from_binary(&binary).unwrap();
        assert_eq!(check_artifact(&zip.bytes, architecture), []);
    }
}
