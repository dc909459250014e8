//! Carrying out a plan: each step is one AWS operation (plus its waiter), run as soon as the steps it
//! comes `after` are done, concurrently with every other step that is ready. This file is the
//! scheduler; the calls of each kind of resource are in `network.rs` (VPC, gateways, subnets, route
//! tables, the functions' security group), `nats.rs` (Elastic IPs, NAT gateways and instances),
//! `functions.rs` (role, functions, Lambda's interfaces) and `endpoints.rs` (egress rules, VPC
//! endpoints).
//!
//! The executor makes no choice of its own: every id, flag and client token comes from the plan
//! or from fixedip-core (`tokens`). It reads AWS only to wait (a NAT gateway `available` or
//! `deleted`, an instance terminated, a function updated, Lambda's interfaces gone), to resolve the
//! outcome of a create whose answer was lost (found by its tags or token), or to treat not-found
//! as done. What it adds is how to do a step safely on AWS: tags on every create (in the create
//! call itself, so nothing untagged can be left behind by a crash), waiters, and the retries AWS
//! documents as normal, all decided in one place (`policy.rs`: a fresh id not visible yet, a role
//! not yet assumable by Lambda, throttling, something still in use, a function still updating, an
//! Elastic IP still settling after its NAT gateway), each within a time budget.
//! After a failure, nothing is rolled back: the next run observes by tags and plans again from
//! what exists. Where moto differs from AWS, the compensation is listed in `../emulator.rs`.

use super::emulator::carries;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use aws_sdk_ec2::error::SdkError;
use aws_sdk_ec2::types::{DomainType, ResourceType, Tag, TagSpecification, VpcAttributeName};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
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

mod endpoints;
mod functions;
mod nats;
pub(in crate::aws) use functions::iam_tags;
mod network;
mod policy;

pub use policy::{classify, Budget, Class, Failure, FIRST_PAUSE};

/// How long to wait for what AWS does after a call returns.
#[derive(Debug, Clone)]
pub struct Timeouts {
    /// NAT gateway `pending` → `available`: 1–3 minutes on AWS; the SDK's own waiter allows 10.
    pub nat_gateway: Duration,
    /// A NAT instance reporting ready on its console: its boot retries the nftables install for
    /// up to ten minutes (60 × 10 s, `nat_instance.rs`), so the bound is 15 minutes.
    pub nat_instance_ready: Duration,
    /// Lambda function `Pending` → `Active`, and `InProgress` → `Successful` after an update.
    pub function: Duration,
    /// A role (new, or with a policy attached moments ago) becoming assumable by Lambda: IAM is
    /// eventually consistent; terraform allows 5 minutes (`lambdaPropagationTimeout`).
    pub role_propagation: Duration,
    /// A resource just created becoming visible to the calls that name it (EC2's eventual
    /// consistency: AWS advises backing off "up to five minutes").
    pub propagation: Duration,
    /// Calls throttled past the SDK's own retries, or left without an answer: sent again within
    /// this time (the EC2 throttling guide: exponential backoff, a maximum delay, jitter).
    pub throttling: Duration,
    /// Lambda's network interfaces going after their functions left (the Lambda team's P99 is
    /// about 35 minutes; terraform-provider-aws waits 45), and DependencyViolation retries on
    /// what they held.
    pub lambda_interfaces: Duration,
    /// The pause between two polls of something AWS finishes on its own within minutes; for
    /// Lambda's network interfaces, the first pause, each next one doubling up to `poll_max`.
    pub poll_first: Duration,
    pub poll_max: Duration,
}

/// The default of `--poll-interval`.
pub const DEFAULT_POLL_SECONDS: f64 = 2.0;

/// The default of `--nat-ready-timeout`: longer than the user data's own retries (ten minutes).
pub const DEFAULT_NAT_READY_SECONDS: u64 = 900;

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            nat_gateway: Duration::from_secs(600),
            nat_instance_ready: Duration::from_secs(DEFAULT_NAT_READY_SECONDS),
            function: Duration::from_secs(300),
            role_propagation: Duration::from_secs(300),
            propagation: Duration::from_secs(300),
            throttling: Duration::from_secs(300),
            lambda_interfaces: Duration::from_secs(45 * 60),
            poll_first: Duration::from_secs(DEFAULT_POLL_SECONDS as u64),
            poll_max: Duration::from_secs(6 * DEFAULT_POLL_SECONDS as u64),
        }
    }
}

