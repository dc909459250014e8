//! `nat = "instance"`: plans checked on the simulated account (`simulate.rs`), which refuses what
//! AWS refuses (an associated address, a route to an instance that drops forwarded packets, a
//! subnet deleted under an instance...).

use super::nat_instance::{image_parameter, is_graviton, private_half, AL2023_ARM64_PARAMETER};
use super::simulate::{self, deployed, destroyed, empty, spec, ALLOW_NEW_IPS};
use super::*;
use crate::observed::{InstanceState, RouteTarget};
use crate::plan::{Action, Status};
use crate::requirements::NatMode;

fn instance_spec(azs: u8) -> StackSpec {
    let mut spec = spec(azs, &["f"]);
    spec.modes.nat = NatMode::Instance;
    spec
}

pub(super) fn active_ips(account: &ObservedState) -> BTreeSet<String> {
    account
        .addresses
        .iter()
        .map(|a| a.allocation_id.clone())
        .collect()
}

/// Every private subnet routes to a running NAT instance of its own slot, with the check off and
/// the slot's address on it.
fn routes_through_instances(account: &ObservedState) {
    for table in account
        .route_tables
        .iter()
        .filter(|t| t.tier == Tier::Private)
    {
        let route = table.routes.iter().find(|r| r.destination == ANYWHERE);
        let Some(RouteTarget::Instance(id)) = route.map(|r| &r.target) else {
            panic!("{} does not route to an instance: {table:?}", table.id);
        };
        let instance = account.nat_instances.iter().find(|i| i.id == *id).unwrap();
        assert_eq!(Some(instance.slot), table.slot);
        assert!(!instance.source_dest_check);
        let address = account
            .addresses
            .iter()
            .find(|a| a.network_interface_id == instance.network_interface_id)
            .expect("the instance has no Elastic IP");
        assert_eq!(address.slot, Some(instance.slot));
    }
}

#[test]
fn a_fresh_stack_gets_one_instance_per_az_and_a_redeploy_changes_nothing() {
    let spec = instance_spec(2);
    let plan = plan(&spec, &empty()).unwrap();
    let launches: Vec<&Action> = plan
        .steps
        .iter()
        .map(|s| &s.action)
        .filter(|a| matches!(a, Action::LaunchNatInstance { .. }))
        .collect();
    assert_eq!(launches.len(), 2);
    for launch in launches {
        let Action::LaunchNatInstance {
            instance_type,
            image_parameter,
            ..
        } = launch
        else {
            unreachable!()
        };
        assert_eq!(instance_type, "t4g.nano");
        assert_eq!(image_parameter, AL2023_ARM64_PARAMETER);
    }
    assert!(plan
        .steps
        .iter()
        .all(|s| !matches!(s.action, Action::CreateNatGateway { .. })));
    assert_eq!(plan.network.nat_instance_type.as_deref(), Some("t4g.nano"));
    assert_eq!(plan.network.nat_security_group, Some(Status::Create));
    let group = plan.steps.iter().find_map(|s| match &s.action {
        Action::CreateNatSecurityGroup { admit, .. } => Some(*admit),
        _ => None,
    });
    assert_eq!(group, Some("10.0.0.0/17".parse().unwrap()));

    let account = deployed(&spec, &empty());
    assert_eq!(account.nat_instances.len(), 2);
    assert!(account.nat_gateways.is_empty());
    routes_through_instances(&account);
    let again = plan_with(&spec, &account, &PlanOptions::default()).unwrap();
    assert!(again.is_noop(), "{:#?}", again.steps);
}

#[test]
fn the_private_half_admits_every_private_subnet_and_no_public_one() {
    for vpc in ["10.0.0.0/16", "172.20.5.0/24", "10.8.0.0/20"] {
        let vpc: Ipv4Net = vpc.parse().unwrap();
        let admitted = private_half(vpc);
        for slot in 0..LAYOUT_SLOTS {
            let cidrs = slot_cidrs(vpc, slot).unwrap();
            assert!(admitted.contains(&cidrs.private), "{vpc} slot {slot}");
            assert!(
                !admitted.contains(&cidrs.public.network()),
                "{vpc} slot {slot}"
            );
        }
    }
}

