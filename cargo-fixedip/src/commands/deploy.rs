//! `cargo fixedip deploy`: build (or take `--zip`), read the requirements, observe, plan, refuse what
//! is wrong before the first change, execute, print the IPs.
//!
//! Every stack is observed and planned before any stack is changed, so that a plan error in the
//! second stack does not leave the first half-deployed.

use std::collections::BTreeMap;
use std::fmt::{self, Display};
use std::time::Duration;

use fixedip_core::artifact::check_artifact;
use fixedip_core::plan::{Plan, StackSpec};
use fixedip_core::planner::{self, DeclaredFunction};
use serde::Serialize;

use super::{async_runtime, Context, PackagedFunction};
use crate::aws::execute::{self, Inputs, Progress, Timeouts};
use crate::aws::observe::{observe, Scope};
use crate::aws::{Aws, CallCounts};
use crate::cli::DeployArgs;
use crate::commands::ips::{stack_addresses, StackAddress};
use crate::commands::verify::{self, Expectation, FunctionVerdict};
use crate::error::CliError;
use crate::output::{style, styled};

pub fn run(context: &Context, args: &DeployArgs) -> Result<(), CliError> {
    let functions = match &args.zip {
        Some(path) => vec![context.function_from_zip(path)?],
        None => context.functions_built_for_lambda()?,
    };
    check_artifacts(&functions)?;
    let report = async_runtime()?.block_on(deploy(context, args, functions))?;
    context.output.result(&report).map_err(CliError::Stdout)?;
    // The IPs are printed either way; a network that does not prove them is still a failure.
    let verdicts: Vec<_> = report
        .stacks
        .iter()
        .flat_map(|s| s.verification.clone())
        .collect();
    verify::failures(&verdicts)
}

/// Refuses a zip that would not start on Lambda (wrong architecture, too new a glibc, too large)
/// before AWS is even asked anything.
fn check_artifacts(functions: &[PackagedFunction]) -> Result<(), CliError> {
    for PackagedFunction { function, zip } in functions {
        let problems = check_artifact(&zip.bytes, function.settings.architecture);
        if !problems.is_empty() {
            return Err(CliError::Artifact {
                zip: function.binary.path.display().to_string(),
                problems: problems
                    .iter()
                    .map(|p| format!("[{}] {p}", p.code()))
                    .collect(),
            });
        }
    }
    Ok(())
}

/// What deploy did, per stack.
#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
    pub stacks: Vec<StackDeployed>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StackDeployed {
    pub stack: String,
    pub region: String,
    pub functions: Vec<String>,
    /// How many steps the plan had (0: the account already matched).
    pub steps: usize,
    /// The stack's Elastic IPs after the deploy: what the partner allowlists.
    pub ips: Vec<StackAddress>,
    /// AWS requests made for this stack, all and mutating.
    pub calls: CallCounts,
    /// `verify` of each function, run on the deployed network.
    pub verification: Vec<FunctionVerdict>,
}

