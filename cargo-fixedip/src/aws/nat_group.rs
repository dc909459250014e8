//! Carrying out the self-healing NAT steps (`nat-self-healing`): the instance profile and its
//! role, the fixed network interface and its address, the launch template, the auto-scaling
//! group of one, the wait for its instance's ready line, and their removal. The choices are the
//! planner's (`fixedip-core/src/planner/nat_group.rs`).

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, Tag as GroupTag};
use aws_sdk_ec2::types::Filter;
use aws_sdk_ec2::types::{
    AttributeBooleanValue, LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceNetworkInterfaceSpecificationRequest,
    LaunchTemplateTagSpecificationRequest, RequestLaunchTemplateData, ResourceType,
};
use base64::Engine as _;
use fixedip_core::nat_boot::Readiness;
use fixedip_core::observed::{
    ObservedGroupInstance, ObservedNatGroup, ObservedNatInterface, ObservedNatLaunchTemplate,
    ObservedNatProfile, Slot,
};
use fixedip_core::plan::Step;
use fixedip_core::planner::LAYOUT_SLOTS;
use fixedip_core::requirements::StackName;
use fixedip_core::tags::{self, Component};

use super::execute::{has_code, Context, Produced, Progress};
use super::nat_instance::USER_DATA;
use super::AwsError;

/// The placeholder [`GROUP_BOOT`] carries for the fixed interface's id.
const INTERFACE: &str = "__FIXEDIP_NAT_INTERFACE__";

/// What a self-healing NAT instance runs first at boot, before the plain NAT instance's setup
/// ([`USER_DATA`], whose masquerade goes out of the default route's device, which this makes the
/// fixed interface): attach the slot's fixed interface at device index 1 (retried: AWS lets it
/// go only once the instance it replaces is terminated, fck-nat issue 80), wait (bounded) until
/// it is up with its Elastic IP (instance metadata `public-ipv4s`), move the default route onto
/// it (as int128/terraform-aws-nat-instance's `init.sh` does), and drop the public IP the launch
/// gave the primary interface for the boot, so that nothing leaves from an address off the
/// allowlist. The instance's role allows exactly these two EC2 calls, on the stack's resources.
/// The route's move is a script of its own that the every-boot unit
/// ([`fixedip_core::nat_boot::EVERY_BOOT`]) runs first at each later boot (a drop-in): the
/// interface stays attached through a reboot, the route does not. AL2023 ships the AWS CLI and
/// curl.
const GROUP_BOOT: &str = r#"#!/bin/bash
# fixedip self-healing NAT instance: attach the slot's fixed interface, then forward and
# masquerade out of it.
set -uo pipefail
log() { echo "fixedip-nat: $*" | tee /dev/console; }
cat > /usr/local/sbin/fixedip-nat-route <<'ROUTE'
#!/bin/bash
# At every boot: traffic leaves through the slot's fixed interface and its Elastic IP.
ENI=__FIXEDIP_NAT_INTERFACE__
log() { echo "fixedip-nat: $*" | tee /dev/console; }
TOKEN=$(curl -sf -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 21600" http://169.254.169.254/latest/api/token)
imds() { curl -sf -H "X-aws-ec2-metadata-token: $TOKEN" "http://169.254.169.254/latest/meta-data/$1"; }
device() { ip -o link | awk -v mac="$1" 'index($0, mac) {sub(":", "", $2); print $2; exit}'; }
DEV1=""
for attempt in $(seq 1 60); do
  for mac in $(imds network/interfaces/macs/); do
    mac=${mac%/}
    if [ "$(imds "network/interfaces/macs/$mac/interface-id")" = "$ENI" ] &&
      imds "network/interfaces/macs/$mac/public-ipv4s" >/dev/null; then
      DEV1=$(device "$mac")
    fi
  done
  [ -n "$DEV1" ] && break
  sleep 5
done
if [ -z "$DEV1" ]; then
  log "FAILED: $ENI is not up with its Elastic IP on this instance; this instance forwards nothing"
  exit 1
fi
DEV0=$(device "$(imds mac)")
if [ -z "$(ip -4 route show default dev "$DEV1")" ]; then
  GW=$(ip -4 route show default | awk '{print $3; exit}')
  ip route replace default via "$GW" dev "$DEV1" metric 0 ||
    { log "FAILED: the default route could not move to $DEV1"; exit 1; }
fi
ip route del default dev "$DEV0" 2>/dev/null || true
ROUTE
chmod 755 /usr/local/sbin/fixedip-nat-route
mkdir -p /etc/systemd/system/fixedip-nat-ready.service.d
cat > /etc/systemd/system/fixedip-nat-ready.service.d/route.conf <<'DROPIN'
[Service]
ExecStartPre=/usr/local/sbin/fixedip-nat-route
DROPIN
TOKEN=$(curl -sf -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 21600" http://169.254.169.254/latest/api/token)
imds() { curl -sf -H "X-aws-ec2-metadata-token: $TOKEN" "http://169.254.169.254/latest/meta-data/$1"; }
ID=$(imds instance-id); REGION=$(imds placement/region)
PRIMARY=$(imds "network/interfaces/macs/$(imds mac)/interface-id")
ENI=__FIXEDIP_NAT_INTERFACE__
for attempt in $(seq 1 60); do
  aws ec2 attach-network-interface --region "$REGION" --network-interface-id "$ENI" \
    --instance-id "$ID" --device-index 1 >/dev/null 2>&1 && break
  log "attaching $ENI failed (attempt $attempt of 60; the instance it served may still hold it): retrying in 10 s"
  sleep 10
done
/usr/local/sbin/fixedip-nat-route || exit 1
aws ec2 modify-network-interface-attribute --region "$REGION" --network-interface-id "$PRIMARY" \
  --no-associate-public-ip-address >/dev/null 2>&1 ||
  log "the boot's public IP of $PRIMARY could not be dropped: traffic leaves through $ENI all the same"
"#;

/// The launch template's user data: [`GROUP_BOOT`] for `interface`, then the plain NAT setup.
pub fn group_user_data(interface: &str) -> String {
    let setup = USER_DATA
        .split_once("set -uo pipefail\n")
        .map_or(USER_DATA, |(_, rest)| rest);
    format!("{}{setup}", GROUP_BOOT.replace(INTERFACE, interface))
}

/// EC2 may assume the role; nothing else may.
const EC2_TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// The name of the role's inline policy.
const ROLE_POLICY: &str = "fixedip-nat-interface";

/// What a self-healing NAT instance may do: attach a network interface and change an interface's
/// attributes, on the stack's tagged instances and interfaces only (its own, tagged by the launch
/// template, and the slot's fixed one). Nothing about addresses: the Elastic IP never moves.
pub fn role_policy(stack: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["ec2:AttachNetworkInterface", "ec2:ModifyNetworkInterfaceAttribute"],
            "Resource": ["arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:*:*:network-interface/*"],
            "Condition": {"StringEquals": {format!("aws:ResourceTag/{}", tags::STACK): stack}}
        }]
    })
    .to_string()
}

