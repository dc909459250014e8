//! `nat = "instance"`: an EC2 instance per slot instead of a NAT gateway.
//!
//! Per slot, in the public subnet: one instance of the stack's `nat-instance-type` (default
//! [`DEFAULT_NAT_INSTANCE_TYPE`](crate::plan::DEFAULT_NAT_INSTANCE_TYPE)), Amazon Linux 2023 from
//! AWS's public SSM parameter for its architecture, with forwarding and masquerading turned on at
//! boot by its user data (the executor's), the source/destination check off, and the slot's
//! Elastic IP associated with its primary network interface. The slot's private route
//! 0.0.0.0/0 goes to the instance once its address is associated, its check is off and it has
//! reported ready on its console ([`crate::nat_boot`]: forwarding and masquerading are on), so
//! that no packet leaves from an address that is not on the allowlist, nor goes to an instance
//! that would drop it.
//!
//! One security group serves every NAT instance of the stack. It admits all traffic from the
//! private half of the VPC only: the layout puts every slot's private subnet in blocks 0 to 7 of
//! 16 (see [`crate::planner`]), which is exactly the lower half of the VPC CIDR, and every public
//! subnet in the upper half. One rule that never changes as AZs come and go.
//!
//! # Switching a live stack keeps its Elastic IPs
//! The address is the slot's, not the NAT's: the planner picks it as for a gateway (the one in
//! use, retained, adopted, else new), whatever kind of NAT holds it.
//! - gateway → instance: launch the instance with a public IP of its own (its boot needs the
//!   package repositories, and the Elastic IP is still on the gateway) and turn its check off;
//!   wait until it reports ready; delete the NAT gateway and wait until it is `deleted` (only
//!   then is the address free); associate the address with the instance (which releases the
//!   launch's public IP); point the private route at it. No gateway is deleted before every
//!   switching slot's instance is ready: an instance that never gets ready fails the deploy
//!   before any gateway is touched, and every slot keeps its egress.
//! - instance → gateway: turn off the instance's automatic public IP (one launched with a public
//!   IP gets a new one when its Elastic IP leaves); disassociate the address from the instance;
//!   create the NAT gateway with it; point the private route at the gateway; terminate the
//!   instance. An instance no route sends traffic to yet (its launch, or a switch to it, killed
//!   part way) carries nothing: it is terminated before the gateway is made, so that switching
//!   back never waits for an instance with no way out while the gateway holds its address.
//!
//! An instance found stopped (by hand, or by AWS for a host's retirement) is started again, and
//! waited for until it reports ready: the next deploy brings its slot back on the same instance
//! and address. One found terminated is replaced by a launch of a new client-token generation,
//! which takes the slot's address.
//!
//! An Elastic IP sits on one NAT at a time, so the slot's egress pauses while it moves (on AWS,
//! the minutes a NAT gateway takes to be deleted or created): the plan says so in a note.

use ipnet::Ipv4Net;

use super::addresses::AddressChoice;
use super::inventory::Inventory;
use super::steps::{Planned, Planner};
use super::PlanError;
use crate::network::InstanceState;
use crate::observed::{ObservedNatInstance, ObservedState, Slot};
use crate::plan::{Action, Ref, RouteVia, Status, StepId};

/// Amazon Linux 2023's latest arm64 image, from AWS's public SSM parameters.
pub const AL2023_ARM64_PARAMETER: &str =
    "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64";
/// The same for x86_64 instance types.
pub const AL2023_X86_64_PARAMETER: &str =
    "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64";

/// Whether an instance type is Graviton (arm64): its family ends its generation digit with `g`,
/// as in `t4g`, `c7gn`, `m6gd`.
pub fn is_graviton(instance_type: &str) -> bool {
    let family = instance_type.split('.').next().unwrap_or_default();
    let after_digits = family
        .trim_start_matches(|c: char| c.is_ascii_alphabetic())
        .trim_start_matches(|c: char| c.is_ascii_digit());
    after_digits.starts_with('g')
}

