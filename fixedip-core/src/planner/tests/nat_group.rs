//! `nat-self-healing`: plans checked on the simulated account (`simulate.rs`), which refuses what
//! AWS refuses (an associated address, an attached interface deleted, a route to an interface
//! whose instance has not said ready, a group deleted under a function that routes through it).

use super::nat_instance_tests::active_ips;
use super::simulate::{apply, check_well_formed, deployed, destroyed, empty, spec};
use super::*;
use crate::observed::RouteTarget;
use crate::plan::{Action, Status};
use crate::requirements::NatMode;

fn healing_spec(azs: u8) -> StackSpec {
    let mut spec = spec(azs, &["f"]);
    spec.modes.nat = NatMode::Instance;
    spec.modes.nat_self_healing = true;
    spec
}

fn count(plan: &Plan, what: impl Fn(&Action) -> bool) -> usize {
    plan.steps.iter().filter(|s| what(&s.action)).count()
}

/// Every private subnet routes to its own slot's fixed interface, which holds the slot's
/// address and is attached to the slot's group's instance.
fn routes_through_interfaces(account: &ObservedState) {
    for table in account
        .route_tables
        .iter()
        .filter(|t| t.tier == Tier::Private)
    {
        let route = table.routes.iter().find(|r| r.destination == ANYWHERE);
        let Some(RouteTarget::NetworkInterface(id)) = route.map(|r| &r.target) else {
            panic!("{} does not route to an interface: {table:?}", table.id);
        };
        let interface = account.nat_interfaces.iter().find(|i| i.id == *id).unwrap();
        assert_eq!(Some(interface.slot), table.slot);
        assert!(!interface.source_dest_check);
        let group = account.nat_groups.iter().find(|g| g.slot == interface.slot);
        let group = group.expect("no group in the interface's slot");
        assert_eq!(
            interface.attached_instance.as_ref(),
            group.instances.first().map(|i| &i.id)
        );
        let address = account
            .addresses
            .iter()
            .find(|a| a.network_interface_id.as_deref() == Some(id.as_str()))
            .expect("the interface has no Elastic IP");
        assert_eq!(address.slot, Some(interface.slot));
    }
}

#[test]
fn a_fresh_stack_gets_a_group_of_one_per_az_and_a_redeploy_changes_nothing() {
    let spec = healing_spec(2);
    let plan = plan(&spec, &empty()).unwrap();
    check_well_formed(&plan);
    assert_eq!(
        count(&plan, |a| matches!(a, Action::CreateNatProfile { .. })),
        1
    );
    for kind in [
        (|a: &Action| matches!(a, Action::CreateNatInterface { .. })) as fn(&Action) -> bool,
        |a| matches!(a, Action::AssociateInterfaceAddress { .. }),
        |a| matches!(a, Action::CreateNatLaunchTemplate { .. }),
        |a| matches!(a, Action::CreateNatGroup { .. }),
        |a| matches!(a, Action::AwaitNatGroupReady { .. }),
    ] {
        assert_eq!(count(&plan, kind), 2, "{:#?}", plan.steps);
    }
    assert_eq!(
        count(&plan, |a| matches!(
            a,
            Action::LaunchNatInstance { .. } | Action::CreateNatGateway { .. }
        )),
        0
    );
    let profile = plan.steps.iter().find_map(|s| match &s.action {
        Action::CreateNatProfile { name } => Some(name.clone()),
        _ => None,
    });
    assert_eq!(profile.as_deref(), Some("fixedip-payments-us-east-1-nat"));

    let account = deployed(&spec, &empty());
    assert_eq!(account.nat_groups.len(), 2);
    assert!(account.nat_instances.is_empty() && account.nat_gateways.is_empty());
    routes_through_interfaces(&account);
    let again = plan_with(&spec, &account, &PlanOptions::default()).unwrap();
    assert!(again.is_noop(), "{:#?}", again.steps);
}

/// The route moves to the interface only after the group's instance said ready, and the group
/// starts only once the address is on the interface (its boot waits for it).
#[test]
fn the_route_waits_for_the_ready_line_and_the_group_for_the_address() {
    let plan = plan(&healing_spec(1), &empty()).unwrap();
    let step = |what: fn(&Action) -> bool| plan.steps.iter().find(|s| what(&s.action)).unwrap();
    let ready = step(|a| matches!(a, Action::AwaitNatGroupReady { .. }));
    let group = step(|a| matches!(a, Action::CreateNatGroup { .. }));
    let associated = step(|a| matches!(a, Action::AssociateInterfaceAddress { .. }));
    let route = step(|a| {
        matches!(
            a,
            Action::CreateRoute {
                via: RouteVia::NatInterface(_),
                ..
            }
        )
    });
    assert!(route.after.contains(&ready.id), "{route:?}");
    assert!(ready.after.contains(&group.id));
    assert!(group.after.contains(&associated.id));
}

