//! The README's quickstart, taken literally: a new crate made with `cargo new`, its `[dependencies]`
//! replaced by the README's block, its `src/main.rs` the README's, then the README's own `cargo
//! fixedip plan --offline` line run in it. The one change: the git dependency on fixedip-macros
//! points at this checkout (a path), since tests never reach the network; cargo resolves the rest
//! offline from the local registry cache, which the workspace's own build filled.
//!
//! And the crates publish: `cargo package` of fixedip-requirements, fixedip-core, fixedip-macros
//! and cargo-fixedip, with the metadata the registry asks for.

use std::path::{Path, PathBuf};
use std::process::Command;

use fixedip_tests::{cargo_fixedip_bin, workspace_root};

/// The fenced blocks of the README's "## Quickstart" section, as (language, text).
fn quickstart_blocks() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md");
    let start = readme
        .find("\n## Quickstart")
        .expect("a Quickstart section");
    let section = &readme[start + 1..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    let mut blocks = Vec::new();
    let mut lines = section[..end].lines();
    while let Some(line) = lines.next() {
        let Some(language) = line.strip_prefix("```") else {
            continue;
        };
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        blocks.push((language.to_owned(), body.join("\n") + "\n"));
    }
    blocks
}

fn block<'b>(blocks: &'b [(String, String)], language: &str, containing: &str) -> &'b str {
    blocks
        .iter()
        .find(|(lang, text)| lang == language && text.contains(containing))
        .map(|(_, text)| text.as_str())
        .unwrap_or_else(|| panic!("the quickstart has no ```{language} block with {containing:?}"))
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs a quickstart command line (`cargo fixedip ...`) in `dir`, the CLI under test standing in
/// for the installed `cargo-fixedip`.
fn run_line(line: &str, dir: &Path, target: &Path) -> std::process::Output {
    let words: Vec<&str> = line.split('#').next().unwrap().split_whitespace().collect();
    assert_eq!(&words[..2], ["cargo", "fixedip"], "{line}");
    Command::new(cargo_fixedip_bin())
        .arg("fixedip")
        .args(&words[2..])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .env("CARGO_NET_OFFLINE", "true")
        // What the quickstart's `plan` shows (the record, the stack, the prices) does not depend
        // on optimization: the release profile without it builds lambda_runtime and tokio in a
        // fraction of the time (as tests/tests/cross_build.rs does).
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "256")
        .env("NO_COLOR", "1")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .output()
        .expect("cargo-fixedip runs")
}

#[test]
fn the_quickstart_builds_and_plans_as_written() {
    let blocks = quickstart_blocks();
    let dependencies = block(&blocks, "toml", "[dependencies]");
    let main_rs = block(&blocks, "rust", "#[fixed_egress");
    let commands = block(&blocks, "sh", "cargo fixedip plan --offline");
    assert!(
        block(&blocks, "sh", "cargo new").contains("cargo new partner-sync"),
        "the quickstart makes the crate with cargo new"
    );

    // The one deviation from the README: no network, so the git dependency is this checkout.
    let git = r#"{ git = "https://github.com/fixedip/fixedip" }"#;
    assert!(dependencies.contains(git), "{dependencies}");
    let macros = workspace_root().join("fixedip-macros");
    let dependencies = dependencies.replace(git, &format!("{{ path = {:?} }}", macros));

    let home = tempfile::tempdir().unwrap();
    let status = cargo()
        .args(["new", "--vcs", "none", "--quiet", "partner-sync"])
        .current_dir(home.path())
        .status()
        .unwrap();
    assert!(status.success(), "cargo new");
    let dir = home.path().join("partner-sync");
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let at = manifest
        .find("[dependencies]")
        .expect("cargo new writes [dependencies]");
    let manifest = format!(
        "{}{}\n[workspace]\n",
        &manifest[..at],
        dependencies
            .lines()
            .filter(|l| !l.starts_with("# Cargo.toml"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(dir.join("src/main.rs"), main_rs).unwrap();

    // A target directory of its own that survives runs: the first run builds lambda_runtime and
    // tokio in release mode, the later ones only the function.
    let target: PathBuf = workspace_root().join("target/quickstart");
    let plan = commands
        .lines()
        .find(|l| l.starts_with("cargo fixedip plan --offline"))
        .unwrap();
    let output = run_line(plan, &dir, &target);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "`{plan}`:\n{}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Stack `default` in us-east-1"), "{stdout}");
    assert!(stdout.contains("λ partner-sync"), "{stdout}");
    assert!(stdout.contains("2 × NAT gateway"), "{stdout}");
    assert!(stdout.contains("$73.00 per month"), "{stdout}");
}

#[test]
fn the_crates_package_for_the_registry() {
    // A copy of the tracked files, without the workspace-hack dependency: hakari's hack is never
    // published, and `cargo hakari publish` takes the same line out while it publishes.
    let copy = tempfile::tempdir().unwrap();
    let root = workspace_root();
    let files = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(&root)
        .output()
        .expect("git ls-files");
    assert!(files.status.success());
    for file in files.stdout.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let relative = Path::new(std::str::from_utf8(file).unwrap());
        let source = root.join(relative);
        if !source.is_file() {
            continue; // deleted in the working tree
        }
        let target = copy.path().join(relative);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let mut bytes = std::fs::read(&source).unwrap();
        if relative.file_name().is_some_and(|n| n == "Cargo.toml") {
            let text = String::from_utf8(bytes).unwrap();
            bytes = text
                .lines()
                .filter(|l| !l.starts_with("fixedip-workspace-hack = "))
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                .into_bytes();
        }
        std::fs::write(target, bytes).unwrap();
    }
    // `--no-verify`: the suite builds these very sources; packaging checks the manifests, the
    // files, and that every dependency resolves as the registry will see it.
    let output = cargo()
        .args([
            "package",
            "--no-verify",
            "--offline",
            "-p",
            "fixedip-requirements",
            "-p",
            "fixedip-core",
            "-p",
            "fixedip-macros",
            "-p",
            "cargo-fixedip",
        ])
        .current_dir(copy.path())
        .env("CARGO_TARGET_DIR", copy.path().join("target"))
        .output()
        .expect("cargo package");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "cargo package:\n{stderr}");
    assert!(
        !stderr.contains("warning"),
        "cargo package warned:\n{stderr}"
    );
    for krate in [
        "fixedip-requirements",
        "fixedip-core",
        "fixedip-macros",
        "cargo-fixedip",
    ] {
        let packaged = copy
            .path()
            .join(format!("target/package/{krate}-0.1.0.crate"));
        assert!(packaged.is_file(), "{} is missing", packaged.display());
    }
}
