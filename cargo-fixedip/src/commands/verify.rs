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
use fixedip_core::verify::{self, Finding};
use serde::Serialize;

use super::{async_runtime, Context};
use crate::aws::network::{function_attachment, observe_network};
use crate::aws::observe::{observe, Scope};
use crate::aws::{Aws, AwsError};
use crate::cli::VerifyArgs;
use crate::commands::ips::stack_addresses;
use crate::error::CliError;
use crate::output::{style, styled};

/// The event `--probe` sends; a function that supports it answers `{"ip": "<address it saw>"}`
/// (examples/hello-egress/README.md shows the few lines it takes).
pub const PROBE_EVENT: &str = r#"{"fixedip":"probe"}"#;

pub fn run(context: &Context, args: &VerifyArgs) -> Result<(), CliError> {
    let stack = StackName::parse(&args.stack).map_err(|error| CliError::BadStack {
        stack: args.stack.clone(),
        reason: error.to_string(),
    })?;
    let report = async_runtime()?.block_on(async {
        let aws = Aws::connect(&context.aws_options(None)).await?;
        let allowed = if args.ips.is_empty() {
            stack_addresses(&aws, &stack)
                .await?
                .into_iter()
                .map(|a| a.ip)
                .collect()
        } else {
            args.ips.clone()
        };
        let observed = observe(
            &aws,
            &Scope {
                attached_functions: true,
                ..Scope::stack(stack.clone())
            },
        )
        .await?;
        let isolated = args.isolated || (args.ips.is_empty() && observed.looks_isolated());
        let functions = if args.functions.is_empty() {
            observed.functions.into_iter().map(|f| f.name).collect()
        } else {
            args.functions.clone()
        };
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
        let against = match expectation {
            Expectation::Isolated => "no route out (isolated)".to_owned(),
            Expectation::ThroughNat => format!("{} allowed IPs", allowed.len()),
        };
        context.output.status(
            "Verifying",
            format!("{} against {against}", functions.join(", ")),
        );
        let verdicts =
            verify_functions(&aws, &functions, &allowed, expectation, args.probe).await?;
        Ok::<_, CliError>(VerifyReport {
            allowed,
            functions: verdicts,
        })
    })?;
    context.output.result(&report).map_err(CliError::Stdout)?;
    report.into_result()
}

/// What a function's egress must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expectation {
    /// Every route out leaves through a NAT whose address is allowed.
    ThroughNat,
    /// No route out at all (`--isolated`, for functions that must reach only AWS services).
    Isolated,
}

/// The verdict on every function verified.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The addresses egress was checked against.
    pub allowed: Vec<Ipv4Addr>,
    pub functions: Vec<FunctionVerdict>,
}

impl VerifyReport {
    pub fn passed(&self) -> bool {
        self.functions.iter().all(FunctionVerdict::passed)
    }

    /// `Ok` when every function passed, else the error that gives exit code `VERIFY`.
    pub fn into_result(self) -> Result<(), CliError> {
        failures(&self.functions)
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
        let findings = match expectation {
            Expectation::ThroughNat => verify::check(&network, &attachment, allowed),
            Expectation::Isolated => verify::check_isolated(&network, &attachment),
        };
        let probe = if probe {
            Some(probe_function(aws, name, allowed).await?)
        } else {
            None
        };
        let passed =
            verify::passes(&findings) && probe.as_ref().is_none_or(|p| p.problem.is_none());
        verdicts.push(FunctionVerdict {
            function: name.clone(),
            vpc_id: (!network.vpc_id.is_empty()).then_some(network.vpc_id),
            passed,
            findings,
            probe,
        });
    }
    Ok(verdicts)
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
        let allowed: Vec<String> = self.allowed.iter().map(|ip| ip.to_string()).collect();
        writeln!(f, "Allowed IPs: {}", allowed.join(", "))?;
        for verdict in &self.functions {
            write!(f, "{verdict}")?;
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
