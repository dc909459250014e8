//! `cargo fixedip destroy`: observe the stack, plan its teardown, show which IPs are kept and
//! which released, confirm a release, execute, print what went and what was kept.
//!
//! The Elastic IPs are kept unless `--release-ips`: re-tagged `retained`, so that the next deploy
//! of the stack puts the same IPs back to work and the partner's allowlist stays valid. Adopted
//! addresses are never released. Every removal treats "already gone" as done, so a destroy that
//! failed or was killed is finished by running it again.

use std::collections::BTreeMap;
use std::fmt::{self, Display};
use std::io::{BufRead, IsTerminal, Write};
use std::net::Ipv4Addr;

use fixedip_core::plan::{NetworkModes, Plan, StackSpec, DEFAULT_VPC_CIDR};
use fixedip_core::planner::{self, DeclaredFunction, PlanOptions};
use fixedip_core::requirements::{AzCount, StackName};
use serde::Serialize;

use super::deploy::{show_progress, take_lease};
use super::{async_runtime, Context};
use crate::aws::execute::{self, Inputs, Progress, Timeouts};
use crate::aws::lease::LeaseError;
use crate::aws::observe::{observe, Scope};
use crate::aws::{Aws, CallCounts};
use crate::cli::DestroyArgs;
use crate::commands::ips::{stack_addresses, StackAddress};
use crate::error::CliError;
use crate::output::{style, styled};

