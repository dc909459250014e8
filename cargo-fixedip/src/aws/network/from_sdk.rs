//! AWS's Describe answers, as the SDK parses them, into fixedip-core's network model: one function
//! per resource type, the only place these fields are read. Nothing is judged here (that is the
//! model's readers' job); what AWS leaves out is left out, and a resource without its id or
//! without a field the model cannot do without is skipped.

use std::net::Ipv4Addr;

use aws_sdk_ec2::types as sdk;
use fixedip_core::network::{
    Address, EndpointType, GatewayAttachment, Instance, InstanceInterface, InstanceState,
    InternetGateway, NatAddress, NatConnectivity, NatGateway, NatGatewayState, Route,
    RouteDestination, RouteTable, RouteTableAssociation, RouteTarget, RulePeer, RuleProtocol,
    SecurityGroup, SecurityGroupRule, Subnet, Tags, Vpc, VpcEndpoint,
};

pub fn tags(tags: &[sdk::Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

fn ip(text: Option<&str>) -> Option<Ipv4Addr> {
    text.and_then(|ip| ip.parse().ok())
}

/// DNS attributes are not in DescribeVpcs: `None` until DescribeVpcAttribute is asked.
pub fn vpc(vpc: &sdk::Vpc) -> Option<Vpc> {
    Some(Vpc {
        id: vpc.vpc_id()?.to_owned(),
        cidr: vpc.cidr_block()?.parse().ok()?,
        dns_support: None,
        dns_hostnames: None,
        tags: tags(vpc.tags()),
    })
}

pub fn subnet(subnet: &sdk::Subnet) -> Option<Subnet> {
    Some(Subnet {
        id: subnet.subnet_id()?.to_owned(),
        vpc_id: subnet.vpc_id().unwrap_or_default().to_owned(),
        availability_zone: subnet.availability_zone()?.to_owned(),
        cidr: subnet.cidr_block()?.parse().ok()?,
        tags: tags(subnet.tags()),
    })
}

pub fn route_table(table: &sdk::RouteTable) -> Option<RouteTable> {
    Some(RouteTable {
        id: table.route_table_id()?.to_owned(),
        vpc_id: table.vpc_id().unwrap_or_default().to_owned(),
        main: table.associations().iter().any(|a| a.main() == Some(true)),
        associations: table
            .associations()
            .iter()
            .filter_map(|a| {
                Some(RouteTableAssociation {
                    id: a.route_table_association_id()?.to_owned(),
                    subnet_id: a.subnet_id()?.to_owned(),
                })
            })
            .collect(),
        routes: table.routes().iter().filter_map(route).collect(),
        tags: tags(table.tags()),
    })
}

/// One route: IPv4, IPv6 or prefix-list destination, and where it goes. `None` for a route
/// without a destination the model can hold.
pub fn route(route: &sdk::Route) -> Option<Route> {
    let destination = if let Some(cidr) = route.destination_cidr_block() {
        RouteDestination::Ipv4(cidr.parse().ok()?)
    } else if let Some(cidr) = route.destination_ipv6_cidr_block() {
        RouteDestination::Ipv6(cidr.parse().ok()?)
    } else {
        RouteDestination::PrefixList(route.destination_prefix_list_id()?.to_owned())
    };
    // A route to an instance also names its network interface: the instance is what to follow.
    let target = if let Some(id) = route.nat_gateway_id() {
        RouteTarget::NatGateway(id.to_owned())
    } else if let Some(id) = route.instance_id() {
        RouteTarget::Instance(id.to_owned())
    } else if let Some(id) = route.egress_only_internet_gateway_id() {
        RouteTarget::EgressOnlyInternetGateway(id.to_owned())
    } else if let Some(id) = route.network_interface_id() {
        RouteTarget::NetworkInterface(id.to_owned())
    } else if let Some(id) = route.gateway_id() {
        RouteTarget::from_gateway_id(id)
    } else {
        let other = route
            .transit_gateway_id()
            .or(route.vpc_peering_connection_id())
            .or(route.carrier_gateway_id())
            .or(route.local_gateway_id())
            .or(route.core_network_arn())
            .unwrap_or("unknown target");
        RouteTarget::Other(other.to_owned())
    };
    Some(Route {
        destination,
        target,
        blackhole: route.state() == Some(&sdk::RouteState::Blackhole),
    })
}

pub fn internet_gateway(gateway: &sdk::InternetGateway) -> Option<InternetGateway> {
    Some(InternetGateway {
        id: gateway.internet_gateway_id()?.to_owned(),
        attachments: gateway
            .attachments()
            .iter()
            .filter_map(|a| {
                Some(GatewayAttachment {
                    vpc_id: a.vpc_id()?.to_owned(),
                    state: a.state().map(|s| s.as_str()).unwrap_or_default().to_owned(),
                })
            })
            .collect(),
        tags: tags(gateway.tags()),
    })
}

pub fn nat_gateway(nat: &sdk::NatGateway) -> Option<NatGateway> {
    Some(NatGateway {
        id: nat.nat_gateway_id()?.to_owned(),
        vpc_id: nat.vpc_id().unwrap_or_default().to_owned(),
        subnet_id: nat.subnet_id()?.to_owned(),
        state: NatGatewayState::from_aws(nat.state().map(|s| s.as_str()).unwrap_or_default()),
        connectivity: match nat.connectivity_type() {
            Some(sdk::ConnectivityType::Private) => NatConnectivity::Private,
            _ => NatConnectivity::Public,
        },
        failure_message: nat.failure_message().map(str::to_owned),
        addresses: nat
            .nat_gateway_addresses()
            .iter()
            .map(|a| NatAddress {
                allocation_id: a.allocation_id().map(str::to_owned),
                public_ip: ip(a.public_ip()),
            })
            .collect(),
        tags: tags(nat.tags()),
    })
}

pub fn instance(instance: &sdk::Instance) -> Option<Instance> {
    let state = instance
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str())
        .unwrap_or_default();
    let mut network_interfaces: Vec<InstanceInterface> = instance
        .network_interfaces()
        .iter()
        .filter_map(|n| {
            Some(InstanceInterface {
                id: n.network_interface_id()?.to_owned(),
                device_index: n.attachment().and_then(|a| a.device_index()),
                source_dest_check: n.source_dest_check(),
                public_ip: n
                    .association()
                    .and_then(|a| a.public_ip())
                    .and_then(|ip| ip.parse().ok()),
            })
        })
        .collect();
    network_interfaces.sort_by_key(|n| n.device_index.unwrap_or(i32::MAX));
    Some(Instance {
        id: instance.instance_id()?.to_owned(),
        vpc_id: instance.vpc_id().unwrap_or_default().to_owned(),
        subnet_id: instance.subnet_id().unwrap_or_default().to_owned(),
        state: InstanceState::from_aws(state),
        instance_type: instance
            .instance_type()
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default(),
        // AWS's default is on: an instance that does not say is not forwarding.
        source_dest_check: instance.source_dest_check() != Some(false),
        network_interfaces,
        public_ip: ip(instance.public_ip_address()),
        tags: tags(instance.tags()),
        readiness: None,
    })
}

pub fn address(address: &sdk::Address) -> Option<Address> {
    Some(Address {
        allocation_id: address.allocation_id()?.to_owned(),
        public_ip: ip(address.public_ip()),
        association_id: address.association_id().map(str::to_owned),
        network_interface_id: address.network_interface_id().map(str::to_owned),
        instance_id: address.instance_id().map(str::to_owned),
        tags: tags(address.tags()),
    })
}

pub fn endpoint(endpoint: &sdk::VpcEndpoint) -> Option<VpcEndpoint> {
    Some(VpcEndpoint {
        id: endpoint.vpc_endpoint_id()?.to_owned(),
        vpc_id: endpoint.vpc_id().unwrap_or_default().to_owned(),
        service_name: endpoint.service_name()?.to_owned(),
        endpoint_type: match endpoint.vpc_endpoint_type()? {
            sdk::VpcEndpointType::Gateway => EndpointType::Gateway,
            sdk::VpcEndpointType::Interface => EndpointType::Interface,
            other => EndpointType::Other(other.as_str().to_owned()),
        },
        // AWS writes the state in lower case, the SDK's enum in capitals.
        state: endpoint
            .state()
            .map(|s| s.as_str().to_ascii_lowercase())
            .unwrap_or_default(),
        route_table_ids: endpoint.route_table_ids().to_vec(),
        subnet_ids: endpoint.subnet_ids().to_vec(),
        tags: tags(endpoint.tags()),
    })
}

pub fn security_group(group: &sdk::SecurityGroup) -> Option<SecurityGroup> {
    Some(SecurityGroup {
        id: group.group_id()?.to_owned(),
        vpc_id: group.vpc_id().unwrap_or_default().to_owned(),
        ingress: rules(group.ip_permissions()),
        egress: rules(group.ip_permissions_egress()),
        tags: tags(group.tags()),
    })
}

/// `IpPermissions` flattened: one rule per peer, IPv4 ranges as networks, sorted, each once.
pub fn rules(permissions: &[sdk::IpPermission]) -> Vec<SecurityGroupRule> {
    let mut rules = Vec::new();
    for permission in permissions {
        let protocol = RuleProtocol::from_aws(permission.ip_protocol().unwrap_or("-1"));
        let ports = match (&protocol, permission.from_port(), permission.to_port()) {
            (RuleProtocol::All, _, _) => None,
            (_, Some(from), Some(to)) => u16::try_from(from).ok().zip(u16::try_from(to).ok()),
            _ => None,
        };
        let peers = permission
            .ip_ranges()
            .iter()
            .filter_map(|r| r.cidr_ip()?.parse::<ipnet::Ipv4Net>().ok())
            .map(|net| RulePeer::Ipv4(net.trunc()))
            .chain(
                permission
                    .ipv6_ranges()
                    .iter()
                    .filter_map(|r| r.cidr_ipv6().map(|c| RulePeer::Ipv6(c.to_owned()))),
            )
            .chain(
                permission
                    .user_id_group_pairs()
                    .iter()
                    .filter_map(|p| p.group_id().map(|g| RulePeer::SecurityGroup(g.to_owned()))),
            )
            .chain(permission.prefix_list_ids().iter().filter_map(|p| {
                p.prefix_list_id()
                    .map(|p| RulePeer::PrefixList(p.to_owned()))
            }));
        for peer in peers {
            rules.push(SecurityGroupRule {
                protocol: protocol.clone(),
                ports,
                peer,
            });
        }
    }
    rules.sort();
    rules.dedup();
    rules
}
