//! What the planner is asked for: a stack's merged requirements and the functions it serves.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::requirements::{AllocationId, AzCount, EgressRule, Endpoint, NatMode, StackName};
use crate::settings::Architecture;

/// What one stack must provide: the merged requirements of every function that names it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StackSpec {
    pub stack: StackName,
    pub region: String,
    pub vpc_cidr: Ipv4Net,
    pub azs: AzCount,
    /// Addresses the user brought (`ips = [...]`), used before any new one is allocated.
    pub adopted_ips: Vec<AllocationId>,
    /// How the network reaches the outside; the default is one NAT gateway per AZ, all egress.
    pub modes: NetworkModes,
    pub functions: Vec<FunctionSpec>,
}

/// The `#[fixed_egress]` arguments beyond `azs` and `ips`, as every function of a stack agrees on
/// them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetworkModes {
    pub nat: NatMode,
    /// How many NATs serve the AZs; `None`: one per AZ.
    pub nats: Option<u8>,
    pub endpoints: Vec<Endpoint>,
    /// What the function's security group lets out; empty: everything.
    pub egress: Vec<EgressRule>,
    /// The EC2 type of the NAT instances (`nat-instance-type` in [package.metadata.fixedip]);
    /// `None`: [`DEFAULT_NAT_INSTANCE_TYPE`]. Only read when `nat` is `instance`.
    #[serde(default)]
    pub nat_instance_type: Option<String>,
    /// `nat-self-healing` in the settings: each NAT instance is the one instance of an
    /// auto-scaling group, holding its Elastic IP on a network interface of its own that every
    /// replacement attaches at boot (see `planner/nat_group.rs`). Only read when `nat` is
    /// `instance`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nat_self_healing: bool,
    /// Attach to a network the user runs (`vpc = "vpc-..."` in the settings) instead of building
    /// one; see [`crate::planner`], "An existing network".
    #[serde(default)]
    pub existing: Option<ExistingNetwork>,
    /// `az-ids = [...]` in the settings: the AZs new slots go to, by AZ id, in order; empty: the
    /// planner chooses (see `planner/slots.rs`).
    #[serde(default)]
    pub az_ids: Vec<String>,
}

/// A VPC the user already runs, named in `[package.metadata.fixedip]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExistingNetwork {
    pub vpc: String,
    /// The subnets to attach to, each of which must qualify; empty: every subnet that does.
    pub subnets: Vec<String>,
}

/// Where the functions of a stack on an existing network run, and the addresses they leave from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExistingAttachment {
    pub vpc_id: String,
    /// The subnets the functions are attached to, by id, each with the NATs it leaves through.
    pub subnets: Vec<crate::existing::QualifiedSubnet>,
    /// Every address those NATs leave from: what `ips` reports, sorted and without repeats.
    pub ips: Vec<Ipv4Addr>,
}

/// The NAT instance type when the settings name none: the smallest Graviton instance, a tenth of a
/// NAT gateway's hourly price (see `cost.rs`).
pub const DEFAULT_NAT_INSTANCE_TYPE: &str = "t4g.nano";

impl NetworkModes {
    /// Whether the NAT instances are groups of one that heal themselves.
    pub fn nat_groups(&self) -> bool {
        self.nat == NatMode::Instance && self.nat_self_healing && self.existing.is_none()
    }

    /// The EC2 type of the NAT instances.
    pub fn nat_instance_type(&self) -> &str {
        self.nat_instance_type
            .as_deref()
            .unwrap_or(DEFAULT_NAT_INSTANCE_TYPE)
    }
}

/// One function to attach to the stack.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

impl FunctionSpec {
    /// A function of `package` whose annotated function (or, when only the source was read, its
    /// binary) is `annotated`, with its deployment settings.
    pub fn new(
        package: &str,
        annotated: &str,
        settings: &crate::settings::DeploySettings,
        code_sha256: Option<String>,
    ) -> FunctionSpec {
        FunctionSpec {
            name: settings.function_name.clone(),
            package: package.to_owned(),
            annotated: annotated.to_owned(),
            architecture: settings.architecture,
            memory_mb: settings.memory_mb,
            timeout_s: settings.timeout_s,
            environment: settings.environment.clone(),
            tags: settings.tags.clone(),
            role: settings.role.clone(),
            code_sha256,
        }
    }
}
