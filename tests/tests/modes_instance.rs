//! `nat = "instance"` end to end (issue 7): the CLI under test against a private moto server,
//! checked through the real SDK. Deploy builds one NAT instance per AZ (check off, the slot's
//! Elastic IP on it, private routes to it); a second deploy makes no mutating call; verify passes;
//! destroy leaves only the retained IPs; and switching a live stack from NAT gateways to
//! instances and back keeps the same Elastic IPs.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use aws_sdk_ec2::types::Filter;
use fixedip_tests::{
    count, example_dir, example_zip, fixture_zip, fixtures_manifest, tag_filter, Emulator,
};

const FAST_POLLS: [&str; 4] = ["--poll-interval", "0.2", "--eni-timeout", "20"];

fn run(emulator: &Emulator, args: &[&str]) -> Output {
    let mut command = emulator.cargo_fixedip();
    command.args(args).current_dir(example_dir());
    command.output().expect("cargo-fixedip runs")
}

fn ok(emulator: &Emulator, args: &[&str]) -> Output {
    let output = run(emulator, args);
    assert!(
        output.status.success(),
        "cargo fixedip {args:?}:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Every call the tool made is one `cargo fixedip iam-policy` allows, judged with its resources'
/// tags and its conditions (`fixedip_tests::iam_policy`; the emulator checks it again when
/// dropped); NAT instances add RunInstances, AssociateAddress, ModifyInstanceAttribute,
/// TerminateInstances, GetConsoleOutput, ModifyNetworkInterfaceAttribute and ssm:GetParameter,
/// which must all have been made.
fn assert_calls_allowed_by_the_policy(emulator: &Emulator) {
    let log = emulator.cli_calls();
    let made: BTreeSet<String> = log
        .iter()
        .map(|e| format!("{}:{}", e.operation.service, e.operation.name))
        .collect();
    for instance_call in [
        "ec2:RunInstances",
        "ec2:TerminateInstances",
        "ssm:GetParameter",
        // The ready line before the route moves; the public IP off before the address leaves.
        "ec2:GetConsoleOutput",
        "ec2:ModifyNetworkInterfaceAttribute",
    ] {
        assert!(
            made.contains(instance_call),
            "{instance_call} not made: {made:?}"
        );
    }
    fixedip_tests::iam_policy::assert_allowed_by_iam_policy(&log);
}

fn zip(name: &str) -> String {
    let path = fixture_zip(name);
    Path::new(&path).to_str().expect("UTF-8 path").to_owned()
}

/// A command on the fixture workspace (where the `nat-instance` package is).
fn on_fixtures<'a>(manifest: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![args[0], "--manifest-path", manifest];
    all.extend_from_slice(&args[1..]);
    all
}

/// The stack's Elastic IPs, whatever holds them.
async fn stack_ips(emulator: &Emulator) -> BTreeSet<String> {
    let answer = emulator
        .ec2()
        .await
        .describe_addresses()
        .filters(tag_filter("fixedip:stack", "default"))
        .send()
        .await
        .unwrap();
    answer
        .addresses()
        .iter()
        .filter_map(|a| a.public_ip().map(str::to_owned))
        .collect()
}

/// The stack's NAT instances that are not terminated: (id, primary interface, check on).
async fn live_instances(emulator: &Emulator) -> Vec<(String, String, Option<bool>)> {
    let answer = emulator
        .ec2()
        .await
        .describe_instances()
        .filters(tag_filter("fixedip:component", "nat-instance"))
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .build(),
        )
        .send()
        .await
        .unwrap();
    answer
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| {
            (
                i.instance_id().unwrap().to_owned(),
                i.network_interfaces()[0]
                    .network_interface_id()
                    .unwrap()
                    .to_owned(),
                i.source_dest_check(),
            )
        })
        .collect()
}

