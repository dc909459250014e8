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
//! NAT, address or public subnet at all. See `planner/nats.rs`.
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
//! numbers. A slot keeps the AZ of its subnets; a slot without one takes the next AZ of the stack's
//! order that no slot uses: the AZ ids of `az-ids = [...]` in that order, or else the region's
//! AZs sorted by AZ id (by name offline) and rotated by a stable hash of the stack's name, so
//! that stacks spread over the zones. AZs the stack cannot use
//! ([`ObservedState::unusable_az_ids`]: the NAT instance type not offered, a subnet or a
//! function's subnets refused in this run) are left out (`slots.rs`).
//!
//! Elastic IPs are regional: new ones are allocated (and retained ones put to work) at the start
//! of the run, waiting for nothing, so that they are visible to CreateNatGateway by the time its
//! subnet is. What is bound to an AZ is the NAT, and a new NAT (gateway or instance) waits for its
//! own subnet, its address, and Lambda's answer to the new functions: a new function is created
//! first, in the subnets a first planning pass gives it, because Lambda refuses an AZ it does not
//! support only when a function is put there. So a zone that refuses a subnet or a function gets
//! no NAT. A slot whose NAT exists keeps its AZ for life; a slot whose subnets are in a refused
//! zone and whose NAT does not exist is given up (its subnets and route table removed) and a slot
//! in another AZ takes its place and its address: a refused AZ costs no second address. A slot
//! whose address waits for `--allow-new-ips` keeps its AZ too: no function goes there before the
//! IP is allowed, so Lambda has refused nothing there yet. If the region has no other AZ to offer, the run
//! stops before any NAT; the addresses it allocated stay, tagged with their slots (billed, as any
//! Elastic IP), and the next deploy uses them.
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
//! account's Elastic IP quota ([`ObservedState::address_quota`]), and one whose VPC, internet
//! gateway, NAT gateways or endpoints would not fit in the VPC quotas ([`quotas`]).
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
//! reused at once). A pending IP stays pending when its slot goes (a smaller `azs` or `nats`,
//! `destroy`): only its slot tag is dropped (`RetainAddress { pending: true }`), and the slot that
//! takes it next claims it still pending (`ActivateAddress { held_back: true }`). A fresh stack (nothing shown yet) routes its new IPs at once: there is no
//! allowlist to break. A fresh deploy whose second AllocateAddress failed (they are sent at the
//! start, before any NAT) and that was stopped after its first NAT is the one case where the rule
//! asks for `--allow-new-ips` without need; it errs on the safe side.
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
//! `destroy.rs` and `teardown.rs`. Every id a removal names comes from the observation, so planning again after a
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
//!
//! # Components
//! [`plan_with`] is a short sequence over one planner per part of the network, each in its own
//! file: `layout` (CIDRs), `inventory` (the observation, indexed), `slots` (which slots, which
//! AZs), `addresses` (which address serves a slot), `nats` (which slots hold a NAT), `network`
//! (VPC, internet gateway, security group, role), `slot` (a slot's subnets, address and NAT),
//! `routes`, `endpoints`, `egress`, `function`, `teardown` (what the stack no longer uses) and
//! `destroy`.

use std::collections::BTreeMap;

use ipnet::Ipv4Net;

use crate::observed::ObservedState;
use crate::plan::{NetworkView, Plan, StackSpec, Status};

use addresses::{check_address_quota, choose_addresses};
use function::Attachment;
use inventory::Inventory;
use nats::NatLayout;
use slots::{choose_slots, removable_slots};
use steps::{Planned, Planner};

// What the tests of this module (`use super::*`) name, as they did when it was one file.
#[cfg(test)]
use {
    crate::observed::Slot,
    crate::observed::{AddressUse, ObservedAddress, ObservedFunction, ObservedRouteTable, Tier},
    crate::plan::{Action, FunctionSpec, NetworkModes, Ref, RouteVia, Step, DEFAULT_VPC_CIDR},
    crate::plan::{StepId, LAMBDA_RUNTIME},
    crate::record::Record,
    crate::requirements::NatMode,
    crate::requirements::{AllocationId, StackName},
    crate::settings::DeploySettings,
    std::collections::BTreeSet,
    std::net::Ipv4Addr,
};

