//! `cargo fixedip plan`: what deploy would create or change, and its monthly cost.
//!
//! `--offline` builds the functions, reads their records and settings, groups them into stacks and
//! plans each against an empty account whose AZs are assumed (`<region>a`, `<region>b`, ...): no AWS
//! call, no credentials. Planning against the account (`online`) is the AWS side's.

use std::fmt::{self, Display, Write as _};
use std::net::Ipv4Addr;

use fixedip_core::cost::{self, MonthlyCost, HOURS_PER_MONTH};
use fixedip_core::observed::ObservedState;
use fixedip_core::plan::{Action, Plan, Status};
use fixedip_core::planner::{self, DeclaredFunction};
use fixedip_core::settings::{is_region, DeploySettings};
use fixedip_core::tags;
use serde::Serialize;

use super::{deploy, Connections, Context, Identity};
use crate::cli::{DiagramFormat, PlanArgs};
use crate::error::CliError;
use crate::output::{counted, style, styled};

pub fn run(context: &Context, args: &PlanArgs) -> Result<(), CliError> {
    if !args.offline {
        return online(context, args);
    }
    let report = offline(context, args)?;
    print(context, args, &report)
}

/// `plan` against the account: deploy's dry run. Credentials and regions are checked first, then
/// the functions are built for the host, then every stack goes through deploy's own preflight
/// (observe, plan, the quota and endpoint checks), so that plan refuses what deploy would refuse,
/// with the same exit code. Read-only: the call log forbids mutating calls.
fn online(context: &Context, args: &PlanArgs) -> Result<(), CliError> {
    let runtime = super::async_runtime()?;
    let mut connections = Connections::default();
    let regions = context.selected_regions()?;
    runtime.block_on(async {
        for wanted in &regions {
            connections
                .to(context, wanted, Identity::Checked, true)
                .await?;
        }
        Ok::<_, CliError>(())
    })?;
    let functions = context.functions_built_for_host(&args.build)?;
    let report = runtime.block_on(async {
        let mut declared = Vec::new();
        for function in functions {
            // Built for the host, not for Lambda: the code's hash says nothing about the zip.
            declared.push(deploy::declare(context, &mut connections, function, None).await?);
        }
        let options = planner::PlanOptions {
            adopt_functions: args.adopt,
            ..planner::PlanOptions::default()
        };
        let planned = deploy::preflight(context, &connections, declared, &options).await?;
        Ok::<_, CliError>(PlanReport {
            offline: false,
            stacks: planned
                .into_iter()
                .map(|(_, plan)| StackPlan::new(plan, true, false))
                .collect(),
        })
    })?;
    print(context, args, &report)
}

fn print(context: &Context, args: &PlanArgs, report: &PlanReport) -> Result<(), CliError> {
    let output = &context.output;
    for stack in &report.stacks {
        if let Some(reason) = &stack.cost_unknown {
            output.warning(format!("the monthly cost is unknown: {reason}"));
        }
    }
    match args.diagram {
        Some(DiagramFormat::Mermaid) => output.text(&mermaid(report)),
        Some(DiagramFormat::Dot) => output.text(&dot(report)),
        None => output.result(report),
    }
    .map_err(CliError::Stdout)
}

/// The result of `plan`: one plan and its cost per stack.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    /// Nothing was read from AWS: the account was assumed empty.
    pub offline: bool,
    pub stacks: Vec<StackPlan>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StackPlan {
    /// List every step in the text (`-v`, or a plan against the account); else only their count.
    #[serde(skip)]
    pub list_steps: bool,
    /// The AZ names are assumed (`<region>a`, ...), not read from the region: deploy picks among
    /// the ones the region really offers.
    pub assumed_azs: bool,
    pub plan: Plan,
    /// `None` when the price table lacks the region (or a resource's price): then
    /// `cost_unknown` says why, and the plan stands.
    pub cost: Option<MonthlyCost>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_unknown: Option<String>,
}

impl StackPlan {
    pub fn new(plan: Plan, list_steps: bool, assumed_azs: bool) -> StackPlan {
        let (cost, cost_unknown) = match cost::of_plan(&plan) {
            Ok(cost) => (Some(cost), None),
            Err(error) => (None, Some(error.to_string())),
        };
        StackPlan {
            list_steps,
            assumed_azs,
            plan,
            cost,
            cost_unknown,
        }
    }
}

