//! `cargo fixedip verify`: proves from the live configuration that every egress path of each
//! function leaves through the listed IPs (guarantee 2), and with `--probe` asks the functions
//! themselves which address they leave from.
//!
//! The rules are `fixedip_core::verify`'s; this module observes ([`crate::aws::network`]), picks
//! the functions and the allowed IPs, and reports. Read-only, apart from the probe's Invoke.
//!
//! The allowed IPs are the partner's allowlist, never what the network happens to use: `--ip`
//! when given, else the stack's Elastic IPs (every one it keeps, active or retained). Taking the
//! NATs' own addresses would make any network pass.
//!
//! The expectation follows the stack's mode as the account shows it: an isolated stack
//! (`nat = "none"`, [`ObservedState::looks_isolated`]) must have no route out at all, as with
//! `--isolated`; given `--ip`, the network is held to those IPs whatever it looks like.
//!
//! [`ObservedState::looks_isolated`]: fixedip_core::observed::ObservedState::looks_isolated

use std::fmt::{self, Display};
use std::net::Ipv4Addr;

use aws_sdk_lambda::primitives::Blob;
use fixedip_core::requirements::StackName;
use fixedip_core::tags;
use fixedip_core::verify::{self, EgressNetwork, Finding, FunctionAttachment};
use serde::Serialize;

use super::{async_runtime, Connections, Context, Identity};
use crate::aws::network::{function_attachment, observe_network};
use crate::aws::observe::{observe, Scope};
use crate::aws::{Aws, AwsError};
use crate::cli::VerifyArgs;
use crate::commands::ips::stack_addresses;
use crate::error::CliError;
use crate::output::{style, styled};
use crate::stacks::StackTarget;

/// The event `--probe` sends; a function that supports it answers `{"ip": "<address it saw>"}`
/// (examples/hello-egress/README.md shows the few lines it takes).
pub const PROBE_EVENT: &str = r#"{"fixedip":"probe"}"#;

pub fn run(context: &Context, args: &VerifyArgs) -> Result<(), CliError> {
    let runtime = async_runtime()?;
    let (report, missing) = if args.functions.is_empty() {
        let targets = context.stack_targets(args.stack.as_deref(), &Default::default())?;
        runtime.block_on(verify_stacks(context, args, &targets))?
    } else {
        (runtime.block_on(verify_named(context, args))?, Vec::new())
    };
    if !report.stacks.is_empty() {
        context.output.result(&report).map_err(CliError::Stdout)?;
    }
    if let Some((stack, region)) = missing.into_iter().next() {
        return Err(CliError::NotDeployed { stack, region });
    }
    report.into_result()
}

/// The functions of each stack (those attached to its network, and the selected packages' own),
/// against the stack's IPs or `--ip`. Stacks with nothing in their region are returned apart.
async fn verify_stacks(
    context: &Context,
    args: &VerifyArgs,
    targets: &[StackTarget],
) -> Result<(VerifyReport, Vec<(String, String)>), CliError> {
    let mut connections = Connections::default();
    let mut report = VerifyReport { stacks: Vec::new() };
    let mut missing = Vec::new();
    for target in targets {
        let aws = connections
            .to(context, &target.region, Identity::Checked, false)
            .await?;
        let stack = &target.stack;
        let addresses = stack_addresses(aws, stack).await?;
        let observed = observe(aws, &target.scope()).await?;
        if observed.holds_nothing() && addresses.is_empty() {
            missing.push((stack.to_string(), aws.region.clone()));
            continue;
        }
        let (allowed, source) = if args.ips.is_empty() {
            (
                addresses.into_iter().map(|a| a.ip).collect(),
                AllowedFrom::Stack,
            )
        } else {
            (args.ips.clone(), AllowedFrom::Flag)
        };
        let isolated = args.isolated || (args.ips.is_empty() && observed.looks_isolated());
        let functions: Vec<String> = observed.functions.into_iter().map(|f| f.name).collect();
        if functions.is_empty() {
            return Err(CliError::NothingToVerify {
                stack: stack.to_string(),
            });
        }
        if allowed.is_empty() && !isolated {
            return Err(CliError::NoAllowedIps {
                stack: stack.to_string(),
            });
        }
        let expectation = if isolated {
            Expectation::Isolated
        } else {
            Expectation::ThroughNat
        };
        show_verifying(context, &functions, expectation, &allowed);
        let verdicts = verify_functions(aws, &functions, &allowed, expectation, args.probe).await?;
        report.stacks.push(StackVerdicts {
            stack: Some(stack.to_string()),
            region: aws.region.clone(),
            allowed_from: source,
            allowed,
            functions: verdicts,
        });
    }
    report
        .stacks
        .sort_by(|a, b| (&a.stack, &a.region).cmp(&(&b.stack, &b.region)));
    Ok((report, missing))
}

