//! The plan: what the network of a stack must become, and the steps that get it there.
//!
//! The planner is pure and deterministic: `(StackSpec, ObservedState) -> Plan`. Every choice (CIDRs,
//! AZs, which address serves which AZ, what to create, keep, change or delete) is made here; the
//! executor in the CLI only carries the steps out, in dependency order.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::observed::{Slot, Tier};
use crate::requirements::{AllocationId, AzCount, StackName};
use crate::settings::Architecture;

/// The VPC CIDR when the settings name none: 65,536 addresses, cut into 16 blocks of /20 (4,096
/// addresses each, ample for Lambda's network interfaces). See the layout in [`crate::planner`].
pub const DEFAULT_VPC_CIDR: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 0, 0), 16);

/// The Lambda runtime of every function fixedip deploys: a Rust binary named `bootstrap`.
pub const LAMBDA_RUNTIME: &str = "provided.al2023";

/// What one stack must provide: the merged requirements of every function that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct StackSpec {
    pub stack: StackName,
    pub region: String,
    pub vpc_cidr: Ipv4Net,
    pub azs: AzCount,
    /// Addresses the user brought (`ips = [...]`), used before any new one is allocated.
    pub adopted_ips: Vec<AllocationId>,
    pub functions: Vec<FunctionSpec>,
}

/// One function to attach to the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FunctionSpec {
    /// The Lambda function name.
    pub name: String,
    /// The Cargo package and the annotated function (`hello_egress::main`) it comes from.
    pub package: String,
    pub annotated: String,
    pub architecture: Architecture,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub environment: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// An existing execution role's ARN; `None`: the stack's own role.
    pub role: Option<String>,
    /// Base64 SHA-256 of the zip to deploy (Lambda's `CodeSha256`); `None` when planning offline.
    pub code_sha256: Option<String>,
}

/// The identifier of a step within one plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct StepId(pub usize);

/// A resource a step needs: one that exists, or the one an earlier step makes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Ref {
    Existing(String),
    Step(StepId),
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ref::Existing(id) => f.write_str(id),
            Ref::Step(StepId(n)) => write!(f, "(new, step {n})"),
        }
    }
}

/// Where a planned route sends traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum RouteVia {
    InternetGateway(Ref),
    NatGateway(Ref),
}

/// One mutating operation. Creations tag what they create with the stack's tags (see `tags`).
///
/// A [`Ref`] to a role resolves to the role's ARN (IAM calls that want a name use the ARN's last
/// path segment); every other `Ref` resolves to the resource's id.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "action", rename_all = "snake_case"))]
pub enum Action {
    /// DNS is turned on by the [`Action::EnableVpcDns`] step that follows (CreateVpc cannot).
    CreateVpc {
        cidr: Ipv4Net,
    },
    /// DNS support and DNS hostnames on (needed by interface endpoints and by most SDKs' resolvers).
    EnableVpcDns {
        vpc: Ref,
    },
    CreateInternetGateway,
    AttachInternetGateway {
        internet_gateway: Ref,
        vpc: Ref,
    },
    CreateSubnet {
        vpc: Ref,
        tier: Tier,
        slot: Slot,
        az: String,
        cidr: Ipv4Net,
    },
    /// A new Elastic IP for a slot, tagged with [`crate::tags::for_address`].
    AllocateAddress {
        slot: Slot,
    },
    /// Put an existing address (retained, adopted, or used by the slot's NAT without the tags) to
    /// work for a slot: re-tag it with [`crate::tags::for_address`] (`adopted` when the stack's
    /// `adopted_ips` name it).
    ActivateAddress {
        allocation_id: String,
        slot: Slot,
    },
    /// Completes when the gateway is `available`. `address` resolves to an allocation id.
    CreateNatGateway {
        subnet: Ref,
        address: Ref,
        slot: Slot,
    },
    CreateRouteTable {
        vpc: Ref,
        tier: Tier,
        slot: Option<Slot>,
    },
    AssociateRouteTable {
        route_table: Ref,
        subnet: Ref,
    },
    CreateRoute {
        route_table: Ref,
        destination: Ipv4Net,
        via: RouteVia,
    },
    /// A route that exists but points elsewhere (e.g. at a NAT that is gone).
    ReplaceRoute {
        route_table: Ref,
        destination: Ipv4Net,
        via: RouteVia,
    },
    /// No inbound rules; egress to anywhere. Named [`crate::tags::security_group_name`].
    CreateSecurityGroup {
        vpc: Ref,
    },
    /// The stack's execution role, trusted by `lambda.amazonaws.com`.
    CreateRole {
        name: String,
    },
    AttachRolePolicy {
        role: Ref,
        policy_arn: String,
    },
    /// Runtime [`LAMBDA_RUNTIME`], handler `bootstrap`. Completes when the function is `Active`.
    CreateFunction {
        function: FunctionSpec,
        subnets: Vec<Ref>,
        security_group: Ref,
        role: Ref,
    },
    /// Configuration drift: VPC attachment, role, memory, timeout, environment, runtime. Completes
    /// when `LastUpdateStatus` is `Successful`.
    UpdateFunctionConfiguration {
        function: FunctionSpec,
        subnets: Vec<Ref>,
        security_group: Ref,
        role: Ref,
    },
    /// The zip changed (its SHA-256 differs from the deployed `CodeSha256`), or the architecture did:
    /// Lambda takes `Architectures` only with code. Completes when `LastUpdateStatus` is `Successful`.
    UpdateFunctionCode {
        function: FunctionSpec,
    },
    /// A function that exists but is not tagged with this stack (deployed by another tool, or by
    /// another stack): tag it with the stack's function tags and its configured tags, so that it is
    /// found as the stack's from now on.
    TagFunction {
        function: FunctionSpec,
    },
}

