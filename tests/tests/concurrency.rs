//! Issue 5, scenario 4: two runs of one stack at once. deploy and destroy hold the stack's lease
//! (`/fixedip/<stack>/lease` in SSM, cargo-fixedip/src/aws/lease.rs) while they change it; these
//! tests run the real CLI twice at the same time through the chaos proxy, with latency so that the
//! runs really overlap, and check the end state through the SDK straight from moto.
//!
//! `cargo nextest run -p fixedip-tests --no-capture concurrency::`

use crate::common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_ssm::types::ParameterType;
use cargo_fixedip::exit_code;
use common::{assert_allowed_by_iam_policy, assert_one_stack, path_arg, render, Lab};
use fixedip_chaos::{Latency, Outcome, Scenario, Timing};
use fixedip_tests::{example_zip, fixture_zip, fixtures_manifest, Emulator};

const LEASE: &str = "/fixedip/default/lease";
const FAST: [&str; 4] = ["--poll-interval", "0.2", "--eni-timeout", "30"];

/// `deploy` of the example (hello-egress, the default stack, azs = 2).
fn deploy_example() -> Vec<&'static str> {
    let mut args = vec!["deploy", "--zip", path_arg(example_zip())];
    args.extend(FAST);
    args
}

/// `deploy` of the fixture `second-function`: another function of the same stack and AZ count.
fn deploy_second_function() -> Vec<&'static str> {
    let mut args = vec![
        "deploy",
        "--manifest-path",
        path_arg(&fixtures_manifest()),
        "--zip",
        path_arg(&fixture_zip("second-function")),
    ];
    args.extend(FAST);
    args
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The lease parameter's value, straight from moto; `None` when there is none.
async fn lease_value(emulator: &Emulator) -> Option<String> {
    match emulator
        .ssm()
        .await
        .get_parameter()
        .name(LEASE)
        .send()
        .await
    {
        Ok(answer) => answer.parameter.and_then(|p| p.value),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_parameter_not_found()) =>
        {
            None
        }
        Err(error) => panic!("GetParameter {LEASE}: {error:?}"),
    }
}

