//! One test per rule of the IP lifecycle: shrinking, new IPs held back, the address quota, and
//! destroy. The properties over random sequences are in `proptests.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use super::simulate::{
    self, apply, apply_where, check_well_formed, deployed, deployed_with, destroyed, empty, spec,
    with_stale_associations, ALLOW_NEW_IPS,
};
use super::*;
use crate::observed::{AddressUse, NatState};
use crate::plan::{Action, InterfaceHolder, Status};

fn actions(plan: &Plan) -> Vec<&Action> {
    plan.steps.iter().map(|step| &step.action).collect()
}

/// The kinds of the plan's actions and how many of each, e.g. `{"DeleteSubnet": 2}`.
fn census(plan: &Plan) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for action in actions(plan) {
        let kind = format!("{action:?}");
        let kind = kind.split([' ', '{', '(']).next().unwrap().to_owned();
        *counts.entry(kind).or_default() += 1;
    }
    counts
}

fn expect(kinds: &[(&str, usize)]) -> BTreeMap<String, usize> {
    kinds.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

fn planned(spec: &StackSpec, observed: &ObservedState, options: &PlanOptions) -> Plan {
    let plan = plan_with(spec, observed, options).unwrap();
    check_well_formed(&plan);
    plan
}

fn destroy_plan(spec: &StackSpec, observed: &ObservedState, options: &PlanOptions) -> Plan {
    let plan = plan_destroy(spec, observed, options).unwrap();
    check_well_formed(&plan);
    plan
}

/// Every IP the account holds for the stack.
fn ips(account: &ObservedState) -> BTreeSet<Ipv4Addr> {
    account.addresses.iter().map(|a| a.public_ip).collect()
}

/// The IPs serving NATs, by slot.
fn active_ips(account: &ObservedState) -> BTreeMap<Slot, Ipv4Addr> {
    account
        .addresses
        .iter()
        .filter(|a| a.usage == AddressUse::Active)
        .map(|a| (a.slot.unwrap(), a.public_ip))
        .collect()
}

fn usage_of(account: &ObservedState, ip: Ipv4Addr) -> AddressUse {
    account
        .addresses
        .iter()
        .find(|a| a.public_ip == ip)
        .unwrap()
        .usage
}

/// The step of the first action `pick` matches.
fn step_of(plan: &Plan, pick: impl Fn(&Action) -> bool) -> StepId {
    plan.steps
        .iter()
        .find(|s| pick(&s.action))
        .unwrap_or_else(|| panic!("no such step in {:#?}", plan.steps))
        .id
}

/// Whether `later` waits, directly or not, for `earlier`.
fn waits_for(plan: &Plan, later: StepId, earlier: StepId) -> bool {
    let step = plan.step(later);
    step.after.contains(&earlier) || step.after.iter().any(|a| waits_for(plan, *a, earlier))
}

const DEFAULT: PlanOptions = PlanOptions {
    allow_new_ips: false,
    release_ips: false,
    delete_functions: false,
    force_detach_others: false,
    adopt_functions: false,
};

// Shrinking.

#[test]
fn fewer_azs_remove_the_surplus_slot_and_retain_its_ip() {
    let three = deployed(&spec(3, &["f"]), &empty());
    let plan = planned(&spec(2, &["f"]), &three, &DEFAULT);
    assert_eq!(
        census(&plan),
        expect(&[
            ("ClearLambdaInterfaces", 1),
            ("DeleteNatGateway", 1),
            ("DeleteRouteTable", 1),
            ("DeleteSubnet", 2),
            // The address's association, which the NAT's deletion leaves behind on moto.
            ("DisassociateAddress", 1),
            ("RetainAddress", 1),
            ("UpdateFunctionConfiguration", 1),
        ])
    );
    // In an order AWS accepts: the function leaves the slot before its NAT and interfaces go.
    let moved = step_of(
        &plan,
        |a| matches!(a, Action::UpdateFunctionConfiguration { subnets, .. } if subnets.len() == 2),
    );
    let nat = step_of(&plan, |a| matches!(a, Action::DeleteNatGateway { .. }));
    let retained = step_of(&plan, |a| matches!(a, Action::RetainAddress { .. }));
    let cleared = step_of(&plan, |a| matches!(a, Action::ClearLambdaInterfaces { .. }));
    assert!(waits_for(&plan, nat, moved) && waits_for(&plan, cleared, moved));
    assert!(waits_for(&plan, retained, nat));
    for action in actions(&plan) {
        if let Action::DeleteSubnet { subnet } = action {
            let tier = three.subnets.iter().find(|s| s.id == *subnet).unwrap().tier;
            let step = step_of(&plan, |a| a == action);
            let before = if tier == Tier::Public { nat } else { cleared };
            assert!(waits_for(&plan, step, before), "{action:?}");
        }
    }
    assert_eq!(plan.network.removed_slots.len(), 1);
    assert!(plan.network.surplus_slots.is_empty());
    let third_ip = active_ips(&three)[&2];
    assert!(plan
        .network
        .retained_addresses
        .iter()
        .any(|(_, ip)| *ip == third_ip));
    assert!(
        plan.notes.iter().any(|n| n.contains("slot 2 (us-east-1b)")
            && n.contains(&third_ip.to_string())
            && n.contains("retained")),
        "{:?}",
        plan.notes
    );

    let two = apply(&plan, &three);
    // Slots 0 and 1 untouched, the third IP retained, nothing of slot 2 left.
    assert_eq!(
        active_ips(&two),
        active_ips(&three)
            .into_iter()
            .filter(|(slot, _)| *slot < 2)
            .collect()
    );
    assert_eq!(usage_of(&two, third_ip), AddressUse::Retained);
    assert_eq!(ips(&two), ips(&three));
    assert!(two.subnets.iter().all(|s| s.slot < 2));
    assert!(two.nat_gateways.iter().all(|n| n.slot < 2));
    assert!(planned(&spec(2, &["f"]), &two, &DEFAULT).is_noop());
}

#[test]
fn growing_again_puts_the_retained_ip_back_to_work_without_asking() {
    let three = deployed(&spec(3, &["f"]), &empty());
    let two = deployed(&spec(2, &["f"]), &three);
    // The retained IP was shown: it is not new, so no `--allow-new-ips` is needed.
    let plan = planned(&spec(3, &["f"]), &two, &DEFAULT);
    assert!(plan.pending_new_ips.is_empty());
    assert!(!actions(&plan)
        .iter()
        .any(|a| matches!(a, Action::AllocateAddress { .. })));
    let again = apply(&plan, &two);
    assert_eq!(active_ips(&again), active_ips(&three));
    assert_eq!(ips(&again), ips(&three));
}

#[test]
fn azs_two_three_two_one_two_never_lose_an_ip() {
    let mut account = deployed(&spec(2, &["f"]), &empty());
    let mut shown = ips(&account);
    for azs in [3, 2, 1, 2] {
        account = deployed_with(&spec(azs, &["f"]), &account, &ALLOW_NEW_IPS);
        assert!(shown.is_subset(&ips(&account)), "azs = {azs}");
        shown.extend(ips(&account));
        assert_eq!(active_ips(&account).len(), usize::from(azs));
        assert!(planned(&spec(azs, &["f"]), &account, &DEFAULT).is_noop());
    }
    // Three IPs were ever needed, and three exist: nothing was allocated twice.
    assert_eq!(ips(&account).len(), 3);
}

#[test]
fn a_function_of_another_package_keeps_its_surplus_slot() {
    let three = deployed(&spec(3, &["f", "other"]), &empty());
    let plan = planned(&spec(2, &["f"]), &three, &DEFAULT);
    assert!(plan.network.removed_slots.is_empty());
    assert_eq!(plan.network.surplus_slots.len(), 1);
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("slot 2") && n.contains("other")),
        "{:?}",
        plan.notes
    );
    assert!(!actions(&plan).iter().any(|a| matches!(
        a,
        Action::DeleteNatGateway { .. } | Action::DeleteSubnet { .. }
    )));
    // Its own function stays in all three: nothing moved.
    assert!(plan.is_noop(), "{:#?}", plan.steps);
}

