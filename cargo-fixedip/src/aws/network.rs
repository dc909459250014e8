//! Observing the network a Lambda function really runs in, for `verify`: any VPC, fixedip's or one
//! built by hand, read into the verifier's [`EgressNetwork`] without looking at a single tag.
//!
//! Only reads. The function's `VpcConfig` names its subnets; the VPC is derived from them (moto
//! reports a bogus `VpcConfig.VpcId`, and on AWS the subnets are the ground truth anyway). Then the
//! VPC's subnets, route tables (the main one included), NAT gateways, the internet gateways and
//! instances its routes name, the Elastic IPs of those instances, and the function's security
//! groups are described, concurrently where they do not depend on each other.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use aws_sdk_ec2::types::{ConnectivityType, Filter, RouteState};
use fixedip_core::verify::{
    EgressNetwork, EgressRule, FunctionAttachment, InstancePublicAddress, InstanceState,
    InternetGateway, IpProtocol, NatAddress, NatConnectivity, NatGateway, NatGatewayState,
    NatInstance, Route, RouteDestination, RouteTable, RouteTarget, RuleDestination, SecurityGroup,
    Subnet,
};

use super::{Aws, AwsError};

/// How a function is attached, from Lambda's GetFunctionConfiguration.
pub async fn function_attachment(aws: &Aws, name: &str) -> Result<FunctionAttachment, AwsError> {
    let configuration = aws
        .lambda
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
        .map_err(|e| AwsError::call("GetFunctionConfiguration", e))?;
    let vpc = configuration.vpc_config();
    Ok(FunctionAttachment {
        name: name.to_owned(),
        subnet_ids: vpc.map(|v| v.subnet_ids().to_vec()).unwrap_or_default(),
        security_group_ids: vpc
            .map(|v| v.security_group_ids().to_vec())
            .unwrap_or_default(),
        ipv6_allowed_for_dual_stack: vpc
            .and_then(|v| v.ipv6_allowed_for_dual_stack())
            .unwrap_or(false),
    })
}

/// Everything in the function's VPC that its egress depends on. A function outside any VPC gets
/// an empty network (the verifier then says so).
pub async fn observe_network(
    aws: &Aws,
    function: &FunctionAttachment,
) -> Result<EgressNetwork, AwsError> {
    let Some(vpc_id) = vpc_of_subnets(aws, &function.subnet_ids).await? else {
        return Ok(EgressNetwork::default());
    };
    network_of_vpc(aws, vpc_id, &function.security_group_ids).await
}

/// Everything in one VPC that egress depends on, and the given security groups.
pub async fn network_of_vpc(
    aws: &Aws,
    vpc_id: String,
    security_group_ids: &[String],
) -> Result<EgressNetwork, AwsError> {
    let (subnets, route_tables, nat_gateways, security_groups) = tokio::try_join!(
        subnets_of_vpc(aws, &vpc_id),
        route_tables_of_vpc(aws, &vpc_id),
        nat_gateways_of_vpc(aws, &vpc_id),
        security_groups(aws, security_group_ids),
    )?;

    // The gateways and instances worth describing are the ones routes lead to.
    let routes = route_tables.iter().flat_map(|t| &t.routes);
    let mut gateway_ids = BTreeSet::new();
    let mut instance_ids = BTreeSet::new();
    let mut interface_ids = BTreeSet::new();
    for route in routes {
        match &route.target {
            RouteTarget::InternetGateway(id) => {
                gateway_ids.insert(id.clone());
            }
            RouteTarget::Instance(id) => {
                instance_ids.insert(id.clone());
            }
            RouteTarget::NetworkInterface(id) => {
                interface_ids.insert(id.clone());
            }
            _ => {}
        }
    }
    let (internet_gateways, instances) = tokio::try_join!(
        internet_gateways(aws, &vpc_id, &gateway_ids),
        nat_instances(aws, &instance_ids, &interface_ids),
    )?;
    Ok(EgressNetwork {
        vpc_id,
        subnets,
        route_tables,
        internet_gateways,
        nat_gateways,
        instances,
        security_groups,
    })
}

async fn vpc_of_subnets(aws: &Aws, subnet_ids: &[String]) -> Result<Option<String>, AwsError> {
    if subnet_ids.is_empty() {
        return Ok(None);
    }
    let answer = aws
        .ec2
        .describe_subnets()
        .set_subnet_ids(Some(subnet_ids.to_vec()))
        .send()
        .await
        .map_err(|e| AwsError::call("DescribeSubnets", e))?;
    Ok(answer
        .subnets()
        .iter()
        .find_map(|s| s.vpc_id().map(str::to_owned)))
}

fn vpc_filter(vpc_id: &str) -> Filter {
    Filter::builder().name("vpc-id").values(vpc_id).build()
}

