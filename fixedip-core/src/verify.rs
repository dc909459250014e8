//! The egress verifier: proves guarantee 2 ("every egress path is accounted for") from the live
//! configuration of a VPC, fixedip's or anyone else's.
//!
//! The input is what `DescribeSubnets`, `DescribeRouteTables`, `DescribeInternetGateways`,
//! `DescribeNatGateways`, `DescribeInstances` and `DescribeSecurityGroups` return for one VPC, and the
//! function's `VpcConfig`; [`check`] is pure, so every rule is tested with plain values.
//!
//! For every subnet the function runs in, the verifier resolves its route table (the explicit
//! association, else the VPC's main table) and follows every route that can carry internet traffic
//! (0.0.0.0/0, any more specific prefix that is not private address space, a prefix list that is not
//! a gateway endpoint's, and `::/0` or any global IPv6 prefix when the function allows dual stack) to
//! where it really leaves. A path passes when it leaves through a NAT gateway that is `available`, has
//! public connectivity, sits in a subnet whose own route table sends 0.0.0.0/0 to an internet gateway
//! attached to the VPC, and whose Elastic IPs are all in the allowed list; or through a NAT instance
//! that is running, has its source/destination check off, sits in such a subnet and has an Elastic IP
//! in the list.
//!
//! # Rules
//!
//! | Code                                | Severity | When                                                                                   |
//! |-------------------------------------|----------|----------------------------------------------------------------------------------------|
//! | `function-not-in-vpc`               | error    | the function has no subnets: it leaves from AWS-owned addresses                        |
//! | `function-in-public-subnet`         | error    | the subnet routes 0.0.0.0/0 straight to an internet gateway                            |
//! | `missing-default-route`             | error    | the subnet's route table has no 0.0.0.0/0 route                                        |
//! | `blackhole-route`                   | error    | an internet route's target is gone                                                     |
//! | `route-bypasses-nat`                | error    | a public prefix goes to an internet gateway, or 0.0.0.0/0 to something not a NAT       |
//! | `route-bypasses-nat`                | warning  | a public prefix goes to a peering, VPN, transit gateway or appliance verify can't follow |
//! | `ipv6-bypasses-nat`                 | error    | dual stack: a global IPv6 prefix goes to an (egress-only) internet gateway             |
//! | `nat-gateway-pending`               | error    | the NAT gateway is still being created: nothing leaves yet                             |
//! | `nat-gateway-failed`                | error    | the NAT gateway failed to create                                                       |
//! | `nat-gateway-deleted`               | error    | the NAT gateway is deleting or deleted                                                 |
//! | `private-nat-gateway`               | error    | the NAT gateway has private connectivity: it never reaches the internet               |
//! | `nat-subnet-without-igw-route`      | error    | the NAT's subnet does not route 0.0.0.0/0 to an internet gateway                       |
//! | `internet-gateway-not-attached`     | error    | the NAT's subnet routes to an internet gateway that is not attached to the VPC         |
//! | `nat-address-not-allowed`           | error    | the NAT leaves from an address that is not in the allowed list                         |
//! | `nat-instance-not-running`          | error    | the NAT instance is stopped, stopping, pending or terminated                           |
//! | `nat-instance-source-dest-check`    | error    | the NAT instance drops forwarded traffic: its source/destination check is on           |
//! | `nat-instance-no-elastic-ip`        | error    | the NAT instance has no public address, or one that changes on stop/start              |
//! | `nat-in-other-az`                   | warning  | the subnet's NAT is in another AZ: an outage there cuts this AZ off, and data costs    |
//! | `egress-blocked-by-security-groups` | error    | no security group of the function allows TCP out to any public address                 |
//! | `route-out-in-isolated-mode`        | error    | isolated mode only: a route can carry traffic out of the VPC                           |
//! | `security-group-egress-differs`     | error    | the functions' group lets out other than `egress = [...]` declares ([`check_declared_egress`]) |
//! | `resource-not-observed`             | error    | a subnet, route table, NAT or security group the path needs was not in the input       |
//!
//! In the isolated mode ([`check_isolated`], for `nat = "none"`), no route out at all is the pass
//! condition: routes to gateway endpoints (S3, DynamoDB) and `local` are fine, anything else that can
//! carry internet traffic is a finding.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use crate::observed::SecurityGroupRule;

// ---------------------------------------------------------------------------------------------------
// The input: one VPC as the Describe* calls show it.
// ---------------------------------------------------------------------------------------------------

