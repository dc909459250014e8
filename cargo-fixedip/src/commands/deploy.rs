//! `cargo fixedip deploy`: build (or take `--zip`), read the requirements, observe, plan, refuse what
//! is wrong before the first change, take the stack's lease, plan again under it, execute, print
//! the IPs.
//!
//! Every stack is observed and planned before any stack is changed, so that a plan error in the
//! second stack does not leave the first half-deployed.

use std::fmt::{self, Display};
use std::net::Ipv4Addr;
use std::time::Duration;

use fixedip_core::artifact::check_artifact;
use fixedip_core::plan::{Action, ExistingAttachment, Plan, Ref, StackSpec};
use fixedip_core::planner::{self, DeclaredFunction, PlanOptions};
use fixedip_core::requirements::StackName;
use serde::Serialize;

use super::{async_runtime, Connections, Context, Identity, PackagedFunction};
use crate::aws::endpoints;
use crate::aws::execute::{self, Inputs, Progress, Timeouts};
use crate::aws::lease::{self, HeldLease, Lease, LeaseRecord, LeaseWait};
use crate::aws::observe::{self, observe, Scope};
use crate::aws::{Aws, CallCounts};
use crate::build::AnnotatedBinary;
use crate::cli::DeployArgs;
use crate::commands::ips::{stack_addresses, StackAddress};
use crate::commands::verify::{self, Expectation, FunctionVerdict};
use crate::error::CliError;
use crate::output::{counted, style, styled, Output};
use fixedip_core::cost;
use fixedip_core::observed::AddressUse;
use fixedip_core::requirements::NatMode;

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
                .to(context, wanted, Identity::Checked, false)
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
    let verdicts: Vec<_> = report
        .stacks
        .iter()
        .flat_map(|s| s.verification.clone())
        .collect();
    verify::failures(&verdicts)?;
    // The distinct exit code makes CI notice that some IPs wait for the user.
    let held_back: Vec<String> = report
        .stacks
        .iter()
        .flat_map(|s| &s.pending_ips)
        .map(|p| {
            p.ip.map_or_else(|| p.allocation_id.clone(), |ip| ip.to_string())
        })
        .collect();
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
    /// `nat = "none"`: nothing leaves the VPC, there is no egress IP to allowlist.
    pub isolated: bool,
    /// The stack's Elastic IPs after the deploy: what the partner allowlists.
    pub ips: Vec<StackAddress>,
    /// New Elastic IPs that carry no traffic until `deploy --allow-new-ips` (the stack's IPs were
    /// shown already, so a new one must reach the partner's allowlist first).
    pub pending_ips: Vec<PendingIpReport>,
    /// AWS requests made for this stack, all and mutating.
    pub calls: CallCounts,
    /// `verify` of each function, run on the deployed network.
    pub verification: Vec<FunctionVerdict>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PendingIpReport {
    pub slot: u8,
    pub az: String,
    pub ip: Option<Ipv4Addr>,
    pub allocation_id: String,
    /// What to do about it, as printed.
    pub message: String,
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
    let options = PlanOptions {
        allow_new_ips: args.allow_new_ips,
        adopt_functions: args.adopt,
        ..PlanOptions::default()
    };
    let mut declared = Vec::new();
    for PackagedFunction { function, zip } in functions {
        inputs
            .zips
            .insert(function.settings.function_name.clone(), zip.bytes);
        declared.push(declare(context, &mut connections, function, Some(zip.code_sha256)).await?);
    }
    let planned = preflight(context, &connections, declared, &options).await?;
    for (_, plan) in &planned {
        if !plan.is_noop() {
            show_cost(context, plan);
        }
    }
    let by_region = connections.by_region();

    let mut stacks = Vec::new();
    for (spec, plan) in planned {
        let aws = &by_region[&spec.region];
        let before = aws.calls.counts();
        inputs.adopted_ips = spec.adopted_ips.clone();
        let fresh = |plan: &Plan| {
            context.output.status(
                "Fresh",
                format!("stack `{}`: the account already matches", plan.stack),
            )
        };
        // A plan that changes nothing takes no lease: a no-op deploy makes no mutating call.
        let (plan, executed) = if plan.is_noop() {
            fresh(&plan);
            (plan, execute::Executed::default())
        } else {
            let lease = take_lease(
                context,
                aws,
                &spec.stack,
                "deploy",
                args.lock.lock_timeout,
                args.removal.poll_interval,
            )
            .await?;
            let inputs = &inputs;
            let options = &options;
            let spec = &spec;
            lease
                .run(async move {
                    // Under the lease, from the account as it is now: another run may have changed
                    // the stack while this one waited, or since it observed.
                    let plan = observe_and_plan(context, aws, spec, options, "Planning").await?;
                    if plan.is_noop() {
                        fresh(&plan);
                        return Ok((plan, execute::Executed::default()));
                    }
                    context.output.status(
                        "Deploying",
                        format!(
                            "stack `{}` in {}: {}",
                            spec.stack,
                            spec.region,
                            counted(plan.steps.len(), "step")
                        ),
                    );
                    let output = &context.output;
                    let progress = |event: Progress<'_>| show_progress(output, &plan, event);
                    let executed = execute::execute(aws, &plan, inputs, &progress).await?;
                    Ok::<_, CliError>((plan, executed))
                })
                .await?
        };
        let pending_ips = pending_ips(&plan, &executed);
        for pending in &pending_ips {
            context.output.warning(&pending.message);
        }
        let ips = match &plan.network.existing {
            // The user's NATs' addresses, as the plan judged them: the stack holds none.
            Some(attachment) => existing_addresses(attachment),
            None => stack_addresses(aws, &spec.stack).await?,
        };
        let names: Vec<String> = spec.functions.iter().map(|f| f.name.clone()).collect();
        let allowed: Vec<_> = ips.iter().map(|a| a.ip).collect();
        let expectation = match spec.modes.nat {
            NatMode::None => Expectation::Isolated,
            NatMode::Gateway | NatMode::Instance => Expectation::ThroughNat,
        };
        let mut verification =
            verify::verify_functions(aws, &names, &allowed, expectation, false).await?;
        check_declared_egress(aws, &spec, &mut verification).await?;
        let after = aws.calls.counts();
        stacks.push(StackDeployed {
            stack: spec.stack.to_string(),
            region: spec.region.clone(),
            functions: spec.functions.iter().map(|f| f.name.clone()).collect(),
            steps: plan.steps.len(),
            isolated: spec.modes.nat == NatMode::None,
            ips,
            pending_ips,
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
            if stack.isolated {
                writeln!(
                    f,
                    "Isolated (nat = \"none\"): nothing leaves the VPC, there is no egress IP"
                )?;
            } else {
                writeln!(f, "Fixed egress IPs (for the partner's allowlist):")?;
            }
            for address in stack.ips.iter().filter(|a| a.active) {
                writeln!(f, "  {}", styled(style::VALUE, address.ip))?;
            }
            let retained: Vec<_> = stack
                .ips
                .iter()
                .filter(|a| a.usage == AddressUse::Retained)
                .collect();
            if !retained.is_empty() {
                writeln!(f, "Kept, carrying no traffic now (keep them allowlisted: a later deploy reuses them first):")?;
                for address in retained {
                    writeln!(f, "  {}", styled(style::VALUE, address.ip))?;
                }
            }
            if !stack.pending_ips.is_empty() {
                writeln!(
                    f,
                    "New, held back until `cargo fixedip deploy --allow-new-ips`:"
                )?;
                for pending in &stack.pending_ips {
                    writeln!(f, "  {}", pending.message)?;
                }
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

/// A built function, in the region it deploys to (connected to on first use).
pub(crate) async fn declare(
    context: &Context,
    connections: &mut Connections,
    function: AnnotatedBinary,
    code_sha256: Option<String>,
) -> Result<DeclaredFunction, CliError> {
    let wanted = context.wanted_region(&function.settings);
    connections
        .to(context, &wanted, Identity::Checked, false)
        .await?;
    Ok(DeclaredFunction {
        record: function.record,
        settings: function.settings,
        region: connections.region_of(&wanted),
        code_sha256,
    })
}

/// Groups the functions into stacks, observes and plans each, and runs every check deploy makes
/// before its first change: the plan's own refusals (functions that disagree, too few AZs, a
/// function fixedip did not create, the Elastic IP quota) and the region's offer of each VPC
/// endpoint. Every stack is planned before any changes: nothing is changed unless every plan is
/// sound. `plan` runs this too, so that it refuses what deploy would, with the same exit code.
pub(crate) async fn preflight(
    context: &Context,
    connections: &Connections,
    declared: Vec<DeclaredFunction>,
    options: &PlanOptions,
) -> Result<Vec<(StackSpec, Plan)>, CliError> {
    let mut planned = Vec::new();
    for spec in planner::stack_specs(declared)? {
        let aws = connections.in_region(&spec.region);
        let plan = observe_and_plan(context, aws, &spec, options, "Observing").await?;
        let services = endpoints::services_created(&plan);
        if !services.is_empty() {
            let azs: Vec<String> = plan.network.azs.iter().map(|az| az.az.clone()).collect();
            endpoints::check_services(aws, &services, &azs).await?;
        }
        planned.push((spec, plan));
    }
    Ok(planned)
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

/// Observes the stack and plans it; `doing` is the progress word (`Observing`, then `Planning` when
/// planned again under the lease). Notes are shown once, at the first plan.
async fn observe_and_plan(
    context: &Context,
    aws: &Aws,
    spec: &StackSpec,
    options: &PlanOptions,
    doing: &str,
) -> Result<Plan, CliError> {
    context
        .output
        .status(doing, format!("stack `{}` in {}", spec.stack, spec.region));
    let mut observed = observe(aws, &Scope::from(spec)).await?;
    let mut plan = planner::plan_with(spec, &observed, options)?;
    // The quota matters only to a plan that allocates: asked then, and planned again with it,
    // so that a deploy that changes nothing stays at its few read calls.
    if allocates(&plan) {
        observe::address_quota(aws, &mut observed).await?;
        plan = planner::plan_with(spec, &observed, options)?;
    }
    if doing == "Observing" {
        if let Some(attachment) = &plan.network.existing {
            let subnets: Vec<String> = attachment
                .subnets
                .iter()
                .map(|s| format!("{} ({})", s.id, s.availability_zone))
                .collect();
            context.output.status(
                "Attaching",
                format!(
                    "to the existing network {}: {}",
                    attachment.vpc_id,
                    subnets.join(", ")
                ),
            );
        }
        for note in &plan.notes {
            context.output.warning(note);
        }
    }
    Ok(plan)
}

/// Takes the stack's lease before the first mutating call, waiting for another deploy or destroy
/// of the stack with progress on stderr (aws/lease.rs).
pub(crate) async fn take_lease(
    context: &Context,
    aws: &Aws,
    stack: &StackName,
    command: &str,
    timeout_s: u64,
    poll_s: f64,
) -> Result<HeldLease, CliError> {
    context.output.verbose(format!(
        "taking the lease of stack `{stack}` ({})",
        lease::parameter_name(stack)
    ));
    let wait = LeaseWait {
        timeout: Duration::from_secs(timeout_s),
        poll: Duration::from_secs_f64(poll_s.clamp(0.1, 30.0)),
    };
    let waiting = |holder: &LeaseRecord| {
        context.output.status(
            "Waiting",
            format!(
                "for stack `{stack}`: another run holds its lease ({}); waiting up to {timeout_s} s",
                holder.describe()
            ),
        )
    };
    Ok(Lease::new(aws, stack, command)
        .acquire(wait, waiting)
        .await?)
}

/// Adds to each verdict whether the stack's security group lets out exactly what the functions
/// declare (`egress = [...]`, or everything). A restricted list that opens no public TCP port is
/// what the user asked for: the generic "security groups block all egress" finding is dropped then.
async fn check_declared_egress(
    aws: &Aws,
    spec: &StackSpec,
    verdicts: &mut [FunctionVerdict],
) -> Result<(), CliError> {
    let Some(group) = observe::stack_security_group(aws, &spec.stack).await? else {
        return Ok(());
    };
    let declared = planner::desired_egress(&spec.modes, spec.vpc_cidr.trunc());
    let differences =
        fixedip_core::verify::check_declared_egress(&group.id, &group.egress, &declared);
    for verdict in verdicts.iter_mut() {
        if !spec.modes.egress.is_empty() && differences.is_empty() {
            verdict.findings.retain(|f| {
                f.code != fixedip_core::verify::FindingCode::EgressBlockedBySecurityGroups
            });
        }
        verdict.findings.extend(differences.iter().cloned());
        verdict.passed = fixedip_core::verify::passes(&verdict.findings)
            && verdict.probe.as_ref().is_none_or(|p| p.problem.is_none());
    }
    Ok(())
}

/// Progress on stderr: each step as it finishes, and what it waits for meanwhile.
pub(crate) fn show_progress(output: &Output, plan: &Plan, event: Progress<'_>) {
    match event {
        Progress::Started(step) => {
            output.verbose(format!("started: {}", plan.describe(&step.action)))
        }
        Progress::Waiting { step, what } => output.status(
            "Waiting",
            format!("for {what} ({})", plan.describe(&step.action)),
        ),
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
                    plan.describe(&step.action),
                    elapsed.as_secs_f64()
                ),
            );
        }
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

/// Whether applying the plan may allocate an Elastic IP (then the quota is worth checking).
fn allocates(plan: &Plan) -> bool {
    plan.steps
        .iter()
        .any(|step| matches!(step.action, Action::AllocateAddress { .. }))
}

/// The plan's held-back IPs, with the addresses this run allocated for them.
fn pending_ips(plan: &Plan, executed: &execute::Executed) -> Vec<PendingIpReport> {
    plan.pending_new_ips
        .iter()
        .map(|pending| {
            let mut pending = pending.clone();
            let allocation_id = match &pending.address {
                Ref::Existing(id) => id.clone(),
                Ref::Step(_) => match executed.allocated.get(&pending.slot) {
                    Some((id, ip)) => {
                        pending.public_ip = pending.public_ip.or(ip.parse().ok());
                        id.clone()
                    }
                    None => String::new(),
                },
            };
            PendingIpReport {
                slot: pending.slot,
                az: pending.az.clone(),
                ip: pending.public_ip,
                allocation_id,
                message: pending.to_string(),
            }
        })
        .collect()
}
