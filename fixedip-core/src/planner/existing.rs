//! Planning a stack on a network the user already runs (`vpc = "vpc-..."`): no network step at
//! all, only the stack's own security group in that VPC, its role and its functions, attached to
//! the subnets [`crate::existing`] qualifies.
//!
//! The subnets: those named by `subnets` (each must qualify, else the plan is refused naming the
//! subnet and why), else every subnet of the VPC that qualifies (refused, with each subnet's
//! reasons, when none does). Modes that describe a network fixedip builds (`nat`, `nats`,
//! `endpoints`) are refused, and so is `egress` for now (it would shape the stack's security
//! group, which the mode that builds it has not landed for this path). Every refusal comes before
//! any step, so nothing is changed.

use crate::existing::{self, QualifiedSubnet, RefusedSubnet};
use crate::observed::ObservedState;
use crate::plan::{
    ExistingAttachment, ExistingNetwork, NetworkModes, NetworkView, Plan, Ref, StackSpec, Status,
};
use crate::requirements::NatMode;

use super::{Attachment, PlanError, Planned, Planner};

/// The plan for a stack on an existing network: security group, role and functions only.
pub(super) fn plan(
    spec: &StackSpec,
    existing: &ExistingNetwork,
    observed: &ObservedState,
) -> Result<Plan, PlanError> {
    refuse_network_modes(&spec.modes, &existing.vpc)?;
    if let Some(own) = &observed.vpc {
        return Err(PlanError::ExistingVpcOverOwnNetwork {
            stack: spec.stack.clone(),
            own_vpc: own.id.clone(),
            vpc: existing.vpc.clone(),
        });
    }
    let found = observed
        .existing_network
        .as_ref()
        .filter(|n| n.network.vpc_id == existing.vpc)
        .ok_or_else(|| PlanError::ExistingVpcNotFound {
            vpc: existing.vpc.clone(),
            region: spec.region.clone(),
        })?;
    let subnets = choose_subnets(existing, &found.network)?;

    let mut planner = Planner::default();
    let vpc = Planned::kept(&existing.vpc);
    let security_group = planner.security_group(observed, &vpc);
    let role = planner.role(spec, observed);
    for subnet in &subnets {
        for warning in &subnet.warnings {
            planner.notes.push(format!(
                "{} qualifies, with a warning: {}",
                subnet.id, warning.problem
            ));
        }
    }
    let attachment = Attachment {
        private_subnets: subnets
            .iter()
            .map(|s| Ref::Existing(s.id.clone()))
            .collect(),
        surplus_private_subnets: Vec::new(),
        security_group: security_group.reference.clone(),
        // A new group lets everything out, as AWS creates it (`egress` is refused in this mode).
        security_group_ready: Vec::new(),
        // The user's routes are in place already; fixedip adds none.
        routes_ready: Vec::new(),
    };
    let functions = spec
        .functions
        .iter()
        .map(|function| {
            let status = planner.function(spec, function, observed, &attachment, role.as_ref());
            (function.name.clone(), status)
        })
        .collect();

    let ips = existing::ips(&subnets);
    let Planner { steps, notes, .. } = planner;
    Ok(Plan {
        stack: spec.stack.clone(),
        region: spec.region.clone(),
        network: NetworkView {
            vpc: (found.cidr, Status::Keep(existing.vpc.clone())),
            // The user's, not the stack's: nothing of the network is planned.
            internet_gateway: Status::Absent,
            public_route_table: Status::Absent,
            security_group: security_group.status,
            role: role.map(|role| role.planned.status),
            azs: Vec::new(),
            functions,
            retained_addresses: Vec::new(),
            surplus_slots: Vec::new(),
            removed_slots: Vec::new(),
            released_addresses: Vec::new(),
            nat_instance_type: None,
            nat_self_healing: false,
            nat_security_group: None,
            endpoints: Vec::new(),
            endpoint_security_group: None,
            existing: Some(ExistingAttachment {
                vpc_id: existing.vpc.clone(),
                subnets,
                ips,
            }),
        },
        steps,
        notes,
        pending_new_ips: Vec::new(),
    })
}

