//! `cargo fixedip ips`: the stack's Elastic IPs, for allowlists. One DescribeAddresses call by tag
//! (aws/addresses.rs).
//!
//! The plain and CIDR lists hold every IP the partner must allowlist: the active ones (traffic
//! leaves through them now), the pending ones (new, carrying traffic once the user runs `deploy
//! --allow-new-ips`) and the retained ones (kept by a smaller `azs` or a destroy, and put back to
//! work by the next deploy before anything new is allocated). Leaving any of these out of an
//! allowlist would break traffic later without warning. CSV and JSON tell them apart (`use`).
//!
//! An isolated stack (`nat = "none"`) has no egress IP: nothing of it leaves the VPC. When no
//! address carries traffic, `ips` observes the stack to tell an isolated stack (stderr says so,
//! stdout lists only IPs retained from an earlier mode, JSON has `"isolated": true`) from one
//! that is not deployed; a stack with an active or pending IP is not isolated, and costs the one
//! call.

use fixedip_core::observed::AddressUse;
use fixedip_core::requirements::StackName;

use super::{async_runtime, Connections, Context, Identity};
use crate::aws::addresses::stack_addresses;
use crate::aws::observe::{observe, Scope};
use crate::cli::{IpsArgs, IpsFormat};
use crate::error::CliError;
use crate::output::counted;
use crate::report::ips::{IpsReport, ListedIp, StackIps};
use crate::report::{FormatVersion, Ip};

pub fn run(context: &Context, args: &IpsArgs) -> Result<(), CliError> {
    let targets = context.stack_targets(args.stack.as_deref(), &Default::default())?;
    let report = async_runtime()?.block_on(async {
        let mut connections = Connections::default();
        let mut report = IpsReport {
            format_version: FormatVersion,
            ips: Vec::new(),
            stacks: Vec::new(),
        };
        let mut missing = Vec::new();
        for target in &targets {
            // One call for a stack with an IP carrying traffic: no STS round trip first.
            let aws = connections
                .to(context, &target.region, Identity::Unchecked, true)
                .await?;
            let stack = &target.stack;
            let addresses = stack_addresses(aws, stack).await?;
            let carrying = addresses.iter().any(|a| a.usage != AddressUse::Retained);
            let isolated = if carrying {
                false
            } else {
                let observed = observe(aws, &Scope::stack(stack.clone())).await?;
                if observed.holds_nothing() && addresses.is_empty() {
                    missing.push((stack.to_string(), aws.region.clone()));
                    continue;
                }
                observed.looks_isolated()
            };
            if isolated {
                note_isolated(context, stack, &aws.region, addresses.len());
            }
            if targets.len() > 1 {
                context.output.status(
                    "Listing",
                    format!(
                        "stack `{stack}` in {}: {}",
                        aws.region,
                        counted(addresses.len(), "IP")
                    ),
                );
            }
            let counts = aws.calls.counts();
            context.output.verbose(format!(
                "{} AWS requests, {} mutating",
                counts.total, counts.mutating
            ));
            report.ips.extend(addresses.iter().map(|address| ListedIp {
                address: Ip::from(address),
                stack: stack.to_string(),
                region: aws.region.clone(),
            }));
            report.stacks.push(StackIps {
                stack: stack.to_string(),
                region: aws.region.clone(),
                isolated,
            });
        }
        Ok::<_, CliError>((report, missing))
    })?;
    let (mut report, missing) = report;
    // By stack, then region: the order of the account, not of the resolution.
    report
        .stacks
        .sort_by(|a, b| (&a.stack, &a.region).cmp(&(&b.stack, &b.region)));
    report
        .ips
        .sort_by(|a, b| (&a.stack, &a.region).cmp(&(&b.stack, &b.region)));
    // What was found is printed either way; a stack with nothing fails the command after it.
    if !report.stacks.is_empty() {
        let output = &context.output;
        match (context.global.json, args.format) {
            (true, _) | (_, IpsFormat::Json) => output.json(&report),
            (_, IpsFormat::Plain) => output.text(&report.to_string()),
            (_, IpsFormat::Cidr) => output.text(&report.cidr()),
            (_, IpsFormat::Csv) => output.text(&report.csv()),
        }
        .map_err(CliError::Stdout)?;
    }
    match missing.into_iter().next() {
        Some((stack, region)) => Err(CliError::NotDeployed { stack, region }),
        None => Ok(()),
    }
}

fn note_isolated(context: &Context, stack: &StackName, region: &str, retained: usize) {
    let kept = if retained == 0 {
        String::new()
    } else {
        format!(
            "; the {} listed are retained from an earlier mode (still billed, reused first if the stack gets NATs again; `cargo fixedip destroy --release-ips` gives them back)",
            if retained == 1 { "IP" } else { "IPs" }
        )
    };
    context.output.note(format!(
        "stack `{stack}` in {region} is isolated (`nat = \"none\"`): nothing leaves its VPC, so it has no egress IP to allowlist{kept}"
    ));
}
