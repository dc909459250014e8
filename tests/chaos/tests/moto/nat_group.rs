//! A self-healing NAT's group instance (`nat_group.rs`), through the real SDK: the proxy plays
//! the boot moto does not run (the fixed interface attached at device index 1, then, once the
//! interface holds its Elastic IP, the ready line), detaches the interface when its instance is terminated (moto keeps it attached), and
//! holds the replacement's boot until the group would have noticed.

use std::time::Duration;

use aws_sdk_autoscaling::types::LaunchTemplateSpecification;
use aws_sdk_ec2::types::{
    LaunchTemplateInstanceNetworkInterfaceSpecificationRequest, RequestLaunchTemplateData,
};
use base64::Engine as _;
use fixedip_chaos::scenario::NatBoot;
use fixedip_chaos::Scenario;
use fixedip_core::nat_boot::{readiness, Readiness};

use crate::support::{network, Rig};

/// The fixed interface the instance holds at device index 1, if any.
async fn holder(ec2: &aws_sdk_ec2::Client, interface: &str) -> Option<String> {
    let answer = ec2
        .describe_network_interfaces()
        .network_interface_ids(interface)
        .send()
        .await
        .expect("DescribeNetworkInterfaces");
    let attachment = answer.network_interfaces()[0].attachment()?.clone();
    assert_eq!(attachment.device_index(), Some(1));
    attachment.instance_id().map(str::to_owned)
}

async fn instances(autoscaling: &aws_sdk_autoscaling::Client, group: &str) -> Vec<String> {
    let answer = autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .expect("DescribeAutoScalingGroups");
    answer.auto_scaling_groups()[0]
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect()
}

async fn ready(ec2: &aws_sdk_ec2::Client, id: &str) -> Readiness {
    let answer = ec2
        .get_console_output()
        .instance_id(id)
        .latest(true)
        .send()
        .await
        .expect("GetConsoleOutput");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(answer.output().unwrap_or_default())
        .expect("base64");
    readiness(&String::from_utf8(bytes).unwrap())
}

#[tokio::test]
async fn a_group_instance_attaches_the_interface_and_its_replacement_takes_it_over() {
    let scenario = Scenario {
        nat_boot: NatBoot {
            ready_after_ms: 0,
            replacement_after_ms: 1500,
            never_ready: Vec::new(),
        },
        ..Scenario::default()
    };
    let rig = Rig::start(scenario).await;
    let config = rig.sdk(1).await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let ssm = aws_sdk_ssm::Client::new(&config);
    let autoscaling = aws_sdk_autoscaling::Client::new(&config);
    let net = network(&ec2).await;
    let interface = ec2
        .create_network_interface()
        .subnet_id(&net.subnet_id)
        .send()
        .await
        .expect("CreateNetworkInterface")
        .network_interface()
        .and_then(|n| n.network_interface_id())
        .unwrap()
        .to_owned();
    let image = ssm
        .get_parameter()
        .name("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64")
        .send()
        .await
        .expect("GetParameter")
        .parameter()
        .and_then(|p| p.value())
        .unwrap()
        .to_owned();
    let script = format!("#!/bin/bash\nENI={interface}\nlog() {{ echo \"fixedip-nat: $*\"; }}\n");
    let template = ec2
        .create_launch_template()
        .launch_template_name("nat-0")
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id(image)
                .instance_type(aws_sdk_ec2::types::InstanceType::T4gNano)
                .network_interfaces(
                    LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
                        .device_index(0)
                        .subnet_id(&net.subnet_id)
                        .build(),
                )
                .user_data(base64::engine::general_purpose::STANDARD.encode(&script))
                .build(),
        )
        .send()
        .await
        .expect("CreateLaunchTemplate");
    autoscaling
        .create_auto_scaling_group()
        .auto_scaling_group_name("nat-0")
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_id(
                    template
                        .launch_template()
                        .unwrap()
                        .launch_template_id()
                        .unwrap(),
                )
                .version("$Latest")
                .build(),
        )
        .min_size(1)
        .max_size(1)
        .vpc_zone_identifier(&net.subnet_id)
        .send()
        .await
        .expect("CreateAutoScalingGroup");

    // Seen in the group: its boot attaches the interface, then waits for the interface's
    // Elastic IP (in a switch from a NAT gateway, it comes once the gateway is deleted) before it
    // says ready.
    let first = instances(&autoscaling, "nat-0").await.remove(0);
    assert_eq!(
        holder(&ec2, &interface).await.as_deref(),
        Some(first.as_str())
    );
    assert!(!ready(&ec2, &first).await.is_ready());
    let allocation = ec2
        .allocate_address()
        .domain(aws_sdk_ec2::types::DomainType::Vpc)
        .send()
        .await
        .expect("AllocateAddress");
    ec2.associate_address()
        .allocation_id(allocation.allocation_id().unwrap())
        .network_interface_id(&interface)
        .send()
        .await
        .expect("AssociateAddress");
    assert_eq!(ready(&ec2, &first).await, Readiness::Ready);

    // Terminated: the interface is free again; the replacement takes it only once the group
    // would have noticed, and says ready then.
    ec2.terminate_instances()
        .instance_ids(&first)
        .send()
        .await
        .expect("TerminateInstances");
    assert_eq!(holder(&ec2, &interface).await, None);
    let replacement = instances(&autoscaling, "nat-0").await;
    let replacement = replacement
        .into_iter()
        .find(|i| *i != first)
        .expect("moto replaces the terminated instance");
    assert!(!ready(&ec2, &replacement).await.is_ready());
    assert_eq!(holder(&ec2, &interface).await, None);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(ready(&ec2, &replacement).await, Readiness::Ready);
    assert_eq!(
        holder(&ec2, &interface).await.as_deref(),
        Some(replacement.as_str())
    );
}
