//! Observing what exists for one stack, found by its tags: the planner's other input.
//!
//! Only reads. Most lookups are independent and run concurrently; the NAT gateways wait for the
//! VPC, because DescribeNatGateways must be narrowed by `vpc-id` (moto ignores tag filters on it, and
//! filtering by VPC first then checking tags ourselves is right on AWS too).
//! Not-found is matched on typed errors (IAM `NoSuchEntity`, Lambda `ResourceNotFound`), or on the
//! documented EC2 error code, never on a message.

use std::net::Ipv4Addr;

use aws_sdk_ec2::types::{
    Address, AvailabilityZoneState, Filter, IpPermission, NatGatewayState, RouteState, RouteTable,
    Subnet, Tag, VpcAttributeName, VpcEndpointType,
};
use fixedip_core::observed::{
    AddressUse, NatState, ObservedAddress, ObservedEndpoint, ObservedFunction,
    ObservedInternetGateway, ObservedNatGateway, ObservedNatInstance, ObservedRole, ObservedRoute,
    ObservedRouteTable, ObservedSecurityGroup, ObservedState, ObservedSubnet, ObservedVpc,
    RouteTarget, RulePeer, RuleProtocol, SecurityGroupRule, Slot, Tier,
};
use fixedip_core::plan::StackSpec;
use fixedip_core::requirements::{AllocationId, Endpoint, EndpointKind, StackName};
use fixedip_core::settings::Architecture;
use fixedip_core::tags::{self, Component};
use ipnet::Ipv4Net;

use super::{Aws, AwsError};

/// What to look for: the stack (by its tags), the functions (by name) and the adopted addresses.
#[derive(Debug, Clone)]
pub struct Scope {
    pub stack: StackName,
    /// Lambda functions to look up by name, whether or not they are attached yet.
    pub functions: Vec<String>,
    /// Addresses named by `ips = [...]`, looked up by allocation id whatever their tags.
    pub adopted_ips: Vec<AllocationId>,
    /// Also list every function attached to the stack's private subnets (`status`). Costs a
    /// ListFunctions over the whole region, so `deploy` and `plan` leave it off.
    pub attached_functions: bool,
    /// A VPC the user runs (`vpc = "vpc-..."`), read by id whatever its tags.
    pub existing_vpc: Option<String>,
}

impl Scope {
    /// Just the stack: what `ips` and `status` need.
    pub fn stack(stack: StackName) -> Scope {
        Scope {
            stack,
            functions: Vec::new(),
            adopted_ips: Vec::new(),
            attached_functions: false,
            existing_vpc: None,
        }
    }
}

impl From<&StackSpec> for Scope {
    fn from(spec: &StackSpec) -> Scope {
        Scope {
            stack: spec.stack.clone(),
            functions: spec.functions.iter().map(|f| f.name.clone()).collect(),
            adopted_ips: spec.adopted_ips.clone(),
            attached_functions: false,
            existing_vpc: spec.modes.existing.as_ref().map(|e| e.vpc.clone()),
        }
    }
}

