//! The plan: what the network of a stack must become, and the steps that get it there.
//!
//! The planner is pure and deterministic: `(StackSpec, ObservedState) -> Plan`. Every choice (CIDRs,
//! AZs, which address serves which AZ, what to create, keep, change or delete) is made here; the
//! executor in the CLI only carries the steps out, in dependency order.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::observed::{SecurityGroupRule, Slot, Tier};
use crate::requirements::{
    AllocationId, AzCount, EgressRule, Endpoint, EndpointKind, NatMode, StackName,
};
use crate::settings::Architecture;

/// The VPC CIDR when the settings name none: 65,536 addresses, cut into 16 blocks of /20 (4,096
/// addresses each, ample for Lambda's network interfaces). See the layout in [`crate::planner`].
pub const DEFAULT_VPC_CIDR: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 0, 0), 16);

/// The Lambda runtime of every function fixedip deploys: a Rust binary named `bootstrap`.
pub const LAMBDA_RUNTIME: &str = "provided.al2023";

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

/// The identifier of a step within one plan.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct StepId(pub usize);

/// A resource a step needs: one that exists, or the one an earlier step makes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteVia {
    InternetGateway(Ref),
    NatGateway(Ref),
    /// A NAT instance (`nat = "instance"`); resolves to the instance id.
    NatInstance(Ref),
}