async fn deploy(
    context: &Context,
    args: &DeployArgs,
    functions: Vec<PackagedFunction>,
) -> Result<DeployReport, CliError> {
    // One connection per region: `--region`, else each package's setting, else the AWS config's.
    let mut connections: BTreeMap<Option<String>, Aws> = BTreeMap::new();
    let mut declared = Vec::new();
    let mut inputs = Inputs {
        timeouts: Timeouts {
            nat_gateway: Duration::from_secs(args.nat_timeout),
            function: Duration::from_secs(args.function_timeout),
            ..Timeouts::default()
        },
        ..Inputs::default()
    };
    for PackagedFunction { function, zip } in functions {
        let wanted = context
            .global
            .region
            .clone()
            .or_else(|| function.settings.region.clone());
        if !connections.contains_key(&wanted) {
            let aws = Aws::connect(&context.aws_options(wanted.clone())).await?;
            context
                .output
                .verbose(format!("AWS account {} in {}", aws.account, aws.region));
            connections.insert(wanted.clone(), aws);
        }
        let region = connections[&wanted].region.clone();
        inputs
            .zips
            .insert(function.settings.function_name.clone(), zip.bytes);
        declared.push(DeclaredFunction {
            record: function.record,
            settings: function.settings,
            region,
            code_sha256: Some(zip.code_sha256),
        });
    }
    let by_region: BTreeMap<String, Aws> = connections
        .into_values()
        .map(|aws| (aws.region.clone(), aws))
        .collect();

    // Observe and plan every stack first: nothing changes unless every plan is sound.
    let mut planned: Vec<(StackSpec, Plan)> = Vec::new();
    for spec in planner::stack_specs(declared)? {
        let aws = &by_region[&spec.region];
        context.output.status(
            "Observing",
            format!("stack `{}` in {}", spec.stack, spec.region),
        );
        let observed = observe(aws, &Scope::from(&spec)).await?;
        let plan = planner::plan(&spec, &observed)?;
        for note in &plan.notes {
            context.output.warning(note);
        }
        planned.push((spec, plan));
    }

    let mut stacks = Vec::new();
    for (spec, plan) in planned {
        let aws = &by_region[&spec.region];
        let before = aws.calls.counts();
        inputs.adopted_ips = spec.adopted_ips.clone();
        if plan.is_noop() {
            context.output.status(
                "Fresh",
                format!("stack `{}`: the account already matches", spec.stack),
            );
        } else {
            context.output.status(
                "Deploying",
                format!(
                    "stack `{}` in {}: {} steps",
                    spec.stack,
                    spec.region,
                    plan.steps.len()
                ),
            );
            let output = &context.output;
            let progress = |event: Progress<'_>| match event {
                Progress::Started(step) => {
                    output.verbose(format!("step {}: {}", step.id.0, step.action.summary()))
                }
                Progress::Waiting { step, what } => {
                    output.status("Waiting", format!("for {what} (step {})", step.id.0))
                }
                Progress::Finished {
                    step,
                    created,
                    elapsed,
                } => {
                    let created = created.map(|id| format!(" → {id}")).unwrap_or_default();
                    output.status(
                        "Done",
                        format!(
                            "{}{created} ({:.1} s)",
                            step.action.summary(),
                            elapsed.as_secs_f64()
                        ),
                    );
                }
            };
            execute::execute(aws, &plan, &inputs, &progress).await?;
        }
        let ips = stack_addresses(aws, &spec.stack).await?;
        let names: Vec<String> = spec.functions.iter().map(|f| f.name.clone()).collect();
        let allowed: Vec<_> = ips.iter().map(|a| a.ip).collect();
        let verification =
            verify::verify_functions(aws, &names, &allowed, Expectation::ThroughNat, false).await?;
        let after = aws.calls.counts();
        stacks.push(StackDeployed {
            stack: spec.stack.to_string(),
            region: spec.region.clone(),
            functions: spec.functions.iter().map(|f| f.name.clone()).collect(),
            steps: plan.steps.len(),
            ips,
            calls: CallCounts {
                total: after.total - before.total,
                mutating: after.mutating - before.mutating,
            },
            verification,
        });
    }
    for aws in by_region.values() {
        let counts = aws.calls.counts();
        context.output.verbose(format!(
            "{}: {} AWS requests, {} mutating",
            aws.region, counts.total, counts.mutating
        ));
    }
    Ok(DeployReport { stacks })
}

impl Display for DeployReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for stack in &self.stacks {
            writeln!(
                f,
                "{} in {}: {}",
                styled(style::HEADER, format_args!("Stack `{}`", stack.stack)),
                stack.region,
                stack.functions.join(", ")
            )?;
            writeln!(f, "Fixed egress IPs (for the partner's allowlist):")?;
            for address in stack.ips.iter().filter(|a| a.active) {
                writeln!(f, "  {}", styled(style::VALUE, address.ip))?;
            }
            for verdict in stack
                .verification
                .iter()
                .filter(|v| !v.passed() || !v.findings.is_empty())
            {
                write!(f, "{verdict}")?;
            }
        }
        Ok(())
    }
}
