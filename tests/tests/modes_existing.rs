//! The "existing network" mode (`vpc = "vpc-..."` in `[package.metadata.fixedip]`) against a
//! private moto server, through the real SDK.
//!
//! The test builds a user's network the way a person does in the console (VPC, internet gateway,
//! per AZ a public subnet with a NAT gateway and its Elastic IP and a private subnet routed to it,
//! plus a third public subnet and a subnet with no route out), then deploys the fixture function
//! `egress-one` onto it with the real CLI.
//!
//! The VPC id is known only once the test has built it, and settings live in Cargo.toml: each
//! case writes a small workspace into a temporary directory whose `egress-one` package carries the
//! `[package.metadata.fixedip]` table under test, and deploys the prebuilt fixture zip with
//! `--manifest-path` pointing there. The zip's record names the package `egress-one`; the CLI takes
//! that package's settings from the given workspace, as it does for any `deploy --zip`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use aws_sdk_ec2::types::{DomainType, Filter};
use fixedip_tests::{example_dir, fixture_zip, AwsRequest, Emulator, REGION};

const FUNCTION: &str = "egress-one";

// -------------------------------------------------------------------------------------------------
// The user's network.
// -------------------------------------------------------------------------------------------------

struct UserNetwork {
    vpc: String,
    /// Per AZ: (public subnet, private subnet, NAT gateway, Elastic IP).
    zones: Vec<(String, String, String, String)>,
    /// A public subnet without a NAT (a load balancer's, say).
    extra_public: String,
    /// A subnet on the VPC's main table, which reaches nothing outside the VPC.
    isolated: String,
}

impl UserNetwork {
    fn private_subnets(&self) -> BTreeSet<String> {
        self.zones.iter().map(|z| z.1.clone()).collect()
    }

    fn ips(&self) -> BTreeSet<String> {
        self.zones.iter().map(|z| z.3.clone()).collect()
    }
}

fn vpc_filter(vpc: &str) -> Filter {
    Filter::builder().name("vpc-id").values(vpc).build()
}

async fn create_subnet(ec2: &aws_sdk_ec2::Client, vpc: &str, az: &str, cidr: &str) -> String {
    let answer = ec2
        .create_subnet()
        .vpc_id(vpc)
        .availability_zone(az)
        .cidr_block(cidr)
        .send()
        .await
        .unwrap();
    answer.subnet().unwrap().subnet_id().unwrap().to_owned()
}

async fn create_route_table(ec2: &aws_sdk_ec2::Client, vpc: &str) -> String {
    let answer = ec2.create_route_table().vpc_id(vpc).send().await.unwrap();
    answer
        .route_table()
        .unwrap()
        .route_table_id()
        .unwrap()
        .to_owned()
}

async fn associate(ec2: &aws_sdk_ec2::Client, table: &str, subnet: &str) {
    ec2.associate_route_table()
        .route_table_id(table)
        .subnet_id(subnet)
        .send()
        .await
        .unwrap();
}

async fn create_vpc(ec2: &aws_sdk_ec2::Client, cidr: &str) -> String {
    let answer = ec2.create_vpc().cidr_block(cidr).send().await.unwrap();
    answer.vpc().unwrap().vpc_id().unwrap().to_owned()
}

/// VPC, internet gateway, a public table; `with_nats`: per AZ a NAT gateway with an Elastic IP in a
/// public subnet and a private subnet routed to it. Always a third public subnet, and a subnet left
/// on the main table (no route out).
async fn build_user_network(emulator: &Emulator, cidr_base: u8, with_nats: bool) -> UserNetwork {
    let ec2 = emulator.ec2().await;
    let vpc = create_vpc(&ec2, &format!("10.{cidr_base}.0.0/16")).await;
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
    if with_nats {
        for (i, az) in ["a", "b"].iter().enumerate() {
            let az = format!("{REGION}{az}");
            let public =
                create_subnet(&ec2, &vpc, &az, &format!("10.{cidr_base}.{}.0/24", i)).await;
            let private =
                create_subnet(&ec2, &vpc, &az, &format!("10.{cidr_base}.{}.0/24", 10 + i)).await;
            associate(&ec2, &public_table, &public).await;
            let address = ec2
                .allocate_address()
                .domain(DomainType::Vpc)
                .send()
                .await
                .unwrap();
            let nat = ec2
                .create_nat_gateway()
                .subnet_id(&public)
                .allocation_id(address.allocation_id().unwrap())
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
            associate(&ec2, &private_table, &private).await;
            zones.push((
                public,
                private,
                nat,
                address.public_ip().unwrap().to_owned(),
            ));
        }
    }
    let extra_public = create_subnet(
        &ec2,
        &vpc,
        &format!("{REGION}c"),
        &format!("10.{cidr_base}.20.0/24"),
    )
    .await;
    associate(&ec2, &public_table, &extra_public).await;
    let isolated = create_subnet(
        &ec2,
        &vpc,
        &format!("{REGION}c"),
        &format!("10.{cidr_base}.30.0/24"),
    )
    .await;
    UserNetwork {
        vpc,
        zones,
        extra_public,
        isolated,
    }
}

