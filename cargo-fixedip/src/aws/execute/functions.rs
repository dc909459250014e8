//! The stack's role and the functions: created, updated (retried while Lambda is updating or a
//! fresh role is not yet assumable), tagged, taken out of the VPC or deleted; and Lambda's
//! lingering network interfaces, waited out before what holds them goes.

use super::*;
use crate::aws::FunctionFailure;

/// A Lambda network interface that still holds a subnet or security group.
pub(super) struct LambdaInterface {
    id: String,
    available: bool,
    /// From its description, `AWS Lambda VPC ENI-<function>-<uuid>`.
    function: Option<String>,
}

/// The function named in a Lambda ENI's description, without the UUID AWS appends.
pub(super) fn function_of_lambda_eni(description: &str) -> Option<String> {
    let rest = description.strip_prefix(LAMBDA_ENI_DESCRIPTION)?;
    // `<function>-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`: a UUID is 36 characters.
    let name = match rest.len().checked_sub(37).map(|cut| rest.split_at(cut)) {
        Some((name, uuid))
            if uuid.starts_with('-')
                && uuid[1..].split('-').map(str::len).eq([8, 4, 4, 4, 12])
                && uuid[1..]
                    .bytes()
                    .all(|b| b == b'-' || b.is_ascii_hexdigit()) =>
        {
            name
        }
        _ => rest,
    };
    (!name.is_empty()).then(|| name.to_owned())
}

/// What a function is waited for to reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Settled {
    /// `State: Active`, after CreateFunction.
    Active,
    /// `LastUpdateStatus: Successful` (and not `Pending`), after an update.
    Updated,
}

/// A function Lambda could not create or update, with Lambda's reason.
fn function_failed(
    name: &str,
    failed: FunctionFailure,
    code: Option<&str>,
    reason: Option<&str>,
) -> AwsError {
    AwsError::FunctionFailed {
        name: name.to_owned(),
        failed,
        code: code.map(str::to_owned),
        reason: reason.unwrap_or("no StateReason").to_owned(),
    }
}

/// Where a function is attached, with every reference resolved.
pub(super) struct Attachment {
    subnets: Vec<String>,
    security_group: String,
    role: String,
}

pub(super) fn lambda_architecture(function: &FunctionSpec) -> aws_sdk_lambda::types::Architecture {
    aws_sdk_lambda::types::Architecture::from(function.architecture.lambda_name())
}

pub(in crate::aws) fn iam_tags(tags: Vec<(String, String)>) -> Vec<aws_sdk_iam::types::Tag> {
    tags.into_iter()
        .filter_map(|(key, value)| {
            aws_sdk_iam::types::Tag::builder()
                .key(key)
                .value(value)
                .build()
                .ok()
        })
        .collect()
}

/// A role's name from its ARN (`arn:aws:iam::123456789012:role/path/name`), or the name itself.
pub(super) fn role_name(role: &str) -> &str {
    if role.starts_with("arn:") {
        role.rsplit('/').next().unwrap_or(role)
    } else {
        role
    }
}