/// The SSM parameter naming the image for an instance type's architecture.
pub fn image_parameter(instance_type: &str) -> &'static str {
    if is_graviton(instance_type) {
        AL2023_ARM64_PARAMETER
    } else {
        AL2023_X86_64_PARAMETER
    }
}

/// What the NAT instances' security group admits: the private half of the VPC.
pub fn private_half(vpc: Ipv4Net) -> Ipv4Net {
    Ipv4Net::new(vpc.network(), vpc.prefix_len() + 1).expect("a VPC is at most a /24")
}

/// Why the slot's address cannot go on its NAT: a NAT gateway being deleted still holds it, or
/// something fixedip did not make.
pub(super) fn address_held(
    slot: Slot,
    inventory: &Inventory,
    observed: &crate::observed::ObservedAddress,
    association: &str,
) -> PlanError {
    match inventory.nat_holding(&observed.allocation_id) {
        Some(nat) => PlanError::AddressHeldByDeletingNat {
            slot,
            allocation_id: observed.allocation_id.clone(),
            nat_gateway: nat.id.clone(),
        },
        None => PlanError::AddressInUse {
            slot,
            allocation_id: observed.allocation_id.clone(),
            association: association.to_owned(),
        },
    }
}

/// Whether the slot's address is on the slot's instance (matched by interface when AWS reports
/// one; moto may not), not on a NAT gateway, which keeps it (a switch to the instance killed
/// before the address moved): anything else holding it was refused earlier.
fn on_slot_instance(inventory: &Inventory, observed: &crate::observed::ObservedAddress) -> bool {
    let on_gateway = inventory
        .live_nats
        .iter()
        .chain(&inventory.deleting_nats)
        .any(|nat| nat.allocation_ids.contains(&observed.allocation_id));
    inventory
        .instance_holding(observed.network_interface_id.as_deref())
        .is_some()
        || !on_gateway
}

/// The NAT of a slot, as the private route will use it.
pub(super) struct SlotNat {
    pub planned: Planned,
    pub via: RouteVia,
    /// Steps the private route waits for: the NAT can carry the slot's traffic after them (the
    /// instance reported ready, and its Elastic IP is on it).
    pub route_after: Vec<StepId>,
    /// A switch from the slot's NAT gateway, whose gateway goes only once every switching
    /// slot's instance is ready ([`Planner::finish_switches`]); `route_after` is then filled in.
    pub switch: Option<Switch>,
    /// The NAT the slot leaves behind, once its route has moved (a plain NAT instance replaced
    /// by a self-healing one).
    pub retire: Vec<Retire>,
}

/// The second half of a slot's switch from the NAT that holds its address (a NAT gateway, or a
/// self-healing NAT's fixed interface) to a new one that is launched already: free the address
/// once every switching slot's new NAT passed its gate, then put the address on the new NAT.
pub(super) struct Switch {
    pub(super) from: SwitchFrom,
    pub(super) stale: Vec<StepId>,
    pub(super) address: Ref,
    pub(super) to: SwitchTo,
    /// What the old NAT waits for: the new instance ready, or the group (its interface and
    /// template) made, whose instance boots and waits for the address.
    pub(super) gate: Vec<StepId>,
}

/// What holds the slot's address until the switch moves it.
pub(super) enum SwitchFrom {
    /// Deleted, and waited for until `deleted`: only then is its address free.
    NatGateway {
        id: String,
        allocation_ids: Vec<String>,
    },
    /// A self-healing NAT's fixed interface: the address is disassociated from it (the group
    /// goes once the route has moved, [`Retire::NatGroup`]).
    NatInterface { association: String },
}

