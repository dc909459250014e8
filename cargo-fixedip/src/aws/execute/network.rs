//! The VPC, its internet gateway, subnets, route tables and routes, and the functions' security
//! group: created (tagged in the create call, with a client token where EC2 takes one), and
//! deleted (not-found is done; DependencyViolation retried while AWS lets go).

use super::*;

impl<'a> Context<'a> {
    /// The call of a step of this kind, its references resolved.
    pub(super) fn prepare_network(
        self,
        step: &'a Step,
        refs: &Resolver<'_>,
    ) -> Result<Call<'a>, AwsError> {
        let ec2 = &self.aws.ec2;
        let call: Call<'a> = match &step.action {
            Action::CreateVpc { .. } => self.call_create_vpc(step)?,
            Action::EnableVpcDns { .. } => self.call_enable_vpc_dns(step, refs)?,
            Action::CreateInternetGateway => self.call_create_internet_gateway(step)?,
            Action::AttachInternetGateway { .. } => {
                self.call_attach_internet_gateway(step, refs)?
            }
            Action::CreateSubnet { .. } => self.call_create_subnet(step, refs)?,
            Action::CreateRouteTable { .. } => self.call_create_route_table(step, refs)?,
            Action::AssociateRouteTable { .. } => self.call_associate_route_table(step, refs)?,
            Action::CreateRoute { .. } => self.call_create_route(step, refs)?,
            Action::ReplaceRoute { .. } => self.call_replace_route(step, refs)?,
            Action::DeleteRoute { .. } => self.call_delete_route(step, refs)?,
            Action::CreateSecurityGroup { .. } => self.call_create_security_group(step, refs)?,
            Action::DeleteSubnet { subnet } => {
                let request = ec2.delete_subnet().subnet_id(subnet);
                Box::pin(async move {
                    self.remove(step, "DeleteSubnet", &["InvalidSubnetID.NotFound"], || {
                        request.clone().send()
                    })
                    .await
                })
            }
            Action::DeleteRouteTable {
                route_table,
                associations,
            } => Box::pin(self.delete_route_table(step, route_table, associations)),
            Action::DeleteSecurityGroup { security_group } => {
                let request = ec2.delete_security_group().group_id(security_group);
                Box::pin(async move {
                    self.remove(
                        step,
                        "DeleteSecurityGroup",
                        &["InvalidGroup.NotFound"],
                        || request.clone().send(),
                    )
                    .await
                })
            }
            Action::DeleteInternetGateway {
                internet_gateway,
                vpc,
            } => Box::pin(self.delete_internet_gateway(step, internet_gateway, vpc.as_deref())),
            Action::DeleteVpc { vpc } => {
                let request = ec2.delete_vpc().vpc_id(vpc);
                Box::pin(async move {
                    self.remove(step, "DeleteVpc", &["InvalidVpcID.NotFound"], || {
                        request.clone().send()
                    })
                    .await
                })
            }
            other => unreachable!("{} is not planned here", ActionKind::of(other)),
        };
        Ok(call)
    }

    /// The call of `CreateVpc`.
    fn call_create_vpc(self, step: &'a Step) -> Result<Call<'a>, AwsError> {
        let ec2 = &self.aws.ec2;
        let Action::CreateVpc { cidr } = &step.action else {
            unreachable!("{} is not {}", ActionKind::of(&step.action), "CreateVpc")
        };
        let call: Call<'a> = {
            let tags = self.tags(Component::Vpc, None);
            let request = ec2
                .create_vpc()
                .cidr_block(cidr.to_string())
                .tag_specifications(self.ec2_tags(ResourceType::Vpc, tags.clone()));
            Box::pin(self.create_or_find(
                step,
                "CreateVpc",
                move || {
                    let request = request.clone().customize().config_override(sent_once());
                    async move {
                        let answer = request.send().await?;
                        Ok(created(answer.vpc().and_then(|v| v.vpc_id()), "CreateVpc"))
                    }
                },
                move || {
                    let tags = tags.clone();
                    async move {
                        let vpcs = ec2
                            .describe_vpcs()
                            .set_filters(Some(tag_filters(&tags)))
                            .send()
                            .await
                            .map_err(|e| AwsError::call("DescribeVpcs", e))?;
                        Ok(vpcs
                            .vpcs()
                            .iter()
                            .filter(|v| carries(v.tags(), &tags))
                            .find_map(|v| v.vpc_id())
                            .map(produced))
                    }
                },
            ))
        };
        Ok(call)
    }

    /// The call of `EnableVpcDns`.
    fn call_enable_vpc_dns(
        self,
        step: &'a Step,
        refs: &Resolver<'_>,
    ) -> Result<Call<'a>, AwsError> {
        let ec2 = &self.aws.ec2;
        let Action::EnableVpcDns { vpc } = &step.action else {
            unreachable!("{} is not {}", ActionKind::of(&step.action), "EnableVpcDns")
        };
        let call: Call<'a> = {
            let vpc = refs.get(vpc)?;
            Box::pin(async move {
                // One attribute per call: EC2 refuses both in one ModifyVpcAttribute. Support first:
                // hostnames cannot be on without it.
                for attribute in [
                    VpcAttributeName::EnableDnsSupport,
                    VpcAttributeName::EnableDnsHostnames,
                ] {
                    let on = aws_sdk_ec2::types::AttributeBooleanValue::builder()
                        .value(true)
                        .build();
                    let request = ec2.modify_vpc_attribute().vpc_id(&vpc);
                    let request = match attribute {
                        VpcAttributeName::EnableDnsSupport => request.enable_dns_support(on),
                        _ => request.enable_dns_hostnames(on),
                    };
                    self.send(step, "ModifyVpcAttribute", &[], || request.clone().send())
                        .await
                        .map_err(|e| AwsError::call("ModifyVpcAttribute", e))?;
                }
                Ok(Produced::default())
            })
        };
        Ok(call)
    }

    /// The call of `CreateInternetGateway`.
    fn call_create_internet_gateway(self, step: &'a Step) -> Result<Call<'a>, AwsError> {
        let ec2 = &self.aws.ec2;
        let Action::CreateInternetGateway = &step.action else {
            unreachable!(
                "{} is not {}",
                ActionKind::of(&step.action),
                "CreateInternetGateway"
            )
        };
        let call: Call<'a> = {
            let tags = self.tags(Component::InternetGateway, None);
            let request = ec2
                .create_internet_gateway()
                .tag_specifications(self.ec2_tags(ResourceType::InternetGateway, tags.clone()));
            Box::pin(self.create_or_find(
                step,
                "CreateInternetGateway",
                move || {
                    let request = request.clone().customize().config_override(sent_once());
                    async move {
                        let answer = request.send().await?;
                        Ok(created(
                            answer
                                .internet_gateway()
                                .and_then(|g| g.internet_gateway_id()),
                            "CreateInternetGateway",
                        ))
                    }
                },
                move || {
                    let tags = tags.clone();
                    async move {
                        let gateways = ec2
                            .describe_internet_gateways()
                            .set_filters(Some(tag_filters(&tags)))
                            .send()
                            .await
                            .map_err(|e| AwsError::call("DescribeInternetGateways", e))?;
                        // The plan creates one only when the stack has none: a tagged one
                        // attached nowhere is the one the lost answer was about.
                        Ok(gateways
                            .internet_gateways()
                            .iter()
                            .filter(|g| carries(g.tags(), &tags) && g.attachments().is_empty())
                            .find_map(|g| g.internet_gateway_id())
                            .map(produced))
                    }
                },
            ))
        };
        Ok(call)
    }

    /// The call of `AttachInternetGateway`.
    fn call_attach_internet_gateway(
        self,
        step: &'a Step,
        refs: &Resolver<'_>,
    ) -> Result<Call<'a>, AwsError> {
        let ec2 = &self.aws.ec2;
        let Action::AttachInternetGateway {
            internet_gateway,
            vpc,
        } = &step.action
        else {
            unreachable!(
                "{} is not {}",
                ActionKind::of(&step.action),
                "AttachInternetGateway"
            )
        };
        let call: Call<'a> = {
            let request = ec2
                .attach_internet_gateway()
                .internet_gateway_id(refs.get(internet_gateway)?)
                .vpc_id(refs.get(vpc)?);
            Box::pin(self.send_done(step, "AttachInternetGateway", move || {
                request.clone().send()
            }))
        };
        Ok(call)
    }

    /// The call of `CreateSubnet`.
    fn call_create_subnet(self, step: &'a Step, refs: &Resolver<'_>) -> Result<Call<'a>, AwsError> {
        let ec2 = &self.aws.ec2;
        let Action::CreateSubnet {
            vpc,
            tier,
            slot,
            az,
            cidr,
        } = &step.action
        else {
            unreachable!("{} is not {}", ActionKind::of(&step.action), "CreateSubnet")
        };
        let call: Call<'a> = {
            let component = match tier {
                Tier::Public => Component::PublicSubnet,
                Tier::Private => Component::PrivateSubnet,
            };
            let tags = tags::for_resource(self.stack(), component, Some(*slot), Some(az));
            let vpc = refs.get(vpc)?;
            let request = ec2
                .create_subnet()
                .vpc_id(&vpc)
                .availability_zone(az)
                .cidr_block(cidr.to_string())
                .tag_specifications(self.ec2_tags(ResourceType::Subnet, tags.clone()));
            Box::pin(self.create_or_find(
                step,
                "CreateSubnet",
                move || {
                    let request = request.clone().customize().config_override(sent_once());
                    async move {
                        let answer = request.send().await?;
                        Ok(created(
                            answer.subnet().and_then(|s| s.subnet_id()),
                            "CreateSubnet",
                        ))
                    }
                },
                move || {
                    let (tags, vpc) = (tags.clone(), vpc.clone());
                    async move {
                        let mut filters = tag_filters(&tags);
                        filters.push(filter("vpc-id", &vpc));
                        let subnets = ec2
                            .describe_subnets()
                            .set_filters(Some(filters))
                            .send()
                            .await
                            .map_err(|e| AwsError::call("DescribeSubnets", e))?;
                        Ok(subnets
                            .subnets()
                            .iter()
                            .filter(|s| carries(s.tags(), &tags))
                            .find_map(|s| s.subnet_id())
                            .map(produced))
                    }
                },
            ))
        };
        Ok(call)
    }

    /// The call of `CreateRouteTable`.
    fn call_create_route_table(
        self,
        step: &'a Step,
        refs: &Resolver<'_>,
    ) -> Result<Call<'a>, AwsError> {
        let ec2 = &self.aws.ec2;
        let Action::CreateRouteTable { vpc, tier, slot } = &step.action else {
            unreachable!(
                "{} is not {}",
                ActionKind::of(&step.action),
                "CreateRouteTable"
            )
        };
        let call: Call<'a> = {
            let component = match tier {
                Tier::Public => Component::PublicRouteTable,
                Tier::Private => Component::PrivateRouteTable,
            };
            let tags = self.tags(component, *slot);
            let vpc = refs.get(vpc)?;
            let run = &self.inputs.run;
            let token = tokens::route_table(self.stack(), component.as_str(), *slot, &vpc, run);
            let request = ec2
                .create_route_table()
                .vpc_id(&vpc)
                // A repeated request gets the table it made, not a second one.
                .client_token(token)
                .tag_specifications(self.ec2_tags(ResourceType::RouteTable, tags.clone()));
            Box::pin(self.create_or_find(
                step,
                "CreateRouteTable",
                move || {
                    let request = request.clone().customize().config_override(sent_once());
                    async move {
                        let answer = request.send().await?;
                        Ok(created(
                            answer.route_table().and_then(|t| t.route_table_id()),
                            "CreateRouteTable",
                        ))
                    }
                },
                move || {
                    let (tags, vpc) = (tags.clone(), vpc.clone());
                    async move {
                        let mut filters = tag_filters(&tags);
                        filters.push(filter("vpc-id", &vpc));
                        let tables = ec2
                            .describe_route_tables()
                            .set_filters(Some(filters))
                            .send()
                            .await
                            .map_err(|e| AwsError::call("DescribeRouteTables", e))?;
                        Ok(tables
                            .route_tables()
                            .iter()
                            .filter(|t| carries(t.tags(), &tags))
                            .find_map(|t| t.route_table_id())
                            .map(produced))
                    }
                },
            ))
        };
        Ok(call)
    }

    /// The call of `AssociateRouteTable`.
    fn call_associate_route_table(
        self,
        step: &'a Step,
        refs: &Resolver<'_>,
    ) -> Result<Call<'a>, AwsError> {
        let ec2 = &self.aws.ec2;
        let Action::AssociateRouteTable {
            route_table,
            subnet,
        } = &step.action
        else {
            unreachable!(
                "{} is not {}",
                ActionKind::of(&step.action),
                "AssociateRouteTable"
            )
        };
        let call: Call<'a> = {
            let request = ec2
                .associate_route_table()
                .route_table_id(refs.get(route_table)?)
                .subnet_id(refs.get(subnet)?);
            Box::pin(self.send_done(step, "AssociateRouteTable", move || request.clone().send()))
        };
        Ok(call)
    }

    /// The call of `CreateRoute`.
    fn call_create_route(self, step: &'a Step, refs: &Resolver<'_>) -> Result<Call<'a>, AwsError> {
        let ec2 = &self.aws.ec2;
        let Action::CreateRoute {
            route_table,
            destination,
            via,
        } = &step.action
        else {
            unreachable!("{} is not {}", ActionKind::of(&step.action), "CreateRoute")
        };
        let call: Call<'a> = {
            let request = ec2
                .create_route()
                .route_table_id(refs.get(route_table)?)
                .destination_cidr_block(destination.to_string());
            let request = match via {
                RouteVia::InternetGateway(igw) => request.gateway_id(refs.get(igw)?),
                RouteVia::NatGateway(nat) => request.nat_gateway_id(refs.get(nat)?),
                RouteVia::NatInstance(instance) => request.instance_id(refs.get(instance)?),
                RouteVia::NatInterface(interface) => {
                    request.network_interface_id(refs.get(interface)?)
                }
            };
            Box::pin(self.send_done(step, "CreateRoute", move || request.clone().send()))
        };
        Ok(call)
    }

    /// The call of `ReplaceRoute`.
    fn call_replace_route(self, step: &'a Step, refs: &Resolver<'_>) -> Result<Call<'a>, AwsError> {
        let ec2 = &self.aws.ec2;
        let Action::ReplaceRoute {
            route_table,
            destination,
            via,
        } = &step.action
        else {
            unreachable!("{} is not {}", ActionKind::of(&step.action), "ReplaceRoute")
        };
        let call: Call<'a> = {
            let request = ec2
                .replace_route()
                .route_table_id(refs.get(route_table)?)
                .destination_cidr_block(destination.to_string());
            let request = match via {
                RouteVia::InternetGateway(igw) => request.gateway_id(refs.get(igw)?),
                RouteVia::NatGateway(nat) => request.nat_gateway_id(refs.get(nat)?),
                RouteVia::NatInstance(instance) => request.instance_id(refs.get(instance)?),
                RouteVia::NatInterface(interface) => {
                    request.network_interface_id(refs.get(interface)?)
                }
            };
            Box::pin(self.send_done(step, "ReplaceRoute", move || request.clone().send()))
        };
        Ok(call)
    }

    /// The call of `DeleteRoute`.
    fn call_delete_route(self, step: &'a Step, refs: &Resolver<'_>) -> Result<Call<'a>, AwsError> {
        let ec2 = &self.aws.ec2;
        let Action::DeleteRoute {
            route_table,
            destination,
        } = &step.action
        else {
            unreachable!("{} is not {}", ActionKind::of(&step.action), "DeleteRoute")
        };
        let call: Call<'a> = {
            let request = ec2
                .delete_route()
                .route_table_id(refs.get(route_table)?)
                .destination_cidr_block(destination.to_string());
            // A resumed run may repeat the call a killed one made: a route gone is done.
            Box::pin(async move {
                self.remove(step, "DeleteRoute", &["InvalidRoute.NotFound"], || {
                    request.clone().send()
                })
                .await
            })
        };
        Ok(call)
    }

    /// The call of `CreateSecurityGroup`.
    fn call_create_security_group(
        self,
        step: &'a Step,
        refs: &Resolver<'_>,
    ) -> Result<Call<'a>, AwsError> {
        let ec2 = &self.aws.ec2;
        let Action::CreateSecurityGroup { vpc } = &step.action else {
            unreachable!(
                "{} is not {}",
                ActionKind::of(&step.action),
                "CreateSecurityGroup"
            )
        };
        let call: Call<'a> = {
            // No inbound rule; a new group's default egress rule (all traffic out) is what a
            // function calling partners needs.
            let tags = self.tags(Component::SecurityGroup, None);
            let vpc = refs.get(vpc)?;
            let request = ec2
                .create_security_group()
                .vpc_id(&vpc)
                .group_name(tags::security_group_name(self.stack()))
                .description(format!(
                    "fixedip stack {}: Lambda functions with fixed egress IPs",
                    self.stack()
                ))
                .tag_specifications(self.ec2_tags(ResourceType::SecurityGroup, tags.clone()));
            Box::pin(self.create_or_find(
                step,
                "CreateSecurityGroup",
                move || {
                    let request = request.clone().customize().config_override(sent_once());
                    async move {
                        let answer = request.send().await?;
                        Ok(created(answer.group_id(), "CreateSecurityGroup"))
                    }
                },
                move || {
                    let (tags, vpc) = (tags.clone(), vpc.clone());
                    async move {
                        let mut filters = tag_filters(&tags);
                        filters.push(filter("vpc-id", &vpc));
                        let groups = ec2
                            .describe_security_groups()
                            .set_filters(Some(filters))
                            .send()
                            .await
                            .map_err(|e| AwsError::call("DescribeSecurityGroups", e))?;
                        Ok(groups
                            .security_groups()
                            .iter()
                            .filter(|g| carries(g.tags(), &tags))
                            .find_map(|g| g.group_id())
                            .map(produced))
                    }
                },
            ))
        };
        Ok(call)
    }

    /// The associations the plan lists first (see `emulator.rs`: moto keeps a deleted subnet's
    /// association), then the table.
    pub(super) async fn delete_route_table(
        self,
        step: &'a Step,
        id: &'a str,
        associations: &'a [String],
    ) -> Result<Produced, AwsError> {
        let ec2 = &self.aws.ec2;
        const NOT_FOUND: &[&str] = &["InvalidRouteTableID.NotFound"];
        const GONE: &[&str] = &["InvalidAssociationID.NotFound"];
        for association_id in associations {
            let request = ec2
                .disassociate_route_table()
                .association_id(association_id);
            match self
                .send(step, "DisassociateRouteTable", GONE, || {
                    request.clone().send()
                })
                .await
            {
                Ok(_) => {}
                Err(e) if has_code(&e, GONE) => {}
                Err(e) => return Err(AwsError::call("DisassociateRouteTable", e)),
            }
        }
        let request = ec2.delete_route_table().route_table_id(id);
        self.remove(step, "DeleteRouteTable", NOT_FOUND, || {
            request.clone().send()
        })
        .await
    }

    pub(super) async fn delete_internet_gateway(
        self,
        step: &'a Step,
        id: &'a str,
        vpc: Option<&'a str>,
    ) -> Result<Produced, AwsError> {
        let ec2 = &self.aws.ec2;
        const NOT_FOUND: &[&str] = &["InvalidInternetGatewayID.NotFound"];
        if let Some(vpc) = vpc {
            // DependencyViolation while public addresses are still mapped in the VPC: retried.
            let request = ec2
                .detach_internet_gateway()
                .internet_gateway_id(id)
                .vpc_id(vpc);
            let detach_done = [NOT_FOUND[0], "Gateway.NotAttached"];
            self.remove(step, "DetachInternetGateway", &detach_done, || {
                request.clone().send()
            })
            .await?;
        }
        let request = ec2.delete_internet_gateway().internet_gateway_id(id);
        self.remove(step, "DeleteInternetGateway", NOT_FOUND, || {
            request.clone().send()
        })
        .await
    }
}
