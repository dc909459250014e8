//! The release archives and `cargo binstall` agree, checked without a network: the targets the
//! release workflow builds are the targets `scripts/release.sh plan` publishes, and for each of
//! them the `[package.metadata.binstall]` templates of cargo-fixedip/Cargo.toml resolve to the
//! archive `scripts/release.sh package` makes and to the path of the binary inside it
//! (docs/release.md).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(relative: &str) -> String {
    let path = repo().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `scripts/release.sh ARGS`, whatever its exit code.
fn run_release_sh(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(repo().join("scripts/release.sh"))
        .args(args)
        .output()
        .expect("bash runs")
}

/// Runs `scripts/release.sh ARGS` and returns its stdout; panics with its stderr when it fails.
fn release_sh(args: &[&str]) -> String {
    let output = run_release_sh(args);
    assert!(
        output.status.success(),
        "scripts/release.sh {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// `scripts/release.sh plan`: the tag, then one "TARGET ARCHIVE" line per target.
fn plan() -> (String, Vec<(String, String)>) {
    let text = release_sh(&["plan"]);
    let mut lines = text.lines();
    let tag = lines
        .next()
        .and_then(|line| line.strip_prefix("release "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the plan starts with `release vX.Y.Z of cargo-fixedip`")
        .to_owned();
    let archives = lines
        .map(|line| {
            let (target, archive) = line.split_once(' ').expect("TARGET ARCHIVE");
            (target.to_owned(), archive.to_owned())
        })
        .collect();
    (tag, archives)
}

/// The `target:` entries of the workflow's build matrix.
fn workflow_targets() -> BTreeSet<String> {
    read(".github/workflows/release.yml")
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- target:"))
        .map(|target| target.trim().to_owned())
        .collect()
}

struct Binstall {
    name: String,
    version: String,
    repo: String,
    pkg_url: String,
    bin_dir: String,
    pkg_fmt: String,
}

fn binstall() -> Binstall {
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(repo().join("Cargo.toml"))
        .no_deps()
        .exec()
        .expect("cargo metadata");
    let package = metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == "cargo-fixedip")
        .expect("cargo-fixedip is a workspace member");
    let table = &package.metadata["binstall"];
    let field = |key: &str| {
        table[key]
            .as_str()
            .unwrap_or_else(|| panic!("[package.metadata.binstall] has no {key}"))
            .to_owned()
    };
    Binstall {
        name: package.name.to_string(),
        version: package.version.to_string(),
        repo: package.repository.clone().expect("a repository"),
        pkg_url: field("pkg-url"),
        bin_dir: field("bin-dir"),
        pkg_fmt: field("pkg-fmt"),
    }
}

/// Fills a binstall template (`{ key }`) as cargo-binstall does for a Unix target; an unknown key
/// fails the test rather than being left in the name.
fn render(template: &str, binstall: &Binstall, target: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closing }") + start;
        let value = match rest[start + 1..end].trim() {
            "name" | "bin" => binstall.name.clone(),
            "version" => binstall.version.clone(),
            "repo" => binstall.repo.clone(),
            "target" => target.to_owned(),
            "binary-ext" => String::new(),
            other => panic!("binstall template key {other:?} is not one this test knows"),
        };
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn the_workflow_builds_every_target_the_plan_publishes() {
    let (_, archives) = plan();
    let planned: BTreeSet<String> = archives.into_iter().map(|(target, _)| target).collect();
    assert_eq!(workflow_targets(), planned);
    // Linux on both architectures and macOS on both, as the README promises.
    for target in [
        "x86_64-unknown-linux-gnu",
        "aarch64-unknown-linux-gnu",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
    ] {
        assert!(planned.contains(target), "no release archive for {target}");
    }
}

#[test]
fn the_plan_refuses_a_tag_that_is_not_the_version() {
    let binstall = binstall();
    let (tag, _) = plan();
    assert_eq!(tag, format!("v{}", binstall.version));
    release_sh(&["plan", "--tag", &tag]);
    let wrong = run_release_sh(&["plan", "--tag", "v0.0.0-not-this"]);
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains(&format!("tag v{}", binstall.version)),
        "the refusal says which tag to push"
    );
}

#[test]
fn binstall_resolves_to_the_archives_the_release_makes() {
    let binstall = binstall();
    assert_eq!(
        binstall.pkg_fmt, "tgz",
        "the archives are gzip-compressed tarballs"
    );
    let (tag, archives) = plan();
    let work = tempfile::tempdir().expect("a temporary directory");
    // A stand-in binary: packing does not look inside it.
    let binary = work.path().join("cargo-fixedip");
    std::fs::write(&binary, b"#!/bin/sh\necho stand-in\n").expect("write");
    make_executable(&binary);
    let out = work.path().join("dist");
    for (target, archive) in archives {
        let url = render(&binstall.pkg_url, &binstall, &target);
        assert_eq!(
            url,
            format!("{}/releases/download/{tag}/{archive}", binstall.repo),
            "binstall's pkg-url for {target}"
        );

        let made = release_sh(&[
            "package",
            &target,
            binary.to_str().expect("utf-8 path"),
            out.to_str().expect("utf-8 path"),
        ]);
        let made = PathBuf::from(made.trim());
        assert_eq!(made, out.join(&archive), "the archive package made");

        // The binary is where bin-dir says, executable, and is the binary that was packed.
        let bin_dir = render(&binstall.bin_dir, &binstall, &target);
        let listing = tar(&["-tvzf", made.to_str().expect("utf-8")]);
        let entry = listing
            .lines()
            .find(|line| line.ends_with(&format!(" {bin_dir}")))
            .unwrap_or_else(|| panic!("{archive} has no {bin_dir}:\n{listing}"));
        assert!(entry.starts_with("-rwxr-xr-x"), "{entry}");
        let content = tar(&["-xOzf", made.to_str().expect("utf-8"), &bin_dir]);
        assert_eq!(content, "#!/bin/sh\necho stand-in\n");

        // The checksum file names the archive and its SHA-256, as `sha256sum --check` reads it.
        let bytes = std::fs::read(&made).expect("read the archive");
        let hex: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let sum = std::fs::read_to_string(out.join(format!("{archive}.sha256"))).expect("sha256");
        assert_eq!(sum, format!("{hex}  {archive}\n"));
    }
}

#[test]
fn packing_the_same_binary_twice_gives_the_same_archive() {
    let work = tempfile::tempdir().expect("a temporary directory");
    let binary = work.path().join("cargo-fixedip");
    std::fs::write(&binary, b"stand-in").expect("write");
    make_executable(&binary);
    let target = "x86_64-unknown-linux-gnu";
    let first = work.path().join("first");
    let second = work.path().join("second");
    let binary = binary.to_str().expect("utf-8");
    release_sh(&["package", target, binary, first.to_str().expect("utf-8")]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    release_sh(&["package", target, binary, second.to_str().expect("utf-8")]);
    let archive = format!("cargo-fixedip-{target}.tar.gz");
    assert_eq!(
        std::fs::read(first.join(&archive)).expect("first"),
        std::fs::read(second.join(&archive)).expect("second")
    );
}

#[test]
fn packing_an_unknown_target_is_refused() {
    let output = run_release_sh(&["package", "riscv64gc-unknown-linux-gnu", "/bin/sh"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a release target"));
}

fn tar(args: &[&str]) -> String {
    let output = Command::new("tar").args(args).output().expect("tar runs");
    assert!(
        output.status.success(),
        "tar {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}
