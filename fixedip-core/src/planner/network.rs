//! The stack-wide parts of the network: the VPC, its internet gateway, the functions' security
//! group, the stack's execution role, and route tables with their default route.

use ipnet::Ipv4Net;

use super::layout::ANYWHERE;
use super::nats::NatLayout;
use super::steps::{Planned, Planner};
use super::{egress, PlanError};
use crate::observed::{ObservedRoute, ObservedRouteTable, ObservedState, RouteTarget, Slot, Tier};
use crate::plan::{Action, Ref, RouteVia, StackSpec, Status, StepId};
use crate::requirements::NatMode;
use crate::tags;

/// The managed policies the stack's own execution role gets: logs, and the network interfaces a
/// function in a VPC needs.
pub const EXECUTION_ROLE_POLICIES: [&str; 2] = [
    "AWSLambdaBasicExecutionRole",
    "AWSLambdaVPCAccessExecutionRole",
];

/// The AWS partition of a region, for ARNs: `aws`, `aws-cn` or `aws-us-gov`.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The ARNs of [`EXECUTION_ROLE_POLICIES`] in the region's partition.
pub fn execution_role_policy_arns(region: &str) -> [String; 2] {
    let partition = partition(region);
    EXECUTION_ROLE_POLICIES
        .map(|policy| format!("arn:{partition}:iam::aws:policy/service-role/{policy}"))
}

pub(super) struct InternetGateway {
    pub(super) planned: Planned,
    /// The step that attaches it, when one does.
    pub(super) attached: Option<StepId>,
}

pub(super) struct Role {
    pub(super) planned: Planned,
    /// The steps attaching its policies.
    pub(super) ready: Vec<StepId>,
}

pub(super) struct RoutedTable {
    /// The table, for what else goes in it (gateway endpoints).
    pub(super) table: Ref,
    pub(super) status: Status,
    /// The steps that make the table route its subnets: creation, route, associations.
    pub(super) steps: Vec<StepId>,
}

/// The parts every slot of the stack uses.
pub(super) struct Base {
    pub(super) vpc: Planned,
    /// `None` when isolated: no way out at all (one left from another mode is removed once its
    /// NATs are gone).
    pub(super) internet_gateway: Option<InternetGateway>,
    pub(super) security_group: Planned,
    /// The steps that give the security group its egress rules: a function joins it after them.
    pub(super) security_group_ready: Vec<StepId>,
    pub(super) role: Option<Role>,
    /// The NAT instances' security group (`nat = "instance"`).
    pub(super) nat_security_group: Option<Planned>,
    /// The self-healing NAT instances' instance profile (`nat-self-healing`).
    pub(super) nat_profile: Option<Planned>,
}

impl Planner {
    pub(super) fn base(
        &mut self,
        spec: &StackSpec,
        observed: &ObservedState,
        vpc_cidr: Ipv4Net,
        layout: &NatLayout,
    ) -> Result<Base, PlanError> {
        let vpc = self.vpc(vpc_cidr, observed)?;
        let internet_gateway = match layout.isolated() {
            true => None,
            false => Some(self.internet_gateway(observed, &vpc)?),
        };
        let mut security_group = self.security_group(observed, &vpc);
        let desired = egress::desired_egress(&spec.modes, vpc_cidr, &observed.prefix_lists);
        let unknown: Vec<String> = egress::gateway_prefix_lists_needed(&spec.modes)
            .into_iter()
            .filter(|e| !observed.prefix_lists.contains_key(e))
            .map(|e| e.to_string())
            .collect();
        if !unknown.is_empty() {
            self.notes.push(format!(
                "the functions' security group also lets TCP 443 out to the prefix list of {} (its gateway endpoint is filtered by the group); the id is read from the account at deploy",
                unknown.join(" and ")
            ));
        }
        let security_group_ready =
            self.security_group_egress(&mut security_group, observed, &desired);
        let role = self.role(spec, observed);
        let nat_security_group = (spec.modes.nat == NatMode::Instance)
            .then(|| self.nat_security_group(observed, &vpc, vpc_cidr));
        let nat_profile = (spec.modes.nat_groups() && !layout.isolated())
            .then(|| self.nat_profile(spec, observed));
        Ok(Base {
            vpc,
            internet_gateway,
            security_group,
            security_group_ready,
            role,
            nat_security_group,
            nat_profile,
        })
    }