/// One mutating operation. Creations tag what they create with the stack's tags (see `tags`).
///
/// A [`Ref`] to a role resolves to the role's ARN (IAM calls that want a name use the ARN's last
/// path segment); every other `Ref` resolves to the resource's id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
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
    /// A new Elastic IP for a slot: AllocateAddress (domain `vpc`) with TagSpecifications from
    /// [`crate::tags::for_address_in_use`]: `active`, or `pending` when `held_back` (the stack's
    /// IPs were shown already and the user has not allowed new ones, see [`crate::planner`], "New
    /// IPs wait for the user"); no step of the plan routes traffic through a held-back one, and
    /// the CLI prints its IP from the step's result. Resolves to the allocation id.
    AllocateAddress {
        slot: Slot,
        held_back: bool,
    },
    /// Put an existing address (retained, pending and now allowed, adopted, or used by the slot's
    /// NAT without the tags) to work for a slot: re-tag it with [`crate::tags::for_address`]
    /// (`fixedip:address=active`, the slot; `fixedip:adopted=true` when `adopted`: the stack's
    /// `adopted_ips` name it, decided by the planner). Resolves to the allocation id.
    ActivateAddress {
        allocation_id: String,
        slot: Slot,
        #[serde(default)]
        adopted: bool,
    },
    /// Completes when the gateway is `available`. `address` resolves to an allocation id.
    CreateNatGateway {
        subnet: Ref,
        address: Ref,
        slot: Slot,
        /// The client token's generation: how many dead gateways of the slot AWS lists
        /// ([`crate::observed::Retired`]), so that a replacement never gets a dead one back.
        #[serde(default, skip_serializing_if = "is_zero")]
        generation: u32,
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
    /// A route that must go: the stack became isolated (`nat = "none"`), so its private subnets
    /// keep no route out. Safe to call again: the executor treats a route already gone as done.
    DeleteRoute {
        route_table: Ref,
        destination: Ipv4Net,
    },
    /// No inbound rules; egress to anywhere. Named [`crate::tags::security_group_name`].
    CreateSecurityGroup {
        vpc: Ref,
    },
    /// The NAT instances' security group, named [`crate::tags::nat_security_group_name`]: inbound
    /// all traffic from `admit` only (the private half of the VPC, see
    /// [`crate::planner::nat_instance`]), egress to anywhere.
    CreateNatSecurityGroup {
        vpc: Ref,
        admit: Ipv4Net,
    },
    /// RunInstances of one `instance_type` instance in the slot's public subnet, with the image
    /// named by the public SSM parameter `image_parameter`, the user data that turns on forwarding
    /// and masquerading at boot, the NAT security group, tags, and a client token derived from
    /// the stack, slot and subnet (a repeated call returns the same instance). Completes when the
    /// instance is `running`. Resolves to the instance id.
    LaunchNatInstance {
        subnet: Ref,
        security_group: Ref,
        slot: Slot,
        instance_type: String,
        image_parameter: String,
        /// The client token's generation: how many dead NAT instances of the slot AWS lists.
        #[serde(default, skip_serializing_if = "is_zero")]
        generation: u32,
    },
    /// ModifyInstanceAttribute SourceDestCheck=false: without it the instance drops every packet
    /// that is not addressed to itself.
    DisableSourceDestCheck {
        instance: Ref,
    },
    /// AssociateAddress of the slot's Elastic IP (`address` resolves to the allocation id) with
    /// the instance's primary network interface: `interface` when the observation names it, else
    /// the one the launch reported.
    AssociateAddress {
        address: Ref,
        instance: Ref,
        #[serde(default)]
        interface: Option<String>,
    },
    /// DisassociateAddress (not-found is done): frees an address for its next NAT or its release,
    /// after it served a NAT instance, or when its association outlived a deleted NAT gateway.
    DisassociateAddress {
        association_id: String,
    },
    /// TerminateInstances, then wait until `terminated` (its network interface, and with it the
    /// subnet, is only free then). Not-found is done.
    TerminateNatInstance {
        instance: String,
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
        /// Its ARN, as observed: TagResource takes an ARN only.
        #[serde(default)]
        arn: String,
    },

    // Restricted egress and VPC endpoints (see `planner/egress.rs` and `planner/endpoints.rs`).
    /// AuthorizeSecurityGroupEgress, one permission per rule. A rule that exists already
    /// (`InvalidPermission.Duplicate`, a resumed run) is done.
    AuthorizeEgress {
        security_group: Ref,
        rules: Vec<SecurityGroupRule>,
    },
    /// RevokeSecurityGroupEgress, one permission per rule; a rule already gone is done. Comes
    /// after the [`Action::AuthorizeEgress`] of the same group, so that the function never goes
    /// through a moment with less egress than both the old and the new lists allow.
    RevokeEgress {
        security_group: Ref,
        rules: Vec<SecurityGroupRule>,
    },
    /// The security group of the stack's interface endpoints, named
    /// [`crate::tags::endpoint_security_group_name`]; its inbound rule comes from
    /// [`Action::AdmitHttpsFrom`].
    CreateEndpointSecurityGroup {
        vpc: Ref,
    },
    /// AuthorizeSecurityGroupIngress on `security_group`: TCP 443 from members of `from_group`
    /// (the functions' group). A duplicate is done.
    AdmitHttpsFrom {
        security_group: Ref,
        from_group: Ref,
    },
    /// CreateVpcEndpoint, type Gateway, for the private route table of one slot: AWS adds a
    /// route to the service's prefix list (`pl-...`) in it. One per service and slot, so that an
    /// AZ added or removed never modifies another AZ's endpoint.
    CreateGatewayEndpoint {
        vpc: Ref,
        endpoint: Endpoint,
        route_table: Ref,
        slot: Slot,
    },
    /// CreateVpcEndpoint, type Interface, with private DNS, in the private subnets (one per AZ),
    /// with the endpoints' security group. Completes when the endpoint is `available`.
    CreateInterfaceEndpoint {
        vpc: Ref,
        endpoint: Endpoint,
        subnets: Vec<Ref>,
        security_group: Ref,
    },
    /// ModifyVpcEndpoint: the private subnets changed with `azs`.
    ModifyInterfaceEndpoint {
        endpoint_id: String,
        add_subnets: Vec<Ref>,
        remove_subnets: Vec<String>,
    },
    /// DeleteVpcEndpoints, then wait until it is gone (`deleted`, or unknown): only then are an
    /// interface endpoint's network interfaces out of its subnets and security group, and a
    /// gateway endpoint's routes out of its route table.
    DeleteEndpoint {
        endpoint_id: String,
    },

    // Removal: shrinking a stack and `destroy`. Every id comes from the observation (found by the
    // stack's tags), never from a step, so these carry plain ids. Each is safe to call again on
    // a resource that is already gone: the executor treats AWS's not-found error as done, because
    // a resumed run may repeat the call a killed one made.
    /// Take a function out of the VPC: UpdateFunctionConfiguration with an empty VpcConfig
    /// (`SubnetIds: []`, `SecurityGroupIds: []`), nothing else changed. Completes when
    /// `LastUpdateStatus` is `Successful`. Its network interfaces linger: see
    /// [`Action::ClearLambdaInterfaces`]. Resolves to the function's ARN.
    DetachFunction {
        name: String,
    },
    /// DeleteFunction (only with `delete_functions`, only a function the destroyed package
    /// deploys). Completes when GetFunction answers ResourceNotFoundException.
    DeleteFunction {
        name: String,
    },
    /// DescribeNatGateways first: `deleted` or absent is done; `deleting` is only waited for;
    /// otherwise DeleteNatGateway (moto answers a gone id with an HTTP 500, hence asking first).
    /// Then wait until it is `deleted` (the SDK waits for `available` only: poll, with progress,
    /// up to the NAT timeout). Only then is its Elastic IP free (AWS refuses to release or
    /// re-associate it before) and its subnet deletable. A `failed` gateway is deleted too (AWS
    /// accepts it and would remove it later anyway).
    DeleteNatGateway {
        nat_gateway: String,
    },
    /// Keep an Elastic IP that serves no NAT any more: CreateTags `fixedip:address=retained`,
    /// DeleteTags `fixedip:slot`; the stack and `fixedip:adopted` tags stay. The next deploy puts
    /// it back to work before allocating anything. Never releases the address.
    RetainAddress {
        allocation_id: String,
    },
    /// ReleaseAddress: only with `release_ips`, never for an adopted address, and only after the
    /// NAT that held it is `deleted`.
    ReleaseAddress {
        allocation_id: String,
    },
    /// Wait out Lambda's network interfaces in a subnet or security group, so that it can be
    /// deleted. The executor: DescribeNetworkInterfaces filtered by `subnet-id` (or `group-id`)
    /// and `interface-type=lambda` (AWS's Hyperplane ENIs, description `AWS Lambda VPC ENI-...`,
    /// requester `*:awslambda_*`); deletes those that are `available` (AWS has let them go);
    /// polls the rest with progress on stderr, backing off from 5 s to 30 s; completes when none
    /// is left. Bounded: after the ENI timeout (default 20 minutes) it fails naming the
    /// interfaces and the functions in their descriptions, and says that running destroy again
    /// resumes here. The step that deletes the subnet or group comes after this one and still
    /// retries DependencyViolation with the same backoff within the same bound, for interfaces
    /// AWS lists late.
    ClearLambdaInterfaces {
        holder: InterfaceHolder,
    },
    /// DeleteSubnet (after its NAT is `deleted` and its Lambda interfaces are cleared). Its route
    /// table association goes with it.
    DeleteSubnet {
        subnet: String,
    },
    /// DisassociateRouteTable for every association in `associations` (from the observation:
    /// normally none is left, its subnets are deleted first; not-found is done), then
    /// DeleteRouteTable.
    DeleteRouteTable {
        route_table: String,
        #[serde(default)]
        associations: Vec<String>,
    },
    /// DeleteSecurityGroup (after its Lambda interfaces are cleared; retry DependencyViolation).
    DeleteSecurityGroup {
        security_group: String,
    },
    /// DetachInternetGateway from `vpc` when it is attached (AWS refuses while public IPs are
    /// mapped in the VPC: every NAT is `deleted` first), then DeleteInternetGateway.
    DeleteInternetGateway {
        internet_gateway: String,
        vpc: Option<String>,
    },
    /// DeleteVpc, last of the network (its main route table, default security group and network
    /// ACL go with it).
    DeleteVpc {
        vpc: String,
    },
    /// DetachRolePolicy for each of `policy_arns`, then DeleteRole. Only the stack's own role,
    /// and only when no function that stays uses it. Resolves to nothing (`role` is its ARN; IAM
    /// wants the name, its last path segment).
    DeleteRole {
        role: String,
        policy_arns: Vec<String>,
    },
}

