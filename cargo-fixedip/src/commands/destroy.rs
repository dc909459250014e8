//! `cargo fixedip destroy`: observe the stack, plan its teardown, show which IPs are kept and
//! which released, confirm a release, then converge (converge.rs: under the stack's lease, from
//! the account as it is then), print what went and what was kept.
//!
//! The Elastic IPs are kept unless `--release-ips`: re-tagged `retained`, so that the next deploy
//! of the stack puts the same IPs back to work and the partner's allowlist stays valid. Adopted
//! addresses are never released. Every removal treats "already gone" as done, so a destroy that
//! failed or was killed is finished by running it again.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use fixedip_core::plan::{FunctionSpec, NetworkModes, Plan, StackSpec, DEFAULT_VPC_CIDR};
use fixedip_core::planner::PlanOptions;
use fixedip_core::requirements::AzCount;

use super::{async_runtime, Connections, Context, Identity};
use crate::aws::addresses::stack_addresses;
use crate::aws::execute::{Inputs, Timeouts};
use crate::cli::DestroyArgs;
use crate::converge::destroy::Destroy;
use crate::converge::{self, LeaseOptions};
use crate::error::CliError;
use crate::report::destroy::{DestroyPreview, DestroyReport, StackDestroyed, StackTeardown};
use crate::report::{Calls, FormatVersion, Ip};
use crate::stacks::{StackTarget, TargetFunction};

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

async fn destroy(
    context: &Context,
    args: &DestroyArgs,
    targets: Vec<StackTarget>,
) -> Result<Outcome, CliError> {
    let mut connections = Connections::default();
    let mut specs = Vec::new();
    for target in targets {
        let aws = connections
            .to(context, &target.region, Identity::Zones, args.dry_run)
            .await?;
        specs.push(StackSpec {
            stack: target.stack,
            region: aws.region.clone(),
            // Destroy plans from what exists; the CIDR and AZ count play no part in it.
            vpc_cidr: DEFAULT_VPC_CIDR,
            azs: AzCount::new(1).expect("1 is a valid AZ count"),
            adopted_ips: Vec::new(),
            // Only whether to read self-healing NATs' groups (`converge/destroy.rs`).
            modes: NetworkModes {
                nat_self_healing: target.functions.iter().any(|f| f.settings.nat_self_healing),
                ..NetworkModes::default()
            },
            functions: target
                .functions
                .iter()
                .map(|f| FunctionSpec::new(&f.package, &f.binary, &f.settings, None))
                .collect(),
        });
    }
    let goal = Destroy {
        options: PlanOptions {
            release_ips: args.release_ips,
            delete_functions: args.delete_function,
            force_detach_others: args.force_detach_others,
            ..PlanOptions::default()
        },
    };
    // Observe and plan every stack first: nothing changes unless every plan is sound.
    let planned = converge::plan_stacks(context, &connections, specs, &goal).await?;
    let preview = DestroyPreview {
        format_version: FormatVersion,
        stacks: planned
            .iter()
            .map(|(_, plan)| StackTeardown::of(plan))
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
    let lease = LeaseOptions {
        timeout_s: args.lock.lock_timeout,
        poll_s: args.removal.poll_interval,
    };
    let mut stacks = Vec::new();
    for (spec, plan) in planned {
        let aws = connections.in_region(&spec.region);
        let before = aws.calls.counts();
        let (plan, _, releasing) =
            converge::apply(context, aws, &spec, plan, &goal, &inputs, lease).await?;
        // The addresses kept are read while the lease is released.
        let (kept_ips, released) =
            tokio::join!(stack_addresses(aws, &spec.stack), releasing.finish());
        let kept_ips = kept_ips?;
        released?;
        let after = aws.calls.counts();
        let calls = Calls {
            total: after.total - before.total,
            mutating: after.mutating - before.mutating,
        };
        let kept_ips = kept_ips.iter().map(Ip::from).collect();
        stacks.push(StackDestroyed::of(&plan, kept_ips, calls));
    }
    Ok(Outcome::Destroyed(DestroyReport {
        format_version: FormatVersion,
        stacks,
    }))
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
