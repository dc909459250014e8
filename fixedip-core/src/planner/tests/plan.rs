//! One test per planning rule, with plain values. The property tests are in `proptests.rs`.

use std::collections::BTreeMap;

use super::simulate::{
    self, address, apply, apply_where, check_well_formed, deployed, empty, spec, REGION,
};
use super::*;
use crate::observed::{AddressUse, NatState, RouteTarget};
use crate::plan::{Action, Status};
use crate::requirements::{AzCount, EgressRequirements};
use crate::settings::Architecture;

fn net(cidr: &str) -> Ipv4Net {
    cidr.parse().unwrap()
}

fn id(s: &str) -> AllocationId {
    AllocationId::parse(s).unwrap()
}

fn actions(plan: &Plan) -> Vec<&Action> {
    plan.steps.iter().map(|step| &step.action).collect()
}

/// The kinds of the plan's actions and how many of each, e.g. `{"CreateSubnet": 4}`.
fn census(plan: &Plan) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for action in actions(plan) {
        let kind = format!("{action:?}");
        let kind = kind.split([' ', '{', '(']).next().unwrap().to_owned();
        *counts.entry(kind).or_default() += 1;
    }
    counts
}

fn planned(spec: &StackSpec, observed: &ObservedState) -> Plan {
    let plan = plan(spec, observed).unwrap();
    check_well_formed(&plan);
    plan
}

#[test]
fn layout_cuts_the_vpc_in_sixteen() {
    let at = |vpc: &str, slot| slot_cidrs(net(vpc), slot).unwrap();
    assert_eq!(at("10.0.0.0/16", 0).private, net("10.0.0.0/20"));
    assert_eq!(at("10.0.0.0/16", 0).public, net("10.0.128.0/20"));
    assert_eq!(at("10.0.0.0/16", 1).private, net("10.0.16.0/20"));
    assert_eq!(at("10.0.0.0/16", 5).public, net("10.0.208.0/20"));
    assert_eq!(at("192.168.7.0/24", 0).private, net("192.168.7.0/28"));
    assert_eq!(at("192.168.7.0/24", 7).public, net("192.168.7.240/28"));
    assert_eq!(slot_cidrs(net("10.0.0.0/16"), 8), None);
    assert_eq!(slot_cidrs(net("10.0.0.0/25"), 0), None);
}

#[test]
fn vpc_prefix_must_be_16_to_24() {
    for bad in ["10.0.0.0/15", "10.0.0.0/25"] {
        let spec = StackSpec {
            vpc_cidr: net(bad),
            ..spec(2, &["f"])
        };
        let err = plan(&spec, &empty()).unwrap_err();
        assert_eq!(err, PlanError::VpcCidrSize { cidr: net(bad) });
        assert!(err.to_string().contains("/16 to a /24"), "{err}");
    }
    let spec = StackSpec {
        vpc_cidr: net("172.20.5.0/24"),
        ..spec(2, &["f"])
    };
    let plan = planned(&spec, &empty());
    assert_eq!(plan.network.azs[1].public_subnet.0, net("172.20.5.144/28"));
}

#[test]
fn fresh_two_az_stack() {
    let plan = planned(&spec(2, &["hello"]), &empty());
    let expected: BTreeMap<String, usize> = [
        ("AllocateAddress", 2),
        ("AssociateRouteTable", 4),
        ("AttachInternetGateway", 1),
        ("AttachRolePolicy", 2),
        ("AwaitFunctionActive", 1),
        ("CreateFunction", 1),
        ("CreateInternetGateway", 1),
        ("CreateNatGateway", 2),
        ("CreateRole", 1),
        ("CreateRoute", 3),
        ("CreateRouteTable", 3),
        ("CreateSecurityGroup", 1),
        ("CreateSubnet", 4),
        ("CreateVpc", 1),
        ("EnableVpcDns", 1),
    ]
    .into_iter()
    .map(|(kind, n)| (kind.to_owned(), n))
    .collect();
    assert_eq!(census(&plan), expected);

    let network = &plan.network;
    assert_eq!(network.vpc, (net("10.0.0.0/16"), Status::Create));
    let azs: Vec<(&str, Ipv4Net, Ipv4Net)> = network
        .azs
        .iter()
        .map(|az| (az.az.as_str(), az.private_subnet.0, az.public_subnet.0))
        .collect();
    assert_eq!(
        azs,
        [
            // Stack `default`'s order, by AZ id rotated by its name's hash: use1-az5 (1f),
            // use1-az6 (1a), use1-az1 (1b)... (see `slots.rs`).
            ("us-east-1f", net("10.0.0.0/20"), net("10.0.128.0/20")),
            ("us-east-1a", net("10.0.16.0/20"), net("10.0.144.0/20")),
        ]
    );
    assert_eq!(network.role, Some(Status::Create));
    assert_eq!(network.functions, [("hello".to_owned(), Status::Create)]);
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
}

#[test]
fn fresh_stack_routes_each_slot_through_its_own_nat() {
    let plan = planned(&spec(3, &["hello"]), &empty());
    let account = apply(&plan, &empty());
    let subnet_slot = |id: &str| account.subnets.iter().find(|s| s.id == id).unwrap().slot;
    let nat_slot = |id: &str| {
        account
            .nat_gateways
            .iter()
            .find(|n| n.id == id)
            .unwrap()
            .slot
    };
    let igw = &account.internet_gateway.as_ref().unwrap().id;
    for table in &account.route_tables {
        let default_route = table
            .routes
            .iter()
            .find(|r| r.destination == ANYWHERE)
            .unwrap();
        match table.tier {
            Tier::Public => {
                assert_eq!(
                    default_route.target,
                    RouteTarget::InternetGateway(igw.clone())
                );
                assert_eq!(table.associations.len(), 3);
            }
            Tier::Private => {
                let RouteTarget::NatGateway(nat) = &default_route.target else {
                    panic!()
                };
                assert_eq!(table.associations.len(), 1);
                assert_eq!(subnet_slot(&table.associations[0].subnet_id), nat_slot(nat));
                assert_eq!(Some(nat_slot(nat)), table.slot);
            }
        }
    }
    let function = &account.functions[0];
    let mut private: Vec<&str> = account
        .subnets
        .iter()
        .filter(|s| s.tier == Tier::Private)
        .map(|s| s.id.as_str())
        .collect();
    private.sort();
    let mut attached: Vec<&str> = function.subnet_ids.iter().map(String::as_str).collect();
    attached.sort();
    assert_eq!(
        attached, private,
        "the function runs in the private subnets only"
    );
    assert_eq!(
        function.security_group_ids,
        [account.security_group.as_ref().unwrap().id.clone()]
    );
    assert_eq!(function.role_arn, account.role.as_ref().unwrap().arn);
}

