//! The IP lifecycle and teardown (issue 4), run as the user runs them (the built CLI as a
//! subprocess) against a private moto server, and checked through the real SDK: the IPs a partner
//! allowlisted survive destroy, AZ count changes and redeploys; new IPs wait for the user; what is
//! not the stack's is never touched; bad input changes nothing; destroy is safe to repeat.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use aws_sdk_ec2::types::{DomainType, ResourceType, Tag, TagSpecification};
use fixedip_tests::{
    count, example_dir, example_zip, fixture_zip, tag_filter, workspace_root, Emulator,
};

/// The exit codes these tests expect (cargo-fixedip's `exit_code.rs`, documented in docs/cli.md).
const USAGE: i32 = 2;
const PLAN: i32 = 7;
const NEW_IPS_HELD_BACK: i32 = 10;

/// Short waits: moto finishes at once, so a poll never needs to be long.
const FAST_POLLS: [&str; 4] = ["--poll-interval", "0.2", "--eni-timeout", "20"];

fn run(emulator: &Emulator, args: &[&str]) -> Output {
    let mut command = emulator.cargo_fixedip();
    command.args(args).current_dir(example_dir());
    command.output().expect("cargo-fixedip runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs the command and expects exit code `code`; returns its `--json` result.
fn run_json(emulator: &Emulator, args: &[&str], code: i32) -> serde_json::Value {
    let mut all: Vec<&str> = args.to_vec();
    all.push("--json");
    let output = run(emulator, &all);
    assert_eq!(
        output.status.code(),
        Some(code),
        "cargo fixedip {args:?}:\n{}",
        stderr(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?} --json: {e}: {stdout}"))
}

fn zip_arg(zip: &Path) -> &str {
    zip.to_str().expect("UTF-8 path")
}

fn deploy_example(emulator: &Emulator) -> serde_json::Value {
    run_json(emulator, &["deploy", "--zip", zip_arg(example_zip())], 0)
}

fn destroy_example(emulator: &Emulator, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["destroy", "--yes", "--zip", zip_arg(example_zip())];
    args.extend_from_slice(&FAST_POLLS);
    args.extend_from_slice(extra);
    run_json(emulator, &args, 0)
}

fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// The stack's Elastic IPs as the account holds them: IP → `fixedip:address` tag.
async fn stack_ips(emulator: &Emulator, stack: &str) -> BTreeMap<String, String> {
    let answer = emulator
        .ec2()
        .await
        .describe_addresses()
        .send()
        .await
        .expect("DescribeAddresses");
    answer
        .addresses()
        .iter()
        .filter(|a| tag_value(a.tags(), "fixedip:stack") == Some(stack))
        .map(|a| {
            let usage = tag_value(a.tags(), "fixedip:address").unwrap_or("untagged");
            (a.public_ip().unwrap().to_owned(), usage.to_owned())
        })
        .collect()
}

/// Every IP in the account.
async fn all_ips(emulator: &Emulator) -> BTreeSet<String> {
    let answer = emulator
        .ec2()
        .await
        .describe_addresses()
        .send()
        .await
        .expect("DescribeAddresses");
    answer
        .addresses()
        .iter()
        .filter_map(|a| a.public_ip().map(str::to_owned))
        .collect()
}

fn ips_with(ips: &BTreeMap<String, String>, usage: &str) -> BTreeSet<String> {
    ips.iter()
        .filter(|(_, u)| u.as_str() == usage)
        .map(|(ip, _)| ip.clone())
        .collect()
}

/// The IPs `deploy --json` or `ips --json` lists as active.
fn active_in_report(ips: &serde_json::Value) -> BTreeSet<String> {
    ips.as_array()
        .expect("a list of IPs")
        .iter()
        .filter(|a| a["use"] == "active")
        .map(|a| a["ip"].as_str().unwrap().to_owned())
        .collect()
}

/// What of the stack's network is left, by kind: VPCs, subnets, live NAT gateways, route tables,
/// security groups (all found by the stack's tag).
async fn stack_network(emulator: &Emulator, stack: &str) -> BTreeMap<&'static str, usize> {
    let ec2 = emulator.ec2().await;
    let by_stack = || tag_filter("fixedip:stack", stack);
    let vpcs = ec2
        .describe_vpcs()
        .filters(by_stack())
        .send()
        .await
        .unwrap();
    let subnets = ec2
        .describe_subnets()
        .filters(by_stack())
        .send()
        .await
        .unwrap();
    let tables = ec2
        .describe_route_tables()
        .filters(by_stack())
        .send()
        .await
        .unwrap();
    let groups = ec2
        .describe_security_groups()
        .filters(by_stack())
        .send()
        .await
        .unwrap();
    let igws = ec2
        .describe_internet_gateways()
        .filters(by_stack())
        .send()
        .await
        .unwrap();
    // moto ignores tag filters on NAT gateways: the tags are checked here.
    let nats = ec2.describe_nat_gateways().send().await.unwrap();
    let live_nats = nats
        .nat_gateways()
        .iter()
        .filter(|n| tag_value(n.tags(), "fixedip:stack") == Some(stack))
        .filter(|n| n.state().map(|s| s.as_str()) != Some("deleted"))
        .count();
    BTreeMap::from([
        ("vpcs", vpcs.vpcs().len()),
        ("subnets", subnets.subnets().len()),
        ("route tables", tables.route_tables().len()),
        ("security groups", groups.security_groups().len()),
        ("internet gateways", igws.internet_gateways().len()),
        ("live NAT gateways", live_nats),
    ])
}

fn nothing_left() -> BTreeMap<&'static str, usize> {
    [
        "vpcs",
        "subnets",
        "route tables",
        "security groups",
        "internet gateways",
        "live NAT gateways",
    ]
    .into_iter()
    .map(|kind| (kind, 0))
    .collect()
}

async fn role_exists(emulator: &Emulator, name: &str) -> bool {
    emulator
        .iam()
        .await
        .get_role()
        .role_name(name)
        .send()
        .await
        .is_ok()
}

/// The subnets a function is attached to; `None` when it does not exist.
async fn function_subnets(emulator: &Emulator, name: &str) -> Option<Vec<String>> {
    let answer = emulator
        .lambda()
        .await
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
        .ok()?;
    Some(
        answer
            .vpc_config()
            .map(|v| v.subnet_ids().to_vec())
            .unwrap_or_default(),
    )
}

#[tokio::test]
async fn deploy_destroy_deploy_keeps_the_same_ips() {
    let emulator = Emulator::start();
    let deployed = deploy_example(&emulator);
    let shown = active_in_report(&deployed["stacks"][0]["ips"]);
    assert_eq!(shown.len(), 2, "{deployed}");

    let destroyed = destroy_example(&emulator, &[]);
    let stack = &destroyed["stacks"][0];
    let kept: BTreeSet<String> = stack["kept_ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ip"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kept, shown, "destroy reports the IPs it kept: {destroyed}");
    assert!(stack["released_ips"].as_array().unwrap().is_empty());
    assert_eq!(stack_network(&emulator, "default").await, nothing_left());
    let ips = stack_ips(&emulator, "default").await;
    assert_eq!(ips_with(&ips, "retained"), shown, "{ips:?}");
    assert_eq!(ips.len(), 2);
    // Without --delete-function the function stays, out of the VPC, and keeps its role.
    assert!(role_exists(&emulator, "fixedip-default-us-east-1-lambda").await);
    assert_eq!(
        function_subnets(&emulator, "hello-egress").await,
        Some(Vec::new())
    );

    let redeployed = deploy_example(&emulator);
    assert_eq!(
        active_in_report(&redeployed["stacks"][0]["ips"]),
        shown,
        "the partner's allowlist stays valid: {redeployed}"
    );
    assert_eq!(all_ips(&emulator).await, shown, "nothing new was allocated");
    assert_eq!(
        function_subnets(&emulator, "hello-egress")
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn destroy_with_release_ips_asks_first_then_leaves_no_address() {
    let emulator = Emulator::start();
    deploy_example(&emulator);

    // stdin is not a terminal here: releasing needs --yes, and nothing changes without it.
    let mark = emulator.mark();
    let mut args = vec!["destroy", "--zip", zip_arg(example_zip()), "--release-ips"];
    args.extend_from_slice(&FAST_POLLS);
    let refused = run(&emulator, &args);
    assert_eq!(refused.status.code(), Some(USAGE), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("--yes"), "{}", stderr(&refused));
    assert_eq!(count(&emulator.requests_since(mark)).1, 0);

    let destroyed = destroy_example(&emulator, &["--release-ips", "--delete-function"]);
    let stack = &destroyed["stacks"][0];
    assert_eq!(
        stack["released_ips"].as_array().unwrap().len(),
        2,
        "{destroyed}"
    );
    assert!(stack["kept_ips"].as_array().unwrap().is_empty());
    assert!(all_ips(&emulator).await.is_empty(), "no address left");
    assert_eq!(stack_network(&emulator, "default").await, nothing_left());
    assert_eq!(function_subnets(&emulator, "hello-egress").await, None);
    assert!(!role_exists(&emulator, "fixedip-default-us-east-1-lambda").await);
}

#[tokio::test]
async fn destroy_twice_the_second_changes_nothing() {
    let emulator = Emulator::start();
    deploy_example(&emulator);
    destroy_example(&emulator, &["--delete-function"]);
    let retained = stack_ips(&emulator, "default").await;

    let mark = emulator.mark();
    let again = destroy_example(&emulator, &["--delete-function"]);
    assert!(
        again["stacks"][0]["removed"].as_array().unwrap().is_empty(),
        "{again}"
    );
    let (_, mutating) = count(&emulator.requests_since(mark));
    assert_eq!(mutating, 0, "{:?}", emulator.requests_since(mark));
    assert_eq!(stack_ips(&emulator, "default").await, retained);
}

#[tokio::test]
async fn destroy_by_stack_name_refuses_to_cut_off_other_functions_unless_told() {
    let emulator = Emulator::start();
    deploy_example(&emulator);

    let mark = emulator.mark();
    let mut args = vec!["destroy", "--yes", "--stack", "default"];
    args.extend_from_slice(&FAST_POLLS);
    let refused = run(&emulator, &args);
    assert_eq!(refused.status.code(), Some(PLAN), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("hello-egress"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(count(&emulator.requests_since(mark)).1, 0);

    args.push("--force-detach-others");
    run_json(&emulator, &args, 0);
    assert_eq!(stack_network(&emulator, "default").await, nothing_left());
    // Another package's function is taken out of the VPC, never deleted.
    assert_eq!(
        function_subnets(&emulator, "hello-egress").await,
        Some(Vec::new())
    );
}

/// A workspace whose fixture packages all deploy the same function, so that deploying their zips
/// one after the other changes only the function's `azs`.
fn one_function_workspace(dir: &Path) -> PathBuf {
    let packages = ["egress-one", "egress-three", "second-function"];
    let members: Vec<String> = packages.iter().map(|p| format!("\"{p}\"")).collect();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"2\"\nmembers = [{}]\n",
            members.join(", ")
        ),
    )
    .unwrap();
    for package in packages {
        let src = dir.join(package).join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("main.rs"), "fn main() {}\n").unwrap();
        std::fs::write(
            dir.join(package).join("Cargo.toml"),
            format!(
                "[package]\nname = \"{package}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
                 [package.metadata.fixedip]\nfunction-name = \"lifecycle\"\n"
            ),
        )
        .unwrap();
    }
    dir.join("Cargo.toml")
}

#[tokio::test]
async fn azs_2_3_2_1_2_never_lose_an_ip_and_new_ips_wait_for_the_user() {
    let emulator = Emulator::start();
    let workspace = tempfile::tempdir().unwrap();
    let manifest = one_function_workspace(workspace.path());
    let deploy = |fixture: &str, extra: &[&str], code: i32| {
        let zip = fixture_zip(fixture);
        let mut args = vec![
            "deploy",
            "--manifest-path",
            manifest.to_str().unwrap(),
            "--zip",
            zip.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&FAST_POLLS);
        run_json(&emulator, &args, code)
    };

    // azs = 2, a fresh stack: its IPs carry traffic at once.
    deploy("second-function", &[], 0);
    let ips = stack_ips(&emulator, "default").await;
    let first_two = ips_with(&ips, "active");
    assert_eq!((first_two.len(), ips.len()), (2, 2), "{ips:?}");

    // azs = 3: the third IP is allocated and shown, but carries no traffic yet.
    let report = deploy("egress-three", &[], NEW_IPS_HELD_BACK);
    let pending = report["stacks"][0]["pending_ips"].as_array().unwrap();
    assert_eq!(pending.len(), 1, "{report}");
    let third = pending[0]["ip"].as_str().unwrap().to_owned();
    let ips = stack_ips(&emulator, "default").await;
    assert_eq!(ips_with(&ips, "active"), first_two);
    assert_eq!(ips_with(&ips, "pending"), BTreeSet::from([third.clone()]));
    assert_eq!(
        stack_network(&emulator, "default").await["live NAT gateways"],
        2
    );
    // Asked again without the flag: still held back, nothing changes.
    let mark = emulator.mark();
    deploy("egress-three", &[], NEW_IPS_HELD_BACK);
    assert_eq!(count(&emulator.requests_since(mark)).1, 0);

    // Allowed: three active IPs, the same three.
    deploy("egress-three", &["--allow-new-ips"], 0);
    let all_three: BTreeSet<String> = first_two.iter().cloned().chain([third.clone()]).collect();
    let ips = stack_ips(&emulator, "default").await;
    assert_eq!(ips_with(&ips, "active"), all_three, "{ips:?}");
    assert_eq!(
        stack_network(&emulator, "default").await["live NAT gateways"],
        3
    );

    // azs = 2: one AZ goes, its IP is kept as retained.
    deploy("second-function", &[], 0);
    let ips = stack_ips(&emulator, "default").await;
    assert_eq!(
        ips.keys().cloned().collect::<BTreeSet<_>>(),
        all_three,
        "{ips:?}"
    );
    assert_eq!(ips_with(&ips, "active").len(), 2);
    assert_eq!(ips_with(&ips, "retained").len(), 1);
    assert_eq!(
        stack_network(&emulator, "default").await["live NAT gateways"],
        2
    );
    assert_eq!(
        function_subnets(&emulator, "lifecycle")
            .await
            .unwrap()
            .len(),
        2
    );

    // azs = 1.
    deploy("egress-one", &[], 0);
    let ips = stack_ips(&emulator, "default").await;
    assert_eq!(
        ips.keys().cloned().collect::<BTreeSet<_>>(),
        all_three,
        "{ips:?}"
    );
    assert_eq!(ips_with(&ips, "active").len(), 1);
    assert_eq!(ips_with(&ips, "retained").len(), 2);
    assert_eq!(
        function_subnets(&emulator, "lifecycle")
            .await
            .unwrap()
            .len(),
        1
    );

    // azs = 2 again: a retained IP (shown before) goes back to work at once; nothing is new.
    deploy("second-function", &[], 0);
    let ips = stack_ips(&emulator, "default").await;
    assert_eq!(
        ips.keys().cloned().collect::<BTreeSet<_>>(),
        all_three,
        "{ips:?}"
    );
    assert_eq!(ips_with(&ips, "active").len(), 2);
    assert_eq!(all_ips(&emulator).await, all_three, "nothing was allocated");

    // `ips` lists every IP the partner must allowlist, and tells their use apart.
    let listed = run_json(&emulator, &["ips"], 0);
    let listed_ips: BTreeSet<String> = listed["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ip"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed_ips, all_three);
    assert_eq!(active_in_report(&listed["ips"]), ips_with(&ips, "active"));
}

/// Resources the test makes without fixedip: an untagged VPC with a subnet, an Elastic IP and a
/// NAT gateway using it.
struct Foreign {
    vpc: String,
    nat: String,
    ip: String,
}

async fn make_foreign_network(emulator: &Emulator) -> Foreign {
    let ec2 = emulator.ec2().await;
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .unwrap();
    let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_owned();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc)
        .cidr_block("10.0.0.0/24")
        .availability_zone("us-east-1a")
        .send()
        .await
        .unwrap();
    let subnet = subnet.subnet().unwrap().subnet_id().unwrap().to_owned();
    // Named like a stack's, but not tagged as one: it must still not be taken for ours.
    let address = ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::ElasticIp)
                .tags(
                    Tag::builder()
                        .key("Name")
                        .value("fixedip-default-0")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let nat = ec2
        .create_nat_gateway()
        .subnet_id(&subnet)
        .allocation_id(address.allocation_id().unwrap())
        .send()
        .await
        .unwrap();
    Foreign {
        vpc,
        nat: nat
            .nat_gateway()
            .unwrap()
            .nat_gateway_id()
            .unwrap()
            .to_owned(),
        ip: address.public_ip().unwrap().to_owned(),
    }
}

#[tokio::test]
async fn foreign_resources_and_other_stacks_are_untouched_by_deploy_and_destroy() {
    let emulator = Emulator::start();
    let foreign = make_foreign_network(&emulator).await;
    let other = run_json(
        &emulator,
        &[
            "deploy",
            "--manifest-path",
            fixedip_tests::fixtures_manifest().to_str().unwrap(),
            "--zip",
            zip_arg(&fixture_zip("other-stack")),
        ],
        0,
    );
    let other_ips = stack_ips(&emulator, "other").await;
    let other_network = stack_network(&emulator, "other").await;
    assert_eq!(other_ips.len(), 2, "{other}");

    deploy_example(&emulator);
    destroy_example(&emulator, &["--release-ips", "--delete-function"]);

    let ec2 = emulator.ec2().await;
    let vpcs = ec2
        .describe_vpcs()
        .vpc_ids(&foreign.vpc)
        .send()
        .await
        .unwrap();
    assert_eq!(vpcs.vpcs().len(), 1, "the foreign VPC stays");
    let nats = ec2
        .describe_nat_gateways()
        .nat_gateway_ids(&foreign.nat)
        .send()
        .await
        .unwrap();
    assert_eq!(
        nats.nat_gateways()[0].state().map(|s| s.as_str()),
        Some("available"),
        "the foreign NAT gateway stays"
    );
    let remaining = all_ips(&emulator).await;
    assert!(remaining.contains(&foreign.ip), "the foreign IP stays");
    assert_eq!(stack_ips(&emulator, "other").await, other_ips);
    assert_eq!(stack_network(&emulator, "other").await, other_network);
    assert_eq!(stack_ips(&emulator, "default").await, BTreeMap::new());
    assert_eq!(
        function_subnets(&emulator, "other-stack")
            .await
            .unwrap()
            .len(),
        2,
        "the other stack's function stays attached"
    );
}

#[tokio::test]
async fn a_quota_too_small_is_refused_before_any_change() {
    let emulator = Emulator::start();
    // moto reports the default quota of 5 Elastic IPs; 4 in use leave room for 1, the stack
    // needs 2.
    let ec2 = emulator.ec2().await;
    for _ in 0..4 {
        ec2.allocate_address()
            .domain(DomainType::Vpc)
            .send()
            .await
            .unwrap();
    }
    let mark = emulator.mark();
    let output = run(&emulator, &["deploy", "--zip", zip_arg(example_zip())]);
    assert_eq!(output.status.code(), Some(PLAN), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("quota of 5") && message.contains("holds 4"),
        "{message}"
    );
    assert_eq!(
        count(&emulator.requests_since(mark)).1,
        0,
        "account unchanged"
    );
    assert_eq!(all_ips(&emulator).await.len(), 4);
}

#[tokio::test]
async fn a_deploy_that_allocates_nothing_does_not_ask_for_the_quota() {
    let emulator = Emulator::start();
    deploy_example(&emulator);
    let mark = emulator.mark();
    deploy_example(&emulator);
    let requests = emulator.requests_since(mark);
    assert!(
        !requests
            .iter()
            .any(|r| r.operation == "DescribeAccountAttributes"),
        "{requests:?}"
    );
    assert_eq!(count(&requests).1, 0);
}

// With the chaos layer between the CLI and moto: AWS's timing and dependency rules.

use std::time::{Duration, Instant};

use fixedip_chaos::{ChaosProxy, HyperplaneEnis, LogQueries, Outcome, Scenario, Timing};

/// `cargo fixedip ARGS` through the proxy, without blocking the runtime that serves the proxy.
async fn run_through(emulator: &Emulator, proxy: &ChaosProxy, args: &[&str]) -> Output {
    let mut command = emulator.cargo_fixedip();
    command
        .args(args)
        .current_dir(example_dir())
        .env("AWS_ENDPOINT_URL", proxy.url());
    tokio::process::Command::from(command)
        .output()
        .await
        .expect("cargo-fixedip runs")
}

/// What AWS does at teardown, shortened: NAT gateways `deleting` for `nat_deleting`, Lambda's
/// interfaces lingering `linger` after their function left, and DependencyViolation while they
/// (or a NAT) still hold a subnet or security group.
fn slow_teardown(nat_deleting: Duration, linger: Duration) -> Scenario {
    Scenario {
        timing: Timing {
            nat_deleting_ms: nat_deleting.as_millis() as u64,
            ..Timing::default()
        },
        dependency_rules: true,
        hyperplane_enis: Some(HyperplaneEnis {
            linger_ms: linger.as_millis() as u64,
        }),
        ..Scenario::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_waits_out_lingering_interfaces_and_slow_nat_deletion() {
    let emulator = Emulator::start();
    let nat_deleting = Duration::from_secs(3);
    // Longer than the late interface stays, so that the linger is what destroy must wait out.
    let linger = Duration::from_secs(6);
    let proxy = ChaosProxy::start(&emulator.endpoint(), slow_teardown(nat_deleting, linger))
        .await
        .expect("chaos proxy");
    let zip = zip_arg(example_zip());
    let deployed = run_through(&emulator, &proxy, &["deploy", "--json", "--zip", zip]).await;
    assert!(deployed.status.success(), "{}", stderr(&deployed));
    let shown = active_in_report(
        &serde_json::from_slice::<serde_json::Value>(&deployed.stdout).unwrap()["stacks"][0]["ips"],
    );

    // An interface of something else in a private subnet, that AWS would list late: only
    // DependencyViolation on DeleteSubnet tells of it, until the test removes it.
    let ec2 = emulator.ec2().await;
    let private = ec2
        .describe_subnets()
        .filters(tag_filter("fixedip:stack", "default"))
        .filters(tag_filter("fixedip:component", "private-subnet"))
        .send()
        .await
        .unwrap();
    let subnet = private.subnets()[0].subnet_id().unwrap().to_owned();
    let late = ec2
        .create_network_interface()
        .subnet_id(&subnet)
        .description("listed late")
        .send()
        .await
        .unwrap();
    let late = late
        .network_interface()
        .unwrap()
        .network_interface_id()
        .unwrap()
        .to_owned();
    let late_gone = Duration::from_secs(5);
    let remover = tokio::spawn(async move {
        tokio::time::sleep(late_gone).await;
        ec2.delete_network_interface()
            .network_interface_id(late)
            .send()
            .await
            .expect("the test removes its interface");
    });

    proxy.clear_log();
    let started = Instant::now();
    let mut args = vec!["destroy", "--yes", "--json", "--zip", zip];
    args.extend_from_slice(&["--poll-interval", "0.5", "--eni-timeout", "60"]);
    let destroyed = run_through(&emulator, &proxy, &args).await;
    let finished = Instant::now();
    let took = finished - started;
    remover.await.unwrap();
    let message = stderr(&destroyed);
    assert!(destroyed.status.success(), "{message}");
    assert!(
        !message.contains("error"),
        "no error reaches the user: {message}"
    );
    assert_eq!(stack_network(&emulator, "default").await, nothing_left());
    assert_eq!(
        ips_with(&stack_ips(&emulator, "default").await, "retained"),
        shown
    );

    let log = proxy.log();
    let refused = log
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::Refused { .. }))
        .count();
    // Lambda's interfaces read `in-use` as on AWS, so the tool waits for them before it deletes what
    // they hold: refusals may happen (the late interface), but none for deleting an interface in use.
    assert!(
        !log.iter().any(|e| matches!(&e.outcome, Outcome::Refused { code, .. } if code == "InvalidParameterValue")),
        "the tool tried to delete an interface Lambda still held: {log:?}"
    );
    // Lambda's interfaces are `in-use` and requester-managed until released: the tool deletes none
    // (the late one is not Lambda's either), it waits. Measured from the call that let go of them.
    assert_eq!(
        log.applied("DeleteNetworkInterface"),
        0,
        "the tool deleted no interface: {log:?}"
    );
    let detached = log
        .iter()
        .find(|e| {
            ["UpdateFunctionConfiguration", "DeleteFunction"].contains(&e.operation.name.as_str())
                && matches!(e.outcome, Outcome::Answered { status } if status < 300)
        })
        .unwrap_or_else(|| panic!("destroy took the function out of the VPC: {log:?}"))
        .started_at;
    assert!(
        finished >= detached + linger,
        "destroy ended {:?} after the function left the VPC, before its interfaces were released ({linger:?})",
        finished - detached
    );
    // The function's security group held only Lambda's interfaces: it went once they were released.
    let group_deleted = log
        .iter()
        .filter(|e| {
            e.operation.name == "DeleteSecurityGroup"
                && matches!(e.outcome, Outcome::Answered { status } if status < 300)
        })
        .map(|e| e.started_at)
        .max()
        .unwrap_or_else(|| panic!("destroy deleted the security group: {log:?}"));
    assert!(
        group_deleted >= detached + linger,
        "the security group was deleted {:?} after the function left the VPC, before {linger:?}",
        group_deleted - detached
    );
    // The waits overlap (NAT deletion, lingering interfaces, the late one): the longest bounds
    // them, plus a few polls of at most 3 s (six times 0.5 s).
    let bound = late_gone.max(linger + nat_deleting) + Duration::from_secs(10);
    assert!(took < bound, "destroy took {took:?}, more than {bound:?}");
    eprintln!(
        "destroy with NAT deleting {nat_deleting:?}, interfaces lingering {linger:?}, one listed late for {late_gone:?}: {took:?}, {} calls ({} refused)",
        log.len(),
        refused
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_killed_part_way_finishes_when_run_again() {
    let emulator = Emulator::start();
    let proxy = ChaosProxy::start(&emulator.endpoint(), Scenario::default())
        .await
        .expect("chaos proxy");
    let zip = zip_arg(example_zip());
    let deployed = run_through(&emulator, &proxy, &["deploy", "--zip", zip]).await;
    assert!(deployed.status.success(), "{}", stderr(&deployed));
    let shown = ips_with(&stack_ips(&emulator, "default").await, "active");

    // Killed right after its 5th mutating call took effect (the function is out, NATs going).
    proxy.set_scenario(Scenario {
        pause_after_mutating: Some(5),
        ..Scenario::default()
    });
    let mut command = emulator.cargo_fixedip();
    command
        .args(["destroy", "--yes", "--zip", zip, "--poll-interval", "0.2"])
        .current_dir(example_dir())
        .env("AWS_ENDPOINT_URL", proxy.url())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut first = tokio::process::Command::from(command).spawn().unwrap();
    assert!(
        proxy.wait_paused(Duration::from_secs(120)).await,
        "destroy reached its 5th mutating call"
    );
    first.kill().await.unwrap();
    assert_ne!(
        stack_network(&emulator, "default").await,
        nothing_left(),
        "killed part way"
    );

    proxy.set_scenario(Scenario::default());
    let again = run_through(
        &emulator,
        &proxy,
        &["destroy", "--yes", "--zip", zip, "--poll-interval", "0.2"],
    )
    .await;
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(stack_network(&emulator, "default").await, nothing_left());
    assert_eq!(
        ips_with(&stack_ips(&emulator, "default").await, "retained"),
        shown
    );
    // The function stays (no --delete-function), so does the role it runs with.
    assert!(role_exists(&emulator, "fixedip-default-us-east-1-lambda").await);

    // And a third run has nothing left to do.
    proxy.clear_log();
    let third = run_through(&emulator, &proxy, &["destroy", "--yes", "--zip", zip]).await;
    assert!(third.status.success(), "{}", stderr(&third));
    assert_eq!(proxy.log().mutating_applied(), 0);
}

/// The figure docs/benchmarks.md quotes: a whole destroy of a two-AZ stack on plain moto (which
/// deletes NAT gateways at once and makes no Lambda interfaces), calls and wall time.
/// `cargo nextest run -p fixedip-tests --no-capture lifecycle::destroy_figures`.
#[test]
fn destroy_figures() {
    let emulator = Emulator::start();
    deploy_example(&emulator);
    let mark = emulator.mark();
    let started = Instant::now();
    destroy_example(&emulator, &["--delete-function"]);
    let took = started.elapsed();
    let (total, mutating) = count(&emulator.requests_since(mark));
    eprintln!(
        "destroy, azs = 2, plain moto: {:.0} ms, {total} AWS requests, {mutating} mutating",
        took.as_secs_f64() * 1000.0
    );
    // Steps that can run together do: nothing here waits on a poll.
    assert!(took < Duration::from_secs(30), "{took:?}");
}

// Adopted addresses (`ips = [...]`): the ids are allocated by the test, so the function naming
// them is compiled by the test (a few seconds: the macro's dependencies are built already).

/// A one-binary package `name` with `#[fixed_egress(azs = 2, ips = [ids])]`, built into
/// target/fixtures, zipped. Returns its manifest and zip.
fn adopting_function(dir: &Path, name: &str, ids: &[&str]) -> (PathBuf, PathBuf) {
    let root = workspace_root();
    let quoted: Vec<String> = ids.iter().map(|id| format!("\"{id}\"")).collect();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nfixedip-macros = {{ path = \"{}\" }}\n\n[workspace]\n",
            root.join("fixedip-macros").display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("src/main.rs"),
        format!(
            "#[fixedip_macros::fixed_egress(azs = 2, ips = [{}])]\nfn main() {{}}\n",
            quoted.join(", ")
        ),
    )
    .unwrap();
    // The fixtures' lock file: the same versions of the macro's dependencies, already compiled.
    std::fs::copy(
        root.join("tests/fixtures/functions/Cargo.lock"),
        dir.join("Cargo.lock"),
    )
    .unwrap();
    let target = root.join("target/fixtures");
    let status = std::process::Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()))
        .args(["build", "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("cargo build");
    assert!(status.success(), "building {name} failed");
    let zip = dir.join(format!("{name}.zip"));
    fixedip_tests::write_lambda_zip(
        &zip,
        &std::fs::read(target.join("debug").join(name)).unwrap(),
        &[],
    );
    (dir.join("Cargo.toml"), zip)
}

async fn allocate(emulator: &Emulator) -> (String, String) {
    let answer = emulator
        .ec2()
        .await
        .allocate_address()
        .domain(DomainType::Vpc)
        .send()
        .await
        .unwrap();
    (
        answer.allocation_id().unwrap().to_owned(),
        answer.public_ip().unwrap().to_owned(),
    )
}

fn deploy_adopting(emulator: &Emulator, manifest: &Path, zip: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "deploy",
        "--json",
        "--manifest-path",
        manifest.to_str().unwrap(),
        "--zip",
        zip.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(emulator, &args)
}

#[tokio::test]
async fn adopted_ips_carry_traffic_and_survive_destroy_with_release_ips() {
    let emulator = Emulator::start();
    let (id, ip) = allocate(&emulator).await;
    let dir = tempfile::tempdir().unwrap();
    let (manifest, zip) = adopting_function(dir.path(), "adopter-kept", &[&id]);

    // The adopted IP may be on an allowlist already: the second, new one waits for the user.
    let deployed = deploy_adopting(&emulator, &manifest, &zip, &[]);
    assert_eq!(
        deployed.status.code(),
        Some(NEW_IPS_HELD_BACK),
        "{}",
        stderr(&deployed)
    );
    let ips = stack_ips(&emulator, "default").await;
    assert_eq!(
        ips_with(&ips, "active"),
        BTreeSet::from([ip.clone()]),
        "{ips:?}"
    );
    let deployed = deploy_adopting(&emulator, &manifest, &zip, &["--allow-new-ips"]);
    assert!(deployed.status.success(), "{}", stderr(&deployed));
    let ips = stack_ips(&emulator, "default").await;
    assert_eq!(ips_with(&ips, "active").len(), 2, "{ips:?}");
    assert!(
        ips_with(&ips, "active").contains(&ip),
        "the adopted IP serves a NAT: {ips:?}"
    );

    let mut args = vec![
        "destroy",
        "--json",
        "--manifest-path",
        manifest.to_str().unwrap(),
        "--zip",
        zip.to_str().unwrap(),
        "--release-ips",
        "--yes",
        "--delete-function",
    ];
    args.extend_from_slice(&FAST_POLLS);
    let destroyed = run(&emulator, &args);
    assert!(destroyed.status.success(), "{}", stderr(&destroyed));
    assert_eq!(
        all_ips(&emulator).await,
        BTreeSet::from([ip.clone()]),
        "the adopted IP is never released; the other one is"
    );
    assert_eq!(stack_network(&emulator, "default").await, nothing_left());
}

#[tokio::test]
async fn a_bad_allocation_id_is_refused_before_any_change() {
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let (manifest, zip) = adopting_function(
        dir.path(),
        "adopter-missing",
        &["eipalloc-0123456789abcdef0"],
    );
    let mark = emulator.mark();
    let output = deploy_adopting(&emulator, &manifest, &zip, &[]);
    assert_eq!(output.status.code(), Some(PLAN), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("eipalloc-0123456789abcdef0"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        count(&emulator.requests_since(mark)).1,
        0,
        "account unchanged"
    );
}

#[tokio::test]
async fn an_adopted_ip_in_use_elsewhere_is_refused_before_any_change() {
    let emulator = Emulator::start();
    let foreign = make_foreign_network(&emulator).await;
    let ec2 = emulator.ec2().await;
    let addresses = ec2.describe_addresses().send().await.unwrap();
    let id = addresses
        .addresses()
        .iter()
        .find(|a| a.public_ip() == Some(foreign.ip.as_str()))
        .and_then(|a| a.allocation_id())
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let (manifest, zip) = adopting_function(dir.path(), "adopter-busy", &[&id]);
    let mark = emulator.mark();
    let output = deploy_adopting(&emulator, &manifest, &zip, &[]);
    assert_eq!(output.status.code(), Some(PLAN), "{}", stderr(&output));
    assert!(stderr(&output).contains(&id), "{}", stderr(&output));
    let mutating: Vec<String> = emulator
        .requests_since(mark)
        .into_iter()
        .filter(|r| r.is_mutating())
        .map(|r| r.operation)
        .collect();
    assert!(mutating.is_empty(), "account changed: {mutating:?}");
}
