//! The one reader of a network: Describe calls into fixedip-core's model
//! ([`fixedip_core::network`]), either of one VPC ([`network_of_vpc`], [`observe_network`]: for
//! `verify` and for a network the user runs, read by id, no tag looked at) or of everything a
//! stack's tags lead to ([`describe_stack`]: for the planner, through
//! [`fixedip_core::observed::stack_view`]). Only reads; each resource type is read into the
//! model by one function of [`from_sdk`], whichever way it was found.
//!
//! A function's `VpcConfig` names its subnets; the VPC is derived from them (moto reports a bogus
//! `VpcConfig.VpcId`, and on AWS the subnets are the ground truth anyway). Then the VPC's
//! subnets, route tables (the main one included), NAT gateways, VPC endpoints, the internet
//! gateways and instances its routes name, the Elastic IPs among those instances' addresses, and
//! the function's security groups are described, concurrently where they do not depend on each other.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{Filter, VpcAttributeName};
use fixedip_core::network::{Network, RouteTarget, Vpc};
use fixedip_core::requirements::{AllocationId, StackName};
use fixedip_core::tags;
use fixedip_core::verify::{EgressNetwork, FunctionAttachment};

use super::{Aws, AwsError};

pub mod from_sdk;
#[cfg(test)]
mod replay;
#[cfg(test)]
mod stack_tests;

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
        state: fixedip_core::observed::FunctionState {
            state: configuration.state().map(|s| s.as_str().to_owned()),
            reason_code: configuration
                .state_reason_code()
                .map(|c| c.as_str().to_owned()),
            reason: configuration.state_reason().map(str::to_owned),
        },
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
    read_vpc(aws, vpc_id, Groups::ById(security_group_ids)).await
}

/// Which security groups a VPC's read includes.
enum Groups<'a> {
    /// These, whichever VPC they are in.
    ById(&'a [String]),
    /// Every group of the VPC: for functions whose groups are not known yet.
    InVpc,
}

