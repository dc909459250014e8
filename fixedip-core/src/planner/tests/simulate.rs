//! Test support: a simulated account. [`apply`] carries a plan out on an [`ObservedState`] the way
//! the executor would on AWS (fake ids like `subnet-step7`), and refuses what AWS refuses (a
//! subnet deleted with a NAT or Lambda's network interfaces in it, an address released while a
//! NAT holds it, a VPC deleted with something left in it...), so that planning again on the
//! result shows what a second deploy would do. Also the fixtures the planner
//! tests share, and a check that a plan's steps are well formed.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::observed::{
    AddressUse, InstanceState, NatState, ObservedAddress, ObservedEndpoint, ObservedFunction,
    ObservedGroupInstance, ObservedInternetGateway, ObservedNatGateway, ObservedNatGroup,
    ObservedNatInstance, ObservedNatInterface, ObservedNatLaunchTemplate, ObservedNatProfile,
    ObservedRole, ObservedRoute, ObservedRouteTable, ObservedSecurityGroup, ObservedState,
    ObservedSubnet, ObservedVpc, RouteTableAssociation, RouteTarget, RulePeer, RuleProtocol,
    SecurityGroupRule, Tier,
};
use crate::requirements::{Endpoint, EndpointKind};
use std::collections::BTreeSet;

use crate::plan::{
    Action, FunctionSpec, InterfaceHolder, NetworkModes, Plan, Ref, RouteVia, StackSpec, Step,
    StepId, DEFAULT_VPC_CIDR, LAMBDA_RUNTIME,
};
use crate::planner::{execution_role_policy_arns, PlanOptions, ANYWHERE};
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
        modes: NetworkModes::default(),
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

/// The AZ ids of [`REGION`]'s AZs, as moto maps them (each account maps them its own way).
pub const AZ_IDS: [(&str, &str); 6] = [
    ("a", "use1-az6"),
    ("b", "use1-az1"),
    ("c", "use1-az2"),
    ("d", "use1-az4"),
    ("e", "use1-az3"),
    ("f", "use1-az5"),
];

/// What an empty account in [`REGION`] offers. A new history: what the simulated AWS remembers
/// of earlier instances (their launch IPs) is forgotten, as their ids may come again.
pub fn empty() -> ObservedState {
    REMEMBERED.with(|known| *known.borrow_mut() = Remembered::default());
    ObservedState {
        offered_azs: AZ_IDS.map(|(z, _)| format!("{REGION}{z}")).to_vec(),
        az_ids: AZ_IDS
            .iter()
            .map(|(z, id)| (format!("{REGION}{z}"), id.to_string()))
            .collect(),
        prefix_lists: [("s3", "pl-63a5400a"), ("dynamodb", "pl-02cd2c6b")]
            .into_iter()
            .map(|(service, id)| (Endpoint::parse(service).unwrap(), id.to_owned()))
            .collect(),
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
        stale_association: false,
    }
}

/// Deploys `spec` on `before` and returns the account afterwards.
pub fn deployed(spec: &StackSpec, before: &ObservedState) -> ObservedState {
    deployed_with(spec, before, &PlanOptions::default())
}

/// `cargo fixedip deploy --allow-new-ips`.
pub const ALLOW_NEW_IPS: PlanOptions = PlanOptions {
    allow_new_ips: true,
    release_ips: false,
    delete_functions: false,
    force_detach_others: false,
    adopt_functions: false,
};

pub fn deployed_with(
    spec: &StackSpec,
    before: &ObservedState,
    options: &PlanOptions,
) -> ObservedState {
    let plan = super::plan_with(spec, before, options).unwrap();
    check_well_formed(&plan);
    apply(&plan, before)
}

/// Destroys `spec`'s stack on `before` and returns the account afterwards.
pub fn destroyed(spec: &StackSpec, before: &ObservedState, options: &PlanOptions) -> ObservedState {
    let plan = super::plan_destroy(spec, before, options).unwrap();
    check_well_formed(&plan);
    apply(&plan, before)
}

