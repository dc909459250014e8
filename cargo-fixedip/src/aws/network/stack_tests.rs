//! The by-tag reader ([`super::describe_stack`]) on moto's answers about stacks that
//! `cargo fixedip deploy` built (`tests/fixtures/stack/<fixture>.json`, recorded by
//! `cargo run -p fixedip-tests --bin record-network-answers`), read on through
//! [`stack_view`] into what the planner sees. What each stack must look like is written here
//! from the fixture function's `#[fixed_egress]`, never taken from the recording.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use fixedip_core::observed::{
    stack_view, AddressUse, InstanceState, NatState, ObservedState, RouteTarget, Tier,
};
use fixedip_core::requirements::{AllocationId, Endpoint, EndpointKind, StackName};

use super::describe_stack;
use super::replay::replaying;

#[derive(serde::Deserialize)]
struct StackFixture {
    stack: String,
    /// An Elastic IP allocated beside the stack, passed to the reader as `ips = [...]` names it.
    adopted: String,
    adopted_ip: Ipv4Addr,
    answers: BTreeMap<String, Vec<String>>,
}

/// The stack the fixture function's deploy built, as the planner sees it, and the fixture.
async fn view(fixture: &str) -> (ObservedState, StackFixture) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stack")
        .join(format!("{fixture}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; record it: cargo build -p fixedip-tests --bins && \
             cargo run -p fixedip-tests --bin record-network-answers -- stack:{fixture}",
            path.display()
        )
    });
    let recorded: StackFixture =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let aws = replaying(&recorded.answers).await;
    let stack = StackName::parse(&recorded.stack).unwrap();
    let adopted = [AllocationId::parse(&recorded.adopted).unwrap()];
    let network = describe_stack(&aws, &stack, &adopted, super::Leftovers::default())
        .await
        .unwrap_or_else(|e| panic!("{fixture}: {e}"));
    let state = stack_view(&stack, "us-east-1", &adopted, &network)
        .unwrap_or_else(|e| panic!("{fixture}: {e}"));
    (state, recorded)
}

/// What every deployed stack has: its VPC with DNS on, an attached internet gateway, a private
/// subnet per slot and a public one in each slot that holds a NAT (the first `nats`), each pair in
/// one AZ, a public table and a private table per slot associated with their subnets, and the
/// functions' security group.
fn assert_common_shape(state: &ObservedState, azs: u8, nats: u8, fixture: &str) {
    let vpc = state.vpc.as_ref().expect("the stack's VPC");
    assert!(vpc.id.starts_with("vpc-"), "{fixture}: {vpc:?}");
    assert!(vpc.dns_support && vpc.dns_hostnames, "{fixture}: {vpc:?}");
    let gateway = state
        .internet_gateway
        .as_ref()
        .expect("an internet gateway");
    assert_eq!(
        gateway.attached_vpc.as_deref(),
        Some(vpc.id.as_str()),
        "{fixture}"
    );
    assert!(state.extra_internet_gateways.is_empty(), "{fixture}");

    assert_eq!(state.subnets.len(), usize::from(azs + nats), "{fixture}");
    for slot in 0..azs {
        let in_slot: Vec<_> = state.subnets.iter().filter(|s| s.slot == slot).collect();
        let tiers: BTreeSet<Tier> = in_slot.iter().map(|s| s.tier).collect();
        let expected = match slot < nats {
            true => BTreeSet::from([Tier::Public, Tier::Private]),
            false => BTreeSet::from([Tier::Private]),
        };
        assert_eq!(tiers, expected, "{fixture} slot {slot}");
        for subnet in in_slot {
            assert_eq!(
                subnet.az,
                state.subnets.iter().find(|s| s.slot == slot).unwrap().az
            );
            assert!(vpc.cidr.contains(&subnet.cidr), "{fixture}: {subnet:?}");
        }
    }
    let azs_used: BTreeSet<&str> = state.subnets.iter().map(|s| s.az.as_str()).collect();
    assert_eq!(
        azs_used.len(),
        usize::from(azs),
        "{fixture}: one AZ per slot"
    );

    let public: Vec<_> = state
        .route_tables
        .iter()
        .filter(|t| t.tier == Tier::Public)
        .collect();
    assert_eq!(public.len(), 1, "{fixture}: one public table");
    assert!(
        public[0]
            .routes
            .iter()
            .any(|r| r.destination.to_string() == "0.0.0.0/0"
                && r.target == RouteTarget::InternetGateway(gateway.id.clone())),
        "{fixture}: {:?}",
        public[0]
    );
    for subnet in &state.subnets {
        let table = state
            .route_tables
            .iter()
            .find(|t| t.associations.iter().any(|a| a.subnet_id == subnet.id))
            .unwrap_or_else(|| panic!("{fixture}: {subnet:?} is associated with no table"));
        assert_eq!(table.tier, subnet.tier, "{fixture}: {subnet:?}");
    }
    let group = state.security_group.as_ref().expect("the functions' group");
    assert!(group.id.starts_with("sg-"), "{fixture}");
}