/// Reads everything the stack's tags lead to, and the availability zones the region offers.
pub async fn observe(aws: &Aws, scope: &Scope) -> Result<ObservedState, AwsError> {
    let stack = &scope.stack;
    let (
        offered_azs,
        vpcs,
        internet_gateways,
        subnets,
        addresses,
        route_tables,
        security_groups,
        endpoint_security_groups,
        endpoints,
        role,
        named,
        existing_network,
    ) = tokio::try_join!(
        offered_azs(aws),
        find_vpcs(aws, stack),
        find_internet_gateways(aws, stack),
        find_subnets(aws, stack),
        find_addresses(aws, stack, &scope.adopted_ips),
        find_route_tables(aws, stack),
        find_security_groups(aws, stack, Component::SecurityGroup),
        find_security_groups(aws, stack, Component::EndpointSecurityGroup),
        find_endpoints(aws, stack),
        find_role(aws, stack),
        find_functions_by_name(aws, &scope.functions),
        async {
            match &scope.existing_vpc {
                Some(vpc) => super::existing::observe_existing_network(aws, vpc).await,
                None => Ok(None),
            }
        },
    )?;

    if vpcs.len() > 1 {
        return Err(duplicate_vpcs(aws, stack, &vpcs).await?);
    }
    let vpc = match vpcs.first() {
        Some((id, cidr)) => {
            let (dns_support, dns_hostnames) = vpc_dns(aws, id).await?;
            Some(ObservedVpc {
                id: id.clone(),
                cidr: *cidr,
                dns_support,
                dns_hostnames,
            })
        }
        None => None,
    };
    let (nat_gateways, nat_instances, nat_security_group) = match &vpc {
        Some(vpc) => tokio::try_join!(
            find_nat_gateways(aws, stack, &vpc.id),
            super::nat_instance::find_nat_instances(aws, stack, &vpc.id),
            super::nat_instance::find_nat_security_group(aws, stack),
        )?,
        None => (Vec::new(), Vec::new(), None),
    };
    let (internet_gateway, extra_internet_gateways) =
        the_internet_gateway(stack, internet_gateways, vpc.as_ref())?;
    let security_group = single_group(stack, "security group", security_groups)?;
    let endpoint_security_group =
        single_group(stack, "endpoint security group", endpoint_security_groups)?;
    let mut addresses = addresses;
    forget_associations_of_deleted_nats(aws, &mut addresses, &nat_gateways, &nat_instances).await?;

    let mut functions = named;
    if scope.attached_functions {
        let private: Vec<&str> = subnets
            .iter()
            .filter(|s| s.tier == Tier::Private)
            .map(|s| s.id.as_str())
            .collect();
        // On a network the user runs, the stack has no subnet: its security group finds them.
        let group = security_group.as_ref().map(|g| g.id.as_str());
        for function in find_attached_functions(aws, &private, group).await? {
            if !functions.iter().any(|f| f.name == function.name) {
                functions.push(function);
            }
        }
    }

    Ok(ObservedState {
        offered_azs,
        vpc,
        internet_gateway,
        extra_internet_gateways,
        subnets,
        addresses,
        nat_gateways,
        route_tables,
        security_group,
        endpoint_security_group,
        endpoints,
        role,
        functions,
        // Filled by the quota check of the lifecycle work; unknown means "not checked".
        address_quota: None,
        addresses_in_use_in_region: None,
        nat_instances,
        nat_security_group,
        existing_network,
    })
}

/// The account's Elastic IP quota in the region (DescribeAccountAttributes `vpc-max-elastic-ips`)
/// and how many addresses it holds there (DescribeAddresses, unfiltered), for the planner's quota
/// check. Two calls more: `deploy` asks only when its plan allocates (see `commands/deploy.rs`).
pub async fn address_quota(aws: &Aws, observed: &mut ObservedState) -> Result<(), AwsError> {
    use aws_sdk_ec2::types::AccountAttributeName;
    let attributes = aws
        .ec2
        .describe_account_attributes()
        .attribute_names(AccountAttributeName::from("vpc-max-elastic-ips"));
    let (attributes, addresses) =
        tokio::join!(attributes.send(), aws.ec2.describe_addresses().send());
    let attributes = attributes.map_err(|e| AwsError::call("DescribeAccountAttributes", e))?;
    let addresses = addresses.map_err(|e| AwsError::call("DescribeAddresses", e))?;
    observed.address_quota = attributes
        .account_attributes()
        .iter()
        .find(|a| a.attribute_name() == Some("vpc-max-elastic-ips"))
        .and_then(|a| a.attribute_values().first())
        .and_then(|v| v.attribute_value())
        .and_then(|v| v.parse().ok());
    observed.addresses_in_use_in_region = Some(addresses.addresses().len() as u32);
    Ok(())
}