/// A run killed after the interface and its address leaves them; the next plans only what is
/// missing and never a second interface or association.
#[test]
fn a_run_killed_part_way_is_finished_by_the_next() {
    let spec = healing_spec(1);
    let first = plan(&spec, &empty()).unwrap();
    let cut = first
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::AssociateInterfaceAddress { .. }))
        .unwrap()
        .id;
    let partial = super::simulate::apply_where(&first, &empty(), |id| id <= cut);
    assert_eq!(partial.nat_interfaces.len(), 1);
    let second = plan(&spec, &partial).unwrap();
    assert_eq!(
        count(&second, |a| matches!(
            a,
            Action::CreateNatInterface { .. } | Action::AssociateInterfaceAddress { .. }
        )),
        0,
        "{:#?}",
        second.steps
    );
    let account = apply(&second, &partial);
    routes_through_interfaces(&account);
    assert!(plan(&spec, &account).unwrap().is_noop());
}

/// Destroy removes the group, its template, the interface, the profile; the address is kept.
#[test]
fn destroy_removes_everything_but_the_address() {
    let spec = healing_spec(2);
    let account = deployed(&spec, &empty());
    let plan = plan_destroy(&spec, &account, &PlanOptions::default()).unwrap();
    check_well_formed(&plan);
    let gone = destroyed(&spec, &account, &PlanOptions::default());
    assert!(gone.nat_groups.is_empty());
    assert!(gone.nat_launch_templates.is_empty());
    assert!(gone.nat_interfaces.is_empty());
    assert_eq!(gone.nat_profile, None);
    assert_eq!(gone.addresses.len(), 2);
    assert!(gone
        .addresses
        .iter()
        .all(|a| a.usage == AddressUse::Retained && a.association_id.is_none()));
    assert!(plan.steps.iter().any(
        |s| matches!(&s.action, Action::DeleteNatProfile { name } if name == "fixedip-payments-us-east-1-nat")
    ));
}

/// A slot beyond a lowered `azs` loses its group, template and interface; its address stays.
#[test]
fn a_slot_beyond_azs_loses_its_group() {
    let account = deployed(&healing_spec(2), &empty());
    let smaller = healing_spec(1);
    let plan = plan(&smaller, &account).unwrap();
    check_well_formed(&plan);
    let after = apply(&plan, &account);
    assert_eq!(after.nat_groups.len(), 1);
    assert_eq!(after.nat_interfaces.len(), 1);
    assert_eq!(after.nat_launch_templates.len(), 1);
    assert!(after.nat_profile.is_some());
    assert_eq!(after.addresses.len(), 2);
    routes_through_interfaces(&after);
}

/// A stack of plain NAT instances moves to groups in one deploy, keeping its addresses: the
/// group launches before the address leaves the old instance, the route moves once the group's
/// instance is ready, and the old instance goes last.
#[test]
fn plain_instances_move_to_groups_in_one_deploy_keeping_their_addresses() {
    let mut plain = healing_spec(2);
    plain.modes.nat_self_healing = false;
    let before = deployed(&plain, &empty());
    let ips: BTreeSet<String> = before
        .addresses
        .iter()
        .map(|a| a.allocation_id.clone())
        .collect();
    let spec = healing_spec(2);
    let plan = plan(&spec, &before).unwrap();
    check_well_formed(&plan);
    let step = |what: fn(&Action) -> bool| -> Vec<&crate::plan::Step> {
        plan.steps.iter().filter(|s| what(&s.action)).collect()
    };
    for group in step(|a| matches!(a, Action::CreateNatGroup { .. })) {
        let freed = step(|a| matches!(a, Action::DisassociateAddress { .. }));
        assert!(
            freed.iter().any(|d| d.after.contains(&group.id)),
            "{plan:#?}"
        );
    }
    let after = apply(&plan, &before);
    assert!(
        after.nat_instances.is_empty(),
        "the old instances are terminated"
    );
    routes_through_interfaces(&after);
    let kept: BTreeSet<String> = after
        .addresses
        .iter()
        .map(|a| a.allocation_id.clone())
        .collect();
    assert_eq!(kept, ips);
    assert!(plan_with(&spec, &after, &PlanOptions::default())
        .unwrap()
        .is_noop());
}