/// What holds Lambda network interfaces that must go before it can be deleted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum InterfaceHolder {
    Subnet(String),
    SecurityGroup(String),
}

impl fmt::Display for InterfaceHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterfaceHolder::Subnet(id) => write!(f, "subnet {id}"),
            InterfaceHolder::SecurityGroup(id) => write!(f, "security group {id}"),
        }
    }
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
            Action::AllocateAddress {
                slot,
                held_back: false,
            } => format!("allocate a new Elastic IP (slot {slot})"),
            Action::AllocateAddress {
                slot,
                held_back: true,
            } => format!(
                "allocate a new Elastic IP (slot {slot}), carrying no traffic until `--allow-new-ips`"
            ),
            Action::ActivateAddress {
                allocation_id,
                slot,
                ..
            } => {
                format!("put Elastic IP {allocation_id} to work (slot {slot})")
            }
            Action::CreateNatGateway {
                subnet,
                address,
                slot,
                ..
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
            Action::DeleteRoute {
                route_table,
                destination,
            } => format!("delete route {destination} from route table {route_table}"),
            Action::CreateSecurityGroup { vpc } => {
                format!("create security group (no inbound rules) in VPC {vpc}")
            }
            Action::CreateNatSecurityGroup { vpc, admit } => format!(
                "create the NAT instances' security group in VPC {vpc}, admitting {admit}"
            ),
            Action::LaunchNatInstance {
                subnet,
                slot,
                instance_type,
                ..
            } => format!("launch a {instance_type} NAT instance in subnet {subnet} (slot {slot})"),
            Action::DisableSourceDestCheck { instance } => {
                format!("turn off the source/destination check of NAT instance {instance}")
            }
            Action::AssociateAddress {
                address, instance, ..
            } => {
                format!("associate Elastic IP {address} with NAT instance {instance}")
            }
            Action::DisassociateAddress { association_id } => {
                format!("disassociate Elastic IP association {association_id}")
            }
            Action::TerminateNatInstance { instance } => {
                format!("terminate NAT instance {instance} and wait until it is terminated")
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
            Action::TagFunction { function, .. } => {
                format!("tag function {} as the stack's", function.name)
            }
            Action::DetachFunction { name } => format!("take function {name} out of the VPC"),
            Action::DeleteFunction { name } => format!("delete function {name}"),
            Action::DeleteNatGateway { nat_gateway } => {
                format!("delete NAT gateway {nat_gateway} and wait until it is deleted")
            }
            Action::RetainAddress { allocation_id } => {
                format!("keep Elastic IP {allocation_id} as retained (it stays allocated)")
            }
            Action::ReleaseAddress { allocation_id } => {
                format!("release Elastic IP {allocation_id}")
            }
            Action::ClearLambdaInterfaces { holder } => {
                format!("wait for Lambda's network interfaces in {holder} to go")
            }
            Action::DeleteSubnet { subnet } => format!("delete subnet {subnet}"),
            Action::DeleteRouteTable { route_table, .. } => {
                format!("delete route table {route_table}")
            }
            Action::DeleteSecurityGroup { security_group } => {
                format!("delete security group {security_group}")
            }
            Action::DeleteInternetGateway {
                internet_gateway,
                vpc: Some(vpc),
            } => format!("detach internet gateway {internet_gateway} from VPC {vpc} and delete it"),
            Action::DeleteInternetGateway {
                internet_gateway,
                vpc: None,
            } => format!("delete internet gateway {internet_gateway}"),
            Action::DeleteVpc { vpc } => format!("delete VPC {vpc}"),
            Action::DeleteRole { role, .. } => {
                format!("detach the policies of role {role} and delete it")
            }
            Action::AuthorizeEgress {
                security_group,
                rules,
            } => format!(
                "let {} out of security group {security_group}",
                list_rules(rules)
            ),
            Action::RevokeEgress {
                security_group,
                rules,
            } => format!(
                "stop {} out of security group {security_group}",
                list_rules(rules)
            ),
            Action::CreateEndpointSecurityGroup { vpc } => {
                format!("create the interface endpoints' security group in VPC {vpc}")
            }
            Action::AdmitHttpsFrom {
                security_group,
                from_group,
            } => format!(
                "admit HTTPS (TCP 443) into security group {security_group} from {from_group}"
            ),
            Action::CreateGatewayEndpoint {
                endpoint,
                route_table,
                slot,
                ..
            } => format!(
                "create gateway endpoint for {endpoint} on route table {route_table} (slot {slot}), free"
            ),
            Action::CreateInterfaceEndpoint {
                endpoint, subnets, ..
            } => format!(
                "create interface endpoint for {endpoint} with private DNS in {} private subnet{}",
                subnets.len(),
                if subnets.len() == 1 { "" } else { "s" }
            ),
            Action::ModifyInterfaceEndpoint {
                endpoint_id,
                add_subnets,
                remove_subnets,
            } => {
                let mut changes = Vec::new();
                if !add_subnets.is_empty() {
                    let added: Vec<String> = add_subnets.iter().map(ToString::to_string).collect();
                    changes.push(format!("add subnets {}", added.join(", ")));
                }
                if !remove_subnets.is_empty() {
                    changes.push(format!("remove subnets {}", remove_subnets.join(", ")));
                }
                format!("interface endpoint {endpoint_id}: {}", changes.join(", "))
            }
            Action::DeleteEndpoint { endpoint_id } => {
                format!("delete VPC endpoint {endpoint_id} and wait until it is gone")
            }
        }
    }
}

