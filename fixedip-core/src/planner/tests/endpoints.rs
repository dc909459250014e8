//! The modes `egress = [...]` and `endpoints = [...]`, planned with plain values and carried out on
//! the simulated account (which refuses what AWS refuses: a subnet deleted with an endpoint in it, a
//! route table deleted with a gateway endpoint's route, a group deleted while another refers to it).

use super::simulate::{self, apply_in_order, check_well_formed, deployed, destroyed, empty, spec};
use super::*;
use crate::cost;
use crate::observed::{ObservedEndpoint, RulePeer, RuleProtocol, SecurityGroupRule};
use crate::plan::{Action, Status};
use crate::requirements::{EgressRule, Endpoint, EndpointKind};

fn with_modes(azs: u8, endpoints: &[&str], egress: &[&str]) -> StackSpec {
    let mut spec = spec(azs, &["f"]);
    spec.modes.endpoints = endpoints
        .iter()
        .map(|e| Endpoint::parse(e).unwrap())
        .collect();
    spec.modes.egress = egress
        .iter()
        .map(|e| EgressRule::parse(e).unwrap())
        .collect();
    spec
}

fn planned(spec: &StackSpec, observed: &ObservedState) -> Plan {
    let plan = plan(spec, observed).unwrap();
    check_well_formed(&plan);
    plan
}

fn tcp(cidr: &str, from: u16, to: u16) -> SecurityGroupRule {
    SecurityGroupRule {
        protocol: RuleProtocol::Tcp,
        ports: Some((from, to)),
        peer: RulePeer::Ipv4(cidr.parse().unwrap()),
    }
}

fn egress_of(account: &ObservedState) -> Vec<SecurityGroupRule> {
    let mut rules = account.security_group.as_ref().unwrap().egress.clone();
    rules.sort();
    rules
}

fn count(plan: &Plan, kind: fn(&Action) -> bool) -> usize {
    plan.steps.iter().filter(|s| kind(&s.action)).count()
}

#[test]
fn the_default_keeps_the_rule_aws_gives_and_makes_no_egress_call() {
    let account = deployed(&spec(2, &["f"]), &empty());
    assert_eq!(egress_of(&account), [SecurityGroupRule::ALL_OUT]);
    assert!(planned(&spec(2, &["f"]), &account).is_noop());
}

#[test]
fn restricted_egress_is_exactly_the_list_from_the_first_deploy() {
    let spec = with_modes(
        2,
        &[],
        &[
            "203.0.113.10/32:22",
            "198.51.100.0/24:5432-5433",
            "10.0.0.2/32:53/udp",
        ],
    );
    let plan = planned(&spec, &empty());
    // Authorized first, then the default rule revoked; the function joins the group after both.
    let authorize = plan
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::AuthorizeEgress { .. }))
        .unwrap();
    let revoke = plan
        .steps
        .iter()
        .find(|s| matches!(&s.action, Action::RevokeEgress { rules, .. } if rules == &[SecurityGroupRule::ALL_OUT]))
        .unwrap();
    assert!(revoke.after.contains(&authorize.id));
    let create = plan
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::CreateFunction { .. }))
        .unwrap();
    assert!(create.after.contains(&revoke.id) && create.after.contains(&authorize.id));

    let account = simulate::apply(&plan, &empty());
    let udp = SecurityGroupRule {
        protocol: RuleProtocol::Udp,
        ports: Some((53, 53)),
        peer: RulePeer::Ipv4("10.0.0.2/32".parse().unwrap()),
    };
    let mut wanted = vec![
        tcp("203.0.113.10/32", 22, 22),
        tcp("198.51.100.0/24", 5432, 5433),
        udp,
    ];
    wanted.sort();
    assert_eq!(egress_of(&account), wanted);
    assert!(planned(&spec, &account).is_noop(), "a no-op redeploy");
}

