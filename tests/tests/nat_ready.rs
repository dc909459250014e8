//! NAT instances take traffic only once they say they forward (issue 17): the deploy waits for
//! the ready line the user data writes to the console, through the chaos proxy's model of the
//! boot (`nat_boot.rs`: moto runs no user data). A slow boot is waited out before any route
//! moves; an instance that never gets ready fails the deploy with its own lines, and a slot
//! switching from a NAT gateway keeps its gateway.

use fixedip_chaos::scenario::{NatBoot, NeverReady};
use fixedip_chaos::{LogEntry, Scenario};
use fixedip_tests::{example_zip, fixture_zip, fixtures_manifest, Emulator};

use crate::common::Lab;

fn nat_instance_deploy(manifest: &str, zip: &str) -> Vec<String> {
    ["deploy", "--manifest-path", manifest, "--zip", zip]
        .map(str::to_owned)
        .to_vec()
}

fn args(owned: &[String]) -> Vec<&str> {
    owned.iter().map(String::as_str).collect()
}

/// The first NAT instance launched (since the scenario was set) ends its boot with FAILED.
fn first_launch_fails() -> Scenario {
    Scenario {
        nat_boot: NatBoot {
            replacement_after_ms: 0,
            ready_after_ms: 0,
            never_ready: vec![NeverReady {
                nth: 1,
                silent: false,
            }],
        },
        ..Scenario::default()
    }
}

fn calls<'a>(log: &'a [LogEntry], name: &str) -> Vec<&'a LogEntry> {
    log.iter().filter(|e| e.operation.name == name).collect()
}

/// What carries the stack's `fixedip:component` tag of `value`.
fn component(value: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name("tag:fixedip:component")
        .values(value)
        .build()
}

/// `cargo fixedip COMMAND` for the `nat-instance` fixture function.
fn on_fixture<'a>(manifest: &'a str, command: &'a str) -> [&'a str; 5] {
    [command, "--manifest-path", manifest, "-p", "nat-instance"]
}

/// The private routes to the stack's two slots, by target kind: ("nat", "instance").
async fn private_route_targets(emulator: &Emulator) -> (usize, usize) {
    let tables = emulator
        .ec2()
        .await
        .describe_route_tables()
        .filters(component("private-route-table"))
        .send()
        .await
        .unwrap();
    let routes: Vec<_> = tables
        .route_tables()
        .iter()
        .flat_map(|t| t.routes())
        .filter(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
        .collect();
    let nat = routes
        .iter()
        .filter(|r| r.nat_gateway_id().is_some())
        .count();
    let instance = routes.iter().filter(|r| r.instance_id().is_some()).count();
    (nat, instance)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_boot_is_waited_out_before_the_route_moves() {
    const BOOT_MS: u64 = 3000;
    let scenario = Scenario {
        nat_boot: NatBoot {
            replacement_after_ms: 0,
            ready_after_ms: BOOT_MS,
            never_ready: Vec::new(),
        },
        ..Scenario::default()
    };
    let lab = Lab::start(scenario).await;
    let manifest = fixtures_manifest().to_str().unwrap().to_owned();
    let zip = fixture_zip("nat-instance").to_str().unwrap().to_owned();
    let deploy = nat_instance_deploy(&manifest, &zip);
    lab.run_expect(&args(&deploy), 0, "deploy with a slow boot")
        .await;
    assert_eq!(private_route_targets(&lab.emulator).await, (0, 2));

    // The routes to the instances come after the boot time, counted from when each got its
    // Elastic IP (its way out), and the console was read while it booted.
    let log = lab.proxy.log();
    let associated = calls(&log, "AssociateAddress");
    let routes = calls(&log, "CreateRoute");
    assert_eq!(associated.len(), 2, "{}", crate::common::render(&log));
    let first_address = associated.iter().map(|e| e.end).min().unwrap();
    let last_route = routes.iter().map(|e| e.start).max().unwrap();
    assert!(
        last_route >= first_address + std::time::Duration::from_millis(BOOT_MS),
        "a private route was made {:?} after the first Elastic IP went on: before the boot ended",
        last_route - first_address
    );
    assert!(calls(&log, "GetConsoleOutput").len() > 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_that_never_gets_ready_fails_the_deploy_and_every_slot_keeps_its_gateway() {
    // The first NAT instance launched writes FAILED; the second boots.
    let lab = Lab::start(first_launch_fails()).await;
    let gateways = example_zip().to_str().unwrap().to_owned();
    lab.run_expect(
        &["deploy", "--zip", &gateways],
        0,
        "deploy with NAT gateways",
    )
    .await;
    assert_eq!(private_route_targets(&lab.emulator).await, (2, 0));

    let manifest = fixtures_manifest().to_str().unwrap().to_owned();
    let zip = fixture_zip("nat-instance").to_str().unwrap().to_owned();
    let output = lab.run(&args(&nat_instance_deploy(&manifest, &zip))).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("did not get ready")
            && stderr.contains("FAILED: nftables could not be installed"),
        "the instance's own lines are reported:\n{stderr}"
    );
    // Every slot still routes through its gateway, which is still there: no gateway goes before
    // every switching slot's instance is ready (the executor starts nothing after the failure,
    // so a slot whose gateway went first would be left routed to a deleted gateway).
    assert_eq!(private_route_targets(&lab.emulator).await, (2, 0));
    assert_eq!(lab.emulator.available_nat_gateways().await, 2);
}

/// An instance that runs, has its check off and holds its Elastic IP, but whose boot failed (as
/// a deploy by a version of fixedip that did not wait for the ready line could leave it): verify
/// fails on it, naming what its console says, and status shows it.
#[tokio::test(flavor = "multi_thread")]
async fn verify_fails_on_a_running_nat_instance_that_is_not_ready() {
    let lab = Lab::start(Scenario::default()).await;
    let manifest = fixtures_manifest().to_str().unwrap().to_owned();
    let zip = fixture_zip("nat-instance").to_str().unwrap().to_owned();
    lab.run_expect(&args(&nat_instance_deploy(&manifest, &zip)), 0, "deploy")
        .await;
    let verify = [
        "verify",
        "--manifest-path",
        manifest.as_str(),
        "-p",
        "nat-instance",
    ];
    lab.run_expect(&verify, 0, "verify of ready instances")
        .await;

    // From now on the console of the first instance launched ends in FAILED.
    lab.proxy.set_scenario(first_launch_fails());
    let output = lab.run(&verify).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("has not reported forwarding and masquerading on")
            && stdout.contains("nftables could not be installed"),
        "{stdout}"
    );
    let status = lab
        .run_expect(
            &[
                "status",
                "--manifest-path",
                manifest.as_str(),
                "-p",
                "nat-instance",
            ],
            0,
            "status",
        )
        .await;
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("running, FAILED: "), "{text}");
    assert!(text.contains("running, ready"), "{text}");
}

/// The stack's running-or-stopped NAT instances: (id, primary interface).
async fn nat_instances(emulator: &Emulator) -> Vec<(String, String)> {
    let answer = emulator
        .ec2()
        .await
        .describe_instances()
        .filters(component("nat-instance"))
        .send()
        .await
        .unwrap();
    let mut found: Vec<(String, String)> = answer
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| {
            let state = i.state().and_then(|s| s.name()).map(|n| n.as_str());
            matches!(state, Some("running" | "stopped"))
        })
        .map(|i| {
            let interface = i.network_interfaces()[0].network_interface_id().unwrap();
            (i.instance_id().unwrap().to_owned(), interface.to_owned())
        })
        .collect();
    found.sort();
    found
}

