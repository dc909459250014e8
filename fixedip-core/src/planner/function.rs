//! The functions: created in, or moved into, the private subnets that route out, with the
//! stack's security group and role; their code and configuration updated when they differ; a
//! function fixedip did not create refused unless adopted.

use std::collections::{BTreeMap, BTreeSet};

use super::network::{Base, Role};
use super::routes::Routes;
use super::slot::BuiltSlot;
use super::steps::Planner;
use super::{Context, PlanError, PlanOptions};
use crate::observed::{ObservedFunction, ObservedState, Slot, Tier};
use crate::plan::{Action, FunctionSpec, Plan, Ref, StackSpec, Status, StepId, LAMBDA_RUNTIME};

/// Where functions attach.
pub(super) struct Attachment {
    pub(super) private_subnets: Vec<Ref>,
    /// Private subnets of slots beyond `azs`: a function already in one stays there (the slot's
    /// NAT and address stay too), a function not in one is not put there.
    pub(super) surplus_private_subnets: Vec<String>,
    pub(super) security_group: Ref,
    /// The steps that give the security group its egress rules: a function joins it after them.
    pub(super) security_group_ready: Vec<StepId>,
    /// The steps after which every subnet routes out.
    pub(super) routes_ready: Vec<StepId>,
}

/// A function of the same name that fixedip did not create (no stack tag) is somebody else's:
/// refused before any step, unless the user adopts it.
pub(super) fn refuse_functions_not_owned(
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

impl Planner {
    /// Every function of the stack, attached to the private subnets that route out (or, isolated,
    /// all of them): a function in a held-back slot would have no egress. A function already in
    /// a slot beyond `azs` that stays keeps that subnet too.
    pub(super) fn functions(
        &mut self,
        context: &Context,
        isolated: bool,
        azs: &[BuiltSlot],
        routes: &Routes,
        base: &Base,
        kept_surplus: &[Slot],
    ) -> Vec<(String, Status)> {
        let (spec, observed) = (context.spec, context.observed);
        let attachment = Attachment {
            private_subnets: azs
                .iter()
                .zip(&routes.nat_slot_of)
                .filter(|(_, nat_slot)| isolated || nat_slot.is_some())
                .map(|(az, _)| az.private_subnet.reference.clone())
                .collect(),
            surplus_private_subnets: context
                .inventory
                .subnets
                .iter()
                .filter(|s| s.tier == Tier::Private && kept_surplus.contains(&s.slot))
                .map(|s| s.id.clone())
                .collect(),
            security_group: base.security_group.reference.clone(),
            security_group_ready: base.security_group_ready.clone(),
            routes_ready: routes.routes_ready.clone(),
        };
        if attachment.private_subnets.is_empty() {
            if !spec.functions.is_empty() {
                self.notes.push(
                    "no AZ of the stack routes out yet (every one waits for a new IP to be allowed): the functions are left as they are until a deploy with `--allow-new-ips`".to_owned(),
                );
            }
            return spec
                .functions
                .iter()
                .map(|function| {
                    let deployed = observed.functions.iter().find(|f| f.name == function.name);
                    let status = deployed.map_or(Status::HeldBack, |f| Status::Keep(f.arn.clone()));
                    (function.name.clone(), status)
                })
                .collect();
        }
        spec.functions
            .iter()
            .map(|function| {
                let status =
                    self.function(spec, function, observed, &attachment, base.role.as_ref());
                (function.name.clone(), status)
            })
            .collect()
    }

    /// The new functions the first planning pass put in new slots (`context.functions_first`),
    /// created as soon as their private subnets and security group exist: before any NAT, which
    /// waits for them. Returns their steps.
    pub(super) fn create_functions_first(
        &mut self,
        context: &Context,
        private: &[(Slot, Ref)],
        base: &Base,
    ) -> Vec<StepId> {
        let mut steps = Vec::new();
        for function in &context.spec.functions {
            let Some(slots) = context.functions_first.get(&function.name) else {
                continue;
            };
            let attachment = Attachment {
                private_subnets: slots
                    .iter()
                    .filter_map(|slot| private.iter().find(|(s, _)| s == slot))
                    .map(|(_, subnet)| subnet.clone())
                    .collect(),
                surplus_private_subnets: Vec::new(),
                security_group: base.security_group.reference.clone(),
                security_group_ready: base.security_group_ready.clone(),
                routes_ready: Vec::new(),
            };
            let (role, role_ready) = role_of(function, base.role.as_ref());
            let step = self.create_function(function, &attachment, (role, &role_ready), None);
            self.created_first.insert(function.name.clone(), step);
            steps.push(step);
        }
        steps
    }

    /// CreateFunction in the attachment's private subnets, once the role, the security group
    /// and `after` (a failed function's deletion) are ready, then the wait for it to be `Active`.
    /// Returns the create: what needs only Lambda's acceptance (new NATs) waits for it alone.
    fn create_function(
        &mut self,
        function: &FunctionSpec,
        attachment: &Attachment,
        (role, role_ready): (Ref, &[StepId]),
        after: Option<StepId>,
    ) -> StepId {
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
            .chain(after)
            .collect();
        let created = self.push(action, &ordering);
        self.await_active(&function.name, Some(created));
        created
    }

    /// The wait for a function to be `Active`: after its create, or after nothing for one a
    /// killed run left `Pending`.
    fn await_active(&mut self, name: &str, after: impl IntoIterator<Item = StepId>) -> StepId {
        let after: Vec<StepId> = after.into_iter().collect();
        let action = Action::AwaitFunctionActive {
            name: name.to_owned(),
        };
        self.push(action, &after)
    }

    pub(super) fn function(
        &mut self,
        spec: &StackSpec,
        function: &FunctionSpec,
        observed: &ObservedState,
        attachment: &Attachment,
        stack_role: Option<&Role>,
    ) -> Status {
        let (role, role_ready) = role_of(function, stack_role);
        let Some(deployed) = observed.functions.iter().find(|f| f.name == function.name) else {
            if self.created_first.contains_key(&function.name) {
                return Status::Create;
            }
            // A new function has no callers yet: it is created while the NAT gateways come up.
            self.create_function(function, attachment, (role, &role_ready), None);
            return Status::Create;
        };
        if deployed.state.failed() && deployed.stack_tag.as_deref() == Some(spec.stack.as_str()) {
            // Lambda: "When function creation fails, Lambda sets the function state to failed,
            // and you must delete and recreate the function" (developer guide, function states).
            self.notes.push(format!(
                "the function {} is {}: it is deleted and created again",
                function.name, deployed.state
            ));
            let deleted = self.push(
                Action::DeleteFunction {
                    name: function.name.clone(),
                },
                &[],
            );
            self.create_function(function, attachment, (role, &role_ready), Some(deleted));
            return Status::Create;
        }
        self.update_function(spec, function, deployed, attachment, (role, &role_ready))
    }

    /// A deployed function: tagged into the stack, its configuration and code updated where they
    /// differ from the spec.
    fn update_function(
        &mut self,
        spec: &StackSpec,
        function: &FunctionSpec,
        deployed: &ObservedFunction,
        attachment: &Attachment,
        (role, role_ready): (Ref, &[StepId]),
    ) -> Status {
        // Created by a run killed before Lambda had it `Active`: waited for, so that this run
        // ends with a function that runs (and the updates below are not refused meanwhile).
        let pending = (deployed.state.state.as_deref() == Some("Pending"))
            .then(|| self.await_active(&function.name, None));
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
                arn: deployed.arn.clone(),
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
        if deployed.ipv6_allowed_for_dual_stack {
            self.notes.push(format!(
                "the function {} allows IPv6 (Ipv6AllowedForDualStack): in a dual-stack subnet its IPv6 traffic would leave from its own address, not the stack's fixed IPs; it is turned off",
                function.name
            ));
        }
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
                .chain(pending)
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
            let ordering: Vec<StepId> = config_update.into_iter().chain(pending).collect();
            code_update = Some(self.push(action, &ordering));
        }
        if pending.is_none() && tagged.is_none() && config_update.is_none() && code_update.is_none()
        {
            Status::Keep(deployed.arn.clone())
        } else {
            Status::Change(deployed.arn.clone())
        }
    }
}

