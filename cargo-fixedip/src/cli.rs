//! The command line. Cargo runs `cargo-fixedip fixedip <args>` for `cargo fixedip <args>`, so the
//! top level is a `cargo` command with one subcommand, as every cargo plugin does.
//!
//! Options that apply to every command are global: they may come before or after the subcommand.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "cargo", bin_name = "cargo", styles = clap_cargo_styles())]
pub enum Cargo {
    Fixedip(FixedipArgs),
}

/// `cargo fixedip` as a command of its own, `cargo-fixedip`: what cargo runs, less the `fixedip`
/// word cargo passes first. The completion scripts' and the man page's command.
pub fn fixedip_command() -> clap::Command {
    <Cargo as clap::CommandFactory>::command()
        .find_subcommand("fixedip")
        .expect("`cargo fixedip` is a subcommand of `cargo`")
        .clone()
        .name("cargo-fixedip")
        .bin_name("cargo-fixedip")
}

#[derive(Debug, Args)]
#[command(
    version,
    about = "Fixed, allowlistable outbound IPs for AWS Lambda functions written in Rust",
    long_about = "\
Fixed, allowlistable outbound IPs for AWS Lambda functions written in Rust.

Put `#[fixed_egress(azs = 2)]` on the function that starts the Lambda runtime. The requirement is
compiled into the binary; `cargo fixedip` reads it back, plans the network (a VPC, per AZ a public
and a private subnet, an Elastic IP and a NAT gateway), deploys it, attaches the function to the
private subnets and prints the IPs to hand to the partner's allowlist.

Deployment settings (function name, region, memory, timeout, architecture, environment, tags,
role, VPC CIDR) live in [package.metadata.fixedip]; cargo-lambda's [package.metadata.lambda.deploy]
is honoured where the two overlap.",
    after_help = "Examples and exit codes: --help",
    after_long_help = after_long_help()
)]
pub struct FixedipArgs {
    #[command(flatten)]
    pub global: GlobalOptions,
    #[command(subcommand)]
    pub command: Command,
}

/// The end of `cargo fixedip --help`: examples, then every exit code, from the same table the code
/// uses, so that an installed user has them without the repository's docs.
fn after_long_help() -> String {
    format!(
        "\
Examples:
  cargo fixedip plan --offline              what deploy would create, and its monthly cost
  cargo fixedip plan --offline --json       the same, for machines
  cargo fixedip plan --offline --diagram mermaid > network.mmd
  cargo fixedip plan --offline -p billing --region eu-west-1
  cargo fixedip completions zsh > ~/.zfunc/_cargo-fixedip

Results go to stdout, progress and cargo's own output to stderr.

Exit codes:
{}",
        crate::exit_code::table()
    )
}

/// Options every command understands.
#[derive(Debug, Clone, Args)]
pub struct GlobalOptions {
    /// Path to the Cargo.toml of the package or workspace [default: the one in or above the
    /// current directory]
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        help_heading = "Package selection"
    )]
    pub manifest_path: Option<PathBuf>,

    /// Package to work on; repeat for several, globs as cargo ('fn-*') [default: the current
    /// package]
    #[arg(
        short = 'p',
        long = "package",
        global = true,
        value_name = "SPEC",
        action = ArgAction::Append,
        help_heading = "Package selection"
    )]
    pub packages: Vec<String>,

    /// Every workspace member with a `#[fixed_egress]` binary; members without one are skipped
    #[arg(
        long,
        global = true,
        conflicts_with = "packages",
        help_heading = "Package selection"
    )]
    pub workspace: bool,

    /// Leave this member out of --workspace; repeat for several (globs as cargo: 'fn-*')
    #[arg(
        long,
        global = true,
        value_name = "SPEC",
        action = ArgAction::Append,
        requires = "workspace",
        help_heading = "Package selection"
    )]
    pub exclude: Vec<String>,

    /// AWS region [default: `region` in [package.metadata.fixedip], then AWS_REGION,
    /// AWS_DEFAULT_REGION, then the profile's]
    #[arg(long, global = true, value_name = "REGION", help_heading = "AWS")]
    pub region: Option<String>,

    /// AWS named profile for credentials and region [default: AWS_PROFILE, then the standard
    /// chain]. A named profile's credentials win over AWS_ACCESS_KEY_ID in the environment; an
    /// unknown profile is an error
    #[arg(long, global = true, value_name = "NAME", help_heading = "AWS")]
    pub profile: Option<String>,

    /// Print the result as one JSON document on stdout
    #[arg(long, global = true, help_heading = "Output")]
    pub json: bool,

    /// When to use colors [default: CARGO_TERM_COLOR, else auto; NO_COLOR turns auto off]
    #[arg(long, global = true, value_name = "WHEN", help_heading = "Output")]
    pub color: Option<ColorWhen>,

    /// Print only results and errors: no progress, no cargo output
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        help_heading = "Output"
    )]
    pub quiet: bool,

    /// Say more about what is done and why; repeat for more
    #[arg(short, long, global = true, action = ArgAction::Count, help_heading = "Output")]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what deploy would create or change, and what it costs per month
    #[command(
        long_about = "\
Show what deploy would create or change, and what it costs per month.