/// A move killed anywhere is finished by the next deploy, with the same addresses.
#[test]
fn a_move_killed_part_way_is_finished_by_the_next_deploy() {
    let mut plain = healing_spec(1);
    plain.modes.nat_self_healing = false;
    let before = deployed(&plain, &empty());
    let spec = healing_spec(1);
    let plan = plan(&spec, &before).unwrap();
    for cut in 0..plan.steps.len() {
        let partial = super::simulate::apply_where(&plan, &before, |id| id.0 <= cut);
        let finished = deployed(&spec, &partial);
        routes_through_interfaces(&finished);
        assert!(finished.nat_instances.is_empty(), "cut after step {cut}");
        assert_eq!(finished.addresses.len(), 1);
    }
}

/// After a switch: the same addresses as before it, and a deploy again changes nothing.
fn settled_on_the_same_addresses(spec: &StackSpec, before: &ObservedState, after: &ObservedState) {
    assert_eq!(active_ips(after), active_ips(before));
    assert!(plan_with(spec, after, &PlanOptions::default())
        .unwrap()
        .is_noop());
}

/// A switch keeps the slot's address: the plan neither allocates nor releases one.
fn no_address_allocated_or_released(plan: &Plan) {
    let touched = count(plan, |a| {
        matches!(
            a,
            Action::AllocateAddress { .. }
                | Action::ReleaseAddress { .. }
                | Action::RetainAddress { .. }
        )
    });
    assert_eq!(touched, 0, "{:#?}", plan.steps);
}

/// The steps of one kind.
fn steps_of(plan: &Plan, what: fn(&Action) -> bool) -> Vec<&crate::plan::Step> {
    plan.steps.iter().filter(|s| what(&s.action)).collect()
}

/// Whether `step` comes after `earlier`, directly or through the steps it waits for.
fn after(plan: &Plan, step: StepId, earlier: StepId) -> bool {
    plan.steps[step.0]
        .after
        .iter()
        .any(|before| *before == earlier || after(plan, *before, earlier))
}

/// Every step of the first kind comes after every step of the second (`every`), or after one of
/// them at least (its own slot's).
fn all_after(plan: &Plan, later: fn(&Action) -> bool, earlier: fn(&Action) -> bool, every: bool) {
    let (later, earlier) = (steps_of(plan, later), steps_of(plan, earlier));
    assert!(
        !later.is_empty() && !earlier.is_empty(),
        "{:#?}",
        plan.steps
    );
    for l in &later {
        let waits = |e: &&&crate::plan::Step| after(plan, l.id, e.id);
        let ok = if every {
            earlier.iter().all(|e| waits(&e))
        } else {
            earlier.iter().any(|e| waits(&e))
        };
        assert!(ok, "{l:?} does not wait for {earlier:#?}");
    }
}

/// No self-healing part, no profile, no NAT security group is left.
fn no_group_left(account: &ObservedState) {
    assert!(account.nat_groups.is_empty(), "{:?}", account.nat_groups);
    assert!(account.nat_launch_templates.is_empty());
    assert!(account.nat_interfaces.is_empty());
    assert_eq!(account.nat_profile, None);
}

/// A stack of NAT gateways moves to groups in one deploy, keeping its addresses: every group's
/// instance has attached its interface before any gateway is deleted, each address goes on its interface once its gateway is
/// deleted, the group's instance is waited for after that, and the route after the wait.
#[test]
fn gateways_move_to_groups_in_one_deploy_keeping_their_addresses() {
    let before = deployed(&spec(2, &["f"]), &empty());
    assert_eq!(before.nat_gateways.len(), 2);
    let spec = healing_spec(2);
    let plan = plan(&spec, &before).unwrap();
    check_well_formed(&plan);
    no_address_allocated_or_released(&plan);
    all_after(
        &plan,
        |a| matches!(a, Action::DeleteNatGateway { .. }),
        |a| matches!(a, Action::AwaitNatInterfaceAttached { .. }),
        true,
    );
    for associate in steps_of(&plan, |a| {
        matches!(a, Action::AssociateInterfaceAddress { .. })
    }) {
        let gateways = steps_of(&plan, |a| matches!(a, Action::DeleteNatGateway { .. }));
        assert!(gateways.iter().any(|g| after(&plan, associate.id, g.id)));
    }
    all_after(
        &plan,
        |a| {
            matches!(
                a,
                Action::ReplaceRoute {
                    via: RouteVia::NatInterface(_),
                    ..
                }
            )
        },
        |a| matches!(a, Action::AwaitNatGroupReady { .. }),
        false,
    );
    for ready in steps_of(&plan, |a| matches!(a, Action::AwaitNatGroupReady { .. })) {
        let associated = steps_of(&plan, |a| {
            matches!(a, Action::AssociateInterfaceAddress { .. })
        });
        assert!(associated.iter().any(|s| after(&plan, ready.id, s.id)));
    }
    assert!(plan.notes.iter().any(|n| n.contains("about a minute")));

    let after_switch = apply(&plan, &before);
    assert!(after_switch.nat_gateways.is_empty());
    routes_through_interfaces(&after_switch);
    settled_on_the_same_addresses(&spec, &before, &after_switch);
}

