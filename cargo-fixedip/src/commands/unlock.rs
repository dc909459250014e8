//! `cargo fixedip unlock`: removes the stack's lease (aws/lease.rs) that a killed deploy or destroy
//! left behind, so that the next run need not wait for it to expire.

use std::fmt::{self, Display};

use fixedip_core::requirements::StackName;
use serde::Serialize;

use super::{async_runtime, Context};
use crate::aws::lease::{self, LeaseRecord};
use crate::aws::Aws;
use crate::cli::UnlockArgs;
use crate::error::CliError;

/// What unlock found and removed.
#[derive(Debug, Clone, Serialize)]
pub struct UnlockReport {
    pub stack: String,
    pub region: String,
    /// The SSM parameter that holds the lease.
    pub parameter: String,
    /// The lease that was removed; `None` when there was none.
    pub removed: Option<LeaseRecord>,
}

pub fn run(context: &Context, args: &UnlockArgs) -> Result<(), CliError> {
    let stack = StackName::parse(&args.stack).map_err(|error| CliError::BadStack {
        stack: args.stack.clone(),
        reason: error.to_string(),
    })?;
    let report = async_runtime()?.block_on(async {
        let aws = Aws::connect(&context.aws_options(None)).await?;
        let removed = lease::remove(&aws, &stack).await?;
        Ok::<_, CliError>(UnlockReport {
            stack: stack.to_string(),
            region: aws.region.clone(),
            parameter: lease::parameter_name(&stack),
            removed,
        })
    })?;
    context.output.result(&report).map_err(CliError::Stdout)
}

impl Display for UnlockReport {
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
