//! Carrying out a plan: each step is one AWS operation (plus its waiter), run as soon as the steps it
//! comes `after` are done, concurrently with every other step that is ready.
//!
//! The executor makes no choice of its own: CIDRs, AZs, names and which address serves which AZ all
//! come from the plan. What it adds is how to do a step safely on AWS: tags on every create (in the
//! create call itself, so nothing untagged can be left behind by a crash), a deterministic client
//! token for NAT gateways, waiters, and the retries AWS documents as normal (a fresh IAM role not yet
//! assumable by Lambda; a function still updating). After a failure, nothing is rolled back: the next
//! run observes by tags and plans again from what exists.

use super::emulator::carries;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use aws_sdk_ec2::client::Waiters as _;
use aws_sdk_ec2::error::SdkError;
use aws_sdk_ec2::types::{DomainType, ResourceType, Tag, TagSpecification, VpcAttributeName};
use aws_sdk_lambda::client::Waiters as _;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::waiters::error::WaiterError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use fixedip_core::observed::{RulePeer, SecurityGroupRule, Slot, Tier};
use fixedip_core::plan::{
    Action, FunctionSpec, InterfaceHolder, Plan, Ref, RouteVia, Step, StepId,
};
use fixedip_core::requirements::{AllocationId, StackName};
use fixedip_core::tags::{self, Component};
use fixedip_core::tokens;
use futures::stream::{FuturesUnordered, StreamExt};

use super::{Aws, AwsError};

/// How long to wait for what AWS does after a call returns.
#[derive(Debug, Clone)]
pub struct Timeouts {
    /// NAT gateway `pending` → `available`: 1–3 minutes on AWS; the SDK's own waiter allows 10.
    pub nat_gateway: Duration,
    /// Lambda function `Pending` → `Active`, and `InProgress` → `Successful` after an update.
    pub function: Duration,
    /// A new IAM role becoming assumable by Lambda (IAM is eventually consistent: seconds).
    pub role_propagation: Duration,
    /// Lambda's network interfaces going after their functions left (minutes on AWS; the tools
    /// built on CloudFormation wait 25–45), and DependencyViolation retries on what they held.
    pub lambda_interfaces: Duration,
    /// The first pause between two polls of something AWS finishes on its own; each next pause
    /// doubles, up to `poll_max`.
    pub poll_first: Duration,
    pub poll_max: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            nat_gateway: Duration::from_secs(600),
            function: Duration::from_secs(300),
            role_propagation: Duration::from_secs(90),
            lambda_interfaces: Duration::from_secs(20 * 60),
            poll_first: Duration::from_secs(5),
            poll_max: Duration::from_secs(30),
        }
    }
}

impl Timeouts {
    /// From the command line's seconds: NAT gateway, function, Lambda interfaces, first poll
    /// pause (the longest pause is six times the first: 5 s → 30 s by default).
    pub fn from_seconds(
        nat_gateway: u64,
        function: u64,
        lambda_interfaces: u64,
        poll: f64,
    ) -> Self {
        let poll_first = Duration::from_secs_f64(poll.clamp(0.01, 3600.0));
        Timeouts {
            nat_gateway: Duration::from_secs(nat_gateway),
            function: Duration::from_secs(function),
            lambda_interfaces: Duration::from_secs(lambda_interfaces),
            poll_first,
            poll_max: poll_first * 6,
            ..Timeouts::default()
        }
    }
}

/// What the executor needs besides the plan.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The deployment package of each function the plan creates or updates the code of, by name.
    pub zips: BTreeMap<String, Vec<u8>>,
    /// Addresses the user brought: tagged `fixedip:adopted=true` when put to work, so that no later
    /// run ever releases them, even once they are no longer listed in `ips`.
    pub adopted_ips: Vec<AllocationId>,
    pub timeouts: Timeouts,
}

/// What happens, as it happens, for the CLI to show on stderr.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    Started(&'a Step),
    /// The call returned; now waiting for AWS to finish (a NAT gateway becoming available...).
    Waiting {
        step: &'a Step,
        what: &'static str,
    },
    Finished {
        step: &'a Step,
        created: Option<&'a str>,
        elapsed: Duration,
    },
}

/// What a plan's execution produced: the id of everything created, by step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Executed {
    pub created: BTreeMap<StepId, String>,
    /// New Elastic IPs: allocation id and address, by slot.
    pub allocated: BTreeMap<Slot, (String, String)>,
}

/// A step that failed; the ones that finished before it are listed so that the user knows what
/// exists. Nothing is undone: running again continues from there.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{what} failed: {error}")]
#[diagnostic(
    code(fixedip::deploy::step_failed),
    help("what was created is tagged and kept: fix the cause above and run the same command again to continue")
)]
pub struct ExecuteError {
    pub step: StepId,
    pub action: ActionKind,
    /// The step as a person reads it ([`Plan::describe`]).
    pub what: String,
    #[source]
    pub error: AwsError,
    pub completed: Executed,
}

