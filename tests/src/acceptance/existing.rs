//! The network of the "existing VPC" scenario, built by the suite as a user builds theirs by hand
//! (the product brief's console steps): a VPC, an internet gateway, per AZ a public subnet with an
//! Elastic IP and a NAT gateway, and a private subnet routed to it. Everything carries the run tag
//! (`fixedip-acceptance=<run>`), so the run's sweep removes it.

use std::time::Duration;

use aws_sdk_ec2::types::{DomainType, ResourceType, Tag, TagSpecification};

use super::retry::{patiently, NOT_YET};
use super::{RunId, Target, RUN_TAG};

/// How long the suite waits for one call's fresh ids, or for its NAT gateways (AWS: 1–3 minutes).
const BUDGET: Duration = Duration::from_secs(600);

/// What was built: the VPC and the NATs' addresses (what the partner would allowlist).
pub struct ExistingNetwork {
    pub vpc: String,
    pub ips: Vec<String>,
}

fn tagged(kind: ResourceType, run: &RunId) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .tags(Tag::builder().key(RUN_TAG).value(&run.0).build())
        .tags(
            Tag::builder()
                .key("Name")
                .value(format!("fixedip-acceptance-{run}"))
                .build(),
        )
        .build()
}

pub async fn build(target: &Target, run: &RunId) -> Result<ExistingNetwork, String> {
    let ec2 = aws_sdk_ec2::Client::new(&target.sdk_config().await);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.91.0.0/16")
        .tag_specifications(tagged(ResourceType::Vpc, run))
        .send()
        .await
        .map_err(|e| format!("CreateVpc: {}", cargo_fixedip::aws::error_chain(&e)))?
        .vpc
        .and_then(|v| v.vpc_id)
        .ok_or("CreateVpc answered no id")?;
    let igw = ec2
        .create_internet_gateway()
        .tag_specifications(tagged(ResourceType::InternetGateway, run))
        .send()
        .await
        .map_err(|e| {
            format!(
                "CreateInternetGateway: {}",
                cargo_fixedip::aws::error_chain(&e)
            )
        })?
        .internet_gateway
        .and_then(|g| g.internet_gateway_id)
        .ok_or("CreateInternetGateway answered no id")?;
    patiently("AttachInternetGateway", BUDGET, &NOT_YET, || {
        ec2.attach_internet_gateway()
            .vpc_id(&vpc)
            .internet_gateway_id(&igw)
            .send()
    })
    .await?;
    let public = route_table(&ec2, &vpc, run).await?;
    patiently("CreateRoute (internet gateway)", BUDGET, &NOT_YET, || {
        ec2.create_route()
            .route_table_id(&public)
            .destination_cidr_block("0.0.0.0/0")
            .gateway_id(&igw)
            .send()
    })
    .await?;
    let zones = ec2
        .describe_availability_zones()
        .send()
        .await
        .map_err(|e| {
            format!(
                "DescribeAvailabilityZones: {}",
                cargo_fixedip::aws::error_chain(&e)
            )
        })?;
    let mut ips = Vec::new();
    let names = zones
        .availability_zones()
        .iter()
        .filter_map(|z| z.zone_name());
    for (i, zone) in names.take(2).enumerate() {
        ips.push(zone_network(&ec2, run, &vpc, &public, zone, i).await?);
    }
    Ok(ExistingNetwork { vpc, ips })
}

async fn route_table(ec2: &aws_sdk_ec2::Client, vpc: &str, run: &RunId) -> Result<String, String> {
    patiently("CreateRouteTable", BUDGET, &NOT_YET, || {
        ec2.create_route_table()
            .vpc_id(vpc)
            .tag_specifications(tagged(ResourceType::RouteTable, run))
            .send()
    })
    .await?
    .route_table
    .and_then(|t| t.route_table_id)
    .ok_or_else(|| "CreateRouteTable answered no id".to_owned())
}

