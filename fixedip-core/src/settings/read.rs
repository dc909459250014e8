//! Reading `[package.metadata.fixedip]` and cargo-lambda's `[package.metadata.lambda.deploy]`
//! into [`DeploySettings`], every problem collected rather than the first returned.

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
                "region" => settings.region = self.region(key, value).or(settings.region.take()),
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
                "nat-instance-type" => settings.nat_instance_type = self.instance_type(key, value),
                "nat-self-healing" => {
                    if let Some(on) = self.boolean(key, value) {
                        settings.nat_self_healing = on;
                    }
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
    fn apply_lambda_deploy(&mut self, table: &Map<String, Value>, settings: &mut DeploySettings) {
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

    fn boolean(&mut self, key: &str, value: &Value) -> Option<bool> {
        match value {
            Value::Bool(b) => Some(*b),
            other => {
                self.errors.push(SettingError::WrongType {
                    key: self.key(key),
                    expected: "true or false",
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
                reason: "is not an IAM role ARN (`arn:aws:iam::123456789012:role/NAME`)".to_owned(),
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
