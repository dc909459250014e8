//! The network reader on moto's recorded answers: for every way the console network is broken in
//! `fixedip_tests::console`, the answers moto gave to the reader's calls
//! (`tests/fixtures/network/<breakage>.json`, recorded by
//! `cargo run -p fixedip-tests --bin record-network-answers`) are replayed through the real SDK
//! clients, and what `verify` makes of the network the reader builds is checked. No moto runs: the
//! reader's mapping of AWS's answers and the egress rules are tested together in milliseconds, where
//! an end-to-end test built each network with twenty calls first.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use fixedip_core::verify::{self, NatGatewayState, Severity};

use super::{function_attachment, observe_network};
use crate::aws::Aws;

/// What `verify` finds after each breakage: the finding codes, and whether they are only warnings.
const BREAKAGES: [(&str, &[&str]); 18] = [
    ("console-network", &[]),
    ("nat-instance", &[]),
    ("function-in-public-subnets", &["function-in-public-subnet"]),
    ("function-not-in-vpc", &["function-not-in-vpc"]),
    ("default-route-deleted", &["missing-default-route"]),
    // A subnet taken off its table falls back to the main table, which has no route out.
    ("private-subnet-on-main-table", &["missing-default-route"]),
    // moto never marks the route `blackhole`: the gateway's `deleted` state gives it away.
    ("route-to-deleted-nat", &["nat-gateway-deleted"]),
    ("nat-in-other-az", &["nat-in-other-az"]),
    ("private-nat-gateway", &["private-nat-gateway"]),
    (
        "nat-subnet-without-igw-route",
        &["nat-subnet-without-igw-route"],
    ),
    (
        "internet-gateway-detached",
        &["internet-gateway-not-attached"],
    ),
    ("nat-address-not-allowed", &["nat-address-not-allowed"]),
    ("direct-igw-route", &["route-bypasses-nat"]),
    (
        "security-group-egress-removed",
        &["egress-blocked-by-security-groups"],
    ),
    // Without dual stack, an IPv6 route carries none of the function's traffic.
    ("ipv6-egress-only-single-stack", &[]),
    ("ipv6-egress-only-dual-stack", &["ipv6-bypasses-nat"]),
    (
        "nat-instance-source-dest-check",
        &["nat-instance-source-dest-check"],
    ),
    ("nat-instance-stopped", &["nat-instance-not-running"]),
];

/// A recorded breakage: the function verify is asked about, the allowlist, moto's answers.
#[derive(serde::Deserialize)]
struct Fixture {
    function: String,
    allowed: Vec<Ipv4Addr>,
    /// Bodies by operation, in the order the reader received them.
    answers: BTreeMap<String, Vec<String>>,
}

fn fixture(name: &str) -> Fixture {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/network")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; record it: cargo run -p fixedip-tests --bin record-network-answers",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The CLI's clients, answered from a fixture.
async fn replaying(fixture: &Fixture) -> Aws {
    super::replay::replaying(&fixture.answers).await
}

#[tokio::test]
async fn verify_names_what_each_breakage_broke_from_moto_s_answers() {
    for (name, expected) in BREAKAGES {
        let fixture = fixture(name);
        let aws = replaying(&fixture).await;
        let attachment = function_attachment(&aws, &fixture.function)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let network = observe_network(&aws, &attachment)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let findings = verify::check(&network, &attachment, &fixture.allowed);
        let codes: BTreeSet<&str> = findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(
            codes,
            expected.iter().copied().collect(),
            "{name}: {findings:#?}"
        );
        // Only the AZ routed through another AZ's NAT still works: a warning, not an error.
        let warning_only = name == "nat-in-other-az";
        for finding in &findings {
            assert_eq!(
                finding.severity == Severity::Warning,
                warning_only,
                "{name}: {finding:?}"
            );
            assert!(
                !finding.resource.is_empty() && !finding.fix.is_empty(),
                "{name}"
            );
        }
    }
}

#[test]
fn every_recorded_breakage_is_checked() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/network");
    let recorded: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("the fixtures")
        .filter_map(|e| Some(e.ok()?.path().file_stem()?.to_str()?.to_owned()))
        .collect();
    let checked: BTreeSet<String> = BREAKAGES.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(recorded, checked);
}