/// One VPC and everything in it that egress depends on. Every collection holds only this VPC's
/// resources (`Describe*` filtered by `vpc-id`), except `internet_gateways`, which may hold any the
/// route tables name.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EgressNetwork {
    pub vpc_id: String,
    pub subnets: Vec<Subnet>,
    pub route_tables: Vec<RouteTable>,
    pub internet_gateways: Vec<InternetGateway>,
    pub nat_gateways: Vec<NatGateway>,
    /// The instances routes point at (NAT instances); others may be left out.
    pub instances: Vec<NatInstance>,
    pub security_groups: Vec<SecurityGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Subnet {
    pub id: String,
    /// The zone name, `us-east-1a`.
    pub availability_zone: String,
    pub cidr: Ipv4Net,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RouteTable {
    pub id: String,
    /// The VPC's main table: it serves every subnet without an explicit association.
    pub main: bool,
    /// The subnets explicitly associated with it.
    pub subnet_ids: Vec<String>,
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Route {
    pub destination: RouteDestination,
    pub target: RouteTarget,
    /// State `blackhole`: the target is gone (deleted NAT, detached gateway, terminated instance).
    pub blackhole: bool,
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

/// Where a route sends traffic. `DescribeRouteTables` fills several target fields for a route to an
/// instance (instance and network interface): prefer [`RouteTarget::Instance`] then.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum RouteTarget {
    /// `local`: inside the VPC.
    Local,
    InternetGateway(String),
    EgressOnlyInternetGateway(String),
    NatGateway(String),
    Instance(String),
    /// A network interface; followed when it belongs to a NAT instance in the input.
    NetworkInterface(String),
    /// A gateway endpoint (`vpce-`) for S3 or DynamoDB: AWS service traffic, never the internet.
    GatewayEndpoint(String),
    /// Anything verify cannot follow: virtual private gateway, transit gateway, peering, carrier
    /// gateway, local gateway, core network.
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

    fn id(&self) -> &str {
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

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InternetGateway {
    pub id: String,
    /// The VPC of its attachment in state `available` (AWS's word for attached), if any.
    pub attached_vpc_id: Option<String>,
}

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
    /// The state as `DescribeNatGateways` names it; `None` for a name AWS may add later.
    pub fn from_aws(name: &str) -> Option<NatGatewayState> {
        Some(match name {
            "pending" => NatGatewayState::Pending,
            "available" => NatGatewayState::Available,
            "deleting" => NatGatewayState::Deleting,
            "deleted" => NatGatewayState::Deleted,
            "failed" => NatGatewayState::Failed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NatConnectivity {
    Public,
    /// Translates to private addresses only: reaches other networks, never the internet.
    Private,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NatGateway {
    pub id: String,
    pub subnet_id: String,
    pub state: NatGatewayState,
    pub connectivity: NatConnectivity,
    /// `FailureMessage`, shown in the fix of a failed gateway.
    pub failure_message: Option<String>,
    /// Every address the gateway translates to (primary and secondary).
    pub addresses: Vec<NatAddress>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NatAddress {
    pub allocation_id: Option<String>,
    pub public_ip: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
}

impl InstanceState {
    const ALL: [InstanceState; 6] = [
        InstanceState::Pending,
        InstanceState::Running,
        InstanceState::ShuttingDown,
        InstanceState::Terminated,
        InstanceState::Stopping,
        InstanceState::Stopped,
    ];

    /// The state as `DescribeInstances` names it (`State.Name`); `None` for a name AWS may add later.
    pub fn from_aws(name: &str) -> Option<InstanceState> {
        Self::ALL.into_iter().find(|state| state.aws_name() == name)
    }

    pub fn aws_name(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
        }
    }
}

/// An EC2 instance a route points at, expected to work as a NAT.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NatInstance {
    pub id: String,
    pub subnet_id: String,
    pub state: InstanceState,
    pub source_dest_check: bool,
    /// Its network interfaces, so that a route to one of them leads here.
    pub network_interface_ids: Vec<String>,
    /// The public address of its primary network interface, if any.
    pub public_address: Option<InstancePublicAddress>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InstancePublicAddress {
    pub ip: Ipv4Addr,
    /// An Elastic IP (the association's `IpOwnerId` is an account), not an address AWS assigned
    /// at launch and takes back at the next stop.
    pub elastic: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SecurityGroup {
    pub id: String,
    pub egress: Vec<EgressRule>,
}

/// One egress permission for one destination (`IpPermissionsEgress` flattened: one rule per range).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EgressRule {
    pub protocol: IpProtocol,
    pub destination: RuleDestination,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpProtocol {
    /// `-1`: every protocol and port.
    All,
    Tcp,
    Udp,
    Icmp,
    Other(String),
}

impl IpProtocol {
    /// The protocol of an `IpProtocol` field: a name or a number, `-1` for all.
    pub fn from_aws(protocol: &str) -> IpProtocol {
        match protocol {
            "-1" | "all" => IpProtocol::All,
            "tcp" | "6" => IpProtocol::Tcp,
            "udp" | "17" => IpProtocol::Udp,
            "icmp" | "1" => IpProtocol::Icmp,
            other => IpProtocol::Other(other.to_owned()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum RuleDestination {
    Ipv4(Ipv4Net),
    Ipv6(Ipv6Net),
    PrefixList(String),
    SecurityGroup(String),
}

/// A function's `VpcConfig`, as `GetFunctionConfiguration` returns it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FunctionAttachment {
    pub name: String,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    /// `Ipv6AllowedForDualStack`: the function gets IPv6 addresses and may use IPv6 routes.
    pub ipv6_allowed_for_dual_stack: bool,
}

// ---------------------------------------------------------------------------------------------------
// The output.
// ---------------------------------------------------------------------------------------------------

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The guarantee is broken, or cannot be proven.
    Error,
    /// The guarantee holds, but the network is fragile or costly.
    Warning,
}

/// What is wrong, as a stable machine-readable code. See the module's table.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum FindingCode {
    FunctionNotInVpc,
    FunctionInPublicSubnet,
    MissingDefaultRoute,
    BlackholeRoute,
    RouteBypassesNat,
    Ipv6BypassesNat,
    NatGatewayPending,
    NatGatewayFailed,
    NatGatewayDeleted,
    PrivateNatGateway,
    NatSubnetWithoutIgwRoute,
    InternetGatewayNotAttached,
    NatAddressNotAllowed,
    NatInstanceNotRunning,
    NatInstanceSourceDestCheck,
    NatInstanceNoElasticIp,
    NatInOtherAz,
    EgressBlockedBySecurityGroups,
    RouteOutInIsolatedMode,
    SecurityGroupEgressDiffers,
    ResourceNotObserved,
}

impl FindingCode {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingCode::FunctionNotInVpc => "function-not-in-vpc",
            FindingCode::FunctionInPublicSubnet => "function-in-public-subnet",
            FindingCode::MissingDefaultRoute => "missing-default-route",
            FindingCode::BlackholeRoute => "blackhole-route",
            FindingCode::RouteBypassesNat => "route-bypasses-nat",
            FindingCode::Ipv6BypassesNat => "ipv6-bypasses-nat",
            FindingCode::NatGatewayPending => "nat-gateway-pending",
            FindingCode::NatGatewayFailed => "nat-gateway-failed",
            FindingCode::NatGatewayDeleted => "nat-gateway-deleted",
            FindingCode::PrivateNatGateway => "private-nat-gateway",
            FindingCode::NatSubnetWithoutIgwRoute => "nat-subnet-without-igw-route",
            FindingCode::InternetGatewayNotAttached => "internet-gateway-not-attached",
            FindingCode::NatAddressNotAllowed => "nat-address-not-allowed",
            FindingCode::NatInstanceNotRunning => "nat-instance-not-running",
            FindingCode::NatInstanceSourceDestCheck => "nat-instance-source-dest-check",
            FindingCode::NatInstanceNoElasticIp => "nat-instance-no-elastic-ip",
            FindingCode::NatInOtherAz => "nat-in-other-az",
            FindingCode::EgressBlockedBySecurityGroups => "egress-blocked-by-security-groups",
            FindingCode::RouteOutInIsolatedMode => "route-out-in-isolated-mode",
            FindingCode::SecurityGroupEgressDiffers => "security-group-egress-differs",
            FindingCode::ResourceNotObserved => "resource-not-observed",
        }
    }
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing that breaks (error) or weakens (warning) the egress guarantee.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Finding {
    pub code: FindingCode,
    pub severity: Severity,
    /// The resource to change: a subnet, route table, NAT gateway, instance, internet gateway, the
    /// function, or its security groups (their ids joined by commas).
    pub resource: String,
    /// What is wrong, naming the path: "subnet-1 (us-east-1a) sends 0.0.0.0/0 to ...".
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl Finding {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{severity}[{}] {}: {}\n  fix: {}",
            self.code, self.resource, self.problem, self.fix
        )
    }
}

/// True when no finding is an error: every egress path is proven (warnings may remain).
pub fn passes(findings: &[Finding]) -> bool {
    !findings.iter().any(Finding::is_error)
}

// ---------------------------------------------------------------------------------------------------
// The checks.
// ---------------------------------------------------------------------------------------------------

/// Proves that every internet route of every subnet `function` runs in leaves through a NAT whose
/// addresses are all in `allowed`, and that its security groups let traffic out. No finding: proven.
pub fn check(
    network: &EgressNetwork,
    function: &FunctionAttachment,
    allowed: &[Ipv4Addr],
) -> Vec<Finding> {
    Audit::new(network, function, Expectation::ThroughNat { allowed }).run()
}

/// The isolated mode (`nat = "none"`): proves that no subnet `function` runs in has any route out of
/// the VPC. Routes to gateway endpoints and `local` routes are fine.
pub fn check_isolated(network: &EgressNetwork, function: &FunctionAttachment) -> Vec<Finding> {
    Audit::new(network, function, Expectation::Isolated).run()
}

/// Where one subnet's internet traffic leaves: the NATs' addresses, found by the same rules as
/// [`check`], and what breaks the path. For a network fixedip did not build (`vpc = "vpc-..."`),
/// where the addresses are the NATs' and not a list fixedip keeps: see [`crate::existing`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetEgress {
    /// Errors mean the subnet's egress is not proven; warnings (a NAT in another AZ) do not.
    pub findings: Vec<Finding>,
    /// Every address a NAT on the subnet's paths leaves from.
    pub exits: Vec<EgressExit>,
}

/// One address traffic leaves from, and the NAT (gateway or instance) that holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct EgressExit {
    pub nat: String,
    pub ip: Ipv4Addr,
    /// The Elastic IP's allocation id, when the NAT gateway reports it.
    pub allocation_id: Option<String>,
}

/// Follows every internet route of one subnet, as [`check`] does for a function in it (no security
/// group is judged: the function's own comes later), accepting any Elastic IP and recording it.
pub fn subnet_egress(network: &EgressNetwork, subnet_id: &str) -> SubnetEgress {
    let probe = FunctionAttachment {
        name: subnet_id.to_owned(),
        subnet_ids: vec![subnet_id.to_owned()],
        security_group_ids: Vec::new(),
        ipv6_allowed_for_dual_stack: false,
    };
    let (findings, mut exits) = Audit::new(network, &probe, Expectation::AnyAddress).audit();
    exits.sort();
    exits.dedup();
    SubnetEgress { findings, exits }
}

/// Proves that the stack's security group lets out exactly what the function declares: `declared` is
/// [`crate::planner::desired_egress`] of its `egress = [...]` (everything to 0.0.0.0/0 when it
/// declares none). A rule added or removed by hand is a finding, naming each.
pub fn check_declared_egress(
    group_id: &str,
    have: &[SecurityGroupRule],
    declared: &[SecurityGroupRule],
) -> Vec<Finding> {
    let missing: Vec<String> = declared
        .iter()
        .filter(|rule| !have.contains(rule))
        .map(ToString::to_string)
        .collect();
    let extra: Vec<String> = have
        .iter()
        .filter(|rule| !declared.contains(rule))
        .map(ToString::to_string)
        .collect();
    if missing.is_empty() && extra.is_empty() {
        return Vec::new();
    }
    let mut differences = Vec::new();
    if !extra.is_empty() {
        differences.push(format!("it also lets out {}", extra.join(", ")));
    }
    if !missing.is_empty() {
        differences.push(format!("it does not let out {}", missing.join(", ")));
    }
    vec![Finding {
        code: FindingCode::SecurityGroupEgressDiffers,
        severity: Severity::Error,
        resource: group_id.to_owned(),
        problem: format!(
            "the functions' security group {group_id} differs from the declared egress: {}",
            differences.join("; ")
        ),
        fix: "run `cargo fixedip deploy`: it sets the group's egress to exactly the declared rules (or change `egress = [...]` to what the function needs)".to_owned(),
    }]
}

#[derive(Clone, Copy)]
enum Expectation<'a> {
    ThroughNat {
        allowed: &'a [Ipv4Addr],
    },
    Isolated,
    /// Through NATs with Elastic IPs, whichever they are: [`subnet_egress`].
    AnyAddress,
}

/// IPv4 space that never reaches the internet (RFC 6890's non-global blocks). A route whose
/// destination lies wholly inside one of them carries no internet traffic.
const NON_PUBLIC_V4: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),
    (Ipv4Addr::new(10, 0, 0, 0), 8),
    (Ipv4Addr::new(100, 64, 0, 0), 10),
    (Ipv4Addr::new(127, 0, 0, 0), 8),
    (Ipv4Addr::new(169, 254, 0, 0), 16),
    (Ipv4Addr::new(172, 16, 0, 0), 12),
    (Ipv4Addr::new(192, 0, 0, 0), 24),
    (Ipv4Addr::new(192, 168, 0, 0), 16),
    (Ipv4Addr::new(198, 18, 0, 0), 15),
    (Ipv4Addr::new(224, 0, 0, 0), 4),
    (Ipv4Addr::new(240, 0, 0, 0), 4),
];

/// IPv6 space that never reaches the internet: unique local, link local, multicast, loopback.
const NON_PUBLIC_V6: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1), 128),
];