#[test]
fn graviton_types_get_the_arm64_image() {
    for arm in ["t4g.nano", "c7gn.medium", "m6gd.large", "c6g.xlarge"] {
        assert!(is_graviton(arm), "{arm}");
    }
    for x86 in ["t3.nano", "t3a.micro", "c5n.large", "m7i.large"] {
        assert!(!is_graviton(x86), "{x86}");
        assert!(image_parameter(x86).ends_with("x86_64"), "{x86}");
    }
}

#[test]
fn a_half_done_instance_is_completed_not_duplicated() {
    let spec = instance_spec(1);
    let mut account = deployed(&spec, &empty());
    // As if the run died after RunInstances: the check is on and the address is not associated.
    account.nat_instances[0].source_dest_check = true;
    for address in &mut account.addresses {
        address.association_id = None;
        address.network_interface_id = None;
    }
    let plan = plan(&spec, &account).unwrap();
    let kinds: Vec<&str> = plan
        .steps
        .iter()
        .map(|s| match s.action {
            Action::DisableSourceDestCheck { .. } => "check",
            Action::AssociateAddress { .. } => "associate",
            Action::AwaitNatInstanceReady { .. } => "ready",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["check", "associate", "ready"]);
    let healed = simulate::apply(&plan, &account);
    routes_through_instances(&healed);
}

#[test]
fn switching_gateway_to_instance_and_back_keeps_the_elastic_ips() {
    let gateway = spec(2, &["f"]);
    let instance = instance_spec(2);
    let first = deployed(&gateway, &empty());
    let ips = active_ips(&first);
    assert_eq!(ips.len(), 2);

    let to_instances = plan(&instance, &first).unwrap();
    assert!(to_instances
        .steps
        .iter()
        .all(|s| !matches!(s.action, Action::AllocateAddress { .. })));
    assert!(to_instances
        .notes
        .iter()
        .any(|n| n.contains("keeping its Elastic IP")));
    let on_instances = deployed(&instance, &first);
    assert_eq!(active_ips(&on_instances), ips);
    assert!(on_instances.nat_gateways.is_empty());
    routes_through_instances(&on_instances);
    assert!(plan(&instance, &on_instances).unwrap().is_noop());

    let back = deployed(&gateway, &on_instances);
    assert_eq!(active_ips(&back), ips);
    assert!(back.nat_instances.is_empty());
    assert!(back.nat_security_group.is_none());
    assert_eq!(back.nat_gateways.len(), 2);
    assert!(plan(&gateway, &back).unwrap().is_noop());
}

#[test]
fn retained_and_adopted_addresses_serve_the_instances() {
    let spec1 = instance_spec(2);
    let account = deployed(&spec1, &empty());
    let ips = active_ips(&account);
    let gone = destroyed(&spec1, &account, &PlanOptions::default());
    assert!(gone.nat_instances.is_empty() && gone.nat_security_group.is_none());
    assert!(gone.vpc.is_none());
    assert_eq!(active_ips(&gone), ips);
    let again = deployed(&spec1, &gone);
    assert_eq!(active_ips(&again), ips);
    routes_through_instances(&again);

    let mut adopting = instance_spec(1);
    let mut account = empty();
    account.addresses.push(ObservedAddress {
        adopted: true,
        ..simulate::address("eipalloc-0000beef", 9, AddressUse::Retained)
    });
    adopting.adopted_ips = vec![AllocationId::parse("eipalloc-0000beef").unwrap()];
    let mine = deployed(&adopting, &account);
    assert_eq!(
        active_ips(&mine),
        BTreeSet::from(["eipalloc-0000beef".to_owned()])
    );
    routes_through_instances(&mine);
    let released = destroyed(
        &adopting,
        &mine,
        &PlanOptions {
            release_ips: true,
            ..PlanOptions::default()
        },
    );
    assert_eq!(
        active_ips(&released),
        BTreeSet::from(["eipalloc-0000beef".to_owned()])
    );
}

#[test]
fn fewer_azs_terminate_the_surplus_instance_and_keep_its_ip() {
    let account = deployed(&instance_spec(3), &empty());
    let ips = active_ips(&account);
    let two = deployed(&instance_spec(2), &account);
    assert_eq!(two.nat_instances.len(), 2);
    assert_eq!(active_ips(&two), ips);
    let retained = two
        .addresses
        .iter()
        .filter(|a| a.usage == AddressUse::Retained);
    assert_eq!(retained.count(), 1);
    routes_through_instances(&two);
}

#[test]
fn an_address_held_by_something_else_is_refused_before_any_change() {
    let spec = instance_spec(1);
    let mut account = empty();
    account.addresses.push(ObservedAddress {
        adopted: true,
        association_id: Some("eipassoc-other".to_owned()),
        network_interface_id: Some("eni-other".to_owned()),
        ..simulate::address("eipalloc-0000beef", 9, AddressUse::Retained)
    });
    let mut adopting = spec.clone();
    adopting.adopted_ips = vec![AllocationId::parse("eipalloc-0000beef").unwrap()];
    let error = plan(&adopting, &account).unwrap_err();
    assert!(
        matches!(error, PlanError::AdoptedAddressInUse { .. }),
        "{error}"
    );
}

/// The private route of each slot: the instance it leads to, by slot of that instance.
fn instance_routes(account: &ObservedState) -> BTreeMap<Slot, Option<Slot>> {
    account
        .route_tables
        .iter()
        .filter(|t| t.tier == Tier::Private)
        .map(|table| {
            let route = table.routes.iter().find(|r| r.destination == ANYWHERE);
            let serving = match route.map(|r| &r.target) {
                Some(RouteTarget::Instance(id)) => account
                    .nat_instances
                    .iter()
                    .find(|i| i.id == *id)
                    .map(|i| i.slot),
                _ => None,
            };
            (table.slot.expect("a private table has a slot"), serving)
        })
        .collect()
}

#[test]
fn fewer_nats_than_azs_share_an_instance_and_lowering_nats_keeps_the_ip() {
    let mut one = instance_spec(2);
    one.modes.nats = Some(1);
    let shared = deployed(&one, &empty());
    assert_eq!(shared.nat_instances.len(), 1);
    assert_eq!(
        instance_routes(&shared),
        BTreeMap::from([(0, Some(0)), (1, Some(0))])
    );
    assert!(plan(&one, &shared).unwrap().is_noop());

    // Two instances, then `nats = 1`: slot 1's route moves to slot 0's instance before its own
    // is terminated; its address stays, retained.
    let two = deployed(&instance_spec(2), &empty());
    let ips = active_ips(&two);
    let lowered = plan(&one, &two).unwrap();
    let terminate = lowered
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::TerminateNatInstance { .. }))
        .expect("slot 1's instance goes");
    assert!(terminate
        .after
        .iter()
        .any(|before| matches!(lowered.steps[before.0].action, Action::ReplaceRoute { .. })));
    let after = deployed(&one, &two);
    assert_eq!(after.nat_instances.len(), 1);
    assert_eq!(active_ips(&after), ips);
    assert_eq!(
        after
            .addresses
            .iter()
            .filter(|a| a.usage == AddressUse::Retained)
            .count(),
        1
    );
    assert_eq!(
        instance_routes(&after),
        BTreeMap::from([(0, Some(0)), (1, Some(0))])
    );
    assert!(plan(&one, &after).unwrap().is_noop());

    // And back to two: the retained address serves slot 1's new instance.
    let again = deployed(&instance_spec(2), &after);
    assert_eq!(active_ips(&again), ips);
    routes_through_instances(&again);
}

