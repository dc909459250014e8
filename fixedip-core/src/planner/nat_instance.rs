//! `nat = "instance"`: an EC2 instance per slot instead of a NAT gateway.
//!
//! Per slot, in the public subnet: one instance of the stack's `nat-instance-type` (default
//! [`DEFAULT_NAT_INSTANCE_TYPE`](crate::plan::DEFAULT_NAT_INSTANCE_TYPE)), Amazon Linux 2023 from
//! AWS's public SSM parameter for its architecture, with forwarding and masquerading turned on at
//! boot by its user data (the executor's), the source/destination check off, and the slot's
//! Elastic IP associated with its primary network interface. The slot's private route
//! 0.0.0.0/0 goes to the instance once its address is associated and its check is off, so that
//! no packet leaves from an address that is not on the allowlist.
//!
//! One security group serves every NAT instance of the stack. It admits all traffic from the
//! private half of the VPC only: the layout puts every slot's private subnet in blocks 0 to 7 of
//! 16 (see [`crate::planner`]), which is exactly the lower half of the VPC CIDR, and every public
//! subnet in the upper half. One rule that never changes as AZs come and go.
//!
//! # Switching a live stack keeps its Elastic IPs
//! The address is the slot's, not the NAT's: the planner picks it as for a gateway (the one in
//! use, retained, adopted, else new), whatever kind of NAT holds it.
//! - gateway → instance: launch the instance and turn its check off; point the private route at
//!   it; delete the NAT gateway and wait until it is `deleted` (only then is the address free);
//!   associate the address with the instance.
//! - instance → gateway: disassociate the address from the instance; create the NAT gateway with
//!   it; point the private route at the gateway; terminate the instance.
//!
//! An Elastic IP sits on one NAT at a time, so the slot's egress pauses while it moves (on AWS,
//! the minutes a NAT gateway takes to be deleted or created): the plan says so in a note.

use ipnet::Ipv4Net;

use super::{AddressChoice, Inventory, PlanError, Planned, Planner};
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

/// The NAT of a slot, as the private route will use it.
pub(super) struct SlotNat {
    pub planned: Planned,
    pub via: RouteVia,
    /// Steps the private route waits for: the NAT can carry the slot's traffic after them.
    pub route_after: Vec<StepId>,
    /// What goes once the private route points at the new NAT (a switch of mode).
    pub retire: Vec<Retire>,
}

/// A NAT of the other kind in a slot that switches mode.
pub(super) enum Retire {
    /// Delete the gateway (waited until `deleted`), then associate its address with `instance`.
    NatGateway {
        id: String,
        address: Ref,
        instance: Ref,
    },
    /// Terminate the instance (its address was disassociated before the new gateway took it).
    NatInstance { id: String },
}

impl<'a> Inventory<'a> {
    /// The live NAT instance of a slot (running first, then by id).
    pub(super) fn live_instance(&self, slot: Slot) -> Option<&'a ObservedNatInstance> {
        self.live_instances.iter().copied().find(|i| i.slot == slot)
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

