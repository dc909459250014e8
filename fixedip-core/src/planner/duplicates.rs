//! Duplicates: more than one resource tagged as the stack's where a stack has one.
//!
//! They come from a create whose answer was lost (the connection closed after AWS made the
//! resource) and that was sent again: EC2's CreateVpc, CreateInternetGateway and AllocateAddress
//! take no client token, so the SDK's own retry made a second one. The executor no longer does
//! that (it looks the resource up by its tags before trying again), but an older version, or
//! another tool, may have left some. A stack must converge anyway:
//!
//! - internet gateways: the one attached to the stack's VPC is the stack's (observe picks it);
//!   the others, attached nowhere, are deleted. One attached to another VPC is left alone, with
//!   a note: detaching it could cut that VPC off.
//! - route tables: per tier and slot, the table that routes most (associations first, then a
//!   default route, then the lowest id) is the stack's; the others are deleted. In practice they
//!   are empty: a duplicate was never associated, since the run that made it used the other one.
//! - Elastic IPs: an address of the stack that claims a slot (`active` or `pending` with a
//!   `fixedip:slot` tag), is not the one the slot uses, and is associated with nothing, is a
//!   duplicate. If it is `pending` it never carried traffic: it is released. If it is `active` it
//!   is kept, re-tagged `retained` (so it is reused first by the next AZ the stack needs), never
//!   released: guarantee 1 forbids releasing an address that may be on an allowlist. Adopted
//!   addresses are never touched.
//! - VPCs: two tagged VPCs stop the run before planning (observe's `DuplicateVpcs` error says
//!   which one holds nothing and how to delete it): which VPC is the stack's is not a choice to
//!   make silently, since everything else hangs off it.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::observed::{AddressUse, ObservedRouteTable, ObservedState, Slot, Tier};
use crate::plan::Action;

use super::{Inventory, Planner, ANYWHERE};

/// The route table a tier and slot uses when several claim it: the one that routes most.
pub(super) fn preferred_route_table<'a>(
    tables: impl Iterator<Item = &'a ObservedRouteTable>,
) -> Option<&'a ObservedRouteTable> {
    tables.min_by(|a, b| {
        let rank = |t: &ObservedRouteTable| {
            (
                std::cmp::Reverse(t.associations.len()),
                !t.routes.iter().any(|r| r.destination == ANYWHERE),
            )
        };
        (rank(a), &a.id).cmp(&(rank(b), &b.id))
    })
}

/// Route tables tagged for a tier and slot that already has its table.
fn extra_route_tables<'a>(inventory: &Inventory<'a>) -> Vec<&'a ObservedRouteTable> {
    let used: BTreeSet<&str> = inventory
        .public_route_table
        .iter()
        .chain(inventory.private_route_tables.values())
        .map(|t| t.id.as_str())
        .collect();
    inventory
        .route_tables
        .iter()
        .copied()
        .filter(|t| !used.contains(t.id.as_str()))
        .filter(|t| match (t.tier, t.slot) {
            (Tier::Public, _) => inventory.public_route_table.is_some(),
            (Tier::Private, Some(slot)) => inventory.private_route_tables.contains_key(&slot),
            // A private table without a slot is none fixedip made: not ours to judge.
            (Tier::Private, None) => false,
        })
        .collect()
}

/// What the plan does about duplicates.
#[derive(Debug, Default)]
pub(super) struct Cleared {
    /// Duplicate `pending` addresses the plan releases (allocation id, IP).
    pub released: Vec<(String, Ipv4Addr)>,
}

/// Plans the duplicates away. `serving`: the addresses the plan keeps serving a slot (wanted or
/// surplus); `wanted`: the slots the stack uses.
pub(super) fn plan_away(
    planner: &mut Planner,
    observed: &ObservedState,
    inventory: &Inventory,
    serving: &BTreeSet<&str>,
    wanted: &BTreeSet<Slot>,
) -> Cleared {
    for gateway in &observed.extra_internet_gateways {
        match &gateway.attached_vpc {
            None => {
                let action = Action::DeleteInternetGateway {
                    internet_gateway: gateway.id.clone(),
                    vpc: None,
                };
                planner.push(action, &[]);
            }
            Some(vpc) => planner.notes.push(format!(
                "internet gateway {} is tagged as this stack's but attached to {vpc}, not to the stack's VPC: it is left as it is; if it is not needed there, detach and delete it (`aws ec2 detach-internet-gateway --internet-gateway-id {} --vpc-id {vpc}`, then `aws ec2 delete-internet-gateway --internet-gateway-id {}`)",
                gateway.id, gateway.id, gateway.id
            )),
        }
    }
    for table in extra_route_tables(inventory) {
        planner.delete_route_table(table, &[]);
    }
    let mut cleared = Cleared::default();
    for address in duplicate_addresses(inventory, serving, wanted) {
        let allocation_id = address.allocation_id.clone();
        match address.usage {
            AddressUse::Pending => {
                planner.push(Action::ReleaseAddress { allocation_id }, &[]);
                cleared
                    .released
                    .push((address.allocation_id.clone(), address.public_ip));
            }
            AddressUse::Active => {
                planner.push(
                    Action::RetainAddress {
                        allocation_id,
                        pending: false,
                    },
                    &[],
                );
            }
            AddressUse::Retained => {}
        }
    }
    cleared
}

