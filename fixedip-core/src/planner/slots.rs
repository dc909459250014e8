//! Which slots the stack uses and in which AZ; the slots beyond `azs`, removed or kept.

use std::collections::{BTreeMap, BTreeSet};

use super::inventory::Inventory;
use super::nats::NatLayout;
use super::steps::Planner;
use super::{Context, PlanError};
use crate::observed::{AddressUse, ObservedState, Slot, Tier};
use crate::plan::{StackSpec, SurplusSlot};

pub(super) struct SlotChoice {
    /// The slots the stack uses, by number, with their AZ.
    pub(super) wanted: Vec<(Slot, String)>,
    pub(super) surplus: Vec<Slot>,
    /// The slots given up in an AZ the stack cannot use (part of `surplus`): their addresses are
    /// free for the slots that take their place.
    pub(super) abandoned: Vec<Slot>,
}

/// Which slots the stack uses, and the AZ of each: the AZ of its subnets when it has any (a slot
/// keeps its AZ for life), else the next AZ in the stack's order that no slot uses; see
/// [`az_order`].
pub(super) fn choose_slots(
    spec: &StackSpec,
    observed: &ObservedState,
    inventory: &Inventory,
) -> Result<SlotChoice, PlanError> {
    let azs = usize::from(spec.azs.get());
    let existing = inventory.existing_slots();
    let (abandoned, kept): (Vec<Slot>, Vec<Slot>) = existing
        .iter()
        .partition(|&&slot| abandoned_slot(observed, inventory, slot));
    let mut wanted: Vec<Slot> = kept.iter().copied().take(azs).collect();
    let mut surplus: Vec<Slot> = kept.iter().copied().skip(azs).collect();
    surplus.extend(&abandoned);
    surplus.sort();
    let mut free = (0..=Slot::MAX).filter(|slot| !existing.contains(slot));
    while wanted.len() < azs {
        let slot = free
            .next()
            .ok_or(PlanError::SlotOutsideLayout { slot: Slot::MAX })?;
        wanted.push(slot);
    }
    wanted.sort();

    let mut az_of: BTreeMap<Slot, &str> = BTreeMap::new();
    for subnet in &inventory.subnets {
        if wanted.contains(&subnet.slot) {
            az_of.entry(subnet.slot).or_insert(&subnet.az);
        }
    }
    let order = az_order(spec, observed, inventory)?;
    let mut chosen = Vec::new();
    for slot in wanted {
        let az = match az_of.get(&slot) {
            Some(az) => *az,
            None => {
                let used: BTreeSet<&str> = az_of.values().copied().collect();
                let az = order.iter().copied().find(|az| !used.contains(az));
                let az = az.ok_or_else(|| not_enough_azs(spec, observed, inventory))?;
                az_of.insert(slot, az);
                az
            }
        };
        chosen.push((slot, az.to_owned()));
    }
    Ok(SlotChoice {
        wanted: chosen,
        surplus,
        abandoned,
    })
}

/// A slot whose subnets are in an AZ the stack cannot use (Lambda refused them in this run) and
/// whose NAT (gateway, instance, or a self-healing NAT's interface) does not exist: it is given up, its subnets and route table
/// removed, and a slot in another AZ takes its place, with its address (`addresses.rs`): an
/// address is regional, so a refused AZ costs no second one. A slot whose NAT exists keeps its AZ
/// for life. So does one whose address waits for `--allow-new-ips` (`pending`): that IP was shown
/// for the slot, and nothing carries traffic through it yet, so nothing is lost by waiting.
pub(super) fn abandoned_slot(observed: &ObservedState, inventory: &Inventory, slot: Slot) -> bool {
    let unusable = |name: &str| {
        observed
            .az_ids
            .get(name)
            .is_some_and(|id| observed.unusable_az_ids.contains_key(id))
    };
    let pending = inventory
        .active_address(slot)
        .is_some_and(|a| a.usage == AddressUse::Pending);
    inventory
        .subnets
        .iter()
        .any(|s| s.slot == slot && unusable(&s.az))
        && inventory.live_nat(slot).is_none()
        && inventory.live_instance(slot).is_none()
        && inventory.nat_interface(slot).is_none()
        && !pending
}

