//! Every way a command can fail, each with what to do about it (`help`) and its exit code. The
//! library returns these; `main` renders them with miette on stderr.

use std::path::PathBuf;

use fixedip_core::cost::CostError;
use fixedip_core::planner::{ConflictError, PlanError};
use fixedip_core::reader::ReaderError;
use fixedip_core::settings::SettingsError;
use miette::Diagnostic;

use crate::aws::AwsError;
use crate::exit_code;

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum CliError {
    // The workspace.
    #[error("no Cargo.toml in {} or any directory above it", .dir.display())]
    #[diagnostic(help("run in a Cargo package, or point at one with `--manifest-path PATH`"))]
    NoManifest { dir: PathBuf },

    #[error("cannot read the Cargo workspace of {}", .manifest.display())]
    #[diagnostic(help("`cargo metadata` failed: fix what cargo says above, then run again"))]
    Metadata {
        manifest: PathBuf,
        #[source]
        source: cargo_metadata::Error,
    },

    #[error("{} is a virtual workspace manifest: it has no package of its own", .manifest.display())]
    #[diagnostic(help(
        "choose packages with `-p NAME`, or take every member with a #[fixed_egress] binary with `--workspace`"
    ))]
    VirtualManifest { manifest: PathBuf },

    #[error("package `{spec}` is not a member of this workspace")]
    #[diagnostic(help("workspace members: {members}"))]
    UnknownPackage { spec: String, members: String },

    #[error("package `{package}` has no binary target, so it cannot be a Lambda function")]
    #[diagnostic(help(
        "a Lambda function is a binary: add `src/main.rs` (or a [[bin]] target) with #[fixed_egress] on its `main`"
    ))]
    NoBinaryTarget { package: String },

    #[error("no workspace member depends on fixedip-macros, so none has a #[fixed_egress] binary")]
    #[diagnostic(help(
        "add `fixedip-macros` to the [dependencies] of your function's package and #[fixed_egress] above its `main`"
    ))]
    NoAnnotatedMember,

    // Settings.
    #[error("invalid settings in package `{package}` ({})", .manifest.display())]
    #[diagnostic(help(
        "fix the keys named above in Cargo.toml; every key and its range: docs/cli.md#settings"
    ))]
    Settings {
        package: String,
        manifest: PathBuf,
        #[source]
        source: SettingsError,
    },

    // Building and reading the functions.
    #[error("cannot run `{program}`")]
    #[diagnostic(help("is cargo installed and on PATH? (cargo sets CARGO for its plugins)"))]
    BuildSpawn {
        program: String,
        #[source]
        source: std::io::Error,
    },

    #[error("`{command}` failed ({status})")]
    #[diagnostic(help("fix the build errors cargo printed above, then run again"))]
    BuildFailed {
        command: String,
        status: std::process::ExitStatus,
    },

    // No way to build for the function's architecture here (lambda_build.rs): its own help.
    #[error(transparent)]
    #[diagnostic(transparent)]
    LambdaBuild(#[from] crate::lambda_build::LambdaBuildError),

    #[error("package `{package}` has no binary with #[fixed_egress]")]
    #[diagnostic(help(
        "add `#[fixed_egress]` (from the fixedip-macros crate) above the `main` that starts the Lambda runtime in {binaries}"
    ))]
    NoAnnotatedBinary { package: String, binaries: String },

    // Not a `#[source]`: the reader's message already holds its cause, and would print twice.
    #[error("{error}")]
    Reader {
        error: ReaderError,
        #[help]
        help: Option<String>,
    },

    #[error(
        "{} holds `{function}`, which no binary of package `{package}` in this workspace compiles",
        .zip.display()
    )]
    #[diagnostic(help(
        "run from the workspace the zip was built in (or point at it with `--manifest-path`), or build the zip again"
    ))]
    ZipFromElsewhere {
        zip: PathBuf,
        function: String,
        package: String,
    },

    // Planning.
    #[error("no region for function `{function}`")]
    #[diagnostic(help(
        "pass `--region REGION`, set `region = \"...\"` in [package.metadata.fixedip], or export AWS_REGION"
    ))]
    NoRegion { function: String },

    #[error("`--region {region}` is not an AWS region name")]
    #[diagnostic(help("AWS region names look like `us-east-1` or `ap-northeast-1`"))]
    BadRegion { region: String },

    #[error(transparent)]
    #[diagnostic(help(
        "functions that name one stack share its network: make them agree, or give them different `stack = \"...\"` in #[fixed_egress]"
    ))]
    // Boxed: it names two functions in full, and every Result in the crate would carry its size.
    Conflict(Box<ConflictError>),

    #[error(transparent)]
    #[diagnostic(help("nothing was changed; fix what the message says, then plan again"))]
    Plan(#[from] PlanError),

    #[error(transparent)]
    #[diagnostic(help(
        "the plan is fine, only its price is unknown: the price table (fixedip-core/src/cost.rs) lacks this region"
    ))]
    Cost(#[from] CostError),

    #[error("`{command}` needs AWS and is not built into this cargo-fixedip yet")]
    #[diagnostic(help("use `cargo fixedip plan --offline` to see the plan without AWS"))]
    NeedsAws { command: &'static str },

    // AWS.
    #[error("`--stack {stack}`: {reason}")]
    #[diagnostic(help("a stack name is what `stack` in #[fixed_egress] accepts; the stack of functions that name none is `default`"))]
    BadStack { stack: String, reason: String },

    // The help is taken out of the AWS error (see the `From` impls): rendered as a source, miette
    // would print the message twice.
    #[error("{error}")]
    Aws {
        error: crate::aws::AwsError,
        #[help]
        help: Option<String>,
    },

    #[error("{error}")]
    Execute {
        error: Box<crate::aws::execute::ExecuteError>,
        #[help]
        help: Option<String>,
    },

    // The stack's lease (aws/lease.rs): its own messages and help.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Lease(crate::aws::lease::LeaseError),

    #[error(
        "{} carry no traffic yet: {}",
        if .ips.len() == 1 { "1 new Elastic IP does".to_owned() } else { format!("{} new Elastic IPs", .ips.len()) },
        .ips.join(", ")
    )]
    #[diagnostic(help(
        "everything else is deployed; add these IPs to the partner's allowlist, then run `cargo fixedip deploy --allow-new-ips` to route traffic through them"
    ))]
    NewIpsHeldBack { ips: Vec<String> },

    #[error("stack `{stack}` has nothing in {region}")]
    #[diagnostic(help(
        "deploy it with `cargo fixedip deploy` from the function's directory; or check the region (`--region`, `region` in [package.metadata.fixedip], AWS_REGION) and the stack (`stack` in #[fixed_egress], or `--stack`)"
    ))]
    NotDeployed { stack: String, region: String },

    #[error("`destroy` {what}, and stdin is not a terminal to confirm it")]
    #[diagnostic(help(
        "see what it would do with `cargo fixedip destroy --dry-run`; add `--yes` to go ahead without asking"
    ))]
    DestroyNeedsConfirmation {
        /// What it would do, e.g. "removes stack `default` in us-east-1".
        what: String,
    },

    #[error("destroy cancelled: nothing was changed")]
    #[diagnostic(help(
        "`cargo fixedip destroy --dry-run` shows what it would do; without `--release-ips` it keeps the IPs"
    ))]
    DestroyCancelled,

    // Verify.
    #[error("egress is not proven for {}", .functions.join(", "))]
    #[diagnostic(help(
        "fix each finding printed above (its `fix:` line says how), then run `cargo fixedip verify` again"
    ))]
    VerifyFailed { functions: Vec<String> },

    #[error("stack `{stack}` has no function attached to its subnets")]
    #[diagnostic(help(
        "deploy one with `cargo fixedip deploy`, pick another `--stack`, or name functions with `--function NAME`"
    ))]
    NothingToVerify { stack: String },

    #[error("no allowed IPs to verify against: stack `{stack}` has no Elastic IP")]
    #[diagnostic(help(
        "pass the partner's allowlist with `--ip A.B.C.D` (repeat for each), or `--stack NAME` for a stack fixedip deployed"
    ))]
    NoAllowedIps { stack: String },

    #[error("{} cannot run on Lambda: {}", .zip, .problems.join("; "))]
    #[diagnostic(help(
        "nothing was uploaded or changed; rebuild the function as the message says, then deploy again"
    ))]
    Artifact { zip: String, problems: Vec<String> },

    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),

    // The local machine.
    #[error("cannot write the result to stdout")]
    #[diagnostic(help("is the pipe that reads it closed?"))]
    Stdout(#[source] std::io::Error),

    #[error("cannot {what} {}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<ReaderError> for CliError {
    /// The reader's messages say what is wrong with the file; the help says what to do next.
    fn from(error: ReaderError) -> Self {
        let help = match &error {
            ReaderError::Io { .. } => Some("check that the file exists and can be read"),
            ReaderError::NotABinary { .. }
            | ReaderError::DamagedZip { .. }
            | ReaderError::ZipWithoutBootstrap { .. } => {
                Some("let `cargo fixedip` build the function, or zip the executable as `bootstrap`")
            }
            ReaderError::DamagedRecord { .. } => Some(
                "build the function again with the fixedip-macros that matches this cargo-fixedip",
            ),
            ReaderError::NoRecord { .. } => Some(
                "#[fixed_egress] comes from the fixedip-macros crate; put it above the `main` that starts the Lambda runtime",
            ),
            ReaderError::SeveralRecords { .. } => Some(
                "remove #[fixed_egress] from every function but the one that starts the Lambda runtime",
            ),
        };
        CliError::Reader {
            error,
            help: help.map(str::to_owned),
        }
    }
}

