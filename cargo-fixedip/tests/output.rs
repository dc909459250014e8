//! Where output goes, as a shell user meets it: a reader that stops early (`| head -1`) ends the
//! run quietly and successfully, as cargo does; flags that contradict each other are refused; the
//! completion scripts, the man page and `--help` come from the command line itself.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use assert_cmd::cargo::cargo_bin_cmd;
use cargo_fixedip::exit_code;
use predicates::prelude::*;

fn fixedip() -> assert_cmd::Command {
    let mut command = cargo_bin_cmd!("cargo-fixedip");
    command.arg("fixedip").env("NO_COLOR", "1");
    command
}

/// `cargo fixedip ARGS` as a std command, for the pipe tests.
fn fixedip_process(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cargo-fixedip"));
    command
        .arg("fixedip")
        .args(args)
        .env("NO_COLOR", "1")
        .env(
            "CARGO_TARGET_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(".."),
        )
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    command
}

fn example_manifest() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/hello-egress/Cargo.toml")
        .display()
        .to_string()
}

/// Commands that print a result without AWS (text, JSON, a long document, clap's own help), each
/// with how many times to run it: 20 for those that start in milliseconds, so that an answer that
/// depends on timing would show; fewer for `plan`, whose run includes a (no-op) cargo build.
fn printing_commands() -> Vec<(Vec<String>, usize)> {
    let manifest = example_manifest();
    let plan = [
        "plan",
        "--offline",
        "-q",
        "--region",
        "us-east-1",
        "--manifest-path",
        &manifest,
    ];
    let owned = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    vec![
        (owned(&["iam-policy"]), 20),
        (owned(&["man"]), 20),
        (owned(&["completions", "bash"]), 20),
        (owned(&["--help"]), 20),
        (owned(&plan), 3),
        (owned(&[&plan[..], &["--json"]].concat()), 3),
    ]
}

/// Runs every printing command as often as it says, its stdout given to `reader`, and asserts that each run ended with success and said nothing on stderr.
fn each_run_is_a_quiet_success(reader: impl Fn(&mut Command) -> Output) {
    for (args, runs) in printing_commands() {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let shown = args.join(" ");
        for run in 0..runs {
            let output = reader(&mut fixedip_process(&args));
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(exit_code::SUCCESS),
                "`cargo fixedip {shown}` run {run}: {stderr}"
            );
            assert_eq!(stderr, "", "`cargo fixedip {shown}` run {run}");
        }
    }
}

/// The reader closes its end before the command writes anything: every write fails with a broken
/// pipe.
#[test]
fn a_closed_stdout_ends_quietly_with_success() {
    each_run_is_a_quiet_success(|command| {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        command.stdout(writer).output().unwrap()
    });
}

/// `| head -1`: the reader takes one line and goes away while the command may still be writing.
#[test]
fn a_reader_that_stops_after_one_line_ends_the_run_quietly() {
    each_run_is_a_quiet_success(|command| {
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        // The reader is dropped here, as head exits.
        assert!(!first.is_empty(), "printed nothing");
        child.wait_with_output().unwrap()
    });
}

#[test]
fn contradicting_flags_are_usage_errors() {
    for args in [
        &["ips", "--json", "--format", "cidr"][..],
        &["ips", "--format", "csv", "--json"],
        &["completions", "zsh", "--json"],
        &["man", "--out-dir", "/tmp/x", "--json"],
        &["deploy", "--zip", "f.zip", "--features", "x"],
        &["destroy", "--stack", "default", "--bin", "a"],
        &["plan", "--exclude", "a"],
    ] {
        fixedip()
            .args(args)
            .assert()
            .code(exit_code::USAGE)
            .stdout("")
            .stderr(
                predicate::str::contains("cannot be used with").or(predicate::str::contains(
                    "required arguments were not provided",
                )),
            );
    }
    // Alone, each is fine as far as the command line goes (ips then needs AWS).
    fixedip()
        .args(["ips", "--json", "--help"])
        .assert()
        .success();
}

#[test]
fn help_carries_every_exit_code() {
    let output = fixedip()
        .arg("--help")
        .assert()
        .success()
        .get_output()
        .clone();
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(help.contains("Exit codes:"), "{help}");
    for (name, code, meaning) in exit_code::ALL {
        let line = help
            .lines()
            .find(|line| line.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{help}"));
        assert!(line.trim_start().starts_with(&code.to_string()), "{line}");
        assert!(line.contains(meaning), "{line}");
    }
    assert!(
        !help.contains("docs/cli.md"),
        "an installed user has no docs/: {help}"
    );
    // The short help points at it.
    fixedip()
        .arg("-h")
        .assert()
        .success()
        .stdout(predicate::str::contains("exit codes: --help"));
}

#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, marker) in [
        ("bash", "cargo-fixedip"),
        ("zsh", "#compdef cargo-fixedip"),
        ("fish", "complete -c cargo"),
        ("elvish", "cargo-fixedip"),
        ("powershell", "cargo-fixedip"),
    ] {
        fixedip()
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains(marker))
            .stdout(predicate::str::contains("deploy"));
    }
    fixedip()
        .args(["completions", "tcsh"])
        .assert()
        .code(exit_code::USAGE)
        .stderr(predicate::str::contains("bash"));
}

#[test]
fn bash_completes_cargo_fixedip_through_a_real_bash() {
    // The script as bash reads it, then a completion request as bash makes one for
    // `cargo-fixedip de<TAB>` (what cargo's completion hands `cargo fixedip de<TAB>` over to).
    let output = fixedip().args(["completions", "bash"]).output().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("cargo-fixedip.bash");
    std::fs::write(&script, &output.stdout).unwrap();
    let probe = format!(
        "source {}; COMP_WORDS=(cargo-fixedip de); COMP_CWORD=1; COMP_LINE='cargo-fixedip de'; \
         COMP_POINT=${{#COMP_LINE}}; $(complete -p cargo-fixedip | sed -E 's/.*-F ([^ ]+).*/\\1/') \
         cargo-fixedip de cargo-fixedip; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let completed = Command::new("bash").args(["-c", &probe]).output().unwrap();
    let words = String::from_utf8_lossy(&completed.stdout);
    assert!(
        words.lines().any(|w| w == "deploy") && words.lines().any(|w| w == "destroy"),
        "stdout: {words}\nstderr: {}",
        String::from_utf8_lossy(&completed.stderr)
    );
}

#[test]
fn man_prints_a_page_and_writes_one_per_command() {
    fixedip()
        .arg("man")
        .assert()
        .success()
        .stdout(predicate::str::contains(".TH cargo-fixedip 1"))
        .stdout(predicate::str::contains("EXIT STATUS"));
    let dir = tempfile::tempdir().unwrap();
    fixedip()
        .args(["man", "--out-dir"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout("");
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for page in [
        "cargo-fixedip.1",
        "cargo-fixedip-deploy.1",
        "cargo-fixedip-plan.1",
    ] {
        assert!(pages.iter().any(|p| p == page), "{page} not in {pages:?}");
    }
    let page = std::fs::read_to_string(dir.path().join("cargo-fixedip-deploy.1")).unwrap();
    assert!(page.contains(".SH EXAMPLES"), "{page}");
}
