//! One graph of a stack's network, built from its plan: what exists or will (each with what the
//! plan does to it), what belongs under what, and where traffic goes. The tree of `plan` and
//! `destroy`, the Mermaid and Graphviz diagrams and the plan's JSON are all drawn from it, so that
//! they cannot disagree about what the network is.

use std::fmt::{self, Display};
use std::net::Ipv4Addr;

use fixedip_core::plan::{Action, AzView, EndpointView, NetworkView, Plan, Status};
use fixedip_core::requirements::EndpointKind;
use fixedip_core::tags;
use ipnet::Ipv4Net;
use serde::{Serialize, Serializer};

use crate::output::{counted, style, styled};

/// A stack's network: nodes in the order the tree lists them, and the edges between them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NetworkGraph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

/// One resource, or a grouping of them (an AZ, the functions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// Stable within the stack, and a valid identifier in Mermaid and dot: `vpc`, `igw`, `az0`,
    /// `pub0`, `nat0`, `eip0`, `priv0`, `rt0`, `sg`, `role`, `fn0`, ...
    pub id: String,
    pub kind: NodeKind,
    /// The node it belongs under; `None` for the VPC and the internet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    pub label: Label,
    /// What the plan does to it; `None` for a grouping or a fact (an AZ, a retained IP).
    pub status: Option<Change>,
    /// The AWS id of what exists already (or what a removed slot is known by).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub az: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidr: Option<Ipv4Net>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ipv4Addr>,
    /// A function's, role's, security group's or endpoint service's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Vpc,
    Internet,
    InternetGateway,
    RouteTable,
    AvailabilityZone,
    PublicSubnet,
    PrivateSubnet,
    NatGateway,
    NatInstance,
    ElasticIp,
    /// A subnet of a network the user runs (`vpc = "vpc-..."`), with the NATs it leaves through.
    YourSubnet,
    /// A slot beyond `azs` that the plan removes.
    RemovedSlot,
    /// A slot beyond `azs` left in place, because a function the plan does not deploy runs in it.
    SurplusSlot,
    RetainedIp,
    SecurityGroup,
    Role,
    GatewayEndpoint,
    InterfaceEndpoint,
    /// The grouping of the functions.
    Functions,
    Function,
}

/// What the plan does to a node; the AWS id, where there is one, is the node's `resource_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Exists as wanted.
    Keep,
    /// Exists, and a step changes it.
    Change,
    /// A step creates it.
    Create,
    /// Waits for a new Elastic IP the user has not allowed yet.
    HeldBack,
    /// Exists, and a step deletes it.
    Delete,
    /// Does not exist, and no step makes it.
    Absent,
}

impl Change {
    fn of(status: &Status) -> (Change, Option<String>) {
        match status {
            Status::Keep(id) => (Change::Keep, Some(id.clone())),
            Status::Change(id) => (Change::Change, Some(id.clone())),
            Status::Create => (Change::Create, None),
            Status::HeldBack => (Change::HeldBack, None),
            Status::Delete(id) => (Change::Delete, Some(id.clone())),
            Status::Absent => (Change::Absent, None),
        }
    }
}

/// Where traffic or attachment goes between two nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub kind: EdgeKind,
    /// A route's destination (`0.0.0.0/0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// A route table sends `destination` from a subnet to a NAT or the internet gateway.
    Route,
    /// A NAT sits in a public subnet.
    PlacedIn,
    /// A function has network interfaces in a private subnet.
    Attached,
    /// The internet gateway leads to the internet.
    Exit,
}

/// A node's text, with the parts a user copies (IPs) marked so that the tree can color them.
/// Serialized, and in the diagrams, it is plain text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Label(Vec<(String, bool)>);

impl Label {
    fn text(text: impl Into<String>) -> Label {
        Label(vec![(text.into(), false)])
    }

    fn and(mut self, text: impl Into<String>) -> Label {
        self.0.push((text.into(), false));
        self
    }

    fn value(mut self, value: impl Display) -> Label {
        self.0.push((value.to_string(), true));
        self
    }

    /// The text with its values in [`style::VALUE`].
    pub fn styled(&self) -> String {
        self.0
            .iter()
            .map(|(text, value)| match value {
                true => styled(style::VALUE, text).to_string(),
                false => text.clone(),
            })
            .collect()
    }
}

