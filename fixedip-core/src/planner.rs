//! The planner: `(StackSpec, ObservedState, PlanOptions) -> Plan`, synchronous, pure and
//! deterministic. Every choice is made here (CIDRs, AZs, which address serves which AZ, what to
//! create, keep, change or remove); the executor only carries the steps out. The same inputs give
//! the same plan, whatever order the observed resources were listed in.
//!
//! ```
//! use fixedip_core::observed::ObservedState;
//! use fixedip_core::plan::{NetworkModes, StackSpec, DEFAULT_VPC_CIDR};
//! use fixedip_core::requirements::{AzCount, StackName};
//! use fixedip_core::{cost, planner};
//!
//! let spec = StackSpec {
//!     stack: StackName::default(),
//!     region: "us-east-1".to_owned(),
//!     vpc_cidr: DEFAULT_VPC_CIDR,
//!     azs: AzCount::new(2)?,
//!     adopted_ips: Vec::new(),
//!     modes: NetworkModes::default(),
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
//! That is the default mode. With `nats = N` only the first `N` slots hold a NAT (and a public
//! subnet), and the others route through them; with `nat = "none"` there is no internet gateway,
//! NAT, address or public subnet at all. See `planner/nat_layout.rs`.
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
//! A slot exists when one of its subnets, a live NAT gateway of it or an active or pending address
//! of it is observed. The stack uses the `azs` lowest existing slots, then the lowest free slot
//! numbers. A slot keeps the AZ of its subnets; a slot without one takes the first AZ, by name,
//! that no slot uses.
//!
//! Slots that exist beyond `azs` are removed (going from 3 AZs to 2 keeps slots 0 and 1 untouched):
//! the functions leave the slot's private subnet first (their configuration update puts them in
//! the remaining private subnets, once those route out), then its NAT gateway is deleted and
//! waited for until `deleted`, its address is re-tagged `retained` (never released), Lambda's
//! lingering network interfaces are waited out, and its subnets and private route table are
//! deleted. A slot stays, with a note, while a function the plan does not deploy runs in it (the
//! plan has no configuration to move it with), or while no slot within `azs` routes out yet.
//!
//! # Which address serves a slot
//! In order: the address the slot's live NAT gateway already uses; an active (or pending) address
//! tagged with the slot; an adopted address (`ips = [...]`, in order) that serves no slot yet; a
//! retained address of the stack, by allocation id; else a new one. An address that was shown to
//! the user is reused before any new one is allocated, so the allowlist stays valid: 3 → 2 → 3 AZs
//! puts the third IP back to work. A new NAT gateway needs its address free: one still held by a
//! NAT being deleted, or associated with something else, is refused before any change is made,
//! rather than halfway through a deploy. So is a plan whose new addresses would not fit in the
//! account's Elastic IP quota ([`ObservedState::address_quota`]).
//!
//! # New IPs wait for the user
//! Guarantee 1: a new IP is shown before any traffic leaves through it. Once some IP of the stack
//! may be on an allowlist (an address of the stack is retained, pending or adopted, or a NAT
//! gateway of it exists in any state), a slot that needs a new address gets it allocated and
//! tagged `fixedip:address=pending` (`AllocateAddress { held_back: true }`), and nothing more: no
//! NAT gateway, no private route, no function in its subnet. [`Plan::pending_new_ips`] lists
//! these for the CLI to print ("new IP 3.4.5.6 allocated for us-east-1c (slot 2); add it to the
//! partner's allowlist, then run `cargo fixedip deploy --allow-new-ips`"). Every later deploy
//! without [`PlanOptions::allow_new_ips`] lists it again and changes nothing; with it, the
//! address is tagged `active` and put to work like any other. Why a tag rather than a flag on
//! every deploy: the state lives in the account, so a second machine, or CI, sees the same
//! pending IP, and a pending IP is never mistaken for a retained one (which was shown and may be
//! reused at once). A fresh stack (nothing shown yet) routes its new IPs at once: there is no
//! allowlist to break. A fresh deploy killed after its first NAT and before its second address
//! is the one case where the rule asks for `--allow-new-ips` without need; it errs on the safe
//! side.
//!
//! # An existing network
//! With `vpc = "vpc-..."` in `[package.metadata.fixedip]` ([`NetworkModes::existing`]) the stack
//! builds no network: the plan has no network step, only the stack's security group (created in
//! that VPC, tagged as the stack's), the role and the functions, attached to the subnets whose
//! every internet route leaves through a NAT with an Elastic IP ([`crate::existing`], by the rules
//! of [`crate::verify`]), or to the named `subnets`, each of which must qualify. The user's VPC,
//! subnets, route tables, gateways and addresses are read ([`ObservedState::existing_network`]),
//! never changed. Refused before any step: a VPC that is not found, no qualifying subnet (with
//! each subnet's reasons), a named subnet that does not qualify, a stack that has a network of
//! its own already, and the modes that describe a network fixedip builds. Destroy finds the
//! security group by its tags like any other and never names anything of the user's network.
//!
//! # Destroy
//! [`plan_destroy`] takes the stack apart in the order AWS accepts and keeps the Elastic IPs,
//! retained, unless `release_ips`; adopted addresses are never released. See its docs and
//! `teardown.rs`. Every id a removal names comes from the observation, so planning again after a
//! run killed part way plans exactly what is left.
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
//! finds it as the stack's. Removal: NAT gateways, Lambda interface waits and route table
//! deletions after the functions left; addresses kept or released, public subnets, and the
//! internet gateway after the NAT gateways are `deleted`; subnets and the security group after
//! their Lambda interfaces are gone; route tables after their subnets; the VPC after everything
//! in it; the role after the functions that used it are deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::observed::{
    AddressUse, NatState, ObservedAddress, ObservedFunction, ObservedNatGateway,
    ObservedNatInstance, ObservedRoute, ObservedRouteTable, ObservedState, ObservedSubnet,
    RouteTarget, Slot, Tier,
};
use crate::plan::{
    Action, AzView, ExistingNetwork, FunctionSpec, NetworkModes, NetworkView, PendingIp, Plan, Ref,
    RouteVia, StackSpec, Status, Step, StepId, SurplusSlot, DEFAULT_NAT_INSTANCE_TYPE,
    DEFAULT_VPC_CIDR, LAMBDA_RUNTIME,
};
use crate::record::Record;
use crate::requirements::{AllocationId, NatMode, StackName};
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
        "{mode} in #[fixed_egress] describes {what}, but `vpc = \"{vpc}\"` in [package.metadata.fixedip] attaches to a network you run, which fixedip never changes: remove one of the two"
    )]
    ModeWithExistingNetwork {
        mode: String,
        what: &'static str,
        vpc: String,
    },
    #[error(
        "the VPC {vpc} named by `vpc` in [package.metadata.fixedip] was not found in {region}: check the id and the region (`--region`, `region` in the settings); `plan --offline` cannot read it, run `cargo fixedip plan` online"
    )]
    ExistingVpcNotFound { vpc: String, region: String },
    #[error(
        "stack `{stack}` has a network fixedip built (VPC {own_vpc}), but the settings now name the existing VPC {vpc}: run `cargo fixedip destroy` for the stack first, or name another stack with `#[fixed_egress(stack = ...)]`"
    )]
    ExistingVpcOverOwnNetwork {
        stack: StackName,
        own_vpc: String,
        vpc: String,
    },
    #[error(
        "no subnet of {vpc} can carry the function: each must send all of its internet traffic through a NAT with an Elastic IP, and{}\nadd a private subnet whose 0.0.0.0/0 route goes to a NAT gateway with an Elastic IP, or leave out `vpc` and let fixedip build the network",
        refused_list(refused)
    )]
    NoQualifyingSubnet {
        vpc: String,
        refused: Vec<crate::existing::RefusedSubnet>,
    },
    #[error(
        "`subnets` in [package.metadata.fixedip] names subnets the function cannot run in with a fixed egress IP:{}\nname only private subnets whose 0.0.0.0/0 route goes to a NAT with an Elastic IP{}",
        refused_list(refused),
        if qualifying.is_empty() { String::new() } else { format!(" (in {vpc}: {})", qualifying.join(", ")) }
    )]
    SubnetsNotQualified {
        vpc: String,
        refused: Vec<crate::existing::RefusedSubnet>,
        /// The subnets of the VPC that do qualify, to suggest.
        qualifying: Vec<String>,
    },
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
    #[error(
        "the stack needs {needed} new Elastic {}, but the account holds {in_use} of its quota of {quota} in {region}: release Elastic IPs you no longer use, or ask for more (Service Quotas, \"EC2-VPC Elastic IPs\", code L-0263D0A3), then deploy again",
        if *needed == 1 { "IP" } else { "IPs" }
    )]
    AddressQuota {
        region: String,
        quota: u32,
        in_use: u32,
        needed: u32,
    },
    #[error(
        "functions of other packages still run in stack `{stack}`: {}; destroy would cut them off. Destroy their packages first, or pass `--force-detach-others` to take them out of the VPC (they are not deleted)",
        functions.join(", ")
    )]
    OtherFunctionsAttached {
        stack: StackName,
        functions: Vec<String>,
    },
    #[error(
        "{} in {region} fixedip did not create (no `fixedip:stack` tag): {}; deploy would replace {} code, configuration and network. To take {} over, run `cargo fixedip deploy --adopt` (`cargo fixedip plan --adopt` shows what changes on {}); or set another `function-name` in [package.metadata.fixedip]",
        if functions.len() == 1 { "a Lambda function of this name exists" } else { "Lambda functions of these names exist" },
        functions.join(", "),
        if functions.len() == 1 { "its" } else { "their" },
        if functions.len() == 1 { "it" } else { "them" },
        if functions.len() == 1 { "it" } else { "them" },
    )]
    FunctionNotOwned {
        region: String,
        functions: Vec<String>,
    },
    #[error(
        "the Elastic IP {allocation_id} of the stack is associated with {association}, which fixedip did not make, so it cannot be released: disassociate it, then run destroy again (or leave out `--release-ips` to keep it)"
    )]
    ReleaseOfAddressInUse {
        allocation_id: String,
        association: String,
    },
}