/// What the emulator leaves where AWS leaves nothing: an address that a NAT gateway of `before`
/// held keeps its association once that gateway is gone in `after` (AWS drops the association
/// with the gateway; moto keeps it and refuses the address to a new NAT or a release). The stack
/// view marks such an association stale ([`ObservedAddress::stale_association`]).
pub fn with_stale_associations(after: &ObservedState, before: &ObservedState) -> ObservedState {
    let mut after = after.clone();
    let gone = before
        .nat_gateways
        .iter()
        .filter(|nat| after.nat_gateways.iter().all(|n| n.id != nat.id));
    for nat in gone {
        for held in before
            .addresses
            .iter()
            .filter(|a| nat.allocation_ids.contains(&a.allocation_id))
        {
            let address = after
                .addresses
                .iter_mut()
                .find(|a| a.allocation_id == held.allocation_id);
            if let Some(address) = address.filter(|a| a.association_id.is_none()) {
                address.association_id = held.association_id.clone();
                address.network_interface_id = held.network_interface_id.clone();
                address.stale_association = true;
            }
        }
    }
    after
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
    // Functions attached when the run starts hold network interfaces in their subnets and groups.
    let interfaces = before
        .functions
        .iter()
        .flat_map(|f| f.subnet_ids.iter().chain(&f.security_group_ids).cloned())
        .collect();
    let mut account = Account {
        generation: next_generation(before),
        region: plan.region.clone(),
        state: before.clone(),
        produced: BTreeMap::new(),
        interfaces,
        booting: BTreeSet::new(),
        public_at_launch: REMEMBERED.with(|known| known.borrow().public_at_launch.clone()),
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
    /// Subnets and security groups where Lambda's network interfaces are: put there by an
    /// attached function, and lingering after it left, until `ClearLambdaInterfaces` waits them
    /// out. A run that starts later finds them gone only if no function is attached (AWS
    /// reclaims them in the meantime).
    interfaces: BTreeSet<String>,
    /// NAT instances launched by this plan that have not reported ready yet: no route may send
    /// traffic to them.
    booting: BTreeSet<String>,
    /// NAT instances launched with a public IP: their boot reaches the repositories without
    /// their Elastic IP.
    public_at_launch: BTreeSet<String>,
}

/// What AWS keeps of an instance across runs that the observed state does not say (as the
/// planner needs not know): its launch's public IP, and that its boot said ready once (its
/// forwarding and masquerade stay on; its console keeps saying so).
#[derive(Default)]
struct Remembered {
    public_at_launch: BTreeSet<String>,
    ready: BTreeSet<String>,
}

thread_local! {
    /// Every NAT instance of this test's history, across plans.
    static REMEMBERED: std::cell::RefCell<Remembered> =
        std::cell::RefCell::new(Remembered::default());
}

impl Account {
    fn new_id(&self, prefix: &str, step: StepId) -> String {
        format!("{prefix}-g{}step{}", self.generation, step.0)
    }

    /// Where a NAT (an instance or a self-healing NAT's interface) goes: the slot's public subnet,
    /// with the stack's NAT security group. Returns the subnet's id.
    fn nat_placement(
        &self,
        subnet: &Ref,
        security_group: &Ref,
        slot: crate::observed::Slot,
    ) -> String {
        let subnet_id = self.resolve(subnet);
        let found = self.state.subnets.iter().find(|s| s.id == subnet_id);
        let found = found.expect("a NAT in a subnet the account does not hold");
        assert_eq!((found.tier, found.slot), (Tier::Public, slot));
        assert_eq!(
            self.state.nat_security_group.as_ref().map(|g| g.id.clone()),
            Some(self.resolve(security_group))
        );
        subnet_id
    }

    fn resolve(&self, reference: &Ref) -> String {
        match reference {
            Ref::Existing(id) => id.clone(),
            Ref::Step(step) => self.produced[step].clone(),
        }
    }

    /// The stack's VPC, or the user's on an existing network.
    fn endpoint_mut(&mut self, id: &str) -> &mut ObservedEndpoint {
        self.state
            .endpoints
            .iter_mut()
            .find(|e| e.id == id)
            .expect("modifying an endpoint the account does not hold")
    }

    /// AWS refuses a second route to a service's prefix list in a route table.
    fn refuse_second_route(&self, service: Endpoint, tables: &[String]) {
        for table in tables {
            assert!(
                !self
                    .state
                    .endpoints
                    .iter()
                    .any(|e| e.service == service && e.route_table_ids.contains(table)),
                "AWS refuses a second route to {service}'s prefix list in {table}"
            );
        }
    }

    fn vpc_id(&self) -> String {
        let existing = self.state.existing_network.as_ref();
        let vpc = self.state.vpc.as_ref().map(|v| v.id.clone());
        vpc.or_else(|| existing.map(|n| n.network.vpc_id.clone()))
            .expect("no VPC")
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
            RouteVia::NatInstance(instance) => {
                let id = self.resolve(instance);
                let instance = self
                    .state
                    .nat_instances
                    .iter()
                    .find(|i| i.id == id)
                    .expect("a route to an instance the account does not hold");
                assert!(
                    !self.booting.contains(&id),
                    "a route to {id}, which has not reported ready yet"
                );
                assert!(
                    !instance.source_dest_check,
                    "a route to {id}, which drops forwarded packets (source/dest check on)"
                );
                RouteTarget::Instance(id)
            }
            RouteVia::NatInterface(interface) => {
                let id = self.resolve(interface);
                let interface = self.state.nat_interfaces.iter().find(|i| i.id == id);
                let interface =
                    interface.expect("a route to an interface the account does not hold");
                assert!(
                    !self.booting.contains(&id),
                    "a route to {id}, whose group's instance has not reported ready yet"
                );
                assert!(
                    !interface.source_dest_check,
                    "a route to {id}, which drops forwarded packets (source/dest check on)"
                );
                RouteTarget::NetworkInterface(id)
            }
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
            Action::AllocateAddress { slot, held_back } => {
                let id = self.new_id("eipalloc", step);
                let usage = if *held_back {
                    AddressUse::Pending
                } else {
                    AddressUse::Active
                };
                self.state.addresses.push(ObservedAddress {
                    slot: Some(*slot),
                    ..address(&id, 0, usage)
                });
                let allocated = self.state.addresses.last_mut().unwrap();
                allocated.public_ip =
                    Ipv4Addr::new(198, self.generation as u8, (n / 256) as u8, n as u8);
                id
            }
            Action::ActivateAddress {
                allocation_id,
                slot,
                adopted,
                held_back,
            } => {
                let address = self
                    .state
                    .addresses
                    .iter_mut()
                    .find(|a| a.allocation_id == *allocation_id)
                    .expect("activating an address the account does not hold");
                address.usage = if *held_back {
                    AddressUse::Pending
                } else {
                    AddressUse::Active
                };
                address.slot = Some(*slot);
                address.adopted |= *adopted;
                allocation_id.clone()
            }
            Action::CreateNatGateway {
                subnet,
                address,
                slot,
                ..
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
                    associations: Vec::new(),
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
                        !other.serves(&subnet),
                        "AWS refuses: {subnet} is associated with {} already",
                        other.id
                    );
                }
                let id = self.new_id("rtbassoc", step);
                self.table(&table).associations.push(RouteTableAssociation {
                    id: id.clone(),
                    subnet_id: subnet,
                });
                id
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
            Action::DeleteRoute {
                route_table,
                destination,
            } => {
                let table = self.resolve(route_table);
                let table = self.table(&table);
                let before = table.routes.len();
                table.routes.retain(|r| r.destination != *destination);
                assert_eq!(
                    table.routes.len() + 1,
                    before,
                    "AWS refuses to delete a route that does not exist"
                );
                table.id.clone()
            }
            Action::CreateSecurityGroup { vpc } => {
                assert_eq!(self.resolve(vpc), self.vpc_id());
                assert!(
                    self.state.security_group.is_none(),
                    "a second security group"
                );
                let id = self.new_id("sg", step);
                self.state.security_group = Some(ObservedSecurityGroup::fresh(&id));
                id
            }
            Action::CreateNatSecurityGroup { vpc, admit } => {
                assert_eq!(self.resolve(vpc), self.vpc_id());
                assert!(self.state.vpc.as_ref().unwrap().cidr.contains(admit));
                assert!(
                    self.state.nat_security_group.is_none(),
                    "a second NAT security group"
                );
                let id = self.new_id("sg", step);
                self.state.nat_security_group = Some(ObservedSecurityGroup::fresh(&id));
                id
            }
            Action::LaunchNatInstance {
                subnet,
                security_group,
                slot,
                instance_type,
                public_ip,
                ..
            } => {
                let subnet_id = self.nat_placement(subnet, security_group, *slot);
                let id = self.new_id("i", step);
                self.state.nat_instances.push(ObservedNatInstance {
                    id: id.clone(),
                    subnet_id,
                    slot: *slot,
                    state: InstanceState::Running,
                    instance_type: instance_type.clone(),
                    network_interface_id: Some(self.new_id("eni", step)),
                    source_dest_check: true,
                });
                self.booting.insert(id.clone());
                if *public_ip {
                    self.public_at_launch.insert(id.clone());
                    REMEMBERED.with(|known| known.borrow_mut().public_at_launch.insert(id.clone()));
                }
                id
            }
            Action::DropPublicIp { network_interface } => {
                let instance = self
                    .state
                    .nat_instances
                    .iter()
                    .find(|i| i.network_interface_id.as_ref() == Some(network_interface));
                assert!(
                    instance.is_some(),
                    "no NAT instance holds {network_interface}"
                );
                network_interface.clone()
            }
            Action::AwaitNatInstanceReady { instance } => {
                let id = self.resolve(instance);
                let instance = self.state.nat_instances.iter().find(|i| i.id == id);
                let interface = instance
                    .expect("no such instance")
                    .network_interface_id
                    .clone();
                let elastic_ip = self
                    .state
                    .addresses
                    .iter()
                    .any(|a| a.association_id.is_some() && a.network_interface_id == interface);
                assert!(
                    elastic_ip
                        || self.public_at_launch.contains(&id)
                        || REMEMBERED.with(|known| known.borrow().ready.contains(&id)),
                    "{id} waited for with no way out to the package repositories: it never gets ready"
                );
                REMEMBERED.with(|known| known.borrow_mut().ready.insert(id.clone()));
                self.booting.remove(&id);
                id
            }
            Action::DisableSourceDestCheck { instance } => {
                let id = self.resolve(instance);
                let instance = self.state.nat_instances.iter_mut().find(|i| i.id == id);
                instance.expect("no such instance").source_dest_check = false;
                id
            }
            Action::AssociateAddress {
                address, instance, ..
            } => {
                let (allocation_id, id) = (self.resolve(address), self.resolve(instance));
                let instance = self.state.nat_instances.iter().find(|i| i.id == id);
                let instance = instance.expect("no such instance").clone();
                let association = self.new_id("eipassoc", step);
                let address = self.address(&allocation_id);
                assert_eq!(
                    address.association_id, None,
                    "AWS refuses an associated address (without AllowReassociation)"
                );
                assert_eq!(
                    (address.usage, address.slot),
                    (AddressUse::Active, Some(instance.slot))
                );
                address.association_id = Some(association);
                address.network_interface_id = instance.network_interface_id.clone();
                allocation_id
            }
            Action::DisassociateAddress { association_id } => {
                for address in &mut self.state.addresses {
                    if address.association_id.as_ref() == Some(association_id) {
                        address.association_id = None;
                        address.network_interface_id = None;
                        address.stale_association = false;
                    }
                }
                association_id.clone()
            }
            Action::StartNatInstance { instance } => {
                let found = self
                    .state
                    .nat_instances
                    .iter_mut()
                    .find(|i| i.id == *instance);
                let found = found.expect("starting an instance the account does not hold");
                assert!(
                    matches!(
                        found.state,
                        InstanceState::Stopped | InstanceState::Stopping
                    ),
                    "starting {instance}, which is {:?}",
                    found.state
                );
                found.state = InstanceState::Running;
                // A new boot: ready only once it says so again.
                self.booting.insert(instance.clone());
                instance.clone()
            }
            Action::TerminateNatInstance { instance } => {
                for function in &self.state.functions {
                    for subnet in &function.subnet_ids {
                        assert_ne!(
                            self.default_target(subnet),
                            Some(RouteTarget::Instance(instance.clone())),
                            "terminating {instance} cuts off function {}, which runs in {subnet}",
                            function.name
                        );
                    }
                }
                let index = self
                    .state
                    .nat_instances
                    .iter()
                    .position(|i| i.id == *instance);
                let gone = self
                    .state
                    .nat_instances
                    .remove(index.expect("no such instance"));
                // AWS disassociates an instance's Elastic IP when it terminates.
                for address in &mut self.state.addresses {
                    if address.network_interface_id.is_some()
                        && address.network_interface_id == gone.network_interface_id
                    {
                        address.association_id = None;
                        address.network_interface_id = None;
                    }
                }
                gone.id
            }
            Action::CreateNatProfile { name } => {
                self.state.nat_profile = Some(ObservedNatProfile {
                    name: name.clone(),
                    complete: true,
                });
                name.clone()
            }
            Action::DeleteNatProfile { name } => {
                assert!(
                    self.state.nat_groups.is_empty(),
                    "deleting the instance profile {name} while a group launches with it"
                );
                self.state.nat_profile = None;
                name.clone()
            }
            Action::CreateNatInterface {
                subnet,
                security_group,
                slot,
            } => {
                let subnet_id = self.nat_placement(subnet, security_group, *slot);
                let id = self.new_id("eni", step);
                self.state.nat_interfaces.push(ObservedNatInterface {
                    id: id.clone(),
                    subnet_id,
                    slot: *slot,
                    source_dest_check: false,
                    attached_instance: None,
                });
                id
            }
            Action::AssociateInterfaceAddress { address, interface } => {
                let (allocation_id, id) = (self.resolve(address), self.resolve(interface));
                let found = self.state.nat_interfaces.iter().find(|i| i.id == id);
                let slot = found.expect("no such interface").slot;
                let association = self.new_id("eipassoc", step);
                let address = self.address(&allocation_id);
                assert_eq!(
                    address.association_id, None,
                    "AWS refuses an associated address (without AllowReassociation)"
                );
                assert_eq!(
                    (address.usage, address.slot),
                    (AddressUse::Active, Some(slot))
                );
                address.association_id = Some(association);
                address.network_interface_id = Some(id);
                allocation_id
            }
            Action::CreateNatLaunchTemplate {
                slot,
                interface,
                profile,
                ..
            } => {
                let interface = self.resolve(interface);
                assert!(self.state.nat_interfaces.iter().any(|i| i.id == interface));
                assert_eq!(
                    self.state.nat_profile.as_ref().map(|p| p.name.clone()),
                    Some(self.resolve(profile))
                );
                let id = self.new_id("lt", step);
                let name = format!("fixedip-nat-{slot}");
                assert!(
                    self.state
                        .nat_launch_templates
                        .iter()
                        .all(|t| t.name != name),
                    "AWS refuses a second launch template named {name}"
                );
                self.state
                    .nat_launch_templates
                    .push(ObservedNatLaunchTemplate {
                        id: id.clone(),
                        name,
                        slot: *slot,
                    });
                id
            }
            Action::CreateNatGroup { slot, template, .. } => {
                let template = self.resolve(template);
                assert!(self
                    .state
                    .nat_launch_templates
                    .iter()
                    .any(|t| t.id == template));
                assert!(
                    self.state.nat_groups.iter().all(|g| g.slot != *slot),
                    "a second group in slot {slot}"
                );
                let name = self.new_id("asg", step);
                let instance = self.new_id("i", step);
                self.state.nat_groups.push(ObservedNatGroup {
                    name: name.clone(),
                    slot: *slot,
                    instances: vec![ObservedGroupInstance {
                        id: instance.clone(),
                        lifecycle: "InService".to_owned(),
                        instance_type: "t4g.nano".to_owned(),
                    }],
                });
                // Its instance attaches the slot's interface at boot, and says ready later.
                let interface = self
                    .state
                    .nat_interfaces
                    .iter_mut()
                    .find(|i| i.slot == *slot);
                let interface = interface.expect("a group with no interface to attach");
                interface.attached_instance = Some(instance);
                self.booting.insert(interface.id.clone());
                name
            }
            Action::AwaitNatGroupReady { group } => {
                let name = self.resolve(group);
                let found = self.state.nat_groups.iter().find(|g| g.name == name);
                let slot = found.expect("no such group").slot;
                let interface = self.state.nat_interfaces.iter().find(|i| i.slot == slot);
                let interface = interface
                    .expect("no interface in the group's slot")
                    .id
                    .clone();
                let elastic_ip = self.state.addresses.iter().any(|a| {
                    a.association_id.is_some()
                        && a.network_interface_id.as_deref() == Some(interface.as_str())
                });
                assert!(
                    elastic_ip,
                    "{name} waited for while its interface has no Elastic IP: its boot never says ready"
                );
                self.booting.remove(&interface);
                name
            }
            Action::AwaitNatInterfaceAttached { group, interface } => {
                let (name, interface) = (self.resolve(group), self.resolve(interface));
                let found = self.state.nat_groups.iter().find(|g| g.name == name);
                let instance = found
                    .expect("no such group")
                    .instances
                    .first()
                    .map(|i| &i.id);
                let attached = self.state.nat_interfaces.iter().find(|i| i.id == interface);
                assert_eq!(
                    attached
                        .expect("no such interface")
                        .attached_instance
                        .as_ref(),
                    instance,
                    "{name}'s instance never attaches {interface}"
                );
                name
            }
            Action::DeleteNatGroup { name } => {
                let index = self.state.nat_groups.iter().position(|g| g.name == *name);
                let gone = self.state.nat_groups.remove(index.expect("no such group"));
                let interfaces: Vec<String> = (self.state.nat_interfaces.iter())
                    .filter(|i| i.slot == gone.slot)
                    .map(|i| i.id.clone())
                    .collect();
                for interface in &interfaces {
                    for function in &self.state.functions {
                        for subnet in &function.subnet_ids {
                            assert_ne!(
                                self.default_target(subnet),
                                Some(RouteTarget::NetworkInterface(interface.clone())),
                                "deleting {name} cuts off function {}, which runs in {subnet}",
                                function.name
                            );
                        }
                    }
                }
                // AWS detaches the interface as the group's instance terminates.
                for interface in &mut self.state.nat_interfaces {
                    if interface.slot == gone.slot {
                        interface.attached_instance = None;
                    }
                }
                gone.name
            }
            Action::DeleteNatLaunchTemplate { id } => {
                let index = self
                    .state
                    .nat_launch_templates
                    .iter()
                    .position(|t| t.id == *id);
                self.state
                    .nat_launch_templates
                    .remove(index.expect("no such template"));
                id.clone()
            }
            Action::DeleteNatInterface { id } => {
                let index = self.state.nat_interfaces.iter().position(|i| i.id == *id);
                let interface = &self.state.nat_interfaces[index.expect("no such interface")];
                assert_eq!(
                    interface.attached_instance, None,
                    "AWS refuses to delete an attached interface"
                );
                assert!(
                    !self.state.addresses.iter().any(|a| a.association_id.is_some()
                        && a.network_interface_id.as_deref() == Some(id.as_str())),
                    "deleting {id} with its Elastic IP on it: AWS disassociates it, the IP stays, but the plan should have said so"
                );
                self.state.nat_interfaces.remove(index.unwrap());
                id.clone()
            }
            Action::AuthorizeEgress {
                security_group,
                rules,
            } => {
                let group = self.group(&self.resolve(security_group));
                for rule in rules {
                    assert!(
                        !group.egress.contains(rule),
                        "AWS refuses a duplicate rule: {rule}"
                    );
                    group.egress.push(rule.clone());
                }
                group.id.clone()
            }
            Action::RevokeEgress {
                security_group,
                rules,
            } => {
                let group = self.group(&self.resolve(security_group));
                for rule in rules {
                    let index = group.egress.iter().position(|r| r == rule);
                    group
                        .egress
                        .remove(index.expect("revoking a rule the group does not have"));
                }
                group.id.clone()
            }
            Action::CreateEndpointSecurityGroup { vpc } => {
                assert_eq!(self.resolve(vpc), self.vpc_id());
                assert!(
                    self.state.endpoint_security_group.is_none(),
                    "a second endpoint security group"
                );
                let id = self.new_id("sg", step);
                self.state.endpoint_security_group = Some(ObservedSecurityGroup::fresh(&id));
                id
            }
            Action::AdmitHttpsFrom {
                security_group,
                from_group,
            } => {
                let from = self.resolve(from_group);
                let group = self.group(&self.resolve(security_group));
                group.ingress.push(SecurityGroupRule {
                    protocol: RuleProtocol::Tcp,
                    ports: Some((443, 443)),
                    peer: RulePeer::SecurityGroup(from),
                });
                group.id.clone()
            }
            Action::CreateGatewayEndpoint {
                vpc,
                endpoint,
                route_tables,
                ..
            } => {
                assert_eq!(self.resolve(vpc), self.vpc_id());
                let tables: Vec<String> = route_tables.iter().map(|t| self.resolve(t)).collect();
                self.refuse_second_route(*endpoint, &tables);
                let id = self.new_id("vpce", step);
                self.state.endpoints.push(ObservedEndpoint {
                    id: id.clone(),
                    service: *endpoint,
                    kind: EndpointKind::Gateway,
                    slot: None,
                    route_table_ids: tables,
                    subnet_ids: Vec::new(),
                    dead: false,
                });
                id
            }
            Action::ModifyGatewayEndpoint {
                endpoint_id,
                add_route_tables,
                remove_route_tables,
            } => {
                let added: Vec<String> = add_route_tables.iter().map(|t| self.resolve(t)).collect();
                let service = self.endpoint_mut(endpoint_id).service;
                self.refuse_second_route(service, &added);
                let endpoint = self.endpoint_mut(endpoint_id);
                endpoint
                    .route_table_ids
                    .retain(|t| !remove_route_tables.contains(t));
                endpoint.route_table_ids.extend(added);
                endpoint_id.clone()
            }
            Action::CreateInterfaceEndpoint {
                vpc,
                endpoint,
                subnets,
                security_group,
                ..
            } => {
                assert_eq!(self.resolve(vpc), self.vpc_id());
                let vpc = self.state.vpc.as_ref().unwrap();
                assert!(
                    vpc.dns_support && vpc.dns_hostnames,
                    "AWS refuses private DNS without the VPC's DNS support and hostnames"
                );
                assert!(
                    !self
                        .state
                        .endpoints
                        .iter()
                        .any(|e| e.service == *endpoint && e.kind == EndpointKind::Interface),
                    "AWS refuses a second private DNS zone for {endpoint}"
                );
                let group = self.resolve(security_group);
                assert_eq!(
                    self.state.endpoint_security_group.as_ref().map(|g| &g.id),
                    Some(&group)
                );
                let id = self.new_id("vpce", step);
                let subnet_ids = subnets.iter().map(|s| self.resolve(s)).collect();
                self.state.endpoints.push(ObservedEndpoint {
                    id: id.clone(),
                    service: *endpoint,
                    kind: EndpointKind::Interface,
                    slot: None,
                    route_table_ids: Vec::new(),
                    subnet_ids,
                    dead: false,
                });
                id
            }
            Action::ModifyInterfaceEndpoint {
                endpoint_id,
                add_subnets,
                remove_subnets,
            } => {
                let added: Vec<String> = add_subnets.iter().map(|s| self.resolve(s)).collect();
                let endpoint = self.endpoint_mut(endpoint_id);
                endpoint.subnet_ids.retain(|s| !remove_subnets.contains(s));
                endpoint.subnet_ids.extend(added);
                endpoint_id.clone()
            }
            Action::DeleteEndpoint { endpoint_id } => {
                let index = self
                    .state
                    .endpoints
                    .iter()
                    .position(|e| e.id == *endpoint_id)
                    .expect("deleting an endpoint the account does not hold");
                self.state.endpoints.remove(index);
                endpoint_id.clone()
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
                        state: Default::default(),
                        ipv6_allowed_for_dual_stack: false,
                    },
                    function,
                    subnets,
                    security_group,
                    role,
                );
                let arn = deployed.arn.clone();
                self.hold_interfaces(&deployed);
                self.state.functions.push(deployed);
                arn
            }
            Action::AwaitFunctionActive { name } => {
                let function = self.state.functions.iter().find(|f| f.name == *name);
                function
                    .expect("a wait for a function that is not there")
                    .arn
                    .clone()
            }
            Action::UpdateFunctionConfiguration {
                function,
                subnets,
                security_group,
                role,
            } => {
                // The planner moves an existing function only into subnets that route out (an
                // isolated stack's route nowhere, by design).
                let isolated = !plan.network.internet_gateway.exists_after()
                    && plan.network.azs.iter().all(|az| az.nat_slot.is_none());
                for subnet in subnets.iter().filter(|_| !isolated) {
                    let subnet = self.resolve(subnet);
                    let nat_subnet = match self.default_target(&subnet) {
                        Some(RouteTarget::NatGateway(nat)) => {
                            let nat = self.state.nat_gateways.iter().find(|n| n.id == nat);
                            nat.unwrap().subnet_id.clone()
                        }
                        Some(RouteTarget::Instance(id)) => {
                            let instance = self.state.nat_instances.iter().find(|i| i.id == id);
                            let instance = instance.unwrap();
                            assert!(
                                self.state.addresses.iter().any(|a| a.network_interface_id
                                    == instance.network_interface_id),
                                "a function moved into {subnet}, whose NAT instance has no Elastic IP"
                            );
                            instance.subnet_id.clone()
                        }
                        Some(RouteTarget::NetworkInterface(id)) => {
                            let interface = self.state.nat_interfaces.iter().find(|i| i.id == id);
                            let interface = interface.unwrap();
                            assert!(
                                self.state.addresses.iter().any(|a| a.network_interface_id
                                    .as_deref()
                                    == Some(id.as_str())),
                                "a function moved into {subnet}, whose NAT interface has no Elastic IP"
                            );
                            interface.subnet_id.clone()
                        }
                        _ => panic!("a function moved into {subnet}, which has no route to a NAT"),
                    };
                    assert!(
                        matches!(
                            self.default_target(&nat_subnet),
                            Some(RouteTarget::InternetGateway(_))
                        ),
                        "a function moved into {subnet}, whose NAT has no route to the internet"
                    );
                }
                let index = self.function_index(&function.name);
                let before = self.state.functions[index].clone();
                let deployed = self.configured(before, function, subnets, security_group, role);
                let arn = deployed.arn.clone();
                self.hold_interfaces(&deployed);
                self.state.functions[index] = deployed;
                arn
            }
            Action::TagFunction { function, .. } => {
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
            Action::DetachFunction { name } => {
                let index = self.function_index(name);
                let deployed = &mut self.state.functions[index];
                // Its interfaces linger: `interfaces` keeps them.
                deployed.subnet_ids.clear();
                deployed.security_group_ids.clear();
                deployed.arn.clone()
            }
            Action::DeleteFunction { name } => {
                let index = self.function_index(name);
                self.state.functions.remove(index).arn
            }
            Action::DeleteNatGateway { nat_gateway } => {
                let index = self
                    .state
                    .nat_gateways
                    .iter()
                    .position(|n| n.id == *nat_gateway)
                    .expect("deleting a NAT gateway the account does not hold");
                // A switch to a NAT instance deletes the gateway once the instance is ready: the
                // slot's egress pauses (the plan's note says so) until its address moves.
                let slot = self.state.nat_gateways[index].slot;
                // To a group: its instance boots, waiting for the address the gateway frees.
                let switching = self
                    .state
                    .nat_instances
                    .iter()
                    .any(|i| i.slot == slot && !self.booting.contains(&i.id))
                    || self.state.nat_groups.iter().any(|g| g.slot == slot);
                for function in self.state.functions.iter().filter(|_| !switching) {
                    for subnet in &function.subnet_ids {
                        assert_ne!(
                            self.default_target(subnet),
                            Some(RouteTarget::NatGateway(nat_gateway.clone())),
                            "deleting {nat_gateway} cuts off function {}, which runs in {subnet}",
                            function.name
                        );
                    }
                }
                // The step completes once the gateway is `deleted`: its address is free.
                let nat = self.state.nat_gateways.remove(index);
                for address in &mut self.state.addresses {
                    if nat.allocation_ids.contains(&address.allocation_id) {
                        address.association_id = None;
                        address.network_interface_id = None;
                    }
                }
                nat.id
            }
            Action::RetainAddress {
                allocation_id,
                pending,
            } => {
                let address = self.address(allocation_id);
                assert_eq!(
                    address.association_id, None,
                    "{allocation_id} is retained while a NAT still uses it"
                );
                address.usage = if *pending {
                    AddressUse::Pending
                } else {
                    AddressUse::Retained
                };
                address.slot = None;
                allocation_id.clone()
            }
            Action::ReleaseAddress { allocation_id } => {
                let address = self.address(allocation_id);
                assert_eq!(
                    address.association_id, None,
                    "AWS refuses to release {allocation_id} while it is associated"
                );
                assert!(!address.adopted, "an adopted address is released");
                self.state
                    .addresses
                    .retain(|a| a.allocation_id != *allocation_id);
                allocation_id.clone()
            }
            Action::ClearLambdaInterfaces { holder } => {
                let id = match holder {
                    InterfaceHolder::Subnet(id) | InterfaceHolder::SecurityGroup(id) => id,
                };
                // While a function is attached its interfaces stay: the bounded wait times out.
                if let Some(function) = self
                    .state
                    .functions
                    .iter()
                    .find(|f| f.subnet_ids.contains(id) || f.security_group_ids.contains(id))
                {
                    panic!(
                        "waiting for Lambda's interfaces in {holder} times out: function {} is still attached",
                        function.name
                    );
                }
                self.interfaces.remove(id);
                id.clone()
            }
            Action::DeleteSubnet { subnet } => {
                assert!(
                    self.state
                        .nat_instances
                        .iter()
                        .all(|i| i.subnet_id != *subnet),
                    "AWS refuses to delete {subnet}: a NAT instance is in it"
                );
                assert!(
                    self.state
                        .nat_gateways
                        .iter()
                        .all(|n| n.subnet_id != *subnet),
                    "AWS refuses to delete {subnet}: a NAT gateway is in it"
                );
                assert!(
                    !self.interfaces.contains(subnet),
                    "AWS refuses to delete {subnet}: Lambda's network interfaces are in it"
                );
                assert!(
                    !self
                        .state
                        .endpoints
                        .iter()
                        .any(|e| e.subnet_ids.contains(subnet)),
                    "AWS refuses to delete {subnet}: an interface endpoint is in it"
                );
                let index = self
                    .state
                    .subnets
                    .iter()
                    .position(|s| s.id == *subnet)
                    .expect("deleting a subnet the account does not hold");
                self.state.subnets.remove(index);
                for table in &mut self.state.route_tables {
                    table.associations.retain(|a| a.subnet_id != *subnet);
                }
                subnet.clone()
            }
            Action::DeleteRouteTable {
                route_table,
                associations,
            } => {
                assert!(
                    !self
                        .state
                        .endpoints
                        .iter()
                        .any(|e| e.route_table_ids.contains(route_table)),
                    "{route_table} still carries a gateway endpoint's route"
                );
                // The executor disassociates what the plan lists, then deletes: what is left must
                // be listed.
                let index = self
                    .state
                    .route_tables
                    .iter()
                    .position(|t| t.id == *route_table)
                    .expect("deleting a route table the account does not hold");
                let left = &self.state.route_tables[index].associations;
                assert!(
                    left.iter().all(|a| associations.contains(&a.id)),
                    "AWS refuses to delete {route_table}: associations {left:?} are not in the plan"
                );
                self.state.route_tables.remove(index).id
            }
            Action::DeleteSecurityGroup { security_group }
                if self.state.nat_security_group.as_ref().map(|g| &g.id)
                    == Some(security_group) =>
            {
                assert!(
                    self.state.nat_instances.is_empty(),
                    "AWS refuses to delete {security_group}: NAT instances use it"
                );
                self.state.nat_security_group = None;
                security_group.clone()
            }
            Action::DeleteSecurityGroup { security_group } => {
                let endpoints_group = &mut self.state.endpoint_security_group;
                let group = if endpoints_group.as_ref().map(|g| &g.id) == Some(security_group) {
                    assert!(
                        !self
                            .state
                            .endpoints
                            .iter()
                            .any(|e| e.kind == EndpointKind::Interface),
                        "AWS refuses to delete {security_group}: interface endpoints use it"
                    );
                    endpoints_group.take()
                } else {
                    let referenced = endpoints_group.as_ref().is_some_and(|g| {
                        g.ingress
                            .iter()
                            .any(|r| r.peer == RulePeer::SecurityGroup(security_group.clone()))
                    });
                    assert!(
                        !referenced,
                        "AWS refuses to delete {security_group}: the endpoints' group refers to it"
                    );
                    self.state.security_group.take()
                };
                assert_eq!(group.map(|g| g.id).as_ref(), Some(security_group));
                assert!(
                    !self.interfaces.contains(security_group),
                    "AWS refuses to delete {security_group}: Lambda's network interfaces use it"
                );
                security_group.clone()
            }
            Action::DeleteInternetGateway {
                internet_gateway,
                vpc,
            } => {
                let extra = self
                    .state
                    .extra_internet_gateways
                    .iter()
                    .position(|g| g.id == *internet_gateway);
                let gateway = match extra {
                    Some(index) => self.state.extra_internet_gateways.remove(index),
                    None => self.state.internet_gateway.take().unwrap(),
                };
                assert_eq!(gateway.id, *internet_gateway);
                assert_eq!(gateway.attached_vpc, *vpc);
                if vpc.is_some() {
                    assert!(
                        self.state.nat_gateways.is_empty() && self.state.nat_instances.is_empty(),
                        "AWS refuses to detach {internet_gateway} while NATs map public IPs"
                    );
                }
                gateway.id
            }
            Action::DeleteVpc { vpc } => {
                let state = &self.state;
                assert!(
                    state.subnets.is_empty()
                        && state.route_tables.is_empty()
                        && state.security_group.is_none()
                        && state.nat_gateways.is_empty()
                        && state.nat_instances.is_empty()
                        && state.nat_security_group.is_none()
                        && state.endpoint_security_group.is_none()
                        && state.endpoints.is_empty(),
                    "AWS refuses to delete {vpc}: it still holds {state:#?}"
                );
                assert!(
                    state
                        .internet_gateway
                        .as_ref()
                        .and_then(|g| g.attached_vpc.as_ref())
                        != Some(vpc),
                    "AWS refuses to delete {vpc}: an internet gateway is attached"
                );
                assert_eq!(self.state.vpc.take().map(|v| v.id).as_ref(), Some(vpc));
                vpc.clone()
            }
            Action::DeleteRole { role, policy_arns } => {
                let observed = self.state.role.take().unwrap();
                assert_eq!(observed.arn, *role);
                let (attached, detached): (BTreeSet<_>, BTreeSet<_>) = (
                    observed.attached_policy_arns.iter().collect(),
                    policy_arns.iter().collect(),
                );
                assert_eq!(
                    attached, detached,
                    "AWS refuses a role with policies attached"
                );
                for function in &self.state.functions {
                    assert_ne!(
                        function.role_arn, *role,
                        "deleting {role} breaks function {}",
                        function.name
                    );
                }
                role.clone()
            }
        }
    }

    fn address(&mut self, allocation_id: &str) -> &mut ObservedAddress {
        self.state
            .addresses
            .iter_mut()
            .find(|a| a.allocation_id == allocation_id)
            .expect("an address the account does not hold")
    }

    /// The functions' or the endpoints' security group.
    fn group(&mut self, id: &str) -> &mut ObservedSecurityGroup {
        let state = &mut self.state;
        state
            .security_group
            .iter_mut()
            .chain(state.endpoint_security_group.iter_mut())
            .find(|g| g.id == id)
            .expect("no such security group")
    }

    fn hold_interfaces(&mut self, function: &ObservedFunction) {
        let holders = function
            .subnet_ids
            .iter()
            .chain(&function.security_group_ids);
        self.interfaces.extend(holders.cloned());
    }

    /// Where a subnet's 0.0.0.0/0 route goes, if it has one that works.
    fn default_target(&self, subnet: &str) -> Option<RouteTarget> {
        let table = self.state.route_tables.iter().find(|t| t.serves(subnet))?;
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
        // The executor sends Ipv6AllowedForDualStack=false with every VpcConfig.
        deployed.ipv6_allowed_for_dual_stack = false;
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
        .chain(account.security_group.iter().map(|g| &g.id))
        .chain(account.nat_security_group.iter().map(|g| &g.id))
        .chain(account.nat_instances.iter().map(|i| &i.id))
        .chain(account.endpoint_security_group.iter().map(|g| &g.id))
        .chain(account.endpoints.iter().map(|e| &e.id))
        .chain(account.nat_interfaces.iter().map(|i| &i.id))
        .chain(account.nat_launch_templates.iter().map(|t| &t.id))
        .chain(account.nat_groups.iter().map(|g| &g.name))
        .chain(
            account
                .addresses
                .iter()
                .filter_map(|a| a.association_id.as_ref()),
        );
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
                Ref::Step(id) => Some(id),
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
            assert!(
                documented(&step.action, earlier),
                "step {index} waits for step {before:?} for no reason: {plan:#?}"
            );
        }
    }
}

