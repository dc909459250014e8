//! How many NATs a stack runs and which AZs they serve: `nats = N` (fewer NATs than AZs) and
//! `nat = "none"` (isolated).
//!
//! # Fewer NATs than AZs
//! The function still runs in a private subnet in each of the `azs` slots. Only `N` of the slots
//! hold a NAT, and only they have a public subnet: a public subnet without a NAT would hold
//! nothing. Those are the slots whose NAT gateway exists already (lowest slot first), then the
//! lowest other slots: a NAT that exists is never replaced by a new one elsewhere, which would
//! need a new IP. Every NAT serves its own AZ; the `k`-th slot without a NAT (by slot number)
//! routes 0.0.0.0/0 through the `k mod N`-th NAT: spread evenly, and always the same way, so
//! replanning never moves a route. Lowering `nats` on a live stack first points the routes of the
//! AZs that lose their NAT
//! at the NATs that stay, then deletes the NATs that no route uses any more, keeps their Elastic
//! IPs as retained (they may be on an allowlist: never released without `--release-ips`), and
//! deletes their public subnets. Raising it puts retained IPs back to work first; a new IP waits
//! for `--allow-new-ips`, and meanwhile the AZ keeps leaving through a NAT that carries traffic.
//!
//! # Isolated
//! No NAT, no Elastic IP, no internet gateway, no public subnet: private subnets only, each with
//! its own route table holding no route out (room for the gateway endpoints of S3 and DynamoDB).
//! A stack switched to isolated loses its 0.0.0.0/0 routes first, then its NATs (their IPs kept as
//! retained), public subnets, public route table and internet gateway. Switched back, the retained
//! IPs are put to work before any new one is allocated.

use std::collections::BTreeMap;

use crate::observed::{AddressUse, ObservedState, Slot, Tier};
use crate::plan::{Action, NetworkModes, Status, StepId};
use crate::requirements::NatMode;

use super::inventory::Inventory;
use super::steps::Planner;

/// Which of the stack's slots hold a NAT.
pub(super) struct NatLayout {
    /// The slots with a NAT, by slot number.
    nat_slots: Vec<Slot>,
    /// The other slots of the stack, by slot number.
    without: Vec<Slot>,
}

impl NatLayout {
    pub(super) fn new(
        modes: &NetworkModes,
        wanted: &[(Slot, String)],
        inventory: &Inventory,
    ) -> NatLayout {
        let slots: Vec<Slot> = wanted.iter().map(|(slot, _)| *slot).collect();
        let nat_count = match modes.nat {
            NatMode::None => 0,
            NatMode::Gateway | NatMode::Instance => {
                modes.nats.map_or(slots.len(), usize::from).min(slots.len())
            }
        };
        let (with_nat, others): (Vec<Slot>, Vec<Slot>) = slots
            .iter()
            // A slot holding a NAT of either kind keeps it (a mode switch moves it in place).
            .partition(|slot| {
                inventory.live_nat(**slot).is_some()
                    || inventory.live_instance(**slot).is_some()
                    || inventory.has_nat_group(**slot)
            });
        let mut nat_slots: Vec<Slot> = with_nat.into_iter().chain(others).take(nat_count).collect();
        nat_slots.sort();
        let without = slots
            .into_iter()
            .filter(|s| !nat_slots.contains(s))
            .collect();
        NatLayout { nat_slots, without }
    }

    /// No NAT at all: nothing leaves the VPC.
    pub(super) fn isolated(&self) -> bool {
        self.nat_slots.is_empty()
    }

    pub(super) fn has_nat(&self, slot: Slot) -> bool {
        self.nat_slots.contains(&slot)
    }

    /// The slot whose NAT serves `slot`: its own, or for the `k`-th slot without one, the
    /// `k mod N`-th NAT. `None` when isolated.
    pub(super) fn serving(&self, slot: Slot) -> Option<Slot> {
        if self.has_nat(slot) {
            return Some(slot);
        }
        let k = self.without.iter().position(|s| *s == slot)?;
        (!self.isolated()).then(|| self.nat_slots[k % self.nat_slots.len()])
    }
}

/// What [`Planner::remove_nats`] planned, by slot.
#[derive(Default)]
pub(super) struct NatRemoval {
    /// The NAT gateway of a slot that loses it (the first, by id, when several).
    pub(super) nat_gateways: BTreeMap<Slot, String>,
    pub(super) public_subnets: BTreeMap<Slot, String>,
    /// Every DeleteNatGateway and TerminateNatInstance step.
    pub(super) deleted: Vec<StepId>,
    /// Every DeleteSubnet step of a public subnet.
    pub(super) subnets_deleted: Vec<StepId>,
}