impl Action {
    /// Every resource the action names, in field order. A step's `after` holds at least the steps
    /// behind the [`Ref::Step`]s among them.
    pub fn refs(&self) -> Vec<Ref> {
        let mut action = self.clone();
        action.refs_mut().into_iter().map(|r| r.clone()).collect()
    }

    /// [`Action::refs`], to change them (e.g. to name what a step creates, [`Plan::describe`]).
    pub fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Action::CreateVpc { .. }
            | Action::CreateInternetGateway
            | Action::AllocateAddress { .. }
            | Action::ActivateAddress { .. }
            | Action::CreateRole { .. }
            | Action::UpdateFunctionCode { .. }
            | Action::TagFunction { .. }
            | Action::DetachFunction { .. }
            | Action::DeleteFunction { .. }
            | Action::DeleteNatGateway { .. }
            | Action::RetainAddress { .. }
            | Action::ReleaseAddress { .. }
            | Action::ClearLambdaInterfaces { .. }
            | Action::DeleteSubnet { .. }
            | Action::DeleteRouteTable { .. }
            | Action::DeleteSecurityGroup { .. }
            | Action::DeleteInternetGateway { .. }
            | Action::DeleteVpc { .. }
            | Action::DeleteRole { .. }
            | Action::DisassociateAddress { .. }
            | Action::TerminateNatInstance { .. }
            | Action::DeleteEndpoint { .. } => Vec::new(),
            Action::CreateNatSecurityGroup { vpc, .. } => vec![vpc],
            Action::LaunchNatInstance {
                subnet,
                security_group,
                ..
            } => vec![subnet, security_group],
            Action::DisableSourceDestCheck { instance } => vec![instance],
            Action::AssociateAddress {
                address, instance, ..
            } => vec![address, instance],
            Action::AuthorizeEgress { security_group, .. }
            | Action::RevokeEgress { security_group, .. } => vec![security_group],
            Action::CreateEndpointSecurityGroup { vpc } => vec![vpc],
            Action::AdmitHttpsFrom {
                security_group,
                from_group,
            } => vec![security_group, from_group],
            Action::CreateGatewayEndpoint {
                vpc, route_table, ..
            } => vec![vpc, route_table],
            Action::CreateInterfaceEndpoint {
                vpc,
                subnets,
                security_group,
                ..
            } => [vpc]
                .into_iter()
                .chain(subnets.iter_mut())
                .chain([security_group])
                .collect(),
            Action::ModifyInterfaceEndpoint { add_subnets, .. } => add_subnets.iter_mut().collect(),
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
            } => vec![route_table, via.gateway_mut()],
            Action::DeleteRoute { route_table, .. } => vec![route_table],
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
            } => subnets.iter_mut().chain([security_group, role]).collect(),
        }
    }
}