/// Addresses that claim a slot the stack uses, but are not the one it uses, and are associated
/// with nothing: left by an AllocateAddress sent twice.
fn duplicate_addresses<'a>(
    inventory: &Inventory<'a>,
    serving: &BTreeSet<&str>,
    wanted: &BTreeSet<Slot>,
) -> Vec<&'a crate::observed::ObservedAddress> {
    inventory
        .addresses
        .iter()
        .copied()
        .filter(|a| !a.adopted && a.usage != AddressUse::Retained)
        .filter(|a| a.slot.is_some_and(|slot| wanted.contains(&slot)))
        .filter(|a| a.association_id.is_none())
        .filter(|a| !serving.contains(a.allocation_id.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use crate::observed::{
        AddressUse, ObservedInternetGateway, ObservedRoute, ObservedRouteTable, ObservedState,
        RouteTarget, Tier,
    };
    use crate::plan::{Action, StackSpec, Status};
    use crate::planner::simulate;
    use crate::planner::PlanOptions;
    use crate::planner::{plan, plan_destroy, ANYWHERE};

    fn spec(azs: u8) -> StackSpec {
        simulate::spec(azs, &["hello-egress"])
    }

    /// A stack deployed in two AZs, as the simulated account holds it.
    fn deployed() -> ObservedState {
        simulate::deployed(&spec(2), &simulate::empty())
    }

    fn actions(observed: &ObservedState) -> Vec<Action> {
        plan(&spec(2), observed)
            .expect("plans")
            .steps
            .into_iter()
            .map(|s| s.action)
            .collect()
    }

    #[test]
    fn a_deployed_stack_has_no_duplicates_to_clear() {
        assert_eq!(actions(&deployed()), Vec::<Action>::new());
    }

    #[test]
    fn a_detached_extra_internet_gateway_is_deleted_and_an_attached_elsewhere_one_is_left() {
        let mut account = deployed();
        account.extra_internet_gateways = vec![
            ObservedInternetGateway {
                id: "igw-extra".to_owned(),
                attached_vpc: None,
            },
            ObservedInternetGateway {
                id: "igw-other".to_owned(),
                attached_vpc: Some("vpc-other".to_owned()),
            },
        ];
        let planned = plan(&spec(2), &account).unwrap();
        let steps: Vec<Action> = planned.steps.into_iter().map(|s| s.action).collect();
        assert_eq!(
            steps,
            [Action::DeleteInternetGateway {
                internet_gateway: "igw-extra".to_owned(),
                vpc: None,
            }]
        );
        assert!(
            planned.notes.iter().any(|n| n.contains("igw-other")),
            "{:?}",
            planned.notes
        );
        let after = simulate::apply(&plan(&spec(2), &account).unwrap(), &account);
        assert!(after
            .extra_internet_gateways
            .iter()
            .all(|g| g.id != "igw-extra"));
        assert!(
            after.internet_gateway.is_some(),
            "the stack's gateway stays"
        );
    }

    #[test]
    fn extra_route_tables_are_deleted_and_the_one_that_routes_stays() {
        let mut account = deployed();
        let public = account
            .route_tables
            .iter()
            .find(|t| t.tier == Tier::Public)
            .unwrap()
            .clone();
        let private_1 = account
            .route_tables
            .iter()
            .find(|t| t.slot == Some(1))
            .unwrap()
            .clone();
        // Lower ids than the tables in use: the lowest id alone would pick the duplicate.
        for (id, like) in [("rtb-0000a", &public), ("rtb-0000b", &private_1)] {
            account.route_tables.push(ObservedRouteTable {
                id: id.to_owned(),
                tier: like.tier,
                slot: like.slot,
                associations: Vec::new(),
                routes: vec![ObservedRoute {
                    destination: "10.0.0.0/16".parse().unwrap(),
                    target: RouteTarget::Local,
                    blackhole: false,
                }],
            });
        }
        let mut steps = actions(&account);
        steps.sort_by_key(|a| format!("{a:?}"));
        assert_eq!(
            steps,
            ["rtb-0000a", "rtb-0000b"].map(|id| Action::DeleteRouteTable {
                route_table: id.to_owned(),
                associations: Vec::new(),
            })
        );
        let after = simulate::apply(&plan(&spec(2), &account).unwrap(), &account);
        assert_eq!(actions(&after), Vec::<Action>::new(), "converged");
        assert!(after.route_tables.iter().any(|t| t.id == public.id));
        assert!(after
            .route_tables
            .iter()
            .all(|t| t.routes.iter().any(|r| r.destination == ANYWHERE)));
    }

    #[test]
    fn a_duplicate_pending_address_is_released_a_duplicate_active_one_is_retained() {
        let mut account = deployed();
        let active = account
            .addresses
            .iter()
            .find(|a| a.slot == Some(0))
            .unwrap()
            .clone();
        let mut twin_active = active.clone();
        twin_active.allocation_id = "eipalloc-00twin".to_owned();
        twin_active.public_ip = Ipv4Addr::new(198, 51, 100, 1);
        twin_active.association_id = None;
        twin_active.network_interface_id = None;
        let mut twin_pending = twin_active.clone();
        twin_pending.allocation_id = "eipalloc-00pend".to_owned();
        twin_pending.public_ip = Ipv4Addr::new(198, 51, 100, 2);
        twin_pending.usage = AddressUse::Pending;
        twin_pending.slot = Some(1);
        let mut adopted = twin_active.clone();
        adopted.allocation_id = "eipalloc-00mine".to_owned();
        adopted.adopted = true;
        account
            .addresses
            .extend([twin_active, twin_pending, adopted]);

        let planned = plan(&spec(2), &account).unwrap();
        let mut steps: Vec<Action> = planned.steps.iter().map(|s| s.action.clone()).collect();
        steps.sort_by_key(|a| format!("{a:?}"));
        assert_eq!(
            steps,
            [
                Action::ReleaseAddress {
                    allocation_id: "eipalloc-00pend".to_owned()
                },
                Action::RetainAddress {
                    allocation_id: "eipalloc-00twin".to_owned(),
                    pending: false,
                },
            ]
        );
        assert_eq!(
            planned.network.released_addresses,
            [("eipalloc-00pend".to_owned(), Ipv4Addr::new(198, 51, 100, 2))]
        );
        assert!(planned
            .network
            .retained_addresses
            .iter()
            .all(|(id, _)| id != "eipalloc-00pend"));
        // The address the slot uses is untouched.
        assert!(planned
            .network
            .azs
            .iter()
            .all(|az| matches!(az.address.1, Status::Keep(_))));
        let after = simulate::apply(&planned, &account);
        assert_eq!(actions(&after), Vec::<Action>::new(), "converged");
        assert!(after
            .addresses
            .iter()
            .any(|a| a.allocation_id == "eipalloc-00twin" && a.usage == AddressUse::Retained));
        assert!(after
            .addresses
            .iter()
            .any(|a| a.allocation_id == active.allocation_id));
    }

    #[test]
    fn an_associated_address_is_never_taken_for_a_duplicate() {
        let mut account = deployed();
        let mut elsewhere = account.addresses[0].clone();
        elsewhere.allocation_id = "eipalloc-00busy".to_owned();
        elsewhere.association_id = Some("eipassoc-1".to_owned());
        account.addresses.push(elsewhere);
        assert!(actions(&account).iter().all(|a| !matches!(
            a,
            Action::ReleaseAddress { .. } | Action::RetainAddress { .. }
        )));
    }

    #[test]
    fn destroy_deletes_the_extra_internet_gateways_too() {
        let mut account = deployed();
        account.extra_internet_gateways = vec![ObservedInternetGateway {
            id: "igw-extra".to_owned(),
            attached_vpc: None,
        }];
        let planned = plan_destroy(&spec(2), &account, &PlanOptions::default()).unwrap();
        assert!(planned.steps.iter().any(|s| s.action
            == Action::DeleteInternetGateway {
                internet_gateway: "igw-extra".to_owned(),
                vpc: None
            }));
        let after = simulate::apply(&planned, &account);
        assert_eq!(after.internet_gateway, None);
        assert!(after.extra_internet_gateways.is_empty());
    }
}
