//! `cargo fixedip plan`: what deploy would create or change, and its monthly cost.
//!
//! `--offline` builds the functions, reads their records and settings, groups them into stacks and
//! plans each against an empty account whose AZs are assumed (`<region>a`, `<region>b`, ...): no AWS
//! call, no credentials. Without it, plan is deploy's dry run (converge/deploy.rs).

use fixedip_core::observed::ObservedState;
use fixedip_core::plan::StackSpec;
use fixedip_core::planner::{self, DeclaredFunction};
use fixedip_core::settings::{is_region, DeploySettings};

use super::{Connections, Context, Identity};
use crate::cli::{DiagramFormat, PlanArgs};
use crate::converge::deploy::{declare, Deploy};
use crate::converge::plan_stacks;
use crate::error::CliError;
use crate::render::diagram::{draw, Dot, Drawn, Mermaid};
use crate::report::plan::{PlanReport, StackPlan};
use crate::report::FormatVersion;

pub fn run(context: &Context, args: &PlanArgs) -> Result<(), CliError> {
    let report = if args.offline {
        offline(context, args)?
    } else {
        online(context, args)?
    };
    print(context, args, &report)
}

/// `plan` against the account: deploy's dry run. Credentials and regions are checked first, then
/// the functions are built for the host, then every stack is observed, planned and checked as
/// deploy does it, so that plan refuses what deploy would refuse, with the same exit code.
/// Read-only: the call log forbids mutating calls.
fn online(context: &Context, args: &PlanArgs) -> Result<PlanReport, CliError> {
    let runtime = super::async_runtime()?;
    let mut connections = Connections::default();
    let regions = context.selected_regions()?;
    runtime.block_on(async {
        for wanted in &regions {
            connections
                .to(context, wanted, Identity::Zones, true)
                .await?;
        }
        Ok::<_, CliError>(())
    })?;
    let functions = context.functions_built_for_host(&args.build)?;
    runtime.block_on(async {
        let mut declared = Vec::new();
        for function in functions {
            // Built for the host, not for Lambda: the code's hash says nothing about the zip.
            declared.push(declare(context, &mut connections, function, None, true).await?);
        }
        let goal = Deploy::new(planner::PlanOptions {
            adopt_functions: args.adopt,
            ..planner::PlanOptions::default()
        });
        let specs = planner::stack_specs(declared)?;
        let planned = plan_stacks(context, &connections, specs, &goal).await?;
        Ok::<_, CliError>(PlanReport {
            format_version: FormatVersion,
            offline: false,
            stacks: planned
                .iter()
                .map(|(_, plan)| StackPlan::new(plan, true, false))
                .collect(),
        })
    })
}

fn print(context: &Context, args: &PlanArgs, report: &PlanReport) -> Result<(), CliError> {
    let output = &context.output;
    for stack in &report.stacks {
        if let Some(reason) = &stack.cost_unknown {
            output.warning(format!("the monthly cost is unknown: {reason}"));
        }
    }
    let drawn: Vec<Drawn<'_>> = report.stacks.iter().map(StackPlan::drawn).collect();
    match args.diagram {
        Some(DiagramFormat::Mermaid) => output.text(&draw(&Mermaid, &drawn)),
        Some(DiagramFormat::Dot) => output.text(&draw(&Dot, &drawn)),
        None => output.result(report),
    }
    .map_err(CliError::Stdout)
}

/// Build, read, group and plan, with no AWS call.
fn offline(context: &Context, args: &PlanArgs) -> Result<PlanReport, CliError> {
    if let Some(region) = &context.global.region {
        if !is_region(region) {
            return Err(CliError::BadRegion {
                region: region.clone(),
            });
        }
    }
    // Every function needs a region: refused before a build that takes minutes.
    let (_, selection) = context.selection()?;
    for package in &selection.packages {
        for binary in &package.binaries {
            let settings = package.settings(binary)?;
            if offline_region(context.global.region.as_deref(), &settings).is_none() {
                return Err(CliError::NoRegion {
                    function: settings.function_name,
                });
            }
        }
    }
    let functions = context.functions_built_for_host(&args.build)?;
    let declared = functions
        .into_iter()
        .map(|function| {
            let region = offline_region(context.global.region.as_deref(), &function.settings)
                .ok_or_else(|| CliError::NoRegion {
                    function: function.settings.function_name.clone(),
                })?;
            Ok(DeclaredFunction {
                record: function.record,
                settings: function.settings,
                region,
                code_sha256: None,
            })
        })
        .collect::<Result<Vec<_>, CliError>>()?;
    offline_report(declared, context.output.verbose > 0, |spec| {
        context.output.status(
            "Planning",
            format!(
                "stack `{}` in {} (offline: AZ names assumed)",
                spec.stack, spec.region
            ),
        )
    })
}

/// Groups the functions into stacks and plans each against an empty account with assumed AZs;
/// `planning` is told of each stack first. `list_steps`: the text lists every step.
pub fn offline_report(
    declared: Vec<DeclaredFunction>,
    list_steps: bool,
    planning: impl Fn(&StackSpec),
) -> Result<PlanReport, CliError> {
    let mut stacks = Vec::new();
    for spec in planner::stack_specs(declared)? {
        planning(&spec);
        let observed = ObservedState::assumed_offline(&spec.region, &spec.adopted_ips);
        let plan = planner::plan(&spec, &observed)?;
        stacks.push(StackPlan::new(&plan, list_steps, true));
    }
    Ok(PlanReport {
        format_version: FormatVersion,
        offline: true,
        stacks,
    })
}

/// The region without asking AWS: `--region`, the package's `region`, `AWS_REGION`,
/// `AWS_DEFAULT_REGION`. (Online, the AWS configuration's profile may also name one.)
pub fn offline_region(flag: Option<&str>, settings: &DeploySettings) -> Option<String> {
    flag.map(str::to_owned)
        .or_else(|| settings.region.clone())
        .or_else(|| non_empty_env("AWS_REGION"))
        .or_else(|| non_empty_env("AWS_DEFAULT_REGION"))
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