// New IPs.

#[test]
fn a_new_ip_of_a_stack_whose_ips_were_shown_is_held_back() {
    let two = deployed(&spec(2, &["f"]), &empty());
    let plan = planned(&spec(3, &["f"]), &two, &DEFAULT);
    assert_eq!(
        census(&plan),
        // The public subnet joins the public route table; nothing routes to the new IP.
        expect(&[
            ("AllocateAddress", 1),
            ("AssociateRouteTable", 1),
            ("CreateSubnet", 2)
        ])
    );
    let allocation = step_of(&plan, |a| {
        matches!(
            a,
            Action::AllocateAddress {
                slot: 2,
                held_back: true
            }
        )
    });
    let [pending] = &plan.pending_new_ips[..] else {
        panic!("{:?}", plan.pending_new_ips)
    };
    assert_eq!(
        (pending.slot, pending.az.as_str(), &pending.address),
        (2, "us-east-1b", &Ref::Step(allocation))
    );
    assert_eq!(plan.network.azs[2].nat_gateway, Status::HeldBack);
    assert_eq!(plan.network.azs[2].private_route_table, Status::HeldBack);

    // Allocated, tagged pending, shown; the next deploy still routes nothing through it.
    let held = apply(&plan, &two);
    let new = held
        .addresses
        .iter()
        .find(|a| a.usage == AddressUse::Pending)
        .unwrap();
    assert_eq!(new.slot, Some(2));
    let again = planned(&spec(3, &["f"]), &held, &DEFAULT);
    assert!(again.is_noop(), "{:#?}", again.steps);
    let message = again.pending_new_ips[0].to_string();
    assert_eq!(
        message,
        format!(
            "new IP {} allocated for us-east-1b (slot 2); add it to the partner's allowlist, then run `cargo fixedip deploy --allow-new-ips`",
            new.public_ip
        )
    );

    // Allowed: the same IP goes to work; the function moves in once the slot routes out.
    let allowed = planned(&spec(3, &["f"]), &held, &ALLOW_NEW_IPS);
    assert!(allowed.pending_new_ips.is_empty());
    let activated = step_of(
        &allowed,
        |a| matches!(a, Action::ActivateAddress { allocation_id, slot: 2, .. } if *allocation_id == new.allocation_id),
    );
    let nat = step_of(&allowed, |a| matches!(a, Action::CreateNatGateway { .. }));
    assert!(waits_for(&allowed, nat, activated));
    let three = apply(&allowed, &held);
    assert_eq!(active_ips(&three)[&2], new.public_ip);
    assert_eq!(three.functions[0].subnet_ids.len(), 3);
    assert!(planned(&spec(3, &["f"]), &three, &DEFAULT).is_noop());
}

