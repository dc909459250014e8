//! Deployment settings: what is about the deployment rather than the code. They live in
//! `[package.metadata.fixedip]`, with cargo-lambda's `[package.metadata.lambda.deploy]` honoured where
//! the two overlap.

use std::collections::BTreeMap;
use std::fmt;

/// The instruction set a function runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Architecture {
    #[default]
    #[cfg_attr(feature = "serde", serde(alias = "x86-64", alias = "amd64"))]
    X86_64,
    #[cfg_attr(feature = "serde", serde(alias = "aarch64"))]
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
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.lambda_name())
    }
}

/// The settings of one function's deployment, merged and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
}