/// Build, read, group and plan, with no AWS call.
pub fn offline(context: &Context, args: &PlanArgs) -> Result<PlanReport, CliError> {
    if let Some(region) = &context.global.region {
        if !is_region(region) {
            return Err(CliError::BadRegion {
                region: region.clone(),
            });
        }
    }
    // Every function needs a region: refused before a build that takes minutes.
    let (_, selection) = context.selection()?;
    for package in &selection.packages {
        for binary in &package.binaries {
            let settings = package.settings(binary)?;
            if offline_region(context.global.region.as_deref(), &settings).is_none() {
                return Err(CliError::NoRegion {
                    function: settings.function_name,
                });
            }
        }
    }
    let functions = context.functions_built_for_host(&args.build)?;
    let declared = functions
        .into_iter()
        .map(|function| {
            let region = offline_region(context.global.region.as_deref(), &function.settings)
                .ok_or_else(|| CliError::NoRegion {
                    function: function.settings.function_name.clone(),
                })?;
            Ok(DeclaredFunction {
                record: function.record,
                settings: function.settings,
                region,
                code_sha256: None,
            })
        })
        .collect::<Result<Vec<_>, CliError>>()?;

    let mut stacks = Vec::new();
    for spec in planner::stack_specs(declared)? {
        context.output.status(
            "Planning",
            format!(
                "stack `{}` in {} (offline: AZ names assumed)",
                spec.stack, spec.region
            ),
        );
        let observed = ObservedState::assumed_offline(&spec.region, &spec.adopted_ips);
        let plan = planner::plan(&spec, &observed)?;
        stacks.push(StackPlan::new(plan, context.output.verbose > 0, true));
    }
    Ok(PlanReport {
        offline: true,
        stacks,
    })
}

/// The region without asking AWS: `--region`, the package's `region`, `AWS_REGION`,
/// `AWS_DEFAULT_REGION`. (Online, the AWS configuration's profile may also name one.)
pub fn offline_region(flag: Option<&str>, settings: &DeploySettings) -> Option<String> {
    flag.map(str::to_owned)
        .or_else(|| settings.region.clone())
        .or_else(|| non_empty_env("AWS_REGION"))
        .or_else(|| non_empty_env("AWS_DEFAULT_REGION"))
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

// ---------------------------------------------------------------------------------------------
// The text: a tree per stack, then its cost.

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

impl Display for StackPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plan = &self.plan;
        write!(
            f,
            "{} in {}",
            styled(style::HEADER, format_args!("Stack `{}`", plan.stack)),
            plan.region
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
        f.write_str(&tree(plan))?;

        writeln!(f)?;
        let steps = plan.steps.len();
        if steps == 0 {
            writeln!(f, "No changes: the account already matches.")?;
        } else if self.list_steps {
            writeln!(f, "{}:", counted(steps, "step"))?;
            for step in &plan.steps {
                writeln!(f, "  {}", plan.describe(&step.action))?;
            }
        } else {
            writeln!(f, "{} (`-v` lists them)", counted(steps, "step"))?;
        }
        for note in &plan.notes {
            writeln!(f, "{}: {note}", styled(style::WARNING, "note"))?;
        }
        writeln!(f)?;
        match (&self.cost, &self.cost_unknown) {
            (Some(cost), _) => write!(f, "{}", CostText(cost)),
            (None, reason) => writeln!(
                f,
                "{}: unknown ({})",
                styled(style::HEADER, "Monthly cost"),
                reason.as_deref().unwrap_or("no prices")
            ),
        }
    }
}

/// One line of the tree: its indentation and branch, what it is, and its status.
struct Row {
    branch: String,
    label: String,
    status: Option<Status>,
}

