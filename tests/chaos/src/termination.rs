//! TerminateInstances takes the Elastic IPs off the instance, as AWS does and moto does not.
//!
//! AWS: an instance's primary network interface is deleted with it (its `DeleteOnTermination`
//! is true for an interface made at launch), and the Elastic IP associated with it is
//! disassociated, staying allocated to the account ("Elastic IP addresses", EC2 User Guide: an
//! address is disassociated when its instance is terminated; `cargo-fixedip/src/aws/emulator.rs`
//! lists the same difference). moto 5.2.5 keeps the association on the terminated instance, so an
//! address whose NAT instance was terminated under a live stack reads as held by something else.
//! fixedip itself disassociates before it terminates; this is for instances terminated by
//! anyone else (a user, AWS), through the proxy.

use crate::upstream::{xml_texts, Caller, Upstream, UpstreamError};

/// Disassociates every Elastic IP moto still shows on the interfaces of the terminated instances
/// `params` names (moto's `instance-id` filter misses an address associated by interface, as
/// fixedip associates them; a terminated instance still lists its interfaces there).
pub async fn release_addresses(
    upstream: &Upstream,
    caller: &Caller,
    params: &[(String, String)],
) -> Result<(), UpstreamError> {
    let named: Vec<(&str, &str)> = params
        .iter()
        .filter(|(k, _)| k.starts_with("InstanceId."))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if named.is_empty() {
        return Ok(());
    }
    let mut describe = vec![("Action", "DescribeInstances")];
    describe.extend(named);
    let described = upstream.ec2(caller, &describe).await?;
    let mut interfaces = xml_texts(&described, "networkInterfaceId");
    interfaces.sort();
    interfaces.dedup();
    for interface in &interfaces {
        let filter = [
            ("Filter.1.Name", "network-interface-id"),
            ("Filter.1.Value.1", interface.as_str()),
        ];
        disassociate_addresses(upstream, caller, &filter).await?;
    }
    Ok(())
}

/// Disassociates every Elastic IP that DescribeAddresses with `selection` lists as associated.
pub async fn disassociate_addresses(
    upstream: &Upstream,
    caller: &Caller,
    selection: &[(&str, &str)],
) -> Result<(), UpstreamError> {
    let mut describe = vec![("Action", "DescribeAddresses")];
    describe.extend_from_slice(selection);
    let described = upstream.ec2(caller, &describe).await?;
    for association in xml_texts(&described, "associationId") {
        upstream
            .ec2(
                caller,
                &[
                    ("Action", "DisassociateAddress"),
                    ("AssociationId", association.as_str()),
                ],
            )
            .await?;
    }
    Ok(())
}
