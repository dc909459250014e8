//! The stack's view of the network: from everything a reading by the stack's tags found
//! ([`Network`]), what is the stack's and what each thing serves, as the planner reads it
//! ([`ObservedState`]). Pure: the reader only describes, this decides.
//!
//! - A resource is the stack's when it carries `fixedip:stack = <stack>` and the component tag of
//!   its kind; subnets, NAT gateways and instances also need their `fixedip:slot` tag. Addresses
//!   named by `ips = [...]` count whatever their tags.
//! - NAT gateways and NAT instances count in the stack's VPC only, and not once `deleted` or
//!   `terminated` (AWS lists those for a while); endpoints not once `deleted`.
//! - Route tables keep their IPv4 routes: the only ones fixedip makes or replaces (the verifier
//!   reads every route from the model).
//! - One internet gateway is the stack's: the one attached to its VPC; with none attached, the
//!   lowest id among those attached nowhere (a rerun attaches it). The others are
//!   `extra_internet_gateways`, which the planner deletes. Two VPCs, two gateways attached to the
//!   VPC, or two security groups of one kind cannot be told apart: [`ViewError`].
//! - An address associated with a NAT gateway that is `deleted` (and with nothing live of the
//!   stack) has a stale association: AWS drops it with the gateway, the emulator keeps it
//!   ([`ObservedAddress::stale_association`]); the planner disassociates it before it reuses the
//!   address.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::Retired;
use super::{
    AddressUse, NatState, ObservedAddress, ObservedEndpoint, ObservedInternetGateway,
    ObservedNatGateway, ObservedNatInstance, ObservedRoute, ObservedRouteTable,
    ObservedSecurityGroup, ObservedState, ObservedSubnet, ObservedVpc, Slot, Tier,
};
use crate::network::{EndpointType, InstanceState, Network, RouteDestination, SecurityGroup, Tags};
use crate::requirements::{AllocationId, Endpoint, EndpointKind, StackName};
use crate::tags::{self, Component};

/// What makes a reading impossible to turn into one stack: a choice that is not fixedip's to
/// make silently.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// Two or more VPCs tagged as the stack's (sorted ids): everything else hangs off the VPC.
    #[error("stack `{stack}` has {} VPCs tagged as its own: {}", vpcs.len(), vpcs.join(", "))]
    DuplicateVpcs { stack: String, vpcs: Vec<String> },
    /// Two of a kind the stack has one of (sorted ids).
    #[error("stack `{stack}` has {} {component}s tagged as its own: {}", ids.len(), ids.join(", "))]
    Duplicate {
        stack: String,
        component: &'static str,
        ids: Vec<String>,
    },
    /// AWS described an address of the stack without its public IPv4 address.
    #[error("Elastic IP {allocation_id} has no public IPv4 address")]
    AddressWithoutIp { allocation_id: String },
}

/// The stack's resources in `network`, read by its tags in `region`. `adopted`: the addresses
/// `ips = [...]` names, which count as the stack's whatever their tags. Only the fields of
/// [`ObservedState`] a reading by tags fills are set; the AZs, the role, the functions, the
/// quota and a network the user runs are the observer's to add.
pub fn stack_view(
    stack: &StackName,
    region: &str,
    adopted: &[AllocationId],
    network: &Network,
) -> Result<ObservedState, ViewError> {
    let view = View { stack, network };
    let vpc = view.vpc()?;
    let vpc_id = vpc.as_ref().map(|v| v.id.as_str());
    let (internet_gateway, extra_internet_gateways) = view.internet_gateways(vpc_id)?;
    let nat_gateways = view.nat_gateways(vpc_id);
    let nat_instances = view.nat_instances(vpc_id);
    let retired = Retired {
        endpoints: view.retired_endpoints(region),
        ..view.retired(vpc_id)
    };
    let addresses = view.addresses(adopted, &nat_gateways, &nat_instances)?;
    let security_group = view.single_group(Component::SecurityGroup, "security group")?;
    let endpoint_security_group =
        view.single_group(Component::EndpointSecurityGroup, "endpoint security group")?;
    // Never duplicated by a retry (the NAT instances' group is made once per plan): the lowest id.
    let nat_security_group = view
        .groups(Component::NatSecurityGroup)
        .min_by(|a, b| a.id.cmp(&b.id))
        .map(observed_group);
    Ok(ObservedState {
        vpc,
        internet_gateway,
        extra_internet_gateways,
        subnets: view.subnets(),
        addresses,
        nat_gateways,
        route_tables: view.route_tables(),
        security_group,
        endpoint_security_group,
        endpoints: view.endpoints(region),
        nat_instances,
        nat_security_group,
        retired,
        ..ObservedState::default()
    })
}