impl RouteVia {
    /// The gateway the route sends traffic to.
    pub fn gateway(&self) -> &Ref {
        match self {
            RouteVia::InternetGateway(gateway)
            | RouteVia::NatGateway(gateway)
            | RouteVia::NatInstance(gateway) => gateway,
        }
    }

    fn gateway_mut(&mut self) -> &mut Ref {
        match self {
            RouteVia::InternetGateway(gateway)
            | RouteVia::NatGateway(gateway)
            | RouteVia::NatInstance(gateway) => gateway,
        }
    }
}

impl fmt::Display for RouteVia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteVia::InternetGateway(gateway) => write!(f, "internet gateway {gateway}"),
            RouteVia::NatGateway(gateway) => write!(f, "NAT gateway {gateway}"),
            RouteVia::NatInstance(instance) => write!(f, "NAT instance {instance}"),
        }
    }
}

/// "tcp 443 to 0.0.0.0/0, udp 53 to 10.0.0.2/32".
fn list_rules(rules: &[SecurityGroupRule]) -> String {
    let rules: Vec<String> = rules.iter().map(ToString::to_string).collect();
    rules.join(", ")
}

fn tier_name(tier: Tier) -> &'static str {
    match tier {
        Tier::Public => "public",
        Tier::Private => "private",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Step {
    pub id: StepId,
    pub action: Action,
    /// Steps whose results this one needs; the executor runs a step once all of these are done.
    pub after: Vec<StepId>,
}

/// Whether a resource of the desired topology exists already.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", content = "id", rename_all = "snake_case")]
pub enum Status {
    /// Exists as wanted.
    Keep(String),
    /// Exists, and a step changes it.
    Change(String),
    /// A step creates it.
    Create,
    /// Would use a new Elastic IP that the user has not allowed yet: not created by this plan
    /// (see [`Plan::pending_new_ips`]).
    HeldBack,
    /// Exists, and a step deletes it.
    Delete(String),
    /// Does not exist, and no step makes it (a destroy plan on a half-destroyed stack).
    Absent,
}

impl Status {
    /// Whether the resource exists once the plan is applied.
    pub fn exists_after(&self) -> bool {
        matches!(self, Status::Keep(_) | Status::Change(_) | Status::Create)
    }
}

/// The desired network of one AZ, for people to read (`plan`, `status`, diagrams).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AzView {
    pub slot: Slot,
    pub az: String,
    pub public_subnet: (Ipv4Net, Status),
    pub private_subnet: (Ipv4Net, Status),
    /// The Elastic IP of this AZ's NAT; its address is known once allocated.
    pub address: (Option<Ipv4Addr>, Status),
    /// The slot's NAT: a NAT gateway, or a NAT instance when [`NetworkView::nat_instance_type`]
    /// is set.
    pub nat_gateway: Status,
    pub private_route_table: Status,
    /// The slot whose NAT carries this AZ's traffic: its own, another one when `nats` is fewer
    /// than `azs`, or `None` (isolated, or waiting for a new IP to be allowed).
    #[serde(default)]
    pub nat_slot: Option<Slot>,
}