#[tokio::test]
async fn the_console_network_is_read_whole() {
    let fixture = fixture("console-network");
    let aws = replaying(&fixture).await;
    let attachment = function_attachment(&aws, &fixture.function).await.unwrap();
    assert_eq!(attachment.subnet_ids.len(), 2);
    assert_eq!(attachment.security_group_ids.len(), 1);
    assert!(!attachment.ipv6_allowed_for_dual_stack);
    let network = observe_network(&aws, &attachment).await.unwrap();
    // Four subnets in the VPC (never the default VPC's), the main table and three of the guide's.
    assert_eq!(network.subnets.len(), 4);
    assert_eq!(network.route_tables.len(), 4);
    assert_eq!(network.route_tables.iter().filter(|t| t.main).count(), 1);
    assert_eq!(network.internet_gateways.len(), 1);
    assert!(network.internet_gateways[0].attached_vpc_id().is_some());
    let addresses: BTreeSet<Ipv4Addr> = network
        .nat_gateways
        .iter()
        .inspect(|n| assert_eq!(n.state, NatGatewayState::Available))
        .flat_map(|n| n.addresses.iter().filter_map(|a| a.public_ip))
        .collect();
    assert_eq!(addresses, fixture.allowed.iter().copied().collect());
    assert_eq!(network.security_groups.len(), 1);
    assert!(!network.security_groups[0].egress.is_empty());
}

// One test per resource type: each reader of `from_sdk`, fed moto's recorded answer to its
// Describe call, fills the model as AWS documents the fields.

use fixedip_core::network::{
    InstanceState, NatConnectivity, RouteDestination, RouteTarget, RuleProtocol,
};

/// The recorded answers of the breakage `name`, through the real SDK clients.
async fn answers_of(name: &str) -> Aws {
    replaying(&fixture(name)).await
}

#[tokio::test]
async fn subnets_are_read_with_their_vpc_az_and_cidr() {
    let aws = answers_of("console-network").await;
    let subnets = super::subnets(&aws, Vec::new()).await.unwrap();
    assert!(!subnets.is_empty());
    for subnet in &subnets {
        assert!(subnet.id.starts_with("subnet-"), "{subnet:?}");
        assert!(subnet.vpc_id.starts_with("vpc-"), "{subnet:?}");
        assert!(
            subnet.availability_zone.starts_with("us-east-1"),
            "{subnet:?}"
        );
    }
}

#[tokio::test]
async fn route_tables_keep_ipv6_routes_their_targets_and_the_main_flag() {
    let aws = answers_of("ipv6-egress-only-dual-stack").await;
    let tables = super::route_tables(&aws, Vec::new()).await.unwrap();
    assert!(tables.iter().any(|t| t.main));
    let routes: Vec<_> = tables.iter().flat_map(|t| &t.routes).collect();
    assert!(routes.iter().any(|r| r.target == RouteTarget::Local));
    let v6_out = routes
        .iter()
        .find(|r| r.destination == RouteDestination::Ipv6("::/0".parse().unwrap()))
        .expect("the ::/0 route is kept");
    assert!(
        matches!(&v6_out.target, RouteTarget::EgressOnlyInternetGateway(id) if id.starts_with("eigw-")),
        "{v6_out:?}"
    );
    // Every explicit association names its subnet; the main one is no association here.
    for table in &tables {
        for association in &table.associations {
            assert!(association.id.starts_with("rtbassoc-"), "{association:?}");
            assert!(
                association.subnet_id.starts_with("subnet-"),
                "{association:?}"
            );
        }
    }
}

