//! Destroy's goal: nothing of the stack left but what it keeps (its Elastic IPs, unless
//! `--release-ips`).

use fixedip_core::plan::{Plan, StackSpec};
use fixedip_core::planner::{self, PlanOptions};

use super::Goal;
use crate::aws::lease::LeaseError;
use crate::aws::legacy_role::legacy_role;
use crate::aws::observe::{observe, Scope};
use crate::aws::Aws;
use crate::commands::Context;
use crate::error::CliError;

/// The stack's teardown.
pub struct Destroy {
    pub options: PlanOptions,
}

impl Goal for Destroy {
    const COMMAND: &'static str = "destroy";
    const DOING: &'static str = "Destroying";
    const NOTHING_TO_DO: &'static str = "nothing of it is left to remove";

    /// Every function attached to the stack is observed, not only the package's: destroy must not
    /// cut another package's function off without saying so.
    async fn plan(
        &self,
        _context: &Context,
        aws: &Aws,
        spec: &StackSpec,
        _first: bool,
    ) -> Result<Plan, CliError> {
        let scope = Scope {
            attached_functions: true,
            // Destroy revokes no rule by its prefix list: every rule goes with the group.
            prefix_lists: Vec::new(),
            ..Scope::from(spec)
        };
        let observed = observe(aws, &scope).await?;
        let mut plan = planner::plan_destroy(spec, &observed, &self.options)?;
        if let Some(name) = legacy_role(aws, &spec.stack).await {
            plan.notes.push(legacy_role_note(&name, spec));
        }
        Ok(plan)
    }

    /// Nothing is released unseen: an Elastic IP that `--release-ips` would release now but that
    /// was not shown before (a deploy added it while this run waited for the lease) stops the run.
    fn still_agrees(&self, shown: &Plan, now: &Plan) -> Result<(), CliError> {
        let unconfirmed: Vec<String> = now
            .network
            .released_addresses
            .iter()
            .filter(|released| !shown.network.released_addresses.contains(released))
            .map(|(_, ip)| ip.to_string())
            .collect();
        if unconfirmed.is_empty() {
            return Ok(());
        }
        Err(CliError::from(LeaseError::ChangedWhileWaiting {
            stack: now.stack.to_string(),
            what: format!(
                "it now has Elastic IPs that were not shown before: {}",
                unconfirmed.join(", ")
            ),
        }))
    }
}

/// The 0.1 role is never deleted from one region (another region's functions may still run on
/// it): destroy says it is there, and how to delete it once no region uses it.
fn legacy_role_note(name: &str, spec: &StackSpec) -> String {
    let stack = &spec.stack;
    format!(
        "the role {name}, made by fixedip 0.1 for every region of stack `{stack}`, is left in place: functions of the stack in another region may still run on it. Once every region is redeployed (deploy moves functions to fixedip-{stack}-<region>-lambda) or destroyed, delete it: detach its policies (`aws iam list-attached-role-policies --role-name {name}`), then `aws iam delete-role --role-name {name}`"
    )
}