/// An address still associated although no live NAT gateway of the stack uses it: either it is
/// in use elsewhere (the planner refuses to touch it) or the association belongs to a NAT
/// gateway that is `deleted`. AWS drops that association with the gateway; moto keeps it. Only
/// in this unusual case is one more call made: the deleted gateways, to tell the two apart.
/// An address on a NAT instance's interface is explained: it moved there after its gateway was
/// deleted (`nat = "instance"`).
async fn forget_associations_of_deleted_nats(
    aws: &Aws,
    addresses: &mut [ObservedAddress],
    live: &[ObservedNatGateway],
    instances: &[ObservedNatInstance],
) -> Result<(), AwsError> {
    let unexplained = |a: &ObservedAddress| {
        let on_instance = a.network_interface_id.is_some()
            && instances
                .iter()
                .any(|i| i.network_interface_id == a.network_interface_id);
        a.association_id.is_some()
            && !on_instance
            && !live
                .iter()
                .any(|nat| nat.allocation_ids.contains(&a.allocation_id))
    };
    if !addresses.iter().any(unexplained) {
        return Ok(());
    }
    let deleted = aws
        .ec2
        .describe_nat_gateways()
        .filter(Filter::builder().name("state").values("deleted").build())
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("DescribeNatGateways", e))?;
    for address in addresses.iter_mut().filter(|a| unexplained(a)) {
        let held_by_deleted = deleted.iter().any(|nat| {
            nat.state() == Some(&NatGatewayState::Deleted)
                && nat
                    .nat_gateway_addresses()
                    .iter()
                    .any(|a| a.allocation_id() == Some(address.allocation_id.as_str()))
        });
        if held_by_deleted {
            address.association_id = None;
            address.network_interface_id = None;
        }
    }
    Ok(())
}

/// The stack's internet gateway, and the other gateways tagged as its own (duplicates, which the
/// planner deletes). The one attached to the stack's VPC is the stack's; with none attached, the
/// lowest id among those attached nowhere (a rerun attaches it). Two attached to the VPC cannot
/// be told apart: refused (AWS allows one per VPC anyway).
fn the_internet_gateway(
    stack: &StackName,
    mut gateways: Vec<ObservedInternetGateway>,
    vpc: Option<&ObservedVpc>,
) -> Result<
    (
        Option<ObservedInternetGateway>,
        Vec<ObservedInternetGateway>,
    ),
    AwsError,
> {
    gateways.sort_by(|a, b| a.id.cmp(&b.id));
    let attached_here =
        |g: &ObservedInternetGateway| vpc.is_some_and(|v| g.attached_vpc.as_deref() == Some(&v.id));
    let attached: Vec<String> = gateways
        .iter()
        .filter(|g| attached_here(g))
        .map(|g| g.id.clone())
        .collect();
    if attached.len() > 1 {
        return Err(duplicate(stack, "internet gateway", attached));
    }
    let chosen = gateways
        .iter()
        .position(attached_here)
        .or_else(|| gateways.iter().position(|g| g.attached_vpc.is_none()))
        .or(if gateways.is_empty() { None } else { Some(0) });
    let Some(index) = chosen else {
        return Ok((None, Vec::new()));
    };
    let gateway = gateways.remove(index);
    Ok((Some(gateway), gateways))
}

/// Two or more VPCs tagged as the stack's: which one is the stack's is not guessed (everything
/// else hangs off it). The error names them with what they hold, and says which to delete: one
/// without subnets was made by a create sent twice and never used.
async fn duplicate_vpcs(
    aws: &Aws,
    stack: &StackName,
    vpcs: &[(String, Ipv4Net)],
) -> Result<AwsError, AwsError> {
    let ids: Vec<String> = vpcs.iter().map(|(id, _)| id.clone()).collect();
    let subnets: Vec<Subnet> = aws
        .ec2
        .describe_subnets()
        .filters(
            Filter::builder()
                .name("vpc-id")
                .set_values(Some(ids.clone()))
                .build(),
        )
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("DescribeSubnets", e))?;
    let mut held: Vec<(String, usize)> = ids
        .iter()
        .map(|id| {
            let n = subnets
                .iter()
                .filter(|s| s.vpc_id() == Some(id.as_str()))
                .count();
            (id.clone(), n)
        })
        .collect();
    held.sort();
    Ok(AwsError::duplicate_vpcs(stack.as_str(), &held))
}

fn duplicate(stack: &StackName, component: &'static str, mut ids: Vec<String>) -> AwsError {
    ids.sort();
    AwsError::Duplicate {
        stack: stack.to_string(),
        component,
        ids,
    }
}

/// `tag:fixedip:stack = <stack>`, and the component when given.
fn stack_filters(stack: &StackName, component: Option<Component>) -> Vec<Filter> {
    let mut filters = vec![tag_filter(tags::STACK, stack.as_str())];
    if let Some(component) = component {
        filters.push(tag_filter(tags::COMPONENT, component.as_str()));
    }
    filters
}

