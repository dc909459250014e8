//! `cargo fixedip ips`: the stack's Elastic IPs, for allowlists. One DescribeAddresses call by tag.
//!
//! The plain and CIDR lists hold every IP the partner must allowlist: the active ones (traffic
//! leaves through them now), the pending ones (new, carrying traffic once the user runs `deploy
//! --allow-new-ips`) and the retained ones (kept by a smaller `azs` or a destroy, and put back to
//! work by the next deploy before anything new is allocated). Leaving any of these out of an
//! allowlist would break traffic later without warning. CSV and JSON tell them apart (`use`).
//!
//! An isolated stack (`nat = "none"`) has no egress IP: nothing of it leaves the VPC. When no
//! address carries traffic, `ips` observes the stack to tell an isolated stack (stderr says so,
//! stdout lists only IPs retained from an earlier mode, JSON has `"isolated": true`) from one
//! that is not deployed; a stack with an active or pending IP is not isolated, and costs the one
//! call.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use aws_sdk_ec2::types::Filter;
use fixedip_core::observed::AddressUse;
use fixedip_core::requirements::StackName;
use fixedip_core::tags::{self, Component};
use serde::Serialize;

use super::{async_runtime, Context};
use crate::aws::observe::{observe, Scope};
use crate::aws::{Aws, AwsError};
use crate::cli::{IpsArgs, IpsFormat};
use crate::error::CliError;

/// One of the stack's addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackAddress {
    pub ip: Ipv4Addr,
    pub allocation_id: String,
    /// Serves a NAT gateway of the stack (`fixedip:address=active`): `use` is `active`.
    pub active: bool,
    /// `active` (traffic leaves through it), `pending` (new, no traffic until `deploy
    /// --allow-new-ips`) or `retained` (kept, no traffic now, reused by the next deploy first).
    #[serde(rename = "use")]
    pub usage: AddressUse,
    /// The AZ slot it serves.
    pub slot: Option<u8>,
}

pub fn run(context: &Context, args: &IpsArgs) -> Result<(), CliError> {
    let stack = StackName::parse(&args.stack).map_err(|error| CliError::BadStack {
        stack: args.stack.clone(),
        reason: error.to_string(),
    })?;
    let (addresses, isolated) = async_runtime()?.block_on(async {
        let aws = Aws::connect_unverified(&context.aws_options(None)).await?;
        aws.calls.forbid_mutations();
        let addresses = stack_addresses(&aws, &stack).await?;
        let carrying = addresses.iter().any(|a| a.usage != AddressUse::Retained);
        let isolated = !carrying
            && observe(&aws, &Scope::stack(stack.clone()))
                .await?
                .looks_isolated();
        let counts = aws.calls.counts();
        context.output.verbose(format!(
            "{} AWS requests, {} mutating",
            counts.total, counts.mutating
        ));
        Ok::<_, CliError>((addresses, isolated))
    })?;
    if isolated {
        let kept = if addresses.is_empty() {
            String::new()
        } else {
            format!(
                "; the {} listed are retained from an earlier mode (still billed, reused first if the stack gets NATs again; `cargo fixedip destroy --release-ips` gives them back)",
                if addresses.len() == 1 { "IP" } else { "IPs" }
            )
        };
        context.output.note(format!(
            "stack `{stack}` is isolated (`nat = \"none\"`): nothing leaves its VPC, so it has no egress IP to allowlist{kept}"
        ));
    }
    let format = if context.global.json {
        IpsFormat::Json
    } else {
        args.format
    };
    context
        .output
        .text(&render(&addresses, isolated, format))
        .map_err(CliError::Stdout)
}

/// The stack's Elastic IPs, found by tag, active first then by slot.
pub async fn stack_addresses(aws: &Aws, stack: &StackName) -> Result<Vec<StackAddress>, AwsError> {
    let answer = aws
        .ec2
        .describe_addresses()
        .filters(
            Filter::builder()
                .name(format!("tag:{}", tags::STACK))
                .values(stack.as_str())
                .build(),
        )
        .filters(
            Filter::builder()
                .name(format!("tag:{}", tags::COMPONENT))
                .values(Component::Address.as_str())
                .build(),
        )
        .send()
        .await
        .map_err(|e| AwsError::first_call(&aws.region, "DescribeAddresses", e))?;
    let tag = |address: &aws_sdk_ec2::types::Address, key: &str| {
        address
            .tags()
            .iter()
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value())
            .map(str::to_owned)
    };
    let mut addresses: Vec<StackAddress> = answer
        .addresses()
        .iter()
        // Tag filters narrow the answer on AWS; checked here too, whatever the endpoint does.
        .filter(|a| tag(a, tags::STACK).as_deref() == Some(stack.as_str()))
        .filter_map(|a| {
            let usage = tag(a, tags::ADDRESS)
                .as_deref()
                .and_then(tags::parse_address_use)
                .unwrap_or(AddressUse::Retained);
            Some(StackAddress {
                ip: a.public_ip()?.parse().ok()?,
                allocation_id: a.allocation_id()?.to_owned(),
                active: usage == AddressUse::Active,
                usage,
                // A retained address serves no slot, whatever a tag left by a killed run says.
                slot: match usage {
                    AddressUse::Retained => None,
                    _ => tag(a, tags::SLOT).and_then(|s| s.parse().ok()),
                },
            })
        })
        .collect();
    let rank = |usage: AddressUse| match usage {
        AddressUse::Active => 0,
        AddressUse::Pending => 1,
        AddressUse::Retained => 2,
    };
    addresses.sort_by_key(|a| (rank(a.usage), a.slot, a.ip));
    if addresses.is_empty() {
        // A stack on a network the user runs holds no address: its functions leave through the
        // user's NATs, whose Elastic IPs are the ones to allowlist.
        let exits = crate::aws::existing::existing_stack_exits(aws, stack).await?;
        addresses = exits
            .into_iter()
            .map(StackAddress::of_existing_nat)
            .collect();
    }
    Ok(addresses)
}

