//! A VPC as AWS describes it: the one model of a network that every reader fills and every judge
//! reads.
//!
//! `cargo-fixedip/src/aws/network.rs` is the only code that turns AWS's Describe answers into these
//! values, whether it reads one VPC (`verify`, a network the user runs) or everything a stack's
//! tags lead to (`deploy`, `plan`, `status`). Nothing here is judged yet: an unknown state, an IPv6
//! or prefix-list route, a deleted NAT gateway, a tag fixedip did not write are all kept as AWS
//! gave them. What they mean is decided by the readers of the model, each by pure functions with
//! tests of their own:
//!
//! - [`crate::observed::stack_view`]: the stack's own resources, by their tags, for the planner;
//! - [`crate::verify`]: whether a function's every egress path leaves through an allowed address;
//! - [`crate::existing`]: which subnets of a network the user runs can carry a function.
//!
//! One parse rule for every reader: a state AWS may add later reads as [`NatGatewayState::Pending`]
//! or [`InstanceState::Pending`] (not usable yet, not gone either: nothing is built beside it and
//! nothing is proven to leave through it).

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use ipnet::{Ipv4Net, Ipv6Net};

/// A resource's tags, by key.
pub type Tags = BTreeMap<String, String>;

/// What Describe calls returned: one VPC and what is in it (read by VPC), or every resource a
/// stack's tags lead to (read by tag; then any number of VPCs, and gateways, addresses and NAT
/// gateways that belong to none any more).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Network {
    pub vpcs: Vec<Vpc>,
    pub subnets: Vec<Subnet>,
    pub route_tables: Vec<RouteTable>,
    pub internet_gateways: Vec<InternetGateway>,
    /// In any state, `deleted` included (AWS lists those for about an hour).
    pub nat_gateways: Vec<NatGateway>,
    /// In any state, `terminated` included.
    pub instances: Vec<Instance>,
    pub addresses: Vec<Address>,
    /// In any state, `deleted` included.
    pub endpoints: Vec<VpcEndpoint>,
    pub security_groups: Vec<SecurityGroup>,
}

/// One VPC, read by its id, and what its egress depends on: its subnets, route tables and NAT
/// gateways, the internet gateways and instances its routes lead to, their Elastic IPs, and the
/// security groups asked for. What `verify` and [`crate::existing`] judge.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VpcNetwork {
    /// Empty when there is no VPC to read (a function outside any).
    pub vpc_id: String,
    pub resources: Network,
}

impl VpcNetwork {
    /// The part of a stack's network (read by its tags) that one VPC's egress depends on: what
    /// reading that VPC by id would give (its subnets, route tables, NAT gateways and endpoints,
    /// the internet gateways and instances its routes lead to, the security groups asked for),
    /// so that a deploy that changed nothing verifies from what it observed instead of reading it
    /// again. `None` when a route leads to an internet gateway or instance the stack's tags do not
    /// reach, or a security group asked for is not the stack's (someone else's): only a read by id
    /// sees those.
    pub fn of_stack(
        stack: &Network,
        vpc_id: &str,
        security_group_ids: &[String],
    ) -> Option<VpcNetwork> {
        let route_tables: Vec<RouteTable> = stack
            .route_tables
            .iter()
            .filter(|t| t.vpc_id == vpc_id)
            .cloned()
            .collect();
        // The gateway attached to the VPC, and below the ones its routes name.
        let mut internet_gateways: Vec<InternetGateway> = (stack.internet_gateways.iter())
            .filter(|g| g.attached_vpc_id() == Some(vpc_id))
            .cloned()
            .collect();
        let mut instances = Vec::new();
        for target in route_tables
            .iter()
            .flat_map(|t| &t.routes)
            .map(|r| &r.target)
        {
            let instance = match target {
                RouteTarget::InternetGateway(id) => {
                    let gateway = stack.internet_gateways.iter().find(|g| g.id == *id)?;
                    if !internet_gateways.contains(gateway) {
                        internet_gateways.push(gateway.clone());
                    }
                    continue;
                }
                RouteTarget::Instance(id) => stack.instances.iter().find(|i| i.id == *id)?,
                RouteTarget::NetworkInterface(id) => {
                    stack.instances.iter().find(|i| i.has_interface(id))?
                }
                _ => continue,
            };
            if !instances.contains(instance) {
                instances.push(instance.clone());
            }
        }
        let security_groups = (security_group_ids.iter())
            .map(|id| stack.security_groups.iter().find(|g| g.id == *id).cloned())
            .collect::<Option<Vec<SecurityGroup>>>()?;
        // The Elastic IPs among those instances' public addresses, as the read by id asks them.
        let addresses = stack
            .addresses
            .iter()
            .filter(|a| {
                a.public_ip
                    .is_some_and(|ip| instances.iter().any(|i| i.public_ips().contains(&ip)))
            })
            .cloned()
            .collect();
        Some(VpcNetwork {
            vpc_id: vpc_id.to_owned(),
            resources: Network {
                subnets: stack
                    .subnets
                    .iter()
                    .filter(|s| s.vpc_id == vpc_id)
                    .cloned()
                    .collect(),
                route_tables,
                internet_gateways,
                nat_gateways: (stack.nat_gateways.iter())
                    .filter(|n| n.vpc_id == vpc_id)
                    .cloned()
                    .collect(),
                instances,
                addresses,
                endpoints: (stack.endpoints.iter())
                    .filter(|e| e.vpc_id == vpc_id)
                    .cloned()
                    .collect(),
                security_groups,
                ..Network::default()
            },
        })
    }
}

