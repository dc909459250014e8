//! Which subnets of a network the user already runs can carry a fixed-egress function
//! (`vpc = "vpc-..."` in `[package.metadata.fixedip]`).
//!
//! A subnet qualifies when every internet route out of it leaves through a NAT (gateway or
//! instance) with an Elastic IP, by the rules of [`crate::verify`]: the same code decides here
//! what qualifies and there what passes, so a function attached to a qualifying subnet always
//! passes `verify` against the addresses this module reports. Warnings (a NAT in another AZ) do
//! not disqualify a subnet; they are kept for the user to see.

use std::net::Ipv4Addr;

use crate::verify::{self, EgressExit, EgressNetwork, Finding, FindingCode};

/// A subnet a function may run in, and the addresses its traffic leaves from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QualifiedSubnet {
    pub id: String,
    pub availability_zone: String,
    pub exits: Vec<EgressExit>,
    /// What weakens the path without breaking it (e.g. `nat-in-other-az`).
    pub warnings: Vec<Finding>,
}

/// A subnet a function must not run in, with why, one reason per thing that breaks its egress.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RefusedSubnet {
    pub id: String,
    /// `None` when the subnet is not in the VPC at all.
    pub availability_zone: Option<String>,
    pub reasons: Vec<String>,
}

/// Every subnet of a VPC, judged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Qualification {
    /// By subnet id.
    pub qualified: Vec<QualifiedSubnet>,
    /// By subnet id.
    pub refused: Vec<RefusedSubnet>,
}

