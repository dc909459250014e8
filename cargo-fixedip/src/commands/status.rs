//! `cargo fixedip status`: every resource the stack owns, per AZ, with its state; the functions
//! attached to it; the IPs; what it costs per month. Read-only.

use fixedip_core::cost::{self, Topology};
use fixedip_core::observed::ObservedState;
use fixedip_core::requirements::EndpointKind;

use super::{async_runtime, Connections, Context, Identity};
use crate::aws::observe::observe;
use crate::aws::Aws;
use crate::cli::StatusArgs;
use crate::error::CliError;
use crate::report::cost::CostReport;
use crate::report::status::{StackStatus, StatusReport};
use crate::report::FormatVersion;
use crate::stacks::StackTarget;

pub fn run(context: &Context, args: &StatusArgs) -> Result<(), CliError> {
    let targets = context.stack_targets(args.stack.as_deref(), &Default::default())?;
    let (report, missing) = async_runtime()?.block_on(async {
        let mut connections = Connections::default();
        let mut stacks = Vec::new();
        let mut missing = Vec::new();
        for target in &targets {
            let aws = connections
                .to(context, &target.region, Identity::Checked, true)
                .await?;
            match stack_status(aws, target).await? {
                Some(status) => stacks.push(status),
                None => missing.push((target.stack.to_string(), aws.region.clone())),
            }
            let counts = aws.calls.counts();
            context.output.verbose(format!(
                "{} AWS requests, {} mutating",
                counts.total, counts.mutating
            ));
        }
        stacks.sort_by(|a, b| (&a.stack, &a.region).cmp(&(&b.stack, &b.region)));
        let report = StatusReport {
            format_version: FormatVersion,
            stacks,
        };
        Ok::<_, CliError>((report, missing))
    })?;
    if !report.stacks.is_empty() {
        context.output.result(&report).map_err(CliError::Stdout)?;
    }
    match missing.into_iter().next() {
        Some((stack, region)) => Err(CliError::NotDeployed { stack, region }),
        None => Ok(()),
    }
}

/// The stack as the account shows it; `None` when nothing of it is in the region.
async fn stack_status(aws: &Aws, target: &StackTarget) -> Result<Option<StackStatus>, CliError> {
    let stack = &target.stack;
    let observed = observe(aws, &target.scope()).await?;
    if observed.holds_nothing() {
        return Ok(None);
    }
    // No VPC of its own but a security group: the stack lives on the user's network.
    let existing_network_ips = if observed.vpc.is_none() && observed.security_group.is_some() {
        crate::aws::existing::existing_stack_exits(aws, stack)
            .await?
            .into_iter()
            .map(|exit| exit.ip)
            .collect()
    } else {
        Vec::new()
    };
    let cost = cost::monthly(&topology(&observed), &aws.region).ok();
    let mut status = StackStatus::of(
        &observed,
        &aws.account,
        &aws.region,
        stack.as_str(),
        existing_network_ips,
        cost.as_ref().map(CostReport::from),
    );
    // Whether each running NAT instance forwards: only its console says so. Read all at once.
    let running: Vec<_> = status
        .nat_instances
        .iter_mut()
        .filter(|i| i.state == "running")
        .collect();
    let readiness = futures::future::try_join_all(
        running
            .iter()
            .map(|i| crate::aws::observe::nat_readiness(&aws.ec2, &i.id)),
    )
    .await?;
    for (instance, readiness) in running.into_iter().zip(&readiness) {
        instance.set_readiness(readiness);
    }
    Ok(Some(status))
}

/// What the stack bills by the hour as it stands.
fn topology(observed: &ObservedState) -> Topology {
    Topology {
        nat_gateways: observed.nat_gateways.len() as u32,
        // Priced as the default type, the only one in the table.
        nat_instances: (observed.nat_instances.iter())
            .filter(|i| i.state.is_live())
            .count() as u32
            + observed.nat_groups.len() as u32,
        public_ipv4: observed.addresses.len() as u32,
        interface_endpoint_azs: observed
            .endpoints
            .iter()
            .map(|e| e.subnet_ids.len() as u32)
            .sum(),
        gateway_endpoints: observed
            .endpoints
            .iter()
            .filter(|e| e.kind == EndpointKind::Gateway)
            .count() as u32,
    }
}
