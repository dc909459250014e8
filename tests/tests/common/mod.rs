//! What the chaos-proxy suites share (concurrency, reliability_destroy, ip_stability): a lab (one
//! moto and one chaos proxy in front of it), the end state read through the SDK straight from moto,
//! and the check that every call the tool made is allowed by `cargo fixedip iam-policy`.
//!
//! A module of the test targets rather than of `fixedip-tests`' library: the chaos proxy is a
//! dev-dependency.

#![allow(dead_code)] // Each test target uses its own part.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use fixedip_chaos::{ChaosProxy, LogEntry, Outcome, Scenario};
use fixedip_tests::{example_dir, Emulator};

/// The stack every scenario deploys (the example's and the fixtures').
pub const STACK: &str = "default";
pub const ROLE: &str = "fixedip-default-us-east-1-lambda";

// ---------------------------------------------------------------------------------------------
// A lab: one moto and one proxy in front of it.

pub struct Lab {
    pub emulator: Emulator,
    pub proxy: ChaosProxy,
    /// What moto holds before the tool runs (its default VPC and the like), to count leaks against.
    pub baseline: Inventory,
}

impl Lab {
    pub async fn start(scenario: Scenario) -> Lab {
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

    /// Takes the baseline again: after a test put foreign resources in the account.
    pub async fn rebase(&mut self) {
        self.baseline = Inventory::take(&self.emulator).await;
    }

    /// `cargo fixedip ARGS` pointed at the proxy, output captured.
    pub fn command(&self, args: &[&str]) -> Command {
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

    pub async fn run(&self, args: &[&str]) -> Output {
        let mut command = self.command(args);
        tokio::task::spawn_blocking(move || command.output().expect("cargo-fixedip runs"))
            .await
            .unwrap()
    }

    /// Runs and asserts the exit code, with stderr and the proxy's log when it differs.
    pub async fn run_expect(&self, args: &[&str], code: i32, what: &str) -> Output {
        let output = self.run(args).await;
        assert_eq!(
            output.status.code(),
            Some(code),
            "{what}: `cargo fixedip {}`\nstderr:\n{}\nlog:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr),
            render(&self.proxy.log())
        );
        output
    }
}

pub fn render(log: &[LogEntry]) -> String {
    log.iter()
        .map(|e| {
            format!(
                "#{} {} {} {}\n",
                e.seq, e.operation.service, e.operation.name, e.outcome
            )
        })
        .collect()
}

/// The path of a file as a `&'static str`, for argument lists.
pub fn path_arg(path: &Path) -> &'static str {
    Box::leak(
        path.to_str()
            .expect("a UTF-8 path")
            .to_owned()
            .into_boxed_str(),
    )
}

// ---------------------------------------------------------------------------------------------
// The end state, read through the SDK straight from moto.

/// Counts of everything in the account, and the stack's Elastic IPs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    pub counts: BTreeMap<&'static str, usize>,
    /// The stack's tagged Elastic IPs (allocation id → address).
    pub stack_ips: BTreeMap<String, String>,
    /// Every Elastic IP in the account (allocation id → address).
    pub all_ips: BTreeMap<String, String>,
    /// Every resource id in the account, to tell that foreign ones were left alone.
    pub ids: BTreeSet<String>,
}

pub fn has_stack_tag(tags: &[aws_sdk_ec2::types::Tag]) -> bool {
    tags.iter()
        .any(|t| t.key() == Some("fixedip:stack") && t.value() == Some(STACK))
}

impl Inventory {
    pub async fn take(emulator: &Emulator) -> Inventory {
        let ec2 = emulator.ec2().await;
        let vpcs = ec2
            .describe_vpcs()
            .send()
            .await
            .unwrap()
            .vpcs
            .unwrap_or_default();
        let igws = ec2
            .describe_internet_gateways()
            .send()
            .await
            .unwrap()
            .internet_gateways
            .unwrap_or_default();
        let subnets = ec2
            .describe_subnets()
            .send()
            .await
            .unwrap()
            .subnets
            .unwrap_or_default();
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
        let addresses = ec2
            .describe_addresses()
            .send()
            .await
            .unwrap()
            .addresses
            .unwrap_or_default();
        let tables = ec2
            .describe_route_tables()
            .send()
            .await
            .unwrap()
            .route_tables
            .unwrap_or_default();
        let groups = ec2
            .describe_security_groups()
            .send()
            .await
            .unwrap()
            .security_groups
            .unwrap_or_default();
        let roles = emulator
            .iam()
            .await
            .list_roles()
            .send()
            .await
            .unwrap()
            .roles;
        let functions = emulator
            .lambda()
            .await
            .list_functions()
            .send()
            .await
            .unwrap()
            .functions
            .unwrap_or_default();
        let address_map = |only_stack: bool| {
            addresses
                .iter()
                .filter(|a| !only_stack || has_stack_tag(a.tags()))
                .map(|a| {
                    (
                        a.allocation_id().unwrap().to_owned(),
                        a.public_ip().unwrap().to_owned(),
                    )
                })
                .collect()
        };
        let mut ids = BTreeSet::new();
        ids.extend(vpcs.iter().filter_map(|v| v.vpc_id().map(str::to_owned)));
        ids.extend(
            igws.iter()
                .filter_map(|g| g.internet_gateway_id().map(str::to_owned)),
        );
        ids.extend(
            subnets
                .iter()
                .filter_map(|s| s.subnet_id().map(str::to_owned)),
        );
        ids.extend(
            nats.iter()
                .filter_map(|n| n.nat_gateway_id().map(str::to_owned)),
        );
        ids.extend(
            addresses
                .iter()
                .filter_map(|a| a.allocation_id().map(str::to_owned)),
        );
        ids.extend(
            tables
                .iter()
                .filter_map(|t| t.route_table_id().map(str::to_owned)),
        );
        ids.extend(
            groups
                .iter()
                .filter_map(|g| g.group_id().map(str::to_owned)),
        );
        ids.extend(roles.iter().map(|r| r.role_name().to_owned()));
        ids.extend(
            functions
                .iter()
                .filter_map(|f| f.function_name().map(str::to_owned)),
        );
        let counts = [
            ("vpc", vpcs.len()),
            ("internet gateway", igws.len()),
            ("subnet", subnets.len()),
            ("NAT gateway", nats.len()),
            ("Elastic IP", addresses.len()),
            ("route table", tables.len()),
            ("security group", groups.len()),
            ("role", roles.len()),
            ("function", functions.len()),
        ]
        .into_iter()
        .collect();
        Inventory {
            counts,
            stack_ips: address_map(true),
            all_ips: address_map(false),
            ids,
        }
    }

