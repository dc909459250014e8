//! The steps' operations: one mutating AWS call each (or one create with its tags), what it needs
//! ([`Ref`]s to resources that exist or that earlier steps make), and how each reads in a plan.

use std::fmt;

use ipnet::Ipv4Net;

use crate::observed::{SecurityGroupRule, Slot, Tier};
use crate::requirements::Endpoint;

use super::{FunctionSpec, Ref};

/// Where a planned route sends traffic.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteVia {
    InternetGateway(Ref),
    NatGateway(Ref),
    /// A NAT instance (`nat = "instance"`); resolves to the instance id.
    NatInstance(Ref),
    /// A self-healing NAT's fixed network interface (`nat-self-healing`), whichever instance of
    /// its group holds it; resolves to the interface id.
    NatInterface(Ref),
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
        /// Claimed for the slot but not allowed to carry traffic yet: tagged `pending`, as a new
        /// address held back is (a pending address a removed slot left, taken by another).
        #[serde(default)]
        held_back: bool,
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
        /// A public IP at launch (AssociatePublicIpAddress on the primary interface): only when
        /// the slot's Elastic IP is still on the NAT gateway this instance replaces, so that its
        /// boot reaches the package repositories and it gets ready while the gateway still
        /// carries the slot. No route sends the slot's traffic to it before the Elastic IP is on
        /// it, and associating the Elastic IP releases the launch's public IP (EC2 User Guide,
        /// "Public IPv4 addresses").
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        public_ip: bool,
    },
    /// Read-only: polls GetConsoleOutput (`Latest=true`) until the instance's boot writes
    /// [`crate::nat_boot::READY`] (forwarding and masquerading are on), within the NAT-instance
    /// readiness bound (longer than the user data's own retries). A `FAILED` line, or no ready
    /// line in time, fails the step with the instance's own last lines; the route that would send
    /// traffic to it depends on this step, so the slot keeps its previous egress.
    AwaitNatInstanceReady {
        instance: Ref,
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
    /// ModifyNetworkInterfaceAttribute AssociatePublicIpAddress=false on a NAT instance's primary
    /// interface, before its Elastic IP leaves it (instance → gateway): EC2 gives an instance
    /// launched with a public IP a new one "within a few minutes" of the Elastic IP's
    /// disassociation (EC2 User Guide, Elastic IP addresses), and the slot's route still points
    /// at the instance then. On an interface launched without one it changes nothing.
    DropPublicIp {
        network_interface: String,
    },
    /// DisassociateAddress (not-found is done): frees an address for its next NAT or its release,
    /// after it served a NAT instance, or when its association outlived a deleted NAT gateway.
    DisassociateAddress {
        association_id: String,
    },
    /// StartInstances on a NAT instance found `stopped` (or `stopping`: waited for until
    /// stopped first), then wait until `running`. The instance keeps its id, its primary
    /// interface and the Elastic IP on it, so the slot's route and allowlisted address stay as
    /// they are; its setup is read again at boot and reported on the console at every boot
    /// ([`crate::nat_boot::EVERY_BOOT`]), which the [`Action::AwaitNatInstanceReady`] after it
    /// reads.
    StartNatInstance {
        instance: String,
    },
    /// TerminateInstances, then wait until `terminated` (its network interface, and with it the
    /// subnet, is only free then). Not-found is done.
    TerminateNatInstance {
        instance: String,
    },
    /// The self-healing NAT instances' role `name` (trusted by `ec2.amazonaws.com`, with an
    /// inline policy that lets an instance attach a network interface and change one's
    /// attributes, only on the stack's tagged resources) and the instance profile of the same
    /// name holding it: CreateRole, PutRolePolicy, CreateInstanceProfile,
    /// AddRoleToInstanceProfile, each done when already done. Resolves to the profile's name.
    CreateNatProfile {
        name: String,
    },
    /// CreateNetworkInterface in the slot's public subnet with the NAT security group, tagged,
    /// then ModifyNetworkInterfaceAttribute SourceDestCheck=false: the slot's fixed interface,
    /// which holds its Elastic IP whichever instance of the group carries it. Resolves to the
    /// interface id.
    CreateNatInterface {
        subnet: Ref,
        security_group: Ref,
        slot: Slot,
    },
    /// AssociateAddress of the slot's Elastic IP (`address`, an allocation id) with the slot's
    /// fixed interface. The address never moves again while the slot keeps its group.
    AssociateInterfaceAddress {
        address: Ref,
        interface: Ref,
    },
    /// CreateLaunchTemplate [`crate::tags::nat_group_name`]: `instance_type`, the image named by
    /// the public SSM parameter `image_parameter`, the instance profile `profile`, a primary
    /// interface in the public subnet with the NAT security group and a public IP (the boot's
    /// way to the EC2 API and the package repositories), tags for the instance, its volume and
    /// its primary interface, and the user data that attaches `interface` at device index 1,
    /// forwards and masquerades out of it, drops the boot's public IP, and reports ready on the
    /// console. Resolves to the template id.
    CreateNatLaunchTemplate {
        slot: Slot,
        subnet: Ref,
        security_group: Ref,
        interface: Ref,
        profile: Ref,
        instance_type: String,
        image_parameter: String,
    },
    /// CreateAutoScalingGroup [`crate::tags::nat_group_name`] of exactly one instance from
    /// `template` in the slot's public subnet, tagged (tags not propagated: the template tags
    /// the instance). Resolves to the group's name.
    CreateNatGroup {
        slot: Slot,
        template: Ref,
        subnet: Ref,
    },
    /// Read-only: polls DescribeAutoScalingGroups for the group's instance, then its console
    /// until it reports [`crate::nat_boot::READY`] (the fixed interface attached, forwarding and
    /// masquerading out of it), within the NAT-instance readiness bound; a `FAILED` line or the
    /// bound fails the step with the instance's own last lines. The route to the interface
    /// depends on it.
    AwaitNatGroupReady {
        group: Ref,
    },
    /// Read-only: polls DescribeAutoScalingGroups for the group's instance and
    /// DescribeNetworkInterfaces for `interface` until that instance has attached it (its boot
    /// got as far as it can before the slot's Elastic IP is on the interface), within the
    /// NAT-instance readiness bound; a `FAILED` console line or the bound fails the step with the
    /// instance's own last lines. In a switch from a NAT gateway, the gateway waits for it: an
    /// instance that cannot launch or attach leaves every gateway in place.
    AwaitNatInterfaceAttached {
        group: Ref,
        interface: Ref,
    },
    /// DeleteAutoScalingGroup ForceDelete=true (its instance is terminated with it), then wait
    /// until the group is gone: only then is the fixed interface detached. Not-found is done.
    DeleteNatGroup {
        name: String,
    },
    /// DeleteLaunchTemplate. Not-found is done.
    DeleteNatLaunchTemplate {
        id: String,
    },
    /// DeleteNetworkInterface, once no instance holds it (waited for: AWS detaches it when its
    /// instance terminates). Its Elastic IP was disassociated by an earlier step. Not-found is
    /// done.
    DeleteNatInterface {
        id: String,
    },
    /// RemoveRoleFromInstanceProfile, DeleteInstanceProfile, DeleteRolePolicy, DeleteRole,
    /// each not-found being done.
    DeleteNatProfile {
        name: String,
    },
    /// The stack's execution role, trusted by `lambda.amazonaws.com`.
    CreateRole {
        name: String,
    },
    AttachRolePolicy {
        role: Ref,
        policy_arn: String,
    },
    /// Runtime [`LAMBDA_RUNTIME`], handler `bootstrap`. Completes with Lambda's answer: a refusal
    /// (an AZ Lambda does not support) comes in it, so that is all new addresses wait for; the
    /// function's `Pending` is [`Action::AwaitFunctionActive`]'s, which runs beside the NATs.
    CreateFunction {
        function: FunctionSpec,
        subnets: Vec<Ref>,
        security_group: Ref,
        role: Ref,
    },
    /// Polls GetFunctionConfiguration until the function is `Active` (Lambda's developer guide,
    /// function states: a new VPC function is `Pending` while Lambda sets up its network
    /// interfaces); `Failed` fails with Lambda's `StateReasonCode: StateReason`. After a create,
    /// and for a function a killed run left `Pending`.
    AwaitFunctionActive {
        name: String,
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
    /// CreateVpcEndpoint, type Gateway, for every private route table: AWS adds a route to the
    /// service's prefix list (`pl-...`) in each. One per service (the quota is 20 per region).
    CreateGatewayEndpoint {
        vpc: Ref,
        endpoint: Endpoint,
        route_tables: Vec<Ref>,
        /// The client token's generation: how many dead endpoints of the service AWS lists
        /// ([`crate::observed::Retired`]), so that a replacement never gets a dead one back.
        #[serde(default, skip_serializing_if = "is_zero")]
        generation: u32,
    },
    /// ModifyVpcEndpoint of a gateway endpoint: its route tables changed with `azs`.
    ModifyGatewayEndpoint {
        endpoint_id: String,
        add_route_tables: Vec<Ref>,
        remove_route_tables: Vec<String>,
    },
    /// CreateVpcEndpoint, type Interface, with private DNS, in the private subnets (one per AZ),
    /// with the endpoints' security group. Completes when the endpoint is `available`.
    CreateInterfaceEndpoint {
        vpc: Ref,
        endpoint: Endpoint,
        subnets: Vec<Ref>,
        security_group: Ref,
        /// As [`Action::CreateGatewayEndpoint`]'s.
        #[serde(default, skip_serializing_if = "is_zero")]
        generation: u32,
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
    ///
    /// `pending`: the address was shown but never allowed to carry traffic (`--allow-new-ips`),
    /// so it keeps `fixedip:address=pending` (only the slot tag goes): a later run that puts it
    /// to work holds it back again, instead of sending traffic from an IP the partner may not
    /// have allowlisted (guarantee 1).
    RetainAddress {
        allocation_id: String,
        #[serde(default)]
        pending: bool,
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
                held_back: false,
                ..
            } => {
                format!("put Elastic IP {allocation_id} to work (slot {slot})")
            }
            Action::ActivateAddress {
                allocation_id,
                slot,
                held_back: true,
                ..
            } => {
                format!("claim Elastic IP {allocation_id} for slot {slot}, waiting for `--allow-new-ips`")
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
                public_ip,
                ..
            } => {
                let boot = if *public_ip {
                    ", with a public IP for its boot until the Elastic IP moves to it"
                } else {
                    ""
                };
                format!("launch a {instance_type} NAT instance in subnet {subnet} (slot {slot}){boot}")
            }
            Action::DisableSourceDestCheck { instance } => {
                format!("turn off the source/destination check of NAT instance {instance}")
            }
            Action::AwaitNatInstanceReady { instance } => {
                format!("wait until NAT instance {instance} reports forwarding and masquerading on")
            }
            Action::AssociateAddress {
                address, instance, ..
            } => {
                format!("associate Elastic IP {address} with NAT instance {instance}")
            }
            Action::DisassociateAddress { association_id } => {
                format!("disassociate Elastic IP association {association_id}")
            }
            Action::DropPublicIp { network_interface } => format!(
                "turn off the automatic public IP of network interface {network_interface}, so that it gets none when its Elastic IP leaves"
            ),
            Action::StartNatInstance { instance } => {
                format!("start the stopped NAT instance {instance} and wait until it is running")
            }
            Action::TerminateNatInstance { instance } => {
                format!("terminate NAT instance {instance} and wait until it is terminated")
            }
            Action::CreateNatProfile { name } => format!(
                "create the NAT instances' role and instance profile {name} (attach a network interface, tagged resources of the stack only)"
            ),
            Action::CreateNatInterface { subnet, slot, .. } => format!(
                "create the fixed network interface of the NAT in subnet {subnet}, source/destination check off (slot {slot})"
            ),
            Action::AssociateInterfaceAddress { address, interface } => {
                format!("associate Elastic IP {address} with network interface {interface}")
            }
            Action::CreateNatLaunchTemplate {
                slot,
                instance_type,
                interface,
                ..
            } => format!(
                "create the launch template of a {instance_type} NAT instance that attaches {interface} at boot (slot {slot})"
            ),
            Action::CreateNatGroup { slot, template, .. } => format!(
                "create an auto-scaling group of one NAT instance from launch template {template}, replaced when it fails (slot {slot})"
            ),
            Action::AwaitNatGroupReady { group } => format!(
                "wait until the NAT instance of group {group} reports forwarding and masquerading on"
            ),
            Action::AwaitNatInterfaceAttached { group, interface } => format!(
                "wait until the NAT instance of group {group} has attached network interface {interface}"
            ),
            Action::DeleteNatGroup { name } => format!(
                "delete auto-scaling group {name} with its NAT instance and wait until it is gone"
            ),
            Action::DeleteNatLaunchTemplate { id } => format!("delete launch template {id}"),
            Action::DeleteNatInterface { id } => {
                format!("delete network interface {id} once it is detached")
            }
            Action::DeleteNatProfile { name } => {
                format!("delete the NAT instances' instance profile and role {name}")
            }
            Action::CreateRole { name } => format!("create execution role {name}"),
            Action::AttachRolePolicy { role, policy_arn } => {
                format!("attach policy {policy_arn} to role {role}")
            }
            Action::CreateFunction { function, .. } => {
                format!("create function {} in the private subnets", function.name)
            }
            Action::AwaitFunctionActive { name } => {
                format!("wait until function {name} is active")
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
            Action::RetainAddress {
                allocation_id,
                pending: false,
            } => {
                format!("keep Elastic IP {allocation_id} as retained (it stays allocated)")
            }
            Action::RetainAddress {
                allocation_id,
                pending: true,
            } => {
                format!(
                    "keep Elastic IP {allocation_id} allocated, still waiting for `--allow-new-ips`"
                )
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
                route_tables,
                ..
            } => format!(
                "create gateway endpoint for {endpoint} on {} private route table{}, free",
                route_tables.len(),
                if route_tables.len() == 1 { "" } else { "s" }
            ),
            Action::ModifyGatewayEndpoint {
                endpoint_id,
                add_route_tables,
                remove_route_tables,
            } => format!(
                "gateway endpoint {endpoint_id}: {}",
                endpoint_changes("route tables", add_route_tables, remove_route_tables)
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
            } => format!(
                "interface endpoint {endpoint_id}: {}",
                endpoint_changes("subnets", add_subnets, remove_subnets)
            ),
            Action::DeleteEndpoint { endpoint_id } => {
                format!("delete VPC endpoint {endpoint_id} and wait until it is gone")
            }
        }
    }
}

/// "add subnets a, b, remove subnets c": what a ModifyVpcEndpoint changes.
fn endpoint_changes(what: &str, add: &[Ref], remove: &[String]) -> String {
    let mut changes = Vec::new();
    if !add.is_empty() {
        let added: Vec<String> = add.iter().map(ToString::to_string).collect();
        changes.push(format!("add {what} {}", added.join(", ")));
    }
    if !remove.is_empty() {
        changes.push(format!("remove {what} {}", remove.join(", ")));
    }
    changes.join(", ")
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
            | Action::AwaitFunctionActive { .. }
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
            | Action::DropPublicIp { .. }
            | Action::StartNatInstance { .. }
            | Action::TerminateNatInstance { .. }
            | Action::CreateNatProfile { .. }
            | Action::DeleteNatGroup { .. }
            | Action::DeleteNatLaunchTemplate { .. }
            | Action::DeleteNatInterface { .. }
            | Action::DeleteNatProfile { .. }
            | Action::DeleteEndpoint { .. } => Vec::new(),
            Action::CreateNatInterface {
                subnet,
                security_group,
                ..
            } => vec![subnet, security_group],
            Action::AssociateInterfaceAddress { address, interface } => vec![address, interface],
            Action::CreateNatLaunchTemplate {
                subnet,
                security_group,
                interface,
                profile,
                ..
            } => vec![subnet, security_group, interface, profile],
            Action::CreateNatGroup {
                template, subnet, ..
            } => vec![template, subnet],
            Action::AwaitNatGroupReady { group } => vec![group],
            Action::AwaitNatInterfaceAttached { group, interface } => vec![group, interface],
            Action::CreateNatSecurityGroup { vpc, .. } => vec![vpc],
            Action::LaunchNatInstance {
                subnet,
                security_group,
                ..
            } => vec![subnet, security_group],
            Action::DisableSourceDestCheck { instance }
            | Action::AwaitNatInstanceReady { instance } => vec![instance],
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
                vpc, route_tables, ..
            } => [vpc].into_iter().chain(route_tables.iter_mut()).collect(),
            Action::ModifyGatewayEndpoint {
                add_route_tables, ..
            } => add_route_tables.iter_mut().collect(),
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
            | RouteVia::NatInstance(gateway)
            | RouteVia::NatInterface(gateway) => gateway,
        }
    }

    fn gateway_mut(&mut self) -> &mut Ref {
        match self {
            RouteVia::InternetGateway(gateway)
            | RouteVia::NatGateway(gateway)
            | RouteVia::NatInstance(gateway)
            | RouteVia::NatInterface(gateway) => gateway,
        }
    }
}

impl fmt::Display for RouteVia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteVia::InternetGateway(gateway) => write!(f, "internet gateway {gateway}"),
            RouteVia::NatGateway(gateway) => write!(f, "NAT gateway {gateway}"),
            RouteVia::NatInstance(instance) => write!(f, "NAT instance {instance}"),
            RouteVia::NatInterface(interface) => {
                write!(f, "the NAT's network interface {interface}")
            }
        }
    }
}

/// "tcp 443 to 0.0.0.0/0, udp 53 to 10.0.0.2/32".
fn list_rules(rules: &[SecurityGroupRule]) -> String {
    let rules: Vec<String> = rules.iter().map(ToString::to_string).collect();
    rules.join(", ")
}

pub(super) fn tier_name(tier: Tier) -> &'static str {
    match tier {
        Tier::Public => "public",
        Tier::Private => "private",
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
