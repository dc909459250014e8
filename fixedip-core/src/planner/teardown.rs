//! Taking part of a stack apart: the slots a smaller `azs` leaves behind, the NATs of slots that
//! lose theirs, the internet side of a stack that became isolated; and a slot's network, for
//! `destroy` too (`destroy.rs`).
//!
//! Both remove in the order AWS accepts: functions out of the private subnets first; then the
//! NAT gateways, waited for until `deleted` (only then is an Elastic IP free and a public subnet
//! deletable); then the addresses, kept as retained (or, for `destroy --release-ips`, released,
//! except adopted ones); Lambda's lingering network interfaces waited out before their subnet or
//! security group goes; subnets; route tables; the security group; the internet gateway,
//! detached and deleted; the VPC; the stack's own role, last, when nothing that stays uses it.
//! Every id comes from the observation, so a run killed part way is finished by planning again:
//! what is gone gets no step.

use std::collections::BTreeMap;

use super::endpoints::PlannedEndpoints;
use super::inventory::Inventory;
use super::nats::{NatLayout, NatRemoval};
use super::network::Base;
use super::routes::Routes;
use super::steps::Planner;
use super::Context;
use crate::observed::{AddressUse, Slot, Tier};
use crate::plan::{Action, InterfaceHolder, Status, StepId};

/// What removing a slot's network did, for the steps that must follow it.
pub(super) struct SlotTeardown {
    /// The DeleteNatGateway step of each NAT gateway, by id.
    pub nat_gateways_deleted: BTreeMap<String, StepId>,
    /// The steps after which the addresses of each NAT gateway, by id, are free: its deletion
    /// and the removal of the associations it leaves.
    pub addresses_freed: BTreeMap<String, Vec<StepId>>,
    /// The DeleteSubnet and DeleteRouteTable steps.
    pub network_deleted: Vec<StepId>,
    /// The TerminateNatInstance steps: the addresses they held are free after them.
    pub instances_terminated: Vec<StepId>,
}

impl Planner {
    /// Removes a slot's NAT gateways, subnets and private route tables, once `functions_off`
    /// (the steps that take functions out of its private subnet) are done; its NATs also once
    /// `routes_moved` (the route changes of the slots that stay: under `nats`, one of them may
    /// route through this slot's NAT until then, with no function to move). Its addresses are
    /// the caller's to keep or release, after `nat_gateways_deleted`.
    pub(super) fn remove_slot(
        &mut self,
        slot: Slot,
        inventory: &Inventory,
        (functions_off, routes_moved): (&[StepId], &[StepId]),
    ) -> SlotTeardown {
        let nats = inventory.nats_of_slot(slot);
        let nats_off: Vec<StepId> = functions_off.iter().chain(routes_moved).copied().collect();
        let mut nat_gateways_deleted = BTreeMap::new();
        let mut addresses_freed = BTreeMap::new();
        for nat in &nats {
            let action = Action::DeleteNatGateway {
                nat_gateway: nat.id.clone(),
            };
            let deleted = self.push(action, &nats_off);
            nat_gateways_deleted.insert(nat.id.clone(), deleted);
            let freed = self.free_addresses_of_nat(inventory, &nat.allocation_ids, deleted);
            addresses_freed.insert(nat.id.clone(), freed);
        }

        let instances = self.terminate_instances_of_slot(slot, inventory, &nats_off);

        let mut subnets_deleted: BTreeMap<&str, StepId> = BTreeMap::new();
        for subnet in inventory.subnets.iter().filter(|s| s.slot == slot) {
            // A NAT's network interface goes with the NAT; a function's lingers after it left.
            let mut ordering: Vec<StepId> = nats
                .iter()
                .filter(|nat| nat.subnet_id == subnet.id)
                .map(|nat| nat_gateways_deleted[&nat.id])
                .chain(
                    instances
                        .iter()
                        .filter(|(subnet_id, _)| *subnet_id == subnet.id)
                        .map(|(_, step)| *step),
                )
                .collect();
            if subnet.tier == Tier::Private {
                let action = Action::ClearLambdaInterfaces {
                    holder: InterfaceHolder::Subnet(subnet.id.clone()),
                };
                ordering.push(self.push(action, functions_off));
            }
            let action = Action::DeleteSubnet {
                subnet: subnet.id.clone(),
            };
            subnets_deleted.insert(&subnet.id, self.push(action, &ordering));
        }

        let mut network_deleted: Vec<StepId> = subnets_deleted.values().copied().collect();
        let tables = inventory
            .route_tables
            .iter()
            .filter(|t| t.tier == Tier::Private && t.slot == Some(slot));
        for table in tables {
            // Its subnets go first, and their associations with them; the executor disassociates
            // whatever is left. A table with no subnet of the slot waits for the functions only.
            let mut ordering: Vec<StepId> = table
                .associations
                .iter()
                .filter_map(|a| subnets_deleted.get(a.subnet_id.as_str()).copied())
                .collect();
            if ordering.is_empty() {
                ordering = functions_off.to_vec();
            }
            network_deleted.push(self.delete_route_table(table, &ordering));
        }
        SlotTeardown {
            nat_gateways_deleted,
            addresses_freed,
            network_deleted,
            instances_terminated: instances.into_iter().map(|(_, step)| step).collect(),
        }
    }
}

