//! One run of the egress rules over one function: follows each internet route of each subnet it
//! runs in to where the traffic leaves, and collects the findings in path order.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use super::{
    EgressExit, EgressNetwork, Finding, FindingCode, FunctionAttachment, Instance, InstanceState,
    NatAddress, NatConnectivity, NatGatewayState, Route, RouteDestination, RouteTable, RouteTarget,
    RulePeer, RuleProtocol, Severity, Subnet,
};

#[derive(Clone, Copy)]
pub(super) enum Expectation<'a> {
    ThroughNat {
        allowed: &'a [Ipv4Addr],
    },
    Isolated,
    /// Through NATs with Elastic IPs, whichever they are: [`subnet_egress`].
    AnyAddress,
}

/// IPv4 space that never reaches the internet (RFC 6890's non-global blocks). A route whose
/// destination lies wholly inside one of them carries no internet traffic.
const NON_PUBLIC_V4: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),
    (Ipv4Addr::new(10, 0, 0, 0), 8),
    (Ipv4Addr::new(100, 64, 0, 0), 10),
    (Ipv4Addr::new(127, 0, 0, 0), 8),
    (Ipv4Addr::new(169, 254, 0, 0), 16),
    (Ipv4Addr::new(172, 16, 0, 0), 12),
    (Ipv4Addr::new(192, 0, 0, 0), 24),
    (Ipv4Addr::new(192, 168, 0, 0), 16),
    (Ipv4Addr::new(198, 18, 0, 0), 15),
    (Ipv4Addr::new(224, 0, 0, 0), 4),
    (Ipv4Addr::new(240, 0, 0, 0), 4),
];

/// IPv6 space that never reaches the internet: unique local, link local, multicast, loopback.
const NON_PUBLIC_V6: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1), 128),
];

fn is_public_v4(net: &Ipv4Net) -> bool {
    !NON_PUBLIC_V4
        .iter()
        .any(|&(addr, len)| Ipv4Net::new(addr, len).is_ok_and(|private| private.contains(net)))
}

fn is_public_v6(net: &Ipv6Net) -> bool {
    !NON_PUBLIC_V6
        .iter()
        .any(|&(addr, len)| Ipv6Net::new(addr, len).is_ok_and(|private| private.contains(net)))
}

fn is_default_v4(destination: &RouteDestination) -> bool {
    matches!(destination, RouteDestination::Ipv4(net) if net.prefix_len() == 0)
}

/// One run of the rules over one function; collects findings in path order.
pub(super) struct Audit<'a> {
    network: &'a EgressNetwork,
    function: &'a FunctionAttachment,
    expectation: Expectation<'a>,
    findings: Vec<Finding>,
    /// The addresses the paths leave from (recorded under [`Expectation::AnyAddress`]).
    exits: Vec<EgressExit>,
}

impl<'a> Audit<'a> {
    pub(super) fn new(
        network: &'a EgressNetwork,
        function: &'a FunctionAttachment,
        expectation: Expectation<'a>,
    ) -> Self {
        Audit {
            network,
            function,
            expectation,
            findings: Vec::new(),
            exits: Vec::new(),
        }
    }

    pub(super) fn run(self) -> Vec<Finding> {
        self.audit().0
    }

    pub(super) fn audit(mut self) -> (Vec<Finding>, Vec<EgressExit>) {
        if self.function.subnet_ids.is_empty() {
            self.error(
                FindingCode::FunctionNotInVpc,
                &self.function.name,
                "the function is not attached to a VPC: it leaves from AWS-owned addresses that change with every cold start".into(),
                "attach it to the private subnets (`cargo fixedip deploy` does), or set VpcConfig with subnets and a security group".into(),
            );
            return (self.findings, self.exits);
        }
        for subnet_id in &self.function.subnet_ids {
            self.subnet(subnet_id);
        }
        if !matches!(self.expectation, Expectation::Isolated) {
            self.security_groups();
        }
        self.gateway_endpoints_reachable();
        // A NAT shared by several subnets yields the same finding once per subnet: report it once.
        let mut unique: Vec<Finding> = Vec::with_capacity(self.findings.len());
        for finding in self.findings {
            if !unique.contains(&finding) {
                unique.push(finding);
            }
        }
        (unique, self.exits)
    }