fn tag_filter(key: &str, value: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

fn tag<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

fn has_stack_tag(tags: &[Tag], stack: &StackName) -> bool {
    tag(tags, tags::STACK) == Some(stack.as_str())
}

fn slot_tag(tags: &[Tag]) -> Option<Slot> {
    tag(tags, tags::SLOT).and_then(|s| s.parse().ok())
}

fn component_tag(tags: &[Tag]) -> Option<Component> {
    tag(tags, tags::COMPONENT).and_then(Component::parse)
}

fn parse_cidr(operation: &'static str, cidr: Option<&str>) -> Result<Ipv4Net, AwsError> {
    cidr.and_then(|c| c.parse().ok())
        .ok_or(AwsError::IncompleteAnswer {
            operation,
            missing: "an IPv4 CIDR",
        })
}

async fn offered_azs(aws: &Aws) -> Result<Vec<String>, AwsError> {
    let answer = aws
        .ec2
        .describe_availability_zones()
        .send()
        .await
        .map_err(|e| AwsError::call("DescribeAvailabilityZones", e))?;
    let azs: Vec<String> = answer
        .availability_zones()
        .iter()
        // Local Zones and Wavelength Zones cannot hold a NAT gateway for a Lambda function.
        .filter(|az| az.zone_type().is_none_or(|t| t == "availability-zone"))
        .filter(|az| az.state() == Some(&AvailabilityZoneState::Available))
        .filter_map(|az| az.zone_name().map(str::to_owned))
        .collect();
    if azs.is_empty() {
        return Err(AwsError::NoAvailabilityZones {
            region: aws.region.clone(),
        });
    }
    Ok(azs)
}

async fn find_vpcs(aws: &Aws, stack: &StackName) -> Result<Vec<(String, Ipv4Net)>, AwsError> {
    let vpcs = aws
        .ec2
        .describe_vpcs()
        .set_filters(Some(stack_filters(stack, Some(Component::Vpc))))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("DescribeVpcs", e))?;
    vpcs.into_iter()
        .filter(|v| has_stack_tag(v.tags(), stack))
        .map(|v| {
            let id = v.vpc_id().ok_or(AwsError::IncompleteAnswer {
                operation: "DescribeVpcs",
                missing: "a VPC id",
            })?;
            Ok((id.to_owned(), parse_cidr("DescribeVpcs", v.cidr_block())?))
        })
        .collect()
}

async fn vpc_dns(aws: &Aws, vpc_id: &str) -> Result<(bool, bool), AwsError> {
    let attribute = |name: VpcAttributeName| {
        aws.ec2
            .describe_vpc_attribute()
            .vpc_id(vpc_id)
            .attribute(name)
            .send()
    };
    let (support, hostnames) = tokio::try_join!(
        attribute(VpcAttributeName::EnableDnsSupport),
        attribute(VpcAttributeName::EnableDnsHostnames)
    )
    .map_err(|e| AwsError::call("DescribeVpcAttribute", e))?;
    Ok((
        support
            .enable_dns_support()
            .and_then(|v| v.value())
            .unwrap_or(false),
        hostnames
            .enable_dns_hostnames()
            .and_then(|v| v.value())
            .unwrap_or(false),
    ))
}

async fn find_internet_gateways(
    aws: &Aws,
    stack: &StackName,
) -> Result<Vec<ObservedInternetGateway>, AwsError> {
    let gateways = aws
        .ec2
        .describe_internet_gateways()
        .set_filters(Some(stack_filters(stack, Some(Component::InternetGateway))))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("DescribeInternetGateways", e))?;
    Ok(gateways
        .into_iter()
        .filter(|g| has_stack_tag(g.tags(), stack))
        .filter_map(|g| {
            let attached_vpc = g
                .attachments()
                .iter()
                .find_map(|a| a.vpc_id().map(str::to_owned));
            Some(ObservedInternetGateway {
                id: g.internet_gateway_id()?.to_owned(),
                attached_vpc,
            })
        })
        .collect())
}

