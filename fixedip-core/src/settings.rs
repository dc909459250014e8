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
            vpc: None,
            subnets: Vec::new(),
            az_ids: Vec::new(),
        }
    }
}

mod from_metadata {
    use super::*;
    use serde_json::{Map, Value};

    impl DeploySettings {
        /// The settings of the binary `binary` from a package's `package.metadata` value (what
        /// `cargo metadata` reports; `null` when the package has none). Every problem is reported.
        pub fn from_metadata(metadata: &Value, binary: &str) -> Result<Self, SettingsError> {
            let mut settings = DeploySettings::defaults(binary);
            let mut errors = Vec::new();

            // cargo-lambda's table first, so that fixedip's overrides it.
            if let Some(deploy) = metadata
                .pointer("/lambda/deploy")
                .and_then(Value::as_object)
            {
                let mut table = Table {
                    path: LAMBDA_DEPLOY_TABLE,
                    errors: &mut errors,
                };
                table.apply_lambda_deploy(deploy, &mut settings);
            }
            match metadata.get("fixedip") {
                None => {}
                Some(Value::Object(fixedip)) => {
                    let mut table = Table {
                        path: FIXEDIP_TABLE,
                        errors: &mut errors,
                    };
                    table.apply_fixedip(fixedip, &mut settings);
                }
                Some(other) => errors.push(SettingError::WrongType {
                    key: FIXEDIP_TABLE.to_owned(),
                    expected: "a table",
                    found: type_name(other),
                }),
            }
            if !is_function_name(&settings.function_name) {
                errors.push(SettingError::Invalid {
                    key: format!("{FIXEDIP_TABLE}.function-name"),
                    reason: "must be 1 to 64 letters, digits, hyphens or underscores (the default \
                             is the binary's name: set `function-name` when it does not fit)"
                        .to_owned(),
                    found: settings.function_name.clone(),
                });
            }
            if let Err(error) = check_environment_size(&settings.environment) {
                errors.push(error);
            }
            // A malformed `vpc` is reported already: not again as missing.
            let vpc_key = format!("{FIXEDIP_TABLE}.vpc");
            if !errors.iter().any(|e| e.key() == vpc_key) {
                errors.extend(check_existing_network(&settings));
            }

            if errors.is_empty() {
                Ok(settings)
            } else {
                Err(SettingsError { errors })
            }
        }
    }

