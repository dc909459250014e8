//! What exists in the account for one stack: the planner's other input.
//!
//! Plain values, no AWS types. [`stack_view`] derives them from the [`crate::network`] model the
//! CLI's reader fills by the stack's tags (what is the stack's, which tier and slot each thing
//! serves, which NAT is live); tests write them by hand.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::requirements::{AllocationId, Endpoint, EndpointKind};
use crate::settings::Architecture;

pub use crate::network::{
    InstanceState, NatGatewayState as NatState, RouteTableAssociation, RouteTarget, RulePeer,
    RuleProtocol, SecurityGroupRule,
};

mod view;
pub use view::{stack_view, ViewError};

/// Which side of an availability zone a subnet or route table serves.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Holds the NAT; routes 0.0.0.0/0 to the internet gateway.
    Public,
    /// Holds the function; routes 0.0.0.0/0 to the NAT of its own AZ.
    Private,
}

/// The position of an AZ in the stack: 0 for the first AZ ever chosen, 1 for the second...
/// A slot's CIDRs and AZ never change once created, so adding an AZ never renumbers the others.
pub type Slot = u8;

/// Everything the stack's tags lead to, plus what the region offers.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedState {
    /// The availability zones the region offers (state `available`, zone type `availability-zone`),
    /// by name, in the order AWS lists them.
    pub offered_azs: Vec<String>,
    /// The AZ id (`use1-az1`, DescribeAvailabilityZones `ZoneId`) of each offered AZ, by name.
    /// Names map to physical zones differently in each account; ids do not. Empty when not known
    /// (offline): the planner then works with names.
    #[serde(default)]
    pub az_ids: BTreeMap<String, String>,
    /// AZ ids where the stack cannot put a new slot, each with why: the NAT instance type is not
    /// offered there (DescribeInstanceTypeOfferings), or AWS refused a subnet there during this
    /// run, or Lambda refused a function's subnets there. The planner leaves them out when it
    /// chooses an AZ for a slot; a slot that has its subnets keeps its AZ, unless it holds no
    /// address yet (then it is given up for a slot elsewhere).
    #[serde(default)]
    pub unusable_az_ids: BTreeMap<String, String>,
    pub vpc: Option<ObservedVpc>,
    pub internet_gateway: Option<ObservedInternetGateway>,
    /// Internet gateways tagged as the stack's beyond the one it uses: left by a create whose
    /// answer was lost and that was sent again (older fixedip versions did that), or by another
    /// tool. The planner deletes those attached nowhere (`planner/duplicates.rs`).
    #[serde(default)]
    pub extra_internet_gateways: Vec<ObservedInternetGateway>,
    pub subnets: Vec<ObservedSubnet>,
    /// The stack's Elastic IPs, active or retained, and the adopted ones named by `ips = [...]`.
    pub addresses: Vec<ObservedAddress>,
    /// NAT gateways in the stack's VPC that carry the stack's tags (any state but `deleted`).
    pub nat_gateways: Vec<ObservedNatGateway>,
    pub route_tables: Vec<ObservedRouteTable>,
    pub security_group: Option<ObservedSecurityGroup>,
    /// The group of the stack's interface endpoints, admitting HTTPS from the functions' group.
    #[serde(default)]
    pub endpoint_security_group: Option<ObservedSecurityGroup>,
    /// The stack's VPC endpoints (any state but `deleted`).
    #[serde(default)]
    pub endpoints: Vec<ObservedEndpoint>,
    pub role: Option<ObservedRole>,
    /// The functions the plan names (found by name) and every function tagged with the stack.
    pub functions: Vec<ObservedFunction>,
    /// The account's Elastic IP quota in the region: DescribeAccountAttributes
    /// `vpc-max-elastic-ips`. `None`: not known (offline); nothing is checked.
    #[serde(default)]
    pub address_quota: Option<u32>,
    /// Every Elastic IP the account holds in the region, the stack's and others'
    /// (DescribeAddresses, unfiltered). `None`: not known.
    #[serde(default)]
    pub addresses_in_use_in_region: Option<u32>,
    /// NAT instances (`nat = "instance"`) in the stack's VPC that carry the stack's tags, in any
    /// state but `terminated`.
    #[serde(default)]
    pub nat_instances: Vec<ObservedNatInstance>,
    /// The security group of the stack's NAT instances (component `nat-security-group`).
    #[serde(default)]
    pub nat_security_group: Option<ObservedSecurityGroup>,
    /// Self-healing NAT instances (`nat-self-healing`): the fixed network interfaces that hold
    /// the slots' Elastic IPs (component `nat-interface`), any state.
    #[serde(default)]
    pub nat_interfaces: Vec<ObservedNatInterface>,
    /// Their launch templates (component `nat-launch-template`).
    #[serde(default)]
    pub nat_launch_templates: Vec<ObservedNatLaunchTemplate>,
    /// Their auto-scaling groups of one (component `nat-group`), not being deleted.
    #[serde(default)]
    pub nat_groups: Vec<ObservedNatGroup>,
    /// Their instance profile and role ([`crate::tags::nat_role_name`]), found by name.
    #[serde(default)]
    pub nat_profile: Option<ObservedNatProfile>,
    /// The user's VPC named by `vpc = "vpc-..."`, as the verifier reads it (described by id, no
    /// tags): `None` when the stack builds its own network, or when that VPC was not found.
    #[serde(default)]
    pub existing_network: Option<ObservedExistingNetwork>,
    /// How many of the stack's NAT gateways and instances AWS still lists dead, by slot: the
    /// generation of the slot's next create's client token (`tokens.rs`).
    #[serde(default)]
    pub retired: Retired,
    /// The AWS-managed prefix list (`pl-...`) of each gateway endpoint service the stack lists,
    /// by service (DescribePrefixLists, `com.amazonaws.<region>.s3`): the peer of the egress rule
    /// a restricted `egress` needs to reach that endpoint. Read only when that rule is needed;
    /// empty when not read (offline).
    #[serde(default)]
    pub prefix_lists: BTreeMap<Endpoint, String>,
    /// What the account uses of the VPC quotas a plan consumes, read only when a plan creates
    /// such resources (`planner::quotas`). `None`: not known; nothing is checked.
    #[serde(default)]
    pub quota_usage: Option<crate::planner::quotas::QuotaUsage>,
}

