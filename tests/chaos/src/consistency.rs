//! EC2's eventual consistency, which moto skips: moto knows every new id at once.
//!
//! - **Fresh ids.** "The Amazon EC2 API follows an eventual consistency model": right after a
//!   create, the new resource's "ID might not have propagated throughout the system, and you will
//!   get an error responding that the resource does not exist" (EC2 developer guide, "Eventual
//!   consistency in the Amazon EC2 API"; terraform issue 7104, `InvalidRouteTableID.NotFound` from
//!   CreateRoute; kops PR 944, `InvalidNatGatewayID.NotFound`). For `fresh_id_ms` after a create,
//!   a mutating EC2 call naming the new id is answered with that id's not-found code. Removals
//!   (Delete*, Release*, Terminate*, Disassociate*) are left out: a tool rightly takes not-found
//!   as done there, and no run deletes what it created a second ago.
//! - **Fresh ids read back.** The same guide: "If you try to describe the resource right after
//!   creating it, you might get an error" — a Describe* naming the new id in its id list
//!   (`NatGatewayId.1`, `VpcEndpointId.1`, ...) is answered with the not-found code for that
//!   window, as every waiter meets it on AWS (terraform-provider-aws's `FindNATGateways` turns
//!   DescribeNatGateways' `NatGatewayNotFound` into "not found" and its waiters retry it). Reads
//!   by filter answer as moto does.
//! - **Elastic IPs after their NAT gateway.** Right after a NAT gateway reads `deleted`,
//!   ReleaseAddress of its address can answer `AuthFailure` (eformat/sno-for-100 #5 and #9, kops
//!   #938: "a short pause" fixed it) and associating the address can answer
//!   `InvalidNetworkInterfaceID.NotFound` (terraform-provider-aws issue 49299). For
//!   `address_settling_ms` after the gateway reads `deleted`, the proxy answers so.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::upstream::xml_texts;

/// The element of a create's answer that holds the new id, by operation.
pub fn created_id_element(operation: &str) -> Option<&'static str> {
    Some(match operation {
        "CreateVpc" => "vpcId",
        "CreateSubnet" => "subnetId",
        "CreateRouteTable" => "routeTableId",
        "CreateSecurityGroup" => "groupId",
        "AllocateAddress" => "allocationId",
        "CreateNatGateway" => "natGatewayId",
        "CreateInternetGateway" => "internetGatewayId",
        "RunInstances" => "instanceId",
        "CreateVpcEndpoint" => "vpcEndpointId",
        _ => return None,
    })
}

/// The not-found code EC2 answers for an id, by its prefix (EC2 API reference, error codes).
pub fn not_found_code(id: &str) -> Option<&'static str> {
    let prefix = id.split_once('-')?.0;
    Some(match prefix {
        "vpc" => "InvalidVpcID.NotFound",
        "subnet" => "InvalidSubnetID.NotFound",
        "rtb" => "InvalidRouteTableID.NotFound",
        "sg" => "InvalidGroup.NotFound",
        "eipalloc" => "InvalidAllocationID.NotFound",
        "nat" => "InvalidNatGatewayID.NotFound",
        "igw" => "InvalidInternetGatewayID.NotFound",
        "i" => "InvalidInstanceID.NotFound",
        "eni" => "InvalidNetworkInterfaceID.NotFound",
        "vpce" => "InvalidVpcEndpointId.NotFound",
        _ => return None,
    })
}

/// Whether a mutating call is a removal, where not-found means done (left out of the rule).
fn is_removal(operation: &str) -> bool {
    ["Delete", "Release", "Terminate", "Disassociate", "Revoke"]
        .iter()
        .any(|p| operation.starts_with(p))
}

/// When each id was created, as seen through the proxy.
#[derive(Debug, Default)]
pub struct FreshIds {
    created: HashMap<String, Instant>,
}

impl FreshIds {
    /// Remembers the id a create's answer names.
    pub fn created(&mut self, operation: &str, answer: &str, at: Instant) {
        if let Some(element) = created_id_element(operation) {
            for id in xml_texts(answer, element) {
                self.created.entry(id).or_insert(at);
            }
        }
    }

    /// The refusal for a mutating call naming an id created less than `window` ago:
    /// `(code, message)`.
    pub fn refusal(
        &self,
        operation: &str,
        params: &[(String, String)],
        window: Duration,
        now: Instant,
    ) -> Option<(&'static str, String)> {
        if window.is_zero() || is_removal(operation) {
            return None;
        }
        let values = params.iter().map(|(_, value)| value.as_str());
        self.first_fresh(values, window, now, not_found_code)
    }

    /// The refusal of a Describe* naming, in its id list, an id created less than `window` ago:
    /// `(code, message)`.
    pub fn describe_refusal(
        &self,
        operation: &str,
        params: &[(String, String)],
        window: Duration,
        now: Instant,
    ) -> Option<(&'static str, String)> {
        if window.is_zero() || !operation.starts_with("Describe") {
            return None;
        }
        let values = params
            .iter()
            .filter(|(name, _)| is_id_list_entry(name))
            .map(|(_, value)| value.as_str());
        self.first_fresh(values, window, now, describe_not_found_code)
    }

    /// The first of `values` that is an id created less than `window` ago, as its refusal.
    fn first_fresh<'v>(
        &self,
        mut values: impl Iterator<Item = &'v str>,
        window: Duration,
        now: Instant,
        code_of: fn(&str) -> Option<&'static str>,
    ) -> Option<(&'static str, String)> {
        values.find_map(|value| {
            let created = self.created.get(value)?;
            if now >= *created + window {
                return None;
            }
            let code = code_of(value)?;
            Some((code, format!("The ID '{value}' does not exist")))
        })
    }
}

