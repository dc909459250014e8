//! Issue 15: AWS as AWS really behaves, all at once (`Scenario::aws_like`: NAT gateways pending and
//! deleting, functions Pending and InProgress, roles Lambda cannot assume yet, fresh ids not found,
//! Elastic IPs refused right after their NAT gateway is deleted, client tokens answered with the
//! original resource, lingering Lambda interfaces, AWS's dependency rules) plus throttling. A first
//! deploy, a code change, every mode switch and a destroy must each succeed in ONE run, with nothing
//! leaked and no IP lost. And what AWS fails (a function `Failed`, a NAT gateway `failed`) is
//! reported with AWS's reason and replaced by the next deploy.
//!
//! `cargo nextest run -p fixedip-tests --no-capture aws_behaviour::` prints each run's figures
//! (calls, retries by class, wall); docs/reliability.md collects them.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{
    assert_allowed_by_iam_policy, assert_one_stack, path_arg, render, Inventory, Lab, STACK,
};
use fixedip_chaos::{
    CallMatcher, Fault, FaultRule, FunctionFailure, LogEntry, NatFailure, Outcome, Scenario,
    Trigger,
};
use fixedip_tests::{example_zip, fixture_zip, fixtures_manifest, write_lambda_zip};

/// Real durations times this: NAT gateways pending 6 s, fresh ids unknown 0.5 s, roles 0.8 s...
const SCALE: f64 = 0.1;

/// AWS's behaviour, and 5 % of every call throttled.
fn scenario() -> Scenario {
    Scenario {
        seed: 15,
        faults: vec![FaultRule {
            fault: Fault::Throttle,
            matches: CallMatcher::default(),
            when: Trigger::Rate(0.05),
        }],
        ..Scenario::aws_like(SCALE)
    }
}

/// A run's figures: calls, AWS's refusals by class (what the executor's policy retried), wall.
fn figures(what: &str, log: &[LogEntry], wall: Duration) {
    let mut refused: BTreeMap<String, usize> = BTreeMap::new();
    for entry in log {
        let class = match &entry.outcome {
            Outcome::Injected {
                fault: Fault::Throttle,
                ..
            } => "throttled".to_owned(),
            Outcome::Injected { fault, .. } => format!("{fault:?}"),
            Outcome::Refused { code, .. } if code.ends_with("NotFound") => {
                "not visible yet".to_owned()
            }
            Outcome::Refused { code, .. } if code.is_empty() => "token replayed".to_owned(),
            Outcome::Refused { code, .. } => code.clone(),
            _ => continue,
        };
        *refused.entry(class).or_default() += 1;
    }
    println!(
        "aws_like x{SCALE}: {what}: {} calls, {:.1} s, refused or faulted: {refused:?}",
        log.len(),
        wall.as_secs_f64()
    );
}

/// `cargo fixedip ARGS` must succeed at its first run.
async fn once(lab: &Lab, args: &[&str], what: &str) -> Output {
    lab.proxy.clear_log();
    let started = Instant::now();
    let output = lab.run_expect(args, 0, what).await;
    let log = lab.proxy.log();
    figures(what, &log, started.elapsed());
    assert_allowed_by_iam_policy(&log);
    output
}

fn example() -> Vec<&'static str> {
    vec!["deploy", "--quiet", "--zip", path_arg(example_zip())]
}

/// A fixture function of the default stack, deployed from the fixtures' workspace.
fn fixture(name: &str) -> Vec<&'static str> {
    vec![
        "deploy",
        "--manifest-path",
        path_arg(&fixtures_manifest()),
        "--quiet",
        "--zip",
        path_arg(&fixture_zip(name)),
    ]
}