impl<'a> Context<'a> {
    /// The role, its policy, the instance profile and the role in it; each already done is done.
    pub(super) async fn create_nat_profile(
        self,
        step: &'a Step,
        name: &'a str,
    ) -> Result<Produced, AwsError> {
        const EXISTS: &[&str] = &["EntityAlreadyExists"];
        let iam = &self.aws.iam;
        let role_tags = super::execute::iam_tags(self.tags(Component::NatProfile, None));
        let request = iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(EC2_TRUST_POLICY)
            .description(format!(
                "fixedip stack {}: its NAT instances attach their network interface",
                self.stack()
            ))
            .set_tags(Some(role_tags.clone()));
        match self
            .send(step, "CreateRole", EXISTS, || request.clone().send())
            .await
        {
            Ok(_) => {}
            Err(e) if has_code(&e, EXISTS) => {}
            Err(e) => return Err(AwsError::call("CreateRole", e)),
        }
        let request = iam
            .put_role_policy()
            .role_name(name)
            .policy_name(ROLE_POLICY)
            .policy_document(role_policy(self.stack().as_str()));
        self.send_done(step, "PutRolePolicy", || request.clone().send())
            .await?;
        let request = iam
            .create_instance_profile()
            .instance_profile_name(name)
            .set_tags(Some(role_tags));
        match self
            .send(step, "CreateInstanceProfile", EXISTS, || {
                request.clone().send()
            })
            .await
        {
            Ok(_) => {}
            Err(e) if has_code(&e, EXISTS) => {}
            Err(e) => return Err(AwsError::call("CreateInstanceProfile", e)),
        }
        // A profile holds one role: LimitExceeded means it holds this one already.
        const HELD: &[&str] = &["LimitExceeded"];
        let request = iam
            .add_role_to_instance_profile()
            .instance_profile_name(name)
            .role_name(name);
        match self
            .send(step, "AddRoleToInstanceProfile", HELD, || {
                request.clone().send()
            })
            .await
        {
            Ok(_) => {}
            Err(e) if has_code(&e, HELD) => {}
            Err(e) => return Err(AwsError::call("AddRoleToInstanceProfile", e)),
        }
        Ok(Produced {
            id: Some(name.to_owned()),
            ..Produced::default()
        })
    }