/// The role a function runs with, and the steps that make it ready: the user's `role`, else the
/// stack's own.
fn role_of(function: &FunctionSpec, stack_role: Option<&Role>) -> (Ref, Vec<StepId>) {
    match (&function.role, stack_role) {
        (Some(arn), _) => (Ref::Existing(arn.clone()), Vec::new()),
        (None, Some(role)) => (role.planned.reference.clone(), role.ready.clone()),
        (None, None) => unreachable!("the stack's role is planned when a function has none"),
    }
}

/// The new functions a plan creates while it makes a NAT (gateway or instance), by name, with
/// the slots whose private subnets each goes in: the planner plans again with them created first.
/// Lambda refuses a function whose subnets are in an AZ it does not support, and says so only
/// then; created first, such a refusal leaves no NAT in that AZ (a slot whose NAT exists keeps
/// its AZ for life), and the deploy plans again without it, the slot's address moving with it
/// (`converge/deploy.rs`).
pub(super) fn functions_created_first(
    plan: &Plan,
    observed: &ObservedState,
) -> BTreeMap<String, Vec<Slot>> {
    let makes_nat = plan.steps.iter().any(|step| {
        matches!(
            step.action,
            Action::CreateNatGateway { .. }
                | Action::LaunchNatInstance { .. }
                | Action::CreateNatInterface { .. }
        )
    });
    if !makes_nat {
        return BTreeMap::new();
    }
    let slot_of = |subnet: &Ref| match subnet {
        Ref::Step(step) => match &plan.steps[step.0].action {
            Action::CreateSubnet { slot, .. } => Some(*slot),
            _ => None,
        },
        Ref::Existing(id) => observed
            .subnets
            .iter()
            .find(|s| s.id == *id)
            .map(|s| s.slot),
    };
    plan.steps
        .iter()
        .filter_map(|step| match &step.action {
            Action::CreateFunction {
                function, subnets, ..
            } if observed.functions.iter().all(|f| f.name != function.name) => {
                let slots = subnets.iter().filter_map(slot_of).collect();
                Some((function.name.clone(), slots))
            }
            _ => None,
        })
        .collect()
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
        || deployed.ipv6_allowed_for_dual_stack
}