fn is_public_v4(net: &Ipv4Net) -> bool {
    !NON_PUBLIC_V4
        .iter()
        .any(|&(addr, len)| Ipv4Net::new(addr, len).is_ok_and(|private| private.contains(net)))
}

fn is_public_v6(net: &Ipv6Net) -> bool {
    !NON_PUBLIC_V6
        .iter()
        .any(|&(addr, len)| Ipv6Net::new(addr, len).is_ok_and(|private| private.contains(net)))
}

fn is_default_v4(destination: &RouteDestination) -> bool {
    matches!(destination, RouteDestination::Ipv4(net) if net.prefix_len() == 0)
}

/// One run of the rules over one function; collects findings in path order.
struct Audit<'a> {
    network: &'a EgressNetwork,
    function: &'a FunctionAttachment,
    expectation: Expectation<'a>,
    findings: Vec<Finding>,
    /// The addresses the paths leave from (recorded under [`Expectation::AnyAddress`]).
    exits: Vec<EgressExit>,
}

impl<'a> Audit<'a> {
    fn new(
        network: &'a EgressNetwork,
        function: &'a FunctionAttachment,
        expectation: Expectation<'a>,
    ) -> Self {
        Audit {
            network,
            function,
            expectation,
            findings: Vec::new(),
            exits: Vec::new(),
        }
    }

    fn run(self) -> Vec<Finding> {
        self.audit().0
    }

    fn audit(mut self) -> (Vec<Finding>, Vec<EgressExit>) {
        if self.function.subnet_ids.is_empty() {
            self.error(
                FindingCode::FunctionNotInVpc,
                &self.function.name,
                "the function is not attached to a VPC: it leaves from AWS-owned addresses that change with every cold start".into(),
                "attach it to the private subnets (`cargo fixedip deploy` does), or set VpcConfig with subnets and a security group".into(),
            );
            return (self.findings, self.exits);
        }
        for subnet_id in &self.function.subnet_ids {
            self.subnet(subnet_id);
        }
        if !matches!(self.expectation, Expectation::Isolated) {
            self.security_groups();
        }
        // A NAT shared by several subnets yields the same finding once per subnet: report it once.
        let mut unique: Vec<Finding> = Vec::with_capacity(self.findings.len());
        for finding in self.findings {
            if !unique.contains(&finding) {
                unique.push(finding);
            }
        }
        (unique, self.exits)
    }

    fn subnet(&mut self, subnet_id: &str) {
        let Some(subnet) = self.find_subnet(subnet_id) else {
            return;
        };
        let Some(table) = self.route_table_of(subnet) else {
            return;
        };
        let dual_stack = self.function.ipv6_allowed_for_dual_stack;
        let internet_routes = table
            .routes
            .iter()
            .filter(|route| carries_internet(route, dual_stack));
        match self.expectation {
            Expectation::Isolated => {
                for route in internet_routes {
                    if route.blackhole {
                        continue;
                    }
                    self.error(
                        FindingCode::RouteOutInIsolatedMode,
                        &table.id,
                        format!(
                            "{} ({}) is meant to have no route out, but its route table sends {} to {}",
                            subnet.id, subnet.availability_zone, route.destination, route.target.id()
                        ),
                        format!(
                            "delete the route: `aws ec2 delete-route --route-table-id {} {}`; reach AWS services through VPC endpoints",
                            table.id,
                            delete_route_destination(&route.destination)
                        ),
                    );
                }
            }
            Expectation::ThroughNat { .. } | Expectation::AnyAddress => {
                if !table
                    .routes
                    .iter()
                    .any(|route| is_default_v4(&route.destination))
                {
                    self.error(
                        FindingCode::MissingDefaultRoute,
                        &table.id,
                        format!(
                            "{} ({}) has no 0.0.0.0/0 route: the function cannot reach the internet",
                            subnet.id, subnet.availability_zone
                        ),
                        format!(
                            "add one to the NAT gateway of {}: `aws ec2 create-route --route-table-id {} --destination-cidr-block 0.0.0.0/0 --nat-gateway-id nat-...`",
                            subnet.availability_zone, table.id
                        ),
                    );
                }
                for route in internet_routes {
                    self.follow(subnet, table, route);
                }
            }
        }
    }

    /// Follows one internet route of a function subnet to where it leaves.
    fn follow(&mut self, subnet: &Subnet, table: &RouteTable, route: &Route) {
        if route.blackhole {
            self.error(
                FindingCode::BlackholeRoute,
                &table.id,
                format!(
                    "{} ({}) sends {} to {}, which no longer exists (blackhole): that traffic is dropped",
                    subnet.id, subnet.availability_zone, route.destination, route.target.id()
                ),
                format!(
                    "point the route at a working NAT gateway: `aws ec2 replace-route --route-table-id {} {} --nat-gateway-id nat-...`, or run `cargo fixedip deploy`",
                    table.id,
                    delete_route_destination(&route.destination)
                ),
            );
            return;
        }
        let default = is_default_v4(&route.destination);
        match (&route.destination, &route.target) {
            // NAT64: IPv6 traffic to 64:ff9b::/96 leaves through the NAT gateway's IPv4 addresses.
            (_, RouteTarget::NatGateway(id)) => self.nat_gateway(subnet, id),
            (RouteDestination::Ipv6(_), target) => self.error(
                FindingCode::Ipv6BypassesNat,
                &table.id,
                format!(
                    "the function allows dual stack, and {} ({}) sends {} to {}: that IPv6 traffic leaves from the function's own IPv6 address, not through the NAT (a NAT gateway translates IPv4 only)",
                    subnet.id, subnet.availability_zone, route.destination, target.id()
                ),
                format!(
                    "delete the IPv6 route (`aws ec2 delete-route --route-table-id {} {}`) or turn off Ipv6AllowedForDualStack on the function",
                    table.id,
                    delete_route_destination(&route.destination)
                ),
            ),
            (_, RouteTarget::InternetGateway(igw)) if default => self.error(
                FindingCode::FunctionInPublicSubnet,
                &subnet.id,
                format!(
                    "the function runs in {} ({}), a public subnet: its route table {} sends 0.0.0.0/0 straight to {}; Lambda network interfaces get no public address there, so the function has no internet at all",
                    subnet.id, subnet.availability_zone, table.id, igw
                ),
                "attach the function to the private subnet of that AZ, whose 0.0.0.0/0 goes to the NAT gateway (`cargo fixedip deploy` does)".into(),
            ),
            (_, RouteTarget::Instance(id)) => match self.network.instances.iter().find(|i| &i.id == id) {
                Some(instance) => self.nat_instance(subnet, instance),
                None => self.not_observed(id, "instance", &table.id),
            },
            (_, RouteTarget::NetworkInterface(eni)) => {
                match self
                    .network
                    .instances
                    .iter()
                    .find(|i| i.network_interface_ids.contains(eni))
                {
                    Some(instance) => self.nat_instance(subnet, instance),
                    None => self.bypass(subnet, table, route),
                }
            }
            _ => self.bypass(subnet, table, route),
        }
    }

    /// A route that leaves through something that is not a NAT.
    fn bypass(&mut self, subnet: &Subnet, table: &RouteTable, route: &Route) {
        let direct = matches!(
            route.target,
            RouteTarget::InternetGateway(_) | RouteTarget::EgressOnlyInternetGateway(_)
        );
        let severity = if direct || is_default_v4(&route.destination) {
            Severity::Error
        } else {
            Severity::Warning
        };
        let problem = if direct {
            format!(
                "{} ({}) sends {} straight to {}: that traffic skips the NAT (and, with no public address on the function, is dropped)",
                subnet.id, subnet.availability_zone, route.destination, route.target.id()
            )
        } else {
            format!(
                "{} ({}) sends {} to {}, which verify cannot follow: what address that traffic leaves from is not proven",
                subnet.id, subnet.availability_zone, route.destination, route.target.id()
            )
        };
        self.push(Finding {
            code: FindingCode::RouteBypassesNat,
            severity,
            resource: table.id.clone(),
            problem,
            fix: format!(
                "send {} to the NAT gateway of {} (`aws ec2 replace-route --route-table-id {} {} --nat-gateway-id nat-...`), or delete the route if that network is reached privately",
                route.destination,
                subnet.availability_zone,
                table.id,
                delete_route_destination(&route.destination)
            ),
        });
    }

