//! Self-healing NAT instances (`nat-self-healing`): the part of an auto-scaling group
//! instance's life that moto 5.2.5 does not play.
//!
//! - **The boot attaches the fixed interface.** On AWS every instance the group launches runs
//!   the launch template's user data; fixedip's attaches the slot's fixed network interface at
//!   device index 1 with the instance's role, retrying while the instance it replaces still
//!   holds it (fck-nat issue 80: the interface moves only once the old instance is terminated),
//!   then reports on the console (`cargo-fixedip/src/aws/nat_group.rs`). moto runs no user data.
//!   The proxy plays it: an instance it sees in a DescribeAutoScalingGroups answer or a
//!   GetConsoleOutput request whose user data (DescribeInstanceAttribute) carries fixedip's
//!   marker and `ENI=eni-…` gets that interface attached through moto, once no other running
//!   instance holds it; from then, once the interface holds its Elastic IP (the script waits,
//!   bounded, for `public-ipv4s` on it before it routes and says ready: in a switch from a NAT
//!   gateway the address comes only once the gateway is deleted), it is online for
//!   `nat_boot.rs`, whose model writes its ready line `ready_after_ms` later.
//! - **Termination detaches it.** AWS detaches an instance's secondary interfaces when the
//!   instance terminates, keeping them ("Elastic network interfaces", EC2 User Guide: a network
//!   interface attached as a secondary interface is detached when the instance is terminated,
//!   unless its DeleteOnTermination is set); moto keeps it attached to the terminated instance.
//!   After TerminateInstances through the proxy, each secondary interface of the terminated
//!   instances is detached through moto.
//! - **The replacement is not immediate.** A group replaces a terminated instance at its next
//!   health check, then launches (EC2 Auto Scaling User Guide, "Health checks for instances in
//!   an Auto Scaling group"); moto launches the replacement within the terminate call. The
//!   proxy holds the replacement's attach (and so its boot) until `replacement_after_ms` after
//!   the termination.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::upstream::{xml_texts, Caller, Upstream, UpstreamError};

/// The group instances the proxy has looked at, and the interfaces' last release.
#[derive(Debug, Default)]
pub struct GroupInstances {
    /// By instance id: the fixed interface its user data attaches (`None`: not fixedip's).
    interface_of: BTreeMap<String, Option<String>>,
    /// By interface id: when the instance that held it was terminated.
    released: BTreeMap<String, Instant>,
}

/// The fixed interface a self-healing NAT's user data attaches (its `ENI=` line), if the
/// script is fixedip's.
pub fn fixed_interface(script: &str) -> Option<String> {
    if !script.contains(fixedip_core::nat_boot::PREFIX) {
        return None;
    }
    script
        .lines()
        .find_map(|line| line.strip_prefix("ENI="))
        .filter(|id| id.starts_with("eni-"))
        .map(str::to_owned)
}

impl GroupInstances {
    /// Whether the instance was looked at already, and its interface if it is fixedip's.
    pub fn known(&self, instance: &str) -> Option<Option<&str>> {
        self.interface_of.get(instance).map(Option::as_deref)
    }

    pub fn learned(&mut self, instance: &str, interface: Option<String>) {
        self.interface_of.insert(instance.to_owned(), interface);
    }

    /// Whether a replacement may attach `interface` at `now`.
    pub fn may_attach(&self, interface: &str, replacement_after: Duration, now: Instant) -> bool {
        self.released
            .get(interface)
            .is_none_or(|at| now.duration_since(*at) >= replacement_after)
    }

    /// The instances were terminated at `now`: their fixed interfaces are released.
    pub fn terminated(&mut self, instances: &[String], now: Instant) {
        for instance in instances {
            if let Some(Some(interface)) = self.interface_of.get(instance) {
                self.released.insert(interface.clone(), now);
            }
        }
    }
}

/// The instance's user data, decoded (empty when it has none).
pub async fn user_data(
    upstream: &Upstream,
    caller: &Caller,
    instance: &str,
) -> Result<String, UpstreamError> {
    let answer = upstream
        .ec2(
            caller,
            &[
                ("Action", "DescribeInstanceAttribute"),
                ("InstanceId", instance),
                ("Attribute", "userData"),
            ],
        )
        .await?;
    let encoded = xml_texts(&answer, "value").into_iter().next();
    let decoded = encoded
        .and_then(|e| base64::engine::general_purpose::STANDARD.decode(e).ok())
        .unwrap_or_default();
    Ok(String::from_utf8_lossy(&decoded).into_owned())
}