/// The AZs a new slot may take, in the order it takes them, by name.
///
/// - With `az-ids = [...]`: those, in the order given. An id the region does not offer, or one
///   the stack cannot use there, is refused before any change, naming the ids that would do.
/// - Else every offered AZ the stack can use, sorted by AZ id (by name when the ids are not
///   known), and rotated by a stable hash of the stack's name: stacks start in different zones
///   rather than all in the first ones, where the per-AZ NAT gateway quota runs out first, and
///   the same stack always gets the same order.
fn az_order<'a>(
    spec: &'a StackSpec,
    observed: &'a ObservedState,
    inventory: &Inventory<'a>,
) -> Result<Vec<&'a str>, PlanError> {
    let id_of = |name: &str| observed.az_ids.get(name).map(String::as_str);
    let usable =
        |name: &str| id_of(name).is_none_or(|id| !observed.unusable_az_ids.contains_key(id));
    if !spec.modes.az_ids.is_empty() {
        let mut order = Vec::new();
        for id in &spec.modes.az_ids {
            // Offline the ids are not known: the id stands for the AZ in the plan shown.
            if observed.az_ids.is_empty() {
                order.push(id.as_str());
                continue;
            }
            let name = inventory
                .region_azs
                .iter()
                .copied()
                .find(|name| id_of(name) == Some(id.as_str()));
            match name {
                Some(name) if usable(name) => order.push(name),
                _ => {
                    return Err(PlanError::AzIdNotUsable {
                        id: id.clone(),
                        region: spec.region.clone(),
                        why: observed.unusable_az_ids.get(id).cloned(),
                        usable: usable_ids(observed, inventory),
                    })
                }
            }
        }
        return Ok(order);
    }
    // Rotated before the unusable AZs are left out, so that leaving one out moves no other.
    let mut order: Vec<&str> = inventory.region_azs.clone();
    order.sort_by_key(|name| (id_of(name).unwrap_or(name), *name));
    if !order.is_empty() {
        let offset = stable_hash(spec.stack.as_str()) % order.len() as u64;
        order.rotate_left(offset as usize);
    }
    order.retain(|name| usable(name));
    Ok(order)
}

/// FNV-1a, 64 bits: the same on every machine and every version, unlike `std`'s hasher.
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The ids of the offered AZs the stack can use, sorted.
fn usable_ids(observed: &ObservedState, inventory: &Inventory) -> Vec<String> {
    let mut ids: Vec<String> = inventory
        .region_azs
        .iter()
        .filter_map(|name| observed.az_ids.get(*name))
        .filter(|id| !observed.unusable_az_ids.contains_key(*id))
        .cloned()
        .collect();
    ids.sort();
    ids
}

fn not_enough_azs(spec: &StackSpec, observed: &ObservedState, inventory: &Inventory) -> PlanError {
    let usable: Vec<String> = inventory
        .region_azs
        .iter()
        .filter(|name| {
            observed
                .az_ids
                .get(**name)
                .is_none_or(|id| !observed.unusable_az_ids.contains_key(id))
        })
        .map(|name| match observed.az_ids.get(*name) {
            Some(id) => format!("{name} ({id})"),
            None => name.to_string(),
        })
        .collect();
    PlanError::NotEnoughAzs {
        region: spec.region.clone(),
        wanted: spec.azs.get(),
        offered: usable,
        pinned: spec.modes.az_ids.len(),
        unusable: observed
            .unusable_az_ids
            .iter()
            .map(|(id, why)| format!("{id}: {why}"))
            .collect(),
    }
}

/// Why the AZ `name` cannot be used, as observed.
fn unusable_why(observed: &ObservedState, name: Option<&str>) -> String {
    name.and_then(|name| observed.az_ids.get(name))
        .and_then(|id| observed.unusable_az_ids.get(id))
        .cloned()
        .unwrap_or_default()
}

/// "3.4.5.6 (eipalloc-...)", or the allocation id alone when the IP is not known (offline).
fn known_ip_or_id(id: &str, ip: std::net::Ipv4Addr) -> String {
    if ip.is_unspecified() {
        id.to_owned()
    } else {
        format!("{ip} ({id})")
    }
}

/// " (us-east-1c)", for messages about a slot.
fn in_az(az: Option<&str>) -> String {
    az.map(|az| format!(" ({az})")).unwrap_or_default()
}

/// Splits the slots beyond `azs` into those the plan removes and those it must leave: a slot
/// stays while a function the plan does not deploy runs in it (the plan cannot move a function
/// it has no configuration for, and removing the slot would cut that function off).
/// And while no AZ within `azs` routes out, every slot stays: it carries the functions' traffic.
pub(super) fn removable_slots(
    spec: &StackSpec,
    observed: &ObservedState,
    inventory: &Inventory,
    surplus: &[Slot],
    routes_out: bool,
) -> (Vec<Slot>, Vec<Slot>) {
    if !routes_out {
        return (Vec::new(), surplus.to_vec());
    }
    surplus.iter().partition(|&&slot| {
        functions_in_slot(observed, inventory, slot)
            .into_iter()
            .all(|name| spec.functions.iter().any(|mine| mine.name == name))
    })
}