/// One VPC's network in two round trips, three with NAT instances: everything found by the VPC's
/// id at once (its internet gateways by attachment), then only what its routes name that this did
/// not find (a detached gateway, the instances and their interfaces), then those instances'
/// Elastic IPs.
async fn read_vpc(
    aws: &Aws,
    vpc_id: String,
    groups: Groups<'_>,
) -> Result<EgressNetwork, AwsError> {
    let in_vpc = || vec![filter("vpc-id", &vpc_id)];
    let (subnets, route_tables, nat_gateways, endpoints, security_groups, attached_gateways) = tokio::try_join!(
        subnets(aws, in_vpc()),
        route_tables(aws, in_vpc()),
        nat_gateways(aws, in_vpc()),
        // Which service each gateway endpoint its routes name reaches.
        endpoints(aws, in_vpc()),
        async {
            match groups {
                Groups::ById(ids) => security_groups_by_id(aws, ids).await,
                Groups::InVpc => security_groups(aws, in_vpc()).await,
            }
        },
        internet_gateways(aws, vec![filter("attachment.vpc-id", &vpc_id)]),
    )?;

    // The gateways and instances worth describing are the ones routes lead to.
    let mut gateway_ids = BTreeSet::new();
    let mut instance_ids = BTreeSet::new();
    let mut interface_ids = BTreeSet::new();
    for route in route_tables.iter().flat_map(|t| &t.routes) {
        match &route.target {
            RouteTarget::InternetGateway(id) if !attached_gateways.iter().any(|g| g.id == *id) => {
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
    let (named_gateways, instances) = tokio::try_join!(
        internet_gateways_by_id(aws, &gateway_ids),
        instances_routed_to(aws, &instance_ids, &interface_ids),
    )?;
    let mut internet_gateways = attached_gateways;
    internet_gateways.extend(named_gateways);
    // Which of the instances' public addresses are Elastic IPs of this account: DescribeAddresses
    // lists only those, never the addresses AWS assigns at launch.
    let public_ips: Vec<String> = instances
        .iter()
        .flat_map(|i| i.public_ips())
        .map(|ip| ip.to_string())
        .collect();
    let addresses = match public_ips.is_empty() {
        true => Vec::new(),
        false => {
            addresses(
                aws,
                vec![Filter::builder()
                    .name("public-ip")
                    .set_values(Some(public_ips))
                    .build()],
            )
            .await?
        }
    };
    Ok(EgressNetwork {
        vpc_id,
        resources: Network {
            subnets,
            route_tables,
            internet_gateways,
            nat_gateways,
            instances,
            addresses,
            endpoints,
            security_groups,
            ..Network::default()
        },
    })
}

/// Everything in one VPC that egress depends on, with every security group of the VPC: for a
/// deploy, which knows the VPC before it has read its functions' groups
/// ([`crate::verification::read_functions`]).
pub async fn vpc_network(aws: &Aws, vpc_id: &str) -> Result<EgressNetwork, AwsError> {
    read_vpc(aws, vpc_id.to_owned(), Groups::InVpc).await
}

/// Everything tagged `fixedip:stack = <stack>` in the region, in any state, and the addresses
/// `ips = [...]` names (whatever their tags): what [`fixedip_core::observed::stack_view`] makes
/// the stack's view of. One call per resource type, all at once; then the DNS attributes of the
/// VPC found. NAT gateways are asked by tag with no VPC filter, so that a deleted gateway of a VPC
/// the stack had before still explains an address it held (moto ignores the tag filter on NAT
/// gateways and lists them all: the stack view checks the tags either way).
///
/// `leftovers`: the types read only when [`tagged_types`] lists them (they are then read by
/// [`stack_leftovers`]): left out here.
pub async fn describe_stack(
    aws: &Aws,
    stack: &StackName,
    adopted: &[AllocationId],
    leftovers: Leftovers,
) -> Result<Network, AwsError> {
    let tagged = || vec![filter(&format!("tag:{}", tags::STACK), stack.as_str())];
    let (
        vpcs,
        subnets,
        route_tables,
        internet_gateways,
        nat_gateways,
        instances,
        (tagged_addresses, adopted_addresses),
        endpoints,
        security_groups,
    ) = tokio::try_join!(
        vpcs(aws, tagged()),
        subnets(aws, tagged()),
        route_tables(aws, tagged()),
        internet_gateways(aws, tagged()),
        nat_gateways(aws, tagged()),
        read_if(!leftovers.instances, instances(aws, tagged())),
        async {
            tokio::try_join!(
                addresses(aws, tagged()),
                addresses_by_allocation_id(aws, adopted)
            )
        },
        read_if(!leftovers.endpoints, endpoints(aws, tagged())),
        security_groups(aws, tagged()),
    )?;
    let vpcs =
        futures::future::try_join_all(vpcs.into_iter().map(|vpc| with_dns(aws, vpc))).await?;
    let mut addresses = tagged_addresses;
    for address in adopted_addresses {
        if !addresses
            .iter()
            .any(|a| a.allocation_id == address.allocation_id)
        {
            addresses.push(address);
        }
    }
    Ok(Network {
        vpcs,
        subnets,
        route_tables,
        internet_gateways,
        nat_gateways,
        instances,
        addresses,
        endpoints,
        security_groups,
    })
}

/// The security groups tagged with the stack (the functions', the endpoints', the NAT
/// instances').
pub async fn security_groups_of_stack(
    aws: &Aws,
    stack: &StackName,
) -> Result<Vec<fixedip_core::network::SecurityGroup>, AwsError> {
    security_groups(
        aws,
        vec![filter(&format!("tag:{}", tags::STACK), stack.as_str())],
    )
    .await
}

/// A VPC by its id (empty when there is none).
pub async fn vpcs_by_id(aws: &Aws, vpc_id: &str) -> Result<Vec<Vpc>, AwsError> {
    let answer = aws
        .ec2
        .describe_vpcs()
        .vpc_ids(vpc_id)
        .send()
        .await
        .map_err(|e| AwsError::call("DescribeVpcs", e))?;
    Ok(answer.vpcs().iter().filter_map(from_sdk::vpc).collect())
}

/// The subnets of several VPCs, to count what each holds (a stack with two VPCs is refused,
/// naming what each holds).
pub async fn subnets_of_vpcs(
    aws: &Aws,
    vpc_ids: &[String],
) -> Result<Vec<fixedip_core::network::Subnet>, AwsError> {
    let filter = Filter::builder()
        .name("vpc-id")
        .set_values(Some(vpc_ids.to_vec()))
        .build();
    subnets(aws, vec![filter]).await
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
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

/// One VPC with the DNS attributes the planner checks (one call per attribute: EC2 answers one
/// at a time).
async fn with_dns(aws: &Aws, mut vpc: Vpc) -> Result<Vpc, AwsError> {
    let attribute = |name: VpcAttributeName| {
        aws.ec2
            .describe_vpc_attribute()
            .vpc_id(&vpc.id)
            .attribute(name)
            .send()
    };
    let (support, hostnames) = tokio::try_join!(
        attribute(VpcAttributeName::EnableDnsSupport),
        attribute(VpcAttributeName::EnableDnsHostnames)
    )
    .map_err(|e| AwsError::call("DescribeVpcAttribute", e))?;
    vpc.dns_support = Some(
        support
            .enable_dns_support()
            .and_then(|v| v.value())
            .unwrap_or(false),
    );
    vpc.dns_hostnames = Some(
        hostnames
            .enable_dns_hostnames()
            .and_then(|v| v.value())
            .unwrap_or(false),
    );
    Ok(vpc)
}

/// The types a stack has only as what a mode it left, or a killed run, leaves behind: NAT instances
/// outside `nat = "instance"`, VPC endpoints when none is asked for. `true`: read only when
/// DescribeTags lists one of the stack's ([`tagged_types`]), so that a no-op of a gateway stack
/// does not ask for each. What the plan counts of such a type in its mode (the `terminated`
/// instances and `deleted` endpoints AWS lists for a while, for each slot's next client token) is
/// read whatever DescribeTags says: in the mode the type is always read.
/// (The self-healing NATs' interfaces and templates are asked the same way, under
/// [`super::nat_group::NatGroupReads::IfAnyLeft`].)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Leftovers {
    pub instances: bool,
    pub endpoints: bool,
}

impl Leftovers {
    /// DescribeTags's `resource-type` of each type to look for.
    pub fn resource_types(self) -> Vec<&'static str> {
        let mut types = Vec::new();
        if self.instances {
            types.push(INSTANCE);
        }
        if self.endpoints {
            types.push(VPC_ENDPOINT);
        }
        types
    }
}

/// DescribeTags's names of the resource types a stack may have left behind.
pub const INSTANCE: &str = "instance";
pub const VPC_ENDPOINT: &str = "vpc-endpoint";
pub const NETWORK_INTERFACE: &str = "network-interface";
pub const LAUNCH_TEMPLATE: &str = "launch-template";

/// Which of `types` (DescribeTags's `resource-type` names) hold anything tagged with the stack:
/// one DescribeTags (every page) for all of them, instead of one Describe each. None asked when
/// `types` is empty.
pub async fn tagged_types(
    aws: &Aws,
    stack: &StackName,
    types: &[&str],
) -> Result<BTreeSet<String>, AwsError> {
    if types.is_empty() {
        return Ok(BTreeSet::new());
    }
    let tags: Vec<_> = aws
        .ec2
        .describe_tags()
        .filters(filter("key", tags::STACK))
        .filters(filter("value", stack.as_str()))
        .filters(
            Filter::builder()
                .name("resource-type")
                .set_values(Some(types.iter().map(|t| t.to_string()).collect()))
                .build(),
        )
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("DescribeTags", e))?;
    Ok(tags
        .iter()
        .filter_map(|t| t.resource_type().map(|r| r.as_str().to_owned()))
        .collect())
}

/// The NAT instances and VPC endpoints [`describe_stack`] left to `listed` (what
/// [`tagged_types`] found), read by the stack's tag when listed.
pub async fn stack_leftovers(
    aws: &Aws,
    stack: &StackName,
    leftovers: Leftovers,
    listed: &BTreeSet<String>,
) -> Result<
    (
        Vec<fixedip_core::network::Instance>,
        Vec<fixedip_core::network::VpcEndpoint>,
    ),
    AwsError,
> {
    let tagged = || vec![filter(&format!("tag:{}", tags::STACK), stack.as_str())];
    tokio::try_join!(
        read_if(
            leftovers.instances && listed.contains(INSTANCE),
            instances(aws, tagged())
        ),
        read_if(
            leftovers.endpoints && listed.contains(VPC_ENDPOINT),
            endpoints(aws, tagged())
        ),
    )
}

/// `read`'s answer when `wanted`, otherwise nothing (and no call).
async fn read_if<T>(
    wanted: bool,
    read: impl std::future::Future<Output = Result<Vec<T>, AwsError>>,
) -> Result<Vec<T>, AwsError> {
    match wanted {
        true => read.await,
        false => Ok(Vec::new()),
    }
}

/// The per-type readers: one Describe call with `filters`, every page, into the model.
macro_rules! reader {
    ($name:ident, $call:ident, $operation:literal, $convert:path, $item:ty) => {
        async fn $name(aws: &Aws, filters: Vec<Filter>) -> Result<Vec<$item>, AwsError> {
            let items: Vec<_> = aws
                .ec2
                .$call()
                .set_filters(Some(filters))
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| AwsError::call($operation, e))?;
            Ok(items.iter().filter_map($convert).collect())
        }
    };
}