impl Action {
    /// What a person reads in `plan`: "create NAT gateway (slot 1)".
    pub fn summary(&self) -> String {
        match self {
            Action::CreateVpc { cidr } => format!("create VPC {cidr}"),
            Action::EnableVpcDns { vpc } => {
                format!("turn on DNS support and hostnames in VPC {vpc}")
            }
            Action::CreateInternetGateway => "create internet gateway".to_owned(),
            Action::AttachInternetGateway {
                internet_gateway,
                vpc,
            } => {
                format!("attach internet gateway {internet_gateway} to VPC {vpc}")
            }
            Action::CreateSubnet {
                tier,
                slot,
                az,
                cidr,
                ..
            } => {
                format!(
                    "create {} subnet {cidr} in {az} (slot {slot})",
                    tier_name(*tier)
                )
            }
            Action::AllocateAddress { slot } => format!("allocate a new Elastic IP (slot {slot})"),
            Action::ActivateAddress {
                allocation_id,
                slot,
            } => {
                format!("put Elastic IP {allocation_id} to work (slot {slot})")
            }
            Action::CreateNatGateway {
                subnet,
                address,
                slot,
            } => {
                format!(
                    "create NAT gateway in subnet {subnet} with Elastic IP {address} (slot {slot})"
                )
            }
            Action::CreateRouteTable {
                tier,
                slot: Some(slot),
                ..
            } => {
                format!("create {} route table (slot {slot})", tier_name(*tier))
            }
            Action::CreateRouteTable {
                tier, slot: None, ..
            } => {
                format!("create {} route table", tier_name(*tier))
            }
            Action::AssociateRouteTable {
                route_table,
                subnet,
            } => {
                format!("associate route table {route_table} with subnet {subnet}")
            }
            Action::CreateRoute {
                route_table,
                destination,
                via,
            } => {
                format!("add route {destination} → {via} to route table {route_table}")
            }
            Action::ReplaceRoute {
                route_table,
                destination,
                via,
            } => {
                format!("point route {destination} at {via} in route table {route_table}")
            }
            Action::CreateSecurityGroup { vpc } => {
                format!("create security group (no inbound rules) in VPC {vpc}")
            }
            Action::CreateRole { name } => format!("create execution role {name}"),
            Action::AttachRolePolicy { role, policy_arn } => {
                format!("attach policy {policy_arn} to role {role}")
            }
            Action::CreateFunction { function, .. } => {
                format!("create function {} in the private subnets", function.name)
            }
            Action::UpdateFunctionConfiguration { function, .. } => {
                format!("update the configuration of function {}", function.name)
            }
            Action::UpdateFunctionCode { function } => {
                format!("upload new code for function {}", function.name)
            }
            Action::TagFunction { function } => {
                format!("tag function {} as the stack's", function.name)
            }
        }
    }
}