pub(super) fn surplus_view(surplus: &[Slot], inventory: &Inventory) -> Vec<SurplusSlot> {
    surplus
        .iter()
        .map(|&slot| {
            let nat = inventory.live_nat(slot);
            let address = nat
                .and_then(|nat| {
                    nat.allocation_ids
                        .iter()
                        .find_map(|id| inventory.address(id))
                })
                .or_else(|| inventory.active_address(slot));
            SurplusSlot {
                slot,
                az: inventory
                    .subnets
                    .iter()
                    .find(|s| s.slot == slot)
                    .map(|s| s.az.clone()),
                nat_gateway: nat.map(|nat| nat.id.clone()),
                address: address.map(|a| (a.allocation_id.clone(), a.public_ip)),
            }
        })
        .collect()
}

impl SlotChoice {
    /// The slots that hold a NAT, with their AZ.
    pub(super) fn holding_nats(&self, layout: &NatLayout) -> Vec<(Slot, String)> {
        self.wanted
            .iter()
            .filter(|(slot, _)| layout.has_nat(*slot))
            .cloned()
            .collect()
    }
}

impl Planner {
    /// The plan's view of the slots beyond `azs`, those it removes and those it keeps, each with
    /// a note saying why and what stays billed.
    pub(super) fn note_beyond_azs(
        &mut self,
        context: &Context,
        removed: &[Slot],
        kept: &[Slot],
    ) -> (Vec<SurplusSlot>, Vec<SurplusSlot>) {
        let (spec, inventory) = (context.spec, &context.inventory);
        let removed_slots = surplus_view(removed, inventory);
        for removed in &removed_slots {
            if abandoned_slot(context.observed, inventory, removed.slot) {
                let address = match &removed.address {
                    Some((id, ip)) => {
                        let ip = known_ip_or_id(id, *ip);
                        match context.addresses_taken.get(id.as_str()) {
                            Some(slot) => {
                                format!("its Elastic IP {ip} serves AZ slot {slot} instead")
                            }
                            None => format!("its Elastic IP {ip} stays allocated as retained"),
                        }
                    }
                    None => "it holds no address".to_owned(),
                };
                self.notes.push(format!(
                    "AZ slot {}{} is in an AZ the stack cannot use ({}) and has no NAT yet: its subnets and route table are removed and another AZ takes its place; {address}",
                    removed.slot,
                    in_az(removed.az.as_deref()),
                    unusable_why(context.observed, removed.az.as_deref()),
                ));
                continue;
            }
            let ip = match &removed.address {
                Some((id, ip)) => format!("its Elastic IP {}", known_ip_or_id(id, *ip)),
                None => "its Elastic IP, if any,".to_owned(),
            };
            self.notes.push(format!(
                "AZ slot {}{} is beyond `azs = {}` and is removed (NAT gateway, subnets, route table); {ip} stays allocated as retained, still on the allowlist and still billed: the next AZ the stack needs uses it again, and `cargo fixedip destroy --release-ips` gives it back",
                removed.slot,
                in_az(removed.az.as_deref()),
                spec.azs
            ));
        }
        let surplus_slots = surplus_view(kept, inventory);
        for surplus in &surplus_slots {
            let others = functions_in_slot(context.observed, inventory, surplus.slot)
                .into_iter()
                .filter(|name| spec.functions.iter().all(|mine| mine.name != *name))
                .collect::<Vec<_>>();
            let why = if others.is_empty() {
                "because no AZ within `azs` routes out yet (its new IP waits for `--allow-new-ips`)"
                    .to_owned()
            } else {
                format!(
                    "because functions this deploy does not manage run in it: {}; deploy them with `azs = {}` too, then deploy again",
                    others.join(", "),
                    spec.azs
                )
            };
            self.notes.push(format!(
                "AZ slot {}{} exists beyond `azs = {}` and stays (its NAT gateway and Elastic IP stay and are billed), {why}",
                surplus.slot,
                in_az(surplus.az.as_deref()),
                spec.azs,
            ));
        }
        (removed_slots, surplus_slots)
    }
}

/// The functions that run in a slot's private subnet.
pub(super) fn functions_in_slot<'a>(
    observed: &'a ObservedState,
    inventory: &Inventory,
    slot: Slot,
) -> Vec<&'a str> {
    let private: Vec<&str> = inventory
        .subnets
        .iter()
        .filter(|s| s.slot == slot && s.tier == Tier::Private)
        .map(|s| s.id.as_str())
        .collect();
    observed
        .functions
        .iter()
        .filter(|f| f.subnet_ids.iter().any(|s| private.contains(&s.as_str())))
        .map(|f| f.name.as_str())
        .collect()
}