    /// One table being read, collecting what is wrong with it.
    struct Table<'e> {
        path: &'static str,
        errors: &'e mut Vec<SettingError>,
    }

    impl Table<'_> {
        fn key(&self, key: &str) -> String {
            format!("{}.{key}", self.path)
        }

        fn apply_fixedip(&mut self, table: &Map<String, Value>, settings: &mut DeploySettings) {
            for (key, value) in table {
                match key.as_str() {
                    "function-name" => {
                        if let Some(name) = self.string(key, value) {
                            settings.function_name = name;
                        }
                    }
                    "region" => {
                        settings.region = self.region(key, value).or(settings.region.take())
                    }
                    "memory" => self.number(key, value, &MEMORY_MB, "MB", &mut settings.memory_mb),
                    "timeout" => {
                        self.number(key, value, &TIMEOUT_S, "seconds", &mut settings.timeout_s)
                    }
                    "architecture" => {
                        if let Some(arch) = self.architecture(key, value) {
                            settings.architecture = arch;
                        }
                    }
                    "environment" => self.environment(key, value, &mut settings.environment),
                    "tags" => self.tags(key, value, &mut settings.tags),
                    "role" => settings.role = self.role(key, value).or(settings.role.take()),
                    "vpc-cidr" => settings.vpc_cidr = self.vpc_cidr(key, value),
                    "nat-instance-type" => {
                        settings.nat_instance_type = self.instance_type(key, value)
                    }
                    "vpc" => settings.vpc = self.resource_id(key, value, "vpc"),
                    "subnets" => settings.subnets = self.subnet_ids(key, value),
                    "az-ids" => settings.az_ids = self.az_ids(key, value),
                    unknown => self.errors.push(SettingError::UnknownKey {
                        key: self.key(unknown),
                        suggestion: suggest_key(unknown),
                    }),
                }
            }
        }

        /// Only the keys fixedip shares with cargo-lambda; the rest is cargo-lambda's business.
        fn apply_lambda_deploy(
            &mut self,
            table: &Map<String, Value>,
            settings: &mut DeploySettings,
        ) {
            for (key, value) in table {
                match key.as_str() {
                    "memory" => self.number(key, value, &MEMORY_MB, "MB", &mut settings.memory_mb),
                    "timeout" => {
                        self.number(key, value, &TIMEOUT_S, "seconds", &mut settings.timeout_s)
                    }
                    "env" => self.environment(key, value, &mut settings.environment),
                    "tags" | "tag" => self.tags(key, value, &mut settings.tags),
                    "role" | "iam_role" => settings.role = self.role(key, value),
                    _ => {}
                }
            }
        }

        fn string(&mut self, key: &str, value: &Value) -> Option<String> {
            match value {
                Value::String(s) => Some(s.clone()),
                other => {
                    self.errors.push(SettingError::WrongType {
                        key: self.key(key),
                        expected: "a string",
                        found: type_name(other),
                    });
                    None
                }
            }
        }

        fn number(
            &mut self,
            key: &str,
            value: &Value,
            range: &RangeInclusive<u32>,
            unit: &'static str,
            into: &mut u32,
        ) {
            let found = match value {
                Value::Number(n) if n.is_i64() || n.is_u64() => n,
                other => {
                    return self.errors.push(SettingError::WrongType {
                        key: self.key(key),
                        expected: "a whole number",
                        found: type_name(other),
                    })
                }
            };
            match found.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) if range.contains(&n) => *into = n,
                _ => self.errors.push(SettingError::OutOfRange {
                    key: self.key(key),
                    range: u64::from(*range.start())..=u64::from(*range.end()),
                    unit,
                    found: found.to_string(),
                }),
            }
        }

        fn region(&mut self, key: &str, value: &Value) -> Option<String> {
            let region = self.string(key, value)?;
            if is_region(&region) {
                Some(region)
            } else {
                self.errors.push(SettingError::Invalid {
                    key: self.key(key),
                    reason: "is not an AWS region name such as `us-east-1` or `ap-northeast-1`"
                        .to_owned(),
                    found: region,
                });
                None
            }
        }

        fn architecture(&mut self, key: &str, value: &Value) -> Option<Architecture> {
            let name = self.string(key, value)?;
            let arch = Architecture::parse(&name);
            if arch.is_none() {
                self.errors.push(SettingError::NotAllowed {
                    key: self.key(key),
                    allowed: "`x86_64` or `arm64`",
                    found: name,
                });
            }
            arch
        }

        fn role(&mut self, key: &str, value: &Value) -> Option<String> {
            let arn = self.string(key, value)?;
            if is_role_arn(&arn) {
                Some(arn)
            } else {
                self.errors.push(SettingError::Invalid {
                    key: self.key(key),
                    reason: "is not an IAM role ARN (`arn:aws:iam::123456789012:role/NAME`)"
                        .to_owned(),
                    found: arn,
                });
                None
            }
        }

        fn vpc_cidr(&mut self, key: &str, value: &Value) -> Option<ipnet::Ipv4Net> {
            let text = self.string(key, value)?;
            let invalid = |reason: &str| SettingError::Invalid {
                key: self.key(key),
                reason: reason.to_owned(),
                found: text.clone(),
            };
            let error = match text.parse::<ipnet::Ipv4Net>() {
                Err(_) => invalid("is not an IPv4 CIDR block such as `10.0.0.0/16`"),
                Ok(net) if !VPC_PREFIX.contains(&net.prefix_len()) => {
                    invalid("must be a /16 to a /24 (AWS's limits for a VPC), e.g. `10.0.0.0/16`")
                }
                Ok(net) if net.trunc() != net => invalid(&format!(
                    "must start at its network address: did you mean `{}`?",
                    net.trunc()
                )),
                Ok(net) => return Some(net),
            };
            self.errors.push(error);
            None
        }

        /// An EC2 instance type as AWS writes it, `family.size` (`t4g.nano`, `c7gn.medium`);
        /// whether the region offers it is for RunInstances to say.
        fn instance_type(&mut self, key: &str, value: &Value) -> Option<String> {
            let text = self.string(key, value)?;
            let well_formed = text.split_once('.').is_some_and(|(family, size)| {
                let word = |s: &str| {
                    !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                };
                word(family) && word(size) && family.starts_with(|c: char| c.is_ascii_lowercase())
            });
            if well_formed {
                return Some(text);
            }
            self.errors.push(SettingError::Invalid {
                key: self.key(key),
                reason: "is not an EC2 instance type such as `t4g.nano` (family, a dot, size)"
                    .to_owned(),
                found: text,
            });
            None
        }

        /// An EC2 id of the given kind, `vpc-0123abcd` or `vpc-0123456789abcdef0`.
        fn resource_id(&mut self, key: &str, value: &Value, kind: &str) -> Option<String> {
            let id = self.string(key, value)?;
            if is_resource_id(&id, kind) {
                Some(id)
            } else {
                self.errors.push(SettingError::Invalid {
                    key: self.key(key),
                    reason: format!(
                        "is not a {kind} id (`{kind}-` and 8 or 17 hexadecimal digits, e.g. `{kind}-0123456789abcdef0`)"
                    ),
                    found: id,
                });
                None
            }
        }

        fn subnet_ids(&mut self, key: &str, value: &Value) -> Vec<String> {
            let Value::Array(items) = value else {
                self.errors.push(SettingError::WrongType {
                    key: self.key(key),
                    expected: "a list of subnet ids, e.g. `[\"subnet-0123456789abcdef0\"]`",
                    found: type_name(value),
                });
                return Vec::new();
            };
            let mut ids: Vec<String> = Vec::new();
            for (index, item) in items.iter().enumerate() {
                let entry = format!("{key}[{index}]");
                if let Some(id) = self.resource_id(&entry, item, "subnet") {
                    if ids.contains(&id) {
                        self.errors.push(SettingError::Invalid {
                            key: self.key(&entry),
                            reason: "names a subnet listed already".to_owned(),
                            found: id,
                        });
                    } else {
                        ids.push(id);
                    }
                }
            }
            ids
        }

        /// A list of AZ ids, `use1-az1`: a region's short code, `-az`, a number. Whether the
        /// region has them is the planner's check (it knows the region's zones).
        fn az_ids(&mut self, key: &str, value: &Value) -> Vec<String> {
            let Value::Array(items) = value else {
                self.errors.push(SettingError::WrongType {
                    key: self.key(key),
                    expected: "a list of AZ ids, e.g. `[\"use1-az1\", \"use1-az2\"]`",
                    found: type_name(value),
                });
                return Vec::new();
            };
            let mut ids: Vec<String> = Vec::new();
            for (index, item) in items.iter().enumerate() {
                let entry = format!("{key}[{index}]");
                let Some(id) = self.string(&entry, item) else {
                    continue;
                };
                let reason = if !is_az_id(&id) {
                    "is not an AZ id (`use1-az1`, as `aws ec2 describe-availability-zones` lists ZoneId; a name such as `us-east-1a` means another zone in each account)"
                } else if ids.contains(&id) {
                    "names an AZ listed already"
                } else {
                    ids.push(id);
                    continue;
                };
                self.errors.push(SettingError::Invalid {
                    key: self.key(&entry),
                    reason: reason.to_owned(),
                    found: id,
                });
            }
            ids
        }

        fn environment(&mut self, key: &str, value: &Value, into: &mut BTreeMap<String, String>) {
            let Some(table) = self.table(key, value) else {
                return;
            };
            for (name, value) in table {
                let entry = format!("{key}.{name}");
                if !is_variable_name(name) {
                    self.errors.push(SettingError::Invalid {
                        key: self.key(&entry),
                        reason: "is not a variable name Lambda accepts (a letter, then at least \
                                 one letter, digit or underscore)"
                            .to_owned(),
                        found: name.clone(),
                    });
                } else if RESERVED_VARIABLES.contains(&name.as_str()) {
                    self.errors.push(SettingError::Invalid {
                        key: self.key(&entry),
                        reason: "is set by the Lambda runtime itself and cannot be overridden"
                            .to_owned(),
                        found: name.clone(),
                    });
                } else if let Some(text) = self.scalar(&entry, value) {
                    into.insert(name.clone(), text);
                }
            }
        }

        /// A table of tags, or cargo-lambda's other spelling: a list of `"key=value"`.
        fn tags(&mut self, key: &str, value: &Value, into: &mut BTreeMap<String, String>) {
            let mut pairs = Vec::new();
            match value {
                Value::Array(items) if self.path == LAMBDA_DEPLOY_TABLE => {
                    for item in items {
                        match item.as_str().and_then(|pair| pair.split_once('=')) {
                            Some((name, value)) => pairs.push((name.to_owned(), value.to_owned())),
                            None => self.errors.push(SettingError::WrongType {
                                key: self.key(key),
                                expected: "a list of \"key=value\" strings",
                                found: item.to_string(),
                            }),
                        }
                    }
                }
                value => {
                    let Some(table) = self.table(key, value) else {
                        return;
                    };
                    for (name, value) in table {
                        if let Some(text) = self.scalar(&format!("{key}.{name}"), value) {
                            pairs.push((name.clone(), text));
                        }
                    }
                }
            }
            for (name, value) in pairs {
                let entry = self.key(&format!("{key}.{name}"));
                let reason = if name.is_empty() || name.chars().count() > 128 {
                    Some("must be a tag name of 1 to 128 characters")
                } else if name.starts_with("aws:") {
                    Some("uses the prefix `aws:`, which AWS reserves for itself")
                } else if name.starts_with("fixedip:") {
                    Some("uses the prefix `fixedip:`, which fixedip's ownership tags use")
                } else if value.chars().count() > 256 {
                    Some("has a value longer than 256 characters, AWS's limit")
                } else {
                    None
                };
                match reason {
                    Some(reason) => self.errors.push(SettingError::Invalid {
                        key: entry,
                        reason: reason.to_owned(),
                        found: name,
                    }),
                    None => {
                        into.insert(name, value);
                    }
                }
            }
        }

        fn table<'v>(&mut self, key: &str, value: &'v Value) -> Option<&'v Map<String, Value>> {
            match value {
                Value::Object(table) => Some(table),
                other => {
                    self.errors.push(SettingError::WrongType {
                        key: self.key(key),
                        expected: "a table, e.g. `{ NAME = \"value\" }`",
                        found: type_name(other),
                    });
                    None
                }
            }
        }

        /// A variable or tag value: strings as they are; numbers and booleans as TOML wrote them,
        /// since `PORT = 8080` means the text "8080" to everyone who writes it.
        fn scalar(&mut self, entry: &str, value: &Value) -> Option<String> {
            match value {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                other => {
                    self.errors.push(SettingError::WrongType {
                        key: self.key(entry),
                        expected: "a string",
                        found: type_name(other),
                    });
                    None
                }
            }
        }
    }

    fn type_name(value: &Value) -> String {
        match value {
            Value::Null => "nothing".to_owned(),
            Value::Bool(b) => format!("the boolean {b}"),
            Value::Number(n) => format!("the number {n}"),
            Value::String(s) => format!("the string {s:?}"),
            Value::Array(_) => "a list".to_owned(),
            Value::Object(_) => "a table".to_owned(),
        }
    }
}

