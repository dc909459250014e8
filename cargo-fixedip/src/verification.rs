//! Whether a function's egress keeps guarantee 2: the rules of [`fixedip_core::verify`] run on
//! its network as AWS describes it (aws/network.rs) and, with a probe, the function's own answer
//! to where it leaves from. `verify` runs it on the functions it is asked about; `deploy` on every
//! function it has just deployed.

use std::net::Ipv4Addr;

use fixedip_core::network::{Network, VpcNetwork};
use fixedip_core::observed::ObservedState;
use fixedip_core::verify::{self, EgressNetwork, Finding, FunctionAttachment};

use crate::aws::functions;
use crate::aws::network::{function_attachment, observe_network, vpc_network};
use crate::aws::observe::read_nat_consoles;
use crate::aws::{Aws, AwsError};
use crate::error::CliError;
use crate::report::verify::{FindingReport, FunctionVerdict, Probe};

/// The event `--probe` sends; a function that supports it answers `{"ip": "<address it saw>"}`
/// (examples/hello-egress/README.md shows the few lines it takes).
pub const PROBE_EVENT: &str = r#"{"fixedip":"probe"}"#;

/// What a function's egress must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expectation {
    /// Every route out leaves through a NAT whose address is allowed.
    ThroughNat,
    /// No route out at all (`--isolated`, for functions that must reach only AWS services).
    Isolated,
}

/// One function: where it runs, what is wrong with its egress, what the probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub function: String,
    /// The VPC its subnets are in; `None` outside any VPC.
    pub vpc_id: Option<String>,
    pub findings: Vec<Finding>,
    pub probe: Option<Probe>,
}

impl Verdict {
    /// No finding is an error, and the probe (if any) left from an allowed IP.
    pub fn passed(&self) -> bool {
        verify::passes(&self.findings) && self.probe.as_ref().is_none_or(|p| p.problem.is_none())
    }

    pub fn report(&self) -> FunctionVerdict {
        FunctionVerdict {
            function: self.function.clone(),
            vpc_id: self.vpc_id.clone(),
            passed: self.passed(),
            findings: self.findings.iter().map(FindingReport::from).collect(),
            probe: self.probe.clone(),
        }
    }
}

/// `Ok` when every function passed, else [`CliError::VerifyFailed`] naming those that did not.
pub fn failures<'v>(
    verdicts: impl IntoIterator<Item = &'v FunctionVerdict>,
) -> Result<(), CliError> {
    let failed: Vec<String> = verdicts
        .into_iter()
        .filter(|v| !v.passed)
        .map(|v| v.function.clone())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::VerifyFailed { functions: failed })
    }
}

/// Reads each function's network, runs the rules and, with `probe`, invokes it.
pub async fn verify_functions(
    aws: &Aws,
    functions: &[String],
    allowed: &[Ipv4Addr],
    expectation: Expectation,
    probe: bool,
) -> Result<Vec<Verdict>, AwsError> {
    let read = read_functions(aws, functions, None).await?;
    judge(aws, read, allowed, expectation, probe).await
}

/// What [`verify_functions`] reads of one function: its attachment and its network.
pub type FunctionNetwork = (String, FunctionAttachment, EgressNetwork);

/// Reads each function's attachment and network, with its NAT instances' consoles: everything
/// the rules need but the allowed IPs, which a deploy reads meanwhile. The functions are read at
/// once; the answer keeps their order. `vpc`: the VPC the functions were just attached to, when
/// the caller knows it (a deploy): read once, consoles included, beside their attachments, and
/// each function's network cut from it ([`cut`]): one round trip instead of three. A function it
/// does not cover is read as `verify` reads it.
pub async fn read_functions(
    aws: &Aws,
    functions: &[String],
    vpc: Option<&str>,
) -> Result<Vec<FunctionNetwork>, AwsError> {
    let known = async {
        let Some(vpc) = vpc else {
            return Ok(None);
        };
        let mut network = vpc_network(aws, vpc).await?;
        read_nat_consoles(aws, &mut network).await?;
        Ok(Some(network))
    };
    let (attachments, known) = tokio::try_join!(
        futures::future::try_join_all(functions.iter().map(|name| function_attachment(aws, name))),
        known,
    )?;
    let known = known.as_ref();
    futures::future::try_join_all(functions.iter().zip(attachments).map(
        |(name, attachment)| async move {
            let network = match known.and_then(|known| cut(known, &attachment)) {
                Some(network) => network,
                None => {
                    let mut network = observe_network(aws, &attachment).await?;
                    read_nat_consoles(aws, &mut network).await?;
                    network
                }
            };
            Ok((name.clone(), attachment, network))
        },
    ))
    .await
}

/// `attachment`'s network cut from `known`, a network read moments ago with its NAT consoles:
/// what a read of the function's VPC by id would give ([`VpcNetwork::of_stack`]). `None` when
/// `known` does not cover it (a subnet, a route's target or a group it does not hold).
fn cut(known: &Network, attachment: &FunctionAttachment) -> Option<EgressNetwork> {
    let vpc_id = &(known.subnets.iter())
        .find(|s| attachment.subnet_ids.contains(&s.id))?
        .vpc_id;
    VpcNetwork::of_stack(known, vpc_id, &attachment.security_group_ids)
}