/// A step's action by name only, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionKind(pub &'static str);

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl ActionKind {
    pub fn of(action: &Action) -> ActionKind {
        ActionKind(match action {
            Action::CreateVpc { .. } => "CreateVpc",
            Action::EnableVpcDns { .. } => "EnableVpcDns",
            Action::CreateInternetGateway => "CreateInternetGateway",
            Action::AttachInternetGateway { .. } => "AttachInternetGateway",
            Action::CreateSubnet { .. } => "CreateSubnet",
            Action::AllocateAddress { .. } => "AllocateAddress",
            Action::ActivateAddress { .. } => "ActivateAddress",
            Action::CreateNatGateway { .. } => "CreateNatGateway",
            Action::CreateRouteTable { .. } => "CreateRouteTable",
            Action::AssociateRouteTable { .. } => "AssociateRouteTable",
            Action::CreateRoute { .. } => "CreateRoute",
            Action::ReplaceRoute { .. } => "ReplaceRoute",
            Action::DeleteRoute { .. } => "DeleteRoute",
            Action::CreateSecurityGroup { .. } => "CreateSecurityGroup",
            Action::CreateRole { .. } => "CreateRole",
            Action::AttachRolePolicy { .. } => "AttachRolePolicy",
            Action::CreateFunction { .. } => "CreateFunction",
            Action::UpdateFunctionConfiguration { .. } => "UpdateFunctionConfiguration",
            Action::UpdateFunctionCode { .. } => "UpdateFunctionCode",
            Action::TagFunction { .. } => "TagFunction",
            Action::DetachFunction { .. } => "DetachFunction",
            Action::DeleteFunction { .. } => "DeleteFunction",
            Action::DeleteNatGateway { .. } => "DeleteNatGateway",
            Action::RetainAddress { .. } => "RetainAddress",
            Action::ReleaseAddress { .. } => "ReleaseAddress",
            Action::ClearLambdaInterfaces { .. } => "ClearLambdaInterfaces",
            Action::DeleteSubnet { .. } => "DeleteSubnet",
            Action::DeleteRouteTable { .. } => "DeleteRouteTable",
            Action::DeleteSecurityGroup { .. } => "DeleteSecurityGroup",
            Action::DeleteInternetGateway { .. } => "DeleteInternetGateway",
            Action::DeleteVpc { .. } => "DeleteVpc",
            Action::DeleteRole { .. } => "DeleteRole",
            Action::CreateNatSecurityGroup { .. } => "CreateNatSecurityGroup",
            Action::LaunchNatInstance { .. } => "LaunchNatInstance",
            Action::DisableSourceDestCheck { .. } => "DisableSourceDestCheck",
            Action::AssociateAddress { .. } => "AssociateAddress",
            Action::DisassociateAddress { .. } => "DisassociateAddress",
            Action::TerminateNatInstance { .. } => "TerminateNatInstance",
            Action::AuthorizeEgress { .. } => "AuthorizeSecurityGroupEgress",
            Action::RevokeEgress { .. } => "RevokeSecurityGroupEgress",
            Action::CreateEndpointSecurityGroup { .. } => "CreateSecurityGroup",
            Action::AdmitHttpsFrom { .. } => "AuthorizeSecurityGroupIngress",
            Action::CreateGatewayEndpoint { .. } | Action::CreateInterfaceEndpoint { .. } => {
                "CreateVpcEndpoint"
            }
            Action::ModifyInterfaceEndpoint { .. } => "ModifyVpcEndpoint",
            Action::DeleteEndpoint { .. } => "DeleteVpcEndpoints",
        })
    }
}

/// What one step hands to the steps after it.
#[derive(Debug, Clone, Default)]
pub(super) struct Produced {
    /// The id (or ARN) of what the step created, for `Ref::Step`.
    pub(super) id: Option<String>,
    /// A new Elastic IP's address.
    pub(super) public_ip: Option<String>,
}

type StepFuture<'a> =
    Pin<Box<dyn Future<Output = (StepId, Result<Produced, AwsError>, Duration)> + Send + 'a>>;

/// Runs every step of the plan, each once all its `after` steps are done, concurrently otherwise.
/// Stops starting new steps at the first failure, lets the running ones finish, and reports it.
pub async fn execute(
    aws: &Aws,
    plan: &Plan,
    inputs: &Inputs,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<Executed, ExecuteError> {
    let context = Context {
        aws,
        plan,
        inputs,
        progress,
    };
    let steps: HashMap<StepId, &Step> = plan.steps.iter().map(|s| (s.id, s)).collect();
    let mut done: HashMap<StepId, Produced> = HashMap::new();
    let mut waiting: Vec<&Step> = plan.steps.iter().collect();
    let mut running: FuturesUnordered<StepFuture<'_>> = FuturesUnordered::new();
    let mut executed = Executed::default();
    let mut failure: Option<(StepId, AwsError)> = None;

    loop {
        if failure.is_none() {
            let (ready, not_ready): (Vec<&Step>, Vec<&Step>) = waiting
                .into_iter()
                .partition(|step| step.after.iter().all(|after| done.contains_key(after)));
            waiting = not_ready;
            for step in ready {
                // Every Ref::Step a step uses must be among the steps it comes after: then its id is known.
                let resolved = Resolver { done: &done, step };
                let call = match context.prepare(step, &resolved) {
                    Ok(call) => call,
                    Err(error) => {
                        failure = Some((step.id, error));
                        break;
                    }
                };
                progress(Progress::Started(step));
                let id = step.id;
                running.push(Box::pin(async move {
                    let started = Instant::now();
                    let result = call.await;
                    (id, result, started.elapsed())
                }));
            }
        }
        let Some((id, result, elapsed)) = running.next().await else {
            break;
        };
        let step = steps[&id];
        match result {
            Ok(produced) => {
                if let Some(created) = &produced.id {
                    executed.created.insert(id, created.clone());
                }
                if let (Action::AllocateAddress { slot, .. }, Some(allocation), Some(ip)) =
                    (&step.action, &produced.id, &produced.public_ip)
                {
                    executed
                        .allocated
                        .insert(*slot, (allocation.clone(), ip.clone()));
                }
                progress(Progress::Finished {
                    step,
                    created: produced.id.as_deref(),
                    elapsed,
                });
                done.insert(id, produced);
            }
            Err(error) => {
                failure.get_or_insert((id, error));
            }
        }
    }

    if let Some((step, error)) = failure {
        return Err(ExecuteError {
            step,
            action: ActionKind::of(&steps[&step].action),
            what: plan.describe(&steps[&step].action),
            error,
            completed: executed,
        });
    }
    if let Some(stuck) = waiting.first() {
        // Only a plan whose `after` names a step that is not in it gets here.
        let error = AwsError::Call {
            operation: ActionKind::of(&stuck.action).0,
            code: None,
            message: format!(
                "fixedip bug: step {} waits for a step that is not in the plan",
                stuck.id.0
            ),
        };
        return Err(ExecuteError {
            step: stuck.id,
            action: ActionKind::of(&stuck.action),
            what: plan.describe(&stuck.action),
            error,
            completed: executed,
        });
    }
    Ok(executed)
}

/// The ids of the steps already done, as seen by one step.
struct Resolver<'a> {
    done: &'a HashMap<StepId, Produced>,
    step: &'a Step,
}

