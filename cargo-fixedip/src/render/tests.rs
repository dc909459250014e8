//! The tree and the diagrams of planned networks, built with the planner from plain values. The
//! fixtures' full outputs are snapshots (tests/snapshots.rs); these check what each must say.

use std::net::Ipv4Addr;

use fixedip_core::observed::ObservedState;
use fixedip_core::plan::{FunctionSpec, NetworkModes, StackSpec, Status, DEFAULT_VPC_CIDR};
use fixedip_core::planner;
use fixedip_core::requirements::{AllocationId, AzCount, NatMode, StackName};
use fixedip_core::settings::Architecture;

use super::diagram::{draw, Dot, Mermaid};
use super::graph::{Change, NetworkGraph, NodeKind};
use crate::report::plan::{PlanReport, StackPlan};
use crate::report::FormatVersion;

pub(crate) fn spec(azs: u64, adopted: &[&str], modes: NetworkModes) -> StackSpec {
    StackSpec {
        stack: StackName::parse("payments").unwrap(),
        region: "us-east-1".into(),
        vpc_cidr: DEFAULT_VPC_CIDR,
        azs: AzCount::new(azs).unwrap(),
        adopted_ips: adopted
            .iter()
            .map(|id| AllocationId::parse(id).unwrap())
            .collect(),
        modes,
        functions: vec![FunctionSpec {
            name: "sync".into(),
            package: "sync".into(),
            annotated: "sync::main".into(),
            architecture: Architecture::Arm64,
            memory_mb: 128,
            timeout_s: 30,
            environment: Default::default(),
            tags: Default::default(),
            role: None,
            code_sha256: None,
        }],
    }
}

pub(crate) fn plan_of(spec: &StackSpec) -> fixedip_core::plan::Plan {
    let observed = ObservedState::assumed_offline(&spec.region, &spec.adopted_ips);
    planner::plan(spec, &observed).unwrap()
}

fn report_with(azs: u64, adopted: &[&str], modes: NetworkModes) -> PlanReport {
    let plan = plan_of(&spec(azs, adopted, modes));
    PlanReport {
        format_version: FormatVersion,
        offline: true,
        stacks: vec![StackPlan::new(&plan, false, true)],
    }
}

fn report(azs: u64, adopted: &[&str]) -> PlanReport {
    report_with(azs, adopted, NetworkModes::default())
}