impl StackAddress {
    /// An Elastic IP of a NAT of the user's network (`vpc = "vpc-..."`): active, no slot, never
    /// the stack's to keep or release.
    pub fn of_existing_nat(exit: fixedip_core::verify::EgressExit) -> StackAddress {
        StackAddress {
            ip: exit.ip,
            // A NAT instance's address is known by IP only; the NAT's id says where it is.
            allocation_id: exit.allocation_id.unwrap_or(exit.nat),
            active: true,
            usage: AddressUse::Active,
            slot: None,
        }
    }
}

fn use_name(usage: AddressUse) -> &'static str {
    match usage {
        AddressUse::Active => "active",
        AddressUse::Pending => "pending",
        AddressUse::Retained => "retained",
    }
}

fn render(addresses: &[StackAddress], isolated: bool, format: IpsFormat) -> String {
    let mut out = String::new();
    match format {
        IpsFormat::Plain => addresses.iter().for_each(|a| {
            let _ = writeln!(out, "{}", a.ip);
        }),
        IpsFormat::Cidr => addresses.iter().for_each(|a| {
            let _ = writeln!(out, "{}/32", a.ip);
        }),
        IpsFormat::Csv => {
            out.push_str("ip,allocation_id,use,slot\n");
            for a in addresses {
                let usage = use_name(a.usage);
                let slot = a.slot.map(|s| s.to_string()).unwrap_or_default();
                let _ = writeln!(out, "{},{},{usage},{slot}", a.ip, a.allocation_id);
            }
        }
        IpsFormat::Json => {
            let document = serde_json::json!({ "ips": addresses, "isolated": isolated });
            out = serde_json::to_string_pretty(&document).expect("plain data");
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_lists_every_address() {
        let addresses = [
            StackAddress {
                ip: Ipv4Addr::new(203, 0, 113, 7),
                allocation_id: "eipalloc-1".into(),
                active: true,
                usage: AddressUse::Active,
                slot: Some(0),
            },
            StackAddress {
                ip: Ipv4Addr::new(203, 0, 113, 9),
                allocation_id: "eipalloc-2".into(),
                active: false,
                usage: AddressUse::Retained,
                slot: None,
            },
            StackAddress {
                ip: Ipv4Addr::new(203, 0, 113, 8),
                allocation_id: "eipalloc-3".into(),
                active: false,
                usage: AddressUse::Pending,
                slot: Some(2),
            },
        ];
        assert_eq!(
            render(&addresses, false, IpsFormat::Plain),
            "203.0.113.7\n203.0.113.9\n203.0.113.8\n"
        );
        assert_eq!(
            render(&addresses, false, IpsFormat::Cidr),
            "203.0.113.7/32\n203.0.113.9/32\n203.0.113.8/32\n"
        );
        assert_eq!(
            render(&addresses, false, IpsFormat::Csv),
            "ip,allocation_id,use,slot\n203.0.113.7,eipalloc-1,active,0\n203.0.113.9,eipalloc-2,retained,\n203.0.113.8,eipalloc-3,pending,2\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render(&addresses, false, IpsFormat::Json)).unwrap();
        assert_eq!(json["ips"][1]["allocation_id"], "eipalloc-2");
        assert_eq!(json["ips"][1]["use"], "retained");
        assert_eq!(json["ips"][2]["use"], "pending");
        assert_eq!(json["isolated"], false);
    }

    #[test]
    fn an_isolated_stack_lists_nothing() {
        for format in [IpsFormat::Plain, IpsFormat::Cidr] {
            assert_eq!(render(&[], true, format), "");
        }
        let json: serde_json::Value =
            serde_json::from_str(&render(&[], true, IpsFormat::Json)).unwrap();
        assert_eq!(json, serde_json::json!({ "ips": [], "isolated": true }));
    }
}