fn check_environment_size(environment: &BTreeMap<String, String>) -> Result<(), SettingError> {
    let bytes: usize = environment.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes <= ENVIRONMENT_MAX_BYTES {
        return Ok(());
    }
    Err(SettingError::Invalid {
        key: format!("{FIXEDIP_TABLE}.environment"),
        reason: format!(
            "holds {bytes} bytes of names and values; Lambda accepts at most {ENVIRONMENT_MAX_BYTES} \
             (keep large values in SSM Parameter Store or Secrets Manager)"
        ),
        found: format!("{} variables", environment.len()),
    })
}

/// `vpc` and `subnets` go together, and `vpc-cidr` describes a VPC fixedip builds.
fn check_existing_network(settings: &DeploySettings) -> Vec<SettingError> {
    let mut errors = Vec::new();
    if settings.vpc.is_none() && !settings.subnets.is_empty() {
        errors.push(SettingError::Invalid {
            key: format!("{FIXEDIP_TABLE}.subnets"),
            reason: "chooses subnets of an existing network, and needs `vpc = \"vpc-...\"` to say which (without `vpc`, fixedip builds the network and its subnets)".to_owned(),
            found: settings.subnets.join(", "),
        });
    }
    if let (Some(vpc), Some(cidr)) = (&settings.vpc, settings.vpc_cidr) {
        errors.push(SettingError::Invalid {
            key: format!("{FIXEDIP_TABLE}.vpc-cidr"),
            reason: format!(
                "is the CIDR of a VPC fixedip builds, but `vpc = \"{vpc}\"` attaches to an existing one: remove one of the two"
            ),
            found: cidr.to_string(),
        });
    }
    if let (Some(vpc), false) = (&settings.vpc, settings.az_ids.is_empty()) {
        errors.push(SettingError::Invalid {
            key: format!("{FIXEDIP_TABLE}.az-ids"),
            reason: format!(
                "chooses the AZs of a network fixedip builds, but `vpc = \"{vpc}\"` attaches to an existing one, whose subnets say the AZs (choose them with `subnets`): remove one of the two"
            ),
            found: settings.az_ids.join(", "),
        });
    }
    errors
}

