//! Properties of the IP lifecycle over random histories: deploys with 1 to 4 AZs, destroys, runs
//! killed part way, in any order. An IP that was shown is never lost without `--release-ips`; a
//! new IP carries traffic only once allowed (or on a stack that showed none); destroy then deploy
//! gives the same IPs; `--release-ips` keeps adopted ones. And ownership: every resource a step
//! names is one the stack's tags led to, one the user named, or one an earlier step made.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use proptest::prelude::*;

use super::simulate::{self, address, apply_in_order, check_well_formed, spec};
use super::*;
use crate::observed::{AddressUse, ObservedFunction};
use crate::plan::InterfaceHolder;

/// One run of the CLI. `killed`: the run stops part way, having carried out the steps the mask
/// picks, in an order the seed picks among those ready (as a concurrent executor may).
#[derive(Debug, Clone)]
enum Run {
    Deploy {
        azs: u8,
        /// 0: one NAT per AZ; 1 to 4: `nats` (at most `azs`); 5: `nat = "none"`; 6:
        /// self-healing NAT instances; 7: plain NAT instances; 8: one plain NAT instance
        /// (`nats = 1`). So the switches between gateways, groups and instances, killed anywhere,
        /// are in some history.
        mode: u8,
        allow_new_ips: bool,
        killed: Option<(Vec<bool>, u64)>,
    },
    Destroy {
        release_ips: bool,
        delete_functions: bool,
        killed: Option<(Vec<bool>, u64)>,
    },
}

fn killed() -> impl Strategy<Value = Option<(Vec<bool>, u64)>> {
    prop::option::weighted(
        0.3,
        (prop::collection::vec(any::<bool>(), 1..40), any::<u64>()),
    )
}

fn run() -> impl Strategy<Value = Run> {
    prop_oneof![
        3 => (1..=4u8, 0..=8u8, any::<bool>(), killed()).prop_map(|(azs, mode, allow_new_ips, killed)| {
            Run::Deploy { azs, mode, allow_new_ips, killed }
        }),
        1 => (any::<bool>(), any::<bool>(), killed()).prop_map(
            |(release_ips, delete_functions, killed)| Run::Destroy {
                release_ips,
                delete_functions,
                killed,
            }
        ),
    ]
}

const ADOPTED: &str = "eipalloc-0000beef";

fn ips(account: &ObservedState) -> BTreeSet<Ipv4Addr> {
    account.addresses.iter().map(|a| a.public_ip).collect()
}

/// Whether some IP of the stack may be on an allowlist, from the observation alone: the rule of
/// the module docs, written again so that the planner is checked against it.
fn shows_ips(account: &ObservedState) -> bool {
    !account.nat_gateways.is_empty()
        || account
            .addresses
            .iter()
            .any(|a| a.usage != AddressUse::Active || a.adopted)
}