    fn nat_gateway(&mut self, subnet: &Subnet, nat_id: &str) {
        let Some(nat) = self.network.nat_gateways.iter().find(|n| n.id == nat_id) else {
            self.not_observed(nat_id, "NAT gateway", &subnet.id);
            return;
        };
        let unavailable = match nat.state {
            NatGatewayState::Available => None,
            NatGatewayState::Pending => Some((
                FindingCode::NatGatewayPending,
                "is still being created (pending): nothing leaves through it yet".to_owned(),
                "wait a few minutes (`aws ec2 wait nat-gateway-available --nat-gateway-ids ...`) and verify again".to_owned(),
            )),
            NatGatewayState::Failed => Some((
                FindingCode::NatGatewayFailed,
                format!(
                    "failed to create{}",
                    nat.failure_message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
                "fix the cause above, delete the failed gateway and create it again (`cargo fixedip deploy` does); the Elastic IP is kept".to_owned(),
            )),
            NatGatewayState::Deleting | NatGatewayState::Deleted => Some((
                FindingCode::NatGatewayDeleted,
                "is deleted: traffic routed to it is dropped".to_owned(),
                "create a NAT gateway with the same Elastic IP and point the route at it (`cargo fixedip deploy` does)".to_owned(),
            )),
        };
        if let Some((code, what, fix)) = unavailable {
            self.error(
                code,
                &nat.id,
                format!(
                    "NAT gateway {}, used by {} ({}), {what}",
                    nat.id, subnet.id, subnet.availability_zone
                ),
                fix,
            );
            return;
        }
        if nat.connectivity == NatConnectivity::Private {
            self.error(
                FindingCode::PrivateNatGateway,
                &nat.id,
                format!(
                    "NAT gateway {}, used by {} ({}), has private connectivity: it never reaches the internet",
                    nat.id, subnet.id, subnet.availability_zone
                ),
                "create a NAT gateway with public connectivity and an Elastic IP in a public subnet, and route 0.0.0.0/0 to it".into(),
            );
            return;
        }
        self.same_az(subnet, &nat.subnet_id, &nat.id);
        self.public_side(&nat.id, "NAT gateway", &nat.subnet_id);
        let public_ips: Vec<&NatAddress> = nat
            .addresses
            .iter()
            .filter(|a| a.public_ip.is_some())
            .collect();
        if public_ips.is_empty() {
            self.error(
                FindingCode::NatAddressNotAllowed,
                &nat.id,
                format!("NAT gateway {} has no public address", nat.id),
                "give it an Elastic IP from the allowed list: create a NAT gateway with `--allocation-id eipalloc-...`".into(),
            );
        }
        for address in public_ips {
            let ip = address.public_ip.expect("filtered above");
            self.allowed_address(&nat.id, "NAT gateway", ip, address.allocation_id.as_deref());
        }
    }

    fn nat_instance(&mut self, subnet: &Subnet, instance: &NatInstance) {
        if instance.state != InstanceState::Running {
            self.error(
                FindingCode::NatInstanceNotRunning,
                &instance.id,
                format!(
                    "NAT instance {}, used by {} ({}), is {}: traffic routed to it is dropped",
                    instance.id,
                    subnet.id,
                    subnet.availability_zone,
                    instance.state.aws_name()
                ),
                format!(
                    "start it (`aws ec2 start-instances --instance-ids {}`), or replace it with a NAT gateway",
                    instance.id
                ),
            );
            return;
        }
        if instance.source_dest_check {
            self.error(
                FindingCode::NatInstanceSourceDestCheck,
                &instance.id,
                format!(
                    "NAT instance {} has its source/destination check on: it drops the traffic it should forward",
                    instance.id
                ),
                format!(
                    "`aws ec2 modify-instance-attribute --instance-id {} --no-source-dest-check`",
                    instance.id
                ),
            );
        }
        self.same_az(subnet, &instance.subnet_id, &instance.id);
        self.public_side(&instance.id, "NAT instance", &instance.subnet_id);
        match instance.public_address {
            Some(InstancePublicAddress { ip, elastic: true }) => {
                self.allowed_address(&instance.id, "NAT instance", ip, None)
            }
            Some(InstancePublicAddress { ip, elastic: false }) => self.error(
                FindingCode::NatInstanceNoElasticIp,
                &instance.id,
                format!(
                    "NAT instance {} leaves from {ip}, an address AWS assigned at launch: it changes at the next stop and start",
                    instance.id
                ),
                format!(
                    "associate an Elastic IP from the allowed list: `aws ec2 associate-address --instance-id {} --allocation-id eipalloc-...`",
                    instance.id
                ),
            ),
            None => self.error(
                FindingCode::NatInstanceNoElasticIp,
                &instance.id,
                format!("NAT instance {} has no public address: nothing it forwards reaches the internet", instance.id),
                format!(
                    "associate an Elastic IP from the allowed list: `aws ec2 associate-address --instance-id {} --allocation-id eipalloc-...`",
                    instance.id
                ),
            ),
        }
    }

    /// A NAT reaches the internet only if its own subnet routes 0.0.0.0/0 to an internet gateway
    /// attached to the VPC.
    fn public_side(&mut self, nat_id: &str, kind: &str, nat_subnet_id: &str) {
        let Some(nat_subnet) = self.find_subnet(nat_subnet_id) else {
            return;
        };
        let Some(table) = self.route_table_of(nat_subnet) else {
            return;
        };
        let default_route = table.routes.iter().find(|r| is_default_v4(&r.destination));
        let igw = match default_route.map(|r| (&r.target, r.blackhole)) {
            Some((RouteTarget::InternetGateway(igw), blackhole)) => (igw, blackhole),
            other => {
                let now = match other {
                    None => "has no 0.0.0.0/0 route".to_owned(),
                    Some((target, _)) => format!("sends 0.0.0.0/0 to {}", target.id()),
                };
                self.error(
                    FindingCode::NatSubnetWithoutIgwRoute,
                    &table.id,
                    format!(
                        "{kind} {nat_id} sits in {} ({}), whose route table {} {now}: the NAT cannot reach the internet",
                        nat_subnet.id, nat_subnet.availability_zone, table.id
                    ),
                    format!(
                        "route the NAT's subnet to the VPC's internet gateway: `aws ec2 create-route --route-table-id {} --destination-cidr-block 0.0.0.0/0 --gateway-id igw-...` (replace-route if one exists)",
                        table.id
                    ),
                );
                return;
            }
        };
        let (igw_id, blackhole) = igw;
        let attached =
            self.network.internet_gateways.iter().any(|g| {
                &g.id == igw_id && g.attached_vpc_id.as_deref() == Some(&self.network.vpc_id)
            });
        if blackhole || !attached {
            self.error(
                FindingCode::InternetGatewayNotAttached,
                igw_id,
                format!(
                    "{kind} {nat_id}'s subnet {} routes 0.0.0.0/0 to {igw_id}, which is not attached to {}",
                    nat_subnet.id, self.network.vpc_id
                ),
                format!(
                    "`aws ec2 attach-internet-gateway --internet-gateway-id {igw_id} --vpc-id {}`",
                    self.network.vpc_id
                ),
            );
        }
    }

    fn allowed_address(
        &mut self,
        nat_id: &str,
        kind: &str,
        ip: Ipv4Addr,
        allocation: Option<&str>,
    ) {
        let allowed = match self.expectation {
            Expectation::ThroughNat { allowed } => allowed,
            Expectation::AnyAddress => {
                self.exits.push(EgressExit {
                    nat: nat_id.to_owned(),
                    ip,
                    allocation_id: allocation.map(str::to_owned),
                });
                return;
            }
            Expectation::Isolated => return,
        };
        if allowed.contains(&ip) {
            return;
        }
        let listed = allowed
            .iter()
            .map(Ipv4Addr::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let allocation = allocation.map(|a| format!(" ({a})")).unwrap_or_default();
        self.error(
            FindingCode::NatAddressNotAllowed,
            nat_id,
            format!(
                "{kind} {nat_id} leaves from {ip}{allocation}, which is not in the allowed list [{listed}]: the partner's firewall drops that traffic"
            ),
            format!(
                "give the partner {ip} as well, or rebuild the NAT with an Elastic IP from the list (`cargo fixedip deploy` keeps the stack's IPs)"
            ),
        );
    }

    fn same_az(&mut self, subnet: &Subnet, nat_subnet_id: &str, nat_id: &str) {
        let Some(nat_subnet) = self.network.subnets.iter().find(|s| s.id == nat_subnet_id) else {
            return; // public_side reports it
        };
        if nat_subnet.availability_zone != subnet.availability_zone {
            self.push(Finding {
                code: FindingCode::NatInOtherAz,
                severity: Severity::Warning,
                resource: subnet.id.clone(),
                problem: format!(
                    "{} ({}) leaves through {nat_id} in {}: an outage of {} cuts this AZ off, and cross-AZ traffic is billed",
                    subnet.id,
                    subnet.availability_zone,
                    nat_subnet.availability_zone,
                    nat_subnet.availability_zone
                ),
                fix: format!(
                    "give {} its own NAT gateway and route its 0.0.0.0/0 there (`cargo fixedip deploy` makes one per AZ unless `nats` in #[fixed_egress] asks for fewer: then this is the price of the saving, and raising `nats` removes it)",
                    subnet.availability_zone
                ),
            });
        }
    }

    fn security_groups(&mut self) {
        let mut groups = Vec::new();
        for id in &self.function.security_group_ids {
            match self.network.security_groups.iter().find(|g| &g.id == id) {
                Some(group) => groups.push(group),
                None => self.not_observed(id, "security group", &self.function.name),
            }
        }
        let lets_tcp_out = groups.iter().flat_map(|g| &g.egress).any(|rule| {
            matches!(rule.protocol, IpProtocol::All | IpProtocol::Tcp)
                && matches!(&rule.destination, RuleDestination::Ipv4(net) if is_public_v4(net))
        });
        if !groups.is_empty() && !lets_tcp_out {
            let ids = groups.iter().map(|g| g.id.as_str()).collect::<Vec<_>>();
            self.error(
                FindingCode::EgressBlockedBySecurityGroups,
                &ids.join(","),
                format!(
                    "no egress rule of {} lets TCP out to a public address: every connection the function opens is refused",
                    ids.join(", ")
                ),
                format!(
                    "allow egress to the partner, or to everywhere: `aws ec2 authorize-security-group-egress --group-id {} --ip-permissions IpProtocol=tcp,FromPort=0,ToPort=65535,IpRanges=[{{CidrIp=0.0.0.0/0}}]`",
                    ids[0]
                ),
            );
        }
    }

    fn find_subnet(&mut self, subnet_id: &str) -> Option<&'a Subnet> {
        let found = self.network.subnets.iter().find(|s| s.id == subnet_id);
        if found.is_none() {
            self.not_observed(subnet_id, "subnet", &self.network.vpc_id);
        }
        found
    }

    /// The explicit association, else the VPC's main table.
    fn route_table_of(&mut self, subnet: &Subnet) -> Option<&'a RouteTable> {
        let tables = &self.network.route_tables;
        let found = tables
            .iter()
            .find(|t| t.subnet_ids.contains(&subnet.id))
            .or_else(|| tables.iter().find(|t| t.main));
        if found.is_none() {
            self.not_observed(
                &subnet.id,
                "route table (neither an association nor a main table) of subnet",
                &self.network.vpc_id,
            );
        }
        found
    }

