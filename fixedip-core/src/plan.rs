//! The plan: what the network of a stack must become, and the steps that get it there.
//!
//! The planner is pure and deterministic: `(StackSpec, ObservedState) -> Plan`. Every choice (CIDRs,
//! AZs, which address serves which AZ, what to create, keep, change or delete) is made here; the
//! executor in the CLI only carries the steps out, in dependency order.

use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::observed::Slot;
use crate::requirements::StackName;

mod action;
mod spec;
mod view;

use action::tier_name;
pub use action::{Action, InterfaceHolder, RouteVia};
pub use spec::{
    ExistingAttachment, ExistingNetwork, FunctionSpec, NetworkModes, StackSpec,
    DEFAULT_NAT_INSTANCE_TYPE,
};
pub use view::{AzView, EndpointView, NetworkView, PendingIp, SurplusSlot};

/// The VPC CIDR when the settings name none: 65,536 addresses, cut into 16 blocks of /20 (4,096
/// addresses each, ample for Lambda's network interfaces). See the layout in [`crate::planner`].
pub const DEFAULT_VPC_CIDR: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 0, 0), 16);

/// The Lambda runtime of every function fixedip deploys: a Rust binary named `bootstrap`.
pub const LAMBDA_RUNTIME: &str = "provided.al2023";

/// The identifier of a step within one plan.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct StepId(pub usize);

/// A resource a step needs: one that exists, or the one an earlier step makes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ref {
    Existing(String),
    Step(StepId),
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ref::Existing(id) => f.write_str(id),
            Ref::Step(StepId(n)) => write!(f, "(new, step {n})"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Step {
    pub id: StepId,
    pub action: Action,
    /// Steps whose results this one needs; the executor runs a step once all of these are done.
    pub after: Vec<StepId>,
}

/// Whether a resource of the desired topology exists already.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", content = "id", rename_all = "snake_case")]
pub enum Status {
    /// Exists as wanted.
    Keep(String),
    /// Exists, and a step changes it.
    Change(String),
    /// A step creates it.
    Create,
    /// Would use a new Elastic IP that the user has not allowed yet: not created by this plan
    /// (see [`Plan::pending_new_ips`]).
    HeldBack,
    /// Exists, and a step deletes it.
    Delete(String),
    /// Does not exist, and no step makes it (a destroy plan on a half-destroyed stack).
    Absent,
}

impl Status {
    /// Whether the resource exists once the plan is applied.
    pub fn exists_after(&self) -> bool {
        matches!(self, Status::Keep(_) | Status::Change(_) | Status::Create)
    }
}

/// The plan for one stack.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    pub stack: StackName,
    pub region: String,
    pub network: NetworkView,
    /// In an order where every step comes after the steps it needs.
    pub steps: Vec<Step>,
    /// What the user should know that no step does (a slot beyond `azs` left in place, ...).
    pub notes: Vec<String>,
    /// New Elastic IPs that carry no traffic yet: the CLI prints each (with the IP the
    /// `AllocateAddress` step got) and how to allow them. Empty in a destroy plan.
    pub pending_new_ips: Vec<PendingIp>,
}

impl Plan {
    /// A plan with no step: applying it makes no mutating call.
    pub fn is_noop(&self) -> bool {
        self.steps.is_empty()
    }

    /// A plan that only uploads new code to functions that are otherwise as wanted: the network
    /// and every function's configuration stay as observed. Applying it needs neither the
    /// stack's lease (it changes nothing the lease guards: Lambda orders updates of one function
    /// itself) nor a second observation, and the egress verified before still holds after.
    pub fn changes_only_code(&self) -> bool {
        !self.steps.is_empty()
            && (self.steps.iter()).all(|s| matches!(s.action, Action::UpdateFunctionCode { .. }))
    }

    pub fn step(&self, id: StepId) -> &Step {
        &self.steps[id.0]
    }

    /// What a person reads for a step, in `plan -v`, progress and reports: its action, with what an
    /// earlier step creates named by what it is ("route table (new, private, us-east-1a)"), never
    /// by a step number.
    pub fn describe(&self, action: &Action) -> String {
        let mut named = action.clone();
        for reference in named.refs_mut() {
            if let Ref::Step(id) = reference {
                *reference = Ref::Existing(self.what_step_creates(*id));
            }
        }
        named.summary()
    }

    /// How [`Plan::describe`] names what step `id` creates, after the kind of thing it is
    /// ("VPC", "subnet", "route table"...): its CIDR or name where it has one, "(new)" and its AZ.
    fn what_step_creates(&self, id: StepId) -> String {
        let stack = &self.stack;
        let in_az = |slot: Slot| match self.az_of(slot) {
            Some(az) => format!("(new, {az})"),
            None => "(new)".to_owned(),
        };
        match &self.step(id).action {
            Action::CreateVpc { cidr } => format!("{cidr} (new)"),
            Action::CreateSubnet { cidr, az, .. } => format!("{cidr} (new, {az})"),
            Action::AllocateAddress { slot, .. }
            | Action::CreateNatGateway { slot, .. }
            | Action::LaunchNatInstance { slot, .. } => in_az(*slot),
            Action::CreateRouteTable {
                tier,
                slot: Some(slot),
                ..
            } => match self.az_of(*slot) {
                Some(az) => format!("(new, {}, {az})", tier_name(*tier)),
                None => format!("(new, {})", tier_name(*tier)),
            },
            Action::CreateRouteTable { tier, .. } => format!("(new, {})", tier_name(*tier)),
            Action::CreateSecurityGroup { .. } => {
                format!("{} (new)", crate::tags::security_group_name(stack))
            }
            Action::CreateNatSecurityGroup { .. } => {
                format!("{} (new)", crate::tags::nat_security_group_name(stack))
            }
            Action::CreateEndpointSecurityGroup { .. } => {
                format!("{} (new)", crate::tags::endpoint_security_group_name(stack))
            }
            Action::CreateRole { name } => format!("{name} (new)"),
            Action::CreateFunction { function, .. } => function.name.clone(),
            _ => "(new)".to_owned(),
        }
    }

    /// The AZ of a slot, for the `Name` tag of what a step makes for it.
    pub fn az_of(&self, slot: Slot) -> Option<&str> {
        let az = self
            .network
            .azs
            .iter()
            .find(|az| az.slot == slot)
            .map(|az| az.az.as_str());
        az.or_else(|| {
            let network = &self.network;
            let mut beyond = network.surplus_slots.iter().chain(&network.removed_slots);
            let surplus = beyond.find(|s| s.slot == slot);
            surplus.and_then(|s| s.az.as_deref())
        })
    }
}
