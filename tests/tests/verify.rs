//! `cargo fixedip verify` end to end, one smoke test per kind of network: the network of the AWS
//! console guides built by hand in a private moto through the real SDK (`fixedip_tests::console`),
//! the same with a NAT instance, fixedip's own stack, and one broken network whose failure is
//! checked as a user reads it (exit code, JSON and text). Then `--probe`, and the artifact checks
//! of `deploy`.
//!
//! Each way of breaking a network, and what verify names for it, is not re-checked here with a
//! network of its own (twenty SDK calls each): the egress rules are fixedip-core's unit tests
//! (`verify.rs`), and the reader that turns the account's answers into the rules' model is
//! tested on moto's recorded answers for every breakage (cargo-fixedip/src/aws/network_tests.rs,
//! recorded by `cargo run -p fixedip-tests --bin record-network-answers`).
//!
//! moto never marks a route `blackhole` (on AWS a route to a deleted NAT gateway is one): the route
//! to a deleted NAT gateway is found through the gateway's `deleted` state instead, and
//! `blackhole-route` is covered by fixedip-core's unit tests.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use fixedip_tests::console::{
    break_network, build_console_network, switch_zone_a_to_a_nat_instance,
};
use fixedip_tests::{
    count, example_binary, example_dir, example_zip, write_lambda_zip, Emulator, REGION,
};

/// Exit code `VERIFY` (cargo-fixedip's exit_code.rs, docs/cli.md).
const EXIT_VERIFY: i32 = 9;
/// Exit code `BUILD`: an artifact that cannot run on Lambda.
const EXIT_BUILD: i32 = 5;

// -------------------------------------------------------------------------------------------------
// Running the CLI.
// -------------------------------------------------------------------------------------------------

fn fixedip_output(emulator: &Emulator, args: &[&str]) -> Output {
    let mut command = emulator.cargo_fixedip();
    command.args(args).current_dir(example_dir());
    command.output().expect("cargo-fixedip runs")
}

/// The outcome of `verify --json`: its exit code and its report.
struct Verdict {
    exit: i32,
    report: serde_json::Value,
    stderr: String,
}

impl Verdict {
    /// Every finding code of every function, with duplicates removed.
    fn codes(&self) -> BTreeSet<String> {
        self.functions()
            .iter()
            .flat_map(|f| f["findings"].as_array().expect("findings").iter())
            .map(|f| f["code"].as_str().expect("code").to_owned())
            .collect()
    }

    fn findings(&self) -> Vec<serde_json::Value> {
        self.functions()
            .iter()
            .flat_map(|f| f["findings"].as_array().expect("findings").clone())
            .collect()
    }

    /// Every function verified, whichever stack (or none) it was verified in.
    fn functions(&self) -> Vec<serde_json::Value> {
        self.report["stacks"]
            .as_array()
            .expect("stacks")
            .iter()
            .flat_map(|s| s["functions"].as_array().expect("functions").clone())
            .collect()
    }

    fn assert_passes_clean(&self) {
        assert_eq!(
            self.exit, 0,
            "verify failed: {:#}\n{}",
            self.report, self.stderr
        );
        assert_eq!(self.codes(), BTreeSet::new(), "{:#}", self.report);
    }

    /// Fails (exit `VERIFY`) with exactly this finding code, every finding of it an error naming a
    /// resource and a fix.
    fn assert_fails_with(&self, code: &str) {
        assert_eq!(
            self.codes(),
            BTreeSet::from([code.to_owned()]),
            "{:#}",
            self.report
        );
        assert_eq!(
            self.exit, EXIT_VERIFY,
            "exit code: {:#}\n{}",
            self.report, self.stderr
        );
        for finding in self.findings() {
            assert_eq!(finding["severity"], "error", "{finding:#}");
            assert!(!finding["resource"].as_str().unwrap().is_empty());
            assert!(!finding["fix"].as_str().unwrap().is_empty());
        }
    }
}

fn verify(emulator: &Emulator, args: &[&str]) -> Verdict {
    let mut all = vec!["verify", "--json"];
    all.extend_from_slice(args);
    let output = fixedip_output(emulator, &all);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("verify --json printed no JSON ({e}): {stdout}\n{stderr}"));
    Verdict {
        exit: output.status.code().expect("an exit code"),
        report,
        stderr,
    }
}

// -------------------------------------------------------------------------------------------------
// The network of the console guides, built by hand.
// -------------------------------------------------------------------------------------------------