async fn subnets_of_vpc(aws: &Aws, vpc_id: &str) -> Result<Vec<Subnet>, AwsError> {
    let subnets: Vec<_> = aws
        .ec2
        .describe_subnets()
        .filters(vpc_filter(vpc_id))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("DescribeSubnets", e))?;
    Ok(subnets
        .iter()
        .filter_map(|s| {
            Some(Subnet {
                id: s.subnet_id()?.to_owned(),
                availability_zone: s.availability_zone()?.to_owned(),
                cidr: s.cidr_block()?.parse().ok()?,
            })
        })
        .collect())
}

async fn route_tables_of_vpc(aws: &Aws, vpc_id: &str) -> Result<Vec<RouteTable>, AwsError> {
    let tables: Vec<_> = aws
        .ec2
        .describe_route_tables()
        .filters(vpc_filter(vpc_id))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("DescribeRouteTables", e))?;
    Ok(tables
        .iter()
        .filter_map(|table| {
            Some(RouteTable {
                id: table.route_table_id()?.to_owned(),
                main: table.associations().iter().any(|a| a.main() == Some(true)),
                subnet_ids: table
                    .associations()
                    .iter()
                    .filter_map(|a| a.subnet_id().map(str::to_owned))
                    .collect(),
                routes: table.routes().iter().filter_map(route).collect(),
            })
        })
        .collect())
}

/// One route as the verifier sees it; `None` for a route with no destination it can read.
fn route(route: &aws_sdk_ec2::types::Route) -> Option<Route> {
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
        blackhole: route.state() == Some(&RouteState::Blackhole),
    })
}

async fn nat_gateways_of_vpc(aws: &Aws, vpc_id: &str) -> Result<Vec<NatGateway>, AwsError> {
    let gateways: Vec<_> = aws
        .ec2
        .describe_nat_gateways()
        .filter(vpc_filter(vpc_id))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("DescribeNatGateways", e))?;
    Ok(gateways
        .iter()
        .filter_map(|nat| {
            Some(NatGateway {
                id: nat.nat_gateway_id()?.to_owned(),
                subnet_id: nat.subnet_id()?.to_owned(),
                // A state AWS adds later is not one the verifier can call working.
                state: nat
                    .state()
                    .and_then(|s| NatGatewayState::from_aws(s.as_str()))
                    .unwrap_or(NatGatewayState::Failed),
                connectivity: match nat.connectivity_type() {
                    Some(ConnectivityType::Private) => NatConnectivity::Private,
                    _ => NatConnectivity::Public,
                },
                failure_message: nat.failure_message().map(str::to_owned),
                addresses: nat
                    .nat_gateway_addresses()
                    .iter()
                    .map(|a| NatAddress {
                        allocation_id: a.allocation_id().map(str::to_owned),
                        public_ip: a.public_ip().and_then(|ip| ip.parse().ok()),
                    })
                    .collect(),
            })
        })
        .collect())
}

/// The internet gateways attached to the VPC and the ones its routes name (which may be detached,
/// or attached elsewhere).
async fn internet_gateways(
    aws: &Aws,
    vpc_id: &str,
    named: &BTreeSet<String>,
) -> Result<Vec<InternetGateway>, AwsError> {
    let attached = aws
        .ec2
        .describe_internet_gateways()
        .filters(
            Filter::builder()
                .name("attachment.vpc-id")
                .values(vpc_id)
                .build(),
        )
        .send();
    let by_id = async {
        if named.is_empty() {
            return Ok(None);
        }
        // By filter rather than by id: a deleted gateway's id would fail the whole call.
        aws.ec2
            .describe_internet_gateways()
            .filters(
                Filter::builder()
                    .name("internet-gateway-id")
                    .set_values(Some(named.iter().cloned().collect()))
                    .build(),
            )
            .send()
            .await
            .map(Some)
    };
    let (attached, by_id) = tokio::try_join!(attached, by_id)
        .map_err(|e| AwsError::call("DescribeInternetGateways", e))?;
    let mut gateways: Vec<InternetGateway> = Vec::new();
    let all = attached
        .internet_gateways()
        .iter()
        .chain(by_id.iter().flat_map(|a| a.internet_gateways()));
    for gateway in all {
        let Some(id) = gateway.internet_gateway_id() else {
            continue;
        };
        if gateways.iter().any(|g| g.id == id) {
            continue;
        }
        gateways.push(InternetGateway {
            id: id.to_owned(),
            attached_vpc_id: gateway
                .attachments()
                .iter()
                // `available` is AWS's word for attached; `attaching`/`detaching` carry nothing.
                .filter(|a| a.state().is_some_and(|s| s.as_str() == "available"))
                .find_map(|a| a.vpc_id().map(str::to_owned)),
        });
    }
    Ok(gateways)
}