impl Planner {
    /// What the stack no longer uses, once nothing depends on it: the NATs of slots that keep
    /// their AZ but lose their NAT (`nats` lowered, or isolated), the slots beyond `azs`, and,
    /// isolated, the internet side. Addresses stay, retained. Returns the removal and the
    /// statuses of the internet gateway and the public route table.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn remove_unused(
        &mut self,
        context: &Context,
        layout: &NatLayout,
        wanted: &[(Slot, String)],
        removed: &[Slot],
        kept_surplus: &[Slot],
        routes: &Routes,
        endpoints: &PlannedEndpoints,
        base: &Base,
    ) -> (NatRemoval, Status, Status) {
        let inventory = &context.inventory;
        let functions_moved: Vec<StepId> = self.configured_functions.values().copied().collect();
        let moved = [routes.routes_moved.clone(), functions_moved].concat();
        let mut removal = self.remove_nats(layout, wanted, inventory, &moved);
        for &slot in removed {
            let routes_moved = &routes.routes_moved;
            self.remove_surplus_slot(context, slot, (endpoints, routes_moved), &mut removal);
        }
        // Isolated: the internet side goes after every NAT, those of removed slots included.
        let (internet_gateway, public_route_table) =
            match (&base.internet_gateway, &routes.public_route_table) {
                (Some(gateway), Some(table)) => {
                    (gateway.planned.status.clone(), table.status.clone())
                }
                _ => self.remove_internet_side(context.observed, inventory, &removal, kept_surplus),
            };
        (removal, internet_gateway, public_route_table)
    }

    /// A slot beyond `azs` goes once the functions and the slot's endpoints have left it, and
    /// its NAT once no route of the slots that stay leads to it (`routes_moved`); its addresses
    /// stay, retained, unless a slot the stack uses took them (an abandoned slot's).
    fn remove_surplus_slot(
        &mut self,
        context: &Context,
        slot: Slot,
        (endpoints, routes_moved): (&PlannedEndpoints, &[StepId]),
        removal: &mut NatRemoval,
    ) {
        let inventory = &context.inventory;
        let functions_off: Vec<StepId> =
            super::slots::functions_in_slot(context.observed, inventory, slot)
                .into_iter()
                .filter_map(|name| self.configured_functions.get(name).copied())
                .chain(
                    endpoints
                        .slot_cleared
                        .get(&slot)
                        .into_iter()
                        .flatten()
                        .copied(),
                )
                .collect();
        let teardown = self.remove_slot(slot, inventory, (&functions_off, routes_moved));
        let nats_deleted: Vec<StepId> = teardown
            .nat_gateways_deleted
            .values()
            .chain(&teardown.instances_terminated)
            .copied()
            .collect();
        let freed: Vec<StepId> = teardown
            .addresses_freed
            .values()
            .flatten()
            .chain(&teardown.instances_terminated)
            .copied()
            .collect();
        removal.deleted.extend(&nats_deleted);
        removal.subnets_deleted.extend(&teardown.network_deleted);
        for address in inventory.addresses_of_slot(slot) {
            // An abandoned slot's address serves the slot that took its place: not retained.
            let taken = context
                .addresses_taken
                .contains_key(address.allocation_id.as_str());
            if address.usage != AddressUse::Retained && !taken {
                let mut after = freed.clone();
                after.extend(self.free_stale_association(address));
                let action = Action::RetainAddress {
                    allocation_id: address.allocation_id.clone(),
                    pending: address.usage == AddressUse::Pending,
                };
                self.push(action, &after);
            }
        }
    }
}