    /// The slot's fixed interface, tagged at creation, its check off.
    pub(super) async fn create_nat_interface(
        self,
        step: &'a Step,
        subnet: String,
        security_group: String,
        slot: Slot,
    ) -> Result<Produced, AwsError> {
        let ec2 = &self.aws.ec2;
        let request = ec2
            .create_network_interface()
            .subnet_id(subnet)
            .groups(security_group)
            .description(format!(
                "fixedip stack {}: the NAT's fixed interface, holding the Elastic IP",
                self.stack()
            ))
            .tag_specifications(self.ec2_tags(
                ResourceType::NetworkInterface,
                self.tags(Component::NatInterface, Some(slot)),
            ));
        let answer = self
            .send(step, "CreateNetworkInterface", &[], || {
                request.clone().send()
            })
            .await
            .map_err(|e| AwsError::call("CreateNetworkInterface", e))?;
        let id = answer
            .network_interface()
            .and_then(|n| n.network_interface_id())
            .ok_or(AwsError::IncompleteAnswer {
                operation: "CreateNetworkInterface",
                missing: "the new resource's id",
            })?
            .to_owned();
        let request = ec2
            .modify_network_interface_attribute()
            .network_interface_id(&id)
            .source_dest_check(AttributeBooleanValue::builder().value(false).build());
        // The interface was created a moment ago: its id may not be visible yet.
        self.send_naming(step, "ModifyNetworkInterfaceAttribute", &[], true, || {
            request.clone().send()
        })
        .await
        .map_err(|e| AwsError::call("ModifyNetworkInterfaceAttribute", e))?;
        Ok(Produced {
            id: Some(id),
            ..Produced::default()
        })
    }

    pub(super) async fn associate_interface_address(
        self,
        step: &'a Step,
        allocation_id: String,
        interface: String,
    ) -> Result<Produced, AwsError> {
        let request = self
            .aws
            .ec2
            .associate_address()
            .allocation_id(allocation_id)
            .network_interface_id(interface);
        self.send_done(step, "AssociateAddress", || request.clone().send())
            .await
    }