/// The not-found code a Describe* answers for an id in its id list: DescribeNatGateways has its
/// own, `NatGatewayNotFound` (terraform-provider-aws, `ErrCodeNatGatewayNotFound`); the others
/// share the mutating calls'.
fn describe_not_found_code(id: &str) -> Option<&'static str> {
    match id.split_once('-')?.0 {
        "nat" => Some("NatGatewayNotFound"),
        _ => not_found_code(id),
    }
}

/// Whether a query parameter is an entry of a Describe*'s id list (`InstanceId.1`,
/// `VpcEndpointId.2`), not a filter's value (`Filter.1.Value.1`).
fn is_id_list_entry(name: &str) -> bool {
    name.split_once('.')
        .is_some_and(|(list, index)| list.ends_with("Id") && index.parse::<u32>().is_ok())
}

/// The refusal of a ReleaseAddress or AssociateAddress of an address whose NAT gateway read
/// `deleted` at `deleted_at` (moments ago).
pub fn address_refusal(operation: &str) -> Option<(&'static str, &'static str)> {
    match operation {
        "ReleaseAddress" => Some((
            "AuthFailure",
            "You do not have permission to access the specified resource.",
        )),
        "AssociateAddress" => Some((
            "InvalidNetworkInterfaceID.NotFound",
            "The networkInterface ID does not exist",
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_new_id_is_not_found_by_the_calls_naming_it_for_a_while() {
        let t0 = Instant::now();
        let mut fresh = FreshIds::default();
        fresh.created(
            "CreateRouteTable",
            "<CreateRouteTableResponse><routeTable><routeTableId>rtb-1</routeTableId><vpcId>vpc-9</vpcId></routeTable></CreateRouteTableResponse>",
            t0,
        );
        let window = Duration::from_secs(2);
        let create_route = params(&[("RouteTableId", "rtb-1"), ("NatGatewayId", "nat-2")]);
        assert_eq!(
            fresh
                .refusal("CreateRoute", &create_route, window, t0)
                .map(|r| r.0),
            Some("InvalidRouteTableID.NotFound")
        );
        assert_eq!(
            fresh.refusal(
                "CreateRoute",
                &create_route,
                window,
                t0 + Duration::from_secs(3)
            ),
            None,
            "visible once the window is over"
        );
        assert_eq!(
            fresh.refusal("DeleteRouteTable", &create_route, window, t0),
            None,
            "removals are left out"
        );
        let parent = params(&[("VpcId", "vpc-9")]);
        assert_eq!(
            fresh.refusal("CreateSubnet", &parent, window, t0),
            None,
            "only the created id, not the parent its answer names"
        );
        assert_eq!(
            fresh.refusal("CreateRoute", &create_route, Duration::ZERO, t0),
            None
        );
    }

    #[test]
    fn a_new_id_is_not_found_by_a_describe_naming_it_for_a_while() {
        let t0 = Instant::now();
        let mut fresh = FreshIds::default();
        fresh.created(
            "CreateNatGateway",
            "<CreateNatGatewayResponse><natGateway><natGatewayId>nat-1</natGatewayId></natGateway></CreateNatGatewayResponse>",
            t0,
        );
        fresh.created(
            "CreateVpcEndpoint",
            "<CreateVpcEndpointResponse><vpcEndpoint><vpcEndpointId>vpce-1</vpcEndpointId></vpcEndpoint></CreateVpcEndpointResponse>",
            t0,
        );
        let window = Duration::from_secs(2);
        let by_id = params(&[("NatGatewayId.1", "nat-1")]);
        assert_eq!(
            fresh
                .describe_refusal("DescribeNatGateways", &by_id, window, t0)
                .map(|r| r.0),
            Some("NatGatewayNotFound")
        );
        assert_eq!(
            fresh
                .describe_refusal(
                    "DescribeVpcEndpoints",
                    &params(&[("VpcEndpointId.1", "vpce-1")]),
                    window,
                    t0
                )
                .map(|r| r.0),
            Some("InvalidVpcEndpointId.NotFound")
        );
        assert_eq!(
            fresh.describe_refusal(
                "DescribeNatGateways",
                &by_id,
                window,
                t0 + Duration::from_secs(3)
            ),
            None,
            "visible once the window is over"
        );
        let by_filter = params(&[
            ("Filter.1.Name", "nat-gateway-id"),
            ("Filter.1.Value.1", "nat-1"),
        ]);
        assert_eq!(
            fresh.describe_refusal("DescribeNatGateways", &by_filter, window, t0),
            None,
            "reads by filter answer as moto does"
        );
        assert_eq!(
            fresh.describe_refusal("CreateRoute", &by_id, window, t0),
            None,
            "only reads"
        );
    }

    #[test]
    fn each_id_has_its_own_not_found_code() {
        assert_eq!(not_found_code("vpc-1"), Some("InvalidVpcID.NotFound"));
        assert_eq!(not_found_code("sg-1"), Some("InvalidGroup.NotFound"));
        assert_eq!(
            not_found_code("eipalloc-1"),
            Some("InvalidAllocationID.NotFound")
        );
        assert_eq!(not_found_code("i-1"), Some("InvalidInstanceID.NotFound"));
        assert_eq!(not_found_code("default"), None);
        assert_eq!(address_refusal("ReleaseAddress").unwrap().0, "AuthFailure");
        assert_eq!(address_refusal("CreateTags"), None);
    }
}
