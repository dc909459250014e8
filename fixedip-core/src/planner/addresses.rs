//! Which address serves a slot (see the module docs of [`crate::planner`]), which the stack
//! keeps without a NAT, and what frees an address for its next NAT.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use super::duplicates;
use super::inventory::Inventory;
use super::steps::Planner;
use super::{Context, PlanError};
use crate::observed::{AddressUse, ObservedAddress, ObservedState, Slot};
use crate::plan::{Action, StackSpec, Step, StepId, SurplusSlot};

/// How a slot gets its Elastic IP.
pub(super) enum AddressChoice<'a> {
    /// Active and tagged with the slot already.
    Keep(&'a ObservedAddress),
    /// Retained, adopted, or used by the slot's NAT without the tag: re-tag it active.
    Activate(&'a ObservedAddress),
    Allocate,
}

impl<'a> AddressChoice<'a> {
    pub(super) fn observed(&self) -> Option<&'a ObservedAddress> {
        match self {
            AddressChoice::Keep(address) | AddressChoice::Activate(address) => Some(address),
            AddressChoice::Allocate => None,
        }
    }
}

/// The address of each slot in `wanted` (see the module docs of [`crate::planner`], "Which
/// address serves a slot"). The addresses of `abandoned` slots (given up in an AZ the stack
/// cannot use, before their NAT existed) serve no slot: they are free to take, after the retained
/// ones, so that a slot moved out of a refused AZ keeps the address allocated for it.
pub(super) fn choose_addresses<'a>(
    spec: &StackSpec,
    inventory: &Inventory<'a>,
    wanted: &[(Slot, String)],
    abandoned: &[Slot],
) -> Result<BTreeMap<Slot, AddressChoice<'a>>, PlanError> {
    let mut adopted = Vec::new();
    for id in &spec.adopted_ips {
        let address =
            inventory
                .address(id.as_str())
                .ok_or_else(|| PlanError::AdoptedAddressNotFound {
                    id: id.clone(),
                    region: spec.region.clone(),
                })?;
        adopted.push((id, address));
    }
    // An address serving a slot, even one beyond `azs`, is never taken from it; an abandoned
    // slot serves nothing.
    let serving: BTreeSet<&str> = inventory
        .addresses
        .iter()
        .filter(|a| a.usage != AddressUse::Retained)
        .filter(|a| a.slot.is_some_and(|slot| !abandoned.contains(&slot)))
        .map(|a| a.allocation_id.as_str())
        .collect();
    let is_adopted = |a: &ObservedAddress| {
        spec.adopted_ips
            .iter()
            .any(|id| id.as_str() == a.allocation_id)
    };
    let mut retained: Vec<&ObservedAddress> = inventory
        .addresses
        .iter()
        .copied()
        .filter(|a| !serving.contains(a.allocation_id.as_str()) && !is_adopted(a))
        .collect();
    // Retained first: those were shown, and may be on an allowlist already.
    retained.sort_by_key(|a| a.usage != AddressUse::Retained);

    let mut taken: BTreeSet<&str> = BTreeSet::new();
    let mut choices = BTreeMap::new();
    for (slot, _) in wanted {
        let slot = *slot;
        let nat_address = inventory.live_nat(slot).and_then(|nat| {
            nat.allocation_ids
                .iter()
                .find_map(|id| inventory.address(id))
                .filter(|a| a.slot == Some(slot) || !serving.contains(a.allocation_id.as_str()))
        });
        let choice = if let Some(address) = nat_address.or_else(|| inventory.active_address(slot)) {
            if address.usage == AddressUse::Active && address.slot == Some(slot) {
                AddressChoice::Keep(address)
            } else {
                AddressChoice::Activate(address)
            }
        } else if let Some((id, address)) = adopted
            .iter()
            .find(|(id, _)| !serving.contains(id.as_str()) && !taken.contains(id.as_str()))
        {
            if let Some(association) = address.in_use() {
                return Err(PlanError::AdoptedAddressInUse {
                    id: (*id).clone(),
                    association: association.to_owned(),
                });
            }
            AddressChoice::Activate(address)
        } else if let Some(address) = retained
            .iter()
            .find(|a| !taken.contains(a.allocation_id.as_str()))
        {
            AddressChoice::Activate(address)
        } else {
            AddressChoice::Allocate
        };
        if let Some(address) = choice.observed() {
            taken.insert(&address.allocation_id);
        }
        choices.insert(slot, choice);
    }
    Ok(choices)
}