    /// The slot's launch template, by name: one that exists already (a create whose answer was
    /// lost) is looked up and used.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn create_nat_launch_template(
        self,
        step: &'a Step,
        slot: Slot,
        (subnet, security_group, interface, profile): (String, String, String, String),
        (instance_type, image_parameter): (&'a str, &'a str),
    ) -> Result<Produced, AwsError> {
        let image = self.latest_image(image_parameter).await?;
        let name = tags::nat_group_name(self.stack(), slot);
        let tags = self.tags(Component::NatGroup, Some(slot));
        let tagged = |resource: ResourceType| {
            let spec = self.ec2_tags(resource.clone(), tags.clone());
            LaunchTemplateTagSpecificationRequest::builder()
                .resource_type(resource)
                .set_tags(spec.tags)
                .build()
        };
        let data = RequestLaunchTemplateData::builder()
            .image_id(image)
            .instance_type(aws_sdk_ec2::types::InstanceType::from(instance_type))
            .iam_instance_profile(
                LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                    .name(profile)
                    .build(),
            )
            .network_interfaces(
                LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
                    .device_index(0)
                    .subnet_id(subnet)
                    .groups(security_group)
                    .associate_public_ip_address(true)
                    .delete_on_termination(true)
                    .build(),
            )
            .user_data(
                base64::engine::general_purpose::STANDARD.encode(group_user_data(&interface)),
            )
            .tag_specifications(tagged(ResourceType::Instance))
            .tag_specifications(tagged(ResourceType::Volume))
            .tag_specifications(tagged(ResourceType::NetworkInterface))
            .build();
        let request = self
            .aws
            .ec2
            .create_launch_template()
            .launch_template_name(&name)
            .launch_template_data(data)
            .tag_specifications(self.ec2_tags(
                ResourceType::LaunchTemplate,
                self.tags(Component::NatLaunchTemplate, Some(slot)),
            ));
        const EXISTS: &[&str] = &["InvalidLaunchTemplateName.AlreadyExistsException"];
        let id = match self
            .send(step, "CreateLaunchTemplate", EXISTS, || {
                request.clone().send()
            })
            .await
        {
            Ok(answer) => answer
                .launch_template()
                .and_then(|t| t.launch_template_id())
                .map(str::to_owned),
            Err(e) if has_code(&e, EXISTS) => self
                .aws
                .ec2
                .describe_launch_templates()
                .launch_template_names(&name)
                .send()
                .await
                .map_err(|e| AwsError::call("DescribeLaunchTemplates", e))?
                .launch_templates()
                .first()
                .and_then(|t| t.launch_template_id())
                .map(str::to_owned),
            Err(e) => return Err(AwsError::call("CreateLaunchTemplate", e)),
        };
        let id = id.ok_or(AwsError::IncompleteAnswer {
            operation: "CreateLaunchTemplate",
            missing: "the new resource's id",
        })?;
        Ok(Produced {
            id: Some(id),
            ..Produced::default()
        })
    }

    /// The group of exactly one instance. A fresh instance profile may not be usable by EC2 for
    /// some seconds (IAM's eventual consistency): the group's first launch then fails as a
    /// scaling activity and the group launches again by itself, which the readiness wait after
    /// this step covers (not modelled by the chaos layer; not seen on AWS by this change).
    pub(super) async fn create_nat_group(
        self,
        step: &'a Step,
        slot: Slot,
        template: String,
        subnet: String,
    ) -> Result<Produced, AwsError> {
        let name = tags::nat_group_name(self.stack(), slot);
        let group_tags: Vec<GroupTag> = self
            .tags(Component::NatGroup, Some(slot))
            .into_iter()
            .map(|(key, value)| {
                GroupTag::builder()
                    .key(key)
                    .value(value)
                    .propagate_at_launch(false)
                    .build()
            })
            .collect();
        let request = self
            .aws
            .autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(&name)
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_id(template)
                    .version("$Latest")
                    .build(),
            )
            .min_size(1)
            .max_size(1)
            .desired_capacity(1)
            .vpc_zone_identifier(subnet)
            .set_tags(Some(group_tags));
        const EXISTS: &[&str] = &["AlreadyExists"];
        match self
            .send(step, "CreateAutoScalingGroup", EXISTS, || {
                request.clone().send()
            })
            .await
        {
            Ok(_) => {}
            Err(e) if has_code(&e, EXISTS) => {}
            Err(e) => return Err(AwsError::call("CreateAutoScalingGroup", e)),
        }
        Ok(Produced {
            id: Some(name),
            ..Produced::default()
        })
    }

    /// The group's instance, once it has one, until its console says ready: as
    /// `await_nat_instance_ready`, the `FAILED` line or the bound ending the wait.
    pub(super) async fn await_nat_group_ready(
        self,
        step: &'a Step,
        group: String,
    ) -> Result<Produced, AwsError> {
        self.await_group_instance(step, group, None).await
    }

    /// The group's instance, once it has one, until it holds `interface` (or says ready); the
    /// `FAILED` line or the bound ending the wait.
    pub(super) async fn await_nat_interface_attached(
        self,
        step: &'a Step,
        group: String,
        interface: String,
    ) -> Result<Produced, AwsError> {
        self.await_group_instance(step, group, Some(interface))
            .await
    }

    /// Waits until the group's instance says ready or, given `attached`, holds that interface.
    async fn await_group_instance(
        self,
        step: &'a Step,
        group: String,
        attached: Option<String>,
    ) -> Result<Produced, AwsError> {
        let bound = self.inputs.timeouts.nat_instance_ready;
        let mut backoff = self.backoff(bound);
        loop {
            let instances = group_instances(&self.aws.autoscaling, &group).await?;
            if let Some(interface) = &attached {
                let holder = self.interface_holder(interface).await?;
                if holder.is_some_and(|h| instances.contains(&h)) {
                    return Ok(Produced::default());
                }
            }
            let mut last = Readiness::Booting(Vec::new());
            for instance in &instances {
                let readiness = crate::aws::observe::nat_readiness(&self.aws.ec2, instance).await?;
                match readiness {
                    Readiness::Ready => return Ok(Produced::default()),
                    Readiness::Failed(_) if instances.len() == 1 => {
                        return Err(AwsError::NatInstanceNotReady {
                            instance: instance.clone(),
                            failed: true,
                            reported: readiness.reported(),
                        })
                    }
                    other => last = other,
                }
            }
            (self.progress)(Progress::Waiting {
                step,
                what: match attached {
                    Some(_) => "the NAT group's instance to attach its network interface",
                    None => "the NAT group's instance to report forwarding and masquerading on",
                },
            });
            if !backoff.pause().await {
                return Err(AwsError::NatInstanceNotReady {
                    instance: instances.first().cloned().unwrap_or(group),
                    failed: false,
                    reported: format!(
                        "{} (waited {} s; --nat-ready-timeout)",
                        last.reported(),
                        backoff.waited().as_secs()
                    ),
                });
            }
        }
    }

    /// The instance a network interface is attached to, if any.
    async fn interface_holder(&self, interface: &str) -> Result<Option<String>, AwsError> {
        let answer = self
            .aws
            .ec2
            .describe_network_interfaces()
            .network_interface_ids(interface)
            .send()
            .await
            .map_err(|e| AwsError::call("DescribeNetworkInterfaces", e))?;
        Ok(answer
            .network_interfaces()
            .iter()
            .filter_map(|n| n.attachment()?.instance_id())
            .map(str::to_owned)
            .next())
    }

    /// ForceDelete terminates the group's instance with it; the group is waited for until AWS
    /// no longer lists it, as only then is the fixed interface free.
    pub(super) async fn delete_nat_group(
        self,
        step: &'a Step,
        name: &'a str,
    ) -> Result<Produced, AwsError> {
        let autoscaling = &self.aws.autoscaling;
        let request = autoscaling
            .delete_auto_scaling_group()
            .auto_scaling_group_name(name)
            .force_delete(true);
        const GONE: &[&str] = &["ValidationError"];
        match self
            .send(step, "DeleteAutoScalingGroup", GONE, || {
                request.clone().send()
            })
            .await
        {
            Ok(_) => {}
            // "AutoScalingGroup name not found": gone already.
            Err(e) if has_code(&e, GONE) => return Ok(Produced::default()),
            Err(e) => return Err(AwsError::call("DeleteAutoScalingGroup", e)),
        }
        let timeout: Duration = self.inputs.timeouts.nat_gateway;
        let mut backoff = self.backoff(timeout);
        loop {
            let listed = autoscaling
                .describe_auto_scaling_groups()
                .auto_scaling_group_names(name)
                .send()
                .await
                .map_err(|e| AwsError::call("DescribeAutoScalingGroups", e))?;
            if listed.auto_scaling_groups().is_empty() {
                return Ok(Produced::default());
            }
            (self.progress)(Progress::Waiting {
                step,
                what: "NAT group and its instance to be gone",
            });
            if !backoff.pause().await {
                return Err(AwsError::Call {
                    operation: "wait",
                    code: None,
                    message: format!(
                        "waited {} s for auto-scaling group {name} to be deleted",
                        timeout.as_secs()
                    ),
                });
            }
        }
    }

    pub(super) async fn delete_nat_launch_template(
        self,
        step: &'a Step,
        id: &'a str,
    ) -> Result<Produced, AwsError> {
        // moto 5.2.5 answers a missing id with the code of a missing name.
        const GONE: &[&str] = &[
            "InvalidLaunchTemplateId.NotFound",
            "InvalidLaunchTemplateName.NotFoundException",
        ];
        let request = self.aws.ec2.delete_launch_template().launch_template_id(id);
        self.remove(step, "DeleteLaunchTemplate", GONE, || {
            request.clone().send()
        })
        .await
    }

    /// The interface once no instance holds it: AWS detaches it as its instance terminates,
    /// which the group's deletion waited for; a moment after, it may still read `in-use`.
    pub(super) async fn delete_nat_interface(
        self,
        step: &'a Step,
        id: &'a str,
    ) -> Result<Produced, AwsError> {
        const GONE: &[&str] = &["InvalidNetworkInterfaceID.NotFound"];
        let timeout: Duration = self.inputs.timeouts.nat_gateway;
        let mut backoff = self.backoff(timeout);
        loop {
            let request = self
                .aws
                .ec2
                .delete_network_interface()
                .network_interface_id(id);
            const IN_USE: &[&str] = &[
                "InvalidNetworkInterfaceID.NotFound",
                "InvalidParameterValue",
            ];
            match self
                .send(step, "DeleteNetworkInterface", IN_USE, || {
                    request.clone().send()
                })
                .await
            {
                Ok(_) => return Ok(Produced::default()),
                Err(e) if has_code(&e, GONE) => return Ok(Produced::default()),
                // "Network interface is currently in use".
                Err(e) if has_code(&e, IN_USE) => {
                    (self.progress)(Progress::Waiting {
                        step,
                        what: "NAT network interface to be detached",
                    });
                    if !backoff.pause().await {
                        return Err(AwsError::call("DeleteNetworkInterface", e));
                    }
                }
                Err(e) => return Err(AwsError::call("DeleteNetworkInterface", e)),
            }
        }
    }

    /// The role out of the profile, the profile, the role's policy, the role: not-found is done.
    pub(super) async fn delete_nat_profile(
        self,
        step: &'a Step,
        name: &'a str,
    ) -> Result<Produced, AwsError> {
        const GONE: &[&str] = &["NoSuchEntity"];
        let iam = &self.aws.iam;
        let removed = iam
            .remove_role_from_instance_profile()
            .instance_profile_name(name)
            .role_name(name);
        self.remove(step, "RemoveRoleFromInstanceProfile", GONE, || {
            removed.clone().send()
        })
        .await?;
        let profile = iam.delete_instance_profile().instance_profile_name(name);
        self.remove(step, "DeleteInstanceProfile", GONE, || {
            profile.clone().send()
        })
        .await?;
        let policy = iam
            .delete_role_policy()
            .role_name(name)
            .policy_name(ROLE_POLICY);
        self.remove(step, "DeleteRolePolicy", GONE, || policy.clone().send())
            .await?;
        let role = iam.delete_role().role_name(name);
        self.remove(step, "DeleteRole", GONE, || role.clone().send())
            .await
    }
}