#[test]
fn a_held_back_slot_gets_no_function() {
    let two = deployed(&spec(2, &["f"]), &empty());
    let held = deployed(&spec(3, &["f"]), &two);
    // A configuration change moves the function, but only into subnets that route out.
    let mut spec3 = spec(3, &["f"]);
    spec3.functions[0].memory_mb = 512;
    let plan = planned(&spec3, &held, &DEFAULT);
    let slot2 = held
        .subnets
        .iter()
        .find(|s| s.slot == 2 && s.tier == Tier::Private)
        .unwrap();
    for action in actions(&plan) {
        if let Action::UpdateFunctionConfiguration { subnets, .. } = action {
            assert_eq!(subnets.len(), 2);
            assert!(!subnets.contains(&Ref::Existing(slot2.id.clone())));
        }
    }
}

#[test]
fn a_fresh_stack_routes_its_new_ips_at_once() {
    let plan = planned(&spec(2, &["f"]), &empty(), &DEFAULT);
    assert!(plan.pending_new_ips.is_empty());
    assert_eq!(census(&plan)["CreateNatGateway"], 2);
}

#[test]
fn adopted_ips_mean_the_allowlist_exists_already() {
    let mut spec2 = spec(2, &["f"]);
    spec2.adopted_ips = vec![AllocationId::parse("eipalloc-0000beef").unwrap()];
    let mut account = empty();
    account.addresses.push(ObservedAddress {
        adopted: true,
        ..simulate::address("eipalloc-0000beef", 9, AddressUse::Retained)
    });
    let plan = planned(&spec2, &account, &DEFAULT);
    assert_eq!(plan.pending_new_ips.len(), 1);
    assert_eq!(plan.network.azs[0].nat_gateway, Status::Create);
    assert_eq!(plan.network.azs[1].nat_gateway, Status::HeldBack);
}

