//! `destroy`: what it would remove (`--dry-run`, and what it shows before it asks), and what it
//! removed, released and kept.

use std::fmt::{self, Display};
use std::net::Ipv4Addr;

use fixedip_core::plan::{Action, Plan};
use serde::Serialize;

use super::plan::steps;
use super::{Calls, FormatVersion, Ip};
use crate::output::{counted, style, styled};
use crate::render::graph::NetworkGraph;
use crate::render::tree::tree;

/// What a destroy would remove, per stack.
#[derive(Debug, Clone, Serialize)]
pub struct DestroyPreview {
    pub format_version: FormatVersion,
    pub stacks: Vec<StackTeardown>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StackTeardown {
    pub stack: String,
    pub region: String,
    /// The stack's network, each resource marked with what the teardown does to it.
    pub network: NetworkGraph,
    /// What the teardown does, one line per step.
    pub steps: Vec<String>,
    pub notes: Vec<String>,
    /// Functions that stay but leave the VPC: their traffic no longer leaves from the stack's IPs.
    pub functions_leaving_vpc: Vec<String>,
    /// Functions deleted (`--delete-function`).
    pub functions_deleted: Vec<String>,
    /// Elastic IPs kept (retained, still billed; the next deploy uses them again).
    pub retained_ips: Vec<AddressId>,
    /// Elastic IPs released (`--release-ips`): to be taken off the partner's allowlist.
    pub released_ips: Vec<AddressId>,
}

/// An Elastic IP and its allocation id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddressId {
    pub ip: Ipv4Addr,
    pub allocation_id: String,
}

impl AddressId {
    fn list(addresses: &[(String, Ipv4Addr)]) -> Vec<AddressId> {
        addresses
            .iter()
            .map(|(allocation_id, ip)| AddressId {
                ip: *ip,
                allocation_id: allocation_id.clone(),
            })
            .collect()
    }
}

impl StackTeardown {
    pub fn of(plan: &Plan) -> StackTeardown {
        let named = |pick: fn(&Action) -> Option<&String>| {
            plan.steps
                .iter()
                .filter_map(|step| pick(&step.action).cloned())
                .collect()
        };
        StackTeardown {
            stack: plan.stack.to_string(),
            region: plan.region.clone(),
            network: NetworkGraph::of(plan),
            steps: steps(plan),
            notes: plan.notes.clone(),
            functions_leaving_vpc: named(|action| match action {
                Action::DetachFunction { name } => Some(name),
                _ => None,
            }),
            functions_deleted: named(|action| match action {
                Action::DeleteFunction { name } => Some(name),
                _ => None,
            }),
            retained_ips: AddressId::list(&plan.network.retained_addresses),
            released_ips: AddressId::list(&plan.network.released_addresses),
        }
    }
}

impl Display for DestroyPreview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for stack in &self.stacks {
            writeln!(
                f,
                "{} in {}: {}",
                styled(style::HEADER, format_args!("Stack `{}`", stack.stack)),
                stack.region,
                match stack.steps.len() {
                    0 => "nothing to remove".to_owned(),
                    n => counted(n, "step"),
                }
            )?;
            if stack.steps.is_empty() {
                continue;
            }
            writeln!(f)?;
            f.write_str(&tree(&stack.network))?;
            writeln!(f)?;
            for name in &stack.functions_deleted {
                writeln!(f, "  function {name} is deleted")?;
            }
            for name in &stack.functions_leaving_vpc {
                writeln!(
                    f,
                    "  function {name} leaves the VPC: its traffic no longer comes from the stack's IPs"
                )?;
            }
            for AddressId { ip, allocation_id } in &stack.retained_ips {
                writeln!(
                    f,
                    "  Elastic IP {} ({allocation_id}) is kept (retained, still billed; the next deploy uses it again)",
                    styled(style::VALUE, ip)
                )?;
            }
            for AddressId { ip, allocation_id } in &stack.released_ips {
                writeln!(
                    f,
                    "  Elastic IP {} ({allocation_id}) is RELEASED: take it off the partner's allowlist",
                    styled(style::VALUE, ip)
                )?;
            }
            for note in &stack.notes {
                writeln!(f, "{}: {note}", styled(style::WARNING, "note"))?;
            }
        }
        Ok(())
    }
}

/// What destroy did, per stack.
#[derive(Debug, Clone, Serialize)]
pub struct DestroyReport {
    pub format_version: FormatVersion,
    pub stacks: Vec<StackDestroyed>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StackDestroyed {
    pub stack: String,
    pub region: String,
    /// What was removed or changed, one line per step, in the order it was planned.
    pub removed: Vec<String>,
    /// Released Elastic IPs: no longer the account's, to be taken off the partner's allowlist.
    pub released_ips: Vec<AddressId>,
    /// The Elastic IPs the stack still holds (retained, or adopted): billed, and put back to work
    /// by the next deploy of the stack.
    pub kept_ips: Vec<Ip>,
    /// AWS requests made for this stack.
    pub calls: Calls,
}

impl Display for DestroyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for stack in &self.stacks {
            writeln!(
                f,
                "{} in {}: {}",
                styled(style::HEADER, format_args!("Stack `{}`", stack.stack)),
                stack.region,
                if stack.removed.is_empty() {
                    "nothing was left to remove".to_owned()
                } else {
                    format!("{} carried out", counted(stack.removed.len(), "step"))
                }
            )?;
            for line in &stack.removed {
                writeln!(f, "  {line}")?;
            }
            if !stack.released_ips.is_empty() {
                writeln!(f, "Released (take them off the partner's allowlist):")?;
                for released in &stack.released_ips {
                    writeln!(f, "  {}", styled(style::VALUE, released.ip))?;
                }
            }
            if !stack.kept_ips.is_empty() {
                writeln!(
                    f,
                    "Kept (still allocated and billed; the next deploy of the stack uses them again):"
                )?;
                for kept in &stack.kept_ips {
                    writeln!(f, "  {}", styled(style::VALUE, kept.ip))?;
                }
            }
        }
        Ok(())
    }
}

impl StackDestroyed {
    /// What a destroy of `plan` did, with the addresses the stack holds afterwards.
    pub fn of(plan: &Plan, kept_ips: Vec<Ip>, calls: Calls) -> StackDestroyed {
        StackDestroyed {
            stack: plan.stack.to_string(),
            region: plan.region.clone(),
            removed: steps(plan),
            released_ips: AddressId::list(&plan.network.released_addresses),
            kept_ips,
            calls,
        }
    }
}
