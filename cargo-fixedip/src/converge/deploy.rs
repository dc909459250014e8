//! Deploy's goal: the stack its functions declare. Shared with `plan`, which runs the same
//! observation, planning and checks (read-only) so that it refuses what deploy would refuse, with
//! the same exit code.

use fixedip_core::network::Network;
use fixedip_core::observed::{ObservedState, Slot};
use fixedip_core::plan::{Action, Plan, Ref, StackSpec, Status};
use fixedip_core::planner::{self, quotas, DeclaredFunction, PlanOptions};
use fixedip_core::requirements::Endpoint;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use super::Goal;
use crate::aws::execute::ExecuteError;
use crate::aws::observe::{self, observe_keeping_network, AddressQuota, Scope};
use crate::aws::quotas::{region_usage, RegionUsage};
use crate::aws::{endpoints, Aws, AwsError, FunctionFailure};
use crate::build::AnnotatedBinary;
use crate::commands::{Connections, Context, Identity};
use crate::error::CliError;

/// The stack as the declared functions want it.
pub struct Deploy {
    pub options: PlanOptions,
    /// AZs AWS refused a subnet or a function's subnets in during this run, by name, with why:
    /// the plans made after the refusal leave them out ([`Goal::plan_again_after`]).
    pub refused_azs: Mutex<BTreeMap<String, String>>,
    /// The last observation of each stack (by region and name) and the network read by its tags
    /// that it was made of: a deploy that changes nothing verifies from it
    /// ([`Deploy::observation`]).
    pub observed: Mutex<BTreeMap<(String, String), (ObservedState, Network)>>,
    /// What AWS failed to create in this run, by stack: each is made again once, by planning
    /// again ([`Goal::plan_again_after`]).
    pub failed: Mutex<BTreeSet<(String, Failed)>>,
    /// The quota reads the plan made before the lease needed, by stack (region and name): under
    /// the lease they are read beside the observation rather than after it.
    quota_reads: Mutex<BTreeMap<(String, String), QuotaReads>>,
}

/// The quota reads a plan needs: the Elastic IP quota when it allocates, what the region uses of
/// the VPC quotas when it creates what they count. Both are asked only then, so that a deploy
/// that changes nothing stays at its few read calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct QuotaReads {
    addresses: bool,
    usage: bool,
}

impl QuotaReads {
    fn of(plan: &Plan) -> QuotaReads {
        QuotaReads {
            addresses: allocates(plan),
            usage: quotas::consumes_quotas(plan),
        }
    }
}

/// What the quota reads answered; `None` where not asked.
#[derive(Default)]
struct QuotaAnswers {
    addresses: Option<AddressQuota>,
    usage: Option<RegionUsage>,
}

impl QuotaAnswers {
    /// Reads what `reads` asks for and this does not hold yet, all at once.
    async fn read(&mut self, aws: &Aws, reads: QuotaReads) -> Result<(), AwsError> {
        let addresses = reads.addresses && self.addresses.is_none();
        let usage = reads.usage && self.usage.is_none();
        let (addresses, usage) = tokio::try_join!(
            async {
                match addresses {
                    true => observe::address_quota(aws).await.map(Some),
                    false => Ok(None),
                }
            },
            async {
                match usage {
                    true => region_usage(aws).await.map(Some),
                    false => Ok(None),
                }
            },
        )?;
        self.addresses = self.addresses.take().or(addresses);
        self.usage = self.usage.take().or(usage);
        Ok(())
    }
}

/// A new resource AWS failed to create.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Failed {
    /// The slot's NAT gateway.
    NatGateway(Slot),
    /// The function of this name.
    Function(String),
    /// The VPC endpoint of this service.
    Endpoint(Endpoint),
}

impl Deploy {
    pub fn new(options: PlanOptions) -> Deploy {
        Deploy {
            options,
            refused_azs: Mutex::default(),
            observed: Mutex::default(),
            failed: Mutex::default(),
            quota_reads: Mutex::default(),
        }
    }

    /// The quota reads the stack's plan before the lease needed.
    fn quota_reads_of(&self, key: &(String, String)) -> QuotaReads {
        let reads = self.quota_reads.lock().expect("not poisoned");
        reads.get(key).copied().unwrap_or_default()
    }

    /// What the last plan of the stack was made from; taken, so asked once per stack.
    pub fn observation(&self, spec: &StackSpec) -> Option<(ObservedState, Network)> {
        let key = (spec.region.clone(), spec.stack.to_string());
        self.observed.lock().expect("not poisoned").remove(&key)
    }
}