/// A pending IP was shown but never allowed: the partner may not have it on the allowlist.
/// Removing its slot keeps it pending (not retained, which a later run would put to work at
/// once), so that the next slot that takes it holds it back again until `--allow-new-ips`.
#[test]
fn a_pending_ip_of_a_removed_slot_stays_pending_until_allowed() {
    let two = deployed(&spec(2, &["f"]), &empty());
    let held = deployed(&spec(3, &["f"]), &two);
    let pending = held
        .addresses
        .iter()
        .find(|a| a.usage == AddressUse::Pending)
        .unwrap()
        .public_ip;
    let back = deployed(&spec(2, &["f"]), &held);
    assert_eq!(usage_of(&back, pending), AddressUse::Pending);
    assert!(back.subnets.iter().all(|s| s.slot < 2));
    assert!(back.addresses.iter().all(|a| a.slot.is_none_or(|s| s < 2)));

    // Three AZs again, without --allow-new-ips: the same IP, held back, no NAT for it.
    let again = planned(&spec(3, &["f"]), &back, &DEFAULT);
    assert!(
        !actions(&again)
            .iter()
            .any(|a| matches!(a, Action::AllocateAddress { .. })),
        "{:#?}",
        again.steps
    );
    assert_eq!(
        again
            .pending_new_ips
            .iter()
            .map(|p| p.public_ip)
            .collect::<Vec<_>>(),
        [Some(pending)]
    );
    assert_eq!(again.network.azs[2].nat_gateway, Status::HeldBack);
    let held_again = deployed(&spec(3, &["f"]), &back);
    assert_eq!(usage_of(&held_again, pending), AddressUse::Pending);
    assert_eq!(held_again.nat_gateways.len(), 2);

    // Allowed: it goes to work, and nothing new is allocated.
    let allowed = deployed_with(&spec(3, &["f"]), &held_again, &ALLOW_NEW_IPS);
    assert_eq!(usage_of(&allowed, pending), AddressUse::Active);
    assert_eq!(ips(&allowed), ips(&held));
}

// The Elastic IP quota.

#[test]
fn an_address_quota_too_small_is_refused_before_any_step() {
    let mut account = empty();
    account.address_quota = Some(5);
    account.addresses_in_use_in_region = Some(4);
    let err = plan(&spec(2, &["f"]), &account).unwrap_err();
    assert_eq!(
        err,
        PlanError::AddressQuota {
            region: "us-east-1".into(),
            quota: 5,
            in_use: 4,
            needed: 2
        }
    );
    assert!(err.to_string().contains("L-0263D0A3"), "{err}");
    account.addresses_in_use_in_region = Some(3);
    planned(&spec(2, &["f"]), &account, &DEFAULT);

    // Reusing a retained address needs no room.
    let mut two = deployed(&spec(2, &["f"]), &empty());
    let one = deployed(&spec(1, &["f"]), &two);
    two = one.clone();
    two.address_quota = Some(2);
    two.addresses_in_use_in_region = Some(2);
    planned(&spec(2, &["f"]), &two, &DEFAULT);
    // A held-back allocation counts too: it allocates.
    let err = plan(&spec(3, &["f"]), &two).unwrap_err();
    assert!(
        matches!(err, PlanError::AddressQuota { needed: 1, .. }),
        "{err}"
    );
}

// An association a deleted NAT left behind (issue 14; `ip_stability` once failed on it with
// "Resource ... is already associated").

