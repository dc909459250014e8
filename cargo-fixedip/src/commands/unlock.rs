//! `cargo fixedip unlock`: removes the stack's lease (aws/lease.rs) that a killed deploy or destroy
//! left behind, so that the next run need not wait for it to expire.

use std::fmt::{self, Display};

use serde::Serialize;

use super::{async_runtime, Connections, Context, Identity};
use crate::aws::lease::{self, LeaseRecord};
use crate::cli::UnlockArgs;
use crate::error::CliError;

/// What unlock found and removed, per stack.
#[derive(Debug, Clone, Serialize)]
pub struct UnlockReport {
    pub stacks: Vec<StackUnlocked>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StackUnlocked {
    pub stack: String,
    pub region: String,
    /// The SSM parameter that holds the lease.
    pub parameter: String,
    /// The lease that was removed; `None` when there was none.
    pub removed: Option<LeaseRecord>,
}

pub fn run(context: &Context, args: &UnlockArgs) -> Result<(), CliError> {
    let targets = context.stack_targets(args.stack.as_deref(), &Default::default())?;
    let report = async_runtime()?.block_on(async {
        let mut connections = Connections::default();
        let mut stacks = Vec::new();
        for target in &targets {
            let aws = connections
                .to(context, &target.region, Identity::Checked, false)
                .await?;
            let removed = lease::remove(aws, &target.stack).await?;
            stacks.push(StackUnlocked {
                stack: target.stack.to_string(),
                region: aws.region.clone(),
                parameter: lease::parameter_name(&target.stack),
                removed,
            });
        }
        Ok::<_, CliError>(UnlockReport { stacks })
    })?;
    context.output.result(&report).map_err(CliError::Stdout)
}

impl Display for UnlockReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.stacks
            .iter()
            .try_for_each(|stack| write!(f, "{stack}"))
    }
}

impl Display for StackUnlocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.removed {
            Some(record) => writeln!(
                f,
                "Removed the lease of stack `{}` in {} ({}): {}",
                self.stack,
                self.region,
                self.parameter,
                record.describe()
            ),
            None => writeln!(
                f,
                "Stack `{}` in {} has no lease ({}): nothing to remove",
                self.stack, self.region, self.parameter
            ),
        }
    }
}