struct View<'a> {
    stack: &'a StackName,
    network: &'a Network,
}

fn tag<'t>(tags: &'t Tags, key: &str) -> Option<&'t str> {
    tags.get(key).map(String::as_str)
}

fn slot_tag(tags: &Tags) -> Option<Slot> {
    tag(tags, tags::SLOT).and_then(|s| s.parse().ok())
}

fn component_tag(tags: &Tags) -> Option<Component> {
    tag(tags, tags::COMPONENT).and_then(Component::parse)
}

fn observed_group(group: &SecurityGroup) -> ObservedSecurityGroup {
    ObservedSecurityGroup {
        id: group.id.clone(),
        egress: group.egress.clone(),
        ingress: group.ingress.clone(),
    }
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

impl View<'_> {
    fn ours(&self, tags: &Tags) -> bool {
        tag(tags, tags::STACK) == Some(self.stack.as_str())
    }

    fn is(&self, tags: &Tags, component: Component) -> bool {
        self.ours(tags) && component_tag(tags) == Some(component)
    }

    fn vpc(&self) -> Result<Option<ObservedVpc>, ViewError> {
        let vpcs: Vec<_> = self
            .network
            .vpcs
            .iter()
            .filter(|v| self.is(&v.tags, Component::Vpc))
            .collect();
        if vpcs.len() > 1 {
            return Err(ViewError::DuplicateVpcs {
                stack: self.stack.to_string(),
                vpcs: sorted(vpcs.iter().map(|v| v.id.clone()).collect()),
            });
        }
        Ok(vpcs.first().map(|v| ObservedVpc {
            id: v.id.clone(),
            cidr: v.cidr,
            dns_support: v.dns_support.unwrap_or(false),
            dns_hostnames: v.dns_hostnames.unwrap_or(false),
        }))
    }

    /// The stack's internet gateway, and the others tagged as its own.
    fn internet_gateways(
        &self,
        vpc: Option<&str>,
    ) -> Result<
        (
            Option<ObservedInternetGateway>,
            Vec<ObservedInternetGateway>,
        ),
        ViewError,
    > {
        let mut gateways: Vec<ObservedInternetGateway> = self
            .network
            .internet_gateways
            .iter()
            .filter(|g| self.is(&g.tags, Component::InternetGateway))
            .map(|g| ObservedInternetGateway {
                id: g.id.clone(),
                // Any attachment, whatever its state: one `attaching` must not be attached twice.
                attached_vpc: g.attachments.first().map(|a| a.vpc_id.clone()),
            })
            .collect();
        gateways.sort_by(|a, b| a.id.cmp(&b.id));
        let attached_here =
            |g: &ObservedInternetGateway| vpc.is_some() && g.attached_vpc.as_deref() == vpc;
        let attached: Vec<String> = gateways
            .iter()
            .filter(|g| attached_here(g))
            .map(|g| g.id.clone())
            .collect();
        if attached.len() > 1 {
            return Err(ViewError::Duplicate {
                stack: self.stack.to_string(),
                component: "internet gateway",
                ids: attached,
            });
        }
        let chosen = gateways
            .iter()
            .position(attached_here)
            .or_else(|| gateways.iter().position(|g| g.attached_vpc.is_none()))
            .or(if gateways.is_empty() { None } else { Some(0) });
        Ok(match chosen {
            Some(index) => {
                let gateway = gateways.remove(index);
                (Some(gateway), gateways)
            }
            None => (None, Vec::new()),
        })
    }

    fn subnets(&self) -> Vec<ObservedSubnet> {
        let mut subnets: Vec<ObservedSubnet> = self
            .network
            .subnets
            .iter()
            .filter(|s| self.ours(&s.tags))
            .filter_map(|s| {
                let tier = match component_tag(&s.tags)? {
                    Component::PublicSubnet => Tier::Public,
                    Component::PrivateSubnet => Tier::Private,
                    // Tagged with the stack but not as one of its subnets: not ours to plan with.
                    _ => return None,
                };
                Some(ObservedSubnet {
                    id: s.id.clone(),
                    tier,
                    slot: slot_tag(&s.tags)?,
                    az: s.availability_zone.clone(),
                    cidr: s.cidr,
                })
            })
            .collect();
        subnets.sort_by(|a, b| (a.slot, a.tier, &a.id).cmp(&(b.slot, b.tier, &b.id)));
        subnets
    }

    /// The stack's NAT gateways in its VPC, in any state but `deleted`.
    fn nat_gateways(&self, vpc: Option<&str>) -> Vec<ObservedNatGateway> {
        let Some(vpc) = vpc else {
            return Vec::new();
        };
        let mut gateways: Vec<ObservedNatGateway> = self
            .network
            .nat_gateways
            .iter()
            .filter(|n| n.vpc_id == vpc && self.ours(&n.tags))
            // Deleted gateways linger in the listing for about an hour: they are nothing.
            .filter(|n| n.state != NatState::Deleted)
            .filter_map(|n| {
                Some(ObservedNatGateway {
                    id: n.id.clone(),
                    subnet_id: n.subnet_id.clone(),
                    allocation_ids: n.allocation_ids().map(str::to_owned).collect(),
                    state: n.state,
                    slot: slot_tag(&n.tags)?,
                })
            })
            .collect();
        gateways.sort_by(|a, b| (a.slot, &a.id).cmp(&(b.slot, &b.id)));
        gateways
    }

    /// The stack's dead NAT gateways and instances AWS still lists, by slot (see [`Retired`]).
    fn retired(&self, vpc: Option<&str>) -> Retired {
        let mut retired = Retired::default();
        let Some(vpc) = vpc else {
            return retired;
        };
        for nat in self.network.nat_gateways.iter() {
            let dead = matches!(
                nat.state,
                NatState::Failed | NatState::Deleting | NatState::Deleted
            );
            if let (true, true, Some(slot)) = (nat.vpc_id == vpc, dead, slot_tag(&nat.tags)) {
                if self.ours(&nat.tags) {
                    *retired.nat_gateways.entry(slot).or_default() += 1;
                }
            }
        }
        for instance in self.network.instances.iter() {
            let dead = matches!(
                instance.state,
                InstanceState::ShuttingDown | InstanceState::Terminated
            );
            if let (true, true, Some(slot)) =
                (instance.vpc_id == vpc, dead, slot_tag(&instance.tags))
            {
                if self.is(&instance.tags, Component::NatInstance) {
                    *retired.nat_instances.entry(slot).or_default() += 1;
                }
            }
        }
        retired
    }

    /// The stack's NAT instances in its VPC, in any state but `terminated`.
    fn nat_instances(&self, vpc: Option<&str>) -> Vec<ObservedNatInstance> {
        let Some(vpc) = vpc else {
            return Vec::new();
        };
        let mut instances: Vec<ObservedNatInstance> = self
            .network
            .instances
            .iter()
            .filter(|i| i.vpc_id == vpc && self.is(&i.tags, Component::NatInstance))
            .filter(|i| i.state != InstanceState::Terminated)
            .filter_map(|i| {
                Some(ObservedNatInstance {
                    id: i.id.clone(),
                    subnet_id: i.subnet_id.clone(),
                    slot: slot_tag(&i.tags)?,
                    state: i.state,
                    instance_type: i.instance_type.clone(),
                    network_interface_id: i.primary_interface().map(str::to_owned),
                    source_dest_check: i.source_dest_check,
                })
            })
            .collect();
        instances.sort_by(|a, b| (a.slot, &a.id).cmp(&(b.slot, &b.id)));
        instances
    }

    /// The stack's addresses (tagged as its own, or adopted), each once.
    fn addresses(
        &self,
        adopted: &[AllocationId],
        live_nats: &[ObservedNatGateway],
        instances: &[ObservedNatInstance],
    ) -> Result<Vec<ObservedAddress>, ViewError> {
        let is_adopted = |id: &str| adopted.iter().any(|a| a.as_str() == id);
        let mut observed: Vec<ObservedAddress> = Vec::new();
        for address in &self.network.addresses {
            let ours = self.is(&address.tags, Component::Address);
            let id = address.allocation_id.as_str();
            if !(ours || is_adopted(id)) || observed.iter().any(|o| o.allocation_id == id) {
                continue;
            }
            let public_ip: Ipv4Addr =
                address
                    .public_ip
                    .ok_or_else(|| ViewError::AddressWithoutIp {
                        allocation_id: id.to_owned(),
                    })?;
            // Only this stack's tag makes an address serve a slot; an adopted address that is
            // not (yet) the stack's counts as kept. A `pending` address must stay pending:
            // reading it as retained would put it to work without `--allow-new-ips`.
            let usage = match tag(&address.tags, tags::ADDRESS).and_then(tags::parse_address_use) {
                Some(usage) if ours => usage,
                _ => AddressUse::Retained,
            };
            let mut observed_address = ObservedAddress {
                allocation_id: id.to_owned(),
                public_ip,
                usage,
                slot: if ours { slot_tag(&address.tags) } else { None },
                adopted: is_adopted(id) || tag(&address.tags, tags::ADOPTED) == Some("true"),
                association_id: address.association_id.clone(),
                network_interface_id: address.network_interface_id.clone(),
                stale_association: false,
            };
            observed_address.stale_association =
                self.held_by_deleted_nat_only(&observed_address, live_nats, instances);
            observed.push(observed_address);
        }
        observed.sort_by(|a, b| (a.slot, &a.allocation_id).cmp(&(b.slot, &b.allocation_id)));
        Ok(observed)
    }

    /// An association no live NAT gateway or NAT instance of the stack explains, left by a NAT
    /// gateway of the stack that is `deleted`.
    fn held_by_deleted_nat_only(
        &self,
        address: &ObservedAddress,
        live_nats: &[ObservedNatGateway],
        instances: &[ObservedNatInstance],
    ) -> bool {
        let on_instance = address.network_interface_id.is_some()
            && instances
                .iter()
                .any(|i| i.network_interface_id == address.network_interface_id);
        let on_live_nat = live_nats
            .iter()
            .any(|nat| nat.allocation_ids.contains(&address.allocation_id));
        address.association_id.is_some()
            && !on_instance
            && !on_live_nat
            && self.network.nat_gateways.iter().any(|nat| {
                nat.state == NatState::Deleted
                    && self.ours(&nat.tags)
                    && nat.holds(&address.allocation_id)
            })
    }

    fn route_tables(&self) -> Vec<ObservedRouteTable> {
        let mut tables: Vec<ObservedRouteTable> = self
            .network
            .route_tables
            .iter()
            .filter(|t| self.ours(&t.tags))
            .filter_map(|t| {
                let (tier, slot) = match component_tag(&t.tags)? {
                    Component::PublicRouteTable => (Tier::Public, None),
                    Component::PrivateRouteTable => (Tier::Private, slot_tag(&t.tags)),
                    _ => return None,
                };
                Some(ObservedRouteTable {
                    id: t.id.clone(),
                    tier,
                    slot,
                    associations: t.associations.clone(),
                    routes: t
                        .routes
                        .iter()
                        .filter_map(|route| match route.destination {
                            RouteDestination::Ipv4(destination) => Some(ObservedRoute {
                                destination,
                                target: route.target.clone(),
                                blackhole: route.blackhole,
                            }),
                            // IPv6 and prefix-list routes are never fixedip's.
                            _ => None,
                        })
                        .collect(),
                })
            })
            .collect();
        tables.sort_by(|a, b| (a.tier, a.slot, &a.id).cmp(&(b.tier, b.slot, &b.id)));
        tables
    }

    fn groups(&self, component: Component) -> impl Iterator<Item = &SecurityGroup> + '_ {
        self.network
            .security_groups
            .iter()
            .filter(move |g| self.is(&g.tags, component))
    }

    /// At most one group of a kind per stack.
    fn single_group(
        &self,
        component: Component,
        name: &'static str,
    ) -> Result<Option<ObservedSecurityGroup>, ViewError> {
        let groups: Vec<&SecurityGroup> = self.groups(component).collect();
        match groups.as_slice() {
            [] => Ok(None),
            [group] => Ok(Some(observed_group(group))),
            _ => Err(ViewError::Duplicate {
                stack: self.stack.to_string(),
                component: name,
                ids: sorted(groups.iter().map(|g| g.id.clone()).collect()),
            }),
        }
    }

    /// The stack's VPC endpoints, leaving out those AWS already deleted. `deleting` ones are still
    /// waited for by the step that deletes them, and a new one with private DNS would clash: both
    /// count as there. `failed` and `rejected` ones are there, [`ObservedEndpoint::dead`].
    fn endpoints(&self, region: &str) -> Vec<ObservedEndpoint> {
        let mut endpoints: Vec<ObservedEndpoint> = self
            .endpoints_in_any_state(region)
            .filter(|(_, state)| !state.eq_ignore_ascii_case("deleted"))
            .map(|(endpoint, _)| endpoint)
            .collect();
        endpoints.sort_by(|a, b| a.id.cmp(&b.id));
        endpoints
    }

    /// How many of the stack's endpoints of each service are `failed`, `rejected` or `deleted`
    /// (see [`Retired::endpoints`]).
    fn retired_endpoints(&self, region: &str) -> BTreeMap<Endpoint, u32> {
        let mut retired = BTreeMap::new();
        for (endpoint, state) in self.endpoints_in_any_state(region) {
            if endpoint.dead || state.eq_ignore_ascii_case("deleted") {
                *retired.entry(endpoint.service).or_default() += 1;
            }
        }
        retired
    }

    /// The stack's VPC endpoints of services fixedip knows, each with its state.
    fn endpoints_in_any_state<'s>(
        &'s self,
        region: &str,
    ) -> impl Iterator<Item = (ObservedEndpoint, &'s str)> + 's {
        let prefix = format!("com.amazonaws.{region}.");
        self.network
            .endpoints
            .iter()
            .filter(|e| self.is(&e.tags, Component::VpcEndpoint))
            .filter_map(move |e| {
                let service = e.service_name.strip_prefix(&prefix)?;
                let endpoint = ObservedEndpoint {
                    id: e.id.clone(),
                    service: Endpoint::parse(service).ok()?,
                    kind: match e.endpoint_type {
                        EndpointType::Gateway => EndpointKind::Gateway,
                        EndpointType::Interface => EndpointKind::Interface,
                        EndpointType::Other(_) => return None,
                    },
                    slot: slot_tag(&e.tags),
                    route_table_ids: e.route_table_ids.clone(),
                    subnet_ids: e.subnet_ids.clone(),
                    dead: crate::network::endpoint_state_is_dead(&e.state),
                };
                Some((endpoint, e.state.as_str()))
            })
    }
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