#[test]
fn role_policies_follow_the_partition() {
    let arns = |region: &str| {
        let spec = StackSpec {
            region: region.to_owned(),
            ..spec(1, &["f"])
        };
        let plan = planned(&spec, &empty());
        actions(&plan)
            .into_iter()
            .filter_map(|a| match a {
                Action::AttachRolePolicy { policy_arn, .. } => Some(policy_arn.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        arns("eu-west-1"),
        [
            "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
            "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
        ]
    );
    assert!(arns("cn-north-1")
        .iter()
        .all(|a| a.starts_with("arn:aws-cn:iam::aws:policy/")));
    assert!(arns("us-gov-west-1")
        .iter()
        .all(|a| a.starts_with("arn:aws-us-gov:iam::aws:policy/")));
}

#[test]
fn functions_with_their_own_role_need_no_stack_role() {
    let mut spec = spec(1, &["f"]);
    spec.functions[0].role = Some("arn:aws:iam::123456789012:role/mine".to_owned());
    let plan = planned(&spec, &empty());
    assert_eq!(plan.network.role, None);
    assert!(actions(&plan).iter().all(|a| !matches!(
        a,
        Action::CreateRole { .. } | Action::AttachRolePolicy { .. }
    )));
    let account = apply(&plan, &empty());
    assert_eq!(
        account.functions[0].role_arn,
        "arn:aws:iam::123456789012:role/mine"
    );
}

#[test]
fn azs_are_chosen_by_id_in_the_stacks_order() {
    let mut observed = empty();
    observed.offered_azs = ["us-east-1d", "us-east-1b", "us-east-1c"]
        .map(String::from)
        .to_vec();
    let plan = planned(&spec(2, &["f"]), &observed);
    let azs: Vec<&str> = plan.network.azs.iter().map(|az| az.az.as_str()).collect();
    // By id: use1-az1 (1b), use1-az2 (1c), use1-az4 (1d), rotated by the stack's hash.
    assert_eq!(azs, ["us-east-1c", "us-east-1d"]);
}

fn azs_of(plan: &Plan) -> Vec<&str> {
    plan.network.azs.iter().map(|az| az.az.as_str()).collect()
}

fn named(stack: &str, azs: u8) -> StackSpec {
    let mut spec = spec(azs, &["f"]);
    spec.stack = StackName::parse(stack).unwrap();
    spec
}

#[test]
fn stacks_are_spread_over_the_azs_by_their_names() {
    // Every stack in the first two AZs would exhaust their NAT gateway quota (5 per AZ) first.
    let firsts: BTreeSet<String> = ["billing", "payments", "reports", "search", "mail", "auth"]
        .iter()
        .map(|stack| azs_of(&planned(&named(stack, 1), &empty()))[0].to_owned())
        .collect();
    assert!(firsts.len() >= 3, "{firsts:?}");
    // The same stack gets the same AZs every time, whatever order AWS lists them in.
    let mut shuffled = empty();
    shuffled.offered_azs.reverse();
    assert_eq!(
        azs_of(&planned(&named("billing", 3), &shuffled)),
        azs_of(&planned(&named("billing", 3), &empty()))
    );
}

#[test]
fn addresses_are_allocated_at_the_start_and_a_nat_waits_for_its_subnet_and_lambda() {
    // An address is regional: it waits for nothing, so that AWS's few seconds before a new
    // allocation id is usable pass while the VPC and subnets are made. A NAT is what an AZ holds:
    // it waits for its own subnet, its address, and Lambda's answer to the new function, so that
    // a zone that refuses either gets none.
    let plan = planned(&spec(3, &["f"]), &empty());
    let steps_of = |wanted: fn(&Action) -> bool| -> Vec<&Step> {
        plan.steps.iter().filter(|s| wanted(&s.action)).collect()
    };
    let allocations = steps_of(|a| matches!(a, Action::AllocateAddress { .. }));
    assert_eq!(allocations.len(), 3);
    assert!(
        allocations.iter().all(|a| a.after.is_empty()),
        "{allocations:?}"
    );
    let created = steps_of(|a| matches!(a, Action::CreateFunction { .. }));
    assert_eq!(created.len(), 1);
    let nats = steps_of(|a| matches!(a, Action::CreateNatGateway { .. }));
    assert_eq!(nats.len(), 3);
    for nat in nats {
        let Action::CreateNatGateway {
            subnet: Ref::Step(subnet),
            address: Ref::Step(address),
            ..
        } = &nat.action
        else {
            panic!("a new NAT in a new subnet with a new address: {nat:?}");
        };
        assert!(
            matches!(
                plan.steps[subnet.0].action,
                Action::CreateSubnet {
                    tier: Tier::Public,
                    ..
                }
            ) && matches!(plan.steps[address.0].action, Action::AllocateAddress { .. })
                && nat.after.contains(&created[0].id),
            "{nat:?}"
        );
    }
}

#[test]
fn a_nat_instance_is_launched_after_lambda_accepted_the_new_function() {
    // The instance is a NAT like a gateway: no launch in an AZ Lambda may refuse.
    let mut spec = spec(2, &["f"]);
    spec.modes.nat = NatMode::Instance;
    let plan = planned(&spec, &empty());
    let created = plan
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::CreateFunction { .. }))
        .unwrap()
        .id;
    let launches: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::LaunchNatInstance { .. }))
        .collect();
    assert_eq!(launches.len(), 2);
    assert!(
        launches.iter().all(|l| l.after.contains(&created)),
        "{launches:?}"
    );
    let allocations = plan
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::AllocateAddress { .. }));
    assert!(allocations.into_iter().all(|a| a.after.is_empty()));
}

#[test]
fn az_ids_pin_the_azs_in_their_order() {
    let mut spec = spec(2, &["f"]);
    spec.modes.az_ids = vec!["use1-az4".into(), "use1-az1".into()];
    let plan = planned(&spec, &empty());
    assert_eq!(azs_of(&plan), ["us-east-1d", "us-east-1b"]);

    // An id the region does not offer is refused, naming those that would do.
    spec.modes.az_ids = vec!["use1-az9".into(), "use1-az1".into()];
    let error = plan_with(&spec, &empty(), &PlanOptions::default()).unwrap_err();
    assert!(matches!(&error, PlanError::AzIdNotUsable { id, why: None, .. } if id == "use1-az9"));
    assert_eq!(
        error.to_string(),
        "`az-ids` in [package.metadata.fixedip] names use1-az9, which us-east-1 does not offer: use AZ ids of us-east-1 that can hold the stack (use1-az1, use1-az2, use1-az3, use1-az4, use1-az5, use1-az6); `aws ec2 describe-availability-zones --region us-east-1` lists every ZoneId"
    );

    // Fewer ids than `azs`: refused, saying to list more.
    spec.modes.az_ids = vec!["use1-az1".into()];
    let error = plan_with(&spec, &empty(), &PlanOptions::default()).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`az-ids` in [package.metadata.fixedip] lists 1")
            && error.to_string().contains("list more AZ ids in `az-ids`"),
        "{error}"
    );
}

#[test]
fn an_az_the_stack_cannot_use_is_left_out_and_named_when_pinned() {
    let mut account = empty();
    account.unusable_az_ids.insert(
        "use1-az5".into(),
        "the NAT instance type t4g.nano is not offered there".into(),
    );
    // `default` starts at use1-az5 (1f): it goes on to the next.
    let plan = planned(&spec(2, &["f"]), &account);
    assert_eq!(azs_of(&plan), ["us-east-1a", "us-east-1b"]);
    // An existing slot in it keeps it: a slot's AZ is for life.
    let deployed_there = deployed(&spec(2, &["f"]), &empty());
    let plan = planned(
        &spec(2, &["f"]),
        &ObservedState {
            unusable_az_ids: account.unusable_az_ids.clone(),
            ..deployed_there
        },
    );
    assert!(plan.is_noop());
    assert_eq!(azs_of(&plan), ["us-east-1f", "us-east-1a"]);

    let mut pinned = spec(1, &["f"]);
    pinned.modes.az_ids = vec!["use1-az5".into()];
    let error = plan_with(&pinned, &account, &PlanOptions::default()).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("names use1-az5, which the stack cannot use: the NAT instance type t4g.nano is not offered there"),
        "{error}"
    );
}