/// Where the switch puts the slot's address.
pub(super) enum SwitchTo {
    /// A plain NAT instance, ready already: the route follows the association.
    NatInstance {
        instance: Ref,
        interface: Option<String>,
    },
    /// A self-healing NAT's fixed interface: its group's instance says ready once the address
    /// is on it, and the route follows that (`changed`: the slot's steps the wait follows).
    NatInterface {
        interface: Ref,
        group: Ref,
        changed: Vec<StepId>,
    },
}

/// The NAT of another kind that a slot leaves, once its route has moved.
pub(super) enum Retire {
    /// Terminate the instance (its address was disassociated before the new NAT took it).
    NatInstance { id: String },
    /// Delete the slot's self-healing NAT (group, template, interface; its address was
    /// disassociated before the new NAT took it).
    NatGroup { slot: Slot },
}

impl Planner {
    /// The NAT instances' security group, created when missing.
    pub(super) fn nat_security_group(
        &mut self,
        observed: &ObservedState,
        vpc: &Planned,
        vpc_cidr: Ipv4Net,
    ) -> Planned {
        match &observed.nat_security_group {
            Some(group) => Planned::kept(&group.id),
            None => Planned::created(self.push(
                Action::CreateNatSecurityGroup {
                    vpc: vpc.reference.clone(),
                    admit: private_half(vpc_cidr),
                },
                &[],
            )),
        }
    }

    /// Back to gateways (`in_instance_mode` false): the NAT instances' group goes once no
    /// instance is left, after every instance this plan terminates (retired by a switch, in a
    /// slot that lost its NAT, or in a slot beyond `azs`). Its id and the step, when it goes.
    pub(super) fn retire_nat_security_group(
        &mut self,
        in_instance_mode: bool,
        observed: &ObservedState,
        inventory: &Inventory,
    ) -> Option<(String, StepId)> {
        let group = observed
            .nat_security_group
            .as_ref()
            .filter(|_| !in_instance_mode)?;
        // Its users: the plain instances, and a self-healing NAT's instance and interface.
        let count = |what: fn(&Action) -> bool| self.steps_where(what).len();
        let all_go = count(|a| matches!(a, Action::TerminateNatInstance { .. }))
            == inventory.all_instances.len()
            && count(|a| matches!(a, Action::DeleteNatGroup { .. })) == inventory.nat_groups.len()
            && count(|a| matches!(a, Action::DeleteNatInterface { .. }))
                == inventory.nat_interfaces.len();
        if !all_go {
            return None;
        }
        let terminated = self.steps_where(|a| {
            matches!(
                a,
                Action::TerminateNatInstance { .. }
                    | Action::DeleteNatGroup { .. }
                    | Action::DeleteNatInterface { .. }
            )
        });
        let action = Action::DeleteSecurityGroup {
            security_group: group.id.clone(),
        };
        Some((group.id.clone(), self.push(action, &terminated)))
    }