/// `--function NAME`: each named function, in `--region` (or the AWS configuration's), against
/// `--ip`, else `--stack`'s IPs, else the IPs of the stack its `fixedip:stack` tag names. A
/// function of no stack is held to the rule deploy applies to a network the user runs: every
/// path out leaves through a NAT with an Elastic IP, and those IPs are the ones printed. No other
/// stack's list is ever borrowed.
async fn verify_named(context: &Context, args: &VerifyArgs) -> Result<VerifyReport, CliError> {
    let aws = Aws::connect(&context.aws_options(None)).await?;
    let named_stack = args
        .stack
        .as_deref()
        .map(|name| {
            StackName::parse(name).map_err(|error| CliError::BadStack {
                stack: name.to_owned(),
                reason: error.to_string(),
            })
        })
        .transpose()?;
    let mut report = VerifyReport { stacks: Vec::new() };
    for name in &args.functions {
        let stack = match &named_stack {
            Some(stack) => Some(stack.clone()),
            None if args.ips.is_empty() => function_stack(&aws, name).await?,
            None => None,
        };
        let (allowed, allowed_from, isolated) = if !args.ips.is_empty() {
            (args.ips.clone(), AllowedFrom::Flag, args.isolated)
        } else if let Some(stack) = &stack {
            let allowed: Vec<Ipv4Addr> = stack_addresses(&aws, stack)
                .await?
                .into_iter()
                .map(|a| a.ip)
                .collect();
            let isolated = args.isolated
                || (allowed.is_empty()
                    && observe(&aws, &Scope::stack(stack.clone()))
                        .await?
                        .looks_isolated());
            (allowed, AllowedFrom::Stack, isolated)
        } else {
            (Vec::new(), AllowedFrom::Nats, args.isolated)
        };
        let attachment = function_attachment(&aws, name).await?;
        let network = observe_network(&aws, &attachment).await?;
        let allowed = match allowed_from {
            AllowedFrom::Nats if !isolated => nat_addresses(&network, &attachment),
            _ => allowed,
        };
        if allowed.is_empty() && !isolated && allowed_from == AllowedFrom::Stack {
            return Err(CliError::NoAllowedIps {
                stack: stack.map(|s| s.to_string()).unwrap_or_default(),
            });
        }
        let expectation = if isolated {
            Expectation::Isolated
        } else {
            Expectation::ThroughNat
        };
        show_verifying(context, std::slice::from_ref(name), expectation, &allowed);
        let verdict = verdict(
            &aws,
            name,
            attachment,
            network,
            &allowed,
            expectation,
            args.probe,
        )
        .await?;
        report.stacks.push(StackVerdicts {
            stack: stack.map(|s| s.to_string()),
            region: aws.region.clone(),
            allowed_from,
            allowed,
            functions: vec![verdict],
        });
    }
    Ok(report)
}

/// The stack a function's `fixedip:stack` tag names; `None` for a function fixedip did not deploy.
async fn function_stack(aws: &Aws, name: &str) -> Result<Option<StackName>, AwsError> {
    let answer = aws
        .lambda
        .get_function()
        .function_name(name)
        .send()
        .await
        .map_err(|e| AwsError::call("GetFunction", e))?;
    Ok(answer
        .tags()
        .and_then(|tags| tags.get(tags::STACK))
        .and_then(|stack| StackName::parse(stack).ok()))
}

