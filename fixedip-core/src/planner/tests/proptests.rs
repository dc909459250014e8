//! Properties of the planner over many stacks: subnets never overlap and lie inside the VPC; the
//! same inputs (in any order) give the same plan; changing the AZ count keeps every slot, CIDR, AZ
//! and address; a deploy killed at any point and run again converges to one set of resources; and a
//! second deploy with nothing changed has no step.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use proptest::prelude::*;

use super::simulate::{
    self, address, apply, apply_in_order, apply_where, check_well_formed, deployed_with, function,
    ALLOW_NEW_IPS,
};
use super::*;
use crate::observed::{AddressUse, NatState, ObservedRoute, ObservedRouteTable, RouteTarget};
use crate::requirements::AzCount;

/// A stack and the account it deploys into.
#[derive(Debug, Clone)]
struct Case {
    spec: StackSpec,
    account: ObservedState,
}

fn vpc_cidr() -> impl Strategy<Value = Ipv4Net> {
    (any::<u32>(), MIN_VPC_PREFIX..=MAX_VPC_PREFIX)
        .prop_map(|(base, prefix)| Ipv4Net::new(Ipv4Addr::from(base), prefix).unwrap().trunc())
}

fn case() -> impl Strategy<Value = Case> {
    let region = prop::sample::select(vec![
        "us-east-1",
        "ap-northeast-1",
        "eu-west-1",
        "cn-north-1",
    ]);
    let zones = prop::sample::subsequence(vec!['a', 'b', 'c', 'd', 'e', 'f'], 1..=6).prop_shuffle();
    let roles = prop::collection::vec(any::<bool>(), 1..=3);
    (
        region,
        zones,
        1..=6u8,
        vpc_cidr(),
        roles,
        0..=3usize,
        0..=3usize,
    )
        .prop_map(
            |(region, zones, azs, vpc_cidr, own_roles, retained, adopted)| {
                let mut account = ObservedState {
                    offered_azs: zones.iter().map(|z| format!("{region}{z}")).collect(),
                    ..ObservedState::default()
                };
                for n in 0..retained {
                    let id = format!("eipalloc-{:08x}", 0xaa00 + n);
                    account
                        .addresses
                        .push(address(&id, n as u8, AddressUse::Retained));
                }
                let mut adopted_ips = Vec::new();
                for n in 0..adopted.min(usize::from(azs)) {
                    let id = format!("eipalloc-{:08x}", 0xff00 - n);
                    account.addresses.push(ObservedAddress {
                        adopted: true,
                        ..address(&id, 100 + n as u8, AddressUse::Retained)
                    });
                    adopted_ips.push(AllocationId::parse(&id).unwrap());
                }
                let functions = own_roles
                    .iter()
                    .enumerate()
                    .map(|(n, own)| FunctionSpec {
                        role: own.then(|| format!("arn:aws:iam::123456789012:role/own-{n}")),
                        ..function(&format!("fn-{n}"))
                    })
                    .collect();
                let spec = StackSpec {
                    stack: StackName::parse("payments").unwrap(),
                    region: region.to_owned(),
                    vpc_cidr,
                    azs: AzCount::new(azs.into()).unwrap(),
                    adopted_ips,
                    modes: NetworkModes::default(),
                    functions,
                };
                Case { spec, account }
            },
        )
}

fn with_azs(spec: &StackSpec, azs: u8) -> StackSpec {
    let mut spec = spec.clone();
    spec.azs = AzCount::new(azs.into()).unwrap();
    spec.adopted_ips.truncate(azs.into());
    spec
}

/// Plans with `--allow-new-ips` (held-back IPs have their own properties), and checks the plan is
/// well formed; `None` when the region has too few AZs, which must be the only reason a generated
/// case fails.
fn try_plan(spec: &StackSpec, account: &ObservedState) -> Option<Plan> {
    try_plan_with(spec, account, &ALLOW_NEW_IPS)
}

fn try_plan_with(spec: &StackSpec, account: &ObservedState, options: &PlanOptions) -> Option<Plan> {
    match plan_with(spec, account, options) {
        Ok(plan) => {
            check_well_formed(&plan);
            Some(plan)
        }
        Err(PlanError::NotEnoughAzs {
            wanted, offered, ..
        }) => {
            assert!(offered.len() < usize::from(wanted));
            None
        }
        Err(other) => panic!("{other}"),
    }
}