reader!(vpcs, describe_vpcs, "DescribeVpcs", from_sdk::vpc, Vpc);
reader!(
    subnets,
    describe_subnets,
    "DescribeSubnets",
    from_sdk::subnet,
    fixedip_core::network::Subnet
);
reader!(
    route_tables,
    describe_route_tables,
    "DescribeRouteTables",
    from_sdk::route_table,
    fixedip_core::network::RouteTable
);
reader!(
    internet_gateways,
    describe_internet_gateways,
    "DescribeInternetGateways",
    from_sdk::internet_gateway,
    fixedip_core::network::InternetGateway
);
reader!(
    endpoints,
    describe_vpc_endpoints,
    "DescribeVpcEndpoints",
    from_sdk::endpoint,
    fixedip_core::network::VpcEndpoint
);
reader!(
    security_groups,
    describe_security_groups,
    "DescribeSecurityGroups",
    from_sdk::security_group,
    fixedip_core::network::SecurityGroup
);

/// Like the others, but DescribeNatGateways names its parameter `Filter`, singular.
async fn nat_gateways(
    aws: &Aws,
    filters: Vec<Filter>,
) -> Result<Vec<fixedip_core::network::NatGateway>, AwsError> {
    let items: Vec<_> = aws
        .ec2
        .describe_nat_gateways()
        .set_filter(Some(filters))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("DescribeNatGateways", e))?;
    Ok(items.iter().filter_map(from_sdk::nat_gateway).collect())
}

