//! Where the emulator (moto, see docs/testing.md) differs from AWS, and the lines that exist only
//! because of it. Each is harmless on AWS: it costs a call that finds nothing to do, or a check
//! AWS makes unnecessary. Everything else in `aws/` follows AWS's documented behaviour.
//!
//! | moto | AWS | compensation | where |
//! |------|-----|--------------|-------|
//! | keeps an Elastic IP's association after its NAT gateway is `deleted`, and refuses the address to a new NAT gateway or a release ("already associated") | drops the association with the gateway | the planner puts a `DisassociateAddress` of each association the observation shows after every `DeleteNatGateway`, and before any reuse of an address whose association outlived its gateway (the stack view marks it stale) | `fixedip-core`: `planner/addresses.rs` (`free_addresses_of_nat`, `free_stale_association`), `observed/view.rs` |
//! | keeps an Elastic IP's association after its NAT instance is terminated | drops it at termination | the planner disassociates the addresses on the instance's interface before `TerminateNatInstance` | `fixedip-core`: `planner/nat_instance.rs` (`terminate`) |
//! | keeps a subnet's route-table association after the subnet is deleted, and refuses to delete the table | drops it with the subnet | `DeleteRouteTable` carries the observed associations; the executor disassociates them first (not-found is done) | `fixedip-core`: `planner/network.rs` (`delete_route_table`); `execute.rs` (`delete_route_table`) |
//! | answers `DeleteNatGateway` on a gone id with an HTTP 500 | `NatGatewayNotFound` | the gateway's state is asked first (the same call waits for `deleted`) | `execute.rs` (`delete_nat_gateway`) |
//! | ignores `ClientToken` on `CreateNatGateway` and `RunInstances` (a repeat makes a second resource, or fails on the address) | returns the resource the token made | a create whose answer was lost is looked up by its tags before the token is sent again | `execute.rs` (`CreateNatGateway`), `nat_instance.rs` (`launch`) |
//! | ignores tag filters on `DescribeNatGateways` (lists every gateway) | filters | the tags are checked on every answer ([`carries`]); the lookup of a lost create is narrowed by subnet | `execute.rs`, `network.rs` (`describe_stack`), `fixedip-core`: `observed/view.rs` |
//! | reports a bogus `VpcConfig.VpcId` on a function | the function's VPC | the VPC is derived from the function's subnets | `network.rs`, `observe.rs` |
//! | fails the `service-name` filter of `DescribeVpcEndpointServices` | filters | every service is listed, then picked | `endpoints.rs` |
//! | has no `network-interface.network-interface-id` filter on `DescribeInstances` | filters | the instance a route's interface is attached to is asked of the interface (DescribeNetworkInterfaces) | `network.rs` (`instances_routed_to`) |
//! | keeps no tags given to `CreateAutoScalingGroup` (a tag filter finds no group) | keeps them | a self-healing NAT's group is read by its name, one per slot | `nat_group.rs` (`observe_nat_groups`) |
//! | answers `DeleteLaunchTemplate` of a gone id with `InvalidLaunchTemplateName.NotFoundException` | `InvalidLaunchTemplateId.NotFound` | both codes are done | `nat_group.rs` (`delete_nat_launch_template`) |
//!
//! Timing, consistency, quotas and permissions of AWS that moto lacks are not compensated here:
//! they are rules of the chaos layer (`tests/chaos`), which adds them to moto.

use aws_sdk_ec2::types::Tag;

/// Whether a resource carries every one of `tags`. Checked on every answer that was asked by tag:
/// moto ignores the tag filter of some Describe calls.
pub(super) fn carries(found: &[Tag], tags: &[(String, String)]) -> bool {
    tags.iter().all(|(key, value)| {
        found
            .iter()
            .any(|t| t.key() == Some(key.as_str()) && t.value() == Some(value.as_str()))
    })
}
