//! Packets, not only configuration: the data-plane twin (`fixedip_tests::twin`) built from what
//! fixedip's reader observes in the account, with the real example function run in each of its
//! subnets. Its answer, the address "the internet" saw, must be one of the allowed IPs; and on
//! every broken network of `verify`'s fixtures, the twin and `verify` must agree on whether egress
//! works (the agreement table is in docs/verify.md).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use cargo_fixedip::aws::nat_instance::USER_DATA;
use cargo_fixedip::aws::network::{function_attachment, observe_network};
use cargo_fixedip::aws::Aws;
use fixedip_core::network::RulePeer;
use fixedip_core::verify::{self, EgressNetwork, FindingCode, FunctionAttachment, Severity};
use fixedip_tests::console::{break_network, build_console_network, BREAKAGES};
use fixedip_tests::twin::Twin;
use fixedip_tests::{deploy_fixture, example_binary, Emulator};

use crate::common;

/// What fixedip's own reader observes of the function's network, as `verify` reads it.
async fn observe(emulator: &Emulator, function: &str) -> (EgressNetwork, FunctionAttachment) {
    let aws = Aws::from_config(emulator.sdk_config().await);
    let attachment = function_attachment(&aws, function).await.unwrap();
    let network = observe_network(&aws, &attachment).await.unwrap();
    (network, attachment)
}

/// Whether the function's egress works in the twin: from every subnet it runs in, the internet
/// sees one of `allowed`. The reason when it does not.
async fn twin_verdict(
    network: &EgressNetwork,
    function: &FunctionAttachment,
    allowed: &BTreeSet<Ipv4Addr>,
    user_data: &str,
) -> Result<(), String> {
    if function.subnet_ids.is_empty() {
        return Err("not in a VPC: Lambda's own addresses".into());
    }
    let twin = Twin::build(network, function, user_data).expect("the twin builds");
    for ((subnet, probe), seen) in twin.egress_ips(example_binary()).await {
        match seen {
            Ok(ip) if allowed.contains(&ip) => {}
            Ok(ip) => {
                return Err(format!(
                    "{subnet} → {probe}: left from {ip}, not an allowed IP"
                ))
            }
            Err(e) => return Err(format!("{subnet} → {probe}: {e}")),
        }
    }
    Ok(())
}