Builds the selected packages (`cargo build --release`), reads the `#[fixed_egress]` requirement
compiled into each binary and the settings in Cargo.toml, groups the functions into stacks, and
prints per stack a tree of the network (VPC, internet gateway, per AZ the public subnet with its NAT
gateway and Elastic IP, the private subnet with its route, the functions) and its monthly cost
from the dated price table.

With --offline nothing is read from AWS and no credentials are needed: the account is assumed
empty and the availability zones are assumed to be <region>a, <region>b, ... (deploy uses the ones
the region really offers). The region comes from --region, the package settings, AWS_REGION or
AWS_DEFAULT_REGION.",
        after_long_help = "\
Examples:
  cargo fixedip plan --offline --region us-east-1
  cargo fixedip plan --offline --json | jq '.stacks[0].cost.fixed_monthly_usd'
  cargo fixedip plan --offline --diagram dot | dot -Tsvg > network.svg"
    )]
    Plan(PlanArgs),

    /// Build, provision or update the network, attach the function, print the IPs
    #[command(
        long_about = "\
Build, provision or update the network, attach the function, print the IPs.

Builds the selected packages for Lambda (or takes a prebuilt zip with --zip), reads the
#[fixed_egress] requirement of each, observes the account by the stack's tags, plans, refuses
anything wrong before the first change, then creates or updates only what differs: a deploy that
changes nothing makes no mutating AWS call. Progress goes to stderr, the IPs to stdout.",
        after_long_help = "\
Examples:
  cargo fixedip deploy
  cargo fixedip deploy --zip target/lambda/hello-egress/bootstrap.zip --json"
    )]
    Deploy(DeployArgs),

    /// The stack's fixed egress IPs, for allowlists
    Ips(IpsArgs),

    /// Every resource the stack owns, per AZ, with its state; the functions; the IPs; the cost
    Status(StatusArgs),

    /// Tear the stack down; its Elastic IPs are KEPT (retained) unless --release-ips
    #[command(
        long_about = "\
Tear the stack down; its Elastic IPs are KEPT (retained) unless --release-ips.

Observes the stack by its tags and removes it in the order AWS accepts: the package's functions
leave the VPC (and are deleted with --delete-function), the NAT gateways are deleted and waited
for, the Elastic IPs are tagged retained (the next deploy of the stack reuses them, so the
partner's allowlist stays valid), Lambda's lingering network interfaces are waited out, then the
subnets, route tables, security group, internet gateway, VPC and the stack's role go. Safe to run
again after any failure: it continues with what is left.

The stacks are those of the selected packages' functions (the package in the current directory,
-p, --workspace, --manifest-path; the stack is read from #[fixed_egress] in the source, or from the
zip given with --zip), or the one named with --stack. Before anything is removed, destroy prints
what goes (the same tree as plan) and which functions leave the VPC, and asks; off a terminal it
needs --yes. --dry-run prints it and stops.

The execution role fixedip made for the stack is per region (fixedip-<stack>-<region>-lambda), so
destroying the stack in one region never takes the role from its functions in another.",
        after_long_help = "\
Examples:
  cargo fixedip destroy --dry-run
  cargo fixedip destroy --yes
  cargo fixedip destroy --stack billing --region eu-west-1 --delete-function
  cargo fixedip destroy --release-ips --yes --json"
    )]
    Destroy(DestroyArgs),
    /// Print the least-privilege IAM policy (JSON) that deploy, ips, status, plan, verify and destroy need
    IamPolicy,
    /// Prove that every egress path of each function leaves through the listed IPs
    #[command(
        long_about = "\
Prove that every egress path of each function leaves through the listed IPs.

