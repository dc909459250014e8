//! Identification, the log, latency, injected faults and the pause point.

use std::time::{Duration, Instant};

use fixedip_chaos::{
    CallMatcher, Fault, FaultRule, Latency, LogQueries, Outcome, Scenario, Trigger,
};

use crate::support::{code, http, vpc_count, Rig};

fn rule(fault: Fault, services: &[&str], operations: &[&str], when: Trigger) -> FaultRule {
    FaultRule {
        fault,
        matches: CallMatcher {
            services: services.iter().map(|s| s.to_string()).collect(),
            operations: operations.iter().map(|s| s.to_string()).collect(),
            mutating: None,
        },
        when,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_is_identified_and_logged() {
    let rig = Rig::start(Scenario::default()).await;
    let config = rig.sdk(1).await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&config);
    let lambda = aws_sdk_lambda::Client::new(&config);
    let sts = aws_sdk_sts::Client::new(&config);

    ec2.create_vpc()
        .cidr_block("10.1.0.0/24")
        .send()
        .await
        .unwrap();
    ec2.describe_vpcs().send().await.unwrap();
    iam.create_role()
        .role_name("r")
        .assume_role_policy_document("{}")
        .send()
        .await
        .unwrap();
    lambda.list_functions().send().await.unwrap();
    sts.get_caller_identity().send().await.unwrap();

    let log = rig.proxy.log();
    let seen: Vec<(&str, &str, bool)> = log
        .iter()
        .map(|e| {
            let o = &e.operation;
            (o.service.as_str(), o.name.as_str(), o.mutating)
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("ec2", "CreateVpc", true),
            ("ec2", "DescribeVpcs", false),
            ("iam", "CreateRole", true),
            ("lambda", "ListFunctions", false),
            ("sts", "GetCallerIdentity", false),
        ]
    );
    assert!(log
        .iter()
        .all(|e| e.start <= e.end && e.outcome == Outcome::Answered { status: 200 }));
    assert_eq!(log.mutating_applied(), 2);

    let (status, body) = http(&rig.proxy.url(), "GET", "/_chaos/log", "")
        .await
        .unwrap();
    assert_eq!(status, 200);
    let over_http: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(over_http.len(), 5);
    assert_eq!(over_http[0]["name"], "CreateVpc");
    assert_eq!(over_http[0]["mutating"], true);
    assert!(over_http[0]["end_ms"].as_f64() >= over_http[0]["start_ms"].as_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttles_in_each_wire_format_are_understood_and_retried() {
    let scenario = Scenario {
        faults: vec![
            rule(Fault::Throttle, &["ec2"], &["CreateVpc"], Trigger::Nth(1)),
            rule(Fault::Throttle, &["iam"], &["CreateRole"], Trigger::Nth(1)),
            rule(
                Fault::Throttle,
                &["lambda"],
                &["ListFunctions"],
                Trigger::Nth(1),
            ),
            rule(
                Fault::Throttle,
                &["sts"],
                &["GetCallerIdentity"],
                Trigger::Always,
            ),
        ],
        ..Scenario::default()
    };
    let rig = Rig::start(scenario).await;
    let config = rig.sdk(3).await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    ec2.create_vpc()
        .cidr_block("10.1.0.0/24")
        .send()
        .await
        .expect("retried past the throttle");
    aws_sdk_iam::Client::new(&config)
        .create_role()
        .role_name("r")
        .assume_role_policy_document("{}")
        .send()
        .await
        .expect("retried past the throttle");
    aws_sdk_lambda::Client::new(&config)
        .list_functions()
        .send()
        .await
        .expect("retried past the throttle");
    // Always throttled: the SDK gives up with the code it parsed from the proxy's answer.
    let sts = aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await;
    let sts_code = sts.unwrap_err().into_service_error();
    assert_eq!(
        aws_sdk_sts::error::ProvideErrorMetadata::code(&sts_code),
        Some("Throttling")
    );

    let log = rig.proxy.log();
    let outcomes = |name: &str| -> Vec<Outcome> {
        log.iter()
            .filter(|e| e.operation.name == name)
            .map(|e| e.outcome.clone())
            .collect()
    };
    let throttled = |status| Outcome::Injected {
        fault: Fault::Throttle,
        status: Some(status),
    };
    let answered = Outcome::Answered { status: 200 };
    assert_eq!(outcomes("CreateVpc"), [throttled(503), answered.clone()]);
    assert_eq!(outcomes("CreateRole"), [throttled(400), answered.clone()]);
    assert_eq!(outcomes("ListFunctions"), [throttled(429), answered]);
    assert_eq!(outcomes("GetCallerIdentity"), vec![throttled(400); 3]);
    assert_eq!(vpc_count(&rig.direct().await).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_sees_each_service_s_throttling_code() {
    let throttle_all = Scenario {
        faults: vec![rule(Fault::Throttle, &[], &[], Trigger::Always)],
        ..Scenario::default()
    };
    let rig = Rig::start(throttle_all).await;
    let config = rig.sdk(1).await;
    let ec2 = code(
        aws_sdk_ec2::Client::new(&config)
            .describe_vpcs()
            .send()
            .await,
    );
    assert_eq!(ec2, "RequestLimitExceeded");
    let lambda = aws_sdk_lambda::Client::new(&config)
        .list_functions()
        .send()
        .await;
    let lambda = lambda.unwrap_err().into_service_error();
    assert!(lambda.is_too_many_requests_exception(), "{lambda:?}");
    let iam = aws_sdk_iam::Client::new(&config).list_roles().send().await;
    let iam = iam.unwrap_err().into_service_error();
    assert_eq!(
        aws_sdk_iam::error::ProvideErrorMetadata::code(&iam),
        Some("Throttling")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_dropped_connections_are_retried_without_duplicates() {
    let scenario = Scenario {
        faults: vec![
            rule(
                Fault::InternalError,
                &["ec2"],
                &["CreateVpc"],
                Trigger::Nth(1),
            ),
            rule(
                Fault::ServiceUnavailable,
                &["ec2"],
                &["CreateVpc"],
                Trigger::Nth(2),
            ),
            rule(
                Fault::DropConnection,
                &["ec2"],
                &["CreateVpc"],
                Trigger::Nth(3),
            ),
        ],
        ..Scenario::default()
    };
    let rig = Rig::start(scenario).await;
    let ec2 = aws_sdk_ec2::Client::new(&rig.sdk(4).await);
    ec2.create_vpc()
        .cidr_block("10.1.0.0/24")
        .send()
        .await
        .expect("fourth try succeeds");
    let kinds: Vec<Outcome> = rig.proxy.log().iter().map(|e| e.outcome.clone()).collect();
    assert_eq!(
        kinds,
        [
            Outcome::Injected {
                fault: Fault::InternalError,
                status: Some(500)
            },
            Outcome::Injected {
                fault: Fault::ServiceUnavailable,
                status: Some(503)
            },
            Outcome::Injected {
                fault: Fault::DropConnection,
                status: None
            },
            Outcome::Answered { status: 200 },
        ]
    );
    // None of the faults reached moto: exactly one VPC.
    assert_eq!(vpc_count(&rig.direct().await).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_vpc_leaves_a_vpc_behind() {
    let lose_first = Scenario {
        faults: vec![rule(
            Fault::LostResponse,
            &["ec2"],
            &["CreateVpc"],
            Trigger::Nth(1),
        )],
        ..Scenario::default()
    };
    let rig = Rig::start(lose_first.clone()).await;

    // Without retries the caller sees a failure, yet the VPC exists.
    let once = aws_sdk_ec2::Client::new(&rig.sdk(1).await);
    let lost = once.create_vpc().cidr_block("10.1.0.0/24").send().await;
    assert!(
        lost.is_err(),
        "the response was lost, the SDK cannot have it"
    );
    assert_eq!(vpc_count(&rig.direct().await).await, 1);

    // With retries the SDK tries again and succeeds: a naive client has made two VPCs.
    rig.proxy.set_scenario(lose_first);
    let retrying = aws_sdk_ec2::Client::new(&rig.sdk(3).await);
    retrying
        .create_vpc()
        .cidr_block("10.1.0.0/24")
        .send()
        .await
        .expect("retried");
    assert_eq!(vpc_count(&rig.direct().await).await, 3);
    let log = rig.proxy.log();
    assert_eq!(log.applied("CreateVpc"), 3);
    assert_eq!(
        log.iter()
            .filter(|e| matches!(e.outcome, Outcome::Lost { .. }))
            .count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_is_added_to_every_call() {
    let scenario = Scenario {
        latency: Some(Latency::Uniform {
            min_ms: 150,
            max_ms: 250,
        }),
        seed: 9,
        ..Scenario::default()
    };
    let rig = Rig::start(scenario).await;
    let ec2 = aws_sdk_ec2::Client::new(&rig.sdk(1).await);
    for _ in 0..3 {
        let started = Instant::now();
        ec2.describe_vpcs().send().await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(150));
    }
    for entry in rig.proxy.log() {
        assert!(
            entry.end - entry.start >= Duration::from_millis(150),
            "{entry:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_world_stops_after_the_kth_mutating_call() {
    let scenario = Scenario {
        pause_after_mutating: Some(2),
        ..Scenario::default()
    };
    let rig = Rig::start(scenario).await;
    let ec2 = aws_sdk_ec2::Client::new(&rig.sdk(1).await);
    // The "deploy": reads and creates in sequence, as a client would.
    let deploy = tokio::spawn(async move {
        let mut created = 0;
        for i in 0..4 {
            let _ = ec2.describe_vpcs().send().await;
            if ec2
                .create_vpc()
                .cidr_block(format!("10.{i}.0.0/24"))
                .send()
                .await
                .is_ok()
            {
                created += 1;
            }
        }
        created
    });
    // The long poll over HTTP sees the pause, as a test driving the CLI would.
    let (_, paused) = http(
        &rig.proxy.url(),
        "GET",
        "/_chaos/paused?timeout_ms=30000",
        "",
    )
    .await
    .unwrap();
    assert_eq!(paused, r#"{"paused":true}"#);
    assert!(rig.proxy.wait_paused(Duration::from_secs(1)).await);
    // The deploy's next call is held, not forwarded.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !rig.proxy.log().iter().any(|e| e.outcome == Outcome::Held) {
        assert!(
            Instant::now() < deadline,
            "the call after the pause point was not held"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Kill the deploy, as the crash suite kills the CLI; then the held call is dropped on resume.
    deploy.abort();
    assert!(deploy.await.unwrap_err().is_cancelled());
    rig.proxy.resume();
    assert_eq!(vpc_count(&rig.direct().await).await, 2);
    let log = rig.proxy.log();
    assert_eq!(log.mutating_applied(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scenario_can_be_replaced_over_http() {
    let rig = Rig::start(Scenario::default()).await;
    let ec2 = aws_sdk_ec2::Client::new(&rig.sdk(1).await);
    ec2.describe_vpcs().send().await.expect("no faults yet");
    let throttle = r#"{"faults": [{"fault": "throttle", "when": "always"}]}"#;
    let (status, _) = http(&rig.proxy.url(), "PUT", "/_chaos/scenario", throttle)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        code(ec2.describe_vpcs().send().await),
        "RequestLimitExceeded"
    );
    let (status, body) = http(
        &rig.proxy.url(),
        "PUT",
        "/_chaos/scenario",
        r#"{"nope": 1}"#,
    )
    .await
    .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("docs/chaos.md"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssm_calls_are_identified_and_their_throttles_retried() {
    let scenario = Scenario {
        faults: vec![rule(
            Fault::Throttle,
            &["ssm"],
            &["PutParameter"],
            Trigger::Nth(1),
        )],
        ..Scenario::default()
    };
    let rig = Rig::start(scenario).await;
    let ssm = aws_sdk_ssm::Client::new(&rig.sdk(3).await);
    ssm.put_parameter()
        .name("/fixedip/lease")
        .value("holder")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .expect("retried past the throttle");
    let read = ssm
        .get_parameter()
        .name("/fixedip/lease")
        .send()
        .await
        .unwrap();
    assert_eq!(read.parameter().and_then(|p| p.value()), Some("holder"));
    let seen: Vec<(String, bool, Outcome)> = rig
        .proxy
        .log()
        .iter()
        .map(|e| {
            (
                e.operation.name.clone(),
                e.operation.mutating,
                e.outcome.clone(),
            )
        })
        .collect();
    let throttled = Outcome::Injected {
        fault: Fault::Throttle,
        status: Some(400),
    };
    let answered = Outcome::Answered { status: 200 };
    assert_eq!(
        seen,
        [
            ("PutParameter".to_string(), true, throttled),
            ("PutParameter".to_string(), true, answered.clone()),
            ("GetParameter".to_string(), false, answered),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_k_mutating_calls_reach_moto_under_concurrency() {
    let scenario = Scenario {
        pause_after_mutating: Some(3),
        ..Scenario::default()
    };
    let rig = Rig::start(scenario).await;
    let ec2 = aws_sdk_ec2::Client::new(&rig.sdk(1).await);
    let creates: Vec<_> = (0..10)
        .map(|i| {
            let ec2 = ec2.clone();
            tokio::spawn(async move {
                ec2.create_vpc()
                    .cidr_block(format!("10.{i}.0.0/24"))
                    .send()
                    .await
            })
        })
        .collect();
    assert!(rig.proxy.wait_paused(Duration::from_secs(30)).await);
    let deadline = Instant::now() + Duration::from_secs(10);
    while rig
        .proxy
        .log()
        .iter()
        .filter(|e| e.outcome == Outcome::Held)
        .count()
        < 7
    {
        assert!(
            Instant::now() < deadline,
            "the other seven calls were not held"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for create in &creates {
        create.abort();
    }
    rig.proxy.resume();
    assert_eq!(vpc_count(&rig.direct().await).await, 3);
    let summary = rig.proxy.log().summary();
    assert_eq!(summary.mutating_calls, 10);
    assert!(summary.max_in_flight >= 2, "{summary:?}");
}
