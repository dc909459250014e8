//! The network of the AWS console guides, built by hand in the emulator through the SDK (VPC
//! 10.0.0.0/25, four /28 subnets in two AZs, an Elastic IP and a NAT gateway per AZ, a function in
//! the private subnets), and the ways people break it in the console: what `verify` must name.
//!
//! The end-to-end smoke tests of `verify` (tests/tests/verify.rs) build it; so does
//! `record-network-answers`, which saves moto's answers to the reader's calls for each breakage as
//! the fixtures of cargo-fixedip's reader tests (cargo-fixedip/tests/fixtures/network/).

use std::io::Write as _;

use aws_sdk_ec2::types::{ConnectivityType, DomainType, Filter};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime, VpcConfig};

use crate::{Emulator, REGION};

/// Per AZ: the public subnet with its NAT gateway and Elastic IP, the private subnet with its table.
pub struct Zone {
    pub az: String,
    pub public_subnet: String,
    pub private_subnet: String,
    pub nat: String,
    pub ip: String,
    pub private_table: String,
}

pub struct ConsoleNetwork {
    pub vpc: String,
    pub igw: String,
    pub public_table: String,
    pub zones: Vec<Zone>,
    pub security_group: String,
    pub function: String,
    pub role_arn: String,
}

impl ConsoleNetwork {
    /// `--function NAME --ip A --ip B`: the function and the allowlist the partner was given.
    pub fn verify_args(&self) -> Vec<&str> {
        let mut args = vec!["--function", self.function.as_str()];
        for zone in &self.zones {
            args.extend(["--ip", zone.ip.as_str()]);
        }
        args
    }
}

/// A zip Lambda accepts; moto never runs it.
pub fn small_zip() -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut bytes);
    zip.start_file(
        "bootstrap",
        zip::write::SimpleFileOptions::default().unix_permissions(0o755),
    )
    .unwrap();
    zip.write_all(b"#!/bin/sh\n").unwrap();
    zip.finish().unwrap();
    bytes.into_inner()
}

pub async fn build_console_network(emulator: &Emulator) -> ConsoleNetwork {
    let ec2 = emulator.ec2().await;
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/25")
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_owned();
    let igw = ec2
        .create_internet_gateway()
        .send()
        .await
        .unwrap()
        .internet_gateway()
        .unwrap()
        .internet_gateway_id()
        .unwrap()
        .to_owned();
    ec2.attach_internet_gateway()
        .internet_gateway_id(&igw)
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap();
    let public_table = create_route_table(&ec2, &vpc).await;
    ec2.create_route()
        .route_table_id(&public_table)
        .destination_cidr_block("0.0.0.0/0")
        .gateway_id(&igw)
        .send()
        .await
        .unwrap();

    let mut zones = Vec::new();
    for (i, az) in ["a", "b"].iter().enumerate() {
        let az = format!("{REGION}{az}");
        let public_subnet = create_subnet(&ec2, &vpc, &az, &format!("10.0.0.{}/28", i * 16)).await;
        let private_subnet =
            create_subnet(&ec2, &vpc, &az, &format!("10.0.0.{}/28", 32 + i * 16)).await;
        associate(&ec2, &public_table, &public_subnet).await;
        let (allocation, ip) = allocate_address(&ec2).await;
        let nat = ec2
            .create_nat_gateway()
            .subnet_id(&public_subnet)
            .allocation_id(&allocation)
            .send()
            .await
            .unwrap()
            .nat_gateway()
            .unwrap()
            .nat_gateway_id()
            .unwrap()
            .to_owned();
        let private_table = create_route_table(&ec2, &vpc).await;
        ec2.create_route()
            .route_table_id(&private_table)
            .destination_cidr_block("0.0.0.0/0")
            .nat_gateway_id(&nat)
            .send()
            .await
            .unwrap();
        associate(&ec2, &private_table, &private_subnet).await;
        zones.push(Zone {
            az,
            public_subnet,
            private_subnet,
            nat,
            ip,
            private_table,
        });
    }

    let security_group = ec2
        .create_security_group()
        .group_name("partner-sync")
        .description("partner-sync function")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_owned();

    let role_arn = emulator
        .iam()
        .await
        .create_role()
        .role_name("partner-sync-role")
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .unwrap()
        .role()
        .unwrap()
        .arn()
        .to_owned();
    let function = "partner-sync".to_owned();
    let private: Vec<String> = zones.iter().map(|z| z.private_subnet.clone()).collect();
    create_function(
        emulator,
        &function,
        &role_arn,
        Some(vpc_config(&private, &security_group, false)),
    )
    .await;
    ConsoleNetwork {
        vpc,
        igw,
        public_table,
        zones,
        security_group,
        function,
        role_arn,
    }
}

