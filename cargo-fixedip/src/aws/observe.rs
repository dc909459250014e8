//! Observing what exists for one stack: the planner's other input.
//!
//! Only reads, all at once: the network by the stack's tags ([`super::network::describe_stack`]),
//! turned into the stack's view by fixedip-core ([`stack_view`]); the AZs the region offers; the
//! stack's role and the functions by name; a network the user runs, by its id.
//! Not-found is matched on typed errors (IAM `NoSuchEntity`, Lambda `ResourceNotFound`), or on the
//! documented EC2 error code, never on a message.

use aws_sdk_ec2::types::AvailabilityZoneState;
use fixedip_core::network::Network;
use fixedip_core::observed::{
    stack_view, ObservedFunction, ObservedRole, ObservedSecurityGroup, ObservedState, Tier,
    ViewError,
};
use fixedip_core::plan::StackSpec;
use fixedip_core::requirements::{AllocationId, StackName};
use fixedip_core::settings::Architecture;
use fixedip_core::tags;

use super::network::{describe_stack, subnets_of_vpcs};
use super::{Aws, AwsError};
/// What to look for: the stack (by its tags), the functions (by name) and the adopted addresses.
#[derive(Debug, Clone)]
pub struct Scope {
    pub stack: StackName,
    /// Lambda functions to look up by name, whether or not they are attached yet.
    pub functions: Vec<String>,
    /// Addresses named by `ips = [...]`, looked up by allocation id whatever their tags.
    pub adopted_ips: Vec<AllocationId>,
    /// Also list every function attached to the stack's private subnets (`status`). Costs a
    /// ListFunctions over the whole region, so `deploy` and `plan` leave it off.
    pub attached_functions: bool,
    /// A VPC the user runs (`vpc = "vpc-..."`), read by id whatever its tags.
    pub existing_vpc: Option<String>,
}

impl Scope {
    /// Just the stack: what `ips` and `status` need.
    pub fn stack(stack: StackName) -> Scope {
        Scope {
            stack,
            functions: Vec::new(),
            adopted_ips: Vec::new(),
            attached_functions: false,
            existing_vpc: None,
        }
    }
}

impl From<&StackSpec> for Scope {
    fn from(spec: &StackSpec) -> Scope {
        Scope {
            stack: spec.stack.clone(),
            functions: spec.functions.iter().map(|f| f.name.clone()).collect(),
            adopted_ips: spec.adopted_ips.clone(),
            attached_functions: false,
            existing_vpc: spec.modes.existing.as_ref().map(|e| e.vpc.clone()),
        }
    }
}

/// Reads everything the stack's tags lead to, and the availability zones the region offers.
pub async fn observe(aws: &Aws, scope: &Scope) -> Result<ObservedState, AwsError> {
    let stack = &scope.stack;
    let (offered_azs, network, role, named, existing_network) = tokio::try_join!(
        offered_azs(aws),
        describe_stack(aws, stack, &scope.adopted_ips),
        find_role(aws, stack),
        find_functions_by_name(aws, &scope.functions),
        async {
            match &scope.existing_vpc {
                Some(vpc) => super::existing::observe_existing_network(aws, vpc).await,
                None => Ok(None),
            }
        },
    )?;
    let view = view_of(aws, stack, &scope.adopted_ips, &network).await?;

    let mut functions = named;
    if scope.attached_functions {
        let private: Vec<&str> = view
            .subnets
            .iter()
            .filter(|s| s.tier == Tier::Private)
            .map(|s| s.id.as_str())
            .collect();
        // On a network the user runs, the stack has no subnet: its security group finds them.
        let group = view.security_group.as_ref().map(|g| g.id.as_str());
        for function in find_attached_functions(aws, &private, group).await? {
            if !functions.iter().any(|f| f.name == function.name) {
                functions.push(function);
            }
        }
    }

    Ok(ObservedState {
        offered_azs,
        role,
        functions,
        existing_network,
        // Filled by the quota check (`address_quota`); unknown means "not checked".
        address_quota: None,
        addresses_in_use_in_region: None,
        ..view
    })
}