pub fn tree(plan: &Plan) -> String {
    let (stack, network) = (&plan.stack, &plan.network);
    let mut rows = Vec::new();
    let row = |branch: &str, label: String, status: Option<&Status>| Row {
        branch: branch.to_owned(),
        label,
        status: status.cloned(),
    };
    rows.push(row(
        "",
        format!("VPC {}", network.vpc.0),
        Some(&network.vpc.1),
    ));

    // The VPC's children: gateway, public route table, each AZ, security group, role, functions.
    // What an isolated stack does not have is left out, unless the plan deletes it.
    let mut children: Vec<Vec<Row>> = match &network.existing {
        // A network the user runs: its qualifying subnets and their NATs, read, never changed.
        Some(existing) => existing
            .subnets
            .iter()
            .map(|subnet| {
                let exits: Vec<String> = subnet
                    .exits
                    .iter()
                    .map(|e| format!("{} ({})", styled(style::VALUE, e.ip), e.nat))
                    .collect();
                vec![row(
                    "",
                    format!(
                        "your subnet {} ({}): 0.0.0.0/0 → {}",
                        subnet.id,
                        subnet.availability_zone,
                        exits.join(", ")
                    ),
                    None,
                )]
            })
            .collect(),
        None => Vec::new(),
    };
    if network.existing.is_none() && network.internet_gateway != Status::Absent {
        children.push(vec![row(
            "",
            "internet gateway".into(),
            Some(&network.internet_gateway),
        )]);
    }
    if network.existing.is_none() && network.public_route_table != Status::Absent {
        children.push(vec![row(
            "",
            "public route table: 0.0.0.0/0 → internet gateway".into(),
            Some(&network.public_route_table),
        )]);
    }
    for az in &network.azs {
        let address = match az.address.0 {
            Some(ip) => format!("Elastic IP {}", styled(style::VALUE, ip)),
            None => address_label(&az.address),
        };
        let mut group = vec![row("", format!("AZ {} (slot {})", az.az, az.slot), None)];
        if az.public_subnet.1 != Status::Absent || az.nat_gateway != Status::Absent {
            group.push(row(
                "├── ",
                format!("public subnet {}", az.public_subnet.0),
                Some(&az.public_subnet.1),
            ));
            group.push(row("│   └── ", nat_label(network), Some(&az.nat_gateway)));
            if az.address.1 != Status::Absent {
                group.push(row("│       └── ", address, Some(&az.address.1)));
            }
        }
        group.push(row(
            "└── ",
            format!("private subnet {}", az.private_subnet.0),
            Some(&az.private_subnet.1),
        ));
        group.push(row(
            "    └── ",
            private_route_label(network, az),
            Some(&az.private_route_table),
        ));
        children.push(group);
    }
    for removed in &network.removed_slots {
        let az = removed.az.as_deref().unwrap_or("unknown AZ");
        let what = match &removed.nat_gateway {
            Some(nat) => format!("its subnets, route table and NAT {nat}"),
            None => "its subnets and route table".to_owned(),
        };
        let gone = Status::Delete(
            removed
                .nat_gateway
                .clone()
                .unwrap_or_else(|| format!("slot {}", removed.slot)),
        );
        children.push(vec![row(
            "",
            format!("AZ {az} (slot {}): {what}", removed.slot),
            Some(&gone),
        )]);
    }
    for surplus in &network.surplus_slots {
        let az = surplus.az.as_deref().unwrap_or("unknown AZ");
        let mut label = format!("slot {} in {az}, beyond `azs`: left in place", surplus.slot);
        if let Some((_, ip)) = &surplus.address {
            let _ = write!(label, ", Elastic IP {}", styled(style::VALUE, ip));
        }
        children.push(vec![row("", label, None)]);
    }
    for (allocation_id, ip) in &network.retained_addresses {
        children.push(vec![row(
            "",
            format!(
                "retained Elastic IP {} ({allocation_id})",
                styled(style::VALUE, ip)
            ),
            None,
        )]);
    }
    children.push(vec![row(
        "",
        format!(
            "security group {} (no inbound rules)",
            tags::security_group_name(stack)
        ),
        Some(&network.security_group),
    )]);
    if let Some(role) = &network.role {
        children.push(vec![row(
            "",
            format!("execution role {}", tags::role_name(stack, &plan.region)),
            Some(role),
        )]);
    }
    let mut functions = vec![row("", "functions, in the private subnets".into(), None)];
    for (index, (name, status)) in network.functions.iter().enumerate() {
        let last = index + 1 == network.functions.len();
        functions.push(row(
            if last { "└── " } else { "├── " },
            format!("λ {name}{}", function_detail(plan, name)),
            Some(status),
        ));
    }
    children.push(functions);

    let count = children.len();
    for (index, group) in children.into_iter().enumerate() {
        let last = index + 1 == count;
        for (line, mut child) in group.into_iter().enumerate() {
            let lead = match (line, last) {
                (0, false) => "├── ",
                (0, true) => "└── ",
                (_, false) => "│   ",
                (_, true) => "    ",
            };
            child.branch.insert_str(0, lead);
            rows.push(child);
        }
    }

    let width = rows
        .iter()
        .map(|r| visible_len(&r.branch) + visible_len(&r.label))
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for row in rows {
        let pad = width - visible_len(&row.branch) - visible_len(&row.label);
        let _ = write!(text, "{}{}", styled(style::DIM, &row.branch), row.label);
        if let Some(status) = &row.status {
            let _ = write!(text, "{:pad$}   {}", "", status_text(status));
        }
        text.push('\n');
    }
    text
}

