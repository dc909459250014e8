//! One AZ slot of the stack: its subnets, its Elastic IP and its NAT (a gateway, or an instance in
//! `nat = "instance"` mode), as the slot's private route will use it.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::addresses::{known_ip, AddressChoice};
use super::layout::{slot_cidrs, SlotCidrs};
use super::nat_instance::{Retire, Switch};
use super::nats::NatLayout;
use super::network::Base;
use super::steps::{Planned, Planner};
use super::{Context, PlanError};
use crate::observed::{AddressUse, Slot, Tier};
use crate::plan::{Action, AzView, PendingIp, Ref, RouteVia, Status, StepId};

pub(super) struct BuiltSlot {
    pub(super) slot: Slot,
    pub(super) az: String,
    pub(super) public_cidr: Ipv4Net,
    pub(super) private_cidr: Ipv4Net,
    /// `None`: the slot has no NAT of its own (`nats` fewer than `azs`, or isolated).
    pub(super) public_subnet: Option<Planned>,
    pub(super) private_subnet: Planned,
    pub(super) public_ip: Option<Ipv4Addr>,
    pub(super) address_status: Status,
    /// `None`: held back until the user allows the slot's new IP, or no NAT in the slot. A NAT
    /// instance in its mode.
    pub(super) nat_gateway: Option<Planned>,
    /// Where the private route sends traffic (taken when the route is planned).
    pub(super) nat_via: Option<RouteVia>,
    /// Steps the private route waits for besides the NAT's creation (a NAT instance's address
    /// and check).
    pub(super) route_after: Vec<StepId>,
    /// The NAT of the other kind this slot leaves behind, once its route has moved.
    pub(super) retire: Vec<Retire>,
    /// A switch from the slot's NAT gateway to its instance, finished once every slot is built.
    pub(super) switch: Option<Switch>,
    pub(super) pending: Option<PendingIp>,
}

/// The slot's address as its NAT will use it.
struct SlotAddress {
    reference: Ref,
    public_ip: Option<Ipv4Addr>,
    status: Status,
    /// A new IP that waits for the user: no NAT, no route, no function yet.
    held_back: bool,
}

/// A slot's subnets (`build_slots`): private, and public when the slot holds a NAT.
struct SlotSubnets<'a> {
    private: (Ipv4Net, Planned),
    public: Option<(Ipv4Net, Planned)>,
    /// The functions created before any NAT: a new NAT waits for Lambda's answer to them.
    functions_first: &'a [StepId],
}

impl Planner {
    /// Every slot the stack uses, in slot order.
    pub(super) fn build_slots(
        &mut self,
        context: &Context,
        wanted: &[(Slot, String)],
        addresses: &std::collections::BTreeMap<Slot, AddressChoice>,
        base: &Base,
    ) -> Result<Vec<BuiltSlot>, PlanError> {
        // Every slot's subnets first. A subnet is what an AZ can refuse ("Subnets can currently
        // only be created in the following availability zones"); a new NAT is made in its own
        // subnet, so a refused AZ gets none. Addresses are regional: they are allocated (or put
        // to work) at once, and a slot that moves out of a refused AZ keeps its own.
        let mut subnets = Vec::new();
        for (slot, az) in wanted {
            let layout = slot_cidrs(context.vpc_cidr, *slot);
            let private = self.slot_subnet(context, *slot, az, Tier::Private, layout, base)?;
            let public = match addresses.get(slot) {
                Some(_) => {
                    Some(self.slot_subnet(context, *slot, az, Tier::Public, layout, base)?)
                }
                None => None,
            };
            subnets.push((private, public));
        }
        // Lambda too can refuse an AZ ("The provided subnets contain availability zone Lambda
        // doesn't support"), and only when a function is put there: a new function is created
        // before any NAT, so that its refusal leaves no NAT in that AZ, and the slot, whose AZ is
        // not fixed until its NAT exists, moves with its address (`function.rs`,
        // `functions_created_first`; `slots.rs`, `abandoned_slot`).
        let private: Vec<(Slot, Ref)> = wanted
            .iter()
            .zip(&subnets)
            .map(|((slot, _), ((_, private), _))| (*slot, private.reference.clone()))
            .collect();
        let functions_first = self.create_functions_first(context, &private, base);
        let mut built: Vec<BuiltSlot> = wanted
            .iter()
            .zip(subnets)
            .map(|((slot, az), (private, public))| {
                let subnets = SlotSubnets {
                    private,
                    public,
                    functions_first: &functions_first,
                };
                self.slot(context, *slot, az, addresses.get(slot), base, subnets)
            })
            .collect::<Result<_, _>>()?;
        // Gateway → instance: no gateway goes before every switching slot's instance is ready.
        let (switching, switches): (Vec<usize>, Vec<Switch>) = built
            .iter_mut()
            .enumerate()
            .filter_map(|(i, b)| b.switch.take().map(|switch| (i, switch)))
            .unzip();
        let associated = self.finish_switches(&context.inventory, switches);
        for (i, step) in switching.into_iter().zip(associated) {
            built[i].route_after.push(step);
        }
        Ok(built)
    }

