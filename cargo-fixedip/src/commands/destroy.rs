//! `cargo fixedip destroy`: observe the stack, plan its teardown, show which IPs are kept and
//! which released, confirm a release, execute, print what went and what was kept.
//!
//! The Elastic IPs are kept unless `--release-ips`: re-tagged `retained`, so that the next deploy
//! of the stack puts the same IPs back to work and the partner's allowlist stays valid. Adopted
//! addresses are never released. Every removal treats "already gone" as done, so a destroy that
//! failed or was killed is finished by running it again.

use std::fmt::{self, Display};
use std::io::{BufRead, IsTerminal, Write};
use std::net::Ipv4Addr;
use std::path::Path;

use fixedip_core::plan::{Action, FunctionSpec, NetworkModes, Plan, StackSpec, DEFAULT_VPC_CIDR};
use fixedip_core::planner::{self, PlanOptions};
use fixedip_core::requirements::{AzCount, StackName};
use fixedip_core::tags;
use serde::Serialize;

use super::deploy::{show_progress, take_lease};
use super::{async_runtime, Connections, Context, Identity};
use crate::aws::execute::{self, Inputs, Progress, Timeouts};
use crate::aws::lease::LeaseError;
use crate::aws::observe::{observe, Scope};
use crate::aws::{Aws, CallCounts};
use crate::cli::DestroyArgs;
use crate::commands::ips::{stack_addresses, StackAddress};
use crate::error::CliError;
use crate::output::{counted, style, styled};
use crate::stacks::{StackTarget, TargetFunction};

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
    let targets = match &args.zip {
        Some(path) => vec![zip_target(context, path)?],
        None => context.stack_targets(args.stack.as_deref(), &args.build)?,
    };
    match async_runtime()?.block_on(destroy(context, args, targets))? {
        Outcome::Destroyed(report) => context.output.result(&report),
        Outcome::Previewed(preview) => context.output.result(&preview),
    }
    .map_err(CliError::Stdout)
}

/// The stack of the function in a Lambda zip (`--zip`): its record says which.
fn zip_target(context: &Context, path: &Path) -> Result<StackTarget, CliError> {
    let function = context.function_from_zip(path)?.function;
    Ok(StackTarget {
        stack: function.record.requirements.stack.clone(),
        region: context
            .global
            .region
            .clone()
            .or_else(|| function.settings.region.clone()),
        functions: vec![TargetFunction {
            package: function.binary.package,
            binary: function.binary.target,
            settings: function.settings,
        }],
    })
}

/// What destroy printed: what it did, or with `--dry-run` what it would do.
enum Outcome {
    Destroyed(DestroyReport),
    Previewed(DestroyPreview),
}

/// What a destroy would remove, per stack: `--dry-run`'s result, and what destroy shows before it
/// asks.
#[derive(Debug, Clone, Serialize)]
pub struct DestroyPreview {
    pub stacks: Vec<StackPreview>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StackPreview {
    pub stack: String,
    pub region: String,
    pub plan: Plan,
    /// Functions that stay but leave the VPC: their traffic no longer leaves from the stack's IPs.
    pub functions_leaving_vpc: Vec<String>,
    /// Functions deleted (`--delete-function`).
    pub functions_deleted: Vec<String>,
}

impl StackPreview {
    fn of(plan: &Plan) -> StackPreview {
        let named = |pick: fn(&Action) -> Option<&String>| {
            plan.steps
                .iter()
                .filter_map(|step| pick(&step.action).cloned())
                .collect()
        };
        StackPreview {
            stack: plan.stack.to_string(),
            region: plan.region.clone(),
            functions_leaving_vpc: named(|action| match action {
                Action::DetachFunction { name } => Some(name),
                _ => None,
            }),
            functions_deleted: named(|action| match action {
                Action::DeleteFunction { name } => Some(name),
                _ => None,
            }),
            plan: plan.clone(),
        }
    }
}

async fn destroy(
    context: &Context,
    args: &DestroyArgs,
    targets: Vec<StackTarget>,
) -> Result<Outcome, CliError> {
    let mut connections = Connections::default();
    let mut specs = Vec::new();
    for target in targets {
        let aws = connections
            .to(context, &target.region, Identity::Checked, args.dry_run)
            .await?;
        specs.push(StackSpec {
            stack: target.stack,
            region: aws.region.clone(),
            // Destroy plans from what exists; the CIDR and AZ count play no part in it.
            vpc_cidr: DEFAULT_VPC_CIDR,
            azs: AzCount::new(1).expect("1 is a valid AZ count"),
            adopted_ips: Vec::new(),
            modes: NetworkModes::default(),
            functions: target
                .functions
                .iter()
                .map(|f| FunctionSpec::new(&f.package, &f.binary, &f.settings, None))
                .collect(),
        });
    }
    let by_region = connections.by_region();

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
        planned.push((spec, plan));
    }
    let preview = DestroyPreview {
        stacks: planned
            .iter()
            .map(|(_, plan)| StackPreview::of(plan))
            .collect(),
    };
    if args.dry_run {
        return Ok(Outcome::Previewed(preview));
    }
    if planned.iter().any(|(_, plan)| !plan.is_noop()) {
        // What goes, shown where the question is asked; results stay on stdout.
        if !context.output.quiet && !context.global.json {
            anstream::eprint!("{preview}");
        }
        confirm(context, args, &planned)?;
    }

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
                            "stack `{}` in {}: {}",
                            spec.stack,
                            spec.region,
                            counted(plan.steps.len(), "step")
                        ),
                    );
                    let output = &context.output;
                    let progress = |event: Progress<'_>| show_progress(output, &plan, event);
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
            removed: plan
                .steps
                .iter()
                .map(|s| plan.describe(&s.action))
                .collect(),
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
    Ok(Outcome::Destroyed(DestroyReport { stacks }))
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
    let mut plan = planner::plan_destroy(spec, &observed, options)?;
    if let Some(note) = legacy_role_note(aws, &spec.stack).await {
        plan.notes.push(note);
    }
    Ok(plan)
}

