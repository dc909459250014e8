//! How this machine builds a function for Lambda: an executable for the function's architecture
//! that runs on `provided.al2023`, whose glibc is 2.34.
//!
//! The order of preference:
//! 1. `cargo lambda build`, when cargo-lambda is installed: the user chose it, and it handles
//!    every architecture (with zig) itself.
//! 2. `cargo build`, when this machine is Linux of the function's architecture with a glibc no newer
//!    than Lambda's: nothing to install, and the build shares its cache with `plan`'s.
//! 3. `cargo zigbuild --target <triple>.2.34`, when cargo-zigbuild and zig are installed: any
//!    architecture from any machine, linked against Lambda's glibc whatever the machine has.
//! 4. `cargo build` on Linux of the function's architecture with a newer glibc: the binary may need
//!    symbol versions Lambda lacks, which the artifact check refuses before any upload, naming them.
//! 5. Otherwise an error that says what to install.
//!
//! Zig is found as cargo-zigbuild finds it: `$CARGO_ZIGBUILD_PYTHON_PATH -m ziglang` (default
//! `python3`), else `$CARGO_ZIGBUILD_ZIG_PATH` (default `zig` on PATH).

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};

use fixedip_core::artifact::{GlibcVersion, AL2023_GLIBC};
use fixedip_core::settings::Architecture;
use miette::Diagnostic;

/// The versions scripts/zig.sh installs; named in the install hint.
pub const ZIGLANG_VERSION: &str = "0.16.0";
pub const CARGO_ZIGBUILD_VERSION: &str = "0.24.0";

/// A way to build for Lambda; see the module docs for when each is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LambdaBuild {
    /// `cargo lambda build --release [--arm64]`.
    CargoLambda,
    /// `cargo build --release`, for this machine.
    Native,
    /// `cargo zigbuild --release --target <triple>.2.34`.
    Zigbuild,
}

/// What this machine offers for building, as far as the choice needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// This machine's architecture when it runs Linux (`None` elsewhere, or an architecture Lambda
    /// does not have).
    pub linux_architecture: Option<Architecture>,
    /// The glibc this machine links against, when it has one.
    pub glibc: Option<GlibcVersion>,
    pub cargo_lambda: bool,
    pub cargo_zigbuild: bool,
    pub zig: bool,
}

/// Why a function cannot be built for Lambda here; exit code BUILD.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum LambdaBuildError {
    #[error(
        "cannot build `{package}` for Lambda's {architecture} on this {host} machine: {missing}"
    )]
    #[diagnostic(help(
        "install Zig and cargo-zigbuild: `pip install ziglang=={ZIGLANG_VERSION} cargo-zigbuild=={CARGO_ZIGBUILD_VERSION}` (or `cargo install --locked cargo-zigbuild`) and `rustup target add {target}` (in a fixedip checkout: `scripts/zig.sh install`, then `eval \"$(scripts/zig.sh env)\"`); or install cargo-lambda; or build the zip yourself and pass `--zip PATH`"
    ))]
    NoWay {
        package: String,
        architecture: Architecture,
        host: String,
        target: &'static str,
        missing: String,
    },

    #[error("the Rust standard library for {target} is not installed, so cargo zigbuild cannot build `{package}` for Lambda's {architecture}")]
    #[diagnostic(help("`rustup target add {target}`, then run again"))]
    MissingTarget {
        package: String,
        architecture: Architecture,
        target: &'static str,
    },
}

impl LambdaBuild {
    /// The way to build for `architecture` on `machine`; `None` when there is none.
    pub fn choose(architecture: Architecture, machine: &Machine) -> Option<LambdaBuild> {
        let native = machine.linux_architecture == Some(architecture);
        let old_enough_glibc = machine.glibc.is_some_and(|glibc| glibc <= AL2023_GLIBC);
        if machine.cargo_lambda {
            Some(LambdaBuild::CargoLambda)
        } else if native && old_enough_glibc {
            Some(LambdaBuild::Native)
        } else if machine.cargo_zigbuild && machine.zig {
            Some(LambdaBuild::Zigbuild)
        } else if native {
            Some(LambdaBuild::Native)
        } else {
            None
        }
    }

    /// The cargo command line of this way, up to the options every build shares.
    pub fn command(self, architecture: Architecture) -> Command {
        let mut command = Command::new(cargo());
        match self {
            LambdaBuild::CargoLambda => {
                command.args(["lambda", "build"]);
                if architecture == Architecture::Arm64 {
                    command.arg("--arm64");
                }
            }
            LambdaBuild::Native => {
                command.arg("build");
            }
            LambdaBuild::Zigbuild => {
                command
                    .args(["zigbuild", "--target"])
                    .arg(zig_target(architecture));
            }
        }
        command
    }
}

