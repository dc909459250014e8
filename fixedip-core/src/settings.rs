//! Deployment settings: what is about the deployment rather than the code. They live in
//! `[package.metadata.fixedip]`, with cargo-lambda's `[package.metadata.lambda.deploy]` honoured where
//! the two overlap.
//!
//! | key (`[package.metadata.fixedip]`) | value                                   | default                      |
//! |------------------------------------|-----------------------------------------|------------------------------|
//! | `function-name`                    | Lambda name, 1–64 of `A-Za-z0-9-_`      | the binary's name            |
//! | `region`                           | e.g. `eu-west-1`                        | `--region`, `AWS_REGION`, …  |
//! | `memory`                           | MB, 128–10240                           | 128                          |
//! | `timeout`                          | seconds, 1–900                          | 30                           |
//! | `architecture`                     | `x86_64` or `arm64`                     | the host's                   |
//! | `environment`                      | table of variables                      | none                         |
//! | `tags`                             | table of tags                           | none                         |
//! | `role`                             | existing execution role ARN             | the stack's own role         |
//! | `vpc-cidr`                         | `/16` to `/24`, e.g. `10.20.0.0/16`     | the planner's default        |
//! | `nat-instance-type`                | EC2 type of NAT instances, `t4g.micro`  | `t4g.nano`                   |
//! | `nat-self-healing`                 | `true`: each NAT instance in an auto-scaling group of one | `false`  |
//! | `vpc`                              | an existing VPC's id, `vpc-...`         | none: fixedip builds one     |
//! | `subnets`                          | list of `subnet-...` ids in that VPC    | every subnet that qualifies  |
//! | `az-ids`                           | AZ ids to use, `["use1-az1", "use1-az2"]` | chosen per stack (planner) |
//!
//! `vpc` attaches the function to a network the user already runs (see
//! [`crate::planner`], "An existing network"): fixedip builds no network then, only its own
//! security group, so `vpc-cidr` makes no sense with it, and `subnets` none without it.
//!
//! The timeout default is cargo-lambda's (30 s), not Lambda's (3 s): a function in a VPC pays a
//! cold start and a first connection through the NAT, which 3 s does not always cover.
//!
//! From `[package.metadata.lambda.deploy]` fixedip reads `memory`, `timeout`, `env`, `tags` and `role`
//! (alias `iam_role`) and ignores every other key, which is cargo-lambda's business. Where both tables
//! set a value, fixedip's wins; `environment`/`env` and `tags` are merged entry by entry, fixedip's
//! entry winning for the same name.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;

use names::{is_az_id, is_role_arn, is_variable_name};
pub use names::{is_function_name, is_region, is_resource_id};

/// The instruction set a function runs on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    #[default]
    #[serde(alias = "x86-64", alias = "amd64")]
    X86_64,
    #[serde(alias = "aarch64")]
    Arm64,
}

impl Architecture {
    /// The name Lambda uses.
    pub fn lambda_name(self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "arm64",
        }
    }

    /// The Lambda name, or the names Rust and Docker use for the same thing.
    pub fn parse(name: &str) -> Option<Architecture> {
        match name {
            "x86_64" | "x86-64" | "amd64" => Some(Architecture::X86_64),
            "arm64" | "aarch64" => Some(Architecture::Arm64),
            _ => None,
        }
    }

    /// The architecture of the machine running this code, when Lambda offers it.
    pub fn host() -> Option<Architecture> {
        if cfg!(target_arch = "x86_64") {
            Some(Architecture::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Architecture::Arm64)
        } else {
            None
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.lambda_name())
    }
}

/// The settings of one function's deployment, merged and validated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeploySettings {
    /// The Lambda function name; default: the binary's name.
    pub function_name: String,
    /// The region; default: the AWS configuration's (`--region`, `AWS_REGION`, profile).
    pub region: Option<String>,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub architecture: Architecture,
    pub environment: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// An existing execution role (ARN); default: the stack's own role.
    pub role: Option<String>,
    /// The VPC CIDR, when the default does not suit (a /16 to a /24).
    pub vpc_cidr: Option<ipnet::Ipv4Net>,
    /// The EC2 type of the stack's NAT instances (`nat = "instance"`); default `t4g.nano`.
    #[serde(default)]
    pub nat_instance_type: Option<String>,
    /// `nat = "instance"`: each NAT instance in an auto-scaling group of one that replaces it
    /// without a deploy (see `planner/nat_group.rs`); default off until a stack of plain NAT
    /// instances can move to it in one deploy.
    #[serde(default)]
    pub nat_self_healing: bool,
    /// An existing VPC to attach to instead of building one (`vpc = "vpc-..."`).
    #[serde(default)]
    pub vpc: Option<String>,
    /// With `vpc`: only these of its subnets (each must qualify); empty: every one that does.
    #[serde(default)]
    pub subnets: Vec<String>,
    /// The AZs new slots go to, by AZ id (`use1-az1`: the same physical zone in every account,
    /// unlike the name), in order; empty: the planner chooses.
    #[serde(default)]
    pub az_ids: Vec<String>,
}

