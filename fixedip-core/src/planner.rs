//! The planner: `(StackSpec, ObservedState) -> Plan`, synchronous, pure and deterministic. Every
//! choice is made here (CIDRs, AZs, which address serves which AZ, what to create, keep or change);
//! the executor only carries the steps out. The same inputs give the same plan, whatever order the
//! observed resources were listed in.
//!
//! ```
//! use fixedip_core::observed::ObservedState;
//! use fixedip_core::plan::{StackSpec, DEFAULT_VPC_CIDR};
//! use fixedip_core::requirements::{AzCount, StackName};
//! use fixedip_core::{cost, planner};
//!
//! let spec = StackSpec {
//!     stack: StackName::default(),
//!     region: "us-east-1".to_owned(),
//!     vpc_cidr: DEFAULT_VPC_CIDR,
//!     azs: AzCount::new(2)?,
//!     adopted_ips: Vec::new(),
//!     functions: Vec::new(),
//! };
//! let plan = planner::plan(&spec, &ObservedState::assumed_offline("us-east-1", &[]))?;
//! assert_eq!(plan.network.azs[1].az, "us-east-1b");
//! assert_eq!(plan.network.azs[1].public_subnet.0.to_string(), "10.0.144.0/20");
//! assert_eq!(cost::of_plan(&plan)?.fixed_total.to_string(), "$73.00");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The network of a stack
//! A VPC with DNS support and hostnames on, an internet gateway attached to it, and per AZ *slot*
//! (0, 1, ... up to `azs`): a public subnet holding a NAT gateway with one Elastic IP, and a private
//! subnet holding the functions. One public route table (0.0.0.0/0 → internet gateway) serves every
//! public subnet; each private subnet has its own route table (0.0.0.0/0 → the NAT of its own slot,
//! so that an AZ's traffic never depends on another AZ). A security group with no inbound rules, the
//! stack's execution role (only when some function brings none) with AWSLambdaBasicExecutionRole
//! and AWSLambdaVPCAccessExecutionRole, and every function attached to the private subnets only.
//!
//! # CIDR layout
//! The VPC is a /16 to a /24 ([`DEFAULT_VPC_CIDR`] is `10.0.0.0/16`), cut into 16 equal blocks four
//! bits longer (a /20 for a /16, a /28, the smallest subnet AWS allows, for a /24). Slot `i`'s
//! private subnet is block `i` and its public subnet is block `8 + i`:
//!
//! | slot | private (10.0.0.0/16) | public (10.0.0.0/16) |
//! |------|-----------------------|----------------------|
//! | 0    | 10.0.0.0/20           | 10.0.128.0/20        |
//! | 1    | 10.0.16.0/20          | 10.0.144.0/20        |
//! | 5    | 10.0.80.0/20          | 10.0.208.0/20        |
//!
//! A slot's blocks depend on its number only, so adding an AZ never renumbers or moves another, and
//! eight slots leave room for the six AZs `azs` allows. Subnets that exist keep their observed CIDR
//! and AZ whatever the layout says: they never move.
//!
//! # Which slots, which AZs
//! A slot exists when one of its subnets, a live NAT gateway of it or an active address of it is
//! observed. The stack uses the `azs` lowest existing slots, then the lowest free slot numbers.
//! A slot keeps the AZ of its subnets; a slot without one takes the first AZ, by name, that no slot
//! uses. Slots that exist beyond `azs` are left alone (removing an AZ is not supported yet), and a
//! note says so.
//!
//! # Which address serves a slot
//! In order: the address the slot's live NAT gateway already uses; an active address tagged with the
//! slot; an adopted address (`ips = [...]`, in order) that serves no slot yet; a retained address of
//! the stack, by allocation id; else a new one. An address that was shown to the user is reused
//! before any new one is allocated, so the allowlist stays valid. A new NAT gateway needs its address
//! free: one still held by a NAT being deleted, or associated with something else, is refused
//! before any change is made, rather than halfway through a deploy.
//!
//! # Steps
//! What exists as wanted gets no step. Steps come in an order where each follows the steps it
//! needs; `after` lists the steps producing the [`Ref`]s an action uses, plus these orderings:
//! NAT gateways and the public route after the internet gateway is attached (AWS refuses them
//! before); a function created or reconfigured with the stack's role after the role's policies are
//! attached (Lambda checks the role can create network interfaces); an existing function moved into
//! the private subnets only after the routes out of them are in place (its callers never see it
//! without egress); code uploaded after the same function's configuration update (Lambda refuses two
//! updates at once). A function that exists without the stack's tag gets it, so that the next run
//! finds it as the stack's.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::observed::{
    AddressUse, NatState, ObservedAddress, ObservedFunction, ObservedNatGateway, ObservedRoute,
    ObservedRouteTable, ObservedState, ObservedSubnet, RouteTarget, Slot, Tier,
};
use crate::plan::{
    Action, AzView, FunctionSpec, NetworkView, Plan, Ref, RouteVia, StackSpec, Status, Step,
    StepId, SurplusSlot, DEFAULT_VPC_CIDR, LAMBDA_RUNTIME,
};
use crate::record::Record;
use crate::requirements::{AllocationId, StackName};
use crate::settings::DeploySettings;
use crate::tags;

/// The shortest VPC prefix fixedip accepts: a /16 is the largest VPC AWS allows.
pub const MIN_VPC_PREFIX: u8 = 16;
/// The longest: a /24 cut in 16 gives /28 subnets, the smallest AWS allows.
pub const MAX_VPC_PREFIX: u8 = 24;
/// Slots with blocks in the layout: 0 to 7.
pub const LAYOUT_SLOTS: Slot = 8;
/// The destination of every route fixedip makes.
pub const ANYWHERE: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::UNSPECIFIED, 0);