#[tokio::test]
async fn nat_gateways_are_read_with_state_connectivity_and_addresses() {
    let aws = answers_of("console-network").await;
    let nats = super::nat_gateways(&aws, Vec::new()).await.unwrap();
    assert!(!nats.is_empty());
    for nat in &nats {
        assert_eq!(nat.state, NatGatewayState::Available, "{nat:?}");
        assert_eq!(nat.connectivity, NatConnectivity::Public, "{nat:?}");
        assert!(
            nat.addresses.iter().all(|a| a.public_ip.is_some()),
            "{nat:?}"
        );
    }
    let deleted = answers_of("route-to-deleted-nat").await;
    let nats = super::nat_gateways(&deleted, Vec::new()).await.unwrap();
    assert!(
        nats.iter().any(|n| n.state == NatGatewayState::Deleted),
        "{nats:?}"
    );
    let private = answers_of("private-nat-gateway").await;
    let nats = super::nat_gateways(&private, Vec::new()).await.unwrap();
    assert!(
        nats.iter()
            .any(|n| n.connectivity == NatConnectivity::Private),
        "{nats:?}"
    );
}

#[tokio::test]
async fn internet_gateways_are_attached_only_while_available() {
    let aws = answers_of("console-network").await;
    let gateways = super::internet_gateways(&aws, Vec::new()).await.unwrap();
    assert!(
        gateways.iter().any(|g| g.attached_vpc_id().is_some()),
        "{gateways:?}"
    );
    // Recorded in the reader's order: none attached to the VPC, then the one its routes name.
    let detached = answers_of("internet-gateway-detached").await;
    let attached = super::internet_gateways(&detached, Vec::new())
        .await
        .unwrap();
    assert!(attached.is_empty(), "{attached:?}");
    let named = super::internet_gateways(&detached, Vec::new())
        .await
        .unwrap();
    assert!(!named.is_empty());
    assert!(
        named.iter().all(|g| g.attached_vpc_id().is_none()),
        "{named:?}"
    );
}

#[tokio::test]
async fn instances_are_read_with_state_check_and_interfaces() {
    let aws = answers_of("nat-instance-stopped").await;
    let instances = super::instances(&aws, Vec::new()).await.unwrap();
    let stopped = instances
        .iter()
        .find(|i| i.state == InstanceState::Stopped)
        .expect("the stopped NAT instance");
    assert_eq!(stopped.instance_type, "t3.nano");
    assert!(!stopped.source_dest_check);
    assert!(stopped
        .network_interfaces
        .iter()
        .any(|n| n.device_index == Some(0)));
    let checked = answers_of("nat-instance-source-dest-check").await;
    let instances = super::instances(&checked, Vec::new()).await.unwrap();
    assert!(
        instances.iter().any(|i| i.source_dest_check),
        "{instances:?}"
    );
}

#[tokio::test]
async fn addresses_are_read_with_their_association() {
    let aws = answers_of("nat-instance").await;
    let addresses = super::addresses(&aws, Vec::new()).await.unwrap();
    let [address] = &addresses[..] else {
        panic!("{addresses:?}")
    };
    assert!(address.allocation_id.starts_with("eipalloc-"));
    assert!(address.public_ip.is_some());
    assert!(address
        .association_id
        .as_deref()
        .is_some_and(|a| a.starts_with("eipassoc-")));
    assert!(address
        .network_interface_id
        .as_deref()
        .is_some_and(|n| n.starts_with("eni-")));
    assert!(address
        .instance_id
        .as_deref()
        .is_some_and(|i| i.starts_with("i-")));
}

#[tokio::test]
async fn security_groups_flatten_their_rules_with_ports() {
    let aws = answers_of("console-network").await;
    let groups = super::security_groups(&aws, Vec::new()).await.unwrap();
    let [group] = &groups[..] else {
        panic!("{groups:?}")
    };
    assert!(group
        .egress
        .iter()
        .any(|r| r.protocol == RuleProtocol::All && r.ports.is_none()));
    let removed = answers_of("security-group-egress-removed").await;
    let groups = super::security_groups(&removed, Vec::new()).await.unwrap();
    assert!(groups.iter().all(|g| g.egress.is_empty()), "{groups:?}");
}