/// Every private route table of the stack sends 0.0.0.0/0 to one of `instances`, and every
/// instance holds one of the stack's Elastic IPs on its primary interface.
async fn assert_routed_through_instances(emulator: &Emulator) {
    let instances = live_instances(emulator).await;
    assert_eq!(instances.len(), 2, "{instances:?}");
    for (id, _, check) in &instances {
        assert_eq!(*check, Some(false), "{id}: source/dest check still on");
    }
    let ec2 = emulator.ec2().await;
    let tables = ec2
        .describe_route_tables()
        .filters(tag_filter("fixedip:component", "private-route-table"))
        .send()
        .await
        .unwrap();
    let targets: BTreeSet<String> = tables
        .route_tables()
        .iter()
        .flat_map(|t| t.routes())
        .filter(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
        .map(|r| r.instance_id().unwrap_or("not an instance").to_owned())
        .collect();
    let ids: BTreeSet<String> = instances.iter().map(|i| i.0.clone()).collect();
    assert_eq!(targets, ids);
    let addresses = ec2
        .describe_addresses()
        .filters(tag_filter("fixedip:stack", "default"))
        .send()
        .await
        .unwrap();
    let on: BTreeSet<String> = addresses
        .addresses()
        .iter()
        .filter_map(|a| a.network_interface_id().map(str::to_owned))
        .collect();
    let enis: BTreeSet<String> = instances.iter().map(|i| i.1.clone()).collect();
    assert_eq!(on, enis, "each instance holds a stack address");
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_redeploy_verify_and_destroy_with_nat_instances() {
    let emulator = Emulator::start();
    let zip = zip("nat-instance");
    let manifest = fixtures_manifest().to_str().unwrap().to_owned();
    ok(
        &emulator,
        &on_fixtures(&manifest, &["deploy", "--zip", &zip]),
    );
    assert_routed_through_instances(&emulator).await;
    assert_eq!(emulator.live_nat_gateways().await, 0);
    let ips = stack_ips(&emulator).await;
    assert_eq!(ips.len(), 2);

    let mark = emulator.mark();
    ok(
        &emulator,
        &on_fixtures(&manifest, &["deploy", "--zip", &zip]),
    );
    let calls = emulator.requests_since(mark);
    let mutating: Vec<_> = calls.iter().filter(|c| c.is_mutating()).collect();
    assert!(mutating.is_empty(), "{mutating:#?}");
    eprintln!(
        "no-op redeploy with NAT instances: {} calls, {} mutating",
        count(&calls).0,
        count(&calls).1
    );

    let output = ok(
        &emulator,
        &on_fixtures(&manifest, &["verify", "-p", "nat-instance", "--json"]),
    );
    let verdict: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for function in verdict["stacks"][0]["functions"].as_array().unwrap() {
        assert_eq!(function["findings"], serde_json::json!([]), "{verdict:#}");
    }

    let mut destroy = on_fixtures(&manifest, &["destroy", "--yes", "--zip", zip.as_str()]);
    destroy.extend_from_slice(&FAST_POLLS);
    ok(&emulator, &destroy);
    assert!(live_instances(&emulator).await.is_empty());
    assert_eq!(stack_ips(&emulator).await, ips, "the IPs stay, retained");
    assert_eq!(emulator.security_groups("nat-security-group").await, 0);
    let vpcs = emulator
        .ec2()
        .await
        .describe_vpcs()
        .filters(tag_filter("fixedip:stack", "default"))
        .send()
        .await
        .unwrap();
    assert!(vpcs.vpcs().is_empty());

    // Deploying again puts the same IPs back on new instances.
    ok(
        &emulator,
        &on_fixtures(&manifest, &["deploy", "--zip", &zip]),
    );
    assert_eq!(stack_ips(&emulator).await, ips);
    assert_routed_through_instances(&emulator).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn switching_gateway_to_instance_and_back_keeps_the_elastic_ips() {
    let emulator = Emulator::start();
    // Two functions of the default stack in two AZs: the example (NAT gateways) and the fixture
    // with `nat = "instance"`; each deploy sets the stack's mode, the other function rides along.
    let gateways = example_zip().to_str().unwrap().to_owned();
    let instances = zip("nat-instance");
    let manifest = fixtures_manifest().to_str().unwrap().to_owned();
    ok(&emulator, &["deploy", "--zip", &gateways]);
    let ips = stack_ips(&emulator).await;
    assert_eq!(ips.len(), 2);
    assert_eq!(emulator.live_nat_gateways().await, 2);

    ok(
        &emulator,
        &on_fixtures(&manifest, &["deploy", "--zip", &instances]),
    );
    assert_eq!(stack_ips(&emulator).await, ips);
    assert_eq!(emulator.live_nat_gateways().await, 0);
    assert_routed_through_instances(&emulator).await;

    ok(&emulator, &["deploy", "--zip", &gateways]);
    assert_eq!(stack_ips(&emulator).await, ips);
    assert_eq!(emulator.live_nat_gateways().await, 2);
    assert!(live_instances(&emulator).await.is_empty());
    assert_calls_allowed_by_the_policy(&emulator);
}