/// 3 AZs → 2, killed right after the NAT gateway of slot 2 is deleted, on the emulator (the
/// address keeps its association): the run that finishes the shrink disassociates the address
/// before it retains it.
#[test]
fn a_stale_association_is_removed_before_the_address_is_retained() {
    let three = deployed(&spec(3, &["f"]), &empty());
    let shrink = planned(&spec(2, &["f"]), &three, &DEFAULT);
    let nat_deleted = step_of(&shrink, |a| matches!(a, Action::DeleteNatGateway { .. }));
    let killed = apply_where(&shrink, &three, |step| step <= nat_deleted);
    let killed = with_stale_associations(&killed, &three);
    let stale = killed
        .addresses
        .iter()
        .find(|a| a.stale_association)
        .unwrap();

    let resumed = planned(&spec(2, &["f"]), &killed, &DEFAULT);
    let disassociated = step_of(
        &resumed,
        |a| matches!(a, Action::DisassociateAddress { association_id } if Some(association_id) == stale.association_id.as_ref()),
    );
    let retained = step_of(&resumed, |a| matches!(a, Action::RetainAddress { .. }));
    assert!(waits_for(&resumed, retained, disassociated));
    let two = apply(&resumed, &killed);
    assert_eq!(usage_of(&two, stale.public_ip), AddressUse::Retained);
    assert!(planned(&spec(2, &["f"]), &two, &DEFAULT).is_noop());
}

/// 3 AZs → 2 → 3 on the emulator, the shrink's DisassociateAddress lost: growing again puts the
/// same IP back to work, disassociated before its new NAT gateway takes it.
#[test]
fn a_stale_association_is_removed_before_the_address_serves_a_new_nat() {
    let three = deployed(&spec(3, &["f"]), &empty());
    let before = active_ips(&three);
    let shrink = planned(&spec(2, &["f"]), &three, &DEFAULT);
    let two = apply_where(&shrink, &three, |step| {
        !matches!(shrink.step(step).action, Action::DisassociateAddress { .. })
    });
    let two = with_stale_associations(&two, &three);
    let stale = two.addresses.iter().find(|a| a.stale_association).unwrap();
    assert_eq!(
        stale.usage,
        AddressUse::Active,
        "retained waits for the disassociation"
    );

    let grow = planned(&spec(3, &["f"]), &two, &DEFAULT);
    let disassociated = step_of(&grow, |a| matches!(a, Action::DisassociateAddress { .. }));
    let nat = step_of(&grow, |a| matches!(a, Action::CreateNatGateway { .. }));
    assert!(waits_for(&grow, nat, disassociated));
    let three_again = apply(&grow, &two);
    assert_eq!(active_ips(&three_again), before);
}

// Destroy.

#[test]
fn destroy_removes_the_network_in_an_order_aws_accepts_and_keeps_the_ips() {
    let account = deployed(&spec(2, &["f"]), &empty());
    let plan = destroy_plan(&spec(2, &["f"]), &account, &DEFAULT);
    assert_eq!(
        census(&plan),
        expect(&[
            ("ClearLambdaInterfaces", 3),
            ("DeleteInternetGateway", 1),
            ("DeleteNatGateway", 2),
            ("DeleteRouteTable", 3),
            ("DeleteSecurityGroup", 1),
            ("DeleteSubnet", 4),
            ("DeleteVpc", 1),
            ("DetachFunction", 1),
            ("DisassociateAddress", 2),
            ("RetainAddress", 2),
        ])
    );
    // The detached function still uses the role: it stays.
    assert!(matches!(plan.network.role, Some(Status::Keep(_))));
    assert!(
        plan.notes.iter().any(|n| n.contains("role")),
        "{:?}",
        plan.notes
    );
    assert_eq!(plan.network.retained_addresses.len(), 2);
    assert!(plan.network.released_addresses.is_empty());

    let after = apply(&plan, &account);
    assert_eq!(after.vpc, None);
    assert_eq!(after.internet_gateway, None);
    assert!(after.subnets.is_empty() && after.route_tables.is_empty());
    assert!(after.nat_gateways.is_empty() && after.security_group.is_none());
    assert!(after.functions[0].subnet_ids.is_empty());
    assert_eq!(ips(&after), ips(&account));
    assert!(after
        .addresses
        .iter()
        .all(|a| a.usage == AddressUse::Retained && a.slot.is_none()));
    assert!(destroy_plan(&spec(2, &["f"]), &after, &DEFAULT).is_noop());
}

