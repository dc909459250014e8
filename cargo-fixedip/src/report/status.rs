//! `status`: per stack, every resource it owns with its state, the functions attached to it, its
//! IPs and what it costs per month as it stands.

use std::fmt::{self, Display};
use std::net::Ipv4Addr;

use fixedip_core::observed::{InstanceState, ObservedState, RouteTarget, Tier};
use ipnet::Ipv4Net;
use serde::Serialize;

use super::cost::CostReport;
use super::{FormatVersion, Ip, IpUse};
use crate::output::{style, styled};

/// Every stack the command acts on.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub format_version: FormatVersion,
    pub stacks: Vec<StackStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StackStatus {
    pub stack: String,
    pub region: String,
    pub account: String,
    /// How the stack reaches the outside, as the account shows it.
    pub mode: Mode,
    /// `None`: the stack has no VPC of its own (not deployed, or on a network the user runs).
    pub vpc: Option<Vpc>,
    pub internet_gateway: Option<InternetGateway>,
    pub subnets: Vec<Subnet>,
    pub nat_gateways: Vec<NatGateway>,
    pub nat_instances: Vec<NatInstance>,
    /// The AZs whose NAT instance is stopped or gone, and what brings them back.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nat_recovery: Vec<NatRecovery>,
    /// The private subnets' route tables, with where each sends 0.0.0.0/0.
    pub private_route_tables: Vec<RouteTable>,
    /// Every Elastic IP of the stack: active, pending and retained.
    pub ips: Vec<Ip>,
    pub security_group: Option<String>,
    /// The ARN of the stack's execution role in this region.
    pub role: Option<String>,
    pub functions: Vec<AttachedFunction>,
    /// A stack on a network the user runs (`vpc = "vpc-..."`): the Elastic IPs of the NATs its
    /// functions leave through. Empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub existing_network_ips: Vec<Ipv4Addr>,
    /// What the stack costs per month as it stands; `None` where the price table lacks the region.
    pub cost: Option<CostReport>,
}