    /// A slot's NAT instance: kept, completed (check, address) or launched; a NAT gateway the
    /// slot still has is retired once the route points at the instance.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn slot_nat_instance(
        &mut self,
        slot: Slot,
        inventory: &Inventory,
        address: &AddressChoice,
        address_ref: &Ref,
        public_subnet: &Planned,
        security_group: &Planned,
        instance_type: &str,
    ) -> Result<SlotNat, PlanError> {
        let gateway = inventory.live_nat(slot);
        let existing = inventory.live_instance(slot);
        // The address must be free, on this instance, or on the gateway this switch retires.
        if let Some(observed) = address.observed() {
            if let Some(association) = &observed.association_id {
                let on_instance = existing.is_some_and(|i| {
                    i.network_interface_id.is_some()
                        && i.network_interface_id == observed.network_interface_id
                });
                let on_gateway =
                    gateway.is_some_and(|nat| nat.allocation_ids.contains(&observed.allocation_id));
                if !on_instance && !on_gateway {
                    return Err(match inventory.nat_holding(&observed.allocation_id) {
                        Some(nat) => PlanError::AddressHeldByDeletingNat {
                            slot,
                            allocation_id: observed.allocation_id.clone(),
                            nat_gateway: nat.id.clone(),
                        },
                        None => PlanError::AddressInUse {
                            slot,
                            allocation_id: observed.allocation_id.clone(),
                            association: association.clone(),
                        },
                    });
                }
            }
        }

        let first = self.steps.len();
        let (planned, instance_ref) = match existing {
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
                };
                let step = self.push(action, &[]);
                (Planned::created(step), Ref::Step(step))
            }
        };
        let mut route_after: Vec<StepId> = Vec::new();
        if let Ref::Step(step) = instance_ref {
            route_after.push(step);
        }
        if existing.is_none_or(|i| i.source_dest_check) {
            let action = Action::DisableSourceDestCheck {
                instance: instance_ref.clone(),
            };
            route_after.push(self.push(action, &[]));
        }
        let mut retire = Vec::new();
        let associated = address.observed().is_some_and(|a| {
            existing.is_some_and(|i| {
                i.network_interface_id.is_some() && i.network_interface_id == a.network_interface_id
            })
        });
        match gateway {
            Some(nat) => {
                self.notes.push(format!(
                    "AZ slot {slot} moves from NAT gateway {} to a NAT instance, keeping its Elastic IP: its egress pauses from the route change until the gateway is deleted and the address is associated with the instance (on AWS, a few minutes)",
                    nat.id
                ));
                retire.push(Retire::NatGateway {
                    id: nat.id.clone(),
                    address: address_ref.clone(),
                    instance: instance_ref.clone(),
                });
            }
            None if !associated => {
                let action = Action::AssociateAddress {
                    address: address_ref.clone(),
                    instance: instance_ref.clone(),
                };
                route_after.push(self.push(action, &[]));
            }
            None => {}
        }
        let planned = match planned.status {
            Status::Keep(id) if self.steps.len() > first => Planned::changed(&id),
            _ => planned,
        };
        Ok(SlotNat {
            via: RouteVia::NatInstance(instance_ref),
            planned,
            route_after,
            retire,
        })
    }

    /// Retires a slot's NAT of the other kind once `routed` (its private route's steps) is done.
    pub(super) fn retire(&mut self, retire: Vec<Retire>, routed: &[StepId]) {
        for old in retire {
            match old {
                Retire::NatGateway {
                    id,
                    address,
                    instance,
                } => {
                    let deleted = self.push(Action::DeleteNatGateway { nat_gateway: id }, routed);
                    self.push(Action::AssociateAddress { address, instance }, &[deleted]);
                }
                Retire::NatInstance { id } => {
                    self.push(Action::TerminateNatInstance { instance: id }, routed);
                }
            }
        }
    }

    /// In gateway mode, an address held by the slot's NAT instance is disassociated before the
    /// new gateway takes it; the instance is retired once the route points at the gateway.
    pub(super) fn free_address_of_instance(
        &mut self,
        slot: Slot,
        inventory: &Inventory,
        address: &AddressChoice,
    ) -> (Vec<StepId>, Vec<Retire>) {
        let Some(instance) = inventory.live_instance(slot) else {
            return (Vec::new(), Vec::new());
        };
        let mut freed = Vec::new();
        if let Some(observed) = address.observed() {
            // The slot's address on the slot's instance (matched by interface when AWS reports
            // one; moto may not): anything else holding it was refused earlier.
            let on_instance = inventory
                .instance_holding(observed.network_interface_id.as_deref())
                .is_some()
                || inventory.nat_holding(&observed.allocation_id).is_none();
            if let (Some(association), true) = (&observed.association_id, on_instance) {
                let action = Action::DisassociateAddress {
                    association_id: association.clone(),
                };
                freed.push(self.push(action, &[]));
            }
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

    /// Removal of NAT instances (a slot beyond `azs`, destroy): terminate each, waited for.
    pub(super) fn terminate_instances_of_slot(
        &mut self,
        slot: Slot,
        inventory: &Inventory,
        functions_off: &[StepId],
    ) -> Vec<(String, StepId)> {
        inventory
            .all_instances
            .iter()
            .filter(|i| i.slot == slot)
            .map(|i| {
                let action = Action::TerminateNatInstance {
                    instance: i.id.clone(),
                };
                (i.subnet_id.clone(), self.push(action, functions_off))
            })
            .collect()
    }
}