    fn vpc(&mut self, cidr: Ipv4Net, observed: &ObservedState) -> Result<Planned, PlanError> {
        let Some(vpc) = &observed.vpc else {
            let created = self.push(Action::CreateVpc { cidr }, &[]);
            self.push(
                Action::EnableVpcDns {
                    vpc: Ref::Step(created),
                },
                &[],
            );
            return Ok(Planned::created(created));
        };
        if vpc.cidr.trunc() != cidr {
            return Err(PlanError::VpcCidrChanged {
                vpc_id: vpc.id.clone(),
                observed: vpc.cidr,
                wanted: cidr,
            });
        }
        if vpc.dns_support && vpc.dns_hostnames {
            Ok(Planned::kept(&vpc.id))
        } else {
            self.push(
                Action::EnableVpcDns {
                    vpc: Ref::Existing(vpc.id.clone()),
                },
                &[],
            );
            Ok(Planned::changed(&vpc.id))
        }
    }

    pub(super) fn internet_gateway(
        &mut self,
        observed: &ObservedState,
        vpc: &Planned,
    ) -> Result<InternetGateway, PlanError> {
        let (gateway, attached_vpc) = match &observed.internet_gateway {
            Some(gateway) => (Planned::kept(&gateway.id), gateway.attached_vpc.as_deref()),
            None => (
                Planned::created(self.push(Action::CreateInternetGateway, &[])),
                None,
            ),
        };
        match (attached_vpc, &vpc.reference) {
            (Some(attached), Ref::Existing(vpc_id)) if attached == vpc_id => Ok(InternetGateway {
                planned: gateway,
                attached: None,
            }),
            (Some(attached), _) => Err(PlanError::InternetGatewayElsewhere {
                id: observed
                    .internet_gateway
                    .as_ref()
                    .map(|g| g.id.clone())
                    .unwrap_or_default(),
                attached_vpc: attached.to_owned(),
                vpc: vpc.reference.to_string(),
            }),
            (None, _) => {
                let attach = self.push(
                    Action::AttachInternetGateway {
                        internet_gateway: gateway.reference.clone(),
                        vpc: vpc.reference.clone(),
                    },
                    &[],
                );
                let planned = match gateway.status {
                    Status::Keep(id) => Planned::changed(&id),
                    _ => gateway,
                };
                Ok(InternetGateway {
                    planned,
                    attached: Some(attach),
                })
            }
        }
    }

    pub(super) fn security_group(&mut self, observed: &ObservedState, vpc: &Planned) -> Planned {
        match &observed.security_group {
            Some(group) => Planned::kept(&group.id),
            None => Planned::created(self.push(
                Action::CreateSecurityGroup {
                    vpc: vpc.reference.clone(),
                },
                &[],
            )),
        }
    }

    /// The stack's execution role, when some function brings none.
    pub(super) fn role(&mut self, spec: &StackSpec, observed: &ObservedState) -> Option<Role> {
        if spec
            .functions
            .iter()
            .all(|function| function.role.is_some())
        {
            return None;
        }
        let (mut planned, attached) = match &observed.role {
            Some(role) => (
                Planned::kept(&role.arn),
                role.attached_policy_arns.as_slice(),
            ),
            None => {
                let name = tags::role_name(&spec.stack, &spec.region);
                (
                    Planned::created(self.push(Action::CreateRole { name }, &[])),
                    &[][..],
                )
            }
        };
        let mut ready = Vec::new();
        for policy_arn in execution_role_policy_arns(&spec.region) {
            if !attached.contains(&policy_arn) {
                let action = Action::AttachRolePolicy {
                    role: planned.reference.clone(),
                    policy_arn,
                };
                ready.push(self.push(action, &[]));
            }
        }
        if let (Status::Keep(arn), false) = (&planned.status, ready.is_empty()) {
            planned = Planned::changed(&arn.clone());
        }
        Some(Role { planned, ready })
    }