/// What a slot is: where it lives and which address and NAT serve it.
fn slots(account: &ObservedState) -> BTreeSet<(Slot, String, Tier, Ipv4Net)> {
    account
        .subnets
        .iter()
        .map(|s| (s.slot, s.az.clone(), s.tier, s.cidr))
        .collect()
}

fn active_addresses(account: &ObservedState) -> BTreeSet<(Slot, String)> {
    account
        .addresses
        .iter()
        .filter(|a| a.usage == AddressUse::Active)
        .map(|a| (a.slot.unwrap(), a.allocation_id.clone()))
        .collect()
}

fn live_nats(account: &ObservedState) -> BTreeSet<(Slot, String)> {
    account
        .nat_gateways
        .iter()
        .map(|n| (n.slot, n.id.clone()))
        .collect()
}

/// A deterministic shuffle, so that a failing case can be replayed.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        items.swap(i, (seed >> 33) as usize % (i + 1));
    }
}

fn shuffled(account: &ObservedState, seed: u64) -> ObservedState {
    let mut account = account.clone();
    shuffle(&mut account.offered_azs, seed);
    shuffle(&mut account.subnets, seed ^ 1);
    shuffle(&mut account.addresses, seed ^ 2);
    shuffle(&mut account.nat_gateways, seed ^ 3);
    shuffle(&mut account.route_tables, seed ^ 4);
    shuffle(&mut account.functions, seed ^ 5);
    for table in &mut account.route_tables {
        shuffle(&mut table.associations, seed ^ 6);
        shuffle(&mut table.routes, seed ^ 7);
    }
    account
}