pub async fn create_route_table(ec2: &aws_sdk_ec2::Client, vpc: &str) -> String {
    ec2.create_route_table()
        .vpc_id(vpc)
        .send()
        .await
        .unwrap()
        .route_table()
        .unwrap()
        .route_table_id()
        .unwrap()
        .to_owned()
}

pub async fn create_subnet(ec2: &aws_sdk_ec2::Client, vpc: &str, az: &str, cidr: &str) -> String {
    ec2.create_subnet()
        .vpc_id(vpc)
        .availability_zone(az)
        .cidr_block(cidr)
        .send()
        .await
        .unwrap()
        .subnet()
        .unwrap()
        .subnet_id()
        .unwrap()
        .to_owned()
}

pub async fn associate(ec2: &aws_sdk_ec2::Client, table: &str, subnet: &str) -> String {
    ec2.associate_route_table()
        .route_table_id(table)
        .subnet_id(subnet)
        .send()
        .await
        .unwrap()
        .association_id()
        .unwrap()
        .to_owned()
}

/// A new Elastic IP: its allocation id and address.
pub async fn allocate_address(ec2: &aws_sdk_ec2::Client) -> (String, String) {
    let address = ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .send()
        .await
        .unwrap();
    (
        address.allocation_id().unwrap().to_owned(),
        address.public_ip().unwrap().to_owned(),
    )
}

pub fn vpc_config(subnets: &[String], security_group: &str, dual_stack: bool) -> VpcConfig {
    VpcConfig::builder()
        .set_subnet_ids(Some(subnets.to_vec()))
        .security_group_ids(security_group)
        .ipv6_allowed_for_dual_stack(dual_stack)
        .build()
}

pub async fn create_function(emulator: &Emulator, name: &str, role: &str, vpc: Option<VpcConfig>) {
    emulator
        .lambda()
        .await
        .create_function()
        .function_name(name)
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role)
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(small_zip()))
                .build(),
        )
        .set_vpc_config(vpc)
        .send()
        .await
        .unwrap();
}

pub async fn attach_function(emulator: &Emulator, name: &str, config: VpcConfig) {
    emulator
        .lambda()
        .await
        .update_function_configuration()
        .function_name(name)
        .vpc_config(config)
        .send()
        .await
        .unwrap();
}

pub fn replace_default_route(
    ec2: &aws_sdk_ec2::Client,
    table: &str,
) -> aws_sdk_ec2::operation::replace_route::builders::ReplaceRouteFluentBuilder {
    ec2.replace_route()
        .route_table_id(table)
        .destination_cidr_block("0.0.0.0/0")
}

/// An x86_64 image moto knows (it validates AMIs), for a NAT instance.
pub async fn nat_instance(emulator: &Emulator, subnet: &str) -> String {
    let ec2 = emulator.ec2().await;
    let images = ec2
        .describe_images()
        .filters(
            Filter::builder()
                .name("architecture")
                .values("x86_64")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let image = images.images()[0].image_id().unwrap().to_owned();
    ec2.run_instances()
        .image_id(image)
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Nano)
        .subnet_id(subnet)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_owned()
}