/// What destroy did, per stack.
#[derive(Debug, Clone, Serialize)]
pub struct DestroyReport {
    pub stacks: Vec<StackDestroyed>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StackDestroyed {
    pub stack: String,
    pub region: String,
    /// What was removed or changed, one line per step, in the order it was planned.
    pub removed: Vec<String>,
    /// Released Elastic IPs: no longer the account's, to be taken off the partner's allowlist.
    pub released_ips: Vec<ReleasedIp>,
    /// The Elastic IPs the stack still holds (retained, or adopted): billed, and put back to work
    /// by the next deploy of the stack.
    pub kept_ips: Vec<StackAddress>,
    /// AWS requests made for this stack, all and mutating.
    pub calls: CallCounts,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReleasedIp {
    pub ip: Ipv4Addr,
    pub allocation_id: String,
}

pub fn run(context: &Context, args: &DestroyArgs) -> Result<(), CliError> {
    let declared = declared_functions(context, args)?;
    let report = async_runtime()?.block_on(destroy(context, args, declared))?;
    context.output.result(&report).map_err(CliError::Stdout)
}

/// Which stacks to destroy: the one named by `--stack`, else the stacks of the selected
/// package's functions (from `--zip`, or from a host build, as `plan` reads them).
enum Target {
    Named(StackName),
    Functions(Vec<DeclaredFunction>),
}

fn declared_functions(context: &Context, args: &DestroyArgs) -> Result<Target, CliError> {
    if let Some(name) = &args.stack {
        let stack = StackName::parse(name).map_err(|error| CliError::BadStack {
            stack: name.clone(),
            reason: error.to_string(),
        })?;
        return Ok(Target::Named(stack));
    }
    let binaries = match &args.zip {
        Some(path) => vec![context.function_from_zip(path)?.function],
        None => context.functions_built_for_host(&args.build)?,
    };
    Ok(Target::Functions(
        binaries
            .into_iter()
            .map(|binary| DeclaredFunction {
                // Filled in once connected: the stack's region is where the account is.
                region: String::new(),
                record: binary.record,
                settings: binary.settings,
                code_sha256: None,
            })
            .collect(),
    ))
}

async fn destroy(
    context: &Context,
    args: &DestroyArgs,
    target: Target,
) -> Result<DestroyReport, CliError> {
    // One connection per region, as deploy makes them.
    let mut connections: BTreeMap<Option<String>, Aws> = BTreeMap::new();
    let connect = |wanted: Option<String>| {
        let options = context.aws_options(wanted.clone());
        async move { (wanted, Aws::connect(&options).await) }
    };
    let specs: Vec<StackSpec> = match target {
        Target::Named(stack) => {
            let (wanted, aws) = connect(context.global.region.clone()).await;
            let aws = aws?;
            let spec = StackSpec {
                stack,
                region: aws.region.clone(),
                // Destroy plans from what exists; the CIDR and AZ count play no part in it.
                vpc_cidr: DEFAULT_VPC_CIDR,
                azs: AzCount::new(1).expect("1 is a valid AZ count"),
                adopted_ips: Vec::new(),
                modes: NetworkModes::default(),
                functions: Vec::new(),
            };
            connections.insert(wanted, aws);
            vec![spec]
        }
        Target::Functions(functions) => {
            let mut declared = Vec::new();
            for mut function in functions {
                let wanted = context
                    .global
                    .region
                    .clone()
                    .or_else(|| function.settings.region.clone());
                if !connections.contains_key(&wanted) {
                    let (wanted, aws) = connect(wanted.clone()).await;
                    connections.insert(wanted, aws?);
                }
                function.region = connections[&wanted].region.clone();
                declared.push(function);
            }
            planner::stack_specs(declared)?
        }
    };
    let by_region: BTreeMap<String, Aws> = connections
        .into_values()
        .map(|aws| (aws.region.clone(), aws))
        .collect();

    let options = PlanOptions {
        release_ips: args.release_ips,
        delete_functions: args.delete_function,
        force_detach_others: args.force_detach_others,
        ..PlanOptions::default()
    };
    // Observe and plan every stack first: nothing changes unless every plan is sound.
    let mut planned: Vec<(StackSpec, Plan)> = Vec::new();
    for spec in specs {
        let aws = &by_region[&spec.region];
        context.output.status(
            "Observing",
            format!("stack `{}` in {}", spec.stack, spec.region),
        );
        let plan = observe_and_plan(aws, &spec, &options).await?;
        for note in &plan.notes {
            context.output.warning(note);
        }
        show_plan(context, &plan);
        planned.push((spec, plan));
    }
    confirm_release(context, args, &planned)?;

    let inputs = Inputs {
        timeouts: Timeouts::from_seconds(
            args.nat_timeout,
            args.function_timeout,
            args.removal.eni_timeout,
            args.removal.poll_interval,
        ),
        ..Inputs::default()
    };
    let mut stacks = Vec::new();
    for (spec, plan) in planned {
        let aws = &by_region[&spec.region];
        let before = aws.calls.counts();
        let fresh = |plan: &Plan| {
            context.output.status(
                "Fresh",
                format!("stack `{}`: nothing of it is left to remove", plan.stack),
            )
        };
        // Nothing to remove takes no lease: a destroy run again makes no mutating call.
        let plan = if plan.is_noop() {
            fresh(&plan);
            plan
        } else {
            let lease = take_lease(
                context,
                aws,
                &spec.stack,
                "destroy",
                args.lock.lock_timeout,
                args.removal.poll_interval,
            )
            .await?;
            let (inputs, options, spec, confirmed) = (&inputs, &options, &spec, plan);
            lease
                .run(async move {
                    // Under the lease, from the account as it is now: a deploy may have changed the
                    // stack while this run waited.
                    let plan = observe_and_plan(aws, spec, options).await?;
                    let unconfirmed: Vec<String> = plan
                        .network
                        .released_addresses
                        .iter()
                        .filter(|released| !confirmed.network.released_addresses.contains(released))
                        .map(|(_, ip)| ip.to_string())
                        .collect();
                    if !unconfirmed.is_empty() {
                        return Err(CliError::from(LeaseError::ChangedWhileWaiting {
                            stack: spec.stack.to_string(),
                            what: format!(
                                "it now has Elastic IPs that were not shown before: {}",
                                unconfirmed.join(", ")
                            ),
                        }));
                    }
                    if plan.is_noop() {
                        fresh(&plan);
                        return Ok(plan);
                    }
                    context.output.status(
                        "Destroying",
                        format!(
                            "stack `{}` in {}: {} steps",
                            spec.stack,
                            spec.region,
                            plan.steps.len()
                        ),
                    );
                    let output = &context.output;
                    let progress = |event: Progress<'_>| show_progress(output, event);
                    execute::execute(aws, &plan, inputs, &progress).await?;
                    Ok(plan)
                })
                .await?
        };
        let kept_ips = stack_addresses(aws, &spec.stack).await?;
        let after = aws.calls.counts();
        stacks.push(StackDestroyed {
            stack: spec.stack.to_string(),
            region: spec.region.clone(),
            removed: plan.steps.iter().map(|s| s.action.summary()).collect(),
            released_ips: plan
                .network
                .released_addresses
                .iter()
                .map(|(allocation_id, ip)| ReleasedIp {
                    ip: *ip,
                    allocation_id: allocation_id.clone(),
                })
                .collect(),
            kept_ips,
            calls: CallCounts {
                total: after.total - before.total,
                mutating: after.mutating - before.mutating,
            },
        });
    }
    Ok(DestroyReport { stacks })
}

/// The stack as it is, and its teardown. Every function attached to the stack is observed, not
/// only the package's: destroy must not cut another package's function off without saying so.
async fn observe_and_plan(
    aws: &Aws,
    spec: &StackSpec,
    options: &PlanOptions,
) -> Result<Plan, CliError> {
    let scope = Scope {
        attached_functions: true,
        ..Scope::from(spec)
    };
    let observed = observe(aws, &scope).await?;
    Ok(planner::plan_destroy(spec, &observed, options)?)
}

/// Before anything is removed: which IPs stay (and stay billed) and which are given back to AWS.
fn show_plan(context: &Context, plan: &Plan) {
    let output = &context.output;
    output.status(
        "Planned",
        format!("stack `{}`: {} steps", plan.stack, plan.steps.len()),
    );
    for step in &plan.steps {
        output.verbose(format!("step {}: {}", step.id.0, step.action.summary()));
    }
    for (id, ip) in &plan.network.retained_addresses {
        output.status("Keeping", format!("Elastic IP {ip} ({id}), retained"));
    }
    for (id, ip) in &plan.network.released_addresses {
        output.status("Releasing", format!("Elastic IP {ip} ({id})"));
    }
}

/// Releasing an IP cannot be undone: a partner's allowlist may still name it. On a terminal the
/// user is asked; elsewhere `--yes` must say so.
fn confirm_release(
    context: &Context,
    args: &DestroyArgs,
    planned: &[(StackSpec, Plan)],
) -> Result<(), CliError> {
    let released: Vec<String> = planned
        .iter()
        .flat_map(|(_, plan)| &plan.network.released_addresses)
        .map(|(_, ip)| ip.to_string())
        .collect();
    if released.is_empty() || args.yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() || context.global.json {
        return Err(CliError::ReleaseNeedsConfirmation);
    }
    eprint!(
        "Release {} ({})? They cannot be got back, and a partner may still allowlist them. [y/N] ",
        if released.len() == 1 {
            "this Elastic IP"
        } else {
            "these Elastic IPs"
        },
        released.join(", ")
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|_| CliError::DestroyCancelled)?;
    match answer.trim() {
        "y" | "Y" | "yes" | "YES" | "Yes" => Ok(()),
        _ => Err(CliError::DestroyCancelled),
    }
}

impl Display for DestroyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for stack in &self.stacks {
            writeln!(
                f,
                "{} in {}: {}",
                styled(style::HEADER, format_args!("Stack `{}`", stack.stack)),
                stack.region,
                if stack.removed.is_empty() {
                    "nothing was left to remove".to_owned()
                } else {
                    format!("{} steps carried out", stack.removed.len())
                }
            )?;
            for line in &stack.removed {
                writeln!(f, "  {line}")?;
            }
            if !stack.released_ips.is_empty() {
                writeln!(f, "Released (take them off the partner's allowlist):")?;
                for released in &stack.released_ips {
                    writeln!(f, "  {}", styled(style::VALUE, released.ip))?;
                }
            }
            if !stack.kept_ips.is_empty() {
                writeln!(
                    f,
                    "Kept (still allocated and billed; the next deploy of the stack uses them again):"
                )?;
                for kept in &stack.kept_ips {
                    writeln!(f, "  {}", styled(style::VALUE, kept.ip))?;
                }
            }
        }
        Ok(())
    }
}
