//! Restricted egress (the security group's outbound rules) and VPC endpoints: created,
//! changed, waited for, deleted.

use super::*;
use aws_sdk_ec2::operation::create_vpc_endpoint::builders::CreateVpcEndpointFluentBuilder;
use fixedip_core::requirements::Endpoint;

/// What to wait for after an endpoint call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EndpointWait {
    /// `available` (AWS takes a minute or two for an interface endpoint's network interfaces).
    Available,
    /// `deleted`, or unknown to AWS.
    Gone,
}

/// One `IpPermission` per rule, as the planner diffs them.
pub(super) fn ip_permission(rule: &SecurityGroupRule) -> aws_sdk_ec2::types::IpPermission {
    use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range, PrefixListId, UserIdGroupPair};
    let mut permission = IpPermission::builder().ip_protocol(rule.protocol.as_aws());
    if let Some((from, to)) = rule.ports {
        permission = permission.from_port(i32::from(from)).to_port(i32::from(to));
    }
    match &rule.peer {
        RulePeer::Ipv4(net) => {
            permission.ip_ranges(IpRange::builder().cidr_ip(net.to_string()).build())
        }
        RulePeer::Ipv6(net) => permission.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(net).build()),
        RulePeer::SecurityGroup(id) => {
            permission.user_id_group_pairs(UserIdGroupPair::builder().group_id(id).build())
        }
        RulePeer::PrefixList(id) => {
            permission.prefix_list_ids(PrefixListId::builder().prefix_list_id(id).build())
        }
    }
    .build()
}