    fn slot(
        &mut self,
        context: &Context,
        slot: Slot,
        az: &str,
        address: Option<&AddressChoice>,
        base: &Base,
        subnets: SlotSubnets,
    ) -> Result<BuiltSlot, PlanError> {
        let layout = slot_cidrs(context.vpc_cidr, slot);
        let (private_cidr, private_subnet) = subnets.private;
        let public_cidr = match (context.inventory.subnet(slot, Tier::Public), layout) {
            (Some(subnet), _) => subnet.cidr,
            (None, Some(layout)) => layout.public,
            (None, None) => return Err(PlanError::SlotOutsideLayout { slot }),
        };
        let mut built = BuiltSlot {
            slot,
            az: az.to_owned(),
            public_cidr,
            private_cidr,
            public_subnet: None,
            private_subnet,
            public_ip: None,
            address_status: Status::Absent,
            nat_gateway: None,
            nat_via: None,
            route_after: Vec::new(),
            retire: Vec::new(),
            switch: None,
            pending: None,
        };
        // A slot without a NAT of its own has no public side: its AZ's traffic leaves through
        // another slot's NAT, or nowhere (isolated).
        let (Some(address), Some((public_cidr, public_subnet))) = (address, subnets.public) else {
            return Ok(built);
        };
        let chosen = self.slot_address(context, slot, address);
        built.public_cidr = public_cidr;
        built.public_ip = chosen.public_ip;
        built.address_status = chosen.status;
        if chosen.held_back {
            built.pending = Some(PendingIp {
                slot,
                az: az.to_owned(),
                address: chosen.reference,
                public_ip: chosen.public_ip,
            });
            built.public_subnet = Some(public_subnet);
            return Ok(built);
        }
        match &base.nat_security_group {
            Some(security_group) => {
                let instance_type = context.spec.modes.nat_instance_type();
                let nat = match &base.nat_profile {
                    Some(profile) => self.slot_nat_group(
                        slot,
                        &context.inventory,
                        super::nat_group::GroupParts {
                            address,
                            address_ref: &chosen.reference,
                            public_subnet: &public_subnet,
                            security_group,
                            profile,
                            instance_type,
                            functions_first: subnets.functions_first,
                        },
                    )?,
                    None => self.slot_nat_instance(
                        slot,
                        &context.inventory,
                        address,
                        &chosen.reference,
                        (&public_subnet, subnets.functions_first),
                        security_group,
                        instance_type,
                    )?,
                };
                built.nat_gateway = Some(nat.planned);
                built.nat_via = Some(nat.via);
                built.route_after = nat.route_after;
                built.switch = nat.switch;
                built.retire = nat.retire;
            }
            None => {
                let attached = base.internet_gateway.as_ref().and_then(|g| g.attached);
                let (nat, retire) = self.slot_nat_gateway(
                    context,
                    slot,
                    address,
                    chosen.reference,
                    &public_subnet,
                    attached
                        .into_iter()
                        .chain(subnets.functions_first.iter().copied()),
                )?;
                built.nat_via = Some(RouteVia::NatGateway(nat.reference.clone()));
                built.nat_gateway = Some(nat);
                built.retire = retire;
            }
        }
        built.public_subnet = Some(public_subnet);
        Ok(built)
    }

