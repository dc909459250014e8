//! `verify` (and the check at the end of `deploy`): per stack, what the functions were held to,
//! and per function whether every egress path leaves through it, with each finding.

use std::fmt::{self, Display};
use std::net::Ipv4Addr;

use fixedip_core::verify::{Finding, Severity};
use serde::Serialize;

use super::FormatVersion;
use crate::output::{style, styled};

/// The verdict on every function verified, per stack.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub format_version: FormatVersion,
    pub stacks: Vec<StackVerdicts>,
}

/// The functions of one stack in one region (or one function of no stack), and what they were
/// held to.
#[derive(Debug, Clone, Serialize)]
pub struct StackVerdicts {
    /// `None`: a function named with `--function` that belongs to no stack.
    pub stack: Option<String>,
    pub region: String,
    /// Where the allowed IPs come from.
    pub allowed_from: AllowedFrom,
    /// The addresses egress was checked against.
    pub allowed: Vec<Ipv4Addr>,
    pub functions: Vec<FunctionVerdict>,
}

/// Where the allowed IPs come from: never from the network being checked, except for a function
/// of no stack, where the NATs' own Elastic IPs are what there is to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowedFrom {
    /// The stack's Elastic IPs (`cargo fixedip ips`).
    Stack,
    /// `--ip`.
    Flag,
    /// The Elastic IPs of the NATs the function's subnets leave through (a function of no stack).
    Nats,
}

/// One function: where it runs, what is wrong (nothing, when it passes), what the probe saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FunctionVerdict {
    pub function: String,
    /// The VPC its subnets are in; `None` outside any VPC.
    pub vpc_id: Option<String>,
    /// No finding is an error, and the probe (if any) left from an allowed IP.
    pub passed: bool,
    pub findings: Vec<FindingReport>,
    /// With `--probe`: the address the function saw itself leave from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<Probe>,
}

/// One thing that breaks (error) or weakens (warning) the egress guarantee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FindingReport {
    /// Stable and machine-readable: `missing-default-route`, ... (docs/cli.md's table).
    pub code: String,
    pub severity: FindingSeverity,
    /// The resource to change.
    pub resource: String,
    pub problem: String,
    pub fix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingSeverity {
    Error,
    Warning,
}

impl From<&Finding> for FindingReport {
    fn from(finding: &Finding) -> FindingReport {
        FindingReport {
            code: finding.code.as_str().to_owned(),
            severity: match finding.severity {
                Severity::Error => FindingSeverity::Error,
                Severity::Warning => FindingSeverity::Warning,
            },
            resource: finding.resource.clone(),
            problem: finding.problem.clone(),
            fix: finding.fix.clone(),
        }
    }
}

/// What the function answered to `verify --probe`'s event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// The address it reported, if it reported one.
    pub ip: Option<Ipv4Addr>,
    /// The address is one of the allowed.
    pub allowed: bool,
    /// Why the probe proves nothing, or what to do, when it did not pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, stack) in self.stacks.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            let allowed: Vec<String> = stack.allowed.iter().map(|ip| ip.to_string()).collect();
            let allowed = if allowed.is_empty() {
                "none".to_owned()
            } else {
                allowed.join(", ")
            };
            match (&stack.stack, stack.allowed_from) {
                (Some(name), AllowedFrom::Stack) => writeln!(
                    f,
                    "{} in {}: allowed IPs (the stack's) {allowed}",
                    styled(style::HEADER, format_args!("Stack `{name}`")),
                    stack.region
                )?,
                (Some(name), _) => writeln!(
                    f,
                    "{} in {}: allowed IPs (--ip) {allowed}",
                    styled(style::HEADER, format_args!("Stack `{name}`")),
                    stack.region
                )?,
                (None, AllowedFrom::Nats) => writeln!(
                    f,
                    "In {} (no fixedip stack): leaves through the NATs' Elastic IPs {allowed}",
                    stack.region
                )?,
                (None, _) => writeln!(f, "In {}: allowed IPs (--ip) {allowed}", stack.region)?,
            }
            for verdict in &stack.functions {
                write!(f, "{verdict}")?;
            }
        }
        Ok(())
    }
}

impl Display for FunctionVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed {
            styled(style::CREATE, "pass")
        } else {
            styled(style::WARNING, "FAIL")
        };
        let vpc = self.vpc_id.as_deref().unwrap_or("no VPC");
        writeln!(
            f,
            "{} ({vpc}): {verdict}",
            styled(style::HEADER, format_args!("Function `{}`", self.function))
        )?;
        for finding in &self.findings {
            for line in finding.to_string().lines() {
                writeln!(f, "  {line}")?;
            }
        }
        if let Some(probe) = &self.probe {
            match (&probe.ip, &probe.problem) {
                (Some(ip), None) => writeln!(f, "  probe: left from {ip}, an allowed IP")?,
                (_, Some(problem)) => writeln!(f, "  error[probe] {problem}")?,
                (None, None) => {}
            }
        }
        Ok(())
    }
}

/// `error[code] resource: problem`, and how to fix it on the next line.
impl Display for FindingReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            FindingSeverity::Error => "error",
            FindingSeverity::Warning => "warning",
        };
        write!(
            f,
            "{severity}[{}] {}: {}\n  fix: {}",
            self.code, self.resource, self.problem, self.fix
        )
    }
}
