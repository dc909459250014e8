//! Every report, built from plain values with stable ids, as text and as JSON: insta snapshots
//! (src/report/snapshots/), so that a change to what a user or a script reads shows in review.

use std::net::Ipv4Addr;

use fixedip_core::plan::{NetworkModes, Status};
use fixedip_core::verify::{Finding, FindingCode, Severity};

use super::deploy::{DeployReport, StackDeployed};
use super::destroy::{AddressId, DestroyPreview, DestroyReport, StackDestroyed, StackTeardown};
use super::ips::{IpsReport, ListedIp, StackIps};
use super::status::{
    AttachedFunction, DefaultRoute, InternetGateway, Mode, NatGateway, RouteTable, StackStatus,
    StatusReport, Subnet, SubnetTier, Vpc,
};
use super::unlock::{RemovedLease, StackUnlocked, UnlockReport};
use super::verify::{
    AllowedFrom, FindingReport, FunctionVerdict, Probe, StackVerdicts, VerifyReport,
};
use super::{Calls, FormatVersion, Ip, IpUse, PendingIp};
use crate::render::tests::{plain, plan_of, spec};

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(203, 0, 113, last)
}

fn address(last: u8, usage: IpUse, slot: Option<u8>) -> Ip {
    Ip {
        ip: ip(last),
        allocation_id: format!("eipalloc-0{last:02}"),
        active: usage == IpUse::Active,
        usage,
        slot,
    }
}

fn json(report: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(report).unwrap()
}

fn finding(code: FindingCode, severity: Severity) -> FindingReport {
    FindingReport::from(&Finding {
        code,
        severity,
        resource: "rtb-0a1".into(),
        problem: "subnet-0b2 (us-east-1b) sends 0.0.0.0/0 to nat-0c3 in us-east-1a".into(),
        fix: "give us-east-1b a NAT of its own".into(),
    })
}

#[test]
fn every_document_starts_with_its_format_version() {
    let documents = [
        json(&IpsReport {
            format_version: FormatVersion,
            ips: Vec::new(),
            stacks: Vec::new(),
        }),
        json(&UnlockReport {
            format_version: FormatVersion,
            stacks: Vec::new(),
        }),
    ];
    for document in documents {
        assert!(
            document.starts_with("{\n  \"format_version\": 1,"),
            "{document}"
        );
    }
}

#[test]
fn deploy() {
    let report = DeployReport {
        format_version: FormatVersion,
        stacks: vec![StackDeployed {
            stack: "default".into(),
            region: "us-east-1".into(),
            functions: vec!["hello-egress".into()],
            steps: 27,
            isolated: false,
            ips: vec![
                address(7, IpUse::Active, Some(0)),
                address(8, IpUse::Active, Some(1)),
                address(9, IpUse::Retained, None),
            ],
            pending_ips: vec![PendingIp {
                slot: 2,
                az: "us-east-1c".into(),
                ip: Some(ip(10)),
                allocation_id: Some("eipalloc-010".into()),
                message: "new IP 203.0.113.10 allocated for us-east-1c (slot 2); add it to the partner's allowlist, then run `cargo fixedip deploy --allow-new-ips`".into(),
            }],
            calls: Calls {
                total: 61,
                mutating: 27,
            },
            verification: vec![FunctionVerdict {
                function: "hello-egress".into(),
                vpc_id: Some("vpc-0a1".into()),
                passed: true,
                findings: vec![finding(FindingCode::NatInOtherAz, Severity::Warning)],
                probe: None,
            }],
        }],
    };
    assert_eq!(report.held_back(), ["203.0.113.10"]);
    insta::assert_snapshot!("deploy_text", plain(&report));
    insta::assert_snapshot!("deploy_json", json(&report));
}

#[test]
fn destroy() {
    let report = DestroyReport {
        format_version: FormatVersion,
        stacks: vec![StackDestroyed {
            stack: "default".into(),
            region: "us-east-1".into(),
            removed: vec![
                "detach function hello-egress from the VPC".into(),
                "delete NAT gateway nat-0c3".into(),
            ],
            released_ips: vec![AddressId {
                ip: ip(9),
                allocation_id: "eipalloc-009".into(),
            }],
            kept_ips: vec![address(7, IpUse::Retained, None)],
            calls: Calls {
                total: 40,
                mutating: 12,
            },
        }],
    };
    insta::assert_snapshot!("destroy_text", plain(&report));
    insta::assert_snapshot!("destroy_json", json(&report));
}