/// A slot that exists beyond the stack's `azs`: removed by the plan, or left (and still billed)
/// while a function the plan does not deploy runs in it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SurplusSlot {
    pub slot: Slot,
    pub az: Option<String>,
    /// A NAT gateway that is `pending` or `available`.
    pub nat_gateway: Option<String>,
    /// The active address of the slot: allocation id and public IP.
    pub address: Option<(String, Ipv4Addr)>,
}

/// The whole desired network, for people to read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// Slots beyond `azs` that stay, because a function the plan does not deploy runs in them.
    pub surplus_slots: Vec<SurplusSlot>,
    /// Slots beyond `azs` that the plan removes (NAT gateway, subnets, route table); their
    /// addresses are kept as retained and listed in `retained_addresses`.
    pub removed_slots: Vec<SurplusSlot>,
    /// Addresses a destroy with `release_ips` gives back to AWS (allocation id, IP): shown before
    /// they go, because a partner's allowlist may still name them.
    pub released_addresses: Vec<(String, Ipv4Addr)>,
    /// `Some(type)` when the NATs are EC2 instances of that type (`nat = "instance"`).
    #[serde(default)]
    pub nat_instance_type: Option<String>,
    /// The NAT instances' security group; `None` when there are none and none are wanted.
    #[serde(default)]
    pub nat_security_group: Option<Status>,
    /// A stack on an existing network: where it attaches. `None` for a network fixedip builds.
    #[serde(default)]
    pub existing: Option<ExistingAttachment>,
    /// The VPC endpoints (`endpoints = [...]`): what exists after the plan, and what it removes.
    #[serde(default)]
    pub endpoints: Vec<EndpointView>,
    /// The interface endpoints' security group, when there is or was one.
    #[serde(default)]
    pub endpoint_security_group: Option<Status>,
}

/// One VPC endpoint, for people to read and for the cost model.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EndpointView {
    pub service: Endpoint,
    pub kind: EndpointKind,
    /// The slot of a gateway endpoint (one per private route table).
    pub slot: Option<Slot>,
    /// How many AZs an interface endpoint has network interfaces in: billed per AZ per hour.
    pub azs: u32,
    pub status: Status,
}

