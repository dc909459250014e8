//! `cargo fixedip ips`: the stack's Elastic IPs, for allowlists. One DescribeAddresses call by tag.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use aws_sdk_ec2::types::Filter;
use fixedip_core::requirements::StackName;
use fixedip_core::tags::{self, Component};
use serde::Serialize;

use super::{async_runtime, Context};
use crate::aws::{Aws, AwsError};
use crate::cli::{IpsArgs, IpsFormat};
use crate::error::CliError;

/// One of the stack's addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackAddress {
    pub ip: Ipv4Addr,
    pub allocation_id: String,
    /// Serves a NAT gateway of the stack (`fixedip:address=active`); otherwise kept, unused.
    pub active: bool,
    /// The AZ slot it serves.
    pub slot: Option<u8>,
}

pub fn run(context: &Context, args: &IpsArgs) -> Result<(), CliError> {
    let stack = StackName::parse(&args.stack).map_err(|error| CliError::BadStack {
        stack: args.stack.clone(),
        reason: error.to_string(),
    })?;
    let addresses = async_runtime()?.block_on(async {
        let aws = Aws::connect_unverified(&context.aws_options(None)).await?;
        aws.calls.forbid_mutations();
        let addresses = stack_addresses(&aws, &stack).await;
        let counts = aws.calls.counts();
        context.output.verbose(format!(
            "{} AWS requests, {} mutating",
            counts.total, counts.mutating
        ));
        addresses
    })?;
    let format = if context.global.json {
        IpsFormat::Json
    } else {
        args.format
    };
    context
        .output
        .text(&render(&addresses, format))
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
            Some(StackAddress {
                ip: a.public_ip()?.parse().ok()?,
                allocation_id: a.allocation_id()?.to_owned(),
                active: tag(a, tags::ADDRESS).as_deref() == Some("active"),
                slot: tag(a, tags::SLOT).and_then(|s| s.parse().ok()),
            })
        })
        .collect();
    addresses.sort_by_key(|a| (!a.active, a.slot, a.ip));
    Ok(addresses)
}

fn render(addresses: &[StackAddress], format: IpsFormat) -> String {
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
                let usage = if a.active { "active" } else { "retained" };
                let slot = a.slot.map(|s| s.to_string()).unwrap_or_default();
                let _ = writeln!(out, "{},{},{usage},{slot}", a.ip, a.allocation_id);
            }
        }
        IpsFormat::Json => {
            out = serde_json::to_string_pretty(&serde_json::json!({ "ips": addresses }))
                .expect("plain data");
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
                slot: Some(0),
            },
            StackAddress {
                ip: Ipv4Addr::new(203, 0, 113, 9),
                allocation_id: "eipalloc-2".into(),
                active: false,
                slot: None,
            },
        ];
        assert_eq!(
            render(&addresses, IpsFormat::Plain),
            "203.0.113.7\n203.0.113.9\n"
        );
        assert_eq!(
            render(&addresses, IpsFormat::Cidr),
            "203.0.113.7/32\n203.0.113.9/32\n"
        );
        assert_eq!(
            render(&addresses, IpsFormat::Csv),
            "ip,allocation_id,use,slot\n203.0.113.7,eipalloc-1,active,0\n203.0.113.9,eipalloc-2,retained,\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render(&addresses, IpsFormat::Json)).unwrap();
        assert_eq!(json["ips"][1]["allocation_id"], "eipalloc-2");
    }
}