/// The stack's NAT mode as the account shows it (the account is the state: no record needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "nat", rename_all = "snake_case")]
pub enum Mode {
    /// `nat = "none"`: no internet gateway, no NAT, no route out.
    None,
    /// NAT gateways serving the private subnets: one per AZ, or fewer (`nats`).
    Gateway { nat_gateways: usize, azs: usize },
    /// NAT instances (`nat = "instance"`): one per AZ, or fewer (`nats`).
    Instance { nat_instances: usize, azs: usize },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vpc {
    pub id: String,
    pub cidr: Ipv4Net,
    pub dns_support: bool,
    pub dns_hostnames: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InternetGateway {
    pub id: String,
    /// Attached to the stack's VPC.
    pub attached: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subnet {
    pub id: String,
    pub tier: SubnetTier,
    pub slot: u8,
    pub az: String,
    pub cidr: Ipv4Net,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubnetTier {
    Public,
    Private,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NatGateway {
    pub id: String,
    pub slot: u8,
    /// As AWS writes it: `pending`, `available`, `deleting`, `deleted`, `failed`.
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NatInstance {
    pub id: String,
    pub slot: u8,
    /// As EC2 writes it: `pending`, `running`, `stopping`, `stopped`, `shutting-down`, `terminated`.
    pub state: String,
    pub instance_type: String,
    /// What its console says of its boot, read for a running instance: `ready` (it forwards and
    /// masquerades), `booting`, or `FAILED`; absent when not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness: Option<String>,
    /// The instance's own last lines when it is not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console: Option<String>,
    /// The auto-scaling group that keeps it (`nat-self-healing`), which replaces it without a
    /// deploy; absent for a plain NAT instance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl NatInstance {
    /// The instances of the stack's self-healing NATs' groups: `running` once in service (its
    /// readiness is then read), else the group's lifecycle state in lower case.
    fn of_groups(observed: &ObservedState) -> impl Iterator<Item = NatInstance> + '_ {
        observed.nat_groups.iter().flat_map(|group| {
            group.instances.iter().map(|instance| NatInstance {
                id: instance.id.clone(),
                slot: group.slot,
                state: match instance.lifecycle.as_str() {
                    "InService" => "running".to_owned(),
                    other => other.to_lowercase(),
                },
                instance_type: instance.instance_type.clone(),
                readiness: None,
                console: None,
                group: Some(group.name.clone()),
            })
        })
    }

    /// Fills in what its console says.
    pub fn set_readiness(&mut self, readiness: &fixedip_core::nat_boot::Readiness) {
        self.readiness = Some(readiness.word().to_owned());
        self.console = (!readiness.is_ready()).then(|| readiness.reported());
    }
}

/// An AZ cut off because its NAT instance is stopped or gone: nothing fixedip builds heals it
/// without a deploy (docs/architecture.md, "NAT instances: readiness and self-healing").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NatRecovery {
    pub slot: u8,
    /// The instance the AZ's private route still names.
    pub instance: String,
    /// `stopped` (or `stopping`), or `gone` (terminated, shutting down, or no longer listed).
    pub cause: String,
    /// What the next `deploy` does about it.
    pub next_deploy: String,
}

impl NatRecovery {
    /// Per AZ: its NAT instance stopped, or its private route naming an instance that is gone.
    pub fn of(observed: &ObservedState) -> Vec<NatRecovery> {
        let stopped = observed
            .nat_instances
            .iter()
            .filter(|i| matches!(i.state, InstanceState::Stopped | InstanceState::Stopping));
        let mut recovery: Vec<NatRecovery> = stopped
            .map(|i| NatRecovery {
                slot: i.slot,
                instance: i.id.clone(),
                cause: instance_state(i.state).to_owned(),
                next_deploy: "starts it again (same instance and Elastic IP) and waits until it reports ready".to_owned(),
            })
            .collect();
        let live = |id: &str| {
            observed
                .nat_instances
                .iter()
                .any(|i| i.id == id && i.state.is_live())
        };
        for table in observed
            .route_tables
            .iter()
            .filter(|t| t.tier == Tier::Private)
        {
            let routed = table
                .routes
                .iter()
                .find(|r| r.destination.prefix_len() == 0);
            let Some(RouteTarget::Instance(id)) = routed.map(|r| &r.target) else {
                continue;
            };
            if let (false, Some(slot)) = (live(id), table.slot) {
                recovery.push(NatRecovery {
                    slot,
                    instance: id.clone(),
                    cause: "gone".to_owned(),
                    next_deploy: "launches a replacement on this AZ's Elastic IP and moves the route to it once it reports ready".to_owned(),
                });
            }
        }
        recovery
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteTable {
    pub id: String,
    pub slot: Option<u8>,
    /// Where 0.0.0.0/0 goes; `None`: no default route.
    pub default_route: Option<DefaultRoute>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum DefaultRoute {
    NatGateway {
        id: String,
    },
    NatInstance {
        id: String,
    },
    /// Something that is not a NAT (an internet gateway, a peering, ...), as a person reads it.
    Other {
        target: String,
    },
    /// The target is gone.
    Blackhole,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachedFunction {
    pub name: String,
    pub subnet_ids: Vec<String>,
}

impl StackStatus {
    /// The report of what `observed` holds, in `account`, with the IPs of the user's NATs for a
    /// stack on a network the user runs.
    pub fn of(
        observed: &ObservedState,
        account: &str,
        region: &str,
        stack: &str,
        existing_network_ips: Vec<Ipv4Addr>,
        cost: Option<CostReport>,
    ) -> StackStatus {
        let vpc = observed.vpc.as_ref().map(|vpc| Vpc {
            id: vpc.id.clone(),
            cidr: vpc.cidr,
            dns_support: vpc.dns_support,
            dns_hostnames: vpc.dns_hostnames,
        });
        let attached_to = vpc.as_ref().map(|vpc| vpc.id.as_str());
        StackStatus {
            stack: stack.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
            mode: Mode::of(observed),
            internet_gateway: observed
                .internet_gateway
                .as_ref()
                .map(|igw| InternetGateway {
                    id: igw.id.clone(),
                    attached: igw.attached_vpc.is_some()
                        && igw.attached_vpc.as_deref() == attached_to,
                }),
            vpc,
            subnets: observed
                .subnets
                .iter()
                .map(|s| Subnet {
                    id: s.id.clone(),
                    tier: match s.tier {
                        Tier::Public => SubnetTier::Public,
                        Tier::Private => SubnetTier::Private,
                    },
                    slot: s.slot,
                    az: s.az.clone(),
                    cidr: s.cidr,
                })
                .collect(),
            nat_gateways: observed
                .nat_gateways
                .iter()
                .map(|nat| NatGateway {
                    id: nat.id.clone(),
                    slot: nat.slot,
                    state: nat.state.to_string(),
                })
                .collect(),
            nat_instances: observed
                .nat_instances
                .iter()
                .map(|instance| NatInstance {
                    id: instance.id.clone(),
                    slot: instance.slot,
                    state: instance_state(instance.state).to_owned(),
                    instance_type: instance.instance_type.clone(),
                    readiness: None,
                    console: None,
                    group: None,
                })
                .chain(NatInstance::of_groups(observed))
                .collect(),
            nat_recovery: NatRecovery::of(observed),
            private_route_tables: observed
                .route_tables
                .iter()
                .filter(|table| table.tier == Tier::Private)
                .map(|table| RouteTable {
                    id: table.id.clone(),
                    slot: table.slot,
                    default_route: table
                        .routes
                        .iter()
                        .find(|r| r.destination.prefix_len() == 0)
                        .map(|route| match (&route.target, route.blackhole) {
                            (_, true) => DefaultRoute::Blackhole,
                            (RouteTarget::NatGateway(id), _) => {
                                DefaultRoute::NatGateway { id: id.clone() }
                            }
                            (RouteTarget::Instance(id), _) => {
                                DefaultRoute::NatInstance { id: id.clone() }
                            }
                            (other, _) => DefaultRoute::Other {
                                target: other.to_string(),
                            },
                        }),
                })
                .collect(),
            ips: observed
                .addresses
                .iter()
                .map(|address| {
                    let usage = IpUse::from(address.usage);
                    Ip {
                        ip: address.public_ip,
                        allocation_id: address.allocation_id.clone(),
                        active: usage == IpUse::Active,
                        usage,
                        slot: address.slot,
                    }
                })
                .collect(),
            security_group: observed.security_group.as_ref().map(|sg| sg.id.clone()),
            role: observed.role.as_ref().map(|role| role.arn.clone()),
            functions: observed
                .functions
                .iter()
                .map(|function| AttachedFunction {
                    name: function.name.clone(),
                    subnet_ids: function.subnet_ids.clone(),
                })
                .collect(),
            existing_network_ips,
            cost,
        }
    }
}

fn instance_state(state: InstanceState) -> &'static str {
    match state {
        InstanceState::Pending => "pending",
        InstanceState::Running => "running",
        InstanceState::Stopping => "stopping",
        InstanceState::Stopped => "stopped",
        InstanceState::ShuttingDown => "shutting-down",
        InstanceState::Terminated => "terminated",
    }
}

impl Mode {
    pub fn of(observed: &ObservedState) -> Mode {
        if observed.looks_isolated() {
            return Mode::None;
        }
        let mut azs: Vec<u8> = observed
            .subnets
            .iter()
            .filter(|s| s.tier == Tier::Private)
            .map(|s| s.slot)
            .collect();
        azs.sort();
        azs.dedup();
        // An AZ whose instance is gone still has a NAT instance's place: counted, so that it
        // does not read as an AZ leaving through another's.
        let gone = NatRecovery::of(observed)
            .iter()
            .filter(|r| r.cause == "gone")
            .count();
        let instances = observed.nat_instances.iter().filter(|i| i.state.is_live());
        match instances.count() + gone {
            0 => Mode::Gateway {
                nat_gateways: observed.nat_gateways.len(),
                azs: azs.len(),
            },
            nat_instances => Mode::Instance {
                nat_instances,
                azs: azs.len(),
            },
        }
    }
}

impl Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (nats, azs, kind) = match *self {
            Mode::None => return f.write_str(
                "isolated (nat = \"none\"): no internet gateway, no NAT, no route out of the VPC",
            ),
            Mode::Gateway { nat_gateways, azs } => (nat_gateways, azs, "NAT gateway"),
            Mode::Instance { nat_instances, azs } => (nat_instances, azs, "NAT instance"),
        };
        if nats < azs {
            write!(
                f,
                "{nats} {kind}{} for {azs} AZs (nats = {nats}): the AZs without one leave through another AZ's",
                if nats == 1 { "" } else { "s" }
            )
        } else {
            write!(f, "one {kind} per AZ")
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

impl StackStatus {
    /// One AZ slot: its subnets, NAT, Elastic IP and private route table.
    fn slot(&self, f: &mut fmt::Formatter<'_>, slot: u8, isolated: bool) -> fmt::Result {
        let az = self
            .subnets
            .iter()
            .find(|s| s.slot == slot)
            .map(|s| s.az.as_str())
            .unwrap_or("?");
        writeln!(f, "  AZ {az} (slot {slot})")?;
        for subnet in self.subnets.iter().filter(|s| s.slot == slot) {
            let tier = match subnet.tier {
                SubnetTier::Public => "public ",
                SubnetTier::Private => "private",
            };
            writeln!(f, "    {tier} subnet {} {}", subnet.id, subnet.cidr)?;
        }
        for nat in self.nat_gateways.iter().filter(|n| n.slot == slot) {
            writeln!(f, "    NAT gateway {} {}", nat.id, nat.state)?;
        }
        for instance in self.nat_instances.iter().filter(|n| n.slot == slot) {
            write!(
                f,
                "    NAT instance {} ({}) {}",
                instance.id, instance.instance_type, instance.state
            )?;
            if let Some(group) = &instance.group {
                write!(f, " in group {group}")?;
            }
            match (&instance.readiness, &instance.console) {
                (Some(word), Some(console)) => writeln!(f, ", {word}: {console}")?,
                (Some(word), None) => writeln!(f, ", {word}")?,
                _ => writeln!(f)?,
            }
        }
        for recovery in self.nat_recovery.iter().filter(|r| r.slot == slot) {
            writeln!(
                f,
                "    NAT instance {} {}: this AZ has no egress until the next deploy, which {}",
                recovery.instance, recovery.cause, recovery.next_deploy
            )?;
        }
        for address in self.ips.iter().filter(|a| a.slot == Some(slot)) {
            writeln!(
                f,
                "    Elastic IP {} ({})",
                styled(style::VALUE, address.ip),
                address.allocation_id
            )?;
        }
        for table in self
            .private_route_tables
            .iter()
            .filter(|t| t.slot == Some(slot))
        {
            let via = match &table.default_route {
                Some(DefaultRoute::Blackhole) => "BLACKHOLE".to_owned(),
                Some(DefaultRoute::NatGateway { id }) => format!("→ {id}"),
                Some(DefaultRoute::NatInstance { id }) => format!("→ NAT instance {id}"),
                Some(DefaultRoute::Other { target }) => format!("→ {target} (not a NAT)"),
                None if isolated => "none: no route out (isolated)".to_owned(),
                None => "NO DEFAULT ROUTE".to_owned(),
            };
            writeln!(f, "    private route table {} 0.0.0.0/0 {via}", table.id)?;
        }
        Ok(())
    }

    fn functions_attached(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  functions attached:")?;
        for function in &self.functions {
            writeln!(
                f,
                "    λ {} ({} subnets)",
                function.name,
                function.subnet_ids.len()
            )?;
        }
        Ok(())
    }
}

impl Display for StackStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} in {} (account {})",
            styled(style::HEADER, format_args!("Stack `{}`", self.stack)),
            self.region,
            self.account
        )?;
        if let (None, Some(sg)) = (&self.vpc, &self.security_group) {
            writeln!(f, "  on a network you run: security group {sg} in it")?;
            self.functions_attached(f)?;
            writeln!(f, "Fixed egress IPs (your NATs' Elastic IPs):")?;
            for ip in &self.existing_network_ips {
                writeln!(f, "  {}", styled(style::VALUE, ip))?;
            }
            return Ok(());
        }
        let Some(vpc) = &self.vpc else {
            writeln!(
                f,
                "  no VPC: nothing is deployed for this stack (run `cargo fixedip deploy`)"
            )?;
            // After a destroy the IPs are kept: still billed, and reused by the next deploy.
            for address in &self.ips {
                writeln!(
                    f,
                    "  retained Elastic IP {} ({}), reused by the next deploy",
                    address.ip, address.allocation_id
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
        let isolated = self.mode == Mode::None;
        match &self.internet_gateway {
            Some(igw) if igw.attached => writeln!(f, "  internet gateway {} attached", igw.id)?,
            Some(igw) => writeln!(f, "  internet gateway {} NOT attached", igw.id)?,
            None if isolated => writeln!(f, "  internet gateway: none (isolated)")?,
            None => writeln!(f, "  internet gateway MISSING")?,
        }
        let mut slots: Vec<u8> = self.subnets.iter().map(|s| s.slot).collect();
        slots.dedup();
        for slot in slots {
            self.slot(f, slot, isolated)?;
        }
        for address in &self.ips {
            let what = match address.usage {
                IpUse::Active => continue,
                IpUse::Retained => "retained Elastic IP",
                IpUse::Pending => "pending Elastic IP (no traffic until `deploy --allow-new-ips`)",
            };
            writeln!(f, "  {what} {} ({})", address.ip, address.allocation_id)?;
        }
        match &self.security_group {
            Some(sg) => writeln!(f, "  security group {sg}")?,
            None => writeln!(f, "  security group MISSING")?,
        }
        match &self.role {
            Some(arn) => writeln!(f, "  execution role {arn}")?,
            None => writeln!(f, "  execution role of the stack: none")?,
        }
        if self.functions.is_empty() {
            writeln!(f, "  functions attached:")?;
            writeln!(f, "    none")?;
        } else {
            self.functions_attached(f)?;
        }
        writeln!(f, "Fixed egress IPs:")?;
        if isolated {
            writeln!(f, "  none: the stack is isolated, nothing leaves its VPC")?;
        }
        for address in self.ips.iter().filter(|a| a.usage == IpUse::Active) {
            writeln!(f, "  {}", styled(style::VALUE, address.ip))?;
        }
        if let Some(cost) = &self.cost {
            writeln!(
                f,
                "Monthly cost before data: {} (+ {} per GB through NAT; prices of {})",
                cost.fixed_monthly_usd,
                cost.per_gb_usd.as_rate(),
                cost.prices_date
            )?;
        }
        Ok(())
    }
}
