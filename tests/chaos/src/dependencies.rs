//! The dependency rules AWS enforces and moto skips. Before a delete reaches moto, the proxy looks at
//! moto's state (as the same caller) and refuses the call as AWS would.
//!
//! Three moto quirks shape the checks: a terminated instance keeps its primary interface attached
//! in moto (AWS deletes it with the instance), so such an interface never counts; and two about
//! NAT gateways: a deleted NAT gateway keeps its ENI and its address association in
//! moto forever, so a NAT's ENI never counts as a dependency by itself (the gateway's own state, as the
//! proxy's clocks report it, does); and moto keeps deleted gateways, so "holds the address" means "not yet
//! `deleted` by the clocks".

use http::StatusCode;

use crate::protocol::param;
use crate::upstream::{child_text, xml_texts, Caller, Upstream, UpstreamError};

/// A call refused by a rule, as AWS words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

fn dependency_violation(message: String) -> Refusal {
    Refusal {
        status: StatusCode::BAD_REQUEST,
        code: "DependencyViolation",
        message,
    }
}

/// A NAT gateway in moto, with the state the proxy's clocks give it.
struct NatGateway {
    state: String,
    eni_ids: Vec<String>,
    allocation_ids: Vec<String>,
}

/// Checks an EC2 call against the rules; `Ok(None)` lets it through.
pub async fn check(
    upstream: &Upstream,
    caller: &Caller,
    operation: &str,
    params: &[(String, String)],
    nat_state: &(dyn Fn(&str, &str) -> String + Sync),
) -> Result<Option<Refusal>, UpstreamError> {
    let rules = Rules {
        upstream,
        caller,
        nat_state,
    };
    let arg = |name| param(params, name).unwrap_or_default().to_string();
    match operation {
        "DeleteSubnet" => rules.delete_subnet(&arg("SubnetId")).await,
        "DeleteSecurityGroup" => rules.delete_security_group(&arg("GroupId")).await,
        "ReleaseAddress" => rules.release_address(&arg("AllocationId")).await,
        "DetachInternetGateway" => rules.detach_internet_gateway(&arg("VpcId")).await,
        "DeleteVpc" => rules.delete_vpc(&arg("VpcId")).await,
        _ => Ok(None),
    }
}

struct Rules<'a> {
    upstream: &'a Upstream,
    caller: &'a Caller,
    nat_state: &'a (dyn Fn(&str, &str) -> String + Sync),
}