// -------------------------------------------------------------------------------------------------
// Correct networks pass.
// -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_console_guide_network_passes() {
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    let mark = emulator.mark();
    let verdict = verify(&emulator, &network.verify_args());
    verdict.assert_passes_clean();
    assert_eq!(verdict.functions()[0]["vpc_id"], network.vpc);
    let (_, mutating) = count(&emulator.requests_since(mark));
    assert_eq!(mutating, 0, "verify only reads");
}

#[tokio::test]
async fn a_nat_instance_set_up_as_the_guides_say_passes() {
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    let (_, ip) = switch_zone_a_to_a_nat_instance(&emulator, &network).await;
    let mut args = network.verify_args();
    args.extend(["--ip", ip.as_str()]);
    verify(&emulator, &args).assert_passes_clean();
}

fn deploy(emulator: &Emulator, zip: &Path) {
    let args = ["deploy", "--json", "--zip", zip.to_str().unwrap()];
    let output = fixedip_output(emulator, &args);
    assert!(
        output.status.success(),
        "deploy failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    // deploy verifies what it deployed: every function passed, with no finding.
    for stack in report["stacks"].as_array().unwrap() {
        for verdict in stack["verification"].as_array().unwrap() {
            assert_eq!(verdict["passed"], true, "{verdict:#}");
            assert_eq!(verdict["findings"], serde_json::json!([]), "{verdict:#}");
        }
    }
}

#[tokio::test]
async fn a_fixedip_stack_in_two_azs_passes() {
    let emulator = Emulator::start();
    deploy(&emulator, example_zip());
    let verdict = verify(&emulator, &[]);
    verdict.assert_passes_clean();
    assert_eq!(
        verdict.report["stacks"][0]["allowed"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(verdict.functions().len(), 1);
}

// -------------------------------------------------------------------------------------------------
// One thing broken, one finding.
// -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn function_attached_to_the_public_subnets() {
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    break_network(&emulator, &network, "function-in-public-subnets").await;
    verify(&emulator, &network.verify_args()).assert_fails_with("function-in-public-subnet");
}

// -------------------------------------------------------------------------------------------------
// The text output and the exit code.
// -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn text_output_names_the_resource_the_problem_and_the_fix() {
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    // Zone b's private table loses its default route.
    break_network(&emulator, &network, "default-route-deleted").await;
    let mut args = vec!["verify"];
    args.extend(network.verify_args());
    let output = fixedip_output(&emulator, &args);
    assert_eq!(output.status.code(), Some(EXIT_VERIFY));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("FAIL"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "error[missing-default-route] {}",
            network.zones[1].private_table
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("fix: add one to the NAT gateway of"),
        "{stdout}"
    );
    assert!(stdout.contains(&network.zones[1].az), "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("egress is not proven for partner-sync"),
        "{stderr}"
    );
}

// -------------------------------------------------------------------------------------------------
// --probe: the function says which address it left from.
// -------------------------------------------------------------------------------------------------

/// Queues the answer moto's Lambda gives to the next Invoke (there is no Docker engine to run the
/// function here; on AWS the function itself answers).
fn queue_probe_answer(emulator: &Emulator, ip: &str) {
    let answer = serde_json::json!({ "ip": ip }).to_string();
    let body = serde_json::json!({ "results": [answer], "region": REGION }).to_string();
    emulator.moto_api("POST", "/moto-api/static/lambda-simple/response", &body);
}

#[tokio::test]
async fn probe_passes_when_the_function_leaves_from_a_listed_ip() {
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    queue_probe_answer(&emulator, &network.zones[1].ip);
    let mark = emulator.mark();
    let mut args = network.verify_args();
    args.push("--probe");
    let verdict = verify(&emulator, &args);
    verdict.assert_passes_clean();
    let functions = verdict.functions();
    let probe = &functions[0]["probe"];
    assert_eq!(probe["ip"], network.zones[1].ip.as_str());
    assert_eq!(probe["allowed"], true);
    let invokes = emulator
        .requests_since(mark)
        .iter()
        .filter(|r| r.operation == "Invoke")
        .count();
    assert_eq!(invokes, 1, "one probe per function");
}

#[tokio::test]
async fn probe_fails_when_the_function_leaves_from_another_ip() {
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    queue_probe_answer(&emulator, "198.51.100.23");
    let mut args = network.verify_args();
    args.push("--probe");
    let verdict = verify(&emulator, &args);
    assert_eq!(verdict.exit, EXIT_VERIFY, "{}", verdict.stderr);
    // The configuration is fine; only what the function saw is wrong.
    assert_eq!(verdict.codes(), BTreeSet::new());
    let functions = verdict.functions();
    let probe = &functions[0]["probe"];
    assert_eq!(probe["ip"], "198.51.100.23");
    assert_eq!(probe["allowed"], false);
    assert!(probe["problem"]
        .as_str()
        .unwrap()
        .contains("not one of the allowed IPs"));
}

// -------------------------------------------------------------------------------------------------
// deploy refuses an artifact that cannot run on Lambda, before any change.
// -------------------------------------------------------------------------------------------------

fn assert_artifact_refused(emulator: &Emulator, zip: &Path, code: &str) {
    let output = fixedip_output(emulator, &["deploy", "--zip", zip.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(EXIT_BUILD), "{stderr}");
    assert!(stderr.contains(&format!("[{code}]")), "{stderr}");
    assert!(stderr.contains("nothing was uploaded"), "{stderr}");
    let (_, mutating) = count(&emulator.requests());
    assert_eq!(mutating, 0, "refused before any change");
}

/// The example's `.fixedip` record, so that a foreign binary reads as the example.
fn example_record(dir: &Path) -> std::path::PathBuf {
    let record = dir.join("record.bin");
    let status = std::process::Command::new("objcopy")
        .arg("--dump-section")
        .arg(format!(".fixedip={}", record.display()))
        .arg(example_binary())
        .arg(dir.join("discard"))
        .status()
        .expect("objcopy (binutils) runs");
    assert!(status.success(), "objcopy --dump-section .fixedip");
    record
}

#[test]
fn deploy_refuses_a_binary_needing_a_newer_glibc() {
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    // arc4random came with glibc 2.36 (this machine); provided.al2023 has 2.34.
    let source = dir.path().join("main.c");
    std::fs::write(
        &source,
        "#include <stdlib.h>\n#include <stdio.h>\nint main(void) { printf(\"%u\\n\", arc4random()); return 0; }\n",
    )
    .unwrap();
    let plain = dir.path().join("plain");
    let status = std::process::Command::new("cc")
        .arg(&source)
        .arg("-o")
        .arg(&plain)
        .status()
        .expect("cc runs");
    assert!(
        status.success(),
        "cc (needs glibc 2.36 headers for arc4random)"
    );
    let bootstrap = dir.path().join("bootstrap");
    let status = std::process::Command::new("objcopy")
        .arg("--add-section")
        .arg(format!(".fixedip={}", example_record(dir.path()).display()))
        .arg(&plain)
        .arg(&bootstrap)
        .status()
        .unwrap();
    assert!(status.success(), "objcopy --add-section");
    let zip = dir.path().join("glibc.zip");
    write_lambda_zip(&zip, &std::fs::read(&bootstrap).unwrap(), &[]);
    assert_artifact_refused(&emulator, &zip, "glibc-too-new");
}

#[test]
fn deploy_refuses_a_binary_for_another_architecture() {
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    // The example as the function's architecture sees it from the ELF header: e_machine (bytes
    // 18..20) says aarch64 (0xB7) where this machine built x86_64. Nothing else is read for it.
    let mut binary = std::fs::read(example_binary()).unwrap();
    assert_eq!(&binary[..4], b"\x7fELF");
    let host = u16::from_le_bytes([binary[18], binary[19]]);
    let other: u16 = if host == 0xB7 { 0x3E } else { 0xB7 };
    binary[18..20].copy_from_slice(&other.to_le_bytes());
    let zip = dir.path().join("other-arch.zip");
    write_lambda_zip(&zip, &binary, &[]);
    assert_artifact_refused(&emulator, &zip, "wrong-architecture");
}

#[test]
fn deploy_refuses_a_zip_over_the_direct_upload_limit() {
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    // 51 MB that deflate cannot shrink (xorshift noise), beside the example's bootstrap.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..51 * 1024 * 1024 / 8)
        .flat_map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()
        })
        .collect();
    let zip = dir.path().join("large.zip");
    write_lambda_zip(
        &zip,
        &std::fs::read(example_binary()).unwrap(),
        &[("assets.bin", &noise)],
    );
    assert_artifact_refused(&emulator, &zip, "zip-too-large");
}
