//! The modes `egress = [...]` (restricted egress) and `endpoints = [...]` (VPC endpoints), run as the
//! user runs them (the built CLI as a subprocess) against a private moto server, and checked through
//! the real SDK: deploy, a no-op redeploy that makes no mutating call, verify, a change of the list
//! on the live stack that converges, and destroy leaving only the retained IPs.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use aws_sdk_ec2::types::{IpPermission, PrefixListId, VpcEndpoint, VpcEndpointType};
use fixedip_tests::{
    clear_aws_env, count, example_dir, fixture_zip, fixtures_manifest, tag_filter, Emulator, REGION,
};

/// Short waits: moto finishes at once, so a poll never needs to be long.
const FAST_POLLS: [&str; 4] = ["--poll-interval", "0.2", "--eni-timeout", "20"];

/// The CLI this very `cargo test` built, run as `cargo fixedip ...` against the emulator. Named by
/// `CARGO_BIN_EXE_*` rather than found next to the test executable: with a shared
/// `CARGO_BUILD_BUILD_DIR`, the copy there may be another checkout's.
fn run(emulator: &Emulator, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cargo-fixedip-under-test"));
    command.arg("fixedip");
    clear_aws_env(&mut command);
    command.envs(emulator.aws_env()).env("NO_COLOR", "1");
    command.args(args).current_dir(example_dir());
    command.output().expect("cargo-fixedip runs")
}

/// Runs the command and expects it to succeed; returns its `--json` result.
fn run_json(emulator: &Emulator, args: &[&str]) -> serde_json::Value {
    let mut all: Vec<&str> = args.to_vec();
    all.push("--json");
    let output = run(emulator, &all);
    assert_eq!(
        output.status.code(),
        Some(0),
        "cargo fixedip {args:?}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?} --json: {e}: {stdout}"))
}

fn zip_arg(zip: &Path) -> &str {
    zip.to_str().expect("UTF-8 path")
}

/// The fixtures' workspace, where each fixture's settings (its function name) are read.
fn manifest() -> String {
    fixtures_manifest().to_str().expect("UTF-8 path").to_owned()
}

fn deploy(emulator: &Emulator, fixture: &str) -> serde_json::Value {
    let zip = fixture_zip(fixture);
    let manifest = manifest();
    run_json(
        emulator,
        &[
            "deploy",
            "--manifest-path",
            &manifest,
            "--zip",
            zip_arg(&zip),
        ],
    )
}

/// A second deploy of the same thing: no mutating call at all.
fn redeploy_changes_nothing(emulator: &Emulator, fixture: &str) {
    let mark = emulator.mark();
    let report = deploy(emulator, fixture);
    let requests = emulator.requests_since(mark);
    let mutating: Vec<&str> = requests
        .iter()
        .filter(|r| r.is_mutating())
        .map(|r| r.operation.as_str())
        .collect();
    assert_eq!(mutating, Vec::<&str>::new(), "no-op redeploy of {fixture}");
    assert_eq!(report["stacks"][0]["steps"], 0);
    let (total, _) = count(&requests);
    assert!(total > 0);
}

