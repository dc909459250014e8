//! The boot of a NAT instance (`nat_boot.rs`), through the real SDK: empty output while the
//! instance has no public address, booting lines once it has, the ready line after the boot
//! time; an instance without fixedip's user data gets moto's own answer; the k-th launch listed
//! as never ready ends in FAILED.

use std::time::Duration;

use base64::Engine as _;
use fixedip_chaos::scenario::{NatBoot, NeverReady};
use fixedip_chaos::Scenario;
use fixedip_core::nat_boot::{readiness, Readiness};

use crate::support::{network, Rig};

const SCRIPT: &str = "#!/bin/bash\nlog() { echo \"fixedip-nat: $*\" | tee /dev/console; }\n";

async fn launch(
    ec2: &aws_sdk_ec2::Client,
    ssm: &aws_sdk_ssm::Client,
    subnet: &str,
    script: &str,
) -> String {
    let image = ssm
        .get_parameter()
        .name("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64")
        .send()
        .await
        .expect("GetParameter")
        .parameter()
        .and_then(|p| p.value())
        .expect("an image")
        .to_owned();
    let answer = ec2
        .run_instances()
        .image_id(image)
        .instance_type(aws_sdk_ec2::types::InstanceType::T4gNano)
        .min_count(1)
        .max_count(1)
        .subnet_id(subnet)
        .user_data(base64::engine::general_purpose::STANDARD.encode(script))
        .send()
        .await
        .expect("RunInstances");
    answer.instances()[0].instance_id().unwrap().to_owned()
}

async fn console(ec2: &aws_sdk_ec2::Client, id: &str) -> String {
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
    String::from_utf8(bytes).unwrap()
}

async fn give_address(ec2: &aws_sdk_ec2::Client, id: &str) {
    let allocation = ec2
        .allocate_address()
        .send()
        .await
        .expect("AllocateAddress");
    ec2.associate_address()
        .allocation_id(allocation.allocation_id().unwrap())
        .instance_id(id)
        .send()
        .await
        .expect("AssociateAddress");
}

#[tokio::test]
async fn a_nat_instance_reports_ready_after_its_boot_once_it_has_an_address() {
    let scenario = Scenario {
        nat_boot: NatBoot {
            replacement_after_ms: 0,
            ready_after_ms: 1500,
            never_ready: vec![NeverReady {
                nth: 2,
                silent: false,
            }],
        },
        ..Scenario::default()
    };
    let rig = Rig::start(scenario).await;
    let config = rig.sdk(1).await;
    let (ec2, ssm) = (
        aws_sdk_ec2::Client::new(&config),
        aws_sdk_ssm::Client::new(&config),
    );
    let net = network(&ec2).await;

    let nat = launch(&ec2, &ssm, &net.subnet_id, SCRIPT).await;
    // No way out yet: nothing of the user data on the console.
    assert_eq!(console(&ec2, &nat).await, "");
    give_address(&ec2, &nat).await;
    assert!(
        matches!(readiness(&console(&ec2, &nat).await), Readiness::Booting(l) if !l.is_empty())
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(readiness(&console(&ec2, &nat).await), Readiness::Ready);

    // The second launch of a NAT instance never gets ready.
    let broken = launch(&ec2, &ssm, &net.subnet_id, SCRIPT).await;
    assert!(matches!(
        readiness(&console(&ec2, &broken).await),
        Readiness::Failed(_)
    ));

    // Not fixedip's: moto's own sample.
    let other = launch(&ec2, &ssm, &net.subnet_id, "#!/bin/bash\necho hello\n").await;
    give_address(&ec2, &other).await;
    assert!(console(&ec2, &other).await.contains("Linux version"));
}
