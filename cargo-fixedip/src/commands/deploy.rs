//! `cargo fixedip deploy`: build (or take `--zip`), read the requirements, then converge every
//! stack (converge.rs: observe, plan, refuse what is wrong before the first change, take the
//! stack's lease, plan again under it, execute), verify what was deployed and print the IPs.
//!
//! Every stack is observed and planned before any stack is changed, so that a plan error in the
//! second stack does not leave the first half-deployed.

use std::collections::BTreeMap;

use fixedip_core::artifact::check_artifact;
use fixedip_core::cost;
use fixedip_core::observed::ObservedSecurityGroup;
use fixedip_core::plan::{Action, ExistingAttachment, Plan, StackSpec, Status};
use fixedip_core::planner::{self, PlanOptions};
use fixedip_core::requirements::{Endpoint, NatMode};

use super::{async_runtime, Connections, Context, Identity, PackagedFunction};
use crate::aws::addresses::{self, stack_addresses, StackAddress};
use crate::aws::execute::{Executed, Inputs, Timeouts};
use crate::aws::observe;
use crate::aws::Aws;
use crate::cli::DeployArgs;
use crate::converge::deploy::{declare, Deploy};
use crate::converge::{self, LeaseOptions};
use crate::error::CliError;
use crate::report::deploy::{DeployReport, StackDeployed};
use crate::report::{Calls, FormatVersion, Ip, PendingIp};
use crate::verification::{self, Expectation, Verdict};

