//! RunInstances tags the network interfaces it creates, as AWS does and moto does not.
//!
//! AWS: the EC2 API Reference for RunInstances, `TagSpecification.N`: "The tags to apply to the
//! resources that are created during instance launch", network interfaces among them
//! (<https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html>). moto 5.2.5
//! applies only the `instance` and `volume` specifications (`moto/ec2/models/instances.py`,
//! `add_instances`), so a NAT instance's interface stays untagged there, and an IAM condition on
//! its tags (AssociateAddress onto the interface: `ChangeOnlyTheStacksResources`) would be judged
//! against the wrong tags.

use crate::protocol;
use crate::upstream::{xml_texts, Caller, Upstream, UpstreamError};

/// The `network-interface` tags of a RunInstances request, as (key, value).
pub fn interface_tags(params: &[(String, String)]) -> Vec<(String, String)> {
    protocol::tag_specifications(params)
        .into_iter()
        .filter(|(_, kind)| kind == "network-interface")
        .flat_map(|(spec, _)| protocol::tags_under(params, &format!("{spec}.Tag")))
        .collect()
}

/// Tags every interface moto's RunInstances answer names with the request's specification.
pub async fn tag_interfaces(
    upstream: &Upstream,
    caller: &Caller,
    params: &[(String, String)],
    answer: &str,
) -> Result<(), UpstreamError> {
    let tags = interface_tags(params);
    let mut interfaces = xml_texts(answer, "networkInterfaceId");
    interfaces.sort();
    interfaces.dedup();
    if tags.is_empty() || interfaces.is_empty() {
        return Ok(());
    }
    let mut owned: Vec<(String, String)> = vec![("Action".into(), "CreateTags".into())];
    for (i, id) in interfaces.iter().enumerate() {
        owned.push((format!("ResourceId.{}", i + 1), id.clone()));
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        owned.push((format!("Tag.{}.Key", i + 1), k.clone()));
        owned.push((format!("Tag.{}.Value", i + 1), v.clone()));
    }
    let params: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    upstream.ec2(caller, &params).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_interface_specification_is_read() {
        let params: Vec<(String, String)> = [
            ("TagSpecification.1.ResourceType", "instance"),
            ("TagSpecification.1.Tag.1.Key", "Name"),
            ("TagSpecification.1.Tag.1.Value", "i"),
            ("TagSpecification.2.ResourceType", "network-interface"),
            ("TagSpecification.2.Tag.1.Key", "fixedip:stack"),
            ("TagSpecification.2.Tag.1.Value", "a"),
            ("TagSpecification.2.Tag.2.Key", "fixedip:slot"),
            ("TagSpecification.2.Tag.2.Value", "0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            interface_tags(&params),
            [
                ("fixedip:stack".to_string(), "a".to_string()),
                ("fixedip:slot".to_string(), "0".to_string())
            ]
        );
    }
}