    fn not_observed(&mut self, id: &str, kind: &str, within: &str) {
        self.error(
            FindingCode::ResourceNotObserved,
            id,
            format!("the {kind} {id} (named by {within}) was not found, so its path cannot be proven"),
            "check the region and the VPC, and that the credentials may describe it; if it was deleted, run `cargo fixedip deploy`".into(),
        );
    }

    fn error(&mut self, code: FindingCode, resource: &str, problem: String, fix: String) {
        self.push(Finding {
            code,
            severity: Severity::Error,
            resource: resource.to_owned(),
            problem,
            fix,
        });
    }

    fn push(&mut self, finding: Finding) {
        self.findings.push(finding);
    }
}

/// Whether a route can carry traffic bound for the internet. IPv6 routes only count when the
/// function gets IPv6 addresses; prefix lists are unknown space unless a gateway endpoint owns them.
fn carries_internet(route: &Route, dual_stack: bool) -> bool {
    if matches!(
        route.target,
        RouteTarget::Local | RouteTarget::GatewayEndpoint(_)
    ) {
        return false;
    }
    match &route.destination {
        RouteDestination::Ipv4(net) => is_public_v4(net),
        RouteDestination::Ipv6(net) => dual_stack && is_public_v6(net),
        RouteDestination::PrefixList(_) => true,
    }
}

