//! `deploy`: per stack, the IPs to allowlist, the new ones held back, the calls made, and the
//! check of every deployed function's egress.

use std::fmt::{self, Display};

use serde::Serialize;

use super::verify::FunctionVerdict;
use super::{Calls, FormatVersion, Ip, IpUse, PendingIp};
use crate::output::{style, styled};

/// What deploy did, per stack.
#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
    pub format_version: FormatVersion,
    pub stacks: Vec<StackDeployed>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StackDeployed {
    pub stack: String,
    pub region: String,
    pub functions: Vec<String>,
    /// How many steps the plan had (0: the account already matched).
    pub steps: usize,
    /// `nat = "none"`: nothing leaves the VPC, there is no egress IP to allowlist.
    pub isolated: bool,
    /// The stack's Elastic IPs after the deploy: what the partner allowlists.
    pub ips: Vec<Ip>,
    /// New Elastic IPs that carry no traffic until `deploy --allow-new-ips`.
    pub pending_ips: Vec<PendingIp>,
    /// AWS requests made for this stack.
    pub calls: Calls,
    /// `verify` of each function, run on the deployed network.
    pub verification: Vec<FunctionVerdict>,
}

impl DeployReport {
    /// Every IP held back, by address (or allocation id while it has none).
    pub fn held_back(&self) -> Vec<String> {
        self.stacks
            .iter()
            .flat_map(|s| &s.pending_ips)
            .map(|p| match (p.ip, &p.allocation_id) {
                (Some(ip), _) => ip.to_string(),
                (None, Some(id)) => id.clone(),
                (None, None) => format!("a new IP for {}", p.az),
            })
            .collect()
    }
}

impl Display for DeployReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for stack in &self.stacks {
            writeln!(
                f,
                "{} in {}: {}",
                styled(style::HEADER, format_args!("Stack `{}`", stack.stack)),
                stack.region,
                stack.functions.join(", ")
            )?;
            if stack.isolated {
                writeln!(
                    f,
                    "Isolated (nat = \"none\"): nothing leaves the VPC, there is no egress IP"
                )?;
            } else {
                writeln!(f, "Fixed egress IPs (for the partner's allowlist):")?;
            }
            for address in stack.ips.iter().filter(|a| a.usage == IpUse::Active) {
                writeln!(f, "  {}", styled(style::VALUE, address.ip))?;
            }
            let retained: Vec<_> = stack
                .ips
                .iter()
                .filter(|a| a.usage == IpUse::Retained)
                .collect();
            if !retained.is_empty() {
                writeln!(f, "Kept, carrying no traffic now (keep them allowlisted: a later deploy reuses them first):")?;
                for address in retained {
                    writeln!(f, "  {}", styled(style::VALUE, address.ip))?;
                }
            }
            if !stack.pending_ips.is_empty() {
                writeln!(
                    f,
                    "New, held back until `cargo fixedip deploy --allow-new-ips`:"
                )?;
                for pending in &stack.pending_ips {
                    writeln!(f, "  {}", pending.message)?;
                }
            }
            for verdict in stack
                .verification
                .iter()
                .filter(|v| !v.passed || !v.findings.is_empty())
            {
                write!(f, "{verdict}")?;
            }
        }
        Ok(())
    }
}
