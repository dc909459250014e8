use std::net::Ipv4Addr;

use super::*;
use crate::network::{
    Address, GatewayAttachment, Instance, InstanceInterface, InternetGateway, NatAddress,
    NatConnectivity, NatGateway, Network, Route, RouteTable, RouteTableAssociation, RouteTarget,
    SecurityGroupRule, Subnet, Tags, Vpc, VpcEndpoint,
};

const REGION: &str = "us-east-1";

fn stack() -> StackName {
    StackName::parse("payments").unwrap()
}

/// The tags fixedip puts on a resource of the stack.
fn tagged(component: Component, slot: Option<Slot>) -> Tags {
    tags::for_resource(&stack(), component, slot, None)
        .into_iter()
        .collect()
}

fn with(mut tags: Tags, key: &str, value: &str) -> Tags {
    tags.insert(key.to_owned(), value.to_owned());
    tags
}

fn nat_gateway(id: &str, vpc: &str, slot: Slot, state: NatState, allocation: &str) -> NatGateway {
    NatGateway {
        id: id.into(),
        vpc_id: vpc.into(),
        subnet_id: format!("subnet-public-{slot}"),
        state,
        connectivity: NatConnectivity::Public,
        failure_message: None,
        addresses: vec![NatAddress {
            allocation_id: Some(allocation.into()),
            public_ip: None,
        }],
        tags: tagged(Component::NatGateway, Some(slot)),
    }
}

fn address(id: &str, last: u8, slot: Slot, association: Option<(&str, &str)>) -> Address {
    Address {
        allocation_id: id.into(),
        public_ip: Some(Ipv4Addr::new(203, 0, 113, last)),
        association_id: association.map(|(a, _)| a.to_owned()),
        network_interface_id: association.map(|(_, eni)| eni.to_owned()),
        instance_id: None,
        tags: with(
            tagged(Component::Address, Some(slot)),
            tags::ADDRESS,
            "active",
        ),
    }
}

fn route(destination: &str, target: RouteTarget) -> Route {
    let destination = match destination.parse() {
        Ok(v4) => RouteDestination::Ipv4(v4),
        Err(_) => match destination.parse() {
            Ok(v6) => RouteDestination::Ipv6(v6),
            Err(_) => RouteDestination::PrefixList(destination.into()),
        },
    };
    Route {
        destination,
        target,
        blackhole: false,
    }
}

