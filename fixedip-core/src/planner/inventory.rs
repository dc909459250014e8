//! The observed resources, sorted and indexed, so that the plan does not depend on the order AWS
//! listed them in.

use std::collections::{BTreeMap, BTreeSet};

use super::duplicates;
use crate::observed::{
    AddressUse, NatState, ObservedAddress, ObservedNatGateway, ObservedNatGroup,
    ObservedNatInstance, ObservedNatInterface, ObservedNatLaunchTemplate, ObservedRouteTable,
    ObservedState, ObservedSubnet, Slot, Tier,
};

/// The observed resources, sorted and indexed, so that the plan does not depend on the order AWS
/// listed them in.
pub(super) struct Inventory<'a> {
    pub(super) region_azs: Vec<&'a str>,
    pub(super) subnets: Vec<&'a ObservedSubnet>,
    /// `pending` or `available` NAT gateways, available first, then by id.
    pub(super) live_nats: Vec<&'a ObservedNatGateway>,
    /// NAT gateways on their way out (`deleting`), by id.
    pub(super) deleting_nats: Vec<&'a ObservedNatGateway>,
    /// NAT gateways that failed to come up (AWS deletes them after a while), by id.
    pub(super) failed_nats: Vec<&'a ObservedNatGateway>,
    pub(super) addresses: Vec<&'a ObservedAddress>,
    pub(super) public_route_table: Option<&'a ObservedRouteTable>,
    pub(super) private_route_tables: BTreeMap<Slot, &'a ObservedRouteTable>,
    /// Every route table of the stack, by id.
    pub(super) route_tables: Vec<&'a ObservedRouteTable>,
    /// Whether any NAT gateway of the stack is observed, failed ones included.
    pub(super) any_nat: bool,
    /// NAT instances that are or may again be running (not shutting down), running first,
    /// then by id.
    pub(super) live_instances: Vec<&'a ObservedNatInstance>,
    /// Every NAT instance not yet `terminated`, by id.
    pub(super) all_instances: Vec<&'a ObservedNatInstance>,
    /// The dead NAT gateways and instances AWS lists, by slot: client-token generations.
    pub(super) retired: &'a crate::observed::Retired,
    /// Self-healing NATs: fixed interfaces, launch templates and groups, by id or name.
    pub(super) nat_interfaces: Vec<&'a ObservedNatInterface>,
    pub(super) nat_launch_templates: Vec<&'a ObservedNatLaunchTemplate>,
    pub(super) nat_groups: Vec<&'a ObservedNatGroup>,
}

impl<'a> Inventory<'a> {
    pub(super) fn new(observed: &'a ObservedState) -> Inventory<'a> {
        let mut region_azs: Vec<&str> = observed.offered_azs.iter().map(String::as_str).collect();
        region_azs.sort();
        region_azs.dedup();
        let mut subnets: Vec<&ObservedSubnet> = observed.subnets.iter().collect();
        subnets.sort_by(|a, b| a.id.cmp(&b.id));
        let mut live_nats: Vec<&ObservedNatGateway> = observed
            .nat_gateways
            .iter()
            .filter(|nat| matches!(nat.state, NatState::Pending | NatState::Available))
            .collect();
        live_nats.sort_by(|a, b| {
            (a.state != NatState::Available, &a.id).cmp(&(b.state != NatState::Available, &b.id))
        });
        let mut deleting_nats: Vec<&ObservedNatGateway> = observed
            .nat_gateways
            .iter()
            .filter(|nat| nat.state == NatState::Deleting)
            .collect();
        deleting_nats.sort_by(|a, b| a.id.cmp(&b.id));
        let mut failed_nats: Vec<&ObservedNatGateway> = observed
            .nat_gateways
            .iter()
            .filter(|nat| nat.state == NatState::Failed)
            .collect();
        failed_nats.sort_by(|a, b| a.id.cmp(&b.id));
        let mut addresses: Vec<&ObservedAddress> = observed.addresses.iter().collect();
        addresses.sort_by(|a, b| a.allocation_id.cmp(&b.allocation_id));
        addresses.dedup_by(|a, b| a.allocation_id == b.allocation_id);
        let mut route_tables: Vec<&ObservedRouteTable> = observed.route_tables.iter().collect();
        route_tables.sort_by(|a, b| a.id.cmp(&b.id));
        // Several tables for one tier and slot are duplicates: the one that routes is used.
        let public_route_table = duplicates::preferred_route_table(
            route_tables
                .iter()
                .copied()
                .filter(|table| table.tier == Tier::Public),
        );
        let private_slots: BTreeSet<Slot> = route_tables
            .iter()
            .filter(|table| table.tier == Tier::Private)
            .filter_map(|table| table.slot)
            .collect();
        let private_route_tables: BTreeMap<Slot, &ObservedRouteTable> = private_slots
            .into_iter()
            .filter_map(|slot| {
                let tables = route_tables
                    .iter()
                    .copied()
                    .filter(|t| t.tier == Tier::Private && t.slot == Some(slot));
                duplicates::preferred_route_table(tables).map(|table| (slot, table))
            })
            .collect();
        let mut all_instances: Vec<&ObservedNatInstance> = observed.nat_instances.iter().collect();
        all_instances.sort_by(|a, b| a.id.cmp(&b.id));
        let mut live_instances: Vec<&ObservedNatInstance> = all_instances
            .iter()
            .copied()
            .filter(|i| i.state.is_live())
            .collect();
        live_instances.sort_by(|a, b| {
            let running =
                |i: &ObservedNatInstance| i.state != crate::observed::InstanceState::Running;
            (running(a), &a.id).cmp(&(running(b), &b.id))
        });
        Inventory {
            live_instances,
            all_instances,
            region_azs,
            subnets,
            live_nats,
            deleting_nats,
            failed_nats,
            addresses,
            public_route_table,
            private_route_tables,
            route_tables,
            any_nat: !observed.nat_gateways.is_empty(),
            retired: &observed.retired,
            nat_interfaces: sorted_by(&observed.nat_interfaces, |i| &i.id),
            nat_launch_templates: sorted_by(&observed.nat_launch_templates, |t| &t.id),
            nat_groups: sorted_by(&observed.nat_groups, |g| &g.name),
        }
    }

    /// The slot's fixed interface (the first by id, should a lost answer have made two).
    pub(super) fn nat_interface(&self, slot: Slot) -> Option<&'a ObservedNatInterface> {
        self.nat_interfaces.iter().copied().find(|i| i.slot == slot)
    }

