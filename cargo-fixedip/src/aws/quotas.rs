//! What the account uses of the VPC quotas a plan consumes (`fixedip_core::planner::quotas`),
//! counted with Describe calls over the whole region, and the limits raised in `FIXEDIP_QUOTAS`.
//! A few calls more: `deploy` asks only when its plan creates a VPC, gateway, NAT gateway or
//! endpoint.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;
use fixedip_core::observed::ObservedState;
use fixedip_core::planner::quotas::{parse_limits, Quota, QuotaUsage};
use fixedip_core::requirements::EndpointKind;

use super::{Aws, AwsError};

/// What the account uses in the region of the quotas a plan consumes, as read; the stack's own
/// interface endpoints are counted from its observation ([`RegionUsage::fill`]), so that the
/// reads need not wait for it.
#[derive(Debug, Clone)]
pub struct RegionUsage {
    vpcs: usize,
    gateways: usize,
    nat_gateways_by_az: BTreeMap<String, u32>,
    gateway_endpoints: usize,
    limits: BTreeMap<Quota, u32>,
}

/// Reads what the region uses of the VPC quotas, and the limits raised in `FIXEDIP_QUOTAS`.
pub async fn region_usage(aws: &Aws) -> Result<RegionUsage, AwsError> {
    let limits = match std::env::var("FIXEDIP_QUOTAS") {
        Ok(text) => parse_limits(&text).map_err(|reason| AwsError::BadQuotaSetting { reason })?,
        Err(_) => Default::default(),
    };
    let (vpcs, gateways, nat_gateways_by_az, gateway_endpoints) = tokio::try_join!(
        vpcs(aws),
        internet_gateways(aws),
        nat_gateways_by_az(aws),
        gateway_endpoints(aws)
    )?;
    Ok(RegionUsage {
        vpcs,
        gateways,
        nat_gateways_by_az,
        gateway_endpoints,
        limits,
    })
}

impl RegionUsage {
    /// Fills `observed.quota_usage`.
    pub fn fill(self, observed: &mut ObservedState) {
        // The stack's VPC is its own: its interface endpoints are the stack's.
        let interface_endpoints = observed
            .endpoints
            .iter()
            .filter(|e| e.kind == EndpointKind::Interface)
            .count();
        observed.quota_usage = Some(QuotaUsage {
            in_use: [
                (Quota::Vpcs, count(self.vpcs)),
                (Quota::InternetGateways, count(self.gateways)),
                (Quota::GatewayEndpoints, count(self.gateway_endpoints)),
                (Quota::InterfaceEndpointsPerVpc, count(interface_endpoints)),
            ]
            .into_iter()
            .collect(),
            nat_gateways_by_az: self.nat_gateways_by_az,
            limits: self.limits,
        });
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn filter(name: &str, values: &[&str]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
        .build()
}

async fn vpcs(aws: &Aws) -> Result<usize, AwsError> {
    let mut count = 0;
    let mut pages = aws.ec2.describe_vpcs().into_paginator().send();
    while let Some(page) = pages.next().await {
        count += page
            .map_err(|e| AwsError::call("DescribeVpcs", e))?
            .vpcs()
            .len();
    }
    Ok(count)
}

async fn internet_gateways(aws: &Aws) -> Result<usize, AwsError> {
    let mut count = 0;
    let mut pages = aws.ec2.describe_internet_gateways().into_paginator().send();
    while let Some(page) = pages.next().await {
        count += page
            .map_err(|e| AwsError::call("DescribeInternetGateways", e))?
            .internet_gateways()
            .len();
    }
    Ok(count)
}

/// The quota counts NAT gateways `pending`, `available` and `deleting`, per AZ: the gateways'
/// subnets, then the subnets' AZs.
async fn nat_gateways_by_az(aws: &Aws) -> Result<BTreeMap<String, u32>, AwsError> {
    let mut subnets = Vec::new();
    let mut pages = aws
        .ec2
        .describe_nat_gateways()
        .filter(filter("state", &["pending", "available", "deleting"]))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::call("DescribeNatGateways", e))?;
        subnets.extend(
            page.nat_gateways()
                .iter()
                .filter_map(|n| n.subnet_id().map(str::to_owned)),
        );
    }
    let mut by_az: BTreeMap<String, u32> = BTreeMap::new();
    if subnets.is_empty() {
        return Ok(by_az);
    }
    let mut unique = subnets.clone();
    unique.sort();
    unique.dedup();
    let answer = aws
        .ec2
        .describe_subnets()
        .set_subnet_ids(Some(unique))
        .send()
        .await
        .map_err(|e| AwsError::call("DescribeSubnets", e))?;
    let az_of: BTreeMap<&str, &str> = answer
        .subnets()
        .iter()
        .filter_map(|s| Some((s.subnet_id()?, s.availability_zone()?)))
        .collect();
    for subnet in &subnets {
        if let Some(az) = az_of.get(subnet.as_str()) {
            *by_az.entry((*az).to_owned()).or_default() += 1;
        }
    }
    Ok(by_az)
}

/// Gateway endpoints of the region that are not `deleted`.
async fn gateway_endpoints(aws: &Aws) -> Result<usize, AwsError> {
    let mut count = 0;
    let mut pages = aws
        .ec2
        .describe_vpc_endpoints()
        .filters(filter("vpc-endpoint-type", &["Gateway"]))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::call("DescribeVpcEndpoints", e))?;
        count += page
            .vpc_endpoints()
            .iter()
            .filter(|e| {
                !e.state()
                    .is_some_and(|s| s.as_str().eq_ignore_ascii_case("deleted"))
            })
            .count();
    }
    Ok(count)
}