/// What a reading by tags finds for a stack deployed in one AZ, plus what it must leave out.
fn deployed() -> Network {
    let subnet = |id: &str, component: Component, cidr: &str| Subnet {
        id: id.into(),
        vpc_id: "vpc-1".into(),
        availability_zone: "us-east-1a".into(),
        cidr: cidr.parse().unwrap(),
        tags: tagged(component, Some(0)),
    };
    let group = |id: &str, component: Component| SecurityGroup {
        id: id.into(),
        vpc_id: "vpc-1".into(),
        egress: vec![SecurityGroupRule::ALL_OUT],
        tags: tagged(component, None),
        ..SecurityGroup::default()
    };
    Network {
        vpcs: vec![Vpc {
            id: "vpc-1".into(),
            cidr: "10.0.0.0/16".parse().unwrap(),
            dns_support: Some(true),
            dns_hostnames: Some(true),
            tags: tagged(Component::Vpc, None),
        }],
        subnets: vec![
            subnet("subnet-public-0", Component::PublicSubnet, "10.0.128.0/20"),
            subnet("subnet-private-0", Component::PrivateSubnet, "10.0.0.0/20"),
            // Another stack's subnet.
            Subnet {
                tags: with(Tags::new(), tags::STACK, "other"),
                ..subnet("subnet-other", Component::PrivateSubnet, "10.1.0.0/20")
            },
        ],
        route_tables: vec![RouteTable {
            id: "rtb-private-0".into(),
            vpc_id: "vpc-1".into(),
            main: false,
            associations: vec![RouteTableAssociation {
                id: "rtbassoc-1".into(),
                subnet_id: "subnet-private-0".into(),
            }],
            routes: vec![
                route("10.0.0.0/16", RouteTarget::Local),
                route("0.0.0.0/0", RouteTarget::NatGateway("nat-0".into())),
                route(
                    "::/0",
                    RouteTarget::EgressOnlyInternetGateway("eigw-1".into()),
                ),
                route(
                    "pl-63a5400a",
                    RouteTarget::GatewayEndpoint("vpce-s3".into()),
                ),
            ],
            tags: tagged(Component::PrivateRouteTable, Some(0)),
        }],
        internet_gateways: vec![InternetGateway {
            id: "igw-1".into(),
            attachments: vec![GatewayAttachment {
                vpc_id: "vpc-1".into(),
                state: "available".into(),
            }],
            tags: tagged(Component::InternetGateway, None),
        }],
        nat_gateways: vec![
            nat_gateway("nat-0", "vpc-1", 0, NatState::Available, "eipalloc-0"),
            // Gone a while ago: AWS still lists it.
            nat_gateway("nat-old", "vpc-1", 0, NatState::Deleted, "eipalloc-9"),
            // The stack's tags, another VPC (one the stack had before).
            nat_gateway(
                "nat-elsewhere",
                "vpc-9",
                0,
                NatState::Available,
                "eipalloc-8",
            ),
        ],
        instances: Vec::new(),
        addresses: vec![
            address("eipalloc-0", 10, 0, Some(("eipassoc-0", "eni-nat-0"))),
            Address {
                tags: with(tagged(Component::Address, None), tags::ADDRESS, "retained"),
                ..address("eipalloc-1", 11, 0, None)
            },
        ],
        endpoints: vec![VpcEndpoint {
            id: "vpce-s3".into(),
            vpc_id: "vpc-1".into(),
            service_name: "com.amazonaws.us-east-1.s3".into(),
            endpoint_type: EndpointType::Gateway,
            state: "Available".into(),
            route_table_ids: vec!["rtb-private-0".into()],
            subnet_ids: Vec::new(),
            tags: tagged(Component::VpcEndpoint, Some(0)),
        }],
        security_groups: vec![
            group("sg-functions", Component::SecurityGroup),
            group("sg-endpoints", Component::EndpointSecurityGroup),
            group("sg-nat-2", Component::NatSecurityGroup),
            group("sg-nat-1", Component::NatSecurityGroup),
        ],
    }
}

fn view(network: &Network) -> Result<ObservedState, ViewError> {
    stack_view(&stack(), REGION, &[], network)
}

#[test]
fn a_deployed_stack_is_read_whole() {
    let observed = view(&deployed()).unwrap();
    assert_eq!(
        observed.vpc,
        Some(ObservedVpc {
            id: "vpc-1".into(),
            cidr: "10.0.0.0/16".parse().unwrap(),
            dns_support: true,
            dns_hostnames: true,
        })
    );
    assert_eq!(
        observed.internet_gateway.as_ref().map(|g| g.id.as_str()),
        Some("igw-1")
    );
    let subnets: Vec<(&str, Tier)> = observed
        .subnets
        .iter()
        .map(|s| (s.id.as_str(), s.tier))
        .collect();
    assert_eq!(
        subnets,
        [
            ("subnet-public-0", Tier::Public),
            ("subnet-private-0", Tier::Private)
        ]
    );
    assert_eq!(
        observed.nat_gateways,
        [ObservedNatGateway {
            id: "nat-0".into(),
            subnet_id: "subnet-public-0".into(),
            allocation_ids: vec!["eipalloc-0".into()],
            state: NatState::Available,
            slot: 0,
        }]
    );
    let addresses: Vec<(&str, AddressUse, Option<Slot>, bool)> = observed
        .addresses
        .iter()
        .map(|a| {
            (
                a.allocation_id.as_str(),
                a.usage,
                a.slot,
                a.stale_association,
            )
        })
        .collect();
    assert_eq!(
        addresses,
        [
            ("eipalloc-1", AddressUse::Retained, None, false),
            ("eipalloc-0", AddressUse::Active, Some(0), false),
        ]
    );
    assert_eq!(
        observed.security_group.map(|g| g.id),
        Some("sg-functions".into())
    );
    assert_eq!(
        observed.endpoint_security_group.map(|g| g.id),
        Some("sg-endpoints".into())
    );
    // Never duplicated by a retry: the lowest id, no refusal.
    assert_eq!(
        observed.nat_security_group.map(|g| g.id),
        Some("sg-nat-1".into())
    );
    // The endpoint's state is compared whatever its case.
    assert_eq!(observed.endpoints.len(), 1);
    assert_eq!(
        observed.endpoints[0].service,
        Endpoint::parse("s3").unwrap()
    );
    assert_eq!(observed.endpoints[0].slot, Some(0));
}