/// Everything of the user's network as Describe* shows it (tags included), for before/after
/// comparisons. The stack's security group is left out: it is the one thing fixedip makes there.
async fn snapshot(emulator: &Emulator, vpc: &str) -> Vec<String> {
    let ec2 = emulator.ec2().await;
    let mut lines = Vec::new();
    let vpcs = ec2.describe_vpcs().vpc_ids(vpc).send().await.unwrap();
    lines.push(format!("{:?}", vpcs.vpcs()));
    let subnets = ec2
        .describe_subnets()
        .filters(vpc_filter(vpc))
        .send()
        .await
        .unwrap();
    let mut subnets: Vec<String> = subnets.subnets().iter().map(|s| format!("{s:?}")).collect();
    subnets.sort();
    lines.extend(subnets);
    let tables = ec2
        .describe_route_tables()
        .filters(vpc_filter(vpc))
        .send()
        .await
        .unwrap();
    let mut tables: Vec<String> = tables
        .route_tables()
        .iter()
        .map(|t| format!("{t:?}"))
        .collect();
    tables.sort();
    lines.extend(tables);
    let nats = ec2
        .describe_nat_gateways()
        .filter(vpc_filter(vpc))
        .send()
        .await
        .unwrap();
    let mut nats: Vec<String> = nats
        .nat_gateways()
        .iter()
        .map(|n| format!("{n:?}"))
        .collect();
    nats.sort();
    lines.extend(nats);
    let gateways = ec2
        .describe_internet_gateways()
        .filters(
            Filter::builder()
                .name("attachment.vpc-id")
                .values(vpc)
                .build(),
        )
        .send()
        .await
        .unwrap();
    lines.push(format!("{:?}", gateways.internet_gateways()));
    let addresses = ec2.describe_addresses().send().await.unwrap();
    let mut addresses: Vec<String> = addresses
        .addresses()
        .iter()
        .map(|a| format!("{a:?}"))
        .collect();
    addresses.sort();
    lines.extend(addresses);
    lines
}

// -------------------------------------------------------------------------------------------------
// The workspace that names the VPC, and running the CLI.
// -------------------------------------------------------------------------------------------------

/// A workspace whose `egress-one` package carries `metadata` as its `[package.metadata.fixedip]`.
fn workspace_with(metadata: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nresolver = \"2\"\nmembers = [\"egress-one\"]\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("egress-one/src")).unwrap();
    std::fs::write(
        root.join("egress-one/Cargo.toml"),
        format!(
            "[package]\nname = \"egress-one\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n[package.metadata.fixedip]\n{metadata}\n"
        ),
    )
    .unwrap();
    // The binary target cargo metadata lists; deploy uploads the prebuilt fixture zip instead.
    std::fs::write(root.join("egress-one/src/main.rs"), "fn main() {}\n").unwrap();
    let manifest = root.join("Cargo.toml");
    (dir, manifest)
}

fn run(emulator: &Emulator, args: &[&str]) -> Output {
    let mut command = emulator.cargo_fixedip();
    command.args(args).current_dir(example_dir());
    command.output().expect("cargo-fixedip runs")
}

fn deploy(emulator: &Emulator, manifest: &Path) -> Output {
    let zip = fixture_zip(FUNCTION);
    run(
        emulator,
        &[
            "deploy",
            "--json",
            "--manifest-path",
            manifest.to_str().unwrap(),
            "--zip",
            zip.to_str().unwrap(),
        ],
    )
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn mutating(requests: &[AwsRequest]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.is_mutating())
        .map(|r| format!("{}:{}", r.service, r.operation))
        .collect()
}

