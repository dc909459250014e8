//! Dependency rules moto skips, and Lambda's Hyperplane ENIs that block teardown while they linger.

use std::time::{Duration, Instant};

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{DomainType, Filter};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime, VpcConfig};
use fixedip_chaos::enis::FUNCTION_TAG;
use fixedip_chaos::{HyperplaneEnis, Outcome, Scenario, Timing};

use crate::support::{code, network, Rig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_in_the_wrong_order_is_refused_as_on_aws() {
    let scenario = Scenario {
        dependency_rules: true,
        timing: Timing {
            nat_deleting_ms: 1_500,
            ..Timing::default()
        },
        ..Scenario::default()
    };
    let rig = Rig::start(scenario).await;
    let ec2 = aws_sdk_ec2::Client::new(&rig.sdk(1).await);
    let net = network(&ec2).await;
    let igw = ec2.create_internet_gateway().send().await.unwrap();
    let igw_id = igw
        .internet_gateway()
        .unwrap()
        .internet_gateway_id()
        .unwrap()
        .to_string();
    ec2.attach_internet_gateway()
        .internet_gateway_id(&igw_id)
        .vpc_id(&net.vpc_id)
        .send()
        .await
        .unwrap();
    let sg = ec2
        .create_security_group()
        .group_name("fn")
        .description("function")
        .vpc_id(&net.vpc_id)
        .send()
        .await
        .unwrap();
    let sg_id = sg.group_id().unwrap().to_string();
    let eip = ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .send()
        .await
        .unwrap();
    let allocation = eip.allocation_id().unwrap().to_string();
    let nat = ec2
        .create_nat_gateway()
        .subnet_id(&net.subnet_id)
        .allocation_id(&allocation)
        .send()
        .await
        .unwrap();
    let nat_id = nat
        .nat_gateway()
        .unwrap()
        .nat_gateway_id()
        .unwrap()
        .to_string();

    let delete_subnet = || ec2.delete_subnet().subnet_id(&net.subnet_id).send();
    let release = || ec2.release_address().allocation_id(&allocation).send();
    let detach = || {
        ec2.detach_internet_gateway()
            .internet_gateway_id(&igw_id)
            .vpc_id(&net.vpc_id)
            .send()
    };
    let delete_vpc = || ec2.delete_vpc().vpc_id(&net.vpc_id).send();

    // While the NAT gateway lives.
    assert_eq!(code(delete_subnet().await), "DependencyViolation");
    assert_eq!(code(release().await), "AuthFailure");
    assert_eq!(code(detach().await), "DependencyViolation");

    // While it is `deleting`, it still holds its subnet and address.
    ec2.delete_nat_gateway()
        .nat_gateway_id(&nat_id)
        .send()
        .await
        .unwrap();
    assert_eq!(code(delete_subnet().await), "DependencyViolation");
    assert_eq!(code(release().await), "AuthFailure");
    tokio::time::sleep(Duration::from_millis(1_600)).await;

    // Once `deleted`, in the right order, everything goes.
    delete_subnet()
        .await
        .expect("the subnet is free once the NAT is deleted");
    release()
        .await
        .expect("the address is free once the NAT is deleted");
    assert_eq!(
        code(delete_vpc().await),
        "DependencyViolation",
        "IGW and SG left"
    );
    detach().await.expect("no mapped address is left");
    ec2.delete_internet_gateway()
        .internet_gateway_id(&igw_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(delete_vpc().await),
        "DependencyViolation",
        "a security group is left"
    );
    ec2.delete_security_group()
        .group_id(&sg_id)
        .send()
        .await
        .unwrap();
    delete_vpc().await.expect("nothing is left in the VPC");

    let refused = rig
        .proxy
        .log()
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::Refused { .. }))
        .count();
    assert_eq!(refused, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyperplane_enis_appear_with_the_function_and_linger_after_it() {
    let linger = Duration::from_millis(2_500);
    let scenario = Scenario {
        dependency_rules: true,
        hyperplane_enis: Some(HyperplaneEnis {
            linger_ms: linger.as_millis() as u64,
        }),
        ..Scenario::default()
    };
    let rig = Rig::start(scenario).await;
    let config = rig.sdk(1).await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&config);
    let lambda = aws_sdk_lambda::Client::new(&config);
    let net = network(&ec2).await;
    let sg = ec2
        .create_security_group()
        .group_name("fn")
        .description("function")
        .vpc_id(&net.vpc_id)
        .send()
        .await
        .unwrap();
    let sg_id = sg.group_id().unwrap().to_string();
    let role = iam
        .create_role()
        .role_name("fn")
        .assume_role_policy_document("{}")
        .send()
        .await
        .unwrap();
    lambda
        .create_function()
        .function_name("hello")
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role.role().unwrap().arn())
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(b"zip".to_vec()))
                .build(),
        )
        .vpc_config(
            VpcConfig::builder()
                .subnet_ids(&net.subnet_id)
                .security_group_ids(&sg_id)
                .build(),
        )
        .send()
        .await
        .unwrap();

    let function_enis = || {
        ec2.describe_network_interfaces()
            .filters(
                Filter::builder()
                    .name("subnet-id")
                    .values(&net.subnet_id)
                    .build(),
            )
            .send()
    };
    let enis = function_enis().await.unwrap();
    let [eni] = enis.network_interfaces() else {
        panic!("expected one ENI in the subnet: {enis:?}");
    };
    assert_eq!(eni.description(), Some("AWS Lambda VPC ENI-hello"));
    assert_eq!(eni.groups()[0].group_id(), Some(sg_id.as_str()));
    assert!(eni.tag_set().iter().any(|t| t.key() == Some(FUNCTION_TAG)));

    // Attached: the subnet and the group cannot go.
    let delete_subnet = || ec2.delete_subnet().subnet_id(&net.subnet_id).send();
    let delete_group = || ec2.delete_security_group().group_id(&sg_id).send();
    assert_eq!(code(delete_subnet().await), "DependencyViolation");
    assert_eq!(code(delete_group().await), "DependencyViolation");

    // Deleted: the ENI lingers, and still blocks.
    lambda
        .delete_function()
        .function_name("hello")
        .send()
        .await
        .unwrap();
    let deleted_at = Instant::now();
    assert_eq!(function_enis().await.unwrap().network_interfaces().len(), 1);
    assert_eq!(code(delete_group().await), "DependencyViolation");

    // A teardown that retries, as the tool must: it succeeds once the ENI is gone, not before.
    let deadline = deleted_at + linger * 4;
    loop {
        let refused = code(delete_group().await);
        if refused == "<succeeded>" {
            break;
        }
        assert_eq!(refused, "DependencyViolation");
        assert!(
            Instant::now() < deadline,
            "the lingering ENI was never removed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(deleted_at.elapsed() >= linger);
    assert!(function_enis()
        .await
        .unwrap()
        .network_interfaces()
        .is_empty());
    delete_subnet()
        .await
        .expect("nothing is left in the subnet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_a_function_out_of_the_vpc_leaves_its_enis_behind_for_a_while() {
    let scenario = Scenario {
        hyperplane_enis: Some(HyperplaneEnis { linger_ms: 1_000 }),
        ..Scenario::default()
    };
    let rig = Rig::start(scenario).await;
    let config = rig.sdk(1).await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let lambda = aws_sdk_lambda::Client::new(&config);
    let net = network(&ec2).await;
    let sg = ec2
        .create_security_group()
        .group_name("fn")
        .description("function")
        .vpc_id(&net.vpc_id)
        .send()
        .await
        .unwrap();
    let attached = || {
        VpcConfig::builder()
            .subnet_ids(&net.subnet_id)
            .security_group_ids(sg.group_id().unwrap())
            .build()
    };
    let role = aws_sdk_iam::Client::new(&config)
        .create_role()
        .role_name("fn")
        .assume_role_policy_document("{}")
        .send()
        .await
        .unwrap();
    lambda
        .create_function()
        .function_name("hello")
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role.role().unwrap().arn())
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(b"zip".to_vec()))
                .build(),
        )
        .vpc_config(attached())
        .send()
        .await
        .unwrap();
    let count = || async {
        ec2.describe_network_interfaces()
            .filters(
                Filter::builder()
                    .name("description")
                    .values("AWS Lambda VPC ENI-hello")
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .network_interfaces()
            .len()
    };
    assert_eq!(count().await, 1);
    // The same configuration again changes nothing.
    lambda
        .update_function_configuration()
        .function_name("hello")
        .vpc_config(attached())
        .send()
        .await
        .unwrap();
    assert_eq!(count().await, 1);
    // Detached: the ENI stays for the linger time, then goes.
    lambda
        .update_function_configuration()
        .function_name("hello")
        .vpc_config(VpcConfig::builder().build())
        .send()
        .await
        .unwrap();
    assert_eq!(count().await, 1);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(count().await, 0);
}