/// Attaches `interface` to `instance` at device index 1 as the instance's boot does, unless a
/// running instance holds it. Whether `instance` holds it now.
pub async fn attach(
    upstream: &Upstream,
    caller: &Caller,
    interface: &str,
    instance: &str,
) -> Result<bool, UpstreamError> {
    let described = describe_interface(upstream, caller, interface).await?;
    if let Some(holder) = xml_texts(&described, "instanceId").into_iter().next() {
        if holder == instance {
            return Ok(true);
        }
        if xml_texts(&described, "status")
            .iter()
            .any(|s| s == "attached")
        {
            return Ok(false);
        }
    }
    upstream
        .ec2(
            caller,
            &[
                ("Action", "AttachNetworkInterface"),
                ("NetworkInterfaceId", interface),
                ("InstanceId", instance),
                ("DeviceIndex", "1"),
            ],
        )
        .await?;
    Ok(true)
}

/// Whether `interface` holds an Elastic IP: what the boot waits for before it says ready.
pub async fn holds_address(
    upstream: &Upstream,
    caller: &Caller,
    interface: &str,
) -> Result<bool, UpstreamError> {
    let described = describe_interface(upstream, caller, interface).await?;
    Ok(!xml_texts(&described, "publicIp").is_empty())
}

/// moto's DescribeNetworkInterfaces answer for one interface.
async fn describe_interface(
    upstream: &Upstream,
    caller: &Caller,
    interface: &str,
) -> Result<String, UpstreamError> {
    upstream
        .ec2(
            caller,
            &[
                ("Action", "DescribeNetworkInterfaces"),
                ("NetworkInterfaceId.1", interface),
            ],
        )
        .await
}

/// Detaches every secondary interface of the instances `params` names (TerminateInstances).
/// Returns the instance ids.
pub async fn detach_at_termination(
    upstream: &Upstream,
    caller: &Caller,
    params: &[(String, String)],
) -> Result<Vec<String>, UpstreamError> {
    let instances: Vec<String> = params
        .iter()
        .filter(|(k, _)| k.starts_with("InstanceId."))
        .map(|(_, v)| v.clone())
        .collect();
    for instance in &instances {
        let described = upstream
            .ec2(
                caller,
                &[
                    ("Action", "DescribeNetworkInterfaces"),
                    ("Filter.1.Name", "attachment.instance-id"),
                    ("Filter.1.Value.1", instance.as_str()),
                ],
            )
            .await?;
        for (attachment, index) in xml_texts(&described, "attachmentId")
            .into_iter()
            .zip(xml_texts(&described, "deviceIndex"))
        {
            if index != "0" {
                upstream
                    .ec2(
                        caller,
                        &[
                            ("Action", "DetachNetworkInterface"),
                            ("AttachmentId", attachment.as_str()),
                            ("Force", "true"),
                        ],
                    )
                    .await?;
            }
        }
    }
    Ok(instances)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interface_comes_from_fixedips_script_only() {
        let ours = "#!/bin/bash\nENI=eni-0abc\nlog() { echo \"fixedip-nat: $*\"; }\n";
        assert_eq!(fixed_interface(ours).as_deref(), Some("eni-0abc"));
        assert_eq!(fixed_interface("#!/bin/bash\nENI=eni-0abc\n"), None);
        assert_eq!(fixed_interface("fixedip-nat: ready\n"), None);
    }

    #[test]
    fn a_replacement_attaches_only_after_the_delay() {
        let mut groups = GroupInstances::default();
        groups.learned("i-1", Some("eni-1".into()));
        let t0 = Instant::now();
        let delay = Duration::from_millis(500);
        assert!(groups.may_attach("eni-1", delay, t0));
        groups.terminated(&["i-1".into()], t0);
        assert!(!groups.may_attach("eni-1", delay, t0));
        assert!(groups.may_attach("eni-1", delay, t0 + delay));
    }
}
