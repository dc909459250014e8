//! Observing what exists for one stack: the planner's other input.
//!
//! Only reads, all at once: the network by the stack's tags ([`super::network::describe_stack`]),
//! turned into the stack's view by fixedip-core ([`stack_view`]); the AZs the region offers; the
//! stack's role and the functions by name; a network the user runs, by its id.
//! Not-found is matched on typed errors (IAM `NoSuchEntity`, Lambda `ResourceNotFound`), or on the
//! documented EC2 error code, never on a message.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::AvailabilityZoneState;
use fixedip_core::network::Network;
use fixedip_core::observed::{
    stack_view, ObservedFunction, ObservedRole, ObservedSecurityGroup, ObservedState, Tier,
    ViewError,
};
use fixedip_core::plan::StackSpec;
use fixedip_core::requirements::NatMode;
use fixedip_core::requirements::{AllocationId, Endpoint, StackName};
use fixedip_core::settings::Architecture;
use fixedip_core::tags;

use super::nat_group::NatGroupReads;
use super::network::{
    describe_stack, stack_leftovers, subnets_of_vpcs, tagged_types, Leftovers, LAUNCH_TEMPLATE,
    NETWORK_INTERFACE,
};
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
    /// Gateway endpoint services whose prefix list id the plan needs (restricted egress).
    pub prefix_lists: Vec<Endpoint>,
    /// `nat = "instance"`: the instance type whose AZs are asked (DescribeInstanceTypeOfferings).
    pub nat_instance_type: Option<String>,
    /// Which of the self-healing NATs' groups, templates, interfaces and profile to read (deploy
    /// and destroy in any mode, all at once in the mode; `status` and `verify` when a function
    /// asks for them).
    pub nat_groups: NatGroupReads,
    /// The types read only when one DescribeTags finds the stack's tag on them (deploy, plan and
    /// destroy, for what the stack's modes do not make); `status` reads every type.
    pub leftovers: Leftovers,
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
            prefix_lists: Vec::new(),
            nat_instance_type: None,
            nat_groups: NatGroupReads::Skip,
            leftovers: Leftovers::default(),
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
            prefix_lists: fixedip_core::planner::gateway_prefix_lists_needed(&spec.modes),
            nat_instance_type: (spec.modes.nat == NatMode::Instance
                && spec.modes.existing.is_none())
            .then(|| spec.modes.nat_instance_type().to_owned()),
            // Whatever the mode asks for: a stack leaving self-healing NATs (or destroyed, whose
            // spec carries no mode) has groups to switch from or remove. Read beside the rest,
            // all at once in the mode; otherwise the rest only once something of it is found.
            nat_groups: match (&spec.modes.existing, spec.modes.nat_groups()) {
                (Some(_), _) => NatGroupReads::Skip,
                (None, true) => NatGroupReads::All,
                (None, false) => NatGroupReads::IfAnyLeft,
            },
            // What the modes make is read whatever DescribeTags says; the rest only if listed.
            leftovers: Leftovers {
                instances: !(spec.modes.nat == NatMode::Instance && spec.modes.existing.is_none()),
                endpoints: spec.modes.endpoints.is_empty(),
            },
        }
    }
}

/// Reads everything the stack's tags lead to, and the availability zones the region offers.
pub async fn observe(aws: &Aws, scope: &Scope) -> Result<ObservedState, AwsError> {
    Ok(observe_keeping_network(aws, scope).await?.0)
}

/// [`observe`], and the network read by the stack's tags that the view was made of: what a
/// deploy that changes nothing verifies its functions' egress with
/// ([`fixedip_core::network::VpcNetwork::of_stack`]).
pub async fn observe_keeping_network(
    aws: &Aws,
    scope: &Scope,
) -> Result<(ObservedState, Network), AwsError> {
    let stack = &scope.stack;
    let (zones, network, role, named, existing_network, prefix_lists, unusable_az_ids, leftovers) =
        tokio::try_join!(
            offered_azs(aws),
            describe_stack(aws, stack, &scope.adopted_ips, scope.leftovers),
            find_role(aws, stack),
            find_functions_by_name(aws, &scope.functions),
            async {
                match &scope.existing_vpc {
                    Some(vpc) => super::existing::observe_existing_network(aws, vpc).await,
                    None => Ok(None),
                }
            },
            prefix_lists(aws, &scope.prefix_lists),
            azs_without(aws, scope.nat_instance_type.as_deref()),
            observe_leftovers(aws, scope),
        )?;
    let (instances, endpoints, groups) = leftovers;
    let mut network = network;
    network.instances.extend(instances);
    network.endpoints.extend(endpoints);
    let (offered_azs, az_ids) = zones;
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

    // Only the offered AZs the instance type is missing from are unusable.
    let unusable_az_ids = match unusable_az_ids {
        Some((instance_type, offering)) => az_ids
            .values()
            .filter(|id| !offering.contains(*id))
            .map(|id| {
                (
                    id.clone(),
                    format!("the NAT instance type {instance_type} is not offered there"),
                )
            })
            .collect(),
        None => BTreeMap::new(),
    };
    let observed = ObservedState {
        offered_azs,
        az_ids,
        unusable_az_ids,
        role,
        functions,
        existing_network,
        prefix_lists,
        // Filled by the quota check (`address_quota`); unknown means "not checked".
        address_quota: None,
        addresses_in_use_in_region: None,
        ..view
    };
    let observed = match groups {
        Some(groups) => ObservedState {
            nat_interfaces: groups.interfaces,
            nat_launch_templates: groups.launch_templates,
            nat_groups: groups.groups,
            nat_profile: groups.profile,
            ..observed
        },
        None => observed,
    };
    Ok((observed, network))
}

