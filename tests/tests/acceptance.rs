//! Issue 19: the acceptance suite a maintainer runs against AWS (`FIXEDIP_ACC=1`), run here by its
//! own binary, `fixedip-acceptance`, against the emulator through the chaos proxy's `aws_like`
//! scenario (times [`SCALE`]), so that every line of it runs on every CI build: every scenario must
//! pass and the run must sweep itself; a run killed midway must be swept by `sweep`, which must
//! leave untagged resources alone. And without a region or credentials, a run against AWS must
//! refuse to start.
//!
//! `cargo nextest run -p fixedip-tests --no-capture acceptance::` prints the report's table.

use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use fixedip_chaos::{ChaosProxy, LogEntry, Outcome, Scenario};
use fixedip_tests::acceptance::functions::{FunctionPackage, Functions};
use fixedip_tests::acceptance::report::Report;
use fixedip_tests::acceptance::{RunId, Runs};
use fixedip_tests::{acceptance_bin, clear_aws_env, Emulator};

/// Real durations times this: NAT gateways pending 3 s, NAT instances ready after 3 s, Lambda's
/// interfaces lingering 4.5 s.
const SCALE: f64 = 0.05;

struct AcceptanceLab {
    emulator: Emulator,
    proxy: ChaosProxy,
    out: tempfile::TempDir,
}

impl AcceptanceLab {
    async fn start(scenario: Scenario) -> AcceptanceLab {
        let emulator = tokio::task::spawn_blocking(Emulator::start).await.unwrap();
        let proxy = ChaosProxy::start(&emulator.endpoint(), scenario)
            .await
            .expect("the chaos proxy starts");
        AcceptanceLab {
            emulator,
            proxy,
            out: tempfile::tempdir().unwrap(),
        }
    }

    /// `fixedip-acceptance ARGS --emulator <proxy>`, in a process group of its own (a kill
    /// takes the CLI it runs with it), no AWS setting of the caller's.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(acceptance_bin());
        clear_aws_env(&mut command);
        command
            .args(args)
            .args(["--emulator", &self.proxy.url()])
            .env_remove("FIXEDIP_ACC")
            .current_dir(fixedip_tests::workspace_root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        command
    }

    async fn run(&self, args: &[&str]) -> Output {
        let mut command = self.command(args);
        tokio::task::spawn_blocking(move || command.output().expect("fixedip-acceptance runs"))
            .await
            .unwrap()
    }

    /// The one report the run wrote.
    fn report(&self) -> Report {
        let json = std::fs::read_dir(self.out.path())
            .unwrap()
            .flatten()
            .find(|e| e.path().extension().is_some_and(|x| x == "json"))
            .expect("the run wrote a JSON report");
        serde_json::from_slice(&std::fs::read(json.path()).unwrap()).expect("the report parses")
    }
}

