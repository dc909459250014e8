//! Carrying out the NAT-instance steps (`nat = "instance"`): launch, check off, address on,
//! terminate. The choices (type, image parameter, slot, which address) are the planner's.

use std::time::Duration;

use aws_sdk_ec2::client::Waiters as _;
use aws_sdk_ec2::types::{
    AttributeBooleanValue, Filter, InstanceNetworkInterfaceSpecification, InstanceType,
    IpPermission, IpRange, ResourceType,
};
use base64::Engine as _;
use fixedip_core::nat_boot::Readiness;
use fixedip_core::observed::Slot;
use fixedip_core::plan::Step;
use fixedip_core::tags::{self, Component};

use super::execute::{has_code, sent_once, Context, Produced, Progress};
use super::AwsError;

/// Runs once at the first boot (cloud-init user data) and sets up a NAT that survives reboots:
/// forwarding as a sysctl.d file and the masquerade rule as the nftables ruleset that
/// `nftables.service` loads, both read again at every boot. The outbound interface is the default
/// route's (`ens5` on Nitro instances), found at boot rather than assumed.
///
/// The Amazon Linux 2023 images ship neither `nft` nor `iptables` (field reports: aws-cdk's
/// `NatProvider.instanceV2` installs iptables at boot, jamesmoriarty/cfn-cheapest-nat PR 16 "nft:
/// command not found", aws/eks-hybrid PR 37), so `nftables` comes from the AL2023 repositories,
/// which the instance reaches once its Elastic IP is associated, moments after it is `running`.
/// Until then, and through the `dnf` race at boot (aws/aws-cdk issue 36717) and the memory of a
/// 512 MB instance (amazonlinux/amazon-linux-2023 issue 404: `dnf` OOM-killed; a swap file
/// first, as cfn-cheapest-nat does), the install is retried for up to ten minutes. Every step is
/// written to the console (`GetConsoleOutput`), the last line being
/// [`fixedip_core::nat_boot::READY`] or [`fixedip_core::nat_boot::FAILED`]: the deployer routes
/// traffic to the instance only after the first (`AwaitNatInstanceReady`). The files are written
/// before the install so that a reboot after it still finds them.
///
/// The verdict comes from one check (`/usr/local/sbin/fixedip-nat-ready`: forwarding on and the
/// masquerade table loaded), which the first boot runs last and a systemd unit
/// ([`fixedip_core::nat_boot::EVERY_BOOT`]) runs at every later boot: cloud-init runs user data
/// once per instance, and without it an instance rebooted, started again or recovered by EC2
/// onto another host would forward without ever saying so, and a deploy that starts it would
/// wait for a line that never comes.
pub const USER_DATA: &str = r#"#!/bin/bash
# fixedip NAT instance: forward and masquerade the private subnets' traffic.
set -uo pipefail
log() { echo "fixedip-nat: $*" | tee /dev/console; }
if [ ! -f /swapfile ]; then
  { dd if=/dev/zero of=/swapfile bs=1M count=512 status=none && chmod 600 /swapfile &&
    mkswap /swapfile >/dev/null && swapon /swapfile; } || log "no swap file: continuing without"
fi
cat > /etc/sysctl.d/90-fixedip-nat.conf <<'SYSCTL'
net.ipv4.ip_forward = 1
net.ipv4.conf.all.send_redirects = 0
SYSCTL
sysctl --system >/dev/null
OUT=$(ip -4 route show default | awk '{print $5; exit}')
cat > /etc/sysconfig/nftables.conf <<NFT
flush ruleset
table ip fixedip_nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "$OUT" masquerade
  }
}
NFT
cat > /usr/local/sbin/fixedip-nat-ready <<'CHECK'
#!/bin/bash
# At every boot: say on the console whether this instance forwards and masquerades.
log() { echo "fixedip-nat: $*" | tee /dev/console; }
OUT=$(ip -4 route show default | awk '{print $5; exit}')
if [ "$(sysctl -n net.ipv4.ip_forward)" = 1 ] && nft list table ip fixedip_nat >/dev/null 2>&1; then
  log "ready: forwarding and masquerading out of $OUT"
else
  log "FAILED: forwarding or the masquerade rule is off after this boot"
  exit 1
fi
CHECK
chmod 755 /usr/local/sbin/fixedip-nat-ready
cat > /etc/systemd/system/fixedip-nat-ready.service <<'UNIT'
[Unit]
Description=fixedip NAT: report on the console whether forwarding and masquerading are on
After=nftables.service systemd-sysctl.service network-online.target
Wants=network-online.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/fixedip-nat-ready