/// The instances routes lead to, by instance id or by one of their network interfaces, with
/// whether their public address is an Elastic IP.
async fn nat_instances(
    aws: &Aws,
    instance_ids: &BTreeSet<String>,
    interface_ids: &BTreeSet<String>,
) -> Result<Vec<NatInstance>, AwsError> {
    if instance_ids.is_empty() && interface_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut filters = Vec::new();
    if !instance_ids.is_empty() {
        filters.push(
            Filter::builder()
                .name("instance-id")
                .set_values(Some(instance_ids.iter().cloned().collect()))
                .build(),
        );
    }
    if !interface_ids.is_empty() {
        filters.push(
            Filter::builder()
                .name("network-interface.network-interface-id")
                .set_values(Some(interface_ids.iter().cloned().collect()))
                .build(),
        );
    }
    // Filters are ANDed: one call per kind of reference.
    let mut instances = Vec::new();
    for filter in filters {
        let found: Vec<_> = aws
            .ec2
            .describe_instances()
            .filters(filter)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| AwsError::call("DescribeInstances", e))?;
        for reservation in found {
            for instance in reservation.instances() {
                if !instances.iter().any(|i: &aws_sdk_ec2::types::Instance| {
                    i.instance_id() == instance.instance_id()
                }) {
                    instances.push(instance.clone());
                }
            }
        }
    }
    let public_ips: Vec<String> = instances
        .iter()
        .filter_map(|i| i.public_ip_address().map(str::to_owned))
        .collect();
    let elastic = elastic_ips(aws, &public_ips).await?;
    Ok(instances
        .iter()
        .filter_map(|instance| {
            let ip: Option<Ipv4Addr> = instance.public_ip_address().and_then(|ip| ip.parse().ok());
            Some(NatInstance {
                id: instance.instance_id()?.to_owned(),
                subnet_id: instance.subnet_id().unwrap_or_default().to_owned(),
                state: instance
                    .state()
                    .and_then(|s| s.name())
                    .and_then(|n| InstanceState::from_aws(n.as_str()))
                    .unwrap_or(InstanceState::Pending),
                // AWS's default is on: an instance that does not say is not forwarding.
                source_dest_check: instance.source_dest_check().unwrap_or(true),
                network_interface_ids: instance
                    .network_interfaces()
                    .iter()
                    .filter_map(|n| n.network_interface_id().map(str::to_owned))
                    .collect(),
                public_address: ip.map(|ip| InstancePublicAddress {
                    ip,
                    elastic: elastic.contains(&ip),
                }),
            })
        })
        .collect())
}

/// Which of these public addresses are Elastic IPs of this account: DescribeAddresses lists only
/// those, never the addresses AWS assigns at launch.
async fn elastic_ips(aws: &Aws, public_ips: &[String]) -> Result<BTreeSet<Ipv4Addr>, AwsError> {
    if public_ips.is_empty() {
        return Ok(BTreeSet::new());
    }
    let answer = aws
        .ec2
        .describe_addresses()
        .filters(
            Filter::builder()
                .name("public-ip")
                .set_values(Some(public_ips.to_vec()))
                .build(),
        )
        .send()
        .await
        .map_err(|e| AwsError::call("DescribeAddresses", e))?;
    Ok(answer
        .addresses()
        .iter()
        .filter_map(|a| a.public_ip()?.parse().ok())
        .collect())
}

async fn security_groups(aws: &Aws, group_ids: &[String]) -> Result<Vec<SecurityGroup>, AwsError> {
    if group_ids.is_empty() {
        return Ok(Vec::new());
    }
    let groups: Vec<_> = aws
        .ec2
        .describe_security_groups()
        .set_group_ids(Some(group_ids.to_vec()))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("DescribeSecurityGroups", e))?;
    Ok(groups
        .iter()
        .filter_map(|group| {
            Some(SecurityGroup {
                id: group.group_id()?.to_owned(),
                egress: group
                    .ip_permissions_egress()
                    .iter()
                    .flat_map(egress_rules)
                    .collect(),
            })
        })
        .collect())
}

/// One `IpPermission` flattened into one rule per destination.
fn egress_rules(permission: &aws_sdk_ec2::types::IpPermission) -> Vec<EgressRule> {
    let protocol = IpProtocol::from_aws(permission.ip_protocol().unwrap_or("-1"));
    let ipv4 = permission
        .ip_ranges()
        .iter()
        .filter_map(|r| Some(RuleDestination::Ipv4(r.cidr_ip()?.parse().ok()?)));
    let ipv6 = permission
        .ipv6_ranges()
        .iter()
        .filter_map(|r| Some(RuleDestination::Ipv6(r.cidr_ipv6()?.parse().ok()?)));
    let prefix_lists = permission
        .prefix_list_ids()
        .iter()
        .filter_map(|p| Some(RuleDestination::PrefixList(p.prefix_list_id()?.to_owned())));
    let groups = permission
        .user_id_group_pairs()
        .iter()
        .filter_map(|g| Some(RuleDestination::SecurityGroup(g.group_id()?.to_owned())));
    ipv4.chain(ipv6)
        .chain(prefix_lists)
        .chain(groups)
        .map(|destination| EgressRule {
            protocol: protocol.clone(),
            destination,
        })
        .collect()
}

#[cfg(test)]
#[path = "network_tests.rs"]
mod tests;