#[test]
fn a_new_function_is_created_before_any_nat_and_a_zone_lambda_refuses_is_given_up() {
    let spec = spec(2, &["f"]);
    let fresh = planned(&spec, &empty());
    let step_of = |plan: &Plan, wanted: fn(&Action) -> bool| -> Vec<StepId> {
        plan.steps
            .iter()
            .filter(|s| wanted(&s.action))
            .map(|s| s.id)
            .collect()
    };
    let created = step_of(&fresh, |a| matches!(a, Action::CreateFunction { .. }));
    assert_eq!(created.len(), 1);
    for step in step_of(&fresh, |a| matches!(a, Action::CreateNatGateway { .. })) {
        assert!(
            fresh.steps[step.0].after.contains(&created[0]),
            "{fresh:#?}"
        );
    }

    // Lambda refused the function (slots 0 and 1 in us-east-1f and us-east-1a): the run stopped
    // with their subnets made and their addresses allocated, but no NAT. Both AZs are left out;
    // the slots, whose NAT does not exist, are given up and two others take their place, and
    // their addresses: no address is allocated again.
    let mut account = apply_where(&fresh, &empty(), |step| step != created[0]);
    assert_eq!(account.addresses.len(), 2);
    assert!(account.nat_gateways.is_empty() && !account.subnets.is_empty());
    let allocated: BTreeSet<String> = account
        .addresses
        .iter()
        .map(|a| a.allocation_id.clone())
        .collect();
    for id in ["use1-az5", "use1-az6"] {
        account
            .unusable_az_ids
            .insert(id.into(), "Lambda refused a function there".into());
    }
    let plan = planned(&spec, &account);
    assert_eq!(azs_of(&plan), ["us-east-1b", "us-east-1c"]);
    assert_eq!(
        plan.network
            .removed_slots
            .iter()
            .map(|s| (s.slot, s.az.as_deref()))
            .collect::<Vec<_>>(),
        [(0, Some("us-east-1f")), (1, Some("us-east-1a"))]
    );
    assert!(
        plan.notes.iter().any(|n| n
            .contains("AZ slot 0 (us-east-1f) is in an AZ the stack cannot use")
            && n.contains("serves AZ slot 2 instead")),
        "{:?}",
        plan.notes
    );
    assert!(
        plan.steps.iter().all(|s| !matches!(
            s.action,
            Action::AllocateAddress { .. }
                | Action::RetainAddress { .. }
                | Action::ReleaseAddress { .. }
        )),
        "{plan:#?}"
    );
    let done = apply(&plan, &account);
    assert_eq!(done.subnets.len(), 4);
    assert!(
        done.subnets.iter().all(|s| s.slot >= 2),
        "{:?}",
        done.subnets
    );
    let serving: BTreeSet<String> = done
        .nat_gateways
        .iter()
        .flat_map(|nat| nat.allocation_ids.clone())
        .collect();
    assert_eq!(
        serving, allocated,
        "the same two addresses, now in slots 2 and 3"
    );
    assert!(done
        .addresses
        .iter()
        .all(|a| a.usage == AddressUse::Active && a.slot.is_some_and(|slot| slot >= 2)));
    assert!(planned(&spec, &done).is_noop());

    // Once the slot's NAT exists, it keeps its AZ for life.
    let deployed_there = deployed(&spec, &empty());
    let kept = planned(
        &spec,
        &ObservedState {
            unusable_az_ids: account.unusable_az_ids.clone(),
            ..deployed_there
        },
    );
    assert!(kept.is_noop());
}

#[test]
fn lambda_refusing_slot_1_after_its_address_was_allocated_moves_the_slot_with_that_address() {
    // Slot 0 in us-east-1f, slot 1 in us-east-1a. Lambda refuses us-east-1a only (as if the
    // refused call named it alone): slot 0 stays where it is, slot 1 is given up, and slot 2 takes
    // the next AZ and slot 1's address.
    let spec = spec(2, &["f"]);
    let fresh = planned(&spec, &empty());
    let created = fresh
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::CreateFunction { .. }))
        .unwrap()
        .id;
    let mut account = apply_where(&fresh, &empty(), |step| step != created);
    let slot_1_address = account
        .addresses
        .iter()
        .find(|a| a.slot == Some(1))
        .unwrap()
        .clone();
    account
        .unusable_az_ids
        .insert("use1-az6".into(), "Lambda refused a function there".into());
    let plan = planned(&spec, &account);
    assert_eq!(azs_of(&plan), ["us-east-1f", "us-east-1b"]);
    assert_eq!(
        plan.network
            .removed_slots
            .iter()
            .map(|s| s.slot)
            .collect::<Vec<_>>(),
        [1]
    );
    let moved: Vec<&Action> = plan
        .steps
        .iter()
        .map(|s| &s.action)
        .filter(|a| {
            matches!(
                a,
                Action::AllocateAddress { .. }
                    | Action::ActivateAddress { .. }
                    | Action::RetainAddress { .. }
                    | Action::ReleaseAddress { .. }
            )
        })
        .collect();
    assert_eq!(
        moved,
        [&Action::ActivateAddress {
            allocation_id: slot_1_address.allocation_id.clone(),
            slot: 2,
            adopted: false,
            held_back: false,
        }],
        "no second allocation, and the moved address is not retained"
    );
    let slot_2 = &plan.network.azs[1];
    assert_eq!(slot_2.slot, 2);
    assert_eq!(slot_2.address.0, Some(slot_1_address.public_ip));

    let done = apply(&plan, &account);
    assert_eq!(done.addresses.len(), 2);
    let nat_2 = done.nat_gateways.iter().find(|n| n.slot == 2).unwrap();
    assert_eq!(
        nat_2.allocation_ids,
        std::slice::from_ref(&slot_1_address.allocation_id)
    );
    assert!(done.subnets.iter().all(|s| s.slot != 1));
    assert!(planned(&spec, &done).is_noop());
}

#[test]
fn a_new_slot_takes_the_first_az_no_slot_uses() {
    let one = deployed(&spec(1, &["f"]), &empty());
    let mut moved = one.clone();
    // Slot 0 lives in 1c (say AWS offered only 1c when it was made); slot 1 takes the first
    // AZ of the stack's order (1f, 1a, 1b, 1c, ...) that no slot uses.
    for subnet in &mut moved.subnets {
        subnet.az = "us-east-1c".to_owned();
    }
    let plan = planned(&spec(2, &["f"]), &moved);
    let azs: Vec<(Slot, &str)> = plan
        .network
        .azs
        .iter()
        .map(|az| (az.slot, az.az.as_str()))
        .collect();
    assert_eq!(azs, [(0, "us-east-1c"), (1, "us-east-1f")]);
}

#[test]
fn too_few_azs_is_refused_naming_both_counts() {
    let mut observed = empty();
    observed.offered_azs = ["us-east-1a", "us-east-1b"].map(String::from).to_vec();
    let err = plan(&spec(3, &["f"]), &observed).unwrap_err();
    assert_eq!(
        err,
        PlanError::NotEnoughAzs {
            region: "us-east-1".into(),
            wanted: 3,
            offered: vec![
                "us-east-1a (use1-az6)".into(),
                "us-east-1b (use1-az1)".into()
            ],
            pinned: 0,
            unusable: vec![],
        }
    );
    assert_eq!(
        err.to_string(),
        "the stack wants 3 availability zones but us-east-1 offers 2 it can use (us-east-1a (use1-az6), us-east-1b (use1-az1)): lower `azs` or choose another region"
    );
}

/// The address each slot gets, as (slot, Keep/Activate id or "allocate").
fn address_choices(plan: &Plan) -> Vec<(Slot, String)> {
    plan.network
        .azs
        .iter()
        .map(|az| {
            let how = match &az.address.1 {
                Status::Keep(id) => format!("keep {id}"),
                Status::Change(id) => {
                    let activated = actions(plan).into_iter().any(|a| {
                        matches!(a, Action::ActivateAddress { allocation_id, slot, .. }
                            if allocation_id == id && *slot == az.slot)
                    });
                    assert!(activated, "{id} changes without an ActivateAddress");
                    format!("activate {id}")
                }
                Status::Create => "allocate".to_owned(),
                other => panic!("an address of a deploy plan is {other:?}"),
            };
            (az.slot, how)
        })
        .collect()
}