#[test]
fn isolating_a_stack_of_instances_terminates_them_and_keeps_the_ips() {
    let account = deployed(&instance_spec(2), &empty());
    let ips = active_ips(&account);
    let mut isolated = spec(2, &["f"]);
    isolated.modes.nat = NatMode::None;
    let after = deployed(&isolated, &account);
    assert!(after.nat_instances.is_empty());
    assert!(after.nat_security_group.is_none());
    assert!(after.internet_gateway.is_none());
    assert_eq!(active_ips(&after), ips);
    assert!(after
        .addresses
        .iter()
        .all(|a| a.usage == AddressUse::Retained));
    assert!(plan(&isolated, &after).unwrap().is_noop());
}

/// Whether step `later` depends on step `earlier`, directly or through others.
fn after(plan: &crate::plan::Plan, later: StepId, earlier: StepId) -> bool {
    let step = &plan.steps[later.0];
    step.after
        .iter()
        .any(|&d| d == earlier || after(plan, d, earlier))
        || step.action.refs().iter().any(|r| match r {
            crate::plan::Ref::Step(d) => *d == earlier || after(plan, *d, earlier),
            _ => false,
        })
}

fn steps_where(plan: &crate::plan::Plan, f: impl Fn(&Action) -> bool) -> Vec<StepId> {
    plan.steps
        .iter()
        .filter(|s| f(&s.action))
        .map(|s| s.id)
        .collect()
}

