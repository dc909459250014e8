//! The harness itself: a private moto answers the real SDK, and its recording sees every call.

use fixedip_tests::{count, Emulator, REGION};

#[tokio::test]
async fn emulator_answers_the_sdk_and_records_every_call() {
    let emulator = Emulator::start();
    let config = emulator.sdk_config().await;

    let identity = aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert!(identity.account().is_some_and(|a| a.len() == 12));

    let ec2 = aws_sdk_ec2::Client::new(&config);
    let zones = ec2.describe_availability_zones().send().await.unwrap();
    assert!(zones
        .availability_zones()
        .iter()
        .any(|z| z.zone_name() == Some(&format!("{REGION}a")[..])));

    let mark = emulator.mark();
    ec2.create_vpc()
        .cidr_block("10.0.0.0/24")
        .send()
        .await
        .unwrap();
    ec2.describe_vpcs().send().await.unwrap();

    let all = emulator.requests();
    let operations: Vec<_> = all
        .iter()
        .map(|r| (r.service.as_str(), r.operation.as_str()))
        .collect();
    assert_eq!(
        operations,
        [
            ("sts", "GetCallerIdentity"),
            ("ec2", "DescribeAvailabilityZones"),
            ("ec2", "CreateVpc"),
            ("ec2", "DescribeVpcs")
        ]
    );
    assert_eq!(count(&emulator.requests_since(mark)), (2, 1));
}

#[tokio::test]
async fn emulators_are_isolated_from_each_other() {
    let (first, second) = (Emulator::start(), Emulator::start());
    let ec2 = aws_sdk_ec2::Client::new(&first.sdk_config().await);
    ec2.create_vpc()
        .cidr_block("10.9.0.0/24")
        .send()
        .await
        .unwrap();
    let other = aws_sdk_ec2::Client::new(&second.sdk_config().await);
    let vpcs = other.describe_vpcs().send().await.unwrap();
    assert!(vpcs
        .vpcs()
        .iter()
        .all(|v| v.cidr_block() != Some("10.9.0.0/24")));
}

#[tokio::test]
async fn lambda_runs_without_docker() {
    let emulator = Emulator::start();
    let config = emulator.moto_api("GET", "/moto-api/config", "");
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["lambda"]["use_docker"], false);
}