/// The ids of a group's instances that are or will be in service (not terminating).
pub async fn group_instances(
    autoscaling: &aws_sdk_autoscaling::Client,
    group: &str,
) -> Result<Vec<String>, AwsError> {
    let answer = autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .map_err(|e| AwsError::call("DescribeAutoScalingGroups", e))?;
    Ok(answer
        .auto_scaling_groups()
        .iter()
        .flat_map(|g| g.instances())
        .filter(|i| {
            !i.lifecycle_state()
                .is_some_and(|s| s.as_str().starts_with("Terminat"))
        })
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect())
}

/// What the stack's self-healing NATs are made of, as AWS lists them: the fixed interfaces and
/// launch templates by the stack's tags, the groups by name (one per slot: moto 5.2.5 keeps no
/// tags given at CreateAutoScalingGroup, and a group's name is its identity anyway), the
/// instance profile and role by name.
pub struct ObservedGroups {
    pub interfaces: Vec<ObservedNatInterface>,
    pub launch_templates: Vec<ObservedNatLaunchTemplate>,
    pub groups: Vec<ObservedNatGroup>,
    pub profile: Option<ObservedNatProfile>,
}

/// Which of the self-healing NATs' resources an observation reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatGroupReads {
    /// None: a network the user runs, or `status` and `verify` for functions not in the mode.
    Skip,
    /// A stack not in the mode (or destroyed, whose spec carries no mode), which must still find
    /// what a switch out of it or a killed run left: first the fixed interfaces, the launch
    /// templates and the instance profile's role, and only when one of them exists the groups
    /// and the profile (one round trip more, in the runs that have something to remove). Those
    /// three cover every state a run can leave, killed anywhere: a group is created after its
    /// template and deleted before it, the profile is created after its role and deleted before
    /// it (`create_nat_profile`, `delete_nat_profile`); the interface and the template are each
    /// made before their group and go after it (`planner/nat_group.rs`).
    IfAnyLeft,
    /// All five at once: the stack is in the mode.
    All,
}