[Install]
WantedBy=multi-user.target
UNIT
for attempt in $(seq 1 60); do
  command -v nft >/dev/null && break
  dnf install -y nftables >/dev/null 2>&1 && break
  log "installing nftables failed (attempt $attempt of 60): retrying in 10 s"
  sleep 10
done
if ! command -v nft >/dev/null; then
  log "FAILED: nftables could not be installed; this instance forwards nothing"
  exit 1
fi
systemctl enable --now nftables && systemctl restart nftables ||
  { log "FAILED: nftables.service did not load the ruleset"; exit 1; }
systemctl enable fixedip-nat-ready.service
exec /usr/local/sbin/fixedip-nat-ready
"#;

/// An instance's id and its primary network interface (device index 0), as RunInstances or
/// DescribeInstances report them.
fn launched(instance: &aws_sdk_ec2::types::Instance) -> Option<(String, Option<String>)> {
    let interface = instance
        .network_interfaces()
        .iter()
        .find(|n| n.attachment().and_then(|a| a.device_index()) == Some(0))
        .and_then(|n| n.network_interface_id())
        .map(str::to_owned);
    Some((instance.instance_id()?.to_owned(), interface))
}

fn produced_instance(
    instance: Option<&aws_sdk_ec2::types::Instance>,
) -> Result<Produced, AwsError> {
    let (id, interface) = instance
        .and_then(launched)
        .ok_or(AwsError::IncompleteAnswer {
            operation: "RunInstances",
            missing: "an instance id",
        })?;
    Ok(Produced {
        id: Some(id),
        public_ip: None,
        interface,
    })
}