/// Judges every subnet of `network`.
pub fn qualify(network: &EgressNetwork) -> Qualification {
    let mut ids: Vec<&str> = network.subnets.iter().map(|s| s.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    let mut qualification = Qualification::default();
    for id in ids {
        match judge(network, id) {
            Ok(qualified) => qualification.qualified.push(qualified),
            Err(refused) => qualification.refused.push(refused),
        }
    }
    qualification
}

/// Judges one subnet, which may not be in the VPC (then it is refused, saying so).
pub fn judge(network: &EgressNetwork, subnet_id: &str) -> Result<QualifiedSubnet, RefusedSubnet> {
    let Some(subnet) = network.subnets.iter().find(|s| s.id == subnet_id) else {
        return Err(RefusedSubnet {
            id: subnet_id.to_owned(),
            availability_zone: None,
            reasons: vec![format!(
                "is not a subnet of {} (check the id, the VPC and the region)",
                network.vpc_id
            )],
        });
    };
    let egress = verify::subnet_egress(network, subnet_id);
    let (errors, warnings): (Vec<Finding>, Vec<Finding>) =
        egress.findings.into_iter().partition(Finding::is_error);
    if errors.is_empty() && !egress.exits.is_empty() {
        return Ok(QualifiedSubnet {
            id: subnet.id.clone(),
            availability_zone: subnet.availability_zone.clone(),
            exits: egress.exits,
            warnings,
        });
    }
    let mut reasons: Vec<String> = Vec::new();
    for finding in &errors {
        let reason = reason(finding);
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
    }
    if reasons.is_empty() {
        // No error and no exit: only routes verify cannot follow (warnings) carry its traffic.
        reasons.push("no route out through a NAT with an Elastic IP".to_owned());
    }
    Err(RefusedSubnet {
        id: subnet.id.clone(),
        availability_zone: Some(subnet.availability_zone.clone()),
        reasons,
    })
}

/// Every address the subnets leave from, sorted, each once.
pub fn ips(subnets: &[QualifiedSubnet]) -> Vec<Ipv4Addr> {
    let mut ips: Vec<Ipv4Addr> = subnets
        .iter()
        .flat_map(|s| s.exits.iter().map(|e| e.ip))
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

/// A short reason for the common cases, the verifier's own words for the rest.
fn reason(finding: &Finding) -> String {
    match finding.code {
        FindingCode::FunctionInPublicSubnet => {
            "routes 0.0.0.0/0 to an internet gateway: a public subnet".to_owned()
        }
        FindingCode::MissingDefaultRoute => format!(
            "no route out: its route table {} has no 0.0.0.0/0 route",
            finding.resource
        ),
        FindingCode::NatInstanceNoElasticIp => {
            format!("NAT {} has no Elastic IP", finding.resource)
        }
        // Under `subnet_egress` any address is accepted: this fires only for a NAT without one.
        FindingCode::NatAddressNotAllowed => {
            format!("NAT {} has no Elastic IP", finding.resource)
        }
        _ => format!("{} ({})", finding.problem, finding.code),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::network::{
        GatewayAttachment, Instance, InstanceInterface, InstanceState, InternetGateway, NatAddress,
        NatConnectivity, NatGateway, NatGatewayState, Network, Route, RouteDestination, RouteTable,
        RouteTableAssociation, RouteTarget, Subnet, Tags,
    };

    fn route(cidr: &str, target: RouteTarget) -> Route {
        Route {
            destination: RouteDestination::Ipv4(cidr.parse().unwrap()),
            target,
            blackhole: false,
        }
    }

    fn subnet(id: &str, az: &str, cidr: &str) -> Subnet {
        Subnet {
            id: id.into(),
            availability_zone: az.into(),
            cidr: cidr.parse().unwrap(),
            ..Subnet::default()
        }
    }

    fn table(id: &str, subnets: &[&str], routes: Vec<Route>) -> RouteTable {
        RouteTable {
            id: id.into(),
            vpc_id: "vpc-1".into(),
            main: false,
            associations: subnets
                .iter()
                .map(|s| RouteTableAssociation {
                    id: format!("rtbassoc-{s}"),
                    subnet_id: s.to_string(),
                })
                .collect(),
            routes,
            tags: Tags::new(),
        }
    }

    /// A user's network: public subnet with a NAT gateway (Elastic IP), a private subnet routed
    /// to it, a second public subnet, an isolated subnet on the main table (no route out), a
    /// subnet routed to a NAT instance without an Elastic IP.
    pub(crate) fn network() -> EgressNetwork {
        let igw = || RouteTarget::InternetGateway("igw-1".into());
        let local = || route("10.0.0.0/16", RouteTarget::Local);
        EgressNetwork {
            vpc_id: "vpc-1".into(),
            resources: Network {
                subnets: vec![
                    subnet("subnet-pub", "us-east-1a", "10.0.0.0/24"),
                    subnet("subnet-priv", "us-east-1a", "10.0.1.0/24"),
                    subnet("subnet-pub2", "us-east-1b", "10.0.2.0/24"),
                    subnet("subnet-none", "us-east-1b", "10.0.3.0/24"),
                    subnet("subnet-inst", "us-east-1a", "10.0.4.0/24"),
                ],
                route_tables: vec![
                    RouteTable {
                        main: true,
                        ..table("rtb-main", &[], vec![local()])
                    },
                    table(
                        "rtb-pub",
                        &["subnet-pub", "subnet-pub2"],
                        vec![local(), route("0.0.0.0/0", igw())],
                    ),
                    table(
                        "rtb-priv",
                        &["subnet-priv"],
                        vec![
                            local(),
                            route("0.0.0.0/0", RouteTarget::NatGateway("nat-1".into())),
                        ],
                    ),
                    table(
                        "rtb-inst",
                        &["subnet-inst"],
                        vec![
                            local(),
                            route("0.0.0.0/0", RouteTarget::Instance("i-1".into())),
                        ],
                    ),
                ],
                internet_gateways: vec![InternetGateway {
                    id: "igw-1".into(),
                    attachments: vec![GatewayAttachment {
                        vpc_id: "vpc-1".into(),
                        state: "available".into(),
                    }],
                    tags: Tags::new(),
                }],
                nat_gateways: vec![NatGateway {
                    id: "nat-1".into(),
                    vpc_id: "vpc-1".into(),
                    tags: Tags::new(),
                    subnet_id: "subnet-pub".into(),
                    state: NatGatewayState::Available,
                    connectivity: NatConnectivity::Public,
                    failure_message: None,
                    addresses: vec![NatAddress {
                        allocation_id: Some("eipalloc-1".into()),
                        public_ip: Some(Ipv4Addr::new(203, 0, 113, 5)),
                    }],
                }],
                // Its public address is AWS's, assigned at launch: no Elastic IP of the account.
                instances: vec![Instance {
                    id: "i-1".into(),
                    vpc_id: "vpc-1".into(),
                    subnet_id: "subnet-pub".into(),
                    state: InstanceState::Running,
                    instance_type: "t4g.nano".into(),
                    source_dest_check: false,
                    network_interfaces: vec![InstanceInterface {
                        id: "eni-1".into(),
                        device_index: Some(0),
                        ..Default::default()
                    }],
                    public_ip: Some(Ipv4Addr::new(198, 51, 100, 1)),
                    tags: Tags::new(),
                    readiness: None,
                }],
                ..Network::default()
            },
        }
    }

    #[test]
    fn only_the_subnet_behind_a_nat_with_an_elastic_ip_qualifies() {
        let qualification = qualify(&network());
        let qualified: Vec<&str> = qualification
            .qualified
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(qualified, ["subnet-priv"]);
        let exits = &qualification.qualified[0].exits;
        assert_eq!(
            exits,
            &[EgressExit {
                nat: "nat-1".into(),
                ip: Ipv4Addr::new(203, 0, 113, 5),
                allocation_id: Some("eipalloc-1".into()),
            }]
        );
        assert_eq!(
            ips(&qualification.qualified),
            [Ipv4Addr::new(203, 0, 113, 5)]
        );

        let reasons = |id: &str| {
            qualification
                .refused
                .iter()
                .find(|r| r.id == id)
                .unwrap_or_else(|| panic!("{id} refused"))
                .reasons
                .clone()
        };
        assert_eq!(
            reasons("subnet-pub"),
            ["routes 0.0.0.0/0 to an internet gateway: a public subnet"]
        );
        assert_eq!(
            reasons("subnet-pub2"),
            ["routes 0.0.0.0/0 to an internet gateway: a public subnet"]
        );
        assert_eq!(
            reasons("subnet-none"),
            ["no route out: its route table rtb-main has no 0.0.0.0/0 route"]
        );
        assert_eq!(reasons("subnet-inst"), ["NAT i-1 has no Elastic IP"]);
    }

    #[test]
    fn a_nat_gateway_without_an_address_or_in_a_private_subnet_disqualifies() {
        let mut network = network();
        network.nat_gateways[0].addresses.clear();
        let refused = judge(&network, "subnet-priv").unwrap_err();
        assert_eq!(refused.reasons, ["NAT nat-1 has no Elastic IP"]);

        let mut network = self::network();
        // The NAT's own subnet loses its internet route: the NAT reaches nothing.
        network.route_tables[1].routes.pop();
        let refused = judge(&network, "subnet-priv").unwrap_err();
        assert!(
            refused.reasons[0].contains("nat-subnet-without-igw-route"),
            "{refused:?}"
        );
    }

    #[test]
    fn a_nat_in_another_az_qualifies_with_a_warning() {
        let mut network = network();
        network.subnets[1].availability_zone = "us-east-1b".into();
        let qualified = judge(&network, "subnet-priv").unwrap();
        assert_eq!(qualified.warnings.len(), 1);
        assert_eq!(qualified.warnings[0].code, FindingCode::NatInOtherAz);
    }

    #[test]
    fn an_unknown_subnet_is_refused_naming_the_vpc() {
        let refused = judge(&network(), "subnet-elsewhere").unwrap_err();
        assert_eq!(refused.availability_zone, None);
        assert!(refused.reasons[0].contains("not a subnet of vpc-1"));
    }

    #[test]
    fn what_qualifies_passes_verify_against_the_reported_ips() {
        let network = network();
        let qualification = qualify(&network);
        let function = verify::FunctionAttachment {
            name: "f".into(),
            subnet_ids: qualification
                .qualified
                .iter()
                .map(|s| s.id.clone())
                .collect(),
            security_group_ids: Vec::new(),
            ipv6_allowed_for_dual_stack: false,
            state: Default::default(),
        };
        let findings = verify::check(&network, &function, &ips(&qualification.qualified));
        assert!(verify::passes(&findings), "{findings:?}");
    }
}
