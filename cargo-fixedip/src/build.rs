//! Building the functions and reading back what `#[fixed_egress]` compiled into them.
//!
//! Cargo runs with `--message-format=json-render-diagnostics`: its JSON messages on its stdout tell
//! which executables it produced, while its progress and rendered diagnostics go to its stderr,
//! which is ours, so the user sees the build as with `cargo build`.
//!
//! Two ways to build:
//! - [`build_release`], for `plan`: `cargo build --release` for the host. The record is the same on
//!   every target, and the release profile is the one deploy builds, so its cache serves deploy.
//! - [`build_for_lambda`], for `deploy`: a Linux executable for the function's architecture, with
//!   `cargo lambda build` when cargo-lambda is installed (it cross-compiles with zig and links
//!   against the glibc of Lambda's runtime), else plain `cargo build` when this machine is Linux of
//!   that architecture, else an error saying what to install.

use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use cargo_metadata::{Message, PackageId, TargetKind};
use fixedip_core::reader::{self, ReaderError};
use fixedip_core::record::Record;
use fixedip_core::settings::{Architecture, DeploySettings};

use crate::error::CliError;
use crate::output::Output;
use crate::workspace::{SelectedPackage, Selection, SelectionMode, Workspace};

/// An executable cargo built for one of the selected packages.
#[derive(Debug, Clone)]
pub struct BuiltBinary {
    pub package: String,
    pub package_id: PackageId,
    /// The binary target's name.
    pub target: String,
    pub path: PathBuf,
}

/// A built binary that carries `#[fixed_egress]`: one Lambda function.
#[derive(Debug, Clone)]
pub struct AnnotatedBinary {
    pub binary: BuiltBinary,
    pub record: Record,
    pub settings: DeploySettings,
}

/// `cargo build --release` of the selected packages' binaries, for the host.
pub fn build_release(
    workspace: &Workspace,
    selection: &Selection,
    output: &Output,
) -> Result<Vec<BuiltBinary>, CliError> {
    let mut command = Command::new(cargo());
    command.arg("build");
    build_args(&mut command, workspace, &selection.packages, output);
    run_cargo(command, &selection.packages, output)
}

/// How [`build_for_lambda`] produces a Linux executable for an architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LambdaBuild {
    /// `cargo lambda build --release [--arm64]`.
    CargoLambda,
    /// `cargo build --release`: this machine is Linux of the function's architecture.
    Native,
}

impl LambdaBuild {
    /// The way to build for `architecture` on this machine, if there is one.
    pub fn choose(architecture: Architecture, cargo_lambda_installed: bool) -> Option<LambdaBuild> {
        if cargo_lambda_installed {
            Some(LambdaBuild::CargoLambda)
        } else if cfg!(target_os = "linux") && Architecture::host() == Some(architecture) {
            Some(LambdaBuild::Native)
        } else {
            None
        }
    }
}