/// Reads the stack's self-healing NATs as `reads` says (see [`NatGroupReads`]). `listed`: the
/// types DescribeTags found the stack's tag on ([`super::network::tagged_types`]), when it was
/// asked (outside the mode): the interfaces and templates are then read only if listed.
pub async fn observe_nat_groups(
    aws: &super::Aws,
    stack: &StackName,
    reads: NatGroupReads,
    listed: Option<&BTreeSet<String>>,
) -> Result<ObservedGroups, AwsError> {
    use super::network::{LAUNCH_TEMPLATE, NETWORK_INTERFACE};
    let role = tags::nat_role_name(stack, &aws.region);
    let read = |kind: &str| listed.is_none_or(|l| l.contains(kind));
    let (interfaces, launch_templates, role_exists, read_together) = tokio::try_join!(
        async {
            match read(NETWORK_INTERFACE) {
                true => nat_interfaces(aws, stack).await,
                false => Ok(Vec::new()),
            }
        },
        async {
            match read(LAUNCH_TEMPLATE) {
                true => nat_launch_templates(aws, stack).await,
                false => Ok(Vec::new()),
            }
        },
        role_exists(aws, &role),
        async {
            match reads {
                NatGroupReads::All => groups_and_profile(aws, stack, &role).await.map(Some),
                NatGroupReads::IfAnyLeft | NatGroupReads::Skip => Ok(None),
            }
        },
    )?;
    let any_left = !interfaces.is_empty() || !launch_templates.is_empty() || role_exists;
    let (groups, profile) = match read_together {
        Some(read) => read,
        None if any_left => groups_and_profile(aws, stack, &role).await?,
        None => (Vec::new(), None),
    };
    let holds_role = profile
        .as_ref()
        .is_some_and(|p| p.roles().iter().any(|r| r.role_name() == role));
    let profile = (profile.is_some() || role_exists).then(|| ObservedNatProfile {
        name: role.clone(),
        complete: role_exists && holds_role,
    });
    Ok(ObservedGroups {
        interfaces,
        launch_templates,
        groups,
        profile,
    })
}