/// Where fixedip's own settings live.
pub const FIXEDIP_TABLE: &str = "package.metadata.fixedip";
/// Where cargo-lambda's deploy settings live; fixedip reads the keys it shares with them.
pub const LAMBDA_DEPLOY_TABLE: &str = "package.metadata.lambda.deploy";
/// Every key `[package.metadata.fixedip]` accepts.
pub const KEYS: &[&str] = &[
    "function-name",
    "region",
    "memory",
    "timeout",
    "architecture",
    "environment",
    "tags",
    "role",
    "vpc-cidr",
    "nat-instance-type",
    "nat-self-healing",
    "vpc",
    "subnets",
    "az-ids",
];

/// Lambda's limits on memory, in MB.
pub const MEMORY_MB: RangeInclusive<u32> = 128..=10240;
pub const DEFAULT_MEMORY_MB: u32 = 128;
/// Lambda's limits on the timeout, in seconds.
pub const TIMEOUT_S: RangeInclusive<u32> = 1..=900;
pub const DEFAULT_TIMEOUT_S: u32 = 30;
/// The VPC sizes AWS accepts, as prefix lengths.
pub const VPC_PREFIX: RangeInclusive<u8> = 16..=24;
/// Lambda refuses a function whose variables, names and values together, exceed 4 KB.
pub const ENVIRONMENT_MAX_BYTES: usize = 4096;

/// Variables the Lambda runtime sets itself; Lambda refuses a function that sets them.
const RESERVED_VARIABLES: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_REGION",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "LAMBDA_RUNTIME_DIR",
    "LAMBDA_TASK_ROOT",
];

/// One thing wrong with the settings. `key` is the full path as a person finds it in Cargo.toml:
/// `package.metadata.fixedip.memory`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("unknown key `{key}`{}", did_you_mean(.suggestion))]
    UnknownKey {
        key: String,
        suggestion: Option<&'static str>,
    },
    #[error("`{key}` must be {expected}, found {found}")]
    WrongType {
        key: String,
        expected: &'static str,
        found: String,
    },
    #[error("`{key}` must be between {} and {} {unit}, found {found}", .range.start(), .range.end())]
    OutOfRange {
        key: String,
        range: RangeInclusive<u64>,
        unit: &'static str,
        found: String,
    },
    #[error("`{key}` must be {allowed}, found {found:?}")]
    NotAllowed {
        key: String,
        allowed: &'static str,
        found: String,
    },
    #[error("`{key}` {reason}, found {found:?}")]
    Invalid {
        key: String,
        reason: String,
        found: String,
    },
}

impl SettingError {
    /// The full path of the offending key.
    pub fn key(&self) -> &str {
        match self {
            SettingError::UnknownKey { key, .. }
            | SettingError::WrongType { key, .. }
            | SettingError::OutOfRange { key, .. }
            | SettingError::NotAllowed { key, .. }
            | SettingError::Invalid { key, .. } => key,
        }
    }
}

fn did_you_mean(suggestion: &Option<&'static str>) -> String {
    match suggestion {
        Some(known) => format!(": did you mean `{known}`?"),
        None => format!(" (known keys: {})", KEYS.join(", ")),
    }
}

/// Everything wrong with a package's settings, reported together so that one edit fixes them all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct SettingsError {
    pub errors: Vec<SettingError>,
}

/// The closest known key to an unknown one, for "did you mean".
pub fn suggest_key(unknown: &str) -> Option<&'static str> {
    // `function_name` and `function-name` are the same mistake as a typo, and scored as one.
    let unknown = unknown.replace('_', "-");
    KEYS.iter()
        .map(|known| (strsim::jaro_winkler(&unknown, known), *known))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, known)| known)
}

impl DeploySettings {
    /// The settings of a function no table says anything about.
    pub fn defaults(binary: &str) -> DeploySettings {
        DeploySettings {
            function_name: binary.to_owned(),
            region: None,
            memory_mb: DEFAULT_MEMORY_MB,
            timeout_s: DEFAULT_TIMEOUT_S,
            architecture: Architecture::host().unwrap_or_default(),
            environment: BTreeMap::new(),
            tags: BTreeMap::new(),
            role: None,
            vpc_cidr: None,
            nat_instance_type: None,
            nat_self_healing: false,
            vpc: None,
            subnets: Vec::new(),
            az_ids: Vec::new(),
        }
    }
}

mod names;
mod read;
#[cfg(test)]
mod tests;