/// One line per refused subnet: "\n  subnet-1 (us-east-1a): routes 0.0.0.0/0 to ...".
fn refused_list(refused: &[crate::existing::RefusedSubnet]) -> String {
    if refused.is_empty() {
        return " the VPC has no subnet".to_owned();
    }
    refused
        .iter()
        .map(|r| {
            let az = r
                .availability_zone
                .as_deref()
                .map(|az| format!(" ({az})"))
                .unwrap_or_default();
            format!("\n  {}{az}: {}", r.id, r.reasons.join("; "))
        })
        .collect()
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

/// What the user allowed on the command line. The default is the safe choice for each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlanOptions {
    /// Deploy: new Elastic IPs may carry traffic in this run (`--allow-new-ips`).
    pub allow_new_ips: bool,
    /// Destroy: release the stack's Elastic IPs (`--release-ips`); adopted ones are kept.
    pub release_ips: bool,
    /// Destroy: delete the functions the destroyed packages deploy (`--delete-function`), not
    /// only take them out of the VPC.
    pub delete_functions: bool,
    /// Destroy: take functions of other packages out of the VPC too, instead of refusing.
    pub force_detach_others: bool,
    /// Deploy: take over functions of the same name that fixedip did not create (`--adopt`),
    /// instead of refusing.
    pub adopt_functions: bool,
}