    fn subnet(&mut self, subnet_id: &str) {
        let Some(subnet) = self.find_subnet(subnet_id) else {
            return;
        };
        let Some(table) = self.route_table_of(subnet) else {
            return;
        };
        let dual_stack = self.function.ipv6_allowed_for_dual_stack;
        let internet_routes = table
            .routes
            .iter()
            .filter(|route| carries_internet(route, dual_stack));
        match self.expectation {
            Expectation::Isolated => {
                for route in internet_routes {
                    if route.blackhole {
                        continue;
                    }
                    self.error(
                        FindingCode::RouteOutInIsolatedMode,
                        &table.id,
                        format!(
                            "{} ({}) is meant to have no route out, but its route table sends {} to {}",
                            subnet.id, subnet.availability_zone, route.destination, route.target.id()
                        ),
                        format!(
                            "delete the route: `aws ec2 delete-route --route-table-id {} {}`; reach AWS services through VPC endpoints",
                            table.id,
                            delete_route_destination(&route.destination)
                        ),
                    );
                }
            }
            Expectation::ThroughNat { .. } | Expectation::AnyAddress => {
                if !table
                    .routes
                    .iter()
                    .any(|route| is_default_v4(&route.destination))
                {
                    self.error(
                        FindingCode::MissingDefaultRoute,
                        &table.id,
                        format!(
                            "{} ({}) has no 0.0.0.0/0 route: the function cannot reach the internet",
                            subnet.id, subnet.availability_zone
                        ),
                        format!(
                            "add one to the NAT gateway of {}: `aws ec2 create-route --route-table-id {} --destination-cidr-block 0.0.0.0/0 --nat-gateway-id nat-...`",
                            subnet.availability_zone, table.id
                        ),
                    );
                }
                for route in internet_routes {
                    self.follow(subnet, table, route);
                }
            }
        }
    }

    /// Follows one internet route of a function subnet to where it leaves.
    fn follow(&mut self, subnet: &Subnet, table: &RouteTable, route: &Route) {
        if route.blackhole {
            self.error(
                FindingCode::BlackholeRoute,
                &table.id,
                format!(
                    "{} ({}) sends {} to {}, which no longer exists (blackhole): that traffic is dropped",
                    subnet.id, subnet.availability_zone, route.destination, route.target.id()
                ),
                format!(
                    "point the route at a working NAT gateway: `aws ec2 replace-route --route-table-id {} {} --nat-gateway-id nat-...`, or run `cargo fixedip deploy`",
                    table.id,
                    delete_route_destination(&route.destination)
                ),
            );
            return;
        }
        let default = is_default_v4(&route.destination);
        match (&route.destination, &route.target) {
            // NAT64: IPv6 traffic to 64:ff9b::/96 leaves through the NAT gateway's IPv4 addresses.
            (_, RouteTarget::NatGateway(id)) => self.nat_gateway(subnet, id),
            (RouteDestination::Ipv6(_), target) => self.error(
                FindingCode::Ipv6BypassesNat,
                &table.id,
                format!(
                    "the function allows dual stack, and {} ({}) sends {} to {}: that IPv6 traffic leaves from the function's own IPv6 address, not through the NAT (a NAT gateway translates IPv4 only)",
                    subnet.id, subnet.availability_zone, route.destination, target.id()
                ),
                format!(
                    "delete the IPv6 route (`aws ec2 delete-route --route-table-id {} {}`) or turn off Ipv6AllowedForDualStack on the function",
                    table.id,
                    delete_route_destination(&route.destination)
                ),
            ),
            (_, RouteTarget::InternetGateway(igw)) if default => self.error(
                FindingCode::FunctionInPublicSubnet,
                &subnet.id,
                format!(
                    "the function runs in {} ({}), a public subnet: its route table {} sends 0.0.0.0/0 straight to {}; Lambda network interfaces get no public address there, so the function has no internet at all",
                    subnet.id, subnet.availability_zone, table.id, igw
                ),
                "attach the function to the private subnet of that AZ, whose 0.0.0.0/0 goes to the NAT gateway (`cargo fixedip deploy` does)".into(),
            ),
            (_, RouteTarget::Instance(id)) => match self.network.instances.iter().find(|i| &i.id == id) {
                Some(instance) => self.nat_instance(subnet, instance, None),
                None => self.not_observed(id, "instance", &table.id),
            },
            (_, RouteTarget::NetworkInterface(eni)) => {
                match self
                    .network
                    .instances
                    .iter()
                    .find(|i| i.has_interface(eni))
                {
                    Some(instance) => {
                        let routed = instance.network_interfaces.iter().find(|n| n.id == *eni);
                        self.nat_instance(subnet, instance, routed)
                    }
                    None => self.bypass(subnet, table, route),
                }
            }
            _ => self.bypass(subnet, table, route),
        }
    }