/// A switch from gateways killed after any step is finished by the next deploy, with the same
/// addresses and no gateway left.
#[test]
fn a_switch_from_gateways_killed_part_way_is_finished_by_the_next_deploy() {
    let before = deployed(&spec(2, &["f"]), &empty());
    let spec = healing_spec(2);
    let plan = plan(&spec, &before).unwrap();
    for cut in 0..plan.steps.len() {
        let partial = super::simulate::apply_where(&plan, &before, |id| id.0 <= cut);
        let finished = deployed(&spec, &partial);
        routes_through_interfaces(&finished);
        assert!(finished.nat_gateways.is_empty(), "cut after step {cut}");
        assert_eq!(active_ips(&finished), active_ips(&before));
    }
}

/// Groups move back to NAT gateways in one deploy, keeping their addresses: the address leaves
/// the interface, the gateway takes it, the route moves; then the group, its template, its
/// interface, the profile and the NAT security group go.
#[test]
fn groups_move_to_gateways_in_one_deploy_keeping_their_addresses() {
    let before = deployed(&healing_spec(2), &empty());
    let gateways = spec(2, &["f"]);
    let plan = plan(&gateways, &before).unwrap();
    check_well_formed(&plan);
    no_address_allocated_or_released(&plan);
    for created in steps_of(&plan, |a| matches!(a, Action::CreateNatGateway { .. })) {
        let freed = steps_of(&plan, |a| matches!(a, Action::DisassociateAddress { .. }));
        assert!(freed.iter().any(|d| created.after.contains(&d.id)));
    }
    all_after(
        &plan,
        |a| matches!(a, Action::DeleteNatGroup { .. }),
        |a| matches!(a, Action::CreateNatGateway { .. }),
        false,
    );
    all_after(
        &plan,
        |a| matches!(a, Action::DeleteNatProfile { .. }),
        |a| matches!(a, Action::DeleteNatGroup { .. }),
        true,
    );
    assert_eq!(
        count(&plan, |a| matches!(a, Action::DeleteSecurityGroup { .. })),
        1
    );
    let after_switch = apply(&plan, &before);
    no_group_left(&after_switch);
    assert_eq!(after_switch.nat_security_group, None);
    assert_eq!(after_switch.nat_gateways.len(), 2);
    settled_on_the_same_addresses(&gateways, &before, &after_switch);
}

/// Groups move to plain NAT instances in one deploy, keeping their addresses: each instance
/// boots on a public IP of its own and is ready before any address leaves an interface; then
/// the group, its template, its interface and the profile go; the NAT security group stays.
#[test]
fn groups_move_to_plain_instances_in_one_deploy_keeping_their_addresses() {
    let before = deployed(&healing_spec(2), &empty());
    let mut plain = healing_spec(2);
    plain.modes.nat_self_healing = false;
    let plan = plan(&plain, &before).unwrap();
    check_well_formed(&plan);
    no_address_allocated_or_released(&plan);
    assert!(
        steps_of(&plan, |a| matches!(a, Action::LaunchNatInstance { .. }))
            .iter()
            .all(|s| matches!(
                s.action,
                Action::LaunchNatInstance {
                    public_ip: true,
                    ..
                }
            ))
    );
    all_after(
        &plan,
        |a| matches!(a, Action::DisassociateAddress { .. }),
        |a| matches!(a, Action::AwaitNatInstanceReady { .. }),
        true,
    );
    all_after(
        &plan,
        |a| matches!(a, Action::DeleteNatGroup { .. }),
        |a| matches!(a, Action::AssociateAddress { .. }),
        false,
    );
    let after_switch = apply(&plan, &before);
    no_group_left(&after_switch);
    assert!(after_switch.nat_security_group.is_some());
    assert_eq!(after_switch.nat_instances.len(), 2);
    settled_on_the_same_addresses(&plain, &before, &after_switch);
}