fn assert_subnets_fit(plan: &Plan) {
    let vpc = plan.network.vpc.0;
    let cidrs: Vec<Ipv4Net> = plan
        .network
        .azs
        .iter()
        .flat_map(|az| [az.public_subnet.0, az.private_subnet.0])
        .collect();
    for (i, a) in cidrs.iter().enumerate() {
        assert!(vpc.contains(a), "{a} lies outside {vpc}");
        for b in &cidrs[i + 1..] {
            assert!(
                !a.contains(&b.network()) && !b.contains(&a.network()),
                "{a} overlaps {b}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn subnets_never_overlap_and_lie_inside_the_vpc(case in case(), grown in 1..=6u8) {
        let Some(first) = try_plan(&case.spec, &case.account) else { return Ok(()) };
        assert_subnets_fit(&first);
        // Also when a stack that exists grows or shrinks.
        let account = apply(&first, &case.account);
        if let Some(second) = try_plan(&with_azs(&case.spec, grown), &account) {
            assert_subnets_fit(&second);
        }
    }

    #[test]
    fn the_same_inputs_in_any_order_give_the_same_plan(
        case in case(),
        grown in 1..=6u8,
        seed in any::<u64>(),
    ) {
        let once = plan(&case.spec, &case.account);
        prop_assert_eq!(&once, &plan(&case.spec, &case.account));
        prop_assert_eq!(&once, &plan(&case.spec, &shuffled(&case.account, seed)));
        let Ok(first) = once else { return Ok(()) };
        let account = apply(&first, &case.account);
        let spec = with_azs(&case.spec, grown);
        prop_assert_eq!(plan(&spec, &account), plan(&spec, &shuffled(&account, seed)));
    }

    #[test]
    fn changing_the_az_count_keeps_every_address(
        case in case(),
        grown in 1..=6u8,
        order in any::<u64>(),
        allow_new_ips in any::<bool>(),
    ) {
        let Some(first) = try_plan(&case.spec, &case.account) else { return Ok(()) };
        let before = apply_in_order(&first, &case.account, Some(order), |_| true);
        let spec = with_azs(&case.spec, grown);
        let options = PlanOptions { allow_new_ips, ..PlanOptions::default() };
        let Some(second) = try_plan_with(&spec, &before, &options) else { return Ok(()) };
        let after = apply_in_order(&second, &before, Some(order ^ 1), |_| true);

        // The slots that stay keep their subnets, address and NAT; the others are gone.
        let stays = |slot: Slot| slot < grown;
        let kept = |set: BTreeSet<(Slot, String)>| {
            set.into_iter().filter(|(slot, _)| stays(*slot)).collect::<BTreeSet<_>>()
        };
        let kept_slots: BTreeSet<_> = slots(&before).into_iter().filter(|s| stays(s.0)).collect();
        prop_assert!(kept_slots.is_subset(&slots(&after)));
        prop_assert!(kept(active_addresses(&before)).is_subset(&active_addresses(&after)));
        prop_assert!(kept(live_nats(&before)).is_subset(&live_nats(&after)));
        prop_assert!(slots(&after).iter().all(|s| stays(s.0)));
        // No address is ever lost: those of removed slots are retained.
        let ids = |a: &ObservedState| {
            a.addresses.iter().map(|x| x.allocation_id.clone()).collect::<BTreeSet<_>>()
        };
        prop_assert!(ids(&before).is_subset(&ids(&after)));
        // A new address is allocated only when no retained or adopted one was left, and carries
        // traffic only when allowed (the stack's IPs were shown by the first deploy).
        let wanted = usize::from(grown);
        let free_before = before.addresses.len() - active_addresses(&before).len();
        let allocated = after.addresses.len() - before.addresses.len();
        let new = wanted.saturating_sub(active_addresses(&before).len()).saturating_sub(free_before);
        prop_assert_eq!(allocated, new);
        let pending = after.addresses.iter().filter(|a| a.usage == AddressUse::Pending).count();
        prop_assert_eq!(pending, if allow_new_ips { 0 } else { new });
        prop_assert_eq!(second.pending_new_ips.len(), pending);
        prop_assert_eq!(live_nats(&after).len(), wanted - pending);
        prop_assert_eq!(active_addresses(&after).len(), wanted - pending);
        // Every slot in its own AZ.
        let azs: BTreeSet<&str> = after.subnets.iter().map(|s| s.az.as_str()).collect();
        prop_assert_eq!(azs.len(), wanted);

        prop_assert!(try_plan_with(&spec, &after, &options).unwrap().is_noop());
    }

    #[test]
    fn a_second_deploy_with_nothing_changed_has_no_step(case in case()) {
        let Some(first) = try_plan(&case.spec, &case.account) else { return Ok(()) };
        let account = apply(&first, &case.account);
        let again = try_plan(&case.spec, &account).unwrap();
        prop_assert!(again.is_noop(), "{:#?}", again.steps);
    }

    #[test]
    fn a_killed_deploy_run_again_converges_to_one_set_of_resources(
        case in case(),
        ran in prop::collection::vec(any::<bool>(), 80),
        order in any::<u64>(),
    ) {
        let Some(first) = try_plan(&case.spec, &case.account) else { return Ok(()) };
        let complete = apply(&first, &case.account);
        let killed =
            apply_in_order(&first, &case.account, Some(order), |step| ran[step.0 % ran.len()]);
        let resumed = deployed_with(&case.spec, &killed, &ALLOW_NEW_IPS);

        prop_assert!(try_plan(&case.spec, &resumed).unwrap().is_noop());
        // The same network as an uninterrupted deploy, ids aside.
        prop_assert_eq!(slots(&resumed), slots(&complete));
        let ips = |a: &ObservedState| {
            a.addresses.iter().filter(|x| !x.allocation_id.contains("step")).map(|x| (x.allocation_id.clone(), x.usage, x.slot)).collect::<Vec<_>>()
        };
        prop_assert_eq!(ips(&resumed), ips(&complete));
        prop_assert_eq!(resumed.addresses.len(), complete.addresses.len());
        prop_assert_eq!(resumed.nat_gateways.len(), complete.nat_gateways.len());
        prop_assert_eq!(resumed.route_tables.len(), complete.route_tables.len());
        prop_assert_eq!(resumed.functions.len(), complete.functions.len());
        prop_assert_eq!(resumed.role.is_some(), complete.role.is_some());
    }
}

#[test]
fn a_deploy_killed_after_each_step_converges() {
    // The exhaustive version of the property above, for one ordinary stack: stop after step k.
    let spec = simulate::spec(2, &["f"]);
    let fresh = simulate::empty();
    let plan = plan(&spec, &fresh).unwrap();
    let complete = simulate::deployed(&spec, &fresh);
    for k in 0..=plan.steps.len() {
        let killed = apply_where(&plan, &fresh, |step| step.0 < k);
        let resumed = simulate::deployed(&spec, &killed);
        assert!(
            super::plan(&spec, &resumed).unwrap().is_noop(),
            "stopped after {k} steps"
        );
        assert_eq!(slots(&resumed), slots(&complete), "stopped after {k} steps");
        assert_eq!(resumed.addresses.len(), 2, "stopped after {k} steps");
    }
}

/// Something that can go wrong in a deployed stack behind fixedip's back.
#[derive(Debug, Clone, Copy)]
enum Drift {
    RouteRemoved(usize),
    RouteBlackholed(usize),
    RouteMisdirected(usize),
    AssociationRemoved(usize),
    NatFailed(usize),
    DnsOff,
    InternetGatewayDetached,
    RolePolicyDetached,
    FunctionResized(usize),
    FunctionDeleted(usize),
}

fn drift() -> impl Strategy<Value = Drift> {
    prop_oneof![
        any::<usize>().prop_map(Drift::RouteRemoved),
        any::<usize>().prop_map(Drift::RouteBlackholed),
        any::<usize>().prop_map(Drift::RouteMisdirected),
        any::<usize>().prop_map(Drift::AssociationRemoved),
        any::<usize>().prop_map(Drift::NatFailed),
        Just(Drift::DnsOff),
        Just(Drift::InternetGatewayDetached),
        Just(Drift::RolePolicyDetached),
        any::<usize>().prop_map(Drift::FunctionResized),
        any::<usize>().prop_map(Drift::FunctionDeleted),
    ]
}

fn default_route(table: &mut ObservedRouteTable) -> Option<&mut ObservedRoute> {
    table.routes.iter_mut().find(|r| r.destination == ANYWHERE)
}

fn suffer(account: &mut ObservedState, drift: Drift) {
    let tables = account.route_tables.len();
    let functions = account.functions.len();
    match drift {
        Drift::RouteRemoved(i) => account.route_tables[i % tables]
            .routes
            .retain(|r| r.destination != ANYWHERE),
        Drift::RouteBlackholed(i) => {
            if let Some(route) = default_route(&mut account.route_tables[i % tables]) {
                route.blackhole = true;
            }
        }
        Drift::RouteMisdirected(i) => {
            if let Some(route) = default_route(&mut account.route_tables[i % tables]) {
                route.target = RouteTarget::Other("pcx-12345678".into());
            }
        }
        Drift::AssociationRemoved(i) => {
            account.route_tables[i % tables].associations.pop();
        }
        Drift::NatFailed(i) => {
            let live: Vec<usize> = (0..account.nat_gateways.len())
                .filter(|n| account.nat_gateways[*n].state == NatState::Available)
                .collect();
            if let Some(&n) = live.get(i % live.len().max(1)) {
                let nat = &mut account.nat_gateways[n];
                nat.state = NatState::Failed;
                let id = nat.id.clone();
                for address in &mut account.addresses {
                    if nat.allocation_ids.contains(&address.allocation_id) {
                        address.association_id = None;
                        address.network_interface_id = None;
                    }
                }
                for table in &mut account.route_tables {
                    if let Some(route) = default_route(table) {
                        if route.target == RouteTarget::NatGateway(id.clone()) {
                            route.blackhole = true;
                        }
                    }
                }
            }
        }
        Drift::DnsOff => account.vpc.as_mut().unwrap().dns_hostnames = false,
        Drift::InternetGatewayDetached => {
            account.internet_gateway.as_mut().unwrap().attached_vpc = None
        }
        Drift::RolePolicyDetached => {
            if let Some(role) = &mut account.role {
                role.attached_policy_arns.pop();
            }
        }
        Drift::FunctionResized(i) => {
            if functions > 0 {
                account.functions[i % functions].memory_mb += 64;
            }
        }
        Drift::FunctionDeleted(i) => {
            if functions > 0 {
                account.functions.remove(i % functions);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn one_deploy_repairs_any_drift_and_keeps_the_ips(
        case in case(),
        drifts in prop::collection::vec(drift(), 1..6),
        order in any::<u64>(),
    ) {
        let Some(first) = try_plan(&case.spec, &case.account) else { return Ok(()) };
        let healthy = apply(&first, &case.account);
        let mut drifted = healthy.clone();
        for drift in drifts {
            suffer(&mut drifted, drift);
        }
        let repair = try_plan(&case.spec, &drifted).unwrap();
        let repaired = apply_in_order(&repair, &drifted, Some(order), |_| true);

        prop_assert!(try_plan(&case.spec, &repaired).unwrap().is_noop());
        prop_assert_eq!(slots(&repaired), slots(&healthy));
        // A failed NAT is replaced, but its slot keeps its address: the allowlist stays valid.
        prop_assert_eq!(active_addresses(&repaired), active_addresses(&healthy));
        prop_assert_eq!(repaired.addresses.len(), healthy.addresses.len());
    }
}