/// What [`Scope::leftovers`] leaves to DescribeTags, and the self-healing NATs: one DescribeTags
/// for the stack's tag on the types it may have left, then (a round trip later, beside the VPC's
/// DNS attributes) only the types it lists. In the self-healing mode the groups are read beside
/// DescribeTags, not after it.
async fn observe_leftovers(
    aws: &Aws,
    scope: &Scope,
) -> Result<
    (
        Vec<fixedip_core::network::Instance>,
        Vec<fixedip_core::network::VpcEndpoint>,
        Option<super::nat_group::ObservedGroups>,
    ),
    AwsError,
> {
    let stack = &scope.stack;
    let mut types = scope.leftovers.resource_types();
    if scope.nat_groups == NatGroupReads::IfAnyLeft {
        types.extend([NETWORK_INTERFACE, LAUNCH_TEMPLATE]);
    }
    let groups_now = async {
        match scope.nat_groups {
            NatGroupReads::All => {
                super::nat_group::observe_nat_groups(aws, stack, NatGroupReads::All, None)
                    .await
                    .map(Some)
            }
            NatGroupReads::IfAnyLeft | NatGroupReads::Skip => Ok(None),
        }
    };
    let (listed, groups_now) = tokio::try_join!(tagged_types(aws, stack, &types), groups_now)?;
    let groups_if_left = async {
        match scope.nat_groups {
            NatGroupReads::IfAnyLeft => {
                let reads = NatGroupReads::IfAnyLeft;
                super::nat_group::observe_nat_groups(aws, stack, reads, Some(&listed))
                    .await
                    .map(Some)
            }
            NatGroupReads::All | NatGroupReads::Skip => Ok(None),
        }
    };
    let ((instances, endpoints), groups_if_left) = tokio::try_join!(
        stack_leftovers(aws, stack, scope.leftovers, &listed),
        groups_if_left
    )?;
    Ok((instances, endpoints, groups_now.or(groups_if_left)))
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
/// check.
#[derive(Debug, Clone, Copy)]
pub struct AddressQuota {
    quota: Option<u32>,
    in_use: u32,
}

/// Reads the [`AddressQuota`]: two calls more, which `deploy` makes only when its plan allocates
/// (see `converge/deploy.rs`).
pub async fn address_quota(aws: &Aws) -> Result<AddressQuota, AwsError> {
    use aws_sdk_ec2::types::AccountAttributeName;
    let attributes = aws
        .ec2
        .describe_account_attributes()
        .attribute_names(AccountAttributeName::from("vpc-max-elastic-ips"));
    let (attributes, addresses) =
        tokio::join!(attributes.send(), aws.ec2.describe_addresses().send());
    let attributes = attributes.map_err(|e| AwsError::call("DescribeAccountAttributes", e))?;
    let addresses = addresses.map_err(|e| AwsError::call("DescribeAddresses", e))?;
    let quota = attributes
        .account_attributes()
        .iter()
        .find(|a| a.attribute_name() == Some("vpc-max-elastic-ips"))
        .and_then(|a| a.attribute_values().first())
        .and_then(|v| v.attribute_value())
        .and_then(|v| v.parse().ok());
    Ok(AddressQuota {
        quota,
        in_use: addresses.addresses().len() as u32,
    })
}

impl AddressQuota {
    /// Fills `observed.address_quota` and `addresses_in_use_in_region`.
    pub fn fill(self, observed: &mut ObservedState) {
        observed.address_quota = self.quota;
        observed.addresses_in_use_in_region = Some(self.in_use);
    }
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

/// The AWS-managed prefix list of each service (`com.amazonaws.<region>.s3`), by service, from
/// DescribePrefixLists; no call when none is asked. A service AWS lists no prefix list for is left
/// out: the plan then names the rule in a note rather than guess an id.
pub async fn prefix_lists(
    aws: &Aws,
    services: &[Endpoint],
) -> Result<BTreeMap<Endpoint, String>, AwsError> {
    if services.is_empty() {
        return Ok(BTreeMap::new());
    }
    let names: Vec<String> = services
        .iter()
        .map(|s| s.service_name(&aws.region))
        .collect();
    let answer = aws
        .ec2
        .describe_prefix_lists()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("prefix-list-name")
                .set_values(Some(names))
                .build(),
        )
        .send()
        .await
        .map_err(|e| AwsError::call("DescribePrefixLists", e))?;
    Ok(services
        .iter()
        .filter_map(|service| {
            let name = service.service_name(&aws.region);
            answer
                .prefix_lists()
                .iter()
                .find(|list| list.prefix_list_name() == Some(name.as_str()))
                .and_then(|list| list.prefix_list_id())
                .map(|id| (*service, id.to_owned()))
        })
        .collect())
}

/// The AZs the region offers, by name in the order AWS lists them, and the id of each
/// (`ZoneId`: the same physical zone in every account, unlike the name).
/// The connection's own read of them serves the first observation ([`Aws::connect_by_zones`]).
async fn offered_azs(aws: &Aws) -> Result<(Vec<String>, BTreeMap<String, String>), AwsError> {
    let answer = match aws.take_zones() {
        Some(answer) => answer,
        None => aws
            .ec2
            .describe_availability_zones()
            .send()
            .await
            .map_err(|e| AwsError::call("DescribeAvailabilityZones", e))?,
    };
    let zones: Vec<_> = answer
        .availability_zones()
        .iter()
        // Local Zones and Wavelength Zones cannot hold a NAT gateway for a Lambda function.
        .filter(|az| az.zone_type().is_none_or(|t| t == "availability-zone"))
        .filter(|az| az.state() == Some(&AvailabilityZoneState::Available))
        .filter(|az| az.zone_name().is_some())
        .collect();
    if zones.is_empty() {
        return Err(AwsError::NoAvailabilityZones {
            region: aws.region.clone(),
        });
    }
    let names = zones
        .iter()
        .filter_map(|az| az.zone_name().map(str::to_owned))
        .collect();
    let ids = zones
        .iter()
        .filter_map(|az| Some((az.zone_name()?.to_owned(), az.zone_id()?.to_owned())))
        .collect();
    Ok((names, ids))
}

/// `nat = "instance"`: the AZ ids where the instance type is offered
/// (DescribeInstanceTypeOfferings by `availability-zone-id`), to leave out the others before any
/// change rather than meet RunInstances' `Unsupported` half way (use1-az3 offers no Graviton
/// type, for one). `None` when no type is asked.
async fn azs_without(
    aws: &Aws,
    instance_type: Option<&str>,
) -> Result<Option<(String, Vec<String>)>, AwsError> {
    use aws_sdk_ec2::types::{Filter, LocationType};
    let Some(instance_type) = instance_type else {
        return Ok(None);
    };
    let mut offering = Vec::new();
    let mut pages = aws
        .ec2
        .describe_instance_type_offerings()
        .location_type(LocationType::AvailabilityZoneId)
        .filters(
            Filter::builder()
                .name("instance-type")
                .values(instance_type)
                .build(),
        )
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::call("DescribeInstanceTypeOfferings", e))?;
        offering.extend(
            page.instance_type_offerings()
                .iter()
                .filter_map(|o| o.location().map(str::to_owned)),
        );
    }
    Ok(Some((instance_type.to_owned(), offering)))
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
        ipv6_allowed_for_dual_stack: vpc
            .and_then(|v| v.ipv6_allowed_for_dual_stack())
            .unwrap_or(false),
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