/// The stack's Elastic IPs, active or retained (they keep the stack's tag).
fn stack_ips(inventory: &Inventory) -> BTreeSet<String> {
    inventory.stack_ips.values().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploy_code_change_mode_switches_and_destroy_each_converge_in_one_run() {
    let lab = Lab::start(scenario()).await;
    let function = "hello-egress";

    once(&lab, &example(), "first deploy, a NAT gateway per AZ").await;
    let ips = stack_ips(&assert_one_stack(&lab, 2, &[function], "first deploy").await);
    assert_eq!(ips.len(), 2);

    let changed = tempfile::tempdir().unwrap();
    let zip = changed.path().join("changed.zip");
    let bootstrap = std::fs::read(fixedip_tests::example_binary()).unwrap();
    write_lambda_zip(&zip, &bootstrap, &[("VERSION", b"2")]);
    once(
        &lab,
        &["deploy", "--quiet", "--zip", path_arg(&zip)],
        "code-change redeploy",
    )
    .await;
    assert_one_stack(&lab, 2, &[function], "code change").await;

    // gateway → instance → gateway, the other function riding along.
    once(&lab, &fixture("nat-instance"), "gateway → instance").await;
    let now = Inventory::take(&lab.emulator).await;
    assert!(stack_ips(&now).is_superset(&ips), "no IP lost: {now:?}");
    assert_eq!(
        lab.emulator.live_nat_gateways().await,
        0,
        "the gateways went"
    );
    once(&lab, &example(), "instance → gateway").await;
    let now = Inventory::take(&lab.emulator).await;
    assert!(stack_ips(&now).is_superset(&ips), "no IP lost: {now:?}");
    assert_eq!(lab.emulator.live_nat_gateways().await, 2);

    // nats 2 → 1 → 2.
    once(&lab, &fixture("egress-one-nat"), "nats 2 → 1").await;
    assert_eq!(lab.emulator.live_nat_gateways().await, 1);
    once(&lab, &example(), "nats 1 → 2").await;
    assert_eq!(lab.emulator.live_nat_gateways().await, 2);
    let now = Inventory::take(&lab.emulator).await;
    assert!(stack_ips(&now).is_superset(&ips), "no IP lost: {now:?}");

    once(
        &lab,
        &[
            "destroy",
            "--yes",
            "--quiet",
            // The fixtures' functions ride in the stack: taken out of the VPC with it.
            "--force-detach-others",
            "--zip",
            path_arg(example_zip()),
            "--poll-interval",
            "0.5",
        ],
        "destroy",
    )
    .await;
    let after = assert_destroy_left_no_network(&lab).await;
    assert!(
        stack_ips(&after).is_superset(&ips),
        "destroy keeps the IPs: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn isolated_and_endpoints_deploy_and_destroy_in_one_run() {
    let lab = Lab::start(scenario()).await;
    once(&lab, &fixture("egress-isolated"), "isolated deploy").await;
    assert_eq!(lab.emulator.live_nat_gateways().await, 0);
    once(&lab, &fixture("endpoints-four"), "deploy with endpoints").await;
    // A new endpoint is not found by id for a moment (EC2's eventual consistency, a chaos rule):
    // waited out, not taken for a failed one and replaced.
    let log = lab.proxy.log();
    let calls = |name: &str| log.iter().filter(|e| e.operation.name == name).count();
    assert!(
        log.iter().any(|e| e.operation.name == "DescribeVpcEndpoints"
            && matches!(&e.outcome, Outcome::Refused { code, .. } if code.ends_with("NotFound"))),
        "the rule was met"
    );
    assert_eq!(calls("DeleteVpcEndpoints"), 0, "no endpoint replaced");
    for stack in [STACK, "endpoints"] {
        once(
            &lab,
            &[
                "destroy",
                "--stack",
                stack,
                "--force-detach-others",
                "--yes",
                "--quiet",
                "--poll-interval",
                "0.5",
            ],
            "destroy",
        )
        .await;
    }
    assert_destroy_left_no_network(&lab).await;
}

/// AWS answers a repeated client token with what the first request made, for a day, even once
/// that is deleted (`Scenario::client_tokens`). A route table made again after a switch to
/// isolated and back (the public table goes, then comes back) must not get the deleted one: its
/// token carries the run's own word (`fixedip_core::tokens::route_table`). Found by the
/// acceptance suite: every route on the table came back "not found" until the deploy gave up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_route_table_made_again_after_isolated_and_back_is_a_new_one() {
    let lab = Lab::start(Scenario {
        client_tokens: true,
        ..Scenario::default()
    })
    .await;
    once(&lab, &example(), "a NAT gateway per AZ").await;
    let ips = stack_ips(&assert_one_stack(&lab, 2, &["hello-egress"], "first deploy").await);
    once(&lab, &fixture("egress-isolated"), "isolated").await;
    assert_eq!(lab.emulator.live_nat_gateways().await, 0);
    once(&lab, &example(), "a NAT gateway per AZ again").await;
    let now = Inventory::take(&lab.emulator).await;
    assert!(stack_ips(&now).is_superset(&ips), "no IP lost: {now:?}");
    assert_eq!(lab.emulator.live_nat_gateways().await, 2);
}

/// No VPC, subnet, NAT gateway, internet gateway or route table beyond the lab's baseline after a
/// destroy. The account as it is then.
async fn assert_destroy_left_no_network(lab: &Lab) -> Inventory {
    let after = Inventory::take(&lab.emulator).await;
    let added = after.added_since(&lab.baseline);
    for kind in [
        "vpc",
        "subnet",
        "NAT gateway",
        "internet gateway",
        "route table",
    ] {
        assert!(
            !added.contains_key(kind),
            "destroy leaked a {kind}: {added:?}\nlog:\n{}",
            render(&lab.proxy.log())
        );
    }
    after
}

/// Lambda developer guide, function states: "When function creation fails, Lambda sets the
/// function state to failed, and you must delete and recreate the function." A transient failure
/// (`InternalError`) is made good in the same run: the function is deleted and created again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_function_that_fails_its_creation_is_created_again_in_the_same_run() {
    let function = "hello-egress";
    let lab = Lab::start(Scenario {
        failures: fixedip_chaos::Failures {
            functions: vec![FunctionFailure::internal_error(function)],
            ..Default::default()
        },
        ..scenario()
    })
    .await;
    let deploy = ["deploy", "--zip", path_arg(example_zip())];
    let deployed = once(&lab, &deploy, "a deploy whose function fails its creation").await;
    let stderr = String::from_utf8_lossy(&deployed.stderr);
    assert!(
        stderr.contains("InternalError") && stderr.contains("deleting function hello-egress"),
        "Lambda's StateReasonCode reaches the user, and what the run does about it:\n{stderr}"
    );
    let log = lab.proxy.log();
    let calls = |name: &str| log.iter().filter(|e| e.operation.name == name).count();
    assert_eq!(
        calls("DeleteFunction"),
        1,
        "the failed function was deleted"
    );
    assert_one_stack(&lab, 2, &[function], "after the re-creation").await;
    let verify = lab.run(&["verify"]).await;
    assert!(
        verify.status.success(),
        "verify passes: the function is Active:\n{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

/// A function that fails its creation again after the run made it again (a subnet out of
/// addresses does not heal in seconds): the deploy says Lambda's reason, `verify` refuses the
/// function, and once the cause is gone the next deploy deletes and creates it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_function_that_fails_twice_is_reported_refused_by_verify_and_replaced_by_the_next_deploy()
{
    let function = "hello-egress";
    let lab = Lab::start(Scenario {
        failures: fixedip_chaos::Failures {
            functions: vec![FunctionFailure {
                times: 2,
                ..FunctionFailure::out_of_addresses(function)
            }],
            ..Default::default()
        },
        ..scenario()
    })
    .await;
    let failed = lab.run(&example()).await;
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "the deploy says it failed");
    assert!(
        stderr.contains("SubnetOutOfIPAddresses"),
        "Lambda's StateReasonCode reaches the user:\n{stderr}"
    );

    // The failed function stopped the deploy before it printed the stack's IPs: verify is given
    // the allowlist.
    let verify = lab.run(&["verify", "--ip", "192.0.2.10"]).await;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(!verify.status.success(), "verify fails:\n{said}");
    assert!(
        said.contains("function-not-active") && said.contains("SubnetOutOfIPAddresses"),
        "{said}"
    );

    once(&lab, &example(), "the deploy after a Failed function").await;
    let log = lab.proxy.log();
    assert!(
        log.iter().any(|e| e.operation.name == "DeleteFunction"),
        "the failed function was deleted and created again"
    );
    assert_one_stack(&lab, 2, &[function], "after the replacement").await;
    let verify = lab.run(&["verify"]).await;
    assert!(
        verify.status.success(),
        "verify passes once it is Active:\n{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

/// NatGateway data type: "If the NAT gateway could not be created, specifies the error code for
/// the failure" (`InternalError`: "Network interface eni-xxxxxxxx, created and used internally by
/// this NAT gateway is in an invalid state. Please try again."). One deploy converges: it says
/// why, and creates a new gateway on the same address with a client token of a new generation
/// (the old token would get the failed gateway back).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_nat_gateway_is_replaced_in_the_same_run_on_the_same_ip() {
    let lab = Lab::start(Scenario {
        failures: fixedip_chaos::Failures {
            nat_gateways: vec![NatFailure::internal_error(1)],
            ..Default::default()
        },
        ..scenario()
    })
    .await;
    let deploy = ["deploy", "--zip", path_arg(example_zip())];
    let deployed = once(&lab, &deploy, "a deploy whose first NAT gateway fails").await;
    let stderr = String::from_utf8_lossy(&deployed.stderr);
    assert!(
        stderr.contains("InternalError")
            && stderr.contains("invalid state")
            && stderr.contains("creating a new NAT gateway for slot"),
        "AWS's FailureCode and FailureMessage reach the user, and what the run does about it:\n{stderr}"
    );
    let log = lab.proxy.log();
    let answered = |name: &str| {
        log.iter()
            .filter(|e| e.operation.name == name)
            .filter(|e| matches!(e.outcome, Outcome::Answered { status: 200 }))
            .count()
    };
    assert_eq!(answered("CreateNatGateway"), 3, "two, and one replacement");
    assert_eq!(
        answered("AllocateAddress"),
        2,
        "the replacement takes the same IP"
    );
    let ips = stack_ips(&Inventory::take(&lab.emulator).await);
    assert_eq!(ips.len(), 2, "no IP lost or added: {ips:?}");
    let verify = lab.run(&["verify"]).await;
    assert!(
        verify.status.success(),
        "both AZs leave through their gateways:\n{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

/// VpcEndpoint data type: `State` can read `Failed`. Such an endpoint serves nothing (here the
/// isolated stack's only way to S3), and its client token gets it back: one deploy deletes it and
/// makes a new one with a token of the next generation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_vpc_endpoint_is_replaced_in_the_same_run() {
    let lab = Lab::start(Scenario {
        failures: fixedip_chaos::Failures {
            endpoints: vec![1],
            ..Default::default()
        },
        ..scenario()
    })
    .await;
    let manifest = fixtures_manifest();
    let zip = fixture_zip("isolated-endpoints");
    let deploy = [
        "deploy",
        "--manifest-path",
        path_arg(&manifest),
        "--zip",
        path_arg(&zip),
    ];
    let deployed = once(&lab, &deploy, "a deploy whose S3 endpoint fails").await;
    let stderr = String::from_utf8_lossy(&deployed.stderr);
    assert!(
        stderr.contains("is failed") && stderr.contains("making a new s3 endpoint"),
        "what AWS said, and what the run does about it:\n{stderr}"
    );
    let log = lab.proxy.log();
    let calls = |name: &str| log.iter().filter(|e| e.operation.name == name).count();
    assert_eq!(calls("DeleteVpcEndpoints"), 1, "the failed endpoint goes");
    let endpoints = lab
        .emulator
        .ec2()
        .await
        .describe_vpc_endpoints()
        .send()
        .await;
    let states: Vec<String> = endpoints
        .unwrap()
        .vpc_endpoints()
        .iter()
        .filter_map(|e| e.state().map(|s| s.as_str().to_ascii_lowercase()))
        .filter(|state| state != "deleted")
        .collect();
    assert_eq!(states, ["available"], "one S3 endpoint, a working one");
    let verify = lab
        .run(&[
            "verify",
            "--manifest-path",
            path_arg(&manifest),
            "-p",
            "isolated-endpoints",
        ])
        .await;
    assert!(
        verify.status.success(),
        "verify passes:\n{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// A slot whose replacement fails too: the run stops with AWS's words and what to do; the next
/// deploy replaces the gateway, on the same IP.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_nat_gateway_that_fails_twice_stops_the_deploy_with_aws_s_words() {
    let lab = Lab::start(Scenario {
        failures: fixedip_chaos::Failures {
            nat_gateways: vec![NatFailure::internal_error(1), NatFailure::internal_error(3)],
            ..Default::default()
        },
        ..scenario()
    })
    .await;
    let failed = lab.run(&example()).await;
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "the deploy says it failed");
    assert!(
        stderr.contains("InternalError")
            && stderr.contains("invalid state")
            && stderr.contains("run deploy again: it replaces the gateway"),
        "AWS's FailureCode and FailureMessage, and the way out:\n{stderr}"
    );
    once(&lab, &example(), "the deploy after a failed NAT gateway").await;
    let ips = stack_ips(&Inventory::take(&lab.emulator).await);
    assert_eq!(ips.len(), 2, "no IP lost or added: {ips:?}");
}