#[test]
fn adopted_addresses_come_first_in_order_then_retained_by_id_then_new() {
    let mut observed = empty();
    observed.addresses = vec![
        address("eipalloc-000000cc", 1, AddressUse::Retained),
        address("eipalloc-000000bb", 2, AddressUse::Retained),
        ObservedAddress {
            adopted: true,
            ..address("eipalloc-000000ff", 3, AddressUse::Retained)
        },
        ObservedAddress {
            adopted: true,
            ..address("eipalloc-000000ee", 4, AddressUse::Retained)
        },
    ];
    let mut spec = spec(5, &["f"]);
    spec.adopted_ips = vec![id("eipalloc-000000ff"), id("eipalloc-000000ee")];
    let plan = planned(&spec, &observed);
    assert_eq!(
        address_choices(&plan),
        [
            (0, "activate eipalloc-000000ff".to_owned()),
            (1, "activate eipalloc-000000ee".to_owned()),
            (2, "activate eipalloc-000000bb".to_owned()),
            (3, "activate eipalloc-000000cc".to_owned()),
            (4, "allocate".to_owned()),
        ]
    );
    assert_eq!(
        plan.network.azs[0].address.0,
        Some(Ipv4Addr::new(203, 0, 113, 3))
    );
    assert!(plan.network.retained_addresses.is_empty());
}

#[test]
fn an_active_address_keeps_its_slot() {
    let account = deployed(&spec(2, &["f"]), &empty());
    let before: Vec<_> = account
        .addresses
        .iter()
        .map(|a| (a.slot, a.allocation_id.clone()))
        .collect();
    let mut with_spare = account.clone();
    with_spare
        .addresses
        .push(address("eipalloc-00000001", 9, AddressUse::Retained));
    let plan = planned(&spec(2, &["f"]), &with_spare);
    assert!(plan.is_noop(), "{:#?}", plan.steps);
    for (slot, id) in before {
        let az = plan
            .network
            .azs
            .iter()
            .find(|az| Some(az.slot) == slot)
            .unwrap();
        assert_eq!(az.address.1, Status::Keep(id));
    }
    assert_eq!(
        plan.network.retained_addresses,
        [(
            "eipalloc-00000001".to_owned(),
            Ipv4Addr::new(203, 0, 113, 9)
        )]
    );
}

#[test]
fn an_adopted_address_serving_a_slot_is_not_activated_again() {
    let mut observed = empty();
    observed.addresses = vec![ObservedAddress {
        adopted: true,
        ..address("eipalloc-000000ff", 3, AddressUse::Retained)
    }];
    let mut spec = spec(2, &["f"]);
    spec.adopted_ips = vec![id("eipalloc-000000ff")];
    let account = deployed(&spec, &observed);
    let plan = planned(&spec, &account);
    assert!(plan.is_noop(), "{:#?}", plan.steps);
    assert_eq!(
        plan.network.azs[0].address.1,
        Status::Keep("eipalloc-000000ff".into())
    );
}

#[test]
fn an_adopted_address_added_later_serves_no_az_and_says_so() {
    let account = deployed(&spec(1, &["f"]), &empty());
    let mut observed = account.clone();
    observed.addresses.push(ObservedAddress {
        adopted: true,
        ..address("eipalloc-000000ff", 3, AddressUse::Retained)
    });
    let mut spec = spec(1, &["f"]);
    spec.adopted_ips = vec![id("eipalloc-000000ff")];
    let plan = planned(&spec, &observed);
    assert!(plan.is_noop());
    assert!(plan
        .notes
        .iter()
        .any(|n| n.contains("eipalloc-000000ff") && n.contains("serves no AZ")));
}

#[test]
fn an_adopted_address_must_exist_and_be_free() {
    let mut spec = spec(1, &["f"]);
    spec.adopted_ips = vec![id("eipalloc-0123abcd")];
    let err = plan(&spec, &empty()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the Elastic IP eipalloc-0123abcd named in `ips` was not found in region us-east-1: check the id and the region"
    );

    let mut observed = empty();
    observed.addresses = vec![ObservedAddress {
        association_id: Some("eipassoc-1".into()),
        adopted: true,
        ..address("eipalloc-0123abcd", 1, AddressUse::Retained)
    }];
    let err = plan(&spec, &observed).unwrap_err();
    assert!(
        matches!(err, PlanError::AdoptedAddressInUse { .. }),
        "{err}"
    );
}

#[test]
fn nothing_changed_means_no_steps() {
    let spec = spec(2, &["a", "b"]);
    let account = deployed(&spec, &empty());
    let plan = planned(&spec, &account);
    assert!(plan.is_noop(), "{:#?}", plan.steps);
    let network = &plan.network;
    assert!(matches!(network.vpc.1, Status::Keep(_)));
    assert!(matches!(network.internet_gateway, Status::Keep(_)));
    assert!(matches!(network.role, Some(Status::Keep(_))));
    assert!(network
        .functions
        .iter()
        .all(|(_, s)| matches!(s, Status::Keep(_))));
    for az in &network.azs {
        for status in [
            &az.public_subnet.1,
            &az.private_subnet.1,
            &az.address.1,
            &az.nat_gateway,
        ] {
            assert!(matches!(status, Status::Keep(_)), "{az:?}");
        }
    }
}

/// Plans `spec` on a deployed account after `drift`, and returns the plan.
fn after_drift(spec: &StackSpec, drift: impl FnOnce(&mut ObservedState)) -> Plan {
    let mut account = deployed(spec, &empty());
    drift(&mut account);
    let plan = planned(spec, &account);
    // Whatever drifted, one more deploy puts it right.
    let again = planned(spec, &apply(&plan, &account));
    assert!(again.is_noop(), "not converged: {:#?}", again.steps);
    plan
}

#[test]
fn dns_off_is_turned_on() {
    let plan = after_drift(&spec(1, &["f"]), |a| {
        a.vpc.as_mut().unwrap().dns_hostnames = false
    });
    let vpc = plan.network.vpc.1.clone();
    let Status::Change(vpc_id) = vpc else {
        panic!("{vpc:?}")
    };
    assert_eq!(
        actions(&plan),
        [&Action::EnableVpcDns {
            vpc: Ref::Existing(vpc_id)
        }]
    );
}

#[test]
fn a_detached_internet_gateway_is_attached() {
    let plan = after_drift(&spec(1, &["f"]), |a| {
        a.internet_gateway.as_mut().unwrap().attached_vpc = None;
    });
    assert_eq!(
        census(&plan),
        BTreeMap::from([("AttachInternetGateway".to_owned(), 1)])
    );
}

#[test]
fn an_internet_gateway_on_another_vpc_is_refused() {
    let mut account = deployed(&spec(1, &["f"]), &empty());
    account.internet_gateway.as_mut().unwrap().attached_vpc = Some("vpc-other".into());
    let err = plan(&spec(1, &["f"]), &account).unwrap_err();
    assert!(
        matches!(err, PlanError::InternetGatewayElsewhere { .. }),
        "{err}"
    );
}

#[test]
fn a_changed_vpc_cidr_is_refused() {
    let account = deployed(&spec(1, &["f"]), &empty());
    let spec = StackSpec {
        vpc_cidr: net("10.9.0.0/16"),
        ..spec(1, &["f"])
    };
    let err = plan(&spec, &account).unwrap_err();
    assert!(matches!(err, PlanError::VpcCidrChanged { .. }), "{err}");
    assert!(
        err.to_string().contains("vpc-cidr = \"10.0.0.0/16\""),
        "{err}"
    );
}

fn private_table(account: &mut ObservedState, slot: Slot) -> &mut ObservedRouteTable {
    account
        .route_tables
        .iter_mut()
        .find(|t| t.tier == Tier::Private && t.slot == Some(slot))
        .unwrap()
}