/// What a NAT instance's console says of its boot (GetConsoleOutput, `Latest=true`: the newest
/// output of a Nitro instance rather than the one captured at boot). AWS answers with no output
/// for a while after launch; that reads as still booting. See [`fixedip_core::nat_boot`].
pub async fn nat_readiness(
    ec2: &aws_sdk_ec2::Client,
    instance: &str,
) -> Result<fixedip_core::nat_boot::Readiness, AwsError> {
    use base64::Engine as _;
    let answer = ec2
        .get_console_output()
        .instance_id(instance)
        .latest(true)
        .send()
        .await
        .map_err(|e| AwsError::call("GetConsoleOutput", e))?;
    let bytes = answer
        .output()
        .map(|encoded| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    Ok(fixedip_core::nat_boot::readiness(&String::from_utf8_lossy(
        &bytes,
    )))
}

/// Reads the console of each of fixedip's running NAT instances in `network` (tagged
/// `fixedip:component=nat-instance`, or `nat-group` for a self-healing NAT's instance) into its
/// `readiness`, for `status` and `verify`. Another NAT instance (a network the user runs) says
/// nothing of fixedip's boot, and is not read.
pub async fn read_nat_consoles(
    aws: &Aws,
    network: &mut fixedip_core::network::VpcNetwork,
) -> Result<(), AwsError> {
    let ours = [
        tags::Component::NatInstance.as_str(),
        tags::Component::NatGroup.as_str(),
    ];
    let running: Vec<_> = network
        .instances
        .iter_mut()
        .filter(|i| {
            i.state == fixedip_core::network::InstanceState::Running
                && i.tags
                    .get(tags::COMPONENT)
                    .is_some_and(|c| ours.contains(&c.as_str()))
        })
        .collect();
    // One console each, read all at once.
    let readiness =
        futures::future::try_join_all(running.iter().map(|i| nat_readiness(&aws.ec2, &i.id)))
            .await?;
    for (instance, readiness) in running.into_iter().zip(readiness) {
        instance.readiness = Some(readiness);
    }
    Ok(())
}