/// A NAT (gateway, instance or self-healing NAT) never uses an IP the user has not seen, unless
/// allowed or the stack shows none yet.
fn check_new_ips_wait(plan: &Plan, before: &ObservedState, allowed: bool) {
    if allowed || !shows_ips(before) {
        return;
    }
    for action in plan.steps.iter().map(|s| &s.action) {
        // What puts an address on a NAT: a gateway made with it, or an instance's (or a
        // self-healing NAT's fixed interface's) association.
        let (Action::CreateNatGateway { address, .. }
        | Action::AssociateAddress { address, .. }
        | Action::AssociateInterfaceAddress { address, .. }) = action
        else {
            continue;
        };
        match address {
            Ref::Step(step) => {
                let made = &plan.step(*step).action;
                assert!(
                    matches!(made, Action::ActivateAddress { allocation_id, .. }
                        if before.addresses.iter().any(|a| a.allocation_id == *allocation_id && a.usage != AddressUse::Pending)),
                    "a NAT uses a new IP without --allow-new-ips: {made:?}"
                );
            }
            Ref::Existing(id) => {
                let observed = before.addresses.iter().find(|a| a.allocation_id == *id);
                assert!(
                    observed.is_some_and(|a| a.usage != AddressUse::Pending),
                    "a NAT uses pending IP {id} without --allow-new-ips"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_ips_ever_shown_stay_until_released(
        adopted in any::<bool>(),
        runs in prop::collection::vec(run(), 1..10),
    ) {
        ips_stay_over(adopted, &runs)?;
    }
}

/// The history's runs, one after the other, each checked; then one deploy that converges.
fn ips_stay_over(adopted: bool, runs: &[Run]) -> Result<(), TestCaseError> {
    let mut account = simulate::empty();
    let with_adopted = |mut spec: StackSpec| {
        if adopted {
            spec.adopted_ips = vec![AllocationId::parse(ADOPTED).unwrap()];
        }
        spec
    };
    if adopted {
        account.addresses.push(ObservedAddress {
            adopted: true,
            ..address(ADOPTED, 9, AddressUse::Retained)
        });
    }
    let adopted_ips = ips(&account);
    let mut shown: BTreeSet<Ipv4Addr> = adopted_ips.clone();
    let mut last_azs = 2;

    for run in runs {
        let before = account.clone();
        let (plan, killed, release) = match run {
            Run::Deploy {
                azs,
                mode,
                allow_new_ips,
                killed,
            } => {
                last_azs = *azs;
                let options = PlanOptions {
                    allow_new_ips: *allow_new_ips,
                    ..PlanOptions::default()
                };
                let mut wanted = with_adopted(spec(*azs, &["f"]));
                match *mode {
                    0 => {}
                    // `ips` and `nat = "none"` do not go together (a compile error).
                    5 if !adopted => wanted.modes.nat = crate::requirements::NatMode::None,
                    5 => {}
                    6 => {
                        wanted.modes.nat = crate::requirements::NatMode::Instance;
                        wanted.modes.nat_self_healing = true;
                    }
                    7 => wanted.modes.nat = crate::requirements::NatMode::Instance,
                    8 => {
                        wanted.modes.nat = crate::requirements::NatMode::Instance;
                        wanted.modes.nats = Some(1);
                    }
                    n => wanted.modes.nats = Some(n.min(*azs)),
                }
                let nat_count = match wanted.modes.nat {
                    crate::requirements::NatMode::None => 0,
                    _ => wanted.modes.nats.unwrap_or(*azs),
                };
                let plan = plan_with(&wanted, &before, &options).unwrap();
                check_new_ips_wait(&plan, &before, *allow_new_ips);
                // A destroyed stack comes back on the IPs it kept.
                let kept = before
                    .addresses
                    .iter()
                    .filter(|a| a.usage == AddressUse::Retained)
                    .count();
                if before.vpc.is_none() && kept >= usize::from(nat_count) {
                    prop_assert!(
                        !plan
                            .steps
                            .iter()
                            .any(|s| matches!(s.action, Action::AllocateAddress { .. })),
                        "a new IP for a stack that kept {} IPs",
                        kept
                    );
                }
                (plan, killed, false)
            }
            Run::Destroy {
                release_ips,
                delete_functions,
                killed,
            } => {
                let options = PlanOptions {
                    release_ips: *release_ips,
                    delete_functions: *delete_functions,
                    ..PlanOptions::default()
                };
                let spec = with_adopted(spec(last_azs, &["f"]));
                (
                    plan_destroy(&spec, &before, &options).unwrap(),
                    killed,
                    *release_ips,
                )
            }
        };
        check_well_formed(&plan);
        account = match killed {
            None => apply_in_order(&plan, &before, None, |_| true),
            Some((mask, order)) => apply_in_order(&plan, &before, Some(*order), |step| {
                mask[step.0 % mask.len()]
            }),
        };
        if release {
            // Asked for: the stack's own IPs may go, the user's never.
            shown.retain(|ip| adopted_ips.contains(ip));
            if killed.is_none() {
                prop_assert_eq!(ips(&account), adopted_ips.clone());
            }
        }
        prop_assert!(
            shown.is_subset(&ips(&account)),
            "{:?} lost IPs: shown {:?}, held {:?}",
            run,
            shown,
            ips(&account)
        );
        prop_assert!(adopted_ips.is_subset(&ips(&account)));
        if killed.is_none() {
            // What `ips` prints after a run that finished.
            shown.extend(ips(&account));
        }
    }

    // Whatever happened, one deploy converges and keeps every IP shown.
    let spec = with_adopted(spec(2, &["f"]));
    let options = PlanOptions {
        allow_new_ips: true,
        ..PlanOptions::default()
    };
    let plan = plan_with(&spec, &account, &options).unwrap();
    check_well_formed(&plan);
    let last = apply_in_order(&plan, &account, None, |_| true);
    prop_assert!(plan_with(&spec, &last, &options).unwrap().is_noop());
    prop_assert!(shown.is_subset(&ips(&last)));
    Ok(())
}

// Ownership.

/// Every resource an action names: the ids in its [`Ref::Existing`]s and plain-id fields, and the
/// functions it changes. Written out per variant, so that a new action must say what it touches.
fn named(action: &Action) -> Vec<String> {
    let mut names: Vec<String> = action
        .refs()
        .into_iter()
        .filter_map(|r| match r {
            Ref::Existing(id) => Some(id.clone()),
            Ref::Step(_) => None,
        })
        .collect();
    let plain: Vec<&str> = match action {
        Action::CreateVpc { .. }
        | Action::EnableVpcDns { .. }
        | Action::CreateInternetGateway
        | Action::AttachInternetGateway { .. }
        | Action::CreateSubnet { .. }
        | Action::AllocateAddress { .. }
        | Action::CreateNatGateway { .. }
        | Action::CreateRouteTable { .. }
        | Action::AssociateRouteTable { .. }
        | Action::CreateRoute { .. }
        | Action::ReplaceRoute { .. }
        | Action::DeleteRoute { .. }
        | Action::CreateSecurityGroup { .. }
        | Action::CreateRole { .. }
        | Action::AttachRolePolicy { .. }
        | Action::CreateNatSecurityGroup { .. }
        | Action::LaunchNatInstance { .. }
        | Action::DisableSourceDestCheck { .. }
        | Action::AwaitNatInstanceReady { .. }
        | Action::AssociateAddress { .. }
        | Action::AuthorizeEgress { .. }
        | Action::RevokeEgress { .. }
        | Action::CreateEndpointSecurityGroup { .. }
        | Action::AdmitHttpsFrom { .. }
        | Action::CreateGatewayEndpoint { .. }
        | Action::CreateInterfaceEndpoint { .. }
        | Action::CreateNatProfile { .. }
        | Action::CreateNatInterface { .. }
        | Action::AssociateInterfaceAddress { .. }
        | Action::CreateNatLaunchTemplate { .. }
        | Action::CreateNatGroup { .. }
        | Action::AwaitNatGroupReady { .. }
        | Action::AwaitNatInterfaceAttached { .. } => Vec::new(),
        Action::DeleteNatGroup { name } | Action::DeleteNatProfile { name } => vec![name],
        Action::DeleteNatLaunchTemplate { id } | Action::DeleteNatInterface { id } => vec![id],
        Action::DisassociateAddress { association_id } => vec![association_id],
        Action::DropPublicIp { network_interface } => vec![network_interface],
        Action::TerminateNatInstance { instance } | Action::StartNatInstance { instance } => {
            vec![instance]
        }
        Action::ModifyInterfaceEndpoint {
            endpoint_id,
            remove_subnets: removed,
            ..
        }
        | Action::ModifyGatewayEndpoint {
            endpoint_id,
            remove_route_tables: removed,
            ..
        } => std::iter::once(endpoint_id)
            .chain(removed)
            .map(String::as_str)
            .collect(),
        Action::DeleteEndpoint { endpoint_id } => vec![endpoint_id],
        Action::ActivateAddress { allocation_id, .. }
        | Action::RetainAddress { allocation_id, .. }
        | Action::ReleaseAddress { allocation_id } => vec![allocation_id],
        Action::CreateFunction { function, .. }
        | Action::UpdateFunctionConfiguration { function, .. }
        | Action::UpdateFunctionCode { function }
        | Action::TagFunction { function, .. } => vec![&function.name],
        Action::DetachFunction { name }
        | Action::DeleteFunction { name }
        | Action::AwaitFunctionActive { name } => vec![name],
        Action::DeleteNatGateway { nat_gateway } => vec![nat_gateway],
        Action::ClearLambdaInterfaces { holder } => match holder {
            InterfaceHolder::Subnet(id) | InterfaceHolder::SecurityGroup(id) => vec![id],
        },
        Action::DeleteSubnet { subnet } => vec![subnet],
        Action::DeleteRouteTable {
            route_table,
            associations,
        } => std::iter::once(route_table)
            .chain(associations)
            .map(String::as_str)
            .collect(),
        Action::DeleteSecurityGroup { security_group } => vec![security_group],
        Action::DeleteInternetGateway {
            internet_gateway,
            vpc,
        } => {
            let mut ids = vec![internet_gateway.as_str()];
            ids.extend(vpc.as_deref());
            ids
        }
        Action::DeleteVpc { vpc } => vec![vpc],
        Action::DeleteRole { role, .. } => vec![role],
    };
    names.extend(plain.into_iter().map(str::to_owned));
    names
}

/// What the stack's tags lead to in an observation (the observer finds nothing else but the
/// functions it is asked about by name and the addresses `ips` names).
fn stack_owned(spec: &StackSpec, account: &ObservedState) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    ids.extend(account.vpc.iter().map(|v| v.id.clone()));
    ids.extend(account.internet_gateway.iter().map(|g| g.id.clone()));
    ids.extend(account.subnets.iter().map(|s| s.id.clone()));
    ids.extend(account.addresses.iter().map(|a| a.allocation_id.clone()));
    ids.extend(account.nat_gateways.iter().map(|n| n.id.clone()));
    ids.extend(account.route_tables.iter().map(|t| t.id.clone()));
    // The associations of the stack's addresses and route tables.
    ids.extend(
        account
            .addresses
            .iter()
            .filter_map(|a| a.association_id.clone()),
    );
    let tables = account.route_tables.iter();
    ids.extend(tables.flat_map(|t| t.associations.iter().map(|a| a.id.clone())));
    ids.extend(account.security_group.iter().map(|g| g.id.clone()));
    ids.extend(account.role.iter().map(|r| r.arn.clone()));
    let stack = spec.stack.as_str();
    let functions = account.functions.iter().filter(|f| {
        f.stack_tag.as_deref() == Some(stack) || spec.functions.iter().any(|m| m.name == f.name)
    });
    ids.extend(functions.map(|f| f.name.clone()));
    // Plans refer to the stack's own role (and functions' own roles) by ARN; policies by ARN.
    ids.extend(spec.functions.iter().filter_map(|f| f.role.clone()));
    ids
}

/// A function that is not the stack's: another stack's or nobody's, attached to the stack's
/// private subnets or not.
fn foreign_function() -> impl Strategy<Value = (Option<&'static str>, Option<usize>)> {
    (
        prop::sample::select(vec![None, Some("other-stack")]),
        prop::option::of(0..4usize),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn steps_only_name_what_the_stack_owns_or_the_user_named(
        azs in 1..=4u8,
        next_azs in 1..=4u8,
        foreign in prop::collection::vec(foreign_function(), 0..4),
        allow_new_ips in any::<bool>(),
        release_ips in any::<bool>(),
        delete_functions in any::<bool>(),
    ) {
        let mine = spec(azs, &["f"]);
        let mut account = simulate::deployed(&mine, &simulate::empty());
        let private: Vec<String> = account
            .subnets
            .iter()
            .filter(|s| s.tier == Tier::Private)
            .map(|s| s.id.clone())
            .collect();
        for (n, (stack_tag, attached)) in foreign.iter().enumerate() {
            let subnet_ids: Vec<String> = attached
                .and_then(|i| private.get(i % private.len()).cloned())
                .into_iter()
                .collect();
            let template = &account.functions[0];
            account.functions.push(ObservedFunction {
                name: format!("foreign-{n}"),
                arn: format!("arn:aws:lambda:us-east-1:123456789012:function:foreign-{n}"),
                stack_tag: stack_tag.map(str::to_owned),
                state: Default::default(),
                security_group_ids: if subnet_ids.is_empty() { Vec::new() } else { template.security_group_ids.clone() },
                subnet_ids,
                role_arn: "arn:aws:iam::123456789012:role/theirs".to_owned(),
                ..template.clone()
            });
        }
        let untouched: Vec<ObservedFunction> = account.functions[1..]
            .iter()
            .filter(|f| f.subnet_ids.is_empty())
            .cloned()
            .collect();
        let attached_foreign: BTreeSet<String> = account.functions[1..]
            .iter()
            .filter(|f| !f.subnet_ids.is_empty())
            .map(|f| f.name.clone())
            .collect();

        let next = spec(next_azs, &["f"]);
        let deploy = PlanOptions { allow_new_ips, ..PlanOptions::default() };
        let destroy = PlanOptions {
            release_ips,
            delete_functions,
            force_detach_others: true,
            ..PlanOptions::default()
        };
        let deploy_plan = plan_with(&next, &account, &deploy).unwrap();
        let destroy_plan = plan_destroy(&next, &account, &destroy).unwrap();
        // Without the flag, a destroy that would cut off someone else's function is refused.
        prop_assert_eq!(
            plan_destroy(&next, &account, &PlanOptions::default()).is_err(),
            !attached_foreign.is_empty()
        );

        for (plan, told) in [(&deploy_plan, BTreeSet::new()), (&destroy_plan, attached_foreign.clone())] {
            check_well_formed(plan);
            let mut allowed = stack_owned(&next, &account);
            allowed.extend(told);
            for step in &plan.steps {
                for id in named(&step.action) {
                    prop_assert!(allowed.contains(&id), "step {:?} names {} that is not the stack's", step, id);
                }
                // Someone else's function is at most taken out of the stack's network.
                if let Action::DeleteFunction { name } = &step.action {
                    prop_assert_eq!(name.as_str(), "f");
                }
            }
            let after = apply_in_order(plan, &account, None, |_| true);
            for function in &untouched {
                prop_assert!(after.functions.contains(function), "{} was changed", function.name);
            }
        }
        // A deploy keeps a slot that someone else's function runs in.
        let after = apply_in_order(&deploy_plan, &account, None, |_| true);
        for function in after.functions.iter().filter(|f| attached_foreign.contains(&f.name)) {
            for subnet in &function.subnet_ids {
                prop_assert!(after.subnets.iter().any(|s| s.id == *subnet));
                let routed = after.route_tables.iter().any(|t| {
                    t.serves(subnet)
                        && t.routes.iter().any(|r| r.destination == ANYWHERE
                            && matches!(&r.target, crate::observed::RouteTarget::NatGateway(_)))
                });
                prop_assert!(routed, "{} lost its route out", function.name);
            }
        }
    }
}