/// What destroy shows before it asks: the stack's tree with every resource deleted. The tree is
/// of a planned network whose statuses are turned into deletions of stable ids.
#[test]
fn destroy_preview() {
    let mut plan = plan_of(&spec(1, &[], NetworkModes::default()));
    let network = &mut plan.network;
    let gone = |id: &str| Status::Delete(id.to_owned());
    network.vpc.1 = gone("vpc-0a1");
    network.internet_gateway = gone("igw-0a2");
    network.public_route_table = gone("rtb-0a3");
    network.security_group = gone("sg-0a4");
    network.role = Some(Status::Absent);
    let az = &mut network.azs[0];
    az.public_subnet.1 = gone("subnet-0b1");
    az.private_subnet.1 = gone("subnet-0b2");
    az.nat_gateway = gone("nat-0c3");
    az.private_route_table = gone("rtb-0b3");
    az.address = (Some(ip(7)), Status::Keep("eipalloc-007".into()));
    network.functions = vec![("hello-egress".into(), Status::Change("hello-egress".into()))];
    network.retained_addresses = vec![("eipalloc-007".into(), ip(7))];
    plan.steps.clear();
    let mut teardown = StackTeardown::of(&plan);
    teardown.steps = vec![
        "detach function hello-egress from the VPC".into(),
        "delete NAT gateway nat-0c3".into(),
    ];
    teardown.functions_leaving_vpc = vec!["hello-egress".into()];
    let preview = DestroyPreview {
        format_version: FormatVersion,
        stacks: vec![teardown],
    };
    insta::assert_snapshot!("destroy_preview_text", plain(&preview));
    insta::assert_snapshot!("destroy_preview_json", json(&preview));
}

fn ips_report() -> IpsReport {
    let listed = |stack: &str, address: Ip| ListedIp {
        address,
        stack: stack.into(),
        region: "us-east-1".into(),
    };
    IpsReport {
        format_version: FormatVersion,
        ips: vec![
            listed("default", address(7, IpUse::Active, Some(0))),
            listed("default", address(9, IpUse::Retained, None)),
            listed("default", address(8, IpUse::Pending, Some(2))),
            listed("billing", address(1, IpUse::Active, Some(0))),
        ],
        stacks: vec![
            StackIps {
                stack: "default".into(),
                region: "us-east-1".into(),
                isolated: false,
            },
            StackIps {
                stack: "billing".into(),
                region: "us-east-1".into(),
                isolated: false,
            },
        ],
    }
}

#[test]
fn ips_in_every_format() {
    let report = ips_report();
    assert_eq!(
        report.to_string(),
        "203.0.113.7\n203.0.113.9\n203.0.113.8\n203.0.113.1\n"
    );
    assert_eq!(
        report.cidr(),
        "203.0.113.7/32\n203.0.113.9/32\n203.0.113.8/32\n203.0.113.1/32\n"
    );
    insta::assert_snapshot!("ips_csv", report.csv());
    insta::assert_snapshot!("ips_json", json(&report));
}

#[test]
fn an_isolated_stack_lists_no_ip() {
    let report = IpsReport {
        format_version: FormatVersion,
        ips: Vec::new(),
        stacks: vec![StackIps {
            stack: "default".into(),
            region: "us-east-1".into(),
            isolated: true,
        }],
    };
    assert_eq!(report.to_string(), "");
    assert_eq!(report.cidr(), "");
    let document: serde_json::Value = serde_json::from_str(&json(&report)).unwrap();
    assert_eq!(
        document,
        serde_json::json!({
            "format_version": 1,
            "ips": [],
            "stacks": [{ "stack": "default", "region": "us-east-1", "isolated": true }]
        })
    );
}