impl<'a> Context<'a> {
    /// The call of a step of this kind, its references resolved.
    pub(super) fn prepare_endpoints(
        self,
        step: &'a Step,
        refs: &Resolver<'_>,
    ) -> Result<Call<'a>, AwsError> {
        let call: Call<'a> = match &step.action {
            Action::AuthorizeEgress {
                security_group,
                rules,
            } => {
                let group = refs.get(security_group)?;
                Box::pin(self.authorize_egress(step, group, rules))
            }
            Action::RevokeEgress {
                security_group,
                rules,
            } => {
                let group = refs.get(security_group)?;
                Box::pin(self.revoke_egress(step, group, rules))
            }
            Action::CreateEndpointSecurityGroup { .. } => {
                self.call_create_endpoint_security_group(step, refs)?
            }
            Action::AdmitHttpsFrom { .. } => self.call_admit_https_from(step, refs)?,
            Action::CreateGatewayEndpoint { .. } => {
                self.call_create_gateway_endpoint(step, refs)?
            }
            Action::CreateInterfaceEndpoint { .. } => {
                self.call_create_interface_endpoint(step, refs)?
            }
            Action::ModifyInterfaceEndpoint { .. } => {
                self.call_modify_interface_endpoint(step, refs)?
            }
            Action::ModifyGatewayEndpoint { .. } => {
                self.call_modify_gateway_endpoint(step, refs)?
            }
            Action::DeleteEndpoint { endpoint_id } => {
                Box::pin(self.delete_endpoint(step, endpoint_id))
            }
            other => unreachable!("{} is not planned here", ActionKind::of(other)),
        };
        Ok(call)
    }

    /// The call of `CreateEndpointSecurityGroup`.
    fn call_create_endpoint_security_group(
        self,
        step: &'a Step,
        refs: &Resolver<'_>,
    ) -> Result<Call<'a>, AwsError> {
        let ec2 = &self.aws.ec2;
        let Action::CreateEndpointSecurityGroup { vpc } = &step.action else {
            unreachable!(
                "{} is not {}",
                ActionKind::of(&step.action),
                "CreateEndpointSecurityGroup"
            )
        };
        let call: Call<'a> = {
            let request = ec2
                .create_security_group()
                .vpc_id(refs.get(vpc)?)
                .group_name(tags::endpoint_security_group_name(self.stack()))
                .description(format!(
                    "fixedip stack {}: VPC interface endpoints, HTTPS from the functions",
                    self.stack()
                ))
                .tag_specifications(self.ec2_tags(
                    ResourceType::SecurityGroup,
                    self.tags(Component::EndpointSecurityGroup, None),
                ));
            Box::pin(async move {
                let answer = self
                    .send(step, "CreateSecurityGroup", &[], || request.clone().send())
                    .await
                    .map_err(|e| AwsError::call("CreateSecurityGroup", e))?;
                created(answer.group_id(), "CreateSecurityGroup")
            })
        };
        Ok(call)
    }

    /// The call of `AdmitHttpsFrom`.
    fn call_admit_https_from(
        self,
        step: &'a Step,
        refs: &Resolver<'_>,
    ) -> Result<Call<'a>, AwsError> {
        let ec2 = &self.aws.ec2;
        let Action::AdmitHttpsFrom {
            security_group,
            from_group,
        } = &step.action
        else {
            unreachable!(
                "{} is not {}",
                ActionKind::of(&step.action),
                "AdmitHttpsFrom"
            )
        };
        let call: Call<'a> = {
            let permission = aws_sdk_ec2::types::IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(443)
                .to_port(443)
                .user_id_group_pairs(
                    aws_sdk_ec2::types::UserIdGroupPair::builder()
                        .group_id(refs.get(from_group)?)
                        .build(),
                )
                .build();
            let request = ec2
                .authorize_security_group_ingress()
                .group_id(refs.get(security_group)?)
                .ip_permissions(permission);
            Box::pin(async move {
                let send = || request.clone().send();
                match self
                    .send(step, "AuthorizeSecurityGroupIngress", RULE_EXISTS, send)
                    .await
                {
                    Ok(_) => Ok(Produced::default()),
                    Err(e) if has_code(&e, RULE_EXISTS) => Ok(Produced::default()),
                    Err(e) => Err(AwsError::call("AuthorizeSecurityGroupIngress", e)),
                }
            })
        };
        Ok(call)
    }

    /// The call of `CreateGatewayEndpoint`.
    fn call_create_gateway_endpoint(
        self,
        step: &'a Step,
        refs: &Resolver<'_>,
    ) -> Result<Call<'a>, AwsError> {
        let Action::CreateGatewayEndpoint {
            vpc,
            endpoint,
            route_tables,
            generation,
        } = &step.action
        else {
            unreachable!(
                "{} is not {}",
                ActionKind::of(&step.action),
                "CreateGatewayEndpoint"
            )
        };
        let route_tables = refs.all(route_tables)?;
        let request = self
            .endpoint_request((*endpoint, &refs.get(vpc)?), &route_tables, *generation)
            .vpc_endpoint_type(aws_sdk_ec2::types::VpcEndpointType::Gateway)
            .set_route_table_ids(Some(route_tables));
        Ok(self.create_endpoint(step, request))
    }

    /// The call of `CreateInterfaceEndpoint`.
    fn call_create_interface_endpoint(
        self,
        step: &'a Step,
        refs: &Resolver<'_>,
    ) -> Result<Call<'a>, AwsError> {
        let Action::CreateInterfaceEndpoint {
            vpc,
            endpoint,
            subnets,
            security_group,
            generation,
        } = &step.action
        else {
            unreachable!(
                "{} is not {}",
                ActionKind::of(&step.action),
                "CreateInterfaceEndpoint"
            )
        };
        let subnets = refs.all(subnets)?;
        let request = self
            .endpoint_request((*endpoint, &refs.get(vpc)?), &subnets, *generation)
            .vpc_endpoint_type(aws_sdk_ec2::types::VpcEndpointType::Interface)
            .set_subnet_ids(Some(subnets))
            .security_group_ids(refs.get(security_group)?)
            .private_dns_enabled(true);
        Ok(self.create_endpoint(step, request))
    }

    /// What every CreateVpcEndpoint carries: the VPC, the service, the client token (of where it
    /// is placed, route tables or subnets, this run and the generation) and the stack's tags.
    fn endpoint_request(
        self,
        (endpoint, vpc): (Endpoint, &str),
        placement: &[String],
        generation: u32,
    ) -> CreateVpcEndpointFluentBuilder {
        let service = endpoint.service_name(&self.aws.region);
        let mut sorted: Vec<&str> = placement.iter().map(String::as_str).collect();
        sorted.sort();
        let word = (self.inputs.run.as_str(), generation);
        let token = tokens::endpoint(self.stack(), &service, vpc, &sorted, word);
        self.aws
            .ec2
            .create_vpc_endpoint()
            .vpc_id(vpc)
            .service_name(service)
            .client_token(token)
            .tag_specifications(self.ec2_tags(
                ResourceType::VpcEndpoint,
                self.tags(Component::VpcEndpoint, None),
            ))
    }

    /// Sends the create, then waits until the endpoint is `available`: a gateway endpoint's
    /// State can read `failed` as an interface endpoint's can.
    fn create_endpoint(self, step: &'a Step, request: CreateVpcEndpointFluentBuilder) -> Call<'a> {
        Box::pin(async move {
            let answer = self
                .send(step, "CreateVpcEndpoint", &[], || request.clone().send())
                .await
                .map_err(|e| AwsError::call("CreateVpcEndpoint", e))?;
            let produced = created(
                answer.vpc_endpoint().and_then(|e| e.vpc_endpoint_id()),
                "CreateVpcEndpoint",
            )?;
            let id = produced.id.clone().expect("created");
            self.wait_for_endpoint(step, &id, EndpointWait::Available)
                .await?;
            Ok(produced)
        })
    }

    /// The call of `ModifyGatewayEndpoint`. AWS adds and removes the prefix-list routes with the
    /// call; a gateway endpoint has no interfaces to wait for.
    fn call_modify_gateway_endpoint(
        self,
        step: &'a Step,
        refs: &Resolver<'_>,
    ) -> Result<Call<'a>, AwsError> {
        let ec2 = &self.aws.ec2;
        let Action::ModifyGatewayEndpoint {
            endpoint_id,
            add_route_tables,
            remove_route_tables,
        } = &step.action
        else {
            unreachable!(
                "{} is not {}",
                ActionKind::of(&step.action),
                "ModifyGatewayEndpoint"
            )
        };
        let add = Some(refs.all(add_route_tables)?).filter(|t| !t.is_empty());
        let remove = Some(remove_route_tables.clone()).filter(|t| !t.is_empty());
        let request = ec2
            .modify_vpc_endpoint()
            .vpc_endpoint_id(endpoint_id)
            .set_add_route_table_ids(add)
            .set_remove_route_table_ids(remove);
        Ok(Box::pin(async move {
            self.send(step, "ModifyVpcEndpoint", &[], || request.clone().send())
                .await
                .map_err(|e| AwsError::call("ModifyVpcEndpoint", e))?;
            Ok(Produced::default())
        }))
    }

    /// The call of `ModifyInterfaceEndpoint`.
    fn call_modify_interface_endpoint(
        self,
        step: &'a Step,
        refs: &Resolver<'_>,
    ) -> Result<Call<'a>, AwsError> {
        let ec2 = &self.aws.ec2;
        let Action::ModifyInterfaceEndpoint {
            endpoint_id,
            add_subnets,
            remove_subnets,
        } = &step.action
        else {
            unreachable!(
                "{} is not {}",
                ActionKind::of(&step.action),
                "ModifyInterfaceEndpoint"
            )
        };
        let call: Call<'a> = {
            let request = ec2
                .modify_vpc_endpoint()
                .vpc_endpoint_id(endpoint_id)
                .set_add_subnet_ids(Some(refs.all(add_subnets)?).filter(|s| !s.is_empty()))
                .set_remove_subnet_ids(Some(remove_subnets.clone()).filter(|s| !s.is_empty()));
            Box::pin(async move {
                self.send(step, "ModifyVpcEndpoint", &[], || request.clone().send())
                    .await
                    .map_err(|e| AwsError::call("ModifyVpcEndpoint", e))?;
                // Its interfaces leave the removed subnets before those can be deleted.
                self.wait_for_endpoint(step, endpoint_id, EndpointWait::Available)
                    .await?;
                Ok(Produced::default())
            })
        };
        Ok(call)
    }

    /// One call per rule: AWS refuses a whole batch for one duplicate, and a resumed run may
    /// repeat a rule a killed run authorized.
    pub(super) async fn authorize_egress(
        self,
        step: &'a Step,
        group: String,
        rules: &'a [SecurityGroupRule],
    ) -> Result<Produced, AwsError> {
        for rule in rules {
            let request = self
                .aws
                .ec2
                .authorize_security_group_egress()
                .group_id(&group)
                .ip_permissions(ip_permission(rule));
            let send = || request.clone().send();
            match self
                .send(step, "AuthorizeSecurityGroupEgress", RULE_EXISTS, send)
                .await
            {
                Ok(_) => {}
                Err(e) if has_code(&e, RULE_EXISTS) => {}
                Err(e) => return Err(AwsError::call("AuthorizeSecurityGroupEgress", e)),
            }
        }
        Ok(Produced::default())
    }

    pub(super) async fn revoke_egress(
        self,
        step: &'a Step,
        group: String,
        rules: &'a [SecurityGroupRule],
    ) -> Result<Produced, AwsError> {
        for rule in rules {
            const GONE: &[&str] = &["InvalidPermission.NotFound"];
            let request = self
                .aws
                .ec2
                .revoke_security_group_egress()
                .group_id(&group)
                .ip_permissions(ip_permission(rule));
            let send = || request.clone().send();
            match self
                .send(step, "RevokeSecurityGroupEgress", GONE, send)
                .await
            {
                Ok(_) => {}
                Err(e) if has_code(&e, GONE) => {}
                Err(e) => return Err(AwsError::call("RevokeSecurityGroupEgress", e)),
            }
        }
        Ok(Produced::default())
    }

    /// The endpoint's state; `None` once AWS no longer knows it.
    pub(super) async fn endpoint_state(
        self,
        id: &str,
    ) -> Result<Option<aws_sdk_ec2::types::State>, AwsError> {
        match self
            .aws
            .ec2
            .describe_vpc_endpoints()
            .vpc_endpoint_ids(id)
            .send()
            .await
        {
            Ok(answer) => Ok(answer
                .vpc_endpoints()
                .iter()
                .find(|e| e.vpc_endpoint_id() == Some(id))
                .and_then(|e| e.state().cloned())),
            Err(e) if has_code(&e, ENDPOINT_NOT_FOUND) => Ok(None),
            Err(e) => Err(AwsError::call("DescribeVpcEndpoints", e)),
        }
    }

    /// Polls an endpoint until it is `available` (or gone), within the NAT timeout: both take AWS
    /// minutes.
    pub(super) async fn wait_for_endpoint(
        self,
        step: &'a Step,
        id: &str,
        until: EndpointWait,
    ) -> Result<(), AwsError> {
        let mut backoff = self.backoff(self.inputs.timeouts.nat_gateway);
        loop {
            // AWS and moto write the state in lower case ("available"), the SDK's enum in
            // capitals: compared by name, case left out.
            let state = self.endpoint_state(id).await?;
            let name = state.as_ref().map(|s| s.as_str().to_ascii_lowercase());
            match (until, name.as_deref()) {
                (EndpointWait::Available, Some("available"))
                | (EndpointWait::Gone, None | Some("deleted")) => return Ok(()),
                (EndpointWait::Available, Some(state))
                    if state == "deleted"
                        || fixedip_core::network::endpoint_state_is_dead(state) =>
                {
                    return Err(AwsError::EndpointFailed {
                        id: id.to_owned(),
                        state: name.unwrap_or_default(),
                    })
                }
                // Pending; or not found right after the create, EC2's eventual consistency (a
                // chaos rule): waited out.
                _ => {}
            }
            (self.progress)(Progress::Waiting {
                step,
                what: match until {
                    EndpointWait::Available => "VPC endpoint to become available",
                    EndpointWait::Gone => "VPC endpoint to be deleted",
                },
            });
            if !backoff.pause().await {
                return Err(AwsError::WaitTimeout {
                    what: format!("VPC endpoint {id} to be {until:?}").to_lowercase(),
                    seconds: backoff.waited().as_secs(),
                });
            }
        }
    }

    pub(super) async fn delete_endpoint(
        self,
        step: &'a Step,
        id: &'a str,
    ) -> Result<Produced, AwsError> {
        let request = self.aws.ec2.delete_vpc_endpoints().vpc_endpoint_ids(id);
        let send = || request.clone().send();
        let answer = match self
            .send(step, "DeleteVpcEndpoints", ENDPOINT_NOT_FOUND, send)
            .await
        {
            Ok(answer) => answer,
            Err(e) if has_code(&e, ENDPOINT_NOT_FOUND) => return Ok(Produced::default()),
            Err(e) => return Err(AwsError::call("DeleteVpcEndpoints", e)),
        };
        // The call succeeds as a whole and lists what it could not delete.
        for item in answer.unsuccessful() {
            let error = item.error();
            let code = error.and_then(|e| e.code()).unwrap_or_default();
            if !ENDPOINT_NOT_FOUND.contains(&code) {
                return Err(AwsError::Call {
                    operation: "DeleteVpcEndpoints",
                    code: Some(code.to_owned()),
                    message: error
                        .and_then(|e| e.message())
                        .unwrap_or("refused")
                        .to_owned(),
                });
            }
        }
        self.wait_for_endpoint(step, id, EndpointWait::Gone).await?;
        Ok(Produced::default())
    }
}
