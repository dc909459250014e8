//! `cargo fixedip verify` against networks built in a private moto server through the real SDK.
//!
//! Most tests start from a correct network built by hand the way the console guides do it (VPC
//! 10.0.0.0/25, four /28 subnets in two AZs, an Elastic IP and a NAT gateway per AZ), break one
//! thing the way a person in the console gets it wrong, and check that verify names exactly that:
//! the right finding code and no other. The correct networks (that one, and fixedip's own stacks in
//! 1, 2 and 3 AZs) must pass with no finding. Then `--probe`, and the artifact checks of `deploy`.
//!
//! moto never marks a route `blackhole` (on AWS a route to a deleted NAT gateway is one): the route
//! to a deleted NAT gateway is found here through the gateway's `deleted` state instead, and
//! `blackhole-route` is covered by fixedip-core's unit tests.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::Path;
use std::process::Output;

use aws_sdk_ec2::types::{ConnectivityType, DomainType, Filter};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime, VpcConfig};
use fixedip_tests::{
    count, example_binary, example_dir, example_zip, fixture_zip, fixtures_manifest,
    write_lambda_zip, Emulator, REGION,
};

/// Exit code `VERIFY` (cargo-fixedip's exit_code.rs, docs/cli.md).
const EXIT_VERIFY: i32 = 9;
/// Exit code `BUILD`: an artifact that cannot run on Lambda.
const EXIT_BUILD: i32 = 5;

// -------------------------------------------------------------------------------------------------
// Running the CLI.
// -------------------------------------------------------------------------------------------------

fn fixedip_output(emulator: &Emulator, args: &[&str]) -> Output {
    let mut command = emulator.cargo_fixedip();
    command.args(args).current_dir(example_dir());
    command.output().expect("cargo-fixedip runs")
}

/// The outcome of `verify --json`: its exit code and its report.
struct Verdict {
    exit: i32,
    report: serde_json::Value,
    stderr: String,
}

impl Verdict {
    /// Every finding code of every function, with duplicates removed.
    fn codes(&self) -> BTreeSet<String> {
        self.functions()
            .iter()
            .flat_map(|f| f["findings"].as_array().expect("findings").iter())
            .map(|f| f["code"].as_str().expect("code").to_owned())
            .collect()
    }

    fn findings(&self) -> Vec<serde_json::Value> {
        self.functions()
            .iter()
            .flat_map(|f| f["findings"].as_array().expect("findings").clone())
            .collect()
    }

    /// Every function verified, whichever stack (or none) it was verified in.
    fn functions(&self) -> Vec<serde_json::Value> {
        self.report["stacks"]
            .as_array()
            .expect("stacks")
            .iter()
            .flat_map(|s| s["functions"].as_array().expect("functions").clone())
            .collect()
    }

    fn assert_passes_clean(&self) {
        assert_eq!(
            self.exit, 0,
            "verify failed: {:#}\n{}",
            self.report, self.stderr
        );
        assert_eq!(self.codes(), BTreeSet::new(), "{:#}", self.report);
    }

    /// Fails (exit `VERIFY`) with exactly this finding code, every finding of it an error naming a
    /// resource and a fix.
    fn assert_fails_with(&self, code: &str) {
        assert_eq!(
            self.codes(),
            BTreeSet::from([code.to_owned()]),
            "{:#}",
            self.report
        );
        assert_eq!(
            self.exit, EXIT_VERIFY,
            "exit code: {:#}\n{}",
            self.report, self.stderr
        );
        for finding in self.findings() {
            assert_eq!(finding["severity"], "error", "{finding:#}");
            assert!(!finding["resource"].as_str().unwrap().is_empty());
            assert!(!finding["fix"].as_str().unwrap().is_empty());
        }
    }
}

fn verify(emulator: &Emulator, args: &[&str]) -> Verdict {
    let mut all = vec!["verify", "--json"];
    all.extend_from_slice(args);
    let output = fixedip_output(emulator, &all);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("verify --json printed no JSON ({e}): {stdout}\n{stderr}"));
    Verdict {
        exit: output.status.code().expect("an exit code"),
        report,
        stderr,
    }
}