impl Resolver<'_> {
    fn get(&self, reference: &Ref) -> Result<String, AwsError> {
        match reference {
            Ref::Existing(id) => Ok(id.clone()),
            Ref::Step(id) if self.step.after.contains(id) => self
                .done
                .get(id)
                .and_then(|p| p.id.clone())
                .ok_or_else(|| self.bug(format!("step {} produced no id", id.0))),
            Ref::Step(id) => {
                Err(self.bug(format!("it uses step {} without coming after it", id.0)))
            }
        }
    }

    fn all(&self, references: &[Ref]) -> Result<Vec<String>, AwsError> {
        references.iter().map(|r| self.get(r)).collect()
    }

    fn bug(&self, what: String) -> AwsError {
        AwsError::Call {
            operation: ActionKind::of(&self.step.action).0,
            code: None,
            message: format!("fixedip bug in the plan at step {}: {what}", self.step.id.0),
        }
    }
}

#[derive(Clone, Copy)]
pub(super) struct Context<'a> {
    pub(super) aws: &'a Aws,
    plan: &'a Plan,
    pub(super) inputs: &'a Inputs,
    pub(super) progress: &'a (dyn Fn(Progress<'_>) + Sync),
}

type Call<'a> = Pin<Box<dyn Future<Output = Result<Produced, AwsError>> + Send + 'a>>;

