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
//! | `endpoint-blocked-by-security-groups` | warning | a route sends a service's prefix list to a gateway endpoint, and no group of the function lets TCP 443 out to that prefix list (or to 0.0.0.0/0): the service is unreachable |
//! | `route-out-in-isolated-mode`        | error    | isolated mode only: a route can carry traffic out of the VPC                           |
//! | `security-group-egress-differs`     | error    | the functions' group lets out other than `egress = [...]` declares ([`check_declared_egress`]) |
//! | `resource-not-observed`             | error    | a subnet, route table, NAT or security group the path needs was not in the input       |
//! | `function-not-active`               | error    | Lambda's `State` of the function is not `Active` (`Failed`, `Pending`...) ([`check_function_state`]) |
//!
//! In the isolated mode ([`check_isolated`], for `nat = "none"`), no route out at all is the pass
//! condition: routes to gateway endpoints (S3, DynamoDB) and `local` are fine, anything else that can
//! carry internet traffic is a finding.

use std::fmt;
use std::net::Ipv4Addr;

pub use crate::network::{
    Instance, InstanceState, InternetGateway, NatAddress, NatConnectivity, NatGateway,
    NatGatewayState, Route, RouteDestination, RouteTable, RouteTarget, RulePeer, RuleProtocol,
    SecurityGroup, SecurityGroupRule, Subnet,
};

/// The verifier's input: one VPC as the Describe calls show it ([`crate::network`]'s model, read
/// by the VPC's id). Every collection holds only this VPC's resources, except
/// `internet_gateways` and `instances`, which hold those its routes name, and `addresses`, the
/// Elastic IPs among those instances' public addresses.
pub type EgressNetwork = crate::network::VpcNetwork;

/// A function's `VpcConfig`, as `GetFunctionConfiguration` returns it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FunctionAttachment {
    pub name: String,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    /// `Ipv6AllowedForDualStack`: the function gets IPv6 addresses and may use IPv6 routes.
    pub ipv6_allowed_for_dual_stack: bool,
    /// Lambda's `State`: a function that is not `Active` runs nothing ([`check_function_state`]).
    #[serde(default)]
    pub state: crate::observed::FunctionState,
}

impl From<&crate::observed::ObservedFunction> for FunctionAttachment {
    /// The same fields, from the GetFunction a deploy observed the function with.
    fn from(function: &crate::observed::ObservedFunction) -> FunctionAttachment {
        FunctionAttachment {
            name: function.name.clone(),
            subnet_ids: function.subnet_ids.clone(),
            security_group_ids: function.security_group_ids.clone(),
            ipv6_allowed_for_dual_stack: function.ipv6_allowed_for_dual_stack,
            state: function.state.clone(),
        }
    }
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
    NatInstanceNotReady,
    NatInOtherAz,
    EgressBlockedBySecurityGroups,
    EndpointBlockedBySecurityGroups,
    RouteOutInIsolatedMode,
    SecurityGroupEgressDiffers,
    ResourceNotObserved,
    FunctionNotActive,
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
            FindingCode::NatInstanceNotReady => "nat-instance-not-ready",
            FindingCode::NatInOtherAz => "nat-in-other-az",
            FindingCode::EgressBlockedBySecurityGroups => "egress-blocked-by-security-groups",
            FindingCode::EndpointBlockedBySecurityGroups => "endpoint-blocked-by-security-groups",
            FindingCode::RouteOutInIsolatedMode => "route-out-in-isolated-mode",
            FindingCode::SecurityGroupEgressDiffers => "security-group-egress-differs",
            FindingCode::ResourceNotObserved => "resource-not-observed",
            FindingCode::FunctionNotActive => "function-not-active",
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

/// Lambda's state of the function: one that is not `Active` runs nothing, whatever its network
/// (a `Failed` one must be deleted and created again: Lambda developer guide, function states).
pub fn check_function_state(function: &FunctionAttachment) -> Option<Finding> {
    if function.state.active() {
        return None;
    }
    let fix = if function.state.failed() {
        "run `cargo fixedip deploy`: it deletes the failed function and creates it again (fix the reason first, e.g. free addresses in the subnets for SubnetOutOfIPAddresses)"
    } else {
        "wait for Lambda to finish (a function is Pending for about a minute after a change), then verify again"
    };
    Some(Finding {
        code: FindingCode::FunctionNotActive,
        severity: Severity::Error,
        resource: function.name.clone(),
        problem: format!(
            "the function is {}, not Active: it runs nothing",
            function.state
        ),
        fix: fix.to_owned(),
    })
}

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
        state: Default::default(),
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

mod audit;
use audit::{Audit, Expectation};

#[cfg(test)]
mod tests;