/// A NAT instance in AZ a's public subnet with an Elastic IP, set up as the guides say (source/dest
/// check off), and AZ a's private route pointing at it. Returns the instance and its address.
pub async fn switch_zone_a_to_a_nat_instance(
    emulator: &Emulator,
    network: &ConsoleNetwork,
) -> (String, String) {
    let ec2 = emulator.ec2().await;
    let zone = &network.zones[0];
    let instance = nat_instance(emulator, &zone.public_subnet).await;
    let (allocation, ip) = allocate_address(&ec2).await;
    ec2.associate_address()
        .instance_id(&instance)
        .allocation_id(allocation)
        .send()
        .await
        .unwrap();
    ec2.modify_instance_attribute()
        .instance_id(&instance)
        .source_dest_check(
            aws_sdk_ec2::types::AttributeBooleanValue::builder()
                .value(false)
                .build(),
        )
        .send()
        .await
        .unwrap();
    replace_default_route(&ec2, &zone.private_table)
        .instance_id(&instance)
        .send()
        .await
        .unwrap();
    (instance, ip)
}

/// Every way of breaking (or changing) the console network that `record-network-answers` records,
/// the intact network first; each name is the reader fixture's,
/// `cargo-fixedip/tests/fixtures/network/<name>.json`, whose test says what `verify` finds in it.
pub const BREAKAGES: [&str; 18] = [
    "console-network",
    "nat-instance",
    "function-in-public-subnets",
    "function-not-in-vpc",
    "default-route-deleted",
    "private-subnet-on-main-table",
    "route-to-deleted-nat",
    "nat-in-other-az",
    "private-nat-gateway",
    "nat-subnet-without-igw-route",
    "internet-gateway-detached",
    "nat-address-not-allowed",
    "direct-igw-route",
    "security-group-egress-removed",
    "ipv6-egress-only-single-stack",
    "ipv6-egress-only-dual-stack",
    "nat-instance-source-dest-check",
    "nat-instance-stopped",
];

/// What verify is asked about after a breakage: the function and the allowlist the partner has.
pub struct VerifyTarget {
    pub function: String,
    pub allowed: Vec<String>,
}

