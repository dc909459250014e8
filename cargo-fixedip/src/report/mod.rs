//! What each command prints: one type per command, serialized for `--json` and displayed for the
//! text, so that the two never disagree (docs/cli.md documents both).
//!
//! These types are built from the core's and the AWS side's types but are none of them: renaming
//! a planner field cannot change a JSON document. Every document starts with
//! `"format_version"`: [`FORMAT_VERSION`], raised when a field a script reads is renamed,
//! removed or changes meaning (adding a field does not raise it).

pub mod cost;
pub mod deploy;
pub mod destroy;
pub mod ips;
pub mod plan;
pub mod status;
pub mod unlock;
pub mod verify;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use fixedip_core::cost::Usd;
use fixedip_core::observed::AddressUse;
use fixedip_core::plan::{Plan, Ref};
use serde::{Serialize, Serializer};

use crate::aws::addresses::StackAddress;

/// The version of every JSON document the commands print.
pub const FORMAT_VERSION: u32 = 1;

/// `"format_version": 1`, the first field of every report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FormatVersion;

impl Serialize for FormatVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(FORMAT_VERSION)
    }
}

/// One Elastic IP of a stack, as `ips`, `deploy` and `destroy` list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ip {
    pub ip: Ipv4Addr,
    pub allocation_id: String,
    /// `use` is `active`: traffic leaves through it now.
    pub active: bool,
    #[serde(rename = "use")]
    pub usage: IpUse,
    /// The AZ slot it serves; `None` for a retained address, or a NAT of a network the user runs.
    pub slot: Option<u8>,
}

/// What an Elastic IP is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IpUse {
    /// A NAT of the stack uses it: traffic leaves through it now.
    Active,
    /// New, shown, carrying traffic once `deploy --allow-new-ips` runs.
    Pending,
    /// Kept by a smaller `azs` or by `destroy`; the next deploy puts it back to work first.
    Retained,
}

impl IpUse {
    pub fn as_str(self) -> &'static str {
        match self {
            IpUse::Active => "active",
            IpUse::Pending => "pending",
            IpUse::Retained => "retained",
        }
    }
}

impl From<AddressUse> for IpUse {
    fn from(usage: AddressUse) -> IpUse {
        match usage {
            AddressUse::Active => IpUse::Active,
            AddressUse::Pending => IpUse::Pending,
            AddressUse::Retained => IpUse::Retained,
        }
    }
}

impl From<&StackAddress> for Ip {
    fn from(address: &StackAddress) -> Ip {
        let usage = IpUse::from(address.usage);
        Ip {
            ip: address.ip,
            allocation_id: address.allocation_id.clone(),
            active: usage == IpUse::Active,
            usage,
            slot: address.slot,
        }
    }
}

/// AWS requests made for a stack, all and mutating.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Calls {
    pub total: usize,
    pub mutating: usize,
}

/// An amount in dollars, as a JSON number (`73.0`).
fn dollars<S: Serializer>(amount: &Usd, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(amount.dollars())
}

fn optional_dollars<S: Serializer>(amount: &Option<Usd>, serializer: S) -> Result<S::Ok, S::Error> {
    match amount {
        Some(amount) => serializer.serialize_f64(amount.dollars()),
        None => serializer.serialize_none(),
    }
}

/// A new Elastic IP that carries no traffic until `deploy --allow-new-ips` (the stack's IPs were
/// shown already, so a new one must reach the partner's allowlist first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingIp {
    pub slot: u8,
    pub az: String,
    /// Known once allocated.
    pub ip: Option<Ipv4Addr>,
    /// Known once allocated.
    pub allocation_id: Option<String>,
    /// What to do about it, as printed.
    pub message: String,
}

impl PendingIp {
    /// The plan's held-back IPs, with the addresses a run allocated for them (allocation id and
    /// IP by slot; empty before a run).
    pub fn of_plan(plan: &Plan, allocated: &BTreeMap<u8, (String, String)>) -> Vec<PendingIp> {
        plan.pending_new_ips
            .iter()
            .map(|pending| {
                let mut pending = pending.clone();
                let allocation_id = match &pending.address {
                    Ref::Existing(id) => Some(id.clone()),
                    Ref::Step(_) => allocated.get(&pending.slot).map(|(id, ip)| {
                        pending.public_ip = pending.public_ip.or(ip.parse().ok());
                        id.clone()
                    }),
                };
                PendingIp {
                    slot: pending.slot,
                    az: pending.az.clone(),
                    ip: pending.public_ip,
                    allocation_id,
                    message: pending.to_string(),
                }
            })
            .collect()
    }
}
