//! `nat-self-healing`: each slot's NAT instance is the one instance of an auto-scaling group,
//! so that an instance that fails, stops or is terminated is replaced without a deploy, leaving
//! from the same Elastic IP (docs/architecture.md, "Self-healing without a deploy").
//!
//! Per slot, in the public subnet:
//! - a **fixed network interface** (NAT security group, source/destination check off) that holds
//!   the slot's Elastic IP for good: the private route targets it, whichever instance holds it;
//! - a **launch template**: the NAT instance's type, image, instance profile, a primary interface
//!   with a public IP for the boot (its way to the EC2 API and the package repositories), and
//!   user data that attaches the fixed interface at device index 1, forwards and masquerades out
//!   of it, drops the boot's public IP, and says ready on the console;
//! - an **auto-scaling group of one** from that template.
//!
//! Per stack, an **instance profile** and its role (`tags::nat_role_name`), which may only attach
//! a network interface and change an interface's attributes on the stack's tagged resources.
//!
//! The order: interface, then the address on it (the group's instance waits for the address
//! before it says ready), then the group; the route moves to the interface once the group's
//! instance is ready. Removal (destroy, a slot beyond `azs`): the group (its instance goes with
//! it), then its template, the address off the interface (kept, retained), the interface.
//!
//! # Switches, each in one deploy, keeping the slot's Elastic IP
//! An address is associated with one thing at a time, so each switch moves it once, and the
//! slot's egress pauses while it moves (the plan's note says how long):
//! - **plain NAT instance → group**: the interface, template and group are made; once the group's
//!   instance is launching, the address moves from the old instance (its automatic public IP
//!   off first) to the interface; the route moves once the group's instance says ready; the old
//!   instance is terminated. The pause: the address's move until ready (seconds, the new
//!   instance booted meanwhile).
//! - **NAT gateway → group**: the interface, template and group are made, and the group's
//!   instance boots on the launch's public IP, attaches the interface and waits for the
//!   address; once **every** switching slot's group instance has attached its interface (as far
//!   as its boot goes without the address: a launch or attach that fails leaves every gateway),
//!   the gateway is deleted and waited for until `deleted` (only
//!   then is its address free; the executor waits out the address's settling), the address goes
//!   on the interface, the group's instance says ready, the route moves. The pause: the
//!   gateway's deletion (about a minute on AWS), the address's settling, and the rest of the
//!   boot, which needs the address (its package install goes out through the interface): about
//!   two minutes.
//! - **group → NAT gateway**: the address leaves the interface, the gateway is created with it
//!   and waited for until `available`, the route moves; then the group, its template and its
//!   interface go. The pause: the gateway's creation (one to three minutes on AWS).
//! - **group → plain NAT instance**: the instance is launched with a public IP of its own and
//!   waited for until ready while the group still carries the slot; once every switching slot's
//!   instance is ready, the address leaves the interface for the instance and the route moves;
//!   then the group, its template and its interface go. The pause: seconds.
//!
//! Out of `nat-self-healing`, the instance profile and its role go once no group is left
//! ([`Planner::retire_nat_profile`]), and the NAT security group once neither an instance nor an
//! interface uses it.

use super::addresses::AddressChoice;
use super::inventory::Inventory;
use super::nat_instance::{
    address_held, image_parameter, Retire, SlotNat, Switch, SwitchFrom, SwitchTo,
};
use super::steps::{Planned, Planner};
use super::PlanError;
use crate::observed::{ObservedState, Slot};
use crate::plan::{Action, Ref, RouteVia, StackSpec, Status, StepId};
use crate::tags;

/// What a slot's self-healing NAT is made of, for its plan.
pub(super) struct GroupParts<'a> {
    pub address: &'a AddressChoice<'a>,
    pub address_ref: &'a Ref,
    pub public_subnet: &'a Planned,
    pub security_group: &'a Planned,
    pub profile: &'a Planned,
    pub instance_type: &'a str,
    /// Lambda's answer to the functions created first: nothing of the NAT goes into an AZ
    /// Lambda may still refuse (see `slot.rs`).
    pub functions_first: &'a [StepId],
}

