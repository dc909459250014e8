//! Test support: a simulated account. [`apply`] carries a plan out on an [`ObservedState`] the way
//! the executor would on AWS (fake ids like `subnet-step7`), and refuses what AWS refuses, so that
//! planning again on the result shows what a second deploy would do. Also the fixtures the planner
//! tests share, and a check that a plan's steps are well formed.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::observed::{
    AddressUse, NatState, ObservedAddress, ObservedFunction, ObservedInternetGateway,
    ObservedNatGateway, ObservedRole, ObservedRoute, ObservedRouteTable, ObservedSecurityGroup,
    ObservedState, ObservedSubnet, ObservedVpc, RouteTarget, Tier,
};
use crate::plan::{
    Action, FunctionSpec, Plan, Ref, RouteVia, StackSpec, Step, StepId, DEFAULT_VPC_CIDR,
    LAMBDA_RUNTIME,
};
use crate::planner::{execution_role_policy_arns, ANYWHERE};
use crate::requirements::{AzCount, StackName};
use crate::settings::Architecture;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

pub fn spec(azs: u8, functions: &[&str]) -> StackSpec {
    StackSpec {
        stack: StackName::parse("payments").unwrap(),
        region: REGION.to_owned(),
        vpc_cidr: DEFAULT_VPC_CIDR,
        azs: AzCount::new(azs.into()).unwrap(),
        adopted_ips: Vec::new(),
        functions: functions.iter().map(|name| function(name)).collect(),
    }
}

pub fn function(name: &str) -> FunctionSpec {
    FunctionSpec {
        name: name.to_owned(),
        package: "hello-egress".to_owned(),
        annotated: "hello_egress::main".to_owned(),
        architecture: Architecture::Arm64,
        memory_mb: 128,
        timeout_s: 30,
        environment: BTreeMap::from([("WHATISMYIP_URL".to_owned(), "https://x".to_owned())]),
        tags: BTreeMap::new(),
        role: None,
        code_sha256: Some("c2hhLW9uZQ==".to_owned()),
    }
}

/// What an empty account in [`REGION`] offers.
pub fn empty() -> ObservedState {
    ObservedState {
        offered_azs: ["a", "b", "c", "d", "e", "f"]
            .map(|z| format!("{REGION}{z}"))
            .to_vec(),
        ..ObservedState::default()
    }
}

/// An address the account holds before the stack uses it.
pub fn address(allocation_id: &str, last_octet: u8, usage: AddressUse) -> ObservedAddress {
    ObservedAddress {
        allocation_id: allocation_id.to_owned(),
        public_ip: Ipv4Addr::new(203, 0, 113, last_octet),
        usage,
        slot: None,
        adopted: false,
        association_id: None,
        network_interface_id: None,
    }
}

/// Deploys `spec` on `before` and returns the account afterwards.
pub fn deployed(spec: &StackSpec, before: &ObservedState) -> ObservedState {
    let plan = super::plan(spec, before).unwrap();
    check_well_formed(&plan);
    apply(&plan, before)
}

/// Carries out every step.
pub fn apply(plan: &Plan, before: &ObservedState) -> ObservedState {
    apply_where(plan, before, |_| true)
}

/// Carries out the steps `run` picks whose `after` steps were carried out, in list order: what a
/// deploy killed part way leaves.
pub fn apply_where(
    plan: &Plan,
    before: &ObservedState,
    run: impl FnMut(StepId) -> bool,
) -> ObservedState {
    apply_in_order(plan, before, None, run)
}

/// Like [`apply_where`], but with `Some(seed)` each next step is picked at random among those
/// whose `after` steps are done, as a concurrent executor may: a step that needs another step
/// without listing it in `after` is caught running too early.
pub fn apply_in_order(
    plan: &Plan,
    before: &ObservedState,
    mut seed: Option<u64>,
    mut run: impl FnMut(StepId) -> bool,
) -> ObservedState {
    let mut account = Account {
        generation: next_generation(before),
        region: plan.region.clone(),
        state: before.clone(),
        produced: BTreeMap::new(),
    };
    let mut skipped = vec![false; plan.steps.len()];
    loop {
        let ready: Vec<&Step> = plan
            .steps
            .iter()
            .filter(|step| !account.produced.contains_key(&step.id) && !skipped[step.id.0])
            .filter(|step| step.after.iter().all(|a| account.produced.contains_key(a)))
            .collect();
        let Some(first) = ready.first() else { break };
        let step = match seed.as_mut() {
            None => first,
            Some(seed) => {
                *seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ready[(*seed >> 33) as usize % ready.len()]
            }
        };
        if run(step.id) {
            let id = account.carry_out(step.id, &step.action, plan);
            account.produced.insert(step.id, id);
        } else {
            skipped[step.id.0] = true;
        }
    }
    account.state
}