/// The stack's own addresses, the adopted one apart: every one is active and serves a slot.
fn assert_addresses(state: &ObservedState, recorded: &StackFixture, azs: u8, fixture: &str) {
    let (adopted, own): (Vec<_>, Vec<_>) = state
        .addresses
        .iter()
        .partition(|a| a.allocation_id == recorded.adopted);
    let [adopted] = &adopted[..] else {
        panic!(
            "{fixture}: the adopted address is read by its id: {:?}",
            state.addresses
        )
    };
    assert!(adopted.adopted, "{fixture}: {adopted:?}");
    assert_eq!(adopted.public_ip, recorded.adopted_ip, "{fixture}");
    assert_eq!(adopted.association_id, None, "{fixture}");
    assert_eq!(own.len(), usize::from(azs), "{fixture}: {own:?}");
    for address in own {
        assert_eq!(address.usage, AddressUse::Active, "{fixture}: {address:?}");
        assert!(
            !address.adopted && !address.stale_association,
            "{fixture}: {address:?}"
        );
        assert!(address.slot.is_some(), "{fixture}: {address:?}");
    }
}

/// Where each private table sends 0.0.0.0/0.
fn private_default_targets(state: &ObservedState) -> Vec<RouteTarget> {
    state
        .route_tables
        .iter()
        .filter(|t| t.tier == Tier::Private)
        .map(|t| {
            t.routes
                .iter()
                .find(|r| r.destination.to_string() == "0.0.0.0/0")
                .unwrap_or_else(|| panic!("no default route in {t:?}"))
                .target
                .clone()
        })
        .collect()
}

fn sorted(mut targets: Vec<RouteTarget>) -> Vec<RouteTarget> {
    targets.sort_by_key(|t| format!("{t:?}"));
    targets
}

#[tokio::test]
async fn a_stack_with_a_nat_gateway_per_az_is_read_whole() {
    for (fixture, azs) in [("egress-one", 1), ("endpoints-four", 2)] {
        let (state, recorded) = view(fixture).await;
        assert_common_shape(&state, azs, azs, fixture);
        assert_addresses(&state, &recorded, azs, fixture);
        assert_eq!(state.nat_gateways.len(), usize::from(azs), "{fixture}");
        let nats: Vec<RouteTarget> = state
            .nat_gateways
            .iter()
            .map(|n| {
                assert_eq!(n.state, NatState::Available, "{fixture}: {n:?}");
                let subnet = state.subnets.iter().find(|s| s.id == n.subnet_id).unwrap();
                assert_eq!(
                    (subnet.tier, subnet.slot),
                    (Tier::Public, n.slot),
                    "{fixture}"
                );
                let [allocation] = &n.allocation_ids[..] else {
                    panic!("{n:?}")
                };
                let address = state
                    .addresses
                    .iter()
                    .find(|a| &a.allocation_id == allocation);
                assert_eq!(
                    address.and_then(|a| a.slot),
                    Some(n.slot),
                    "{fixture}: {n:?}"
                );
                RouteTarget::NatGateway(n.id.clone())
            })
            .collect();
        let targets = private_default_targets(&state);
        assert_eq!(targets.len(), usize::from(azs), "{fixture}");
        assert_eq!(sorted(targets), sorted(nats), "{fixture}");
        assert!(state.nat_instances.is_empty(), "{fixture}");
    }
}