/// The Elastic IP on each network interface: (interface, public IP).
async fn addresses_on_interfaces(emulator: &Emulator) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = emulator
        .addresses()
        .await
        .iter()
        .filter_map(|a| {
            Some((
                a.network_interface_id()?.to_owned(),
                a.public_ip()?.to_owned(),
            ))
        })
        .collect();
    found.sort();
    found
}

/// A NAT instance stopped under a live stack (by hand, or by AWS retiring its host) cuts its
/// slot off while the route still names it: verify fails on it, status shows it, and the next
/// deploy starts it again and waits until its boot reports ready once more, keeping the
/// instance, its route and its Elastic IP. That report comes from the unit the user data
/// installs for every boot: cloud-init runs the user data only at the first, and without the
/// unit the chaos proxy's model of the restart shows no ready line and the deploy times out.
#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_instance_is_started_by_the_next_deploy_and_reports_ready_again() {
    const BOOT_MS: u64 = 2000;
    let lab = Lab::start(Scenario {
        nat_boot: NatBoot {
            replacement_after_ms: 0,
            ready_after_ms: BOOT_MS,
            never_ready: Vec::new(),
        },
        ..Scenario::default()
    })
    .await;
    let manifest = fixtures_manifest().to_str().unwrap().to_owned();
    let zip = fixture_zip("nat-instance").to_str().unwrap().to_owned();
    let mut deploy = nat_instance_deploy(&manifest, &zip);
    deploy.extend(["--nat-ready-timeout".to_owned(), "60".to_owned()]);
    lab.run_expect(&args(&deploy), 0, "deploy").await;
    let instances = nat_instances(&lab.emulator).await;
    let addresses = addresses_on_interfaces(&lab.emulator).await;
    assert_eq!((instances.len(), addresses.len()), (2, 2), "{addresses:?}");
    let (stopped, _) = &instances[0];
    lab.emulator
        .ec2()
        .await
        .stop_instances()
        .instance_ids(stopped)
        .send()
        .await
        .unwrap();

    let verify = lab.run(&on_fixture(&manifest, "verify")).await;
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert!(!verify.status.success(), "{stdout}");
    assert!(stdout.contains("nat-instance-not-running"), "{stdout}");
    let status = lab
        .run_expect(&on_fixture(&manifest, "status"), 0, "status")
        .await;
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains(&format!("{stopped} (t4g.nano) stopped")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "NAT instance {stopped} stopped: this AZ has no egress until the next deploy, which starts it again"
        )),
        "{text}"
    );

    lab.proxy.clear_log();
    lab.run_expect(&args(&deploy), 0, "the deploy that starts it")
        .await;
    let log = lab.proxy.log();
    let started = calls(&log, "StartInstances");
    assert_eq!(started.len(), 1, "{}", crate::common::render(&log));
    for moved in [
        "RunInstances",
        "AssociateAddress",
        "CreateRoute",
        "ReplaceRoute",
    ] {
        assert!(
            calls(&log, moved).is_empty(),
            "{moved} in {}",
            crate::common::render(&log)
        );
    }
    // The deploy ended only once the restarted boot said ready.
    let last_read = calls(&log, "GetConsoleOutput")
        .iter()
        .map(|e| e.end)
        .max()
        .unwrap();
    assert!(last_read >= started[0].end + std::time::Duration::from_millis(BOOT_MS));
    assert_eq!(nat_instances(&lab.emulator).await, instances);
    assert_eq!(addresses_on_interfaces(&lab.emulator).await, addresses);
    lab.run_expect(
        &on_fixture(&manifest, "verify"),
        0,
        "verify after the start",
    )
    .await;
    fixedip_tests::iam_policy::assert_allowed_by_iam_policy(&lab.proxy.log());
}