impl Planner {
    /// The self-healing NAT instances' instance profile and role: kept when complete, else made
    /// (every call of it is done-if-done, so a run killed part way is finished by the next).
    pub(super) fn nat_profile(&mut self, spec: &StackSpec, observed: &ObservedState) -> Planned {
        match &observed.nat_profile {
            Some(profile) if profile.complete => Planned::kept(&profile.name),
            _ => {
                let name = tags::nat_role_name(&spec.stack, &spec.region);
                Planned::created(self.push(Action::CreateNatProfile { name }, &[]))
            }
        }
    }

    /// A slot's self-healing NAT: its fixed interface holding the slot's address, its launch
    /// template and its group, each kept or made; the route waits for the group's instance to
    /// say ready, unless it targets the interface already and nothing changed.
    pub(super) fn slot_nat_group(
        &mut self,
        slot: Slot,
        inventory: &Inventory,
        parts: GroupParts,
    ) -> Result<SlotNat, PlanError> {
        let first = self.steps.len();
        let observed_interface = inventory.nat_interface(slot);
        let interface = match observed_interface {
            Some(interface) => Ref::Existing(interface.id.clone()),
            None => Ref::Step(self.push(
                Action::CreateNatInterface {
                    subnet: parts.public_subnet.reference.clone(),
                    security_group: parts.security_group.reference.clone(),
                    slot,
                },
                parts.functions_first,
            )),
        };
        if observed_interface.is_some_and(|i| i.source_dest_check) {
            self.notes.push(format!(
                "the NAT network interface of AZ slot {slot} has its source/destination check on: it drops what it should forward; turn it off (`aws ec2 modify-network-interface-attribute --no-source-dest-check`)"
            ));
        }
        // A template names the interface its instance attaches: one left without its interface
        // (a destroy killed between their deletions) would launch an instance with nothing to
        // attach. With no group using it, it is deleted first (AWS refuses a second template of
        // its name) and made again for the new interface.
        let stale = inventory
            .nat_launch_template(slot)
            .filter(|_| observed_interface.is_none() && inventory.nat_group(slot).is_none());
        let template = match (inventory.nat_launch_template(slot), stale) {
            (Some(template), None) => Ref::Existing(template.id.clone()),
            (_, stale) => {
                let deleted: Vec<StepId> = stale
                    .map(|t| self.push(Action::DeleteNatLaunchTemplate { id: t.id.clone() }, &[]))
                    .into_iter()
                    .collect();
                Ref::Step(self.push(
                    Action::CreateNatLaunchTemplate {
                        slot,
                        subnet: parts.public_subnet.reference.clone(),
                        security_group: parts.security_group.reference.clone(),
                        interface: interface.clone(),
                        profile: parts.profile.reference.clone(),
                        instance_type: parts.instance_type.to_owned(),
                        image_parameter: image_parameter(parts.instance_type).to_owned(),
                    },
                    &deleted,
                ))
            }
        };
        // From a plain NAT instance or a NAT gateway: the group first (its instance boots and
        // waits for the address), then the address moves; otherwise the group once the address
        // is on.
        let leaving = inventory.live_instance(slot);
        let gateway = inventory.live_nat(slot);
        let mut switch = None;
        let (group, retire) = match (leaving, gateway) {
            (Some(old), None) => {
                let group = self.nat_group(slot, inventory, template, &parts, &[]);
                // The wait for ready comes after these steps (every step of the slot's NAT).
                self.move_address(slot, old, &parts, &interface, &group)?;
                self.notes.push(format!(
                    "AZ slot {slot} moves from NAT instance {} to a self-healing NAT, keeping its Elastic IP: its egress pauses from the address's move until the group's instance reports ready (on AWS, about a minute: its boot installs nftables once the address is on its interface); the old instance is terminated once the route has moved",
                    old.id
                ));
                (group, vec![Retire::NatInstance { id: old.id.clone() }])
            }
            // A gateway (and maybe a plain instance a killed switch left beside it, retired
            // with it): the address is the gateway's.
            (leaving, Some(nat)) => {
                let stale = self.gateway_address_free(slot, inventory, &parts, nat)?;
                let group = self.nat_group(slot, inventory, template, &parts, &[]);
                self.note_switch_from_gateway(slot, &nat.id);
                let made: Vec<StepId> = self.steps[first..].iter().map(|s| s.id).collect();
                let action = Action::AwaitNatInterfaceAttached {
                    group: group.clone(),
                    interface: interface.clone(),
                };
                let attached = self.push(action, &made);
                let changed: Vec<StepId> = made.into_iter().chain([attached]).collect();
                // The gateway goes once every switching slot's group instance has attached its
                // interface (`finish_switches`): as far as its boot goes without the address.
                switch = Some(Switch {
                    from: SwitchFrom::NatGateway {
                        id: nat.id.clone(),
                        allocation_ids: nat.allocation_ids.clone(),
                    },
                    stale,
                    address: parts.address_ref.clone(),
                    to: SwitchTo::NatInterface {
                        interface: interface.clone(),
                        group: group.clone(),
                        changed: changed.clone(),
                    },
                    gate: vec![attached],
                });
                let retire = leaving.map(|old| Retire::NatInstance { id: old.id.clone() });
                (group, retire.into_iter().collect())
            }
            (None, None) => {
                let associated = self.interface_address(slot, inventory, &parts, &interface)?;
                (
                    self.nat_group(slot, inventory, template, &parts, &associated),
                    Vec::new(),
                )
            }
        };
        let changed: Vec<StepId> = self.steps[first..].iter().map(|s| s.id).collect();
        let routed = observed_interface.is_some_and(|i| inventory.routes_to_interface(slot, &i.id));
        let route_after = if switch.is_some() || (routed && changed.is_empty()) {
            // A switch's wait comes once the address is on the interface (`finish_switches`).
            Vec::new()
        } else {
            let action = Action::AwaitNatGroupReady {
                group: group.clone(),
            };
            vec![self.push(action, &changed)]
        };
        let planned = match (&group, changed.is_empty() && switch.is_none()) {
            (Ref::Existing(name), true) => Planned::kept(name),
            (Ref::Existing(name), false) => Planned::changed(name),
            (Ref::Step(step), _) => Planned::created(*step),
        };
        Ok(SlotNat {
            planned,
            via: RouteVia::NatInterface(interface),
            route_after,
            switch,
            retire,
        })
    }

