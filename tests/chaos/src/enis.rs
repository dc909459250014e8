//! Lambda's Hyperplane ENIs, which moto does not create.
//!
//! On AWS a function in a VPC holds network interfaces in its subnets (one per subnet, with the
//! function's security groups). They outlive the function's detachment or deletion by many minutes, and
//! while they exist DeleteSubnet and DeleteSecurityGroup fail with DependencyViolation. The proxy creates
//! them as real ENIs in moto (so DescribeNetworkInterfaces shows them and the dependency rules see them),
//! and deletes them a scenario-given time after the function lets go of them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::upstream::{xml_texts, Caller, Upstream, UpstreamError};

/// The tag that marks the proxy's ENIs (their value is the function's name). Not a fixedip tag: the tool
/// must not take them for its own resources.
pub const FUNCTION_TAG: &str = "fixedip-chaos:hyperplane-function";

/// Where a function is attached: the network part of its `VpcConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VpcAttachment {
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
}

impl VpcAttachment {
    /// From a CreateFunction / UpdateFunctionConfiguration request body; `None` when the request does not
    /// touch the VPC configuration, an empty attachment when it detaches.
    pub fn from_request(body: &serde_json::Value) -> Option<VpcAttachment> {
        let vpc = body.get("VpcConfig")?;
        let ids = |key: &str| -> Vec<String> {
            let mut ids: Vec<String> = vpc
                .get(key)
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            ids.sort();
            ids.dedup();
            ids
        };
        Some(VpcAttachment {
            subnet_ids: ids("SubnetIds"),
            security_group_ids: ids("SecurityGroupIds"),
        })
    }

    pub fn is_attached(&self) -> bool {
        !self.subnet_ids.is_empty()
    }
}

/// ENIs of one function, and who owns them (the proxy deletes them as that caller).
#[derive(Debug, Clone)]
struct FunctionEnis {
    caller: Caller,
    attachment: VpcAttachment,
    eni_ids: Vec<String>,
}

/// ENIs a function no longer uses, kept until `until`.
#[derive(Debug, Clone)]
pub struct LingeringEnis {
    pub caller: Caller,
    pub eni_ids: Vec<String>,
    pub until: Instant,
}

/// The proxy's book of Hyperplane ENIs.
#[derive(Default)]
pub struct Hyperplane {
    /// Keyed like the function clocks: `account/region/name`.
    attached: HashMap<String, FunctionEnis>,
    lingering: Vec<LingeringEnis>,
}

impl Hyperplane {
    /// The attachment the proxy last gave this function.
    pub fn attachment(&self, key: &str) -> VpcAttachment {
        self.attached
            .get(key)
            .map(|f| f.attachment.clone())
            .unwrap_or_default()
    }

    /// Records the ENIs of a new attachment.
    pub fn attach(
        &mut self,
        key: String,
        caller: Caller,
        attachment: VpcAttachment,
        eni_ids: Vec<String>,
    ) {
        self.attached.insert(
            key,
            FunctionEnis {
                caller,
                attachment,
                eni_ids,
            },
        );
    }

    /// The function let go of its ENIs (detached, moved or deleted): they linger for `linger`.
    /// Returns the deadline, if there was anything to linger.
    pub fn release(&mut self, key: &str, now: Instant, linger: Duration) -> Option<Instant> {
        let released = self.attached.remove(key)?;
        if released.eni_ids.is_empty() {
            return None;
        }
        let until = now + linger;
        self.lingering.push(LingeringEnis {
            caller: released.caller,
            eni_ids: released.eni_ids,
            until,
        });
        Some(until)
    }

    /// Takes the lingering ENIs whose time is up.
    pub fn take_due(&mut self, now: Instant) -> Vec<LingeringEnis> {
        let (due, keep) = std::mem::take(&mut self.lingering)
            .into_iter()
            .partition(|l| l.until <= now);
        self.lingering = keep;
        due
    }
}

/// Creates the function's ENIs in moto: one per subnet, with all its security groups, described and
/// tagged as the function's.
pub async fn create_enis(
    upstream: &Upstream,
    caller: &Caller,
    function: &str,
    attachment: &VpcAttachment,
) -> Result<Vec<String>, UpstreamError> {
    let description = format!("AWS Lambda VPC ENI-{function}");
    let mut ids = Vec::new();
    for subnet in &attachment.subnet_ids {
        let group_keys: Vec<String> = (1..=attachment.security_group_ids.len())
            .map(|i| format!("SecurityGroupId.{i}"))
            .collect();
        let mut params: Vec<(&str, &str)> = vec![
            ("Action", "CreateNetworkInterface"),
            ("SubnetId", subnet),
            ("Description", &description),
            ("TagSpecification.1.ResourceType", "network-interface"),
            ("TagSpecification.1.Tag.1.Key", FUNCTION_TAG),
            ("TagSpecification.1.Tag.1.Value", function),
        ];
        for (key, group) in group_keys.iter().zip(&attachment.security_group_ids) {
            params.push((key, group));
        }
        let xml = upstream.ec2(caller, &params).await?;
        ids.extend(xml_texts(&xml, "networkInterfaceId").into_iter().take(1));
    }
    Ok(ids)
}

/// Deletes ENIs whose lingering is over; one already gone is not an error.
pub async fn delete_enis(upstream: &Upstream, lingering: &LingeringEnis) {
    for id in &lingering.eni_ids {
        let params = [
            ("Action", "DeleteNetworkInterface"),
            ("NetworkInterfaceId", id.as_str()),
        ];
        // A failure leaves the ENI in moto, where the dependency rules keep seeing it: visible, not silent.
        if let Err(error) = upstream.ec2(&lingering.caller, &params).await {
            eprintln!("fixedip-chaos: could not delete lingering ENI {id}: {error}");
        }
    }
}