async fn find_subnets(aws: &Aws, stack: &StackName) -> Result<Vec<ObservedSubnet>, AwsError> {
    let subnets: Vec<Subnet> = aws
        .ec2
        .describe_subnets()
        .set_filters(Some(stack_filters(stack, None)))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("DescribeSubnets", e))?;
    let mut observed = Vec::new();
    for subnet in subnets.iter().filter(|s| has_stack_tag(s.tags(), stack)) {
        let tier = match component_tag(subnet.tags()) {
            Some(Component::PublicSubnet) => Tier::Public,
            Some(Component::PrivateSubnet) => Tier::Private,
            // Tagged with the stack but not as one of its subnets: not ours to plan with.
            _ => continue,
        };
        let (Some(id), Some(slot), Some(az)) = (
            subnet.subnet_id(),
            slot_tag(subnet.tags()),
            subnet.availability_zone(),
        ) else {
            continue;
        };
        observed.push(ObservedSubnet {
            id: id.to_owned(),
            tier,
            slot,
            az: az.to_owned(),
            cidr: parse_cidr("DescribeSubnets", subnet.cidr_block())?,
        });
    }
    observed.sort_by_key(|s| (s.slot, s.tier));
    Ok(observed)
}

async fn find_addresses(
    aws: &Aws,
    stack: &StackName,
    adopted: &[AllocationId],
) -> Result<Vec<ObservedAddress>, AwsError> {
    let tagged = aws
        .ec2
        .describe_addresses()
        .set_filters(Some(stack_filters(stack, Some(Component::Address))))
        .send();
    let named = async {
        if adopted.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = adopted.iter().map(|a| a.as_str().to_owned()).collect();
        match aws
            .ec2
            .describe_addresses()
            .set_allocation_ids(Some(ids))
            .send()
            .await
        {
            Ok(answer) => Ok(answer.addresses().to_vec()),
            // The documented EC2 error code for an allocation id that does not exist. One
            // missing id fails the whole call, so the others are asked one at a time.
            Err(e)
                if e.as_service_error()
                    .and_then(|s| aws_sdk_ec2::error::ProvideErrorMetadata::code(s))
                    == Some("InvalidAllocationID.NotFound") =>
            {
                let mut found = Vec::new();
                for id in adopted {
                    match aws
                        .ec2
                        .describe_addresses()
                        .allocation_ids(id.as_str())
                        .send()
                        .await
                    {
                        Ok(answer) => found.extend(answer.addresses().iter().cloned()),
                        Err(e)
                            if e.as_service_error().and_then(|s| {
                                aws_sdk_ec2::error::ProvideErrorMetadata::code(s)
                            }) == Some("InvalidAllocationID.NotFound") => {}
                        Err(e) => return Err(AwsError::call("DescribeAddresses", e)),
                    }
                }
                Ok(found)
            }
            Err(e) => Err(AwsError::call("DescribeAddresses", e)),
        }
    };
    let (tagged, named) = tokio::join!(tagged, named);
    let tagged = tagged.map_err(|e| AwsError::call("DescribeAddresses", e))?;
    // An adopted id that does not exist is left out: the planner refuses it, naming it, before
    // any change (`PlanError::AdoptedAddressNotFound`).
    let named = named?;

    let mut observed: Vec<ObservedAddress> = Vec::new();
    let tagged = tagged
        .addresses()
        .iter()
        .filter(|a| has_stack_tag(a.tags(), stack));
    for address in tagged.chain(named.iter()) {
        let Some(id) = address.allocation_id() else {
            continue;
        };
        if observed.iter().any(|o| o.allocation_id == id) {
            continue;
        }
        let is_adopted = adopted.iter().any(|a| a.as_str() == id)
            || tag(address.tags(), tags::ADOPTED) == Some("true");
        observed.push(observed_address(address, id, is_adopted, stack)?);
    }
    observed.sort_by(|a, b| (a.slot, &a.allocation_id).cmp(&(b.slot, &b.allocation_id)));
    Ok(observed)
}