    /// subnet associations.
    pub(super) fn route_table(
        &mut self,
        vpc: &Ref,
        observed: Option<&ObservedRouteTable>,
        (tier, slot): (Tier, Option<Slot>),
        via: Option<RouteVia>,
        route_ordering: &[StepId],
        subnets: &[&Ref],
    ) -> RoutedTable {
        let first = self.steps.len();
        let table = match observed {
            Some(table) => Ref::Existing(table.id.clone()),
            None => Ref::Step(self.push(
                Action::CreateRouteTable {
                    vpc: vpc.clone(),
                    tier,
                    slot,
                },
                &[],
            )),
        };
        let route_ordering: Vec<StepId> = route_ordering.to_vec();
        let default_route =
            observed.and_then(|t| t.routes.iter().find(|r| r.destination == ANYWHERE));
        match (default_route, via) {
            (None, None) => {}
            (Some(_), None) => {
                let action = Action::DeleteRoute {
                    route_table: table.clone(),
                    destination: ANYWHERE,
                };
                self.push(action, &[]);
            }
            (None, Some(via)) => {
                let action = Action::CreateRoute {
                    route_table: table.clone(),
                    destination: ANYWHERE,
                    via,
                };
                self.push(action, &route_ordering);
            }
            (Some(route), Some(via)) if routes_via(route, &via) => {}
            (Some(_), Some(via)) => {
                let action = Action::ReplaceRoute {
                    route_table: table.clone(),
                    destination: ANYWHERE,
                    via,
                };
                self.push(action, &route_ordering);
            }
        }
        for subnet in subnets {
            let associated = match (observed, subnet) {
                (Some(table), Ref::Existing(id)) => table.serves(id),
                _ => false,
            };
            if !associated {
                let action = Action::AssociateRouteTable {
                    route_table: table.clone(),
                    subnet: (*subnet).clone(),
                };
                self.push(action, &[]);
            }
        }
        let steps: Vec<StepId> = (first..self.steps.len()).map(StepId).collect();
        let status = match observed {
            None => Status::Create,
            Some(table) if steps.is_empty() => Status::Keep(table.id.clone()),
            Some(table) => Status::Change(table.id.clone()),
        };
        RoutedTable {
            table,
            status,
            steps,
        }
    }
}

/// Whether a 0.0.0.0/0 route already goes where it should.
fn routes_via(route: &ObservedRoute, via: &RouteVia) -> bool {
    !route.blackhole
        && match (via, &route.target) {
            (
                RouteVia::InternetGateway(Ref::Existing(want)),
                RouteTarget::InternetGateway(have),
            )
            | (RouteVia::NatGateway(Ref::Existing(want)), RouteTarget::NatGateway(have))
            | (RouteVia::NatInstance(Ref::Existing(want)), RouteTarget::Instance(have))
            | (RouteVia::NatInterface(Ref::Existing(want)), RouteTarget::NetworkInterface(have)) => {
                want == have
            }
            _ => false,
        }
}

impl Planner {
    /// DeleteRouteTable, its explicit associations removed first: normally none are left, since
    /// its subnets go before it; AWS drops a subnet's association with the subnet, the emulator
    /// keeps it (not-found is done, so on AWS those calls find nothing).
    pub(super) fn delete_route_table(
        &mut self,
        table: &ObservedRouteTable,
        ordering: &[StepId],
    ) -> StepId {
        let action = Action::DeleteRouteTable {
            route_table: table.id.clone(),
            associations: table.associations.iter().map(|a| a.id.clone()).collect(),
        };
        self.push(action, ordering)
    }
}
