//! Lambda's Hyperplane ENIs, which moto does not create.
//!
//! On AWS a function in a VPC holds network interfaces in its subnets (one per subnet, with the
//! function's security groups). They outlive the function's detachment or deletion by many minutes, and
//! while they exist DeleteSubnet and DeleteSecurityGroup fail with DependencyViolation. The proxy creates
//! them as real ENIs in moto (so DescribeNetworkInterfaces shows them and the dependency rules see them),
//! and deletes them a scenario-given time after the function lets go of them.
//!
//! moto reports its ENIs `available`, plain `interface` and not requester-managed, which would let a
//! teardown delete them at once. While the proxy holds one (attached, or lingering), it shows it as AWS
//! does (`in-use`, interface type `lambda`, requester-managed) and refuses DeleteNetworkInterface on it
//! with AWS's `InvalidParameterValue` "... is currently in use.".

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::upstream::{child_text, xml_texts, Caller, Upstream, UpstreamError};

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

    /// Whether the ENI is one of the proxy's and Lambda still holds it (attached or lingering): AWS shows
    /// it `in-use` and refuses to delete it.
    pub fn holds(&self, eni_id: &str) -> bool {
        let id = eni_id.to_string();
        self.attached.values().any(|f| f.eni_ids.contains(&id))
            || self.lingering.iter().any(|l| l.eni_ids.contains(&id))
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

/// AWS's refusal of DeleteNetworkInterface on an interface Lambda still holds (HTTP 400).
pub const IN_USE_CODE: &str = "InvalidParameterValue";

pub fn in_use_message(eni_id: &str) -> String {
    format!("Network interface '{eni_id}' is currently in use.")
}

/// The DescribeNetworkInterfaces filters on fields the proxy rewrites. moto does not implement them
/// (it answers FilterNotImplemented), and would apply them to its own values anyway; so the proxy takes
/// them out of the request and applies them to the rewritten answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShownFilters {
    /// `status`: `available`, `in-use`, ...
    pub status: Vec<String>,
    /// `interface-type`: `interface`, `lambda`, ...
    pub interface_type: Vec<String>,
    /// `requester-managed`: `true` / `false`.
    pub requester_managed: Vec<String>,
}