impl<'a> Context<'a> {
    /// The call of a step of this kind, its references resolved.
    pub(super) fn prepare_functions(
        self,
        step: &'a Step,
        refs: &Resolver<'_>,
    ) -> Result<Call<'a>, AwsError> {
        let call: Call<'a> = match &step.action {
            Action::CreateRole { .. } => self.call_create_role(step)?,
            Action::AttachRolePolicy { .. } => self.call_attach_role_policy(step, refs)?,
            Action::CreateFunction { .. } => self.call_create_function(step, refs)?,
            Action::AwaitFunctionActive { name } => Box::pin(async move {
                self.wait_until_settled(step, name, Settled::Active).await?;
                Ok(Produced::default())
            }),
            Action::UpdateFunctionConfiguration { .. } => {
                self.call_update_function_configuration(step, refs)?
            }
            Action::UpdateFunctionCode { function } => {
                let zip = self.zip(function)?;
                Box::pin(self.update_function_code(step, function, zip))
            }
            Action::TagFunction { .. } => self.call_tag_function(step)?,
            Action::DetachFunction { name } => Box::pin(self.detach_function(step, name)),
            Action::DeleteFunction { name } => Box::pin(self.delete_function(step, name)),
            Action::ClearLambdaInterfaces { holder } => {
                Box::pin(self.clear_lambda_interfaces(step, holder))
            }
            Action::DeleteRole { role, policy_arns } => {
                Box::pin(self.delete_role(role, policy_arns))
            }
            other => unreachable!("{} is not planned here", ActionKind::of(other)),
        };
        Ok(call)
    }

    /// The call of `CreateRole`.
    fn call_create_role(self, step: &'a Step) -> Result<Call<'a>, AwsError> {
        let Action::CreateRole { name } = &step.action else {
            unreachable!("{} is not {}", ActionKind::of(&step.action), "CreateRole")
        };
        let call: Call<'a> = {
            let request = self
                .aws
                .iam
                .create_role()
                .role_name(name)
                .assume_role_policy_document(LAMBDA_TRUST_POLICY)
                .description(format!(
                    "Execution role of the Lambda functions of fixedip stack {}",
                    self.stack()
                ))
                .set_tags(Some(iam_tags(self.tags(Component::Role, None))));
            Box::pin(async move {
                let answer = self
                    .send(step, "CreateRole", &[], || request.clone().send())
                    .await
                    .map_err(|e| AwsError::call("CreateRole", e))?;
                let role = answer.role().ok_or(AwsError::IncompleteAnswer {
                    operation: "CreateRole",
                    missing: "the role",
                })?;
                Ok(Produced {
                    id: Some(role.arn().to_owned()),
                    public_ip: None,
                    interface: None,
                })
            })
        };
        Ok(call)
    }

    /// The call of `AttachRolePolicy`.
    fn call_attach_role_policy(
        self,
        step: &'a Step,
        refs: &Resolver<'_>,
    ) -> Result<Call<'a>, AwsError> {
        let Action::AttachRolePolicy { role, policy_arn } = &step.action else {
            unreachable!(
                "{} is not {}",
                ActionKind::of(&step.action),
                "AttachRolePolicy"
            )
        };
        let call: Call<'a> = {
            let request = self
                .aws
                .iam
                .attach_role_policy()
                .role_name(role_name(&refs.get(role)?))
                .policy_arn(policy_arn);
            Box::pin(self.send_done(step, "AttachRolePolicy", move || request.clone().send()))
        };
        Ok(call)
    }

    /// The call of `CreateFunction`.
    fn call_create_function(
        self,
        step: &'a Step,
        refs: &Resolver<'_>,
    ) -> Result<Call<'a>, AwsError> {
        let Action::CreateFunction {
            function,
            subnets,
            security_group,
            role,
        } = &step.action
        else {
            unreachable!(
                "{} is not {}",
                ActionKind::of(&step.action),
                "CreateFunction"
            )
        };
        let call: Call<'a> = {
            let zip = self.zip(function)?;
            let attachment = Attachment {
                subnets: refs.all(subnets)?,
                security_group: refs.get(security_group)?,
                role: refs.get(role)?,
                // Only a role made by this very run may still be propagating through IAM.
            };
            Box::pin(self.create_function(step, function, zip, attachment))
        };
        Ok(call)
    }

    /// The call of `UpdateFunctionConfiguration`.
    fn call_update_function_configuration(
        self,
        step: &'a Step,
        refs: &Resolver<'_>,
    ) -> Result<Call<'a>, AwsError> {
        let Action::UpdateFunctionConfiguration {
            function,
            subnets,
            security_group,
            role,
        } = &step.action
        else {
            unreachable!(
                "{} is not {}",
                ActionKind::of(&step.action),
                "UpdateFunctionConfiguration"
            )
        };
        let call: Call<'a> = {
            let attachment = Attachment {
                subnets: refs.all(subnets)?,
                security_group: refs.get(security_group)?,
                role: refs.get(role)?,
            };
            Box::pin(self.update_function_configuration(step, function, attachment))
        };
        Ok(call)
    }

    /// The call of `TagFunction`.
    fn call_tag_function(self, step: &'a Step) -> Result<Call<'a>, AwsError> {
        let Action::TagFunction { function, arn } = &step.action else {
            unreachable!("{} is not {}", ActionKind::of(&step.action), "TagFunction")
        };
        let call: Call<'a> = {
            let mut tags: BTreeMap<String, String> = function.tags.clone();
            tags.extend(self.tags(Component::Function, None));
            let request = self
                .aws
                .lambda
                .tag_resource()
                .resource(arn)
                .set_tags(Some(tags.into_iter().collect()));
            Box::pin(self.send_done(step, "TagResource", move || request.clone().send()))
        };
        Ok(call)
    }

    pub(super) fn zip(&self, function: &FunctionSpec) -> Result<Vec<u8>, AwsError> {
        self.inputs
            .zips
            .get(&function.name)
            .cloned()
            .ok_or_else(|| AwsError::Call {
                operation: "CreateFunction",
                code: None,
                message: format!(
                    "fixedip bug: no deployment package was given for function `{}`",
                    function.name
                ),
            })
    }

    pub(super) async fn create_function(
        self,
        step: &'a Step,
        function: &'a FunctionSpec,
        zip: Vec<u8>,
        attachment: Attachment,
    ) -> Result<Produced, AwsError> {
        use aws_sdk_lambda::types::{Environment, FunctionCode, Runtime, VpcConfig};
        let lambda = &self.aws.lambda;
        let mut tags: BTreeMap<String, String> = function.tags.clone();
        tags.extend(self.tags(Component::Function, None));
        let request = lambda
            .create_function()
            .function_name(&function.name)
            // A Rust function is its own runtime: `bootstrap` in the zip, on Amazon Linux 2023.
            .runtime(Runtime::Providedal2023)
            .handler("bootstrap")
            .architectures(lambda_architecture(function))
            .memory_size(function.memory_mb as i32)
            .timeout(function.timeout_s as i32)
            .role(&attachment.role)
            .environment(
                Environment::builder()
                    .set_variables(Some(function.environment.clone().into_iter().collect()))
                    .build(),
            )
            .vpc_config(
                VpcConfig::builder()
                    .set_subnet_ids(Some(attachment.subnets.clone()))
                    .security_group_ids(&attachment.security_group)
                    // IPv6 would leave from the function's own address, not the fixed IPs.
                    .ipv6_allowed_for_dual_stack(false)
                    .build(),
            )
            .code(FunctionCode::builder().zip_file(zip.into()).build())
            .set_tags(Some(tags.into_iter().collect()));

        // IAM is eventually consistent: Lambda may not assume the role yet (the policy retries
        // that, see `policy.rs`), whether it is new or had a policy attached moments ago.
        let answer = self
            .send(step, "CreateFunction", &[], || request.clone().send())
            .await
            .map_err(|e| AwsError::call("CreateFunction", e))?;
        Ok(Produced {
            id: answer.function_arn().map(str::to_owned),
            public_ip: None,
            interface: None,
        })
    }

    pub(super) async fn update_function_configuration(
        self,
        step: &'a Step,
        function: &'a FunctionSpec,
        attachment: Attachment,
    ) -> Result<Produced, AwsError> {
        use aws_sdk_lambda::types::{Environment, VpcConfig};
        let request = self
            .aws
            .lambda
            .update_function_configuration()
            .function_name(&function.name)
            .memory_size(function.memory_mb as i32)
            .timeout(function.timeout_s as i32)
            .role(&attachment.role)
            .environment(
                Environment::builder()
                    .set_variables(Some(function.environment.clone().into_iter().collect()))
                    .build(),
            )
            .vpc_config(
                VpcConfig::builder()
                    .set_subnet_ids(Some(attachment.subnets.clone()))
                    .security_group_ids(&attachment.security_group)
                    // IPv6 would leave from the function's own address, not the fixed IPs.
                    .ipv6_allowed_for_dual_stack(false)
                    .build(),
            );
        self.send(step, "UpdateFunctionConfiguration", &[], || {
            request.clone().send()
        })
        .await
        .map_err(|e| AwsError::call("UpdateFunctionConfiguration", e))?;
        self.wait_until_settled(step, &function.name, Settled::Updated)
            .await?;
        Ok(Produced::default())
    }

    pub(super) async fn update_function_code(
        self,
        step: &'a Step,
        function: &'a FunctionSpec,
        zip: Vec<u8>,
    ) -> Result<Produced, AwsError> {
        let request = self
            .aws
            .lambda
            .update_function_code()
            .function_name(&function.name)
            .architectures(lambda_architecture(function))
            .zip_file(zip.into());
        self.send(step, "UpdateFunctionCode", &[], || request.clone().send())
            .await
            .map_err(|e| AwsError::call("UpdateFunctionCode", e))?;
        self.wait_until_settled(step, &function.name, Settled::Updated)
            .await?;
        Ok(Produced::default())
    }

    /// Polls a function until it is `Active` (after a create) or its last update `Successful`.
    /// `Failed` is reported with Lambda's `StateReasonCode: StateReason` (or the update's): a
    /// function that failed to create must be deleted and created again (Lambda developer guide,
    /// function states), which deploy plans again for, once.
    pub(super) async fn wait_until_settled(
        self,
        step: &'a Step,
        name: &str,
        until: Settled,
    ) -> Result<(), AwsError> {
        use aws_sdk_lambda::types::{LastUpdateStatus, State};
        let mut backoff = policy::Retries::new();
        let budget = Budget {
            first: self.inputs.timeouts.first_pause(),
            cap: self.inputs.timeouts.poll_first,
            total: self.inputs.timeouts.function,
        };
        loop {
            let configuration = self
                .send(step, "GetFunctionConfiguration", &[], || {
                    self.aws
                        .lambda
                        .get_function_configuration()
                        .function_name(name)
                        .send()
                })
                .await
                .map_err(|e| AwsError::call("GetFunctionConfiguration", e))?;
            let state = configuration.state();
            let update = configuration.last_update_status();
            if state == Some(&State::Failed) {
                return Err(function_failed(
                    name,
                    FunctionFailure::Creation,
                    configuration.state_reason_code().map(|c| c.as_str()),
                    configuration.state_reason(),
                ));
            }
            if update == Some(&LastUpdateStatus::Failed) {
                return Err(function_failed(
                    name,
                    FunctionFailure::Update,
                    configuration
                        .last_update_status_reason_code()
                        .map(|c| c.as_str()),
                    configuration.last_update_status_reason(),
                ));
            }
            let pending = state == Some(&State::Pending)
                || (until == Settled::Updated && update == Some(&LastUpdateStatus::InProgress));
            if !pending {
                return Ok(());
            }
            (self.progress)(Progress::Waiting {
                step,
                what: match until {
                    Settled::Active => "function to become active",
                    Settled::Updated => "function update to finish",
                },
            });
            let Some(pause) = backoff.next_pause(budget) else {
                return Err(AwsError::WaitTimeout {
                    what: match until {
                        Settled::Active => format!("function {name} to become active"),
                        Settled::Updated => format!("function {name} to finish updating"),
                    },
                    seconds: backoff.waited().as_secs(),
                });
            };
            tokio::time::sleep(pause).await;
        }
    }

    pub(super) async fn detach_function(
        self,
        step: &'a Step,
        name: &'a str,
    ) -> Result<Produced, AwsError> {
        use aws_sdk_lambda::types::VpcConfig;
        // Empty lists take the function out of the VPC; nothing else of its configuration changes.
        let request = self
            .aws
            .lambda
            .update_function_configuration()
            .function_name(name)
            .vpc_config(
                VpcConfig::builder()
                    .set_subnet_ids(Some(Vec::new()))
                    .set_security_group_ids(Some(Vec::new()))
                    .build(),
            );
        const GONE: &[&str] = &["ResourceNotFoundException"];
        let answer = match self
            .send(step, "UpdateFunctionConfiguration", GONE, || {
                request.clone().send()
            })
            .await
        {
            Ok(answer) => answer,
            // Deleted meanwhile (by a killed run with --delete-function, or by hand): not in the VPC.
            Err(e) if has_code(&e, GONE) => return Ok(Produced::default()),
            Err(e) => return Err(AwsError::call("UpdateFunctionConfiguration", e)),
        };
        self.wait_until_settled(step, name, Settled::Updated)
            .await?;
        Ok(Produced {
            id: answer.function_arn().map(str::to_owned),
            public_ip: None,
            interface: None,
        })
    }

    pub(super) async fn delete_function(
        self,
        step: &'a Step,
        name: &'a str,
    ) -> Result<Produced, AwsError> {
        let lambda = &self.aws.lambda;
        const GONE: &[&str] = &["ResourceNotFoundException"];
        let deleted = self
            .send(step, "DeleteFunction", GONE, || {
                lambda.delete_function().function_name(name).send()
            })
            .await;
        match deleted {
            Ok(_) => {}
            Err(e) if has_code(&e, GONE) => return Ok(Produced::default()),
            Err(e) => return Err(AwsError::call("DeleteFunction", e)),
        }
        let mut backoff = self.backoff(self.inputs.timeouts.function);
        loop {
            match lambda.get_function().function_name(name).send().await {
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    return Ok(Produced::default())
                }
                Err(e) => return Err(AwsError::call("GetFunction", e)),
                Ok(_) => {
                    (self.progress)(Progress::Waiting {
                        step,
                        what: "the function to be deleted",
                    });
                    if !backoff.pause().await {
                        return Err(AwsError::WaitTimeout {
                            what: format!("function {name} to be deleted"),
                            seconds: backoff.waited().as_secs(),
                        });
                    }
                }
            }
        }
    }

    /// The Lambda interfaces in a subnet or security group. On AWS they have the interface type
    /// `lambda`; their description names the function either way, which is what the chaos layer's
    /// stand-ins carry too.
    pub(super) async fn lambda_interfaces(
        self,
        holder: &InterfaceHolder,
    ) -> Result<Vec<LambdaInterface>, AwsError> {
        use aws_sdk_ec2::types::{Filter, NetworkInterfaceStatus};
        let filter = match holder {
            InterfaceHolder::Subnet(id) => Filter::builder().name("subnet-id").values(id),
            InterfaceHolder::SecurityGroup(id) => Filter::builder().name("group-id").values(id),
        };
        let interfaces = self
            .aws
            .ec2
            .describe_network_interfaces()
            .filters(filter.build())
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| AwsError::call("DescribeNetworkInterfaces", e))?;
        Ok(interfaces
            .into_iter()
            .filter_map(|eni| {
                let description = eni.description().unwrap_or_default();
                let lambda = eni.interface_type().map(|t| t.as_str()) == Some("lambda")
                    || description.starts_with(LAMBDA_ENI_DESCRIPTION);
                if !lambda {
                    return None;
                }
                Some(LambdaInterface {
                    id: eni.network_interface_id()?.to_owned(),
                    available: eni.status() == Some(&NetworkInterfaceStatus::Available),
                    function: function_of_lambda_eni(description),
                })
            })
            .collect())
    }

    pub(super) async fn clear_lambda_interfaces(
        self,
        step: &'a Step,
        holder: &'a InterfaceHolder,
    ) -> Result<Produced, AwsError> {
        let mut backoff = self.long_backoff(self.inputs.timeouts.lambda_interfaces);
        loop {
            let interfaces = self.lambda_interfaces(holder).await?;
            if interfaces.is_empty() {
                return Ok(Produced::default());
            }
            let mut left = Vec::new();
            for interface in interfaces {
                if !interface.available {
                    left.push(interface);
                    continue;
                }
                // Released by Lambda: ours to delete. Another run may have deleted it, or Lambda
                // may have taken it back into use in between: both are fine, the next poll sees.
                let deleted = self
                    .aws
                    .ec2
                    .delete_network_interface()
                    .network_interface_id(&interface.id)
                    .send()
                    .await;
                match deleted {
                    Ok(_) => {}
                    Err(e) if has_code(&e, &["InvalidNetworkInterfaceID.NotFound"]) => {}
                    // What AWS answers for an interface Lambda still holds ("Network interface
                    // 'eni-…' is currently in use."): Lambda lets go on its own, the next poll
                    // sees; the policy's in-use class, waited for by this loop's own bound.
                    Err(e)
                        if classify("DeleteNetworkInterface", Failure::of(&e), false)
                            == Class::InUse => {}
                    Err(e) => return Err(AwsError::call("DeleteNetworkInterface", e)),
                }
            }
            if left.is_empty() {
                continue;
            }
            (self.progress)(Progress::Waiting {
                step,
                what: "AWS to release Lambda's network interfaces",
            });
            if !backoff.pause().await {
                let ids: Vec<&str> = left.iter().map(|i| i.id.as_str()).collect();
                let mut functions: Vec<&str> =
                    left.iter().filter_map(|i| i.function.as_deref()).collect();
                functions.sort();
                functions.dedup();
                let functions = if functions.is_empty() {
                    String::new()
                } else {
                    format!(" (of functions {})", functions.join(", "))
                };
                return Err(AwsError::WaitTimeout {
                    what: format!(
                        "Lambda's network interfaces {}{functions} to leave {holder}; AWS releases them on its own, run destroy again to resume here",
                        ids.join(", ")
                    ),
                    seconds: backoff.waited().as_secs(),
                });
            }
        }
    }

    pub(super) async fn delete_role(
        self,
        role: &'a str,
        policy_arns: &'a [String],
    ) -> Result<Produced, AwsError> {
        let iam = &self.aws.iam;
        let name = role_name(role);
        for policy in policy_arns {
            match iam
                .detach_role_policy()
                .role_name(name)
                .policy_arn(policy)
                .send()
                .await
            {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_no_such_entity_exception()) => {}
                Err(e) => return Err(AwsError::call("DetachRolePolicy", e)),
            }
        }
        match iam.delete_role().role_name(name).send().await {
            Ok(_) => Ok(Produced::default()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                Ok(Produced::default())
            }
            Err(e) => Err(AwsError::call("DeleteRole", e)),
        }
    }
}