/// A NAT instance terminated under a live stack (by hand, or by AWS) cuts its slot off until
/// the next deploy (verify fails meanwhile), which launches a replacement with a client token of a new generation (AWS
/// would answer the old token with the terminated instance: `client_tokens`), puts the slot's
/// same Elastic IP on it and moves the route once it reports ready.
#[tokio::test(flavor = "multi_thread")]
async fn a_terminated_instance_is_replaced_by_the_next_deploy_on_the_same_address() {
    let lab = Lab::start(Scenario {
        client_tokens: true,
        ..Scenario::default()
    })
    .await;
    let manifest = fixtures_manifest().to_str().unwrap().to_owned();
    let zip = fixture_zip("nat-instance").to_str().unwrap().to_owned();
    let deploy = nat_instance_deploy(&manifest, &zip);
    lab.run_expect(&args(&deploy), 0, "deploy").await;
    let instances = nat_instances(&lab.emulator).await;
    let ips: std::collections::BTreeSet<String> = addresses_on_interfaces(&lab.emulator)
        .await
        .into_iter()
        .map(|(_, ip)| ip)
        .collect();
    assert_eq!((instances.len(), ips.len()), (2, 2));
    let (gone, _) = &instances[0];
    // Through the proxy, which takes the address off as AWS does at termination (moto keeps it).
    let config = lab.emulator.sdk_config().await;
    let through_proxy = aws_sdk_ec2::config::Builder::from(&config)
        .endpoint_url(lab.proxy.url())
        .build();
    aws_sdk_ec2::Client::from_conf(through_proxy)
        .terminate_instances()
        .instance_ids(gone)
        .send()
        .await
        .unwrap();

    let verify = lab.run(&on_fixture(&manifest, "verify")).await;
    assert!(
        !verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    // status names the AZ cut off and what brings it back; its mode still counts the AZ's NAT.
    let status = lab
        .run_expect(&on_fixture(&manifest, "status"), 0, "status")
        .await;
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains(&format!(
            "NAT instance {gone} gone: this AZ has no egress until the next deploy, which launches a replacement"
        )),
        "{text}"
    );
    assert!(text.contains("mode: one NAT instance per AZ"), "{text}");

    lab.proxy.clear_log();
    lab.run_expect(&args(&deploy), 0, "the deploy that replaces it")
        .await;
    let log = lab.proxy.log();
    let launched = calls(&log, "RunInstances");
    assert_eq!(launched.len(), 1, "{}", crate::common::render(&log));
    let after = nat_instances(&lab.emulator).await;
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(after.iter().all(|(id, _)| id != gone), "{after:?}");
    assert!(
        after.contains(&instances[1]),
        "the other slot's instance stays"
    );
    let now: std::collections::BTreeSet<String> = addresses_on_interfaces(&lab.emulator)
        .await
        .into_iter()
        .filter(|(interface, _)| after.iter().any(|(_, i)| i == interface))
        .map(|(_, ip)| ip)
        .collect();
    assert_eq!(now, ips, "the replacement leaves from the same Elastic IP");
    lab.run_expect(
        &on_fixture(&manifest, "verify"),
        0,
        "verify after the replacement",
    )
    .await;
    fixedip_tests::iam_policy::assert_allowed_by_iam_policy(&lab.proxy.log());
}