    /// A subnet of the slot: the one observed (it never moves), else a new one by the layout.
    fn slot_subnet(
        &mut self,
        context: &Context,
        slot: Slot,
        az: &str,
        tier: Tier,
        layout: Option<SlotCidrs>,
        base: &Base,
    ) -> Result<(Ipv4Net, Planned), PlanError> {
        let inventory = &context.inventory;
        if let Some(subnet) = inventory.subnet(slot, tier) {
            return Ok((subnet.cidr, Planned::kept(&subnet.id)));
        }
        let layout = layout.ok_or(PlanError::SlotOutsideLayout { slot })?;
        let cidr = match tier {
            Tier::Public => layout.public,
            Tier::Private => layout.private,
        };
        if let Some(clash) = inventory
            .subnets
            .iter()
            .find(|s| s.cidr.contains(&cidr.network()) || cidr.contains(&s.cidr.network()))
        {
            return Err(PlanError::SubnetOverlap {
                slot,
                cidr,
                subnet_id: clash.id.clone(),
                subnet_cidr: clash.cidr,
            });
        }
        let action = Action::CreateSubnet {
            vpc: base.vpc.reference.clone(),
            tier,
            slot,
            az: az.to_owned(),
            cidr,
        };
        Ok((cidr, Planned::created(self.push(action, &[]))))
    }

    /// The slot's Elastic IP: kept, put to work (re-tagged), or allocated, at the start of the
    /// run: an address is regional and waits for nothing. A new IP waits for the user when the
    /// stack's IPs were shown before; a slot whose NAT gateway exists, or whose NAT instance
    /// holds the address, carries traffic already, so there is nothing left to hold back. An
    /// instance without it (a run killed between its launch and the association) carried none:
    /// the IP still waits.
    fn slot_address(
        &mut self,
        context: &Context,
        slot: Slot,
        address: &AddressChoice,
    ) -> SlotAddress {
        let inventory = &context.inventory;
        let is_new = match address {
            AddressChoice::Allocate => true,
            AddressChoice::Keep(a) | AddressChoice::Activate(a) => a.usage == AddressUse::Pending,
        };
        let on_instance = address.observed().is_some_and(|a| {
            inventory
                .instance_holding(a.network_interface_id.as_deref())
                .is_some_and(|i| i.slot == slot)
        });
        let held_back =
            context.hold_new_ips && is_new && inventory.live_nat(slot).is_none() && !on_instance;
        let existing = |a: &crate::observed::ObservedAddress, status: Status| SlotAddress {
            reference: Ref::Existing(a.allocation_id.clone()),
            public_ip: known_ip(a),
            status,
            held_back,
        };
        match address {
            AddressChoice::Keep(a) => existing(a, Status::Keep(a.allocation_id.clone())),
            // Pending for this slot already: it waits as it is.
            AddressChoice::Activate(a) if held_back && a.slot == Some(slot) => {
                existing(a, Status::Keep(a.allocation_id.clone()))
            }
            // Anything else is claimed for the slot; a pending address another slot left (shown,
            // never allowed) is claimed still pending, and carries no traffic until allowed.
            AddressChoice::Activate(a) => {
                let action = Action::ActivateAddress {
                    allocation_id: a.allocation_id.clone(),
                    slot,
                    // Tagged so that no later run ever releases it, even once `ips` no longer
                    // names it.
                    adopted: context
                        .spec
                        .adopted_ips
                        .iter()
                        .any(|id| id.as_str() == a.allocation_id),
                    held_back,
                };
                SlotAddress {
                    reference: Ref::Step(self.push(action, &[])),
                    ..existing(a, Status::Change(a.allocation_id.clone()))
                }
            }
            AddressChoice::Allocate => SlotAddress {
                reference: Ref::Step(self.push(Action::AllocateAddress { slot, held_back }, &[])),
                public_ip: None,
                status: Status::Create,
                held_back,
            },
        }
    }