#[test]
fn changing_the_list_on_a_live_stack_converges_and_back_to_the_default() {
    let first = with_modes(1, &[], &["0.0.0.0/0:443", "203.0.113.10/32:22"]);
    let account = deployed(&first, &empty());

    let second = with_modes(1, &[], &["0.0.0.0/0:443", "198.51.100.0/24:5432"]);
    let plan = planned(&second, &account);
    let authorized: Vec<&Action> = plan.steps.iter().map(|s| &s.action).collect();
    assert_eq!(
        authorized
            .iter()
            .filter(|a| matches!(a, Action::AuthorizeEgress { rules, .. } if rules == &[tcp("198.51.100.0/24", 5432, 5432)]))
            .count(),
        1,
        "{plan:#?}"
    );
    assert_eq!(
        count(
            &plan,
            |a| matches!(a, Action::RevokeEgress { rules, .. } if rules == &[tcp("203.0.113.10/32", 22, 22)])
        ),
        1
    );
    assert_eq!(
        plan.network.security_group,
        Status::Change(account.security_group.as_ref().unwrap().id.clone())
    );
    let account = simulate::apply(&plan, &account);
    assert!(planned(&second, &account).is_noop());

    // Back to the default: everything out again, the list revoked.
    let default = spec(1, &["f"]);
    let account = deployed(&default, &account);
    assert_eq!(egress_of(&account), [SecurityGroupRule::ALL_OUT]);
    assert!(planned(&default, &account).is_noop());
}

#[test]
fn a_rule_added_by_hand_is_taken_away() {
    let spec = with_modes(1, &[], &["0.0.0.0/0:443"]);
    let mut account = deployed(&spec, &empty());
    account
        .security_group
        .as_mut()
        .unwrap()
        .egress
        .push(SecurityGroupRule::ALL_OUT);
    let plan = planned(&spec, &account);
    assert_eq!(plan.steps.len(), 1, "{plan:#?}");
    assert!(
        matches!(&plan.steps[0].action, Action::RevokeEgress { rules, .. } if rules == &[SecurityGroupRule::ALL_OUT])
    );
}

#[test]
fn one_gateway_endpoint_per_service_serves_every_private_route_table() {
    let spec = with_modes(2, &["s3", "dynamodb"], &[]);
    let plan = planned(&spec, &empty());
    assert_eq!(
        count(&plan, |a| matches!(a, Action::CreateGatewayEndpoint { .. })),
        2
    );
    // Nothing for the interface side.
    assert_eq!(
        count(&plan, |a| matches!(
            a,
            Action::CreateEndpointSecurityGroup { .. }
        )),
        0
    );
    assert_eq!(plan.network.endpoint_security_group, None);
    let account = simulate::apply(&plan, &empty());
    assert_eq!(account.endpoints.len(), 2);
    let mut private: Vec<&str> = account
        .route_tables
        .iter()
        .filter(|t| t.tier == Tier::Private)
        .map(|t| t.id.as_str())
        .collect();
    private.sort();
    for endpoint in &account.endpoints {
        let mut tables: Vec<&str> = endpoint
            .route_table_ids
            .iter()
            .map(String::as_str)
            .collect();
        tables.sort();
        assert_eq!(tables, private);
    }
    assert!(planned(&spec, &account).is_noop());

    // Dropping one service deletes its endpoint only.
    let fewer = with_modes(2, &["s3"], &[]);
    let plan = planned(&fewer, &account);
    assert_eq!(plan.steps.len(), 1, "{plan:#?}");
    assert!(plan
        .steps
        .iter()
        .all(|s| matches!(s.action, Action::DeleteEndpoint { .. })));
    let account = simulate::apply(&plan, &account);
    assert!(account
        .endpoints
        .iter()
        .all(|e| e.service == Endpoint::parse("s3").unwrap()));
    assert!(planned(&fewer, &account).is_noop());
}

#[test]
fn a_stack_with_one_gateway_endpoint_per_slot_keeps_one_per_service() {
    // As fixedip made them before: one endpoint per service and slot, tagged with the slot.
    let spec = with_modes(2, &["s3"], &[]);
    let mut account = deployed(&spec, &empty());
    let shared = account.endpoints[0].clone();
    let tables = shared.route_table_ids.clone();
    account.endpoints = tables
        .iter()
        .enumerate()
        .map(|(slot, table)| ObservedEndpoint {
            id: format!("vpce-old{slot}"),
            slot: Some(slot as Slot),
            route_table_ids: vec![table.clone()],
            ..shared.clone()
        })
        .collect();
    let plan = planned(&spec, &account);
    // The first is kept; the second deleted, and only then its table added to the first (AWS
    // refuses a second route to the prefix list in a table).
    let delete = plan
        .steps
        .iter()
        .find(|s| matches!(&s.action, Action::DeleteEndpoint { endpoint_id } if endpoint_id == "vpce-old1"))
        .expect("the extra endpoint is deleted");
    let modify = plan
        .steps
        .iter()
        .find(|s| matches!(&s.action, Action::ModifyGatewayEndpoint { endpoint_id, .. } if endpoint_id == "vpce-old0"))
        .expect("the kept endpoint takes the table");
    assert!(modify.after.contains(&delete.id), "{plan:#?}");
    assert_eq!(plan.steps.len(), 2, "{plan:#?}");
    let account = simulate::apply(&plan, &account);
    assert_eq!(account.endpoints.len(), 1);
    assert_eq!(account.endpoints[0].route_table_ids.len(), 2);
    assert!(planned(&spec, &account).is_noop());
}