/// The managed policies the stack's own execution role gets: logs, and the network interfaces a
/// function in a VPC needs.
pub const EXECUTION_ROLE_POLICIES: [&str; 2] = [
    "AWSLambdaBasicExecutionRole",
    "AWSLambdaVPCAccessExecutionRole",
];

/// Why a stack cannot be planned. Every one is found before any mutating call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "the VPC CIDR {cidr} is a /{}: fixedip needs a /{MIN_VPC_PREFIX} to a /{MAX_VPC_PREFIX}; set `vpc-cidr` in [package.metadata.fixedip] to one",
        cidr.prefix_len()
    )]
    VpcCidrSize { cidr: Ipv4Net },
    #[error(
        "the stack's VPC {vpc_id} is {observed}, but the settings ask for {wanted}: a VPC's CIDR cannot change; set `vpc-cidr = \"{observed}\"` in [package.metadata.fixedip], or destroy the stack first"
    )]
    VpcCidrChanged {
        vpc_id: String,
        observed: Ipv4Net,
        wanted: Ipv4Net,
    },
    #[error(
        "the stack wants {wanted} availability zones but {region} offers {} ({}): lower `azs` or choose another region",
        offered.len(),
        if offered.is_empty() { "none".to_owned() } else { offered.join(", ") }
    )]
    NotEnoughAzs {
        region: String,
        wanted: u8,
        offered: Vec<String>,
    },
    #[error(
        "the Elastic IP {id} named in `ips` was not found in region {region}: check the id and the region"
    )]
    AdoptedAddressNotFound { id: AllocationId, region: String },
    #[error(
        "the Elastic IP {id} named in `ips` is associated with {association}: disassociate it, or remove it from `ips`"
    )]
    AdoptedAddressInUse {
        id: AllocationId,
        association: String,
    },
    #[error(
        "the stack's internet gateway {id} is attached to {attached_vpc}, not to the stack's VPC {vpc}: detach it from {attached_vpc}"
    )]
    InternetGatewayElsewhere {
        id: String,
        attached_vpc: String,
        vpc: String,
    },
    #[error(
        "slot {slot} of the stack (from a `fixedip:slot` tag) lies outside the layout (slots 0 to {}) and misses a subnet: the tags were changed by hand; restore them, or delete that slot's resources",
        LAYOUT_SLOTS - 1
    )]
    SlotOutsideLayout { slot: Slot },
    #[error(
        "the new subnet {cidr} of slot {slot} would overlap the stack's subnet {subnet_id} ({subnet_cidr}): that subnet was changed by hand; delete it, or restore its CIDR"
    )]
    SubnetOverlap {
        slot: Slot,
        cidr: Ipv4Net,
        subnet_id: String,
        subnet_cidr: Ipv4Net,
    },
    #[error(
        "the Elastic IP {allocation_id} of slot {slot} is still held by NAT gateway {nat_gateway}, which is being deleted: run deploy again once it is deleted (AWS takes a few minutes)"
    )]
    AddressHeldByDeletingNat {
        slot: Slot,
        allocation_id: String,
        nat_gateway: String,
    },
    #[error(
        "the Elastic IP {allocation_id} of slot {slot} is associated with {association}, which fixedip did not make: disassociate it, then run deploy again"
    )]
    AddressInUse {
        slot: Slot,
        allocation_id: String,
        association: String,
    },
}

/// The AWS partition of a region, for ARNs: `aws`, `aws-cn` or `aws-us-gov`.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The ARNs of [`EXECUTION_ROLE_POLICIES`] in the region's partition.
pub fn execution_role_policy_arns(region: &str) -> [String; 2] {
    let partition = partition(region);
    EXECUTION_ROLE_POLICIES
        .map(|policy| format!("arn:{partition}:iam::aws:policy/service-role/{policy}"))
}

/// The subnets of one slot, by the layout in the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotCidrs {
    pub private: Ipv4Net,
    pub public: Ipv4Net,
}

/// The subnets of a slot by the layout; `None` for a slot number without blocks (8 and above) or
/// a VPC outside /16../24.
pub fn slot_cidrs(vpc: Ipv4Net, slot: Slot) -> Option<SlotCidrs> {
    if !(MIN_VPC_PREFIX..=MAX_VPC_PREFIX).contains(&vpc.prefix_len()) || slot >= LAYOUT_SLOTS {
        return None;
    }
    let prefix = vpc.prefix_len() + 4;
    let block_size = 1u32 << (32 - prefix);
    let base = u32::from(vpc.network());
    let block = |index: u32| {
        Ipv4Net::new(Ipv4Addr::from(base + index * block_size), prefix)
            .expect("a prefix of at most 28 is valid")
    };
    Some(SlotCidrs {
        private: block(u32::from(slot)),
        public: block(u32::from(LAYOUT_SLOTS + slot)),
    })
}