impl Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|(text, _)| f.write_str(text))
    }
}

impl Serialize for Label {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The id of the one internet node; diagrams of several stacks share it.
pub const INTERNET: &str = "internet";

impl NetworkGraph {
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|node| node.id == id)
    }

    /// The nodes directly under `id`, in order.
    pub fn children<'g>(&'g self, id: &'g str) -> impl Iterator<Item = &'g Node> + 'g {
        self.nodes
            .iter()
            .filter(move |node| node.parent.as_deref() == Some(id))
    }

    /// The graph of the network the plan leaves behind (or, in a destroy plan, takes down).
    pub fn of(plan: &Plan) -> NetworkGraph {
        let mut graph = Builder::default();
        let network = &plan.network;
        graph.vpc(network);
        graph.existing_subnets(network);
        graph.public_side(network);
        for az in &network.azs {
            graph.az(network, az);
        }
        graph.removed_slots(network);
        graph.surplus_slots(network);
        graph.retained_addresses(network);
        graph.security_groups_and_endpoints(plan);
        graph.role_and_functions(plan);
        graph.routes(network);
        graph.0
    }
}

#[derive(Default)]
struct Builder(NetworkGraph);

impl Builder {
    /// The VPC and the internet beyond it.
    fn vpc(&mut self, network: &NetworkView) {
        let vpc = self.add(
            "vpc",
            NodeKind::Vpc,
            None,
            Label::text(format!("VPC {}", network.vpc.0)),
        );
        vpc.set_status(&network.vpc.1).cidr = Some(network.vpc.0);
        self.add(INTERNET, NodeKind::Internet, None, Label::text("internet"));
    }

    /// A network the user runs: its qualifying subnets and their NATs, read, never changed.
    fn existing_subnets(&mut self, network: &NetworkView) {
        for (index, subnet) in network.existing.iter().flat_map(|e| &e.subnets).enumerate() {
            let mut label = Label::text(format!(
                "your subnet {} ({}): 0.0.0.0/0 → ",
                subnet.id, subnet.availability_zone
            ));
            for (n, exit) in subnet.exits.iter().enumerate() {
                if n > 0 {
                    label = label.and(", ");
                }
                label = label.value(exit.ip).and(format!(" ({})", exit.nat));
            }
            let node = self.add(
                format!("subnet{index}"),
                NodeKind::YourSubnet,
                Some("vpc"),
                label,
            );
            node.resource_id = Some(subnet.id.clone());
            node.az = Some(subnet.availability_zone.clone());
        }
    }

    /// The stack's own internet gateway and public route table.
    fn public_side(&mut self, network: &NetworkView) {
        let own_network = network.existing.is_none();
        if own_network && network.internet_gateway != Status::Absent {
            let label = Label::text("internet gateway");
            self.add("igw", NodeKind::InternetGateway, Some("vpc"), label)
                .set_status(&network.internet_gateway);
        }
        if own_network && network.public_route_table != Status::Absent {
            let label = Label::text("public route table: 0.0.0.0/0 → internet gateway");
            self.add("public_rt", NodeKind::RouteTable, Some("vpc"), label)
                .set_status(&network.public_route_table);
        }
    }

    /// Slots the plan removes.
    fn removed_slots(&mut self, network: &NetworkView) {
        for removed in &network.removed_slots {
            let az = removed.az.as_deref().unwrap_or("unknown AZ");
            let what = match &removed.nat_gateway {
                Some(nat) => format!("its subnets, route table and NAT {nat}"),
                None => "its subnets and route table".to_owned(),
            };
            let gone = Status::Delete(
                removed
                    .nat_gateway
                    .clone()
                    .unwrap_or_else(|| format!("slot {}", removed.slot)),
            );
            let label = Label::text(format!("AZ {az} (slot {}): {what}", removed.slot));
            let id = format!("removed{}", removed.slot);
            let node = self.add(id, NodeKind::RemovedSlot, Some("vpc"), label);
            node.set_status(&gone).slot = Some(removed.slot);
            node.az = removed.az.clone();
        }
    }