pub use crate::stacks::{stack_specs, ConflictError, DeclaredFunction, Origin};
pub use destroy::plan_destroy;
pub use egress::{desired_egress, gateway_prefix_lists_needed, security_group_rule};
pub use errors::PlanError;
pub use layout::{slot_cidrs, SlotCidrs, ANYWHERE, LAYOUT_SLOTS, MAX_VPC_PREFIX, MIN_VPC_PREFIX};
pub use network::{execution_role_policy_arns, partition, EXECUTION_ROLE_POLICIES};

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

/// What every component planner reads: the wanted stack, the observation (raw and indexed), the
/// VPC's CIDR and whether new IPs wait for the user.
struct Context<'a> {
    spec: &'a StackSpec,
    observed: &'a ObservedState,
    inventory: Inventory<'a>,
    vpc_cidr: Ipv4Net,
    /// New IPs are allocated and held back: the stack's IPs were shown and `--allow-new-ips`
    /// was not given.
    hold_new_ips: bool,
    /// The new functions created before any NAT, with the slots of their subnets.
    functions_first: &'a BTreeMap<String, Vec<crate::observed::Slot>>,
    /// The observed addresses that serve a slot the stack uses, by allocation id, with that slot:
    /// one an abandoned slot held stays with the slot that took it when the abandoned one goes.
    addresses_taken: BTreeMap<&'a str, crate::observed::Slot>,
}

/// Plan the stack with the default [`PlanOptions`]: new IPs of a stack whose IPs were shown
/// already are allocated and held back.
pub fn plan(spec: &StackSpec, observed: &ObservedState) -> Result<Plan, PlanError> {
    plan_with(spec, observed, &PlanOptions::default())
}

/// Plan the stack: what to create, keep, change and remove so that the account holds `spec`'s
/// network. Each line is one component; the order of the lines is the order of the steps.
pub fn plan_with(
    spec: &StackSpec,
    observed: &ObservedState,
    options: &PlanOptions,
) -> Result<Plan, PlanError> {
    function::refuse_functions_not_owned(spec, observed, options)?;
    if let Some(existing) = &spec.modes.existing {
        return existing::plan(spec, existing, observed);
    }
    // Planned twice when a new function goes where a NAT is made: the second time it is created
    // first, in the subnets the first plan gave it (`function.rs`).
    let plan = plan_network(spec, observed, options, &BTreeMap::new())?;
    let functions_first = function::functions_created_first(&plan, observed);
    if functions_first.is_empty() {
        return Ok(plan);
    }
    plan_network(spec, observed, options, &functions_first)
}