#[test]
fn route_tables_keep_their_ipv4_routes() {
    let observed = view(&deployed()).unwrap();
    let table = &observed.route_tables[0];
    assert_eq!((table.tier, table.slot), (Tier::Private, Some(0)));
    assert!(table.serves("subnet-private-0"));
    let destinations: Vec<String> = table
        .routes
        .iter()
        .map(|r| r.destination.to_string())
        .collect();
    assert_eq!(destinations, ["10.0.0.0/16", "0.0.0.0/0"]);
    assert!(!observed.looks_isolated());
}

#[test]
fn an_address_held_only_by_a_deleted_nat_gateway_has_a_stale_association() {
    let mut network = deployed();
    // The crash after DeleteNatGateway: AWS drops the association with the gateway, the
    // emulator keeps it.
    network.nat_gateways[0].state = NatState::Deleted;
    let observed = view(&network).unwrap();
    let address = observed
        .addresses
        .iter()
        .find(|a| a.allocation_id == "eipalloc-0")
        .unwrap();
    assert!(address.stale_association, "{address:?}");
    assert_eq!(address.in_use(), None);
    assert_eq!(address.association_id.as_deref(), Some("eipassoc-0"));

    // Held by something fixedip did not make: in use, not stale.
    let mut network = deployed();
    network.nat_gateways.remove(0);
    let observed = view(&network).unwrap();
    let address = observed
        .addresses
        .iter()
        .find(|a| a.allocation_id == "eipalloc-0")
        .unwrap();
    assert!(!address.stale_association);
    assert_eq!(address.in_use(), Some("eipassoc-0"));
}

#[test]
fn dead_gateways_aws_still_lists_are_counted_by_slot_for_token_generations() {
    let mut network = deployed();
    network
        .nat_gateways
        .retain(|n| n.state != NatState::Deleted);
    assert_eq!(view(&network).unwrap().retired, Default::default());
    network.nat_gateways[0].state = NatState::Deleted;
    let mut failed = network.nat_gateways[0].clone();
    failed.id = "nat-failed".into();
    failed.state = NatState::Failed;
    network.nat_gateways.push(failed);
    let slot = slot_tag(&network.nat_gateways[0].tags).unwrap();
    let observed = view(&network).unwrap();
    assert_eq!(observed.retired.nat_gateways.get(&slot), Some(&2));
    assert!(observed.retired.nat_instances.is_empty());
}

#[test]
fn an_address_on_a_nat_instance_is_in_use_not_stale() {
    let mut network = deployed();
    network.nat_gateways[0].state = NatState::Deleted;
    network.instances.push(Instance {
        id: "i-nat".into(),
        vpc_id: "vpc-1".into(),
        subnet_id: "subnet-public-0".into(),
        state: InstanceState::from_aws("running"),
        instance_type: "t4g.nano".into(),
        source_dest_check: false,
        network_interfaces: vec![InstanceInterface {
            id: "eni-nat-0".into(),
            device_index: Some(0),
            ..Default::default()
        }],
        public_ip: None,
        tags: tagged(Component::NatInstance, Some(0)),
        readiness: None,
    });
    let observed = view(&network).unwrap();
    assert_eq!(observed.nat_instances.len(), 1);
    assert_eq!(
        observed.nat_instances[0].network_interface_id.as_deref(),
        Some("eni-nat-0")
    );
    assert!(observed.addresses.iter().all(|a| !a.stale_association));

    // Terminated: gone from the view.
    network.instances[0].state = InstanceState::Terminated;
    assert!(view(&network).unwrap().nat_instances.is_empty());
}