pub(crate) fn plain(text: impl std::fmt::Display) -> String {
    let mut out = Vec::new();
    std::io::Write::write_all(
        &mut anstream::StripStream::new(&mut out),
        text.to_string().as_bytes(),
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}

fn diagrams(report: &PlanReport) -> [String; 2] {
    let drawn: Vec<_> = report.stacks.iter().map(StackPlan::drawn).collect();
    [draw(&Mermaid, &drawn), draw(&Dot, &drawn)]
}

#[test]
fn tree_has_one_branch_per_az_and_aligned_statuses() {
    let text = plain(report(3, &[]));
    assert_eq!(text.matches("── AZ us-east-1").count(), 3, "{text}");
    assert_eq!(text.matches("── NAT gateway").count(), 3, "{text}");
    let columns: Vec<usize> = text
        .lines()
        .filter_map(|line| line.find("+ create").map(|at| line[..at].chars().count()))
        .collect();
    assert!(columns.len() > 10, "{text}");
    assert!(
        columns.iter().all(|c| *c == columns[0]),
        "statuses align:\n{text}"
    );
    assert!(
        text.contains("execution role fixedip-payments-us-east-1-lambda"),
        "{text}"
    );
    assert!(text.contains("3 × NAT gateway"), "{text}");
    assert!(text.contains("λ sync (arm64, 128 MB, 30 s)"), "{text}");
}

#[test]
fn adopted_address_is_named_by_its_allocation_id_offline() {
    let text = plain(report(2, &["eipalloc-0123abcd"]));
    assert!(
        text.contains("Elastic IP eipalloc-0123abcd (from `ips`)"),
        "{text}"
    );
    assert_eq!(
        text.matches("Elastic IP (new address)").count(),
        1,
        "{text}"
    );
}

#[test]
fn steps_are_counted_or_listed() {
    let mut report = report(1, &[]);
    let steps = report.stacks[0].steps.len();
    assert!(plain(&report).contains(&format!("{steps} steps (`-v` lists them)")));
    report.stacks[0].list_steps = true;
    let text = plain(&report);
    assert!(text.contains("\n  create VPC 10.0.0.0/16\n"), "{text}");
    assert!(
        !text.contains("step 1") && !text.contains("(new, step"),
        "steps are named by what they make, never by number: {text}"
    );
    assert!(
        text.contains("associate route table (new, private, us-east-1e) with subnet 10.0.0.0/20 (new, us-east-1e)"),
        "{text}"
    );
}

#[test]
fn diagrams_show_known_addresses() {
    let mut plan = plan_of(&spec(2, &[], NetworkModes::default()));
    let ip = Ipv4Addr::new(203, 0, 113, 7);
    plan.network.azs[1].address = (Some(ip), Status::Keep("eipalloc-1".into()));
    let report = PlanReport {
        format_version: FormatVersion,
        offline: false,
        stacks: vec![StackPlan::new(&plan, false, false)],
    };
    for diagram in diagrams(&report) {
        assert!(diagram.contains("Elastic IP 203.0.113.7"), "{diagram}");
        assert!(diagram.contains("Elastic IP (new address)"), "{diagram}");
        assert!(diagram.contains("λ sync"), "{diagram}");
    }
    let text = plain(&report);
    assert!(text.contains("Elastic IP 203.0.113.7"), "{text}");
}

#[test]
fn fewer_nats_show_the_shared_route_and_the_saving() {
    let modes = NetworkModes {
        nats: Some(1),
        ..NetworkModes::default()
    };
    let report = report_with(2, &[], modes);
    let text = plain(&report);
    assert_eq!(text.matches("── NAT gateway").count(), 1, "{text}");
    assert!(
        text.contains("route table: 0.0.0.0/0 → NAT gateway in us-east-1e (slot 0, shared)"),
        "{text}"
    );
    assert!(text.contains("1 × NAT gateway"), "{text}");
    assert!(
        text.contains(
            "fewer NATs than AZs save $36.50 per month against one NAT gateway per AZ ($73.00)"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "+ $0.02 per GB of the traffic of 1 of 2 AZs, which leaves through another AZ's NAT"
        ),
        "{text}"
    );
    for diagram in diagrams(&report) {
        assert!(!diagram.contains("_nat1"), "{diagram}");
        assert!(
            diagram.contains("s0_priv1 -- \"0.0.0.0/0\" --> s0_nat0")
                || diagram.contains("s0_priv1 -> s0_nat0"),
            "{diagram}"
        );
    }
}

#[test]
fn nat_instances_show_their_price_and_what_they_give_up() {
    let modes = NetworkModes {
        nat: NatMode::Instance,
        ..NetworkModes::default()
    };
    let text = plain(report_with(2, &[], modes));
    // 2 × $0.0042 × 730 = $6.13 for the instances + $7.30 for the two IPs (cost.rs tests).
    assert!(text.contains("2 × NAT instance (t4g.nano)"), "{text}");
    assert_eq!(
        text.matches("── NAT instance (t4g.nano)").count(),
        2,
        "{text}"
    );
    assert!(
        text.contains("0.0.0.0/0 → NAT instance in us-east-1e"),
        "{text}"
    );
    assert!(text.contains("$13.43 per month"), "{text}");
    for given_up in ["bandwidth", "failover", "patching", "root volume"] {
        assert!(text.contains(given_up), "{given_up}: {text}");
    }
    assert!(!text.contains("per GB through the NAT gateways"), "{text}");
}

/// The diagrams once drew "NAT gateway" for `nat = "instance"` while the tree drew the instance:
/// drawn from one graph, every output names what the plan makes.
#[test]
fn every_output_names_the_nat_the_plan_makes() {
    let modes = NetworkModes {
        nat: NatMode::Instance,
        ..NetworkModes::default()
    };
    let report = report_with(2, &[], modes);
    // The cost table (text and JSON) prices NAT gateways too ("0 × NAT gateway"): what draws the
    // network is the tree and the graph.
    let json = serde_json::to_string(&report.stacks[0].network).unwrap();
    let text = plain(&report);
    let tree = text.split("Monthly cost").next().unwrap().to_owned();
    for output in diagrams(&report).into_iter().chain([tree, json]) {
        assert_eq!(
            output.matches("NAT instance (t4g.nano)").count(),
            2,
            "{output}"
        );
        assert!(!output.contains("NAT gateway"), "{output}");
    }
}

#[test]
fn an_isolated_stack_has_no_internet_side() {
    let modes = NetworkModes {
        nat: NatMode::None,
        ..NetworkModes::default()
    };
    let report = report_with(2, &[], modes);
    let text = plain(&report);
    for absent in [
        "internet gateway",
        "NAT gateway",
        "public subnet",
        "Elastic IP",
    ] {
        assert!(!text.contains(&format!("── {absent}")), "{absent}: {text}");
    }
    assert_eq!(
        text.matches("route table: no route out (isolated)").count(),
        2,
        "{text}"
    );
    assert!(text.contains("$0.00 per month"), "{text}");
    assert!(
        text.contains("no NAT gateway: nothing is billed per GB"),
        "{text}"
    );
    for diagram in diagrams(&report) {
        assert!(!diagram.contains("igw"), "{diagram}");
        assert!(!diagram.contains("_nat"), "{diagram}");
        assert!(
            !diagram.contains("> internet"),
            "nothing leads out: {diagram}"
        );
    }
}

/// Every edge joins two nodes of the graph, and every node but the roots sits under one.
#[test]
fn the_graph_holds_together() {
    for modes in [
        NetworkModes::default(),
        NetworkModes {
            nats: Some(1),
            ..NetworkModes::default()
        },
        NetworkModes {
            nat: NatMode::None,
            ..NetworkModes::default()
        },
    ] {
        let graph = NetworkGraph::of(&plan_of(&spec(3, &[], modes)));
        for edge in &graph.edges {
            assert!(graph.node(&edge.from).is_some(), "{edge:?}");
            assert!(graph.node(&edge.to).is_some(), "{edge:?}");
        }
        for node in &graph.nodes {
            match node.kind {
                NodeKind::Vpc | NodeKind::Internet => assert_eq!(node.parent, None),
                _ => {
                    let parent = node.parent.as_deref().expect("a parent");
                    assert!(graph.node(parent).is_some(), "{node:?}");
                }
            }
        }
        let mut ids: Vec<&str> = graph.nodes.iter().map(|n| n.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), graph.nodes.len(), "ids are unique");
        let vpc = graph.node("vpc").unwrap();
        assert_eq!(vpc.status, Some(Change::Create));
    }
}