#[test]
fn interface_endpoints_get_their_group_private_dns_and_every_private_subnet() {
    let spec = with_modes(2, &["logs", "secretsmanager"], &[]);
    let plan = planned(&spec, &empty());
    let create: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::CreateInterfaceEndpoint { .. }))
        .collect();
    assert_eq!(create.len(), 2);
    let dns = plan
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::EnableVpcDns { .. }))
        .unwrap();
    for step in &create {
        assert!(
            step.after.contains(&dns.id),
            "private DNS after the VPC's DNS"
        );
        let Action::CreateInterfaceEndpoint { subnets, .. } = &step.action else {
            unreachable!()
        };
        assert_eq!(subnets.len(), 2);
    }
    assert_eq!(
        count(&plan, |a| matches!(a, Action::AdmitHttpsFrom { .. })),
        1
    );
    // With the default egress the functions reach the endpoints already.
    assert_eq!(
        count(&plan, |a| matches!(a, Action::AuthorizeEgress { .. })),
        0
    );
    let account = simulate::apply(&plan, &empty());
    let function_group = account.security_group.as_ref().unwrap().id.clone();
    let group = account.endpoint_security_group.as_ref().unwrap();
    assert_eq!(
        group.ingress,
        [SecurityGroupRule {
            protocol: RuleProtocol::Tcp,
            ports: Some((443, 443)),
            peer: RulePeer::SecurityGroup(function_group),
        }]
    );
    assert!(planned(&spec, &account).is_noop());

    // Dropped from the list: the endpoints go, then their group.
    let none = spec_without_endpoints();
    let plan = planned(&none, &account);
    assert_eq!(
        count(&plan, |a| matches!(a, Action::DeleteEndpoint { .. })),
        2
    );
    assert_eq!(
        plan.network.endpoint_security_group,
        Some(Status::Delete(group.id.clone()))
    );
    let account = simulate::apply(&plan, &account);
    assert!(account.endpoints.is_empty() && account.endpoint_security_group.is_none());
    assert!(planned(&none, &account).is_noop());
}

fn spec_without_endpoints() -> StackSpec {
    spec(2, &["f"])
}

#[test]
fn restricted_egress_with_interface_endpoints_lets_https_into_the_vpc() {
    let spec = with_modes(1, &["sts"], &["203.0.113.10/32:22"]);
    let account = deployed(&spec, &empty());
    let mut wanted = vec![tcp("203.0.113.10/32", 22, 22), tcp("10.0.0.0/16", 443, 443)];
    wanted.sort();
    assert_eq!(egress_of(&account), wanted);
    // A rule that covers the VPC on 443 already needs no other.
    let covered = with_modes(1, &["sts"], &["0.0.0.0/0:443"]);
    assert_eq!(
        desired_egress(&covered.modes, covered.vpc_cidr, &BTreeMap::new()),
        [tcp("0.0.0.0/0", 443, 443)]
    );
}

fn to_prefix_list(id: &str) -> SecurityGroupRule {
    SecurityGroupRule {
        protocol: RuleProtocol::Tcp,
        ports: Some((443, 443)),
        peer: RulePeer::PrefixList(id.to_owned()),
    }
}

