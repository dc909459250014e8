//! The plan being built: its steps in order, each after the steps it needs, and its notes.

use std::collections::BTreeMap;

use crate::plan::{Action, Ref, Status, Step, StepId};

/// A resource of the desired network: how steps refer to it, and whether it exists.
pub(super) struct Planned {
    pub(super) reference: Ref,
    pub(super) status: Status,
}

impl Planned {
    pub(super) fn kept(id: &str) -> Planned {
        Planned {
            reference: Ref::Existing(id.to_owned()),
            status: Status::Keep(id.to_owned()),
        }
    }

    pub(super) fn changed(id: &str) -> Planned {
        Planned {
            reference: Ref::Existing(id.to_owned()),
            status: Status::Change(id.to_owned()),
        }
    }

    pub(super) fn created(step: StepId) -> Planned {
        Planned {
            reference: Ref::Step(step),
            status: Status::Create,
        }
    }
}

#[derive(Default)]
pub(super) struct Planner {
    pub(super) steps: Vec<Step>,
    pub(super) notes: Vec<String>,
    /// The UpdateFunctionConfiguration step of each function that gets one, by name.
    pub(super) configured_functions: BTreeMap<String, StepId>,
    /// The CreateFunction step of each function created before any NAT, by name.
    pub(super) created_first: BTreeMap<String, StepId>,
    /// The DisassociateAddress step of each association the plan removes, by association id:
    /// planned once, whoever needs the address free first.
    disassociated: BTreeMap<String, StepId>,
}

impl Planner {
    /// Adds a step after the steps behind its refs and `ordering`.
    pub(super) fn push(&mut self, action: Action, ordering: &[StepId]) -> StepId {
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

    /// The steps planned so far whose action `what` picks, in order.
    pub(super) fn steps_where(&self, what: impl Fn(&Action) -> bool) -> Vec<StepId> {
        self.steps
            .iter()
            .filter(|s| what(&s.action))
            .map(|s| s.id)
            .collect()
    }

    /// DisassociateAddress of `association_id` after `ordering`, once per plan: the step that
    /// frees the address.
    pub(super) fn disassociate(&mut self, association_id: &str, ordering: &[StepId]) -> StepId {
        if let Some(step) = self.disassociated.get(association_id) {
            return *step;
        }
        let action = Action::DisassociateAddress {
            association_id: association_id.to_owned(),
        };
        let step = self.push(action, ordering);
        self.disassociated.insert(association_id.to_owned(), step);
        step
    }
}