/// The stack's view of what its tags lead to; what cannot be told apart is refused, naming it.
async fn view_of(
    aws: &Aws,
    stack: &StackName,
    adopted: &[AllocationId],
    network: &Network,
) -> Result<ObservedState, AwsError> {
    match stack_view(stack, &aws.region, adopted, network) {
        Ok(view) => Ok(view),
        // Which VPC is the stack's is not guessed: the error names each with what it holds, and
        // says which to delete (one without subnets was made by a create sent twice).
        Err(ViewError::DuplicateVpcs { vpcs, .. }) => {
            let subnets = subnets_of_vpcs(aws, &vpcs).await?;
            let held: Vec<(String, usize)> = vpcs
                .iter()
                .map(|id| {
                    (
                        id.clone(),
                        subnets.iter().filter(|s| s.vpc_id == *id).count(),
                    )
                })
                .collect();
            Err(AwsError::duplicate_vpcs(stack.as_str(), &held))
        }
        Err(ViewError::Duplicate { component, ids, .. }) => Err(AwsError::Duplicate {
            stack: stack.to_string(),
            component,
            ids,
        }),
        Err(ViewError::AddressWithoutIp { .. }) => Err(AwsError::IncompleteAnswer {
            operation: "DescribeAddresses",
            missing: "a public IPv4 address",
        }),
    }
}

/// The account's Elastic IP quota in the region (DescribeAccountAttributes `vpc-max-elastic-ips`)
/// and how many addresses it holds there (DescribeAddresses, unfiltered), for the planner's quota
/// check. Two calls more: `deploy` asks only when its plan allocates (see `commands/deploy.rs`).
pub async fn address_quota(aws: &Aws, observed: &mut ObservedState) -> Result<(), AwsError> {
    use aws_sdk_ec2::types::AccountAttributeName;
    let attributes = aws
        .ec2
        .describe_account_attributes()
        .attribute_names(AccountAttributeName::from("vpc-max-elastic-ips"));
    let (attributes, addresses) =
        tokio::join!(attributes.send(), aws.ec2.describe_addresses().send());
    let attributes = attributes.map_err(|e| AwsError::call("DescribeAccountAttributes", e))?;
    let addresses = addresses.map_err(|e| AwsError::call("DescribeAddresses", e))?;
    observed.address_quota = attributes
        .account_attributes()
        .iter()
        .find(|a| a.attribute_name() == Some("vpc-max-elastic-ips"))
        .and_then(|a| a.attribute_values().first())
        .and_then(|v| v.attribute_value())
        .and_then(|v| v.parse().ok());
    observed.addresses_in_use_in_region = Some(addresses.addresses().len() as u32);
    Ok(())
}

/// The functions' security group of a stack, with its rules: what `deploy` checks against the
/// declared egress after it has run.
pub async fn stack_security_group(
    aws: &Aws,
    stack: &StackName,
) -> Result<Option<ObservedSecurityGroup>, AwsError> {
    let groups = super::network::security_groups_of_stack(aws, stack).await?;
    let network = Network {
        security_groups: groups,
        ..Network::default()
    };
    Ok(view_of(aws, stack, &[], &network).await?.security_group)
}

async fn offered_azs(aws: &Aws) -> Result<Vec<String>, AwsError> {
    let answer = aws
        .ec2
        .describe_availability_zones()
        .send()
        .await
        .map_err(|e| AwsError::call("DescribeAvailabilityZones", e))?;
    let azs: Vec<String> = answer
        .availability_zones()
        .iter()
        // Local Zones and Wavelength Zones cannot hold a NAT gateway for a Lambda function.
        .filter(|az| az.zone_type().is_none_or(|t| t == "availability-zone"))
        .filter(|az| az.state() == Some(&AvailabilityZoneState::Available))
        .filter_map(|az| az.zone_name().map(str::to_owned))
        .collect();
    if azs.is_empty() {
        return Err(AwsError::NoAvailabilityZones {
            region: aws.region.clone(),
        });
    }
    Ok(azs)
}