/// A switch out of groups killed after any step is finished by the next deploy, with the same
/// addresses and nothing of the groups left.
#[test]
fn a_switch_out_of_groups_killed_part_way_is_finished_by_the_next_deploy() {
    let before = deployed(&healing_spec(2), &empty());
    let mut plain = healing_spec(2);
    plain.modes.nat_self_healing = false;
    for target in [spec(2, &["f"]), plain] {
        let plan = plan(&target, &before).unwrap();
        for cut in 0..plan.steps.len() {
            let partial = super::simulate::apply_where(&plan, &before, |id| id.0 <= cut);
            let finished = deployed(&target, &partial);
            no_group_left(&finished);
            assert_eq!(
                active_ips(&finished),
                active_ips(&before),
                "cut after step {cut}"
            );
        }
    }
}

/// An incomplete profile (a run killed between its calls) is made again; a complete one kept.
#[test]
fn an_incomplete_profile_is_completed() {
    let spec = healing_spec(1);
    let mut account = deployed(&spec, &empty());
    account.nat_profile.as_mut().unwrap().complete = false;
    let plan = plan(&spec, &account).unwrap();
    assert_eq!(
        plan.steps.iter().map(|s| &s.action).collect::<Vec<_>>(),
        vec![&Action::CreateNatProfile {
            name: "fixedip-payments-us-east-1-nat".into()
        }]
    );
    assert_eq!(
        plan.network.nat_security_group,
        Some(Status::Keep(account.nat_security_group.unwrap().id))
    );
}

/// With `nats = 1`, both AZs leave through slot 0's group; switched to a NAT gateway, the group
/// goes only once every route that led to it has moved (the other AZ's too), and the slot that
/// holds a group counts as holding its NAT (it keeps it, rather than a new NAT elsewhere).
#[test]
fn a_shared_group_goes_after_every_route_that_led_to_it() {
    let mut shared = healing_spec(2);
    shared.modes.nats = Some(1);
    let before = deployed(&shared, &empty());
    assert_eq!(before.nat_groups.len(), 1);
    let mut gateways = spec(2, &["f"]);
    gateways.modes.nats = Some(1);
    let plan = plan(&gateways, &before).unwrap();
    check_well_formed(&plan);
    no_address_allocated_or_released(&plan);
    all_after(
        &plan,
        |a| matches!(a, Action::DeleteNatGroup { .. }),
        |a| matches!(a, Action::ReplaceRoute { .. }),
        true,
    );
    let after_switch = apply(&plan, &before);
    no_group_left(&after_switch);
    assert_eq!(after_switch.nat_gateways.len(), 1);
    settled_on_the_same_addresses(&gateways, &before, &after_switch);
}

/// A destroy killed after the group and the interface went, before the launch template: the
/// template names the deleted interface, so the next deploy deletes it and makes it again for
/// the new interface (AWS refuses a second template of its name) rather than launching a group
/// whose instance has nothing to attach. Found by the lifecycle property test.
#[test]
fn a_template_left_without_its_interface_is_made_again_for_the_new_one() {
    let spec = healing_spec(1);
    let live = deployed(&spec, &empty());
    let ips = active_ips(&live);
    let teardown = plan_destroy(&spec, &live, &PlanOptions::default()).unwrap();
    let killed = simulate::apply_where(&teardown, &live, |step| {
        !matches!(
            teardown.step(step).action,
            Action::DeleteNatLaunchTemplate { .. } | Action::DeleteVpc { .. }
        )
    });
    let stale = killed.nat_launch_templates[0].id.clone();
    assert!(killed.nat_interfaces.is_empty() && killed.nat_groups.is_empty());
    let plan = plan(&spec, &killed).unwrap();
    check_well_formed(&plan);
    let deleted = plan
        .steps
        .iter()
        .find(|s| matches!(&s.action, Action::DeleteNatLaunchTemplate { id } if *id == stale));
    let made = plan
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::CreateNatLaunchTemplate { .. }));
    let (deleted, made) = (deleted.expect("the stale template goes"), made.unwrap());
    assert!(made.after.contains(&deleted.id), "{plan:#?}");
    let healed = apply(&plan, &killed);
    routes_through_interfaces(&healed);
    assert!(ips.is_subset(&active_ips(&healed)));
    assert!(super::plan(&spec, &healed).unwrap().is_noop());
}
