//! Building the functions and reading back what `#[fixed_egress]` compiled into them.
//!
//! Cargo runs with `--message-format=json-render-diagnostics`: its JSON messages on its stdout tell
//! which executables it produced, while its progress and rendered diagnostics go to its stderr,
//! which is ours, so the user sees the build as with `cargo build`.
//!
//! Two ways to build:
//! - [`build_release`], for `plan`: `cargo build --release` for the host. The record is the same on
//!   every target, and the release profile is the one deploy builds, so its cache serves deploy.
//! - [`build_for_lambda`], for `deploy`: a Linux executable for the function's architecture, made
//!   the way [`crate::lambda_build`] chooses (cargo-lambda, native cargo, or cargo-zigbuild).
//!
//! The user's cargo options ([`BuildOptions`]: features, `--bin`, `--target-dir`, `--locked`...)
//! go to every build, whichever way it is made.

use std::ffi::OsString;
use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use cargo_metadata::{Message, PackageId, TargetKind};
use fixedip_core::reader::{self, ReaderError};
use fixedip_core::record::Record;
use fixedip_core::settings::{Architecture, DeploySettings};

use crate::cli::BuildOptions;
use crate::error::CliError;
use crate::lambda_build::{self, cargo, LambdaBuild, Machine};
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
    options: &BuildOptions,
    output: &Output,
) -> Result<Vec<BuiltBinary>, CliError> {
    let mut command = Command::new(cargo());
    command.arg("build");
    build_args(
        &mut command,
        workspace,
        &selection.packages,
        options,
        output,
    );
    run_cargo(command, &selection.packages, output)
}

/// Linux executables of the selected packages for the architecture each one's settings name; one
/// build per architecture.
pub fn build_for_lambda(
    workspace: &Workspace,
    selection: &Selection,
    options: &BuildOptions,
    output: &Output,
) -> Result<Vec<BuiltBinary>, CliError> {
    let machine = Machine::detect();
    output.verbose(format!("building for Lambda on {machine:?}"));
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
        let how = LambdaBuild::choose(architecture, &machine)
            .ok_or_else(|| machine.no_way(&first.name, architecture))?;
        if how == LambdaBuild::Zigbuild {
            lambda_build::check_target_installed(
                workspace.metadata.workspace_root.as_std_path(),
                &first.name,
                architecture,
            )?;
        }
        output.verbose(format!("building for {architecture} with {how:?}"));
        let mut command = how.command(architecture);
        build_args(&mut command, workspace, &packages, options, output);
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

fn build_args(
    command: &mut Command,
    workspace: &Workspace,
    packages: &[SelectedPackage],
    options: &BuildOptions,
    output: &Output,
) {
    command
        .args(["--release", "--message-format=json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(workspace.root_manifest());
    for package in packages {
        command.args(["--package", &package.name]);
    }
    command.args(cargo_options(options));
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

/// The user's cargo options as cargo spells them. Without `--bin`, every binary (`--bins`): any
/// of them may be a function.
pub fn cargo_options(options: &BuildOptions) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    for features in &options.features {
        args.extend(["--features".into(), features.into()]);
    }
    let flags = [
        (options.all_features, "--all-features"),
        (options.no_default_features, "--no-default-features"),
        (options.locked, "--locked"),
        (options.frozen, "--frozen"),
    ];
    args.extend(
        flags
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, flag)| flag.into()),
    );
    if options.bins.is_empty() {
        args.push("--bins".into());
    }
    for bin in &options.bins {
        args.extend(["--bin".into(), bin.into()]);
    }
    if let Some(dir) = &options.target_dir {
        args.extend(["--target-dir".into(), dir.into()]);
    }
    args
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
    use crate::cli::{Cargo, Command as CliCommand};
    use clap::Parser;

    /// The build options `cargo fixedip <args>` parses to, as the cargo arguments they become.
    fn cargo_args_of(args: &[&str]) -> Vec<String> {
        let Cargo::Fixedip(parsed) =
            Cargo::try_parse_from(["cargo", "fixedip"].iter().chain(args)).unwrap();
        let options = match parsed.command {
            CliCommand::Plan(plan) => plan.build,
            CliCommand::Deploy(deploy) => deploy.build,
            CliCommand::Destroy(destroy) => destroy.build,
            other => panic!("{other:?} does not build"),
        };
        cargo_options(&options)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn without_options_every_binary_is_built() {
        for command in ["plan", "deploy", "destroy"] {
            assert_eq!(cargo_args_of(&[command]), ["--bins"]);
        }
    }

    #[test]
    fn feature_options_pass_through_as_cargo_spells_them() {
        assert_eq!(
            cargo_args_of(&[
                "deploy",
                "--features",
                "a,b",
                "-F",
                "c d",
                "--no-default-features"
            ]),
            [
                "--features",
                "a,b",
                "--features",
                "c d",
                "--no-default-features",
                "--bins"
            ]
        );
        assert_eq!(
            cargo_args_of(&["plan", "--offline", "--all-features"]),
            ["--all-features", "--bins"]
        );
    }

    #[test]
    fn bin_replaces_bins_and_keeps_globs_for_cargo() {
        assert_eq!(
            cargo_args_of(&["destroy", "--bin", "api", "--bin", "fn-*"]),
            ["--bin", "api", "--bin", "fn-*"]
        );
    }

    #[test]
    fn lock_and_target_dir_options_pass_through() {
        assert_eq!(
            cargo_args_of(&["deploy", "--locked", "--target-dir", "/tmp/t"]),
            ["--locked", "--bins", "--target-dir", "/tmp/t"]
        );
        assert_eq!(cargo_args_of(&["plan", "--frozen"]), ["--frozen", "--bins"]);
    }

    #[test]
    fn build_options_conflict_with_what_does_not_build() {
        for args in [
            &["deploy", "--zip", "f.zip", "--features", "x"][..],
            &["destroy", "--zip", "f.zip", "--locked"],
            &["destroy", "--stack", "default", "--bin", "api"],
        ] {
            let error = Cargo::try_parse_from(["cargo", "fixedip"].iter().chain(args)).unwrap_err();
            assert_eq!(
                error.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{args:?}"
            );
        }
    }
}