/// An EC2 resource id: `<kind>-` then 8 (older resources) or 17 lowercase hexadecimal digits.
pub fn is_resource_id(id: &str, kind: &str) -> bool {
    id.strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| {
            matches!(hex.len(), 8 | 17)
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// Lambda's rule for a function name (not an ARN): 1 to 64 of `A-Za-z0-9-_`.
pub fn is_function_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `us-east-1`, `us-gov-west-1`, `cn-north-1`: a two-letter prefix, words, a number of one or two
/// digits. The one rule for a region name, the settings' and the CLI's (`--region`, the AWS
/// configuration): a well-formed name AWS does not know is caught by the first call.
pub fn is_region(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    let Some((number, words)) = parts.split_last() else {
        return false;
    };
    words.len() >= 2
        && words[0].len() == 2
        && words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && (1..=2).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// `arn:<partition>:iam::<12 digits>:role/<optional path/>NAME`.
fn is_role_arn(arn: &str) -> bool {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let name = resource
        .strip_prefix("role/")
        .and_then(|path| path.rsplit('/').next());
    matches!(partition, "aws" | "aws-cn" | "aws-us-gov")
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && name.is_some_and(|name| {
            (1..=64).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
        })
}

/// Lambda's rule for a variable name: `[a-zA-Z]([a-zA-Z0-9_])+`.
/// `use1-az1`, `apne1-az4`: letters and a digit (the region), `-az`, a number.
fn is_az_id(id: &str) -> bool {
    let Some((region, number)) = id.split_once("-az") else {
        return false;
    };
    let letters = region.trim_end_matches(|c: char| c.is_ascii_digit());
    !letters.is_empty()
        && letters.len() < region.len()
        && letters.chars().all(|c| c.is_ascii_lowercase())
        && !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit())
}

fn is_variable_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() >= 2
        && bytes[0].is_ascii_alphabetic()
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(metadata: serde_json::Value) -> Result<DeploySettings, SettingsError> {
        DeploySettings::from_metadata(&metadata, "hello-egress")
    }

    fn keys(error: SettingsError) -> Vec<String> {
        error.errors.iter().map(|e| e.key().to_owned()).collect()
    }

    #[test]
    fn no_metadata_means_defaults() {
        let settings = parse(serde_json::Value::Null).unwrap();
        assert_eq!(settings, DeploySettings::defaults("hello-egress"));
        assert_eq!(settings.function_name, "hello-egress");
        assert_eq!((settings.memory_mb, settings.timeout_s), (128, 30));
        assert_eq!(Some(settings.architecture), Architecture::host());
    }

    #[test]
    fn every_key_is_read() {
        let settings = parse(json!({ "fixedip": {
            "function-name": "egress-probe",
            "region": "ap-northeast-1",
            "memory": 512,
            "timeout": 900,
            "architecture": "arm64",
            "environment": { "LOG_LEVEL": "debug", "PORT": 8080, "VERBOSE": true },
            "tags": { "team": "payments" },
            "role": "arn:aws:iam::123456789012:role/service/egress",
            "vpc-cidr": "10.20.0.0/20",
        }}))
        .unwrap();
        assert_eq!(settings.function_name, "egress-probe");
        assert_eq!(settings.region.as_deref(), Some("ap-northeast-1"));
        assert_eq!((settings.memory_mb, settings.timeout_s), (512, 900));
        assert_eq!(settings.architecture, Architecture::Arm64);
        assert_eq!(settings.environment["PORT"], "8080");
        assert_eq!(settings.environment["VERBOSE"], "true");
        assert_eq!(settings.tags["team"], "payments");
        assert_eq!(
            settings.role.as_deref(),
            Some("arn:aws:iam::123456789012:role/service/egress")
        );
        assert_eq!(settings.vpc_cidr, Some("10.20.0.0/20".parse().unwrap()));
    }

    #[test]
    fn unknown_key_suggests_the_known_one() {
        let error = parse(json!({ "fixedip": { "memroy": 256 } })).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown key `package.metadata.fixedip.memroy`: did you mean `memory`?"
        );
        let error = parse(json!({ "fixedip": { "function_name": "x" } })).unwrap_err();
        assert!(
            error.to_string().contains("did you mean `function-name`?"),
            "{error}"
        );
        let error = parse(json!({ "fixedip": { "zzz": 1 } })).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("known keys: function-name, region"),
            "{error}"
        );
    }

    #[test]
    fn out_of_range_values_name_the_range() {
        let error = parse(json!({ "fixedip": { "memory": 5, "timeout": 0 } })).unwrap_err();
        let messages: Vec<String> = error.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "`package.metadata.fixedip.memory` must be between 128 and 10240 MB, found 5",
                "`package.metadata.fixedip.timeout` must be between 1 and 900 seconds, found 0",
            ]
        );
        let error = parse(json!({ "fixedip": { "memory": -1 } })).unwrap_err();
        assert!(error.to_string().contains("found -1"), "{error}");
        let error = parse(json!({ "fixedip": { "memory": "512" } })).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("must be a whole number, found the string"),
            "{error}"
        );
    }

    #[test]
    fn bad_values_are_all_reported() {
        let error = parse(json!({ "fixedip": {
            "architecture": "sparc",
            "region": "Europe",
            "role": "my-role",
            "vpc-cidr": "10.0.0.0/8",
            "function-name": "has space",
            "environment": { "AWS_REGION": "x", "1BAD": "y", "OK_NAME": ["list"] },
            "tags": { "fixedip:stack": "x", "aws:foo": "y" },
        }}))
        .unwrap_err();
        let mut keys = keys(error);
        keys.sort();
        assert_eq!(
            keys,
            [
                "package.metadata.fixedip.architecture",
                "package.metadata.fixedip.environment.1BAD",
                "package.metadata.fixedip.environment.AWS_REGION",
                "package.metadata.fixedip.environment.OK_NAME",
                "package.metadata.fixedip.function-name",
                "package.metadata.fixedip.region",
                "package.metadata.fixedip.role",
                "package.metadata.fixedip.tags.aws:foo",
                "package.metadata.fixedip.tags.fixedip:stack",
                "package.metadata.fixedip.vpc-cidr",
            ]
        );
    }

    #[test]
    fn an_existing_network_is_named_by_well_formed_ids() {
        let settings = parse(json!({ "fixedip": {
            "vpc": "vpc-0123456789abcdef0",
            "subnets": ["subnet-0123abcd", "subnet-0123456789abcdef1"],
        }}))
        .unwrap();
        assert_eq!(settings.vpc.as_deref(), Some("vpc-0123456789abcdef0"));
        assert_eq!(
            settings.subnets,
            ["subnet-0123abcd", "subnet-0123456789abcdef1"]
        );

        let error = parse(json!({ "fixedip": {
            "vpc": "vpc-XYZ",
            "subnets": ["subnet-0123abcd", "sg-0123abcd", "subnet-0123abcd"],
        }}))
        .unwrap_err();
        let mut keys = keys(error.clone());
        keys.sort();
        assert_eq!(
            keys,
            [
                "package.metadata.fixedip.subnets[1]",
                "package.metadata.fixedip.subnets[2]",
                "package.metadata.fixedip.vpc",
            ],
            "{error}"
        );
        assert!(error.to_string().contains("is not a vpc id"), "{error}");
        assert!(error.to_string().contains("listed already"), "{error}");

        let error = parse(json!({ "fixedip": { "subnets": "subnet-0123abcd" } })).unwrap_err();
        assert!(
            error.to_string().contains("a list of subnet ids"),
            "{error}"
        );
    }

    #[test]
    fn subnets_need_a_vpc_and_a_vpc_takes_no_cidr() {
        let error = parse(json!({ "fixedip": { "subnets": ["subnet-0123abcd"] } })).unwrap_err();
        assert_eq!(keys(error.clone()), ["package.metadata.fixedip.subnets"]);
        assert!(error.to_string().contains("needs `vpc"), "{error}");
        let error = parse(json!({ "fixedip": {
            "vpc": "vpc-0123abcd", "vpc-cidr": "10.0.0.0/16",
        }}))
        .unwrap_err();
        assert_eq!(keys(error.clone()), ["package.metadata.fixedip.vpc-cidr"]);
        assert!(
            error.to_string().contains("remove one of the two"),
            "{error}"
        );
        assert!(is_resource_id("vpc-0123abcd", "vpc"));
        assert!(!is_resource_id("vpc-0123ABCD", "vpc") && !is_resource_id("vpc-0123abc", "vpc"));
        assert!(!is_resource_id("subnet-0123abcd", "vpc"));
    }

    #[test]
    fn architecture_message_lists_the_choices() {
        let error = parse(json!({ "fixedip": { "architecture": "sparc" } })).unwrap_err();
        assert_eq!(
            error.to_string(),
            "`package.metadata.fixedip.architecture` must be `x86_64` or `arm64`, found \"sparc\""
        );
        let settings = parse(json!({ "fixedip": { "architecture": "aarch64" } })).unwrap();
        assert_eq!(settings.architecture, Architecture::Arm64);
    }

    #[test]
    fn az_ids_are_read_in_order_and_checked() {
        let settings = parse(json!({ "fixedip": { "az-ids": ["use1-az4", "use1-az1"] } })).unwrap();
        assert_eq!(settings.az_ids, ["use1-az4", "use1-az1"]);
        for (bad, why) in [
            (json!("use1-az1"), "a list of AZ ids"),
            (json!(["us-east-1a"]), "is not an AZ id"),
            (
                json!(["use1-az1", "use1-az1"]),
                "names an AZ listed already",
            ),
            (json!(["use1-az"]), "is not an AZ id"),
        ] {
            let error = parse(json!({ "fixedip": { "az-ids": bad } })).unwrap_err();
            assert!(error.to_string().contains(why), "{error}");
        }
        let error = parse(json!({ "fixedip": {
            "vpc": "vpc-0123456789abcdef0",
            "az-ids": ["use1-az1"],
        } }))
        .unwrap_err();
        assert!(error.to_string().contains("az-ids"), "{error}");
    }

    #[test]
    fn nat_instance_type_is_read_and_checked() {
        let settings = parse(json!({ "fixedip": { "nat-instance-type": "t4g.micro" } })).unwrap();
        assert_eq!(settings.nat_instance_type.as_deref(), Some("t4g.micro"));
        let settings = parse(json!({ "fixedip": {} })).unwrap();
        assert_eq!(settings.nat_instance_type, None);
        for bad in ["t4g", "T4G.NANO", ".nano", "t4g. nano"] {
            let error = parse(json!({ "fixedip": { "nat-instance-type": bad } })).unwrap_err();
            assert!(
                error.to_string().contains("is not an EC2 instance type"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn vpc_cidr_must_be_a_network_address_of_the_right_size() {
        let error = parse(json!({ "fixedip": { "vpc-cidr": "10.0.0.5/16" } })).unwrap_err();
        assert!(
            error.to_string().contains("did you mean `10.0.0.0/16`?"),
            "{error}"
        );
        let error = parse(json!({ "fixedip": { "vpc-cidr": "10.0.0.0/25" } })).unwrap_err();
        assert!(error.to_string().contains("/16 to a /24"), "{error}");
        let error = parse(json!({ "fixedip": { "vpc-cidr": "ten" } })).unwrap_err();
        assert!(error.to_string().contains("not an IPv4 CIDR"), "{error}");
    }

    #[test]
    fn cargo_lambda_settings_are_honoured_and_fixedip_wins() {
        let settings = parse(json!({
            "lambda": { "deploy": {
                "memory": 1024,
                "timeout": 60,
                "env": { "FROM_LAMBDA": "lambda", "SHARED": "lambda" },
                "tags": ["team=lambda", "cost=shared"],
                "iam_role": "arn:aws:iam::123456789012:role/from-lambda",
                "tracing": "active",
                "layers": ["arn:aws:lambda:us-east-1:123456789012:layer:x:1"],
            }},
            "fixedip": {
                "memory": 256,
                "environment": { "SHARED": "fixedip", "FROM_FIXEDIP": "fixedip" },
                "tags": { "team": "fixedip" },
            },
        }))
        .unwrap();
        assert_eq!(settings.memory_mb, 256, "fixedip's memory wins");
        assert_eq!(settings.timeout_s, 60, "cargo-lambda's timeout is honoured");
        assert_eq!(
            settings.role.as_deref(),
            Some("arn:aws:iam::123456789012:role/from-lambda")
        );
        let env: Vec<(&str, &str)> = settings
            .environment
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            env,
            [
                ("FROM_FIXEDIP", "fixedip"),
                ("FROM_LAMBDA", "lambda"),
                ("SHARED", "fixedip")
            ]
        );
        assert_eq!(settings.tags["team"], "fixedip");
        assert_eq!(settings.tags["cost"], "shared");
    }

    #[test]
    fn cargo_lambda_values_are_checked_too() {
        let error = parse(json!({ "lambda": { "deploy": { "memory": 64 } } })).unwrap_err();
        assert_eq!(keys(error), ["package.metadata.lambda.deploy.memory"]);
    }

    #[test]
    fn fixedip_must_be_a_table() {
        let error = parse(json!({ "fixedip": 3 })).unwrap_err();
        assert_eq!(
            error.to_string(),
            "`package.metadata.fixedip` must be a table, found the number 3"
        );
    }

    #[test]
    fn oversize_environment_is_refused() {
        let big = "x".repeat(ENVIRONMENT_MAX_BYTES);
        let error = parse(json!({ "fixedip": { "environment": { "BIG": big } } })).unwrap_err();
        assert!(error.to_string().contains("at most 4096"), "{error}");
    }

    #[test]
    fn names() {
        assert!(is_region("us-east-1") && is_region("us-gov-west-1") && is_region("cn-north-1"));
        assert!(!is_region("useast1") && !is_region("US-EAST-1") && !is_region("us-east-"));
        for good in ["ap-northeast-1", "eu-central-2", "il-central-1"] {
            assert!(is_region(good), "{good}");
        }
        for bad in [
            "",
            "us-east",
            "us-east-one",
            "u-east-1",
            "us--1",
            "us-east-123",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
        assert!(is_role_arn("arn:aws:iam::123456789012:role/x"));
        assert!(is_role_arn("arn:aws-cn:iam::123456789012:role/a/b/name.1"));
        assert!(!is_role_arn("arn:aws:iam::12345:role/x"));
        assert!(!is_role_arn("arn:aws:iam::123456789012:user/x"));
        assert!(is_function_name("hello-egress_2") && !is_function_name(&"a".repeat(65)));
        assert!(is_variable_name("AB") && !is_variable_name("A") && !is_variable_name("A-B"));
    }
}