#[test]
fn destroy_then_deploy_gives_the_same_ips() {
    let account = deployed(&spec(2, &["f"]), &empty());
    let gone = destroyed(&spec(2, &["f"]), &account, &DEFAULT);
    let plan = planned(&spec(2, &["f"]), &gone, &DEFAULT);
    assert!(plan.pending_new_ips.is_empty());
    let back = apply(&plan, &gone);
    assert_eq!(
        active_ips(&back).values().collect::<BTreeSet<_>>(),
        active_ips(&account).values().collect::<BTreeSet<_>>()
    );
    assert_eq!(ips(&back), ips(&account));
}

#[test]
fn destroy_with_delete_functions_deletes_them_and_the_role() {
    let account = deployed(&spec(1, &["f"]), &empty());
    let options = PlanOptions {
        delete_functions: true,
        ..DEFAULT
    };
    let plan = destroy_plan(&spec(1, &["f"]), &account, &options);
    let deleted = step_of(&plan, |a| matches!(a, Action::DeleteFunction { .. }));
    let role = step_of(&plan, |a| matches!(a, Action::DeleteRole { .. }));
    assert!(waits_for(&plan, role, deleted));
    let Action::DeleteRole { policy_arns, .. } = &plan.step(role).action else {
        unreachable!()
    };
    assert_eq!(policy_arns.len(), 2);
    let after = apply(&plan, &account);
    assert!(after.functions.is_empty() && after.role.is_none());
    assert_eq!(after.addresses.len(), 1);
}

#[test]
fn destroy_with_release_ips_releases_all_but_adopted_ones() {
    let mut spec2 = spec(2, &["f"]);
    spec2.adopted_ips = vec![AllocationId::parse("eipalloc-0000beef").unwrap()];
    let mut account = empty();
    account.addresses.push(ObservedAddress {
        adopted: true,
        ..simulate::address("eipalloc-0000beef", 9, AddressUse::Retained)
    });
    let account = deployed_with(&spec2, &account, &ALLOW_NEW_IPS);
    assert_eq!(account.addresses.len(), 2);
    let options = PlanOptions {
        release_ips: true,
        ..DEFAULT
    };
    let plan = destroy_plan(&spec2, &account, &options);
    let [(_, released)] = &plan.network.released_addresses[..] else {
        panic!("{:?}", plan.network.released_addresses)
    };
    assert_ne!(*released, Ipv4Addr::new(203, 0, 113, 9));
    assert!(
        plan.notes.iter().any(|n| n.contains("eipalloc-0000beef")),
        "{:?}",
        plan.notes
    );
    // Released only once the NAT holding it is deleted and its association gone.
    let release = step_of(&plan, |a| matches!(a, Action::ReleaseAddress { .. }));
    let freed = plan.step(release).after.clone();
    assert_eq!(freed.len(), 2);
    assert!(matches!(
        plan.step(freed[0]).action,
        Action::DeleteNatGateway { .. }
    ));
    assert!(matches!(
        plan.step(freed[1]).action,
        Action::DisassociateAddress { .. }
    ));
    assert_eq!(plan.step(freed[1]).after, [freed[0]]);
    let after = apply(&plan, &account);
    let [kept] = &after.addresses[..] else {
        panic!("{:?}", after.addresses)
    };
    assert_eq!(
        (kept.allocation_id.as_str(), kept.usage, kept.adopted),
        ("eipalloc-0000beef", AddressUse::Retained, true)
    );
}

#[test]
fn destroy_refuses_while_functions_of_other_packages_run_in_the_stack() {
    let account = deployed(&spec(2, &["f", "other", "third"]), &empty());
    let err = plan_destroy(&spec(2, &["f"]), &account, &DEFAULT).unwrap_err();
    assert_eq!(
        err,
        PlanError::OtherFunctionsAttached {
            stack: StackName::parse("payments").unwrap(),
            functions: vec!["other".into(), "third".into()],
        }
    );
    assert!(err.to_string().contains("--force-detach-others"), "{err}");

    let options = PlanOptions {
        force_detach_others: true,
        delete_functions: true,
        ..DEFAULT
    };
    let plan = destroy_plan(&spec(2, &["f"]), &account, &options);
    let after = apply(&plan, &account);
    // Ours deleted, theirs detached and never deleted; their role stays with them.
    let names: Vec<&str> = after.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["other", "third"]);
    assert!(after.functions.iter().all(|f| f.subnet_ids.is_empty()));
    assert!(after.role.is_some());
}