async fn function_subnets(emulator: &Emulator) -> (BTreeSet<String>, Vec<String>) {
    let lambda = emulator.lambda().await;
    let configuration = lambda
        .get_function_configuration()
        .function_name(FUNCTION)
        .send()
        .await
        .unwrap();
    let vpc = configuration.vpc_config().unwrap();
    (
        vpc.subnet_ids().iter().cloned().collect(),
        vpc.security_group_ids().to_vec(),
    )
}

async fn stack_security_groups(emulator: &Emulator) -> Vec<(String, String)> {
    let ec2 = emulator.ec2().await;
    let groups = ec2
        .describe_security_groups()
        .filters(
            Filter::builder()
                .name("tag:fixedip:stack")
                .values("default")
                .build(),
        )
        .send()
        .await
        .unwrap();
    groups
        .security_groups()
        .iter()
        .map(|g| {
            (
                g.group_id().unwrap().to_owned(),
                g.vpc_id().unwrap().to_owned(),
            )
        })
        .collect()
}

// -------------------------------------------------------------------------------------------------
// The cases.
// -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn deploy_ips_verify_redeploy_and_destroy_on_a_users_network() {
    let emulator = Emulator::start();
    let network = build_user_network(&emulator, 1, true).await;
    let before = snapshot(&emulator, &network.vpc).await;
    let (_dir, manifest) = workspace_with(&format!("vpc = \"{}\"", network.vpc));

    // Deploy: attached to exactly the two private subnets behind the NATs.
    let mark = emulator.mark();
    let output = deploy(&emulator, &manifest);
    assert!(output.status.success(), "{}", text(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let stack = &report["stacks"][0];
    let first_calls = stack["calls"].clone();
    let reported: BTreeSet<String> = stack["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ip"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(reported, network.ips(), "{report:#}");
    assert_eq!(stack["verification"][0]["passed"], true, "{report:#}");
    let (subnets, groups) = function_subnets(&emulator).await;
    assert_eq!(subnets, network.private_subnets());
    assert!(!subnets.contains(&network.extra_public) && !subnets.contains(&network.isolated));
    let ours = stack_security_groups(&emulator).await;
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(
        ours[0].1, network.vpc,
        "the stack's group is in the user's VPC"
    );
    assert_eq!(groups, [ours[0].0.clone()]);

    // The only EC2 change was the stack's security group; no network resource was made.
    let calls = emulator.requests_since(mark);
    let ec2_changes: Vec<String> = mutating(&calls)
        .into_iter()
        .filter(|c| c.starts_with("ec2:"))
        .collect();
    assert_eq!(ec2_changes, ["ec2:CreateSecurityGroup"], "{calls:?}");
    assert_eq!(snapshot(&emulator, &network.vpc).await, before);

    // `ips`: the NATs' Elastic IPs, read-only.
    let mark = emulator.mark();
    let output = run(&emulator, &["ips"]);
    assert!(output.status.success(), "{}", text(&output));
    let listed: BTreeSet<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(listed, network.ips(), "{}", text(&output));
    assert_eq!(
        mutating(&emulator.requests_since(mark)),
        Vec::<String>::new()
    );

    // `verify` of the stack finds the function through its security group and passes.
    let output = run(&emulator, &["verify", "--json"]);
    assert!(output.status.success(), "{}", text(&output));
    let verdict: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        verdict["stacks"][0]["functions"][0]["function"], FUNCTION,
        "{verdict:#}"
    );
    assert_eq!(
        verdict["stacks"][0]["functions"][0]["findings"],
        serde_json::json!([])
    );

    // `status` shows the stack on the user's network, with the same IPs.
    let output = run(&emulator, &["status", "--json"]);
    assert!(output.status.success(), "{}", text(&output));
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let shown: BTreeSet<String> = status["stacks"][0]["existing_network_ips"]
        .as_array()
        .unwrap_or_else(|| panic!("{status:#}"))
        .iter()
        .map(|ip| ip.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(shown, network.ips(), "{status:#}");

    // A second deploy changes nothing.
    let mark = emulator.mark();
    let output = deploy(&emulator, &manifest);
    assert!(output.status.success(), "{}", text(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["stacks"][0]["steps"], 0, "{report:#}");
    assert_eq!(report["stacks"][0]["calls"]["mutating"], 0, "{report:#}");
    // The figures docs quote: run with `--nocapture` to see them.
    eprintln!(
        "existing network: fresh deploy calls {}, no-op redeploy calls {}",
        first_calls, report["stacks"][0]["calls"]
    );
    assert_eq!(
        mutating(&emulator.requests_since(mark)),
        Vec::<String>::new()
    );

    // Destroy: the function and the stack's group go; the user's network stays as it was.
    let zip = fixture_zip(FUNCTION);
    let output = run(
        &emulator,
        &[
            "destroy",
            "--yes",
            "--manifest-path",
            manifest.to_str().unwrap(),
            "--zip",
            zip.to_str().unwrap(),
            "--delete-function",
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(stack_security_groups(&emulator).await, Vec::new());
    let lambda = emulator.lambda().await;
    let gone = lambda.get_function().function_name(FUNCTION).send().await;
    assert!(gone.is_err(), "the function is deleted");
    assert_eq!(snapshot(&emulator, &network.vpc).await, before);
}

#[tokio::test]
async fn subnets_naming_a_public_subnet_are_refused_and_nothing_changes() {
    let emulator = Emulator::start();
    let network = build_user_network(&emulator, 2, true).await;
    let before = snapshot(&emulator, &network.vpc).await;
    let (_dir, manifest) = workspace_with(&format!(
        "vpc = \"{}\"\nsubnets = [\"{}\", \"{}\"]",
        network.vpc, network.zones[0].1, network.extra_public
    ));
    let mark = emulator.mark();
    let output = deploy(&emulator, &manifest);
    assert!(!output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{} ({REGION}c): routes 0.0.0.0/0 to an internet gateway: a public subnet",
            network.extra_public
        )),
        "{}",
        text(&output)
    );
    assert_eq!(
        mutating(&emulator.requests_since(mark)),
        Vec::<String>::new()
    );
    assert_eq!(snapshot(&emulator, &network.vpc).await, before);

    // Naming only a qualifying subnet attaches there and nowhere else.
    let (_dir, manifest) = workspace_with(&format!(
        "vpc = \"{}\"\nsubnets = [\"{}\"]",
        network.vpc, network.zones[1].1
    ));
    let output = deploy(&emulator, &manifest);
    assert!(output.status.success(), "{}", text(&output));
    let (subnets, _) = function_subnets(&emulator).await;
    assert_eq!(subnets, BTreeSet::from([network.zones[1].1.clone()]));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let ips: Vec<&str> = report["stacks"][0]["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ip"].as_str().unwrap())
        .collect();
    assert_eq!(ips, [network.zones[1].3.as_str()], "{report:#}");
}

#[tokio::test]
async fn a_vpc_with_no_qualifying_subnet_is_refused_with_the_reasons() {
    let emulator = Emulator::start();
    let network = build_user_network(&emulator, 3, false).await;
    let before = snapshot(&emulator, &network.vpc).await;
    let (_dir, manifest) = workspace_with(&format!("vpc = \"{}\"", network.vpc));
    let mark = emulator.mark();
    let output = deploy(&emulator, &manifest);
    assert!(!output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        format!("no subnet of {} can carry the function", network.vpc),
        format!(
            "{} ({REGION}c): routes 0.0.0.0/0 to an internet gateway: a public subnet",
            network.extra_public
        ),
        format!("{} ({REGION}c): no route out", network.isolated),
    ] {
        assert!(stderr.contains(&expected), "{expected}\n{}", text(&output));
    }
    assert_eq!(
        mutating(&emulator.requests_since(mark)),
        Vec::<String>::new()
    );
    assert_eq!(snapshot(&emulator, &network.vpc).await, before);

    // A VPC id that does not exist: refused the same way, naming it.
    let (_dir, manifest) = workspace_with("vpc = \"vpc-0123456789abcdef0\"");
    let mark = emulator.mark();
    let output = deploy(&emulator, &manifest);
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("vpc-0123456789abcdef0 named by `vpc`"),
        "{}",
        text(&output)
    );
    assert_eq!(
        mutating(&emulator.requests_since(mark)),
        Vec::<String>::new()
    );
}

/// Makes the user's VPC dual-stack the way the console does: an Amazon IPv6 block on the VPC, a
/// /64 on each private subnet, an egress-only internet gateway and `::/0` to it in each private
/// table. A function allowed IPv6 there sends IPv6 traffic out of the egress-only gateway from its
/// own address: not through the NATs' fixed IPv4 addresses.
async fn make_dual_stack(emulator: &Emulator, network: &UserNetwork) {
    let ec2 = emulator.ec2().await;
    let association = ec2
        .associate_vpc_cidr_block()
        .vpc_id(&network.vpc)
        .amazon_provided_ipv6_cidr_block(true)
        .send()
        .await
        .unwrap();
    let block = association
        .ipv6_cidr_block_association()
        .and_then(|a| a.ipv6_cidr_block())
        .expect("an IPv6 block");
    let base: std::net::Ipv6Addr = block.split('/').next().unwrap().parse().unwrap();
    // The i-th /64 of the VPC's block.
    let sixty_four = |i: u128| {
        format!(
            "{}/64",
            std::net::Ipv6Addr::from(u128::from(base) + (i << 64))
        )
    };
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
    for (i, private) in network.private_subnets().into_iter().enumerate() {
        ec2.associate_subnet_cidr_block()
            .subnet_id(&private)
            .ipv6_cidr_block(sixty_four(i as u128))
            .send()
            .await
            .unwrap();
        let tables = ec2
            .describe_route_tables()
            .filters(
                Filter::builder()
                    .name("association.subnet-id")
                    .values(&private)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let table = tables.route_tables()[0].route_table_id().unwrap();
        ec2.create_route()
            .route_table_id(table)
            .destination_ipv6_cidr_block("::/0")
            .egress_only_internet_gateway_id(&eigw)
            .send()
            .await
            .unwrap();
    }
}

async fn ipv6_allowed(emulator: &Emulator) -> Option<bool> {
    let configuration = emulator
        .lambda()
        .await
        .get_function_configuration()
        .function_name(FUNCTION)
        .send()
        .await
        .unwrap();
    configuration
        .vpc_config()
        .and_then(|v| v.ipv6_allowed_for_dual_stack())
}

#[tokio::test]
async fn ipv6_that_would_bypass_the_fixed_ips_is_flagged_and_turned_off_by_deploy() {
    let emulator = Emulator::start();
    let network = build_user_network(&emulator, 3, true).await;
    make_dual_stack(&emulator, &network).await;
    let (_dir, manifest) = workspace_with(&format!("vpc = \"{}\"", network.vpc));
    let output = deploy(&emulator, &manifest);
    assert!(output.status.success(), "{}", text(&output));
    // fixedip says so explicitly rather than leave it to Lambda's default.
    assert_eq!(ipv6_allowed(&emulator).await, Some(false));

    // Someone allows IPv6 on the function by hand: verify names the bypass.
    let (subnets, groups) = function_subnets(&emulator).await;
    emulator
        .lambda()
        .await
        .update_function_configuration()
        .function_name(FUNCTION)
        .vpc_config(
            aws_sdk_lambda::types::VpcConfig::builder()
                .set_subnet_ids(Some(subnets.into_iter().collect()))
                .set_security_group_ids(Some(groups))
                .ipv6_allowed_for_dual_stack(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(ipv6_allowed(&emulator).await, Some(true));
    let output = run(&emulator, &["verify", "--json"]);
    assert!(!output.status.success(), "{}", text(&output));
    let verdict: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let codes: BTreeSet<String> = verdict["stacks"][0]["functions"][0]["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("{verdict:#}"))
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        codes,
        BTreeSet::from(["ipv6-bypasses-nat".to_owned()]),
        "{verdict:#}"
    );

    // deploy does not let it pass: it turns IPv6 off, says why, and verify passes again.
    let output = deploy(&emulator, &manifest);
    assert!(output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("allows IPv6 (Ipv6AllowedForDualStack)") && stderr.contains("turned off"),
        "{}",
        text(&output)
    );
    assert_eq!(ipv6_allowed(&emulator).await, Some(false));
    let output = run(&emulator, &["verify", "--json"]);
    assert!(output.status.success(), "{}", text(&output));
}