/// Whether `cargo lambda` answers on this machine.
pub fn cargo_lambda_installed() -> bool {
    Command::new(cargo())
        .args(["lambda", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Linux executables of the selected packages for the architecture each one's settings name; one
/// build per architecture.
pub fn build_for_lambda(
    workspace: &Workspace,
    selection: &Selection,
    output: &Output,
) -> Result<Vec<BuiltBinary>, CliError> {
    let with_cargo_lambda = cargo_lambda_installed();
    let mut built = Vec::new();
    for architecture in [Architecture::X86_64, Architecture::Arm64] {
        let mut packages = Vec::new();
        for package in &selection.packages {
            // Architecture is a package-wide setting: any binary's settings tell it.
            if package.settings(&package.binaries[0])?.architecture == architecture {
                packages.push(package.clone());
            }
        }
        let Some(first) = packages.first() else {
            continue;
        };
        let how = LambdaBuild::choose(architecture, with_cargo_lambda).ok_or_else(|| {
            let host = Architecture::host().map_or("unknown".to_owned(), |a| a.to_string());
            CliError::CannotBuildForLambda {
                package: first.name.clone(),
                architecture,
                host: format!("{} {host}", std::env::consts::OS),
                host_architecture: host,
            }
        })?;
        let mut command = Command::new(cargo());
        match how {
            LambdaBuild::CargoLambda => {
                command.args(["lambda", "build"]);
                if architecture == Architecture::Arm64 {
                    command.arg("--arm64");
                }
            }
            LambdaBuild::Native => {
                command.arg("build");
            }
        }
        output.verbose(format!("building for {architecture} with {how:?}"));
        build_args(&mut command, workspace, &packages, output);
        built.extend(run_cargo(command, &packages, output)?);
    }
    Ok(built)
}

/// The binaries that carry `#[fixed_egress]`, with their settings. A named package without one is
/// an error; with `--workspace` it is skipped. A binary with two is always an error.
pub fn annotated_binaries(
    selection: &Selection,
    built: Vec<BuiltBinary>,
    output: &Output,
) -> Result<Vec<AnnotatedBinary>, CliError> {
    let mut found = Vec::new();
    for package in &selection.packages {
        let binaries: Vec<&BuiltBinary> = built
            .iter()
            .filter(|b| b.package_id == package.id)
            .collect();
        let mut annotated_here = 0;
        for binary in binaries {
            match reader::read_single(&binary.path) {
                Ok(record) => {
                    annotated_here += 1;
                    let settings = package.settings(&binary.target)?;
                    found.push(AnnotatedBinary {
                        binary: binary.clone(),
                        record,
                        settings,
                    });
                }
                Err(ReaderError::NoRecord { .. }) => {
                    output.verbose(format!(
                        "binary `{}` of package `{}` has no #[fixed_egress]: skipped",
                        binary.target, package.name
                    ));
                }
                Err(error) => return Err(error.into()),
            }
        }
        if annotated_here == 0 {
            match selection.mode {
                SelectionMode::Named => {
                    return Err(CliError::NoAnnotatedBinary {
                        package: package.name.clone(),
                        binaries: binary_list(package),
                    })
                }
                SelectionMode::Workspace => output.verbose(format!(
                    "package `{}` has no #[fixed_egress] binary: skipped",
                    package.name
                )),
            }
        }
    }
    if found.is_empty() {
        // Only reachable with --workspace: every candidate was skipped.
        return Err(CliError::NoAnnotatedMember);
    }
    Ok(found)
}

pub fn binary_list(package: &SelectedPackage) -> String {
    let names: Vec<String> = package.binaries.iter().map(|b| format!("`{b}`")).collect();
    names.join(", ")
}

/// The cargo that runs us (cargo sets `CARGO` for its subcommands), else the one on PATH.
fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn build_args(
    command: &mut Command,
    workspace: &Workspace,
    packages: &[SelectedPackage],
    output: &Output,
) {
    command
        .args([
            "--release",
            "--message-format=json-render-diagnostics",
            "--bins",
        ])
        .arg("--manifest-path")
        .arg(workspace.root_manifest());
    for package in packages {
        command.args(["--package", &package.name]);
    }
    if output.quiet {
        command.arg("--quiet");
    } else if output.verbose >= 2 {
        // `-vv` shows the rustc invocations too.
        command.arg("--verbose");
    }
    if let Some(color) = output.cargo_color_flag() {
        command.args(["--color", color]);
    }
}

/// Runs cargo, forwarding its stderr, and collects the executables of `packages` it reports.
fn run_cargo(
    mut command: Command,
    packages: &[SelectedPackage],
    output: &Output,
) -> Result<Vec<BuiltBinary>, CliError> {
    let shown = format!("{command:?}").replace('"', "");
    output.verbose(format!("running {shown}"));
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|source| CliError::BuildSpawn {
            program: shown.clone(),
            source,
        })?;

    let mut built = Vec::new();
    let stdout = child.stdout.take().expect("stdout is piped");
    for message in Message::parse_stream(BufReader::new(stdout)) {
        let message = message.map_err(|source| CliError::Io {
            what: "read the output of",
            path: PathBuf::from(&shown),
            source,
        })?;
        match message {
            Message::CompilerArtifact(artifact) => {
                let Some(executable) = artifact.executable else {
                    continue;
                };
                if !artifact.target.is_kind(TargetKind::Bin) {
                    continue;
                }
                if let Some(package) = packages.iter().find(|p| p.id == artifact.package_id) {
                    built.push(BuiltBinary {
                        package: package.name.clone(),
                        package_id: artifact.package_id,
                        target: artifact.target.name,
                        path: executable.into_std_path_buf(),
                    });
                }
            }
            // Lines that are not cargo's JSON (a build script's println!) belong on stderr.
            Message::TextLine(line) => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
            _ => {}
        }
    }
    let status = child.wait().map_err(|source| CliError::BuildSpawn {
        program: shown.clone(),
        source,
    })?;
    if !status.success() {
        return Err(CliError::BuildFailed {
            command: shown,
            status,
        });
    }
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_lambda_is_preferred_for_every_architecture() {
        for arch in [Architecture::X86_64, Architecture::Arm64] {
            assert_eq!(
                LambdaBuild::choose(arch, true),
                Some(LambdaBuild::CargoLambda)
            );
        }
    }

    #[test]
    fn without_cargo_lambda_only_the_native_linux_architecture_builds() {
        let host = Architecture::host();
        for arch in [Architecture::X86_64, Architecture::Arm64] {
            let native = cfg!(target_os = "linux") && host == Some(arch);
            let expected = native.then_some(LambdaBuild::Native);
            assert_eq!(LambdaBuild::choose(arch, false), expected, "{arch}");
        }
    }
}