#[test]
fn restricted_egress_with_gateway_endpoints_lets_https_out_to_their_prefix_lists() {
    // The security group filters gateway-endpoint traffic: without a rule to S3's prefix list, a
    // restricted list that does not cover S3's ranges blocks S3 through its own endpoint.
    let spec = with_modes(2, &["s3", "dynamodb"], &["203.0.113.10/32:22"]);
    let account = deployed(&spec, &empty());
    let mut wanted = vec![
        tcp("203.0.113.10/32", 22, 22),
        to_prefix_list("pl-63a5400a"),
        to_prefix_list("pl-02cd2c6b"),
    ];
    wanted.sort();
    assert_eq!(egress_of(&account), wanted);
    assert!(planned(&spec, &account).is_noop());

    // Dropping DynamoDB from the list takes its rule away with its endpoints.
    let fewer = with_modes(2, &["s3"], &["203.0.113.10/32:22"]);
    let account = deployed(&fewer, &account);
    let mut wanted = vec![
        tcp("203.0.113.10/32", 22, 22),
        to_prefix_list("pl-63a5400a"),
    ];
    wanted.sort();
    assert_eq!(egress_of(&account), wanted);

    // Unrestricted egress lets everything out already: no prefix-list rule.
    let open = with_modes(2, &["s3"], &[]);
    let account = deployed(&open, &account);
    assert_eq!(egress_of(&account), [SecurityGroupRule::ALL_OUT]);
}

#[test]
fn a_plan_made_without_the_prefix_list_ids_says_the_rule_comes_at_deploy() {
    let spec = with_modes(1, &["s3"], &["0.0.0.0/0:443"]);
    let mut offline = empty();
    offline.prefix_lists.clear();
    let plan = planned(&spec, &offline);
    assert!(
        plan.notes.iter().any(|n| n.contains("prefix list of s3")),
        "{:?}",
        plan.notes
    );
    assert!(plan.steps.iter().all(|s| !matches!(
        &s.action,
        Action::AuthorizeEgress { rules, .. }
            if rules.iter().any(|r| matches!(r.peer, RulePeer::PrefixList(_)))
    )));
}

#[test]
fn an_az_added_and_removed_moves_the_endpoints_with_it() {
    let two = with_modes(2, &["s3", "logs"], &[]);
    let account = deployed(&two, &empty());
    let three = with_modes(3, &["s3", "logs"], &[]);
    let account = simulate::deployed_with(&three, &account, &simulate::ALLOW_NEW_IPS);
    let interface = |account: &ObservedState| {
        account
            .endpoints
            .iter()
            .find(|e| e.kind == EndpointKind::Interface)
            .unwrap()
            .subnet_ids
            .len()
    };
    assert_eq!(interface(&account), 3);
    assert_eq!(
        account.endpoints.len(),
        2,
        "one gateway endpoint (on three route tables) and one interface endpoint"
    );
    assert!(planned(&three, &account).is_noop());

    // Back to two: the third slot's route table leaves the gateway endpoint and its subnet the
    // interface endpoint before its route table and subnet go (the simulated account refuses
    // otherwise), in any order the executor may pick.
    let plan = planned(&two, &account);
    for seed in 0..20 {
        let after = apply_in_order(&plan, &account, Some(seed), |_| true);
        assert_eq!(interface(&after), 2);
        assert_eq!(after.endpoints.len(), 2);
        assert!(planned(&two, &after).is_noop());
    }
}

#[test]
fn destroy_takes_every_endpoint_and_group_down_in_an_order_aws_accepts() {
    let spec = with_modes(2, &["s3", "dynamodb", "logs"], &["0.0.0.0/0:443"]);
    let account = deployed(&spec, &empty());
    let plan = destroy_plan(&spec, &account);
    assert_eq!(
        count(&plan, |a| matches!(a, Action::DeleteEndpoint { .. })),
        3
    );
    for seed in 0..20 {
        // The simulated DeleteVpc refuses while anything is left.
        let after = apply_in_order(&plan, &account, Some(seed), |_| true);
        assert!(after.vpc.is_none() && after.endpoints.is_empty());
        assert!(after.endpoint_security_group.is_none());
    }
    let gone = destroyed(&spec, &account, &PlanOptions::default());
    assert!(destroy_plan(&spec, &gone).steps.iter().all(|s| !matches!(
        s.action,
        Action::DeleteEndpoint { .. } | Action::DeleteSecurityGroup { .. }
    )));
}

fn destroy_plan(spec: &StackSpec, account: &ObservedState) -> Plan {
    let plan = plan_destroy(spec, account, &PlanOptions::default()).unwrap();
    check_well_formed(&plan);
    plan
}

