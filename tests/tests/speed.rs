//! Issue 18's figures: how far a deploy is from AWS's own waits, and how little a deploy that
//! changes nothing costs. Every run goes through the chaos proxy with AWS's timing
//! (`Scenario::aws_like`, × `FIXEDIP_TIMING_SCALE`, 0.1 unless set) and 100 ms added to every
//! call, so that a round trip the CLI waits on shows in the wall time as it would against AWS.
//!
//! For each run it prints the calls, the mutating calls, the depth (round trips one after the
//! other: the longest chain of calls each started after the one before it answered), the process
//! wall time, and the chain itself. `scripts/bench-speed.sh` runs it at AWS's real timing;
//! docs/benchmarks.md has the figures. The assertions are the bounds the figures are quoted
//! against, loose enough for a shared machine.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fixedip_chaos::{LogEntry, LogQueries, Outcome, Scenario};
use fixedip_tests::{example_binary, example_zip, workspace_root, write_lambda_zip};

use crate::common::{path_arg, Lab};

/// 100 ms on every call: AWS's own answer time from a client near the region.
const LATENCY_MS: u64 = 100;

fn timing_scale() -> f64 {
    std::env::var("FIXEDIP_TIMING_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.1)
}

fn scenario(scale: f64) -> Scenario {
    Scenario {
        latency: Some(fixedip_chaos::Latency::Fixed { ms: LATENCY_MS }),
        ..Scenario::aws_like(scale)
    }
}

/// One run's figures, printed as a table row and its chain.
struct Figures {
    run: &'static str,
    /// When the process started.
    started: Instant,
    wall: Duration,
    log: Vec<LogEntry>,
}

impl Figures {
    async fn of(lab: &Lab, run: &'static str, args: &[&str]) -> Figures {
        lab.proxy.clear_log();
        let started = Instant::now();
        lab.run_expect(args, 0, run).await;
        let wall = started.elapsed();
        Figures {
            run,
            started,
            wall,
            log: lab.proxy.log(),
        }
    }

    /// When the first and the accepted CreateNatGateway started, from the process's start.
    fn nat_gateway_started(&self) -> Option<(Duration, Duration)> {
        let calls: Vec<&LogEntry> = self
            .log
            .iter()
            .filter(|e| e.operation.name == "CreateNatGateway")
            .collect();
        let since = |e: &LogEntry| e.started_at.saturating_duration_since(self.started);
        let first = since(calls.first()?);
        let accepted = calls
            .iter()
            .find(|e| matches!(e.outcome, Outcome::Answered { status: 200 }))?;
        Some((first, since(accepted)))
    }

    fn depth(&self) -> usize {
        self.log.summary().depth
    }

    /// The row; `beyond`, the wall time beyond each of the given waits.
    fn row(&self, beyond: &[Duration]) -> String {
        let summary = self.log.summary();
        let beyond: Vec<String> = match beyond {
            [] => vec!["–".to_owned(); 2],
            waits => waits
                .iter()
                .map(|wait| format!("{:.1} s", self.wall.saturating_sub(*wait).as_secs_f64()))
                .collect(),
        };
        let beyond = beyond.join(" | ");
        format!(
            "| {} | {} | {} | {} | {:.2} s | {beyond} |",
            self.run,
            summary.calls,
            summary.mutating_calls,
            summary.depth,
            self.wall.as_secs_f64()
        )
    }

    fn chain(&self) -> String {
        let chain: Vec<String> = self
            .log
            .deepest_chain()
            .iter()
            .map(|e| format!("{} {:.1}", e.operation.name, e.start.as_secs_f64()))
            .collect();
        format!("{} (name, start in s): {}", self.run, chain.join(" → "))
    }

    /// Every operation of the run with how often it was called, in the order first called.
    fn operations(&self) -> String {
        let mut counted: Vec<(&str, usize)> = Vec::new();
        for entry in &self.log {
            let name = entry.operation.name.as_str();
            match counted.iter_mut().find(|(n, _)| *n == name) {
                Some((_, count)) => *count += 1,
                None => counted.push((name, 1)),
            }
        }
        let listed: Vec<String> = counted
            .iter()
            .map(|(name, count)| match count {
                1 => name.to_string(),
                _ => format!("{name} ×{count}"),
            })
            .collect();
        format!("{} calls: {}", self.run, listed.join(", "))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploy_noop_and_code_change() {
    let scale = timing_scale();
    let scenario = scenario(scale);
    // The slowest AWS wait of a first deploy: the NAT gateways' `pending`.
    let slowest_wait = Duration::from_millis(scenario.timing.nat_pending_ms);
    // AWS's own chain before it: CreateSubnet names the new VPC, CreateNatGateway the new subnet,
    // each id unknown for `fresh_id_ms` after its create.
    let fresh_id = Duration::from_millis(scenario.timing.fresh_id_ms);
    let aws_chain = fresh_id * 2 + slowest_wait;
    let lab = Lab::start(scenario).await;
    let deploy = ["deploy", "--quiet", "--zip", path_arg(example_zip())];

    let fresh = Figures::of(&lab, "fresh deploy", &deploy).await;
    let noop = Figures::of(&lab, "no-op redeploy", &deploy).await;

    let changed = tempfile::tempdir().unwrap();
    let zip = changed.path().join("changed.zip");
    let bootstrap = std::fs::read(example_binary()).unwrap();
    write_lambda_zip(&zip, &bootstrap, &[("VERSION", b"2")]);
    let code = Figures::of(
        &lab,
        "code change",
        &["deploy", "--quiet", "--zip", path_arg(&zip)],
    )
    .await;

    println!(
        "AWS timing × {scale}, {LATENCY_MS} ms per call (the slowest wait: NAT gateways pending {:.1} s; AWS's own chain: VPC id {:.1} s → subnet id {:.1} s → NAT {:.1} s = {:.1} s)",
        slowest_wait.as_secs_f64(),
        fresh_id.as_secs_f64(),
        fresh_id.as_secs_f64(),
        slowest_wait.as_secs_f64(),
        aws_chain.as_secs_f64()
    );
    println!("| run | calls | mutating | depth | wall | beyond the NAT's wait | beyond AWS's own chain |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!("{}", fresh.row(&[slowest_wait, aws_chain]));
    println!("{}", noop.row(&[]));
    println!("{}", code.row(&[]));
    if let Some((first, accepted)) = fresh.nat_gateway_started() {
        println!(
            "fresh deploy: CreateNatGateway first sent {:.1} s after the process started, accepted at {:.1} s (AWS's own chain allows {:.1} s)",
            first.as_secs_f64(),
            accepted.as_secs_f64(),
            (fresh_id * 2).as_secs_f64()
        );
    }
    for figures in [&fresh, &noop, &code] {
        println!("{}", figures.chain());
    }
    println!("{}", noop.operations());

    // Addresses are regional: allocated at the start, not after the subnets (so that their ids
    // are found by the time CreateNatGateway names them).
    let start_of = |name: &str, accepted: bool| {
        fresh
            .log
            .iter()
            .filter(|e| e.operation.name == name)
            .filter(|e| !accepted || matches!(e.outcome, Outcome::Answered { status: 200 }))
            .map(|e| e.started_at)
            .collect::<Vec<_>>()
    };
    let first_subnet = start_of("CreateSubnet", true).into_iter().min().unwrap();
    let allocations = start_of("AllocateAddress", false);
    assert!(
        !allocations.is_empty() && allocations.iter().all(|a| *a < first_subnet),
        "every AllocateAddress before the first subnet is made"
    );
    // After the last route, the verification knows the VPC it just made: the functions'
    // attachments and that VPC's network are read at once, one round trip (one more where a
    // loaded machine starts a read after another one's answer), not four (the functions, their
    // subnets' VPC, the VPC, the gateways its routes name). The lease's release (SSM) runs beside.
    let last_route = (fresh.log.iter())
        .filter(|e| e.operation.name == "CreateRoute")
        .map(|e| e.end)
        .max()
        .unwrap();
    let after_route: Vec<LogEntry> = (fresh.log.iter())
        .filter(|e| e.start >= last_route && e.operation.service != "ssm")
        .cloned()
        .collect();
    let chain: Vec<&str> = (after_route.deepest_chain().iter())
        .map(|e| e.operation.name.as_str())
        .collect();
    assert!(
        chain.len() <= 2,
        "round trips after the last route: {}",
        chain.join(" → ")
    );
    assert_eq!(noop.log.mutating_applied(), 0, "a no-op changes nothing");
    // The availability zones (the credential check), the reads by tag and name, the VPC's DNS
    // attributes: issue 18's three round trips (one more where a loaded machine starts a read
    // after another one's answer).
    assert!(noop.depth() <= 4, "no-op depth {}", noop.depth());
    // What a no-op reads (docs/benchmarks.md lists the 15): no STS (the availability zones
    // check the credentials), and of what a gateway stack may have left (NAT instances, VPC
    // endpoints, self-healing NATs) one DescribeTags, not a Describe of each type.
    assert!(
        noop.log.len() <= 15,
        "a no-op's calls: {}",
        noop.operations()
    );
    for unasked in [
        "GetCallerIdentity",
        "DescribeAutoScalingGroups",
        "GetInstanceProfile",
        "DescribeInstances",
        "DescribeVpcEndpoints",
        "DescribeNetworkInterfaces",
        "DescribeLaunchTemplates",
    ] {
        assert!(
            noop.log.iter().all(|e| e.operation.name != unasked),
            "{unasked} asked: {}",
            noop.operations()
        );
    }
    // The upload and its wait, and nothing of the network or the lease.
    assert_eq!(code.log.mutating_applied(), 1, "a code change uploads only");
}

/// A workspace of `count` functions of one stack (`fn-0`, `fn-1`, ...): each
/// `#[fixed_egress(azs = 2)] fn main() {}` for x86_64, so that building them is quick; the
/// emulator never runs them.
fn functions_workspace(count: usize) -> PathBuf {
    let workspace = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("speed-{count}-functions"));
    let members: Vec<String> = (0..count).map(|i| format!("\"fn-{i}\"")).collect();
    let macros = workspace_root().join("fixedip-macros");
    std::fs::create_dir_all(&workspace).unwrap();
    std::fs::write(
        workspace.join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"2\"\nmembers = [{}]\n\n[workspace.dependencies]\nfixedip-macros = {{ path = \"{}\" }}\n",
            members.join(", "),
            macros.display()
        ),
    )
    .unwrap();
    for i in 0..count {
        let package = workspace.join(format!("fn-{i}"));
        std::fs::create_dir_all(package.join("src")).unwrap();
        std::fs::write(
            package.join("Cargo.toml"),
            format!("[package]\nname = \"fn-{i}\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n[dependencies]\nfixedip-macros.workspace = true\n\n[package.metadata.fixedip]\narchitecture = \"x86_64\"\n"),
        )
        .unwrap();
        std::fs::write(
            package.join("src/main.rs"),
            "#[fixedip_macros::fixed_egress(azs = 2)]\nfn main() {}\n",
        )
        .unwrap();
    }
    workspace
}

/// Ten functions of one stack: one build for all, their zips made in parallel, reads growing by
/// one call per function; a no-op redeploy of the ten against one of them alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_functions_cost_about_one() {
    let workspace = functions_workspace(10);
    let lab = Lab::start(scenario(timing_scale())).await;
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("speed-target");
    let run = |args: &[&str]| {
        let mut command = lab.command(args);
        command
            .current_dir(&workspace)
            // Tests never reach the network: cargo resolves the new workspace from the local
            // registry cache, which the workspace's own build filled.
            .env("CARGO_NET_OFFLINE", "true")
            .env("CARGO_TARGET_DIR", &target)
            .env(
                "CARGO_ZIGBUILD_ZIG_PATH",
                workspace_root().join(".venv/zig/bin/zig"),
            );
        command
    };
    let timed = |args: &'static [&'static str], what: &'static str| {
        let mut command = run(args);
        lab.proxy.clear_log();
        let started = Instant::now();
        let output = command.output().expect("cargo-fixedip runs");
        let wall = started.elapsed();
        assert!(
            output.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Figures {
            run: what,
            started,
            wall,
            log: lab.proxy.log(),
        }
    };
    timed(&["deploy", "--quiet", "--workspace"], "fresh deploy of ten");
    // Best of three: the machine is shared; the least disturbed run is the figure.
    let best = |args: &'static [&'static str], what: &'static str| {
        (0..3)
            .map(|_| timed(args, what))
            .min_by_key(|f| f.wall)
            .unwrap()
    };
    let ten = best(
        &["deploy", "--quiet", "--workspace"],
        "no-op, ten functions",
    );
    let one = best(&["deploy", "--quiet", "-p", "fn-0"], "no-op, one function");

    println!("| run | calls | mutating | depth | wall | beyond the NAT's wait | beyond AWS's own chain |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!("{}", one.row(&[]));
    println!("{}", ten.row(&[]));
    println!("{}\n{}", one.chain(), ten.chain());
    println!(
        "ten against one: {:.2}× the wall, {} more calls",
        ten.wall.as_secs_f64() / one.wall.as_secs_f64(),
        ten.log.len() - one.log.len()
    );
    assert_eq!(ten.log.mutating_applied(), 0, "a no-op changes nothing");
    assert!(
        ten.log.len() <= one.log.len() + 9,
        "reads grow by at most one call per function: {} against {}",
        ten.log.len(),
        one.log.len()
    );
    // Read together: as deep as one function's (one more where a loaded machine starts a read
    // after another one's answer).
    assert!(
        ten.depth() <= one.depth() + 1,
        "the functions are read together: {} deep against {}",
        ten.depth(),
        one.depth()
    );
}