async fn instances(
    aws: &Aws,
    filters: Vec<Filter>,
) -> Result<Vec<fixedip_core::network::Instance>, AwsError> {
    let reservations: Vec<_> = aws
        .ec2
        .describe_instances()
        .set_filters(Some(filters))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("DescribeInstances", e))?;
    Ok(reservations
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(from_sdk::instance)
        .collect())
}

async fn addresses(
    aws: &Aws,
    filters: Vec<Filter>,
) -> Result<Vec<fixedip_core::network::Address>, AwsError> {
    let answer = aws
        .ec2
        .describe_addresses()
        .set_filters(Some(filters))
        .send()
        .await
        .map_err(|e| AwsError::call("DescribeAddresses", e))?;
    Ok(answer
        .addresses()
        .iter()
        .filter_map(from_sdk::address)
        .collect())
}

/// The addresses named by allocation id. One that does not exist is left out (the planner refuses
/// it, naming it, before any change); AWS fails the whole call for it, so the others are then
/// asked one at a time.
async fn addresses_by_allocation_id(
    aws: &Aws,
    ids: &[AllocationId],
) -> Result<Vec<fixedip_core::network::Address>, AwsError> {
    const NOT_FOUND: &str = "InvalidAllocationID.NotFound";
    let ask = |ids: Vec<String>| {
        aws.ec2
            .describe_addresses()
            .set_allocation_ids(Some(ids))
            .send()
    };
    let not_found = |e: &aws_sdk_ec2::error::SdkError<_, _>| {
        e.as_service_error()
            .and_then(|s| aws_sdk_ec2::error::ProvideErrorMetadata::code(s))
            == Some(NOT_FOUND)
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let all: Vec<String> = ids.iter().map(|a| a.as_str().to_owned()).collect();
    let answers = match ask(all).await {
        Ok(answer) => vec![answer],
        Err(e) if not_found(&e) => {
            let mut found = Vec::new();
            for id in ids {
                match ask(vec![id.as_str().to_owned()]).await {
                    Ok(answer) => found.push(answer),
                    Err(e) if not_found(&e) => {}
                    Err(e) => return Err(AwsError::call("DescribeAddresses", e)),
                }
            }
            found
        }
        Err(e) => return Err(AwsError::call("DescribeAddresses", e)),
    };
    Ok(answers
        .iter()
        .flat_map(|a| a.addresses())
        .filter_map(from_sdk::address)
        .collect())
}

async fn security_groups_by_id(
    aws: &Aws,
    group_ids: &[String],
) -> Result<Vec<fixedip_core::network::SecurityGroup>, AwsError> {
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
    Ok(groups.iter().filter_map(from_sdk::security_group).collect())
}

/// The internet gateways routes name that are not attached to their VPC (detached, or attached
/// elsewhere); none asked when there are none.
async fn internet_gateways_by_id(
    aws: &Aws,
    named: &BTreeSet<String>,
) -> Result<Vec<fixedip_core::network::InternetGateway>, AwsError> {
    if named.is_empty() {
        return Ok(Vec::new());
    }
    // By filter rather than by id: a deleted gateway's id would fail the whole call.
    let ids = Filter::builder()
        .name("internet-gateway-id")
        .set_values(Some(named.iter().cloned().collect()))
        .build();
    internet_gateways(aws, vec![ids]).await
}

/// The instances routes lead to, by instance id or by one of their network interfaces.
async fn instances_routed_to(
    aws: &Aws,
    instance_ids: &BTreeSet<String>,
    interface_ids: &BTreeSet<String>,
) -> Result<Vec<fixedip_core::network::Instance>, AwsError> {
    // The instances the routed interfaces are attached to, asked of the interfaces (moto 5.2.5
    // has no `network-interface.network-interface-id` filter on DescribeInstances).
    let mut ids = instance_ids.clone();
    if !interface_ids.is_empty() {
        let answer = aws
            .ec2
            .describe_network_interfaces()
            .set_network_interface_ids(Some(interface_ids.iter().cloned().collect()))
            .send()
            .await
            .map_err(|e| AwsError::call("DescribeNetworkInterfaces", e))?;
        ids.extend(
            answer
                .network_interfaces()
                .iter()
                .filter_map(|n| n.attachment()?.instance_id())
                .map(str::to_owned),
        );
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let filter = Filter::builder()
        .name("instance-id")
        .set_values(Some(ids.into_iter().collect()))
        .build();
    instances(aws, vec![filter]).await
}

#[cfg(test)]
#[path = "network_tests.rs"]
mod tests;