fn observed_address(
    address: &Address,
    id: &str,
    adopted: bool,
    stack: &StackName,
) -> Result<ObservedAddress, AwsError> {
    let public_ip: Ipv4Addr =
        address
            .public_ip()
            .and_then(|ip| ip.parse().ok())
            .ok_or(AwsError::IncompleteAnswer {
                operation: "DescribeAddresses",
                missing: "a public IPv4 address",
            })?;
    // Only this stack's `active` tag makes an address serve a slot; an adopted address that is not
    // (yet) the stack's counts as kept, not active.
    let ours = has_stack_tag(address.tags(), stack);
    // A `pending` address (allocated, shown, not yet allowed) must stay pending: reading it as
    // retained would put it to work without `--allow-new-ips`.
    let usage = match tag(address.tags(), tags::ADDRESS).and_then(tags::parse_address_use) {
        Some(usage) if ours => usage,
        _ => AddressUse::Retained,
    };
    Ok(ObservedAddress {
        allocation_id: id.to_owned(),
        public_ip,
        usage,
        slot: if ours { slot_tag(address.tags()) } else { None },
        adopted,
        association_id: address.association_id().map(str::to_owned),
        network_interface_id: address.network_interface_id().map(str::to_owned),
    })
}

async fn find_nat_gateways(
    aws: &Aws,
    stack: &StackName,
    vpc_id: &str,
) -> Result<Vec<ObservedNatGateway>, AwsError> {
    let gateways = aws
        .ec2
        .describe_nat_gateways()
        .filter(Filter::builder().name("vpc-id").values(vpc_id).build())
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("DescribeNatGateways", e))?;
    let mut observed = Vec::new();
    for gateway in gateways.iter().filter(|g| has_stack_tag(g.tags(), stack)) {
        let state = match gateway.state() {
            Some(NatGatewayState::Pending) => NatState::Pending,
            Some(NatGatewayState::Available) => NatState::Available,
            Some(NatGatewayState::Deleting) => NatState::Deleting,
            Some(NatGatewayState::Failed) => NatState::Failed,
            // Deleted gateways linger in the listing for about an hour: they are nothing.
            Some(NatGatewayState::Deleted) | None => continue,
            Some(_) => NatState::Pending,
        };
        let (Some(id), Some(subnet_id), Some(slot)) = (
            gateway.nat_gateway_id(),
            gateway.subnet_id(),
            slot_tag(gateway.tags()),
        ) else {
            continue;
        };
        observed.push(ObservedNatGateway {
            id: id.to_owned(),
            subnet_id: subnet_id.to_owned(),
            allocation_ids: gateway
                .nat_gateway_addresses()
                .iter()
                .filter_map(|a| a.allocation_id().map(str::to_owned))
                .collect(),
            state,
            slot,
        });
    }
    observed.sort_by(|a, b| (a.slot, &a.id).cmp(&(b.slot, &b.id)));
    Ok(observed)
}

async fn find_route_tables(
    aws: &Aws,
    stack: &StackName,
) -> Result<Vec<ObservedRouteTable>, AwsError> {
    let tables: Vec<RouteTable> = aws
        .ec2
        .describe_route_tables()
        .set_filters(Some(stack_filters(stack, None)))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("DescribeRouteTables", e))?;
    let mut observed = Vec::new();
    for table in tables.iter().filter(|t| has_stack_tag(t.tags(), stack)) {
        let (tier, slot) = match component_tag(table.tags()) {
            Some(Component::PublicRouteTable) => (Tier::Public, None),
            Some(Component::PrivateRouteTable) => (Tier::Private, slot_tag(table.tags())),
            _ => continue,
        };
        let Some(id) = table.route_table_id() else {
            continue;
        };
        let routes = table
            .routes()
            .iter()
            // IPv6 and prefix-list routes are never fixedip's.
            .filter_map(|route| {
                let destination: Ipv4Net = route.destination_cidr_block()?.parse().ok()?;
                let target = if let Some(nat) = route.nat_gateway_id() {
                    RouteTarget::NatGateway(nat.to_owned())
                } else if let Some(instance) = route.instance_id() {
                    RouteTarget::Instance(instance.to_owned())
                } else {
                    match route.gateway_id() {
                        Some("local") => RouteTarget::Local,
                        Some(igw) if igw.starts_with("igw-") => {
                            RouteTarget::InternetGateway(igw.to_owned())
                        }
                        Some(other) => RouteTarget::Other(other.to_owned()),
                        None => RouteTarget::Other(route_target_name(route)),
                    }
                };
                Some(ObservedRoute {
                    destination,
                    target,
                    blackhole: route.state() == Some(&RouteState::Blackhole),
                })
            })
            .collect();
        observed.push(ObservedRouteTable {
            id: id.to_owned(),
            tier,
            slot,
            associated_subnets: table
                .associations()
                .iter()
                .filter_map(|a| a.subnet_id().map(str::to_owned))
                .collect(),
            routes,
        });
    }
    observed.sort_by(|a, b| (a.tier, a.slot, &a.id).cmp(&(b.tier, b.slot, &b.id)));
    Ok(observed)
}

