//! Elastic IPs, NAT gateways and NAT instances: allocated, put to work, created and waited for
//! until `available`, deleted and waited for until `deleted`, kept as retained or released.

use super::*;

impl<'a> Context<'a> {
    /// The call of a step of this kind, its references resolved.
    pub(super) fn prepare_nats(
        self,
        step: &'a Step,
        refs: &Resolver<'_>,
    ) -> Result<Call<'a>, AwsError> {
        let ec2 = &self.aws.ec2;
        let call: Call<'a> = match &step.action {
            Action::AllocateAddress { .. } => self.call_allocate_address(step)?,
            Action::ActivateAddress { .. } => self.call_activate_address(step)?,
            Action::CreateNatGateway { .. } => self.call_create_nat_gateway(step, refs)?,
            Action::DeleteNatGateway { nat_gateway } => {
                Box::pin(self.delete_nat_gateway(step, nat_gateway))
            }
            Action::RetainAddress {
                allocation_id,
                pending,
            } => Box::pin(self.retain_address(allocation_id, *pending)),
            Action::ReleaseAddress { allocation_id } => {
                let request = ec2.release_address().allocation_id(allocation_id);
                Box::pin(async move {
                    let send = || request.clone().send();
                    match self
                        .send(step, "ReleaseAddress", ADDRESS_NOT_FOUND, send)
                        .await
                    {
                        Ok(_) => Ok(Produced::default()),
                        Err(e) if has_code(&e, ADDRESS_NOT_FOUND) => Ok(Produced::default()),
                        Err(e) => Err(AwsError::call("ReleaseAddress", e)),
                    }
                })
            }
            Action::CreateNatSecurityGroup { vpc, admit } => {
                Box::pin(self.create_nat_security_group(step, refs.get(vpc)?, admit.to_string()))
            }
            Action::LaunchNatInstance {
                subnet,
                security_group,
                slot,
                instance_type,
                image_parameter,
                public_ip,
                ..
            } => Box::pin(self.launch_nat_instance(
                step,
                refs.get(subnet)?,
                refs.get(security_group)?,
                *slot,
                (instance_type, image_parameter),
                *public_ip,
            )),
            Action::AwaitNatInstanceReady { instance } => {
                Box::pin(self.await_nat_instance_ready(step, refs.get(instance)?))
            }
            Action::DisableSourceDestCheck { instance } => {
                Box::pin(self.disable_source_dest_check(step, refs.get(instance)?))
            }
            Action::AssociateAddress {
                address,
                instance,
                interface,
            } => Box::pin(self.associate_address(
                step,
                refs.get(address)?,
                refs.get(instance)?,
                // The observation's, else the one the launch in this run reported.
                interface.clone().or_else(|| refs.interface(instance)),
            )),
            Action::DisassociateAddress { association_id } => {
                Box::pin(self.disassociate_address(step, association_id))
            }
            Action::DropPublicIp { network_interface } => {
                Box::pin(self.drop_public_ip(step, network_interface))
            }
            Action::StartNatInstance { instance } => {
                Box::pin(self.start_nat_instance(step, instance))
            }
            Action::TerminateNatInstance { instance } => {
                Box::pin(self.terminate_nat_instance(step, instance))
            }
            other => self.prepare_nat_groups(step, refs, other)?,
        };
        Ok(call)
    }

    /// The call of a self-healing NAT's step (`aws/nat_group.rs`).
    fn prepare_nat_groups(
        self,
        step: &'a Step,
        refs: &Resolver<'_>,
        action: &'a Action,
    ) -> Result<Call<'a>, AwsError> {
        let call: Call<'a> = match action {
            Action::CreateNatProfile { name } => Box::pin(self.create_nat_profile(step, name)),
            Action::CreateNatInterface {
                subnet,
                security_group,
                slot,
            } => Box::pin(self.create_nat_interface(
                step,
                refs.get(subnet)?,
                refs.get(security_group)?,
                *slot,
            )),
            Action::AssociateInterfaceAddress { address, interface } => Box::pin(
                self.associate_interface_address(step, refs.get(address)?, refs.get(interface)?),
            ),
            Action::CreateNatLaunchTemplate {
                slot,
                subnet,
                security_group,
                interface,
                profile,
                instance_type,
                image_parameter,
            } => Box::pin(self.create_nat_launch_template(
                step,
                *slot,
                (
                    refs.get(subnet)?,
                    refs.get(security_group)?,
                    refs.get(interface)?,
                    refs.get(profile)?,
                ),
                (instance_type, image_parameter),
            )),
            Action::CreateNatGroup {
                slot,
                template,
                subnet,
            } => {
                Box::pin(self.create_nat_group(step, *slot, refs.get(template)?, refs.get(subnet)?))
            }
            Action::AwaitNatGroupReady { group } => {
                Box::pin(self.await_nat_group_ready(step, refs.get(group)?))
            }
            Action::AwaitNatInterfaceAttached { group, interface } => Box::pin(
                self.await_nat_interface_attached(step, refs.get(group)?, refs.get(interface)?),
            ),
            Action::DeleteNatGroup { name } => Box::pin(self.delete_nat_group(step, name)),
            Action::DeleteNatLaunchTemplate { id } => {
                Box::pin(self.delete_nat_launch_template(step, id))
            }
            Action::DeleteNatInterface { id } => Box::pin(self.delete_nat_interface(step, id)),
            Action::DeleteNatProfile { name } => Box::pin(self.delete_nat_profile(step, name)),
            other => unreachable!("{} is not planned here", ActionKind::of(other)),
        };
        Ok(call)
    }

    /// The call of `AllocateAddress`.
    fn call_allocate_address(self, step: &'a Step) -> Result<Call<'a>, AwsError> {
        let ec2 = &self.aws.ec2;
        let Action::AllocateAddress { slot, held_back } = &step.action else {
            unreachable!(
                "{} is not {}",
                ActionKind::of(&step.action),
                "AllocateAddress"
            )
        };
        let call: Call<'a> = {
            // Tagged at allocation: an address is never, even for a moment, untagged. One held
            // back (not yet shown to the user) is `pending` and carries no traffic.
            let mut tags = self.tags(Component::Address, Some(*slot));
            let usage = if *held_back { "pending" } else { "active" };
            tags.push((tags::ADDRESS.to_owned(), usage.to_owned()));
            let request = ec2
                .allocate_address()
                .domain(DomainType::Vpc)
                .tag_specifications(self.ec2_tags(ResourceType::ElasticIp, tags.clone()));
            let address = |id: Option<&str>, ip: Option<&str>| {
                let missing = AwsError::IncompleteAnswer {
                    operation: "AllocateAddress",
                    missing: "an allocation id",
                };
                Ok(Produced {
                    id: Some(id.ok_or(missing)?.to_owned()),
                    public_ip: ip.map(str::to_owned),
                    interface: None,
                })
            };
            Box::pin(self.create_or_find(
                step,
                "AllocateAddress",
                move || {
                    let request = request.clone().customize().config_override(sent_once());
                    async move {
                        let answer = request.send().await?;
                        Ok(address(answer.allocation_id(), answer.public_ip()))
                    }
                },
                move || {
                    let tags = tags.clone();
                    async move {
                        let addresses = ec2
                            .describe_addresses()
                            .set_filters(Some(tag_filters(&tags)))
                            .send()
                            .await
                            .map_err(|e| AwsError::call("DescribeAddresses", e))?;
                        // Tagged with this stack, slot and use: only the lost allocation is.
                        addresses
                            .addresses()
                            .iter()
                            .find(|a| carries(a.tags(), &tags))
                            .map(|a| address(a.allocation_id(), a.public_ip()))
                            .transpose()
                    }
                },
            ))
        };
        Ok(call)
    }

    /// The call of `ActivateAddress`.
    fn call_activate_address(self, step: &'a Step) -> Result<Call<'a>, AwsError> {
        let ec2 = &self.aws.ec2;
        let Action::ActivateAddress {
            allocation_id,
            slot,
            adopted,
            held_back,
        } = &step.action
        else {
            unreachable!(
                "{} is not {}",
                ActionKind::of(&step.action),
                "ActivateAddress"
            )
        };
        let call: Call<'a> = {
            let mut tags = self.tags(Component::Address, Some(*slot));
            let usage = if *held_back { "pending" } else { "active" };
            tags.push((tags::ADDRESS.to_owned(), usage.to_owned()));
            if *adopted {
                tags.push((tags::ADOPTED.to_owned(), "true".to_owned()));
            }
            let request = ec2.create_tags().resources(allocation_id).set_tags(Some(
                tags.into_iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ));
            let id = allocation_id.clone();
            Box::pin(async move {
                self.send(step, "CreateTags", &[], || request.clone().send())
                    .await
                    .map_err(|e| AwsError::call("CreateTags", e))?;
                Ok(Produced {
                    id: Some(id),
                    public_ip: None,
                    interface: None,
                })
            })
        };
        Ok(call)
    }

    /// The call of `CreateNatGateway`.
    fn call_create_nat_gateway(
        self,
        step: &'a Step,
        refs: &Resolver<'_>,
    ) -> Result<Call<'a>, AwsError> {
        let ec2 = &self.aws.ec2;
        let Action::CreateNatGateway {
            subnet,
            address,
            slot,
            generation,
        } = &step.action
        else {
            unreachable!(
                "{} is not {}",
                ActionKind::of(&step.action),
                "CreateNatGateway"
            )
        };
        let call: Call<'a> = {
            let (subnet, address) = (refs.get(subnet)?, refs.get(address)?);
            let token = tokens::nat_gateway(self.stack(), *slot, &subnet, &address, *generation);
            let tags = self.tags(Component::NatGateway, Some(*slot));
            let request = ec2
                .create_nat_gateway()
                .subnet_id(&subnet)
                .allocation_id(&address)
                .client_token(token)
                .tag_specifications(self.ec2_tags(ResourceType::Natgateway, tags.clone()));
            let timeout = self.inputs.timeouts.nat_gateway;
            // AWS answers a repeated token with the same gateway; moto does not (it tries a
            // second gateway on the same address and fails), so a lost answer is looked up
            // by tags in the subnet too before the token is sent again.
            let created_nat = self.create_or_find(
                step,
                "CreateNatGateway",
                move || {
                    let request = request.clone().customize().config_override(sent_once());
                    async move {
                        let answer = request.send().await?;
                        Ok(created(
                            answer.nat_gateway().and_then(|n| n.nat_gateway_id()),
                            "CreateNatGateway",
                        ))
                    }
                },
                move || {
                    let (tags, subnet) = (tags.clone(), subnet.clone());
                    async move {
                        // Narrowed by subnet: moto ignores tag filters on NAT gateways.
                        let gateways = ec2
                            .describe_nat_gateways()
                            .filter(filter("subnet-id", &subnet))
                            .send()
                            .await
                            .map_err(|e| AwsError::call("DescribeNatGateways", e))?;
                        Ok(gateways
                            .nat_gateways()
                            .iter()
                            .filter(|n| carries(n.tags(), &tags))
                            .filter(|n| {
                                use aws_sdk_ec2::types::NatGatewayState as S;
                                matches!(n.state(), Some(S::Pending | S::Available))
                            })
                            .find_map(|n| n.nat_gateway_id())
                            .map(produced))
                    }
                },
            );
            Box::pin(async move {
                let id = created_nat.await?.id.ok_or(AwsError::IncompleteAnswer {
                    operation: "CreateNatGateway",
                    missing: "a NAT gateway id",
                })?;
                self.wait_nat_gateway_available(step, &id, timeout).await?;
                Ok(Produced {
                    id: Some(id),
                    public_ip: None,
                    interface: None,
                })
            })
        };
        Ok(call)
    }

    /// Polls a new gateway until it is `available`. A `failed` one is reported with AWS's
    /// FailureCode and FailureMessage (deploy plans again once, and the planner replaces it); not found is
    /// eventual consistency right after the create (the SDK's waiter retries it too).
    async fn wait_nat_gateway_available(
        self,
        step: &'a Step,
        id: &str,
        timeout: Duration,
    ) -> Result<(), AwsError> {
        use aws_sdk_ec2::types::NatGatewayState as S;
        let mut backoff = self.backoff(timeout);
        loop {
            let answer = match self
                .aws
                .ec2
                .describe_nat_gateways()
                .nat_gateway_ids(id)
                .send()
                .await
            {
                Ok(answer) => answer,
                Err(e) if has_code(&e, &["NatGatewayNotFound", "InvalidNatGatewayID.NotFound"]) => {
                    aws_sdk_ec2::operation::describe_nat_gateways::DescribeNatGatewaysOutput::builder()
                        .build()
                }
                Err(e) => return Err(AwsError::call("DescribeNatGateways", e)),
            };
            let gateway = answer
                .nat_gateways()
                .iter()
                .find(|n| n.nat_gateway_id() == Some(id));
            match gateway.and_then(|n| n.state()) {
                Some(S::Available) => return Ok(()),
                Some(state @ (S::Failed | S::Deleting | S::Deleted)) => {
                    let gateway = gateway.expect("a state is a gateway's");
                    return Err(AwsError::NatGatewayFailed {
                        id: id.to_owned(),
                        state: state.as_str().to_owned(),
                        code: gateway.failure_code().map(str::to_owned),
                        message: gateway
                            .failure_message()
                            .unwrap_or("no FailureMessage")
                            .to_owned(),
                    });
                }
                _ => {}
            }
            (self.progress)(Progress::Waiting {
                step,
                what: "NAT gateway to become available",
            });
            if !backoff.pause().await {
                return Err(AwsError::WaitTimeout {
                    what: format!("NAT gateway {id} to become available"),
                    seconds: backoff.waited().as_secs(),
                });
            }
        }
    }

    /// The gateway's state and the addresses it holds; `None` when AWS no longer knows it.
    pub(super) async fn nat_gateway_state(
        self,
        id: &str,
    ) -> Result<Option<(aws_sdk_ec2::types::NatGatewayState, Vec<String>)>, AwsError> {
        match self
            .aws
            .ec2
            .describe_nat_gateways()
            .nat_gateway_ids(id)
            .send()
            .await
        {
            Ok(answer) => Ok(answer
                .nat_gateways()
                .iter()
                .find(|n| n.nat_gateway_id() == Some(id))
                .and_then(|n| {
                    let addresses = n
                        .nat_gateway_addresses()
                        .iter()
                        .filter_map(|a| a.allocation_id().map(str::to_owned))
                        .collect();
                    Some((n.state()?.clone(), addresses))
                })),
            Err(e) if has_code(&e, &["NatGatewayNotFound", "InvalidNatGatewayID.NotFound"]) => {
                Ok(None)
            }
            Err(e) => Err(AwsError::call("DescribeNatGateways", e)),
        }
    }

    pub(super) async fn delete_nat_gateway(
        self,
        step: &'a Step,
        id: &'a str,
    ) -> Result<Produced, AwsError> {
        use aws_sdk_ec2::types::NatGatewayState;
        // Asked first: moto answers DeleteNatGateway on a gone id with an HTTP 500. The
        // addresses it held are freed by the DisassociateAddress steps the plan puts after this
        // one (see `emulator.rs`).
        match self.nat_gateway_state(id).await? {
            None | Some((NatGatewayState::Deleted, _)) => return Ok(Produced::default()),
            Some((NatGatewayState::Deleting, _)) => {}
            Some(_) => {
                const GONE: &[&str] = &["NatGatewayNotFound", "InvalidNatGatewayID.NotFound"];
                let request = self.aws.ec2.delete_nat_gateway().nat_gateway_id(id);
                match self
                    .send(step, "DeleteNatGateway", GONE, || request.clone().send())
                    .await
                {
                    Ok(_) => {}
                    Err(e)
                        if has_code(
                            &e,
                            &["NatGatewayNotFound", "InvalidNatGatewayID.NotFound"],
                        ) =>
                    {
                        return Ok(Produced::default())
                    }
                    Err(e) => return Err(AwsError::call("DeleteNatGateway", e)),
                }
            }
        }
        // The SDK's waiter knows `available` only; `deleted` is polled here.
        let mut backoff = self.backoff(self.inputs.timeouts.nat_gateway);
        loop {
            match self.nat_gateway_state(id).await? {
                None | Some((NatGatewayState::Deleted, _)) => break,
                Some(_) => {
                    (self.progress)(Progress::Waiting {
                        step,
                        what: "NAT gateway to be deleted",
                    });
                    if !backoff.pause().await {
                        return Err(AwsError::WaitTimeout {
                            what: format!("NAT gateway {id} to be deleted"),
                            seconds: backoff.waited().as_secs(),
                        });
                    }
                }
            }
        }
        Ok(Produced::default())
    }

    pub(super) async fn retain_address(
        self,
        allocation_id: &'a str,
        pending: bool,
    ) -> Result<Produced, AwsError> {
        let ec2 = &self.aws.ec2;
        let usage = if pending { "pending" } else { "retained" };
        let retained = Tag::builder().key(tags::ADDRESS).value(usage).build();
        // Tagged retained first: a run killed between the two calls leaves a retained address
        // with a stale slot, which the planner ignores; never an active one without a NAT.
        match ec2
            .create_tags()
            .resources(allocation_id)
            .tags(retained)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if has_code(&e, ADDRESS_NOT_FOUND) => return Ok(Produced::default()),
            Err(e) => return Err(AwsError::call("CreateTags", e)),
        }
        match ec2
            .delete_tags()
            .resources(allocation_id)
            .tags(Tag::builder().key(tags::SLOT).build())
            .send()
            .await
        {
            Ok(_) => Ok(Produced::default()),
            Err(e) if has_code(&e, ADDRESS_NOT_FOUND) => Ok(Produced::default()),
            Err(e) => Err(AwsError::call("DeleteTags", e)),
        }
    }
}
