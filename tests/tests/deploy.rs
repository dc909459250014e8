//! `cargo fixedip deploy`, `ips` and `status`, run as the user runs them (the built binary, as a
//! subprocess) against a private moto server, and checked through the real SDK.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use aws_sdk_ec2::types::Filter;
use fixedip_tests::{
    count, example_dir, example_zip, fixture_zip, fixtures_manifest, tag_filter, write_lambda_zip,
    Emulator, REGION,
};

/// Runs `cargo fixedip ARGS` against the emulator from the main workspace; panics with its output
/// unless it succeeds.
fn fixedip(emulator: &Emulator, args: &[&str]) -> String {
    let output = fixedip_output(emulator, args, |_| {});
    assert!(
        output.status.success(),
        "cargo fixedip {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn fixedip_output(
    emulator: &Emulator,
    args: &[&str],
    adjust: impl FnOnce(&mut std::process::Command),
) -> Output {
    let mut command = emulator.cargo_fixedip();
    command.args(args).current_dir(example_dir());
    adjust(&mut command);
    command.output().expect("cargo-fixedip runs")
}

fn deploy_zip(emulator: &Emulator, zip: &Path) -> serde_json::Value {
    let out = fixedip(
        emulator,
        &["deploy", "--json", "--zip", zip.to_str().unwrap()],
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("deploy --json: {e}: {out}"))
}

fn deploy_fixture(emulator: &Emulator, name: &str) -> serde_json::Value {
    let zip = fixture_zip(name);
    let manifest = fixtures_manifest();
    let out = fixedip(
        emulator,
        &[
            "deploy",
            "--json",
            "--manifest-path",
            manifest.to_str().unwrap(),
            "--zip",
            zip.to_str().unwrap(),
        ],
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("deploy --json: {e}: {out}"))
}

fn tag<'a>(tags: &'a [aws_sdk_ec2::types::Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// Checks the whole topology of `stack` as product.md describes it, through the SDK; returns the
/// Elastic IPs of its NAT gateways.
async fn assert_topology(
    emulator: &Emulator,
    stack: &str,
    azs: usize,
    functions: &[&str],
) -> BTreeSet<String> {
    let ec2 = emulator.ec2().await;
    let stack_tag = tag_filter("fixedip:stack", stack);

    let vpcs = ec2
        .describe_vpcs()
        .filters(stack_tag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(vpcs.vpcs().len(), 1, "one VPC for stack {stack}");
    let vpc = &vpcs.vpcs()[0];
    let vpc_id = vpc.vpc_id().unwrap();
    for attribute in [
        aws_sdk_ec2::types::VpcAttributeName::EnableDnsSupport,
        aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames,
    ] {
        let answer = ec2
            .describe_vpc_attribute()
            .vpc_id(vpc_id)
            .attribute(attribute.clone())
            .send()
            .await
            .unwrap();
        let on = answer
            .enable_dns_support()
            .or(answer.enable_dns_hostnames())
            .and_then(|v| v.value());
        assert_eq!(on, Some(true), "{attribute:?} on");
    }

    let igws = ec2
        .describe_internet_gateways()
        .filters(stack_tag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(igws.internet_gateways().len(), 1);
    let igw = &igws.internet_gateways()[0];
    assert_eq!(
        igw.attachments()[0].vpc_id(),
        Some(vpc_id),
        "internet gateway attached to the VPC"
    );
    let igw_id = igw.internet_gateway_id().unwrap();

    let subnets = ec2
        .describe_subnets()
        .filters(stack_tag.clone())
        .send()
        .await
        .unwrap();
    let of = |component: &str| -> Vec<_> {
        subnets
            .subnets()
            .iter()
            .filter(|s| tag(s.tags(), "fixedip:component") == Some(component))
            .cloned()
            .collect()
    };
    let (public, private) = (of("public-subnet"), of("private-subnet"));
    assert_eq!(
        (public.len(), private.len()),
        (azs, azs),
        "a public and a private subnet per AZ"
    );
    let zones: BTreeSet<_> = private
        .iter()
        .map(|s| s.availability_zone().unwrap().to_owned())
        .collect();
    assert_eq!(zones.len(), azs, "one AZ per slot");
    for subnet in public.iter().chain(&private) {
        assert_eq!(subnet.vpc_id(), Some(vpc_id));
        assert!(tag(subnet.tags(), "fixedip:slot").is_some());
        assert!(
            tag(subnet.tags(), "Name").is_some_and(|n| n.starts_with(&format!("fixedip-{stack}-")))
        );
    }

    let nats = ec2
        .describe_nat_gateways()
        .filter(Filter::builder().name("vpc-id").values(vpc_id).build())
        .send()
        .await
        .unwrap();
    let nats: Vec<_> = nats
        .nat_gateways()
        .iter()
        .filter(|n| tag(n.tags(), "fixedip:stack") == Some(stack))
        .cloned()
        .collect();
    assert_eq!(nats.len(), azs, "one NAT gateway per AZ");
    let mut nat_ips = BTreeSet::new();
    for nat in &nats {
        let subnet = public
            .iter()
            .find(|s| s.subnet_id() == nat.subnet_id())
            .expect("NAT gateway in a public subnet");
        assert_eq!(
            tag(nat.tags(), "fixedip:slot"),
            tag(subnet.tags(), "fixedip:slot")
        );
        nat_ips.insert(
            nat.nat_gateway_addresses()[0]
                .public_ip()
                .unwrap()
                .to_owned(),
        );
    }

    let tables = ec2
        .describe_route_tables()
        .filters(stack_tag.clone())
        .send()
        .await
        .unwrap();
    let default_route = |table: &aws_sdk_ec2::types::RouteTable| {
        table
            .routes()
            .iter()
            .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
            .cloned()
            .expect("a default route")
    };
    for table in tables.route_tables() {
        let associated: Vec<_> = table
            .associations()
            .iter()
            .filter_map(|a| a.subnet_id())
            .collect();
        match tag(table.tags(), "fixedip:component") {
            Some("public-route-table") => {
                assert_eq!(
                    default_route(table).gateway_id(),
                    Some(igw_id),
                    "public: 0.0.0.0/0 → IGW"
                );
                let mut expected: Vec<_> = public.iter().map(|s| s.subnet_id().unwrap()).collect();
                let mut associated = associated.clone();
                expected.sort();
                associated.sort();
                assert_eq!(
                    associated, expected,
                    "every public subnet uses the public table"
                );
            }
            Some("private-route-table") => {
                assert_eq!(associated.len(), 1);
                let subnet = private
                    .iter()
                    .find(|s| s.subnet_id() == Some(associated[0]))
                    .expect("a private subnet");
                let nat_id = default_route(table)
                    .nat_gateway_id()
                    .expect("private: 0.0.0.0/0 → a NAT")
                    .to_owned();
                let nat = nats
                    .iter()
                    .find(|n| n.nat_gateway_id() == Some(&nat_id))
                    .expect("the stack's NAT");
                let nat_subnet = public
                    .iter()
                    .find(|s| s.subnet_id() == nat.subnet_id())
                    .unwrap();
                assert_eq!(
                    nat_subnet.availability_zone(),
                    subnet.availability_zone(),
                    "the NAT of the same AZ"
                );
            }
            other => panic!("unexpected route table component {other:?}"),
        }
    }

    let groups = ec2
        .describe_security_groups()
        .filters(stack_tag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(groups.security_groups().len(), 1);
    let group = &groups.security_groups()[0];
    assert!(group.ip_permissions().is_empty(), "no inbound rule");

    let iam = emulator.iam().await;
    let role_name = format!("fixedip-{stack}-{REGION}-lambda");
    let policies = iam
        .list_attached_role_policies()
        .role_name(&role_name)
        .send()
        .await
        .unwrap();
    let policies: BTreeSet<_> = policies
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_name())
        .collect();
    assert!(
        policies.contains("AWSLambdaBasicExecutionRole")
            && policies.contains("AWSLambdaVPCAccessExecutionRole"),
        "{policies:?}"
    );

    let lambda = emulator.lambda().await;
    let mut private_ids: Vec<_> = private
        .iter()
        .map(|s| s.subnet_id().unwrap().to_owned())
        .collect();
    private_ids.sort();
    for name in functions {
        let function = lambda
            .get_function()
            .function_name(*name)
            .send()
            .await
            .unwrap();
        let configuration = function.configuration().unwrap();
        assert_eq!(
            configuration.runtime().map(|r| r.as_str()),
            Some("provided.al2023")
        );
        assert_eq!(configuration.handler(), Some("bootstrap"));
        let mut subnets = configuration.vpc_config().unwrap().subnet_ids().to_vec();
        subnets.sort();
        assert_eq!(
            subnets, private_ids,
            "{name} runs in exactly the private subnets"
        );
        assert_eq!(
            configuration.vpc_config().unwrap().security_group_ids(),
            [group.group_id().unwrap()]
        );
        assert!(configuration
            .role()
            .unwrap()
            .ends_with(&format!("role/{role_name}")));
        assert_eq!(
            function
                .tags()
                .and_then(|t| t.get("fixedip:stack"))
                .map(String::as_str),
            Some(stack)
        );
    }

    let addresses = ec2
        .describe_addresses()
        .filters(stack_tag)
        .send()
        .await
        .unwrap();
    let tagged: BTreeSet<_> = addresses
        .addresses()
        .iter()
        .filter_map(|a| a.public_ip().map(str::to_owned))
        .collect();
    assert_eq!(
        tagged, nat_ips,
        "the stack's Elastic IPs are exactly its NAT gateways'"
    );
    nat_ips
}

fn ips_of(emulator: &Emulator, stack: &str) -> BTreeSet<String> {
    fixedip(emulator, &["ips", "--stack", stack])
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn fresh_deploy_of_the_example_in_two_azs() {
    let emulator = Emulator::start();
    let report = deploy_zip(&emulator, example_zip());
    assert_eq!(report["stacks"][0]["stack"], "default");
    let nat_ips = assert_topology(&emulator, "default", 2, &["hello-egress"]).await;
    assert_eq!(
        ips_of(&emulator, "default"),
        nat_ips,
        "`ips` prints the NAT gateways' IPs"
    );
    let reported: BTreeSet<String> = report["stacks"][0]["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ip"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(reported, nat_ips, "deploy prints the same IPs");

    let cidrs: BTreeSet<String> = fixedip(&emulator, &["ips", "--format", "cidr"])
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(cidrs, nat_ips.iter().map(|ip| format!("{ip}/32")).collect());
    let json: serde_json::Value =
        serde_json::from_str(&fixedip(&emulator, &["ips", "--json"])).unwrap();
    assert_eq!(json["ips"].as_array().unwrap().len(), 2);
    assert!(json["ips"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["active"] == true));
}

#[tokio::test]
async fn plan_against_the_account_after_a_deploy_has_nothing_to_do() {
    let emulator = Emulator::start();
    let before = fixedip(&emulator, &["plan", "--json", "-p", "hello-egress"]);
    let before: serde_json::Value = serde_json::from_str(&before).unwrap();
    assert_eq!(before["offline"], false);
    assert!(
        !before["stacks"][0]["steps"].as_array().unwrap().is_empty(),
        "an empty account needs everything"
    );
    deploy_zip(&emulator, example_zip());
    let mark = emulator.mark();
    let after: serde_json::Value = serde_json::from_str(&fixedip(
        &emulator,
        &["plan", "--json", "-p", "hello-egress"],
    ))
    .unwrap();
    assert!(
        after["stacks"][0]["steps"].as_array().unwrap().is_empty(),
        "{after}"
    );
    assert_eq!(
        count(&emulator.requests_since(mark)).1,
        0,
        "plan is read-only"
    );
}

#[tokio::test]
async fn fresh_deploy_in_one_az() {
    let emulator = Emulator::start();
    deploy_fixture(&emulator, "egress-one");
    let nat_ips = assert_topology(&emulator, "default", 1, &["egress-one"]).await;
    assert_eq!(ips_of(&emulator, "default"), nat_ips);
}

#[tokio::test]
async fn fresh_deploy_in_three_azs() {
    let emulator = Emulator::start();
    deploy_fixture(&emulator, "egress-three");
    let nat_ips = assert_topology(&emulator, "default", 3, &["egress-three"]).await;
    assert_eq!(ips_of(&emulator, "default"), nat_ips);
}

#[tokio::test]
async fn second_deploy_makes_no_mutating_call() {
    let emulator = Emulator::start();
    deploy_zip(&emulator, example_zip());
    let mark = emulator.mark();
    let report = deploy_zip(&emulator, example_zip());
    let calls = emulator.requests_since(mark);
    let mutating: Vec<_> = calls.iter().filter(|c| c.is_mutating()).collect();
    assert!(
        mutating.is_empty(),
        "a no-op deploy changed the account: {mutating:?}"
    );
    assert!(!calls.is_empty(), "the recorder sees the reads");
    assert_eq!(report["stacks"][0]["steps"], 0);
    assert_eq!(
        report["stacks"][0]["calls"]["mutating"], 0,
        "the CLI's own count agrees"
    );
}

/// A deploy that changes nothing verifies from what it observed instead of reading it again: a
/// route added by hand that sends a public prefix past the NAT (which the planner leaves alone)
/// still fails it, as `verify` fails it, with nothing changed.
#[tokio::test]
async fn a_noop_deploy_still_fails_on_a_route_that_bypasses_the_nat() {
    let emulator = Emulator::start();
    deploy_zip(&emulator, example_zip());
    let ec2 = emulator.ec2().await;
    let stack = || tag_filter("fixedip:stack", "default");
    let gateway = ec2
        .describe_internet_gateways()
        .filters(stack())
        .send()
        .await
        .unwrap();
    let gateway = gateway.internet_gateways()[0]
        .internet_gateway_id()
        .unwrap();
    let tables = ec2
        .describe_route_tables()
        .filters(stack())
        .send()
        .await
        .unwrap();
    let private = tables
        .route_tables()
        .iter()
        .find(|t| t.routes().iter().any(|r| r.nat_gateway_id().is_some()))
        .expect("a private route table");
    ec2.create_route()
        .route_table_id(private.route_table_id().unwrap())
        .destination_cidr_block("203.0.113.0/24")
        .gateway_id(gateway)
        .send()
        .await
        .unwrap();

    let mark = emulator.mark();
    let zip = example_zip().to_str().unwrap();
    let output = fixedip_output(&emulator, &["deploy", "--json", "--zip", zip], |_| {});
    assert_eq!(
        output.status.code(),
        Some(9),
        "VERIFY: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["stacks"][0]["steps"], 0, "nothing to change");
    let codes: Vec<&str> = report["stacks"][0]["verification"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(codes.contains(&"route-bypasses-nat"), "{codes:?}");
    let calls = emulator.requests_since(mark);
    assert!(calls.iter().all(|c| !c.is_mutating()), "{calls:?}");
    assert!(
        calls
            .iter()
            .all(|c| c.operation != "GetFunctionConfiguration"),
        "verified from the observation, not read again: {calls:?}"
    );
}

#[tokio::test]
async fn code_change_only_uploads_the_code() {
    let emulator = Emulator::start();
    deploy_zip(&emulator, example_zip());
    let changed = tempfile::tempdir().unwrap();
    let zip = changed.path().join("changed.zip");
    let bootstrap = std::fs::read(fixedip_tests::example_binary()).unwrap();
    write_lambda_zip(&zip, &bootstrap, &[("VERSION", b"2")]);
    let mark = emulator.mark();
    deploy_zip(&emulator, &zip);
    let mutating: Vec<_> = emulator
        .requests_since(mark)
        .into_iter()
        .filter(|c| c.is_mutating())
        .map(|c| c.operation)
        .collect();
    // The upload alone: nothing of the network is touched, so the stack's lease (an SSM
    // parameter taken before the first change of anything else) is not taken either.
    assert_eq!(mutating, ["UpdateFunctionCode"]);
    let lambda = emulator.lambda().await;
    let function = lambda
        .get_function()
        .function_name("hello-egress")
        .send()
        .await
        .unwrap();
    let expected = base64_sha256(&std::fs::read(&zip).unwrap());
    assert_eq!(
        function.configuration().unwrap().code_sha256(),
        Some(expected.as_str())
    );
}

fn base64_sha256(bytes: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn two_functions_share_one_stack() {
    let emulator = Emulator::start();
    deploy_zip(&emulator, example_zip());
    let first = ips_of(&emulator, "default");
    deploy_fixture(&emulator, "second-function");
    let nat_ips = assert_topology(
        &emulator,
        "default",
        2,
        &["hello-egress", "second-function"],
    )
    .await;
    assert_eq!(
        nat_ips, first,
        "the second function leaves through the same IPs"
    );
    assert_eq!(ips_of(&emulator, "default"), first);
}

#[tokio::test]
async fn two_stacks_are_separate() {
    let emulator = Emulator::start();
    deploy_zip(&emulator, example_zip());
    deploy_fixture(&emulator, "other-stack");
    let default = assert_topology(&emulator, "default", 2, &["hello-egress"]).await;
    let other = assert_topology(&emulator, "other", 2, &["other-stack"]).await;
    assert!(default.is_disjoint(&other), "{default:?} / {other:?}");
    let ec2 = emulator.ec2().await;
    let vpcs = ec2
        .describe_vpcs()
        .filters(tag_filter("fixedip:component", "vpc"))
        .send()
        .await
        .unwrap();
    assert_eq!(vpcs.vpcs().len(), 2);
}

/// A refused deploy: the error says `expected`, and moto received no mutating request.
fn assert_refused(emulator: &Emulator, output: Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "deploy should fail");
    assert!(
        stderr.contains(expected),
        "stderr lacks {expected:?}:\n{stderr}"
    );
    let (_, mutating) = count(&emulator.requests());
    assert_eq!(
        mutating,
        0,
        "the account changed: {:?}",
        emulator.requests()
    );
}

#[test]
fn no_credentials_is_refused_before_any_change() {
    let emulator = Emulator::start();
    let zip = example_zip().to_str().unwrap().to_owned();
    let output = fixedip_output(&emulator, &["deploy", "--zip", &zip], |command| {
        command
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY");
    });
    assert_refused(&emulator, output, "no AWS credentials");
}

#[test]
fn unknown_region_is_refused_before_any_change() {
    let emulator = Emulator::start();
    let zip = example_zip().to_str().unwrap().to_owned();
    let output = fixedip_output(
        &emulator,
        &["deploy", "--region", "moon-1", "--zip", &zip],
        |_| {},
    );
    assert_refused(&emulator, output, "not an AWS region name");
}

#[test]
fn package_without_the_attribute_is_refused_before_any_change() {
    let emulator = Emulator::start();
    let zip = fixture_zip("no-attribute");
    let manifest = fixtures_manifest();
    let output = fixedip_output(
        &emulator,
        &[
            "deploy",
            "--manifest-path",
            manifest.to_str().unwrap(),
            "--zip",
            zip.to_str().unwrap(),
        ],
        |_| {},
    );
    assert_refused(&emulator, output, "fixed_egress");
    assert!(
        emulator.requests().is_empty(),
        "nothing asked of AWS at all"
    );
}

#[tokio::test]
async fn status_lists_the_stack() {
    let emulator = Emulator::start();
    deploy_zip(&emulator, example_zip());
    let mark = emulator.mark();
    let status: serde_json::Value =
        serde_json::from_str(&fixedip(&emulator, &["status", "--json"])).unwrap();
    assert_eq!(
        count(&emulator.requests_since(mark)).1,
        0,
        "status is read-only"
    );
    let status = &status["stacks"][0];
    assert_eq!(status["stack"], "default");
    assert_eq!(status["nat_gateways"].as_array().unwrap().len(), 2);
    assert_eq!(status["functions"][0]["name"], "hello-egress");
    assert_eq!(status["region"], REGION);
}