impl<'a> Context<'a> {
    pub(super) async fn create_nat_security_group(
        self,
        step: &'a Step,
        vpc: String,
        admit: String,
    ) -> Result<Produced, AwsError> {
        let ec2 = &self.aws.ec2;
        let stack = self.stack();
        let request = ec2
            .create_security_group()
            .vpc_id(vpc)
            .group_name(tags::nat_security_group_name(stack))
            .description(format!(
                "fixedip stack {stack}: NAT instances, reachable from the private subnets only"
            ))
            .tag_specifications(self.ec2_tags(
                ResourceType::SecurityGroup,
                self.tags(Component::NatSecurityGroup, None),
            ));
        let answer = self
            .send(step, "CreateSecurityGroup", &[], || request.clone().send())
            .await
            .map_err(|e| AwsError::call("CreateSecurityGroup", e))?;
        let id = answer
            .group_id()
            .ok_or(AwsError::IncompleteAnswer {
                operation: "CreateSecurityGroup",
                missing: "the new resource's id",
            })?
            .to_owned();
        // All protocols from the private half of the VPC; the default egress rule stays.
        let rule = IpPermission::builder()
            .ip_protocol("-1")
            .ip_ranges(
                IpRange::builder()
                    .cidr_ip(admit)
                    .description("fixedip private subnets")
                    .build(),
            )
            .build();
        // The group was created a moment ago: its id may not be visible yet.
        const EXISTS: &[&str] = &["InvalidPermission.Duplicate"];
        let request = ec2
            .authorize_security_group_ingress()
            .group_id(&id)
            .ip_permissions(rule);
        match self
            .send_naming(step, "AuthorizeSecurityGroupIngress", EXISTS, true, || {
                request.clone().send()
            })
            .await
        {
            Ok(_) => {}
            Err(e) if has_code(&e, EXISTS) => {}
            Err(e) => return Err(AwsError::call("AuthorizeSecurityGroupIngress", e)),
        }
        Ok(Produced {
            id: Some(id),
            public_ip: None,
            interface: None,
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn launch_nat_instance(
        self,
        step: &'a Step,
        subnet: String,
        security_group: String,
        slot: Slot,
        (instance_type, image_parameter): (&'a str, &'a str),
        public_ip: bool,
    ) -> Result<Produced, AwsError> {
        let ec2 = &self.aws.ec2;
        let image = self.latest_image(image_parameter).await?;
        // The same launch always carries the same token: AWS returns the instance it already made
        // rather than a second one (moto ignores it: see `emulator.rs`).
        let generation = match &step.action {
            fixedip_core::plan::Action::LaunchNatInstance { generation, .. } => *generation,
            _ => 0,
        };
        let token = fixedip_core::tokens::nat_instance(self.stack(), slot, &subnet, generation);
        let tags = self.tags(Component::NatInstance, Some(slot));
        // The subnet and group go on the primary interface, where AWS takes the public IP flag
        // (it refuses them at the top level alongside a network interface specification).
        let interface = InstanceNetworkInterfaceSpecification::builder()
            .device_index(0)
            .subnet_id(&subnet)
            .groups(&security_group)
            .associate_public_ip_address(public_ip)
            .build();
        let request = ec2
            .run_instances()
            .image_id(image)
            .instance_type(InstanceType::from(instance_type))
            .min_count(1)
            .max_count(1)
            .network_interfaces(interface)
            .client_token(&token)
            .user_data(base64::engine::general_purpose::STANDARD.encode(USER_DATA))
            .tag_specifications(self.ec2_tags(ResourceType::Instance, tags.clone()))
            .tag_specifications(self.ec2_tags(ResourceType::Volume, tags.clone()))
            .tag_specifications(self.ec2_tags(ResourceType::NetworkInterface, tags));
        // Sent once; a lost answer is looked up by the token: only the instance launched with
        // this very token is this step's, any other instance of the slot is not ours to pick.
        let produced = self
            .create_or_find(
                step,
                "RunInstances",
                || {
                    let request = request.clone().customize().config_override(sent_once());
                    async move {
                        let answer = request.send().await?;
                        Ok(produced_instance(answer.instances().first()))
                    }
                },
                || async {
                    Ok(self.instance_launched(&token, slot, &subnet).await?.map(
                        |(id, interface)| Produced {
                            id: Some(id),
                            public_ip: None,
                            interface,
                        },
                    ))
                },
            )
            .await?;
        let (Some(id), interface) = (produced.id, produced.interface) else {
            return Err(AwsError::IncompleteAnswer {
                operation: "RunInstances",
                missing: "an instance id",
            });
        };
        (self.progress)(Progress::Waiting {
            step,
            what: "NAT instance to be running",
        });
        let timeout = self.inputs.timeouts.nat_gateway;
        ec2.wait_until_instance_running()
            .instance_ids(&id)
            .wait(timeout)
            .await
            .map_err(|e| AwsError::Call {
                operation: "wait",
                code: None,
                message: format!(
                    "waiting up to {} s for NAT instance {id} to be running: {}",
                    timeout.as_secs(),
                    super::error_chain(&e)
                ),
            })?;
        Ok(Produced {
            id: Some(id),
            public_ip: None,
            interface,
        })
    }

    /// The image id AWS's public SSM parameter names (the latest Amazon Linux 2023).
    pub(super) async fn latest_image(self, image_parameter: &str) -> Result<String, AwsError> {
        let ssm = aws_sdk_ssm::Client::new(&self.aws.config);
        ssm.get_parameter()
            .name(image_parameter)
            .send()
            .await
            .map_err(|e| AwsError::call("GetParameter", e))?
            .parameter()
            .and_then(|p| p.value())
            .map(str::to_owned)
            .ok_or(AwsError::IncompleteAnswer {
                operation: "GetParameter",
                missing: "the image id",
            })
    }

    /// Polls the instance's console output until its boot reports ready (see
    /// [`fixedip_core::nat_boot`] for why the console): `FAILED` ends the wait at once, and so
    /// does the bound; either way with the instance's own last lines. AWS has no output for a
    /// while after launch (an empty answer): that is booting too.
    pub(super) async fn await_nat_instance_ready(
        self,
        step: &'a Step,
        instance: String,
    ) -> Result<Produced, AwsError> {
        let bound = self.inputs.timeouts.nat_instance_ready;
        let mut backoff = self.backoff(bound);
        loop {
            let readiness = self.nat_readiness(&instance).await?;
            match readiness {
                Readiness::Ready => return Ok(Produced::default()),
                Readiness::Failed(_) => {
                    return Err(AwsError::NatInstanceNotReady {
                        instance,
                        failed: true,
                        reported: readiness.reported(),
                    })
                }
                Readiness::Booting(_) => {}
            }
            (self.progress)(Progress::Waiting {
                step,
                what: "NAT instance to report forwarding and masquerading on",
            });
            if !backoff.pause().await {
                return Err(AwsError::NatInstanceNotReady {
                    instance,
                    failed: false,
                    reported: format!(
                        "{} (waited {} s; --nat-ready-timeout)",
                        readiness.reported(),
                        backoff.waited().as_secs()
                    ),
                });
            }
        }
    }

    async fn nat_readiness(self, instance: &str) -> Result<Readiness, AwsError> {
        crate::aws::observe::nat_readiness(&self.aws.ec2, instance).await
    }

    async fn instance_launched(
        self,
        token: &str,
        slot: Slot,
        subnet: &str,
    ) -> Result<Option<(String, Option<String>)>, AwsError> {
        let filters = [
            Filter::builder()
                .name(format!("tag:{}", tags::STACK))
                .values(self.stack().to_string())
                .build(),
            Filter::builder()
                .name(format!("tag:{}", tags::SLOT))
                .values(slot.to_string())
                .build(),
            Filter::builder().name("subnet-id").values(subnet).build(),
            Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .build(),
        ];
        let answer = self
            .aws
            .ec2
            .describe_instances()
            .set_filters(Some(filters.to_vec()))
            .send()
            .await
            .map_err(|e| AwsError::call("DescribeInstances", e))?;
        Ok(answer
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.client_token() == Some(token))
            .and_then(launched))
    }

    pub(super) async fn disable_source_dest_check(
        self,
        step: &'a Step,
        instance: String,
    ) -> Result<Produced, AwsError> {
        let request = self
            .aws
            .ec2
            .modify_instance_attribute()
            .instance_id(instance)
            .source_dest_check(AttributeBooleanValue::builder().value(false).build());
        self.send_done(step, "ModifyInstanceAttribute", || request.clone().send())
            .await
    }

    /// The address on the instance's primary interface (the association stays put if the
    /// instance is stopped and started, and it is what the route and `verify` see): the one the
    /// plan names, or the launch reported. Without either, AWS's own default for an instance id
    /// is that same primary interface; the executor looks nothing up.
    pub(super) async fn associate_address(
        self,
        step: &'a Step,
        allocation_id: String,
        instance: String,
        interface: Option<String>,
    ) -> Result<Produced, AwsError> {
        let request = self
            .aws
            .ec2
            .associate_address()
            .allocation_id(allocation_id);
        let request = match interface {
            Some(eni) => request.network_interface_id(eni),
            None => request.instance_id(instance),
        };
        self.send_done(step, "AssociateAddress", || request.clone().send())
            .await
    }

    /// No public IP from AWS on this interface from now on (see `Action::DropPublicIp`).
    pub(super) async fn drop_public_ip(
        self,
        step: &'a Step,
        network_interface: &'a str,
    ) -> Result<Produced, AwsError> {
        let request = self
            .aws
            .ec2
            .modify_network_interface_attribute()
            .network_interface_id(network_interface)
            .associate_public_ip_address(false);
        self.send_done(step, "ModifyNetworkInterfaceAttribute", || {
            request.clone().send()
        })
        .await
    }

    pub(super) async fn disassociate_address(
        self,
        step: &'a Step,
        association_id: &'a str,
    ) -> Result<Produced, AwsError> {
        const GONE: &[&str] = &["InvalidAssociationID.NotFound"];
        let request = self
            .aws
            .ec2
            .disassociate_address()
            .association_id(association_id);
        match self
            .send(step, "DisassociateAddress", GONE, || request.clone().send())
            .await
        {
            Ok(_) => Ok(Produced::default()),
            Err(e) if has_code(&e, GONE) => Ok(Produced::default()),
            Err(e) => Err(AwsError::call("DisassociateAddress", e)),
        }
    }

    /// Starts a stopped NAT instance, waited for until `running`. One still `stopping` cannot
    /// be started yet (`IncorrectInstanceState`): it is waited for until `stopped` first.
    pub(super) async fn start_nat_instance(
        self,
        step: &'a Step,
        instance: &'a str,
    ) -> Result<Produced, AwsError> {
        let ec2 = &self.aws.ec2;
        let timeout: Duration = self.inputs.timeouts.nat_gateway;
        let waited = |what: &'static str| {
            move |e: &(dyn std::error::Error + 'static)| AwsError::Call {
                operation: "wait",
                code: None,
                message: format!(
                    "waiting up to {} s for NAT instance {instance} to be {what}: {}",
                    timeout.as_secs(),
                    super::error_chain(e)
                ),
            }
        };
        const STOPPING: &[&str] = &["IncorrectInstanceState"];
        let request = ec2.start_instances().instance_ids(instance);
        let started = self
            .send(step, "StartInstances", STOPPING, || request.clone().send())
            .await;
        if let Err(e) = started {
            if !has_code(&e, STOPPING) {
                return Err(AwsError::call("StartInstances", e));
            }
            (self.progress)(Progress::Waiting {
                step,
                what: "NAT instance to be stopped before it starts",
            });
            ec2.wait_until_instance_stopped()
                .instance_ids(instance)
                .wait(timeout)
                .await
                .map_err(|e| waited("stopped")(&e))?;
            self.send_done(step, "StartInstances", || request.clone().send())
                .await?;
        }
        (self.progress)(Progress::Waiting {
            step,
            what: "NAT instance to be running",
        });
        ec2.wait_until_instance_running()
            .instance_ids(instance)
            .wait(timeout)
            .await
            .map_err(|e| waited("running")(&e))?;
        Ok(Produced::default())
    }

    pub(super) async fn terminate_nat_instance(
        self,
        step: &'a Step,
        instance: &'a str,
    ) -> Result<Produced, AwsError> {
        let ec2 = &self.aws.ec2;
        // Its Elastic IP is disassociated by a step the plan puts before this one (see
        // `emulator.rs`: AWS drops the association at termination, moto keeps it).
        match ec2
            .terminate_instances()
            .instance_ids(instance)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if has_code(&e, &["InvalidInstanceID.NotFound"]) => {
                return Ok(Produced::default())
            }
            Err(e) => return Err(AwsError::call("TerminateInstances", e)),
        }
        (self.progress)(Progress::Waiting {
            step,
            what: "NAT instance to be terminated",
        });
        let timeout: Duration = self.inputs.timeouts.nat_gateway;
        ec2.wait_until_instance_terminated()
            .instance_ids(instance)
            .wait(timeout)
            .await
            .map_err(|e| AwsError::Call {
                operation: "wait",
                code: None,
                message: format!(
                    "waiting up to {} s for NAT instance {instance} to be terminated: {}",
                    timeout.as_secs(),
                    super::error_chain(&e)
                ),
            })?;
        Ok(Produced::default())
    }
}