#[test]
fn a_missing_route_is_created() {
    let plan = after_drift(&spec(2, &["f"]), |a| {
        private_table(a, 1)
            .routes
            .retain(|r| r.destination != ANYWHERE);
    });
    let [Action::CreateRoute {
        via: RouteVia::NatGateway(Ref::Existing(nat)),
        ..
    }] = actions(&plan)[..]
    else {
        panic!("{:#?}", plan.steps)
    };
    assert!(nat.starts_with("nat-"));
    assert!(matches!(
        plan.network.azs[1].private_route_table,
        Status::Change(_)
    ));
}

#[test]
fn a_blackhole_or_misdirected_route_is_replaced() {
    let plan = after_drift(&spec(2, &["f"]), |a| {
        let route = private_table(a, 0)
            .routes
            .iter_mut()
            .find(|r| r.destination == ANYWHERE);
        route.unwrap().blackhole = true;
    });
    assert_eq!(
        census(&plan),
        BTreeMap::from([("ReplaceRoute".to_owned(), 1)])
    );

    let plan = after_drift(&spec(2, &["f"]), |a| {
        let other = RouteTarget::NatGateway("nat-of-slot-1".into());
        let route = private_table(a, 0)
            .routes
            .iter_mut()
            .find(|r| r.destination == ANYWHERE);
        route.unwrap().target = other;
    });
    assert_eq!(
        census(&plan),
        BTreeMap::from([("ReplaceRoute".to_owned(), 1)])
    );
}

#[test]
fn an_unassociated_subnet_is_associated() {
    let plan = after_drift(&spec(2, &["f"]), |a| {
        let table = a
            .route_tables
            .iter_mut()
            .find(|t| t.tier == Tier::Public)
            .unwrap();
        table.associations.pop();
    });
    assert_eq!(
        census(&plan),
        BTreeMap::from([("AssociateRouteTable".to_owned(), 1)])
    );
}

#[test]
fn a_failed_nat_is_replaced_with_the_same_address() {
    let mut kept_address = String::new();
    let plan = after_drift(&spec(2, &["f"]), |a| {
        let nat = a.nat_gateways.iter_mut().find(|n| n.slot == 1).unwrap();
        nat.state = NatState::Failed;
        kept_address = nat.allocation_ids[0].clone();
        let address = a
            .addresses
            .iter_mut()
            .find(|x| x.allocation_id == kept_address)
            .unwrap();
        address.association_id = None;
        let route = private_table(a, 1)
            .routes
            .iter_mut()
            .find(|r| r.destination == ANYWHERE);
        route.unwrap().blackhole = true;
    });
    let [Action::CreateNatGateway {
        address, slot: 1, ..
    }, Action::ReplaceRoute { via, .. }] = actions(&plan)[..]
    else {
        panic!("{:#?}", plan.steps)
    };
    assert_eq!(*address, Ref::Existing(kept_address));
    assert_eq!(*via, RouteVia::NatGateway(Ref::Step(StepId(0))));
    assert_eq!(plan.steps[1].after, [StepId(0)]);
}

/// EC2 idempotency guide: a repeated client token gets the original (here: failed) gateway
/// back. The replacement's token is of the next generation.
#[test]
fn a_replacement_nat_gets_a_token_of_a_new_generation() {
    let plan = after_drift(&spec(2, &["f"]), |a| {
        let nat = a.nat_gateways.iter_mut().find(|n| n.slot == 1).unwrap();
        nat.state = NatState::Failed;
        let kept = nat.allocation_ids[0].clone();
        let address = a.addresses.iter_mut().find(|x| x.allocation_id == kept);
        address.unwrap().association_id = None;
        a.retired.nat_gateways.insert(1, 1);
    });
    let Some(Action::CreateNatGateway { generation, .. }) = actions(&plan).into_iter().next()
    else {
        panic!("{:#?}", plan.steps)
    };
    assert_eq!(*generation, 1);
}

#[test]
fn a_pending_nat_counts_as_existing() {
    let plan = after_drift(&spec(2, &["f"]), |a| {
        a.nat_gateways[0].state = NatState::Pending
    });
    assert!(plan.is_noop(), "{:#?}", plan.steps);
}

#[test]
fn a_missing_function_is_created() {
    let plan = after_drift(&spec(1, &["f", "g"]), |a| {
        a.functions.retain(|f| f.name != "g")
    });
    let [Action::CreateFunction {
        function, subnets, ..
    }, Action::AwaitFunctionActive { name }] = actions(&plan)[..]
    else {
        panic!("{:#?}", plan.steps)
    };
    assert_eq!(function.name, "g");
    assert_eq!(name, "g");
    assert!(matches!(&subnets[..], [Ref::Existing(_)]));
}

#[test]
fn configuration_drift_updates_the_configuration_only() {
    let drifts: [fn(&mut ObservedFunction); 8] = [
        |f| f.memory_mb = 256,
        |f| f.timeout_s = 3,
        |f| f.environment.clear(),
        |f| f.subnet_ids.pop().map(drop).unwrap_or(()),
        |f| f.security_group_ids = vec!["sg-other".into()],
        |f| f.role_arn = "arn:aws:iam::123456789012:role/other".into(),
        |f| f.runtime = Some("provided.al2".into()),
        |f| f.ipv6_allowed_for_dual_stack = true,
    ];
    for drift in drifts {
        let plan = after_drift(&spec(2, &["f"]), |a| drift(&mut a.functions[0]));
        assert_eq!(
            census(&plan),
            BTreeMap::from([("UpdateFunctionConfiguration".to_owned(), 1)]),
            "{:#?}",
            plan.steps
        );
        assert!(matches!(plan.network.functions[0].1, Status::Change(_)));
    }
}

#[test]
fn a_function_allowed_ipv6_is_turned_off_with_a_note() {
    // In a dual-stack subnet its IPv6 traffic would leave from its own address (egress-only
    // gateway), bypassing the fixed IPs: deploy turns it off rather than let it pass silently.
    let plan = after_drift(&spec(2, &["f"]), |a| {
        a.functions[0].ipv6_allowed_for_dual_stack = true
    });
    assert!(matches!(
        actions(&plan)[..],
        [Action::UpdateFunctionConfiguration { .. }]
    ));
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("Ipv6AllowedForDualStack") && n.contains("turned off")),
        "{:?}",
        plan.notes
    );
}

