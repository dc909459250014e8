//! The planner: `(StackSpec, ObservedState) -> Plan`, synchronous, pure and deterministic.
//!
//! TODO: module docs (layout, AZ choice, address choice).

use std::fmt;

use ipnet::Ipv4Net;

use crate::observed::ObservedState;
use crate::plan::{FunctionSpec, Plan, StackSpec, DEFAULT_VPC_CIDR};
use crate::record::Record;
use crate::requirements::{AllocationId, AzCount, StackName};
use crate::settings::DeploySettings;

/// The shortest VPC prefix fixedip accepts: a /16 is the largest VPC AWS allows.
pub const MIN_VPC_PREFIX: u8 = 16;
/// The longest: a /24 cut in 16 gives /28 subnets, the smallest AWS allows.
pub const MAX_VPC_PREFIX: u8 = 24;

/// The managed policies the stack's own execution role gets: logs, and the network interfaces a
/// function in a VPC needs.
pub const EXECUTION_ROLE_POLICIES: [&str; 2] = [
    "AWSLambdaBasicExecutionRole",
    "AWSLambdaVPCAccessExecutionRole",
];

/// Why a stack cannot be planned. Every one is found before any mutating call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "the VPC CIDR {cidr} is a /{}: fixedip needs a /{MIN_VPC_PREFIX} to a /{MAX_VPC_PREFIX}; set `vpc-cidr` in [package.metadata.fixedip] to one",
        cidr.prefix_len()
    )]
    VpcCidrSize { cidr: Ipv4Net },
    #[error(
        "the stack's VPC {vpc_id} is {observed}, but the settings ask for {wanted}: a VPC's CIDR cannot change; set `vpc-cidr = \"{observed}\"` in [package.metadata.fixedip], or destroy the stack first"
    )]
    VpcCidrChanged {
        vpc_id: String,
        observed: Ipv4Net,
        wanted: Ipv4Net,
    },
    #[error(
        "the stack wants {wanted} availability zones but {region} offers {} ({}): lower `azs` or choose another region",
        offered.len(),
        offered.join(", ")
    )]
    NotEnoughAzs {
        region: String,
        wanted: u8,
        offered: Vec<String>,
    },
    #[error(
        "the Elastic IP {id} named in `ips` was not found in region {region}: check the id and the region"
    )]
    AdoptedAddressNotFound { id: AllocationId, region: String },
    #[error(
        "the Elastic IP {id} named in `ips` is associated with {association}: disassociate it, or remove it from `ips`"
    )]
    AdoptedAddressInUse {
        id: AllocationId,
        association: String,
    },
    #[error(
        "the stack's internet gateway {id} is attached to {attached_vpc}, not to the stack's VPC {vpc_id}: detach it from {attached_vpc}"
    )]
    InternetGatewayElsewhere {
        id: String,
        attached_vpc: String,
        vpc_id: String,
    },
}

/// The AWS partition of a region, for ARNs: `aws`, `aws-cn` or `aws-us-gov`.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The ARNs of [`EXECUTION_ROLE_POLICIES`] in the region's partition.
pub fn execution_role_policy_arns(region: &str) -> [String; 2] {
    let partition = partition(region);
    EXECUTION_ROLE_POLICIES
        .map(|policy| format!("arn:{partition}:iam::aws:policy/service-role/{policy}"))
}

/// The private and public subnet CIDRs of a slot in a VPC, by the layout above.
pub fn slot_cidrs(vpc: Ipv4Net, slot: u8) -> Option<(Ipv4Net, Ipv4Net)> {
    let _ = (vpc, slot, DEFAULT_VPC_CIDR);
    todo!()
}

/// Plan the stack: what to create, keep and change so that the account holds `spec`'s network.
pub fn plan(spec: &StackSpec, observed: &ObservedState) -> Result<Plan, PlanError> {
    let _ = (spec, observed);
    todo!()
}

/// One annotated function as the CLI found it: its record, its settings, and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredFunction {
    pub record: Record,
    pub settings: DeploySettings,
    /// The region it deploys to, resolved (settings, `--region`, the AWS configuration).
    pub region: String,
    /// Base64 SHA-256 of its zip; `None` when planning without building a zip.
    pub code_sha256: Option<String>,
}

/// Where a function comes from, for messages: "`hello_egress::main` in package hello-egress
/// (src/main.rs:12)".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub package: String,
    pub function: String,
    pub source: String,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` in package {} ({})",
            self.function, self.package, self.source
        )
    }
}

/// Functions that name one stack but cannot share it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConflictError {
    #[error(
        "functions of stack `{stack}` in {region} disagree on `{setting}`: {first} has {first_value}, {second} has {second_value}; give every function of a stack the same `{setting}`, or name different stacks"
    )]
    Disagree {
        stack: StackName,
        region: String,
        setting: &'static str,
        first: Origin,
        first_value: String,
        second: Origin,
        second_value: String,
    },
    #[error(
        "two functions of stack `{stack}` in {region} are both named `{name}`: {first} and {second}; set a different `function-name` in [package.metadata.fixedip] for one of them"
    )]
    DuplicateName {
        stack: StackName,
        region: String,
        name: String,
        first: Origin,
        second: Origin,
    },
}

/// Group functions into stacks by (region, stack), sorted by region then stack; functions within a
/// stack are sorted by name.
pub fn stack_specs(functions: Vec<DeclaredFunction>) -> Result<Vec<StackSpec>, ConflictError> {
    let _ = functions;
    let _: Option<(AzCount, FunctionSpec)> = None;
    todo!()
}