    pub(super) fn nat_launch_template(&self, slot: Slot) -> Option<&'a ObservedNatLaunchTemplate> {
        self.nat_launch_templates
            .iter()
            .copied()
            .find(|t| t.slot == slot)
    }

    pub(super) fn nat_group(&self, slot: Slot) -> Option<&'a ObservedNatGroup> {
        self.nat_groups.iter().copied().find(|g| g.slot == slot)
    }

    /// Whether the slot has any part of a self-healing NAT (group, template or interface).
    pub(super) fn has_nat_group(&self, slot: Slot) -> bool {
        self.nat_group(slot).is_some()
            || self.nat_interface(slot).is_some()
            || self.nat_launch_template(slot).is_some()
    }

    /// The association of `address` with a fixed interface of the slot's self-healing NAT,
    /// when the address is on one.
    pub(super) fn on_nat_interface(&self, slot: Slot, address: &ObservedAddress) -> Option<String> {
        let on = address.network_interface_id.as_deref()?;
        self.nat_interfaces
            .iter()
            .any(|i| i.slot == slot && i.id == on)
            .then(|| address.association_id.clone())
            .flatten()
    }

    /// Whether the slot's private route table sends 0.0.0.0/0 to the network interface already.
    pub(super) fn routes_to_interface(&self, slot: Slot, interface: &str) -> bool {
        self.private_route_tables.get(&slot).is_some_and(|table| {
            table.routes.iter().any(|route| {
                route.destination.prefix_len() == 0
                    && !route.blackhole
                    && route.target
                        == crate::network::RouteTarget::NetworkInterface(interface.to_owned())
            })
        })
    }

    pub(super) fn subnet(&self, slot: Slot, tier: Tier) -> Option<&'a ObservedSubnet> {
        self.subnets
            .iter()
            .copied()
            .find(|s| s.slot == slot && s.tier == tier)
    }

    pub(super) fn live_nat(&self, slot: Slot) -> Option<&'a ObservedNatGateway> {
        self.live_nats.iter().copied().find(|nat| nat.slot == slot)
    }

    /// A NAT gateway being deleted that still holds an address.
    pub(super) fn nat_holding(&self, allocation_id: &str) -> Option<&'a ObservedNatGateway> {
        let holds =
            |nat: &&ObservedNatGateway| nat.allocation_ids.iter().any(|id| id == allocation_id);
        self.deleting_nats.iter().copied().find(holds)
    }

    pub(super) fn address(&self, allocation_id: &str) -> Option<&'a ObservedAddress> {
        self.addresses
            .iter()
            .copied()
            .find(|a| a.allocation_id == allocation_id)
    }

    /// The active or pending address tagged with a slot (the lowest allocation id if several
    /// claim it; active before pending).
    pub(super) fn active_address(&self, slot: Slot) -> Option<&'a ObservedAddress> {
        let claimed = |usage| {
            self.addresses
                .iter()
                .copied()
                .find(move |a| a.usage == usage && a.slot == Some(slot))
        };
        claimed(AddressUse::Active).or_else(|| claimed(AddressUse::Pending))
    }

    /// The stack's addresses that serve a slot: tagged with it (active or pending), or held by
    /// one of its NAT gateways.
    pub(super) fn addresses_of_slot(&self, slot: Slot) -> Vec<&'a ObservedAddress> {
        let held: BTreeSet<&str> = self
            .live_nats
            .iter()
            .chain(&self.deleting_nats)
            .filter(|nat| nat.slot == slot)
            .flat_map(|nat| nat.allocation_ids.iter().map(String::as_str))
            .collect();
        self.addresses
            .iter()
            .copied()
            .filter(|a| {
                (a.usage != AddressUse::Retained && a.slot == Some(slot))
                    || held.contains(a.allocation_id.as_str())
            })
            .collect()
    }

    /// Whether some IP of the stack may be on an allowlist already: an address that is
    /// retained (it was shown), pending (it was shown), adopted (the user brought it), or a NAT
    /// gateway that exists in any state (its address was put to work). A fresh stack, even one
    /// whose first deploy was killed after allocating, shows none.
    pub(super) fn ips_shown(&self) -> bool {
        let shown = |a: &&ObservedAddress| a.usage != AddressUse::Active || a.adopted;
        self.addresses.iter().any(shown) || self.any_nat || !self.all_instances.is_empty()
    }

    pub(super) fn existing_slots(&self) -> BTreeSet<Slot> {
        let active = self
            .addresses
            .iter()
            .filter(|a| a.usage != AddressUse::Retained);
        self.subnets
            .iter()
            .map(|s| s.slot)
            .chain(self.live_nats.iter().map(|nat| nat.slot))
            .chain(self.live_instances.iter().map(|i| i.slot))
            .chain(active.filter_map(|a| a.slot))
            .collect()
    }

    /// Every NAT gateway of a slot, by id, in any state the observation shows: failed ones too
    /// (AWS deletes them in time, but the slot is not gone until they are).
    pub(super) fn nats_of_slot(&self, slot: Slot) -> Vec<&'a ObservedNatGateway> {
        let mut nats: Vec<&ObservedNatGateway> = self
            .live_nats
            .iter()
            .chain(&self.deleting_nats)
            .chain(&self.failed_nats)
            .copied()
            .filter(|nat| nat.slot == slot)
            .collect();
        nats.sort_by(|a, b| a.id.cmp(&b.id));
        nats
    }

    /// The live NAT instance of a slot (running first, then by id).
    pub(super) fn live_instance(&self, slot: Slot) -> Option<&'a ObservedNatInstance> {
        self.live_instances.iter().copied().find(|i| i.slot == slot)
    }

    /// Whether the slot's private route table sends 0.0.0.0/0 to `instance` already (so the
    /// instance was waited for by the run that routed it; the route is not moved again).
    pub(super) fn routes_to_instance(&self, slot: Slot, instance: &str) -> bool {
        self.private_route_tables.get(&slot).is_some_and(|table| {
            table.routes.iter().any(|route| {
                route.destination.prefix_len() == 0
                    && !route.blackhole
                    && route.target == crate::network::RouteTarget::Instance(instance.to_owned())
            })
        })
    }

    /// Whether any private route table of the stack sends 0.0.0.0/0 to `instance` (its own
    /// slot's, or another's under `nats`).
    pub(super) fn routes_anywhere_to_instance(&self, instance: &str) -> bool {
        self.private_route_tables
            .keys()
            .any(|slot| self.routes_to_instance(*slot, instance))
    }

    /// The live NAT instance whose network interface an address is associated with.
    pub(super) fn instance_holding(
        &self,
        network_interface_id: Option<&str>,
    ) -> Option<&'a ObservedNatInstance> {
        let eni = network_interface_id?;
        self.live_instances
            .iter()
            .copied()
            .find(|i| i.network_interface_id.as_deref() == Some(eni))
    }
}

/// References to `items`, sorted by `key`: the plan does not depend on AWS's order.
fn sorted_by<T, K: Ord + ?Sized>(items: &[T], key: impl Fn(&T) -> &K) -> Vec<&T> {
    let mut sorted: Vec<&T> = items.iter().collect();
    sorted.sort_by(|a, b| key(a).cmp(key(b)));
    sorted
}