/// An Elastic IP that exists (or that the plan allocates) for a slot, but carries no traffic until
/// the user has seen it and allowed it: `cargo fixedip deploy --allow-new-ips`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingIp {
    pub slot: Slot,
    pub az: String,
    /// The address: `Existing(allocation id)`, or the `AllocateAddress` step that makes it.
    pub address: Ref,
    /// Known once allocated.
    pub public_ip: Option<Ipv4Addr>,
}

impl fmt::Display for PendingIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = match (self.public_ip, &self.address) {
            (Some(ip), _) => format!("new IP {ip} allocated"),
            (None, Ref::Existing(id)) => format!("new IP {id} allocated"),
            (None, Ref::Step(_)) => "a new IP to be allocated".to_owned(),
        };
        write!(
            f,
            "{ip} for {} (slot {}); add it to the partner's allowlist, then run `cargo fixedip deploy --allow-new-ips`",
            self.az, self.slot
        )
    }
}

/// The plan for one stack.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    pub stack: StackName,
    pub region: String,
    pub network: NetworkView,
    /// In an order where every step comes after the steps it needs.
    pub steps: Vec<Step>,
    /// What the user should know that no step does (a slot beyond `azs` left in place, ...).
    pub notes: Vec<String>,
    /// New Elastic IPs that carry no traffic yet: the CLI prints each (with the IP the
    /// `AllocateAddress` step got) and how to allow them. Empty in a destroy plan.
    pub pending_new_ips: Vec<PendingIp>,
}

impl Plan {
    /// A plan with no step: applying it makes no mutating call.
    pub fn is_noop(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn step(&self, id: StepId) -> &Step {
        &self.steps[id.0]
    }

    /// What a person reads for a step, in `plan -v`, progress and reports: its action, with what an
    /// earlier step creates named by what it is ("route table (new, private, us-east-1a)"), never
    /// by a step number.
    pub fn describe(&self, action: &Action) -> String {
        let mut named = action.clone();
        for reference in named.refs_mut() {
            if let Ref::Step(id) = reference {
                *reference = Ref::Existing(self.what_step_creates(*id));
            }
        }
        named.summary()
    }

    /// How [`Plan::describe`] names what step `id` creates, after the kind of thing it is
    /// ("VPC", "subnet", "route table"...): its CIDR or name where it has one, "(new)" and its AZ.
    fn what_step_creates(&self, id: StepId) -> String {
        let stack = &self.stack;
        let in_az = |slot: Slot| match self.az_of(slot) {
            Some(az) => format!("(new, {az})"),
            None => "(new)".to_owned(),
        };
        match &self.step(id).action {
            Action::CreateVpc { cidr } => format!("{cidr} (new)"),
            Action::CreateSubnet { cidr, az, .. } => format!("{cidr} (new, {az})"),
            Action::AllocateAddress { slot, .. }
            | Action::CreateNatGateway { slot, .. }
            | Action::LaunchNatInstance { slot, .. } => in_az(*slot),
            Action::CreateRouteTable {
                tier,
                slot: Some(slot),
                ..
            } => match self.az_of(*slot) {
                Some(az) => format!("(new, {}, {az})", tier_name(*tier)),
                None => format!("(new, {})", tier_name(*tier)),
            },
            Action::CreateRouteTable { tier, .. } => format!("(new, {})", tier_name(*tier)),
            Action::CreateSecurityGroup { .. } => {
                format!("{} (new)", crate::tags::security_group_name(stack))
            }
            Action::CreateNatSecurityGroup { .. } => {
                format!("{} (new)", crate::tags::nat_security_group_name(stack))
            }
            Action::CreateEndpointSecurityGroup { .. } => {
                format!("{} (new)", crate::tags::endpoint_security_group_name(stack))
            }
            Action::CreateRole { name } => format!("{name} (new)"),
            Action::CreateFunction { function, .. } => function.name.clone(),
            _ => "(new)".to_owned(),
        }
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
            let network = &self.network;
            let mut beyond = network.surplus_slots.iter().chain(&network.removed_slots);
            let surplus = beyond.find(|s| s.slot == slot);
            surplus.and_then(|s| s.az.as_deref())
        })
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
