//! Restricted egress: `egress = ["0.0.0.0/0:443", ...]` makes the functions' security group let
//! out exactly those rules (TCP, or UDP with `/udp`); without it, the group keeps the rule AWS gives
//! every new group, everything to 0.0.0.0/0.
//!
//! The observed rules are diffed against the wanted ones: missing rules are authorized first, then
//! extra ones revoked (the default rule included), so that changing the list on a live stack
//! converges, a rule added by hand is taken away again, and a deploy that changes nothing makes no
//! call.
//!
//! # Interface endpoints and restricted egress
//! An interface endpoint is reached at private addresses inside the VPC, on TCP 443. With the
//! default egress that is allowed already. With a restricted list that does not cover it, the group
//! also gets `tcp 443 to <VPC CIDR>`: the VPC holds only the stack's own subnets, so that opens
//! nothing outside. Why the VPC CIDR and not the endpoints' security group as the peer: the
//! endpoints' group admits the functions' group, and a rule back to it would make each group
//! reference the other, which AWS refuses to delete (DependencyViolation) until one rule is revoked
//! first; the CIDR keeps teardown a plain ordering.
//!
//! # Gateway endpoints and restricted egress
//! A gateway endpoint (S3, DynamoDB) is no address in the VPC: the route table sends the service's
//! prefix list (`pl-...`) to it, and the traffic still passes the function's security group, which
//! filters it like any other ("The rules for the security groups for your instances that access
//! Amazon S3 through a gateway endpoint must allow traffic to and from Amazon S3. You can reference
//! the ID of the prefix list for Amazon S3 in security group rules.", "Gateway endpoints for Amazon
//! S3", AWS PrivateLink guide; terraform-provider-aws PR 7511 added `prefix_list_ids` for this).
//! With a restricted list, the group gets `tcp 443 to pl-...` for each gateway endpoint the stack
//! lists: the prefix list holds only the service's own ranges, so that opens nothing else. The ids
//! are read from the account (`ObservedState::prefix_lists`); a plan made offline names the rule
//! in a note instead. A prefix list counts as its maximum entries against the group's 60 rules
//! (VPC quotas page): the AWS lists for S3 and DynamoDB are small.

use std::collections::BTreeMap;

use ipnet::Ipv4Net;

use super::{Planned, Planner};
use crate::observed::{ObservedState, RulePeer, RuleProtocol, SecurityGroupRule};
use crate::plan::{Action, NetworkModes, Status, StepId};
use crate::requirements::{EgressRule, Endpoint, EndpointKind, Protocol};

/// The egress rules the functions' security group must have, exactly, sorted. `prefix_lists`
/// holds the prefix list of each gateway endpoint service (see [`gateway_prefix_lists_needed`]);
/// one not in it gets no rule.
pub fn desired_egress(
    modes: &NetworkModes,
    vpc_cidr: Ipv4Net,
    prefix_lists: &BTreeMap<Endpoint, String>,
) -> Vec<SecurityGroupRule> {
    if modes.egress.is_empty() {
        return vec![SecurityGroupRule::ALL_OUT];
    }
    let mut rules: Vec<SecurityGroupRule> = modes.egress.iter().map(security_group_rule).collect();
    for endpoint in gateway_prefix_lists_needed(modes) {
        if let Some(id) = prefix_lists.get(&endpoint) {
            rules.push(SecurityGroupRule {
                protocol: RuleProtocol::Tcp,
                ports: Some((443, 443)),
                peer: RulePeer::PrefixList(id.clone()),
            });
        }
    }
    let interface_endpoints = modes
        .endpoints
        .iter()
        .any(|e| e.kind() == EndpointKind::Interface);
    let https_in_vpc = rules.iter().any(|rule| {
        rule.protocol == RuleProtocol::Tcp
            && rule
                .ports
                .is_some_and(|(from, to)| from <= 443 && 443 <= to)
            && matches!(&rule.peer, RulePeer::Ipv4(net) if net.contains(&vpc_cidr))
    });
    if interface_endpoints && !https_in_vpc {
        rules.push(SecurityGroupRule {
            protocol: RuleProtocol::Tcp,
            ports: Some((443, 443)),
            peer: RulePeer::Ipv4(vpc_cidr.trunc()),
        });
    }
    rules.sort();
    rules.dedup();
    rules
}

/// The gateway endpoint services whose prefix list the functions' group must let out to: every
/// one the stack lists, when its egress is restricted; none otherwise (everything is let out).
pub fn gateway_prefix_lists_needed(modes: &NetworkModes) -> Vec<Endpoint> {
    if modes.egress.is_empty() {
        return Vec::new();
    }
    let mut services: Vec<Endpoint> = modes
        .endpoints
        .iter()
        .copied()
        .filter(|e| e.kind() == EndpointKind::Gateway)
        .collect();
    services.sort();
    services.dedup();
    services
}

/// One entry of `egress = [...]` as a security group rule.
pub fn security_group_rule(rule: &EgressRule) -> SecurityGroupRule {
    SecurityGroupRule {
        protocol: match rule.protocol {
            Protocol::Tcp => RuleProtocol::Tcp,
            Protocol::Udp => RuleProtocol::Udp,
        },
        ports: Some((rule.from_port, rule.to_port)),
        peer: RulePeer::Ipv4(
            Ipv4Net::new(rule.address, rule.prefix_len).expect("a parsed rule's prefix is valid"),
        ),
    }
}

impl Planner {
    /// The steps that make the group's egress exactly `desired`: authorize what is missing, then
    /// revoke what is extra. A group the plan creates starts with AWS's default rule.
    pub(super) fn security_group_egress(
        &mut self,
        group: &mut Planned,
        observed: &ObservedState,
        desired: &[SecurityGroupRule],
    ) -> Vec<StepId> {
        let have: Vec<SecurityGroupRule> = match (&group.status, &observed.security_group) {
            (Status::Keep(_), Some(observed)) => observed.egress.clone(),
            _ => vec![SecurityGroupRule::ALL_OUT],
        };
        let mut missing: Vec<SecurityGroupRule> = desired
            .iter()
            .filter(|rule| !have.contains(rule))
            .cloned()
            .collect();
        let mut extra: Vec<SecurityGroupRule> = have
            .iter()
            .filter(|rule| !desired.contains(rule))
            .cloned()
            .collect();
        for rules in [&mut missing, &mut extra] {
            rules.sort();
            rules.dedup();
        }
        let mut steps = Vec::new();
        if !missing.is_empty() {
            let action = Action::AuthorizeEgress {
                security_group: group.reference.clone(),
                rules: missing,
            };
            steps.push(self.push(action, &[]));
        }
        if !extra.is_empty() {
            let action = Action::RevokeEgress {
                security_group: group.reference.clone(),
                rules: extra,
            };
            let authorized = steps.clone();
            steps.push(self.push(action, &authorized));
        }
        if let (Status::Keep(id), false) = (&group.status, steps.is_empty()) {
            *group = Planned::changed(&id.clone());
        }
        steps
    }
}