/// What AWS says when an account cannot create subnets in a zone it lists (EC2
/// `InvalidParameterValue`, 400: "Value (us-east-1a) for parameter availabilityZone is invalid.
/// Subnets can currently only be created in the following availability zones: ..."; quoted in
/// boto/boto #1904, hashicorp/terraform #3434, aws-samples/saas-reference-architecture-ecs #12).
/// DescribeAvailabilityZones lists such zones all the same (widdix/aws-cf-templates #36): only the
/// create tells.
const SUBNET_REFUSED_IN_AZ: &str = "Subnets can currently only be created in";

/// What Lambda says when a function's subnets include one in an AZ it does not support in the
/// region (`InvalidParameterValueException`, 400: "The provided subnets contain availability zone
/// Lambda doesn't support. Please use a different set of subnets."; keboola/developer-portal #81,
/// us-east-1). It names neither the subnet nor the zone, and no API lists the zones Lambda
/// supports: only putting a function there tells.
const LAMBDA_REFUSED_AZ: &str = "contain availability zone Lambda doesn't support";

impl Goal for Deploy {
    const COMMAND: &'static str = "deploy";
    const DOING: &'static str = "Deploying";
    const NOTHING_TO_DO: &'static str = "the account already matches";

    async fn plan(
        &self,
        context: &Context,
        aws: &Aws,
        spec: &StackSpec,
        first: bool,
    ) -> Result<Plan, CliError> {
        let key = (spec.region.clone(), spec.stack.to_string());
        // Under the lease, what the plan shown before it needed is read beside the observation:
        // the account may have changed meanwhile, so it is read again, but no later.
        let early = match first {
            true => QuotaReads::default(),
            false => self.quota_reads_of(&key),
        };
        let mut answers = QuotaAnswers::default();
        let scope = Scope::from(spec);
        let ((mut observed, network), ()) = tokio::try_join!(
            observe_keeping_network(aws, &scope),
            answers.read(aws, early),
        )?;
        for (name, why) in self.refused_azs.lock().expect("not poisoned").iter() {
            if let Some(id) = observed.az_ids.get(name) {
                observed.unusable_az_ids.insert(id.clone(), why.clone());
            }
        }
        let mut plan = planner::plan_with(spec, &observed, &self.options)?;
        // Whatever the plan needs that was not read beside the observation, read now, together.
        let needed = QuotaReads::of(&plan);
        answers.read(aws, needed).await?;
        // The quota matters only to a plan that allocates: planned again with it.
        if let (true, Some(addresses)) = (needed.addresses, answers.addresses) {
            addresses.fill(&mut observed);
            plan = planner::plan_with(spec, &observed, &self.options)?;
        }
        // The VPC quotas, checked only when the plan creates what they count.
        if quotas::consumes_quotas(&plan) {
            answers
                .read(
                    aws,
                    QuotaReads {
                        usage: true,
                        ..QuotaReads::default()
                    },
                )
                .await?;
            if let Some(usage) = answers.usage.take() {
                usage.fill(&mut observed);
            }
            quotas::check_quotas(&plan, &observed)?;
        }
        if first {
            self.quota_reads
                .lock()
                .expect("not poisoned")
                .insert(key.clone(), needed);
        }
        self.observed
            .lock()
            .expect("not poisoned")
            .insert(key, (observed, network));
        if first {
            show_attachment(context, &plan);
            for note in &plan.notes {
                context.output.warning(note);
            }
        }
        Ok(plan)
    }

