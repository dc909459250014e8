//! The plan: what the network of a stack must become, and the steps that get it there.
//!
//! The planner is pure and deterministic: `(StackSpec, ObservedState) -> Plan`. Every choice (CIDRs,
//! AZs, which address serves which AZ, what to create, keep, change or delete) is made here; the
//! executor in the CLI only carries the steps out, in dependency order.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::observed::{Slot, Tier};
use crate::requirements::{AllocationId, AzCount, StackName};
use crate::settings::Architecture;

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

/// Where a planned route sends traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum RouteVia {
    InternetGateway(Ref),
    NatGateway(Ref),
}

/// One mutating operation. Creations tag what they create with the stack's tags (see `tags`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "action", rename_all = "snake_case"))]
pub enum Action {
    CreateVpc { cidr: Ipv4Net },
    /// DNS support and DNS hostnames on (needed by interface endpoints and by most SDKs' resolvers).
    EnableVpcDns { vpc: Ref },
    CreateInternetGateway,
    AttachInternetGateway { internet_gateway: Ref, vpc: Ref },
    CreateSubnet { vpc: Ref, tier: Tier, slot: Slot, az: String, cidr: Ipv4Net },
    /// A new Elastic IP for a slot.
    AllocateAddress { slot: Slot },
    /// Put an existing address (retained or adopted) to work for a slot: re-tag it active.
    ActivateAddress { allocation_id: String, slot: Slot },
    /// Completes when the gateway is `available`.
    CreateNatGateway { subnet: Ref, address: Ref, slot: Slot },
    CreateRouteTable { vpc: Ref, tier: Tier, slot: Option<Slot> },
    AssociateRouteTable { route_table: Ref, subnet: Ref },
    CreateRoute { route_table: Ref, destination: Ipv4Net, via: RouteVia },
    /// A route that exists but points elsewhere (e.g. at a NAT that is gone).
    ReplaceRoute { route_table: Ref, destination: Ipv4Net, via: RouteVia },
    /// No inbound rules; egress to anywhere.
    CreateSecurityGroup { vpc: Ref },
    CreateRole { name: String },
    AttachRolePolicy { role: Ref, policy_arn: String },
    /// Completes when the function is `Active`.
    CreateFunction { function: FunctionSpec, subnets: Vec<Ref>, security_group: Ref, role: Ref },
    /// Configuration drift: VPC attachment, role, memory, timeout, environment. Completes when
    /// `LastUpdateStatus` is `Successful`.
    UpdateFunctionConfiguration {
        function: FunctionSpec,
        subnets: Vec<Ref>,
        security_group: Ref,
        role: Ref,
    },
    /// The zip changed (its SHA-256 differs from the deployed `CodeSha256`).
    UpdateFunctionCode { function: FunctionSpec },
}

impl Action {
    /// What a person reads in `plan`: "create NAT gateway (AZ 2)".
    pub fn summary(&self) -> String {
        todo!("planner: describe each action in a few words")
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
#[cfg_attr(feature = "serde", serde(tag = "status", content = "id", rename_all = "snake_case"))]
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

/// The whole desired network, for people to read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NetworkView {
    pub vpc: (Ipv4Net, Status),
    pub internet_gateway: Status,
    pub public_route_table: Status,
    pub security_group: Status,
    pub role: Option<Status>,
    pub azs: Vec<AzView>,
    pub functions: Vec<(String, Status)>,
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
}

impl Plan {
    /// A plan with no step: applying it makes no mutating call.
    pub fn is_noop(&self) -> bool {
        self.steps.is_empty()
    }
}