/// The route goes to a new instance only after it reported ready, and the wait comes after the
/// instance has its way out (the Elastic IP): without it, the boot cannot install nftables.
#[test]
fn the_route_waits_for_the_instance_to_report_ready() {
    let plan = plan(&instance_spec(2), &empty()).unwrap();
    let ready = steps_where(&plan, |a| matches!(a, Action::AwaitNatInstanceReady { .. }));
    assert_eq!(ready.len(), 2);
    let routes = steps_where(&plan, |a| {
        matches!(
            a,
            Action::CreateRoute {
                via: crate::plan::RouteVia::NatInstance(_),
                ..
            }
        )
    });
    assert_eq!(routes.len(), 2);
    for route in routes {
        assert!(ready.iter().any(|&r| after(&plan, route, r)), "{route:?}");
    }
    for associate in steps_where(&plan, |a| matches!(a, Action::AssociateAddress { .. })) {
        assert!(ready.iter().any(|&r| after(&plan, r, associate)));
    }
    // A stack that is complete and routed waits for nothing.
    let deployed = deployed(&instance_spec(2), &empty());
    assert!(plan_is_noop(&instance_spec(2), &deployed));
}

fn plan_is_noop(spec: &StackSpec, account: &ObservedState) -> bool {
    plan(spec, account).unwrap().is_noop()
}

/// gateway → instance: the instance boots on a public IP of its own, and the gateway is deleted
/// only once the instance is ready, so that an instance that never gets ready leaves the slot
/// on its gateway.
#[test]
fn a_switch_deletes_the_gateway_only_after_the_instance_is_ready() {
    let first = deployed(&spec(1, &["f"]), &empty());
    let plan = plan(&instance_spec(1), &first).unwrap();
    let launches: Vec<bool> = plan
        .steps
        .iter()
        .filter_map(|s| match s.action {
            Action::LaunchNatInstance { public_ip, .. } => Some(public_ip),
            _ => None,
        })
        .collect();
    assert_eq!(launches, [true]);
    let ready = steps_where(&plan, |a| matches!(a, Action::AwaitNatInstanceReady { .. }));
    let deleted = steps_where(&plan, |a| matches!(a, Action::DeleteNatGateway { .. }));
    let routed = steps_where(&plan, |a| matches!(a, Action::ReplaceRoute { .. }));
    assert_eq!((ready.len(), deleted.len(), routed.len()), (1, 1, 1));
    assert!(after(&plan, deleted[0], ready[0]));
    assert!(after(&plan, routed[0], deleted[0]));
    // Back to the gateway: the automatic public IP goes off before the Elastic IP leaves, so
    // that the instance the route still names gets no address off the allowlist.
    let on_instance = deployed(&instance_spec(1), &first);
    let back = super::plan(&spec(1, &["f"]), &on_instance).unwrap();
    let dropped = steps_where(&back, |a| matches!(a, Action::DropPublicIp { .. }));
    let disassociated = steps_where(&back, |a| matches!(a, Action::DisassociateAddress { .. }));
    assert_eq!((dropped.len(), disassociated.len()), (1, 1));
    assert!(after(&back, disassociated[0], dropped[0]));
    // A fresh stack's instances get no public IP: their Elastic IP is theirs from the start.
    let fresh = super::plan(&instance_spec(1), &empty()).unwrap();
    assert!(fresh.steps.iter().all(|s| !matches!(
        s.action,
        Action::LaunchNatInstance {
            public_ip: true,
            ..
        }
    )));
}