#[test]
fn destroy_waits_for_a_nat_already_deleting_before_releasing_its_ip() {
    let account = deployed(&spec(1, &["f"]), &empty());
    let mut deleting = account.clone();
    deleting.nat_gateways[0].state = NatState::Deleting;
    let options = PlanOptions {
        release_ips: true,
        ..DEFAULT
    };
    let plan = destroy_plan(&spec(1, &["f"]), &deleting, &options);
    let nat = step_of(&plan, |a| matches!(a, Action::DeleteNatGateway { .. }));
    let release = step_of(&plan, |a| matches!(a, Action::ReleaseAddress { .. }));
    assert!(waits_for(&plan, release, nat));
    assert!(apply(&plan, &deleting).addresses.is_empty());
}

#[test]
fn destroy_deletes_a_failed_nat_too() {
    let account = deployed(&spec(2, &["f"]), &empty());
    let mut failed = account.clone();
    failed.nat_gateways[1].state = NatState::Failed;
    failed.addresses[1].association_id = None;
    let plan = destroy_plan(&spec(2, &["f"]), &failed, &DEFAULT);
    assert_eq!(census(&plan)["DeleteNatGateway"], 2);
    let after = apply(&plan, &failed);
    assert!(after.nat_gateways.is_empty() && after.vpc.is_none());
    assert_eq!(after.addresses.len(), 2);
}

#[test]
fn destroy_refuses_to_release_an_ip_something_else_holds() {
    let account = deployed(&spec(1, &["f"]), &empty());
    let mut elsewhere = destroyed(&spec(1, &["f"]), &account, &DEFAULT);
    elsewhere.addresses[0].association_id = Some("eipassoc-0ther".into());
    let options = PlanOptions {
        release_ips: true,
        ..DEFAULT
    };
    let err = plan_destroy(&spec(1, &["f"]), &elsewhere, &options).unwrap_err();
    assert!(
        matches!(&err, PlanError::ReleaseOfAddressInUse { association, .. } if association == "eipassoc-0ther"),
        "{err}"
    );
    // Keeping it needs nothing from it.
    assert!(destroy_plan(&spec(1, &["f"]), &elsewhere, &DEFAULT).is_noop());
}

#[test]
fn destroy_killed_after_each_step_finishes_when_run_again() {
    for options in [
        DEFAULT,
        PlanOptions {
            release_ips: true,
            delete_functions: true,
            ..DEFAULT
        },
    ] {
        let spec = spec(2, &["f"]);
        let account = deployed(&spec, &empty());
        let plan = destroy_plan(&spec, &account, &options);
        let complete = apply(&plan, &account);
        for k in 0..=plan.steps.len() {
            let killed = apply_where(&plan, &account, |step| step.0 < k);
            let resumed = destroyed(&spec, &killed, &options);
            assert_eq!(resumed, complete, "stopped after {k} steps, {options:?}");
            assert!(destroy_plan(&spec, &resumed, &options).is_noop());
        }
    }
}

#[test]
fn destroy_waits_out_lambdas_interfaces_before_deleting_what_they_hold() {
    let account = deployed(&spec(1, &["f"]), &empty());
    let plan = destroy_plan(&spec(1, &["f"]), &account, &DEFAULT);
    let private = account
        .subnets
        .iter()
        .find(|s| s.tier == Tier::Private)
        .unwrap();
    let group = account.security_group.as_ref().unwrap();
    for (holder, deletion) in [
        (
            InterfaceHolder::Subnet(private.id.clone()),
            Action::DeleteSubnet {
                subnet: private.id.clone(),
            },
        ),
        (
            InterfaceHolder::SecurityGroup(group.id.clone()),
            Action::DeleteSecurityGroup {
                security_group: group.id.clone(),
            },
        ),
    ] {
        let cleared = step_of(&plan, |a| {
            *a == Action::ClearLambdaInterfaces {
                holder: holder.clone(),
            }
        });
        let detached = step_of(&plan, |a| matches!(a, Action::DetachFunction { .. }));
        let deleted = step_of(&plan, |a| *a == deletion);
        assert!(waits_for(&plan, cleared, detached) && waits_for(&plan, deleted, cleared));
    }
}