/// The plan of a stack with a network of its own; `functions_first`, the new functions created
/// before any NAT, with their slots.
fn plan_network(
    spec: &StackSpec,
    observed: &ObservedState,
    options: &PlanOptions,
    functions_first: &BTreeMap<String, Vec<crate::observed::Slot>>,
) -> Result<Plan, PlanError> {
    let vpc_cidr = layout::vpc_cidr(spec)?;
    let inventory = Inventory::new(observed);
    let slots = choose_slots(spec, observed, &inventory)?;
    let nat_layout = NatLayout::new(&spec.modes, &slots.wanted, &inventory);
    let nat_slots = slots.holding_nats(&nat_layout);
    let addresses = choose_addresses(spec, &inventory, &nat_slots, &slots.abandoned)?;
    let context = Context {
        spec,
        observed,
        hold_new_ips: inventory.ips_shown() && !options.allow_new_ips,
        inventory,
        vpc_cidr,
        functions_first,
        addresses_taken: addresses
            .iter()
            .filter_map(|(slot, choice)| Some((choice.observed()?.allocation_id.as_str(), *slot)))
            .collect(),
    };

    let mut planner = Planner::default();
    let base = planner.base(spec, observed, vpc_cidr, &nat_layout)?;
    let mut azs = planner.build_slots(&context, &slots.wanted, &addresses, &base)?;
    let routes_out = nat_layout.isolated() || azs.iter().any(|az| az.nat_gateway.is_some());
    let (removed, kept_surplus) = removable_slots(
        spec,
        observed,
        &context.inventory,
        &slots.surplus,
        routes_out,
    );
    let mut routes = planner.routes(&context, &nat_layout, &base, &mut azs);
    let endpoints = planner.endpoints_of_stack(&context, &base, &routes, &azs, &removed);
    let isolated = nat_layout.isolated();
    let functions = planner.functions(&context, isolated, &azs, &routes, &base, &kept_surplus);
    planner.retire_old_nats(&context.inventory, &mut routes);
    let (removal, internet_gateway, public_route_table) = planner.remove_unused(
        &context,
        &nat_layout,
        &slots.wanted,
        &removed,
        &kept_surplus,
        &routes,
        &endpoints,
        &base,
    );
    let (removed_slots, surplus_slots) = planner.note_beyond_azs(&context, &removed, &kept_surplus);
    let kept = planner.keep_addresses(&context, &addresses, &surplus_slots, &nat_slots);
    planner.retire_nat_profile(base.nat_profile.is_some(), observed, &context.inventory);
    let nat_security_group_retired = planner.retire_nat_security_group(
        base.nat_security_group.is_some(),
        observed,
        &context.inventory,
    );

    let Planner { steps, notes, .. } = planner;
    check_address_quota(spec, observed, &steps)?;
    let pending_new_ips = azs.iter().filter_map(|az| az.pending.clone()).collect();
    let azs = slot::az_views(
        azs,
        routes.private_route_tables,
        routes.nat_slot_of,
        &nat_layout,
        &removal,
    );
    Ok(Plan {
        stack: spec.stack.clone(),
        region: spec.region.clone(),
        network: NetworkView {
            vpc: (vpc_cidr, base.vpc.status),
            internet_gateway,
            public_route_table,
            security_group: base.security_group.status,
            role: base.role.map(|role| role.planned.status),
            azs,
            functions,
            retained_addresses: kept.retained,
            surplus_slots,
            removed_slots,
            released_addresses: kept.released,
            existing: None,
            nat_self_healing: base.nat_profile.is_some(),
            nat_instance_type: base
                .nat_security_group
                .as_ref()
                .map(|_| spec.modes.nat_instance_type().to_owned()),
            nat_security_group: base
                .nat_security_group
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

mod addresses;
mod destroy;
mod duplicates;
mod egress;
mod endpoints;
mod errors;
mod existing;
mod function;
mod inventory;
mod layout;
mod nat_group;
pub mod nat_instance;
mod nats;
mod network;
pub mod quotas;
mod routes;
mod slot;
mod slots;
mod steps;
mod teardown;

// The tests, in `planner/tests/`: one file per concern, each a child of this module (`use
// super::*`), with the simulator that applies plans as AWS would.
#[cfg(test)]
#[path = "planner/tests/endpoints.rs"]
mod endpoints_tests;
#[cfg(test)]
#[path = "planner/tests/lifecycle_proptests.rs"]
mod lifecycle_proptests;
#[cfg(test)]
#[path = "planner/tests/lifecycle.rs"]
mod lifecycle_tests;
#[cfg(test)]
#[path = "planner/tests/modes.rs"]
mod modes_tests;
#[cfg(test)]
#[path = "planner/tests/nat_group.rs"]
mod nat_group_tests;
#[cfg(test)]
#[path = "planner/tests/nat_instance.rs"]
mod nat_instance_tests;
#[cfg(test)]
#[path = "planner/tests/proptests.rs"]
mod proptests;
#[cfg(test)]
#[path = "planner/tests/simulate.rs"]
pub(crate) mod simulate;
#[cfg(test)]
#[path = "planner/tests/plan.rs"]
mod tests;
