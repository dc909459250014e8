//! The workflow deploy and destroy share: observe and plan every stack first, so that nothing
//! changes unless every plan is sound; then, stack by stack, take the stack's lease, observe and
//! plan again under it (another run may have changed the stack while this one waited, or since it
//! observed), and carry the plan out with progress on stderr. A plan that changes nothing takes
//! no lease: a run with nothing to do makes no mutating call. Nor does a plan that only uploads
//! new code (`Plan::changes_only_code`): the everyday redeploy is the upload and its wait.
//!
//! What the two differ in is their [`Goal`]: how a stack is observed and planned, what is
//! checked before the first change, and what a plan made under the lease must still agree with.

pub mod deploy;
pub mod destroy;

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use fixedip_core::plan::{Plan, StackSpec, StepId};
use fixedip_core::requirements::StackName;

use crate::aws::execute::{self, Executed, Inputs, Progress};
use crate::aws::lease::{self, HeldLease, Lease, LeaseRecord, LeaseWait, Releasing};
use crate::aws::Aws;
use crate::commands::{Connections, Context};
use crate::error::CliError;
use crate::output::{counted, Output};

/// What deploy or destroy wants of a stack.
pub trait Goal {
    /// `deploy` or `destroy`: what the lease says the holder is doing.
    const COMMAND: &'static str;
    /// The progress word while the plan is carried out: `Deploying`, `Destroying`.
    const DOING: &'static str;
    /// What a stack with nothing to do is said to be: "the account already matches".
    const NOTHING_TO_DO: &'static str;

    /// Observes the stack and plans it. `first` is the plan made before the lease, whose notes
    /// are shown; the one under the lease is quiet.
    async fn plan(
        &self,
        context: &Context,
        aws: &Aws,
        spec: &StackSpec,
        first: bool,
    ) -> Result<Plan, CliError>;

    /// What is refused before any stack is changed, beyond the plan's own refusals.
    async fn check(&self, _aws: &Aws, _plan: &Plan) -> Result<(), CliError> {
        Ok(())
    }

    /// Whether the plan made under the lease may be carried out after `shown` was shown.
    fn still_agrees(&self, _shown: &Plan, _now: &Plan) -> Result<(), CliError> {
        Ok(())
    }

    /// Whether carrying out `plan` failed in a way a new plan routes around (an AZ that refused a
    /// subnet); then what to tell the user, and the goal has recorded what to avoid.
    fn plan_again_after(&self, _plan: &Plan, _error: &execute::ExecuteError) -> Option<String> {
        None
    }
}

/// How long to wait for another run's lease, and how often to look.
#[derive(Debug, Clone, Copy)]
pub struct LeaseOptions {
    pub timeout_s: u64,
    pub poll_s: f64,
}

/// Observes and plans every stack, each in the region it was connected to, and runs the goal's
/// checks: nothing is changed unless every plan is sound.
pub async fn plan_stacks<G: Goal>(
    context: &Context,
    connections: &Connections,
    specs: Vec<StackSpec>,
    goal: &G,
) -> Result<Vec<(StackSpec, Plan)>, CliError> {
    let mut planned = Vec::new();
    for spec in specs {
        let aws = connections.in_region(&spec.region);
        context.output.status(
            "Observing",
            format!("stack `{}` in {}", spec.stack, spec.region),
        );
        let plan = goal.plan(context, aws, &spec, true).await?;
        goal.check(aws, &plan).await?;
        planned.push((spec, plan));
    }
    Ok(planned)
}