#[test]
fn simulate_refuses_what_aws_refuses_when_taking_a_stack_apart() {
    let account = deployed(&spec(1, &["f"]), &empty());
    let plan = destroy_plan(&spec(1, &["f"]), &account, &DEFAULT);
    let only = |pick: fn(&Action) -> bool| {
        let plan = plan.clone();
        let account = account.clone();
        std::panic::catch_unwind(move || {
            // Carry out the picked steps alone, ignoring what they wait for.
            let mut lone = plan.clone();
            lone.steps.retain(|s| pick(&s.action));
            for (n, step) in lone.steps.iter_mut().enumerate() {
                step.id = StepId(n);
                step.after.clear();
            }
            simulate::apply(&lone, &account)
        })
        .map_err(|panic| panic.downcast_ref::<String>().cloned().unwrap_or_default())
    };
    // A subnet with a NAT in it, or with Lambda's interfaces.
    let err = only(|a| matches!(a, Action::DeleteSubnet { .. })).unwrap_err();
    assert!(err.contains("AWS refuses to delete subnet"), "{err}");
    // An address a NAT holds.
    let release = plan.clone();
    let address = account.addresses[0].allocation_id.clone();
    let holder = account.clone();
    let released = std::panic::catch_unwind(move || {
        let mut lone = release;
        lone.steps = vec![Step {
            id: StepId(0),
            action: Action::ReleaseAddress {
                allocation_id: address,
            },
            after: Vec::new(),
        }];
        simulate::apply(&lone, &holder)
    });
    assert!(released.is_err());
    // The interfaces of a function still attached never go.
    let err = only(|a| matches!(a, Action::ClearLambdaInterfaces { .. })).unwrap_err();
    assert!(err.contains("still attached"), "{err}");
    // A VPC with everything still in it.
    let err = only(|a| matches!(a, Action::DeleteVpc { .. })).unwrap_err();
    assert!(err.contains("AWS refuses to delete vpc"), "{err}");
}

#[test]
fn lifecycle_plans_and_observations_round_trip_through_json() {
    let two = deployed(&spec(2, &["f"]), &empty());
    let held = planned(&spec(3, &["f"]), &two, &DEFAULT);
    let destroy = destroy_plan(&spec(2, &["f"]), &two, &DEFAULT);
    for plan in [&held, &destroy] {
        let json = serde_json::to_string(plan).unwrap();
        assert_eq!(serde_json::from_str::<Plan>(&json).unwrap(), *plan);
    }
    let value = serde_json::to_value(&held).unwrap();
    assert_eq!(
        value["network"]["azs"][2]["nat_gateway"]["status"],
        "held_back"
    );
    assert_eq!(value["pending_new_ips"][0]["slot"], 2);
    let value = serde_json::to_value(&destroy).unwrap();
    let clear = value["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["action"]["action"] == "clear_lambda_interfaces")
        .unwrap();
    assert_eq!(clear["action"]["holder"]["kind"], "subnet");

    // Observations written before the quota fields existed still read.
    let mut json = serde_json::to_value(&two).unwrap();
    let fields = json.as_object_mut().unwrap();
    fields.remove("address_quota");
    fields.remove("addresses_in_use_in_region");
    assert_eq!(serde_json::from_value::<ObservedState>(json).unwrap(), two);
}

/// Lambda deletes its interfaces with the function's role ("Do not delete this role immediately
/// after your Lambda function execution": Lambda developer guide, VPC): the role goes only after
/// every wait for Lambda's interfaces.
#[test]
fn destroy_deletes_the_role_after_lambdas_interfaces_are_gone() {
    let spec = spec(2, &["f"]);
    let account = deployed(&spec, &empty());
    let options = PlanOptions {
        delete_functions: true,
        ..DEFAULT
    };
    let plan = destroy_plan(&spec, &account, &options);
    let role = step_of(&plan, |a| matches!(a, Action::DeleteRole { .. }));
    let clears: Vec<StepId> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::ClearLambdaInterfaces { .. }))
        .map(|s| s.id)
        .collect();
    assert!(!clears.is_empty(), "{:#?}", plan.steps);
    for clear in clears {
        assert!(waits_for(&plan, role, clear), "{clear:?}");
    }
}