/// The stack's NAT gateways that are `failed`, `deleting` or `deleted`, and its NAT instances that
/// are `shutting-down` or `terminated`, counted by slot. AWS answers a client token used before
/// with the original resource even once it is gone ("A client token is valid for at least 24
/// hours after the termination of the instance": EC2 idempotency guide), so a slot's new NAT gets
/// a token of a new generation for each dead one AWS lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Retired {
    pub nat_gateways: BTreeMap<Slot, u32>,
    pub nat_instances: BTreeMap<Slot, u32>,
    /// The stack's VPC endpoints that are `failed`, `rejected` or `deleted`, by service: an
    /// endpoint's token names the run that makes it, but a run that replaces a failed one makes
    /// it again with the same run's word.
    #[serde(default)]
    pub endpoints: BTreeMap<Endpoint, u32>,
}

/// A VPC fixedip did not build, everything in it that egress depends on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedExistingNetwork {
    pub cidr: Ipv4Net,
    /// `network.vpc_id` is the VPC's id.
    pub network: crate::network::VpcNetwork,
}

impl ObservedState {
    /// Whether nothing of the stack exists in the region: no resource carries its tags (its
    /// functions, found by name, do not count). `ips`, `status` and `verify` refuse such a stack
    /// rather than answer with an empty list that looks like a real one.
    pub fn holds_nothing(&self) -> bool {
        self.vpc.is_none()
            && self.internet_gateway.is_none()
            && self.extra_internet_gateways.is_empty()
            && self.subnets.is_empty()
            && self.addresses.is_empty()
            && self.nat_gateways.is_empty()
            && self.route_tables.is_empty()
            && self.security_group.is_none()
            && self.endpoint_security_group.is_none()
            && self.endpoints.is_empty()
            && self.nat_instances.is_empty()
            && self.nat_security_group.is_none()
            && self.nat_interfaces.is_empty()
            && self.nat_launch_templates.is_empty()
            && self.nat_groups.is_empty()
            && self.nat_profile.is_none()
            && self.role.is_none()
    }

    /// Whether the stack is isolated (`nat = "none"`), as the account shows it: its VPC holds
    /// private subnets and nothing of a way out: no internet gateway, no NAT gateway, no public
    /// subnet, and private route tables with no 0.0.0.0/0 route at all. The account is the
    /// state: `ips`, `status` and `verify` read the mode from here, without the function's
    /// record. A stack of another mode half way through a destroy still has its private route
    /// tables with their (blackhole) routes out; only a first deploy killed before its first
    /// route could look isolated, and that one has no IP yet.
    pub fn looks_isolated(&self) -> bool {
        let private_tables: Vec<&ObservedRouteTable> = self
            .route_tables
            .iter()
            .filter(|t| t.tier == Tier::Private)
            .collect();
        self.vpc.is_some()
            && self.internet_gateway.is_none()
            && self.nat_gateways.is_empty()
            && !self.subnets.is_empty()
            && self.subnets.iter().all(|s| s.tier == Tier::Private)
            && !private_tables.is_empty()
            && private_tables
                .iter()
                .all(|t| t.routes.iter().all(|r| r.destination.prefix_len() != 0))
    }