/// A function of the same name that fixedip did not create (no stack tag) is somebody else's:
/// refused before any step, unless the user adopts it.
fn refuse_functions_not_owned(
    spec: &StackSpec,
    observed: &ObservedState,
    options: &PlanOptions,
) -> Result<(), PlanError> {
    if options.adopt_functions {
        return Ok(());
    }
    let foreign: Vec<String> = spec
        .functions
        .iter()
        .filter(|wanted| {
            observed
                .functions
                .iter()
                .any(|f| f.name == wanted.name && f.stack_tag.is_none())
        })
        .map(|f| f.name.clone())
        .collect();
    if foreign.is_empty() {
        Ok(())
    } else {
        Err(PlanError::FunctionNotOwned {
            region: spec.region.clone(),
            functions: foreign,
        })
    }
}

/// Plan the stack with the default [`PlanOptions`]: new IPs of a stack whose IPs were shown
/// already are allocated and held back.
pub fn plan(spec: &StackSpec, observed: &ObservedState) -> Result<Plan, PlanError> {
    plan_with(spec, observed, &PlanOptions::default())
}

/// Plan the stack: what to create, keep, change and remove so that the account holds `spec`'s
/// network.
pub fn plan_with(
    spec: &StackSpec,
    observed: &ObservedState,
    options: &PlanOptions,
) -> Result<Plan, PlanError> {
    refuse_functions_not_owned(spec, observed, options)?;
    if let Some(existing) = &spec.modes.existing {
        return existing::plan(spec, existing, observed);
    }
    let vpc_cidr = spec.vpc_cidr.trunc();
    if !(MIN_VPC_PREFIX..=MAX_VPC_PREFIX).contains(&vpc_cidr.prefix_len()) {
        return Err(PlanError::VpcCidrSize {
            cidr: spec.vpc_cidr,
        });
    }
    let inventory = Inventory::new(observed);
    let slots = choose_slots(spec, &inventory)?;
    let layout = NatLayout::new(&spec.modes, &slots.wanted, &inventory);
    let nat_slots: Vec<(Slot, String)> = slots
        .wanted
        .iter()
        .filter(|(slot, _)| layout.has_nat(*slot))
        .cloned()
        .collect();
    let addresses = choose_addresses(spec, &inventory, &nat_slots)?;
    let hold_new_ips = inventory.ips_shown() && !options.allow_new_ips;

    let mut planner = Planner::default();
    let vpc = planner.vpc(vpc_cidr, observed)?;
    // An isolated stack has no way out at all: no internet gateway (one left from another mode
    // is removed below, once its NATs are gone).
    let internet_gateway = match layout.isolated() {
        true => None,
        false => Some(planner.internet_gateway(observed, &vpc)?),
    };
    let gateway_attached = internet_gateway.as_ref().and_then(|g| g.attached);
    let mut security_group = planner.security_group(observed, &vpc);
    let security_group_ready = planner.security_group_egress(
        &mut security_group,
        observed,
        &egress::desired_egress(&spec.modes, vpc_cidr),
    );
    let role = planner.role(spec, observed);
    let nat_security_group = (spec.modes.nat == NatMode::Instance)
        .then(|| planner.nat_security_group(observed, &vpc, vpc_cidr));
    let nat_kind = NatChoice {
        instances: nat_security_group
            .as_ref()
            .map(|group| (group, spec.modes.nat_instance_type())),
    };

    let mut azs = Vec::new();
    for (slot, az) in &slots.wanted {
        let built = planner.slot(
            *slot,
            az,
            vpc_cidr,
            &vpc,
            &inventory,
            addresses.get(slot),
            gateway_attached,
            hold_new_ips,
            &nat_kind,
        )?;
        azs.push(built);
    }

    let routes_out = layout.isolated() || azs.iter().any(|az| az.nat_gateway.is_some());
    let (removed, kept_surplus) =
        removable_slots(spec, observed, &inventory, &slots.surplus, routes_out);

    let public_subnets: Vec<&Ref> = azs
        .iter()
        .filter_map(|az| az.public_subnet.as_ref().map(|s| &s.reference))
        .collect();
    let public_route_table = internet_gateway.as_ref().map(|gateway| {
        planner.route_table(
            &vpc.reference,
            inventory.public_route_table,
            (Tier::Public, None),
            Some(RouteVia::InternetGateway(gateway.planned.reference.clone())),
            gateway.attached.as_slice(),
            &public_subnets,
        )
    });
    // Egress works once both hops route: private subnet → NAT, public subnet → internet gateway.
    let mut routes_ready: Vec<StepId> = public_route_table
        .iter()
        .flat_map(|table| table.steps.iter().copied())
        .collect();
    // The NATs of the other kind that slots switching mode leave behind, once routes moved.
    let mut retire: Vec<Vec<nat_instance::Retire>> = azs
        .iter_mut()
        .map(|az| std::mem::take(&mut az.retire))
        .collect();
    // Each NAT that carries traffic: its slot, how a route reaches it, what the route waits for.
    let nats: Vec<(Slot, &RouteVia, &[StepId])> = azs
        .iter()
        .filter_map(|az| {
            az.nat_via
                .as_ref()
                .map(|via| (az.slot, via, az.route_after.as_slice()))
        })
        .collect();
    let mut private_route_tables = Vec::new();
    // The tables that route out, for the gateway endpoints.
    let mut routed_private_tables: Vec<(Slot, Ref)> = Vec::new();
    let mut nat_slot_of = Vec::new();
    // The route changes that take traffic away from a NAT: a NAT the plan removes waits for them.
    let mut routes_moved = Vec::new();
    for (index, az) in azs.iter().enumerate() {
        let nat = match layout.serving(az.slot) {
            None => None,
            Some(serving) => nats.iter().find(|(slot, ..)| *slot == serving).or_else(|| {
                // With `nats`, a NAT waiting for its new IP lends its AZs the first NAT that
                // carries traffic, as before the change, rather than cutting them off.
                spec.modes.nats.and(nats.first())
            }),
        };
        let via = match (layout.isolated(), nat) {
            (true, _) => None,
            (false, Some((_, via, _))) => Some((*via).clone()),
            (false, None) => {
                // No route out until the user allows the slot's new IP: the private subnet keeps
                // the VPC's main route table, which reaches nothing outside the VPC.
                private_route_tables.push(match inventory.private_route_tables.get(&az.slot) {
                    Some(table) => Status::Keep(table.id.clone()),
                    None => Status::HeldBack,
                });
                nat_slot_of.push(None);
                continue;
            }
        };
        // A NAT instance carries traffic once its address and check are set.
        let route_after: &[StepId] = nat.map_or(&[], |(_, _, after)| after);
        let routed = planner.route_table(
            &vpc.reference,
            inventory.private_route_tables.get(&az.slot).copied(),
            (Tier::Private, Some(az.slot)),
            via,
            route_after,
            &[&az.private_subnet.reference],
        );
        routes_ready.extend(routed.steps.iter().copied());
        routed_private_tables.push((az.slot, routed.table));
        routes_moved.extend(routed.steps.iter().copied().filter(|step| {
            matches!(
                planner.steps[step.0].action,
                Action::ReplaceRoute { .. } | Action::DeleteRoute { .. }
            )
        }));
        planner.retire(std::mem::take(&mut retire[index]), &routed.steps);
        private_route_tables.push(routed.status);
        nat_slot_of.push(nat.map(|(slot, ..)| *slot));
    }
    let endpoints = planner.endpoints(
        spec,
        observed,
        &inventory,
        &EndpointPlacement {
            vpc: &vpc.reference,
            function_group: &security_group.reference,
            private_route_tables: &routed_private_tables,
            private_subnets: &azs
                .iter()
                .map(|az| az.private_subnet.reference.clone())
                .collect::<Vec<_>>(),
            removed_slots: &removed,
        },
    );

    let attachment = Attachment {
        // Only subnets that route out (or, isolated, all of them): a function in a held-back
        // slot would have no egress.
        private_subnets: azs
            .iter()
            .zip(&nat_slot_of)
            .filter(|(_, nat_slot)| layout.isolated() || nat_slot.is_some())
            .map(|(az, _)| az.private_subnet.reference.clone())
            .collect(),
        surplus_private_subnets: inventory
            .subnets
            .iter()
            .filter(|s| s.tier == Tier::Private && kept_surplus.contains(&s.slot))
            .map(|s| s.id.clone())
            .collect(),
        security_group: security_group.reference.clone(),
        security_group_ready,
        routes_ready,
    };
    let functions: Vec<(String, Status)> = if attachment.private_subnets.is_empty() {
        if !spec.functions.is_empty() {
            planner.notes.push(
                "no AZ of the stack routes out yet (every one waits for a new IP to be allowed): the functions are left as they are until a deploy with `--allow-new-ips`".to_owned(),
            );
        }
        spec.functions
            .iter()
            .map(|function| {
                let deployed = observed.functions.iter().find(|f| f.name == function.name);
                let status = deployed.map_or(Status::HeldBack, |f| Status::Keep(f.arn.clone()));
                (function.name.clone(), status)
            })
            .collect()
    } else {
        spec.functions
            .iter()
            .map(|function| {
                let status = planner.function(spec, function, observed, &attachment, role.as_ref());
                (function.name.clone(), status)
            })
            .collect()
    };

    // The NATs of slots that keep their AZ but lose their NAT (`nats` lowered, or isolated) go
    // once no route leads to them; their addresses stay, retained.
    let functions_moved: Vec<StepId> = planner.configured_functions.values().copied().collect();
    let mut nat_removal = planner.remove_nats(
        &layout,
        &slots.wanted,
        &inventory,
        &[routes_moved, functions_moved].concat(),
    );

    // Slots beyond `azs` go once the functions have left them; their addresses stay, retained.
    for &slot in &removed {
        let private_subnets: Vec<&str> = inventory
            .subnets
            .iter()
            .filter(|s| s.slot == slot && s.tier == Tier::Private)
            .map(|s| s.id.as_str())
            .collect();
        let functions_off: Vec<StepId> = observed
            .functions
            .iter()
            .filter(|f| {
                f.subnet_ids
                    .iter()
                    .any(|s| private_subnets.contains(&s.as_str()))
            })
            .filter_map(|f| planner.configured_functions.get(&f.name).copied())
            // The slot's endpoints leave its route table and subnet first.
            .chain(
                endpoints
                    .slot_cleared
                    .get(&slot)
                    .into_iter()
                    .flatten()
                    .copied(),
            )
            .collect();
        let teardown = planner.remove_slot(slot, &inventory, &functions_off);
        let nats_deleted: Vec<StepId> = teardown
            .nat_gateways_deleted
            .values()
            .chain(&teardown.instances_terminated)
            .copied()
            .collect();
        nat_removal.deleted.extend(&nats_deleted);
        nat_removal
            .subnets_deleted
            .extend(&teardown.network_deleted);
        for address in inventory.addresses_of_slot(slot) {
            if address.usage != AddressUse::Retained {
                let action = Action::RetainAddress {
                    allocation_id: address.allocation_id.clone(),
                };
                planner.push(action, &nats_deleted);
            }
        }
    }
    // Isolated: the internet side goes after every NAT, those of removed slots included.
    let (internet_gateway_status, public_route_table_status) =
        match (&internet_gateway, &public_route_table) {
            (Some(gateway), Some(table)) => (gateway.planned.status.clone(), table.status.clone()),
            _ => planner.remove_internet_side(observed, &inventory, &nat_removal, &kept_surplus),
        };

    let removed_slots = surplus_view(&removed, &inventory);
    for removed in &removed_slots {
        let ip = match &removed.address {
            Some((id, ip)) if !ip.is_unspecified() => format!("its Elastic IP {ip} ({id})"),
            Some((id, _)) => format!("its Elastic IP {id}"),
            None => "its Elastic IP, if any,".to_owned(),
        };
        planner.notes.push(format!(
            "AZ slot {}{} is beyond `azs = {}` and is removed (NAT gateway, subnets, route table); {ip} stays allocated as retained, still on the allowlist and still billed: the next AZ the stack needs uses it again, and `cargo fixedip destroy --release-ips` gives it back",
            removed.slot,
            in_az(removed.az.as_deref()),
            spec.azs
        ));
    }

    let surplus_slots = surplus_view(&kept_surplus, &inventory);
    for surplus in &surplus_slots {
        let private: Vec<&str> = inventory
            .subnets
            .iter()
            .filter(|s| s.slot == surplus.slot && s.tier == Tier::Private)
            .map(|s| s.id.as_str())
            .collect();
        let others: Vec<&str> = observed
            .functions
            .iter()
            .filter(|f| f.subnet_ids.iter().any(|s| private.contains(&s.as_str())))
            .filter(|f| spec.functions.iter().all(|mine| mine.name != f.name))
            .map(|f| f.name.as_str())
            .collect();
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
        planner.notes.push(format!(
            "AZ slot {}{} exists beyond `azs = {}` and stays (its NAT gateway and Elastic IP stay and are billed), {why}",
            surplus.slot,
            in_az(surplus.az.as_deref()),
            spec.azs,
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
    // Only the slots that hold a NAT have an address to keep; the addresses of the others are
    // retained by `remove_nats`, not duplicates.
    let wanted_slots: BTreeSet<Slot> = nat_slots.iter().map(|(slot, _)| *slot).collect();
    let cleared =
        duplicates::plan_away(&mut planner, observed, &inventory, &serving, &wanted_slots);
    let retained_addresses: Vec<(String, Ipv4Addr)> = inventory
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
    for id in &spec.adopted_ips {
        if !serving.contains(id.as_str()) {
            planner.notes.push(format!(
                "the Elastic IP {id} named in `ips` serves no AZ: every AZ already has an address, and fixedip never swaps an address that may be on an allowlist"
            ));
        }
    }

    // Back to gateways: the NAT instances' group goes once no instance is left.
    let nat_security_group_retired = match (&nat_security_group, &observed.nat_security_group) {
        (None, Some(group)) => {
            // Every instance this plan terminates: retired by a switch, in a slot that lost
            // its NAT, or in a slot beyond `azs`.
            let terminated: Vec<StepId> = planner
                .steps
                .iter()
                .filter(|s| matches!(s.action, Action::TerminateNatInstance { .. }))
                .map(|s| s.id)
                .collect();
            let only_retired = inventory.all_instances.len() == terminated.len();
            only_retired.then(|| {
                let action = Action::DeleteSecurityGroup {
                    security_group: group.id.clone(),
                };
                (group.id.clone(), planner.push(action, &terminated))
            })
        }
        _ => None,
    };

    let Planner { steps, notes, .. } = planner;
    check_address_quota(spec, observed, &steps)?;
    let pending_new_ips = azs.iter().filter_map(|az| az.pending.clone()).collect();
    let az_views = azs
        .into_iter()
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
                        None => removed(nat_removal.public_subnets.get(&az.slot)),
                    },
                ),
                private_subnet: (az.private_cidr, az.private_subnet.status),
                address: (az.public_ip, az.address_status),
                nat_gateway: match (az.nat_gateway, has_nat) {
                    (Some(nat), _) => nat.status,
                    (None, true) => Status::HeldBack,
                    (None, false) => removed(nat_removal.nat_gateways.get(&az.slot)),
                },
                private_route_table,
                nat_slot,
                az: az.az,
            }
        })
        .collect();
    Ok(Plan {
        stack: spec.stack.clone(),
        region: spec.region.clone(),
        network: NetworkView {
            vpc: (vpc_cidr, vpc.status),
            internet_gateway: internet_gateway_status,
            public_route_table: public_route_table_status,
            security_group: security_group.status,
            role: role.map(|role| role.planned.status),
            azs: az_views,
            functions,
            retained_addresses,
            surplus_slots,
            removed_slots,
            released_addresses: cleared.released,
            existing: None,
            nat_instance_type: nat_security_group
                .as_ref()
                .map(|_| spec.modes.nat_instance_type().to_owned()),
            nat_security_group: nat_security_group
                .map(|group| group.status)
                .or(nat_security_group_retired.map(|(id, _)| Status::Delete(id))),
            endpoints: endpoints.views,
            endpoint_security_group: endpoints.security_group,
        },
        steps,
        notes,
        pending_new_ips,
    })
}

