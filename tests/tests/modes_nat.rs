//! The NAT modes (issue 7): `nats = N` (fewer NATs than AZs) and `nat = "none"` (isolated), run
//! as the user runs them (the built CLI against a private moto server) and checked through the
//! real SDK: deploy, a no-op redeploy with zero mutating calls, verify, ips, status, destroy; and
//! switching mode on a live stack without losing an IP.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;

use aws_sdk_ec2::types::{Filter, Tag};
use fixedip_tests::{count, example_dir, example_zip, fixture_zip, fixtures_manifest, Emulator};

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

/// Runs the command, expects exit code 0, and returns its `--json` result.
fn run_json(emulator: &Emulator, args: &[&str]) -> serde_json::Value {
    let mut all: Vec<&str> = args.to_vec();
    all.push("--json");
    let output = run(emulator, &all);
    assert_eq!(
        output.status.code(),
        Some(0),
        "cargo fixedip {args:?}:\n{}",
        stderr(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?} --json: {e}: {stdout}"))
}

fn zip_arg(zip: &Path) -> &str {
    zip.to_str().expect("UTF-8 path")
}

/// `--zip ZIP`, with the fixtures' manifest for a fixture (its package settings live there).
fn zip_args(zip: &Path) -> Vec<String> {
    let mut args = Vec::new();
    if zip != example_zip() {
        args.push("--manifest-path".to_owned());
        args.push(fixtures_manifest().to_str().unwrap().to_owned());
    }
    args.push("--zip".to_owned());
    args.push(zip_arg(zip).to_owned());
    args
}

fn deploy(emulator: &Emulator, zip: &Path) -> serde_json::Value {
    let args = zip_args(zip);
    let args: Vec<&str> = ["deploy"]
        .into_iter()
        .chain(args.iter().map(String::as_str))
        .collect();
    run_json(emulator, &args)
}

fn destroy(emulator: &Emulator, zip: &Path) -> serde_json::Value {
    let args = zip_args(zip);
    let args: Vec<&str> = ["destroy", "--yes"]
        .into_iter()
        .chain(args.iter().map(String::as_str))
        .chain(FAST_POLLS)
        .collect();
    run_json(emulator, &args)
}

/// A second deploy of the same zip: it must make no mutating call.
fn redeploy_changes_nothing(emulator: &Emulator, zip: &Path) {
    let mark = emulator.mark();
    let report = deploy(emulator, zip);
    assert_eq!(report["stacks"][0]["steps"], 0, "{report:#}");
    let calls = emulator.requests_since(mark);
    let mutating: Vec<_> = calls.iter().filter(|c| c.is_mutating()).collect();
    assert!(
        mutating.is_empty(),
        "a no-op redeploy mutated: {mutating:?}"
    );
    assert!(count(&calls).0 > 0);
}

fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

fn by_stack() -> Filter {
    Filter::builder()
        .name("tag:fixedip:stack")
        .values("default")
        .build()
}

/// The default stack's Elastic IPs as the account holds them: IP → `fixedip:address` tag.
async fn stack_ips(emulator: &Emulator) -> BTreeMap<String, String> {
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
        .filter(|a| tag_value(a.tags(), "fixedip:stack") == Some("default"))
        .map(|a| {
            let usage = tag_value(a.tags(), "fixedip:address").unwrap_or("untagged");
            (a.public_ip().unwrap().to_owned(), usage.to_owned())
        })
        .collect()
}

fn ips_with(ips: &BTreeMap<String, String>, usage: &str) -> BTreeSet<String> {
    ips.iter()
        .filter(|(_, u)| u.as_str() == usage)
        .map(|(ip, _)| ip.clone())
        .collect()
}

/// The default stack's network as the account holds it.
#[derive(Debug, PartialEq, Eq)]
struct Network {
    vpcs: usize,
    internet_gateways: usize,
    public_subnets: usize,
    private_subnets: usize,
    /// NAT gateways not `deleted`, by id.
    live_nats: BTreeSet<String>,
    /// Per private route table (by its slot tag): where 0.0.0.0/0 goes, if anywhere.
    private_routes: BTreeMap<String, Option<String>>,
}

async fn network(emulator: &Emulator) -> Network {
    let ec2 = emulator.ec2().await;
    let vpcs = ec2
        .describe_vpcs()
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
    let subnets = ec2
        .describe_subnets()
        .filters(by_stack())
        .send()
        .await
        .unwrap();
    let component = |tags: &[Tag]| tag_value(tags, "fixedip:component").map(str::to_owned);
    let tier = |name: &str| {
        subnets
            .subnets()
            .iter()
            .filter(|s| component(s.tags()).as_deref() == Some(name))
            .count()
    };
    // moto ignores tag filters on NAT gateways: the tags are checked here.
    let nats = ec2.describe_nat_gateways().send().await.unwrap();
    let live_nats = nats
        .nat_gateways()
        .iter()
        .filter(|n| tag_value(n.tags(), "fixedip:stack") == Some("default"))
        .filter(|n| n.state().map(|s| s.as_str()) != Some("deleted"))
        .filter_map(|n| n.nat_gateway_id().map(str::to_owned))
        .collect();
    let tables = ec2
        .describe_route_tables()
        .filters(by_stack())
        .send()
        .await
        .unwrap();
    let private_routes = tables
        .route_tables()
        .iter()
        .filter(|t| component(t.tags()).as_deref() == Some("private-route-table"))
        .map(|t| {
            let out = t
                .routes()
                .iter()
                .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
                .map(|r| {
                    r.nat_gateway_id()
                        .or(r.gateway_id())
                        .unwrap_or("elsewhere")
                        .to_owned()
                });
            let slot = tag_value(t.tags(), "fixedip:slot")
                .unwrap_or("?")
                .to_owned();
            (slot, out)
        })
        .collect();
    Network {
        vpcs: vpcs.vpcs().len(),
        internet_gateways: igws.internet_gateways().len(),
        public_subnets: tier("public-subnet"),
        private_subnets: tier("private-subnet"),
        live_nats,
        private_routes,
    }
}

fn nothing_left() -> Network {
    Network {
        vpcs: 0,
        internet_gateways: 0,
        public_subnets: 0,
        private_subnets: 0,
        live_nats: BTreeSet::new(),
        private_routes: BTreeMap::new(),
    }
}

/// The subnets a function runs in.
async fn function_subnets(emulator: &Emulator, name: &str) -> usize {
    let answer = emulator
        .lambda()
        .await
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
        .expect("GetFunctionConfiguration");
    answer.vpc_config().map_or(0, |v| v.subnet_ids().len())
}

/// The codes of every finding `verify --json` reported, per function.
fn findings(report: &serde_json::Value) -> Vec<(String, String)> {
    report["stacks"][0]["functions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["findings"].as_array().unwrap().iter())
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn one_nat_for_two_azs_deploys_verifies_and_destroys() {
    let emulator = Emulator::start();
    let zip = fixture_zip("egress-one-nat");
    let report = deploy(&emulator, &zip);
    assert_eq!(report["stacks"][0]["isolated"], false);

    let built = network(&emulator).await;
    assert_eq!(built.vpcs, 1);
    assert_eq!(built.internet_gateways, 1);
    assert_eq!((built.public_subnets, built.private_subnets), (1, 2));
    assert_eq!(built.live_nats.len(), 1, "{built:?}");
    let nat = built.live_nats.iter().next().cloned();
    assert_eq!(
        built.private_routes,
        BTreeMap::from([("0".to_owned(), nat.clone()), ("1".to_owned(), nat)]),
        "both AZs leave through the one NAT"
    );
    assert_eq!(function_subnets(&emulator, "egress-one-nat").await, 2);
    let ips = stack_ips(&emulator).await;
    assert_eq!(ips_with(&ips, "active").len(), 1, "{ips:?}");
    assert_eq!(ips.len(), 1);

    redeploy_changes_nothing(&emulator, &zip);

    // It passes, with the cross-AZ dependency named for the AZ without a NAT.
    let verified = run_json(&emulator, &["verify"]);
    assert_eq!(
        verified["stacks"][0]["functions"][0]["passed"], true,
        "{verified:#}"
    );
    assert_eq!(
        findings(&verified),
        [("nat-in-other-az".to_owned(), "warning".to_owned())]
    );

    let status = run(&emulator, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("1 NAT gateway for 2 AZs (nats = 1)"),
        "{text}"
    );

    destroy(&emulator, &zip);
    assert_eq!(network(&emulator).await, nothing_left());
    let kept = stack_ips(&emulator).await;
    assert_eq!(ips_with(&kept, "retained"), ips_with(&ips, "active"));
    assert_eq!(kept.len(), 1);
}

#[tokio::test]
async fn an_isolated_stack_has_no_way_out_and_no_ip() {
    let emulator = Emulator::start();
    let zip = fixture_zip("egress-isolated");
    let report = deploy(&emulator, &zip);
    assert_eq!(report["stacks"][0]["isolated"], true);
    assert_eq!(report["stacks"][0]["ips"], serde_json::json!([]));

    let built = network(&emulator).await;
    assert_eq!(
        built,
        Network {
            vpcs: 1,
            internet_gateways: 0,
            public_subnets: 0,
            private_subnets: 2,
            live_nats: BTreeSet::new(),
            private_routes: BTreeMap::from([("0".to_owned(), None), ("1".to_owned(), None)]),
        }
    );
    assert_eq!(function_subnets(&emulator, "egress-isolated").await, 2);
    assert!(stack_ips(&emulator).await.is_empty());

    redeploy_changes_nothing(&emulator, &zip);

    // `ips`: nothing on stdout, the reason on stderr, exit 0.
    let ips = run(&emulator, &["ips"]);
    assert_eq!(ips.status.code(), Some(0), "{}", stderr(&ips));
    assert!(
        ips.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&ips.stdout)
    );
    assert!(stderr(&ips).contains("is isolated"), "{}", stderr(&ips));
    let json = run_json(&emulator, &["ips"]);
    assert_eq!(
        json,
        serde_json::json!({
            "format_version": 1,
            "ips": [],
            "stacks": [{ "stack": "default", "region": "us-east-1", "isolated": true }]
        })
    );

    // verify reads the mode from the account: no route out is the pass, without `--isolated`.
    let verified = run_json(&emulator, &["verify"]);
    assert_eq!(
        verified["stacks"][0]["functions"][0]["passed"], true,
        "{verified:#}"
    );
    assert!(findings(&verified).is_empty(), "{verified:#}");

    let status = run(&emulator, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("mode: isolated"), "{text}");

    destroy(&emulator, &zip);
    assert_eq!(network(&emulator).await, nothing_left());
    assert!(stack_ips(&emulator).await.is_empty());
}

#[tokio::test]
async fn gateway_to_isolated_and_back_keeps_the_ips() {
    let emulator = Emulator::start();
    deploy(&emulator, example_zip());
    let shown = ips_with(&stack_ips(&emulator).await, "active");
    assert_eq!(shown.len(), 2);

    // Isolated: the routes out, the NATs, the public side and the internet gateway go; the IPs
    // stay, retained.
    let isolated = fixture_zip("egress-isolated");
    deploy(&emulator, &isolated);
    let none = network(&emulator).await;
    assert_eq!(none.internet_gateways, 0, "{none:?}");
    assert_eq!(none.public_subnets, 0, "{none:?}");
    assert!(none.live_nats.is_empty(), "{none:?}");
    assert!(
        none.private_routes.values().all(Option::is_none),
        "{none:?}"
    );
    let kept = stack_ips(&emulator).await;
    assert_eq!(ips_with(&kept, "retained"), shown);
    assert_eq!(kept.len(), 2);
    redeploy_changes_nothing(&emulator, &isolated);
    let ips = run_json(&emulator, &["ips"]);
    assert_eq!(ips["stacks"][0]["isolated"], true);
    assert_eq!(
        ips["ips"].as_array().unwrap().len(),
        2,
        "the retained IPs are listed"
    );

    // Back to gateways: the retained IPs carry traffic again, and no new IP is allocated.
    let mark = emulator.mark();
    deploy(&emulator, example_zip());
    let allocations = emulator
        .requests_since(mark)
        .iter()
        .filter(|r| r.operation == "AllocateAddress")
        .count();
    assert_eq!(allocations, 0);
    let back = stack_ips(&emulator).await;
    assert_eq!(ips_with(&back, "active"), shown);
    assert_eq!(back.len(), 2);
    let gateways = network(&emulator).await;
    assert_eq!(gateways.live_nats.len(), 2);
    assert_eq!(gateways.internet_gateways, 1);
    redeploy_changes_nothing(&emulator, example_zip());
    let verified = run_json(&emulator, &["verify", "--function", "hello-egress"]);
    assert_eq!(
        verified["stacks"][0]["functions"][0]["passed"], true,
        "{verified:#}"
    );
}

#[tokio::test]
async fn two_nats_to_one_and_back_keeps_the_ips() {
    let emulator = Emulator::start();
    deploy(&emulator, example_zip());
    let shown = ips_with(&stack_ips(&emulator).await, "active");
    let before = network(&emulator).await;
    assert_eq!(before.live_nats.len(), 2);

    let one = fixture_zip("egress-one-nat");
    deploy(&emulator, &one);
    let after = network(&emulator).await;
    assert_eq!(after.live_nats.len(), 1, "{after:?}");
    assert!(
        after.live_nats.is_subset(&before.live_nats),
        "the NAT of slot 0 stays"
    );
    assert_eq!(after.public_subnets, 1);
    let nat = after.live_nats.iter().next().cloned();
    assert!(
        after.private_routes.values().all(|to| *to == nat),
        "{after:?}"
    );
    let ips = stack_ips(&emulator).await;
    assert_eq!(
        ips.keys().cloned().collect::<BTreeSet<_>>(),
        shown,
        "no IP is lost"
    );
    assert_eq!(ips_with(&ips, "retained").len(), 1);
    redeploy_changes_nothing(&emulator, &one);

    let mark = emulator.mark();
    deploy(&emulator, example_zip());
    let allocations = emulator
        .requests_since(mark)
        .iter()
        .filter(|r| r.operation == "AllocateAddress")
        .count();
    assert_eq!(allocations, 0, "the retained IP is reused");
    assert_eq!(ips_with(&stack_ips(&emulator).await, "active"), shown);
    assert_eq!(network(&emulator).await.live_nats.len(), 2);
}