#[test]
fn new_code_is_uploaded_after_the_configuration() {
    let mut spec = spec(1, &["f"]);
    let account = deployed(&spec, &empty());
    spec.functions[0].code_sha256 = Some("bmV3".into());
    let plan = planned(&spec, &account);
    assert_eq!(
        census(&plan),
        BTreeMap::from([("UpdateFunctionCode".to_owned(), 1)])
    );

    spec.functions[0].memory_mb = 512;
    let plan = planned(&spec, &account);
    let kinds: Vec<&str> = actions(&plan)
        .iter()
        .map(|a| match a {
            Action::UpdateFunctionConfiguration { .. } => "config",
            Action::UpdateFunctionCode { .. } => "code",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["config", "code"]);
    assert_eq!(plan.steps[1].after, [StepId(0)]);

    // Planning without a zip says nothing about the code.
    spec.functions[0].code_sha256 = None;
    spec.functions[0].memory_mb = 128;
    assert!(planned(&spec, &account).is_noop());
}

#[test]
fn a_new_architecture_goes_with_the_code() {
    let mut spec = spec(1, &["f"]);
    let account = deployed(&spec, &empty());
    spec.functions[0].architecture = Architecture::X86_64;
    let plan = planned(&spec, &account);
    assert_eq!(
        census(&plan),
        BTreeMap::from([("UpdateFunctionCode".to_owned(), 1)])
    );
}

#[test]
fn a_missing_role_policy_is_attached() {
    let plan = after_drift(&spec(1, &["f"]), |a| {
        a.role.as_mut().unwrap().attached_policy_arns.truncate(1);
    });
    let [Action::AttachRolePolicy { policy_arn, .. }] = actions(&plan)[..] else {
        panic!("{:#?}", plan.steps)
    };
    assert!(policy_arn.ends_with("AWSLambdaVPCAccessExecutionRole"));
    assert!(matches!(plan.network.role, Some(Status::Change(_))));
}

/// Lambda developer guide, function states: a Failed function must be deleted and created
/// again. The plan does that in one deploy, the delete before the create.
#[test]
fn a_function_left_pending_by_a_killed_run_is_waited_for() {
    let spec = spec(1, &["f"]);
    let mut account = deployed(&spec, &empty());
    account.functions[0].state = crate::observed::FunctionState {
        state: Some("Pending".into()),
        reason_code: Some("Creating".into()),
        reason: None,
    };
    let plan = planned(&spec, &account);
    check_well_formed(&plan);
    assert_eq!(
        census(&plan),
        BTreeMap::from([("AwaitFunctionActive".to_owned(), 1)])
    );
}

#[test]
fn a_failed_function_is_deleted_and_created_again() {
    let spec = spec(1, &["f"]);
    let mut account = deployed(&spec, &empty());
    account.functions[0].state = crate::observed::FunctionState {
        state: Some("Failed".into()),
        reason_code: Some("SubnetOutOfIPAddresses".into()),
        reason: Some("no free addresses".into()),
    };
    let plan = planned(&spec, &account);
    check_well_formed(&plan);
    assert_eq!(
        census(&plan),
        BTreeMap::from([
            ("AwaitFunctionActive".to_owned(), 1),
            ("CreateFunction".to_owned(), 1),
            ("DeleteFunction".to_owned(), 1)
        ])
    );
    let delete = plan
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::DeleteFunction { .. }))
        .unwrap();
    let create = plan
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::CreateFunction { .. }))
        .unwrap();
    assert!(create.after.contains(&delete.id));
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("Failed (SubnetOutOfIPAddresses: no free addresses)")),
        "{:?}",
        plan.notes
    );
    // Once created again it is Active: the next plan is a no-op.
    account.functions[0].state.state = Some("Active".into());
    assert!(planned(&spec, &account).is_noop());
}

/// A function of the name the stack deploys that fixedip did not create (no stack tag).
fn foreign_function(role_arn: &str) -> ObservedFunction {
    ObservedFunction {
        name: "f".into(),
        arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
        runtime: Some(LAMBDA_RUNTIME.into()),
        architecture: Some(Architecture::Arm64),
        role_arn: role_arn.into(),
        memory_mb: 128,
        timeout_s: 30,
        environment: BTreeMap::new(),
        subnet_ids: Vec::new(),
        security_group_ids: Vec::new(),
        code_sha256: "c29tZWJvZHkgZWxzZSdz".into(),
        stack_tag: None,
        state: Default::default(),
        ipv6_allowed_for_dual_stack: false,
    }
}

const ADOPT: PlanOptions = PlanOptions {
    allow_new_ips: false,
    release_ips: false,
    delete_functions: false,
    force_detach_others: false,
    adopt_functions: true,
};

#[test]
fn a_function_fixedip_did_not_create_is_refused_before_any_step() {
    let spec = spec(2, &["f"]);
    let mut observed = empty();
    observed.functions.push(foreign_function(
        "arn:aws:iam::123456789012:role/cargo-lambda",
    ));
    let error = plan(&spec, &observed).unwrap_err();
    assert_eq!(
        error,
        PlanError::FunctionNotOwned {
            region: REGION.into(),
            functions: vec!["f".into()],
        }
    );
    let message = error.to_string();
    assert!(
        message.contains("deploy --adopt") && message.contains("plan --adopt"),
        "{message}"
    );
    // A function of another fixedip stack is fixedip's: it moves, with a note.
    observed.functions[0].stack_tag = Some("other".into());
    let plan = planned(&spec, &observed);
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("moves into stack `payments` from stack `other`")),
        "{:?}",
        plan.notes
    );
}

#[test]
fn an_adopted_function_moves_in_only_once_its_subnets_route_out() {
    let spec = spec(2, &["f"]);
    let mut observed = empty();
    observed.functions.push(foreign_function(
        "arn:aws:iam::123456789012:role/cargo-lambda",
    ));
    let plan = plan_with(&spec, &observed, &ADOPT).unwrap();
    check_well_formed(&plan);
    let update = plan
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::UpdateFunctionConfiguration { .. }))
        .unwrap();
    for step in &plan.steps {
        if let Action::CreateRoute {
            via: RouteVia::NatGateway(_),
            ..
        } = step.action
        {
            assert!(update.after.contains(&step.id));
        }
    }
    let note = plan
        .notes
        .iter()
        .find(|n| n.starts_with("adopting the function f"))
        .unwrap_or_else(|| panic!("{:?}", plan.notes));
    for change in [
        "its code is replaced",
        "its role changes from arn:aws:iam::123456789012:role/cargo-lambda to the stack's own role",
        "set `role = \"arn:aws:iam::123456789012:role/cargo-lambda\"`",
        "it moves into the stack's VPC",
    ] {
        assert!(note.contains(change), "{change}: {note}");
    }
    let tagged = actions(&plan)
        .into_iter()
        .any(|a| matches!(a, Action::TagFunction { function, .. } if function.name == "f"));
    assert!(
        tagged,
        "an untagged function must be tagged: {:#?}",
        plan.steps
    );
    // `apply` checks the routes are in place when the function moves; once tagged, it is the
    // stack's, and no flag is needed any more.
    let account = apply(&plan, &observed);
    assert!(planned(&spec, &account).is_noop());
}

#[test]
fn adopting_keeps_the_role_the_settings_name() {
    let mut spec = spec(1, &["f"]);
    let theirs = "arn:aws:iam::123456789012:role/cargo-lambda";
    spec.functions[0].role = Some(theirs.into());
    let mut observed = empty();
    observed.functions.push(foreign_function(theirs));
    let plan = plan_with(&spec, &observed, &ADOPT).unwrap();
    let note = plan
        .notes
        .iter()
        .find(|n| n.starts_with("adopting"))
        .unwrap();
    assert!(!note.contains("its role changes"), "{note}");
    assert!(plan.network.role.is_none(), "no role of the stack's own");
}

#[test]
fn a_function_on_the_global_role_of_fixedip_0_1_moves_to_its_regions_role() {
    // fixedip 0.1 named the role `fixedip-<stack>-lambda` for every region: the regional role is
    // created, and the function moves onto it; the old role is not the planner's to delete.
    let spec = spec(1, &["f"]);
    let mut account = deployed(&spec, &empty());
    let legacy = "arn:aws:iam::123456789012:role/fixedip-payments-lambda";
    account.role = None;
    account.functions[0].role_arn = legacy.into();
    let plan = planned(&spec, &account);
    let created = actions(&plan).into_iter().find_map(|a| match a {
        Action::CreateRole { name } => Some(name.clone()),
        _ => None,
    });
    assert_eq!(
        created.as_deref(),
        Some("fixedip-payments-us-east-1-lambda")
    );
    assert!(actions(&plan)
        .into_iter()
        .any(|a| matches!(a, Action::UpdateFunctionConfiguration { .. })));
    assert!(!actions(&plan)
        .into_iter()
        .any(|a| matches!(a, Action::DeleteRole { .. })));
}

#[test]
fn more_azs_keep_every_existing_slot() {
    let two = deployed(&spec(2, &["f"]), &empty());
    let plan = planned(&spec(3, &["f"]), &two);
    for az in &plan.network.azs[..2] {
        for status in [
            &az.public_subnet.1,
            &az.private_subnet.1,
            &az.address.1,
            &az.nat_gateway,
        ] {
            assert!(matches!(status, Status::Keep(_)), "{az:?}");
        }
    }
    let new = &plan.network.azs[2];
    assert_eq!((new.slot, new.az.as_str()), (2, "us-east-1b"));
    assert_eq!(new.private_subnet, (net("10.0.32.0/20"), Status::Create));
    // The new IP waits for the user: the function stays where it is (see lifecycle_tests).
    assert_eq!(new.nat_gateway, Status::HeldBack);
    assert!(matches!(plan.network.functions[0].1, Status::Keep(_)));
    // Allowed, the function moves to the three private subnets once the new one routes out.
    let plan = plan_with(&spec(3, &["f"]), &two, &simulate::ALLOW_NEW_IPS).unwrap();
    assert_eq!(plan.network.azs[2].nat_gateway, Status::Create);
    assert!(matches!(plan.network.functions[0].1, Status::Change(_)));
}

