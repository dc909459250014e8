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

use super::{async_runtime, Connections, Context, Identity};
use crate::aws::observe::{observe, Scope};
use crate::aws::{Aws, AwsError};
use crate::cli::{IpsArgs, IpsFormat};
use crate::error::CliError;
use crate::output::counted;

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

/// The IPs of every stack the command acts on.
#[derive(Debug, Clone, Serialize)]
pub struct IpsReport {
    /// Every address of every stack, each naming its stack and region.
    pub ips: Vec<ListedAddress>,
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
pub struct ListedAddress {
    #[serde(flatten)]
    pub address: StackAddress,
    pub stack: String,
    pub region: String,
}

pub fn run(context: &Context, args: &IpsArgs) -> Result<(), CliError> {
    let targets = context.stack_targets(args.stack.as_deref(), &Default::default())?;
    let report = async_runtime()?.block_on(async {
        let mut connections = Connections::default();
        let mut report = IpsReport {
            ips: Vec::new(),
            stacks: Vec::new(),
        };
        let mut missing = Vec::new();
        for target in &targets {
            // One call for a stack with an IP carrying traffic: no STS round trip first.
            let aws = connections
                .to(context, &target.region, Identity::Unchecked, true)
                .await?;
            let stack = &target.stack;
            let addresses = stack_addresses(aws, stack).await?;
            let carrying = addresses.iter().any(|a| a.usage != AddressUse::Retained);
            let isolated = if carrying {
                false
            } else {
                let observed = observe(aws, &Scope::stack(stack.clone())).await?;
                if observed.holds_nothing() && addresses.is_empty() {
                    missing.push((stack.to_string(), aws.region.clone()));
                    continue;
                }
                observed.looks_isolated()
            };
            if isolated {
                note_isolated(context, stack, &aws.region, addresses.len());
            }
            if targets.len() > 1 {
                context.output.status(
                    "Listing",
                    format!(
                        "stack `{stack}` in {}: {}",
                        aws.region,
                        counted(addresses.len(), "IP")
                    ),
                );
            }
            let counts = aws.calls.counts();
            context.output.verbose(format!(
                "{} AWS requests, {} mutating",
                counts.total, counts.mutating
            ));
            report
                .ips
                .extend(addresses.into_iter().map(|address| ListedAddress {
                    address,
                    stack: stack.to_string(),
                    region: aws.region.clone(),
                }));
            report.stacks.push(StackIps {
                stack: stack.to_string(),
                region: aws.region.clone(),
                isolated,
            });
        }
        Ok::<_, CliError>((report, missing))
    })?;
    let (mut report, missing) = report;
    // By stack, then region: the order of the account, not of the resolution.
    report
        .stacks
        .sort_by(|a, b| (&a.stack, &a.region).cmp(&(&b.stack, &b.region)));
    report
        .ips
        .sort_by(|a, b| (&a.stack, &a.region).cmp(&(&b.stack, &b.region)));
    let format = if context.global.json {
        IpsFormat::Json
    } else {
        args.format
    };
    // What was found is printed either way; a stack with nothing fails the command after it.
    if !report.stacks.is_empty() {
        context
            .output
            .text(&render(&report, format))
            .map_err(CliError::Stdout)?;
    }
    match missing.into_iter().next() {
        Some((stack, region)) => Err(CliError::NotDeployed { stack, region }),
        None => Ok(()),
    }
}

fn note_isolated(context: &Context, stack: &StackName, region: &str, retained: usize) {
    let kept = if retained == 0 {
        String::new()
    } else {
        format!(
            "; the {} listed are retained from an earlier mode (still billed, reused first if the stack gets NATs again; `cargo fixedip destroy --release-ips` gives them back)",
            if retained == 1 { "IP" } else { "IPs" }
        )
    };
    context.output.note(format!(
        "stack `{stack}` in {region} is isolated (`nat = \"none\"`): nothing leaves its VPC, so it has no egress IP to allowlist{kept}"
    ));
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

fn render(report: &IpsReport, format: IpsFormat) -> String {
    let mut out = String::new();
    let addresses = report.ips.iter();
    match format {
        IpsFormat::Plain => addresses.for_each(|a| {
            let _ = writeln!(out, "{}", a.address.ip);
        }),
        IpsFormat::Cidr => addresses.for_each(|a| {
            let _ = writeln!(out, "{}/32", a.address.ip);
        }),
        IpsFormat::Csv => {
            out.push_str("ip,allocation_id,use,slot,stack,region\n");
            for ListedAddress {
                address: a,
                stack,
                region,
            } in addresses
            {
                let usage = use_name(a.usage);
                let slot = a.slot.map(|s| s.to_string()).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{},{},{usage},{slot},{stack},{region}",
                    a.ip, a.allocation_id
                );
            }
        }
        IpsFormat::Json => {
            out = serde_json::to_string_pretty(report).expect("plain data");
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(
        stack: &str,
        ip: [u8; 4],
        id: &str,
        usage: AddressUse,
        slot: Option<u8>,
    ) -> ListedAddress {
        ListedAddress {
            address: StackAddress {
                ip: Ipv4Addr::from(ip),
                allocation_id: id.into(),
                active: usage == AddressUse::Active,
                usage,
                slot,
            },
            stack: stack.into(),
            region: "us-east-1".into(),
        }
    }

    fn stack(name: &str, isolated: bool) -> StackIps {
        StackIps {
            stack: name.into(),
            region: "us-east-1".into(),
            isolated,
        }
    }

    #[test]
    fn every_format_lists_every_address() {
        let report = IpsReport {
            ips: vec![
                listed(
                    "default",
                    [203, 0, 113, 7],
                    "eipalloc-1",
                    AddressUse::Active,
                    Some(0),
                ),
                listed(
                    "default",
                    [203, 0, 113, 9],
                    "eipalloc-2",
                    AddressUse::Retained,
                    None,
                ),
                listed(
                    "default",
                    [203, 0, 113, 8],
                    "eipalloc-3",
                    AddressUse::Pending,
                    Some(2),
                ),
                listed(
                    "billing",
                    [198, 51, 100, 1],
                    "eipalloc-4",
                    AddressUse::Active,
                    Some(0),
                ),
            ],
            stacks: vec![stack("default", false), stack("billing", false)],
        };
        assert_eq!(
            render(&report, IpsFormat::Plain),
            "203.0.113.7\n203.0.113.9\n203.0.113.8\n198.51.100.1\n"
        );
        assert_eq!(
            render(&report, IpsFormat::Cidr),
            "203.0.113.7/32\n203.0.113.9/32\n203.0.113.8/32\n198.51.100.1/32\n"
        );
        assert_eq!(
            render(&report, IpsFormat::Csv),
            "ip,allocation_id,use,slot,stack,region\n\
             203.0.113.7,eipalloc-1,active,0,default,us-east-1\n\
             203.0.113.9,eipalloc-2,retained,,default,us-east-1\n\
             203.0.113.8,eipalloc-3,pending,2,default,us-east-1\n\
             198.51.100.1,eipalloc-4,active,0,billing,us-east-1\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render(&report, IpsFormat::Json)).unwrap();
        assert_eq!(json["ips"][1]["allocation_id"], "eipalloc-2");
        assert_eq!(json["ips"][1]["use"], "retained");
        assert_eq!(json["ips"][2]["use"], "pending");
        assert_eq!(json["ips"][3]["stack"], "billing");
        assert_eq!(json["ips"][3]["region"], "us-east-1");
        assert_eq!(json["stacks"][1]["stack"], "billing");
        assert_eq!(json["stacks"][0]["isolated"], false);
    }

    #[test]
    fn an_isolated_stack_lists_nothing() {
        let report = IpsReport {
            ips: Vec::new(),
            stacks: vec![stack("default", true)],
        };
        for format in [IpsFormat::Plain, IpsFormat::Cidr] {
            assert_eq!(render(&report, format), "");
        }
        let json: serde_json::Value =
            serde_json::from_str(&render(&report, IpsFormat::Json)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "ips": [],
                "stacks": [{ "stack": "default", "region": "us-east-1", "isolated": true }]
            })
        );
    }
}