impl std::ops::Deref for VpcNetwork {
    type Target = Network;

    fn deref(&self) -> &Network {
        &self.resources
    }
}

impl std::ops::DerefMut for VpcNetwork {
    fn deref_mut(&mut self) -> &mut Network {
        &mut self.resources
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Vpc {
    pub id: String,
    pub cidr: Ipv4Net,
    /// `enableDnsSupport` and `enableDnsHostnames` (DescribeVpcAttribute): `None` when not asked.
    pub dns_support: Option<bool>,
    pub dns_hostnames: Option<bool>,
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Subnet {
    pub id: String,
    pub vpc_id: String,
    /// The zone name, `us-east-1a`.
    pub availability_zone: String,
    pub cidr: Ipv4Net,
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RouteTable {
    pub id: String,
    pub vpc_id: String,
    /// The VPC's main table: it serves every subnet without an explicit association.
    pub main: bool,
    /// Its explicit associations with subnets (the main association names no subnet).
    pub associations: Vec<RouteTableAssociation>,
    pub routes: Vec<Route>,
    pub tags: Tags,
}

impl RouteTable {
    /// The subnets explicitly associated with it.
    pub fn subnet_ids(&self) -> impl Iterator<Item = &str> {
        self.associations.iter().map(|a| a.subnet_id.as_str())
    }

    pub fn serves(&self, subnet_id: &str) -> bool {
        self.subnet_ids().any(|s| s == subnet_id)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RouteTableAssociation {
    /// `rtbassoc-...`.
    pub id: String,
    pub subnet_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Route {
    pub destination: RouteDestination,
    pub target: RouteTarget,
    /// State `blackhole`: the target is gone (deleted NAT, detached gateway, terminated instance).
    pub blackhole: bool,
}

impl Route {
    /// Whether this is the IPv4 default route, 0.0.0.0/0: the one every route table fixedip makes
    /// holds, and the one a private subnet's internet traffic takes.
    pub fn is_default_v4(&self) -> bool {
        matches!(self.destination, RouteDestination::Ipv4(net) if net.prefix_len() == 0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum RouteDestination {
    Ipv4(Ipv4Net),
    Ipv6(Ipv6Net),
    /// A managed prefix list (`pl-...`), as gateway endpoints install.
    PrefixList(String),
}

impl fmt::Display for RouteDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteDestination::Ipv4(net) => net.fmt(f),
            RouteDestination::Ipv6(net) => net.fmt(f),
            RouteDestination::PrefixList(id) => f.write_str(id),
        }
    }
}

/// Where a route sends traffic. `DescribeRouteTables` fills several target fields for a route to
/// an instance (instance and network interface): the reader keeps [`RouteTarget::Instance`] then.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum RouteTarget {
    /// `local`: inside the VPC.
    Local,
    InternetGateway(String),
    EgressOnlyInternetGateway(String),
    NatGateway(String),
    Instance(String),
    /// A network interface; followed by `verify` when it belongs to a NAT instance.
    NetworkInterface(String),
    /// A gateway endpoint (`vpce-`) for S3 or DynamoDB: AWS service traffic, never the internet.
    GatewayEndpoint(String),
    /// Anything fixedip does not make and `verify` cannot follow: virtual private gateway, transit
    /// gateway, peering, carrier gateway, local gateway, core network.
    Other(String),
}

impl RouteTarget {
    /// The target a route's `GatewayId` names: `local`, `igw-`, `vpce-` or a `vgw-`.
    pub fn from_gateway_id(id: &str) -> RouteTarget {
        if id == "local" {
            RouteTarget::Local
        } else if id.starts_with("igw-") {
            RouteTarget::InternetGateway(id.to_owned())
        } else if id.starts_with("vpce-") {
            RouteTarget::GatewayEndpoint(id.to_owned())
        } else {
            RouteTarget::Other(id.to_owned())
        }
    }

    /// The target's id, `local` for the VPC itself.
    pub fn id(&self) -> &str {
        match self {
            RouteTarget::Local => "local",
            RouteTarget::InternetGateway(id)
            | RouteTarget::EgressOnlyInternetGateway(id)
            | RouteTarget::NatGateway(id)
            | RouteTarget::Instance(id)
            | RouteTarget::NetworkInterface(id)
            | RouteTarget::GatewayEndpoint(id)
            | RouteTarget::Other(id) => id,
        }
    }
}

impl fmt::Display for RouteTarget {
    /// What the route leads to, as a person reads it: "NAT gateway nat-1", "local"; the bare id
    /// for what fixedip never makes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteTarget::Local => f.write_str("local"),
            RouteTarget::InternetGateway(id) => write!(f, "internet gateway {id}"),
            RouteTarget::NatGateway(id) => write!(f, "NAT gateway {id}"),
            RouteTarget::Instance(id) => write!(f, "instance {id}"),
            other => f.write_str(other.id()),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InternetGateway {
    pub id: String,
    pub attachments: Vec<GatewayAttachment>,
    pub tags: Tags,
}

impl InternetGateway {
    /// The VPC of its attachment in state `available` (AWS's word for attached), if any:
    /// `attaching` and `detaching` carry nothing.
    pub fn attached_vpc_id(&self) -> Option<&str> {
        self.attachments
            .iter()
            .find(|a| a.state == "available")
            .map(|a| a.vpc_id.as_str())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GatewayAttachment {
    pub vpc_id: String,
    /// As AWS writes it: `attaching`, `available`, `detaching`, `detached`.
    pub state: String,
}

/// The life of a NAT gateway, as `DescribeNatGateways` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NatGatewayState {
    Pending,
    Available,
    Deleting,
    Deleted,
    Failed,
}

impl NatGatewayState {
    const ALL: [NatGatewayState; 5] = [
        NatGatewayState::Pending,
        NatGatewayState::Available,
        NatGatewayState::Deleting,
        NatGatewayState::Deleted,
        NatGatewayState::Failed,
    ];

    /// The state as `DescribeNatGateways` names it; a name AWS adds later reads as `Pending`.
    pub fn from_aws(name: &str) -> NatGatewayState {
        Self::ALL
            .into_iter()
            .find(|state| state.aws_name() == name)
            .unwrap_or(NatGatewayState::Pending)
    }

    pub fn aws_name(self) -> &'static str {
        match self {
            NatGatewayState::Pending => "pending",
            NatGatewayState::Available => "available",
            NatGatewayState::Deleting => "deleting",
            NatGatewayState::Deleted => "deleted",
            NatGatewayState::Failed => "failed",
        }
    }
}

impl fmt::Display for NatGatewayState {
    /// As AWS writes the state.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.aws_name())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NatConnectivity {
    #[default]
    Public,
    /// Translates to private addresses only: reaches other networks, never the internet.
    Private,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NatGateway {
    pub id: String,
    pub vpc_id: String,
    pub subnet_id: String,
    pub state: NatGatewayState,
    pub connectivity: NatConnectivity,
    /// `FailureMessage`, shown in the fix of a failed gateway.
    pub failure_message: Option<String>,
    /// Every address the gateway translates to (primary and secondary).
    pub addresses: Vec<NatAddress>,
    pub tags: Tags,
}

impl NatGateway {
    /// The Elastic IPs it holds, by allocation id.
    pub fn allocation_ids(&self) -> impl Iterator<Item = &str> {
        self.addresses
            .iter()
            .filter_map(|a| a.allocation_id.as_deref())
    }

    pub fn holds(&self, allocation_id: &str) -> bool {
        self.allocation_ids().any(|id| id == allocation_id)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NatAddress {
    pub allocation_id: Option<String>,
    pub public_ip: Option<Ipv4Addr>,
}

/// The life of an EC2 instance, as `DescribeInstances` names it (`State.Name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
}

impl InstanceState {
    const ALL: [InstanceState; 6] = [
        InstanceState::Pending,
        InstanceState::Running,
        InstanceState::Stopping,
        InstanceState::Stopped,
        InstanceState::ShuttingDown,
        InstanceState::Terminated,
    ];

    /// The state as `DescribeInstances` names it; a name AWS adds later reads as `Pending`.
    pub fn from_aws(name: &str) -> InstanceState {
        Self::ALL
            .into_iter()
            .find(|state| state.aws_name() == name)
            .unwrap_or(InstanceState::Pending)
    }

    pub fn aws_name(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
        }
    }

    /// Whether the instance is, or will be, there to forward traffic (a stopped one can be
    /// started again; one shutting down cannot).
    pub fn is_live(self) -> bool {
        !matches!(
            self,
            InstanceState::ShuttingDown | InstanceState::Terminated
        )
    }
}

/// An EC2 instance: what a NAT instance needs to forward traffic, and where it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Instance {
    pub id: String,
    pub vpc_id: String,
    pub subnet_id: String,
    pub state: InstanceState,
    /// `t4g.nano`, as AWS names it.
    pub instance_type: String,
    /// Must be off for the instance to forward traffic that is not its own (AWS's default: on).
    pub source_dest_check: bool,
    /// Its network interfaces, the primary one (device index 0) first when AWS says which.
    pub network_interfaces: Vec<InstanceInterface>,
    /// The public address of its primary network interface, if any.
    pub public_ip: Option<Ipv4Addr>,
    pub tags: Tags,
    /// What its console says of fixedip's boot ([`crate::nat_boot`]): read for fixedip's own
    /// running NAT instances by `status` and `verify`; `None` when not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<crate::nat_boot::Readiness>,
}

impl Instance {
    /// Its primary network interface (device index 0), which its Elastic IP is associated with.
    pub fn primary_interface(&self) -> Option<&str> {
        self.network_interfaces
            .iter()
            .find(|n| n.device_index == Some(0))
            .map(|n| n.id.as_str())
    }

    /// Its public addresses: the primary interface's, and any other interface's.
    pub fn public_ips(&self) -> Vec<Ipv4Addr> {
        self.public_ip
            .into_iter()
            .chain(self.network_interfaces.iter().filter_map(|n| n.public_ip))
            .collect()
    }

    pub fn has_interface(&self, id: &str) -> bool {
        self.network_interfaces.iter().any(|n| n.id == id)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InstanceInterface {
    pub id: String,
    pub device_index: Option<i32>,
    /// Its own source/destination check (a secondary interface's may differ from the
    /// instance's, which is the primary's); `None` when AWS did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_dest_check: Option<bool>,
    /// Its public address, if any (a self-healing NAT's fixed interface holds the Elastic IP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<Ipv4Addr>,
}

/// An Elastic IP of the account.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Address {
    pub allocation_id: String,
    pub public_ip: Option<Ipv4Addr>,
    /// While the address is associated (with a NAT gateway's or an instance's network
    /// interface).
    pub association_id: Option<String>,
    pub network_interface_id: Option<String>,
    pub instance_id: Option<String>,
    pub tags: Tags,
}

/// The kind of a VPC endpoint, as `VpcEndpointType` names it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointType {
    Gateway,
    Interface,
    /// `GatewayLoadBalancer`, `Resource`, `ServiceNetwork`...: none fixedip makes.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VpcEndpoint {
    pub id: String,
    pub vpc_id: String,
    /// `com.amazonaws.us-east-1.s3`.
    pub service_name: String,
    pub endpoint_type: EndpointType,
    /// In lower case, as AWS writes it (`available`, `deleting`, `deleted`...); the SDK's enum
    /// spells some in capitals.
    pub state: String,
    /// Gateway endpoints: the route tables AWS routes the service's prefix list in.
    pub route_table_ids: Vec<String>,
    /// Interface endpoints: the subnets holding its network interfaces, one per AZ.
    pub subnet_ids: Vec<String>,
    pub tags: Tags,
}

/// Whether a VPC endpoint in `state` (VpcEndpoint's `State`, any case) serves nothing and never
/// will: `failed` or `rejected`. The observation marks such an endpoint for replacement, and a
/// wait for a new endpoint to be available stops at it.
pub fn endpoint_state_is_dead(state: &str) -> bool {
    ["failed", "rejected"]
        .iter()
        .any(|dead| state.eq_ignore_ascii_case(dead))
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SecurityGroup {
    pub id: String,
    pub vpc_id: String,
    /// Its inbound rules, one peer each.
    pub ingress: Vec<SecurityGroupRule>,
    /// Its outbound rules, one peer each.
    pub egress: Vec<SecurityGroupRule>,
    pub tags: Tags,
}

/// One rule of a security group, for one peer. AWS groups rules with the same protocol and ports
/// into one `IpPermission` with several ranges; the reader flattens them, so that a diff is a set
/// difference.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct SecurityGroupRule {
    pub protocol: RuleProtocol,
    /// The port range of a TCP or UDP rule; `None` for every protocol (`-1`).
    pub ports: Option<(u16, u16)>,
    pub peer: RulePeer,
}

impl SecurityGroupRule {
    /// The rule a new group starts with: every protocol to 0.0.0.0/0.
    pub const ALL_OUT: SecurityGroupRule = SecurityGroupRule {
        protocol: RuleProtocol::All,
        ports: None,
        peer: RulePeer::Ipv4(Ipv4Net::new_assert(Ipv4Addr::UNSPECIFIED, 0)),
    };

    /// The IPv6 rule a new group also starts with in a VPC that has an IPv6 block: every
    /// protocol to ::/0 (VPC User Guide, "Security group rules": default outbound rules).
    pub fn all_out_v6() -> SecurityGroupRule {
        SecurityGroupRule {
            protocol: RuleProtocol::All,
            ports: None,
            peer: RulePeer::Ipv6("::/0".to_owned()),
        }
    }
}

impl fmt::Display for SecurityGroupRule {
    /// `tcp 443 to 0.0.0.0/0`, `all to 0.0.0.0/0`, `tcp 443 from sg-1` reads the same either way.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.protocol, self.ports) {
            (RuleProtocol::All, _) => f.write_str("all traffic")?,
            (protocol, Some((from, to))) if from == to => write!(f, "{protocol} {from}")?,
            (protocol, Some((from, to))) => write!(f, "{protocol} {from}-{to}")?,
            (protocol, None) => write!(f, "{protocol}")?,
        }
        match &self.peer {
            RulePeer::Ipv4(net) => write!(f, " to {net}"),
            RulePeer::Ipv6(net) => write!(f, " to {net}"),
            RulePeer::SecurityGroup(id) => write!(f, " to/from {id}"),
            RulePeer::PrefixList(id) => write!(f, " to {id}"),
        }
    }
}

/// The protocol of a security group rule, as EC2 names it in `IpProtocol`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RuleProtocol {
    /// `-1`: every protocol and port.
    All,
    Tcp,
    Udp,
    /// ICMP or any other protocol, by the name or number AWS gives.
    Other(String),
}

impl RuleProtocol {
    /// From `IpProtocol`: a name or a number, `-1` for all.
    pub fn from_aws(protocol: &str) -> RuleProtocol {
        match protocol {
            "-1" | "all" => RuleProtocol::All,
            "tcp" | "6" => RuleProtocol::Tcp,
            "udp" | "17" => RuleProtocol::Udp,
            other => RuleProtocol::Other(other.to_owned()),
        }
    }

    /// As EC2 takes it in `IpProtocol`.
    pub fn as_aws(&self) -> &str {
        match self {
            RuleProtocol::All => "-1",
            RuleProtocol::Tcp => "tcp",
            RuleProtocol::Udp => "udp",
            RuleProtocol::Other(other) => other,
        }
    }
}

impl fmt::Display for RuleProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleProtocol::All => f.write_str("all"),
            other => f.write_str(other.as_aws()),
        }
    }
}

/// The other side of a security group rule.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum RulePeer {
    Ipv4(Ipv4Net),
    /// An IPv6 range, as written by AWS (fixedip never makes one).
    Ipv6(String),
    SecurityGroup(String),
    PrefixList(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(vpc: &str, target: RouteTarget) -> RouteTable {
        RouteTable {
            id: format!("rtb-{vpc}"),
            vpc_id: vpc.to_owned(),
            routes: vec![Route {
                destination: RouteDestination::Ipv4("0.0.0.0/0".parse().unwrap()),
                target,
                blackhole: false,
            }],
            ..RouteTable::default()
        }
    }

    #[test]
    fn a_stack_s_network_gives_one_vpc_s_unless_a_route_leaves_the_stack_s_tags() {
        let gateway = InternetGateway {
            id: "igw-1".into(),
            ..InternetGateway::default()
        };
        let stack = Network {
            route_tables: vec![
                table("vpc-1", RouteTarget::InternetGateway("igw-1".into())),
                table("vpc-2", RouteTarget::NatGateway("nat-2".into())),
            ],
            internet_gateways: vec![gateway.clone()],
            security_groups: vec![SecurityGroup {
                id: "sg-1".into(),
                ..SecurityGroup::default()
            }],
            ..Network::default()
        };
        let one = VpcNetwork::of_stack(&stack, "vpc-1", &["sg-1".into()]).unwrap();
        assert_eq!(one.route_tables.len(), 1, "only the VPC's tables");
        assert_eq!(
            one.internet_gateways,
            [gateway],
            "the gateway its route names"
        );
        assert_eq!(one.security_groups.len(), 1);

        // Someone else's group, or a route to a gateway the tags do not reach: read by id.
        assert!(VpcNetwork::of_stack(&stack, "vpc-1", &["sg-other".into()]).is_none());
        let mut elsewhere = stack.clone();
        elsewhere.internet_gateways.clear();
        assert!(VpcNetwork::of_stack(&elsewhere, "vpc-1", &[]).is_none());
    }

    #[test]
    fn states_read_from_their_aws_names_and_a_new_one_reads_as_pending() {
        for state in NatGatewayState::ALL {
            assert_eq!(NatGatewayState::from_aws(state.aws_name()), state);
        }
        assert_eq!(
            NatGatewayState::from_aws("hibernating"),
            NatGatewayState::Pending
        );
        for state in InstanceState::ALL {
            assert_eq!(InstanceState::from_aws(state.aws_name()), state);
        }
        assert_eq!(InstanceState::from_aws("rebooting"), InstanceState::Pending);
        assert_eq!(
            serde_json::to_string(&InstanceState::ShuttingDown).unwrap(),
            "\"shutting-down\""
        );
    }

    #[test]
    fn gateway_ids_name_their_kind() {
        assert_eq!(RouteTarget::from_gateway_id("local"), RouteTarget::Local);
        assert_eq!(
            RouteTarget::from_gateway_id("igw-1"),
            RouteTarget::InternetGateway("igw-1".into())
        );
        assert_eq!(
            RouteTarget::from_gateway_id("vpce-1"),
            RouteTarget::GatewayEndpoint("vpce-1".into())
        );
        assert_eq!(
            RouteTarget::from_gateway_id("vgw-1"),
            RouteTarget::Other("vgw-1".into())
        );
        assert_eq!(
            RouteTarget::NatGateway("nat-1".into()).to_string(),
            "NAT gateway nat-1"
        );
        assert_eq!(RouteTarget::Other("pcx-1".into()).to_string(), "pcx-1");
    }

    #[test]
    fn an_internet_gateway_is_attached_only_in_state_available() {
        let gateway = |state: &str| InternetGateway {
            id: "igw-1".into(),
            attachments: vec![GatewayAttachment {
                vpc_id: "vpc-1".into(),
                state: state.into(),
            }],
            tags: Tags::new(),
        };
        assert_eq!(gateway("available").attached_vpc_id(), Some("vpc-1"));
        assert_eq!(gateway("detaching").attached_vpc_id(), None);
    }

    #[test]
    fn rules_read_as_people_write_them() {
        let rule = SecurityGroupRule {
            protocol: RuleProtocol::from_aws("6"),
            ports: Some((443, 443)),
            peer: RulePeer::Ipv4("0.0.0.0/0".parse().unwrap()),
        };
        assert_eq!(rule.to_string(), "tcp 443 to 0.0.0.0/0");
        assert_eq!(
            SecurityGroupRule::ALL_OUT.to_string(),
            "all traffic to 0.0.0.0/0"
        );
    }
}