/// Whether the planner documents that `step` waits for `earlier` (beyond using its result).
fn documented(step: &Action, earlier: &Action) -> bool {
    if documented_for_groups(step, earlier) {
        return true;
    }
    // A self-healing NAT's group and interface go where a NAT instance goes.
    let as_instance = |action: &Action| {
        matches!(
            action,
            Action::DeleteNatGroup { .. } | Action::DeleteNatInterface { .. }
        )
        .then(|| Action::TerminateNatInstance {
            instance: String::new(),
        })
    };
    if let Some(instance) = as_instance(step) {
        return documented(&instance, earlier);
    }
    if let Some(instance) = as_instance(earlier) {
        return documented(step, &instance);
    }
    {
        {
            match (step, earlier) {
                // An old NAT a switch retires goes once no function runs where it served
                // (`routes.rs`, `retire_old_nats`).
                (
                    Action::DisassociateAddress { .. },
                    Action::UpdateFunctionConfiguration { .. }
                    | Action::DetachFunction { .. }
                    | Action::DeleteFunction { .. },
                ) => true,
                // A NAT instance nothing routes to goes before its slot's new gateway
                // (`nat_instance.rs`, `terminate_unrouted`): EC2 gives an instance in a public
                // subnet no way out without a public IPv4 address, so one launched without it
                // beside a gateway holding the slot's Elastic IP could never get ready.
                (Action::CreateNatGateway { .. }, Action::TerminateNatInstance { .. }) => true,
                // No NAT in an AZ Lambda refuses: a new NAT after the functions created first.
                (
                    Action::CreateNatGateway { .. }
                    | Action::LaunchNatInstance { .. }
                    | Action::CreateNatInterface { .. },
                    Action::CreateFunction { .. },
                ) => true,
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
                // The role goes after Lambda's interfaces: Lambda deletes them with it.
                (Action::DeleteRole { .. }, Action::ClearLambdaInterfaces { .. }) => true,
                // A function is waited for once created; a Pending one before it is updated.
                (Action::AwaitFunctionActive { name }, Action::CreateFunction { function, .. })
                | (
                    Action::UpdateFunctionConfiguration { function, .. }
                    | Action::UpdateFunctionCode { function },
                    Action::AwaitFunctionActive { name },
                ) => function.name == *name,
                // A Failed function is deleted before it is created again (function states).
                (Action::CreateFunction { function, .. }, Action::DeleteFunction { name }) => {
                    function.name == *name
                }
                (
                    Action::UpdateFunctionConfiguration { .. },
                    Action::CreateRouteTable { .. }
                    | Action::CreateRoute { .. }
                    | Action::ReplaceRoute { .. }
                    | Action::DeleteRoute { .. }
                    | Action::AssociateRouteTable { .. },
                ) => true,
                // A route kept to a NAT the plan repairs: functions move in once it is ready
                // (its address back on it included).
                (
                    Action::UpdateFunctionConfiguration { .. },
                    Action::AwaitNatInstanceReady { .. }
                    | Action::AwaitNatGroupReady { .. }
                    | Action::AssociateAddress { .. },
                ) => true,
                (
                    Action::UpdateFunctionCode { function: code },
                    Action::UpdateFunctionConfiguration {
                        function: config, ..
                    },
                ) => code.name == config.name,
                // Removal: functions leave, then NATs and interfaces go, then what held them.
                (
                    Action::DeleteNatGateway { .. }
                    | Action::ClearLambdaInterfaces { .. }
                    | Action::DeleteRouteTable { .. },
                    Action::UpdateFunctionConfiguration { .. }
                    | Action::DetachFunction { .. }
                    | Action::DeleteFunction { .. },
                ) => true,
                (
                    Action::RetainAddress { .. }
                    | Action::ReleaseAddress { .. }
                    | Action::DeleteSubnet { .. }
                    | Action::DeleteInternetGateway { .. },
                    Action::DeleteNatGateway { .. },
                ) => true,
                // A NAT that loses its AZs (`nats` lowered, isolated) goes once no route uses it.
                (
                    Action::DeleteNatGateway { .. } | Action::TerminateNatInstance { .. },
                    Action::ReplaceRoute { .. } | Action::DeleteRoute { .. },
                ) => true,
                (
                    Action::DeleteSubnet { .. } | Action::DeleteSecurityGroup { .. },
                    Action::ClearLambdaInterfaces { .. },
                ) => true,
                (
                    Action::DeleteRouteTable { .. },
                    Action::DeleteSubnet { .. } | Action::DeleteRouteTable { .. },
                ) => true,
                (
                    Action::DeleteVpc { .. },
                    Action::DeleteSubnet { .. }
                    | Action::DeleteRouteTable { .. }
                    | Action::DeleteSecurityGroup { .. }
                    | Action::DeleteInternetGateway { .. },
                ) => true,
                (Action::DeleteRole { .. }, Action::DeleteFunction { .. }) => true,
                // NAT instances: routed once the address is on and the check off; a switch
                // retires the old NAT once the route moved, and frees the address first.
                (
                    Action::CreateRoute {
                        via: RouteVia::NatInstance(_),
                        ..
                    }
                    | Action::ReplaceRoute {
                        via: RouteVia::NatInstance(_),
                        ..
                    },
                    Action::DisableSourceDestCheck { .. }
                    | Action::AssociateAddress { .. }
                    | Action::AwaitNatInstanceReady { .. },
                ) => true,
                // Ready once it has its check off and a way out; the gateway it replaces goes
                // only once it is ready.
                (
                    Action::AwaitNatInstanceReady { .. },
                    Action::DisableSourceDestCheck { .. }
                    | Action::AssociateAddress { .. }
                    | Action::StartNatInstance { .. },
                ) => true,
                (Action::DeleteNatGateway { .. }, Action::AwaitNatInstanceReady { .. }) => true,
                // An instance's automatic public IP is off before its Elastic IP leaves it.
                (Action::DisassociateAddress { .. }, Action::DropPublicIp { .. }) => true,
                (
                    Action::DeleteNatGateway { .. } | Action::TerminateNatInstance { .. },
                    Action::CreateRoute { .. }
                    | Action::CreateRouteTable { .. }
                    | Action::AssociateRouteTable { .. },
                ) => true,
                (Action::AssociateAddress { .. }, Action::DeleteNatGateway { .. }) => true,
                (Action::CreateNatGateway { .. }, Action::DisassociateAddress { .. }) => true,
                (
                    Action::TerminateNatInstance { .. },
                    Action::UpdateFunctionConfiguration { .. }
                    | Action::DetachFunction { .. }
                    | Action::DeleteFunction { .. },
                ) => true,
                (
                    Action::RetainAddress { .. }
                    | Action::ReleaseAddress { .. }
                    | Action::DeleteSubnet { .. }
                    | Action::DeleteSecurityGroup { .. }
                    | Action::DeleteInternetGateway { .. },
                    Action::TerminateNatInstance { .. },
                ) => true,
                // Restricted egress: authorize before revoking; functions join the group after.
                (Action::RevokeEgress { .. }, Action::AuthorizeEgress { .. }) => true,
                (
                    Action::CreateFunction { .. } | Action::UpdateFunctionConfiguration { .. },
                    Action::AuthorizeEgress { .. } | Action::RevokeEgress { .. },
                ) => true,
                // Endpoints: private DNS after the VPC's DNS and the group's rule; removal of what
                // an endpoint sits in after the endpoint.
                (
                    Action::CreateInterfaceEndpoint { .. },
                    Action::EnableVpcDns { .. } | Action::AdmitHttpsFrom { .. },
                ) => true,
                (
                    Action::DeleteEndpoint { .. },
                    Action::UpdateFunctionConfiguration { .. }
                    | Action::DetachFunction { .. }
                    | Action::DeleteFunction { .. },
                ) => true,
                (
                    Action::DeleteNatGateway { .. }
                    | Action::ClearLambdaInterfaces { .. }
                    | Action::DeleteRouteTable { .. }
                    | Action::DeleteSecurityGroup { .. }
                    | Action::DeleteVpc { .. },
                    Action::DeleteEndpoint { .. }
                    | Action::ModifyInterfaceEndpoint { .. }
                    | Action::ModifyGatewayEndpoint { .. },
                ) => true,
                // A table moves to the kept gateway endpoint once its old endpoint is gone: AWS
                // refuses a second route to the service's prefix list in it. A failed endpoint's
                // replacement is made once it is gone (the same for private DNS).
                (
                    Action::ModifyGatewayEndpoint { .. }
                    | Action::CreateGatewayEndpoint { .. }
                    | Action::CreateInterfaceEndpoint { .. },
                    Action::DeleteEndpoint { .. },
                ) => true,
                (
                    Action::DeleteSecurityGroup { .. } | Action::DeleteRouteTable { .. },
                    Action::DeleteSecurityGroup { .. },
                ) => true,
                // Freeing an address: its association goes after what its NAT waited for (the
                // NAT's deletion included), and whatever takes the address next waits for that.
                (Action::DisassociateAddress { .. }, Action::DeleteNatGateway { .. }) => true,
                (Action::DisassociateAddress { .. }, other) => documented(
                    &Action::TerminateNatInstance {
                        instance: String::new(),
                    },
                    other,
                ),
                (
                    Action::RetainAddress { .. }
                    | Action::ReleaseAddress { .. }
                    | Action::AssociateAddress { .. }
                    | Action::TerminateNatInstance { .. },
                    Action::DisassociateAddress { .. },
                ) => true,
                _ => false,
            }
        }
    }
}