    /// A slot's NAT instance: kept, completed (check, address) or launched, and waited for until
    /// it reports ready before the route points at it. A NAT gateway the slot still has is
    /// deleted only once the instance is ready, and its address then moves to the instance. A new
    /// instance is launched after `functions_first` (Lambda's answer to the functions created
    /// first: no NAT in an AZ Lambda refuses).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn slot_nat_instance(
        &mut self,
        slot: Slot,
        inventory: &Inventory,
        address: &AddressChoice,
        address_ref: &Ref,
        (public_subnet, functions_first): (&Planned, &[StepId]),
        security_group: &Planned,
        instance_type: &str,
    ) -> Result<SlotNat, PlanError> {
        let gateway = inventory.live_nat(slot);
        let existing = inventory.live_instance(slot);
        let stale = self.instance_address_free(slot, inventory, address)?;

        // The address stays on the NAT it is on until the instance is ready.
        let held_elsewhere = gateway.is_some()
            || address
                .observed()
                .is_some_and(|a| inventory.on_nat_interface(slot, a).is_some());
        let first = self.steps.len();
        let (planned, instance_ref) = self.kept_or_launched(
            slot,
            inventory,
            (public_subnet, functions_first),
            security_group,
            (instance_type, held_elsewhere),
        );
        // What the instance needs before it can get ready: launched, its check off, a way out to
        // the package repositories (its Elastic IP, or a public IP at launch in a switch).
        let mut ready_after: Vec<StepId> = Vec::new();
        if let Ref::Step(step) = instance_ref {
            ready_after.push(step);
        }
        ready_after.extend(existing.and_then(|i| self.start_if_stopped(i)));
        if existing.is_none_or(|i| i.source_dest_check) {
            let action = Action::DisableSourceDestCheck {
                instance: instance_ref.clone(),
            };
            ready_after.push(self.push(action, &[]));
        }
        let associated = address.observed().is_some_and(|a| {
            existing.is_some_and(|i| {
                i.network_interface_id.is_some() && i.network_interface_id == a.network_interface_id
            })
        });
        let interface = existing.and_then(|i| i.network_interface_id.clone());
        // The NAT that holds the slot's address until the instance is ready: a gateway, or a
        // self-healing NAT's fixed interface.
        let from_interface = address
            .observed()
            .and_then(|a| inventory.on_nat_interface(slot, a));
        let from = match (gateway, from_interface) {
            (Some(nat), _) => Some(SwitchFrom::NatGateway {
                id: nat.id.clone(),
                allocation_ids: nat.allocation_ids.clone(),
            }),
            (None, Some(association)) => Some(SwitchFrom::NatInterface { association }),
            (None, None) => None,
        };
        let retire = if inventory.has_nat_group(slot) {
            vec![Retire::NatGroup { slot }]
        } else {
            Vec::new()
        };
        let mut switch = None;
        let route_after = match from {
            Some(from) => {
                self.note_switch_to_instance(slot, &from);
                // Ready first: an instance that never gets ready leaves the old NAT in place.
                switch = Some(Switch {
                    from,
                    stale,
                    address: address_ref.clone(),
                    to: SwitchTo::NatInstance {
                        instance: instance_ref.clone(),
                        interface,
                    },
                    gate: vec![self.await_ready(&instance_ref, &ready_after)],
                });
                Vec::new()
            }
            None => {
                if !associated {
                    let action = Action::AssociateAddress {
                        address: address_ref.clone(),
                        instance: instance_ref.clone(),
                        interface,
                    };
                    ready_after.push(self.push(action, &stale));
                }
                let routed = existing.is_some_and(|i| inventory.routes_to_instance(slot, &i.id));
                if routed && ready_after.is_empty() {
                    Vec::new()
                } else {
                    vec![self.await_ready(&instance_ref, &ready_after)]
                }
            }
        };
        let planned = match planned.status {
            Status::Keep(id) if self.steps.len() > first => Planned::changed(&id),
            _ => planned,
        };
        Ok(SlotNat {
            via: RouteVia::NatInstance(instance_ref),
            planned,
            route_after,
            switch,
            retire,
        })
    }

    /// What the plan says of a slot's switch to a plain NAT instance, and how long its egress
    /// pauses.
    fn note_switch_to_instance(&mut self, slot: Slot, from: &SwitchFrom) {
        self.notes.push(match from {
            SwitchFrom::NatGateway { id, .. } => format!(
                "AZ slot {slot} moves from NAT gateway {id} to a NAT instance, keeping its Elastic IP: the instance boots on a public IP of its own while the gateway still carries the slot (billed $0.005/h until the Elastic IP replaces it: under a cent for the switch); once every switching AZ's instance reports ready, its egress pauses from the gateway's deletion until the address is on the instance and the route points at it (on AWS, a few minutes)"
            ),
            SwitchFrom::NatInterface { .. } => format!(
                "AZ slot {slot} moves from its self-healing NAT to a plain NAT instance, keeping its Elastic IP: the instance boots on a public IP of its own while the group's instance still carries the slot; once every switching AZ's instance reports ready, its egress pauses for seconds (the address leaves the fixed interface for the instance, the route follows); then the group, its launch template and its interface are deleted"
            ),
        });
    }

    /// The NAT that held each switching slot's address lets it go only once **every** switching
    /// slot's new NAT passed its gate (a new instance ready; a group made): the executor starts
    /// nothing after a failed step, so a gateway deleted before another slot's instance failed
    /// would leave its own slot with a route to a deleted gateway, and no egress, until the next
    /// deploy. The steps the slot's private route waits for, per switch: the address on the
    /// instance, or the group's instance ready once the address is on its interface.
    pub(super) fn finish_switches(
        &mut self,
        inventory: &Inventory,
        switches: Vec<Switch>,
    ) -> Vec<StepId> {
        let every_gate: Vec<StepId> = switches.iter().flat_map(|s| s.gate.clone()).collect();
        switches
            .into_iter()
            .map(|switch| {
                let mut freed = match switch.from {
                    SwitchFrom::NatGateway { id, allocation_ids } => {
                        let action = Action::DeleteNatGateway { nat_gateway: id };
                        let deleted = self.push(action, &every_gate);
                        self.free_addresses_of_nat(inventory, &allocation_ids, deleted)
                    }
                    SwitchFrom::NatInterface { association } => {
                        vec![self.disassociate(&association, &every_gate)]
                    }
                };
                freed.extend(switch.stale);
                match switch.to {
                    SwitchTo::NatInstance {
                        instance,
                        interface,
                    } => {
                        let action = Action::AssociateAddress {
                            address: switch.address,
                            instance,
                            interface,
                        };
                        self.push(action, &freed)
                    }
                    SwitchTo::NatInterface {
                        interface,
                        group,
                        mut changed,
                    } => {
                        let action = Action::AssociateInterfaceAddress {
                            address: switch.address,
                            interface,
                        };
                        changed.push(self.push(action, &freed));
                        self.push(Action::AwaitNatGroupReady { group }, &changed)
                    }
                }
            })
            .collect()
    }

    /// The slot's address must be free, on the slot's instance, or on the gateway or fixed
    /// interface this switch retires: the steps that free a stale association of it, or why it cannot be used.
    fn instance_address_free(
        &mut self,
        slot: Slot,
        inventory: &Inventory,
        address: &AddressChoice,
    ) -> Result<Vec<StepId>, PlanError> {
        let gateway = inventory.live_nat(slot);
        let existing = inventory.live_instance(slot);
        let mut stale = Vec::new();
        if let Some(observed) = address.observed() {
            stale.extend(self.free_stale_association(observed));
            if let Some(association) = observed.in_use() {
                let on_instance = existing.is_some_and(|i| {
                    i.network_interface_id.is_some()
                        && i.network_interface_id == observed.network_interface_id
                });
                let on_gateway =
                    gateway.is_some_and(|nat| nat.allocation_ids.contains(&observed.allocation_id));
                let on_interface = inventory.on_nat_interface(slot, observed).is_some();
                if !on_instance && !on_gateway && !on_interface {
                    return Err(address_held(slot, inventory, observed, association));
                }
            }
        }
        Ok(stale)
    }

    /// The slot's live instance, kept (a note if its type differs from the settings'), or a new
    /// one launched; with a public IP of its own in a switch (`held_elsewhere`: the Elastic IP is
    /// on a gateway or a fixed interface), as it cannot have the Elastic IP until it is ready.
    fn kept_or_launched(
        &mut self,
        slot: Slot,
        inventory: &Inventory,
        (public_subnet, functions_first): (&Planned, &[StepId]),
        security_group: &Planned,
        (instance_type, held_elsewhere): (&str, bool),
    ) -> (Planned, Ref) {
        match inventory.live_instance(slot) {
            Some(instance) => {
                if instance.instance_type != instance_type {
                    self.notes.push(format!(
                        "the NAT instance {} of AZ slot {slot} is a {}, not the {instance_type} the settings ask for: fixedip does not replace a working NAT (its Elastic IP would pause); terminate it by hand and deploy again to change its type",
                        instance.id, instance.instance_type
                    ));
                }
                (
                    Planned::kept(&instance.id),
                    Ref::Existing(instance.id.clone()),
                )
            }
            None => {
                let action = Action::LaunchNatInstance {
                    subnet: public_subnet.reference.clone(),
                    security_group: security_group.reference.clone(),
                    slot,
                    instance_type: instance_type.to_owned(),
                    image_parameter: image_parameter(instance_type).to_owned(),
                    generation: inventory
                        .retired
                        .nat_instances
                        .get(&slot)
                        .copied()
                        .unwrap_or(0),
                    // Its Elastic IP is on the old NAT until the instance is ready.
                    public_ip: held_elsewhere,
                };
                let step = self.push(action, functions_first);
                (Planned::created(step), Ref::Step(step))
            }
        }
    }

    /// A stopped (or stopping) NAT instance cuts its slot off while the route still names it:
    /// started again, it keeps its id, interface and Elastic IP, and its setup comes back at boot
    /// (the readiness wait after it reads the boot's own report).
    fn start_if_stopped(&mut self, instance: &ObservedNatInstance) -> Option<StepId> {
        let stopped = matches!(
            instance.state,
            InstanceState::Stopped | InstanceState::Stopping
        );
        stopped.then(|| {
            let action = Action::StartNatInstance {
                instance: instance.id.clone(),
            };
            self.push(action, &[])
        })
    }

    /// The wait for the instance's own word that it forwards and masquerades: the private route
    /// depends on it, so that no traffic is sent to an instance that would drop it.
    fn await_ready(&mut self, instance: &Ref, after: &[StepId]) -> StepId {
        let action = Action::AwaitNatInstanceReady {
            instance: instance.clone(),
        };
        self.push(action, after)
    }

    /// Retires a slot's NAT instance once `routed` (its private route's steps) is done.
    pub(super) fn retire(&mut self, inventory: &Inventory, retire: Vec<Retire>, routed: &[StepId]) {
        for old in retire {
            match old {
                Retire::NatInstance { id } => {
                    let instance = inventory.all_instances.iter().find(|i| i.id == id);
                    match instance {
                        Some(instance) => {
                            self.terminate(instance, inventory, routed);
                        }
                        None => {
                            self.push(Action::TerminateNatInstance { instance: id }, routed);
                        }
                    }
                }
                Retire::NatGroup { slot } => {
                    self.remove_nat_groups_of_slot(slot, inventory, routed);
                }
            }
        }
    }

    /// TerminateNatInstance after `ordering`, the Elastic IP on its interface disassociated
    /// first: AWS drops the association at termination, the emulator keeps it, and a retained or
    /// re-used address must be free either way.
    fn terminate(
        &mut self,
        instance: &ObservedNatInstance,
        inventory: &Inventory,
        ordering: &[StepId],
    ) -> StepId {
        let mut after = ordering.to_vec();
        let on_interface = inventory.addresses.iter().filter(|a| {
            instance.network_interface_id.is_some()
                && a.network_interface_id == instance.network_interface_id
        });
        for address in on_interface {
            if let Some(association) = &address.association_id {
                after.push(self.disassociate(association, ordering));
            }
        }
        let action = Action::TerminateNatInstance {
            instance: instance.id.clone(),
        };
        self.push(action, &after)
    }

    /// In gateway mode, an address held by the slot's NAT instance is disassociated before the
    /// new gateway takes it; the instance is retired once the route points at the gateway. An
    /// instance no route sends traffic to goes first instead ([`Self::terminate_unrouted`]).
    pub(super) fn free_address_of_instance(
        &mut self,
        slot: Slot,
        inventory: &Inventory,
        address: &AddressChoice,
    ) -> (Vec<StepId>, Vec<Retire>) {
        let Some(instance) = inventory.live_instance(slot) else {
            return (Vec::new(), Vec::new());
        };
        let held = address
            .observed()
            .filter(|observed| on_slot_instance(inventory, observed));
        if !inventory.routes_anywhere_to_instance(&instance.id) {
            return (
                self.terminate_unrouted(slot, instance, inventory, held),
                Vec::new(),
            );
        }
        let mut freed = Vec::new();
        if let Some(association) = held.and_then(|a| a.association_id.as_ref()) {
            // An instance launched with a public IP (a switch from a gateway) would get a new
            // one moments after its Elastic IP leaves, while the route still sends the slot's
            // traffic to it: from an address on no allowlist. Off first.
            let dropped = self.drop_public_ip(instance.network_interface_id.as_deref());
            freed.push(self.disassociate(association, &dropped));
        }
        self.notes.push(format!(
            "AZ slot {slot} moves from NAT instance {} to a NAT gateway, keeping its Elastic IP: its egress pauses from the address's move until the gateway is available and the route points at it (on AWS, a few minutes)",
            instance.id
        ));
        (
            freed,
            vec![Retire::NatInstance {
                id: instance.id.clone(),
            }],
        )
    }

    /// No public IP from AWS on a NAT's interface once its Elastic IP leaves (see
    /// [`Action::DropPublicIp`]): the step, when the interface is known.
    pub(super) fn drop_public_ip(&mut self, interface: Option<&str>) -> Vec<StepId> {
        interface
            .map(|interface| {
                let action = Action::DropPublicIp {
                    network_interface: interface.to_owned(),
                };
                self.push(action, &[])
            })
            .into_iter()
            .collect()
    }

    /// A NAT instance no route sends traffic to (a switch to it, or its launch, killed before
    /// it was routed) carries nothing: it is terminated before the slot's gateway is made, so
    /// that no run killed in between leaves the gateway holding the address beside it. Switched
    /// back, such an instance (launched without a public IP, never ready) would be waited for
    /// with no way out to install its NAT setup: it could never get ready. `held`: the slot's
    /// address on it, disassociated first when AWS does not say which interface holds it (the
    /// termination frees the others).
    fn terminate_unrouted(
        &mut self,
        slot: Slot,
        instance: &ObservedNatInstance,
        inventory: &Inventory,
        held: Option<&crate::observed::ObservedAddress>,
    ) -> Vec<StepId> {
        let unreported = held.filter(|a| a.network_interface_id.is_none());
        let first: Vec<StepId> = unreported
            .and_then(|a| a.association_id.as_deref())
            .map(|association| self.disassociate(association, &[]))
            .into_iter()
            .collect();
        self.notes.push(format!(
            "AZ slot {slot}'s NAT instance {}, which carries no traffic, is terminated before the slot's NAT gateway is made",
            instance.id
        ));
        vec![self.terminate(instance, inventory, &first)]
    }

    /// Removal of NAT instances (a slot beyond `azs`, destroy): terminate each, waited for; and
    /// a self-healing NAT's group, template and interface. Each with its subnet and the step
    /// after which it is gone and its address free.
    pub(super) fn terminate_instances_of_slot(
        &mut self,
        slot: Slot,
        inventory: &Inventory,
        functions_off: &[StepId],
    ) -> Vec<(String, StepId)> {
        let mut removed: Vec<(String, StepId)> = inventory
            .all_instances
            .iter()
            .filter(|i| i.slot == slot)
            .map(|i| {
                (
                    i.subnet_id.clone(),
                    self.terminate(i, inventory, functions_off),
                )
            })
            .collect();
        removed.extend(self.remove_nat_groups_of_slot(slot, inventory, functions_off));
        removed
    }
}