/// The Rust target of a Lambda architecture (what `rustup target add` takes).
pub fn rust_target(architecture: Architecture) -> &'static str {
    match architecture {
        Architecture::X86_64 => "x86_64-unknown-linux-gnu",
        Architecture::Arm64 => "aarch64-unknown-linux-gnu",
    }
}

/// cargo-zigbuild's target with the glibc to link against: Lambda's, the one the artifact check
/// holds binaries to, so that the two cannot disagree.
pub fn zig_target(architecture: Architecture) -> String {
    format!(
        "{}.{}.{}",
        rust_target(architecture),
        AL2023_GLIBC.major,
        AL2023_GLIBC.minor
    )
}

impl Machine {
    /// Looks at this machine: a few quick subprocesses (`cargo lambda --version`, and zig's only
    /// when cargo-zigbuild is there).
    pub fn detect() -> Machine {
        let cargo_zigbuild = succeeds(Command::new(cargo()).args(["zigbuild", "--help"]));
        Machine {
            linux_architecture: if cfg!(target_os = "linux") {
                Architecture::host()
            } else {
                None
            },
            glibc: host_glibc(),
            cargo_lambda: succeeds(Command::new(cargo()).args(["lambda", "--version"])),
            cargo_zigbuild,
            zig: cargo_zigbuild && zig_found(),
        }
    }

    /// The error for an architecture [`LambdaBuild::choose`] found no way to build.
    pub fn no_way(&self, package: &str, architecture: Architecture) -> LambdaBuildError {
        let host = match self.linux_architecture {
            Some(arch) => format!("Linux {arch}"),
            None => format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        };
        // Only reached without cargo-lambda, and without cargo-zigbuild or zig.
        let missing = if self.cargo_zigbuild {
            "cargo-zigbuild is installed but zig is not found (CARGO_ZIGBUILD_ZIG_PATH, `python3 -m ziglang` or `zig` on PATH)"
        } else {
            "neither cargo-lambda nor cargo-zigbuild is installed"
        };
        LambdaBuildError::NoWay {
            package: package.to_owned(),
            architecture,
            host,
            target: rust_target(architecture),
            missing: missing.to_owned(),
        }
    }
}

/// Refuses early, with the command to fix it, when the standard library for the target is not
/// installed (cargo would fail with "can't find crate for `core`" after building the build scripts).
pub fn check_target_installed(
    workspace_root: &Path,
    package: &str,
    architecture: Architecture,
) -> Result<(), LambdaBuildError> {
    let target = rust_target(architecture);
    // In the workspace: a rust-toolchain.toml there picks the toolchain that will build.
    let libdir = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .args(["--print", "target-libdir", "--target", target])
        .current_dir(workspace_root)
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned());
    let installed = libdir.is_some_and(|dir| {
        std::fs::read_dir(dir).is_ok_and(|mut entries| {
            entries
                .any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("libcore-")))
        })
    });
    if installed {
        Ok(())
    } else {
        Err(LambdaBuildError::MissingTarget {
            package: package.to_owned(),
            architecture,
            target,
        })
    }
}