    /// Slots beyond `azs`, left in place.
    fn surplus_slots(&mut self, network: &NetworkView) {
        for surplus in &network.surplus_slots {
            let az = surplus.az.as_deref().unwrap_or("unknown AZ");
            let mut label = Label::text(format!(
                "slot {} in {az}, beyond `azs`: left in place",
                surplus.slot
            ));
            if let Some((_, ip)) = &surplus.address {
                label = label.and(", Elastic IP ").value(ip);
            }
            let id = format!("surplus{}", surplus.slot);
            let node = self.add(id, NodeKind::SurplusSlot, Some("vpc"), label);
            node.slot = Some(surplus.slot);
            node.az = surplus.az.clone();
            node.resource_id = surplus.nat_gateway.clone();
            node.ip = surplus.address.as_ref().map(|(_, ip)| *ip);
        }
    }

    /// Elastic IPs kept after their slot went.
    fn retained_addresses(&mut self, network: &NetworkView) {
        for (index, (allocation_id, ip)) in network.retained_addresses.iter().enumerate() {
            let label = Label::text("retained Elastic IP ")
                .value(ip)
                .and(format!(" ({allocation_id})"));
            let node = self.add(
                format!("retained{index}"),
                NodeKind::RetainedIp,
                Some("vpc"),
                label,
            );
            node.resource_id = Some(allocation_id.clone());
            node.ip = Some(*ip);
        }
    }

    /// The functions' group, the NAT instances' group, the endpoints and their group.
    fn security_groups_and_endpoints(&mut self, plan: &Plan) {
        let network = &plan.network;
        let name = tags::security_group_name(&plan.stack);
        let label = Label::text(format!("security group {name} (no inbound rules)"));
        let node = self.add("sg", NodeKind::SecurityGroup, Some("vpc"), label);
        node.set_status(&network.security_group).name = Some(name);
        if let Some(status) = network
            .nat_security_group
            .as_ref()
            .filter(|s| **s != Status::Absent)
        {
            let name = tags::nat_security_group_name(&plan.stack);
            let label = Label::text(format!("security group {name} (NAT instances)"));
            let node = self.add("nat_sg", NodeKind::SecurityGroup, Some("vpc"), label);
            node.set_status(status).name = Some(name);
        }
        for endpoint in &network.endpoints {
            self.endpoint(endpoint);
        }
        let endpoint_group = network.endpoint_security_group.as_ref();
        if let Some(status) = endpoint_group.filter(|s| **s != Status::Absent) {
            let name = tags::endpoint_security_group_name(&plan.stack);
            let label = Label::text(format!("security group {name} (interface endpoints)"));
            let node = self.add("endpoint_sg", NodeKind::SecurityGroup, Some("vpc"), label);
            node.set_status(status).name = Some(name);
        }
    }

    /// The execution role and the functions, attached to every private subnet.
    fn role_and_functions(&mut self, plan: &Plan) {
        let network = &plan.network;
        if let Some(role) = &network.role {
            let name = tags::role_name(&plan.stack, &plan.region);
            let label = Label::text(format!("execution role {name}"));
            self.add("role", NodeKind::Role, Some("vpc"), label)
                .set_status(role)
                .name = Some(name);
        }
        let label = Label::text("functions, in the private subnets");
        self.add("functions", NodeKind::Functions, Some("vpc"), label);
        for (index, (name, status)) in network.functions.iter().enumerate() {
            let label = Label::text(format!("λ {name}{}", function_detail(plan, name)));
            let id = format!("fn{index}");
            self.add(id.clone(), NodeKind::Function, Some("functions"), label)
                .set_status(status)
                .name = Some(name.clone());
            for az in &network.azs {
                self.edge(&id, &format!("priv{}", az.slot), EdgeKind::Attached, None);
            }
        }
    }

    fn add(
        &mut self,
        id: impl Into<String>,
        kind: NodeKind,
        parent: Option<&str>,
        label: Label,
    ) -> &mut Node {
        self.0.nodes.push(Node {
            id: id.into(),
            kind,
            parent: parent.map(str::to_owned),
            label,
            status: None,
            resource_id: None,
            az: None,
            slot: None,
            cidr: None,
            ip: None,
            name: None,
        });
        self.0.nodes.last_mut().expect("just pushed")
    }