    /// A route that leaves through something that is not a NAT.
    fn bypass(&mut self, subnet: &Subnet, table: &RouteTable, route: &Route) {
        let direct = matches!(
            route.target,
            RouteTarget::InternetGateway(_) | RouteTarget::EgressOnlyInternetGateway(_)
        );
        let severity = if direct || is_default_v4(&route.destination) {
            Severity::Error
        } else {
            Severity::Warning
        };
        let problem = if direct {
            format!(
                "{} ({}) sends {} straight to {}: that traffic skips the NAT (and, with no public address on the function, is dropped)",
                subnet.id, subnet.availability_zone, route.destination, route.target.id()
            )
        } else {
            format!(
                "{} ({}) sends {} to {}, which verify cannot follow: what address that traffic leaves from is not proven",
                subnet.id, subnet.availability_zone, route.destination, route.target.id()
            )
        };
        self.push(Finding {
            code: FindingCode::RouteBypassesNat,
            severity,
            resource: table.id.clone(),
            problem,
            fix: format!(
                "send {} to the NAT gateway of {} (`aws ec2 replace-route --route-table-id {} {} --nat-gateway-id nat-...`), or delete the route if that network is reached privately",
                route.destination,
                subnet.availability_zone,
                table.id,
                delete_route_destination(&route.destination)
            ),
        });
    }