/// The Elastic IPs of the NATs the function's subnets leave through, by the rules deploy uses to
/// qualify a subnet of a network the user runs. A subnet without one adds nothing: the check
/// then names what is wrong with it.
fn nat_addresses(network: &EgressNetwork, attachment: &FunctionAttachment) -> Vec<Ipv4Addr> {
    let mut ips: Vec<Ipv4Addr> = attachment
        .subnet_ids
        .iter()
        .flat_map(|subnet| verify::subnet_egress(network, subnet).exits)
        .map(|exit| exit.ip)
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

fn show_verifying(
    context: &Context,
    functions: &[String],
    expectation: Expectation,
    allowed: &[Ipv4Addr],
) {
    let against = match expectation {
        Expectation::Isolated => "no route out (isolated)".to_owned(),
        Expectation::ThroughNat if allowed.len() == 1 => "1 allowed IP".to_owned(),
        Expectation::ThroughNat => format!("{} allowed IPs", allowed.len()),
    };
    context.output.status(
        "Verifying",
        format!("{} against {against}", functions.join(", ")),
    );
}

/// What a function's egress must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expectation {
    /// Every route out leaves through a NAT whose address is allowed.
    ThroughNat,
    /// No route out at all (`--isolated`, for functions that must reach only AWS services).
    Isolated,
}

/// The verdict on every function verified, per stack.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
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

impl VerifyReport {
    pub fn passed(&self) -> bool {
        self.stacks
            .iter()
            .flat_map(|s| &s.functions)
            .all(FunctionVerdict::passed)
    }

    /// `Ok` when every function passed, else the error that gives exit code `VERIFY`.
    pub fn into_result(self) -> Result<(), CliError> {
        let verdicts: Vec<FunctionVerdict> =
            self.stacks.into_iter().flat_map(|s| s.functions).collect();
        failures(&verdicts)
    }
}

/// `Ok` when every function passed, else [`CliError::VerifyFailed`] naming those that did not.
pub fn failures(verdicts: &[FunctionVerdict]) -> Result<(), CliError> {
    let failed: Vec<String> = verdicts
        .iter()
        .filter(|v| !v.passed())
        .map(|v| v.function.clone())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::VerifyFailed { functions: failed })
    }
}

/// One function: where it runs, what is wrong (nothing, when it passes), what the probe saw.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionVerdict {
    pub function: String,
    /// The VPC its subnets are in; `None` outside any VPC.
    pub vpc_id: Option<String>,
    pub passed: bool,
    pub findings: Vec<Finding>,
    /// With `--probe`: the address the function saw itself leave from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeResult>,
}

impl FunctionVerdict {
    pub fn passed(&self) -> bool {
        self.passed
    }
}

/// What the function answered to [`PROBE_EVENT`].
#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    /// The address it reported, if it reported one.
    pub ip: Option<Ipv4Addr>,
    /// The address is one of the allowed.
    pub allowed: bool,
    /// Why the probe proves nothing, or what to do, when it did not pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Observes each function's network, runs the rules and, with `probe`, invokes it. Shared with
/// `deploy`, which verifies what it has just deployed.
pub async fn verify_functions(
    aws: &Aws,
    functions: &[String],
    allowed: &[Ipv4Addr],
    expectation: Expectation,
    probe: bool,
) -> Result<Vec<FunctionVerdict>, AwsError> {
    let mut verdicts = Vec::new();
    for name in functions {
        let attachment = function_attachment(aws, name).await?;
        let network = observe_network(aws, &attachment).await?;
        verdicts.push(verdict(aws, name, attachment, network, allowed, expectation, probe).await?);
    }
    Ok(verdicts)
}