For each function, reads its VpcConfig, then the route table of every subnet it runs in (the
explicit association, else the VPC's main table), and follows every route that can carry internet
traffic to where it leaves: a NAT gateway or NAT instance whose Elastic IP is allowed, in a subnet
that routes to an attached internet gateway. Prints pass, or each finding with the resource, what
is wrong and how to fix it; exits with code VERIFY (9) when an error is found. Read-only.

The functions: every function attached to the stack's subnets, or those named with --function
(any function, in any VPC, fixedip's or not). The allowed IPs: --ip when given, else the stack's
Elastic IPs. They are the partner's allowlist, never taken from the network being checked.",
        after_long_help = "\
Examples:
  cargo fixedip verify
  cargo fixedip verify --stack billing --probe --json
  cargo fixedip verify --function partner-sync --ip 203.0.113.7 --ip 203.0.113.9"
    )]
    Verify(VerifyArgs),
    /// Remove the stack's lease left by a run that was killed (deploy and destroy take it)
    #[command(
        long_about = "\
Remove the stack's lease left by a run that was killed.

deploy and destroy hold a lease on the stack (the SSM parameter /fixedip/<stack>/lease in the
region) while they change it, so that two runs never change one stack at once. A run that was
killed leaves its lease until it expires (10 minutes after its last renewal); meanwhile other runs
wait for it. unlock prints who held it and removes it. Only run it when no deploy or destroy of
the stack is going on.",
        after_long_help = "\
Examples:
  cargo fixedip unlock --stack default
  cargo fixedip unlock --stack billing --region eu-west-1 --json"
    )]
    Unlock(UnlockArgs),
    /// Print a shell completion script for `cargo fixedip`
    #[command(
        long_about = "\
Print a shell completion script for `cargo fixedip`.

cargo's own completion (installed with rustup) hands `cargo fixedip <TAB>` to the completion of
the `cargo-fixedip` command: install the script under that name. bash needs bash-completion 2.12 or
later for that hand-over; fish gets completions for `cargo fixedip` directly.",
        after_long_help = "\
Examples:
  cargo fixedip completions bash > ~/.local/share/bash-completion/completions/cargo-fixedip
  cargo fixedip completions zsh > ~/.zfunc/_cargo-fixedip       (with fpath+=~/.zfunc)
  cargo fixedip completions fish > ~/.config/fish/conf.d/cargo-fixedip.fish"
    )]
    Completions(CompletionsArgs),
    /// Print the man page of cargo-fixedip (roff), or write one page per command to a directory
    #[command(after_long_help = "\
Examples:
  cargo fixedip man | man -l -
  cargo fixedip man --out-dir ~/.local/share/man/man1")]
    Man(ManArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_name = "SHELL", conflicts_with = "json")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write cargo-fixedip.1 and a cargo-fixedip-COMMAND.1 per command into this directory
    /// instead of printing the main page
    #[arg(long, value_name = "DIR", conflicts_with = "json")]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The stack whose functions and IPs to verify [default: the stacks of the selected
    /// packages' functions]
    #[arg(long, value_name = "NAME")]
    pub stack: Option<String>,

    /// Verify this Lambda function instead of the stack's; repeat for several
    #[arg(long = "function", value_name = "NAME", action = ArgAction::Append)]
    pub functions: Vec<String>,

    /// An allowed egress IP (the partner's allowlist); repeat for several [default: the stack's IPs]
    #[arg(long = "ip", value_name = "IP", action = ArgAction::Append)]
    pub ips: Vec<std::net::Ipv4Addr>,

    /// Also invoke each function with {"fixedip": "probe"} and check the address it reports
    #[arg(long)]
    pub probe: bool,

    /// Expect no route out of the VPC at all (functions that must reach only AWS services)
    #[arg(long)]
    pub isolated: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// Deploy this Lambda zip (with `bootstrap` at its root) instead of building
    #[arg(long, value_name = "PATH", conflicts_with = "BuildOptions")]
    pub zip: Option<PathBuf>,

    #[command(flatten)]
    pub build: BuildOptions,

    /// Longest wait for a NAT gateway to become available, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub nat_timeout: u64,

    /// Longest wait for a new NAT instance to report on its console that it forwards (its boot
    /// retries for up to ten minutes), in seconds; no route moves to it before
    #[arg(long, value_name = "SECONDS", default_value_t = crate::aws::execute::DEFAULT_NAT_READY_SECONDS)]
    pub nat_ready_timeout: u64,

    /// Longest wait for a function to become active or finish updating, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub function_timeout: u64,

    /// Let new Elastic IPs carry traffic: without it, a stack whose IPs were shown already gets
    /// its new IPs allocated and printed, but not routed (exit code 10)
    #[arg(long)]
    pub allow_new_ips: bool,

    /// Take over Lambda functions of the same name that fixedip did not create: their code,
    /// configuration, VPC and (unless `role` is set) execution role become the stack's. Without
    /// it, deploy refuses to touch such a function
    #[arg(long)]
    pub adopt: bool,

    #[command(flatten)]
    pub removal: RemovalWaits,

    #[command(flatten)]
    pub lock: LockWait,
}