    /// What the plan says of a slot's switch from its NAT gateway, and how long its egress
    /// pauses.
    fn note_switch_from_gateway(&mut self, slot: Slot, gateway: &str) {
        self.notes.push(format!(
            "AZ slot {slot} moves from NAT gateway {gateway} to a self-healing NAT, keeping its Elastic IP: the group's instance boots on a public IP of its own while the gateway still carries the slot (under a cent); once every switching AZ's group instance has attached its network interface, the gateway is deleted and its egress pauses until the address is on the fixed interface, the group's instance reports ready and the route points at it (on AWS, about two minutes: the gateway's deletion, about a minute, then the rest of the instance's boot, whose package install needs the address)"
        ));
    }

    /// The slot's address is free, on its NAT gateway (which the switch deletes first), or
    /// held by something the plan cannot free: the steps that free a stale association.
    fn gateway_address_free(
        &mut self,
        slot: Slot,
        inventory: &Inventory,
        parts: &GroupParts,
        gateway: &crate::observed::ObservedNatGateway,
    ) -> Result<Vec<StepId>, PlanError> {
        let Some(observed) = parts.address.observed() else {
            return Ok(Vec::new());
        };
        let stale: Vec<StepId> = self.free_stale_association(observed).into_iter().collect();
        match observed.in_use() {
            Some(_) if gateway.allocation_ids.contains(&observed.allocation_id) => Ok(stale),
            Some(association) => Err(address_held(slot, inventory, observed, association)),
            None => Ok(stale),
        }
    }

