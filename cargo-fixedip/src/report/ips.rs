//! `ips`: every Elastic IP of every stack the command acts on, for allowlists: one address a line
//! (the text), `/32` CIDRs, CSV, or JSON.

use std::fmt::{self, Display, Write as _};

use serde::Serialize;

use super::{FormatVersion, Ip};

/// The IPs of every stack the command acts on.
#[derive(Debug, Clone, Serialize)]
pub struct IpsReport {
    pub format_version: FormatVersion,
    /// Every address of every stack, each naming its stack and region.
    pub ips: Vec<ListedIp>,
    pub stacks: Vec<StackIps>,
}

/// One stack in one region.
#[derive(Debug, Clone, Serialize)]
pub struct StackIps {
    pub stack: String,
    pub region: String,
    /// `nat = "none"`: nothing leaves the VPC; the stack has no egress IP to allowlist.
    pub isolated: bool,
}

/// An address, with the stack and region it belongs to.
#[derive(Debug, Clone, Serialize)]
pub struct ListedIp {
    #[serde(flatten)]
    pub address: Ip,
    pub stack: String,
    pub region: String,
}

impl IpsReport {
    /// `a.b.c.d/32` a line, for firewall rules.
    pub fn cidr(&self) -> String {
        let mut out = String::new();
        for listed in &self.ips {
            let _ = writeln!(out, "{}/32", listed.address.ip);
        }
        out
    }

    /// `ip,allocation_id,use,slot,stack,region` with a header.
    pub fn csv(&self) -> String {
        let mut out = String::from("ip,allocation_id,use,slot,stack,region\n");
        for ListedIp {
            address,
            stack,
            region,
        } in &self.ips
        {
            let slot = address.slot.map(|s| s.to_string()).unwrap_or_default();
            let _ = writeln!(
                out,
                "{},{},{},{slot},{stack},{region}",
                address.ip,
                address.allocation_id,
                address.usage.as_str()
            );
        }
        out
    }
}

/// One address a line, every stack's: what a partner's allowlist needs.
impl Display for IpsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.ips
            .iter()
            .try_for_each(|listed| writeln!(f, "{}", listed.address.ip))
    }
}
