//! Grouping the annotated functions into stacks: by region and stack name, with the settings every
//! function of a stack must agree on (they share its network) checked, and each Lambda name used
//! once per region.

use std::collections::BTreeMap;
use std::fmt;

use crate::plan::{
    ExistingNetwork, FunctionSpec, NetworkModes, StackSpec, DEFAULT_NAT_INSTANCE_TYPE,
    DEFAULT_VPC_CIDR,
};
use crate::record::Record;
use crate::requirements::{AllocationId, StackName};
use crate::settings::DeploySettings;

/// One annotated function as the CLI found it: its record, its settings, and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredFunction {
    pub record: Record,
    pub settings: DeploySettings,
    /// The region it deploys to, resolved (settings, `--region`, the AWS configuration).
    pub region: String,
    /// Base64 SHA-256 of its zip; `None` when planning without building a zip.
    pub code_sha256: Option<String>,
}

/// Where a function comes from, for messages: "`hello_egress::main` in package hello-egress
/// (src/main.rs:12)".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub package: String,
    pub function: String,
    pub source: String,
}

impl Origin {
    fn of(record: &Record) -> Origin {
        Origin {
            package: record.package.clone(),
            function: record.function.clone(),
            source: record.source.clone(),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` in package {} ({})",
            self.function, self.package, self.source
        )
    }
}

/// Functions that name one stack but cannot share it.
///
/// Large for an error (two origins), and made at most once per run: not worth boxing, hence the
/// `clippy::result_large_err` allowances below.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConflictError {
    #[error(
        "functions of stack `{stack}` in {region} disagree on `{setting}`: {first} has {first_value}, {second} has {second_value}; give every function of a stack the same `{setting}`, or name different stacks"
    )]
    Disagree {
        stack: StackName,
        region: String,
        setting: &'static str,
        first: Origin,
        first_value: String,
        second: Origin,
        second_value: String,
    },
    #[error(
        "two functions of stack `{stack}` in {region} are both named `{name}`: {first} and {second}; set a different `function-name` in [package.metadata.fixedip] for one of them"
    )]
    DuplicateName {
        stack: StackName,
        region: String,
        name: String,
        first: Origin,
        second: Origin,
    },
    #[error(
        "two functions in {region} are both named `{name}`, one in stack `{first_stack}` ({first}), one in stack `{second_stack}` ({second}): a Lambda name is unique in a region, so they would be one function moving between stacks; set a different `function-name` in [package.metadata.fixedip] for one of them"
    )]
    NameInTwoStacks {
        region: String,
        name: String,
        first_stack: StackName,
        first: Origin,
        second_stack: StackName,
        second: Origin,
    },
}

/// Group functions into stacks by (region, stack), sorted by region then stack; functions within a
/// stack are sorted by name. Functions of one stack share its network, so they must agree on `azs`,
/// `ips` and `vpc-cidr`; and a Lambda name is unique in a region, so no two functions share one.
#[allow(clippy::result_large_err)] // See `ConflictError`.
pub fn stack_specs(functions: Vec<DeclaredFunction>) -> Result<Vec<StackSpec>, ConflictError> {
    let mut named: BTreeMap<(&str, &str), &DeclaredFunction> = BTreeMap::new();
    for function in &functions {
        let key = (
            function.region.as_str(),
            function.settings.function_name.as_str(),
        );
        let Some(earlier) = named.insert(key, function) else {
            continue;
        };
        let (first_stack, second_stack) = (
            &earlier.record.requirements.stack,
            &function.record.requirements.stack,
        );
        if first_stack != second_stack {
            return Err(ConflictError::NameInTwoStacks {
                region: function.region.clone(),
                name: function.settings.function_name.clone(),
                first_stack: first_stack.clone(),
                first: Origin::of(&earlier.record),
                second_stack: second_stack.clone(),
                second: Origin::of(&function.record),
            });
        }
    }

    let mut groups: BTreeMap<(String, StackName), Vec<DeclaredFunction>> = BTreeMap::new();
    for function in functions {
        let key = (
            function.region.clone(),
            function.record.requirements.stack.clone(),
        );
        groups.entry(key).or_default().push(function);
    }
    groups
        .into_iter()
        .map(|((region, stack), members)| stack_spec(region, stack, members))
        .collect()
}

#[allow(clippy::result_large_err)]
fn stack_spec(
    region: String,
    stack: StackName,
    members: Vec<DeclaredFunction>,
) -> Result<StackSpec, ConflictError> {
    let first = &members[0];
    let first_values = shared_settings(first);
    for other in &members[1..] {
        for ((setting, first_shown, first_key), (_, other_shown, other_key)) in
            first_values.iter().zip(shared_settings(other))
        {
            if *first_key != other_key {
                return Err(ConflictError::Disagree {
                    stack,
                    region,
                    setting,
                    first: Origin::of(&first.record),
                    first_value: first_shown.clone(),
                    second: Origin::of(&other.record),
                    second_value: other_shown,
                });
            }
        }
    }

    let mut by_name: BTreeMap<&str, &DeclaredFunction> = BTreeMap::new();
    for member in &members {
        if let Some(earlier) = by_name.insert(&member.settings.function_name, member) {
            return Err(ConflictError::DuplicateName {
                stack,
                region,
                name: member.settings.function_name.clone(),
                first: Origin::of(&earlier.record),
                second: Origin::of(&member.record),
            });
        }
    }
    let requirements = &first.record.requirements;
    Ok(StackSpec {
        stack: stack.clone(),
        vpc_cidr: first.settings.vpc_cidr.unwrap_or(DEFAULT_VPC_CIDR),
        azs: requirements.azs,
        adopted_ips: requirements.ips.clone(),
        modes: NetworkModes {
            nat: requirements.nat,
            nats: requirements.nats,
            endpoints: requirements.endpoints.clone(),
            egress: requirements.egress.clone(),
            nat_instance_type: first.settings.nat_instance_type.clone(),
            nat_self_healing: first.settings.nat_self_healing,
            existing: first.settings.vpc.as_ref().map(|vpc| ExistingNetwork {
                vpc: vpc.clone(),
                subnets: first.settings.subnets.clone(),
            }),
            az_ids: first.settings.az_ids.clone(),
        },
        functions: by_name.into_values().map(function_spec).collect(),
        region,
    })
}

fn function_spec(declared: &DeclaredFunction) -> FunctionSpec {
    FunctionSpec::new(
        &declared.record.package,
        &declared.record.function,
        &declared.settings,
        declared.code_sha256.clone(),
    )
}

/// The settings every function of a stack must agree on: each as shown in a message, and as
/// compared.
fn shared_settings(f: &DeclaredFunction) -> [(&'static str, String, String); 12] {
    let requirements = &f.record.requirements;
    let ips: Vec<&str> = requirements.ips.iter().map(AllocationId::as_str).collect();
    let ips = if ips.is_empty() {
        "none".to_owned()
    } else {
        format!("[{}]", ips.join(", "))
    };
    let vpc_cidr = match f.settings.vpc_cidr {
        Some(cidr) => cidr.to_string(),
        None => format!("{DEFAULT_VPC_CIDR} (the default)"),
    };
    [
        (
            "azs",
            requirements.azs.to_string(),
            requirements.azs.get().to_string(),
        ),
        ("ips", ips.clone(), ips),
        listed("nat", [requirements.nat.to_string()]),
        listed("nats", requirements.nats.map(|n| n.to_string())),
        listed(
            "endpoints",
            requirements.endpoints.iter().map(ToString::to_string),
        ),
        listed(
            "egress",
            requirements.egress.iter().map(ToString::to_string),
        ),
        (
            "vpc-cidr",
            vpc_cidr,
            f.settings.vpc_cidr.unwrap_or(DEFAULT_VPC_CIDR).to_string(),
        ),
        (
            "nat-instance-type",
            match &f.settings.nat_instance_type {
                Some(name) => name.clone(),
                None => format!("{DEFAULT_NAT_INSTANCE_TYPE} (the default)"),
            },
            f.settings
                .nat_instance_type
                .clone()
                .unwrap_or_else(|| DEFAULT_NAT_INSTANCE_TYPE.to_owned()),
        ),
        (
            "nat-self-healing",
            f.settings.nat_self_healing.to_string(),
            f.settings.nat_self_healing.to_string(),
        ),
        listed("vpc", f.settings.vpc.clone()),
        listed("subnets", {
            let mut subnets = f.settings.subnets.clone();
            subnets.sort();
            subnets
        }),
        listed("az-ids", f.settings.az_ids.clone()),
    ]
}

/// A list setting: shown and compared the same way.
fn listed(
    setting: &'static str,
    values: impl IntoIterator<Item = String>,
) -> (&'static str, String, String) {
    let values: Vec<String> = values.into_iter().collect();
    let shown = if values.is_empty() {
        "none".to_owned()
    } else {
        format!("[{}]", values.join(", "))
    };
    (setting, shown.clone(), shown)
}