/// Carries out the goal on one stack whose plan `shown` was made (and shown) before: under the
/// stack's lease, from the account as it is now. Returns the plan carried out, what it made, and
/// the lease's release under way: what the caller reads next needs no lease and overlaps it;
/// the caller must [`Releasing::finish`] it.
pub async fn apply<G: Goal>(
    context: &Context,
    aws: &Aws,
    spec: &StackSpec,
    shown: Plan,
    goal: &G,
    inputs: &Inputs,
    lease: LeaseOptions,
) -> Result<(Plan, Executed, Releasing), CliError> {
    let fresh = |plan: &Plan| {
        context.output.status(
            "Fresh",
            format!("stack `{}`: {}", plan.stack, G::NOTHING_TO_DO),
        )
    };
    if shown.is_noop() {
        fresh(&shown);
        return Ok((shown, Executed::default(), Releasing::none()));
    }
    // New code only: nothing the lease guards changes, and nothing a second observation would
    // plan differently (`Plan::changes_only_code`).
    if shown.changes_only_code() {
        let executed = carry_out::<G>(context, aws, spec, &shown, inputs).await?;
        return Ok((shown, executed, Releasing::none()));
    }
    let held = take_lease(context, aws, &spec.stack, G::COMMAND, lease).await?;
    let ((plan, executed), releasing) = held
        .run_releasing(async {
            loop {
                context.output.status(
                    "Planning",
                    format!("stack `{}` in {}", spec.stack, spec.region),
                );
                let plan = goal.plan(context, aws, spec, false).await?;
                goal.still_agrees(&shown, &plan)?;
                if plan.is_noop() {
                    fresh(&plan);
                    return Ok((plan, Executed::default()));
                }
                match carry_out::<G>(context, aws, spec, &plan, inputs).await {
                    Ok(executed) => return Ok::<_, CliError>((plan, executed)),
                    Err(error) => match goal.plan_again_after(&plan, &error) {
                        Some(why) => context.output.warning(why),
                        None => return Err(error.into()),
                    },
                }
            }
        })
        .await?;
    Ok((plan, executed, releasing))
}

/// Executes the plan with progress on stderr.
async fn carry_out<G: Goal>(
    context: &Context,
    aws: &Aws,
    spec: &StackSpec,
    plan: &Plan,
    inputs: &Inputs,
) -> Result<Executed, execute::ExecuteError> {
    context.output.status(
        G::DOING,
        format!(
            "stack `{}` in {}: {}",
            spec.stack,
            spec.region,
            counted(plan.steps.len(), "step")
        ),
    );
    let output = &context.output;
    let waited = Mutex::new(BTreeSet::new());
    let progress = |event: Progress<'_>| show_progress(output, plan, &waited, event);
    execute::execute(aws, plan, inputs, &progress).await
}

/// Takes the stack's lease before the first mutating call, waiting for another deploy or destroy
/// of the stack with progress on stderr (aws/lease.rs).
async fn take_lease(
    context: &Context,
    aws: &Aws,
    stack: &StackName,
    command: &str,
    options: LeaseOptions,
) -> Result<HeldLease, CliError> {
    context.output.verbose(format!(
        "taking the lease of stack `{stack}` ({})",
        lease::parameter_name(stack)
    ));
    let timeout_s = options.timeout_s;
    let wait = LeaseWait {
        timeout: Duration::from_secs(timeout_s),
        poll: Duration::from_secs_f64(options.poll_s.clamp(0.1, 30.0)),
    };
    let waiting = |holder: &LeaseRecord| {
        context.output.status(
            "Waiting",
            format!(
                "for stack `{stack}`: another run holds its lease ({}); waiting up to {timeout_s} s",
                holder.describe()
            ),
        )
    };
    Ok(Lease::new(aws, stack, command)
        .acquire(wait, waiting)
        .await?)
}

/// Progress on stderr: each step as it finishes, and what it waits for meanwhile, said once
/// (`waited`: what each step was already said to wait for), however often it polls.
fn show_progress(
    output: &Output,
    plan: &Plan,
    waited: &Mutex<BTreeSet<(StepId, &'static str)>>,
    event: Progress<'_>,
) {
    match event {
        Progress::Started(step) => {
            output.verbose(format!("started: {}", plan.describe(&step.action)))
        }
        Progress::Waiting { step, what } => {
            if waited.lock().expect("not poisoned").insert((step.id, what)) {
                output.status(
                    "Waiting",
                    format!("for {what} ({})", plan.describe(&step.action)),
                );
            }
        }
        Progress::Finished {
            step,
            created,
            elapsed,
        } => {
            let created = created.map(|id| format!(" → {id}")).unwrap_or_default();
            output.status(
                "Done",
                format!(
                    "{}{created} ({:.1} s)",
                    plan.describe(&step.action),
                    elapsed.as_secs_f64()
                ),
            );
        }
    }
}