/// Where an AZ's private subnet sends 0.0.0.0/0: its own NAT, another AZ's (`nats` fewer than
/// `azs`), or nowhere (isolated).
fn private_route_label(
    network: &fixedip_core::plan::NetworkView,
    az: &fixedip_core::plan::AzView,
) -> String {
    let nat = match network.nat_instance_type {
        Some(_) => "NAT instance",
        None => "NAT gateway",
    };
    match az.nat_slot {
        Some(slot) if slot == az.slot => {
            format!("route table: 0.0.0.0/0 → {nat} in {}", az.az)
        }
        Some(slot) => {
            let other = network.azs.iter().find(|other| other.slot == slot);
            let name = other.map_or("another AZ", |other| other.az.as_str());
            format!("route table: 0.0.0.0/0 → {nat} in {name} (slot {slot}, shared)")
        }
        None if is_isolated(network) => "route table: no route out (isolated)".to_owned(),
        None => format!("route table: 0.0.0.0/0 → {nat} in {}", az.az),
    }
}

/// What holds a slot's Elastic IP: a NAT gateway, or a NAT instance of its type.
fn nat_label(network: &fixedip_core::plan::NetworkView) -> String {
    match &network.nat_instance_type {
        Some(instance_type) => format!("NAT instance ({instance_type})"),
        None => "NAT gateway".to_owned(),
    }
}

/// Whether the AZ holds a NAT of its own (or will, once its new IP is allowed).
fn has_own_nat(network: &fixedip_core::plan::NetworkView, az: &fixedip_core::plan::AzView) -> bool {
    !is_isolated(network) && az.nat_slot.is_none_or(|slot| slot == az.slot)
}

/// `nat = "none"`: no internet gateway once the plan is applied, and no AZ routed through a NAT.
pub fn is_isolated(network: &fixedip_core::plan::NetworkView) -> bool {
    !network.internet_gateway.exists_after()
        && !network.azs.is_empty()
        && network.azs.iter().all(|az| az.nat_slot.is_none())
}

/// " (arm64, 128 MB, 30 s)" for a function the plan creates or changes; nothing for one kept.
fn function_detail(plan: &Plan, name: &str) -> String {
    plan.steps
        .iter()
        .filter_map(|step| match &step.action {
            Action::CreateFunction { function, .. }
            | Action::UpdateFunctionConfiguration { function, .. }
            | Action::UpdateFunctionCode { function } => Some(function),
            _ => None,
        })
        .find(|function| function.name == name)
        .map(|f| {
            format!(
                " ({}, {} MB, {} s)",
                f.architecture, f.memory_mb, f.timeout_s
            )
        })
        .unwrap_or_default()
}

fn status_text(status: &Status) -> String {
    match status {
        Status::Create => styled(style::CREATE, "+ create").to_string(),
        Status::Change(id) => styled(style::CHANGE, format_args!("~ change {id}")).to_string(),
        Status::Keep(id) => styled(style::KEEP, format_args!("  keep {id}")).to_string(),
        Status::HeldBack => {
            styled(style::CHANGE, "! held back until the new IP is allowed").to_string()
        }
        Status::Delete(id) => styled(style::CHANGE, format_args!("- delete {id}")).to_string(),
        Status::Absent => styled(style::KEEP, "  absent").to_string(),
    }
}

/// The width of text on a terminal: characters, not bytes, and escape sequences count for nothing.
fn visible_len(text: &str) -> usize {
    let mut plain = Vec::new();
    let _ = std::io::Write::write_all(&mut anstream::StripStream::new(&mut plain), text.as_bytes());
    String::from_utf8_lossy(&plain).chars().count()
}

struct CostText<'c>(&'c MonthlyCost);