impl From<crate::aws::AwsError> for CliError {
    fn from(error: crate::aws::AwsError) -> Self {
        let help = error.help().map(|help| help.to_string());
        CliError::Aws { error, help }
    }
}

impl From<crate::aws::execute::ExecuteError> for CliError {
    fn from(error: crate::aws::execute::ExecuteError) -> Self {
        // The failed call's own hint first, then how to resume.
        let help = [
            error.error.help().map(|h| h.to_string()),
            error.help().map(|h| h.to_string()),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n");
        CliError::Execute {
            error: Box::new(error),
            help: Some(help),
        }
    }
}

impl From<crate::aws::lease::LeaseError> for CliError {
    fn from(error: crate::aws::lease::LeaseError) -> Self {
        match error {
            crate::aws::lease::LeaseError::Aws(error) => CliError::from(error),
            error => CliError::Lease(error),
        }
    }
}

impl From<ConflictError> for CliError {
    fn from(error: ConflictError) -> Self {
        CliError::Conflict(Box::new(error))
    }
}

impl CliError {
    /// The process exit code for this error (see [`exit_code`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::NoManifest { .. }
            | CliError::Metadata { .. }
            | CliError::VirtualManifest { .. }
            | CliError::UnknownPackage { .. }
            | CliError::ZipFromElsewhere { .. } => exit_code::WORKSPACE,
            CliError::Settings { .. } => exit_code::SETTINGS,
            CliError::NoBinaryTarget { .. }
            | CliError::NoAnnotatedMember
            | CliError::NoAnnotatedBinary { .. }
            | CliError::Reader { .. } => exit_code::NO_FUNCTION,
            CliError::BuildSpawn { .. }
            | CliError::BuildFailed { .. }
            | CliError::LambdaBuild(_)
            | CliError::Artifact { .. } => exit_code::BUILD,
            CliError::VerifyFailed { .. } => exit_code::VERIFY,
            CliError::NothingToVerify { .. } => exit_code::NO_FUNCTION,
            CliError::NoAllowedIps { .. } => exit_code::USAGE,
            CliError::Conflict(_) | CliError::Plan(_) | CliError::Cost(_) => exit_code::PLAN,
            // No region, or one that is no region name, or a profile no file defines: the same
            // code in every command, online or offline. What to fix is on the command line.
            CliError::NoRegion { .. }
            | CliError::BadRegion { .. }
            | CliError::BadStack { .. }
            | CliError::Aws {
                error:
                    AwsError::NoRegion
                    | AwsError::UnknownRegion { .. }
                    | AwsError::UnknownProfile { .. },
                ..
            } => exit_code::USAGE,
            CliError::NeedsAws { .. } | CliError::Aws { .. } | CliError::Execute { .. } => {
                exit_code::AWS
            }
            CliError::NewIpsHeldBack { .. } => exit_code::NEW_IPS_HELD_BACK,
            CliError::Lease(error) => match error {
                crate::aws::lease::LeaseError::Held { .. }
                | crate::aws::lease::LeaseError::Lost { .. }
                | crate::aws::lease::LeaseError::ChangedWhileWaiting { .. } => {
                    exit_code::LEASE_HELD
                }
                crate::aws::lease::LeaseError::Interrupted { .. } => exit_code::FAILURE,
                crate::aws::lease::LeaseError::Aws(_) => exit_code::AWS,
            },
            CliError::NotDeployed { .. } => exit_code::NOT_DEPLOYED,
            CliError::DestroyNeedsConfirmation { .. } => exit_code::USAGE,
            CliError::DestroyCancelled => exit_code::CANCELLED,
            CliError::Runtime(_) => exit_code::FAILURE,
            CliError::Stdout(_) | CliError::Io { .. } => exit_code::FAILURE,
        }
    }
}