fn said(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// What the account holds that carries the suite's tags, by kind and id: read straight from moto,
/// not through the sweeper's code. (Terminated instances and deleted NAT gateways stay listed by
/// AWS for a while: they are not left.)
async fn leftovers(emulator: &Emulator) -> Vec<String> {
    let ec2 = emulator.ec2().await;
    let owned = |tags: &[aws_sdk_ec2::types::Tag]| {
        Runs::All.owns(
            tags.iter()
                .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())),
        )
    };
    let mut left = Vec::new();
    let vpcs = ec2.describe_vpcs().send().await.unwrap();
    left.extend(
        vpcs.vpcs()
            .iter()
            .filter(|v| owned(v.tags()))
            .map(|v| format!("{v:?}")),
    );
    let subnets = ec2.describe_subnets().send().await.unwrap();
    left.extend(
        subnets
            .subnets()
            .iter()
            .filter(|s| owned(s.tags()))
            .map(|s| format!("{s:?}")),
    );
    let addresses = ec2.describe_addresses().send().await.unwrap();
    let addresses = addresses.addresses().iter().filter(|a| owned(a.tags()));
    left.extend(addresses.map(|a| format!("{a:?}")));
    let nats = ec2.describe_nat_gateways().send().await.unwrap();
    let nats = nats.nat_gateways().iter().filter(|n| owned(n.tags()));
    let nats = nats.filter(|n| n.state().is_none_or(|s| s.as_str() != "deleted"));
    left.extend(nats.map(|n| format!("{n:?}")));
    let instances = ec2.describe_instances().send().await.unwrap();
    let instances = instances.reservations().iter().flat_map(|r| r.instances());
    let instances = instances.filter(|i| owned(i.tags()));
    let instances = instances.filter(|i| {
        i.state()
            .and_then(|s| s.name())
            .is_none_or(|n| n.as_str() != "terminated")
    });
    left.extend(instances.map(|i| format!("{i:?}")));
    let groups = ec2.describe_security_groups().send().await.unwrap();
    let groups = groups.security_groups().iter().filter(|g| owned(g.tags()));
    left.extend(groups.map(|g| format!("{g:?}")));
    let roles = emulator.iam().await.list_roles().send().await.unwrap();
    let roles = roles.roles().iter().map(|r| r.role_name());
    left.extend(
        roles
            .filter(|n| n.contains("fixedip-acc-"))
            .map(str::to_owned),
    );
    let functions = emulator
        .lambda()
        .await
        .list_functions()
        .send()
        .await
        .unwrap();
    let functions = functions
        .functions()
        .iter()
        .filter_map(|f| f.function_name());
    left.extend(
        functions
            .filter(|n| n.starts_with("fixedip-acc-"))
            .map(str::to_owned),
    );
    left
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_scenario_passes_on_the_emulator_and_the_run_sweeps_itself() {
    let lab = AcceptanceLab::start(Scenario::aws_like(SCALE)).await;
    let started = Instant::now();
    let output = lab
        .run(&["run", "--out", lab.out.path().to_str().unwrap()])
        .await;
    println!("{}", String::from_utf8_lossy(&output.stdout));
    println!(
        "acceptance on the emulator, aws_like x{SCALE}: {:.0} s",
        started.elapsed().as_secs_f64()
    );
    if !output.status.success() {
        print_mutating_calls(&lab.proxy.log());
    }
    assert!(output.status.success(), "{}", said(&output));
    let report = lab.report();
    assert_eq!(report.scenarios.len(), 16, "{report:#?}");
    for scenario in &report.scenarios {
        assert!(scenario.passed, "{scenario:#?}");
    }
    assert!(report.sweep_errors.is_empty(), "{report:#?}");
    let markdown =
        std::fs::read_to_string(lab.out.path().join(format!("acceptance-{}.md", report.run)))
            .unwrap();
    assert!(
        markdown.contains("PASSED: 16 of 16 scenarios passed"),
        "{markdown}"
    );
    let left = leftovers(&lab.emulator).await;
    assert!(left.is_empty(), "the run left {left:#?}");
    // The workflow's role: fixedip's own policy plus the suite's, judged on every call of the run
    // (the CLI's, the twin's reads, the existing VPC's builder, the sweep).
    let log = lab.proxy.log();
    fixedip_tests::iam_policy::assert_allowed_by(&workflow_role_policy(), &log);
    // ... and the suite's statements are needed: fixedip's policy alone denies some of them.
    let fixedip = fixedip_tests::iam_policy::policy_document();
    let suite_only = log.iter().flat_map(|e| e.authorizations.iter());
    let suite_only = suite_only.filter(|a| fixedip_chaos::iam::evaluate(fixedip, a).is_err());
    assert!(
        suite_only.count() > 0,
        "fixedip's own policy allowed the suite's calls"
    );
}

/// Every mutating call of a failed run and every call AWS did not answer with success, in order:
/// what a failure in CI, where the run's files are gone, leaves to go on.
fn print_mutating_calls(log: &[LogEntry]) {
    println!("mutating calls and refusals of the run, in order:");
    let notable = log.iter().filter(|e| {
        e.operation.mutating || !matches!(e.outcome, Outcome::Answered { status: 200 })
    });
    for entry in notable {
        println!(
            "{:>8.2} s  {:<8} {:<32} {}",
            entry.start.as_secs_f64(),
            entry.operation.service,
            entry.operation.name,
            entry.outcome
        );
    }
}

/// `cargo fixedip iam-policy` with the statements of docs/acceptance/suite-policy.json added.
fn workflow_role_policy() -> serde_json::Value {
    let mut document = fixedip_tests::iam_policy::policy_document().clone();
    let suite = fixedip_tests::workspace_root().join("docs/acceptance/suite-policy.json");
    let suite: serde_json::Value = serde_json::from_slice(&std::fs::read(suite).unwrap()).unwrap();
    let statements = document["Statement"].as_array_mut().unwrap();
    statements.extend(suite["Statement"].as_array().unwrap().iter().cloned());
    document
}

