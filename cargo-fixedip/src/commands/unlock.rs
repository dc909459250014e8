//! `cargo fixedip unlock`: removes the stack's lease (aws/lease.rs) that a killed deploy or destroy
//! left behind, so that the next run need not wait for it to expire.

use super::{async_runtime, Connections, Context, Identity};
use crate::aws::lease;
use crate::cli::UnlockArgs;
use crate::error::CliError;
use crate::report::unlock::{RemovedLease, StackUnlocked, UnlockReport};
use crate::report::FormatVersion;

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
                removed: removed.as_ref().map(RemovedLease::from),
            });
        }
        Ok::<_, CliError>(UnlockReport {
            format_version: FormatVersion,
            stacks,
        })
    })?;
    context.output.result(&report).map_err(CliError::Stdout)
}
