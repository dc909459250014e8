//! The stack's Elastic IPs, found by tag with one DescribeAddresses call: what `ips` lists, what
//! `verify` allows, what `deploy` and `destroy` report. Faster than observing the whole stack,
//! which `ips` needs only when no address carries traffic.

use std::net::Ipv4Addr;

use aws_sdk_ec2::types::Filter;
use fixedip_core::network::Address;
use fixedip_core::observed::AddressUse;
use fixedip_core::requirements::StackName;
use fixedip_core::tags::{self, Component};
use fixedip_core::verify::EgressExit;

use super::{Aws, AwsError};

/// One of the stack's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackAddress {
    pub ip: Ipv4Addr,
    pub allocation_id: String,
    /// `Active` (traffic leaves through it), `Pending` (new, no traffic until `deploy
    /// --allow-new-ips`) or `Retained` (kept, no traffic now, reused by the next deploy first).
    pub usage: AddressUse,
    /// The AZ slot it serves.
    pub slot: Option<u8>,
}

impl StackAddress {
    /// An Elastic IP of a NAT of the user's network (`vpc = "vpc-..."`): active, no slot, never
    /// the stack's to keep or release.
    pub fn of_existing_nat(exit: EgressExit) -> StackAddress {
        StackAddress {
            ip: exit.ip,
            // A NAT instance's address is known by IP only; the NAT's id says where it is.
            allocation_id: exit.allocation_id.unwrap_or(exit.nat),
            usage: AddressUse::Active,
            slot: None,
        }
    }
}

/// The stack's Elastic IPs, found by tag, active first then by slot. A stack on a network the
/// user runs holds none: its functions leave through the user's NATs, whose Elastic IPs are
/// returned instead.
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
    let answered: Vec<Address> = answer
        .addresses()
        .iter()
        .filter_map(super::network::from_sdk::address)
        .collect();
    let mut addresses = of_stack(stack, &answered);
    if addresses.is_empty() {
        let exits = super::existing::existing_stack_exits(aws, stack).await?;
        addresses = exits
            .into_iter()
            .map(StackAddress::of_existing_nat)
            .collect();
    }
    Ok(addresses)
}

/// The stack's addresses among `addresses` (read by its tags: a DescribeAddresses, or a deploy's
/// observation), active first, then pending, then retained, each by slot and IP.
pub fn of_stack(stack: &StackName, addresses: &[Address]) -> Vec<StackAddress> {
    let tag = |address: &Address, key: &str| address.tags.get(key).cloned();
    let mut listed: Vec<StackAddress> = addresses
        .iter()
        // Tag filters narrow the answer on AWS; checked here too, whatever the endpoint does.
        .filter(|a| tag(a, tags::STACK).as_deref() == Some(stack.as_str()))
        .filter(|a| tag(a, tags::COMPONENT).as_deref() == Some(Component::Address.as_str()))
        .filter_map(|a| {
            let usage = tag(a, tags::ADDRESS)
                .as_deref()
                .and_then(tags::parse_address_use)
                .unwrap_or(AddressUse::Retained);
            Some(StackAddress {
                ip: a.public_ip?,
                allocation_id: a.allocation_id.clone(),
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
    listed.sort_by_key(|a| (rank(a.usage), a.slot, a.ip));
    listed
}