#[cfg(test)]
mod tests {
    use super::USER_DATA;

    #[test]
    fn the_user_data_is_a_valid_bash_script() {
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
            .write_all(USER_DATA.as_bytes())
            .unwrap();
        assert!(check.wait().unwrap().success());
    }

    /// The lines the deployer, status and verify read (`fixedip_core::nat_boot`) are the ones
    /// the script writes: every line through `log`, which prefixes the marker.
    #[test]
    fn the_script_writes_the_markers_the_deployer_reads() {
        use fixedip_core::nat_boot::{FAILED, PREFIX, READY};
        assert!(USER_DATA.contains(&format!("log() {{ echo \"{PREFIX} $*\"")));
        let marker = |line: &str| format!("log \"{}", line.trim_start_matches(PREFIX).trim());
        assert!(USER_DATA.contains(&marker(READY)));
        assert!(USER_DATA.matches(&marker(FAILED)).count() >= 2);
    }

    /// A download that fails must not leave the instance without its configuration, nor end the
    /// script at once: the files come first, and the install is retried a bounded number of times.
    #[test]
    fn the_configuration_is_written_before_the_download_which_is_retried() {
        let download = USER_DATA.find("dnf install").expect("the install");
        for file in [
            "/etc/sysctl.d/90-fixedip-nat.conf",
            "/etc/sysconfig/nftables.conf",
        ] {
            assert!(USER_DATA.find(file).expect(file) < download, "{file}");
        }
        assert!(
            !USER_DATA.contains("set -e"),
            "a failed attempt must not end the script"
        );
        assert!(USER_DATA.contains("for attempt in $(seq 1 60)"));
        assert!(USER_DATA
            .trim_end()
            .ends_with("exec /usr/local/sbin/fixedip-nat-ready"));
    }

    /// The verdict is written at every boot by the unit the script enables, with the same check
    /// the first boot ends with; the chaos proxy's model of a restart looks for the unit's name.
    #[test]
    fn the_verdict_is_written_again_at_every_boot() {
        use fixedip_core::nat_boot::EVERY_BOOT;
        assert!(USER_DATA.contains(&format!("cat > /etc/systemd/system/{EVERY_BOOT} <<")));
        assert!(USER_DATA.contains(&format!("systemctl enable {EVERY_BOOT}")));
        assert!(USER_DATA.contains("ExecStart=/usr/local/sbin/fixedip-nat-ready"));
        assert!(USER_DATA.contains("WantedBy=multi-user.target"));
        assert!(USER_DATA.contains("After=nftables.service"));
    }
}