impl Action {
    /// Every resource the action names, in field order. A step's `after` holds at least the steps
    /// behind the [`Ref::Step`]s among them.
    pub fn refs(&self) -> Vec<&Ref> {
        match self {
            Action::CreateVpc { .. }
            | Action::CreateInternetGateway
            | Action::AllocateAddress { .. }
            | Action::ActivateAddress { .. }
            | Action::CreateRole { .. }
            | Action::UpdateFunctionCode { .. }
            | Action::TagFunction { .. } => Vec::new(),
            Action::EnableVpcDns { vpc }
            | Action::CreateSubnet { vpc, .. }
            | Action::CreateRouteTable { vpc, .. }
            | Action::CreateSecurityGroup { vpc } => vec![vpc],
            Action::AttachInternetGateway {
                internet_gateway,
                vpc,
            } => vec![internet_gateway, vpc],
            Action::CreateNatGateway {
                subnet, address, ..
            } => vec![subnet, address],
            Action::AssociateRouteTable {
                route_table,
                subnet,
            } => vec![route_table, subnet],
            Action::CreateRoute {
                route_table, via, ..
            }
            | Action::ReplaceRoute {
                route_table, via, ..
            } => vec![route_table, via.gateway()],
            Action::AttachRolePolicy { role, .. } => vec![role],
            Action::CreateFunction {
                subnets,
                security_group,
                role,
                ..
            }
            | Action::UpdateFunctionConfiguration {
                subnets,
                security_group,
                role,
                ..
            } => subnets.iter().chain([security_group, role]).collect(),
        }
    }
}

impl RouteVia {
    /// The gateway the route sends traffic to.
    pub fn gateway(&self) -> &Ref {
        match self {
            RouteVia::InternetGateway(gateway) | RouteVia::NatGateway(gateway) => gateway,
        }
    }
}

impl fmt::Display for RouteVia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteVia::InternetGateway(gateway) => write!(f, "internet gateway {gateway}"),
            RouteVia::NatGateway(gateway) => write!(f, "NAT gateway {gateway}"),
        }
    }
}

fn tier_name(tier: Tier) -> &'static str {
    match tier {
        Tier::Public => "public",
        Tier::Private => "private",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Step {
    pub id: StepId,
    pub action: Action,
    /// Steps whose results this one needs; the executor runs a step once all of these are done.
    pub after: Vec<StepId>,
}

/// Whether a resource of the desired topology exists already.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "status", content = "id", rename_all = "snake_case")
)]
pub enum Status {
    /// Exists as wanted.
    Keep(String),
    /// Exists, and a step changes it.
    Change(String),
    /// A step creates it.
    Create,
}

/// The desired network of one AZ, for people to read (`plan`, `status`, diagrams).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AzView {
    pub slot: Slot,
    pub az: String,
    pub public_subnet: (Ipv4Net, Status),
    pub private_subnet: (Ipv4Net, Status),
    /// The Elastic IP of this AZ's NAT; its address is known once allocated.
    pub address: (Option<Ipv4Addr>, Status),
    pub nat_gateway: Status,
    pub private_route_table: Status,
}

/// A slot that exists beyond the stack's `azs`. Left as it is for now; it is still billed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SurplusSlot {
    pub slot: Slot,
    pub az: Option<String>,
    /// A NAT gateway that is `pending` or `available`.
    pub nat_gateway: Option<String>,
    /// The active address of the slot: allocation id and public IP.
    pub address: Option<(String, Ipv4Addr)>,
}

/// The whole desired network, for people to read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NetworkView {
    pub vpc: (Ipv4Net, Status),
    pub internet_gateway: Status,
    pub public_route_table: Status,
    pub security_group: Status,
    /// The stack's execution role; `None` when every function brings its own.
    pub role: Option<Status>,
    pub azs: Vec<AzView>,
    pub functions: Vec<(String, Status)>,
    /// Addresses the stack keeps without a NAT (allocation id, IP): still on the partner's
    /// allowlist, still billed.
    pub retained_addresses: Vec<(String, Ipv4Addr)>,
    pub surplus_slots: Vec<SurplusSlot>,
}

/// The plan for one stack.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Plan {
    pub stack: StackName,
    pub region: String,
    pub network: NetworkView,
    /// In an order where every step comes after the steps it needs.
    pub steps: Vec<Step>,
    /// What the user should know that no step does (a slot beyond `azs` left in place, ...).
    pub notes: Vec<String>,
}

impl Plan {
    /// A plan with no step: applying it makes no mutating call.
    pub fn is_noop(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn step(&self, id: StepId) -> &Step {
        &self.steps[id.0]
    }

    /// The AZ of a slot, for the `Name` tag of what a step makes for it.
    pub fn az_of(&self, slot: Slot) -> Option<&str> {
        let az = self
            .network
            .azs
            .iter()
            .find(|az| az.slot == slot)
            .map(|az| az.az.as_str());
        az.or_else(|| {
            let surplus = self.network.surplus_slots.iter().find(|s| s.slot == slot);
            surplus.and_then(|s| s.az.as_deref())
        })
    }
}