impl Timeouts {
    /// From the command line's seconds: NAT gateway, function, Lambda interfaces, poll pause
    /// (Lambda's interfaces are polled from it up to six times it: 2 s → 12 s by default).
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
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The deployment package of each function the plan creates or updates the code of, by name.
    pub zips: BTreeMap<String, Vec<u8>>,
    /// Addresses the user brought: tagged `fixedip:adopted=true` when put to work, so that no later
    /// run ever releases them, even once they are no longer listed in `ips`.
    pub adopted_ips: Vec<AllocationId>,
    pub timeouts: Timeouts,
    /// This run's own word, in the client tokens of what AWS does not list once deleted (route
    /// tables, VPC endpoints): `fixedip_core::tokens::route_table` says why.
    pub run: String,
}

impl Default for Inputs {
    fn default() -> Self {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Inputs {
            zips: BTreeMap::new(),
            adopted_ips: Vec::new(),
            timeouts: Timeouts::default(),
            run: format!("{}-{}", std::process::id(), since_epoch.as_nanos()),
        }
    }
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
            Action::AwaitFunctionActive { .. } => "AwaitFunctionActive",
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
            Action::AwaitNatInstanceReady { .. } => "AwaitNatInstanceReady",
            Action::AssociateAddress { .. } => "AssociateAddress",
            Action::DisassociateAddress { .. } => "DisassociateAddress",
            Action::DropPublicIp { .. } => "ModifyNetworkInterfaceAttribute",
            Action::StartNatInstance { .. } => "StartNatInstance",
            Action::TerminateNatInstance { .. } => "TerminateNatInstance",
            Action::CreateNatProfile { .. } => "CreateNatProfile",
            Action::CreateNatInterface { .. } => "CreateNetworkInterface",
            Action::AssociateInterfaceAddress { .. } => "AssociateAddress",
            Action::CreateNatLaunchTemplate { .. } => "CreateLaunchTemplate",
            Action::CreateNatGroup { .. } => "CreateAutoScalingGroup",
            Action::AwaitNatGroupReady { .. } => "AwaitNatGroupReady",
            Action::AwaitNatInterfaceAttached { .. } => "AwaitNatInterfaceAttached",
            Action::DeleteNatGroup { .. } => "DeleteAutoScalingGroup",
            Action::DeleteNatLaunchTemplate { .. } => "DeleteLaunchTemplate",
            Action::DeleteNatInterface { .. } => "DeleteNetworkInterface",
            Action::DeleteNatProfile { .. } => "DeleteNatProfile",
            Action::AuthorizeEgress { .. } => "AuthorizeSecurityGroupEgress",
            Action::RevokeEgress { .. } => "RevokeSecurityGroupEgress",
            Action::CreateEndpointSecurityGroup { .. } => "CreateSecurityGroup",
            Action::AdmitHttpsFrom { .. } => "AuthorizeSecurityGroupIngress",
            Action::CreateGatewayEndpoint { .. } | Action::CreateInterfaceEndpoint { .. } => {
                "CreateVpcEndpoint"
            }
            Action::ModifyInterfaceEndpoint { .. } | Action::ModifyGatewayEndpoint { .. } => {
                "ModifyVpcEndpoint"
            }
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
    /// A new instance's primary network interface, as its launch reported it.
    pub(super) interface: Option<String>,
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
    let fresh = policy::FreshIdProbes::default();
    let context = Context {
        aws,
        plan,
        inputs,
        progress,
        fresh: &fresh,
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

    /// The primary network interface a launch in this run reported for `reference`.
    fn interface(&self, reference: &Ref) -> Option<String> {
        match reference {
            Ref::Step(id) => self.done.get(id).and_then(|p| p.interface.clone()),
            Ref::Existing(_) => None,
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
    /// The new ids the steps wait on together ([`policy::FreshIdProbes`]).
    fresh: &'a policy::FreshIdProbes,
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
        match &step.action {
            Action::CreateVpc { .. }
            | Action::EnableVpcDns { .. }
            | Action::CreateInternetGateway
            | Action::AttachInternetGateway { .. }
            | Action::CreateSubnet { .. }
            | Action::CreateRouteTable { .. }
            | Action::AssociateRouteTable { .. }
            | Action::CreateRoute { .. }
            | Action::ReplaceRoute { .. }
            | Action::DeleteRoute { .. }
            | Action::CreateSecurityGroup { .. }
            | Action::DeleteSubnet { .. }
            | Action::DeleteRouteTable { .. }
            | Action::DeleteSecurityGroup { .. }
            | Action::DeleteInternetGateway { .. }
            | Action::DeleteVpc { .. } => self.prepare_network(step, refs),
            Action::AllocateAddress { .. }
            | Action::ActivateAddress { .. }
            | Action::CreateNatGateway { .. }
            | Action::DeleteNatGateway { .. }
            | Action::RetainAddress { .. }
            | Action::ReleaseAddress { .. }
            | Action::CreateNatSecurityGroup { .. }
            | Action::LaunchNatInstance { .. }
            | Action::DisableSourceDestCheck { .. }
            | Action::AwaitNatInstanceReady { .. }
            | Action::AssociateAddress { .. }
            | Action::DisassociateAddress { .. }
            | Action::DropPublicIp { .. }
            | Action::StartNatInstance { .. }
            | Action::TerminateNatInstance { .. }
            | Action::CreateNatProfile { .. }
            | Action::CreateNatInterface { .. }
            | Action::AssociateInterfaceAddress { .. }
            | Action::CreateNatLaunchTemplate { .. }
            | Action::CreateNatGroup { .. }
            | Action::AwaitNatGroupReady { .. }
            | Action::AwaitNatInterfaceAttached { .. }
            | Action::DeleteNatGroup { .. }
            | Action::DeleteNatLaunchTemplate { .. }
            | Action::DeleteNatInterface { .. }
            | Action::DeleteNatProfile { .. } => self.prepare_nats(step, refs),
            Action::CreateRole { .. }
            | Action::AttachRolePolicy { .. }
            | Action::CreateFunction { .. }
            | Action::AwaitFunctionActive { .. }
            | Action::UpdateFunctionConfiguration { .. }
            | Action::UpdateFunctionCode { .. }
            | Action::TagFunction { .. }
            | Action::DetachFunction { .. }
            | Action::DeleteFunction { .. }
            | Action::ClearLambdaInterfaces { .. }
            | Action::DeleteRole { .. } => self.prepare_functions(step, refs),
            Action::AuthorizeEgress { .. }
            | Action::RevokeEgress { .. }
            | Action::CreateEndpointSecurityGroup { .. }
            | Action::AdmitHttpsFrom { .. }
            | Action::CreateGatewayEndpoint { .. }
            | Action::CreateInterfaceEndpoint { .. }
            | Action::ModifyInterfaceEndpoint { .. }
            | Action::ModifyGatewayEndpoint { .. }
            | Action::DeleteEndpoint { .. } => self.prepare_endpoints(step, refs),
        }
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

impl<'a> Context<'a> {}

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

/// Polling within a bound: pauses from `first`, each next one twice as long up to `max`.
pub(in crate::aws) struct Backoff {
    next: Duration,
    max: Duration,
    started: Instant,
    deadline: Instant,
}

impl Backoff {
    fn new(first: Duration, max: Duration, bound: Duration) -> Backoff {
        let started = Instant::now();
        Backoff {
            next: first,
            max: max.max(first),
            started,
            deadline: started + bound,
        }
    }

    /// Sleeps before the next poll; `false` once the bound is reached (no sleep then).
    pub(in crate::aws) async fn pause(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        tokio::time::sleep(self.next.min(self.deadline - now)).await;
        self.next = (self.next * 2).min(self.max);
        true
    }

    pub(in crate::aws) fn waited(&self) -> Duration {
        self.started.elapsed()
    }
}

/// The description AWS gives the Hyperplane ENIs of a function in a VPC.
const LAMBDA_ENI_DESCRIPTION: &str = "AWS Lambda VPC ENI-";

impl<'a> Context<'a> {
    /// Polling something AWS finishes within minutes (a NAT gateway, an endpoint, a function's
    /// state, a NAT instance's boot): from [`policy::FIRST_PAUSE`] doubling to `poll_first`, then
    /// one poll every `poll_first`, so that what waits for it starts within one poll of AWS
    /// finishing (issue 18: the SDK's NAT waiter polled every 15 s and more, a deploy ended up to
    /// half a minute after its gateways), and what is ready within a second is seen at once.
    pub(in crate::aws) fn backoff(&self, bound: Duration) -> Backoff {
        let timeouts = &self.inputs.timeouts;
        Backoff::new(timeouts.first_pause(), timeouts.poll_first, bound)
    }

    /// Polling what AWS may take tens of minutes over (Lambda's network interfaces): pauses from
    /// `poll_first`, doubling up to `poll_max`.
    pub(in crate::aws) fn long_backoff(&self, bound: Duration) -> Backoff {
        let timeouts = &self.inputs.timeouts;
        Backoff::new(timeouts.poll_first, timeouts.poll_max, bound)
    }

    /// A create that must not happen twice. `send` makes the call once (SDK retries off, see
    /// [`sent_once`]); when its outcome is unknown (no answer, a 5xx) `find` looks the resource up
    /// by the tags (or token) the create put on it, after a pause, and only if it is not there is
    /// the call sent again. Every other failure is handled as [`Context::send`] handles it
    /// (throttling, a fresh id not visible yet...), all within the policy's time budgets.
    pub(super) async fn create_or_find<E, S, SF, F, FF>(
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
        let fresh = names_fresh_ids(step);
        let mut retries = policy::Retries::new();
        loop {
            let error = match send().await {
                Ok(produced) => {
                    self.answered(step);
                    return produced;
                }
                Err(e) => e,
            };
            let next = self.next_try(operation, &error, fresh, &mut retries);
            if next.is_none_or(|(class, _)| class != Class::NotVisibleYet) {
                self.answered(step);
            }
            let Some((class, pause)) = next else {
                return Err(AwsError::call(operation, error));
            };
            if class == Class::OutcomeUnknown {
                (self.progress)(Progress::Waiting {
                    step,
                    what: "no clear answer: looking for what the call made before sending it again",
                });
                tokio::time::sleep(pause).await;
                if let Some(found) = find().await? {
                    return Ok(found);
                }
            } else {
                (self.progress)(Progress::Waiting {
                    step,
                    what: class.waiting_for(),
                });
                self.pause(step, class, pause, &retries).await;
            }
        }
    }

    /// A delete call: not-found is done; the rest is the policy's ([`Context::send`]):
    /// DependencyViolation (something, usually a Lambda interface AWS listed late, still uses the
    /// resource) is retried within the ENI timeout, so that it never reaches the user while AWS is
    /// still cleaning up.
    pub(in crate::aws) async fn remove<T, E, F>(
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
        let started = Instant::now();
        match self.send(step, operation, not_found, send).await {
            Ok(_) => Ok(Produced::default()),
            Err(e) if has_code(&e, not_found) => Ok(Produced::default()),
            Err(e) if has_code(&e, &["DependencyViolation"]) => {
                let AwsError::Call { code, message, .. } = AwsError::call(operation, e) else {
                    unreachable!("AwsError::call makes a Call")
                };
                Err(AwsError::Call {
                    operation,
                    code,
                    message: format!(
                        "{message} (still refused after {} s of retries; run destroy again to resume once it is gone)",
                        started.elapsed().as_secs()
                    ),
                })
            }
            Err(e) => Err(AwsError::call(operation, e)),
        }
    }
}

/// Whether a step names an id this run created: a not-found answer then means AWS has not made
/// it visible yet (see `policy.rs`).
pub(super) fn names_fresh_ids(step: &Step) -> bool {
    step.action.refs().iter().any(|r| matches!(r, Ref::Step(_)))
}

/// Lambda may assume the role; nothing else may.
const LAMBDA_TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

fn created(id: Option<&str>, operation: &'static str) -> Result<Produced, AwsError> {
    let id = id.ok_or(AwsError::IncompleteAnswer {
        operation,
        missing: "the new resource's id",
    })?;
    Ok(Produced {
        id: Some(id.to_owned()),
        public_ip: None,
        interface: None,
    })
}

/// What a step produced when all it makes is an id.
fn produced(id: &str) -> Produced {
    Produced {
        id: Some(id.to_owned()),
        public_ip: None,
        interface: None,
    }
}

/// The configuration of a create sent once: the SDK's retries off, because a retry of a create
/// whose answer was lost makes a second resource. [`Context::create_or_find`] retries instead.
pub(super) fn sent_once() -> aws_sdk_ec2::config::Builder {
    aws_sdk_ec2::config::Builder::default()
        .retry_config(aws_sdk_ec2::config::retry::RetryConfig::disabled())
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

#[cfg(test)]
mod tests {
    use super::functions::{function_of_lambda_eni, role_name};
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
        let mut backoff = Backoff::new(
            timeouts.poll_first,
            timeouts.poll_max,
            Duration::from_millis(80),
        );
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