/// The orderings `planner/nat_group.rs` documents: the group after its address is on the
/// interface, the wait after everything of the slot's NAT, the route after the wait; removal of
/// the template, the interface and the profile after the group.
fn documented_for_groups(step: &Action, earlier: &Action) -> bool {
    match (step, earlier) {
        (Action::CreateNatGroup { .. }, Action::AssociateInterfaceAddress { .. }) => true,
        (
            Action::AssociateInterfaceAddress { .. },
            Action::DisassociateAddress { .. } | Action::CreateNatGroup { .. },
        ) => true,
        // From a plain NAT instance: its address leaves it once the group's instance launches.
        (Action::DisassociateAddress { .. }, Action::CreateNatGroup { .. }) => true,
        // From a NAT gateway: it goes once every switching slot's group instance has attached
        // its interface, and the address goes on the interface once the gateway is deleted.
        (
            Action::AwaitNatInterfaceAttached { .. },
            Action::CreateNatInterface { .. }
            | Action::DeleteNatLaunchTemplate { .. }
            | Action::CreateNatLaunchTemplate { .. }
            | Action::CreateNatGroup { .. },
        ) => true,
        (
            Action::DeleteNatGateway { .. } | Action::AwaitNatGroupReady { .. },
            Action::AwaitNatInterfaceAttached { .. },
        ) => true,
        (Action::AssociateInterfaceAddress { .. }, Action::DeleteNatGateway { .. }) => true,
        // To a plain NAT instance: the address leaves the interface once every switching
        // slot's instance is ready.
        (Action::DisassociateAddress { .. }, Action::AwaitNatInstanceReady { .. }) => true,
        (
            Action::AwaitNatGroupReady { .. },
            Action::CreateNatInterface { .. }
            | Action::AssociateInterfaceAddress { .. }
            | Action::DeleteNatLaunchTemplate { .. }
            | Action::CreateNatLaunchTemplate { .. }
            | Action::CreateNatGroup { .. }
            | Action::DisassociateAddress { .. }
            | Action::DropPublicIp { .. },
        ) => true,
        (
            Action::CreateRoute {
                via: RouteVia::NatInterface(_),
                ..
            }
            | Action::ReplaceRoute {
                via: RouteVia::NatInterface(_),
                ..
            },
            Action::AwaitNatGroupReady { .. },
        ) => true,
        (
            Action::DeleteNatLaunchTemplate { .. }
            | Action::DeleteNatInterface { .. }
            | Action::DeleteNatProfile { .. },
            Action::DeleteNatGroup { .. },
        ) => true,
        (Action::DeleteNatInterface { .. }, Action::DisassociateAddress { .. }) => true,
        // A stale template is replaced: launch template names are unique in a region
        // (CreateLaunchTemplate: InvalidLaunchTemplateName.AlreadyExistsException).
        (Action::CreateNatLaunchTemplate { .. }, Action::DeleteNatLaunchTemplate { .. }) => true,
        (Action::DeleteNatLaunchTemplate { .. }, other) => documented(
            &Action::TerminateNatInstance {
                instance: String::new(),
            },
            other,
        ),
        _ => false,
    }
}
