//! What deploy learns about the account before it makes a NAT (issue 16): the AZs it can use, by
//! AZ id, and a zone that refuses a subnet routed around by planning again, before any NAT is
//! made there and with the Elastic IPs allocated at the start serving the AZs that take its place
//! (issue 18); a zone Lambda refuses a function in, the same way. Run through a chaos proxy, whose
//! rules make moto refuse as AWS does.

use std::collections::BTreeSet;
use std::process::Output;

use aws_sdk_ec2::types::Filter;
use fixedip_chaos::{Outcome, Scenario};
use fixedip_tests::{example_dir, example_zip, fixture_zip, Emulator};

use crate::common::{
    assert_allowed_by_iam_policy, assert_one_stack, mutating_forwarded, path_arg, render, Lab,
    STACK,
};

fn deploy_args() -> Vec<&'static str> {
    vec!["deploy", "--zip", path_arg(example_zip())]
}

/// The AZ of each of the stack's subnets, by name.
async fn stack_azs(emulator: &Emulator) -> BTreeSet<String> {
    let answer = emulator
        .ec2()
        .await
        .describe_subnets()
        .filters(
            Filter::builder()
                .name("tag:fixedip:stack")
                .values(STACK)
                .build(),
        )
        .send()
        .await
        .unwrap();
    answer
        .subnets()
        .iter()
        .filter_map(|s| s.availability_zone().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zone_that_refuses_subnets_is_left_out_with_no_nat_and_no_extra_address() {
    // Stack `default` takes the AZs in the order use1-az1 (us-east-1b on moto), use1-az2
    // (us-east-1c), use1-az3 (us-east-1e)... The account cannot create subnets in us-east-1b.
    let lab = Lab::start(Scenario {
        refused_subnet_azs: vec!["us-east-1b".to_owned()],
        ..Scenario::default()
    })
    .await;
    let output = lab.run_expect(&deploy_args(), 0, "deploy").await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("AWS refused a subnet in us-east-1b")
            && stderr.contains("planning the stack again without that AZ"),
        "{stderr}"
    );
    assert_one_stack(&lab, 2, &["hello-egress"], "after the refusal").await;
    assert_eq!(
        stack_azs(&lab.emulator).await,
        BTreeSet::from(["us-east-1c".to_owned(), "us-east-1e".to_owned()])
    );

    assert_refusal_left_no_nat_nor_extra_address(&lab, "CreateSubnet").await;
}

/// The refusal of `operation` came before any NAT gateway was made, and the addresses allocated at
/// the start serve the AZs that took the refused ones' place: two allocations in all, both
/// serving the stack, none retained. The slots then keep their AZs for life: a second deploy
/// changes nothing. Every call was allowed by `iam-policy`.
async fn assert_refusal_left_no_nat_nor_extra_address(lab: &Lab, operation: &str) {
    let log = lab.proxy.log();
    let refused = log
        .iter()
        .position(|e| e.operation.name == operation && matches!(e.outcome, Outcome::Refused { .. }))
        .unwrap_or_else(|| panic!("no refused {operation}:\n{}", render(&log)));
    assert!(
        log[..refused]
            .iter()
            .all(|e| e.operation.name != "CreateNatGateway"),
        "a NAT gateway was made before the refusal:\n{}",
        render(&log)
    );
    let allocations = log
        .iter()
        .filter(|e| e.operation.name == "AllocateAddress")
        .count();
    assert_eq!(allocations, 2, "{}", render(&log));
    let addresses = lab
        .emulator
        .ec2()
        .await
        .describe_addresses()
        .send()
        .await
        .unwrap();
    assert_eq!(
        addresses.addresses().len(),
        2,
        "the two addresses are the only ones: {addresses:?}"
    );
    assert!(
        addresses
            .addresses()
            .iter()
            .all(|a| a.association_id().is_some()),
        "both serve a NAT gateway: {addresses:?}"
    );

    let output = lab.run_expect(&deploy_args(), 0, "second deploy").await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("account already matches"), "{stderr}");
    assert_allowed_by_iam_policy(&lab.proxy.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zone_lambda_refuses_is_left_out_with_no_nat_and_no_extra_address() {
    // Stack `default` takes use1-az1 (us-east-1b on moto) and use1-az2 (us-east-1c) first.
    // Lambda does not support us-east-1b, and says so only when a function is put there, without
    // naming the zone: both AZs of the refused call are left out.
    let lab = Lab::start(Scenario {
        lambda_refused_azs: vec!["us-east-1b".to_owned()],
        ..Scenario::default()
    })
    .await;
    let output = lab.run_expect(&deploy_args(), 0, "deploy").await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Lambda refused the function's subnets in us-east-1b, us-east-1c")
            && stderr.contains("planning the stack again without those AZs"),
        "{stderr}"
    );
    // Converged in one run, with the first slots' subnets removed: exactly one stack, no leak.
    assert_one_stack(&lab, 2, &["hello-egress"], "after the refusal").await;
    let azs = stack_azs(&lab.emulator).await;
    assert!(
        !azs.contains("us-east-1b") && !azs.contains("us-east-1c") && azs.len() == 2,
        "{azs:?}"
    );

    assert_refusal_left_no_nat_nor_extra_address(&lab, "CreateFunction").await;
}

/// The account at AWS's default quota of 5 VPCs (moto's default VPC and others'), with the chaos
/// proxy refusing as AWS would: deploy refuses before its first mutating call (not even the
/// lease is taken: without the check, the lease would be taken and CreateVpc refused by AWS),
/// naming the quota's code.
#[tokio::test(flavor = "multi_thread")]
async fn a_region_at_its_vpc_quota_is_refused_before_any_change() {
    let lab = Lab::start(Scenario {
        quotas: Some(fixedip_chaos::quotas::QuotaLimits::aws_defaults()),
        ..Scenario::default()
    })
    .await;
    let ec2 = lab.emulator.ec2().await;
    let before = ec2.describe_vpcs().send().await.unwrap().vpcs().len();
    for i in before..5 {
        ec2.create_vpc()
            .cidr_block(format!("10.{}.0.0/16", 100 + i))
            .send()
            .await
            .unwrap();
    }
    let output = lab
        .run_expect(&deploy_args(), 7, "deploy at the VPC quota")
        .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("\"VPCs per Region\"")
            && stderr.contains("L-F678F1CE")
            && stderr.contains("uses 5 of its 5"),
        "{stderr}"
    );
    let log = lab.proxy.log();
    assert_eq!(mutating_forwarded(&log), 0, "{}", render(&log));
    assert!(
        log.iter().all(|e| !e.operation.mutating),
        "{}",
        render(&log)
    );
    assert_allowed_by_iam_policy(&log);
}