fn verify_passes(emulator: &Emulator, stack: &str) {
    let output = run(emulator, &["verify", "--stack", stack]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "verify of {stack}:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn destroy(emulator: &Emulator, fixture: &str) {
    let zip = fixture_zip(fixture);
    let manifest = manifest();
    let mut args = vec![
        "destroy",
        "--yes",
        "--manifest-path",
        &manifest,
        "--zip",
        zip_arg(&zip),
    ];
    args.extend_from_slice(&FAST_POLLS);
    run_json(emulator, &args);
}

/// One security group rule as text: `tcp 443 0.0.0.0/0`, `all 0.0.0.0/0`, `tcp 443 sg-...`.
fn rules(permissions: &[IpPermission]) -> BTreeSet<String> {
    let mut rules = BTreeSet::new();
    for p in permissions {
        let protocol = p.ip_protocol().unwrap_or_default();
        let ports = match (protocol, p.from_port(), p.to_port()) {
            ("-1", _, _) => String::new(),
            (_, Some(from), Some(to)) if from == to => format!(" {from}"),
            (_, Some(from), Some(to)) => format!(" {from}-{to}"),
            _ => String::new(),
        };
        let protocol = if protocol == "-1" { "all" } else { protocol };
        for range in p.ip_ranges() {
            rules.insert(format!("{protocol}{ports} {}", range.cidr_ip().unwrap()));
        }
        for pair in p.user_id_group_pairs() {
            rules.insert(format!("{protocol}{ports} {}", pair.group_id().unwrap()));
        }
        for list in p.prefix_list_ids() {
            rules.insert(format!(
                "{protocol}{ports} {}",
                list.prefix_list_id().unwrap()
            ));
        }
    }
    rules
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The stack's security group of a component: (id, egress rules, ingress rules).
async fn group(
    emulator: &Emulator,
    stack: &str,
    component: &str,
) -> Option<(String, BTreeSet<String>, BTreeSet<String>)> {
    let answer = emulator
        .ec2()
        .await
        .describe_security_groups()
        .filters(tag_filter("fixedip:stack", stack))
        .filters(tag_filter("fixedip:component", component))
        .send()
        .await
        .expect("DescribeSecurityGroups");
    let groups = answer.security_groups();
    assert!(groups.len() <= 1, "one {component} per stack: {groups:?}");
    groups.first().map(|g| {
        (
            g.group_id().unwrap().to_owned(),
            rules(g.ip_permissions_egress()),
            rules(g.ip_permissions()),
        )
    })
}

/// The id of the AWS-managed prefix list of a service (`com.amazonaws.<region>.<service>`).
async fn prefix_list(emulator: &Emulator, service: &str) -> String {
    let name = format!("com.amazonaws.{REGION}.{service}");
    let answer = emulator
        .ec2()
        .await
        .describe_prefix_lists()
        .send()
        .await
        .expect("DescribePrefixLists");
    answer
        .prefix_lists()
        .iter()
        .find(|l| l.prefix_list_name() == Some(name.as_str()))
        .and_then(|l| l.prefix_list_id())
        .unwrap_or_else(|| panic!("no prefix list {name}"))
        .to_owned()
}

/// The stack's endpoints that are not deleted.
async fn endpoints(emulator: &Emulator, stack: &str) -> Vec<VpcEndpoint> {
    let answer = emulator
        .ec2()
        .await
        .describe_vpc_endpoints()
        .filters(tag_filter("fixedip:stack", stack))
        .send()
        .await
        .expect("DescribeVpcEndpoints");
    answer
        .vpc_endpoints()
        .iter()
        .filter(|e| {
            !e.state()
                .is_some_and(|s| s.as_str().eq_ignore_ascii_case("deleted"))
        })
        .cloned()
        .collect()
}

/// (service short name, kind, route tables or subnets) of each endpoint, sorted.
fn described(endpoints: &[VpcEndpoint]) -> Vec<(String, &'static str, usize)> {
    let prefix = format!("com.amazonaws.{REGION}.");
    let mut described: Vec<_> = endpoints
        .iter()
        .map(|e| {
            let service = e.service_name().unwrap().strip_prefix(&prefix).unwrap();
            match e.vpc_endpoint_type() {
                Some(VpcEndpointType::Gateway) => {
                    (service.to_owned(), "gateway", e.route_table_ids().len())
                }
                _ => (service.to_owned(), "interface", e.subnet_ids().len()),
            }
        })
        .collect();
    described.sort();
    described
}

/// After destroy: no VPC, group or endpoint of the stack; its Elastic IPs all kept as retained.
async fn only_retained_ips_left(emulator: &Emulator, stack: &str) {
    let ec2 = emulator.ec2().await;
    let vpcs = ec2
        .describe_vpcs()
        .filters(tag_filter("fixedip:stack", stack))
        .send()
        .await
        .unwrap();
    assert!(vpcs.vpcs().is_empty(), "{:?}", vpcs.vpcs());
    for component in ["security-group", "endpoint-security-group"] {
        assert_eq!(group(emulator, stack, component).await, None, "{component}");
    }
    assert!(endpoints(emulator, stack).await.is_empty());
    let addresses = ec2
        .describe_addresses()
        .filters(tag_filter("fixedip:stack", stack))
        .send()
        .await
        .unwrap();
    assert!(!addresses.addresses().is_empty());
    for address in addresses.addresses() {
        let usage = address
            .tags()
            .iter()
            .find(|t| t.key() == Some("fixedip:address"))
            .and_then(|t| t.value());
        assert_eq!(usage, Some("retained"), "{address:?}");
        assert_eq!(address.association_id(), None);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn restricted_egress_is_exactly_the_list_and_follows_it_when_it_changes() {
    let emulator = Emulator::start();
    deploy(&emulator, "egress-restricted");
    let (_, egress, ingress) = group(&emulator, "restricted", "security-group")
        .await
        .unwrap();
    // The default rule (all traffic to 0.0.0.0/0) is gone: exactly the list.
    assert_eq!(
        egress,
        set(&["tcp 22 203.0.113.10/32", "tcp 443 0.0.0.0/0"])
    );
    assert!(ingress.is_empty());
    redeploy_changes_nothing(&emulator, "egress-restricted");
    verify_passes(&emulator, "restricted");

    // The same function with another list: missing rules added, extra ones revoked.
    deploy(&emulator, "egress-changed");
    let (_, egress, _) = group(&emulator, "restricted", "security-group")
        .await
        .unwrap();
    assert_eq!(
        egress,
        set(&[
            "tcp 443 0.0.0.0/0",
            "tcp 5432-5433 198.51.100.0/24",
            "udp 53 10.0.0.2/32"
        ])
    );
    redeploy_changes_nothing(&emulator, "egress-changed");
    verify_passes(&emulator, "restricted");

    destroy(&emulator, "egress-changed");
    only_retained_ips_left(&emulator, "restricted").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_are_made_kept_changed_and_removed_with_the_stack() {
    let emulator = Emulator::start();
    deploy(&emulator, "endpoints-four");
    let made = endpoints(&emulator, "endpoints").await;
    assert_eq!(
        described(&made),
        [
            // One gateway endpoint per service, on both private route tables.
            ("dynamodb".to_owned(), "gateway", 2),
            ("logs".to_owned(), "interface", 2),
            ("s3".to_owned(), "gateway", 2),
            ("secretsmanager".to_owned(), "interface", 2),
        ]
    );
    let (function_group, egress, _) = group(&emulator, "endpoints", "security-group")
        .await
        .unwrap();
    assert_eq!(egress, set(&["all 0.0.0.0/0"]), "default egress kept");
    let (endpoint_group, _, admitted) = group(&emulator, "endpoints", "endpoint-security-group")
        .await
        .unwrap();
    assert_eq!(admitted, set(&[&format!("tcp 443 {function_group}")]));
    for endpoint in &made {
        let state = endpoint.state().map(|s| s.as_str().to_ascii_lowercase());
        assert_eq!(state.as_deref(), Some("available"));
        if endpoint.vpc_endpoint_type() == Some(&VpcEndpointType::Interface) {
            assert_eq!(endpoint.private_dns_enabled(), Some(true));
            let groups: Vec<&str> = endpoint
                .groups()
                .iter()
                .filter_map(|g| g.group_id())
                .collect();
            assert_eq!(groups, [endpoint_group.as_str()]);
        }
    }
    // Every private route table routes S3's and DynamoDB's prefix lists to a gateway endpoint.
    let tables = emulator
        .ec2()
        .await
        .describe_route_tables()
        .filters(tag_filter("fixedip:stack", "endpoints"))
        .filters(tag_filter("fixedip:component", "private-route-table"))
        .send()
        .await
        .unwrap();
    assert_eq!(tables.route_tables().len(), 2);
    for table in tables.route_tables() {
        let to_endpoints = table
            .routes()
            .iter()
            .filter(|r| {
                r.destination_prefix_list_id()
                    .is_some_and(|p| p.starts_with("pl-"))
                    && r.gateway_id().is_some_and(|g| g.starts_with("vpce-"))
            })
            .count();
        assert_eq!(to_endpoints, 2, "{table:?}");
    }
    redeploy_changes_nothing(&emulator, "endpoints-four");
    // verify: the prefix-list routes are not ways out to the internet.
    verify_passes(&emulator, "endpoints");

    // Another list on the live stack: dropped endpoints go, STS comes, and the restricted egress
    // still reaches the interface endpoints (HTTPS to the VPC).
    deploy(&emulator, "endpoints-changed");
    assert_eq!(
        described(&endpoints(&emulator, "endpoints").await),
        [
            ("s3".to_owned(), "gateway", 2),
            ("sts".to_owned(), "interface", 2),
        ]
    );
    // The group filters the S3 gateway endpoint's traffic too: HTTPS to S3's prefix list.
    let s3 = prefix_list(&emulator, "s3").await;
    let (function_group, egress, _) = group(&emulator, "endpoints", "security-group")
        .await
        .unwrap();
    assert_eq!(
        egress,
        set(&[
            "tcp 22 203.0.113.10/32",
            "tcp 443 10.0.0.0/16",
            &format!("tcp 443 {s3}")
        ])
    );
    redeploy_changes_nothing(&emulator, "endpoints-changed");
    verify_passes(&emulator, "endpoints");

    // The rule revoked by hand: verify says S3's endpoint is blocked (a warning: nothing leaks),
    // and the next deploy puts the rule back, with one call.
    emulator
        .ec2()
        .await
        .revoke_security_group_egress()
        .group_id(&function_group)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(443)
                .to_port(443)
                .prefix_list_ids(PrefixListId::builder().prefix_list_id(&s3).build())
                .build(),
        )
        .send()
        .await
        .expect("RevokeSecurityGroupEgress");
    let report = run_json(&emulator, &["verify", "--stack", "endpoints"]);
    let findings: Vec<&serde_json::Value> = report["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["functions"].as_array().unwrap())
        .flat_map(|f| f["findings"].as_array().unwrap())
        .collect();
    assert!(
        findings
            .iter()
            .any(|f| f["code"] == "endpoint-blocked-by-security-groups"
                && f["severity"] == "warning"
                && f["problem"].as_str().unwrap().contains(&s3)),
        "{report:#}"
    );
    let mark = emulator.mark();
    deploy(&emulator, "endpoints-changed");
    let mutating: Vec<String> = emulator
        .requests_since(mark)
        .iter()
        .filter(|r| r.is_mutating() && r.service == "ec2")
        .map(|r| r.operation.clone())
        .collect();
    assert_eq!(mutating, ["AuthorizeSecurityGroupEgress"]);
    verify_passes(&emulator, "endpoints");

    destroy(&emulator, "endpoints-changed");
    only_retained_ips_left(&emulator, "endpoints").await;
}

/// A stack deployed by an older fixedip has one gateway endpoint per service and per AZ slot
/// (tagged with the slot); the gateway endpoint quota is 20 per region. A deploy keeps one per
/// service on every private route table and deletes the others, and every table ends with its
/// route to each service's prefix list.
#[tokio::test(flavor = "multi_thread")]
async fn one_gateway_endpoint_per_slot_becomes_one_per_service() {
    let emulator = Emulator::start();
    deploy(&emulator, "endpoints-four");
    let ec2 = emulator.ec2().await;
    // The old shape, made with the real SDK: each gateway endpoint replaced by one per table.
    for endpoint in endpoints(&emulator, "endpoints").await {
        if endpoint.vpc_endpoint_type() != Some(&VpcEndpointType::Gateway) {
            continue;
        }
        let id = endpoint.vpc_endpoint_id().unwrap();
        ec2.delete_vpc_endpoints()
            .vpc_endpoint_ids(id)
            .send()
            .await
            .unwrap();
        for (slot, table) in endpoint.route_table_ids().iter().enumerate() {
            let tags = endpoint
                .tags()
                .iter()
                .cloned()
                .chain([aws_sdk_ec2::types::Tag::builder()
                    .key("fixedip:slot")
                    .value(slot.to_string())
                    .build()]);
            ec2.create_vpc_endpoint()
                .vpc_id(endpoint.vpc_id().unwrap())
                .service_name(endpoint.service_name().unwrap())
                .vpc_endpoint_type(VpcEndpointType::Gateway)
                .route_table_ids(table)
                .tag_specifications(
                    aws_sdk_ec2::types::TagSpecification::builder()
                        .resource_type(aws_sdk_ec2::types::ResourceType::VpcEndpoint)
                        .set_tags(Some(tags.collect()))
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }
    }
    let old = described(&endpoints(&emulator, "endpoints").await);
    assert_eq!(
        old.iter().filter(|(_, kind, _)| *kind == "gateway").count(),
        4
    );

    deploy(&emulator, "endpoints-four");
    assert_eq!(
        described(&endpoints(&emulator, "endpoints").await),
        [
            ("dynamodb".to_owned(), "gateway", 2),
            ("logs".to_owned(), "interface", 2),
            ("s3".to_owned(), "gateway", 2),
            ("secretsmanager".to_owned(), "interface", 2),
        ]
    );
    redeploy_changes_nothing(&emulator, "endpoints-four");
    verify_passes(&emulator, "endpoints");
}