/// Plan the stack: what to create, keep and change so that the account holds `spec`'s network.
pub fn plan(spec: &StackSpec, observed: &ObservedState) -> Result<Plan, PlanError> {
    let vpc_cidr = spec.vpc_cidr.trunc();
    if !(MIN_VPC_PREFIX..=MAX_VPC_PREFIX).contains(&vpc_cidr.prefix_len()) {
        return Err(PlanError::VpcCidrSize {
            cidr: spec.vpc_cidr,
        });
    }
    let inventory = Inventory::new(observed);
    let slots = choose_slots(spec, &inventory)?;
    let addresses = choose_addresses(spec, &inventory, &slots.wanted)?;

    let mut planner = Planner {
        steps: Vec::new(),
        notes: Vec::new(),
    };
    let vpc = planner.vpc(vpc_cidr, observed)?;
    let internet_gateway = planner.internet_gateway(observed, &vpc)?;
    let security_group = planner.security_group(observed, &vpc);
    let role = planner.role(spec, observed);

    let mut azs = Vec::new();
    for (slot, az) in &slots.wanted {
        let built = planner.slot(
            *slot,
            az,
            vpc_cidr,
            &vpc,
            &inventory,
            &addresses[slot],
            internet_gateway.attached,
        )?;
        azs.push(built);
    }

    let public_subnets: Vec<&Ref> = azs.iter().map(|az| &az.public_subnet.reference).collect();
    let public_route_table = planner.route_table(
        &vpc.reference,
        inventory.public_route_table,
        (Tier::Public, None),
        RouteVia::InternetGateway(internet_gateway.planned.reference.clone()),
        internet_gateway.attached,
        &public_subnets,
    );
    // Egress works once both hops route: private subnet → NAT, public subnet → internet gateway.
    let mut routes_ready = public_route_table.steps.clone();
    let mut private_route_tables = Vec::new();
    for az in &azs {
        let routed = planner.route_table(
            &vpc.reference,
            inventory.private_route_tables.get(&az.slot).copied(),
            (Tier::Private, Some(az.slot)),
            RouteVia::NatGateway(az.nat_gateway.reference.clone()),
            None,
            &[&az.private_subnet.reference],
        );
        routes_ready.extend(routed.steps.iter().copied());
        private_route_tables.push(routed.status);
    }

    let attachment = Attachment {
        private_subnets: azs
            .iter()
            .map(|az| az.private_subnet.reference.clone())
            .collect(),
        surplus_private_subnets: inventory
            .subnets
            .iter()
            .filter(|s| s.tier == Tier::Private && slots.surplus.contains(&s.slot))
            .map(|s| s.id.clone())
            .collect(),
        security_group: security_group.reference.clone(),
        routes_ready,
    };
    let functions: Vec<(String, Status)> = spec
        .functions
        .iter()
        .map(|function| {
            let status = planner.function(spec, function, observed, &attachment, role.as_ref());
            (function.name.clone(), status)
        })
        .collect();

    let surplus_slots = surplus_view(&slots.surplus, &inventory);
    for surplus in &surplus_slots {
        let az = surplus
            .az
            .as_deref()
            .map(|az| format!(" ({az})"))
            .unwrap_or_default();
        planner.notes.push(format!(
            "AZ slot {}{az} exists beyond `azs = {}` and is left as it is (its NAT gateway and Elastic IP stay and are billed, and functions in it stay): removing an AZ is not supported yet",
            surplus.slot, spec.azs
        ));
    }
    let serving: BTreeSet<&str> = addresses
        .values()
        .filter_map(AddressChoice::observed)
        .map(|address| address.allocation_id.as_str())
        .chain(
            surplus_slots
                .iter()
                .filter_map(|s| s.address.as_ref().map(|a| a.0.as_str())),
        )
        .collect();
    let retained_addresses: Vec<(String, Ipv4Addr)> = inventory
        .addresses
        .iter()
        .filter(|address| !serving.contains(address.allocation_id.as_str()))
        .map(|address| (address.allocation_id.clone(), address.public_ip))
        .collect();
    for id in &spec.adopted_ips {
        if !serving.contains(id.as_str()) {
            planner.notes.push(format!(
                "the Elastic IP {id} named in `ips` serves no AZ: every AZ already has an address, and fixedip never swaps an address that may be on an allowlist"
            ));
        }
    }

    let Planner { steps, notes } = planner;
    let az_views = azs
        .into_iter()
        .zip(private_route_tables)
        .map(|(az, private_route_table)| AzView {
            slot: az.slot,
            az: az.az,
            public_subnet: (az.public_cidr, az.public_subnet.status),
            private_subnet: (az.private_cidr, az.private_subnet.status),
            address: (az.public_ip, az.address_status),
            nat_gateway: az.nat_gateway.status,
            private_route_table,
        })
        .collect();
    Ok(Plan {
        stack: spec.stack.clone(),
        region: spec.region.clone(),
        network: NetworkView {
            vpc: (vpc_cidr, vpc.status),
            internet_gateway: internet_gateway.planned.status,
            public_route_table: public_route_table.status,
            security_group: security_group.status,
            role: role.map(|role| role.planned.status),
            azs: az_views,
            functions,
            retained_addresses,
            surplus_slots,
        },
        steps,
        notes,
    })
}

/// The observed resources, sorted and indexed, so that the plan does not depend on the order AWS
/// listed them in.
struct Inventory<'a> {
    region_azs: Vec<&'a str>,
    subnets: Vec<&'a ObservedSubnet>,
    /// `pending` or `available` NAT gateways, available first, then by id.
    live_nats: Vec<&'a ObservedNatGateway>,
    /// NAT gateways on their way out (`deleting`), by id.
    deleting_nats: Vec<&'a ObservedNatGateway>,
    addresses: Vec<&'a ObservedAddress>,
    public_route_table: Option<&'a ObservedRouteTable>,
    private_route_tables: BTreeMap<Slot, &'a ObservedRouteTable>,
}

