//! What `plan --offline` prints for each fixture function (tests/fixtures/functions, and the scope
//! fixtures' three stacks together): the text, the JSON, and both diagrams, kept as insta
//! snapshots (tests/snapshots/), so that a change to any of them shows in review as the output a
//! user will see. `cargo insta review` (or `INSTA_UPDATE=always`) accepts a change.
//!
//! The records come from the fixtures built for the host (debug, into target/fixtures as the
//! end-to-end tests build them; built here when missing), the settings from their Cargo.toml;
//! then the same planning and rendering `plan --offline` runs. What depends on the machine is
//! fixed: the region (us-east-1 unless the package names one) and the architecture (arm64).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use cargo_fixedip::commands::plan::offline_report;
use cargo_fixedip::render::diagram::{draw, Dot, Drawn, Mermaid};
use cargo_fixedip::report::plan::{PlanReport, StackPlan};
use cargo_fixedip::workspace::Workspace;
use fixedip_core::planner::DeclaredFunction;
use fixedip_core::reader;
use fixedip_core::settings::Architecture;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds the fixtures' workspace once per process (a no-op when scripts/test.sh built it).
fn built(workspace: &str) -> PathBuf {
    static FUNCTIONS: OnceLock<PathBuf> = OnceLock::new();
    static SCOPE: OnceLock<PathBuf> = OnceLock::new();
    let once = if workspace == "functions" {
        &FUNCTIONS
    } else {
        &SCOPE
    };
    once.get_or_init(|| {
        let target = repo().join("target/fixtures");
        let manifest = repo().join(format!("tests/fixtures/{workspace}/Cargo.toml"));
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "--workspace", "--manifest-path"])
            .arg(&manifest)
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .expect("cargo build of the fixtures");
        assert!(status.success(), "cargo build of {}", manifest.display());
        target.join("debug")
    })
    .clone()
}

/// The functions of `packages` of a fixtures workspace, as `plan` declares them.
fn declared(workspace: &str, packages: &[&str]) -> Vec<DeclaredFunction> {
    let binaries = built(workspace);
    let manifest = repo().join(format!("tests/fixtures/{workspace}/Cargo.toml"));
    let loaded = Workspace::load(Some(&manifest)).expect("the fixtures' workspace");
    let names: Vec<String> = packages.iter().map(|p| p.to_string()).collect();
    let selection = loaded.select(&names, false, &[]).expect("the fixtures");
    let mut declared = Vec::new();
    for package in &selection.packages {
        for binary in &package.binaries {
            let mut settings = package.settings(binary).expect("the fixture's settings");
            settings.architecture = Architecture::Arm64;
            let path = binaries.join(binary);
            let record = reader::read_single(&path).expect("the fixture's record");
            declared.push(DeclaredFunction {
                record,
                region: settings.region.clone().unwrap_or("us-east-1".into()),
                settings,
                code_sha256: None,
            });
        }
    }
    declared
}

fn report(workspace: &str, packages: &[&str]) -> PlanReport {
    offline_report(declared(workspace, packages), true, |_| {}).expect("an offline plan")
}

/// What a terminal without color shows.
fn plain(text: &str) -> String {
    let mut out = Vec::new();
    std::io::Write::write_all(&mut anstream::StripStream::new(&mut out), text.as_bytes()).unwrap();
    String::from_utf8(out).unwrap()
}

/// The four outputs of one report, each a snapshot named after the fixture.
fn snapshot_all(name: &str, report: &PlanReport) {
    let drawn: Vec<Drawn<'_>> = report.stacks.iter().map(StackPlan::drawn).collect();
    let json = serde_json::to_string_pretty(report).unwrap();
    insta::assert_snapshot!(format!("{name}_text"), plain(&report.to_string()));
    insta::assert_snapshot!(format!("{name}_json"), json);
    insta::assert_snapshot!(format!("{name}_mermaid"), draw(&Mermaid, &drawn));
    insta::assert_snapshot!(format!("{name}_dot"), draw(&Dot, &drawn));
}

/// Every fixture with `#[fixed_egress]`, each planned alone (several name one stack and disagree).
#[test]
fn every_fixture_function() {
    let dir = repo().join("tests/fixtures/functions");
    let mut fixtures: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name()?.to_str()?.to_owned();
            (path.join("Cargo.toml").is_file() && name != "no-attribute").then_some(name)
        })
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 12, "{fixtures:?}");
    for fixture in &fixtures {
        snapshot_all(fixture, &report("functions", &[fixture]));
    }
}

/// The scope fixtures together: three stacks, one of them in two regions, in one report and one
/// diagram.
#[test]
fn scope_fixtures_in_one_report() {
    let report = report("scope", &["alpha", "billing", "billing-eu"]);
    assert_eq!(report.stacks.len(), 3);
    snapshot_all("scope", &report);
}