fn status_of(mode: Mode) -> StackStatus {
    let subnet = |id: &str, tier, slot: u8, az: &str, cidr: &str| Subnet {
        id: id.into(),
        tier,
        slot,
        az: az.into(),
        cidr: cidr.parse().unwrap(),
    };
    StackStatus {
        stack: "default".into(),
        region: "us-east-1".into(),
        account: "123456789012".into(),
        mode,
        vpc: Some(Vpc {
            id: "vpc-0a1".into(),
            cidr: "10.0.0.0/16".parse().unwrap(),
            dns_support: true,
            dns_hostnames: true,
        }),
        internet_gateway: Some(InternetGateway {
            id: "igw-0a2".into(),
            attached: true,
        }),
        subnets: vec![
            subnet(
                "subnet-0b1",
                SubnetTier::Public,
                0,
                "us-east-1a",
                "10.0.128.0/20",
            ),
            subnet(
                "subnet-0b2",
                SubnetTier::Private,
                0,
                "us-east-1a",
                "10.0.0.0/20",
            ),
            subnet(
                "subnet-0b4",
                SubnetTier::Private,
                1,
                "us-east-1b",
                "10.0.16.0/20",
            ),
        ],
        nat_gateways: vec![NatGateway {
            id: "nat-0c3".into(),
            slot: 0,
            state: "available".into(),
        }],
        nat_instances: Vec::new(),
        nat_recovery: Vec::new(),
        private_route_tables: vec![
            RouteTable {
                id: "rtb-0b3".into(),
                slot: Some(0),
                default_route: Some(DefaultRoute::NatGateway {
                    id: "nat-0c3".into(),
                }),
            },
            RouteTable {
                id: "rtb-0b5".into(),
                slot: Some(1),
                default_route: Some(DefaultRoute::NatGateway {
                    id: "nat-0c3".into(),
                }),
            },
        ],
        ips: vec![
            address(7, IpUse::Active, Some(0)),
            address(9, IpUse::Retained, None),
        ],
        security_group: Some("sg-0a4".into()),
        role: Some("arn:aws:iam::123456789012:role/fixedip-default-us-east-1-lambda".into()),
        functions: vec![AttachedFunction {
            name: "hello-egress".into(),
            subnet_ids: vec!["subnet-0b2".into(), "subnet-0b4".into()],
        }],
        existing_network_ips: Vec::new(),
        cost: None,
    }
}

#[test]
fn status() {
    let stack = status_of(Mode::Gateway {
        nat_gateways: 1,
        azs: 2,
    });
    let report = StatusReport {
        format_version: FormatVersion,
        stacks: vec![stack],
    };
    insta::assert_snapshot!("status_text", plain(&report));
    insta::assert_snapshot!("status_json", json(&report));
}

#[test]
fn status_names_the_nat_mode() {
    let modes = [
        (
            Mode::Gateway {
                nat_gateways: 2,
                azs: 2,
            },
            "one NAT gateway per AZ",
        ),
        (
            Mode::Instance {
                nat_instances: 1,
                azs: 2,
            },
            "1 NAT instance for 2 AZs (nats = 1)",
        ),
        (Mode::None, "isolated (nat = \"none\")"),
    ];
    for (mode, said) in modes {
        let text = plain(status_of(mode));
        assert!(text.contains(&format!("  mode: {said}")), "{text}");
    }
}

#[test]
fn status_of_a_stack_on_a_network_you_run() {
    let mut stack = status_of(Mode::Gateway {
        nat_gateways: 0,
        azs: 0,
    });
    stack.vpc = None;
    stack.existing_network_ips = vec![ip(50)];
    let text = plain(&stack);
    assert!(
        text.contains("on a network you run: security group sg-0a4"),
        "{text}"
    );
    assert!(
        text.contains("Fixed egress IPs (your NATs' Elastic IPs):\n  203.0.113.50"),
        "{text}"
    );
}