    /// What the account holds beyond the baseline, per kind (only kinds with something added).
    pub fn added_since(&self, baseline: &Inventory) -> BTreeMap<&'static str, usize> {
        self.counts
            .iter()
            .map(|(what, n)| (*what, n - baseline.counts[what]))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// Exactly one stack in `azs` AZs with `functions` functions and `retained` IPs kept beyond the
/// active ones: one VPC (with its main route table and default security group, which AWS makes with
/// it), IGW, a public and a private subnet and a NAT per AZ, the public route table and one per
/// private subnet, the stack's security group, the role.
pub fn one_stack(azs: usize, functions: usize, retained: usize) -> BTreeMap<&'static str, usize> {
    [
        ("Elastic IP", azs + retained),
        ("NAT gateway", azs),
        ("function", functions),
        ("internet gateway", 1),
        ("role", 1),
        ("route table", 1 + azs + 1),
        ("security group", 1 + 1),
        ("subnet", 2 * azs),
        ("vpc", 1),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .collect()
}

/// After destroy: nothing of the stack but its kept Elastic IPs, and the functions (out of the VPC)
/// with the stack's role, which destroy keeps while a remaining function uses it.
pub fn destroyed(kept_ips: usize, functions: usize) -> BTreeMap<&'static str, usize> {
    [
        ("Elastic IP", kept_ips),
        ("function", functions),
        ("role", usize::from(functions > 0)),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .collect()
}

/// The subnets a function is attached to (empty: out of any VPC).
pub async fn function_subnets(emulator: &Emulator, function: &str) -> BTreeSet<String> {
    emulator
        .lambda()
        .await
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .unwrap_or_else(|e| panic!("function {function}: {e:?}"))
        .vpc_config()
        .map(|v| v.subnet_ids().iter().cloned().collect())
        .unwrap_or_default()
}

/// Asserts exactly one stack of `azs` AZs with every one of `functions` attached to its `azs`
/// private subnets, and nothing else added to the account.
pub async fn assert_one_stack(lab: &Lab, azs: usize, functions: &[&str], what: &str) -> Inventory {
    let now = Inventory::take(&lab.emulator).await;
    assert_eq!(
        now.added_since(&lab.baseline),
        one_stack(azs, functions.len(), 0),
        "{what}: the account holds exactly one stack and nothing leaked\nlog:\n{}",
        render(&lab.proxy.log())
    );
    let mut attached = BTreeSet::new();
    for function in functions {
        let subnets = function_subnets(&lab.emulator, function).await;
        assert_eq!(subnets.len(), azs, "{what}: {function} is in {azs} subnets");
        attached.insert(subnets);
    }
    assert!(
        attached.len() <= 1,
        "{what}: the functions share the stack's subnets: {attached:?}"
    );
    now
}

// ---------------------------------------------------------------------------------------------
// The IAM policy check: every call the tool made is allowed by `cargo fixedip iam-policy`.

pub use fixedip_tests::iam_policy::assert_allowed_by_iam_policy;

// ---------------------------------------------------------------------------------------------
// Figures and running many labs.

pub fn faults_injected(log: &[LogEntry]) -> usize {
    log.iter()
        .filter(|e| matches!(e.outcome, Outcome::Injected { .. } | Outcome::Lost { .. }))
        .count()
}

/// Mutating calls that reached moto (an AWS error answer counts: the call reached the service).
pub fn mutating_forwarded(log: &[LogEntry]) -> usize {
    log.iter()
        .filter(|e| e.operation.mutating)
        .filter(|e| matches!(e.outcome, Outcome::Answered { .. } | Outcome::Lost { .. }))
        .count()
}

/// Runs `count` jobs, at most `parallel` at a time, each on its own task.
pub async fn in_parallel<T, F>(count: u64, parallel: usize, job: impl Fn(u64) -> F) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(parallel));
    let handles: Vec<_> = (1..=count)
        .map(|k| {
            let gate = gate.clone();
            let work = job(k);
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.unwrap();
                work.await
            })
        })
        .collect();
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.expect("a scenario task panicked"));
    }
    results
}

/// How many labs run at once: each has its own moto (a Python process) and CLI.
pub fn parallel_labs() -> usize {
    std::env::var("FIXEDIP_RELIABILITY_PARALLEL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}