/// The kinds of a plan's steps, in order, for NAT-instance plans.
fn instance_step_kinds(plan: &crate::plan::Plan) -> Vec<&'static str> {
    plan.steps
        .iter()
        .map(|s| match s.action {
            Action::StartNatInstance { .. } => "start",
            Action::LaunchNatInstance { .. } => "launch",
            Action::DisableSourceDestCheck { .. } => "check",
            Action::AssociateAddress { .. } => "associate",
            Action::DisassociateAddress { .. } => "disassociate",
            Action::AwaitNatInstanceReady { .. } => "ready",
            Action::ReplaceRoute { .. } => "route",
            _ => "other",
        })
        .collect()
}

/// A NAT instance found stopped (by hand, or by AWS retiring its host) still has the slot's
/// route and address: the next deploy starts it and waits for its boot to report ready again,
/// and changes nothing else.
#[test]
fn a_stopped_instance_is_started_and_waited_for_on_its_address() {
    let spec = instance_spec(2);
    let mut account = deployed(&spec, &empty());
    let ips = active_ips(&account);
    for state in [InstanceState::Stopped, InstanceState::Stopping] {
        account.nat_instances[0].state = state;
        let plan = plan(&spec, &account).unwrap();
        assert_eq!(instance_step_kinds(&plan), ["start", "ready"], "{state:?}");
        let started = steps_where(&plan, |a| matches!(a, Action::StartNatInstance { .. }));
        let ready = steps_where(&plan, |a| matches!(a, Action::AwaitNatInstanceReady { .. }));
        assert!(after(&plan, ready[0], started[0]));
        let healed = simulate::apply(&plan, &account);
        routes_through_instances(&healed);
        assert_eq!(active_ips(&healed), ips);
        assert!(plan_is_noop(&spec, &healed));
    }
}

/// A NAT instance terminated under a live stack (by hand, or by AWS) is replaced by the next
/// deploy: a launch of a new client-token generation (the old token would get the terminated
/// instance back), the slot's own address on it, the route moved to it once it is ready.
#[test]
fn a_terminated_instance_is_replaced_on_the_same_address() {
    let spec = instance_spec(2);
    let mut account = deployed(&spec, &empty());
    let ips = active_ips(&account);
    let gone = account.nat_instances[0].clone();
    // The stack's view lists no terminated instance; it counts it, for the next token.
    account.retired.nat_instances.insert(gone.slot, 1);
    // AWS drops the association at termination.
    for address in &mut account.addresses {
        if address.network_interface_id == gone.network_interface_id {
            address.association_id = None;
            address.network_interface_id = None;
        }
    }
    account.nat_instances.retain(|i| i.id != gone.id);
    let plan = plan(&spec, &account).unwrap();
    assert_eq!(
        instance_step_kinds(&plan),
        ["launch", "check", "associate", "ready", "route"]
    );
    let generations: Vec<u32> = plan
        .steps
        .iter()
        .filter_map(|s| match s.action {
            Action::LaunchNatInstance { generation, .. } => Some(generation),
            _ => None,
        })
        .collect();
    assert_eq!(generations, [1]);
    let healed = simulate::apply(&plan, &account);
    routes_through_instances(&healed);
    assert_eq!(active_ips(&healed), ips);
    assert!(plan_is_noop(&spec, &healed));
}