/// How long deploy and destroy wait for another run that holds the stack's lease.
#[derive(Debug, Clone, Args)]
pub struct LockWait {
    /// Longest wait for another deploy or destroy of the same stack to finish, in seconds; then
    /// exit with code 11 (LEASE_HELD), having changed nothing
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 600,
        env = "FIXEDIP_LOCK_TIMEOUT"
    )]
    pub lock_timeout: u64,
}

/// How long removals wait for what AWS does on its own (deploy removes slots when `azs` shrinks).
#[derive(Debug, Clone, Args)]
pub struct RemovalWaits {
    /// Longest wait for Lambda's network interfaces to go (and for DependencyViolation on what
    /// they held to stop), in seconds
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 2700,
        env = "FIXEDIP_ENI_TIMEOUT"
    )]
    pub eni_timeout: u64,

    /// Pause between two polls of what AWS finishes within minutes (NAT gateways, functions,
    /// endpoints, NAT instances), in seconds (may be fractional); Lambda's network interfaces,
    /// which may take tens of minutes, are polled from this doubling up to six times this
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = crate::aws::execute::DEFAULT_POLL_SECONDS,
        env = "FIXEDIP_POLL_INTERVAL"
    )]
    pub poll_interval: f64,
}

#[derive(Debug, Clone, Args)]
pub struct DestroyArgs {
    /// The stack to destroy [default: the stack of the selected package's function]
    #[arg(long, value_name = "NAME", conflicts_with = "BuildOptions")]
    pub stack: Option<String>,

    /// Read the function's record from this Lambda zip instead of building the package
    #[arg(long, value_name = "PATH", conflicts_with_all = ["stack", "BuildOptions"])]
    pub zip: Option<PathBuf>,

    #[command(flatten)]
    pub build: BuildOptions,

    /// Release the stack's Elastic IPs (adopted ones are always kept); they are shown first
    #[arg(long)]
    pub release_ips: bool,

    /// Delete the package's functions, not only take them out of the VPC
    #[arg(long)]
    pub delete_function: bool,

    /// Take functions of other packages out of the stack's VPC too, instead of refusing
    #[arg(long)]
    pub force_detach_others: bool,

    /// Do not ask for confirmation (needed when stdin is not a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Print what destroy would remove, and which functions would leave the VPC; change nothing
    #[arg(long, conflicts_with = "yes")]
    pub dry_run: bool,

    /// Longest wait for a NAT gateway to be deleted, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub nat_timeout: u64,

    /// Longest wait for a function to finish updating or be deleted, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub function_timeout: u64,

    #[command(flatten)]
    pub removal: RemovalWaits,

    #[command(flatten)]
    pub lock: LockWait,
}