/// Runs the rules on one function's network and, with `probe`, invokes it.
async fn verdict(
    aws: &Aws,
    name: &str,
    attachment: FunctionAttachment,
    network: EgressNetwork,
    allowed: &[Ipv4Addr],
    expectation: Expectation,
    probe: bool,
) -> Result<FunctionVerdict, AwsError> {
    let findings = match expectation {
        Expectation::ThroughNat => verify::check(&network, &attachment, allowed),
        Expectation::Isolated => verify::check_isolated(&network, &attachment),
    };
    let probe = if probe {
        Some(probe_function(aws, name, allowed).await?)
    } else {
        None
    };
    let passed = verify::passes(&findings) && probe.as_ref().is_none_or(|p| p.problem.is_none());
    Ok(FunctionVerdict {
        function: name.to_owned(),
        vpc_id: (!network.vpc_id.is_empty()).then_some(network.vpc_id),
        passed,
        findings,
        probe,
    })
}

/// Invokes the function with [`PROBE_EVENT`] and checks the address it answers with.
async fn probe_function(
    aws: &Aws,
    name: &str,
    allowed: &[Ipv4Addr],
) -> Result<ProbeResult, AwsError> {
    let answer = aws
        .lambda
        .invoke()
        .function_name(name)
        .payload(Blob::new(PROBE_EVENT))
        .send()
        .await
        .map_err(|e| AwsError::call("Invoke", e))?;
    let payload = answer.payload().map(|p| p.as_ref()).unwrap_or_default();
    if let Some(error) = answer.function_error() {
        return Ok(ProbeResult {
            ip: None,
            allowed: false,
            problem: Some(format!(
                "the function failed ({error}): {}; look at its logs in CloudWatch",
                String::from_utf8_lossy(payload)
            )),
        });
    }
    Ok(probe_answer(payload, allowed))
}

/// Reads `{"ip": "..."}` and checks it against the allowed addresses.
fn probe_answer(payload: &[u8], allowed: &[Ipv4Addr]) -> ProbeResult {
    let ip = serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("ip")?.as_str()?.parse::<Ipv4Addr>().ok());
    match ip {
        None => ProbeResult {
            ip: None,
            allowed: false,
            problem: Some(format!(
                "the function did not answer the probe with {{\"ip\": \"a.b.c.d\"}} (it answered {}): handle the event {PROBE_EVENT} as examples/hello-egress does",
                String::from_utf8_lossy(payload)
            )),
        },
        Some(ip) if allowed.contains(&ip) => ProbeResult {
            ip: Some(ip),
            allowed: true,
            problem: None,
        },
        Some(ip) => ProbeResult {
            ip: Some(ip),
            allowed: false,
            problem: Some(format!(
                "the function left from {ip}, which is not one of the allowed IPs: the partner's firewall will drop it; fix the findings above, or if it runs outside a VPC attach it with `cargo fixedip deploy`"
            )),
        },
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const LISTED: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);

    #[test]
    fn probe_passes_only_with_a_listed_address() {
        let listed = probe_answer(br#"{"ip":"203.0.113.7"}"#, &[LISTED]);
        assert!(listed.allowed && listed.problem.is_none());

        let other = probe_answer(br#"{"ip":"198.51.100.1"}"#, &[LISTED]);
        assert!(!other.allowed);
        assert!(other.problem.unwrap().contains("198.51.100.1"));

        let echo = probe_answer(PROBE_EVENT.as_bytes(), &[LISTED]);
        assert!(echo.ip.is_none());
        assert!(echo.problem.unwrap().contains("did not answer the probe"));
    }

    #[test]
    fn a_finding_prints_resource_problem_and_fix() {
        let verdict = FunctionVerdict {
            function: "f".into(),
            vpc_id: Some("vpc-1".into()),
            passed: false,
            findings: vec![Finding {
                code: verify::FindingCode::MissingDefaultRoute,
                severity: verify::Severity::Error,
                resource: "rtb-1".into(),
                problem: "no route".into(),
                fix: "add one".into(),
            }],
            probe: None,
        };
        let text = verdict.to_string();
        assert!(text.contains("FAIL"), "{text}");
        assert!(
            text.contains("error[missing-default-route] rtb-1: no route"),
            "{text}"
        );
        assert!(text.contains("fix: add one"), "{text}");
        assert!(failures(&[verdict]).is_err());
    }
}