/// The cargo that runs us (cargo sets `CARGO` for its subcommands), else the one on PATH.
pub fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn succeeds(command: &mut Command) -> bool {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Whether cargo-zigbuild will find zig, looking where it looks, in its order.
fn zig_found() -> bool {
    let python = std::env::var_os("CARGO_ZIGBUILD_PYTHON_PATH").unwrap_or_else(|| "python3".into());
    let zig = std::env::var_os("CARGO_ZIGBUILD_ZIG_PATH").unwrap_or_else(|| "zig".into());
    succeeds(Command::new(python).args(["-m", "ziglang", "version"]))
        || succeeds(Command::new(zig).arg("version"))
}

/// The glibc this machine's linker links against: `getconf GNU_LIBC_VERSION` says `glibc 2.36`.
/// `None` on a machine without glibc (macOS, musl), where getconf fails or says something else.
fn host_glibc() -> Option<GlibcVersion> {
    let output = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let version = text.trim().strip_prefix("glibc ")?;
    GlibcVersion::parse(&format!("GLIBC_{version}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GLIBC_2_31: GlibcVersion = GlibcVersion {
        major: 2,
        minor: 31,
    };
    const GLIBC_2_36: GlibcVersion = GlibcVersion {
        major: 2,
        minor: 36,
    };

    fn linux(arch: Architecture, glibc: GlibcVersion) -> Machine {
        Machine {
            linux_architecture: Some(arch),
            glibc: Some(glibc),
            cargo_lambda: false,
            cargo_zigbuild: false,
            zig: false,
        }
    }

    fn with_zig(machine: Machine) -> Machine {
        Machine {
            cargo_zigbuild: true,
            zig: true,
            ..machine
        }
    }

    const ARCHS: [Architecture; 2] = [Architecture::X86_64, Architecture::Arm64];

    #[test]
    fn cargo_lambda_is_preferred_for_every_architecture() {
        let machine = Machine {
            cargo_lambda: true,
            ..with_zig(linux(Architecture::X86_64, GLIBC_2_31))
        };
        for arch in ARCHS {
            assert_eq!(
                LambdaBuild::choose(arch, &machine),
                Some(LambdaBuild::CargoLambda)
            );
        }
    }

    #[test]
    fn native_when_the_machine_is_lambdas_architecture_and_glibc_is_old_enough() {
        let machine = with_zig(linux(Architecture::X86_64, GLIBC_2_31));
        assert_eq!(
            LambdaBuild::choose(Architecture::X86_64, &machine),
            Some(LambdaBuild::Native)
        );
        let exactly = linux(Architecture::Arm64, AL2023_GLIBC);
        assert_eq!(
            LambdaBuild::choose(Architecture::Arm64, &exactly),
            Some(LambdaBuild::Native)
        );
    }

    #[test]
    fn zig_for_the_other_architecture_and_for_a_newer_glibc() {
        let machine = with_zig(linux(Architecture::X86_64, GLIBC_2_36));
        for arch in ARCHS {
            assert_eq!(
                LambdaBuild::choose(arch, &machine),
                Some(LambdaBuild::Zigbuild),
                "{arch}"
            );
        }
        let mac = with_zig(Machine {
            linux_architecture: None,
            glibc: None,
            ..linux(Architecture::Arm64, GLIBC_2_31)
        });
        assert_eq!(
            LambdaBuild::choose(Architecture::Arm64, &mac),
            Some(LambdaBuild::Zigbuild)
        );
    }

    #[test]
    fn without_zig_a_newer_glibc_still_builds_natively_and_another_architecture_cannot() {
        let machine = linux(Architecture::X86_64, GLIBC_2_36);
        assert_eq!(
            LambdaBuild::choose(Architecture::X86_64, &machine),
            Some(LambdaBuild::Native)
        );
        assert_eq!(LambdaBuild::choose(Architecture::Arm64, &machine), None);
        // cargo-zigbuild alone is not enough: it needs zig.
        let half = Machine {
            cargo_zigbuild: true,
            ..machine
        };
        assert_eq!(LambdaBuild::choose(Architecture::Arm64, &half), None);
        let error = half.no_way("billing", Architecture::Arm64).to_string();
        assert!(error.contains("zig is not found"), "{error}");
    }

    #[test]
    fn zig_targets_pin_the_glibc_the_artifact_check_enforces() {
        assert_eq!(
            zig_target(Architecture::Arm64),
            "aarch64-unknown-linux-gnu.2.34"
        );
        assert_eq!(
            zig_target(Architecture::X86_64),
            "x86_64-unknown-linux-gnu.2.34"
        );
        let args = |how: LambdaBuild, arch| -> Vec<String> {
            how.command(arch)
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            args(LambdaBuild::Zigbuild, Architecture::Arm64),
            ["zigbuild", "--target", "aarch64-unknown-linux-gnu.2.34"]
        );
        assert_eq!(
            args(LambdaBuild::CargoLambda, Architecture::Arm64),
            ["lambda", "build", "--arm64"]
        );
        assert_eq!(args(LambdaBuild::Native, Architecture::X86_64), ["build"]);
    }

    #[test]
    fn the_hosts_own_target_is_found_installed() {
        // Every toolchain has its host's standard library: the check must see it, or it would
        // refuse every zig build. (A missing one is the MissingTarget error; its text below.)
        let Some(host) = Architecture::host() else {
            return;
        };
        check_target_installed(Path::new("."), "billing", host).unwrap();
        let missing = LambdaBuildError::MissingTarget {
            package: "billing".into(),
            architecture: Architecture::Arm64,
            target: rust_target(Architecture::Arm64),
        };
        let help = missing.help().unwrap().to_string();
        assert_eq!(
            help,
            "`rustup target add aarch64-unknown-linux-gnu`, then run again"
        );
    }

    #[test]
    fn the_error_names_every_way_out() {
        let machine = linux(Architecture::X86_64, GLIBC_2_36);
        let error = machine.no_way("billing", Architecture::Arm64);
        let text = error.to_string();
        assert!(
            text.contains("`billing`") && text.contains("arm64"),
            "{text}"
        );
        let help = error.help().unwrap().to_string();
        for needed in [
            "pip install ziglang==",
            "cargo-zigbuild==",
            "rustup target add aarch64-unknown-linux-gnu",
            "scripts/zig.sh install",
            "--zip",
        ] {
            assert!(help.contains(needed), "{needed}: {help}");
        }
    }
}
