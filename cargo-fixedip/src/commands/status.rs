//! `cargo fixedip status`: every resource the stack owns, per AZ, with its state; the functions
//! attached to it; the IPs; what it costs per month. Read-only.

use std::fmt::{self, Display};

use fixedip_core::cost::{self, MonthlyCost, Topology};
use fixedip_core::observed::{AddressUse, ObservedState, RouteTarget, Slot, Tier};
use serde::Serialize;

use super::{async_runtime, Connections, Context, Identity};
use crate::aws::observe::observe;
use crate::aws::Aws;
use crate::cli::StatusArgs;
use crate::error::CliError;
use crate::output::{style, styled};
use crate::stacks::StackTarget;

/// Every stack the command acts on.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub stacks: Vec<StackStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StackStatus {
    pub stack: String,
    pub region: String,
    pub account: String,
    pub observed: ObservedState,
    /// How the stack reaches the outside, as the account shows it.
    pub mode: ObservedMode,
    /// What the stack costs per month as it stands; `None` where the price table lacks the region.
    pub cost: Option<MonthlyCost>,
    /// A stack on a network the user runs (`vpc = "vpc-..."`): its security group's VPC, and the
    /// Elastic IPs of the NATs its functions leave through. Empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub existing_network_ips: Vec<std::net::Ipv4Addr>,
}

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
            let status = stack_status(aws, target).await?;
            if status.observed.holds_nothing() {
                missing.push((status.stack, status.region));
            } else {
                stacks.push(status);
            }
            let counts = aws.calls.counts();
            context.output.verbose(format!(
                "{} AWS requests, {} mutating",
                counts.total, counts.mutating
            ));
        }
        stacks.sort_by(|a, b| (&a.stack, &a.region).cmp(&(&b.stack, &b.region)));
        Ok::<_, CliError>((StatusReport { stacks }, missing))
    })?;
    if !report.stacks.is_empty() {
        context.output.result(&report).map_err(CliError::Stdout)?;
    }
    match missing.into_iter().next() {
        Some((stack, region)) => Err(CliError::NotDeployed { stack, region }),
        None => Ok(()),
    }
}

async fn stack_status(aws: &Aws, target: &StackTarget) -> Result<StackStatus, CliError> {
    let stack = &target.stack;
    let scope = target.scope();
    let observed = observe(aws, &scope).await?;
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
    let topology = Topology {
        nat_gateways: observed.nat_gateways.len() as u32,
        // Priced as the default type, the only one in the table.
        nat_instances: observed
            .nat_instances
            .iter()
            .filter(|i| i.state.is_live())
            .count() as u32,
        public_ipv4: observed.addresses.len() as u32,
        interface_endpoint_azs: observed
            .endpoints
            .iter()
            .map(|e| e.subnet_ids.len() as u32)
            .sum(),
        gateway_endpoints: observed
            .endpoints
            .iter()
            .filter(|e| e.kind == fixedip_core::requirements::EndpointKind::Gateway)
            .count() as u32,
    };
    Ok(StackStatus {
        stack: stack.to_string(),
        region: aws.region.clone(),
        account: aws.account.clone(),
        cost: cost::monthly(&topology, &aws.region).ok(),
        mode: ObservedMode::of(&observed),
        observed,
        existing_network_ips,
    })
}

/// The stack's NAT mode as the account shows it (the account is the state: no record needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "nat", rename_all = "snake_case")]
pub enum ObservedMode {
    /// `nat = "none"`: no internet gateway, no NAT, no route out.
    None,
    /// NAT gateways serving the private subnets: one per AZ, or fewer (`nats`).
    Gateway { nat_gateways: usize, azs: usize },
}

impl ObservedMode {
    pub fn of(observed: &ObservedState) -> ObservedMode {
        if observed.looks_isolated() {
            return ObservedMode::None;
        }
        let mut azs: Vec<Slot> = observed
            .subnets
            .iter()
            .filter(|s| s.tier == Tier::Private)
            .map(|s| s.slot)
            .collect();
        azs.sort();
        azs.dedup();
        ObservedMode::Gateway {
            nat_gateways: observed.nat_gateways.len(),
            azs: azs.len(),
        }
    }
}

impl Display for ObservedMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ObservedMode::None => f.write_str(
                "isolated (nat = \"none\"): no internet gateway, no NAT, no route out of the VPC",
            ),
            ObservedMode::Gateway { nat_gateways, azs } if nat_gateways < azs => write!(
                f,
                "{nat_gateways} NAT gateway{} for {azs} AZs (nats = {nat_gateways}): the AZs without one leave through another AZ's",
                if nat_gateways == 1 { "" } else { "s" }
            ),
            ObservedMode::Gateway { .. } => f.write_str("one NAT gateway per AZ"),
        }
    }
}

impl Display for StatusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, stack) in self.stacks.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{stack}")?;
        }
        Ok(())
    }
}