/// Puts a lease as another run (on another machine) would have written it.
async fn plant_lease(emulator: &Emulator, expires: u64) -> String {
    let value = format!(
        r#"{{"holder":"ci-runner-7:4242:deadbeef","command":"deploy","started":{},"expires":{expires}}}"#,
        expires.saturating_sub(600)
    );
    emulator
        .ssm()
        .await
        .put_parameter()
        .name(LEASE)
        .value(&value)
        .r#type(ParameterType::String)
        .send()
        .await
        .expect("PutParameter of the planted lease");
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_deploys_of_one_stack_started_together_make_one_stack() {
    // 100 ms per call and NAT gateways pending 3 s: a deploy takes seconds, so the two overlap.
    let lab = Lab::start(Scenario {
        latency: Some(Latency::Fixed { ms: 100 }),
        timing: Timing {
            nat_pending_ms: 3_000,
            ..Timing::default()
        },
        ..Scenario::default()
    })
    .await;
    // Both zips built before either run starts, so that neither waits for a build.
    let (first_args, second_args) = (deploy_example(), deploy_second_function());
    let first = lab
        .command(&first_args)
        .spawn()
        .expect("first deploy starts");
    let second = lab
        .command(&second_args)
        .spawn()
        .expect("second deploy starts");
    let (first, second) = tokio::join!(
        tokio::task::spawn_blocking(move || first.wait_with_output().unwrap()),
        tokio::task::spawn_blocking(move || second.wait_with_output().unwrap()),
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    let log = lab.proxy.log();
    for (name, output) in [("hello-egress", &first), ("second-function", &second)] {
        assert!(
            output.status.success(),
            "deploy of {name} failed:\n{}\nlog:\n{}",
            String::from_utf8_lossy(&output.stderr),
            render(&log)
        );
    }

    // Exactly one stack, both functions attached to its private subnets.
    assert_one_stack(
        &lab,
        2,
        &["hello-egress", "second-function"],
        "two deploys at once",
    )
    .await;

    // One of them found the lease taken and waited for it.
    let refused_puts = log
        .iter()
        .filter(|e| e.operation.name == "PutParameter")
        .filter(|e| matches!(e.outcome, Outcome::Answered { status: 400 }))
        .count();
    let waited: Vec<&str> = [("hello-egress", &first), ("second-function", &second)]
        .into_iter()
        .filter(|(_, o)| String::from_utf8_lossy(&o.stderr).contains("another run holds its lease"))
        .map(|(name, _)| name)
        .collect();
    assert!(
        refused_puts >= 1,
        "a PutParameter was refused\nlog:\n{}",
        render(&log)
    );
    assert_eq!(waited.len(), 1, "exactly one run waited: {waited:?}");
    // Both released the lease.
    assert_eq!(
        lease_value(&lab.emulator).await,
        None,
        "the lease was released"
    );
    assert_allowed_by_iam_policy(&log);
    println!(
        "two deploys at once: both succeeded, {} waited ({refused_puts} lease attempts refused), {} calls",
        waited[0],
        log.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_held_lease_is_refused_clearly_and_nothing_changes() {
    let lab = Lab::start(Scenario::default()).await;
    let planted = plant_lease(&lab.emulator, unix_now() + 600).await;

    let mut args = deploy_example();
    args.extend(["--lock-timeout", "1"]);
    let output = lab
        .run_expect(
            &args,
            exit_code::LEASE_HELD,
            "deploy while another run holds the lease",
        )
        .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needed in [
        "ci-runner-7:4242:deadbeef",
        "expires",
        "cargo fixedip unlock --stack default",
        "nothing was changed",
    ] {
        assert!(
            stderr.contains(needed),
            "the error says {needed:?}:\n{stderr}"
        );
    }
    // Nothing changed: no resource, the other run's lease untouched, and the only mutating calls
    // were the refused attempts to take the lease.
    assert_eq!(
        common::Inventory::take(&lab.emulator)
            .await
            .added_since(&lab.baseline),
        Default::default()
    );
    assert_eq!(lease_value(&lab.emulator).await, Some(planted.clone()));
    let log = lab.proxy.log();
    let other_mutations: Vec<_> = log
        .iter()
        .filter(|e| e.operation.mutating && e.operation.name != "PutParameter")
        .map(|e| e.operation.name.clone())
        .collect();
    assert!(
        other_mutations.is_empty(),
        "no change was made: {other_mutations:?}"
    );
    assert!(log
        .iter()
        .filter(|e| e.operation.name == "PutParameter")
        .all(|e| matches!(e.outcome, Outcome::Answered { status: 400 })));

    // destroy waits for the same lease.
    let output = lab
        .run_expect(
            &[
                "destroy",
                "--yes",
                "--stack",
                "default",
                "--lock-timeout",
                "0",
            ],
            0,
            "destroy of a stack with nothing to remove takes no lease",
        )
        .await;
    assert!(output.status.success());

    // unlock says whose lease it removes, and removes it.
    let output = lab
        .run_expect(&["unlock", "--stack", "default"], 0, "unlock")
        .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("ci-runner-7:4242:deadbeef"), "{stdout}");
    assert_eq!(lease_value(&lab.emulator).await, None);

    // Then deploy goes through, and leaves no lease behind.
    lab.run_expect(&deploy_example(), 0, "deploy after unlock")
        .await;
    assert_one_stack(&lab, 2, &["hello-egress"], "deploy after unlock").await;
    assert_eq!(lease_value(&lab.emulator).await, None);
    assert_allowed_by_iam_policy(&lab.proxy.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_lease_is_taken_over() {
    let lab = Lab::start(Scenario::default()).await;
    // A run killed eleven minutes ago: its lease expired a minute ago.
    plant_lease(&lab.emulator, unix_now() - 60).await;

    let mut args = deploy_example();
    args.extend(["--lock-timeout", "0"]);
    let started = std::time::Instant::now();
    let output = lab
        .run_expect(&args, 0, "deploy with an expired lease in the way")
        .await;
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("another run holds its lease"),
        "an expired lease is not waited for"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_one_stack(&lab, 2, &["hello-egress"], "deploy after a takeover").await;
    assert_eq!(
        lease_value(&lab.emulator).await,
        None,
        "released at the end"
    );
    let log = lab.proxy.log();
    assert!(
        log.iter().any(|e| e.operation.name == "DeleteParameter"),
        "the expired lease was deleted\nlog:\n{}",
        render(&log)
    );
    assert_allowed_by_iam_policy(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_destroy_started_with_a_deploy_waits_for_it() {
    let lab = Lab::start(Scenario {
        latency: Some(Latency::Fixed { ms: 50 }),
        ..Scenario::default()
    })
    .await;
    lab.run_expect(&deploy_example(), 0, "first deploy").await;
    // A second deploy (a second function) and a destroy of the stack, at once: whichever takes
    // the lease first goes first, the other plans again from what it left.
    let mut destroy_args = vec![
        "destroy",
        "--yes",
        "--stack",
        "default",
        "--force-detach-others",
    ];
    destroy_args.extend(FAST);
    let deploy = lab
        .command(&deploy_second_function())
        .spawn()
        .expect("deploy starts");
    let destroy = lab.command(&destroy_args).spawn().expect("destroy starts");
    let (deploy, destroy) = tokio::join!(
        tokio::task::spawn_blocking(move || deploy.wait_with_output().unwrap()),
        tokio::task::spawn_blocking(move || destroy.wait_with_output().unwrap()),
    );
    let (deploy, destroy) = (deploy.unwrap(), destroy.unwrap());
    let log = lab.proxy.log();
    assert!(
        deploy.status.success(),
        "deploy: {}\nlog:\n{}",
        String::from_utf8_lossy(&deploy.stderr),
        render(&log)
    );
    assert!(
        destroy.status.success(),
        "destroy: {}\nlog:\n{}",
        String::from_utf8_lossy(&destroy.stderr),
        render(&log)
    );
    // Destroy first: the deploy builds the stack again from nothing (its kept IPs back at work).
    // Deploy first: the destroy plans again from the two-function stack and removes all of it.
    // Either way one consistent state, never a half-built or half-removed stack.
    let inventory = common::Inventory::take(&lab.emulator).await;
    let added = inventory.added_since(&lab.baseline);
    let one_stack = common::one_stack(2, 2, 0);
    let gone = common::destroyed(2, 2);
    assert!(
        added == one_stack || added == gone,
        "one stack or none, nothing half-built: {added:?}\ndestroy: {}\nlog:\n{}",
        String::from_utf8_lossy(&destroy.stderr),
        render(&log)
    );
    assert_eq!(lease_value(&lab.emulator).await, None);
    assert_allowed_by_iam_policy(&log);
    println!(
        "deploy and destroy at once: destroy exited {:?}, end state {}",
        destroy.status.code(),
        if added == one_stack {
            "one stack"
        } else {
            "destroyed"
        }
    );
}
