//! What the twin is made of, decided from the observed network alone: which namespaces exist, how
//! they are joined, their addresses, routes and packet filters. Pure: nothing here touches the
//! machine ([`super::apply`] does), so the mapping from AWS's model to Linux's is unit-tested as
//! plain values.
//!
//! The mapping, and where it follows AWS:
//!
//! | AWS                                   | Twin                                                                                   |
//! |---------------------------------------|----------------------------------------------------------------------------------------|
//! | the VPC's implicit router             | namespace `router`: one link per device; `ip rule iif <link> lookup <table>` applies the route table associated with the device's subnet (the main table otherwise) |
//! | route `local`                         | a /32 route to every device of the VPC, in every table                                 |
//! | route to a NAT gateway / instance     | `via` its private address; `blackhole` when it is not `available` / `running` (AWS: a blackhole route) |
//! | route to an internet gateway          | to namespace `igw` when the gateway is attached to this VPC, else `blackhole`         |
//! | route to a gateway endpoint (`pl-…`)  | the service's twin prefix (S3 192.0.2.0/25, DynamoDB 192.0.2.128/25) to its namespace  |
//! | internet gateway                      | namespace `igw`: 1:1 NAT of each private address that has an Elastic IP; traffic from any other source is dropped (AWS gives it no public address) |
//! | public NAT gateway                    | namespace: source NAT of forwarded traffic to its own private address (the gateway's address, which the internet gateway maps to its Elastic IP) |
//! | private NAT gateway                   | the same, with no Elastic IP: the internet gateway drops it                            |
//! | NAT instance                          | namespace running the instance's own forwarding and masquerade setup; with the source/destination check on, forwarded packets are dropped (AWS drops traffic not addressed to or from the instance) |
//! | the function in a subnet              | namespace per subnet of the function: the function's security groups' egress rules as an nftables output filter (stateful, as security groups are) |
//! | the internet                          | namespace `inet`: a what-is-my-IP server at [`INTERNET_SERVER`]                       |
//!
//! IPv6 is not modelled (fixedip's guarantee is about IPv4 egress; `verify` judges IPv6 routes).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use fixedip_core::network::{
    InstanceState, NatConnectivity, NatGatewayState, RouteDestination, RouteTarget, RulePeer,
    RuleProtocol, SecurityGroupRule,
};
use fixedip_core::verify::{EgressNetwork, FunctionAttachment};
use ipnet::Ipv4Net;

/// The what-is-my-IP server "on the internet" (TEST-NET-2): it answers with the source address it
/// sees.
pub const INTERNET_SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

/// The address every device uses as its gateway: the router's, on every link (link-local, so it
/// never collides with a VPC's CIDR).
pub const ROUTER: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

/// The AWS services a gateway endpoint reaches, at the twin's addresses for them.
pub fn service_prefix(service_name: &str) -> Option<Ipv4Net> {
    let service = service_name.rsplit('.').next()?;
    match service {
        "s3" => Some("192.0.2.0/25".parse().unwrap()),
        "dynamodb" => Some("192.0.2.128/25".parse().unwrap()),
        _ => None,
    }
}

/// One namespace that forwards or originates traffic in the VPC: a NAT, or the function in one of
/// its subnets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Short: it names the namespace and the router's link to it.
    pub name: String,
    pub kind: DeviceKind,
    pub subnet_id: String,
    pub address: Ipv4Addr,
    /// The Elastic IP the internet gateway maps this device's address to.
    pub public_ip: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceKind {
    /// The function, its egress filtered by these rules (the union of its groups').
    Function { egress: Vec<SecurityGroupRule> },
    /// A NAT gateway: source NAT to its own address.
    NatGateway { id: String },
    /// A NAT instance: runs its own setup; drops forwarded traffic while the check is on.
    NatInstance { id: String, source_dest_check: bool },
}

/// A route of one table in the router namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hop {
    /// To a device's address (the device's link).
    Device(String),
    InternetGateway,
    Service(String),
    Blackhole,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub destination: Ipv4Net,
    pub hop: Hop,
}