struct Account {
    /// Tells apart the ids of successive applies: `subnet-g2step7` is step 7 of the second.
    generation: usize,
    region: String,
    state: ObservedState,
    /// The id each step carried out produced.
    produced: BTreeMap<StepId, String>,
}

impl Account {
    fn new_id(&self, prefix: &str, step: StepId) -> String {
        format!("{prefix}-g{}step{}", self.generation, step.0)
    }

    fn resolve(&self, reference: &Ref) -> String {
        match reference {
            Ref::Existing(id) => id.clone(),
            Ref::Step(step) => self.produced[step].clone(),
        }
    }

    fn vpc_id(&self) -> String {
        self.state.vpc.as_ref().expect("no VPC").id.clone()
    }

    fn igw_attached(&self) -> bool {
        let vpc = self.vpc_id();
        self.state
            .internet_gateway
            .as_ref()
            .and_then(|g| g.attached_vpc.as_deref())
            == Some(vpc.as_str())
    }

    fn table(&mut self, id: &str) -> &mut ObservedRouteTable {
        self.state
            .route_tables
            .iter_mut()
            .find(|t| t.id == id)
            .expect("no such route table")
    }

    fn target(&self, via: &RouteVia) -> RouteTarget {
        match via {
            RouteVia::InternetGateway(gateway) => {
                assert!(
                    self.igw_attached(),
                    "AWS refuses a route to a detached internet gateway"
                );
                RouteTarget::InternetGateway(self.resolve(gateway))
            }
            RouteVia::NatGateway(gateway) => RouteTarget::NatGateway(self.resolve(gateway)),
        }
    }

