//! What deploy learns about the account before it bills anything (issue 16): the AZs it can use,
//! by AZ id, and a zone that refuses a subnet routed around by planning again, before any Elastic
//! IP is allocated. Run through a chaos proxy, whose rules make moto refuse as AWS does.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::Filter;
use fixedip_chaos::{Outcome, Scenario};
use fixedip_tests::example_zip;

use crate::common::{
    assert_allowed_by_iam_policy, assert_one_stack, mutating_forwarded, path_arg, render, Lab,
    STACK,
};

fn deploy_args() -> Vec<&'static str> {
    vec!["deploy", "--zip", path_arg(example_zip())]
}

/// The AZ of each of the stack's subnets, by name.
async fn stack_azs(lab: &Lab) -> BTreeSet<String> {
    let answer = lab
        .emulator
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
async fn a_zone_that_refuses_subnets_is_left_out_before_any_address_is_allocated() {
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
        stack_azs(&lab).await,
        BTreeSet::from(["us-east-1c".to_owned(), "us-east-1e".to_owned()])
    );

    // The refusal came before any address was allocated: nothing billed was made in vain.
    let log = lab.proxy.log();
    let refused = log
        .iter()
        .position(|e| {
            e.operation.name == "CreateSubnet" && matches!(e.outcome, Outcome::Refused { .. })
        })
        .unwrap_or_else(|| panic!("no refused CreateSubnet:\n{}", render(&log)));
    assert!(
        log[..refused]
            .iter()
            .all(|e| e.operation.name != "AllocateAddress"),
        "an address was allocated before the refusal:\n{}",
        render(&log)
    );
    let allocations = log
        .iter()
        .filter(|e| e.operation.name == "AllocateAddress")
        .count();
    assert_eq!(allocations, 2, "{}", render(&log));

    // The slots keep their AZs for life: a second deploy makes no subnet and changes nothing.
    let output = lab.run_expect(&deploy_args(), 0, "second deploy").await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("account already matches"), "{stderr}");
    assert_allowed_by_iam_policy(&lab.proxy.log());
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