    /// A subnet refused in its AZ, or a function refused for the AZ of one of its subnets: the
    /// AZs are left out and the stack planned again. No NAT was made there, since a new NAT waits
    /// for its subnet and for Lambda's answer to the new functions (`planner/slot.rs`); the
    /// addresses allocated at the start serve the slots that take the refused ones' place, and a
    /// slot whose NAT exists keeps its AZ. Each AZ is refused once per run at most.
    ///
    /// What AWS failed to create, planned again once per run, so that one run converges where
    /// AWS says "Please try again": a NAT gateway that reads `failed` (its FailureCode, e.g.
    /// `InternalError`) gets a new gateway on the same Elastic IP with a client token of the next
    /// generation (the planner counts the failed one); a function whose creation failed (its
    /// StateReasonCode) is deleted and created again; so is a VPC endpoint that reads `failed`.
    /// A second failure is the user's to read.
    fn plan_again_after(&self, plan: &Plan, error: &ExecuteError) -> Option<String> {
        let step = plan.steps.iter().find(|s| s.id == error.step)?;
        let made_again = match (&step.action, &error.error) {
            (Action::CreateNatGateway { slot, .. }, AwsError::NatGatewayFailed { .. }) => Some((
                Failed::NatGateway(*slot),
                format!("creating a new NAT gateway for slot {slot} with the same Elastic IP"),
            )),
            (
                Action::AwaitFunctionActive { name },
                AwsError::FunctionFailed {
                    failed: FunctionFailure::Creation,
                    ..
                },
            ) => Some((
                Failed::Function(name.clone()),
                format!("deleting function {name} and creating it again"),
            )),
            (
                Action::CreateGatewayEndpoint { endpoint, .. }
                | Action::CreateInterfaceEndpoint { endpoint, .. },
                AwsError::EndpointFailed { .. },
            ) => Some((
                Failed::Endpoint(*endpoint),
                format!("deleting it and making a new {endpoint} endpoint"),
            )),
            _ => None,
        };
        if let Some((failed, again)) = made_again {
            let mut failed_before = self.failed.lock().expect("not poisoned");
            let first = failed_before.insert((plan.stack.to_string(), failed));
            return first.then(|| format!("{}; {again}", error.error));
        }
        let AwsError::Call { code, message, .. } = &error.error else {
            return None;
        };
        let mut refused = self.refused_azs.lock().expect("not poisoned");
        match &step.action {
            Action::CreateSubnet { az, .. }
                if code.as_deref() == Some("InvalidParameterValue")
                    && message.contains(SUBNET_REFUSED_IN_AZ)
                    && !refused.contains_key(az) =>
            {
                refused.insert(
                    az.clone(),
                    format!("AWS refused a subnet in {az}: {message}"),
                );
                Some(format!(
                    "AWS refused a subnet in {az} ({message}): planning the stack again without that AZ"
                ))
            }
            Action::CreateFunction { subnets, .. }
            | Action::UpdateFunctionConfiguration { subnets, .. }
                if code.as_deref() == Some("InvalidParameterValueException")
                    && message.contains(LAMBDA_REFUSED_AZ) =>
            {
                // Lambda does not say which subnet: every AZ of the call is left out.
                let azs: Vec<String> = subnets
                    .iter()
                    .filter_map(|subnet| az_of_subnet(plan, subnet))
                    .filter(|az| !refused.contains_key(az))
                    .collect();
                if azs.is_empty() {
                    return None;
                }
                let list = azs.join(", ");
                for az in &azs {
                    refused.insert(
                        az.clone(),
                        format!("Lambda refused a function in subnets of {list}: {message}"),
                    );
                }
                Some(format!(
                    "Lambda refused the function's subnets in {list} ({message}); it does not say which AZ: planning the stack again without those AZs"
                ))
            }
            _ => None,
        }
    }

    /// The region must offer every VPC endpoint the plan creates, in every AZ of the stack.
    async fn check(&self, aws: &Aws, plan: &Plan) -> Result<(), CliError> {
        let services = endpoints::services_created(plan);
        if !services.is_empty() {
            let azs: Vec<String> = plan.network.azs.iter().map(|az| az.az.clone()).collect();
            endpoints::check_services(aws, &services, &azs).await?;
        }
        Ok(())
    }
}

/// The AZ of a subnet a step names: the one the plan creates it in, or the AZ of the slot whose
/// private subnet it is.
fn az_of_subnet(plan: &Plan, subnet: &Ref) -> Option<String> {
    match subnet {
        Ref::Step(id) => match &plan.steps.get(id.0)?.action {
            Action::CreateSubnet { az, .. } => Some(az.clone()),
            _ => None,
        },
        Ref::Existing(id) => plan
            .network
            .azs
            .iter()
            .find(
                |az| matches!(&az.private_subnet.1, Status::Keep(s) | Status::Change(s) if s == id),
            )
            .map(|az| az.az.clone()),
    }
}

/// A stack on a network the user runs: where its functions will attach.
fn show_attachment(context: &Context, plan: &Plan) {
    if let Some(attachment) = &plan.network.existing {
        let subnets: Vec<String> = attachment
            .subnets
            .iter()
            .map(|s| format!("{} ({})", s.id, s.availability_zone))
            .collect();
        context.output.status(
            "Attaching",
            format!(
                "to the existing network {}: {}",
                attachment.vpc_id,
                subnets.join(", ")
            ),
        );
    }
}

/// Whether applying the plan may allocate an Elastic IP (then the quota is worth checking).
fn allocates(plan: &Plan) -> bool {
    plan.steps
        .iter()
        .any(|step| matches!(step.action, Action::AllocateAddress { .. }))
}

/// A built function, in the region it deploys to (connected to on first use).
pub async fn declare(
    context: &Context,
    connections: &mut Connections,
    function: AnnotatedBinary,
    code_sha256: Option<String>,
    read_only: bool,
) -> Result<DeclaredFunction, CliError> {
    let wanted = context.wanted_region(&function.settings);
    connections
        .to(context, &wanted, Identity::Zones, read_only)
        .await?;
    Ok(DeclaredFunction {
        record: function.record,
        settings: function.settings,
        region: connections.region_of(&wanted),
        code_sha256,
    })
}