impl Rules<'_> {
    /// A subnet with a NAT gateway that is not `deleted`, or any other ENI (a function's, an
    /// instance's, a lingering Hyperplane one) cannot be deleted.
    async fn delete_subnet(&self, subnet_id: &str) -> Result<Option<Refusal>, UpstreamError> {
        let nats = self.nat_gateways("subnet-id", subnet_id).await?;
        let blocking_nat = nats.iter().any(|n| n.state != "deleted");
        let nat_enis: Vec<&String> = nats.iter().flat_map(|n| &n.eni_ids).collect();
        let enis = self.eni_ids("subnet-id", subnet_id).await?;
        let other_enis = enis.iter().any(|e| !nat_enis.contains(&e));
        Ok((blocking_nat || other_enis).then(|| {
            dependency_violation(format!(
                "The subnet '{subnet_id}' has dependencies and cannot be deleted."
            ))
        }))
    }

    /// A security group used by an ENI (a function's, lingering or not) cannot be deleted.
    async fn delete_security_group(
        &self,
        group_id: &str,
    ) -> Result<Option<Refusal>, UpstreamError> {
        if group_id.is_empty() {
            return Ok(None);
        }
        let enis = self.eni_ids("group-id", group_id).await?;
        Ok((!enis.is_empty())
            .then(|| dependency_violation(format!("resource {group_id} has a dependent object"))))
    }

    /// An address held by a NAT gateway (until the gateway is `deleted`) cannot be released; AWS answers
    /// with a misleading AuthFailure, and so does the proxy, since that is what the tool will meet.
    async fn release_address(&self, allocation_id: &str) -> Result<Option<Refusal>, UpstreamError> {
        if allocation_id.is_empty() {
            return Ok(None);
        }
        let nats = self.nat_gateways("", "").await?;
        let held = nats
            .iter()
            .any(|n| n.state != "deleted" && n.allocation_ids.iter().any(|a| a == allocation_id));
        Ok(held.then(|| Refusal {
            status: StatusCode::BAD_REQUEST,
            code: "AuthFailure",
            message: "You do not have permission to access the specified resource.".into(),
        }))
    }

    /// The internet gateway cannot leave a VPC while public addresses are mapped in it (NAT gateways that
    /// are not `deleted`, or addresses associated with other ENIs of the VPC).
    async fn detach_internet_gateway(
        &self,
        vpc_id: &str,
    ) -> Result<Option<Refusal>, UpstreamError> {
        let nats = self.nat_gateways("vpc-id", vpc_id).await?;
        let live_nat_with_address = nats
            .iter()
            .any(|n| n.state != "deleted" && !n.allocation_ids.is_empty());
        let nat_enis: Vec<&String> = nats.iter().flat_map(|n| &n.eni_ids).collect();
        let vpc_enis = self.eni_ids("vpc-id", vpc_id).await?;
        let addresses = self
            .upstream
            .ec2(self.caller, &[("Action", "DescribeAddresses")])
            .await?;
        let mapped_elsewhere = xml_texts(&addresses, "networkInterfaceId")
            .iter()
            .any(|eni| vpc_enis.contains(eni) && !nat_enis.contains(&eni));
        Ok((live_nat_with_address || mapped_elsewhere).then(|| {
            dependency_violation(format!(
                "Network {vpc_id} has some mapped public address(es). Please unmap those public \
                 address(es) before detaching the gateway."
            ))
        }))
    }

    /// A VPC with an internet gateway attached, a security group besides `default`, or an endpoint left
    /// cannot be deleted (moto only checks subnets and route tables).
    async fn delete_vpc(&self, vpc_id: &str) -> Result<Option<Refusal>, UpstreamError> {
        let igws = self
            .describe("DescribeInternetGateways", "attachment.vpc-id", vpc_id)
            .await?;
        let has_igw = !xml_texts(&igws, "internetGatewayId").is_empty();
        let groups = self
            .describe("DescribeSecurityGroups", "vpc-id", vpc_id)
            .await?;
        let has_group = xml_texts(&groups, "groupName")
            .iter()
            .any(|name| name != "default");
        let endpoints = self
            .describe("DescribeVpcEndpoints", "vpc-id", vpc_id)
            .await?;
        let has_endpoint = xml_texts(&endpoints, "state")
            .iter()
            .any(|s| !s.eq_ignore_ascii_case("deleted"));
        Ok((has_igw || has_group || has_endpoint).then(|| {
            dependency_violation(format!(
                "The vpc '{vpc_id}' has dependencies and cannot be deleted."
            ))
        }))
    }

    async fn describe(
        &self,
        action: &str,
        filter: &str,
        value: &str,
    ) -> Result<String, UpstreamError> {
        let mut params = vec![("Action", action)];
        if !filter.is_empty() {
            params.extend([("Filter.1.Name", filter), ("Filter.1.Value.1", value)]);
        }
        self.upstream.ec2(self.caller, &params).await
    }

    async fn eni_ids(&self, filter: &str, value: &str) -> Result<Vec<String>, UpstreamError> {
        let xml = self
            .describe("DescribeNetworkInterfaces", filter, value)
            .await?;
        let doc = roxmltree::Document::parse(&xml).map_err(|source| UpstreamError::Xml {
            action: "DescribeNetworkInterfaces".into(),
            source,
        })?;
        // Only the interfaces themselves, not attachment or association children that repeat the id,
        // each with the instance it is attached to.
        let interfaces: Vec<(String, Option<String>)> = doc
            .descendants()
            .filter(|n| {
                n.has_tag_name("item")
                    && n.parent()
                        .is_some_and(|p| p.has_tag_name("networkInterfaceSet"))
            })
            .filter_map(|n| {
                let instance = n
                    .children()
                    .find(|c| c.has_tag_name("attachment"))
                    .and_then(|a| child_text(a, "instanceId"))
                    .map(str::to_string);
                Some((child_text(n, "networkInterfaceId")?.to_string(), instance))
            })
            .collect();
        // moto keeps a terminated instance's primary interface attached forever; AWS deletes it
        // with the instance (DeleteOnTermination): it holds nothing.
        let terminated = self.terminated_instances().await?;
        Ok(interfaces
            .into_iter()
            .filter(|(_, instance)| instance.as_ref().is_none_or(|i| !terminated.contains(i)))
            .map(|(id, _)| id)
            .collect())
    }

    async fn terminated_instances(&self) -> Result<Vec<String>, UpstreamError> {
        let xml = self
            .describe("DescribeInstances", "instance-state-name", "terminated")
            .await?;
        let doc = roxmltree::Document::parse(&xml).map_err(|source| UpstreamError::Xml {
            action: "DescribeInstances".into(),
            source,
        })?;
        Ok(doc
            .descendants()
            .filter(|n| {
                n.has_tag_name("item") && n.parent().is_some_and(|p| p.has_tag_name("instancesSet"))
            })
            .filter_map(|n| child_text(n, "instanceId").map(str::to_string))
            .collect())
    }

    async fn nat_gateways(
        &self,
        filter: &str,
        value: &str,
    ) -> Result<Vec<NatGateway>, UpstreamError> {
        let xml = self.describe("DescribeNatGateways", filter, value).await?;
        let doc = roxmltree::Document::parse(&xml).map_err(|source| UpstreamError::Xml {
            action: "DescribeNatGateways".into(),
            source,
        })?;
        let gateways = doc
            .descendants()
            .filter(|n| {
                n.has_tag_name("item")
                    && n.parent().is_some_and(|p| p.has_tag_name("natGatewaySet"))
            })
            .map(|gateway| {
                let id = child_text(gateway, "natGatewayId").unwrap_or_default();
                let moto_state = child_text(gateway, "state").unwrap_or_default();
                let texts = |name: &str| -> Vec<String> {
                    gateway
                        .descendants()
                        .filter(|n| n.has_tag_name(name))
                        .filter_map(|n| n.text().map(str::to_string))
                        .collect()
                };
                NatGateway {
                    state: (self.nat_state)(id, moto_state),
                    eni_ids: texts("networkInterfaceId"),
                    allocation_ids: texts("allocationId"),
                }
            })
            .collect();
        Ok(gateways)
    }
}