/// Everything the twin is made of.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Wiring {
    pub devices: Vec<Device>,
    /// Route table id → its routes, the VPC's local routes included.
    pub tables: BTreeMap<String, Vec<Route>>,
    /// Device name → the id of the table its subnet uses.
    pub table_of: BTreeMap<String, String>,
    /// Whether an internet gateway is attached to the VPC.
    pub internet_gateway: bool,
    /// Service name (`s3`) → its twin prefix, for each gateway endpoint the VPC's routes use.
    pub services: BTreeMap<String, Ipv4Net>,
    /// Prefix list id (`pl-…`) → the twin prefix of its service.
    pub prefix_lists: BTreeMap<String, Ipv4Net>,
    /// The function's namespace per subnet it is attached to.
    pub function_devices: BTreeMap<String, String>,
    /// Where the function's egress is probed: the what-is-my-IP server at [`INTERNET_SERVER`]
    /// (the default route) and at an address inside every other IPv4 destination the function's
    /// route tables send out of the VPC, so that each egress path is tried.
    pub probes: Vec<Ipv4Addr>,
}

impl Wiring {
    /// The twin of `network` for `function`.
    pub fn of(network: &EgressNetwork, function: &FunctionAttachment) -> Wiring {
        let resources = &network.resources;
        let vpc_id = &network.vpc_id;
        let subnet = |id: &str| resources.subnets.iter().find(|s| s.id == id);
        let mut used: BTreeMap<String, u32> = BTreeMap::new();
        // Addresses from the subnet's 5th host on (AWS keeps the first four and the last).
        let mut next_address = |subnet_id: &str| -> Option<Ipv4Addr> {
            let cidr = subnet(subnet_id)?.cidr;
            let n = used.entry(subnet_id.to_owned()).or_insert(4);
            *n += 1;
            Some(Ipv4Addr::from(u32::from(cidr.network()) + *n))
        };
        let public_ip_of_interface = |interface: &str| {
            resources
                .addresses
                .iter()
                .find(|a| a.network_interface_id.as_deref() == Some(interface))
                .and_then(|a| a.public_ip)
        };

        let mut devices = Vec::new();
        let mut nat_gateways = BTreeMap::new();
        for (i, nat) in resources.nat_gateways.iter().enumerate() {
            if nat.state != NatGatewayState::Available {
                continue;
            }
            let Some(address) = next_address(&nat.subnet_id) else {
                continue;
            };
            let public_ip = match nat.connectivity {
                NatConnectivity::Public => nat.addresses.iter().find_map(|a| a.public_ip),
                NatConnectivity::Private => None,
            };
            let name = format!("nat{i}");
            nat_gateways.insert(nat.id.clone(), name.clone());
            devices.push(Device {
                name,
                kind: DeviceKind::NatGateway { id: nat.id.clone() },
                subnet_id: nat.subnet_id.clone(),
                address,
                public_ip,
            });
        }
        let mut instances = BTreeMap::new();
        for (i, instance) in resources.instances.iter().enumerate() {
            if instance.state != InstanceState::Running || &instance.vpc_id != vpc_id {
                continue;
            }
            let Some(address) = next_address(&instance.subnet_id) else {
                continue;
            };
            let public_ip = instance
                .network_interfaces
                .iter()
                .find_map(|n| public_ip_of_interface(&n.id))
                .or(instance.public_ip);
            let name = format!("ins{i}");
            instances.insert(instance.id.clone(), name.clone());
            for interface in &instance.network_interfaces {
                instances.insert(interface.id.clone(), name.clone());
            }
            devices.push(Device {
                name,
                kind: DeviceKind::NatInstance {
                    id: instance.id.clone(),
                    source_dest_check: instance.source_dest_check,
                },
                subnet_id: instance.subnet_id.clone(),
                address,
                public_ip,
            });
        }
        let egress: Vec<SecurityGroupRule> = resources
            .security_groups
            .iter()
            .filter(|g| function.security_group_ids.contains(&g.id))
            .flat_map(|g| g.egress.iter().cloned())
            .collect();
        let mut function_devices = BTreeMap::new();
        for (i, subnet_id) in function.subnet_ids.iter().enumerate() {
            let Some(address) = next_address(subnet_id) else {
                continue;
            };
            let name = format!("fn{i}");
            function_devices.insert(subnet_id.clone(), name.clone());
            devices.push(Device {
                name,
                kind: DeviceKind::Function {
                    egress: egress.clone(),
                },
                subnet_id: subnet_id.clone(),
                address,
                public_ip: None,
            });
        }

        let internet_gateway = resources
            .internet_gateways
            .iter()
            .any(|g| g.attached_vpc_id() == Some(vpc_id.as_str()));
        // Each gateway endpoint's service, and the prefix list (`pl-…`) its routes name, at the
        // twin's prefix for that service.
        let service_of_endpoint = |id: &str| {
            let endpoint = resources.endpoints.iter().find(|e| e.id == id)?;
            let service = endpoint.service_name.rsplit('.').next()?.to_owned();
            Some((service, service_prefix(&endpoint.service_name)?))
        };
        let mut services = BTreeMap::new();
        let mut prefix_lists = BTreeMap::new();
        for route in resources.route_tables.iter().flat_map(|t| &t.routes) {
            if let (RouteDestination::PrefixList(list), RouteTarget::GatewayEndpoint(id)) =
                (&route.destination, &route.target)
            {
                if let Some((service, prefix)) = service_of_endpoint(id) {
                    services.insert(service, prefix);
                    prefix_lists.insert(list.clone(), prefix);
                }
            }
        }

        let vpc_tables: Vec<_> = resources
            .route_tables
            .iter()
            .filter(|t| &t.vpc_id == vpc_id)
            .collect();
        let mut tables = BTreeMap::new();
        for table in &vpc_tables {
            let mut routes: Vec<Route> = devices
                .iter()
                .map(|d| Route {
                    destination: Ipv4Net::from(d.address),
                    hop: Hop::Device(d.name.clone()),
                })
                .collect();
            for route in &table.routes {
                let destination = match &route.destination {
                    RouteDestination::Ipv4(net) => *net,
                    // A gateway endpoint's route names its prefix list; the twin's service prefix
                    // stands for it.
                    RouteDestination::PrefixList(list) => match prefix_lists.get(list) {
                        Some(prefix) => *prefix,
                        None => continue,
                    },
                    RouteDestination::Ipv6(_) => continue,
                };
                let hop = match &route.target {
                    _ if route.blackhole => Hop::Blackhole,
                    RouteTarget::Local => continue,
                    RouteTarget::NatGateway(id) => nat_gateways
                        .get(id)
                        .map_or(Hop::Blackhole, |n| Hop::Device(n.clone())),
                    RouteTarget::Instance(id) | RouteTarget::NetworkInterface(id) => instances
                        .get(id)
                        .map_or(Hop::Blackhole, |n| Hop::Device(n.clone())),
                    RouteTarget::InternetGateway(id) => {
                        let attached = resources
                            .internet_gateways
                            .iter()
                            .any(|g| &g.id == id && g.attached_vpc_id() == Some(vpc_id.as_str()));
                        match attached {
                            true => Hop::InternetGateway,
                            false => Hop::Blackhole,
                        }
                    }
                    RouteTarget::GatewayEndpoint(id) => service_of_endpoint(id)
                        .map_or(Hop::Blackhole, |(service, _)| Hop::Service(service)),
                    RouteTarget::EgressOnlyInternetGateway(_) | RouteTarget::Other(_) => {
                        Hop::Blackhole
                    }
                };
                routes.push(Route { destination, hop });
            }
            tables.insert(table.id.clone(), routes);
        }
        let main = vpc_tables.iter().find(|t| t.main).map(|t| t.id.clone());
        let table_of: BTreeMap<String, String> = devices
            .iter()
            .filter_map(|d| {
                let table = vpc_tables
                    .iter()
                    .find(|t| t.associations.iter().any(|a| a.subnet_id == d.subnet_id))
                    .map(|t| t.id.clone())
                    .or_else(|| main.clone())?;
                Some((d.name.clone(), table))
            })
            .collect();
        let mut probes = vec![INTERNET_SERVER];
        for device in function_devices.values() {
            let Some(table) = table_of
                .get(device)
                .and_then(|id| vpc_tables.iter().find(|t| &t.id == id))
            else {
                continue;
            };
            for route in &table.routes {
                let RouteDestination::Ipv4(destination) = route.destination else {
                    continue;
                };
                if destination.prefix_len() == 0 || route.target == RouteTarget::Local {
                    continue;
                }
                let probe = match destination.prefix_len() {
                    32 => destination.addr(),
                    _ => Ipv4Addr::from(u32::from(destination.network()) + 1),
                };
                if !probes.contains(&probe) {
                    probes.push(probe);
                }
            }
        }
        Wiring {
            devices,
            tables,
            table_of,
            internet_gateway,
            services,
            prefix_lists,
            function_devices,
            probes,
        }
    }