async fn find_role(aws: &Aws, stack: &StackName) -> Result<Option<ObservedRole>, AwsError> {
    let name = tags::role_name(stack, &aws.region);
    let role = match aws.iam.get_role().role_name(&name).send().await {
        Ok(answer) => answer.role.ok_or(AwsError::IncompleteAnswer {
            operation: "GetRole",
            missing: "the role",
        })?,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(AwsError::call("GetRole", e)),
    };
    let policies = aws
        .iam
        .list_attached_role_policies()
        .role_name(&name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("ListAttachedRolePolicies", e))?;
    Ok(Some(ObservedRole {
        name: role.role_name,
        arn: role.arn,
        attached_policy_arns: policies.into_iter().filter_map(|p| p.policy_arn).collect(),
    }))
}

async fn find_functions_by_name(
    aws: &Aws,
    names: &[String],
) -> Result<Vec<ObservedFunction>, AwsError> {
    let lookups = names.iter().map(|name| async move {
        match aws.lambda.get_function().function_name(name).send().await {
            Ok(answer) => {
                let configuration = answer.configuration().ok_or(AwsError::IncompleteAnswer {
                    operation: "GetFunction",
                    missing: "the configuration",
                })?;
                let stack_tag = answer.tags().and_then(|t| t.get(tags::STACK)).cloned();
                Ok(Some(observed_function(configuration, stack_tag)))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(AwsError::call("GetFunction", e)),
        }
    });
    let found = futures::future::try_join_all(lookups).await?;
    Ok(found.into_iter().flatten().collect())
}

/// Every function in the region attached to one of the given subnets, or using the given
/// security group.
async fn find_attached_functions(
    aws: &Aws,
    subnets: &[&str],
    security_group: Option<&str>,
) -> Result<Vec<ObservedFunction>, AwsError> {
    if subnets.is_empty() && security_group.is_none() {
        return Ok(Vec::new());
    }
    let functions = aws
        .lambda
        .list_functions()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("ListFunctions", e))?;
    // ListFunctions carries no tags: the stack tag is left unknown rather than paid for per function.
    Ok(functions
        .iter()
        .filter(|f| {
            f.vpc_config().is_some_and(|v| {
                v.subnet_ids().iter().any(|s| subnets.contains(&s.as_str()))
                    || v.security_group_ids()
                        .iter()
                        .any(|g| Some(g.as_str()) == security_group)
            })
        })
        .map(|f| observed_function(f, None))
        .collect())
}

fn observed_function(
    configuration: &aws_sdk_lambda::types::FunctionConfiguration,
    stack_tag: Option<String>,
) -> ObservedFunction {
    let vpc = configuration.vpc_config();
    ObservedFunction {
        name: configuration.function_name().unwrap_or_default().to_owned(),
        arn: configuration.function_arn().unwrap_or_default().to_owned(),
        runtime: configuration.runtime().map(|r| r.as_str().to_owned()),
        architecture: configuration.architectures().first().map(|a| match a {
            aws_sdk_lambda::types::Architecture::Arm64 => Architecture::Arm64,
            _ => Architecture::X86_64,
        }),
        role_arn: configuration.role().unwrap_or_default().to_owned(),
        memory_mb: configuration.memory_size().unwrap_or_default().max(0) as u32,
        timeout_s: configuration.timeout().unwrap_or_default().max(0) as u32,
        environment: configuration
            .environment()
            .and_then(|e| e.variables())
            .map(|vars| vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        // The subnets say which VPC the function is in (moto reports a bogus VpcId).
        subnet_ids: vpc.map(|v| v.subnet_ids().to_vec()).unwrap_or_default(),
        security_group_ids: vpc
            .map(|v| v.security_group_ids().to_vec())
            .unwrap_or_default(),
        code_sha256: configuration.code_sha256().unwrap_or_default().to_owned(),
        stack_tag,
        state: function_state(configuration),
    }
}

/// Lambda's `State`, `StateReasonCode` and `StateReason` of a function.
pub fn function_state(
    configuration: &aws_sdk_lambda::types::FunctionConfiguration,
) -> fixedip_core::observed::FunctionState {
    fixedip_core::observed::FunctionState {
        state: configuration.state().map(|s| s.as_str().to_owned()),
        reason_code: configuration
            .state_reason_code()
            .map(|c| c.as_str().to_owned()),
        reason: configuration.state_reason().map(str::to_owned),
    }
}