    fn carry_out(&mut self, step: StepId, action: &Action, plan: &Plan) -> String {
        let n = step.0;
        match action {
            Action::CreateVpc { cidr } => {
                assert!(self.state.vpc.is_none(), "a second VPC");
                let id = self.new_id("vpc", step);
                self.state.vpc = Some(ObservedVpc {
                    id: id.clone(),
                    cidr: *cidr,
                    dns_support: true,
                    dns_hostnames: false,
                });
                id
            }
            Action::EnableVpcDns { vpc } => {
                let id = self.resolve(vpc);
                let observed = self.state.vpc.as_mut().unwrap();
                assert_eq!(observed.id, id);
                observed.dns_support = true;
                observed.dns_hostnames = true;
                id
            }
            Action::CreateInternetGateway => {
                assert!(
                    self.state.internet_gateway.is_none(),
                    "a second internet gateway"
                );
                let id = self.new_id("igw", step);
                self.state.internet_gateway = Some(ObservedInternetGateway {
                    id: id.clone(),
                    attached_vpc: None,
                });
                id
            }
            Action::AttachInternetGateway {
                internet_gateway,
                vpc,
            } => {
                let (id, vpc) = (self.resolve(internet_gateway), self.resolve(vpc));
                let gateway = self.state.internet_gateway.as_mut().unwrap();
                assert_eq!(gateway.id, id);
                assert_eq!(
                    gateway.attached_vpc, None,
                    "AWS refuses to attach an attached gateway"
                );
                gateway.attached_vpc = Some(vpc);
                id
            }
            Action::CreateSubnet {
                vpc,
                tier,
                slot,
                az,
                cidr,
            } => {
                assert_eq!(self.resolve(vpc), self.vpc_id());
                let vpc_cidr = self.state.vpc.as_ref().unwrap().cidr;
                assert!(
                    vpc_cidr.contains(cidr),
                    "AWS refuses {cidr}: outside {vpc_cidr}"
                );
                for other in &self.state.subnets {
                    assert!(
                        !overlap(other.cidr, *cidr),
                        "AWS refuses {cidr}: overlaps {other:?}"
                    );
                }
                assert!(self.state.offered_azs.contains(az), "AWS refuses AZ {az}");
                let id = self.new_id("subnet", step);
                self.state.subnets.push(ObservedSubnet {
                    id: id.clone(),
                    tier: *tier,
                    slot: *slot,
                    az: az.clone(),
                    cidr: *cidr,
                });
                id
            }
            Action::AllocateAddress { slot } => {
                let id = self.new_id("eipalloc", step);
                self.state.addresses.push(ObservedAddress {
                    slot: Some(*slot),
                    ..address(&id, 0, AddressUse::Active)
                });
                let allocated = self.state.addresses.last_mut().unwrap();
                allocated.public_ip =
                    Ipv4Addr::new(198, self.generation as u8, (n / 256) as u8, n as u8);
                id
            }
            Action::ActivateAddress {
                allocation_id,
                slot,
            } => {
                let address = self
                    .state
                    .addresses
                    .iter_mut()
                    .find(|a| a.allocation_id == *allocation_id)
                    .expect("activating an address the account does not hold");
                address.usage = AddressUse::Active;
                address.slot = Some(*slot);
                allocation_id.clone()
            }
            Action::CreateNatGateway {
                subnet,
                address,
                slot,
            } => {
                assert!(
                    self.igw_attached(),
                    "AWS refuses a public NAT without an internet gateway"
                );
                let (subnet_id, allocation_id) = (self.resolve(subnet), self.resolve(address));
                let subnet = self
                    .state
                    .subnets
                    .iter()
                    .find(|s| s.id == subnet_id)
                    .unwrap();
                assert_eq!((subnet.tier, subnet.slot), (Tier::Public, *slot));
                let id = self.new_id("nat", step);
                let association = (self.new_id("eipassoc", step), self.new_id("eni", step));
                let address = self
                    .state
                    .addresses
                    .iter_mut()
                    .find(|a| a.allocation_id == allocation_id)
                    .expect("a NAT with an address the account does not hold");
                assert_eq!(
                    address.association_id, None,
                    "AWS refuses an associated address"
                );
                assert_eq!(
                    (address.usage, address.slot),
                    (AddressUse::Active, Some(*slot))
                );
                address.association_id = Some(association.0);
                address.network_interface_id = Some(association.1);
                self.state.nat_gateways.push(ObservedNatGateway {
                    id: id.clone(),
                    subnet_id,
                    allocation_ids: vec![allocation_id],
                    state: NatState::Available,
                    slot: *slot,
                });
                id
            }
            Action::CreateRouteTable { vpc, tier, slot } => {
                assert_eq!(self.resolve(vpc), self.vpc_id());
                let id = self.new_id("rtb", step);
                let local = ObservedRoute {
                    destination: self.state.vpc.as_ref().unwrap().cidr,
                    target: RouteTarget::Local,
                    blackhole: false,
                };
                self.state.route_tables.push(ObservedRouteTable {
                    id: id.clone(),
                    tier: *tier,
                    slot: *slot,
                    associated_subnets: Vec::new(),
                    routes: vec![local],
                });
                id
            }
            Action::AssociateRouteTable {
                route_table,
                subnet,
            } => {
                let (table, subnet) = (self.resolve(route_table), self.resolve(subnet));
                for other in &self.state.route_tables {
                    assert!(
                        !other.associated_subnets.contains(&subnet),
                        "AWS refuses: {subnet} is associated with {} already",
                        other.id
                    );
                }
                self.table(&table).associated_subnets.push(subnet);
                self.new_id("rtbassoc", step)
            }
            Action::CreateRoute {
                route_table,
                destination,
                via,
            } => {
                let (table, target) = (self.resolve(route_table), self.target(via));
                let table = self.table(&table);
                assert!(
                    table.routes.iter().all(|r| r.destination != *destination),
                    "AWS refuses a duplicate route"
                );
                table.routes.push(ObservedRoute {
                    destination: *destination,
                    target,
                    blackhole: false,
                });
                table.id.clone()
            }
            Action::ReplaceRoute {
                route_table,
                destination,
                via,
            } => {
                let (table, target) = (self.resolve(route_table), self.target(via));
                let table = self.table(&table);
                let route = table
                    .routes
                    .iter_mut()
                    .find(|r| r.destination == *destination)
                    .expect("AWS refuses to replace a route that does not exist");
                *route = ObservedRoute {
                    destination: *destination,
                    target,
                    blackhole: false,
                };
                table.id.clone()
            }
            Action::CreateSecurityGroup { vpc } => {
                assert_eq!(self.resolve(vpc), self.vpc_id());
                assert!(
                    self.state.security_group.is_none(),
                    "a second security group"
                );
                let id = self.new_id("sg", step);
                self.state.security_group = Some(ObservedSecurityGroup { id: id.clone() });
                id
            }
            Action::CreateRole { name } => {
                assert!(self.state.role.is_none(), "AWS refuses a role that exists");
                let arn = format!("arn:aws:iam::{ACCOUNT}:role/{name}");
                self.state.role = Some(ObservedRole {
                    name: name.clone(),
                    arn: arn.clone(),
                    attached_policy_arns: Vec::new(),
                });
                arn
            }
            Action::AttachRolePolicy { role, policy_arn } => {
                let arn = self.resolve(role);
                let observed = self.state.role.as_mut().unwrap();
                assert_eq!(observed.arn, arn);
                if !observed.attached_policy_arns.contains(policy_arn) {
                    observed.attached_policy_arns.push(policy_arn.clone());
                }
                arn
            }
            Action::CreateFunction {
                function,
                subnets,
                security_group,
                role,
            } => {
                assert!(
                    self.state.functions.iter().all(|f| f.name != function.name),
                    "AWS refuses a function that exists"
                );
                let deployed = self.configured(
                    ObservedFunction {
                        name: function.name.clone(),
                        arn: format!(
                            "arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}",
                            function.name
                        ),
                        runtime: None,
                        architecture: Some(function.architecture),
                        role_arn: String::new(),
                        memory_mb: 0,
                        timeout_s: 0,
                        environment: BTreeMap::new(),
                        subnet_ids: Vec::new(),
                        security_group_ids: Vec::new(),
                        code_sha256: function.code_sha256.clone().unwrap_or_default(),
                        stack_tag: Some(plan.stack.to_string()),
                    },
                    function,
                    subnets,
                    security_group,
                    role,
                );
                let arn = deployed.arn.clone();
                self.state.functions.push(deployed);
                arn
            }
            Action::UpdateFunctionConfiguration {
                function,
                subnets,
                security_group,
                role,
            } => {
                // The planner moves an existing function only into subnets that route out.
                for subnet in subnets {
                    let subnet = self.resolve(subnet);
                    let Some(RouteTarget::NatGateway(nat)) = self.default_target(&subnet) else {
                        panic!("a function moved into {subnet}, which has no route to a NAT");
                    };
                    let nat = self
                        .state
                        .nat_gateways
                        .iter()
                        .find(|n| n.id == nat)
                        .unwrap();
                    assert!(
                        matches!(
                            self.default_target(&nat.subnet_id),
                            Some(RouteTarget::InternetGateway(_))
                        ),
                        "a function moved into {subnet}, whose NAT has no route to the internet"
                    );
                }
                let index = self.function_index(&function.name);
                let before = self.state.functions[index].clone();
                let deployed = self.configured(before, function, subnets, security_group, role);
                let arn = deployed.arn.clone();
                self.state.functions[index] = deployed;
                arn
            }
            Action::TagFunction { function } => {
                let index = self.function_index(&function.name);
                let deployed = &mut self.state.functions[index];
                deployed.stack_tag = Some(plan.stack.to_string());
                deployed.arn.clone()
            }
            Action::UpdateFunctionCode { function } => {
                let index = self.function_index(&function.name);
                let deployed = &mut self.state.functions[index];
                deployed.code_sha256 = function.code_sha256.clone().unwrap_or_default();
                deployed.architecture = Some(function.architecture);
                deployed.arn.clone()
            }
        }
    }