impl Display for CostText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cost = self.0;
        write!(
            f,
            "{} in {} (prices of {}",
            styled(style::HEADER, "Monthly cost"),
            cost.region,
            cost.prices_date
        )?;
        if !cost.prices_checked {
            write!(f, "; not confirmed for this region: {}", cost.prices_source)?;
        }
        writeln!(f, "):")?;
        let mut rows: Vec<(String, String)> = cost
            .lines
            .iter()
            .map(|line| {
                let item = format!("{} × {}", line.quantity, line.item);
                let rate = format!("{}/h × {HOURS_PER_MONTH} h", line.hourly.as_rate());
                (format!("{item:<28}{rate}"), line.monthly.to_string())
            })
            .collect();
        rows.push((
            "total before any data".to_owned(),
            cost.fixed_total.to_string(),
        ));
        let width = rows
            .iter()
            .map(|(left, _)| left.chars().count())
            .max()
            .unwrap_or(0);
        let total = rows.len() - 1;
        for (index, (left, amount)) in rows.into_iter().enumerate() {
            let pad = width - left.chars().count();
            if index == total {
                let amount = format!("{amount:>8} per month");
                writeln!(f, "  {left}{:pad$}  {}", "", styled(style::VALUE, amount))?;
            } else {
                writeln!(f, "  {left}{:pad$}  {amount:>8}", "")?;
            }
        }
        if let (Some(full), Some(saving)) = (cost.with_one_nat_per_az, cost.saving()) {
            writeln!(
                f,
                "  fewer NATs than AZs save {} per month against one NAT gateway per AZ ({full})",
                styled(style::VALUE, saving)
            )?;
        }
        let instances = cost
            .lines
            .iter()
            .find(|line| line.item == cost::NAT_INSTANCE_ITEM);
        let nats = cost.lines.iter().find(|line| line.item == "NAT gateway");
        if let Some(unpriced) = &cost.unpriced {
            writeln!(f, "  not counted above: {unpriced}")?;
        }
        // `unpriced` only ever names NAT instances.
        if instances.is_some() || cost.unpriced.is_some() {
            // What the saving gives up, next to the figure, so that the choice is an informed one.
            writeln!(
                f,
                "  + each NAT instance's 8 GB gp3 root volume, billed per GB-month (about $0.64 in us-east-1), not counted above"
            )?;
            writeln!(
                f,
                "  NAT instances: no per-GB processing charge; what they give up against NAT gateways:"
            )?;
            writeln!(
                f,
                "    - bandwidth: a t4g.nano forwards 32 Mbit/s sustained, bursting to 5 Gbit/s (a NAT gateway: up to 100 Gbit/s)"
            )?;
            writeln!(
                f,
                "    - failover: none managed; if an instance stops, its AZ has no egress until you start it or deploy again"
            )?;
            writeln!(
                f,
                "    - patching: the OS is yours to keep current (Amazon Linux 2023 as launched; terminate an instance and deploy to replace it)"
            )?;
        }
        if nats.is_some_and(|line| line.quantity > 0) {
            writeln!(
                f,
                "  + {} per GB through the NAT gateways",
                cost.per_gb.as_rate()
            )?;
        } else if instances.is_none() {
            writeln!(f, "  no NAT gateway: nothing is billed per GB")?;
        }
        if let Some(per_gb) = cost.endpoint_per_gb {
            writeln!(
                f,
                "  + {} per GB through the interface endpoints",
                per_gb.as_rate()
            )?;
        }
        if let Some(cross) = &cost.cross_az {
            writeln!(
                f,
                "  + {} per GB of the traffic of {} of {} AZs, which leaves through another AZ's NAT (data transfer between AZs, both ways; price not confirmed)",
                cross.per_gb.as_rate(),
                cross.served_across,
                cross.azs
            )?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Diagrams.

/// A Mermaid flowchart of every stack: the VPC, its AZs with their subnets and NATs (with their
/// IPs when known), the functions, and where traffic goes.
pub fn mermaid(report: &PlanReport) -> String {
    let mut out = String::from("flowchart TB\n    internet((internet))\n");
    for (s, stack) in report.stacks.iter().enumerate() {
        let plan = &stack.plan;
        let network = &plan.network;
        let _ = writeln!(
            out,
            "    subgraph s{s}[\"stack {} · {} · VPC {}\"]",
            plan.stack, plan.region, network.vpc.0
        );
        let isolated = is_isolated(network);
        if !isolated {
            let _ = writeln!(out, "        s{s}_igw[\"internet gateway\"]");
        }
        for az in &network.azs {
            let n = az.slot;
            let _ = writeln!(out, "        subgraph s{s}_az{n}[\"{}\"]", az.az);
            if has_own_nat(network, az) {
                let _ = writeln!(
                    out,
                    "            s{s}_pub{n}[\"public subnet {}\"]",
                    az.public_subnet.0
                );
                let _ = writeln!(
                    out,
                    "            s{s}_nat{n}[\"NAT gateway<br/>{}\"]",
                    address_label(&az.address)
                );
            }
            let _ = writeln!(
                out,
                "            s{s}_priv{n}[\"private subnet {}\"]",
                az.private_subnet.0
            );
            let _ = writeln!(out, "        end");
        }
        let _ = writeln!(out, "    end");
        for (f, (name, _)) in network.functions.iter().enumerate() {
            let _ = writeln!(out, "    s{s}_fn{f}{{{{\"λ {name}\"}}}}");
            for az in &network.azs {
                let _ = writeln!(out, "    s{s}_fn{f} -.- s{s}_priv{}", az.slot);
            }
        }
        for az in &network.azs {
            let n = az.slot;
            if isolated {
                continue;
            }
            let via = az.nat_slot.unwrap_or(n);
            let _ = writeln!(out, "    s{s}_priv{n} -- \"0.0.0.0/0\" --> s{s}_nat{via}");
            if has_own_nat(network, az) {
                let _ = writeln!(out, "    s{s}_nat{n} --- s{s}_pub{n}");
                let _ = writeln!(out, "    s{s}_pub{n} -- \"0.0.0.0/0\" --> s{s}_igw");
            }
        }
        if !isolated {
            let _ = writeln!(out, "    s{s}_igw --> internet");
        }
    }
    out
}

/// The same network as Graphviz dot.
pub fn dot(report: &PlanReport) -> String {
    let mut out = String::from(
        "digraph fixedip {\n    rankdir=TB;\n    node [shape=box, fontname=\"Helvetica\"];\n    internet [shape=ellipse];\n",
    );
    for (s, stack) in report.stacks.iter().enumerate() {
        let plan = &stack.plan;
        let network = &plan.network;
        let _ = writeln!(out, "    subgraph cluster_s{s} {{");
        let _ = writeln!(
            out,
            "        label=\"stack {} · {} · VPC {}\";",
            plan.stack, plan.region, network.vpc.0
        );
        let isolated = is_isolated(network);
        if !isolated {
            let _ = writeln!(out, "        s{s}_igw [label=\"internet gateway\"];");
        }
        for az in &network.azs {
            let n = az.slot;
            let _ = writeln!(out, "        subgraph cluster_s{s}_az{n} {{");
            let _ = writeln!(out, "            label=\"{}\";", az.az);
            if has_own_nat(network, az) {
                let _ = writeln!(
                    out,
                    "            s{s}_pub{n} [label=\"public subnet\\n{}\"];",
                    az.public_subnet.0
                );
                let _ = writeln!(
                    out,
                    "            s{s}_nat{n} [label=\"NAT gateway\\n{}\"];",
                    address_label(&az.address)
                );
            }
            let _ = writeln!(
                out,
                "            s{s}_priv{n} [label=\"private subnet\\n{}\"];",
                az.private_subnet.0
            );
            let _ = writeln!(out, "        }}");
        }
        let _ = writeln!(out, "    }}");
        for (f, (name, _)) in network.functions.iter().enumerate() {
            let _ = writeln!(out, "    s{s}_fn{f} [label=\"λ {name}\", shape=component];");
            for az in &network.azs {
                let _ = writeln!(
                    out,
                    "    s{s}_fn{f} -> s{s}_priv{} [style=dashed, arrowhead=none];",
                    az.slot
                );
            }
        }
        for az in &network.azs {
            let n = az.slot;
            if isolated {
                continue;
            }
            let via = az.nat_slot.unwrap_or(n);
            let _ = writeln!(
                out,
                "    s{s}_priv{n} -> s{s}_nat{via} [label=\"0.0.0.0/0\"];"
            );
            if has_own_nat(network, az) {
                let _ = writeln!(out, "    s{s}_nat{n} -> s{s}_pub{n} [arrowhead=none];");
                let _ = writeln!(out, "    s{s}_pub{n} -> s{s}_igw [label=\"0.0.0.0/0\"];");
            }
        }
        if !isolated {
            let _ = writeln!(out, "    s{s}_igw -> internet;");
        }
    }
    out.push_str("}\n");
    out
}

/// An AZ's Elastic IP: its address when known. Offline, an address from `ips = [...]` is known
/// by its allocation id only; its IP shows when planning against the account.
fn address_label(address: &(Option<Ipv4Addr>, Status)) -> String {
    match address {
        (Some(ip), _) => format!("Elastic IP {ip}"),
        (None, Status::Create) => "Elastic IP (new address)".to_owned(),
        (None, Status::Change(id) | Status::Keep(id)) => format!("Elastic IP {id} (from `ips`)"),
        (None, Status::HeldBack) => "Elastic IP (new address, held back)".to_owned(),
        (None, Status::Delete(id)) => format!("Elastic IP {id}"),
        (None, Status::Absent) => "no Elastic IP".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fixedip_core::plan::{FunctionSpec, NetworkModes, StackSpec, DEFAULT_VPC_CIDR};
    use fixedip_core::requirements::{AllocationId, AzCount, StackName};
    use fixedip_core::settings::Architecture;

    fn report(azs: u64, adopted: &[&str]) -> PlanReport {
        report_with(azs, adopted, NetworkModes::default())
    }

    fn report_with(azs: u64, adopted: &[&str], modes: NetworkModes) -> PlanReport {
        let spec = StackSpec {
            stack: StackName::parse("payments").unwrap(),
            region: "us-east-1".into(),
            vpc_cidr: DEFAULT_VPC_CIDR,
            azs: AzCount::new(azs).unwrap(),
            adopted_ips: adopted
                .iter()
                .map(|id| AllocationId::parse(id).unwrap())
                .collect(),
            modes,
            functions: vec![FunctionSpec {
                name: "sync".into(),
                package: "sync".into(),
                annotated: "sync::main".into(),
                architecture: Architecture::Arm64,
                memory_mb: 128,
                timeout_s: 30,
                environment: Default::default(),
                tags: Default::default(),
                role: None,
                code_sha256: None,
            }],
        };
        let observed = ObservedState::assumed_offline(&spec.region, &spec.adopted_ips);
        let plan = planner::plan(&spec, &observed).unwrap();
        PlanReport {
            offline: true,
            stacks: vec![StackPlan::new(plan, false, true)],
        }
    }

    fn plain(text: impl Display) -> String {
        let mut out = Vec::new();
        std::io::Write::write_all(
            &mut anstream::StripStream::new(&mut out),
            text.to_string().as_bytes(),
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn tree_has_one_branch_per_az_and_aligned_statuses() {
        let text = plain(report(3, &[]));
        assert_eq!(text.matches("── AZ us-east-1").count(), 3, "{text}");
        assert_eq!(text.matches("── NAT gateway").count(), 3, "{text}");
        let columns: Vec<usize> = text
            .lines()
            .filter_map(|line| line.find("+ create").map(|at| line[..at].chars().count()))
            .collect();
        assert!(columns.len() > 10, "{text}");
        assert!(
            columns.iter().all(|c| *c == columns[0]),
            "statuses align:\n{text}"
        );
        assert!(
            text.contains("execution role fixedip-payments-us-east-1-lambda"),
            "{text}"
        );
        assert!(text.contains("3 × NAT gateway"), "{text}");
        assert!(text.contains("λ sync (arm64, 128 MB, 30 s)"), "{text}");
    }

    #[test]
    fn adopted_address_is_named_by_its_allocation_id_offline() {
        let text = plain(report(2, &["eipalloc-0123abcd"]));
        assert!(
            text.contains("Elastic IP eipalloc-0123abcd (from `ips`)"),
            "{text}"
        );
        assert_eq!(
            text.matches("Elastic IP (new address)").count(),
            1,
            "{text}"
        );
    }

    #[test]
    fn steps_are_counted_or_listed() {
        let mut report = report(1, &[]);
        let steps = report.stacks[0].plan.steps.len();
        assert!(plain(&report).contains(&format!("{steps} steps (`-v` lists them)")));
        report.stacks[0].list_steps = true;
        let text = plain(&report);
        assert!(text.contains("\n  create VPC 10.0.0.0/16\n"), "{text}");
        assert!(
            !text.contains("step 1") && !text.contains("(new, step"),
            "steps are named by what they make, never by number: {text}"
        );
        assert!(
            text.contains("associate route table (new, private, us-east-1a) with subnet 10.0.0.0/20 (new, us-east-1a)"),
            "{text}"
        );
    }

    #[test]
    fn diagrams_show_known_addresses() {
        let mut report = report(2, &[]);
        let ip = Ipv4Addr::new(203, 0, 113, 7);
        report.stacks[0].plan.network.azs[1].address =
            (Some(ip), Status::Keep("eipalloc-1".into()));
        for diagram in [mermaid(&report), dot(&report)] {
            assert!(diagram.contains("Elastic IP 203.0.113.7"), "{diagram}");
            assert!(diagram.contains("Elastic IP (new address)"), "{diagram}");
            assert!(diagram.contains("λ sync"), "{diagram}");
        }
    }

    #[test]
    fn fewer_nats_show_the_shared_route_and_the_saving() {
        let modes = NetworkModes {
            nats: Some(1),
            ..NetworkModes::default()
        };
        let report = report_with(2, &[], modes);
        let text = plain(&report);
        assert_eq!(text.matches("── NAT gateway").count(), 1, "{text}");
        assert!(
            text.contains("route table: 0.0.0.0/0 → NAT gateway in us-east-1a (slot 0, shared)"),
            "{text}"
        );
        assert!(text.contains("1 × NAT gateway"), "{text}");
        assert!(
            text.contains(
                "fewer NATs than AZs save $36.50 per month against one NAT gateway per AZ ($73.00)"
            ),
            "{text}"
        );
        assert!(
            text.contains("+ $0.02 per GB of the traffic of 1 of 2 AZs, which leaves through another AZ's NAT"),
            "{text}"
        );
        for diagram in [mermaid(&report), dot(&report)] {
            assert!(!diagram.contains("_nat1"), "{diagram}");
            assert!(
                diagram.contains("s0_priv1 -- \"0.0.0.0/0\" --> s0_nat0")
                    || diagram.contains("s0_priv1 -> s0_nat0"),
                "{diagram}"
            );
        }
    }

    #[test]
    fn nat_instances_show_their_price_and_what_they_give_up() {
        let modes = NetworkModes {
            nat: fixedip_core::requirements::NatMode::Instance,
            ..NetworkModes::default()
        };
        let text = plain(report_with(2, &[], modes));
        // 2 × $0.0042 × 730 = $6.13 for the instances + $7.30 for the two IPs (cost.rs tests).
        assert!(text.contains("2 × NAT instance (t4g.nano)"), "{text}");
        assert_eq!(
            text.matches("── NAT instance (t4g.nano)").count(),
            2,
            "{text}"
        );
        assert!(
            text.contains("0.0.0.0/0 → NAT instance in us-east-1a"),
            "{text}"
        );
        assert!(text.contains("$13.43 per month"), "{text}");
        for given_up in ["bandwidth", "failover", "patching", "root volume"] {
            assert!(text.contains(given_up), "{given_up}: {text}");
        }
        assert!(!text.contains("per GB through the NAT gateways"), "{text}");
    }

    #[test]
    fn an_isolated_stack_has_no_internet_side() {
        let modes = NetworkModes {
            nat: fixedip_core::requirements::NatMode::None,
            ..NetworkModes::default()
        };
        let report = report_with(2, &[], modes);
        let text = plain(&report);
        for absent in [
            "internet gateway",
            "NAT gateway",
            "public subnet",
            "Elastic IP",
        ] {
            assert!(!text.contains(&format!("── {absent}")), "{absent}: {text}");
        }
        assert_eq!(
            text.matches("route table: no route out (isolated)").count(),
            2,
            "{text}"
        );
        assert!(text.contains("$0.00 per month"), "{text}");
        assert!(
            text.contains("no NAT gateway: nothing is billed per GB"),
            "{text}"
        );
        for diagram in [mermaid(&report), dot(&report)] {
            assert!(!diagram.contains("igw"), "{diagram}");
            assert!(!diagram.contains("_nat"), "{diagram}");
        }
    }
}
