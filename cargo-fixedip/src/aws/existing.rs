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
    let vpc = answer
        .vpcs()
        .iter()
        .filter(|v| v.vpc_id() == Some(vpc_id))
        .map(|v| {
            super::network::from_sdk::vpc(v).ok_or(AwsError::IncompleteAnswer {
                operation: "DescribeVpcs",
                missing: "an IPv4 CIDR",
            })
        })
        .next();
    let Some(vpc) = vpc.transpose()? else {
        return Ok(None);
    };
    let network = network_of_vpc(aws, vpc_id.to_owned(), &[]).await?;
    Ok(Some(ObservedExistingNetwork {
        cidr: vpc.cidr,
        network,
    }))
}

/// The addresses the stack's functions leave from when the stack lives on a network the user
/// runs; empty when it does not (no security group of the stack, or one in the stack's own VPC).
pub async fn existing_stack_exits(
    aws: &Aws,
    stack: &StackName,
) -> Result<Vec<EgressExit>, AwsError> {
    let groups = super::network::security_groups_of_stack(aws, stack).await?;
    let tag = |tags: &fixedip_core::network::Tags, key: &str| tags.get(key).cloned();
    let Some(group) = groups.iter().find(|g| {
        tag(&g.tags, tags::COMPONENT).as_deref() == Some(Component::SecurityGroup.as_str())
    }) else {
        return Ok(Vec::new());
    };
    let (group_id, vpc_id) = (group.id.as_str(), group.vpc_id.as_str());
    // The stack's own VPC carries its tag; a VPC the user runs does not.
    let vpcs = super::network::vpcs_by_id(aws, vpc_id).await?;
    let own = vpcs
        .iter()
        .any(|v| tag(&v.tags, tags::STACK).as_deref() == Some(stack.as_str()));
    if vpc_id.is_empty() || own {
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