/// Names a route target fixedip never makes, for `status` and `verify` to show.
fn route_target_name(route: &aws_sdk_ec2::types::Route) -> String {
    [
        route.transit_gateway_id(),
        route.vpc_peering_connection_id(),
        route.network_interface_id(),
        route.egress_only_internet_gateway_id(),
        route.local_gateway_id(),
        route.carrier_gateway_id(),
        route.core_network_arn(),
    ]
    .into_iter()
    .flatten()
    .next()
    .unwrap_or("unknown")
    .to_owned()
}

async fn find_security_groups(
    aws: &Aws,
    stack: &StackName,
    component: Component,
) -> Result<Vec<ObservedSecurityGroup>, AwsError> {
    let groups = aws
        .ec2
        .describe_security_groups()
        .set_filters(Some(stack_filters(stack, Some(component))))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("DescribeSecurityGroups", e))?;
    Ok(groups
        .into_iter()
        .filter(|g| has_stack_tag(g.tags(), stack) && component_tag(g.tags()) == Some(component))
        .filter_map(|g| {
            Some(ObservedSecurityGroup {
                id: g.group_id()?.to_owned(),
                egress: security_group_rules(g.ip_permissions_egress()),
                ingress: security_group_rules(g.ip_permissions()),
            })
        })
        .collect())
}

/// The functions' security group of a stack, with its rules: what `deploy` checks against the
/// declared egress after it has run.
pub async fn stack_security_group(
    aws: &Aws,
    stack: &StackName,
) -> Result<Option<ObservedSecurityGroup>, AwsError> {
    let groups = find_security_groups(aws, stack, Component::SecurityGroup).await?;
    single_group(stack, "security group", groups)
}

/// At most one group of a kind per stack.
fn single_group(
    stack: &StackName,
    component: &'static str,
    mut groups: Vec<ObservedSecurityGroup>,
) -> Result<Option<ObservedSecurityGroup>, AwsError> {
    match groups.len() {
        0 | 1 => Ok(groups.pop()),
        _ => Err(duplicate(
            stack,
            component,
            groups.into_iter().map(|g| g.id).collect(),
        )),
    }
}

/// `IpPermissions` flattened: one rule per peer, IPv4 ranges as networks.
pub fn security_group_rules(permissions: &[IpPermission]) -> Vec<SecurityGroupRule> {
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

/// The stack's VPC endpoints, by their tags, leaving out those AWS already deleted.
async fn find_endpoints(aws: &Aws, stack: &StackName) -> Result<Vec<ObservedEndpoint>, AwsError> {
    let endpoints = aws
        .ec2
        .describe_vpc_endpoints()
        .set_filters(Some(stack_filters(stack, Some(Component::VpcEndpoint))))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("DescribeVpcEndpoints", e))?;
    let prefix = format!("com.amazonaws.{}.", aws.region);
    let mut observed = Vec::new();
    for endpoint in endpoints.iter().filter(|e| has_stack_tag(e.tags(), stack)) {
        // `deleted` ones stay listed for a while; `deleting` ones are still waited for by the
        // step that deletes them, and a new one with private DNS would clash: both count as there.
        // AWS writes the state in lower case, the SDK's enum in capitals: compared by name.
        if endpoint
            .state()
            .is_some_and(|s| s.as_str().eq_ignore_ascii_case("deleted"))
        {
            continue;
        }
        let (Some(id), Some(service)) = (
            endpoint.vpc_endpoint_id(),
            endpoint
                .service_name()
                .and_then(|name| name.strip_prefix(&prefix))
                .and_then(|name| Endpoint::parse(name).ok()),
        ) else {
            continue;
        };
        let kind = match endpoint.vpc_endpoint_type() {
            Some(VpcEndpointType::Gateway) => EndpointKind::Gateway,
            Some(VpcEndpointType::Interface) => EndpointKind::Interface,
            _ => continue,
        };
        observed.push(ObservedEndpoint {
            id: id.to_owned(),
            service,
            kind,
            slot: slot_tag(endpoint.tags()),
            route_table_ids: endpoint.route_table_ids().to_vec(),
            subnet_ids: endpoint.subnet_ids().to_vec(),
        });
    }
    observed.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(observed)
}