/// On AWS a Lambda interface is requester-managed and `in-use` until Lambda releases it: a teardown that
/// deletes `available` interfaces must find none to delete, and must wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lambda_interface_reads_in_use_and_cannot_be_deleted_until_released() {
    let linger = Duration::from_millis(1_500);
    let scenario = Scenario {
        hyperplane_enis: Some(HyperplaneEnis {
            linger_ms: linger.as_millis() as u64,
        }),
        ..Scenario::default()
    };
    let rig = Rig::start(scenario).await;
    let config = rig.sdk(1).await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let lambda = aws_sdk_lambda::Client::new(&config);
    let net = network(&ec2).await;
    // An interface of the test's own, which moto reports as it is: `available`, plain, not managed.
    let own = ec2
        .create_network_interface()
        .subnet_id(&net.subnet_id)
        .description("the test's own")
        .send()
        .await
        .unwrap();
    let own = own
        .network_interface()
        .unwrap()
        .network_interface_id()
        .unwrap()
        .to_string();
    let sg = ec2
        .create_security_group()
        .group_name("fn")
        .description("function")
        .vpc_id(&net.vpc_id)
        .send()
        .await
        .unwrap();
    let role = aws_sdk_iam::Client::new(&config)
        .create_role()
        .role_name("fn")
        .assume_role_policy_document("{}")
        .send()
        .await
        .unwrap();
    lambda
        .create_function()
        .function_name("hello")
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role.role().unwrap().arn())
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(b"zip".to_vec()))
                .build(),
        )
        .vpc_config(
            VpcConfig::builder()
                .subnet_ids(&net.subnet_id)
                .security_group_ids(sg.group_id().unwrap())
                .build(),
        )
        .send()
        .await
        .unwrap();

    // The interfaces in the subnet with `status` = `wanted` (none: all of them).
    let in_subnet = |wanted: Option<&'static str>| {
        let mut call = ec2.describe_network_interfaces().filters(
            Filter::builder()
                .name("subnet-id")
                .values(&net.subnet_id)
                .build(),
        );
        if let Some(status) = wanted {
            call = call.filters(Filter::builder().name("status").values(status).build());
        }
        async move {
            let mut ids: Vec<String> = call
                .send()
                .await
                .unwrap()
                .network_interfaces()
                .iter()
                .map(|e| e.network_interface_id().unwrap().to_string())
                .collect();
            ids.sort();
            ids
        }
    };
    let all = ec2
        .describe_network_interfaces()
        .filters(
            Filter::builder()
                .name("description")
                .values("AWS Lambda VPC ENI-hello")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let [eni] = all.network_interfaces() else {
        panic!("expected the function's one ENI: {all:?}");
    };
    let lambda_eni = eni.network_interface_id().unwrap().to_string();
    assert_eq!(eni.status().map(|s| s.as_str()), Some("in-use"));
    assert_eq!(eni.interface_type().map(|t| t.as_str()), Some("lambda"));
    assert_eq!(eni.requester_managed(), Some(true));
    // The filters see what the answer says, not moto's own values.
    assert_eq!(
        in_subnet(Some("available")).await,
        std::slice::from_ref(&own)
    );
    assert_eq!(
        in_subnet(Some("in-use")).await,
        std::slice::from_ref(&lambda_eni)
    );
    let lambda_typed = ec2
        .describe_network_interfaces()
        .filters(
            Filter::builder()
                .name("interface-type")
                .values("lambda")
                .build(),
        )
        .filters(
            Filter::builder()
                .name("requester-managed")
                .values("true")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let lambda_typed: Vec<&str> = lambda_typed
        .network_interfaces()
        .iter()
        .filter_map(|e| e.network_interface_id())
        .collect();
    assert_eq!(lambda_typed, [lambda_eni.as_str()]);

    // Attached: AWS refuses to delete it, as it words it.
    let delete = || {
        ec2.delete_network_interface()
            .network_interface_id(&lambda_eni)
            .send()
    };
    let refused = delete().await.unwrap_err();
    let refused = refused.as_service_error().unwrap();
    assert_eq!(refused.code(), Some("InvalidParameterValue"));
    assert_eq!(
        refused.message(),
        Some(format!("Network interface '{lambda_eni}' is currently in use.").as_str())
    );

    // Detached: it lingers, still in use and still refused...
    lambda
        .update_function_configuration()
        .function_name("hello")
        .vpc_config(VpcConfig::builder().build())
        .send()
        .await
        .unwrap();
    let detached_at = Instant::now();
    assert_eq!(code(delete().await), "InvalidParameterValue");
    assert_eq!(
        in_subnet(Some("in-use")).await,
        std::slice::from_ref(&lambda_eni)
    );
    assert_eq!(
        in_subnet(Some("available")).await,
        std::slice::from_ref(&own)
    );
    // ...until Lambda lets go of it, and then it is gone (the proxy deletes it, as AWS does).
    let deadline = detached_at + linger * 4;
    while in_subnet(None).await.contains(&lambda_eni) {
        assert!(
            Instant::now() < deadline,
            "the lingering ENI was never removed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(detached_at.elapsed() >= linger);
    assert_eq!(in_subnet(None).await, std::slice::from_ref(&own));
    assert_eq!(
        code(
            ec2.delete_network_interface()
                .network_interface_id(&own)
                .send()
                .await
        ),
        "<succeeded>",
        "the test's own interface was never held"
    );
}
