//! `plan`: per stack, the network the plan leaves (a [`NetworkGraph`]), the functions it creates
//! or changes, its steps and notes, and what it costs per month.

use std::collections::BTreeMap;
use std::fmt::{self, Display};

use fixedip_core::cost;
use fixedip_core::plan::{Action, FunctionSpec, Plan};
use serde::Serialize;

use super::cost::CostReport;
use super::{FormatVersion, PendingIp};
use crate::output::{counted, style, styled};
use crate::render::graph::{Change, NetworkGraph, NodeKind};
use crate::render::tree::tree;

/// The result of `plan`: one plan and its cost per stack.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    pub format_version: FormatVersion,
    /// Nothing was read from AWS: the account was assumed empty.
    pub offline: bool,
    pub stacks: Vec<StackPlan>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StackPlan {
    pub stack: String,
    pub region: String,
    /// The AZ names are assumed (`<region>a`, ...), not read from the region: deploy picks among
    /// the ones the region really offers.
    pub assumed_azs: bool,
    /// List every step in the text (`-v`, or a plan against the account); else only their count.
    #[serde(skip)]
    pub list_steps: bool,
    /// The network once the plan is applied, each resource with what the plan does to it.
    pub network: NetworkGraph,
    /// The stack's functions, with the settings the plan gives those it creates or changes.
    pub functions: Vec<PlannedFunction>,
    /// What deploy would do, one line per step, in an order it can be done in.
    pub steps: Vec<String>,
    pub notes: Vec<String>,
    /// New Elastic IPs that carry no traffic until `deploy --allow-new-ips`.
    pub pending_ips: Vec<PendingIp>,
    /// `None` when the price table lacks the region (or a resource's price): then
    /// `cost_unknown` says why, and the plan stands.
    pub cost: Option<CostReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_unknown: Option<String>,
}

/// A function of the stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedFunction {
    pub name: String,
    pub status: Change,
    /// What the plan sets, when it creates the function or updates its code or configuration.
    pub settings: Option<FunctionSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FunctionSettings {
    pub package: String,
    pub architecture: String,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub environment: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// An execution role of the user's (`role` in the settings); `None`: the stack's own.
    pub role: Option<String>,
}

impl StackPlan {
    pub fn new(plan: &Plan, list_steps: bool, assumed_azs: bool) -> StackPlan {
        let (cost, cost_unknown) = match cost::of_plan(plan) {
            Ok(cost) => (Some(CostReport::from(&cost)), None),
            Err(error) => (None, Some(error.to_string())),
        };
        let network = NetworkGraph::of(plan);
        StackPlan {
            stack: plan.stack.to_string(),
            region: plan.region.clone(),
            assumed_azs,
            list_steps,
            functions: functions(plan, &network),
            network,
            steps: steps(plan),
            notes: plan.notes.clone(),
            pending_ips: PendingIp::of_plan(plan, &Default::default()),
            cost,
            cost_unknown,
        }
    }
}

/// Every step of the plan as a person reads it.
pub fn steps(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .map(|step| plan.describe(&step.action))
        .collect()
}

/// The functions of the graph, with the settings of the step that creates or changes each.
fn functions(plan: &Plan, network: &NetworkGraph) -> Vec<PlannedFunction> {
    let spec = |name: &str| {
        plan.steps.iter().find_map(|step| match &step.action {
            Action::CreateFunction { function, .. }
            | Action::UpdateFunctionConfiguration { function, .. }
            | Action::UpdateFunctionCode { function }
                if function.name == name =>
            {
                Some(function)
            }
            _ => None,
        })
    };
    network
        .nodes
        .iter()
        .filter(|node| node.kind == NodeKind::Function)
        .filter_map(|node| {
            let name = node.name.clone()?;
            Some(PlannedFunction {
                settings: spec(&name).map(FunctionSettings::of),
                status: node.status?,
                name,
            })
        })
        .collect()
}

impl FunctionSettings {
    fn of(function: &FunctionSpec) -> FunctionSettings {
        FunctionSettings {
            package: function.package.clone(),
            architecture: function.architecture.to_string(),
            memory_mb: function.memory_mb,
            timeout_s: function.timeout_s,
            environment: function.environment.clone(),
            tags: function.tags.clone(),
            role: function.role.clone(),
        }
    }
}

impl Display for PlanReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, stack) in self.stacks.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{stack}")?;
        }
        Ok(())
    }
}

/// A tree per stack, its steps (or their count), its notes, then its cost.
impl Display for StackPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in {}",
            styled(style::HEADER, format_args!("Stack `{}`", self.stack)),
            self.region
        )?;
        if self.assumed_azs {
            write!(
                f,
                "{}",
                styled(
                    style::DIM,
                    " (offline: nothing read from AWS, AZ names assumed)"
                )
            )?;
        }
        writeln!(f, "\n")?;
        f.write_str(&tree(&self.network))?;

        writeln!(f)?;
        let steps = self.steps.len();
        if steps == 0 {
            writeln!(f, "No changes: the account already matches.")?;
        } else if self.list_steps {
            writeln!(f, "{}:", counted(steps, "step"))?;
            for step in &self.steps {
                writeln!(f, "  {step}")?;
            }
        } else {
            writeln!(f, "{} (`-v` lists them)", counted(steps, "step"))?;
        }
        for note in &self.notes {
            writeln!(f, "{}: {note}", styled(style::WARNING, "note"))?;
        }
        writeln!(f)?;
        match (&self.cost, &self.cost_unknown) {
            (Some(cost), _) => write!(f, "{cost}"),
            (None, reason) => writeln!(
                f,
                "{}: unknown ({})",
                styled(style::HEADER, "Monthly cost"),
                reason.as_deref().unwrap_or("no prices")
            ),
        }
    }
}

impl StackPlan {
    /// The stack as a diagram draws it: `stack NAME · REGION`, then its network.
    pub fn drawn(&self) -> crate::render::diagram::Drawn<'_> {
        crate::render::diagram::Drawn {
            heading: format!("stack {} · {}", self.stack, self.region),
            graph: &self.network,
        }
    }
}