pub fn run(context: &Context, args: &DeployArgs) -> Result<(), CliError> {
    let runtime = async_runtime()?;
    // Credentials and regions first: refusing them takes a second, a build takes minutes.
    let zipped = args
        .zip
        .as_deref()
        .map(|path| context.function_from_zip(path))
        .transpose()?;
    let regions = match &zipped {
        Some(function) => vec![context.wanted_region(&function.function.settings)],
        None => context.selected_regions()?,
    };
    let mut connections = Connections::default();
    runtime.block_on(async {
        for wanted in &regions {
            connections
                .to(context, wanted, Identity::Zones, false)
                .await?;
        }
        Ok::<_, CliError>(())
    })?;
    let functions = match zipped {
        Some(function) => vec![function],
        None => context.functions_built_for_lambda(&args.build)?,
    };
    check_artifacts(&functions)?;
    let report = runtime.block_on(deploy(context, args, functions, connections))?;
    context.output.result(&report).map_err(CliError::Stdout)?;
    // The IPs are printed either way; a network that does not prove them is still a failure.
    verification::failures(report.stacks.iter().flat_map(|s| &s.verification))?;
    // The distinct exit code makes CI notice that some IPs wait for the user.
    let held_back = report.held_back();
    if !held_back.is_empty() {
        return Err(CliError::NewIpsHeldBack { ips: held_back });
    }
    Ok(())
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

async fn deploy(
    context: &Context,
    args: &DeployArgs,
    functions: Vec<PackagedFunction>,
    mut connections: Connections,
) -> Result<DeployReport, CliError> {
    let mut inputs = Inputs {
        timeouts: Timeouts::from_seconds(
            args.nat_timeout,
            args.function_timeout,
            args.removal.eni_timeout,
            args.removal.poll_interval,
        ),
        ..Inputs::default()
    };
    inputs.timeouts.nat_instance_ready = std::time::Duration::from_secs(args.nat_ready_timeout);
    let goal = Deploy::new(PlanOptions {
        allow_new_ips: args.allow_new_ips,
        adopt_functions: args.adopt,
        ..PlanOptions::default()
    });
    let mut declared = Vec::new();
    for PackagedFunction { function, zip } in functions {
        inputs
            .zips
            .insert(function.settings.function_name.clone(), zip.bytes);
        let sha = Some(zip.code_sha256);
        declared.push(declare(context, &mut connections, function, sha, false).await?);
    }
    let specs = planner::stack_specs(declared)?;
    let planned = converge::plan_stacks(context, &connections, specs, &goal).await?;
    for (_, plan) in &planned {
        if !plan.is_noop() {
            show_cost(context, plan);
        }
    }
    let lease = LeaseOptions {
        timeout_s: args.lock.lock_timeout,
        poll_s: args.removal.poll_interval,
    };
    let mut stacks = Vec::new();
    for (spec, plan) in planned {
        let aws = connections.in_region(&spec.region);
        let before = aws.calls.counts();
        inputs.adopted_ips = spec.adopted_ips.clone();
        let (plan, executed, releasing) =
            converge::apply(context, aws, &spec, plan, &goal, &inputs, lease).await?;
        let pending_ips = PendingIp::of_plan(&plan, &executed.allocated);
        for pending in &pending_ips {
            context.output.warning(&pending.message);
        }
        let names: Vec<String> = spec.functions.iter().map(|f| f.name.clone()).collect();
        // The verification reads while the lease is released: it needs none.
        let (proved, released) = tokio::join!(
            prove_egress(aws, &spec, &plan, &executed, &goal, &names),
            releasing.finish()
        );
        let (ips, verdicts) = proved?;
        released?;
        let after = aws.calls.counts();
        stacks.push(StackDeployed {
            stack: spec.stack.to_string(),
            region: spec.region.clone(),
            functions: names,
            steps: plan.steps.len(),
            isolated: spec.modes.nat == NatMode::None,
            ips: ips.iter().map(Ip::from).collect(),
            pending_ips,
            calls: Calls {
                total: after.total - before.total,
                mutating: after.mutating - before.mutating,
            },
            verification: verdicts.iter().map(Verdict::report).collect(),
        });
    }
    for aws in connections.by_region().values() {
        let counts = aws.calls.counts();
        context.output.verbose(format!(
            "{}: {} AWS requests, {} mutating",
            aws.region, counts.total, counts.mutating
        ));
    }
    Ok(DeployReport {
        format_version: FormatVersion,
        stacks,
    })
}

/// The stack's IPs, and each function's verdict on its egress once the plan was carried out. A
/// deploy that changed no network and no function's configuration proves it from what it observed
/// moments ago, which is what it would read again (a no-op stays at its observation's calls; a
/// code change adds only the upload and its wait); any other reads the account again.
async fn prove_egress(
    aws: &Aws,
    spec: &StackSpec,
    plan: &Plan,
    executed: &Executed,
    goal: &Deploy,
    names: &[String],
) -> Result<(Vec<StackAddress>, Vec<Verdict>), CliError> {
    let expectation = match spec.modes.nat {
        NatMode::None => Expectation::Isolated,
        NatMode::Gateway | NatMode::Instance => Expectation::ThroughNat,
    };
    let network_unchanged = plan.is_noop() || plan.changes_only_code();
    let unchanged = match network_unchanged && plan.network.existing.is_none() {
        true => goal.observation(spec),
        false => None,
    };
    let (ips, mut verdicts, group) = match unchanged {
        Some((observed, network)) => {
            let mut ips = addresses::of_stack(&spec.stack, &network.addresses);
            if ips.is_empty() {
                ips = stack_addresses(aws, &spec.stack).await?;
            }
            let allowed: Vec<_> = ips.iter().map(|a| a.ip).collect();
            let observation = (&observed, &network);
            let verdicts =
                verification::verify_observed(aws, names, observation, &allowed, expectation)
                    .await?;
            (
                ips,
                verdicts,
                (observed.security_group, observed.prefix_lists),
            )
        }
        None => {
            let ips = async {
                match &plan.network.existing {
                    // The user's NATs' addresses, as the plan judged them: the stack holds none.
                    Some(attachment) => Ok(existing_addresses(attachment)),
                    None => stack_addresses(aws, &spec.stack).await,
                }
            };
            // The addresses, the stack's group and prefix lists, and the functions' networks,
            // read at once.
            let vpc = stack_vpc(plan, executed);
            let (ips, group, read) = tokio::try_join!(
                ips,
                declared_egress_inputs(aws, spec),
                verification::read_functions(aws, names, vpc.as_deref()),
            )?;
            let allowed: Vec<_> = ips.iter().map(|a| a.ip).collect();
            let verdicts = verification::judge(aws, read, &allowed, expectation, false).await?;
            (ips, verdicts, group)
        }
    };
    check_declared_egress(spec, group, &mut verdicts);
    Ok((ips, verdicts))
}

/// The stack's VPC once the plan is carried out: the one it kept, or the one it made. `None` on a
/// network the user runs (the functions' subnets lead to it).
fn stack_vpc(plan: &Plan, executed: &Executed) -> Option<String> {
    if plan.network.existing.is_some() {
        return None;
    }
    match &plan.network.vpc.1 {
        Status::Keep(id) | Status::Change(id) => Some(id.clone()),
        Status::Create => plan
            .steps
            .iter()
            .find(|step| matches!(step.action, Action::CreateVpc { .. }))
            .and_then(|step| executed.created.get(&step.id).cloned()),
        Status::HeldBack | Status::Delete(_) | Status::Absent => None,
    }
}

/// The stack's functions' security group and the prefix lists its declared egress names, as
/// AWS lists them now.
async fn declared_egress_inputs(
    aws: &Aws,
    spec: &StackSpec,
) -> Result<(Option<ObservedSecurityGroup>, BTreeMap<Endpoint, String>), crate::aws::AwsError> {
    let needed = planner::gateway_prefix_lists_needed(&spec.modes);
    tokio::try_join!(
        observe::stack_security_group(aws, &spec.stack),
        observe::prefix_lists(aws, &needed),
    )
}

/// What the stack will cost once the plan is applied, said before anything is created; a region
/// the price table lacks is a warning, never a reason to stop.
fn show_cost(context: &Context, plan: &Plan) {
    match cost::of_plan(plan) {
        Ok(cost) => context.output.status(
            "Cost",
            format!(
                "stack `{}` in {}: {} a month before any data{}",
                plan.stack,
                plan.region,
                cost.fixed_total,
                if cost.per_gb.micros > 0 {
                    format!(" (+ {} per GB through the NATs)", cost.per_gb.as_rate())
                } else {
                    String::new()
                }
            ),
        ),
        Err(error) => context
            .output
            .warning(format!("the monthly cost is unknown: {error}")),
    }
}

/// Adds to each verdict whether the stack's security group lets out exactly what the functions
/// declare (`egress = [...]`, or everything). A restricted list that opens no public TCP port is
/// what the user asked for: the generic "security groups block all egress" finding is dropped then.
/// `(group, prefix_lists)`: the stack's group and the prefix lists, as the deploy observed them
/// (when it changed nothing) or read them after its changes.
fn check_declared_egress(
    spec: &StackSpec,
    (group, prefix_lists): (Option<ObservedSecurityGroup>, BTreeMap<Endpoint, String>),
    verdicts: &mut [Verdict],
) {
    let Some(group) = group else {
        return;
    };
    let declared = planner::desired_egress(&spec.modes, spec.vpc_cidr.trunc(), &prefix_lists);
    // Unrestricted, the group keeps what AWS gives a new group, which in a dual-stack VPC includes
    // all to ::/0: harmless, since fixedip turns the function's IPv6 off (Ipv6AllowedForDualStack).
    let all_out_v6 = fixedip_core::network::SecurityGroupRule::all_out_v6();
    let have: Vec<_> = group
        .egress
        .iter()
        .filter(|rule| !(spec.modes.egress.is_empty() && **rule == all_out_v6))
        .cloned()
        .collect();
    let differences = fixedip_core::verify::check_declared_egress(&group.id, &have, &declared);
    for verdict in verdicts.iter_mut() {
        if !spec.modes.egress.is_empty() && differences.is_empty() {
            verdict.findings.retain(|f| {
                f.code != fixedip_core::verify::FindingCode::EgressBlockedBySecurityGroups
            });
        }
        verdict.findings.extend(differences.iter().cloned());
    }
}

/// The addresses of a stack on a network the user runs: its NATs' Elastic IPs.
fn existing_addresses(attachment: &ExistingAttachment) -> Vec<StackAddress> {
    let mut exits: Vec<_> = attachment
        .subnets
        .iter()
        .flat_map(|s| s.exits.iter().cloned())
        .collect();
    exits.sort_by(|a, b| (a.ip, &a.nat).cmp(&(b.ip, &b.nat)));
    exits.dedup_by(|a, b| a.ip == b.ip);
    exits
        .into_iter()
        .map(StackAddress::of_existing_nat)
        .collect()
}
