//! A network the user already runs (`vpc = "vpc-..."`): read, never changed.
//!
//! [`observe_existing_network`] reads the VPC named in the settings for the planner (DescribeVpcs
//! by id, then what [`super::network`] reads for `verify`). [`existing_stack_exits`] finds, for
//! `ips`/`verify`/`status` that know only the stack's name, where the stack's functions run on
//! such a network and the addresses their traffic leaves from: the stack's security group (found
//! by its tags) names the VPC, the functions using that group name the subnets, and the subnets'
//! NATs name the addresses, judged by the same rules as deploy ([`fixedip_core::existing`]).

use std::collections::BTreeSet;

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::Filter;
use fixedip_core::existing;
use fixedip_core::observed::ObservedExistingNetwork;
use fixedip_core::requirements::StackName;
use fixedip_core::tags::{self, Component};
use fixedip_core::verify::EgressExit;

use super::network::network_of_vpc;
use super::{Aws, AwsError};

/// The VPC with everything its egress depends on; `None` when no such VPC is in the region.
pub async fn observe_existing_network(
    aws: &Aws,
    vpc_id: &str,
) -> Result<Option<ObservedExistingNetwork>, AwsError> {
    let answer = match aws.ec2.describe_vpcs().vpc_ids(vpc_id).send().await {
        Ok(answer) => answer,
        Err(e) if e.code() == Some("InvalidVpcID.NotFound") => return Ok(None),
        Err(e) => return Err(AwsError::call("DescribeVpcs", e)),
    };
    let Some(vpc) = answer.vpcs().iter().find(|v| v.vpc_id() == Some(vpc_id)) else {
        return Ok(None);
    };
    let cidr = vpc
        .cidr_block()
        .and_then(|c| c.parse().ok())
        .ok_or(AwsError::IncompleteAnswer {
            operation: "DescribeVpcs",
            missing: "an IPv4 CIDR",
        })?;
    let network = network_of_vpc(aws, vpc_id.to_owned(), &[]).await?;
    Ok(Some(ObservedExistingNetwork { cidr, network }))
}

/// The addresses the stack's functions leave from when the stack lives on a network the user
/// runs; empty when it does not (no security group of the stack, or one in the stack's own VPC).
pub async fn existing_stack_exits(
    aws: &Aws,
    stack: &StackName,
) -> Result<Vec<EgressExit>, AwsError> {
    let groups = aws
        .ec2
        .describe_security_groups()
        .filters(tag_filter(tags::STACK, stack.as_str()))
        .filters(tag_filter(
            tags::COMPONENT,
            Component::SecurityGroup.as_str(),
        ))
        .send()
        .await
        .map_err(|e| AwsError::call("DescribeSecurityGroups", e))?;
    let is_stacks = |g: &&aws_sdk_ec2::types::SecurityGroup| {
        g.tags()
            .iter()
            .any(|t| t.key() == Some(tags::STACK) && t.value() == Some(stack.as_str()))
    };
    let Some(group) = groups.security_groups().iter().find(is_stacks) else {
        return Ok(Vec::new());
    };
    let (Some(group_id), Some(vpc_id)) = (group.group_id(), group.vpc_id()) else {
        return Ok(Vec::new());
    };
    // The stack's own VPC carries its tag; a VPC the user runs does not.
    let vpcs = aws
        .ec2
        .describe_vpcs()
        .vpc_ids(vpc_id)
        .send()
        .await
        .map_err(|e| AwsError::call("DescribeVpcs", e))?;
    let own = vpcs.vpcs().iter().any(|v| {
        v.tags()
            .iter()
            .any(|t| t.key() == Some(tags::STACK) && t.value() == Some(stack.as_str()))
    });
    if own {
        return Ok(Vec::new());
    }

    let functions: Vec<_> = aws
        .lambda
        .list_functions()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("ListFunctions", e))?;
    let subnets: BTreeSet<String> = functions
        .iter()
        .filter_map(|f| f.vpc_config())
        .filter(|v| v.security_group_ids().iter().any(|g| g == group_id))
        .flat_map(|v| v.subnet_ids().iter().cloned())
        .collect();
    if subnets.is_empty() {
        return Ok(Vec::new());
    }
    let network = network_of_vpc(aws, vpc_id.to_owned(), &[]).await?;
    let mut exits: Vec<EgressExit> = subnets
        .iter()
        // A subnet that no longer qualifies has no address to report: `verify` says why.
        .filter_map(|id| existing::judge(&network, id).ok())
        .flat_map(|subnet| subnet.exits)
        .collect();
    exits.sort_by(|a, b| (a.ip, &a.nat).cmp(&(b.ip, &b.nat)));
    exits.dedup_by(|a, b| a.ip == b.ip);
    Ok(exits)
}

fn tag_filter(key: &str, value: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}