async fn subnet(
    ec2: &aws_sdk_ec2::Client,
    run: &RunId,
    vpc: &str,
    zone: &str,
    cidr: &str,
) -> Result<String, String> {
    patiently("CreateSubnet", BUDGET, &NOT_YET, || {
        ec2.create_subnet()
            .vpc_id(vpc)
            .availability_zone(zone)
            .cidr_block(cidr)
            .tag_specifications(tagged(ResourceType::Subnet, run))
            .send()
    })
    .await?
    .subnet
    .and_then(|s| s.subnet_id)
    .ok_or_else(|| "CreateSubnet answered no id".to_owned())
}

/// One AZ: public subnet, Elastic IP, NAT gateway (waited for), private subnet routed to it.
/// Returns the NAT's address.
async fn zone_network(
    ec2: &aws_sdk_ec2::Client,
    run: &RunId,
    vpc: &str,
    public_table: &str,
    zone: &str,
    i: usize,
) -> Result<String, String> {
    let public = subnet(ec2, run, vpc, zone, &format!("10.91.{}.0/24", 2 * i)).await?;
    patiently("AssociateRouteTable (public)", BUDGET, &NOT_YET, || {
        ec2.associate_route_table()
            .route_table_id(public_table)
            .subnet_id(&public)
            .send()
    })
    .await?;
    let address = ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .tag_specifications(tagged(ResourceType::ElasticIp, run))
        .send()
        .await
        .map_err(|e| format!("AllocateAddress: {}", cargo_fixedip::aws::error_chain(&e)))?;
    let (allocation, ip) = (
        address
            .allocation_id
            .ok_or("AllocateAddress answered no id")?,
        address
            .public_ip
            .ok_or("AllocateAddress answered no address")?,
    );
    let nat = patiently("CreateNatGateway", BUDGET, &NOT_YET, || {
        ec2.create_nat_gateway()
            .subnet_id(&public)
            .allocation_id(&allocation)
            .client_token(format!("fixedip-acceptance-{run}-{i}"))
            .tag_specifications(tagged(ResourceType::Natgateway, run))
            .send()
    })
    .await?
    .nat_gateway
    .and_then(|n| n.nat_gateway_id)
    .ok_or("CreateNatGateway answered no id")?;
    nat_available(ec2, &nat).await?;
    let private = subnet(ec2, run, vpc, zone, &format!("10.91.{}.0/24", 2 * i + 1)).await?;
    let table = route_table(ec2, vpc, run).await?;
    patiently("CreateRoute (NAT gateway)", BUDGET, &NOT_YET, || {
        ec2.create_route()
            .route_table_id(&table)
            .destination_cidr_block("0.0.0.0/0")
            .nat_gateway_id(&nat)
            .send()
    })
    .await?;
    patiently("AssociateRouteTable (private)", BUDGET, &NOT_YET, || {
        ec2.associate_route_table()
            .route_table_id(&table)
            .subnet_id(&private)
            .send()
    })
    .await?;
    Ok(ip)
}

/// Polls every 2 s until the NAT gateway is `available` (the SDK's waiter first waits 15 s, which
/// on the emulator is most of a scenario).
async fn nat_available(ec2: &aws_sdk_ec2::Client, nat: &str) -> Result<(), String> {
    let started = std::time::Instant::now();
    loop {
        let answer = ec2
            .describe_nat_gateways()
            .nat_gateway_ids(nat)
            .send()
            .await;
        let state = answer.ok().and_then(|a| {
            let gateway = a.nat_gateways().first()?.clone();
            gateway.state().map(|s| s.as_str().to_owned())
        });
        match state.as_deref() {
            Some("available") => return Ok(()),
            Some("failed" | "deleted") => return Err(format!("NAT gateway {nat} is {state:?}")),
            _ if started.elapsed() > BUDGET => {
                return Err(format!("NAT gateway {nat} not available after {BUDGET:?}"))
            }
            _ => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
}
