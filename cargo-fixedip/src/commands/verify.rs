//! `cargo fixedip verify`: proves from the live configuration that every egress path of each
//! function leaves through the listed IPs (guarantee 2), and with `--probe` asks the functions
//! themselves which address they leave from.
//!
//! The rules are `fixedip_core::verify`'s, run by verification.rs; this module picks the
//! functions and the allowed IPs, and reports. Read-only, apart from the probe's Invoke.
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

use std::net::Ipv4Addr;

use fixedip_core::requirements::StackName;
use fixedip_core::verify::{self, EgressNetwork, FunctionAttachment};

use super::{async_runtime, Connections, Context, Identity};
use crate::aws::addresses::stack_addresses;
use crate::aws::functions::function_stack;
use crate::aws::observe::{observe, Scope};
use crate::aws::Aws;
use crate::cli::VerifyArgs;
use crate::error::CliError;
use crate::report::verify::{AllowedFrom, StackVerdicts, VerifyReport};
use crate::report::FormatVersion;
use crate::stacks::StackTarget;
use crate::verification::{self, verdict, verify_functions, Expectation, Verdict};

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
    verification::failures(report.stacks.iter().flat_map(|s| &s.functions))
}

/// The functions of each stack (those attached to its network, and the selected packages' own),
/// against the stack's IPs or `--ip`. Stacks with nothing in their region are returned apart.
async fn verify_stacks(
    context: &Context,
    args: &VerifyArgs,
    targets: &[StackTarget],
) -> Result<(VerifyReport, Vec<(String, String)>), CliError> {
    let mut connections = Connections::default();
    let mut report = VerifyReport {
        format_version: FormatVersion,
        stacks: Vec::new(),
    };
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
            functions: verdicts.iter().map(Verdict::report).collect(),
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
    let mut report = VerifyReport {
        format_version: FormatVersion,
        stacks: Vec::new(),
    };
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
        let (_, attachment, network) =
            verification::read_functions(&aws, std::slice::from_ref(name), None)
                .await?
                .remove(0);
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
            functions: vec![verdict.report()],
        });
    }
    Ok(report)
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