/// fixedip 0.1 gave a stack one role for every region (`fixedip-<stack>-lambda`); deploy now moves
/// each region's functions to a role of that region's own. The old role is never deleted from one
/// region (another region's functions may still run on it): destroy says it is there, and how to
/// delete it once no region uses it.
async fn legacy_role_note(aws: &Aws, stack: &StackName) -> Option<String> {
    let name = tags::legacy_role_name(stack);
    // Only a note: a failed lookup (throttled, denied) must not stop the destroy.
    aws.iam.get_role().role_name(&name).send().await.ok()?;
    Some(format!(
        "the role {name}, made by fixedip 0.1 for every region of stack `{stack}`, is left in place: functions of the stack in another region may still run on it. Once every region is redeployed (deploy moves functions to fixedip-{stack}-<region>-lambda) or destroyed, delete it: detach its policies (`aws iam list-attached-role-policies --role-name {name}`), then `aws iam delete-role --role-name {name}`"
    ))
}

/// Destroying cannot be undone, and releasing an IP even less (a partner's allowlist may still
/// name it): on a terminal the user is asked; elsewhere `--yes` must say so.
fn confirm(
    context: &Context,
    args: &DestroyArgs,
    planned: &[(StackSpec, Plan)],
) -> Result<(), CliError> {
    if args.yes {
        return Ok(());
    }
    let stacks: Vec<String> = planned
        .iter()
        .filter(|(_, plan)| !plan.is_noop())
        .map(|(spec, _)| format!("stack `{}` in {}", spec.stack, spec.region))
        .collect();
    let released: Vec<String> = planned
        .iter()
        .flat_map(|(_, plan)| &plan.network.released_addresses)
        .map(|(_, ip)| ip.to_string())
        .collect();
    let mut what = format!("removes {}", stacks.join(" and "));
    if !released.is_empty() {
        what.push_str(&format!(
            " and releases {} {} for good",
            if released.len() == 1 {
                "Elastic IP"
            } else {
                "Elastic IPs"
            },
            released.join(", ")
        ));
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() || context.global.json {
        return Err(CliError::DestroyNeedsConfirmation { what });
    }
    let warning = if released.is_empty() {
        ""
    } else {
        " Released IPs cannot be got back, and a partner may still allowlist them."
    };
    eprint!("Destroy: this {what}.{warning} Go ahead? [y/N] ");
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

impl Display for DestroyPreview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for stack in &self.stacks {
            let plan = &stack.plan;
            writeln!(
                f,
                "{} in {}: {}",
                styled(style::HEADER, format_args!("Stack `{}`", stack.stack)),
                stack.region,
                match plan.steps.len() {
                    0 => "nothing to remove".to_owned(),
                    n => counted(n, "step"),
                }
            )?;
            if plan.is_noop() {
                continue;
            }
            writeln!(f)?;
            f.write_str(&super::plan::tree(plan))?;
            writeln!(f)?;
            for name in &stack.functions_deleted {
                writeln!(f, "  function {name} is deleted")?;
            }
            for name in &stack.functions_leaving_vpc {
                writeln!(
                    f,
                    "  function {name} leaves the VPC: its traffic no longer comes from the stack's IPs"
                )?;
            }
            for (id, ip) in &plan.network.retained_addresses {
                writeln!(
                    f,
                    "  Elastic IP {} ({id}) is kept (retained, still billed; the next deploy uses it again)",
                    styled(style::VALUE, ip)
                )?;
            }
            for (id, ip) in &plan.network.released_addresses {
                writeln!(
                    f,
                    "  Elastic IP {} ({id}) is RELEASED: take it off the partner's allowlist",
                    styled(style::VALUE, ip)
                )?;
            }
            for note in &plan.notes {
                writeln!(f, "{}: {note}", styled(style::WARNING, "note"))?;
            }
        }
        Ok(())
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
                    format!("{} carried out", counted(stack.removed.len(), "step"))
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