/// " (us-east-1c)", for messages about a slot.
fn in_az(az: Option<&str>) -> String {
    az.map(|az| format!(" ({az})")).unwrap_or_default()
}

/// Splits the slots beyond `azs` into those the plan removes and those it must leave: a slot
/// stays while a function the plan does not deploy runs in it (the plan cannot move a function
/// it has no configuration for, and removing the slot would cut that function off).
/// And while no AZ within `azs` routes out, every slot stays: it carries the functions' traffic.
fn removable_slots(
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
            .all(|f| spec.functions.iter().any(|mine| mine.name == f.name))
    })
}

/// Refuses a plan that would allocate more Elastic IPs than the account's quota leaves room for:
/// AWS would refuse the allocation half way through the deploy.
fn check_address_quota(
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

/// The observed resources, sorted and indexed, so that the plan does not depend on the order AWS
/// listed them in.
struct Inventory<'a> {
    region_azs: Vec<&'a str>,
    subnets: Vec<&'a ObservedSubnet>,
    /// `pending` or `available` NAT gateways, available first, then by id.
    live_nats: Vec<&'a ObservedNatGateway>,
    /// NAT gateways on their way out (`deleting`), by id.
    deleting_nats: Vec<&'a ObservedNatGateway>,
    /// NAT gateways that failed to come up (AWS deletes them after a while), by id.
    failed_nats: Vec<&'a ObservedNatGateway>,
    addresses: Vec<&'a ObservedAddress>,
    public_route_table: Option<&'a ObservedRouteTable>,
    private_route_tables: BTreeMap<Slot, &'a ObservedRouteTable>,
    /// Every route table of the stack, by id.
    route_tables: Vec<&'a ObservedRouteTable>,
    /// Whether any NAT gateway of the stack is observed, failed ones included.
    any_nat: bool,
    /// NAT instances that are or may again be running (not shutting down), running first,
    /// then by id.
    live_instances: Vec<&'a ObservedNatInstance>,
    /// Every NAT instance not yet `terminated`, by id.
    all_instances: Vec<&'a ObservedNatInstance>,
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

    /// The active or pending address tagged with a slot (the lowest allocation id if several
    /// claim it; active before pending).
    fn active_address(&self, slot: Slot) -> Option<&'a ObservedAddress> {
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
    fn addresses_of_slot(&self, slot: Slot) -> Vec<&'a ObservedAddress> {
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
    fn ips_shown(&self) -> bool {
        let shown = |a: &&ObservedAddress| a.usage != AddressUse::Active || a.adopted;
        self.addresses.iter().any(shown) || self.any_nat || !self.all_instances.is_empty()
    }

    fn existing_slots(&self) -> BTreeSet<Slot> {
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
        .filter(|a| a.usage != AddressUse::Retained && a.slot.is_some())
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
    /// `None`: the slot has no NAT of its own (`nats` fewer than `azs`, or isolated).
    public_subnet: Option<Planned>,
    private_subnet: Planned,
    public_ip: Option<Ipv4Addr>,
    address_status: Status,
    /// `None`: held back until the user allows the slot's new IP, or no NAT in the slot. A NAT
    /// instance in its mode.
    nat_gateway: Option<Planned>,
    /// Where the private route sends traffic (taken when the route is planned).
    nat_via: Option<RouteVia>,
    /// Steps the private route waits for besides the NAT's creation (a NAT instance's address
    /// and check).
    route_after: Vec<StepId>,
    /// The NAT of the other kind this slot leaves behind, once its route has moved.
    retire: Vec<nat_instance::Retire>,
    pending: Option<PendingIp>,
}

/// Which kind of NAT the slots get: `instances` holds the NAT instances' security group and
/// type in `nat = "instance"` mode; `None`: NAT gateways.
struct NatChoice<'a> {
    instances: Option<(&'a Planned, &'a str)>,
}