/// Applies the breakage `name` (one of [`BREAKAGES`]) to a console network.
pub async fn break_network(
    emulator: &Emulator,
    network: &ConsoleNetwork,
    name: &str,
) -> VerifyTarget {
    let ec2 = emulator.ec2().await;
    let mut target = VerifyTarget {
        function: network.function.clone(),
        allowed: network.zones.iter().map(|z| z.ip.clone()).collect(),
    };
    let private: Vec<String> = network
        .zones
        .iter()
        .map(|z| z.private_subnet.clone())
        .collect();
    let (a, b) = (&network.zones[0], &network.zones[1]);
    match name {
        "console-network" => {}
        "nat-instance" => {
            let (_, ip) = switch_zone_a_to_a_nat_instance(emulator, network).await;
            target.allowed.push(ip);
        }
        "function-in-public-subnets" => {
            let public: Vec<String> = network
                .zones
                .iter()
                .map(|z| z.public_subnet.clone())
                .collect();
            attach_function(
                emulator,
                &network.function,
                vpc_config(&public, &network.security_group, false),
            )
            .await;
        }
        "function-not-in-vpc" => {
            create_function(emulator, "forgotten", &network.role_arn, None).await;
            target.function = "forgotten".to_owned();
            target.allowed.truncate(1);
        }
        "default-route-deleted" => {
            ec2.delete_route()
                .route_table_id(&b.private_table)
                .destination_cidr_block("0.0.0.0/0")
                .send()
                .await
                .unwrap();
        }
        "private-subnet-on-main-table" => {
            // The subnet was never associated with its table: it falls back to the VPC's main
            // table, which only has the `local` route.
            let tables = ec2
                .describe_route_tables()
                .route_table_ids(&a.private_table)
                .send()
                .await
                .unwrap();
            let association = tables.route_tables()[0]
                .associations()
                .iter()
                .find(|x| x.subnet_id() == Some(&a.private_subnet))
                .and_then(|x| x.route_table_association_id())
                .unwrap()
                .to_owned();
            ec2.disassociate_route_table()
                .association_id(association)
                .send()
                .await
                .unwrap();
        }
        "route-to-deleted-nat" => {
            ec2.delete_nat_gateway()
                .nat_gateway_id(&a.nat)
                .send()
                .await
                .unwrap();
        }
        "nat-in-other-az" => {
            replace_default_route(&ec2, &b.private_table)
                .nat_gateway_id(&a.nat)
                .send()
                .await
                .unwrap();
        }
        "private-nat-gateway" => {
            let private_nat = ec2
                .create_nat_gateway()
                .subnet_id(&a.public_subnet)
                .connectivity_type(ConnectivityType::Private)
                .send()
                .await
                .unwrap()
                .nat_gateway()
                .unwrap()
                .nat_gateway_id()
                .unwrap()
                .to_owned();
            replace_default_route(&ec2, &a.private_table)
                .nat_gateway_id(private_nat)
                .send()
                .await
                .unwrap();
        }
        "nat-subnet-without-igw-route" => {
            ec2.delete_route()
                .route_table_id(&network.public_table)
                .destination_cidr_block("0.0.0.0/0")
                .send()
                .await
                .unwrap();
        }
        "internet-gateway-detached" => {
            ec2.detach_internet_gateway()
                .internet_gateway_id(&network.igw)
                .vpc_id(&network.vpc)
                .send()
                .await
                .unwrap();
        }
        "nat-address-not-allowed" => {
            // The partner was given the first NAT's address and another Elastic IP of the account.
            let (_, other) = allocate_address(&ec2).await;
            target.allowed = vec![a.ip.clone(), other];
        }
        "direct-igw-route" => {
            // Someone "fixed" DNS to a public resolver by routing it straight to the internet gateway.
            ec2.create_route()
                .route_table_id(&a.private_table)
                .destination_cidr_block("8.8.8.0/24")
                .gateway_id(&network.igw)
                .send()
                .await
                .unwrap();
        }
        "security-group-egress-removed" => {
            let groups = ec2
                .describe_security_groups()
                .group_ids(&network.security_group)
                .send()
                .await
                .unwrap();
            let egress = groups.security_groups()[0].ip_permissions_egress().to_vec();
            assert!(!egress.is_empty(), "a new group allows all egress");
            ec2.revoke_security_group_egress()
                .group_id(&network.security_group)
                .set_ip_permissions(Some(egress))
                .send()
                .await
                .unwrap();
        }
        "ipv6-egress-only-single-stack" | "ipv6-egress-only-dual-stack" => {
            ec2.associate_vpc_cidr_block()
                .vpc_id(&network.vpc)
                .amazon_provided_ipv6_cidr_block(true)
                .send()
                .await
                .unwrap();
            let eigw = ec2
                .create_egress_only_internet_gateway()
                .vpc_id(&network.vpc)
                .send()
                .await
                .unwrap()
                .egress_only_internet_gateway()
                .unwrap()
                .egress_only_internet_gateway_id()
                .unwrap()
                .to_owned();
            ec2.create_route()
                .route_table_id(&a.private_table)
                .destination_ipv6_cidr_block("::/0")
                .egress_only_internet_gateway_id(eigw)
                .send()
                .await
                .unwrap();
            if name.ends_with("dual-stack") {
                attach_function(
                    emulator,
                    &network.function,
                    vpc_config(&private, &network.security_group, true),
                )
                .await;
            }
        }
        "nat-instance-source-dest-check" | "nat-instance-stopped" => {
            let (instance, ip) = switch_zone_a_to_a_nat_instance(emulator, network).await;
            target.allowed.push(ip);
            if name.ends_with("source-dest-check") {
                ec2.modify_instance_attribute()
                    .instance_id(&instance)
                    .source_dest_check(
                        aws_sdk_ec2::types::AttributeBooleanValue::builder()
                            .value(true)
                            .build(),
                    )
                    .send()
                    .await
                    .unwrap();
            } else {
                ec2.stop_instances()
                    .instance_ids(&instance)
                    .send()
                    .await
                    .unwrap();
            }
        }
        other => panic!("no breakage named {other}"),
    }
    target
}