fn allowed(ips: &[String]) -> BTreeSet<Ipv4Addr> {
    ips.iter().map(|ip| ip.parse().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_network_leaves_from_each_az_s_own_elastic_ip() {
    let emulator = tokio::task::spawn_blocking(Emulator::start).await.unwrap();
    let console = build_console_network(&emulator).await;
    let (network, function) = observe(&emulator, &console.function).await;
    let twin = Twin::build(&network, &function, USER_DATA).unwrap();
    for zone in &console.zones {
        let seen = twin
            .egress_ip(&zone.private_subnet, twin.probes()[0], example_binary())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", zone.az));
        assert_eq!(seen.to_string(), zone.ip, "{}", zone.az);
    }
}

/// Breakages whose effect is on IPv6 only: the twin models IPv4 (docs/verify.md).
const IPV6_ONLY: [&str; 2] = [
    "ipv6-egress-only-single-stack",
    "ipv6-egress-only-dual-stack",
];

#[tokio::test(flavor = "multi_thread")]
async fn verify_and_the_twin_agree_on_every_broken_network() {
    let names: Vec<&'static str> = BREAKAGES
        .iter()
        .copied()
        .filter(|name| !IPV6_ONLY.contains(name))
        .collect();
    // Three breakages at a time: each waits on its own moto far more than it computes.
    let verdicts = common::in_parallel(names.len() as u64, 3, |k| {
        let name = names[k as usize - 1];
        async move { (name, verdict_of_breakage(name).await) }
    })
    .await;
    let mut table = Vec::new();
    for (name, (findings, twin)) in verdicts {
        let verify_breaks = findings.iter().any(|f| f.severity == Severity::Error);
        table.push(format!(
            "| {name} | {} | {} |",
            match verify_breaks {
                true => findings
                    .iter()
                    .map(|f| f.code.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                false => "passes".to_owned(),
            },
            match &twin {
                Ok(()) => "egress from an allowed IP".to_owned(),
                Err(e) => e.clone(),
            }
        ));
        assert_eq!(
            verify_breaks,
            twin.is_err(),
            "{name}: verify found {findings:#?}, the twin saw {twin:?}"
        );
    }
    eprintln!(
        "| breakage | verify | twin |\n|---|---|---|\n{}",
        table.join("\n")
    );
}

/// One breakage of the console network, in an emulator of its own: what `verify` finds, and
/// whether egress works in the twin.
async fn verdict_of_breakage(name: &'static str) -> (Vec<verify::Finding>, Result<(), String>) {
    let emulator = tokio::task::spawn_blocking(Emulator::start).await.unwrap();
    let console = build_console_network(&emulator).await;
    let target = break_network(&emulator, &console, name).await;
    let (network, function) = observe(&emulator, &target.function).await;
    let allowed = allowed(&target.allowed);
    let findings = verify::check(
        &network,
        &function,
        &allowed.iter().copied().collect::<Vec<_>>(),
    );
    let twin = twin_verdict(&network, &function, &allowed, USER_DATA).await;
    (findings, twin)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nat_instance_masquerading_on_the_wrong_interface_fails_in_the_twin_alone() {
    let emulator = tokio::task::spawn_blocking(Emulator::start).await.unwrap();
    let console = build_console_network(&emulator).await;
    let target = break_network(&emulator, &console, "nat-instance").await;
    let (network, function) = observe(&emulator, &target.function).await;
    let allowed = allowed(&target.allowed);
    let findings = verify::check(
        &network,
        &function,
        &allowed.iter().copied().collect::<Vec<_>>(),
    );
    assert!(
        findings.iter().all(|f| f.severity != Severity::Error),
        "{findings:#?}"
    );
    twin_verdict(&network, &function, &allowed, USER_DATA)
        .await
        .expect("fixedip's own user data forwards and masquerades");

    // The same instance, its masquerade rule naming an interface it does not have: the
    // configuration is as good as before, the packets leave from no allowed IP.
    let wrong = USER_DATA.replace("oifname \"$OUT\" masquerade", "oifname \"eth1\" masquerade");
    assert_ne!(wrong, USER_DATA, "the user data's masquerade rule moved");
    let seen = twin_verdict(&network, &function, &allowed, &wrong).await;
    assert!(seen.is_err(), "{seen:?}");
}

/// The IPs deploy printed.
fn deploy(emulator: &Emulator, fixture: &str) -> BTreeSet<Ipv4Addr> {
    deploy_fixture(emulator, fixture)["stacks"][0]["ips"]
        .as_array()
        .expect("the stack's IPs")
        .iter()
        .map(|a| a["ip"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_mode_fixedip_deploys_leaves_from_its_ips_or_not_at_all() {
    // (fixture, its function, whether it has egress)
    for (fixture, egress) in [
        ("egress-one-nat", true),
        ("nat-instance", true),
        ("egress-isolated", false),
    ] {
        let emulator = tokio::task::spawn_blocking(Emulator::start).await.unwrap();
        let ips = deploy(&emulator, fixture);
        let (network, function) = observe(&emulator, fixture).await;
        let twin = Twin::build(&network, &function, USER_DATA).unwrap();
        let seen = twin.egress_ips(example_binary()).await;
        assert_eq!(seen.len(), 2, "{fixture}: both subnets probed: {seen:?}");
        for ((subnet, probe), ip) in seen {
            match egress {
                true => assert!(
                    ip.as_ref().is_ok_and(|ip| ips.contains(ip)),
                    "{fixture}: {subnet} → {probe}: {ip:?}, the stack's IPs are {ips:?}"
                ),
                false => assert!(ip.is_err(), "{fixture}: {subnet} → {probe}: {ip:?}"),
            }
        }
    }
}

/// From every subnet of the function, S3 answers through the gateway endpoint, seeing the
/// function's own private address (not a NAT's): the endpoint, not the NAT, carried the request.
async fn assert_s3_reached_through_its_endpoint(twin: &Twin, network: &EgressNetwork, what: &str) {
    let s3 = twin
        .service_address("s3")
        .unwrap_or_else(|| panic!("{what}: no route to S3's gateway endpoint"));
    for subnet in twin.wiring().function_devices.keys() {
        let cidr = network
            .resources
            .subnets
            .iter()
            .find(|s| &s.id == subnet)
            .expect("the function's subnet")
            .cidr;
        let seen = twin.egress_ip(subnet, s3, example_binary()).await;
        assert!(
            seen.as_ref().is_ok_and(|ip| cidr.contains(ip)),
            "{what}: {subnet} → S3 {s3}: {seen:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_is_reached_through_its_gateway_endpoint_and_an_isolated_stack_reaches_nothing_else() {
    for (fixture, function, egress) in [
        ("endpoints-four", "endpoints-fn", true),
        ("isolated-endpoints", "isolated-endpoints", false),
    ] {
        let emulator = tokio::task::spawn_blocking(Emulator::start).await.unwrap();
        let ips = deploy(&emulator, fixture);
        let (network, attachment) = observe(&emulator, function).await;
        let twin = Twin::build(&network, &attachment, USER_DATA).unwrap();
        assert_s3_reached_through_its_endpoint(&twin, &network, fixture).await;
        for subnet in &attachment.subnet_ids {
            let seen = twin
                .egress_ip(subnet, twin.probes()[0], example_binary())
                .await;
            match egress {
                true => assert!(seen.is_ok_and(|ip| ips.contains(&ip)), "{fixture}"),
                false => assert!(seen.is_err(), "{fixture}: {subnet}: {seen:?}"),
            }
        }
    }
}

/// Restricted `egress` with an S3 gateway endpoint: security groups filter gateway-endpoint
/// traffic too, so the function's group needs a rule to S3's prefix list (issue 16), which a
/// configuration check of the routes alone would miss. Without that rule (a stack deployed before
/// fixedip wrote it), S3 is unreachable in the twin, and `verify` says so.
#[tokio::test(flavor = "multi_thread")]
async fn restricted_egress_reaches_s3_through_its_gateway_endpoint_only_with_the_prefix_list_rule()
{
    let emulator = tokio::task::spawn_blocking(Emulator::start).await.unwrap();
    deploy(&emulator, "endpoints-changed");
    let (mut network, attachment) = observe(&emulator, "endpoints-fn").await;
    let twin = Twin::build(&network, &attachment, USER_DATA).unwrap();
    assert_s3_reached_through_its_endpoint(&twin, &network, "endpoints-changed").await;
    drop(twin);

    let mut removed = 0;
    for group in &mut network.resources.security_groups {
        if attachment.security_group_ids.contains(&group.id) {
            let before = group.egress.len();
            group
                .egress
                .retain(|rule| !matches!(rule.peer, RulePeer::PrefixList(_)));
            removed += before - group.egress.len();
        }
    }
    assert!(removed > 0, "deploy wrote no prefix-list egress rule");
    let twin = Twin::build(&network, &attachment, USER_DATA).unwrap();
    let s3 = twin
        .service_address("s3")
        .expect("the route to S3's endpoint");
    for subnet in twin.wiring().function_devices.keys() {
        let seen = twin.egress_ip(subnet, s3, example_binary()).await;
        assert!(
            seen.is_err(),
            "{subnet} → S3 without the prefix-list rule: {seen:?}"
        );
    }
    let findings = verify::check(&network, &attachment, &[]);
    assert!(
        findings
            .iter()
            .any(|f| f.code == FindingCode::EndpointBlockedBySecurityGroups),
        "{findings:#?}"
    );
}