impl<'a> Inventory<'a> {
    fn new(observed: &'a ObservedState) -> Inventory<'a> {
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
        let mut addresses: Vec<&ObservedAddress> = observed.addresses.iter().collect();
        addresses.sort_by(|a, b| a.allocation_id.cmp(&b.allocation_id));
        addresses.dedup_by(|a, b| a.allocation_id == b.allocation_id);
        let mut route_tables: Vec<&ObservedRouteTable> = observed.route_tables.iter().collect();
        route_tables.sort_by(|a, b| a.id.cmp(&b.id));
        let public_route_table = route_tables
            .iter()
            .copied()
            .find(|table| table.tier == Tier::Public);
        let mut private_route_tables = BTreeMap::new();
        for table in route_tables
            .iter()
            .filter(|table| table.tier == Tier::Private)
        {
            if let Some(slot) = table.slot {
                private_route_tables.entry(slot).or_insert(*table);
            }
        }
        Inventory {
            region_azs,
            subnets,
            live_nats,
            deleting_nats,
            addresses,
            public_route_table,
            private_route_tables,
        }
    }

    fn subnet(&self, slot: Slot, tier: Tier) -> Option<&'a ObservedSubnet> {
        self.subnets
            .iter()
            .copied()
            .find(|s| s.slot == slot && s.tier == tier)
    }

    fn live_nat(&self, slot: Slot) -> Option<&'a ObservedNatGateway> {
        self.live_nats.iter().copied().find(|nat| nat.slot == slot)
    }

    /// A NAT gateway being deleted that still holds an address.
    fn nat_holding(&self, allocation_id: &str) -> Option<&'a ObservedNatGateway> {
        let holds =
            |nat: &&ObservedNatGateway| nat.allocation_ids.iter().any(|id| id == allocation_id);
        self.deleting_nats.iter().copied().find(holds)
    }

    fn address(&self, allocation_id: &str) -> Option<&'a ObservedAddress> {
        self.addresses
            .iter()
            .copied()
            .find(|a| a.allocation_id == allocation_id)
    }

    /// The active address tagged with a slot (the lowest allocation id if several claim it).
    fn active_address(&self, slot: Slot) -> Option<&'a ObservedAddress> {
        self.addresses
            .iter()
            .copied()
            .find(|a| a.usage == AddressUse::Active && a.slot == Some(slot))
    }

    fn existing_slots(&self) -> BTreeSet<Slot> {
        let active = self
            .addresses
            .iter()
            .filter(|a| a.usage == AddressUse::Active);
        self.subnets
            .iter()
            .map(|s| s.slot)
            .chain(self.live_nats.iter().map(|nat| nat.slot))
            .chain(active.filter_map(|a| a.slot))
            .collect()
    }
}

struct SlotChoice {
    /// The slots the stack uses, by number, with their AZ.
    wanted: Vec<(Slot, String)>,
    surplus: Vec<Slot>,
}

fn choose_slots(spec: &StackSpec, inventory: &Inventory) -> Result<SlotChoice, PlanError> {
    let azs = usize::from(spec.azs.get());
    let existing = inventory.existing_slots();
    let mut wanted: Vec<Slot> = existing.iter().copied().take(azs).collect();
    let surplus: Vec<Slot> = existing.iter().copied().skip(azs).collect();
    let mut free = (0..=Slot::MAX).filter(|slot| !existing.contains(slot));
    while wanted.len() < azs {
        wanted.push(free.next().expect("at most 6 slots are wanted"));
    }
    wanted.sort();

    let mut az_of: BTreeMap<Slot, &str> = BTreeMap::new();
    for subnet in &inventory.subnets {
        az_of.entry(subnet.slot).or_insert(&subnet.az);
    }
    let mut chosen = Vec::new();
    for slot in wanted {
        let az = match az_of.get(&slot) {
            Some(az) => *az,
            None => {
                let used: BTreeSet<&str> = az_of.values().copied().collect();
                let az = inventory
                    .region_azs
                    .iter()
                    .copied()
                    .find(|az| !used.contains(az));
                let az = az.ok_or_else(|| PlanError::NotEnoughAzs {
                    region: spec.region.clone(),
                    wanted: spec.azs.get(),
                    offered: inventory
                        .region_azs
                        .iter()
                        .map(|az| az.to_string())
                        .collect(),
                })?;
                az_of.insert(slot, az);
                az
            }
        };
        chosen.push((slot, az.to_owned()));
    }
    Ok(SlotChoice {
        wanted: chosen,
        surplus,
    })
}

/// How a slot gets its Elastic IP.
enum AddressChoice<'a> {
    /// Active and tagged with the slot already.
    Keep(&'a ObservedAddress),
    /// Retained, adopted, or used by the slot's NAT without the tag: re-tag it active.
    Activate(&'a ObservedAddress),
    Allocate,
}

impl<'a> AddressChoice<'a> {
    fn observed(&self) -> Option<&'a ObservedAddress> {
        match self {
            AddressChoice::Keep(address) | AddressChoice::Activate(address) => Some(address),
            AddressChoice::Allocate => None,
        }
    }
}

