//! `cargo fixedip` as the scenarios run it: a subprocess from the function's directory, `--json`
//! on stdout, progress on stderr, the environment of the target and nothing else of the caller's
//! AWS settings on the emulator.

use std::path::Path;
use std::process::{Command, Stdio};

use super::Target;

/// What one `cargo fixedip` run gave.
#[derive(Debug, Clone)]
pub struct CliRun {
    pub code: Option<i32>,
    /// The `--json` document, when it printed one.
    pub json: serde_json::Value,
    pub stderr: String,
}

impl CliRun {
    /// The AWS calls the stacks' reports count, `(total, mutating)`.
    pub fn calls(&self) -> (u64, u64) {
        let stacks = self.json["stacks"].as_array().cloned().unwrap_or_default();
        stacks.iter().fold((0, 0), |(total, mutating), stack| {
            (
                total + stack["calls"]["total"].as_u64().unwrap_or(0),
                mutating + stack["calls"]["mutating"].as_u64().unwrap_or(0),
            )
        })
    }

    /// The IPs of the first stack's report (`ips` of deploy, `kept_ips` of destroy).
    pub fn ips(&self, field: &str) -> Vec<String> {
        let listed = self.json["stacks"][0][field].as_array().cloned();
        listed
            .unwrap_or_default()
            .iter()
            .filter_map(|ip| ip["ip"].as_str().map(str::to_owned))
            .collect()
    }

    /// Fails unless the exit code is `expected`, with what the command said: the last lines of
    /// its stderr, where AWS's error text is.
    pub fn expect(self, expected: i32) -> Result<CliRun, String> {
        if self.code == Some(expected) {
            return Ok(self);
        }
        Err(format!(
            "exit code {:?}, expected {expected}:\n{}",
            self.code,
            self.stderr_tail(12)
        ))
    }

    /// The last `lines` lines of what the command wrote on stderr.
    pub fn stderr_tail(&self, lines: usize) -> String {
        let tail: Vec<&str> = self.stderr.lines().rev().take(lines).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        tail.join("\n")
    }
}

/// Runs `cargo fixedip ARGS --json` in `dir` against `target`.
pub async fn run(target: &Target, dir: &Path, args: &[String]) -> CliRun {
    let mut command = Command::new(crate::cargo_fixedip_bin());
    command.arg("fixedip").args(args).arg("--json");
    if let Target::Emulator { .. } = target {
        crate::clear_aws_env(&mut command);
    }
    command
        .envs(target.cli_env())
        .env("NO_COLOR", "1")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the CLI's thread");
    match output {
        Ok(output) => CliRun {
            code: output.status.code(),
            json: serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        },
        Err(e) => CliRun {
            code: None,
            json: serde_json::Value::Null,
            stderr: format!("cargo-fixedip did not start: {e}"),
        },
    }
}
