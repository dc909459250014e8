//! `unlock`: per stack, the lease that was removed, if there was one.

use std::fmt::{self, Display};

use serde::Serialize;

use super::FormatVersion;
use crate::aws::lease::LeaseRecord;

/// What unlock found and removed, per stack.
#[derive(Debug, Clone, Serialize)]
pub struct UnlockReport {
    pub format_version: FormatVersion,
    pub stacks: Vec<StackUnlocked>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StackUnlocked {
    pub stack: String,
    pub region: String,
    /// The SSM parameter that holds the lease.
    pub parameter: String,
    /// The lease that was removed; `None` when there was none.
    pub removed: Option<RemovedLease>,
}

/// Who held a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemovedLease {
    /// `host:pid:random`: unique per run.
    pub holder: String,
    /// `deploy` or `destroy`.
    pub command: String,
    /// Unix seconds.
    pub started: u64,
    /// Unix seconds.
    pub expires: u64,
    /// As the text says it: who, doing what, since and until when.
    #[serde(skip)]
    pub described: String,
}

impl From<&LeaseRecord> for RemovedLease {
    fn from(record: &LeaseRecord) -> RemovedLease {
        RemovedLease {
            holder: record.holder.clone(),
            command: record.command.clone(),
            started: record.started,
            expires: record.expires,
            described: record.describe(),
        }
    }
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
            Some(lease) => writeln!(
                f,
                "Removed the lease of stack `{}` in {} ({}): {}",
                self.stack, self.region, self.parameter, lease.described
            ),
            None => writeln!(
                f,
                "Stack `{}` in {} has no lease ({}): nothing to remove",
                self.stack, self.region, self.parameter
            ),
        }
    }
}