/// The destination arguments of `aws ec2 delete-route` / `replace-route` for a route.
fn delete_route_destination(destination: &RouteDestination) -> String {
    match destination {
        RouteDestination::Ipv4(net) => format!("--destination-cidr-block {net}"),
        RouteDestination::Ipv6(net) => format!("--destination-ipv6-cidr-block {net}"),
        RouteDestination::PrefixList(id) => format!("--destination-prefix-list-id {id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(cidr: &str) -> RouteDestination {
        RouteDestination::Ipv4(cidr.parse().unwrap())
    }

    fn v6(cidr: &str) -> RouteDestination {
        RouteDestination::Ipv6(cidr.parse().unwrap())
    }

    fn route(destination: RouteDestination, target: RouteTarget) -> Route {
        Route {
            destination,
            target,
            blackhole: false,
        }
    }

    fn igw() -> RouteTarget {
        RouteTarget::InternetGateway("igw-1".into())
    }

    fn nat(id: &str) -> RouteTarget {
        RouteTarget::NatGateway(id.into())
    }

    const AZS: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];

    fn nat_ip(slot: usize) -> Ipv4Addr {
        Ipv4Addr::new(203, 0, 113, 10 + slot as u8)
    }

    /// What `cargo fixedip deploy` builds: per AZ a public subnet with a NAT gateway and an Elastic
    /// IP, and a private subnet whose own table routes 0.0.0.0/0 to the NAT of its AZ; one public
    /// table to the internet gateway; the main table left with only the local route.
    struct Stack {
        network: EgressNetwork,
        function: FunctionAttachment,
        allowed: Vec<Ipv4Addr>,
    }

    impl Stack {
        fn new(azs: usize) -> Stack {
            let mut network = EgressNetwork {
                vpc_id: "vpc-1".into(),
                internet_gateways: vec![InternetGateway {
                    id: "igw-1".into(),
                    attached_vpc_id: Some("vpc-1".into()),
                }],
                security_groups: vec![SecurityGroup {
                    id: "sg-1".into(),
                    egress: vec![EgressRule {
                        protocol: IpProtocol::All,
                        destination: RuleDestination::Ipv4("0.0.0.0/0".parse().unwrap()),
                    }],
                }],
                ..EgressNetwork::default()
            };
            network.route_tables.push(RouteTable {
                id: "rtb-main".into(),
                main: true,
                subnet_ids: vec![],
                routes: vec![route(v4("10.0.0.0/16"), RouteTarget::Local)],
            });
            network.route_tables.push(RouteTable {
                id: "rtb-public".into(),
                main: false,
                subnet_ids: vec![],
                routes: vec![
                    route(v4("10.0.0.0/16"), RouteTarget::Local),
                    route(v4("0.0.0.0/0"), igw()),
                ],
            });
            let mut function = FunctionAttachment {
                name: "hello-egress".into(),
                subnet_ids: vec![],
                security_group_ids: vec!["sg-1".into()],
                ipv6_allowed_for_dual_stack: false,
            };
            let mut allowed = Vec::new();
            for (slot, az) in AZS.iter().enumerate().take(azs) {
                let public = format!("subnet-pub-{slot}");
                let private = format!("subnet-priv-{slot}");
                network.subnets.push(Subnet {
                    id: public.clone(),
                    availability_zone: az.to_string(),
                    cidr: format!("10.0.{slot}.0/24").parse().unwrap(),
                });
                network.subnets.push(Subnet {
                    id: private.clone(),
                    availability_zone: az.to_string(),
                    cidr: format!("10.0.{}.0/24", 100 + slot).parse().unwrap(),
                });
                network.route_tables[1].subnet_ids.push(public.clone());
                network.route_tables.push(RouteTable {
                    id: format!("rtb-priv-{slot}"),
                    main: false,
                    subnet_ids: vec![private.clone()],
                    routes: vec![
                        route(v4("10.0.0.0/16"), RouteTarget::Local),
                        route(v4("0.0.0.0/0"), nat(&format!("nat-{slot}"))),
                    ],
                });
                network.nat_gateways.push(NatGateway {
                    id: format!("nat-{slot}"),
                    subnet_id: public,
                    state: NatGatewayState::Available,
                    connectivity: NatConnectivity::Public,
                    failure_message: None,
                    addresses: vec![NatAddress {
                        allocation_id: Some(format!("eipalloc-{slot}")),
                        public_ip: Some(nat_ip(slot)),
                    }],
                });
                function.subnet_ids.push(private);
                allowed.push(nat_ip(slot));
            }
            Stack {
                network,
                function,
                allowed,
            }
        }

        fn check(&self) -> Vec<Finding> {
            check(&self.network, &self.function, &self.allowed)
        }

        fn table(&mut self, id: &str) -> &mut RouteTable {
            self.network
                .route_tables
                .iter_mut()
                .find(|t| t.id == id)
                .unwrap()
        }

        fn nat(&mut self, id: &str) -> &mut NatGateway {
            self.network
                .nat_gateways
                .iter_mut()
                .find(|n| n.id == id)
                .unwrap()
        }

        /// Replaces slot 0's NAT gateway by a NAT instance that is set up right.
        fn with_nat_instance(mut self) -> Stack {
            self.network.nat_gateways.retain(|n| n.id != "nat-0");
            self.network.instances.push(NatInstance {
                id: "i-nat".into(),
                subnet_id: "subnet-pub-0".into(),
                state: InstanceState::Running,
                source_dest_check: false,
                network_interface_ids: vec!["eni-nat".into()],
                public_address: Some(InstancePublicAddress {
                    ip: nat_ip(0),
                    elastic: true,
                }),
            });
            self.table("rtb-priv-0").routes[1].target = RouteTarget::Instance("i-nat".into());
            self
        }
    }

    /// The codes of the findings, for "exactly this finding and no other".
    fn codes(findings: &[Finding]) -> Vec<FindingCode> {
        findings.iter().map(|f| f.code).collect()
    }

    /// Asserts exactly one finding, with this code, severity and resource.
    #[track_caller]
    fn only(findings: Vec<Finding>, code: FindingCode, severity: Severity, resource: &str) {
        assert_eq!(codes(&findings), vec![code], "{findings:#?}");
        assert_eq!(findings[0].severity, severity, "{findings:#?}");
        assert_eq!(findings[0].resource, resource, "{findings:#?}");
    }

    // ---- Correct networks give no finding. ----

    #[test]
    fn fixedip_stacks_with_one_two_and_three_azs_pass() {
        for azs in 1..=3 {
            let stack = Stack::new(azs);
            assert_eq!(stack.function.subnet_ids.len(), azs);
            assert_eq!(stack.check(), vec![], "azs = {azs}");
        }
    }

    /// The network the console guides build by hand: VPC 10.0.0.0/25, four /28 subnets, two NAT
    /// gateways, one public table, one private table per AZ, the main table associated with nothing.
    #[test]
    fn console_guide_network_passes() {
        let subnet = |id: &str, az: &str, cidr: &str| Subnet {
            id: id.into(),
            availability_zone: az.into(),
            cidr: cidr.parse().unwrap(),
        };
        let local = || route(v4("10.0.0.0/25"), RouteTarget::Local);
        let nat_gateway = |id: &str, subnet: &str, alloc: &str, ip: [u8; 4]| NatGateway {
            id: id.into(),
            subnet_id: subnet.into(),
            state: NatGatewayState::Available,
            connectivity: NatConnectivity::Public,
            failure_message: None,
            addresses: vec![NatAddress {
                allocation_id: Some(alloc.into()),
                public_ip: Some(Ipv4Addr::from(ip)),
            }],
        };
        let network = EgressNetwork {
            vpc_id: "vpc-0a1b2c3d4e5f67890".into(),
            subnets: vec![
                subnet("subnet-public-1a", "ap-northeast-1a", "10.0.0.0/28"),
                subnet("subnet-public-1c", "ap-northeast-1c", "10.0.0.16/28"),
                subnet("subnet-private-1a", "ap-northeast-1a", "10.0.0.32/28"),
                subnet("subnet-private-1c", "ap-northeast-1c", "10.0.0.48/28"),
            ],
            route_tables: vec![
                RouteTable {
                    id: "rtb-main".into(),
                    main: true,
                    subnet_ids: vec![],
                    routes: vec![local()],
                },
                RouteTable {
                    id: "rtb-public".into(),
                    main: false,
                    subnet_ids: vec!["subnet-public-1a".into(), "subnet-public-1c".into()],
                    routes: vec![
                        local(),
                        route(v4("0.0.0.0/0"), RouteTarget::from_gateway_id("igw-0f00")),
                    ],
                },
                RouteTable {
                    id: "rtb-private-1a".into(),
                    main: false,
                    subnet_ids: vec!["subnet-private-1a".into()],
                    routes: vec![local(), route(v4("0.0.0.0/0"), nat("nat-1a"))],
                },
                RouteTable {
                    id: "rtb-private-1c".into(),
                    main: false,
                    subnet_ids: vec!["subnet-private-1c".into()],
                    routes: vec![local(), route(v4("0.0.0.0/0"), nat("nat-1c"))],
                },
            ],
            internet_gateways: vec![InternetGateway {
                id: "igw-0f00".into(),
                attached_vpc_id: Some("vpc-0a1b2c3d4e5f67890".into()),
            }],
            nat_gateways: vec![
                nat_gateway(
                    "nat-1a",
                    "subnet-public-1a",
                    "eipalloc-1a",
                    [198, 51, 100, 7],
                ),
                nat_gateway(
                    "nat-1c",
                    "subnet-public-1c",
                    "eipalloc-1c",
                    [198, 51, 100, 99],
                ),
            ],
            instances: vec![],
            security_groups: vec![SecurityGroup {
                id: "sg-lambda".into(),
                egress: vec![EgressRule {
                    protocol: IpProtocol::from_aws("-1"),
                    destination: RuleDestination::Ipv4("0.0.0.0/0".parse().unwrap()),
                }],
            }],
        };
        let function = FunctionAttachment {
            name: "kintone-sync".into(),
            subnet_ids: vec!["subnet-private-1a".into(), "subnet-private-1c".into()],
            security_group_ids: vec!["sg-lambda".into()],
            ipv6_allowed_for_dual_stack: false,
        };
        let allowed = [
            Ipv4Addr::new(198, 51, 100, 7),
            Ipv4Addr::new(198, 51, 100, 99),
        ];
        assert_eq!(check(&network, &function, &allowed), vec![]);
        // The same network with one of the two addresses missing from the list is caught.
        only(
            check(&network, &function, &allowed[..1]),
            FindingCode::NatAddressNotAllowed,
            Severity::Error,
            "nat-1c",
        );
    }

    #[test]
    fn a_subnet_without_association_uses_the_main_table() {
        let mut stack = Stack::new(1);
        let private_table = stack.table("rtb-priv-0").clone();
        stack.network.route_tables.retain(|t| t.id != "rtb-priv-0");
        let main = stack.table("rtb-main");
        main.routes = private_table.routes;
        assert_eq!(stack.check(), vec![]);

        // With the main table as created (local only), the same subnet has no way out.
        let mut stack = Stack::new(1);
        stack.network.route_tables.retain(|t| t.id != "rtb-priv-0");
        only(
            stack.check(),
            FindingCode::MissingDefaultRoute,
            Severity::Error,
            "rtb-main",
        );
    }

    #[test]
    fn a_nat_instance_set_up_right_passes_and_can_be_reached_by_its_interface() {
        let stack = Stack::new(2).with_nat_instance();
        assert_eq!(stack.check(), vec![]);
        let mut stack = Stack::new(2).with_nat_instance();
        stack.table("rtb-priv-0").routes[1].target =
            RouteTarget::NetworkInterface("eni-nat".into());
        assert_eq!(stack.check(), vec![]);
    }

    #[test]
    fn private_prefixes_gateway_endpoints_and_nat64_are_not_egress_paths() {
        let mut stack = Stack::new(2);
        stack.function.ipv6_allowed_for_dual_stack = true;
        let table = stack.table("rtb-priv-0");
        table.routes.push(route(
            v4("172.16.0.0/12"),
            RouteTarget::Other("tgw-1".into()),
        ));
        table.routes.push(route(
            RouteDestination::PrefixList("pl-63a5400a".into()),
            RouteTarget::from_gateway_id("vpce-s3"),
        ));
        table
            .routes
            .push(route(v6("fd00::/8"), RouteTarget::Other("pcx-1".into())));
        table.routes.push(route(v6("64:ff9b::/96"), nat("nat-0")));
        assert_eq!(stack.check(), vec![]);
    }

    #[test]
    fn ipv6_routes_do_not_count_without_dual_stack() {
        let mut stack = Stack::new(1);
        stack.table("rtb-priv-0").routes.push(route(
            v6("::/0"),
            RouteTarget::EgressOnlyInternetGateway("eigw-1".into()),
        ));
        assert_eq!(stack.check(), vec![]);
    }

    // ---- Misconfigurations: each gives exactly its finding. ----

    #[test]
    fn function_not_in_a_vpc() {
        let mut stack = Stack::new(2);
        stack.function.subnet_ids.clear();
        stack.function.security_group_ids.clear();
        only(
            stack.check(),
            FindingCode::FunctionNotInVpc,
            Severity::Error,
            "hello-egress",
        );
    }

    #[test]
    fn function_in_a_public_subnet() {
        let mut stack = Stack::new(2);
        stack.function.subnet_ids[0] = "subnet-pub-0".into();
        only(
            stack.check(),
            FindingCode::FunctionInPublicSubnet,
            Severity::Error,
            "subnet-pub-0",
        );
    }

    #[test]
    fn missing_default_route() {
        let mut stack = Stack::new(2);
        stack.table("rtb-priv-1").routes.truncate(1);
        only(
            stack.check(),
            FindingCode::MissingDefaultRoute,
            Severity::Error,
            "rtb-priv-1",
        );
    }

    #[test]
    fn blackhole_route() {
        let mut stack = Stack::new(2);
        stack.table("rtb-priv-0").routes[1].blackhole = true;
        stack.network.nat_gateways.retain(|n| n.id != "nat-0");
        only(
            stack.check(),
            FindingCode::BlackholeRoute,
            Severity::Error,
            "rtb-priv-0",
        );
    }

    #[test]
    fn nat_gateway_failed_deleted_or_pending() {
        for (state, code) in [
            (NatGatewayState::Failed, FindingCode::NatGatewayFailed),
            (NatGatewayState::Deleted, FindingCode::NatGatewayDeleted),
            (NatGatewayState::Deleting, FindingCode::NatGatewayDeleted),
            (NatGatewayState::Pending, FindingCode::NatGatewayPending),
        ] {
            let mut stack = Stack::new(2);
            stack.nat("nat-1").state = state;
            stack.nat("nat-1").failure_message =
                Some("Elastic IP address is already associated".into());
            only(stack.check(), code, Severity::Error, "nat-1");
        }
        let mut stack = Stack::new(1);
        stack.nat("nat-0").state = NatGatewayState::Failed;
        stack.nat("nat-0").failure_message =
            Some("Elastic IP address is already associated".into());
        assert!(stack.check()[0]
            .problem
            .ends_with("failed to create: Elastic IP address is already associated"));
    }

    #[test]
    fn private_nat_gateway() {
        let mut stack = Stack::new(2);
        let gateway = stack.nat("nat-0");
        gateway.connectivity = NatConnectivity::Private;
        gateway.addresses = vec![NatAddress {
            allocation_id: None,
            public_ip: None,
        }];
        only(
            stack.check(),
            FindingCode::PrivateNatGateway,
            Severity::Error,
            "nat-0",
        );
    }

    #[test]
    fn nat_in_a_subnet_without_internet_gateway_route() {
        // The NAT of slot 0 placed in a subnet that uses the main table (local route only).
        let mut stack = Stack::new(2);
        stack.network.subnets.push(Subnet {
            id: "subnet-other".into(),
            availability_zone: AZS[0].into(),
            cidr: "10.0.50.0/24".parse().unwrap(),
        });
        stack.nat("nat-0").subnet_id = "subnet-other".into();
        only(
            stack.check(),
            FindingCode::NatSubnetWithoutIgwRoute,
            Severity::Error,
            "rtb-main",
        );

        // The NAT put in the private subnet it serves: its table sends 0.0.0.0/0 to the NAT
        // itself, not to the IGW.
        let mut stack = Stack::new(2);
        stack.nat("nat-0").subnet_id = "subnet-priv-0".into();
        only(
            stack.check(),
            FindingCode::NatSubnetWithoutIgwRoute,
            Severity::Error,
            "rtb-priv-0",
        );
    }

    #[test]
    fn internet_gateway_not_attached() {
        for blackhole in [false, true] {
            let mut stack = Stack::new(1);
            stack.network.internet_gateways[0].attached_vpc_id = None;
            stack.table("rtb-public").routes[1].blackhole = blackhole;
            only(
                stack.check(),
                FindingCode::InternetGatewayNotAttached,
                Severity::Error,
                "igw-1",
            );
        }
        // Attached, but to another VPC.
        let mut stack = Stack::new(1);
        stack.network.internet_gateways[0].attached_vpc_id = Some("vpc-2".into());
        only(
            stack.check(),
            FindingCode::InternetGatewayNotAttached,
            Severity::Error,
            "igw-1",
        );
    }

    #[test]
    fn nat_address_not_in_the_list() {
        let mut stack = Stack::new(3);
        stack.allowed.retain(|ip| *ip != nat_ip(2));
        only(
            stack.check(),
            FindingCode::NatAddressNotAllowed,
            Severity::Error,
            "nat-2",
        );
        // A secondary address the partner was never given.
        let mut stack = Stack::new(2);
        stack.nat("nat-1").addresses.push(NatAddress {
            allocation_id: Some("eipalloc-extra".into()),
            public_ip: Some(Ipv4Addr::new(192, 0, 2, 200)),
        });
        let findings = stack.check();
        only(
            findings.clone(),
            FindingCode::NatAddressNotAllowed,
            Severity::Error,
            "nat-1",
        );
        assert!(findings[0].problem.contains("192.0.2.200 (eipalloc-extra)"));
    }

    #[test]
    fn nat_instance_stopped() {
        let mut stack = Stack::new(2).with_nat_instance();
        stack.network.instances[0].state = InstanceState::Stopped;
        only(
            stack.check(),
            FindingCode::NatInstanceNotRunning,
            Severity::Error,
            "i-nat",
        );
    }

    #[test]
    fn nat_instance_with_source_dest_check_on() {
        let mut stack = Stack::new(2).with_nat_instance();
        stack.network.instances[0].source_dest_check = true;
        only(
            stack.check(),
            FindingCode::NatInstanceSourceDestCheck,
            Severity::Error,
            "i-nat",
        );
    }

    #[test]
    fn nat_instance_without_elastic_ip() {
        for address in [
            None,
            Some(InstancePublicAddress {
                ip: nat_ip(0),
                elastic: false,
            }),
        ] {
            let mut stack = Stack::new(2).with_nat_instance();
            stack.network.instances[0].public_address = address;
            only(
                stack.check(),
                FindingCode::NatInstanceNoElasticIp,
                Severity::Error,
                "i-nat",
            );
        }
        // An Elastic IP, but not one in the list.
        let mut stack = Stack::new(2).with_nat_instance();
        stack.network.instances[0].public_address = Some(InstancePublicAddress {
            ip: Ipv4Addr::new(192, 0, 2, 1),
            elastic: true,
        });
        only(
            stack.check(),
            FindingCode::NatAddressNotAllowed,
            Severity::Error,
            "i-nat",
        );
    }

    #[test]
    fn ipv6_path_bypasses_the_nat_with_dual_stack() {
        for target in [
            RouteTarget::EgressOnlyInternetGateway("eigw-1".into()),
            igw(),
        ] {
            let mut stack = Stack::new(2);
            stack.function.ipv6_allowed_for_dual_stack = true;
            stack
                .table("rtb-priv-0")
                .routes
                .push(route(v6("::/0"), target));
            only(
                stack.check(),
                FindingCode::Ipv6BypassesNat,
                Severity::Error,
                "rtb-priv-0",
            );
        }
    }

    #[test]
    fn nat_in_another_az_is_a_warning() {
        let mut stack = Stack::new(2);
        stack.table("rtb-priv-1").routes[1].target = nat("nat-0");
        let findings = stack.check();
        assert!(passes(&findings));
        only(
            findings,
            FindingCode::NatInOtherAz,
            Severity::Warning,
            "subnet-priv-1",
        );
    }

    #[test]
    fn one_nat_for_three_azs_passes_with_a_warning_per_other_az() {
        // `nats = 1`: slots 1 and 2 leave through slot 0's NAT. It works: a pass, with the
        // cross-AZ dependency named for each AZ that has no NAT of its own, and nothing else.
        let mut stack = Stack::new(3);
        for table in ["rtb-priv-1", "rtb-priv-2"] {
            stack.table(table).routes[1].target = nat("nat-0");
        }
        let findings = stack.check();
        assert!(passes(&findings));
        let warned: Vec<(&str, FindingCode, Severity)> = findings
            .iter()
            .map(|f| (f.resource.as_str(), f.code, f.severity))
            .collect();
        assert_eq!(
            warned,
            [
                (
                    "subnet-priv-1",
                    FindingCode::NatInOtherAz,
                    Severity::Warning
                ),
                (
                    "subnet-priv-2",
                    FindingCode::NatInOtherAz,
                    Severity::Warning
                ),
            ]
        );
        assert!(findings[0].problem.contains("cross-AZ traffic is billed"));
        assert!(findings[0].fix.contains("`nats`"));
    }

    #[test]
    fn security_groups_that_block_all_egress() {
        let blocking = [
            vec![],
            vec![EgressRule {
                protocol: IpProtocol::Tcp,
                destination: RuleDestination::Ipv4("10.0.0.0/8".parse().unwrap()),
            }],
            vec![EgressRule {
                protocol: IpProtocol::from_aws("udp"),
                destination: RuleDestination::Ipv4("0.0.0.0/0".parse().unwrap()),
            }],
            vec![EgressRule {
                protocol: IpProtocol::All,
                destination: RuleDestination::SecurityGroup("sg-1".into()),
            }],
        ];
        for egress in blocking {
            let mut stack = Stack::new(2);
            stack.network.security_groups[0].egress = egress.clone();
            only(
                stack.check(),
                FindingCode::EgressBlockedBySecurityGroups,
                Severity::Error,
                "sg-1",
            );
        }
        // TCP to one partner address is enough.
        let mut stack = Stack::new(2);
        stack.network.security_groups[0].egress = vec![EgressRule {
            protocol: IpProtocol::from_aws("6"),
            destination: RuleDestination::Ipv4("198.51.100.20/32".parse().unwrap()),
        }];
        assert_eq!(stack.check(), vec![]);
    }

    #[test]
    fn more_specific_public_prefix_routed_elsewhere() {
        let mut stack = Stack::new(2);
        stack
            .table("rtb-priv-0")
            .routes
            .push(route(v4("52.94.0.0/16"), igw()));
        only(
            stack.check(),
            FindingCode::RouteBypassesNat,
            Severity::Error,
            "rtb-priv-0",
        );

        // Through a transit gateway: not provably the internet, so a warning.
        let mut stack = Stack::new(2);
        stack.table("rtb-priv-1").routes.push(route(
            v4("198.51.100.0/24"),
            RouteTarget::Other("tgw-1".into()),
        ));
        only(
            stack.check(),
            FindingCode::RouteBypassesNat,
            Severity::Warning,
            "rtb-priv-1",
        );

        // The default route itself through a transit gateway cannot be proven: an error.
        let mut stack = Stack::new(1);
        stack.table("rtb-priv-0").routes[1].target = RouteTarget::Other("tgw-1".into());
        only(
            stack.check(),
            FindingCode::RouteBypassesNat,
            Severity::Error,
            "rtb-priv-0",
        );
    }

    #[test]
    fn a_more_specific_prefix_to_another_good_nat_is_followed() {
        let mut stack = Stack::new(2);
        stack
            .table("rtb-priv-0")
            .routes
            .push(route(v4("198.51.100.0/24"), nat("nat-1")));
        // nat-1 is fine, but in the other AZ.
        only(
            stack.check(),
            FindingCode::NatInOtherAz,
            Severity::Warning,
            "subnet-priv-0",
        );
    }

    #[test]
    fn resources_missing_from_the_observation() {
        let mut stack = Stack::new(2);
        stack.network.subnets.retain(|s| s.id != "subnet-priv-1");
        only(
            stack.check(),
            FindingCode::ResourceNotObserved,
            Severity::Error,
            "subnet-priv-1",
        );
        let mut stack = Stack::new(2);
        stack.network.nat_gateways.retain(|n| n.id != "nat-1");
        only(
            stack.check(),
            FindingCode::ResourceNotObserved,
            Severity::Error,
            "nat-1",
        );
        let mut stack = Stack::new(2);
        stack.network.security_groups.clear();
        only(
            stack.check(),
            FindingCode::ResourceNotObserved,
            Severity::Error,
            "sg-1",
        );
    }

    #[test]
    fn several_problems_are_all_reported_in_path_order() {
        let mut stack = Stack::new(3);
        stack.function.subnet_ids[0] = "subnet-pub-0".into();
        stack.nat("nat-1").state = NatGatewayState::Failed;
        stack.allowed.retain(|ip| *ip != nat_ip(2));
        stack.network.security_groups[0].egress.clear();
        assert_eq!(
            codes(&stack.check()),
            vec![
                FindingCode::FunctionInPublicSubnet,
                FindingCode::NatGatewayFailed,
                FindingCode::NatAddressNotAllowed,
                FindingCode::EgressBlockedBySecurityGroups,
            ]
        );
    }

    #[test]
    fn a_shared_nat_problem_is_reported_once() {
        let mut stack = Stack::new(2);
        stack.table("rtb-public").routes.truncate(1);
        let findings = stack.check();
        // Both NATs sit behind the same broken public table: one finding per NAT, none repeated.
        assert_eq!(
            codes(&findings),
            vec![FindingCode::NatSubnetWithoutIgwRoute; 2]
        );
        assert!(findings[0].problem.contains("nat-0"));
        assert!(findings[1].problem.contains("nat-1"));
    }

    proptest::proptest! {
        /// Whatever addresses are left out of the list, exactly the NATs using them are reported.
        #[test]
        fn exactly_the_unlisted_addresses_are_reported(azs in 1usize..=3, listed in proptest::collection::vec(proptest::bool::ANY, 3)) {
            let mut stack = Stack::new(azs);
            stack.allowed = (0..azs).filter(|&slot| listed[slot]).map(nat_ip).collect();
            let reported: Vec<String> = stack.check().into_iter().map(|f| {
                assert_eq!(f.code, FindingCode::NatAddressNotAllowed);
                f.resource
            }).collect();
            let unlisted: Vec<String> = (0..azs).filter(|&slot| !listed[slot]).map(|slot| format!("nat-{slot}")).collect();
            proptest::prop_assert_eq!(reported, unlisted);
        }

        /// Any one private route table's default route turned blackhole gives exactly that finding.
        #[test]
        fn any_blackhole_default_route_is_reported(azs in 1usize..=3, broken in 0usize..3) {
            let broken = broken % azs;
            let mut stack = Stack::new(azs);
            stack.table(&format!("rtb-priv-{broken}")).routes[1].blackhole = true;
            let findings = stack.check();
            proptest::prop_assert_eq!(codes(&findings), vec![FindingCode::BlackholeRoute]);
            proptest::prop_assert_eq!(&findings[0].resource, &format!("rtb-priv-{broken}"));
        }
    }

    #[test]
    fn states_read_from_their_aws_names() {
        assert_eq!(
            NatGatewayState::from_aws("available"),
            Some(NatGatewayState::Available)
        );
        assert_eq!(
            NatGatewayState::from_aws("failed"),
            Some(NatGatewayState::Failed)
        );
        assert_eq!(NatGatewayState::from_aws("stuck"), None);
        assert_eq!(
            InstanceState::from_aws("shutting-down"),
            Some(InstanceState::ShuttingDown)
        );
        assert_eq!(
            InstanceState::from_aws("stopped"),
            Some(InstanceState::Stopped)
        );
        assert_eq!(RouteTarget::from_gateway_id("local"), RouteTarget::Local);
        assert_eq!(
            RouteTarget::from_gateway_id("vgw-1"),
            RouteTarget::Other("vgw-1".into())
        );
        assert_eq!(IpProtocol::from_aws("-1"), IpProtocol::All);
        assert_eq!(IpProtocol::from_aws("50"), IpProtocol::Other("50".into()));
    }

    // ---- The isolated mode. ----

    fn isolated_stack() -> Stack {
        let mut stack = Stack::new(2);
        stack.network.nat_gateways.clear();
        stack.network.security_groups[0].egress.clear();
        for slot in 0..2 {
            let table = stack.table(&format!("rtb-priv-{slot}"));
            table.routes.truncate(1);
            table.routes.push(route(
                RouteDestination::PrefixList("pl-63a5400a".into()),
                RouteTarget::GatewayEndpoint("vpce-s3".into()),
            ));
        }
        stack
    }

    #[test]
    fn isolated_subnets_with_only_endpoints_pass() {
        let stack = isolated_stack();
        assert_eq!(check_isolated(&stack.network, &stack.function), vec![]);
        // The same network fails the NAT expectation: no default route.
        assert_eq!(
            codes(&stack.check()),
            vec![
                FindingCode::MissingDefaultRoute,
                FindingCode::MissingDefaultRoute,
                FindingCode::EgressBlockedBySecurityGroups
            ]
        );
    }

    #[test]
    fn any_route_out_breaks_isolation() {
        let mut stack = isolated_stack();
        stack
            .table("rtb-priv-1")
            .routes
            .push(route(v4("0.0.0.0/0"), nat("nat-gone")));
        only(
            check_isolated(&stack.network, &stack.function),
            FindingCode::RouteOutInIsolatedMode,
            Severity::Error,
            "rtb-priv-1",
        );

        let mut stack = isolated_stack();
        stack.function.ipv6_allowed_for_dual_stack = true;
        stack.table("rtb-priv-0").routes.push(route(
            v6("2600::/12"),
            RouteTarget::EgressOnlyInternetGateway("eigw-1".into()),
        ));
        only(
            check_isolated(&stack.network, &stack.function),
            FindingCode::RouteOutInIsolatedMode,
            Severity::Error,
            "rtb-priv-0",
        );

        let mut stack = isolated_stack();
        stack.function.subnet_ids.clear();
        only(
            check_isolated(&stack.network, &stack.function),
            FindingCode::FunctionNotInVpc,
            Severity::Error,
            "hello-egress",
        );
    }

    // ---- Output. ----

    #[test]
    fn the_declared_egress_matches_or_each_difference_is_named() {
        use crate::observed::{RulePeer, RuleProtocol};
        let https = SecurityGroupRule {
            protocol: RuleProtocol::Tcp,
            ports: Some((443, 443)),
            peer: RulePeer::Ipv4("0.0.0.0/0".parse().unwrap()),
        };
        let declared = [https.clone()];
        assert!(check_declared_egress("sg-1", &[https.clone()], &declared).is_empty());
        // The default rule left in place by hand, and the declared one missing.
        let findings = check_declared_egress("sg-1", &[SecurityGroupRule::ALL_OUT], &declared);
        only(
            findings.clone(),
            FindingCode::SecurityGroupEgressDiffers,
            Severity::Error,
            "sg-1",
        );
        assert!(
            findings[0]
                .problem
                .contains("it also lets out all traffic to 0.0.0.0/0; it does not let out tcp 443 to 0.0.0.0/0"),
            "{}",
            findings[0].problem
        );
        // The default declared (no `egress`), a rule added by hand.
        let findings = check_declared_egress(
            "sg-1",
            &[SecurityGroupRule::ALL_OUT, https],
            &[SecurityGroupRule::ALL_OUT],
        );
        assert_eq!(codes(&findings), [FindingCode::SecurityGroupEgressDiffers]);
        assert!(findings[0]
            .problem
            .contains("also lets out tcp 443 to 0.0.0.0/0"));
    }

    #[test]
    fn a_finding_reads_as_code_resource_problem_and_fix() {
        let mut stack = Stack::new(1);
        stack.network.instances.clear();
        let stack = stack.with_nat_instance();
        let mut stack = stack;
        stack.network.instances[0].source_dest_check = true;
        let text = stack.check()[0].to_string();
        assert_eq!(
            text,
            "error[nat-instance-source-dest-check] i-nat: NAT instance i-nat has its source/destination check on: it drops the traffic it should forward\n  fix: `aws ec2 modify-instance-attribute --instance-id i-nat --no-source-dest-check`"
        );
    }

    #[test]
    fn findings_serialize_with_stable_codes() {
        let mut stack = Stack::new(2);
        stack.function.subnet_ids[1] = "subnet-pub-1".into();
        let json = serde_json::to_value(stack.check()).unwrap();
        assert_eq!(json[0]["code"], "function-in-public-subnet");
        assert_eq!(json[0]["severity"], "error");
        assert_eq!(json[0]["resource"], "subnet-pub-1");
        // Every code's serde name is its `as_str`.
        for code in [
            FindingCode::NatInstanceNoElasticIp,
            FindingCode::Ipv6BypassesNat,
            FindingCode::EgressBlockedBySecurityGroups,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
        // The input round-trips, so the CLI can save an observation and check it later.
        let text = serde_json::to_string(&stack.network).unwrap();
        let back: EgressNetwork = serde_json::from_str(&text).unwrap();
        assert_eq!(back, stack.network);
    }
}