    fn edge(&mut self, from: &str, to: &str, kind: EdgeKind, destination: Option<&str>) {
        self.0.edges.push(Edge {
            from: from.to_owned(),
            to: to.to_owned(),
            kind,
            destination: destination.map(str::to_owned),
        });
    }

    fn has(&self, id: &str) -> bool {
        self.0.node(id).is_some()
    }

    /// An AZ: its public subnet with the NAT and its Elastic IP (when it has or had one), its
    /// private subnet and that subnet's route table.
    fn az(&mut self, network: &NetworkView, az: &AzView) {
        let n = az.slot;
        let group = format!("az{n}");
        let label = Label::text(format!("AZ {} (slot {n})", az.az));
        let node = self.add(
            group.clone(),
            NodeKind::AvailabilityZone,
            Some("vpc"),
            label,
        );
        node.az = Some(az.az.clone());
        node.slot = Some(n);
        if az.public_subnet.1 != Status::Absent || az.nat_gateway != Status::Absent {
            let label = Label::text(format!("public subnet {}", az.public_subnet.0));
            let public = format!("pub{n}");
            let node = self.add(public.clone(), NodeKind::PublicSubnet, Some(&group), label);
            node.set_status(&az.public_subnet.1).cidr = Some(az.public_subnet.0);
            node.slot = Some(n);
            let (kind, label) = match &network.nat_instance_type {
                Some(instance_type) => (
                    NodeKind::NatInstance,
                    format!("NAT instance ({instance_type})"),
                ),
                None => (NodeKind::NatGateway, "NAT gateway".to_owned()),
            };
            let nat = format!("nat{n}");
            let node = self.add(nat.clone(), kind, Some(&public), Label::text(label));
            node.set_status(&az.nat_gateway).slot = Some(n);
            if az.address.1 != Status::Absent {
                let label = match az.address.0 {
                    Some(ip) => Label::text("Elastic IP ").value(ip),
                    None => Label::text(address_label(&az.address.1)),
                };
                let node = self.add(format!("eip{n}"), NodeKind::ElasticIp, Some(&nat), label);
                node.set_status(&az.address.1).ip = az.address.0;
                node.slot = Some(n);
            }
        }
        let label = Label::text(format!("private subnet {}", az.private_subnet.0));
        let private = format!("priv{n}");
        let node = self.add(
            private.clone(),
            NodeKind::PrivateSubnet,
            Some(&group),
            label,
        );
        node.set_status(&az.private_subnet.1).cidr = Some(az.private_subnet.0);
        node.slot = Some(n);
        let label = Label::text(private_route_label(network, az));
        let node = self.add(
            format!("rt{n}"),
            NodeKind::RouteTable,
            Some(&private),
            label,
        );
        node.set_status(&az.private_route_table).slot = Some(n);
    }

    /// A VPC endpoint: a gateway endpoint of one slot (as fixedip made them before) under the route
    /// table it adds its route to, any other under the VPC. What neither exists nor is made is left out.
    fn endpoint(&mut self, endpoint: &EndpointView) {
        if endpoint.status == Status::Absent {
            return;
        }
        let service = endpoint.service.to_string();
        let id = match endpoint.slot {
            Some(slot) => format!("endpoint_{}{slot}", identifier(&service)),
            None => format!("endpoint_{}", identifier(&service)),
        };
        let (kind, parent, label) = match endpoint.kind {
            EndpointKind::Gateway => {
                let table = endpoint
                    .slot
                    .map(|slot| format!("rt{slot}"))
                    .filter(|table| self.has(table));
                // One endpoint serves every private route table; one per slot was made before.
                let label = match (endpoint.slot, &endpoint.status) {
                    (None, Status::Delete(_)) | (Some(_), _) => {
                        format!("gateway endpoint {service}")
                    }
                    (None, _) => format!(
                        "gateway endpoint {service}, on {}",
                        counted(endpoint.azs as usize, "private route table")
                    ),
                };
                (NodeKind::GatewayEndpoint, table, label)
            }
            EndpointKind::Interface => {
                let label = format!(
                    "interface endpoint {service}, in {}",
                    counted(endpoint.azs as usize, "AZ")
                );
                (NodeKind::InterfaceEndpoint, None, label)
            }
        };
        let parent = parent.unwrap_or_else(|| "vpc".to_owned());
        let node = self.add(id, kind, Some(&parent), Label::text(label));
        node.set_status(&endpoint.status).name = Some(service);
        node.slot = endpoint.slot;
    }