/// gateway → instance in several AZs: no gateway goes before every switching AZ's instance is
/// ready. The executor starts nothing after a failed step, so a gateway deleted before another
/// AZ's instance failed would leave its own AZ routed to a deleted gateway until the next deploy.
#[test]
fn a_switch_deletes_no_gateway_before_every_instance_is_ready() {
    let first = deployed(&spec(3, &["f"]), &empty());
    let plan = plan(&instance_spec(3), &first).unwrap();
    let ready = steps_where(&plan, |a| matches!(a, Action::AwaitNatInstanceReady { .. }));
    let deleted = steps_where(&plan, |a| matches!(a, Action::DeleteNatGateway { .. }));
    assert_eq!((ready.len(), deleted.len()), (3, 3));
    for gateway in &deleted {
        for instance in &ready {
            assert!(
                after(&plan, *gateway, *instance),
                "{gateway:?} {instance:?}"
            );
        }
    }
    let switched = simulate::apply(&plan, &first);
    routes_through_instances(&switched);
    assert_eq!(active_ips(&switched), active_ips(&first));
}

#[test]
fn an_instance_that_served_removed_azs_goes_only_after_the_functions_left_them() {
    // `nats = 1`: the one NAT instance carries three AZs. Back to gateways in one AZ: the
    // instance's own AZ switches to a gateway, the other two are removed. The functions still run
    // in the removed AZs, whose routes lead to the instance, until their configuration moves them
    // out: the instance is terminated only then (the simulator refuses a NAT terminated under a
    // function that still routes through it). Found by the lifecycle property test.
    let mut shared = instance_spec(3);
    shared.modes.nats = Some(1);
    let account = deployed(&shared, &empty());
    let switch = plan(&spec(1, &["f"]), &account).unwrap();
    let terminate = switch
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::TerminateNatInstance { .. }))
        .expect("the instance goes");
    let moved = switch
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::UpdateFunctionConfiguration { .. }))
        .expect("the function leaves the removed AZs");
    assert!(terminate.after.contains(&moved.id), "{switch:#?}");
    let account = simulate::apply(&switch, &account);
    assert!(account.nat_instances.is_empty());
    assert!(plan(&spec(1, &["f"]), &account).unwrap().is_noop());
}

/// Guarantee 1: a new IP carries no traffic until the user allows it. A run with
/// `--allow-new-ips` killed after launching a new AZ's instance but before its address was
/// put to work leaves an instance that never carried the IP: the next deploy without the flag
/// holds the IP back still, in either mode. Found by the lifecycle property test (the instance
/// was taken for a NAT carrying traffic, and a gateway got the pending IP).
#[test]
fn an_instance_launched_without_its_new_ip_keeps_the_ip_held_back() {
    let shown = deployed(&spec(1, &["f"]), &empty());
    // A second AZ: its new IP waits, pending.
    let pending = deployed(&spec(2, &["f"]), &shown);
    let waiting = |account: &ObservedState| {
        let pending = account.addresses.iter().find(|a| a.slot == Some(1));
        pending
            .expect("slot 1 has its address")
            .allocation_id
            .clone()
    };
    let new_ip = waiting(&pending);
    // Allowed, but killed before the address is put to work: the instance is launched.
    let switch = plan_with(&instance_spec(2), &pending, &ALLOW_NEW_IPS).unwrap();
    let killed = simulate::apply_where(&switch, &pending, |step| {
        !matches!(
            switch.step(step).action,
            Action::ActivateAddress { slot: 1, .. }
        )
    });
    assert!(killed.nat_instances.iter().any(|i| i.slot == 1));
    assert_eq!(waiting(&killed), new_ip);
    for next in [spec(2, &["f"]), instance_spec(2)] {
        let plan = plan(&next, &killed).unwrap();
        let uses_new_ip = plan.steps.iter().any(|s| match &s.action {
            Action::ActivateAddress {
                allocation_id,
                held_back,
                ..
            } => *allocation_id == new_ip && !held_back,
            _ => false,
        });
        assert!(!uses_new_ip, "{plan:#?}");
        assert_eq!(plan.pending_new_ips.len(), 1, "{:?}", next.modes);
    }
}

