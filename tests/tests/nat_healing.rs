//! `nat-self-healing` end to end (issue 17): each NAT instance is the one instance of an
//! auto-scaling group, holding the slot's Elastic IP on a fixed network interface that every
//! instance of the group attaches at boot. moto launches the group's instances; the chaos proxy
//! in front of the CLI plays their boot (`tests/chaos/src/nat_group.rs`: the attach, the ready
//! line, once the interface holds its Elastic IP) and detaches the interface of a terminated
//! instance, as AWS does. The switches from and to NAT gateways and plain NAT instances run the
//! CLI from each fixture function's own directory, as a user does.

use std::collections::BTreeSet;
use std::process::Output;

use aws_sdk_ec2::types::Filter;
use fixedip_tests::{fixture_dir, fixture_zip, fixtures_manifest, tag_filter, Emulator};

const FIXTURE: &str = "nat-healing";

fn run(emulator: &Emulator, args: &[&str]) -> Output {
    let manifest = fixtures_manifest();
    let mut command = emulator.cargo_fixedip();
    command
        .arg(args[0])
        .arg("--manifest-path")
        .arg(&manifest)
        .args(&args[1..]);
    command.output().expect("cargo-fixedip runs")
}

fn ok(emulator: &Emulator, args: &[&str]) -> Output {
    let output = run(emulator, args);
    assert!(
        output.status.success(),
        "cargo fixedip {args:?}:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn deploy(emulator: &Emulator) -> Output {
    let zip = fixture_zip(FIXTURE);
    let zip = zip.to_str().unwrap();
    ok(
        emulator,
        &["deploy", "--zip", zip, "--poll-interval", "0.2"],
    )
}

/// The fixed interfaces: (id, the instance holding it, its public IP).
async fn interfaces(emulator: &Emulator) -> Vec<(String, Option<String>, Option<String>)> {
    let answer = emulator
        .ec2()
        .await
        .describe_network_interfaces()
        .filters(tag_filter("fixedip:component", "nat-interface"))
        .send()
        .await
        .unwrap();
    answer
        .network_interfaces()
        .iter()
        .map(|n| {
            (
                n.network_interface_id().unwrap().to_owned(),
                n.attachment()
                    .and_then(|a| a.instance_id())
                    .map(str::to_owned),
                n.association()
                    .and_then(|a| a.public_ip())
                    .map(str::to_owned),
            )
        })
        .collect()
}

/// The 0.0.0.0/0 routes of the stack's private route tables.
async fn default_routes(emulator: &Emulator) -> Vec<aws_sdk_ec2::types::Route> {
    let tables = emulator
        .ec2()
        .await
        .describe_route_tables()
        .filters(tag_filter("fixedip:component", "private-route-table"))
        .send()
        .await
        .unwrap();
    tables
        .route_tables()
        .iter()
        .flat_map(|t| t.routes())
        .filter(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
        .cloned()
        .collect()
}

/// Each private route table sends 0.0.0.0/0 to a fixed interface that holds a stack address.
async fn assert_routed_through_interfaces(emulator: &Emulator) -> BTreeSet<String> {
    let interfaces = interfaces(emulator).await;
    assert_eq!(interfaces.len(), 2, "{interfaces:?}");
    let targets: BTreeSet<String> = default_routes(emulator)
        .await
        .iter()
        .map(|r| {
            r.network_interface_id()
                .unwrap_or("not an interface")
                .to_owned()
        })
        .collect();
    let ids: BTreeSet<String> = interfaces.iter().map(|i| i.0.clone()).collect();
    assert_eq!(targets, ids);
    interfaces
        .iter()
        .map(|(id, _, ip)| {
            ip.clone()
                .unwrap_or_else(|| panic!("{id} holds no address"))
        })
        .collect()
}

async fn stack_ips(emulator: &Emulator) -> BTreeSet<String> {
    emulator
        .addresses()
        .await
        .iter()
        .filter_map(|a| a.public_ip().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_builds_a_group_per_az_and_destroy_removes_all_of_it() {
    let emulator = Emulator::start();
    let output = deploy(&emulator);
    let ips = assert_routed_through_interfaces(&emulator).await;
    assert_eq!(ips, stack_ips(&emulator).await);
    let printed = String::from_utf8_lossy(&output.stdout);
    for ip in &ips {
        assert!(printed.contains(ip.as_str()), "{ip} not printed: {printed}");
    }
    assert_eq!(emulator.live_nat_gateways().await, 0);
    let output = ok(&emulator, &["verify", "-p", FIXTURE, "--json"]);
    let verdict: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for function in verdict["stacks"][0]["functions"].as_array().unwrap() {
        assert_eq!(function["findings"], serde_json::json!([]), "{verdict:#}");
    }

    let zip = fixture_zip(FIXTURE);
    let destroyed = ok(
        &emulator,
        &[
            "destroy",
            "--yes",
            "--eni-timeout",
            "20",
            "--zip",
            zip.to_str().unwrap(),
        ],
    );
    assert!(
        interfaces(&emulator).await.is_empty(),
        "{}",
        String::from_utf8_lossy(&destroyed.stderr)
    );
    assert_no_group_left(&emulator).await;
    assert_eq!(stack_ips(&emulator).await, ips, "the IPs stay, retained");
}

/// The group's instance terminated under the live stack: without any deploy, the group's
/// replacement attaches the fixed interface and says ready, and `verify` passes on the same IPs.
#[tokio::test(flavor = "multi_thread")]
async fn a_terminated_instance_is_replaced_without_a_deploy_on_the_same_ip() {
    let emulator = Emulator::start();
    deploy(&emulator);
    let ips = assert_routed_through_interfaces(&emulator).await;
    let (_, holder, _) = interfaces(&emulator).await.remove(0);
    let holder = holder.expect("the interface is attached");
    emulator
        .ec2_through_proxy()
        .await
        .terminate_instances()
        .instance_ids(&holder)
        .send()
        .await
        .unwrap();

    // The next look at the group (status reads it) plays the replacement's boot.
    let started = std::time::Instant::now();
    loop {
        let output = ok(&emulator, &["status", "-p", FIXTURE, "--json"]);
        let attached = interfaces(&emulator).await;
        let replaced = attached
            .iter()
            .all(|(_, instance, _)| instance.as_ref().is_some_and(|i| *i != holder));
        if replaced {
            // status lists the replacement as its group's, ready.
            let output = ok(&emulator, &["status", "-p", FIXTURE, "--json"]);
            let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
            let listed = status.to_string();
            let holders: Vec<String> = attached.iter().filter_map(|a| a.1.clone()).collect();
            for holder in &holders {
                assert!(listed.contains(holder.as_str()), "{status:#}");
            }
            let ready = listed.matches(r#""readiness":"ready""#).count();
            assert!(ready >= holders.len(), "{status:#}");
            assert!(
                listed.contains(r#""group":"fixedip-default-nat-"#),
                "{status:#}"
            );
            let output = ok(&emulator, &["verify", "-p", FIXTURE, "--json"]);
            let verdict: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
            for function in verdict["stacks"][0]["functions"].as_array().unwrap() {
                assert_eq!(function["findings"], serde_json::json!([]), "{verdict:#}");
            }
            break;
        }
        assert!(
            started.elapsed().as_secs() < 60,
            "no replacement: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert_eq!(assert_routed_through_interfaces(&emulator).await, ips);
}

/// The stack's instances of a `fixedip:component` that are not shutting down or terminated.
async fn live_instances(emulator: &Emulator, component: &str) -> usize {
    let answer = emulator
        .ec2()
        .await
        .describe_instances()
        .filters(tag_filter("fixedip:component", component))
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .build(),
        )
        .send()
        .await
        .unwrap();
    answer
        .reservations()
        .iter()
        .map(|r| r.instances().len())
        .sum()
}

/// A stack of plain NAT instances moves to self-healing ones in one deploy, keeping its IPs;
/// the plain instances are terminated once the routes have moved.
#[tokio::test(flavor = "multi_thread")]
async fn plain_nat_instances_move_to_self_healing_in_one_deploy_keeping_the_ips() {
    let emulator = Emulator::start();
    let plain = fixture_zip("nat-instance");
    ok(
        &emulator,
        &[
            "deploy",
            "--zip",
            plain.to_str().unwrap(),
            "--poll-interval",
            "0.2",
        ],
    );
    let ips = stack_ips(&emulator).await;
    assert_eq!(ips.len(), 2);
    assert_eq!(live_instances(&emulator, "nat-instance").await, 2);
    deploy(&emulator);
    assert_eq!(assert_routed_through_interfaces(&emulator).await, ips);
    assert_eq!(stack_ips(&emulator).await, ips);
    assert_eq!(live_instances(&emulator, "nat-instance").await, 0);
}

/// `cargo fixedip` as a user runs it for the fixture function `fixture`: from its own
/// directory, without `--manifest-path` or `--stack`. Builds (`plan`) share the fixtures' target
/// directory, as a user's `CARGO_TARGET_DIR` would.
fn from_its_dir(emulator: &Emulator, fixture: &str, args: &[&str]) -> Output {
    let mut command = emulator.cargo_fixedip();
    command.args(args).current_dir(fixture_dir(fixture)).env(
        "CARGO_TARGET_DIR",
        fixedip_tests::workspace_root().join("target/fixtures"),
    );
    let output = command.output().expect("cargo-fixedip runs");
    assert!(
        output.status.success(),
        "cargo fixedip {args:?} for {fixture}:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `deploy` of the fixture function `fixture` from its own directory.
fn deploy_from_its_dir(emulator: &Emulator, fixture: &str) -> Output {
    let zip = fixture_zip(fixture);
    let zip = zip.to_str().unwrap();
    from_its_dir(
        emulator,
        fixture,
        &["deploy", "--zip", zip, "--poll-interval", "0.2"],
    )
}

/// Every call the CLI made is one `cargo fixedip iam-policy` allows (the emulator checks again
/// when dropped), and the switch's own calls were made.
fn assert_switch_calls_allowed(emulator: &Emulator, switch_calls: &[&str]) {
    let log = emulator.cli_calls();
    let made: BTreeSet<String> = log
        .iter()
        .map(|e| format!("{}:{}", e.operation.service, e.operation.name))
        .collect();
    for call in switch_calls {
        assert!(made.contains(*call), "{call} not made: {made:?}");
    }
    fixedip_tests::iam_policy::assert_allowed_by_iam_policy(&log);
}

/// Nothing of a self-healing NAT is left: no fixed interface, launch template, group instance,
/// instance profile or role.
async fn assert_no_group_left(emulator: &Emulator) {
    assert!(interfaces(emulator).await.is_empty());
    let templates = emulator
        .ec2()
        .await
        .describe_launch_templates()
        .filters(tag_filter("fixedip:stack", "default"))
        .send()
        .await
        .unwrap();
    assert!(templates.launch_templates().is_empty());
    assert_eq!(live_instances(emulator, "nat-group").await, 0);
    let iam = emulator.iam().await;
    let name = "fixedip-default-us-east-1-nat";
    assert!(iam
        .get_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
        .is_err());
    assert!(iam.get_role().role_name(name).send().await.is_err());
}

/// Deploys the self-healing fixture, then the fixture function `to` (another kind of NAT), each
/// from its own directory: the same IPs after, and nothing of the groups left. The IPs.
async fn switch_out_of_self_healing(emulator: &Emulator, to: &str) -> BTreeSet<String> {
    deploy_from_its_dir(emulator, FIXTURE);
    let ips = assert_routed_through_interfaces(emulator).await;
    deploy_from_its_dir(emulator, to);
    assert_eq!(stack_ips(emulator).await, ips);
    assert_no_group_left(emulator).await;
    ips
}

/// A stack of NAT gateways (the `second-function` fixture, two AZs) moves to self-healing NAT
/// instances in one deploy of the `nat-healing` fixture, keeping both IPs: `plan` says what the
/// switch does and costs first; after the deploy each private route goes to a fixed interface
/// holding one of the same IPs, no gateway is left and no address was allocated or released.
#[tokio::test(flavor = "multi_thread")]
async fn gateways_switch_to_self_healing_in_one_deploy_keeping_the_ips() {
    let emulator = Emulator::start();
    deploy_from_its_dir(&emulator, "second-function");
    let ips = stack_ips(&emulator).await;
    assert_eq!(ips.len(), 2);
    assert_eq!(emulator.live_nat_gateways().await, 2);

    let plan = from_its_dir(&emulator, FIXTURE, &["plan"]);
    let plan = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.contains("to a self-healing NAT, keeping its Elastic IP")
            && plan.contains("per month"),
        "{plan}"
    );

    deploy_from_its_dir(&emulator, FIXTURE);
    assert_eq!(assert_routed_through_interfaces(&emulator).await, ips);
    assert_eq!(stack_ips(&emulator).await, ips);
    assert_eq!(emulator.live_nat_gateways().await, 0);
    assert_switch_calls_allowed(
        &emulator,
        &[
            "ec2:DeleteNatGateway",
            "autoscaling:CreateAutoScalingGroup",
            "ec2:AssociateAddress",
        ],
    );
}

/// Self-healing NAT instances move back to NAT gateways in one deploy of a gateway function,
/// keeping both IPs; the groups, their templates, interfaces and instances, the instance
/// profile and its role, and the NAT security group are gone.
#[tokio::test(flavor = "multi_thread")]
async fn self_healing_switches_to_gateways_in_one_deploy_keeping_the_ips() {
    let emulator = Emulator::start();
    switch_out_of_self_healing(&emulator, "second-function").await;
    assert_eq!(emulator.available_nat_gateways().await, 2);
    assert_eq!(emulator.security_groups("nat-security-group").await, 0);
    assert_switch_calls_allowed(
        &emulator,
        &[
            "ec2:DisassociateAddress",
            "ec2:CreateNatGateway",
            "autoscaling:DeleteAutoScalingGroup",
            "ec2:DeleteLaunchTemplate",
            "ec2:DeleteNetworkInterface",
            "iam:DeleteInstanceProfile",
        ],
    );
}

/// Self-healing NAT instances move to plain ones in one deploy of the `nat-instance` fixture,
/// keeping both IPs: each private route goes to a plain instance holding one of them; nothing of
/// the groups is left.
#[tokio::test(flavor = "multi_thread")]
async fn self_healing_switches_to_plain_instances_in_one_deploy_keeping_the_ips() {
    let emulator = Emulator::start();
    let ips = switch_out_of_self_healing(&emulator, "nat-instance").await;
    assert_eq!(live_instances(&emulator, "nat-instance").await, 2);
    let on_instances: BTreeSet<String> = emulator
        .addresses()
        .await
        .iter()
        .filter(|a| a.instance_id().is_some())
        .filter_map(|a| a.public_ip().map(str::to_owned))
        .collect();
    assert_eq!(on_instances, ips);
    let to_instances = default_routes(&emulator)
        .await
        .iter()
        .filter(|r| r.instance_id().is_some())
        .count();
    assert_eq!(to_instances, 2);
    assert_switch_calls_allowed(
        &emulator,
        &[
            "ec2:RunInstances",
            "ec2:GetConsoleOutput",
            "ec2:DisassociateAddress",
            "autoscaling:DeleteAutoScalingGroup",
        ],
    );
}

/// Destroy run for a function that does not ask for self-healing (the setting removed, or
/// another function of the stack) still finds the stack's groups and removes all of them; the
/// IPs stay, retained.
#[tokio::test(flavor = "multi_thread")]
async fn destroy_without_the_setting_still_removes_the_groups() {
    let emulator = Emulator::start();
    deploy_from_its_dir(&emulator, FIXTURE);
    let ips = assert_routed_through_interfaces(&emulator).await;
    destroy_without_the_setting(&emulator);
    assert_no_group_left(&emulator).await;
    assert_eq!(stack_ips(&emulator).await, ips, "the IPs stay, retained");
}

/// `destroy` run for the `second-function` fixture, which does not ask for self-healing.
fn destroy_without_the_setting(emulator: &Emulator) -> Output {
    let zip = fixture_zip("second-function");
    from_its_dir(
        emulator,
        "second-function",
        &[
            "destroy",
            "--yes",
            "--force-detach-others",
            "--eni-timeout",
            "20",
            "--zip",
            zip.to_str().unwrap(),
        ],
    )
}

/// What a deploy into self-healing killed early leaves, before any fixed interface exists (the
/// instance profile's role, made first; a launch template whose interface a later removal took
/// first), is found by a destroy that does not ask for self-healing, and removed. Outside the
/// mode the groups and the profile are read only when an interface, a template or the role is
/// found (`NatGroupReads::IfAnyLeft`): this fails if the role or the templates stop being asked.
#[tokio::test(flavor = "multi_thread")]
async fn destroy_without_the_setting_finds_a_role_and_a_template_left_without_an_interface() {
    let emulator = Emulator::start();
    deploy_from_its_dir(&emulator, "second-function");
    let iam = emulator.iam().await;
    let name = "fixedip-default-us-east-1-nat";
    iam.create_role()
        .role_name(name)
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let tag = |key: &str, value: &str| {
        aws_sdk_ec2::types::Tag::builder()
            .key(key)
            .value(value)
            .build()
    };
    emulator
        .ec2()
        .await
        .create_launch_template()
        .launch_template_name("fixedip-default-nat-0")
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .instance_type(aws_sdk_ec2::types::InstanceType::T4gNano)
                .build(),
        )
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::LaunchTemplate)
                .tags(tag("fixedip:stack", "default"))
                .tags(tag("fixedip:component", "nat-launch-template"))
                .tags(tag("fixedip:slot", "0"))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(
        interfaces(&emulator).await.is_empty(),
        "no interface to find them by"
    );
    destroy_without_the_setting(&emulator);
    assert_no_group_left(&emulator).await;
}

/// The switches from and to NAT gateways, and to plain NAT instances, under AWS's timing and
/// rules (`Scenario::aws_like`, scaled down): a gateway reads `pending` and `deleting` for a while, its address is refused
/// for a moment after it reads `deleted`, a group instance's boot takes its time, fresh ids are
/// not found at once, and AWS's dependency rules hold. Same IPs each way. Prints each switch's
/// egress pause as the model gives it (from the first DeleteNatGateway, or the first
/// DisassociateAddress, to the last route's move).
#[tokio::test(flavor = "multi_thread")]
async fn switches_out_of_and_into_self_healing_under_aws_timing() {
    const SCALE: f64 = 0.05;
    let lab = crate::common::Lab::start(fixedip_chaos::Scenario::aws_like(SCALE)).await;
    let deploy = |fixture: &str| {
        let zip = fixture_zip(fixture);
        let mut command = lab.command(&[
            "deploy",
            "--zip",
            zip.to_str().unwrap(),
            "--poll-interval",
            "0.2",
        ]);
        command.current_dir(fixture_dir(fixture));
        let fixture = fixture.to_owned();
        async move {
            let output = tokio::task::spawn_blocking(move || command.output().unwrap())
                .await
                .unwrap();
            assert!(
                output.status.success(),
                "deploy of {fixture}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    };
    deploy("second-function").await;
    let ips = stack_ips(&lab.emulator).await;
    assert_eq!(ips.len(), 2);

    let mark = lab.proxy.log().len();
    deploy(FIXTURE).await;
    assert_eq!(assert_routed_through_interfaces(&lab.emulator).await, ips);
    assert_eq!(lab.emulator.live_nat_gateways().await, 0);
    let pause = egress_pause(&lab.proxy.log()[mark..], "DeleteNatGateway");
    eprintln!(
        "gateways → self-healing at aws_like({SCALE}): egress paused {:.1} s (the model's gateway deletion {:.1} s and address settling {:.2} s, then its boot of {:.1} s from the address on, and polls)",
        pause.as_secs_f64(),
        60.0 * SCALE,
        5.0 * SCALE,
        60.0 * SCALE
    );

    let mark = lab.proxy.log().len();
    deploy("second-function").await;
    assert_eq!(stack_ips(&lab.emulator).await, ips);
    assert_eq!(lab.emulator.available_nat_gateways().await, 2);
    assert_no_group_left(&lab.emulator).await;
    let pause = egress_pause(&lab.proxy.log()[mark..], "DisassociateAddress");
    eprintln!(
        "self-healing → gateways at aws_like({SCALE}): egress paused {:.1} s (the model's gateway creation {:.1} s and polls)",
        pause.as_secs_f64(),
        60.0 * SCALE
    );

    deploy(FIXTURE).await;
    let mark = lab.proxy.log().len();
    deploy("nat-instance").await;
    assert_eq!(stack_ips(&lab.emulator).await, ips);
    assert_eq!(live_instances(&lab.emulator, "nat-instance").await, 2);
    assert_no_group_left(&lab.emulator).await;
    let pause = egress_pause(&lab.proxy.log()[mark..], "DisassociateAddress");
    eprintln!(
        "self-healing → plain instances at aws_like({SCALE}): egress paused {:.1} s (the instances were ready before; the address's move and polls)",
        pause.as_secs_f64()
    );
}

/// From the first `from` call's start to the last route change's end.
fn egress_pause(log: &[fixedip_chaos::LogEntry], from: &str) -> std::time::Duration {
    let of = |name: &str| -> Vec<&fixedip_chaos::LogEntry> {
        log.iter().filter(|e| e.operation.name == name).collect()
    };
    let start = of(from).iter().map(|e| e.start).min();
    let end = of("ReplaceRoute").iter().map(|e| e.end).max();
    end.expect("no route moved") - start.expect("no pause started")
}

/// A group whose instance never gets ready (its boot writes FAILED) fails the deploy with the
/// instance's own lines, and no private route is made to an interface nobody forwards from.
#[tokio::test(flavor = "multi_thread")]
async fn a_group_instance_that_never_gets_ready_fails_the_deploy_with_its_own_lines() {
    use fixedip_chaos::scenario::{NatBoot, NeverReady};
    let scenario = fixedip_chaos::Scenario {
        nat_boot: NatBoot {
            ready_after_ms: 0,
            replacement_after_ms: 0,
            never_ready: vec![NeverReady {
                nth: 1,
                silent: false,
            }],
        },
        ..fixedip_chaos::Scenario::default()
    };
    let lab = crate::common::Lab::start(scenario).await;
    let manifest = fixtures_manifest().to_str().unwrap().to_owned();
    let zip = fixture_zip(FIXTURE).to_str().unwrap().to_owned();
    let output = lab
        .run(&[
            "deploy",
            "--manifest-path",
            &manifest,
            "--zip",
            &zip,
            "--poll-interval",
            "0.2",
        ])
        .await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("fixedip-nat: FAILED: nftables could not be installed"),
        "{stderr}"
    );
    let to_interfaces = default_routes(&lab.emulator)
        .await
        .iter()
        .filter(|r| r.network_interface_id().is_some())
        .count();
    assert!(
        to_interfaces < 2,
        "the failed slot has no route to its interface"
    );
}