    fn nat_gateway(&mut self, subnet: &Subnet, nat_id: &str) {
        let Some(nat) = self.network.nat_gateways.iter().find(|n| n.id == nat_id) else {
            self.not_observed(nat_id, "NAT gateway", &subnet.id);
            return;
        };
        let unavailable = match nat.state {
            NatGatewayState::Available => None,
            NatGatewayState::Pending => Some((
                FindingCode::NatGatewayPending,
                "is still being created (pending): nothing leaves through it yet".to_owned(),
                "wait a few minutes (`aws ec2 wait nat-gateway-available --nat-gateway-ids ...`) and verify again".to_owned(),
            )),
            NatGatewayState::Failed => Some((
                FindingCode::NatGatewayFailed,
                format!(
                    "failed to create{}",
                    nat.failure_message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
                "fix the cause above, delete the failed gateway and create it again (`cargo fixedip deploy` does); the Elastic IP is kept".to_owned(),
            )),
            NatGatewayState::Deleting | NatGatewayState::Deleted => Some((
                FindingCode::NatGatewayDeleted,
                "is deleted: traffic routed to it is dropped".to_owned(),
                "create a NAT gateway with the same Elastic IP and point the route at it (`cargo fixedip deploy` does)".to_owned(),
            )),
        };
        if let Some((code, what, fix)) = unavailable {
            self.error(
                code,
                &nat.id,
                format!(
                    "NAT gateway {}, used by {} ({}), {what}",
                    nat.id, subnet.id, subnet.availability_zone
                ),
                fix,
            );
            return;
        }
        if nat.connectivity == NatConnectivity::Private {
            self.error(
                FindingCode::PrivateNatGateway,
                &nat.id,
                format!(
                    "NAT gateway {}, used by {} ({}), has private connectivity: it never reaches the internet",
                    nat.id, subnet.id, subnet.availability_zone
                ),
                "create a NAT gateway with public connectivity and an Elastic IP in a public subnet, and route 0.0.0.0/0 to it".into(),
            );
            return;
        }
        self.same_az(subnet, &nat.subnet_id, &nat.id);
        self.public_side(&nat.id, "NAT gateway", &nat.subnet_id);
        let public_ips: Vec<&NatAddress> = nat
            .addresses
            .iter()
            .filter(|a| a.public_ip.is_some())
            .collect();
        if public_ips.is_empty() {
            self.error(
                FindingCode::NatAddressNotAllowed,
                &nat.id,
                format!("NAT gateway {} has no public address", nat.id),
                "give it an Elastic IP from the allowed list: create a NAT gateway with `--allocation-id eipalloc-...`".into(),
            );
        }
        for address in public_ips {
            let ip = address.public_ip.expect("filtered above");
            self.allowed_address(&nat.id, "NAT gateway", ip, address.allocation_id.as_deref());
        }
    }

    /// A NAT instance a route leads to, through `routed` when the route names one of its
    /// interfaces: a secondary one (a self-healing NAT's fixed interface, device index 1) has
    /// its own source/destination check and address, and the traffic uses those.
    fn nat_instance(
        &mut self,
        subnet: &Subnet,
        instance: &Instance,
        routed: Option<&crate::network::InstanceInterface>,
    ) {
        let secondary = routed.filter(|n| n.device_index.is_some_and(|i| i != 0));
        let source_dest_check = secondary
            .and_then(|n| n.source_dest_check)
            .unwrap_or(instance.source_dest_check);
        let public_ip = match secondary {
            Some(interface) => interface.public_ip,
            None => instance.public_ip,
        };
        if instance.state != InstanceState::Running {
            self.error(
                FindingCode::NatInstanceNotRunning,
                &instance.id,
                format!(
                    "NAT instance {}, used by {} ({}), is {}: traffic routed to it is dropped",
                    instance.id,
                    subnet.id,
                    subnet.availability_zone,
                    instance.state.aws_name()
                ),
                format!(
                    "start it (`aws ec2 start-instances --instance-ids {}`), or replace it with a NAT gateway",
                    instance.id
                ),
            );
            return;
        }
        if source_dest_check {
            self.error(
                FindingCode::NatInstanceSourceDestCheck,
                &instance.id,
                format!(
                    "NAT instance {} has its source/destination check on: it drops the traffic it should forward",
                    instance.id
                ),
                format!(
                    "`aws ec2 modify-instance-attribute --instance-id {} --no-source-dest-check`",
                    instance.id
                ),
            );
        }
        if let Some(readiness) = instance.readiness.as_ref().filter(|r| !r.is_ready()) {
            self.error(
                FindingCode::NatInstanceNotReady,
                &instance.id,
                format!(
                    "NAT instance {} is running but has not reported forwarding and masquerading on ({}): its console says: {}",
                    instance.id,
                    readiness.word(),
                    readiness.reported()
                ),
                format!(
                    "read its boot with `aws ec2 get-console-output --latest --instance-id {}`; terminate it and deploy again for a new one",
                    instance.id
                ),
            );
        }
        self.same_az(subnet, &instance.subnet_id, &instance.id);
        self.public_side(&instance.id, "NAT instance", &instance.subnet_id);
        // An Elastic IP of the account is listed by DescribeAddresses; an address AWS assigned
        // at launch is not.
        let elastic = |ip: Ipv4Addr| {
            self.network
                .addresses
                .iter()
                .any(|a| a.public_ip == Some(ip))
        };
        match public_ip {
            Some(ip) if elastic(ip) => self.allowed_address(&instance.id, "NAT instance", ip, None),
            Some(ip) => self.error(
                FindingCode::NatInstanceNoElasticIp,
                &instance.id,
                format!(
                    "NAT instance {} leaves from {ip}, an address AWS assigned at launch: it changes at the next stop and start",
                    instance.id
                ),
                format!(
                    "associate an Elastic IP from the allowed list: `aws ec2 associate-address --instance-id {} --allocation-id eipalloc-...`",
                    instance.id
                ),
            ),
            None => self.error(
                FindingCode::NatInstanceNoElasticIp,
                &instance.id,
                format!("NAT instance {} has no public address: nothing it forwards reaches the internet", instance.id),
                format!(
                    "associate an Elastic IP from the allowed list: `aws ec2 associate-address --instance-id {} --allocation-id eipalloc-...`",
                    instance.id
                ),
            ),
        }
    }

    /// A NAT reaches the internet only if its own subnet routes 0.0.0.0/0 to an internet gateway
    /// attached to the VPC.
    fn public_side(&mut self, nat_id: &str, kind: &str, nat_subnet_id: &str) {
        let Some(nat_subnet) = self.find_subnet(nat_subnet_id) else {
            return;
        };
        let Some(table) = self.route_table_of(nat_subnet) else {
            return;
        };
        let default_route = table.routes.iter().find(|r| is_default_v4(&r.destination));
        let igw = match default_route.map(|r| (&r.target, r.blackhole)) {
            Some((RouteTarget::InternetGateway(igw), blackhole)) => (igw, blackhole),
            other => {
                let now = match other {
                    None => "has no 0.0.0.0/0 route".to_owned(),
                    Some((target, _)) => format!("sends 0.0.0.0/0 to {}", target.id()),
                };
                self.error(
                    FindingCode::NatSubnetWithoutIgwRoute,
                    &table.id,
                    format!(
                        "{kind} {nat_id} sits in {} ({}), whose route table {} {now}: the NAT cannot reach the internet",
                        nat_subnet.id, nat_subnet.availability_zone, table.id
                    ),
                    format!(
                        "route the NAT's subnet to the VPC's internet gateway: `aws ec2 create-route --route-table-id {} --destination-cidr-block 0.0.0.0/0 --gateway-id igw-...` (replace-route if one exists)",
                        table.id
                    ),
                );
                return;
            }
        };
        let (igw_id, blackhole) = igw;
        let attached =
            self.network.internet_gateways.iter().any(|g| {
                &g.id == igw_id && g.attached_vpc_id() == Some(self.network.vpc_id.as_str())
            });
        if blackhole || !attached {
            self.error(
                FindingCode::InternetGatewayNotAttached,
                igw_id,
                format!(
                    "{kind} {nat_id}'s subnet {} routes 0.0.0.0/0 to {igw_id}, which is not attached to {}",
                    nat_subnet.id, self.network.vpc_id
                ),
                format!(
                    "`aws ec2 attach-internet-gateway --internet-gateway-id {igw_id} --vpc-id {}`",
                    self.network.vpc_id
                ),
            );
        }
    }

    fn allowed_address(
        &mut self,
        nat_id: &str,
        kind: &str,
        ip: Ipv4Addr,
        allocation: Option<&str>,
    ) {
        let allowed = match self.expectation {
            Expectation::ThroughNat { allowed } => allowed,
            Expectation::AnyAddress => {
                self.exits.push(EgressExit {
                    nat: nat_id.to_owned(),
                    ip,
                    allocation_id: allocation.map(str::to_owned),
                });
                return;
            }
            Expectation::Isolated => return,
        };
        if allowed.contains(&ip) {
            return;
        }
        let listed = allowed
            .iter()
            .map(Ipv4Addr::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let allocation = allocation.map(|a| format!(" ({a})")).unwrap_or_default();
        self.error(
            FindingCode::NatAddressNotAllowed,
            nat_id,
            format!(
                "{kind} {nat_id} leaves from {ip}{allocation}, which is not in the allowed list [{listed}]: the partner's firewall drops that traffic"
            ),
            format!(
                "give the partner {ip} as well, or rebuild the NAT with an Elastic IP from the list (`cargo fixedip deploy` keeps the stack's IPs)"
            ),
        );
    }

    fn same_az(&mut self, subnet: &Subnet, nat_subnet_id: &str, nat_id: &str) {
        let Some(nat_subnet) = self.network.subnets.iter().find(|s| s.id == nat_subnet_id) else {
            return; // public_side reports it
        };
        if nat_subnet.availability_zone != subnet.availability_zone {
            self.push(Finding {
                code: FindingCode::NatInOtherAz,
                severity: Severity::Warning,
                resource: subnet.id.clone(),
                problem: format!(
                    "{} ({}) leaves through {nat_id} in {}: an outage of {} cuts this AZ off, and cross-AZ traffic is billed",
                    subnet.id,
                    subnet.availability_zone,
                    nat_subnet.availability_zone,
                    nat_subnet.availability_zone
                ),
                fix: format!(
                    "give {} its own NAT gateway and route its 0.0.0.0/0 there (`cargo fixedip deploy` makes one per AZ unless `nats` in #[fixed_egress] asks for fewer: then this is the price of the saving, and raising `nats` removes it)",
                    subnet.availability_zone
                ),
            });
        }
    }

    fn security_groups(&mut self) {
        let mut groups = Vec::new();
        for id in &self.function.security_group_ids {
            match self.network.security_groups.iter().find(|g| &g.id == id) {
                Some(group) => groups.push(group),
                None => self.not_observed(id, "security group", &self.function.name),
            }
        }
        let lets_tcp_out = groups.iter().flat_map(|g| &g.egress).any(|rule| {
            matches!(rule.protocol, RuleProtocol::All | RuleProtocol::Tcp)
                && matches!(&rule.peer, RulePeer::Ipv4(net) if is_public_v4(net))
        });
        if !groups.is_empty() && !lets_tcp_out {
            let ids = groups.iter().map(|g| g.id.as_str()).collect::<Vec<_>>();
            self.error(
                FindingCode::EgressBlockedBySecurityGroups,
                &ids.join(","),
                format!(
                    "no egress rule of {} lets TCP out to a public address: every connection the function opens is refused",
                    ids.join(", ")
                ),
                format!(
                    "allow egress to the partner, or to everywhere: `aws ec2 authorize-security-group-egress --group-id {} --ip-permissions IpProtocol=tcp,FromPort=0,ToPort=65535,IpRanges=[{{CidrIp=0.0.0.0/0}}]`",
                    ids[0]
                ),
            );
        }
    }

    /// A gateway endpoint's traffic passes the function's security groups like any other (AWS:
    /// "Gateway endpoints for Amazon S3"): a route that sends a service's prefix list to an
    /// endpoint is of no use unless some group lets TCP 443 out to that prefix list, or to
    /// everywhere. Nothing leaks when it does not, so this is a warning: the service is unreachable.
    fn gateway_endpoints_reachable(&mut self) {
        let groups: Vec<_> = self
            .network
            .security_groups
            .iter()
            .filter(|g| self.function.security_group_ids.contains(&g.id))
            .collect();
        if groups.is_empty() {
            return;
        }
        let mut used: Vec<(&str, &str, &str)> = Vec::new();
        for subnet_id in &self.function.subnet_ids {
            let Some(subnet) = self.network.subnets.iter().find(|s| &s.id == subnet_id) else {
                continue;
            };
            let tables = &self.network.route_tables;
            let Some(table) = tables
                .iter()
                .find(|t| t.serves(&subnet.id))
                .or_else(|| tables.iter().find(|t| t.main))
            else {
                continue;
            };
            for route in &table.routes {
                if let (RouteDestination::PrefixList(list), RouteTarget::GatewayEndpoint(vpce)) =
                    (&route.destination, &route.target)
                {
                    used.push((list, vpce, &table.id));
                }
            }
        }
        used.sort();
        used.dedup_by(|a, b| a.0 == b.0);
        for (list, endpoint, table) in used {
            let lets_out = groups.iter().flat_map(|g| &g.egress).any(|rule| {
                let https = match rule.protocol {
                    RuleProtocol::All => true,
                    RuleProtocol::Tcp => {
                        rule.ports.is_none_or(|(from, to)| from <= 443 && 443 <= to)
                    }
                    _ => false,
                };
                https
                    && match &rule.peer {
                        RulePeer::PrefixList(id) => id == list,
                        RulePeer::Ipv4(net) => net.prefix_len() == 0,
                        _ => false,
                    }
            });
            if lets_out {
                continue;
            }
            let ids = groups.iter().map(|g| g.id.as_str()).collect::<Vec<_>>();
            self.push(Finding {
                code: FindingCode::EndpointBlockedBySecurityGroups,
                severity: Severity::Warning,
                resource: ids.join(","),
                problem: format!(
                    "route table {table} sends {list} to the gateway endpoint {endpoint}, but no egress rule of {} lets TCP 443 out to {list}: the function cannot reach that service",
                    ids.join(", ")
                ),
                fix: format!(
                    "allow it: `aws ec2 authorize-security-group-egress --group-id {} --ip-permissions IpProtocol=tcp,FromPort=443,ToPort=443,PrefixListIds=[{{PrefixListId={list}}}]` (`cargo fixedip deploy` does for the stack's own group)",
                    ids[0]
                ),
            });
        }
    }

    fn find_subnet(&mut self, subnet_id: &str) -> Option<&'a Subnet> {
        let found = self.network.subnets.iter().find(|s| s.id == subnet_id);
        if found.is_none() {
            self.not_observed(subnet_id, "subnet", &self.network.vpc_id);
        }
        found
    }

    /// The explicit association, else the VPC's main table.
    fn route_table_of(&mut self, subnet: &Subnet) -> Option<&'a RouteTable> {
        let tables = &self.network.route_tables;
        let found = tables
            .iter()
            .find(|t| t.serves(&subnet.id))
            .or_else(|| tables.iter().find(|t| t.main));
        if found.is_none() {
            self.not_observed(
                &subnet.id,
                "route table (neither an association nor a main table) of subnet",
                &self.network.vpc_id,
            );
        }
        found
    }