    /// Where a subnet's 0.0.0.0/0 route goes, if it has one that works.
    fn default_target(&self, subnet: &str) -> Option<RouteTarget> {
        let table = self
            .state
            .route_tables
            .iter()
            .find(|t| t.associated_subnets.iter().any(|s| s == subnet))?;
        let route = table
            .routes
            .iter()
            .find(|r| r.destination == ANYWHERE && !r.blackhole)?;
        Some(route.target.clone())
    }

    fn function_index(&self, name: &str) -> usize {
        self.state
            .functions
            .iter()
            .position(|f| f.name == name)
            .expect("no such function")
    }

    /// A function with the configuration a Create/UpdateFunctionConfiguration call sets.
    fn configured(
        &self,
        mut deployed: ObservedFunction,
        function: &FunctionSpec,
        subnets: &[Ref],
        security_group: &Ref,
        role: &Ref,
    ) -> ObservedFunction {
        let role_arn = self.resolve(role);
        if let Some(stack_role) = self.state.role.as_ref().filter(|r| r.arn == role_arn) {
            // Lambda checks the role may create network interfaces.
            for policy in execution_role_policy_arns(&self.region) {
                assert!(
                    stack_role.attached_policy_arns.contains(&policy),
                    "role lacks {policy}"
                );
            }
        }
        deployed.runtime = Some(LAMBDA_RUNTIME.to_owned());
        deployed.role_arn = role_arn;
        deployed.memory_mb = function.memory_mb;
        deployed.timeout_s = function.timeout_s;
        deployed.environment = function.environment.clone();
        deployed.subnet_ids = subnets.iter().map(|s| self.resolve(s)).collect();
        deployed.security_group_ids = vec![self.resolve(security_group)];
        deployed
    }
}