struct RoutedTable {
    /// The table, for what else goes in it (gateway endpoints).
    table: Ref,
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
    /// The steps that give the security group its egress rules: a function joins it after them.
    security_group_ready: Vec<StepId>,
    /// The steps after which every subnet routes out.
    routes_ready: Vec<StepId>,
}

#[derive(Default)]
struct Planner {
    steps: Vec<Step>,
    notes: Vec<String>,
    /// The UpdateFunctionConfiguration step of each function that gets one, by name.
    configured_functions: BTreeMap<String, StepId>,
}

impl Planner {
    /// Adds a step after the steps behind its refs and `ordering`.
    fn push(&mut self, action: Action, ordering: &[StepId]) -> StepId {
        let id = StepId(self.steps.len());
        let mut after: Vec<StepId> = action
            .refs()
            .into_iter()
            .filter_map(|reference| match reference {
                Ref::Step(step) => Some(step),
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
                let name = tags::role_name(&spec.stack, &spec.region);
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
        address: Option<&AddressChoice>,
        internet_gateway_attached: Option<StepId>,
        hold_new_ips: bool,
        nats: &NatChoice,
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
        let (private_cidr, private_subnet) = subnet(Tier::Private)?;
        let public_cidr = match (inventory.subnet(slot, Tier::Public), layout) {
            (Some(subnet), _) => subnet.cidr,
            (None, Some(layout)) => layout.public,
            (None, None) => return Err(PlanError::SlotOutsideLayout { slot }),
        };
        // A slot without a NAT of its own has no public side: its AZ's traffic leaves through
        // another slot's NAT, or nowhere (isolated).
        let Some(address) = address else {
            return Ok(BuiltSlot {
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
                pending: None,
            });
        };
        let (public_cidr, public_subnet) = subnet(Tier::Public)?;

        // A new IP waits for the user when the stack's IPs were shown before; a slot whose NAT
        // exists carries traffic already, so there is nothing left to hold back.
        let is_new = match address {
            AddressChoice::Allocate => true,
            AddressChoice::Keep(a) | AddressChoice::Activate(a) => a.usage == AddressUse::Pending,
        };
        let held_back = hold_new_ips
            && is_new
            && inventory.live_nat(slot).is_none()
            && inventory.live_instance(slot).is_none();
        let (address_ref, public_ip, address_status) = match address {
            AddressChoice::Keep(a) => (
                Ref::Existing(a.allocation_id.clone()),
                known_ip(a),
                Status::Keep(a.allocation_id.clone()),
            ),
            AddressChoice::Activate(a) if held_back => (
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
                Ref::Step(self.push(Action::AllocateAddress { slot, held_back }, &[])),
                None,
                Status::Create,
            ),
        };
        if held_back {
            return Ok(BuiltSlot {
                slot,
                az: az.to_owned(),
                public_cidr,
                private_cidr,
                public_subnet: Some(public_subnet),
                private_subnet,
                public_ip,
                address_status,
                nat_gateway: None,
                nat_via: None,
                route_after: Vec::new(),
                retire: Vec::new(),
                pending: Some(PendingIp {
                    slot,
                    az: az.to_owned(),
                    address: address_ref,
                    public_ip,
                }),
            });
        }

        if let Some((security_group, instance_type)) = nats.instances {
            let nat = self.slot_nat_instance(
                slot,
                inventory,
                address,
                &address_ref,
                &public_subnet,
                security_group,
                instance_type,
            )?;
            return Ok(BuiltSlot {
                slot,
                az: az.to_owned(),
                public_cidr,
                private_cidr,
                public_subnet: Some(public_subnet),
                private_subnet,
                public_ip,
                address_status,
                nat_gateway: Some(nat.planned),
                nat_via: Some(nat.via),
                route_after: nat.route_after,
                retire: nat.retire,
                pending: None,
            });
        }
        let (freed, retire) = self.free_address_of_instance(slot, inventory, address);
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
                Some(Planned::kept(&nat.id))
            }
            None => {
                // A new NAT needs its address free; AWS would refuse it half way through a deploy.
                if let Some(address) = address.observed() {
                    let on_instance = inventory
                        .instance_holding(address.network_interface_id.as_deref())
                        .is_some();
                    if let (Some(association), false) = (&address.association_id, on_instance) {
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
                let ordering: Vec<StepId> =
                    internet_gateway_attached.into_iter().chain(freed).collect();
                Some(Planned::created(self.push(action, &ordering)))
            }
        };
        let nat_via = nat_gateway
            .as_ref()
            .map(|nat| RouteVia::NatGateway(nat.reference.clone()));
        Ok(BuiltSlot {
            slot,
            az: az.to_owned(),
            public_cidr,
            private_cidr,
            public_subnet: Some(public_subnet),
            private_subnet,
            public_ip,
            address_status,
            nat_gateway,
            nat_via,
            route_after: Vec::new(),
            retire,
            pending: None,
        })
    }

    /// A route table with its 0.0.0.0/0 route (none when `via` is `None`: isolated) and its
    /// subnet associations.
    fn route_table(
        &mut self,
        vpc: &Ref,
        observed: Option<&ObservedRouteTable>,
        (tier, slot): (Tier, Option<Slot>),
        via: Option<RouteVia>,
        route_ordering: &[StepId],
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
        let route_ordering: Vec<StepId> = route_ordering.to_vec();
        let default_route =
            observed.and_then(|t| t.routes.iter().find(|r| r.destination == ANYWHERE));
        match (default_route, via) {
            (None, None) => {}
            (Some(_), None) => {
                let action = Action::DeleteRoute {
                    route_table: table.clone(),
                    destination: ANYWHERE,
                };
                self.push(action, &[]);
            }
            (None, Some(via)) => {
                let action = Action::CreateRoute {
                    route_table: table.clone(),
                    destination: ANYWHERE,
                    via,
                };
                self.push(action, &route_ordering);
            }
            (Some(route), Some(via)) if routes_via(route, &via) => {}
            (Some(_), Some(via)) => {
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
                (Some(table), Ref::Existing(id)) => table.serves(id),
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
        RoutedTable {
            table,
            status,
            steps,
        }
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
            let ordering: Vec<StepId> = role_ready
                .iter()
                .chain(&attachment.security_group_ready)
                .copied()
                .collect();
            self.push(action, &ordering);
            return Status::Create;
        };
        let mut tagged = None;
        if deployed.stack_tag.as_deref() != Some(spec.stack.as_str()) {
            self.notes.push(match &deployed.stack_tag {
                Some(other) => format!(
                    "the function {} moves into stack `{}` from stack `{other}`",
                    function.name, spec.stack
                ),
                None => adoption_note(function, deployed, &role, &attachment.private_subnets),
            });
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
                .chain(&attachment.security_group_ready)
                .copied()
                .collect();
            let step = self.push(action, &ordering);
            self.configured_functions
                .insert(function.name.clone(), step);
            config_update = Some(step);
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

/// What adopting a function fixedip did not create changes on it (`deploy --adopt`): its code,
/// its role (unless `role` keeps it), its VPC.
fn adoption_note(
    function: &FunctionSpec,
    deployed: &ObservedFunction,
    role: &Ref,
    subnets: &[Ref],
) -> String {
    let mut changes = Vec::new();
    if function
        .code_sha256
        .as_ref()
        .is_none_or(|sha| *sha != deployed.code_sha256)
    {
        changes.push("its code is replaced by this build".to_owned());
    }
    if !matches!(role, Ref::Existing(arn) if *arn == deployed.role_arn) {
        let to = match role {
            Ref::Existing(arn) => arn.clone(),
            Ref::Step(_) => "the stack's own role".to_owned(),
        };
        // The user's `role` is what they chose; only the stack's own role replaces theirs.
        let keep = if function.role.is_none() {
            format!(
                " (set `role = \"{}\"` in [package.metadata.fixedip] to keep it)",
                deployed.role_arn
            )
        } else {
            String::new()
        };
        changes.push(format!(
            "its role changes from {} to {to}{keep}",
            deployed.role_arn
        ));
    }
    let same_subnets = subnets.len() == deployed.subnet_ids.len()
        && subnets
            .iter()
            .all(|s| matches!(s, Ref::Existing(id) if deployed.subnet_ids.contains(id)));
    if !same_subnets {
        changes.push(if deployed.subnet_ids.is_empty() {
            "it moves into the stack's VPC".to_owned()
        } else {
            format!(
                "it moves from subnets {} into the stack's VPC",
                deployed.subnet_ids.join(", ")
            )
        });
    }
    changes.push("it is tagged as the stack's from now on".to_owned());
    format!(
        "adopting the function {}, which fixedip did not create: {}",
        function.name,
        changes.join("; ")
    )
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
            | (RouteVia::NatGateway(Ref::Existing(want)), RouteTarget::NatGateway(have))
            | (RouteVia::NatInstance(Ref::Existing(want)), RouteTarget::Instance(have)) => {
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
    fn listed(
        setting: &'static str,
        values: impl IntoIterator<Item = String>,
    ) -> (&'static str, String, String) {
        let values: Vec<String> = values.into_iter().collect();
        let shown = if values.is_empty() {
            "none".to_owned()
        } else {
            format!("[{}]", values.join(", "))
        };
        (setting, shown.clone(), shown)
    }
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
            listed("nat", [requirements.nat.to_string()]),
            listed("nats", requirements.nats.map(|n| n.to_string())),
            listed(
                "endpoints",
                requirements.endpoints.iter().map(ToString::to_string),
            ),
            listed(
                "egress",
                requirements.egress.iter().map(ToString::to_string),
            ),
            (
                "vpc-cidr",
                vpc_cidr,
                f.settings.vpc_cidr.unwrap_or(DEFAULT_VPC_CIDR).to_string(),
            ),
            (
                "nat-instance-type",
                match &f.settings.nat_instance_type {
                    Some(name) => name.clone(),
                    None => format!("{DEFAULT_NAT_INSTANCE_TYPE} (the default)"),
                },
                f.settings
                    .nat_instance_type
                    .clone()
                    .unwrap_or_else(|| DEFAULT_NAT_INSTANCE_TYPE.to_owned()),
            ),
            listed("vpc", f.settings.vpc.clone()),
            listed("subnets", {
                let mut subnets = f.settings.subnets.clone();
                subnets.sort();
                subnets
            }),
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
        modes: NetworkModes {
            nat: requirements.nat,
            nats: requirements.nats,
            endpoints: requirements.endpoints.clone(),
            egress: requirements.egress.clone(),
            nat_instance_type: first.settings.nat_instance_type.clone(),
            existing: first.settings.vpc.as_ref().map(|vpc| ExistingNetwork {
                vpc: vpc.clone(),
                subnets: first.settings.subnets.clone(),
            }),
        },
        functions: by_name.into_values().map(function_spec).collect(),
        region,
    })
}

fn function_spec(declared: &DeclaredFunction) -> FunctionSpec {
    FunctionSpec::new(
        &declared.record.package,
        &declared.record.function,
        &declared.settings,
        declared.code_sha256.clone(),
    )
}

mod duplicates;
mod egress;
mod endpoints;
mod existing;
pub mod nat_instance;
mod nat_layout;
mod teardown;
pub use egress::{desired_egress, security_group_rule};
use nat_layout::NatLayout;
pub use teardown::plan_destroy;

use endpoints::EndpointPlacement;

#[cfg(test)]
mod endpoints_tests;
#[cfg(test)]
mod lifecycle_proptests;
#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod modes_tests;
#[cfg(test)]
mod nat_instance_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
pub(crate) mod simulate;
#[cfg(test)]
mod tests;
