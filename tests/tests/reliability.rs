//! Issue 5's reliability suite: the `cargo-fixedip` binary, run as a subprocess, talks to moto through
//! the chaos proxy (`tests/chaos`), which kills, throttles, fails, loses answers and makes time real.
//! Every scenario checks the END STATE through the SDK, straight against moto (never through the
//! proxy, never from the tool's own output), and checks that every call the tool made is allowed by
//! `cargo fixedip iam-policy`.
//!
//! `cargo nextest run -p fixedip-tests --no-capture reliability::` prints each scenario's figures;
//! docs/reliability.md collects them.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::Filter;
use common::{
    assert_allowed_by_iam_policy, faults_injected, has_stack_tag, in_parallel, parallel_labs,
    render, ROLE, STACK,
};
use fixedip_chaos::{
    CallMatcher, ChaosProxy, Fault, FaultRule, Latency, LogEntry, LogQueries, Outcome, Scenario,
    Timing, Trigger,
};
use fixedip_tests::{example_dir, example_zip, Emulator};

/// The example's stack, role and function (examples/hello-egress).
const FUNCTION: &str = "hello-egress";

// ---------------------------------------------------------------------------------------------
// A lab: one moto and one proxy in front of it.

struct Lab {
    emulator: Emulator,
    proxy: ChaosProxy,
    /// What moto holds before the tool runs (its default VPC and the like), to count leaks against.
    baseline: Inventory,
}

impl Lab {
    async fn start(scenario: Scenario) -> Lab {
        let emulator = tokio::task::spawn_blocking(Emulator::start).await.unwrap();
        let proxy = ChaosProxy::start(&emulator.endpoint(), scenario)
            .await
            .expect("the chaos proxy starts");
        let baseline = Inventory::take(&emulator).await;
        Lab {
            emulator,
            proxy,
            baseline,
        }
    }

    /// `cargo fixedip ARGS` pointed at the proxy.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.emulator.cargo_fixedip();
        command
            .args(args)
            .current_dir(example_dir())
            .env("AWS_ENDPOINT_URL", self.proxy.url())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    async fn run(&self, args: &[&str]) -> Output {
        let mut command = self.command(args);
        tokio::task::spawn_blocking(move || command.output().expect("cargo-fixedip runs"))
            .await
            .unwrap()
    }

    async fn deploy(&self) -> Output {
        self.run(&deploy_args()).await
    }

    async fn deploy_ok(&self, what: &str) {
        let output = self.deploy().await;
        assert!(
            output.status.success(),
            "{what}: deploy failed:\n{}\nlog:\n{}",
            String::from_utf8_lossy(&output.stderr),
            render(&self.proxy.log())
        );
    }
}

fn deploy_args() -> Vec<&'static str> {
    static ZIP: OnceLock<String> = OnceLock::new();
    let zip = ZIP.get_or_init(|| example_zip().to_str().unwrap().to_owned());
    vec!["deploy", "--quiet", "--zip", zip.as_str()]
}

// ---------------------------------------------------------------------------------------------
// The end state, read through the SDK straight from moto.

/// Counts of everything in the account, and the stack's Elastic IPs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Inventory {
    vpcs: usize,
    internet_gateways: usize,
    subnets: usize,
    /// NAT gateways not `deleted` (moto keeps deleted ones).
    nat_gateways: usize,
    addresses: usize,
    route_tables: usize,
    security_groups: usize,
    roles: usize,
    functions: usize,
    /// The stack's tagged Elastic IPs (allocation id → address).
    stack_ips: BTreeMap<String, String>,
    /// The same counts restricted to what carries `fixedip:stack=default`.
    tagged: [usize; 7],
}