// -------------------------------------------------------------------------------------------------
// The network of the console guides, built by hand.
// -------------------------------------------------------------------------------------------------

/// Per AZ: the public subnet with its NAT gateway and Elastic IP, the private subnet with its table.
struct Zone {
    az: String,
    public_subnet: String,
    private_subnet: String,
    nat: String,
    ip: String,
    private_table: String,
}

struct ConsoleNetwork {
    vpc: String,
    igw: String,
    public_table: String,
    zones: Vec<Zone>,
    security_group: String,
    function: String,
    role_arn: String,
}

impl ConsoleNetwork {
    /// `--function NAME --ip A --ip B`: the function and the allowlist the partner was given.
    fn verify_args(&self) -> Vec<&str> {
        let mut args = vec!["--function", self.function.as_str()];
        for zone in &self.zones {
            args.extend(["--ip", zone.ip.as_str()]);
        }
        args
    }
}

/// A zip Lambda accepts; moto never runs it.
fn small_zip() -> Vec<u8> {
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

async fn build_console_network(emulator: &Emulator) -> ConsoleNetwork {
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

async fn create_route_table(ec2: &aws_sdk_ec2::Client, vpc: &str) -> String {
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

async fn create_subnet(ec2: &aws_sdk_ec2::Client, vpc: &str, az: &str, cidr: &str) -> String {
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

async fn associate(ec2: &aws_sdk_ec2::Client, table: &str, subnet: &str) -> String {
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
async fn allocate_address(ec2: &aws_sdk_ec2::Client) -> (String, String) {
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

fn vpc_config(subnets: &[String], security_group: &str, dual_stack: bool) -> VpcConfig {
    VpcConfig::builder()
        .set_subnet_ids(Some(subnets.to_vec()))
        .security_group_ids(security_group)
        .ipv6_allowed_for_dual_stack(dual_stack)
        .build()
}

async fn create_function(emulator: &Emulator, name: &str, role: &str, vpc: Option<VpcConfig>) {
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

async fn attach_function(emulator: &Emulator, name: &str, config: VpcConfig) {
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

fn replace_default_route(
    ec2: &aws_sdk_ec2::Client,
    table: &str,
) -> aws_sdk_ec2::operation::replace_route::builders::ReplaceRouteFluentBuilder {
    ec2.replace_route()
        .route_table_id(table)
        .destination_cidr_block("0.0.0.0/0")
}

/// An x86_64 image moto knows (it validates AMIs), for a NAT instance.
async fn nat_instance(emulator: &Emulator, subnet: &str) -> String {
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
async fn switch_zone_a_to_a_nat_instance(
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

// -------------------------------------------------------------------------------------------------
// Correct networks pass.
// -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_console_guide_network_passes() {
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    let mark = emulator.mark();
    let verdict = verify(&emulator, &network.verify_args());
    verdict.assert_passes_clean();
    assert_eq!(verdict.functions()[0]["vpc_id"], network.vpc);
    let (_, mutating) = count(&emulator.requests_since(mark));
    assert_eq!(mutating, 0, "verify only reads");
}

#[tokio::test]
async fn a_nat_instance_set_up_as_the_guides_say_passes() {
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    let (_, ip) = switch_zone_a_to_a_nat_instance(&emulator, &network).await;
    let mut args = network.verify_args();
    args.extend(["--ip", ip.as_str()]);
    verify(&emulator, &args).assert_passes_clean();
}

fn deploy(emulator: &Emulator, zip: &Path, fixtures: bool) {
    let manifest = fixtures_manifest();
    let mut args = vec!["deploy", "--json", "--zip", zip.to_str().unwrap()];
    if fixtures {
        args.extend(["--manifest-path", manifest.to_str().unwrap()]);
    }
    let output = fixedip_output(emulator, &args);
    assert!(
        output.status.success(),
        "deploy failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    // deploy verifies what it deployed: every function passed, with no finding.
    for stack in report["stacks"].as_array().unwrap() {
        for verdict in stack["verification"].as_array().unwrap() {
            assert_eq!(verdict["passed"], true, "{verdict:#}");
            assert_eq!(verdict["findings"], serde_json::json!([]), "{verdict:#}");
        }
    }
}

async fn assert_fixedip_stack_passes(zip: &Path, fixtures: bool, azs: usize) {
    let emulator = Emulator::start();
    deploy(&emulator, zip, fixtures);
    let verdict = verify(&emulator, &[]);
    verdict.assert_passes_clean();
    assert_eq!(
        verdict.report["stacks"][0]["allowed"]
            .as_array()
            .unwrap()
            .len(),
        azs
    );
    assert_eq!(verdict.functions().len(), 1);
}

#[tokio::test]
async fn a_fixedip_stack_in_one_az_passes() {
    assert_fixedip_stack_passes(&fixture_zip("egress-one"), true, 1).await;
}

#[tokio::test]
async fn a_fixedip_stack_in_two_azs_passes() {
    assert_fixedip_stack_passes(example_zip(), false, 2).await;
}

#[tokio::test]
async fn a_fixedip_stack_in_three_azs_passes() {
    assert_fixedip_stack_passes(&fixture_zip("egress-three"), true, 3).await;
}

// -------------------------------------------------------------------------------------------------
// One thing broken, one finding.
// -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn function_attached_to_the_public_subnets() {
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    let public: Vec<String> = network
        .zones
        .iter()
        .map(|z| z.public_subnet.clone())
        .collect();
    attach_function(
        &emulator,
        &network.function,
        vpc_config(&public, &network.security_group, false),
    )
    .await;
    verify(&emulator, &network.verify_args()).assert_fails_with("function-in-public-subnet");
}

#[tokio::test]
async fn function_not_attached_to_any_vpc() {
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    create_function(&emulator, "forgotten", &network.role_arn, None).await;
    let ip = &network.zones[0].ip;
    verify(&emulator, &["--function", "forgotten", "--ip", ip])
        .assert_fails_with("function-not-in-vpc");
}

#[tokio::test]
async fn default_route_deleted() {
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    emulator
        .ec2()
        .await
        .delete_route()
        .route_table_id(&network.zones[1].private_table)
        .destination_cidr_block("0.0.0.0/0")
        .send()
        .await
        .unwrap();
    verify(&emulator, &network.verify_args()).assert_fails_with("missing-default-route");
}

#[tokio::test]
async fn private_subnet_left_on_the_main_route_table() {
    // The subnet was never associated with its table: it falls back to the VPC's main table,
    // which only has the `local` route.
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    let ec2 = emulator.ec2().await;
    let tables = ec2
        .describe_route_tables()
        .route_table_ids(&network.zones[0].private_table)
        .send()
        .await
        .unwrap();
    let association = tables.route_tables()[0]
        .associations()
        .iter()
        .find(|a| a.subnet_id() == Some(&network.zones[0].private_subnet))
        .and_then(|a| a.route_table_association_id())
        .unwrap()
        .to_owned();
    ec2.disassociate_route_table()
        .association_id(association)
        .send()
        .await
        .unwrap();
    verify(&emulator, &network.verify_args()).assert_fails_with("missing-default-route");
}

#[tokio::test]
async fn route_to_a_deleted_nat_gateway() {
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    emulator
        .ec2()
        .await
        .delete_nat_gateway()
        .nat_gateway_id(&network.zones[0].nat)
        .send()
        .await
        .unwrap();
    verify(&emulator, &network.verify_args()).assert_fails_with("nat-gateway-deleted");
}

#[tokio::test]
async fn private_subnet_routed_to_the_nat_of_the_other_az_is_a_warning() {
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    let ec2 = emulator.ec2().await;
    replace_default_route(&ec2, &network.zones[1].private_table)
        .nat_gateway_id(&network.zones[0].nat)
        .send()
        .await
        .unwrap();
    let verdict = verify(&emulator, &network.verify_args());
    assert_eq!(
        verdict.codes(),
        BTreeSet::from(["nat-in-other-az".to_owned()]),
        "{:#}",
        verdict.report
    );
    assert_eq!(verdict.findings()[0]["severity"], "warning");
    assert_eq!(
        verdict.findings()[0]["resource"],
        network.zones[1].private_subnet
    );
    // It works, so verify passes; the warning says what it risks.
    assert_eq!(verdict.exit, 0, "{}", verdict.stderr);
}

#[tokio::test]
async fn private_nat_gateway_chosen_by_mistake() {
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    let ec2 = emulator.ec2().await;
    let zone = &network.zones[0];
    let private_nat = ec2
        .create_nat_gateway()
        .subnet_id(&zone.public_subnet)
        .connectivity_type(ConnectivityType::Private)
        .send()
        .await
        .unwrap()
        .nat_gateway()
        .unwrap()
        .nat_gateway_id()
        .unwrap()
        .to_owned();
    replace_default_route(&ec2, &zone.private_table)
        .nat_gateway_id(private_nat)
        .send()
        .await
        .unwrap();
    verify(&emulator, &network.verify_args()).assert_fails_with("private-nat-gateway");
}

#[tokio::test]
async fn nat_gateway_subnet_without_a_route_to_the_internet_gateway() {
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    emulator
        .ec2()
        .await
        .delete_route()
        .route_table_id(&network.public_table)
        .destination_cidr_block("0.0.0.0/0")
        .send()
        .await
        .unwrap();
    verify(&emulator, &network.verify_args()).assert_fails_with("nat-subnet-without-igw-route");
}

#[tokio::test]
async fn internet_gateway_detached() {
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    emulator
        .ec2()
        .await
        .detach_internet_gateway()
        .internet_gateway_id(&network.igw)
        .vpc_id(&network.vpc)
        .send()
        .await
        .unwrap();
    verify(&emulator, &network.verify_args()).assert_fails_with("internet-gateway-not-attached");
}

#[tokio::test]
async fn nat_address_not_in_the_allowlist() {
    // The partner was given the first NAT's address and another Elastic IP of the account.
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    let (_, other) = allocate_address(&emulator.ec2().await).await;
    let verdict = verify(
        &emulator,
        &[
            "--function",
            &network.function,
            "--ip",
            &network.zones[0].ip,
            "--ip",
            &other,
        ],
    );
    verdict.assert_fails_with("nat-address-not-allowed");
    assert_eq!(verdict.findings()[0]["resource"], network.zones[1].nat);
}

#[tokio::test]
async fn direct_internet_gateway_route_from_the_private_subnet() {
    // Someone "fixed" DNS to a public resolver by routing it straight to the internet gateway.
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    emulator
        .ec2()
        .await
        .create_route()
        .route_table_id(&network.zones[0].private_table)
        .destination_cidr_block("8.8.8.0/24")
        .gateway_id(&network.igw)
        .send()
        .await
        .unwrap();
    verify(&emulator, &network.verify_args()).assert_fails_with("route-bypasses-nat");
}

#[tokio::test]
async fn security_group_egress_removed() {
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    let ec2 = emulator.ec2().await;
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
    verify(&emulator, &network.verify_args())
        .assert_fails_with("egress-blocked-by-security-groups");
}

#[tokio::test]
async fn ipv6_default_route_through_an_egress_only_gateway_with_dual_stack() {
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    let ec2 = emulator.ec2().await;
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
        .route_table_id(&network.zones[0].private_table)
        .destination_ipv6_cidr_block("::/0")
        .egress_only_internet_gateway_id(eigw)
        .send()
        .await
        .unwrap();
    // Without dual stack the IPv6 route carries none of the function's traffic.
    verify(&emulator, &network.verify_args()).assert_passes_clean();
    let private: Vec<String> = network
        .zones
        .iter()
        .map(|z| z.private_subnet.clone())
        .collect();
    attach_function(
        &emulator,
        &network.function,
        vpc_config(&private, &network.security_group, true),
    )
    .await;
    verify(&emulator, &network.verify_args()).assert_fails_with("ipv6-bypasses-nat");
}

#[tokio::test]
async fn nat_instance_with_source_dest_check_left_on() {
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    let (instance, ip) = switch_zone_a_to_a_nat_instance(&emulator, &network).await;
    emulator
        .ec2()
        .await
        .modify_instance_attribute()
        .instance_id(&instance)
        .source_dest_check(
            aws_sdk_ec2::types::AttributeBooleanValue::builder()
                .value(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut args = network.verify_args();
    args.extend(["--ip", ip.as_str()]);
    let verdict = verify(&emulator, &args);
    verdict.assert_fails_with("nat-instance-source-dest-check");
    assert_eq!(verdict.findings()[0]["resource"], instance);
}

#[tokio::test]
async fn nat_instance_stopped() {
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    let (instance, ip) = switch_zone_a_to_a_nat_instance(&emulator, &network).await;
    emulator
        .ec2()
        .await
        .stop_instances()
        .instance_ids(&instance)
        .send()
        .await
        .unwrap();
    let mut args = network.verify_args();
    args.extend(["--ip", ip.as_str()]);
    verify(&emulator, &args).assert_fails_with("nat-instance-not-running");
}

// -------------------------------------------------------------------------------------------------
// The text output and the exit code.
// -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn text_output_names_the_resource_the_problem_and_the_fix() {
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    emulator
        .ec2()
        .await
        .delete_route()
        .route_table_id(&network.zones[1].private_table)
        .destination_cidr_block("0.0.0.0/0")
        .send()
        .await
        .unwrap();
    let mut args = vec!["verify"];
    args.extend(network.verify_args());
    let output = fixedip_output(&emulator, &args);
    assert_eq!(output.status.code(), Some(EXIT_VERIFY));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("FAIL"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "error[missing-default-route] {}",
            network.zones[1].private_table
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("fix: add one to the NAT gateway of"),
        "{stdout}"
    );
    assert!(stdout.contains(&network.zones[1].az), "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("egress is not proven for partner-sync"),
        "{stderr}"
    );
}

// -------------------------------------------------------------------------------------------------
// --probe: the function says which address it left from.
// -------------------------------------------------------------------------------------------------

/// Queues the answer moto's Lambda gives to the next Invoke (there is no Docker engine to run the
/// function here; on AWS the function itself answers).
fn queue_probe_answer(emulator: &Emulator, ip: &str) {
    let answer = serde_json::json!({ "ip": ip }).to_string();
    let body = serde_json::json!({ "results": [answer], "region": REGION }).to_string();
    emulator.moto_api("POST", "/moto-api/static/lambda-simple/response", &body);
}

#[tokio::test]
async fn probe_passes_when_the_function_leaves_from_a_listed_ip() {
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    queue_probe_answer(&emulator, &network.zones[1].ip);
    let mark = emulator.mark();
    let mut args = network.verify_args();
    args.push("--probe");
    let verdict = verify(&emulator, &args);
    verdict.assert_passes_clean();
    let functions = verdict.functions();
    let probe = &functions[0]["probe"];
    assert_eq!(probe["ip"], network.zones[1].ip.as_str());
    assert_eq!(probe["allowed"], true);
    let invokes = emulator
        .requests_since(mark)
        .iter()
        .filter(|r| r.operation == "Invoke")
        .count();
    assert_eq!(invokes, 1, "one probe per function");
}

#[tokio::test]
async fn probe_fails_when_the_function_leaves_from_another_ip() {
    let emulator = Emulator::start();
    let network = build_console_network(&emulator).await;
    queue_probe_answer(&emulator, "198.51.100.23");
    let mut args = network.verify_args();
    args.push("--probe");
    let verdict = verify(&emulator, &args);
    assert_eq!(verdict.exit, EXIT_VERIFY, "{}", verdict.stderr);
    // The configuration is fine; only what the function saw is wrong.
    assert_eq!(verdict.codes(), BTreeSet::new());
    let functions = verdict.functions();
    let probe = &functions[0]["probe"];
    assert_eq!(probe["ip"], "198.51.100.23");
    assert_eq!(probe["allowed"], false);
    assert!(probe["problem"]
        .as_str()
        .unwrap()
        .contains("not one of the allowed IPs"));
}

// -------------------------------------------------------------------------------------------------
// deploy refuses an artifact that cannot run on Lambda, before any change.
// -------------------------------------------------------------------------------------------------

fn assert_artifact_refused(emulator: &Emulator, zip: &Path, code: &str) {
    let output = fixedip_output(emulator, &["deploy", "--zip", zip.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(EXIT_BUILD), "{stderr}");
    assert!(stderr.contains(&format!("[{code}]")), "{stderr}");
    assert!(stderr.contains("nothing was uploaded"), "{stderr}");
    let (_, mutating) = count(&emulator.requests());
    assert_eq!(mutating, 0, "refused before any change");
}

/// The example's `.fixedip` record, so that a foreign binary reads as the example.
fn example_record(dir: &Path) -> std::path::PathBuf {
    let record = dir.join("record.bin");
    let status = std::process::Command::new("objcopy")
        .arg("--dump-section")
        .arg(format!(".fixedip={}", record.display()))
        .arg(example_binary())
        .arg(dir.join("discard"))
        .status()
        .expect("objcopy (binutils) runs");
    assert!(status.success(), "objcopy --dump-section .fixedip");
    record
}

#[test]
fn deploy_refuses_a_binary_needing_a_newer_glibc() {
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    // arc4random came with glibc 2.36 (this machine); provided.al2023 has 2.34.
    let source = dir.path().join("main.c");
    std::fs::write(
        &source,
        "#include <stdlib.h>\n#include <stdio.h>\nint main(void) { printf(\"%u\\n\", arc4random()); return 0; }\n",
    )
    .unwrap();
    let plain = dir.path().join("plain");
    let status = std::process::Command::new("cc")
        .arg(&source)
        .arg("-o")
        .arg(&plain)
        .status()
        .expect("cc runs");
    assert!(
        status.success(),
        "cc (needs glibc 2.36 headers for arc4random)"
    );
    let bootstrap = dir.path().join("bootstrap");
    let status = std::process::Command::new("objcopy")
        .arg("--add-section")
        .arg(format!(".fixedip={}", example_record(dir.path()).display()))
        .arg(&plain)
        .arg(&bootstrap)
        .status()
        .unwrap();
    assert!(status.success(), "objcopy --add-section");
    let zip = dir.path().join("glibc.zip");
    write_lambda_zip(&zip, &std::fs::read(&bootstrap).unwrap(), &[]);
    assert_artifact_refused(&emulator, &zip, "glibc-too-new");
}

#[test]
fn deploy_refuses_a_binary_for_another_architecture() {
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    // The example as the function's architecture sees it from the ELF header: e_machine (bytes
    // 18..20) says aarch64 (0xB7) where this machine built x86_64. Nothing else is read for it.
    let mut binary = std::fs::read(example_binary()).unwrap();
    assert_eq!(&binary[..4], b"\x7fELF");
    let host = u16::from_le_bytes([binary[18], binary[19]]);
    let other: u16 = if host == 0xB7 { 0x3E } else { 0xB7 };
    binary[18..20].copy_from_slice(&other.to_le_bytes());
    let zip = dir.path().join("other-arch.zip");
    write_lambda_zip(&zip, &binary, &[]);
    assert_artifact_refused(&emulator, &zip, "wrong-architecture");
}

#[test]
fn deploy_refuses_a_zip_over_the_direct_upload_limit() {
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    // 51 MB that deflate cannot shrink (xorshift noise), beside the example's bootstrap.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..51 * 1024 * 1024 / 8)
        .flat_map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()
        })
        .collect();
    let zip = dir.path().join("large.zip");
    write_lambda_zip(
        &zip,
        &std::fs::read(example_binary()).unwrap(),
        &[("assets.bin", &noise)],
    );
    assert_artifact_refused(&emulator, &zip, "zip-too-large");
}