#[test]
fn a_gap_in_slots_is_kept_and_the_lowest_free_slot_fills_up() {
    let three = deployed(&spec(3, &["f"]), &empty());
    let mut gap = three.clone();
    let slot_1: Vec<String> = gap
        .subnets
        .iter()
        .filter(|s| s.slot == 1)
        .map(|s| s.id.clone())
        .collect();
    gap.subnets.retain(|s| s.slot != 1);
    gap.nat_gateways.retain(|n| n.slot != 1);
    for address in &mut gap.addresses {
        if address.slot == Some(1) {
            address.usage = AddressUse::Retained;
            address.slot = None;
            address.association_id = None;
        }
    }
    gap.route_tables.retain(|t| t.slot != Some(1));
    for table in &mut gap.route_tables {
        table
            .associations
            .retain(|a| !slot_1.contains(&a.subnet_id));
    }
    for function in &mut gap.functions {
        function.subnet_ids.retain(|s| !slot_1.contains(s));
    }
    let two = planned(&spec(2, &["f"]), &gap);
    let slots: Vec<(Slot, &str)> = two
        .network
        .azs
        .iter()
        .map(|az| (az.slot, az.az.as_str()))
        .collect();
    assert_eq!(slots, [(0, "us-east-1f"), (2, "us-east-1b")]);
    assert!(two.is_noop(), "{:#?}", two.steps);

    let three_again = planned(&spec(3, &["f"]), &gap);
    let new = &three_again.network.azs[1];
    assert_eq!((new.slot, new.az.as_str()), (1, "us-east-1a"));
    // The retained address of the old slot 1 comes back to work before any new one.
    assert!(matches!(new.address.1, Status::Change(_)), "{new:?}");
}

#[test]
fn the_live_nats_address_stays_with_its_slot_even_untagged() {
    let account = deployed(&spec(1, &["f"]), &empty());
    let mut untagged = account.clone();
    untagged.addresses[0].usage = AddressUse::Retained;
    untagged.addresses[0].slot = None;
    let plan = planned(&spec(1, &["f"]), &untagged);
    let [Action::ActivateAddress {
        allocation_id,
        slot: 0,
        adopted: false,
        held_back: false,
    }] = actions(&plan)[..]
    else {
        panic!("{:#?}", plan.steps)
    };
    assert_eq!(*allocation_id, account.addresses[0].allocation_id);
}

#[test]
fn summaries_read_as_sentences() {
    let plan = planned(&spec(1, &["hello"]), &empty());
    let summaries: Vec<String> = plan.steps.iter().map(|s| s.action.summary()).collect();
    assert_eq!(summaries[0], "create VPC 10.0.0.0/16");
    assert!(
        summaries.contains(&"create public subnet 10.0.128.0/20 in us-east-1f (slot 0)".to_owned())
    );
    assert!(summaries.contains(&"create function hello in the private subnets".to_owned()));
    assert!(summaries
        .iter()
        .any(|s| s.starts_with("create NAT gateway in subnet (new, step")));
}

#[test]
fn plans_do_not_depend_on_the_order_of_observations() {
    let spec = spec(3, &["a", "b"]);
    let account = deployed(&spec, &empty());
    let mut reversed = account.clone();
    reversed.offered_azs.reverse();
    reversed.subnets.reverse();
    reversed.addresses.reverse();
    reversed.route_tables.reverse();
    reversed.nat_gateways.reverse();
    reversed.functions.reverse();
    let mut grown = spec.clone();
    grown.azs = AzCount::new(5).unwrap();
    assert_eq!(plan(&grown, &account), plan(&grown, &reversed));
}

// Grouping functions into stacks.

fn declared(function: &str, name: &str, stack: &str, azs: u8) -> DeclaredFunction {
    DeclaredFunction {
        record: Record {
            package: "hello-egress".into(),
            function: function.into(),
            source: "src/main.rs:12".into(),
            requirements: EgressRequirements {
                stack: StackName::parse(stack).unwrap(),
                azs: AzCount::new(azs.into()).unwrap(),
                ips: Vec::new(),
                ..Default::default()
            },
        },
        settings: DeploySettings {
            function_name: name.into(),
            region: None,
            memory_mb: 128,
            timeout_s: 30,
            architecture: Architecture::Arm64,
            environment: BTreeMap::new(),
            tags: BTreeMap::new(),
            role: None,
            vpc_cidr: None,
            ..DeploySettings::defaults(name)
        },
        region: "us-east-1".into(),
        code_sha256: None,
    }
}