    pub fn device(&self, name: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.name == name)
    }
}

/// The nftables ruleset of a function's namespace: its security groups' egress rules on the
/// output hook, stateful as security groups are; loopback (the runtime API) always allowed.
pub fn function_filter(
    egress: &[SecurityGroupRule],
    prefix_lists: &BTreeMap<String, Ipv4Net>,
) -> String {
    let mut rules = vec![
        "ct state established,related accept".to_owned(),
        "oifname \"lo\" accept".to_owned(),
    ];
    for rule in egress {
        let peer = match &rule.peer {
            RulePeer::Ipv4(net) => format!("ip daddr {net}"),
            // A prefix list stands for the service a gateway endpoint reaches.
            RulePeer::PrefixList(list) => match prefix_lists.get(list) {
                Some(prefix) => format!("ip daddr {prefix}"),
                None => continue,
            },
            RulePeer::Ipv6(_) | RulePeer::SecurityGroup(_) => continue,
        };
        let protocol = match (&rule.protocol, rule.ports) {
            (RuleProtocol::All, _) => String::new(),
            (RuleProtocol::Tcp, Some((from, to))) => format!(" tcp dport {from}-{to}"),
            (RuleProtocol::Udp, Some((from, to))) => format!(" udp dport {from}-{to}"),
            (RuleProtocol::Tcp, None) => " meta l4proto tcp".to_owned(),
            (RuleProtocol::Udp, None) => " meta l4proto udp".to_owned(),
            (RuleProtocol::Other(_), _) => continue,
        };
        rules.push(format!("{peer}{protocol} accept"));
    }
    format!(
        "table inet fixedip_sg {{\n  chain egress {{\n    type filter hook output priority 0; policy drop;\n{}\n  }}\n}}\n",
        rules
            .iter()
            .map(|r| format!("    {r}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

#[cfg(test)]
mod tests {
    use fixedip_core::network::{
        GatewayAttachment, InternetGateway, NatAddress, NatGateway, Network, Route as AwsRoute,
        RouteTable, RouteTableAssociation, SecurityGroup, Subnet,
    };

    use super::*;

    fn subnet(id: &str, cidr: &str) -> Subnet {
        Subnet {
            id: id.into(),
            vpc_id: "vpc-1".into(),
            availability_zone: "us-east-1a".into(),
            cidr: cidr.parse().unwrap(),
            ..Subnet::default()
        }
    }

    fn table(id: &str, subnet: Option<&str>, main: bool, routes: Vec<AwsRoute>) -> RouteTable {
        RouteTable {
            id: id.into(),
            vpc_id: "vpc-1".into(),
            main,
            associations: subnet
                .map(|s| RouteTableAssociation {
                    id: format!("rtbassoc-{s}"),
                    subnet_id: s.into(),
                })
                .into_iter()
                .collect(),
            routes,
            ..RouteTable::default()
        }
    }

    fn default_route(target: RouteTarget) -> AwsRoute {
        AwsRoute {
            destination: RouteDestination::Ipv4("0.0.0.0/0".parse().unwrap()),
            target,
            blackhole: false,
        }
    }

    /// One AZ of the console guide: a NAT gateway in the public subnet, the function in the
    /// private one; the NAT in `state`, the gateway attached or not.
    fn console(state: NatGatewayState, attached: bool) -> (EgressNetwork, FunctionAttachment) {
        let network = Network {
            subnets: vec![subnet("pub", "10.0.0.0/28"), subnet("priv", "10.0.0.32/28")],
            route_tables: vec![
                table("rtb-main", None, true, vec![]),
                table(
                    "rtb-pub",
                    Some("pub"),
                    false,
                    vec![default_route(RouteTarget::InternetGateway("igw-1".into()))],
                ),
                table(
                    "rtb-priv",
                    Some("priv"),
                    false,
                    vec![default_route(RouteTarget::NatGateway("nat-1".into()))],
                ),
            ],
            internet_gateways: vec![InternetGateway {
                id: "igw-1".into(),
                attachments: vec![GatewayAttachment {
                    vpc_id: "vpc-1".into(),
                    state: if attached { "available" } else { "detached" }.into(),
                }],
                ..InternetGateway::default()
            }],
            nat_gateways: vec![NatGateway {
                id: "nat-1".into(),
                vpc_id: "vpc-1".into(),
                subnet_id: "pub".into(),
                state,
                connectivity: NatConnectivity::Public,
                failure_message: None,
                addresses: vec![NatAddress {
                    public_ip: Some(Ipv4Addr::new(203, 0, 113, 7)),
                    ..NatAddress::default()
                }],
                tags: Default::default(),
            }],
            security_groups: vec![SecurityGroup {
                id: "sg-1".into(),
                vpc_id: "vpc-1".into(),
                egress: vec![SecurityGroupRule {
                    protocol: RuleProtocol::Tcp,
                    ports: Some((443, 443)),
                    peer: RulePeer::Ipv4("0.0.0.0/0".parse().unwrap()),
                }],
                ..SecurityGroup::default()
            }],
            ..Network::default()
        };
        let function = FunctionAttachment {
            name: "f".into(),
            subnet_ids: vec!["priv".into()],
            security_group_ids: vec!["sg-1".into()],
            ipv6_allowed_for_dual_stack: false,
            state: Default::default(),
        };
        (
            EgressNetwork {
                vpc_id: "vpc-1".into(),
                resources: network,
            },
            function,
        )
    }

    fn default_hop(wiring: &Wiring, table: &str) -> Hop {
        wiring.tables[table]
            .iter()
            .find(|r| r.destination.prefix_len() == 0)
            .expect("a default route")
            .hop
            .clone()
    }

    #[test]
    fn the_console_network_is_a_nat_behind_the_gateway_and_a_function_behind_the_nat() {
        let (network, function) = console(NatGatewayState::Available, true);
        let wiring = Wiring::of(&network, &function);
        let nat = wiring.devices.iter().find(|d| d.name == "nat0").unwrap();
        // The 5th address of its subnet, mapped to its Elastic IP by the gateway.
        assert_eq!(nat.address, Ipv4Addr::new(10, 0, 0, 5));
        assert_eq!(nat.public_ip, Some(Ipv4Addr::new(203, 0, 113, 7)));
        let function_device = &wiring.function_devices["priv"];
        assert_eq!(wiring.table_of[function_device], "rtb-priv");
        assert_eq!(wiring.table_of["nat0"], "rtb-pub");
        assert_eq!(default_hop(&wiring, "rtb-priv"), Hop::Device("nat0".into()));
        assert_eq!(default_hop(&wiring, "rtb-pub"), Hop::InternetGateway);
        // Every table reaches every device of the VPC (`local`).
        for routes in wiring.tables.values() {
            assert_eq!(
                routes
                    .iter()
                    .filter(|r| r.destination.prefix_len() == 32)
                    .count(),
                2
            );
        }
        assert_eq!(wiring.probes, vec![INTERNET_SERVER]);
    }

    #[test]
    fn a_route_to_a_deleted_nat_or_a_detached_gateway_is_a_blackhole() {
        let (network, function) = console(NatGatewayState::Deleted, true);
        let wiring = Wiring::of(&network, &function);
        assert!(wiring.devices.iter().all(|d| d.name != "nat0"));
        assert_eq!(default_hop(&wiring, "rtb-priv"), Hop::Blackhole);

        let (network, function) = console(NatGatewayState::Available, false);
        let wiring = Wiring::of(&network, &function);
        assert!(!wiring.internet_gateway);
        assert_eq!(default_hop(&wiring, "rtb-pub"), Hop::Blackhole);
    }

    #[test]
    fn the_function_s_groups_become_a_stateful_output_filter() {
        let (network, _) = console(NatGatewayState::Available, true);
        let egress = &network.resources.security_groups[0].egress;
        let ruleset = function_filter(egress, &BTreeMap::new());
        assert!(ruleset.contains("policy drop;"), "{ruleset}");
        assert!(
            ruleset.contains("ct state established,related accept"),
            "{ruleset}"
        );
        assert!(
            ruleset.contains("ip daddr 0.0.0.0/0 tcp dport 443-443 accept"),
            "{ruleset}"
        );
        let lists = BTreeMap::from([(
            "pl-s3".to_owned(),
            service_prefix("com.amazonaws.us-east-1.s3").unwrap(),
        )]);
        let to_s3 = [SecurityGroupRule {
            protocol: RuleProtocol::All,
            ports: None,
            peer: RulePeer::PrefixList("pl-s3".into()),
        }];
        assert!(function_filter(&to_s3, &lists).contains("ip daddr 192.0.2.0/25 accept"));
    }
}
