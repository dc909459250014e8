//! Real timing: NAT gateways and functions take time, roles propagate, and the SDK waiters really wait.

use std::time::{Duration, Instant};

use aws_sdk_ec2::client::Waiters as _;
use aws_sdk_ec2::types::{DomainType, Filter, NatGatewayState};
use aws_sdk_lambda::client::Waiters as _;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, LastUpdateStatus, Runtime, State};
use fixedip_chaos::{Scenario, Timing};

use crate::support::{network, Rig};

const LAMBDA_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

async fn nat_state(ec2: &aws_sdk_ec2::Client, id: &str) -> Option<NatGatewayState> {
    let found = ec2
        .describe_nat_gateways()
        .nat_gateway_ids(id)
        .send()
        .await
        .expect("DescribeNatGateways");
    found
        .nat_gateways()
        .first()
        .and_then(|n| n.state().cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nat_gateways_are_pending_then_deleting_and_the_waiter_waits() {
    let scenario = Scenario {
        timing: Timing {
            nat_pending_ms: 3_000,
            nat_deleting_ms: 2_000,
            ..Timing::default()
        },
        ..Scenario::default()
    };
    let rig = Rig::start(scenario).await;
    let ec2 = aws_sdk_ec2::Client::new(&rig.sdk(1).await);
    let net = network(&ec2).await;
    let eip = ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .send()
        .await
        .unwrap();
    let created_at = Instant::now();
    let nat = ec2
        .create_nat_gateway()
        .subnet_id(&net.subnet_id)
        .allocation_id(eip.allocation_id().unwrap())
        .send()
        .await
        .unwrap();
    let nat = nat.nat_gateway().unwrap();
    let id = nat.nat_gateway_id().unwrap().to_string();
    assert_eq!(nat.state(), Some(&NatGatewayState::Pending));
    assert_eq!(nat_state(&ec2, &id).await, Some(NatGatewayState::Pending));
    // A `state=available` filter must not show a gateway that reads `pending`.
    let available = ec2
        .describe_nat_gateways()
        .filter(Filter::builder().name("state").values("available").build())
        .send()
        .await
        .unwrap();
    assert!(available.nat_gateways().is_empty());

    ec2.wait_until_nat_gateway_available()
        .nat_gateway_ids(&id)
        .wait(Duration::from_secs(120))
        .await
        .expect("available within the waiter's time");
    assert!(created_at.elapsed() >= Duration::from_secs(3));
    let polls = rig
        .proxy
        .log()
        .iter()
        .filter(|e| e.operation.name == "DescribeNatGateways")
        .count();
    assert!(
        polls >= 4,
        "the waiter polled {polls} times, expected it to wait"
    );

    ec2.delete_nat_gateway()
        .nat_gateway_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(nat_state(&ec2, &id).await, Some(NatGatewayState::Deleting));
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(nat_state(&ec2, &id).await, Some(NatGatewayState::Deleted));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_wait_for_their_role_then_are_pending_then_conflict_while_updating() {
    let scenario = Scenario {
        timing: Timing {
            lambda_pending_ms: 2_000,
            lambda_update_ms: 1_500,
            role_propagation_ms: 1_000,
            ..Timing::default()
        },
        ..Scenario::default()
    };
    let rig = Rig::start(scenario).await;
    let config = rig.sdk(1).await;
    let iam = aws_sdk_iam::Client::new(&config);
    let lambda = aws_sdk_lambda::Client::new(&config);
    let role = iam
        .create_role()
        .role_name("fresh")
        .assume_role_policy_document(LAMBDA_TRUST)
        .send()
        .await
        .unwrap();
    let role_created = Instant::now();
    let role_arn = role.role().unwrap().arn().to_string();
    let create = || {
        lambda
            .create_function()
            .function_name("hello")
            .runtime(Runtime::Providedal2023)
            .handler("bootstrap")
            .role(&role_arn)
            .code(
                FunctionCode::builder()
                    .zip_file(Blob::new(b"zip".to_vec()))
                    .build(),
            )
            .send()
    };

    let too_soon = create().await.unwrap_err().into_service_error();
    assert!(
        too_soon.is_invalid_parameter_value_exception(),
        "{too_soon:?}"
    );
    assert!(
        too_soon.to_string().contains("cannot be assumed by Lambda"),
        "{too_soon}"
    );

    tokio::time::sleep(Duration::from_millis(1_050).saturating_sub(role_created.elapsed())).await;
    let created = create().await.expect("the role has propagated");
    let created_at = Instant::now();
    assert_eq!(created.state(), Some(&State::Pending));
    let read = lambda
        .get_function()
        .function_name("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(read.configuration().unwrap().state(), Some(&State::Pending));

    lambda
        .wait_until_function_active_v2()
        .function_name("hello")
        .wait(Duration::from_secs(60))
        .await
        .expect("active within the waiter's time");
    assert!(created_at.elapsed() >= Duration::from_millis(1_900));

    lambda
        .update_function_configuration()
        .function_name("hello")
        .memory_size(256)
        .send()
        .await
        .unwrap();
    let config = lambda
        .get_function_configuration()
        .function_name("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(
        config.last_update_status(),
        Some(&LastUpdateStatus::InProgress)
    );
    let conflict = lambda
        .update_function_code()
        .function_name("hello")
        .zip_file(Blob::new(b"zip2".to_vec()))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(conflict.is_resource_conflict_exception(), "{conflict:?}");

    lambda
        .wait_until_function_updated_v2()
        .function_name("hello")
        .wait(Duration::from_secs(60))
        .await
        .expect("updated within the waiter's time");
    lambda
        .update_function_code()
        .function_name("hello")
        .zip_file(Blob::new(b"zip2".to_vec()))
        .send()
        .await
        .expect("no conflict once the update is done");
}