fn choose_addresses<'a>(
    spec: &StackSpec,
    inventory: &Inventory<'a>,
    wanted: &[(Slot, String)],
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
    // An address serving a slot, even one beyond `azs`, is never taken from it.
    let serving: BTreeSet<&str> = inventory
        .addresses
        .iter()
        .filter(|a| a.usage == AddressUse::Active && a.slot.is_some())
        .map(|a| a.allocation_id.as_str())
        .collect();
    let is_adopted = |a: &ObservedAddress| {
        spec.adopted_ips
            .iter()
            .any(|id| id.as_str() == a.allocation_id)
    };
    let retained: Vec<&ObservedAddress> = inventory
        .addresses
        .iter()
        .copied()
        .filter(|a| !serving.contains(a.allocation_id.as_str()) && !is_adopted(a))
        .collect();

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
            if let Some(association) = &address.association_id {
                return Err(PlanError::AdoptedAddressInUse {
                    id: (*id).clone(),
                    association: association.clone(),
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

fn surplus_view(surplus: &[Slot], inventory: &Inventory) -> Vec<SurplusSlot> {
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

/// A resource of the desired network: how steps refer to it, and whether it exists.
struct Planned {
    reference: Ref,
    status: Status,
}

impl Planned {
    fn kept(id: &str) -> Planned {
        Planned {
            reference: Ref::Existing(id.to_owned()),
            status: Status::Keep(id.to_owned()),
        }
    }

    fn changed(id: &str) -> Planned {
        Planned {
            reference: Ref::Existing(id.to_owned()),
            status: Status::Change(id.to_owned()),
        }
    }

    fn created(step: StepId) -> Planned {
        Planned {
            reference: Ref::Step(step),
            status: Status::Create,
        }
    }
}

struct InternetGateway {
    planned: Planned,
    /// The step that attaches it, when one does.
    attached: Option<StepId>,
}

struct Role {
    planned: Planned,
    /// The steps attaching its policies.
    ready: Vec<StepId>,
}

struct BuiltSlot {
    slot: Slot,
    az: String,
    public_cidr: Ipv4Net,
    private_cidr: Ipv4Net,
    public_subnet: Planned,
    private_subnet: Planned,
    public_ip: Option<Ipv4Addr>,
    address_status: Status,
    nat_gateway: Planned,
}

struct RoutedTable {
    status: Status,
    /// The steps that make the table route its subnets: creation, route, associations.
    steps: Vec<StepId>,
}

/// Where functions attach.
struct Attachment {
    private_subnets: Vec<Ref>,
    /// Private subnets of slots beyond `azs`: a function already in one stays there (the slot's
    /// NAT and address stay too), a function not in one is not put there.
    surplus_private_subnets: Vec<String>,
    security_group: Ref,
    /// The steps after which every subnet routes out.
    routes_ready: Vec<StepId>,
}

struct Planner {
    steps: Vec<Step>,
    notes: Vec<String>,
}

impl Planner {
    /// Adds a step after the steps behind its refs and `ordering`.
    fn push(&mut self, action: Action, ordering: &[StepId]) -> StepId {
        let id = StepId(self.steps.len());
        let mut after: Vec<StepId> = action
            .refs()
            .into_iter()
            .filter_map(|reference| match reference {
                Ref::Step(step) => Some(*step),
                Ref::Existing(_) => None,
            })
            .chain(ordering.iter().copied())
            .collect();
        after.sort();
        after.dedup();
        self.steps.push(Step { id, action, after });
        id
    }

    fn vpc(&mut self, cidr: Ipv4Net, observed: &ObservedState) -> Result<Planned, PlanError> {
        let Some(vpc) = &observed.vpc else {
            let created = self.push(Action::CreateVpc { cidr }, &[]);
            self.push(
                Action::EnableVpcDns {
                    vpc: Ref::Step(created),
                },
                &[],
            );
            return Ok(Planned::created(created));
        };
        if vpc.cidr.trunc() != cidr {
            return Err(PlanError::VpcCidrChanged {
                vpc_id: vpc.id.clone(),
                observed: vpc.cidr,
                wanted: cidr,
            });
        }
        if vpc.dns_support && vpc.dns_hostnames {
            Ok(Planned::kept(&vpc.id))
        } else {
            self.push(
                Action::EnableVpcDns {
                    vpc: Ref::Existing(vpc.id.clone()),
                },
                &[],
            );
            Ok(Planned::changed(&vpc.id))
        }
    }

    fn internet_gateway(
        &mut self,
        observed: &ObservedState,
        vpc: &Planned,
    ) -> Result<InternetGateway, PlanError> {
        let (gateway, attached_vpc) = match &observed.internet_gateway {
            Some(gateway) => (Planned::kept(&gateway.id), gateway.attached_vpc.as_deref()),
            None => (
                Planned::created(self.push(Action::CreateInternetGateway, &[])),
                None,
            ),
        };
        match (attached_vpc, &vpc.reference) {
            (Some(attached), Ref::Existing(vpc_id)) if attached == vpc_id => Ok(InternetGateway {
                planned: gateway,
                attached: None,
            }),
            (Some(attached), _) => Err(PlanError::InternetGatewayElsewhere {
                id: observed
                    .internet_gateway
                    .as_ref()
                    .map(|g| g.id.clone())
                    .unwrap_or_default(),
                attached_vpc: attached.to_owned(),
                vpc: vpc.reference.to_string(),
            }),
            (None, _) => {
                let attach = self.push(
                    Action::AttachInternetGateway {
                        internet_gateway: gateway.reference.clone(),
                        vpc: vpc.reference.clone(),
                    },
                    &[],
                );
                let planned = match gateway.status {
                    Status::Keep(id) => Planned::changed(&id),
                    _ => gateway,
                };
                Ok(InternetGateway {
                    planned,
                    attached: Some(attach),
                })
            }
        }
    }

    fn security_group(&mut self, observed: &ObservedState, vpc: &Planned) -> Planned {
        match &observed.security_group {
            Some(group) => Planned::kept(&group.id),
            None => Planned::created(self.push(
                Action::CreateSecurityGroup {
                    vpc: vpc.reference.clone(),
                },
                &[],
            )),
        }
    }

    /// The stack's execution role, when some function brings none.
    fn role(&mut self, spec: &StackSpec, observed: &ObservedState) -> Option<Role> {
        if spec
            .functions
            .iter()
            .all(|function| function.role.is_some())
        {
            return None;
        }
        let (mut planned, attached) = match &observed.role {
            Some(role) => (
                Planned::kept(&role.arn),
                role.attached_policy_arns.as_slice(),
            ),
            None => {
                let name = tags::role_name(&spec.stack);
                (
                    Planned::created(self.push(Action::CreateRole { name }, &[])),
                    &[][..],
                )
            }
        };
        let mut ready = Vec::new();
        for policy_arn in execution_role_policy_arns(&spec.region) {
            if !attached.contains(&policy_arn) {
                let action = Action::AttachRolePolicy {
                    role: planned.reference.clone(),
                    policy_arn,
                };
                ready.push(self.push(action, &[]));
            }
        }
        if let (Status::Keep(arn), false) = (&planned.status, ready.is_empty()) {
            planned = Planned::changed(&arn.clone());
        }
        Some(Role { planned, ready })
    }

    #[allow(clippy::too_many_arguments)]
    fn slot(
        &mut self,
        slot: Slot,
        az: &str,
        vpc_cidr: Ipv4Net,
        vpc: &Planned,
        inventory: &Inventory,
        address: &AddressChoice,
        internet_gateway_attached: Option<StepId>,
    ) -> Result<BuiltSlot, PlanError> {
        let layout = slot_cidrs(vpc_cidr, slot);
        let mut subnet = |tier: Tier| -> Result<(Ipv4Net, Planned), PlanError> {
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
                vpc: vpc.reference.clone(),
                tier,
                slot,
                az: az.to_owned(),
                cidr,
            };
            Ok((cidr, Planned::created(self.push(action, &[]))))
        };
        let (public_cidr, public_subnet) = subnet(Tier::Public)?;
        let (private_cidr, private_subnet) = subnet(Tier::Private)?;

        let (address_ref, public_ip, address_status) = match address {
            AddressChoice::Keep(a) => (
                Ref::Existing(a.allocation_id.clone()),
                known_ip(a),
                Status::Keep(a.allocation_id.clone()),
            ),
            AddressChoice::Activate(a) => {
                let action = Action::ActivateAddress {
                    allocation_id: a.allocation_id.clone(),
                    slot,
                };
                (
                    Ref::Step(self.push(action, &[])),
                    known_ip(a),
                    Status::Change(a.allocation_id.clone()),
                )
            }
            AddressChoice::Allocate => (
                Ref::Step(self.push(Action::AllocateAddress { slot }, &[])),
                None,
                Status::Create,
            ),
        };

        let nat_gateway = match inventory.live_nat(slot) {
            Some(nat) => {
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
                Planned::kept(&nat.id)
            }
            None => {
                // A new NAT needs its address free; AWS would refuse it half way through a deploy.
                if let Some(address) = address.observed() {
                    if let Some(association) = &address.association_id {
                        let holder = inventory.nat_holding(&address.allocation_id);
                        return Err(match holder {
                            Some(nat) => PlanError::AddressHeldByDeletingNat {
                                slot,
                                allocation_id: address.allocation_id.clone(),
                                nat_gateway: nat.id.clone(),
                            },
                            None => PlanError::AddressInUse {
                                slot,
                                allocation_id: address.allocation_id.clone(),
                                association: association.clone(),
                            },
                        });
                    }
                }
                let action = Action::CreateNatGateway {
                    subnet: public_subnet.reference.clone(),
                    address: address_ref,
                    slot,
                };
                let ordering: Vec<StepId> = internet_gateway_attached.into_iter().collect();
                Planned::created(self.push(action, &ordering))
            }
        };
        Ok(BuiltSlot {
            slot,
            az: az.to_owned(),
            public_cidr,
            private_cidr,
            public_subnet,
            private_subnet,
            public_ip,
            address_status,
            nat_gateway,
        })
    }

    /// A route table with its 0.0.0.0/0 route and its subnet associations.
    fn route_table(
        &mut self,
        vpc: &Ref,
        observed: Option<&ObservedRouteTable>,
        (tier, slot): (Tier, Option<Slot>),
        via: RouteVia,
        route_ordering: Option<StepId>,
        subnets: &[&Ref],
    ) -> RoutedTable {
        let first = self.steps.len();
        let table = match observed {
            Some(table) => Ref::Existing(table.id.clone()),
            None => Ref::Step(self.push(
                Action::CreateRouteTable {
                    vpc: vpc.clone(),
                    tier,
                    slot,
                },
                &[],
            )),
        };
        let route_ordering: Vec<StepId> = route_ordering.into_iter().collect();
        let default_route =
            observed.and_then(|t| t.routes.iter().find(|r| r.destination == ANYWHERE));
        match default_route {
            None => {
                let action = Action::CreateRoute {
                    route_table: table.clone(),
                    destination: ANYWHERE,
                    via,
                };
                self.push(action, &route_ordering);
            }
            Some(route) if routes_via(route, &via) => {}
            Some(_) => {
                let action = Action::ReplaceRoute {
                    route_table: table.clone(),
                    destination: ANYWHERE,
                    via,
                };
                self.push(action, &route_ordering);
            }
        }
        for subnet in subnets {
            let associated = match (observed, subnet) {
                (Some(table), Ref::Existing(id)) => table.associated_subnets.contains(id),
                _ => false,
            };
            if !associated {
                let action = Action::AssociateRouteTable {
                    route_table: table.clone(),
                    subnet: (*subnet).clone(),
                };
                self.push(action, &[]);
            }
        }
        let steps: Vec<StepId> = (first..self.steps.len()).map(StepId).collect();
        let status = match observed {
            None => Status::Create,
            Some(table) if steps.is_empty() => Status::Keep(table.id.clone()),
            Some(table) => Status::Change(table.id.clone()),
        };
        RoutedTable { status, steps }
    }

    fn function(
        &mut self,
        spec: &StackSpec,
        function: &FunctionSpec,
        observed: &ObservedState,
        attachment: &Attachment,
        stack_role: Option<&Role>,
    ) -> Status {
        let (role, role_ready) = match (&function.role, stack_role) {
            (Some(arn), _) => (Ref::Existing(arn.clone()), Vec::new()),
            (None, Some(role)) => (role.planned.reference.clone(), role.ready.clone()),
            (None, None) => unreachable!("the stack's role is planned when a function has none"),
        };
        let Some(deployed) = observed.functions.iter().find(|f| f.name == function.name) else {
            // A new function has no callers yet: it is created while the NAT gateways come up.
            let action = Action::CreateFunction {
                function: function.clone(),
                subnets: attachment.private_subnets.clone(),
                security_group: attachment.security_group.clone(),
                role,
            };
            self.push(action, &role_ready);
            return Status::Create;
        };
        let mut tagged = None;
        if deployed.stack_tag.as_deref() != Some(spec.stack.as_str()) {
            let from = match &deployed.stack_tag {
                Some(other) => format!("from stack `{other}`"),
                None => "from outside fixedip".to_owned(),
            };
            self.notes.push(format!(
                "the function {} exists already and moves into stack `{}` {from}",
                function.name, spec.stack
            ));
            let action = Action::TagFunction {
                function: function.clone(),
            };
            tagged = Some(self.push(action, &[]));
        }

        let mut subnets = attachment.private_subnets.clone();
        for surplus in &attachment.surplus_private_subnets {
            if deployed.subnet_ids.contains(surplus) {
                subnets.push(Ref::Existing(surplus.clone()));
            }
        }
        let mut config_update = None;
        if configuration_differs(
            function,
            deployed,
            &subnets,
            &attachment.security_group,
            &role,
        ) {
            let action = Action::UpdateFunctionConfiguration {
                function: function.clone(),
                subnets,
                security_group: attachment.security_group.clone(),
                role,
            };
            let ordering: Vec<StepId> = role_ready
                .iter()
                .chain(&attachment.routes_ready)
                .copied()
                .collect();
            config_update = Some(self.push(action, &ordering));
        }
        let architecture_differs =
            deployed.architecture.unwrap_or_default() != function.architecture;
        let code_differs = function
            .code_sha256
            .as_ref()
            .is_some_and(|sha| *sha != deployed.code_sha256);
        let mut code_update = None;
        if architecture_differs || code_differs {
            let action = Action::UpdateFunctionCode {
                function: function.clone(),
            };
            let ordering: Vec<StepId> = config_update.into_iter().collect();
            code_update = Some(self.push(action, &ordering));
        }
        if tagged.is_none() && config_update.is_none() && code_update.is_none() {
            Status::Keep(deployed.arn.clone())
        } else {
            Status::Change(deployed.arn.clone())
        }
    }
}

/// The address's IP, unless it is not known (planning offline).
fn known_ip(address: &ObservedAddress) -> Option<Ipv4Addr> {
    Some(address.public_ip).filter(|ip| !ip.is_unspecified())
}

/// Whether a 0.0.0.0/0 route already goes where it should.
fn routes_via(route: &ObservedRoute, via: &RouteVia) -> bool {
    !route.blackhole
        && match (via, &route.target) {
            (
                RouteVia::InternetGateway(Ref::Existing(want)),
                RouteTarget::InternetGateway(have),
            )
            | (RouteVia::NatGateway(Ref::Existing(want)), RouteTarget::NatGateway(have)) => {
                want == have
            }
            _ => false,
        }
}

fn configuration_differs(
    function: &FunctionSpec,
    deployed: &ObservedFunction,
    subnets: &[Ref],
    security_group: &Ref,
    role: &Ref,
) -> bool {
    let same_set = |wanted: &[Ref], have: &[String]| {
        let wanted: Option<BTreeSet<&str>> = wanted
            .iter()
            .map(|r| match r {
                Ref::Existing(id) => Some(id.as_str()),
                Ref::Step(_) => None,
            })
            .collect();
        wanted.is_some_and(|wanted| wanted == have.iter().map(String::as_str).collect())
    };
    !same_set(subnets, &deployed.subnet_ids)
        || !same_set(
            std::slice::from_ref(security_group),
            &deployed.security_group_ids,
        )
        || !matches!(role, Ref::Existing(arn) if *arn == deployed.role_arn)
        || deployed.runtime.as_deref() != Some(LAMBDA_RUNTIME)
        || deployed.memory_mb != function.memory_mb
        || deployed.timeout_s != function.timeout_s
        || deployed.environment != function.environment
}

/// One annotated function as the CLI found it: its record, its settings, and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredFunction {
    pub record: Record,
    pub settings: DeploySettings,
    /// The region it deploys to, resolved (settings, `--region`, the AWS configuration).
    pub region: String,
    /// Base64 SHA-256 of its zip; `None` when planning without building a zip.
    pub code_sha256: Option<String>,
}

/// Where a function comes from, for messages: "`hello_egress::main` in package hello-egress
/// (src/main.rs:12)".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub package: String,
    pub function: String,
    pub source: String,
}

impl Origin {
    fn of(record: &Record) -> Origin {
        Origin {
            package: record.package.clone(),
            function: record.function.clone(),
            source: record.source.clone(),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` in package {} ({})",
            self.function, self.package, self.source
        )
    }
}

/// Functions that name one stack but cannot share it.
///
/// Large for an error (two origins), and made at most once per run: not worth boxing, hence the
/// `clippy::result_large_err` allowances below.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConflictError {
    #[error(
        "functions of stack `{stack}` in {region} disagree on `{setting}`: {first} has {first_value}, {second} has {second_value}; give every function of a stack the same `{setting}`, or name different stacks"
    )]
    Disagree {
        stack: StackName,
        region: String,
        setting: &'static str,
        first: Origin,
        first_value: String,
        second: Origin,
        second_value: String,
    },
    #[error(
        "two functions of stack `{stack}` in {region} are both named `{name}`: {first} and {second}; set a different `function-name` in [package.metadata.fixedip] for one of them"
    )]
    DuplicateName {
        stack: StackName,
        region: String,
        name: String,
        first: Origin,
        second: Origin,
    },
    #[error(
        "two functions in {region} are both named `{name}`, one in stack `{first_stack}` ({first}), one in stack `{second_stack}` ({second}): a Lambda name is unique in a region, so they would be one function moving between stacks; set a different `function-name` in [package.metadata.fixedip] for one of them"
    )]
    NameInTwoStacks {
        region: String,
        name: String,
        first_stack: StackName,
        first: Origin,
        second_stack: StackName,
        second: Origin,
    },
}

/// Group functions into stacks by (region, stack), sorted by region then stack; functions within a
/// stack are sorted by name. Functions of one stack share its network, so they must agree on `azs`,
/// `ips` and `vpc-cidr`; and a Lambda name is unique in a region, so no two functions share one.
#[allow(clippy::result_large_err)] // See `ConflictError`.
pub fn stack_specs(functions: Vec<DeclaredFunction>) -> Result<Vec<StackSpec>, ConflictError> {
    let mut named: BTreeMap<(&str, &str), &DeclaredFunction> = BTreeMap::new();
    for function in &functions {
        let key = (
            function.region.as_str(),
            function.settings.function_name.as_str(),
        );
        let Some(earlier) = named.insert(key, function) else {
            continue;
        };
        let (first_stack, second_stack) = (
            &earlier.record.requirements.stack,
            &function.record.requirements.stack,
        );
        if first_stack != second_stack {
            return Err(ConflictError::NameInTwoStacks {
                region: function.region.clone(),
                name: function.settings.function_name.clone(),
                first_stack: first_stack.clone(),
                first: Origin::of(&earlier.record),
                second_stack: second_stack.clone(),
                second: Origin::of(&function.record),
            });
        }
    }

    let mut groups: BTreeMap<(String, StackName), Vec<DeclaredFunction>> = BTreeMap::new();
    for function in functions {
        let key = (
            function.region.clone(),
            function.record.requirements.stack.clone(),
        );
        groups.entry(key).or_default().push(function);
    }
    groups
        .into_iter()
        .map(|((region, stack), members)| stack_spec(region, stack, members))
        .collect()
}

#[allow(clippy::result_large_err)]
fn stack_spec(
    region: String,
    stack: StackName,
    members: Vec<DeclaredFunction>,
) -> Result<StackSpec, ConflictError> {
    let first = &members[0];
    let shared = |f: &DeclaredFunction| {
        let requirements = &f.record.requirements;
        let ips: Vec<&str> = requirements.ips.iter().map(AllocationId::as_str).collect();
        let ips = if ips.is_empty() {
            "none".to_owned()
        } else {
            format!("[{}]", ips.join(", "))
        };
        let vpc_cidr = match f.settings.vpc_cidr {
            Some(cidr) => cidr.to_string(),
            None => format!("{DEFAULT_VPC_CIDR} (the default)"),
        };
        [
            (
                "azs",
                requirements.azs.to_string(),
                requirements.azs.get().to_string(),
            ),
            ("ips", ips.clone(), ips),
            (
                "vpc-cidr",
                vpc_cidr,
                f.settings.vpc_cidr.unwrap_or(DEFAULT_VPC_CIDR).to_string(),
            ),
        ]
    };
    let first_values = shared(first);
    for other in &members[1..] {
        for ((setting, first_shown, first_key), (_, other_shown, other_key)) in
            first_values.iter().zip(shared(other))
        {
            if *first_key != other_key {
                return Err(ConflictError::Disagree {
                    stack,
                    region,
                    setting,
                    first: Origin::of(&first.record),
                    first_value: first_shown.clone(),
                    second: Origin::of(&other.record),
                    second_value: other_shown,
                });
            }
        }
    }

    let mut by_name: BTreeMap<&str, &DeclaredFunction> = BTreeMap::new();
    for member in &members {
        if let Some(earlier) = by_name.insert(&member.settings.function_name, member) {
            return Err(ConflictError::DuplicateName {
                stack,
                region,
                name: member.settings.function_name.clone(),
                first: Origin::of(&earlier.record),
                second: Origin::of(&member.record),
            });
        }
    }
    let requirements = &first.record.requirements;
    Ok(StackSpec {
        stack: stack.clone(),
        vpc_cidr: first.settings.vpc_cidr.unwrap_or(DEFAULT_VPC_CIDR),
        azs: requirements.azs,
        adopted_ips: requirements.ips.clone(),
        functions: by_name.into_values().map(function_spec).collect(),
        region,
    })
}

fn function_spec(declared: &DeclaredFunction) -> FunctionSpec {
    let settings = &declared.settings;
    FunctionSpec {
        name: settings.function_name.clone(),
        package: declared.record.package.clone(),
        annotated: declared.record.function.clone(),
        architecture: settings.architecture,
        memory_mb: settings.memory_mb,
        timeout_s: settings.timeout_s,
        environment: settings.environment.clone(),
        tags: settings.tags.clone(),
        role: settings.role.clone(),
        code_sha256: declared.code_sha256.clone(),
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
pub(crate) mod simulate;
#[cfg(test)]
mod tests;