/// `tag:fixedip:stack = <stack>` and `tag:fixedip:component = <component>`.
fn by_tag(stack: &StackName, component: Component) -> Vec<Filter> {
    vec![
        Filter::builder()
            .name(format!("tag:{}", tags::STACK))
            .values(stack.to_string())
            .build(),
        Filter::builder()
            .name(format!("tag:{}", tags::COMPONENT))
            .values(component.as_str())
            .build(),
    ]
}

/// The slot a resource is tagged with.
fn slot_of(tags: &[aws_sdk_ec2::types::Tag]) -> Option<Slot> {
    tags.iter()
        .find(|t| t.key() == Some(tags::SLOT))
        .and_then(|t| t.value())
        .and_then(|v| v.parse::<Slot>().ok())
}

/// The stack's fixed NAT interfaces, by its tags.
async fn nat_interfaces(
    aws: &super::Aws,
    stack: &StackName,
) -> Result<Vec<ObservedNatInterface>, AwsError> {
    let answer = aws
        .ec2
        .describe_network_interfaces()
        .set_filters(Some(by_tag(stack, Component::NatInterface)))
        .send()
        .await
        .map_err(|e| AwsError::call("DescribeNetworkInterfaces", e))?;
    Ok(answer
        .network_interfaces()
        .iter()
        .filter_map(|n| {
            Some(ObservedNatInterface {
                id: n.network_interface_id()?.to_owned(),
                subnet_id: n.subnet_id()?.to_owned(),
                slot: slot_of(n.tag_set())?,
                source_dest_check: n.source_dest_check().unwrap_or(true),
                attached_instance: n
                    .attachment()
                    .and_then(|a| a.instance_id())
                    .map(str::to_owned),
            })
        })
        .collect())
}

/// The stack's NAT launch templates, by its tags.
async fn nat_launch_templates(
    aws: &super::Aws,
    stack: &StackName,
) -> Result<Vec<ObservedNatLaunchTemplate>, AwsError> {
    let answer = aws
        .ec2
        .describe_launch_templates()
        .set_filters(Some(by_tag(stack, Component::NatLaunchTemplate)))
        .send()
        .await
        .map_err(|e| AwsError::call("DescribeLaunchTemplates", e))?;
    Ok(answer
        .launch_templates()
        .iter()
        .filter_map(|t| {
            Some(ObservedNatLaunchTemplate {
                id: t.launch_template_id()?.to_owned(),
                name: t.launch_template_name()?.to_owned(),
                slot: slot_of(t.tags())?,
            })
        })
        .collect())
}

/// IAM's not-found code.
const MISSING: &[&str] = &["NoSuchEntity"];