#[test]
fn plan_prices_interface_endpoints_per_az_and_gateway_endpoints_at_nothing() {
    // us-east-1: 2 NATs × $0.045 × 730 = $65.70; 2 IPs × $0.005 × 730 = $7.30;
    // 2 interface endpoints × 2 AZs × $0.01 × 730 = $29.20; 2 gateway endpoints $0.
    let spec = with_modes(2, &["s3", "dynamodb", "logs", "secretsmanager"], &[]);
    let cost = cost::of_plan(&planned(&spec, &empty())).unwrap();
    let lines: Vec<(&str, u32, String)> = cost
        .lines
        .iter()
        .map(|l| (l.item, l.quantity, l.monthly.to_string()))
        .collect();
    assert_eq!(
        lines,
        [
            ("NAT gateway", 2, "$65.70".to_owned()),
            ("public IPv4 address", 2, "$7.30".to_owned()),
            ("interface endpoint-AZ", 4, "$29.20".to_owned()),
            (cost::GATEWAY_ENDPOINT_ITEM, 2, "$0.00".to_owned()),
        ]
    );
    assert_eq!(cost.fixed_total.to_string(), "$102.20");
    assert_eq!(cost.endpoint_per_gb, Some(cost::Usd::from_micros(10_000)));

    // ap-northeast-1: $90.52 + $7.30 + 4 × $0.014 × 730 = $40.88: $138.70.
    let mut tokyo = spec.clone();
    tokyo.region = "ap-northeast-1".to_owned();
    let account = ObservedState::assumed_offline("ap-northeast-1", &[]);
    let cost = cost::of_plan(&planned(&tokyo, &account)).unwrap();
    assert_eq!(cost.fixed_total.to_string(), "$138.70");
    assert_eq!(cost.lines[2].monthly.to_string(), "$40.88");

    // Gateway endpoints alone add nothing to the bill.
    let gateway_only = with_modes(2, &["s3"], &[]);
    let cost = cost::of_plan(&planned(&gateway_only, &empty())).unwrap();
    assert_eq!(cost.fixed_total.to_string(), "$73.00");
    assert_eq!(cost.endpoint_per_gb, None);

    // A region without endpoint prices says so rather than guessing.
    let mut elsewhere = spec.clone();
    elsewhere.region = "eu-west-1".to_owned();
    let account = ObservedState::assumed_offline("eu-west-1", &[]);
    let err = cost::of_plan(&planned(&elsewhere, &account)).unwrap_err();
    assert!(err.to_string().contains("privatelink/pricing"), "{err}");
}

#[test]
fn a_duplicate_endpoint_left_by_a_lost_answer_is_deleted() {
    let spec = with_modes(1, &["logs"], &[]);
    let mut account = deployed(&spec, &empty());
    let mut twin = account.endpoints[0].clone();
    twin.id = "vpce-zzzz".to_owned();
    account.endpoints.push(twin);
    let plan = planned(&spec, &account);
    assert_eq!(plan.steps.len(), 1, "{plan:#?}");
    assert!(
        matches!(&plan.steps[0].action, Action::DeleteEndpoint { endpoint_id } if endpoint_id == "vpce-zzzz")
    );
}

#[test]
fn a_failed_endpoint_is_deleted_and_its_service_gets_a_new_one_of_the_next_generation() {
    // VpcEndpoint's State can read `failed`: such an endpoint serves nothing. AWS answers its
    // client token with it again, so the new one's token is of the next generation.
    let spec = with_modes(2, &["s3", "logs"], &[]);
    let mut account = deployed(&spec, &empty());
    for endpoint in &mut account.endpoints {
        endpoint.dead = true;
    }
    account.retired.endpoints = account.endpoints.iter().map(|e| (e.service, 1)).collect();
    let plan = planned(&spec, &account);
    for old in &account.endpoints {
        let delete = plan
            .steps
            .iter()
            .find(|s| matches!(&s.action, Action::DeleteEndpoint { endpoint_id } if *endpoint_id == old.id))
            .expect("the failed endpoint is deleted");
        let create = plan
            .steps
            .iter()
            .find(|s| match &s.action {
                Action::CreateGatewayEndpoint {
                    endpoint,
                    generation,
                    ..
                }
                | Action::CreateInterfaceEndpoint {
                    endpoint,
                    generation,
                    ..
                } => *endpoint == old.service && *generation == 1,
                _ => false,
            })
            .expect("a new endpoint of the service, of the next generation");
        assert!(
            create.after.contains(&delete.id),
            "made once the failed one is gone (an interface endpoint's private DNS name is the service's): {plan:#?}"
        );
    }
    let account = simulate::apply(&plan, &account);
    assert_eq!(account.endpoints.len(), 2);
    assert!(account.endpoints.iter().all(|e| !e.dead));
    assert!(planned(&spec, &account).is_noop());
}