impl Planner {
    /// Removes the NAT side (NAT gateways, public subnet) of every slot the stack keeps but that
    /// holds no NAT in `layout`; their addresses are kept, retained. `routes_moved` are the steps
    /// after which no route (and no function) depends on those NATs any more.
    pub(super) fn remove_nats(
        &mut self,
        layout: &NatLayout,
        wanted: &[(Slot, String)],
        inventory: &Inventory,
        routes_moved: &[StepId],
    ) -> NatRemoval {
        let mut removal = NatRemoval::default();
        for (slot, az) in wanted.iter().filter(|(slot, _)| !layout.has_nat(*slot)) {
            let slot = *slot;
            let nats = inventory.nats_of_slot(slot);
            let mut deleted = Vec::new();
            let mut freed = Vec::new();
            for nat in &nats {
                let action = Action::DeleteNatGateway {
                    nat_gateway: nat.id.clone(),
                };
                let step = self.push(action, routes_moved);
                freed.extend(self.free_addresses_of_nat(inventory, &nat.allocation_ids, step));
                deleted.push((nat, step));
            }
            if let Some(nat) = nats.first() {
                removal.nat_gateways.insert(slot, nat.id.clone());
            }
            // A NAT instance goes the same way; AWS frees its address as it terminates.
            let terminated = self.terminate_instances_of_slot(slot, inventory, routes_moved);
            if let (None, Some(instance)) = (
                nats.first(),
                inventory.all_instances.iter().find(|i| i.slot == slot),
            ) {
                removal.nat_gateways.insert(slot, instance.id.clone());
            }
            let released: Vec<StepId> = freed
                .into_iter()
                .chain(terminated.iter().map(|(_, step)| *step))
                .collect();
            for address in inventory.addresses_of_slot(slot) {
                if address.usage != AddressUse::Retained {
                    let mut after = released.clone();
                    after.extend(self.free_stale_association(address));
                    let action = Action::RetainAddress {
                        allocation_id: address.allocation_id.clone(),
                        pending: address.usage == AddressUse::Pending,
                    };
                    self.push(action, &after);
                }
            }
            if let Some(subnet) = inventory.subnet(slot, Tier::Public) {
                let ordering: Vec<StepId> = deleted
                    .iter()
                    .filter(|(nat, _)| nat.subnet_id == subnet.id)
                    .map(|(_, step)| *step)
                    .chain(
                        terminated
                            .iter()
                            .filter(|(subnet_id, _)| *subnet_id == subnet.id)
                            .map(|(_, step)| *step),
                    )
                    .collect();
                let action = Action::DeleteSubnet {
                    subnet: subnet.id.clone(),
                };
                removal.subnets_deleted.push(self.push(action, &ordering));
                removal.public_subnets.insert(slot, subnet.id.clone());
            }
            if !nats.is_empty() || !terminated.is_empty() {
                let kind = if nats.is_empty() {
                    "NAT instance"
                } else {
                    "NAT gateway"
                };
                self.notes.push(format!(
                    "AZ slot {slot} ({az}) loses its {kind}; its Elastic IP stays allocated as retained, still on the allowlist and still billed: raising `nats` again uses it first, and `cargo fixedip destroy --release-ips` gives it back"
                ));
            }
            removal.deleted.extend(
                deleted
                    .iter()
                    .map(|(_, step)| *step)
                    .chain(terminated.iter().map(|(_, step)| *step)),
            );
        }
        removal
    }

    /// An isolated stack's internet side: the public route table (after the public subnets) and
    /// the internet gateway (after the NATs, which map public IPs in the VPC) go. Returns their
    /// statuses for the plan's view. While a slot beyond `azs` stays with its NAT (a function
    /// the plan does not deploy runs there), both stay: that function still leaves through them.
    pub(super) fn remove_internet_side(
        &mut self,
        observed: &ObservedState,
        inventory: &Inventory,
        removal: &NatRemoval,
        kept_surplus: &[Slot],
    ) -> (Status, Status) {
        let kept = |id: Option<&String>| id.map_or(Status::Absent, |id| Status::Keep(id.clone()));
        if kept_surplus.iter().any(|slot| {
            inventory.live_nat(*slot).is_some()
                || inventory.live_instance(*slot).is_some()
                || inventory.has_nat_group(*slot)
        }) {
            self.notes.push(
                "the internet gateway stays while a slot beyond `azs` keeps its NAT gateway"
                    .to_owned(),
            );
            return (
                kept(observed.internet_gateway.as_ref().map(|g| &g.id)),
                kept(inventory.public_route_table.map(|t| &t.id)),
            );
        }
        let public_route_table = match inventory.public_route_table {
            Some(table) => {
                self.delete_route_table(table, &removal.subnets_deleted);
                Status::Delete(table.id.clone())
            }
            None => Status::Absent,
        };
        let internet_gateway = match &observed.internet_gateway {
            Some(gateway) => {
                let action = Action::DeleteInternetGateway {
                    internet_gateway: gateway.id.clone(),
                    vpc: gateway.attached_vpc.clone(),
                };
                self.push(action, &removal.deleted);
                Status::Delete(gateway.id.clone())
            }
            None => Status::Absent,
        };
        (internet_gateway, public_route_table)
    }
}