    /// The slot's group, kept or created after `ordering`.
    fn nat_group(
        &mut self,
        slot: Slot,
        inventory: &Inventory,
        template: Ref,
        parts: &GroupParts,
        ordering: &[StepId],
    ) -> Ref {
        match inventory.nat_group(slot) {
            Some(group) => Ref::Existing(group.name.clone()),
            None => Ref::Step(self.push_group_note(slot).push(
                Action::CreateNatGroup {
                    slot,
                    template,
                    subnet: parts.public_subnet.reference.clone(),
                },
                ordering,
            )),
        }
    }

    /// The slot's address from its plain NAT instance to the fixed interface, once the group's
    /// instance is launching (`group`): the instance's automatic public IP off first (one
    /// launched with a public IP, in a switch from a gateway, would get a new one when its
    /// Elastic IP leaves, while the route still names it), the address off it, then on the
    /// interface. The steps after which the address is on the interface.
    fn move_address(
        &mut self,
        slot: Slot,
        old: &crate::observed::ObservedNatInstance,
        parts: &GroupParts,
        interface: &Ref,
        group: &Ref,
    ) -> Result<Vec<StepId>, PlanError> {
        let mut after: Vec<StepId> = match group {
            Ref::Step(step) => vec![*step],
            Ref::Existing(_) => Vec::new(),
        };
        if let Some(observed) = parts.address.observed() {
            let on_interface = matches!(interface, Ref::Existing(id)
                if observed.network_interface_id.as_deref() == Some(id.as_str()));
            if on_interface && observed.in_use().is_some() {
                // Moved by a run that ended before the route did.
                return Ok(Vec::new());
            }
            after.extend(self.free_stale_association(observed));
            if let Some(association) = observed.in_use() {
                let on_old = old.network_interface_id.is_some()
                    && old.network_interface_id == observed.network_interface_id;
                if !on_old {
                    return Err(PlanError::AddressInUse {
                        slot,
                        allocation_id: observed.allocation_id.clone(),
                        association: association.to_owned(),
                    });
                }
                let dropped = self.drop_public_ip(old.network_interface_id.as_deref());
                let ordering: Vec<StepId> = after.iter().chain(&dropped).copied().collect();
                after.push(self.disassociate(association, &ordering));
            }
        }
        let action = Action::AssociateInterfaceAddress {
            address: parts.address_ref.clone(),
            interface: interface.clone(),
        };
        Ok(vec![self.push(action, &after)])
    }

    /// What a new group costs beyond its instance, for `plan`: the group, its template and its
    /// interface are free; each instance it launches holds a public IPv4 address for its boot.
    fn push_group_note(&mut self, slot: Slot) -> &mut Self {
        self.notes.push(format!(
            "AZ slot {slot}: its NAT instance is an auto-scaling group of one, replaced without a deploy when it fails, stops or is terminated (about 5 minutes on AWS), leaving from the same Elastic IP on its fixed network interface; the group, its launch template and the interface are free, and each instance holds a public IPv4 address for its boot's first minutes ($0.005/h: under a cent per replacement)"
        ));
        self
    }

    /// The slot's address on its fixed interface: the steps after which it is there (none when
    /// it is already), or why it cannot be (it is held by something else).
    fn interface_address(
        &mut self,
        slot: Slot,
        inventory: &Inventory,
        parts: &GroupParts,
        interface: &Ref,
    ) -> Result<Vec<StepId>, PlanError> {
        let mut stale = Vec::new();
        if let Some(observed) = parts.address.observed() {
            let on_interface = match interface {
                Ref::Existing(id) => observed.network_interface_id.as_deref() == Some(id),
                Ref::Step(_) => false,
            };
            if on_interface && observed.in_use().is_some() {
                return Ok(Vec::new());
            }
            stale.extend(self.free_stale_association(observed));
            if let Some(association) = observed.in_use() {
                return Err(address_held(slot, inventory, observed, association));
            }
        }
        let action = Action::AssociateInterfaceAddress {
            address: parts.address_ref.clone(),
            interface: interface.clone(),
        };
        Ok(vec![self.push(action, &stale)])
    }

