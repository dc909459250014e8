//! The VPC quotas AWS enforces and moto does not (moto 5.2.5 lets an account hold any number of
//! VPCs, internet gateways, NAT gateways and endpoints). With `quotas` in the scenario, a create
//! that would go beyond a limit is refused before it reaches moto, with the code and status AWS
//! answers (EC2 API error codes, all 400): `VpcLimitExceeded`, `InternetGatewayLimitExceeded`,
//! `NatGatewayLimitExceeded`, `VpcEndpointLimitExceeded`. The limits and what counts are those of
//! "Amazon VPC quotas" (VPC User Guide): VPCs and internet gateways per Region (5 by default), NAT
//! gateways per AZ (5; "NAT gateways only count toward your quota in the pending, active, and
//! deleting states"), gateway VPC endpoints per Region (20). What is in use is counted by asking
//! moto, as the same caller, at the moment of the call.

use std::collections::BTreeSet;

use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::dependencies::Refusal;
use crate::protocol::param;
use crate::upstream::{xml_texts, Caller, Upstream, UpstreamError};

/// The limits counted; `None` leaves that quota unchecked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaLimits {
    pub vpcs: Option<usize>,
    pub internet_gateways: Option<usize>,
    pub nat_gateways_per_az: Option<usize>,
    pub gateway_endpoints: Option<usize>,
}

impl QuotaLimits {
    /// AWS's defaults.
    pub fn aws_defaults() -> QuotaLimits {
        QuotaLimits {
            vpcs: Some(5),
            internet_gateways: Some(5),
            nat_gateways_per_az: Some(5),
            gateway_endpoints: Some(20),
        }
    }
}

fn exceeded(code: &'static str, message: &str) -> Refusal {
    Refusal {
        status: StatusCode::BAD_REQUEST,
        code,
        message: message.to_owned(),
    }
}

/// Checks a create against the limits; `Ok(None)` lets it through.
pub async fn check(
    limits: &QuotaLimits,
    upstream: &Upstream,
    caller: &Caller,
    operation: &str,
    params: &[(String, String)],
) -> Result<Option<Refusal>, UpstreamError> {
    let distinct =
        |xml: &str, name: &str| xml_texts(xml, name).into_iter().collect::<BTreeSet<_>>();
    match operation {
        "CreateVpc" => {
            let Some(limit) = limits.vpcs else {
                return Ok(None);
            };
            let answer = upstream.ec2(caller, &[("Action", "DescribeVpcs")]).await?;
            Ok((distinct(&answer, "vpcId").len() >= limit).then(|| {
                exceeded(
                    "VpcLimitExceeded",
                    "The maximum number of VPCs has been reached.",
                )
            }))
        }
        "CreateInternetGateway" => {
            let Some(limit) = limits.internet_gateways else {
                return Ok(None);
            };
            let answer = upstream
                .ec2(caller, &[("Action", "DescribeInternetGateways")])
                .await?;
            Ok(
                (distinct(&answer, "internetGatewayId").len() >= limit).then(|| {
                    exceeded(
                        "InternetGatewayLimitExceeded",
                        "The maximum number of internet gateways has been reached.",
                    )
                }),
            )
        }
        "CreateNatGateway" => {
            let Some(limit) = limits.nat_gateways_per_az else {
                return Ok(None);
            };
            let subnet = param(params, "SubnetId").unwrap_or_default();
            let answer = upstream
                .ec2(
                    caller,
                    &[("Action", "DescribeSubnets"), ("SubnetId.1", subnet)],
                )
                .await?;
            let Some(az) = xml_texts(&answer, "availabilityZone").into_iter().next() else {
                return Ok(None);
            };
            let in_az = upstream
                .ec2(
                    caller,
                    &[
                        ("Action", "DescribeSubnets"),
                        ("Filter.1.Name", "availability-zone"),
                        ("Filter.1.Value.1", &az),
                    ],
                )
                .await?;
            let subnets_in_az = distinct(&in_az, "subnetId");
            let nats = upstream
                .ec2(
                    caller,
                    &[
                        ("Action", "DescribeNatGateways"),
                        ("Filter.1.Name", "state"),
                        ("Filter.1.Value.1", "pending"),
                        ("Filter.1.Value.2", "available"),
                        ("Filter.1.Value.3", "deleting"),
                    ],
                )
                .await?;
            let in_use = nat_subnets(&nats)
                .iter()
                .filter(|s| subnets_in_az.contains(*s))
                .count();
            Ok((in_use >= limit).then(|| {
                exceeded(
                    "NatGatewayLimitExceeded",
                    "The maximum number of NAT Gateways has been reached.",
                )
            }))
        }
        "CreateVpcEndpoint"
            if param(params, "VpcEndpointType").unwrap_or("Gateway") == "Gateway" =>
        {
            let Some(limit) = limits.gateway_endpoints else {
                return Ok(None);
            };
            let answer = upstream
                .ec2(
                    caller,
                    &[
                        ("Action", "DescribeVpcEndpoints"),
                        ("Filter.1.Name", "vpc-endpoint-type"),
                        ("Filter.1.Value.1", "Gateway"),
                    ],
                )
                .await?;
            Ok(
                (distinct(&answer, "vpcEndpointId").len() >= limit).then(|| {
                    exceeded(
                        "VpcEndpointLimitExceeded",
                        "The maximum number of gateway endpoints has been reached.",
                    )
                }),
            )
        }
        _ => Ok(None),
    }
}

/// The subnet of each NAT gateway in a DescribeNatGateways answer, one entry per gateway.
fn nat_subnets(xml: &str) -> Vec<String> {
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return Vec::new();
    };
    doc.descendants()
        .filter(|n| {
            n.has_tag_name("item") && n.parent().is_some_and(|p| p.has_tag_name("natGatewaySet"))
        })
        .filter_map(|item| {
            item.children()
                .find(|c| c.has_tag_name("subnetId"))
                .and_then(|c| c.text())
                .map(str::to_owned)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_nat_gateway_counts_once_in_its_subnet() {
        let xml = "<DescribeNatGatewaysResponse><natGatewaySet>\
            <item><subnetId>subnet-1</subnetId><natGatewayAddressSet><item><networkInterfaceId>eni-1</networkInterfaceId></item></natGatewayAddressSet></item>\
            <item><subnetId>subnet-1</subnetId></item>\
            <item><subnetId>subnet-2</subnetId></item>\
            </natGatewaySet></DescribeNatGatewaysResponse>";
        assert_eq!(nat_subnets(xml), ["subnet-1", "subnet-1", "subnet-2"]);
    }
}
