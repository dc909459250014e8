use super::*;
use crate::network::{GatewayAttachment, InstanceInterface, Network, RouteTableAssociation, Tags};

fn table(id: String, main: bool, subnets: Vec<String>, routes: Vec<Route>) -> RouteTable {
    RouteTable {
        id,
        vpc_id: "vpc-1".into(),
        main,
        associations: subnets.iter().map(|s| association(s)).collect(),
        routes,
        tags: Tags::new(),
    }
}

fn association(subnet: &str) -> RouteTableAssociation {
    RouteTableAssociation {
        id: format!("rtbassoc-{subnet}"),
        subnet_id: subnet.to_owned(),
    }
}

fn gateway(id: String, attached: Option<String>) -> InternetGateway {
    InternetGateway {
        id,
        attachments: attached
            .into_iter()
            .map(|vpc_id| GatewayAttachment {
                vpc_id,
                state: "available".into(),
            })
            .collect(),
        tags: Tags::new(),
    }
}

fn rule(protocol: RuleProtocol, peer: RulePeer) -> SecurityGroupRule {
    SecurityGroupRule {
        protocol,
        ports: None,
        peer,
    }
}

/// An Elastic IP of the account, as DescribeAddresses lists it.
fn elastic_ip(ip: Ipv4Addr) -> crate::network::Address {
    crate::network::Address {
        allocation_id: format!("eipalloc-{ip}"),
        public_ip: Some(ip),
        ..Default::default()
    }
}

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
            resources: Network {
                internet_gateways: vec![gateway("igw-1".into(), Some("vpc-1".into()))],
                security_groups: vec![SecurityGroup {
                    id: "sg-1".into(),
                    egress: vec![rule(
                        RuleProtocol::All,
                        RulePeer::Ipv4("0.0.0.0/0".parse().unwrap()),
                    )],
                    ..SecurityGroup::default()
                }],
                ..Network::default()
            },
        };
        network.route_tables.push(table(
            "rtb-main".into(),
            true,
            vec![],
            vec![route(v4("10.0.0.0/16"), RouteTarget::Local)],
        ));
        network.route_tables.push(table(
            "rtb-public".into(),
            false,
            vec![],
            vec![
                route(v4("10.0.0.0/16"), RouteTarget::Local),
                route(v4("0.0.0.0/0"), igw()),
            ],
        ));
        let mut function = FunctionAttachment {
            name: "hello-egress".into(),
            subnet_ids: vec![],
            security_group_ids: vec!["sg-1".into()],
            ipv6_allowed_for_dual_stack: false,
            state: Default::default(),
        };
        let mut allowed = Vec::new();
        for (slot, az) in AZS.iter().enumerate().take(azs) {
            let public = format!("subnet-pub-{slot}");
            let private = format!("subnet-priv-{slot}");
            network.subnets.push(Subnet {
                id: public.clone(),
                availability_zone: az.to_string(),
                cidr: format!("10.0.{slot}.0/24").parse().unwrap(),
                ..Subnet::default()
            });
            network.subnets.push(Subnet {
                id: private.clone(),
                availability_zone: az.to_string(),
                cidr: format!("10.0.{}.0/24", 100 + slot).parse().unwrap(),
                ..Subnet::default()
            });
            network.route_tables[1]
                .associations
                .push(association(&public));
            network.route_tables.push(table(
                format!("rtb-priv-{slot}"),
                false,
                vec![private.clone()],
                vec![
                    route(v4("10.0.0.0/16"), RouteTarget::Local),
                    route(v4("0.0.0.0/0"), nat(&format!("nat-{slot}"))),
                ],
            ));
            network.nat_gateways.push(NatGateway {
                vpc_id: "vpc-1".into(),
                tags: Tags::new(),
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
        self.network.instances.push(Instance {
            id: "i-nat".into(),
            vpc_id: "vpc-1".into(),
            subnet_id: "subnet-pub-0".into(),
            state: InstanceState::Running,
            instance_type: "t4g.nano".into(),
            source_dest_check: false,
            network_interfaces: vec![InstanceInterface {
                id: "eni-nat".into(),
                device_index: Some(0),
                ..Default::default()
            }],
            public_ip: Some(nat_ip(0)),
            tags: Tags::new(),
            readiness: None,
        });
        self.network.addresses.push(elastic_ip(nat_ip(0)));
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
        ..Subnet::default()
    };
    let local = || route(v4("10.0.0.0/25"), RouteTarget::Local);
    let nat_gateway = |id: &str, subnet: &str, alloc: &str, ip: [u8; 4]| NatGateway {
        vpc_id: "vpc-1".into(),
        tags: Tags::new(),
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
        resources: Network {
            subnets: vec![
                subnet("subnet-public-1a", "ap-northeast-1a", "10.0.0.0/28"),
                subnet("subnet-public-1c", "ap-northeast-1c", "10.0.0.16/28"),
                subnet("subnet-private-1a", "ap-northeast-1a", "10.0.0.32/28"),
                subnet("subnet-private-1c", "ap-northeast-1c", "10.0.0.48/28"),
            ],
            route_tables: vec![
                table("rtb-main".into(), true, vec![], vec![local()]),
                table(
                    "rtb-public".into(),
                    false,
                    vec!["subnet-public-1a".into(), "subnet-public-1c".into()],
                    vec![
                        local(),
                        route(v4("0.0.0.0/0"), RouteTarget::from_gateway_id("igw-0f00")),
                    ],
                ),
                table(
                    "rtb-private-1a".into(),
                    false,
                    vec!["subnet-private-1a".into()],
                    vec![local(), route(v4("0.0.0.0/0"), nat("nat-1a"))],
                ),
                table(
                    "rtb-private-1c".into(),
                    false,
                    vec!["subnet-private-1c".into()],
                    vec![local(), route(v4("0.0.0.0/0"), nat("nat-1c"))],
                ),
            ],
            internet_gateways: vec![gateway(
                "igw-0f00".into(),
                Some("vpc-0a1b2c3d4e5f67890".into()),
            )],
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
            security_groups: vec![SecurityGroup {
                id: "sg-lambda".into(),
                egress: vec![rule(
                    RuleProtocol::from_aws("-1"),
                    RulePeer::Ipv4("0.0.0.0/0".parse().unwrap()),
                )],
                ..SecurityGroup::default()
            }],
            ..Network::default()
        },
    };
    let function = FunctionAttachment {
        name: "kintone-sync".into(),
        subnet_ids: vec!["subnet-private-1a".into(), "subnet-private-1c".into()],
        security_group_ids: vec!["sg-lambda".into()],
        ipv6_allowed_for_dual_stack: false,
        state: Default::default(),
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
    stack.table("rtb-priv-0").routes[1].target = RouteTarget::NetworkInterface("eni-nat".into());
    assert_eq!(stack.check(), vec![]);
}

/// A self-healing NAT: the route names its fixed interface (device index 1), which holds the
/// Elastic IP and has its check off, while the instance's primary interface has neither (the
/// boot dropped its public IP; its check stays on). Judged by the routed interface.
#[test]
fn a_self_healing_nat_is_judged_by_its_fixed_interface() {
    let group = |check: Option<bool>, ip: Option<Ipv4Addr>| {
        let mut stack = Stack::new(2).with_nat_instance();
        let instance = &mut stack.network.instances[0];
        instance.source_dest_check = true;
        instance.public_ip = None;
        instance.network_interfaces.push(InstanceInterface {
            id: "eni-fixed".into(),
            device_index: Some(1),
            source_dest_check: check,
            public_ip: ip,
        });
        stack.table("rtb-priv-0").routes[1].target =
            RouteTarget::NetworkInterface("eni-fixed".into());
        stack
    };
    assert_eq!(group(Some(false), Some(nat_ip(0))).check(), vec![]);
    only(
        group(Some(true), Some(nat_ip(0))).check(),
        FindingCode::NatInstanceSourceDestCheck,
        Severity::Error,
        "i-nat",
    );
    only(
        group(Some(false), None).check(),
        FindingCode::NatInstanceNoElasticIp,
        Severity::Error,
        "i-nat",
    );
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
    stack.nat("nat-0").failure_message = Some("Elastic IP address is already associated".into());
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
        ..Subnet::default()
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
        stack.network.internet_gateways[0].attachments.clear();
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
    stack.network.internet_gateways[0] = gateway("igw-1".into(), Some("vpc-2".into()));
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

/// Running, check off, Elastic IP on, but its boot never turned forwarding on (or is not done):
/// only the console says so.
#[test]
fn nat_instance_running_but_not_ready() {
    use crate::nat_boot::Readiness;
    for readiness in [
        Readiness::Failed(vec![
            "fixedip-nat: FAILED: nftables could not be installed".into()
        ]),
        Readiness::Booting(Vec::new()),
    ] {
        let mut stack = Stack::new(2).with_nat_instance();
        stack.network.instances[0].readiness = Some(readiness);
        only(
            stack.check(),
            FindingCode::NatInstanceNotReady,
            Severity::Error,
            "i-nat",
        );
    }
    let mut ready = Stack::new(2).with_nat_instance();
    ready.network.instances[0].readiness = Some(Readiness::Ready);
    assert!(ready.check().is_empty());
}

#[test]
fn nat_instance_without_elastic_ip() {
    // No public address, or one AWS assigned at launch (no Elastic IP of the account has it).
    for address in [None, Some(nat_ip(0))] {
        let mut stack = Stack::new(2).with_nat_instance();
        stack.network.instances[0].public_ip = address;
        stack.network.addresses.clear();
        only(
            stack.check(),
            FindingCode::NatInstanceNoElasticIp,
            Severity::Error,
            "i-nat",
        );
    }
    // An Elastic IP, but not one in the list.
    let mut stack = Stack::new(2).with_nat_instance();
    stack.network.instances[0].public_ip = Some(Ipv4Addr::new(192, 0, 2, 1));
    stack.network.addresses = vec![elastic_ip(Ipv4Addr::new(192, 0, 2, 1))];
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
        vec![rule(
            RuleProtocol::Tcp,
            RulePeer::Ipv4("10.0.0.0/8".parse().unwrap()),
        )],
        vec![rule(
            RuleProtocol::from_aws("udp"),
            RulePeer::Ipv4("0.0.0.0/0".parse().unwrap()),
        )],
        vec![rule(
            RuleProtocol::All,
            RulePeer::SecurityGroup("sg-1".into()),
        )],
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
    stack.network.security_groups[0].egress = vec![rule(
        RuleProtocol::from_aws("6"),
        RulePeer::Ipv4("198.51.100.20/32".parse().unwrap()),
    )];
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
fn a_nat_gateway_in_a_state_aws_adds_later_is_not_proven() {
    // The model reads an unknown state as pending: not usable yet.
    let mut stack = Stack::new(1);
    stack.nat("nat-0").state = NatGatewayState::from_aws("hibernating");
    only(
        stack.check(),
        FindingCode::NatGatewayPending,
        Severity::Error,
        "nat-0",
    );
}

// ---- The isolated mode. ----

fn isolated_stack() -> Stack {
    let mut stack = Stack::new(2);
    stack.network.nat_gateways.clear();
    // HTTPS to S3's prefix list only: the gateway endpoint is the one way out, and it is open.
    stack.network.security_groups[0].egress = vec![SecurityGroupRule {
        protocol: RuleProtocol::Tcp,
        ports: Some((443, 443)),
        peer: RulePeer::PrefixList("pl-63a5400a".into()),
    }];
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

// ---- Gateway endpoints and the function's security groups. ----

/// A stack whose private tables route S3's prefix list to a gateway endpoint, and whose group lets
/// out only `egress`.
fn with_s3_endpoint(egress: Vec<SecurityGroupRule>) -> Stack {
    let mut stack = Stack::new(2);
    for slot in 0..2 {
        stack.table(&format!("rtb-priv-{slot}")).routes.push(route(
            RouteDestination::PrefixList("pl-63a5400a".into()),
            RouteTarget::GatewayEndpoint("vpce-s3".into()),
        ));
    }
    stack.network.security_groups[0].egress = egress;
    stack
}

fn tcp_to(port: u16, peer: RulePeer) -> SecurityGroupRule {
    SecurityGroupRule {
        protocol: RuleProtocol::Tcp,
        ports: Some((port, port)),
        peer,
    }
}

fn https_to(peer: RulePeer) -> SecurityGroupRule {
    tcp_to(443, peer)
}

#[test]
fn a_group_that_blocks_a_gateway_endpoint_the_routes_use_is_a_warning() {
    let anywhere = RulePeer::Ipv4("0.0.0.0/0".parse().unwrap());
    // The default rule, HTTPS to everywhere, or HTTPS to the prefix list: S3 is reachable.
    for egress in [
        vec![SecurityGroupRule::ALL_OUT],
        vec![https_to(anywhere.clone())],
        vec![
            https_to(RulePeer::Ipv4("203.0.113.0/24".parse().unwrap())),
            https_to(RulePeer::PrefixList("pl-63a5400a".into())),
        ],
    ] {
        assert_eq!(with_s3_endpoint(egress.clone()).check(), [], "{egress:?}");
    }
    // Restricted to a partner's range: every path still leaves through the NAT, but S3's
    // endpoint is filtered out. Reported once, not once per subnet.
    let stack = with_s3_endpoint(vec![https_to(RulePeer::Ipv4(
        "203.0.113.0/24".parse().unwrap(),
    ))]);
    let findings = stack.check();
    only(
        findings.clone(),
        FindingCode::EndpointBlockedBySecurityGroups,
        Severity::Warning,
        "sg-1",
    );
    assert!(
        findings[0].problem.contains("pl-63a5400a"),
        "{}",
        findings[0]
    );
    assert!(
        findings[0].fix.contains("PrefixListId=pl-63a5400a"),
        "{}",
        findings[0]
    );
    assert!(passes(&findings));
    // A rule to the prefix list on another port does not let HTTPS through.
    let stack = with_s3_endpoint(vec![
        tcp_to(80, anywhere.clone()),
        tcp_to(80, RulePeer::PrefixList("pl-63a5400a".into())),
    ]);
    assert_eq!(
        codes(&stack.check()),
        [FindingCode::EndpointBlockedBySecurityGroups]
    );
    // The isolated mode reaches S3 only through the endpoint: the same rule holds.
    let mut stack = with_s3_endpoint(vec![https_to(RulePeer::Ipv4(
        "10.0.0.0/16".parse().unwrap(),
    ))]);
    for slot in 0..2 {
        stack
            .table(&format!("rtb-priv-{slot}"))
            .routes
            .retain(|r| !r.is_default_v4());
    }
    assert_eq!(
        codes(&check_isolated(&stack.network, &stack.function)),
        [FindingCode::EndpointBlockedBySecurityGroups]
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
    assert!(check_declared_egress("sg-1", std::slice::from_ref(&https), &declared).is_empty());
    // The default rule left in place by hand, and the declared one missing.
    let findings = check_declared_egress("sg-1", &[SecurityGroupRule::ALL_OUT], &declared);
    only(
        findings.clone(),
        FindingCode::SecurityGroupEgressDiffers,
        Severity::Error,
        "sg-1",
    );
    assert!(
        findings[0].problem.contains(
            "it also lets out all traffic to 0.0.0.0/0; it does not let out tcp 443 to 0.0.0.0/0"
        ),
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

/// Lambda developer guide, function states: a function that is not Active runs nothing.
#[test]
fn a_function_that_is_not_active_fails_verify_with_its_reason() {
    let mut function = FunctionAttachment {
        name: "f".into(),
        subnet_ids: vec![],
        security_group_ids: vec![],
        ipv6_allowed_for_dual_stack: false,
        state: Default::default(),
    };
    assert_eq!(
        check_function_state(&function),
        None,
        "unknown is taken as Active"
    );
    function.state.state = Some("Active".into());
    assert_eq!(check_function_state(&function), None);
    function.state = crate::observed::FunctionState {
        state: Some("Failed".into()),
        reason_code: Some("SubnetOutOfIPAddresses".into()),
        reason: Some("no free addresses".into()),
    };
    let finding = check_function_state(&function).unwrap();
    assert_eq!(finding.code, FindingCode::FunctionNotActive);
    assert!(finding.is_error());
    assert!(
        finding
            .problem
            .contains("Failed (SubnetOutOfIPAddresses: no free addresses)"),
        "{}",
        finding.problem
    );
    assert!(finding.fix.contains("deploy"));
    function.state.state = Some("Pending".into());
    assert!(check_function_state(&function)
        .unwrap()
        .fix
        .contains("wait"));
}