#[derive(Debug, Clone, Args)]
pub struct UnlockArgs {
    /// The stack whose lease to remove [default: the stacks of the selected packages' functions]
    #[arg(long, value_name = "NAME")]
    pub stack: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct IpsArgs {
    /// The stack [default: the stacks of the selected packages' functions]
    #[arg(long, value_name = "NAME")]
    pub stack: Option<String>,

    /// How to print the IPs (`--json` is `--format json`)
    #[arg(
        long,
        value_name = "FORMAT",
        default_value = "plain",
        conflicts_with = "json"
    )]
    pub format: IpsFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IpsFormat {
    /// One address per line
    Plain,
    /// A JSON document with each address's allocation id, use and AZ slot
    Json,
    /// One `a.b.c.d/32` per line, for firewall rules
    Cidr,
    /// `ip,allocation_id,use,slot` with a header line
    Csv,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The stack [default: the stacks of the selected packages' functions]
    #[arg(long, value_name = "NAME")]
    pub stack: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// Plan without AWS: assume an empty account, and AZs named like us-east-1a, us-east-1b, ...
    #[arg(long)]
    pub offline: bool,

    /// Print a diagram of the network instead of the tree
    #[arg(long, value_name = "FORMAT", conflicts_with = "json")]
    pub diagram: Option<DiagramFormat>,

    /// Plan as `deploy --adopt` would: take over same-named functions fixedip did not create
    #[arg(long)]
    pub adopt: bool,

    #[command(flatten)]
    pub build: BuildOptions,
}

/// cargo's options for building the functions, handed to every build a command runs (for the host
/// and for Lambda), as cargo-lambda does. cargo's `--offline` is not among them: `plan --offline`
/// means "without AWS"; `--frozen` (or `CARGO_NET_OFFLINE=true`) keeps cargo off the network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct BuildOptions {
    /// Space or comma separated list of features to activate; repeat for more
    #[arg(short = 'F', long, value_name = "FEATURES", action = ArgAction::Append, help_heading = "Build")]
    pub features: Vec<String>,

    /// Activate all available features of the selected packages
    #[arg(long, help_heading = "Build")]
    pub all_features: bool,

    /// Do not activate the `default` feature of the selected packages
    #[arg(long, help_heading = "Build")]
    pub no_default_features: bool,

    /// Build only this binary; repeat for several, globs as cargo ('fn-*') [default: every binary]
    #[arg(long = "bin", value_name = "NAME", action = ArgAction::Append, help_heading = "Build")]
    pub bins: Vec<String>,

    /// Directory for everything cargo builds [default: CARGO_TARGET_DIR, else the workspace's target/]
    #[arg(long, value_name = "DIR", help_heading = "Build")]
    pub target_dir: Option<PathBuf>,

    /// Fail rather than change Cargo.lock
    #[arg(long, help_heading = "Build")]
    pub locked: bool,

    /// Fail rather than change Cargo.lock or use the network (cargo's --locked --offline)
    #[arg(long, help_heading = "Build")]
    pub frozen: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagramFormat {
    /// Mermaid flowchart (renders in GitHub Markdown)
    Mermaid,
    /// Graphviz dot (`dot -Tsvg`)
    Dot,
}

/// Cargo's own help colors, so that `cargo fixedip --help` looks like `cargo build --help`.
fn clap_cargo_styles() -> clap::builder::Styles {
    use anstyle::{AnsiColor, Effects};
    let header = AnsiColor::Green.on_default().effects(Effects::BOLD);
    clap::builder::Styles::styled()
        .header(header)
        .usage(header)
        .literal(AnsiColor::Cyan.on_default().effects(Effects::BOLD))
        .placeholder(AnsiColor::Cyan.on_default())
        .error(AnsiColor::Red.on_default().effects(Effects::BOLD))
        .valid(AnsiColor::Cyan.on_default().effects(Effects::BOLD))
        .invalid(AnsiColor::Yellow.on_default().effects(Effects::BOLD))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_is_well_formed() {
        Cargo::command().debug_assert();
    }

    #[test]
    fn global_options_go_after_the_subcommand() {
        let Cargo::Fixedip(args) = Cargo::try_parse_from([
            "cargo",
            "fixedip",
            "plan",
            "--offline",
            "-p",
            "a",
            "-p",
            "b",
            "--json",
            "-vv",
        ])
        .unwrap();
        assert_eq!(args.global.packages, ["a", "b"]);
        assert!(args.global.json);
        assert_eq!(args.global.verbose, 2);
        let Command::Plan(plan) = args.command else {
            panic!("parsed as plan")
        };
        assert!(plan.offline);
    }

    #[test]
    fn workspace_and_package_conflict() {
        let error = Cargo::try_parse_from(["cargo", "fixedip", "plan", "--workspace", "-p", "a"])
            .unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::ArgumentConflict);
    }
}