impl Inventory {
    async fn take(emulator: &Emulator) -> Inventory {
        let ec2 = emulator.ec2().await;
        let vpcs = ec2.describe_vpcs().send().await.unwrap().vpcs;
        let igws = ec2
            .describe_internet_gateways()
            .send()
            .await
            .unwrap()
            .internet_gateways;
        let subnets = ec2.describe_subnets().send().await.unwrap().subnets;
        let nats: Vec<_> = ec2
            .describe_nat_gateways()
            .send()
            .await
            .unwrap()
            .nat_gateways
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n.state().is_none_or(|s| s.as_str() != "deleted"))
            .collect();
        let addresses = ec2.describe_addresses().send().await.unwrap().addresses;
        let tables = ec2
            .describe_route_tables()
            .send()
            .await
            .unwrap()
            .route_tables;
        let groups = ec2
            .describe_security_groups()
            .send()
            .await
            .unwrap()
            .security_groups;
        let roles = emulator
            .iam()
            .await
            .list_roles()
            .send()
            .await
            .unwrap()
            .roles
            .len();
        let functions = emulator
            .lambda()
            .await
            .list_functions()
            .send()
            .await
            .unwrap()
            .functions
            .unwrap_or_default()
            .len();
        let (vpcs, igws, subnets, addresses, tables, groups) = (
            vpcs.unwrap_or_default(),
            igws.unwrap_or_default(),
            subnets.unwrap_or_default(),
            addresses.unwrap_or_default(),
            tables.unwrap_or_default(),
            groups.unwrap_or_default(),
        );
        let stack_ips = addresses
            .iter()
            .filter(|a| has_stack_tag(a.tags()))
            .map(|a| {
                (
                    a.allocation_id().unwrap().to_owned(),
                    a.public_ip().unwrap().to_owned(),
                )
            })
            .collect();
        let tagged = [
            vpcs.iter().filter(|v| has_stack_tag(v.tags())).count(),
            igws.iter().filter(|g| has_stack_tag(g.tags())).count(),
            subnets.iter().filter(|s| has_stack_tag(s.tags())).count(),
            nats.iter().filter(|n| has_stack_tag(n.tags())).count(),
            addresses.iter().filter(|a| has_stack_tag(a.tags())).count(),
            tables.iter().filter(|t| has_stack_tag(t.tags())).count(),
            groups.iter().filter(|g| has_stack_tag(g.tags())).count(),
        ];
        Inventory {
            vpcs: vpcs.len(),
            internet_gateways: igws.len(),
            subnets: subnets.len(),
            nat_gateways: nats.len(),
            addresses: addresses.len(),
            route_tables: tables.len(),
            security_groups: groups.len(),
            roles,
            functions,
            stack_ips,
            tagged,
        }
    }

    /// What the account holds beyond the baseline, as (what, count) pairs.
    fn added_since(&self, baseline: &Inventory) -> BTreeMap<&'static str, usize> {
        [
            ("vpc", self.vpcs - baseline.vpcs),
            (
                "internet gateway",
                self.internet_gateways - baseline.internet_gateways,
            ),
            ("subnet", self.subnets - baseline.subnets),
            ("NAT gateway", self.nat_gateways - baseline.nat_gateways),
            ("Elastic IP", self.addresses - baseline.addresses),
            ("route table", self.route_tables - baseline.route_tables),
            (
                "security group",
                self.security_groups - baseline.security_groups,
            ),
            ("role", self.roles - baseline.roles),
            ("function", self.functions - baseline.functions),
        ]
        .into_iter()
        .collect()
    }
}

/// Exactly one stack in two AZs, and nothing else added to the account: one VPC (with its main route
/// table and default security group, which AWS makes with it), IGW, 4 subnets, 2 NATs, 2 EIPs, 3
/// route tables of the stack, 1 security group of the stack, the role, the function.
const ONE_STACK: [(&str, usize); 9] = [
    ("Elastic IP", 2),
    ("NAT gateway", 2),
    ("function", 1),
    ("internet gateway", 1),
    ("role", 1),
    ("route table", 3 + 1),
    ("security group", 1 + 1),
    ("subnet", 4),
    ("vpc", 1),
];
const ONE_STACK_TAGGED: [usize; 7] = [1, 1, 4, 2, 2, 3, 1];

/// Asserts exactly one set of resources, and returns how many resources beyond it were found
/// (always 0 when it returns).
async fn assert_exactly_one_stack(lab: &Lab, what: &str) -> Inventory {
    let now = Inventory::take(&lab.emulator).await;
    let added = now.added_since(&lab.baseline);
    let expected: BTreeMap<&str, usize> = ONE_STACK.into_iter().collect();
    assert_eq!(
        added,
        expected,
        "{what}: the account holds exactly one stack and nothing leaked\nlog:\n{}",
        render(&lab.proxy.log())
    );
    assert_eq!(now.tagged, ONE_STACK_TAGGED, "{what}: tagged resources");
    // The function is attached to the stack's private subnets.
    let function = lab
        .emulator
        .lambda()
        .await
        .get_function_configuration()
        .function_name(FUNCTION)
        .send()
        .await
        .unwrap();
    assert_eq!(
        function.vpc_config().map(|v| v.subnet_ids().len()),
        Some(2),
        "{what}: the function is in two subnets"
    );
    lab.emulator
        .iam()
        .await
        .get_role()
        .role_name(ROLE)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: the stack's role exists: {e:?}"));
    now
}