impl ShownFilters {
    const NAMES: [&'static str; 3] = ["status", "interface-type", "requester-managed"];

    pub fn is_empty(&self) -> bool {
        self.status.is_empty()
            && self.interface_type.is_empty()
            && self.requester_managed.is_empty()
    }

    /// Splits a request's Query parameters into those moto gets (the other filters renumbered from 1,
    /// as the Query protocol expects) and the filters the proxy applies.
    pub fn take_from(params: &[(String, String)]) -> (Vec<(String, String)>, ShownFilters) {
        // Filter.N.Name / Filter.N.Value.M, grouped by N in order of appearance.
        let mut filters: Vec<(String, Option<String>, Vec<String>)> = Vec::new();
        let mut rest = Vec::new();
        for (key, value) in params {
            let Some(tail) = key.strip_prefix("Filter.") else {
                rest.push((key.clone(), value.clone()));
                continue;
            };
            let (n, field) = tail.split_once('.').unwrap_or((tail, ""));
            let index = match filters.iter().position(|(m, _, _)| m == n) {
                Some(i) => i,
                None => {
                    filters.push((n.to_string(), None, Vec::new()));
                    filters.len() - 1
                }
            };
            if field == "Name" {
                filters[index].1 = Some(value.clone());
            } else if field.starts_with("Value") {
                filters[index].2.push(value.clone());
            }
        }
        let mut shown = ShownFilters::default();
        let mut kept = 0;
        for (_, name, values) in filters {
            let name = name.unwrap_or_default();
            match name.as_str() {
                "status" => shown.status.extend(values),
                "interface-type" => shown.interface_type.extend(values),
                "requester-managed" => shown.requester_managed.extend(values),
                _ => {
                    kept += 1;
                    rest.push((format!("Filter.{kept}.Name"), name));
                    for (m, value) in values.into_iter().enumerate() {
                        rest.push((format!("Filter.{kept}.Value.{}", m + 1), value));
                    }
                }
            }
        }
        (rest, shown)
    }

    /// Whether the request names one of the filters the proxy applies itself.
    pub fn named_in(params: &[(String, String)]) -> bool {
        params.iter().any(|(k, v)| {
            k.starts_with("Filter.") && k.ends_with(".Name") && Self::NAMES.contains(&v.as_str())
        })
    }

    fn matches(&self, status: &str, interface_type: &str, requester_managed: &str) -> bool {
        let ok =
            |wanted: &[String], value: &str| wanted.is_empty() || wanted.iter().any(|w| w == value);
        ok(&self.status, status)
            && ok(&self.interface_type, interface_type)
            && ok(&self.requester_managed, requester_managed)
    }
}

/// Rewrites a DescribeNetworkInterfaces answer: the ENIs the proxy `holds` read `in-use`, interface
/// type `lambda`, requester-managed, as Lambda's do on AWS; then `filters` are applied to what the
/// answer now says, and interfaces that do not match are left out.
pub fn rewrite_described(
    xml: &str,
    holds: impl Fn(&str) -> bool,
    filters: &ShownFilters,
) -> String {
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return xml.to_string();
    };
    // (byte range, replacement), applied from the end so that earlier ranges stay valid.
    let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    let interfaces = doc.descendants().filter(|n| {
        n.has_tag_name("item")
            && n.parent()
                .is_some_and(|p| p.has_tag_name("networkInterfaceSet"))
    });
    for interface in interfaces {
        let id = child_text(interface, "networkInterfaceId").unwrap_or_default();
        let held = holds(id);
        let shown = |name: &str, aws: &'static str, moto_default: &'static str| -> String {
            if held {
                aws.to_string()
            } else {
                child_text(interface, name)
                    .unwrap_or(moto_default)
                    .to_string()
            }
        };
        let status = shown("status", "in-use", "");
        let interface_type = shown("interfaceType", "lambda", "interface");
        let requester_managed = shown("requesterManaged", "true", "false");
        if !filters.matches(&status, &interface_type, &requester_managed) {
            edits.push((interface.range(), String::new()));
            continue;
        }
        if !held {
            continue;
        }
        let mut missing = String::new();
        for (name, value) in [
            ("status", &status),
            ("interfaceType", &interface_type),
            ("requesterManaged", &requester_managed),
        ] {
            match interface.children().find(|c| c.has_tag_name(name)) {
                Some(element) => edits.push((element.range(), format!("<{name}>{value}</{name}>"))),
                None => missing.push_str(&format!("<{name}>{value}</{name}>")),
            }
        }
        if !missing.is_empty() {
            // Just inside the item, before its first child.
            let at = interface
                .first_child()
                .map(|c| c.range().start)
                .unwrap_or(interface.range().end - "</item>".len());
            edits.push((at..at, missing));
        }
    }
    let mut out = xml.to_string();
    edits.sort_by_key(|(range, _)| std::cmp::Reverse(range.start));
    for (range, replacement) in edits {
        out.replace_range(range, &replacement);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESCRIBED: &str = r#"<DescribeNetworkInterfacesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><networkInterfaceSet><item><networkInterfaceId>eni-held</networkInterfaceId><interfaceType>interface</interfaceType><requesterManaged>false</requesterManaged><status>available</status></item><item><networkInterfaceId>eni-other</networkInterfaceId><interfaceType>interface</interfaceType><requesterManaged>false</requesterManaged><status>available</status></item></networkInterfaceSet></DescribeNetworkInterfacesResponse>"#;

    fn ids(xml: &str) -> Vec<String> {
        xml_texts(xml, "networkInterfaceId")
    }

    fn item(xml: &str, id: &str) -> String {
        let start = xml.find(&format!("<networkInterfaceId>{id}<")).unwrap();
        let end = start + xml[start..].find("</item>").unwrap();
        xml[start..end].to_string()
    }

    #[test]
    fn a_held_interface_reads_in_use_lambda_and_requester_managed() {
        let out = rewrite_described(DESCRIBED, |id| id == "eni-held", &ShownFilters::default());
        assert!(roxmltree::Document::parse(&out).is_ok(), "{out}");
        let held = item(&out, "eni-held");
        assert!(held.contains("<status>in-use</status>"), "{held}");
        assert!(
            held.contains("<interfaceType>lambda</interfaceType>"),
            "{held}"
        );
        assert!(
            held.contains("<requesterManaged>true</requesterManaged>"),
            "{held}"
        );
        assert_eq!(item(&out, "eni-other"), item(DESCRIBED, "eni-other"));
    }

    #[test]
    fn filters_see_the_rewritten_fields() {
        let holds = |id: &str| id == "eni-held";
        let only = |status: &[&str]| ShownFilters {
            status: status.iter().map(|s| s.to_string()).collect(),
            ..ShownFilters::default()
        };
        assert_eq!(
            ids(&rewrite_described(DESCRIBED, holds, &only(&["available"]))),
            ["eni-other"]
        );
        assert_eq!(
            ids(&rewrite_described(DESCRIBED, holds, &only(&["in-use"]))),
            ["eni-held"]
        );
        let lambda = ShownFilters {
            interface_type: vec!["lambda".into()],
            requester_managed: vec!["true".into()],
            ..ShownFilters::default()
        };
        assert_eq!(
            ids(&rewrite_described(DESCRIBED, holds, &lambda)),
            ["eni-held"]
        );
    }

    #[test]
    fn rewritten_filters_are_taken_out_and_the_rest_renumbered() {
        let params: Vec<(String, String)> = [
            ("Action", "DescribeNetworkInterfaces"),
            ("Filter.1.Name", "status"),
            ("Filter.1.Value.1", "available"),
            ("Filter.2.Name", "subnet-id"),
            ("Filter.2.Value.1", "subnet-1"),
            ("Filter.3.Name", "interface-type"),
            ("Filter.3.Value.1", "lambda"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert!(ShownFilters::named_in(&params));
        let (rest, shown) = ShownFilters::take_from(&params);
        let rest: Vec<(&str, &str)> = rest.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            rest,
            [
                ("Action", "DescribeNetworkInterfaces"),
                ("Filter.1.Name", "subnet-id"),
                ("Filter.1.Value.1", "subnet-1"),
            ]
        );
        assert_eq!(shown.status, ["available"]);
        assert_eq!(shown.interface_type, ["lambda"]);
        assert!(shown.requester_managed.is_empty());
    }
}