#[tokio::test]
async fn a_stack_with_one_nat_for_two_azs_routes_both_through_it() {
    let (state, recorded) = view("egress-one-nat").await;
    assert_common_shape(&state, 2, 1, "egress-one-nat");
    assert_addresses(&state, &recorded, 1, "egress-one-nat");
    let [nat] = &state.nat_gateways[..] else {
        panic!("{:?}", state.nat_gateways)
    };
    assert_eq!(
        private_default_targets(&state),
        vec![RouteTarget::NatGateway(nat.id.clone()); 2]
    );
}

#[tokio::test]
async fn a_stack_of_nat_instances_is_read_with_their_interfaces_and_addresses() {
    let (state, recorded) = view("nat-instance").await;
    assert_common_shape(&state, 2, 2, "nat-instance");
    assert_addresses(&state, &recorded, 2, "nat-instance");
    assert!(state.nat_gateways.is_empty());
    assert_eq!(state.nat_instances.len(), 2, "{:?}", state.nat_instances);
    for instance in &state.nat_instances {
        assert_eq!(instance.state, InstanceState::Running, "{instance:?}");
        assert!(!instance.source_dest_check, "{instance:?}");
        let interface = instance
            .network_interface_id
            .as_deref()
            .expect("its interface");
        let address = state
            .addresses
            .iter()
            .find(|a| a.network_interface_id.as_deref() == Some(interface))
            .unwrap_or_else(|| panic!("no address on {instance:?}"));
        assert_eq!(address.slot, Some(instance.slot), "{instance:?}");
    }
    let targets = private_default_targets(&state);
    let instances: Vec<RouteTarget> = state
        .nat_instances
        .iter()
        .map(|i| RouteTarget::Instance(i.id.clone()))
        .collect();
    assert_eq!(sorted(targets), sorted(instances));
    assert!(state.nat_security_group.is_some());
}

#[tokio::test]
async fn a_stack_s_endpoints_are_read_with_the_tables_and_subnets_they_serve() {
    let (state, _) = view("endpoints-four").await;
    let private_tables: BTreeSet<&str> = state
        .route_tables
        .iter()
        .filter(|t| t.tier == Tier::Private)
        .map(|t| t.id.as_str())
        .collect();
    let private_subnets: BTreeSet<&str> = state
        .subnets
        .iter()
        .filter(|s| s.tier == Tier::Private)
        .map(|s| s.id.as_str())
        .collect();
    let mut served: BTreeMap<Endpoint, (EndpointKind, BTreeSet<&str>)> = BTreeMap::new();
    for endpoint in &state.endpoints {
        let entry = served
            .entry(endpoint.service)
            .or_insert((endpoint.kind, BTreeSet::new()));
        assert_eq!(entry.0, endpoint.kind, "{endpoint:?}");
        match endpoint.kind {
            EndpointKind::Gateway => {
                assert!(endpoint.subnet_ids.is_empty(), "{endpoint:?}");
                entry
                    .1
                    .extend(endpoint.route_table_ids.iter().map(String::as_str));
            }
            EndpointKind::Interface => {
                assert!(endpoint.route_table_ids.is_empty(), "{endpoint:?}");
                entry
                    .1
                    .extend(endpoint.subnet_ids.iter().map(String::as_str));
            }
        }
    }
    let services: BTreeSet<String> = served.keys().map(|s| s.to_string()).collect();
    assert_eq!(
        services,
        ["dynamodb", "logs", "s3", "secretsmanager"]
            .map(String::from)
            .into()
    );
    for (service, (kind, reached)) in &served {
        let expected = match kind {
            EndpointKind::Gateway => &private_tables,
            EndpointKind::Interface => &private_subnets,
        };
        assert_eq!(
            reached, expected,
            "{service}: every private subnet reaches it"
        );
    }
    assert!(state.endpoint_security_group.is_some());
}

#[test]
fn every_recorded_stack_is_checked() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stack");
    let recorded: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("the fixtures")
        .filter_map(|e| Some(e.ok()?.path().file_stem()?.to_str()?.to_owned()))
        .collect();
    let checked = [
        "egress-one",
        "egress-one-nat",
        "endpoints-four",
        "nat-instance",
    ];
    assert_eq!(recorded, checked.iter().map(|s| s.to_string()).collect());
}