async fn find_role(aws: &Aws, stack: &StackName) -> Result<Option<ObservedRole>, AwsError> {
    let name = tags::role_name(stack, &aws.region);
    let role = match aws.iam.get_role().role_name(&name).send().await {
        Ok(answer) => answer.role.ok_or(AwsError::IncompleteAnswer {
            operation: "GetRole",
            missing: "the role",
        })?,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(AwsError::call("GetRole", e)),
    };
    let policies = aws
        .iam
        .list_attached_role_policies()
        .role_name(&name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("ListAttachedRolePolicies", e))?;
    Ok(Some(ObservedRole {
        name: role.role_name,
        arn: role.arn,
        attached_policy_arns: policies.into_iter().filter_map(|p| p.policy_arn).collect(),
    }))
}

async fn find_functions_by_name(
    aws: &Aws,
    names: &[String],
) -> Result<Vec<ObservedFunction>, AwsError> {
    let lookups = names.iter().map(|name| async move {
        match aws.lambda.get_function().function_name(name).send().await {
            Ok(answer) => {
                let configuration = answer.configuration().ok_or(AwsError::IncompleteAnswer {
                    operation: "GetFunction",
                    missing: "the configuration",
                })?;
                let stack_tag = answer.tags().and_then(|t| t.get(tags::STACK)).cloned();
                Ok(Some(observed_function(configuration, stack_tag)))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(AwsError::call("GetFunction", e)),
        }
    });
    let found = futures::future::try_join_all(lookups).await?;
    Ok(found.into_iter().flatten().collect())
}

/// Every function in the region attached to one of the given subnets, or using the given
/// security group.
async fn find_attached_functions(
    aws: &Aws,
    subnets: &[&str],
    security_group: Option<&str>,
) -> Result<Vec<ObservedFunction>, AwsError> {
    if subnets.is_empty() && security_group.is_none() {
        return Ok(Vec::new());
    }
    let functions = aws
        .lambda
        .list_functions()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("ListFunctions", e))?;
    // ListFunctions carries no tags: the stack tag is left unknown rather than paid for per function.
    Ok(functions
        .iter()
        .filter(|f| {
            f.vpc_config().is_some_and(|v| {
                v.subnet_ids().iter().any(|s| subnets.contains(&s.as_str()))
                    || v.security_group_ids()
                        .iter()
                        .any(|g| Some(g.as_str()) == security_group)
            })
        })
        .map(|f| observed_function(f, None))
        .collect())
}

fn observed_function(
    configuration: &aws_sdk_lambda::types::FunctionConfiguration,
    stack_tag: Option<String>,
) -> ObservedFunction {
    let vpc = configuration.vpc_config();
    ObservedFunction {
        name: configuration.function_name().unwrap_or_default().to_owned(),
        arn: configuration.function_arn().unwrap_or_default().to_owned(),
        runtime: configuration.runtime().map(|r| r.as_str().to_owned()),
        architecture: configuration.architectures().first().map(|a| match a {
            aws_sdk_lambda::types::Architecture::Arm64 => Architecture::Arm64,
            _ => Architecture::X86_64,
        }),
        role_arn: configuration.role().unwrap_or_default().to_owned(),
        memory_mb: configuration.memory_size().unwrap_or_default().max(0) as u32,
        timeout_s: configuration.timeout().unwrap_or_default().max(0) as u32,
        environment: configuration
            .environment()
            .and_then(|e| e.variables())
            .map(|vars| vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        // The subnets say which VPC the function is in (moto reports a bogus VpcId).
        subnet_ids: vpc.map(|v| v.subnet_ids().to_vec()).unwrap_or_default(),
        security_group_ids: vpc
            .map(|v| v.security_group_ids().to_vec())
            .unwrap_or_default(),
        code_sha256: configuration.code_sha256().unwrap_or_default().to_owned(),
        stack_tag,
    }
}