/// A workspace whose package `package` (a fixture's, whose zip is deployed) carries `metadata`
/// in `[package.metadata.fixedip]`.
fn workspace_with(package: &str, metadata: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("Cargo.toml"),
        format!("[workspace]\nresolver = \"2\"\nmembers = [\"{package}\"]\n"),
    )
    .unwrap();
    std::fs::create_dir_all(root.join(package).join("src")).unwrap();
    std::fs::write(
        root.join(package).join("Cargo.toml"),
        format!(
            "[package]\nname = \"{package}\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n[package.metadata.fixedip]\n{metadata}\n"
        ),
    )
    .unwrap();
    std::fs::write(root.join(package).join("src/main.rs"), "fn main() {}\n").unwrap();
    let manifest = root.join("Cargo.toml");
    (dir, manifest)
}

fn deploy_fixture(emulator: &Emulator, package: &str, manifest: &std::path::Path) -> Output {
    let zip = fixture_zip(package);
    let mut command = emulator.cargo_fixedip();
    command
        .args(["deploy", "--manifest-path"])
        .arg(manifest)
        .arg("--zip")
        .arg(&zip)
        .current_dir(example_dir());
    command.output().expect("cargo-fixedip runs")
}

fn mutating(emulator: &Emulator, mark: fixedip_tests::RequestMark) -> Vec<String> {
    emulator
        .requests_since(mark)
        .iter()
        .filter(|r| r.is_mutating())
        .map(|r| r.operation.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn az_ids_pin_the_azs_and_an_unusable_one_is_refused_before_any_change() {
    let emulator = Emulator::start();
    // With `nat = "instance"`, use1-az3 does not offer t4g.nano (DescribeInstanceTypeOfferings;
    // RunInstances would answer Unsupported there, after the addresses were allocated).
    let (_dir, manifest) = workspace_with("nat-instance", "az-ids = [\"use1-az3\", \"use1-az1\"]");
    let mark = emulator.mark();
    let output = deploy_fixture(&emulator, "nat-instance", &manifest);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains("names use1-az3, which the stack cannot use: the NAT instance type t4g.nano is not offered there")
            && stderr.contains("use1-az1, use1-az2, use1-az4, use1-az5, use1-az6"),
        "{stderr}"
    );
    assert_eq!(mutating(&emulator, mark), Vec::<String>::new());

    // An id the region does not have: the same, before any change.
    let (_dir, manifest) = workspace_with("egress-one", "az-ids = [\"use1-az9\", \"use1-az1\"]");
    let mark = emulator.mark();
    let output = deploy_fixture(&emulator, "egress-one", &manifest);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains("names use1-az9, which us-east-1 does not offer"),
        "{stderr}"
    );
    assert_eq!(mutating(&emulator, mark), Vec::<String>::new());

    // Pinned ids that exist: the one AZ of `egress-one` is the first listed, use1-az4 (us-east-1d
    // on moto), where the stack's own order would have started at use1-az1 (us-east-1b).
    let (_dir, manifest) = workspace_with("egress-one", "az-ids = [\"use1-az4\", \"use1-az1\"]");
    let output = deploy_fixture(&emulator, "egress-one", &manifest);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let azs = stack_azs(&emulator).await;
    assert_eq!(azs, BTreeSet::from(["us-east-1d".to_owned()]));
}