/// The address's IP, unless it is not known (planning offline).
pub(super) fn known_ip(address: &ObservedAddress) -> Option<Ipv4Addr> {
    Some(address.public_ip).filter(|ip| !ip.is_unspecified())
}

/// Refuses a plan that would allocate more Elastic IPs than the account's quota leaves room for:
/// AWS would refuse the allocation half way through the deploy.
pub(super) fn check_address_quota(
    spec: &StackSpec,
    observed: &ObservedState,
    steps: &[Step],
) -> Result<(), PlanError> {
    let (Some(quota), Some(in_use)) = (observed.address_quota, observed.addresses_in_use_in_region)
    else {
        return Ok(());
    };
    let needed = steps
        .iter()
        .filter(|step| matches!(step.action, Action::AllocateAddress { .. }))
        .count();
    let needed = u32::try_from(needed).unwrap_or(u32::MAX);
    if in_use.saturating_add(needed) > quota {
        return Err(PlanError::AddressQuota {
            region: spec.region.clone(),
            quota,
            in_use,
            needed,
        });
    }
    Ok(())
}

/// The addresses the plan keeps: those serving no slot, retained (still on the allowlist), and
/// the duplicates it releases.
pub(super) struct KeptAddresses {
    pub(super) retained: Vec<(String, Ipv4Addr)>,
    pub(super) released: Vec<(String, Ipv4Addr)>,
}

impl Planner {
    /// What becomes of the addresses no slot uses: duplicates (left by an AllocateAddress sent
    /// twice) go, the rest stays retained; an adopted address that serves no AZ gets a note.
    pub(super) fn keep_addresses(
        &mut self,
        context: &Context,
        chosen: &BTreeMap<Slot, AddressChoice>,
        surplus_slots: &[SurplusSlot],
        nat_slots: &[(Slot, String)],
    ) -> KeptAddresses {
        let inventory = &context.inventory;
        let serving: BTreeSet<&str> = chosen
            .values()
            .filter_map(AddressChoice::observed)
            .map(|address| address.allocation_id.as_str())
            .chain(
                surplus_slots
                    .iter()
                    .filter_map(|s| s.address.as_ref().map(|a| a.0.as_str())),
            )
            .collect();
        // Only the slots that hold a NAT have an address to keep; the addresses of the others
        // are retained by `remove_nats`, not duplicates.
        let wanted_slots: BTreeSet<Slot> = nat_slots.iter().map(|(slot, _)| *slot).collect();
        let cleared =
            duplicates::plan_away(self, context.observed, inventory, &serving, &wanted_slots);
        let retained = inventory
            .addresses
            .iter()
            .filter(|address| !serving.contains(address.allocation_id.as_str()))
            .filter(|address| {
                !cleared
                    .released
                    .iter()
                    .any(|(id, _)| *id == address.allocation_id)
            })
            .map(|address| (address.allocation_id.clone(), address.public_ip))
            .collect();
        for id in &context.spec.adopted_ips {
            if !serving.contains(id.as_str()) {
                self.notes.push(format!(
                    "the Elastic IP {id} named in `ips` serves no AZ: every AZ already has an address, and fixedip never swaps an address that may be on an allowlist"
                ));
            }
        }
        KeptAddresses {
            retained,
            released: cleared.released,
        }
    }

    /// An address whose association outlived its NAT gateway (AWS drops it with the gateway; the
    /// emulator keeps it, and refuses the address to a new NAT): a DisassociateAddress first.
    /// `None` when the address is free.
    pub(super) fn free_stale_association(&mut self, address: &ObservedAddress) -> Option<StepId> {
        let association = address.association_id.as_deref()?;
        address
            .stale_association
            .then(|| self.disassociate(association, &[]))
    }

    /// The steps after which the addresses a deleted NAT gateway held are free: its deletion,
    /// then the DisassociateAddress of each association the observation shows. AWS drops the
    /// association with the gateway, so on AWS that call finds nothing (not-found is done); the
    /// emulator keeps it, and would refuse the address to its next NAT or its release.
    pub(super) fn free_addresses_of_nat(
        &mut self,
        inventory: &Inventory,
        allocation_ids: &[String],
        deleted: StepId,
    ) -> Vec<StepId> {
        let mut freed = vec![deleted];
        for id in allocation_ids {
            let Some(address) = inventory.address(id) else {
                continue;
            };
            // An address a NAT instance holds now (a switch moved it there) stays where it is.
            let on_instance = inventory
                .instance_holding(address.network_interface_id.as_deref())
                .is_some();
            if let (Some(association), false) = (&address.association_id, on_instance) {
                freed.push(self.disassociate(association, &[deleted]));
            }
        }
        freed
    }
}