    /// Removal of a slot's self-healing NAT after `ordering` (destroy, a slot beyond `azs`): the
    /// group with its instance, its template, the address off the interface (the caller keeps
    /// or releases it), the interface. Each removed interface's subnet with the step after which
    /// the interface is gone and its address free.
    pub(super) fn remove_nat_groups_of_slot(
        &mut self,
        slot: Slot,
        inventory: &Inventory,
        ordering: &[StepId],
    ) -> Vec<(String, StepId)> {
        let groups_deleted: Vec<StepId> = inventory
            .nat_groups
            .iter()
            .filter(|g| g.slot == slot)
            .map(|g| {
                let action = Action::DeleteNatGroup {
                    name: g.name.clone(),
                };
                self.push(action, ordering)
            })
            .collect();
        let after_groups: Vec<StepId> = ordering.iter().chain(&groups_deleted).copied().collect();
        for template in inventory
            .nat_launch_templates
            .iter()
            .filter(|t| t.slot == slot)
        {
            let action = Action::DeleteNatLaunchTemplate {
                id: template.id.clone(),
            };
            self.push(action, &after_groups);
        }
        let mut removed = Vec::new();
        for interface in inventory.nat_interfaces.iter().filter(|i| i.slot == slot) {
            let mut after = after_groups.clone();
            let held = inventory
                .addresses
                .iter()
                .filter(|a| a.network_interface_id.as_deref() == Some(interface.id.as_str()));
            for address in held {
                if let Some(association) = &address.association_id {
                    after.push(self.disassociate(association, ordering));
                }
            }
            let action = Action::DeleteNatInterface {
                id: interface.id.clone(),
            };
            removed.push((interface.subnet_id.clone(), self.push(action, &after)));
        }
        removed
    }

    /// In gateway mode, or for a plain NAT instance: the slot's address leaves its fixed
    /// interface before the new NAT takes it (a gateway needs it free at creation), and the
    /// group, its template and its interface are retired once the route points at the new NAT.
    pub(super) fn free_address_of_group(
        &mut self,
        slot: Slot,
        inventory: &Inventory,
        address: &AddressChoice,
    ) -> (Vec<StepId>, Vec<Retire>) {
        if !inventory.has_nat_group(slot) {
            return (Vec::new(), Vec::new());
        }
        let on_interface = address
            .observed()
            .and_then(|a| inventory.on_nat_interface(slot, a));
        let freed = on_interface
            .map(|association| self.disassociate(&association, &[]))
            .into_iter()
            .collect();
        self.notes.push(format!(
            "AZ slot {slot} moves from its self-healing NAT to a NAT gateway, keeping its Elastic IP: its egress pauses from the address's move off the fixed interface until the gateway is available and the route points at it (on AWS, one to three minutes); then the group, its launch template and its interface are deleted"
        ));
        (freed, vec![Retire::NatGroup { slot }])
    }

    /// Out of `nat-self-healing` (back to gateways or plain instances): the instance profile and
    /// its role go once every group is gone, after the groups this plan deletes.
    pub(super) fn retire_nat_profile(
        &mut self,
        in_group_mode: bool,
        observed: &ObservedState,
        inventory: &Inventory,
    ) -> Option<StepId> {
        let profile = observed.nat_profile.as_ref().filter(|_| !in_group_mode)?;
        let deleted = self.steps_where(|a| matches!(a, Action::DeleteNatGroup { .. }));
        if deleted.len() != inventory.nat_groups.len() {
            return None;
        }
        let action = Action::DeleteNatProfile {
            name: profile.name.clone(),
        };
        Some(self.push(action, &deleted))
    }

    /// Destroy: the instance profile and role, once every group that launches with it is gone.
    pub(super) fn remove_nat_profile(
        &mut self,
        observed: &ObservedState,
        groups_gone: &[StepId],
    ) -> Option<Status> {
        let profile = observed.nat_profile.as_ref()?;
        let action = Action::DeleteNatProfile {
            name: profile.name.clone(),
        };
        self.push(action, groups_gone);
        Some(Status::Delete(profile.name.clone()))
    }
}