#[test]
fn adopted_and_pending_addresses() {
    let mut network = deployed();
    network.addresses.push(Address {
        allocation_id: "eipalloc-0abc1234".into(),
        public_ip: Some(Ipv4Addr::new(198, 51, 100, 1)),
        ..Address::default()
    });
    network.addresses[0]
        .tags
        .insert(tags::ADDRESS.into(), "pending".into());
    let adopted = [AllocationId::parse("eipalloc-0abc1234").unwrap()];
    let observed = stack_view(&stack(), REGION, &adopted, &network).unwrap();
    let user = observed
        .addresses
        .iter()
        .find(|a| a.allocation_id == "eipalloc-0abc1234")
        .unwrap();
    assert_eq!(
        (user.usage, user.slot, user.adopted),
        (AddressUse::Retained, None, true)
    );
    let pending = observed
        .addresses
        .iter()
        .find(|a| a.allocation_id == "eipalloc-0")
        .unwrap();
    assert_eq!(pending.usage, AddressUse::Pending);
    // Not named, not tagged: not the stack's.
    assert!(view(&network)
        .unwrap()
        .addresses
        .iter()
        .all(|a| a.allocation_id != "eipalloc-0abc1234"));
}

#[test]
fn what_cannot_be_told_apart_is_refused() {
    let mut network = deployed();
    let mut second = network.vpcs[0].clone();
    second.id = "vpc-0".into();
    network.vpcs.push(second);
    assert_eq!(
        view(&network),
        Err(ViewError::DuplicateVpcs {
            stack: "payments".into(),
            vpcs: vec!["vpc-0".into(), "vpc-1".into()]
        })
    );

    let mut network = deployed();
    let mut group = network.security_groups[0].clone();
    group.id = "sg-again".into();
    network.security_groups.push(group);
    assert!(matches!(
        view(&network),
        Err(ViewError::Duplicate {
            component: "security group",
            ..
        })
    ));

    let mut network = deployed();
    let mut gateway = network.internet_gateways[0].clone();
    gateway.id = "igw-0".into();
    network.internet_gateways.push(gateway);
    assert!(matches!(
        view(&network),
        Err(ViewError::Duplicate {
            component: "internet gateway",
            ..
        })
    ));
}

#[test]
fn a_detached_extra_internet_gateway_is_listed_for_the_planner() {
    let mut network = deployed();
    let mut gateway = network.internet_gateways[0].clone();
    gateway.id = "igw-0".into();
    gateway.attachments.clear();
    network.internet_gateways.push(gateway);
    let observed = view(&network).unwrap();
    assert_eq!(observed.internet_gateway.unwrap().id, "igw-1");
    assert_eq!(observed.extra_internet_gateways.len(), 1);
    assert_eq!(observed.extra_internet_gateways[0].id, "igw-0");

    // No VPC yet (a first deploy killed early): the lowest detached one is the stack's.
    network.vpcs.clear();
    network.internet_gateways[0].attachments.clear();
    let observed = view(&network).unwrap();
    assert_eq!(observed.internet_gateway.unwrap().id, "igw-0");
    assert!(observed.nat_gateways.is_empty());
}

#[test]
fn endpoints_gone_or_of_another_region_are_left_out() {
    let mut network = deployed();
    network.endpoints[0].state = "deleted".into();
    assert!(view(&network).unwrap().endpoints.is_empty());
    let mut network = deployed();
    network.endpoints[0].service_name = "com.amazonaws.eu-west-1.s3".into();
    assert!(view(&network).unwrap().endpoints.is_empty());
}

#[test]
fn an_address_without_its_ip_is_an_incomplete_answer() {
    let mut network = deployed();
    network.addresses[0].public_ip = None;
    assert_eq!(
        view(&network),
        Err(ViewError::AddressWithoutIp {
            allocation_id: "eipalloc-0".into()
        })
    );
}

#[test]
fn an_empty_reading_is_an_empty_stack() {
    let observed = view(&Network::default()).unwrap();
    assert!(observed.holds_nothing());
}