#[test]
fn functions_group_by_region_and_stack() {
    let mut in_tokyo = declared("c::main", "c", "default", 2);
    in_tokyo.region = "ap-northeast-1".into();
    let specs = stack_specs(vec![
        declared("b::main", "zeta", "default", 2),
        declared("a::main", "alpha", "default", 2),
        declared("p::main", "pay", "payments", 1),
        in_tokyo,
    ])
    .unwrap();
    let shape: Vec<(&str, &str, Vec<&str>)> = specs
        .iter()
        .map(|s| {
            (
                s.region.as_str(),
                s.stack.as_str(),
                s.functions.iter().map(|f| f.name.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("ap-northeast-1", "default", vec!["c"]),
            ("us-east-1", "default", vec!["alpha", "zeta"]),
            ("us-east-1", "payments", vec!["pay"]),
        ]
    );
    assert_eq!(specs[1].vpc_cidr, DEFAULT_VPC_CIDR);
    assert_eq!(specs[1].functions[0].annotated, "a::main");
}

#[test]
fn disagreeing_functions_are_named_with_both_values() {
    let err = stack_specs(vec![
        declared("a::main", "a", "default", 2),
        declared("b::main", "b", "default", 3),
    ])
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "functions of stack `default` in us-east-1 disagree on `azs`: `a::main` in package hello-egress (src/main.rs:12) has 2, `b::main` in package hello-egress (src/main.rs:12) has 3; give every function of a stack the same `azs`, or name different stacks"
    );

    let mut with_ips = declared("b::main", "b", "default", 2);
    with_ips.record.requirements.ips = vec![id("eipalloc-0123abcd")];
    let err = stack_specs(vec![declared("a::main", "a", "default", 2), with_ips]).unwrap_err();
    assert!(err.to_string().contains("has none, `b::main`"), "{err}");
    assert!(err.to_string().contains("has [eipalloc-0123abcd]"), "{err}");

    let mut other_cidr = declared("b::main", "b", "default", 2);
    other_cidr.settings.vpc_cidr = Some(net("10.1.0.0/16"));
    let err = stack_specs(vec![declared("a::main", "a", "default", 2), other_cidr]).unwrap_err();
    assert!(
        err.to_string().contains("disagree on `vpc-cidr`: `a::main` in package hello-egress (src/main.rs:12) has 10.0.0.0/16 (the default)"),
        "{err}"
    );

    let mut explicit_default = declared("b::main", "b", "default", 2);
    explicit_default.settings.vpc_cidr = Some(DEFAULT_VPC_CIDR);
    stack_specs(vec![
        declared("a::main", "a", "default", 2),
        explicit_default,
    ])
    .unwrap();
}

#[test]
fn a_lambda_name_is_used_once_per_region() {
    let err = stack_specs(vec![
        declared("a::main", "same", "default", 2),
        declared("b::main", "same", "default", 2),
    ])
    .unwrap_err();
    assert!(
        matches!(&err, ConflictError::DuplicateName { name, .. } if name == "same"),
        "{err}"
    );
    // Nor in two stacks of one region: it would be one Lambda function moving between them.
    let err = stack_specs(vec![
        declared("a::main", "same", "default", 2),
        declared("b::main", "same", "payments", 2),
    ])
    .unwrap_err();
    assert!(
        err.to_string().starts_with("two functions in us-east-1 are both named `same`, one in stack `default` (`a::main` in package hello-egress (src/main.rs:12)), one in stack `payments`"),
        "{err}"
    );
    // In two regions they are two functions.
    let mut elsewhere = declared("b::main", "same", "payments", 2);
    elsewhere.region = "eu-west-1".into();
    stack_specs(vec![declared("a::main", "same", "default", 2), elsewhere]).unwrap();
}

#[test]
fn simulate_refuses_what_aws_refuses() {
    // The simulated account is only a fair judge if it can fail: a plan applied twice must trip it.
    let plan = planned(&spec(1, &["f"]), &empty());
    let account = apply(&plan, &empty());
    let twice = std::panic::catch_unwind(|| simulate::apply(&plan, &account));
    assert!(twice.is_err());
}

#[test]
fn offline_plans_assume_the_usual_azs_and_the_adopted_addresses() {
    let mut spec = spec(3, &["f"]);
    spec.adopted_ips = vec![id("eipalloc-0123abcd")];
    let plan = planned(
        &spec,
        &ObservedState::assumed_offline(REGION, &spec.adopted_ips),
    );
    let azs: Vec<&str> = plan.network.azs.iter().map(|az| az.az.as_str()).collect();
    // Offline the ids are not known: by name, rotated the same way.
    assert_eq!(azs, ["us-east-1e", "us-east-1f", "us-east-1a"]);
    let first = &plan.network.azs[0].address;
    assert_eq!(*first, (None, Status::Change("eipalloc-0123abcd".into())));

    spec.region = "ap-northeast-1".into();
    let plan = planned(
        &spec,
        &ObservedState::assumed_offline("ap-northeast-1", &spec.adopted_ips),
    );
    let azs: Vec<&str> = plan.network.azs.iter().map(|az| az.az.as_str()).collect();
    assert_eq!(
        azs,
        ["ap-northeast-1c", "ap-northeast-1d", "ap-northeast-1a"]
    );
}

#[test]
fn plans_round_trip_through_json() {
    let plan = planned(&spec(2, &["f"]), &empty());
    let json = serde_json::to_string(&plan).unwrap();
    assert_eq!(serde_json::from_str::<Plan>(&json).unwrap(), plan);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["steps"][0]["action"]["action"], "create_vpc");
    assert_eq!(
        value["network"]["azs"][0]["nat_gateway"]["status"],
        "create"
    );
}

#[test]
fn each_step_waits_for_exactly_what_it_needs() {
    let plan = planned(&spec(1, &["f"]), &empty());
    let step_of = |wanted: fn(&Action) -> bool| {
        let found = plan.steps.iter().find(|s| wanted(&s.action));
        found.unwrap_or_else(|| panic!("{:#?}", plan.steps)).id
    };
    let attach = step_of(|a| matches!(a, Action::AttachInternetGateway { .. }));
    let public_subnet = step_of(|a| {
        matches!(
            a,
            Action::CreateSubnet {
                tier: Tier::Public,
                ..
            }
        )
    });
    let address = step_of(|a| matches!(a, Action::AllocateAddress { .. }));
    assert!(plan.steps[address.0].after.is_empty());
    let created = step_of(|a| matches!(a, Action::CreateFunction { .. }));
    let nat = plan
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::CreateNatGateway { .. }));
    // Its subnet, its address, the internet gateway, and Lambda's answer to the new function.
    let mut expected = vec![attach, public_subnet, address, created];
    expected.sort();
    assert_eq!(nat.unwrap().after, expected);

    let vpc = step_of(|a| matches!(a, Action::CreateVpc { .. }));
    let private_subnet = step_of(|a| {
        matches!(
            a,
            Action::CreateSubnet {
                tier: Tier::Private,
                ..
            }
        )
    });
    let group = step_of(|a| matches!(a, Action::CreateSecurityGroup { .. }));
    let role = step_of(|a| matches!(a, Action::CreateRole { .. }));
    let policies: Vec<StepId> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::AttachRolePolicy { .. }))
        .map(|s| s.id)
        .collect();
    let function = plan
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::CreateFunction { .. }));
    let mut expected = vec![private_subnet, group, role];
    expected.extend(policies);
    expected.sort();
    assert_eq!(function.unwrap().after, expected);
    assert_eq!(plan.steps[group.0].after, [vpc]);
}

#[test]
fn a_plan_knows_the_az_of_each_slot() {
    let plan = planned(&spec(2, &["f"]), &empty());
    assert_eq!(plan.az_of(1), Some("us-east-1a"));
    assert_eq!(plan.az_of(4), None);
}

#[test]
fn an_address_still_held_by_a_deleting_nat_is_refused_until_it_is_free() {
    let account = deployed(&spec(1, &["f"]), &empty());
    let mut deleting = account.clone();
    deleting.nat_gateways[0].state = NatState::Deleting;
    let err = plan(&spec(1, &["f"]), &deleting).unwrap_err();
    let nat = &account.nat_gateways[0].id;
    assert!(
        matches!(&err, PlanError::AddressHeldByDeletingNat { nat_gateway, slot: 0, .. } if nat_gateway == nat),
        "{err}"
    );

    // Once deleted, the address is free and serves the slot's new NAT.
    let mut deleted = deleting.clone();
    deleted.nat_gateways[0].state = NatState::Deleted;
    deleted.addresses[0].association_id = None;
    let plan = planned(&spec(1, &["f"]), &deleted);
    let created = actions(&plan).into_iter().any(|a| {
        matches!(a, Action::CreateNatGateway { address: Ref::Existing(id), .. }
            if *id == account.addresses[0].allocation_id)
    });
    assert!(created, "{:#?}", plan.steps);

    // An association fixedip did not make is named.
    let mut elsewhere = deleted.clone();
    elsewhere.addresses[0].association_id = Some("eipassoc-0ther".into());
    let err = super::plan(&spec(1, &["f"]), &elsewhere).unwrap_err();
    assert!(matches!(err, PlanError::AddressInUse { .. }), "{err}");
}

#[test]
fn functions_of_a_stack_must_agree_on_the_existing_network() {
    let on_vpc = |function: &str, name: &str, vpc: &str, subnets: &[&str]| {
        let mut declared = declared(function, name, "default", 2);
        declared.settings.vpc = Some(vpc.to_owned());
        declared.settings.subnets = subnets.iter().map(|s| s.to_string()).collect();
        declared
    };
    let specs = stack_specs(vec![
        on_vpc(
            "a::main",
            "a",
            "vpc-0123abcd",
            &["subnet-0000000b", "subnet-0000000a"],
        ),
        on_vpc(
            "b::main",
            "b",
            "vpc-0123abcd",
            &["subnet-0000000a", "subnet-0000000b"],
        ),
    ])
    .unwrap();
    let existing = specs[0].modes.existing.clone().unwrap();
    assert_eq!(existing.vpc, "vpc-0123abcd");

    let err = stack_specs(vec![
        on_vpc("a::main", "a", "vpc-0123abcd", &[]),
        declared("b::main", "b", "default", 2),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("disagree on `vpc`"), "{err}");
    let err = stack_specs(vec![
        on_vpc("a::main", "a", "vpc-0123abcd", &["subnet-0000000a"]),
        on_vpc("b::main", "b", "vpc-0123abcd", &[]),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("disagree on `subnets`"), "{err}");
}