/// Whether the NAT instances' role exists.
async fn role_exists(aws: &super::Aws, role: &str) -> Result<bool, AwsError> {
    match aws.iam.get_role().role_name(role).send().await {
        Ok(_) => Ok(true),
        Err(e) if has_code(&e, MISSING) => Ok(false),
        Err(e) => Err(AwsError::call("GetRole", e)),
    }
}

/// The stack's groups, by name (one per slot), and the instance profile.
async fn groups_and_profile(
    aws: &super::Aws,
    stack: &StackName,
    role: &str,
) -> Result<
    (
        Vec<ObservedNatGroup>,
        Option<aws_sdk_iam::types::InstanceProfile>,
    ),
    AwsError,
> {
    let names: Vec<String> = (0..LAYOUT_SLOTS)
        .map(|slot| tags::nat_group_name(stack, slot))
        .collect();
    let (groups, profile) = tokio::join!(
        aws.autoscaling
            .describe_auto_scaling_groups()
            .set_auto_scaling_group_names(Some(names))
            .send(),
        aws.iam
            .get_instance_profile()
            .instance_profile_name(role)
            .send(),
    );
    let groups = groups.map_err(|e| AwsError::call("DescribeAutoScalingGroups", e))?;
    let profile = match profile {
        Ok(answer) => answer.instance_profile,
        Err(e) if has_code(&e, MISSING) => None,
        Err(e) => return Err(AwsError::call("GetInstanceProfile", e)),
    };
    let groups = groups
        .auto_scaling_groups()
        .iter()
        .filter(|g| g.status().is_none())
        .filter_map(|g| {
            let name = g.auto_scaling_group_name()?;
            let slot = (0..LAYOUT_SLOTS).find(|s| tags::nat_group_name(stack, *s) == name)?;
            Some(ObservedNatGroup {
                name: name.to_owned(),
                slot,
                instances: g
                    .instances()
                    .iter()
                    .filter_map(|i| {
                        Some(ObservedGroupInstance {
                            id: i.instance_id()?.to_owned(),
                            lifecycle: i.lifecycle_state()?.as_str().to_owned(),
                            instance_type: i.instance_type().unwrap_or_default().to_owned(),
                        })
                    })
                    .collect(),
            })
        })
        .collect();
    Ok((groups, profile))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_user_data_is_a_valid_bash_script_that_attaches_first() {
        let script = group_user_data("eni-0123456789abcdef0");
        let mut check = std::process::Command::new("bash")
            .arg("-n")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("bash");
        use std::io::Write as _;
        check
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(check.wait().unwrap().success());
        assert!(!script.contains(INTERFACE));
        assert!(script.starts_with("#!/bin/bash\n# fixedip self-healing NAT instance"));
        assert!(
            !script.contains("# fixedip NAT instance: forward"),
            "one header"
        );
        let attach = script.find("aws ec2 attach-network-interface").unwrap();
        let route = script
            .find("\n/usr/local/sbin/fixedip-nat-route || exit 1")
            .unwrap();
        let drop = script.find("--no-associate-public-ip-address").unwrap();
        let install = script.find("dnf install").unwrap();
        let masquerade = script.find("oifname \"$OUT\" masquerade").unwrap();
        assert!(attach < route && route < drop && drop < install && route < masquerade);
        assert_eq!(script.matches("ENI=eni-0123456789abcdef0").count(), 2);
        // The route moves again at every boot, before the every-boot verdict.
        let unit = fixedip_core::nat_boot::EVERY_BOOT;
        assert!(script.contains(&format!("/etc/systemd/system/{unit}.d/route.conf")));
        assert!(script.contains("ExecStartPre=/usr/local/sbin/fixedip-nat-route"));
        assert!(script
            .trim_end()
            .ends_with("exec /usr/local/sbin/fixedip-nat-ready"));
    }

    /// The role may attach and modify interfaces, on the stack's resources only, nothing else.
    #[test]
    fn the_role_policy_is_limited_to_the_stacks_interfaces() {
        let policy: serde_json::Value = serde_json::from_str(&role_policy("payments")).unwrap();
        let statements = policy["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 1);
        assert_eq!(
            statements[0]["Action"],
            serde_json::json!([
                "ec2:AttachNetworkInterface",
                "ec2:ModifyNetworkInterfaceAttribute"
            ])
        );
        assert_eq!(
            statements[0]["Condition"]["StringEquals"]["aws:ResourceTag/fixedip:stack"],
            "payments"
        );
    }
}