#[test]
fn verify() {
    let report = VerifyReport {
        format_version: FormatVersion,
        stacks: vec![
            StackVerdicts {
                stack: Some("default".into()),
                region: "us-east-1".into(),
                allowed_from: AllowedFrom::Stack,
                allowed: vec![ip(7), ip(8)],
                functions: vec![FunctionVerdict {
                    function: "hello-egress".into(),
                    vpc_id: Some("vpc-0a1".into()),
                    passed: false,
                    findings: vec![finding(FindingCode::MissingDefaultRoute, Severity::Error)],
                    probe: Some(Probe {
                        ip: Some(Ipv4Addr::new(198, 51, 100, 23)),
                        allowed: false,
                        problem: Some("the function left from 198.51.100.23, which is not one of the allowed IPs".into()),
                    }),
                }],
            },
            StackVerdicts {
                stack: None,
                region: "us-east-1".into(),
                allowed_from: AllowedFrom::Nats,
                allowed: vec![ip(50)],
                functions: vec![FunctionVerdict {
                    function: "hand-made".into(),
                    vpc_id: Some("vpc-0f1".into()),
                    passed: true,
                    findings: Vec::new(),
                    probe: Some(Probe {
                        ip: Some(ip(50)),
                        allowed: true,
                        problem: None,
                    }),
                }],
            },
        ],
    };
    insta::assert_snapshot!("verify_text", plain(&report));
    insta::assert_snapshot!("verify_json", json(&report));
}

#[test]
fn unlock() {
    let report = UnlockReport {
        format_version: FormatVersion,
        stacks: vec![
            StackUnlocked {
                stack: "default".into(),
                region: "us-east-1".into(),
                parameter: "/fixedip/default/lease".into(),
                removed: Some(RemovedLease {
                    holder: "ci-runner:4242:x7".into(),
                    command: "deploy".into(),
                    started: 1_800_000_000,
                    expires: 1_800_000_600,
                    described: "deploy by ci-runner:4242:x7 since 2027-01-15 08:00:00 UTC, expires 2027-01-15 08:10:00 UTC".into(),
                }),
            },
            StackUnlocked {
                stack: "billing".into(),
                region: "eu-west-1".into(),
                parameter: "/fixedip/billing/lease".into(),
                removed: None,
            },
        ],
    };
    insta::assert_snapshot!("unlock_text", plain(&report));
    insta::assert_snapshot!("unlock_json", json(&report));
}

/// Each running NAT instance says whether it forwards; one that does not quotes its console.
#[test]
fn status_shows_each_nat_instance_s_readiness() {
    use fixedip_core::nat_boot::Readiness;
    let mut stack = status_of(Mode::Instance {
        nat_instances: 2,
        azs: 2,
    });
    for (slot, readiness) in [
        (0, Readiness::Ready),
        (
            1,
            Readiness::Failed(vec![
                "fixedip-nat: FAILED: nftables could not be installed".into()
            ]),
        ),
    ] {
        let mut instance = super::status::NatInstance {
            id: format!("i-{slot}"),
            slot,
            state: "running".into(),
            instance_type: "t4g.nano".into(),
            readiness: None,
            console: None,
            group: (slot == 1).then(|| "fixedip-default-nat-1".into()),
        };
        instance.set_readiness(&readiness);
        stack.nat_instances.push(instance);
    }
    let text = plain(&stack);
    assert!(
        text.contains("NAT instance i-0 (t4g.nano) running, ready\n"),
        "{text}"
    );
    assert!(
        text.contains("NAT instance i-1 (t4g.nano) running in group fixedip-default-nat-1, FAILED: fixedip-nat: FAILED: nftables could not be installed"),
        "{text}"
    );
    let json = serde_json::to_value(&stack).unwrap();
    assert_eq!(json["nat_instances"][1]["readiness"], "FAILED");
    assert_eq!(json["nat_instances"][1]["group"], "fixedip-default-nat-1");
    assert!(json["nat_instances"][0].get("group").is_none());
}

/// An AZ whose NAT instance is stopped or gone says so, and what the next deploy does about it.
#[test]
fn status_shows_what_brings_a_cut_off_az_back() {
    let mut stack = status_of(Mode::Instance {
        nat_instances: 2,
        azs: 2,
    });
    stack.nat_recovery = vec![super::status::NatRecovery {
        slot: 1,
        instance: "i-1".into(),
        cause: "gone".into(),
        next_deploy: "launches a replacement".into(),
    }];
    let text = plain(&stack);
    assert!(
        text.contains("NAT instance i-1 gone: this AZ has no egress until the next deploy, which launches a replacement\n"),
        "{text}"
    );
    let json = serde_json::to_value(&stack).unwrap();
    assert_eq!(json["nat_recovery"][0]["cause"], "gone");
    // None: nothing in the document.
    stack.nat_recovery.clear();
    assert!(serde_json::to_value(&stack)
        .unwrap()
        .get("nat_recovery")
        .is_none());
}