impl<'a> Context<'a> {
    pub(super) fn stack(&self) -> &'a StackName {
        &self.plan.stack
    }

    /// The AZ a slot's resources are in, for their `Name` tag.
    fn az_of(&self, slot: Slot) -> Option<&'a str> {
        self.plan
            .network
            .azs
            .iter()
            .find(|az| az.slot == slot)
            .map(|az| az.az.as_str())
    }

    pub(super) fn tags(&self, component: Component, slot: Option<Slot>) -> Vec<(String, String)> {
        let az = slot.and_then(|s| self.az_of(s));
        tags::for_resource(self.stack(), component, slot, az)
    }

    pub(super) fn ec2_tags(
        &self,
        resource: ResourceType,
        tags: Vec<(String, String)>,
    ) -> TagSpecification {
        TagSpecification::builder()
            .resource_type(resource)
            .set_tags(Some(
                tags.into_iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .build()
    }

    /// Resolves the step's references now (they are all known) and returns the call to make.
    fn prepare(self, step: &'a Step, refs: &Resolver<'_>) -> Result<Call<'a>, AwsError> {
        let ec2 = &self.aws.ec2;
        let call: Call<'a> = match &step.action {
            Action::CreateVpc { cidr } => {
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
            }
            Action::EnableVpcDns { vpc } => {
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
                        request
                            .send()
                            .await
                            .map_err(|e| AwsError::call("ModifyVpcAttribute", e))?;
                    }
                    Ok(Produced::default())
                })
            }
            Action::CreateInternetGateway => {
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
            }
            Action::AttachInternetGateway {
                internet_gateway,
                vpc,
            } => {
                let request = ec2
                    .attach_internet_gateway()
                    .internet_gateway_id(refs.get(internet_gateway)?)
                    .vpc_id(refs.get(vpc)?);
                Box::pin(async move {
                    request
                        .send()
                        .await
                        .map_err(|e| AwsError::call("AttachInternetGateway", e))?;
                    Ok(Produced::default())
                })
            }
            Action::CreateSubnet {
                vpc,
                tier,
                slot,
                az,
                cidr,
            } => {
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
            }
            Action::AllocateAddress { slot, held_back } => {
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
            }
            Action::ActivateAddress {
                allocation_id,
                slot,
                adopted,
            } => {
                let mut tags = self.tags(Component::Address, Some(*slot));
                tags.push((tags::ADDRESS.to_owned(), "active".to_owned()));
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
                    request
                        .send()
                        .await
                        .map_err(|e| AwsError::call("CreateTags", e))?;
                    Ok(Produced {
                        id: Some(id),
                        public_ip: None,
                    })
                })
            }
            Action::CreateNatGateway {
                subnet,
                address,
                slot,
            } => {
                let (subnet, address) = (refs.get(subnet)?, refs.get(address)?);
                let token = tokens::nat_gateway(self.stack(), *slot, &subnet, &address);
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
                    (self.progress)(Progress::Waiting {
                        step,
                        what: "NAT gateway to become available",
                    });
                    ec2.wait_until_nat_gateway_available()
                        .nat_gateway_ids(&id)
                        .wait(timeout)
                        .await
                        .map_err(|e| {
                            waiter_error(
                                format!("NAT gateway {id} to become available"),
                                timeout,
                                e,
                            )
                        })?;
                    Ok(Produced {
                        id: Some(id),
                        public_ip: None,
                    })
                })
            }
            Action::CreateRouteTable { vpc, tier, slot } => {
                let component = match tier {
                    Tier::Public => Component::PublicRouteTable,
                    Tier::Private => Component::PrivateRouteTable,
                };
                let tags = self.tags(component, *slot);
                let vpc = refs.get(vpc)?;
                let token = tokens::route_table(self.stack(), component.as_str(), *slot, &vpc);
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
            }
            Action::AssociateRouteTable {
                route_table,
                subnet,
            } => {
                let request = ec2
                    .associate_route_table()
                    .route_table_id(refs.get(route_table)?)
                    .subnet_id(refs.get(subnet)?);
                Box::pin(async move {
                    request
                        .send()
                        .await
                        .map_err(|e| AwsError::call("AssociateRouteTable", e))?;
                    Ok(Produced::default())
                })
            }
            Action::CreateRoute {
                route_table,
                destination,
                via,
            } => {
                let request = ec2
                    .create_route()
                    .route_table_id(refs.get(route_table)?)
                    .destination_cidr_block(destination.to_string());
                let request = match via {
                    RouteVia::InternetGateway(igw) => request.gateway_id(refs.get(igw)?),
                    RouteVia::NatGateway(nat) => request.nat_gateway_id(refs.get(nat)?),
                    RouteVia::NatInstance(instance) => request.instance_id(refs.get(instance)?),
                };
                Box::pin(async move {
                    request
                        .send()
                        .await
                        .map_err(|e| AwsError::call("CreateRoute", e))?;
                    Ok(Produced::default())
                })
            }
            Action::ReplaceRoute {
                route_table,
                destination,
                via,
            } => {
                let request = ec2
                    .replace_route()
                    .route_table_id(refs.get(route_table)?)
                    .destination_cidr_block(destination.to_string());
                let request = match via {
                    RouteVia::InternetGateway(igw) => request.gateway_id(refs.get(igw)?),
                    RouteVia::NatGateway(nat) => request.nat_gateway_id(refs.get(nat)?),
                    RouteVia::NatInstance(instance) => request.instance_id(refs.get(instance)?),
                };
                Box::pin(async move {
                    request
                        .send()
                        .await
                        .map_err(|e| AwsError::call("ReplaceRoute", e))?;
                    Ok(Produced::default())
                })
            }
            Action::DeleteRoute {
                route_table,
                destination,
            } => {
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
            }
            Action::CreateSecurityGroup { vpc } => {
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
            }
            Action::CreateRole { name } => {
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
                    let answer = request
                        .send()
                        .await
                        .map_err(|e| AwsError::call("CreateRole", e))?;
                    let role = answer.role().ok_or(AwsError::IncompleteAnswer {
                        operation: "CreateRole",
                        missing: "the role",
                    })?;
                    Ok(Produced {
                        id: Some(role.arn().to_owned()),
                        public_ip: None,
                    })
                })
            }
            Action::AttachRolePolicy { role, policy_arn } => {
                let request = self
                    .aws
                    .iam
                    .attach_role_policy()
                    .role_name(role_name(&refs.get(role)?))
                    .policy_arn(policy_arn);
                Box::pin(async move {
                    request
                        .send()
                        .await
                        .map_err(|e| AwsError::call("AttachRolePolicy", e))?;
                    Ok(Produced::default())
                })
            }
            Action::CreateFunction {
                function,
                subnets,
                security_group,
                role,
            } => {
                let zip = self.zip(function)?;
                let attachment = Attachment {
                    subnets: refs.all(subnets)?,
                    security_group: refs.get(security_group)?,
                    role: refs.get(role)?,
                    // Only a role made by this very run may still be propagating through IAM.
                    fresh_role: matches!(role, Ref::Step(_)),
                };
                Box::pin(self.create_function(step, function, zip, attachment))
            }
            Action::UpdateFunctionConfiguration {
                function,
                subnets,
                security_group,
                role,
            } => {
                let attachment = Attachment {
                    subnets: refs.all(subnets)?,
                    security_group: refs.get(security_group)?,
                    role: refs.get(role)?,
                    fresh_role: matches!(role, Ref::Step(_)),
                };
                Box::pin(self.update_function_configuration(step, function, attachment))
            }
            Action::UpdateFunctionCode { function } => {
                let zip = self.zip(function)?;
                Box::pin(self.update_function_code(step, function, zip))
            }
            Action::TagFunction { function, arn } => {
                let mut tags: BTreeMap<String, String> = function.tags.clone();
                tags.extend(self.tags(Component::Function, None));
                let request = self
                    .aws
                    .lambda
                    .tag_resource()
                    .resource(arn)
                    .set_tags(Some(tags.into_iter().collect()));
                Box::pin(async move {
                    request
                        .send()
                        .await
                        .map_err(|e| AwsError::call("TagResource", e))?;
                    Ok(Produced::default())
                })
            }
            Action::DetachFunction { name } => Box::pin(self.detach_function(step, name)),
            Action::DeleteFunction { name } => Box::pin(self.delete_function(step, name)),
            Action::DeleteNatGateway { nat_gateway } => {
                Box::pin(self.delete_nat_gateway(step, nat_gateway))
            }
            Action::RetainAddress { allocation_id } => Box::pin(self.retain_address(allocation_id)),
            Action::ReleaseAddress { allocation_id } => {
                let request = ec2.release_address().allocation_id(allocation_id);
                Box::pin(async move {
                    match request.send().await {
                        Ok(_) => Ok(Produced::default()),
                        Err(e) if has_code(&e, ADDRESS_NOT_FOUND) => Ok(Produced::default()),
                        Err(e) => Err(AwsError::call("ReleaseAddress", e)),
                    }
                })
            }
            Action::ClearLambdaInterfaces { holder } => {
                Box::pin(self.clear_lambda_interfaces(step, holder))
            }
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
            Action::DeleteRole { role, policy_arns } => {
                Box::pin(self.delete_role(role, policy_arns))
            }
            Action::CreateNatSecurityGroup { vpc, admit } => {
                Box::pin(self.create_nat_security_group(refs.get(vpc)?, admit.to_string()))
            }
            Action::LaunchNatInstance {
                subnet,
                security_group,
                slot,
                instance_type,
                image_parameter,
            } => Box::pin(self.launch_nat_instance(
                step,
                refs.get(subnet)?,
                refs.get(security_group)?,
                *slot,
                instance_type,
                image_parameter,
            )),
            Action::DisableSourceDestCheck { instance } => {
                Box::pin(self.disable_source_dest_check(refs.get(instance)?))
            }
            Action::AssociateAddress {
                address,
                instance,
                interface,
            } => Box::pin(self.associate_address(
                refs.get(address)?,
                refs.get(instance)?,
                interface.clone(),
            )),
            Action::DisassociateAddress { association_id } => {
                Box::pin(self.disassociate_address(association_id))
            }
            Action::TerminateNatInstance { instance } => {
                Box::pin(self.terminate_nat_instance(step, instance))
            }
            Action::AuthorizeEgress {
                security_group,
                rules,
            } => {
                let group = refs.get(security_group)?;
                Box::pin(self.authorize_egress(group, rules))
            }
            Action::RevokeEgress {
                security_group,
                rules,
            } => {
                let group = refs.get(security_group)?;
                Box::pin(self.revoke_egress(group, rules))
            }
            Action::CreateEndpointSecurityGroup { vpc } => {
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
                    let answer = request
                        .send()
                        .await
                        .map_err(|e| AwsError::call("CreateSecurityGroup", e))?;
                    created(answer.group_id(), "CreateSecurityGroup")
                })
            }
            Action::AdmitHttpsFrom {
                security_group,
                from_group,
            } => {
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
                    match request.send().await {
                        Ok(_) => Ok(Produced::default()),
                        Err(e) if has_code(&e, RULE_EXISTS) => Ok(Produced::default()),
                        Err(e) => Err(AwsError::call("AuthorizeSecurityGroupIngress", e)),
                    }
                })
            }
            Action::CreateGatewayEndpoint {
                vpc,
                endpoint,
                route_table,
                slot,
            } => {
                let (vpc, route_table) = (refs.get(vpc)?, refs.get(route_table)?);
                let service = endpoint.service_name(&self.aws.region);
                let token = tokens::endpoint(self.stack(), &service, &vpc, &[&route_table]);
                let request = ec2
                    .create_vpc_endpoint()
                    .vpc_id(&vpc)
                    .service_name(&service)
                    .vpc_endpoint_type(aws_sdk_ec2::types::VpcEndpointType::Gateway)
                    .route_table_ids(&route_table)
                    .client_token(token)
                    .tag_specifications(self.ec2_tags(
                        ResourceType::VpcEndpoint,
                        self.tags(Component::VpcEndpoint, Some(*slot)),
                    ));
                Box::pin(async move {
                    let answer = request
                        .send()
                        .await
                        .map_err(|e| AwsError::call("CreateVpcEndpoint", e))?;
                    created(
                        answer.vpc_endpoint().and_then(|e| e.vpc_endpoint_id()),
                        "CreateVpcEndpoint",
                    )
                })
            }
            Action::CreateInterfaceEndpoint {
                vpc,
                endpoint,
                subnets,
                security_group,
            } => {
                let vpc = refs.get(vpc)?;
                let subnets = refs.all(subnets)?;
                let service = endpoint.service_name(&self.aws.region);
                let mut sorted: Vec<&str> = subnets.iter().map(String::as_str).collect();
                sorted.sort();
                let token = tokens::endpoint(self.stack(), &service, &vpc, &sorted);
                let request = ec2
                    .create_vpc_endpoint()
                    .vpc_id(&vpc)
                    .service_name(&service)
                    .vpc_endpoint_type(aws_sdk_ec2::types::VpcEndpointType::Interface)
                    .set_subnet_ids(Some(subnets))
                    .security_group_ids(refs.get(security_group)?)
                    .private_dns_enabled(true)
                    .client_token(token)
                    .tag_specifications(self.ec2_tags(
                        ResourceType::VpcEndpoint,
                        self.tags(Component::VpcEndpoint, None),
                    ));
                Box::pin(async move {
                    let answer = request
                        .send()
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
            Action::ModifyInterfaceEndpoint {
                endpoint_id,
                add_subnets,
                remove_subnets,
            } => {
                let request = ec2
                    .modify_vpc_endpoint()
                    .vpc_endpoint_id(endpoint_id)
                    .set_add_subnet_ids(Some(refs.all(add_subnets)?).filter(|s| !s.is_empty()))
                    .set_remove_subnet_ids(Some(remove_subnets.clone()).filter(|s| !s.is_empty()));
                Box::pin(async move {
                    request
                        .send()
                        .await
                        .map_err(|e| AwsError::call("ModifyVpcEndpoint", e))?;
                    // Its interfaces leave the removed subnets before those can be deleted.
                    self.wait_for_endpoint(step, endpoint_id, EndpointWait::Available)
                        .await?;
                    Ok(Produced::default())
                })
            }
            Action::DeleteEndpoint { endpoint_id } => {
                Box::pin(self.delete_endpoint(step, endpoint_id))
            }
        };
        Ok(call)
    }

    fn zip(&self, function: &FunctionSpec) -> Result<Vec<u8>, AwsError> {
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

    async fn create_function(
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
                    .build(),
            )
            .code(FunctionCode::builder().zip_file(zip.into()).build())
            .set_tags(Some(tags.into_iter().collect()));

        let deadline = Instant::now() + self.inputs.timeouts.role_propagation;
        let mut pause = Duration::from_secs(2);
        let answer = loop {
            match request.clone().send().await {
                Ok(answer) => break answer,
                // IAM is eventually consistent: for some seconds after CreateRole, Lambda answers
                // InvalidParameterValue ("cannot be assumed by Lambda"). Only then is it worth waiting.
                Err(e)
                    if attachment.fresh_role
                        && Instant::now() < deadline
                        && e.as_service_error()
                            .is_some_and(|s| s.is_invalid_parameter_value_exception()) =>
                {
                    (self.progress)(Progress::Waiting {
                        step,
                        what: "the new IAM role to reach Lambda",
                    });
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(10));
                }
                Err(e) => return Err(AwsError::call("CreateFunction", e)),
            }
        };
        let timeout = self.inputs.timeouts.function;
        (self.progress)(Progress::Waiting {
            step,
            what: "function to become active",
        });
        lambda
            .wait_until_function_active_v2()
            .function_name(&function.name)
            .wait(timeout)
            .await
            .map_err(|e| {
                waiter_error(
                    format!("function {} to become active", function.name),
                    timeout,
                    e,
                )
            })?;
        Ok(Produced {
            id: answer.function_arn().map(str::to_owned),
            public_ip: None,
        })
    }

    async fn update_function_configuration(
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
                    .build(),
            );
        self.retry_while_updating(step, &function.name, "UpdateFunctionConfiguration", || {
            request.clone().send()
        })
        .await?;
        self.wait_until_updated(step, &function.name).await?;
        Ok(Produced::default())
    }

    async fn update_function_code(
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
        self.retry_while_updating(step, &function.name, "UpdateFunctionCode", || {
            request.clone().send()
        })
        .await?;
        self.wait_until_updated(step, &function.name).await?;
        Ok(Produced::default())
    }

    /// Lambda refuses a change while the previous one is in progress (ResourceConflictException):
    /// wait for it to finish, then try again, until the function timeout.
    async fn retry_while_updating<T, E, F>(
        self,
        step: &'a Step,
        name: &str,
        operation: &'static str,
        send: impl Fn() -> F,
    ) -> Result<T, AwsError>
    where
        F: Future<
            Output = Result<
                T,
                aws_sdk_lambda::error::SdkError<
                    E,
                    aws_smithy_runtime_api::client::orchestrator::HttpResponse,
                >,
            >,
        >,
        E: aws_sdk_lambda::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let deadline = Instant::now() + self.inputs.timeouts.function;
        loop {
            match send().await {
                Ok(answer) => return Ok(answer),
                Err(e)
                    if e.code() == Some("ResourceConflictException")
                        && Instant::now() < deadline =>
                {
                    self.wait_until_updated(step, name).await?;
                }
                Err(e) => return Err(AwsError::call(operation, e)),
            }
        }
    }

    async fn wait_until_updated(self, step: &'a Step, name: &str) -> Result<(), AwsError> {
        let timeout = self.inputs.timeouts.function;
        (self.progress)(Progress::Waiting {
            step,
            what: "function update to finish",
        });
        self.aws
            .lambda
            .wait_until_function_updated_v2()
            .function_name(name)
            .wait(timeout)
            .await
            .map_err(|e| waiter_error(format!("function {name} to finish updating"), timeout, e))?;
        Ok(())
    }
}