/// One more than the highest generation among the ids an earlier apply made.
fn next_generation(account: &ObservedState) -> usize {
    let ids = account
        .vpc
        .iter()
        .map(|v| &v.id)
        .chain(account.internet_gateway.iter().map(|g| &g.id))
        .chain(account.subnets.iter().map(|s| &s.id))
        .chain(account.addresses.iter().map(|a| &a.allocation_id))
        .chain(account.nat_gateways.iter().map(|n| &n.id))
        .chain(account.route_tables.iter().map(|t| &t.id))
        .chain(account.security_group.iter().map(|g| &g.id));
    let generation = |id: &String| {
        let (_, rest) = id.split_once("-g")?;
        let (digits, _) = rest.split_once("step")?;
        digits.parse::<usize>().ok()
    };
    ids.filter_map(generation).max().map_or(1, |g| g + 1)
}

fn overlap(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The properties every plan has: ids are indices; `after` is sorted, points backwards, holds every
/// step whose result the action uses, and anything more only for the orderings the planner
/// documents.
pub fn check_well_formed(plan: &Plan) {
    for (index, step) in plan.steps.iter().enumerate() {
        assert_eq!(step.id, StepId(index));
        assert!(
            step.after.windows(2).all(|w| w[0] < w[1]),
            "after unsorted: {step:?}"
        );
        let used: Vec<StepId> = step
            .action
            .refs()
            .into_iter()
            .filter_map(|r| match r {
                Ref::Step(id) => Some(*id),
                Ref::Existing(_) => None,
            })
            .collect();
        for id in &used {
            assert!(
                step.after.contains(id),
                "step {index} uses step {id:?} without waiting"
            );
        }
        for before in &step.after {
            assert!(*before < step.id, "step {index} waits for a later step");
            if used.contains(before) {
                continue;
            }
            let earlier = &plan.steps[before.0].action;
            let documented = match (&step.action, earlier) {
                (
                    Action::CreateNatGateway { .. }
                    | Action::CreateRoute {
                        via: RouteVia::InternetGateway(_),
                        ..
                    }
                    | Action::ReplaceRoute {
                        via: RouteVia::InternetGateway(_),
                        ..
                    },
                    Action::AttachInternetGateway { .. },
                ) => true,
                (
                    Action::CreateFunction { .. } | Action::UpdateFunctionConfiguration { .. },
                    Action::AttachRolePolicy { .. },
                ) => true,
                (
                    Action::UpdateFunctionConfiguration { .. },
                    Action::CreateRouteTable { .. }
                    | Action::CreateRoute { .. }
                    | Action::ReplaceRoute { .. }
                    | Action::AssociateRouteTable { .. },
                ) => true,
                (
                    Action::UpdateFunctionCode { function: code },
                    Action::UpdateFunctionConfiguration {
                        function: config, ..
                    },
                ) => code.name == config.name,
                _ => false,
            };
            assert!(
                documented,
                "step {index} waits for step {before:?} for no reason: {plan:#?}"
            );
        }
    }
}
