//! Issue 5's suite, the destroy half (scenarios 1, 3 and 5 for `cargo fixedip destroy`), and the
//! timing figures of docs/reliability.md and docs/benchmarks.md. As in reliability.rs, the built
//! `cargo-fixedip` runs as a subprocess through the chaos proxy, and the end state is read through
//! the SDK straight from moto.
//!
//! `cargo nextest run -p fixedip-tests --no-capture reliability_destroy::` prints the figures.
//! `FIXEDIP_TIMING_SCALE=1` runs the timing scenario with AWS's real durations (NAT 60 s, ENIs
//! 90 s: about four minutes); the default is 0.1.

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use common::{
    assert_allowed_by_iam_policy, assert_one_stack, destroyed, faults_injected, function_subnets,
    in_parallel, mutating_forwarded, parallel_labs, path_arg, render, Inventory, Lab,
};
use fixedip_chaos::{
    CallMatcher, Fault, FaultRule, Latency, LogEntry, LogQueries, Outcome, Scenario, Trigger,
};
use fixedip_tests::example_zip;

const FUNCTION: &str = "hello-egress";

fn deploy_args() -> Vec<&'static str> {
    vec!["deploy", "--quiet", "--zip", path_arg(example_zip())]
}

/// destroy of the example's stack, by its zip (the function is the package's own: taken out of
/// the VPC, not deleted), polling fast.
fn destroy_args(poll_s: &'static str) -> Vec<&'static str> {
    vec![
        "destroy",
        "--yes",
        "--quiet",
        "--zip",
        path_arg(example_zip()),
        "--poll-interval",
        poll_s,
    ]
}

/// Resources that are not the stack's: another stack's VPC and an untagged Elastic IP. Destroy
/// must leave them alone.
async fn put_foreign_resources(lab: &mut Lab) {
    let ec2 = lab.emulator.ec2().await;
    let tagged = |kind: ResourceType, stack: &str| {
        TagSpecification::builder()
            .resource_type(kind)
            .tags(Tag::builder().key("fixedip:stack").value(stack).build())
            .build()
    };
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.9.0.0/16")
        .tag_specifications(tagged(ResourceType::Vpc, "other"))
        .send()
        .await
        .unwrap();
    ec2.create_subnet()
        .vpc_id(vpc.vpc().unwrap().vpc_id().unwrap())
        .cidr_block("10.9.1.0/24")
        .tag_specifications(tagged(ResourceType::Subnet, "other"))
        .send()
        .await
        .unwrap();
    ec2.allocate_address()
        .domain("vpc".into())
        .send()
        .await
        .unwrap();
    lab.rebase().await;
}

/// Nothing of the stack is left but its kept Elastic IPs (the same ones, same addresses) and the
/// function, out of the VPC; everything foreign is still there.
async fn assert_destroyed(lab: &Lab, ips_before: &BTreeMap<String, String>, what: &str) {
    let now = Inventory::take(&lab.emulator).await;
    assert_eq!(
        now.added_since(&lab.baseline),
        destroyed(ips_before.len(), 1),
        "{what}: nothing but the kept IPs and the function is left\nlog:\n{}",
        render(&lab.proxy.log())
    );
    assert_eq!(
        &now.stack_ips, ips_before,
        "{what}: the stack's IPs are kept"
    );
    let foreign_gone: Vec<&String> = lab.baseline.ids.difference(&now.ids).collect();
    assert!(
        foreign_gone.is_empty(),
        "{what}: foreign resources were removed: {foreign_gone:?}"
    );
    assert!(
        function_subnets(&lab.emulator, FUNCTION).await.is_empty(),
        "{what}: the function left the VPC"
    );
}

/// A lab with the example deployed (no faults), and foreign resources around it.
async fn deployed_lab(scenario: Scenario) -> (Lab, BTreeMap<String, String>) {
    let mut lab = Lab::start(Scenario::default()).await;
    put_foreign_resources(&mut lab).await;
    lab.run_expect(&deploy_args(), 0, "deploy").await;
    let ips = assert_one_stack(&lab, 2, &[FUNCTION], "deploy")
        .await
        .stack_ips;
    lab.proxy.clear_log();
    lab.proxy.set_scenario(scenario);
    (lab, ips)
}

// ---------------------------------------------------------------------------------------------
// 1. Crash anywhere in a destroy.

struct CrashPoint {
    calls: usize,
}

async fn destroy_crashed_after(k: u64) -> CrashPoint {
    let (lab, ips) = deployed_lab(Scenario {
        pause_after_mutating: Some(k),
        ..Scenario::default()
    })
    .await;
    let mut destroy = lab
        .command(&destroy_args("0.2"))
        .spawn()
        .expect("destroy starts");
    let paused = lab.proxy.wait_paused(Duration::from_secs(120)).await;
    // Killed right after the k-th mutating call took effect.
    destroy.kill().expect("kill destroy");
    let _ = tokio::task::spawn_blocking(move || destroy.wait()).await;
    assert!(
        paused,
        "crash point {k}: the destroy never made {k} mutating calls\nlog:\n{}",
        render(&lab.proxy.log())
    );
    // Calls in flight at the pause point end on their own: wait for them.
    let settle = Instant::now() + Duration::from_secs(30);
    while mutating_forwarded(&lab.proxy.log()) < k as usize && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        mutating_forwarded(&lab.proxy.log()),
        k as usize,
        "crash point {k}"
    );

    lab.proxy.set_scenario(Scenario::default());
    lab.run_expect(
        &destroy_args("0.2"),
        0,
        &format!("crash point {k}, destroy again"),
    )
    .await;
    let what = format!("destroy crashed after mutating call {k}");
    assert_destroyed(&lab, &ips, &what).await;
    let log = lab.proxy.log();
    assert_allowed_by_iam_policy(&log);
    CrashPoint { calls: log.len() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_anywhere_in_a_destroy_then_destroy_again_leaves_only_the_kept_ips() {
    let started = Instant::now();
    // N: the mutating calls of an undisturbed destroy of the deployed example.
    let (reference, ips) = deployed_lab(Scenario::default()).await;
    reference
        .run_expect(&destroy_args("0.2"), 0, "reference destroy")
        .await;
    assert_destroyed(&reference, &ips, "reference destroy").await;
    let n = reference.proxy.log().mutating_applied() as u64;
    assert!(n > 10, "a destroy in two AZs makes {n} mutating calls");
    drop(reference);

    let points = in_parallel(n, parallel_labs(), destroy_crashed_after).await;
    println!(
        "crash anywhere in destroy: {n} crash points survived, {} calls, 0 leaked, 0 IPs lost, \
         foreign resources untouched, {:.1} s",
        points.iter().map(|p| p.calls).sum::<usize>(),
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Throttling and 5xx.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn destroy_succeeds_under_throttling_and_5xx() {
    let faults = Scenario {
        seed: 11,
        faults: vec![
            FaultRule {
                fault: Fault::Throttle,
                matches: CallMatcher::default(),
                when: Trigger::Rate(0.20),
            },
            FaultRule {
                fault: Fault::InternalError,
                matches: CallMatcher::default(),
                when: Trigger::Rate(0.05),
            },
        ],
        ..Scenario::default()
    };
    let (lab, ips) = deployed_lab(faults).await;
    lab.run_expect(&destroy_args("0.2"), 0, "destroy under throttling")
        .await;
    assert_destroyed(&lab, &ips, "destroy under throttling").await;
    let mutating = lab.proxy.log().mutating_applied();
    // Run again: nothing is left to remove, and nothing is changed.
    lab.run_expect(&destroy_args("0.2"), 0, "destroy again under throttling")
        .await;
    let log = lab.proxy.log();
    assert_eq!(
        log.mutating_applied(),
        mutating,
        "the second destroy changed nothing"
    );
    assert_destroyed(&lab, &ips, "destroy again under throttling").await;
    assert_allowed_by_iam_policy(&log);
    let injected = faults_injected(&log);
    println!(
        "destroy under throttling and 5xx: {} calls, {injected} faults injected, 2 runs succeeded",
        log.len()
    );
    assert!(injected > 3, "the scenario did inject faults");
}

// ---------------------------------------------------------------------------------------------
// 5. Real timing, and the figures.

fn timing_scale() -> f64 {
    std::env::var("FIXEDIP_TIMING_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.1)
}

/// From the first CreateNatGateway's answer to the last DescribeNatGateways.
fn nat_wait(log: &[LogEntry]) -> Duration {
    let Some(first_create) = log
        .iter()
        .filter(|e| e.operation.name == "CreateNatGateway")
        .map(|e| e.end)
        .min()
    else {
        return Duration::ZERO;
    };
    let last_poll = log
        .iter()
        .filter(|e| e.operation.name == "DescribeNatGateways" && e.start >= first_create)
        .map(|e| e.end)
        .max()
        .unwrap_or(first_create);
    last_poll - first_create
}

/// What AWS's timing errors look like; none may reach the user.
const TIMING_ERRORS: &[&str] = &[
    "DependencyViolation",
    "cannot be assumed",
    "ResourceConflict",
    "AuthFailure",
];

fn assert_no_timing_error(stderr: &[u8], what: &str) {
    let stderr = String::from_utf8_lossy(stderr);
    for error in TIMING_ERRORS {
        assert!(
            !stderr.contains(error),
            "{what}: {error} reached the user:\n{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploy_and_destroy_with_aws_timing_and_lingering_enis() {
    let scale = timing_scale();
    // AWS's timing (NAT pending and deleting 60 s, Lambda pending 10 s, role 8 s, ENIs linger
    // 90 s, all times `scale`), its dependency rules, and 100 ms on every call.
    let scenario = Scenario {
        latency: Some(Latency::Fixed { ms: 100 }),
        ..Scenario::aws_like(scale)
    };
    let linger = Duration::from_millis(scenario.hyperplane_enis.as_ref().unwrap().linger_ms);
    let lab = Lab::start(scenario).await;
    // Polls at 2 s times the scale (doubling up to 6×): "a few polling intervals" below.
    let poll = (2.0 * scale * 10.0).clamp(0.2, 2.0);
    let poll_arg: &'static str = Box::leak(format!("{poll}").into_boxed_str());

    // The example is built before the clock starts: the figures are the CLI's.
    let deploy = deploy_args();
    let started = Instant::now();
    let output = lab.run_expect(&deploy, 0, "deploy with AWS timing").await;
    let deploy_wall = started.elapsed();
    assert_no_timing_error(&output.stderr, "deploy");
    let ips = assert_one_stack(&lab, 2, &[FUNCTION], "deploy with AWS timing")
        .await
        .stack_ips;
    let deploy_log = lab.proxy.log();
    lab.proxy.clear_log();

    let started = Instant::now();
    lab.run_expect(&deploy, 0, "no-op redeploy with AWS timing")
        .await;
    let noop_wall = started.elapsed();
    let noop_log = lab.proxy.log();
    assert_eq!(
        noop_log.mutating_applied(),
        0,
        "the no-op redeploy changed nothing"
    );
    lab.proxy.clear_log();

    let started = Instant::now();
    let output = lab
        .run_expect(&destroy_args(poll_arg), 0, "destroy with lingering ENIs")
        .await;
    let destroy_wall = started.elapsed();
    assert_no_timing_error(&output.stderr, "destroy");
    assert_destroyed(&lab, &ips, "destroy with lingering ENIs").await;
    let destroy_log = lab.proxy.log();
    // The ENIs did block: some DeleteSubnet or DeleteSecurityGroup was refused and retried.
    let refused = destroy_log
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::Refused { .. }))
        .count();
    let max_poll = Duration::from_secs_f64(poll * 6.0);
    let bound = linger + max_poll * 3 + Duration::from_secs(5);
    assert!(
        destroy_wall <= bound,
        "destroy took {:.1} s; the ENIs linger {:.1} s, polls are at most {:.1} s apart: at most {:.1} s",
        destroy_wall.as_secs_f64(),
        linger.as_secs_f64(),
        max_poll.as_secs_f64(),
        bound.as_secs_f64()
    );
    for log in [&deploy_log, &noop_log, &destroy_log] {
        assert_allowed_by_iam_policy(log);
    }

    let (fresh, noop, gone) = (
        deploy_log.summary(),
        noop_log.summary(),
        destroy_log.summary(),
    );
    let nat = nat_wait(&deploy_log);
    println!(
        "AWS timing × {scale}, 100 ms per call, ENIs linger {:.0} s:",
        linger.as_secs_f64()
    );
    println!("| run | calls | mutating | process wall | calls' wall | NAT wait | critical path | sequential sum | max in flight |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| fresh deploy | {} | {} | {:.1} s | {:.1} s | {:.1} s | {:.0} round trips | {:.1} s | {} |",
        fresh.calls,
        fresh.mutating_calls,
        deploy_wall.as_secs_f64(),
        fresh.wall.as_secs_f64(),
        nat.as_secs_f64(),
        fresh.wall.saturating_sub(nat).as_secs_f64() / 0.1,
        fresh.sequential.as_secs_f64(),
        fresh.max_in_flight
    );
    println!(
        "| no-op redeploy | {} | {} | {:.1} s | {:.1} s | – | {:.0} round trips | {:.1} s | {} |",
        noop.calls,
        noop.mutating_calls,
        noop_wall.as_secs_f64(),
        noop.wall.as_secs_f64(),
        noop.wall.as_secs_f64() / 0.1,
        noop.sequential.as_secs_f64(),
        noop.max_in_flight
    );
    println!(
        "| destroy | {} | {} | {:.1} s | {:.1} s | – | – | {:.1} s | {} |",
        gone.calls,
        gone.mutating_calls,
        destroy_wall.as_secs_f64(),
        gone.wall.as_secs_f64(),
        gone.sequential.as_secs_f64(),
        gone.max_in_flight
    );
    println!(
        "destroy: {:.1} s with ENIs lingering {:.1} s (bound {:.1} s), {refused} calls refused by the dependency rules and retried",
        destroy_wall.as_secs_f64(),
        linger.as_secs_f64(),
        bound.as_secs_f64()
    );
}