// Security group rules and VPC endpoints.

/// EC2's codes for a rule that exists already: a resumed run authorizing it again is done.
const RULE_EXISTS: &[&str] = &["InvalidPermission.Duplicate"];
/// EC2's codes for a VPC endpoint that does not exist (any more).
const ENDPOINT_NOT_FOUND: &[&str] = &[
    "InvalidVpcEndpointId.NotFound",
    "InvalidVpcEndpoint.NotFound",
];

/// What to wait for after an endpoint call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndpointWait {
    /// `available` (AWS takes a minute or two for an interface endpoint's network interfaces).
    Available,
    /// `deleted`, or unknown to AWS.
    Gone,
}

/// One `IpPermission` per rule, as the planner diffs them.
fn ip_permission(rule: &SecurityGroupRule) -> aws_sdk_ec2::types::IpPermission {
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
    /// One call per rule: AWS refuses a whole batch for one duplicate, and a resumed run may
    /// repeat a rule a killed run authorized.
    async fn authorize_egress(
        self,
        group: String,
        rules: &'a [SecurityGroupRule],
    ) -> Result<Produced, AwsError> {
        for rule in rules {
            match self
                .aws
                .ec2
                .authorize_security_group_egress()
                .group_id(&group)
                .ip_permissions(ip_permission(rule))
                .send()
                .await
            {
                Ok(_) => {}
                Err(e) if has_code(&e, RULE_EXISTS) => {}
                Err(e) => return Err(AwsError::call("AuthorizeSecurityGroupEgress", e)),
            }
        }
        Ok(Produced::default())
    }

    async fn revoke_egress(
        self,
        group: String,
        rules: &'a [SecurityGroupRule],
    ) -> Result<Produced, AwsError> {
        for rule in rules {
            match self
                .aws
                .ec2
                .revoke_security_group_egress()
                .group_id(&group)
                .ip_permissions(ip_permission(rule))
                .send()
                .await
            {
                Ok(_) => {}
                Err(e) if has_code(&e, &["InvalidPermission.NotFound"]) => {}
                Err(e) => return Err(AwsError::call("RevokeSecurityGroupEgress", e)),
            }
        }
        Ok(Produced::default())
    }

    /// The endpoint's state; `None` once AWS no longer knows it.
    async fn endpoint_state(self, id: &str) -> Result<Option<aws_sdk_ec2::types::State>, AwsError> {
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
    async fn wait_for_endpoint(
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
                (EndpointWait::Available, None | Some("failed" | "rejected" | "deleted")) => {
                    return Err(AwsError::Call {
                        operation: "CreateVpcEndpoint",
                        code: None,
                        message: format!(
                            "VPC endpoint {id} is {}: run deploy again to replace it",
                            name.as_deref().unwrap_or("gone")
                        ),
                    })
                }
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

    async fn delete_endpoint(self, step: &'a Step, id: &'a str) -> Result<Produced, AwsError> {
        let answer = match self
            .aws
            .ec2
            .delete_vpc_endpoints()
            .vpc_endpoint_ids(id)
            .send()
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

// Removal. Every call here may repeat one a killed run made: AWS's not-found answer means done.
// Errors are matched on AWS's error code (ProvideErrorMetadata), never on a message.

/// EC2's codes for an Elastic IP that does not exist (any more).
const ADDRESS_NOT_FOUND: &[&str] = &["InvalidAllocationID.NotFound", "InvalidAddress.NotFound"];

/// Whether a failed call carries one of `codes`.
pub(super) fn has_code<E, R>(error: &SdkError<E, R>, codes: &[&str]) -> bool
where
    E: ProvideErrorMetadata,
{
    error.code().is_some_and(|code| codes.contains(&code))
}

/// Polling with backoff, within a bound: the first pause is `Timeouts::poll_first`, each next one
/// twice as long up to `Timeouts::poll_max`.
struct Backoff {
    next: Duration,
    max: Duration,
    started: Instant,
    deadline: Instant,
}

impl Backoff {
    fn new(timeouts: &Timeouts, bound: Duration) -> Backoff {
        let started = Instant::now();
        Backoff {
            next: timeouts.poll_first,
            max: timeouts.poll_max.max(timeouts.poll_first),
            started,
            deadline: started + bound,
        }
    }

    /// Sleeps before the next poll; `false` once the bound is reached (no sleep then).
    async fn pause(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        tokio::time::sleep(self.next.min(self.deadline - now)).await;
        self.next = (self.next * 2).min(self.max);
        true
    }

    fn waited(&self) -> Duration {
        self.started.elapsed()
    }
}

/// A Lambda network interface that still holds a subnet or security group.
struct LambdaInterface {
    id: String,
    available: bool,
    /// From its description, `AWS Lambda VPC ENI-<function>-<uuid>`.
    function: Option<String>,
}

/// The description AWS gives the Hyperplane ENIs of a function in a VPC.
const LAMBDA_ENI_DESCRIPTION: &str = "AWS Lambda VPC ENI-";

/// The function named in a Lambda ENI's description, without the UUID AWS appends.
fn function_of_lambda_eni(description: &str) -> Option<String> {
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

impl<'a> Context<'a> {
    fn backoff(&self, bound: Duration) -> Backoff {
        Backoff::new(&self.inputs.timeouts, bound)
    }

    /// A create that must not happen twice. `send` makes the call once (SDK retries off, see
    /// [`sent_once`]); when its outcome is unknown (no answer, throttling, 5xx) `find` looks the
    /// resource up by the tags the create put on it, after a pause, and only if it is not there
    /// is the call sent again: at most [`CREATE_ATTEMPTS`] times, backing off.
    async fn create_or_find<E, S, SF, F, FF>(
        self,
        step: &'a Step,
        operation: &'static str,
        send: S,
        find: F,
    ) -> Result<Produced, AwsError>
    where
        S: Fn() -> SF,
        SF: Future<Output = Result<Result<Produced, AwsError>, SdkError<E, HttpResponse>>>,
        F: Fn() -> FF,
        FF: Future<Output = Result<Option<Produced>, AwsError>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut pause = CREATE_PAUSE_FIRST;
        let mut attempt = 1;
        loop {
            match send().await {
                Ok(produced) => return produced,
                Err(e) if attempt < CREATE_ATTEMPTS && outcome_unknown(&e) => {
                    (self.progress)(Progress::Waiting {
                        step,
                        what: "no clear answer: looking for what the call made before sending it again",
                    });
                    tokio::time::sleep(pause).await;
                    if let Some(found) = find().await? {
                        return Ok(found);
                    }
                    pause = (pause * 2).min(CREATE_PAUSE_MAX);
                    attempt += 1;
                }
                Err(e) => return Err(AwsError::call(operation, e)),
            }
        }
    }

    /// A delete call: not-found is done; DependencyViolation (something, usually a Lambda
    /// interface AWS listed late, still uses the resource) is retried with backoff within the ENI
    /// timeout, so that it never reaches the user while AWS is still cleaning up.
    async fn remove<T, E, F>(
        self,
        step: &'a Step,
        operation: &'static str,
        not_found: &[&str],
        send: impl Fn() -> F,
    ) -> Result<Produced, AwsError>
    where
        F: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut backoff = self.backoff(self.inputs.timeouts.lambda_interfaces);
        loop {
            match send().await {
                Ok(_) => return Ok(Produced::default()),
                Err(e) if has_code(&e, not_found) => return Ok(Produced::default()),
                Err(e) if has_code(&e, &["DependencyViolation"]) => {
                    (self.progress)(Progress::Waiting {
                        step,
                        what: "what still uses it to go (DependencyViolation)",
                    });
                    if !backoff.pause().await {
                        let AwsError::Call { code, message, .. } = AwsError::call(operation, e)
                        else {
                            unreachable!("AwsError::call makes a Call")
                        };
                        return Err(AwsError::Call {
                            operation,
                            code,
                            message: format!(
                                "{message} (still refused after {} s of retries; run destroy again to resume once it is gone)",
                                backoff.waited().as_secs()
                            ),
                        });
                    }
                }
                Err(e) => return Err(AwsError::call(operation, e)),
            }
        }
    }

    async fn detach_function(self, step: &'a Step, name: &'a str) -> Result<Produced, AwsError> {
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
        let answer = match self
            .retry_while_updating(step, name, "UpdateFunctionConfiguration", || {
                request.clone().send()
            })
            .await
        {
            Ok(answer) => answer,
            // Deleted meanwhile (by a killed run with --delete-function, or by hand): not in the VPC.
            Err(e) if e.code() == Some("ResourceNotFoundException") => {
                return Ok(Produced::default())
            }
            Err(e) => return Err(e),
        };
        self.wait_until_updated(step, name).await?;
        Ok(Produced {
            id: answer.function_arn().map(str::to_owned),
            public_ip: None,
        })
    }

    async fn delete_function(self, step: &'a Step, name: &'a str) -> Result<Produced, AwsError> {
        let lambda = &self.aws.lambda;
        let deleted = self
            .retry_while_updating(step, name, "DeleteFunction", || {
                lambda.delete_function().function_name(name).send()
            })
            .await;
        match deleted {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceNotFoundException") => {
                return Ok(Produced::default())
            }
            Err(e) => return Err(e),
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

    /// The gateway's state and the addresses it holds; `None` when AWS no longer knows it.
    async fn nat_gateway_state(
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

    async fn delete_nat_gateway(self, step: &'a Step, id: &'a str) -> Result<Produced, AwsError> {
        use aws_sdk_ec2::types::NatGatewayState;
        // Asked first: moto answers DeleteNatGateway on a gone id with an HTTP 500. The
        // addresses it held are freed by the DisassociateAddress steps the plan puts after this
        // one (see `emulator.rs`).
        match self.nat_gateway_state(id).await? {
            None | Some((NatGatewayState::Deleted, _)) => return Ok(Produced::default()),
            Some((NatGatewayState::Deleting, _)) => {}
            Some(_) => {
                match self
                    .aws
                    .ec2
                    .delete_nat_gateway()
                    .nat_gateway_id(id)
                    .send()
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

    async fn retain_address(self, allocation_id: &'a str) -> Result<Produced, AwsError> {
        let ec2 = &self.aws.ec2;
        let retained = Tag::builder().key(tags::ADDRESS).value("retained").build();
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

    /// The Lambda interfaces in a subnet or security group. On AWS they have the interface type
    /// `lambda`; their description names the function either way, which is what the chaos layer's
    /// stand-ins carry too.
    async fn lambda_interfaces(
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

    async fn clear_lambda_interfaces(
        self,
        step: &'a Step,
        holder: &'a InterfaceHolder,
    ) -> Result<Produced, AwsError> {
        let mut backoff = self.backoff(self.inputs.timeouts.lambda_interfaces);
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
                match self
                    .aws
                    .ec2
                    .delete_network_interface()
                    .network_interface_id(&interface.id)
                    .send()
                    .await
                {
                    Ok(_) => {}
                    Err(e)
                        if has_code(
                            &e,
                            &[
                                "InvalidNetworkInterfaceID.NotFound",
                                "InvalidNetworkInterface.InUse",
                            ],
                        ) => {}
                    // What AWS answers for an interface Lambda still holds: "Network interface
                    // 'eni-…' is currently in use." Lambda lets go on its own: poll again.
                    Err(e) if has_code(&e, &["InvalidParameterValue"]) && in_use(&e) => {}
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

    /// The associations the plan lists first (see `emulator.rs`: moto keeps a deleted subnet's
    /// association), then the table.
    async fn delete_route_table(
        self,
        step: &'a Step,
        id: &'a str,
        associations: &'a [String],
    ) -> Result<Produced, AwsError> {
        let ec2 = &self.aws.ec2;
        const NOT_FOUND: &[&str] = &["InvalidRouteTableID.NotFound"];
        for association_id in associations {
            match ec2
                .disassociate_route_table()
                .association_id(association_id)
                .send()
                .await
            {
                Ok(_) => {}
                Err(e) if has_code(&e, &["InvalidAssociationID.NotFound"]) => {}
                Err(e) => return Err(AwsError::call("DisassociateRouteTable", e)),
            }
        }
        let request = ec2.delete_route_table().route_table_id(id);
        self.remove(step, "DeleteRouteTable", NOT_FOUND, || {
            request.clone().send()
        })
        .await
    }

    async fn delete_internet_gateway(
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

    async fn delete_role(
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

/// Where a function is attached, with every reference resolved.
struct Attachment {
    subnets: Vec<String>,
    security_group: String,
    role: String,
    fresh_role: bool,
}

/// Lambda may assume the role; nothing else may.
const LAMBDA_TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

fn lambda_architecture(function: &FunctionSpec) -> aws_sdk_lambda::types::Architecture {
    aws_sdk_lambda::types::Architecture::from(function.architecture.lambda_name())
}

fn iam_tags(tags: Vec<(String, String)>) -> Vec<aws_sdk_iam::types::Tag> {
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
fn role_name(role: &str) -> &str {
    if role.starts_with("arn:") {
        role.rsplit('/').next().unwrap_or(role)
    } else {
        role
    }
}

fn created(id: Option<&str>, operation: &'static str) -> Result<Produced, AwsError> {
    let id = id.ok_or(AwsError::IncompleteAnswer {
        operation,
        missing: "the new resource's id",
    })?;
    Ok(Produced {
        id: Some(id.to_owned()),
        public_ip: None,
    })
}

/// What a step produced when all it makes is an id.
fn produced(id: &str) -> Produced {
    Produced {
        id: Some(id.to_owned()),
        public_ip: None,
    }
}

/// The configuration of a create sent once: the SDK's retries off, because a retry of a create
/// whose answer was lost makes a second resource. [`Context::create_or_find`] retries instead.
fn sent_once() -> aws_sdk_ec2::config::Builder {
    aws_sdk_ec2::config::Builder::default()
        .retry_config(aws_sdk_ec2::config::retry::RetryConfig::disabled())
}

/// How many times a create is sent, at most, when its outcome stays unknown.
const CREATE_ATTEMPTS: u32 = 5;
/// The first pause before looking a create up (AWS's reads lag its writes by a moment); each
/// next one doubles, up to `CREATE_PAUSE_MAX`.
const CREATE_PAUSE_FIRST: Duration = Duration::from_millis(500);
const CREATE_PAUSE_MAX: Duration = Duration::from_secs(8);

/// Whether a failed call may have taken effect without us hearing so (the connection closed or
/// timed out before the answer; AWS answered 5xx), or was refused for now only (throttling):
/// worth looking for what it made, then sending again.
fn outcome_unknown<E>(error: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorMetadata,
{
    const THROTTLED: &[&str] = &[
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "TooManyRequestsException",
    ];
    match error {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            service.raw().status().is_server_error() || has_code(error, THROTTLED)
        }
        _ => false,
    }
}

/// Whether an error's message says the resource is in use (EC2's InvalidParameterValue is used
/// for many things; only this one means "wait").
fn in_use<E>(error: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorMetadata,
{
    error
        .message()
        .is_some_and(|m| m.contains("currently in use"))
}

/// `tag:<key> = <value>` for each tag a create puts on its resource.
fn tag_filters(tags: &[(String, String)]) -> Vec<aws_sdk_ec2::types::Filter> {
    tags.iter()
        .map(|(key, value)| filter(&format!("tag:{key}"), value))
        .collect()
}

fn filter(name: &str, value: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(name)
        .values(value)
        .build()
}

fn waiter_error<O, E>(what: String, timeout: Duration, error: WaiterError<O, E>) -> AwsError
where
    O: fmt::Debug + 'static,
    E: std::error::Error + fmt::Debug + 'static,
{
    match error {
        WaiterError::ExceededMaxWait(_) => AwsError::WaitTimeout {
            what,
            seconds: timeout.as_secs(),
        },
        other => AwsError::Call {
            operation: "wait",
            code: None,
            message: format!("waiting for {what}: {}", super::error_chain(&other)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_interfaces_name_their_function() {
        assert_eq!(
            function_of_lambda_eni(
                "AWS Lambda VPC ENI-billing-sync-1b2c3d4e-aaaa-bbbb-cccc-0123456789ab"
            )
            .as_deref(),
            Some("billing-sync")
        );
        // The chaos layer's stand-ins carry no UUID.
        assert_eq!(
            function_of_lambda_eni("AWS Lambda VPC ENI-hello-egress").as_deref(),
            Some("hello-egress")
        );
        assert_eq!(function_of_lambda_eni("NAT gateway interface"), None);
    }

    #[tokio::test]
    async fn backoff_doubles_up_to_its_cap_and_stops_at_the_bound() {
        let timeouts = Timeouts {
            poll_first: Duration::from_millis(10),
            poll_max: Duration::from_millis(25),
            ..Timeouts::default()
        };
        let mut backoff = Backoff::new(&timeouts, Duration::from_millis(80));
        let mut pauses = 0;
        while backoff.pause().await {
            pauses += 1;
            assert!(pauses < 10, "the bound stops the polling");
        }
        // 10 + 20 + 25 + 25 = 80: four pauses fit the bound.
        assert!((3..=5).contains(&pauses), "{pauses} pauses");
        assert!(backoff.waited() >= Duration::from_millis(80));
    }

    #[test]
    fn role_names_come_from_arns() {
        assert_eq!(
            role_name("arn:aws:iam::123456789012:role/fixedip-x-lambda"),
            "fixedip-x-lambda"
        );
        assert_eq!(role_name("arn:aws:iam::123456789012:role/team/app"), "app");
        assert_eq!(role_name("fixedip-x-lambda"), "fixedip-x-lambda");
    }
}