impl Display for StackStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.observed;
        writeln!(
            f,
            "{} in {} (account {})",
            styled(style::HEADER, format_args!("Stack `{}`", self.stack)),
            self.region,
            self.account
        )?;
        if let (None, Some(sg)) = (&o.vpc, &o.security_group) {
            writeln!(f, "  on a network you run: security group {} in it", sg.id)?;
            writeln!(f, "  functions attached:")?;
            for function in &o.functions {
                writeln!(
                    f,
                    "    λ {} ({} subnets)",
                    function.name,
                    function.subnet_ids.len()
                )?;
            }
            writeln!(f, "Fixed egress IPs (your NATs' Elastic IPs):")?;
            for ip in &self.existing_network_ips {
                writeln!(f, "  {}", styled(style::VALUE, ip))?;
            }
            return Ok(());
        }
        let Some(vpc) = &o.vpc else {
            writeln!(
                f,
                "  no VPC: nothing is deployed for this stack (run `cargo fixedip deploy`)"
            )?;
            // After a destroy the IPs are kept: still billed, and reused by the next deploy.
            for address in &o.addresses {
                writeln!(
                    f,
                    "  retained Elastic IP {} ({}), reused by the next deploy",
                    address.public_ip, address.allocation_id
                )?;
            }
            return Ok(());
        };
        let dns = if vpc.dns_support && vpc.dns_hostnames {
            "DNS on"
        } else {
            "DNS OFF"
        };
        writeln!(f, "  VPC {} {} ({dns})", vpc.id, vpc.cidr)?;
        writeln!(f, "  mode: {}", self.mode)?;
        let isolated = self.mode == ObservedMode::None;
        match &o.internet_gateway {
            Some(igw) if igw.attached_vpc.as_deref() == Some(&vpc.id) => {
                writeln!(f, "  internet gateway {} attached", igw.id)?
            }
            Some(igw) => writeln!(f, "  internet gateway {} NOT attached", igw.id)?,
            None if isolated => writeln!(f, "  internet gateway: none (isolated)")?,
            None => writeln!(f, "  internet gateway MISSING")?,
        }
        let mut slots: Vec<Slot> = o.subnets.iter().map(|s| s.slot).collect();
        slots.dedup();
        for slot in slots {
            let az = o
                .subnets
                .iter()
                .find(|s| s.slot == slot)
                .map(|s| s.az.as_str())
                .unwrap_or("?");
            writeln!(f, "  AZ {az} (slot {slot})")?;
            for subnet in o.subnets.iter().filter(|s| s.slot == slot) {
                let tier = match subnet.tier {
                    Tier::Public => "public ",
                    Tier::Private => "private",
                };
                writeln!(f, "    {tier} subnet {} {}", subnet.id, subnet.cidr)?;
            }
            for nat in o.nat_gateways.iter().filter(|n| n.slot == slot) {
                writeln!(f, "    NAT gateway {} {}", nat.id, nat.state)?;
            }
            for address in o.addresses.iter().filter(|a| a.slot == Some(slot)) {
                writeln!(
                    f,
                    "    Elastic IP {} ({})",
                    styled(style::VALUE, address.public_ip),
                    address.allocation_id
                )?;
            }
            for table in o
                .route_tables
                .iter()
                .filter(|t| t.tier == Tier::Private && t.slot == Some(slot))
            {
                let default = table
                    .routes
                    .iter()
                    .find(|r| r.destination.prefix_len() == 0);
                let via = match default.map(|r| (&r.target, r.blackhole)) {
                    Some((_, true)) => "BLACKHOLE".to_owned(),
                    Some((RouteTarget::NatGateway(id), _)) => format!("→ {id}"),
                    Some((RouteTarget::Instance(id), _)) => format!("→ NAT instance {id}"),
                    Some((other, _)) => format!("→ {other} (not a NAT)"),
                    None if isolated => "none: no route out (isolated)".to_owned(),
                    None => "NO DEFAULT ROUTE".to_owned(),
                };
                writeln!(f, "    private route table {} 0.0.0.0/0 {via}", table.id)?;
            }
        }
        for address in &o.addresses {
            let what = match address.usage {
                AddressUse::Active => continue,
                AddressUse::Retained => "retained Elastic IP",
                AddressUse::Pending => {
                    "pending Elastic IP (no traffic until `deploy --allow-new-ips`)"
                }
            };
            writeln!(
                f,
                "  {what} {} ({})",
                address.public_ip, address.allocation_id
            )?;
        }
        match &o.security_group {
            Some(sg) => writeln!(f, "  security group {}", sg.id)?,
            None => writeln!(f, "  security group MISSING")?,
        }
        match &o.role {
            Some(role) => writeln!(f, "  execution role {}", role.arn)?,
            None => writeln!(f, "  execution role of the stack: none")?,
        }
        writeln!(f, "  functions attached:")?;
        if o.functions.is_empty() {
            writeln!(f, "    none")?;
        }
        for function in &o.functions {
            writeln!(
                f,
                "    λ {} ({} subnets)",
                function.name,
                function.subnet_ids.len()
            )?;
        }
        writeln!(f, "Fixed egress IPs:")?;
        if isolated {
            writeln!(f, "  none: the stack is isolated, nothing leaves its VPC")?;
        }
        for address in o.addresses.iter().filter(|a| a.usage == AddressUse::Active) {
            writeln!(f, "  {}", styled(style::VALUE, address.public_ip))?;
        }
        if let Some(cost) = &self.cost {
            writeln!(
                f,
                "Monthly cost before data: {} (+ {} per GB through NAT; prices of {})",
                cost.fixed_total,
                cost.per_gb.as_rate(),
                cost.prices_date
            )?;
        }
        Ok(())
    }
}