fn refuse_network_modes(modes: &NetworkModes, vpc: &str) -> Result<(), PlanError> {
    let refuse = |mode: String, what: &'static str| {
        Err(PlanError::ModeWithExistingNetwork {
            mode,
            what,
            vpc: vpc.to_owned(),
        })
    };
    if modes.nat != NatMode::Gateway {
        return refuse(
            format!("`nat = \"{}\"`", modes.nat),
            "the NATs of a network fixedip builds",
        );
    }
    if modes.nats.is_some() {
        return refuse("`nats`".to_owned(), "the NATs of a network fixedip builds");
    }
    if !modes.endpoints.is_empty() {
        return refuse(
            "`endpoints`".to_owned(),
            "VPC endpoints in a network fixedip builds",
        );
    }
    if !modes.egress.is_empty() {
        return refuse(
            "`egress`".to_owned(),
            "egress rules, which this version applies only in a network fixedip builds",
        );
    }
    Ok(())
}

/// The named subnets, each qualifying, or every qualifying subnet; refused before any step.
fn choose_subnets(
    existing: &ExistingNetwork,
    network: &crate::verify::EgressNetwork,
) -> Result<Vec<QualifiedSubnet>, PlanError> {
    if existing.subnets.is_empty() {
        let qualification = existing::qualify(network);
        if qualification.qualified.is_empty() {
            return Err(PlanError::NoQualifyingSubnet {
                vpc: existing.vpc.clone(),
                refused: qualification.refused,
            });
        }
        return Ok(qualification.qualified);
    }
    let mut chosen = Vec::new();
    let mut refused: Vec<RefusedSubnet> = Vec::new();
    for id in &existing.subnets {
        match existing::judge(network, id) {
            Ok(qualified) => chosen.push(qualified),
            Err(no) => refused.push(no),
        }
    }
    if !refused.is_empty() {
        let qualifying = existing::qualify(network)
            .qualified
            .into_iter()
            .map(|s| s.id)
            .collect();
        return Err(PlanError::SubnetsNotQualified {
            vpc: existing.vpc.clone(),
            refused,
            qualifying,
        });
    }
    chosen.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::existing::tests::network;
    use crate::observed::{ObservedExistingNetwork, ObservedVpc};
    use crate::plan::Action;
    use crate::planner::simulate::{self, check_well_formed};
    use crate::planner::{plan as plan_stack, plan_destroy, PlanOptions};

    fn spec(subnets: &[&str]) -> StackSpec {
        let mut spec = simulate::spec(2, &["egress"]);
        spec.modes.existing = Some(ExistingNetwork {
            vpc: "vpc-1".into(),
            subnets: subnets.iter().map(|s| s.to_string()).collect(),
        });
        spec
    }

    fn account() -> ObservedState {
        ObservedState {
            existing_network: Some(ObservedExistingNetwork {
                cidr: "10.0.0.0/16".parse().unwrap(),
                network: network(),
            }),
            ..simulate::empty()
        }
    }

    /// A step that would touch the network: anything but the security group, role and function.
    fn touches_the_network(action: &Action) -> bool {
        !matches!(
            action,
            Action::CreateSecurityGroup { .. }
                | Action::CreateRole { .. }
                | Action::AttachRolePolicy { .. }
                | Action::CreateFunction { .. }
                | Action::AwaitFunctionActive { .. }
                | Action::UpdateFunctionConfiguration { .. }
                | Action::UpdateFunctionCode { .. }
                | Action::TagFunction { .. }
        )
    }

    #[test]
    fn attaches_to_the_qualifying_subnets_with_no_network_step() {
        let plan = plan_stack(&spec(&[]), &account()).unwrap();
        check_well_formed(&plan);
        assert!(
            !plan.steps.iter().any(|s| touches_the_network(&s.action)),
            "{:#?}",
            plan.steps
        );
        let created = plan.steps.iter().find_map(|s| match &s.action {
            Action::CreateFunction { subnets, .. } => Some(subnets.clone()),
            _ => None,
        });
        assert_eq!(
            created,
            Some(vec![Ref::Existing("subnet-priv".into())]),
            "only the private subnet behind the NAT"
        );
        let group_in_user_vpc = plan.steps.iter().any(|s| {
            s.action
                == Action::CreateSecurityGroup {
                    vpc: Ref::Existing("vpc-1".into()),
                }
        });
        assert!(group_in_user_vpc);
        let attachment = plan.network.existing.as_ref().unwrap();
        assert_eq!(
            attachment.ips,
            ["203.0.113.5".parse::<std::net::Ipv4Addr>().unwrap()]
        );
        assert!(plan.pending_new_ips.is_empty());
    }

    #[test]
    fn a_second_deploy_plans_nothing() {
        let spec = spec(&[]);
        let after = simulate::deployed(&spec, &account());
        let again = plan_stack(&spec, &after).unwrap();
        assert!(again.is_noop(), "{:#?}", again.steps);
    }

    #[test]
    fn named_subnets_must_each_qualify() {
        let error = plan_stack(&spec(&["subnet-priv", "subnet-pub"]), &account()).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("subnet-pub (us-east-1a): routes 0.0.0.0/0 to an internet gateway"),
            "{text}"
        );
        assert!(text.contains("(in vpc-1: subnet-priv)"), "{text}");
        assert!(!text.contains("subnet-priv (us-east-1a)"), "{text}");

        let plan = plan_stack(&spec(&["subnet-priv"]), &account()).unwrap();
        assert_eq!(plan.network.existing.unwrap().subnets.len(), 1);
    }

    #[test]
    fn no_qualifying_subnet_is_refused_with_every_reason() {
        let mut account = account();
        let network = &mut account.existing_network.as_mut().unwrap().network;
        network.nat_gateways[0].addresses.clear();
        let error = plan_stack(&spec(&[]), &account).unwrap_err();
        let PlanError::NoQualifyingSubnet { refused, .. } = &error else {
            panic!("{error}");
        };
        assert_eq!(refused.len(), 5);
        let text = error.to_string();
        for expected in [
            "subnet-priv (us-east-1a): NAT nat-1 has no Elastic IP",
            "subnet-pub (us-east-1a): routes 0.0.0.0/0 to an internet gateway: a public subnet",
            "subnet-none (us-east-1b): no route out",
            "subnet-inst (us-east-1a): NAT i-1 has no Elastic IP",
        ] {
            assert!(text.contains(expected), "{expected}\n{text}");
        }
    }

    #[test]
    fn a_missing_vpc_or_a_stack_with_its_own_network_is_refused() {
        let error = plan_stack(&spec(&[]), &simulate::empty()).unwrap_err();
        assert!(
            matches!(error, PlanError::ExistingVpcNotFound { .. }),
            "{error}"
        );
        let account = ObservedState {
            vpc: Some(ObservedVpc {
                id: "vpc-own".into(),
                cidr: "10.0.0.0/16".parse().unwrap(),
                dns_support: true,
                dns_hostnames: true,
            }),
            ..account()
        };
        let error = plan_stack(&spec(&[]), &account).unwrap_err();
        assert!(error.to_string().contains("destroy"), "{error}");
    }

    #[test]
    fn network_modes_are_refused() {
        let mut with_nats = spec(&[]);
        with_nats.modes.nats = Some(1);
        let error = plan_stack(&with_nats, &account()).unwrap_err();
        assert!(
            error.to_string().starts_with("`nats` in #[fixed_egress]"),
            "{error}"
        );
        let mut isolated = spec(&[]);
        isolated.modes.nat = NatMode::None;
        assert!(matches!(
            plan_stack(&isolated, &account()),
            Err(PlanError::ModeWithExistingNetwork { .. })
        ));
    }

    #[test]
    fn destroy_removes_only_the_security_group_role_and_attachment() {
        let spec = spec(&[]);
        let after = simulate::deployed(&spec, &account());
        let options = PlanOptions {
            delete_functions: true,
            ..PlanOptions::default()
        };
        let plan = plan_destroy(&spec, &after, &options).unwrap();
        check_well_formed(&plan);
        for step in &plan.steps {
            assert!(
                matches!(
                    step.action,
                    Action::DeleteFunction { .. }
                        | Action::ClearLambdaInterfaces { .. }
                        | Action::DeleteSecurityGroup { .. }
                        | Action::DeleteRole { .. }
                ),
                "{:?}",
                step.action
            );
        }
        assert!(plan
            .steps
            .iter()
            .any(|s| matches!(s.action, Action::DeleteSecurityGroup { .. })));
    }
}