    /// The slot's NAT gateway: kept, or created once its address is free (a NAT instance of the
    /// slot gives it up first, and is retired once the route points at the gateway), after
    /// `ordering`: the internet gateway's attachment and Lambda's answer to the functions created
    /// first.
    fn slot_nat_gateway(
        &mut self,
        context: &Context,
        slot: Slot,
        address: &AddressChoice,
        address_ref: Ref,
        public_subnet: &Planned,
        ordering: impl IntoIterator<Item = StepId>,
    ) -> Result<(Planned, Vec<Retire>), PlanError> {
        let inventory = &context.inventory;
        let (mut freed, mut retire) = self.free_address_of_instance(slot, inventory, address);
        let (from_group, group_retired) = self.free_address_of_group(slot, inventory, address);
        freed.extend(from_group);
        retire.extend(group_retired);
        if let Some(nat) = inventory.live_nat(slot) {
            if let Some(address) = address.observed() {
                if !nat.allocation_ids.contains(&address.allocation_id) {
                    self.notes.push(format!(
                        "the NAT gateway {} of AZ slot {slot} uses {}, an address fixedip does not own; the slot's listed address {} carries no traffic until that gateway is replaced",
                        nat.id,
                        nat.allocation_ids.join(", "),
                        address.allocation_id
                    ));
                }
            }
            return Ok((Planned::kept(&nat.id), retire));
        }
        // A new NAT needs its address free; AWS would refuse it half way through a deploy.
        if let Some(address) = address.observed() {
            let on_instance = inventory
                .instance_holding(address.network_interface_id.as_deref())
                .is_some()
                || inventory.on_nat_interface(slot, address).is_some();
            if let (Some(association), false) = (address.in_use(), on_instance) {
                return Err(match inventory.nat_holding(&address.allocation_id) {
                    Some(nat) => PlanError::AddressHeldByDeletingNat {
                        slot,
                        allocation_id: address.allocation_id.clone(),
                        nat_gateway: nat.id.clone(),
                    },
                    None => PlanError::AddressInUse {
                        slot,
                        allocation_id: address.allocation_id.clone(),
                        association: association.to_owned(),
                    },
                });
            }
            freed.extend(self.free_stale_association(address));
        }
        let action = Action::CreateNatGateway {
            subnet: public_subnet.reference.clone(),
            address: address_ref,
            slot,
            generation: inventory
                .retired
                .nat_gateways
                .get(&slot)
                .copied()
                .unwrap_or(0),
        };
        let ordering: Vec<StepId> = ordering.into_iter().chain(freed).collect();
        Ok((Planned::created(self.push(action, &ordering)), retire))
    }
}

/// The plan's view of each slot the stack uses.
pub(super) fn az_views(
    azs: Vec<BuiltSlot>,
    private_route_tables: Vec<Status>,
    nat_slot_of: Vec<Option<Slot>>,
    layout: &NatLayout,
    removal: &super::nats::NatRemoval,
) -> Vec<AzView> {
    azs.into_iter()
        .zip(private_route_tables)
        .zip(nat_slot_of)
        .map(|((az, private_route_table), nat_slot)| {
            let has_nat = layout.has_nat(az.slot);
            let removed = |what: Option<&String>| {
                what.map_or(Status::Absent, |id| Status::Delete(id.clone()))
            };
            AzView {
                slot: az.slot,
                public_subnet: (
                    az.public_cidr,
                    match az.public_subnet {
                        Some(subnet) => subnet.status,
                        None => removed(removal.public_subnets.get(&az.slot)),
                    },
                ),
                private_subnet: (az.private_cidr, az.private_subnet.status),
                address: (az.public_ip, az.address_status),
                nat_gateway: match (az.nat_gateway, has_nat) {
                    (Some(nat), _) => nat.status,
                    (None, true) => Status::HeldBack,
                    (None, false) => removed(removal.nat_gateways.get(&az.slot)),
                },
                private_route_table,
                nat_slot,
                az: az.az,
            }
        })
        .collect()
}