    /// What planning without AWS assumes (`plan --offline`): an account where the stack does not
    /// exist yet, holding the adopted addresses (their IPs unknown), in a region that offers the
    /// usual AZ names. The real names come from DescribeAvailabilityZones once online.
    pub fn assumed_offline(region: &str, adopted_ips: &[AllocationId]) -> ObservedState {
        // ap-northeast-1b is closed to new accounts; elsewhere a to f covers the 6 AZs `azs` allows.
        let letters: &[char] = match region {
            "ap-northeast-1" => &['a', 'c', 'd'],
            _ => &['a', 'b', 'c', 'd', 'e', 'f'],
        };
        ObservedState {
            offered_azs: letters
                .iter()
                .map(|letter| format!("{region}{letter}"))
                .collect(),
            addresses: adopted_ips
                .iter()
                .map(|id| ObservedAddress {
                    allocation_id: id.to_string(),
                    public_ip: Ipv4Addr::UNSPECIFIED,
                    usage: AddressUse::Retained,
                    slot: None,
                    adopted: true,
                    association_id: None,
                    network_interface_id: None,
                    stale_association: false,
                })
                .collect(),
            ..ObservedState::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedVpc {
    pub id: String,
    pub cidr: Ipv4Net,
    pub dns_support: bool,
    pub dns_hostnames: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedInternetGateway {
    pub id: String,
    /// The VPC it is attached to, if any.
    pub attached_vpc: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedSubnet {
    pub id: String,
    pub tier: Tier,
    pub slot: Slot,
    pub az: String,
    pub cidr: Ipv4Net,
}

/// What the stack's tags say an Elastic IP is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressUse {
    /// Serves the NAT of a slot.
    Active,
    /// Was shown to the user, serves no NAT now, and is kept so that the allowlist stays valid.
    Retained,
    /// Allocated for a slot of a stack whose IPs were shown already, and shown to the user, but
    /// not yet allowed to carry traffic: no NAT uses it until a deploy with `--allow-new-ips`.
    Pending,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedAddress {
    pub allocation_id: String,
    /// `0.0.0.0` ([`Ipv4Addr::UNSPECIFIED`]) when not known: see [`ObservedState::assumed_offline`].
    pub public_ip: Ipv4Addr,
    pub usage: AddressUse,
    /// The slot an active or pending address serves (from its tag).
    pub slot: Option<Slot>,
    /// Named by `ips = [...]`: the user's, never released by fixedip.
    pub adopted: bool,
    /// The association id while the address is associated (with a NAT's network interface).
    pub association_id: Option<String>,
    pub network_interface_id: Option<String>,
    /// The association belongs to a NAT gateway that is `deleted`, nothing live: AWS drops such
    /// an association with the gateway, the emulator keeps it, and refuses the address to a new
    /// NAT while it stands. The planner disassociates it before using the address again.
    #[serde(default)]
    pub stale_association: bool,
}

impl ObservedAddress {
    /// The association that holds the address, unless it is stale.
    pub fn in_use(&self) -> Option<&str> {
        self.association_id
            .as_deref()
            .filter(|_| !self.stale_association)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedNatGateway {
    pub id: String,
    pub subnet_id: String,
    pub allocation_ids: Vec<String>,
    pub state: NatState,
    pub slot: Slot,
}

/// A NAT instance of the stack (`nat = "instance"`): an EC2 instance in a public subnet that
/// forwards and masquerades the private subnets' traffic.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedNatInstance {
    pub id: String,
    pub subnet_id: String,
    pub slot: Slot,
    pub state: InstanceState,
    pub instance_type: String,
    /// Its primary network interface, which its Elastic IP is associated with.
    pub network_interface_id: Option<String>,
    /// Must be off for the instance to forward traffic that is not its own.
    pub source_dest_check: bool,
}

/// A self-healing NAT's fixed network interface, in the slot's public subnet: the slot's Elastic
/// IP stays on it, the private route targets it, and each instance of the slot's group attaches
/// it at boot (device index 1).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedNatInterface {
    pub id: String,
    pub subnet_id: String,
    pub slot: Slot,
    /// Must be off for the instance to forward traffic that is not its own.
    pub source_dest_check: bool,
    /// The instance it is attached to, if any.
    pub attached_instance: Option<String>,
}

/// A self-healing NAT's launch template: the instance type, image, user data and instance
/// profile every instance of the slot's group is launched with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedNatLaunchTemplate {
    pub id: String,
    pub name: String,
    pub slot: Slot,
}

/// A self-healing NAT's auto-scaling group of one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedNatGroup {
    pub name: String,
    pub slot: Slot,
    /// Its instances (normally one; two while a replacement boots).
    pub instances: Vec<ObservedGroupInstance>,
}

/// An instance of a self-healing NAT's group, as the group lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedGroupInstance {
    pub id: String,
    /// Its lifecycle state in the group: `Pending`, `InService`, `Terminating`...
    pub lifecycle: String,
    pub instance_type: String,
}

/// The instance profile of the self-healing NAT instances and the role it holds (one name for
/// both), present when either exists.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedNatProfile {
    pub name: String,
    /// The role exists with its policy, the profile exists and holds the role: a run killed
    /// part way through making them leaves this false, and the next run completes them.
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedRoute {
    pub destination: Ipv4Net,
    pub target: RouteTarget,
    /// `blackhole`: the target is gone.
    pub blackhole: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedRouteTable {
    pub id: String,
    pub tier: Tier,
    /// The slot of a private table; the public table serves every slot.
    pub slot: Option<Slot>,
    /// Its explicit associations with subnets.
    pub associations: Vec<RouteTableAssociation>,
    pub routes: Vec<ObservedRoute>,
}

impl ObservedRouteTable {
    /// Whether the table is explicitly associated with the subnet.
    pub fn serves(&self, subnet_id: &str) -> bool {
        self.associations.iter().any(|a| a.subnet_id == subnet_id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedSecurityGroup {
    pub id: String,
    /// Its egress rules, one peer each (`IpPermissionsEgress` flattened).
    #[serde(default)]
    pub egress: Vec<SecurityGroupRule>,
    /// Its ingress rules, one peer each.
    #[serde(default)]
    pub ingress: Vec<SecurityGroupRule>,
}

impl ObservedSecurityGroup {
    /// A group as AWS creates it: no inbound rule, and the default egress rule (everything out).
    pub fn fresh(id: &str) -> ObservedSecurityGroup {
        ObservedSecurityGroup {
            id: id.to_owned(),
            egress: vec![SecurityGroupRule::ALL_OUT],
            ingress: Vec::new(),
        }
    }
}

/// A VPC endpoint of the stack, found by its tags.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedEndpoint {
    pub id: String,
    pub service: Endpoint,
    pub kind: EndpointKind,
    /// A gateway endpoint serves the private route table of one slot (its tag); an interface
    /// endpoint serves every private subnet and has none.
    pub slot: Option<Slot>,
    /// Gateway endpoints: the route tables AWS routes the service's prefix list in.
    pub route_table_ids: Vec<String>,
    /// Interface endpoints: the subnets holding its network interfaces, one per AZ.
    pub subnet_ids: Vec<String>,
    /// `failed` or `rejected` (VpcEndpoint's `State`): it serves nothing, and is replaced.
    #[serde(default)]
    pub dead: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedRole {
    pub name: String,
    pub arn: String,
    pub attached_policy_arns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObservedFunction {
    pub name: String,
    pub arn: String,
    pub runtime: Option<String>,
    pub architecture: Option<Architecture>,
    pub role_arn: String,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub environment: BTreeMap<String, String>,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    /// Base64 SHA-256 of the deployed zip, as Lambda reports `CodeSha256`.
    pub code_sha256: String,
    /// The stack named by the function's `fixedip:stack` tag, if any.
    pub stack_tag: Option<String>,
    /// Lambda's `State` of it, with its reason.
    #[serde(default)]
    pub state: FunctionState,
    /// `VpcConfig.Ipv6AllowedForDualStack`: in dual-stack subnets, IPv6 traffic would leave from
    /// the function's own address, bypassing the fixed IPs. fixedip always sets it off.
    #[serde(default)]
    pub ipv6_allowed_for_dual_stack: bool,
}

/// Lambda's `State` of a function and `StateReasonCode: StateReason` (Lambda developer guide,
/// function states: "When function creation fails, Lambda sets the function state to failed, and
/// you must delete and recreate the function").
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FunctionState {
    /// `Pending`, `Active`, `Failed`, `Inactive`...; `None` when Lambda did not say.
    pub state: Option<String>,
    pub reason_code: Option<String>,
    pub reason: Option<String>,
}

impl FunctionState {
    /// Lambda could not create it: only deleting and creating it again helps.
    pub fn failed(&self) -> bool {
        self.state.as_deref() == Some("Failed")
    }

    /// It runs (or Lambda did not say otherwise).
    pub fn active(&self) -> bool {
        self.state.as_deref().is_none_or(|s| s == "Active")
    }
}

impl std::fmt::Display for FunctionState {
    /// `Failed (SubnetOutOfIPAddresses: The subnet has no available IP addresses.)`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.state.as_deref().unwrap_or("unknown"))?;
        match (&self.reason_code, &self.reason) {
            (Some(code), Some(reason)) => write!(f, " ({code}: {reason})"),
            (Some(code), None) => write!(f, " ({code})"),
            (None, Some(reason)) => write!(f, " ({reason})"),
            (None, None) => Ok(()),
        }
    }
}