/// The k-th mutating call of a run: past the first deploy and the code change, in the switch to
/// NAT instances (NAT gateways going, an instance booting, the lease held).
const KILLED_AFTER_MUTATING: u64 = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_run_is_swept_and_nothing_untagged_is_touched() {
    let scenario = Scenario {
        pause_after_mutating: Some(KILLED_AFTER_MUTATING),
        ..Scenario::aws_like(SCALE)
    };
    let lab = AcceptanceLab::start(scenario).await;
    let ec2 = lab.emulator.ec2().await;
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.77.0.0/16")
        .send()
        .await
        .unwrap();
    let vpc = vpc.vpc().and_then(|v| v.vpc_id()).unwrap().to_owned();
    let address = ec2.allocate_address().send().await.unwrap();
    let allocation = address.allocation_id().unwrap().to_owned();
    let group = ec2
        .create_security_group()
        .group_name("not-the-suite-s")
        .description("untagged")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap();
    let group = group.group_id().unwrap().to_owned();

    let mut run = lab
        .command(&["run", "--out", lab.out.path().to_str().unwrap()])
        .spawn()
        .unwrap();
    let paused = lab.proxy.wait_paused(Duration::from_secs(480)).await;
    // SAFETY: kill(2) of the process group the run leads; no memory is involved.
    unsafe { libc::kill(-(run.id() as i32), libc::SIGKILL) };
    let _ = run.wait();
    assert!(
        paused,
        "the run never reached its {KILLED_AFTER_MUTATING}th mutating call"
    );
    lab.proxy.set_scenario(Scenario::aws_like(SCALE));
    let left = leftovers(&lab.emulator).await;
    assert!(
        left.iter()
            .any(|l| l.contains("NatGateway") || l.contains("Instance")),
        "{left:#?}"
    );

    let swept = lab.run(&["sweep"]).await;
    assert!(swept.status.success(), "{}", said(&swept));
    let left = leftovers(&lab.emulator).await;
    assert!(
        left.is_empty(),
        "the sweep left {left:#?}\n{}",
        said(&swept)
    );

    let vpcs = ec2.describe_vpcs().vpc_ids(&vpc).send().await.unwrap();
    assert_eq!(vpcs.vpcs().len(), 1, "the untagged VPC survives");
    let addresses = ec2
        .describe_addresses()
        .allocation_ids(&allocation)
        .send()
        .await;
    assert_eq!(
        addresses.unwrap().addresses().len(),
        1,
        "the untagged address survives"
    );
    let groups = ec2
        .describe_security_groups()
        .group_ids(&group)
        .send()
        .await;
    assert_eq!(
        groups.unwrap().security_groups().len(),
        1,
        "the untagged group survives"
    );
}

#[tokio::test]
async fn against_aws_it_refuses_to_start_without_a_region_or_credentials() {
    let mut command = Command::new(acceptance_bin());
    clear_aws_env(&mut command);
    let output = command
        .args(["run", "--yes"])
        .env("FIXEDIP_ACC", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", said(&output));
    assert!(said(&output).contains("--region"), "{}", said(&output));

    // Credentials the chain cannot find: refused before anything (no endpoint is reachable
    // either: nothing leaves this machine).
    let nowhere = tempfile::tempdir().unwrap();
    let missing = nowhere.path().join("none");
    let mut command = Command::new(acceptance_bin());
    clear_aws_env(&mut command);
    let output = command
        .args(["run", "--yes", "--region", "us-east-1"])
        .env("FIXEDIP_ACC", "1")
        .env("AWS_CONFIG_FILE", &missing)
        .env("AWS_SHARED_CREDENTIALS_FILE", &missing)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", said(&output));
    assert!(
        said(&output).contains("no usable AWS credentials"),
        "{}",
        said(&output)
    );
}

/// Runs share the packages' target directory. Were every run's `gateway` one package to cargo
/// (same name, same version), a run building while another run's workspace exists would be handed
/// that run's binary as fresh, and deploy the other run's stack: CI saw the "no-op redeploy" make
/// 48 mutating calls, building a second stack from the binary of the killed-run test that ran at
/// the same time. Each run must get a binary with its own stack in it.
#[test]
fn runs_that_write_their_packages_at_once_each_build_their_own_binary() {
    let first = RunId::new();
    let mut second = RunId::new();
    while second.0 == first.0 {
        second = RunId::new();
    }
    let runs = [first, second];
    let workspaces: Vec<Functions> = runs
        .iter()
        .map(|run| Functions::create(run, None).unwrap())
        .collect();
    for (run, functions) in runs.iter().zip(&workspaces) {
        functions
            .write(&FunctionPackage::main(run, "gateway", "azs = 2"))
            .unwrap();
    }
    for (run, functions) in runs.iter().zip(&workspaces) {
        let (_, binary) = functions.build_zip("gateway").unwrap();
        let bytes = std::fs::read(&binary).unwrap();
        let stack = run.stack();
        let own = bytes.windows(stack.len()).any(|w| w == stack.as_bytes());
        assert!(
            own,
            "{} does not name its run's stack {stack}",
            binary.display()
        );
    }
    for functions in workspaces {
        std::fs::remove_dir_all(&functions.dir).unwrap();
    }
}