/// A switch from a gateway to an instance killed once the instance was launched, before it was
/// ready, leaves the address on the gateway: a deploy back in gateway mode keeps the gateway
/// and its address where they are (it disassociated the gateway's own address, cutting the slot
/// off), and terminates the instance. Found by the lifecycle property test.
#[test]
fn back_to_gateways_before_the_address_moved_leaves_the_gateway_its_address() {
    let first = deployed(&spec(1, &["f"]), &empty());
    let switch = plan(&instance_spec(1), &first).unwrap();
    let killed = simulate::apply_where(&switch, &first, |step| {
        matches!(
            switch.step(step).action,
            Action::CreateNatSecurityGroup { .. } | Action::LaunchNatInstance { .. }
        )
    });
    assert_eq!(killed.nat_instances.len(), 1);
    let back = plan(&spec(1, &["f"]), &killed).unwrap();
    assert!(
        !back
            .steps
            .iter()
            .any(|s| matches!(s.action, Action::DisassociateAddress { .. })),
        "{back:#?}"
    );
    let done = simulate::apply_in_order(&back, &killed, Some(7), |_| true);
    assert!(done.nat_instances.is_empty());
    assert_eq!(done.nat_gateways, first.nat_gateways);
    assert_eq!(active_ips(&done), active_ips(&first));
    assert!(plan_is_noop(&spec(1, &["f"]), &done));
}

/// An instance launched without a public IP (its address was free) that never got its address
/// nor a route, in a run killed part way, then a deploy back to gateways killed once the
/// gateway holds the address: switched to instances again, that instance could never get ready
/// (no way out to install its NAT setup) and the switch waited for it. The deploy to gateways
/// terminates such an instance, which carries nothing, before the gateway takes the address.
/// Found by the lifecycle property test.
#[test]
fn an_unrouted_instance_goes_before_its_slots_new_gateway() {
    let first = deployed(&spec(1, &["f"]), &empty());
    let up = plan_with(&instance_spec(2), &first, &ALLOW_NEW_IPS).unwrap();
    let launched = simulate::apply_where(&up, &first, |step| {
        !matches!(
            up.step(step).action,
            Action::AssociateAddress { .. } | Action::AwaitNatInstanceReady { .. }
        )
    });
    let unrouted = launched.nat_instances.iter().find(|i| i.slot == 1).unwrap();
    let down = plan(&spec(2, &["f"]), &launched).unwrap();
    let made = steps_where(&down, |a| {
        matches!(a, Action::CreateNatGateway { slot: 1, .. })
    });
    let terminated = steps_where(
        &down,
        |a| matches!(a, Action::TerminateNatInstance { instance } if *instance == unrouted.id),
    );
    assert_eq!((made.len(), terminated.len()), (1, 1), "{down:#?}");
    assert!(after(&down, made[0], terminated[0]));
    // Killed once the gateway is made: switching back waits only for an instance with a way out.
    let killed = simulate::apply_where(&down, &launched, |step| {
        !matches!(down.step(step).action, Action::TerminateNatInstance { .. })
            || terminated.contains(&step)
    });
    let again = plan(&instance_spec(2), &killed).unwrap();
    let switched = simulate::apply(&again, &killed);
    routes_through_instances(&switched);
    assert!(active_ips(&first).is_subset(&active_ips(&switched)));
    assert!(plan_is_noop(&instance_spec(2), &switched));
}