/// The NAT gateways' addresses must be the stack's IPs: the allowlisted ones carry the traffic.
async fn nat_ips(emulator: &Emulator) -> BTreeSet<String> {
    let ec2 = emulator.ec2().await;
    ec2.describe_nat_gateways()
        .filter(
            Filter::builder()
                .name("state")
                .values("available")
                .values("pending")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .nat_gateways()
        .iter()
        .filter(|n| has_stack_tag(n.tags()))
        .flat_map(|n| n.nat_gateway_addresses().iter())
        .filter_map(|a| a.public_ip().map(str::to_owned))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The IAM policy check: every call the tool made is allowed by `cargo fixedip iam-policy`.

// ---------------------------------------------------------------------------------------------
// Figures printed for docs/reliability.md.

// ---------------------------------------------------------------------------------------------
// 1. Crash anywhere.

/// What one crash point ended with.
struct CrashPoint {
    k: u64,
    ips_before_rerun: BTreeMap<String, String>,
    calls: usize,
}

async fn crash_after(k: u64) -> CrashPoint {
    let lab = Lab::start(Scenario {
        pause_after_mutating: Some(k),
        ..Scenario::default()
    })
    .await;
    let mut deploy = lab.command(&deploy_args()).spawn().expect("deploy starts");
    let paused = lab.proxy.wait_paused(Duration::from_secs(120)).await;
    // Killed right after the k-th mutating call took effect, as a CI runner or a ^C would.
    deploy.kill().expect("kill deploy");
    let _ = tokio::task::spawn_blocking(move || deploy.wait()).await;
    assert!(
        paused,
        "crash point {k}: the deploy never made {k} mutating calls\nlog:\n{}",
        render(&lab.proxy.log())
    );
    // Exactly k mutating calls reached moto (an answer with an AWS error counts: it reached moto).
    // The log is written as calls end, and calls in flight at the pause point run to their end
    // after the kill: wait for them, so that the end state below is the one the crash left.
    let forwarded_so_far = |log: &[LogEntry]| {
        log.iter()
            .filter(|e| e.operation.mutating)
            .filter(|e| matches!(e.outcome, Outcome::Answered { .. } | Outcome::Lost { .. }))
            .count()
    };
    let settle = Instant::now() + Duration::from_secs(30);
    while forwarded_so_far(&lab.proxy.log()) < k as usize && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = lab.proxy.log();
    let forwarded = forwarded_so_far(&log);
    assert_eq!(
        forwarded,
        k as usize,
        "crash point {k}: mutating calls that reached moto\nlog:\n{}",
        render(&log)
    );

    let ips_before_rerun = Inventory::take(&lab.emulator).await.stack_ips;
    lab.proxy.set_scenario(Scenario::default());
    lab.deploy_ok(&format!("crash point {k}, rerun")).await;

    let what = format!("crash after mutating call {k}");
    let end = assert_exactly_one_stack(&lab, &what).await;
    // Guarantee 1: any address allocated before the crash is still the stack's, and serves a NAT.
    for (allocation, ip) in &ips_before_rerun {
        assert_eq!(
            end.stack_ips.get(allocation),
            Some(ip),
            "{what}: IP {ip} allocated before the crash was lost"
        );
    }
    assert_eq!(
        nat_ips(&lab.emulator).await,
        end.stack_ips.values().cloned().collect(),
        "{what}: the NATs use the stack's IPs"
    );
    let log = lab.proxy.log();
    assert_allowed_by_iam_policy(&log);
    CrashPoint {
        k,
        ips_before_rerun,
        calls: log.len(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_anywhere_in_a_fresh_deploy_converges_to_one_stack() {
    let started = Instant::now();
    // N: the mutating calls of an undisturbed fresh deploy.
    let reference = Lab::start(Scenario::default()).await;
    reference.deploy_ok("reference deploy").await;
    assert_exactly_one_stack(&reference, "reference deploy").await;
    let n = reference.proxy.log().mutating_applied() as u64;
    assert!(n > 10, "a fresh deploy in two AZs makes {n} mutating calls");
    drop(reference);

    let points = in_parallel(n, parallel_labs(), crash_after).await;
    let with_ips = points
        .iter()
        .filter(|p| !p.ips_before_rerun.is_empty())
        .count();
    println!(
        "crash anywhere: {n} crash points survived ({} after an address was allocated), {} calls, \
         0 leaked, 0 IPs lost, {:.1} s",
        with_ips,
        points.iter().map(|p| p.calls).sum::<usize>(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        points.iter().map(|p| p.k).collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Throttling and 5xx on every call.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploy_and_noop_redeploy_succeed_under_throttling_and_5xx() {
    let lab = Lab::start(Scenario {
        seed: 5,
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
    })
    .await;
    lab.deploy_ok("deploy under throttling").await;
    let first = assert_exactly_one_stack(&lab, "deploy under throttling").await;
    let mutating_before = lab.proxy.log().mutating_applied();
    lab.deploy_ok("no-op redeploy under throttling").await;
    let second = assert_exactly_one_stack(&lab, "no-op redeploy under throttling").await;
    let log = lab.proxy.log();
    assert_eq!(
        log.mutating_applied(),
        mutating_before,
        "the no-op redeploy changed nothing"
    );
    assert_eq!(first.stack_ips, second.stack_ips, "the same IPs");
    assert_allowed_by_iam_policy(&log);
    println!(
        "throttling and 5xx: {} calls, {} faults injected, 2 runs succeeded",
        log.len(),
        faults_injected(&log)
    );
    assert!(faults_injected(&log) > 5, "the scenario did inject faults");
}

// ---------------------------------------------------------------------------------------------
// 3. Real timing, scaled.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploy_succeeds_with_aws_timing() {
    // NAT 6 s, Lambda 1 s (updates 0.5 s), role propagation 0.8 s, ENIs linger 9 s, and AWS's
    // dependency rules.
    let lab = Lab::start(Scenario::aws_like(0.1)).await;
    let started = Instant::now();
    let output = lab.deploy().await;
    let wall = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "deploy with AWS timing:\n{stderr}");
    assert!(
        !stderr.contains("cannot be assumed") && !stderr.contains("ResourceConflict"),
        "no AWS timing error reaches the user:\n{stderr}"
    );
    assert_exactly_one_stack(&lab, "deploy with AWS timing").await;
    let log = lab.proxy.log();
    let refused = log
        .iter()
        .filter(|e| e.operation.name == "CreateFunction")
        .filter(|e| !matches!(e.outcome, Outcome::Answered { status: 200..=299 }))
        .count();
    assert_allowed_by_iam_policy(&log);
    println!(
        "AWS timing (x0.1): deploy {:.1} s, {} calls, {refused} CreateFunction refused while the role propagated",
        wall.as_secs_f64(),
        log.len()
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Lost responses: moto applies the call, the answer never reaches the CLI, the SDK retries.

/// Every mutating operation of a fresh deploy (azs = 2). The test also checks that the runs made
/// no other, so that a new operation in deploy cannot go untested.
/// `FIXEDIP_LOST_RESPONSE_OPS=CreateVpc,...` runs a shorter list, to reproduce one case.
const FRESH_DEPLOY_MUTATIONS: &[&str] = &[
    "AllocateAddress",
    "AssociateRouteTable",
    "AttachInternetGateway",
    "AttachRolePolicy",
    "CreateFunction",
    "CreateInternetGateway",
    "CreateNatGateway",
    "CreateRole",
    "CreateRoute",
    "CreateRouteTable",
    "CreateSecurityGroup",
    "CreateSubnet",
    "CreateVpc",
    "DeleteParameter",
    "ModifyVpcAttribute",
    "PutParameter",
];

/// The operations whose lost answer the first run itself survives: the creates the executor
/// looks up by tags before sending again, the lease's PutParameter (found to be this run's own) and
/// DeleteParameter (already gone is released), and the calls that are harmless to repeat. The others
/// (CreateRole, CreateFunction, CreateRoute, AttachInternetGateway) are refused when repeated
/// (`EntityAlreadyExists`, `already exist`...): the first run fails, says to run again, and the
/// second converges.
const FIRST_RUN_SURVIVES: &[&str] = &[
    "AllocateAddress",
    "AssociateRouteTable",
    "AttachRolePolicy",
    "CreateInternetGateway",
    "CreateNatGateway",
    "CreateRouteTable",
    "CreateSecurityGroup",
    "CreateSubnet",
    "CreateVpc",
    "DeleteParameter",
    "ModifyVpcAttribute",
    "PutParameter",
];

/// What a lost answer to `operation` left: the first run's result, and either what the account holds
/// beyond the baseline after a second, undisturbed run, or why that second run failed.
fn first_error_line(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_owned()
}

struct LostResponse {
    operation: String,
    /// `None` when the first run succeeded, else its first line of error.
    first_run_error: Option<String>,
    /// When the first run failed: whether its error told the user to run again.
    says_run_again: bool,
    end: Result<BTreeMap<&'static str, usize>, String>,
    /// The mutating operations both runs made.
    mutations: BTreeSet<String>,
}

async fn lost_response_on(operation: String) -> LostResponse {
    let lab = Lab::start(Scenario {
        faults: vec![FaultRule {
            fault: Fault::LostResponse,
            matches: CallMatcher {
                operations: vec![operation.clone()],
                ..CallMatcher::default()
            },
            when: Trigger::Nth(1),
        }],
        ..Scenario::default()
    })
    .await;
    // The first run may fail (that is what a lost answer can do); the second, without faults, must
    // converge.
    let first_run = lab.deploy().await;
    let first_run_error = (!first_run.status.success()).then(|| first_error_line(&first_run));
    let says_run_again =
        String::from_utf8_lossy(&first_run.stderr).contains("run the same command again");
    lab.proxy.set_scenario(Scenario::default());
    let rerun = lab.deploy().await;
    let log = lab.proxy.log();
    assert_eq!(
        log.iter()
            .filter(|e| e.operation.name == operation && matches!(e.outcome, Outcome::Lost { .. }))
            .count(),
        1,
        "the {operation} answer was lost once\nlog:\n{}",
        render(&log)
    );
    assert_allowed_by_iam_policy(&log);
    let end = if rerun.status.success() {
        Ok(Inventory::take(&lab.emulator)
            .await
            .added_since(&lab.baseline))
    } else {
        Err(first_error_line(&rerun))
    };
    let mutations = log
        .iter()
        .filter(|e| e.operation.mutating)
        .map(|e| e.operation.name.clone())
        .collect();
    LostResponse {
        operation,
        first_run_error,
        says_run_again,
        end,
        mutations,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_create_answer_leaves_no_duplicate() {
    let operations: Vec<String> = match std::env::var("FIXEDIP_LOST_RESPONSE_OPS") {
        Ok(list) => list.split(',').map(str::to_owned).collect(),
        Err(_) => FRESH_DEPLOY_MUTATIONS
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let results = in_parallel(operations.len() as u64, parallel_labs(), |i| {
        lost_response_on(operations[i as usize - 1].clone())
    })
    .await;
    let expected: BTreeMap<&str, usize> = ONE_STACK.into_iter().collect();
    let mut broken = Vec::new();
    for result in &results {
        let verdict = match &result.end {
            Ok(added) if *added == expected => "converged".to_owned(),
            Ok(added) => {
                let extra: Vec<String> = added
                    .iter()
                    .filter(|(what, n)| **n != expected[*what])
                    .map(|(what, n)| format!("{n} × {what}"))
                    .collect();
                format!("DUPLICATES: {}", extra.join(", "))
            }
            Err(error) => format!("RERUN FAILED: {error}"),
        };
        let first = match &result.first_run_error {
            None => "succeeded".to_owned(),
            Some(error) => format!("failed ({error})"),
        };
        if result.first_run_error.is_some()
            && FIRST_RUN_SURVIVES.contains(&result.operation.as_str())
        {
            broken.push(format!(
                "{}: the first run failed, although the lost answer is looked up: {first}",
                result.operation
            ));
        }
        if result.first_run_error.is_some() && !result.says_run_again {
            broken.push(format!(
                "{}: the first run failed without saying to run again",
                result.operation
            ));
        }
        println!(
            "lost {}: first run {first}, then {verdict}",
            result.operation
        );
        if verdict != "converged" {
            broken.push(format!("{}: {verdict}", result.operation));
        }
    }
    let first_runs_ok = results
        .iter()
        .filter(|r| r.first_run_error.is_none())
        .count();
    let duplicates = results
        .iter()
        .filter(|r| matches!(&r.end, Ok(added) if *added != expected))
        .count();
    println!(
        "lost responses: {} operations, first run succeeded in {first_runs_ok}, duplicates after the second run: {duplicates}, not survived: {}",
        results.len(),
        broken.len()
    );
    let untested: BTreeSet<&String> = results
        .iter()
        .flat_map(|r| &r.mutations)
        .filter(|op| !FRESH_DEPLOY_MUTATIONS.contains(&op.as_str()))
        .collect();
    assert!(
        untested.is_empty(),
        "deploy makes mutating calls this test does not lose the answer of: {untested:?}; add them to FRESH_DEPLOY_MUTATIONS"
    );
    assert!(broken.is_empty(), "lost answers not survived: {broken:?}");
}

// ---------------------------------------------------------------------------------------------
// 5. Duplicates an older version (or another tool) left behind.

fn stack_tags(
    resource: aws_sdk_ec2::types::ResourceType,
    tags: &[(&str, &str)],
) -> aws_sdk_ec2::types::TagSpecification {
    let mut spec = aws_sdk_ec2::types::TagSpecification::builder()
        .resource_type(resource)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("fixedip:stack")
                .value(STACK)
                .build(),
        );
    for (key, value) in tags {
        spec = spec.tags(
            aws_sdk_ec2::types::Tag::builder()
                .key(*key)
                .value(*value)
                .build(),
        );
    }
    spec.build()
}

fn calls_to<'a>(log: &'a [LogEntry], operation: &str) -> Vec<&'a LogEntry> {
    log.iter()
        .filter(|e| e.operation.name == operation && matches!(e.outcome, Outcome::Answered { .. }))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicates_left_behind_are_planned_away_and_two_vpcs_are_refused() {
    use aws_sdk_ec2::types::{DomainType, ResourceType};
    let lab = Lab::start(Scenario::default()).await;
    lab.deploy_ok("fresh deploy").await;
    let ec2 = lab.emulator.ec2().await;
    let vpc = ec2
        .describe_vpcs()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:fixedip:stack")
                .values(STACK)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .vpcs()[0]
        .vpc_id()
        .unwrap()
        .to_owned();
    // What CreateInternetGateway, CreateRouteTable and AllocateAddress sent twice left: tagged as
    // the stack's, used by nothing.
    let extra_igw = ec2
        .create_internet_gateway()
        .tag_specifications(stack_tags(
            ResourceType::InternetGateway,
            &[("fixedip:component", "internet-gateway")],
        ))
        .send()
        .await
        .unwrap();
    let extra_igw = extra_igw
        .internet_gateway()
        .unwrap()
        .internet_gateway_id()
        .unwrap();
    let extra_table = ec2
        .create_route_table()
        .vpc_id(&vpc)
        .tag_specifications(stack_tags(
            ResourceType::RouteTable,
            &[
                ("fixedip:component", "private-route-table"),
                ("fixedip:slot", "1"),
            ],
        ))
        .send()
        .await
        .unwrap();
    let extra_table = extra_table.route_table().unwrap().route_table_id().unwrap();
    let allocate = |usage: &'static str, slot: &'static str| {
        ec2.allocate_address()
            .domain(DomainType::Vpc)
            .tag_specifications(stack_tags(
                ResourceType::ElasticIp,
                &[
                    ("fixedip:component", "address"),
                    ("fixedip:slot", slot),
                    ("fixedip:address", usage),
                ],
            ))
            .send()
    };
    let extra_pending = allocate("pending", "0").await.unwrap();
    let extra_pending = extra_pending.allocation_id().unwrap();
    let extra_active = allocate("active", "1").await.unwrap();
    let extra_active = extra_active.allocation_id().unwrap();

    lab.proxy.clear_log();
    lab.deploy_ok("deploy with duplicates left behind").await;
    let log = lab.proxy.log();
    assert_allowed_by_iam_policy(&log);
    let deleted_igws: Vec<_> = calls_to(&log, "DeleteInternetGateway");
    assert_eq!(deleted_igws.len(), 1, "{}", render(&log));
    let released = calls_to(&log, "ReleaseAddress");
    assert_eq!(
        released.len(),
        1,
        "only the pending duplicate goes:\n{}",
        render(&log)
    );
    let still_there = |id: &str| {
        let ec2 = ec2.clone();
        let id = id.to_owned();
        async move {
            ec2.describe_addresses()
                .allocation_ids(id)
                .send()
                .await
                .map(|a| a.addresses().to_vec())
                .unwrap_or_default()
        }
    };
    assert!(
        still_there(extra_pending).await.is_empty(),
        "the pending duplicate is released"
    );
    let kept = still_there(extra_active).await;
    assert_eq!(
        kept[0]
            .tags()
            .iter()
            .find(|t| t.key() == Some("fixedip:address"))
            .and_then(|t| t.value()),
        Some("retained"),
        "an active duplicate is never released: it is kept, retained"
    );
    let igws = ec2.describe_internet_gateways().send().await.unwrap();
    assert!(igws
        .internet_gateways()
        .iter()
        .all(|g| g.internet_gateway_id() != Some(extra_igw)));
    let tables = ec2.describe_route_tables().send().await.unwrap();
    assert!(tables
        .route_tables()
        .iter()
        .all(|t| t.route_table_id() != Some(extra_table)));
    // One stack, plus the retained address.
    let added = Inventory::take(&lab.emulator)
        .await
        .added_since(&lab.baseline);
    let mut expected: BTreeMap<&str, usize> = ONE_STACK.into_iter().collect();
    *expected.get_mut("Elastic IP").unwrap() += 1;
    assert_eq!(added, expected);
    lab.proxy.clear_log();
    lab.deploy_ok("no-op redeploy").await;
    assert_eq!(lab.proxy.log().mutating_applied(), 0, "converged");

    // A second tagged VPC (a CreateVpc sent twice): refused before any change, naming the empty one.
    let second = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .tag_specifications(stack_tags(
            ResourceType::Vpc,
            &[("fixedip:component", "vpc")],
        ))
        .send()
        .await
        .unwrap();
    let second = second.vpc().unwrap().vpc_id().unwrap();
    lab.proxy.clear_log();
    let refused = lab.deploy().await;
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{message}");
    assert!(
        message.contains(&format!("{second} (empty)"))
            && message.contains(&format!("aws ec2 delete-vpc --vpc-id {second}")),
        "the error names the empty VPC and how to delete it:\n{message}"
    );
    assert_eq!(lab.proxy.log().mutating_applied(), 0, "nothing changed");
}

// ---------------------------------------------------------------------------------------------
// Figures: a fresh deploy and a no-op redeploy with 100 ms per call.

/// From the first CreateNatGateway's answer to the last DescribeNatGateways: the time spent waiting
/// for NAT gateways to become available.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn figures_with_100_ms_per_call() {
    let lab = Lab::start(Scenario {
        latency: Some(Latency::Fixed { ms: 100 }),
        timing: Timing {
            nat_pending_ms: 6_000,
            ..Timing::default()
        },
        ..Scenario::default()
    })
    .await;
    let started = Instant::now();
    lab.deploy_ok("fresh deploy, 100 ms per call").await;
    let fresh_wall = started.elapsed();
    let fresh_log = lab.proxy.log();
    assert_exactly_one_stack(&lab, "fresh deploy, 100 ms per call").await;
    lab.proxy.clear_log();

    let started = Instant::now();
    lab.deploy_ok("no-op redeploy, 100 ms per call").await;
    let noop_wall = started.elapsed();
    let noop_log = lab.proxy.log();
    assert_eq!(noop_log.mutating_applied(), 0);
    assert_allowed_by_iam_policy(&fresh_log);
    assert_allowed_by_iam_policy(&noop_log);

    let fresh = fresh_log.summary();
    let noop = noop_log.summary();
    let nat = nat_wait(&fresh_log);
    let round_trips = (fresh.wall.saturating_sub(nat)).as_secs_f64() / 0.1;
    println!("| run | calls | mutating | process wall | calls' wall | NAT wait | critical path | sequential sum | max in flight |");
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| fresh deploy | {} | {} | {:.1} s | {:.1} s | {:.1} s | {:.0} round trips | {:.1} s | {} |",
        fresh.calls,
        fresh.mutating_calls,
        fresh_wall.as_secs_f64(),
        fresh.wall.as_secs_f64(),
        nat.as_secs_f64(),
        round_trips,
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
    // Concurrency must pay off: the calls overlap.
    assert!(fresh.max_in_flight > 1 && noop.max_in_flight > 1);
}