/// Runs the rules on what [`read_functions`] read and, with `probe`, invokes each function.
pub async fn judge(
    aws: &Aws,
    read: Vec<FunctionNetwork>,
    allowed: &[Ipv4Addr],
    expectation: Expectation,
    probe: bool,
) -> Result<Vec<Verdict>, AwsError> {
    let mut verdicts = Vec::new();
    for (name, attachment, network) in read {
        verdicts.push(verdict(aws, &name, attachment, network, allowed, expectation, probe).await?);
    }
    Ok(verdicts)
}

/// [`verify_functions`] for a deploy that changed nothing: each function's attachment and network
/// as the deploy observed them moments ago (its GetFunction, and the stack's network read by tags),
/// instead of reading them again. A function whose network the stack's tags do not cover (a route
/// to someone else's gateway or instance, a group that is not the stack's) is read as `verify`
/// reads it.
pub async fn verify_observed(
    aws: &Aws,
    functions: &[String],
    (observed, stack_network): (&ObservedState, &Network),
    allowed: &[Ipv4Addr],
    expectation: Expectation,
) -> Result<Vec<Verdict>, AwsError> {
    // The NAT instances' consoles, read once for every function.
    let mut stack = VpcNetwork {
        vpc_id: String::new(),
        resources: stack_network.clone(),
    };
    read_nat_consoles(aws, &mut stack).await?;
    let mut verdicts = Vec::new();
    for name in functions {
        let observed_network = observed
            .functions
            .iter()
            .find(|f| f.name == *name)
            .and_then(|function| {
                let attachment = FunctionAttachment::from(function);
                let network = cut(&stack, &attachment)?;
                Some((attachment, network))
            });
        let verdict = match observed_network {
            Some((attachment, network)) => {
                verdict(aws, name, attachment, network, allowed, expectation, false).await?
            }
            None => {
                let one = std::slice::from_ref(name);
                let mut read = verify_functions(aws, one, allowed, expectation, false).await?;
                read.remove(0)
            }
        };
        verdicts.push(verdict);
    }
    Ok(verdicts)
}

/// Runs the rules on one function's network and, with `probe`, invokes it.
pub async fn verdict(
    aws: &Aws,
    name: &str,
    attachment: FunctionAttachment,
    network: EgressNetwork,
    allowed: &[Ipv4Addr],
    expectation: Expectation,
    probe: bool,
) -> Result<Verdict, AwsError> {
    let findings = match expectation {
        Expectation::ThroughNat => verify::check(&network, &attachment, allowed),
        Expectation::Isolated => verify::check_isolated(&network, &attachment),
    };
    let findings: Vec<_> = verify::check_function_state(&attachment)
        .into_iter()
        .chain(findings)
        .collect();
    let probe = if probe {
        Some(probe_function(aws, name, allowed).await?)
    } else {
        None
    };
    Ok(Verdict {
        function: name.to_owned(),
        vpc_id: (!network.vpc_id.is_empty()).then_some(network.vpc_id),
        findings,
        probe,
    })
}

/// Invokes the function with [`PROBE_EVENT`] and checks the address it answers with.
async fn probe_function(aws: &Aws, name: &str, allowed: &[Ipv4Addr]) -> Result<Probe, AwsError> {
    let answer = functions::invoke(aws, name, PROBE_EVENT).await?;
    if let Some(error) = answer.function_error {
        return Ok(Probe {
            ip: None,
            allowed: false,
            problem: Some(format!(
                "the function failed ({error}): {}; look at its logs in CloudWatch",
                String::from_utf8_lossy(&answer.payload)
            )),
        });
    }
    Ok(probe_answer(&answer.payload, allowed))
}

/// Reads `{"ip": "..."}` and checks it against the allowed addresses.
fn probe_answer(payload: &[u8], allowed: &[Ipv4Addr]) -> Probe {
    let ip = serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("ip")?.as_str()?.parse::<Ipv4Addr>().ok());
    match ip {
        None => Probe {
            ip: None,
            allowed: false,
            problem: Some(format!(
                "the function did not answer the probe with {{\"ip\": \"a.b.c.d\"}} (it answered {}): handle the event {PROBE_EVENT} as examples/hello-egress does",
                String::from_utf8_lossy(payload)
            )),
        },
        Some(ip) if allowed.contains(&ip) => Probe {
            ip: Some(ip),
            allowed: true,
            problem: None,
        },
        Some(ip) => Probe {
            ip: Some(ip),
            allowed: false,
            problem: Some(format!(
                "the function left from {ip}, which is not one of the allowed IPs: the partner's firewall will drop it; fix the findings above, or if it runs outside a VPC attach it with `cargo fixedip deploy`"
            )),
        },
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
        let verdict = Verdict {
            function: "f".into(),
            vpc_id: Some("vpc-1".into()),
            findings: vec![Finding {
                code: verify::FindingCode::MissingDefaultRoute,
                severity: verify::Severity::Error,
                resource: "rtb-1".into(),
                problem: "no route".into(),
                fix: "add one".into(),
            }],
            probe: None,
        };
        assert!(!verdict.passed());
        let report = verdict.report();
        let text = report.to_string();
        assert!(text.contains("FAIL"), "{text}");
        assert!(
            text.contains("error[missing-default-route] rtb-1: no route"),
            "{text}"
        );
        assert!(text.contains("fix: add one"), "{text}");
        assert!(failures([&report]).is_err());
    }
}