    /// Where traffic goes: each private subnet to the NAT that carries it, each NAT's public
    /// subnet to the internet gateway, the gateway to the internet. An isolated stack has none.
    fn routes(&mut self, network: &NetworkView) {
        let isolated = is_isolated(network);
        for az in &network.azs {
            let n = az.slot;
            let via = az.nat_slot.unwrap_or(n);
            if !isolated && self.has(&format!("nat{via}")) {
                let (private, nat) = (format!("priv{n}"), format!("nat{via}"));
                self.edge(&private, &nat, EdgeKind::Route, Some("0.0.0.0/0"));
            }
            let (nat, public) = (format!("nat{n}"), format!("pub{n}"));
            if self.has(&nat) {
                self.edge(&nat, &public, EdgeKind::PlacedIn, None);
                if self.has("igw") {
                    self.edge(&public, "igw", EdgeKind::Route, Some("0.0.0.0/0"));
                }
            }
        }
        if self.has("igw") {
            self.edge("igw", INTERNET, EdgeKind::Exit, None);
        }
    }
}

impl Node {
    fn set_status(&mut self, status: &Status) -> &mut Node {
        let (change, id) = Change::of(status);
        self.status = Some(change);
        self.resource_id = id;
        self
    }
}

/// Where an AZ's private subnet sends 0.0.0.0/0: its own NAT, another AZ's (`nats` fewer than
/// `azs`), or nowhere (isolated).
fn private_route_label(network: &NetworkView, az: &AzView) -> String {
    let nat = match network.nat_instance_type {
        Some(_) => "NAT instance",
        None => "NAT gateway",
    };
    match az.nat_slot {
        Some(slot) if slot != az.slot => {
            let other = network.azs.iter().find(|other| other.slot == slot);
            let name = other.map_or("another AZ", |other| other.az.as_str());
            format!("route table: 0.0.0.0/0 → {nat} in {name} (slot {slot}, shared)")
        }
        None if is_isolated(network) => "route table: no route out (isolated)".to_owned(),
        _ => format!("route table: 0.0.0.0/0 → {nat} in {}", az.az),
    }
}

/// `nat = "none"`: no internet gateway once the plan is applied, and no AZ routed through a NAT.
pub fn is_isolated(network: &NetworkView) -> bool {
    !network.internet_gateway.exists_after()
        && !network.azs.is_empty()
        && network.azs.iter().all(|az| az.nat_slot.is_none())
}

/// An AZ's Elastic IP whose address is not known yet. Offline, an address from `ips = [...]` is
/// known by its allocation id only; its IP shows when planning against the account.
fn address_label(status: &Status) -> String {
    match status {
        Status::Create => "Elastic IP (new address)".to_owned(),
        Status::Change(id) | Status::Keep(id) => format!("Elastic IP {id} (from `ips`)"),
        Status::HeldBack => "Elastic IP (new address, held back)".to_owned(),
        Status::Delete(id) => format!("Elastic IP {id}"),
        Status::Absent => "no Elastic IP".to_owned(),
    }
}

/// " (arm64, 128 MB, 30 s)" for a function the plan creates or changes; nothing for one kept.
fn function_detail(plan: &Plan, name: &str) -> String {
    plan.steps
        .iter()
        .filter_map(|step| match &step.action {
            Action::CreateFunction { function, .. }
            | Action::UpdateFunctionConfiguration { function, .. }
            | Action::UpdateFunctionCode { function } => Some(function),
            _ => None,
        })
        .find(|function| function.name == name)
        .map(|f| {
            format!(
                " ({}, {} MB, {} s)",
                f.architecture, f.memory_mb, f.timeout_s
            )
        })
        .unwrap_or_default()
}

/// `secretsmanager` stays, `ecr.api` becomes `ecr_api`: a name fit for a node id.
fn identifier(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}