    fn not_observed(&mut self, id: &str, kind: &str, within: &str) {
        self.error(
            FindingCode::ResourceNotObserved,
            id,
            format!("the {kind} {id} (named by {within}) was not found, so its path cannot be proven"),
            "check the region and the VPC, and that the credentials may describe it; if it was deleted, run `cargo fixedip deploy`".into(),
        );
    }

    fn error(&mut self, code: FindingCode, resource: &str, problem: String, fix: String) {
        self.push(Finding {
            code,
            severity: Severity::Error,
            resource: resource.to_owned(),
            problem,
            fix,
        });
    }

    fn push(&mut self, finding: Finding) {
        self.findings.push(finding);
    }
}

/// Whether a route can carry traffic bound for the internet. IPv6 routes only count when the
/// function gets IPv6 addresses; prefix lists are unknown space unless a gateway endpoint owns them.
fn carries_internet(route: &Route, dual_stack: bool) -> bool {
    if matches!(
        route.target,
        RouteTarget::Local | RouteTarget::GatewayEndpoint(_)
    ) {
        return false;
    }
    match &route.destination {
        RouteDestination::Ipv4(net) => is_public_v4(net),
        RouteDestination::Ipv6(net) => dual_stack && is_public_v6(net),
        RouteDestination::PrefixList(_) => true,
    }
}

/// The destination arguments of `aws ec2 delete-route` / `replace-route` for a route.
fn delete_route_destination(destination: &RouteDestination) -> String {
    match destination {
        RouteDestination::Ipv4(net) => format!("--destination-cidr-block {net}"),
        RouteDestination::Ipv6(net) => format!("--destination-ipv6-cidr-block {net}"),
        RouteDestination::PrefixList(id) => format!("--destination-prefix-list-id {id}"),
    }
}
